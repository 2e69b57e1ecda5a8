/* SPDX-License-Identifier: Apache-2.0 */
/* test_cm_lpm.c -- longest-prefix match: semantics, scope_len, brute-force cross-check. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "common/cm_err.h"
#include "common/cm_lpm.h"

struct lookup_case {
    const char *addr;
    unsigned addr_bits;
    bool found;
    uint32_t value;
    uint8_t matched_len;
    uint8_t scope_len;
};

static int parse(const char *s, uint8_t out[16])
{
    memset(out, 0, 16);
    if (inet_pton(AF_INET, s, out) == 1)
        return AF_INET;
    if (inet_pton(AF_INET6, s, out) == 1)
        return AF_INET6;
    fail_msg("bad test address %s", s);
    return -1;
}

static void add(struct cm_lpm *lpm, const char *addr, unsigned len, uint32_t value)
{
    uint8_t a[16];
    int family = parse(addr, a);

    assert_int_equal(cm_lpm_insert(lpm, family, a, len, value), CM_OK);
}

static void check_cases(const struct cm_lpm *lpm, const struct lookup_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct lookup_case *c = &cases[i];
        struct cm_lpm_result r;
        uint8_t a[16];
        int family = parse(c->addr, a);
        bool found = cm_lpm_lookup(lpm, family, a, c->addr_bits, &r);

        print_message("case %s/%u\n", c->addr, c->addr_bits);
        assert_int_equal(found, c->found);
        assert_int_equal(r.found, c->found);
        if (c->found) {
            assert_int_equal(r.value, c->value);
            assert_int_equal(r.matched_len, c->matched_len);
        }
        assert_int_equal(r.scope_len, c->scope_len);
    }
}

static void test_empty(void **state)
{
    struct cm_lpm *lpm = cm_lpm_new();
    const struct lookup_case cases[] = {
        {"10.1.2.3", 32, false, 0, 0, 0},
        {"2001:db8::1", 128, false, 0, 0, 0},
        {"10.1.2.3", 0, false, 0, 0, 0},
    };

    (void)state;
    assert_non_null(lpm);
    check_cases(lpm, cases, sizeof(cases) / sizeof(cases[0]));
    cm_lpm_free(lpm);
    cm_lpm_free(NULL);
}

static void test_nested_v4(void **state)
{
    struct cm_lpm *lpm = cm_lpm_new();
    const struct lookup_case cases[] = {
        /* 10.1.2.3 hits the /24; all 32 bits were given, walk stops at 24
         * (leaf, no deeper prefixes) */
        {"10.1.2.3", 32, true, 2, 24, 24},
        /* 10.1.3.1: /16 matches; at depth 23 bit is 1, the /24 side is 0 ->
         * bit 23 decided: scope 24 */
        {"10.1.3.1", 32, true, 1, 16, 24},
        /* 10.1.128.0: diverges from 10.1.2.0 at bit 16 -> scope 17 */
        {"10.1.128.0", 32, true, 1, 16, 17},
        /* 10.2.0.0: diverges from 10.1 at bit 14 (10.1 = 00000001, 10.2 =
         * 00000010) -> scope 15 */
        {"10.2.0.0", 32, true, 0, 8, 15},
        /* 11.0.0.0: diverges from 10 at bit 7 -> no match, scope 8 */
        {"11.0.0.0", 32, false, 0, 0, 8},
        /* 192.0.2.1: diverges at bit 0 -> scope 1 */
        {"192.0.2.1", 32, false, 0, 0, 1},
        /* ECS /16: the /16 matches the whole source; the /24 inside it needs 24
         * bits to decide: scope 24 > source (RFC 7871 §7.2.1) */
        {"10.1.2.0", 16, true, 1, 16, 24},
        /* ECS /24 gets the /24 */
        {"10.1.2.0", 24, true, 2, 24, 24},
        /* ECS /20 on the way to the /24: covering match /16, scope 24 */
        {"10.1.0.0", 20, true, 1, 16, 24},
        /* ECS /20 off the way to the /24 (bit 16 set): the walk stops at
         * depth 16, where the /24 went the other way: scope 17 <= source */
        {"10.1.128.0", 20, true, 1, 16, 17},
        /* ECS /12: only the /8 covers it; /16 and /24 lie inside: scope 24 */
        {"10.1.0.0", 12, true, 0, 8, 24},
        /* ECS /12 beside 10.1/16 (bit 8 set): nothing below, scope 9 */
        {"10.128.0.0", 12, true, 0, 8, 9},
        /* ECS /4: nothing of length <= 4 exists, everything lies inside */
        {"10.0.0.0", 4, false, 0, 0, 24},
        /* ECS /0: the whole table lies inside */
        {"10.0.0.0", 0, false, 0, 0, 24},
        /* too many bits are clamped to 32 */
        {"10.1.2.3", 200, true, 2, 24, 24},
    };

    (void)state;
    assert_non_null(lpm);
    add(lpm, "10.0.0.0", 8, 0);
    add(lpm, "10.1.0.0", 16, 1);
    add(lpm, "10.1.2.0", 24, 2);
    check_cases(lpm, cases, sizeof(cases) / sizeof(cases[0]));
    cm_lpm_free(lpm);
}

