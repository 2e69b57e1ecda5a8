/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_cluster.h -- one member cluster as fedgslb-health sees it: the object
 * caches fed by its watches, and the health of its API server.
 *
 *   hc_cluster
 *    +- target             kubeconfig context (owned)
 *    +- watches[kind]      services, endpointslices, nodes (proxy mode only)
 *    +- caches[kind]       last known objects, kept through outages
 *    +- readyz checker     GET /readyz (or /healthz) every interval with a
 *                          timeout; `fall` failures -> unreachable (or
 *                          unauthorized on 401/403), `rise` successes -> ok
 *
 * An unreachable or unauthorized API is not an outage: the caches keep the
 * last-known objects and the member is reported stale with the time it was
 * last seen (KubeFed's cluster health check semantics).
 *
 * Changes are also kept as a set for the report (hc_report rebuilds only
 * the entries they touch): the services ns/name whose Service or ready
 * endpoints changed, or "everything", which a new cluster starts with and
 * which a list (initial or relist), an API state change, a change in a
 * Node's readiness or addresses, or a set that cannot grow sets.
 */
#ifndef HEALTH_HC_CLUSTER_H
#define HEALTH_HC_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <event2/event.h>

#include "health/hc_k8s.h"
#include "health/hc_watch.h"

struct hc_http;
struct hc_kube_target;
struct hc_cluster;

enum hc_api_state {
    HC_API_OK = 0,           /* reachable and every watch current */
    HC_API_STALE = 1,        /* reachable, but some watch is failing or not yet synced */
    HC_API_UNREACHABLE = 2,  /* readyz failed `fall` times */
    HC_API_UNAUTHORIZED = 3, /* credentials rejected (401/403) */
};

struct hc_cluster_params {
    uint32_t readyz_interval_ms; /* default 10000 */
    uint32_t readyz_timeout_ms;  /* default 3000 */
    uint32_t fall;               /* failures to mark unreachable, default 3 */
    uint32_t rise;               /* successes to recover, default 1 */
    struct hc_watch_params watch;
};

/** Something the report depends on changed (objects or API state). */
typedef void hc_cluster_changed_fn(void *arg);

void hc_cluster_params_default(struct hc_cluster_params *p);

/**
 * A member (not started). @name is copied; takes ownership of @t (also on
 * failure). @want_nodes: also watch Nodes (lb mode proxy). NULL on ENOMEM.
 */
struct hc_cluster *hc_cluster_new(struct event_base *base, struct hc_http *http, const char *name,
                                  struct hc_kube_target *t, bool want_nodes,
                                  const struct hc_cluster_params *p, hc_cluster_changed_fn *changed,
                                  void *arg);
int hc_cluster_start(struct hc_cluster *c);
/** Stops the watches and the checker, frees the caches. Accepts NULL. */
void hc_cluster_free(struct hc_cluster *c);

const char *hc_cluster_name(const struct hc_cluster *c);
/** Borrowed target (for comparing on reload). */
const struct hc_kube_target *hc_cluster_target(const struct hc_cluster *c);
bool hc_cluster_wants_nodes(const struct hc_cluster *c);

enum hc_api_state hc_cluster_api(const struct hc_cluster *c);
const char *hc_api_state_name(enum hc_api_state s);
/**
 * Wall-clock time the member's data was last known current: while the API is
 * ok, its last answer (readyz or data); otherwise frozen at the last answer
 * before it left ok. 0 if never.
 */
time_t hc_cluster_last_seen(const struct hc_cluster *c);
/**
 * Moves @src's caches (kinds that @dst watches) and last-seen times into
 * @dst, which has not synced yet: a member restarted by a reload keeps its
 * last-known data until its new watches deliver.
 */
void hc_cluster_take_caches(struct hc_cluster *dst, struct hc_cluster *src);
/** Wall-clock time the API state last left HC_API_OK, 0 if it is OK. */
time_t hc_cluster_bad_since(const struct hc_cluster *c);

/* ---- cache access (borrowed objects, valid until the loop runs again) ---- */
size_t hc_cluster_count(const struct hc_cluster *c, enum hc_k8s_kind kind);
const struct hc_k8s_obj *hc_cluster_obj(const struct hc_cluster *c, enum hc_k8s_kind kind,
                                        size_t i);
/** The Service ns/name, or NULL. */
const struct hc_k8s_obj *hc_cluster_service(const struct hc_cluster *c, const char *ns,
                                            const char *name);
/** Ready endpoints of service ns/name summed over its EndpointSlices. */
void hc_cluster_ready(const struct hc_cluster *c, const char *ns, const char *name, uint32_t *v4,
                      uint32_t *v6);

/** One changed service, "ns/name" (borrowed for the call). */
typedef void hc_cluster_change_fn(void *arg, const char *key);

/**
 * Hands over the changes noted since the last call and forgets them: true
 * when everything of the member may have changed (@fn is not called then),
 * else false after calling @fn once per changed service. One consumer (the
 * report) takes them.
 */
bool hc_cluster_take_changes(struct hc_cluster *c, hc_cluster_change_fn *fn, void *arg);

struct hc_cluster_stats {
    struct hc_watch_stats watch[HC_K8S_KIND_COUNT]; /* zeros for kinds not watched */
    bool watched[HC_K8S_KIND_COUNT];
    uint64_t readyz_ok;
    uint64_t readyz_failed;
};
void hc_cluster_get_stats(const struct hc_cluster *c, struct hc_cluster_stats *out);

#endif /* HEALTH_HC_CLUSTER_H */
