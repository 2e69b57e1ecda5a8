/* SPDX-License-Identifier: Apache-2.0 */
/* test_ctl_table.c -- plain-text tables: widths, gaps, NULL cells, no
 * trailing blanks, control characters flattened, UTF-8 widths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/cm_err.h"
#include "common/cm_str.h"
#include "ctl/ctl_table.h"

static char *render(struct ctl_table *t, struct cm_buf *b)
{
    cm_buf_init(b, 1 << 20);
    assert_int_equal(ctl_table_render(t, b), CM_OK);
    return b->data;
}

static void test_columns_align(void **state)
{
    struct ctl_table *t = ctl_table_new(3);
    const char *h[] = {"SERVICE", "MEMBER", "REASON"};
    const char *r1[] = {"default/web", "usa", "probe ok"};
    const char *r2[] = {"a", NULL, "x"};
    struct cm_buf b;

    (void)state;
    assert_non_null(t);
    assert_int_equal(ctl_table_add_row(t, h), CM_OK);
    assert_int_equal(ctl_table_add_row(t, r1), CM_OK);
    assert_int_equal(ctl_table_add_row(t, r2), CM_OK);
    assert_int_equal(ctl_table_rows(t), 3);
    assert_string_equal(render(t, &b), "SERVICE      MEMBER  REASON\n"
                                       "default/web  usa     probe ok\n"
                                       "a            -       x\n");
    cm_buf_fini(&b);
    ctl_table_free(t);
}

static void test_no_trailing_blanks(void **state)
{
    struct ctl_table *t = ctl_table_new(2);
    const char *h[] = {"A", "B"};
    const char *r1[] = {"longer", ""};
    struct cm_buf b;

    (void)state;
    assert_int_equal(ctl_table_add_row(t, h), CM_OK);
    assert_int_equal(ctl_table_add_row(t, r1), CM_OK);
    assert_string_equal(render(t, &b), "A       B\nlonger\n");
    cm_buf_fini(&b);
    ctl_table_free(t);
}

static void test_control_chars_and_utf8(void **state)
{
    struct ctl_table *t = ctl_table_new(2);
    const char *r1[] = {"caf\xc3\xa9", "a\nb\tc"};
    const char *r2[] = {"abcd", "z"};
    struct cm_buf b;

    (void)state;
    assert_int_equal(ctl_table_add_row(t, r1), CM_OK);
    assert_int_equal(ctl_table_add_row(t, r2), CM_OK);
    /* "café" is 4 columns wide, like "abcd" */
    assert_string_equal(render(t, &b), "caf\xc3\xa9  a b c\nabcd  z\n");
    cm_buf_fini(&b);
    ctl_table_free(t);
}

static void test_many_rows(void **state)
{
    struct ctl_table *t = ctl_table_new(1);
    struct cm_buf b;
    size_t lines = 0;

    (void)state;
    for (int i = 0; i < 100; i++) {
        const char *r[] = {"row"};

        assert_int_equal(ctl_table_add_row(t, r), CM_OK);
    }
    for (const char *p = render(t, &b); *p != '\0'; p++)
        lines += *p == '\n';
    assert_int_equal(lines, 100);
    cm_buf_fini(&b);
    ctl_table_free(t);
}

static void test_zero_columns(void **state)
{
    (void)state;
    assert_null(ctl_table_new(0));
    ctl_table_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_columns_align),          cmocka_unit_test(test_no_trailing_blanks),
        cmocka_unit_test(test_control_chars_and_utf8), cmocka_unit_test(test_many_rows),
        cmocka_unit_test(test_zero_columns),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
