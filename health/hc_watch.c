/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_watch.c -- the list/watch/backoff state machine of hc_watch.h.
 *
 * Transfers are aborted from the data callback only by returning non-zero;
 * what to do next is remembered in w->next and acted upon in the done
 * callback, where starting new requests is allowed.
 */
#include "health/hc_watch.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "common/cm_backoff.h"
#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_lines.h"
#include "common/cm_log.h"
#include "common/cm_rand.h"
#include "common/cm_str.h"
#include "common/cm_time.h"
#include "health/hc_http.h"
#include "health/hc_kubeconfig.h"

#define ERR_BODY_MAX 65536u
#define URL_MAX      4096

enum watch_state {
    WS_IDLE = 0,     /* not started */
    WS_LISTING = 1,  /* a list page request is in flight */
    WS_WATCHING = 2, /* a watch stream is open */
    WS_BACKOFF = 3,  /* waiting for the retry timer */
};

/* What the done callback does after the data callback aborted a transfer. */
enum watch_next {
    WN_NONE = 0,    /* not aborted */
    WN_RELIST = 1,  /* 410 Gone: relist now */
    WN_BACKOFF = 2, /* garbage, error event, overflow: relist after backoff */
};

struct hc_watch {
    struct event_base *base;        /* borrowed */
    struct hc_http *http;           /* borrowed */
    const struct hc_kube_target *t; /* borrowed */
    const char *member;             /* borrowed */
    enum hc_k8s_kind kind;
    struct hc_watch_params p;
    struct hc_watch_cbs cbs;
    enum watch_state state;
    struct hc_http_req *req;     /* borrowed handle of the transfer in flight */
    struct event *timer;         /* owned: backoff */
    struct cm_buf body;          /* list page or error body */
    struct cm_lines lines;       /* watch stream splitter */
    struct hc_k8s_obj **pending; /* owned: objects of the pages listed so far */
    size_t pending_count;
    char *cont; /* owned continue token of the list in progress */
    char *rv;   /* owned resourceVersion to watch from */
    enum watch_next next;
    char why[HC_K8S_ERR_MAX + 64]; /* reason for next */
    struct cm_backoff backoff;     /* reset by a success */
    bool retry_watch;              /* the backoff timer rewatches from rv instead of relisting */
    uint64_t rng;
    time_t stream_start;
    uint64_t stream_items;
    struct hc_watch_stats st;
    char path[HC_WATCH_PATH_MAX]; /* the collection: the kind's, or narrowed by hc_watch_scope */
    char *field_selector;         /* owned, NULL = none */
};

static void do_list(struct hc_watch *w);
static void do_watch(struct hc_watch *w);

void hc_watch_params_default(struct hc_watch_params *p)
{
    p->backoff_min_ms = 500;
    p->backoff_max_ms = 30000;
    p->watch_timeout_s = 300;
    p->list_timeout_ms = 30000;
    p->page_limit = 500;
}

void hc_watch_params_from_conf(struct hc_watch_params *p, const struct cm_conf *conf)
{
    const struct cm_conf_health_api *a = &conf->health.api;

    p->backoff_min_ms = a->backoff_min_ms;
    p->backoff_max_ms = a->backoff_max_ms;
    p->watch_timeout_s = a->watch_timeout_s;
    p->list_timeout_ms = a->list_timeout_ms;
    p->page_limit = a->list_limit;
}

static const char *res(const struct hc_watch *w)
{
    return hc_k8s_kind_name(w->kind);
}

static void free_pending(struct hc_watch *w)
{
    for (size_t i = 0; i < w->pending_count; i++)
        hc_k8s_obj_free(w->pending[i]);
    free(w->pending);
    w->pending = NULL;
    w->pending_count = 0;
    free(w->cont);
    w->cont = NULL;
}

static void set_status(struct hc_watch *w, bool ok, long http_status)
{
    if (ok) {
        cm_backoff_reset(&w->backoff);
        if (w->st.healthy)
            return;
        w->st.healthy = true;
    } else {
        w->st.errors++;
        w->st.healthy = false;
    }
    if (w->cbs.status != NULL)
        w->cbs.status(w->cbs.arg, w->kind, ok, http_status);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct hc_watch *w = arg;

    (void)fd;
    (void)what;
    if (w->retry_watch && w->rv != NULL)
        do_watch(w);
    else
        do_list(w);
}

/* Schedules a relist after the next backoff step: 0.5 s doubling to 30 s,
 * the delay drawn from [step/2, step) ("equal jitter"). */
