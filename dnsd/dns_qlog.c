/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_qlog.c -- the sampled query log: the workers' side copies into a
 * cm_ring, the main thread's side decodes and writes (see dns_qlog.h).
 */
#include "dnsd/dns_qlog.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>

#include "common/cm_conf.h"
#include "common/cm_log.h"
#include "common/cm_net.h"
#include "common/cm_ring.h"
#include "common/cm_str.h"
#include "dnsd/dns_geo.h"
#include "dnsd/dns_name.h"
#include "dnsd/dns_query.h"
#include "dnsd/dns_resp.h"
#include "dnsd/dns_view.h"
#include "dnsd/dns_wire.h"

#define REGION_MAX 64   /* region name bytes kept, NUL included */
#define ANSWER_MAX 1024 /* the answer list's text, at most */
#define CACHE_LINE 64

/* One sampled query, as the worker copied it. */
struct qlog_rec {
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } client;          /* sa_family AF_UNSPEC when unknown */
    uint16_t kept;     /* bytes of resp[] */
    uint16_t built;    /* the response's length as built */
    uint16_t sent;     /* bytes sent: 0 = dropped by RRL, < built = slipped */
    uint8_t rcode;     /* extended rcode */
    uint8_t placement; /* enum dns_place_source */
    bool tcp;          /* the transport */
    bool located;      /* answered from the data: region and placement mean something */
    bool fail_open;    /* the federated answer failed open */
    bool fail_closed;  /* ... or closed */
    bool cut;          /* longer than DNS_QLOG_RESP_MAX: header and question only */
    char region[REGION_MAX];
    uint8_t resp[DNS_QLOG_RESP_MAX];
};

/* A worker's own line: its ring and its sampling counter. */
struct qlog_worker {
    alignas(CACHE_LINE) struct cm_ring *ring; /* owned */
    uint32_t count;                           /* queries since the last one sampled */
};

struct dns_qlog {
    _Atomic uint32_t sample; /* every Nth query; 0 = paused */
    unsigned worker_count;
    struct qlog_worker *workers; /* owned array */
    uint64_t logged;             /* main thread */
    struct cm_buf line;          /* main thread: the line being formatted */
    struct cm_buf answer;        /* main thread: its answer list */
};

