/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_ctl.c -- dnsd's control routes and metrics.
 *
 * /v1/explain answers from the same view and the same merge the workers use:
 * the client is located with dns_query_locate, the decision comes from
 * dns_explain (the table's own ranking), and the "response" part runs a
 * real query packet through dns_query_process and decodes the bytes with
 * ldns (control path only), so the explanation cannot disagree with DNS.
 */
#include "dnsd/dns_ctl.h"

#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <ldns/ldns.h>

#include "common/cm_conf.h"
#include "common/cm_ctl.h"
#include "common/cm_err.h"
#include "common/cm_etcd_consumer.h"
#include "common/cm_etcd_feed.h"
#include "common/cm_intent.h"
#include "common/cm_intent_ctl.h"
#include "common/cm_log.h"
#include "common/cm_net.h"
#include "common/cm_state.h"
#include "common/cm_store.h"
#include "common/cm_str.h"
#include "common/cm_time.h"
#include "common/cm_ui.h"
#include "dnsd/dns_explain.h"
#include "dnsd/dns_fed.h"
#include "dnsd/dns_geo.h"
#include "dnsd/dns_name.h"
#include "dnsd/dns_pcache.h"
#include "dnsd/dns_peers.h"
#include "dnsd/dns_qlog.h"
#include "dnsd/dns_query.h"
#include "dnsd/dns_rank.h"
#include "dnsd/dns_resp.h"
#include "dnsd/dns_server.h"
#include "dnsd/dns_state.h"
#include "dnsd/dns_view.h"
#include "dnsd/dns_wire.h"
#include "dnsd/dns_zone.h"

#define EXPLAIN_EDNS_SIZE 4096
#define EXPLAIN_QUERY_ID  0x4558 /* "EX" */

struct dns_ctl {
    struct cm_ctl *ctl; /* owned */
    struct dns_ctl_env *env;
    struct cm_intent_routes intent_routes; /* the routes' argument */
    struct dns_peers *peers;               /* owned: GET /v1/peers */
};

/* ---- state ---- */

static json_t *state_get(void *arg)
{
    struct dns_ctl_env *env = arg;
    json_t *doc =
        dns_state_to_json(env->state, env->view != NULL ? env->view->serial : 0, cm_wall_s());

    if (doc != NULL && env->etcd != NULL)
        json_object_set_new(doc, "etcd", cm_etcd_consumer_status(env->etcd));
    return doc;
}

static int state_put(void *arg, const char *body, size_t len, const char *writer, char *err,
                     size_t errlen)
{
    struct dns_ctl_env *env = arg;
    int rc = dns_state_put(env->state, body, len, writer, cm_mono_ms(), err, errlen);

    if (rc != CM_OK)
        cm_log_info("state rejected: %s", err);
    return rc;
}

static int state_forget(void *arg, const char *vantage, char *err, size_t errlen)
{
    struct dns_ctl_env *env = arg;

    return dns_state_forget(env->state, vantage, err, errlen);
}

/* ---- members and drains ---- */

static json_t *member_json(const struct dns_ctl_env *env, size_t i)
{
    const struct cm_conf *conf = dns_state_conf(env->state);
    const struct cm_conf_member *m = &conf->members[i];

    return json_pack("{s:s,s:s,s:s?,s:b}", "member", m->name, "region",
                     conf->regions[m->region].name, "zone",
                     m->zone >= 0 ? conf->regions[m->region].zones[m->zone] : NULL, "drained",
                     dns_state_is_drained(env->state, i));
}

static void route_members(void *arg, struct cm_ctl_req *req, const char *rest)
{
    struct dns_ctl_env *env = arg;
    const struct cm_conf *conf = dns_state_conf(env->state);
    json_t *list;

    if (rest[0] != '\0' && strcmp(rest, "/") != 0) {
        cm_ctl_reply_error(req, 404, "not found");
        return;
    }
    list = json_array();
    for (size_t i = 0; list != NULL && i < conf->member_count; i++)
        json_array_append_new(list, member_json(env, i));
    cm_ctl_reply_json(req, 200, json_pack("{s:o*}", "members", list));
}

static void route_drain(void *arg, struct cm_ctl_req *req, const char *rest)
{
    struct dns_ctl_env *env = arg;
    bool drain = cm_ctl_req_method(req) == CM_HTTP_PUT;
    char name[256];
    char err[CM_STATE_ERR_MAX] = "";
    const char *slash = strchr(rest, '/');
    size_t len;
    int rc;

    if (slash == NULL || strcmp(slash, "/drain") != 0 || slash == rest) {
        cm_ctl_reply_error(req, 404, "not found; use /v1/members/NAME/drain");
        return;
    }
    len = (size_t)(slash - rest);
    if (len >= sizeof(name)) {
        cm_ctl_reply_error(req, 404, "unknown member");
        return;
    }
    memcpy(name, rest, len);
    name[len] = '\0';
    rc = cm_etcd_refuse_intent(dns_state_conf(env->state), "dnsd", err, sizeof(err));
    if (rc == CM_OK)
        rc = dns_state_set_drain(env->state, name, drain, "control API", cm_wall_s(), err,
                                 sizeof(err));
    if (rc == CM_ENOENT) {
        cm_ctl_reply_error(req, 404, "unknown member \"%s\"", name);
        return;
    }
    if (rc != CM_OK) {
        cm_ctl_reply_error(req,
                           rc == CM_ENOMEM    ? 500
                           : rc == CM_ENOTSUP ? 409
                                              : 400,
                           "%s", err[0] != '\0' ? err : cm_strerror(rc));
        return;
    }
    cm_ctl_reply_json(req, 200, json_pack("{s:s,s:b}", "member", name, "drained", drain));
}

/* ---- intents ---- */

static json_t *intents_get(void *arg, int64_t now_s)
{
    struct dns_ctl_env *env = arg;

    return json_pack("{s:o*,s:o*}", "intents",
                     cm_intents_json(dns_state_intents(env->state), now_s), "digest",
                     dns_state_digest_json(env->state, now_s));
}

static int intents_put(void *arg, const char *text, size_t len, int64_t now_s, bool *changed,
                       char *err, size_t errlen)
{
    struct dns_ctl_env *env = arg;
    int rc = cm_etcd_refuse_intent(dns_state_conf(env->state), "dnsd", err, errlen);

    *changed = false;
    return rc != CM_OK ? rc
                       : dns_state_intent_put(env->state, text, len, now_s, changed, err, errlen);
}

static int intents_remove(void *arg, const char *id, const char *by, int64_t now_s, char *err,
                          size_t errlen)
{
    struct dns_ctl_env *env = arg;
    int rc = cm_etcd_refuse_intent(dns_state_conf(env->state), "dnsd", err, errlen);

    return rc != CM_OK ? rc : dns_state_intent_remove(env->state, id, by, now_s, err, errlen);
}

/* ---- explain ---- */

struct explain_client {
    struct cm_addr addr; /* the source address (port 0), host bits cleared when ECS */
    int family;
    uint8_t *bytes; /* into addr */
    unsigned bits;  /* 32/128, or the ECS source prefix length */
    bool has_ecs;
};

static int explain_client_parse(const char *client, const char *ecs, struct explain_client *c,
                                char *err, size_t errlen)
{
    unsigned full;
    uint64_t bits;

    if (client == NULL || cm_ip_parse(client, &c->addr) != CM_OK) {
        cm_errf(err, errlen, "client: not a numeric IP address");
        return CM_EINVAL;
    }
    c->family = c->addr.ss.ss_family;
    if (c->family == AF_INET) {
        c->bytes = (uint8_t *)&((struct sockaddr_in *)&c->addr.ss)->sin_addr;
        full = 32;
    } else {
        c->bytes = (uint8_t *)&((struct sockaddr_in6 *)&c->addr.ss)->sin6_addr;
        full = 128;
    }
    c->bits = full;
    c->has_ecs = ecs != NULL;
    if (ecs == NULL)
        return CM_OK;
    if (!cm_parse_u64(ecs, full, &bits)) {
        cm_errf(err, errlen, "ecs: not a prefix length 0..%u", full);
        return CM_EINVAL;
    }
    c->bits = (unsigned)bits;
    /* RFC 7871 §6: address bits beyond the source prefix must be zero. */
    for (unsigned i = 0; i < full / 8; i++) {
        unsigned keep = c->bits > i * 8 ? c->bits - i * 8 : 0;

        if (keep < 8)
            c->bytes[i] &= (uint8_t)(0xff00u >> keep);
    }
    return CM_OK;
}

/* The wire query a resolver would send: RD=0, EDNS0, ECS when asked. */
static int explain_query(const ldns_rdf *qname, uint16_t qtype, const struct explain_client *c,
                         uint8_t *q, size_t cap, size_t *qlen)
{
    size_t nlen = ldns_rdf_size(qname);
    size_t addr_len = (c->bits + 7) / 8;
    size_t opt_len = c->has_ecs ? 4 + 4 + addr_len : 0;
    size_t len = 12 + nlen + 4 + 11 + opt_len;
    uint8_t *p = q;

    if (len > cap)
        return CM_ETOOBIG;
    memset(q, 0, 12);
    q[0] = EXPLAIN_QUERY_ID >> 8;
    q[1] = EXPLAIN_QUERY_ID & 0xff;
    q[5] = 1;  /* QDCOUNT */
    q[11] = 1; /* ARCOUNT: OPT */
    p += 12;
    memcpy(p, ldns_rdf_data(qname), nlen);
    p += nlen;
    *p++ = (uint8_t)(qtype >> 8);
    *p++ = (uint8_t)qtype;
    *p++ = 0;
    *p++ = 1; /* IN */
    *p++ = 0; /* OPT owner: root */
    *p++ = 0;
    *p++ = 41;
    *p++ = EXPLAIN_EDNS_SIZE >> 8;
    *p++ = EXPLAIN_EDNS_SIZE & 0xff;
    *p++ = 0; /* extended rcode, version, flags */
    *p++ = 0;
    *p++ = 0;
    *p++ = 0;
    *p++ = (uint8_t)(opt_len >> 8);
    *p++ = (uint8_t)opt_len;
    if (c->has_ecs) {
        *p++ = 0;
        *p++ = DNS_EDNS_OPT_ECS;
        *p++ = (uint8_t)((4 + addr_len) >> 8);
        *p++ = (uint8_t)(4 + addr_len);
        *p++ = 0;
        *p++ = c->family == AF_INET ? 1 : 2;
        *p++ = (uint8_t)c->bits;
        *p++ = 0; /* scope */
        memcpy(p, c->bytes, addr_len);
        p += addr_len;
    }
    *qlen = (size_t)(p - q);
    return CM_OK;
}

static json_t *rr_list_json(const ldns_rr_list *list)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr != NULL && i < ldns_rr_list_rr_count(list); i++) {
        char *s = ldns_rr2str(ldns_rr_list_rr(list, i));
        size_t n;

        if (s == NULL)
            continue;
        n = strlen(s);
        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
            s[--n] = '\0';
        json_array_append_new(arr, json_string(s));
        LDNS_FREE(s);
    }
    return arr;
}

