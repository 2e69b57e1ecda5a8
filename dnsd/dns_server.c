/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_server.c -- worker threads, UDP (recvmmsg/sendmmsg batches) and TCP
 * (RFC 7766: framing, pipelining, idle timeout, bounded buffers).
 *
 * Each worker owns its epoll loop, sockets, buffers, connection pool and
 * counters; the only thing shared with the main thread is the mailbox (a
 * mutex-protected pending view and stop flag, signalled through an eventfd
 * the worker's loop watches).
 *
 * The loop is epoll itself, not libevent: under load a wakeup carries one or
 * two queries, so what a wakeup costs besides them is paid almost per query.
 * Each registered descriptor carries a tagged pointer (what it is, and its
 * listener or connection), so dispatch is one switch. Timers are deadlines
 * the loop compares with the clock, read only while one exists:
 *
 *   TCP idle      conn->idle_at, armed at accept and at each answered query,
 *                 which also move the connection to the tail of w->active:
 *                 the head holds the earliest deadline
 *   accept guard  cm_accept_guard_resume_at() of a paused TCP listener
 *   stop grace    w->grace_at while stopping
 *
 * epoll_wait waits until the earliest (forever when there is none), or not
 * at all while a TCP connection that spent its query budget waits on
 * w->ready for its next round.
 */
#include "dnsd/dns_server.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/cm_accept.h"
#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_log.h"
#include "common/cm_lpm.h"
#include "common/cm_net.h"
#include "common/cm_nofile.h"
#include "common/cm_time.h"
#include "dnsd/dns_cookie.h"
#include "dnsd/dns_pcache.h"
#include "dnsd/dns_pktinfo.h"
#include "dnsd/dns_qlog.h"
#include "dnsd/dns_query.h"
#include "dnsd/dns_rrl.h"
#include "dnsd/dns_rrset.h"
#include "dnsd/dns_tcp_src.h"
#include "dnsd/dns_view.h"

#define UDP_BATCH         32   /* messages per recvmmsg */
#define UDP_REQ_MAX       4096 /* a larger UDP query is dropped */
#define UDP_BUDGET        4    /* batches per wakeup, then back to the loop */
#define TCP_ACCEPT_BUDGET 16   /* accepts per wakeup */
#define TCP_QUERY_BUDGET  32   /* queries per connection per wakeup */
#define TCP_MSG_MAX       65535
#define TCP_RBUF          (TCP_MSG_MAX + 2)
#define TCP_WBUF_MARK     16384 /* stop reading while more output than this is queued */
#define TCP_WBUF          (TCP_WBUF_MARK + TCP_MSG_MAX + 2)
#define TCP_BACKLOG       256
#define WORKER_LOOP_FDS   3  /* epoll, the cross-thread notification, one spare */
#define WORKER_EVENTS     64 /* epoll events taken per wakeup */

/* At most this many least recently used connections are looked at for one to close. */
#define TCP_EVICT_SCAN 16

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

enum conn_state {
    CONN_FREE = 0,    /* in the worker's freelist */
    CONN_OPEN = 1,    /* reading queries and answering them */
    CONN_CLOSING = 2, /* no more reading: flush the answers, then close */
};

struct tcp_conn {
    struct dns_worker *w;
    enum conn_state state;
    int fd;
    bool reading;         /* wants EPOLLIN */
    bool writing;         /* wants EPOLLOUT */
    bool ready;           /* in w->ready */
    bool eof;             /* the peer closed its side: answer what rbuf holds, then close */
    uint32_t watched;     /* the events fd is registered for in epoll, 0 = not registered */
    uint32_t ready_round; /* w->round when it joined w->ready */
    uint64_t idle_at;     /* cm_mono_ms() deadline of this cycle (see the active list) */
    struct sockaddr_storage peer;
    size_t rlen; /* bytes in rbuf: zero or more length-prefixed queries */
    size_t wpos; /* wbuf[wpos, wlen) is still to be sent */
    size_t wlen;
    /* Active list, least recently used first (a cycle starts at accept and at
     * each answered query; reads alone are no use), or the freelist. */
    TAILQ_ENTRY(tcp_conn) link;
    TAILQ_ENTRY(tcp_conn) ready_link; /* in w->ready */
    struct dns_src_node src;          /* in w->src when the per-source cap is on */
    uint8_t rbuf[TCP_RBUF];
    uint8_t wbuf[TCP_WBUF];
};

TAILQ_HEAD(conn_list, tcp_conn);

struct dns_worker {
    struct dns_server *srv;
    unsigned id;
    pthread_t thread;
    bool started;
    int epfd;              /* the worker's loop */
    struct dns_view *view; /* one reference; touched only by the worker once started */

    pthread_mutex_t lock;       /* protects the mailbox */
    struct dns_view *mbox_view; /* pending view (one reference), NULL if none */
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

struct dns_server {
    struct dns_worker *workers; /* owned array */
    size_t worker_count;
    struct cm_addr *listen; /* owned copy of dnsd.listen */
    size_t listen_count;
    struct cm_lpm *rrl_exempt; /* owned, read by every worker; NULL without RRL */
    struct dns_qlog *qlog;     /* owned, one ring per worker; NULL when the query log is off */
    bool started;
    bool stopped;
};

static const char *const qtype_names[DNS_STAT_QTYPE_COUNT] = {
    "A", "AAAA", "ANY", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT", "other",
};

const char *dns_stat_qtype_name(enum dns_stat_qtype q)
{
    return q < DNS_STAT_QTYPE_COUNT ? qtype_names[q] : "other";
}

/* Single writer per counter: a relaxed load + store is enough and avoids a locked add. */
static inline void bump(_Atomic uint64_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static enum dns_stat_qtype qtype_bucket(uint16_t qtype)
{
    switch (qtype) {
    case DNS_TYPE_A:
        return DNS_STAT_QTYPE_A;
    case DNS_TYPE_AAAA:
        return DNS_STAT_QTYPE_AAAA;
    case DNS_TYPE_ANY:
        return DNS_STAT_QTYPE_ANY;
    case DNS_TYPE_CNAME:
        return DNS_STAT_QTYPE_CNAME;
    case DNS_TYPE_MX:
        return DNS_STAT_QTYPE_MX;
    case DNS_TYPE_NS:
        return DNS_STAT_QTYPE_NS;
    case DNS_TYPE_PTR:
        return DNS_STAT_QTYPE_PTR;
    case DNS_TYPE_SOA:
        return DNS_STAT_QTYPE_SOA;
    case DNS_TYPE_SRV:
        return DNS_STAT_QTYPE_SRV;
    case DNS_TYPE_TXT:
        return DNS_STAT_QTYPE_TXT;
    default:
        return DNS_STAT_QTYPE_OTHER;
    }
}

static void count_query(struct dns_worker *w, enum dns_stat_transport t,
                        const struct dns_query_info *info, size_t resp_len)
{
    struct worker_stats *s = &w->stats;

    /* A and AAAA over UDP, most queries, without the switch and beside the
     * other counters of a usual answer */
    if (t == DNS_STAT_UDP && info->qtype == DNS_TYPE_A)
        bump(&s->udp_a);
    else if (t == DNS_STAT_UDP && info->qtype == DNS_TYPE_AAAA)
        bump(&s->udp_aaaa);
    else
        bump(&s->queries[t][qtype_bucket(info->qtype)]);
    if (resp_len == 0) {
        bump(&s->dropped);
        return;
    }
    if (info->rcode == 0) /* NOERROR */
        bump(&s->noerror);
    else
        bump(&s->responses[info->rcode < DNS_STAT_RCODES ? info->rcode : DNS_STAT_RCODES - 1]);
    if (info->tc)
        bump(&s->truncated);
    if (info->ecs)
        bump(&s->ecs);
    if (!info->federated)
        return;
    if (info->service >= 0 && info->service < DNS_STAT_SERVICES) {
        bump(&s->answers[info->service]);
        if (info->fail_open)
            bump(&s->fail_open[info->service]);
        if (info->fail_closed)
            bump(&s->fail_closed[info->service]);
    }
    if (info->member >= 0 && info->member < DNS_STAT_MEMBERS)
        bump(&s->by_index[info->member].member_answers);
    if (info->placement < DNS_PLACE_COUNT)
        bump(&s->placement[info->placement]);
    if (info->region < DNS_STAT_REGIONS)
        bump(&s->by_index[info->region].region_answers);
}

const uint32_t dns_stat_lat_bounds_us[DNS_STAT_LAT_BUCKETS - 1] = {1,   2,   5,   10,   20,  50,
                                                                   100, 200, 500, 1000, 5000};

/* Counts @n queries that took @us together: each gets the average. Two clock
 * reads per batch, none per query, so the hot path stays as it is. */
static void count_batch_time(struct dns_worker *w, unsigned n, uint64_t us)
{
    uint64_t each = us / n;
    unsigned b = 0;

    while (b < DNS_STAT_LAT_BUCKETS - 1 && each > dns_stat_lat_bounds_us[b])
        b++;
    atomic_fetch_add_explicit(&w->stats.lat_buckets[b], n, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->stats.lat_sum_us, us, memory_order_relaxed);
}

/*
 * The query carried a valid server cookie (RFC 7873), which exempts it from
 * RRL: a spoofed source cannot know the cookie.
 */
static bool query_cookie_valid(const struct dns_query_info *info)
{
    return info->cookie_valid;
}

/*
 * RRL for one UDP response of @len bytes in @resp: returns the length to send
 * (0 = drop). TCP is never limited: its source address is proven.
 */
static size_t udp_rrl(struct dns_worker *w, const struct sockaddr *client,
                      struct dns_query_info *info, uint8_t *resp, size_t len, uint32_t now_s)
{
    enum dns_rrl_action a;

    if (w->rrl == NULL || len == 0)
        return len;
    a = dns_rrl_check_hashed(w->rrl, client, info->rrl_class, info->rrl_name_hash,
                             query_cookie_valid(info), now_s);
    bump(&w->stats.rrl[a]);
    if (a == DNS_RRL_PASS || a == DNS_RRL_EXEMPT)
        return len;
    bump(&w->stats.rrl_limited[info->rrl_class < DNS_RRL_CLASS_COUNT ? info->rrl_class
                                                                     : DNS_RRL_ERROR]);
    if (a == DNS_RRL_DROP)
        return 0;
    info->tc = true;
    return dns_rrl_slip(resp, len);
}

static void query_info_init(struct dns_query_info *info)
{
    memset(info, 0, sizeof(*info));
    info->service = -1;
}

/* ---- epoll ---- */

static uint64_t ep_tag(void *p, enum ep_kind k)
{
    assert(((uintptr_t)p & EP_KIND_MASK) == 0);
    return (uint64_t)(uintptr_t)p | k;
}

static int ep_ctl(struct dns_worker *w, int op, int fd, uint32_t events, uint64_t data)
{
    struct epoll_event ev = {.events = events, .data.u64 = data};

    return epoll_ctl(w->epfd, op, fd, &ev) == 0 ? CM_OK : cm_err_from_errno(errno);
}

/* epoll_wait as a bare system call, for the reason given at udp_recvmmsg(). */
static int ep_wait(int epfd, struct epoll_event *ev, int n, int timeout_ms)
{
    return (int)syscall(SYS_epoll_pwait, epfd, ev, n, timeout_ms, NULL, _NSIG / 8);
}

/* ---- UDP ---- */

/*
 * recvmmsg and sendmmsg as bare system calls. glibc's wrappers are
 * cancellation points: in a threaded process each call brackets the system
 * call with two atomic operations, which cost more than the rest of a one
 * query batch's bookkeeping. Workers are never cancelled.
 */
static int udp_recvmmsg(int fd, struct mmsghdr *v, unsigned n)
{
    return (int)syscall(SYS_recvmmsg, fd, v, n, MSG_DONTWAIT, NULL);
}

static int udp_sendmmsg(int fd, struct mmsghdr *v, unsigned n)
{
    return (int)syscall(SYS_sendmmsg, fd, v, n, MSG_DONTWAIT);
}

static void udp_send(struct dns_worker *w, int fd, unsigned count)
{
    unsigned sent = 0;

    while (sent < count) {
        int n = udp_sendmmsg(fd, &w->smsg[sent], count - sent);

        if (n == -1) {
            int e = errno;

            if (e == EINTR)
                continue;
            if (e == EAGAIN || e == EWOULDBLOCK || e == ENOBUFS) {
                for (; sent < count; sent++)
                    bump(&w->stats.dropped);
                return;
            }
            /* This one destination failed (e.g. unreachable): skip it. */
            cm_log_ratelimited(&w->rl, CM_LOG_WARN, "worker=%u udp send: %s", w->id,
                               cm_strerror(cm_err_from_errno(e)));
            bump(&w->stats.dropped);
            sent++;
            continue;
        }
        sent += (unsigned)n;
    }
}

/* The parts of the recvmmsg and sendmmsg slots that never change. */
static void udp_slots_init(struct dns_worker *w)
{
    for (unsigned i = 0; i < UDP_BATCH; i++) {
        w->riov[i].iov_base = w->rbufs + (size_t)i * UDP_REQ_MAX;
        w->riov[i].iov_len = UDP_REQ_MAX;
        w->rmsg[i].msg_hdr.msg_name = &w->names[i];
        w->rmsg[i].msg_hdr.msg_iov = &w->riov[i];
        w->rmsg[i].msg_hdr.msg_iovlen = 1;
        w->smsg[i].msg_hdr.msg_iov = &w->siov[i];
        w->smsg[i].msg_hdr.msg_iovlen = 1;
    }
    w->rmode = -1;
}

/*
 * Sets the recvmmsg slots' control areas for @l (destination addresses on a
 * wildcard listener, none otherwise). recvmmsg rewrites only the lengths of
 * the slots it fills, so only those are reset, unless the last batch was
 * read for a listener of the other kind.
 */
static void udp_batch_prepare(struct dns_worker *w, const struct listener *l)
{
    unsigned n = w->rdirty;
    socklen_t ctl_cap = l->pktinfo ? sizeof(w->rctl[0].buf) : 0;

    if (w->rmode != (int)l->pktinfo) {
        n = UDP_BATCH;
        w->rmode = l->pktinfo;
        for (unsigned i = 0; i < n; i++)
            w->rmsg[i].msg_hdr.msg_control = l->pktinfo ? w->rctl[i].buf : NULL;
    }
    for (unsigned i = 0; i < n; i++) {
        w->rmsg[i].msg_hdr.msg_namelen = sizeof(w->names[i]);
        w->rmsg[i].msg_hdr.msg_controllen = ctl_cap;
    }
    w->rdirty = 0;
}

/*
 * Answers received message @i into sendmmsg slot @out; returns true when
 * there is something to send (RRL and pktinfo applied), false to drop.
 */
static bool udp_answer(struct dns_worker *w, const struct listener *l, unsigned i, unsigned out,
                       uint32_t wall_s, uint32_t mono_s)
{
    const struct sockaddr *client = (const struct sockaddr *)&w->names[i];
    struct msghdr *h = &w->rmsg[i].msg_hdr, *sh = &w->smsg[out].msg_hdr;
    uint8_t *resp = w->sbufs + (size_t)out * w->resp_cap;
    struct dns_query_info info; /* dns_query_process() fills it */
    size_t built, len, ctl_len = 0;

    if ((h->msg_flags & MSG_TRUNC) != 0) {
        bump(&w->stats.queries[DNS_STAT_UDP][DNS_STAT_QTYPE_OTHER]);
        bump(&w->stats.dropped);
        return false;
    }
    if (l->pktinfo) {
        ctl_len = dns_pktinfo_reply(h, &w->sctl[out]);
        if (ctl_len == 0) {
            cm_log_ratelimited(&w->rl, CM_LOG_WARN,
                               "worker=%u udp: query to a wildcard listener without its "
                               "destination address; not answered",
                               w->id);
            bump(&w->stats.queries[DNS_STAT_UDP][DNS_STAT_QTYPE_OTHER]);
            bump(&w->stats.dropped);
            return false;
        }
    }
    if (w->pcache != NULL)
        built = dns_pcache_process(w->pcache, w->view, &w->cookie_memo, (unsigned)(l - w->udp),
                                   w->riov[i].iov_base, w->rmsg[i].msg_len, resp, w->resp_cap,
                                   client, &info, wall_s);
    else
        built = dns_query_process_memo(w->view, &w->cookie_memo, w->riov[i].iov_base,
                                       w->rmsg[i].msg_len, resp, w->resp_cap, client, false, &info,
                                       wall_s);
    len = udp_rrl(w, client, &info, resp, built, mono_s);
    count_query(w, DNS_STAT_UDP, &info, len);
    if (w->qlog != NULL)
        dns_qlog_query(w->qlog, w->id, w->view, client, false, &info, resp, built, len);
    if (len == 0)
        return false;
    w->siov[out].iov_base = resp;
    w->siov[out].iov_len = len;
    sh->msg_name = &w->names[i];
    sh->msg_namelen = h->msg_namelen;
    sh->msg_control = ctl_len > 0 ? w->sctl[out].buf : NULL;
    sh->msg_controllen = ctl_len;
    return true;
}

/* One recvmmsg batch: answers it and returns the number of messages read. */
static int udp_batch(struct dns_worker *w, const struct listener *l)
{
    uint32_t wall_s, mono_s = 0;
    unsigned out = 0;
    struct timespec t0, t1;
    int n;

    udp_batch_prepare(w, l);
    n = udp_recvmmsg(l->fd, w->rmsg, UDP_BATCH);
    w->rdirty = n > 0 ? (unsigned)n : 0;
    if (n == -1) {
        int e = errno;

        if (e != EAGAIN && e != EWOULDBLOCK && e != EINTR)
            cm_log_ratelimited(&w->rl, CM_LOG_WARN, "worker=%u udp receive: %s", w->id,
                               cm_strerror(cm_err_from_errno(e)));
        return 0;
    }
    /* One clock read per batch each: wall seconds for cookie timestamps, a
     * monotonic one for the rate limiter's buckets and the processing time
     * (clock_gettime itself: its seconds are the buckets', no division). */
    wall_s = (uint32_t)time(NULL);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    mono_s = (uint32_t)t0.tv_sec;
    for (int i = 0; i < n; i++) {
        if (udp_answer(w, l, (unsigned)i, out, wall_s, mono_s))
            out++;
    }
    if (n > 0) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        count_batch_time(w, (unsigned)n,
                         (uint64_t)((int64_t)(t1.tv_sec - t0.tv_sec) * 1000000 +
                                    (t1.tv_nsec - t0.tv_nsec) / 1000));
    }
    if (out > 0)
        udp_send(w, l->fd, out);
    return n;
}

/* A UDP listener is readable: up to UDP_BUDGET batches, then back to the loop. */
static void udp_ready(struct listener *l)
{
    for (int b = 0; b < UDP_BUDGET; b++) {
        if (udp_batch(l->w, l) < UDP_BATCH)
            break;
    }
}

/* ---- TCP ---- */

static void ready_remove(struct tcp_conn *c);

static void conn_close(struct tcp_conn *c)
{
    struct dns_worker *w = c->w;

    assert(c->state != CONN_FREE);
    close(c->fd); /* takes it out of epoll too: nobody else holds it */
    c->fd = -1;
    c->state = CONN_FREE;
    c->watched = 0;
    if (c->ready)
        ready_remove(c);
    if (w->src != NULL)
        dns_src_remove(w->src, &c->src);
    TAILQ_REMOVE(&w->active, c, link);
    TAILQ_INSERT_HEAD(&w->free, c, link);
    w->active_count--;
    if (w->stopping && w->active_count == 0)
        w->done = true;
}

/*
 * Brings the epoll registration of @c in line with reading and writing (a
 * system call only when they changed). Level-triggered: a connection that
 * wants neither is taken out, so that a hang-up cannot wake the loop in vain.
 */
static void conn_watch(struct tcp_conn *c)
{
    uint32_t want = (c->reading ? (uint32_t)EPOLLIN : 0u) | (c->writing ? (uint32_t)EPOLLOUT : 0u);
    int op = c->watched == 0 ? EPOLL_CTL_ADD : want == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
    int rc;

    if (want == c->watched)
        return;
    rc = ep_ctl(c->w, op, c->fd, want, ep_tag(c, EP_CONN));
    if (rc != CM_OK) {
        /* The idle deadline still closes it. */
        cm_log_ratelimited(&c->w->rl, CM_LOG_WARN, "worker=%u tcp: epoll_ctl: %s", c->w->id,
                           cm_strerror(rc));
        return;
    }
    c->watched = want;
}

static void conn_set_reading(struct tcp_conn *c, bool on)
{
    if (on == c->reading)
        return;
    c->reading = on;
    if (!on && c->ready) /* no round to come back to */
        ready_remove(c);
    conn_watch(c);
}

static void conn_set_writing(struct tcp_conn *c, bool on)
{
    if (on == c->writing)
        return;
    c->writing = on;
    conn_watch(c);
}

/* Budget spent with queries left: the next round reads and answers again. */
static void ready_add(struct tcp_conn *c)
{
    struct dns_worker *w = c->w;

    if (c->ready)
        return;
    c->ready = true;
    c->ready_round = w->round;
    TAILQ_INSERT_TAIL(&w->ready, c, ready_link);
    w->ready_count++;
}

static void ready_remove(struct tcp_conn *c)
{
    TAILQ_REMOVE(&c->w->ready, c, ready_link);
    c->ready = false;
    c->w->ready_count--;
}

/* Reading goes on while open, the output is below the mark and rbuf has room. */
static void conn_update_reading(struct tcp_conn *c)
{
    conn_set_reading(c, c->state == CONN_OPEN && !c->eof && c->wlen - c->wpos <= TCP_WBUF_MARK &&
                            c->rlen < TCP_RBUF);
}

/* Writes what it can. May close @c (check c->state afterwards). */
static void conn_flush(struct tcp_conn *c)
{
    while (c->wpos < c->wlen) {
        ssize_t n = write(c->fd, c->wbuf + c->wpos, c->wlen - c->wpos);

        if (n == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                conn_set_writing(c, true);
                return;
            }
            conn_close(c);
            return;
        }
        c->wpos += (size_t)n;
    }
    c->wpos = 0;
    c->wlen = 0;
    if (c->state == CONN_CLOSING) {
        conn_close(c);
        return;
    }
    conn_set_writing(c, false);
}

/* No more queries: flushes what is queued, then closes. May close @c. */
static void conn_finish(struct tcp_conn *c)
{
    c->state = CONN_CLOSING;
    conn_set_reading(c, false);
    if (c->ready)
        ready_remove(c);
    conn_flush(c);
}

/* True when one more maximal answer fits in wbuf (compacting it if needed). */
static bool conn_wbuf_room(struct tcp_conn *c)
{
    if (TCP_WBUF - c->wlen >= TCP_MSG_MAX + 2)
        return true;
    if (c->wpos > 0) {
        memmove(c->wbuf, c->wbuf + c->wpos, c->wlen - c->wpos);
        c->wlen -= c->wpos;
        c->wpos = 0;
    }
    return TCP_WBUF - c->wlen >= TCP_MSG_MAX + 2;
}

/*
 * Answers the complete queries in rbuf, in order, up to the budget, then
 * flushes. May close @c.
 */
static void conn_process(struct tcp_conn *c)
{
    struct dns_worker *w = c->w;
    size_t pos = 0;
    bool answered = false;
    bool more = false;

    for (int budget = TCP_QUERY_BUDGET; c->rlen - pos >= 2; budget--) {
        size_t mlen = ((size_t)c->rbuf[pos] << 8) | c->rbuf[pos + 1];
        struct dns_query_info info;
        size_t len;

        if (mlen < 12) {
            cm_log_debug("worker=%u tcp: message length %zu < 12; closing", w->id, mlen);
            bump(&w->stats.dropped);
            conn_close(c);
            return;
        }
        if (c->rlen - pos < 2 + mlen)
            break;
        if (budget == 0 || !conn_wbuf_room(c)) {
            /* Out of budget or of output room: the next round goes on (when
             * the output leaves at once, no write readiness would call it). */
            more = true;
            break;
        }
        query_info_init(&info);
        len = dns_query_process_memo(
            w->view, &w->cookie_memo, c->rbuf + pos + 2, mlen, c->wbuf + c->wlen + 2, TCP_MSG_MAX,
            (const struct sockaddr *)&c->peer, true, &info, (uint32_t)time(NULL));
        count_query(w, DNS_STAT_TCP, &info, len);
        if (w->qlog != NULL)
            dns_qlog_query(w->qlog, w->id, w->view, (const struct sockaddr *)&c->peer, true, &info,
                           c->wbuf + c->wlen + 2, len, len);
        if (len > 0) {
            c->wbuf[c->wlen] = (uint8_t)(len >> 8);
            c->wbuf[c->wlen + 1] = (uint8_t)len;
            c->wlen += 2 + len;
        }
        pos += 2 + mlen;
        answered = true;
    }
    if (pos > 0) {
        memmove(c->rbuf, c->rbuf + pos, c->rlen - pos);
        c->rlen -= pos;
    }
    if (answered) {
        /* A new cycle: the deadline is armed here and at accept only, never
         * moved by a read, so a peer trickling bytes cannot keep its slot;
         * with the move to the tail, the active list stays in deadline order. */
        c->idle_at = cm_mono_ms() + w->idle_ms;
        TAILQ_REMOVE(&w->active, c, link);
        TAILQ_INSERT_TAIL(&w->active, c, link);
        if (w->src != NULL)
            dns_src_touch(w->src, &c->src);
    }
    conn_flush(c);
    if (c->state == CONN_FREE)
        return;
    if (c->eof && !more) {
        conn_finish(c);
        return;
    }
    conn_update_reading(c);
    /* Queries left: come back next round (above the mark, the write side calls). */
    if (more && (c->reading || (c->eof && c->wlen - c->wpos <= TCP_WBUF_MARK)))
        ready_add(c);
}

/* Readable (or its turn on the ready list): reads what fits, answers. May close @c. */
static void conn_readable(struct tcp_conn *c)
{
    ssize_t n;

    if (c->state != CONN_OPEN)
        return;
    if (c->rlen < TCP_RBUF) {
        n = read(c->fd, c->rbuf + c->rlen, TCP_RBUF - c->rlen);
        if (n == 0) {
            /* The peer is done sending (RFC 7766 6.2.1): what rbuf holds is
             * answered over as many rounds as the budget takes, then flushed
             * and closed. */
            c->eof = true;
            conn_set_reading(c, false);
        } else if (n == -1) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                conn_close(c);
                return;
            }
        } else {
            c->rlen += (size_t)n;
        }
    }
    conn_process(c);
}

