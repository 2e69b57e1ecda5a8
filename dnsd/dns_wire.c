/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_wire.c -- query reader and response writer (see dns_wire.h).
 *
 * Invariant: every read is preceded by a bounds check against the packet
 * length, and every write by a check against the writer's cap; nothing here
 * allocates or trusts a length it did not check.
 */
#include "dnsd/dns_wire.h"

#include <endian.h>
#include <stddef.h>
#include <string.h>

#include "common/cm_err.h"

#define ECS_FAMILY_IPV4 1
#define ECS_FAMILY_IPV6 2
#define OPT_DO_BIT      0x8000u
#define MAX_PTR_HOPS    64

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* ---- reader ---- */

/* Skips a possibly compressed name in an RR we ignore. */
static bool skip_name(const uint8_t *pkt, size_t len, size_t *off)
{
    size_t o = *off;
    size_t total = 0;

    for (;;) {
        if (o >= len)
            return false;
        uint8_t l = pkt[o];
        if (l == 0) {
            *off = o + 1;
            return true;
        }
        if ((l & 0xC0) == 0xC0) {
            if (len - o < 2)
                return false;
            *off = o + 2;
            return true;
        }
        if ((l & 0xC0) != 0)
            return false;
        o += 1u + l;
        total += 1u + l;
        if (total >= DNS_NAME_MAX)
            return false;
    }
}

/* Skips one RR; *type and *rdata_off describe it. */
static bool skip_rr(const uint8_t *pkt, size_t len, size_t *off, size_t *owner_off, uint16_t *type,
                    size_t *fixed_off)
{
    size_t o = *off;

    *owner_off = o;
    if (!skip_name(pkt, len, &o))
        return false;
    if (len - o < 10)
        return false;
    *type = rd16(pkt + o);
    *fixed_off = o;
    size_t rdlen = rd16(pkt + o + 8);
    o += 10;
    if (len - o < rdlen)
        return false;
    *off = o + rdlen;
    return true;
}

static bool parse_ecs(const uint8_t *d, size_t olen, struct dns_ecs *ecs)
{
    if (ecs->present || olen < 4)
        return false; /* a second ECS option is as ambiguous as a second OPT */
    uint16_t family = rd16(d);
    uint8_t source = d[2];
    uint8_t scope = d[3];
    unsigned max_bits;

    if (family == ECS_FAMILY_IPV4)
        max_bits = 32;
    else if (family == ECS_FAMILY_IPV6)
        max_bits = 128;
    else
        return false;
    if (source > max_bits || scope != 0)
        return false;
    size_t addr_len = olen - 4;
    if (addr_len != (source + 7u) / 8u)
        return false;
    if (source % 8 != 0 && (d[4 + addr_len - 1] & (0xFFu >> (source % 8))) != 0)
        return false; /* RFC 7871 §6: no bits set beyond SOURCE PREFIX-LENGTH */
    memset(ecs->addr, 0, sizeof(ecs->addr));
    if (addr_len <= 4) {
        /* An IPv4 prefix: the 4 bytes that end with it (the option's
         * family, source and scope come before, so they are all inside),
         * shifted to the front. No copy of variable length. */
        uint32_t w;
        memcpy(&w, d + addr_len, 4);
        w = (uint32_t)((uint64_t)be32toh(w) << (32 - 8 * addr_len));
        w = htobe32(w);
        memcpy(ecs->addr, &w, 4);
    } else {
        memcpy(ecs->addr, d + 4, addr_len);
    }
    ecs->family = family;
    ecs->source_len = source;
    ecs->scope_len = 0;
    ecs->present = true;
    return true;
}

static bool parse_cookie(const uint8_t *d, size_t olen, struct dns_cookie *c)
{
    if (c->present)
        return false;
    if (olen != DNS_COOKIE_CLIENT_LEN &&
        (olen < DNS_COOKIE_CLIENT_LEN + DNS_COOKIE_SERVER_MIN || olen > DNS_COOKIE_MAX))
        return false; /* RFC 7873 §5.2.2: FORMERR */
    c->data = d;
    c->len = (uint8_t)olen;
    c->present = true;
    return true;
}