static json_t *flags_json(const ldns_pkt *pkt)
{
    json_t *f = json_array();

    if (f == NULL)
        return NULL;
    if (ldns_pkt_qr(pkt))
        json_array_append_new(f, json_string("qr"));
    if (ldns_pkt_aa(pkt))
        json_array_append_new(f, json_string("aa"));
    if (ldns_pkt_tc(pkt))
        json_array_append_new(f, json_string("tc"));
    if (ldns_pkt_rd(pkt))
        json_array_append_new(f, json_string("rd"));
    if (ldns_pkt_ra(pkt))
        json_array_append_new(f, json_string("ra"));
    if (ldns_pkt_ad(pkt))
        json_array_append_new(f, json_string("ad"));
    if (ldns_pkt_cd(pkt))
        json_array_append_new(f, json_string("cd"));
    return f;
}

/* Runs one query through the query path and decodes the answer. */
static json_t *explain_response(const struct dns_view *view, const ldns_rdf *qname, uint16_t qtype,
                                const struct explain_client *c)
{
    uint8_t q[512];
    uint8_t *resp = NULL;
    size_t qlen, rlen;
    struct dns_query_info info;
    ldns_pkt *pkt = NULL;
    json_t *out = NULL;
    struct dns_ecs ecs;

    if (explain_query(qname, qtype, c, q, sizeof(q), &qlen) != CM_OK)
        return json_pack("{s:s}", "error", "query too large");
    resp = malloc(65535);
    if (resp == NULL)
        return NULL;
    memset(&info, 0, sizeof(info));
    info.service = -1;
    rlen = dns_query_process(view, q, qlen, resp, 65535, (const struct sockaddr *)&c->addr.ss,
                             false, &info, (uint32_t)time(NULL));
    if (rlen == 0) {
        out = json_pack("{s:s}", "error", "no response (the query would be dropped)");
        goto out;
    }
    if (ldns_wire2pkt(&pkt, resp, rlen) != LDNS_STATUS_OK) {
        out =
            json_pack("{s:s,s:I}", "error", "response does not parse", "length", (json_int_t)rlen);
        goto out;
    }
    out = json_pack(
        "{s:s,s:o*,s:o*,s:o*,s:o*,s:o,s:b,s:b,s:I}", "rcode", dns_rcode_name(info.rcode), "flags",
        flags_json(pkt), "answer", rr_list_json(ldns_pkt_answer(pkt)), "authority",
        rr_list_json(ldns_pkt_authority(pkt)), "additional", rr_list_json(ldns_pkt_additional(pkt)),
        "ecs_scope", dns_resp_ecs(pkt, &ecs) ? json_integer(ecs.scope_len) : json_null(),
        "federated", info.federated, "fail_open", info.fail_open, "size", (json_int_t)rlen);
out:
    ldns_pkt_free(pkt);
    free(resp);
    return out;
}

