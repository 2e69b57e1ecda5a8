/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_hc_publish.c -- hc_publish against in-process evhttp servers on
 * 127.0.0.1 that record every PUT and answer from a script (200, 409, 400,
 * 500, a closed connection, a delayed 200). One event loop drives both sides.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "common/cm_err.h"
#include "common/cm_log.h"
#include "common/cm_state.h"
#include "common/cm_str.h"
#include "common/cm_time.h"
#include "health/hc_http.h"
#include "health/hc_publish.h"

#define TOKEN     "t0ken-s3cret-value"
#define SRV_MAX   256
#define PEND_MAX  64
#define LONG_MS   60000 /* a full interval that never comes round in a test */
#define WAIT_MS   5000  /* deadline for things that must happen */
#define STEP_MS   5     /* the tick that bounds each loop turn */
#define ERR_OLDER "{\"error\":\"stale generation 1 <= 9 from vantage us-east-1\"}"
#define ERR_SAME                                                                                   \
    "{\"error\":\"stale generation 1 <= 1 from vantage us-east-1 (same generation, different "     \
    "content)\"}"
#define ERR_BAD "{\"error\":\"members.usa: missing region\"}"

enum act {
    ACT_200 = 0,      /* {"ok":true} */
    ACT_409_SAME = 1, /* 409, held generation 1 */
    ACT_409_OLD = 2,  /* 409, held generation 9 */
    ACT_400 = 3,      /* 400 with a reason */
    ACT_500 = 4,      /* 500 */
    ACT_CLOSE = 5,    /* close the connection without a reply */
    ACT_DELAY = 6,    /* 200 after srv.delay_ms */
    ACT_409_BASE = 7, /* 409, a delta's base is not held */
};

struct rec {
    char method[8];
    char path[64];
    char auth[128]; /* "" when absent */
    char ctype[64];
    long long generation; /* -1 if the body has none */
    size_t body_len;
    char body[2048]; /* the first bytes */
};

struct pend {
    struct srv *s;
    struct event *ev;             /* owned */
    struct evhttp_request *req;   /* delayed reply, or NULL */
    struct evhttp_connection *cn; /* to close, or NULL */
};

struct srv {
    struct event_base *base;
    struct evhttp *http;
    int port;
    enum act script[32]; /* actions for the first requests ... */
    size_t script_len;
    enum act dflt; /* ... then this */
    unsigned delay_ms;
    struct rec r[SRV_MAX];
    size_t count;
    struct pend pend[PEND_MAX];
};

struct fx {
    struct event_base *base;
    struct event *tick;
    struct hc_http *http;
    struct hc_publish *pub;
    struct srv *srv[2];
};

/* ---- clock and loop ----------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

typedef bool cond_fn(struct fx *f, const void *arg);

/* Runs the loop until @cond holds or @ms pass; returns whether it held. */
static bool run_until(struct fx *f, cond_fn *cond, const void *arg, int64_t ms)
{
    int64_t end = now_ms() + ms;

    while (cond == NULL || !cond(f, arg)) {
        if (now_ms() >= end)
            return cond == NULL;
        event_base_loop(f->base, EVLOOP_ONCE);
    }
    return true;
}

static void run_for(struct fx *f, int64_t ms)
{
    run_until(f, NULL, NULL, ms);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* ---- the fake consumer -------------------------------------------------- */

static struct pend *pend_get(struct srv *s)
{
    for (size_t i = 0; i < PEND_MAX; i++) {
        if (s->pend[i].ev == NULL)
            return &s->pend[i];
    }
    fail_msg("too many pending server actions");
    return NULL;
}

static void reply(struct evhttp_request *req, int code, const char *body)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evbuffer_add(evhttp_request_get_output_buffer(req), body, strlen(body));
    evhttp_send_reply(req, code, NULL, NULL);
}

static void on_pend(evutil_socket_t fd, short what, void *arg)
{
    struct pend *p = arg;

    (void)fd;
    (void)what;
    if (p->req != NULL)
        reply(p->req, 200, "{\"ok\":true}");
    if (p->cn != NULL)
        evhttp_connection_free(p->cn);
    event_free(p->ev);
    memset(p, 0, sizeof(*p));
}