static void conn_writable(struct tcp_conn *c)
{
    assert(c->state == CONN_OPEN || c->state == CONN_CLOSING);
    conn_flush(c);
    if (c->state == CONN_OPEN && c->wpos == c->wlen && c->rlen > 0)
        conn_process(c); /* queries waiting for output room */
    else if (c->state == CONN_OPEN)
        conn_update_reading(c);
}

/*
 * An epoll event for @c. A hang-up or error is reported whatever @c asked
 * for: the read (or the write) that asked finds it out.
 */
static void conn_event(struct tcp_conn *c, uint32_t events)
{
    if (c->state == CONN_FREE) /* closed earlier in this wakeup */
        return;
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0 && c->reading) {
        if (c->ready) /* this is its round */
            ready_remove(c);
        conn_readable(c);
        if (c->state == CONN_FREE)
            return;
    }
    if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0 && c->writing)
        conn_writable(c);
}

/*
 * The connections that spent their budget in an earlier round, once each;
 * those that spend it again wait for the next one, after the other sockets.
 */
static void ready_round(struct dns_worker *w)
{
    struct tcp_conn *c;

    while ((c = TAILQ_FIRST(&w->ready)) != NULL && c->ready_round != w->round) {
        ready_remove(c);
        if (c->eof)
            conn_process(c);
        else if (c->reading)
            conn_readable(c);
    }
}

