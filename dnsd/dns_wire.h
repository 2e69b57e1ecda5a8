/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_wire.h -- the query path's own DNS wire reader and response writer.
 *
 * Pure code: bytes in, bytes out, no allocation, no I/O (ldns allocates per
 * packet, so it is used only at load time and in tests).
 *
 * Reader: dns_wire_parse() checks a query completely before anything is
 * looked up: the header, exactly one question whose name is read without
 * compression (label <= 63, name <= 255), the answer and authority sections
 * skipped with bounds checks, and the additional section scanned for one OPT
 * RR (RFC 6891) with its EDNS Client Subnet (RFC 7871 §6), COOKIE (RFC 7873
 * §4: 8 or 16..40 bytes, else FORMERR) and NSID (RFC 5001) options. A second
 * ECS or COOKIE option is FORMERR, as a second OPT is: which one to believe is
 * not ours to guess.
 *
 * Writer: struct dns_writer writes a response into a caller's buffer with a
 * hard cap. Names are compressed against the names already written (a small
 * fixed table of offsets): owner names usually become a pointer to the
 * question at offset 12. Inside RDATA only NS, CNAME, PTR, MX and SOA names
 * are compressed (RFC 3597 §4). Every write either completes or leaves the
 * buffer as it was; a mark/rollback pair undoes several writes at once, which
 * is how an answer that does not fit becomes TC=1.
 *
 *   buf: | header 12 | question | answer RRs | authority RRs | additional | OPT |
 *          ^counts patched by dns_writer_finish()
 */
#ifndef DNSD_DNS_WIRE_H
#define DNSD_DNS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "dnsd/dns_name.h"
#include "dnsd/dns_rrset.h"

#define DNS_HEADER_LEN        12
#define DNS_UDP_MIN           512 /* RFC 1035 §4.2.1 */
#define DNS_EDNS_OPT_ECS      8   /* RFC 7871 */
#define DNS_EDNS_OPT_NSID     3   /* RFC 5001 */
#define DNS_EDNS_OPT_COOKIE   10  /* RFC 7873 */
#define DNS_COOKIE_CLIENT_LEN 8
#define DNS_COOKIE_SERVER_MIN 8
#define DNS_COOKIE_SERVER_MAX 32
#define DNS_COOKIE_MAX        (DNS_COOKIE_CLIENT_LEN + DNS_COOKIE_SERVER_MAX)
#define DNS_NSID_MAX          128 /* longest NSID payload we send (dnsd.nsid) */
#define DNS_TYPE_DS           43

/* Header flag bits (second and third header bytes as one 16-bit word). */
#define DNS_FLAG_QR 0x8000u
#define DNS_FLAG_AA 0x0400u
#define DNS_FLAG_TC 0x0200u
#define DNS_FLAG_RD 0x0100u
#define DNS_FLAG_RA 0x0080u
#define DNS_FLAG_AD 0x0020u
#define DNS_FLAG_CD 0x0010u

enum dns_rcode {
    DNS_RCODE_NOERROR = 0,
    DNS_RCODE_FORMERR = 1,
    DNS_RCODE_SERVFAIL = 2,
    DNS_RCODE_NXDOMAIN = 3,
    DNS_RCODE_NOTIMP = 4,
    DNS_RCODE_REFUSED = 5,
    DNS_RCODE_BADVERS = 16,   /* extended: needs an OPT RR */
    DNS_RCODE_BADCOOKIE = 23, /* extended (RFC 7873 §8) */
};

enum dns_opcode {
    DNS_OPCODE_QUERY = 0,
};

enum dns_section {
    DNS_SEC_ANSWER = 0,
    DNS_SEC_AUTHORITY = 1,
    DNS_SEC_ADDITIONAL = 2,
};

enum dns_parse_status {
    DNS_PARSE_OK = 0,      /* everything checked */
    DNS_PARSE_SHORT = 1,   /* shorter than a header: drop */
    DNS_PARSE_FORMERR = 2, /* malformed: answer FORMERR; see has_question / edns.present */
};

/* EDNS Client Subnet as received (RFC 7871 §6); valid when present. */
struct dns_ecs {
    bool present;
    uint16_t family;    /* 1 = IPv4, 2 = IPv6 */
    uint8_t source_len; /* SOURCE PREFIX-LENGTH, <= 32 / 128 */
    uint8_t scope_len;  /* always 0 in a valid query */
    uint8_t addr[16];   /* the address, zero-padded beyond source_len */
};

