/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_dns_pcache.c -- the UDP packet cache: a response from the cache must
 * be, byte for byte and field for field, the one dns_query_process makes,
 * for every kind of query, client and view; with its own ID; never another
 * client's, view's or listener's; and correct when everything collides.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_state.h"
#include "dnsd/dns_cookie.h"
#include "dnsd/dns_fed.h"
#include "dnsd/dns_pcache.h"
#include "dnsd/dns_query.h"
#include "dnsd/dns_view.h"
#include "dnsd/dns_wire.h"
#include "dnsd/dns_zone.h"
#include "tests/dnsd_fed_view.h"

#define ORIGIN FED_FIXTURE_ORIGIN
#define NOW    1559731985u

static const uint8_t SECRET[16] = {0xe5, 0xe9, 0x73, 0xe5, 0xa6, 0xb2, 0xa4, 0x3f,
                                   0x48, 0xe7, 0xdc, 0x84, 0x9e, 0x37, 0xbf, 0xcf};
static const uint8_t SEED[DNS_PCACHE_SEED_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14};

struct fixture {
    struct cm_conf *conf;  /* the view's */
    struct dns_zone *zone; /* the view's */
    struct dns_view *view;
    struct dns_pcache *pc;
    uint64_t rng;
    uint8_t want[4096], got[4096];
};

static struct dns_view *build_view(struct fixture *f, const char *doc, uint64_t serial)
{
    struct cm_state *st = NULL;
    struct cm_merged *merged = NULL;
    struct dns_view *view = NULL;
    char err[512];

    if (cm_state_parse(doc, strlen(doc), NULL, &st, err, sizeof(err)) != CM_OK)
        fail_msg("state: %s", err);
    const struct cm_state *docs[] = {st};
    assert_int_equal(cm_merged_build(docs, 1, f->conf, &merged), CM_OK);
    if (dns_view_new(f->conf, f->zone, merged, NULL, serial, &view, err, sizeof(err)) != CM_OK)
        fail_msg("view: %s", err);
    cm_merged_free(merged);
    cm_state_free(st);
    return view;
}

static int setup_conf(void **state, const char *conf_text)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char path[] = "/tmp/test_dns_pcache.XXXXXX";

    assert_non_null(f);
    f->view = fed_fixture_view_conf(path, conf_text);
    f->conf = f->view->conf; /* borrowed from the view, as is the zone */
    f->zone = f->view->zone;
    f->conf->dnsd.cookies.enabled = false;
    memcpy(f->conf->dnsd.cookies.secret, SECRET, 16);
    f->pc = dns_pcache_new(8192, SEED);
    assert_non_null(f->pc);
    f->rng = 0x9e3779b97f4a7c15ull;
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_conf(state, FED_FIXTURE_CONF);
}

/* One set, one tag: every lookup compares every way's full key. */
static void fixture_collide(struct fixture *f)
{
    dns_pcache_free(f->pc);
    f->pc = dns_pcache_new(DNS_PCACHE_WAYS, SEED);
    assert_non_null(f->pc);
    dns_pcache_collide(f->pc);
}

static int setup_collide(void **state)
{
    setup(state);
    fixture_collide(*state);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    dns_pcache_free(f->pc);
    dns_view_unref(f->view);
    free(f);
    return 0;
}

static uint32_t rnd(struct fixture *f)
{
    f->rng ^= f->rng << 13;
    f->rng ^= f->rng >> 7;
    f->rng ^= f->rng << 17;
    return (uint32_t)(f->rng >> 11);
}

/* ---- queries ---- */

/* An ECS option (RFC 7871) for family @fam (1, 2) at @opts + @ol: @a cut to
 * @bits, its bytes past them left out. Returns the new length. */
static size_t put_ecs(uint8_t *opts, size_t ol, unsigned fam, const uint8_t *a, unsigned bits)
{
    size_t al = (bits + 7) / 8;
    uint8_t h[8] = {0, 8, 0, (uint8_t)(4 + al), 0, (uint8_t)fam, (uint8_t)bits, 0};

    memcpy(opts + ol, h, 8);
    memcpy(opts + ol + 8, a, al);
    if (bits % 8 != 0)
        opts[ol + 8 + al - 1] &= (uint8_t)(0xFF << (8 - bits % 8));
    return ol + 8 + al;
}

