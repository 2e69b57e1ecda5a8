# SPDX-License-Identifier: Apache-2.0
"""The status page (/ui/) in a real browser: dnsd fed by pushed documents
from three vantages; the page must show every member healthy, then the one
that fails down with the client regions moved away from it, then healthy
again, without a reload (it polls). Screenshots land in
$FEDGSLB_BUILD_DIR/artifacts/ui/ (the test prints the paths)."""

import os

import pytest

import browser
import fedtest
from uibed import UiBed


@pytest.fixture
def bed(tmp_path):
    b = UiBed(tmp_path).start()
    try:
        yield b
    finally:
        b.close()


def wait_for(drv, pred, what, timeout=15):
    return browser.wait_for(drv, pred, what, timeout)


def shot(drv, name):
    return browser.shot(drv, "dnsd-" + name)


def dom(drv):
    """What the page shows, read from the DOM by the browser."""
    return drv.execute_script("""
        const q = (s) => Array.from(document.querySelectorAll(s));
        return {
          members: Object.fromEntries(q('#map g.member').map(g => [g.dataset.member, {
              verdict: g.dataset.verdict, cls: g.getAttribute('class'),
              fill: getComputedStyle(g.querySelector('circle')).fill,
              tip: g.querySelector('title').textContent}])),
          answers: Object.fromEntries(q('#answers tr[data-service]').map(tr => [tr.dataset.service,
              Object.fromEntries(Array.from(tr.querySelectorAll('td[data-region]')).map(td =>
                  [td.dataset.region, {member: td.dataset.member || null,
                                       failOpen: td.classList.contains('fail-open'),
                                       text: td.textContent}]))])),
          verdicts: Object.fromEntries(q('#verdicts tr[data-service]').map(tr => [tr.dataset.service,
              Object.fromEntries(Array.from(tr.querySelectorAll('td[data-member]')).map(td =>
                  [td.dataset.member, td.dataset.verdict]))])),
          routes: q('#map path.route').map(p => p.dataset.region + '>' + p.dataset.member),
          rtt: Object.fromEntries(q('#rtt tr[data-vantage]').map(tr => [tr.dataset.vantage,
              Object.fromEntries(Array.from(tr.querySelectorAll('td')).map(td =>
                  [td.dataset.member, td.textContent]))])),
          vantages: q('#vantages tr[data-vantage]').map(tr => [tr.dataset.vantage, tr.className]),
          status: document.getElementById('status').textContent,
          summary: document.getElementById('summary').textContent,
          serial: document.body.dataset.serial || null,
        };""")


GREEN, RED = "rgb(46, 158, 79)", "rgb(210, 52, 42)"


def test_page_follows_a_member_failure(bed, drv):
    drv.get(bed.base_url + "/ui")  # the redirect to /ui/ too
    assert drv.current_url.endswith("/ui/")
    d = wait_for(drv, lambda: (lambda x: x if len(x["members"]) == 3 and x["status"] == "live"
                               else None)(dom(drv)), "the page to load")
    assert {m: v["verdict"] for m, v in d["members"].items()} == {
        "usa": "healthy", "eur": "healthy", "jpn": "healthy"}, d
    assert all(v["fill"] == GREEN for v in d["members"].values()), d["members"]
    # Each client region gets its own member for the global name.
    web = d["answers"]["default/web"]
    assert {r: c["member"] for r, c in web.items()} == {
        "us-east-1": "usa", "eu-west-1": "eur", "ap-northeast-1": "jpn"}, web
    assert not any(c["failOpen"] for c in web.values())
    # The vantages' votes are on hover; the RTT matrix is the measured one.
    assert "us-east-1: up (probe ok, 12 ms)" in d["members"]["usa"]["tip"], d["members"]["usa"]
    assert d["rtt"]["eu-west-1"]["eur"] == "9" and d["rtt"]["us-east-1"]["jpn"] == "160", d["rtt"]
    assert sorted(v for v, cls in d["vantages"] if "silent" not in cls) == sorted(
        ["us-east-1", "eu-west-1", "ap-northeast-1"]), d["vantages"]
    assert "no service failing open" in d["summary"]
    shot(drv, "1-healthy")

    # usa fails (every vantage says so): red on the map, us-east-1 moves to eur.
    serial = d["serial"]
    bed.fail("usa")
    d = wait_for(drv, lambda: (lambda x: x if x["members"]["usa"]["verdict"] == "down"
                               and x["serial"] != serial else None)(dom(drv)),
                 "usa to turn down on the page")
    assert d["members"]["usa"]["fill"] == RED and "down" in d["members"]["usa"]["cls"]
    assert d["members"]["eur"]["verdict"] == "healthy"
    assert "us-east-1: DOWN (probe 3/3 failed: connect timeout" in d["members"]["usa"]["tip"]
    web = d["answers"]["default/web"]
    assert web["us-east-1"]["member"] == "eur", web
    assert web["eu-west-1"]["member"] == "eur" and web["ap-northeast-1"]["member"] == "jpn"
    assert d["verdicts"]["default/web"] == {"usa": "down", "eur": "healthy", "jpn": "healthy"}
    assert "us-east-1>eur" in d["routes"], d["routes"]
    shot(drv, "2-usa-down")

    # Everything down for default/web: fail-open is highlighted.
    bed.fail("eur", ["default/web"])
    bed.down["jpn"] = {"default/web"}
    bed.push_all()
    d = wait_for(drv, lambda: (lambda x: x if x["answers"]["default/web"]["us-east-1"]["failOpen"]
                               else None)(dom(drv)), "default/web to fail open")
    assert "failing open: default/web" in d["summary"], d["summary"]
    shot(drv, "3-web-fail-open")

    # Recovery: back to green without a reload.
    bed.recover("usa")
    bed.recover("eur")
    bed.recover("jpn")
    d = wait_for(drv, lambda: (lambda x: x if all(v["verdict"] == "healthy"
                                                  for v in x["members"].values())
                               else None)(dom(drv)), "every member healthy again")
    assert d["answers"]["default/web"]["us-east-1"]["member"] == "usa"
    assert "no service failing open" in d["summary"]


