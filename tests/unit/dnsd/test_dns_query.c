/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_dns_query.c -- query processing, end to end on byte arrays: hand-built
 * queries in, responses decoded with ldns.
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
#include <ldns/ldns.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_lpm.h"
#include "common/cm_state.h"
#include "dnsd/dns_cookie.h"
#include "dnsd/dns_fed.h"
#include "dnsd/dns_query.h"
#include "dnsd/dns_view.h"
#include "dnsd/dns_wire.h"
#include "dnsd/dns_zone.h"

#define ORIGIN "fed.example.test"
#define NOW    1559731985u /* RFC 9018 appendix A.1 */

static const char ZONE[] = "$TTL 300\n"
                           "@ IN SOA ns1 hostmaster 1 7200 900 1209600 60\n"
                           "@ IN NS ns1\n"
                           "@ IN NS ns2\n"
                           "@ IN MX 10 mail\n"
                           "@ IN A 192.0.2.10\n"
                           "ns1 IN A 192.0.2.1\n"
                           "ns2 IN A 192.0.2.2\n"
                           "ns2 IN AAAA 2001:db8::2\n"
                           "mail IN A 192.0.2.25\n"
                           "www IN A 192.0.2.80\n"
                           "alias IN CNAME www\n"
                           "alias2 IN CNAME Alias\n"
                           "out IN CNAME www.example.org.\n"
                           "nxalias IN CNAME missing\n"
                           "loop1 IN CNAME loop2\n"
                           "loop2 IN CNAME LOOP1\n"
                           "a.b.c IN TXT \"deep\"\n"
                           "sub IN NS ns.sub\n"
                           "sub IN NS ns.other.test.\n"
                           "ns.sub IN A 192.0.2.53\n"
                           "*.wild IN A 192.0.2.99\n"
                           "multi IN A 192.0.2.5\n"
                           "multi IN AAAA 2001:db8::5\n"
                           "multi IN TXT \"t\"\n";

struct fixture {
    struct cm_conf conf;
    struct dns_view view;
    uint8_t resp[65535];
    struct dns_query_info info;
    struct sockaddr_in client4;
};

/* ---- packet builder ---- */

struct pkt {
    uint8_t b[2048];
    size_t len;
};

static void p_u8(struct pkt *p, unsigned v)
{
    p->b[p->len++] = (uint8_t)v;
}

static void p_u16(struct pkt *p, unsigned v)
{
    p_u8(p, v >> 8);
    p_u8(p, v & 0xFF);
}

static void p_name(struct pkt *p, const char *dotted)
{
    const char *s = dotted;

    while (*s != '\0') {
        const char *dot = strchr(s, '.');
        size_t l = dot != NULL ? (size_t)(dot - s) : strlen(s);
        p_u8(p, (unsigned)l);
        memcpy(p->b + p->len, s, l);
        p->len += l;
        s += l;
        if (*s == '.')
            s++;
    }
    p_u8(p, 0);
}

static void p_query_full(struct pkt *p, unsigned id, unsigned flags, const char *name,
                         unsigned qtype, unsigned qclass, unsigned arcount)
{
    p->len = 0;
    p_u16(p, id);
    p_u16(p, flags);
    p_u16(p, 1);
    p_u16(p, 0);
    p_u16(p, 0);
    p_u16(p, arcount);
    p_name(p, name);
    p_u16(p, qtype);
    p_u16(p, qclass);
}

static void p_query(struct pkt *p, const char *name, unsigned qtype)
{
    p_query_full(p, 0x4242, 0x0100, name, qtype, DNS_CLASS_IN, 0);
}

/* An OPT with an optional ECS option (family 0 = none). */
static void p_opt(struct pkt *p, unsigned udp, unsigned version, unsigned family, unsigned source,
                  const uint8_t *addr)
{
    size_t addr_len = (source + 7) / 8;

    p_u8(p, 0);
    p_u16(p, DNS_TYPE_OPT);
    p_u16(p, udp);
    p_u8(p, 0);
    p_u8(p, version);
    p_u16(p, 0x8000);
    if (family == 0) {
        p_u16(p, 0);
        return;
    }
    p_u16(p, (unsigned)(8 + addr_len));
    p_u16(p, 8);
    p_u16(p, (unsigned)(4 + addr_len));
    p_u16(p, family);
    p_u8(p, source);
    p_u8(p, 0);
    if (addr_len > 0)
        memcpy(p->b + p->len, addr, addr_len);
    p->len += addr_len;
}

/* ---- fixture ---- */

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char dir[] = "/tmp/test_dns_query.XXXXXX";
    char path[64], err[512];
    static const uint8_t net1[4] = {10, 1, 0, 0};
    static const uint8_t net2[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1};

    assert_non_null(f);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/zone", dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(ZONE, fp);
    fclose(fp);
    int rc = dns_zone_load(path, ORIGIN, &f->view.zone, err, sizeof(err));
    if (rc != CM_OK)
        fail_msg("%s", err);
    unlink(path);
    rmdir(dir);

    f->conf.region_count = 3;
    f->conf.dnsd.ecs = true;
    f->conf.dnsd.max_udp_size = 1232;
    f->conf.dnsd.region = 0;
    f->view.conf = &f->conf;
    dns_view_read_conf(&f->view);
    f->view.default_region = 0;
    f->view.fed = NULL; /* static behaviour only */
    f->view.lpm = cm_lpm_new();
    assert_non_null(f->view.lpm);
    assert_int_equal(cm_lpm_insert(f->view.lpm, AF_INET, net1, 16, 1), CM_OK);
    assert_int_equal(cm_lpm_insert(f->view.lpm, AF_INET6, net2, 48, 2), CM_OK);
    f->client4.sin_family = AF_INET;
    f->client4.sin_port = htons(5353);
    inet_pton(AF_INET, "192.0.2.200", &f->client4.sin_addr);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    dns_zone_unref(f->view.zone);
    cm_lpm_free(f->view.lpm);
    free(f);
    return 0;
}

static size_t run(struct fixture *f, const struct pkt *p, bool tcp)
{
    return dns_query_process(&f->view, p->b, p->len, f->resp, tcp ? 65535 : 4096,
                             (const struct sockaddr *)&f->client4, tcp, &f->info, NOW);
}

static ldns_pkt *ask(struct fixture *f, const struct pkt *p, bool tcp)
{
    size_t n = run(f, p, tcp);
    ldns_pkt *pkt = NULL;

    assert_true(n >= 12);
    assert_int_equal(ldns_wire2pkt(&pkt, f->resp, n), LDNS_STATUS_OK);
    return pkt;
}

static char *rdf_str(const ldns_rdf *rdf)
{
    return ldns_rdf2str(rdf);
}

static void assert_owner(ldns_rr *rr, const char *want)
{
    char *s = rdf_str(ldns_rr_owner(rr));
    assert_string_equal(s, want);
    free(s);
}

static void assert_rdata(ldns_rr *rr, size_t i, const char *want)
{
    char *s = rdf_str(ldns_rr_rdf(rr, i));
    assert_string_equal(s, want);
    free(s);
}

/* ---- tests ---- */

static void test_drop(void **state)
{
    struct fixture *f = *state;
    struct pkt p;

    p_query(&p, "www." ORIGIN, DNS_TYPE_A);
    assert_int_equal(dns_query_process(&f->view, p.b, 11, f->resp, 512, NULL, false, &f->info, NOW),
                     0);
    p.b[2] |= 0x80; /* QR: a response */
    assert_int_equal(run(f, &p, false), 0);
}

static void test_formerr(void **state)
{
    struct fixture *f = *state;
    struct pkt p;

    /* a pointer in the question: no question echoed */
    p_query(&p, "www." ORIGIN, DNS_TYPE_A);
    p.b[12 + 4] = 0xC0;
    p.b[12 + 5] = 12;
    size_t n = run(f, &p, false);
    assert_int_equal(n, 12);
    assert_int_equal(f->resp[0], 0x42);
    assert_int_equal(f->resp[2], 0x81); /* QR, RD */
    assert_int_equal(f->resp[3] & 0x0F, DNS_RCODE_FORMERR);
    assert_int_equal(f->resp[5], 0); /* QDCOUNT */
    assert_int_equal(f->info.rcode, DNS_RCODE_FORMERR);

    /* a bad ECS: question and OPT echoed, without ECS */
    p_query_full(&p, 7, 0, "www." ORIGIN, DNS_TYPE_A, DNS_CLASS_IN, 1);
    p_opt(&p, 4096, 0, 1, 24, (const uint8_t *)"\x0a\x01\x02");
    p.b[p.len - 4] = 25; /* source 25 with 3 address bytes */
    ldns_pkt *r = ask(f, &p, false);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_FORMERR);
    assert_int_equal(ldns_pkt_qdcount(r), 1);
    assert_true(ldns_pkt_edns(r));
    assert_int_equal(ldns_pkt_edns_udp_size(r), 1232);
    assert_int_equal(ldns_pkt_ancount(r), 0);
    ldns_pkt_free(r);

    /* qtype OPT */
    p_query(&p, "www." ORIGIN, DNS_TYPE_OPT);
    r = ask(f, &p, false);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_FORMERR);
    ldns_pkt_free(r);
}