/*
 * Idle (between queries) or partial (holding part of a query): may be closed
 * to make room. A connection with an answer still being written is kept.
 */
static bool conn_evictable(const struct tcp_conn *c)
{
    return c->state == CONN_OPEN && c->wpos == c->wlen;
}

/*
 * Closes the least recently used evictable connection among the first
 * TCP_EVICT_SCAN of the active list; false when they are all busy.
 */
static bool conn_evict_oldest(struct dns_worker *w)
{
    struct tcp_conn *c = TAILQ_FIRST(&w->active);

    for (int i = 0; c != NULL && i < TCP_EVICT_SCAN; i++, c = TAILQ_NEXT(c, link)) {
        if (conn_evictable(c)) {
            bump(&w->stats.tcp_evicted);
            conn_close(c);
            return true;
        }
    }
    return false;
}

/* A connection from the pool; NULL when the pool is full of busy connections. */
static struct tcp_conn *conn_get(struct dns_worker *w)
{
    struct tcp_conn *c = TAILQ_FIRST(&w->free);

    if (c == NULL && w->conn_count < w->max_conns) {
        c = calloc(1, sizeof(*c));
        if (c != NULL) {
            w->conn_count++;
            c->w = w;
            c->fd = -1;
            return c;
        }
    }
    if (c == NULL && conn_evict_oldest(w))
        c = TAILQ_FIRST(&w->free);
    if (c != NULL)
        TAILQ_REMOVE(&w->free, c, link);
    return c;
}

