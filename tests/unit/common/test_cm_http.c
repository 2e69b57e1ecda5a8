/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cm_http.c -- the control API's request-head parser: what it accepts
 * and what it reads out of a head, and, in one table, every malformed head it
 * must refuse (each row breaks one rule) with the reason it gives.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "common/cm_err.h"
#include "common/cm_http.h"

static int parse(const char *text, struct cm_http_head *h, size_t *head_len, const char **why)
{
    return cm_http_head_parse(text, strlen(text), h, head_len, why);
}

static void test_accepts_and_reads(void **state)
{
    static const char req[] = "PUT /v1/state?x=1 HTTP/1.1\r\n"
                              "Host: 127.0.0.1\r\n"
                              "authorization:  Bearer abc \t\r\n"
                              "Content-Length: 42\r\n"
                              "Content-Length: 42\r\n" /* repeated, same value: allowed */
                              "Connection: keep-alive, Close\r\n"
                              "Expect: 100-Continue\r\n"
                              "\r\n"
                              "{body}";
    struct cm_http_head h;
    const char *why = NULL;
    size_t head_len = 0;

    (void)state;
    assert_int_equal(parse(req, &h, &head_len, &why), CM_OK);
    assert_int_equal(head_len, strlen(req) - strlen("{body}"));
    assert_int_equal(h.method, CM_HTTP_PUT);
    assert_int_equal(h.target_len, strlen("/v1/state?x=1"));
    assert_memory_equal(h.target, "/v1/state?x=1", h.target_len);
    assert_int_equal(h.minor, 1);
    assert_true(h.has_length);
    assert_int_equal(h.length, 42);
    assert_false(h.has_te);
    assert_true(h.close);
    assert_true(h.expect_continue);
    assert_false(h.expect_other);
    assert_int_equal(h.auth_len, strlen("Bearer abc"));
    assert_memory_equal(h.auth, "Bearer abc", h.auth_len);
}

static void test_http10_and_methods(void **state)
{
    struct cm_http_head h;
    const char *why = NULL;
    size_t n = 0;

    (void)state;
    /* HTTP/1.0: no Host needed, closes unless keep-alive is asked. */
    assert_int_equal(parse("GET /healthz HTTP/1.0\r\n\r\n", &h, &n, &why), CM_OK);
    assert_int_equal(h.minor, 0);
    assert_true(h.close);
    assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &h, &n, &why),
                     CM_OK);
    assert_false(h.close);
    /* HTTP/1.1 keeps the connection unless asked. */
    assert_int_equal(parse("DELETE /a HTTP/1.1\r\nHost: h\r\n\r\n", &h, &n, &why), CM_OK);
    assert_int_equal(h.method, CM_HTTP_DELETE);
    assert_false(h.close);
    /* A valid token we do not serve is a method too (the server says 501). */
    assert_int_equal(parse("PATCH /a HTTP/1.1\r\nHost: h\r\n\r\n", &h, &n, &why), CM_OK);
    assert_int_equal(h.method, CM_HTTP_OTHER);
    /* Methods are case-sensitive. */
    assert_int_equal(parse("get /a HTTP/1.1\r\nHost: h\r\n\r\n", &h, &n, &why), CM_OK);
    assert_int_equal(h.method, CM_HTTP_OTHER);
    assert_int_equal(parse("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                           "Expect: something\r\n\r\n",
                           &h, &n, &why),
                     CM_OK);
    assert_int_equal(h.method, CM_HTTP_POST);
    assert_true(h.has_te);
    assert_true(h.expect_other);
    /* The largest Content-Length we read: 18 digits. */
    assert_int_equal(
        parse("PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 999999999999999999\r\n\r\n", &h, &n,
              &why),
        CM_OK);
    assert_int_equal(h.length, 999999999999999999ull);
}

static void test_incomplete(void **state)
{
    static const char *const partial[] = {
        "",
        "GET",
        "GET /healthz HTTP/1.1",
        "GET /healthz HTTP/1.1\r",
        "GET /healthz HTTP/1.1\r\n",
        "GET /healthz HTTP/1.1\r\nHost: x\r\n",
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r",
    };
    struct cm_http_head h;
    const char *why = NULL;
    size_t n = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++) {
        if (parse(partial[i], &h, &n, &why) != CM_EAGAIN)
            fail_msg("\"%s\" is not reported incomplete", partial[i]);
    }
}

