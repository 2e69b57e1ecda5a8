/* SPDX-License-Identifier: Apache-2.0 */
/* test_dns_wire.c -- the query reader's checks and the writer's compression and rollback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <ldns/ldns.h>

#include "common/cm_err.h"
#include "dnsd/dns_wire.h"

/* ---- a small packet builder ---- */

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

static void p_u32(struct pkt *p, uint32_t v)
{
    p_u16(p, v >> 16);
    p_u16(p, v & 0xFFFF);
}

static void p_bytes(struct pkt *p, const void *d, size_t n)
{
    memcpy(p->b + p->len, d, n);
    p->len += n;
}

/* "www.example.test" -> wire; "" or "." -> root. */
static void p_name(struct pkt *p, const char *dotted)
{
    const char *s = dotted;

    while (*s != '\0' && strcmp(s, ".") != 0) {
        const char *dot = strchr(s, '.');
        size_t l = dot != NULL ? (size_t)(dot - s) : strlen(s);
        p_u8(p, (unsigned)l);
        p_bytes(p, s, l);
        s += l;
        if (*s == '.')
            s++;
    }
    p_u8(p, 0);
}

static void p_header(struct pkt *p, unsigned id, unsigned flags, unsigned qd, unsigned an,
                     unsigned ns, unsigned ar)
{
    p->len = 0;
    p_u16(p, id);
    p_u16(p, flags);
    p_u16(p, qd);
    p_u16(p, an);
    p_u16(p, ns);
    p_u16(p, ar);
}

static void p_query(struct pkt *p, const char *name, unsigned qtype, unsigned arcount)
{
    p_header(p, 0x1234, 0x0100, 1, 0, 0, arcount);
    p_name(p, name);
    p_u16(p, qtype);
    p_u16(p, 1);
}

static void p_opt(struct pkt *p, unsigned udp, unsigned version, unsigned flags,
                  const uint8_t *rdata, size_t rdlen)
{
    p_u8(p, 0);
    p_u16(p, DNS_TYPE_OPT);
    p_u16(p, udp);
    p_u8(p, 0);
    p_u8(p, version);
    p_u16(p, flags);
    p_u16(p, (unsigned)rdlen);
    if (rdlen > 0)
        p_bytes(p, rdata, rdlen);
}

/* An ECS option: code 8, family, source, scope, the given address bytes. */
static size_t ecs_opt(uint8_t *o, unsigned family, unsigned source, unsigned scope,
                      const uint8_t *addr, size_t addr_len)
{
    o[0] = 0;
    o[1] = 8;
    o[2] = 0;
    o[3] = (uint8_t)(4 + addr_len);
    o[4] = 0;
    o[5] = (uint8_t)family;
    o[6] = (uint8_t)source;
    o[7] = (uint8_t)scope;
    if (addr_len > 0)
        memcpy(o + 8, addr, addr_len);
    return 8 + addr_len;
}

static enum dns_parse_status parse(const struct pkt *p, struct dns_request *req)
{
    return dns_wire_parse(p->b, p->len, req);
}

/* ---- reader ---- */

static void test_parse_valid(void **state)
{
    struct pkt p;
    struct dns_request req;

    (void)state;
    p_query(&p, "WwW.Example.TEST", DNS_TYPE_AAAA, 0);
    assert_int_equal(parse(&p, &req), DNS_PARSE_OK);
    assert_true(req.has_question);
    assert_int_equal(req.id, 0x1234);
    assert_int_equal(req.opcode, 0);
    assert_int_equal(req.qtype, DNS_TYPE_AAAA);
    assert_int_equal(req.qclass, DNS_CLASS_IN);
    assert_int_equal(req.qname_len, 18);
    assert_memory_equal(req.qname, "\3WwW\7Example\4TEST", 18);
    assert_memory_equal(req.qname_lc, "\3www\7example\4test", 18);
    assert_ptr_equal(req.qname, p.b + 12);
    assert_false(req.edns.present);
}

static void test_parse_short_header(void **state)
{
    struct pkt p;
    struct dns_request req;

    (void)state;
    p_query(&p, "a.test", 1, 0);
    assert_int_equal(dns_wire_parse(p.b, 11, &req), DNS_PARSE_SHORT);
    assert_int_equal(dns_wire_parse(p.b, 0, &req), DNS_PARSE_SHORT);
}

static void test_parse_truncated_question(void **state)
{
    struct pkt p;
    struct dns_request req;

    (void)state;
    p_query(&p, "a.test", 1, 0);
    for (size_t cut = 12; cut < p.len; cut++) {
        assert_int_equal(dns_wire_parse(p.b, cut, &req), DNS_PARSE_FORMERR);
        assert_false(req.has_question);
    }
    assert_int_equal(dns_wire_parse(p.b, p.len, &req), DNS_PARSE_OK);
}

static void test_parse_label_too_long(void **state)
{
    struct pkt p;
    struct dns_request req;
    char label[80];

    (void)state;
    memset(label, 'a', 64);
    label[64] = '\0';
    p_query(&p, label, 1, 0);
    assert_int_equal(parse(&p, &req), DNS_PARSE_FORMERR);
    assert_false(req.has_question);
    label[63] = '\0'; /* 63 is the maximum */
    p_query(&p, label, 1, 0);
    assert_int_equal(parse(&p, &req), DNS_PARSE_OK);
}

