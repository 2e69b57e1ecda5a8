/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_accept.h -- what a listener does when accept() fails.
 *
 * A listening socket is level-triggered: while connections wait in its
 * backlog, the loop reports it readable again at once. When accept() fails
 * for want of a descriptor (EMFILE, ENFILE) or of kernel memory (ENOBUFS,
 * ENOMEM), retrying at once fails the same way, so a naive accept loop spins
 * a core and floods the log while starving everything else in its thread.
 *
 * The guard turns those failures into a pause: it stops watching the
 * listener (the caller's pause callback, or event_del of its event), arms a
 * timer (100 ms, doubling up to 1 s while the failures go on) and watches it
 * again when the timer fires. The waiting connections stay in the kernel's
 * backlog and are accepted once descriptors come back. Failures are counted
 * (for metrics) and logged at most once per CM_ACCEPT_LOG_INTERVAL_MS per
 * guard, with the count since the previous line.
 *
 *      accept() == -1 --> cm_accept_guard_error(g, errno)
 *         EINTR, ECONNABORTED, EPROTO, ... : true  (accept the next one)
 *         EAGAIN                           : false (backlog empty)
 *         EMFILE, ENFILE, ENOBUFS, ENOMEM  : false, paused; timer armed
 *         anything else                    : false, paused (never spin)
 *      timer fires --> resume (event_add, or the caller's callback)
 *      accept() >= 0  --> cm_accept_guard_ok(g): the next pause is short again
 *
 * One guard per listening socket and event loop thread (dnsd has one per
 * worker and listen address); all calls but cm_accept_guard_exhausted() are
 * made from that loop's thread.
 *
 * Embedding a listener with a struct event (dnsd, the control API):
 *
 *     cm_accept_guard_init_event(&l->guard, base, "dns tcp 127.0.0.1:53", l->ev);
 *     ...in the read callback:
 *     fd = accept4(lfd, ...);
 *     if (fd == -1) {
 *         int e = errno;
 *         if (cm_accept_guard_error(&l->guard, e))
 *             continue;
 *         return;
 *     }
 *     cm_accept_guard_ok(&l->guard);
 *
 * An evconnlistener (the proxy) uses cm_accept_guard_init() with callbacks
 * that disable/enable it, and calls cm_accept_guard_error() from its
 * evconnlistener_set_error_cb() callback with EVUTIL_SOCKET_ERROR() (its
 * return value does not matter there: libevent has left its accept loop),
 * and cm_accept_guard_ok() from its accept callback.
 *
 * A loop of the caller's own (dnsd's workers on epoll) passes base NULL to
 * cm_accept_guard_init(): the guard then keeps the resume time instead of a
 * timer, and the loop waits no longer than cm_accept_guard_resume_at() and
 * calls cm_accept_guard_poll() when it wakes:
 *
 *     due = cm_accept_guard_resume_at(&l->guard);   (0: nothing to wait for)
 *     ...wait at most until due...
 *     cm_accept_guard_poll(&l->guard, cm_mono_ms()); (resumes when due)
 */
#ifndef COMMON_CM_ACCEPT_H
#define COMMON_CM_ACCEPT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct event;
struct event_base;

#define CM_ACCEPT_BACKOFF_MIN_MS  100u   /* first pause */
#define CM_ACCEPT_BACKOFF_MAX_MS  1000u  /* pauses double up to this */
#define CM_ACCEPT_LOG_INTERVAL_MS 10000u /* at most one log line per guard per interval */
#define CM_ACCEPT_NAME_MAX        96

/**
 * Stop watching the listening socket (pause) / watch it again (resume).
 * Called from the loop thread. A resume callback may leave the listener
 * paused when the caller has reasons of its own (e.g. a connection cap):
 * accept resumes when none of the reasons holds any more.
 */
typedef void cm_accept_pause_fn(void *arg);
typedef void cm_accept_resume_fn(void *arg);

/* Embedded by the caller; the fields are private (read in tests only). */
struct cm_accept_guard {
    struct event *timer;       /* owned; fires the resume; NULL in the loop-less form */
    uint64_t resume_at_ms;     /* loop-less form: cm_mono_ms() of the resume, 0 = none */
    cm_accept_pause_fn *pause; /* the caller's, or event_del of the listener's event */
    cm_accept_resume_fn *resume;
    void *arg;
    bool paused;                /* the guard has the listener paused */
    uint32_t backoff_ms;        /* length of the next pause */
    uint64_t last_log_ms;       /* when the last line was logged, 0 = never */
    uint64_t unlogged;          /* failures since that line */
    _Atomic uint64_t exhausted; /* EMFILE/ENFILE/ENOBUFS/ENOMEM since init */
    char name[CM_ACCEPT_NAME_MAX];
};

/**
 * Initializes @g for a listener whose pause and resume are @pause and
 * @resume (with @arg). @base (borrowed) runs the timer and must outlive @g;
 * NULL when the caller's own loop runs the resume (cm_accept_guard_poll()).
 * @name (copied, cut to fit) names the listener in log lines, e.g.
 * "proxy 127.0.0.1:8080". Returns CM_OK or CM_ENOMEM.
 */
int cm_accept_guard_init(struct cm_accept_guard *g, struct event_base *base, const char *name,
                         cm_accept_pause_fn *pause, cm_accept_resume_fn *resume, void *arg);

/**
 * The same for a listener watched by @listen_ev (borrowed, a persistent
 * EV_READ event on the listening socket, added by the caller): the guard
 * pauses with event_del(@listen_ev) and resumes with event_add(@listen_ev,
 * NULL). @listen_ev must outlive @g or be freed after cm_accept_guard_fini().
 */
int cm_accept_guard_init_event(struct cm_accept_guard *g, struct event_base *base, const char *name,
                               struct event *listen_ev);

/** Cancels a pending resume and frees the timer. Safe on a zeroed or finished guard. */
void cm_accept_guard_fini(struct cm_accept_guard *g);

/**
 * Handles one failed accept(); @errnum is its errno, saved before any other
 * call. Returns true when the failure concerned only one connection and the
 * caller may accept again in this wakeup; false when it must return to the
 * event loop (backlog empty, or the listener is now paused).
 */
bool cm_accept_guard_error(struct cm_accept_guard *g, int errnum);

/**
 * Records a successful accept: the next pause starts from
 * CM_ACCEPT_BACKOFF_MIN_MS again. Cheap (one store); call it on every accept.
 */
void cm_accept_guard_ok(struct cm_accept_guard *g);

/**
 * Loop-less form (base NULL): the cm_mono_ms() time at which the paused
 * listener is due to resume, 0 when the guard waits for nothing. Loop thread.
 */
uint64_t cm_accept_guard_resume_at(const struct cm_accept_guard *g);

/**
 * Loop-less form: resumes the listener (the resume callback) when @now_ms
 * (cm_mono_ms()) has reached the resume time. True when it did. Loop thread.
 */
bool cm_accept_guard_poll(struct cm_accept_guard *g, uint64_t now_ms);

/** True while the guard holds the listener paused. Loop thread. */
bool cm_accept_guard_paused(const struct cm_accept_guard *g);

/** Exhaustion failures (EMFILE, ENFILE, ENOBUFS, ENOMEM) since init. Any thread. */
uint64_t cm_accept_guard_exhausted(const struct cm_accept_guard *g);

#endif /* COMMON_CM_ACCEPT_H */