static void test_default_and_hosts(void **state)
{
    struct cm_lpm *lpm = cm_lpm_new();
    const struct lookup_case cases[] = {
        {"192.0.2.1", 32, true, 7, 32, 32},
        {"192.0.2.0", 32, true, 9, 0, 32}, /* only bit 31 differs from the host */
        {"8.8.8.8", 32, true, 9, 0, 1},
        {"0.0.0.0", 0, true, 9, 0, 32},    /* the host /32 lies inside 0/0 */
        {"192.0.2.1", 24, true, 9, 0, 32}, /* the host /32 lies inside the /24 */
        {"2001:db8::1", 128, true, 8, 128, 128},
        {"2001:db8::2", 128, false, 0, 0, 127}, /* ...01 vs ...10 differ at bit 126 */
        {"2001:db8::", 64, false, 0, 0, 128},   /* the host /128 lies inside */
        {"3000::", 128, false, 0, 0, 4},        /* 2 = 0010, 3 = 0011: bit 3 */
    };

    (void)state;
    assert_non_null(lpm);
    add(lpm, "0.0.0.0", 0, 9);
    add(lpm, "192.0.2.1", 32, 7);
    add(lpm, "2001:db8::1", 128, 8);
    check_cases(lpm, cases, sizeof(cases) / sizeof(cases[0]));
    cm_lpm_free(lpm);
}

static void test_v6_and_families(void **state)
{
    struct cm_lpm *lpm = cm_lpm_new();
    const struct lookup_case cases[] = {
        {"2001:db8:1:2::1", 128, true, 1, 48, 49},
        {"2001:db8:1:8000::1", 128, true, 3, 49, 49},
        {"2001:db8:2::1", 128, false, 0, 0, 47},
        {"2001:db8:1::", 56, true, 1, 48, 49},
        /* a /40 source holding the /48 and /49: the bug's "/40/40" */
        {"2001:db8::", 40, false, 0, 0, 49},
        {"2001:db8:1::", 48, true, 1, 48, 49},
        {"::ffff:10.1.2.3", 128, false, 0, 0, 3},
        /* v4 table is separate: the ::/0-like v6 data does not leak */
        {"10.1.2.3", 32, false, 0, 0, 0},
    };

    (void)state;
    assert_non_null(lpm);
    add(lpm, "2001:db8:1::", 48, 1);
    add(lpm, "2001:db8:1:8000::", 49, 3);
    check_cases(lpm, cases, sizeof(cases) / sizeof(cases[0]));
    cm_lpm_free(lpm);
}

static void test_replace_and_host_bits(void **state)
{
    struct cm_lpm *lpm = cm_lpm_new();
    struct cm_lpm_result r;
    uint8_t a[16];

    (void)state;
    assert_non_null(lpm);
    add(lpm, "10.1.2.3", 16, 1); /* host bits ignored: 10.1.0.0/16 */
    add(lpm, "10.1.0.0", 16, 5); /* replaces */
    parse("10.1.200.1", a);
    assert_true(cm_lpm_lookup(lpm, AF_INET, a, 32, &r));
    assert_int_equal(r.value, 5);
    assert_int_equal(r.matched_len, 16);
    assert_int_equal(r.scope_len, 16);
    cm_lpm_free(lpm);
}

