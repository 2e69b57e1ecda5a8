/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_rank.h -- the one decision procedure for federated answers.
 *
 * Both the answer table build (dns_fed_build) and /v1/explain
 * (dns_explain) decide through these functions, so the two cannot
 * disagree:
 *
 *   dns_rank_ctx       per build: conf, merged state, drains, member name order
 *    +- dns_rank_service   per service: eligibility of every member, TTL
 *        +- dns_rank_order     per client region: candidates by latency
 *            +- dns_rank_decide    per name level (global/regional/zonal):
 *                                  the rule, the chosen members, the TTL
 *
 * Eligibility does not depend on the client; only the order does. A member is
 * a candidate when the merged state reports it present, healthy by majority,
 * with ready endpoints, an address or a hostname, and the operator's intents
 * (common/cm_intent.h) neither drain it, evacuate its region nor force it
 * down; forced up, the vantages' verdict and ready endpoints do not matter.
 * Latency from client region R: the RTT measured by the vantage in R, else
 * the static latency_ms matrix, else 1000 ms (then lower region index
 * first); equal latencies put members of R first, then go by member name.
 *
 * Traffic policy, per service and member (an intent, else services.*.policy,
 * else the member's Service annotation in the state document, else the
 * default): weight (default 1; 0 = standby) and priority group (default 0).
 * Among the candidates in scope: standby members only when no other is; of
 * those, the lowest priority group; of that group, the best by latency and
 * every member within latency_slack_ms of it (with policy.prefer_own_region,
 * only the client's own region's when some are); they share by weight x
 * ready endpoints.
 */
#ifndef DNSD_DNS_RANK_H
#define DNSD_DNS_RANK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cm_intent.h"

struct cm_conf;
struct cm_conf_policy;
struct cm_merged;
struct cm_merged_service;
struct cm_merged_endpoint;

#define DNS_RANK_MAX_CHOSEN     64   /* at most DNS_RANK_SLOTS members share */
#define DNS_RANK_UNKNOWN_RTT_MS 1000 /* latency assumed when nothing is known */
#define DNS_RANK_SLOTS          64   /* slots of a shared answer (DNS_FED_SLOTS) */
#define DNS_RANK_MAX_MEMBERS    1024 /* members a configuration may have (cm_conf_schema.c) */

struct dns_rank_ctx {
    const struct cm_conf *conf;           /* borrowed for the ctx's lifetime */
    const struct cm_merged *merged;       /* borrowed, may be NULL */
    const struct cm_intent_view *intents; /* borrowed, built for conf; NULL = none */
    uint32_t *name_rank;                  /* owned: position of each member in name order */
};

/** CM_OK or CM_ENOMEM. @merged and @intents may be NULL. */
int dns_rank_ctx_init(struct dns_rank_ctx *ctx, const struct cm_conf *conf,
                      const struct cm_merged *merged, const struct cm_intent_view *intents);
void dns_rank_ctx_fini(struct dns_rank_ctx *ctx);

/* Where a member's weight or priority for a service came from. */
enum dns_rank_policy_src {
    DNS_RANK_POLICY_DEFAULT = 0,    /* weight 1, priority 0 */
    DNS_RANK_POLICY_ANNOTATION = 1, /* fedgslb.io/weight, /priority on the member's Service */
    DNS_RANK_POLICY_CONFIG = 2,     /* services.*.policy.weights / priority */
    DNS_RANK_POLICY_INTENT = 3,     /* an operator intent (the newest one) */
};

/* One member for one service, independent of the client. */
struct dns_rank_member {
    const struct cm_merged_endpoint *ep; /* borrowed, NULL when the state has no such entry */
    bool present;
    bool healthy;               /* the vantages' verdict and ready endpoints (intents aside) */
    bool drained;               /* drained or evacuated: out of every answer, failing open too */
    enum cm_intent_admin admin; /* what the operator's intents say */
    const struct cm_intent *admin_by; /* borrowed from the ctx's view: the intent that decided */
    bool has_addr;                    /* at least one address */
    bool has_host;                    /* a valid hostname */
    bool eligible;                    /* a candidate */
    bool fail_open_ok;   /* answered when failing open: present, not drained, addresses */
    const char *why_not; /* static text when !eligible, else NULL */
    uint32_t weight;     /* 0 = standby */
    uint32_t priority;   /* its group: lower is answered first */
    enum dns_rank_policy_src weight_src, priority_src;
    const struct cm_intent *weight_by, *priority_by; /* borrowed: with DNS_RANK_POLICY_INTENT */
};

/* The policy of a service that is in the state but not in the configuration. */
extern const struct cm_conf_policy dns_rank_default_policy;

enum dns_rank_ttl_why {
    DNS_RANK_TTL_NORMAL = 0,  /* dnsd.ttl_s */
    DNS_RANK_TTL_PENDING = 1, /* min_ttl_s: a member's verdict may flip */
    DNS_RANK_TTL_FAIL_OPEN = 2,
    DNS_RANK_TTL_ALL_DOWN = 3, /* fail-closed and sorry answers */
};

