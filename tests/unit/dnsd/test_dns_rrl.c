/* SPDX-License-Identifier: Apache-2.0 */
/* test_dns_rrl.c -- response rate limiting: buckets, balance, slip, exemptions (time passed in). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "common/cm_lpm.h"
#include "dnsd/dns_name.h"
#include "dnsd/dns_rrl.h"
#include "dnsd/dns_wire.h"

static const uint8_t KEY[CM_SIPHASH_KEY_LEN] = {7, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15};
static const uint8_t WWW[] = "\x03www\x03"
                             "fed\x07"
                             "example\x04test";
static const uint8_t WWW_UC[] = "\x03WwW\x03"
                                "FED\x07"
                                "example\x04test";
static const uint8_t API[] = "\x03"
                             "api\x03"
                             "fed\x07"
                             "example\x04test";

struct addr {
    struct sockaddr_storage ss;
};

static const struct sockaddr *sa(struct addr *a, const char *ip)
{
    memset(a, 0, sizeof(*a));
    if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;

        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&a->ss;

        s4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
    }
    return (const struct sockaddr *)&a->ss;
}

static struct dns_rrl *rrl_make(uint32_t rate, uint32_t slip, uint32_t window_s, size_t size,
                                const struct cm_lpm *exempt)
{
    struct dns_rrl_params p = {
        .rate = rate,
        .slip = slip,
        .window_s = window_s,
        .ipv4_prefix = 24,
        .ipv6_prefix = 56,
        .table_size = size,
        .exempt = exempt,
    };
    struct dns_rrl *rrl = dns_rrl_new(&p, KEY);

    assert_non_null(rrl);
    return rrl;
}

static enum dns_rrl_action www(struct dns_rrl *rrl, const char *ip, uint32_t now)
{
    struct addr a;

    return dns_rrl_check(rrl, sa(&a, ip), DNS_RRL_POSITIVE, WWW, sizeof(WWW), false, now);
}

/* Exactly `rate` responses pass in a fresh second, the next one is limited; a
 * second that follows a long gap is fresh too. */
static void test_rate_exact(void **state)
{
    struct dns_rrl *rrl = rrl_make(5, 0, 2, 1024, NULL);

    (void)state;
    for (int i = 0; i < 5; i++)
        assert_int_equal(www(rrl, "192.0.2.1", 100), DNS_RRL_PASS);
    assert_int_equal(www(rrl, "192.0.2.1", 100), DNS_RRL_DROP);
    assert_int_equal(www(rrl, "192.0.2.1", 100), DNS_RRL_DROP);
    for (int i = 0; i < 5; i++) /* a long quiet spell saves no more than the rate */
        assert_int_equal(www(rrl, "192.0.2.1", 200), DNS_RRL_PASS);
    assert_int_equal(www(rrl, "192.0.2.1", 200), DNS_RRL_DROP);
    dns_rrl_free(rrl);
}

/* The /24 is the unit: a neighbour shares the bucket, the next /24 does not. */
static void test_prefix_v4(void **state)
{
    struct dns_rrl *rrl = rrl_make(3, 0, 2, 1024, NULL);

    (void)state;
    for (int i = 0; i < 3; i++)
        assert_int_equal(www(rrl, "192.0.2.1", 10), DNS_RRL_PASS);
    assert_int_equal(www(rrl, "192.0.2.254", 10), DNS_RRL_DROP);
    assert_int_equal(www(rrl, "192.0.3.1", 10), DNS_RRL_PASS);
    dns_rrl_free(rrl);
}

/* IPv6: addresses that differ after bit 56 share a bucket; at bit 55 they do not. */
static void test_prefix_v6(void **state)
{
    struct dns_rrl *rrl = rrl_make(2, 0, 2, 1024, NULL);

    (void)state;
    assert_int_equal(www(rrl, "2001:db8:0:100::1", 10), DNS_RRL_PASS);
    assert_int_equal(www(rrl, "2001:db8:0:1ff::2", 10), DNS_RRL_PASS);
    assert_int_equal(www(rrl, "2001:db8:0:1ee:1::3", 10), DNS_RRL_DROP);
    assert_int_equal(www(rrl, "2001:db8:0:200::1", 10), DNS_RRL_PASS);
    dns_rrl_free(rrl);
}

/*
 * Sources whose masked bytes are equal but not their family, or that differ
 * only past the first 8 bytes of a long IPv6 prefix, are counted apart: a
 * bucket compares the whole tuple (enough of them that many share a probe
 * group).
 */