struct dns_qlog *dns_qlog_new(unsigned workers, uint32_t ring_size, uint32_t sample)
{
    size_t size =
        ((size_t)workers * sizeof(struct qlog_worker) + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    struct dns_qlog *ql;

    if (workers == 0 || ring_size == 0)
        return NULL;
    ql = calloc(1, sizeof(*ql));
    if (ql == NULL)
        return NULL;
    ql->workers = aligned_alloc(CACHE_LINE, size);
    if (ql->workers == NULL) {
        free(ql);
        return NULL;
    }
    memset(ql->workers, 0, size);
    ql->worker_count = workers;
    for (unsigned i = 0; i < workers; i++) {
        ql->workers[i].ring = cm_ring_new(ring_size, sizeof(struct qlog_rec));
        if (ql->workers[i].ring == NULL) {
            dns_qlog_free(ql);
            return NULL;
        }
    }
    atomic_init(&ql->sample, sample);
    cm_buf_init(&ql->line, DNS_QLOG_LINE_MAX);
    cm_buf_init(&ql->answer, ANSWER_MAX);
    return ql;
}

void dns_qlog_free(struct dns_qlog *ql)
{
    if (ql == NULL)
        return;
    for (unsigned i = 0; i < ql->worker_count; i++)
        cm_ring_free(ql->workers[i].ring);
    free(ql->workers);
    cm_buf_fini(&ql->line);
    cm_buf_fini(&ql->answer);
    free(ql);
}

void dns_qlog_set_sample(struct dns_qlog *ql, uint32_t sample)
{
    atomic_store_explicit(&ql->sample, sample, memory_order_relaxed);
}

/* ---- the worker's side: count, copy, commit ---- */

static void copy_client(struct qlog_rec *r, const struct sockaddr *client)
{
    memset(&r->client, 0, sizeof(r->client));
    if (client != NULL && client->sa_family == AF_INET)
        memcpy(&r->client.in, client, sizeof(r->client.in));
    else if (client != NULL && client->sa_family == AF_INET6)
        memcpy(&r->client.in6, client, sizeof(r->client.in6));
    else
        r->client.sa.sa_family = AF_UNSPEC;
}

static void copy_region(struct qlog_rec *r, const struct dns_view *view, unsigned region)
{
    const struct cm_conf *conf = view != NULL ? view->conf : NULL;

    r->region[0] = '\0';
    if (r->located && conf != NULL && region < conf->region_count &&
        conf->regions[region].name != NULL)
        cm_strlcpy(r->region, conf->regions[region].name, sizeof(r->region));
}

/* The response bytes, or, when they do not fit, its header and question
 * with the section counts cleared (still a message that parses). */
static void copy_response(struct qlog_rec *r, const uint8_t *resp, size_t len)
{
    size_t qlen = 0;

    r->cut = len > sizeof(r->resp);
    if (!r->cut) {
        memcpy(r->resp, resp, len);
        r->kept = (uint16_t)len;
        return;
    }
    if (resp[4] == 0 && resp[5] == 1) {
        qlen = dns_name_check(resp + DNS_HEADER_LEN, len - DNS_HEADER_LEN);
        qlen = qlen > 0 && DNS_HEADER_LEN + qlen + 4 <= len ? qlen + 4 : 0;
    }
    memcpy(r->resp, resp, DNS_HEADER_LEN + qlen);
    if (qlen == 0)
        r->resp[5] = 0; /* no question kept */
    memset(r->resp + 6, 0, 6);
    r->kept = (uint16_t)(DNS_HEADER_LEN + qlen);
}

void dns_qlog_query(struct dns_qlog *ql, unsigned worker, const struct dns_view *view,
                    const struct sockaddr *client, bool tcp, const struct dns_query_info *info,
                    const uint8_t *resp, size_t built_len, size_t sent_len)
{
    struct qlog_worker *w = &ql->workers[worker];
    uint32_t sample = atomic_load_explicit(&ql->sample, memory_order_relaxed);
    struct qlog_rec *r;
    size_t len;

    if (sample == 0 || built_len < DNS_HEADER_LEN || built_len > UINT16_MAX)
        return;
    if (++w->count < sample)
        return;
    w->count = 0;
    r = cm_ring_reserve(w->ring);
    if (r == NULL)
        return; /* full: counted by the ring */
    copy_client(r, client);
    r->built = (uint16_t)built_len;
    r->sent = (uint16_t)(sent_len < built_len ? sent_len : built_len);
    r->rcode = info->rcode;
    r->placement = info->placement;
    r->tcp = tcp;
    r->located = info->rcode == DNS_RCODE_NOERROR || info->rcode == DNS_RCODE_NXDOMAIN;
    r->fail_open = info->fail_open;
    r->fail_closed = info->fail_closed;
    copy_region(r, view, info->region);
    /* A slipped response was rewritten in place: what went out is what is there. */
    len = r->sent > 0 ? r->sent : r->built;
    copy_response(r, resp, len);
    cm_ring_commit(w->ring);
}

/* ---- the main thread's side: decode and write ---- */

/*
 * Appends @s with every byte that could end a key=value pair or a line
 * (space, controls, non-ASCII) as \DDD, the zone file escape ldns uses too:
 * a name the client chose cannot add keys to the line.
 */
static void append_safe(struct cm_buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if (*p > 0x20 && *p < 0x7f)
            cm_buf_append(b, p, 1);
        else
            cm_buf_printf(b, "\\%03u", *p);
    }
}

static void append_rdf(struct cm_buf *b, const ldns_rdf *rdf)
{
    char *s = rdf != NULL ? ldns_rdf2str(rdf) : NULL;

    append_safe(b, s != NULL ? s : "?");
    LDNS_FREE(s);
}

/* Addresses and CNAME targets, comma-separated; other types by name. */
static void answer_text(struct cm_buf *b, const ldns_rr_list *answer)
{
    struct cm_buf item;

    cm_buf_reset(b);
    cm_buf_init(&item, ANSWER_MAX);
    for (size_t i = 0; i < ldns_rr_list_rr_count(answer); i++) {
        const ldns_rr *rr = ldns_rr_list_rr(answer, i);
        ldns_rr_type t = ldns_rr_get_type(rr);

        cm_buf_reset(&item);
        if (t == LDNS_RR_TYPE_A || t == LDNS_RR_TYPE_AAAA || t == LDNS_RR_TYPE_CNAME) {
            append_rdf(&item, ldns_rr_rdf(rr, 0));
        } else {
            char *name = ldns_rr_type2str(t);

            append_safe(&item, name != NULL ? name : "?");
            LDNS_FREE(name);
        }
        if (b->len + 1 + item.len + 4 > ANSWER_MAX) {
            cm_buf_append_str(b, b->len > 0 ? ",..." : "...");
            break;
        }
        if (b->len > 0)
            cm_buf_append(b, ",", 1);
        cm_buf_append(b, cm_buf_cstr(&item), item.len);
    }
    cm_buf_fini(&item);
}

