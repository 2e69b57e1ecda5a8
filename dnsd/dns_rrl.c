/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_rrl.c -- response rate limiting (see dns_rrl.h).
 *
 * A bucket is identified by the 64-bit keyed hash of (class, family, masked
 * prefix, the name's hash) alone: two keys share a bucket only if their
 * SipHash-1-3 values are equal, which an attacker without the key cannot
 * arrange for different prefixes or classes. The name enters as the
 * table's 32-bit name hash (dns_name_hash of the lowercased name, which
 * the query path has computed already): two names of one prefix and class
 * whose hashes collide share a bucket, which gives an attacker nothing he
 * could not get by asking for the other name from the same prefix. The
 * table size is a power of two, so a slot is a mask of the key.
 */
#include "dnsd/dns_rrl.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_lpm.h"
#include "dnsd/dns_name.h"
#include "dnsd/dns_wire.h"

struct rrl_bucket {
    uint64_t key;     /* keyed hash; 0 = free slot */
    uint32_t stamp_s; /* last update */
    int32_t balance;  /* in [-rate x window, rate] */
    uint32_t limited; /* limited responses since the bucket was taken, for slip */
};

/*
 * The worker's memo of the bucket keys it hashed lately: a resolver's stream
 * asks the same names from the same prefix, and SipHash is the largest part
 * of the limiter's cost. The set is chosen by an unkeyed mix, which only
 * decides what is remembered: an entry is used only when its whole tuple
 * matches, so a flood of distinct tuples costs the hash it costs without it.
 * Two entries a set (one cache line), the newer first, so that two busy
 * tuples meeting in a set do not push each other out.
 */
#define RRL_MEMO_SET_BITS 8
#define RRL_MEMO_WAYS     2

struct rrl_memo {
    uint64_t key;    /* the bucket key of the tuple */
    uint64_t pfx[2]; /* the masked address, zero beyond it */
    uint32_t name_hash;
    uint32_t tag; /* rrl_tag(): class and family; 0 = empty */
};

/* Class and address length of a tuple, never 0. */
static inline uint32_t rrl_tag(enum dns_rrl_class cls, unsigned addr_len)
{
    return 1u << 16 | (uint32_t)(uint8_t)cls << 8 | addr_len;
}

struct dns_rrl {
    struct dns_rrl_params p;
    struct rrl_memo memo[RRL_MEMO_WAYS << RRL_MEMO_SET_BITS];
    uint8_t key[CM_SIPHASH_KEY_LEN];
    int64_t floor;  /* -rate x window */
    size_t mask;    /* p.table_size - 1, a power of two minus one */
    uint32_t mask4; /* the ipv4_prefix and ipv6_prefix netmasks, in address byte order */
    uint64_t mask6[2];
    struct rrl_bucket *table; /* owned, p.table_size entries */
};

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
    struct dns_rrl *rrl = calloc(1, sizeof(*rrl));

    if (rrl == NULL)
        return NULL;
    rrl->p = *params;
    if (rrl->p.rate == 0)
        rrl->p.rate = 1;
    if (rrl->p.window_s == 0)
        rrl->p.window_s = 1;
    if (rrl->p.table_size < DNS_RRL_PROBE)
        rrl->p.table_size = DNS_RRL_PROBE;
    size_t n = DNS_RRL_PROBE; /* a power of two: slots are masks, not divisions */
    while (n < rrl->p.table_size) {
        if (n > SIZE_MAX / 2 / sizeof(*rrl->table)) {
            free(rrl);
            return NULL;
        }
        n *= 2;
    }
    rrl->p.table_size = n;
    rrl->mask = n - 1;
    uint8_t m4[4], m6[16];
    for (unsigned i = 0; i < 16; i++) {
        unsigned b4 = rrl->p.ipv4_prefix, b6 = rrl->p.ipv6_prefix;
        if (i < 4)
            m4[i] = (uint8_t)(b4 >= 8 * (i + 1) ? 0xFF : b4 > 8 * i ? 0xFF00u >> (b4 - 8 * i) : 0);
        m6[i] = (uint8_t)(b6 >= 8 * (i + 1) ? 0xFF : b6 > 8 * i ? 0xFF00u >> (b6 - 8 * i) : 0);
    }
    memcpy(&rrl->mask4, m4, sizeof(m4));
    memcpy(rrl->mask6, m6, sizeof(m6));
    rrl->floor = -(int64_t)rrl->p.rate * rrl->p.window_s;
    if (rrl->floor < INT32_MIN)
        rrl->floor = INT32_MIN;
    memcpy(rrl->key, key, CM_SIPHASH_KEY_LEN);
    rrl->table = calloc(rrl->p.table_size, sizeof(*rrl->table));
    if (rrl->table == NULL) {
        free(rrl);
        return NULL;
    }
    return rrl;
}

void dns_rrl_free(struct dns_rrl *rrl)
{
    if (rrl == NULL)
        return;
    free(rrl->table);
    free(rrl);
}

