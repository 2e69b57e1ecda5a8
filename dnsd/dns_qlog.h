/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_qlog.h -- the sampled debug query log (dnsd.query_log with
 * --log-level debug): one line per sampled query with the client, its ECS
 * source and the scope answered, the region and what placed the client, the
 * name, type, answer and rcode.
 *
 *   worker i (query path)                    main thread (event loop)
 *   ---------------------                    ------------------------
 *   response final -> dns_qlog_query()       timer, every DNS_QLOG_DRAIN_MS:
 *     count % sample != 0: return              dns_qlog_drain()
 *     slot = ring i (cm_ring) -- full:           record -> ldns parse of the
 *            dropped++, return                   copied response -> one line
 *     copy client, info, region name and           ("query: client=... name=...")
 *     the response bytes; commit
 *
 * Off (sample 0 or a level above debug) there is no dns_qlog at all and the
 * query path pays one predictable branch on a NULL pointer. On, a worker
 * never allocates, locks or waits: it counts, and for a sampled query copies
 * at most DNS_QLOG_RESP_MAX bytes into a preallocated slot, or counts a drop
 * when its ring is full. The sample is a per-worker counter, not a random
 * draw: with one worker exactly every Nth query is logged.
 */
#ifndef DNSD_DNS_QLOG_H
#define DNSD_DNS_QLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct dns_qlog;
struct dns_query_info;
struct dns_view;

#define DNS_QLOG_DRAIN_MS  100  /* the main loop writes the rings' records this often */
#define DNS_QLOG_RESP_MAX  1232 /* response bytes kept; a longer one keeps its question */
#define DNS_QLOG_LINE_MAX  1800 /* a formatted line's message, at most */
#define DNS_QLOG_DRAIN_MAX 4096 /* records written per worker per drain */

/**
 * A log for @workers producers with @ring_size records each, logging every
 * @sample-th query of each worker (@sample > 0). NULL when out of memory.
 */
struct dns_qlog *dns_qlog_new(unsigned workers, uint32_t ring_size, uint32_t sample);

/** Accepts NULL. The workers must have stopped. */
void dns_qlog_free(struct dns_qlog *ql);

/** A new sample rate (0 pauses the log). Main thread; workers see it at their next query. */
void dns_qlog_set_sample(struct dns_qlog *ql, uint32_t sample);

/**
 * Worker @worker's hook, called once per query whose response is final:
 * @resp holds the response as built (@built_len bytes, 0 = nothing to send:
 * not logged), of which @sent_len went out (0: dropped by rate limiting;
 * shorter: slipped, @resp then holds the slipped form). @client (the peer),
 * @info and @view (whose conf names the region) are read during the call.
 * Never blocks, never allocates. Worker @worker's thread only.
 */
void dns_qlog_query(struct dns_qlog *ql, unsigned worker, const struct dns_view *view,
                    const struct sockaddr *client, bool tcp, const struct dns_query_info *info,
                    const uint8_t *resp, size_t built_len, size_t sent_len);

/** One formatted line ("query: client=... rcode=..."), borrowed for the call. */
typedef void dns_qlog_line_fn(const char *line, void *arg);

/**
 * Formats the records waiting in every ring, at most DNS_QLOG_DRAIN_MAX per
 * worker, and hands each line to @fn (NULL: cm_log_debug). Returns the number
 * of records. Main thread (one consumer).
 */
size_t dns_qlog_drain(struct dns_qlog *ql, dns_qlog_line_fn *fn, void *arg);

/** Records written (drained) since start. Main thread. */
uint64_t dns_qlog_logged(const struct dns_qlog *ql);

/** Sampled records dropped because a worker's ring was full, summed. Any thread. */
uint64_t dns_qlog_dropped(const struct dns_qlog *ql);

#endif /* DNSD_DNS_QLOG_H */