static struct tcp_conn *conn_of_src(struct dns_src_node *n)
{
    return (struct tcp_conn *)(void *)((char *)n - offsetof(struct tcp_conn, src));
}

/*
 * The per-source cap: a newcomer whose source already holds max_per_source
 * connections on this worker takes the place of that source's least recently
 * used evictable one, so a source only ever competes with itself. False when
 * all of them are busy (the newcomer is then refused).
 */
static bool source_make_room(struct dns_worker *w, const struct sockaddr_storage *peer)
{
    struct dns_src_node *n;
    size_t count;

    if (w->src == NULL)
        return true;
    n = dns_src_lookup(w->src, (const struct sockaddr *)peer, &count);
    if (count < w->max_per_source)
        return true;
    bump(&w->stats.tcp_source_cap);
    for (int i = 0; n != NULL && i < TCP_EVICT_SCAN; i++, n = n->next) {
        struct tcp_conn *c = conn_of_src(n);

        if (conn_evictable(c)) {
            conn_close(c);
            return true;
        }
    }
    return false;
}

static void conn_open(struct dns_worker *w, struct tcp_conn *c, int fd,
                      const struct sockaddr_storage *peer)
{
    c->state = CONN_OPEN;
    c->fd = fd;
    c->peer = *peer;
    memset(&c->src, 0, sizeof(c->src));
    if (w->src != NULL)
        dns_src_add(w->src, &c->src, (const struct sockaddr *)peer); /* sized: never full */
    c->rlen = 0;
    c->wpos = 0;
    c->wlen = 0;
    c->reading = false;
    c->writing = false;
    c->ready = false;
    c->eof = false;
    c->watched = 0;
    c->idle_at = cm_mono_ms() + w->idle_ms; /* see conn_process() */
    TAILQ_INSERT_TAIL(&w->active, c, link);
    w->active_count++;
    conn_set_reading(c, true);
}

