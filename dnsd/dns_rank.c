/* SPDX-License-Identifier: Apache-2.0 */
/* dns_rank.c -- eligibility, latency order and the decision rules (see dns_rank.h). */
#include "dnsd/dns_rank.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_net.h"
#include "common/cm_state.h"
#include "common/cm_str.h"

const struct cm_conf_policy dns_rank_default_policy = {
    .all_down = CM_ALL_DOWN_FAIL_OPEN,
    .sorry_target = NULL,
    .max_answers = 8,
    .latency_slack_ms = 5,
};

struct name_sort {
    const struct cm_conf *conf;
    uint32_t idx;
};

static int name_cmp(const void *a, const void *b)
{
    const struct name_sort *x = a;
    const struct name_sort *y = b;
    int c = strcmp(x->conf->members[x->idx].name, y->conf->members[y->idx].name);

    if (c != 0)
        return c;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

int dns_rank_ctx_init(struct dns_rank_ctx *ctx, const struct cm_conf *conf,
                      const struct cm_merged *merged, const struct dns_drains *drains)
{
    size_t n = conf->member_count;
    struct name_sort *tmp;

    memset(ctx, 0, sizeof(*ctx));
    ctx->conf = conf;
    ctx->merged = merged;
    ctx->drained = drains != NULL ? drains->drained : NULL;
    ctx->name_rank = calloc(n > 0 ? n : 1, sizeof(*ctx->name_rank));
    tmp = calloc(n > 0 ? n : 1, sizeof(*tmp));
    if (ctx->name_rank == NULL || tmp == NULL) {
        free(tmp);
        dns_rank_ctx_fini(ctx);
        return CM_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        tmp[i].conf = conf;
        tmp[i].idx = (uint32_t)i;
    }
    qsort(tmp, n, sizeof(*tmp), name_cmp);
    for (size_t i = 0; i < n; i++)
        ctx->name_rank[tmp[i].idx] = (uint32_t)i;
    free(tmp);
    return CM_OK;
}

void dns_rank_ctx_fini(struct dns_rank_ctx *ctx)
{
    free(ctx->name_rank);
    ctx->name_rank = NULL;
}

size_t dns_rank_name_wire(const char *text, bool lower, uint8_t out[DNS_RANK_NAME_MAX])
{
    size_t len = strlen(text);
    size_t pos = 0;
    size_t i = 0;

    if (len > 0 && text[len - 1] == '.')
        len--;
    if (len == 0) {
        if (text[0] != '.')
            return 0;
        out[0] = 0;
        return 1;
    }
    while (i <= len) {
        size_t start = i;
        while (i < len && text[i] != '.')
            i++;
        size_t llen = i - start;
        if (llen == 0 || llen > 63 || pos + 1 + llen + 1 > DNS_RANK_NAME_MAX)
            return 0;
        out[pos++] = (uint8_t)llen;
        for (size_t k = 0; k < llen; k++) {
            unsigned char c = (unsigned char)text[start + k];
            if (lower && c >= 'A' && c <= 'Z')
                c = (unsigned char)(c - 'A' + 'a');
            out[pos++] = c;
        }
        i++; /* past the dot, or past the end */
    }
    out[pos++] = 0;
    return pos;
}

static void member_eval(const struct dns_rank_service *rs, size_t m, struct dns_rank_member *rm)
{
    const struct cm_merged_endpoint *ep = rs->msvc != NULL ? &rs->msvc->members[m] : NULL;
    const struct cm_state_endpoint *src = ep != NULL && ep->present ? ep->src : NULL;
    uint8_t wire[DNS_RANK_NAME_MAX];

    memset(rm, 0, sizeof(*rm));
    rm->ep = ep;
    rm->drained = rs->ctx->drained != NULL && rs->ctx->drained[m];
    if (src == NULL) {
        rm->why_not = "not reported by any vantage";
        return;
    }
    rm->present = true;
    rm->healthy = ep->healthy && src->ready_endpoints > 0;
    rm->has_addr = src->address_count > 0;
    rm->has_host = src->hostname != NULL && dns_rank_name_wire(src->hostname, false, wire) > 1;
    rm->fail_open_ok = !rm->drained && rm->has_addr;
    if (rm->drained)
        rm->why_not = "drained";
    else if (!ep->healthy)
        rm->why_not = "unhealthy by majority";
    else if (src->ready_endpoints == 0)
        rm->why_not = "0 ready endpoints";
    else if (!rm->has_addr && !rm->has_host)
        rm->why_not = "no address or hostname";
    else
        rm->eligible = true;
}

void dns_rank_service_init(struct dns_rank_service *rs, const struct dns_rank_ctx *ctx,
                           const struct cm_merged_service *msvc,
                           const struct cm_conf_policy *policy, struct dns_rank_member *members)
{
    const struct cm_conf *conf = ctx->conf;

    memset(rs, 0, sizeof(*rs));
    rs->ctx = ctx;
    rs->msvc = msvc;
    rs->policy = policy != NULL ? policy : &dns_rank_default_policy;
    rs->members = members;
    rs->pending_member = -1;
    for (size_t m = 0; m < conf->member_count; m++) {
        struct dns_rank_member *rm = &members[m];
        member_eval(rs, m, rm);
        rs->eligible_count += rm->eligible;
        rs->fail_open_count += rm->fail_open_ok;
        if (rm->present && rm->ep->pending && rs->pending_member < 0)
            rs->pending_member = (int)m;
    }
    rs->ttl = rs->pending_member >= 0 ? conf->dnsd.min_ttl_s : conf->dnsd.ttl_s;
}

double dns_rank_latency(const struct dns_rank_service *rs, size_t region, size_t member,
                        enum dns_rank_src *src)
{
    const struct cm_conf *conf = rs->ctx->conf;
    const struct cm_merged *merged = rs->ctx->merged;
    double rtt = NAN;
    uint32_t lat;

    if (merged != NULL)
        rtt = cm_merged_rtt(merged, region, rs->msvc, member);
    if (!isnan(rtt) && rtt >= 0) {
        *src = DNS_RANK_SRC_MEASURED;
        return rtt;
    }
    lat = cm_conf_latency(conf, region, conf->members[member].region);
    if (lat != CM_LATENCY_UNKNOWN) {
        *src = DNS_RANK_SRC_STATIC;
        return (double)lat;
    }
    *src = DNS_RANK_SRC_UNKNOWN;
    return DNS_RANK_UNKNOWN_RTT_MS;
}

/* Total order: latency, then (unknown latency only) the member's region, then name. */
static bool entry_before(const struct dns_rank_ctx *ctx, const struct dns_rank_entry *a,
                         const struct dns_rank_entry *b)
{
    size_t ra, rb;

    if (a->latency_ms != b->latency_ms)
        return a->latency_ms < b->latency_ms;
    ra = a->src == DNS_RANK_SRC_UNKNOWN ? ctx->conf->members[a->member].region + 1 : 0;
    rb = b->src == DNS_RANK_SRC_UNKNOWN ? ctx->conf->members[b->member].region + 1 : 0;
    if (ra != rb)
        return ra < rb;
    return ctx->name_rank[a->member] < ctx->name_rank[b->member];
}

size_t dns_rank_order(const struct dns_rank_service *rs, size_t region, struct dns_rank_entry *out)
{
    size_t n = 0;

    for (size_t m = 0; m < rs->ctx->conf->member_count; m++) {
        struct dns_rank_entry e;
        size_t j;

        if (!rs->members[m].eligible && !rs->members[m].fail_open_ok)
            continue;
        e.member = (uint32_t)m;
        e.latency_ms = dns_rank_latency(rs, region, m, &e.src);
        /* Insertion sort: member lists are short. */
        for (j = n; j > 0 && entry_before(rs->ctx, &e, &out[j - 1]); j--)
            out[j] = out[j - 1];
        out[j] = e;
        n++;
    }
    return n;
}

bool dns_rank_in_scope(const struct cm_conf *conf, const struct dns_rank_scope *scope,
                       size_t member)
{
    const struct cm_conf_member *cm = &conf->members[member];

    switch (scope->level) {
    case DNS_RANK_GLOBAL:
        return true;
    case DNS_RANK_REGIONAL:
        return cm->region == scope->region;
    case DNS_RANK_ZONAL:
        return cm->region == scope->region && cm->zone >= 0 && cm->zone == scope->zone;
    }
    return false;
}

static void decide_all_down(const struct dns_rank_service *rs, const struct dns_rank_entry *ranked,
                            size_t n, struct dns_rank_decision *out)
{
    out->ttl = rs->ctx->conf->dnsd.min_ttl_s;
    out->ttl_why = DNS_RANK_TTL_ALL_DOWN;
    switch (rs->policy->all_down) {
    case CM_ALL_DOWN_FAIL_CLOSED:
        out->rule = DNS_RANK_FAIL_CLOSED;
        return;
    case CM_ALL_DOWN_SORRY:
        if (rs->policy->sorry_target != NULL) {
            out->rule = DNS_RANK_SORRY;
            return;
        }
        break; /* a sorry policy without target: fail open */
    case CM_ALL_DOWN_FAIL_OPEN:
        break;
    }
    out->rule = DNS_RANK_FAIL_OPEN;
    out->ttl_why = DNS_RANK_TTL_FAIL_OPEN;
    for (size_t i = 0; i < n && out->chosen_count < DNS_RANK_MAX_CHOSEN; i++) {
        if (rs->members[ranked[i].member].fail_open_ok)
            out->chosen[out->chosen_count++] = ranked[i].member;
    }
}

static uint32_t ready_weight(const struct dns_rank_member *rm)
{
    uint32_t ready = rm->ep != NULL && rm->ep->src != NULL ? rm->ep->src->ready_endpoints : 0;

    return ready > 0 ? ready : 1;
}

void dns_rank_decide(const struct dns_rank_service *rs, const struct dns_rank_scope *scope,
                     const struct dns_rank_entry *ranked, size_t n, struct dns_rank_decision *out)
{
    const struct cm_conf *conf = rs->ctx->conf;
    double best = 0;

    memset(out, 0, sizeof(*out));
    out->ttl = rs->ttl;
    out->ttl_why = rs->pending_member >= 0 ? DNS_RANK_TTL_PENDING : DNS_RANK_TTL_NORMAL;
    for (size_t i = 0; i < n && out->chosen_count < DNS_RANK_MAX_CHOSEN; i++) {
        const struct dns_rank_member *rm = &rs->members[ranked[i].member];
        if (!rm->eligible || !dns_rank_in_scope(conf, scope, ranked[i].member))
            continue;
        if (out->chosen_count == 0)
            best = ranked[i].latency_ms;
        else if (ranked[i].latency_ms > best + (double)rs->policy->latency_slack_ms)
            break;
        out->weight[out->chosen_count] = ready_weight(rm);
        out->chosen[out->chosen_count++] = ranked[i].member;
    }
    if (out->chosen_count > 1) {
        out->rule = DNS_RANK_SHARED;
    } else if (out->chosen_count == 1) {
        out->rule = rs->members[out->chosen[0]].has_addr ? DNS_RANK_BEST : DNS_RANK_HOSTNAME;
    } else if (scope->level != DNS_RANK_GLOBAL) {
        out->rule =
            scope->level == DNS_RANK_REGIONAL ? DNS_RANK_CNAME_UP_REGION : DNS_RANK_CNAME_UP_ZONE;
        if (rs->eligible_count == 0) {
            /* Up to a global name that is all down: as short as its answer. */
            out->ttl = conf->dnsd.min_ttl_s;
            out->ttl_why = rs->policy->all_down == CM_ALL_DOWN_FAIL_OPEN ? DNS_RANK_TTL_FAIL_OPEN
                                                                         : DNS_RANK_TTL_ALL_DOWN;
        }
    } else {
        decide_all_down(rs, ranked, n, out);
    }
}

bool dns_rank_client_independent(const struct dns_rank_service *rs,
                                 const struct dns_rank_scope *scope)
{
    const struct cm_conf *conf = rs->ctx->conf;
    size_t in_scope = 0;

    if (scope->level == DNS_RANK_GLOBAL) {
        in_scope = rs->eligible_count;
    } else {
        for (size_t m = 0; m < conf->member_count && in_scope < 2; m++)
            in_scope += rs->members[m].eligible && dns_rank_in_scope(conf, scope, m);
    }
    if (in_scope >= 2)
        return false;
    if (in_scope == 1 || scope->level != DNS_RANK_GLOBAL)
        return true;
    /* Nothing eligible anywhere: only failing open ranks. */
    return rs->fail_open_count <= 1 || rs->policy->all_down == CM_ALL_DOWN_FAIL_CLOSED ||
           (rs->policy->all_down == CM_ALL_DOWN_SORRY && rs->policy->sorry_target != NULL);
}

void dns_rank_slots(const uint32_t *weight, size_t n, uint8_t slots[DNS_RANK_SLOTS])
{
    uint32_t count[DNS_RANK_MAX_CHOSEN];
    uint64_t rem[DNS_RANK_MAX_CHOSEN];
    uint64_t total = 0;
    size_t given = 0;
    size_t pos = 0;

    if (n > DNS_RANK_MAX_CHOSEN)
        n = DNS_RANK_MAX_CHOSEN;
    if (n == 0) {
        memset(slots, 0, DNS_RANK_SLOTS);
        return;
    }
    for (size_t i = 0; i < n; i++)
        total += weight[i] > 0 ? weight[i] : 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t share = (uint64_t)DNS_RANK_SLOTS * (weight[i] > 0 ? weight[i] : 1);
        count[i] = (uint32_t)(share / total);
        rem[i] = share % total;
        given += count[i];
    }
    /* Largest remainder; equal remainders go to the better-ranked member. */
    while (given < DNS_RANK_SLOTS) {
        size_t best = 0;
        for (size_t i = 1; i < n; i++) {
            if (rem[i] > rem[best])
                best = i;
        }
        count[best]++;
        rem[best] = 0;
        given++;
    }
    for (size_t i = 0; i < n; i++) {
        for (uint32_t k = 0; k < count[i]; k++)
            slots[pos++] = (uint8_t)i;
    }
}