static void test_parse_name_too_long(void **state)
{
    struct pkt p;
    struct dns_request req;
    char name[300];
    char l63[64];

    (void)state;
    memset(l63, 'b', 63);
    l63[63] = '\0';
    /* 4 x (1+63) = 256 bytes + root: too long */
    snprintf(name, sizeof(name), "%s.%s.%s.%s", l63, l63, l63, l63);
    p_query(&p, name, 1, 0);
    assert_int_equal(parse(&p, &req), DNS_PARSE_FORMERR);
    /* 3 x 64 + 1+61 + root = 255: the longest valid name */
    snprintf(name, sizeof(name), "%s.%s.%s.%.61s", l63, l63, l63, l63);
    p_query(&p, name, 1, 0);
    assert_int_equal(parse(&p, &req), DNS_PARSE_OK);
    assert_int_equal(req.qname_len, 255);
    snprintf(name, sizeof(name), "%s.%s.%s.%.62s", l63, l63, l63, l63);
    p_query(&p, name, 1, 0);
    assert_int_equal(parse(&p, &req), DNS_PARSE_FORMERR);
}

static void test_parse_pointer_in_question(void **state)
{
    struct pkt p;
    struct dns_request req;

    (void)state;
    p_header(&p, 1, 0, 1, 0, 0, 0);
    p_u8(&p, 1);
    p_u8(&p, 'a');
    p_u16(&p, 0xC00C);
    p_u16(&p, 1);
    p_u16(&p, 1);
    assert_int_equal(parse(&p, &req), DNS_PARSE_FORMERR);
    assert_false(req.has_question);
}

static void test_parse_bad_label_type(void **state)
{
    struct pkt p;
    struct dns_request req;

    (void)state;
    for (unsigned t = 0x40; t <= 0x80; t += 0x40) {
        p_header(&p, 1, 0, 1, 0, 0, 0);
        p_u8(&p, t | 1);
        p_u8(&p, 'a');
        p_u8(&p, 0);
        p_u16(&p, 1);
        p_u16(&p, 1);
        assert_int_equal(parse(&p, &req), DNS_PARSE_FORMERR);
    }
}

static void test_parse_qdcount(void **state)
{
    struct pkt p;
    struct dns_request req;

    (void)state;
    p_query(&p, "a.test", 1, 0);
    p.b[5] = 0;
    assert_int_equal(parse(&p, &req), DNS_PARSE_FORMERR);
    assert_false(req.has_question);
    p.b[5] = 2;
    p_name(&p, "b.test");
    p_u16(&p, 1);
    p_u16(&p, 1);
    assert_int_equal(parse(&p, &req), DNS_PARSE_FORMERR);
    assert_false(req.has_question);
}

static void test_parse_edns(void **state)
{
    struct pkt p;
    struct dns_request req;
    uint8_t opt[64];
    uint8_t unknown[] = {0x00, 0x0A, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8}; /* a cookie: ignored */

    (void)state;
    p_query(&p, "a.test", 1, 1);
    p_opt(&p, 4096, 0, 0x8000, unknown, sizeof(unknown));
    assert_int_equal(parse(&p, &req), DNS_PARSE_OK);
    assert_true(req.edns.present);
    assert_int_equal(req.edns.udp_size, 4096);
    assert_int_equal(req.edns.version, 0);
    assert_true(req.edns.do_bit);
    assert_false(req.edns.ecs.present);

    size_t n = ecs_opt(opt, 1, 24, 0, (const uint8_t *)"\x0a\x01\x02", 3);
    p_query(&p, "a.test", 1, 1);
    p_opt(&p, 1232, 1, 0, opt, n);
    assert_int_equal(parse(&p, &req), DNS_PARSE_OK);
    assert_int_equal(req.edns.version, 1);
    assert_false(req.edns.do_bit);
    assert_true(req.edns.ecs.present);
    assert_int_equal(req.edns.ecs.family, 1);
    assert_int_equal(req.edns.ecs.source_len, 24);
    assert_memory_equal(req.edns.ecs.addr, "\x0a\x01\x02\x00", 4);

    n = ecs_opt(opt, 2, 56, 0, (const uint8_t *)"\x20\x01\x0d\xb8\x00\x01\x02", 7);
    p_query(&p, "a.test", 1, 1);
    p_opt(&p, 1232, 0, 0, opt, n);
    assert_int_equal(parse(&p, &req), DNS_PARSE_OK);
    assert_int_equal(req.edns.ecs.family, 2);
    assert_int_equal(req.edns.ecs.source_len, 56);

    n = ecs_opt(opt, 1, 0, 0, NULL, 0); /* source 0: valid, no address */
    p_query(&p, "a.test", 1, 1);
    p_opt(&p, 1232, 0, 0, opt, n);
    assert_int_equal(parse(&p, &req), DNS_PARSE_OK);
    assert_true(req.edns.ecs.present);
    assert_int_equal(req.edns.ecs.source_len, 0);
}

