/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_tcp.c -- a worker's TCP connections (RFC 7766: framing, pipelining,
 * idle timeout, bounded buffers): accept with the accept guard and the
 * per-source cap, a pool of connection slots, reading, answering and
 * writing with a per-wakeup query budget, idle deadlines, the ready list
 * and eviction. The loop that calls it is in dns_server.c (dns_worker.h).
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/cm_accept.h"
#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_log.h"
#include "common/cm_time.h"
#include "dnsd/dns_qlog.h"
#include "dnsd/dns_query.h"
#include "dnsd/dns_tcp_src.h"
#include "dnsd/dns_worker.h"

#define TCP_ACCEPT_BUDGET 16 /* accepts per wakeup */
#define TCP_QUERY_BUDGET  32 /* queries per connection per wakeup */
#define TCP_RBUF          (TCP_MSG_MAX + 2)
#define TCP_WBUF_MARK     16384 /* stop reading while more output than this is queued */
#define TCP_WBUF          (TCP_WBUF_MARK + TCP_MSG_MAX + 2)

/* At most this many least recently used connections are looked at for one to close. */
#define TCP_EVICT_SCAN 16

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

static void query_info_init(struct dns_query_info *info)
{
    memset(info, 0, sizeof(*info));
    info->service = -1;
}

/* ---- connections ---- */

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
        dns_worker_count_query(w, DNS_STAT_TCP, &info, len);
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
void dns_tcp_event(struct tcp_conn *c, uint32_t events)
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
void dns_tcp_ready_round(struct dns_worker *w)
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

/* ---- accept ---- */

void dns_tcp_accept(struct listener *l)
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

int dns_tcp_guard_init(struct dns_worker *w, struct listener *l, const char *addr)
{
    char name[CM_ACCEPT_NAME_MAX];

    snprintf(name, sizeof(name), "dns tcp %s worker=%u", addr, w->id);
    return cm_accept_guard_init(&l->guard, NULL, name, accept_pause, accept_resume, l);
}

/* ---- timers, stop ---- */

uint64_t dns_tcp_timers(struct dns_worker *w, uint64_t now)
{
    uint64_t due = UINT64_MAX;
    struct tcp_conn *c;

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
    return due;
}

void dns_tcp_stop(struct dns_worker *w)
{
    struct tcp_conn *c, *next;

    for (c = TAILQ_FIRST(&w->active); c != NULL; c = next) {
        next = TAILQ_NEXT(c, link);
        if (c->state == CONN_OPEN)
            conn_process(c);
        if (c->state != CONN_FREE)
            conn_finish(c);
    }
}

void dns_tcp_close_all(struct dns_worker *w)
{
    struct tcp_conn *c;

    while ((c = TAILQ_FIRST(&w->active)) != NULL)
        conn_close(c);
}

/* ---- setup ---- */

int dns_tcp_init(struct dns_worker *w, const struct cm_conf *conf, char *err, size_t errlen)
{
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
            snprintf(err, errlen, "worker %u: out of memory", w->id);
            return CM_ENOMEM;
        }
    }
    w->idle_ms = conf->dnsd.tcp_idle_timeout_ms;
    return CM_OK;
}

void dns_tcp_fini(struct dns_worker *w)
{
    struct tcp_conn *c;

    dns_tcp_close_all(w);
    while ((c = TAILQ_FIRST(&w->free)) != NULL) {
        TAILQ_REMOVE(&w->free, c, link);
        free(c);
    }
    dns_src_table_free(w->src);
    w->src = NULL;
}