/* "Web.Fed.Example.Test." -> "web.fed.example.test" for dns_explain. */
static void name_normalize(const char *name, char *out, size_t cap)
{
    cm_strlcpy(out, name, cap);
    dns_name_text_normalize(out);
}

/* Which source placed the client, in words (dns_geo_describe). */
static void placement_text(const struct dns_view *view, const struct explain_client *c,
                           const struct dns_client_loc *loc, char *buf, size_t cap)
{
    const uint8_t *addr = c->bytes;
    int family = c->family;

    if (loc->source == DNS_PLACE_DEFAULT || view->geo == NULL) {
        snprintf(buf, cap, "default region");
        return;
    }
    if (family == AF_INET6 && IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)(const void *)addr)) {
        family = AF_INET;
        addr += 12;
    }
    dns_geo_describe(view->geo, family, addr, loc->matched_len, loc->value, buf, cap);
}

static json_t *explain_client_json(const struct dns_view *view, const struct explain_client *c,
                                   const struct dns_client_loc *loc, bool ecs_used)
{
    const struct cm_conf *conf = view->conf;
    char ip[CM_ADDR_STRLEN], placement[256];

    cm_ip_format((const struct sockaddr *)&c->addr.ss, ip, sizeof(ip));
    placement_text(view, c, loc, placement, sizeof(placement));
    return json_pack("{s:s,s:o,s:s,s:s,s:i,s:I,s:b,s:s,s:s}", "address", ip, "ecs_prefix",
                     c->has_ecs ? json_integer(c->bits) : json_null(), "region",
                     loc->region < conf->region_count ? conf->regions[loc->region].name : "?",
                     "how", loc->how != NULL ? loc->how : "", "scope_len", (int)loc->scope_len,
                     "client_hash", (json_int_t)loc->client_hash, "ecs_used", ecs_used, "placed_by",
                     dns_place_source_name((enum dns_place_source)loc->source), "placement",
                     placement);
}

int dns_ctl_explain(const struct dns_ctl_env *env, const char *name, const char *client,
                    const char *ecs, json_t **out, char *err, size_t errlen)
{
    const struct dns_view *view = env->view;
    struct explain_client c;
    struct dns_client_loc loc;
    ldns_rdf *qname = NULL;
    char norm[DNS_NAME_MAX + 2];
    json_t *decision, *doc;
    bool ecs_used;
    int rc;

    if (view == NULL) {
        cm_errf(err, errlen, "no view yet");
        return CM_EAGAIN;
    }
    if (name == NULL || name[0] == '\0' || strlen(name) > DNS_NAME_MAX) {
        cm_errf(err, errlen, "name: missing or too long");
        return CM_EINVAL;
    }
    if (ldns_str2rdf_dname(&qname, name) != LDNS_STATUS_OK) {
        cm_errf(err, errlen, "name: not a domain name");
        return CM_EINVAL;
    }
    rc = explain_client_parse(client, ecs, &c, err, errlen);
    if (rc != CM_OK)
        goto out;
    ecs_used = c.has_ecs && view->conf->dnsd.ecs;
    memset(&loc, 0, sizeof(loc));
    dns_query_locate(view, c.family, c.bytes, ecs_used ? c.bits : (c.family == AF_INET ? 32 : 128),
                     ecs_used, &loc);
    name_normalize(name, norm, sizeof(norm));
    decision = dns_explain(view->fed, view->conf, dns_state_merged(env->state),
                           dns_state_intent_view(env->state), norm, loc.region, loc.client_hash);
    doc = json_pack("{s:s,s:o*,s:o,s:{s:o*,s:o*},s:I}", "name", name, "client",
                    explain_client_json(view, &c, &loc, ecs_used), "decision",
                    decision != NULL ? decision : json_null(), "response", "A",
                    explain_response(view, qname, DNS_TYPE_A, &c), "AAAA",
                    explain_response(view, qname, DNS_TYPE_AAAA, &c), "view_serial",
                    (json_int_t)view->serial);
    if (doc == NULL) {
        rc = CM_ENOMEM;
        cm_errf(err, errlen, "out of memory");
        goto out;
    }
    *out = doc;
out:
    ldns_rdf_deep_free(qname);
    return rc;
}

