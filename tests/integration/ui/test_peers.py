# SPDX-License-Identifier: Apache-2.0
"""GET /v1/peers of real name servers of one deployment file: dnsd asks
the other name servers for their digest (from its main loop, cached a few
seconds) and says whether they agree; an intent held by one only makes
them differ, naming the intent; a stopped one is unreachable; reads need
the token like every read route."""

import time

import fedtest
from uibed import PeerBed, drain_intent

INTENT = drain_intent("drain-jpn-peers")


def wait_peers(fleet, name, pred, what, timeout=15):
    deadline = time.monotonic() + timeout * fedtest.SLOW
    doc = None
    while time.monotonic() < deadline:
        doc = fleet.peers(name)
        if not doc.get("pending") and pred(doc):
            return doc
        time.sleep(0.2)
    raise AssertionError("timed out waiting for %s; last /v1/peers: %r" % (what, doc))


def test_agree_differ_down(fleet):
    doc = wait_peers(fleet, "ns1", lambda d: d["agree"], "ns1 and ns2 to agree")
    assert doc["self"]["name"] == "ns1"
    [p] = doc["peers"]
    assert p["name"] == "ns2" and p["reachable"] and p["agrees"], p
    assert p["address"] == fleet.url("ns2")
    assert p["digest"]["state"] == doc["self"]["digest"]["state"]
    assert doc["differences"] == []

    st, body = fleet.put_intent("ns1", INTENT)
    assert st == 200, body
    doc = wait_peers(fleet, "ns1", lambda d: not d["agree"], "ns1 to see ns2 differ")
    [p] = doc["peers"]
    assert p["reachable"] and not p["agrees"], p
    assert not doc["intents_agree"]
    assert any("ns2 misses intent drain-jpn-peers" in d for d in doc["differences"]), doc
    # and ns2 sees the same from its side
    doc2 = wait_peers(fleet, "ns2", lambda d: not d["agree"], "ns2 to see ns1 differ")
    assert any("holds intent drain-jpn-peers" in d or "misses intent drain-jpn-peers" in d
               for d in doc2["differences"]), doc2

    fleet.put_intent("ns2", INTENT)
    wait_peers(fleet, "ns1", lambda d: d["agree"], "agreement again after ns2 got the intent")

    fleet.stop("ns2")
    doc = wait_peers(fleet, "ns1", lambda d: not d["peers"][0]["reachable"], "ns2 unreachable")
    p = doc["peers"][0]
    assert not doc["agree"] and not p["agrees"] and p["error"], p
    assert "digest" not in p or p["digest"] is None
    assert any("ns2 did not answer" in d for d in doc["differences"]), doc


def test_peers_needs_token(fleet):
    st, _ = fedtest.http(fleet.ports["ns1"][1], "GET", "/v1/peers")
    # loopback without a token: the same rule as the other read routes
    st_members, _ = fedtest.http(fleet.ports["ns1"][1], "GET", "/v1/members")
    assert st == st_members
    st, _ = fedtest.http(fleet.ports["ns1"][1], "GET", "/v1/peers", token="wrong-token")
    assert st == 401


def test_without_deployment(tmp_path):
    """One dnsd, no deployment: no peer, nothing asked, agreement with itself."""
    d = fedtest.start_dnsd(str(tmp_path))
    try:
        st, doc = fedtest.http(d.ctl_port, "GET", "/v1/peers", token=fedtest.TOKEN)
        assert st == 200, doc
        assert doc["peers"] == [] and doc["agree"] is True and not doc.get("pending"), doc
        assert doc["self"]["name"] == "self" and doc["self"]["digest"]["state"]
    finally:
        fedtest.finish(d)


def test_hostile_peer(tmp_path):
    """ns2's control address held by a server that answers junk, then not at
    all: ns1 says why, bounded by its timeout, and keeps answering."""
    import http.server
    import threading

    mode = {"what": "junk"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if mode["what"] == "hang":
                time.sleep(4)  # longer than DNS_PEERS_TIMEOUT_MS
                return
            body = b"{not json" if mode["what"] == "junk" else b'{"digest": 5}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    f = PeerBed(tmp_path)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", f.ports["ns2"][1]), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        f.start("ns1")
        doc = wait_peers(f, "ns1", lambda d: d["peers"][0]["error"] == "GET /v1/intents: not JSON",
                         "ns1 to say ns2's answer is not JSON")
        assert not doc["agree"] and not doc["peers"][0]["reachable"], doc
        mode["what"] = "nodigest"
        wait_peers(f, "ns1", lambda d: d["peers"][0]["error"] == "GET /v1/intents: no digest",
                   "ns1 to say ns2's answer has no digest")
        mode["what"] = "hang"
        doc = wait_peers(f, "ns1", lambda d: "timed out" in (d["peers"][0]["error"] or "").lower()
                         or "timeout" in (d["peers"][0]["error"] or "").lower(),
                         "ns1 to time ns2 out")
        assert doc["peers"][0]["age_ms"] < 60000, doc
        # the control API kept answering meanwhile
        st, _ = fedtest.http(f.ports["ns1"][1], "GET", "/healthz")
        assert st == 200
    finally:
        f.close()
        srv.shutdown()
        srv.server_close()