/* COOKIE as received (RFC 7873 §4): a client cookie (8 bytes), then possibly
 * a server cookie (8..32 bytes); any other length is FORMERR. */
struct dns_cookie {
    bool present;
    uint8_t len;         /* 8, or 16..40 */
    const uint8_t *data; /* client cookie, then server cookie: in the packet (borrowed) */
};

struct dns_edns {
    bool present;      /* one valid OPT RR at root was read */
    uint16_t udp_size; /* requestor's payload size (as sent, may be < 512) */
    uint8_t ext_rcode; /* upper 8 bits of the extended rcode */
    uint8_t version;
    bool do_bit;
    bool nsid; /* an empty NSID option asks for our NSID (RFC 5001 §2.1) */
    struct dns_ecs ecs;
    struct dns_cookie cookie;
};

/* A parsed query. Pointers borrow from the packet given to dns_wire_parse().
 * qname_lc comes last: dns_wire_parse() clears everything before it and
 * writes only the qname_len bytes of it that hold the name. */
struct dns_request {
    uint16_t id;
    uint16_t flags; /* header bytes 2-3 */
    uint8_t opcode;
    uint16_t qdcount, ancount, nscount, arcount;
    bool has_question;    /* the question was read and is valid */
    const uint8_t *qname; /* original case, uncompressed, in the packet */
    uint8_t qname_len;    /* bytes, root label included */
    uint16_t qtype;
    uint16_t qclass;
    uint32_t qname_hash; /* dns_name_hash() of qname_lc */
    struct dns_edns edns;
    uint8_t qname_lc[DNS_NAME_MAX]; /* lowercased copy, for lookups (qname_len bytes) */
};

/**
 * Parses @pkt (@len bytes). Fills @req as far as it got: has_question and
 * edns.present say which parts are valid even when FORMERR is returned.
 * Never reads outside @pkt.
 */
enum dns_parse_status dns_wire_parse(const uint8_t *pkt, size_t len, struct dns_request *req);

/* Response writer. Fields are private to dns_wire.c: use the functions. */
#define DNS_COMP_MAX 64

struct dns_writer {
    uint8_t *buf;                /* borrowed response buffer */
    size_t cap;                  /* writes never go past buf + cap */
    size_t len;                  /* bytes written */
    uint16_t counts[3];          /* RRs per section (answer, authority, additional) */
    uint8_t comp_count;          /* entries used in comp[] */
    uint16_t comp[DNS_COMP_MAX]; /* offsets of labels written, for compression */
};

struct dns_wmark {
    size_t len;
    uint16_t counts[3];
    uint8_t comp_count;
};

/** Starts a response in @buf (@cap bytes). */
void dns_writer_init(struct dns_writer *w, uint8_t *buf, size_t cap);

/** Changes the cap, e.g. to keep room for the OPT RR; never above the real buffer size. */
void dns_writer_set_cap(struct dns_writer *w, size_t cap);

/**
 * Writes the 12-byte header with zero counts (QDCOUNT from @has_question).
 * CM_ENOSPC if it does not fit.
 */
int dns_writer_header(struct dns_writer *w, uint16_t id, uint16_t flags, bool has_question);

/** Sets or clears header flag bits (already written header). */
void dns_writer_set_flags(struct dns_writer *w, uint16_t set, uint16_t clear);
/** Sets the 4-bit RCODE in the header. */
void dns_writer_set_rcode(struct dns_writer *w, uint8_t rcode);

/** Writes the question (name as given, uncompressed) right after the header. */
int dns_writer_question(struct dns_writer *w, const uint8_t *qname, size_t qname_len,
                        uint16_t qtype, uint16_t qclass);

/**
 * Writes every record of @rs into @sec with owner @owner (wire name, any case,
 * compressed when possible) and TTL @ttl. All or nothing: CM_ENOSPC leaves
 * the writer unchanged.
 */
int dns_writer_rrset(struct dns_writer *w, enum dns_section sec, const uint8_t *owner,
                     size_t owner_len, const struct dns_rrset *rs, uint32_t ttl);

/* What a response's OPT RR carries. Pointers are borrowed for the call. */
struct dns_opt_out {
    uint16_t udp_size;         /* our payload size */
    uint16_t ext_rcode;        /* its upper 8 bits go in the OPT TTL */
    bool do_bit;               /* echoed */
    const struct dns_ecs *ecs; /* echoed with ecs_scope when non-NULL and present */
    uint8_t ecs_scope;
    const uint8_t *cookie; /* COOKIE option data (client | server cookie), NULL: none */
    uint8_t cookie_len;    /* <= DNS_COOKIE_MAX */
    const uint8_t *nsid;   /* NSID option data, NULL: none */
    uint16_t nsid_len;     /* <= DNS_NSID_MAX */
};

