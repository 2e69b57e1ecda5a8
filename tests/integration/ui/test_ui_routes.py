# SPDX-License-Identifier: Apache-2.0
"""The status page's routes at the HTTP level (cm_ui.c): the redirect,
Content-Types, caching, nothing outside the embedded files, the read rule;
and the page asks nothing of any other host."""

import os
import re
import urllib.request

import pytest

import fedtest
from uibed import UiBed

UI_DIR = os.path.join(fedtest.SOURCE_DIR, "common", "ui")


class NoRedirect(urllib.request.HTTPErrorProcessor):
    def http_response(self, request, response):
        return response


def get(port, path, token=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path))
    if token:
        req.add_header("Authorization", "Bearer " + token)
    opener = urllib.request.build_opener(NoRedirect)
    with opener.open(req, timeout=5) as r:
        return r.status, dict(r.headers), r.read()


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    b = UiBed(tmp_path_factory.mktemp("ui")).start()
    yield b
    b.close()


def test_redirect_and_types(bed):
    port = bed.dnsd.ctl_port
    st, h, _ = get(port, "/ui")
    assert st == 302 and h["Location"] == "/ui/", (st, h)
    for path, ctype in (("/ui/", "text/html; charset=utf-8"),
                        ("/ui/dnsd.html", "text/html; charset=utf-8"),
                        ("/ui/ui.css", "text/css; charset=utf-8"),
                        ("/ui/dnsd.js", "text/javascript; charset=utf-8"),
                        ("/ui/common.js", "text/javascript; charset=utf-8")):
        st, h, body = get(port, path)
        assert st == 200 and h["Content-Type"] == ctype, (path, st, h)
        assert h["Cache-Control"] == "private, max-age=60", h
        assert h["X-Content-Type-Options"] == "nosniff"
        assert "default-src 'self'" in h["Content-Security-Policy"]
        assert h.get("Cache-Control", "").count("no-store") == 0
        name = "dnsd.html" if path == "/ui/" else path[4:]
        with open(os.path.join(UI_DIR, name), "rb") as f:
            assert body == f.read(), path  # the file as it is in the repository
    # The JSON routes are still never cached.
    st, h, _ = get(port, "/v1/answers")
    assert st == 200 and h["Cache-Control"] == "no-store"


def test_only_embedded_files(bed):
    port = bed.dnsd.ctl_port
    for path in ("/ui/nope.js", "/ui/../v1/state", "/ui/x/ui.css", "/uix", "/ui//ui.css",
                 "/ui/%2e%2e/etc/passwd", "/ui/embed.cmake"):
        st, h, body = get(port, path)
        assert st in (400, 404), (path, st, body)
    # The page is public (it holds no data); the data routes keep their rules.
    assert get(port, "/ui/", token="wrong-token")[0] == 200
    assert get(port, "/v1/state", token="wrong-token")[0] == 401


def test_assets_fetch_nothing_elsewhere():
    for name in os.listdir(UI_DIR):
        if name.endswith((".html", ".css", ".js", ".svg")):
            with open(os.path.join(UI_DIR, name)) as f:
                text = f.read()
            urls = [u for u in re.findall(r"(?:https?:)?//[a-zA-Z0-9.-]+\.[a-z]{2,}[^\s\"')]*", text)
                    if "www.w3.org/2000/svg" not in u]
            assert not urls, (name, urls)


def test_health_and_proxy_serve_their_page(tmp_path):
    import proxy_harness as ph
    b = ph.Backend("b1").start()
    p = ph.start_proxy(tmp_path, [b])
    try:
        st, h, body = get(p.ctl_port, "/ui/")
        assert st == 200 and b"state.js" in body and h["Content-Type"].startswith("text/html")
    finally:
        fedtest.finish(p)
        b.stop()
