/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_pcache.c -- the worker's UDP packet cache (see dns_pcache.h).
 *
 * A set is found by a keyed hash of the whole key, then its four tags are
 * compared; a tag match is checked against the entry's full key and query
 * bytes. An entry of the same query for an older view is replaced first,
 * then an empty way, else the ways in turn (one hand per table): no
 * bookkeeping on a hit.
 */
#include "dnsd/dns_pcache.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_hash.h"
#include "dnsd/dns_view.h"
#include "dnsd/dns_wire.h"

#define NO_OFFSET 0xFFFFu /* the stored rrl_name does not point into the query */

struct pc_set {
    uint32_t tag[DNS_PCACHE_WAYS]; /* 0 = empty way */
};

struct pc_entry {
    uint64_t key[4];  /* dns_pcache_probe.key */
    uint16_t qlen;    /* query bytes after its ID, at data[0] */
    uint16_t rlen;    /* response bytes, at data[qlen] */
    uint16_t rrl_off; /* offset of info.rrl_name in the query (ID included), or NO_OFFSET */
    struct dns_query_info info;
    uint8_t data[];
};

#define DATA_CAP (DNS_PCACHE_ENTRY_SIZE - offsetof(struct pc_entry, data))
_Static_assert(offsetof(struct pc_entry, data) <= 128, "entry header within two lines");
_Static_assert(DNS_PCACHE_QUERY_MAX < DATA_CAP, "room for a response");
/* A new field in dns_query_info is copied from the cache as it was stored:
 * check that this is right for it (a pointer into the request must be
 * rebased like rrl_name), then update the size. */
_Static_assert(sizeof(void *) != 8 || sizeof(struct dns_query_info) == 56,
               "dns_query_info changed: check what dns_pcache stores of it");

struct dns_pcache {
    struct pc_set *sets; /* owned, set_mask + 1 */
    uint8_t *entries;    /* owned, (set_mask + 1) x WAYS x ENTRY_SIZE, written before read */
    uint32_t set_mask;
    uint32_t tag_mask; /* all ones; 0 for dns_pcache_collide() */
    uint32_t hand;     /* the way the next eviction takes */
    uint64_t seed[2];
    /* Apart from the table's read-mostly fields above. */
    _Alignas(64) _Atomic uint64_t hits;
    _Atomic uint64_t misses;
    _Atomic uint64_t inserts;
    _Atomic uint64_t uncacheable;
};