static void test_parse_two_opts(void **state)
{
    struct pkt p;
    struct dns_request req;

    (void)state;
    p_query(&p, "a.test", 1, 2);
    p_opt(&p, 4096, 0, 0, NULL, 0);
    p_opt(&p, 4096, 0, 0, NULL, 0);
    assert_int_equal(parse(&p, &req), DNS_PARSE_FORMERR);
    assert_true(req.has_question);
    assert_false(req.edns.present);
}

static void test_parse_opt_not_root(void **state)
{
    struct pkt p;
    struct dns_request req;

    (void)state;
    p_query(&p, "a.test", 1, 1);
    p_name(&p, "a.test");
    p_u16(&p, DNS_TYPE_OPT);
    p_u16(&p, 4096);
    p_u32(&p, 0);
    p_u16(&p, 0);
    assert_int_equal(parse(&p, &req), DNS_PARSE_FORMERR);
    assert_true(req.has_question);
    assert_false(req.edns.present);
}

/* The additional section walked whole, the OPT read as if where it stands:
 * a malformed OPT is FORMERR with its EDNS (echoed), whatever follows; a
 * valid one before a malformed RR too; a second OPT leaves none. */
static void test_parse_opt_order(void **state)
{
    struct pkt p;
    struct dns_request req;
    uint8_t opt[64];
    size_t bad = ecs_opt(opt, 1, 24, 0, (const uint8_t *)"\x0a\x01", 2); /* too few bytes */

    (void)state;
    p_query(&p, "a.test", 1, 2);
    p_opt(&p, 1232, 0, 0, opt, bad);
    p_opt(&p, 4096, 0, 0, NULL, 0);
    assert_int_equal(parse(&p, &req), DNS_PARSE_FORMERR);
    assert_true(req.edns.present);
    assert_int_equal(req.edns.udp_size, 1232);

    p_query(&p, "a.test", 1, 2);
    p_opt(&p, 1232, 0, 0, NULL, 0);
    p_u8(&p, 0); /* a root owner and no more: a truncated RR */
    assert_int_equal(parse(&p, &req), DNS_PARSE_FORMERR);
    assert_true(req.edns.present);
    assert_int_equal(req.edns.udp_size, 1232);

    p_query(&p, "a.test", 1, 2);
    p_opt(&p, 1232, 0, 0, NULL, 0);
    p_name(&p, "a.test"); /* an OPT not at root after a valid one */
    p_u16(&p, DNS_TYPE_OPT);
    p_u16(&p, 4096);
    p_u32(&p, 0);
    p_u16(&p, 0);
    assert_int_equal(parse(&p, &req), DNS_PARSE_FORMERR);
    assert_false(req.edns.present);

    p_query(&p, "a.test", 1, 2);
    p_name(&p, "key.test"); /* a TSIG-like RR first: skipped */
    p_u16(&p, 250);
    p_u16(&p, 255);
    p_u32(&p, 0);
    p_u16(&p, 0);
    p_opt(&p, 1400, 0, 0x8000, NULL, 0);
    assert_int_equal(parse(&p, &req), DNS_PARSE_OK);
    assert_true(req.edns.present);
    assert_true(req.edns.do_bit);
    assert_int_equal(req.edns.udp_size, 1400);

    /* an OPT-shaped record in the authority section is skipped, not read */
    p_header(&p, 0x1234, 0x0100, 1, 0, 1, 1);
    p_name(&p, "a.test");
    p_u16(&p, 1);
    p_u16(&p, 1);
    p_opt(&p, 4096, 0, 0, NULL, 0);
    p_opt(&p, 1400, 0, 0, NULL, 0);
    assert_int_equal(parse(&p, &req), DNS_PARSE_OK);
    assert_true(req.edns.present);
    assert_int_equal(req.edns.udp_size, 1400);
}

static void expect_bad_ecs(unsigned family, unsigned source, unsigned scope, const char *addr,
                           size_t addr_len)
{
    struct pkt p;
    struct dns_request req;
    uint8_t opt[64];
    size_t n = ecs_opt(opt, family, source, scope, (const uint8_t *)addr, addr_len);

    p_query(&p, "a.test", 1, 1);
    p_opt(&p, 4096, 0, 0, opt, n);
    assert_int_equal(parse(&p, &req), DNS_PARSE_FORMERR);
    assert_true(req.has_question);
    assert_true(req.edns.present); /* the OPT itself parsed: it is echoed */
    assert_false(req.edns.ecs.present);
}

static void test_parse_bad_ecs(void **state)
{
    (void)state;
    expect_bad_ecs(1, 24, 0, "\x0a\x01", 2);         /* too few address bytes */
    expect_bad_ecs(1, 24, 0, "\x0a\x01\x02\x03", 4); /* too many */
    expect_bad_ecs(1, 20, 0, "\x0a\x01\x0f", 3);     /* bits set beyond /20 */
    expect_bad_ecs(1, 24, 16, "\x0a\x01\x02", 3);    /* scope in a query */
    expect_bad_ecs(1, 33, 0, "\x0a\x01\x02\x03\x04", 5);
    expect_bad_ecs(2, 129, 0, "0123456789abcdefg", 17);
    expect_bad_ecs(3, 8, 0, "\x0a", 1); /* unknown family */
    expect_bad_ecs(0, 0, 0, "", 0);

    /* option shorter than its fixed part */
    struct pkt p;
    struct dns_request req;
    uint8_t opt[] = {0, 8, 0, 2, 0, 1};
    p_query(&p, "a.test", 1, 1);
    p_opt(&p, 4096, 0, 0, opt, sizeof(opt));
    assert_int_equal(parse(&p, &req), DNS_PARSE_FORMERR);

    /* two ECS options */
    uint8_t two[32];
    size_t n = ecs_opt(two, 1, 8, 0, (const uint8_t *)"\x0a", 1);
    n += ecs_opt(two + n, 1, 8, 0, (const uint8_t *)"\x0b", 1);
    p_query(&p, "a.test", 1, 1);
    p_opt(&p, 4096, 0, 0, two, n);
    assert_int_equal(parse(&p, &req), DNS_PARSE_FORMERR);
}

