# SPDX-License-Identifier: Apache-2.0
"""The control API against hostile clients, on a real fedgslb-dnsd: the token
is checked before any body byte is read, a request has one absolute
deadline, connections are capped with the oldest unfinished one evicted,
tokens are scoped to what they may do, and a listener off loopback or a token
file open to others is refused at start."""

import os
import socket
import subprocess
import threading
import time

import pytest

import fedtest

HUGE = 16_000_000  # just under the 16 MiB body cap


def raw_request(port, head, body=b"", timeout=5.0):
    """Sends @head (and @body) on a fresh connection and returns every byte
    the server sent until it closed or @timeout passed."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout * fedtest.SLOW)
    try:
        s.sendall(head + body)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def status_of(reply):
    line = reply.split(b"\r\n", 1)[0]
    return int(line.split()[1]) if line.startswith(b"HTTP/1.1 ") else None


def rss_kib(pid, field="VmHWM"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(field + " not found")


def vantage_token_files(tmp):
    files = {}
    for region in ("us-east-1", "eu-west-1"):
        path = os.path.join(str(tmp), f"{region}.token")
        fedtest.write_secret(path, f"vantage-{region}-token-0123456789")
        files[region] = path
    return files


@pytest.fixture(scope="module")
def scoped(tmp_path_factory):
    """dnsd with an operator token, two vantage tokens, 4 connections at most
    and a 1 s request deadline."""
    tmp = tmp_path_factory.mktemp("scoped")
    dns_port, ctl_port = fedtest.free_port(), fedtest.free_port(ipv6=False)
    conf = fedtest.base_config(tmp, dns_port, ctl_port)
    conf["dnsd"]["control"].update({
        "vantage_tokens": {r: {"token_file": p} for r, p in vantage_token_files(tmp).items()},
        "max_connections": 4,
        "request_timeout_ms": 1000,
    })
    d = fedtest.start_dnsd(tmp, conf=conf, dns_port=dns_port, ctl_port=ctl_port)
    yield d
    fedtest.finish(d)


def vtoken(region):
    return f"vantage-{region}-token-0123456789"


# ------------------------------------------------------------ auth before body

def test_put_without_token_is_refused_before_the_body(dnsd):
    """The head alone gets 401: the server does not wait for (or buffer) the
    16 MB it announces."""
    head = (b"PUT /v1/state HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % HUGE)
    t0 = time.monotonic()
    reply = raw_request(dnsd.ctl_port, head, timeout=5.0)
    assert status_of(reply) == 401, reply[:300]
    assert b"Connection: close" in reply
    assert b"WWW-Authenticate: Bearer" in reply
    assert time.monotonic() - t0 < 4.0 * fedtest.SLOW, "the server waited for the body"


def test_wrong_token_with_a_body_is_refused_and_the_client_reads_it(dnsd):
    """A client that sends its whole body at once still reads the 401 (the
    server lingers, discarding, instead of resetting the connection)."""
    body = b"{" + b" " * 300_000 + b"}"
    head = (b"PUT /v1/state HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    reply = raw_request(dnsd.ctl_port, head, body)
    assert status_of(reply) == 401, reply[:300]


def test_unauthenticated_put_flood_does_not_grow_memory(dnsd):
    """Six unauthenticated 16 MB PUTs at once: the peak RSS hardly moves
    (evhttp buffered every body before looking at the token: +80 MB)."""
    before = rss_kib(dnsd.proc.pid)
    head = b"PUT /v1/state HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % HUGE
    body = b" " * HUGE

    def one():
        s = socket.create_connection(("127.0.0.1", dnsd.ctl_port), timeout=5 * fedtest.SLOW)
        try:
            s.sendall(head)
            s.sendall(body)
            s.recv(100)
        except OSError:  # refused early: the server stopped reading
            pass
        finally:
            s.close()

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    grown_mb = (rss_kib(dnsd.proc.pid) - before) / 1024
    # 0 MB in a normal build; AddressSanitizer's quarantine keeps the few MB
    # of discarded input reads. Buffering the bodies was +80 MB.
    assert grown_mb < 40, f"peak RSS grew {grown_mb:.1f} MB"
    assert fedtest.http(dnsd.ctl_port, "GET", "/healthz")[0] == 200


def test_transfer_encoding_is_411_and_bad_heads_400(dnsd):
    reply = raw_request(dnsd.ctl_port, b"PUT /v1/state HTTP/1.1\r\nHost: x\r\nAuthorization: "
                        b"Bearer " + fedtest.TOKEN.encode() +
                        b"\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    assert status_of(reply) == 411, reply[:200]
    for bad in (b"GET /healthz HTTP/1.1\nHost: x\n\n",            # bare LF
                b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n",      # space before colon
                b"GET /healthz HTTP/1.1\r\nX: a\r\n b\r\nHost: x\r\n\r\n",  # obs-fold
                b"GET /healthz HTTP/1.1\r\n\r\n",                  # no Host
                b"GET http://h/healthz HTTP/1.1\r\nHost: h\r\n\r\n",  # absolute form
                b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                b"Content-Length: 2\r\n\r\nab"):
        reply = raw_request(dnsd.ctl_port, bad)
        assert status_of(reply) == 400, (bad, reply[:200])
    assert fedtest.http(dnsd.ctl_port, "GET", "/healthz")[0] == 200


def test_head_too_large_is_431(dnsd):
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 20000 + b"\r\n\r\n"
    assert status_of(raw_request(dnsd.ctl_port, head)) == 431


def test_keep_alive_and_pipelining(dnsd):
    two = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n" \
          b"Connection: close\r\n\r\n"
    reply = raw_request(dnsd.ctl_port, two)
    assert reply.count(b"HTTP/1.1 200 OK") == 2, reply
    # Bodies on one kept-alive connection: each request's body is its own
    # (the sanitizer build catches a body buffer leaked between requests).
    put = (b"PUT /v1/state HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
           fedtest.TOKEN.encode() + b"\r\nContent-Length: 2\r\n\r\n{}")
    last = put.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n")
    reply = raw_request(dnsd.ctl_port, put + put + last)
    assert reply.count(b"HTTP/1.1 400 Bad Request") == 3, reply


# ------------------------------------------------------------ deadlines and the cap

def test_trickled_head_is_cut_at_the_deadline(scoped):
    """One byte every 200 ms: the deadline is absolute (1 s here), so the
    server closes long before the 6 s the trickle would take."""
    s = socket.create_connection(("127.0.0.1", scoped.ctl_port), timeout=5)
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 30
    t0 = time.monotonic()
    closed_at = None
    for b in head:
        try:
            s.sendall(bytes([b]))
            s.settimeout(0.2)
            if s.recv(1) == b"":
                closed_at = time.monotonic() - t0
                break
        except socket.timeout:
            continue
        except (BrokenPipeError, ConnectionResetError):
            closed_at = time.monotonic() - t0
            break
    s.close()
    assert closed_at is not None, "the trickling client was never cut off"
    assert closed_at < 4.0 * fedtest.SLOW
    m = fedtest.Control(scoped.ctl_port).metrics()
    closed = {lbl.get("reason"): v for n, lbl, v in m
              if n == "fedgslb_ctl_connections_closed_total"}
    assert closed["deadline"] >= 1


def test_full_table_evicts_the_oldest_unfinished_head(scoped):
    """Ten connections hold half a head each (the cap is 4): a real request
    still gets through, and the holders are the ones closed."""
    def evicted():
        m = fedtest.Control(scoped.ctl_port).metrics()
        return {lbl.get("reason"): v for n, lbl, v in m
                if n == "fedgslb_ctl_connections_closed_total"}["evicted"]

    before = evicted()
    time.sleep(0.2)  # the server sees that connection close
    holders = []
    for _ in range(10):
        s = socket.create_connection(("127.0.0.1", scoped.ctl_port), timeout=5)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        holders.append(s)
    time.sleep(0.1)
    st, body = fedtest.http(scoped.ctl_port, "GET", "/healthz")
    assert st == 200, body
    for s in holders:
        s.close()
    # 4 fit; 6 more holders and the request each evicted the oldest holder.
    assert evicted() - before == 7


# ------------------------------------------------------------ scoped tokens

def web_doc(vantage, healthy=True):
    return fedtest.state_doc(vantage, {"default/web": {
        "usa": fedtest.endpoint(["192.0.2.10"], healthy=healthy, rtt=10),
        "eur": fedtest.endpoint(["192.0.2.20"], rtt=20),
        "jpn": fedtest.endpoint(["192.0.2.30"], rtt=30)}})


def test_vantage_token_writes_only_its_own_document(scoped):
    port = scoped.ctl_port
    st, body = fedtest.http(port, "PUT", "/v1/state", web_doc("us-east-1"),
                            token=vtoken("us-east-1"))
    assert st == 200, body
    # The us-east-1 token cannot speak for eu-west-1 (it would outvote it).
    st, body = fedtest.http(port, "PUT", "/v1/state", web_doc("eu-west-1", healthy=False),
                            token=vtoken("us-east-1"))
    assert st == 403, body
    assert "us-east-1" in body["error"] and "eu-west-1" in body["error"]
    st, doc = fedtest.http(port, "GET", "/v1/state")
    assert st == 200 and sorted(doc["vantages"]) == ["us-east-1"], doc
    # The operator token may send any vantage's document.
    st, body = fedtest.http(port, "PUT", "/v1/state", web_doc("eu-west-1"), token=fedtest.TOKEN)
    assert st == 200, body


def test_vantage_token_cannot_drain(scoped):
    port = scoped.ctl_port
    st, body = fedtest.http(port, "PUT", "/v1/members/eur/drain", token=vtoken("eu-west-1"))
    assert st == 403, body
    st, body = fedtest.http(port, "PUT", "/v1/members/eur/drain", token="not-a-token")
    assert st == 401, body
    st, body = fedtest.http(port, "PUT", "/v1/members/eur/drain", token=fedtest.TOKEN)
    assert st == 200, body
    st, body = fedtest.http(port, "DELETE", "/v1/members/eur/drain", token=fedtest.TOKEN)
    assert st == 200, body


def test_reads_are_open_on_loopback_and_tokens_still_checked(scoped):
    port = scoped.ctl_port
    assert fedtest.http(port, "GET", "/metrics")[0] == 200
    assert fedtest.http(port, "GET", "/v1/state", token=vtoken("eu-west-1"))[0] == 200
    # A wrong token is an error even where none is needed.
    assert fedtest.http(port, "GET", "/v1/state", token="wrong")[0] == 401


# ------------------------------------------------------------ reads off loopback

def _netns_ok():
    return os.geteuid() == 0 and subprocess.run(
        ["unshare", "--net", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _netns_ok(), reason="needs root and unshare --net")
def test_reads_need_a_token_off_loopback(tmp_path):
    """dnsd on 0.0.0.0 in a network namespace the test creates (only its own
    loopback exists there): reads need a token unless public_read is set."""
    for public_read, want in ((False, 401), (True, 200)):
        dns_port, ctl_port = fedtest.free_port(), fedtest.free_port(ipv6=False)
        conf = fedtest.base_config(tmp_path, dns_port, ctl_port, ipv6=False)
        conf["dnsd"]["control"]["listen"] = f"0.0.0.0:{ctl_port}"
        conf["dnsd"]["control"]["public_read"] = public_read
        path = fedtest.write_config(tmp_path, conf, f"ns-{public_read}.json")
        script = (f"ip link set lo up && exec {fedtest.binary('fedgslb-dnsd')} --config {path}")
        log = open(os.path.join(str(tmp_path), f"ns-{public_read}.log"), "wb")
        p = subprocess.Popen(["unshare", "--net", "sh", "-c", script], stdout=log,
                             stderr=subprocess.STDOUT, cwd=str(tmp_path))
        try:
            def curl(*args):
                return subprocess.run(
                    ["nsenter", "-t", str(p.pid), "-n", "curl", "-s", "-o", "/dev/null",
                     "-w", "%{http_code}", *args], capture_output=True, text=True,
                    timeout=30).stdout
            url = f"http://127.0.0.1:{ctl_port}"
            deadline = time.monotonic() + 10 * fedtest.SLOW
            while curl(url + "/healthz") != "200":
                assert time.monotonic() < deadline and p.poll() is None, "dnsd not up"
                time.sleep(0.05)
            assert curl(url + "/metrics") == str(want)
            assert curl(url + "/v1/state") == str(want)
            assert curl("-H", "Authorization: Bearer " + fedtest.TOKEN,
                        url + "/v1/state") in ("200", "404")
        finally:
            p.terminate()
            p.wait(10)
            log.close()


# ------------------------------------------------------------ refused at start

def check_config(tmp, conf, name):
    path = fedtest.write_config(tmp, conf, name)
    return subprocess.run([fedtest.binary("fedgslb-dnsd"), "--config", path, "--check-config"],
                          capture_output=True, text=True, cwd=str(tmp), timeout=30)


def test_listener_off_loopback_without_token_is_refused(tmp_path):
    conf = fedtest.base_config(tmp_path, 5300, 9153)
    conf["dnsd"]["control"] = {"listen": "0.0.0.0:9153"}
    p = check_config(tmp_path, conf, "open.json")
    assert p.returncode == 1
    assert ("dnsd.control.listen: 0.0.0.0:9153 is not a loopback address and no token is set"
            in p.stderr), p.stderr
    conf["dnsd"]["control"] = {"listen": "127.0.0.1:9153"}
    assert check_config(tmp_path, conf, "lo.json").returncode == 0


def test_token_file_readable_by_others_is_refused(tmp_path):
    conf = fedtest.base_config(tmp_path, 5300, 9153)
    token = conf["dnsd"]["control"]["token_file"]
    os.chmod(token, 0o644)
    p = check_config(tmp_path, conf, "mode.json")
    assert p.returncode == 1
    assert "has mode 0644: group and others must have no access (chmod 600 " in p.stderr
    assert fedtest.TOKEN not in p.stderr
    os.chmod(token, 0o640)  # group-readable is refused too
    p = check_config(tmp_path, conf, "mode.json")
    assert p.returncode == 1 and "has mode 0640" in p.stderr, p.stderr
    os.chmod(token, 0o600)
    assert check_config(tmp_path, conf, "mode.json").returncode == 0


def test_vantage_tokens_must_name_a_region(tmp_path):
    conf = fedtest.base_config(tmp_path, 5300, 9153)
    conf["dnsd"]["control"]["vantage_tokens"] = {
        "mars-1": {"token_file": conf["dnsd"]["control"]["token_file"]}}
    p = check_config(tmp_path, conf, "vt.json")
    assert p.returncode == 1
    assert 'dnsd.control.vantage_tokens.mars-1: unknown vantage "mars-1"' in p.stderr, p.stderr


def test_operator_forgets_a_pinned_generation(scoped):
    """A vantage credential abused to push a huge generation would lock the
    real vantage out (409 forever, across restarts: the state file keeps it).
    The operator forgets that document; the next one of any generation wins."""
    port = scoped.ctl_port
    pinned = web_doc("eu-west-1")
    pinned["generation"] = 2 ** 62
    assert fedtest.http(port, "PUT", "/v1/state", pinned, token=vtoken("eu-west-1"))[0] == 200
    honest = web_doc("eu-west-1")
    honest["generation"] = 5
    st, body = fedtest.http(port, "PUT", "/v1/state", honest, token=vtoken("eu-west-1"))
    assert st == 409, body
    path = "/v1/state/vantages/eu-west-1"
    assert fedtest.http(port, "DELETE", path, token=vtoken("eu-west-1"))[0] == 403
    st, body = fedtest.http(port, "DELETE", path, token=fedtest.TOKEN)
    assert st == 200 and body == {"vantage": "eu-west-1", "forgotten": True}, body
    assert fedtest.http(port, "DELETE", path, token=fedtest.TOKEN)[0] == 404
    st, body = fedtest.http(port, "PUT", "/v1/state", honest, token=vtoken("eu-west-1"))
    assert st == 200, body
    assert "forgotten by the operator" in scoped.log_text()