/**
 * Writes an OPT RR into the additional section: udp_size, the upper bits of
 * ext_rcode, version 0, DO, then the ECS, COOKIE and NSID options that @o
 * names. CM_ENOSPC leaves the writer unchanged.
 */
int dns_writer_opt(struct dns_writer *w, const struct dns_opt_out *o);

/**
 * The same OPT RR written at @p, for a caller that builds the message
 * itself (the precompiled path): its length, or 0 when it needs more than
 * @room bytes. The caller counts it in ARCOUNT.
 */
size_t dns_wire_put_opt(uint8_t *p, size_t room, const struct dns_opt_out *o);

/**
 * dns_wire_put_opt() for the usual response OPT: the query's ECS option
 * echoed with @scope when @ecs is present, no COOKIE, no NSID, extended
 * RCODE 0. The same bytes (test_dns_wire checks every prefix length), written
 * without a struct dns_opt_out and the general length arithmetic: inline
 * because the precompiled path writes one per answer, where the general
 * writer and its setup cost about 100 instructions. @ecs->source_len must be
 * a parsed one (<= 128). Its length, or 0 when it needs more than @room bytes.
 */
static inline size_t dns_wire_put_opt_usual(uint8_t *p, size_t room, uint16_t udp_size, bool do_bit,
                                            const struct dns_ecs *ecs, uint8_t scope)
{
    /* root owner, TYPE OPT, CLASS (patched), TTL 0 (DO patched), RDLENGTH
     * (patched), then the ECS option's code, length (patched) and family */
    static const uint8_t head[19] = {0, 0, DNS_TYPE_OPT,     0, 0, 0, 0, 0, 0, 0,
                                     0, 0, DNS_EDNS_OPT_ECS, 0, 0, 0, 0, 0, 0};

    if (!ecs->present) {
        if (room < 11)
            return 0;
        memcpy(p, head, 11);
        p[3] = (uint8_t)(udp_size >> 8);
        p[4] = (uint8_t)udp_size;
        p[7] = do_bit ? 0x80 : 0;
        return 11;
    }
    size_t addr_len = (ecs->source_len + 7u) / 8u;
    if (19 + addr_len > room)
        return 0;
    memcpy(p, head, sizeof(head));
    p[3] = (uint8_t)(udp_size >> 8);
    p[4] = (uint8_t)udp_size;
    p[7] = do_bit ? 0x80 : 0;
    p[10] = (uint8_t)(8 + addr_len);
    p[14] = (uint8_t)(4 + addr_len);
    p[15] = (uint8_t)(ecs->family >> 8);
    p[16] = (uint8_t)ecs->family;
    p[17] = ecs->source_len;
    p[18] = scope;
    /* The whole zero-padded address when there is room: one fixed copy; what
     * lands past the option is overwritten next or lies past the message. */
    if (room - 19 >= sizeof(ecs->addr))
        memcpy(p + 19, ecs->addr, sizeof(ecs->addr));
    else
        memcpy(p + 19, ecs->addr, addr_len);
    return 19 + addr_len;
}

/** Bytes dns_writer_opt() needs for @o. */
size_t dns_writer_opt_len(const struct dns_opt_out *o);

struct dns_wmark dns_writer_mark(const struct dns_writer *w);
void dns_writer_rollback(struct dns_writer *w, struct dns_wmark m);

/** Patches the section counts into the header; returns the message length. */
size_t dns_writer_finish(struct dns_writer *w);

/**
 * Calls @fn for each domain name inside the RDATA of the records of @rs that
 * is a target for additional-section processing (NS: the host, MX: the
 * exchange). Names are uncompressed wire form, borrowed from @rs.
 */
typedef void dns_rdata_name_fn(const uint8_t *name, size_t len, void *arg);
void dns_rrset_targets(const struct dns_rrset *rs, dns_rdata_name_fn *fn, void *arg);

/** The first domain name in a CNAME rrset's RDATA; its length or 0. */
size_t dns_rrset_cname_target(const struct dns_rrset *rs, const uint8_t **name);

#endif /* DNSD_DNS_WIRE_H */