static void test_parse_truncated_opt(void **state)
{
    struct pkt p;
    struct dns_request req;
    uint8_t opt[64];

    (void)state;
    /* option length runs past RDLENGTH */
    size_t n = ecs_opt(opt, 1, 24, 0, (const uint8_t *)"\x0a\x01\x02", 3);
    p_query(&p, "a.test", 1, 1);
    p_opt(&p, 4096, 0, 0, opt, n - 1);
    assert_int_equal(parse(&p, &req), DNS_PARSE_FORMERR);
    /* a dangling option header */
    p_query(&p, "a.test", 1, 1);
    p_opt(&p, 4096, 0, 0, (const uint8_t *)"\x00\x0a", 2);
    assert_int_equal(parse(&p, &req), DNS_PARSE_FORMERR);
    /* RDLENGTH runs past the packet */
    p_query(&p, "a.test", 1, 1);
    p_opt(&p, 4096, 0, 0, opt, n);
    for (size_t cut = p.len - 1; cut > p.len - n - 11; cut--)
        assert_int_equal(dns_wire_parse(p.b, cut, &req), DNS_PARSE_FORMERR);
    /* ARCOUNT says more than there is */
    p_query(&p, "a.test", 1, 2);
    p_opt(&p, 4096, 0, 0, NULL, 0);
    assert_int_equal(parse(&p, &req), DNS_PARSE_FORMERR);
}

static void test_parse_skips_answer_and_authority(void **state)
{
    struct pkt p;
    struct dns_request req;

    (void)state;
    p_header(&p, 7, 0, 1, 1, 1, 1);
    p_name(&p, "a.test");
    p_u16(&p, 1);
    p_u16(&p, 1);
    /* answer: compressed owner, A record */
    p_u16(&p, 0xC00C);
    p_u16(&p, 1);
    p_u16(&p, 1);
    p_u32(&p, 60);
    p_u16(&p, 4);
    p_u32(&p, 0x0a000001);
    /* authority: SOA-ish garbage rdata, compressed owner with a label first */
    p_u8(&p, 1);
    p_u8(&p, 'x');
    p_u16(&p, 0xC00C);
    p_u16(&p, 6);
    p_u16(&p, 1);
    p_u32(&p, 60);
    p_u16(&p, 3);
    p_bytes(&p, "abc", 3);
    p_opt(&p, 1400, 0, 0, NULL, 0);
    assert_int_equal(parse(&p, &req), DNS_PARSE_OK);
    assert_true(req.edns.present);
    assert_int_equal(req.edns.udp_size, 1400);
    /* truncating inside the answer record is FORMERR */
    assert_int_equal(dns_wire_parse(p.b, 12 + 8 + 4 + 12, &req), DNS_PARSE_FORMERR);
    assert_true(req.has_question);
}

/* ---- writer ---- */

static const uint8_t QNAME[] = "\3WwW\7Example\4test";
static const uint8_t TARGET[] = "\3foo\7example\4test";

static void rr_a(struct dns_rrset *rs, uint8_t *buf, uint32_t addr)
{
    buf[0] = 0;
    buf[1] = 4;
    buf[2] = (uint8_t)(addr >> 24);
    buf[3] = (uint8_t)(addr >> 16);
    buf[4] = (uint8_t)(addr >> 8);
    buf[5] = (uint8_t)addr;
    rs->type = DNS_TYPE_A;
    rs->rclass = DNS_CLASS_IN;
    rs->ttl = 60;
    rs->count = 1;
    rs->rdata_len = 6;
    rs->rdata = buf;
}

static void rr_name(struct dns_rrset *rs, uint8_t *buf, uint16_t type, const uint8_t *prefix,
                    size_t prefix_len, const uint8_t *name, size_t name_len)
{
    size_t rdlen = prefix_len + name_len;

    buf[0] = (uint8_t)(rdlen >> 8);
    buf[1] = (uint8_t)rdlen;
    if (prefix_len > 0)
        memcpy(buf + 2, prefix, prefix_len);
    memcpy(buf + 2 + prefix_len, name, name_len);
    rs->type = type;
    rs->rclass = DNS_CLASS_IN;
    rs->ttl = 300;
    rs->count = 1;
    rs->rdata_len = (uint16_t)(rdlen + 2);
    rs->rdata = buf;
}

static ldns_pkt *decode(const uint8_t *buf, size_t len)
{
    ldns_pkt *pkt = NULL;

    assert_int_equal(ldns_wire2pkt(&pkt, buf, len), LDNS_STATUS_OK);
    return pkt;
}

