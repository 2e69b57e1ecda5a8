/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_rrl.c -- response rate limiting (see dns_rrl.h).
 *
 * A bucket holds its whole tuple (masked prefix, family, class, the name's
 * hash) and a lookup compares all of it, so two tuples never share a bucket
 * whatever their slots: a collision costs a probe, never a wrong limit. The
 * slot is a cheap keyed mix of the tuple (two 64x64->128-bit multiplies
 * under the table's random 128-bit seed), enough that an attacker without
 * the seed cannot aim at slots. The name enters as its 32-bit hash
 * (dns_name_hash of the lowercased name, which the query path has computed
 * already): two names of one prefix and class whose hashes collide share a
 * bucket, which gives an attacker nothing he could not get by asking for
 * the other name from the same prefix.
 *
 * Buckets are 32 bytes in a 64-byte aligned array, so a bucket never
 * straddles two cache lines, and the DNS_RRL_PROBE slots of a key are the
 * aligned group its first slot is in (two adjacent lines): a query whose
 * tuple sits at its first slot, as most do, touches one line of the table
 * and the first line of struct dns_rrl, which holds everything the pass
 * path reads.
 */
#include "dnsd/dns_rrl.h"

#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_hash.h"
#include "common/cm_lpm.h"
#include "dnsd/dns_name.h"
#include "dnsd/dns_wire.h"

#define RRL_LINE 64

struct rrl_bucket {
    uint64_t pfx[2];    /* the masked address, zero beyond it */
    uint32_t name_hash; /* 0 for none (ERROR) */
    uint16_t tag;       /* rrl_tag(): class and family; 0 = free slot */
    uint16_t limited;   /* limited responses since the last slip, < p.slip */
    uint32_t stamp_s;   /* last update */
    int32_t balance;    /* in [-rate x window, rate] */
};

_Static_assert(sizeof(struct rrl_bucket) == 32, "a bucket is half a cache line");
_Static_assert(RRL_LINE % sizeof(struct rrl_bucket) == 0, "buckets never straddle lines");

/* Class and address length of a tuple, never 0. */
static inline uint16_t rrl_tag(enum dns_rrl_class cls, unsigned addr_len)
{
    return (uint16_t)(1u << 15 | (uint32_t)(uint8_t)cls << 8 | addr_len);
}

/* The first line holds what the pass path reads; the rest after it. */
struct dns_rrl {
    struct rrl_bucket *table; /* owned, p.table_size entries, RRL_LINE aligned */
    const struct cm_lpm *exempt;
    uint64_t seed[2];  /* random, keys the slot mix */
    uint64_t mask6[2]; /* the ipv6_prefix netmask, in address byte order */
    uint32_t mask4;    /* the ipv4_prefix netmask, in address byte order */
    uint32_t mask;     /* p.table_size - 1, a power of two minus one */
    uint32_t rate;     /* p.rate */
    int32_t floor;     /* -rate x window, clamped */
    struct dns_rrl_params p __attribute__((aligned(RRL_LINE)));
};

_Static_assert(offsetof(struct dns_rrl, floor) + sizeof(int32_t) <= RRL_LINE,
               "the pass path reads one line of struct dns_rrl");

static const char *const class_names[DNS_RRL_CLASS_COUNT] = {
    "positive", "nodata", "nxdomain", "referral", "wildcard", "error",
};

static const char *const action_names[DNS_RRL_ACTION_COUNT] = {
    "passed",
    "slipped",
    "dropped",
    "exempt",
};

const char *dns_rrl_class_name(enum dns_rrl_class c)
{
    return c < DNS_RRL_CLASS_COUNT ? class_names[c] : "error";
}

const char *dns_rrl_action_name(enum dns_rrl_action a)
{
    return a < DNS_RRL_ACTION_COUNT ? action_names[a] : "passed";
}

struct dns_rrl *dns_rrl_new(const struct dns_rrl_params *params,
                            const uint8_t key[CM_SIPHASH_KEY_LEN])
{
    struct dns_rrl *rrl = aligned_alloc(RRL_LINE, sizeof(*rrl));
    size_t n = DNS_RRL_PROBE; /* a power of two: slots are masks, not divisions */

    if (rrl == NULL)
        return NULL;
    memset(rrl, 0, sizeof(*rrl));
    rrl->p = *params;
    if (rrl->p.rate == 0)
        rrl->p.rate = 1;
    if (rrl->p.window_s == 0)
        rrl->p.window_s = 1;
    if (rrl->p.slip > UINT16_MAX) /* the bucket counts up to it in 16 bits */
        rrl->p.slip = UINT16_MAX;
    while (n < rrl->p.table_size) {
        if (n > UINT32_MAX / 2) {
            free(rrl);
            return NULL;
        }
        n *= 2;
    }
    rrl->p.table_size = n;
    rrl->mask = (uint32_t)(n - 1);
    uint8_t m4[4], m6[16];
    for (unsigned i = 0; i < 16; i++) {
        unsigned b4 = rrl->p.ipv4_prefix, b6 = rrl->p.ipv6_prefix;
        if (i < 4)
            m4[i] = (uint8_t)(b4 >= 8 * (i + 1) ? 0xFF : b4 > 8 * i ? 0xFF00u >> (b4 - 8 * i) : 0);
        m6[i] = (uint8_t)(b6 >= 8 * (i + 1) ? 0xFF : b6 > 8 * i ? 0xFF00u >> (b6 - 8 * i) : 0);
    }
    memcpy(&rrl->mask4, m4, sizeof(m4));
    memcpy(rrl->mask6, m6, sizeof(m6));
    int64_t floor = -(int64_t)rrl->p.rate * rrl->p.window_s;
    rrl->floor = floor < INT32_MIN ? INT32_MIN : (int32_t)floor;
    rrl->rate = rrl->p.rate;
    rrl->exempt = rrl->p.exempt;
    memcpy(rrl->seed, key, sizeof(rrl->seed));
    _Static_assert(CM_SIPHASH_KEY_LEN == sizeof(rrl->seed), "the key is the seed");
    rrl->table = aligned_alloc(RRL_LINE, n * sizeof(*rrl->table)); /* n >= 4: whole lines */
    if (rrl->table == NULL) {
        free(rrl);
        return NULL;
    }
    memset(rrl->table, 0, n * sizeof(*rrl->table));
    return rrl;
}

void dns_rrl_free(struct dns_rrl *rrl)
{
    if (rrl == NULL)
        return;
    free(rrl->table);
    free(rrl);
}

static inline bool bucket_is(const struct rrl_bucket *b, const uint64_t pfx[2], uint32_t name_hash,
                             uint16_t tag)
{
    return ((b->pfx[0] ^ pfx[0]) | (b->pfx[1] ^ pfx[1]) | (b->name_hash ^ name_hash) |
            (uint32_t)(b->tag ^ tag)) == 0;
}

/* The first slot of a tuple: a keyed mix, so a flood cannot aim at slots. */
static inline uint32_t slot_of(const struct dns_rrl *rrl, const uint64_t pfx[2], uint32_t name_hash,
                               uint16_t tag)
{
    uint64_t h = cm_mum64(pfx[0] ^ rrl->seed[0], pfx[1] ^ rrl->seed[1]);

    h = cm_mum64(h ^ ((uint64_t)name_hash << 16 | tag), rrl->seed[0] ^ 0x9e3779b97f4a7c15ull);
    return (uint32_t)(h ^ h >> 32) & rrl->mask;
}

/*
 * The bucket of a tuple not at its first slot @start: found among the other
 * slots of its aligned group of DNS_RRL_PROBE, else the first free one or
 * the least recently used one, reset for the tuple. A tuple takes the first
 * free slot and buckets are never freed, so a free slot ends the search:
 * the tuple is not further on.
 */
__attribute__((noinline)) static struct rrl_bucket *bucket_get(struct dns_rrl *rrl, uint32_t start,
                                                               const uint64_t pfx[2],
                                                               uint32_t name_hash, uint16_t tag,
                                                               uint32_t now_s)
{
    struct rrl_bucket *group = &rrl->table[start & ~(uint32_t)(DNS_RRL_PROBE - 1)];
    struct rrl_bucket *victim = NULL;

    for (uint32_t i = 0; i < DNS_RRL_PROBE; i++) {
        struct rrl_bucket *b = &group[(start + i) & (DNS_RRL_PROBE - 1)];

        if (bucket_is(b, pfx, name_hash, tag))
            return b;
        if (b->tag == 0) {
            victim = b;
            break;
        }
        if (victim == NULL || (uint32_t)(now_s - b->stamp_s) > (uint32_t)(now_s - victim->stamp_s))
            victim = b;
    }
    victim->pfx[0] = pfx[0];
    victim->pfx[1] = pfx[1];
    victim->name_hash = name_hash;
    victim->tag = tag;
    victim->limited = 0;
    victim->stamp_s = now_s;
    victim->balance = (int32_t)rrl->rate;
    return victim;
}

/* A limited response of bucket @b: slipped every p.slip-th time, else dropped. */
__attribute__((noinline)) static enum dns_rrl_action limited(const struct dns_rrl *rrl,
                                                             struct rrl_bucket *b)
{
    uint32_t n = (uint32_t)b->limited + 1;

    if (rrl->p.slip == 0)
        return DNS_RRL_DROP;
    if (n >= rrl->p.slip) {
        b->limited = 0;
        return DNS_RRL_SLIP;
    }
    b->limited = (uint16_t)n;
    return DNS_RRL_DROP;
}

enum dns_rrl_action dns_rrl_check(struct dns_rrl *rrl, const struct sockaddr *client,
                                  enum dns_rrl_class cls, const uint8_t *name, size_t len,
                                  bool cookie_valid, uint32_t now_s)
{
    uint8_t lc[DNS_NAME_MAX];
    uint32_t h = 0;

    if (name != NULL && len > 0) {
        if (len > DNS_NAME_MAX)
            len = DNS_NAME_MAX;
        h = dns_name_lower_hash(lc, name, len);
    }
    return dns_rrl_check_hashed(rrl, client, cls, h, cookie_valid, now_s);
}

/* dns_rrl_check_hashed() past the cookie: out of line, so that an answer
 * the cookie exempts costs no stack frame. */
__attribute__((noinline)) static enum dns_rrl_action count(struct dns_rrl *rrl,
                                                           const struct sockaddr *client,
                                                           enum dns_rrl_class cls,
                                                           uint32_t name_hash, uint32_t now_s)
{
    uint64_t pfx[2] = {0, 0};
    const uint8_t *raw;
    struct cm_lpm_result res;
    struct rrl_bucket *b;
    unsigned addr_len;
    uint32_t slot, elapsed;
    uint16_t tag;
    int64_t bal;

    if (client->sa_family == AF_INET) {
        uint32_t a;

        raw = (const uint8_t *)&((const struct sockaddr_in *)(const void *)client)->sin_addr;
        memcpy(&a, raw, 4);
        a &= rrl->mask4;
        memcpy(pfx, &a, 4);
        addr_len = 4;
    } else if (client->sa_family == AF_INET6) {
        raw = ((const struct sockaddr_in6 *)(const void *)client)->sin6_addr.s6_addr;
        memcpy(pfx, raw, 16);
        pfx[0] &= rrl->mask6[0];
        pfx[1] &= rrl->mask6[1];
        addr_len = 16;
    } else {
        return DNS_RRL_EXEMPT;
    }
    if (rrl->exempt != NULL &&
        cm_lpm_lookup(rrl->exempt, client->sa_family, raw, addr_len * 8, &res))
        return DNS_RRL_EXEMPT;
    if (cls == DNS_RRL_ERROR)
        name_hash = 0;
    tag = rrl_tag(cls, addr_len);
    slot = slot_of(rrl, pfx, name_hash, tag);
    b = &rrl->table[slot];
    if (!bucket_is(b, pfx, name_hash, tag)) /* the first slot holds most tuples */
        b = bucket_get(rrl, slot, pfx, name_hash, tag, now_s);
    elapsed = now_s - b->stamp_s;
    bal = b->balance;
    if (elapsed > 0) {
        /* Earns rate a second up to rate; in 64 bits unsigned, a long gap cannot overflow. */
        uint64_t earned = (uint64_t)elapsed * rrl->rate;

        bal = earned >= (uint64_t)((int64_t)rrl->rate - bal) ? (int64_t)rrl->rate
                                                             : bal + (int64_t)earned;
        b->stamp_s = now_s;
    }
    bal--;
    if (bal < rrl->floor)
        bal = rrl->floor;
    b->balance = (int32_t)bal;
    if (bal >= 0)
        return DNS_RRL_PASS;
    return limited(rrl, b);
}

enum dns_rrl_action dns_rrl_check_hashed(struct dns_rrl *rrl, const struct sockaddr *client,
                                         enum dns_rrl_class cls, uint32_t name_hash,
                                         bool cookie_valid, uint32_t now_s)
{
    if (cookie_valid)
        return DNS_RRL_EXEMPT;
    return count(rrl, client, cls, name_hash, now_s);
}

size_t dns_rrl_slip(uint8_t *resp, size_t len)
{
    size_t end = DNS_HEADER_LEN, qname_len;

    if (len < DNS_HEADER_LEN)
        return len;
    if (resp[4] != 0 || resp[5] > 1)
        return len;
    if (resp[5] == 1) {
        qname_len = dns_name_check(resp + DNS_HEADER_LEN, len - DNS_HEADER_LEN);
        if (qname_len == 0 || len - DNS_HEADER_LEN - qname_len < 4)
            return len;
        end += qname_len + 4;
    }
    resp[2] |= (uint8_t)(DNS_FLAG_TC >> 8);
    memset(resp + 6, 0, 6); /* ANCOUNT, NSCOUNT, ARCOUNT */
    return end;
}
