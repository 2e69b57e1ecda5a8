/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_entry.h -- the parts of the state document as JSON values: one
 * (service, member) entry, reconciled by hc_endpoint from the member's
 * Service, ready endpoints, nodes and probe verdicts, and the members
 * section. hc_report stores them serialized and rebuilds only the entries a
 * change touches.
 *
 * An entry is everything under services[key].members[member]:
 *   {addresses, backends, probes: {address: {state, rtt_ms, error}}, hostname,
 *    port, ready_endpoints[_ipv4|_ipv6], healthy, pending, rtt_ms, via_proxy,
 *    reason, check_path, check_port, refused}
 * A field added to entries goes into entry_json() (hc_entry.c) and nowhere
 * else: the report re-serializes whatever it returns.
 */
#ifndef HEALTH_HC_ENTRY_H
#define HEALTH_HC_ENTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <jansson.h>

struct cm_conf;
struct cm_conf_service;
struct cm_log_ratelimit;
struct hc_cluster;
struct hc_k8s_obj;
struct hc_probes;

/* What building entries reads; all borrowed. */
struct hc_entry_ctx {
    const struct cm_conf *conf;
    struct hc_probes *probes; /* NULL: Kubernetes data only */
    time_t now;
    struct cm_log_ratelimit *refused_rl; /* refused addresses are logged through it */
};

/* One entry built. */
struct hc_entry {
    json_t *json;   /* new reference: the entry object */
    bool healthy;   /* its verdict */
    char **targets; /* owned: the addresses its probes connect to (their hc_probes keys) */
    size_t target_count;
};

/**
 * Builds the entry of service @key ("ns/name") in member @member (an index
 * into ctx->conf->members) from its Service @so (borrowed) in cluster @c,
 * the configured service @csvc (NULL: annotated), @allow_no_endpoints (a
 * ServiceDNSRecord's allowServiceWithoutEndpoints) and the verdict the entry
 * had before (@previous_healthy: 1, 0, or -1 for none). With probes, each
 * address's probe is ensured in ctx->probes and its status read. CM_OK or
 * CM_ENOMEM; on success release @out with hc_entry_fini().
 */
int hc_entry_build(const struct hc_entry_ctx *ctx, const char *key, size_t member,
                   const struct hc_cluster *c, const struct hc_k8s_obj *so,
                   const struct cm_conf_service *csvc, bool allow_no_endpoints,
                   int previous_healthy, struct hc_entry *out);
void hc_entry_fini(struct hc_entry *e);

/**
 * The members section: {name: {region, zone, api[, last_seen][, rtt_ms]}}.
 * @clusters and @rtt_ms (the member's probe RTT median, < 0 none; NULL: no
 * probes) have conf->member_count entries. New reference, NULL on ENOMEM.
 */
json_t *hc_entry_members_json(const struct cm_conf *conf, struct hc_cluster *const *clusters,
                              const double *rtt_ms);

#endif /* HEALTH_HC_ENTRY_H */