static void assert_rr_owner(ldns_rr *rr, const char *expect)
{
    char *s = ldns_rdf2str(ldns_rr_owner(rr));
    assert_string_equal(s, expect);
    free(s);
}

static void test_writer_compression(void **state)
{
    uint8_t buf[512];
    uint8_t a_rd[6], cname_rd[64], mx_rd[64], srv_rd[64];
    struct dns_rrset a, cname, mx, srv;
    struct dns_writer w;

    (void)state;
    rr_a(&a, a_rd, 0xC0000201);
    rr_name(&cname, cname_rd, DNS_TYPE_CNAME, NULL, 0, TARGET, sizeof(TARGET));
    rr_name(&mx, mx_rd, DNS_TYPE_MX, (const uint8_t *)"\0\12", 2, TARGET, sizeof(TARGET));
    rr_name(&srv, srv_rd, DNS_TYPE_SRV, (const uint8_t *)"\0\1\0\2\0\3", 6, TARGET, sizeof(TARGET));

    dns_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(dns_writer_header(&w, 0xBEEF, 0x8400, true), CM_OK);
    assert_int_equal(dns_writer_question(&w, QNAME, sizeof(QNAME), 1, 1), CM_OK);
    size_t q_end = w.len;
    assert_int_equal(q_end, 12 + sizeof(QNAME) + 4);
    /* owner = the question name: a pointer to offset 12 */
    assert_int_equal(dns_writer_rrset(&w, DNS_SEC_ANSWER, (const uint8_t *)"\3www\7example\4test",
                                      18, &cname, 300),
                     CM_OK);
    assert_int_equal(buf[q_end], 0xC0);
    assert_int_equal(buf[q_end + 1], 12);
    /* CNAME target: "foo" then a pointer to "example.test" at offset 16 */
    size_t rd = q_end + 2 + 10;
    assert_int_equal(buf[rd - 2], 0);
    assert_int_equal(buf[rd - 1], 6);
    assert_memory_equal(buf + rd, "\3foo\xC0\x10", 6);
    /* owner = the CNAME target: a pointer to the RDATA */
    size_t before = w.len;
    assert_int_equal(dns_writer_rrset(&w, DNS_SEC_ANSWER, TARGET, sizeof(TARGET), &a, 60), CM_OK);
    assert_int_equal(buf[before], 0xC0);
    assert_int_equal(buf[before + 1], rd);
    /* MX: preference then a compressed exchange */
    before = w.len;
    assert_int_equal(dns_writer_rrset(&w, DNS_SEC_AUTHORITY, TARGET, sizeof(TARGET), &mx, 60),
                     CM_OK);
    assert_int_equal(buf[before + 10 + 2 - 1], 4); /* rdlength 2 + 2 */
    /* SRV: never compressed */
    before = w.len;
    assert_int_equal(dns_writer_rrset(&w, DNS_SEC_ADDITIONAL, TARGET, sizeof(TARGET), &srv, 60),
                     CM_OK);
    assert_int_equal(buf[before + 10 + 2 - 1], 6 + sizeof(TARGET));
    assert_memory_equal(buf + before + 12 + 6, TARGET, sizeof(TARGET));
    size_t len = dns_writer_finish(&w);
    assert_int_equal(w.counts[0], 2);

    ldns_pkt *pkt = decode(buf, len);
    assert_int_equal(ldns_pkt_id(pkt), 0xBEEF);
    assert_true(ldns_pkt_aa(pkt));
    assert_int_equal(ldns_pkt_ancount(pkt), 2);
    assert_int_equal(ldns_pkt_nscount(pkt), 1);
    assert_int_equal(ldns_pkt_arcount(pkt), 1);
    assert_rr_owner(ldns_rr_list_rr(ldns_pkt_question(pkt), 0), "WwW.Example.test.");
    assert_rr_owner(ldns_rr_list_rr(ldns_pkt_answer(pkt), 0), "WwW.Example.test.");
    assert_rr_owner(ldns_rr_list_rr(ldns_pkt_answer(pkt), 1), "foo.Example.test.");
    char *s = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(pkt), 0), 0));
    assert_string_equal(s, "foo.Example.test.");
    free(s);
    s = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_authority(pkt), 0), 1));
    assert_string_equal(s, "foo.Example.test.");
    free(s);
    ldns_pkt_free(pkt);
}

