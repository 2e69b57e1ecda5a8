/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_curl.c -- libcurl multi_socket on libevent (curl docs/examples/
 * multi-event.c): curl tells us which sockets to watch (socket callback) and
 * when to call it back (timer callback); libevent tells curl what happened
 * through curl_multi_socket_action(); finished transfers are collected with
 * curl_multi_info_read() after every action.
 *
 * Invariant: a request is in c->reqs exactly while its easy handle is added
 * to the multi handle. Done callbacks run after the request left both.
 */
#include "common/cm_curl.h"

#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/crypto.h>

#include "common/cm_err.h"
#include "common/cm_str.h"
#include "common/cm_time.h"

struct cm_curl {
    struct event_base *base;       /* borrowed */
    CURLM *multi;                  /* owned */
    struct event *timer;           /* owned: curl's single timeout */
    LIST_HEAD(, cm_curl_req) reqs; /* owned list of requests in flight */
    size_t active;
};

struct cm_curl_req {
    struct cm_curl *c;             /* borrowed */
    CURL *easy;                    /* owned */
    struct curl_slist *headers;    /* owned; may hold credentials: wiped on free */
    struct curl_slist *connect_to; /* owned; CURLOPT_CONNECT_TO, NULL if none */
    struct cm_curl_opts o;
    bool aborted;
    char errbuf[CURL_ERROR_SIZE];
    LIST_ENTRY(cm_curl_req) link;
};

/* Per-socket state, attached with curl_multi_assign(). */
struct sock_ctx {
    struct cm_curl *c;
    curl_socket_t fd;
    struct event *ev; /* owned */
};

static void check_multi_info(struct cm_curl *c);

void cm_curl_headers_free(struct curl_slist *headers)
{
    for (struct curl_slist *s = headers; s != NULL; s = s->next)
        OPENSSL_cleanse(s->data, strlen(s->data));
    curl_slist_free_all(headers);
}

static void req_unlink(struct cm_curl_req *r)
{
    struct cm_curl *c = r->c;

    LIST_REMOVE(r, link);
    c->active--;
}

static void req_free(struct cm_curl_req *r)
{
    /* The easy handle first: it still points at both lists. */
    curl_easy_cleanup(r->easy);
    cm_curl_headers_free(r->headers);
    curl_slist_free_all(r->connect_to);
    free(r);
}

static void on_socket_event(evutil_socket_t fd, short what, void *arg)
{
    struct sock_ctx *sc = arg;
    struct cm_curl *c = sc->c;
    int action =
        ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running = 0;

    curl_multi_socket_action(c->multi, fd, action, &running);
    check_multi_info(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct cm_curl *c = arg;
    int running = 0;

    (void)fd;
    (void)what;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_multi_info(c);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
    struct cm_curl *c = arg;
    struct timeval tv;

    (void)multi;
    if (timeout_ms < 0) {
        evtimer_del(c->timer);
        return 0;
    }
    tv = cm_ms_to_timeval((uint64_t)timeout_ms);
    /* 0 means "call socket_action now": the loop runs it on its next turn. */
    return evtimer_add(c->timer, &tv) == 0 ? 0 : -1;
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *arg, void *sockp)
{
    struct cm_curl *c = arg;
    struct sock_ctx *sc = sockp;
    short kind;

    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (sc != NULL) {
            event_free(sc->ev);
            free(sc);
            curl_multi_assign(c->multi, s, NULL);
        }
        return 0;
    }
    kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0) |
                   EV_PERSIST);
    if (sc == NULL) {
        sc = calloc(1, sizeof(*sc));
        if (sc == NULL)
            return -1;
        sc->c = c;
        sc->fd = s;
        curl_multi_assign(c->multi, s, sc);
    } else {
        event_free(sc->ev);
    }
    sc->ev = event_new(c->base, s, kind, on_socket_event, sc);
    if (sc->ev == NULL || event_add(sc->ev, NULL) != 0)
        return -1;
    return 0;
}

static int map_curl(CURLcode cc)
{
    switch (cc) {
    case CURLE_OK:
        return CM_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return CM_ETIMEDOUT;
    case CURLE_COULDNT_CONNECT:
        return CM_ECONNREFUSED;
    case CURLE_OUT_OF_MEMORY:
        return CM_ENOMEM;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
        return CM_EACCES;
    default:
        return CM_EIO;
    }
}

static void check_multi_info(struct cm_curl *c)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        struct cm_curl_req *r = NULL;
        struct cm_curl_opts o;
        char reason[CURL_ERROR_SIZE];
        long status = 0;
        bool aborted;
        int rc;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        rc = map_curl(msg->data.result);
        cm_strlcpy(reason, r->errbuf[0] != '\0' ? r->errbuf : curl_easy_strerror(msg->data.result),
                   sizeof(reason));
        o = r->o;
        aborted = r->aborted;
        if (o.on_info != NULL)
            o.on_info(o.arg, msg->easy_handle);
        curl_multi_remove_handle(c->multi, r->easy);
        req_unlink(r);
        req_free(r);
        if (o.on_done != NULL)
            o.on_done(o.arg, rc, status, aborted, reason);
    }
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
    struct cm_curl_req *r = arg;
    size_t n = size * nmemb;
    long status = 0;

    if (r->o.on_data == NULL)
        return n;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (r->o.on_data(r->o.arg, status, ptr, n) != 0) {
        r->aborted = true;
        return 0; /* CURLE_WRITE_ERROR ends the transfer */
    }
    return n;
}

struct cm_curl *cm_curl_new(struct event_base *base)
{
    struct cm_curl *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    c->base = base;
    c->multi = curl_multi_init();
    c->timer = evtimer_new(base, on_timer, c);
    if (c->multi == NULL || c->timer == NULL) {
        cm_curl_free(c);
        return NULL;
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    return c;
}

void cm_curl_free(struct cm_curl *c)
{
    if (c == NULL)
        return;
    while (!LIST_EMPTY(&c->reqs))
        cm_curl_req_cancel(LIST_FIRST(&c->reqs));
    if (c->multi != NULL)
        curl_multi_cleanup(c->multi);
    if (c->timer != NULL)
        event_free(c->timer);
    free(c);
}

void cm_curl_req_cancel(struct cm_curl_req *r)
{
    if (r == NULL)
        return;
    curl_multi_remove_handle(r->c->multi, r->easy);
    req_unlink(r);
    req_free(r);
}

size_t cm_curl_active(const struct cm_curl *c)
{
    return c->active;
}

int cm_curl_start(struct cm_curl *c, CURL *easy, struct curl_slist *headers,
                  struct curl_slist *connect_to, const struct cm_curl_opts *o,
                  struct cm_curl_req **out)
{
    struct cm_curl_req *r = calloc(1, sizeof(*r));

    if (r == NULL) {
        cm_curl_headers_free(headers);
        curl_slist_free_all(connect_to);
        curl_easy_cleanup(easy);
        return CM_ENOMEM;
    }
    r->c = c;
    r->o = *o;
    r->easy = easy;
    r->headers = headers;
    r->connect_to = connect_to;
    if (connect_to != NULL)
        curl_easy_setopt(easy, CURLOPT_CONNECT_TO, connect_to);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)r);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                     o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000L);
    if (headers != NULL)
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    LIST_INSERT_HEAD(&c->reqs, r, link);
    c->active++;
    if (curl_multi_add_handle(c->multi, easy) != CURLM_OK) {
        req_unlink(r);
        req_free(r);
        return CM_ENOMEM;
    }
    if (out != NULL)
        *out = r;
    return CM_OK;
}