struct dns_rank_service {
    const struct dns_rank_ctx *ctx;
    const char *key; /* borrowed "ns/name" (from msvc), NULL when not in the state */
    const struct cm_merged_service *msvc; /* borrowed, NULL: not in the state */
    const struct cm_conf_policy *policy;  /* borrowed */
    struct dns_rank_member *members;      /* borrowed, conf->member_count entries */
    size_t eligible_count;
    size_t fail_open_count;
    uint32_t ttl;       /* ttl_s, or min_ttl_s when a member is pending */
    int pending_member; /* first pending member, -1 when none */
};

/**
 * Computes eligibility and TTL for one service. @msvc may be NULL, @policy
 * NULL means the default policy. @members: caller's scratch with
 * conf->member_count entries, filled here.
 */
void dns_rank_service_init(struct dns_rank_service *rs, const struct dns_rank_ctx *ctx,
                           const struct cm_merged_service *msvc,
                           const struct cm_conf_policy *policy, struct dns_rank_member *members);

enum dns_rank_src {
    DNS_RANK_SRC_MEASURED = 0, /* cm_merged_rtt from the vantage in the client's region */
    DNS_RANK_SRC_STATIC = 1,   /* latency_ms matrix */
    DNS_RANK_SRC_UNKNOWN = 2,  /* DNS_RANK_UNKNOWN_RTT_MS */
};

struct dns_rank_entry {
    uint32_t member;
    enum dns_rank_src src;
    double latency_ms;
    bool own_region; /* the member is in the client's region */
};

/** Latency from client region @region to @member for this service. */
double dns_rank_latency(const struct dns_rank_service *rs, size_t region, size_t member,
                        enum dns_rank_src *src);

/**
 * Writes the members that are eligible or fail_open_ok, best first, as seen
 * from client region @region, into @out (conf->member_count entries) and
 * returns their number.
 */
size_t dns_rank_order(const struct dns_rank_service *rs, size_t region, struct dns_rank_entry *out);

enum dns_rank_level {
    DNS_RANK_GLOBAL = 0,
    DNS_RANK_REGIONAL = 1,
    DNS_RANK_ZONAL = 2,
};

struct dns_rank_scope {
    enum dns_rank_level level;
    size_t region; /* REGIONAL, ZONAL */
    int zone;      /* ZONAL: index in the region's zones */
};

/** True if @member belongs to the scope's region / zone (always for GLOBAL). */
bool dns_rank_in_scope(const struct cm_conf *conf, const struct dns_rank_scope *scope,
                       size_t member);

enum dns_rank_rule {
    DNS_RANK_BEST = 0,            /* one best member's addresses */
    DNS_RANK_SHARED = 1,          /* tied members share, weighted */
    DNS_RANK_CNAME_UP_REGION = 2, /* regional name: CNAME to the global name */
    DNS_RANK_CNAME_UP_ZONE = 3,   /* zonal name: CNAME to the regional name */
    DNS_RANK_FAIL_OPEN = 4,
    DNS_RANK_FAIL_CLOSED = 5,
    DNS_RANK_SORRY = 6,
    DNS_RANK_HOSTNAME = 7, /* the best member has only a hostname: CNAME */
};

struct dns_rank_decision {
    enum dns_rank_rule rule;
    size_t chosen_count;
    uint32_t chosen[DNS_RANK_MAX_CHOSEN]; /* member indexes, rank order */
    uint32_t weight[DNS_RANK_MAX_CHOSEN]; /* SHARED: weight x ready endpoints, at least 1 */
    uint32_t ttl;
    enum dns_rank_ttl_why ttl_why;
    /* How the policy narrowed the candidates (BEST, SHARED, HOSTNAME): */
    uint32_t group;       /* the priority group answered */
    bool standby;         /* only standby members (weight 0) were healthy */
    bool own_region_only; /* members of other regions as near were left out */
};

/**
 * Decides the answer for @scope from @ranked (dns_rank_order() for the
 * client's region). Depends on nothing else that varies with the client.
 */
void dns_rank_decide(const struct dns_rank_service *rs, const struct dns_rank_scope *scope,
                     const struct dns_rank_entry *ranked, size_t n, struct dns_rank_decision *out);

/**
 * True when the decision for @scope is the same for every client region
 * (at most one member could be chosen, so the order cannot matter).
 */
bool dns_rank_client_independent(const struct dns_rank_service *rs,
                                 const struct dns_rank_scope *scope);

/**
 * Spreads DNS_RANK_SLOTS slots over @n weights by largest remainder and
 * writes the variant index (0..n-1) of each slot, in contiguous blocks.
 */
void dns_rank_slots(const uint32_t *weight, size_t n, uint8_t slots[DNS_RANK_SLOTS]);

/** "none", "forced up", "forced down", "region evacuated", "drained". */
const char *dns_rank_admin_text(enum cm_intent_admin admin);

/** Static text for a rule (without the region, zone or target). */
const char *dns_rank_rule_text(enum dns_rank_rule rule);

#endif /* DNSD_DNS_RANK_H */
