/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_worker.h -- private to dns_server.c and dns_tcp.c: one worker thread's
 * state and the few helpers both files use. Nothing else includes it.
 *
 *   dns_server.c   the epoll loop and its dispatch, UDP batches, the
 *                  mailbox, setup, counters
 *   dns_tcp.c      TCP connections: accept, read/answer/write, idle
 *                  deadlines, the ready list, eviction
 *
 * A worker and everything in it belong to its thread once started; only the
 * mailbox (under w->lock) and the counters (relaxed atomics, one writer) are
 * touched by other threads.
 */
#ifndef DNSD_DNS_WORKER_H
#define DNSD_DNS_WORKER_H

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "common/cm_accept.h"
#include "common/cm_err.h"
#include "common/cm_log.h"
#include "dnsd/dns_cookie.h"
#include "dnsd/dns_pktinfo.h"
#include "dnsd/dns_server.h"

#define UDP_BATCH   32 /* messages per recvmmsg */
#define TCP_MSG_MAX 65535

struct cm_conf;
struct dns_query_info;

_Static_assert(DNS_STAT_MEMBERS == DNS_STAT_REGIONS, "member and region counters interleave");

/*
 * Laid out so that an answer touches few cache lines: what a usual UDP
 * answer bumps (its A or AAAA query, NOERROR, ECS, placement) is one
 * 64-byte run, the latency and RRL counters follow it, and a member's and
 * a region's answers of the same index share 16 bytes (small federations:
 * one line for both). udp_a, udp_aaaa and noerror are kept apart from
 * queries[UDP][A], queries[UDP][AAAA] and responses[NOERROR] (which stay 0
 * for count_query) and added to them by dns_server_stats.
 */
struct worker_stats {
    _Atomic uint64_t udp_a;
    _Atomic uint64_t udp_aaaa;
    _Atomic uint64_t noerror;
    _Atomic uint64_t ecs;
    _Atomic uint64_t placement[DNS_PLACE_COUNT];
    _Atomic uint64_t lat_sum_us;
    _Atomic uint64_t lat_buckets[DNS_STAT_LAT_BUCKETS];
    _Atomic uint64_t rrl[DNS_RRL_ACTION_COUNT];
    _Atomic uint64_t queries[DNS_STAT_TRANSPORT_COUNT][DNS_STAT_QTYPE_COUNT];
    _Atomic uint64_t responses[DNS_STAT_RCODES];
    _Atomic uint64_t truncated;
    _Atomic uint64_t dropped;
    _Atomic uint64_t tcp_accepted;
    _Atomic uint64_t tcp_refused;
    _Atomic uint64_t tcp_closed_idle;
    _Atomic uint64_t tcp_evicted;
    _Atomic uint64_t tcp_source_cap;
    _Atomic uint64_t rrl_limited[DNS_RRL_CLASS_COUNT];
    _Atomic uint64_t answers[DNS_STAT_SERVICES];
    _Atomic uint64_t fail_open[DNS_STAT_SERVICES];
    _Atomic uint64_t fail_closed[DNS_STAT_SERVICES];
    struct {
        _Atomic uint64_t member_answers; /* by member index */
        _Atomic uint64_t region_answers; /* by client region index */
    } by_index[DNS_STAT_MEMBERS];
};

struct dns_worker;

/*
 * What an epoll event is about: the low bits of its data, the rest points to
 * the listener or connection (both aligned to 8) or the worker (mailbox).
 */
enum ep_kind {
    EP_UDP = 0,
    EP_ACCEPT = 1,
    EP_CONN = 2,
    EP_MBOX = 3,
};
#define EP_KIND_MASK 3u

struct listener {
    struct dns_worker *w;
    int fd;
    bool pktinfo; /* UDP on a wildcard address: replies leave from the query's destination */
    struct cm_accept_guard guard; /* TCP only: unwatches fd while accept lacks descriptors */
};

struct tcp_conn; /* dns_tcp.c */

TAILQ_HEAD(conn_list, tcp_conn);

struct dns_worker {
    struct dns_server *srv;
    unsigned id;
    pthread_t thread;
    bool started;
    int epfd;              /* the worker's loop */
    struct dns_view *view; /* one reference; touched only by the worker once started */
    uint64_t view_gen;     /* the last published generation the worker looked at */

    pthread_mutex_t lock;       /* protects the mailbox */
    struct dns_view *mbox_view; /* pending view (one reference), NULL if none */
    uint64_t mbox_gen;          /* the generation mbox_view was handed out as */
    bool mbox_stop;
    int mbox_fd; /* eventfd: written by the main thread after it fills the mailbox */
    bool stopping;
    bool done;         /* the loop returns */
    uint64_t grace_at; /* while stopping: cm_mono_ms() at which the last connections close */