const char *dns_rank_rule_text(enum dns_rank_rule rule)
{
    switch (rule) {
    case DNS_RANK_BEST:
        return "best latency";
    case DNS_RANK_SHARED:
        return "shared within latency_slack_ms (weighted by ready endpoints)";
    case DNS_RANK_CNAME_UP_REGION:
        return "cname up: no healthy member in region";
    case DNS_RANK_CNAME_UP_ZONE:
        return "cname up: no healthy member in zone";
    case DNS_RANK_FAIL_OPEN:
        return "all down: fail-open";
    case DNS_RANK_FAIL_CLOSED:
        return "all down: fail-closed";
    case DNS_RANK_SORRY:
        return "all down: sorry";
    case DNS_RANK_HOSTNAME:
        return "hostname load balancer: cname";
    }
    return "?";
}

/* ---- explain ---- */

struct explain_target {
    const char *level; /* "global", "regional", "zonal", "alias" */
    struct dns_rank_scope scope;
    const struct cm_conf_service *cs;     /* NULL for a discovered service */
    const struct cm_merged_service *msvc; /* NULL when not in the state */
    char key[2 * 64 + 2];                 /* "ns/name" */
};

/* True if the wire label at @label equals @s, ignoring case. */
static bool label_eq(const uint8_t *label, const char *s)
{
    size_t len = strlen(s);

    if (label[0] != len)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char a = label[1 + i], c = (unsigned char)s[i];
        a = a >= 'A' && a <= 'Z' ? (unsigned char)(a - 'A' + 'a') : a;
        c = c >= 'A' && c <= 'Z' ? (unsigned char)(c - 'A' + 'a') : c;
        if (a != c)
            return false;
    }
    return true;
}