static void test_notimp_badvers(void **state)
{
    struct fixture *f = *state;
    struct pkt p;

    p_query_full(&p, 9, 0x1000, "www." ORIGIN, DNS_TYPE_A, DNS_CLASS_IN, 0); /* opcode 2 */
    ldns_pkt *r = ask(f, &p, false);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NOTIMPL);
    assert_int_equal(ldns_pkt_get_opcode(r), 2);
    assert_int_equal(ldns_pkt_ancount(r), 0);
    ldns_pkt_free(r);

    /* bug notimp_flags: opcode 15 with RD, CD, AD and RA set: the reply keeps
     * ID, QR and the opcode only (those bits are defined for QUERY) */
    p_query_full(&p, 0xBEEF, 0x7800 | 0x0100 | 0x0080 | 0x0020 | 0x0010, "www." ORIGIN, DNS_TYPE_A,
                 DNS_CLASS_IN, 0);
    assert_true(run(f, &p, false) >= 12);
    assert_int_equal(f->resp[0], 0xBE);
    assert_int_equal(f->resp[1], 0xEF);
    assert_int_equal(f->resp[2], 0x80 | 0x78);      /* QR, opcode 15; no AA, TC, RD */
    assert_int_equal(f->resp[3], DNS_RCODE_NOTIMP); /* no RA, Z, AD, CD */
    /* RD alone, opcode NOTIFY (4) */
    p_query_full(&p, 1, 0x2000 | 0x0100, "www." ORIGIN, DNS_TYPE_SOA, DNS_CLASS_IN, 0);
    assert_true(run(f, &p, false) >= 12);
    assert_int_equal(f->resp[2], 0x80 | 0x20);
    assert_int_equal(f->resp[3], DNS_RCODE_NOTIMP);
    /* a QUERY keeps RD and CD (RFC 1035 §4.1.1, RFC 4035 §3.2.2) */
    p_query_full(&p, 1, 0x0100 | 0x0010, "www." ORIGIN, DNS_TYPE_A, DNS_CLASS_IN, 0);
    assert_true(run(f, &p, false) >= 12);
    assert_int_equal(f->resp[2], 0x80 | 0x04 | 0x01); /* QR, AA, RD */
    assert_int_equal(f->resp[3] & 0xF0, 0x10);        /* CD, no RA */

    p_query_full(&p, 9, 0, "www." ORIGIN, DNS_TYPE_A, DNS_CLASS_IN, 1);
    p_opt(&p, 4096, 1, 0, 0, NULL);
    r = ask(f, &p, false);
    assert_int_equal(ldns_pkt_get_rcode(r), 0);
    assert_true(ldns_pkt_edns(r));
    assert_int_equal(ldns_pkt_edns_extended_rcode(r), 1); /* 16 >> 4 */
    assert_int_equal(ldns_pkt_edns_version(r), 0);
    assert_int_equal(ldns_pkt_ancount(r), 0);
    assert_int_equal(f->info.rcode, DNS_RCODE_BADVERS);
    ldns_pkt_free(r);
}

static void test_refused(void **state)
{
    struct fixture *f = *state;
    struct pkt p;
    const char *names[] = {"www.example.org", "example.test", "xfed.example.test"};

    p_query_full(&p, 1, 0, "www." ORIGIN, DNS_TYPE_TXT, DNS_CLASS_CH, 0);
    ldns_pkt *r = ask(f, &p, false);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_REFUSED);
    assert_false(ldns_pkt_aa(r));
    ldns_pkt_free(r);

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        p_query(&p, names[i], DNS_TYPE_A);
        r = ask(f, &p, false);
        assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_REFUSED);
        assert_false(ldns_pkt_aa(r));
        assert_int_equal(ldns_pkt_ancount(r), 0);
        assert_int_equal(ldns_pkt_nscount(r), 0);
        ldns_pkt_free(r);
    }
    p_query(&p, ORIGIN, DNS_TYPE_AXFR);
    r = ask(f, &p, true);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_REFUSED);
    ldns_pkt_free(r);
    p_query(&p, ORIGIN, DNS_TYPE_IXFR);
    r = ask(f, &p, false);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_REFUSED);
    ldns_pkt_free(r);
}

static void test_answer_and_case(void **state)
{
    struct fixture *f = *state;
    struct pkt p;

    p_query_full(&p, 0xABCD, 0x0110, "WwW.Fed.Example.TEST", DNS_TYPE_A, DNS_CLASS_IN, 0);
    size_t n = run(f, &p, false);
    /* question echoed byte for byte, owner is a pointer to it */
    assert_memory_equal(f->resp + 12, p.b + 12, p.len - 12);
    assert_int_equal(f->resp[p.len], 0xC0);
    assert_int_equal(f->resp[p.len + 1], 12);
    ldns_pkt *r = NULL;
    assert_int_equal(ldns_wire2pkt(&r, f->resp, n), LDNS_STATUS_OK);
    assert_int_equal(ldns_pkt_id(r), 0xABCD);
    assert_true(ldns_pkt_qr(r));
    assert_true(ldns_pkt_aa(r));
    assert_true(ldns_pkt_rd(r));
    assert_true(ldns_pkt_cd(r));
    assert_false(ldns_pkt_ra(r));
    assert_false(ldns_pkt_tc(r));
    assert_false(ldns_pkt_edns(r));
    assert_int_equal(ldns_pkt_get_rcode(r), 0);
    assert_int_equal(ldns_pkt_ancount(r), 1);
    ldns_rr *a = ldns_rr_list_rr(ldns_pkt_answer(r), 0);
    assert_owner(a, "WwW.Fed.Example.TEST.");
    assert_rdata(a, 0, "192.0.2.80");
    assert_int_equal(ldns_rr_ttl(a), 300);
    assert_int_equal(f->info.qtype, DNS_TYPE_A);
    assert_int_equal(f->info.rcode, 0);
    assert_false(f->info.federated);
    assert_int_equal(f->info.service, -1);
    ldns_pkt_free(r);
}

static void test_negative(void **state)
{
    struct fixture *f = *state;
    struct pkt p;
    struct {
        const char *name;
        uint16_t qtype;
        ldns_pkt_rcode rcode;
    } cases[] = {
        {"nope." ORIGIN, DNS_TYPE_A, LDNS_RCODE_NXDOMAIN},
        {"x.www." ORIGIN, DNS_TYPE_A, LDNS_RCODE_NXDOMAIN},
        {"www." ORIGIN, DNS_TYPE_AAAA, LDNS_RCODE_NOERROR},
        {"b.c." ORIGIN, DNS_TYPE_A, LDNS_RCODE_NOERROR}, /* empty non-terminal (RFC 8020) */
        {"c." ORIGIN, DNS_TYPE_ANY, LDNS_RCODE_NOERROR},
        {ORIGIN, DNS_TYPE_TXT, LDNS_RCODE_NOERROR},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        p_query(&p, cases[i].name, cases[i].qtype);
        ldns_pkt *r = ask(f, &p, false);
        assert_int_equal(ldns_pkt_get_rcode(r), cases[i].rcode);
        assert_true(ldns_pkt_aa(r));
        assert_int_equal(ldns_pkt_ancount(r), 0);
        assert_int_equal(ldns_pkt_nscount(r), 1);
        ldns_rr *soa = ldns_rr_list_rr(ldns_pkt_authority(r), 0);
        assert_int_equal(ldns_rr_get_type(soa), LDNS_RR_TYPE_SOA);
        assert_owner(soa, "fed.example.test.");
        assert_int_equal(ldns_rr_ttl(soa), 60); /* min(SOA TTL, MINIMUM), RFC 2308 */
        ldns_pkt_free(r);
    }
}

