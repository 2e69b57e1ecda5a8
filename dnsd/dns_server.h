/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_server.h -- the network side of dnsd: worker threads, UDP and TCP.
 *
 *   main thread                         worker 0..N-1 (own epoll loop each)
 *   -----------                         -----------------------------------
 *   dns_server_new: opens, per worker   UDP: recvmmsg batch -> dns_query_process
 *     and per listen address, one UDP        -> sendmmsg, 4 batches per wakeup
 *     socket and one TCP listener with  TCP: accept (capped) -> conn from a
 *     SO_REUSEPORT (the kernel spreads       per-worker pool (<= tcp_max_conns;
 *     the load)                              when full, the least recently used
 *                                            idle or partial one goes; a cap per
 *                                            source), 2-byte framing, pipelined
 *                                            queries answered in order, one
 *                                            deadline per query cycle
 *   dns_server_set_view(view) --------->
 *     mailbox + eventfd per worker       view swap between two events
 *   dns_server_stats: sums the workers'  single-writer counters
 *
 * Nothing on the query path allocates: each worker preallocates its UDP batch
 * and response buffers at start; TCP connections come from the worker's pool
 * (allocated on first use, then recycled), each with a fixed read buffer (one
 * 65535-byte message) and write buffer. Queries never wait on the main
 * thread: a new view is delivered through a mailbox and taken between two
 * events; the worker drops its old view's reference itself. With the
 * query log on (dns_qlog.h), a sampled query is copied into the worker's own
 * ring, which the main thread drains; a full ring drops the record.
 *
 * With dnsd.packet_cache, each worker answers a UDP query it answered before
 * (same bytes after the ID, same client address, same view) from its own
 * packet cache (dns_pcache.h) instead of dns_query_process.
 *
 * Listen addresses and the worker count (dns_server_conf_matches) and the
 * packet cache size are fixed at start: a reload that changes them is
 * logged as needing a restart; the old sockets and caches stay.
 */
#ifndef DNSD_DNS_SERVER_H
#define DNSD_DNS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnsd/dns_geo.h"
#include "dnsd/dns_rrl.h"

struct cm_conf;
struct dns_pcache_stats;
struct dns_qlog;
struct dns_server;
struct dns_view;

enum dns_stat_qtype {
    DNS_STAT_QTYPE_A = 0,
    DNS_STAT_QTYPE_AAAA = 1,
    DNS_STAT_QTYPE_ANY = 2,
    DNS_STAT_QTYPE_CNAME = 3,
    DNS_STAT_QTYPE_MX = 4,
    DNS_STAT_QTYPE_NS = 5,
    DNS_STAT_QTYPE_PTR = 6,
    DNS_STAT_QTYPE_SOA = 7,
    DNS_STAT_QTYPE_SRV = 8,
    DNS_STAT_QTYPE_TXT = 9,
    DNS_STAT_QTYPE_OTHER = 10, /* everything else, and no parsable question */
    DNS_STAT_QTYPE_COUNT = 11,
};

enum dns_stat_transport {
    DNS_STAT_UDP = 0,
    DNS_STAT_TCP = 1,
    DNS_STAT_TRANSPORT_COUNT = 2,
};

#define DNS_STAT_RCODES      25   /* rcodes 0..23 (BADCOOKIE) counted each; 24 = anything higher */
#define DNS_STAT_SERVICES    1024 /* federated services counted by table index */
#define DNS_STAT_MEMBERS     256  /* members counted by conf index */
#define DNS_STAT_REGIONS     256  /* client regions counted by conf index */
#define DNS_STAT_LAT_BUCKETS 12   /* processing-time histogram: DNS_STAT_LAT_BOUNDS_US and +Inf */

/* Sums over all workers since start. Counters are read racily: each value is
 * exact, but the set is not one instant. Service counters are indexed by the
 * federated table's service index (dns_fed_service_key of the current view);
 * a reload that reorders services mixes their history. */