struct pkt {
    uint8_t b[1024];
    size_t len;
};

static void put16(struct pkt *p, unsigned v)
{
    p->b[p->len++] = (uint8_t)(v >> 8);
    p->b[p->len++] = (uint8_t)v;
}

static void put_bytes(struct pkt *p, const void *b, size_t n)
{
    memcpy(p->b + p->len, b, n);
    p->len += n;
}

enum edns_kind {
    E_NONE,
    E_PLAIN,  /* 1232 */
    E_SMALL,  /* 512, DO */
    E_TINY,   /* 100 (read as 512) */
    E_ECS4,   /* ECS 10.<r>.x.y with a random prefix */
    E_ECS6,   /* ECS 2001:db8:<r>::/<random> */
    E_COOKIE, /* a client cookie and an NSID request */
    E_VALID,  /* a client cookie and our valid server cookie */
    E_BADV,   /* EDNS version 1: BADVERS */
    E_KINDS,
};

/* A query for wire name @name with random case, @qtype, EDNS @e. */
static void build_query(struct fixture *f, struct pkt *p, const uint8_t *name, size_t nlen,
                        uint16_t qtype, enum edns_kind e, const uint8_t client4[4])
{
    uint8_t opts[128];
    size_t ol = 0;

    p->len = 0;
    put16(p, rnd(f) & 0xFFFF);
    put16(p, (rnd(f) & 1) != 0 ? 0x0110 : 0x0100); /* RD, sometimes CD */
    put16(p, 1);
    put16(p, 0);
    put16(p, 0);
    put16(p, e == E_NONE ? 0 : 1);
    for (size_t i = 0; i < nlen; i++) { /* 0x20: random letter case */
        uint8_t c = name[i];
        p->b[p->len++] = c >= 'a' && c <= 'z' && (rnd(f) & 1) != 0 ? (uint8_t)(c - 32) : c;
    }
    put16(p, qtype);
    put16(p, DNS_CLASS_IN);
    if (e == E_NONE)
        return;
    if (e == E_ECS4) {
        unsigned bits = rnd(f) % 33;
        uint8_t a[4] = {10, (uint8_t)(1 + rnd(f) % 3), (uint8_t)rnd(f), (uint8_t)rnd(f)};
        ol = put_ecs(opts, ol, 1, a, bits);
    } else if (e == E_ECS6) {
        unsigned bits = 32 + rnd(f) % 97;
        uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, (uint8_t)(1 + rnd(f) % 3)};
        for (size_t i = 6; i < 16; i++)
            a[i] = (uint8_t)rnd(f);
        ol = put_ecs(opts, ol, 2, a, bits);
    } else if (e == E_COOKIE || e == E_VALID) {
        static const uint8_t cc[8] = {0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57};
        uint8_t h[4] = {0, 10, 0, e == E_COOKIE ? 8 : 24};
        memcpy(opts + ol, h, 4);
        ol += 4;
        memcpy(opts + ol, cc, 8);
        ol += 8;
        if (e == E_VALID) {
            uint8_t sc[DNS_COOKIE_OURS_LEN];
            dns_cookie_make(SECRET, cc, client4, 4, NOW - 10, sc);
            memcpy(opts + ol, sc, sizeof(sc));
            ol += sizeof(sc);
        } else {
            uint8_t nsid[4] = {0, 3, 0, 0};
            memcpy(opts + ol, nsid, 4);
            ol += 4;
        }
    }
    p->b[p->len++] = 0;
    put16(p, DNS_TYPE_OPT);
    put16(p, e == E_SMALL ? 512 : e == E_TINY ? 100 : 1232);
    p->b[p->len++] = 0;
    p->b[p->len++] = e == E_BADV ? 1 : 0;
    put16(p, e == E_SMALL ? 0x8000 : 0);
    put16(p, (unsigned)ol);
    put_bytes(p, opts, ol);
}

/* ---- comparison ---- */

static void assert_same_info(const struct dns_query_info *a, const struct dns_query_info *b,
                             const uint8_t *req, size_t req_len, const char *what)
{
    if (!fed_info_same(a, b))
        fail_msg("%s: query info differs", what);
    /* the name of the bucket is the request's own when it is in the request */
    uintptr_t n = (uintptr_t)a->rrl_name, r = (uintptr_t)req;
    if (a->rrl_name != NULL && n >= r && n < r + req_len)
        assert_true(n + a->rrl_name_len <= r + req_len);
}

