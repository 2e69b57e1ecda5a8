/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_server.c -- worker threads: their epoll loop, UDP (recvmmsg/sendmmsg
 * batches), the mailbox, setup and counters. TCP connections (RFC 7766) are
 * in dns_tcp.c; what both files share of a worker is in dns_worker.h.
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
 *                 the head holds the earliest deadline (dns_tcp_timers)
 *   accept guard  cm_accept_guard_resume_at() of a paused TCP listener
 *   stop grace    w->grace_at while stopping
 *
 * epoll_wait waits until the earliest (forever when there is none), or not
 * at all while a TCP connection that spent its query budget waits on
 * w->ready for its next round.
 */
#include "dnsd/dns_server.h"

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
#include "dnsd/dns_view.h"
#include "dnsd/dns_worker.h"

#define UDP_REQ_MAX     4096 /* a larger UDP query is dropped */
#define UDP_BUDGET      4    /* batches per wakeup, then back to the loop */
#define TCP_BACKLOG     256
#define WORKER_LOOP_FDS 3  /* epoll, the cross-thread notification, one spare */
#define WORKER_EVENTS   64 /* epoll events taken per wakeup */

struct dns_server {
    struct dns_worker *workers; /* owned array */
    size_t worker_count;
    struct cm_addr *listen; /* owned copy of dnsd.listen */
    size_t listen_count;
    struct cm_lpm *rrl_exempt; /* owned, read by every worker; NULL without RRL */
    struct dns_qlog *qlog;     /* owned, one ring per worker; NULL when the query log is off */
    /* View generations (dns_server_set_view): the last one handed out (main
     * thread only), and the last one every worker's mailbox holds. */
    uint64_t view_next;
    _Atomic uint64_t view_gen;
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

void dns_worker_count_query(struct dns_worker *w, enum dns_stat_transport t,
                            const struct dns_query_info *info, size_t resp_len)
{
    count_query(w, t, info, resp_len);
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

/* ---- epoll ---- */

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

static void mbox_check(struct dns_worker *w);

/* A UDP listener is readable: up to UDP_BUDGET batches, then back to the loop. */
static void udp_ready(struct listener *l)
{
    for (int b = 0; b < UDP_BUDGET; b++) {
        if (b > 0)
            mbox_check(l->w); /* a view published meanwhile answers this batch */
        if (udp_batch(l->w, l) < UDP_BATCH)
            break;
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
    w->stopping = true;
    /* Answer what already sits in the UDP receive queues (one budget), then close. */
    for (size_t i = 0; i < w->sock_count; i++) {
        if (w->udp[i].fd >= 0)
            udp_ready(&w->udp[i]);
    }
    listeners_close(w);
    dns_tcp_stop(w);
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

/*
 * Takes the mailbox's view if its generation is published (@published, read
 * from the server). A view sitting in some mailboxes but not yet in all is
 * left there: no worker answers from a new view while another could still
 * answer from an older one for want of it.
 */
static void mbox_take_view(struct dns_worker *w, uint64_t published)
{
    struct dns_view *view = NULL;

    pthread_mutex_lock(&w->lock);
    if (w->mbox_view != NULL && w->mbox_gen <= published) {
        view = w->mbox_view;
        w->mbox_view = NULL;
    }
    pthread_mutex_unlock(&w->lock);
    w->view_gen = published;
    if (view != NULL) {
        dns_view_unref(w->view);
        w->view = view;
    }
}

/*
 * Called after every wakeup, before its events: a view published while the
 * worker slept is taken before the queries that woke it are answered, even
 * when epoll lists them ahead of the mailbox's signal. One load of a line
 * the main thread writes only when it publishes.
 */
static void mbox_check(struct dns_worker *w)
{
    uint64_t g = atomic_load_explicit(&w->srv->view_gen, memory_order_acquire);

    if (g != w->view_gen)
        mbox_take_view(w, g);
}

static void mbox_ready(struct dns_worker *w)
{
    bool stop;

    mbox_drain(w->mbox_fd);
    pthread_mutex_lock(&w->lock);
    stop = w->mbox_stop;
    pthread_mutex_unlock(&w->lock);
    mbox_take_view(w, atomic_load_explicit(&w->srv->view_gen, memory_order_acquire));
    if (stop && !w->stopping)
        worker_begin_stop(w);
}

/* ---- the loop ---- */

/*
 * Fires the timers that are due and returns how long epoll_wait may wait:
 * until the next deadline, 0 while connections wait on the ready list, -1
 * (forever) when there is no timer. The clock is read only when one exists.
 */
static int worker_timers(struct dns_worker *w)
{
    uint64_t now, due;

    if (TAILQ_EMPTY(&w->active) && w->paused_count == 0 && !w->stopping)
        return w->ready_count > 0 ? 0 : -1;
    now = cm_mono_ms();
    due = dns_tcp_timers(w, now);
    if (w->stopping) {
        if (now >= w->grace_at) { /* the grace is over: close what is left */
            dns_tcp_close_all(w);
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
            dns_tcp_accept(l);
        break;
    case EP_CONN:
        dns_tcp_event(p, e->events);
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
        mbox_check(w);
        for (int i = 0; i < n; i++)
            worker_dispatch(w, &ev[i]);
        if (w->ready_count > 0)
            dns_tcp_ready_round(w);
    }
    return NULL;
}

/* ---- setup ---- */

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
        if (dns_tcp_guard_init(w, &w->tcp[i], name) != CM_OK) {
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
    if (dns_tcp_init(w, conf, err, errlen) != CM_OK)
        return CM_ENOMEM; /* its only failure */
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
    if (w->srv == NULL) /* never initialized */
        return;
    dns_tcp_fini(w);
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

/*
 * Every mailbox first, then the generation, then the signals: a worker takes
 * the view only once its generation is published (mbox_take_view), and every
 * worker looks at the generation when it wakes (mbox_check). So once any
 * worker has answered from the new view, every query another worker reads
 * afterwards is answered from it too.
 */
void dns_server_set_view(struct dns_server *srv, struct dns_view *view)
{
    uint64_t gen = ++srv->view_next;

    for (size_t i = 0; i < srv->worker_count; i++) {
        struct dns_worker *w = &srv->workers[i];
        struct dns_view *old;

        dns_view_ref(view);
        pthread_mutex_lock(&w->lock);
        old = w->mbox_view;
        w->mbox_view = view;
        w->mbox_gen = gen;
        pthread_mutex_unlock(&w->lock);
        dns_view_unref(old); /* superseded before the worker took it */
    }
    atomic_store_explicit(&srv->view_gen, gen, memory_order_release);
    for (size_t i = 0; i < srv->worker_count; i++)
        mbox_signal(&srv->workers[i]);
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