static void pend_add(struct srv *s, struct evhttp_request *req, struct evhttp_connection *cn,
                     unsigned ms)
{
    struct pend *p = pend_get(s);
    struct timeval tv = cm_ms_to_timeval(ms);

    p->s = s;
    p->req = req;
    p->cn = cn;
    p->ev = evtimer_new(s->base, on_pend, p);
    assert_non_null(p->ev);
    evtimer_add(p->ev, &tv);
}

static void record(struct srv *s, struct evhttp_request *req)
{
    struct rec *r = &s->r[s->count++];
    struct evkeyvalq *in = evhttp_request_get_input_headers(req);
    struct evbuffer *buf = evhttp_request_get_input_buffer(req);
    const char *v;
    json_t *doc, *gen;

    r->body_len = evbuffer_get_length(buf);
    cm_strlcpy(r->method, evhttp_request_get_command(req) == EVHTTP_REQ_PUT ? "PUT" : "other",
               sizeof(r->method));
    cm_strlcpy(r->path, evhttp_request_get_uri(req), sizeof(r->path));
    v = evhttp_find_header(in, "Authorization");
    cm_strlcpy(r->auth, v != NULL ? v : "", sizeof(r->auth));
    v = evhttp_find_header(in, "Content-Type");
    cm_strlcpy(r->ctype, v != NULL ? v : "", sizeof(r->ctype));
    doc = json_loadb((const char *)evbuffer_pullup(buf, -1), r->body_len, 0, NULL);
    memcpy(r->body, evbuffer_pullup(buf, -1),
           r->body_len < sizeof(r->body) - 1 ? r->body_len : sizeof(r->body) - 1);
    r->body[r->body_len < sizeof(r->body) - 1 ? r->body_len : sizeof(r->body) - 1] = '\0';
    gen = json_object_get(doc, "generation");
    r->generation = json_is_integer(gen) ? json_integer_value(gen) : -1;
    json_decref(doc);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct srv *s = arg;
    size_t i = s->count;
    enum act a = i < s->script_len ? s->script[i] : s->dflt;

    assert_true(s->count < SRV_MAX);
    record(s, req);
    switch (a) {
    case ACT_200:
        reply(req, 200, "{\"ok\":true}");
        break;
    case ACT_409_SAME:
        reply(req, 409, ERR_SAME);
        break;
    case ACT_409_OLD:
        reply(req, 409, ERR_OLDER);
        break;
    case ACT_409_BASE:
        reply(req, 409, "{\"error\":\"base_generation: 2 is not the held generation 0\"}");
        break;
    case ACT_400:
        reply(req, 400, ERR_BAD);
        break;
    case ACT_500:
        reply(req, 500, "{\"error\":\"out of memory\"}");
        break;
    case ACT_CLOSE:
        /* Not from inside the callback: libevent still uses the connection. */
        pend_add(s, NULL, evhttp_request_get_connection(req), 0);
        break;
    case ACT_DELAY:
        pend_add(s, req, NULL, s->delay_ms);
        break;
    }
}

/* @fd -1: listens on any free port; else on @fd, a bound socket (see reserve_port). */
static struct srv *srv_new(struct event_base *base, int fd)
{
    struct srv *s = calloc(1, sizeof(*s));
    struct evhttp_bound_socket *bs;
    struct sockaddr_in sin;
    socklen_t slen = sizeof(sin);

    assert_non_null(s);
    s->base = base;
    s->http = evhttp_new(base);
    assert_non_null(s->http);
    evhttp_set_gencb(s->http, on_request, s);
    if (fd < 0) {
        bs = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0);
    } else {
        assert_int_equal(listen(fd, 16), 0);
        assert_int_equal(evutil_make_socket_nonblocking(fd), 0);
        bs = evhttp_accept_socket_with_handle(s->http, fd); /* owns fd now */
    }
    assert_non_null(bs);
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sin, &slen),
                     0);
    s->port = ntohs(sin.sin_port);
    return s;
}

static void srv_free(struct srv *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < PEND_MAX; i++) {
        struct pend *p = &s->pend[i];

        if (p->ev == NULL)
            continue;
        event_free(p->ev);
        if (p->req != NULL) /* frees it, also when the client has gone */
            reply(p->req, 503, "{\"error\":\"shutting down\"}");
        if (p->cn != NULL)
            evhttp_connection_free(p->cn);
    }
    evhttp_free(s->http);
    free(s);
}

static void srv_url(const struct srv *s, char *buf, size_t cap)
{
    snprintf(buf, cap, "http://127.0.0.1:%d", s->port);
}

