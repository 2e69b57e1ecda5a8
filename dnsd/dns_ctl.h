/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_ctl.h -- dnsd's side of the control API (on common/cm_ctl), in the
 * main thread's event loop.
 *
 *   GET  /v1/state                  vantages, merge, drains, view serial
 *   PUT  /v1/state                  one vantage's document (bearer token)
 *   GET  /v1/members                every member with its drained flag
 *   PUT  /v1/members/NAME/drain     drain NAME (bearer token)
 *   DELETE /v1/members/NAME/drain   undrain NAME (bearer token)
 *   GET  /v1/explain?name=N&client=IP[&ecs=BITS]
 *                                   client location, the ranking decision
 *                                   and the exact A and AAAA responses, all
 *                                   from the view that answers queries
 *   GET  /v1/explain?name=N&region=R
 *                                   the decision for clients of region R
 *                                   (no address, so no response part)
 *   GET  /v1/answers                per service: every member's merged
 *                                   verdict and, per client region, what
 *                                   its global name answers (dns_rank)
 *   GET  /v1/topology               regions, zones, members, static latency
 *                                   and all-down policies (dns_topo.c)
 *   GET  /ui/                       the status page (common/cm_ui.h)
 *   GET  /metrics                   dnsd's Prometheus families
 *
 * The routes read a struct dns_ctl_env owned by the main program, which
 * keeps it current (the view pointer changes with every swap). Everything
 * runs in the main thread, like the state store.
 */
#ifndef DNSD_DNS_CTL_H
#define DNSD_DNS_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "common/cm_ctl.h"

struct cm_conf_control;
struct cm_etcd_consumer;
struct dns_ctl;
struct dns_server;
struct dns_state;
struct dns_view;

struct dns_ctl_env {
    struct dns_state *state;       /* borrowed */
    struct dns_server *server;     /* borrowed; NULL when no server runs */
    struct dns_view *view;         /* borrowed: the view the workers were last handed */
    uint64_t table_builds;         /* views built successfully since start */
    double last_build_s;           /* duration of the last successful build */
    uint64_t table_builds_incr;    /* of those, sharing unchanged services' answers */
    uint64_t table_svcs_built;     /* services whose answers those builds made */
    uint64_t reloads_ok;           /* SIGHUP reloads that took the new configuration */
    uint64_t reloads_failed;       /* and those that kept the old one */
    bool reload_last_failed;       /* the last reload attempt failed */
    double reload_last_unix_s;     /* wall time of the last attempt, 0 when none */
    uint64_t geoip_reloads_ok;     /* GeoIP database reopens put in service */
    uint64_t geoip_reloads_failed; /* and those that kept the previous database */
    struct cm_etcd_consumer *etcd; /* borrowed; NULL outside the distributed mode */
};

/* Services with per-service series on /metrics at most (dns_metrics.c). */
#define DNS_METRICS_SERVICES 2000

/**
 * Binds the control listener described by @conf on @base and registers the
 * routes. @env is borrowed and must outlive the ctl. CM_* code with a reason
 * in @err.
 */
int dns_ctl_new(struct event_base *base, const struct cm_conf_control *conf,
                struct dns_ctl_env *env, struct dns_ctl **out, char *err, size_t errlen);
/** Accepts NULL. */
void dns_ctl_free(struct dns_ctl *ctl);
/** Takes the control section's tokens and TLS files on reload (cm_ctl_reload). */
int dns_ctl_reload(struct dns_ctl *ctl, const struct cm_conf_control *conf, char *err,
                   size_t errlen);
/** The bound TCP port, or -1. */
int dns_ctl_port(const struct dns_ctl *ctl);

/**
 * The /v1/explain document for @name (presentation form), @client (numeric
 * IP) and @ecs (source prefix length as text, or NULL). On success *out is a
 * new reference. CM_EINVAL with a reason in @err for bad parameters,
 * CM_ENOMEM otherwise.
 */
int dns_ctl_explain(const struct dns_ctl_env *env, const char *name, const char *client,
                    const char *ecs, json_t **out, char *err, size_t errlen);

/**
 * The /v1/explain document for @name and the clients of region @region (a
 * configured region name): the same decision as for an address located in
 * that region, with client hash 0 and "response": null. New reference in
 * *out; CM_EINVAL (unknown region, bad name), CM_EAGAIN (no view), CM_ENOMEM.
 */
int dns_ctl_explain_region(const struct dns_ctl_env *env, const char *name, const char *region,
                           json_t **out, char *err, size_t errlen);

/**
 * The /v1/answers document: {"services": {KEY: {"configured": bool,
 * "members": {M: {present, healthy, votes_up, votes_down, pending, drained,
 * ready_endpoints, reason, eligible, excluded}}, "regions": {R: {rule,
 * chosen: [M...], member (the one member answered, or null when several
 * share or none), cname, fail_open, ttl}}}}, "view_serial": N}, computed
 * from the merge and drains the view was built from, with the ranking of
 * the table build (dns_rank) for each service's global name. New reference
 * in *out; CM_EAGAIN (no view) or CM_ENOMEM with a reason in @err.
 */
int dns_ctl_answers(const struct dns_ctl_env *env, json_t **out, char *err, size_t errlen);

/** Appends the health families (verdicts, RTT, reloads, state file): dns_metrics.c. */
void dns_ctl_metrics_health(const struct dns_ctl_env *env, struct cm_buf *out);

/** The /v1/topology document (new reference; NULL on allocation failure). */
json_t *dns_ctl_topology(const struct dns_ctl_env *env);
/** The /v1/topology route (cm_ctl_route_fn; @arg is the env). */
void dns_ctl_route_topology(void *arg, struct cm_ctl_req *req, const char *path_rest);

#endif /* DNSD_DNS_CTL_H */