static void test_refuses(void **state)
{
    static const struct {
        const char *head;
        const char *why;
    } bad[] = {
        {"GET /a HTTP/1.1\nHost: h\r\n\r\n", "a line does not end in CRLF"},
        {"GET /a HTTP/1.1\r\nHost: h\n\r\n", "a line does not end in CRLF"},
        {"GET /a HTTP/1.1\r\nHost: h\r\n\n", "a line does not end in CRLF"},
        {"GET /a HTTP/1.1\r\nHost: h\rX\r\n\r\n", "stray CR or NUL in the head"},
        {"GET  /a HTTP/1.1\r\nHost: h\r\n\r\n", "malformed request line"},
        {"GET /a  HTTP/1.1\r\nHost: h\r\n\r\n", "unsupported HTTP version"},
        {"GET\r\nHost: h\r\n\r\n", "malformed request line"},
        {"G(T /a HTTP/1.1\r\nHost: h\r\n\r\n", "malformed method"},
        {"GETTINGVERYLONGMETHOD /a HTTP/1.1\r\nHost: h\r\n\r\n", "malformed request line"},
        {"GET /a\x7f HTTP/1.1\r\nHost: h\r\n\r\n", "malformed request target"},
        {"GET http://h/a HTTP/1.1\r\nHost: h\r\n\r\n",
         "the request target must be a path (origin form)"},
        {"GET * HTTP/1.1\r\nHost: h\r\n\r\n", "the request target must be a path (origin form)"},
        {"GET /a HTTP/2.0\r\nHost: h\r\n\r\n", "unsupported HTTP version"},
        {"GET /a HTTP/1.10\r\nHost: h\r\n\r\n", "unsupported HTTP version"},
        {"GET /a http/1.1\r\nHost: h\r\n\r\n", "unsupported HTTP version"},
        {"GET /a HTTP/1.1\r\n\r\n", "HTTP/1.1 request without Host"},
        {"GET /a HTTP/1.1\r\nHost: h\r\nHost: i\r\n\r\n", "more than one Host field"},
        {"GET /a HTTP/1.1\r\nHost : h\r\n\r\n", "malformed header field name"},
        {"GET /a HTTP/1.1\r\nHo\tst: h\r\n\r\n", "malformed header field name"},
        {"GET /a HTTP/1.1\r\n: h\r\nHost: h\r\n\r\n", "malformed header field"},
        {"GET /a HTTP/1.1\r\nHost h\r\n\r\n", "malformed header field"},
        {"GET /a HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", "obsolete line folding"},
        {"GET /a HTTP/1.1\r\nHost: h\r\nX: a\x01\r\n\r\n",
         "control character in a header field value"},
        {"PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", "malformed Content-Length"},
        {"PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: +1\r\n\r\n", "malformed Content-Length"},
        {"PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 1\r\n\r\n", "malformed Content-Length"},
        {"PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", "malformed Content-Length"},
        {"PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", "malformed Content-Length"},
        {"PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1000000000000000000\r\n\r\n",
         "malformed Content-Length"},
        {"PUT /a HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
         "conflicting Content-Length fields"},
        {"GET /a HTTP/1.1\r\nHost: h\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n",
         "more than one Authorization field"},
    };
    struct cm_http_head h;
    const char *why = NULL;
    size_t n = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = parse(bad[i].head, &h, &n, &why);

        if (rc != CM_EPARSE || why == NULL || strcmp(why, bad[i].why) != 0)
            fail_msg("row %zu: rc=%d why=\"%s\", want \"%s\"", i, rc, why ? why : "(null)",
                     bad[i].why);
    }
    /* A NUL inside a line (strlen would stop at it). */
    {
        static const char nul[] = "GET /a HTTP/1.1\r\nHost: h\0x\r\n\r\n";

        assert_int_equal(cm_http_head_parse(nul, sizeof(nul) - 1, &h, &n, &why), CM_EPARSE);
        assert_string_equal(why, "stray CR or NUL in the head");
    }
}

static void test_too_many_fields(void **state)
{
    char head[8192];
    size_t used;
    struct cm_http_head h;
    const char *why = NULL;
    size_t n = 0;

    (void)state;
    used = (size_t)snprintf(head, sizeof(head), "GET /a HTTP/1.1\r\nHost: h\r\n");
    for (int i = 0; i < 99; i++) /* 100 fields with Host: the most allowed */
        used += (size_t)snprintf(head + used, sizeof(head) - used, "X-%d: v\r\n", i);
    snprintf(head + used, sizeof(head) - used, "\r\n");
    assert_int_equal(parse(head, &h, &n, &why), CM_OK);
    snprintf(head + used, sizeof(head) - used, "X-last: v\r\n\r\n");
    assert_int_equal(parse(head, &h, &n, &why), CM_EPARSE);
    assert_string_equal(why, "too many header fields");
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(cm_http_method_name(CM_HTTP_DELETE), "DELETE");
    assert_string_equal(cm_http_method_name(CM_HTTP_OTHER), "OTHER");
    assert_string_equal(cm_http_reason(401), "Unauthorized");
    assert_string_equal(cm_http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(cm_http_reason(299), "Unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_and_reads), cmocka_unit_test(test_http10_and_methods),
        cmocka_unit_test(test_incomplete),        cmocka_unit_test(test_refuses),
        cmocka_unit_test(test_too_many_fields),   cmocka_unit_test(test_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
