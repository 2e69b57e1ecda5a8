/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_fed.c -- the federated answer table (see dns_fed.h).
 *
 * Layout, all in a few arrays allocated at build time:
 *
 *   names (open-addressing hash of lowercased wire names)
 *     -> fed_name: uniform ? one answer : amap[off + client region] -> answer
 *   answer: ttl, fail_open, variant_count variants starting at `variant`,
 *           and (several variants) 64 slot bytes: slot -> variant offset
 *   variant: rrset indexes for A, AAAA, CNAME (FED_NONE when absent)
 *   rrsets[] -> rdata arena (pointers fixed once the arena stops growing)
 *
 * Identical answers are interned (keyed by what they are made of), so names
 * and regions that answer the same share one answer. Ranking is per
 * (service, client region), computed lazily once and reused by the global,
 * regional and zonal names of the service.
 */
#include "dnsd/dns_fed.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_array.h"
#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_log.h"
#include "common/cm_state.h"
#include "dnsd/dns_name.h"
#include "dnsd/dns_rank.h"

#define FED_NONE    UINT32_MAX
#define FED_KEY_MAX (4 + 2 * DNS_RANK_MAX_CHOSEN)

/* The hash sits beside the index so that most misses touch one cache line. */
struct itab_slot {
    uint32_t hash;
    uint32_t idx; /* 0 = empty, else key index + 1 */
};

/* Interned byte strings: names (kept for lookups) and answer keys (build only). */
struct itab {
    uint8_t *data; /* owned: the keys, back to back */
    size_t data_len, data_cap;
    uint32_t *off; /* owned, per key */
    uint32_t *len;
    uint32_t *hash;
    size_t count, cap;
    struct itab_slot *slots; /* owned, mask + 1 entries */
    size_t mask;
};