/*
 * A socket bound to a free loopback port but not listening: connections to
 * it are refused, and no other process can take the port before srv_new()
 * starts listening on it.
 */
static int reserve_port(int *port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t slen = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

/* ---- fixture ------------------------------------------------------------ */

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    struct timeval tv = {.tv_sec = 0, .tv_usec = STEP_MS * 1000};

    if (f == NULL)
        return -1;
    f->base = event_base_new();
    f->http = hc_http_new(f->base);
    f->tick = event_new(f->base, -1, EV_PERSIST, on_tick, NULL);
    if (f->base == NULL || f->http == NULL || f->tick == NULL || event_add(f->tick, &tv) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    hc_publish_free(f->pub);
    hc_http_free(f->http);
    srv_free(f->srv[0]);
    srv_free(f->srv[1]);
    event_free(f->tick);
    event_base_free(f->base);
    free(f);
    return 0;
}

static void make_pub(struct fx *f, const char *const *urls, size_t n, const char *token,
                     uint32_t full_ms, uint32_t bmin_ms, uint32_t bmax_ms)
{
    struct hc_publish_params p;

    hc_publish_params_default(&p);
    p.full_interval_ms = full_ms;
    p.backoff_min_ms = bmin_ms;
    p.backoff_max_ms = bmax_ms;
    p.timeout_ms = 3000;
    f->pub = hc_publish_new(f->base, f->http, urls, n, token, &p);
    assert_non_null(f->pub);
    assert_int_equal(hc_publish_target_count(f->pub), n);
}

static int offer(struct fx *f, uint64_t gen)
{
    char doc[256];
    int n = snprintf(doc, sizeof(doc),
                     "{\"version\":1,\"vantage\":\"us-east-1\",\"generation\":%llu,"
                     "\"members\":{},\"services\":{}}",
                     (unsigned long long)gen);

    return hc_publish_offer(f->pub, gen, doc, (size_t)n);
}

static struct hc_publish_target_stats stats(const struct fx *f, size_t i)
{
    struct hc_publish_target_stats st;

    hc_publish_target_stats(f->pub, i, &st);
    return st;
}

/* Conditions for run_until. */
struct want {
    size_t target;
    uint64_t value;
};

static bool acked_idle(struct fx *f, const void *arg)
{
    const struct want *w = arg;
    struct hc_publish_target_stats st = stats(f, w->target);

    return st.acked_generation >= w->value && !st.in_flight;
}

static bool attempts_done(struct fx *f, const void *arg)
{
    const struct want *w = arg;
    struct hc_publish_target_stats st = stats(f, w->target);

    return st.succeeded + st.failed >= w->value && !st.in_flight;
}

static bool srv_count(struct fx *f, const void *arg)
{
    const struct want *w = arg;

    return f->srv[w->target] != NULL && f->srv[w->target]->count >= w->value;
}

static bool sent_count(struct fx *f, const void *arg)
{
    const struct want *w = arg;

    return stats(f, w->target).sent >= w->value;
}

/* ---- tests -------------------------------------------------------------- */

static void test_first_offer_two_targets(void **state)
{
    struct fx *f = *state;
    char u0[64], u1[64], text[128], line[160];
    const char *urls[2] = {u0, u1};
    struct cm_buf m;

    f->srv[0] = srv_new(f->base, -1);
    f->srv[1] = srv_new(f->base, -1);
    srv_url(f->srv[0], u0, sizeof(u0));
    snprintf(u1, sizeof(u1), "http://127.0.0.1:%d/", f->srv[1]->port); /* trailing '/' */
    make_pub(f, urls, 2, TOKEN, LONG_MS, 50, 1000);
    run_for(f, 100);
    assert_int_equal(f->srv[0]->count + f->srv[1]->count, 0); /* nothing before an offer */
    assert_int_equal(stats(f, 0).sent, 0);

    assert_int_equal(offer(f, 1), CM_OK);
    assert_true(stats(f, 0).in_flight && stats(f, 1).in_flight); /* sent at once */
    assert_true(run_until(f, acked_idle, &(struct want){0, 1}, WAIT_MS));
    assert_true(run_until(f, acked_idle, &(struct want){1, 1}, WAIT_MS));
    for (size_t i = 0; i < 2; i++) {
        const struct rec *r = &f->srv[i]->r[0];
        struct hc_publish_target_stats st = stats(f, i);

        assert_int_equal(f->srv[i]->count, 1);
        assert_string_equal(r->method, "PUT");
        assert_string_equal(r->path, "/v1/state");
        assert_string_equal(r->auth, "Bearer " TOKEN);
        assert_string_equal(r->ctype, "application/json");
        assert_int_equal(r->generation, 1);
        assert_int_equal(r->body_len, (size_t)snprintf(text, sizeof(text),
                                                       "{\"version\":1,\"vantage\":\"us-east-1\","
                                                       "\"generation\":1,\"members\":{},"
                                                       "\"services\":{}}"));
        assert_true(st.ok);
        assert_false(st.in_flight);
        assert_int_equal(st.sent, 1);
        assert_int_equal(st.succeeded, 1);
        assert_int_equal(st.failed, 0);
        assert_int_equal(st.last_status, 200);
        assert_string_equal(st.last_error, "");
    }
    snprintf(text, sizeof(text), "http://127.0.0.1:%d", f->srv[1]->port);
    assert_string_equal(stats(f, 1).url, text); /* without the trailing '/' */

    cm_buf_init(&m, 1 << 20);
    hc_publish_metrics(f->pub, &m);
    snprintf(line, sizeof(line), "fedgslb_health_publish_sent_total{target=\"%s\"} 1\n", u0);
    assert_non_null(strstr(cm_buf_cstr(&m), line));
    snprintf(line, sizeof(line), "fedgslb_health_publish_acked_generation{target=\"%s\"} 1\n", u0);
    assert_non_null(strstr(cm_buf_cstr(&m), line));
    snprintf(line, sizeof(line), "fedgslb_health_publish_up{target=\"%s\"} 1\n", u0);
    assert_non_null(strstr(cm_buf_cstr(&m), line));
    snprintf(line, sizeof(line), "fedgslb_health_publish_failed_total{target=\"%s\"} 0\n", u0);
    assert_non_null(strstr(cm_buf_cstr(&m), line));
    assert_non_null(
        strstr(cm_buf_cstr(&m), "# TYPE fedgslb_health_publish_succeeded_total counter\n"));
    assert_null(strstr(cm_buf_cstr(&m), TOKEN));
    cm_buf_fini(&m);
}

static void test_no_token_no_header(void **state)
{
    struct fx *f = *state;
    char u0[64];
    const char *urls[1] = {u0};

    f->srv[0] = srv_new(f->base, -1);
    srv_url(f->srv[0], u0, sizeof(u0));
    make_pub(f, urls, 1, NULL, LONG_MS, 50, 1000);
    assert_int_equal(offer(f, 3), CM_OK);
    assert_true(run_until(f, acked_idle, &(struct want){0, 3}, WAIT_MS));
    assert_string_equal(f->srv[0]->r[0].auth, "");
}

/* Offers 1..50 quickly against a slow and a fast target: each sees a strictly
 * increasing sequence ending at 50, one PUT at a time. */
static void test_newest_only(void **state)
{
    struct fx *f = *state;
    char u0[64], u1[64];
    const char *urls[2] = {u0, u1};

    f->srv[0] = srv_new(f->base, -1);
    f->srv[0]->dflt = ACT_DELAY;
    f->srv[0]->delay_ms = 20;
    f->srv[1] = srv_new(f->base, -1);
    srv_url(f->srv[0], u0, sizeof(u0));
    srv_url(f->srv[1], u1, sizeof(u1));
    make_pub(f, urls, 2, TOKEN, LONG_MS, 50, 1000);
    for (uint64_t g = 1; g <= 50; g++) {
        assert_int_equal(offer(f, g), CM_OK);
        if (g % 5 == 0)
            event_base_loop(f->base, EVLOOP_NONBLOCK);
        if (g % 17 == 0)
            event_base_loop(f->base, EVLOOP_ONCE);
    }
    assert_true(run_until(f, acked_idle, &(struct want){0, 50}, WAIT_MS));
    assert_true(run_until(f, acked_idle, &(struct want){1, 50}, WAIT_MS));
    run_for(f, 100); /* nothing may follow */
    for (size_t t = 0; t < 2; t++) {
        const struct srv *s = f->srv[t];

        assert_true(s->count >= 2); /* generation 1 went out at once */
        assert_int_equal(s->r[0].generation, 1);
        for (size_t i = 1; i < s->count; i++)
            assert_true(s->r[i].generation > s->r[i - 1].generation);
        assert_int_equal(s->r[s->count - 1].generation, 50);
        assert_int_equal(stats(f, t).sent, s->count);
        assert_int_equal(stats(f, t).failed, 0);
    }
    /* The slow target cannot have taken one PUT per offer. */
    assert_true(f->srv[0]->count < 50);
}

/* Counts lines of the file open at @fd containing @needle. */
static int count_lines(int fd, const char *needle)
{
    char line[1024];
    FILE *fp;
    int n = 0, dupfd = dup(fd);

    assert_true(dupfd >= 0);
    fp = fdopen(dupfd, "r");
    assert_non_null(fp);
    rewind(fp);
    while (fgets(line, sizeof(line), fp) != NULL)
        n += strstr(line, needle) != NULL;
    fclose(fp);
    return n;
}

/* Connection refused, then the consumer starts: it gets the newest document;
 * backoff in between; the failure and the recovery are logged once each. */
static void test_refused_then_listening(void **state)
{
    struct fx *f = *state;
    char u0[64], logpath[] = "/tmp/test_hc_publish_XXXXXX";
    const char *urls[1] = {u0};
    int port, logfd, saved, fd = reserve_port(&port);
    struct hc_publish_target_stats st;

    logfd = mkstemp(logpath);
    assert_true(logfd >= 0);
    unlink(logpath); /* gone even if an assertion fails below */
    saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(logfd, STDERR_FILENO) >= 0);

    snprintf(u0, sizeof(u0), "http://127.0.0.1:%d", port);
    make_pub(f, urls, 1, TOKEN, LONG_MS, 50, 400);
    assert_int_equal(offer(f, 1), CM_OK);
    assert_true(run_until(f, sent_count, &(struct want){0, 3}, WAIT_MS));
    run_for(f, 600); /* without backoff this would be hundreds of attempts */
    st = stats(f, 0);
    assert_false(st.ok);
    assert_true(st.failed >= 3);
    assert_int_equal(st.last_status, 0);
    assert_int_equal(st.acked_generation, 0);
    assert_true(strlen(st.last_error) > 0);

    /* No attempt in flight when the consumer comes up: one queued in curl
     * would connect after listen() and deliver generation 1 first (seen on a
     * loaded machine), which is right but not what this test pins. */
    assert_true(run_until(f, attempts_done, &(struct want){0, st.failed}, WAIT_MS));
    assert_int_equal(offer(f, 2), CM_OK);
    assert_int_equal(offer(f, 3), CM_OK);
    f->srv[0] = srv_new(f->base, fd);
    assert_true(run_until(f, acked_idle, &(struct want){0, 3}, WAIT_MS));

    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);

    st = stats(f, 0);
    assert_true(st.ok);
    assert_true(st.sent > 1);
    assert_true(st.sent < 20);
    assert_int_equal(st.succeeded, 1);
    assert_int_equal(f->srv[0]->count, 1);
    assert_int_equal(f->srv[0]->r[0].generation, 3); /* the newest, nothing older */
    assert_int_equal(count_lines(logfd, "retrying with backoff"), 1);
    assert_int_equal(count_lines(logfd, "ok again"), 1);
    assert_int_equal(count_lines(logfd, u0), 2);
    assert_int_equal(count_lines(logfd, TOKEN), 0);
    close(logfd);
}

