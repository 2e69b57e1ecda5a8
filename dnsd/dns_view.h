/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_view.h -- one immutable snapshot of everything a query needs.
 *
 *   dns_view ----> cm_conf      (reference)   settings, regions, TTLs
 *            ----> dns_zone     (reference)   static records from the zone file
 *            ----> dns_fed      (owned)       federated answer table
 *            ----> dns_pre      (owned)       its answers as response parts
 *            ----> dns_geo      (reference)   client_networks + GeoIP -> region
 *
 * The main thread builds a new view whenever the configuration, the zone,
 * the state or the intents change, and hands it to every worker; a worker
 * switches between two queries, so a query always sees one consistent view
 * and never waits. The last reference frees the view. A view built after
 * another shares the unchanged parts of its table (reference counted,
 * immutable): a part is freed with the last view that holds it.
 */
#ifndef DNSD_DNS_VIEW_H
#define DNSD_DNS_VIEW_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cm_conf;
struct cm_lpm;
struct dns_geo;
struct cm_merged;
struct cm_intent_view;
struct dns_fed;
struct dns_pre;
struct dns_zone;

struct dns_view {
    _Atomic int refs;
    struct cm_conf *conf;    /* reference held */
    struct dns_zone *zone;   /* reference held */
    struct dns_fed *fed;     /* owned */
    struct dns_pre *pre;     /* owned: fed's answers precompiled (dns_pre.h); NULL: the
                                query path writes every answer itself */
    struct dns_geo *geo;     /* reference held: where clients are (dns_geo.h) */
    struct cm_lpm *lpm;      /* borrowed from geo (geo->lpm); values: a region index, or
                                DNS_GEO_PLACE_BIT | an index into geo->places, which
                                lookups give folded (dns_geo.h) */
    bool lpm_direct;         /* lpm has a direct table (cm_lpm_has_direct()): the query
                                path prefetches its entry; a small table is cached */
    unsigned default_region; /* conf->dnsd.region */
    uint16_t max_udp;        /* dnsd.max_udp_size in effect: dns_view_read_conf() */
    bool ecs;                /* dnsd.ecs (true without a conf): dns_view_read_conf() */
    uint64_t serial;         /* increases with every view built */
};

/**
 * Builds a view with one reference. Takes its own references to @conf and
 * @zone. @merged and @intents are only read during the call. CM_* code with a
 * reason in @err.
 */
int dns_view_new(struct cm_conf *conf, struct dns_zone *zone, const struct cm_merged *merged,
                 const struct cm_intent_view *intents, uint64_t serial, struct dns_view **out,
                 char *err, size_t errlen);

/**
 * As dns_view_new, with the client lookup @geo (a reference is taken; built
 * for @conf or a conf dns_geo_conf_equal() to it). NULL: one from @conf's
 * client_networks alone.
 */
int dns_view_new_geo(struct cm_conf *conf, struct dns_zone *zone, struct dns_geo *geo,
                     const struct cm_merged *merged, const struct cm_intent_view *intents,
                     uint64_t serial, struct dns_view **out, char *err, size_t errlen);

/**
 * As dns_view_new_geo, after @prev (may be NULL), the view in service: the
 * new view shares with it the names, answers and precompiled parts a change
 * left alone (dns_fed_update, dns_pre_update) and builds the rest. @prev is
 * only read, and must stay alive during the call.
 */
int dns_view_next(const struct dns_view *prev, struct cm_conf *conf, struct dns_zone *zone,
                  struct dns_geo *geo, const struct cm_merged *merged,
                  const struct cm_intent_view *intents, uint64_t serial, struct dns_view **out,
                  char *err, size_t errlen);

/**
 * Sets what a query reads of @view->conf from it (max_udp, ecs), once, so
 * that the query path neither tests nor clamps them per query. The
 * dns_view_* constructors call it; a view made by hand, or one whose conf a
 * test changes, calls it after.
 */
void dns_view_read_conf(struct dns_view *view);

struct dns_view *dns_view_ref(struct dns_view *view);
/** Atomic; frees on the last reference. Accepts NULL. */
void dns_view_unref(struct dns_view *view);

#endif /* DNSD_DNS_VIEW_H */
