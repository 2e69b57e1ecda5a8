/* SPDX-License-Identifier: Apache-2.0 */
/* dns_explain.c -- /v1/explain's decision document (see dns_explain.h). */
#include "dnsd/dns_explain.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_intent.h"
#include "common/cm_net.h"
#include "common/cm_state.h"
#include "common/cm_str.h"
#include "dnsd/dns_fed.h"
#include "dnsd/dns_name.h"
#include "dnsd/dns_rank.h"

struct explain_target {
    const char *level; /* "global", "regional", "zonal", "alias" */
    struct dns_rank_scope scope;
    const struct cm_conf_service *cs;     /* NULL for a discovered service */
    const struct cm_merged_service *msvc; /* NULL when not in the state */
    char key[2 * 64 + 2];                 /* "ns/name" */
};

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

static const char *const level_text[] = {
    [DNS_FED_GLOBAL] = "global",
    [DNS_FED_REGIONAL] = "regional",
    [DNS_FED_ZONAL] = "zonal",
    [DNS_FED_ALIAS] = "alias",
};

/* Asks the table what @wire is: its service, level, region and zone. */
static bool identify(const struct dns_fed *fed, const struct cm_conf *conf, const uint8_t *wire,
                     size_t len, struct explain_target *t)
{
    struct dns_fed_name fn;
    const char *key;

    if (dns_fed_name_info(fed, wire, len, &fn) != DNS_FED_NAME)
        return false;
    key = dns_fed_service_key(fed, fn.service);
    if (key == NULL || (fn.level != DNS_FED_GLOBAL && fn.level != DNS_FED_ALIAS &&
                        fn.region >= conf->region_count))
        return false;
    t->level = level_text[fn.level];
    t->scope.level = DNS_RANK_GLOBAL;
    if (fn.level == DNS_FED_REGIONAL || fn.level == DNS_FED_ZONAL) {
        t->scope.level = DNS_RANK_REGIONAL;
        t->scope.region = fn.region;
    }
    if (fn.level == DNS_FED_ZONAL) {
        if (fn.zone < 0 || (size_t)fn.zone >= conf->regions[fn.region].zone_count)
            return false;
        t->scope.level = DNS_RANK_ZONAL;
        t->scope.zone = fn.zone;
    }
    cm_strlcpy(t->key, key, sizeof(t->key));
    return true;
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

static const char *const policy_src_text[] = {
    [DNS_RANK_POLICY_DEFAULT] = "default",
    [DNS_RANK_POLICY_ANNOTATION] = "annotation",
    [DNS_RANK_POLICY_CONFIG] = "config",
    [DNS_RANK_POLICY_INTENT] = "intent",
};

/* {"value": N, "source": "default|annotation|config|intent", "intent": id or null} */
static json_t *policy_json(uint32_t value, enum dns_rank_policy_src src, const struct cm_intent *by)
{
    return json_pack("{s:I,s:s,s:s?}", "value", (json_int_t)value, "source", policy_src_text[src],
                     "intent", src == DNS_RANK_POLICY_INTENT && by != NULL ? by->id : NULL);
}

/* One intent as explain shows it: what, who, why, until when. */
static json_t *intent_brief(const struct cm_intent *i)
{
    json_t *o = cm_intent_json(i);

    if (o != NULL)
        json_object_del(o, "removed_at"); /* only active intents are shown */
    return o;
}

/* The active intents that concern member @m for the service explained. */
static json_t *member_intents(const struct dns_rank_service *rs, size_t m)
{
    const struct cm_intent_view *v = rs->ctx->intents;
    json_t *arr = json_array();

    for (size_t i = 0; v != NULL && arr != NULL && i < v->active_count; i++) {
        if (cm_intent_applies(v->active[i], rs->ctx->conf, rs->key, m))
            json_array_append_new(arr, intent_brief(v->active[i]));
    }
    return arr != NULL ? arr : json_array();
}

/* Every active intent that concerns this service's members (by id). */
static json_t *service_intents(const struct dns_rank_service *rs)
{
    const struct cm_intent_view *v = rs->ctx->intents;
    const struct cm_conf *conf = rs->ctx->conf;
    json_t *arr = json_array();

    for (size_t i = 0; v != NULL && arr != NULL && i < v->active_count; i++) {
        for (size_t m = 0; m < conf->member_count; m++) {
            if (cm_intent_applies(v->active[i], conf, rs->key, m)) {
                json_array_append_new(arr, intent_brief(v->active[i]));
                break;
            }
        }
    }
    return arr != NULL ? arr : json_array();
}

/* The service's traffic policy that differs from the defaults, as text lines. */
static json_t *service_policy(const struct dns_rank_service *rs)
{
    const struct cm_conf *conf = rs->ctx->conf;
    json_t *arr = json_array();
    char line[256];

    for (size_t m = 0; arr != NULL && m < conf->member_count; m++) {
        const struct dns_rank_member *rm = &rs->members[m];

        if (rm->weight_src != DNS_RANK_POLICY_DEFAULT) {
            snprintf(line, sizeof(line), "%s weight %u (%s%s%s)", conf->members[m].name, rm->weight,
                     policy_src_text[rm->weight_src], rm->weight_by != NULL ? " " : "",
                     rm->weight_by != NULL ? rm->weight_by->id : "");
            json_array_append_new(arr, json_string(line));
        }
        if (rm->priority_src != DNS_RANK_POLICY_DEFAULT) {
            snprintf(line, sizeof(line), "%s priority %u (%s%s%s)", conf->members[m].name,
                     rm->priority, policy_src_text[rm->priority_src],
                     rm->priority_by != NULL ? " " : "",
                     rm->priority_by != NULL ? rm->priority_by->id : "");
            json_array_append_new(arr, json_string(line));
        }
    }
    return arr != NULL ? arr : json_array();
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
    json_object_set_new(c, "own_region", json_boolean(cm->region == region));
    json_object_set_new(c, "admin", json_string(dns_rank_admin_text(rm->admin)));
    json_object_set_new(c, "weight", policy_json(rm->weight, rm->weight_src, rm->weight_by));
    json_object_set_new(c, "priority",
                        policy_json(rm->priority, rm->priority_src, rm->priority_by));
    json_object_set_new(c, "intents", member_intents(rs, m));
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

/* How the traffic policy narrowed the members answered (when some are). */
static void policy_fields(json_t *o, const struct dns_rank_decision *d)
{
    if (d->rule != DNS_RANK_BEST && d->rule != DNS_RANK_SHARED && d->rule != DNS_RANK_HOSTNAME)
        return;
    json_object_set_new(o, "priority_group", json_integer(d->group));
    json_object_set_new(o, "standby", json_boolean(d->standby));
    json_object_set_new(o, "own_region_only", json_boolean(d->own_region_only));
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
    policy_fields(o, d);
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
    json_object_set_new(o, "intents", service_intents(rs));
    json_object_set_new(o, "policy", service_policy(rs));
    return o;
}

json_t *dns_explain(const struct dns_fed *fed, const struct cm_conf *conf,
                    const struct cm_merged *merged, const struct cm_intent_view *intents,
                    const char *qname, unsigned region, uint32_t client_hash)
{
    struct explain_target t = {0};
    struct dns_rank_ctx ctx;
    struct dns_rank_service rs;
    struct dns_rank_member *members = NULL;
    struct dns_rank_entry *ranked = NULL;
    uint8_t wire[DNS_NAME_MAX];
    char name[DNS_NAME_MAX + 1];
    size_t len = dns_name_from_text(qname, true, wire), n, r;
    json_t *out = NULL;

    if (len == 0 || conf->region_count == 0)
        return NULL;
    if (!identify(fed, conf, wire, len, &t))
        return NULL;
    if (!find_service(conf, merged, &t))
        return NULL;
    if (dns_rank_ctx_init(&ctx, conf, merged, intents) != CM_OK)
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
    dns_name_text_normalize(name);
    out = explain_json(&rs, &t, name, r, client_hash, ranked, n);
out:
    free(members);
    free(ranked);
    dns_rank_ctx_fini(&ctx);
    return out;
}