struct counts {
    unsigned queries, hits, cacheable, cookies;
};

/*
 * @p from @client through the cache twice (a miss, then a hit under
 * another ID) and without it: the same responses (but the ID) and infos.
 */
static void compare_one(struct fixture *f, struct pkt *p, const struct sockaddr *client,
                        unsigned listener, struct counts *c, const char *what)
{
    struct dns_query_info want, got;
    struct dns_pcache_stats before = {0}, after = {0};

    dns_pcache_stats_add(f->pc, &before);
    size_t wl = dns_query_process(f->view, p->b, p->len, f->want, sizeof(f->want), client, false,
                                  &want, NOW);
    for (int round = 0; round < 2; round++) {
        if (round == 1) { /* another ID: it alone must change */
            p->b[0] ^= 0x5a;
            p->b[1] ^= 0xa5;
            wl = dns_query_process(f->view, p->b, p->len, f->want, sizeof(f->want), client, false,
                                   &want, NOW);
        }
        size_t gl = dns_pcache_process(f->pc, f->view, NULL, listener, p->b, p->len, f->got,
                                       sizeof(f->got), client, &got, NOW);
        if (gl != wl || memcmp(f->got, f->want, wl) != 0) {
            size_t at = 0;
            while (at < wl && at < gl && f->got[at] == f->want[at])
                at++;
            fail_msg("%s round %d: cached response differs (%zu vs %zu bytes, first at %zu)", what,
                     round, gl, wl, at);
        }
        if (wl > 0)
            assert_memory_equal(f->got, p->b, 2); /* the query's ID */
        assert_same_info(&got, &want, p->b, p->len, what);
    }
    dns_pcache_stats_add(f->pc, &after);
    /* the same bytes from a neighbour (another /24 or /56, another tie
     * slot): its own answer, never this client's */
    struct sockaddr_storage other;
    memcpy(&other, client,
           client->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
    if (other.ss_family == AF_INET)
        ((uint8_t *)&((struct sockaddr_in *)&other)->sin_addr)[2] ^= (uint8_t)(1 + rnd(f) % 255);
    else
        ((uint8_t *)&((struct sockaddr_in6 *)&other)->sin6_addr)[6] ^= (uint8_t)(1 + rnd(f) % 255);
    wl = dns_query_process(f->view, p->b, p->len, f->want, sizeof(f->want),
                           (const struct sockaddr *)&other, false, &want, NOW);
    size_t ol = dns_pcache_process(f->pc, f->view, NULL, listener, p->b, p->len, f->got,
                                   sizeof(f->got), (const struct sockaddr *)&other, &got, NOW);
    if (ol != wl || memcmp(f->got, f->want, wl) != 0)
        fail_msg("%s: a neighbour got another client's response", what);
    assert_same_info(&got, &want, p->b, p->len, what);
    c->queries++;
    c->hits += (unsigned)(after.hits - before.hits);
    c->cookies += want.uncacheable;
    if (after.inserts > before.inserts) {
        c->cacheable++;
        /* stored: the second round was a hit */
        assert_int_equal(after.hits - before.hits, 1);
    }
    /* every lookup is a hit or a miss, every miss stored or not (the
     * neighbour's lookup came after @after) */
    assert_int_equal(after.hits + after.misses, before.hits + before.misses + 2);
    assert_int_equal(after.misses - before.misses,
                     (after.inserts - before.inserts) + (after.uncacheable - before.uncacheable));
}

static const uint16_t qtypes[] = {DNS_TYPE_A,   DNS_TYPE_AAAA, DNS_TYPE_ANY, DNS_TYPE_MX,
                                  DNS_TYPE_TXT, DNS_TYPE_SOA,  DNS_TYPE_NS,  99};

static void client_at(unsigned k, struct sockaddr_storage *ss, uint8_t v4[4])
{
    memset(ss, 0, sizeof(*ss));
    v4[0] = 10, v4[1] = (uint8_t)(1 + k % 3), v4[2] = (uint8_t)(k * 37), v4[3] = (uint8_t)k;
    if (k % 4 == 3) { /* IPv6: a region's network, or the v4-mapped form */
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)(1024 + k));
        if (k % 8 == 3) {
            uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 2, [15] = (uint8_t)k};
            memcpy(&s6->sin6_addr, a, 16);
        } else {
            uint8_t a[16] = {[10] = 0xff, [11] = 0xff};
            memcpy(a + 12, v4, 4);
            memcpy(&s6->sin6_addr, a, 16);
        }
        return;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons((uint16_t)(1024 + k));
    memcpy(&s4->sin_addr, v4, 4);
}

