/* SPDX-License-Identifier: Apache-2.0 */
/* test_cm_time.c -- the monotonic clock, cm_ms_to_timeval() and RFC 3339 timestamps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/cm_time.h"

static void test_ms_to_timeval(void **state)
{
    static const struct {
        uint64_t ms;
        long long sec;
        long usec;
    } cases[] = {
        {0, 0, 0},
        {1, 0, 1000},
        {10, 0, 10000},
        {999, 0, 999000},
        {1000, 1, 0},
        {1001, 1, 1000},
        {10000, 10, 0},
        {3600000, 3600, 0},
        {UINT32_MAX, 4294967, 295000},
        {UINT64_C(1) << 40, 1099511627, 776000},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct timeval tv = cm_ms_to_timeval(cases[i].ms);

        print_message("ms %llu\n", (unsigned long long)cases[i].ms);
        assert_true((long long)tv.tv_sec == cases[i].sec);
        assert_true((long)tv.tv_usec == cases[i].usec);
    }
}

static void test_mono_advances(void **state)
{
    uint64_t us = cm_mono_us(), ms = cm_mono_ms();

    (void)state;
    assert_true(cm_mono_us() >= us);
    assert_true(cm_mono_ms() >= ms);
    assert_true(ms <= cm_mono_us() / 1000u);
}

static void test_rfc3339_round_trip(void **state)
{
    static const struct {
        const char *text;
        int64_t t;
    } cases[] = {
        {"1970-01-01T00:00:00Z", 0},
        {"2026-11-21T07:00:00Z", 1795244400},
        {"2000-02-29T23:59:59Z", 951868799},
        {"2038-01-19T03:14:08Z", INT64_C(2147483648)},
    };
    char buf[32];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t t = -1;

        print_message("%s\n", cases[i].text);
        assert_true(cm_time_parse_rfc3339(cases[i].text, &t));
        assert_true(t == cases[i].t);
        cm_time_format_rfc3339(t, buf, sizeof(buf));
        assert_string_equal(buf, cases[i].text);
    }
}

static void test_rfc3339_forms(void **state)
{
    static const char *const bad[] = {
        "",
        "2026-11-21",
        "2026-11-21T07:00:00",
        "2026-11-21T07:00:00+01:00",
        "2026-13-01T00:00:00Z",
        "2026-02-29T00:00:00Z",
        "2026-11-21T24:00:00Z",
        "2026-11-21T07:00:00.Z",
        "2026-11-21T07:00:00Zx",
        "2026-1x-21T07:00:00Z",
    };
    int64_t t = 0;

    (void)state;
    assert_true(cm_time_parse_rfc3339("2026-11-21t07:00:00.123456z", &t));
    assert_true(t == 1795244400);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        print_message("bad %s\n", bad[i]);
        assert_false(cm_time_parse_rfc3339(bad[i], &t));
    }
    assert_true(cm_wall_s() > 1700000000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ms_to_timeval),
        cmocka_unit_test(test_mono_advances),
        cmocka_unit_test(test_rfc3339_round_trip),
        cmocka_unit_test(test_rfc3339_forms),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