/* Reads an OPT RR whose fixed part starts at @fixed; its RDATA ends at @end. */
static bool parse_opt(const uint8_t *pkt, size_t fixed, size_t end, struct dns_edns *edns)
{
    const uint8_t *f = pkt + fixed;

    edns->udp_size = rd16(f + 2);
    edns->ext_rcode = f[4];
    edns->version = f[5];
    edns->do_bit = (rd16(f + 6) & OPT_DO_BIT) != 0;
    edns->present = true;

    /* The walk is bounded by RDLENGTH: every option consumes at least 4 bytes. */
    size_t o = fixed + 10;
    while (o < end) {
        if (end - o < 4)
            return false;
        uint16_t code = rd16(pkt + o);
        size_t olen = rd16(pkt + o + 2);
        o += 4;
        if (end - o < olen)
            return false;
        if (code == DNS_EDNS_OPT_ECS && !parse_ecs(pkt + o, olen, &edns->ecs))
            return false;
        if (code == DNS_EDNS_OPT_COOKIE && !parse_cookie(pkt + o, olen, &edns->cookie))
            return false;
        if (code == DNS_EDNS_OPT_NSID && olen == 0)
            edns->nsid = true; /* a non-empty NSID in a query is ignored (RFC 5001 §2.1) */
        o += olen;
    }
    return true;
}

/*
 * The sections after the question when they are not the usual lone OPT RR at
 * root: records in the answer and authority sections skipped (allowed in a
 * query and ignored, as BIND does, but they must be well-formed), the
 * additional section walked for its OPT RR, whose place goes to *@opt_fixed
 * and *@opt_end (0: none); *@drop_opt when a second OPT or one not at root
 * makes it FORMERR without EDNS. Out of line (the rare path), so that
 * dns_wire_parse() saves fewer registers.
 */
__attribute__((noinline)) static enum dns_parse_status
walk_sections(const uint8_t *pkt, size_t len, size_t off, const struct dns_request *req,
              size_t *opt_fixed, size_t *opt_end, bool *drop_opt)
{
    unsigned skip = (unsigned)req->ancount + req->nscount;
    size_t owner, fixed;
    uint16_t type;

    for (unsigned i = 0; i < skip; i++) {
        if (!skip_rr(pkt, len, &off, &owner, &type, &fixed))
            return DNS_PARSE_FORMERR;
    }
    for (unsigned i = 0; i < req->arcount; i++) {
        if (!skip_rr(pkt, len, &off, &owner, &type, &fixed))
            return DNS_PARSE_FORMERR; /* an OPT before still goes into the FORMERR */
        if (type != DNS_TYPE_OPT)
            continue; /* TSIG, SIG(0)...: not supported, ignored */
        if (*opt_fixed != 0 || fixed != owner + 1 || pkt[owner] != 0) {
            /* RFC 6891 §6.1.1: a second OPT, or an owner other than root */
            *drop_opt = true;
            return DNS_PARSE_FORMERR;
        }
        *opt_fixed = fixed;
        *opt_end = off;
    }
    return DNS_PARSE_OK;
}

enum dns_parse_status dns_wire_parse(const uint8_t *pkt, size_t len, struct dns_request *req)
{
    enum dns_parse_status st = DNS_PARSE_OK;
    size_t off = DNS_HEADER_LEN, opt_fixed = 0, opt_end = 0; /* 0: no OPT */
    bool drop_opt = false;

    /* Two clears of fixed size, each a few stores, where one of the whole
     * head (88 bytes) is a rep stos. */
    memset(req, 0, offsetof(struct dns_request, edns));
    memset(&req->edns, 0, sizeof(req->edns));
    if (len < DNS_HEADER_LEN)
        return DNS_PARSE_SHORT;
    req->id = rd16(pkt);
    req->flags = rd16(pkt + 2);
    req->opcode = (uint8_t)((req->flags >> 11) & 0x0F);
    req->qdcount = rd16(pkt + 4);
    req->ancount = rd16(pkt + 6);
    req->nscount = rd16(pkt + 8);
    req->arcount = rd16(pkt + 10);
    if (req->qdcount != 1)
        return DNS_PARSE_FORMERR;