static inline bool memo_is(const struct rrl_memo *m, const uint64_t pfx[2], uint32_t name_hash,
                           uint32_t tag)
{
    return ((m->pfx[0] ^ pfx[0]) | (m->pfx[1] ^ pfx[1]) | (m->name_hash ^ name_hash) |
            (m->tag ^ tag)) == 0;
}

/*
 * A tuple not in its memo set @set: its key, SipHash-1-3 of class | name
 * hash | address length | address, put first in the set. Out of line (as
 * bucket_get and limited) so that the common path keeps to few registers.
 */
__attribute__((noinline)) static uint64_t key_new(struct dns_rrl *rrl, struct rrl_memo *set,
                                                  const uint64_t pfx[2], unsigned addr_len,
                                                  uint32_t tag, uint32_t name_hash)
{
    uint8_t buf[6 + 16];
    uint64_t h;

    buf[0] = (uint8_t)(tag >> 8); /* the class */
    buf[1] = (uint8_t)(name_hash >> 24);
    buf[2] = (uint8_t)(name_hash >> 16);
    buf[3] = (uint8_t)(name_hash >> 8);
    buf[4] = (uint8_t)name_hash;
    buf[5] = (uint8_t)addr_len;
    memcpy(buf + 6, pfx, 16); /* addr_len bytes count */
    h = cm_siphash13(rrl->key, buf, 6 + addr_len);
    h = h != 0 ? h : 1;
    set[1] = set[0];
    set[0].key = h;
    set[0].pfx[0] = pfx[0];
    set[0].pfx[1] = pfx[1];
    set[0].name_hash = name_hash;
    set[0].tag = tag;
    return h;
}

/*
 * The bucket key of (@cls, @name_hash, the masked address @pfx of @addr_len
 * bytes), from the memo when it is there. Never 0 (0 marks a free bucket).
 */
static inline uint64_t bucket_key(struct dns_rrl *rrl, const uint64_t pfx[2], unsigned addr_len,
                                  enum dns_rrl_class cls, uint32_t name_hash)
{
    uint32_t tag = rrl_tag(cls, addr_len);
    uint64_t mix = (pfx[0] ^ pfx[1] ^ (uint64_t)name_hash << 24 ^ tag) * 0x9e3779b97f4a7c15ull;
    struct rrl_memo *set = &rrl->memo[(mix >> (64 - RRL_MEMO_SET_BITS)) * RRL_MEMO_WAYS];

    if (memo_is(&set[0], pfx, name_hash, tag))
        return set[0].key;
    if (memo_is(&set[1], pfx, name_hash, tag))
        return set[1].key;
    return key_new(rrl, set, pfx, addr_len, tag, name_hash);
}

/*
 * The bucket of @key: found among the probe slots, else the first free or
 * the least recently used one. A key takes the first free slot and buckets
 * are never freed, so a free slot ends the search: the key is not further
 * on, and a table that is not full finds most keys at the first probe.
 */
__attribute__((noinline)) static struct rrl_bucket *bucket_get(struct dns_rrl *rrl, uint64_t key,
                                                               uint32_t now_s)
{
    size_t start = (size_t)key & rrl->mask;
    struct rrl_bucket *victim = NULL;

    for (size_t i = 0; i < DNS_RRL_PROBE; i++) {
        struct rrl_bucket *b = &rrl->table[(start + i) & rrl->mask];

        if (b->key == key)
            return b;
        if (b->key == 0) {
            victim = b;
            break;
        }
        if (victim == NULL || (uint32_t)(now_s - b->stamp_s) > (uint32_t)(now_s - victim->stamp_s))
            victim = b;
    }
    victim->key = key;
    victim->stamp_s = now_s;
    victim->balance = (int32_t)rrl->p.rate;
    victim->limited = 0;
    return victim;
}

/* A limited response of bucket @b: slipped every p.slip-th time, else dropped. */
__attribute__((noinline)) static enum dns_rrl_action limited(const struct dns_rrl *rrl,
                                                             struct rrl_bucket *b)
{
    b->limited++;
    if (rrl->p.slip != 0 && b->limited % rrl->p.slip == 0)
        return DNS_RRL_SLIP;
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
    uint64_t key;
    int64_t bal;
    uint32_t elapsed;

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
    if (rrl->p.exempt != NULL &&
        cm_lpm_lookup(rrl->p.exempt, client->sa_family, raw, addr_len * 8, &res))
        return DNS_RRL_EXEMPT;
    key = bucket_key(rrl, pfx, addr_len, cls, cls == DNS_RRL_ERROR ? 0 : name_hash);
    b = &rrl->table[(size_t)key & rrl->mask];
    if (b->key != key) /* the first probe slot holds most keys */
        b = bucket_get(rrl, key, now_s);
    elapsed = now_s - b->stamp_s;
    bal = b->balance;
    if (elapsed > 0) {
        /* Past a window everything is forgiven anyway: avoids overflow on long gaps. */
        if (elapsed > rrl->p.window_s + 1)
            elapsed = rrl->p.window_s + 1;
        bal += (int64_t)elapsed * rrl->p.rate;
        if (bal > (int64_t)rrl->p.rate)
            bal = rrl->p.rate;
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