/* 500 and a dropped connection are transient: retried until accepted. */
static void test_transient_errors(void **state)
{
    struct fx *f = *state;
    char u0[64];
    const char *urls[1] = {u0};
    struct hc_publish_target_stats st;

    f->srv[0] = srv_new(f->base, -1);
    f->srv[0]->script[0] = ACT_500;
    f->srv[0]->script[1] = ACT_CLOSE;
    f->srv[0]->script[2] = ACT_500;
    f->srv[0]->script_len = 3;
    srv_url(f->srv[0], u0, sizeof(u0));
    make_pub(f, urls, 1, TOKEN, LONG_MS, 20, 100);
    assert_int_equal(offer(f, 4), CM_OK);
    assert_true(run_until(f, acked_idle, &(struct want){0, 4}, WAIT_MS));
    st = stats(f, 0);
    assert_true(st.ok);
    assert_true(st.failed >= 2);
    assert_int_equal(st.succeeded, 1);
    assert_true(f->srv[0]->count >= 4);
    for (size_t i = 0; i < f->srv[0]->count; i++)
        assert_int_equal(f->srv[0]->r[i].generation, 4);
}

/*
 * Consumers answer 200 to an identical re-push (cm_store), so a 409 for the
 * generation the target holds means it holds different content under that
 * generation: a conflict, reported and not retried before the full interval
 * (it used to count as success, which hid it).
 */