static void backoff(struct hc_watch *w, const char *what, long status, const char *reason)
{
    struct timeval tv;
    uint32_t delay;

    free_pending(w);
    w->retry_watch = false;
    delay = cm_backoff_next(&w->backoff, &w->rng);
    cm_log_warn("member=%s resource=%s: %s failed: %s%s; retry in %" PRIu32 " ms", w->member,
                res(w), what, reason,
                status == 401 || status == 403 ? " (credentials rejected)" : "", delay);
    set_status(w, false, status);
    w->state = WS_BACKOFF;
    tv = cm_ms_to_timeval(delay);
    evtimer_add(w->timer, &tv);
}

static int append_param(struct cm_buf *u, const char *key, const char *val)
{
    char *esc = curl_easy_escape(NULL, val, 0);
    int rc;

    if (esc == NULL)
        return CM_ENOMEM;
    rc = cm_buf_printf(u, "&%s=%s", key, esc);
    curl_free(esc);
    return rc;
}

static int on_body(void *arg, long status, const char *data, size_t len)
{
    struct hc_watch *w = arg;

    (void)status;
    if (cm_buf_append(&w->body, data, len) != CM_OK) {
        snprintf(w->why, sizeof(w->why), "response larger than %zu bytes", w->body.max);
        w->next = WN_BACKOFF;
        return 1;
    }
    return 0;
}

static void describe_http(struct hc_watch *w, long status, char *out, size_t cap)
{
    char msg[160];

    hc_k8s_status_parse(w->body.data != NULL ? w->body.data : "", w->body.len, msg, sizeof(msg));
    for (char *p = msg; *p != '\0'; p++) {
        if (*p == '\n' || *p == '\r' || *p == '"')
            *p = ' ';
    }
    snprintf(out, cap, "HTTP %ld%s%s%s", status, msg[0] != '\0' ? " \"" : "", msg,
             msg[0] != '\0' ? "\"" : "");
}

static void list_page_done(struct hc_watch *w)
{
    char err[HC_K8S_ERR_MAX] = "";
    struct hc_k8s_list l;
    struct hc_k8s_obj **np;
    int rc;

    rc = hc_k8s_list_parse(w->body.data != NULL ? w->body.data : "", w->body.len, w->kind, &l, err,
                           sizeof(err));
    cm_buf_fini(&w->body);
    if (rc != CM_OK) {
        backoff(w, "list", 0, rc == CM_ENOMEM ? "out of memory" : err);
        return;
    }
    np = realloc(w->pending, (w->pending_count + l.count + 1) * sizeof(*np));
    if (np == NULL) {
        hc_k8s_list_fini(&l);
        backoff(w, "list", 0, "out of memory");
        return;
    }
    w->pending = np;
    if (l.count > 0) /* an empty page may have no array at all */
        memcpy(np + w->pending_count, l.items, l.count * sizeof(*np));
    w->pending_count += l.count;
    l.count = 0;
    free(w->cont);
    w->cont = l.continue_token;
    l.continue_token = NULL;
    if (w->cont != NULL) {
        hc_k8s_list_fini(&l);
        do_list(w);
        return;
    }
    free(w->rv);
    w->rv = l.resource_version;
    l.resource_version = NULL;
    hc_k8s_list_fini(&l);
    if (w->st.lists++ > 0)
        w->st.relists++;
    w->st.synced = true;
    cm_log_info("member=%s resource=%s: listed %zu objects rv=%s", w->member, res(w),
                w->pending_count, w->rv != NULL ? w->rv : "-");
    if (w->cbs.sync != NULL)
        w->cbs.sync(w->cbs.arg, w->kind, w->pending, w->pending_count);
    else
        for (size_t i = 0; i < w->pending_count; i++)
            hc_k8s_obj_free(w->pending[i]);
    free(w->pending);
    w->pending = NULL;
    w->pending_count = 0;
    set_status(w, true, 0);
    do_watch(w);
}

static void on_list_done(void *arg, int rc, long status, bool aborted, const char *reason)
{
    struct hc_watch *w = arg;
    char what[512];

    w->req = NULL;
    if (aborted) {
        cm_buf_fini(&w->body);
        backoff(w, "list", 0, w->why);
    } else if (rc != CM_OK) {
        cm_buf_fini(&w->body);
        backoff(w, "list", 0, reason);
    } else if (status == 410 && w->cont != NULL) {
        /* The continue token expired: start the list over. */
        cm_log_info("member=%s resource=%s: list continue token expired; listing again", w->member,
                    res(w));
        cm_buf_fini(&w->body);
        free_pending(w);
        do_list(w);
    } else if (status != 200) {
        describe_http(w, status, what, sizeof(what));
        cm_buf_fini(&w->body);
        backoff(w, "list", status, what);
    } else {
        list_page_done(w);
    }
}