/* Finds the service of @t->key (configured first, as the build does). */
static bool find_service(const struct cm_conf *conf, const struct cm_merged *merged,
                         struct explain_target *t)
{
    int ci = cm_conf_service_index(conf, t->key);

    t->cs = ci >= 0 ? &conf->services[ci] : NULL;
    t->msvc = NULL;
    for (size_t i = 0; merged != NULL && i < merged->service_count; i++) {
        const struct cm_merged_service *ms = &merged->services[i];
        if ((ci >= 0 && ms->conf_index == ci) ||
            (ci < 0 && ms->conf_index < 0 && strcmp(ms->key, t->key) == 0)) {
            t->msvc = ms;
            break;
        }
    }
    return t->cs != NULL || t->msvc != NULL;
}

/* <svc>.<ns>.<federation>.svc[.<az>].[<region>].<zone> */
static bool match_generated(const struct cm_conf *conf, const uint8_t *wire, size_t len,
                            struct explain_target *t)
{
    uint8_t zw[DNS_RANK_NAME_MAX];
    size_t zlen = dns_rank_name_wire(conf->zone, true, zw);
    size_t off[DNS_RANK_NAME_MAX / 2];
    size_t nlab = 0, zlab = 0, pos = 0, q;

    for (pos = 0; zlen > 0 && zw[pos] != 0; pos += 1u + zw[pos])
        zlab++;
    for (pos = 0; pos < len && wire[pos] != 0; pos += 1u + wire[pos])
        off[nlab++] = pos;
    if (zlen == 0 || nlab < zlab + 4 || nlab > zlab + 6)
        return false;
    q = nlab - zlab;
    if (len - off[q] != zlen || memcmp(wire + off[q], zw, zlen) != 0 ||
        !label_eq(wire + off[2], conf->federation) || !label_eq(wire + off[3], "svc"))
        return false;
    t->scope.level = DNS_RANK_GLOBAL;
    t->level = "global";
    if (q >= 5) {
        size_t rl = off[q - 1];
        size_t r;
        for (r = 0; r < conf->region_count && !label_eq(wire + rl, conf->regions[r].name); r++)
            ;
        if (r == conf->region_count)
            return false;
        t->scope.level = DNS_RANK_REGIONAL;
        t->scope.region = r;
        t->level = "regional";
    }
    if (q == 6) {
        const struct cm_conf_region *reg = &conf->regions[t->scope.region];
        size_t z;
        for (z = 0; z < reg->zone_count && !label_eq(wire + off[4], reg->zones[z]); z++)
            ;
        if (z == reg->zone_count)
            return false;
        t->scope.level = DNS_RANK_ZONAL;
        t->scope.zone = (int)z;
        t->level = "zonal";
    }
    snprintf(t->key, sizeof(t->key), "%.*s/%.*s", wire[off[1]], (const char *)wire + off[1] + 1,
             wire[0], (const char *)wire + 1);
    return true;
}