int dns_ctl_explain_region(const struct dns_ctl_env *env, const char *name, const char *region,
                           json_t **out, char *err, size_t errlen)
{
    const struct dns_view *view = env->view;
    char norm[DNS_NAME_MAX + 2];
    json_t *decision, *doc;
    int r;

    if (view == NULL) {
        cm_errf(err, errlen, "no view yet");
        return CM_EAGAIN;
    }
    if (name == NULL || name[0] == '\0' || strlen(name) > DNS_NAME_MAX) {
        cm_errf(err, errlen, "name: missing or too long");
        return CM_EINVAL;
    }
    r = region != NULL ? cm_conf_region_index(view->conf, region) : -1;
    if (r < 0) {
        cm_errf(err, errlen, "region: unknown region \"%s\"", region != NULL ? region : "");
        return CM_EINVAL;
    }
    name_normalize(name, norm, sizeof(norm));
    /* No client address: the slot of a shared answer is that of hash 0. */
    decision = dns_explain(view->fed, view->conf, dns_state_merged(env->state),
                           dns_state_intent_view(env->state), norm, (unsigned)r, 0);
    doc = json_pack("{s:s,s:{s:n,s:n,s:s,s:s,s:n,s:i,s:b},s:o,s:n,s:I}", "name", name, "client",
                    "address", "ecs_prefix", "region", view->conf->regions[r].name, "how",
                    "region parameter", "scope_len", "client_hash", 0, "ecs_used", false,
                    "decision", decision != NULL ? decision : json_null(), "response",
                    "view_serial", (json_int_t)view->serial);
    if (doc == NULL) {
        cm_errf(err, errlen, "out of memory");
        return CM_ENOMEM;
    }
    *out = doc;
    return CM_OK;
}

static void route_explain(void *arg, struct cm_ctl_req *req, const char *rest)
{
    struct dns_ctl_env *env = arg;
    struct evkeyvalq q;
    char err[256] = "";
    json_t *doc = NULL;
    const char *client, *region;
    int rc;

    if (rest[0] != '\0') {
        cm_ctl_reply_error(req, 404, "not found");
        return;
    }
    TAILQ_INIT(&q);
    if (cm_ctl_query_parse(req, &q) != CM_OK) {
        cm_ctl_reply_error(req, 400, "malformed query string");
        goto out;
    }
    client = cm_ctl_query_param(&q, "client");
    region = cm_ctl_query_param(&q, "region");
    if (client != NULL && region != NULL) {
        cm_ctl_reply_error(req, 400, "give client or region, not both");
        goto out;
    }
    if (region != NULL && cm_ctl_query_param(&q, "ecs") != NULL) {
        cm_ctl_reply_error(req, 400, "ecs: only with client");
        goto out;
    }
    if (region != NULL)
        rc = dns_ctl_explain_region(env, cm_ctl_query_param(&q, "name"), region, &doc, err,
                                    sizeof(err));
    else
        rc = dns_ctl_explain(env, cm_ctl_query_param(&q, "name"), client,
                             cm_ctl_query_param(&q, "ecs"), &doc, err, sizeof(err));
    if (rc == CM_OK)
        cm_ctl_reply_json(req, 200, doc);
    else
        cm_ctl_reply_error(req, rc == CM_EINVAL ? 400 : rc == CM_EAGAIN ? 503 : 500, "%s", err);
out:
    evhttp_clear_headers(&q);
}

/* ---- answers ---- */

/* One member of one service as the merge and the ranking see it. */
static json_t *answers_member_json(const struct dns_rank_member *rm)
{
    const struct cm_state_endpoint *src = rm->present && rm->ep != NULL ? rm->ep->src : NULL;

    return json_pack("{s:b,s:b,s:i,s:i,s:b,s:b,s:s,s:i,s:s?,s:b,s:s?,s:i,s:i}", "present",
                     rm->present, "healthy", rm->healthy, "votes_up",
                     rm->ep != NULL ? (int)rm->ep->votes_up : 0, "votes_down",
                     rm->ep != NULL ? (int)rm->ep->votes_down : 0, "pending",
                     rm->present && rm->ep->pending, "drained", rm->drained, "admin",
                     dns_rank_admin_text(rm->admin), "ready_endpoints",
                     src != NULL ? (int)src->ready_endpoints : 0, "reason",
                     src != NULL ? src->reason : NULL, "eligible", rm->eligible, "excluded",
                     rm->why_not, "weight", (int)rm->weight, "priority", (int)rm->priority);
}

/* What clients of one region get for the service's global name. */
static json_t *answers_decision_json(const struct dns_rank_service *rs,
                                     const struct dns_rank_decision *d)
{
    const struct cm_conf *conf = rs->ctx->conf;
    json_t *chosen = json_array();
    const char *selected = NULL;
    const char *cname = NULL;

    for (size_t i = 0; chosen != NULL && i < d->chosen_count; i++)
        json_array_append_new(chosen, json_string(conf->members[d->chosen[i]].name));
    if (d->rule == DNS_RANK_BEST || d->rule == DNS_RANK_HOSTNAME)
        selected = conf->members[d->chosen[0]].name;
    if (d->rule == DNS_RANK_HOSTNAME)
        cname = rs->members[d->chosen[0]].ep->src->hostname;
    else if (d->rule == DNS_RANK_SORRY)
        cname = rs->policy->sorry_target;
    return json_pack("{s:s,s:o*,s:s?,s:s?,s:b,s:i}", "rule", dns_rank_rule_text(d->rule), "chosen",
                     chosen, "member", selected, "cname", cname, "fail_open",
                     d->rule == DNS_RANK_FAIL_OPEN, "ttl", (int)d->ttl);
}