    size_t n = dns_name_check_lower_hash(req->qname_lc, pkt + off, len - off, &req->qname_hash);
    if (n == 0 || len - off - n < 4)
        return DNS_PARSE_FORMERR;
    req->qname = pkt + off;
    req->qname_len = (uint8_t)n;
    off += n;
    req->qtype = rd16(pkt + off);
    req->qclass = rd16(pkt + off + 2);
    off += 4;
    req->has_question = true;

    /* The usual query: nothing but one OPT RR at root after the question. */
    if (req->ancount == 0 && req->nscount == 0 && req->arcount == 1 && len - off >= 11 &&
        pkt[off] == 0 && rd16(pkt + off + 1) == DNS_TYPE_OPT) {
        opt_fixed = off + 1;
        opt_end = off + 11 + rd16(pkt + off + 9);
        if (opt_end > len)
            return DNS_PARSE_FORMERR;
    } else {
        st = walk_sections(pkt, len, off, req, &opt_fixed, &opt_end, &drop_opt);
    }
    /* The OPT read once the walk is done, so that parse_opt() has one caller
     * and is inlined; as if read where it stands: a malformed OPT is FORMERR
     * with what it gave, before anything after it; a second OPT leaves none. */
    if (opt_fixed != 0 && !parse_opt(pkt, opt_fixed, opt_end, &req->edns))
        return DNS_PARSE_FORMERR;
    if (drop_opt)
        memset(&req->edns, 0, sizeof(req->edns));
    return st;
}

/* ---- writer ---- */

void dns_writer_init(struct dns_writer *w, uint8_t *buf, size_t cap)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    memset(w->counts, 0, sizeof(w->counts));
    w->comp_count = 0;
}

void dns_writer_set_cap(struct dns_writer *w, size_t cap)
{
    w->cap = cap < w->len ? w->len : cap;
}

struct dns_wmark dns_writer_mark(const struct dns_writer *w)
{
    struct dns_wmark m;

    m.len = w->len;
    memcpy(m.counts, w->counts, sizeof(m.counts));
    m.comp_count = w->comp_count;
    return m;
}

void dns_writer_rollback(struct dns_writer *w, struct dns_wmark m)
{
    w->len = m.len;
    memcpy(w->counts, m.counts, sizeof(w->counts));
    w->comp_count = m.comp_count;
}

static bool room(const struct dns_writer *w, size_t n)
{
    return w->len <= w->cap && w->cap - w->len >= n;
}

int dns_writer_header(struct dns_writer *w, uint16_t id, uint16_t flags, bool has_question)
{
    if (!room(w, DNS_HEADER_LEN))
        return CM_ENOSPC;
    uint8_t *h = w->buf + w->len;
    memset(h, 0, DNS_HEADER_LEN);
    wr16(h, id);
    wr16(h + 2, flags);
    wr16(h + 4, has_question ? 1 : 0);
    w->len += DNS_HEADER_LEN;
    return CM_OK;
}

void dns_writer_set_flags(struct dns_writer *w, uint16_t set, uint16_t clear)
{
    if (w->len < DNS_HEADER_LEN)
        return;
    uint16_t f = rd16(w->buf + 2);
    f = (uint16_t)((f & ~clear) | set);
    wr16(w->buf + 2, f);
}

void dns_writer_set_rcode(struct dns_writer *w, uint8_t rcode)
{
    dns_writer_set_flags(w, (uint16_t)(rcode & 0x0F), 0x000F);
}

