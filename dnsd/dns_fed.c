/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_fed.c -- the federated answer table (see dns_fed.h; the layout is in
 * dns_fed_int.h, a service's answers are built in dns_fed_blk.c).
 *
 * A table is the names (open-addressing hash of lowercased wire names ->
 * service, slot) and one block per service (slot -> answers). dns_fed_update
 * builds a table after a change from the one before it: the names are shared
 * when the configuration (the same object) and the list of services stay,
 * and a service's block is shared when its merged entry (its digest, see
 * cm_merged_service) and its weight and priority intents stay, and none of
 * its members changed its admin state or member-level RTTs. Only the other
 * blocks are built again, so a change costs what it changes.
 */
#include "dnsd/dns_fed.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_array.h"
#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_hash.h"
#include "common/cm_intent.h"
#include "common/cm_log.h"
#include "common/cm_state.h"
#include "dnsd/dns_chunks.h"
#include "dnsd/dns_fed_int.h"
#include "dnsd/dns_name.h"
#include "dnsd/dns_rank.h"

struct dns_fed {
    struct fed_names *nm; /* reference */
    struct fed_blk **blk; /* owned array, nm->service_count; NULL: no names. The blocks
                             are owned through `own` */
    struct dns_chunks own;
    int32_t *reused_from; /* owned, per service: the previous table's service whose block
                             this one shares, -1 */
    size_t region_count;
    size_t slot_count;
    unsigned default_region;
    uint32_t ent_ttl;
    /* What every block depends on beside its own service (dns_fed_update). */
    const struct cm_conf *conf; /* identity only; the view holds it */
    bool has_merged;
    double *rtt_ms; /* owned copy of the merge's member-level RTTs */
    size_t rtt_len;
    uint8_t *admin; /* owned: each member's admin state from the intents */
    /* Per service, what its block is made from (contiguous, so that a build
     * that changes little reads little): the merged entry's digest (0 with
     * none), whether there was one, the digest of its intents. */
    uint64_t *sdig;
    uint64_t *sidig;
    uint8_t *shas;
    struct dns_fed_stats stats;
};

/* ---- growable arrays and the intern table ---- */

static int grow(void *pp, size_t *cap, size_t need, size_t elsize)
{
    return cm_array_grow(pp, cap, need, elsize);
}

static uint32_t fed_hash(const uint8_t *p, size_t len)
{
    return dns_name_hash(p, len); /* one hash for the names here and the query's */
}

/* fed_itab_find_val(), inline in the query's lookup (dns_fed_find_hashed()). */
static inline long itab_find(const struct itab *t, const void *key, size_t len, uint32_t h,
                             const uint8_t **val)
{
    size_t i;

    if (t->slots == NULL)
        return -1;
    for (i = h & t->mask;; i = (i + 1) & t->mask) {
        const struct itab_slot *sl = &t->slots[i];
        if (sl->idx == 0)
            return -1;
        if (sl->hash == h && sl->len == len && memcmp(t->data + sl->off, key, len) == 0) {
            *val = t->data + sl->off + len;
            return (long)sl->idx - 1;
        }
    }
}

long fed_itab_find_val(const struct itab *t, const void *key, size_t len, uint32_t h,
                       const uint8_t **val)
{
    return itab_find(t, key, len, h, val);
}

long fed_itab_find(const struct itab *t, const void *key, size_t len, uint32_t h)
{
    const uint8_t *val;

    return fed_itab_find_val(t, key, len, h, &val);
}

uint8_t *fed_itab_val(struct itab *t, uint32_t k)
{
    return t->data + t->off[k] + t->len[k];
}

static void itab_place(struct itab *t, uint32_t k)
{
    size_t i;

    for (i = t->hash[k] & t->mask; t->slots[i].idx != 0; i = (i + 1) & t->mask)
        ;
    t->slots[i] = (struct itab_slot){t->hash[k], k + 1, t->off[k], t->len[k]};
}

/* Makes room for @keys keys in all without rehashing. */
static int itab_rehash(struct itab *t, size_t keys)
{
    size_t ncap = 64;
    struct itab_slot *ns;

    while (ncap < 2 * keys)
        ncap *= 2;
    if (t->slots != NULL && ncap <= t->mask + 1)
        return CM_OK;
    ns = calloc(ncap, sizeof(*ns));

    if (ns == NULL)
        return CM_ENOMEM;
    free(t->slots);
    t->slots = ns;
    t->mask = ncap - 1;
    for (size_t k = 0; k < t->count; k++)
        itab_place(t, (uint32_t)k);
    return CM_OK;
}

int fed_itab_add(struct itab *t, const void *key, size_t len, uint32_t h)
{
    int rc = CM_OK;

    if (t->data_len + len + t->val_size > UINT32_MAX || t->count >= UINT32_MAX - 1)
        return CM_ENOMEM;
    if (t->count + 1 > t->cap) {
        size_t c = t->cap;
        rc = grow(&t->off, &c, t->count + 1, sizeof(*t->off));
        if (rc == CM_OK) {
            c = t->cap;
            rc = grow(&t->len, &c, t->count + 1, sizeof(*t->len));
        }
        if (rc == CM_OK) {
            c = t->cap;
            rc = grow(&t->hash, &c, t->count + 1, sizeof(*t->hash));
        }
        if (rc != CM_OK)
            return rc;
        t->cap = c;
    }
    rc = grow(&t->data, &t->data_cap, t->data_len + len + t->val_size, 1);
    if (rc != CM_OK)
        return rc;
    if (t->slots == NULL || (t->count + 1) * 2 > t->mask + 1) {
        rc = itab_rehash(t, 2 * (t->count + 1));
        if (rc != CM_OK)
            return rc;
    }
    memcpy(t->data + t->data_len, key, len);
    t->off[t->count] = (uint32_t)t->data_len;
    t->len[t->count] = (uint32_t)len;
    t->hash[t->count] = h;
    memset(t->data + t->data_len + len, 0, t->val_size);
    t->data_len += len + t->val_size;
    itab_place(t, (uint32_t)t->count);
    t->count++;
    return CM_OK;
}