static void test_prefix_families(void **state)
{
    struct dns_rrl_params p = {
        .rate = 1, .window_s = 2, .ipv4_prefix = 24, .ipv6_prefix = 128, .table_size = 1024};
    struct dns_rrl *rrl = dns_rrl_new(&p, KEY);

    (void)state;
    assert_non_null(rrl);
    assert_int_equal(www(rrl, "192.0.2.1", 10), DNS_RRL_PASS);
    assert_int_equal(www(rrl, "192.0.2.1", 10), DNS_RRL_DROP);
    assert_int_equal(www(rrl, "c000:200::", 10), DNS_RRL_PASS); /* the same first bytes */
    assert_int_equal(www(rrl, "c000:200::", 10), DNS_RRL_DROP);
    assert_int_equal(www(rrl, "2001:db8::1", 10), DNS_RRL_PASS);
    assert_int_equal(www(rrl, "2001:db8::1", 10), DNS_RRL_DROP);
    for (int i = 2; i < 1000; i++) { /* each differs from the others in its last bytes */
        char ip[64];

        snprintf(ip, sizeof(ip), "2001:db8::%x", i);
        assert_int_equal(www(rrl, ip, 10), DNS_RRL_PASS);
        assert_int_equal(www(rrl, ip, 10), DNS_RRL_DROP);
    }
    dns_rrl_free(rrl);
}

/*
 * Tuples that differ in the class alone, or in the family alone (10.0.0.0/24
 * and a00::/56 mask to the same bytes), are counted apart, for enough names
 * that many share a probe group.
 */
static void test_tuples_apart(void **state)
{
    static const enum dns_rrl_class classes[] = {DNS_RRL_POSITIVE, DNS_RRL_NODATA, DNS_RRL_NXDOMAIN,
                                                 DNS_RRL_REFERRAL, DNS_RRL_WILDCARD};
    struct dns_rrl *rrl = rrl_make(1, 0, 2, 1 << 16, NULL);
    struct addr a4, a6;
    const struct sockaddr *v4 = sa(&a4, "10.0.0.1"), *v6 = sa(&a6, "a00::1");

    (void)state;
    for (uint32_t h = 1; h <= 1000; h++) {
        for (size_t c = 0; c < sizeof(classes) / sizeof(classes[0]); c++) {
            assert_int_equal(dns_rrl_check_hashed(rrl, v4, classes[c], h, false, 10), DNS_RRL_PASS);
            assert_int_equal(dns_rrl_check_hashed(rrl, v6, classes[c], h, false, 10), DNS_RRL_PASS);
        }
    }
    for (size_t c = 0; c < sizeof(classes) / sizeof(classes[0]); c++)
        assert_int_equal(dns_rrl_check_hashed(rrl, v6, classes[c], 1000, false, 10), DNS_RRL_DROP);
    dns_rrl_free(rrl);
}

/*
 * A table of 4 buckets is one probe group, so every tuple collides with
 * every other: four that differ in one field each (the family with equal
 * bytes, the class, the name, an IPv6 /128 past byte 8) still keep four
 * buckets, each with its own balance; newcomers take the least recently
 * used ones, and the others keep their debt.
 */
static void test_tuples_collide(void **state)
{
    struct dns_rrl_params p = {
        .rate = 1, .window_s = 2, .ipv4_prefix = 24, .ipv6_prefix = 128, .table_size = 4};
    struct dns_rrl *rrl = dns_rrl_new(&p, KEY);
    struct addr a[4];
    const struct sockaddr *v4 = sa(&a[0], "10.0.0.1"), *v6 = sa(&a[1], "a00::");
    const struct sockaddr *x1 = sa(&a[2], "2001:db8::1:0:0:1"),
                          *x2 = sa(&a[3], "2001:db8::1:0:0:2");
    const struct {
        const struct sockaddr *sa;
        enum dns_rrl_class cls;
        uint32_t h;
    } t[] = {
        {v4, DNS_RRL_POSITIVE, 7}, {v6, DNS_RRL_POSITIVE, 7}, {v4, DNS_RRL_NODATA, 7},
        {v4, DNS_RRL_POSITIVE, 8}, {x1, DNS_RRL_POSITIVE, 7}, {x2, DNS_RRL_POSITIVE, 7},
    };
    static const struct {
        size_t first, last;
        uint32_t now;
    } rounds[] = {{0, 2, 10}, {2, 4, 12}, {4, 6, 12}}; /* 4 and 5 evict 0 and 1, seen before */

    (void)state;
    assert_non_null(rrl);
    for (size_t r = 0; r < sizeof(rounds) / sizeof(rounds[0]); r++) {
        for (size_t i = rounds[r].first; i < rounds[r].last; i++)
            assert_int_equal(
                dns_rrl_check_hashed(rrl, t[i].sa, t[i].cls, t[i].h, false, rounds[r].now),
                DNS_RRL_PASS);
        for (size_t i = rounds[r].first; i < rounds[r].last; i++)
            assert_int_equal(
                dns_rrl_check_hashed(rrl, t[i].sa, t[i].cls, t[i].h, false, rounds[r].now),
                DNS_RRL_DROP);
    }
    for (size_t i = 2; i < 6; i++) /* still known, still limited */
        assert_int_equal(dns_rrl_check_hashed(rrl, t[i].sa, t[i].cls, t[i].h, false, 12),
                         DNS_RRL_DROP);
    dns_rrl_free(rrl);
}

