# SPDX-License-Identifier: Apache-2.0
"""Bug h1 smuggling: request (and response) smuggling through fedgslb-proxy.

The real proxy sits in front of tools/lenient_backend.py, which frames
requests like weak real servers (lines end at LF, strtol-like numbers, the
first of duplicate TE/CL, "chunked" anywhere in TE). Each payload goes on an
attacker connection followed by a victim request on the same connection, then
a victim request on a fresh connection that reuses the pooled upstream
connection. Whatever the proxy does, the backend must never parse a request
the proxy did not accept: no /admin or /smuggled path, no more requests than
the proxy answered with 2xx, and every victim gets its own response.
"""

import re
import socket
import threading

import pytest

import proxy_harness as ph
from fedtest import finish, http

from lenient_backend import LenientBackend

SLOW = ph.SLOW
ALLOWED = {"/attack", "/victim", "/victim-same", "/abs", "/p1", "/p2"}
ADMIN = b"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
VICTIM_SAME = b"GET /victim-same HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
VICTIM = b"GET /victim HTTP/1.1\r\nHost: x\r\nCookie: secret=victim\r\nConnection: close\r\n\r\n"


def post(hdrs, body=b"", version=b"HTTP/1.1", path=b"/attack"):
    return b"POST " + path + b" " + version + b"\r\nHost: x\r\n" + hdrs + b"\r\n" + body


def chunked(hdrs=b"", body=b""):
    return post(b"Transfer-Encoding: chunked\r\n" + hdrs, body)


def cl(n):
    return b"Content-Length: %d\r\n" % n


def ext_lf_smuggle():
    """A proxy that reads a bare LF as part of a chunk extension (line ends at
    CRLF) sees one body; a backend ending lines at LF sees /admin after it."""
    inner = b"0\r\n\r\n" + ADMIN
    n = len(inner)
    return b"%x;\n" % n + b"x" * n + b"\r\n" + inner + b"\r\n0\r\n\r\n"


def cr_x_smuggle():
    """A proxy that takes "\\rX" for CRLF after a chunk size (non-strict
    libhttp-parser) sees one body; a backend ending lines at LF reads the data
    from elsewhere and finds /admin."""
    tail = b"\r\n0\r\n\r\n" + ADMIN
    pad = b"p" * 8
    m = len(pad) + len(tail)
    proxy_chunk = b"%x\r\n" % m
    n = len(proxy_chunk) + len(pad)
    return (b"%x\rX" % n + b"x" * n + b"\r\n" + proxy_chunk + pad + tail + b"\r\n0\r\n\r\n")


def trailer_lf_smuggle():
    """A bare LF then an empty line inside a trailer: the end of the message
    for a backend that ends lines at LF, the middle of a field for another."""
    # No Host line in the smuggled request: the proxy would refuse a Host
    # trailer anyway, and the test must show the line ending rule at work.
    return b"0\r\nX: y\n\nGET /admin HTTP/1.1\r\nX-A: 1\r\n\r\n"