/*
 * Near twins in a one-set, one-tag table: queries and clients that differ in
 * one byte only (the last of an ECS /32, the last of the source address,
 * IPv4 and IPv6), where single host networks put the twins in other
 * regions. Each must get its own answer.
 */
static int setup_twins(void **state)
{
    static const char extra[] = "\"client_networks\": ["
                                "{\"cidr\": \"10.1.2.5/32\", \"region\": \"ns1\"}, "
                                "{\"cidr\": \"2001:db8:2::5/128\", \"region\": \"ns1\"}, ";
    char text[sizeof(FED_FIXTURE_CONF) + sizeof(extra)];
    const char *at = strstr(FED_FIXTURE_CONF, "\"client_networks\": [");

    assert_non_null(at);
    size_t head = (size_t)(at - FED_FIXTURE_CONF), skip = strlen("\"client_networks\": [");
    snprintf(text, sizeof(text), "%.*s%s%s", (int)head, FED_FIXTURE_CONF, extra,
             FED_FIXTURE_CONF + head + skip);
    setup_conf(state, text);
    fixture_collide(*state);
    return 0;
}

static void test_twins(void **state)
{
    struct fixture *f = *state;
    uint8_t wire[DNS_NAME_MAX];
    size_t len = dns_name_from_text("web.default.myfed.svc." ORIGIN, true, wire);
    struct dns_query_info want, got;
    unsigned differ = 0;

    for (unsigned round = 0; round < 3; round++) {
        for (unsigned k = 0; k < 8; k++) {
            struct sockaddr_storage ss;
            struct pkt p;
            memset(&ss, 0, sizeof(ss));
            if (k % 2 == 0) {
                struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
                s4->sin_family = AF_INET;
                inet_pton(AF_INET, "10.1.2.3", &s4->sin_addr);
                ((uint8_t *)&s4->sin_addr)[3] = (uint8_t)(3 + k / 2); /* .3 .. .6 */
            } else {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
                s6->sin6_family = AF_INET6;
                inet_pton(AF_INET6, "2001:db8:2::3", &s6->sin6_addr);
                s6->sin6_addr.s6_addr[15] = (uint8_t)(3 + k / 2);
            }
            f->rng = 77; /* the same case and ID every time */
            build_query(f, &p, wire, len, DNS_TYPE_AAAA, E_PLAIN, (const uint8_t *)"\0\0\0\0");
            size_t wl = dns_query_process(f->view, p.b, p.len, f->want, sizeof(f->want),
                                          (const struct sockaddr *)&ss, false, &want, NOW);
            for (int twice = 0; twice < 2; twice++) { /* a miss, then a hit */
                size_t gl =
                    dns_pcache_process(f->pc, f->view, NULL, 0, p.b, p.len, f->got, sizeof(f->got),
                                       (const struct sockaddr *)&ss, &got, NOW);
                assert_int_equal(gl, wl);
                assert_memory_equal(f->got, f->want, wl);
                assert_same_info(&got, &want, p.b, p.len, "twin client");
            }
            differ += want.region == 2; /* the .5 hosts: ns1 */
            /* the same from 10.1.2.3 with an ECS /32 whose last byte is k */
            struct sockaddr_in s4 = {.sin_family = AF_INET};
            inet_pton(AF_INET, "10.1.2.3", &s4.sin_addr);
            f->rng = 77;
            build_query(f, &p, wire, len, DNS_TYPE_AAAA, E_NONE, (const uint8_t *)"\0\0\0\0");
            size_t at = p.len;
            p.b[11] = 1;
            p.b[p.len++] = 0;
            put16(&p, DNS_TYPE_OPT);
            put16(&p, 1232);
            put16(&p, 0);
            put16(&p, 0);
            put16(&p, 12);
            uint8_t ecs[12] = {0, 8, 0, 8, 0, 1, 32, 0, 10, 1, 2, (uint8_t)(3 + k)};
            put_bytes(&p, ecs, 12);
            p.len = at + 11 + 12;
            wl = dns_query_process(f->view, p.b, p.len, f->want, sizeof(f->want),
                                   (const struct sockaddr *)&s4, false, &want, NOW);
            for (int twice = 0; twice < 2; twice++) {
                size_t gl =
                    dns_pcache_process(f->pc, f->view, NULL, 0, p.b, p.len, f->got, sizeof(f->got),
                                       (const struct sockaddr *)&s4, &got, NOW);
                assert_int_equal(gl, wl);
                assert_memory_equal(f->got, f->want, wl);
                assert_same_info(&got, &want, p.b, p.len, "twin ECS");
            }
        }
    }
    assert_true(differ > 0);
    struct dns_pcache_stats st = {0};
    dns_pcache_stats_add(f->pc, &st);
    assert_true(st.hits > 0);
}

