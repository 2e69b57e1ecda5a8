/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_geo.h -- where a client is: client_networks and a GeoIP database
 * compiled into one longest-prefix table (cm_lpm), so that a query pays one
 * LPM walk whatever the sources.
 *
 *   .mmdb file --dns_geodb_open--> dns_geodb (networks + decoded records;
 *                                  the file is closed again)
 *   dns_geodb + cm_conf (client_networks, geo_map, regions.*.location)
 *              --dns_geo_build--> dns_geo: cm_lpm (value: region or place)
 *                                          + places[] (why a network goes where)
 *   dns_view ----> dns_geo (reference; shared by every view of one conf+db)
 *
 * Order of placement (the first that applies):
 *   1. client_networks: the operator's word. A database network inside a
 *      client network is dropped; a client network inside a database network
 *      wins there by longest prefix.
 *   2. dnsd.geo_map: subdivision ("JP-13") > country ("JP") > continent ("AS").
 *   3. nearest region with regions.*.location, by great-circle distance minus
 *      its bias_km, where the record has coordinates.
 *   4. dnsd.region (such networks are not inserted at all).
 *
 * Database networks are inserted with their own prefix length and never
 * merged, so the ECS scope of a GeoIP answer is the database's prefix
 * (cm_lpm's rules for sources shorter than the networks inside them apply).
 */
#ifndef DNSD_DNS_GEO_H
#define DNSD_DNS_GEO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cm_conf;
struct cm_lpm;
struct dns_geodb;

/* LPM values: a region index for client_networks; this bit + a place index
 * for a database network. Lookups (cm_lpm_lookup) give the latter folded
 * (cm_lpm_set_fold) into DNS_GEO_PLACE_BIT | DNS_GEO_REGION_BIT |
 * source << 16 | region: the networks of a region and source then make one
 * result whatever their place, so a city database's table needs as few
 * results as a country database's (16-bit direct-table entries, and no read
 * of places[] per query). dns_geo_describe() finds the place again. */
#define DNS_GEO_PLACE_BIT  0x80000000u
#define DNS_GEO_REGION_BIT 0x40000000u
#define DNS_GEO_REGION_MAX 0xffffu /* regions a folded value holds */

enum dns_place_source {
    DNS_PLACE_DEFAULT = 0,         /* dnsd.region */
    DNS_PLACE_CLIENT_NETWORKS = 1, /* a client_networks entry */
    DNS_PLACE_GEO_MAP = 2,         /* the database's code, through dnsd.geo_map */
    DNS_PLACE_NEAREST = 3,         /* the database's coordinates, nearest region */
    DNS_PLACE_COUNT = 4,
};

/** "default", "client_networks", "geo_map", "nearest". */
const char *dns_place_source_name(enum dns_place_source s);

/* Why one database record goes to a region. */
struct dns_geo_place {
    uint32_t region;  /* region index */
    uint8_t source;   /* DNS_PLACE_GEO_MAP or DNS_PLACE_NEAREST */
    char code[8];     /* GEO_MAP: the geo_map key that matched ("JP", "JP-13", "EU") */
    double lat, lon;  /* NEAREST: the record's coordinates */
    uint32_t dist_km; /* NEAREST: great-circle distance to the region */
};

/* The compiled lookup. Immutable once built; any number of readers. */
struct dns_geo {
    _Atomic int refs;
    struct cm_conf *conf;         /* the conf it was built for (reference held) */
    struct dns_geodb *db;         /* reference held; NULL: client_networks only */
    struct cm_lpm *lpm;           /* owned */
    struct dns_geo_place *places; /* owned, place_count */
    size_t place_count;
    size_t inserted;   /* database networks in the table */
    size_t covered;    /* database networks dropped inside a client network */
    size_t unplaced;   /* database networks left to dnsd.region */
    uint64_t build_us; /* time dns_geo_build took */
};

/**
 * Opens, validates and walks a MaxMind DB file, keeping its networks and the
 * fields dnsd uses (country, continent, subdivisions, coordinates); the file
 * is closed before returning. Hostile input: the walk is bounded by the
 * metadata's node count and the address depth, and record types are checked.
 * CM_* code with "path: reason" in @err.
 */
int dns_geodb_open(const char *path, struct dns_geodb **out, char *err, size_t errlen);
struct dns_geodb *dns_geodb_ref(struct dns_geodb *db);
/** Accepts NULL. */
void dns_geodb_unref(struct dns_geodb *db);
/** The path it was opened from (borrowed, lives as long as @db). */
const char *dns_geodb_path(const struct dns_geodb *db);
/** Networks kept, decoded records, bytes held, and the open+walk time. */
void dns_geodb_stats(const struct dns_geodb *db, size_t *networks, size_t *records, size_t *bytes,
                     uint64_t *load_us);
/** True when @path is no longer the file @db was read from (inode, size,
 *  mtime) or cannot be stat'ed. */
bool dns_geodb_changed(const struct dns_geodb *db, const char *path);

/**
 * Compiles @conf's client_networks and @db (NULL: none) into one table.
 * Takes references to @conf and @db. CM_* code with a reason in @err.
 */
int dns_geo_build(struct cm_conf *conf, struct dns_geodb *db, struct dns_geo **out, char *err,
                  size_t errlen);
struct dns_geo *dns_geo_ref(struct dns_geo *geo);
/** Accepts NULL. */
void dns_geo_unref(struct dns_geo *geo);
/** Bytes of the compiled table (LPM nodes and places). */
size_t dns_geo_memory(const struct dns_geo *geo);

/**
 * True when a table built for @a serves @b unchanged: the same regions (names,
 * order, locations, bias), client_networks and geo_map. A SIGHUP that changes
 * none of them keeps the table instead of compiling it again.
 */
bool dns_geo_conf_equal(const struct cm_conf *a, const struct cm_conf *b);

/** Great-circle distance in km between two points in degrees (haversine). */
double dns_geo_distance_km(double lat1, double lon1, double lat2, double lon2);

/**
 * The region nearest to (@lat, @lon) among those with a location, by distance
 * minus bias_km (ties: the first region). False when no region has one.
 * @dist_km gets the true (unbiased) distance.
 */
bool dns_geo_nearest(const struct cm_conf *conf, double lat, double lon, size_t *region,
                     double *dist_km);

/**
 * Why @value (an LPM value found for a @matched_len prefix of @addr) places a
 * client, as text: "client_networks 10.1.0.0/16",
 * "GeoIP JP 203.0.113.0/22 -> ap-northeast-1 (geo_map)",
 * "GeoIP 35.7,139.7 -> ap-northeast-1 (nearest, 12 km)". Not on the query path.
 */
void dns_geo_describe(const struct dns_geo *geo, int family, const uint8_t *addr,
                      unsigned matched_len, uint32_t value, char *buf, size_t cap);

#endif /* DNSD_DNS_GEO_H */