/* Does the uncompressed name @a equal the (possibly compressed) name at @off? */
static bool name_at_equals(const struct dns_writer *w, const uint8_t *a, size_t off)
{
    unsigned hops = 0;

    for (;;) {
        if (off >= w->len)
            return false;
        uint8_t lb = w->buf[off];
        if ((lb & 0xC0) == 0xC0) {
            if (off + 1 >= w->len || ++hops > MAX_PTR_HOPS)
                return false;
            size_t target = (size_t)(lb & 0x3F) << 8 | w->buf[off + 1];
            if (target >= off)
                return false;
            off = target;
            continue;
        }
        if (*a != lb)
            return false;
        if (lb == 0)
            return true;
        if (w->len - off - 1 < lb)
            return false;
        for (size_t i = 1; i <= lb; i++) {
            if (dns_name_lower_char(a[i]) != dns_name_lower_char(w->buf[off + i]))
                return false;
        }
        a += 1u + lb;
        off += 1u + lb;
    }
}

/* Writes a valid uncompressed name, compressing it when @compress. Not atomic:
 * callers roll back on CM_ENOSPC. */
static int write_name(struct dns_writer *w, const uint8_t *name, bool compress)
{
    size_t pos = 0;

    while (name[pos] != 0) {
        if (compress) {
            for (unsigned k = 0; k < w->comp_count; k++) {
                if (!name_at_equals(w, name + pos, w->comp[k]))
                    continue;
                if (!room(w, 2))
                    return CM_ENOSPC;
                wr16(w->buf + w->len, (uint16_t)(0xC000u | w->comp[k]));
                w->len += 2;
                return CM_OK;
            }
        }
        uint8_t l = name[pos];
        if (!room(w, 1u + l))
            return CM_ENOSPC;
        if (w->len < 0x3FFF && w->comp_count < DNS_COMP_MAX)
            w->comp[w->comp_count++] = (uint16_t)w->len;
        memcpy(w->buf + w->len, name + pos, 1u + l);
        w->len += 1u + l;
        pos += 1u + l;
    }
    if (!room(w, 1))
        return CM_ENOSPC;
    w->buf[w->len++] = 0;
    return CM_OK;
}

static int write_bytes(struct dns_writer *w, const uint8_t *p, size_t n)
{
    if (!room(w, n))
        return CM_ENOSPC;
    if (n > 0)
        memcpy(w->buf + w->len, p, n);
    w->len += n;
    return CM_OK;
}

int dns_writer_question(struct dns_writer *w, const uint8_t *qname, size_t qname_len,
                        uint16_t qtype, uint16_t qclass)
{
    struct dns_wmark m = dns_writer_mark(w);
    uint8_t tail[4];
    int rc;

    if (dns_name_check(qname, qname_len) != qname_len)
        return CM_EINVAL;
    wr16(tail, qtype);
    wr16(tail + 2, qclass);
    rc = write_name(w, qname, false);
    if (rc == CM_OK)
        rc = write_bytes(w, tail, sizeof(tail));
    if (rc != CM_OK)
        dns_writer_rollback(w, m);
    return rc;
}

/* RDATA of one record, compressing the names of NS, CNAME, PTR, MX, SOA. */
static int write_rdata(struct dns_writer *w, uint16_t type, const uint8_t *p, size_t rdlen)
{
    size_t n1, n2;
    int rc;

    switch (type) {
    case DNS_TYPE_NS:
    case DNS_TYPE_CNAME:
    case DNS_TYPE_PTR:
        if (dns_name_check(p, rdlen) == rdlen)
            return write_name(w, p, true);
        break;
    case DNS_TYPE_MX:
        if (rdlen > 2 && dns_name_check(p + 2, rdlen - 2) == rdlen - 2) {
            rc = write_bytes(w, p, 2);
            return rc == CM_OK ? write_name(w, p + 2, true) : rc;
        }
        break;
    case DNS_TYPE_SOA:
        n1 = dns_name_check(p, rdlen);
        n2 = n1 == 0 ? 0 : dns_name_check(p + n1, rdlen - n1);
        if (n1 != 0 && n2 != 0 && n1 + n2 + 20 == rdlen) {
            rc = write_name(w, p, true);
            if (rc == CM_OK)
                rc = write_name(w, p + n1, true);
            return rc == CM_OK ? write_bytes(w, p + n1 + n2, 20) : rc;
        }
        break;
    default:
        break;
    }
    return write_bytes(w, p, rdlen);
}

