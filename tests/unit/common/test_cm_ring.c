/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cm_ring.c -- the single-producer single-consumer ring: order, full
 * (drop and count, never overwrite), drain budgets, wraparound of the slot
 * index many times over, alignment, and a real producer thread against a
 * consumer: every record arrives once, in order, or is counted as dropped.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/cm_ring.h"

struct rec {
    uint64_t seq;
    char pad[20]; /* an odd size: slots are rounded up */
};

struct seen {
    uint64_t next; /* the seq expected next */
    size_t calls;
    bool in_order;
};

static void check_rec(const void *p, void *arg)
{
    const struct rec *r = p;
    struct seen *s = arg;

    if (r->seq != s->next)
        s->in_order = false;
    s->next = r->seq + 1;
    s->calls++;
}

static bool put(struct cm_ring *r, uint64_t seq)
{
    struct rec *slot = cm_ring_reserve(r);

    if (slot == NULL)
        return false;
    slot->seq = seq;
    cm_ring_commit(r);
    return true;
}

static void test_bad_sizes(void **state)
{
    (void)state;
    assert_null(cm_ring_new(0, 8));
    assert_null(cm_ring_new(8, 0));
    assert_null(cm_ring_new(SIZE_MAX / 2, 64)); /* count x size overflows */
    assert_null(cm_ring_new(2, SIZE_MAX - 1));
    cm_ring_free(NULL);
}

static void test_full_drops_and_keeps_the_oldest(void **state)
{
    struct cm_ring *r = cm_ring_new(4, sizeof(struct rec));
    struct seen s = {.next = 0, .in_order = true};

    (void)state;
    assert_non_null(r);
    assert_int_equal(cm_ring_count(r), 4);
    assert_int_equal(cm_ring_drain(r, 100, check_rec, &s), 0); /* empty */
    for (uint64_t i = 0; i < 4; i++)
        assert_true(put(r, i));
    assert_int_equal(cm_ring_used(r), 4);
    assert_int_equal(cm_ring_dropped(r), 0);
    /* Full: the newcomers are dropped and counted, the held ones kept. */
    assert_false(put(r, 100));
    assert_false(put(r, 101));
    assert_int_equal(cm_ring_dropped(r), 2);
    assert_int_equal(cm_ring_drain(r, 100, check_rec, &s), 4);
    assert_true(s.in_order);
    assert_int_equal(s.next, 4);
    assert_int_equal(cm_ring_used(r), 0);
    /* Room again. */
    assert_true(put(r, 4));
    assert_int_equal(cm_ring_drain(r, 100, check_rec, &s), 1);
    assert_true(s.in_order);
    assert_int_equal(cm_ring_dropped(r), 2);
    cm_ring_free(r);
}

/* A reserve without a commit publishes nothing and gives the same slot again. */
static void test_reserve_without_commit(void **state)
{
    struct cm_ring *r = cm_ring_new(2, sizeof(struct rec));
    struct seen s = {.next = 7, .in_order = true};
    void *a, *b;

    (void)state;
    a = cm_ring_reserve(r);
    b = cm_ring_reserve(r);
    assert_ptr_equal(a, b);
    assert_int_equal(cm_ring_drain(r, 10, check_rec, &s), 0);
    ((struct rec *)a)->seq = 7;
    cm_ring_commit(r);
    assert_int_equal(cm_ring_drain(r, 10, check_rec, &s), 1);
    assert_true(s.in_order);
    cm_ring_free(r);
}

/* The budget: at most max per drain, the rest stays for the next one. */
static void test_drain_budget(void **state)
{
    struct cm_ring *r = cm_ring_new(8, sizeof(struct rec));
    struct seen s = {.next = 0, .in_order = true};

    (void)state;
    for (uint64_t i = 0; i < 7; i++)
        assert_true(put(r, i));
    assert_int_equal(cm_ring_drain(r, 3, check_rec, &s), 3);
    assert_int_equal(cm_ring_used(r), 4);
    assert_int_equal(cm_ring_drain(r, 0, check_rec, &s), 0);
    assert_int_equal(cm_ring_drain(r, 3, check_rec, &s), 3);
    assert_int_equal(cm_ring_drain(r, 3, check_rec, &s), 1);
    assert_true(s.in_order);
    assert_int_equal(s.next, 7);
    assert_int_equal(s.calls, 7);
    cm_ring_free(r);
}