static void test_cname(void **state)
{
    struct fixture *f = *state;
    struct pkt p;

    p_query(&p, "alias2." ORIGIN, DNS_TYPE_A);
    ldns_pkt *r = ask(f, &p, false);
    assert_int_equal(ldns_pkt_get_rcode(r), 0);
    assert_true(ldns_pkt_aa(r));
    assert_int_equal(ldns_pkt_ancount(r), 3);
    ldns_rr_list *an = ldns_pkt_answer(r);
    assert_owner(ldns_rr_list_rr(an, 0), "alias2.fed.example.test.");
    assert_rdata(ldns_rr_list_rr(an, 0), 0, "Alias.fed.example.test.");
    assert_owner(ldns_rr_list_rr(an, 1), "Alias.fed.example.test.");
    assert_rdata(ldns_rr_list_rr(an, 1), 0, "www.fed.example.test.");
    assert_owner(ldns_rr_list_rr(an, 2), "www.fed.example.test.");
    assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(an, 2)), LDNS_RR_TYPE_A);
    ldns_pkt_free(r);

    /* qtype CNAME: not chased */
    p_query(&p, "alias2." ORIGIN, DNS_TYPE_CNAME);
    r = ask(f, &p, false);
    assert_int_equal(ldns_pkt_ancount(r), 1);
    ldns_pkt_free(r);

    /* target outside the zone: the CNAME alone */
    p_query(&p, "out." ORIGIN, DNS_TYPE_A);
    r = ask(f, &p, false);
    assert_int_equal(ldns_pkt_get_rcode(r), 0);
    assert_int_equal(ldns_pkt_ancount(r), 1);
    assert_int_equal(ldns_pkt_nscount(r), 0);
    ldns_pkt_free(r);

    /* target missing: NXDOMAIN for the last name (RFC 6604), CNAME kept */
    p_query(&p, "nxalias." ORIGIN, DNS_TYPE_A);
    r = ask(f, &p, false);
    assert_int_equal(ldns_pkt_get_rcode(r), LDNS_RCODE_NXDOMAIN);
    assert_int_equal(ldns_pkt_ancount(r), 1);
    assert_int_equal(ldns_pkt_nscount(r), 1);
    ldns_pkt_free(r);

    /* a loop: each CNAME once, then stop */
    p_query(&p, "loop1." ORIGIN, DNS_TYPE_A);
    r = ask(f, &p, false);
    assert_int_equal(ldns_pkt_get_rcode(r), 0);
    assert_int_equal(ldns_pkt_ancount(r), 2);
    ldns_pkt_free(r);
}

static void test_cname_chain_limit(void **state)
{
    struct fixture *f = *state;
    char text[4096], dir[] = "/tmp/test_dns_query.XXXXXX", path[64], err[256];
    size_t n = 0;
    struct pkt p;

    n += (size_t)snprintf(text + n, sizeof(text) - n,
                          "@ 300 IN SOA ns1 h 1 2 3 4 60\n@ 300 IN NS ns1\n");
    for (int i = 0; i < 12; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "c%d 300 IN CNAME c%d\n", i, i + 1);
    n += (size_t)snprintf(text + n, sizeof(text) - n, "c12 300 IN A 192.0.2.12\n");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/zone", dir);
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
    struct dns_zone *z = NULL, *saved = f->view.zone;
    assert_int_equal(dns_zone_load(path, ORIGIN, &z, err, sizeof(err)), CM_OK);
    unlink(path);
    rmdir(dir);
    f->view.zone = z;

    p_query(&p, "c4." ORIGIN, DNS_TYPE_A); /* 8 CNAMEs then the A */
    ldns_pkt *r = ask(f, &p, false);
    assert_int_equal(ldns_pkt_ancount(r), 9);
    assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_answer(r), 8)), LDNS_RR_TYPE_A);
    ldns_pkt_free(r);
    p_query(&p, "c0." ORIGIN, DNS_TYPE_A); /* too long: stops after following 8 */
    r = ask(f, &p, false);
    assert_int_equal(ldns_pkt_get_rcode(r), 0);
    assert_int_equal(ldns_pkt_ancount(r), 9);
    assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_answer(r), 8)), LDNS_RR_TYPE_CNAME);
    ldns_pkt_free(r);

    f->view.zone = saved;
    dns_zone_unref(z);
}

static void test_referral(void **state)
{
    struct fixture *f = *state;
    struct pkt p;
    const char *names[] = {"sub." ORIGIN, "www.sub." ORIGIN, "a.b.sub." ORIGIN};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        p_query(&p, names[i], DNS_TYPE_A);
        ldns_pkt *r = ask(f, &p, false);
        assert_int_equal(ldns_pkt_get_rcode(r), 0);
        assert_false(ldns_pkt_aa(r));
        assert_int_equal(ldns_pkt_ancount(r), 0);
        assert_int_equal(ldns_pkt_nscount(r), 2);
        ldns_rr *ns = ldns_rr_list_rr(ldns_pkt_authority(r), 0);
        assert_int_equal(ldns_rr_get_type(ns), LDNS_RR_TYPE_NS);
        assert_owner(ns, "sub.fed.example.test.");
        assert_int_equal(ldns_pkt_arcount(r), 1); /* glue for ns.sub only */
        ldns_rr *glue = ldns_rr_list_rr(ldns_pkt_additional(r), 0);
        assert_owner(glue, "ns.sub.fed.example.test.");
        assert_rdata(glue, 0, "192.0.2.53");
        ldns_pkt_free(r);
    }
    /* DS at the cut is the parent's: authoritative NODATA */
    p_query(&p, "sub." ORIGIN, DNS_TYPE_DS);
    ldns_pkt *r = ask(f, &p, false);
    assert_true(ldns_pkt_aa(r));
    assert_int_equal(ldns_pkt_ancount(r), 0);
    assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_authority(r), 0)), LDNS_RR_TYPE_SOA);
    ldns_pkt_free(r);
}

static void test_additional(void **state)
{
    struct fixture *f = *state;
    struct pkt p;

    p_query(&p, ORIGIN, DNS_TYPE_MX);
    ldns_pkt *r = ask(f, &p, false);
    assert_int_equal(ldns_pkt_ancount(r), 1);
    assert_int_equal(ldns_pkt_arcount(r), 1);
    assert_owner(ldns_rr_list_rr(ldns_pkt_additional(r), 0), "mail.fed.example.test.");
    ldns_pkt_free(r);

    p_query(&p, ORIGIN, DNS_TYPE_NS);
    r = ask(f, &p, false);
    assert_true(ldns_pkt_aa(r));
    assert_int_equal(ldns_pkt_ancount(r), 2);
    assert_int_equal(ldns_pkt_arcount(r), 3); /* ns1 A, ns2 A, ns2 AAAA */
    ldns_pkt_free(r);
}

static void test_any_and_wildcard(void **state)
{
    struct fixture *f = *state;
    struct pkt p;

    p_query(&p, "multi." ORIGIN, DNS_TYPE_ANY);
    ldns_pkt *r = ask(f, &p, false);
    assert_int_equal(ldns_pkt_ancount(r), 1); /* RFC 8482: one RRset */
    assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_answer(r), 0)), LDNS_RR_TYPE_A);
    ldns_pkt_free(r);

    p_query(&p, "alias." ORIGIN, DNS_TYPE_ANY); /* the CNAME, not chased */
    r = ask(f, &p, false);
    assert_int_equal(ldns_pkt_ancount(r), 1);
    assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_answer(r), 0)), LDNS_RR_TYPE_CNAME);
    ldns_pkt_free(r);

    p_query(&p, "Host.Wild." ORIGIN, DNS_TYPE_A);
    r = ask(f, &p, false);
    assert_int_equal(ldns_pkt_ancount(r), 1);
    assert_owner(ldns_rr_list_rr(ldns_pkt_answer(r), 0), "Host.Wild.fed.example.test.");
    assert_rdata(ldns_rr_list_rr(ldns_pkt_answer(r), 0), 0, "192.0.2.99");
    ldns_pkt_free(r);
}