static json_t *answers_service_json(const struct dns_rank_ctx *ctx,
                                    const struct cm_merged_service *ms,
                                    struct dns_rank_member *members, struct dns_rank_entry *ranked)
{
    const struct cm_conf *conf = ctx->conf;
    const struct cm_conf_service *cs = ms->conf_index >= 0 ? &conf->services[ms->conf_index] : NULL;
    struct dns_rank_scope scope = {.level = DNS_RANK_GLOBAL};
    struct dns_rank_service rs;
    struct dns_rank_decision d;
    json_t *mem = json_object();
    json_t *reg = json_object();

    dns_rank_service_init(&rs, ctx, ms, cs != NULL ? &cs->policy : NULL, members);
    for (size_t m = 0; mem != NULL && m < conf->member_count; m++)
        json_object_set_new(mem, conf->members[m].name, answers_member_json(&members[m]));
    for (size_t r = 0; reg != NULL && r < conf->region_count; r++) {
        size_t n = dns_rank_order(&rs, r, ranked);

        dns_rank_decide(&rs, &scope, ranked, n, &d);
        json_object_set_new(reg, conf->regions[r].name, answers_decision_json(&rs, &d));
    }
    return json_pack("{s:b,s:o*,s:o*}", "configured", cs != NULL, "members", mem, "regions", reg);
}

int dns_ctl_answers(const struct dns_ctl_env *env, json_t **out, char *err, size_t errlen)
{
    const struct dns_view *view = env->view;
    const struct cm_merged *merged = dns_state_merged(env->state);
    struct dns_rank_member *members = NULL;
    struct dns_rank_entry *ranked = NULL;
    struct dns_rank_ctx ctx;
    json_t *svcs = NULL, *doc = NULL;
    size_t nm;
    int rc = CM_ENOMEM;

    if (view == NULL) {
        cm_errf(err, errlen, "no view yet");
        return CM_EAGAIN;
    }
    nm = view->conf->member_count > 0 ? view->conf->member_count : 1;
    if (dns_rank_ctx_init(&ctx, view->conf, merged, dns_state_intent_view(env->state)) != CM_OK) {
        cm_errf(err, errlen, "out of memory");
        return CM_ENOMEM;
    }
    members = calloc(nm, sizeof(*members));
    ranked = calloc(nm, sizeof(*ranked));
    svcs = json_object();
    if (members == NULL || ranked == NULL || svcs == NULL)
        goto out;
    for (size_t i = 0; i < merged->service_count; i++) {
        json_t *s = answers_service_json(&ctx, &merged->services[i], members, ranked);

        if (s == NULL || json_object_set_new(svcs, merged->services[i].key, s) != 0)
            goto out;
    }
    doc = json_pack("{s:O,s:I}", "services", svcs, "view_serial", (json_int_t)view->serial);
    if (doc != NULL) {
        *out = doc;
        rc = CM_OK;
    }
out:
    if (rc != CM_OK)
        cm_errf(err, errlen, "out of memory");
    json_decref(svcs);
    free(members);
    free(ranked);
    dns_rank_ctx_fini(&ctx);
    return rc;
}

static void route_answers(void *arg, struct cm_ctl_req *req, const char *rest)
{
    struct dns_ctl_env *env = arg;
    char err[256] = "";
    json_t *doc = NULL;
    int rc;

    if (rest[0] != '\0' && strcmp(rest, "/") != 0) {
        cm_ctl_reply_error(req, 404, "not found");
        return;
    }
    rc = dns_ctl_answers(env, &doc, err, sizeof(err));
    if (rc == CM_OK)
        cm_ctl_reply_json(req, 200, doc);
    else
        cm_ctl_reply_error(req, rc == CM_EAGAIN ? 503 : 500, "%s", err);
}

/* ---- metrics ---- */

static void sample_label(struct cm_buf *out, const char *family, const char *key, const char *value,
                         double v)
{
    struct cm_buf labels;

    cm_buf_init(&labels, 1024);
    cm_metrics_label(&labels, key, value);
    cm_metrics_sample(out, family, cm_buf_cstr(&labels), v);
    cm_buf_fini(&labels);
}

static void metrics_server(const struct dns_ctl_env *env, const struct dns_server_stats *s,
                           struct cm_buf *out)
{
    static const char *const transports[DNS_STAT_TRANSPORT_COUNT] = {"udp", "tcp"};
    const struct dns_fed *fed = env->view != NULL ? env->view->fed : NULL;
    const struct cm_conf *conf = env->view != NULL ? env->view->conf : NULL;
    size_t nsvc = fed != NULL ? dns_fed_service_count(fed) : 0;

