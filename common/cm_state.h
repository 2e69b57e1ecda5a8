/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_state.h -- the state document v1: the contract between fedgslb-health
 * and its consumers (DESIGN.md, "State document v1").
 *
 * One document is what one vantage (a health checker in one region) sees:
 *
 *   cm_state                       vantage, generation, generated_at
 *    +- members[]                  per member: region, zone, api, rtt_ms
 *    +- services[]                 "ns/name", port
 *        +- members[]              addresses, hostname, ready endpoints,
 *                                  healthy, pending, rtt_ms, reason, ...
 *
 * Parsing validates everything and explains the first problem with its JSON
 * path ("services.default/web.members.usa.addresses[1]: not an IP address").
 * Addresses and backends must be ordinary unicast addresses: unspecified,
 * multicast, broadcast, loopback and link-local ones are refused
 * (cm_ip_refused), except loopback and link-local ranges the options allow
 * ("services.default/web.members.usa.addresses[0]: 127.0.0.1 is a loopback
 * address; list it in allow_addresses to permit it").
 * Unknown fields are allowed (the contract lets producers add fields) and are
 * kept through a parse/serialize round trip. A parsed document is immutable.
 *
 * Merging several vantages' documents (cm_merged) gives consumers one view:
 * a member is down for a service only when a strict majority of the vantages
 * that report it say so (a tie keeps it up), and each vantage supplies the RTT
 * row for its own region.
 */
#ifndef COMMON_CM_STATE_H
#define COMMON_CM_STATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cm_net.h"

struct cm_conf;

#define CM_STATE_VERSION 1
#define CM_STATE_ERR_MAX 512

/* A state file (dnsd's or the proxy's holds one document per vantage). */
#define CM_STATE_FILE_MAX_BYTES (256u * 1024u * 1024u)

/* Limits enforced by the parser (each rejection says which was exceeded). */
#define CM_STATE_MAX_BYTES    (64u * 1024u * 1024u) /* document text */
#define CM_STATE_MAX_SERVICES 100000u               /* services per document */
#define CM_STATE_MAX_MEMBERS  1000u                 /* members per service, and top-level members */
#define CM_STATE_POLICY_MAX   1000u                 /* an endpoint's weight and priority */
#define CM_STATE_TTL_MAX      86400u                /* a service's ttl_s, as dnsd.ttl_s */

struct cm_state_member {
    char *name;    /* owned */
    char *region;  /* owned, NULL when absent */
    char *zone;    /* owned, NULL when absent */
    char *api;     /* owned, "ok", "stale", "unreachable", ...; NULL when absent */
    double rtt_ms; /* NAN when not measured */
};

struct cm_state_endpoint {
    char *member;              /* owned member name */
    bool via_proxy;            /* answered with the proxy's address */
    struct cm_addr *addresses; /* owned; port 0 */
    size_t address_count;
    char *hostname;  /* owned, NULL: a load balancer known by name only */
    char **backends; /* owned "ip:port" strings (proxy mode) */
    size_t backend_count;
    uint32_t ready_endpoints;
    bool healthy;
    bool pending;  /* verdict may be about to flip */
    double rtt_ms; /* NAN when not measured */
    char *reason;  /* owned, NULL when absent */
    /* The member's Service annotations fedgslb.io/weight and fedgslb.io/priority
     * (0..CM_STATE_POLICY_MAX), when it has them: traffic policy (dns_rank). */
    bool has_weight;
    uint32_t weight;
    bool has_priority;
    uint32_t priority;
    /* The change stamp of this entry (cm_state_stamp): 0 when unstamped. */
    uint64_t changed;
};

struct cm_state_service {
    char *key;                         /* owned "ns/name" */
    uint16_t port;                     /* 0 when absent */
    struct cm_state_endpoint *members; /* owned array, sorted by member name */
    size_t member_count;
    /* "placement": the members the service may be answered with (a
     * FederatedService's placement); absent = every member. */
    bool has_placement;
    char **placement; /* owned names, sorted, unique; placement_count may be 0 */
    size_t placement_count;
    uint32_t ttl_s;               /* "ttl_s": the answers' TTL (1..86400); 0 = dnsd.ttl_s */
    bool allow_without_endpoints; /* members with 0 ready endpoints may be answered */
    uint64_t changed; /* change stamp of port, placement, ttl_s, allow_without_endpoints */
    json_t *json;     /* owned reference to the service's object as received */
    /* private to cm_state.c: how many documents hold this service's allocations
     * (a delta's document shares the services it leaves alone with its base),
     * one of a block of counters (struct cm_state_refs) freed with its last. */
    unsigned *shared;
    struct cm_state_refs *refs;
};

struct cm_state {
    int version;   /* always CM_STATE_VERSION after a successful parse */
    char *vantage; /* owned region name */
    uint64_t generation;
    char *generated_at;              /* owned RFC 3339 text as received */
    int64_t generated_at_unix;       /* seconds since the epoch, parsed from generated_at */
    struct cm_state_member *members; /* owned, sorted by name */
    size_t member_count;
    struct cm_state_service *services; /* owned, sorted by key */
    size_t service_count;
    /* owned: the document as received but its "services" (each service has
     * its own object; cm_state_json gives the whole document) */
    json_t *json;
    uint64_t changed; /* the stamp cm_state_stamp gave it; 0: unstamped */
    /* Made by cm_state_delta_apply: says nothing its base did not (but
     * generation and generated_at). */
    bool same_as_base;
    /* private to cm_state.c: a number no other document has; for a delta's
     * document, its base's, and the indexes into services of the services it
     * parsed (sorted; the others are its base's) and the keys of the base's
     * services it removed (borrowed from the base, sorted). */
    uint64_t serial;
    uint64_t base_serial;
    size_t *fresh;
    size_t fresh_count;
    const char **removed;
    size_t removed_count;
    struct cm_state_refs *refs; /* the counters of the services it parsed */
};

/* What a parse may accept beyond the contract's defaults. */
struct cm_state_opts {
    const struct cm_ip_prefix *allow; /* borrowed: loopback / link-local ranges that addresses
                                         and backends may use (allow_addresses); NULL: none */
    size_t allow_count;
};

/** The options @conf implies (its allow_addresses, borrowed from @conf). */
void cm_state_opts_from_conf(struct cm_state_opts *opts, const struct cm_conf *conf);

/**
 * Parses and validates a document under @opts (borrowed; NULL: nothing
 * special allowed). On success *out is a new document owned by
 * the caller. On failure returns CM_ESTATE (CM_EPARSE for invalid JSON,
 * CM_ETOOBIG above CM_STATE_MAX_BYTES, CM_ENOMEM) and explains in @err, with
 * the JSON path of the first problem.
 *
 * Field rules: "version" (1), "vantage", "generation" and "generated_at"
 * (RFC 3339 UTC, "Z", optional fraction) are required; "members" and
 * "services" are optional objects (absent = empty). Per endpoint only
 * "healthy" is required; "pending" and "via_proxy" default to false,
 * "ready_endpoints" to 0, lists to empty; "weight" and "priority" (0..1000)
 * are optional. Optional strings and rtt_ms may be
 * null (= absent). Service keys are "namespace/name", each a DNS-1123 label.
 * Per service, "placement" (null or an array of distinct member names),
 * "ttl_s" (null or 1..86400) and "allow_without_endpoints" (a boolean) are
 * optional.
 */
int cm_state_parse(const char *text, size_t len, const struct cm_state_opts *opts,
                   struct cm_state **out, char *err, size_t errlen);
/**
 * The same from a jansson value (borrowed; the state takes its own reference,
 * so the caller must not modify @doc afterwards).
 */
int cm_state_from_json(json_t *doc, const struct cm_state_opts *opts, struct cm_state **out,
                       char *err, size_t errlen);

/**
 * The JSON text of a document or a delta, loaded as cm_state_parse() loads
 * it (at most CM_STATE_MAX_BYTES, no duplicate keys). CM_ETOOBIG or
 * CM_EPARSE with the reason in @err.
 */
int cm_state_load_json(const char *text, size_t len, json_t **out, char *err, size_t errlen);

/*
 * A delta (docs/architecture.md, "State deltas") is a document of the same
 * schema that carries only what changed since the generation the receiver
 * holds:
 *
 *   {"version": 1, "vantage": V, "base_generation": B, "generation": G,
 *    "generated_at": T, "services": {changed services, whole},
 *    "removed": ["ns/name", ...], "members": {...} (when they changed)}
 *
 * Every other top-level member replaces the base's; "services" entries
 * replace (or add) whole services; "removed" deletes services the base has.
 */

/** Whether @doc (a loaded JSON value) is a delta: it has "base_generation". */
bool cm_state_is_delta(json_t *doc);

/**
 * Whether @delta is a refresh of @base: base_generation and generation both
 * @base's generation, and nothing but version, vantage (@base's) and
 * generated_at besides. It changes nothing; a consumer counts the vantage
 * as alive again (a publisher's keep-alive without resending the document).
 */
bool cm_state_delta_is_refresh(const struct cm_state *base, json_t *delta);

/**
 * Applies @delta (borrowed) to @base: on success *out is the document the
 * full document would have given, validated exactly as cm_state_from_json()
 * validates one. CM_EEXIST when base_generation is not @base's generation
 * (the sender must send the full document), CM_ESTATE for a bad delta
 * (wrong vantage, generation not above base_generation, a removed service
 * the base lacks or also changed, or the resulting document refused),
 * CM_ENOMEM; the reason with its JSON path in @err.
 */
int cm_state_delta_apply(const struct cm_state *base, json_t *delta,
                         const struct cm_state_opts *opts, struct cm_state **out, char *err,
                         size_t errlen);

/**
 * Change stamps: which vantage's entry the merge takes a member's addresses
 * and a service's port and rules from (cm_merged_build). Stamps @st, a
 * document of the vantage whose previous document is @prev (NULL: none):
 * every service whose port, placement, ttl_s or allow_without_endpoints
 * differ from @prev's entry for it (or that @prev lacks), and every member
 * entry whose observed fields (addresses, hostname, backends, via_proxy,
 * ready_endpoints, weight, priority) differ from @prev's, get @stamp; the
 * others keep @prev's stamps (the vantage re-sent what it said before).
 * Health verdicts, reasons and RTTs are the vantage's own and stamp nothing.
 * Entries @st shares with @prev (cm_state_delta_apply) are left as they are.
 * @stamp must be greater than every stamp given before (cm_store keeps the
 * counter) and nonzero.
 */
void cm_state_stamp(struct cm_state *st, const struct cm_state *prev, uint64_t stamp);

/**
 * The merge rule for what one vantage supplies (a member's addresses,
 * hostname, backends; a service's port and rules): whether the entry
 * stamped @stamp in @doc beats the one stamped @cur_stamp in @cur_doc. The
 * higher change stamp wins (the vantage that saw the latest change); of
 * equal stamps (unstamped documents, outside a cm_store), the newer
 * document (generated_at, then generation), then the vantage name that
 * sorts first.
 */
bool cm_state_src_better(uint64_t stamp, const struct cm_state *doc, uint64_t cur_stamp,
                         const struct cm_state *cur_doc);

/**
 * Checks a parsed document against the configuration: the vantage must be a
 * configured region and every member a configured member, and every address
 * and backend must pass the address rule under @conf's allow_addresses (a
 * document accepted under an older configuration may no longer). Services
 * need not be configured (health may discover annotated ones). With
 * members_from, a member that is not configured is a registry member: the
 * document's "members" must place it (a DNS label name, a configured
 * "region", a "zone" of that region or none). CM_ESTATE with a reason.
 */
int cm_state_check_conf(const struct cm_state *st, const struct cm_conf *conf, char *err,
                        size_t errlen);
/**
 * The same for @st made from @base (cm_state_delta_apply) while @base is
 * held and passed @conf: the services @st shares with @base are not checked
 * again, unless registry members place them (members_from) and the members
 * section changed. @base NULL: cm_state_check_conf.
 */
int cm_state_check_conf_since(const struct cm_state *st, const struct cm_state *base,
                              const struct cm_conf *conf, char *err, size_t errlen);

/**
 * Whether a writer limited to @vantage (NULL: the operator, any vantage) may
 * send @st. CM_EACCES with a reason naming both vantages otherwise: one
 * vantage's credential must not speak for the others (it could outvote them).
 */
int cm_state_check_writer(const struct cm_state *st, const char *vantage, char *err, size_t errlen);

/** Serializes (compact, sorted keys); caller frees with free(). NULL on ENOMEM. */
char *cm_state_dump(const struct cm_state *st);

/** The whole document as JSON (a new reference; its values shared with @st). NULL on ENOMEM. */
json_t *cm_state_json(const struct cm_state *st);

/**
 * Whether @a and @b say the same: equal documents, but generation and
 * generated_at when @ignore_generation. A document made from @a by
 * cm_state_delta_apply is compared in what the delta changed only.
 */
bool cm_state_equal(const struct cm_state *a, const struct cm_state *b, bool ignore_generation);

/** Accepts NULL. */
void cm_state_free(struct cm_state *st);

/** Lookups; NULL when absent. */
const struct cm_state_service *cm_state_service_find(const struct cm_state *st, const char *key);
const struct cm_state_endpoint *cm_state_endpoint_find(const struct cm_state_service *svc,
                                                       const char *member);

/* ---- merged view over several vantages ---- */

struct cm_merged_endpoint {
    size_t member;                       /* index into conf->members */
    bool present;                        /* some vantage reports this member for this service */
    bool unplaced;                       /* the service's placement leaves this member out */
    bool healthy;                        /* majority verdict (ties keep it up) */
    bool pending;                        /* any reporting vantage says pending */
    unsigned votes_up;                   /* vantages saying healthy */
    unsigned votes_down;                 /* vantages saying unhealthy */
    const struct cm_state_endpoint *src; /* borrowed: addresses, hostname, reason, ready
                                            endpoints from the newest document reporting it */
    /* private to cm_state.c: region_count per-service rtt_ms values, one per
     * region whose vantage reports this endpoint (NAN otherwise); NULL when
     * !present. Points into cm_merged_service.rtt_block. Use cm_merged_rtt(). */
    const double *rtt_by_region;
};

struct cm_merged_service {
    const char *key;                    /* borrowed from a source document; owned (key_owned) for a
                                           configured service that no document reports */
    int conf_index;                     /* index into conf->services, -1 for discovered services */
    uint16_t port;                      /* the configured port; for discovered services the port of
                                           the newest document that gives one; 0 if none */
    struct cm_merged_endpoint *members; /* owned, conf->member_count entries, by member index */
    /* From the newest document reporting the service (as the port of a
     * discovered one): its placement (members[].unplaced), TTL and rule for
     * members without ready endpoints. */
    uint32_t ttl_s;               /* 0 = dnsd.ttl_s */
    bool allow_without_endpoints; /* ready_endpoints 0 does not rule a member out */
    /* A 64-bit fingerprint of everything above (key, port, rules, every
     * member's verdict, votes, addresses, hostname, ready endpoints,
     * annotations and RTTs): two entries with the same digest are taken to
     * be the same. dnsd keeps a service's compiled answers across merges
     * while its digest stays (dns_fed_update). */
    uint64_t digest;
    /* private to cm_state.c */
    char *key_owned;            /* owned copy of a configured key, NULL when borrowed */
    double *rtt_block;          /* owned: region_count doubles per present member */
    unsigned *shared;           /* how many merges hold this entry (cm_merged_update) */
    struct cm_state_refs *refs; /* the block of counters @shared is in */
};

struct cm_merged {
    const struct cm_conf *conf; /* borrowed, only compared: what it was merged under */
    size_t region_count;        /* conf->region_count */
    size_t member_count;        /* conf->member_count */
    /* rtt_ms[region * member_count + member]: RTT measured from the vantage in
     * that region to the member (member-level rtt_ms), NAN when that region has
     * no vantage or no measurement. */
    double *rtt_ms;
    struct cm_merged_service *services; /* owned, sorted by key */
    size_t service_count;
    const struct cm_state **docs; /* owned array of borrowed pointers: all the inputs, as
                                     given (the documents must outlive the merge) */
    size_t doc_count;
    struct cm_state_refs *refs; /* private: the counters of the entries it merged */
};

/**
 * Merges @count documents (at most one per vantage; borrowed, must outlive
 * the result) under @conf. Members or vantages unknown to @conf are ignored:
 * a document whose vantage is not a configured region neither votes nor gives
 * RTTs. Should two documents share a vantage anyway, only the newest
 * (generated_at, then generation) counts. The services are the union of the
 * documents' services and the configured ones; a configured service nobody
 * reports has every member present=false. A member that is not present is
 * never healthy. CM_ENOMEM is the only failure. @conf (borrowed) is only read
 * during the call. The result is immutable: safe for concurrent readers.
 */
int cm_merged_build(const struct cm_state *const *docs, size_t count, const struct cm_conf *conf,
                    struct cm_merged **out);

/**
 * The same result as cm_merged_build(@docs, @count, @conf), made from @prev
 * (a merge under the same @conf, whose documents must still be alive; NULL:
 * a full build) where that is exact: when the same vantages count in the
 * same newest-first order, the services whose documents did not change
 * (the same allocation: a delta's document shares what it leaves alone,
 * cm_state_delta_apply) keep @prev's entries (shared, so digests and
 * pointers are equal), the others are merged again. Otherwise a full build.
 * CM_ENOMEM is the only failure.
 */
int cm_merged_update(const struct cm_merged *prev, const struct cm_state *const *docs, size_t count,
                     const struct cm_conf *conf, struct cm_merged **out);

/**
 * RTT for @service_member as seen from @region: the per-service rtt_ms of the
 * vantage in that region if reported, else that vantage's member rtt_ms, else
 * NAN. (The static latency matrix is the caller's fallback.)
 */
double cm_merged_rtt(const struct cm_merged *m, size_t region, const struct cm_merged_service *svc,
                     size_t member);

/** Accepts NULL. Does not free the source documents. */
void cm_merged_free(struct cm_merged *m);

/**
 * The configuration the documents @docs (@count, borrowed) are merged under:
 * @conf's loaded configuration (a reference) when it has no members_from,
 * else that configuration extended (cm_conf_with_members) with every
 * registry member the documents place (not configured; region and zone from
 * the newest document naming it; sorted by name). When @prev (may be NULL)
 * already extends the same loaded configuration with the same members, *out
 * is @prev (a new reference), so indexes stay put. CM_OK or CM_ENOMEM.
 */
int cm_state_members_conf(struct cm_conf *conf, const struct cm_state *const *docs, size_t count,
                          struct cm_conf *prev, struct cm_conf **out);

#endif /* COMMON_CM_STATE_H */