struct dns_server_stats {
    uint64_t queries[DNS_STAT_TRANSPORT_COUNT][DNS_STAT_QTYPE_COUNT];
    uint64_t responses[DNS_STAT_RCODES]; /* by rcode, responses actually produced */
    uint64_t truncated;                  /* responses with TC=1 */
    uint64_t ecs;                        /* queries whose ECS option was used */
    uint64_t dropped;                    /* packets not answered, or not sent */
    uint64_t tcp_accepted;               /* TCP connections accepted */
    uint64_t tcp_refused;                /* refused: table or source full of busy ones */
    uint64_t tcp_closed_idle;            /* closed by the idle timeout (query deadline) */
    uint64_t tcp_evicted;                /* idle or partial, closed for a newcomer */
    uint64_t tcp_source_cap;             /* newcomers from a source at its cap */
    uint64_t answers[DNS_STAT_SERVICES]; /* federated answers by service index */
    uint64_t fail_open[DNS_STAT_SERVICES];
    uint64_t fail_closed[DNS_STAT_SERVICES];
    uint64_t member_answers[DNS_STAT_MEMBERS]; /* federated answers by member index */
    uint64_t rrl[DNS_RRL_ACTION_COUNT];        /* UDP responses by RRL action (when enabled) */
    uint64_t rrl_limited[DNS_RRL_CLASS_COUNT]; /* slipped or dropped, by response class */
    uint64_t placement[DNS_PLACE_COUNT];       /* federated answers by what placed the client */
    uint64_t region_answers[DNS_STAT_REGIONS]; /* federated answers by client region index */
    /* UDP processing time per query (a batch's time shared by its queries):
     * non-cumulative bucket counts (the last is +Inf) and the sum in us. */
    uint64_t lat_buckets[DNS_STAT_LAT_BUCKETS];
    uint64_t lat_sum_us;
};

/** Upper bounds in microseconds of the processing-time buckets but the last (+Inf). */
extern const uint32_t dns_stat_lat_bounds_us[DNS_STAT_LAT_BUCKETS - 1];

/** Name of a qtype bucket ("A", "AAAA", ..., "other"), static. */
const char *dns_stat_qtype_name(enum dns_stat_qtype q);

/**
 * Opens every socket for @conf->dnsd (workers x listen addresses x UDP+TCP)
 * and prepares the workers with a reference to @view each; no thread runs
 * yet. On failure returns a CM_* code with the address and reason in @err.
 */
int dns_server_new(const struct cm_conf *conf, struct dns_view *view, struct dns_server **out,
                   char *err, size_t errlen);

/** Starts the worker threads. CM_* code with a reason in @err. */
int dns_server_start(struct dns_server *srv, char *err, size_t errlen);

/**
 * Hands @view to every worker (one reference taken per worker; the caller
 * keeps its own). Main thread only; never blocks on the workers. Once it
 * returns, each worker answers from @view from its next UDP batch or
 * wakeup on; before, no worker answers from @view while another could
 * still answer from an older one (it is published to all mailboxes at once).
 */
void dns_server_set_view(struct dns_server *srv, struct dns_view *view);

/**
 * True when @conf has the same listen addresses and worker count as the
 * running server, i.e. a reload needs no new sockets.
 */
bool dns_server_conf_matches(const struct dns_server *srv, const struct cm_conf *conf);

/** Sums the workers' counters into @out. Any thread. */
void dns_server_stats(const struct dns_server *srv, struct dns_server_stats *out);

/** Sums the workers' packet cache counters (dns_pcache.h) into @out. Any thread. */
void dns_server_pcache_stats(const struct dns_server *srv, struct dns_pcache_stats *out);

/**
 * The descriptors dnsd may hold with @conf: per worker its TCP connections
 * (dnsd.tcp_max_conns) and sockets, plus the control API and a reserve
 * (cm_nofile.h). How the sum is made goes into @why (@cap bytes, 160 is enough).
 */
uint64_t dns_server_nofile_need(const struct cm_conf *conf, char *why, size_t cap);

/**
 * The sampled query log (dns_qlog.h), borrowed: made at dns_server_new()
 * when dnsd.query_log.sample is set and the log level is debug, else NULL.
 * The main thread drains it.
 */
struct dns_qlog *dns_server_qlog(const struct dns_server *srv);

/** Number of listen addresses (fixed at start). */
size_t dns_server_listen_count(const struct dns_server *srv);

/**
 * Accept failures for want of descriptors or memory (cm_accept_guard) on the
 * TCP listeners of listen address @i (< dns_server_listen_count), summed over
 * the workers; its "ip:port" goes into @name (@cap bytes, CM_ADDR_STRLEN is
 * enough). Any thread.
 */
uint64_t dns_server_accept_exhausted(const struct dns_server *srv, size_t i, char *name,
                                     size_t cap);

/**
 * Graceful stop: every worker closes its listeners, answers what is already
 * queued (bounded: one UDP budget, TCP output flushed for at most
 * DNS_SERVER_STOP_GRACE_MS), then its thread is joined. Idempotent.
 */
void dns_server_stop(struct dns_server *srv);
#define DNS_SERVER_STOP_GRACE_MS 1000

/** Stops if needed, closes everything, drops the view references. Accepts NULL. */
void dns_server_free(struct dns_server *srv);

#endif /* DNSD_DNS_SERVER_H */