    cm_metrics_family(out, "fedgslb_dns_queries_total", "counter",
                      "DNS queries received, by transport and query type.");
    for (int t = 0; t < DNS_STAT_TRANSPORT_COUNT; t++) {
        for (int k = 0; k < DNS_STAT_QTYPE_COUNT; k++) {
            char lbl[64];

            snprintf(lbl, sizeof(lbl), "transport=\"%s\",qtype=\"%s\"", transports[t],
                     dns_stat_qtype_name((enum dns_stat_qtype)k));
            cm_metrics_sample(out, "fedgslb_dns_queries_total", lbl, (double)s->queries[t][k]);
        }
    }
    cm_metrics_family(out, "fedgslb_dns_responses_total", "counter", "DNS responses, by rcode.");
    for (unsigned r = 0; r < DNS_STAT_RCODES; r++) {
        if (s->responses[r] == 0 && r != 0 && r != 3 && r != 5)
            continue;
        sample_label(out, "fedgslb_dns_responses_total", "rcode",
                     r == DNS_STAT_RCODES - 1 ? "other" : dns_rcode_name(r),
                     (double)s->responses[r]);
    }
    cm_metrics_family(out, "fedgslb_dns_truncated_total", "counter", "Responses sent with TC=1.");
    cm_metrics_sample(out, "fedgslb_dns_truncated_total", NULL, (double)s->truncated);
    cm_metrics_family(out, "fedgslb_dns_ecs_queries_total", "counter",
                      "Queries whose EDNS Client Subnet option was used.");
    cm_metrics_sample(out, "fedgslb_dns_ecs_queries_total", NULL, (double)s->ecs);
    cm_metrics_family(out, "fedgslb_dns_dropped_total", "counter",
                      "Packets not answered (malformed, responses) or not sent.");
    cm_metrics_sample(out, "fedgslb_dns_dropped_total", NULL, (double)s->dropped);
    cm_metrics_family(out, "fedgslb_dns_rrl_responses_total", "counter",
                      "UDP responses seen by response rate limiting (dnsd.rrl), by action.");
    for (unsigned a = 0; a < DNS_RRL_ACTION_COUNT; a++)
        sample_label(out, "fedgslb_dns_rrl_responses_total", "action",
                     dns_rrl_action_name((enum dns_rrl_action)a), (double)s->rrl[a]);
    cm_metrics_family(out, "fedgslb_dns_rrl_limited_total", "counter",
                      "UDP responses slipped or dropped by rate limiting, by response class.");
    for (unsigned c = 0; c < DNS_RRL_CLASS_COUNT; c++)
        sample_label(out, "fedgslb_dns_rrl_limited_total", "class",
                     dns_rrl_class_name((enum dns_rrl_class)c), (double)s->rrl_limited[c]);
    cm_metrics_family(out, "fedgslb_dns_client_placement_total", "counter",
                      "Federated answers by what placed the client: client_networks, geo_map, "
                      "nearest (GeoIP coordinates) or default (dnsd.region).");
    for (unsigned k = 0; k < DNS_PLACE_COUNT; k++)
        sample_label(out, "fedgslb_dns_client_placement_total", "source",
                     dns_place_source_name((enum dns_place_source)k), (double)s->placement[k]);
    cm_metrics_family(out, "fedgslb_dns_tcp_connections_total", "counter",
                      "TCP connections, by outcome.");
    sample_label(out, "fedgslb_dns_tcp_connections_total", "result", "accepted",
                 (double)s->tcp_accepted);
    sample_label(out, "fedgslb_dns_tcp_connections_total", "result", "refused",
                 (double)s->tcp_refused);
    sample_label(out, "fedgslb_dns_tcp_connections_total", "result", "closed_idle",
                 (double)s->tcp_closed_idle);
    sample_label(out, "fedgslb_dns_tcp_connections_total", "result", "evicted",
                 (double)s->tcp_evicted);
    sample_label(out, "fedgslb_dns_tcp_connections_total", "result", "source_cap",
                 (double)s->tcp_source_cap);
    cm_metrics_family(out, "fedgslb_dns_answers_total", "counter",
                      "Answers from the federated table, by service.");
    for (size_t i = 0; i < nsvc && i < DNS_STAT_SERVICES; i++)
        sample_label(out, "fedgslb_dns_answers_total", "service", dns_fed_service_key(fed, i),
                     (double)s->answers[i]);
    cm_metrics_family(out, "fedgslb_dns_fail_open_total", "counter",
                      "Federated answers that failed open (nothing healthy), by service.");
    for (size_t i = 0; i < nsvc && i < DNS_STAT_SERVICES; i++)
        sample_label(out, "fedgslb_dns_fail_open_total", "service", dns_fed_service_key(fed, i),
                     (double)s->fail_open[i]);
    cm_metrics_family(out, "fedgslb_dns_fail_closed_total", "counter",
                      "Federated answers that failed closed (NODATA by policy), by service.");
    for (size_t i = 0; i < nsvc && i < DNS_STAT_SERVICES; i++)
        sample_label(out, "fedgslb_dns_fail_closed_total", "service", dns_fed_service_key(fed, i),
                     (double)s->fail_closed[i]);
    cm_metrics_family(out, "fedgslb_dns_member_answers_total", "counter",
                      "Federated answers that sent clients to a member, by member.");
    for (size_t i = 0; conf != NULL && i < conf->member_count && i < DNS_STAT_MEMBERS; i++)
        sample_label(out, "fedgslb_dns_member_answers_total", "member", conf->members[i].name,
                     (double)s->member_answers[i]);
    cm_metrics_family(out, "fedgslb_dns_region_answers_total", "counter",
                      "Federated answers by the client's region.");
    for (size_t i = 0; conf != NULL && i < conf->region_count && i < DNS_STAT_REGIONS; i++)
        sample_label(out, "fedgslb_dns_region_answers_total", "region", conf->regions[i].name,
                     (double)s->region_answers[i]);
}

/* The UDP processing time per query as a Prometheus histogram (cumulative). */
static void metrics_latency(const struct dns_server_stats *s, struct cm_buf *out)
{
    static const char name[] = "fedgslb_dns_query_duration_seconds";
    uint64_t cum = 0;
    char le[32];

    cm_metrics_family(out, name, "histogram",
                      "Time to process a UDP query, from its batch's receipt to its answer "
                      "(a recvmmsg batch's time shared by its queries); network time excluded.");
    for (int b = 0; b < DNS_STAT_LAT_BUCKETS; b++) {
        cum += s->lat_buckets[b];
        if (b < DNS_STAT_LAT_BUCKETS - 1)
            snprintf(le, sizeof(le), "le=\"%g\"", dns_stat_lat_bounds_us[b] / 1e6);
        else
            snprintf(le, sizeof(le), "le=\"+Inf\"");
        cm_metrics_sample(out, "fedgslb_dns_query_duration_seconds_bucket", le, (double)cum);
    }
    cm_metrics_sample(out, "fedgslb_dns_query_duration_seconds_sum", NULL,
                      (double)s->lat_sum_us / 1e6);
    cm_metrics_sample(out, "fedgslb_dns_query_duration_seconds_count", NULL, (double)cum);
}