static void test_truncation(void **state)
{
    struct fixture *f = *state;
    char text[8192], dir[] = "/tmp/test_dns_query.XXXXXX", path[64], err[256];
    size_t n = 0;
    struct pkt p;
    char chunk[201];

    memset(chunk, 'x', 200);
    chunk[200] = '\0';
    n += (size_t)snprintf(text + n, sizeof(text) - n,
                          "@ 300 IN SOA ns1 h 1 2 3 4 60\n@ 300 IN NS ns1\n");
    for (int i = 0; i < 7; i++) /* 7 x ~215 bytes: > 1232, < 4096 */
        n += (size_t)snprintf(text + n, sizeof(text) - n, "big 300 IN TXT \"%d%s\"\n", i, chunk);
    for (int i = 0; i < 4; i++) /* 4 x ~215 bytes: > 512, < 1232 */
        n += (size_t)snprintf(text + n, sizeof(text) - n, "mid 300 IN TXT \"%d%s\"\n", i, chunk);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/zone", dir);
    FILE *fp = fopen(path, "w");
    fputs(text, fp);
    fclose(fp);
    struct dns_zone *z = NULL, *saved = f->view.zone;
    assert_int_equal(dns_zone_load(path, ORIGIN, &z, err, sizeof(err)), CM_OK);
    unlink(path);
    rmdir(dir);
    f->view.zone = z;

    /* no EDNS: 512 */
    p_query(&p, "mid." ORIGIN, DNS_TYPE_TXT);
    size_t len = run(f, &p, false);
    assert_true(len <= 512);
    ldns_pkt *r = ask(f, &p, false);
    assert_true(ldns_pkt_tc(r));
    assert_true(f->info.tc);
    assert_int_equal(ldns_pkt_qdcount(r), 1);
    assert_int_equal(ldns_pkt_ancount(r), 0);
    assert_int_equal(ldns_pkt_nscount(r), 0);
    ldns_pkt_free(r);

    /* EDNS 4096, but dnsd.max_udp_size 1232: mid fits, big does not */
    p_query_full(&p, 1, 0, "mid." ORIGIN, DNS_TYPE_TXT, DNS_CLASS_IN, 1);
    p_opt(&p, 4096, 0, 0, 0, NULL);
    r = ask(f, &p, false);
    assert_false(ldns_pkt_tc(r));
    assert_int_equal(ldns_pkt_ancount(r), 4);
    ldns_pkt_free(r);
    p_query_full(&p, 1, 0, "big." ORIGIN, DNS_TYPE_TXT, DNS_CLASS_IN, 1);
    p_opt(&p, 4096, 0, 0, 0, NULL);
    len = run(f, &p, false);
    assert_true(len <= 1232);
    r = ask(f, &p, false);
    assert_true(ldns_pkt_tc(r));
    assert_true(ldns_pkt_edns(r)); /* OPT kept */
    assert_int_equal(ldns_pkt_ancount(r), 0);
    ldns_pkt_free(r);
    /* a client size below 512 means 512 */
    p_query_full(&p, 1, 0, "mid." ORIGIN, DNS_TYPE_TXT, DNS_CLASS_IN, 1);
    p_opt(&p, 100, 0, 0, 0, NULL);
    r = ask(f, &p, false);
    assert_true(ldns_pkt_tc(r));
    ldns_pkt_free(r);
    /* ANY over UDP answers one RRset, so the big node does not truncate */
    p_query(&p, "big." ORIGIN, DNS_TYPE_ANY);
    r = ask(f, &p, false);
    assert_true(ldns_pkt_tc(r)); /* the TXT RRset alone is still too big for 512 */
    ldns_pkt_free(r);
    /* TCP: everything */
    p_query(&p, "big." ORIGIN, DNS_TYPE_TXT);
    r = ask(f, &p, true);
    assert_false(ldns_pkt_tc(r));
    assert_int_equal(ldns_pkt_ancount(r), 7);
    ldns_pkt_free(r);

    f->view.zone = saved;
    dns_zone_unref(z);
}

static void test_ecs_echo(void **state)
{
    struct fixture *f = *state;
    struct pkt p;
    static const uint8_t ecs_addr[3] = {10, 1, 2};

    p_query_full(&p, 1, 0, "www." ORIGIN, DNS_TYPE_A, DNS_CLASS_IN, 1);
    p_opt(&p, 4096, 0, 1, 24, ecs_addr);
    size_t n = run(f, &p, false);
    /* the response ends with the ECS option: family 1, source 24, scope 0, 10.1.2 */
    const uint8_t tail[] = {0, 8, 0, 7, 0, 1, 24, 0, 10, 1, 2};
    assert_memory_equal(f->resp + n - sizeof(tail), tail, sizeof(tail));
    assert_true(f->info.ecs);
    assert_int_equal(f->info.region, 1);
    ldns_pkt *r = ask(f, &p, false);
    assert_int_equal(ldns_pkt_ancount(r), 1);
    assert_true(ldns_pkt_edns_do(r));
    ldns_pkt_free(r);

    /* ECS disabled: echoed with scope 0, location from the source address */
    f->conf.dnsd.ecs = false;
    dns_view_read_conf(&f->view);
    n = run(f, &p, false);
    assert_memory_equal(f->resp + n - sizeof(tail), tail, sizeof(tail));
    assert_false(f->info.ecs);
    assert_int_equal(f->info.region, 0);
    f->conf.dnsd.ecs = true;
    dns_view_read_conf(&f->view);

    /* source prefix 0: not used for location */
    p_query_full(&p, 1, 0, "www." ORIGIN, DNS_TYPE_A, DNS_CLASS_IN, 1);
    p_opt(&p, 4096, 0, 1, 0, NULL);
    n = run(f, &p, false);
    const uint8_t tail0[] = {0, 8, 0, 4, 0, 1, 0, 0};
    assert_memory_equal(f->resp + n - sizeof(tail0), tail0, sizeof(tail0));
    assert_false(f->info.ecs);

    /* source address in client_networks */
    inet_pton(AF_INET, "10.1.200.1", &f->client4.sin_addr);
    p_query(&p, "www." ORIGIN, DNS_TYPE_A);
    run(f, &p, false);
    assert_int_equal(f->info.region, 1);
    inet_pton(AF_INET, "192.0.2.200", &f->client4.sin_addr);
}

static void test_locate(void **state)
{
    struct fixture *f = *state;
    struct dns_client_loc loc, loc2;
    uint8_t a[16];

    inet_pton(AF_INET, "10.1.2.0", a);
    dns_query_locate(&f->view, AF_INET, a, 24, true, &loc);
    assert_int_equal(loc.region, 1);
    assert_string_equal(loc.how, "ecs client_networks");
    assert_true(loc.scope_len >= 24);

    inet_pton(AF_INET, "10.1.2.77", a);
    dns_query_locate(&f->view, AF_INET, a, 32, false, &loc2);
    assert_int_equal(loc2.region, 1);
    assert_string_equal(loc2.how, "source address client_networks");
    assert_int_equal(loc2.client_hash, loc.client_hash); /* same /24 */
    inet_pton(AF_INET, "10.1.2.200", a);                 /* the host byte's top bit set */
    dns_query_locate(&f->view, AF_INET, a, 32, false, &loc2);
    assert_int_equal(loc2.client_hash, loc.client_hash);
    inet_pton(AF_INET, "10.1.3.77", a);
    dns_query_locate(&f->view, AF_INET, a, 32, false, &loc2);
    assert_int_not_equal(loc2.client_hash, loc.client_hash);

    /* a /12 ECS prefix cannot tell 10.1/16: not found, default; hash over 12 bits */
    inet_pton(AF_INET, "10.0.0.0", a);
    dns_query_locate(&f->view, AF_INET, a, 12, true, &loc);
    assert_int_equal(loc.region, 0);
    assert_string_equal(loc.how, "dnsd.region default");
    assert_true(loc.scope_len >= 12);

    inet_pton(AF_INET6, "2001:db8:1:2::1", a);
    dns_query_locate(&f->view, AF_INET6, a, 128, false, &loc);
    assert_int_equal(loc.region, 2);
    assert_true(loc.scope_len >= 56);
    inet_pton(AF_INET6, "2001:db8:1:2:ffff::1", a);
    dns_query_locate(&f->view, AF_INET6, a, 128, false, &loc2);
    assert_int_equal(loc2.client_hash, loc.client_hash); /* same /56 */
    inet_pton(AF_INET6, "2001:db8:1:ff::1", a);          /* differs in the 8th byte only */
    dns_query_locate(&f->view, AF_INET6, a, 128, false, &loc2);
    assert_int_equal(loc2.client_hash, loc.client_hash);
    inet_pton(AF_INET6, "2001:db8:1:102::1", a); /* differs in the 7th byte */
    dns_query_locate(&f->view, AF_INET6, a, 128, false, &loc2);
    assert_int_not_equal(loc2.client_hash, loc.client_hash);
    inet_pton(AF_INET6, "2001:db8:2::1", a);
    dns_query_locate(&f->view, AF_INET6, a, 128, false, &loc);
    assert_int_equal(loc.region, 0);

    /* an IPv4-mapped source address is located as IPv4 */
    struct sockaddr_in6 s6;
    struct pkt p;
    memset(&s6, 0, sizeof(s6));
    s6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::ffff:10.1.9.9", &s6.sin6_addr);
    p_query(&p, "www." ORIGIN, DNS_TYPE_A);
    assert_true(dns_query_process(&f->view, p.b, p.len, f->resp, 512, (const struct sockaddr *)&s6,
                                  false, &f->info, NOW) > 0);
    assert_int_equal(f->info.region, 1);
}

