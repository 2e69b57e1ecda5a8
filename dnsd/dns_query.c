/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_query.c -- one query in, one response out (see dns_query.h).
 *
 * Flow: parse (dns_wire) -> fixed refusals and errors -> locate the client
 * -> resolve: federated table first, then the static zone, following CNAMEs
 * within the zone -> additional data -> OPT. The answer and authority
 * sections are written under a cap that keeps room for the OPT RR; if they
 * do not fit, they are rolled back and TC is set. Additional data is best
 * effort, except in-domain glue in a referral (RFC 9471).
 *
 * Everything lives on the stack: no allocation, no locks, no system calls.
 */
#include "dnsd/dns_query.h"

#include <endian.h>
#include <netinet/in.h>
#include <string.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_hash.h"
#include "common/cm_lpm.h"
#include "dnsd/dns_cookie.h"
#include "dnsd/dns_fed.h"
#include "dnsd/dns_geo.h"
#include "dnsd/dns_name.h"
#include "dnsd/dns_pre.h"
#include "dnsd/dns_view.h"
#include "dnsd/dns_wire.h"
#include "dnsd/dns_zone.h"

#define MAX_CNAME_HOPS 8
#define HASH_BITS_V4   24
#define HASH_BITS_V6   56
#define TCP_MAX        65535
#define TYPE_TKEY      249
#define TYPE_TSIG      250
#define MAX_ADDITIONAL 16
#define OPCODE_MASK    0x7800u
#define REQ_FLAGS_KEPT (OPCODE_MASK | DNS_FLAG_RD | DNS_FLAG_CD) /* opcode, RD, CD */

enum step_result {
    STEP_DONE = 0,  /* the answer is complete */
    STEP_CHASE = 1, /* a CNAME was written: continue with its target */
    STEP_FULL = 2,  /* answer or authority did not fit: truncate */
};

/* What subnet_hash() reads for a client: kept by locate(), so that the query
 * path hashes only for an answer that depends on the hash (tied members). */
struct hash_src {
    int family;
    const uint8_t *addr; /* borrowed: the query's ECS or the client's address */
    unsigned bits;
};

struct qctx {
    const struct dns_view *view;
    struct dns_cookie_memo *memo; /* the worker's, or NULL */
    const uint8_t *pkt;           /* the query as received (borrowed) */
    const struct dns_request *req;
    uint16_t max_udp; /* view->max_udp */
    bool ecs_on;      /* view->ecs */
    uint16_t qtype;   /* the question's type; A once ANY meets a federated name */
    struct dns_query_info *info;
    struct dns_writer w;
    struct dns_client_loc loc; /* client_hash: see hash_known; how unset (NULL) */
    struct hash_src hash_src;
    bool hash_known;       /* loc.client_hash is set; else client_hash() makes it */
    uint16_t flags;        /* flags to set in the header at the end */
    uint8_t rcode;         /* extended rcode */
    bool region_dependent; /* a record written depends on the client's region */
    bool subnet_dependent; /* a record written depends on the client's subnet hash */
    const uint8_t *next;   /* CNAME target after STEP_CHASE, borrowed */
    size_t next_len;
    const struct dns_node *added[MAX_ADDITIONAL]; /* nodes already in additional */
    unsigned added_count;
    uint8_t cookie[DNS_COOKIE_CLIENT_LEN + DNS_COOKIE_OURS_LEN]; /* COOKIE to send */
    uint8_t cookie_len;                                          /* 0: none */
    bool nsid;                                                   /* send our NSID */
    /* The question's zone lookup, made by the precompiled path when the
     * table does not hold the name; step() at hop 0 takes it from here. */
    bool zone0_known;
    enum dns_zone_match zone0;
    const struct dns_node *zone0_node;
};

static size_t response_limit(uint16_t our_max, const struct dns_request *req, size_t resp_cap,
                             bool tcp)
{
    size_t limit;

    if (tcp) {
        limit = TCP_MAX;
    } else if (req->edns.present) {
        limit = req->edns.udp_size < our_max ? req->edns.udp_size : our_max;
        if (limit < DNS_UDP_MIN)
            limit = DNS_UDP_MIN;
    } else {
        limit = DNS_UDP_MIN;
    }
    return limit < resp_cap ? limit : resp_cap;
}

/* ---- client location ---- */

static uint32_t subnet_hash(int family, const uint8_t *addr, unsigned bits)
{
    /* The masked prefix (at most HASH_BITS_V6 = 56 bits) as one word, the
     * family and bit count in its top byte, through murmur3's 64-bit finalizer. */
    unsigned bytes = (bits + 7) / 8;
    uint64_t v = 0;

    /* The first bytes as one big-endian load: an IPv4 address has 4 bytes,
     * an IPv6 one 16, wherever it comes from (ECS, socket, v4-mapped tail). */
    if (bytes == 0) {
        v = 0;
    } else if (family == AF_INET && bytes <= 4) {
        uint32_t w;
        memcpy(&w, addr, 4);
        v = be32toh(w) >> (32 - 8 * bytes);
    } else if (family != AF_INET && bytes <= 8) {
        uint64_t w;
        memcpy(&w, addr, 8);
        v = be64toh(w) >> (64 - 8 * bytes);
    } else {
        for (unsigned i = 0; i < bytes; i++)
            v = v << 8 | addr[i];
    }
    if (bits % 8 != 0)
        v &= ~(uint64_t)0 << (8 - bits % 8);
    v |= (uint64_t)((family == AF_INET ? 0x80u : 0u) | bits) << 56;
    return (uint32_t)cm_fmix64(v);
}