static void accept_ready(struct listener *l)
{
    struct dns_worker *w = l->w;

    for (int i = 0; i < TCP_ACCEPT_BUDGET; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        struct tcp_conn *c;
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd == -1) {
            int e = errno;

            /* Out of descriptors: the guard pauses this listener (no spinning). */
            if (cm_accept_guard_error(&l->guard, e))
                continue;
            return;
        }
        cm_accept_guard_ok(&l->guard);
        c = source_make_room(w, &ss) ? conn_get(w) : NULL;
        if (c == NULL) {
            bump(&w->stats.tcp_refused);
            close(fd);
            continue;
        }
        bump(&w->stats.tcp_accepted);
        conn_open(w, c, fd, &ss);
    }
}

/* ---- mailbox, stop ---- */

/* Closing a socket takes it out of epoll as well (nobody else holds it). */
static void listeners_close(struct dns_worker *w)
{
    for (size_t i = 0; i < w->sock_count; i++) {
        if (w->udp[i].fd >= 0)
            close(w->udp[i].fd);
        w->udp[i].fd = -1;
        cm_accept_guard_fini(&w->tcp[i].guard); /* no resume after this */
        if (w->tcp[i].fd >= 0)
            close(w->tcp[i].fd);
        w->tcp[i].fd = -1;
    }
    w->paused_count = 0;
}

static void worker_begin_stop(struct dns_worker *w)
{
    struct tcp_conn *c, *next;

    w->stopping = true;
    /* Answer what already sits in the UDP receive queues (one budget), then close. */
    for (size_t i = 0; i < w->sock_count; i++) {
        if (w->udp[i].fd >= 0)
            udp_ready(&w->udp[i]);
    }
    listeners_close(w);
    for (c = TAILQ_FIRST(&w->active); c != NULL; c = next) {
        next = TAILQ_NEXT(c, link);
        if (c->state == CONN_OPEN)
            conn_process(c);
        if (c->state != CONN_FREE)
            conn_finish(c);
    }
    if (w->active_count == 0)
        w->done = true;
    w->grace_at = cm_mono_ms() + DNS_SERVER_STOP_GRACE_MS;
}

/* Resets the eventfd: one read takes every signal written since the last. */
static void mbox_drain(int fd)
{
    uint64_t count;

    while (read(fd, &count, sizeof(count)) == -1 && errno == EINTR) {
    }
}

/* Main thread: wakes the worker to look at its mailbox. */
static void mbox_signal(struct dns_worker *w)
{
    uint64_t one = 1;

    /* EAGAIN means the counter is full: the worker has a wakeup pending anyway. */
    while (write(w->mbox_fd, &one, sizeof(one)) == -1 && errno == EINTR) {
    }
}

static void mbox_ready(struct dns_worker *w)
{
    struct dns_view *view;
    bool stop;

    mbox_drain(w->mbox_fd);
    pthread_mutex_lock(&w->lock);
    view = w->mbox_view;
    w->mbox_view = NULL;
    stop = w->mbox_stop;
    pthread_mutex_unlock(&w->lock);
    if (view != NULL) {
        dns_view_unref(w->view);
        w->view = view;
    }
    if (stop && !w->stopping)
        worker_begin_stop(w);
}

/* ---- the loop ---- */

/* The TCP listener's guard: out of descriptors, it is taken out of epoll a while. */
static void accept_pause(void *arg)
{
    struct listener *l = arg;
    int rc = ep_ctl(l->w, EPOLL_CTL_DEL, l->fd, 0, 0);

    l->w->paused_count++;
    if (rc != CM_OK)
        cm_log_error("worker=%u accept: cannot stop watching the listener: %s", l->w->id,
                     cm_strerror(rc));
}

static void accept_resume(void *arg)
{
    struct listener *l = arg;
    int rc = ep_ctl(l->w, EPOLL_CTL_ADD, l->fd, EPOLLIN, ep_tag(l, EP_ACCEPT));

    l->w->paused_count--;
    if (rc != CM_OK)
        cm_log_error("worker=%u accept: cannot watch the listener again: %s", l->w->id,
                     cm_strerror(rc));
}

/*
 * Fires the timers that are due and returns how long epoll_wait may wait:
 * until the next deadline, 0 while connections wait on the ready list, -1
 * (forever) when there is no timer. The clock is read only when one exists.
 */
static int worker_timers(struct dns_worker *w)
{
    uint64_t now, due = UINT64_MAX;
    struct tcp_conn *c;

    if (TAILQ_EMPTY(&w->active) && w->paused_count == 0 && !w->stopping)
        return w->ready_count > 0 ? 0 : -1;
    now = cm_mono_ms();
    /* The active list is in deadline order: only its head can be due next. */
    while ((c = TAILQ_FIRST(&w->active)) != NULL && c->idle_at <= now) {
        bump(&w->stats.tcp_closed_idle);
        conn_close(c);
    }
    if (c != NULL)
        due = c->idle_at;
    for (size_t i = 0; w->paused_count > 0 && i < w->sock_count; i++) {
        struct cm_accept_guard *g = &w->tcp[i].guard;
        uint64_t at;

        if (cm_accept_guard_poll(g, now))
            continue;
        at = cm_accept_guard_resume_at(g);
        if (at != 0 && at < due)
            due = at;
    }
    if (w->stopping) {
        if (now >= w->grace_at) { /* the grace is over: close what is left */
            while ((c = TAILQ_FIRST(&w->active)) != NULL)
                conn_close(c);
            w->done = true;
            return 0;
        }
        if (w->grace_at < due)
            due = w->grace_at;
    }
    if (w->ready_count > 0)
        return 0;
    if (due == UINT64_MAX)
        return -1;
    return due - now > INT_MAX ? INT_MAX : (int)(due - now);
}