/* Buckets are per class and name; names compare case-insensitively; ERROR ignores the name. */
static void test_class_and_name(void **state)
{
    struct dns_rrl *rrl = rrl_make(1, 0, 2, 1024, NULL);
    struct addr a;
    const struct sockaddr *c = sa(&a, "198.51.100.7");

    (void)state;
    assert_int_equal(dns_rrl_check(rrl, c, DNS_RRL_POSITIVE, WWW, sizeof(WWW), false, 5),
                     DNS_RRL_PASS);
    assert_int_equal(dns_rrl_check(rrl, c, DNS_RRL_POSITIVE, WWW_UC, sizeof(WWW_UC), false, 5),
                     DNS_RRL_DROP); /* 0x20 case randomisation is the same name */
    assert_int_equal(dns_rrl_check(rrl, c, DNS_RRL_POSITIVE, API, sizeof(API), false, 5),
                     DNS_RRL_PASS);
    assert_int_equal(dns_rrl_check(rrl, c, DNS_RRL_NODATA, WWW, sizeof(WWW), false, 5),
                     DNS_RRL_PASS);
    assert_int_equal(dns_rrl_check(rrl, c, DNS_RRL_ERROR, WWW, sizeof(WWW), false, 5),
                     DNS_RRL_PASS);
    assert_int_equal(dns_rrl_check(rrl, c, DNS_RRL_ERROR, API, sizeof(API), false, 5),
                     DNS_RRL_DROP);
    assert_int_equal(dns_rrl_check(rrl, c, DNS_RRL_ERROR, NULL, 0, false, 5), DNS_RRL_DROP);
    dns_rrl_free(rrl);
}

/* The query path passes the parser's hash of the lowercased name: the same
 * bucket as the name itself, in either case. */
static void test_hashed_same_bucket(void **state)
{
    struct dns_rrl *rrl = rrl_make(2, 0, 2, 1000, NULL);
    struct addr a;
    const struct sockaddr *c = sa(&a, "198.51.100.7");
    uint8_t lc[sizeof(WWW_UC)];
    uint32_t h = dns_name_lower_hash(lc, WWW_UC, sizeof(WWW_UC));

    (void)state;
    assert_int_equal(dns_rrl_check(rrl, c, DNS_RRL_POSITIVE, WWW, sizeof(WWW), false, 5),
                     DNS_RRL_PASS);
    assert_int_equal(dns_rrl_check_hashed(rrl, c, DNS_RRL_POSITIVE, h, false, 5), DNS_RRL_PASS);
    assert_int_equal(dns_rrl_check(rrl, c, DNS_RRL_POSITIVE, WWW_UC, sizeof(WWW_UC), false, 5),
                     DNS_RRL_DROP);
    assert_int_equal(dns_rrl_check_hashed(rrl, c, DNS_RRL_POSITIVE, h + 1, false, 5),
                     DNS_RRL_PASS); /* another name */
    dns_rrl_free(rrl);
}

/* A table size that is not a power of two (rounded up, slots masked): 100
 * keys each keep a bucket of their own, at both ends of the table too (the
 * sanitizer build checks every slot stays inside it). */
static void test_table_rounded_up(void **state)
{
    struct dns_rrl *rrl = rrl_make(1, 0, 2, 1000, NULL);
    struct addr a;
    const struct sockaddr *c = sa(&a, "198.51.100.7");
    unsigned passed = 0, dropped = 0;

    (void)state;
    for (uint32_t k = 1; k <= 100; k++)
        passed += dns_rrl_check_hashed(rrl, c, DNS_RRL_POSITIVE, k, false, 5) == DNS_RRL_PASS;
    assert_int_equal(passed, 100);
    for (uint32_t k = 1; k <= 100; k++)
        dropped += dns_rrl_check_hashed(rrl, c, DNS_RRL_POSITIVE, k, false, 5) == DNS_RRL_DROP;
    assert_int_equal(dropped, 100);
    dns_rrl_free(rrl);
}

