/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_etcd_watch.c -- the list/watch/check/backoff state machine of
 * cm_etcd_watch.h.
 *
 * The watch stream is aborted from its data callback only by returning
 * non-zero; what to do next is kept in w->next and acted upon in the done
 * callback, where new calls may start (as hc_watch.c does).
 *
 * w->rev is the revision up to which every change under the prefix was
 * delivered: the list's revision, then the mod_revision of each event and
 * the header of a progress report (an events message without events). A
 * created message does not move it: history replayed after it may still be
 * on its way.
 */
#include "common/cm_etcd_watch.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_backoff.h"
#include "common/cm_err.h"
#include "common/cm_etcd.h"
#include "common/cm_lines.h"
#include "common/cm_log.h"
#include "common/cm_rand.h"
#include "common/cm_str.h"
#include "common/cm_time.h"

enum watch_state {
    WS_IDLE = 0,     /* not started */
    WS_LISTING = 1,  /* the range is in flight */
    WS_WATCHING = 2, /* the watch stream is open */
    WS_BACKOFF = 3,  /* waiting for the retry timer */
};

/* What the done callback does after the data callback stopped the stream. */
enum watch_next {
    WN_NONE = 0,    /* not stopped */
    WN_RELIST = 1,  /* history compacted: list again now */
    WN_REAUTH = 2,  /* the token was refused: watch again with a new one */
    WN_BACKOFF = 3, /* garbage, cancel, stream error: retry after the backoff */
};

struct cm_etcd_watch {
    struct event_base *base; /* borrowed */
    struct cm_etcd *e;       /* borrowed */
    char *prefix;            /* owned */
    size_t prefix_len;
    struct cm_etcd_watch_params p;
    struct cm_etcd_watch_cbs cbs;
    enum watch_state state;
    enum watch_next next;
    struct cm_etcd_call *call;  /* the list or the watch in flight */
    struct cm_etcd_call *check; /* the check in flight */
    struct event *timer;        /* owned: backoff */
    struct event *check_timer;  /* owned: the next check */
    struct cm_lines lines;      /* the watch stream, split */
    int64_t rev;                /* delivered up to here (0 = never listed) */
    bool retry_watch;           /* the backoff resumes the watch instead of relisting */
    bool reauthed;              /* a watch was already retried for a refused token */
    uint64_t stream_start_ms;
    uint64_t stream_items;
    struct cm_backoff backoff;
    struct cm_log_ratelimit rl; /* repeated failures while down */
    uint64_t rng;
    char why[200];
    struct cm_etcd_watch_stats st;
};

static void do_list(struct cm_etcd_watch *w);
static void do_watch(struct cm_etcd_watch *w);

void cm_etcd_watch_params_default(struct cm_etcd_watch_params *p)
{
    p->check_interval_ms = 5000;
    p->check_timeout_ms = 5000;
    p->backoff_min_ms = 250;
    p->backoff_max_ms = 5000;
}

static void timer_arm(struct event *ev, uint64_t ms)
{
    struct timeval tv = cm_ms_to_timeval(ms);

    evtimer_add(ev, &tv);
}

static void set_up(struct cm_etcd_watch *w, bool up)
{
    uint64_t now = cm_mono_ms();

    if (up) {
        cm_backoff_reset(&w->backoff);
        w->st.last_error[0] = '\0';
        w->reauthed = false;
    }
    if (w->st.up == up)
        return;
    if (up && w->st.since_ms != 0)
        cm_log_info("etcd: watching %s through %s again after %.1f s; revision=%" PRId64, w->prefix,
                    cm_etcd_endpoint(w->e), (double)(now - w->st.since_ms) / 1000.0, w->rev);
    else if (up)
        cm_log_info("etcd: watching %s through %s from revision %" PRId64, w->prefix,
                    cm_etcd_endpoint(w->e), w->rev + 1);
    w->st.up = up;
    w->st.since_ms = now;
    if (w->cbs.up != NULL)
        w->cbs.up(w->cbs.arg, up);
}