static void run_names(struct fixture *f, struct counts *c, unsigned per_name)
{
    const struct dns_fed *fed = f->view->fed;
    static const char *const statics[] = {
        ORIGIN,           "www." ORIGIN,   "Alias." ORIGIN, "nx." ORIGIN,
        "a.b.nx." ORIGIN, "x.sub." ORIGIN, "sorry." ORIGIN, "www.example.org",
    };
    size_t nfed = dns_fed_name_total(fed), total = nfed + sizeof(statics) / sizeof(statics[0]);
    char what[160];

    for (size_t i = 0; i < total; i++) {
        uint8_t wire[DNS_NAME_MAX];
        const uint8_t *name = wire;
        size_t len;
        if (i < nfed) {
            name = dns_fed_name_wire(fed, i, &len);
        } else {
            len = dns_name_from_text(statics[i - nfed], true, wire);
            assert_true(len > 0);
        }
        for (unsigned k = 0; k < per_name; k++) {
            struct sockaddr_storage ss;
            uint8_t v4[4];
            struct pkt p;
            client_at(rnd(f) % 16, &ss, v4);
            uint16_t qt = qtypes[rnd(f) % (sizeof(qtypes) / sizeof(qtypes[0]))];
            enum edns_kind e = (enum edns_kind)(rnd(f) % E_KINDS);
            build_query(f, &p, name, len, qt, e, v4);
            snprintf(what, sizeof(what), "name %zu qtype %u edns %d", i, qt, (int)e);
            compare_one(f, &p, (const struct sockaddr *)&ss, rnd(f) % 2, c, what);
        }
    }
}

static void test_differential(void **state)
{
    struct fixture *f = *state;
    struct counts c = {0};

    f->conf->dnsd.cookies.enabled = false;
    run_names(f, &c, 24);
    /* cookies on: a new view (the conf is the view's), so a new serial */
    f->conf->dnsd.cookies.enabled = true;
    f->view->serial = 2;
    run_names(f, &c, 24);
    /* 512-byte limit: big answers truncate */
    f->conf->dnsd.max_udp_size = 512;
    dns_view_read_conf(f->view);
    f->view->serial = 3;
    run_names(f, &c, 12);
    f->conf->dnsd.max_udp_size = 1232;
    dns_view_read_conf(f->view);
    print_message("%u queries, %u cacheable, %u hits, %u with cookies\n", c.queries, c.cacheable,
                  c.hits, c.cookies);
    /* the comparison means something only if most answers came from the cache */
    assert_true(c.cacheable > c.queries / 2);
    assert_true(c.hits >= c.cacheable);
    assert_true(c.cookies > 0);
}

