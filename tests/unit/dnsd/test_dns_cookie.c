/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_dns_cookie.c -- RFC 9018 server cookies: the known answers of RFC 9018
 * appendix A, the freshness window (RFC 9018 §4.3) and what makes a cookie
 * not ours.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "dnsd/dns_cookie.h"

static void hex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(s + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

static size_t ip(const char *s, uint8_t out[16])
{
    if (inet_pton(AF_INET, s, out) == 1)
        return 4;
    assert_int_equal(inet_pton(AF_INET6, s, out), 1);
    return 16;
}

struct kat {
    const char *name;
    const char *secret;
    const char *client;
    const char *address;
    uint32_t now;
    const char *server; /* the server cookie RFC 9018 appendix A gives */
};

static const struct kat kats[] = {
    {"A.1 learning a new server cookie", "e5e973e5a6b2a43f48e7dc849e37bfcf", "2464c4abcf10c957",
     "198.51.100.100", 1559731985, "010000005cf79f111f8130c3eee29480"},
    {"A.2 the same client, renewed", "e5e973e5a6b2a43f48e7dc849e37bfcf", "2464c4abcf10c957",
     "198.51.100.100", 1559734385, "010000005cf7a871d4a564a1442aca77"},
    {"A.3 another client, renewed", "e5e973e5a6b2a43f48e7dc849e37bfcf", "fc93fc62807ddb86",
     "203.0.113.203", 1559734700, "010000005cf7a9acf73a7810aca2381e"},
};

static void test_known_answers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(kats) / sizeof(kats[0]); i++) {
        const struct kat *k = &kats[i];
        uint8_t secret[16], client[8], addr[16], want[16], got[16];
        size_t alen = ip(k->address, addr);

        print_message("%s\n", k->name);
        hex(k->secret, secret, 16);
        hex(k->client, client, 8);
        hex(k->server, want, 16);
        dns_cookie_make(secret, client, addr, alen, k->now, got);
        assert_memory_equal(got, want, 16);
        /* and it is recognised, at once and within the window */
        assert_true(dns_cookie_check(secret, client, got, 16, addr, alen, k->now));
        assert_true(dns_cookie_check(secret, client, got, 16, addr, alen, k->now + 3600));
        assert_true(dns_cookie_check(secret, client, got, 16, addr, alen, k->now - 300));
    }
}

/* Cookies a client returns in appendix A: A.3's with reserved bytes set, and
 * A.4's IPv6 cookie made with the secret before a rollover. */
static void test_returned_cookies(void **state)
{
    uint8_t secret[16], old[16], cookie[24], addr[16];
    size_t alen;

    (void)state;
    hex("e5e973e5a6b2a43f48e7dc849e37bfcf", secret, 16);
    hex("fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5", cookie, 24);
    alen = ip("203.0.113.203", addr);
    /* the reserved bytes are part of the hash: accepted as sent (at its time) */
    assert_true(dns_cookie_check(secret, cookie, cookie + 8, 16, addr, alen, 1559727985));
    cookie[2 + 8] ^= 1; /* one reserved bit changed */
    assert_false(dns_cookie_check(secret, cookie, cookie + 8, 16, addr, alen, 1559727985));
    cookie[2 + 8] ^= 1;
    /* bound to the address */
    alen = ip("203.0.113.204", addr);
    assert_false(dns_cookie_check(secret, cookie, cookie + 8, 16, addr, alen, 1559727985));

    hex("dd3bdf9344b678b185a6f5cb60fca715", old, 16);
    hex("445536bcd2513298075a5d379663c962", secret, 16);
    hex("22681ab97d52c298010000005cf7c57926556bd0934c72f8", cookie, 24);
    alen = ip("2001:db8:220:1:59de:d0f4:8769:82b8", addr);
    assert_true(dns_cookie_check(old, cookie, cookie + 8, 16, addr, alen, 1559741961));
    assert_false(dns_cookie_check(secret, cookie, cookie + 8, 16, addr, alen, 1559741961));
}