static void on_backoff_timer(evutil_socket_t fd, short what, void *arg)
{
    struct cm_etcd_watch *w = arg;

    (void)fd;
    (void)what;
    if (w->retry_watch && w->rev > 0)
        do_watch(w);
    else
        do_list(w);
}

/*
 * A failure: the last state stays with the caller; retry after the next
 * backoff step, resuming the watch (@resume) or listing again. The first
 * failure while up is a warning; repeats are rate-limited.
 */
static void backoff(struct cm_etcd_watch *w, const char *what, const char *reason, bool resume)
{
    uint32_t delay = cm_backoff_next(&w->backoff, &w->rng);
    bool was_up = w->st.up || w->st.last_error[0] == '\0';

    cm_etcd_call_cancel(w->call);
    w->call = NULL;
    cm_etcd_call_cancel(w->check);
    w->check = NULL;
    evtimer_del(w->check_timer);
    w->retry_watch = resume && w->rev > 0;
    w->st.failures++;
    snprintf(w->st.last_error, sizeof(w->st.last_error), "%s: %s", what, reason);
    if (was_up)
        cm_log_warn("etcd: %s failed: %s; keeping the last state, retry in %" PRIu32
                    " ms at %s (%s)",
                    what, reason, delay, cm_etcd_endpoint(w->e),
                    w->retry_watch ? "resuming the watch" : "listing");
    else
        cm_log_ratelimited(&w->rl, CM_LOG_WARN,
                           "etcd: still failing: %s failed: %s; keeping the last state, "
                           "retry in %" PRIu32 " ms at %s (failures=%" PRIu64 ")",
                           what, reason, delay, cm_etcd_endpoint(w->e), w->st.failures);
    set_up(w, false);
    w->state = WS_BACKOFF;
    timer_arm(w->timer, delay > 0 ? delay : 1);
}

/* ---- the list ---- */

static void on_list_done(void *arg, const struct cm_etcd_result *res)
{
    struct cm_etcd_watch *w = arg;
    struct cm_etcd_range r;
    char err[CM_ETCD_ERR_MAX];

    w->call = NULL;
    if (res->kind != CM_ETCD_OK) {
        backoff(w, "list", res->reason, false);
        return;
    }
    if (cm_etcd_parse_range(res->body, res->len, &r, err, sizeof(err)) != CM_OK) {
        backoff(w, "list", err, false);
        return;
    }
    w->st.lists++;
    w->st.synced = true;
    w->st.etcd_revision = r.revision;
    w->rev = r.revision;
    cm_log_info("etcd: listed %s at %s: %zu keys, revision=%" PRId64, w->prefix, res->endpoint,
                r.count, r.revision);
    if (w->cbs.sync != NULL)
        w->cbs.sync(w->cbs.arg, r.kvs, r.count, r.revision);
    cm_etcd_range_fini(&r);
    do_watch(w);
}

static void do_list(struct cm_etcd_watch *w)
{
    char *body = cm_etcd_body_range(w->prefix, w->prefix_len, true, false);
    int rc;

    w->state = WS_LISTING;
    rc = cm_etcd_call(w->e, CM_ETCD_PATH_RANGE, body, 0, NULL, on_list_done, w, &w->call);
    if (rc != CM_OK)
        backoff(w, "list", cm_strerror(rc), false);
}

/* ---- the check ---- */

static void on_check_done(void *arg, const struct cm_etcd_result *res)
{
    struct cm_etcd_watch *w = arg;
    char err[CM_ETCD_ERR_MAX];
    int64_t rev = 0;

    w->check = NULL;
    if (res->kind == CM_ETCD_TRANSPORT || res->kind == CM_ETCD_UNAVAILABLE) {
        /* The member the watch goes through cannot serve a read: drop it. */
        snprintf(err, sizeof(err), "%s at %s", res->reason, res->endpoint);
        backoff(w, "check", err, true); /* cm_etcd moved on to the next member */
        return;
    }
    if (res->kind == CM_ETCD_OK &&
        cm_etcd_parse_revision(res->body, res->len, &rev, err, sizeof(err)) == CM_OK)
        w->st.etcd_revision = rev;
    else if (res->kind != CM_ETCD_OK)
        cm_log_ratelimited(&w->rl, CM_LOG_WARN, "etcd: check of %s refused at %s: %s", w->prefix,
                           res->endpoint, res->reason);
    timer_arm(w->check_timer, w->p.check_interval_ms);
}