/*
 * dns_query_locate() but for the hash, whose input goes to @hs, and for
 * loc->how (left alone: only the explanation reads it). True when the
 * client lookup placed the client. Always inlined: in the query path its
 * call and saved registers cost ~25 instructions, a fifth of what it does.
 */
static inline __attribute__((always_inline)) bool locate(const struct dns_view *view, int family,
                                                         const uint8_t *addr, unsigned addr_bits,
                                                         struct dns_client_loc *loc,
                                                         struct hash_src *hs)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    struct cm_lpm_result res;
    unsigned max_bits, hash_bits, extra = 0;
    bool placed = false;

    memset(&res, 0, sizeof(res));
    if (family == AF_INET6 && addr_bits >= 96 && memcmp(addr, v4mapped, 12) == 0) {
        family = AF_INET; /* scopes are given back in IPv6 bits (extra) */
        addr += 12;
        addr_bits -= 96;
        extra = 96;
    }
    max_bits = family == AF_INET ? 32 : 128;
    hash_bits = family == AF_INET ? HASH_BITS_V4 : HASH_BITS_V6;
    if (addr_bits > max_bits)
        addr_bits = max_bits;
    loc->region = view->default_region;
    loc->source = DNS_PLACE_DEFAULT;
    loc->matched_len = 0;
    loc->value = 0;
    if (view->lpm != NULL && cm_lpm_lookup(view->lpm, family, addr, addr_bits, &res)) {
        uint32_t region = res.value;
        uint8_t source = DNS_PLACE_CLIENT_NETWORKS;

        if ((res.value & DNS_GEO_REGION_BIT) != 0) { /* folded (dns_geo.h) */
            region = res.value & DNS_GEO_REGION_MAX;
            source = (uint8_t)(res.value >> 16);
        } else if ((res.value & DNS_GEO_PLACE_BIT) != 0) {
            uint32_t i = res.value & ~DNS_GEO_PLACE_BIT;
            bool ok = view->geo != NULL && i < view->geo->place_count;
            region = ok ? view->geo->places[i].region : UINT32_MAX;
            source = ok ? view->geo->places[i].source : DNS_PLACE_DEFAULT;
        }
        if (view->conf == NULL || region < view->conf->region_count) {
            loc->region = region;
            loc->source = source;
            loc->matched_len = res.matched_len;
            loc->value = res.value;
            placed = true;
        }
    }
    /* lpm scope: how many bits decide the region; more than addr_bits when
     * the ECS source prefix covers networks of other regions (cm_lpm.h). */
    loc->region_scope = res.scope_len;
    /* The hash reads hash_bits bits (fewer if that is all we have); a shorter
     * source still says hash_bits, so that resolvers keep such an answer to
     * clients who send as few bits (RFC 7871 §7.3.1) and do not hand it to
     * other subnets, which would hash elsewhere. */
    loc->subnet_scope = (uint8_t)hash_bits;
    hs->family = family;
    hs->addr = addr;
    hs->bits = hash_bits < addr_bits ? hash_bits : addr_bits;
    loc->scope_len = loc->region_scope > loc->subnet_scope ? loc->region_scope : loc->subnet_scope;
    if (extra != 0) {
        loc->region_scope = (uint8_t)(loc->region_scope + extra);
        loc->subnet_scope = (uint8_t)(loc->subnet_scope + extra);
        loc->scope_len = (uint8_t)(loc->scope_len + extra);
    }
    return placed;
}

void dns_query_locate(const struct dns_view *view, int family, const uint8_t *addr,
                      unsigned addr_bits, bool from_ecs, struct dns_client_loc *loc)
{
    struct hash_src hs;

    if (!locate(view, family, addr, addr_bits, loc, &hs))
        loc->how = "dnsd.region default";
    else if (loc->source == DNS_PLACE_CLIENT_NETWORKS)
        loc->how = from_ecs ? "ecs client_networks" : "source address client_networks";
    else
        loc->how = from_ecs ? "ecs geoip" : "source address geoip";
    loc->client_hash = subnet_hash(hs.family, hs.addr, hs.bits);
}

/*
 * Starts loading the client lookup's table entry for the address
 * locate_client() will use, so that on a large (GeoIP) table its cache miss
 * overlaps the checks that come before. Only a table with a direct table is
 * large; for a small one the checks and the call would cost ~20 instructions
 * per query for nothing.
 */
static void prefetch_location(const struct dns_view *view, bool ecs_on, const struct dns_request *r,
                              const struct sockaddr *client)
{
    const struct dns_ecs *ecs = &r->edns.ecs;

    if (!view->lpm_direct)
        return;
    if (ecs->present && ecs_on && ecs->source_len > 0 && ecs->family == 1)
        cm_lpm_prefetch(view->lpm, AF_INET, ecs->addr, ecs->source_len);
    else if (!ecs->present && client != NULL && client->sa_family == AF_INET)
        cm_lpm_prefetch(
            view->lpm, AF_INET,
            (const uint8_t *)&((const struct sockaddr_in *)(const void *)client)->sin_addr, 32);
}