/* RFC 9018 §4.3: at most one hour old, at most five minutes ahead. */
static void test_window(void **state)
{
    uint8_t secret[16] = {1}, client[8] = {2}, addr[4] = {192, 0, 2, 1}, c[16];
    const uint32_t t = 1559731985;
    static const struct {
        int32_t offset; /* now - timestamp */
        bool ok;
    } cases[] = {{0, true},     {3600, true},   {3601, false},  {-300, true},
                 {-301, false}, {86400, false}, {-86400, false}};

    (void)state;
    dns_cookie_make(secret, client, addr, 4, t, c);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("age %d\n", cases[i].offset);
        assert_int_equal(
            dns_cookie_check(secret, client, c, 16, addr, 4, (uint32_t)(t + cases[i].offset)),
            cases[i].ok);
    }
    /* across the 32-bit wrap: serial arithmetic */
    dns_cookie_make(secret, client, addr, 4, 0xFFFFFF00u, c);
    assert_true(dns_cookie_check(secret, client, c, 16, addr, 4, 0x00000100u));
    assert_false(dns_cookie_check(secret, client, c, 16, addr, 4, 0x00001000u));

    /* not ours: another length, another version, another client cookie */
    dns_cookie_make(secret, client, addr, 4, t, c);
    assert_false(dns_cookie_check(secret, client, c, 8, addr, 4, t));
    assert_false(dns_cookie_check(secret, client, c, 15, addr, 4, t));
    c[0] = 2;
    assert_false(dns_cookie_check(secret, client, c, 16, addr, 4, t));
    c[0] = 1;
    client[7] ^= 0x80;
    assert_false(dns_cookie_check(secret, client, c, 16, addr, 4, t));
}

/* RFC 9018 §4.3: a cookie of ours is sent back while at most half an hour old. */
static void test_young(void **state)
{
    uint8_t secret[16], c[8], sc[16], a[16];
    size_t al = ip("198.51.100.100", a);
    const uint32_t t = 1559731985u;

    (void)state;
    memset(secret, 7, sizeof(secret));
    memset(c, 9, sizeof(c));
    dns_cookie_make(secret, c, a, al, t, sc);
    assert_true(dns_cookie_young(sc, t));
    assert_true(dns_cookie_young(sc, t + DNS_COOKIE_REUSE_S));
    assert_false(dns_cookie_young(sc, t + DNS_COOKIE_REUSE_S + 1));
    assert_true(dns_cookie_young(sc, t - DNS_COOKIE_MAX_SKEW_S)); /* a peer's clock ahead */
    assert_false(dns_cookie_young(sc, t - DNS_COOKIE_MAX_SKEW_S - 1));
}

/* The memo: a cookie made once is handed out again while young, per client
 * cookie and address, and forgotten with the secret; a cookie checked once
 * is recognised by comparison, a forged one never. */