/* slip 2: limited responses alternate drop, slip; slip 1: all slip; slip 0: all drop. */
static void test_slip(void **state)
{
    static const struct {
        uint32_t slip;
        enum dns_rrl_action want[4];
    } cases[] = {
        {2, {DNS_RRL_DROP, DNS_RRL_SLIP, DNS_RRL_DROP, DNS_RRL_SLIP}},
        {1, {DNS_RRL_SLIP, DNS_RRL_SLIP, DNS_RRL_SLIP, DNS_RRL_SLIP}},
        {0, {DNS_RRL_DROP, DNS_RRL_DROP, DNS_RRL_DROP, DNS_RRL_DROP}},
        {3, {DNS_RRL_DROP, DNS_RRL_DROP, DNS_RRL_SLIP, DNS_RRL_DROP}},
    };

    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct dns_rrl *rrl = rrl_make(2, cases[k].slip, 2, 1024, NULL);

        assert_int_equal(www(rrl, "203.0.113.9", 1), DNS_RRL_PASS);
        assert_int_equal(www(rrl, "203.0.113.9", 1), DNS_RRL_PASS);
        for (int i = 0; i < 4; i++)
            assert_int_equal(www(rrl, "203.0.113.9", 1), cases[k].want[i]);
        dns_rrl_free(rrl);
    }
}

/*
 * rate 10, window 3: a flood of 100 in one second passes 10 and sinks the
 * balance to the floor, -rate x window = -30. Each later second earns 10 and
 * each response costs 1, so the source stays limited for the window (the
 * arithmetic is in the comments) and then passes; a long gap forgives all.
 */
static void test_window_recovery(void **state)
{
    struct dns_rrl *rrl = rrl_make(10, 0, 3, 1024, NULL);
    int passed = 0;

    (void)state;
    for (int i = 0; i < 100; i++)
        passed += www(rrl, "192.0.2.1", 50) == DNS_RRL_PASS;
    assert_int_equal(passed, 10);
    assert_int_equal(www(rrl, "192.0.2.1", 51), DNS_RRL_DROP); /* -30 + 10 - 1 = -21 */
    assert_int_equal(www(rrl, "192.0.2.1", 52), DNS_RRL_DROP); /* -21 + 10 - 1 = -12 */
    assert_int_equal(www(rrl, "192.0.2.1", 53), DNS_RRL_DROP); /* -12 + 10 - 1 = -3 */
    assert_int_equal(www(rrl, "192.0.2.1", 54), DNS_RRL_PASS); /* -3 + 10 - 1 = 6 */
    assert_int_equal(www(rrl, "192.0.2.1", 4000000), DNS_RRL_PASS);
    dns_rrl_free(rrl);
}

/*
 * rate 1, window 2: a flood sinks both sources to the floor, -2, exactly.
 * Two seconds later one is still limited (-2 + 2 - 1 = -1), three seconds
 * later the other passes (-2 + 3, capped at 1, - 1 = 0).
 */
static void test_floor_exact(void **state)
{
    struct dns_rrl *rrl = rrl_make(1, 0, 2, 1024, NULL);

    (void)state;
    for (int i = 0; i < 50; i++) {
        (void)www(rrl, "192.0.2.1", 10);
        (void)www(rrl, "198.51.100.1", 10);
    }
    assert_int_equal(www(rrl, "192.0.2.1", 12), DNS_RRL_DROP);
    assert_int_equal(www(rrl, "198.51.100.1", 13), DNS_RRL_PASS);
    dns_rrl_free(rrl);
}

/* A steady client at exactly the rate is never limited. */
static void test_steady_at_rate(void **state)
{
    struct dns_rrl *rrl = rrl_make(4, 0, 15, 1024, NULL);

    (void)state;
    for (uint32_t t = 0; t < 60; t++) {
        for (int i = 0; i < 4; i++)
            assert_int_equal(www(rrl, "192.0.2.1", 1000 + t), DNS_RRL_PASS);
    }
    dns_rrl_free(rrl);
}