int dns_writer_rrset(struct dns_writer *w, enum dns_section sec, const uint8_t *owner,
                     size_t owner_len, const struct dns_rrset *rs, uint32_t ttl)
{
    struct dns_wmark m = dns_writer_mark(w);
    const uint8_t *p = rs->rdata;
    size_t left = rs->rdata_len;
    int rc = CM_OK;

    if ((unsigned)sec > DNS_SEC_ADDITIONAL || dns_name_check(owner, owner_len) != owner_len ||
        (rs->count > 0 && rs->rdata == NULL) || (size_t)w->counts[sec] + rs->count > 0xFFFF)
        return CM_EINVAL;
    for (unsigned i = 0; i < rs->count && rc == CM_OK; i++) {
        if (left < 2 || left - 2 < rd16(p)) {
            rc = CM_EINVAL;
            break;
        }
        size_t rdlen = rd16(p);
        p += 2;
        left -= 2;
        rc = write_name(w, owner, true);
        if (rc != CM_OK)
            break;
        if (!room(w, 10)) {
            rc = CM_ENOSPC;
            break;
        }
        uint8_t *f = w->buf + w->len;
        wr16(f, rs->type);
        wr16(f + 2, rs->rclass);
        wr32(f + 4, ttl & 0x7FFFFFFFu); /* RFC 2181 §8 */
        w->len += 10;
        size_t start = w->len;
        rc = write_rdata(w, rs->type, p, rdlen);
        if (rc == CM_OK)
            wr16(f + 8, (uint16_t)(w->len - start));
        p += rdlen;
        left -= rdlen;
    }
    if (rc != CM_OK) {
        dns_writer_rollback(w, m);
        return rc;
    }
    w->counts[sec] = (uint16_t)(w->counts[sec] + rs->count);
    return CM_OK;
}

static size_t cookie_len(const struct dns_opt_out *o)
{
    return o->cookie != NULL && o->cookie_len <= DNS_COOKIE_MAX ? o->cookie_len : 0;
}

static size_t nsid_len(const struct dns_opt_out *o)
{
    return o->nsid != NULL && o->nsid_len <= DNS_NSID_MAX ? o->nsid_len : 0;
}

/* ECS address bytes echoed, or -1 for no ECS option. */
static int ecs_addr_len(const struct dns_opt_out *o)
{
    return o->ecs != NULL && o->ecs->present ? (int)((o->ecs->source_len + 7u) / 8u) : -1;
}

/* The OPT RR's length from its options' data lengths (-1 / 0: absent). */
static size_t opt_len(int ecs_addr, size_t cookie, size_t nsid)
{
    return 11 + (ecs_addr >= 0 ? 8u + (size_t)ecs_addr : 0) + (cookie > 0 ? 4 + cookie : 0) +
           (nsid > 0 ? 4 + nsid : 0);
}

size_t dns_writer_opt_len(const struct dns_opt_out *o)
{
    return opt_len(ecs_addr_len(o), cookie_len(o), nsid_len(o));
}

/* One option: code, length, data; returns the bytes written. */
static size_t put_option(uint8_t *p, uint16_t code, const uint8_t *data, size_t len)
{
    wr16(p, code);
    wr16(p + 2, (uint16_t)len);
    if (len > 0)
        memcpy(p + 4, data, len);
    return 4 + len;
}

