# SPDX-License-Identifier: Apache-2.0
"""fedgslb-proxy honours the operator's intents for the member it stands in
for: forced down, requests get 503 (no backend); drained, it keeps serving
the clients DNS sent before; the intents survive a restart (state file) and
removing one gives the backends back. Real proxy, real HTTP, /v1/intents."""

import proxy_harness as ph
from fedtest import TOKEN, finish, http

META = {"author": "test", "reason": "proxy intents", "created_at": "2026-11-21T06:00:00Z"}


def put_intent(p, intent):
    return http(p.ctl_port, "PUT", "/v1/intents/" + intent["id"], body=intent, token=TOKEN)


def listener_admin(p):
    st, doc = http(p.ctl_port, "GET", "/v1/state")
    assert st == 200, doc
    return doc["listeners"][0]["admin"]


def test_force_down_and_drain(tmp_path):
    be = ph.Backend("b1").start()
    p = ph.start_proxy(tmp_path, [be])
    try:
        assert ph.get(p.port, "/")[0] == 200
        drain = dict(META, id="drain-jpn-1", kind="drain", member="jpn")
        st, body = put_intent(p, drain)
        assert st == 200 and body["changed"] is True, body
        assert ph.get(p.port, "/")[0] == 200  # drained: still served
        assert listener_admin(p).startswith("drained")
        st, body = http(p.ctl_port, "DELETE", "/v1/intents/drain-jpn-1?by=t", token=TOKEN)
        assert st == 200, body
        down = dict(META, id="down-jpn-1", kind="force-down", member="jpn")
        assert put_intent(p, down)[0] == 200
        assert ph.get(p.port, "/")[0] == 503
        assert listener_admin(p) == "forced down: 503"
        # The same again changes nothing; the id with other content is refused.
        st, body = put_intent(p, down)
        assert st == 200 and body["changed"] is False
        st, body = put_intent(p, dict(down, reason="other"))
        assert st == 409, body
        # No token: refused before anything changes.
        st, _ = http(p.ctl_port, "PUT", "/v1/intents/x", body=dict(META, id="x", kind="drain",
                                                                   member="jpn"))
        assert st == 401
        # Survives a restart (the state file).
        finish(p)
        p = ph.start_proxy(tmp_path, [be])  # the same state file, proxy-state.json
        assert ph.get(p.port, "/")[0] == 503
        st, doc = http(p.ctl_port, "GET", "/v1/intents")
        assert [i["id"] for i in doc["intents"] if i["status"] == "active"] == ["down-jpn-1"], doc
        assert doc["digest"]["active_intents"] == ["down-jpn-1"]
        st, body = http(p.ctl_port, "DELETE", "/v1/intents/down-jpn-1", token=TOKEN)
        assert st == 200, body
        assert ph.get(p.port, "/")[0] == 200
        st, metrics = http(p.ctl_port, "GET", "/metrics")
        assert 'fedgslb_intents{kind="force-down"} 0' in metrics
        assert "fedgslb_state_digest_info{" in metrics
    finally:
        finish(p)
        be.stop()