static void append_client(struct cm_buf *b, const struct qlog_rec *r)
{
    char ip[CM_ADDR_STRLEN];
    unsigned port = 0;

    if (r->client.sa.sa_family == AF_UNSPEC) {
        cm_buf_append_str(b, " client=-");
        return;
    }
    cm_ip_format(&r->client.sa, ip, sizeof(ip));
    if (r->client.sa.sa_family == AF_INET)
        port = ntohs(r->client.in.sin_port);
    else
        port = ntohs(r->client.in6.sin6_port);
    cm_buf_printf(b, " client=%s port=%u", ip, port);
}

static void append_ecs(struct cm_buf *b, const ldns_pkt *pkt)
{
    char text[INET6_ADDRSTRLEN];
    struct dns_ecs ecs;

    if (!dns_resp_ecs(pkt, &ecs))
        return;
    if (inet_ntop(ecs.family == 1 ? AF_INET : AF_INET6, ecs.addr, text, sizeof(text)) == NULL)
        return;
    cm_buf_printf(b, " ecs=%s/%u ecs_scope=%u", text, ecs.source_len, ecs.scope_len);
}

static void append_question(struct cm_buf *b, const ldns_pkt *pkt)
{
    const ldns_rr_list *q = ldns_pkt_question(pkt);
    const ldns_rr *rr = q != NULL && ldns_rr_list_rr_count(q) > 0 ? ldns_rr_list_rr(q, 0) : NULL;
    char *type;

    if (rr == NULL)
        return;
    cm_buf_append_str(b, " name=");
    append_rdf(b, ldns_rr_owner(rr));
    type = ldns_rr_type2str(ldns_rr_get_type(rr));
    cm_buf_append_str(b, " qtype=");
    append_safe(b, type != NULL ? type : "?");
    LDNS_FREE(type);
}

/* The line for @r into ql->line. */
static void format_rec(struct dns_qlog *ql, const struct qlog_rec *r)
{
    struct cm_buf *b = &ql->line;
    ldns_pkt *pkt = NULL;
    bool parsed = ldns_wire2pkt(&pkt, r->resp, r->kept) == LDNS_STATUS_OK;

    cm_buf_reset(b);
    cm_buf_append_str(b, "query:");
    append_client(b, r);
    cm_buf_printf(b, " transport=%s", r->tcp ? "tcp" : "udp");
    if (parsed)
        append_question(b, pkt);
    cm_buf_printf(b, " rcode=%s", dns_rcode_name(r->rcode));
    if (r->located && r->region[0] != '\0') {
        cm_buf_append_str(b, " region=");
        append_safe(b, r->region);
        cm_buf_printf(b, " placed_by=%s",
                      dns_place_source_name((enum dns_place_source)r->placement));
    }
    if (parsed) {
        append_ecs(b, pkt);
        answer_text(&ql->answer, ldns_pkt_answer(pkt));
        if (ql->answer.len > 0)
            cm_buf_printf(b, " answer=%s", cm_buf_cstr(&ql->answer));
        if (ldns_pkt_tc(pkt))
            cm_buf_append_str(b, " tc=1");
    } else {
        cm_buf_append_str(b, " undecoded=1");
    }
    if (r->fail_open)
        cm_buf_append_str(b, " fail_open=1");
    if (r->fail_closed)
        cm_buf_append_str(b, " fail_closed=1");
    if (r->sent == 0)
        cm_buf_append_str(b, " rrl=drop");
    else if (r->sent < r->built)
        cm_buf_append_str(b, " rrl=slip");
    if (r->cut)
        cm_buf_printf(b, " answer_omitted=1 size=%u", r->built);
    ldns_pkt_free(pkt);
}

struct drain_ctx {
    struct dns_qlog *ql;
    dns_qlog_line_fn *fn;
    void *arg;
};

static void drain_one(const void *rec, void *arg)
{
    struct drain_ctx *c = arg;

    format_rec(c->ql, rec);
    if (c->fn != NULL)
        c->fn(cm_buf_cstr(&c->ql->line), c->arg);
    else
        cm_log_debug("%s", cm_buf_cstr(&c->ql->line));
}

size_t dns_qlog_drain(struct dns_qlog *ql, dns_qlog_line_fn *fn, void *arg)
{
    struct drain_ctx c = {.ql = ql, .fn = fn, .arg = arg};
    size_t n = 0;

    for (unsigned i = 0; i < ql->worker_count; i++)
        n += cm_ring_drain(ql->workers[i].ring, DNS_QLOG_DRAIN_MAX, drain_one, &c);
    ql->logged += n;
    return n;
}

uint64_t dns_qlog_logged(const struct dns_qlog *ql)
{
    return ql->logged;
}

uint64_t dns_qlog_dropped(const struct dns_qlog *ql)
{
    uint64_t n = 0;

    for (unsigned i = 0; i < ql->worker_count; i++)
        n += cm_ring_dropped(ql->workers[i].ring);
    return n;
}
