/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_zone.h -- the static part of the federation zone, from an RFC 1035
 * zone file, compiled for the query path.
 *
 * Loading uses ldns (ldns_zone_new_frm_fp_l) and happens at start and on
 * SIGHUP, never on the query path. The result is immutable: a hash table of
 * owner names (lowercased wire format) to nodes, each with its compiled
 * RRsets (dns_rrset.h), plus every empty non-terminal, so the query path can
 * tell NXDOMAIN from NODATA (RFC 8020). The apex must have exactly one SOA and
 * at least one NS. NS RRsets below the apex are delegations: names at or
 * below them are answered with a referral (NS in authority, glue in additional).
 *
 * Reference counted: views share one zone until the next reload.
 */
#ifndef DNSD_DNS_ZONE_H
#define DNSD_DNS_ZONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnsd/dns_name.h"
#include "dnsd/dns_rrset.h"

struct dns_zone;

struct dns_node {
    const uint8_t *name; /* lowercased wire name, borrowed from the zone */
    uint8_t name_len;
    bool is_delegation;             /* has NS and is not the apex */
    const struct dns_rrset *rrsets; /* borrowed; empty for empty non-terminals */
    uint16_t rrset_count;
};

enum dns_zone_match {
    DNS_ZONE_OUTSIDE = 0,   /* not at or below the apex: REFUSED */
    DNS_ZONE_FOUND = 1,     /* node exists (possibly an empty non-terminal) */
    DNS_ZONE_NXDOMAIN = 2,  /* below the apex, no such name */
    DNS_ZONE_DELEGATED = 3, /* at or below a delegation point (node = the cut) */
};

/**
 * Loads @path with @origin (presentation form, e.g. "fed.example.test") as
 * $ORIGIN and the expected apex. On failure returns a CM_* code and writes
 * "path:line: reason" into @err.
 */
int dns_zone_load(const char *path, const char *origin, struct dns_zone **out, char *err,
                  size_t errlen);

struct dns_zone *dns_zone_ref(struct dns_zone *zone);
/** Atomic; frees on the last reference. Accepts NULL. */
void dns_zone_unref(struct dns_zone *zone);

/** The apex: its wire name (lowercased), SOA RRset and NS RRset. */
const struct dns_node *dns_zone_apex(const struct dns_zone *zone);
const struct dns_rrset *dns_zone_soa(const struct dns_zone *zone);
/** SOA MINIMUM capped by the SOA TTL (RFC 2308 §5): the negative-answer TTL. */
uint32_t dns_zone_negative_ttl(const struct dns_zone *zone);

/**
 * Finds @qname (lowercased wire format, @qname_len bytes). Sets *node for
 * FOUND and DELEGATED. Never allocates.
 */
enum dns_zone_match dns_zone_find(const struct dns_zone *zone, const uint8_t *qname,
                                  size_t qname_len, const struct dns_node **node);

/**
 * The node named exactly @name (lowercased wire format), ignoring zone cuts
 * and wildcards: for glue and additional-section data. NULL if none.
 */
const struct dns_node *dns_zone_lookup_exact(const struct dns_zone *zone, const uint8_t *name,
                                             size_t len);

/** The RRset of @type at @node, or NULL. */
const struct dns_rrset *dns_node_rrset(const struct dns_node *node, uint16_t type);

/** Number of owner names (for metrics and logs). */
size_t dns_zone_name_count(const struct dns_zone *zone);

#endif /* DNSD_DNS_ZONE_H */
