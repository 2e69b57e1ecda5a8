/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_dns_pre.c -- precompiled responses (dns_pre): the response copied from
 * parts must be, byte for byte, the one the writer makes, with the same
 * query info, for every federated and static name, letter case, qtype, EDNS
 * variant (sizes, DO, ECS of both families and several lengths, cookies,
 * NSID), client and transport; and the parts must actually be used.
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
#include "dnsd/dns_pre.h"
#include "dnsd/dns_query.h"
#include "dnsd/dns_view.h"
#include "dnsd/dns_wire.h"
#include "dnsd/dns_zone.h"
#include "tests/dnsd_fed_fixture.h"

#define ORIGIN FED_FIXTURE_ORIGIN
#define NOW    1559731985u

struct fixture {
    struct cm_conf *conf;
    struct dns_zone *zone;
    struct cm_state *st;
    struct cm_merged *merged;
    struct dns_view *view;
    uint8_t fast[65535], slow[65535];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char dir[] = "/tmp/test_dns_pre.XXXXXX";
    char path[64], err[512], doc[8192];

    assert_non_null(f);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/zone", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(FED_FIXTURE_ZONE, fp);
    fclose(fp);
    if (dns_zone_load(path, ORIGIN, &f->zone, err, sizeof(err)) != CM_OK)
        fail_msg("zone: %s", err);
    unlink(path);
    rmdir(dir);
    if (cm_conf_load_string("test.json", FED_FIXTURE_CONF, &f->conf, err, sizeof(err)) != CM_OK)
        fail_msg("conf: %s", err);
    /* cookies (RFC 9018 appendix A secret) and an NSID, set as the loader would */
    f->conf->dnsd.cookies.enabled = true;
    memcpy(f->conf->dnsd.cookies.secret,
           "\xe5\xe9\x73\xe5\xa6\xb2\xa4\x3f\x48\xe7\xdc\x84\x9e\x37\xbf\xcf", 16);
    memcpy(f->conf->dnsd.nsid_data, "ns-a", 4);
    f->conf->dnsd.nsid_len = 4;
    fed_fixture_state(doc, sizeof(doc));
    if (cm_state_parse(doc, strlen(doc), NULL, &f->st, err, sizeof(err)) != CM_OK)
        fail_msg("state: %s", err);
    const struct cm_state *docs[] = {f->st};
    assert_int_equal(cm_merged_build(docs, 1, f->conf, &f->merged), CM_OK);
    if (dns_view_new(f->conf, f->zone, f->merged, NULL, 1, &f->view, err, sizeof(err)) != CM_OK)
        fail_msg("view: %s", err);
    assert_non_null(f->view->pre);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    dns_view_unref(f->view);
    cm_merged_free(f->merged);
    cm_state_free(f->st);
    dns_zone_unref(f->zone);
    cm_conf_unref(f->conf);
    free(f);
    return 0;
}

/* ---- queries ---- */

struct pkt {
    uint8_t b[1024];
    size_t len;
};

static void put16(struct pkt *p, unsigned v)
{
    p->b[p->len++] = (uint8_t)(v >> 8);
    p->b[p->len++] = (uint8_t)v;
}

/* @name (wire) with letters upper-cased where bit (i % 16) of @mask is set (0x20). */
static void put_name(struct pkt *p, const uint8_t *name, size_t len, unsigned mask)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t c = name[i];
        if (c >= 'a' && c <= 'z' && (mask >> (i % 16) & 1u) != 0)
            c = (uint8_t)(c - 32);
        p->b[p->len++] = c;
    }
}

enum edns_kind {
    E_NONE,
    E_PLAIN,   /* 1232 */
    E_SMALL,   /* 512, DO */
    E_ECS24,   /* ECS the client's /24 */
    E_ECS16,   /* ECS the client's /16 */
    E_ECS0,    /* ECS /0 */
    E_ECS6,    /* ECS 2001:db8:2::/56 */
    E_COOKIE,  /* a client cookie and an NSID request */
    E_COOKIE2, /* a client cookie with our valid server cookie */
    E_ALL,     /* ECS 2001:db8:2::5a/128, a client cookie, an NSID request: the longest OPT */
    E_KINDS,
};