static bool match_alias(const struct cm_conf *conf, const uint8_t *wire, size_t len,
                        struct explain_target *t)
{
    uint8_t aw[DNS_RANK_NAME_MAX];

    for (size_t i = 0; i < conf->service_count; i++) {
        for (size_t k = 0; k < conf->services[i].alias_count; k++) {
            size_t alen = dns_rank_name_wire(conf->services[i].aliases[k], true, aw);
            if (alen != len || memcmp(aw, wire, len) != 0)
                continue;
            t->level = "alias";
            t->scope.level = DNS_RANK_GLOBAL;
            cm_strlcpy(t->key, conf->services[i].key, sizeof(t->key));
            return true;
        }
    }
    return false;
}

static json_t *jstr(const char *s)
{
    return s != NULL ? json_string(s) : json_null();
}

static const char *src_text(enum dns_rank_src src, const char *region, char *buf, size_t cap)
{
    switch (src) {
    case DNS_RANK_SRC_MEASURED:
        snprintf(buf, cap, "measured by vantage %s", region);
        return buf;
    case DNS_RANK_SRC_STATIC:
        return "static latency_ms";
    case DNS_RANK_SRC_UNKNOWN:
        break;
    }
    return "unknown: default 1000 ms";
}

static bool chosen_has(const struct dns_rank_decision *d, size_t m)
{
    for (size_t i = 0; i < d->chosen_count; i++) {
        if (d->chosen[i] == m)
            return true;
    }
    return false;
}