struct fed_name {
    uint32_t answers; /* uniform: answer index; else offset in amap (region_count entries) */
    int32_t service;  /* -1 for empty non-terminals */
    uint32_t region;  /* REGIONAL, ZONAL: conf region index */
    int32_t zone;     /* ZONAL: index in the region's zones, else -1 */
    uint8_t match;    /* enum dns_fed_match */
    uint8_t level;    /* enum dns_fed_level */
    bool uniform;     /* the same answer for every client region */
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

struct dns_fed {
    struct itab names;
    struct fed_name *info; /* owned, names.count entries */
    size_t info_cap;
    size_t fed_name_count; /* DNS_FED_NAME entries */
    uint32_t *amap;        /* owned */
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
    char **service_keys; /* owned */
    size_t service_count;
    size_t region_count;
    unsigned default_region;
    uint32_t ent_ttl;
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

static long itab_find(const struct itab *t, const void *key, size_t len, uint32_t h)
{
    size_t i;

    if (t->slots == NULL)
        return -1;
    for (i = h & t->mask;; i = (i + 1) & t->mask) {
        uint32_t s = t->slots[i].idx;
        if (s == 0)
            return -1;
        s--;
        if (t->slots[i].hash == h && t->len[s] == len && memcmp(t->data + t->off[s], key, len) == 0)
            return (long)s;
    }
}

static void itab_place(struct itab *t, uint32_t k)
{
    size_t i;

    for (i = t->hash[k] & t->mask; t->slots[i].idx != 0; i = (i + 1) & t->mask)
        ;
    t->slots[i] = (struct itab_slot){t->hash[k], k + 1};
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

/* Adds a key known to be absent; its index is t->count before the call. */
static int itab_add(struct itab *t, const void *key, size_t len, uint32_t h)
{
    int rc = CM_OK;

    if (t->data_len + len > UINT32_MAX || t->count >= UINT32_MAX - 1)
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
    rc = grow(&t->data, &t->data_cap, t->data_len + len, 1);
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
    t->data_len += len;
    itab_place(t, (uint32_t)t->count);
    t->count++;
    return CM_OK;
}

/* Preallocates for about @keys keys of @bytes bytes in all. */
static int itab_reserve(struct itab *t, size_t keys, size_t bytes)
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

static void itab_fini(struct itab *t)
{
    free(t->data);
    free(t->off);
    free(t->len);
    free(t->hash);
    free(t->slots);
    memset(t, 0, sizeof(*t));
}

/* ---- build state ---- */

struct fed_build {
    struct dns_fed *fed;
    const struct cm_conf *conf;
    struct dns_rank_ctx rank;
    struct itab akeys; /* answer keys; key index == answer index */
    uint32_t *rr_off;  /* rdata offset of each rrset */
    size_t rr_off_cap;
    uint8_t zone_wire[DNS_NAME_MAX];
    size_t zone_len;
    uint8_t (*region_label)[64]; /* per region: length byte + label */
    uint8_t (*az_label)[64];     /* per (region, zone) at az_base[region] + zone */
    size_t *az_base;
    /* per service scratch */
    struct dns_rank_member *members;
    struct dns_rank_entry *ranked; /* region_count x member_count */
    size_t *ranked_n;              /* per region, SIZE_MAX: not computed yet */
    uint32_t *member_variant;      /* per member, FED_NONE: not built yet */
    uint32_t *amap_tmp;            /* region_count */
    uint32_t *region_name;         /* regional name index per region */
    char *err;
    size_t errlen;
};

static int rrset_add(struct fed_build *b, uint16_t type, uint32_t ttl, uint16_t count,
                     const uint8_t *rdata, size_t len, uint32_t *out)
{
    struct dns_fed *fed = b->fed;
    size_t cap;
    int rc;

    if (len > UINT16_MAX || fed->rdata_len + len > UINT32_MAX)
        return CM_ENOMEM;
    rc = grow(&fed->rrsets, &fed->rrset_cap, fed->rrset_count + 1, sizeof(*fed->rrsets));
    if (rc != CM_OK)
        return rc;
    cap = b->rr_off_cap;
    rc = grow(&b->rr_off, &cap, fed->rrset_count + 1, sizeof(*b->rr_off));
    if (rc != CM_OK)
        return rc;
    b->rr_off_cap = cap;
    rc = grow(&fed->rdata, &fed->rdata_cap, fed->rdata_len + len, 1);
    if (rc != CM_OK)
        return rc;
    memcpy(fed->rdata + fed->rdata_len, rdata, len);
    fed->rrsets[fed->rrset_count] = (struct dns_rrset){.type = type,
                                                       .rclass = DNS_CLASS_IN,
                                                       .ttl = ttl,
                                                       .count = count,
                                                       .rdata_len = (uint16_t)len,
                                                       .rdata = NULL};
    b->rr_off[fed->rrset_count] = (uint32_t)fed->rdata_len;
    fed->rdata_len += len;
    *out = (uint32_t)fed->rrset_count++;
    return CM_OK;
}

static int cname_rrset(struct fed_build *b, const uint8_t *wire, size_t wlen, uint32_t ttl,
                       uint32_t *out)
{
    uint8_t rd[2 + DNS_NAME_MAX];

    rd[0] = (uint8_t)(wlen >> 8);
    rd[1] = (uint8_t)wlen;
    memcpy(rd + 2, wire, wlen);
    return rrset_add(b, DNS_TYPE_CNAME, ttl, 1, rd, wlen + 2, out);
}

/*
 * A or AAAA from the addresses of @n endpoints, in order, without
 * duplicates, at most @max. *out = FED_NONE when there is none.
 */
static int addr_rrset(struct fed_build *b, const struct cm_state_endpoint *const *src, size_t n,
                      int family, uint32_t max, uint32_t ttl, uint32_t *out)
{
    uint8_t rd[DNS_RANK_MAX_CHOSEN * 18];
    size_t alen = family == AF_INET ? 4 : 16;
    size_t len = 0;
    uint16_t count = 0;

    *out = FED_NONE;
    if (max > DNS_RANK_MAX_CHOSEN)
        max = DNS_RANK_MAX_CHOSEN;
    for (size_t i = 0; i < n && count < max; i++) {
        for (size_t k = 0; k < src[i]->address_count && count < max; k++) {
            const struct cm_addr *a = &src[i]->addresses[k];
            const uint8_t *ip;
            bool dup = false;
            if (a->ss.ss_family != family)
                continue;
            if (family == AF_INET)
                ip = (const uint8_t *)&((const struct sockaddr_in *)&a->ss)->sin_addr;
            else
                ip = (const uint8_t *)&((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
            for (size_t j = 0; j < len && !dup; j += 2 + alen)
                dup = memcmp(rd + j + 2, ip, alen) == 0;
            if (dup)
                continue;
            rd[len] = 0;
            rd[len + 1] = (uint8_t)alen;
            memcpy(rd + len + 2, ip, alen);
            len += 2 + alen;
            count++;
        }
    }
    if (count == 0)
        return CM_OK;
    return rrset_add(b, family == AF_INET ? DNS_TYPE_A : DNS_TYPE_AAAA, ttl, count, rd, len, out);
}

static int variant_add(struct fed_build *b, uint32_t a, uint32_t aaaa, uint32_t cname,
                       int32_t member, uint32_t *out)
{
    struct dns_fed *fed = b->fed;
    int rc =
        grow(&fed->variants, &fed->variant_cap, fed->variant_count + 1, sizeof(*fed->variants));

    if (rc != CM_OK)
        return rc;
    fed->variants[fed->variant_count] = (struct fed_variant){a, aaaa, cname, member};
    *out = (uint32_t)fed->variant_count++;
    return CM_OK;
}

/* The variant answering one member of the current service (cached per service). */
static int member_variant(struct fed_build *b, const struct dns_rank_service *rs, uint32_t m,
                          uint32_t *out)
{
    const struct cm_state_endpoint *src = rs->members[m].ep->src;
    uint32_t a = FED_NONE, aaaa = FED_NONE, cname = FED_NONE;
    int rc;

    if (b->member_variant[m] != FED_NONE) {
        *out = b->member_variant[m];
        return CM_OK;
    }
    rc = addr_rrset(b, &src, 1, AF_INET, rs->policy->max_answers, rs->ttl, &a);
    if (rc == CM_OK)
        rc = addr_rrset(b, &src, 1, AF_INET6, rs->policy->max_answers, rs->ttl, &aaaa);
    if (rc == CM_OK && !rs->members[m].has_addr) {
        uint8_t wire[DNS_NAME_MAX];
        size_t wlen = dns_name_from_text(src->hostname, false, wire);
        rc = cname_rrset(b, wire, wlen, rs->ttl, &cname);
    }
    if (rc == CM_OK)
        rc = variant_add(b, a, aaaa, cname, (int32_t)m, &b->member_variant[m]);
    *out = b->member_variant[m];
    return rc;
}

static int answer_push(struct fed_build *b, const struct fed_answer *ans)
{
    struct dns_fed *fed = b->fed;
    int rc = grow(&fed->answers, &fed->answer_cap, fed->answer_count + 1, sizeof(*fed->answers));

    if (rc != CM_OK)
        return rc;
    fed->answers[fed->answer_count++] = *ans;
    return CM_OK;
}

/* Variants of the chosen members: one, or a contiguous block plus the slot table. */
static int materialize_members(struct fed_build *b, const struct dns_rank_decision *d,
                               const uint32_t *key, struct fed_answer *ans)
{
    struct dns_fed *fed = b->fed;
    size_t n = key[1];
    int rc;

    ans->variant_count = (uint8_t)n;
    if (n == 1) {
        ans->variant = key[2];
        return CM_OK;
    }
    rc = grow(&fed->variants, &fed->variant_cap, fed->variant_count + n, sizeof(*fed->variants));
    if (rc == CM_OK)
        rc = grow(&fed->slots, &fed->slots_cap, fed->slots_len + DNS_FED_SLOTS, 1);
    if (rc != CM_OK)
        return rc;
    ans->variant = (uint32_t)fed->variant_count;
    for (size_t i = 0; i < n; i++)
        fed->variants[fed->variant_count++] = fed->variants[key[2 + 2 * i]];
    ans->slots = (uint32_t)fed->slots_len;
    dns_rank_slots(d->weight, n, fed->slots + fed->slots_len);
    fed->slots_len += DNS_FED_SLOTS;
    return CM_OK;
}

static int materialize_fail_open(struct fed_build *b, const struct dns_rank_service *rs,
                                 const struct dns_rank_decision *d, struct fed_answer *ans)
{
    const struct cm_state_endpoint *src[DNS_RANK_MAX_CHOSEN];
    uint32_t a = FED_NONE, aaaa = FED_NONE;
    int rc;

    for (size_t i = 0; i < d->chosen_count; i++)
        src[i] = rs->members[d->chosen[i]].ep->src;
    rc = addr_rrset(b, src, d->chosen_count, AF_INET, rs->policy->max_answers, d->ttl, &a);
    if (rc == CM_OK)
        rc = addr_rrset(b, src, d->chosen_count, AF_INET6, rs->policy->max_answers, d->ttl, &aaaa);
    if (rc != CM_OK || (a == FED_NONE && aaaa == FED_NONE))
        return rc; /* no address at all: NODATA */
    ans->variant_count = 1;
    return variant_add(b, a, aaaa, FED_NONE, -1, &ans->variant);
}

static int materialize_cname(struct fed_build *b, const uint8_t *wire, size_t wlen, uint32_t ttl,
                             struct fed_answer *ans)
{
    uint32_t cname;
    int rc = cname_rrset(b, wire, wlen, ttl, &cname);

    if (rc != CM_OK)
        return rc;
    ans->variant_count = 1;
    return variant_add(b, FED_NONE, FED_NONE, cname, -1, &ans->variant);
}

static int materialize(struct fed_build *b, const struct dns_rank_service *rs,
                       const struct dns_rank_decision *d, const uint32_t *key, uint32_t up_name)
{
    struct fed_answer ans = {.variant = FED_NONE, .slots = FED_NONE, .ttl = d->ttl};
    const struct itab *names = &b->fed->names;
    uint8_t wire[DNS_NAME_MAX];
    size_t wlen;
    int rc = CM_OK;

    switch (d->rule) {
    case DNS_RANK_BEST:
    case DNS_RANK_HOSTNAME:
    case DNS_RANK_SHARED:
        rc = materialize_members(b, d, key, &ans);
        break;
    case DNS_RANK_FAIL_OPEN:
        ans.fail_open = true;
        rc = materialize_fail_open(b, rs, d, &ans);
        break;
    case DNS_RANK_FAIL_CLOSED:
        ans.fail_closed = true;
        break;
    case DNS_RANK_SORRY:
        wlen = dns_name_from_text(rs->policy->sorry_target, false, wire);
        if (wlen == 0) {
            snprintf(b->err, b->errlen, "policy.all_down: bad sorry target \"%s\"",
                     rs->policy->sorry_target);
            return CM_ECONFIG;
        }
        rc = materialize_cname(b, wire, wlen, d->ttl, &ans);
        break;
    case DNS_RANK_CNAME_UP_REGION:
    case DNS_RANK_CNAME_UP_ZONE:
        rc = materialize_cname(b, names->data + names->off[up_name], names->len[up_name], d->ttl,
                               &ans);
        break;
    }
    if (rc != CM_OK)
        return rc;
    return answer_push(b, &ans);
}

/* The answer index for a decision: interned by what the answer is made of. */
static int answer_for(struct fed_build *b, const struct dns_rank_service *rs, uint32_t service,
                      const struct dns_rank_decision *d, uint32_t up_name, uint32_t *out)
{
    uint32_t key[FED_KEY_MAX];
    size_t n = 0;
    uint32_t h;
    long found;
    int rc;

    key[n++] = (uint32_t)d->rule;
    switch (d->rule) {
    case DNS_RANK_BEST:
    case DNS_RANK_HOSTNAME:
    case DNS_RANK_SHARED:
        key[0] = DNS_RANK_BEST; /* same members, same answer */
        key[n++] = (uint32_t)d->chosen_count;
        for (size_t i = 0; i < d->chosen_count; i++) {
            rc = member_variant(b, rs, d->chosen[i], &key[n++]);
            if (rc != CM_OK)
                return rc;
            key[n++] = d->chosen_count > 1 ? d->weight[i] : 0;
        }
        break;
    case DNS_RANK_FAIL_OPEN:
        key[n++] = service;
        for (size_t i = 0; i < d->chosen_count; i++)
            key[n++] = d->chosen[i];
        break;
    case DNS_RANK_FAIL_CLOSED:
    case DNS_RANK_SORRY:
        key[n++] = service;
        break;
    case DNS_RANK_CNAME_UP_REGION:
    case DNS_RANK_CNAME_UP_ZONE:
        key[n++] = up_name;
        break;
    }
    h = fed_hash((const uint8_t *)key, n * sizeof(key[0]));
    found = itab_find(&b->akeys, key, n * sizeof(key[0]), h);
    if (found >= 0) {
        *out = (uint32_t)found;
        return CM_OK;
    }
    rc = materialize(b, rs, d, key, up_name);
    if (rc == CM_OK)
        rc = itab_add(&b->akeys, key, n * sizeof(key[0]), h);
    *out = (uint32_t)b->akeys.count - 1;
    return rc;
}

static const struct dns_rank_entry *
ranked_for(struct fed_build *b, const struct dns_rank_service *rs, size_t region, size_t *n)
{
    struct dns_rank_entry *r = b->ranked + region * b->conf->member_count;

    if (b->ranked_n[region] == SIZE_MAX)
        b->ranked_n[region] = dns_rank_order(rs, region, r);
    *n = b->ranked_n[region];
    return r;
}

/* Fills the answers of name @idx for every client region. */
static int name_answers(struct fed_build *b, const struct dns_rank_service *rs, uint32_t service,
                        uint32_t idx, const struct dns_rank_scope *scope, uint32_t up_name)
{
    struct dns_fed *fed = b->fed;
    size_t nreg = b->conf->region_count;
    struct dns_rank_decision d;
    const struct dns_rank_entry *ranked;
    bool uniform = true;
    size_t n;
    int rc;

    if (dns_rank_client_independent(rs, scope)) {
        ranked = ranked_for(b, rs, 0, &n);
        dns_rank_decide(rs, scope, ranked, n, &d);
        rc = answer_for(b, rs, service, &d, up_name, &fed->info[idx].answers);
        fed->info[idx].uniform = true;
        return rc;
    }
    for (size_t r = 0; r < nreg; r++) {
        ranked = ranked_for(b, rs, r, &n);
        dns_rank_decide(rs, scope, ranked, n, &d);
        rc = answer_for(b, rs, service, &d, up_name, &b->amap_tmp[r]);
        if (rc != CM_OK)
            return rc;
        uniform = uniform && b->amap_tmp[r] == b->amap_tmp[0];
    }
    fed->info[idx].uniform = uniform;
    if (uniform) {
        fed->info[idx].answers = b->amap_tmp[0];
        return CM_OK;
    }
    rc = grow(&fed->amap, &fed->amap_cap, fed->amap_len + nreg, sizeof(*fed->amap));
    if (rc != CM_OK)
        return rc;
    memcpy(fed->amap + fed->amap_len, b->amap_tmp, nreg * sizeof(*fed->amap));
    fed->info[idx].answers = (uint32_t)fed->amap_len;
    fed->amap_len += nreg;
    return CM_OK;
}

/*
 * Adds a name. CM_EEXIST (with a message) when it exists as a name already;
 * an empty non-terminal of the same name is turned into the name.
 */
static int name_add(struct fed_build *b, const uint8_t *wire, size_t len, uint8_t match,
                    int service, const struct dns_fed_name *what, uint32_t *out)
{
    struct dns_fed *fed = b->fed;
    uint32_t h = fed_hash(wire, len);
    long found = itab_find(&fed->names, wire, len, h);
    int rc;

    if (found >= 0) {
        *out = (uint32_t)found;
        if (fed->info[found].match == DNS_FED_NAME || match == DNS_FED_ENT)
            return CM_EEXIST;
    } else {
        rc = grow(&fed->info, &fed->info_cap, fed->names.count + 1, sizeof(*fed->info));
        if (rc == CM_OK)
            rc = itab_add(&fed->names, wire, len, h);
        if (rc != CM_OK)
            return rc;
        *out = (uint32_t)fed->names.count - 1;
    }
    fed->info[*out] = (struct fed_name){.answers = FED_NONE,
                                        .service = service,
                                        .region = what != NULL ? (uint32_t)what->region : 0,
                                        .zone = what != NULL ? what->zone : -1,
                                        .match = match,
                                        .level = what != NULL ? (uint8_t)what->level : 0,
                                        .uniform = true};
    if (match == DNS_FED_NAME)
        fed->fed_name_count++;
    return CM_OK;
}

/* ---- names of a service ---- */

struct fed_svc_in {
    uint32_t index; /* in the table's service list */
    const char *key;
    const char *ns;
    const char *name;
    const struct cm_conf_service *cs; /* NULL for a discovered service */
    const struct cm_merged_service *msvc;
};

static int add_service_name(struct fed_build *b, const struct fed_svc_in *in, const uint8_t *wire,
                            size_t len, enum dns_fed_level level,
                            const struct dns_rank_scope *scope, uint32_t *idx)
{
    struct dns_fed_name what = {.level = level, .service = in->index, .zone = -1};
    int rc;

    if (level == DNS_FED_REGIONAL || level == DNS_FED_ZONAL)
        what.region = scope->region;
    if (level == DNS_FED_ZONAL)
        what.zone = scope->zone;
    rc = name_add(b, wire, len, DNS_FED_NAME, (int)in->index, &what, idx);
    if (rc != CM_EEXIST)
        return rc;
    if (in->cs == NULL) {
        cm_log_warn("federated name of discovered service %s already defined: skipped", in->key);
        return rc;
    }
    snprintf(b->err, b->errlen, "services.%s: a federated name or alias is defined twice", in->key);
    return CM_ECONFIG;
}

static int service_aliases(struct fed_build *b, const struct fed_svc_in *in, uint32_t gidx)
{
    struct dns_fed *fed = b->fed;
    uint8_t wire[DNS_NAME_MAX];
    uint32_t idx;

    for (size_t i = 0; in->cs != NULL && i < in->cs->alias_count; i++) {
        size_t len = dns_name_from_text(in->cs->aliases[i], true, wire);
        int rc;
        if (len == 0) {
            snprintf(b->err, b->errlen, "services.%s.aliases[%zu]: not a domain name", in->key, i);
            return CM_ECONFIG;
        }
        rc = add_service_name(b, in, wire, len, DNS_FED_ALIAS, NULL, &idx);
        if (rc != CM_OK)
            return rc;
        fed->info[idx].answers = fed->info[gidx].answers;
        fed->info[idx].uniform = fed->info[gidx].uniform;
    }
    return CM_OK;
}

static int service_levels(struct fed_build *b, const struct fed_svc_in *in,
                          const struct dns_rank_service *rs, const uint8_t *prefix, size_t pl,
                          uint32_t gidx)
{
    const struct cm_conf *conf = b->conf;
    uint8_t wire[3 * DNS_NAME_MAX];
    uint32_t ridx, zidx;
    int rc;

    for (size_t r = 0; r < conf->region_count; r++) {
        struct dns_rank_scope scope = {.level = DNS_RANK_REGIONAL, .region = r};
        const uint8_t *rl = b->region_label[r];
        size_t len = pl;
        memcpy(wire + len, rl, 1u + rl[0]);
        len += 1u + rl[0];
        memcpy(wire + len, b->zone_wire, b->zone_len);
        if (len + b->zone_len > DNS_NAME_MAX)
            continue; /* checked for configured services in fed_service() */
        memcpy(wire, prefix, pl);
        rc = add_service_name(b, in, wire, len + b->zone_len, DNS_FED_REGIONAL, &scope, &ridx);
        if (rc == CM_OK)
            rc = name_answers(b, rs, in->index, ridx, &scope, gidx);
        if (rc != CM_OK)
            return rc;
        for (size_t z = 0; z < conf->regions[r].zone_count; z++) {
            const uint8_t *zl = b->az_label[b->az_base[r] + z];
            size_t zlen = pl;
            scope = (struct dns_rank_scope){.level = DNS_RANK_ZONAL, .region = r, .zone = (int)z};
            memcpy(wire + zlen, zl, 1u + zl[0]);
            zlen += 1u + zl[0];
            memcpy(wire + zlen, rl, 1u + rl[0]);
            zlen += 1u + rl[0];
            memcpy(wire + zlen, b->zone_wire, b->zone_len);
            if (zlen + b->zone_len > DNS_NAME_MAX)
                continue;
            rc = add_service_name(b, in, wire, zlen + b->zone_len, DNS_FED_ZONAL, &scope, &zidx);
            if (rc == CM_OK)
                rc = name_answers(b, rs, in->index, zidx, &scope, ridx);
            if (rc != CM_OK)
                return rc;
        }
    }
    return CM_OK;
}

/* Longest label sequence a region/zone adds under the service prefix. */
static size_t longest_level(const struct fed_build *b)
{
    size_t best = 0;

    for (size_t r = 0; r < b->conf->region_count; r++) {
        for (size_t z = 0; z < b->conf->regions[r].zone_count; z++) {
            size_t l = 2u + b->region_label[r][0] + b->az_label[b->az_base[r] + z][0];
            best = l > best ? l : best;
        }
        best = 1u + b->region_label[r][0] > best ? 1u + b->region_label[r][0] : best;
    }
    return best;
}

static int fed_service(struct fed_build *b, const struct fed_svc_in *in)
{
    const struct cm_conf *conf = b->conf;
    struct dns_rank_service rs;
    struct dns_rank_scope scope = {.level = DNS_RANK_GLOBAL};
    uint8_t prefix[2 * DNS_NAME_MAX];
    uint8_t wire[2 * DNS_NAME_MAX];
    size_t pl = 0, nl = strlen(in->name), sl = strlen(in->ns), fl = strlen(conf->federation);
    uint32_t gidx;
    int rc;

    if (!dns_name_label_ok(in->name, nl) || !dns_name_label_ok(in->ns, sl) ||
        2 + nl + sl + fl + 4 + 4 + longest_level(b) + b->zone_len > DNS_NAME_MAX) {
        if (in->cs == NULL) {
            cm_log_warn("discovered service %s: names would not be valid DNS names: skipped",
                        in->key);
            return CM_OK;
        }
        snprintf(b->err, b->errlen, "services.%s: federated names would exceed 255 bytes", in->key);
        return CM_ECONFIG;
    }
    pl = dns_name_put_label(prefix, pl, in->name, nl);
    pl = dns_name_put_label(prefix, pl, in->ns, sl);
    pl = dns_name_put_label(prefix, pl, conf->federation, fl);
    pl = dns_name_put_label(prefix, pl, "svc", 3);

    dns_rank_service_init(&rs, &b->rank, in->msvc, in->cs != NULL ? &in->cs->policy : NULL,
                          b->members);
    for (size_t m = 0; m < conf->member_count; m++)
        b->member_variant[m] = FED_NONE;
    for (size_t r = 0; r < conf->region_count; r++)
        b->ranked_n[r] = SIZE_MAX;

    memcpy(wire, prefix, pl);
    memcpy(wire + pl, b->zone_wire, b->zone_len);
    rc = add_service_name(b, in, wire, pl + b->zone_len, DNS_FED_GLOBAL, &scope, &gidx);
    if (rc == CM_EEXIST && in->cs == NULL)
        return CM_OK;
    if (rc == CM_OK)
        rc = name_answers(b, &rs, in->index, gidx, &scope, FED_NONE);
    if (rc == CM_OK)
        rc = service_aliases(b, in, gidx);
    if (rc == CM_OK)
        rc = service_levels(b, in, &rs, prefix, pl, gidx);
    if (rc == CM_EEXIST && in->cs == NULL)
        rc = CM_OK;
    return rc;
}

/* ---- empty non-terminals ---- */

/* Number of bytes of @wire before the zone apex, or -1 when not strictly below it. */
static long below_apex(const struct fed_build *b, const uint8_t *wire, size_t len)
{
    size_t pos = dns_name_under_offset(wire, len, b->zone_wire, b->zone_len);

    if (pos == 0 || pos == SIZE_MAX)
        return -1;
    return (long)pos;
}

static int add_ents(struct fed_build *b)
{
    struct dns_fed *fed = b->fed;
    size_t count = fed->names.count;
    uint8_t wire[DNS_NAME_MAX];

    for (size_t i = 0; i < count; i++) {
        size_t len = fed->names.len[i];
        long head;
        size_t pos;
        memcpy(wire, fed->names.data + fed->names.off[i], len);
        head = below_apex(b, wire, len);
        if (head < 0 || fed->info[i].match != DNS_FED_NAME)
            continue;
        /* Ancestors strictly below the apex, bottom up; stop at a known ENT. */
        for (pos = 1u + wire[0]; pos < (size_t)head; pos += 1u + wire[pos]) {
            uint32_t idx = 0;
            int rc = name_add(b, wire + pos, len - pos, DNS_FED_ENT, -1, NULL, &idx);
            if (rc == CM_EEXIST && fed->info[idx].match == DNS_FED_ENT)
                break;
            if (rc != CM_OK && rc != CM_EEXIST)
                return rc;
        }
    }
    return CM_OK;
}

/* ---- build ---- */

static int build_labels(struct fed_build *b)
{
    const struct cm_conf *conf = b->conf;
    size_t naz = 0;

    b->zone_len = dns_name_from_text(conf->zone, true, b->zone_wire);
    if (b->zone_len == 0) {
        snprintf(b->err, b->errlen, "zone: \"%s\" is not a domain name", conf->zone);
        return CM_ECONFIG;
    }
    for (size_t r = 0; r < conf->region_count; r++) {
        b->az_base[r] = naz;
        naz += conf->regions[r].zone_count;
    }
    b->region_label = calloc(conf->region_count, sizeof(*b->region_label));
    b->az_label = calloc(naz > 0 ? naz : 1, sizeof(*b->az_label));
    if (b->region_label == NULL || b->az_label == NULL)
        return CM_ENOMEM;
    for (size_t r = 0; r < conf->region_count; r++) {
        const struct cm_conf_region *reg = &conf->regions[r];
        if (!dns_name_label_ok(reg->name, strlen(reg->name))) {
            snprintf(b->err, b->errlen, "regions.%s: not a DNS label", reg->name);
            return CM_ECONFIG;
        }
        dns_name_put_label(b->region_label[r], 0, reg->name, strlen(reg->name));
        for (size_t z = 0; z < reg->zone_count; z++) {
            if (!dns_name_label_ok(reg->zones[z], strlen(reg->zones[z]))) {
                snprintf(b->err, b->errlen, "regions.%s.zones: \"%s\" is not a DNS label",
                         reg->name, reg->zones[z]);
                return CM_ECONFIG;
            }
            dns_name_put_label(b->az_label[b->az_base[r] + z], 0, reg->zones[z],
                               strlen(reg->zones[z]));
        }
    }
    return CM_OK;
}

static int build_scratch(struct fed_build *b)
{
    const struct cm_conf *conf = b->conf;
    size_t nm = conf->member_count > 0 ? conf->member_count : 1;
    size_t nr = conf->region_count;

    b->members = calloc(nm, sizeof(*b->members));
    b->ranked = calloc(nr * nm, sizeof(*b->ranked));
    b->ranked_n = calloc(nr, sizeof(*b->ranked_n));
    b->member_variant = calloc(nm, sizeof(*b->member_variant));
    b->amap_tmp = calloc(nr, sizeof(*b->amap_tmp));
    b->az_base = calloc(nr, sizeof(*b->az_base));
    if (b->members == NULL || b->ranked == NULL || b->ranked_n == NULL ||
        b->member_variant == NULL || b->amap_tmp == NULL || b->az_base == NULL)
        return CM_ENOMEM;
    return build_labels(b);
}

static void build_fini(struct fed_build *b)
{
    dns_rank_ctx_fini(&b->rank);
    itab_fini(&b->akeys);
    free(b->rr_off);
    free(b->region_label);
    free(b->az_label);
    free(b->az_base);
    free(b->members);
    free(b->ranked);
    free(b->ranked_n);
    free(b->member_variant);
    free(b->amap_tmp);
}

static const struct cm_merged_service **merged_by_conf(const struct cm_conf *conf,
                                                       const struct cm_merged *merged)
{
    const struct cm_merged_service **map;

    map = calloc(conf->service_count > 0 ? conf->service_count : 1, sizeof(*map));
    if (map == NULL || merged == NULL)
        return map;
    for (size_t i = 0; i < merged->service_count; i++) {
        int ci = merged->services[i].conf_index;
        if (ci >= 0 && (size_t)ci < conf->service_count)
            map[ci] = &merged->services[i];
    }
    return map;
}

/* Sizes the tables for @services services up front, to avoid rehashing. */
static int reserve(struct fed_build *b, size_t services)
{
    const struct cm_conf *conf = b->conf;
    size_t per = 1 + conf->region_count, aliases = 0, names;
    int rc;

    for (size_t r = 0; r < conf->region_count; r++)
        per += conf->regions[r].zone_count;
    for (size_t i = 0; i < conf->service_count; i++)
        aliases += conf->services[i].alias_count;
    if (services > SIZE_MAX / 64 / per)
        return CM_ENOMEM;
    names = services * per + aliases;
    /* Empty non-terminals: a few per namespace and level; 1/8 more is plenty. */
    rc = itab_reserve(&b->fed->names, names + names / 8 + 64, (names + names / 8) * 48);
    if (rc == CM_OK)
        rc = grow(&b->fed->info, &b->fed->info_cap, names + names / 8 + 64, sizeof(*b->fed->info));
    if (rc == CM_OK)
        rc = itab_reserve(&b->akeys, names, names * 16);
    return rc;
}

static int build_services(struct fed_build *b, const struct cm_merged *merged)
{
    const struct cm_conf *conf = b->conf;
    struct dns_fed *fed = b->fed;
    const struct cm_merged_service **map = merged_by_conf(conf, merged);
    size_t total = conf->service_count;
    int rc = CM_OK;

    if (map == NULL)
        return CM_ENOMEM;
    for (size_t i = 0; merged != NULL && i < merged->service_count; i++)
        total += merged->services[i].conf_index < 0;
    rc = reserve(b, total);
    if (rc != CM_OK) {
        free(map);
        return rc;
    }
    fed->service_keys = calloc(total > 0 ? total : 1, sizeof(*fed->service_keys));
    if (fed->service_keys == NULL) {
        free(map);
        return CM_ENOMEM;
    }
    for (size_t i = 0; i < conf->service_count && rc == CM_OK; i++) {
        const struct cm_conf_service *cs = &conf->services[i];
        struct fed_svc_in in = {(uint32_t)i, cs->key, cs->ns, cs->name, cs, map[i]};
        fed->service_keys[fed->service_count] = strdup(cs->key);
        if (fed->service_keys[fed->service_count++] == NULL)
            rc = CM_ENOMEM;
        else
            rc = fed_service(b, &in);
    }
    for (size_t i = 0; merged != NULL && i < merged->service_count && rc == CM_OK; i++) {
        const struct cm_merged_service *ms = &merged->services[i];
        char *key, *slash;
        if (ms->conf_index >= 0)
            continue;
        key = strdup(ms->key);
        slash = key != NULL ? strchr(key, '/') : NULL;
        fed->service_keys[fed->service_count] = key;
        struct fed_svc_in in = {(uint32_t)fed->service_count++, ms->key, key, "", NULL, ms};
        if (key == NULL) {
            rc = CM_ENOMEM;
            break;
        }
        if (slash == NULL)
            continue; /* not "ns/name": no names */
        *slash = '\0';
        in.name = slash + 1;
        rc = fed_service(b, &in);
        *slash = '/';
    }
    free(map);
    return rc;
}

int dns_fed_build(const struct cm_conf *conf, const struct cm_merged *merged,
                  const struct cm_intent_view *intents, struct dns_fed **out, char *err,
                  size_t errlen)
{
    struct fed_build b = {.conf = conf, .err = err, .errlen = errlen};
    struct dns_fed *fed = NULL;
    int rc;

    if (errlen > 0)
        err[0] = '\0';
    if (conf->region_count == 0) {
        snprintf(err, errlen, "regions: at least one region is required");
        return CM_ECONFIG;
    }
    rc = dns_rank_ctx_init(&b.rank, conf, merged, intents);
    if (rc != CM_OK)
        goto out;
    fed = calloc(1, sizeof(*fed));
    if (fed == NULL) {
        rc = CM_ENOMEM;
        goto out;
    }
    b.fed = fed;
    fed->region_count = conf->region_count;
    fed->default_region = conf->dnsd.region < conf->region_count ? (unsigned)conf->dnsd.region : 0;
    fed->ent_ttl = conf->dnsd.ttl_s;
    rc = build_scratch(&b);
    if (rc == CM_OK)
        rc = build_services(&b, merged);
    if (rc == CM_OK)
        rc = add_ents(&b);
    if (rc != CM_OK)
        goto out;
    for (size_t i = 0; i < fed->rrset_count; i++)
        fed->rrsets[i].rdata = fed->rdata + b.rr_off[i];
    *out = fed;
    fed = NULL;
out:
    if (rc == CM_ENOMEM && errlen > 0 && err[0] == '\0')
        snprintf(err, errlen, "federated answer table: out of memory");
    build_fini(&b);
    dns_fed_free(fed);
    return rc;
}

void dns_fed_free(struct dns_fed *fed)
{
    if (fed == NULL)
        return;
    itab_fini(&fed->names);
    free(fed->info);
    free(fed->amap);
    free(fed->answers);
    free(fed->variants);
    free(fed->slots);
    free(fed->rrsets);
    free(fed->rdata);
    for (size_t i = 0; i < fed->service_count; i++)
        free(fed->service_keys[i]);
    free(fed->service_keys);
    free(fed);
}

/* ---- query path ---- */

enum dns_fed_match dns_fed_lookup(const struct dns_fed *fed, const uint8_t *qname, size_t qname_len,
                                  uint16_t qtype, unsigned region, uint32_t client_hash,
                                  struct dns_fed_answer *out)
{
    uint32_t h = qname_len <= DNS_NAME_MAX ? fed_hash(qname, qname_len) : 0;

    return dns_fed_lookup_hashed(fed, qname, qname_len, h, qtype, region, client_hash, out);
}

enum dns_fed_match dns_fed_lookup_hashed(const struct dns_fed *fed, const uint8_t *qname,
                                         size_t qname_len, uint32_t qname_hash, uint16_t qtype,
                                         unsigned region, uint32_t client_hash,
                                         struct dns_fed_answer *out)
{
    const struct fed_name *ni;
    const struct fed_answer *ans;
    const struct fed_variant *v;
    uint32_t vi;
    long idx;

    memset(out, 0, sizeof(*out));
    out->service = -1;
    out->member = -1;
    out->name_id = DNS_FED_NO_ID;
    out->answer_id = DNS_FED_NO_ID;
    out->variant_id = DNS_FED_NO_ID;
    if (fed == NULL || qname_len == 0 || qname_len > DNS_NAME_MAX)
        return DNS_FED_NONE;
    idx = itab_find(&fed->names, qname, qname_len, qname_hash);
    if (idx < 0)
        return DNS_FED_NONE;
    ni = &fed->info[idx];
    out->name_id = (uint32_t)idx;
    if (ni->match == DNS_FED_ENT) {
        out->negative_ttl = fed->ent_ttl;
        return DNS_FED_ENT;
    }
    if (region >= fed->region_count)
        region = fed->default_region;
    out->answer_id = ni->uniform ? ni->answers : fed->amap[ni->answers + region];
    ans = &fed->answers[out->answer_id];
    out->service = ni->service;
    out->negative_ttl = ans->ttl;
    out->fail_open = ans->fail_open;
    out->fail_closed = ans->fail_closed;
    out->region_dependent = !ni->uniform;
    out->subnet_dependent = ans->slots != FED_NONE;
    out->client_dependent = out->region_dependent || out->subnet_dependent;
    if (ans->variant_count == 0)
        return DNS_FED_NAME;
    vi = ans->variant;
    if (ans->slots != FED_NONE)
        vi += fed->slots[ans->slots + client_hash % DNS_FED_SLOTS];
    v = &fed->variants[vi];
    out->variant_id = vi;
    out->member = v->member;
    if (v->cname != FED_NONE)
        out->cname = &fed->rrsets[v->cname];
    else if (qtype == DNS_TYPE_A && v->a != FED_NONE)
        out->rrset = &fed->rrsets[v->a];
    else if (qtype == DNS_TYPE_AAAA && v->aaaa != FED_NONE)
        out->rrset = &fed->rrsets[v->aaaa];
    return DNS_FED_NAME;
}

size_t dns_fed_name_total(const struct dns_fed *fed)
{
    return fed->names.count;
}

const uint8_t *dns_fed_name_wire(const struct dns_fed *fed, size_t name_id, size_t *len)
{
    *len = fed->names.len[name_id];
    return fed->names.data + fed->names.off[name_id];
}

size_t dns_fed_variant_total(const struct dns_fed *fed)
{
    return fed->variant_count;
}

void dns_fed_variant_rrsets(const struct dns_fed *fed, size_t variant_id,
                            struct dns_fed_variant_rrsets *out)
{
    const struct fed_variant *v = &fed->variants[variant_id];

    out->a = v->a != FED_NONE ? &fed->rrsets[v->a] : NULL;
    out->aaaa = v->aaaa != FED_NONE ? &fed->rrsets[v->aaaa] : NULL;
    out->cname = v->cname != FED_NONE ? &fed->rrsets[v->cname] : NULL;
}

size_t dns_fed_answer_total(const struct dns_fed *fed)
{
    return fed->answer_count;
}

uint32_t dns_fed_answer_negative_ttl(const struct dns_fed *fed, size_t answer_id)
{
    return fed->answers[answer_id].ttl;
}

size_t dns_fed_name_count(const struct dns_fed *fed)
{
    return fed->fed_name_count;
}

size_t dns_fed_service_count(const struct dns_fed *fed)
{
    return fed->service_count;
}

const char *dns_fed_service_key(const struct dns_fed *fed, size_t i)
{
    return i < fed->service_count ? fed->service_keys[i] : NULL;
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
    idx = itab_find(&fed->names, qname, qname_len, fed_hash(qname, qname_len));
    if (idx < 0)
        return DNS_FED_NONE;
    ni = &fed->info[idx];
    if (ni->match != DNS_FED_NAME)
        return (enum dns_fed_match)ni->match;
    out->level = (enum dns_fed_level)ni->level;
    out->service = (size_t)ni->service;
    out->region = ni->region;
    out->zone = ni->zone;
    return DNS_FED_NAME;
}