static void build_query(struct pkt *p, const uint8_t *name, size_t nlen, unsigned mask,
                        uint16_t qtype, enum edns_kind e, const uint8_t client[4])
{
    uint8_t opts[128];
    size_t ol = 0;

    p->len = 0;
    put16(p, 0xbeef);
    put16(p, (mask & 1u) != 0 ? 0x0110 : 0x0100); /* RD, sometimes CD */
    put16(p, 1);
    put16(p, 0);
    put16(p, 0);
    put16(p, e == E_NONE ? 0 : 1);
    put_name(p, name, nlen, mask);
    put16(p, qtype);
    put16(p, DNS_CLASS_IN);
    if (e == E_NONE)
        return;
    if (e == E_ECS24 || e == E_ECS16 || e == E_ECS0) {
        unsigned bits = e == E_ECS24 ? 24 : e == E_ECS16 ? 16 : 0;
        opts[ol++] = 0, opts[ol++] = 8, opts[ol++] = 0, opts[ol++] = (uint8_t)(4 + bits / 8);
        opts[ol++] = 0, opts[ol++] = 1, opts[ol++] = (uint8_t)bits, opts[ol++] = 0;
        memcpy(opts + ol, client, bits / 8);
        ol += bits / 8;
    } else if (e == E_ECS6) {
        static const uint8_t v6[7] = {0x20, 0x01, 0x0d, 0xb8, 0, 2, 0x5a};
        opts[ol++] = 0, opts[ol++] = 8, opts[ol++] = 0, opts[ol++] = 11;
        opts[ol++] = 0, opts[ol++] = 2, opts[ol++] = 56, opts[ol++] = 0;
        memcpy(opts + ol, v6, 7);
        ol += 7;
    } else if (e == E_ALL) {
        static const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 2, [15] = 0x5a};
        static const uint8_t cc[8] = {0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57};
        opts[ol++] = 0, opts[ol++] = 8, opts[ol++] = 0, opts[ol++] = 20;
        opts[ol++] = 0, opts[ol++] = 2, opts[ol++] = 128, opts[ol++] = 0;
        memcpy(opts + ol, v6, 16);
        ol += 16;
        opts[ol++] = 0, opts[ol++] = 10, opts[ol++] = 0, opts[ol++] = 8;
        memcpy(opts + ol, cc, 8);
        ol += 8;
        opts[ol++] = 0, opts[ol++] = 3, opts[ol++] = 0, opts[ol++] = 0;
    } else if (e == E_COOKIE || e == E_COOKIE2) {
        static const uint8_t cc[8] = {0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57};
        opts[ol++] = 0, opts[ol++] = 10, opts[ol++] = 0, opts[ol++] = e == E_COOKIE ? 8 : 24;
        memcpy(opts + ol, cc, 8);
        ol += 8;
        if (e == E_COOKIE2) {
            static const uint8_t ip[4] = {192, 0, 2, 200};
            uint8_t sc[DNS_COOKIE_OURS_LEN];
            dns_cookie_make((const uint8_t *)"\xe5\xe9\x73\xe5\xa6\xb2\xa4\x3f\x48\xe7\xdc\x84"
                                             "\x9e\x37\xbf\xcf",
                            cc, ip, 4, NOW - 10, sc);
            memcpy(opts + ol, sc, sizeof(sc));
            ol += sizeof(sc);
        } else {
            opts[ol++] = 0, opts[ol++] = 3, opts[ol++] = 0, opts[ol++] = 0; /* NSID */
        }
    }
    p->b[p->len++] = 0;
    put16(p, DNS_TYPE_OPT);
    put16(p, e == E_SMALL ? 512 : 1232);
    p->b[p->len++] = 0;
    p->b[p->len++] = 0;
    put16(p, e == E_SMALL ? 0x8000 : 0);
    put16(p, (unsigned)ol);
    memcpy(p->b + p->len, opts, ol);
    p->len += ol;
}

static void assert_same_info(const struct dns_query_info *a, const struct dns_query_info *b,
                             const char *what)
{
    if (a->qtype != b->qtype || a->rcode != b->rcode || a->tc != b->tc || a->ecs != b->ecs ||
        a->cookie_valid != b->cookie_valid || a->federated != b->federated ||
        a->fail_open != b->fail_open || a->fail_closed != b->fail_closed ||
        a->service != b->service || a->member != b->member || a->region != b->region ||
        a->rrl_class != b->rrl_class || a->rrl_name_len != b->rrl_name_len ||
        a->rrl_name_hash != b->rrl_name_hash || a->placement != b->placement ||
        (a->rrl_name_len > 0 && memcmp(a->rrl_name, b->rrl_name, a->rrl_name_len) != 0))
        fail_msg("%s: query info differs", what);
}

struct counts {
    unsigned queries, precompiled, nodata_parts, nxdomain_parts;
};

