/* SPDX-License-Identifier: Apache-2.0 */
/* test_hc_exec.c -- ExecCredential parsing, and plugin runs on a real event
 * loop with /bin/sh children: output, exit status, timeout, output cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <event2/event.h>

#include "common/cm_err.h"
#include "common/cm_time.h"
#include "health/hc_exec.h"

#define V1 "client.authentication.k8s.io/v1"

static int parse(const char *json, char **tok, char **cert, char **key, int64_t *exp, char *err)
{
    return hc_exec_parse(json, strlen(json), V1, tok, cert, key, exp, err, 256);
}

static void test_parse_token(void **state)
{
    char *tok, *cert, *key, err[256];
    int64_t exp;

    (void)state;
    assert_int_equal(parse("{\"kind\":\"ExecCredential\",\"apiVersion\":\"" V1 "\","
                           "\"status\":{\"token\":\"abc.def\",\"expirationTimestamp\":"
                           "\"2030-01-02T03:04:05Z\"}}",
                           &tok, &cert, &key, &exp, err),
                     CM_OK);
    assert_string_equal(tok, "abc.def");
    assert_null(cert);
    assert_int_equal(exp, 1893553445);
    free(tok);
    /* fractional seconds and an offset */
    assert_int_equal(parse("{\"kind\":\"ExecCredential\",\"apiVersion\":\"" V1 "\","
                           "\"status\":{\"token\":\"t\",\"expirationTimestamp\":"
                           "\"2030-01-02T04:04:05.123+01:00\"}}",
                           &tok, &cert, &key, &exp, err),
                     CM_OK);
    assert_int_equal(exp, 1893553445);
    free(tok);
}

static void test_parse_errors(void **state)
{
    static const struct {
        const char *json, *why;
    } cases[] = {
        {"nope", "output is not a JSON object"},
        {"[]", "output is not a JSON object"},
        {"{\"kind\":\"Pod\",\"apiVersion\":\"" V1 "\"}", "output is not an ExecCredential"},
        {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1beta1\","
         "\"status\":{\"token\":\"t\"}}",
         "exec plugin is configured to use API version " V1
         ", plugin returned version client.authentication.k8s.io/v1beta1"},
        {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"" V1 "\"}",
         "exec plugin didn't return a status field"},
        {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"" V1 "\",\"status\":{}}",
         "exec plugin didn't return a token or cert/key pair"},
        {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"" V1 "\",\"status\":{\"token\":\"a\\r\\n"
         "X-Evil: 1\"}}",
         "status.token contains spaces or control characters"},
        {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"" V1 "\",\"status\":{\"token\":\"a\\u0000"
         "b\"}}",
         "output is not a JSON object"}, /* jansson refuses \u0000 */
        {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"" V1 "\",\"status\":{"
         "\"clientCertificateData\":\"-----BEGIN CERTIFICATE-----\"}}",
         "exec plugin returned clientCertificateData without clientKeyData"},
        {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"" V1 "\",\"status\":{\"token\":\"t\","
         "\"expirationTimestamp\":\"tomorrow\"}}",
         "status.expirationTimestamp is not an RFC 3339 time"},
        {"{\"kind\":\"ExecCredential\",\"apiVersion\":\"" V1 "\",\"status\":{\"token\":7}}",
         "status.token is not a string"},
    };
    char *tok, *cert, *key, err[256];
    int64_t exp;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_not_equal(parse(cases[i].json, &tok, &cert, &key, &exp, err), CM_OK);
        assert_null(tok);
        assert_null(cert);
        assert_null(key);
        if (strstr(err, cases[i].why) == NULL)
            fail_msg("case %zu: %s (want %s)", i, err, cases[i].why);
    }
}

/* ---- runs ---------------------------------------------------------------------- */

static struct hc_exec *sh(const char *script, uint32_t timeout_ms)
{
    static const char *args[2];
    struct hc_exec_conf c = {.context = "t",
                             .command = "/bin/sh",
                             .argc = 2,
                             .api_version = V1,
                             .interactive = HC_EXEC_NEVER};

    args[0] = "-c";
    args[1] = script;
    c.args = args;
    return hc_exec_new(&c, timeout_ms);
}

/* Runs the loop until @x has a token, its run count passes @runs_done and no
 * child is left, or @ms passes. */
static void loop_for(struct event_base *base, int ms)
{
    struct timeval tv = cm_ms_to_timeval((uint64_t)ms);

    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

static void on_done(void *arg, struct hc_exec *x)
{
    (void)x;
    (*(int *)arg)++;
}

static void test_run_token(void **state)
{
    int done = 0;
    struct event_base *base = event_base_new();
    struct hc_exec *x =
        sh("cat >/dev/null; echo '{\"kind\":\"ExecCredential\",\"apiVersion\":\"" V1 "\","
           "\"status\":{\"token\":\"tok-1\"}}'",
           2000);

    (void)state;
    assert_int_equal(hc_exec_attach(x, base, NULL, on_done, &done), CM_OK);
    assert_null(hc_exec_token(x));
    assert_true(hc_exec_pending(x));
    loop_for(base, 1000);
    assert_false(hc_exec_pending(x));
    assert_int_equal(done, 1);
    assert_string_equal(hc_exec_token(x), "tok-1");
    assert_int_equal(hc_exec_generation(x), 1);
    assert_int_equal(hc_exec_runs(x), 1);
    /* A 401 with that credential runs it once more; an old generation does not. */
    hc_exec_unauthorized(x, 0);
    assert_int_equal(hc_exec_runs(x), 1);
    hc_exec_unauthorized(x, 1);
    assert_int_equal(hc_exec_runs(x), 2);
    assert_null(hc_exec_token(x));
    loop_for(base, 1000);
    assert_string_equal(hc_exec_token(x), "tok-1");
    assert_int_equal(hc_exec_generation(x), 2);
    hc_exec_free(x);
    event_base_free(base);
}

static void test_run_failures(void **state)
{
    struct event_base *base = event_base_new();
    struct hc_exec *hang = sh("sleep 30", 300);
    struct hc_exec *fail = sh("echo boom >&2; exit 3", 2000);
    struct hc_exec *huge = sh("head -c 2000000 /dev/zero", 5000);
    time_t t0 = time(NULL);

    (void)state;
    assert_int_equal(hc_exec_attach(hang, base, NULL, NULL, NULL), CM_OK);
    assert_int_equal(hc_exec_attach(fail, base, NULL, NULL, NULL), CM_OK);
    assert_int_equal(hc_exec_attach(huge, base, NULL, NULL, NULL), CM_OK);
    loop_for(base, 800); /* the hung one is killed at 300 ms; nothing blocks */
    assert_true(time(NULL) - t0 <= 2);
    assert_null(hc_exec_token(hang));
    assert_null(hc_exec_token(fail));
    assert_null(hc_exec_token(huge));
    assert_int_equal(hc_exec_runs(hang), 1);
    hc_exec_free(hang);
    hc_exec_free(fail);
    hc_exec_free(huge);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_token),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_run_token),
        cmocka_unit_test(test_run_failures),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
