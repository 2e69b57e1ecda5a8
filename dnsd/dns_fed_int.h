/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_fed_int.h -- private to dns_fed.c and dns_fed_blk.c: the layout of the
 * federated answer table.
 *
 *   dns_fed --> fed_names (shared)   the names, ENTs included, and for each
 *                                    federated name its service and slot
 *           --> fed_blk[service]     (shared) one service's answers: per slot
 *                                    (global, regional, zonal name) one answer
 *                                    or a per-region map, the answers, their
 *                                    variants, slot tables and RRsets
 *
 * Both are immutable once built and reference counted, so a table built
 * after a change shares the names (when the configuration and the list of
 * services stay) and the block of every service whose inputs stay with the
 * table before it (dns_fed_update). The query path reads them without locks:
 * the view that holds a table holds its parts.
 */
#ifndef DNSD_DNS_FED_INT_H
#define DNSD_DNS_FED_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnsd/dns_fed.h"
#include "dnsd/dns_rank.h"
#include "dnsd/dns_rrset.h"

struct cm_merged_service;
struct cm_conf_service;

#define FED_NONE UINT32_MAX

/* The hash, the key's place and length sit beside the index, so that a miss
 * touches one cache line and a hit two: the slot and the key's bytes. */
struct itab_slot {
    uint32_t hash;
    uint32_t idx; /* 0 = empty, else key index + 1 */
    uint32_t off; /* the key's offset in data */
    uint32_t len; /* and its length */
};

/* Interned byte strings: names (kept for lookups) and answer keys (build only).
 * Each key may carry val_size bytes of value right after it in data, so that
 * a lookup that compares the key reads its value from the same line. */
struct itab {
    /* what a lookup reads, first */
    struct itab_slot *slots; /* owned, mask + 1 entries */
    size_t mask;
    uint8_t *data;   /* owned: the keys (each followed by its value), back to back */
    size_t val_size; /* set before the first add; 0: no values */
    size_t data_len, data_cap;
    uint32_t *off; /* owned, per key */
    uint32_t *len;
    uint32_t *hash;
    size_t count, cap;
};

long fed_itab_find(const struct itab *t, const void *key, size_t len, uint32_t h);
/* The same, and *val: the key's value (val_size bytes, unaligned). */
long fed_itab_find_val(const struct itab *t, const void *key, size_t len, uint32_t h,
                       const uint8_t **val);
/* Key @k's value, val_size bytes (unaligned); valid until the next add. */
uint8_t *fed_itab_val(struct itab *t, uint32_t k);
/* Adds a key known to be absent; its index is t->count before the call. */
int fed_itab_add(struct itab *t, const void *key, size_t len, uint32_t h);
/* Preallocates for about @keys keys of @bytes bytes in all. */
int fed_itab_reserve(struct itab *t, size_t keys, size_t bytes);
/* Forgets every key, keeping the memory. */
void fed_itab_clear(struct itab *t);
void fed_itab_fini(struct itab *t);

struct fed_name {
    uint32_t slot;   /* NAME: where its answers sit in its service's block */
    int32_t service; /* -1 for empty non-terminals */
    uint32_t region; /* REGIONAL, ZONAL: conf region index */
    int32_t zone;    /* ZONAL: index in the region's zones, else -1 */
    uint8_t match;   /* enum dns_fed_match */
    uint8_t level;   /* enum dns_fed_level */
};

/* A name's value in the names table: what the query path needs of its
 * fed_name (an ENT has service -1), read beside the name's bytes. */
struct fed_name_val {
    int32_t service;
    uint32_t slot;
};

/* The names: made from the configuration and the list of services only. */
struct fed_names {
    _Atomic int refs;
    struct itab names;
    struct fed_name *info; /* owned, names.count entries */
    size_t info_cap;
    size_t fed_name_count; /* DNS_FED_NAME entries */
    char **service_keys;   /* owned, service_count */
    uint8_t *has_names;    /* owned, per service: 1 when its names are in the table */
    size_t service_count;
};

/* The answers of one name: for every client region the same, or a map. */
struct fed_lname {
    uint32_t answers; /* uniform: answer index; else offset in amap (region_count
                         entries); FED_NONE: no name uses the slot */
    bool uniform;
};

struct fed_answer {
    uint32_t variant; /* first variant */
    uint32_t slots;   /* offset in slots (64 bytes), FED_NONE with one variant */
    uint32_t ttl;     /* negative TTL for NODATA */
    uint8_t variant_count;
    bool fail_open;
    bool fail_closed;
};

struct fed_variant {
    uint32_t a, aaaa, cname; /* rrset indexes or FED_NONE */
    int32_t member;          /* conf member index answered, -1 for none or several */
};

/* One service's answers (what it was made from: the table's sdig, sidig, shas). */
struct fed_blk {
    _Atomic int refs;
    struct fed_lname *lname; /* owned, slot_count */
    uint32_t *amap;          /* owned */
    size_t amap_len, amap_cap;
    struct fed_answer *answers; /* owned */
    size_t answer_count, answer_cap;
    struct fed_variant *variants; /* owned */
    size_t variant_count, variant_cap;
    uint8_t *slots; /* owned */
    size_t slots_len, slots_cap;
    struct dns_rrset *rrsets; /* owned; rdata points into `rdata` */
    size_t rrset_count, rrset_cap;
    uint8_t *rdata; /* owned */
    size_t rdata_len, rdata_cap;
};

/* What a block is built from, beside the build's rank context. */
struct fed_svc_in {
    const char *key;
    const char *ns;
    const char *name;
    const struct cm_conf_service *cs; /* NULL for a discovered service */
    const struct cm_merged_service *msvc;
};

/* Scratch of the block builder, sized once per build. */
struct fed_blk_build {
    const struct cm_conf *conf;
    const struct dns_rank_ctx *rank;
    struct fed_blk *blk; /* the block being built */
    struct itab akeys;   /* answer keys of the block; key index == answer index */
    uint32_t *rr_off;    /* rdata offset of each rrset */
    size_t rr_off_cap;
    const uint8_t *zone_wire;
    size_t zone_len;
    const uint8_t (*region_label)[64]; /* per region: length byte + label */
    const uint8_t (*az_label)[64];     /* per (region, zone) at az_base[region] + zone */
    const size_t *az_base;
    size_t slot_count;
    struct dns_rank_member *members;
    struct dns_rank_entry *ranked; /* region_count x member_count */
    size_t *ranked_n;              /* per region, SIZE_MAX: not computed yet */
    uint32_t *member_variant;      /* per member, FED_NONE: not built yet */
    uint32_t *amap_tmp;            /* region_count */
    char *err;
    size_t errlen;
};

/* Slot of the regional name of region @r, and of zone @z of it. */
static inline size_t fed_slot_region(const size_t *az_base, size_t r)
{
    return 1 + r + az_base[r];
}

static inline size_t fed_slot_zone(const size_t *az_base, size_t r, size_t z)
{
    return 2 + r + az_base[r] + z;
}

int fed_blk_build_init(struct fed_blk_build *bb);
void fed_blk_build_fini(struct fed_blk_build *bb);
/* Builds the block of @in (its names' wire prefix @prefix, @pl bytes). */
int fed_blk_build(struct fed_blk_build *bb, const struct fed_svc_in *in, const uint8_t *prefix,
                  size_t pl, struct fed_blk **out);
struct fed_blk *fed_blk_ref(struct fed_blk *blk);
void fed_blk_unref(struct fed_blk *blk);

#endif /* DNSD_DNS_FED_INT_H */