/* One query both ways: the same bytes and the same info. */
static void compare_one(struct fixture *f, const struct pkt *p, const struct sockaddr *client,
                        bool tcp, struct counts *c, const char *what)
{
    struct dns_query_info fi, si;
    struct dns_pre *pre = f->view->pre;
    size_t cap = tcp ? 65535 : 4096;

    size_t fl = dns_query_process(f->view, p->b, p->len, f->fast, cap, client, tcp, &fi, NOW);
    f->view->pre = NULL;
    size_t sl = dns_query_process(f->view, p->b, p->len, f->slow, cap, client, tcp, &si, NOW);
    f->view->pre = pre;
    if (fl != sl || memcmp(f->fast, f->slow, fl) != 0) {
        size_t at = 0;
        while (at < fl && at < sl && f->fast[at] == f->slow[at])
            at++;
        fail_msg("%s: precompiled response differs (%zu vs %zu bytes, first at byte %zu)", what, fl,
                 sl, at);
    }
    assert_same_info(&fi, &si, what);
    c->queries++;
    if (fi.precompiled) {
        c->precompiled++;
        if (fi.rrl_class == DNS_RRL_NODATA)
            c->nodata_parts++;
        if (fi.rcode == DNS_RCODE_NXDOMAIN)
            c->nxdomain_parts++;
    }
}

static const uint16_t qtypes[] = {DNS_TYPE_A,     DNS_TYPE_AAAA, DNS_TYPE_ANY, DNS_TYPE_MX,
                                  DNS_TYPE_CNAME, DNS_TYPE_TXT,  DNS_TYPE_SOA, DNS_TYPE_NS};

static void compare_name(struct fixture *f, const uint8_t *name, size_t len, struct counts *c)
{
    static const uint8_t clients[][4] = {
        {192, 0, 2, 200}, {10, 1, 7, 9}, {10, 2, 7, 9}, {10, 3, 7, 9}};
    struct pkt p;
    char what[160];

    for (size_t ci = 0; ci < sizeof(clients) / sizeof(clients[0]); ci++) {
        struct sockaddr_in sin = {.sin_family = AF_INET};
        memcpy(&sin.sin_addr, clients[ci], 4);
        for (size_t t = 0; t < sizeof(qtypes) / sizeof(qtypes[0]); t++) {
            for (unsigned e = 0; e < E_KINDS; e++) {
                unsigned mask = (unsigned)(ci * 7919u + t * 104729u + e * 31u) & 0xFFFFu;
                build_query(&p, name, len, mask, qtypes[t], (enum edns_kind)e, clients[ci]);
                snprintf(what, sizeof(what), "name #%u (%zu bytes) client %zu qtype %u edns %u",
                         c->queries, len, ci, qtypes[t], e);
                compare_one(f, &p, (const struct sockaddr *)&sin, false, c, what);
                if (e == E_PLAIN || e == E_NONE)
                    compare_one(f, &p, (const struct sockaddr *)&sin, true, c, what);
            }
        }
    }
}

static void test_differential(void **state)
{
    struct fixture *f = *state;
    const struct dns_fed *fed = f->view->fed;
    struct counts c = {0};
    static const char *const statics[] = {
        ORIGIN,
        "www." ORIGIN,
        "Alias." ORIGIN, /* a CNAME in the zone, chased to www */
        "nx." ORIGIN,
        "ns1." ORIGIN,
        "sorry." ORIGIN,
        "x.sub." ORIGIN,
        "a.b.nx." ORIGIN,
        "svc9.default.myfed.svc." ORIGIN,
        /* NXDOMAIN below MNAME's and RNAME's labels: the writer compresses
         * MNAME / RNAME into the question, the part would not */
        "zz.ns1." ORIGIN,
        "q.HostMaster." ORIGIN,
        /* more labels than the writer's compression table keeps */
        "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q." ORIGIN,
        "www.example.org",
    };

    for (size_t i = 0; i < dns_fed_name_total(fed); i++) {
        size_t len;
        const uint8_t *name = dns_fed_name_wire(fed, i, &len);
        compare_name(f, name, len, &c);
    }
    for (size_t i = 0; i < sizeof(statics) / sizeof(statics[0]); i++) {
        uint8_t wire[DNS_NAME_MAX];
        size_t len = dns_name_from_text(statics[i], true, wire);
        assert_true(len > 0);
        compare_name(f, wire, len, &c);
    }
    /* 100 labels: the writer's compression table (DNS_COMP_MAX) runs out
     * in the question, so it writes the SOA's names in full */
    char deep[DNS_NAME_MAX * 2] = "";
    for (unsigned i = 0; i < 100; i++)
        strcat(deep, "d.");
    strcat(deep, ORIGIN);
    uint8_t wire[DNS_NAME_MAX];
    size_t len = dns_name_from_text(deep, true, wire);
    assert_true(len > 0);
    compare_name(f, wire, len, &c);
    /* the comparison means something only if parts answered a fair share,
     * NODATA parts included */
    print_message("%u queries, %u precompiled, %u from NODATA parts, %u NXDOMAIN\n", c.queries,
                  c.precompiled, c.nodata_parts, c.nxdomain_parts);
    assert_true(c.precompiled > c.queries / 4);
    assert_true(c.nodata_parts > c.queries / 20);
    assert_true(c.nxdomain_parts > 0);
}