    struct listener *udp; /* owned, one per listen address */
    struct listener *tcp;
    size_t sock_count;

    struct mmsghdr rmsg[UDP_BATCH];
    struct mmsghdr smsg[UDP_BATCH];
    struct iovec riov[UDP_BATCH];
    struct iovec siov[UDP_BATCH];
    struct sockaddr_storage names[UDP_BATCH];
    union dns_pktinfo_ctl rctl[UDP_BATCH]; /* destination address of each query (wildcard) */
    union dns_pktinfo_ctl sctl[UDP_BATCH]; /* source address of each reply (wildcard) */
    unsigned rdirty;                       /* rmsg slots the last recvmmsg filled */
    int rmode;                             /* -1, or the pktinfo mode rmsg is set for */
    uint8_t *rbufs;                        /* owned, UDP_BATCH x UDP_REQ_MAX */
    uint8_t *sbufs;                        /* owned, UDP_BATCH x resp_cap */
    size_t resp_cap;
    struct dns_rrl *rrl;   /* owned; NULL when dnsd.rrl is disabled */
    struct dns_qlog *qlog; /* borrowed from the server; NULL when the query log is off */
    struct dns_cookie_memo cookie_memo; /* cookies made and checked lately (dns_cookie.h) */
    struct dns_pcache *pcache; /* owned UDP packet cache (its own counters); NULL when off */

    /* Least recently used first, which is also earliest idle deadline first. */
    struct conn_list active;
    struct conn_list free;
    struct conn_list ready; /* spent their query budget with queries left */
    size_t ready_count;
    uint32_t round;    /* loop iterations, for w->ready */
    size_t conn_count; /* allocated, <= max_conns */
    size_t active_count;
    size_t max_conns;
    size_t max_per_source;     /* 0 = no per-source cap */
    struct dns_src_table *src; /* owned; NULL without a per-source cap */
    uint64_t idle_ms;
    unsigned paused_count; /* TCP listeners the accept guard holds paused */

    struct cm_log_ratelimit rl;
    struct worker_stats stats;
};

/* Single writer per counter: a relaxed load + store is enough and avoids a locked add. */
static inline void bump(_Atomic uint64_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static inline uint64_t ep_tag(void *p, enum ep_kind k)
{
    assert(((uintptr_t)p & EP_KIND_MASK) == 0);
    return (uint64_t)(uintptr_t)p | k;
}

static inline int ep_ctl(struct dns_worker *w, int op, int fd, uint32_t events, uint64_t data)
{
    struct epoll_event ev = {.events = events, .data.u64 = data};

    return epoll_ctl(w->epfd, op, fd, &ev) == 0 ? CM_OK : cm_err_from_errno(errno);
}

/* ---- dns_server.c ---- */

/* count_query() for dns_tcp.c (UDP's calls stay file-local). */
void dns_worker_count_query(struct dns_worker *w, enum dns_stat_transport t,
                            const struct dns_query_info *info, size_t resp_len);

/* ---- dns_tcp.c ---- */

/*
 * The TCP fields of @w from dnsd.tcp_*: the lists, the caps, the per-source
 * table. Called before anything in worker setup can fail (dns_tcp_fini()
 * walks the lists); fails only with CM_ENOMEM, @err set.
 */
int dns_tcp_init(struct dns_worker *w, const struct cm_conf *conf, char *err, size_t errlen);

/* Closes every connection and frees the pool and the per-source table. */
void dns_tcp_fini(struct dns_worker *w);

/* The accept guard of TCP listener @l (named after @addr in logs). */
int dns_tcp_guard_init(struct dns_worker *w, struct listener *l, const char *addr);

/* TCP listener @l is readable: up to a budget of accepts. */
void dns_tcp_accept(struct listener *l);

/* An epoll event for connection @c. May close @c. */
void dns_tcp_event(struct tcp_conn *c, uint32_t events);

/* Gives the connections on w->ready their round (call when w->ready_count > 0). */
void dns_tcp_ready_round(struct dns_worker *w);

/*
 * Closes the connections whose idle deadline is at or before @now and
 * resumes the paused listeners whose time has come; returns the next TCP
 * deadline (cm_mono_ms()), UINT64_MAX when there is none.
 */
uint64_t dns_tcp_timers(struct dns_worker *w, uint64_t now);

/* Stop: each connection answers what it holds, then flushes and closes. */
void dns_tcp_stop(struct dns_worker *w);

/* Closes every connection at once (the stop grace is over). */
void dns_tcp_close_all(struct dns_worker *w);

#endif /* DNSD_DNS_WORKER_H */
