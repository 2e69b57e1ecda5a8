/* SPDX-License-Identifier: Apache-2.0 */
/* test_cm_time.c -- the monotonic clock and cm_ms_to_timeval(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ms_to_timeval),
        cmocka_unit_test(test_mono_advances),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