static void worker_dispatch(struct dns_worker *w, const struct epoll_event *e)
{
    void *p = (void *)(uintptr_t)(e->data.u64 & ~(uint64_t)EP_KIND_MASK);
    struct listener *l = p;

    switch ((enum ep_kind)(e->data.u64 & EP_KIND_MASK)) {
    case EP_UDP:
        if (l->fd >= 0) /* not closed earlier in this wakeup */
            udp_ready(l);
        break;
    case EP_ACCEPT:
        if (l->fd >= 0 && !cm_accept_guard_paused(&l->guard))
            accept_ready(l);
        break;
    case EP_CONN:
        conn_event(p, e->events);
        break;
    case EP_MBOX:
        mbox_ready(w);
        break;
    }
}

static void *worker_main(void *arg)
{
    struct dns_worker *w = arg;
    struct epoll_event ev[WORKER_EVENTS];

    for (;;) {
        int timeout = worker_timers(w);
        int n;

        if (w->done)
            break;
        n = ep_wait(w->epfd, ev, WORKER_EVENTS, timeout);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            cm_log_error("worker=%u epoll_wait: %s; the worker stops", w->id,
                         cm_strerror(cm_err_from_errno(errno)));
            break;
        }
        w->round++;
        for (int i = 0; i < n; i++)
            worker_dispatch(w, &ev[i]);
        if (w->ready_count > 0)
            ready_round(w);
    }
    return NULL;
}

/* ---- setup ---- */

static int listener_guard_init(struct dns_worker *w, struct listener *l, const char *addr)
{
    char name[CM_ACCEPT_NAME_MAX];

    snprintf(name, sizeof(name), "dns tcp %s worker=%u", addr, w->id);
    return cm_accept_guard_init(&l->guard, NULL, name, accept_pause, accept_resume, l);
}

static int worker_open_sockets(struct dns_server *srv, struct dns_worker *w, char *err,
                               size_t errlen)
{
    for (size_t i = 0; i < srv->listen_count; i++) {
        const struct cm_addr *a = &srv->listen[i];
        char name[CM_ADDR_STRLEN];
        int ufd, tfd, rc;

        cm_addr_format((const struct sockaddr *)&a->ss, name, sizeof(name));
        ufd = cm_net_listen(a, SOCK_DGRAM, true, 0);
        if (ufd < 0) {
            snprintf(err, errlen, "dnsd.listen %s: cannot bind UDP: %s", name, cm_strerror(ufd));
            return ufd;
        }
        w->udp[i].fd = ufd;
        w->udp[i].pktinfo = dns_pktinfo_wildcard(a);
        if (w->udp[i].pktinfo) {
            rc = dns_pktinfo_enable(ufd, a->ss.ss_family);

            if (rc != CM_OK) {
                snprintf(err, errlen, "dnsd.listen %s: cannot ask for destination addresses: %s",
                         name, cm_strerror(rc));
                return rc;
            }
        }
        tfd = cm_net_listen(a, SOCK_STREAM, true, TCP_BACKLOG);
        if (tfd < 0) {
            snprintf(err, errlen, "dnsd.listen %s: cannot listen on TCP: %s", name,
                     cm_strerror(tfd));
            return tfd;
        }
        w->tcp[i].fd = tfd;
        rc = ep_ctl(w, EPOLL_CTL_ADD, ufd, EPOLLIN, ep_tag(&w->udp[i], EP_UDP));
        if (rc == CM_OK)
            rc = ep_ctl(w, EPOLL_CTL_ADD, tfd, EPOLLIN, ep_tag(&w->tcp[i], EP_ACCEPT));
        if (rc != CM_OK) {
            snprintf(err, errlen, "dnsd.listen %s: epoll_ctl: %s", name, cm_strerror(rc));
            return rc;
        }
        if (listener_guard_init(w, &w->tcp[i], name) != CM_OK) {
            snprintf(err, errlen, "dnsd.listen %s: out of memory", name);
            return CM_ENOMEM;
        }
    }
    return CM_OK;
}

/*
 * SO_REUSEPORT would let a second copy of dnsd bind the same address and
 * silently take half the traffic: first bind each address once without it,
 * so an address in use is a clear error at start.
 */
static int probe_addresses(const struct dns_server *srv, char *err, size_t errlen)
{
    for (size_t i = 0; i < srv->listen_count; i++) {
        const int types[2] = {SOCK_DGRAM, SOCK_STREAM};

        for (int t = 0; t < 2; t++) {
            int fd = cm_net_listen(&srv->listen[i], types[t], false, TCP_BACKLOG);
            char name[CM_ADDR_STRLEN];

            if (fd >= 0) {
                close(fd);
                continue;
            }
            cm_addr_format((const struct sockaddr *)&srv->listen[i].ss, name, sizeof(name));
            snprintf(err, errlen, "dnsd.listen %s: cannot bind %s: %s", name,
                     types[t] == SOCK_DGRAM ? "UDP" : "TCP", cm_strerror(fd));
            return fd;
        }
    }
    return CM_OK;
}

/* The worker's RRL table, hashing under its own random key. */
static int worker_rrl_new(const struct dns_server *srv, struct dns_worker *w,
                          const struct cm_conf_dnsd_rrl *rc, char *err, size_t errlen)
{
    struct dns_rrl_params p = {
        .rate = rc->responses_per_second,
        .slip = rc->slip,
        .window_s = rc->window_s,
        .ipv4_prefix = (uint8_t)rc->ipv4_prefix,
        .ipv6_prefix = (uint8_t)rc->ipv6_prefix,
        .table_size = rc->table_size,
        .exempt = rc->exempt_count > 0 ? srv->rrl_exempt : NULL, /* none: no lookup */
    };
    uint8_t key[CM_SIPHASH_KEY_LEN];

    if (getrandom(key, sizeof(key), 0) != (ssize_t)sizeof(key)) {
        snprintf(err, errlen, "worker %u: dnsd.rrl: cannot read random bytes for the hash key",
                 w->id);
        return CM_EIO;
    }
    w->rrl = dns_rrl_new(&p, key);
    if (w->rrl == NULL) {
        snprintf(err, errlen, "worker %u: dnsd.rrl: out of memory for %u buckets", w->id,
                 rc->table_size);
        return CM_ENOMEM;
    }
    return CM_OK;
}

/* The worker's UDP packet cache (dnsd.packet_cache), keyed with its own random bytes. */
static int worker_pcache_new(struct dns_worker *w, uint32_t entries, char *err, size_t errlen)
{
    uint8_t seed[DNS_PCACHE_SEED_LEN];

    if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
        snprintf(err, errlen,
                 "worker %u: dnsd.packet_cache: cannot read random bytes for the hash key", w->id);
        return CM_EIO;
    }
    w->pcache = dns_pcache_new(entries, seed);
    if (w->pcache == NULL) {
        snprintf(err, errlen, "worker %u: dnsd.packet_cache: out of memory for %u entries", w->id,
                 entries);
        return CM_ENOMEM;
    }
    return CM_OK;
}