def test_drain_shows_on_the_page(bed, drv):
    st, _ = bed.ctl.drain("jpn")
    assert st == 200
    drv.get(bed.base_url + "/ui/")
    d = wait_for(drv, lambda: (lambda x: x if x["members"].get("jpn", {}).get("verdict") == "draining"
                               else None)(dom(drv)), "jpn to show as draining")
    assert d["answers"]["default/web"]["ap-northeast-1"]["member"] != "jpn"
    assert "jpn" in drv.find_element("id", "drains").text
    shot(drv, "4-jpn-drained")


def test_token_field_is_sent(tmp_path, drv):
    """The page's token field: what is typed goes into sessionStorage and on
    every fetch as a bearer token. A wrong one is refused (401, even where
    reads are open) and the page says so; the right one reads again."""
    b = UiBed(tmp_path).start()
    try:
        drv.get(b.base_url + "/ui/")
        wait_for(drv, lambda: dom(drv)["status"] == "live", "the page to load")
        drv.find_element("id", "token").send_keys("wrong-token")
        drv.find_element("css selector", "#tokenform button[type=submit]").click()
        wait_for(drv, lambda: "401" in drv.find_element("id", "error").text, "a 401 for a wrong token")
        assert drv.execute_script("return sessionStorage.getItem('fedgslb.token')") == "wrong-token"
        tok = drv.find_element("id", "token")
        tok.clear()
        tok.send_keys(fedtest.TOKEN)
        drv.find_element("css selector", "#tokenform button[type=submit]").click()
        wait_for(drv, lambda: dom(drv)["status"] == "live"
                 and not drv.find_element("id", "error").is_displayed(), "the page with the token")
    finally:
        b.close()


def test_health_page_follows_a_probe_failure(tmp_path, drv):
    """fedgslb-health's smaller page (its /v1/state) from the chain harness:
    three fake members with real backends, one vantage."""
    from chain import Chain, entry
    import chain as ch

    c = Chain(tmp_path).start()
    try:
        c.wait_health("us-east-1", lambda d: all(entry(d, m)["healthy"] for m in ch.MEMBER_INDEX),
                      timeout=15, what="every member healthy")
        drv.get("http://127.0.0.1:%d/ui/" % c.health_ports["us-east-1"])

        def verdicts():
            return drv.execute_script("""
                const t = Array.from(document.querySelectorAll('#tables .block')).find(
                    b => b.querySelector('h3').textContent === 'services.default/web.members');
                if (!t) return null;
                return Object.fromEntries(Array.from(t.querySelectorAll('tr[data-name]')).map(
                    tr => [tr.dataset.name, tr.querySelector('td.verdict').dataset.verdict]));""")
        # (pending while the vantage's verdicts may still flip, then healthy)
        got = wait_for(drv, lambda: (lambda v: v if v and set(v.values()) == {"healthy"} else None)(
            verdicts()), "every member healthy on the health page")
        assert sorted(got) == ["eur", "jpn", "usa"], got
        assert "vantage us-east-1" in drv.find_element("id", "fed").text
        drv.save_screenshot(os.path.join(browser.artifacts_dir(), "health-page.png"))
        drv.execute_script("window.scrollTo(0, 0)")
        c.backends["eur"].set_status(500)
        got = wait_for(drv, lambda: (lambda v: v if v and v.get("eur") == "down" else None)(
            verdicts()), "eur down on the health page")
        assert got["usa"] == "healthy" and got["jpn"] == "healthy", got
        path = os.path.join(browser.artifacts_dir(), "health-eur-down.png")
        drv.save_screenshot(path)
        print("screenshot: " + path)
    finally:
        c.close()


def test_proxy_page(tmp_path, drv):
    import proxy_harness as ph
    b = ph.Backend("b1").start()
    p = ph.start_proxy(tmp_path, [b])
    try:
        drv.get("http://127.0.0.1:%d/ui/" % p.ctl_port)
        wait_for(drv, lambda: dom_status(drv) == "live" and drv.find_elements(
            "css selector", "#tables table"), "the proxy page")
        path = os.path.join(browser.artifacts_dir(), "proxy-page.png")
        drv.save_screenshot(path)
        print("screenshot: " + path)
    finally:
        fedtest.finish(p)
        b.stop()


def dom_status(drv):
    return drv.find_element("id", "status").text