static void test_writer_soa_compression(void **state)
{
    uint8_t buf[512], rd[128];
    struct dns_rrset soa;
    struct dns_writer w;
    uint8_t soa_rdata[128];
    size_t n = 0;

    (void)state;
    memcpy(soa_rdata, "\3ns1\7example\4test", 18);
    n += 18;
    memcpy(soa_rdata + n, "\12hostmaster\7example\4test", 25);
    n += 25;
    memset(soa_rdata + n, 0, 20);
    soa_rdata[n + 19] = 60;
    n += 20;
    rr_name(&soa, rd, DNS_TYPE_SOA, NULL, 0, soa_rdata, n);
    dns_writer_init(&w, buf, sizeof(buf));
    dns_writer_header(&w, 1, 0x8000, true);
    dns_writer_question(&w, QNAME, sizeof(QNAME), 1, 1);
    assert_int_equal(
        dns_writer_rrset(&w, DNS_SEC_AUTHORITY, (const uint8_t *)"\7example\4test", 14, &soa, 60),
        CM_OK);
    /* owner 2 + fixed 10 + "ns1"+ptr 6 + "hostmaster"+ptr 13 + 20 */
    assert_int_equal(w.len, 12 + sizeof(QNAME) + 4 + 2 + 10 + 6 + 13 + 20);
    ldns_pkt *pkt = decode(buf, dns_writer_finish(&w));
    ldns_rr *rr = ldns_rr_list_rr(ldns_pkt_authority(pkt), 0);
    char *s = ldns_rdf2str(ldns_rr_rdf(rr, 1));
    assert_string_equal(s, "hostmaster.Example.test.");
    free(s);
    assert_int_equal(ldns_rdf2native_int32(ldns_rr_rdf(rr, 6)), 60);
    ldns_pkt_free(pkt);
}

static void test_writer_rollback(void **state)
{
    uint8_t buf[100];
    uint8_t big_rd[4 * 6];
    struct dns_rrset a, four;
    uint8_t a_rd[6];
    struct dns_writer w;

    (void)state;
    rr_a(&a, a_rd, 0x0a000001);
    for (int i = 0; i < 4; i++)
        memcpy(big_rd + 6 * i, a_rd, 6);
    four = a;
    four.count = 4;
    four.rdata = big_rd;
    four.rdata_len = sizeof(big_rd);

    dns_writer_init(&w, buf, sizeof(buf));
    dns_writer_header(&w, 1, 0x8000, true);
    dns_writer_question(&w, QNAME, sizeof(QNAME), 1, 1); /* 12 + 18 + 4 = 34 */
    struct dns_wmark m = dns_writer_mark(&w);
    assert_int_equal(dns_writer_rrset(&w, DNS_SEC_ANSWER, QNAME, sizeof(QNAME), &a, 60), CM_OK);
    assert_int_equal(w.len, 34 + 16);
    /* 4 x 16 bytes do not fit in the remaining 50: nothing is written */
    size_t len = w.len;
    uint8_t comp = w.comp_count;
    assert_int_equal(dns_writer_rrset(&w, DNS_SEC_ANSWER, TARGET, sizeof(TARGET), &four, 60),
                     CM_ENOSPC);
    assert_int_equal(w.len, len);
    assert_int_equal(w.counts[0], 1);
    assert_int_equal(w.comp_count, comp);
    assert_int_equal(dns_writer_rrset(&w, DNS_SEC_ANSWER, QNAME, sizeof(QNAME), &a, 60), CM_OK);
    dns_writer_rollback(&w, m);
    assert_int_equal(w.len, 34);
    assert_int_equal(w.counts[0], 0);
    /* a cap lowered below what is written is kept at the written length */
    dns_writer_set_cap(&w, 10);
    assert_int_equal(dns_writer_rrset(&w, DNS_SEC_ANSWER, QNAME, sizeof(QNAME), &a, 60), CM_ENOSPC);
    /* a malformed rrset is refused, not written */
    dns_writer_set_cap(&w, sizeof(buf));
    struct dns_rrset bad = a;
    bad.rdata_len = 5;
    assert_int_equal(dns_writer_rrset(&w, DNS_SEC_ANSWER, QNAME, sizeof(QNAME), &bad, 60),
                     CM_EINVAL);
    assert_int_equal(w.len, 34);
    ldns_pkt *pkt = decode(buf, dns_writer_finish(&w));
    assert_int_equal(ldns_pkt_ancount(pkt), 0);
    ldns_pkt_free(pkt);
}

static void test_writer_opt_ecs(void **state)
{
    uint8_t buf[512];
    struct dns_writer w;
    struct dns_ecs ecs = {.present = true, .family = 1, .source_len = 20, .scope_len = 0};

    (void)state;
    memcpy(ecs.addr, "\x0a\x01\x20", 3);
    dns_writer_init(&w, buf, sizeof(buf));
    dns_writer_header(&w, 1, 0x8000, true);
    dns_writer_question(&w, QNAME, sizeof(QNAME), 1, 1);
    size_t at = w.len;
    struct dns_opt_out o = {.udp_size = 1232,
                            .ext_rcode = DNS_RCODE_BADVERS,
                            .do_bit = true,
                            .ecs = &ecs,
                            .ecs_scope = 16};
    assert_int_equal(dns_writer_opt_len(&o), 11 + 4 + 4 + 3);
    assert_int_equal(dns_writer_opt(&w, &o), CM_OK);
    const uint8_t expect[] = {0, 0, 41, 0x04, 0xD0, 1, 0,  0x80, 0,    0,    11,
                              0, 8, 0,  7,    0,    1, 20, 16,   0x0a, 0x01, 0x20};
    assert_int_equal(w.len - at, sizeof(expect));
    assert_memory_equal(buf + at, expect, sizeof(expect));
    ldns_pkt *pkt = decode(buf, dns_writer_finish(&w));
    assert_int_equal(ldns_pkt_edns_udp_size(pkt), 1232);
    assert_true(ldns_pkt_edns_do(pkt));
    assert_int_equal(ldns_pkt_edns_extended_rcode(pkt), 1);
    ldns_pkt_free(pkt);
    /* without options: 11 bytes */
    struct dns_opt_out none = {.udp_size = 512};
    assert_int_equal(dns_writer_opt_len(&none), 11);

    /* ECS, COOKIE and NSID, in that order */
    static const uint8_t cookie[24] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    o.cookie = cookie;
    o.cookie_len = sizeof(cookie);
    o.nsid = (const uint8_t *)"ns1";
    o.nsid_len = 3;
    dns_writer_init(&w, buf, sizeof(buf));
    dns_writer_header(&w, 1, 0x8000, true);
    at = w.len;
    assert_int_equal(dns_writer_opt_len(&o), 11 + 11 + 28 + 7);
    assert_int_equal(dns_writer_opt(&w, &o), CM_OK);
    assert_int_equal(w.len - at, 11 + 11 + 28 + 7);
    assert_int_equal(buf[at + 10], 11 + 28 + 7);                       /* RDLENGTH */
    assert_memory_equal(buf + at + 22, "\x00\x0a\x00\x18\x01\x02", 6); /* COOKIE */
    assert_memory_equal(buf + at + 50, "\x00\x03\x00\x03ns1", 7);      /* NSID */
    /* all or nothing */
    dns_writer_init(&w, buf, at + 56);
    w.len = at;
    assert_int_equal(dns_writer_opt(&w, &o), CM_ENOSPC);
    assert_int_equal(w.len, at);
}

