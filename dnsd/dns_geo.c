/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_geo.c -- reading a MaxMind DB once (dns_geodb) and compiling it with
 * client_networks into the LPM table views share (dns_geo). See dns_geo.h.
 *
 * The walk reads the search tree with MMDB_read_node from the root, one bit
 * per level, and keeps every data record's network. It is bounded three ways
 * against a crafted file: the depth never exceeds the address size (32/128),
 * a node is only followed when its record type says "search node" (number
 * below node_count), and the number of nodes visited is capped (an honest
 * tree visits each node once; aliases of the IPv4 subtree are skipped).
 * Data records are decoded once each (cached by data-section offset), with
 * every value's type checked before use.
 */
#include "dnsd/dns_geo.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <maxminddb.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_lpm.h"

#define EARTH_RADIUS_KM 6371.0088
#define MAX_SUBDIVS     4
#define NO_PLACE        UINT32_MAX
#define MAX_NETWORKS    (1u << 26) /* 67 M: far beyond any real database */

/* One decoded data record: what placement reads. */
struct geo_rec {
    char country[3];             /* "JP" or "" */
    char continent[3];           /* "AS" or "" */
    char subdiv[MAX_SUBDIVS][4]; /* "13", least specific first */
    uint8_t subdiv_count;
    bool has_loc;
    double lat, lon;
};

/* One database network. IPv4 networks (the ::/96 subtree of an IPv6 database,
 * or its non-aliased ::ffff:0:0/96) are kept as IPv4. */
struct geo_net {
    uint8_t addr[16];
    uint8_t len;
    uint8_t is_v6;
    uint32_t rec; /* index into records */
};

struct dns_geodb {
    _Atomic int refs;
    char *path; /* owned */
    struct geo_net *nets;
    size_t net_count, net_cap;
    struct geo_rec *recs;
    size_t rec_count, rec_cap;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    uint64_t load_us;
};

static uint64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

const char *dns_place_source_name(enum dns_place_source s)
{
    switch (s) {
    case DNS_PLACE_CLIENT_NETWORKS:
        return "client_networks";
    case DNS_PLACE_GEO_MAP:
        return "geo_map";
    case DNS_PLACE_NEAREST:
        return "nearest";
    default:
        return "default";
    }
}

/* ---- reading the database -------------------------------------------------- */

/* Offset (data section) -> record index, open addressing; 0 = empty slot. */
struct rec_cache {
    uint64_t *keys; /* offset + 1 */
    uint32_t *vals;
    size_t cap, count;
};

struct walk {
    MMDB_s *mmdb;
    struct dns_geodb *db;
    struct rec_cache cache;
    unsigned bits;       /* 32 or 128 */
    uint32_t ipv4_start; /* node of ::/96 in an IPv6 tree, UINT32_MAX if none */
    uint64_t visits, budget;
    uint8_t addr[16];
    char *err;
    size_t errlen;
};

static int walk_fail(struct walk *w, int rc, const char *reason)
{
    snprintf(w->err, w->errlen, "%s: %s", w->db->path, reason);
    return rc;
}

static int cache_grow(struct rec_cache *c)
{
    size_t ncap = c->cap != 0 ? c->cap * 2 : 1024;
    uint64_t *keys = calloc(ncap, sizeof(*keys));
    uint32_t *vals = calloc(ncap, sizeof(*vals));

    if (keys == NULL || vals == NULL) {
        free(keys);
        free(vals);
        return CM_ENOMEM;
    }
    for (size_t i = 0; i < c->cap; i++) {
        size_t j;
        if (c->keys[i] == 0)
            continue;
        for (j = (size_t)(c->keys[i] * 0x9E3779B97F4A7C15u) & (ncap - 1); keys[j] != 0;
             j = (j + 1) & (ncap - 1))
            ;
        keys[j] = c->keys[i];
        vals[j] = c->vals[i];
    }
    free(c->keys);
    free(c->vals);
    c->keys = keys;
    c->vals = vals;
    c->cap = ncap;
    return CM_OK;
}