/* 1-based position of @m among the members the rule ranked, 0 when not ranked. */
static size_t rank_of(const struct dns_rank_service *rs, const struct dns_rank_scope *scope,
                      const struct dns_rank_decision *d, const struct dns_rank_entry *ranked,
                      size_t n, size_t m)
{
    bool fail_open = d->rule == DNS_RANK_FAIL_OPEN;
    size_t pos = 0;

    for (size_t i = 0; i < n; i++) {
        const struct dns_rank_member *rm = &rs->members[ranked[i].member];
        if (fail_open ? !rm->fail_open_ok
                      : !rm->eligible || !dns_rank_in_scope(rs->ctx->conf, scope, ranked[i].member))
            continue;
        pos++;
        if (ranked[i].member == m)
            return pos;
    }
    return 0;
}

static json_t *explain_candidate(const struct dns_rank_service *rs, const struct explain_target *t,
                                 const struct dns_rank_decision *d,
                                 const struct dns_rank_entry *ranked, size_t n, size_t region,
                                 size_t m)
{
    const struct cm_conf *conf = rs->ctx->conf;
    const struct cm_conf_member *cm = &conf->members[m];
    const struct dns_rank_member *rm = &rs->members[m];
    const struct cm_state_endpoint *src = rm->present ? rm->ep->src : NULL;
    json_t *c = json_object();
    json_t *addrs = json_array();
    enum dns_rank_src srcw;
    double lat = dns_rank_latency(rs, region, m, &srcw);
    size_t rank = rank_of(rs, &t->scope, d, ranked, n, m);
    char buf[CM_ADDR_STRLEN + 64];

    for (size_t i = 0; src != NULL && addrs != NULL && i < src->address_count; i++) {
        cm_ip_format((const struct sockaddr *)&src->addresses[i].ss, buf, sizeof(buf));
        json_array_append_new(addrs, json_string(buf));
    }
    json_object_set_new(c, "member", json_string(cm->name));
    json_object_set_new(c, "region", json_string(conf->regions[cm->region].name));
    json_object_set_new(c, "zone",
                        jstr(cm->zone >= 0 ? conf->regions[cm->region].zones[cm->zone] : NULL));
    json_object_set_new(c, "present", json_boolean(rm->present));
    json_object_set_new(c, "healthy", json_boolean(rm->present && rm->ep->healthy));
    json_object_set_new(c, "votes_up", json_integer(rm->ep != NULL ? rm->ep->votes_up : 0));
    json_object_set_new(c, "votes_down", json_integer(rm->ep != NULL ? rm->ep->votes_down : 0));
    json_object_set_new(c, "pending", json_boolean(rm->present && rm->ep->pending));
    json_object_set_new(c, "drained", json_boolean(rm->drained));
    json_object_set_new(c, "ready_endpoints", json_integer(src != NULL ? src->ready_endpoints : 0));
    json_object_set_new(c, "addresses", addrs != NULL ? addrs : json_array());
    json_object_set_new(c, "hostname", jstr(src != NULL ? src->hostname : NULL));
    json_object_set_new(c, "reason", jstr(src != NULL ? src->reason : NULL));
    json_object_set_new(c, "candidate", json_boolean(rm->eligible));
    json_object_set_new(c, "excluded", jstr(rm->why_not));
    json_object_set_new(c, "rtt_ms", json_real(lat));
    json_object_set_new(c, "rtt_source",
                        json_string(src_text(srcw, conf->regions[region].name, buf, sizeof(buf))));
    json_object_set_new(c, "in_scope", json_boolean(dns_rank_in_scope(conf, &t->scope, m)));
    json_object_set_new(c, "rank", rank > 0 ? json_integer((json_int_t)rank) : json_null());
    json_object_set_new(c, "tied", json_boolean(chosen_has(d, m)));
    return c;
}