/* A view built by dns_view_new with the federated table, when the config loads. */
static const char FED_CONF[] =
    "{\"federation\": \"myfed\", \"zone\": \"fed.example.test\","
    " \"regions\": {\"us-east-1\": {\"zones\": [\"us-east-1a\"]},"
    "              \"eu-west-1\": {\"zones\": [\"eu-west-1a\"]}},"
    " \"members\": {\"usa\": {\"region\": \"us-east-1\", \"zone\": \"us-east-1a\","
    "                         \"lb\": {\"mode\": \"proxy\", \"address\": \"198.51.100.1\"}},"
    "               \"eur\": {\"region\": \"eu-west-1\", \"zone\": \"eu-west-1a\","
    "                         \"lb\": {\"mode\": \"proxy\", \"address\": \"198.51.100.2\"}}},"
    " \"services\": {\"default/web\": {\"port\": 80}},"
    " \"client_networks\": [{\"cidr\": \"10.1.0.0/16\", \"region\": \"us-east-1\"},"
    "                       {\"cidr\": \"10.2.0.0/16\", \"region\": \"eu-west-1\"}],"
    " \"latency_ms\": {\"us-east-1\": {\"eu-west-1\": 70}},"
    " \"dnsd\": {\"listen\": [\"127.0.0.1:5300\"], \"region\": \"us-east-1\","
    "          \"zone_file\": \"unused.zone\"}}";

/* usa healthy, eur down: eu-west-1's regional name becomes a CNAME to the global one. */
static const char FED_STATE[] =
    "{\"version\": 1, \"vantage\": \"us-east-1\", \"generation\": 1,"
    " \"generated_at\": \"2026-11-21T07:00:00Z\","
    " \"members\": {\"usa\": {\"region\": \"us-east-1\", \"api\": \"ok\"},"
    "               \"eur\": {\"region\": \"eu-west-1\", \"api\": \"ok\"}},"
    " \"services\": {\"default/web\": {\"port\": 80, \"members\": {"
    "   \"usa\": {\"addresses\": [\"192.0.2.10\"], \"ready_endpoints\": 2, \"healthy\": true},"
    "   \"eur\": {\"addresses\": [\"192.0.2.20\"], \"ready_endpoints\": 0,"
    "           \"healthy\": false}}}}}";

static void test_federated(void **state)
{
    struct fixture *f = *state;
    struct cm_conf *conf = NULL;
    struct cm_state *st = NULL;
    struct cm_merged *merged = NULL;
    struct dns_view *view = NULL;
    char err[512];
    struct pkt p;
    static const uint8_t eu[3] = {10, 2, 3};

    if (cm_conf_load_string("test.json", FED_CONF, &conf, err, sizeof(err)) != CM_OK)
        fail_msg("conf: %s", err);
    if (cm_state_parse(FED_STATE, strlen(FED_STATE), NULL, &st, err, sizeof(err)) != CM_OK)
        fail_msg("state: %s", err);
    const struct cm_state *docs[] = {st};
    assert_int_equal(cm_merged_build(docs, 1, conf, &merged), CM_OK);
    if (dns_view_new(conf, f->view.zone, merged, NULL, 1, &view, err, sizeof(err)) != CM_OK)
        fail_msg("view: %s", err);

    /* global name, client in eu-west-1 by ECS */
    p_query_full(&p, 1, 0, "Web.Default.myfed.svc." ORIGIN, DNS_TYPE_A, DNS_CLASS_IN, 1);
    p_opt(&p, 1232, 0, 1, 24, eu);
    size_t n = dns_query_process(view, p.b, p.len, f->resp, 4096,
                                 (const struct sockaddr *)&f->client4, false, &f->info, NOW);
    ldns_pkt *r = NULL;
    assert_int_equal(ldns_wire2pkt(&r, f->resp, n), LDNS_STATUS_OK);
    assert_int_equal(ldns_pkt_get_rcode(r), 0);
    assert_true(ldns_pkt_aa(r));
    assert_true(f->info.federated);
    assert_true(f->info.ecs);
    assert_int_equal(f->info.service, 0);
    assert_true(ldns_pkt_ancount(r) >= 1);
    ldns_rr *a = ldns_rr_list_rr(ldns_pkt_answer(r), 0);
    assert_owner(a, "Web.Default.myfed.svc.fed.example.test.");
    assert_int_equal(ldns_rr_get_type(a), LDNS_RR_TYPE_A);
    assert_rdata(a, 0, "192.0.2.10");
    /* ECS echoed: family 1, source 24 */
    const uint8_t ecs_head[] = {0, 8, 0, 7, 0, 1, 24};
    assert_memory_equal(f->resp + n - 11, ecs_head, sizeof(ecs_head));
    ldns_pkt_free(r);

    /* an empty non-terminal above the federated names: NODATA */
    p_query(&p, "myfed.svc." ORIGIN, DNS_TYPE_A);
    n = dns_query_process(view, p.b, p.len, f->resp, 4096, NULL, false, &f->info, NOW);
    assert_int_equal(ldns_wire2pkt(&r, f->resp, n), LDNS_STATUS_OK);
    assert_int_equal(ldns_pkt_get_rcode(r), 0);
    assert_int_equal(ldns_pkt_ancount(r), 0);
    assert_int_equal(ldns_pkt_nscount(r), 1);
    ldns_pkt_free(r);

    /* static names still answer from the zone */
    p_query(&p, "www." ORIGIN, DNS_TYPE_A);
    n = dns_query_process(view, p.b, p.len, f->resp, 4096, NULL, false, &f->info, NOW);
    assert_int_equal(ldns_wire2pkt(&r, f->resp, n), LDNS_STATUS_OK);
    assert_int_equal(ldns_pkt_ancount(r), 1);
    assert_false(f->info.federated);
    ldns_pkt_free(r);

    /* the regional name of a region with nothing healthy: a CNAME to the
     * global name, chased to its addresses */
    p_query(&p, "web.default.myfed.svc.eu-west-1." ORIGIN, DNS_TYPE_A);
    n = dns_query_process(view, p.b, p.len, f->resp, 4096, NULL, false, &f->info, NOW);
    assert_int_equal(ldns_wire2pkt(&r, f->resp, n), LDNS_STATUS_OK);
    assert_int_equal(ldns_pkt_get_rcode(r), 0);
    assert_true(ldns_pkt_aa(r));
    assert_int_equal(ldns_pkt_ancount(r), 2);
    ldns_rr_list *an = ldns_pkt_answer(r);
    assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(an, 0)), LDNS_RR_TYPE_CNAME);
    assert_rdata(ldns_rr_list_rr(an, 0), 0, "web.default.myfed.svc.fed.example.test.");
    assert_owner(ldns_rr_list_rr(an, 1), "web.default.myfed.svc.fed.example.test.");
    assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(an, 1)), LDNS_RR_TYPE_A);
    assert_rdata(ldns_rr_list_rr(an, 1), 0, "192.0.2.10");
    ldns_pkt_free(r);

    /* ANY on a federated name answers as A, the CNAME chased too */
    p_query(&p, "web.default.myfed.svc.eu-west-1." ORIGIN, DNS_TYPE_ANY);
    n = dns_query_process(view, p.b, p.len, f->resp, 4096, NULL, false, &f->info, NOW);
    assert_int_equal(ldns_wire2pkt(&r, f->resp, n), LDNS_STATUS_OK);
    assert_int_equal(ldns_pkt_ancount(r), 2);
    an = ldns_pkt_answer(r);
    assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(an, 1)), LDNS_RR_TYPE_A);
    ldns_pkt_free(r);

    /* AAAA with only IPv4 members: NODATA with the SOA */
    p_query(&p, "web.default.myfed.svc." ORIGIN, DNS_TYPE_AAAA);
    n = dns_query_process(view, p.b, p.len, f->resp, 4096, NULL, false, &f->info, NOW);
    assert_int_equal(ldns_wire2pkt(&r, f->resp, n), LDNS_STATUS_OK);
    assert_int_equal(ldns_pkt_get_rcode(r), 0);
    assert_true(ldns_pkt_aa(r));
    assert_int_equal(ldns_pkt_ancount(r), 0);
    assert_int_equal(ldns_pkt_nscount(r), 1);
    assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_authority(r), 0)), LDNS_RR_TYPE_SOA);
    ldns_pkt_free(r);

    dns_view_unref(view);
    cm_merged_free(merged);
    cm_state_free(st);
    cm_conf_unref(conf);
}

/*
 * ECS scope (bug: ecs_short_source): three regions, a member healthy in each,
 * nested client_networks. The scope must be the bits that decide the region,
 * longer than the source prefix when the source covers networks of other
 * regions (and then the answer is the covering region, never one guessed
 * from the zero bits); 0 for answers that do not depend on the client.
 */