size_t dns_wire_put_opt(uint8_t *o, size_t avail, const struct dns_opt_out *opt)
{
    int ecs_addr = ecs_addr_len(opt);
    size_t clen = cookie_len(opt), nlen = nsid_len(opt);
    size_t n = opt_len(ecs_addr, clen, nlen);
    size_t off = 11;

    if (n > avail)
        return 0;
    o[0] = 0; /* root owner */
    wr16(o + 1, DNS_TYPE_OPT);
    wr16(o + 3, opt->udp_size);
    wr32(o + 5, (uint32_t)((opt->ext_rcode >> 4) & 0xFF) << 24 | (opt->do_bit ? OPT_DO_BIT : 0));
    wr16(o + 9, (uint16_t)(n - 11));
    if (ecs_addr >= 0) {
        const struct dns_ecs *ecs = opt->ecs;
        wr16(o + off, DNS_EDNS_OPT_ECS);
        wr16(o + off + 2, (uint16_t)(4 + ecs_addr));
        wr16(o + off + 4, ecs->family);
        o[off + 6] = ecs->source_len;
        o[off + 7] = opt->ecs_scope;
        /* The whole zero-padded address when there is room: one fixed copy;
         * what lands past the option is overwritten next or past the end. */
        if (avail - off - 8 >= sizeof(ecs->addr))
            memcpy(o + off + 8, ecs->addr, sizeof(ecs->addr));
        else
            memcpy(o + off + 8, ecs->addr, (size_t)ecs_addr);
        off += 8 + (size_t)ecs_addr;
    }
    if (clen == DNS_COOKIE_CLIENT_LEN + 16) {
        /* the usual one, client cookie and one of ours: fixed-size copies */
        static const uint8_t head[4] = {DNS_EDNS_OPT_COOKIE >> 8, DNS_EDNS_OPT_COOKIE & 0xFF, 0,
                                        DNS_COOKIE_CLIENT_LEN + 16};
        memcpy(o + off, head, 4);
        memcpy(o + off + 4, opt->cookie, DNS_COOKIE_CLIENT_LEN + 16);
        off += 4 + DNS_COOKIE_CLIENT_LEN + 16;
    } else if (clen > 0) {
        off += put_option(o + off, DNS_EDNS_OPT_COOKIE, opt->cookie, clen);
    }
    if (nlen > 0)
        off += put_option(o + off, DNS_EDNS_OPT_NSID, opt->nsid, nlen);
    return off;
}

int dns_writer_opt(struct dns_writer *w, const struct dns_opt_out *opt)
{
    size_t n;

    if (w->len > w->cap || w->counts[DNS_SEC_ADDITIONAL] == 0xFFFF)
        return CM_ENOSPC;
    n = dns_wire_put_opt(w->buf + w->len, w->cap - w->len, opt);
    if (n == 0)
        return CM_ENOSPC;
    w->len += n;
    w->counts[DNS_SEC_ADDITIONAL]++;
    return CM_OK;
}

size_t dns_writer_finish(struct dns_writer *w)
{
    if (w->len < DNS_HEADER_LEN)
        return 0;
    wr16(w->buf + 6, w->counts[DNS_SEC_ANSWER]);
    wr16(w->buf + 8, w->counts[DNS_SEC_AUTHORITY]);
    wr16(w->buf + 10, w->counts[DNS_SEC_ADDITIONAL]);
    return w->len;
}

/* ---- RDATA helpers ---- */

void dns_rrset_targets(const struct dns_rrset *rs, dns_rdata_name_fn *fn, void *arg)
{
    size_t skip;

    if (rs->type == DNS_TYPE_NS)
        skip = 0;
    else if (rs->type == DNS_TYPE_MX)
        skip = 2;
    else
        return;
    const uint8_t *p = rs->rdata;
    size_t left = rs->rdata_len;
    for (unsigned i = 0; i < rs->count; i++) {
        if (left < 2 || left - 2 < rd16(p))
            return;
        size_t rdlen = rd16(p);
        if (rdlen > skip) {
            size_t n = dns_name_check(p + 2 + skip, rdlen - skip);
            if (n == rdlen - skip)
                fn(p + 2 + skip, n, arg);
        }
        p += 2 + rdlen;
        left -= 2 + rdlen;
    }
}

size_t dns_rrset_cname_target(const struct dns_rrset *rs, const uint8_t **name)
{
    if (rs->count < 1 || rs->rdata_len < 2 || rs->rdata == NULL)
        return 0;
    size_t rdlen = rd16(rs->rdata);
    if (rdlen > (size_t)rs->rdata_len - 2)
        return 0;
    size_t n = dns_name_check(rs->rdata + 2, rdlen);
    if (n != rdlen)
        return 0;
    *name = rs->rdata + 2;
    return n;
}
