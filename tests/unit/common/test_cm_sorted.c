/* SPDX-License-Identifier: Apache-2.0 */
/* test_cm_sorted.c -- cm_lower_bound(): where a key is, or where it would go. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/cm_sorted.h"

static int int_cmp(const void *elem, const void *key)
{
    int a = *(const int *)elem, b = *(const int *)key;

    return a < b ? -1 : a > b ? 1 : 0;
}

static void test_positions(void **state)
{
    static const int v[] = {2, 4, 4, 4, 9};
    static const struct {
        int key;
        size_t pos;
        bool found;
    } cases[] = {
        {1, 0, false}, {2, 0, true}, {3, 1, false},  {4, 1, true}, /* the first of three */
        {5, 4, false}, {9, 4, true}, {10, 5, false},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bool found = !cases[i].found;

        print_message("key %d\n", cases[i].key);
        assert_int_equal(cm_lower_bound(v, 5, sizeof(v[0]), &cases[i].key, int_cmp, &found),
                         cases[i].pos);
        assert_int_equal(found, cases[i].found);
        /* found may be left out */
        assert_int_equal(cm_lower_bound(v, 5, sizeof(v[0]), &cases[i].key, int_cmp, NULL),
                         cases[i].pos);
    }
}

static void test_small(void **state)
{
    static const int one[] = {7};
    int key = 7;
    bool found = true;

    (void)state;
    assert_int_equal(cm_lower_bound(NULL, 0, sizeof(int), &key, int_cmp, &found), 0);
    assert_false(found);
    assert_int_equal(cm_lower_bound(one, 1, sizeof(int), &key, int_cmp, &found), 0);
    assert_true(found);
    key = 8;
    assert_int_equal(cm_lower_bound(one, 1, sizeof(int), &key, int_cmp, &found), 1);
    assert_false(found);
}

/* Every length up to 64 and every key: the index of a linear scan. */
static void test_against_scan(void **state)
{
    int v[64];

    (void)state;
    for (size_t n = 0; n <= 64; n++) {
        for (size_t i = 0; i < n; i++)
            v[i] = (int)(i / 2) * 3; /* pairs: 0 0 3 3 6 6 ... */
        for (int key = -1; key <= (int)n * 2; key++) {
            size_t want = 0;
            bool found;

            while (want < n && v[want] < key)
                want++;
            assert_int_equal(cm_lower_bound(v, n, sizeof(v[0]), &key, int_cmp, &found), want);
            assert_int_equal(found, want < n && v[want] == key);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_small),
        cmocka_unit_test(test_against_scan),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
