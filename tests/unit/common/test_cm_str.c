/* SPDX-License-Identifier: Apache-2.0 */
/* test_cm_str.c -- cm_str_is_dns_label() (table). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/cm_str.h"

#define L63 "a23456789012345678901234567890123456789012345678901234567890123"

static void test_dns_label(void **state)
{
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"a", true},         {"web", true},  {"us-east-1", true}, {"0", true},
        {"9lives", true},    {"a--b", true}, {L63, true},         {L63 "4", false}, /* 64 bytes */
        {"", false},         {"-a", false},  {"a-", false},       {"-", false},
        {"Web", false}, /* uppercase */
        {"a.b", false},      {"a_b", false}, {"a b", false},      {"a/b", false},
        {"\xc3\xa9", false}, /* non-ASCII */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("\"%s\"\n", cases[i].s);
        assert_int_equal(cm_str_is_dns_label(cases[i].s, strlen(cases[i].s)), cases[i].ok);
    }
    /* the length is what counts, not a NUL: "default/web" in two pieces */
    assert_true(cm_str_is_dns_label("default/web", 7));
    assert_true(cm_str_is_dns_label(&"default/web"[8], 3));
    assert_false(cm_str_is_dns_label("default/web", 8));
    assert_false(cm_str_is_dns_label("a\0b", 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dns_label),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