static void do_list(struct hc_watch *w)
{
    struct cm_curl_opts o = {
        .timeout_ms = w->p.list_timeout_ms, .on_data = on_body, .on_done = on_list_done, .arg = w};
    struct cm_buf u;
    int rc;

    w->state = WS_LISTING;
    w->next = WN_NONE;
    cm_buf_init(&w->body, HC_K8S_LIST_MAX);
    cm_buf_init(&u, URL_MAX);
    rc = cm_buf_printf(&u, "%s%s?limit=%" PRIu32, w->t->server, w->path, w->p.page_limit);
    if (rc == CM_OK && w->field_selector != NULL)
        rc = append_param(&u, "fieldSelector", w->field_selector);
    if (rc == CM_OK && w->cont != NULL)
        rc = append_param(&u, "continue", w->cont);
    if (rc == CM_OK)
        rc = hc_http_get(w->http, w->t, u.data, &o, &w->req);
    cm_buf_fini(&u);
    if (rc != CM_OK) {
        cm_buf_fini(&w->body);
        backoff(w, "list", 0, cm_strerror(rc));
    }
}

static int on_line(void *arg, const char *line, size_t len)
{
    struct hc_watch *w = arg;
    char err[HC_K8S_ERR_MAX] = "";
    struct hc_k8s_event ev;
    int rc;

    rc = hc_k8s_event_parse(line, len, w->kind, &ev, err, sizeof(err));
    if (rc != CM_OK) {
        snprintf(w->why, sizeof(w->why), "garbage in watch stream: %s",
                 rc == CM_ENOMEM ? "out of memory" : err);
        w->next = WN_BACKOFF;
        return 1;
    }
    if (ev.type == HC_K8S_ERROR) {
        snprintf(w->why, sizeof(w->why), "ERROR event code=%d", ev.code);
        w->next = ev.code == 410 ? WN_RELIST : WN_BACKOFF;
        hc_k8s_event_fini(&ev);
        return 1;
    }
    if (ev.resource_version != NULL) {
        free(w->rv);
        w->rv = ev.resource_version;
        ev.resource_version = NULL;
    }
    w->stream_items++;
    if (ev.type == HC_K8S_BOOKMARK) {
        w->st.bookmarks++;
    } else {
        w->st.events++;
        if (w->cbs.event != NULL)
            w->cbs.event(w->cbs.arg, w->kind, ev.type, ev.obj);
        else
            hc_k8s_obj_free(ev.obj);
        ev.obj = NULL;
    }
    hc_k8s_event_fini(&ev);
    set_status(w, true, 0);
    return 0;
}

static int on_stream(void *arg, long status, const char *data, size_t len)
{
    struct hc_watch *w = arg;
    int rc;

    if (status != 200)
        return on_body(arg, status, data, len);
    rc = cm_lines_feed(&w->lines, data, len, on_line, w);
    if (rc == CM_ETOOBIG || rc == CM_ENOMEM) {
        snprintf(w->why, sizeof(w->why), "watch event line longer than %zu bytes", w->lines.max);
        w->next = WN_BACKOFF;
    }
    return rc != CM_OK ? 1 : 0;
}

static void on_watch_done(void *arg, int rc, long status, bool aborted, const char *reason)
{
    struct hc_watch *w = arg;
    char what[512];

    w->req = NULL;
    what[0] = '\0';
    if (rc == CM_OK && status != 200)
        describe_http(w, status, what, sizeof(what));
    cm_buf_fini(&w->body);
    if (aborted && w->next == WN_RELIST) {
        cm_log_info("member=%s resource=%s: watch: resourceVersion too old (410 Gone); "
                    "relisting",
                    w->member, res(w));
        do_list(w);
    } else if (aborted) {
        backoff(w, "watch", 0, w->why);
    } else if (status == 410) {
        cm_log_info("member=%s resource=%s: watch: HTTP 410 Gone; relisting", w->member, res(w));
        do_list(w);
    } else if (rc == CM_OK && status != 200) {
        backoff(w, "watch", status, what);
    } else if (rc != CM_OK && rc != CM_ETIMEDOUT) {
        snprintf(what, sizeof(what), "stream dropped: %s", reason);
        backoff(w, "watch", 0, what);
        w->retry_watch = true; /* resume from the last resourceVersion */
    } else if (w->stream_items == 0 && time(NULL) - w->stream_start < 2) {
        /* Ended at once with nothing in it: do not spin. */
        backoff(w, "watch", 0, "stream closed immediately");
    } else {
        cm_log_debug("member=%s resource=%s: watch stream ended; rewatching", w->member, res(w));
        do_watch(w);
    }
}