static void test_invalid(void **state)
{
    struct cm_lpm *lpm = cm_lpm_new();
    struct cm_lpm_result r;
    uint8_t a[16] = {0};

    (void)state;
    assert_non_null(lpm);
    assert_int_equal(cm_lpm_insert(lpm, AF_INET, a, 33, 1), CM_EINVAL);
    assert_int_equal(cm_lpm_insert(lpm, AF_INET6, a, 129, 1), CM_EINVAL);
    assert_int_equal(cm_lpm_insert(lpm, AF_UNIX, a, 8, 1), CM_EINVAL);
    assert_false(cm_lpm_lookup(lpm, AF_UNIX, a, 8, &r));
    assert_false(r.found);
    assert_int_equal(r.scope_len, 0);
    cm_lpm_free(lpm);
}

/* ---- randomized cross-check against a linear scan ---- */

struct ref_prefix {
    uint8_t addr[16];
    unsigned len;
    uint32_t value;
};

/* Deterministic xorshift64*. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static unsigned bit_at(const uint8_t *a, unsigned i)
{
    return (a[i / 8] >> (7 - i % 8)) & 1u;
}

/* Number of leading bits @a and @b share, at most @max. */
static unsigned common_len(const uint8_t *a, const uint8_t *b, unsigned max)
{
    unsigned i = 0;

    while (i < max && bit_at(a, i) == bit_at(b, i))
        i++;
    return i;
}

/*
 * Reference scope_len, derived from the prefix set alone: the walk reaches
 * depth D = min(addr_bits, longest agreement with any stored prefix); if the
 * bits ran out, the scope is the longest prefix inside the source prefix
 * (addr_bits when none); else D + 1 if some longer prefix agrees on D bits
 * (and so went the other way at bit D), else D.
 */
static unsigned ref_scope(const struct ref_prefix *p, size_t n, const uint8_t *addr,
                          unsigned addr_bits)
{
    unsigned depth = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned c = common_len(addr, p[i].addr, p[i].len);
        if (c > depth)
            depth = c;
    }
    if (depth >= addr_bits) {
        unsigned longest = addr_bits;
        for (size_t i = 0; i < n; i++)
            if (p[i].len > longest && common_len(addr, p[i].addr, addr_bits) == addr_bits)
                longest = p[i].len;
        return longest;
    }
    for (size_t i = 0; i < n; i++)
        if (p[i].len > depth && common_len(addr, p[i].addr, depth) == depth)
            return depth + 1;
    return depth;
}

/* cm_lpm_lookup() (direct table when built) agrees with the trie walk. */
static void check_both(const struct cm_lpm *lpm, int family, const uint8_t *addr,
                       unsigned addr_bits)
{
    struct cm_lpm_result d, t;
    bool fd = cm_lpm_lookup(lpm, family, addr, addr_bits, &d);
    bool ft = cm_lpm_lookup_trie(lpm, family, addr, addr_bits, &t);

    if (fd != ft || d.found != t.found || d.value != t.value || d.matched_len != t.matched_len ||
        d.scope_len != t.scope_len)
        fail_msg("%u.%u.%u.%u/%u: direct %d %u /%u scope %u, trie %d %u /%u scope %u", addr[0],
                 addr[1], addr[2], addr[3], addr_bits, d.found, d.value, d.matched_len, d.scope_len,
                 t.found, t.value, t.matched_len, t.scope_len);
}

/*
 * @max_blocks: 0 for a trie alone; otherwise (IPv4) the direct table is
 * built with that many second-level blocks at most, and every lookup also
 * goes through the trie alone and must agree (16-bit entries if @narrow, the
 * table's few distinct results allowing them; else 32-bit). @stride: compacted without a
 * direct table, so that whole-byte sources go through the stride table.
 */