/* Counts that are no power of two, and the index going round many times. */
static void test_wraparound(void **state)
{
    static const size_t counts[] = {1, 2, 3, 5, 7, 64};

    (void)state;
    for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
        struct cm_ring *r = cm_ring_new(counts[c], sizeof(struct rec));
        struct seen s = {.next = 0, .in_order = true};
        uint64_t seq = 0;

        assert_non_null(r);
        for (int round = 0; round < 1000; round++) {
            /* Fill to the brim (one more is refused), then drain in two bites. */
            while (put(r, seq))
                seq++;
            assert_int_equal(cm_ring_used(r), counts[c]);
            cm_ring_drain(r, counts[c] / 2, check_rec, &s);
            cm_ring_drain(r, counts[c], check_rec, &s);
        }
        assert_true(s.in_order);
        assert_int_equal(s.next, seq);
        assert_int_equal(seq, 1000 * counts[c]);
        assert_int_equal(cm_ring_dropped(r), 1000);
        cm_ring_free(r);
    }
}

static void check_aligned(const void *p, void *arg)
{
    (void)arg;
    assert_int_equal((uintptr_t)p % alignof(max_align_t), 0);
}

static void test_slots_aligned(void **state)
{
    struct cm_ring *r = cm_ring_new(5, 3);

    (void)state;
    for (int i = 0; i < 5; i++) {
        void *p = cm_ring_reserve(r);

        assert_non_null(p);
        memset(p, 0xab, 3);
        cm_ring_commit(r);
    }
    assert_int_equal(cm_ring_drain(r, 5, check_aligned, NULL), 5);
    cm_ring_free(r);
}

#define THREAD_RECORDS 200000

struct producer {
    struct cm_ring *r;
    uint64_t produced; /* records offered, kept or dropped */
};

static void *produce(void *arg)
{
    struct producer *p = arg;

    for (uint64_t i = 0; i < THREAD_RECORDS; i++) {
        struct rec *slot = cm_ring_reserve(p->r);

        p->produced++;
        if (slot == NULL)
            continue;
        memset(slot, 0, sizeof(*slot));
        slot->seq = i;
        memcpy(slot->pad, &i, sizeof(i)); /* a second copy: torn records show */
        cm_ring_commit(p->r);
    }
    return NULL;
}

struct consumer {
    uint64_t last;
    uint64_t got;
    bool ok;
};

static void consume(const void *p, void *arg)
{
    const struct rec *r = p;
    struct consumer *c = arg;
    uint64_t copy;

    memcpy(&copy, r->pad, sizeof(copy));
    if (copy != r->seq || (c->got > 0 && r->seq <= c->last))
        c->ok = false;
    c->last = r->seq;
    c->got++;
}

/* A real producer thread: what arrives is whole, in order, once; with the
 * drops, nothing is missing. */
static void test_two_threads(void **state)
{
    struct cm_ring *r = cm_ring_new(16, sizeof(struct rec));
    struct producer p = {.r = r};
    struct consumer c = {.ok = true};
    pthread_t t;

    (void)state;
    assert_int_equal(pthread_create(&t, NULL, produce, &p), 0);
    for (;;) {
        size_t n = cm_ring_drain(r, 5, consume, &c);

        if (n == 0 && c.got + cm_ring_dropped(r) == THREAD_RECORDS)
            break;
    }
    pthread_join(t, NULL);
    assert_true(c.ok);
    assert_int_equal(p.produced, THREAD_RECORDS);
    assert_int_equal(c.got + cm_ring_dropped(r), THREAD_RECORDS);
    assert_int_equal(cm_ring_used(r), 0);
    cm_ring_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_sizes),
        cmocka_unit_test(test_full_drops_and_keeps_the_oldest),
        cmocka_unit_test(test_reserve_without_commit),
        cmocka_unit_test(test_drain_budget),
        cmocka_unit_test(test_wraparound),
        cmocka_unit_test(test_slots_aligned),
        cmocka_unit_test(test_two_threads),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