static const char SCOPE_CONF[] =
    "{\"federation\": \"myfed\", \"zone\": \"fed.example.test\","
    " \"regions\": {\"us-east-1\": {\"zones\": [\"us-east-1a\"]},"
    "              \"eu-west-1\": {\"zones\": [\"eu-west-1a\"]},"
    "              \"ap-northeast-1\": {\"zones\": [\"ap-northeast-1a\"]}},"
    " \"members\": {\"usa\": {\"region\": \"us-east-1\", \"zone\": \"us-east-1a\","
    "                         \"lb\": {\"mode\": \"proxy\", \"address\": \"198.51.100.1\"}},"
    "               \"eur\": {\"region\": \"eu-west-1\", \"zone\": \"eu-west-1a\","
    "                         \"lb\": {\"mode\": \"proxy\", \"address\": \"198.51.100.2\"}},"
    "               \"jpn\": {\"region\": \"ap-northeast-1\", \"zone\": \"ap-northeast-1a\","
    "                         \"lb\": {\"mode\": \"proxy\", \"address\": \"198.51.100.3\"}}},"
    " \"services\": {\"default/web\": {\"port\": 80}},"
    " \"client_networks\": [{\"cidr\": \"10.1.0.0/16\", \"region\": \"us-east-1\"},"
    "                       {\"cidr\": \"10.3.0.0/16\", \"region\": \"eu-west-1\"},"
    "                       {\"cidr\": \"10.3.128.0/24\", \"region\": \"ap-northeast-1\"},"
    "                       {\"cidr\": \"172.16.0.0/12\", \"region\": \"eu-west-1\"},"
    "                       {\"cidr\": \"172.16.5.0/24\", \"region\": \"ap-northeast-1\"},"
    "                       {\"cidr\": \"2001:db8:1::/48\", \"region\": \"us-east-1\"},"
    "                       {\"cidr\": \"2001:db8:3::/48\", \"region\": \"eu-west-1\"}],"
    " \"latency_ms\": {\"us-east-1\": {\"eu-west-1\": 70, \"ap-northeast-1\": 150},"
    "                  \"eu-west-1\": {\"ap-northeast-1\": 220}},"
    " \"dnsd\": {\"listen\": [\"127.0.0.1:5300\"], \"region\": \"us-east-1\","
    "          \"zone_file\": \"unused.zone\"}}";

static const char SCOPE_STATE[] =
    "{\"version\": 1, \"vantage\": \"us-east-1\", \"generation\": 1,"
    " \"generated_at\": \"2026-11-21T07:00:00Z\","
    " \"members\": {\"usa\": {\"region\": \"us-east-1\", \"api\": \"ok\"},"
    "               \"eur\": {\"region\": \"eu-west-1\", \"api\": \"ok\"},"
    "               \"jpn\": {\"region\": \"ap-northeast-1\", \"api\": \"ok\"}},"
    " \"services\": {\"default/web\": {\"port\": 80, \"members\": {"
    "   \"usa\": {\"addresses\": [\"192.0.2.10\"], \"ready_endpoints\": 2, \"healthy\": true},"
    "   \"eur\": {\"addresses\": [\"192.0.2.20\"], \"ready_endpoints\": 2, \"healthy\": true},"
    "   \"jpn\": {\"addresses\": [\"192.0.2.30\"], \"ready_endpoints\": 2, \"healthy\": true}}}}}";

#define US "192.0.2.10"
#define EU "192.0.2.20"
#define AP "192.0.2.30"

struct scope_case {
    const char *prefix; /* ECS address */
    unsigned source;    /* SOURCE PREFIX-LENGTH */
    const char *answer; /* the member's address */
    unsigned scope;     /* SCOPE PREFIX-LENGTH echoed */
    const char *why;
};

static const struct scope_case scope_cases[] = {
    /* source longer than the network: the network's length */
    {"10.1.2.0", 24, US, 16, "longer than 10.1/16"},
    {"10.1.0.0", 16, US, 16, "equal to 10.1/16"},
    /* the bug: a /8 covering 10.1/16 (us), 10.3/16 (eu), 10.3.128/24 (ap).
     * The answer is the covering region (none: the default), and the scope
     * the longest network inside, so that resolvers keep it for /8 askers. */
    {"10.0.0.0", 8, US, 24, "shorter: /8 over three regions"},
    /* 10.3/16 is eu except for the ap /24 inside */
    {"10.3.0.0", 16, EU, 24, "shorter: nested ap /24 inside eu /16"},
    {"10.3.128.0", 24, AP, 24, "nested /24"},
    /* off the nested /24's path: bit 16 decides, scope 17 < source 24 */
    {"10.3.5.0", 24, EU, 17, "beside the nested /24"},
    {"172.16.0.0", 12, EU, 24, "covering network with a nested one"},
    {"172.20.0.0", 16, EU, 14, "inside the covering /12, away from the /24"},
    /* no network: default region; the scope covers the whole range that
     * holds no network at all (192.0.0.0/2 here), never less */
    {"192.0.2.0", 24, US, 2, "no match, default region"},
    {"11.0.0.0", 8, US, 8, "no match beside 10/8"},
    /* IPv6: the "/40/40" of the bug */
    {"2001:db8::", 40, US, 48, "v6 /40 over two /48 of two regions"},
    {"2001:db8:3::", 56, EU, 48, "v6 longer than the /48"},
    {"2001:db8:3::", 48, EU, 48, "v6 equal"},
    {"2001:db8:2::", 48, US, 48, "v6 between the two /48"},
};

static struct dns_view *scope_view(struct fixture *f, struct cm_conf **conf,
                                   struct cm_merged **merged, struct cm_state **st)
{
    struct dns_view *view = NULL;
    char err[512];

    if (cm_conf_load_string("test.json", SCOPE_CONF, conf, err, sizeof(err)) != CM_OK)
        fail_msg("conf: %s", err);
    if (cm_state_parse(SCOPE_STATE, strlen(SCOPE_STATE), NULL, st, err, sizeof(err)) != CM_OK)
        fail_msg("state: %s", err);
    const struct cm_state *docs[] = {*st};
    assert_int_equal(cm_merged_build(docs, 1, *conf, merged), CM_OK);
    if (dns_view_new(*conf, f->view.zone, *merged, NULL, 1, &view, err, sizeof(err)) != CM_OK)
        fail_msg("view: %s", err);
    return view;
}

/* Asks @name/@qtype with ECS @prefix/@source; returns the packet, *scope. */
static ldns_pkt *ask_ecs(struct fixture *f, const struct dns_view *view, const char *name,
                         unsigned qtype, const char *prefix, unsigned source, unsigned *scope)
{
    uint8_t a[16];
    unsigned family = strchr(prefix, ':') != NULL ? 2 : 1;
    struct pkt p;
    ldns_pkt *r = NULL;

    assert_int_equal(inet_pton(family == 1 ? AF_INET : AF_INET6, prefix, a), 1);
    p_query_full(&p, 1, 0, name, qtype, DNS_CLASS_IN, 1);
    p_opt(&p, 1232, 0, family, source, a);
    size_t n = dns_query_process(view, p.b, p.len, f->resp, 4096,
                                 (const struct sockaddr *)&f->client4, false, &f->info, NOW);
    assert_int_equal(ldns_wire2pkt(&r, f->resp, n), LDNS_STATUS_OK);
    /* the ECS option is the last one: ... family(2) source(1) scope(1) addr */
    size_t addr_len = (source + 7) / 8;
    assert_int_equal(f->resp[n - addr_len - 2], source);
    *scope = f->resp[n - addr_len - 1];
    return r;
}