/* The CNAME target of a cname-up rule, as text. */
static void up_target(const struct cm_conf *conf, const struct explain_target *t,
                      const char *svc_name, const char *ns, char *buf, size_t cap)
{
    if (t->scope.level == DNS_RANK_ZONAL)
        snprintf(buf, cap, "%s.%s.%s.svc.%s.%s", svc_name, ns, conf->federation,
                 conf->regions[t->scope.region].name, conf->zone);
    else
        snprintf(buf, cap, "%s.%s.%s.svc.%s", svc_name, ns, conf->federation, conf->zone);
}

static json_t *explain_decision(const struct dns_rank_service *rs, const struct explain_target *t,
                                const struct dns_rank_decision *d, uint32_t client_hash)
{
    const struct cm_conf *conf = rs->ctx->conf;
    json_t *o = json_object();
    json_t *chosen = json_array();
    char text[600], ns[72];
    const char *rule = dns_rank_rule_text(d->rule);
    const char *cname = NULL;
    const char *slash = strchr(t->key, '/');
    size_t slot = client_hash % DNS_RANK_SLOTS;
    int selected = -1;

    cm_strlcpy(ns, t->key,
               slash != NULL && (size_t)(slash - t->key) < sizeof(ns) ? (size_t)(slash - t->key) + 1
                                                                      : sizeof(ns));
    for (size_t i = 0; chosen != NULL && i < d->chosen_count; i++)
        json_array_append_new(chosen, json_string(conf->members[d->chosen[i]].name));
    switch (d->rule) {
    case DNS_RANK_CNAME_UP_REGION:
        snprintf(text, sizeof(text), "%s %s", rule, conf->regions[t->scope.region].name);
        rule = text;
        break;
    case DNS_RANK_CNAME_UP_ZONE:
        snprintf(text, sizeof(text), "%s %s", rule,
                 conf->regions[t->scope.region].zones[t->scope.zone]);
        rule = text;
        break;
    case DNS_RANK_SORRY:
        snprintf(text, sizeof(text), "%s %s", rule, rs->policy->sorry_target);
        rule = text;
        cname = rs->policy->sorry_target;
        break;
    case DNS_RANK_SHARED: {
        uint8_t slots[DNS_RANK_SLOTS];
        dns_rank_slots(d->weight, d->chosen_count, slots);
        selected = (int)d->chosen[slots[slot]];
        break;
    }
    case DNS_RANK_BEST:
    case DNS_RANK_HOSTNAME:
        selected = (int)d->chosen[0];
        break;
    case DNS_RANK_FAIL_OPEN:
    case DNS_RANK_FAIL_CLOSED:
        break;
    }
    json_object_set_new(o, "rule", json_string(rule));
    json_object_set_new(o, "chosen", chosen != NULL ? chosen : json_array());
    json_object_set_new(o, "selected", jstr(selected >= 0 ? conf->members[selected].name : NULL));
    if (d->rule == DNS_RANK_CNAME_UP_REGION || d->rule == DNS_RANK_CNAME_UP_ZONE) {
        up_target(conf, t, slash != NULL ? slash + 1 : t->key, ns, text, sizeof(text));
        cname = text;
    } else if (d->rule == DNS_RANK_HOSTNAME) {
        cname = rs->members[d->chosen[0]].ep->src->hostname;
    }
    json_object_set_new(o, "cname", jstr(cname));
    json_object_set_new(o, "ttl", json_integer(d->ttl));
    switch (d->ttl_why) {
    case DNS_RANK_TTL_NORMAL:
        json_object_set_new(o, "ttl_reason", json_string("ttl_s"));
        break;
    case DNS_RANK_TTL_PENDING:
        snprintf(text, sizeof(text), "min_ttl_s: member %s pending",
                 conf->members[rs->pending_member].name);
        json_object_set_new(o, "ttl_reason", json_string(text));
        break;
    case DNS_RANK_TTL_FAIL_OPEN:
        json_object_set_new(o, "ttl_reason", json_string("min_ttl_s: failing open"));
        break;
    case DNS_RANK_TTL_ALL_DOWN:
        json_object_set_new(o, "ttl_reason", json_string("min_ttl_s: all down"));
        break;
    }
    json_object_set_new(o, "slot", json_integer((json_int_t)slot));
    return o;
}