static void locate_client(struct qctx *q, const struct sockaddr *client)
{
    const struct dns_ecs *ecs = &q->req->edns.ecs;
    int family;
    const uint8_t *addr;
    unsigned bits;

    q->hash_known = false;
    /* One call of locate(), so that it is inlined here. */
    if (ecs->present && q->ecs_on && ecs->source_len > 0) {
        family = ecs->family == 1 ? AF_INET : AF_INET6;
        addr = ecs->addr;
        bits = ecs->source_len;
        q->info->ecs = true;
    } else if (client != NULL && client->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)client;
        family = AF_INET;
        addr = (const uint8_t *)&sin->sin_addr;
        bits = 32;
    } else if (client != NULL && client->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)client;
        /* an IPv4-mapped source is the IPv4 address, its scopes in IPv4 bits */
        bool mapped = IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr);
        family = mapped ? AF_INET : AF_INET6;
        addr = sin6->sin6_addr.s6_addr + (mapped ? 12 : 0);
        bits = mapped ? 32 : 128;
    } else {
        q->loc.region = q->view->default_region;
        q->loc.client_hash = 0;
        q->hash_known = true;
        q->loc.scope_len = 0;
        q->loc.region_scope = 0;
        q->loc.subnet_scope = 0;
        q->loc.source = DNS_PLACE_DEFAULT;
        return;
    }
    (void)locate(q->view, family, addr, bits, &q->loc, &q->hash_src);
}

/* The client's subnet hash (dns_client_loc.client_hash), made when first asked. */
static uint32_t client_hash(struct qctx *q)
{
    if (!q->hash_known) {
        q->loc.client_hash = subnet_hash(q->hash_src.family, q->hash_src.addr, q->hash_src.bits);
        q->hash_known = true;
    }
    return q->loc.client_hash;
}

/* ---- answer pieces ---- */

static int put(struct qctx *q, enum dns_section sec, const uint8_t *owner, size_t owner_len,
               const struct dns_rrset *rs, uint32_t ttl)
{
    return dns_writer_rrset(&q->w, sec, owner, owner_len, rs, ttl);
}

/* NODATA or NXDOMAIN: the apex SOA in authority with the negative TTL (RFC 2308 §3). */
static enum step_result negative(struct qctx *q, uint8_t rcode, uint32_t ttl)
{
    const struct dns_node *apex = dns_zone_apex(q->view->zone);

    q->rcode = rcode;
    q->flags |= DNS_FLAG_AA;
    if (put(q, DNS_SEC_AUTHORITY, apex->name, apex->name_len, dns_zone_soa(q->view->zone), ttl) !=
        CM_OK)
        return STEP_FULL;
    return STEP_DONE;
}

/* Adds the A and AAAA RRsets of @node to the additional section; false if one
 * did not fit (it is then left out). */
static bool add_addresses(struct qctx *q, const struct dns_node *node, const uint8_t *name,
                          size_t len)
{
    static const uint16_t types[] = {DNS_TYPE_A, DNS_TYPE_AAAA};
    bool all = true;

    for (unsigned i = 0; i < q->added_count; i++) {
        if (q->added[i] == node)
            return true; /* two NS/MX names for one host: its addresses once */
    }
    if (q->added_count < MAX_ADDITIONAL)
        q->added[q->added_count++] = node;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        const struct dns_rrset *rs = dns_node_rrset(node, types[i]);
        if (rs != NULL && put(q, DNS_SEC_ADDITIONAL, name, len, rs, rs->ttl) != CM_OK)
            all = false;
    }
    return all;
}

/* Additional-section processing for NS and MX targets in the zone. */
static void additional_cb(const uint8_t *name, size_t len, void *arg)
{
    struct qctx *q = arg;
    uint8_t lc[DNS_NAME_MAX];
    const struct dns_node *node;

    dns_name_lower(lc, name, len);
    if (dns_zone_find(q->view->zone, lc, len, &node) == DNS_ZONE_FOUND)
        (void)add_addresses(q, node, name, len);
}

struct glue_ctx {
    struct qctx *q;
    const struct dns_node *cut;
    bool missing; /* in-domain glue that did not fit */
};

static void glue_cb(const uint8_t *name, size_t len, void *arg)
{
    struct glue_ctx *g = arg;
    uint8_t lc[DNS_NAME_MAX];
    const struct dns_node *node;

    dns_name_lower(lc, name, len);
    node = dns_zone_lookup_exact(g->q->view->zone, lc, len);
    if (node == NULL)
        return;
    if (!add_addresses(g->q, node, name, len) &&
        dns_name_is_under(lc, len, g->cut->name, g->cut->name_len))
        g->missing = true;
}

/* A referral to the zone cut @cut: NS in authority, glue in additional. */
static enum step_result referral(struct qctx *q, const struct dns_node *cut)
{
    const struct dns_rrset *ns = dns_node_rrset(cut, DNS_TYPE_NS);
    struct glue_ctx g = {.q = q, .cut = cut, .missing = false};

    if (ns == NULL)
        return STEP_DONE;
    if (put(q, DNS_SEC_AUTHORITY, cut->name, cut->name_len, ns, ns->ttl) != CM_OK)
        return STEP_FULL;
    dns_rrset_targets(ns, glue_cb, &g);
    /* RFC 9471 §3: all in-domain glue, or TC */
    return g.missing ? STEP_FULL : STEP_DONE;
}