/* Malformed and odd packets: FORMERR, NOTIMP, dropped (QR), short. */
static void test_odd_packets(void **state)
{
    struct fixture *f = *state;
    struct counts c = {0};
    struct sockaddr_in sin = {.sin_family = AF_INET};
    char what[64];

    inet_pton(AF_INET, "10.1.2.3", &sin.sin_addr);
    for (unsigned i = 0; i < 3000; i++) {
        struct pkt p;
        uint8_t wire[DNS_NAME_MAX];
        size_t len = dns_name_from_text("web.default.myfed.svc." ORIGIN, true, wire);
        build_query(f, &p, wire, len, DNS_TYPE_A, (enum edns_kind)(rnd(f) % E_KINDS),
                    (const uint8_t *)&sin.sin_addr);
        unsigned flips = 1 + rnd(f) % 3;
        for (unsigned k = 0; k < flips; k++)
            p.b[2 + rnd(f) % (p.len - 2)] ^= (uint8_t)(1u << (rnd(f) % 8));
        if (rnd(f) % 4 == 0)
            p.len = 12 + rnd(f) % (p.len - 11);
        snprintf(what, sizeof(what), "mutated #%u", i);
        compare_one(f, &p, (const struct sockaddr *)&sin, 0, &c, what);
    }
    assert_true(c.hits > 1000);
}

/* A new view (a state push) answers at once, not the old view's answer. */
static void test_new_view(void **state)
{
    struct fixture *f = *state;
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct dns_query_info info;
    struct pkt p;
    char doc[8192];
    uint8_t wire[DNS_NAME_MAX];
    size_t len = dns_name_from_text("host.default.myfed.svc." ORIGIN, true, wire);

    inet_pton(AF_INET, "10.1.2.3", &sin.sin_addr);
    build_query(f, &p, wire, len, DNS_TYPE_A, E_PLAIN, (const uint8_t *)&sin.sin_addr);
    size_t a = dns_pcache_process(f->pc, f->view, NULL, 0, p.b, p.len, f->got, sizeof(f->got),
                                  (const struct sockaddr *)&sin, &info, NOW);
    size_t b = dns_pcache_process(f->pc, f->view, NULL, 0, p.b, p.len, f->want, sizeof(f->want),
                                  (const struct sockaddr *)&sin, &info, NOW);
    assert_int_equal(a, b);
    assert_memory_equal(f->got, f->want, a);
    uint8_t old[512];
    assert_true(a <= sizeof(old));
    memcpy(old, f->got, a);
    /* host's member moved to another hostname in view 7 */
    fed_fixture_state(doc, sizeof(doc));
    char *at = strstr(doc, "\"LB.ns1.fed.example.test\"");
    assert_non_null(at);
    at[2] = 'C';
    struct dns_view *v2 = build_view(f, doc, 7);
    size_t n = dns_pcache_process(f->pc, v2, NULL, 0, p.b, p.len, f->got, sizeof(f->got),
                                  (const struct sockaddr *)&sin, &info, NOW);
    size_t w = dns_query_process(v2, p.b, p.len, f->want, sizeof(f->want),
                                 (const struct sockaddr *)&sin, false, &info, NOW);
    assert_int_equal(n, w);
    assert_memory_equal(f->got, f->want, w);
    assert_true(a != w || memcmp(old, f->want, w) != 0); /* the answer did change */
    /* and the new answer is cached in its place */
    struct dns_pcache_stats st = {0};
    dns_pcache_stats_add(f->pc, &st);
    n = dns_pcache_process(f->pc, v2, NULL, 0, p.b, p.len, f->got, sizeof(f->got),
                           (const struct sockaddr *)&sin, &info, NOW);
    assert_memory_equal(f->got, f->want, w);
    struct dns_pcache_stats st2 = {0};
    dns_pcache_stats_add(f->pc, &st2);
    assert_int_equal(st2.hits, st.hits + 1);
    dns_view_unref(v2);
}

/* Two clients of two regions (by source, then by ECS from one source) each
 * get their own answer, repeatedly; the listener is in the key too. */