static void random_family(int family, unsigned bits, uint64_t seed, size_t max_blocks, bool stride,
                          bool narrow)
{
    enum { NPREFIX = 300, NLOOKUP = 10000 };
    struct ref_prefix *p = calloc(NPREFIX, sizeof(*p));
    struct cm_lpm *lpm = cm_lpm_new();
    size_t n = 0;
    unsigned nbytes = bits / 8;

    assert_non_null(p);
    assert_non_null(lpm);
    /* Clustered prefixes so that nesting and near misses are common: the first
     * 16 bits come from a small set. */
    for (size_t i = 0; i < NPREFIX; i++) {
        struct ref_prefix pr;
        uint64_t r = rng_next(&seed);

        memset(&pr, 0, sizeof(pr));
        for (unsigned b = 0; b < nbytes; b++)
            pr.addr[b] = (uint8_t)rng_next(&seed);
        pr.addr[0] = (uint8_t)(10 + (r & 3));
        pr.addr[1] = (uint8_t)((r >> 2) & 7);
        pr.len = (unsigned)((r >> 8) % (bits + 1));
        pr.value = (uint32_t)(r >> 32);
        for (unsigned b = pr.len; b < bits; b++) /* clear host bits */
            pr.addr[b / 8] &= (uint8_t) ~(0x80u >> (b % 8));
        assert_int_equal(cm_lpm_insert(lpm, family, pr.addr, pr.len, pr.value), CM_OK);
        /* replacement: the later value wins in the reference too */
        size_t j;
        for (j = 0; j < n; j++)
            if (p[j].len == pr.len && memcmp(p[j].addr, pr.addr, nbytes) == 0)
                break;
        p[j] = pr;
        if (j == n)
            n++;
    }
    if (max_blocks != 0) {
        cm_lpm_compact_with(lpm, 0, max_blocks, narrow);
        assert_int_equal(cm_lpm_direct_bits(lpm), narrow ? 16 : 32);
    }
    if (stride) {
        cm_lpm_compact_with(lpm, SIZE_MAX, 0, true);
        assert_false(cm_lpm_has_direct(lpm));
        assert_true(cm_lpm_has_stride(lpm, family));
    }
    for (size_t i = 0; i < NLOOKUP; i++) {
        uint8_t addr[16] = {0};
        uint64_t r = rng_next(&seed);
        unsigned addr_bits = (r & 1) ? bits : (unsigned)((r >> 1) % (bits + 1));

        if (max_blocks != 0 && (r >> 60) < 6) /* the direct table's sources: 24..32 bits */
            addr_bits = 24 + (unsigned)((r >> 50) % 9);
        if (stride && (r >> 60) < 10) /* the stride table's: whole bytes */
            addr_bits = 8 * (unsigned)((r >> 50) % (bits / 8 + 1));
        struct cm_lpm_result res;
        const struct ref_prefix *best = NULL;

        if (i % 2 == 0) { /* near a stored prefix */
            memcpy(addr, p[(r >> 16) % n].addr, nbytes);
            addr[(r >> 24) % nbytes] ^= (uint8_t)(1u << ((r >> 40) % 8));
        } else {
            for (unsigned b = 0; b < nbytes; b++)
                addr[b] = (uint8_t)rng_next(&seed);
            addr[0] = (uint8_t)(10 + ((r >> 20) & 3));
        }
        for (size_t j = 0; j < n; j++)
            if (p[j].len <= addr_bits && common_len(addr, p[j].addr, p[j].len) == p[j].len &&
                (best == NULL || p[j].len > best->len))
                best = &p[j];
        cm_lpm_lookup(lpm, family, addr, addr_bits, &res);
        if (max_blocks != 0 || stride)
            check_both(lpm, family, addr, addr_bits);
        assert_int_equal(res.found, best != NULL);
        if (best != NULL) {
            assert_int_equal(res.value, best->value);
            assert_int_equal(res.matched_len, best->len);
        }
        assert_int_equal(res.scope_len, ref_scope(p, n, addr, addr_bits));
        /* The scope promise: no prefix that could match part of the group of
         * addresses sharing scope_len bits is longer than scope_len; and a
         * scope beyond the source means a longer prefix inside the source. */
        for (size_t j = 0; j < n; j++)
            if (p[j].len > res.scope_len)
                assert_true(common_len(addr, p[j].addr, res.scope_len) < res.scope_len);
        if (res.scope_len > addr_bits) {
            bool inside = false;
            for (size_t j = 0; j < n; j++)
                if (p[j].len == res.scope_len &&
                    common_len(addr, p[j].addr, addr_bits) == addr_bits)
                    inside = true;
            assert_true(inside);
        }
    }
    cm_lpm_free(lpm);
    free(p);
}

static void test_random_v4(void **state)
{
    (void)state;
    random_family(AF_INET, 32, 0x9e3779b97f4a7c15ull, 0, false, true);
}

