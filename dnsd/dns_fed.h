/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_fed.h -- the federated answer table: every federated name x every
 * client region -> a compiled answer (DESIGN.md, "Names served" and "How an
 * answer is chosen").
 *
 * Names, for zone Z, federation F, service ns/svc, region R, zone AZ:
 *   svc.ns.F.svc.Z           global
 *   svc.ns.F.svc.R.Z         regional  (CNAME to global when no healthy member in R)
 *   svc.ns.F.svc.AZ.R.Z      zonal     (CNAME to regional when none in AZ)
 *   every services.*.aliases name      (answers as the global name)
 * plus every empty non-terminal above them (e.g. F.svc.Z, R.Z), so that the
 * query path can answer NODATA rather than NXDOMAIN for them.
 *
 * The table is built from the configuration, the merged state of all vantages
 * and the operator's intents, whenever any of them changes, and is then
 * immutable: the query path only looks up and copies. A table built after a
 * change (dns_fed_update) shares with the one before it the names and the
 * answers of every service the change left alone, and builds only the others. Ranking (dns_rank_*)
 * is the single decision procedure used by both the table build and
 * /v1/explain (dns_explain), so the two cannot disagree; explain learns what
 * a name is from the table (dns_fed_name_info), and the name grammar above is
 * built here only.
 *
 * Within a (name, region) the members tied within latency_slack_ms share the
 * answers in proportion to weight x ready endpoints (dns_rank): the build precomputes one
 * variant per tied member and a 64-slot weighted slot table; the query path
 * picks slot = client_hash % 64, where client_hash is a hash of the client's
 * subnet (/24 or /56), so a subnet always gets the same answer.
 */
#ifndef DNSD_DNS_FED_H
#define DNSD_DNS_FED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnsd/dns_rank.h"
#include "dnsd/dns_rrset.h"

struct cm_conf;
struct cm_intent_view;
struct cm_merged;
struct dns_fed;

/* The slot table of a shared answer is dns_rank_slots()'s: one constant, defined there. */
#define DNS_FED_SLOTS DNS_RANK_SLOTS

enum dns_fed_match {
    DNS_FED_NONE = 0, /* not a federated name nor above one: ask the static zone */
    DNS_FED_ENT = 1,  /* an empty non-terminal above federated names: NODATA */
    DNS_FED_NAME = 2, /* a federated name: see the answer */
};

/* What a query for a federated name gets. Everything is borrowed from the table. */
struct dns_fed_answer {
    const struct dns_rrset *cname; /* non-NULL: the name is a CNAME for this client
                                      (level up, hostname LB, sorry target); the query
                                      path chases it within the zone */
    const struct dns_rrset *rrset; /* A or AAAA for the qtype; NULL with cname == NULL:
                                      NODATA */
    uint32_t negative_ttl;         /* TTL of the SOA in a NODATA answer */
    bool client_dependent;         /* region_dependent || subnet_dependent */
    bool region_dependent;         /* another client region may get another answer */
    bool subnet_dependent;         /* tied members: the client subnet hash picks one */
    bool fail_open;                /* nothing healthy: all members answered */
    bool fail_closed;              /* nothing healthy: NODATA by policy */
    int service;                   /* index in the table's service list, for metrics */
    int member;                    /* conf member index answered, -1 when none or several
                                      (CNAME up, fail-open, sorry), for metrics */
    /* Where the answer sits in the table, for what was compiled from it
     * (dns_pre): the name (NAME and ENT), its answer for this client and
     * the variant picked (NAME; DNS_FED_NO_ID for a NODATA answer), the
     * last two within the service's answers (@service). */
    uint32_t name_id;
    uint32_t answer_id;
    uint32_t variant_id;
};

#define DNS_FED_NO_ID UINT32_MAX

/**
 * Builds the table. @merged may be NULL (no state yet: every member is
 * unknown, which fails open). CM_ENOMEM, or CM_ECONFIG with a reason in @err.
 * The table keeps no pointer into @conf, @merged or @intents.
 */
int dns_fed_build(const struct cm_conf *conf, const struct cm_merged *merged,
                  const struct cm_intent_view *intents, struct dns_fed **out, char *err,
                  size_t errlen);
/**
 * As dns_fed_build, from the table @prev (may be NULL: a full build) built
 * before: shares with it the names when the configuration (the same object,
 * alive) and the list of services stay, and the answers of every service
 * whose merged entry (cm_merged_service.digest), weight and priority intents
 * stay and none of whose members changed its admin state or member-level
 * RTTs. @prev is only read (its parts gain references); the result does not
 * depend on it (a full build from the same inputs answers the same).
 */
int dns_fed_update(const struct dns_fed *prev, const struct cm_conf *conf,
                   const struct cm_merged *merged, const struct cm_intent_view *intents,
                   struct dns_fed **out, char *err, size_t errlen);

/** What a build did, for metrics, logs and benchmarks. */
struct dns_fed_stats {
    size_t services_built;  /* services whose answers were built */
    size_t services_shared; /* services whose answers the previous table lent */
    bool names_shared;      /* the names are the previous table's */
};

void dns_fed_stats(const struct dns_fed *fed, struct dns_fed_stats *out);

/** The service of the table dns_fed_update was given whose answers @service shares, or -1. */
long dns_fed_reused_from(const struct dns_fed *fed, size_t service);

/** Whether @a and @b share their names (then name ids mean the same in both). */
bool dns_fed_same_names(const struct dns_fed *a, const struct dns_fed *b);

/** Accepts NULL. */
void dns_fed_free(struct dns_fed *fed);

/**
 * Query-path lookup of @qname (lowercased wire format) for @qtype (A, AAAA,
 * or anything else: then only a CNAME or NODATA comes back), for a client in
 * @region with @client_hash. Never allocates.
 */
enum dns_fed_match dns_fed_lookup(const struct dns_fed *fed, const uint8_t *qname, size_t qname_len,
                                  uint16_t qtype, unsigned region, uint32_t client_hash,
                                  struct dns_fed_answer *out);

/** The same with @qname_hash = dns_name_hash(qname, qname_len), known already. */
enum dns_fed_match dns_fed_lookup_hashed(const struct dns_fed *fed, const uint8_t *qname,
                                         size_t qname_len, uint32_t qname_hash, uint16_t qtype,
                                         unsigned region, uint32_t client_hash,
                                         struct dns_fed_answer *out);

/* Where a name sits in the table: its id, and for a NAME its service and slot
 * (the place of its answers in the service's block). */
struct dns_fed_place {
    uint32_t name_id;
    int service; /* -1 for an ENT */
    uint32_t slot;
};

/**
 * The first half of dns_fed_lookup_hashed: finds @qname, without reading its
 * answers (dns_pre keeps what they compile to per service and slot).
 * *out is set unless DNS_FED_NONE is returned.
 */
enum dns_fed_match dns_fed_find_hashed(const struct dns_fed *fed, const uint8_t *qname,
                                       size_t qname_len, uint32_t qname_hash,
                                       struct dns_fed_place *out);

/** The second half: the answer of the NAME at @p (from dns_fed_find_hashed). */
void dns_fed_place_answer(const struct dns_fed *fed, const struct dns_fed_place *p, uint16_t qtype,
                          unsigned region, uint32_t client_hash, struct dns_fed_answer *out);

/** Slots of @service's block (the same for every service), 0 when it has none. */
size_t dns_fed_slot_total(const struct dns_fed *fed, size_t service);
/** The table's region count and default region (dns_fed_lookup's fallback for others). */
size_t dns_fed_region_total(const struct dns_fed *fed);
unsigned dns_fed_default_region(const struct dns_fed *fed);
/**
 * How many answers @slot of @service has: 1 when it answers every region
 * alike, the region count when it answers per region, 0 when no name uses it.
 */
int dns_fed_slot_regions(const struct dns_fed *fed, size_t service, size_t slot);
/**
 * The answer dns_fed_lookup gives a name at @slot of @service for @qtype,
 * clients in @region (< region total) and client hash 0 (name_id unset).
 * @slot must be used (dns_fed_slot_regions > 0).
 */
void dns_fed_slot_answer(const struct dns_fed *fed, size_t service, size_t slot, unsigned region,
                         uint16_t qtype, struct dns_fed_answer *out);

/* The table as data, for what is compiled from it (dns_pre): names (ENTs
 * included) by name_id; per service (dns_fed_service_count), variants by
 * variant_id and answers by answer_id. */
struct dns_fed_variant_rrsets {
    const struct dns_rrset *a;     /* NULL when none */
    const struct dns_rrset *aaaa;  /* NULL when none */
    const struct dns_rrset *cname; /* non-NULL: the variant is this CNAME */
};

size_t dns_fed_name_total(const struct dns_fed *fed);
/** The lowercased wire name of @name_id (< dns_fed_name_total), its length in *len. */
const uint8_t *dns_fed_name_wire(const struct dns_fed *fed, size_t name_id, size_t *len);
size_t dns_fed_variant_total(const struct dns_fed *fed, size_t service);
void dns_fed_variant_rrsets(const struct dns_fed *fed, size_t service, size_t variant_id,
                            struct dns_fed_variant_rrsets *out);
size_t dns_fed_answer_total(const struct dns_fed *fed, size_t service);
/** The SOA TTL of a NODATA from answer @answer_id of @service. */
uint32_t dns_fed_answer_negative_ttl(const struct dns_fed *fed, size_t service, size_t answer_id);

/** Number of federated names and services (metrics, logs, benchmarks). */
size_t dns_fed_name_count(const struct dns_fed *fed);
size_t dns_fed_service_count(const struct dns_fed *fed);
/** Service key ("ns/name") of index @i, for metrics labels. */
const char *dns_fed_service_key(const struct dns_fed *fed, size_t i);

enum dns_fed_level {
    DNS_FED_GLOBAL = 0,   /* svc.ns.F.svc.Z */
    DNS_FED_REGIONAL = 1, /* svc.ns.F.svc.R.Z */
    DNS_FED_ZONAL = 2,    /* svc.ns.F.svc.AZ.R.Z */
    DNS_FED_ALIAS = 3,    /* a services.*.aliases name: answers as the global name */
};

/* What a federated name is, as the build made it. */
struct dns_fed_name {
    enum dns_fed_level level;
    size_t service; /* index in the table's service list (dns_fed_service_key) */
    size_t region;  /* REGIONAL, ZONAL: conf region index; else 0 */
    int zone;       /* ZONAL: index in the region's zones; else -1 */
};

/**
 * What @qname (lowercased wire format) is in the table, for /v1/explain: the
 * table, not a parse of the name, says which service, level, region and zone.
 * @out is filled for DNS_FED_NAME only. Never allocates.
 */
enum dns_fed_match dns_fed_name_info(const struct dns_fed *fed, const uint8_t *qname,
                                     size_t qname_len, struct dns_fed_name *out);

#endif /* DNSD_DNS_FED_H */
