/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_explain.h -- /v1/explain's decision document: why a federated name
 * answers what it answers.
 *
 *   qname --dns_fed_name_info--> service, level, region, zone   (the built table)
 *         --dns_rank_*---------> eligibility, order, decision   (as the build ranks)
 *         --> JSON
 *
 * The table says which name it is (the name grammar is built in dns_fed only)
 * and dns_rank decides, with the same code as the table build, so explain and
 * the answers cannot disagree.
 */
#ifndef DNSD_DNS_EXPLAIN_H
#define DNSD_DNS_EXPLAIN_H

#include <stdint.h>

#include <jansson.h>

struct cm_conf;
struct cm_merged;
struct cm_intent_view;
struct dns_fed;

/**
 * The decision for @qname (presentation form, trailing dot optional, any
 * case) and a client in @region (a conf region index; out of range: the
 * default region) with @client_hash, as JSON: the level and service, every
 * member with health, reason, the intents that concern it, its weight and
 * priority and where they came from, RTT and its source ("measured by
 * vantage X" or "static latency_ms"), the rule that decided (with the
 * priority group, standby and own-region narrowing), the TTL and why, and
 * every intent and policy that applied. @fed is the table built from @conf
 * (borrowed); @merged and @intents (either may be NULL) are ranked as the
 * build ranks them. New JSON object, or NULL when the
 * name is not a federated name of @fed (or on allocation failure).
 */
json_t *dns_explain(const struct dns_fed *fed, const struct cm_conf *conf,
                    const struct cm_merged *merged, const struct cm_intent_view *intents,
                    const char *qname, unsigned region, uint32_t client_hash);

#endif /* DNSD_DNS_EXPLAIN_H */