/* The sampled query log (dnsd.query_log): lines written, records dropped. */
static void metrics_query_log(const struct dns_server *srv, struct cm_buf *out)
{
    const struct dns_qlog *ql = srv != NULL ? dns_server_qlog(srv) : NULL;

    cm_metrics_family(out, "fedgslb_dns_query_log_lines_total", "counter",
                      "Sampled queries written to the debug query log (dnsd.query_log).");
    cm_metrics_sample(out, "fedgslb_dns_query_log_lines_total", NULL,
                      ql != NULL ? (double)dns_qlog_logged(ql) : 0);
    cm_metrics_family(out, "fedgslb_dns_query_log_dropped_total", "counter",
                      "Sampled queries not logged because the worker's ring was full.");
    cm_metrics_sample(out, "fedgslb_dns_query_log_dropped_total", NULL,
                      ql != NULL ? (double)dns_qlog_dropped(ql) : 0);
}

/* The workers' UDP packet caches (dnsd.packet_cache), summed. */
static void metrics_pcache(const struct dns_server *srv, struct cm_buf *out)
{
    static const char name[] = "fedgslb_dns_packet_cache_total";
    struct dns_pcache_stats st = {0};

    if (srv != NULL)
        dns_server_pcache_stats(srv, &st);
    cm_metrics_family(out, name, "counter",
                      "UDP queries through the packet cache (dnsd.packet_cache), by result: hit "
                      "(answered from the cache), miss (answered by the query path), insert (a "
                      "miss stored), uncacheable (a miss not stored: cookie, size, no response).");
    sample_label(out, name, "result", "hit", (double)st.hits);
    sample_label(out, name, "result", "miss", (double)st.misses);
    sample_label(out, name, "result", "insert", (double)st.inserts);
    sample_label(out, name, "result", "uncacheable", (double)st.uncacheable);
}

/* Per listen address, summed over the workers' TCP listeners. */
static void metrics_accept(const struct dns_server *srv, struct cm_buf *out)
{
    cm_metrics_family(out, "fedgslb_accept_exhausted_total", "counter",
                      "Failed accepts for want of descriptors or memory (EMFILE, ENFILE, "
                      "ENOBUFS, ENOMEM); each pauses the listener, by listener.");
    for (size_t i = 0; srv != NULL && i < dns_server_listen_count(srv); i++) {
        char name[CM_ADDR_STRLEN];
        uint64_t n = dns_server_accept_exhausted(srv, i, name, sizeof(name));

        sample_label(out, "fedgslb_accept_exhausted_total", "listener", name, (double)n);
    }
}

static void metrics_state(const struct dns_ctl_env *env, struct cm_buf *out)
{
    const struct cm_conf *conf = dns_state_conf(env->state);
    uint64_t now = cm_mono_ms();
    int64_t now_s = cm_wall_s();
    size_t n = dns_state_vantage_count(env->state);

    cm_metrics_family(out, "fedgslb_state_generation", "gauge",
                      "Generation of the last accepted state document, by vantage.");
    for (size_t i = 0; i < n; i++) {
        const struct cm_state *doc = dns_state_vantage(env->state, i, NULL);

        sample_label(out, "fedgslb_state_generation", "vantage", doc->vantage,
                     (double)doc->generation);
    }
    cm_metrics_family(out, "fedgslb_state_age_seconds", "gauge",
                      "Seconds since the vantage's last document was accepted.");
    for (size_t i = 0; i < n; i++) {
        uint64_t at = 0;
        const struct cm_state *doc = dns_state_vantage(env->state, i, &at);

        sample_label(out, "fedgslb_state_age_seconds", "vantage", doc->vantage,
                     now > at ? (double)(now - at) / 1000.0 : 0.0);
    }
    cm_metrics_family(out, "fedgslb_state_deltas_total", "counter",
                      "State deltas pushed, by result: applied, conflict (the base generation is "
                      "not held: the sender sends the whole document), rejected (invalid).");
    {
        struct cm_store_delta_counts d = dns_state_delta_counts(env->state);

        sample_label(out, "fedgslb_state_deltas_total", "result", "applied", (double)d.applied);
        sample_label(out, "fedgslb_state_deltas_total", "result", "conflict", (double)d.conflict);
        sample_label(out, "fedgslb_state_deltas_total", "result", "rejected", (double)d.rejected);
    }
    cm_metrics_family(out, "fedgslb_member_drained", "gauge",
                      "1 when an operator intent takes the member out of every answer (a drain, "
                      "or an evacuation of its region).");
    for (size_t i = 0; i < conf->member_count; i++)
        sample_label(out, "fedgslb_member_drained", "member", conf->members[i].name,
                     dns_state_is_drained(env->state, i) ? 1 : 0);
    cm_intents_metrics(dns_state_intents(env->state), dns_state_digest_json(env->state, now_s),
                       now_s, out);
}