/* The slot for @key: its value or an empty slot. */
static size_t cache_slot(const struct rec_cache *c, uint64_t key)
{
    size_t j = (size_t)(key * 0x9E3779B97F4A7C15u) & (c->cap - 1);

    while (c->keys[j] != 0 && c->keys[j] != key)
        j = (j + 1) & (c->cap - 1);
    return j;
}

/* A string field of exactly 1..@cap-1 bytes of [A-Z0-9] into @out. */
static bool get_code(MMDB_entry_s *e, char *out, size_t cap, const char *const *path)
{
    MMDB_entry_data_s d;

    out[0] = '\0';
    if (MMDB_aget_value(e, &d, path) != MMDB_SUCCESS || !d.has_data ||
        d.type != MMDB_DATA_TYPE_UTF8_STRING || d.data_size == 0 || d.data_size >= cap)
        return false;
    for (uint32_t i = 0; i < d.data_size; i++) {
        char ch = d.utf8_string[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')))
            return false;
    }
    memcpy(out, d.utf8_string, d.data_size);
    out[d.data_size] = '\0';
    return true;
}

static bool get_double(MMDB_entry_s *e, const char *const *path, double *out)
{
    MMDB_entry_data_s d;

    if (MMDB_aget_value(e, &d, path) != MMDB_SUCCESS || !d.has_data)
        return false;
    if (d.type == MMDB_DATA_TYPE_DOUBLE)
        *out = d.double_value;
    else if (d.type == MMDB_DATA_TYPE_FLOAT)
        *out = d.float_value;
    else
        return false;
    return isfinite(*out);
}

static void decode_rec(MMDB_entry_s *e, struct geo_rec *r)
{
    static const char *const country[] = {"country", "iso_code", NULL};
    static const char *const continent[] = {"continent", "code", NULL};
    static const char *const lat[] = {"location", "latitude", NULL};
    static const char *const lon[] = {"location", "longitude", NULL};
    char idx[MAX_SUBDIVS][2] = {"0", "1", "2", "3"};
    double la, lo;

    memset(r, 0, sizeof(*r));
    if (!get_code(e, r->country, sizeof(r->country), country) || strlen(r->country) != 2)
        r->country[0] = '\0';
    if (!get_code(e, r->continent, sizeof(r->continent), continent) || strlen(r->continent) != 2)
        r->continent[0] = '\0';
    for (unsigned i = 0; i < MAX_SUBDIVS; i++) {
        const char *const sub[] = {"subdivisions", idx[i], "iso_code", NULL};
        if (!get_code(e, r->subdiv[r->subdiv_count], sizeof(r->subdiv[0]), sub))
            break;
        r->subdiv_count++;
    }
    if (get_double(e, lat, &la) && get_double(e, lon, &lo) && la >= -90.0 && la <= 90.0 &&
        lo >= -180.0 && lo <= 180.0) {
        r->has_loc = true;
        r->lat = la;
        r->lon = lo;
    }
}

/* The record index for a data entry, decoding it the first time. */
static int rec_index(struct walk *w, MMDB_entry_s *e, uint32_t *out)
{
    struct dns_geodb *db = w->db;
    uint64_t key = (uint64_t)e->offset + 1;
    size_t slot;

    if (w->cache.count * 2 >= w->cache.cap && cache_grow(&w->cache) != CM_OK)
        return CM_ENOMEM;
    slot = cache_slot(&w->cache, key);
    if (w->cache.keys[slot] == key) {
        *out = w->cache.vals[slot];
        return CM_OK;
    }
    if (db->rec_count == db->rec_cap) {
        size_t ncap = db->rec_cap != 0 ? db->rec_cap * 2 : 256;
        struct geo_rec *n = realloc(db->recs, ncap * sizeof(*n));
        if (n == NULL)
            return CM_ENOMEM;
        db->recs = n;
        db->rec_cap = ncap;
    }
    decode_rec(e, &db->recs[db->rec_count]);
    w->cache.keys[slot] = key;
    w->cache.vals[slot] = (uint32_t)db->rec_count;
    w->cache.count++;
    *out = (uint32_t)db->rec_count++;
    return CM_OK;
}

static int net_add(struct walk *w, unsigned depth, uint32_t rec)
{
    struct dns_geodb *db = w->db;
    struct geo_net *n;
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (db->net_count == db->net_cap) {
        size_t ncap = db->net_cap != 0 ? db->net_cap * 2 : 1024;
        if (ncap > MAX_NETWORKS)
            return walk_fail(w, CM_ETOOBIG, "more than 67108864 networks");
        n = realloc(db->nets, ncap * sizeof(*n));
        if (n == NULL)
            return CM_ENOMEM;
        db->nets = n;
        db->net_cap = ncap;
    }
    n = &db->nets[db->net_count++];
    memset(n, 0, sizeof(*n));
    n->rec = rec;
    if (w->bits == 32) {
        memcpy(n->addr, w->addr, 4);
        n->len = (uint8_t)depth;
    } else if (depth >= 96 &&
               (memcmp(w->addr, mapped, 12) == 0 ||
                (memcmp(w->addr, mapped, 10) == 0 && w->addr[10] == 0 && w->addr[11] == 0))) {
        memcpy(n->addr, w->addr + 12, 4); /* ::/96 or ::ffff:0:0/96: IPv4 */
        n->len = (uint8_t)(depth - 96);
    } else {
        memcpy(n->addr, w->addr, 16);
        n->len = (uint8_t)depth;
        n->is_v6 = 1;
    }
    return CM_OK;
}

static void set_bit(uint8_t *a, unsigned i, unsigned b)
{
    uint8_t m = (uint8_t)(0x80u >> (i % 8));

    a[i / 8] = b ? (uint8_t)(a[i / 8] | m) : (uint8_t)(a[i / 8] & ~m);
}

/* ::/96 exactly: the one path on which the IPv4 subtree is not an alias. */
static bool at_ipv4_root(const struct walk *w, unsigned depth)
{
    static const uint8_t zero[12];

    return depth == 96 && memcmp(w->addr, zero, 12) == 0;
}

/* Recursion depth <= w->bits (128): bounded. */
static int walk_node(struct walk *w, uint32_t node, unsigned depth)
{
    MMDB_search_node_s sn;
    int rc = CM_OK;

    if (++w->visits > w->budget)
        return walk_fail(w, CM_EPARSE, "search tree is not a tree (visits exceed node_count)");
    if (depth >= w->bits)
        return walk_fail(w, CM_EPARSE, "search tree deeper than the address size");
    if (node >= w->mmdb->metadata.node_count || MMDB_read_node(w->mmdb, node, &sn) != MMDB_SUCCESS)
        return walk_fail(w, CM_EPARSE, "search tree node out of range");
    for (unsigned b = 0; b < 2 && rc == CM_OK; b++) {
        uint64_t rec = b ? sn.right_record : sn.left_record;
        uint8_t type = b ? sn.right_record_type : sn.left_record_type;
        MMDB_entry_s *e = b ? &sn.right_record_entry : &sn.left_record_entry;
        uint32_t ri;

        set_bit(w->addr, depth, b);
        switch (type) {
        case MMDB_RECORD_TYPE_SEARCH_NODE:
            if (rec == w->ipv4_start && !at_ipv4_root(w, depth + 1))
                break; /* an alias of the IPv4 subtree (::ffff:0:0/96, 2002::/16) */
            rc = walk_node(w, (uint32_t)rec, depth + 1);
            break;
        case MMDB_RECORD_TYPE_EMPTY:
            break;
        case MMDB_RECORD_TYPE_DATA:
            rc = rec_index(w, e, &ri);
            if (rc == CM_OK)
                rc = net_add(w, depth + 1, ri);
            break;
        default:
            rc = walk_fail(w, CM_EPARSE, "invalid record in the search tree");
            break;
        }
        set_bit(w->addr, depth, 0);
    }
    return rc;
}

/* The node reached by 96 zero bits, or UINT32_MAX. */
static uint32_t ipv4_start(const MMDB_s *mmdb)
{
    uint64_t node = 0;

    if (mmdb->metadata.ip_version != 6)
        return UINT32_MAX;
    for (unsigned i = 0; i < 96; i++) {
        MMDB_search_node_s sn;
        if (node >= mmdb->metadata.node_count ||
            MMDB_read_node(mmdb, (uint32_t)node, &sn) != MMDB_SUCCESS ||
            sn.left_record_type != MMDB_RECORD_TYPE_SEARCH_NODE)
            return UINT32_MAX;
        node = sn.left_record;
    }
    return node < mmdb->metadata.node_count ? (uint32_t)node : UINT32_MAX;
}

static int geodb_read(struct dns_geodb *db, char *err, size_t errlen)
{
    MMDB_s mmdb;
    struct walk w;
    int rc, mrc;

    mrc = MMDB_open(db->path, MMDB_MODE_MMAP, &mmdb);
    if (mrc != MMDB_SUCCESS) {
        int e = errno;
        snprintf(err, errlen, "%s: %s%s%s", db->path, MMDB_strerror(mrc),
                 mrc == MMDB_IO_ERROR ? ": " : "", mrc == MMDB_IO_ERROR ? strerror(e) : "");
        return mrc == MMDB_IO_ERROR ? CM_EIO : CM_EPARSE;
    }
    memset(&w, 0, sizeof(w));
    w.mmdb = &mmdb;
    w.db = db;
    w.err = err;
    w.errlen = errlen;
    if (mmdb.metadata.ip_version != 4 && mmdb.metadata.ip_version != 6) {
        rc = walk_fail(&w, CM_EPARSE, "metadata: ip_version is neither 4 nor 6");
        goto out;
    }
    if (mmdb.metadata.node_count == 0 || mmdb.metadata.node_count >= (1u << 31)) {
        rc = walk_fail(&w, CM_EPARSE, "metadata: node_count out of range");
        goto out;
    }
    w.bits = mmdb.metadata.ip_version == 4 ? 32 : 128;
    w.ipv4_start = ipv4_start(&mmdb);
    w.budget = (uint64_t)mmdb.metadata.node_count + 1;
    rc = walk_node(&w, 0, 0);
    if (rc == CM_OK && db->net_count < db->net_cap && db->net_count > 0) {
        struct geo_net *n = realloc(db->nets, db->net_count * sizeof(*n));
        if (n != NULL) { /* give back the doubling's slack */
            db->nets = n;
            db->net_cap = db->net_count;
        }
    }
    if (rc == CM_ENOMEM)
        snprintf(err, errlen, "%s: out of memory", db->path);
out:
    free(w.cache.keys);
    free(w.cache.vals);
    MMDB_close(&mmdb);
    return rc;
}

int dns_geodb_open(const char *path, struct dns_geodb **out, char *err, size_t errlen)
{
    struct dns_geodb *db = calloc(1, sizeof(*db));
    uint64_t t0 = now_us();
    struct stat st;
    int rc;

    if (db == NULL || (db->path = strdup(path)) == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        free(db);
        return CM_ENOMEM;
    }
    atomic_init(&db->refs, 1);
    if (stat(path, &st) == -1) {
        rc = cm_err_from_errno(errno);
        snprintf(err, errlen, "%s: %s", path, cm_strerror(rc));
        goto out;
    }
    db->dev = st.st_dev;
    db->ino = st.st_ino;
    db->size = st.st_size;
    db->mtime = st.st_mtim;
    rc = geodb_read(db, err, errlen);
    if (rc != CM_OK)
        goto out;
    db->load_us = now_us() - t0;
    *out = db;
    db = NULL;
out:
    dns_geodb_unref(db);
    return rc;
}

struct dns_geodb *dns_geodb_ref(struct dns_geodb *db)
{
    atomic_fetch_add_explicit(&db->refs, 1, memory_order_relaxed);
    return db;
}

void dns_geodb_unref(struct dns_geodb *db)
{
    if (db == NULL || atomic_fetch_sub_explicit(&db->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(db->nets);
    free(db->recs);
    free(db->path);
    free(db);
}

const char *dns_geodb_path(const struct dns_geodb *db)
{
    return db->path;
}

void dns_geodb_stats(const struct dns_geodb *db, size_t *networks, size_t *records, size_t *bytes,
                     uint64_t *load_us)
{
    *networks = db->net_count;
    *records = db->rec_count;
    *bytes = db->net_cap * sizeof(db->nets[0]) + db->rec_cap * sizeof(db->recs[0]);
    *load_us = db->load_us;
}

bool dns_geodb_changed(const struct dns_geodb *db, const char *path)
{
    struct stat st;

    if (stat(path, &st) == -1)
        return true;
    return st.st_dev != db->dev || st.st_ino != db->ino || st.st_size != db->size ||
           st.st_mtim.tv_sec != db->mtime.tv_sec || st.st_mtim.tv_nsec != db->mtime.tv_nsec;
}

/* ---- placement --------------------------------------------------------------- */

double dns_geo_distance_km(double lat1, double lon1, double lat2, double lon2)
{
    const double rad = M_PI / 180.0;
    double dlat = (lat2 - lat1) * rad, dlon = (lon2 - lon1) * rad;
    double a = sin(dlat / 2) * sin(dlat / 2) +
               cos(lat1 * rad) * cos(lat2 * rad) * sin(dlon / 2) * sin(dlon / 2);

    if (a > 1.0)
        a = 1.0;
    if (a < 0.0)
        a = 0.0;
    return 2.0 * EARTH_RADIUS_KM * asin(sqrt(a));
}

bool dns_geo_nearest(const struct cm_conf *conf, double lat, double lon, size_t *region,
                     double *dist_km)
{
    bool found = false;
    double best = 0;

    for (size_t i = 0; i < conf->region_count; i++) {
        const struct cm_conf_region *r = &conf->regions[i];
        double d, eff;

        if (!r->has_location)
            continue;
        d = dns_geo_distance_km(lat, lon, r->lat, r->lon);
        eff = d - (double)r->bias_km;
        if (!found || eff < best) {
            found = true;
            best = eff;
            *region = i;
            *dist_km = d;
        }
    }
    return found;
}

static const struct cm_conf_geo_map *geo_map_find(const struct cm_conf *conf, enum cm_geo_kind kind,
                                                  const char *code)
{
    for (size_t i = 0; i < conf->dnsd.geo_map_count; i++) {
        const struct cm_conf_geo_map *g = &conf->dnsd.geo_map[i];
        if (g->kind == kind && strcmp(g->code, code) == 0)
            return g;
    }
    return NULL;
}

/* Subdivision (most specific first) > country > continent > nearest. */
static bool place_rec(const struct cm_conf *conf, const struct geo_rec *r, struct dns_geo_place *p)
{
    const struct cm_conf_geo_map *g = NULL;
    double dist;
    size_t region;

    memset(p, 0, sizeof(*p));
    for (unsigned i = r->subdiv_count; i-- > 0 && g == NULL && r->country[0] != '\0';) {
        char code[8];
        snprintf(code, sizeof(code), "%s-%s", r->country, r->subdiv[i]);
        g = geo_map_find(conf, CM_GEO_SUBDIVISION, code);
    }
    if (g == NULL && r->country[0] != '\0')
        g = geo_map_find(conf, CM_GEO_COUNTRY, r->country);
    if (g == NULL && r->continent[0] != '\0')
        g = geo_map_find(conf, CM_GEO_CONTINENT, r->continent);
    if (g != NULL) {
        p->source = DNS_PLACE_GEO_MAP;
        p->region = (uint32_t)g->region;
        memcpy(p->code, g->code, sizeof(p->code));
        return true;
    }
    if (r->has_loc && dns_geo_nearest(conf, r->lat, r->lon, &region, &dist)) {
        p->source = DNS_PLACE_NEAREST;
        p->region = (uint32_t)region;
        p->lat = r->lat;
        p->lon = r->lon;
        p->dist_km = (uint32_t)lround(dist);
        memcpy(p->code, r->country, sizeof(r->country));
        return true;
    }
    return false;
}

/* ---- the compiled table ------------------------------------------------------ */

static bool regions_equal(const struct cm_conf *a, const struct cm_conf *b)
{
    if (a->region_count != b->region_count || a->dnsd.region != b->dnsd.region)
        return false;
    for (size_t i = 0; i < a->region_count; i++) {
        const struct cm_conf_region *x = &a->regions[i], *y = &b->regions[i];
        if (strcmp(x->name, y->name) != 0 || x->has_location != y->has_location ||
            x->lat != y->lat || x->lon != y->lon || x->bias_km != y->bias_km)
            return false;
    }
    return true;
}

bool dns_geo_conf_equal(const struct cm_conf *a, const struct cm_conf *b)
{
    if (a == b)
        return true;
    if (!regions_equal(a, b) || a->client_network_count != b->client_network_count ||
        a->dnsd.geo_map_count != b->dnsd.geo_map_count)
        return false;
    for (size_t i = 0; i < a->client_network_count; i++) {
        const struct cm_conf_client_net *x = &a->client_networks[i], *y = &b->client_networks[i];
        if (x->family != y->family || x->prefix_len != y->prefix_len || x->region != y->region ||
            memcmp(x->addr, y->addr, sizeof(x->addr)) != 0)
            return false;
    }
    for (size_t i = 0; i < a->dnsd.geo_map_count; i++) {
        const struct cm_conf_geo_map *x = &a->dnsd.geo_map[i], *y = &b->dnsd.geo_map[i];
        if (x->kind != y->kind || x->region != y->region || strcmp(x->code, y->code) != 0)
            return false;
    }
    return true;
}

static int cn_insert(const struct cm_conf *conf, struct cm_lpm *lpm)
{
    int rc = CM_OK;

    for (size_t i = 0; i < conf->client_network_count && rc == CM_OK; i++) {
        const struct cm_conf_client_net *n = &conf->client_networks[i];
        rc = cm_lpm_insert(lpm, n->family, n->addr, n->prefix_len, (uint32_t)n->region);
    }
    return rc;
}

/* Database networks, minus those inside a client network (@cn). */
static int db_insert(struct dns_geo *geo, const struct dns_geodb *db, const uint32_t *rec_place,
                     const struct cm_lpm *cn)
{
    for (size_t i = 0; i < db->net_count; i++) {
        const struct geo_net *n = &db->nets[i];
        int fam = n->is_v6 ? AF_INET6 : AF_INET;
        struct cm_lpm_result r;
        int rc;

        if (rec_place[n->rec] == NO_PLACE) {
            geo->unplaced++;
            continue;
        }
        if (cm_lpm_lookup(cn, fam, n->addr, n->len, &r) && r.matched_len <= n->len) {
            geo->covered++; /* the operator's client network wins */
            continue;
        }
        rc = cm_lpm_insert(geo->lpm, fam, n->addr, n->len, DNS_GEO_PLACE_BIT | rec_place[n->rec]);
        if (rc != CM_OK)
            return rc;
        geo->inserted++;
    }
    return CM_OK;
}

/* cm_lpm_fold_fn: a place index -> its region and source (see dns_geo.h). */
static uint32_t place_fold(const void *ctx, uint32_t value)
{
    const struct dns_geo *geo = ctx;
    uint32_t i = value & ~DNS_GEO_PLACE_BIT;

    if ((value & DNS_GEO_PLACE_BIT) == 0 || i >= geo->place_count)
        return value;
    return DNS_GEO_PLACE_BIT | DNS_GEO_REGION_BIT | (uint32_t)geo->places[i].source << 16 |
           geo->places[i].region;
}

/* One place per database record (NO_PLACE: dnsd.region). */
static int places_build(struct dns_geo *geo, const struct dns_geodb *db, uint32_t **rec_place)
{
    uint32_t *rp = calloc(db->rec_count + 1, sizeof(*rp));

    geo->places = calloc(db->rec_count + 1, sizeof(*geo->places));
    if (rp == NULL || geo->places == NULL) {
        free(rp);
        return CM_ENOMEM;
    }
    for (size_t i = 0; i < db->rec_count; i++) {
        rp[i] = NO_PLACE;
        if (place_rec(geo->conf, &db->recs[i], &geo->places[geo->place_count]))
            rp[i] = (uint32_t)geo->place_count++;
    }
    *rec_place = rp;
    return CM_OK;
}

int dns_geo_build(struct cm_conf *conf, struct dns_geodb *db, struct dns_geo **out, char *err,
                  size_t errlen)
{
    struct dns_geo *geo = calloc(1, sizeof(*geo));
    struct cm_lpm *cn = NULL;
    uint32_t *rec_place = NULL;
    uint64_t t0 = now_us();
    int rc = CM_ENOMEM;

    if (geo == NULL)
        return CM_ENOMEM;
    atomic_init(&geo->refs, 1);
    geo->conf = cm_conf_ref(conf);
    geo->db = db != NULL ? dns_geodb_ref(db) : NULL;
    geo->lpm = cm_lpm_new();
    if (geo->lpm == NULL)
        goto out;
    rc = cn_insert(conf, geo->lpm);
    if (rc != CM_OK || db == NULL)
        goto out;
    cn = cm_lpm_new();
    rc = cn != NULL ? cn_insert(conf, cn) : CM_ENOMEM;
    if (rc == CM_OK)
        rc = places_build(geo, db, &rec_place);
    if (rc == CM_OK)
        rc = db_insert(geo, db, rec_place, cn);
out:
    free(rec_place);
    cm_lpm_free(cn);
    if (rc != CM_OK) {
        snprintf(err, errlen, "client lookup: %s", cm_strerror(rc));
        dns_geo_unref(geo);
        return rc;
    }
    /* place indexes must not reach the fold's bit, regions fit in 16 bits */
    if (db != NULL && geo->place_count < DNS_GEO_REGION_BIT &&
        conf->region_count <= DNS_GEO_REGION_MAX)
        cm_lpm_set_fold(geo->lpm, place_fold, geo);
    cm_lpm_compact(geo->lpm);
    geo->build_us = now_us() - t0;
    *out = geo;
    return CM_OK;
}

struct dns_geo *dns_geo_ref(struct dns_geo *geo)
{
    atomic_fetch_add_explicit(&geo->refs, 1, memory_order_relaxed);
    return geo;
}

void dns_geo_unref(struct dns_geo *geo)
{
    if (geo == NULL || atomic_fetch_sub_explicit(&geo->refs, 1, memory_order_acq_rel) != 1)
        return;
    cm_lpm_free(geo->lpm);
    free(geo->places);
    dns_geodb_unref(geo->db);
    cm_conf_unref(geo->conf);
    free(geo);
}

size_t dns_geo_memory(const struct dns_geo *geo)
{
    return cm_lpm_memory(geo->lpm) + geo->place_count * sizeof(geo->places[0]);
}

void dns_geo_describe(const struct dns_geo *geo, int family, const uint8_t *addr,
                      unsigned matched_len, uint32_t value, char *buf, size_t cap)
{
    uint8_t net[16] = {0};
    unsigned bytes = family == AF_INET ? 4 : 16;
    char ip[INET6_ADDRSTRLEN];
    const struct cm_conf *conf = geo->conf;

    memcpy(net, addr, bytes);
    for (unsigned i = matched_len; i < bytes * 8; i++)
        set_bit(net, i, 0);
    if (inet_ntop(family, net, ip, sizeof(ip)) == NULL)
        snprintf(ip, sizeof(ip), "?");
    if ((value & DNS_GEO_REGION_BIT) != 0) { /* folded: the matched prefix's own place */
        struct cm_lpm_result r;
        if (cm_lpm_lookup_trie(geo->lpm, family, addr, matched_len, &r))
            value = r.value;
    }
    if ((value & DNS_GEO_PLACE_BIT) == 0) {
        snprintf(buf, cap, "client_networks %s/%u", ip, matched_len);
        return;
    }
    value &= ~DNS_GEO_PLACE_BIT;
    if (value >= geo->place_count) {
        snprintf(buf, cap, "default region");
        return;
    }
    const struct dns_geo_place *p = &geo->places[value];
    const char *region = p->region < conf->region_count ? conf->regions[p->region].name : "?";
    if (p->source == DNS_PLACE_GEO_MAP)
        snprintf(buf, cap, "GeoIP %s %s/%u -> %s (geo_map)", p->code, ip, matched_len, region);
    else
        snprintf(buf, cap, "GeoIP %.1f,%.1f %s/%u -> %s (nearest, %u km)", p->lat, p->lon, ip,
                 matched_len, region, p->dist_km);
}