/* The same tables through the stride tables, both families. */
static void test_random_stride(void **state)
{
    (void)state;
    random_family(AF_INET, 32, 0x9e3779b97f4a7c15ull, 0, true, true);
    random_family(AF_INET, 32, 0xd1b54a32d192ed03ull, 0, true, true);
    random_family(AF_INET6, 128, 0x2545f4914f6cdd1dull, 0, true, true);
    random_family(AF_INET6, 128, 0x9e3779b97f4a7c15ull, 0, true, true);
}

/* The same tables through the direct table: blocks for every /24 holding
 * longer prefixes, then few enough that most of them ask the trie; with
 * 16-bit entries, then 32-bit ones. */
static void test_random_v4_direct(void **state)
{
    (void)state;
    random_family(AF_INET, 32, 0x9e3779b97f4a7c15ull, CM_LPM_DIRECT_MAX_BLOCKS, false, true);
    random_family(AF_INET, 32, 0xd1b54a32d192ed03ull, CM_LPM_DIRECT_MAX_BLOCKS, false, true);
    random_family(AF_INET, 32, 0xd1b54a32d192ed03ull, 3, false, true);
    random_family(AF_INET, 32, 0x9e3779b97f4a7c15ull, CM_LPM_DIRECT_MAX_BLOCKS, false, false);
    random_family(AF_INET, 32, 0xd1b54a32d192ed03ull, 3, false, false);
}

static void test_random_v6(void **state)
{
    (void)state;
    random_family(AF_INET6, 128, 0x2545f4914f6cdd1dull, 0, false, true);
}

/* Every address of @net/24 with every source length, both paths. */
static void check_whole_24(const struct cm_lpm *lpm, const uint8_t net[4])
{
    uint8_t a[4] = {net[0], net[1], net[2], 0};

    for (unsigned last = 0; last < 256; last++) {
        a[3] = (uint8_t)last;
        for (unsigned addr_bits = 0; addr_bits <= 33; addr_bits++)
            check_both(lpm, AF_INET, a, addr_bits);
    }
}

/* Adversarial: all 256 /32s of one /24 with /25../31 and a /0 around them,
 * a /24 with a single /32 inside, a /24 of its own, and an empty one. */
static void dense_block(bool narrow)
{
    struct cm_lpm *lpm = cm_lpm_new();
    const uint8_t dense[4] = {192, 0, 2, 0}, sparse[4] = {198, 51, 100, 0};
    const uint8_t plain[4] = {203, 0, 113, 0}, empty[4] = {100, 64, 0, 0};
    uint8_t a[4] = {192, 0, 2, 0};
    struct cm_lpm_result r;

    assert_non_null(lpm);
    add(lpm, "0.0.0.0", 0, 1000);
    add(lpm, "192.0.0.0", 16, 1001);
    for (unsigned i = 0; i < 256; i++) {
        a[3] = (uint8_t)i;
        if (i % 3 != 0) /* gaps: some /32s fall back to the /25../31 */
            assert_int_equal(cm_lpm_insert(lpm, AF_INET, a, 32, 2000 + i), CM_OK);
        for (unsigned len = 25; len < 32; len++)
            if (i % (1u << (32 - len)) == 0 && (i >> (32 - len)) % 2 == len % 2)
                assert_int_equal(cm_lpm_insert(lpm, AF_INET, a, len, 3000 + len * 256 + i), CM_OK);
    }
    add(lpm, "198.51.100.77", 32, 4000);
    add(lpm, "203.0.113.0", 24, 4001);
    cm_lpm_compact_with(lpm, 0, CM_LPM_DIRECT_MAX_BLOCKS, narrow);
    assert_int_equal(cm_lpm_direct_bits(lpm), narrow ? 16 : 32);
    check_whole_24(lpm, dense);
    check_whole_24(lpm, sparse);
    check_whole_24(lpm, plain);
    check_whole_24(lpm, empty);
    /* a /24 source over the dense block: covering match, scope of the /32s */
    memcpy(a, dense, 4);
    assert_true(cm_lpm_lookup(lpm, AF_INET, a, 24, &r));
    assert_int_equal(r.value, 1001);
    assert_int_equal(r.matched_len, 16);
    assert_int_equal(r.scope_len, 32);
    a[3] = 77; /* a /32 inside: itself, scope 32 */
    assert_true(cm_lpm_lookup(lpm, AF_INET, a, 32, &r));
    assert_int_equal(r.value, 2077);
    assert_int_equal(r.scope_len, 32);
    memcpy(a, sparse, 4);
    a[3] = 76; /* next to the lone /32: the /16? no: the /0, scope 32 */
    assert_true(cm_lpm_lookup(lpm, AF_INET, a, 32, &r));
    assert_int_equal(r.value, 1000);
    assert_int_equal(r.matched_len, 0);
    assert_int_equal(r.scope_len, 32);
    /* one block allowed: the other /24s with longer prefixes ask the trie */
    cm_lpm_compact_with(lpm, 0, 1, narrow);
    check_whole_24(lpm, dense);
    check_whole_24(lpm, sparse);
    cm_lpm_compact_with(lpm, 0, 0, narrow);
    check_whole_24(lpm, dense);
    check_whole_24(lpm, sparse);
    cm_lpm_free(lpm);
}

