/* SPDX-License-Identifier: Apache-2.0 */
/* test_cm_base64.c -- strict standard base64 with padding, whitespace skipped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/cm_base64.h"
#include "common/cm_err.h"

static void ok(const char *in, const char *want, size_t wantlen)
{
    char *out = NULL;
    size_t len = 0;

    assert_int_equal(cm_base64_decode(in, strlen(in), &out, &len), CM_OK);
    assert_int_equal(len, wantlen);
    assert_memory_equal(out, want, wantlen);
    assert_int_equal(out[len], '\0');
    free(out);
}

static void bad(const char *in, size_t len)
{
    char *out = NULL;
    size_t outlen = 7;

    assert_int_equal(cm_base64_decode(in, len, &out, &outlen), CM_EPARSE);
    assert_null(out);
    assert_int_equal(outlen, 7);
}

static void test_decode(void **state)
{
    (void)state;
    ok("Zg==", "f", 1);
    ok("Zm8=", "fo", 2);
    ok("Zm9v", "foo", 3);
    ok("Zm9vYmFy", "foobar", 6);
    ok("Zm9v\nYmFy\r\n", "foobar", 6); /* folded */
    ok("AP8A", "\0\xff\0", 3);
    ok("+/+/", "\xfb\xff\xbf", 3);
}

static void test_refused(void **state)
{
    (void)state;
    bad("", 0);
    bad("   ", 3);
    bad("Zg=", 3);      /* not a multiple of 4 */
    bad("Zg", 2);       /* no padding */
    bad("Z===", 4);     /* too much padding */
    bad("Zg==Zg==", 8); /* padding inside */
    bad("Zm-v", 4);     /* URL alphabet */
    bad("Zm_v", 4);
    bad("Zm9v\0mFy", 8); /* a NUL byte inside the length */
    bad("Zm9\xc3\xa9", 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