static void on_check_timer(evutil_socket_t fd, short what, void *arg)
{
    struct cm_etcd_watch *w = arg;
    char *body;
    int rc;

    (void)fd;
    (void)what;
    if (w->state != WS_WATCHING || w->check != NULL)
        return;
    body = cm_etcd_body_range(w->prefix, w->prefix_len, true, true);
    rc = cm_etcd_call(w->e, CM_ETCD_PATH_RANGE, body, (long)w->p.check_timeout_ms, NULL,
                      on_check_done, w, &w->check);
    if (rc != CM_OK)
        timer_arm(w->check_timer, w->p.check_interval_ms);
}

/* ---- the watch ---- */

static int stop_stream(struct cm_etcd_watch *w, enum watch_next next, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int stop_stream(struct cm_etcd_watch *w, enum watch_next next, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(w->why, sizeof(w->why), fmt, ap);
    va_end(ap);
    w->next = next;
    return 1;
}

static void deliver(struct cm_etcd_watch *w, const struct cm_etcd_watch_msg *m)
{
    int64_t seen = w->rev; /* the events of one transaction share a revision */

    for (size_t i = 0; i < m->count; i++) {
        const struct cm_etcd_event *ev = &m->events[i];

        if (ev->kv.mod_revision <= seen)
            continue; /* delivered already (a resume that overlaps) */
        w->st.events++;
        if (w->cbs.event != NULL)
            w->cbs.event(w->cbs.arg, ev);
        w->rev = ev->kv.mod_revision;
    }
    if (m->count == 0 && m->revision > w->rev)
        w->rev = m->revision; /* a progress report: nothing missed up to here */
    if (m->revision > w->st.etcd_revision)
        w->st.etcd_revision = m->revision;
}

static int on_line(void *arg, const char *line, size_t len)
{
    struct cm_etcd_watch *w = arg;
    struct cm_etcd_watch_msg m;
    char err[CM_ETCD_ERR_MAX];
    int rc = 0;

    if (cm_etcd_parse_watch(line, len, &m, err, sizeof(err)) != CM_OK)
        return stop_stream(w, WN_BACKOFF, "garbage in the watch stream: %s", err);
    w->stream_items++;
    switch (m.kind) {
    case CM_ETCD_WATCH_CREATED:
        set_up(w, true);
        break;
    case CM_ETCD_WATCH_EVENTS:
        deliver(w, &m);
        set_up(w, true);
        break;
    case CM_ETCD_WATCH_CANCELED:
        if (m.compact_revision > 0)
            rc = stop_stream(w, WN_RELIST,
                             "history compacted up to revision %" PRId64
                             " (delivered up to %" PRId64 ")",
                             m.compact_revision, w->rev);
        else if (m.code == CM_ETCD_CODE_UNAUTHENTICATED && !w->reauthed)
            rc = stop_stream(w, WN_REAUTH, "%s", m.reason);
        else
            rc = stop_stream(w, WN_BACKOFF, "watch canceled: %s",
                             m.reason[0] != '\0' ? m.reason : "no reason given");
        break;
    case CM_ETCD_WATCH_ERROR:
        rc = stop_stream(w, WN_BACKOFF, "watch stream error: %s", m.reason);
        break;
    }
    cm_etcd_watch_msg_fini(&m);
    return rc;
}

static int on_stream(void *arg, const char *data, size_t len)
{
    struct cm_etcd_watch *w = arg;
    int rc = cm_lines_feed(&w->lines, data, len, on_line, w);

    if (rc == CM_ETOOBIG || rc == CM_ENOMEM)
        return stop_stream(w, WN_BACKOFF, "watch message longer than %zu bytes", w->lines.max);
    return rc != CM_OK ? 1 : 0;
}

static void on_watch_done(void *arg, const struct cm_etcd_result *res)
{
    struct cm_etcd_watch *w = arg;
    char what[320];

    w->call = NULL;
    if (res->kind == CM_ETCD_OK && res->aborted && w->next == WN_RELIST) {
        w->st.compactions++;
        cm_log_info("etcd: %s: listing %s again", w->why, w->prefix);
        evtimer_del(w->check_timer);
        do_list(w);
    } else if (res->kind == CM_ETCD_OK && res->aborted && w->next == WN_REAUTH) {
        cm_log_info("etcd: watch refused the token (%s); authenticating again", w->why);
        cm_etcd_forget_token(w->e);
        w->reauthed = true;
        do_watch(w);
    } else if (res->kind == CM_ETCD_OK && res->aborted) {
        backoff(w, "watch", w->why, true);
    } else if (res->kind != CM_ETCD_OK) {
        snprintf(what, sizeof(what), "%s (at %s)", res->reason, res->endpoint);
        backoff(w, "watch", what, true);
    } else if (w->stream_items == 0 && cm_mono_ms() - w->stream_start_ms < 1000) {
        backoff(w, "watch", "stream closed at once", true); /* do not spin */
    } else {
        cm_log_debug("etcd: watch stream of %s ended; watching again", w->prefix);
        w->st.resumes++;
        do_watch(w);
    }
}

static void do_watch(struct cm_etcd_watch *w)
{
    char *body = cm_etcd_body_watch(w->prefix, w->prefix_len, w->rev + 1);
    int rc;

    if (w->state == WS_BACKOFF && w->retry_watch)
        w->st.resumes++;
    w->state = WS_WATCHING;
    w->next = WN_NONE;
    w->stream_start_ms = cm_mono_ms();
    w->stream_items = 0;
    cm_lines_reset(&w->lines);
    rc = cm_etcd_call(w->e, CM_ETCD_PATH_WATCH, body, CM_ETCD_NO_TIMEOUT, on_stream, on_watch_done,
                      w, &w->call);
    if (rc != CM_OK) {
        backoff(w, "watch", cm_strerror(rc), true);
        return;
    }
    if (w->check == NULL)
        timer_arm(w->check_timer, w->p.check_interval_ms);
}

/* ---- API ---- */

struct cm_etcd_watch *cm_etcd_watch_new(struct event_base *base, struct cm_etcd *e,
                                        const char *prefix, size_t prefix_len,
                                        const struct cm_etcd_watch_params *p,
                                        const struct cm_etcd_watch_cbs *cbs)
{
    struct cm_etcd_watch *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return NULL;
    w->base = base;
    w->e = e;
    w->p = *p;
    w->cbs = *cbs;
    w->prefix = strndup(prefix, prefix_len);
    w->prefix_len = prefix_len;
    cm_backoff_init(&w->backoff, p->backoff_min_ms, p->backoff_max_ms, CM_BACKOFF_JITTER_EQUAL);
    w->rl = (struct cm_log_ratelimit)CM_LOG_RATELIMIT_INIT(1, 30);
    cm_rand_seed(&w->rng, w);
    cm_lines_init(&w->lines, CM_ETCD_BODY_MAX);
    w->timer = evtimer_new(base, on_backoff_timer, w);
    w->check_timer = evtimer_new(base, on_check_timer, w);
    if (w->prefix == NULL || w->timer == NULL || w->check_timer == NULL) {
        cm_etcd_watch_free(w);
        return NULL;
    }
    return w;
}

void cm_etcd_watch_start(struct cm_etcd_watch *w)
{
    do_list(w);
}

void cm_etcd_watch_free(struct cm_etcd_watch *w)
{
    if (w == NULL)
        return;
    cm_etcd_call_cancel(w->call);
    cm_etcd_call_cancel(w->check);
    if (w->timer != NULL)
        event_free(w->timer);
    if (w->check_timer != NULL)
        event_free(w->check_timer);
    cm_lines_fini(&w->lines);
    free(w->prefix);
    free(w);
}

void cm_etcd_watch_get_stats(const struct cm_etcd_watch *w, struct cm_etcd_watch_stats *out)
{
    *out = w->st;
    out->revision = w->rev;
}