static void test_direct_dense_block(void **state)
{
    (void)state;
    dense_block(true);
    dense_block(false);
}

/*
 * The /24s of 16.0.0.0/9, @values distinct values among them, the first
 * @blocks of them with a /25 inside (a block each): the table needs 9
 * results for "not found" (scopes 1..9, on the way to the /9) besides the
 * /24s'. Checks the entry width and every /24 with /24 and /32 sources.
 */
static void narrow_limit(unsigned values, unsigned blocks, unsigned want_bits)
{
    struct cm_lpm *lpm = cm_lpm_new();
    uint8_t a[4] = {16, 0, 0, 0};

    assert_non_null(lpm);
    for (unsigned i = 0; i < 32768; i++) {
        a[1] = (uint8_t)(i >> 8);
        a[2] = (uint8_t)i;
        assert_int_equal(cm_lpm_insert(lpm, AF_INET, a, 24, 1000 + (i < values ? i : values - 1)),
                         CM_OK);
        if (i < blocks)
            assert_int_equal(cm_lpm_insert(lpm, AF_INET, a, 25, 7), CM_OK);
    }
    cm_lpm_compact_with(lpm, 0, CM_LPM_DIRECT_MAX_BLOCKS, true);
    assert_int_equal(cm_lpm_direct_bits(lpm), want_bits);
    for (unsigned i = 0; i < 32768 + 64; i++) {
        a[1] = (uint8_t)(i >> 8);
        a[2] = (uint8_t)i;
        a[3] = (uint8_t)(i * 37);
        check_both(lpm, AF_INET, a, 24);
        check_both(lpm, AF_INET, a, 32);
    }
    cm_lpm_free(lpm);
}

/* 16-bit entries hold result indexes up to 0x7fff and block numbers up to
 * 0x7ffe (0x7fff stands for the trie); one more of either: 32-bit entries. */
static void test_direct_narrow_limits(void **state)
{
    (void)state;
    narrow_limit(32768 - 9, 0, 16);
    narrow_limit(32768 - 8, 0, 32);
    narrow_limit(1, 32767, 16);
    narrow_limit(1, 32768, 32);
}

/* cm_lpm_compact() builds the direct table from CM_LPM_DIRECT_MIN IPv4
 * prefixes on; a large clustered table agrees with the trie. */