static void p_opt_option(uint8_t *p, size_t *n, uint16_t code, const uint8_t *d, size_t len)
{
    p[(*n)++] = (uint8_t)(code >> 8);
    p[(*n)++] = (uint8_t)code;
    p[(*n)++] = (uint8_t)(len >> 8);
    p[(*n)++] = (uint8_t)len;
    memcpy(p + *n, d, len);
    *n += len;
}

/* A query for QNAME with an OPT holding @opts (@opts_len bytes of options). */
static size_t opt_query(uint8_t *pkt, const uint8_t *opts, size_t opts_len)
{
    size_t n = 0;
    static const uint8_t head[12] = {0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1};

    memcpy(pkt, head, 12);
    n = 12;
    memcpy(pkt + n, QNAME, sizeof(QNAME));
    n += sizeof(QNAME);
    /* qtype A, class IN; OPT: root, type 41, size 4096, TTL 0, RDLENGTH */
    static const uint8_t tail[15] = {0, 1, 0, 1, 0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0};
    memcpy(pkt + n, tail, sizeof(tail));
    n += sizeof(tail);
    pkt[n - 2] = (uint8_t)(opts_len >> 8);
    pkt[n - 1] = (uint8_t)opts_len;
    memcpy(pkt + n, opts, opts_len);
    return n + opts_len;
}

/* COOKIE lengths (RFC 7873 §5.2.2) and NSID. */
/* One OPT written by dns_wire_put_opt_usual() and by dns_wire_put_opt() into
 * buffers filled alike, with @room bytes: the same length and every byte. */
static void check_opt_usual(const struct dns_ecs *ecs, uint8_t scope, bool do_bit,
                            uint16_t udp_size, size_t room)
{
    struct dns_opt_out o = {.udp_size = udp_size, .do_bit = do_bit, .ecs = ecs, .ecs_scope = scope};
    uint8_t general[64], usual[64];

    memset(general, 0xA5, sizeof(general));
    memset(usual, 0xA5, sizeof(usual));
    size_t n = dns_wire_put_opt(general, room, &o);
    assert_int_equal(dns_wire_put_opt_usual(usual, room, udp_size, do_bit, ecs, scope), n);
    assert_memory_equal(usual, general, sizeof(usual));
}

static void test_put_opt_usual(void **state)
{
    static const uint16_t sizes[] = {512, 1232, 0xFFFF};
    struct dns_ecs ecs = {.present = false};

    (void)state;
    for (unsigned s = 0; s < 3; s++) {
        for (int do_bit = 0; do_bit <= 1; do_bit++) {
            check_opt_usual(&ecs, 0, do_bit, sizes[s], 11);
            check_opt_usual(&ecs, 0, do_bit, sizes[s], 10);
            check_opt_usual(&ecs, 0, do_bit, sizes[s], 64);
        }
    }
    for (uint16_t family = 1; family <= 2; family++) {
        unsigned max = family == 1 ? 32 : 128;
        for (unsigned src = 0; src <= max; src++) {
            /* as parsed: the address zero-padded beyond the prefix */
            memset(&ecs, 0, sizeof(ecs));
            ecs.present = true;
            ecs.family = family;
            ecs.source_len = (uint8_t)src;
            for (unsigned i = 0; i < src / 8; i++)
                ecs.addr[i] = (uint8_t)(0x81 + 37 * i);
            if (src % 8 != 0)
                ecs.addr[src / 8] = (uint8_t)(0xFF00u >> (src % 8));
            size_t len = 19 + (src + 7) / 8;
            const uint8_t scopes[] = {0, (uint8_t)src, 24, (uint8_t)max};
            for (unsigned k = 0; k < sizeof(scopes); k++) {
                for (int do_bit = 0; do_bit <= 1; do_bit++) {
                    uint16_t udp = sizes[(src + k) % 3];
                    check_opt_usual(&ecs, scopes[k], do_bit, udp, len - 1); /* no room */
                    check_opt_usual(&ecs, scopes[k], do_bit, udp, len);     /* exact */
                    check_opt_usual(&ecs, scopes[k], do_bit, udp, len + 15);
                    check_opt_usual(&ecs, scopes[k], do_bit, udp, 64); /* the fixed copy */
                }
            }
        }
    }
}

