#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The federation testbed of issue 7: three regions on one machine, a
client in each curling the one global name, and the scenario that proves it
lands on the nearest healthy member (see tests/e2e/bed.py for the topology).

    tests/e2e/testbed.py [--once] [--build-dir DIR] [--loopback] [--time-limit S] [--etcd]

Steps (each checked; a table per step):
  1. every region's client lands on its own region's member
  2. eur's backends fail: eu clients move to usa, others unaffected
  3. eur recovers: its clients move back
  4. eur's API server stops while its backends run: nothing changes
  5. jpn through fedgslb-proxy; one jpn node fails during a stream of curls
  6. everything fails: fail-open, visible in metrics and explain
  7. fedgslbctl status and explain against the running testbed
  8. an operator intent (fedgslbctl drain) reaches both name servers; one
     stopped misses an undrain, status shows it, intent sync re-delivers

Every daemon runs from one deployment file with --instance (bed.py).

--etcd: the distributed mode: the vantages write their documents to a
three-node etcd cluster on loopback (Debian's etcd-server) and both name
servers and the proxy watch it; no vantage pushes. Step 7 also shows etcd's
members and the consumers' agreement; step 8's intents are still pushed by
fedgslbctl to every name server and proxy.

--once: run the scenario and exit: 0 only if every step behaved as stated,
else 1 after "step N FAILED: ...". Without it, on a terminal, the testbed
stays up afterwards for you to try dig/curl until Ctrl-C.
Every process (and network namespace) it starts is stopped at exit, also on
errors and on SIGINT/SIGTERM/SIGHUP.
"""

import argparse
import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

BOLD, RESET = ("\033[1m", "\033[0m") if sys.stdout.isatty() else ("", "")


class StepFailed(Exception):
    pass


class TimeLimit(BaseException):  # not swallowed by "except Exception"
    pass


def say(text):
    print("\n%s%s%s" % (BOLD, text, RESET), flush=True)


def note(text):
    print("  " + text, flush=True)


def table(headers, rows):
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    fmt = "  " + "  ".join("%%-%ds" % w for w in widths)
    print(fmt % tuple(headers))
    print(fmt % tuple("-" * w for w in widths))
    for r in rows:
        print((fmt % tuple(r)).rstrip())
    sys.stdout.flush()


def check(cond, msg):
    if not cond:
        raise StepFailed(msg)


class Scenario:
    def __init__(self, bed_mod, tb, ctl_exe):
        self.b = bed_mod
        self.tb = tb
        self.ctl_exe = ctl_exe
        self.clients = {r: bed_mod.Client(tb, r) for r in bed_mod.REGIONS}
        self.slow = bed_mod.fedtest.SLOW

    # ---- helpers ----
    def lb(self, m):
        return self.tb.lb_ip[m]

    def member_of_ip(self, ip):
        return self.tb.member_of_ip.get(ip, ip)

    def wait_answers(self, want, timeout, both=True):
        """Polls ns1 (and ns2) until every region in @want gets [want[region]]
        (or the list want[region]); returns the seconds it took."""
        t0 = time.monotonic()
        deadline = t0 + timeout * self.slow
        got = {}
        while True:
            ok = True
            for r, w in want.items():
                w = w if isinstance(w, list) else [w]
                for ns in ((1, 2) if both else (1,)):
                    try:
                        got[(r, ns)] = self.tb.answer_ns(r, ns)
                    except Exception as e:  # a timeout is a wrong answer
                        got[(r, ns)] = repr(e)
                    ok = ok and got[(r, ns)] == w
            if ok:
                return time.monotonic() - t0
            if time.monotonic() > deadline:
                bad = {"%s@ns%d" % k: v for k, v in got.items()
                       if v != (want[k[0]] if isinstance(want[k[0]], list) else [want[k[0]]])}
                raise StepFailed("after %.1f s clients still get %s, expected %s"
                                 % (timeout, bad, want))
            time.sleep(0.05)

    def visit_table(self, expect):
        """Every region's client: dig ns1 + ns2, curl; checks against @expect
        (region -> member whose zone the JSON must name)."""
        rows, bad = [], []
        for r in self.b.REGIONS:
            v = self.clients[r].visit()
            h = v["http"] or {}
            got_m = [self.member_of_ip(a) for a in v["ns1"]]
            got_m2 = [self.member_of_ip(a) for a in v["ns2"]]
            zone = h.get("zone")
            want = expect[r]
            ok = (got_m == [want] and got_m2 == [want] and h.get("status") == 200
                  and zone == self.b.ZONE_OF[want])
            rows.append([
                "%s (%s)" % (r, self.tb.net.where(r)),
                " ".join("%s=%s" % (self.member_of_ip(a), a) for a in v["ns1"]) or "-",
                " ".join(self.member_of_ip(a) for a in v["ns2"]) or "-",
                "%s %s %s" % (h.get("status", "-"), zone or h.get("error") or "-",
                              h.get("hostname") or ""),
                "%.0f" % h["ms"] if h.get("ms") is not None else "-",
                want, "ok" if ok else "WRONG"])
            if not ok:
                bad.append("%s client got ns1=%s ns2=%s http=%s, expected %s (zone %s)"
                           % (r, v["ns1"], v["ns2"], h, want, self.b.ZONE_OF[want]))
        table(["client (at)", "ns1 answer", "ns2 (ECS)", "curl: status zone hostname",
               "ms", "expected", ""], rows)
        check(not bad, "; ".join(bad))

    def health_doc(self, vantage):
        try:
            return self.tb.health_state(vantage)
        except Exception:
            return None

    def entry(self, vantage, member):
        doc = self.health_doc(vantage) or {}
        try:
            return doc["services"]["default/web"]["members"][member]
        except (KeyError, TypeError):
            return {}

    def ttl_of(self, region):
        msg = self.b.fedtest.query(self.tb.dns_port, self.b.WEB, "A",
                                   source=self.b.POLL_SOURCE[region])
        return msg.answer[0].ttl if msg.answer else None

    # ---- the steps ----
    def step1(self):
        say("Step 1. Every region's client lands on its own region's member")
        c = self.clients["eu-west-1"]
        note("a client asks ns1 from its region's address and ns2 with its region's ECS,")
        note("then curls the ns1 answer; the eu client, for instance, runs:")
        for argv in (c.dig_argv(1), c.dig_argv(2), c.curl_argv("ADDR")):
            note("  " + " ".join("'%s'" % x if "%" in x or "\\" in x else x for x in argv))
        t0 = time.monotonic()
        deadline = t0 + 30 * self.slow
        while True:  # every vantage has measured every member
            es = [self.entry(v, m) for v in self.b.REGIONS for m in ("usa", "eur", "jpn")]
            if all(e.get("healthy") is True and e.get("rtt_ms") is not None for e in es):
                break
            check(time.monotonic() < deadline,
                  "the vantages do not see every member healthy with an RTT: %s" % es)
            time.sleep(0.1)
        self.wait_answers(dict(self.b.HOME), timeout=15)
        note("every vantage measured every member after %.1f s; both name servers agree"
             % (time.monotonic() - t0))
        self.visit_table(dict(self.b.HOME))
        rows = []
        for v in self.b.REGIONS:
            rtts = [self.entry(v, m).get("rtt_ms") for m in ("usa", "eur", "jpn")]
            rows.append([v] + ["%.0f" % x if isinstance(x, (int, float)) else "-" for x in rtts]
                        + ["%d/%d/%d" % tuple(self.b.rtt(v, self.b.MEMBER_REGION[m])
                                              for m in ("usa", "eur", "jpn"))])
        note("RTT each vantage measured to each member (ms; the relays add the issue's matrix):")
        table(["vantage", "usa", "eur", "jpn", "configured"], rows)

    def step2(self):
        say("Step 2. eur's backends fail (/healthz and / answer 500)")
        bound = self.b.INTERVAL_MS * self.b.FALL / 1000.0 + self.b.PUBLISH_DEBOUNCE_S
        ttl_before = self.ttl_of("eu-west-1")
        self.tb.set_member_failing("eur", True)
        took = self.wait_answers({"eu-west-1": "usa"}, timeout=bound + 10)
        note("eu clients are answered usa after %.2f s (bound: interval %.1f s x fall %d"
             " + publish %.0f s = %.1f s; a resolver that cached the old answer follows"
             " within its TTL, %s s)" % (took, self.b.INTERVAL_MS / 1000.0, self.b.FALL,
                                          self.b.PUBLISH_DEBOUNCE_S, bound, ttl_before))
        check(took <= bound * self.slow + 0.5,
              "eu clients moved after %.2f s, bound %.1f s" % (took, bound))
        check(ttl_before is not None and ttl_before <= self.b.TTL_S,
              "TTL %s above ttl_s %d" % (ttl_before, self.b.TTL_S))
        self.visit_table({"us-east-1": "usa", "eu-west-1": "usa", "ap-northeast-1": "jpn"})
        deadline = time.monotonic() + (bound + 5) * self.slow
        while True:
            es = {v: self.entry(v, "eur") for v in self.b.REGIONS}
            if all(e.get("healthy") is False for e in es.values()):
                break
            check(time.monotonic() < deadline, "not every vantage reports eur down: %s" % es)
            time.sleep(0.1)
        table(["vantage", "eur healthy", "reason"],
              [[v, e.get("healthy"), e.get("reason")] for v, e in es.items()])

    def step3(self):
        say("Step 3. eur recovers: its clients move back")
        self.tb.set_member_failing("eur", False)
        bound = self.b.INTERVAL_MS * self.b.RISE / 1000.0 + self.b.PUBLISH_DEBOUNCE_S
        took = self.wait_answers({"eu-west-1": "eur"}, timeout=bound + 10)
        note("eu clients are answered eur again after %.2f s (bound %.1f s)" % (took, bound))
        check(took <= bound * self.slow + 0.5, "eu clients moved back after %.2f s" % took)
        self.visit_table(dict(self.b.HOME))

    def step4(self):
        say("Step 4. eur's API server stops, its backends keep running")
        self.tb.fakes["eur"].stop()
        deadline = time.monotonic() + 15 * self.slow
        while True:
            apis = {v: ((self.health_doc(v) or {}).get("members", {}).get("eur") or {})
                    .get("api") for v in self.b.REGIONS}
            if all(a == "unreachable" for a in apis.values()):
                break
            check(time.monotonic() < deadline,
                  "the vantages do not see eur's API as unreachable: %s" % apis)
            time.sleep(0.1)
        note("every vantage reports eur's API unreachable; sampling answers for 2 s ...")
        t_end = time.monotonic() + 2.0
        seen = set()
        while time.monotonic() < t_end:
            seen.add(tuple(self.tb.answer_ns("eu-west-1", 1)))
            time.sleep(0.1)
        check(seen == {("eur",)}, "eu clients got %s while eur's API was down" % seen)
        self.visit_table(dict(self.b.HOME))
        rows = []
        for v in self.b.REGIONS:
            e = self.entry(v, "eur")
            rows.append([v, (self.health_doc(v) or {}).get("members", {}).get("eur", {})
                         .get("api"), e.get("healthy"), e.get("reason")])
        table(["vantage", "eur api", "eur healthy", "reason"], rows)
        for v in self.b.REGIONS:
            check(self.entry(v, "eur").get("healthy") is True,
                  "vantage %s calls eur down after the API loss" % v)
        self.tb.fakes["eur"].start()
        note("eur's API server is back.")

    def proxy_backends(self):
        doc = self.tb.proxy_state() or {}
        found = []

        def walk(x):
            if isinstance(x, dict):
                if "address" in x and ("check" in x or "ejected" in x):
                    found.append(x)
                for v in x.values():
                    walk(v)
            elif isinstance(x, list):
                for v in x:
                    walk(v)
        walk(doc)
        return found, doc

    def step5(self):
        say("Step 5. jpn has no load balancer: fedgslb-proxy forwards to its nodePort backends")
        want = sorted("%s:%d" % (ip, self.tb.node_port) for ip in self.b.NODE_IPS)
        deadline = time.monotonic() + 15 * self.slow
        while True:
            bes, doc = self.proxy_backends()
            if sorted(b["address"] for b in bes) == want:
                break
            check(time.monotonic() < deadline,
                  "fedgslb-proxy did not learn jpn's backends %s from the state documents: %s"
                  % (want, json.dumps(doc)[:1500]))
            time.sleep(0.1)
        note("fedgslb-proxy (%s:%d, reached as jpn's address %s) learned from the vantages:"
             % (self.b.PROXY_IP, self.tb.port, self.lb("jpn")))
        table(["backend", "check", "ejected", "outstanding"],
              [[b["address"], b.get("check"), b.get("ejected"), b.get("outstanding")]
               for b in bes])
        self.visit_table(dict(self.b.HOME))
        # A stream of curls from the ap client; after 1 s the node that served
        # the last one dies, and Kubernetes marks it NotReady 1 s later.
        ap = self.clients["ap-northeast-1"]
        results = []
        stop = threading.Event()

        def stream():
            while not stop.is_set():
                t = time.monotonic()
                r = ap.curl(self.lb("jpn"))
                r["t"] = t  # when it started
                results.append(r)

        th = threading.Thread(target=stream, daemon=True)
        t0 = time.monotonic()
        th.start()
        time.sleep(1.0)
        served = [r["hostname"] for r in results if r["status"] == 200]
        victim = served[-1] if served else "jpn-node-1"
        other = [n for n in self.tb.nodes if n != victim][0]
        t_kill = time.monotonic()
        self.tb.nodes[victim].stop()
        note("t=%.1f s: %s's backend (the one serving the stream) killed"
             % (t_kill - t0, victim))
        time.sleep(1.0)
        self.tb.fakes["jpn"].set_node_ready(victim, False)
        note("t=%.1f s: node %s NotReady in jpn's API" % (time.monotonic() - t0, victim))
        time.sleep(2.0)
        stop.set()
        th.join(15)
        before = [r for r in results if r["t"] < t_kill]
        after = [r for r in results if r["t"] >= t_kill]
        failed = [r for r in results if r["status"] != 200]

        def hosts(rs):
            out = {}
            for r in rs:
                out[r["hostname"]] = out.get(r["hostname"], 0) + 1
            return " ".join("%s:%d" % kv for kv in sorted(out.items(), key=str))
        table(["curls from ap-northeast-1", "count", "failed", "served by"],
              [["started before the kill", len(before), sum(r["status"] != 200 for r in before),
                hosts(before)],
               ["started after the kill", len(after), sum(r["status"] != 200 for r in after),
                hosts(after)]])
        check(len(results) >= 10, "only %d curls ran" % len(results))
        check(not failed, "%d of %d curls failed, e.g. %s" % (len(failed), len(results),
                                                              failed[0] if failed else None))
        late = [r for r in after if r["t"] > t_kill + 0.2]
        check(late and all(r["hostname"] == other for r in late),
              "after the kill, requests went to %s" % hosts(late))
        # The node comes back.
        ip = self.b.NODE_IPS[int(victim.rsplit("-", 1)[1]) - 1]
        be = self.b.HelloBackend(ip, self.tb.node_port, victim, self.b.ZONE_OF["jpn"]).start()
        self.tb.nodes[victim] = self.tb.backends[victim] = be
        self.tb.fakes["jpn"].set_node_ready(victim, True)
        note("%s is back and Ready." % victim)

    def step6(self):
        say("Step 6. Everything fails: the fail-open answer")
        for m in ("usa", "eur", "jpn"):
            self.tb.set_member_failing(m, True)
        everyone = ["eur", "jpn", "usa"]
        took = self.wait_answers({r: everyone for r in self.b.REGIONS}, timeout=15)
        note("after %.1f s every client gets every member (all_down: fail-open), TTL %s s"
             % (took, self.ttl_of("us-east-1")))
        rows = []
        for r in self.b.REGIONS:
            v = self.clients[r].visit()
            h = v["http"] or {}
            rows.append([r, " ".join(self.member_of_ip(a) for a in v["ns1"]),
                         " ".join(self.member_of_ip(a) for a in v["ns2"]),
                         "%s %s" % (h.get("status"), h.get("hostname") or "")])
        table(["client", "ns1 answer", "ns2 (ECS)", "curl (backends answer 500)"], rows)
        counts = {}
        for name, ctl in (("ns1", self.tb.ctl), ("ns2", self.tb.ctl2)):
            counts[name] = sum(v for n, labels, v in ctl.metrics()
                               if n == "fedgslb_dns_fail_open_total"
                               and labels.get("service") == "default/web")
        note("metrics: fedgslb_dns_fail_open_total{service=\"default/web\"} ns1=%d ns2=%d"
             % (counts["ns1"], counts["ns2"]))
        check(counts["ns1"] >= 1 and counts["ns2"] >= 1, "fail-open not counted: %s" % counts)
        st, ex = self.tb.ctl.explain(self.b.WEB, self.tb.net.client_source["eu-west-1"])
        d = (ex.get("decision") or {}) if isinstance(ex, dict) else {}
        dd = d.get("decision") or {}
        note("explain (eu client): rule: %s -> %s, ttl %s (%s)"
             % (dd.get("rule"), ",".join(dd.get("chosen") or []), dd.get("ttl"),
                dd.get("ttl_reason")))
        check(st == 200 and "fail" in json.dumps(d).lower(),
              "explain does not show the fail-open: %s" % json.dumps(ex)[:800])
        for m in ("usa", "eur", "jpn"):
            self.tb.set_member_failing(m, False)
        took = self.wait_answers(dict(self.b.HOME), timeout=15)
        note("backends fixed: every client is home again after %.1f s" % took)

    def run_ctl(self, *args):
        argv = [self.ctl_exe, "--config", self.tb.ctl_config()] + list(args)
        p = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return p.returncode, p.stdout, p.stderr

    def step7(self):
        say("Step 7. The operator's view: fedgslbctl against the running testbed")
        deadline = time.monotonic() + 15 * self.slow
        while True:  # let every vantage settle (no pending verdicts) first
            es = [self.entry(v, m) for v in self.b.REGIONS for m in ("usa", "eur", "jpn")]
            if all(e.get("healthy") is True and not e.get("pending") for e in es):
                break
            check(time.monotonic() < deadline, "the vantages do not settle: %s" % es)
            time.sleep(0.1)
        time.sleep(self.b.chain.PUBLISH_INTERVAL_MS / 1000.0)
        print("  $ fedgslbctl status")
        rc, out, err = self.run_ctl("status")
        print("\n".join("    " + l for l in out.rstrip().splitlines()))
        check(rc == 0, "fedgslbctl status exited %d: %s" % (rc, err.strip()))
        rc, js, err = self.run_ctl("status", "--json")
        check(rc == 0, "fedgslbctl status --json exited %d: %s" % (rc, err.strip()))
        json.loads(js)
        for m in ("usa", "eur", "jpn"):
            check(m in out, "status does not show member %s" % m)
        lines = out.splitlines()
        got = {}
        for i, l in enumerate(lines[:-1]):
            if l.split()[:1] == ["SERVICE"] and all(r in l.split() for r in self.b.REGIONS):
                row = lines[i + 1].split()
                got = dict(zip(l.split()[1:], row[1:]))
        check(got == dict(self.b.HOME),
              "status says regions get %s, expected %s" % (got, dict(self.b.HOME)))
        client = self.tb.net.client_source["eu-west-1"]
        print("\n  $ fedgslbctl explain %s --client %s" % (self.b.WEB_HOST, client))
        rc, out, err = self.run_ctl("explain", self.b.WEB_HOST, "--client", client)
        print("\n".join("    " + l for l in out.rstrip().splitlines()))
        check(rc == 0, "fedgslbctl explain exited %d: %s" % (rc, err.strip()))
        check("eur" in out and "eu-west-1" in out, "explain does not name eur / eu-west-1")
        print("\n  $ fedgslbctl explain %s --region ap-northeast-1" % self.b.WEB_HOST)
        rc, out, err = self.run_ctl("explain", self.b.WEB_HOST, "--region", "ap-northeast-1")
        print("\n".join("    " + l for l in out.rstrip().splitlines()))
        check(rc == 0, "fedgslbctl explain --region exited %d: %s" % (rc, err.strip()))
        check("jpn" in out, "explain for ap-northeast-1 does not name jpn")
        if self.tb.cluster is not None:
            self.etcd_view()

    def etcd_view(self):
        """The distributed mode: what fedgslbctl says of etcd and its consumers."""
        deadline = time.monotonic() + 10 * self.slow
        agreed = "agreement: every consumer holds the same keys at the same revisions"
        while True:
            # The three consumers (ns1, ns2, the proxy) registered and
            # agreeing, in the JSON and in the text: the vantages' heartbeats
            # keep writing, so one snapshot can fall between two consumers
            # applying the same revision; both are asked again until they agree.
            rc, js, err = self.run_ctl("status", "--json")
            rep = json.loads(js).get("etcd", {}) if rc == 0 else {}
            rc, out, err = self.run_ctl("status")
            if rep.get("agree") and len(rep.get("consumers", [])) == 3 and agreed in out:
                break
            check(time.monotonic() < deadline,
                  "the consumers do not agree through etcd: %s\n%s"
                  % (json.dumps(rep)[:1500], out[-1500:]))
            time.sleep(0.2)
        lines = out.splitlines()
        note("etcd: %d members answer, consumers ns1, ns2 and the proxy agree (above)"
             % rep.get("healthy", 0))
        check("3 of 3 members answer" in out, "not every etcd member answers")
        check(sum(1 for l in lines if l.startswith("proxy@")) == 1 and
              sum(1 for l in lines if l.startswith("dnsd@")) == 2,
              "ns1, ns2 and the proxy are not all registered")

    def wait_both(self, region, want, timeout):
        """Polls ns1 and ns2 for @region until both answer [@want]; seconds taken."""
        return self.wait_answers({region: want}, timeout=timeout)

    def show(self, argv_text, rc, out, err):
        print("  $ fedgslbctl %s" % argv_text)
        print("\n".join("    " + l for l in (out.rstrip() or err.rstrip()).splitlines()))
        if out.strip() and err.strip():
            print("\n".join("    " + l for l in err.rstrip().splitlines()))
        note("(exit status %d)" % rc)

    def agreement_rows(self, out):
        """{instance: agrees} from status's agreement table (the etcd tables of the
        distributed mode follow it after a blank line)."""
        rows, on = {}, False
        for l in out.splitlines():
            cells = l.split()
            if cells[:1] == ["INSTANCE"]:
                on = True
            elif on and not cells:
                break
            elif on and len(cells) == 5:
                rows[cells[0]] = cells[-1]
        return rows

    def step8(self):
        say("Step 8. One truth for both name servers: an operator intent, and one that is missed")
        rc, out, err = self.run_ctl("status")
        rows = self.agreement_rows(out)
        print("  $ fedgslbctl status   (its last lines)")
        print("\n".join("    " + l for l in out.rstrip().splitlines()[-6:]))
        check(rc == 0 and rows.get("ns1") == "yes" and rows.get("ns2") == "yes",
              "status does not show ns1 and ns2 agreeing (exit %d): %s" % (rc, rows))
        if self.tb.cluster is not None:
            return self.step8_etcd()
        t0 = time.monotonic()
        rc, out, err = self.run_ctl("drain", "eur", "--reason", "demo: eur maintenance")
        took = self.wait_both("eu-west-1", "usa", timeout=10)
        total = time.monotonic() - t0
        self.show("drain eur --reason 'demo: eur maintenance'", rc, out, err)
        check(rc == 0, "fedgslbctl drain exited %d: %s" % (rc, err.strip()))
        check(out.count("added") >= 3, "drain did not reach ns1, ns2 and the proxy: %s" % out)
        note("from running fedgslbctl drain to both name servers answering eu clients usa: "
             "%.0f ms (%.0f ms of it polling after fedgslbctl returned)" % (total * 1000,
                                                                           took * 1000))
        self.intent_ms = total * 1000
        note("stopping ns2, then undraining eur while it is down ...")
        self.tb.stop_ns2()
        rc, out, err = self.run_ctl("undrain", "eur")
        self.show("undrain eur", rc, out, err)
        check(rc == 2 and "unreachable" in out, "undrain with ns2 down: exit %d, %s" % (rc, out))
        self.wait_answers({"eu-west-1": "eur"}, timeout=10, both=False)
        note("ns2 starts again from its state file, which still has the drain:")
        self.tb.start_ns2()
        check(self.tb.answer_ns("eu-west-1", 2) == ["usa"],
              "ns2 after its restart answers eu clients %s, expected usa (still drained)"
              % self.tb.answer_ns("eu-west-1", 2))
        check(self.tb.answer_ns("eu-west-1", 1) == ["eur"], "ns1 no longer answers eur")
        rc, out, err = self.run_ctl("status")
        print("  $ fedgslbctl status   (its last lines)")
        print("\n".join("    " + l for l in out.rstrip().splitlines()[-6:]))
        note("(exit status %d)" % rc)
        rows = self.agreement_rows(out)
        check(rc == 4 and rows.get("ns2") == "NO" and "DISAGREE" in out
              and "ns2 holds intent drain-eur-" in out,
              "status does not show ns2 disagreeing (exit %d): %s" % (rc, out[-800:]))
        rc, out, err = self.run_ctl("intent", "sync")
        self.show("intent sync", rc, out, err)
        check(rc == 0, "intent sync exited %d: %s" % (rc, err.strip()))
        self.agreed_again("after intent sync", 4)

    def agreed_again(self, when, tail):
        """Step 8's end: eu clients home, status shows every instance agreeing
        (its last @tail lines), then the visit table."""
        self.wait_both("eu-west-1", "eur", timeout=10)
        rc, out, err = self.run_ctl("status")
        rows = self.agreement_rows(out)
        print("  $ fedgslbctl status   (its last lines)")
        print("\n".join("    " + l for l in out.rstrip().splitlines()[-tail:]))
        check(rc == 0 and rows == {"ns1": "yes", "ns2": "yes", "px": "yes"},
              "%s status says %s (exit %d)" % (when, rows, rc))
        self.visit_table(dict(self.b.HOME))

    def step8_etcd(self):
        """Step 8 in the distributed mode: fedgslbctl writes the intent to etcd,
        and a name server that was down when it was removed relists it."""
        t0 = time.monotonic()
        rc, out, err = self.run_ctl("drain", "eur", "--reason", "demo: eur maintenance")
        took = self.wait_both("eu-west-1", "usa", timeout=10)
        total = time.monotonic() - t0
        self.show("drain eur --reason 'demo: eur maintenance'", rc, out, err)
        check(rc == 0 and "written at revision" in out,
              "fedgslbctl drain did not write to etcd (exit %d): %s" % (rc, out + err))
        note("from running fedgslbctl drain to both name servers answering eu clients usa "
             "through etcd: %.0f ms (%.0f ms of it polling after fedgslbctl returned)"
             % (total * 1000, took * 1000))
        self.intent_ms = total * 1000
        note("stopping ns2, then undraining eur while it is down ...")
        self.tb.stop_ns2()
        rc, out, err = self.run_ctl("undrain", "eur")
        self.show("undrain eur", rc, out, err)
        check(rc == 0 and "removed at revision" in out,
              "undrain with ns2 down: exit %d, %s" % (rc, out + err))
        self.wait_answers({"eu-west-1": "eur"}, timeout=10, both=False)
        note("ns2 starts again: it lists etcd, finds the removal and answers eur:")
        self.tb.start_ns2()
        self.agreed_again("after ns2's restart", 6)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--once", action="store_true", help="run the scenario and exit")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build"))
    ap.add_argument("--loopback", action="store_true",
                    help="do not use network namespaces even when available")
    ap.add_argument("--time-limit", type=float, default=170.0,
                    help="fail when the scenario takes longer (s)")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the work directory")
    ap.add_argument("--etcd", action="store_true",
                    help="the distributed mode: documents through a three-node etcd cluster")
    ap.add_argument("--drain", metavar="MEMBER",
                    help="drain MEMBER on ns1 before step 1 (then step 1 must fail: a test "
                         "that the checks catch a wrong answer)")
    a = ap.parse_args()

    build = os.path.abspath(a.build_dir)
    for exe in ("fedgslb-dnsd", "fedgslb-health", "fedgslb-proxy", "fedgslbctl"):
        if not os.access(os.path.join(build, exe), os.X_OK):
            print("testbed: %s/%s is not built (scripts/build.sh %s)" % (build, exe, build),
                  file=sys.stderr)
            return 2
    for tool in ("dig", "curl"):
        if shutil.which(tool) is None:
            print("testbed: %s is missing (apt-get install dnsutils curl)" % tool,
                  file=sys.stderr)
            return 2
    if a.etcd and shutil.which("etcd") is None:
        print("testbed: --etcd needs etcd (apt-get install etcd-server; scripts/deps.sh does)",
              file=sys.stderr)
        return 2
    os.environ["FEDGSLB_BUILD_DIR"] = build
    sys.path.insert(0, HERE)
    import bed  # noqa: E402  (reads FEDGSLB_BUILD_DIR at import)

    tmp = tempfile.mkdtemp(prefix="fedgslb-testbed-")
    tb = None
    net = None
    state = {"closed": False, "step": 0}

    def cleanup():
        if state["closed"]:
            return
        state["closed"] = True
        if tb is not None:
            for p in tb.close():
                print("testbed: teardown: %s" % p, file=sys.stderr)
        if net is not None:
            net.teardown()

    def on_signal(sig, frame):
        raise SystemExit(128 + sig)

    def on_alarm(sig, frame):
        raise TimeLimit("the scenario exceeded its time limit of %.0f s" % a.time_limit)

    atexit.register(cleanup)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
    why = "--loopback given" if a.loopback else bed.NetnsNet.problem()
    if why is None:
        try:
            net = bed.NetnsNet().setup()
        except (RuntimeError, OSError, subprocess.SubprocessError) as e:
            net = None
            why = "setting them up failed: %s" % e
    if net is None:
        say("network namespaces not available (%s): running on loopback with source "
            "addresses standing in for client location" % why)
    else:
        say("network namespaces %s: each region's client runs inside its namespace, "
            "linked by veth to the bridge %s (%s)"
            % (", ".join(net.NS[r] for r in bed.REGIONS), net.BRIDGE, net.HOST_IP))
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(int(a.time_limit))
    ok = False
    t_start = time.monotonic()
    try:
        say("Starting the federation: 3 member API servers, 6 backends, 3 WAN relays, "
            "fedgslb-proxy, 2 x fedgslb-dnsd, 3 x fedgslb-health"
            + (", a 3-node etcd cluster" if a.etcd else ""))
        tb = bed.Testbed(tmp, net, etcd=a.etcd)
        tb.start()
        if a.etcd:
            note("distributed mode: the vantages write to etcd (%s); ns1, ns2 and the proxy "
                 "watch it; no vantage names a consumer" % " ".join(tb.cluster.endpoints))
        rows = []
        for m in ("usa", "eur", "jpn"):
            region = bed.MEMBER_REGION[m]
            if m == "jpn":
                lb = "%s (fedgslb-proxy %s) -> nodes %s :%d" % (
                    tb.lb_ip[m], bed.PROXY_IP, " ".join(bed.NODE_IPS), tb.node_port)
            else:
                lb = "%s (native LB) -> %s" % (tb.lb_ip[m], " ".join(bed.BACKEND_IPS[m]))
            rows.append([m, region, tb.fakes[m].url, lb])
        table(["member", "region", "API server (kubeconfig context = member)",
               "load balancer -> backends"], rows)
        note("name servers: ns1 %s:%d, ns2 %s:%d; service port %d; work dir %s"
             % (tb.net.dns_host, tb.dns_port, tb.net.dns_host, tb.ns2_dns_port, tb.port, tmp))
        note("clients: " + ", ".join("%s in %s or ECS %s" % (bed.SHORT[r], tb.net.where(r),
                                                              bed.CLIENT_ECS[r])
                                     for r in bed.REGIONS))
        note("added RTT (ms): within a region 20, US-EU 80, US-JP 150, EU-JP 220")
        note("status pages (open in a browser): ns1 %s/ui/, ns2 %s/ui/, proxy %s/ui/"
             % (tb.ns1_url, tb.ns2_url, tb.proxy_url))
        note("every daemon runs from one deployment file, %s: fedgslb-dnsd --instance ns1 / "
             "ns2, fedgslb-health --instance <region>, fedgslb-proxy --instance px"
             % tb.deployment_path)
        sc = Scenario(bed, tb, os.path.join(build, "fedgslbctl"))
        if a.drain:
            st, _ = tb.ctl.drain(a.drain)
            note("(--drain: %s drained on ns1: %s)" % (a.drain, st))
        for n in range(1, 9):
            state["step"] = n
            getattr(sc, "step%d" % n)()
            note("step %d ok" % n)
        signal.alarm(0)
        ok = True
        say("testbed: every step behaved as stated (%.0f s)" % (time.monotonic() - t_start))
        if not a.once and sys.stdin.isatty():
            say("The testbed is still up. Try, e.g.:")
            c = bed.Client(tb, "eu-west-1")
            note(" ".join(c.dig_argv(1)))
            note(" ".join("'%s'" % x if "%" in x or "\n" in x else x
                          for x in c.curl_argv(tb.lb_ip["eur"])))
            note("%s --config %s status" % (sc.ctl_exe, tb.ctl_config()))
            note("status page: %s/ui/" % tb.ns1_url)
            note("Ctrl-C stops everything.")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    except (StepFailed, TimeLimit, AssertionError, RuntimeError, OSError) as e:
        signal.alarm(0)
        what = "step %d FAILED: %s" % (state["step"], e) if state["step"] else \
            "testbed FAILED to start: %s" % e
        say(what)
        if tb is not None:
            print(tb.logs()[-6000:], file=sys.stderr)
        print(what, file=sys.stderr)
    except KeyboardInterrupt:
        signal.alarm(0)
        say("interrupted")
    finally:
        signal.alarm(0)
        cleanup()
        if ok and not a.keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.isdir(tmp):
            print("testbed: logs and configs kept in %s" % tmp, file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