static void test_ecs_scope(void **state)
{
    struct fixture *f = *state;
    struct cm_conf *conf = NULL;
    struct cm_state *st = NULL;
    struct cm_merged *merged = NULL;
    struct dns_view *view = scope_view(f, &conf, &merged, &st);
    const char *global = "web.default.myfed.svc." ORIGIN;
    unsigned scope;

    for (size_t i = 0; i < sizeof(scope_cases) / sizeof(scope_cases[0]); i++) {
        const struct scope_case *c = &scope_cases[i];
        ldns_pkt *r = ask_ecs(f, view, global, DNS_TYPE_A, c->prefix, c->source, &scope);

        print_message("case %s/%u (%s): scope %u\n", c->prefix, c->source, c->why, scope);
        assert_int_equal(ldns_pkt_get_rcode(r), 0);
        assert_int_equal(ldns_pkt_ancount(r), 1);
        assert_rdata(ldns_rr_list_rr(ldns_pkt_answer(r), 0), 0, c->answer);
        assert_int_equal(scope, c->scope);
        ldns_pkt_free(r);
    }

    /* answers that hold for every client carry scope 0 */
    static const struct {
        const char *name;
        unsigned qtype;
        int rcode;
    } shared[] = {
        {"web.default.myfed.svc." ORIGIN, DNS_TYPE_MX, 0},          /* NODATA, federated */
        {"web.default.myfed.svc." ORIGIN, DNS_TYPE_AAAA, 0},        /* NODATA, v4 only */
        {"web.default.myfed.svc.us-east-1." ORIGIN, DNS_TYPE_A, 0}, /* same for all */
        {"nothing.default.myfed.svc." ORIGIN, DNS_TYPE_A, 3},       /* NXDOMAIN */
        {"myfed.svc." ORIGIN, DNS_TYPE_A, 0},                       /* empty non-terminal */
        {"www." ORIGIN, DNS_TYPE_A, 0},                             /* static data */
        {"nx." ORIGIN, DNS_TYPE_A, 3},                              /* static NXDOMAIN */
    };
    for (size_t i = 0; i < sizeof(shared) / sizeof(shared[0]); i++) {
        ldns_pkt *r = ask_ecs(f, view, shared[i].name, shared[i].qtype, "10.3.0.0", 16, &scope);

        print_message("shared %s type %u\n", shared[i].name, shared[i].qtype);
        assert_int_equal(ldns_pkt_get_rcode(r), shared[i].rcode);
        assert_int_equal(scope, 0);
        ldns_pkt_free(r);
    }

    /* dns_query_locate says the same for /v1/explain */
    struct dns_client_loc loc;
    uint8_t a[16];
    inet_pton(AF_INET, "10.0.0.0", a);
    dns_query_locate(view, AF_INET, a, 8, true, &loc);
    assert_int_equal(loc.region, 0);
    assert_int_equal(loc.region_scope, 24);
    assert_int_equal(loc.subnet_scope, 24);

    dns_view_unref(view);
    cm_merged_free(merged);
    cm_state_free(st);
    cm_conf_unref(conf);
}

/* ---- cookies and NSID ---- */

/* Appends one EDNS option to the OPT that ends @p (fixes its RDLENGTH). */
static void p_option(struct pkt *p, size_t opt_start, unsigned code, const uint8_t *d, size_t len)
{
    p_u16(p, code);
    p_u16(p, (unsigned)len);
    if (len > 0)
        memcpy(p->b + p->len, d, len);
    p->len += len;
    size_t rdlen = p->len - (opt_start + 11);
    p->b[opt_start + 9] = (uint8_t)(rdlen >> 8);
    p->b[opt_start + 10] = (uint8_t)rdlen;
}

/* A query for www with an OPT and an option (code 0: none). */
static void p_query_option(struct pkt *p, unsigned code, const uint8_t *d, size_t len)
{
    p_query_full(p, 1, 0x0100, "www." ORIGIN, DNS_TYPE_A, DNS_CLASS_IN, 1);
    size_t start = p->len;
    p_opt(p, 1232, 0, 0, 0, NULL);
    if (code != 0)
        p_option(p, start, code, d, len);
}

/* The data of option @code in the response's OPT; its length, or -1. */
static int resp_option(const struct fixture *f, size_t n, unsigned code, uint8_t *out)
{
    ldns_pkt *r = NULL;
    int found = -1;

    assert_int_equal(ldns_wire2pkt(&r, f->resp, n), LDNS_STATUS_OK);
    const ldns_rdf *d = ldns_pkt_edns_data(r);
    if (d != NULL) {
        const uint8_t *b = ldns_rdf_data(d);
        size_t len = ldns_rdf_size(d), o = 0;
        while (o + 4 <= len) {
            unsigned c = (unsigned)b[o] << 8 | b[o + 1];
            size_t l = (size_t)b[o + 2] << 8 | b[o + 3];
            assert_true(o + 4 + l <= len);
            if (c == code) {
                memcpy(out, b + o + 4, l);
                found = (int)l;
            }
            o += 4 + l;
        }
    }
    ldns_pkt_free(r);
    return found;
}

static void cookies_on(struct fixture *f, bool require)
{
    static const uint8_t secret[16] = {0xe5, 0xe9, 0x73, 0xe5, 0xa6, 0xb2, 0xa4, 0x3f,
                                       0x48, 0xe7, 0xdc, 0x84, 0x9e, 0x37, 0xbf, 0xcf};
    f->conf.dnsd.cookies.enabled = true;
    f->conf.dnsd.cookies.require = require;
    memcpy(f->conf.dnsd.cookies.secret, secret, sizeof(secret));
    inet_pton(AF_INET, "198.51.100.100", &f->client4.sin_addr);
}

static void test_cookies(void **state)
{
    struct fixture *f = *state;
    static const uint8_t client[8] = {0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57};
    /* RFC 9018 A.1: client cookie, then the server cookie for 198.51.100.100 at NOW */
    static const uint8_t a1[24] = {0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57,
                                   0x01, 0x00, 0x00, 0x00, 0x5c, 0xf7, 0x9f, 0x11,
                                   0x1f, 0x81, 0x30, 0xc3, 0xee, 0xe2, 0x94, 0x80};
    static const uint8_t a1_ip[4] = {198, 51, 100, 100};
    uint8_t got[64];
    struct pkt p;
    size_t n;

    /* without dnsd.cookies: answered, no COOKIE back */
    p_query_option(&p, DNS_EDNS_OPT_COOKIE, client, 8);
    n = run(f, &p, false);
    assert_int_equal(f->resp[3] & 0x0F, 0);
    assert_int_equal(resp_option(f, n, DNS_EDNS_OPT_COOKIE, got), -1);
    assert_false(f->info.cookie_valid);

    /* a client cookie alone: a new server cookie, RFC 9018's construction */
    cookies_on(f, false);
    n = run(f, &p, false);
    assert_int_equal(f->resp[3] & 0x0F, 0);
    assert_int_equal(resp_option(f, n, DNS_EDNS_OPT_COOKIE, got), 24);
    assert_memory_equal(got, a1, 24);
    assert_false(f->info.cookie_valid);

    /* the pair returned: recognised, within the hour, and sent back as it is
     * while at most half an hour old (RFC 9018 §4.3) */
    p_query_option(&p, DNS_EDNS_OPT_COOKIE, a1, 24);
    n = run(f, &p, false);
    assert_true(f->info.cookie_valid);
    assert_int_equal(resp_option(f, n, DNS_EDNS_OPT_COOKIE, got), 24);
    assert_memory_equal(got, a1, 24);
    n = dns_query_process(&f->view, p.b, p.len, f->resp, 4096, (const struct sockaddr *)&f->client4,
                          false, &f->info, NOW + 1800);
    assert_true(f->info.cookie_valid);
    resp_option(f, n, DNS_EDNS_OPT_COOKIE, got);
    assert_memory_equal(got, a1, 24);
    n = dns_query_process(&f->view, p.b, p.len, f->resp, 4096, (const struct sockaddr *)&f->client4,
                          false, &f->info, NOW + 1801);
    assert_true(f->info.cookie_valid);
    resp_option(f, n, DNS_EDNS_OPT_COOKIE, got);
    uint8_t renewed[16];
    dns_cookie_make(f->conf.dnsd.cookies.secret, client, a1_ip, 4, NOW + 1801, renewed);
    assert_memory_equal(got + 8, renewed, 16); /* renewed past half an hour */
    /* the worker's memo gives the same answers */
    static struct dns_cookie_memo memo;
    n = dns_query_process_memo(&f->view, &memo, p.b, p.len, f->resp, 4096,
                               (const struct sockaddr *)&f->client4, false, &f->info, NOW + 5);
    assert_true(f->info.cookie_valid);
    resp_option(f, n, DNS_EDNS_OPT_COOKIE, got);
    assert_memory_equal(got, a1, 24);
    n = dns_query_process_memo(&f->view, &memo, p.b, p.len, f->resp, 4096,
                               (const struct sockaddr *)&f->client4, false, &f->info, NOW + 6);
    assert_true(f->info.cookie_valid);
    /* ... from another address it is not ours */
    inet_pton(AF_INET, "198.51.100.101", &f->client4.sin_addr);
    run(f, &p, false);
    assert_false(f->info.cookie_valid);
    inet_pton(AF_INET, "198.51.100.100", &f->client4.sin_addr);

    /* rotation: the secret that made it is now the previous one */
    memcpy(f->conf.dnsd.cookies.previous, f->conf.dnsd.cookies.secret, 16);
    memset(f->conf.dnsd.cookies.secret, 0x42, 16);
    run(f, &p, false);
    assert_false(f->info.cookie_valid); /* previous secret not configured */
    f->conf.dnsd.cookies.has_previous = true;
    n = run(f, &p, false);
    assert_true(f->info.cookie_valid);
    resp_option(f, n, DNS_EDNS_OPT_COOKIE, got);
    assert_memory_not_equal(got + 8, a1 + 8, 16); /* re-issued with the current secret */

    /* require: over UDP a client cookie alone gets BADCOOKIE with a cookie */
    cookies_on(f, true);
    p_query_option(&p, DNS_EDNS_OPT_COOKIE, client, 8);
    n = run(f, &p, false);
    assert_int_equal(f->resp[3] & 0x0F, DNS_RCODE_BADCOOKIE & 0x0F);
    assert_int_equal(f->info.rcode, DNS_RCODE_BADCOOKIE);
    ldns_pkt *r = NULL;
    assert_int_equal(ldns_wire2pkt(&r, f->resp, n), LDNS_STATUS_OK);
    assert_int_equal(ldns_pkt_edns_extended_rcode(r), DNS_RCODE_BADCOOKIE >> 4);
    assert_int_equal(ldns_pkt_ancount(r), 0);
    ldns_pkt_free(r);
    assert_int_equal(resp_option(f, n, DNS_EDNS_OPT_COOKIE, got), 24);
    assert_memory_equal(got, a1, 24);
    /* ... TCP is exempt (the handshake proved the address) */
    n = run(f, &p, true);
    assert_int_equal(f->resp[3] & 0x0F, 0);
    assert_int_equal(f->info.rcode, 0);
    /* ... a valid pair is answered */
    p_query_option(&p, DNS_EDNS_OPT_COOKIE, a1, 24);
    n = run(f, &p, false);
    assert_int_equal(f->info.rcode, 0);
    assert_true(f->info.cookie_valid);
    /* ... so is a stale one an hour and a second later: no, BADCOOKIE */
    n = dns_query_process(&f->view, p.b, p.len, f->resp, 4096, (const struct sockaddr *)&f->client4,
                          false, &f->info, NOW + 3601);
    assert_int_equal(f->info.rcode, DNS_RCODE_BADCOOKIE);
    /* ... a server cookie of a foreign length is not ours, not malformed */
    uint8_t foreign[16];
    memcpy(foreign, client, 8);
    memset(foreign + 8, 0x11, 8);
    p_query_option(&p, DNS_EDNS_OPT_COOKIE, foreign, 16);
    run(f, &p, false);
    assert_int_equal(f->info.rcode, DNS_RCODE_BADCOOKIE);
    /* ... and a query without any COOKIE is answered (the client has none) */
    p_query_option(&p, 0, NULL, 0);
    run(f, &p, false);
    assert_int_equal(f->info.rcode, 0);

    /* malformed COOKIE: FORMERR, whatever the settings */
    static const size_t bad[] = {0, 7, 9, 15, 41};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t d[48] = {0};
        p_query_option(&p, DNS_EDNS_OPT_COOKIE, d, bad[i]);
        n = run(f, &p, false);
        assert_int_equal(f->resp[3] & 0x0F, DNS_RCODE_FORMERR);
        assert_int_equal(resp_option(f, n, DNS_EDNS_OPT_COOKIE, got), -1);
    }
    memset(&f->conf.dnsd.cookies, 0, sizeof(f->conf.dnsd.cookies));
}

