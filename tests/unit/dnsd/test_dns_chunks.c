/* SPDX-License-Identifier: Apache-2.0 */
/* test_dns_chunks.c -- shared ownership of per-service parts: a chunk is
 * taken whole only when it holds the very same parts, every part is owned
 * by every chunk vector that holds it, and each is freed exactly once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/cm_err.h"
#include "dnsd/dns_chunks.h"

#define N 150 /* three chunks, the last one partial */

struct part {
    int refs;
    int id;
};

static int freed;

static void ref(void *p)
{
    ((struct part *)p)->refs++;
}

static void unref(void *p)
{
    struct part *x = p;

    assert_true(x->refs > 0);
    if (--x->refs == 0) {
        freed++;
        free(x);
    }
}

static const struct dns_chunk_ops ops = {ref, unref};

static struct part *mk(int id)
{
    struct part *p = calloc(1, sizeof(*p));

    assert_non_null(p);
    p->refs = 1;
    p->id = id;
    return p;
}

/* A first table: N new parts, every 10th service without one. */
static void first(struct dns_chunks *v, void **part, uint8_t *src)
{
    for (int i = 0; i < N; i++) {
        part[i] = i % 10 == 3 ? NULL : mk(i);
        src[i] = part[i] != NULL ? DNS_CHUNK_NEW : DNS_CHUNK_NONE;
    }
    assert_int_equal(dns_chunks_assemble(v, NULL, &ops, part, src, N), CM_OK);
    assert_int_equal(v->shared, 0);
}

/* The parts of @prev lent as they are, at the same index. */
static void lend(void **dst, uint8_t *src, void *const *part)
{
    for (int i = 0; i < N; i++) {
        dst[i] = part[i];
        src[i] = part[i] != NULL ? DNS_CHUNK_LENT : DNS_CHUNK_NONE;
    }
}

/* A first table @a and the parts of a second one, @pb, all lent by it. */
static void begin(struct dns_chunks *a, void **pa, uint8_t *sa, void **pb, uint8_t *sb)
{
    freed = 0;
    first(a, pa, sa);
    lend(pb, sb, pa);
}

static void test_unchanged_shares_every_chunk(void **state)
{
    struct dns_chunks a = {0}, b = {0};
    void *pa[N], *pb[N];
    uint8_t sa[N], sb[N];

    (void)state;
    begin(&a, pa, sa, pb, sb);
    assert_int_equal(dns_chunks_assemble(&b, &a, &ops, pb, sb, N), CM_OK);
    assert_int_equal(b.shared, 3);
    assert_int_equal(((struct part *)pa[0])->refs, 1); /* no reference per part */
    dns_chunks_fini(&a);
    assert_int_equal(freed, 0); /* b still holds them */
    dns_chunks_fini(&b);
    assert_int_equal(freed, N - 15);
}

static void test_one_change_one_chunk(void **state)
{
    struct dns_chunks a = {0}, b = {0};
    void *pa[N], *pb[N];
    uint8_t sa[N], sb[N];
    struct part *old70;

    (void)state;
    begin(&a, pa, sa, pb, sb);
    old70 = pa[70];
    pb[70] = mk(1070);
    sb[70] = DNS_CHUNK_NEW;
    assert_int_equal(dns_chunks_assemble(&b, &a, &ops, pb, sb, N), CM_OK);
    assert_int_equal(b.shared, 2);
    assert_int_equal(((struct part *)pa[71])->refs, 2); /* both second chunks */
    assert_int_equal(((struct part *)pa[0])->refs, 1);  /* the first chunk is shared */
    assert_int_equal(old70->refs, 1);
    dns_chunks_fini(&a);
    assert_int_equal(freed, 1); /* the old part 70 only */
    assert_int_equal(((struct part *)pb[71])->refs, 1);
    dns_chunks_fini(&b);
    assert_int_equal(freed, N - 15 + 1);
}

/* The same parts at other indexes (services renumbered): not the same chunk. */
static void test_moved_parts_are_not_the_chunk(void **state)
{
    struct dns_chunks a = {0}, b = {0};
    void *pa[N], *pb[N], *t;
    uint8_t sa[N], sb[N];

    (void)state;
    begin(&a, pa, sa, pb, sb);
    t = pb[140];
    pb[140] = pb[141];
    pb[141] = t;
    assert_int_equal(dns_chunks_assemble(&b, &a, &ops, pb, sb, N), CM_OK);
    assert_int_equal(b.shared, 2);
    assert_int_equal(((struct part *)pa[140])->refs, 2);
    dns_chunks_fini(&a);
    dns_chunks_fini(&b);
    assert_int_equal(freed, N - 15);
}

/* Another number of services: the partial last chunk is not taken. */
static void test_other_count(void **state)
{
    struct dns_chunks a = {0}, b = {0};
    void *pa[N], *pb[N];
    uint8_t sa[N], sb[N];

    (void)state;
    begin(&a, pa, sa, pb, sb);
    assert_int_equal(dns_chunks_assemble(&b, &a, &ops, pb, sb, N - 1), CM_OK);
    assert_int_equal(b.shared, 2);
    dns_chunks_fini(&a);
    assert_int_equal(freed, 1); /* part 149: only the old table had it */
    dns_chunks_fini(&b);
    assert_int_equal(freed, N - 15);
}

/* A build that fails before assembling releases the parts it made. */
static void test_failed_build_drops_new(void **state)
{
    struct dns_chunks v = {0};
    void *p[N];
    uint8_t s[N];

    (void)state;
    freed = 0;
    for (int i = 0; i < N; i++) {
        p[i] = mk(i);
        s[i] = DNS_CHUNK_NEW;
    }
    dns_chunks_drop_new(&v, &ops, p, s, N);
    dns_chunks_fini(&v);
    assert_int_equal(freed, N);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unchanged_shares_every_chunk),
        cmocka_unit_test(test_one_change_one_chunk),
        cmocka_unit_test(test_moved_parts_are_not_the_chunk),
        cmocka_unit_test(test_other_count),
        cmocka_unit_test(test_failed_build_drops_new),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
