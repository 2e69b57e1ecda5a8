/* SPDX-License-Identifier: Apache-2.0 */
/* test_cm_err.c -- cm_errf() and cm_err_oom(): the message out-parameter of setup code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/cm_err.h"

static void test_errf_fits_and_cuts(void **state)
{
    static const struct {
        size_t errlen;
        const char *want;
    } cases[] = {
        {64, "worker 3: out of memory"}, /* fits */
        {24, "worker 3: out of memory"}, /* exactly: 23 bytes and the NUL */
        {23, "worker 3: out of memor"},  /* cut, still terminated */
        {2, "w"},
        {1, ""},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[64];

        memset(err, 'x', sizeof(err));
        print_message("errlen %zu\n", cases[i].errlen);
        cm_errf(err, cases[i].errlen, "worker %u: %s", 3u, "out of memory");
        assert_string_equal(err, cases[i].want);
        /* nothing written past errlen */
        if (cases[i].errlen < sizeof(err))
            assert_int_equal(err[cases[i].errlen], 'x');
    }
}

static void test_errf_no_buffer(void **state)
{
    char err[4] = "abc";

    (void)state;
    cm_errf(NULL, 0, "ignored %d", 1);
    cm_errf(NULL, 16, "ignored %d", 2); /* NULL is "no message wanted" */
    cm_errf(err, 0, "ignored %d", 3);
    assert_string_equal(err, "abc");
}

static int wrapper(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int wrapper(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cm_verrf(err, errlen, fmt, ap);
    va_end(ap);
    return CM_EPARSE;
}

static void test_verrf_in_a_wrapper(void **state)
{
    char err[32];

    (void)state;
    assert_int_equal(wrapper(err, sizeof(err), "items[%zu]: %s", (size_t)2, "bad"), CM_EPARSE);
    assert_string_equal(err, "items[2]: bad");
    assert_int_equal(wrapper(NULL, 0, "items[%zu]", (size_t)2), CM_EPARSE);
}

static void test_oom(void **state)
{
    static const struct {
        const char *what;
        const char *want;
    } cases[] = {
        {NULL, "out of memory"},
        {"control", "control: out of memory"},
        {"/etc/fedgslb/tls.pem", "/etc/fedgslb/tls.pem: out of memory"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[64] = "";

        assert_int_equal(cm_err_oom(err, sizeof(err), cases[i].what), CM_ENOMEM);
        assert_string_equal(err, cases[i].want);
    }
    assert_int_equal(cm_err_oom(NULL, 0, "control"), CM_ENOMEM);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errf_fits_and_cuts),
        cmocka_unit_test(test_errf_no_buffer),
        cmocka_unit_test(test_verrf_in_a_wrapper),
        cmocka_unit_test(test_oom),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