static void test_nsid(void **state)
{
    struct fixture *f = *state;
    uint8_t got[DNS_NSID_MAX];
    struct pkt p;
    size_t n;

    /* not configured: nothing */
    p_query_option(&p, DNS_EDNS_OPT_NSID, NULL, 0);
    n = run(f, &p, false);
    assert_int_equal(resp_option(f, n, DNS_EDNS_OPT_NSID, got), -1);

    memcpy(f->conf.dnsd.nsid_data, "ns1.us-east-1", 13);
    f->conf.dnsd.nsid_len = 13;
    n = run(f, &p, false);
    assert_int_equal(resp_option(f, n, DNS_EDNS_OPT_NSID, got), 13);
    assert_memory_equal(got, "ns1.us-east-1", 13);
    /* not asked: not sent */
    p_query_option(&p, 0, NULL, 0);
    n = run(f, &p, false);
    assert_int_equal(resp_option(f, n, DNS_EDNS_OPT_NSID, got), -1);
    /* a non-empty NSID in a query is not a request */
    p_query_option(&p, DNS_EDNS_OPT_NSID, (const uint8_t *)"x", 1);
    n = run(f, &p, false);
    assert_int_equal(resp_option(f, n, DNS_EDNS_OPT_NSID, got), -1);
    /* the longest NSID fits beside the answer */
    memset(f->conf.dnsd.nsid_data, 'n', DNS_NSID_MAX);
    f->conf.dnsd.nsid_len = DNS_NSID_MAX;
    p_query_option(&p, DNS_EDNS_OPT_NSID, NULL, 0);
    n = run(f, &p, false);
    assert_true(n <= 1232);
    assert_int_equal(resp_option(f, n, DNS_EDNS_OPT_NSID, got), DNS_NSID_MAX);
    f->conf.dnsd.nsid_len = 0;
}

/* The precompiled path writes the usual OPT (ECS, no COOKIE, no NSID)
 * straight: a federated answer with a COOKIE or NSID asked for still gets
 * them, beside the ECS option echoed with its scope. */
static void test_precompiled_opt(void **state)
{
    struct fixture *f = *state;
    struct cm_conf *conf = NULL;
    struct cm_state *st = NULL;
    struct cm_merged *merged = NULL;
    struct dns_view *view = scope_view(f, &conf, &merged, &st);
    static const uint8_t client[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    static const uint8_t eu[3] = {10, 3, 1};
    uint8_t got[64];
    struct pkt p;

    memcpy(conf->dnsd.nsid_data, "ns1", 3);
    conf->dnsd.nsid_len = 3;
    conf->dnsd.cookies.enabled = true;
    memset(conf->dnsd.cookies.secret, 0x5a, sizeof(conf->dnsd.cookies.secret));
    for (unsigned ask = 0; ask < 4; ask++) { /* bit 0: COOKIE, bit 1: NSID */
        p_query_full(&p, 1, 0, "web.default.myfed.svc." ORIGIN, DNS_TYPE_A, DNS_CLASS_IN, 1);
        size_t start = p.len;
        p_opt(&p, 1232, 0, 1, 24, eu);
        if (ask & 1)
            p_option(&p, start, DNS_EDNS_OPT_COOKIE, client, sizeof(client));
        if (ask & 2)
            p_option(&p, start, DNS_EDNS_OPT_NSID, NULL, 0);
        size_t n = dns_query_process(view, p.b, p.len, f->resp, 4096,
                                     (const struct sockaddr *)&f->client4, false, &f->info, NOW);
        print_message("cookie %u nsid %u\n", ask & 1, ask >> 1);
        assert_true(f->info.precompiled);
        assert_int_equal(resp_option(f, n, DNS_EDNS_OPT_ECS, got), 7);
        const uint8_t ecs[7] = {0, 1, 24, 17, 10, 3, 1}; /* scope: 10.3.128/24 is ap */
        assert_memory_equal(got, ecs, sizeof(ecs));
        assert_int_equal(resp_option(f, n, DNS_EDNS_OPT_COOKIE, got), ask & 1 ? 24 : -1);
        if (ask & 1)
            assert_memory_equal(got, client, sizeof(client));
        assert_int_equal(resp_option(f, n, DNS_EDNS_OPT_NSID, got), ask & 2 ? 3 : -1);
    }

    dns_view_unref(view);
    cm_merged_free(merged);
    cm_state_free(st);
    cm_conf_unref(conf);
}

/* What the query path reads of the conf, read once into the view. */
static void test_view_read_conf(void **state)
{
    static const struct {
        uint32_t conf; /* dnsd.max_udp_size */
        uint16_t view; /* in effect */
    } sizes[] = {{0, 1232},    {1, 512},       {511, 512},    {512, 512},
                 {4096, 4096}, {65535, 65535}, {65536, 65535}};
    struct fixture *f = *state;
    struct dns_view v = {.conf = NULL};

    dns_view_read_conf(&v);
    assert_int_equal(v.max_udp, 1232);
    assert_true(v.ecs);
    v.conf = &f->conf;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        f->conf.dnsd.max_udp_size = sizes[i].conf;
        dns_view_read_conf(&v);
        assert_int_equal(v.max_udp, sizes[i].view);
    }
    f->conf.dnsd.ecs = false;
    dns_view_read_conf(&v);
    assert_false(v.ecs);
    f->conf.dnsd.ecs = true;
    dns_view_read_conf(&v);
    assert_true(v.ecs);
    f->conf.dnsd.max_udp_size = 1232;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_formerr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notimp_badvers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_answer_and_case, setup, teardown),
        cmocka_unit_test_setup_teardown(test_negative, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cname, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cname_chain_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_referral, setup, teardown),
        cmocka_unit_test_setup_teardown(test_additional, setup, teardown),
        cmocka_unit_test_setup_teardown(test_any_and_wildcard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ecs_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_federated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ecs_scope, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cookies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nsid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_precompiled_opt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_view_read_conf, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