/*
 * 512-byte responses (dnsd.max_udp_size) and the longest OPT (ECS /128, a
 * cookie, a 128-byte NSID): NXDOMAIN for long names does not fit from some
 * length on, where the precompiled path must leave the query to the writer
 * (TC) instead of sending the response without its OPT.
 */
static void test_truncation(void **state)
{
    struct fixture *f = *state;
    static const uint8_t client[4] = {192, 0, 2, 200};
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct counts c = {0};
    unsigned tc = 0;
    struct pkt p;
    char what[96];

    memcpy(&sin.sin_addr, client, 4);
    f->conf->dnsd.max_udp_size = 512;
    dns_view_read_conf(f->view);
    memset(f->conf->dnsd.nsid_data, 'n', 128);
    f->conf->dnsd.nsid_len = 128;
    /* 63-byte labels, then one of 1..63 bytes above the apex: names of 211..255 bytes */
    for (unsigned last = 1; last <= 44; last++) {
        uint8_t name[DNS_NAME_MAX];
        size_t len = 0;
        for (unsigned l = 0; l < 3; l++) {
            name[len++] = 63;
            memset(name + len, 'a' + l, 63);
            len += 63;
        }
        name[len++] = (uint8_t)last;
        memset(name + len, 'z', last);
        len += last;
        uint8_t apex[DNS_NAME_MAX];
        size_t apex_len = dns_name_from_text(ORIGIN, true, apex);
        assert_true(apex_len > 0 && len + apex_len <= DNS_NAME_MAX);
        memcpy(name + len, apex, apex_len);
        len += apex_len;
        build_query(&p, name, len, 0x5a5a, DNS_TYPE_A, E_ALL, client);
        struct dns_query_info info;
        (void)dns_query_process(f->view, p.b, p.len, f->fast, 4096, (const struct sockaddr *)&sin,
                                false, &info, NOW);
        assert_int_equal(info.rcode, DNS_RCODE_NXDOMAIN);
        tc += info.tc;
        snprintf(what, sizeof(what), "NXDOMAIN, %zu-byte name", len);
        compare_one(f, &p, (const struct sockaddr *)&sin, false, &c, what);
    }
    /* both sides of the limit were met */
    assert_true(tc > 0);
    assert_true(c.nxdomain_parts > 0);
}

/* The regional name of region "ns1" shares MNAME's label above the apex: its
 * NODATA is written by the writer, which compresses MNAME into the question. */
static void test_nodata_exactness(void **state)
{
    struct fixture *f = *state;
    const struct dns_fed *fed = f->view->fed;
    uint8_t wire[DNS_NAME_MAX];
    struct dns_fed_answer fa;
    size_t len = dns_name_from_text("web.default.myfed.svc.ns1." ORIGIN, true, wire);

    assert_int_equal(dns_fed_lookup(fed, wire, len, DNS_TYPE_MX, 0, 0, &fa), DNS_FED_NAME);
    assert_false(dns_pre_nodata_ok(f->view->pre, fa.name_id));
    len = dns_name_from_text("web.default.myfed.svc.eu-west-1." ORIGIN, true, wire);
    assert_int_equal(dns_fed_lookup(fed, wire, len, DNS_TYPE_MX, 0, 0, &fa), DNS_FED_NAME);
    assert_true(dns_pre_nodata_ok(f->view->pre, fa.name_id));
    /* an alias under RNAME's label: the writer compresses RNAME into it */
    len = dns_name_from_text("Web.HostMaster." ORIGIN, true, wire);
    assert_int_equal(dns_fed_lookup(fed, wire, len, DNS_TYPE_MX, 0, 0, &fa), DNS_FED_NAME);
    assert_false(dns_pre_nodata_ok(f->view->pre, fa.name_id));
    assert_true(dns_pre_memory(f->view->pre) > 0);
    /* the same rule for names outside the table (NXDOMAIN) */
    len = dns_name_from_text("zz.ns1." ORIGIN, true, wire);
    assert_null(dns_pre_nxdomain(f->view->pre, wire, len));
    len = dns_name_from_text("zz.nx1." ORIGIN, true, wire);
    assert_ptr_equal(dns_pre_nxdomain(f->view->pre, wire, len), dns_pre_ent(f->view->pre));
}