static void test_parse_cookie_nsid(void **state)
{
    static const struct {
        size_t len;
        bool ok;
    } lens[] = {{0, false}, {1, false}, {7, false}, {8, true},  {9, false},  {15, false},
                {16, true}, {24, true}, {39, true}, {40, true}, {41, false}, {64, false}};
    uint8_t data[64], opts[256], pkt[512];
    struct dns_request req;

    (void)state;
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(0xA0 + i);
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        size_t n = 0;
        p_opt_option(opts, &n, DNS_EDNS_OPT_COOKIE, data, lens[i].len);
        size_t len = opt_query(pkt, opts, n);
        print_message("cookie length %zu\n", lens[i].len);
        assert_int_equal(dns_wire_parse(pkt, len, &req),
                         lens[i].ok ? DNS_PARSE_OK : DNS_PARSE_FORMERR);
        if (lens[i].ok) {
            assert_true(req.edns.cookie.present);
            assert_int_equal(req.edns.cookie.len, lens[i].len);
            assert_memory_equal(req.edns.cookie.data, data, lens[i].len);
        }
    }
    /* two COOKIE options: FORMERR */
    size_t n = 0;
    p_opt_option(opts, &n, DNS_EDNS_OPT_COOKIE, data, 8);
    p_opt_option(opts, &n, DNS_EDNS_OPT_COOKIE, data, 8);
    assert_int_equal(dns_wire_parse(pkt, opt_query(pkt, opts, n), &req), DNS_PARSE_FORMERR);
    /* a COOKIE whose length runs past RDLENGTH: FORMERR, no over-read */
    n = 0;
    p_opt_option(opts, &n, DNS_EDNS_OPT_COOKIE, data, 8);
    opts[3] = 24;
    assert_int_equal(dns_wire_parse(pkt, opt_query(pkt, opts, n), &req), DNS_PARSE_FORMERR);
    /* NSID: empty asks, non-empty is ignored */
    n = 0;
    p_opt_option(opts, &n, DNS_EDNS_OPT_NSID, data, 0);
    assert_int_equal(dns_wire_parse(pkt, opt_query(pkt, opts, n), &req), DNS_PARSE_OK);
    assert_true(req.edns.nsid);
    assert_false(req.edns.cookie.present);
    n = 0;
    p_opt_option(opts, &n, DNS_EDNS_OPT_NSID, data, 4);
    assert_int_equal(dns_wire_parse(pkt, opt_query(pkt, opts, n), &req), DNS_PARSE_OK);
    assert_false(req.edns.nsid);
}

static void targets_cb(const uint8_t *name, size_t len, void *arg)
{
    int *count = arg;

    assert_int_equal(len, sizeof(TARGET));
    assert_memory_equal(name, TARGET, len);
    (*count)++;
}

static void test_rrset_helpers(void **state)
{
    uint8_t rd[64];
    struct dns_rrset mx, cname;
    const uint8_t *name = NULL;
    int count = 0;

    (void)state;
    rr_name(&mx, rd, DNS_TYPE_MX, (const uint8_t *)"\0\12", 2, TARGET, sizeof(TARGET));
    dns_rrset_targets(&mx, targets_cb, &count);
    assert_int_equal(count, 1);
    rr_name(&cname, rd, DNS_TYPE_CNAME, NULL, 0, TARGET, sizeof(TARGET));
    assert_int_equal(dns_rrset_cname_target(&cname, &name), sizeof(TARGET));
    assert_ptr_equal(name, rd + 2);
    cname.rdata_len = 5; /* malformed */
    assert_int_equal(dns_rrset_cname_target(&cname, &name), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_short_header),
        cmocka_unit_test(test_parse_truncated_question),
        cmocka_unit_test(test_parse_label_too_long),
        cmocka_unit_test(test_parse_name_too_long),
        cmocka_unit_test(test_parse_pointer_in_question),
        cmocka_unit_test(test_parse_bad_label_type),
        cmocka_unit_test(test_parse_qdcount),
        cmocka_unit_test(test_parse_edns),
        cmocka_unit_test(test_parse_two_opts),
        cmocka_unit_test(test_parse_opt_not_root),
        cmocka_unit_test(test_parse_opt_order),
        cmocka_unit_test(test_parse_bad_ecs),
        cmocka_unit_test(test_parse_truncated_opt),
        cmocka_unit_test(test_parse_skips_answer_and_authority),
        cmocka_unit_test(test_writer_compression),
        cmocka_unit_test(test_writer_soa_compression),
        cmocka_unit_test(test_writer_rollback),
        cmocka_unit_test(test_writer_opt_ecs),
        cmocka_unit_test(test_put_opt_usual),
        cmocka_unit_test(test_parse_cookie_nsid),
        cmocka_unit_test(test_rrset_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