/* dnsd.rrl.exempt as a prefix table shared (read-only) by the workers. */
static int rrl_exempt_new(struct dns_server *srv, const struct cm_conf_dnsd_rrl *rc, char *err,
                          size_t errlen)
{
    srv->rrl_exempt = cm_lpm_new();
    if (srv->rrl_exempt == NULL) {
        return cm_err_oom(err, errlen, "dnsd.rrl.exempt");
    }
    for (size_t i = 0; i < rc->exempt_count; i++) {
        const struct cm_conf_client_net *n = &rc->exempt_nets[i];
        int rc2 = cm_lpm_insert(srv->rrl_exempt, n->family, n->addr, n->prefix_len, 1);

        if (rc2 != CM_OK) {
            snprintf(err, errlen, "dnsd.rrl.exempt %s: %s", rc->exempt[i], cm_strerror(rc2));
            return rc2;
        }
    }
    cm_lpm_compact(srv->rrl_exempt); /* looked up for every UDP answer */
    return CM_OK;
}

/* dnsd.query_log: rings for the workers when it is on and the level is debug. */
static int query_log_new(struct dns_server *srv, const struct cm_conf *conf, char *err,
                         size_t errlen)
{
    const struct cm_conf_dnsd_query_log *q = &conf->dnsd.query_log;

    if (q->sample == 0 || !cm_log_enabled(CM_LOG_DEBUG))
        return CM_OK;
    srv->qlog = dns_qlog_new(conf->dnsd.workers, q->ring_size, q->sample);
    if (srv->qlog == NULL) {
        snprintf(err, errlen, "dnsd.query_log: out of memory for %u records per worker",
                 q->ring_size);
        return CM_ENOMEM;
    }
    return CM_OK;
}

static int worker_init(struct dns_server *srv, struct dns_worker *w, unsigned id,
                       const struct cm_conf *conf, struct dns_view *view, char *err, size_t errlen)
{
    uint32_t udp_max = conf->dnsd.max_udp_size;

    w->srv = srv;
    w->id = id;
    w->mbox_fd = -1;
    w->epfd = -1;
    pthread_mutex_init(&w->lock, NULL);
    TAILQ_INIT(&w->active);
    TAILQ_INIT(&w->free);
    TAILQ_INIT(&w->ready);
    w->max_conns = conf->dnsd.tcp_max_conns > 0 ? conf->dnsd.tcp_max_conns : 1;
    /* A cap at or above the table size never binds: no table then. */
    if (conf->dnsd.tcp_max_conns_per_source > 0 &&
        conf->dnsd.tcp_max_conns_per_source < w->max_conns) {
        w->max_per_source = conf->dnsd.tcp_max_conns_per_source;
        w->src = dns_src_table_new(w->max_conns);
        if (w->src == NULL) {
            snprintf(err, errlen, "worker %u: out of memory", id);
            return CM_ENOMEM;
        }
    }
    w->idle_ms = conf->dnsd.tcp_idle_timeout_ms;
    w->rl.burst = 10;
    w->rl.period_s = 60;
    w->resp_cap = udp_max < 512 ? 512 : udp_max > TCP_MSG_MAX ? TCP_MSG_MAX : udp_max;
    w->view = dns_view_ref(view);
    w->qlog = srv->qlog;
    w->udp = calloc(srv->listen_count + 1, sizeof(*w->udp));
    w->tcp = calloc(srv->listen_count + 1, sizeof(*w->tcp));
    w->rbufs = malloc((size_t)UDP_BATCH * UDP_REQ_MAX);
    w->sbufs = malloc((size_t)UDP_BATCH * w->resp_cap);
    if (w->udp == NULL || w->tcp == NULL || w->rbufs == NULL || w->sbufs == NULL) {
        snprintf(err, errlen, "worker %u: out of memory", id);
        return CM_ENOMEM;
    }
    udp_slots_init(w);
    for (size_t i = 0; i < srv->listen_count; i++) {
        w->udp[i].w = w;
        w->udp[i].fd = -1;
        w->tcp[i].w = w;
        w->tcp[i].fd = -1;
    }
    w->sock_count = srv->listen_count;
    if (conf->dnsd.rrl.enabled) {
        int rc = worker_rrl_new(srv, w, &conf->dnsd.rrl, err, errlen);

        if (rc != CM_OK)
            return rc;
    }
    if (conf->dnsd.packet_cache.entries > 0) {
        int rc = worker_pcache_new(w, conf->dnsd.packet_cache.entries, err, errlen);

        if (rc != CM_OK)
            return rc;
    }
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->mbox_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->epfd == -1 || w->mbox_fd == -1) {
        int rc = cm_err_from_errno(errno);

        snprintf(err, errlen, "worker %u: cannot create %s: %s", id,
                 w->epfd == -1 ? "an epoll instance" : "an eventfd", cm_strerror(rc));
        return rc;
    }
    if (ep_ctl(w, EPOLL_CTL_ADD, w->mbox_fd, EPOLLIN, ep_tag(w, EP_MBOX)) != CM_OK) {
        snprintf(err, errlen, "worker %u: out of memory", id);
        return CM_ENOMEM;
    }
    return worker_open_sockets(srv, w, err, errlen);
}

static void worker_fini(struct dns_worker *w)
{
    struct tcp_conn *c;

    if (w->srv == NULL) /* never initialized */
        return;
    while ((c = TAILQ_FIRST(&w->active)) != NULL)
        conn_close(c);
    while ((c = TAILQ_FIRST(&w->free)) != NULL) {
        TAILQ_REMOVE(&w->free, c, link);
        free(c);
    }
    dns_src_table_free(w->src);
    w->src = NULL;
    if (w->udp != NULL && w->tcp != NULL)
        listeners_close(w);
    free(w->udp);
    free(w->tcp);
    if (w->mbox_fd >= 0)
        close(w->mbox_fd);
    if (w->epfd >= 0)
        close(w->epfd);
    free(w->rbufs);
    free(w->sbufs);
    dns_rrl_free(w->rrl);
    dns_pcache_free(w->pcache);
    dns_view_unref(w->mbox_view);
    dns_view_unref(w->view);
    pthread_mutex_destroy(&w->lock);
}

int dns_server_new(const struct cm_conf *conf, struct dns_view *view, struct dns_server **out,
                   char *err, size_t errlen)
{
    struct dns_server *srv;
    int rc = CM_OK;

    if (conf->dnsd.listen_count == 0 || conf->dnsd.workers == 0) {
        snprintf(err, errlen, "dnsd: no listen address or no worker");
        return CM_ECONFIG;
    }
    srv = calloc(1, sizeof(*srv));
    if (srv == NULL)
        return CM_ENOMEM;
    srv->listen = calloc(conf->dnsd.listen_count, sizeof(*srv->listen));
    srv->workers = calloc(conf->dnsd.workers, sizeof(*srv->workers));
    if (srv->listen == NULL || srv->workers == NULL) {
        rc = CM_ENOMEM;
        goto out;
    }
    memcpy(srv->listen, conf->dnsd.listen, conf->dnsd.listen_count * sizeof(*srv->listen));
    srv->listen_count = conf->dnsd.listen_count;
    rc = probe_addresses(srv, err, errlen);
    if (rc != CM_OK)
        goto out;
    if (conf->dnsd.rrl.enabled) {
        rc = rrl_exempt_new(srv, &conf->dnsd.rrl, err, errlen);
        if (rc != CM_OK)
            goto out;
    }
    rc = query_log_new(srv, conf, err, errlen);
    if (rc != CM_OK)
        goto out;
    for (unsigned i = 0; i < conf->dnsd.workers; i++) {
        srv->worker_count = i + 1;
        rc = worker_init(srv, &srv->workers[i], i, conf, view, err, errlen);
        if (rc != CM_OK)
            goto out;
    }
    *out = srv;
    srv = NULL;
out:
    dns_server_free(srv);
    return rc;
}