/* A part is relocated to where the question ends: the SOA's names point
 * into the question of any length. */
static void test_copy_relocates(void **state)
{
    struct fixture *f = *state;
    const struct dns_pre_part *part = dns_pre_ent(f->view->pre);
    uint8_t out[512];

    assert_non_null(part);
    assert_int_equal(part->an, 0);
    assert_int_equal(part->ns, 1);
    assert_true(part->reloc_count >= 1);
    for (size_t base = 16 + 18; base < 200; base += 37) {
        assert_int_equal(dns_pre_copy(part, out, base), part->len);
        /* the owner: a pointer to the apex, 4 + 18 bytes before the part */
        assert_int_equal(out[0] & 0xC0, 0xC0);
        assert_int_equal(((out[0] & 0x3F) << 8 | out[1]), base - 4 - 18);
    }
}

/*
 * The hot records say what dns_fed_place_answer and the parts say, for
 * every federated name and region; a region the table does not have gets
 * the default region's; tied members and CNAMEs are left to the lookup
 * (DNS_PRE_HOT_FULL), and both kinds occur in the fixture.
 */
static void test_hot_records(void **state)
{
    static const uint16_t types[3] = {DNS_TYPE_A, DNS_TYPE_AAAA, DNS_TYPE_MX};
    struct fixture *f = *state;
    const struct dns_fed *fed = f->view->fed;
    const struct dns_pre *pre = f->view->pre;
    size_t regions = dns_fed_region_total(fed), fast = 0, full = 0;

    for (size_t i = 0; i < dns_fed_name_total(fed); i++) {
        struct dns_fed_place p;
        size_t len;
        const uint8_t *name = dns_fed_name_wire(fed, i, &len);

        if (dns_fed_find_hashed(fed, name, len, dns_name_hash(name, len), &p) != DNS_FED_NAME)
            continue;
        assert_int_equal(p.name_id, i);
        for (unsigned other = (unsigned)regions; other < 1000; other += 997 - (unsigned)regions)
            assert_ptr_equal(dns_pre_hot(pre, p.service, p.slot, other),
                             dns_pre_hot(pre, p.service, p.slot, dns_fed_default_region(fed)));
        for (unsigned r = 0; r < regions; r++) {
            const struct dns_pre_hot *h = dns_pre_hot(pre, p.service, p.slot, r);
            assert_non_null(h);
            if ((h->flags & DNS_PRE_HOT_FULL) != 0) {
                full++;
                continue;
            }
            fast++;
            for (unsigned k = 0; k < 3; k++) {
                struct dns_fed_answer fa;
                dns_fed_place_answer(fed, &p, types[k], r, 0, &fa);
                assert_null(fa.cname);
                assert_false(fa.subnet_dependent);
                assert_int_equal(h->member, fa.member);
                assert_int_equal((h->flags & DNS_PRE_HOT_FAIL_OPEN) != 0, fa.fail_open);
                assert_int_equal((h->flags & DNS_PRE_HOT_FAIL_CLOSED) != 0, fa.fail_closed);
                assert_int_equal((h->flags & DNS_PRE_HOT_REGION_DEP) != 0, fa.region_dependent);
                assert_int_equal((h->flags & DNS_PRE_HOT_REC(k)) != 0, fa.rrset != NULL);
                if (fa.rrset != NULL)
                    assert_ptr_equal(h->part[k], dns_pre_variant(pre, (size_t)fa.service,
                                                                 fa.variant_id, k == 1));
                else
                    assert_ptr_equal(h->part[k],
                                     dns_pre_nodata(pre, (size_t)fa.service, fa.answer_id));
            }
        }
    }
    print_message("%zu hot records, %zu left to the lookup\n", fast, full);
    assert_true(fast > 0);
    assert_true(full > 0);
    assert_null(dns_pre_hot(pre, -1, 0, 0));
    assert_null(dns_pre_hot(pre, (int)dns_fed_service_count(fed), 0, 0));
    assert_null(dns_pre_hot(pre, 0, (uint32_t)dns_fed_slot_total(fed, 0), 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_differential, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nodata_exactness, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_copy_relocates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hot_records, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
