# SPDX-License-Identifier: Apache-2.0
"""The status page of a name server in a deployment, in a real browser: two
real fedgslb-dnsd from one deployment file; the page says they agree; an
intent pushed to one of them only (PUT /v1/intents straight to ns1) makes
ns1's page say ns2 differs (and how), and list the intent with its author,
reason and the count by kind. Screenshots land in
$FEDGSLB_BUILD_DIR/artifacts/ui/ (the test prints the paths)."""

import browser
from uibed import drain_intent

INTENT = drain_intent("drain-jpn-page", reason="kernel upgrade")


def shot(drv, name):
    return browser.shot(drv, "dnsd-peers-" + name)


def seen(drv):
    return drv.execute_script("""
        const chip = document.getElementById('agree-chip');
        const q = (s) => Array.from(document.querySelectorAll(s));
        return {
          agree: chip ? chip.dataset.agree : null,
          text: chip ? chip.textContent : null,
          peers: Object.fromEntries(q('#peers tr[data-agrees]').map(tr => [tr.dataset.peer, tr.dataset.agrees])),
          differences: q('#differences li').map(li => li.textContent),
          intents: q('#intents tr[data-intent]').map(tr => tr.textContent),
          counts: JSON.parse(document.getElementById('intent-counts').dataset.counts || '{}'),
        };""")


def wait_for(drv, pred, what):
    """seen(drv) once pred holds for it."""
    return browser.wait_for(drv, lambda: next((s for s in [seen(drv)] if pred(s)), None), what,
                            timeout=20, prefix="dnsd-peers")


def test_page_shows_agreement_and_intents(fleet, drv):
    drv.get(fleet.url("ns1") + "/ui/")
    s = wait_for(drv, lambda s: s["agree"] == "true", "the page to say the name servers agree")
    assert s["text"] == "all 2 name servers agree", s
    assert s["peers"] == {"ns2": "yes"} and s["differences"] == [] and s["intents"] == []
    shot(drv, "1-agree")

    st, body = fleet.put_intent("ns1", INTENT)
    assert st == 200, body
    s = wait_for(drv, lambda s: s["agree"] == "false", "the page to show the disagreement")
    assert "differs: ns2" in s["text"], s
    assert s["peers"] == {"ns2": "NO"}, s
    assert any("ns2 misses intent drain-jpn-page" in d for d in s["differences"]), s
    assert s["counts"] == {"drain": 1}, s
    [row] = s["intents"]
    assert "drain" in row and "jpn" in row and "alice" in row and "kernel upgrade" in row, row
    shot(drv, "2-ns2-differs")

    fleet.stop("ns2")
    s = wait_for(drv, lambda s: s["peers"].get("ns2") == "?", "ns2 shown unreachable")
    assert "unreachable: ns2" in s["text"], s
    shot(drv, "3-ns2-down")
