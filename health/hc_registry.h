/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_registry.h -- members_from: the member registry of a host cluster
 * (KubeFed or Karmada), watched, so that a join adds a member and an unjoin
 * removes it while fedgslb-health runs.
 *
 *   host cluster API server
 *     KubeFedCluster / Cluster --list+watch--+
 *     Secret (one watch per secretRef) ------+--> reconcile --join/leave--> hc_vantage
 *     FederatedService, Domain,              |        |
 *     ServiceDNSRecord (KubeFed) ------------+        +--services------> hc_report (rules)
 *                                                     +--status-------> GET /v1/state "registry"
 *
 * Reconciling turns each registry object into a member or a reason it is
 * not one, and the service objects into services with rules: the rules are
 * hc_placement.h's. An object whose Secret is not listed yet is pending: a
 * member joined before stays as it is meanwhile.
 *
 * A member whose server, CA, token, proxy or place changed is joined again
 * (the vantage restarts its watches with the new credentials: a rotated
 * Secret is picked up within a watch event); one that is gone, or can no
 * longer be used, leaves. The host cluster being away changes nothing: the
 * watches keep their last lists, as member clusters do.
 *
 * Single-threaded, on the loop's thread.
 */
#ifndef HEALTH_HC_REGISTRY_H
#define HEALTH_HC_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <jansson.h>

#include "health/hc_watch.h"

struct cm_buf;
struct cm_conf;
struct cm_conf_member;
struct hc_fedsvcs;
struct hc_http;
struct hc_k8s_obj;
struct hc_kube_target;
struct hc_registry;

/** A member joins or changes: @m (name, region, zone; borrowed for the call), @t taken. */
typedef void hc_registry_join_fn(void *arg, const struct cm_conf_member *m,
                                 struct hc_kube_target *t);
/** A member leaves. */
typedef void hc_registry_leave_fn(void *arg, const char *name);
/** The services changed (hc_registry_services()), or the registry synced. */
typedef void hc_registry_changed_fn(void *arg);

struct hc_registry_cbs {
    hc_registry_join_fn *join;
    hc_registry_leave_fn *leave;
    hc_registry_changed_fn *services; /* may be NULL */
    hc_registry_changed_fn *synced;   /* once, when every first list arrived; may be NULL */
    void *arg;
};

/**
 * The registry of @conf->members_from (a reference to @conf is taken) on the
 * host cluster @host (taken, also on failure), watched through @http with
 * @p's timings. NULL on ENOMEM. Start with hc_registry_start().
 */
struct hc_registry *hc_registry_new(struct event_base *base, struct hc_http *http,
                                    struct cm_conf *conf, struct hc_kube_target *host,
                                    const struct hc_watch_params *p,
                                    const struct hc_registry_cbs *cbs);
/** CM_OK or CM_ENOMEM. */
int hc_registry_start(struct hc_registry *r);
/** Stops every watch; no callback after. Members joined stay with their holder. Accepts NULL. */
void hc_registry_free(struct hc_registry *r);

/**
 * A new configuration (reference taken) and host target (taken, also on
 * failure). When the host, the source, the namespace or the services switch
 * changed, the watches start over (their caches too); the members joined
 * stay until the new lists say otherwise. Then reconciles. CM_ENOMEM.
 */
int hc_registry_reload(struct hc_registry *r, struct cm_conf *conf, struct hc_kube_target *host,
                       const struct hc_watch_params *p);

/** Every member joined leaves (members_from is going away). */
void hc_registry_unjoin_all(struct hc_registry *r);

/** Every first list (members, their Secrets, and services when enabled) arrived. */
bool hc_registry_synced(const struct hc_registry *r);
/** The services and their rules (borrowed until the next services callback); NULL: none. */
const struct hc_fedsvcs *hc_registry_services(const struct hc_registry *r);

/**
 * What the registry holds, for GET /v1/state: {"source", "host", "synced",
 * "members": {name: {"region", "zone", "server", "placed_by"}}, "unplaced":
 * {name: reason}, "services": {key: {...}}, "notes": [...]}. New reference,
 * NULL on ENOMEM. Never holds a credential.
 */
json_t *hc_registry_status(const struct hc_registry *r);
/** Prometheus text: members placed and unplaced, watch health (docs/metrics.md). */
void hc_registry_metrics(const struct hc_registry *r, struct cm_buf *out);

#endif /* HEALTH_HC_REGISTRY_H */
