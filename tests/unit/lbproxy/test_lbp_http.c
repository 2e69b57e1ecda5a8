/* SPDX-License-Identifier: Apache-2.0 */
/* test_lbp_http.c -- the proxy's HTTP/1.x framing: head parsing (whole and
 * byte by byte), hop-by-hop classification, limits, smuggling shapes, body
 * tracking (Content-Length, chunked, until close), keep-alive, and the exact
 * bytes of the rewritten request, response and error heads.
 *
 * The tests under "strictness" pin defects found in an earlier lbp_http.c
 * (each failed against it): the line limit depended on how bytes arrived,
 * trailers counted as headers, 304/204 with framing headers waited for a body,
 * whitespace before a colon, chunk data without CRLF, duplicate Host and
 * obs-fold were let through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>

#include "common/cm_err.h"
#include "common/cm_str.h"
#include "lbproxy/lbp_http.h"

/* ---- helpers ------------------------------------------------------------ */

static const struct lbp_http_limits test_lim = {
    .line_max = 128, .header_bytes_max = 1024, .header_count_max = 16, .body_max = 4096};

static const struct lbp_http_fwd test_fwd = {
    .client_ip = "192.0.2.7", .keep_xff = false, .tls = false};

static void msg_init(struct lbp_http_msg *m, enum http_parser_type type,
                     const struct lbp_http_limits *lim)
{
    assert_int_equal(lbp_http_msg_init(m, type, lim != NULL ? lim : &test_lim), CM_OK);
    assert_non_null(m->hdrs);
}

/* The whole of @s in one call. */
static int parse_once(struct lbp_http_msg *m, const char *s)
{
    return lbp_http_head_parse(m, s, strlen(s));
}

/* @len bytes of @s arriving one at a time; *at (optional) gets the number of
 * bytes available at the call that did not return MORE. */
static int parse_bytewise(struct lbp_http_msg *m, const char *s, size_t len, size_t *at)
{
    int rc = LBP_HTTP_MORE;
    size_t i;

    for (i = 1; i <= len && rc == LBP_HTTP_MORE; i++)
        rc = lbp_http_head_parse(m, s, i);
    if (at != NULL)
        *at = i - 1;
    return rc;
}

/* Asserts that the @len bytes at @data + @off are exactly @want. */
static void assert_span(const char *data, uint32_t off, uint32_t len, const char *want)
{
    char got[512];

    assert_true(len < sizeof(got));
    memcpy(got, data + off, len);
    got[len] = '\0';
    assert_string_equal(got, want);
}

static void assert_hdr(const struct lbp_http_msg *m, const char *data, uint32_t i, const char *name,
                       const char *value, int kind, bool hop)
{
    const struct lbp_http_hdr *h;

    assert_true(i < m->hdr_count);
    h = &m->hdrs[i];
    assert_span(data, h->name_off, h->name_len, name);
    assert_span(data, h->val_off, h->val_len, value);
    assert_int_equal(h->kind, kind);
    assert_int_equal(h->hop, hop);
}

/* Everything head_parse() reports must not depend on how the bytes arrived. */
static void assert_same_parse(const struct lbp_http_msg *a, const struct lbp_http_msg *b)
{
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->head_len, b->head_len);
    assert_int_equal(a->first_off, b->first_off);
    assert_int_equal(a->first_len, b->first_len);
    assert_int_equal(a->hdr_count, b->hdr_count);
    for (uint32_t i = 0; i < a->hdr_count; i++) {
        assert_int_equal(a->hdrs[i].name_off, b->hdrs[i].name_off);
        assert_int_equal(a->hdrs[i].name_len, b->hdrs[i].name_len);
        assert_int_equal(a->hdrs[i].val_off, b->hdrs[i].val_off);
        assert_int_equal(a->hdrs[i].val_len, b->hdrs[i].val_len);
        assert_int_equal(a->hdrs[i].kind, b->hdrs[i].kind);
        assert_int_equal(a->hdrs[i].hop, b->hdrs[i].hop);
    }
    assert_int_equal(a->cl_count, b->cl_count);
    assert_int_equal(a->te_count, b->te_count);
    assert_int_equal(a->xff_count, b->xff_count);
    assert_int_equal(a->message_done, b->message_done);
    assert_int_equal(a->conn_close, b->conn_close);
    assert_int_equal(a->conn_keep_alive, b->conn_keep_alive);
    assert_int_equal(a->conn_upgrade, b->conn_upgrade);
    assert_int_equal(a->expect_continue, b->expect_continue);
    assert_int_equal(a->parser.method, b->parser.method);
    assert_int_equal(a->parser.status_code, b->parser.status_code);
    assert_int_equal(a->parser.http_major, b->parser.http_major);
    assert_int_equal(a->parser.http_minor, b->parser.http_minor);
    assert_int_equal(a->parser.content_length, b->parser.content_length);
    assert_int_equal(a->parser.upgrade, b->parser.upgrade);
}

/* Parses @s as a head and returns the rc; the message stays initialized. */
static int head_of(struct lbp_http_msg *m, enum http_parser_type type,
                   const struct lbp_http_limits *lim, const char *s)
{
    msg_init(m, type, lim);
    return parse_once(m, s);
}

/* A request head "GET / HTTP/1.1" + Host + an X-Pad header, @total bytes long. */
static void padded_head(char *buf, size_t cap, size_t total)
{
    const char *pre = "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: ";
    size_t pre_len = strlen(pre), pad;

    assert_true(total > pre_len + 4 && total < cap);
    pad = total - pre_len - 4;
    memcpy(buf, pre, pre_len);
    memset(buf + pre_len, 'p', pad);
    memcpy(buf + pre_len + pad, "\r\n\r\n", 5);
    assert_int_equal(strlen(buf), total);
}

/* ---- head parsing ------------------------------------------------------- */

static void test_head_offsets(void **state)
{
    const char *req = "GET /a/b?c=d HTTP/1.1\r\n"
                      "Host: example.com\r\n"
                      "User-Agent:   curl/8.0\r\n"
                      "X-Empty:\r\n"
                      "Accept: */*\r\n"
                      "\r\n";
    char buf[256];
    struct lbp_http_msg m;

    (void)state;
    /* The next pipelined request follows in the same buffer: not part of this head. */
    snprintf(buf, sizeof(buf), "%sGET /next HTTP/1.1\r\nHost: x\r\n\r\n", req);
    msg_init(&m, HTTP_REQUEST, NULL);
    assert_int_equal(lbp_http_head_parse(&m, buf, strlen(buf)), LBP_HTTP_DONE);
    assert_int_equal(m.status, 0);
    assert_int_equal(m.head_len, strlen(req));
    assert_span(buf, m.first_off, m.first_len, "/a/b?c=d");
    assert_int_equal(m.first_off, 4);
    assert_int_equal(m.hdr_count, 4);
    assert_hdr(&m, buf, 0, "Host", "example.com", LBP_H_HOST, false);
    assert_int_equal(m.hdrs[0].name_off, 23);
    assert_int_equal(m.hdrs[0].val_off, 29);
    /* Leading blanks are not part of the value. */
    assert_hdr(&m, buf, 1, "User-Agent", "curl/8.0", LBP_H_OTHER, false);
    assert_hdr(&m, buf, 2, "X-Empty", "", LBP_H_OTHER, false);
    assert_hdr(&m, buf, 3, "Accept", "*/*", LBP_H_OTHER, false);
    assert_string_equal(lbp_http_method(&m), "GET");
    assert_int_equal(m.parser.http_major, 1);
    assert_int_equal(m.parser.http_minor, 1);
    assert_true(m.message_done);
    assert_false(lbp_http_has_body(&m));
    assert_int_equal(m.cl_count, 0);
    assert_int_equal(m.te_count, 0);
    assert_int_equal(m.xff_count, 0);
    assert_false(m.expect_continue);
    lbp_http_msg_fini(&m);
    assert_null(m.hdrs);
}

static void test_head_response_offsets(void **state)
{
    const char *resp = "HTTP/1.1 404 Not Found Here\r\nContent-Length: 3\r\nServer: t\r\n\r\nabc";
    struct lbp_http_msg m;

    (void)state;
    assert_int_equal(head_of(&m, HTTP_RESPONSE, NULL, resp), LBP_HTTP_DONE);
    assert_int_equal(m.parser.status_code, 404);
    assert_span(resp, m.first_off, m.first_len, "Not Found Here");
    assert_int_equal(m.head_len, strlen(resp) - 3);
    assert_int_equal(m.hdr_count, 2);
    assert_hdr(&m, resp, 0, "Content-Length", "3", LBP_H_CONTENT_LENGTH, false);
    assert_hdr(&m, resp, 1, "Server", "t", LBP_H_OTHER, false);
    assert_int_equal(m.cl_count, 1);
    assert_int_equal(m.parser.content_length, 3);
    assert_false(m.message_done);
    assert_true(lbp_http_has_body(&m));
    assert_false(lbp_http_until_eof(&m));
    lbp_http_msg_fini(&m);
}

/* One call, byte by byte, and every two-piece split give the same result. */
static void check_split_invariance(enum http_parser_type type, const char *s)
{
    size_t len = strlen(s), at;
    struct lbp_http_msg once, m;
    int rc;

    assert_int_equal(head_of(&once, type, NULL, s), LBP_HTTP_DONE);
    msg_init(&m, type, NULL);
    rc = parse_bytewise(&m, s, len, &at);
    assert_int_equal(rc, LBP_HTTP_DONE);
    assert_int_equal(at, once.head_len);
    assert_same_parse(&once, &m);
    for (size_t i = 1; i < once.head_len; i++) {
        lbp_http_msg_reset(&m);
        assert_int_equal(lbp_http_head_parse(&m, s, i), LBP_HTTP_MORE);
        /* Asking again with no new byte is harmless. */
        assert_int_equal(lbp_http_head_parse(&m, s, i), LBP_HTTP_MORE);
        assert_int_equal(lbp_http_head_parse(&m, s, len), LBP_HTTP_DONE);
        assert_same_parse(&once, &m);
    }
    lbp_http_msg_fini(&m);
    lbp_http_msg_fini(&once);
}

static void test_head_bytewise_same(void **state)
{
    (void)state;
    check_split_invariance(HTTP_REQUEST, "POST /submit?x=1 HTTP/1.1\r\n"
                                         "Host: example.com:8080\r\n"
                                         "Connection: keep-alive, X-Hop\r\n"
                                         "X-Hop: yes\r\n"
                                         "Content-Length: 5\r\n"
                                         "X-Forwarded-For: 10.0.0.1\r\n"
                                         "Expect: 100-continue\r\n"
                                         "X-Empty:\r\n"
                                         "Cookie: a=b; c=d\r\n"
                                         "\r\nhello");
    check_split_invariance(HTTP_REQUEST, "GET / HTTP/1.0\r\n\r\n");
    check_split_invariance(HTTP_REQUEST, "PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
                                         "chunked\r\nTrailer: X-Sum\r\n\r\n0\r\n\r\n");
    check_split_invariance(HTTP_RESPONSE, "HTTP/1.1 200 Everything Fine\r\n"
                                          "Content-Type: text/html\r\n"
                                          "Keep-Alive: timeout=5\r\n"
                                          "Connection: keep-alive\r\n"
                                          "Content-Length: 0\r\n\r\n");
    check_split_invariance(HTTP_RESPONSE, "HTTP/1.1 204 \r\nX-A: b\r\n\r\n");
}