static void test_409_same_generation_is_a_conflict(void **state)
{
    struct fx *f = *state;
    char u0[64];
    const char *urls[1] = {u0};
    struct hc_publish_target_stats st;

    f->srv[0] = srv_new(f->base, -1);
    f->srv[0]->script[0] = ACT_409_SAME;
    f->srv[0]->script_len = 1;
    srv_url(f->srv[0], u0, sizeof(u0));
    make_pub(f, urls, 1, TOKEN, LONG_MS, 10, 100);
    assert_int_equal(offer(f, 1), CM_OK);
    assert_true(run_until(f, attempts_done, &(struct want){0, 1}, WAIT_MS));
    run_for(f, 300); /* no retry */
    st = stats(f, 0);
    assert_false(st.ok);
    assert_int_equal(st.acked_generation, 0);
    assert_int_equal(st.succeeded, 0);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.last_status, 409);
    assert_non_null(strstr(st.last_error, "same generation, different content"));
    assert_int_equal(f->srv[0]->count, 1);
}

/* 400 and a 409 for an older generation are permanent: no fast retry, the
 * reason is kept, the full interval sends again; a newer offer goes at once. */
static void test_permanent_errors(void **state)
{
    struct fx *f = *state;
    char u0[64], u1[64];
    const char *urls[2] = {u0, u1};
    struct hc_publish_target_stats st;

    f->srv[0] = srv_new(f->base, -1);
    f->srv[0]->dflt = ACT_400;
    f->srv[1] = srv_new(f->base, -1);
    f->srv[1]->dflt = ACT_409_OLD;
    srv_url(f->srv[0], u0, sizeof(u0));
    srv_url(f->srv[1], u1, sizeof(u1));
    make_pub(f, urls, 2, TOKEN, 800, 10, 20);
    assert_int_equal(offer(f, 1), CM_OK);
    assert_true(run_until(f, attempts_done, &(struct want){0, 1}, WAIT_MS));
    assert_true(run_until(f, attempts_done, &(struct want){1, 1}, WAIT_MS));
    run_for(f, 300); /* a backoff retry would come after 10-20 ms */
    assert_int_equal(f->srv[0]->count, 1);
    assert_int_equal(f->srv[1]->count, 1);

    st = stats(f, 0);
    assert_false(st.ok);
    assert_int_equal(st.failed, 1);
    assert_int_equal(st.acked_generation, 0);
    assert_int_equal(st.last_status, 400);
    assert_non_null(strstr(st.last_error, "members.usa: missing region"));
    st = stats(f, 1);
    assert_false(st.ok);
    assert_int_equal(st.acked_generation, 0);
    assert_int_equal(st.last_status, 409);
    assert_non_null(strstr(st.last_error, "stale generation 1 <= 9"));

    /* The full interval comes round. */
    assert_true(run_until(f, srv_count, &(struct want){0, 2}, WAIT_MS));
    assert_int_equal(f->srv[0]->r[1].generation, 1);

    /* A newer document is not a retry: it goes out at once. */
    assert_true(run_until(f, attempts_done, &(struct want){1, 2}, WAIT_MS));
    assert_true(run_until(f, attempts_done, &(struct want){0, 2}, WAIT_MS));
    assert_int_equal(offer(f, 2), CM_OK);
    assert_true(stats(f, 0).in_flight);
    assert_true(stats(f, 1).in_flight);
    assert_true(run_until(f, srv_count, &(struct want){1, 3}, WAIT_MS));
    assert_int_equal(f->srv[1]->r[2].generation, 2);
}