static void test_direct_threshold(void **state)
{
    struct cm_lpm *lpm = cm_lpm_new();
    uint64_t seed = 0x853c49e6748fea9bull;
    uint8_t a[16] = {0};
    unsigned count = 0;

    (void)state;
    assert_non_null(lpm);
    add(lpm, "2001:db8::", 32, 7); /* IPv6 prefixes do not count */
    while (count < CM_LPM_DIRECT_MIN - 1) {
        uint64_t r = rng_next(&seed);
        unsigned len = 8 + (unsigned)((r >> 8) % 25);
        struct cm_lpm_result res;

        a[0] = (uint8_t)(10 + (r & 1));
        a[1] = (uint8_t)(r >> 16);
        a[2] = (uint8_t)(r >> 24);
        a[3] = (uint8_t)(r >> 32);
        for (unsigned b = len; b < 32; b++)
            a[b / 8] &= (uint8_t) ~(0x80u >> (b % 8));
        if (cm_lpm_lookup(lpm, AF_INET, a, len, &res) && res.matched_len == len)
            continue; /* already there */
        assert_int_equal(cm_lpm_insert(lpm, AF_INET, a, len, (uint32_t)(r >> 40) % 5000), CM_OK);
        count++;
    }
    cm_lpm_compact(lpm);
    assert_false(cm_lpm_has_direct(lpm));
    add(lpm, "0.0.0.0", 0, 99);
    cm_lpm_compact(lpm);
    assert_true(cm_lpm_has_direct(lpm));
    for (unsigned i = 0; i < 300000; i++) {
        uint64_t r = rng_next(&seed);
        a[0] = (uint8_t)(9 + r % 4);
        a[1] = (uint8_t)(r >> 8);
        a[2] = (uint8_t)(r >> 16);
        a[3] = (uint8_t)(r >> 24);
        check_both(lpm, AF_INET, a, 24 + (unsigned)((r >> 32) % 9));
    }
    for (unsigned i = 0; i < 256; i++) { /* whole /24s in the densest region */
        uint8_t net[4] = {10, (uint8_t)i, (uint8_t)(i * 7), 0};
        check_whole_24(lpm, net);
    }
    cm_lpm_free(lpm);
}

/* More than 2^19 distinct values (results): 32-bit entries. */
static void test_direct_many_values(void **state)
{
    enum { NVALUES = (1 << 19) + 4096 };
    struct cm_lpm *lpm = cm_lpm_new();
    uint64_t seed = 0x6a09e667f3bcc909ull;
    uint8_t a[4] = {0};

    (void)state;
    assert_non_null(lpm);
    for (uint32_t i = 0; i < NVALUES; i++) { /* /24s from 16.0.0.0, each its value */
        uint32_t v = (16u << 24) + i * 256;
        a[0] = (uint8_t)(v >> 24);
        a[1] = (uint8_t)(v >> 16);
        a[2] = (uint8_t)(v >> 8);
        assert_int_equal(cm_lpm_insert(lpm, AF_INET, a, 24, 100000 + i), CM_OK);
    }
    cm_lpm_compact(lpm);
    assert_int_equal(cm_lpm_direct_bits(lpm), 32);
    for (uint32_t i = 0; i < 100000; i++) {
        uint64_t r = rng_next(&seed);
        uint32_t v = (16u << 24) + (uint32_t)(r % (NVALUES + 1000)) * 256 + (uint32_t)(r >> 56);
        a[0] = (uint8_t)(v >> 24);
        a[1] = (uint8_t)(v >> 16);
        a[2] = (uint8_t)(v >> 8);
        a[3] = (uint8_t)v;
        check_both(lpm, AF_INET, a, (r >> 40) & 1 ? 32 : 24);
    }
    cm_lpm_free(lpm);
}

static uint32_t fold_mod7(const void *ctx, uint32_t value)
{
    assert_ptr_equal(ctx, &fold_mod7);
    return value % 7;
}

/* cm_lpm_lookup() agrees with the trie walk, the value folded. */
static void check_folded(const struct cm_lpm *lpm, int family, const uint8_t *addr,
                         unsigned addr_bits)
{
    struct cm_lpm_result d, t;
    bool fd = cm_lpm_lookup(lpm, family, addr, addr_bits, &d);
    bool ft = cm_lpm_lookup_trie(lpm, family, addr, addr_bits, &t);

    assert_int_equal(fd, ft);
    assert_int_equal(d.found, t.found);
    assert_int_equal(d.matched_len, t.matched_len);
    assert_int_equal(d.scope_len, t.scope_len);
    if (t.found)
        assert_int_equal(d.value, t.value % 7);
}

/*
 * A fold: the direct table (its blocks, and the /24s beyond its blocks that
 * ask the trie), the stride tables and the IPv6 trie all give fold(value);
 * the trie walk alone gives the values inserted. 40,000 distinct values
 * folding into 7 fit 16-bit entries, which they do not unfolded.
 */
