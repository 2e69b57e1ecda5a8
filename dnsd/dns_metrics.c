/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_metrics.c -- dnsd's health families, the ones alerts are written on
 * (conf/prometheus/fedgslb.rules.yml; every family in docs/metrics.md):
 * verdicts merged and per vantage, eligible members and fail-open per
 * service, RTT per vantage x member, reloads and state-file writes.
 *
 * Cardinality: the per-service families carry one series per endpoint a
 * document reports (service x member, times vantages for the per-vantage
 * one), so they grow with the state itself; above DNS_METRICS_SERVICES
 * services they stop (in key order) and fedgslb_metrics_services_omitted
 * says how many were left out. docs/metrics.md has the arithmetic.
 */
#include "dnsd/dns_ctl.h"

#include <math.h>
#include <stdlib.h>

#include "common/cm_conf.h"
#include "common/cm_ctl.h"
#include "common/cm_err.h"
#include "common/cm_state.h"
#include "common/cm_str.h"
#include "dnsd/dns_geo.h"
#include "dnsd/dns_rank.h"
#include "dnsd/dns_state.h"
#include "dnsd/dns_view.h"

static void sample3(struct cm_buf *out, const char *family, const char *vantage,
                    const char *service, const char *member, double v)
{
    struct cm_buf labels;

    cm_buf_init(&labels, 2048);
    if (vantage != NULL)
        cm_metrics_label(&labels, "vantage", vantage);
    if (service != NULL)
        cm_metrics_label(&labels, "service", service);
    if (member != NULL)
        cm_metrics_label(&labels, "member", member);
    cm_metrics_sample(out, family, cm_buf_cstr(&labels), v);
    cm_buf_fini(&labels);
}

static size_t service_limit(size_t n)
{
    return n < DNS_METRICS_SERVICES ? n : DNS_METRICS_SERVICES;
}

/* The configured policy, NULL for a discovered service (the default: fail-open). */
static const struct cm_conf_policy *service_policy(const struct cm_conf *conf,
                                                   const struct cm_merged_service *ms)
{
    return ms->conf_index >= 0 ? &conf->services[ms->conf_index].policy : NULL;
}

/* The merged verdicts, and what the ranking makes of them per service. */
static void metrics_merged(const struct dns_ctl_env *env, struct cm_buf *out)
{
    const struct cm_conf *conf = dns_state_conf(env->state);
    const struct cm_merged *merged = dns_state_merged(env->state);
    size_t ns = merged != NULL ? service_limit(merged->service_count) : 0;
    struct dns_rank_member *members = calloc(conf->member_count + 1, sizeof(*members));
    size_t *eligible = calloc(ns + 1, sizeof(*eligible));
    struct dns_rank_ctx ctx;
    bool have_ctx = false;

    cm_metrics_family(out, "fedgslb_member_healthy", "gauge",
                      "Merged verdict of a member for a service: 1 healthy, 0 not (majority of "
                      "the vantages reporting it; intents do not change it).");
    for (size_t s = 0; s < ns; s++) {
        const struct cm_merged_service *ms = &merged->services[s];

        for (size_t m = 0; m < merged->member_count; m++) {
            if (ms->members[m].present)
                sample3(out, "fedgslb_member_healthy", NULL, ms->key, conf->members[m].name,
                        ms->members[m].healthy ? 1 : 0);
        }
    }
    if (members != NULL && eligible != NULL)
        have_ctx =
            dns_rank_ctx_init(&ctx, conf, merged, dns_state_intent_view(env->state)) == CM_OK;
    for (size_t s = 0; have_ctx && s < ns; s++) {
        const struct cm_merged_service *ms = &merged->services[s];
        struct dns_rank_service rs;

        dns_rank_service_init(&rs, &ctx, ms, service_policy(conf, ms), members);
        eligible[s] = rs.eligible_count;
    }
    if (have_ctx)
        dns_rank_ctx_fini(&ctx);
    /* Each family's samples follow its own HELP and TYPE lines. */
    cm_metrics_family(out, "fedgslb_service_eligible_members", "gauge",
                      "Members a service's global name may answer with (healthy or forced up, not "
                      "drained, evacuated or forced down, with ready endpoints and an address); 0 "
                      "means its all-down policy applies.");
    for (size_t s = 0; have_ctx && s < ns; s++)
        sample3(out, "fedgslb_service_eligible_members", NULL, merged->services[s].key, NULL,
                (double)eligible[s]);
    cm_metrics_family(out, "fedgslb_service_fail_open", "gauge",
                      "1 when a service has no eligible member and its policy is fail-open: "
                      "clients get every member, healthy or not.");
    for (size_t s = 0; have_ctx && s < ns; s++) {
        const struct cm_conf_policy *p = service_policy(conf, &merged->services[s]);

        sample3(out, "fedgslb_service_fail_open", NULL, merged->services[s].key, NULL,
                eligible[s] == 0 && (p == NULL || p->all_down == CM_ALL_DOWN_FAIL_OPEN) ? 1 : 0);
    }
    free(eligible);
    free(members);
    cm_metrics_family(out, "fedgslb_metrics_services_omitted", "gauge",
                      "Services left out of the per-service families (above the cap).");
    cm_metrics_sample(out, "fedgslb_metrics_services_omitted", NULL,
                      merged != NULL ? (double)(merged->service_count - ns) : 0);
}