/* Exempt networks and valid cookies are never counted, other sources are. */
static void test_exempt(void **state)
{
    struct cm_lpm *ex = cm_lpm_new();
    uint8_t net[16] = {10, 9};
    uint8_t net6[16] = {0xfd, 0x00};
    struct dns_rrl *rrl;
    struct addr a;

    (void)state;
    assert_non_null(ex);
    assert_int_equal(cm_lpm_insert(ex, AF_INET, net, 16, 1), 0);
    assert_int_equal(cm_lpm_insert(ex, AF_INET6, net6, 8, 1), 0);
    rrl = rrl_make(1, 0, 2, 1024, ex);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(www(rrl, "10.9.200.1", 7), DNS_RRL_EXEMPT);
        assert_int_equal(www(rrl, "fd00::53", 7), DNS_RRL_EXEMPT);
        assert_int_equal(
            dns_rrl_check(rrl, sa(&a, "192.0.2.1"), DNS_RRL_POSITIVE, WWW, sizeof(WWW), true, 7),
            DNS_RRL_EXEMPT);
    }
    assert_int_equal(www(rrl, "10.10.0.1", 7), DNS_RRL_PASS);
    assert_int_equal(www(rrl, "10.10.0.1", 7), DNS_RRL_DROP);
    assert_int_equal(www(rrl, "192.0.2.1", 7), DNS_RRL_PASS); /* cookies did not count */
    dns_rrl_free(rrl);
    cm_lpm_free(ex);
}

/*
 * A tiny table under a spread of sources: bounded, and a newcomer takes the
 * least recently seen slot, so the current flooder keeps its debt.
 */
static void test_table_bounded(void **state)
{
    struct dns_rrl *rrl = rrl_make(1, 0, 10, 4, NULL);
    char ip[32];

    (void)state;
    assert_int_equal(www(rrl, "192.0.2.1", 100), DNS_RRL_PASS);
    assert_int_equal(www(rrl, "192.0.2.1", 100), DNS_RRL_DROP);
    for (int i = 0; i < 3; i++) {
        snprintf(ip, sizeof(ip), "198.51.%d.1", i);
        assert_int_equal(www(rrl, ip, 90), DNS_RRL_PASS); /* older stamps than the flooder */
    }
    snprintf(ip, sizeof(ip), "203.0.113.1");
    assert_int_equal(www(rrl, ip, 100), DNS_RRL_PASS);          /* evicts one of the 198.51 */
    assert_int_equal(www(rrl, "192.0.2.1", 100), DNS_RRL_DROP); /* still known, still limited */
    for (int i = 0; i < 5000; i++) {
        snprintf(ip, sizeof(ip), "100.%d.%d.1", i / 256, i % 256);
        (void)www(rrl, ip, 200);
    }
    dns_rrl_free(rrl);
}

/* The slipped form: header and question, TC=1, no records. */
static void test_slip_rewrite(void **state)
{
    uint8_t resp[64] = {0x12, 0x34, 0x84, 0x00, 0, 1, 0, 1, 0, 0, 0, 1};
    size_t qlen = sizeof(WWW) + 4, len;

    (void)state;
    memcpy(resp + 12, WWW, sizeof(WWW));
    memset(resp + 12 + sizeof(WWW), 0, 4);
    resp[12 + sizeof(WWW) + 1] = 1; /* type A */
    resp[12 + sizeof(WWW) + 3] = 1; /* class IN */
    len = 12 + qlen + 20;           /* pretend answer + OPT follow */
    assert_int_equal(dns_rrl_slip(resp, len), 12 + qlen);
    assert_int_equal(resp[2] & 0x02, 0x02);
    assert_int_equal(resp[5], 1);
    for (int i = 6; i < 12; i++)
        assert_int_equal(resp[i], 0);
    assert_int_equal(dns_rrl_slip(resp, 5), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rate_exact),       cmocka_unit_test(test_prefix_v4),
        cmocka_unit_test(test_prefix_v6),        cmocka_unit_test(test_prefix_families),
        cmocka_unit_test(test_tuples_apart),     cmocka_unit_test(test_tuples_collide),
        cmocka_unit_test(test_class_and_name),   cmocka_unit_test(test_hashed_same_bucket),
        cmocka_unit_test(test_table_rounded_up), cmocka_unit_test(test_slip),
        cmocka_unit_test(test_window_recovery),  cmocka_unit_test(test_floor_exact),
        cmocka_unit_test(test_steady_at_rate),   cmocka_unit_test(test_exempt),
        cmocka_unit_test(test_table_bounded),    cmocka_unit_test(test_slip_rewrite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