int fed_itab_reserve(struct itab *t, size_t keys, size_t bytes)
{
    int rc = grow(&t->data, &t->data_cap, bytes, 1);
    size_t c = t->cap;

    if (rc == CM_OK)
        rc = grow(&t->off, &c, keys, sizeof(*t->off));
    c = t->cap;
    if (rc == CM_OK)
        rc = grow(&t->len, &c, keys, sizeof(*t->len));
    c = t->cap;
    if (rc == CM_OK)
        rc = grow(&t->hash, &c, keys, sizeof(*t->hash));
    if (rc == CM_OK)
        t->cap = c;
    if (rc == CM_OK)
        rc = itab_rehash(t, keys);
    return rc;
}

void fed_itab_fini(struct itab *t)
{
    free(t->data);
    free(t->off);
    free(t->len);
    free(t->hash);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

void fed_itab_clear(struct itab *t)
{
    t->data_len = 0;
    t->count = 0;
    if (t->slots != NULL)
        memset(t->slots, 0, (t->mask + 1) * sizeof(*t->slots));
}

/* ---- the shape of the names: apex, region and zone labels ---- */

struct fed_shape {
    uint8_t zone_wire[DNS_NAME_MAX];
    size_t zone_len;
    uint8_t (*region_label)[64]; /* per region: length byte + label */
    uint8_t (*az_label)[64];     /* per (region, zone) at az_base[region] + zone */
    size_t *az_base;
    size_t slot_count; /* global, then per region: regional, zonal... */
};

static void shape_fini(struct fed_shape *sh)
{
    free(sh->region_label);
    free(sh->az_label);
    free(sh->az_base);
}

static int shape_init(struct fed_shape *sh, const struct cm_conf *conf, char *err, size_t errlen)
{
    size_t naz = 0;

    sh->zone_len = dns_name_from_text(conf->zone, true, sh->zone_wire);
    if (sh->zone_len == 0) {
        snprintf(err, errlen, "zone: \"%s\" is not a domain name", conf->zone);
        return CM_ECONFIG;
    }
    sh->az_base = calloc(conf->region_count, sizeof(*sh->az_base));
    if (sh->az_base == NULL)
        return CM_ENOMEM;
    for (size_t r = 0; r < conf->region_count; r++) {
        sh->az_base[r] = naz;
        naz += conf->regions[r].zone_count;
    }
    sh->slot_count = 1 + conf->region_count + naz;
    sh->region_label = calloc(conf->region_count, sizeof(*sh->region_label));
    sh->az_label = calloc(naz > 0 ? naz : 1, sizeof(*sh->az_label));
    if (sh->region_label == NULL || sh->az_label == NULL)
        return CM_ENOMEM;
    for (size_t r = 0; r < conf->region_count; r++) {
        const struct cm_conf_region *reg = &conf->regions[r];
        if (!dns_name_label_ok(reg->name, strlen(reg->name))) {
            snprintf(err, errlen, "regions.%s: not a DNS label", reg->name);
            return CM_ECONFIG;
        }
        dns_name_put_label(sh->region_label[r], 0, reg->name, strlen(reg->name));
        for (size_t z = 0; z < reg->zone_count; z++) {
            if (!dns_name_label_ok(reg->zones[z], strlen(reg->zones[z]))) {
                snprintf(err, errlen, "regions.%s.zones: \"%s\" is not a DNS label", reg->name,
                         reg->zones[z]);
                return CM_ECONFIG;
            }
            dns_name_put_label(sh->az_label[sh->az_base[r] + z], 0, reg->zones[z],
                               strlen(reg->zones[z]));
        }
    }
    return CM_OK;
}

/* Longest label sequence a region/zone adds under the service prefix. */
static size_t longest_level(const struct fed_shape *sh, const struct cm_conf *conf)
{
    size_t best = 0;

    for (size_t r = 0; r < conf->region_count; r++) {
        for (size_t z = 0; z < conf->regions[r].zone_count; z++) {
            size_t l = 2u + sh->region_label[r][0] + sh->az_label[sh->az_base[r] + z][0];
            best = l > best ? l : best;
        }
        best = 1u + sh->region_label[r][0] > best ? 1u + sh->region_label[r][0] : best;
    }
    return best;
}

/*
 * The wire prefix name.ns.F.svc of a service's names into @prefix (*pl
 * bytes; 0: a discovered service whose names would not be valid, skipped).
 */
static int svc_prefix(const struct fed_shape *sh, const struct cm_conf *conf,
                      const struct fed_svc_in *in, uint8_t prefix[2 * DNS_NAME_MAX], size_t *pl,
                      char *err, size_t errlen)
{
    size_t nl = strlen(in->name), sl = strlen(in->ns), fl = strlen(conf->federation), p = 0;

    *pl = 0;
    if (!dns_name_label_ok(in->name, nl) || !dns_name_label_ok(in->ns, sl) ||
        2 + nl + sl + fl + 4 + 4 + longest_level(sh, conf) + sh->zone_len > DNS_NAME_MAX) {
        if (in->cs == NULL)
            return CM_OK;
        snprintf(err, errlen, "services.%s: federated names would exceed 255 bytes", in->key);
        return CM_ECONFIG;
    }
    p = dns_name_put_label(prefix, p, in->name, nl);
    p = dns_name_put_label(prefix, p, in->ns, sl);
    p = dns_name_put_label(prefix, p, conf->federation, fl);
    *pl = dns_name_put_label(prefix, p, "svc", 3);
    return CM_OK;
}

/* ---- the list of services ---- */

/* Configured services in configuration order, then discovered ones in the merge's. */
struct fed_list {
    const char **keys;                     /* borrowed */
    const struct cm_merged_service **msvc; /* NULL: not in the merge */
    size_t count;
};

static int list_build(const struct cm_conf *conf, const struct cm_merged *merged,
                      struct fed_list *l)
{
    size_t total = conf->service_count;

    for (size_t i = 0; merged != NULL && i < merged->service_count; i++)
        total += merged->services[i].conf_index < 0;
    l->keys = calloc(total > 0 ? total : 1, sizeof(*l->keys));
    l->msvc = calloc(total > 0 ? total : 1, sizeof(*l->msvc));
    if (l->keys == NULL || l->msvc == NULL)
        return CM_ENOMEM;
    for (size_t i = 0; i < conf->service_count; i++)
        l->keys[i] = conf->services[i].key;
    l->count = conf->service_count;
    for (size_t i = 0; merged != NULL && i < merged->service_count; i++) {
        const struct cm_merged_service *ms = &merged->services[i];
        if (ms->conf_index >= 0 && (size_t)ms->conf_index < conf->service_count) {
            l->msvc[ms->conf_index] = ms;
        } else if (ms->conf_index < 0) {
            l->keys[l->count] = ms->key;
            l->msvc[l->count++] = ms;
        }
    }
    return CM_OK;
}

static void list_fini(struct fed_list *l)
{
    free(l->keys);
    free(l->msvc);
}

/* Service @s of the list as a block's input; ns and name split into @buf. */
static void svc_in(const struct cm_conf *conf, const struct fed_list *l, size_t s, char *buf,
                   size_t cap, struct fed_svc_in *in)
{
    const char *slash;

    in->key = l->keys[s];
    in->msvc = l->msvc[s];
    if (s < conf->service_count) {
        in->cs = &conf->services[s];
        in->ns = in->cs->ns;
        in->name = in->cs->name;
        return;
    }
    in->cs = NULL;
    in->ns = "";
    in->name = "";
    slash = strchr(in->key, '/');
    if (slash == NULL || strlen(in->key) >= cap)
        return; /* not "ns/name": no names */
    memcpy(buf, in->key, strlen(in->key) + 1);
    buf[slash - in->key] = '\0';
    in->ns = buf;
    in->name = buf + (slash - in->key) + 1;
}

/* ---- names ---- */

struct names_build {
    struct fed_names *nm;
    const struct fed_shape *sh;
    char *err;
    size_t errlen;
};

static struct fed_names *names_ref(struct fed_names *nm)
{
    atomic_fetch_add_explicit(&nm->refs, 1, memory_order_relaxed);
    return nm;
}

static void names_unref(struct fed_names *nm)
{
    if (nm == NULL || atomic_fetch_sub_explicit(&nm->refs, 1, memory_order_acq_rel) != 1)
        return;
    fed_itab_fini(&nm->names);
    free(nm->info);
    for (size_t i = 0; i < nm->service_count; i++)
        free(nm->service_keys[i]);
    free(nm->service_keys);
    free(nm->has_names);
    free(nm);
}

/*
 * Adds a name. CM_EEXIST when it exists as a name already; an empty
 * non-terminal of the same name is turned into the name.
 */
static int name_add(struct fed_names *nm, const uint8_t *wire, size_t len,
                    const struct fed_name *what, uint32_t *out)
{
    uint32_t h = fed_hash(wire, len);
    long found = fed_itab_find(&nm->names, wire, len, h);
    int rc;

    if (found >= 0) {
        *out = (uint32_t)found;
        if (nm->info[found].match == DNS_FED_NAME || what->match == DNS_FED_ENT)
            return CM_EEXIST;
    } else {
        rc = grow(&nm->info, &nm->info_cap, nm->names.count + 1, sizeof(*nm->info));
        if (rc == CM_OK)
            rc = fed_itab_add(&nm->names, wire, len, h);
        if (rc != CM_OK)
            return rc;
        *out = (uint32_t)nm->names.count - 1;
    }
    nm->info[*out] = *what;
    struct fed_name_val v = {.service = what->match == DNS_FED_NAME ? what->service : -1,
                             .slot = what->slot};
    memcpy(fed_itab_val(&nm->names, *out), &v, sizeof(v));
    if (what->match == DNS_FED_NAME)
        nm->fed_name_count++;
    return CM_OK;
}

static int add_service_name(struct names_build *b, size_t s, const struct fed_svc_in *in,
                            const uint8_t *wire, size_t len, enum dns_fed_level level,
                            size_t region, int zone, size_t slot)
{
    struct fed_name what = {.slot = (uint32_t)slot,
                            .service = (int32_t)s,
                            .region = (uint32_t)region,
                            .zone = zone,
                            .match = DNS_FED_NAME,
                            .level = (uint8_t)level};
    uint32_t idx;
    int rc = name_add(b->nm, wire, len, &what, &idx);

    if (rc != CM_EEXIST)
        return rc;
    if (in->cs == NULL) {
        cm_log_warn("federated name of discovered service %s already defined: skipped", in->key);
        return rc;
    }
    snprintf(b->err, b->errlen, "services.%s: a federated name or alias is defined twice", in->key);
    return CM_ECONFIG;
}

static int service_aliases(struct names_build *b, size_t s, const struct fed_svc_in *in)
{
    uint8_t wire[DNS_NAME_MAX];

    for (size_t i = 0; in->cs != NULL && i < in->cs->alias_count; i++) {
        size_t len = dns_name_from_text(in->cs->aliases[i], true, wire);
        int rc;
        if (len == 0) {
            snprintf(b->err, b->errlen, "services.%s.aliases[%zu]: not a domain name", in->key, i);
            return CM_ECONFIG;
        }
        rc = add_service_name(b, s, in, wire, len, DNS_FED_ALIAS, 0, -1, 0);
        if (rc != CM_OK)
            return rc;
    }
    return CM_OK;
}

static int service_levels(struct names_build *b, const struct cm_conf *conf, size_t s,
                          const struct fed_svc_in *in, const uint8_t *prefix, size_t pl)
{
    const struct fed_shape *sh = b->sh;
    uint8_t wire[3 * DNS_NAME_MAX];
    int rc;

    memcpy(wire, prefix, pl);
    for (size_t r = 0; r < conf->region_count; r++) {
        const uint8_t *rl = sh->region_label[r];
        size_t len = pl;
        memcpy(wire + len, rl, 1u + rl[0]);
        len += 1u + rl[0];
        memcpy(wire + len, sh->zone_wire, sh->zone_len);
        if (len + sh->zone_len > DNS_NAME_MAX)
            continue; /* checked in svc_prefix() */
        rc = add_service_name(b, s, in, wire, len + sh->zone_len, DNS_FED_REGIONAL, r, -1,
                              fed_slot_region(sh->az_base, r));
        if (rc != CM_OK)
            return rc;
        for (size_t z = 0; z < conf->regions[r].zone_count; z++) {
            const uint8_t *zl = sh->az_label[sh->az_base[r] + z];
            uint8_t zw[3 * DNS_NAME_MAX];
            size_t zlen = pl;
            memcpy(zw, prefix, pl);
            memcpy(zw + zlen, zl, 1u + zl[0]);
            zlen += 1u + zl[0];
            memcpy(zw + zlen, rl, 1u + rl[0]);
            zlen += 1u + rl[0];
            memcpy(zw + zlen, sh->zone_wire, sh->zone_len);
            if (zlen + sh->zone_len > DNS_NAME_MAX)
                continue;
            rc = add_service_name(b, s, in, zw, zlen + sh->zone_len, DNS_FED_ZONAL, r, (int)z,
                                  fed_slot_zone(sh->az_base, r, z));
            if (rc != CM_OK)
                return rc;
        }
    }
    return CM_OK;
}

/* The names of service @s: global, aliases, regional and zonal. */
static int service_names(struct names_build *b, const struct cm_conf *conf, size_t s,
                         const struct fed_svc_in *in)
{
    const struct fed_shape *sh = b->sh;
    uint8_t prefix[2 * DNS_NAME_MAX];
    uint8_t wire[2 * DNS_NAME_MAX];
    size_t pl;
    int rc = svc_prefix(sh, conf, in, prefix, &pl, b->err, b->errlen);

    if (rc != CM_OK)
        return rc;
    if (pl == 0) {
        cm_log_warn("discovered service %s: names would not be valid DNS names: skipped", in->key);
        return CM_OK;
    }
    memcpy(wire, prefix, pl);
    memcpy(wire + pl, sh->zone_wire, sh->zone_len);
    rc = add_service_name(b, s, in, wire, pl + sh->zone_len, DNS_FED_GLOBAL, 0, -1, 0);
    if (rc == CM_EEXIST && in->cs == NULL)
        return CM_OK;
    if (rc != CM_OK)
        return rc;
    b->nm->has_names[s] = 1;
    rc = service_aliases(b, s, in);
    if (rc == CM_OK)
        rc = service_levels(b, conf, s, in, prefix, pl);
    if (rc == CM_EEXIST && in->cs == NULL)
        rc = CM_OK;
    return rc;
}

/* Number of bytes of @wire before the zone apex, or -1 when not strictly below it. */
static long below_apex(const struct fed_shape *sh, const uint8_t *wire, size_t len)
{
    size_t pos = dns_name_under_offset(wire, len, sh->zone_wire, sh->zone_len);

    if (pos == 0 || pos == SIZE_MAX)
        return -1;
    return (long)pos;
}

static int add_ents(struct names_build *b)
{
    struct fed_names *nm = b->nm;
    size_t count = nm->names.count;
    uint8_t wire[DNS_NAME_MAX];
    const struct fed_name ent = {.slot = FED_NONE, .service = -1, .zone = -1, .match = DNS_FED_ENT};

    for (size_t i = 0; i < count; i++) {
        size_t len = nm->names.len[i];
        long head;
        size_t pos;
        memcpy(wire, nm->names.data + nm->names.off[i], len);
        head = below_apex(b->sh, wire, len);
        if (head < 0 || nm->info[i].match != DNS_FED_NAME)
            continue;
        /* Ancestors strictly below the apex, bottom up; stop at a known ENT. */
        for (pos = 1u + wire[0]; pos < (size_t)head; pos += 1u + wire[pos]) {
            uint32_t idx = 0;
            int rc = name_add(nm, wire + pos, len - pos, &ent, &idx);
            if (rc == CM_EEXIST && nm->info[idx].match == DNS_FED_ENT)
                break;
            if (rc != CM_OK && rc != CM_EEXIST)
                return rc;
        }
    }
    return CM_OK;
}

/* Sizes the tables for @services services up front, to avoid rehashing. */
static int names_reserve(struct fed_names *nm, const struct cm_conf *conf,
                         const struct fed_shape *sh, size_t services)
{
    size_t aliases = 0, names;
    int rc;

    for (size_t i = 0; i < conf->service_count; i++)
        aliases += conf->services[i].alias_count;
    if (services > SIZE_MAX / 64 / sh->slot_count)
        return CM_ENOMEM;
    names = services * sh->slot_count + aliases;
    /* Empty non-terminals: a few per namespace and level; 1/8 more is plenty. */
    nm->names.val_size = sizeof(struct fed_name_val);
    rc = fed_itab_reserve(&nm->names, names + names / 8 + 64,
                          (names + names / 8) * (48 + sizeof(struct fed_name_val)));
    if (rc == CM_OK)
        rc = grow(&nm->info, &nm->info_cap, names + names / 8 + 64, sizeof(*nm->info));
    return rc;
}

static int names_build(const struct cm_conf *conf, const struct fed_shape *sh,
                       const struct fed_list *l, struct fed_names **out, char *err, size_t errlen)
{
    struct names_build b = {.sh = sh, .err = err, .errlen = errlen};
    char buf[2 * DNS_NAME_MAX];
    int rc;

    b.nm = calloc(1, sizeof(*b.nm));
    if (b.nm == NULL)
        return CM_ENOMEM;
    atomic_init(&b.nm->refs, 1);
    b.nm->service_keys = calloc(l->count > 0 ? l->count : 1, sizeof(*b.nm->service_keys));
    b.nm->has_names = calloc(l->count > 0 ? l->count : 1, 1);
    rc = b.nm->service_keys != NULL && b.nm->has_names != NULL ? CM_OK : CM_ENOMEM;
    if (rc == CM_OK)
        rc = names_reserve(b.nm, conf, sh, l->count);
    for (size_t s = 0; s < l->count && rc == CM_OK; s++) {
        struct fed_svc_in in;
        b.nm->service_keys[s] = strdup(l->keys[s]);
        if (b.nm->service_keys[b.nm->service_count++] == NULL) {
            rc = CM_ENOMEM;
            break;
        }
        svc_in(conf, l, s, buf, sizeof(buf), &in);
        if (in.name[0] != '\0')
            rc = service_names(&b, conf, s, &in);
    }
    if (rc == CM_OK)
        rc = add_ents(&b);
    if (rc != CM_OK) {
        names_unref(b.nm);
        return rc;
    }
    *out = b.nm;
    return CM_OK;
}

/*
 * Whether the table @prev (of the same configuration) has the services of
 * @l, in the same order. The configured ones are the configuration's; a
 * discovered one whose merged entry has the same digest has the same key
 * (the digest covers it), the others are compared.
 */
static bool names_fit(const struct dns_fed *prev, const struct cm_conf *conf,
                      const struct fed_list *l)
{
    const struct fed_names *nm = prev->nm;

    if (nm->service_count != l->count)
        return false;
    for (size_t s = conf->service_count; s < l->count; s++) {
        if (prev->shas[s] && prev->sdig[s] == l->msvc[s]->digest)
            continue;
        if (strcmp(nm->service_keys[s], l->keys[s]) != 0)
            return false;
    }
    return true;
}

/* ---- what every block depends on ---- */

/* The member-level RTTs of the merge and the members' admin states. */
static int globals_take(struct dns_fed *fed, const struct dns_rank_ctx *rank,
                        const struct cm_merged *merged)
{
    const struct cm_conf *conf = fed->conf;

    fed->has_merged = merged != NULL;
    fed->rtt_len = merged != NULL ? merged->region_count * merged->member_count : 0;
    fed->rtt_ms = malloc((fed->rtt_len > 0 ? fed->rtt_len : 1) * sizeof(*fed->rtt_ms));
    fed->admin = calloc(conf->member_count > 0 ? conf->member_count : 1, 1);
    if (fed->rtt_ms == NULL || fed->admin == NULL)
        return CM_ENOMEM;
    if (fed->rtt_len > 0)
        memcpy(fed->rtt_ms, merged->rtt_ms, fed->rtt_len * sizeof(*fed->rtt_ms));
    for (size_t m = 0; m < conf->member_count; m++)
        fed->admin[m] = (uint8_t)cm_intent_view_admin(rank->intents, m, NULL);
    return CM_OK;
}

/*
 * Whether the blocks of @prev may serve @fed at all: the same configuration
 * and the same shape of member-level RTTs. Then *mchg (member_count) marks
 * the members whose admin state or member-level RTTs changed, and *any
 * whether some did: a block is kept only if none of them is in its service.
 */
static bool globals_compare(const struct dns_fed *prev, const struct dns_fed *fed, uint8_t *mchg,
                            bool *any)
{
    size_t nm = fed->conf->member_count, nr = fed->conf->region_count;

    *any = false;
    if (prev->conf != fed->conf || prev->has_merged != fed->has_merged ||
        prev->rtt_len != fed->rtt_len || (fed->rtt_len > 0 && fed->rtt_len != nr * nm))
        return false;
    for (size_t m = 0; m < nm; m++) {
        mchg[m] = prev->admin[m] != fed->admin[m];
        /* Bitwise: a NAN stays a NAN, and a false "changed" only costs a build. */
        for (size_t r = 0; fed->rtt_len > 0 && r < nr && !mchg[m]; r++)
            mchg[m] =
                memcmp(&prev->rtt_ms[r * nm + m], &fed->rtt_ms[r * nm + m], sizeof(double)) != 0;
        *any = *any || mchg[m];
    }
    return true;
}

/* Whether a member marked in @mchg is in @msvc (reported and placed): only
 * those can be answered, so only their changes change the service's answers. */
static bool touches(const struct cm_merged_service *msvc, const uint8_t *mchg, size_t nm)
{
    for (size_t m = 0; msvc != NULL && m < nm; m++) {
        if (mchg[m] && msvc->members[m].present && !msvc->members[m].unplaced)
            return true;
    }
    return false;
}

/*
 * Per service, a digest of the active weight and priority intents naming it
 * (0 for none): keys in @t, digests in @dig.
 */
static int intent_digests(const struct cm_intent_view *v, struct itab *t, uint64_t **dig)
{
    size_t cap = 0;

    for (size_t i = 0; v != NULL && i < v->active_count; i++) {
        const struct cm_intent *in = v->active[i];
        long k;
        uint32_t h;
        int rc;
        if ((in->kind != CM_INTENT_WEIGHT && in->kind != CM_INTENT_PRIORITY) || in->service == NULL)
            continue;
        h = fed_hash((const uint8_t *)in->service, strlen(in->service));
        k = fed_itab_find(t, in->service, strlen(in->service), h);
        if (k < 0) {
            rc = grow(dig, &cap, t->count + 1, sizeof(**dig));
            if (rc == CM_OK)
                rc = fed_itab_add(t, in->service, strlen(in->service), h);
            if (rc != CM_OK)
                return rc;
            k = (long)t->count - 1;
            (*dig)[k] = CM_FNV1A64_INIT;
        }
        (*dig)[k] = cm_fnv1a64_str(cm_fnv1a64_byte((*dig)[k], 0xff),
                                   in->canon != NULL ? in->canon : in->id);
    }
    return CM_OK;
}

static uint64_t intent_digest(const struct itab *t, const uint64_t *dig, const char *key)
{
    long k;

    if (t->count == 0)
        return 0;
    k = fed_itab_find(t, key, strlen(key), fed_hash((const uint8_t *)key, strlen(key)));
    return k >= 0 ? dig[k] : 0;
}

/* ---- build ---- */

static void blk_ref_part(void *p)
{
    fed_blk_ref(p);
}

static void blk_unref_part(void *p)
{
    fed_blk_unref(p);
}

static const struct dns_chunk_ops blk_ops = {blk_ref_part, blk_unref_part};

struct fed_update {
    struct dns_fed *fed;
    const struct dns_fed *prev_names; /* NULL or another configuration */
    const struct dns_fed *prev;       /* NULL or its blocks are not reusable */
    const struct cm_conf *conf;
    struct dns_rank_ctx rank;
    struct fed_shape sh;
    struct fed_list list;
    struct itab old_keys; /* prev's service keys, when the names differ */
    struct itab ikeys;    /* services with weight or priority intents */
    uint64_t *idig;
    uint8_t *src;  /* per service: enum dns_chunk_src of its block */
    uint8_t *mchg; /* per member: its admin state or member-level RTTs changed */
    bool any_mchg;
    struct fed_blk_build bb;
    char *err;
    size_t errlen;
};

/* The service of @prev whose block service @s may share, -1 when none. */
static long old_index(const struct fed_update *u, size_t s)
{
    const char *key = u->list.keys[s];

    if (u->prev == NULL)
        return -1;
    if (u->prev->nm == u->fed->nm)
        return (long)s;
    return fed_itab_find(&u->old_keys, key, strlen(key),
                         fed_hash((const uint8_t *)key, strlen(key)));
}

static int service_block(struct fed_update *u, size_t s)
{
    struct dns_fed *fed = u->fed;
    const struct dns_fed *prev = u->prev;
    const struct cm_merged_service *msvc = u->list.msvc[s];
    struct fed_svc_in in;
    char buf[2 * DNS_NAME_MAX];
    uint8_t prefix[2 * DNS_NAME_MAX];
    size_t pl;
    long o;
    int rc;

    fed->reused_from[s] = -1;
    fed->shas[s] = msvc != NULL;
    fed->sdig[s] = msvc != NULL ? msvc->digest : 0;
    fed->sidig[s] = intent_digest(&u->ikeys, u->idig, u->list.keys[s]);
    if (!fed->nm->has_names[s])
        return CM_OK;
    o = old_index(u, s);
    if (o >= 0 && prev->blk[o] != NULL && prev->shas[o] == fed->shas[s] &&
        prev->sdig[o] == fed->sdig[s] && prev->sidig[o] == fed->sidig[s] &&
        (!u->any_mchg || !touches(msvc, u->mchg, u->conf->member_count))) {
        fed->blk[s] = prev->blk[o];
        u->src[s] = DNS_CHUNK_LENT;
        fed->reused_from[s] = (int32_t)o;
        fed->stats.services_shared++;
        return CM_OK;
    }
    svc_in(u->conf, &u->list, s, buf, sizeof(buf), &in);
    rc = svc_prefix(&u->sh, u->conf, &in, prefix, &pl, u->err, u->errlen);
    if (rc == CM_OK && pl > 0)
        rc = fed_blk_build(&u->bb, &in, prefix, pl, &fed->blk[s]);
    if (rc == CM_OK && fed->blk[s] != NULL) {
        u->src[s] = DNS_CHUNK_NEW;
        fed->stats.services_built++;
    }
    return rc;
}

static int update_names(struct fed_update *u)
{
    struct dns_fed *fed = u->fed;
    const struct dns_fed *prev = u->prev_names;
    int rc;

    if (prev != NULL && names_fit(prev, u->conf, &u->list)) {
        fed->nm = names_ref(prev->nm);
        fed->stats.names_shared = true;
        return CM_OK;
    }
    rc = names_build(u->conf, &u->sh, &u->list, &fed->nm, u->err, u->errlen);
    for (size_t i = 0; rc == CM_OK && prev != NULL && i < prev->nm->service_count; i++) {
        const char *k = prev->nm->service_keys[i];
        rc = fed_itab_add(&u->old_keys, k, strlen(k), fed_hash((const uint8_t *)k, strlen(k)));
    }
    return rc;
}

static int update_run(struct fed_update *u, const struct cm_merged *merged,
                      const struct cm_intent_view *intents)
{
    const struct cm_conf *conf = u->conf;
    struct dns_fed *fed = u->fed;
    size_t n;
    int rc;

    rc = dns_rank_ctx_init(&u->rank, conf, merged, intents);
    if (rc == CM_OK)
        rc = shape_init(&u->sh, conf, u->err, u->errlen);
    if (rc == CM_OK)
        rc = globals_take(fed, &u->rank, merged);
    if (rc != CM_OK)
        return rc;
    fed->slot_count = u->sh.slot_count;
    u->mchg = calloc(conf->member_count > 0 ? conf->member_count : 1, 1);
    if (u->mchg == NULL)
        return CM_ENOMEM;
    if (u->prev != NULL && !globals_compare(u->prev, fed, u->mchg, &u->any_mchg))
        u->prev = NULL; /* every block depends on what changed */
    rc = intent_digests(u->rank.intents, &u->ikeys, &u->idig);
    if (rc == CM_OK)
        rc = list_build(conf, merged, &u->list);
    if (rc == CM_OK)
        rc = update_names(u);
    if (rc != CM_OK)
        return rc;
    n = u->list.count > 0 ? u->list.count : 1;
    fed->blk = calloc(n, sizeof(*fed->blk));
    fed->reused_from = malloc(n * sizeof(*fed->reused_from));
    fed->sdig = malloc(n * sizeof(*fed->sdig));
    fed->sidig = malloc(n * sizeof(*fed->sidig));
    fed->shas = malloc(n);
    u->src = calloc(n, 1);
    if (fed->blk == NULL || fed->reused_from == NULL || fed->sdig == NULL || fed->sidig == NULL ||
        fed->shas == NULL || u->src == NULL)
        return CM_ENOMEM;
    u->bb = (struct fed_blk_build){.conf = conf,
                                   .rank = &u->rank,
                                   .zone_wire = u->sh.zone_wire,
                                   .zone_len = u->sh.zone_len,
                                   .region_label = (const uint8_t(*)[64])u->sh.region_label,
                                   .az_label = (const uint8_t(*)[64])u->sh.az_label,
                                   .az_base = u->sh.az_base,
                                   .slot_count = u->sh.slot_count,
                                   .err = u->err,
                                   .errlen = u->errlen};
    rc = fed_blk_build_init(&u->bb);
    for (size_t s = 0; s < u->list.count && rc == CM_OK; s++)
        rc = service_block(u, s);
    if (rc == CM_OK)
        rc = dns_chunks_assemble(&fed->own, u->prev != NULL ? &u->prev->own : NULL, &blk_ops,
                                 (void *const *)fed->blk, u->src, u->list.count);
    if (rc != CM_OK)
        dns_chunks_drop_new(&fed->own, &blk_ops, (void *const *)fed->blk, u->src, u->list.count);
    return rc;
}

int dns_fed_update(const struct dns_fed *prev, const struct cm_conf *conf,
                   const struct cm_merged *merged, const struct cm_intent_view *intents,
                   struct dns_fed **out, char *err, size_t errlen)
{
    struct fed_update u = {.prev = prev, .conf = conf, .err = err, .errlen = errlen};
    int rc;

    if (errlen > 0)
        err[0] = '\0';
    if (conf->region_count == 0) {
        snprintf(err, errlen, "regions: at least one region is required");
        return CM_ECONFIG;
    }
    if (prev != NULL && prev->conf != conf)
        u.prev = NULL; /* another configuration: nothing is kept */
    u.prev_names = u.prev;
    u.fed = calloc(1, sizeof(*u.fed));
    if (u.fed == NULL)
        return CM_ENOMEM;
    u.fed->conf = conf;
    u.fed->region_count = conf->region_count;
    u.fed->default_region =
        conf->dnsd.region < conf->region_count ? (unsigned)conf->dnsd.region : 0;
    u.fed->ent_ttl = conf->dnsd.ttl_s;
    rc = update_run(&u, merged, intents);
    if (rc == CM_OK) {
        *out = u.fed;
        u.fed = NULL;
    }
    if (rc == CM_ENOMEM && errlen > 0 && err[0] == '\0')
        snprintf(err, errlen, "federated answer table: out of memory");
    fed_blk_build_fini(&u.bb);
    fed_itab_fini(&u.old_keys);
    fed_itab_fini(&u.ikeys);
    free(u.idig);
    free(u.src);
    free(u.mchg);
    list_fini(&u.list);
    shape_fini(&u.sh);
    dns_rank_ctx_fini(&u.rank);
    dns_fed_free(u.fed);
    return rc;
}

int dns_fed_build(const struct cm_conf *conf, const struct cm_merged *merged,
                  const struct cm_intent_view *intents, struct dns_fed **out, char *err,
                  size_t errlen)
{
    return dns_fed_update(NULL, conf, merged, intents, out, err, errlen);
}

void dns_fed_free(struct dns_fed *fed)
{
    if (fed == NULL)
        return;
    dns_chunks_fini(&fed->own);
    free(fed->blk);
    names_unref(fed->nm);
    free(fed->reused_from);
    free(fed->sdig);
    free(fed->sidig);
    free(fed->shas);
    free(fed->rtt_ms);
    free(fed->admin);
    free(fed);
}

void dns_fed_stats(const struct dns_fed *fed, struct dns_fed_stats *out)
{
    *out = fed->stats;
}

long dns_fed_reused_from(const struct dns_fed *fed, size_t service)
{
    return service < fed->nm->service_count ? fed->reused_from[service] : -1;
}

bool dns_fed_same_names(const struct dns_fed *a, const struct dns_fed *b)
{
    return a != NULL && b != NULL && a->nm == b->nm;
}

/* ---- query path ---- */

enum dns_fed_match dns_fed_lookup(const struct dns_fed *fed, const uint8_t *qname, size_t qname_len,
                                  uint16_t qtype, unsigned region, uint32_t client_hash,
                                  struct dns_fed_answer *out)
{
    uint32_t h = qname_len <= DNS_NAME_MAX ? fed_hash(qname, qname_len) : 0;

    return dns_fed_lookup_hashed(fed, qname, qname_len, h, qtype, region, client_hash, out);
}

static void answer_init(struct dns_fed_answer *out)
{
    memset(out, 0, sizeof(*out));
    out->service = -1;
    out->member = -1;
    out->name_id = DNS_FED_NO_ID;
    out->answer_id = DNS_FED_NO_ID;
    out->variant_id = DNS_FED_NO_ID;
}

/* The answer of slot @ln of service @service (block @blk) for @qtype, a
 * client in @region (< region_count) with @client_hash. */
static void slot_answer(const struct fed_blk *blk, int service, const struct fed_lname *ln,
                        unsigned region, uint16_t qtype, uint32_t client_hash,
                        struct dns_fed_answer *out)
{
    const struct fed_answer *ans;
    const struct fed_variant *v;
    uint32_t vi;

    out->answer_id = ln->uniform ? ln->answers : blk->amap[ln->answers + region];
    ans = &blk->answers[out->answer_id];
    out->service = service;
    out->negative_ttl = ans->ttl;
    out->fail_open = ans->fail_open;
    out->fail_closed = ans->fail_closed;
    out->region_dependent = !ln->uniform;
    out->subnet_dependent = ans->slots != FED_NONE;
    out->client_dependent = out->region_dependent || out->subnet_dependent;
    if (ans->variant_count == 0)
        return;
    vi = ans->variant;
    if (ans->slots != FED_NONE)
        vi += blk->slots[ans->slots + client_hash % DNS_FED_SLOTS];
    v = &blk->variants[vi];
    out->variant_id = vi;
    out->member = v->member;
    if (v->cname != FED_NONE)
        out->cname = &blk->rrsets[v->cname];
    else if (qtype == DNS_TYPE_A && v->a != FED_NONE)
        out->rrset = &blk->rrsets[v->a];
    else if (qtype == DNS_TYPE_AAAA && v->aaaa != FED_NONE)
        out->rrset = &blk->rrsets[v->aaaa];
}

enum dns_fed_match dns_fed_find_hashed(const struct dns_fed *fed, const uint8_t *qname,
                                       size_t qname_len, uint32_t qname_hash,
                                       struct dns_fed_place *out)
{
    struct fed_name_val v;
    const uint8_t *val;
    long idx;

    if (fed == NULL || qname_len == 0 || qname_len > DNS_NAME_MAX)
        return DNS_FED_NONE;
    idx = itab_find(&fed->nm->names, qname, qname_len, qname_hash, &val);
    if (idx < 0)
        return DNS_FED_NONE;
    memcpy(&v, val, sizeof(v));
    out->name_id = (uint32_t)idx;
    out->service = v.service;
    out->slot = v.slot;
    return v.service < 0 ? DNS_FED_ENT : DNS_FED_NAME;
}

void dns_fed_place_answer(const struct dns_fed *fed, const struct dns_fed_place *p, uint16_t qtype,
                          unsigned region, uint32_t client_hash, struct dns_fed_answer *out)
{
    const struct fed_blk *blk = fed->blk[p->service];

    answer_init(out);
    out->name_id = p->name_id;
    if (region >= fed->region_count)
        region = fed->default_region;
    slot_answer(blk, p->service, &blk->lname[p->slot], region, qtype, client_hash, out);
}

enum dns_fed_match dns_fed_lookup_hashed(const struct dns_fed *fed, const uint8_t *qname,
                                         size_t qname_len, uint32_t qname_hash, uint16_t qtype,
                                         unsigned region, uint32_t client_hash,
                                         struct dns_fed_answer *out)
{
    struct dns_fed_place p;

    switch (dns_fed_find_hashed(fed, qname, qname_len, qname_hash, &p)) {
    case DNS_FED_NONE:
        answer_init(out);
        return DNS_FED_NONE;
    case DNS_FED_ENT:
        answer_init(out);
        out->name_id = p.name_id;
        out->negative_ttl = fed->ent_ttl;
        return DNS_FED_ENT;
    case DNS_FED_NAME:
        break;
    }
    dns_fed_place_answer(fed, &p, qtype, region, client_hash, out);
    return DNS_FED_NAME;
}

size_t dns_fed_slot_total(const struct dns_fed *fed, size_t service)
{
    return fed->blk[service] != NULL ? fed->slot_count : 0;
}

size_t dns_fed_region_total(const struct dns_fed *fed)
{
    return fed->region_count;
}

unsigned dns_fed_default_region(const struct dns_fed *fed)
{
    return fed->default_region;
}

int dns_fed_slot_regions(const struct dns_fed *fed, size_t service, size_t slot)
{
    const struct fed_blk *blk = fed->blk[service];

    if (blk == NULL || slot >= fed->slot_count || blk->lname[slot].answers == FED_NONE)
        return 0;
    return blk->lname[slot].uniform ? 1 : (int)fed->region_count;
}

void dns_fed_slot_answer(const struct dns_fed *fed, size_t service, size_t slot, unsigned region,
                         uint16_t qtype, struct dns_fed_answer *out)
{
    const struct fed_blk *blk = fed->blk[service];

    answer_init(out);
    slot_answer(blk, (int)service, &blk->lname[slot], region, qtype, 0, out);
}

size_t dns_fed_name_total(const struct dns_fed *fed)
{
    return fed->nm->names.count;
}

const uint8_t *dns_fed_name_wire(const struct dns_fed *fed, size_t name_id, size_t *len)
{
    *len = fed->nm->names.len[name_id];
    return fed->nm->names.data + fed->nm->names.off[name_id];
}

size_t dns_fed_variant_total(const struct dns_fed *fed, size_t service)
{
    return fed->blk[service] != NULL ? fed->blk[service]->variant_count : 0;
}

void dns_fed_variant_rrsets(const struct dns_fed *fed, size_t service, size_t variant_id,
                            struct dns_fed_variant_rrsets *out)
{
    const struct fed_blk *blk = fed->blk[service];
    const struct fed_variant *v = &blk->variants[variant_id];

    out->a = v->a != FED_NONE ? &blk->rrsets[v->a] : NULL;
    out->aaaa = v->aaaa != FED_NONE ? &blk->rrsets[v->aaaa] : NULL;
    out->cname = v->cname != FED_NONE ? &blk->rrsets[v->cname] : NULL;
}

size_t dns_fed_answer_total(const struct dns_fed *fed, size_t service)
{
    return fed->blk[service] != NULL ? fed->blk[service]->answer_count : 0;
}

uint32_t dns_fed_answer_negative_ttl(const struct dns_fed *fed, size_t service, size_t answer_id)
{
    return fed->blk[service]->answers[answer_id].ttl;
}

size_t dns_fed_name_count(const struct dns_fed *fed)
{
    return fed->nm->fed_name_count;
}

size_t dns_fed_service_count(const struct dns_fed *fed)
{
    return fed->nm->service_count;
}

const char *dns_fed_service_key(const struct dns_fed *fed, size_t i)
{
    return i < fed->nm->service_count ? fed->nm->service_keys[i] : NULL;
}

enum dns_fed_match dns_fed_name_info(const struct dns_fed *fed, const uint8_t *qname,
                                     size_t qname_len, struct dns_fed_name *out)
{
    const struct fed_name *ni;
    long idx;

    memset(out, 0, sizeof(*out));
    out->zone = -1;
    if (fed == NULL || qname_len == 0 || qname_len > DNS_NAME_MAX)
        return DNS_FED_NONE;
    idx = fed_itab_find(&fed->nm->names, qname, qname_len, fed_hash(qname, qname_len));
    if (idx < 0)
        return DNS_FED_NONE;
    ni = &fed->nm->info[idx];
    if (ni->match != DNS_FED_NAME)
        return (enum dns_fed_match)ni->match;
    out->level = (enum dns_fed_level)ni->level;
    out->service = (size_t)ni->service;
    out->region = ni->region;
    out->zone = ni->zone;
    return DNS_FED_NAME;
}