static void test_clients_apart(void **state)
{
    struct fixture *f = *state;
    struct sockaddr_in us = {.sin_family = AF_INET}, eu = {.sin_family = AF_INET};
    struct dns_query_info info;
    uint8_t a_us[512], a_eu[512];
    struct pkt p;
    uint8_t wire[DNS_NAME_MAX];
    size_t len = dns_name_from_text("web.default.myfed.svc." ORIGIN, true, wire);

    inet_pton(AF_INET, "10.1.2.3", &us.sin_addr);
    inet_pton(AF_INET, "10.2.2.3", &eu.sin_addr);
    build_query(f, &p, wire, len, DNS_TYPE_AAAA, E_PLAIN, (const uint8_t *)&us.sin_addr);
    size_t nu = dns_query_process(f->view, p.b, p.len, a_us, sizeof(a_us),
                                  (const struct sockaddr *)&us, false, &info, NOW);
    size_t ne = dns_query_process(f->view, p.b, p.len, a_eu, sizeof(a_eu),
                                  (const struct sockaddr *)&eu, false, &info, NOW);
    assert_true(nu != ne || memcmp(a_us, a_eu, nu) != 0); /* the regions' answers differ */
    for (int i = 0; i < 4; i++) {
        size_t n = dns_pcache_process(f->pc, f->view, NULL, 0, p.b, p.len, f->got, sizeof(f->got),
                                      (const struct sockaddr *)&us, &info, NOW);
        assert_int_equal(n, nu);
        assert_memory_equal(f->got, a_us, nu);
        n = dns_pcache_process(f->pc, f->view, NULL, 0, p.b, p.len, f->got, sizeof(f->got),
                               (const struct sockaddr *)&eu, &info, NOW);
        assert_int_equal(n, ne);
        assert_memory_equal(f->got, a_eu, ne);
    }
    /* the same key but the listener: a miss */
    struct dns_pcache_probe probe;
    struct dns_pcache_stats st = {0};
    assert_true(dns_pcache_lookup(f->pc, &probe, f->view->serial, 0, (const struct sockaddr *)&us,
                                  p.b, p.len, f->got, sizeof(f->got), &info) > 0);
    assert_int_equal(dns_pcache_lookup(f->pc, &probe, f->view->serial, 1,
                                       (const struct sockaddr *)&us, p.b, p.len, f->got,
                                       sizeof(f->got), &info),
                     0);
    /* and the port is not */
    us.sin_port = htons(4242);
    assert_true(dns_pcache_lookup(f->pc, &probe, f->view->serial, 0, (const struct sockaddr *)&us,
                                  p.b, p.len, f->got, sizeof(f->got), &info) > 0);
    dns_pcache_stats_add(f->pc, &st);
    assert_int_equal(st.hits, 8); /* all but the first of each client, and two lookups */
}

/* One set of four ways for hundreds of queries: evictions all the time, answers right. */
static void test_collisions(void **state)
{
    struct fixture *f = *state;
    struct counts c = {0};

    dns_pcache_free(f->pc);
    f->pc = dns_pcache_new(1, SEED);
    assert_non_null(f->pc);
    assert_int_equal(dns_pcache_capacity(f->pc), DNS_PCACHE_WAYS);
    f->conf->dnsd.cookies.enabled = false;
    run_names(f, &c, 6);
    assert_true(c.hits > 0);
    /* and with one tag for all: the full key comparison alone */
    dns_pcache_collide(f->pc);
    run_names(f, &c, 6);
    f->view->serial = 5;
    run_names(f, &c, 6);
    assert_true(c.hits > 100);
}

/* Over-long queries and responses are answered, not stored. */
static void test_limits(void **state)
{
    struct fixture *f = *state;
    struct counts c = {0};
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct pkt p;
    uint8_t wire[DNS_NAME_MAX];

    inet_pton(AF_INET, "10.1.2.3", &sin.sin_addr);
    /* the big service: 24 AAAA, over 600 bytes */
    size_t len = dns_name_from_text("big.default.myfed.svc." ORIGIN, true, wire);
    build_query(f, &p, wire, len, DNS_TYPE_AAAA, E_PLAIN, (const uint8_t *)&sin.sin_addr);
    compare_one(f, &p, (const struct sockaddr *)&sin, 0, &c, "big");
    assert_int_equal(c.cacheable, 0);
    /* a 216-byte name: the query is over DNS_PCACHE_QUERY_MAX with an OPT
     * holding a cookie (cookies are off: only its length keeps it out) */
    char name[300] = "";
    for (int i = 0; i < 6; i++)
        strcat(name, "abcdefghijklmnopqrstuvwxyz01234.");
    strcat(name, ORIGIN);
    len = dns_name_from_text(name, true, wire);
    assert_true(len > 0);
    build_query(f, &p, wire, len, DNS_TYPE_A, E_VALID, (const uint8_t *)&sin.sin_addr);
    assert_true(p.len - 2 > DNS_PCACHE_QUERY_MAX);
    compare_one(f, &p, (const struct sockaddr *)&sin, 0, &c, "long");
    assert_int_equal(c.cacheable, 0);
    /* just under: cached */
    build_query(f, &p, wire, len, DNS_TYPE_A, E_NONE, (const uint8_t *)&sin.sin_addr);
    assert_true(p.len - 2 <= DNS_PCACHE_QUERY_MAX);
    compare_one(f, &p, (const struct sockaddr *)&sin, 0, &c, "long, no OPT");
    assert_int_equal(c.cacheable, 1);
}