int dns_server_start(struct dns_server *srv, char *err, size_t errlen)
{
    sigset_t all, old;
    int rc = CM_OK;

    /* Signals are for the main thread's event loop only. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (size_t i = 0; i < srv->worker_count; i++) {
        struct dns_worker *w = &srv->workers[i];
        int e = pthread_create(&w->thread, NULL, worker_main, w);

        if (e != 0) {
            snprintf(err, errlen, "worker %zu: cannot start thread: %s", i,
                     cm_strerror(cm_err_from_errno(e)));
            rc = cm_err_from_errno(e);
            break;
        }
        w->started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    srv->started = true;
    return rc;
}

void dns_server_set_view(struct dns_server *srv, struct dns_view *view)
{
    for (size_t i = 0; i < srv->worker_count; i++) {
        struct dns_worker *w = &srv->workers[i];
        struct dns_view *old;

        dns_view_ref(view);
        pthread_mutex_lock(&w->lock);
        old = w->mbox_view;
        w->mbox_view = view;
        pthread_mutex_unlock(&w->lock);
        dns_view_unref(old); /* superseded before the worker took it */
        mbox_signal(w);
    }
}

bool dns_server_conf_matches(const struct dns_server *srv, const struct cm_conf *conf)
{
    if (conf->dnsd.workers != srv->worker_count || conf->dnsd.listen_count != srv->listen_count)
        return false;
    for (size_t i = 0; i < srv->listen_count; i++) {
        const struct cm_addr *a = &srv->listen[i];
        const struct cm_addr *b = &conf->dnsd.listen[i];

        if (a->len != b->len || memcmp(&a->ss, &b->ss, a->len) != 0)
            return false;
    }
    return true;
}

static uint64_t ld(const _Atomic uint64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

void dns_server_stats(const struct dns_server *srv, struct dns_server_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < srv->worker_count; i++) {
        const struct worker_stats *s = &srv->workers[i].stats;

        for (int t = 0; t < DNS_STAT_TRANSPORT_COUNT; t++) {
            for (int q = 0; q < DNS_STAT_QTYPE_COUNT; q++)
                out->queries[t][q] += ld(&s->queries[t][q]);
        }
        out->queries[DNS_STAT_UDP][DNS_STAT_QTYPE_A] += ld(&s->udp_a);
        out->queries[DNS_STAT_UDP][DNS_STAT_QTYPE_AAAA] += ld(&s->udp_aaaa);
        for (int r = 0; r < DNS_STAT_RCODES; r++)
            out->responses[r] += ld(&s->responses[r]);
        out->responses[0] += ld(&s->noerror); /* NOERROR */
        for (int k = 0; k < DNS_STAT_SERVICES; k++) {
            out->answers[k] += ld(&s->answers[k]);
            out->fail_open[k] += ld(&s->fail_open[k]);
            out->fail_closed[k] += ld(&s->fail_closed[k]);
        }
        for (int k = 0; k < DNS_STAT_MEMBERS; k++) {
            out->member_answers[k] += ld(&s->by_index[k].member_answers);
            out->region_answers[k] += ld(&s->by_index[k].region_answers);
        }
        for (int k = 0; k < DNS_RRL_ACTION_COUNT; k++)
            out->rrl[k] += ld(&s->rrl[k]);
        for (int k = 0; k < DNS_RRL_CLASS_COUNT; k++)
            out->rrl_limited[k] += ld(&s->rrl_limited[k]);
        for (int k = 0; k < DNS_PLACE_COUNT; k++)
            out->placement[k] += ld(&s->placement[k]);
        for (int k = 0; k < DNS_STAT_LAT_BUCKETS; k++)
            out->lat_buckets[k] += ld(&s->lat_buckets[k]);
        out->lat_sum_us += ld(&s->lat_sum_us);
        out->truncated += ld(&s->truncated);
        out->ecs += ld(&s->ecs);
        out->dropped += ld(&s->dropped);
        out->tcp_accepted += ld(&s->tcp_accepted);
        out->tcp_refused += ld(&s->tcp_refused);
        out->tcp_closed_idle += ld(&s->tcp_closed_idle);
        out->tcp_evicted += ld(&s->tcp_evicted);
        out->tcp_source_cap += ld(&s->tcp_source_cap);
    }
}

void dns_server_pcache_stats(const struct dns_server *srv, struct dns_pcache_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < srv->worker_count; i++)
        dns_pcache_stats_add(srv->workers[i].pcache, out);
}

uint64_t dns_server_nofile_need(const struct cm_conf *conf, char *why, size_t cap)
{
    const struct cm_conf_dnsd *dc = &conf->dnsd;
    uint64_t conns = dc->tcp_max_conns > 0 ? dc->tcp_max_conns : 1;
    /* A UDP and a TCP socket per listen address, and the loop's epoll and eventfd. */
    uint64_t sockets = 2 * (uint64_t)dc->listen_count + WORKER_LOOP_FDS;
    uint64_t workers = dc->workers > 0 ? dc->workers : 1;
    uint64_t control = cm_nofile_control(&dc->control);

    snprintf(why, cap,
             "%" PRIu64 " workers x (%" PRIu64 " TCP connections + %" PRIu64 " sockets) + %" PRIu64
             " control + %d reserve",
             workers, conns, sockets, control, CM_NOFILE_RESERVE);
    return workers * (conns + sockets) + control + CM_NOFILE_RESERVE;
}

struct dns_qlog *dns_server_qlog(const struct dns_server *srv)
{
    return srv->qlog;
}

size_t dns_server_listen_count(const struct dns_server *srv)
{
    return srv->listen_count;
}

uint64_t dns_server_accept_exhausted(const struct dns_server *srv, size_t i, char *name, size_t cap)
{
    uint64_t sum = 0;

    cm_addr_format((const struct sockaddr *)&srv->listen[i].ss, name, cap);
    for (size_t k = 0; k < srv->worker_count; k++) {
        const struct dns_worker *w = &srv->workers[k];

        if (w->tcp != NULL && i < w->sock_count)
            sum += cm_accept_guard_exhausted(&w->tcp[i].guard);
    }
    return sum;
}

void dns_server_stop(struct dns_server *srv)
{
    if (srv == NULL || srv->stopped)
        return;
    srv->stopped = true;
    for (size_t i = 0; i < srv->worker_count; i++) {
        struct dns_worker *w = &srv->workers[i];

        if (!w->started)
            continue;
        pthread_mutex_lock(&w->lock);
        w->mbox_stop = true;
        pthread_mutex_unlock(&w->lock);
        mbox_signal(w);
    }
    for (size_t i = 0; i < srv->worker_count; i++) {
        struct dns_worker *w = &srv->workers[i];

        if (w->started)
            pthread_join(w->thread, NULL);
        w->started = false;
    }
}

void dns_server_free(struct dns_server *srv)
{
    if (srv == NULL)
        return;
    dns_server_stop(srv);
    for (size_t i = 0; i < srv->worker_count; i++)
        worker_fini(&srv->workers[i]);
    free(srv->workers);
    free(srv->listen);
    cm_lpm_free(srv->rrl_exempt);
    dns_qlog_free(srv->qlog);
    free(srv);
}