static void test_memo(void **state)
{
    static struct dns_cookie_memo memo; /* zeroed: empty */
    uint8_t secret[16], other[16], c[8], c2[8], a[16], b[16], s1[16], s2[16], s3[16], plain[16];
    size_t al = ip("198.51.100.100", a), bl = ip("2001:db8::53", b);
    const uint32_t t = 1559731985u;

    (void)state;
    memset(secret, 7, sizeof(secret));
    memset(other, 8, sizeof(other));
    memset(c, 9, sizeof(c));
    memset(c2, 10, sizeof(c2));
    dns_cookie_make_memo(&memo, secret, c, a, al, t, s1);
    dns_cookie_make(secret, c, a, al, t, plain);
    assert_memory_equal(s1, plain, 16); /* what the plain make gives */
    dns_cookie_make_memo(&memo, secret, c, a, al, t + 100, s2);
    assert_memory_equal(s2, s1, 16); /* young: the same */
    dns_cookie_make_memo(&memo, secret, c, a, al, t + DNS_COOKIE_REUSE_S + 1, s2);
    dns_cookie_make(secret, c, a, al, t + DNS_COOKIE_REUSE_S + 1, plain);
    assert_memory_equal(s2, plain, 16); /* renewed past half an hour */
    dns_cookie_make_memo(&memo, secret, c2, a, al, t, s3);
    dns_cookie_make(secret, c2, a, al, t, plain);
    assert_memory_equal(s3, plain, 16); /* another client cookie */
    dns_cookie_make_memo(&memo, secret, c, b, bl, t, s3);
    dns_cookie_make(secret, c, b, bl, t, plain);
    assert_memory_equal(s3, plain, 16); /* another address */
    dns_cookie_make_memo(&memo, other, c, a, al, t + 10, s3);
    dns_cookie_make(other, c, a, al, t + 10, plain);
    assert_memory_equal(s3, plain, 16); /* a new secret: nothing remembered */

    /* checks: a made cookie is recognised, a forged one is not, even remembered */
    assert_true(dns_cookie_check_memo(&memo, other, c, s3, 16, a, al, t + 20));
    uint8_t forged[16];
    memcpy(forged, s3, 16);
    forged[15] ^= 1;
    assert_false(dns_cookie_check_memo(&memo, other, c, forged, 16, a, al, t + 20));
    assert_false(dns_cookie_check_memo(&memo, other, c, s3, 16, b, bl, t + 20));
    assert_false(dns_cookie_check_memo(&memo, other, c, s3, 16, a, al,
                                       t + 10 + DNS_COOKIE_MAX_AGE_S + 1));       /* stale */
    assert_false(dns_cookie_check_memo(&memo, secret, c, s3, 16, a, al, t + 20)); /* not ours */
    /* one verified elsewhere (another server, same secret) is remembered too */
    dns_cookie_make(secret, c2, b, bl, t, plain);
    assert_true(dns_cookie_check_memo(&memo, secret, c2, plain, 16, b, bl, t + 5));
    assert_true(dns_cookie_check_memo(&memo, secret, c2, plain, 16, b, bl, t + 6));
    assert_true(dns_cookie_check_memo(NULL, secret, c2, plain, 16, b, bl, t + 6));
    assert_false(dns_cookie_check_memo(&memo, secret, c2, plain, 8, b, bl, t + 6));
}

/* The memo tells apart addresses that differ only in their last bytes, and an
 * IPv4 address from the IPv6 address that starts with its bytes. */
static void test_memo_addresses(void **state)
{
    static struct dns_cookie_memo memo;
    static const char *const addrs[] = {"2001:db8::53", "2001:db8::54", "198.51.100.100",
                                        "c633:6464::", "2001:db8::53"};
    uint8_t secret[16], c[8], a[16], got[16], plain[16];

    (void)state;
    memset(secret, 7, sizeof(secret));
    memset(c, 9, sizeof(c));
    for (size_t i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
        size_t al = ip(addrs[i], a);

        print_message("%s\n", addrs[i]);
        dns_cookie_make_memo(&memo, secret, c, a, al, 1559731985u, got);
        dns_cookie_make(secret, c, a, al, 1559731985u, plain);
        assert_memory_equal(got, plain, 16);
        assert_true(dns_cookie_check_memo(&memo, secret, c, got, 16, a, al, 1559731986u));
    }
    for (int i = 0; i < 300; i++) { /* enough that some meet in a memo slot */
        char name[64];

        snprintf(name, sizeof(name), "2001:db8::%x", i);
        size_t al = ip(name, a);
        dns_cookie_make_memo(&memo, secret, c, a, al, 1559731985u, got);
        dns_cookie_make(secret, c, a, al, 1559731985u, plain);
        assert_memory_equal(got, plain, 16);
    }
    /* one checked for an address is not taken for its neighbour's */
    size_t al = ip("2001:db8::54", a);
    dns_cookie_make(secret, c, a, al, 1559731985u, plain);
    assert_true(dns_cookie_check_memo(&memo, secret, c, plain, 16, a, al, 1559731986u));
    al = ip("2001:db8::55", a);
    assert_false(dns_cookie_check_memo(&memo, secret, c, plain, 16, a, al, 1559731986u));
}