static void test_full_interval(void **state)
{
    struct fx *f = *state;
    char u0[64];
    const char *urls[1] = {u0};

    f->srv[0] = srv_new(f->base, -1);
    srv_url(f->srv[0], u0, sizeof(u0));
    make_pub(f, urls, 1, TOKEN, 200, 50, 1000);
    assert_int_equal(offer(f, 7), CM_OK);
    assert_true(run_until(f, srv_count, &(struct want){0, 3}, WAIT_MS));
    for (size_t i = 0; i < f->srv[0]->count; i++)
        assert_int_equal(f->srv[0]->r[i].generation, 7);
    assert_true(stats(f, 0).succeeded >= 2);
    assert_int_equal(stats(f, 0).acked_generation, 7);
    /* The first is the document, the resends of what the target holds are refreshes. */
    assert_null(strstr(f->srv[0]->r[0].body, "base_generation"));
    assert_string_equal(f->srv[0]->r[1].body,
                        "{\"version\":1,\"vantage\":\"us-east-1\",\"generation\":7,"
                        "\"base_generation\":7}");
}

static void test_older_offer_ignored(void **state)
{
    struct fx *f = *state;
    char u0[64];
    const char *urls[1] = {u0};

    f->srv[0] = srv_new(f->base, -1);
    srv_url(f->srv[0], u0, sizeof(u0));
    make_pub(f, urls, 1, TOKEN, LONG_MS, 50, 1000);
    assert_int_equal(offer(f, 5), CM_OK);
    assert_true(run_until(f, acked_idle, &(struct want){0, 5}, WAIT_MS));
    assert_int_equal(offer(f, 3), CM_OK);
    assert_false(stats(f, 0).in_flight);
    assert_int_equal(offer(f, 5), CM_OK);
    assert_false(stats(f, 0).in_flight);
    run_for(f, 200);
    assert_int_equal(f->srv[0]->count, 1);
    assert_int_equal(stats(f, 0).sent, 1);
    assert_int_equal(stats(f, 0).acked_generation, 5);
}