static void metrics(void *arg, struct cm_buf *out)
{
    struct dns_ctl_env *env = arg;
    struct dns_server_stats *s = calloc(1, sizeof(*s));

    if (s != NULL) {
        if (env->server != NULL)
            dns_server_stats(env->server, s);
        metrics_server(env, s, out);
        metrics_latency(s, out);
        free(s);
    }
    metrics_accept(env->server, out);
    metrics_query_log(env->server, out);
    metrics_pcache(env->server, out);
    if (env->etcd != NULL)
        cm_etcd_consumer_metrics(env->etcd, out);
    cm_metrics_family(out, "fedgslb_dns_table_builds_total", "counter",
                      "Answer tables (views) built since start.");
    cm_metrics_sample(out, "fedgslb_dns_table_builds_total", NULL, (double)env->table_builds);
    cm_metrics_family(out, "fedgslb_dns_table_incremental_builds_total", "counter",
                      "Answer tables built sharing the unchanged services' answers of the "
                      "previous one.");
    cm_metrics_sample(out, "fedgslb_dns_table_incremental_builds_total", NULL,
                      (double)env->table_builds_incr);
    cm_metrics_family(out, "fedgslb_dns_table_services_built_total", "counter",
                      "Services whose answers table builds made (the others were shared).");
    cm_metrics_sample(out, "fedgslb_dns_table_services_built_total", NULL,
                      (double)env->table_svcs_built);
    cm_metrics_family(out, "fedgslb_dns_table_build_seconds", "gauge",
                      "Duration of the last answer table build.");
    cm_metrics_sample(out, "fedgslb_dns_table_build_seconds", NULL, env->last_build_s);
    cm_metrics_family(out, "fedgslb_dns_view_serial", "gauge", "Serial of the view in service.");
    cm_metrics_sample(out, "fedgslb_dns_view_serial", NULL,
                      env->view != NULL ? (double)env->view->serial : 0);
    metrics_state(env, out);
    dns_ctl_metrics_health(env, out);
    cm_metrics_family(out, "fedgslb_dns_zone_names", "gauge", "Owner names in the static zone.");
    cm_metrics_sample(out, "fedgslb_dns_zone_names", NULL,
                      env->view != NULL ? (double)dns_zone_name_count(env->view->zone) : 0);
    cm_metrics_family(out, "fedgslb_dns_fed_names", "gauge", "Names in the federated table.");
    cm_metrics_sample(out, "fedgslb_dns_fed_names", NULL,
                      env->view != NULL ? (double)dns_fed_name_count(env->view->fed) : 0);
}

/* ---- peers ---- */

/* GET /v1/peers: whether the other name servers answer from our state. */
static void route_peers(void *arg, struct cm_ctl_req *req, const char *rest)
{
    struct dns_ctl *dc = arg;
    struct dns_ctl_env *env = dc->env;
    json_t *doc;

    (void)rest;
    doc = dns_peers_json(dc->peers, dns_state_conf(env->state),
                         dns_state_digest_json(env->state, cm_wall_s()), cm_mono_ms());
    if (doc == NULL)
        cm_ctl_reply_error(req, 500, "out of memory");
    else
        cm_ctl_reply_json(req, 200, doc);
}

/* ---- lifecycle ---- */

int dns_ctl_new(struct event_base *base, const struct cm_conf_control *conf,
                struct dns_ctl_env *env, struct dns_ctl **out, char *err, size_t errlen)
{
    struct cm_ctl_callbacks cbs = {.metrics = metrics,
                                   .state_get = state_get,
                                   .state_put = state_put,
                                   .state_forget = state_forget,
                                   .arg = env};
    struct dns_ctl *dc = calloc(1, sizeof(*dc));
    int rc;

    if (dc == NULL)
        return CM_ENOMEM;
    dc->env = env;
    dc->peers = dns_peers_new(base);
    if (dc->peers == NULL) {
        rc = CM_ENOMEM;
        cm_errf(err, errlen, "control API: out of memory");
        goto out;
    }
    rc = cm_ctl_new(base, conf, &cbs, &dc->ctl, err, errlen);
    if (rc != CM_OK)
        goto out;
    rc = cm_ctl_route(dc->ctl, CM_HTTP_GET, "/v1/members", CM_CTL_READ, route_members, env);
    if (rc == CM_OK)
        rc = cm_ctl_route(dc->ctl, CM_HTTP_PUT | CM_HTTP_DELETE, "/v1/members/", CM_CTL_OPERATOR,
                          route_drain, env);
    dc->intent_routes = (struct cm_intent_routes){
        .get = intents_get, .put = intents_put, .remove = intents_remove, .arg = env};
    if (rc == CM_OK)
        rc = cm_intent_routes_register(dc->ctl, &dc->intent_routes);
    if (rc == CM_OK)
        rc = cm_ctl_route(dc->ctl, CM_HTTP_GET, "/v1/explain", CM_CTL_READ, route_explain, env);
    if (rc == CM_OK)
        rc = cm_ctl_route(dc->ctl, CM_HTTP_GET, "/v1/answers", CM_CTL_READ, route_answers, env);
    if (rc == CM_OK)
        rc = cm_ctl_route(dc->ctl, CM_HTTP_GET, "/v1/topology", CM_CTL_READ, dns_ctl_route_topology,
                          env);
    if (rc == CM_OK)
        rc = cm_ctl_route(dc->ctl, CM_HTTP_GET, "/v1/peers", CM_CTL_READ, route_peers, dc);
    if (rc == CM_OK)
        rc = cm_ui_register(dc->ctl, "dnsd.html");
    if (rc != CM_OK) {
        cm_errf(err, errlen, "control API: cannot register routes: %s", cm_strerror(rc));
        goto out;
    }
    *out = dc;
    dc = NULL;
out:
    dns_ctl_free(dc);
    return rc;
}

void dns_ctl_free(struct dns_ctl *ctl)
{
    if (ctl == NULL)
        return;
    cm_ctl_free(ctl->ctl);
    dns_peers_free(ctl->peers);
    free(ctl);
}

int dns_ctl_reload(struct dns_ctl *ctl, const struct cm_conf_control *conf, char *err,
                   size_t errlen)
{
    return cm_ctl_reload(ctl->ctl, conf, err, errlen);
}

int dns_ctl_port(const struct dns_ctl *ctl)
{
    return cm_ctl_port(ctl->ctl);
}
