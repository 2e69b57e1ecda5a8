/* SPDX-License-Identifier: Apache-2.0 */
/* dns_rank.c -- eligibility, latency order and the decision rules (see dns_rank.h). */
#include "dnsd/dns_rank.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_state.h"
#include "dnsd/dns_name.h"

const struct cm_conf_policy dns_rank_default_policy = {
    .all_down = CM_ALL_DOWN_FAIL_OPEN,
    .sorry_target = NULL,
    .max_answers = 8,
    .latency_slack_ms = 5,
    .prefer_own_region = true,
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
                      const struct cm_merged *merged, const struct cm_intent_view *intents)
{
    size_t n = conf->member_count;
    struct name_sort *tmp;

    memset(ctx, 0, sizeof(*ctx));
    ctx->conf = conf;
    ctx->merged = merged;
    ctx->intents = intents != NULL && intents->member_count == n ? intents : NULL;
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

/* Weight and priority of member @m: intent, else configuration, else annotation. */
static void policy_eval(const struct dns_rank_service *rs, size_t m, struct dns_rank_member *rm,
                        const struct cm_state_endpoint *src)
{
    const struct cm_conf_policy *pol = rs->policy;
    uint32_t v;

    rm->weight = 1;
    rm->priority = 0;
    if (src != NULL && src->has_weight) {
        rm->weight = src->weight;
        rm->weight_src = DNS_RANK_POLICY_ANNOTATION;
    }
    if (src != NULL && src->has_priority) {
        rm->priority = src->priority;
        rm->priority_src = DNS_RANK_POLICY_ANNOTATION;
    }
    if (pol->weights != NULL && pol->weights[m] != CM_POLICY_UNSET) {
        rm->weight = pol->weights[m];
        rm->weight_src = DNS_RANK_POLICY_CONFIG;
    }
    if (pol->priority != NULL && pol->priority[m] != CM_POLICY_UNSET) {
        rm->priority = pol->priority[m];
        rm->priority_src = DNS_RANK_POLICY_CONFIG;
    }
    if (cm_intent_view_value(rs->ctx->intents, rs->key, m, CM_INTENT_WEIGHT, &v, &rm->weight_by)) {
        rm->weight = v;
        rm->weight_src = DNS_RANK_POLICY_INTENT;
    }
    if (cm_intent_view_value(rs->ctx->intents, rs->key, m, CM_INTENT_PRIORITY, &v,
                             &rm->priority_by)) {
        rm->priority = v;
        rm->priority_src = DNS_RANK_POLICY_INTENT;
    }
}

/*
 * Why a present member is not a candidate, or NULL when it is one. @no_eps:
 * it has no ready endpoint and its service does not allow that.
 */
static const char *why_not(const struct dns_rank_member *rm, bool no_eps)
{
    bool forced_up = rm->admin == CM_ADMIN_FORCE_UP;

    switch (rm->admin) {
    case CM_ADMIN_DRAINED:
        return "drained";
    case CM_ADMIN_EVACUATED:
        return "region evacuated";
    case CM_ADMIN_FORCE_DOWN:
        return "forced down";
    case CM_ADMIN_FORCE_UP:
    case CM_ADMIN_NONE:
        break;
    }
    if (!forced_up && !rm->ep->healthy)
        return "unhealthy by majority";
    if (!forced_up && no_eps)
        return "0 ready endpoints";
    if (!rm->has_addr && !rm->has_host)
        return "no address or hostname";
    return NULL;
}

static void member_eval(const struct dns_rank_service *rs, size_t m, struct dns_rank_member *rm)
{
    const struct cm_merged_endpoint *ep = rs->msvc != NULL ? &rs->msvc->members[m] : NULL;
    const struct cm_state_endpoint *src = ep != NULL && ep->present ? ep->src : NULL;
    uint8_t wire[DNS_NAME_MAX];

    bool no_eps = src != NULL && src->ready_endpoints == 0 && !rs->msvc->allow_without_endpoints;

    memset(rm, 0, sizeof(*rm));
    rm->ep = ep;
    rm->admin = cm_intent_view_admin(rs->ctx->intents, m, &rm->admin_by);
    rm->drained = rm->admin == CM_ADMIN_DRAINED || rm->admin == CM_ADMIN_EVACUATED;
    policy_eval(rs, m, rm, src);
    if (ep != NULL && ep->unplaced) {
        rm->why_not = "not in the service's placement";
        return;
    }
    if (src == NULL) {
        rm->why_not = "not reported by any vantage";
        return;
    }
    rm->present = true;
    rm->healthy = ep->healthy && !no_eps;
    rm->has_addr = src->address_count > 0;
    rm->has_host = src->hostname != NULL && dns_name_from_text(src->hostname, false, wire) > 1;
    rm->fail_open_ok = !rm->drained && rm->has_addr;
    rm->why_not = why_not(rm, no_eps);
    rm->eligible = rm->why_not == NULL;
}

void dns_rank_service_init(struct dns_rank_service *rs, const struct dns_rank_ctx *ctx,
                           const struct cm_merged_service *msvc,
                           const struct cm_conf_policy *policy, struct dns_rank_member *members)
{
    const struct cm_conf *conf = ctx->conf;

    memset(rs, 0, sizeof(*rs));
    rs->ctx = ctx;
    rs->msvc = msvc;
    rs->key = msvc != NULL ? msvc->key : NULL;
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
    /* A service's own TTL (a ServiceDNSRecord's recordTTL); pending never lengthens it. */
    rs->ttl = msvc != NULL && msvc->ttl_s > 0 ? msvc->ttl_s : conf->dnsd.ttl_s;
    if (rs->pending_member >= 0 && conf->dnsd.min_ttl_s < rs->ttl)
        rs->ttl = conf->dnsd.min_ttl_s;
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

/* Total order: latency, then the client's own region first, then (unknown
 * latency only) the member's region, then name. */
static bool entry_before(const struct dns_rank_ctx *ctx, const struct dns_rank_entry *a,
                         const struct dns_rank_entry *b)
{
    size_t ra, rb;

    if (a->latency_ms != b->latency_ms)
        return a->latency_ms < b->latency_ms;
    if (a->own_region != b->own_region)
        return a->own_region;
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
        e.own_region = rs->ctx->conf->members[m].region == region;
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

/* A member's share among those answered: its weight (1 among standbys) x ready endpoints. */
static uint32_t share_weight(const struct dns_rank_member *rm, bool standby)
{
    uint64_t ready = rm->ep != NULL && rm->ep->src != NULL ? rm->ep->src->ready_endpoints : 0;
    uint64_t w = (standby ? 1 : rm->weight) * (ready > 0 ? ready : 1);

    return w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
}

/*
 * The candidates in scope the answer may use, in rank order, into @idx
 * (positions in @ranked): the standby members (weight 0) only when no other
 * is a candidate, and of the rest the lowest priority group. Sets
 * out->standby and out->group; returns how many.
 */
static size_t pick_group(const struct dns_rank_service *rs, const struct dns_rank_scope *scope,
                         const struct dns_rank_entry *ranked, size_t n, uint32_t *idx,
                         struct dns_rank_decision *out)
{
    const struct cm_conf *conf = rs->ctx->conf;
    uint32_t min_active = UINT32_MAX, min_any = UINT32_MAX;
    size_t k = 0, m = 0;

    for (size_t i = 0; i < n; i++) {
        const struct dns_rank_member *rm = &rs->members[ranked[i].member];

        if (!rm->eligible || !dns_rank_in_scope(conf, scope, ranked[i].member))
            continue;
        idx[k++] = (uint32_t)i;
        if (rm->weight > 0 && rm->priority < min_active)
            min_active = rm->priority;
        if (rm->priority < min_any)
            min_any = rm->priority;
    }
    out->standby = k > 0 && min_active == UINT32_MAX;
    out->group = out->standby ? min_any : min_active;
    for (size_t i = 0; i < k; i++) {
        const struct dns_rank_member *rm = &rs->members[ranked[idx[i]].member];

        if ((rm->weight > 0 || out->standby) && rm->priority == out->group)
            idx[m++] = idx[i];
    }
    return m;
}

/*
 * Of the group (@idx, @k entries of @ranked), the best member and every one
 * within latency_slack_ms of it; when some of those are in the client's own
 * region (and the policy prefers them), only those.
 */
static void choose(const struct dns_rank_service *rs, const struct dns_rank_entry *ranked,
                   const uint32_t *idx, size_t k, struct dns_rank_decision *out)
{
    size_t count = 0, local = 0;
    double best = k > 0 ? ranked[idx[0]].latency_ms : 0;

    while (count < k && count < DNS_RANK_MAX_CHOSEN &&
           ranked[idx[count]].latency_ms <= best + (double)rs->policy->latency_slack_ms)
        local += ranked[idx[count++]].own_region;
    if (!rs->policy->prefer_own_region)
        local = 0;
    out->own_region_only = local > 0 && local < count;
    for (size_t i = 0; i < count; i++) {
        const struct dns_rank_entry *e = &ranked[idx[i]];

        if (local > 0 && !e->own_region)
            continue;
        out->weight[out->chosen_count] = share_weight(&rs->members[e->member], out->standby);
        out->chosen[out->chosen_count++] = e->member;
    }
}

void dns_rank_decide(const struct dns_rank_service *rs, const struct dns_rank_scope *scope,
                     const struct dns_rank_entry *ranked, size_t n, struct dns_rank_decision *out)
{
    const struct cm_conf *conf = rs->ctx->conf;

    uint32_t idx[DNS_RANK_MAX_MEMBERS];
    size_t k;

    memset(out, 0, sizeof(*out));
    out->ttl = rs->ttl;
    out->ttl_why = rs->pending_member >= 0 ? DNS_RANK_TTL_PENDING : DNS_RANK_TTL_NORMAL;
    k = pick_group(rs, scope, ranked, n < DNS_RANK_MAX_MEMBERS ? n : DNS_RANK_MAX_MEMBERS, idx,
                   out);
    choose(rs, ranked, idx, k, out);
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

const char *dns_rank_admin_text(enum cm_intent_admin admin)
{
    switch (admin) {
    case CM_ADMIN_NONE:
        break;
    case CM_ADMIN_FORCE_UP:
        return "forced up";
    case CM_ADMIN_FORCE_DOWN:
        return "forced down";
    case CM_ADMIN_EVACUATED:
        return "region evacuated";
    case CM_ADMIN_DRAINED:
        return "drained";
    }
    return "none";
}

const char *dns_rank_rule_text(enum dns_rank_rule rule)
{
    switch (rule) {
    case DNS_RANK_BEST:
        return "best latency";
    case DNS_RANK_SHARED:
        return "shared within latency_slack_ms (weight x ready endpoints)";
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
