/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_report.h -- the state document v1 (DESIGN.md) of this vantage, built
 * from the member caches and the configuration.
 *
 *   {"version":1, "vantage", "generation", "generated_at",
 *    "members":  {name: {region, zone, api, last_seen, rtt_ms}},
 *    "services": {"ns/name": {port, members: {name: {addresses, hostname,
 *                 port, ready_endpoints, ready_endpoints_ipv4,
 *                 ready_endpoints_ipv6, healthy, pending, rtt_ms, reason,
 *                 via_proxy, backends, probes: {address: {state, rtt_ms,
 *                 error}}[, check_path, check_port]}}}}}
 *
 * Services are the configured ones, the host cluster's (hc_report_set_services:
 * FederatedServices and ServiceDNSRecords, each with its rules: placement,
 * ttl_s, allow_without_endpoints) and every Service annotated
 * fedgslb.io/federate: "true" in any member (those two use the default check,
 * with the fedgslb.io/health-path and -port annotations applied).
 *
 * Healthy = (ready endpoints > 0, or the API is not ok and the last-known
 * data is all we have) AND a load-balancer address known (proxy mode:
 * lb.address and a ready node with a nodePort) AND the data-plane probe of
 * at least one address up after hysteresis. `addresses` lists the addresses
 * whose probe is up when at least one is (IPv4 and IPv6 are judged
 * separately), else all of them, so a fail-open answer still has addresses.
 * A probe with no result yet keeps the verdict of the previous document
 * (the state file after a restart), else counts as up; either way the entry
 * is `pending`. A member whose API is not "ok" keeps its last-known data and
 * says so in `reason`, with the outage length rounded (15 s steps in the
 * first minute, then minutes, then hours) so that the document does not
 * change every second.
 *
 * Each entry is reconciled by hc_endpoint (a plain struct) and then
 * serialized here. Each update also reconciles the probe set: one probe per (service,
 * member, address), at the check's port (else the fedgslb.io/health-port
 * annotation, else the service port); a member in proxy mode is probed at
 * its proxy listener (proxy.listen for that member and service) when one is
 * configured, else at lb.address.
 *
 * The generation increases only when the content changes, and never goes
 * backwards across restarts (it is loaded from the state file).
 *
 * The document is kept, not rebuilt: each entry is stored serialized, and an
 * update rebuilds only the entries that the changes noted by the clusters
 * (hc_cluster_take_changes) and the probes (hc_probes_take_changed) touch --
 * all of a member's for its API state, a relist, a Node change, a new
 * cluster object or its outage words moving; everything for a new
 * configuration (entries follow their member by name, so a member added or
 * removed changes only its own), a new probe set, or the first update. The
 * text is then assembled from the stored parts and is byte for byte the
 * jansson serialization of the whole tree (compact, sorted keys).
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
struct hc_fedsvcs;
struct hc_probes;
struct hc_report;

/**
 * NULL on ENOMEM. @generation: the last generation published (0 = none).
 * @previous: the last document published (from the state file), or NULL;
 * a reference is taken. It seeds verdicts of probes with no result yet.
 */
struct hc_report *hc_report_new(uint64_t generation, json_t *previous);
void hc_report_free(struct hc_report *r);

/**
 * Brings the document up to date. @conf: a reference is kept until the
 * next update with another one. @clusters has conf->member_count entries,
 * indexed like conf->members (borrowed; NULL entries are reported with api
 * "unknown"); their changes are taken. @probes (borrowed, may be NULL:
 * Kubernetes data only) is reconciled with the wanted probes (entries
 * rebuilt ensure theirs and stop those they no longer want; a full rebuild
 * marks and sweeps) and supplies the data-plane verdicts. *changed is true
 * when the content differs from the previous build; only then do
 * generation and generated_at move. Rebuilt entries are validated with
 * cm_state_from_json() first; on failure nothing changes, the changes stay
 * marked, and CM_ESTATE is returned with the reason logged (CM_ETOOBIG past
 * CM_STATE_MAX_BYTES or CM_STATE_MAX_SERVICES; CM_ENOMEM).
 */
int hc_report_update(struct hc_report *r, struct cm_conf *conf, struct hc_cluster *const *clusters,
                     struct hc_probes *probes, time_t now, bool *changed);

/**
 * The host cluster's services and their rules for the next updates (@s is
 * borrowed until the next call; NULL: none). The services whose presence or
 * rules changed are rebuilt at the next update.
 */
void hc_report_set_services(struct hc_report *r, const struct hc_fedsvcs *s);

/**
 * The current document (borrowed, valid until the next update): the last
 * one built (parsed from its text on first use), else the state file's,
 * else NULL. For tests and tools: the daemon serves hc_report_text().
 */
json_t *hc_report_doc(struct hc_report *r);
uint64_t hc_report_generation(const struct hc_report *r);
/**
 * The current document serialized (compact, sorted keys; borrowed, valid
 * until the next update that changes the document): the last one built,
 * else the state file's. NULL when there is no document, or on ENOMEM.
 */
const char *hc_report_text(struct hc_report *r, size_t *len);

/**
 * Reads a state file written earlier: its "generation" into *gen and the
 * document into *doc (new reference). A missing file gives 0, NULL and CM_OK;
 * a truncated or corrupt one is replaced by its .prev (cm_file_load, with a
 * warning); when both are unusable CM_EPARSE/CM_EIO with @err. With @check
 * (--check-config) nothing on disk changes and a damaged @path fails even
 * when its .prev would do.
 */
int hc_report_load(const char *path, bool check, uint64_t *gen, json_t **doc, char *err,
                   size_t errlen);

/**
 * Writes the current document to @path atomically: the slots that changed
 * into PATH.prev in place, or the whole file (see README, state files), then
 * fdatasync and the two names swapped.
 */
int hc_report_write(struct hc_report *r, const char *path, char *err, size_t errlen);
/** State file writes so far: patches of PATH.prev and whole files. */
void hc_report_write_counts(const struct hc_report *r, uint64_t *patches, uint64_t *wholes);
/** Bytes of the services' slots the patches of the state file wrote (the head aside). */
uint64_t hc_report_patch_bytes(const struct hc_report *r);

/** RFC 3339 UTC ("2026-11-21T07:00:00Z") into @buf (>= 21 bytes). */
void hc_report_time(time_t t, char *buf, size_t cap);

#endif /* HEALTH_HC_REPORT_H */