# (id, bytes, expected): "reject" = 400 and close; an int = the proxy accepts
# and forwards that many requests of the payload.
CASES = [
    # CL.TE / TE.CL: both framing headers.
    ("cl_te", post(cl(len(b"0\r\n\r\n" + ADMIN)) + b"Transfer-Encoding: chunked\r\n",
                   b"0\r\n\r\n" + ADMIN), "reject"),
    ("te_cl", post(b"Transfer-Encoding: chunked\r\n" + cl(4),
                   b"%x\r\n" % len(ADMIN) + ADMIN + b"\r\n0\r\n\r\n"), "reject"),
    # TE.TE obfuscations.
    ("te_xchunked", post(b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n" + ADMIN), "reject"),
    ("te_xchunked_cl", post(cl(5) + b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n" + ADMIN),
     "reject"),
    ("te_chunked_identity", post(b"Transfer-Encoding: chunked, identity\r\n",
                                 b"0\r\n\r\n" + ADMIN), "reject"),
    ("te_identity_chunked_dup", post(b"Transfer-Encoding: identity\r\n"
                                     b"Transfer-Encoding: chunked\r\n", b"0\r\n\r\n" + ADMIN),
     "reject"),
    ("te_duplicate", post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                          b"0\r\n\r\n" + ADMIN), "reject"),
    ("te_vtab", post(b"Transfer-Encoding:\x0bchunked\r\n", b"0\r\n\r\n" + ADMIN), "reject"),
    ("te_formfeed", post(b"Transfer-Encoding: \x0cchunked\r\n", b"0\r\n\r\n" + ADMIN), "reject"),
    ("te_nul", post(b"Transfer-Encoding: chunked\x00\r\n", b"0\r\n\r\n" + ADMIN), "reject"),
    ("te_space_before_colon", post(b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n" + ADMIN),
     "reject"),
    ("te_obs_fold_name", post(b"X: y\r\n Transfer-Encoding: chunked\r\n", b"0\r\n\r\n" + ADMIN),
     "reject"),
    ("te_quoted", post(b"Transfer-Encoding: \"chunked\"\r\n", b"0\r\n\r\n" + ADMIN), "reject"),
    ("te_empty_element", post(b"Transfer-Encoding: , chunked\r\n", b"0\r\n\r\n" + ADMIN),
     "reject"),
    ("te_http10", post(b"Transfer-Encoding: chunked\r\n", b"0\r\n\r\n" + ADMIN,
                       version=b"HTTP/1.0"), "reject"),
    ("te_in_trailer", chunked(body=b"5\r\nhello\r\n0\r\nTransfer-Encoding: chunked\r\n\r\n"),
     "reject"),
    ("cl_in_trailer", chunked(body=b"0\r\nContent-Length: 40\r\n\r\n" + ADMIN), "reject"),
    # Content-Length shapes.
    ("cl_plus", post(b"Content-Length: +5\r\n", b"hello" + ADMIN), "reject"),
    ("cl_minus", post(b"Content-Length: -1\r\n", ADMIN), "reject"),
    ("cl_list_same", post(b"Content-Length: 5, 5\r\n", b"hello" + ADMIN), "reject"),
    ("cl_list_diff", post(b"Content-Length: 0, 40\r\n", ADMIN), "reject"),
    ("cl_dup_diff", post(cl(0) + cl(len(ADMIN)), ADMIN), "reject"),
    ("cl_dup_same", post(cl(0) + cl(0), ADMIN), "reject"),
    ("cl_hex", post(b"Content-Length: 0x5\r\n", b"hello" + ADMIN), "reject"),
    ("cl_huge", post(b"Content-Length: 99999999999999999999999\r\n", ADMIN), "reject"),
    ("cl_vtab", post(b"Content-Length: 0\x0b5\r\n", b"hello" + ADMIN), "reject"),
    # Bare LF, CR-X and NUL in the head.
    ("request_line_bare_lf", b"GET /attack HTTP/1.1\nHost: x\r\n\r\n" + ADMIN, "reject"),
    ("header_bare_lf_te", post(b"X: y\nTransfer-Encoding: chunked\r\n" + cl(5),
                               b"0\r\n\r\n" + ADMIN), "reject"),
    ("header_bare_lf_end", b"GET /attack HTTP/1.1\r\nHost: x\r\n\n" + ADMIN, "reject"),
    ("header_cr_x", post(b"X: y\rTransfer-Encoding: chunked\r\n" + cl(5), b"0\r\n\r\n" + ADMIN),
     "reject"),
    ("header_nul_value", post(b"X: a\x00b\r\n", b""), "reject"),
    ("header_nul_name", post(b"X\x00A: b\r\n", b""), "reject"),
    # Chunked framing lines.
    ("chunk_ext_bare_lf", chunked(body=ext_lf_smuggle()), "reject"),
    ("chunk_size_cr_x", chunked(body=cr_x_smuggle()), "reject"),
    ("chunk_size_bare_lf", chunked(body=b"5\nhello\r\n0\r\n\r\n" + ADMIN), "reject"),
    ("chunk_data_bare_lf", chunked(body=b"5\r\nhello\n0\r\n\r\n" + ADMIN), "reject"),
    ("chunk_data_no_crlf", chunked(body=b"5\r\nhelloXY0\r\n\r\n" + ADMIN), "reject"),
    ("chunk_size_overflow", chunked(body=b"10000000000000005\r\nhello\r\n0\r\n\r\n" + ADMIN),
     "reject"),
    ("chunk_size_leading_zeros", chunked(body=b"00000000000000000005\r\nhello\r\n0\r\n\r\n"),
     "reject"),
    ("chunk_size_negative", chunked(body=b"-5\r\nhello\r\n0\r\n\r\n"), "reject"),
    ("chunk_size_space_no_ext", chunked(body=b"5 \r\nhello\r\n0\r\n\r\n"), "reject"),
    ("chunk_ext_too_long", chunked(body=b"5;" + b"e" * 5000 + b"\r\nhello\r\n0\r\n\r\n"),
     "reject"),
    ("chunk_ext_nul", chunked(body=b"5;a\x00b\r\nhello\r\n0\r\n\r\n"), "reject"),
    ("trailer_bare_lf", chunked(body=trailer_lf_smuggle()), "reject"),
    ("trailer_obs_fold", chunked(body=b"0\r\nX: y\r\n z\r\n\r\n"), "reject"),
    ("final_line_bare_lf", chunked(body=b"0\r\n\n" + ADMIN), "reject"),
    # Absolute form.
    ("absolute_userinfo", b"GET http://u@x/attack HTTP/1.1\r\nHost: x\r\n\r\n", "reject"),
    ("absolute_ftp", b"GET ftp://x/attack HTTP/1.1\r\nHost: x\r\n\r\n", "reject"),
    ("absolute_vs_host", b"GET http://good/abs HTTP/1.1\r\nHost: evil\r\n\r\n", 1),
    # Legitimate shapes the proxy must keep accepting.
    ("ok_te_htab", chunked(b"", b"5;a=b\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n").replace(
        b"Transfer-Encoding: chunked", b"Transfer-Encoding:\tchunked"), 1),
    ("ok_cl_leading_zeros", post(b"Content-Length: 005\r\n", b"hello"), 1),
    ("ok_pipelined", b"GET /p1 HTTP/1.1\r\nHost: x\r\n\r\nGET /p2 HTTP/1.1\r\nHost: x\r\n\r\n", 2),
]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    be = LenientBackend().start()
    p = ph.start_proxy(tmp_path_factory.mktemp("smuggling"), [be.addr])
    yield p, be
    finish(p)
    be.stop()


def responses_2xx(p):
    st, text = http(p.ctl_port, "GET", "/metrics")
    assert st == 200
    return sum(int(float(v)) for v in re.findall(
        r'^fedgslb_proxy_responses_total\{[^}]*code="2xx"[^}]*\} (\S+)$', text, re.M))


def read_all(sock):
    out = b""
    sock.settimeout(5 * SLOW)
    while True:
        b = sock.recv(65536)
        if not b:
            return out
        out += b


def statuses(data):
    """Status codes of the responses in @data (every response has a Content-Length)."""
    codes = []
    while data:
        m = re.match(rb"HTTP/1\.1 (\d{3}) [^\r\n]*\r\n(.*?)\r\n\r\n", data, re.S)
        assert m, data[:200]
        n = int(re.search(rb"(?i)content-length: (\d+)", m.group(2)).group(1))
        codes.append(int(m.group(1)))
        data = data[m.end() + n:]
    return codes


def exchange(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=5 * SLOW) as s:
        s.sendall(data)
        return read_all(s)


def check_backend(be, before, allowed_new):
    new = be.requests()[before:]
    paths = [r["path"] for r in new]
    assert not [p for p in paths if p not in ALLOWED], paths
    assert len(new) <= allowed_new, paths
    for r in new:
        assert b"victim" not in r["body"] and b"/admin" not in r["body"], r
    return paths


@pytest.mark.parametrize("payload,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_payload(setup, payload, expected):
    p, be = setup
    before, ok_before = len(be.requests()), responses_2xx(p)

    out = exchange(p.port, payload + VICTIM_SAME)
    # A victim on its own connection reuses the pooled upstream connection.
    victim = exchange(p.port, VICTIM)

    # What the backend parsed first: a smuggled request fails here.
    forwarded = 0 if expected == "reject" else expected + 1
    paths = check_backend(be, before, forwarded + 1)
    assert paths.count("/victim") == 1
    assert len(be.requests()) - before <= responses_2xx(p) - ok_before
    if expected == "reject":
        assert statuses(out) == [400], out[:300]  # and the connection closed after it
    else:
        assert statuses(out) == [200] * (expected + 1), out[:300]
    assert statuses(victim) == [200]
    assert b'"path": "/victim"' in victim


def test_absolute_form_host_is_authority(setup):
    p, be = setup
    before = len(be.requests())
    out = exchange(p.port, b"GET http://good:81/abs?q=1 HTTP/1.1\r\nHost: evil\r\n"
                           b"Connection: close\r\n\r\n")
    assert statuses(out) == [200]
    r = be.requests()[before]
    assert (r["path"], r["host"]) == ("/abs?q=1", "good:81")


@pytest.mark.parametrize("payload", [
    cr_x_smuggle(), ext_lf_smuggle(), trailer_lf_smuggle(),
    b"5\nhello\r\n0\r\n\r\n" + SMUGGLED,
], ids=["cr_x", "ext_lf", "trailer_lf", "size_bare_lf"])
def test_concurrent_victim_gets_own_response(setup, payload):
    """Attacker and victim at the same time, several rounds: each victim
    gets exactly one response, its own."""
    p, be = setup
    before = len(be.requests())
    rounds = 5
    results, errors = [], []
    start = threading.Barrier(2)

    def attacker():
        start.wait()
        results.append(("a", exchange(p.port, chunked(body=payload))))

    def victim():
        start.wait()
        try:
            results.append(("v", exchange(p.port, VICTIM)))
        except OSError as e:  # pragma: no cover - reported below
            errors.append(e)

    for _ in range(rounds):
        ts = [threading.Thread(target=attacker), threading.Thread(target=victim)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(10 * SLOW)
    assert not errors
    for who, out in results:
        if who == "a":
            assert statuses(out) == [400]
        else:
            assert statuses(out) == [200] and b'"path": "/victim"' in out
    check_backend(be, before, 2 * rounds)
    assert [r["path"] for r in be.requests()[before:]].count("/victim") == rounds


@pytest.mark.parametrize("name", ["chunk_bare_lf", "chunk_cr_x", "trailer_bare_lf",
                                  "head_bare_lf", "cl_list", "te_and_cl"])
def test_response_desync_does_not_poison_pool(setup, name):
    """A backend response with bad framing is cut (or 502) and its upstream
    connection is not reused: the next client never gets "poisoned"."""
    p, _ = setup
    out = exchange(p.port, b"GET /resp/%s HTTP/1.1\r\nHost: x\r\n\r\n" % name.encode())
    assert b"poisoned" not in out
    if out.startswith(b"HTTP/1.1 502"):
        assert statuses(out) == [502]
    for _ in range(3):
        victim = exchange(p.port, VICTIM)
        assert b"poisoned" not in victim
        assert statuses(victim) == [200] and b'"path": "/victim"' in victim
