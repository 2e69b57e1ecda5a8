/* SPDX-License-Identifier: Apache-2.0 */
/* cm_accept.c -- pause a listener instead of spinning on accept() failures; see cm_accept.h. */
#include "common/cm_accept.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include <event2/event.h>

#include "common/cm_err.h"
#include "common/cm_log.h"
#include "common/cm_str.h"
#include "common/cm_time.h"

enum accept_class {
    ACCEPT_RETRY = 0,     /* about one connection only: accept the next */
    ACCEPT_EMPTY = 1,     /* the backlog is empty: back to the loop */
    ACCEPT_EXHAUSTED = 2, /* out of descriptors or memory: pause */
    ACCEPT_UNKNOWN = 3,   /* unexpected: pause too, so that it cannot spin */
};

/*
 * Linux reports errors pending on the new connection through accept() (man
 * accept(2), "Error handling"): those, and a connection reset before it was
 * accepted, concern one peer only.
 */
static enum accept_class classify(int errnum)
{
    switch (errnum) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
        return ACCEPT_EMPTY;
    case EMFILE:
    case ENFILE:
    case ENOBUFS:
    case ENOMEM:
        return ACCEPT_EXHAUSTED;
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case EPERM: /* refused by a firewall rule */
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
        return ACCEPT_RETRY;
    default:
        return ACCEPT_UNKNOWN;
    }
}

static void event_pause(void *arg)
{
    if (event_del(arg) != 0)
        cm_log_error("accept: cannot stop watching the listener");
}

static void event_resume(void *arg)
{
    if (event_add(arg, NULL) != 0)
        cm_log_error("accept: cannot watch the listener again");
}

static void resume_now(struct cm_accept_guard *g)
{
    cm_log_debug("accept: listener=\"%s\" resuming", g->name);
    /* Cleared before the callback, which may look at it to decide. */
    g->paused = false;
    g->resume_at_ms = 0;
    g->resume(g->arg);
}

static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    resume_now(arg);
}

int cm_accept_guard_init(struct cm_accept_guard *g, struct event_base *base, const char *name,
                         cm_accept_pause_fn *pause, cm_accept_resume_fn *resume, void *arg)
{
    memset(g, 0, sizeof(*g));
    g->pause = pause;
    g->resume = resume;
    g->arg = arg;
    g->backoff_ms = CM_ACCEPT_BACKOFF_MIN_MS;
    cm_strlcpy(g->name, name, sizeof(g->name));
    atomic_init(&g->exhausted, 0);
    if (base == NULL)
        return CM_OK; /* the caller's loop polls */
    g->timer = evtimer_new(base, resume_cb, g);
    return g->timer != NULL ? CM_OK : CM_ENOMEM;
}

int cm_accept_guard_init_event(struct cm_accept_guard *g, struct event_base *base, const char *name,
                               struct event *listen_ev)
{
    return cm_accept_guard_init(g, base, name, event_pause, event_resume, listen_ev);
}

void cm_accept_guard_fini(struct cm_accept_guard *g)
{
    if (g->timer != NULL)
        event_free(g->timer); /* also deletes it if pending */
    g->timer = NULL;
    g->paused = false;
    g->resume_at_ms = 0;
}

/*
 * Once per interval, with the failures since the previous line: a flood of
 * failed accepts must not become a flood of log lines. cm_log_ratelimited
 * would drop lines without saying how many failures each one stands for.
 */
static void log_failure(struct cm_accept_guard *g, int errnum, uint64_t now)
{
    g->unlogged++;
    if (g->last_log_ms != 0 && now - g->last_log_ms < CM_ACCEPT_LOG_INTERVAL_MS)
        return;
    cm_log_warn("accept paused: listener=\"%s\" error=\"%s\" failures=%" PRIu64
                " backoff_ms=%u (connections wait in the backlog)",
                g->name, cm_strerror(cm_err_from_errno(errnum)), g->unlogged, g->backoff_ms);
    g->last_log_ms = now;
    g->unlogged = 0;
}

/*
 * Pauses for the current back-off. The back-off doubles while the failures
 * go on without an accept in between (cm_accept_guard_ok() starts it again
 * from the minimum): a limit that is only tight costs short pauses, an
 * exhausted table longer and longer ones.
 */
static void pause_listener(struct cm_accept_guard *g, int errnum)
{
    uint64_t now = cm_mono_ms();
    struct timeval tv;

    log_failure(g, errnum, now);
    tv = cm_ms_to_timeval(g->backoff_ms);
    if (!g->paused) {
        g->paused = true;
        g->pause(g->arg);
    }
    if (g->timer == NULL)
        g->resume_at_ms = now + g->backoff_ms; /* never 0: the back-off is >= 100 ms */
    else if (evtimer_add(g->timer, &tv) != 0)
        cm_log_error("accept: listener=\"%s\" cannot arm the resume timer", g->name);
    g->backoff_ms *= 2;
    if (g->backoff_ms > CM_ACCEPT_BACKOFF_MAX_MS)
        g->backoff_ms = CM_ACCEPT_BACKOFF_MAX_MS;
}

bool cm_accept_guard_error(struct cm_accept_guard *g, int errnum)
{
    switch (classify(errnum)) {
    case ACCEPT_RETRY:
        return true;
    case ACCEPT_EMPTY:
        return false;
    case ACCEPT_EXHAUSTED:
        /* One writer (this loop's thread); readers are the metrics. */
        atomic_store_explicit(&g->exhausted,
                              atomic_load_explicit(&g->exhausted, memory_order_relaxed) + 1,
                              memory_order_relaxed);
        pause_listener(g, errnum);
        return false;
    case ACCEPT_UNKNOWN:
    default:
        pause_listener(g, errnum);
        return false;
    }
}

void cm_accept_guard_ok(struct cm_accept_guard *g)
{
    g->backoff_ms = CM_ACCEPT_BACKOFF_MIN_MS;
}

uint64_t cm_accept_guard_resume_at(const struct cm_accept_guard *g)
{
    return g->resume_at_ms;
}

bool cm_accept_guard_poll(struct cm_accept_guard *g, uint64_t now_ms)
{
    if (g->resume_at_ms == 0 || now_ms < g->resume_at_ms)
        return false;
    resume_now(g);
    return true;
}

bool cm_accept_guard_paused(const struct cm_accept_guard *g)
{
    return g->paused;
}

uint64_t cm_accept_guard_exhausted(const struct cm_accept_guard *g)
{
    return atomic_load_explicit(&g->exhausted, memory_order_relaxed);
}