static enum step_result write_cname(struct qctx *q, const uint8_t *owner, size_t owner_len,
                                    const struct dns_rrset *cname)
{
    if (put(q, DNS_SEC_ANSWER, owner, owner_len, cname, cname->ttl) != CM_OK)
        return STEP_FULL;
    /* RFC 1034 §4.3.2: a CNAME matches qtype CNAME, and ANY, without a chase */
    if (q->qtype == DNS_TYPE_CNAME || q->qtype == DNS_TYPE_ANY)
        return STEP_DONE;
    q->next_len = dns_rrset_cname_target(cname, &q->next);
    return q->next_len > 0 ? STEP_CHASE : STEP_DONE;
}

static enum step_result fed_answer(struct qctx *q, const struct dns_fed_answer *fa,
                                   const uint8_t *owner, size_t owner_len)
{
    q->info->federated = true;
    q->info->service = fa->service;
    q->info->fail_open = q->info->fail_open || fa->fail_open;
    q->info->fail_closed = q->info->fail_closed || fa->fail_closed;
    if (fa->member >= 0)
        q->info->member = fa->member;
    if (q->qtype == DNS_TYPE_ANY)
        q->qtype = DNS_TYPE_A; /* a federated name answers ANY as A, chase included */
    q->flags |= DNS_FLAG_AA;
    /* Only records make an answer client-specific: a NODATA (no AAAA, an MX
     * query, fail-closed) carries scope 0 so that resolvers share it. */
    if (fa->cname != NULL || fa->rrset != NULL) {
        q->region_dependent = q->region_dependent || fa->region_dependent;
        q->subnet_dependent = q->subnet_dependent || fa->subnet_dependent;
    }
    if (fa->cname != NULL)
        return write_cname(q, owner, owner_len, fa->cname);
    if (fa->rrset != NULL) {
        if (put(q, DNS_SEC_ANSWER, owner, owner_len, fa->rrset, fa->rrset->ttl) != CM_OK)
            return STEP_FULL;
        return STEP_DONE;
    }
    return negative(q, DNS_RCODE_NOERROR, fa->negative_ttl);
}

static enum step_result static_answer(struct qctx *q, const struct dns_node *node,
                                      const uint8_t *owner, size_t owner_len)
{
    uint16_t qtype = q->qtype;
    const struct dns_rrset *rs;

    q->flags |= DNS_FLAG_AA;
    if (qtype == DNS_TYPE_ANY) /* RFC 8482 §4.2: one RRset, the lowest type */
        rs = node->rrset_count > 0 ? &node->rrsets[0] : NULL;
    else
        rs = dns_node_rrset(node, qtype);
    if (rs != NULL) {
        if (put(q, DNS_SEC_ANSWER, owner, owner_len, rs, rs->ttl) != CM_OK)
            return STEP_FULL;
        dns_rrset_targets(rs, additional_cb, q);
        return STEP_DONE;
    }
    rs = dns_node_rrset(node, DNS_TYPE_CNAME);
    if (rs != NULL)
        return write_cname(q, owner, owner_len, rs);
    return negative(q, DNS_RCODE_NOERROR, dns_zone_negative_ttl(q->view->zone));
}

/* The query's answer is a referral or a wildcard: its RRL bucket is the cut or the wildcard. */
static void rrl_mark(struct qctx *q, enum dns_rrl_class cls, const struct dns_node *node)
{
    q->info->rrl_class = cls;
    q->info->rrl_name = node->name;
    q->info->rrl_name_len = node->name_len;
    q->info->rrl_name_hash = dns_name_hash(node->name, node->name_len); /* stored lowercased */
}

/* One name of the chain: @owner as written, @lc its lowercased copy. */
static enum step_result step(struct qctx *q, const uint8_t *owner, const uint8_t *lc, size_t len,
                             unsigned hop)
{
    const struct dns_view *v = q->view;
    const struct dns_node *node = NULL;
    uint16_t qtype = q->qtype;
    enum dns_zone_match zm;

    if (hop == 0 && q->zone0_known) { /* not in the table: precompiled_response() looked */
        zm = q->zone0;
        node = q->zone0_node;
    } else {
        if (v->fed != NULL) {
            struct dns_fed_answer fa;
            uint16_t ftype = qtype == DNS_TYPE_ANY ? DNS_TYPE_A : qtype;
            uint32_t h = hop == 0 ? q->req->qname_hash : dns_name_hash(lc, len);
            enum dns_fed_match m = dns_fed_lookup_hashed(v->fed, lc, len, h, ftype, q->loc.region,
                                                         client_hash(q), &fa);
            if (m == DNS_FED_NAME)
                return fed_answer(q, &fa, owner, len);
            if (m == DNS_FED_ENT)
                return negative(q, DNS_RCODE_NOERROR, dns_zone_negative_ttl(v->zone));
        }
        zm = dns_zone_find(v->zone, lc, len, &node);
    }
    switch (zm) {
    case DNS_ZONE_OUTSIDE:
        if (hop == 0)
            q->rcode = DNS_RCODE_REFUSED;
        return STEP_DONE; /* a CNAME target elsewhere: the resolver goes on */
    case DNS_ZONE_NXDOMAIN:
        return negative(q, DNS_RCODE_NXDOMAIN, dns_zone_negative_ttl(v->zone));
    case DNS_ZONE_DELEGATED:
        /* DS at the cut belongs to the parent side (RFC 4035 §3.1.4.1) */
        if (qtype == DNS_TYPE_DS && node->name_len == len)
            return static_answer(q, node, owner, len);
        if (hop == 0)
            rrl_mark(q, DNS_RRL_REFERRAL, node);
        return referral(q, node);
    case DNS_ZONE_FOUND:
        if (hop == 0 && node->name_len >= 2 && node->name[0] == 1 && node->name[1] == '*')
            rrl_mark(q, DNS_RRL_WILDCARD, node);
        return static_answer(q, node, owner, len);
    }
    return STEP_DONE;
}