/* What each vantage says: its verdicts and its RTT to each member. */
static void metrics_vantages(const struct dns_ctl_env *env, struct cm_buf *out)
{
    size_t nv = dns_state_vantage_count(env->state);

    cm_metrics_family(out, "fedgslb_vantage_member_healthy", "gauge",
                      "A vantage's own verdict of a member for a service (its last document).");
    for (size_t v = 0; v < nv; v++) {
        const struct cm_state *doc = dns_state_vantage(env->state, v, NULL);

        for (size_t s = 0; s < service_limit(doc->service_count); s++) {
            const struct cm_state_service *svc = &doc->services[s];

            for (size_t m = 0; m < svc->member_count; m++)
                sample3(out, "fedgslb_vantage_member_healthy", doc->vantage, svc->key,
                        svc->members[m].member, svc->members[m].healthy ? 1 : 0);
        }
    }
    cm_metrics_family(out, "fedgslb_vantage_member_rtt_seconds", "gauge",
                      "Round-trip time a vantage measured to a member's load balancers.");
    for (size_t v = 0; v < nv; v++) {
        const struct cm_state *doc = dns_state_vantage(env->state, v, NULL);

        for (size_t m = 0; m < doc->member_count; m++) {
            if (!isnan(doc->members[m].rtt_ms))
                sample3(out, "fedgslb_vantage_member_rtt_seconds", doc->vantage, NULL,
                        doc->members[m].name, doc->members[m].rtt_ms / 1000.0);
        }
    }
}

/* The GeoIP database of the view in service (dnsd.geoip). */
static void metrics_geoip(const struct dns_ctl_env *env, struct cm_buf *out)
{
    const struct dns_geo *geo = env->view != NULL ? env->view->geo : NULL;

    cm_metrics_family(out, "fedgslb_geoip_networks", "gauge",
                      "GeoIP database networks in the client lookup (0: no database).");
    cm_metrics_sample(out, "fedgslb_geoip_networks", NULL, geo != NULL ? (double)geo->inserted : 0);
    cm_metrics_family(out, "fedgslb_geoip_table_bytes", "gauge",
                      "Bytes of the compiled client lookup (client_networks + GeoIP), shared by "
                      "all workers.");
    cm_metrics_sample(out, "fedgslb_geoip_table_bytes", NULL,
                      geo != NULL ? (double)dns_geo_memory(geo) : 0);
    cm_metrics_family(out, "fedgslb_geoip_reloads_total", "counter",
                      "GeoIP database reopens (SIGHUP, file replaced), by result; a failure "
                      "keeps the previous database.");
    cm_metrics_sample(out, "fedgslb_geoip_reloads_total", "result=\"success\"",
                      (double)env->geoip_reloads_ok);
    cm_metrics_sample(out, "fedgslb_geoip_reloads_total", "result=\"failure\"",
                      (double)env->geoip_reloads_failed);
}

static void metrics_ops(const struct dns_ctl_env *env, struct cm_buf *out)
{
    cm_metrics_family(out, "fedgslb_reloads_total", "counter",
                      "Configuration reloads (SIGHUP), by result.");
    cm_metrics_sample(out, "fedgslb_reloads_total", "result=\"success\"", (double)env->reloads_ok);
    cm_metrics_sample(out, "fedgslb_reloads_total", "result=\"failure\"",
                      (double)env->reloads_failed);
    cm_metrics_family(out, "fedgslb_reload_last_success", "gauge",
                      "1 when the last reload succeeded or none was tried, 0 after a failed one.");
    cm_metrics_sample(out, "fedgslb_reload_last_success", NULL, env->reload_last_failed ? 0 : 1);
    cm_metrics_family(out, "fedgslb_reload_last_timestamp_seconds", "gauge",
                      "Unix time of the last reload attempt (0: none since start).");
    cm_metrics_sample(out, "fedgslb_reload_last_timestamp_seconds", NULL, env->reload_last_unix_s);
    cm_metrics_family(out, "fedgslb_state_write_failures_total", "counter",
                      "Failed writes of the state file (dnsd.state_file).");
    cm_metrics_sample(out, "fedgslb_state_write_failures_total", NULL,
                      (double)dns_state_save_failures(env->state));
    cm_metrics_family(out, "fedgslb_state_write_last_success", "gauge",
                      "1 when the last write of the state file succeeded (or none failed yet).");
    cm_metrics_sample(out, "fedgslb_state_write_last_success", NULL,
                      dns_state_save_last_failed(env->state) ? 0 : 1);
    metrics_geoip(env, out);
}

void dns_ctl_metrics_health(const struct dns_ctl_env *env, struct cm_buf *out)
{
    metrics_merged(env, out);
    metrics_vantages(env, out);
    metrics_ops(env, out);
}