static void test_fold(void **state)
{
    struct cm_lpm *lpm = cm_lpm_new();
    uint64_t seed = 0xbb67ae8584caa73bull;
    uint8_t a[16] = {0};

    (void)state;
    assert_non_null(lpm);
    add(lpm, "0.0.0.0", 0, 5);
    for (uint32_t i = 0; i < 40000; i++) { /* /24s from 16.0.0.0, /28s in the first 100 */
        uint32_t v = (16u << 24) + i * 256;
        a[0] = (uint8_t)(v >> 24);
        a[1] = (uint8_t)(v >> 16);
        a[2] = (uint8_t)(v >> 8);
        a[3] = 0;
        assert_int_equal(cm_lpm_insert(lpm, AF_INET, a, 24, 100000 + i), CM_OK);
        a[3] = 32;
        if (i < 100)
            assert_int_equal(cm_lpm_insert(lpm, AF_INET, a, 28, 200000 + i), CM_OK);
    }
    for (uint32_t i = 0; i < 300; i++) {
        uint8_t a6[16] = {0x20, 0x01, 0x0d, 0xb8, (uint8_t)(i >> 8), (uint8_t)i};
        assert_int_equal(cm_lpm_insert(lpm, AF_INET6, a6, 48 - i % 3, 300000 + i), CM_OK);
    }
    cm_lpm_compact_with(lpm, 0, CM_LPM_DIRECT_MAX_BLOCKS, true);
    assert_int_equal(cm_lpm_direct_bits(lpm), 32);
    cm_lpm_set_fold(lpm, fold_mod7, &fold_mod7);
    assert_false(cm_lpm_has_direct(lpm));
    for (unsigned round = 0; round < 2; round++) {
        if (round == 0) { /* 50 blocks: the other 50 /24s with /28s ask the trie */
            cm_lpm_compact_with(lpm, 0, 50, true);
            assert_int_equal(cm_lpm_direct_bits(lpm), 16);
        } else {
            cm_lpm_compact_with(lpm, SIZE_MAX, 0, true);
            assert_true(cm_lpm_has_stride(lpm, AF_INET));
        }
        for (unsigned i = 0; i < 60000; i++) {
            uint64_t r = rng_next(&seed);
            uint32_t v = (16u << 24) + (uint32_t)(r % 40100) * 256 + (uint32_t)(r >> 56);
            unsigned bits =
                (r >> 40) & 1 ? 24 + (unsigned)((r >> 41) % 9) : (unsigned)((r >> 41) % 33);
            a[0] = (uint8_t)(v >> 24);
            a[1] = (uint8_t)(v >> 16);
            a[2] = (uint8_t)(v >> 8);
            a[3] = (uint8_t)v;
            check_folded(lpm, AF_INET, a, bits);
            uint8_t a6[16] = {0x20,      0x01, 0x0d, 0xb8, (uint8_t)(r >> 16), (uint8_t)(r >> 8),
                              (uint8_t)r};
            check_folded(lpm, AF_INET6, a6, (unsigned)((r >> 24) % 129));
        }
    }
    cm_lpm_free(lpm);
}

static void test_direct_dropped_by_insert(void **state)
{
    struct cm_lpm *lpm = cm_lpm_new();
    uint8_t a[4] = {10, 1, 2, 3};
    struct cm_lpm_result r;

    (void)state;
    assert_non_null(lpm);
    add(lpm, "10.0.0.0", 8, 1);
    cm_lpm_compact_with(lpm, 0, CM_LPM_DIRECT_MAX_BLOCKS, true);
    assert_true(cm_lpm_has_direct(lpm));
    assert_true(cm_lpm_lookup(lpm, AF_INET, a, 32, &r));
    assert_int_equal(r.value, 1);
    add(lpm, "10.1.2.0", 24, 2);
    assert_false(cm_lpm_has_direct(lpm));
    assert_true(cm_lpm_lookup(lpm, AF_INET, a, 32, &r));
    assert_int_equal(r.value, 2);
    assert_int_equal(r.scope_len, 24);
    cm_lpm_free(lpm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_nested_v4),
        cmocka_unit_test(test_default_and_hosts),
        cmocka_unit_test(test_v6_and_families),
        cmocka_unit_test(test_replace_and_host_bits),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_random_v4),
        cmocka_unit_test(test_random_v6),
        cmocka_unit_test(test_random_stride),
        cmocka_unit_test(test_random_v4_direct),
        cmocka_unit_test(test_direct_dense_block),
        cmocka_unit_test(test_direct_narrow_limits),
        cmocka_unit_test(test_direct_threshold),
        cmocka_unit_test(test_direct_many_values),
        cmocka_unit_test(test_direct_dropped_by_insert),
        cmocka_unit_test(test_fold),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