static void do_watch(struct hc_watch *w)
{
    uint32_t ts = w->p.watch_timeout_s;
    struct cm_curl_opts o = {.on_data = on_stream, .on_done = on_watch_done, .arg = w};
    struct cm_buf u;
    int rc;

    /* Spread reconnects: timeoutSeconds within +-10 s of the base (290..310). */
    if (ts > 20)
        ts = ts - 10 + cm_rand_below(&w->rng, 21);
    o.timeout_ms = (long)ts * 1000 + 30000; /* the server ends it first */
    w->state = WS_WATCHING;
    w->next = WN_NONE;
    w->stream_start = time(NULL);
    w->stream_items = 0;
    cm_lines_reset(&w->lines);
    cm_buf_init(&w->body, ERR_BODY_MAX);
    cm_buf_init(&u, URL_MAX);
    rc = cm_buf_printf(&u, "%s%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=%" PRIu32,
                       w->t->server, w->path, ts);
    if (rc == CM_OK && w->field_selector != NULL)
        rc = append_param(&u, "fieldSelector", w->field_selector);
    if (rc == CM_OK && w->rv != NULL)
        rc = append_param(&u, "resourceVersion", w->rv);
    if (rc == CM_OK)
        rc = hc_http_get(w->http, w->t, u.data, &o, &w->req);
    cm_buf_fini(&u);
    if (rc != CM_OK)
        backoff(w, "watch", 0, cm_strerror(rc));
}

struct hc_watch *hc_watch_new(struct event_base *base, struct hc_http *http,
                              const struct hc_kube_target *t, const char *member,
                              enum hc_k8s_kind kind, const struct hc_watch_params *p,
                              const struct hc_watch_cbs *cbs)
{
    struct hc_watch *w = calloc(1, sizeof(*w));

    if (w == NULL)
        return NULL;
    w->base = base;
    w->http = http;
    w->t = t;
    w->member = member;
    w->kind = kind;
    cm_strlcpy(w->path, hc_k8s_kind_path(kind), sizeof(w->path));
    w->p = *p;
    w->cbs = *cbs;
    cm_backoff_init(&w->backoff, p->backoff_min_ms, p->backoff_max_ms, CM_BACKOFF_JITTER_EQUAL);
    cm_rand_seed(&w->rng, w);
    cm_buf_init(&w->body, ERR_BODY_MAX);
    cm_lines_init(&w->lines, HC_K8S_LINE_MAX);
    w->timer = evtimer_new(base, on_timer, w);
    if (w->timer == NULL) {
        hc_watch_free(w);
        return NULL;
    }
    return w;
}

int hc_watch_scope(struct hc_watch *w, const char *ns, const char *field_selector)
{
    char path[HC_WATCH_PATH_MAX];
    char *fs = NULL;
    int rc;

    rc = hc_k8s_kind_path_ns(w->kind, ns, path, sizeof(path));
    if (rc != CM_OK)
        return rc;
    if (field_selector != NULL) {
        fs = strdup(field_selector);
        if (fs == NULL)
            return CM_ENOMEM;
    }
    memcpy(w->path, path, sizeof(path));
    free(w->field_selector);
    w->field_selector = fs;
    return CM_OK;
}

int hc_watch_start(struct hc_watch *w)
{
    do_list(w);
    return CM_OK;
}

void hc_watch_free(struct hc_watch *w)
{
    if (w == NULL)
        return;
    hc_http_req_cancel(w->req);
    if (w->timer != NULL)
        event_free(w->timer);
    free_pending(w);
    cm_buf_fini(&w->body);
    cm_lines_fini(&w->lines);
    free(w->rv);
    free(w->field_selector);
    free(w);
}

void hc_watch_get_stats(const struct hc_watch *w, struct hc_watch_stats *out)
{
    *out = w->st;
}
