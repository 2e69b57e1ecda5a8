/* SPDX-License-Identifier: Apache-2.0 */
/* test_cm_log.c -- JSON lines: trailing key=value pairs become keys (quote-aware). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/cm_log.h"

/* Logs one line with stderr pointed at a temporary file; returns it parsed. */
static json_t *log_json(const char *msg)
{
    char path[] = "/tmp/test_cm_log.XXXXXX";
    char buf[8192];
    int fd = mkstemp(path);
    int saved = dup(STDERR_FILENO);
    ssize_t n;
    json_error_t jerr;
    json_t *doc;

    assert_true(fd >= 0 && saved >= 0);
    unlink(path);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    cm_log_write(CM_LOG_INFO, "%s", msg);
    dup2(saved, STDERR_FILENO);
    close(saved);
    n = pread(fd, buf, sizeof(buf) - 1, 0);
    close(fd);
    assert_true(n > 0 && buf[n - 1] == '\n');
    buf[n] = '\0';
    doc = json_loads(buf, 0, &jerr);
    if (doc == NULL)
        fail_msg("not JSON: %s (%s)", buf, jerr.text);
    return doc;
}

static void expect(json_t *doc, const char *key, const char *value)
{
    const char *got = json_string_value(json_object_get(doc, key));

    if (value == NULL) {
        assert_null(json_object_get(doc, key));
        return;
    }
    if (got == NULL || strcmp(got, value) != 0)
        fail_msg("%s: got \"%s\", want \"%s\"", key, got != NULL ? got : "(absent)", value);
}

static void test_pairs_become_keys(void **unused)
{
    json_t *d;

    (void)unused;
    cm_log_init("test", CM_LOG_JSON, CM_LOG_DEBUG);
    d = log_json("view built: serial=3 fed_names=7 build_us=120");
    expect(d, "msg", "view built");
    expect(d, "serial", "3");
    expect(d, "fed_names", "7");
    expect(d, "build_us", "120");
    expect(d, "component", "test");
    expect(d, "level", "info");
    json_decref(d);
}

static void test_quoted_values(void **unused)
{
    json_t *d;

    (void)unused;
    cm_log_init("test", CM_LOG_JSON, CM_LOG_DEBUG);
    d = log_json("probe failed member=usa reason=\"connect timeout a=b\" note=\"say \\\"hi\\\"\"");
    expect(d, "msg", "probe failed");
    expect(d, "member", "usa");
    expect(d, "reason", "connect timeout a=b");
    expect(d, "note", "say \"hi\"");
    json_decref(d);
}

static void test_only_trailing_pairs(void **unused)
{
    json_t *d;

    (void)unused;
    cm_log_init("test", CM_LOG_JSON, CM_LOG_DEBUG);
    /* a=b in the middle of prose is not a field; the pairs after it are. */
    d = log_json("reload failed: x=1 is wrong; keeping the old one code=5");
    expect(d, "msg", "reload failed: x=1 is wrong; keeping the old one");
    expect(d, "code", "5");
    expect(d, "x", NULL);
    json_decref(d);
    /* No pairs: the message as it is. */
    d = log_json("state file: not found; starting with no state");
    expect(d, "msg", "state file: not found; starting with no state");
    json_decref(d);
    /* An unterminated quote is not a pair. */
    d = log_json("odd value=\"open");
    expect(d, "msg", "odd value=\"open");
    expect(d, "value", NULL);
    json_decref(d);
    /* Keys of the line itself stay in the message. */
    d = log_json("spoof level=error");
    expect(d, "msg", "spoof level=error");
    expect(d, "level", "info");
    json_decref(d);
    /* Control bytes in a value are escaped, the line stays JSON. */
    d = log_json("ctl request path=/a\x01z code=200");
    expect(d, "path", "/a\x01z");
    json_decref(d);
}

static void test_long_line_stays_json(void **unused)
{
    char msg[4000];
    json_t *d;

    (void)unused;
    cm_log_init("test", CM_LOG_JSON, CM_LOG_DEBUG);
    memset(msg, 'x', sizeof(msg));
    memcpy(msg + sizeof(msg) - 12, " k=\"v v v\"", 10);
    msg[sizeof(msg) - 2] = '\0';
    d = log_json(msg);
    assert_non_null(json_object_get(d, "msg"));
    json_decref(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pairs_become_keys),
        cmocka_unit_test(test_quoted_values),
        cmocka_unit_test(test_only_trailing_pairs),
        cmocka_unit_test(test_long_line_stays_json),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
