/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_pcache.h -- a worker's UDP packet cache: a repeated query is answered
 * by copying the response made for it before, with the query's ID.
 *
 * One table per worker thread (no locks, nothing shared), allocated at start
 * (dnsd.packet_cache.entries), never on the query path. The key is compared
 * in full; a hash of it only picks the set:
 *
 *   view serial | client family + IP (not the port) | listener | every byte
 *   of the query after its ID (flags, question with its letter case, OPT,
 *   payload size, ECS, every option)
 *
 * which, with the view (immutable, named by its serial), is everything
 * dns_query_process() reads for a UDP query, except DNS cookies: a response
 * that checked or made one depends on the clock and the worker's memo
 * (dns_query_info.uncacheable) and is not stored. A new view invalidates
 * every entry lazily: its serial no longer matches, and since the serial is
 * not hashed, the new answer to a query replaces the old one in its way. Hostile clients cannot
 * aim at a set: the hash is keyed with random bytes per worker; a collision
 * costs a miss, never a wrong answer.
 *
 *   sets[]    4 x 32-bit tags per set (0 = empty), 4 sets per cache line
 *   entries[] 768 bytes each, 4 per set:
 *             | key (serial, IP, listener, lengths) | dns_query_info |
 *             | query after its ID | response (ID included, patched on a hit) |
 *
 * A query longer than DNS_PCACHE_QUERY_MAX bytes (after its ID), or one
 * whose query and response together exceed DNS_PCACHE_DATA bytes, is not
 * cached; nor is an empty response (a dropped packet).
 */
#ifndef DNSD_DNS_PCACHE_H
#define DNSD_DNS_PCACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "dnsd/dns_query.h"

#define DNS_PCACHE_WAYS        4
#define DNS_PCACHE_ENTRY_SIZE  768 /* bytes per entry: the memory per worker is entries x this */
#define DNS_PCACHE_QUERY_MAX   254 /* longest query cached, its 2-byte ID not counted */
#define DNS_PCACHE_ENTRIES_MAX 262144
#define DNS_PCACHE_SEED_LEN    16

struct dns_cookie_memo;
struct dns_pcache;
struct dns_view;

/* Counters, single writer (the worker); read racily by the main thread. */
struct dns_pcache_stats {
    uint64_t hits;        /* answered from the cache */
    uint64_t misses;      /* looked up, not found: answered by dns_query_process */
    uint64_t inserts;     /* misses whose response was stored */
    uint64_t uncacheable; /* misses not stored: too long, no response, a cookie */
};

/* What a lookup found out, for the insert after its miss. Caller's stack. */
struct dns_pcache_probe {
    uint64_t key[4]; /* serial, IP (2 words), listener | family | query length */
    uint32_t set;    /* set index */
    uint32_t tag;    /* never 0 */
    uint8_t way;     /* where an insert goes */
    bool cacheable;  /* the query can be a key (length, client address family) */
};

/**
 * A table of @entries (rounded up to a power of two, at least
 * DNS_PCACHE_WAYS; at most DNS_PCACHE_ENTRIES_MAX) hashing under @seed (random
 * bytes: getrandom). NULL when out of memory or @entries is 0. Free with
 * dns_pcache_free(). Pages are touched as entries are stored.
 */
struct dns_pcache *dns_pcache_new(uint32_t entries, const uint8_t seed[DNS_PCACHE_SEED_LEN]);

/** Accepts NULL. */
void dns_pcache_free(struct dns_pcache *pc);

/**
 * Tests only: every key gets the same tag, so that in a one-set table every
 * lookup relies on the full key comparison alone.
 */
void dns_pcache_collide(struct dns_pcache *pc);

/** Entries the table holds (after rounding). */
uint32_t dns_pcache_capacity(const struct dns_pcache *pc);

/**
 * Looks up @req (@req_len bytes, from @client on listener @listener, for the
 * view of @serial). On a hit writes the stored response into @resp (@resp_cap
 * bytes) with @req's ID and the stored query info into @info (its rrl_name
 * rebased on @req when it pointed into the stored query) and returns the
 * length; else fills @probe for dns_pcache_insert() and returns 0.
 * @serial must name one view: two views never share a serial.
 */
size_t dns_pcache_lookup(struct dns_pcache *pc, struct dns_pcache_probe *probe, uint64_t serial,
                         unsigned listener, const struct sockaddr *client, const uint8_t *req,
                         size_t req_len, uint8_t *resp, size_t resp_cap,
                         struct dns_query_info *info);

/**
 * After a miss: stores @resp (@resp_len bytes) and @info, the answer to @req
 * (the query @probe was filled for), when cacheable; counts it either way.
 */
void dns_pcache_insert(struct dns_pcache *pc, const struct dns_pcache_probe *probe,
                       const uint8_t *req, size_t req_len, const uint8_t *resp, size_t resp_len,
                       const struct dns_query_info *info);

/**
 * A UDP query answered through the cache: a lookup, and on a miss
 * dns_query_process_memo() (same arguments, UDP) and an insert. What the
 * worker calls; @pc must not be NULL.
 */
size_t dns_pcache_process(struct dns_pcache *pc, const struct dns_view *view,
                          struct dns_cookie_memo *memo, unsigned listener, const uint8_t *req,
                          size_t req_len, uint8_t *resp, size_t resp_cap,
                          const struct sockaddr *client, struct dns_query_info *info,
                          uint32_t now_s);

/** Adds the counters of @pc to @out. Any thread. Accepts NULL. */
void dns_pcache_stats_add(const struct dns_pcache *pc, struct dns_pcache_stats *out);

#endif /* DNSD_DNS_PCACHE_H */