/* Freeing with a PUT in flight cancels it (checked under ASan). */
static void test_free_in_flight(void **state)
{
    struct fx *f = *state;
    char u0[64];
    const char *urls[1] = {u0};

    f->srv[0] = srv_new(f->base, -1);
    f->srv[0]->dflt = ACT_DELAY;
    f->srv[0]->delay_ms = 100;
    srv_url(f->srv[0], u0, sizeof(u0));
    make_pub(f, urls, 1, TOKEN, LONG_MS, 50, 1000);
    assert_int_equal(offer(f, 1), CM_OK);
    assert_true(run_until(f, srv_count, &(struct want){0, 1}, WAIT_MS));
    assert_true(stats(f, 0).in_flight);
    hc_publish_free(f->pub);
    f->pub = NULL;
    assert_int_equal(hc_http_active(f->http), 0);
    run_for(f, 200); /* the delayed reply meets a closed connection */
}

static int group_setup(void **state)
{
    (void)state;
    cm_log_init("health", CM_LOG_TEXT, CM_LOG_INFO);
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    curl_global_cleanup();
    return 0;
}

/* A document with services a..e (port @ports[i], 0: absent) and members rtt @rtt. */
static char *svc_doc(uint64_t gen, const unsigned ports[5], unsigned rtt)
{
    json_t *svcs = json_object(), *doc;
    char *text;

    for (unsigned i = 0; i < 5; i++) {
        char key[16];

        if (ports[i] == 0)
            continue;
        snprintf(key, sizeof(key), "ns/%c", 'a' + i);
        json_object_set_new(svcs, key,
                            json_pack("{s:i,s:{s:{s:[s],s:b,s:i}}}", "port", ports[i], "members",
                                      "usa", "addresses", "192.0.2.10", "healthy", 1,
                                      "ready_endpoints", 3));
    }
    doc = json_pack("{s:i,s:s,s:I,s:s,s:{s:{s:s,s:i}},s:o}", "version", 1, "vantage", "us-east-1",
                    "generation", (json_int_t)gen, "generated_at", "2026-11-21T07:00:00Z",
                    "members", "usa", "region", "us-east-1", "rtt_ms", rtt, "services", svcs);
    text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(doc);
    assert_non_null(text);
    return text;
}

static int offer_text(struct fx *f, uint64_t gen, const char *text)
{
    return hc_publish_offer(f->pub, gen, text, strlen(text));
}