/*
 * The inline common case gives what the steps give, in every case: a client cookie
 * alone, our cookie echoed (young, old, stale), one of the previous secret,
 * a forged one, one of another length; IPv4 and IPv6; with and without a
 * memo; across renewals and a secret rotation.
 */
static void test_reply(void **state)
{
    static struct dns_cookie_memo m1, m2;
    uint8_t secret[16], previous[16], other[16], a4[16], a6[16];
    size_t l4 = ip("198.51.100.100", a4), l6 = ip("2001:db8::53", a6);
    uint8_t last[2][2][24] = {{{0}}}; /* the last answer per client and address */
    const uint32_t t0 = 1559731985u;
    int valid_seen = 0;

    (void)state;
    memset(secret, 7, sizeof(secret));
    memset(previous, 6, sizeof(previous));
    memset(other, 5, sizeof(other));
    for (unsigned k = 0; k < 12; k++) {
        uint32_t now = t0 + k * 700; /* past REUSE_S and MAX_AGE_S in turn */
        if (k == 8) {                /* rotation: the current secret becomes the previous */
            memcpy(previous, secret, 16);
            memset(secret, 4, sizeof(secret));
        }
        for (unsigned c = 0; c < 2; c++) {
            for (unsigned ai = 0; ai < 2; ai++) {
                const uint8_t *a = ai == 0 ? a4 : a6;
                size_t al = ai == 0 ? l4 : l6;
                for (unsigned form = 0; form < 6; form++) {
                    uint8_t opt[40], o1[24], o2[24], o3[24], o4[24];
                    size_t len = 24;

                    memset(opt, 0x30 + c, 8);
                    switch (form) {
                    case 0: /* client cookie alone */
                        len = 8;
                        break;
                    case 1: /* what we answered last (before any answer: zeros) */
                        memcpy(opt + 8, last[c][ai] + 8, 16);
                        break;
                    case 2: /* made under the previous secret */
                        dns_cookie_make(previous, opt, a, al, now - 10, opt + 8);
                        break;
                    case 3: /* forged */
                        memcpy(opt + 8, last[c][ai] + 8, 16);
                        opt[23] ^= 0x80;
                        break;
                    case 4: /* under another secret */
                        dns_cookie_make(other, opt, a, al, now, opt + 8);
                        break;
                    default: /* another length */
                        memset(opt + 8, 1, 32);
                        len = 40;
                        break;
                    }
                    bool v1 = dns_cookie_reply(&m1, secret, previous, opt, len, a, al, now, o1);
                    bool v2 =
                        dns_cookie_reply_steps(&m2, secret, previous, opt, len, a, al, now, o2);
                    assert_int_equal(v1, v2);
                    assert_memory_equal(o1, o2, 24);
                    bool v3 = dns_cookie_reply(NULL, secret, previous, opt, len, a, al, now, o3);
                    bool v4 =
                        dns_cookie_reply_steps(NULL, secret, previous, opt, len, a, al, now, o4);
                    assert_int_equal(v3, v4);
                    assert_int_equal(v1, v3);
                    assert_memory_equal(o3, o4, 24);
                    valid_seen += v1;
                    if (form <= 1)
                        memcpy(last[c][ai], o1, 24);
                }
            }
        }
    }
    assert_true(valid_seen > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answers), cmocka_unit_test(test_returned_cookies),
        cmocka_unit_test(test_window),        cmocka_unit_test(test_young),
        cmocka_unit_test(test_memo),          cmocka_unit_test(test_memo_addresses),
        cmocka_unit_test(test_reply),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
