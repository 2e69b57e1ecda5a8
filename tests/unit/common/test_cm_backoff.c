/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cm_backoff.c -- the steps (tables), and each jitter shape against the
 * formula its first user wrote by hand: hc_watch.c (equal jitter, 0.5 s to
 * 30 s) and hc_publish.c (+-20 %, 250 ms to 10 s).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/cm_backoff.h"
#include "common/cm_rand.h"

#define MAX_STEPS 10

static void test_steps(void **state)
{
    static const struct {
        uint32_t min_ms, max_ms;
        uint32_t steps[MAX_STEPS]; /* 0 ends the list */
    } cases[] = {
        {500, 30000, {500, 1000, 2000, 4000, 8000, 16000, 30000, 30000}},
        {250, 10000, {250, 500, 1000, 2000, 4000, 8000, 10000, 10000}},
        {100, 1000, {100, 200, 400, 800, 1000, 1000}},
        {1, 2, {1, 2, 2}},
        {3, 7, {3, 7, 7}}, /* 3 is not below 7/2: straight to the cap */
        {5, 5, {5, 5, 5}},
        {1u << 30, UINT32_MAX, {1u << 30, 1u << 31, UINT32_MAX, UINT32_MAX}}, /* no overflow */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cm_backoff b;

        print_message("min %u max %u\n", cases[i].min_ms, cases[i].max_ms);
        cm_backoff_init(&b, cases[i].min_ms, cases[i].max_ms, CM_BACKOFF_JITTER_NONE);
        for (size_t k = 0; k < MAX_STEPS && cases[i].steps[k] != 0; k++) {
            assert_int_equal(cm_backoff_next(&b, NULL), cases[i].steps[k]);
            assert_int_equal(b.step_ms, cases[i].steps[k]);
        }
        cm_backoff_reset(&b);
        assert_int_equal(b.step_ms, 0);
        assert_int_equal(cm_backoff_next(&b, NULL), cases[i].min_ms);
    }
}

/* Each shape draws exactly what the hand-written formula drew from the same
 * random state, and stays within its bounds. */
static void test_jitter_shapes(void **state)
{
    static const struct {
        enum cm_backoff_jitter jitter;
        uint32_t min_ms, max_ms;
    } cases[] = {
        {CM_BACKOFF_JITTER_EQUAL, 500, 30000}, /* hc_watch */
        {CM_BACKOFF_JITTER_20PCT, 250, 10000}, /* hc_publish */
        {CM_BACKOFF_JITTER_EQUAL, 1, 2},
        {CM_BACKOFF_JITTER_20PCT, 1, 4}, /* step/5 == 0: no spread */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cm_backoff b;
        uint64_t rng, ref;

        cm_rand_seed(&rng, &b);
        ref = rng;
        cm_backoff_init(&b, cases[i].min_ms, cases[i].max_ms, cases[i].jitter);
        for (int round = 0; round < 200; round++) {
            uint32_t d, want, step, j;

            if (round % 20 == 0)
                cm_backoff_reset(&b); /* a success now and then */
            d = cm_backoff_next(&b, &rng);
            step = b.step_ms;
            if (cases[i].jitter == CM_BACKOFF_JITTER_EQUAL) {
                want = step / 2 + cm_rand_below(&ref, step / 2 + 1);
                assert_true(d >= step / 2 && d <= step);
            } else {
                j = step / 5;
                want = step - j + cm_rand_below(&ref, 2 * j + 1);
                assert_true(d >= step - j && d <= step + j);
            }
            assert_int_equal(d, want);
        }
        assert_true(rng == ref);
    }
}

/* No jitter draws nothing: the random state is left alone. */
static void test_none_keeps_rng(void **state)
{
    struct cm_backoff b;
    uint64_t rng = 42;

    (void)state;
    cm_backoff_init(&b, 100, 1000, CM_BACKOFF_JITTER_NONE);
    assert_int_equal(cm_backoff_next(&b, &rng), 100);
    assert_true(rng == 42);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps),
        cmocka_unit_test(test_jitter_shapes),
        cmocka_unit_test(test_none_keeps_rng),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