/* @delta applied to @base gives @whole, byte for byte. */
static void assert_delta_gives(const char *base, const char *delta, const char *whole)
{
    struct cm_state *b = NULL, *got = NULL, *want = NULL;
    char err[CM_STATE_ERR_MAX];
    json_t *d = json_loads(delta, 0, NULL);
    char *x, *y;

    assert_non_null(d);
    assert_int_equal(cm_state_parse(base, strlen(base), NULL, &b, err, sizeof(err)), CM_OK);
    assert_int_equal(cm_state_parse(whole, strlen(whole), NULL, &want, err, sizeof(err)), CM_OK);
    if (cm_state_delta_apply(b, d, NULL, &got, err, sizeof(err)) != CM_OK)
        fail_msg("delta refused: %s", err);
    x = cm_state_dump(got);
    y = cm_state_dump(want);
    assert_string_equal(x, y);
    free(x);
    free(y);
    json_decref(d);
    cm_state_free(b);
    cm_state_free(got);
    cm_state_free(want);
}

/* Deltas from the acknowledged document; the whole one first, after a 409 and when smaller. */
static void test_deltas(void **state)
{
    struct fx *f = *state;
    char u0[64];
    const char *urls[1] = {u0};
    const unsigned p1[5] = {80, 81, 82, 83, 84}, p2[5] = {80, 91, 82, 83, 84},
                   p3[5] = {80, 91, 0, 83, 84}, p4[5] = {1, 2, 3, 4, 5};
    char *d1 = svc_doc(1, p1, 5), *d2 = svc_doc(2, p2, 5), *d3 = svc_doc(3, p3, 6),
         *d4 = svc_doc(4, p4, 6);
    struct cm_buf m;
    const struct rec *r;

    f->srv[0] = srv_new(f->base, -1);
    f->srv[0]->script[2] = ACT_409_BASE; /* the third PUT: the target lost the base */
    f->srv[0]->script_len = 3;
    srv_url(f->srv[0], u0, sizeof(u0));
    make_pub(f, urls, 1, NULL, LONG_MS, 50, 1000);

    assert_int_equal(offer_text(f, 1, d1), CM_OK); /* first contact: whole */
    assert_true(run_until(f, acked_idle, &(struct want){0, 1}, WAIT_MS));
    r = &f->srv[0]->r[0];
    assert_string_equal(r->body, d1);

    assert_int_equal(offer_text(f, 2, d2), CM_OK); /* one service changed: a delta */
    assert_true(run_until(f, acked_idle, &(struct want){0, 2}, WAIT_MS));
    r = &f->srv[0]->r[1];
    assert_int_equal(r->generation, 2);
    assert_non_null(strstr(r->body, "\"base_generation\":1"));
    assert_non_null(strstr(r->body, "\"ns/b\""));
    assert_null(strstr(r->body, "\"ns/a\""));
    assert_null(strstr(r->body, "\"rtt_ms\"")); /* the top-level members: unchanged */
    assert_delta_gives(d1, r->body, d2);

    /* A removal and new members: a delta, refused (409), then the whole document at once. */
    assert_int_equal(offer_text(f, 3, d3), CM_OK);
    assert_true(run_until(f, acked_idle, &(struct want){0, 3}, WAIT_MS));
    assert_int_equal(f->srv[0]->count, 4);
    r = &f->srv[0]->r[2];
    assert_non_null(strstr(r->body, "\"removed\":[\"ns/c\"]"));
    assert_non_null(strstr(r->body, "\"rtt_ms\":6"));
    assert_delta_gives(d2, r->body, d3);
    assert_string_equal(f->srv[0]->r[3].body, d3);

    /* Every service changed: the delta would be over half the document, the whole goes. */
    assert_int_equal(offer_text(f, 4, d4), CM_OK);
    assert_true(run_until(f, acked_idle, &(struct want){0, 4}, WAIT_MS));
    assert_string_equal(f->srv[0]->r[4].body, d4);

    cm_buf_init(&m, 1 << 16);
    hc_publish_metrics(f->pub, &m);
    assert_non_null(strstr(cm_buf_cstr(&m), "fedgslb_health_publish_deltas_total{target=\""));
    assert_non_null(strstr(cm_buf_cstr(&m), "\"} 2\n"));
    cm_buf_fini(&m);
    free(d1);
    free(d2);
    free(d3);
    free(d4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_first_offer_two_targets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_token_no_header, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newest_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_then_listening, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transient_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_409_same_generation_is_a_conflict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permanent_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_interval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_older_offer_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deltas, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_in_flight, setup, teardown),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