static void test_hop_by_hop(void **state)
{
    const char *req = "GET /h HTTP/1.1\r\n"
                      "Host: example.com\r\n"
                      "Connection: keep-alive, X-Custom ,upgrade\r\n"
                      "Keep-Alive: timeout=5\r\n"
                      "Proxy-Connection: keep-alive\r\n"
                      "Proxy-Authorization: Basic eA==\r\n"
                      "TE: trailers\r\n"
                      "Trailer: X-Sum\r\n"
                      "Upgrade: websocket\r\n"
                      "X-Custom: 1\r\n"
                      "x-CUSTOM: 2\r\n"
                      "X-Forwarded-For: 10.0.0.1\r\n"
                      "X-Forwarded-Proto: https\r\n"
                      "Expect: 100-continue\r\n"
                      "Proxyish: 1\r\n"
                      "TEA: 1\r\n"
                      "\r\n";
    struct lbp_http_msg m;

    (void)state;
    assert_int_equal(head_of(&m, HTTP_REQUEST, NULL, req), LBP_HTTP_DONE);
    assert_int_equal(m.hdr_count, 15);
    assert_hdr(&m, req, 0, "Host", "example.com", LBP_H_HOST, false);
    assert_hdr(&m, req, 1, "Connection", "keep-alive, X-Custom ,upgrade", LBP_H_CONNECTION, true);
    assert_hdr(&m, req, 2, "Keep-Alive", "timeout=5", LBP_H_KEEP_ALIVE, true);
    assert_hdr(&m, req, 3, "Proxy-Connection", "keep-alive", LBP_H_PROXY_ANY, true);
    assert_hdr(&m, req, 4, "Proxy-Authorization", "Basic eA==", LBP_H_PROXY_ANY, true);
    assert_hdr(&m, req, 5, "TE", "trailers", LBP_H_TE, true);
    assert_hdr(&m, req, 6, "Trailer", "X-Sum", LBP_H_TRAILER, true);
    assert_hdr(&m, req, 7, "Upgrade", "websocket", LBP_H_UPGRADE, true);
    /* Named by a Connection token (case-insensitive): hop-by-hop too. */
    assert_hdr(&m, req, 8, "X-Custom", "1", LBP_H_OTHER, true);
    assert_hdr(&m, req, 9, "x-CUSTOM", "2", LBP_H_OTHER, true);
    assert_hdr(&m, req, 10, "X-Forwarded-For", "10.0.0.1", LBP_H_XFF, false);
    assert_hdr(&m, req, 11, "X-Forwarded-Proto", "https", LBP_H_XFP, false);
    assert_hdr(&m, req, 12, "Expect", "100-continue", LBP_H_EXPECT, false);
    assert_hdr(&m, req, 13, "Proxyish", "1", LBP_H_OTHER, false);
    assert_hdr(&m, req, 14, "TEA", "1", LBP_H_OTHER, false);
    assert_true(m.conn_keep_alive);
    assert_true(m.conn_upgrade);
    assert_false(m.conn_close);
    assert_true(m.expect_continue);
    assert_int_equal(m.xff_count, 1);
    assert_int_equal(m.parser.upgrade, 1);
    assert_true(m.message_done);
    lbp_http_msg_fini(&m);
}

/* Connection tokens never turn the framing headers or Host into hop-by-hop ones. */
static void test_hop_connection_protected(void **state)
{
    const char *cl = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                     "Connection: Content-Length, host, CLOSE\r\n\r\nabc";
    const char *te = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                     "Connection: transfer-encoding\r\n\r\n";
    struct lbp_http_msg m;

    (void)state;
    assert_int_equal(head_of(&m, HTTP_REQUEST, NULL, cl), LBP_HTTP_DONE);
    assert_hdr(&m, cl, 0, "Host", "a", LBP_H_HOST, false);
    assert_hdr(&m, cl, 1, "Content-Length", "3", LBP_H_CONTENT_LENGTH, false);
    assert_hdr(&m, cl, 2, "Connection", "Content-Length, host, CLOSE", LBP_H_CONNECTION, true);
    assert_true(m.conn_close);
    assert_false(m.conn_keep_alive);
    assert_int_equal(m.cl_count, 1);
    lbp_http_msg_fini(&m);

    /* Transfer-Encoding is not dropped: the chunked body is passed through as-is. */
    assert_int_equal(head_of(&m, HTTP_REQUEST, NULL, te), LBP_HTTP_DONE);
    assert_hdr(&m, te, 1, "Transfer-Encoding", "chunked", LBP_H_TRANSFER_ENCODING, false);
    assert_int_equal(m.te_count, 1);
    assert_true((m.parser.flags & F_CHUNKED) != 0);
    assert_true(lbp_http_has_body(&m));
    lbp_http_msg_fini(&m);
}

static void test_reset_reuses_headers(void **state)
{
    const char *a = "GET /one HTTP/1.1\r\nHost: a\r\nConnection: close\r\nX: 1\r\n\r\n";
    const char *b = "HEAD /two HTTP/1.1\r\nHost: b\r\n\r\n";
    struct lbp_http_msg m;
    struct lbp_http_hdr *hdrs;

    (void)state;
    assert_int_equal(head_of(&m, HTTP_REQUEST, NULL, a), LBP_HTTP_DONE);
    hdrs = m.hdrs;
    assert_true(m.conn_close);
    lbp_http_msg_reset(&m);
    assert_ptr_equal(m.hdrs, hdrs);
    assert_int_equal(m.lim.header_count_max, test_lim.header_count_max);
    assert_int_equal(m.hdr_count, 0);
    assert_int_equal(m.head_len, 0);
    assert_false(m.conn_close);
    assert_false(m.message_done);
    assert_int_equal(parse_once(&m, b), LBP_HTTP_DONE);
    assert_string_equal(lbp_http_method(&m), "HEAD");
    assert_span(b, m.first_off, m.first_len, "/two");
    assert_int_equal(m.hdr_count, 1);
    assert_hdr(&m, b, 0, "Host", "b", LBP_H_HOST, false);
    assert_true(lbp_http_keep_alive(&m));
    lbp_http_msg_fini(&m);
}

