/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_report.h -- the state document v1 (DESIGN.md) of this vantage, built
 * from the member caches and the configuration.
 *
 *   {"version":1, "vantage", "generation", "generated_at",
 *    "members":  {name: {region, zone, api, last_seen}},
 *    "services": {"ns/name": {port, members: {name: {addresses, hostname,
 *                 port, ready_endpoints, ready_endpoints_ipv4,
 *                 ready_endpoints_ipv6, healthy, pending, reason,
 *                 via_proxy, backends[, check_path, check_port]}}}}}
 *
 * Services are the configured ones plus every Service annotated
 * fedgslb.io/federate: "true" in any member. Healthy (Kubernetes side only;
 * data-plane probes come later) = ready endpoints > 0 and a load-balancer
 * address or hostname known (proxy mode: lb.address and a ready node with a
 * nodePort). A member whose API is not "ok" keeps its last-known data and
 * says so in `reason`.
 *
 * The generation increases only when the content changes, and never goes
 * backwards across restarts (it is loaded from the state file).
 */
#ifndef HEALTH_HC_REPORT_H
#define HEALTH_HC_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

struct cm_conf;
struct hc_cluster;
struct hc_report;

/** NULL on ENOMEM. @generation: the last generation published (0 = none). */
struct hc_report *hc_report_new(uint64_t generation);
void hc_report_free(struct hc_report *r);

/**
 * Rebuilds the document. @clusters has conf->member_count entries, indexed
 * like conf->members (borrowed; NULL entries are reported with api
 * "unknown"). *changed is true when the content differs from the previous
 * build; only then do generation and generated_at move. The new document is
 * validated with cm_state_from_json(); on failure the previous one stays and
 * CM_ESTATE is returned with the reason logged.
 */
int hc_report_update(struct hc_report *r, const struct cm_conf *conf,
                     struct hc_cluster *const *clusters, time_t now, bool *changed);

/** The current document (borrowed; NULL before the first update). */
json_t *hc_report_doc(const struct hc_report *r);
uint64_t hc_report_generation(const struct hc_report *r);

/**
 * Reads "generation" from a state file written earlier. A missing file gives
 * 0 and CM_OK; an unreadable or malformed one CM_EPARSE/CM_EIO with @err.
 */
int hc_report_load_generation(const char *path, uint64_t *out, char *err, size_t errlen);

/** Writes the current document to @path atomically (temp file, fsync, rename). */
int hc_report_write(const struct hc_report *r, const char *path, char *err, size_t errlen);

/** RFC 3339 UTC ("2026-11-21T07:00:00Z") into @buf (>= 21 bytes). */
void hc_report_time(time_t t, char *buf, size_t cap);

#endif /* HEALTH_HC_REPORT_H */
