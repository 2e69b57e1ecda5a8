/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_query.h -- answering one query: bytes in, bytes out, no I/O.
 *
 * The transport glue (dns_server) hands over the request and a response
 * buffer; this module parses with the dns_wire reader, decides, and writes the
 * response with the dns_wire writer, using only the view and the stack: no
 * allocation, no locks, no system calls. Tests and fuzzers drive it with
 * byte arrays.
 *
 * Behaviour (RFC 1034/1035, 2308, 6891, 7766, 7871, 8482, 8020):
 *  - responses (QR=1) and packets shorter than a header: dropped (return 0);
 *  - QDCOUNT != 1, malformed question or OPT: FORMERR (OPT echoed if parsed);
 *  - opcode other than QUERY: NOTIMP; EDNS version > 0: BADVERS;
 *  - outside the zone or class not IN: REFUSED; AXFR/IXFR: REFUSED (we do not
 *    transfer) ; in zone: AA, answer / CNAME chain / NODATA / NXDOMAIN with the
 *    SOA in authority (negative TTL per RFC 2308), referral below a cut;
 *  - ANY: one RRset (RFC 8482 §4.2), never the whole node;
 *  - the question is echoed with its original letter case;
 *  - UDP: at most the client's EDNS size (min 512, max dnsd.max_udp_size),
 *    TC=1 when the answer does not fit; TCP: up to 65535;
 *  - EDNS Client Subnet: used for location when dnsd.ecs, echoed with a
 *    SCOPE PREFIX-LENGTH: the bits that decide the records written (region:
 *    cm_lpm scope, longer than the source when the source covers networks of
 *    other regions; tied members: the /24 or /56 hash), 0 for answers that
 *    hold for every client (static data, uniform names, NODATA, NXDOMAIN);
 *  - COOKIE (RFC 7873, RFC 9018 server cookies) with dnsd.cookies: a server
 *    cookie in every response to a query with a client cookie, the one sent
 *    back while ours and at most half an hour old (RFC 9018 §4.3), else a
 *    new one; a malformed option is FORMERR; BADCOOKIE over UDP under
 *    cookies.require;
 *  - NSID (RFC 5001): dnsd.nsid, when the query has an empty NSID option;
 *  - replies to opcodes other than QUERY carry ID, QR and opcode only.
 */
#ifndef DNSD_DNS_QUERY_H
#define DNSD_DNS_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dnsd/dns_rrl.h"

struct dns_cookie_memo;
struct dns_view;

/* What happened, for the caller's metrics. */
struct dns_query_info {
    uint16_t qtype;    /* 0 when no question was parsed */
    uint8_t rcode;     /* extended rcode (BADVERS = 16) */
    bool tc;           /* truncated */
    bool ecs;          /* an ECS option was present and used */
    bool cookie_valid; /* a client cookie with a valid server cookie of ours (RFC 7873,
                          RFC 9018): the source address is proven (RRL exempts it) */
    bool federated;    /* answered from the federated table */
    bool fail_open;    /* the answer failed open */
    bool fail_closed;  /* the answer failed closed (NODATA by policy) */
    int service;       /* federated service index, -1 otherwise */
    int member;        /* conf member index answered, -1 when none or several */
    unsigned region;   /* client region used */
    /* Response rate limiting: the response's class and the name its bucket
     * is keyed by (dns_rrl.h), borrowed from the request packet or the view;
     * valid while both are. NULL/0 for DNS_RRL_ERROR. */
    enum dns_rrl_class rrl_class;
    const uint8_t *rrl_name;
    size_t rrl_name_len;
    uint32_t rrl_name_hash; /* dns_name_hash() of rrl_name lowercased (dns_rrl_check_hashed) */
    uint8_t placement;      /* enum dns_place_source that placed the client (answers only) */
    bool precompiled;       /* the sections were copied from precompiled parts (dns_pre.h) */
    bool uncacheable;       /* the response depends on more than the view, the client's
                               address and the query's bytes after its ID: a DNS cookie was
                               checked or made (the clock, the memo); dns_pcache.h */
};

/**
 * Answers @req (@req_len bytes) from @client over UDP (@tcp false) or TCP.
 * Writes the response into @resp (@resp_cap bytes, at least 512; 65535 for
 * TCP) and returns its length, or 0 when nothing must be sent. @now_s is the
 * wall clock in seconds since the epoch (DNS cookie timestamps, RFC 9018),
 * read by the caller so that this function makes no system call.
 */
size_t dns_query_process(const struct dns_view *view, const uint8_t *req, size_t req_len,
                         uint8_t *resp, size_t resp_cap, const struct sockaddr *client, bool tcp,
                         struct dns_query_info *info, uint32_t now_s);

/**
 * The same, with the calling worker's cookie memo (dns_cookie.h; NULL: none),
 * which this call may update: one memo per thread.
 */
size_t dns_query_process_memo(const struct dns_view *view, struct dns_cookie_memo *memo,
                              const uint8_t *req, size_t req_len, uint8_t *resp, size_t resp_cap,
                              const struct sockaddr *client, bool tcp, struct dns_query_info *info,
                              uint32_t now_s);

/** Client location as the query path computes it, for /v1/explain. */
struct dns_client_loc {
    unsigned region;      /* region index */
    uint32_t client_hash; /* subnet hash used to pick among tied members */
    uint8_t scope_len;    /* max(region_scope, subnet_scope) */
    uint8_t region_scope; /* bits that decide the region (cm_lpm scope_len; may
                             exceed an ECS source prefix shorter than the
                             client_networks inside it) */
    uint8_t subnet_scope; /* bits the subnet hash reads: 24 (IPv4) / 56 (IPv6) */
    const char *how;      /* static text: "ecs client_networks", "source address
                             client_networks", "ecs geoip", "source address geoip",
                             "dnsd.region default" */
    uint8_t source;       /* enum dns_place_source: what placed the client */
    uint8_t matched_len;  /* the prefix that placed it (client network or database) */
    uint32_t value;       /* its LPM value (dns_geo_describe explains it) */
};

/**
 * Locates a client from its address (@family AF_INET/AF_INET6, raw bytes) and
 * the number of significant bits (32/128, or an ECS source prefix length).
 * An IPv4-mapped IPv6 address (::ffff:0:0/96, with at least 96 bits) is
 * located as the IPv4 address it carries.
 */
void dns_query_locate(const struct dns_view *view, int family, const uint8_t *addr,
                      unsigned addr_bits, bool from_ecs, struct dns_client_loc *loc);

#endif /* DNSD_DNS_QUERY_H */