/* Answers the question, following at most MAX_CNAME_HOPS CNAMEs, never the same name twice. */
static enum step_result resolve(struct qctx *q)
{
    const uint8_t *seen[MAX_CNAME_HOPS + 1];
    size_t seen_len[MAX_CNAME_HOPS + 1];
    uint8_t buf[DNS_NAME_MAX];
    const uint8_t *owner = q->req->qname;
    const uint8_t *lc = q->req->qname_lc;
    size_t len = q->req->qname_len;

    for (unsigned hop = 0; hop <= MAX_CNAME_HOPS; hop++) {
        seen[hop] = owner;
        seen_len[hop] = len;
        enum step_result r = step(q, owner, lc, len, hop);
        if (r != STEP_CHASE)
            return r;
        for (unsigned i = 0; i <= hop; i++) {
            if (dns_name_equal_nocase(seen[i], seen_len[i], q->next, q->next_len))
                return STEP_DONE; /* CNAME loop: stop with what we have */
        }
        owner = q->next;
        len = q->next_len;
        dns_name_lower(buf, owner, len);
        lc = buf;
    }
    return STEP_DONE;
}

/*
 * The ECS SCOPE PREFIX-LENGTH of the answer (RFC 7871 §7.2.1): 0 unless ECS
 * located the client and a record written depends on where the client is;
 * then the bits that decide what was written: the region's (lpm) scope,
 * the subnet hash's, or both. Static data, answers identical for every
 * region and negative answers without records get 0.
 */
static uint8_t ecs_scope(const struct qctx *q)
{
    uint8_t scope = 0;

    if (!q->info->ecs)
        return 0;
    if (q->region_dependent)
        scope = q->loc.region_scope;
    if (q->subnet_dependent && q->loc.subnet_scope > scope)
        scope = q->loc.subnet_scope;
    return scope;
}

/* ---- responses ---- */

static uint16_t base_flags(const struct dns_request *req)
{
    /* RD and CD are defined for QUERY only (RFC 1035 §4.1.1, RFC 4035 §3.2):
     * a reply to any other opcode echoes ID, QR and the opcode, nothing more. */
    if (req->opcode != DNS_OPCODE_QUERY)
        return (uint16_t)(DNS_FLAG_QR | (req->flags & OPCODE_MASK));
    return (uint16_t)(DNS_FLAG_QR | (req->flags & REQ_FLAGS_KEPT));
}

/* The response's OPT: the ECS option echoed with @scope, our cookie, NSID. */
static struct dns_opt_out opt_out(const struct qctx *q, uint8_t scope)
{
    const struct dns_edns *e = &q->req->edns;
    const struct cm_conf *conf = q->view->conf;
    struct dns_opt_out o = {.udp_size = q->max_udp,
                            .ext_rcode = q->rcode,
                            .do_bit = e->do_bit,
                            .ecs = &e->ecs,
                            .ecs_scope = scope};

    if (q->cookie_len > 0) {
        o.cookie = q->cookie;
        o.cookie_len = q->cookie_len;
    }
    if (q->nsid && conf != NULL && conf->dnsd.nsid_len > 0) {
        o.nsid = conf->dnsd.nsid_data;
        o.nsid_len = (uint16_t)conf->dnsd.nsid_len;
    }
    return o;
}

/* Bytes kept free for the OPT RR while the sections are written. */
static size_t opt_reserve(const struct qctx *q)
{
    struct dns_opt_out o = opt_out(q, 0);

    return q->req->edns.present ? dns_writer_opt_len(&o) : 0;
}

/* Writes OPT when the query had one. */
static void finish_opt(struct qctx *q, uint8_t scope)
{
    struct dns_opt_out o = opt_out(q, scope);

    if (!q->req->edns.present)
        return;
    dns_writer_set_cap(&q->w, q->w.cap + opt_reserve(q));
    (void)dns_writer_opt(&q->w, &o);
}

/* The client's address as cookies hash it (IPv4-mapped counts as IPv4). */
static size_t client_ip(const struct sockaddr *client, const uint8_t **ip)
{
    if (client != NULL && client->sa_family == AF_INET) {
        *ip = (const uint8_t *)&((const struct sockaddr_in *)(const void *)client)->sin_addr;
        return 4;
    }
    if (client != NULL && client->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)(const void *)client)->sin6_addr;
        *ip = a->s6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            *ip += 12;
            return 4;
        }
        return 16;
    }
    *ip = NULL;
    return 0;
}

