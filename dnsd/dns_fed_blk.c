/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_fed_blk.c -- one service's block of the federated answer table (see
 * dns_fed_int.h): the answers of its global, regional and zonal names for
 * every client region, decided by dns_rank and interned within the block
 * (keyed by what they are made of), so that names and regions that answer
 * the same share one answer. Ranking is per client region, computed lazily
 * once and reused by every name of the service.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_array.h"
#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_state.h"
#include "dnsd/dns_fed_int.h"
#include "dnsd/dns_name.h"

#define FED_KEY_MAX (4 + 2 * DNS_RANK_MAX_CHOSEN)

static int grow(void *pp, size_t *cap, size_t need, size_t elsize)
{
    return cm_array_grow(pp, cap, need, elsize);
}

static int rrset_add(struct fed_blk_build *b, uint16_t type, uint32_t ttl, uint16_t count,
                     const uint8_t *rdata, size_t len, uint32_t *out)
{
    struct fed_blk *fed = b->blk;
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

static int cname_rrset(struct fed_blk_build *b, const uint8_t *wire, size_t wlen, uint32_t ttl,
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
static int addr_rrset(struct fed_blk_build *b, const struct cm_state_endpoint *const *src, size_t n,
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

static int variant_add(struct fed_blk_build *b, uint32_t a, uint32_t aaaa, uint32_t cname,
                       int32_t member, uint32_t *out)
{
    struct fed_blk *fed = b->blk;
    int rc =
        grow(&fed->variants, &fed->variant_cap, fed->variant_count + 1, sizeof(*fed->variants));

    if (rc != CM_OK)
        return rc;
    fed->variants[fed->variant_count] = (struct fed_variant){a, aaaa, cname, member};
    *out = (uint32_t)fed->variant_count++;
    return CM_OK;
}

/* The variant answering one member of the current service (cached per service). */
static int member_variant(struct fed_blk_build *b, const struct dns_rank_service *rs, uint32_t m,
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

static int answer_push(struct fed_blk_build *b, const struct fed_answer *ans)
{
    struct fed_blk *fed = b->blk;
    int rc = grow(&fed->answers, &fed->answer_cap, fed->answer_count + 1, sizeof(*fed->answers));

    if (rc != CM_OK)
        return rc;
    fed->answers[fed->answer_count++] = *ans;
    return CM_OK;
}

/* Variants of the chosen members: one, or a contiguous block plus the slot table. */
static int materialize_members(struct fed_blk_build *b, const struct dns_rank_decision *d,
                               const uint32_t *key, struct fed_answer *ans)
{
    struct fed_blk *fed = b->blk;
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

static int materialize_fail_open(struct fed_blk_build *b, const struct dns_rank_service *rs,
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

static int materialize_cname(struct fed_blk_build *b, const uint8_t *wire, size_t wlen,
                             uint32_t ttl, struct fed_answer *ans)
{
    uint32_t cname;
    int rc = cname_rrset(b, wire, wlen, ttl, &cname);

    if (rc != CM_OK)
        return rc;
    ans->variant_count = 1;
    return variant_add(b, FED_NONE, FED_NONE, cname, -1, &ans->variant);
}

/* The wire name a CNAME up points at: @up (length byte, then the name). */
static int materialize(struct fed_blk_build *b, const struct dns_rank_service *rs,
                       const struct dns_rank_decision *d, const uint32_t *key, const uint8_t *up,
                       size_t up_len)
{
    struct fed_answer ans = {.variant = FED_NONE, .slots = FED_NONE, .ttl = d->ttl};
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
        rc = materialize_cname(b, up, up_len, d->ttl, &ans);
        break;
    }
    if (rc != CM_OK)
        return rc;
    return answer_push(b, &ans);
}

/* The answer index for a decision: interned by what the answer is made of. */
static int answer_for(struct fed_blk_build *b, const struct dns_rank_service *rs,
                      const struct dns_rank_decision *d, uint32_t up_slot, const uint8_t *up,
                      size_t up_len, uint32_t *out)
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
        for (size_t i = 0; i < d->chosen_count; i++)
            key[n++] = d->chosen[i];
        break;
    case DNS_RANK_FAIL_CLOSED:
    case DNS_RANK_SORRY:
        break;
    case DNS_RANK_CNAME_UP_REGION:
    case DNS_RANK_CNAME_UP_ZONE:
        key[n++] = up_slot;
        break;
    }
    h = dns_name_hash((const uint8_t *)key, n * sizeof(key[0]));
    found = fed_itab_find(&b->akeys, key, n * sizeof(key[0]), h);
    if (found >= 0) {
        *out = (uint32_t)found;
        return CM_OK;
    }
    rc = materialize(b, rs, d, key, up, up_len);
    if (rc == CM_OK)
        rc = fed_itab_add(&b->akeys, key, n * sizeof(key[0]), h);
    *out = (uint32_t)b->akeys.count - 1;
    return rc;
}

static const struct dns_rank_entry *
ranked_for(struct fed_blk_build *b, const struct dns_rank_service *rs, size_t region, size_t *n)
{
    struct dns_rank_entry *r = b->ranked + region * b->conf->member_count;

    if (b->ranked_n[region] == SIZE_MAX)
        b->ranked_n[region] = dns_rank_order(rs, region, r);
    *n = b->ranked_n[region];
    return r;
}

/* Fills the answers of slot @slot for every client region; @up is the name a
 * CNAME up points at (slot @up_slot). */
static int slot_answers(struct fed_blk_build *b, const struct dns_rank_service *rs, size_t slot,
                        const struct dns_rank_scope *scope, uint32_t up_slot, const uint8_t *up,
                        size_t up_len)
{
    struct fed_blk *fed = b->blk;
    struct fed_lname *ln = &fed->lname[slot];
    size_t nreg = b->conf->region_count;
    struct dns_rank_decision d;
    const struct dns_rank_entry *ranked;
    bool uniform = true;
    size_t n;
    int rc;

    if (dns_rank_client_independent(rs, scope)) {
        ranked = ranked_for(b, rs, 0, &n);
        dns_rank_decide(rs, scope, ranked, n, &d);
        ln->uniform = true;
        return answer_for(b, rs, &d, up_slot, up, up_len, &ln->answers);
    }
    for (size_t r = 0; r < nreg; r++) {
        ranked = ranked_for(b, rs, r, &n);
        dns_rank_decide(rs, scope, ranked, n, &d);
        rc = answer_for(b, rs, &d, up_slot, up, up_len, &b->amap_tmp[r]);
        if (rc != CM_OK)
            return rc;
        uniform = uniform && b->amap_tmp[r] == b->amap_tmp[0];
    }
    ln->uniform = uniform;
    if (uniform) {
        ln->answers = b->amap_tmp[0];
        return CM_OK;
    }
    rc = grow(&fed->amap, &fed->amap_cap, fed->amap_len + nreg, sizeof(*fed->amap));
    if (rc != CM_OK)
        return rc;
    memcpy(fed->amap + fed->amap_len, b->amap_tmp, nreg * sizeof(*fed->amap));
    ln->answers = (uint32_t)fed->amap_len;
    fed->amap_len += nreg;
    return CM_OK;
}

/* The regional and zonal slots; @wire holds the global name (@pl bytes of
 * prefix, then the apex). */
static int level_slots(struct fed_blk_build *b, const struct dns_rank_service *rs,
                       const uint8_t *prefix, size_t pl, const uint8_t *gwire, size_t glen)
{
    const struct cm_conf *conf = b->conf;
    uint8_t rwire[3 * DNS_NAME_MAX];
    uint8_t zwire[3 * DNS_NAME_MAX];
    int rc;

    for (size_t r = 0; r < conf->region_count; r++) {
        struct dns_rank_scope scope = {.level = DNS_RANK_REGIONAL, .region = r};
        const uint8_t *rl = b->region_label[r];
        size_t rslot = fed_slot_region(b->az_base, r), rlen = pl;
        memcpy(rwire, prefix, pl);
        memcpy(rwire + rlen, rl, 1u + rl[0]);
        rlen += 1u + rl[0];
        memcpy(rwire + rlen, b->zone_wire, b->zone_len);
        rlen += b->zone_len;
        if (rlen > DNS_NAME_MAX)
            continue; /* no such name (fed_service_names) */
        rc = slot_answers(b, rs, rslot, &scope, 0, gwire, glen);
        if (rc != CM_OK)
            return rc;
        for (size_t z = 0; z < conf->regions[r].zone_count; z++) {
            const uint8_t *zl = b->az_label[b->az_base[r] + z];
            size_t zlen = pl;
            scope = (struct dns_rank_scope){.level = DNS_RANK_ZONAL, .region = r, .zone = (int)z};
            memcpy(zwire, prefix, pl);
            memcpy(zwire + zlen, zl, 1u + zl[0]);
            zlen += 1u + zl[0];
            memcpy(zwire + zlen, rl, 1u + rl[0]);
            zlen += 1u + rl[0];
            if (zlen + b->zone_len > DNS_NAME_MAX)
                continue;
            rc = slot_answers(b, rs, fed_slot_zone(b->az_base, r, z), &scope, (uint32_t)rslot,
                              rwire, rlen);
            if (rc != CM_OK)
                return rc;
        }
    }
    return CM_OK;
}

static int blk_fill(struct fed_blk_build *b, const struct fed_svc_in *in, const uint8_t *prefix,
                    size_t pl)
{
    const struct cm_conf *conf = b->conf;
    struct fed_blk *blk = b->blk;
    struct dns_rank_service rs;
    struct dns_rank_scope scope = {.level = DNS_RANK_GLOBAL};
    uint8_t gwire[2 * DNS_NAME_MAX];
    int rc;

    blk->lname = malloc(b->slot_count * sizeof(*blk->lname));
    if (blk->lname == NULL)
        return CM_ENOMEM;
    for (size_t i = 0; i < b->slot_count; i++)
        blk->lname[i] = (struct fed_lname){FED_NONE, true};
    dns_rank_service_init(&rs, b->rank, in->msvc, in->cs != NULL ? &in->cs->policy : NULL,
                          b->members);
    for (size_t m = 0; m < conf->member_count; m++)
        b->member_variant[m] = FED_NONE;
    for (size_t r = 0; r < conf->region_count; r++)
        b->ranked_n[r] = SIZE_MAX;
    fed_itab_clear(&b->akeys);
    memcpy(gwire, prefix, pl);
    memcpy(gwire + pl, b->zone_wire, b->zone_len);
    rc = slot_answers(b, &rs, 0, &scope, FED_NONE, NULL, 0);
    if (rc == CM_OK)
        rc = level_slots(b, &rs, prefix, pl, gwire, pl + b->zone_len);
    if (rc != CM_OK)
        return rc;
    for (size_t i = 0; i < blk->rrset_count; i++)
        blk->rrsets[i].rdata = blk->rdata + b->rr_off[i];
    return CM_OK;
}

int fed_blk_build(struct fed_blk_build *bb, const struct fed_svc_in *in, const uint8_t *prefix,
                  size_t pl, struct fed_blk **out)
{
    struct fed_blk *blk = calloc(1, sizeof(*blk));
    int rc;

    *out = NULL;
    if (blk == NULL)
        return CM_ENOMEM;
    atomic_init(&blk->refs, 1);
    bb->blk = blk;
    rc = blk_fill(bb, in, prefix, pl);
    bb->blk = NULL;
    if (rc != CM_OK) {
        fed_blk_unref(blk);
        return rc;
    }
    *out = blk;
    return CM_OK;
}

int fed_blk_build_init(struct fed_blk_build *b)
{
    const struct cm_conf *conf = b->conf;
    size_t nm = conf->member_count > 0 ? conf->member_count : 1;
    size_t nr = conf->region_count > 0 ? conf->region_count : 1;

    b->members = calloc(nm, sizeof(*b->members));
    b->ranked = calloc(nr * nm, sizeof(*b->ranked));
    b->ranked_n = calloc(nr, sizeof(*b->ranked_n));
    b->member_variant = calloc(nm, sizeof(*b->member_variant));
    b->amap_tmp = calloc(nr, sizeof(*b->amap_tmp));
    if (b->members == NULL || b->ranked == NULL || b->ranked_n == NULL ||
        b->member_variant == NULL || b->amap_tmp == NULL)
        return CM_ENOMEM;
    return fed_itab_reserve(&b->akeys, b->slot_count + 16, 16 * (b->slot_count + 16));
}

void fed_blk_build_fini(struct fed_blk_build *b)
{
    fed_itab_fini(&b->akeys);
    free(b->rr_off);
    free(b->members);
    free(b->ranked);
    free(b->ranked_n);
    free(b->member_variant);
    free(b->amap_tmp);
}

struct fed_blk *fed_blk_ref(struct fed_blk *blk)
{
    atomic_fetch_add_explicit(&blk->refs, 1, memory_order_relaxed);
    return blk;
}

void fed_blk_unref(struct fed_blk *blk)
{
    if (blk == NULL || atomic_fetch_sub_explicit(&blk->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(blk->lname);
    free(blk->amap);
    free(blk->answers);
    free(blk->variants);
    free(blk->slots);
    free(blk->rrsets);
    free(blk->rdata);
    free(blk);
}