/* Single writer per counter: a relaxed load + store, no locked add. */
static inline void bump(_Atomic uint64_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

struct dns_pcache *dns_pcache_new(uint32_t entries, const uint8_t seed[DNS_PCACHE_SEED_LEN])
{
    struct dns_pcache *pc;
    uint32_t sets = 1;
    void *p = NULL;

    if (entries == 0)
        return NULL;
    if (entries > DNS_PCACHE_ENTRIES_MAX)
        entries = DNS_PCACHE_ENTRIES_MAX;
    while ((uint64_t)sets * DNS_PCACHE_WAYS < entries)
        sets <<= 1;
    if (posix_memalign(&p, 64, sizeof(*pc)) != 0)
        return NULL;
    pc = p;
    memset(pc, 0, sizeof(*pc));
    pc->set_mask = sets - 1;
    pc->tag_mask = UINT32_MAX;
    memcpy(pc->seed, seed, sizeof(pc->seed));
    if (posix_memalign(&p, 64, (size_t)sets * sizeof(struct pc_set)) != 0) {
        free(pc);
        return NULL;
    }
    pc->sets = p;
    memset(pc->sets, 0, (size_t)sets * sizeof(struct pc_set));
    /* Not cleared: an entry is read only after its tag is set, and the pages
     * of a large table are touched as entries are stored. */
    if (posix_memalign(&p, 64, (size_t)sets * DNS_PCACHE_WAYS * DNS_PCACHE_ENTRY_SIZE) != 0) {
        free(pc->sets);
        free(pc);
        return NULL;
    }
    pc->entries = p;
    return pc;
}

void dns_pcache_free(struct dns_pcache *pc)
{
    if (pc == NULL)
        return;
    free(pc->entries);
    free(pc->sets);
    free(pc);
}

uint32_t dns_pcache_capacity(const struct dns_pcache *pc)
{
    return (pc->set_mask + 1) * DNS_PCACHE_WAYS;
}

void dns_pcache_collide(struct dns_pcache *pc)
{
    pc->tag_mask = 0;
}

static inline struct pc_entry *entry_at(const struct dns_pcache *pc, uint32_t set, unsigned way)
{
    return (struct pc_entry *)(void *)(pc->entries + ((size_t)set * DNS_PCACHE_WAYS + way) *
                                                         DNS_PCACHE_ENTRY_SIZE);
}

/* The key words but the query: false for a client of another family. */
static bool key_words(uint64_t key[4], uint64_t serial, unsigned listener,
                      const struct sockaddr *client, size_t qlen)
{
    key[0] = serial;
    if (client != NULL && client->sa_family == AF_INET) {
        uint32_t a;
        memcpy(&a, &((const struct sockaddr_in *)(const void *)client)->sin_addr, 4);
        key[1] = a;
        key[2] = 0;
    } else if (client != NULL && client->sa_family == AF_INET6) {
        memcpy(&key[1], &((const struct sockaddr_in6 *)(const void *)client)->sin6_addr, 16);
    } else {
        return false;
    }
    key[3] =
        (uint64_t)(listener & 0xFFFFu) | (uint64_t)client->sa_family << 16 | (uint64_t)qlen << 32;
    return true;
}

/* A keyed hash of the key words but the serial and the @len query bytes at
 * @q, 32 bytes a round in two lanes (no array: no stack canary). */
static uint64_t key_hash(const struct dns_pcache *pc, const uint64_t key[4], const uint8_t *q,
                         size_t len)
{
    /* not the serial: a new view's entry for a query takes its old one's place */
    uint64_t h = cm_mum64(key[1] ^ pc->seed[0], key[2] ^ pc->seed[1]);
    uint64_t g = cm_mum64(key[3] ^ pc->seed[0], pc->seed[1]);
    uint64_t a, b, c, d;
    size_t i = 0;

    for (; len - i >= 32; i += 32) {
        memcpy(&a, q + i, 8);
        memcpy(&b, q + i + 8, 8);
        memcpy(&c, q + i + 16, 8);
        memcpy(&d, q + i + 24, 8);
        h = cm_mum64(a ^ pc->seed[1], b ^ h);
        g = cm_mum64(c ^ pc->seed[0], d ^ g);
    }
    if (len - i >= 16) {
        memcpy(&a, q + i, 8);
        memcpy(&b, q + i + 8, 8);
        h = cm_mum64(a ^ pc->seed[1], b ^ h);
        i += 16;
    }
    if (i < len) {
        /* the last 16 bytes again (overlapping), or the short query zero-padded */
        a = b = 0;
        if (len >= 16) {
            memcpy(&a, q + len - 16, 8);
            memcpy(&b, q + len - 8, 8);
        } else if (len > 8) {
            memcpy(&a, q, 8);
            memcpy(&b, q + 8, len - 8);
        } else {
            memcpy(&a, q, len);
        }
        g = cm_mum64(a ^ pc->seed[1], b ^ g);
    }
    return cm_fmix64(h ^ g);
}

static inline bool same_key(const struct pc_entry *e, const uint64_t key[4], const uint8_t *q,
                            size_t qlen)
{
    /* the serial (key[0]) is the caller's to compare: an older view's entry
     * of the same query is the one to replace */
    return ((e->key[1] ^ key[1]) | (e->key[2] ^ key[2]) | (e->key[3] ^ key[3])) == 0 &&
           memcmp(e->data, q, qlen) == 0;
}

/* dns_pcache_lookup(), inline in dns_pcache_process() (the worker's path). */
static inline size_t lookup(struct dns_pcache *pc, struct dns_pcache_probe *probe, uint64_t serial,
                            unsigned listener, const struct sockaddr *client, const uint8_t *req,
                            size_t req_len, uint8_t *resp, size_t resp_cap,
                            struct dns_query_info *info)
{
    probe->cacheable = false;
    if (req_len < DNS_HEADER_LEN || req_len - 2 > DNS_PCACHE_QUERY_MAX ||
        !key_words(probe->key, serial, listener, client, req_len - 2)) {
        bump(&pc->misses);
        return 0;
    }
    const uint8_t *q = req + 2;
    size_t qlen = req_len - 2;
    uint64_t h = key_hash(pc, probe->key, q, qlen);
    uint32_t set = (uint32_t)h & pc->set_mask, tag = ((uint32_t)(h >> 32) & pc->tag_mask) | 1u;
    const struct pc_set *s = &pc->sets[set];
    int victim = -1;

    probe->cacheable = true;
    probe->set = set;
    probe->tag = tag;
    for (unsigned w = 0; w < DNS_PCACHE_WAYS; w++) {
        if (s->tag[w] != tag)
            continue;
        const struct pc_entry *e = entry_at(pc, set, w);
        if (!same_key(e, probe->key, q, qlen))
            continue;
        if (e->key[0] != serial || e->rlen > resp_cap) {
            victim = (int)w;
            break;
        }
        memcpy(resp, e->data + e->qlen, e->rlen);
        resp[0] = req[0]; /* the ID, the one byte pair that differs */
        resp[1] = req[1];
        *info = e->info;
        if (e->rrl_off != NO_OFFSET)
            info->rrl_name = req + e->rrl_off;
        bump(&pc->hits);
        return e->rlen;
    }
    for (unsigned w = 0; victim < 0 && w < DNS_PCACHE_WAYS; w++) {
        if (s->tag[w] == 0)
            victim = (int)w;
    }
    if (victim < 0)
        victim = (int)(pc->hand++ % DNS_PCACHE_WAYS);
    probe->way = (uint8_t)victim;
    bump(&pc->misses);
    return 0;
}

size_t dns_pcache_lookup(struct dns_pcache *pc, struct dns_pcache_probe *probe, uint64_t serial,
                         unsigned listener, const struct sockaddr *client, const uint8_t *req,
                         size_t req_len, uint8_t *resp, size_t resp_cap,
                         struct dns_query_info *info)
{
    return lookup(pc, probe, serial, listener, client, req, req_len, resp, resp_cap, info);
}

void dns_pcache_insert(struct dns_pcache *pc, const struct dns_pcache_probe *probe,
                       const uint8_t *req, size_t req_len, const uint8_t *resp, size_t resp_len,
                       const struct dns_query_info *info)
{
    size_t qlen = req_len - 2;

    if (!probe->cacheable || resp_len < DNS_HEADER_LEN || info->uncacheable ||
        qlen + resp_len > DATA_CAP) {
        bump(&pc->uncacheable);
        return;
    }
    struct pc_set *s = &pc->sets[probe->set];
    struct pc_entry *e = entry_at(pc, probe->set, probe->way);
    uintptr_t name = (uintptr_t)info->rrl_name, base = (uintptr_t)req;

    s->tag[probe->way] = 0;
    memcpy(e->key, probe->key, sizeof(e->key));
    e->qlen = (uint16_t)qlen;
    e->rlen = (uint16_t)resp_len;
    e->info = *info;
    /* the question's name is in the request: a hit points to its own */
    e->rrl_off = info->rrl_name != NULL && name >= base && name < base + req_len
                     ? (uint16_t)(name - base)
                     : NO_OFFSET;
    memcpy(e->data, req + 2, qlen);
    memcpy(e->data + qlen, resp, resp_len);
    s->tag[probe->way] = probe->tag;
    bump(&pc->inserts);
}

size_t dns_pcache_process(struct dns_pcache *pc, const struct dns_view *view,
                          struct dns_cookie_memo *memo, unsigned listener, const uint8_t *req,
                          size_t req_len, uint8_t *resp, size_t resp_cap,
                          const struct sockaddr *client, struct dns_query_info *info,
                          uint32_t now_s)
{
    struct dns_pcache_probe probe;
    size_t n =
        lookup(pc, &probe, view->serial, listener, client, req, req_len, resp, resp_cap, info);

    if (n > 0)
        return n;
    n = dns_query_process_memo(view, memo, req, req_len, resp, resp_cap, client, false, info,
                               now_s);
    dns_pcache_insert(pc, &probe, req, req_len, resp, n, info);
    return n;
}

void dns_pcache_stats_add(const struct dns_pcache *pc, struct dns_pcache_stats *out)
{
    if (pc == NULL)
        return;
    out->hits += atomic_load_explicit(&pc->hits, memory_order_relaxed);
    out->misses += atomic_load_explicit(&pc->misses, memory_order_relaxed);
    out->inserts += atomic_load_explicit(&pc->inserts, memory_order_relaxed);
    out->uncacheable += atomic_load_explicit(&pc->uncacheable, memory_order_relaxed);
}