/*
 * DNS cookies (RFC 7873 §5.2, RFC 9018): with dnsd.cookies configured, a
 * query carrying a COOKIE option gets its client cookie back with a server
 * cookie made with the current secret: the one it sent when that is ours,
 * made with the current secret and at most half an hour old (RFC 9018
 * §4.3), else a new one (the worker's memo hands out the one it made for
 * this client cookie and address while young). A server cookie of ours
 * (made with the current or the previous secret, and fresh) marks the query
 * cookie_valid. Returns false when the query must get BADCOOKIE instead of
 * an answer: dnsd.cookies.require, over UDP, without a valid server cookie.
 */
static bool cookie_process(struct qctx *q, const struct sockaddr *client, bool tcp, uint32_t now_s)
{
    const struct dns_cookie *c = &q->req->edns.cookie;
    const struct cm_conf *conf = q->view->conf;
    const uint8_t *ip;

    if (!c->present || conf == NULL || !conf->dnsd.cookies.enabled)
        return true;
    q->info->uncacheable = true;
    size_t ip_len = client_ip(client, &ip);
    const struct cm_conf_cookies *cf = &conf->dnsd.cookies;
    bool valid = dns_cookie_reply(q->memo, cf->secret, cf->has_previous ? cf->previous : NULL,
                                  c->data, c->len, ip, ip_len, now_s, q->cookie);

    q->info->cookie_valid = valid;
    q->cookie_len = DNS_COOKIE_CLIENT_LEN + DNS_COOKIE_OURS_LEN;
    return valid || tcp || !cf->require;
}

/* An error response: header, the question if it parsed, OPT if it parsed. */
static size_t error_response(struct qctx *q, uint8_t *resp, size_t limit, uint8_t rcode)
{
    const struct dns_request *req = q->req;

    q->rcode = rcode;
    dns_writer_init(&q->w, resp, limit - opt_reserve(q));
    if (dns_writer_header(&q->w, req->id, base_flags(req), req->has_question) != CM_OK)
        return 0;
    if (req->has_question &&
        dns_writer_question(&q->w, req->qname, req->qname_len, req->qtype, req->qclass) != CM_OK)
        return 0;
    dns_writer_set_rcode(&q->w, (uint8_t)(rcode & 0x0F));
    finish_opt(q, 0);
    q->info->rcode = rcode;
    q->info->rrl_class = DNS_RRL_ERROR;
    return dns_writer_finish(&q->w);
}

/* An NXDOMAIN's RRL class and bucket: the apex (dns_rrl.h). */
static void rrl_nxdomain(struct qctx *q)
{
    const struct dns_node *apex = dns_zone_apex(q->view->zone);
    struct dns_query_info *info = q->info;

    info->rrl_class = DNS_RRL_NXDOMAIN;
    info->rrl_name = apex->name;
    info->rrl_name_len = apex->name_len;
    info->rrl_name_hash = dns_name_hash(apex->name, apex->name_len);
}

/* The response's RRL class and bucket name, once it is written (dns_rrl.h). */
static void rrl_classify(struct qctx *q, const uint8_t *resp, size_t len)
{
    struct dns_query_info *info = q->info;

    if (q->rcode == DNS_RCODE_NXDOMAIN) {
        rrl_nxdomain(q);
        return;
    }
    if (q->rcode != DNS_RCODE_NOERROR) {
        info->rrl_class = DNS_RRL_ERROR;
        return;
    }
    if (info->rrl_name != NULL) /* WILDCARD or REFERRAL, set by step() or referral() */
        return;
    info->rrl_name = q->req->qname;
    info->rrl_name_len = q->req->qname_len;
    info->rrl_name_hash = q->req->qname_hash;
    info->rrl_class =
        len >= DNS_HEADER_LEN && (resp[6] | resp[7]) != 0 ? DNS_RRL_POSITIVE : DNS_RRL_NODATA;
}

/*
 * A question the table does not hold: its zone lookup (kept for step() at
 * hop 0) and, when the zone has nothing there either, the NXDOMAIN part.
 */
static const struct dns_pre_part *nxdomain_part(struct qctx *q)
{
    const struct dns_request *req = q->req;

    q->zone0 = dns_zone_find(q->view->zone, req->qname_lc, req->qname_len, &q->zone0_node);
    q->zone0_known = true;
    if (q->zone0 != DNS_ZONE_NXDOMAIN)
        return NULL;
    return dns_pre_nxdomain(q->view->pre, req->qname_lc, req->qname_len);
}

/* What the precompiled path copies, and what the table said of it. */
struct pre_pick {
    const struct dns_pre_part *part; /* NULL: the writer's path */
    bool records;                    /* the answer holds records (not NODATA) */
    bool federated;                  /* a federated name's answer (info->federated) */
    bool fail_open, fail_closed, region_dependent, subnet_dependent;
    int service, member;
};

/* The pick from the table's answer @fa (the rare case: no hot record). */
static void pick_answer(const struct qctx *q, const struct dns_fed_answer *fa, uint16_t ftype,
                        struct pre_pick *pk)
{
    const struct dns_pre *pre = q->view->pre;

