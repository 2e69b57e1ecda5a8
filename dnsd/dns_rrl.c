/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_rrl.c -- response rate limiting (see dns_rrl.h).
 *
 * A bucket is identified by the 64-bit keyed hash of (class, family, masked
 * prefix, lowercased name) alone: two keys share a bucket only if their
 * SipHash values are equal, which an attacker without the key cannot arrange.
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

struct dns_rrl {
    struct dns_rrl_params p;
    uint8_t key[CM_SIPHASH_KEY_LEN];
    int64_t floor;            /* -rate x window */
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

/* Family and masked prefix bytes into @out; returns the bytes written, 0 if not IP. */
static size_t source_prefix(const struct dns_rrl *rrl, const struct sockaddr *sa, uint8_t *out,
                            int *family, const uint8_t **raw)
{
    const uint8_t *addr;
    unsigned bits;
    size_t n;

    if (sa->sa_family == AF_INET) {
        addr = (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr;
        n = 4;
        bits = rrl->p.ipv4_prefix;
    } else if (sa->sa_family == AF_INET6) {
        addr = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        n = 16;
        bits = rrl->p.ipv6_prefix;
    } else {
        return 0;
    }
    *family = sa->sa_family;
    *raw = addr;
    out[0] = (uint8_t)n;
    for (size_t i = 0; i < n; i++) {
        unsigned keep = bits >= 8 * (i + 1) ? 8 : bits > 8 * i ? bits - 8 * (unsigned)i : 0;
        out[1 + i] = (uint8_t)(addr[i] & (uint8_t)(0xFF00u >> keep));
    }
    return 1 + n;
}

static uint64_t bucket_key(const struct dns_rrl *rrl, const uint8_t *prefix, size_t plen,
                           enum dns_rrl_class cls, const uint8_t *name, size_t len)
{
    uint8_t buf[2 + 16 + DNS_NAME_MAX];
    size_t n = 0;
    uint64_t h;

    buf[n++] = (uint8_t)cls;
    memcpy(buf + n, prefix, plen);
    n += plen;
    if (name != NULL && cls != DNS_RRL_ERROR) {
        if (len > DNS_NAME_MAX)
            len = DNS_NAME_MAX;
        dns_name_lower(buf + n, name, len);
        n += len;
    }
    h = cm_siphash24(rrl->key, buf, n);
    return h != 0 ? h : 1;
}

/* The bucket of @key: found among the probe slots, else the free or least recently used one. */
static struct rrl_bucket *bucket_get(struct dns_rrl *rrl, uint64_t key, uint32_t now_s)
{
    size_t start = (size_t)(key % rrl->p.table_size);
    struct rrl_bucket *victim = NULL;

    for (size_t i = 0; i < DNS_RRL_PROBE; i++) {
        struct rrl_bucket *b = &rrl->table[(start + i) % rrl->p.table_size];

        if (b->key == key)
            return b;
        if (victim == NULL || b->key == 0 ||
            (victim->key != 0 &&
             (uint32_t)(now_s - b->stamp_s) > (uint32_t)(now_s - victim->stamp_s)))
            victim = b;
    }
    victim->key = key;
    victim->stamp_s = now_s;
    victim->balance = (int32_t)rrl->p.rate;
    victim->limited = 0;
    return victim;
}

enum dns_rrl_action dns_rrl_check(struct dns_rrl *rrl, const struct sockaddr *client,
                                  enum dns_rrl_class cls, const uint8_t *name, size_t len,
                                  bool cookie_valid, uint32_t now_s)
{
    uint8_t prefix[17];
    const uint8_t *raw = NULL;
    struct cm_lpm_result res;
    struct rrl_bucket *b;
    int family = 0;
    size_t plen;
    int64_t bal;
    uint32_t elapsed;

    if (cookie_valid)
        return DNS_RRL_EXEMPT;
    plen = source_prefix(rrl, client, prefix, &family, &raw);
    if (plen == 0)
        return DNS_RRL_EXEMPT;
    if (rrl->p.exempt != NULL &&
        cm_lpm_lookup(rrl->p.exempt, family, raw, family == AF_INET ? 32 : 128, &res))
        return DNS_RRL_EXEMPT;
    b = bucket_get(rrl, bucket_key(rrl, prefix, plen, cls, name, len), now_s);
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
    b->limited++;
    if (rrl->p.slip != 0 && b->limited % rrl->p.slip == 0)
        return DNS_RRL_SLIP;
    return DNS_RRL_DROP;
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