static json_t *explain_json(const struct dns_rank_service *rs, const struct explain_target *t,
                            const char *name, size_t region, uint32_t client_hash,
                            const struct dns_rank_entry *ranked, size_t n)
{
    const struct cm_conf *conf = rs->ctx->conf;
    struct dns_rank_decision d;
    json_t *o = json_object();
    json_t *cands = json_array();

    if (o == NULL || cands == NULL) {
        json_decref(o);
        json_decref(cands);
        return NULL;
    }
    dns_rank_decide(rs, &t->scope, ranked, n, &d);
    for (size_t m = 0; m < conf->member_count; m++)
        json_array_append_new(cands, explain_candidate(rs, t, &d, ranked, n, region, m));
    json_object_set_new(o, "name", json_string(name));
    json_object_set_new(o, "level", json_string(t->level));
    json_object_set_new(o, "service", json_string(t->key));
    json_object_set_new(o, "configured", json_boolean(t->cs != NULL));
    json_object_set_new(o, "client_region", json_string(conf->regions[region].name));
    json_object_set_new(o, "candidates", cands);
    json_object_set_new(o, "decision", explain_decision(rs, t, &d, client_hash));
    return o;
}

json_t *dns_rank_explain(const struct cm_conf *conf, const struct cm_merged *merged,
                         const struct dns_drains *drains, const char *qname, unsigned region,
                         uint32_t client_hash)
{
    struct explain_target t = {0};
    struct dns_rank_ctx ctx;
    struct dns_rank_service rs;
    struct dns_rank_member *members = NULL;
    struct dns_rank_entry *ranked = NULL;
    uint8_t wire[DNS_RANK_NAME_MAX];
    char name[DNS_RANK_NAME_MAX + 1];
    size_t len = dns_rank_name_wire(qname, true, wire), n, r;
    json_t *out = NULL;

    if (len == 0 || conf->region_count == 0)
        return NULL;
    if (!match_generated(conf, wire, len, &t) && !match_alias(conf, wire, len, &t))
        return NULL;
    if (!find_service(conf, merged, &t))
        return NULL;
    if (dns_rank_ctx_init(&ctx, conf, merged, drains) != CM_OK)
        return NULL;
    members = calloc(conf->member_count > 0 ? conf->member_count : 1, sizeof(*members));
    ranked = calloc(conf->member_count > 0 ? conf->member_count : 1, sizeof(*ranked));
    if (members == NULL || ranked == NULL)
        goto out;
    r = region < conf->region_count              ? region
        : conf->dnsd.region < conf->region_count ? conf->dnsd.region
                                                 : 0;
    dns_rank_service_init(&rs, &ctx, t.msvc, t.cs != NULL ? &t.cs->policy : NULL, members);
    n = dns_rank_order(&rs, r, ranked);
    /* The name as served: lowercase, no trailing dot. */
    cm_strlcpy(name, qname, sizeof(name));
    for (char *p = name; *p != '\0'; p++)
        *p = *p >= 'A' && *p <= 'Z' ? (char)(*p - 'A' + 'a') : *p;
    if (strlen(name) > 1 && name[strlen(name) - 1] == '.')
        name[strlen(name) - 1] = '\0';
    out = explain_json(&rs, &t, name, r, client_hash, ranked, n);
out:
    free(members);
    free(ranked);
    dns_rank_ctx_fini(&ctx);
    return out;
}