    if (fa->cname != NULL)
        return;
    pk->records = fa->rrset != NULL;
    if (pk->records)
        pk->part =
            dns_pre_variant(pre, (size_t)fa->service, fa->variant_id, ftype == DNS_TYPE_AAAA);
    else if (dns_pre_nodata_ok(pre, fa->name_id))
        pk->part = dns_pre_nodata(pre, (size_t)fa->service, fa->answer_id);
    pk->federated = fa->name_id != DNS_FED_NO_ID && fa->answer_id != DNS_FED_NO_ID;
    pk->service = fa->service;
    pk->member = fa->member;
    pk->fail_open = fa->fail_open;
    pk->fail_closed = fa->fail_closed;
    pk->region_dependent = fa->region_dependent;
    pk->subnet_dependent = fa->subnet_dependent;
}

/* The pick of a federated name at @p: from its hot record (dns_pre.h), or
 * looked up when it has none. */
static void pick_name(struct qctx *q, const struct dns_fed_place *p, uint16_t ftype,
                      struct pre_pick *pk)
{
    const struct dns_pre *pre = q->view->pre;
    const struct dns_pre_hot *h = dns_pre_hot(pre, p->service, p->slot, q->loc.region);

    if (h == NULL || (h->flags & DNS_PRE_HOT_FULL) != 0) {
        struct dns_fed_answer fa;
        dns_fed_place_answer(q->view->fed, p, ftype, q->loc.region, client_hash(q), &fa);
        pick_answer(q, &fa, ftype, pk);
        return;
    }
    unsigned k = ftype == DNS_TYPE_A ? 0 : ftype == DNS_TYPE_AAAA ? 1 : 2;
    pk->records = (h->flags & DNS_PRE_HOT_REC(k)) != 0;
    if (pk->records || dns_pre_nodata_ok(pre, p->name_id))
        pk->part = h->part[k];
    pk->federated = true;
    pk->service = p->service;
    pk->member = h->member;
    pk->fail_open = (h->flags & DNS_PRE_HOT_FAIL_OPEN) != 0;
    pk->fail_closed = (h->flags & DNS_PRE_HOT_FAIL_CLOSED) != 0;
    pk->region_dependent = (h->flags & DNS_PRE_HOT_REGION_DEP) != 0;
}

/*
 * The precompiled path (dns_pre.h): a federated name whose answer for this
 * client is a precompiled part, or a name the zone does not have, is
 * answered by copying the query's header and question, the part and the
 * OPT, exactly as the writer would have written them. Returns 0 to leave
 * the query to the writer: no part (CNAME chains, static names), or not
 * room for all of it (TC).
 */
static size_t precompiled_response(struct qctx *q, uint8_t *resp, size_t limit)
{
    const struct dns_request *req = q->req;
    const struct dns_pre *pre = q->view->pre;
    uint16_t ftype = req->qtype == DNS_TYPE_ANY ? DNS_TYPE_A : req->qtype;
    struct pre_pick pk = {.part = NULL, .service = -1, .member = -1};
    struct dns_fed_place p;

    switch (dns_fed_find_hashed(q->view->fed, req->qname_lc, req->qname_len, req->qname_hash, &p)) {
    case DNS_FED_NAME:
        pick_name(q, &p, ftype, &pk);
        break;
    case DNS_FED_ENT:
        if (dns_pre_nodata_ok(pre, p.name_id))
            pk.part = dns_pre_ent(pre);
        break;
    case DNS_FED_NONE:
        pk.part = nxdomain_part(q);
        if (pk.part != NULL)
            q->rcode = DNS_RCODE_NXDOMAIN;
        break;
    }
    const struct dns_pre_part *part = pk.part;
    if (part == NULL)
        return 0;

    size_t base = DNS_HEADER_LEN + req->qname_len + 4u; /* where the part goes */
    if (base + part->len > limit)
        return 0;               /* the writer truncates */
    memcpy(resp, q->pkt, base); /* ID, QDCOUNT, the question as asked */
    uint16_t flags = (uint16_t)(base_flags(req) | DNS_FLAG_AA | q->rcode);
    resp[2] = (uint8_t)(flags >> 8);
    resp[3] = (uint8_t)flags;
    resp[6] = (uint8_t)(part->an >> 8);
    resp[7] = (uint8_t)part->an;
    resp[8] = (uint8_t)(part->ns >> 8);
    resp[9] = (uint8_t)part->ns;
    resp[10] = 0;
    resp[11] = req->edns.present ? 1 : 0;
    size_t len = base + dns_pre_copy(part, resp + base, base);
    if (req->edns.present) {
        q->region_dependent = pk.records && pk.region_dependent;
        q->subnet_dependent = pk.records && pk.subnet_dependent;
        size_t opt_len;
        if (q->cookie_len == 0 && !q->nsid) {
            /* the usual OPT (ext RCODE 0: NXDOMAIN at most here), written straight */
            opt_len = dns_wire_put_opt_usual(resp + len, limit - len, q->max_udp, req->edns.do_bit,
                                             &req->edns.ecs, ecs_scope(q));
        } else {
            struct dns_opt_out o = opt_out(q, ecs_scope(q));
            opt_len = dns_wire_put_opt(resp + len, limit - len, &o);
        }
        if (opt_len == 0)
            return 0; /* the writer truncates */
        len += opt_len;
    }

    struct dns_query_info *info = q->info;
    if (pk.federated) {
        info->federated = true;
        info->service = pk.service;
        info->fail_open = pk.fail_open;
        info->fail_closed = pk.fail_closed;
        info->member = pk.member;
    }
    info->precompiled = true;
    info->rcode = q->rcode;
    if (q->rcode == DNS_RCODE_NXDOMAIN) {
        rrl_nxdomain(q);
        return len;
    }
    info->rrl_class = part->an > 0 ? DNS_RRL_POSITIVE : DNS_RRL_NODATA;
    info->rrl_name = req->qname;
    info->rrl_name_len = req->qname_len;
    info->rrl_name_hash = req->qname_hash;
    return len;
}

