# SPDX-License-Identifier: Apache-2.0
"""Harness shared by the system tests of every fedgslb program.

Starts the real binaries from $FEDGSLB_BUILD_DIR on loopback with generated
configurations, waits until they serve, talks to their control API, builds
state documents, and stops them at teardown (checking for sanitizer reports).

Nothing here asserts behaviour of the programs; the tests do.
"""

import copy
import datetime
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype

BUILD_DIR = os.environ.get("FEDGSLB_BUILD_DIR", "")
SOURCE_DIR = os.environ.get(
    "FEDGSLB_SOURCE_DIR",
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))



def _slowdown():
    """Under the sanitizers everything is a few times slower; timeouts scale."""
    if os.environ.get("FEDGSLB_TEST_SLOWDOWN"):
        return float(os.environ["FEDGSLB_TEST_SLOWDOWN"])
    try:
        with open(os.path.join(BUILD_DIR, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith("SANITIZE:") and line.split("=", 1)[1].strip():
                    return 3.0
    except OSError:
        pass
    return 1.0


SLOW = _slowdown()

ZONE = "fed.example.test"
FEDERATION = "myfed"
TOKEN = "s3cr3t-test-token-0123456789"

SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "ERROR: ThreadSanitizer", "WARNING: ThreadSanitizer")

# Daemons alive in this test process, so that a failure report can show their logs.
LIVE = []


def binary(name):
    """Path of a built program; skips the test module when it is not built."""
    import pytest
    if not BUILD_DIR:
        pytest.skip("FEDGSLB_BUILD_DIR is not set")
    path = os.path.join(BUILD_DIR, name)
    if not os.access(path, os.X_OK):
        pytest.skip(f"{path} is not built")
    return path


def have_ipv6():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


HANDED_OUT_PORTS = set()  # every port free_port and quiet_port gave


def free_port(ipv6=True):
    """A port free for both UDP and TCP on 127.0.0.1 (and ::1 when usable),
    never one this process was given before: the kernel may hand a port back
    once its probe socket is closed, and a test that asks for several ports
    before starting anything on them would get two roles on one port."""
    v6 = ipv6 and have_ipv6()
    for _ in range(200):
        socks = []
        try:
            t4 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(t4)
            t4.bind(("127.0.0.1", 0))
            port = t4.getsockname()[1]
            if port in HANDED_OUT_PORTS:
                continue
            u4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(u4)
            u4.bind(("127.0.0.1", port))
            if v6:
                for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    s6 = socket.socket(socket.AF_INET6, kind)
                    socks.append(s6)
                    s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    s6.bind(("::1", port))
            HANDED_OUT_PORTS.add(port)
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port")


# ---------------------------------------------------------------- zone file

def write_secret(path, text):
    """Writes a token file as the daemons require it: mode 0600, one line."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.chmod(path, 0o600)


def zone_text(zone=ZONE, serial=2024010101, extra=""):
    """A zone file with everything the static-zone tests need.

    SOA TTL 300, MINIMUM 60 (negative TTL = 60); NS ns1/ns2 with glue; TXT and
    MX at the apex; www CNAME host; an empty non-terminal (b.<zone> above
    a.b.<zone>); a delegation lab.<zone> with glue; "big" with 20 TXT RRs of
    100 bytes (about 2.3 KB: truncated at 512 and at 1232); "mid" with 6 (about
    700 bytes: fits 1232 but not 512); sorry.<zone> for the sorry policy.
    """
    lines = [
        f"$ORIGIN {zone}.",
        "$TTL 3600",
        f"@ 300 IN SOA ns1.{zone}. hostmaster.{zone}. {serial} 7200 3600 1209600 60",
        "@ IN NS ns1",
        "@ IN NS ns2",
        '@ IN TXT "v=fedgslb test zone"',
        "@ IN MX 10 mail",
        "ns1 IN A 192.0.2.1",
        "ns1 IN AAAA 2001:db8::1",
        "ns2 IN A 192.0.2.2",
        "mail IN A 192.0.2.25",
        "host IN A 192.0.2.80",
        "host IN AAAA 2001:db8::80",
        "www IN CNAME host",
        "ext IN CNAME target.example.net.",
        'a.b IN TXT "below an empty non-terminal"',
        "lab IN NS ns.lab",
        "ns.lab IN A 192.0.2.53",
        "sorry IN A 192.0.2.99",
    ]
    for i in range(20):
        lines.append(f'big IN TXT "{i:02d}' + "x" * 98 + '"')
    for i in range(6):
        lines.append(f'mid IN TXT "{i:02d}' + "y" * 98 + '"')
    return "\n".join(lines) + "\n" + extra


# ---------------------------------------------------------------- config

REGIONS = {
    "us-east-1": {"zones": ["us-east-1a", "us-east-1b"]},
    "eu-west-1": {"zones": ["eu-west-1a"]},
    "ap-northeast-1": {"zones": ["ap-northeast-1a"]},
}
MEMBERS = {
    "usa": {"region": "us-east-1", "zone": "us-east-1a"},
    "eur": {"region": "eu-west-1", "zone": "eu-west-1a"},
    "jpn": {"region": "ap-northeast-1", "zone": "ap-northeast-1a"},
}
MEMBER_REGION = {m: v["region"] for m, v in MEMBERS.items()}
# Source addresses on loopback that client_networks maps to each region;
# 127.0.0.1 and ::1 are not listed, so they get dnsd.region (eu-west-1).
SOURCE = {"us-east-1": "127.0.0.2", "eu-west-1": "127.0.0.3", "ap-northeast-1": "127.0.0.4"}
# ECS subnets of each region.
ECS4 = {"us-east-1": "10.1.2.0", "eu-west-1": "10.2.3.0", "ap-northeast-1": "10.3.4.0"}
ECS6 = {"us-east-1": "2001:db8:1:500::", "eu-west-1": "2001:db8:2:500::",
        "ap-northeast-1": "2001:db8:3:500::"}
DEFAULT_REGION = "eu-west-1"
# Everything runs on this machine's loopback: state documents may carry
# loopback addresses only because the configuration says so.
ALLOW_LOOPBACK = ["127.0.0.0/8", "::1/128"]


def base_config(tmp, dns_port, ctl_port, ipv6=True, **dnsd_over):
    """The configuration dict: 3 regions, 3 members, 4 services."""
    tmp = str(tmp)
    zone_file = os.path.join(tmp, "zone.txt")
    if not os.path.exists(zone_file):
        with open(zone_file, "w") as f:
            f.write(zone_text())
    token_file = os.path.join(tmp, "control.token")
    write_secret(token_file, TOKEN)
    listen = [f"127.0.0.1:{dns_port}"]
    if ipv6 and have_ipv6():
        listen.append(f"[::1]:{dns_port}")
    nets = []
    for region, src in SOURCE.items():
        nets.append({"cidr": f"{src}/32", "region": region})
    for region, net in ECS4.items():
        nets.append({"cidr": net.rsplit(".", 2)[0] + ".0.0/16", "region": region})
    for region, net in ECS6.items():
        nets.append({"cidr": net.rsplit(":", 3)[0] + "::/48", "region": region})
    dnsd = {
        "listen": listen,
        "region": DEFAULT_REGION,
        "zone_file": zone_file,
        "ttl_s": 30,
        "min_ttl_s": 5,
        "workers": 2,
        "ecs": True,
        "state_file": os.path.join(tmp, "dnsd-state.json"),
        "max_udp_size": 4096,
        "control": {"listen": f"127.0.0.1:{ctl_port}", "token_file": token_file},
    }
    dnsd.update(dnsd_over)
    return copy.deepcopy({
        "federation": FEDERATION,
        "zone": ZONE,
        "regions": REGIONS,
        "members": MEMBERS,
        "services": {
            "default/web": {
                "port": 80,
                "policy": {"all_down": "fail-open", "max_answers": 8, "latency_slack_ms": 5},
                "aliases": [f"web.{ZONE}"],
            },
            "default/closed": {"port": 80, "policy": {"all_down": "fail-closed"}},
            "default/sorry": {"port": 80, "policy": {"all_down": f"sorry:sorry.{ZONE}"}},
            "default/cloud": {"port": 443},
            # every member within the slack of the best: they share by subnet
            # (no own-region preference, so us clients share too)
            "default/shared": {"port": 80, "policy": {"latency_slack_ms": 1000,
                                                      "prefer_own_region": False}},
        },
        "client_networks": nets,
        "allow_addresses": ALLOW_LOOPBACK,
        "latency_ms": {
            "us-east-1": {"eu-west-1": 70, "ap-northeast-1": 150},
            "eu-west-1": {"ap-northeast-1": 220},
        },
        "dnsd": dnsd,
        # vantages expire after 3 x publish_interval_ms: long enough for a test module
        "health": {"vantage": "us-east-1", "publish_interval_ms": 60000},
    })


def write_config(tmp, conf, name="federation.json"):
    path = os.path.join(str(tmp), name)
    with open(path, "w") as f:
        json.dump(conf, f, indent=2)
    return path


# ---------------------------------------------------------------- names

def fed_name(svc, ns="default", region=None, az=None):
    parts = [svc, ns, FEDERATION, "svc"]
    if az:
        parts.append(az)
    if region:
        parts.append(region)
    return ".".join(parts + [ZONE]) + "."


# ---------------------------------------------------------------- process

class Daemon:
    """One running program with its stderr captured to a file."""

    def __init__(self, argv, log_path, cwd=None, env=None, nofile=None):
        self.argv = argv
        self.log_path = log_path
        self.cwd = cwd
        self.env = env
        self.nofile = nofile  # RLIMIT_NOFILE (soft = hard) to start under, None = inherit
        self.proc = None
        self.dns_port = None
        self.ctl_port = None
        self.config_path = None

    def start(self):
        self.log = open(self.log_path, "ab")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        if self.env:
            env.update(self.env)
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.cwd, env=env,
                                     preexec_fn=nofile_preexec(self.nofile))
        LIVE.append(self)
        return self

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_ready(self, timeout=15.0):
        """Waits until the DNS port answers the SOA and the control API /healthz."""
        deadline = time.monotonic() + timeout * SLOW
        last = None
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"daemon exited with {self.proc.returncode} before ready:\n"
                                   + self.log_text())
            try:
                q = dns.message.make_query(ZONE + ".", "SOA")
                r = dns.query.udp(q, "127.0.0.1", port=self.dns_port, timeout=0.3)
                if r.rcode() == dns.rcode.NOERROR:
                    if self.ctl_port is None:
                        return self
                    st, _ = http(self.ctl_port, "GET", "/healthz", timeout=0.5)
                    if st == 200:
                        return self
            except Exception as e:  # not up yet
                last = e
            time.sleep(0.05)
        raise RuntimeError(f"daemon not ready after {timeout}s ({last!r}):\n" + self.log_text())

    def stop(self, sig=None, timeout=10.0):
        """Stops the process; returns its exit status (negative: killed by signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig if sig is not None else signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self in LIVE:
            LIVE.remove(self)
        self.log.close()
        return self.proc.returncode

    def sanitizer_report(self):
        text = self.log_text()
        for m in SANITIZER_MARKERS:
            if m in text:
                return text
        return None


def start_dnsd(tmp, conf=None, dns_port=None, ctl_port=None, extra_args=(), ready=True,
               config_name="federation.json", nofile=None, **dnsd_over):
    """Writes a config (base_config unless @conf) and starts fedgslb-dnsd on it."""
    exe = binary("fedgslb-dnsd")
    dns_port = dns_port or free_port()
    ctl_port = ctl_port or free_port(ipv6=False)
    if conf is None:
        conf = base_config(tmp, dns_port, ctl_port, **dnsd_over)
    path = write_config(tmp, conf, config_name)
    log_path = os.path.join(str(tmp), f"dnsd-{dns_port}.log")
    d = Daemon([exe, "--config", path] + list(extra_args), log_path, cwd=str(tmp), nofile=nofile)
    d.dns_port = dns_port
    d.ctl_port = ctl_port if conf.get("dnsd", {}).get("control") else None
    d.config_path = path
    d.conf = conf
    d.start()
    if ready:
        d.wait_ready()
    return d


def wait_ctl(d, what):
    """Waits until daemon @d's control API (d.ctl_port) answers /healthz;
    returns @d, raises with the log when it exits or does not."""
    deadline = time.monotonic() + 10 * SLOW
    while time.monotonic() < deadline:
        if not d.alive():
            raise RuntimeError("%s exited:\n%s" % (what, d.log_text()))
        try:
            if http(d.ctl_port, "GET", "/healthz", timeout=0.5)[0] == 200:
                return d
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("%s not ready:\n%s" % (what, d.log_text()))


def start_health(config_path, log_path, ctl_port, cwd, env=None, level="debug", args=()):
    """Starts fedgslb-health (logging at @level, with the extra @args) and
    waits until its control API answers /healthz (wait_ctl)."""
    d = Daemon([binary("fedgslb-health"), "--config", config_path, "--log-level", level]
               + list(args), log_path, cwd=cwd, env=env)
    d.ctl_port = ctl_port
    d.start()
    return wait_ctl(d, "fedgslb-health")


def nofile_preexec(n):
    """A preexec_fn that sets RLIMIT_NOFILE to (@n, @n), or None for @n None."""
    if n is None:
        return None
    import resource

    def set_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    return set_limit


def cpu_seconds(pid):
    """User + system CPU time of process @pid so far (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Flood:
    """@n TCP connections to 127.0.0.1:@port, each sending one byte and held
    open until close(): the descriptor-exhaustion attack. Connections the
    daemon does not accept still complete in its backlog (or are refused,
    which is fine: the pressure is what counts)."""

    def __init__(self, port, n=200):
        self.socks = []
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            self.socks.append(s)
        deadline = time.monotonic() + 2.0 * SLOW
        for s in self.socks:
            while time.monotonic() < deadline:
                try:
                    s.send(b"\x00")
                    break
                except (BlockingIOError, OSError):
                    time.sleep(0.01)

    def close(self):
        for s in self.socks:
            s.close()
        self.socks = []


def finish(d, expect_exit=0):
    """Teardown: stop @d and fail on sanitizer reports or an unclean exit."""
    code = d.stop()
    rep = d.sanitizer_report()
    if rep:
        raise AssertionError("sanitizer report in daemon log:\n" + rep)
    if expect_exit is not None and code != expect_exit:
        raise AssertionError(f"daemon exit status {code}, expected {expect_exit}:\n"
                             + d.log_text()[-5000:])


# ---------------------------------------------------------------- control API

def close_all(daemons, others=()):
    """Teardown: finishes every daemon (None ones skipped), then stops every
    other object (fake API servers, relays, backends), whatever fails; raises
    the first daemon's AssertionError (a bad exit, a sanitizer report) last."""
    errors = []
    for d in daemons:
        if d is None:
            continue
        try:
            finish(d)
        except AssertionError as e:
            errors.append(e)
    for x in others:
        try:
            x.stop()
        except Exception:  # teardown goes on
            pass
    if errors:
        raise errors[0]


def http(port, method, path, body=None, token=None, timeout=5.0):
    """One HTTP request to 127.0.0.1:@port; returns (status, parsed JSON or text)."""
    data = None
    headers = {}
    if body is not None:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        if isinstance(data, str):
            data = data.encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout * SLOW) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        status, raw = e.code, e.read()
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


class Control:
    def __init__(self, port, token=TOKEN):
        self.port = port
        self.token = token

    def get(self, path):
        return http(self.port, "GET", path, token=self.token)

    def put_state(self, doc, token=None):
        return http(self.port, "PUT", "/v1/state", body=doc, token=token or self.token)

    def drain(self, member, on=True):
        return http(self.port, "PUT" if on else "DELETE", f"/v1/members/{member}/drain",
                    token=self.token)

    def explain(self, name, client, ecs=None):
        """GET /v1/explain. @ecs "addr/len" explains a query carrying that ECS
        option: client=addr&ecs=len (the address bits and the source prefix)."""
        from urllib.parse import urlencode
        q = {"name": name, "client": client}
        if ecs:
            addr, bits = ecs.split("/")
            q["client"] = addr
            q["ecs"] = bits
        return http(self.port, "GET", "/v1/explain?" + urlencode(q), token=self.token)

    def metrics(self):
        st, text = http(self.port, "GET", "/metrics")
        assert st == 200, (st, text)
        return parse_metrics(text)


def parse_metrics(text):
    """Prometheus text -> list of (name, {label: value}, float)."""
    out = []
    for line in str(text).splitlines():
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            name, rest = line.split("{", 1)
            labels_s, value = rest.rsplit("}", 1)
            labels = {}
            for part in _split_labels(labels_s):
                k, v = part.split("=", 1)
                labels[k.strip()] = v.strip().strip('"')
        else:
            name, value = line.split(None, 1)
            labels = {}
        out.append((name.strip(), labels, float(value.split()[0])))
    return out


def _split_labels(s):
    parts, cur, inq = [], "", False
    for ch in s:
        if ch == '"':
            inq = not inq
        if ch == "," and not inq:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        parts.append(cur)
    return parts


# ---------------------------------------------------------------- state documents

_generation = itertools.count(int(time.time() * 1000))


def next_generation():
    return next(_generation)


def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def endpoint(addresses=(), healthy=True, pending=False, hostname=None, ready=2, rtt=None,
             reason=None, **extra):
    e = {"addresses": list(addresses), "hostname": hostname, "ready_endpoints": ready,
         "healthy": healthy, "pending": pending,
         "reason": reason or ("probe ok" if healthy else "probe 3/3 failed: connect timeout")}
    if rtt is not None:
        e["rtt_ms"] = rtt
    e.update(extra)
    return e


def state_doc(vantage, services, generation=None, member_rtt=None):
    """A state document v1 from @vantage; @services: {"ns/name": {member: endpoint()}}."""
    members = {}
    for m, info in MEMBERS.items():
        members[m] = {"region": info["region"], "zone": info["zone"], "api": "ok"}
        if member_rtt and m in member_rtt:
            members[m]["rtt_ms"] = member_rtt[m]
    return {
        "version": 1,
        "vantage": vantage,
        "generation": next_generation() if generation is None else generation,
        "generated_at": now_rfc3339(),
        "members": members,
        "services": {k: {"port": 80, "members": v} for k, v in services.items()},
    }


# ---------------------------------------------------------------- DNS helpers

def query(d_or_port, name, rdtype="A", source=None, ecs=None, edns=-1, payload=1232, tcp=False,
          host="127.0.0.1", timeout=3.0, want_dnssec=False):
    """One query with dnspython; @ecs is "addr/len". Returns the response Message."""
    port = d_or_port if isinstance(d_or_port, int) else d_or_port.dns_port
    options = []
    if ecs:
        addr, srclen = ecs.split("/")
        options.append(dns.edns.ECSOption(addr, int(srclen)))
        if edns < 0:
            edns = 0
    q = dns.message.make_query(name, rdtype, want_dnssec=want_dnssec)
    # (make_query(use_edns=1) would send version 0: 1 == True to dnspython)
    if edns >= 0 or want_dnssec:
        q.use_edns(max(edns, 0), ednsflags=q.ednsflags, payload=payload, options=options)
    else:
        q.use_edns(False)
    fn = dns.query.tcp if tcp else dns.query.udp
    return fn(q, host, port=port, timeout=timeout * SLOW, source=source)


def raw_udp(port, wire, host="127.0.0.1", timeout=2.0, source=None):
    """Sends raw bytes; returns the raw reply or None when nothing came."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        if source:
            s.bind((source, 0))
        s.settimeout(timeout * SLOW)
        s.sendto(wire, (host, port))
        try:
            data, _ = s.recvfrom(65535)
            return data
        except socket.timeout:
            return None


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def tcp_read_msg(sock):
    ln = int.from_bytes(recv_exact(sock, 2), "big")
    return recv_exact(sock, ln)


def header(wire):
    """(id, flags, qd, an, ns, ar) of a raw message."""
    import struct
    return struct.unpack("!HHHHHH", wire[:12])


def rr_lines(sections):
    """Normalized presentation lines of a list of RRsets: 'name ttl CLASS TYPE rdata'."""
    out = []
    for rrset in sections:
        for rd in rrset:
            out.append(" ".join([rrset.name.to_text().lower(), str(rrset.ttl),
                                 dns.rdataclass.to_text(rrset.rdclass),
                                 dns.rdatatype.to_text(rrset.rdtype),
                                 rd.to_text().lower()]))
    return sorted(out)


def normalize_rr_line(line):
    """Parses one presentation RR line ('name [ttl] [class] type rdata') into rr_lines form."""
    toks = line.split()
    name = dns.name.from_text(toks[0]).to_text().lower()
    i = 1
    ttl = None
    rdclass = "IN"
    while i < len(toks):
        t = toks[i]
        if ttl is None and t.isdigit():
            ttl = t
        elif t.upper() in ("IN", "CH", "HS"):
            rdclass = t.upper()
        else:
            break
        i += 1
    rdtype = toks[i].upper()
    rdata_text = " ".join(toks[i + 1:])
    rd = dns.rdata.from_text(dns.rdataclass.from_text(rdclass), dns.rdatatype.from_text(rdtype),
                             rdata_text, origin=dns.name.root, relativize=False)
    return " ".join([name, str(ttl), rdclass, rdtype, rd.to_text().lower()])


def addresses(msg, rdtype="A"):
    """The set of addresses in the answer section of @msg for @rdtype."""
    t = dns.rdatatype.from_text(rdtype)
    return {rd.address for rrset in msg.answer if rrset.rdtype == t for rd in rrset}


def soa_in_authority(msg):
    return [r for r in msg.authority if r.rdtype == dns.rdatatype.SOA]


def ecs_option(msg):
    for o in msg.options:
        if isinstance(o, dns.edns.ECSOption):
            return o
    return None


def failure_report():
    """Logs of the daemons still alive, for a failed test's report."""
    out = []
    for d in LIVE:
        out.append(f"--- {' '.join(d.argv)}\n{d.log_text()[-8000:]}")
    return "\n".join(out)


def run(argv, timeout=30.0, **kw):
    """Runs a command line tool; returns CompletedProcess with text output."""
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout * SLOW, **kw)


def eprint(*a):
    print(*a, file=sys.stderr)
