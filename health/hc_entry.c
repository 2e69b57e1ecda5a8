/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_entry.c -- one entry of the state document (reconcile with
 * hc_endpoint, keep its probes, serialize to JSON) and the members section.
 */
#include "health/hc_entry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "health/hc_cluster.h"
#include "health/hc_endpoint.h"
#include "health/hc_probe.h"
#include "health/hc_report.h"

/* Steals @v; on failure @obj is left as it was. */
static int set_new(json_t *obj, const char *key, json_t *v)
{
    if (v == NULL)
        return CM_ENOMEM;
    return json_object_set_new(obj, key, v) == 0 ? CM_OK : CM_ENOMEM;
}

static json_t *rtt_json(double ms)
{
    return ms >= 0 ? json_real((double)(long long)(ms * 10.0 + 0.5) / 10.0) : json_null();
}

static json_t *strv_json(char *const *v, size_t count)
{
    json_t *out = json_array();

    for (size_t i = 0; out != NULL && i < count; i++) {
        if (json_array_append_new(out, json_string(v[i])) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static json_t *addresses_json(const struct hc_endpoint *ep)
{
    json_t *out = json_array();

    for (size_t i = 0; out != NULL && i < ep->addr_count; i++) {
        if (ep->addrs[i].answered &&
            json_array_append_new(out, json_string(ep->addrs[i].address)) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static json_t *probes_json(const struct hc_endpoint *ep)
{
    json_t *out = json_object();

    for (size_t i = 0; ep->probing && out != NULL && i < ep->addr_count; i++) {
        const struct hc_probe_status *st = ep->addrs[i].st;
        const char *state = st == NULL || st->verdict == HC_PROBE_UNKNOWN ? "unknown"
                            : st->verdict == HC_PROBE_UP                  ? "up"
                                                                          : "down";
        json_t *e = json_object();

        if (e == NULL || set_new(e, "state", json_string(state)) != CM_OK ||
            set_new(e, "rtt_ms", rtt_json(st != NULL ? st->rtt_ms : -1)) != CM_OK ||
            set_new(e, "error", json_string(st != NULL ? st->last_error : "")) != CM_OK ||
            set_new(out, ep->addrs[i].address, e) != CM_OK) {
            json_decref(e);
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* One reconciled entry as its JSON object, or NULL on ENOMEM. */
static json_t *entry_json(const struct hc_endpoint *ep, const struct hc_k8s_svc *s)
{
    json_t *e = json_object();
    int rc = e != NULL ? CM_OK : CM_ENOMEM;

    if (rc == CM_OK)
        rc = set_new(e, "addresses", addresses_json(ep));
    if (rc == CM_OK)
        rc = set_new(e, "backends", strv_json(ep->backends, ep->backend_count));
    if (rc == CM_OK)
        rc = set_new(e, "probes", probes_json(ep));
    if (rc == CM_OK)
        rc = set_new(e, "hostname", ep->hostname != NULL ? json_string(ep->hostname) : json_null());
    if (rc == CM_OK)
        rc = set_new(e, "port", ep->port != NULL ? json_integer(ep->port->port) : json_null());
    if (rc == CM_OK)
        rc = set_new(e, "ready_endpoints", json_integer((json_int_t)ep->ready_v4 + ep->ready_v6));
    if (rc == CM_OK)
        rc = set_new(e, "ready_endpoints_ipv4", json_integer(ep->ready_v4));
    if (rc == CM_OK)
        rc = set_new(e, "ready_endpoints_ipv6", json_integer(ep->ready_v6));
    if (rc == CM_OK)
        rc = set_new(e, "healthy", json_boolean(ep->healthy));
    if (rc == CM_OK)
        rc = set_new(e, "pending", json_boolean(ep->pending));
    if (rc == CM_OK && ep->rtt_ms >= 0)
        rc = set_new(e, "rtt_ms", rtt_json(ep->rtt_ms));
    if (rc == CM_OK)
        rc = set_new(e, "via_proxy", json_boolean(ep->via_proxy));
    if (rc == CM_OK)
        rc = set_new(e, "reason", json_string(ep->reason));
    if (rc == CM_OK && s->health_path != NULL)
        rc = set_new(e, "check_path", json_string(s->health_path));
    if (rc == CM_OK && s->health_port != 0)
        rc = set_new(e, "check_port", json_integer(s->health_port));
    /* The Service's traffic policy annotations, for the name servers' ranking. */
    if (rc == CM_OK && s->has_weight)
        rc = set_new(e, "weight", json_integer(s->weight));
    if (rc == CM_OK && s->has_priority)
        rc = set_new(e, "priority", json_integer(s->priority));
    /* Only when something was dropped: an unchanged document stays the same. */
    if (rc == CM_OK && ep->refused_count > 0)
        rc = set_new(e, "refused", strv_json(ep->refused, ep->refused_count));
    if (rc != CM_OK) {
        json_decref(e);
        return NULL;
    }
    return e;
}

/* The probe targets of @ep, copied into @out. */
static int keep_targets(const struct hc_endpoint *ep, struct hc_entry *out)
{
    if (!ep->probing || ep->addr_count == 0)
        return CM_OK;
    out->targets = calloc(ep->addr_count, sizeof(*out->targets));
    if (out->targets == NULL)
        return CM_ENOMEM;
    for (size_t i = 0; i < ep->addr_count; i++) {
        out->targets[i] = strdup(ep->addrs[i].target);
        if (out->targets[i] == NULL)
            return CM_ENOMEM;
        out->target_count++;
    }
    return CM_OK;
}

int hc_entry_build(const struct hc_entry_ctx *ctx, const char *key, size_t member,
                   const struct hc_cluster *c, const struct hc_k8s_obj *so,
                   const struct cm_conf_service *csvc, bool allow_no_endpoints,
                   int previous_healthy, struct hc_entry *out)
{
    const struct cm_conf_member *m = &ctx->conf->members[member];
    size_t nn = m->lb_mode == CM_LB_PROXY ? hc_cluster_count(c, HC_K8S_NODE) : 0;
    const struct hc_k8s_obj **nodes = nn > 0 ? calloc(nn, sizeof(*nodes)) : NULL;
    struct hc_endpoint_in in = {.conf = ctx->conf,
                                .member = member,
                                .csvc = csvc,
                                .svc = &so->u.svc,
                                .nodes = nodes,
                                .node_count = nodes != NULL ? nn : 0,
                                .api = hc_cluster_api(c),
                                .bad_since = hc_cluster_bad_since(c),
                                .now = ctx->now,
                                .previous_healthy = previous_healthy,
                                .probes = ctx->probes != NULL,
                                .allow_no_endpoints = allow_no_endpoints,
                                .refused_rl = ctx->refused_rl};
    struct hc_endpoint ep = {.rtt_ms = -1}; /* fini-safe before prepare */
    int rc;

    *out = (struct hc_entry){0};
    for (size_t i = 0; i < in.node_count; i++)
        nodes[i] = hc_cluster_obj(c, HC_K8S_NODE, i);
    hc_cluster_ready(c, so->ns, so->name, &in.ready_v4, &in.ready_v6);
    rc = nn > 0 && nodes == NULL ? CM_ENOMEM : hc_endpoint_prepare(&in, &ep);
    /* Probes: wanted (ensured in the probe set) and read. */
    for (size_t i = 0; rc == CM_OK && ep.probing && i < ep.addr_count; i++) {
        struct hc_endpoint_addr *a = &ep.addrs[i];

        rc = hc_probes_ensure(ctx->probes, key, m->name, a->target, a->port, ep.check,
                              so->u.svc.health_path);
        a->st = hc_probes_get(ctx->probes, key, m->name, a->target);
    }
    if (rc == CM_OK)
        rc = keep_targets(&ep, out);
    if (rc == CM_OK) {
        hc_endpoint_judge(&in, &ep);
        out->healthy = ep.healthy;
        out->json = entry_json(&ep, &so->u.svc);
        if (out->json == NULL)
            rc = CM_ENOMEM;
    }
    hc_endpoint_fini(&ep);
    free(nodes);
    if (rc != CM_OK)
        hc_entry_fini(out);
    return rc;
}

void hc_entry_fini(struct hc_entry *e)
{
    json_decref(e->json);
    for (size_t i = 0; i < e->target_count; i++)
        free(e->targets[i]);
    free(e->targets);
    *e = (struct hc_entry){0};
}

json_t *hc_entry_members_json(const struct cm_conf *conf, struct hc_cluster *const *clusters,
                              const double *rtt_ms)
{
    json_t *out = json_object();

    for (size_t i = 0; out != NULL && i < conf->member_count; i++) {
        const struct cm_conf_member *m = &conf->members[i];
        const struct cm_conf_region *rg = &conf->regions[m->region];
        const struct hc_cluster *c = clusters[i];
        json_t *e = json_object();
        char ts[32];
        int rc;

        rc = set_new(e, "region", json_string(rg->name));
        if (rc == CM_OK)
            rc = set_new(e, "zone", m->zone >= 0 ? json_string(rg->zones[m->zone]) : json_null());
        if (rc == CM_OK)
            rc = set_new(e, "api",
                         json_string(c != NULL ? hc_api_state_name(hc_cluster_api(c)) : "unknown"));
        /* Only a member that is not ok says when it was last seen: a time
         * that moved while everything is fine would change every document. */
        if (rc == CM_OK && c != NULL && hc_cluster_api(c) != HC_API_OK) {
            hc_report_time(hc_cluster_last_seen(c), ts, sizeof(ts));
            rc = set_new(e, "last_seen",
                         hc_cluster_last_seen(c) != 0 ? json_string(ts) : json_null());
        }
        if (rc == CM_OK && rtt_ms != NULL && rtt_ms[i] >= 0)
            rc = set_new(e, "rtt_ms", rtt_json(rtt_ms[i]));
        if (rc != CM_OK || set_new(out, m->name, e) != CM_OK) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}