static void test_errors_sticky_and_basic(void **state)
{
    struct lbp_http_msg m;

    (void)state;
    /* Not HTTP at all. */
    assert_int_equal(head_of(&m, HTTP_REQUEST, NULL, "\x16\x03\x01\x02\x00\x01\x00"),
                     LBP_HTTP_ERROR);
    assert_int_equal(m.status, 400);
    /* Sticky: more bytes do not revive it. */
    assert_int_equal(parse_once(&m, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"), LBP_HTTP_ERROR);
    assert_int_equal(m.status, 400);
    lbp_http_msg_fini(&m);

    assert_int_equal(head_of(&m, HTTP_RESPONSE, NULL, "HTTP/1.1 2x0 OK\r\n\r\n"), LBP_HTTP_ERROR);
    assert_int_equal(m.status, 502);
    lbp_http_msg_fini(&m);

    /* HTTP/1.1 requests need Host (RFC 9112 section 3.2); HTTP/1.0 ones do not. */
    assert_int_equal(head_of(&m, HTTP_REQUEST, NULL, "GET / HTTP/1.1\r\nAccept: */*\r\n\r\n"),
                     LBP_HTTP_ERROR);
    assert_int_equal(m.status, 400);
    lbp_http_msg_fini(&m);
    assert_int_equal(head_of(&m, HTTP_REQUEST, NULL, "GET / HTTP/1.0\r\nAccept: */*\r\n\r\n"),
                     LBP_HTTP_DONE);
    lbp_http_msg_fini(&m);

    /* A tab in a header name is refused (see test_space_before_colon_rejected for spaces). */
    assert_int_equal(head_of(&m, HTTP_REQUEST, NULL, "GET / HTTP/1.1\r\nHost: a\r\nX\t: b\r\n\r\n"),
                     LBP_HTTP_ERROR);
    assert_int_equal(m.status, 400);
    lbp_http_msg_fini(&m);

    /* CONNECT is not proxied. */
    assert_int_equal(
        head_of(&m, HTTP_REQUEST, NULL, "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n"),
        LBP_HTTP_ERROR);
    assert_int_equal(m.status, 405);
    lbp_http_msg_fini(&m);
}

/* ---- limits ------------------------------------------------------------- */

static void test_limit_line(void **state)
{
    struct lbp_http_limits lim = test_lim;
    char url[300], req[400];
    struct lbp_http_msg m;
    size_t at;

    (void)state;
    lim.line_max = 32;
    /* A request line of exactly 32 bytes with CRLF (17-byte URL): accepted,
     * in one piece or byte by byte. */
    memset(url, 'u', 17);
    url[0] = '/';
    url[17] = '\0';
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", url);
    assert_int_equal(head_of(&m, HTTP_REQUEST, &lim, req), LBP_HTTP_DONE);
    assert_int_equal(m.first_len, 17);
    lbp_http_msg_reset(&m);
    assert_int_equal(parse_bytewise(&m, req, strlen(req), NULL), LBP_HTTP_DONE);
    assert_int_equal(m.first_len, 17);
    lbp_http_msg_fini(&m);

    /* A URL of 33 bytes alone is over the limit: 414, in one piece or byte by byte. */
    memset(url, 'u', 33);
    url[0] = '/';
    url[33] = '\0';
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", url);
    assert_int_equal(head_of(&m, HTTP_REQUEST, &lim, req), LBP_HTTP_ERROR);
    assert_int_equal(m.status, 414);
    lbp_http_msg_fini(&m);
    msg_init(&m, HTTP_REQUEST, &lim);
    assert_int_equal(parse_bytewise(&m, req, strlen(req), NULL), LBP_HTTP_ERROR);
    assert_int_equal(m.status, 414);
    lbp_http_msg_fini(&m);

    /* A long URL trickling in is refused before the line ends. */
    memset(url, 'u', 250);
    url[0] = '/';
    url[250] = '\0';
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", url);
    msg_init(&m, HTTP_REQUEST, &lim);
    assert_int_equal(parse_bytewise(&m, req, strlen(req), &at), LBP_HTTP_ERROR);
    assert_int_equal(m.status, 414);
    assert_true(at <= 4 + 33);
    lbp_http_msg_fini(&m);

    /* An over-long status line from a backend: 502. */
    snprintf(req, sizeof(req), "HTTP/1.1 200 %s\r\nContent-Length: 0\r\n\r\n", url);
    assert_int_equal(head_of(&m, HTTP_RESPONSE, &lim, req), LBP_HTTP_ERROR);
    assert_int_equal(m.status, 502);
    lbp_http_msg_fini(&m);
}

/* The byte limit applies to the whole head: line_max + header_bytes_max. */
static void test_limit_header_bytes(void **state)
{
    struct lbp_http_limits lim = test_lim;
    struct lbp_http_msg m;
    char req[512], more[1024];

    (void)state;
    lim.line_max = 64;
    lim.header_bytes_max = 128;
    padded_head(req, sizeof(req), 192);
    assert_int_equal(head_of(&m, HTTP_REQUEST, &lim, req), LBP_HTTP_DONE);
    assert_int_equal(m.head_len, 192);
    lbp_http_msg_reset(&m);
    assert_int_equal(parse_bytewise(&m, req, strlen(req), NULL), LBP_HTTP_DONE);
    assert_int_equal(m.head_len, 192);
    /* Body bytes after a head of exactly the limit are fine. */
    snprintf(more, sizeof(more), "%s%s", req, "GET /next HTTP/1.1\r\n");
    lbp_http_msg_reset(&m);
    assert_int_equal(parse_once(&m, more), LBP_HTTP_DONE);
    assert_int_equal(m.head_len, 192);
    lbp_http_msg_fini(&m);

    padded_head(req, sizeof(req), 193);
    assert_int_equal(head_of(&m, HTTP_REQUEST, &lim, req), LBP_HTTP_ERROR);
    assert_int_equal(m.status, 431);
    lbp_http_msg_reset(&m);
    assert_int_equal(parse_bytewise(&m, req, strlen(req), NULL), LBP_HTTP_ERROR);
    assert_int_equal(m.status, 431);
    lbp_http_msg_fini(&m);

    /* Headers that never end: 431 in one call once the limit is there. */
    memset(more, 'a', sizeof(more) - 1);
    more[sizeof(more) - 1] = '\0';
    memcpy(more, "GET / HTTP/1.1\r\nX-Long: ", 24);
    assert_int_equal(head_of(&m, HTTP_REQUEST, &lim, more), LBP_HTTP_ERROR);
    assert_int_equal(m.status, 431);
    lbp_http_msg_fini(&m);
    memcpy(more, "HTTP/1.1 200 OK\r\nX-Long: ", 25);
    assert_int_equal(head_of(&m, HTTP_RESPONSE, &lim, more), LBP_HTTP_ERROR);
    assert_int_equal(m.status, 502);
    lbp_http_msg_fini(&m);
}

static void test_limit_header_count(void **state)
{
    struct lbp_http_limits lim = test_lim;
    const char *four = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    const char *five = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    const char *rfive = "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n";
    struct lbp_http_msg m;

    (void)state;
    lim.header_count_max = 4;
    assert_int_equal(head_of(&m, HTTP_REQUEST, &lim, four), LBP_HTTP_DONE);
    assert_int_equal(m.hdr_count, 4);
    lbp_http_msg_fini(&m);
    assert_int_equal(head_of(&m, HTTP_REQUEST, &lim, five), LBP_HTTP_ERROR);
    assert_int_equal(m.status, 431);
    assert_int_equal(m.hdr_count, 4);
    lbp_http_msg_reset(&m);
    assert_int_equal(parse_bytewise(&m, five, strlen(five), NULL), LBP_HTTP_ERROR);
    assert_int_equal(m.status, 431);
    lbp_http_msg_fini(&m);
    assert_int_equal(head_of(&m, HTTP_RESPONSE, &lim, rfive), LBP_HTTP_ERROR);
    assert_int_equal(m.status, 502);
    lbp_http_msg_fini(&m);
}

static void test_limit_body(void **state)
{
    struct lbp_http_limits lim = test_lim;
    const char *te = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    const char *ok10 = "5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n";
    const char *over11 = "5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n";
    struct lbp_http_msg m;
    size_t used;

    (void)state;
    lim.body_max = 10;
    assert_int_equal(
        head_of(&m, HTTP_REQUEST, &lim, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n"),
        LBP_HTTP_DONE);
    assert_int_equal(lbp_http_body_feed(&m, "0123456789", 10, &used), LBP_HTTP_DONE);
    assert_int_equal(used, 10);
    lbp_http_msg_fini(&m);
    /* Content-Length over the limit: refused with the head. */
    assert_int_equal(
        head_of(&m, HTTP_REQUEST, &lim, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n"),
        LBP_HTTP_ERROR);
    assert_int_equal(m.status, 413);
    lbp_http_msg_fini(&m);

    /* Chunked: counted as it arrives, framing excluded. */
    assert_int_equal(head_of(&m, HTTP_REQUEST, &lim, te), LBP_HTTP_DONE);
    assert_int_equal(lbp_http_body_feed(&m, ok10, strlen(ok10), &used), LBP_HTTP_DONE);
    assert_int_equal(used, strlen(ok10));
    assert_int_equal(m.body_bytes, 10);
    lbp_http_msg_fini(&m);
    assert_int_equal(head_of(&m, HTTP_REQUEST, &lim, te), LBP_HTTP_DONE);
    assert_int_equal(lbp_http_body_feed(&m, over11, strlen(over11), &used), LBP_HTTP_ERROR);
    assert_int_equal(m.status, 413);
    lbp_http_msg_fini(&m);
}

/* ---- smuggling shapes --------------------------------------------------- */

static void expect_head_error(enum http_parser_type type, const char *s, uint16_t status)
{
    struct lbp_http_msg m;

    assert_int_equal(head_of(&m, type, NULL, s), LBP_HTTP_ERROR);
    assert_int_equal(m.status, status);
    lbp_http_msg_fini(&m);
    msg_init(&m, type, NULL);
    assert_int_equal(parse_bytewise(&m, s, strlen(s), NULL), LBP_HTTP_ERROR);
    assert_int_equal(m.status, status);
    lbp_http_msg_fini(&m);
}

static void test_smuggle_cl_te(void **state)
{
    (void)state;
    expect_head_error(HTTP_REQUEST,
                      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                      400);
    expect_head_error(HTTP_REQUEST,
                      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                      "Content-Length: 5\r\n\r\n0\r\n\r\n",
                      400);
    expect_head_error(HTTP_REQUEST,
                      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                      "Transfer-Encoding: gzip\r\n\r\nhello",
                      400);
    expect_head_error(HTTP_RESPONSE,
                      "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                      502);
}

/* Any second Content-Length is refused, even with the same value. */
static void test_smuggle_duplicate_cl(void **state)
{
    struct lbp_http_msg m;

    (void)state;
    expect_head_error(HTTP_REQUEST,
                      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                      "Content-Length: 5\r\n\r\nhello",
                      400);
    expect_head_error(HTTP_REQUEST,
                      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                      "Content-Length: 6\r\n\r\nhello!",
                      400);
    expect_head_error(HTTP_REQUEST,
                      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", 400);
    expect_head_error(HTTP_REQUEST, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello",
                      400);
    expect_head_error(HTTP_REQUEST, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
                      400);
    expect_head_error(HTTP_REQUEST, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n",
                      400);
    expect_head_error(HTTP_RESPONSE,
                      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 502);

    /* Optional whitespace around a single value is fine. */
    assert_int_equal(head_of(&m, HTTP_REQUEST, NULL,
                             "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:  5 \r\n\r\n"),
                     LBP_HTTP_DONE);
    assert_int_equal(m.parser.content_length, 5);
    assert_int_equal(m.cl_count, 1);
    lbp_http_msg_fini(&m);
}

static void test_smuggle_transfer_encoding(void **state)
{
    struct lbp_http_msg m;

    (void)state;
    /* A request body must end with chunked (RFC 9112 section 6.3). */
    expect_head_error(HTTP_REQUEST, "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
                      400);
    expect_head_error(HTTP_REQUEST,
                      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                      400);
    expect_head_error(HTTP_REQUEST,
                      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 400);
    /* Two Transfer-Encoding lines: refused by the module itself. */
    expect_head_error(HTTP_REQUEST,
                      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n",
                      400);

    assert_int_equal(
        head_of(&m, HTTP_REQUEST, NULL,
                "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
        LBP_HTTP_DONE);
    assert_true((m.parser.flags & F_CHUNKED) != 0);
    assert_int_equal(m.te_count, 1);
    lbp_http_msg_fini(&m);

    /* A response with a non-chunked coding runs until the close. */
    assert_int_equal(
        head_of(&m, HTTP_RESPONSE, NULL, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
        LBP_HTTP_DONE);
    assert_true(lbp_http_until_eof(&m));
    assert_true(lbp_http_has_body(&m));
    lbp_http_msg_fini(&m);
}

static void expect_chunk_error(enum http_parser_type type, const char *body, uint16_t status)
{
    const char *head = type == HTTP_REQUEST
                           ? "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                           : "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
    struct lbp_http_msg m;
    size_t used;

    assert_int_equal(head_of(&m, type, NULL, head), LBP_HTTP_DONE);
    assert_int_equal(lbp_http_body_feed(&m, body, strlen(body), &used), LBP_HTTP_ERROR);
    assert_int_equal(m.status, status);
    assert_true(used <= strlen(body));
    lbp_http_msg_fini(&m);
}

static void test_smuggle_chunk_size(void **state)
{
    (void)state;
    expect_chunk_error(HTTP_REQUEST, "zz\r\nhello\r\n0\r\n\r\n", 400);
    expect_chunk_error(HTTP_REQUEST, "\r\nhello\r\n0\r\n\r\n", 400);
    expect_chunk_error(HTTP_REQUEST, "-5\r\nhello\r\n0\r\n\r\n", 400);
    expect_chunk_error(HTTP_REQUEST, "0x5\r\nhello\r\n0\r\n\r\n", 400);
    expect_chunk_error(HTTP_REQUEST, "+5\r\nhello\r\n0\r\n\r\n", 400);
    /* Overflows 64 bits. */
    expect_chunk_error(HTTP_REQUEST, "10000000000000000\r\n", 400);
    expect_chunk_error(HTTP_REQUEST, "fffffffffffffffffff\r\n", 400);
    /* Bare LF after the size. */
    expect_chunk_error(HTTP_REQUEST, "5\nhello\n0\n\n", 400);
    expect_chunk_error(HTTP_RESPONSE, "zz\r\n", 502);
}

/* ---- body tracking ------------------------------------------------------ */

static void test_body_content_length_split(void **state)
{
    const char *head = "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n";
    const char *next = "GET /b HTTP/1.1\r\nHost: a\r\n\r\n";
    char buf[256];
    const char *body;
    struct lbp_http_msg m;
    size_t used;

    (void)state;
    snprintf(buf, sizeof(buf), "%s0123456789%s", head, next);
    msg_init(&m, HTTP_REQUEST, NULL);
    assert_int_equal(lbp_http_head_parse(&m, buf, strlen(buf)), LBP_HTTP_DONE);
    assert_int_equal(m.head_len, strlen(head));
    assert_true(lbp_http_has_body(&m));
    body = buf + m.head_len;
    assert_int_equal(lbp_http_body_feed(&m, body, 0, &used), LBP_HTTP_MORE);
    assert_int_equal(used, 0);
    assert_int_equal(lbp_http_body_feed(&m, body, 3, &used), LBP_HTTP_MORE);
    assert_int_equal(used, 3);
    assert_int_equal(m.body_bytes, 3);
    assert_int_equal(lbp_http_body_feed(&m, body + 3, 4, &used), LBP_HTTP_MORE);
    assert_int_equal(used, 4);
    /* The rest of the body and the whole next request: only 3 bytes are ours. */
    assert_int_equal(lbp_http_body_feed(&m, body + 7, strlen(body + 7), &used), LBP_HTTP_DONE);
    assert_int_equal(used, 3);
    assert_int_equal(m.body_bytes, 10);
    assert_true(m.message_done);
    assert_false(lbp_http_has_body(&m));
    assert_int_equal(lbp_http_body_feed(&m, body + 10, strlen(body + 10), &used), LBP_HTTP_DONE);
    assert_int_equal(used, 0);

    /* The pipelined request parses on the reset message. */
    lbp_http_msg_reset(&m);
    assert_int_equal(parse_once(&m, body + 10), LBP_HTTP_DONE);
    assert_span(body + 10, m.first_off, m.first_len, "/b");
    assert_true(m.message_done);
    assert_int_equal(lbp_http_body_feed(&m, "GET", 3, &used), LBP_HTTP_DONE);
    assert_int_equal(used, 0);
    lbp_http_msg_fini(&m);
}

#define CHUNK_HEAD                                                                                 \
    "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
#define CHUNK_BODY                                                                                 \
    "4;ext=1\r\nWiki\r\n"                                                                          \
    "5 ; q=\"a;b\"\r\npedia\r\n"                                                                   \
    "E\r\n in\r\n\r\nchunks.\r\n"                                                                  \
    "0;last\r\n"                                                                                   \
    "X-Sum: 23\r\n"                                                                                \
    "X-More: y\r\n"                                                                                \
    "\r\n"
#define CHUNK_NEXT "GET /next HTTP/1.1\r\nHost: a\r\n\r\n"

/* Chunked body, extensions and trailers, split in two at every position. */
static void test_body_chunked_every_split(void **state)
{
    const char *all = CHUNK_HEAD CHUNK_BODY CHUNK_NEXT;
    size_t head_len = strlen(CHUNK_HEAD), body_len = strlen(CHUNK_BODY);
    const char *body = all + head_len;
    struct lbp_http_msg m;
    size_t used;
    int rc;

    (void)state;
    msg_init(&m, HTTP_REQUEST, NULL);
    for (size_t i = 0; i <= body_len; i++) {
        lbp_http_msg_reset(&m);
        assert_int_equal(lbp_http_head_parse(&m, all, strlen(all)), LBP_HTTP_DONE);
        assert_int_equal(m.head_len, head_len);
        rc = lbp_http_body_feed(&m, body, i, &used);
        assert_int_equal(used, i);
        assert_int_equal(rc, i == body_len ? LBP_HTTP_DONE : LBP_HTTP_MORE);
        if (i < body_len) {
            rc = lbp_http_body_feed(&m, body + i, strlen(body + i), &used);
            assert_int_equal(rc, LBP_HTTP_DONE);
            assert_int_equal(used, body_len - i);
        }
        assert_int_equal(m.body_bytes, 4 + 5 + 14);
        assert_true(m.message_done);
        assert_int_equal(m.status, 0);
    }

    /* One byte per call: MORE until the last byte of the trailer section. */
    lbp_http_msg_reset(&m);
    assert_int_equal(lbp_http_head_parse(&m, all, strlen(all)), LBP_HTTP_DONE);
    for (size_t i = 0; i < body_len; i++) {
        rc = lbp_http_body_feed(&m, body + i, 1, &used);
        assert_int_equal(used, 1);
        assert_int_equal(rc, i + 1 == body_len ? LBP_HTTP_DONE : LBP_HTTP_MORE);
    }
    assert_int_equal(m.body_bytes, 23);
    assert_int_equal(lbp_http_body_feed(&m, body + body_len, 5, &used), LBP_HTTP_DONE);
    assert_int_equal(used, 0);
    lbp_http_msg_fini(&m);
}

/* Head and body arriving byte by byte in one growing buffer, as the proxy sees it. */
static void test_body_chunked_whole_message_bytewise(void **state)
{
    const char *all = CHUNK_HEAD CHUNK_BODY CHUNK_NEXT;
    size_t total = strlen(CHUNK_HEAD CHUNK_BODY), at, off, used;
    struct lbp_http_msg m;
    int rc = LBP_HTTP_MORE;

    (void)state;
    msg_init(&m, HTTP_REQUEST, NULL);
    assert_int_equal(parse_bytewise(&m, all, strlen(all), &at), LBP_HTTP_DONE);
    assert_int_equal(at, strlen(CHUNK_HEAD));
    off = m.head_len;
    while (off < strlen(all) && rc == LBP_HTTP_MORE) {
        rc = lbp_http_body_feed(&m, all + off, 1, &used);
        off += used;
    }
    assert_int_equal(rc, LBP_HTTP_DONE);
    assert_int_equal(off, total);
    lbp_http_msg_fini(&m);
}

static void test_body_until_eof(void **state)
{
    static const struct {
        enum http_parser_type type;
        const char *head, *body;
        uint16_t status;
    } cut[] = {
        {HTTP_RESPONSE, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", "ab", 502},
        {HTTP_RESPONSE, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "5\r\nab", 502},
        {HTTP_REQUEST, "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", "ab", 400},
    };
    struct lbp_http_msg m;
    size_t used;

    (void)state;
    assert_int_equal(head_of(&m, HTTP_RESPONSE, NULL, "HTTP/1.1 200 OK\r\nServer: t\r\n\r\n"),
                     LBP_HTTP_DONE);
    assert_true(lbp_http_until_eof(&m));
    assert_true(lbp_http_has_body(&m));
    assert_int_equal(lbp_http_body_feed(&m, "abc", 3, &used), LBP_HTTP_MORE);
    assert_int_equal(used, 3);
    assert_int_equal(lbp_http_body_feed(&m, "HTTP/1.1 200 OK\r\n", 17, &used), LBP_HTTP_MORE);
    assert_int_equal(used, 17);
    assert_int_equal(lbp_http_body_eof(&m), LBP_HTTP_DONE);
    assert_int_equal(m.body_bytes, 20);
    assert_true(m.message_done);
    assert_int_equal(lbp_http_body_eof(&m), LBP_HTTP_DONE);
    lbp_http_msg_fini(&m);

    /* Closing right after the head: an empty body. */
    assert_int_equal(head_of(&m, HTTP_RESPONSE, NULL, "HTTP/1.0 200 OK\r\n\r\n"), LBP_HTTP_DONE);
    assert_true(lbp_http_until_eof(&m));
    assert_int_equal(lbp_http_body_eof(&m), LBP_HTTP_DONE);
    assert_int_equal(m.body_bytes, 0);
    lbp_http_msg_fini(&m);

    /* With a length, a close before the end is an error. */
    for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
        assert_int_equal(head_of(&m, cut[i].type, NULL, cut[i].head), LBP_HTTP_DONE);
        assert_false(lbp_http_until_eof(&m));
        assert_int_equal(lbp_http_body_feed(&m, cut[i].body, strlen(cut[i].body), &used),
                         LBP_HTTP_MORE);
        assert_int_equal(lbp_http_body_eof(&m), LBP_HTTP_ERROR);
        assert_int_equal(m.status, cut[i].status);
        lbp_http_msg_fini(&m);
    }

    /* A request without a length has no body: it never runs until the close. */
    assert_int_equal(head_of(&m, HTTP_REQUEST, NULL, "POST / HTTP/1.0\r\n\r\n"), LBP_HTTP_DONE);
    assert_false(lbp_http_until_eof(&m));
    assert_false(lbp_http_has_body(&m));
    lbp_http_msg_fini(&m);
}

/* A response to HEAD ends with its head, whatever its framing headers say. */
static void test_body_head_response(void **state)
{
    static const char *const heads[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nServer: t\r\n\r\n",
    };
    struct lbp_http_msg m;
    size_t used;

    (void)state;
    msg_init(&m, HTTP_RESPONSE, NULL);
    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        char buf[256];

        lbp_http_msg_reset(&m);
        m.skip_body = true;
        snprintf(buf, sizeof(buf), "%sHTTP/1.1 204 No Content\r\n\r\n", heads[i]);
        assert_int_equal(parse_once(&m, buf), LBP_HTTP_DONE);
        assert_int_equal(m.head_len, strlen(heads[i]));
        assert_true(m.message_done);
        assert_false(lbp_http_has_body(&m));
        assert_false(lbp_http_until_eof(&m));
        assert_int_equal(lbp_http_body_feed(&m, buf + m.head_len, 10, &used), LBP_HTTP_DONE);
        assert_int_equal(used, 0);
        assert_int_equal(lbp_http_body_eof(&m), LBP_HTTP_DONE);
    }
    lbp_http_msg_fini(&m);
}

static void test_body_no_content_statuses(void **state)
{
    static const char *const heads[] = {
        "HTTP/1.1 204 No Content\r\nServer: t\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n",
        "HTTP/1.1 100 Continue\r\n\r\n",
    };
    struct lbp_http_msg m;
    size_t used;

    (void)state;
    msg_init(&m, HTTP_RESPONSE, NULL);
    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        char buf[256];

        lbp_http_msg_reset(&m);
        snprintf(buf, sizeof(buf), "%sHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", heads[i]);
        assert_int_equal(parse_once(&m, buf), LBP_HTTP_DONE);
        assert_int_equal(m.head_len, strlen(heads[i]));
        assert_true(m.message_done);
        assert_false(lbp_http_has_body(&m));
        assert_false(lbp_http_until_eof(&m));
        assert_int_equal(lbp_http_body_feed(&m, buf + m.head_len, 10, &used), LBP_HTTP_DONE);
        assert_int_equal(used, 0);
    }
    lbp_http_msg_fini(&m);
}

/* ---- keep-alive, methods ------------------------------------------------ */

static void test_keep_alive(void **state)
{
    static const struct {
        enum http_parser_type type;
        const char *head;
        bool keep;
    } cases[] = {
        {HTTP_REQUEST, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", true},
        {HTTP_REQUEST, "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false},
        {HTTP_REQUEST, "GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, CLOSE\r\n\r\n", false},
        {HTTP_REQUEST, "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", true},
        {HTTP_REQUEST, "GET / HTTP/1.1\r\nHost: a\r\nConnection: x-close\r\n\r\n", true},
        {HTTP_REQUEST, "GET / HTTP/1.1\r\nHost: a\r\nProxy-Connection: close\r\n\r\n", true},
        {HTTP_REQUEST, "GET / HTTP/1.0\r\n\r\n", false},
        {HTTP_REQUEST, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true},
        {HTTP_REQUEST, "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true},
        {HTTP_REQUEST, "GET / HTTP/1.0\r\nConnection: te, keep-alive\r\n\r\n", true},
        {HTTP_REQUEST, "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", false},
        {HTTP_REQUEST, "GET / HTTP/1.0\r\nKeep-Alive: timeout=5\r\n\r\n", false},
        {HTTP_RESPONSE, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
        {HTTP_RESPONSE, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", false},
        {HTTP_RESPONSE, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false},
        {HTTP_RESPONSE, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n",
         true},
    };
    struct lbp_http_msg m;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(head_of(&m, cases[i].type, NULL, cases[i].head), LBP_HTTP_DONE);
        if (lbp_http_keep_alive(&m) != cases[i].keep)
            fail_msg("case %zu: keep-alive %d for %s", i, !cases[i].keep, cases[i].head);
        lbp_http_msg_fini(&m);
    }
}

static void test_methods_idempotent(void **state)
{
    static const struct {
        const char *method;
        bool idempotent;
    } cases[] = {
        {"GET", true},    {"HEAD", true},  {"OPTIONS", true}, {"PUT", true},
        {"DELETE", true}, {"TRACE", true}, {"POST", false},   {"PATCH", false},
    };
    struct lbp_http_msg m;
    char req[128];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(req, sizeof(req), "%s /r HTTP/1.1\r\nHost: a\r\n\r\n", cases[i].method);
        assert_int_equal(head_of(&m, HTTP_REQUEST, NULL, req), LBP_HTTP_DONE);
        assert_string_equal(lbp_http_method(&m), cases[i].method);
        assert_int_equal(lbp_http_idempotent(&m), cases[i].idempotent);
        lbp_http_msg_fini(&m);
    }
}

/* ---- writing requests --------------------------------------------------- */

static void expect_request(const char *in, const struct lbp_http_fwd *fwd, const char *want)
{
    struct lbp_http_msg m;
    struct cm_buf out;

    cm_buf_init(&out, 4096);
    assert_int_equal(cm_buf_append_str(&out, "stale bytes"), CM_OK);
    assert_int_equal(head_of(&m, HTTP_REQUEST, NULL, in), LBP_HTTP_DONE);
    assert_int_equal(lbp_http_write_request(&m, in, fwd, &out), CM_OK);
    assert_string_equal(cm_buf_cstr(&out), want);
    assert_int_equal(out.len, strlen(want));
    lbp_http_msg_fini(&m);
    cm_buf_fini(&out);
}

static void test_write_request_exact(void **state)
{
    (void)state;
    expect_request("GET /x?y=1 HTTP/1.1\r\n"
                   "Host: a.example\r\n"
                   "Connection: keep-alive, X-Hop\r\n"
                   "X-Hop: 1\r\n"
                   "Keep-Alive: timeout=5\r\n"
                   "TE: trailers\r\n"
                   "Trailer: X-Sum\r\n"
                   "Proxy-Authorization: Basic eA==\r\n"
                   "Upgrade: h2c\r\n"
                   "Accept: */*\r\n"
                   "X-Forwarded-Proto: https\r\n"
                   "Via: 1.0 other\r\n"
                   "\r\n",
                   &test_fwd,
                   "GET /x?y=1 HTTP/1.1\r\n"
                   "Host: a.example\r\n"
                   "Accept: */*\r\n"
                   "Via: 1.0 other\r\n"
                   "X-Forwarded-For: 192.0.2.7\r\n"
                   "X-Forwarded-Proto: http\r\n"
                   "Via: 1.1 fedgslb-proxy\r\n"
                   "\r\n");
    /* Framing and Expect headers pass through. */
    expect_request("POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                   "Expect: 100-continue\r\n\r\n",
                   &test_fwd,
                   "POST /p HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                   "Expect: 100-continue\r\nX-Forwarded-For: 192.0.2.7\r\n"
                   "X-Forwarded-Proto: http\r\nVia: 1.1 fedgslb-proxy\r\n\r\n");
    expect_request("PUT /q HTTP/1.1\r\nContent-Length: 2\r\nHost: a\r\n\r\nhi", &test_fwd,
                   "PUT /q HTTP/1.1\r\nContent-Length: 2\r\nHost: a\r\n"
                   "X-Forwarded-For: 192.0.2.7\r\n"
                   "X-Forwarded-Proto: http\r\nVia: 1.1 fedgslb-proxy\r\n\r\n");
}

static void test_write_request_xff(void **state)
{
    const char *in = "GET / HTTP/1.1\r\n"
                     "X-Forwarded-For: 10.0.0.1\r\n"
                     "Host: a\r\n"
                     "X-Forwarded-For: 10.0.0.2, 10.0.0.3\r\n"
                     "X-Forwarded-For:\r\n"
                     "x-forwarded-proto: http\r\n"
                     "\r\n";
    struct lbp_http_fwd fwd = test_fwd;
    struct lbp_http_msg m;

    (void)state;
    assert_int_equal(head_of(&m, HTTP_REQUEST, NULL, in), LBP_HTTP_DONE);
    assert_int_equal(m.xff_count, 3);
    lbp_http_msg_fini(&m);

    /* Untrusted client: its X-Forwarded-For is dropped. */
    fwd.tls = true;
    expect_request(in, &fwd,
                   "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 192.0.2.7\r\n"
                   "X-Forwarded-Proto: https\r\nVia: 1.1 fedgslb-proxy\r\n\r\n");
    /* Trusted: kept in order (empty values skipped), the client appended. */
    fwd.keep_xff = true;
    fwd.tls = false;
    fwd.client_ip = "2001:db8::1";
    expect_request(in, &fwd,
                   "GET / HTTP/1.1\r\nHost: a\r\n"
                   "X-Forwarded-For: 10.0.0.1, 10.0.0.2, 10.0.0.3, 2001:db8::1\r\n"
                   "X-Forwarded-Proto: http\r\nVia: 1.1 fedgslb-proxy\r\n\r\n");
    /* Trusted but nothing incoming. */
    expect_request("GET / HTTP/1.1\r\nHost: a\r\n\r\n", &fwd,
                   "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 2001:db8::1\r\n"
                   "X-Forwarded-Proto: http\r\nVia: 1.1 fedgslb-proxy\r\n\r\n");
}

static void test_write_request_versions_upgrade(void **state)
{
    (void)state;
    /* HTTP/1.0 stays 1.0 and asks the backend to keep the connection. */
    expect_request("GET /old HTTP/1.0\r\nConnection: keep-alive\r\nUser-Agent: u\r\n\r\n",
                   &test_fwd,
                   "GET /old HTTP/1.0\r\nUser-Agent: u\r\nX-Forwarded-For: 192.0.2.7\r\n"
                   "X-Forwarded-Proto: http\r\nVia: 1.1 fedgslb-proxy\r\n"
                   "Connection: keep-alive\r\n\r\n");
    /* An upgrade keeps Upgrade and gets one normalized Connection line. */
    expect_request("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                   "Sec-WebSocket-Key: k\r\n\r\n",
                   &test_fwd,
                   "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n"
                   "X-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\n"
                   "Via: 1.1 fedgslb-proxy\r\nConnection: upgrade\r\n\r\n");
    /* Upgrade without "Connection: upgrade" is only hop-by-hop noise. */
    expect_request("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", &test_fwd,
                   "GET /ws HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 192.0.2.7\r\n"
                   "X-Forwarded-Proto: http\r\nVia: 1.1 fedgslb-proxy\r\n\r\n");
    /* Absolute-form target: origin form, Host from the authority (RFC 9112 section 3.2.2). */
    expect_request("GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n", &test_fwd,
                   "GET /b HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 192.0.2.7\r\n"
                   "X-Forwarded-Proto: http\r\nVia: 1.1 fedgslb-proxy\r\n\r\n");
}

static void test_write_request_too_big(void **state)
{
    const char *in = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    struct lbp_http_msg m;
    struct cm_buf out;

    (void)state;
    cm_buf_init(&out, 40);
    assert_int_equal(head_of(&m, HTTP_REQUEST, NULL, in), LBP_HTTP_DONE);
    assert_int_equal(lbp_http_write_request(&m, in, &test_fwd, &out), CM_ETOOBIG);
    lbp_http_msg_fini(&m);
    cm_buf_fini(&out);
}

/* ---- writing responses -------------------------------------------------- */

static void expect_response(const char *in, bool close, bool keep_alive10, bool tunnel,
                            const char *want)
{
    struct lbp_http_msg m;
    struct cm_buf out;

    cm_buf_init(&out, 4096);
    assert_int_equal(cm_buf_append_str(&out, "stale"), CM_OK);
    assert_int_equal(head_of(&m, HTTP_RESPONSE, NULL, in), LBP_HTTP_DONE);
    assert_int_equal(lbp_http_write_response(&m, in, close, keep_alive10, tunnel, &out), CM_OK);
    assert_string_equal(cm_buf_cstr(&out), want);
    lbp_http_msg_fini(&m);
    cm_buf_fini(&out);
}

static void test_write_response(void **state)
{
    const char *in = "HTTP/1.1 200 OK\r\n"
                     "Content-Type: text/plain\r\n"
                     "Connection: keep-alive, X-Hop\r\n"
                     "Keep-Alive: timeout=5\r\n"
                     "X-Hop: 1\r\n"
                     "Content-Length: 2\r\n"
                     "Proxy-Authenticate: Basic\r\n"
                     "\r\nok";
    const char *base = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n";
    char want[256];

    (void)state;
    snprintf(want, sizeof(want), "%sConnection: close\r\n\r\n", base);
    expect_response(in, true, false, false, want);
    /* close wins over keep_alive10. */
    expect_response(in, true, true, false, want);
    snprintf(want, sizeof(want), "%s\r\n", base);
    expect_response(in, false, false, false, want);
    snprintf(want, sizeof(want), "%sConnection: keep-alive\r\n\r\n", base);
    expect_response(in, false, true, false, want);

    /* An HTTP/1.0 backend is answered to the client as HTTP/1.1. */
    expect_response("HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n", false, false, false,
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    /* Chunked framing passes through. */
    expect_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n",
                    false, false, false, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    /* No reason phrase. */
    expect_response("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false, false, false,
                    "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n");
}

static void test_write_response_tunnel(void **state)
{
    const char *in = "HTTP/1.1 101 Switching Protocols\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                     "\r\n";
    struct lbp_http_msg m;

    (void)state;
    assert_int_equal(head_of(&m, HTTP_RESPONSE, NULL, in), LBP_HTTP_DONE);
    assert_int_equal(m.parser.status_code, 101);
    assert_int_equal(m.parser.upgrade, 1);
    assert_true(m.conn_upgrade);
    assert_true(m.message_done);
    assert_int_equal(m.head_len, strlen(in));
    lbp_http_msg_fini(&m);

    expect_response(in, true, false, true,
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                    "Connection: upgrade\r\n\r\n");
    expect_response(in, false, false, false,
                    "HTTP/1.1 101 Switching Protocols\r\n"
                    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
}

/* ---- error replies ------------------------------------------------------ */

static void test_write_error(void **state)
{
    static const struct {
        uint16_t status;
        const char *reason;
    } cases[] = {
        {400, "Bad Request"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {431, "Request Header Fields Too Large"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {599, "Error"},
    };
    struct lbp_http_msg m;
    struct cm_buf out;
    char body[64], want[512];
    size_t used;

    (void)state;
    cm_buf_init(&out, 4096);
    msg_init(&m, HTTP_RESPONSE, NULL);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body), "%u %s\n", (unsigned)cases[i].status, cases[i].reason);
        snprintf(want, sizeof(want),
                 "HTTP/1.1 %u %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\nVia: 1.1 fedgslb-proxy\r\n\r\n%s",
                 (unsigned)cases[i].status, cases[i].reason, strlen(body), body);
        assert_string_equal(lbp_http_reason(cases[i].status), cases[i].reason);
        assert_int_equal(lbp_http_write_error(cases[i].status, &out), CM_OK);
        assert_string_equal(cm_buf_cstr(&out), want);

        /* And it parses back: the length covers the body exactly, no keep-alive. */
        lbp_http_msg_reset(&m);
        assert_int_equal(lbp_http_head_parse(&m, out.data, out.len), LBP_HTTP_DONE);
        assert_int_equal(m.parser.status_code, cases[i].status);
        assert_int_equal(m.parser.content_length, strlen(body));
        assert_false(lbp_http_keep_alive(&m));
        assert_int_equal(lbp_http_body_feed(&m, out.data + m.head_len, out.len - m.head_len, &used),
                         LBP_HTTP_DONE);
        assert_int_equal(used, out.len - m.head_len);
    }
    assert_string_equal(cm_buf_cstr(&out) + out.len - strlen("599 Error\n"), "599 Error\n");
    lbp_http_msg_fini(&m);
    cm_buf_fini(&out);
}

/* ---- strictness ---------------------------------------------------------- */

/*
 * line_max bounds the request line (CRLF excluded) however it arrives. Was a
 * bug: it was checked against the URL when the head arrived in one piece but
 * against all parsed bytes while the line trickled in, so a 30-byte URL with
 * line_max 32 (request line 45 bytes) was accepted in one read and refused
 * with 414 byte by byte.
 */
static void test_line_limit_same_whatever_the_reads(void **state)
{
    struct lbp_http_limits lim = test_lim;
    char url[64], req[128];
    struct lbp_http_msg once, m;
    int rc_once, rc_bytes;

    (void)state;
    lim.line_max = 32;
    memset(url, 'u', 30);
    url[0] = '/';
    url[30] = '\0';
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", url);
    rc_once = head_of(&once, HTTP_REQUEST, &lim, req);
    msg_init(&m, HTTP_REQUEST, &lim);
    rc_bytes = parse_bytewise(&m, req, strlen(req), NULL);
    assert_int_equal(rc_bytes, rc_once);
    assert_int_equal(m.status, once.status);
    lbp_http_msg_fini(&m);
    lbp_http_msg_fini(&once);
}

/*
 * Was a bug: trailer fields of a chunked body go through on_field/on_value during
 * lbp_http_body_feed(): they are appended to m->hdrs (offsets computed against
 * m->base == NULL) and count against header_count_max. A request whose head
 * uses all header slots and whose body has a trailer gets 431 from body_feed.
 */
static void test_trailers_are_not_headers(void **state)
{
    struct lbp_http_limits lim = test_lim;
    const char *head = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    const char *body = "0\r\nX-T: 1\r\n\r\n";
    struct lbp_http_msg m;
    size_t used;

    (void)state;
    lim.header_count_max = 2;
    assert_int_equal(head_of(&m, HTTP_REQUEST, &lim, head), LBP_HTTP_DONE);
    assert_int_equal(lbp_http_body_feed(&m, body, strlen(body), &used), LBP_HTTP_DONE);
    assert_int_equal(used, strlen(body));
    assert_int_equal(m.status, 0);
    assert_int_equal(m.hdr_count, 2);
    lbp_http_msg_fini(&m);
}

/*
 * A 304 (or 204, 1xx) response ends with its head whatever its framing
 * headers say (RFC 9112 section 6.3). Was a bug: a 304 with the
 * Content-Length of the representation (allowed by RFC 9110 section 8.6) made
 * the module wait for that many body bytes, eating the next response on a
 * reused connection.
 */
static void test_304_204_end_with_head(void **state)
{
    static const char *const heads[] = {
        "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
        "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n",
        "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    struct lbp_http_msg m;
    size_t used;

    (void)state;
    msg_init(&m, HTTP_RESPONSE, NULL);
    for (size_t i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
        char buf[256];

        lbp_http_msg_reset(&m);
        snprintf(buf, sizeof(buf), "%sHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", heads[i]);
        assert_int_equal(parse_once(&m, buf), LBP_HTTP_DONE);
        assert_true(m.message_done);
        assert_false(lbp_http_has_body(&m));
        assert_int_equal(lbp_http_body_feed(&m, buf + m.head_len, 10, &used), LBP_HTTP_DONE);
        assert_int_equal(used, 0);
    }
    lbp_http_msg_fini(&m);
}

/*
 * Was a bug: whitespace between a field name and the colon is accepted (the system
 * libhttp-parser is built non-strict). The parser still treats
 * "Transfer-Encoding : chunked" as chunked and "Content-Length : 3" as a
 * length, but classify() sees the names with a trailing blank (LBP_H_OTHER,
 * not counted in te_count/cl_count) and the line is forwarded verbatim: a
 * backend that ignores the malformed field frames the body differently
 * (request smuggling). RFC 9112 section 5.1: a server MUST reject such a
 * request with 400.
 */
static void test_space_before_colon_rejected(void **state)
{
    (void)state;
    expect_head_error(HTTP_REQUEST,
                      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
                      400);
    expect_head_error(HTTP_REQUEST, "POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 3\r\n\r\nabc",
                      400);
    expect_head_error(HTTP_REQUEST, "GET / HTTP/1.1\r\nHost: a\r\nX A: b\r\n\r\n", 400);
}

/*
 * Was a bug: the two bytes after chunk data are not checked to be CRLF (non-strict
 * libhttp-parser): "5\r\nhelloXY0\r\n\r\n" ends the message here while a
 * strict backend reads it differently.
 */
static void test_chunk_data_needs_crlf(void **state)
{
    (void)state;
    expect_chunk_error(HTTP_REQUEST, "5\r\nhelloXY0\r\n\r\n", 400);
}

/*
 * Was a bug: two Host lines are accepted; RFC 9112 section 3.2 requires 400 for
 * "more than one Host header field line" (the module already enforces the
 * other half of that sentence, a missing Host). The proxy and the backend may
 * pick different hosts.
 */
static void test_duplicate_host_rejected(void **state)
{
    (void)state;
    expect_head_error(HTTP_REQUEST, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
}

/*
 * Was a bug: an obs-fold line ("X-F: a,\r\n b") ends up inside the header value and
 * is forwarded with its CRLF. RFC 9112 section 5.2: reject with 400 or replace
 * each obs-fold with SP before forwarding. Either fix passes this test.
 */
static void test_obs_fold_rejected(void **state)
{
    const char *in = "GET / HTTP/1.1\r\nHost: a\r\nX-F: a,\r\n b\r\nConnection: keep-alive,\r\n "
                     "close\r\n\r\n";
    struct lbp_http_msg m;
    struct cm_buf out;

    (void)state;
    cm_buf_init(&out, 4096);
    if (head_of(&m, HTTP_REQUEST, NULL, in) == LBP_HTTP_ERROR) {
        assert_int_equal(m.status, 400);
    } else {
        assert_int_equal(lbp_http_write_request(&m, in, &test_fwd, &out), CM_OK);
        assert_null(strstr(cm_buf_cstr(&out), "\r\n "));
        assert_true(m.conn_close);
    }
    lbp_http_msg_fini(&m);
    cm_buf_fini(&out);
}

/* A status code has three digits; the parser alone takes "HTTP/1.1 5 OK". */
static void test_status_three_digits(void **state)
{
    (void)state;
    expect_head_error(HTTP_RESPONSE, "HTTP/1.1 5 OK\r\nContent-Length: 0\r\n\r\n", 502);
    expect_head_error(HTTP_RESPONSE, "HTTP/1.1 99 X\r\nContent-Length: 0\r\n\r\n", 502);
}

/* ---- bug: h1 smuggling (CRLF-only framing, strict TE/CL, absolute form) ---- */

/* A byte string that may hold NUL: its length comes from the literal. */
#define BYTES(lit)                                                                                 \
    {                                                                                              \
        lit, sizeof(lit) - 1                                                                       \
    }

struct bytes {
    const char *s;
    size_t len;
};

/* Parses @in whole and byte by byte; both must give @rc and, on error, @status. */
static void expect_head(enum http_parser_type type, struct bytes in, int rc, uint16_t status)
{
    struct lbp_http_msg m;

    msg_init(&m, type, NULL);
    assert_int_equal(lbp_http_head_parse(&m, in.s, in.len), rc);
    assert_int_equal(m.status, rc == LBP_HTTP_ERROR ? status : 0);
    lbp_http_msg_reset(&m);
    assert_int_equal(parse_bytewise(&m, in.s, in.len, NULL), rc);
    assert_int_equal(m.status, rc == LBP_HTTP_ERROR ? status : 0);
    lbp_http_msg_fini(&m);
}

#define RQ(hdrs) BYTES("POST / HTTP/1.1\r\nHost: a\r\n" hdrs "\r\n")

/* Every line of the head ends in exactly CRLF; values and targets hold no CTL. */
static void test_smuggle_head_lines(void **state)
{
    static const struct {
        struct bytes in;
        int rc;
    } cases[] = {
        {BYTES("GET / HTTP/1.1\nHost: a\r\n\r\n"), LBP_HTTP_ERROR},
        {BYTES("GET / HTTP/1.1\r\nHost: a\n\r\n"), LBP_HTTP_ERROR},
        {BYTES("GET / HTTP/1.1\r\nHost: a\r\n\n"), LBP_HTTP_ERROR},
        {BYTES("GET / HTTP/1.1\r\nHost: a\nX-Y: 1\n\n"), LBP_HTTP_ERROR},
        {BYTES("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n"), LBP_HTTP_ERROR},
        {BYTES("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n"), LBP_HTTP_ERROR},
        {RQ("X: a\0b\r\n"), LBP_HTTP_ERROR},
        {RQ("X: a\vb\r\n"), LBP_HTTP_ERROR},
        {RQ("X: a\fb\r\n"), LBP_HTTP_ERROR},
        {RQ("X: a\x7f\r\n"), LBP_HTTP_ERROR},
        {BYTES("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n"), LBP_HTTP_ERROR},
        {BYTES("GET /a\fb HTTP/1.1\r\nHost: a\r\n\r\n"), LBP_HTTP_ERROR},
        /* Allowed: HTAB inside a value, obs-text, leading empty line. */
        {RQ("X: a\tb\r\n"), LBP_HTTP_DONE},
        {RQ("X: caf\xc3\xa9\r\n"), LBP_HTTP_DONE},
        {BYTES("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), LBP_HTTP_DONE},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_head(HTTP_REQUEST, cases[i].in, cases[i].rc, 400);
}

/* Transfer-Encoding: one line, tokens, chunked once and last; OWS is SP or HTAB only. */
static void test_smuggle_te_values(void **state)
{
    static const struct {
        struct bytes in;
        int rc;
    } cases[] = {
        {RQ("Transfer-Encoding: xchunked\r\n"), LBP_HTTP_ERROR},
        {RQ("Transfer-Encoding: chunkedx\r\n"), LBP_HTTP_ERROR},
        {RQ("Transfer-Encoding: chunked, identity\r\n"), LBP_HTTP_ERROR},
        {RQ("Transfer-Encoding: identity\r\n"), LBP_HTTP_ERROR},
        {RQ("Transfer-Encoding: chunked, chunked\r\n"), LBP_HTTP_ERROR},
        {RQ("Transfer-Encoding: , chunked\r\n"), LBP_HTTP_ERROR},
        {RQ("Transfer-Encoding: chunked,\r\n"), LBP_HTTP_ERROR},
        {RQ("Transfer-Encoding: chunked;q=1\r\n"), LBP_HTTP_ERROR},
        {RQ("Transfer-Encoding: \"chunked\"\r\n"), LBP_HTTP_ERROR},
        {RQ("Transfer-Encoding:\r\n"), LBP_HTTP_ERROR},
        {RQ("Transfer-Encoding:\vchunked\r\n"), LBP_HTTP_ERROR},
        {RQ("Transfer-Encoding: chunked\v\r\n"), LBP_HTTP_ERROR},
        {RQ("Transfer-Encoding: \0chunked\r\n"), LBP_HTTP_ERROR},
        {RQ("Transfer-Encoding: foo, chunked\r\n"), LBP_HTTP_ERROR},
        {RQ("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), LBP_HTTP_ERROR},
        {RQ("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"), LBP_HTTP_ERROR},
        {RQ("Transfer-Encoding: chunked\r\nContent-Length: 0\r\n"), LBP_HTTP_ERROR},
        {BYTES("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"), LBP_HTTP_ERROR},
        {BYTES("POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
         LBP_HTTP_ERROR},
        /* OWS: SP and HTAB, any amount; names and codings are case-insensitive. */
        {RQ("Transfer-Encoding:\tchunked\r\n"), LBP_HTTP_MORE},
        {RQ("Transfer-Encoding:  \t chunked\r\n"), LBP_HTTP_MORE},
        {RQ("transfer-encoding: CHUNKED\r\n"), LBP_HTTP_MORE},
        {RQ("Transfer-Encoding: gzip,chunked\r\n"), LBP_HTTP_MORE},
        /* libhttp-parser refuses OWS after the last coding and before a comma
         * (stricter than RFC 9110, and harmless): so do we. */
        {RQ("Transfer-Encoding: chunked \t\r\n"), LBP_HTTP_ERROR},
        {RQ("Transfer-Encoding: gzip ,\tchunked\r\n"), LBP_HTTP_ERROR},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lbp_http_msg m;
        int rc;

        msg_init(&m, HTTP_REQUEST, NULL);
        rc = lbp_http_head_parse(&m, cases[i].in.s, cases[i].in.len);
        if (cases[i].rc == LBP_HTTP_MORE) { /* accepted: a chunked body follows */
            assert_int_equal(rc, LBP_HTTP_DONE);
            assert_true(m.chunked);
            assert_true(lbp_http_has_body(&m));
        } else {
            assert_int_equal(rc, LBP_HTTP_ERROR);
            assert_int_equal(m.status, 400);
        }
        lbp_http_msg_fini(&m);
    }
}

/* Content-Length = 1*DIGIT, one line, at most 19 digits. */
static void test_smuggle_cl_values(void **state)
{
    static const struct {
        struct bytes in;
        int rc;
        uint64_t len;
    } cases[] = {
        {RQ("Content-Length: +5\r\n"), LBP_HTTP_ERROR, 0},
        {RQ("Content-Length: -5\r\n"), LBP_HTTP_ERROR, 0},
        {RQ("Content-Length: 5, 5\r\n"), LBP_HTTP_ERROR, 0},
        {RQ("Content-Length: 5,5\r\n"), LBP_HTTP_ERROR, 0},
        {RQ("Content-Length: 5 5\r\n"), LBP_HTTP_ERROR, 0},
        {RQ("Content-Length: 5\r\nContent-Length: 5\r\n"), LBP_HTTP_ERROR, 0},
        {RQ("Content-Length: 5\r\nContent-Length: 7\r\n"), LBP_HTTP_ERROR, 0},
        {RQ("Content-Length:\r\n"), LBP_HTTP_ERROR, 0},
        {RQ("Content-Length: 5\v\r\n"), LBP_HTTP_ERROR, 0},
        {RQ("Content-Length: 5\0\r\n"), LBP_HTTP_ERROR, 0},
        {RQ("Content-Length: 1e3\r\n"), LBP_HTTP_ERROR, 0},
        {RQ("Content-Length: 00000000000000000005\r\n"), LBP_HTTP_ERROR, 0},
        {RQ("Content-Length: 99999999999999999999999\r\n"), LBP_HTTP_ERROR, 0},
        {RQ("Content-Length: 005\r\n"), LBP_HTTP_DONE, 5},
        {RQ("Content-Length: 0000000000000000005\r\n"), LBP_HTTP_DONE, 5},
        {RQ("Content-Length:\t7 \r\n"), LBP_HTTP_DONE, 7},
        /* libhttp-parser refuses a trailing HTAB (stricter than OWS, harmless). */
        {RQ("Content-Length: 7\t\r\n"), LBP_HTTP_ERROR, 0},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct lbp_http_msg m;

        msg_init(&m, HTTP_REQUEST, NULL);
        assert_int_equal(lbp_http_head_parse(&m, cases[i].in.s, cases[i].in.len), cases[i].rc);
        if (cases[i].rc == LBP_HTTP_ERROR)
            assert_int_equal(m.status, 400);
        else
            assert_int_equal(m.parser.content_length, cases[i].len);
        lbp_http_msg_fini(&m);
    }
}

#define RESP(hdrs) BYTES("HTTP/1.1 200 OK\r\n" hdrs "\r\n")

/* The same discipline for response heads: 502. */
static void test_smuggle_response_head(void **state)
{
    static const struct bytes bad[] = {
        BYTES("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n"),
        BYTES("HTTP/1.1 200 OK\r\nContent-Length: 0\n\r\n"),
        BYTES("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\n"),
        BYTES("HTTP/1.1 200 O\0K\r\nContent-Length: 0\r\n\r\n"),
        RESP("Content-Length: +0\r\n"),
        RESP("Content-Length: 0, 0\r\n"),
        RESP("X: a\vb\r\nContent-Length: 0\r\n"),
        RESP("Transfer-Encoding: chunked, chunked\r\n"),
        RESP("Transfer-Encoding: chunked, gzip\r\n"),
        RESP("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
        BYTES("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
    };

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_head(HTTP_RESPONSE, bad[i], LBP_HTTP_ERROR, 502);
    /* A coding the proxy does not know is fine in a response: read until close. */
    expect_head(HTTP_RESPONSE, (struct bytes)RESP("Transfer-Encoding: br\r\n"), LBP_HTTP_DONE, 0);
}

#define TE_HEAD_REQ  "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
#define TE_HEAD_RESP "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"

/*
 * Feeds @body after a chunked head, whole and then one byte per call: both
 * must end with @rc (MORE: accepted so far; DONE: accepted and ended at the
 * last byte) and, on error, @status with nothing of the failing call
 * reported as consumed.
 */
static void expect_chunked(enum http_parser_type type, struct bytes body, int rc, uint16_t status)
{
    const char *head = type == HTTP_REQUEST ? TE_HEAD_REQ : TE_HEAD_RESP;
    struct lbp_http_limits lim = test_lim;
    struct lbp_http_msg m;
    size_t used, i;
    int got = LBP_HTTP_MORE;

    if (type == HTTP_RESPONSE)
        lim.body_max = UINT64_MAX; /* as the proxy sets it */
    assert_int_equal(head_of(&m, type, &lim, head), LBP_HTTP_DONE);
    assert_int_equal(lbp_http_body_feed(&m, body.s, body.len, &used), rc);
    assert_int_equal(used, rc == LBP_HTTP_ERROR ? 0 : body.len);
    assert_int_equal(m.status, rc == LBP_HTTP_ERROR ? status : 0);
    lbp_http_msg_reset(&m);
    assert_int_equal(parse_once(&m, head), LBP_HTTP_DONE);
    for (i = 0; i < body.len && got == LBP_HTTP_MORE; i++)
        got = lbp_http_body_feed(&m, body.s + i, 1, &used);
    assert_int_equal(got, rc);
    assert_int_equal(m.status, rc == LBP_HTTP_ERROR ? status : 0);
    if (rc == LBP_HTTP_ERROR)
        assert_int_equal(lbp_http_body_eof(&m), LBP_HTTP_ERROR);
    lbp_http_msg_fini(&m);
}

static const struct {
    const char *what;
    struct bytes body;
    int rc;
} chunk_cases[] = {
    {"bare LF after ext", BYTES("5;\nhello\r\n0\r\n\r\n"), LBP_HTTP_ERROR},
    {"bare LF after size", BYTES("5\nhello\r\n0\r\n\r\n"), LBP_HTTP_ERROR},
    {"CR then X after size", BYTES("5\rXhello\r\n0\r\n\r\n"), LBP_HTTP_ERROR},
    {"CR then X after ext", BYTES("5;a\rXhello\r\n0\r\n\r\n"), LBP_HTTP_ERROR},
    {"bare LF after data", BYTES("5\r\nhello\n0\r\n\r\n"), LBP_HTTP_ERROR},
    {"bare CR after data", BYTES("5\r\nhello\r0\r\n\r\n"), LBP_HTTP_ERROR},
    {"X then LF after data", BYTES("5\r\nhelloX\n0\r\n\r\n"), LBP_HTTP_ERROR},
    {"last chunk bare LF", BYTES("0\n\r\n"), LBP_HTTP_ERROR},
    {"final line bare LF", BYTES("0\r\n\n"), LBP_HTTP_ERROR},
    {"trailer bare LF", BYTES("0\r\nX: y\n\r\n"), LBP_HTTP_ERROR},
    {"trailer CR then X", BYTES("0\r\nX: y\rZ\r\n\r\n"), LBP_HTTP_ERROR},
    {"trailer obs-fold SP", BYTES("0\r\nX: y\r\n z\r\n\r\n"), LBP_HTTP_ERROR},
    {"trailer obs-fold HTAB", BYTES("0\r\nX: y\r\n\tz\r\n\r\n"), LBP_HTTP_ERROR},
    {"trailer TE", BYTES("0\r\nTransfer-Encoding: chunked\r\n\r\n"), LBP_HTTP_ERROR},
    {"trailer CL", BYTES("0\r\ncontent-length: 5\r\n\r\n"), LBP_HTTP_ERROR},
    {"trailer Host", BYTES("0\r\nHost: evil\r\n\r\n"), LBP_HTTP_ERROR},
    {"trailer Connection", BYTES("0\r\nConnection: close\r\n\r\n"), LBP_HTTP_ERROR},
    {"trailer empty name", BYTES("0\r\n: y\r\n\r\n"), LBP_HTTP_ERROR},
    {"trailer space in name", BYTES("0\r\nX Y: z\r\n\r\n"), LBP_HTTP_ERROR},
    {"trailer NUL", BYTES("0\r\nX: a\0b\r\n\r\n"), LBP_HTTP_ERROR},
    {"trailer no colon", BYTES("0\r\nGET /admin HTTP/1.1\r\n\r\n"), LBP_HTTP_ERROR},
    {"size 17 digits", BYTES("00000000000000005\r\nhello\r\n0\r\n\r\n"), LBP_HTTP_ERROR},
    {"size 2^63", BYTES("8000000000000000\r\n"), LBP_HTTP_ERROR},
    {"size overflows", BYTES("10000000000000005\r\nhello\r\n0\r\n\r\n"), LBP_HTTP_ERROR},
    {"size empty", BYTES(";a\r\nhello\r\n0\r\n\r\n"), LBP_HTTP_ERROR},
    {"size signed", BYTES("+5\r\nhello\r\n0\r\n\r\n"), LBP_HTTP_ERROR},
    {"size 0x", BYTES("0x5\r\nhello\r\n0\r\n\r\n"), LBP_HTTP_ERROR},
    {"size SP before CRLF", BYTES("5 \r\nhello\r\n0\r\n\r\n"), LBP_HTTP_ERROR},
    {"size HTAB before CRLF", BYTES("5\t\r\nhello\r\n0\r\n\r\n"), LBP_HTTP_ERROR},
    {"ext NUL", BYTES("5;a\0b\r\nhello\r\n0\r\n\r\n"), LBP_HTTP_ERROR},
    {"ext VT", BYTES("5;a\vb\r\nhello\r\n0\r\n\r\n"), LBP_HTTP_ERROR},
    {"ext bare LF inside", BYTES("5;a\nb\r\nhello\r\n0\r\n\r\n"), LBP_HTTP_ERROR},
    /* Accepted. */
    {"16 digits", BYTES("0000000000000005\r\nhello\r\n0\r\n\r\n"), LBP_HTTP_DONE},
    {"ext with BWS", BYTES("5 \t; a=\"b;c\"\r\nhello\r\n0;x\r\n\r\n"), LBP_HTTP_DONE},
    {"trailers", BYTES("5\r\nhello\r\n0\r\nX-Sum: 1\r\nX-T:\tb c\r\n\r\n"), LBP_HTTP_DONE},
    {"upper hex", BYTES("A\r\n0123456789\r\n0\r\n\r\n"), LBP_HTTP_DONE},
    {"large size so far", BYTES("fff\r\nabc"), LBP_HTTP_MORE},
};

static void test_smuggle_chunk_lines(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(chunk_cases) / sizeof(chunk_cases[0]); i++) {
        print_message("chunk case: %s\n", chunk_cases[i].what);
        expect_chunked(HTTP_REQUEST, chunk_cases[i].body, chunk_cases[i].rc, 400);
        expect_chunked(HTTP_RESPONSE, chunk_cases[i].body, chunk_cases[i].rc, 502);
    }
}

/* A chunk-size line holds at most LBP_CHUNK_LINE_MAX bytes, extensions included. */
static void test_smuggle_chunk_ext_cap(void **state)
{
    size_t cap = LBP_CHUNK_LINE_MAX;
    char *body = malloc(cap + 32);
    size_t len;

    (void)state;
    assert_non_null(body);
    for (size_t ext = cap - 1; ext <= cap; ext++) {
        /* "5;" + ext-1 bytes: a line of ext + 1 bytes. */
        body[0] = '5';
        body[1] = ';';
        memset(body + 2, 'e', ext - 1);
        len = ext + 1;
        memcpy(body + len, "\r\nhello\r\n0\r\n\r\n", 14);
        len += 14;
        expect_chunked(HTTP_REQUEST, (struct bytes){body, len},
                       ext + 1 <= cap ? LBP_HTTP_DONE : LBP_HTTP_ERROR, 400);
    }
    free(body);
}

/* The body limit applies at the chunk-size line, before any data. */
static void test_smuggle_chunk_size_over_limit(void **state)
{
    (void)state;
    expect_chunked(HTTP_REQUEST, (struct bytes)BYTES("1001\r\n"), LBP_HTTP_ERROR, 413);
    expect_chunked(HTTP_REQUEST, (struct bytes)BYTES("1000\r\n"), LBP_HTTP_MORE, 0);
    expect_chunked(HTTP_RESPONSE, (struct bytes)BYTES("7fffffffffffffff\r\nab"), LBP_HTTP_MORE, 0);
}

/* Absolute form: forwarded in origin form, Host is the authority (RFC 9112 section 3.2.2). */
static void test_smuggle_absolute_form(void **state)
{
    static const struct {
        const char *in, *want;
    } ok[] = {
        {"GET http://good/p?q HTTP/1.1\r\nHost: evil\r\nX: 1\r\n\r\n",
         "GET /p?q HTTP/1.1\r\nHost: good\r\nX: 1\r\n"},
        {"GET HTTP://good:8080 HTTP/1.1\r\nHost: good:8080\r\n\r\n",
         "GET / HTTP/1.1\r\nHost: good:8080\r\n"},
        {"GET https://good?x=1 HTTP/1.1\r\nHost: good\r\n\r\n",
         "GET /?x=1 HTTP/1.1\r\nHost: good\r\n"},
        {"GET http://good/ten HTTP/1.0\r\n\r\n", "GET /ten HTTP/1.0\r\nHost: good\r\n"},
        {"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "OPTIONS * HTTP/1.1\r\nHost: a\r\n"},
    };
    static const char *const bad[] = {
        "GET http://user@good/p HTTP/1.1\r\nHost: good\r\n\r\n",
        "GET http:///p HTTP/1.1\r\nHost: good\r\n\r\n",
        "GET ftp://good/p HTTP/1.1\r\nHost: good\r\n\r\n",
        "GET good/p HTTP/1.1\r\nHost: good\r\n\r\n",
        "GET http://good/p HTTP/1.1\r\n\r\n",
        "GET http://good/p HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    };
    struct cm_buf out;

    (void)state;
    cm_buf_init(&out, 4096);
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct lbp_http_msg m;

        assert_int_equal(head_of(&m, HTTP_REQUEST, NULL, ok[i].in), LBP_HTTP_DONE);
        assert_int_equal(lbp_http_write_request(&m, ok[i].in, &test_fwd, &out), CM_OK);
        assert_int_equal(strncmp(cm_buf_cstr(&out), ok[i].want, strlen(ok[i].want)), 0);
        assert_null(strstr(cm_buf_cstr(&out), "evil"));
        lbp_http_msg_fini(&m);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_head_error(HTTP_REQUEST, bad[i], 400);
    cm_buf_fini(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_offsets),
        cmocka_unit_test(test_head_response_offsets),
        cmocka_unit_test(test_head_bytewise_same),
        cmocka_unit_test(test_hop_by_hop),
        cmocka_unit_test(test_hop_connection_protected),
        cmocka_unit_test(test_reset_reuses_headers),
        cmocka_unit_test(test_errors_sticky_and_basic),
        cmocka_unit_test(test_limit_line),
        cmocka_unit_test(test_limit_header_bytes),
        cmocka_unit_test(test_limit_header_count),
        cmocka_unit_test(test_limit_body),
        cmocka_unit_test(test_smuggle_cl_te),
        cmocka_unit_test(test_smuggle_duplicate_cl),
        cmocka_unit_test(test_smuggle_transfer_encoding),
        cmocka_unit_test(test_smuggle_chunk_size),
        cmocka_unit_test(test_body_content_length_split),
        cmocka_unit_test(test_body_chunked_every_split),
        cmocka_unit_test(test_body_chunked_whole_message_bytewise),
        cmocka_unit_test(test_body_until_eof),
        cmocka_unit_test(test_body_head_response),
        cmocka_unit_test(test_body_no_content_statuses),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_methods_idempotent),
        cmocka_unit_test(test_write_request_exact),
        cmocka_unit_test(test_write_request_xff),
        cmocka_unit_test(test_write_request_versions_upgrade),
        cmocka_unit_test(test_write_request_too_big),
        cmocka_unit_test(test_write_response),
        cmocka_unit_test(test_write_response_tunnel),
        cmocka_unit_test(test_write_error),
        cmocka_unit_test(test_line_limit_same_whatever_the_reads),
        cmocka_unit_test(test_trailers_are_not_headers),
        cmocka_unit_test(test_304_204_end_with_head),
        cmocka_unit_test(test_space_before_colon_rejected),
        cmocka_unit_test(test_chunk_data_needs_crlf),
        cmocka_unit_test(test_duplicate_host_rejected),
        cmocka_unit_test(test_obs_fold_rejected),
        cmocka_unit_test(test_status_three_digits),
        cmocka_unit_test(test_smuggle_head_lines),
        cmocka_unit_test(test_smuggle_te_values),
        cmocka_unit_test(test_smuggle_cl_values),
        cmocka_unit_test(test_smuggle_response_head),
        cmocka_unit_test(test_smuggle_chunk_lines),
        cmocka_unit_test(test_smuggle_chunk_ext_cap),
        cmocka_unit_test(test_smuggle_chunk_size_over_limit),
        cmocka_unit_test(test_smuggle_absolute_form),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