/* Cookies: never from the cache, whatever the clock does. */
static void test_cookies(void **state)
{
    struct fixture *f = *state;
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct dns_query_info info;
    struct pkt p;
    uint8_t wire[DNS_NAME_MAX];
    size_t len = dns_name_from_text("web.default.myfed.svc." ORIGIN, true, wire);

    inet_pton(AF_INET, "10.1.2.3", &sin.sin_addr);
    f->conf->dnsd.cookies.enabled = true;
    f->view->serial = 11;
    build_query(f, &p, wire, len, DNS_TYPE_A, E_COOKIE, (const uint8_t *)&sin.sin_addr);
    for (uint32_t t = 0; t < 3; t++) {
        uint32_t now = NOW + t * 4000; /* a new server cookie each time */
        size_t n = dns_pcache_process(f->pc, f->view, NULL, 0, p.b, p.len, f->got, sizeof(f->got),
                                      (const struct sockaddr *)&sin, &info, now);
        size_t w = dns_query_process(f->view, p.b, p.len, f->want, sizeof(f->want),
                                     (const struct sockaddr *)&sin, false, &info, now);
        assert_int_equal(n, w);
        assert_memory_equal(f->got, f->want, w);
        assert_true(info.uncacheable);
    }
    struct dns_pcache_stats st = {0};
    dns_pcache_stats_add(f->pc, &st);
    assert_int_equal(st.hits, 0);
    assert_int_equal(st.inserts, 0);
    assert_int_equal(st.uncacheable, 3);
}

/* The hash is keyed: other seeds put the same queries in other sets. */
static void test_seeded(void **state)
{
    struct fixture *f = *state;
    static const uint8_t other[DNS_PCACHE_SEED_LEN] = {42};
    struct dns_pcache *a = dns_pcache_new(8192, SEED), *b = dns_pcache_new(8192, other);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct dns_query_info info;
    unsigned same = 0;
    uint8_t wire[DNS_NAME_MAX];
    size_t len = dns_name_from_text("web.default.myfed.svc." ORIGIN, true, wire);

    assert_non_null(a);
    assert_non_null(b);
    inet_pton(AF_INET, "10.1.2.3", &sin.sin_addr);
    for (unsigned i = 0; i < 64; i++) {
        struct dns_pcache_probe pa, pb, pa2;
        struct pkt p;
        build_query(f, &p, wire, len, DNS_TYPE_A, E_ECS4, (const uint8_t *)&sin.sin_addr);
        (void)dns_pcache_lookup(a, &pa, 1, 0, (const struct sockaddr *)&sin, p.b, p.len, f->got,
                                sizeof(f->got), &info);
        (void)dns_pcache_lookup(b, &pb, 1, 0, (const struct sockaddr *)&sin, p.b, p.len, f->got,
                                sizeof(f->got), &info);
        p.b[0] ^= 1; /* the ID is not hashed */
        (void)dns_pcache_lookup(a, &pa2, 1, 0, (const struct sockaddr *)&sin, p.b, p.len, f->got,
                                sizeof(f->got), &info);
        assert_int_equal(pa.set, pa2.set);
        assert_int_equal(pa.tag, pa2.tag);
        same += pa.set == pb.set;
    }
    assert_true(same < 8);
    dns_pcache_free(a);
    dns_pcache_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_differential, setup, teardown),
        cmocka_unit_test_setup_teardown(test_odd_packets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_view, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_view, setup_collide, teardown),
        cmocka_unit_test_setup_teardown(test_clients_apart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clients_apart, setup_collide, teardown),
        cmocka_unit_test_setup_teardown(test_collisions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_twins, setup_twins, teardown),
        cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cookies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seeded, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