static size_t answer_response(struct qctx *q, uint8_t *resp, size_t limit,
                              const struct sockaddr *client)
{
    const struct dns_request *req = q->req;

    locate_client(q, client);
    q->info->region = q->loc.region;
    q->info->placement = q->loc.source;
    if (q->view->pre != NULL) {
        size_t n = precompiled_response(q, resp, limit);
        if (n > 0)
            return n;
        q->rcode = 0;
        q->region_dependent = false;
        q->subnet_dependent = false;
    }
    dns_writer_init(&q->w, resp, limit - opt_reserve(q));
    if (dns_writer_header(&q->w, req->id, base_flags(req), true) != CM_OK ||
        dns_writer_question(&q->w, req->qname, req->qname_len, req->qtype, req->qclass) != CM_OK)
        return 0;
    struct dns_wmark after_question = dns_writer_mark(&q->w);
    if (resolve(q) == STEP_FULL) {
        /* RFC 2181 §9: the answer does not fit; say so and let the client retry over TCP. */
        dns_writer_rollback(&q->w, after_question);
        q->flags |= DNS_FLAG_TC;
        q->info->tc = true;
    }
    dns_writer_set_flags(&q->w, q->flags, 0);
    dns_writer_set_rcode(&q->w, (uint8_t)(q->rcode & 0x0F));
    finish_opt(q, ecs_scope(q));
    q->info->rcode = q->rcode;
    size_t len = dns_writer_finish(&q->w);
    rrl_classify(q, resp, len);
    return len;
}

size_t dns_query_process(const struct dns_view *view, const uint8_t *req, size_t req_len,
                         uint8_t *resp, size_t resp_cap, const struct sockaddr *client, bool tcp,
                         struct dns_query_info *info, uint32_t now_s)
{
    return dns_query_process_memo(view, NULL, req, req_len, resp, resp_cap, client, tcp, info,
                                  now_s);
}

size_t dns_query_process_memo(const struct dns_view *view, struct dns_cookie_memo *memo,
                              const uint8_t *req, size_t req_len, uint8_t *resp, size_t resp_cap,
                              const struct sockaddr *client, bool tcp, struct dns_query_info *info,
                              uint32_t now_s)
{
    struct dns_query_info scratch;
    struct dns_request r;
    struct qctx q;

    if (info == NULL)
        info = &scratch;
    memset(info, 0, sizeof(*info));
    info->service = -1;
    info->member = -1;
    info->region = view->default_region;
    if (req_len < DNS_HEADER_LEN || resp_cap < DNS_UDP_MIN || (req[2] & 0x80) != 0)
        return 0;
    enum dns_parse_status st = dns_wire_parse(req, req_len, &r);
    q.ecs_on = view->ecs;
    prefetch_location(view, q.ecs_on, &r, client);
    if (st == DNS_PARSE_SHORT)
        return 0;
    /* Field by field: the writer, the additional-section list and the cookie
     * buffer are set up when used, and clearing them costs more than a lookup. */
    q.view = view;
    q.memo = memo;
    q.pkt = req;
    q.req = &r;
    q.max_udp = view->max_udp;
    q.qtype = r.qtype;
    q.info = info;
    q.flags = 0;
    q.rcode = 0;
    q.region_dependent = false;
    q.subnet_dependent = false;
    q.next = NULL;
    q.next_len = 0;
    q.added_count = 0;
    q.cookie_len = 0;
    q.nsid = false;
    q.zone0_known = false;
    q.hash_known = true; /* 0 until located */
    memset(&q.loc, 0, sizeof(q.loc));
    if (r.has_question)
        info->qtype = r.qtype;
    size_t limit = response_limit(q.max_udp, &r, resp_cap, tcp);

    if (r.opcode != DNS_OPCODE_QUERY)
        return error_response(&q, resp, limit, DNS_RCODE_NOTIMP);
    if (st != DNS_PARSE_OK)
        return error_response(&q, resp, limit, DNS_RCODE_FORMERR);
    if (r.edns.present && r.edns.version > 0)
        return error_response(&q, resp, limit, DNS_RCODE_BADVERS);
    q.nsid = r.edns.nsid;
    if (!cookie_process(&q, client, tcp, now_s))
        return error_response(&q, resp, limit, DNS_RCODE_BADCOOKIE);
    if (r.qtype == DNS_TYPE_OPT || r.qtype == TYPE_TKEY || r.qtype == TYPE_TSIG)
        return error_response(&q, resp, limit, DNS_RCODE_FORMERR);
    if (r.qclass != DNS_CLASS_IN || r.qtype == DNS_TYPE_AXFR || r.qtype == DNS_TYPE_IXFR ||
        view->zone == NULL)
        return error_response(&q, resp, limit, DNS_RCODE_REFUSED);
    return answer_response(&q, resp, limit, client);
}
