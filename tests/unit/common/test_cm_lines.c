/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cm_lines.c -- the splitter whatever the chunking (every split point of
 * a stream of etcd watch lines, and byte by byte), the cap, and a callback's
 * stop. The Kubernetes and etcd fuzz targets feed it their streams too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/cm_err.h"
#include "common/cm_lines.h"

struct collect {
    char lines[8][128];
    size_t count;
    size_t stop_at; /* return 7 after this many lines (0 = never) */
};

static int collect_fn(void *arg, const char *line, size_t len)
{
    struct collect *c = arg;

    assert_true(c->count < 8);
    assert_true(len < sizeof(c->lines[0]));
    memcpy(c->lines[c->count], line, len);
    c->lines[c->count][len] = '\0';
    c->count++;
    return c->stop_at != 0 && c->count == c->stop_at ? 7 : 0;
}

static const char STREAM[] = "{\"result\":{\"created\":true}}\n"
                             "\r\n\n"
                             "{\"result\":{\"events\":[]}}\r\n"
                             "{\"result\":{\"canceled\":true}}\n"
                             "{\"resu";

static void check(const struct collect *c, const struct cm_lines *ls)
{
    assert_int_equal(c->count, 3);
    assert_string_equal(c->lines[0], "{\"result\":{\"created\":true}}");
    assert_string_equal(c->lines[1], "{\"result\":{\"events\":[]}}");
    assert_string_equal(c->lines[2], "{\"result\":{\"canceled\":true}}");
    assert_int_equal(cm_lines_pending(ls), strlen("{\"resu"));
}

static void test_every_split(void **state)
{
    size_t n = sizeof(STREAM) - 1;

    (void)state;
    for (size_t i = 0; i <= n; i++) {
        for (size_t j = i; j <= n; j++) {
            struct collect c = {.count = 0};
            struct cm_lines ls;

            cm_lines_init(&ls, 1024);
            assert_int_equal(cm_lines_feed(&ls, STREAM, i, collect_fn, &c), CM_OK);
            assert_int_equal(cm_lines_feed(&ls, STREAM + i, j - i, collect_fn, &c), CM_OK);
            assert_int_equal(cm_lines_feed(&ls, STREAM + j, n - j, collect_fn, &c), CM_OK);
            check(&c, &ls);
            cm_lines_reset(&ls);
            assert_int_equal(cm_lines_pending(&ls), 0);
            cm_lines_fini(&ls);
        }
    }
}

static void test_byte_by_byte(void **state)
{
    struct collect c = {.count = 0};
    struct cm_lines ls;

    (void)state;
    cm_lines_init(&ls, 1024);
    for (size_t i = 0; i < sizeof(STREAM) - 1; i++)
        assert_int_equal(cm_lines_feed(&ls, STREAM + i, 1, collect_fn, &c), CM_OK);
    check(&c, &ls);
    cm_lines_fini(&ls);
}

static void test_cap_and_stop(void **state)
{
    char big[100];
    struct collect c = {.count = 0};
    struct cm_lines ls;

    (void)state;
    memset(big, 'x', sizeof(big));
    cm_lines_init(&ls, 64);
    /* Exactly at the cap is fine; one more byte is not, whatever the chunking. */
    assert_int_equal(cm_lines_feed(&ls, big, 64, collect_fn, &c), CM_OK);
    assert_int_equal(cm_lines_feed(&ls, "\n", 1, collect_fn, &c), CM_OK);
    assert_int_equal(c.count, 1);
    assert_int_equal(strlen(c.lines[0]), 64);
    assert_int_equal(cm_lines_feed(&ls, big, 40, collect_fn, &c), CM_OK);
    assert_int_equal(cm_lines_feed(&ls, big, 25, collect_fn, &c), CM_ETOOBIG);
    cm_lines_reset(&ls);
    assert_int_equal(cm_lines_feed(&ls, big, 65, collect_fn, &c), CM_ETOOBIG);
    cm_lines_reset(&ls);
    /* A callback's non-zero return stops the feed and is passed through. */
    c.count = 0;
    c.stop_at = 2;
    assert_int_equal(cm_lines_feed(&ls, "a\nb\nc\n", 6, collect_fn, &c), 7);
    assert_int_equal(c.count, 2);
    cm_lines_fini(&ls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_split),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_cap_and_stop),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
