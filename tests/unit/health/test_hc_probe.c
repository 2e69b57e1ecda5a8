/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_hc_probe.c -- data-plane probes against an in-process evhttp server on
 * 127.0.0.1 and ::1 (same event_base), whose status, body and delay each test
 * switches. No timing assertions: every wait is "eventually, within N s",
 * driven by event_base_loop with a deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_net.h"
#include "common/cm_time.h"
#include "health/hc_http.h"
#include "health/hc_probe.h"

#define SVC    "default/web"
#define WAIT_S 10.0

struct delayed {
    struct srv *srv;
    struct evhttp_request *req; /* borrowed from evhttp until the reply */
    struct event *ev;
    struct delayed *next;
};

struct srv {
    struct event_base *base;
    struct evhttp *http;
    uint16_t port4, port6;
    int status;
    char body[8192];
    int delay_ms;      /* every request */
    int slow_delay_ms; /* requests for /slow... only */
    unsigned requests;
    char last_host[256];
    char seen[8][2][256]; /* recent (uri, host) pairs, newest at seen_next - 1 */
    unsigned seen_next;
    struct delayed *pending;
};

struct fx {
    struct event_base *base;
    struct event *tick;
    struct hc_http *http;
    struct hc_probes *ps;
    struct srv srv;
    unsigned changed;
    /* the probe predicates look at */
    const char *member;
    const char *address;
    uint64_t n;
};

static char path_healthz[] = "/healthz";
static char path_slow[] = "/slow";

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the server ---- */

static void srv_reply(struct srv *s, struct evhttp_request *req)
{
    struct evbuffer *b = evbuffer_new();

    assert_non_null(b);
    evbuffer_add(b, s->body, strlen(s->body));
    evhttp_send_reply(req, s->status, "X", b);
    evbuffer_free(b);
}

static void on_delayed(evutil_socket_t fd, short what, void *arg)
{
    struct delayed *d = arg, **pp;
    struct srv *s = d->srv;

    (void)fd;
    (void)what;
    for (pp = &s->pending; *pp != d; pp = &(*pp)->next)
        ;
    *pp = d->next;
    srv_reply(s, d->req); /* frees a request whose client has gone */
    event_free(d->ev);
    free(d);
}

static void srv_handle(struct evhttp_request *req, void *arg)
{
    struct srv *s = arg;
    const char *host = evhttp_find_header(evhttp_request_get_input_headers(req), "Host");
    const char *uri = evhttp_request_get_uri(req);
    int delay = s->delay_ms;

    s->requests++;
    snprintf(s->last_host, sizeof(s->last_host), "%s", host != NULL ? host : "");
    snprintf(s->seen[s->seen_next % 8][0], sizeof(s->seen[0][0]), "%s", uri);
    snprintf(s->seen[s->seen_next % 8][1], sizeof(s->seen[0][1]), "%.255s", s->last_host);
    s->seen_next++;
    if (strncmp(uri, "/slow", 5) == 0 && s->slow_delay_ms > delay)
        delay = s->slow_delay_ms;
    if (delay > 0) {
        struct delayed *d = calloc(1, sizeof(*d));
        struct timeval tv = cm_ms_to_timeval((uint64_t)delay);

        assert_non_null(d);
        d->srv = s;
        d->req = req;
        d->ev = evtimer_new(s->base, on_delayed, d);
        assert_non_null(d->ev);
        evtimer_add(d->ev, &tv);
        d->next = s->pending;
        s->pending = d;
        return;
    }
    srv_reply(s, req);
}

static uint16_t bound_port(struct evhttp_bound_socket *bs)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &len), 0);
    return (uint16_t)cm_addr_port((struct sockaddr *)&ss);
}

static void srv_start(struct srv *s, struct event_base *base)
{
    struct evhttp_bound_socket *bs;

    memset(s, 0, sizeof(*s));
    s->base = base;
    s->status = 200;
    snprintf(s->body, sizeof(s->body), "all ok here\n");
    s->http = evhttp_new(base);
    assert_non_null(s->http);
    evhttp_set_gencb(s->http, srv_handle, s);
    bs = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0);
    assert_non_null(bs);
    s->port4 = bound_port(bs);
    bs = evhttp_bind_socket_with_handle(s->http, "::1", 0);
    if (bs != NULL)
        s->port6 = bound_port(bs);
}

static void srv_stop(struct srv *s)
{
    while (s->pending != NULL) {
        struct delayed *d = s->pending;

        s->pending = d->next;
        srv_reply(s, d->req);
        event_free(d->ev);
        free(d);
    }
    evhttp_free(s->http);
}

/* The Host header of the newest request for @uri, "" if none. */
static const char *srv_host_for(const struct srv *s, const char *uri)
{
    for (unsigned i = 1; i <= 8 && i <= s->seen_next; i++) {
        unsigned k = (s->seen_next - i) % 8;

        if (strcmp(s->seen[k][0], uri) == 0)
            return s->seen[k][1];
    }
    return "";
}

/* A port on 127.0.0.1 nobody listens on (bound, then closed). */
static uint16_t closed_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

/* ---- fixture ---- */

static void on_changed(void *arg)
{
    struct fx *fx = arg;

    fx->changed++;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static struct fx *fx_new(uint32_t max_in_flight)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    struct hc_probes_params p;
    struct timeval tv = {.tv_sec = 0, .tv_usec = 10000};

    assert_non_null(fx);
    fx->base = event_base_new();
    assert_non_null(fx->base);
    fx->tick = event_new(fx->base, -1, EV_PERSIST, on_tick, NULL);
    assert_non_null(fx->tick);
    event_add(fx->tick, &tv); /* the loop wakes at least every 10 ms */
    fx->http = hc_http_new(fx->base);
    assert_non_null(fx->http);
    hc_probes_params_default(&p);
    if (max_in_flight > 0)
        p.max_in_flight = max_in_flight;
    fx->ps = hc_probes_new(fx->base, fx->http, &p, on_changed, fx);
    assert_non_null(fx->ps);
    srv_start(&fx->srv, fx->base);
    fx->address = "127.0.0.1";
    fx->member = "usa";
    return fx;
}

static void fx_free(struct fx *fx)
{
    hc_probes_free(fx->ps);
    hc_http_free(fx->http);
    srv_stop(&fx->srv);
    event_free(fx->tick);
    event_base_free(fx->base);
    free(fx);
}

static struct cm_conf_check mk_check(enum cm_check_type type)
{
    struct cm_conf_check c = {.type = type,
                              .path = path_healthz,
                              .status_min = 200,
                              .status_max = 399,
                              .tls_verify = true,
                              .interval_ms = 100,
                              .timeout_ms = 2000,
                              .rise = 2,
                              .fall = 3};
    return c;
}

typedef bool pred_fn(struct fx *fx);

static bool run_until(struct fx *fx, pred_fn *pred, double seconds)
{
    double end = now_s() + seconds;

    while (!pred(fx)) {
        if (now_s() > end)
            return false;
        event_base_loop(fx->base, EVLOOP_ONCE);
    }
    return true;
}

static void run_for(struct fx *fx, double seconds)
{
    double end = now_s() + seconds;

    while (now_s() < end)
        event_base_loop(fx->base, EVLOOP_ONCE);
}

static const struct hc_probe_status *st_of(struct fx *fx)
{
    return hc_probes_get(fx->ps, SVC, fx->member, fx->address);
}

static bool p_runs(struct fx *fx)
{
    const struct hc_probe_status *st = st_of(fx);

    return st != NULL && st->runs >= fx->n;
}

static bool p_failures(struct fx *fx)
{
    const struct hc_probe_status *st = st_of(fx);

    return st != NULL && st->failures >= fx->n;
}

static bool p_down(struct fx *fx)
{
    const struct hc_probe_status *st = st_of(fx);

    return st != NULL && st->verdict == HC_PROBE_DOWN;
}

static bool p_up(struct fx *fx)
{
    const struct hc_probe_status *st = st_of(fx);

    return st != NULL && st->verdict == HC_PROBE_UP;
}

static bool p_last_ok(struct fx *fx)
{
    const struct hc_probe_status *st = st_of(fx);

    return st != NULL && st->runs > 0 && st->last_ok;
}

static bool p_skipped(struct fx *fx)
{
    const struct hc_probe_status *st = st_of(fx);

    return st != NULL && st->skipped >= fx->n;
}

static bool p_rtt_ge(struct fx *fx)
{
    const struct hc_probe_status *st = st_of(fx);

    return st != NULL && st->rtt_ms >= (double)fx->n;
}

static void wait_runs(struct fx *fx, uint64_t n)
{
    fx->n = n;
    assert_true(run_until(fx, p_runs, WAIT_S));
}

static void ensure(struct fx *fx, uint16_t port, const struct cm_conf_check *c)
{
    assert_int_equal(hc_probes_ensure(fx->ps, SVC, fx->member, fx->address, port, c, NULL), CM_OK);
}

/* ---- tests ---- */

static void test_up_after_first_success(void **state)
{
    struct fx *fx = fx_new(0);
    struct cm_conf_check c = mk_check(CM_CHECK_HTTP);
    const struct hc_probe_status *st;

    (void)state;
    c.interval_ms = 300; /* the first run comes within min(interval, 1 s) */
    ensure(fx, fx->srv.port4, &c);
    st = st_of(fx);
    assert_non_null(st);
    assert_int_equal(st->verdict, HC_PROBE_UNKNOWN);
    assert_true(st->rtt_ms < 0);
    wait_runs(fx, 1);
    st = st_of(fx);
    assert_int_equal(st->verdict, HC_PROBE_UP); /* rise=2, yet the first result decides */
    assert_false(st->pending);
    assert_true(st->last_ok);
    assert_string_equal(st->last_error, "");
    assert_true(st->rtt_ms >= 0);
    assert_true(st->rtt_ewma_ms >= 0);
    assert_true(st->connect_ms >= 0);
    assert_int_equal(st->rise, 2);
    assert_int_equal(st->fall, 3);
    assert_true(fx->changed >= 1);
    assert_true(strncmp(fx->srv.last_host, "127.0.0.1:", 10) == 0);
    fx_free(fx);
}

static void test_fall_and_rise(void **state)
{
    struct fx *fx = fx_new(0);
    struct cm_conf_check c = mk_check(CM_CHECK_HTTP);
    const struct hc_probe_status *st;
    unsigned changed;

    (void)state;
    ensure(fx, fx->srv.port4, &c);
    wait_runs(fx, 1);
    assert_int_equal(st_of(fx)->verdict, HC_PROBE_UP);

    fx->srv.status = 500;
    fx->n = 1;
    changed = fx->changed;
    assert_true(run_until(fx, p_failures, WAIT_S));
    st = st_of(fx);
    assert_int_equal(st->verdict, HC_PROBE_UP); /* 1 of fall=3 */
    assert_true(st->pending);
    assert_false(st->last_ok);
    assert_int_equal(st->streak, 1);
    assert_string_equal(st->last_error, "status 500");
    assert_true(fx->changed > changed); /* pending flipped */

    fx->n = 2;
    changed = fx->changed;
    assert_true(run_until(fx, p_failures, WAIT_S));
    assert_int_equal(st_of(fx)->verdict, HC_PROBE_UP);
    assert_true(st_of(fx)->pending);
    assert_true(fx->changed > changed); /* "probe 2/3 failed" in the reason now */

    assert_true(run_until(fx, p_down, WAIT_S));
    st = st_of(fx);
    assert_int_equal(st->failures, 3);
    assert_int_equal(st->streak, 3);
    assert_false(st->pending);
    /* Failing the same way again shows nothing new; another error does. */
    changed = fx->changed;
    fx->n = 4;
    assert_true(run_until(fx, p_failures, WAIT_S));
    assert_int_equal(fx->changed, changed);
    fx->srv.status = 503;
    fx->n = 5;
    assert_true(run_until(fx, p_failures, WAIT_S));
    assert_string_equal(st_of(fx)->last_error, "status 503");
    assert_true(fx->changed > changed);

    fx->srv.status = 200;
    assert_true(run_until(fx, p_last_ok, WAIT_S));
    st = st_of(fx);
    assert_int_equal(st->verdict, HC_PROBE_DOWN); /* 1 of rise=2 */
    assert_true(st->pending);
    assert_string_equal(st->last_error, "");
    assert_true(run_until(fx, p_up, WAIT_S));
    st = st_of(fx);
    assert_int_equal(st->streak, 2);
    assert_false(st->pending);
    fx_free(fx);
}

static void test_status_range(void **state)
{
    struct fx *fx = fx_new(0);
    struct cm_conf_check c = mk_check(CM_CHECK_HTTP);

    (void)state;
    c.rise = c.fall = 1;
    c.status_min = 200;
    c.status_max = 299;
    fx->srv.status = 302; /* not followed */
    ensure(fx, fx->srv.port4, &c);
    assert_true(run_until(fx, p_down, WAIT_S));
    assert_string_equal(st_of(fx)->last_error, "status 302");

    c.status_max = 399; /* same key: an update, applies from the next turn */
    ensure(fx, fx->srv.port4, &c);
    assert_true(run_until(fx, p_up, WAIT_S));

    fx->srv.status = 404;
    assert_true(run_until(fx, p_down, WAIT_S));
    assert_string_equal(st_of(fx)->last_error, "status 404");
    c.status_min = 404;
    c.status_max = 404;
    ensure(fx, fx->srv.port4, &c);
    assert_true(run_until(fx, p_up, WAIT_S));
    fx_free(fx);
}

static void test_expect_body(void **state)
{
    struct fx *fx = fx_new(0);
    struct cm_conf_check c = mk_check(CM_CHECK_HTTP);
    static char want_ok[] = "ok", want_fine[] = "fine";
    size_t i;

    (void)state;
    c.rise = c.fall = 1;
    c.expect_body = want_ok;
    ensure(fx, fx->srv.port4, &c);
    assert_true(run_until(fx, p_up, WAIT_S));

    c.expect_body = want_fine;
    ensure(fx, fx->srv.port4, &c);
    assert_true(run_until(fx, p_down, WAIT_S));
    assert_string_equal(st_of(fx)->last_error, "body lacks \"fine\"");

    /* Found within the first 4 KiB of a larger body (chunks of any size). */
    for (i = 0; i < 3000; i++)
        fx->srv.body[i] = 'x';
    snprintf(fx->srv.body + i, sizeof(fx->srv.body) - i, "fine%s", "");
    for (i = strlen(fx->srv.body); i < 7000; i++)
        fx->srv.body[i] = 'y';
    fx->srv.body[i] = '\0';
    assert_true(run_until(fx, p_up, WAIT_S));

    /* Only after the first 4 KiB: not looked at. */
    for (i = 0; i < 5000; i++)
        fx->srv.body[i] = 'x';
    snprintf(fx->srv.body + i, sizeof(fx->srv.body) - i, "fine");
    assert_true(run_until(fx, p_down, WAIT_S));
    assert_string_equal(st_of(fx)->last_error, "body lacks \"fine\"");

    /* An error status with the right body is still a failure. */
    snprintf(fx->srv.body, sizeof(fx->srv.body), "fine");
    assert_true(run_until(fx, p_up, WAIT_S));
    fx->srv.status = 503;
    assert_true(run_until(fx, p_down, WAIT_S));
    assert_string_equal(st_of(fx)->last_error, "status 503");
    fx_free(fx);
}

static void test_tcp(void **state)
{
    struct fx *fx = fx_new(0);
    struct cm_conf_check c = mk_check(CM_CHECK_TCP);
    const struct hc_probe_status *st;
    unsigned requests;

    (void)state;
    c.rise = c.fall = 1;
    requests = fx->srv.requests;
    ensure(fx, fx->srv.port4, &c);
    wait_runs(fx, 2);
    st = st_of(fx);
    assert_int_equal(st->verdict, HC_PROBE_UP);
    assert_true(st->connect_ms >= 0);
    assert_true(st->rtt_ms >= 0);
    assert_int_equal(fx->srv.requests, requests); /* connect only: no request sent */

    fx->address = "127.0.0.2"; /* another key, same loopback */
    ensure(fx, closed_port(), &c);
    assert_true(run_until(fx, p_down, WAIT_S));
    assert_string_equal(st_of(fx)->last_error, "connection refused");
    assert_true(st_of(fx)->rtt_ms < 0);

    /* http to a closed port says the same */
    c = mk_check(CM_CHECK_HTTP);
    fx->address = "127.0.0.3";
    ensure(fx, closed_port(), &c);
    assert_true(run_until(fx, p_down, WAIT_S));
    assert_string_equal(st_of(fx)->last_error, "connection refused");
    {
        struct hc_probes_stats stats;

        hc_probes_get_stats(fx->ps, &stats);
        assert_true(stats.failures > 0);
        assert_int_equal(stats.failures_by_class[HC_PROBE_FAIL_REFUSED], stats.failures);
        assert_string_equal(hc_probe_fail_name(HC_PROBE_FAIL_REFUSED), "refused");
    }
    fx_free(fx);
}

static void test_timeout(void **state)
{
    struct fx *fx = fx_new(0);
    struct cm_conf_check c = mk_check(CM_CHECK_HTTP);

    (void)state;
    c.rise = c.fall = 1;
    c.interval_ms = 400;
    c.timeout_ms = 150;
    fx->srv.delay_ms = 3000;
    ensure(fx, fx->srv.port4, &c);
    assert_true(run_until(fx, p_down, WAIT_S));
    assert_string_equal(st_of(fx)->last_error, "timeout after 150 ms");
    assert_int_equal(st_of(fx)->skipped, 0);
    {
        struct hc_probes_stats stats;

        hc_probes_get_stats(fx->ps, &stats);
        assert_true(stats.failures > 0);
        assert_int_equal(stats.failures_by_class[HC_PROBE_FAIL_TIMEOUT], stats.failures);
    }
    fx_free(fx);
}

static void test_host_header_connect_to(void **state)
{
    struct fx *fx = fx_new(0);
    struct cm_conf_check c = mk_check(CM_CHECK_HTTP);
    static char host[] = "web.default.example.test";
    char want[64];

    (void)state;
    c.host = host;
    c.interval_ms = 300;
    assert_int_equal(
        hc_probes_ensure(fx->ps, SVC, fx->member, fx->address, fx->srv.port4, &c, "/h4"), CM_OK);
    wait_runs(fx, 1);
    assert_int_equal(st_of(fx)->verdict, HC_PROBE_UP); /* no DNS: the address was used */
    snprintf(want, sizeof(want), "%s:%u", host, (unsigned)fx->srv.port4);
    assert_string_equal(srv_host_for(&fx->srv, "/h4"), want);

    if (fx->srv.port6 != 0) {
        fx->address = "::1";
        assert_int_equal(
            hc_probes_ensure(fx->ps, SVC, fx->member, fx->address, fx->srv.port6, &c, "h6"),
            CM_OK); /* a path without '/' gets one */
        wait_runs(fx, 1);
        assert_int_equal(st_of(fx)->verdict, HC_PROBE_UP);
        snprintf(want, sizeof(want), "%s:%u", host, (unsigned)fx->srv.port6);
        assert_string_equal(srv_host_for(&fx->srv, "/h6"), want);

        /* no host: the v6 literal in brackets */
        c.host = NULL;
        fx->member = "eur";
        assert_int_equal(
            hc_probes_ensure(fx->ps, SVC, fx->member, fx->address, fx->srv.port6, &c, "/h6n"),
            CM_OK);
        wait_runs(fx, 1);
        assert_int_equal(st_of(fx)->verdict, HC_PROBE_UP);
        snprintf(want, sizeof(want), "[::1]:%u", (unsigned)fx->srv.port6);
        assert_string_equal(srv_host_for(&fx->srv, "/h6n"), want);
    }
    fx_free(fx);
}

static void test_skip_while_in_flight(void **state)
{
    struct fx *fx = fx_new(0);
    struct cm_conf_check c = mk_check(CM_CHECK_HTTP);
    const struct hc_probe_status *st;
    struct hc_probes_stats stats;

    (void)state;
    c.interval_ms = 100;
    c.timeout_ms = 3000;
    fx->srv.delay_ms = 450;
    ensure(fx, fx->srv.port4, &c);
    fx->n = 2;
    assert_true(run_until(fx, p_skipped, WAIT_S));
    wait_runs(fx, 2);
    st = st_of(fx);
    assert_int_equal(st->verdict, HC_PROBE_UP);
    assert_int_equal(st->failures, 0);
    hc_probes_get_stats(fx->ps, &stats);
    assert_true(stats.skipped >= 2);
    /* never two at once for one probe: requests seen <= runs + the one in flight */
    assert_true(fx->srv.requests <= st->runs + 1);
    fx_free(fx);
}

static void test_max_in_flight(void **state)
{
    struct fx *fx = fx_new(1);
    struct cm_conf_check c = mk_check(CM_CHECK_HTTP);
    static const char *members[] = {"m1", "m2", "m3", "m4"};
    struct hc_probes_stats stats;
    uint64_t deferred = 0;

    (void)state;
    c.interval_ms = 100;
    fx->srv.delay_ms = 40;
    for (size_t i = 0; i < 4; i++) {
        fx->member = members[i];
        ensure(fx, fx->srv.port4, &c);
    }
    for (size_t i = 0; i < 4; i++) {
        fx->member = members[i];
        wait_runs(fx, 3);
    }
    hc_probes_get_stats(fx->ps, &stats);
    assert_int_equal(stats.probes, 4);
    assert_true(stats.deferred >= 1);
    assert_true(stats.in_flight <= 1);
    for (size_t i = 0; i < 4; i++) {
        fx->member = members[i];
        assert_int_equal(st_of(fx)->failures, 0);
        deferred += st_of(fx)->deferred;
    }
    assert_int_equal(deferred, stats.deferred);
    fx_free(fx);
}

static void test_reconcile(void **state)
{
    struct fx *fx = fx_new(0);
    struct cm_conf_check c = mk_check(CM_CHECK_HTTP);
    struct hc_probes_stats stats;
    uint64_t runs_a;
    unsigned changed;

    (void)state;
    fx->srv.slow_delay_ms = 5000;
    hc_probes_mark(fx->ps);
    fx->member = "a";
    ensure(fx, fx->srv.port4, &c);
    fx->member = "b";
    ensure(fx, fx->srv.port4, &c);
    /* c: always in flight when swept */
    assert_int_equal(hc_probes_ensure(fx->ps, SVC, "c", "127.0.0.1", fx->srv.port4, &c, path_slow),
                     CM_OK);
    hc_probes_sweep(fx->ps); /* all three ensured: none removed */
    hc_probes_get_stats(fx->ps, &stats);
    assert_int_equal(stats.probes, 3);
    fx->member = "a";
    wait_runs(fx, 2);
    fx->member = "b";
    wait_runs(fx, 2);
    hc_probes_get_stats(fx->ps, &stats);
    assert_int_equal(stats.in_flight, 1); /* c */

    fx->member = "a";
    runs_a = st_of(fx)->runs;
    hc_probes_mark(fx->ps);
    ensure(fx, fx->srv.port4, &c);
    hc_probes_sweep(fx->ps);
    assert_null(hc_probes_get(fx->ps, SVC, "b", "127.0.0.1"));
    assert_null(hc_probes_get(fx->ps, SVC, "c", "127.0.0.1"));
    assert_non_null(st_of(fx));
    assert_true(st_of(fx)->runs >= runs_a); /* kept its state */
    assert_int_equal(st_of(fx)->verdict, HC_PROBE_UP);
    hc_probes_get_stats(fx->ps, &stats);
    assert_int_equal(stats.probes, 1);
    assert_int_equal(stats.in_flight, 0);

    /* a removed probe never calls back; the kept one goes on */
    changed = fx->changed;
    wait_runs(fx, runs_a + 2);
    assert_int_equal(fx->changed, changed);

    /* empty wanted set */
    hc_probes_mark(fx->ps);
    hc_probes_sweep(fx->ps);
    assert_null(st_of(fx));
    hc_probes_get_stats(fx->ps, &stats);
    assert_int_equal(stats.probes, 0);

    /* bad arguments */
    assert_int_equal(hc_probes_ensure(fx->ps, SVC, "a", "", 80, &c, NULL), CM_EINVAL);
    assert_int_equal(hc_probes_ensure(fx->ps, SVC, "a", "127.0.0.1", 0, &c, NULL), CM_EINVAL);
    fx_free(fx);
}

static void test_many_probes_hash(void **state)
{
    struct fx *fx = fx_new(0);
    struct cm_conf_check c = mk_check(CM_CHECK_TCP);
    struct hc_probes_stats stats;
    char member[32];

    (void)state;
    c.interval_ms = 400;
    for (int i = 0; i < 300; i++) {
        snprintf(member, sizeof(member), "m%d", i);
        assert_int_equal(
            hc_probes_ensure(fx->ps, SVC, member, "127.0.0.1", fx->srv.port4, &c, NULL), CM_OK);
    }
    hc_probes_get_stats(fx->ps, &stats);
    assert_int_equal(stats.probes, 300);
    for (int i = 0; i < 300; i++) {
        snprintf(member, sizeof(member), "m%d", i);
        assert_non_null(hc_probes_get(fx->ps, SVC, member, "127.0.0.1"));
    }
    assert_null(hc_probes_get(fx->ps, SVC, "m300", "127.0.0.1"));
    assert_null(hc_probes_get(fx->ps, "default/we", "bm1", "127.0.0.1")); /* key parts apart */
    hc_probes_mark(fx->ps);
    for (int i = 0; i < 300; i += 2) {
        snprintf(member, sizeof(member), "m%d", i);
        assert_int_equal(
            hc_probes_ensure(fx->ps, SVC, member, "127.0.0.1", fx->srv.port4, &c, NULL), CM_OK);
    }
    hc_probes_sweep(fx->ps);
    hc_probes_get_stats(fx->ps, &stats);
    assert_int_equal(stats.probes, 150);
    assert_null(hc_probes_get(fx->ps, SVC, "m1", "127.0.0.1"));
    assert_non_null(hc_probes_get(fx->ps, SVC, "m298", "127.0.0.1"));
    fx->member = "m298";
    wait_runs(fx, 1);
    fx_free(fx);
}

static void test_member_rtt(void **state)
{
    struct fx *fx = fx_new(0);
    struct cm_conf_check c = mk_check(CM_CHECK_HTTP);
    struct cm_conf_check t = mk_check(CM_CHECK_TCP);
    const struct hc_probe_status *a, *b, *slow;
    const char *lo = "127.0.0.1";
    uint16_t port = fx->srv.port4;
    double r, end = now_s() + WAIT_S;

    (void)state;
    assert_true(hc_probes_member_rtt(fx->ps, "usa") < 0);
    fx->srv.slow_delay_ms = 60;
    /* one member, three services (the key's first part) */
    assert_int_equal(hc_probes_ensure(fx->ps, "default/a", "usa", lo, port, &c, NULL), CM_OK);
    assert_int_equal(hc_probes_ensure(fx->ps, "default/b", "usa", lo, port, &t, NULL), CM_OK);
    assert_int_equal(hc_probes_ensure(fx->ps, "default/s", "usa", lo, port, &c, path_slow), CM_OK);
    for (;;) {
        assert_true(now_s() < end);
        a = hc_probes_get(fx->ps, "default/a", "usa", lo);
        b = hc_probes_get(fx->ps, "default/b", "usa", lo);
        slow = hc_probes_get(fx->ps, "default/s", "usa", lo);
        if (a->rtt_ms >= 0 && b->rtt_ms >= 0 && slow->rtt_ms >= 0)
            break;
        event_base_loop(fx->base, EVLOOP_ONCE);
    }
    assert_true(slow->rtt_ms >= 40);
    /* the median of {a, b, slow} is the larger of a and b, whatever the server's speed */
    r = hc_probes_member_rtt(fx->ps, "usa");
    assert_true(r == (a->rtt_ms > b->rtt_ms ? a->rtt_ms : b->rtt_ms));
    assert_true(hc_probes_member_rtt(fx->ps, "eur") < 0);
    /* a down probe has no RTT and does not count */
    assert_int_equal(hc_probes_ensure(fx->ps, SVC, "eur", lo, closed_port(), &t, NULL), CM_OK);
    fx->member = "eur";
    wait_runs(fx, 1);
    assert_int_equal(st_of(fx)->verdict, HC_PROBE_DOWN);
    assert_true(hc_probes_member_rtt(fx->ps, "eur") < 0);
    fx_free(fx);
}

static void test_rtt_follows_delay(void **state)
{
    struct fx *fx = fx_new(0);
    struct cm_conf_check c = mk_check(CM_CHECK_HTTP);
    const struct hc_probe_status *st;
    struct hc_probes_stats stats;

    (void)state;
    c.path = path_slow;
    ensure(fx, fx->srv.port4, &c);
    wait_runs(fx, 3);
    assert_true(st_of(fx)->rtt_ms >= 0);
    fx->srv.slow_delay_ms = 50; /* the server answers 50 ms late: time to first byte grows */
    fx->n = 40;
    assert_true(run_until(fx, p_rtt_ge, WAIT_S));
    st = st_of(fx);
    assert_true(st->rtt_ewma_ms >= 20);
    assert_true(hc_probes_member_rtt(fx->ps, "usa") >= 40);
    assert_int_equal(st->failures, 0);

    hc_probes_get_stats(fx->ps, &stats);
    assert_true(stats.late_count >= 3);
    assert_true(stats.late_p50_ms <= stats.late_p99_ms);
    assert_true(stats.late_p99_ms <= stats.late_max_ms);
    assert_true(stats.late_mean_ms <= stats.late_max_ms);
    assert_true(stats.runs >= 3);
    fx_free(fx);
}

static void test_free_in_flight(void **state)
{
    struct fx *fx = fx_new(0);
    struct cm_conf_check c = mk_check(CM_CHECK_HTTP);
    struct hc_probes_stats stats;

    (void)state;
    fx->srv.delay_ms = 5000;
    ensure(fx, fx->srv.port4, &c);
    fx->n = 1;
    do {
        event_base_loop(fx->base, EVLOOP_ONCE);
        hc_probes_get_stats(fx->ps, &stats);
    } while (stats.in_flight == 0);
    assert_int_equal(fx->changed, 0);
    hc_probes_free(fx->ps); /* cancels; no callback */
    fx->ps = NULL;
    assert_int_equal(hc_http_active(fx->http), 0);
    run_for(fx, 0.05);
    assert_int_equal(fx->changed, 0);
    fx_free(fx);
}

/* ---- https against `openssl s_server` with a certificate made now ---- */

static bool sh_ok(const char *cmd)
{
    int rc = system(cmd);

    return rc != -1 && WIFEXITED(rc) && WEXITSTATUS(rc) == 0;
}

static void test_https(void **state)
{
    char dir[] = "/tmp/hc_probe_tls_XXXXXX", cmd[1024];
    struct fx *fx;
    struct cm_conf_check c = mk_check(CM_CHECK_HTTPS);
    uint16_t port;
    pid_t pid;

    (void)state;
    if (!sh_ok("command -v openssl >/dev/null 2>&1"))
        skip();
    assert_non_null(mkdtemp(dir));
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=probe.test "
             "-keyout %s/key.pem -out %s/cert.pem >/dev/null 2>&1",
             dir, dir);
    assert_true(sh_ok(cmd));
    fx = fx_new(0);
    port = closed_port();
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char accept[32], cert[300], key[300];
        int devnull = open("/dev/null", O_RDWR);

        prctl(PR_SET_PDEATHSIG, SIGTERM); /* gone with us, even if an assert fails */

        snprintf(accept, sizeof(accept), "127.0.0.1:%u", (unsigned)port);
        snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
        snprintf(key, sizeof(key), "%s/key.pem", dir);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        execlp("openssl", "openssl", "s_server", "-quiet", "-accept", accept, "-cert", cert, "-key",
               key, "-www", (char *)NULL);
        _exit(127);
    }
    c.rise = c.fall = 1;
    c.interval_ms = 200;
    c.tls_verify = false;
    ensure(fx, port, &c);
    /* s_server needs a moment to listen: refused until then */
    assert_true(run_until(fx, p_up, WAIT_S));

    fx->member = "strict";
    c.tls_verify = true; /* self-signed: verification fails */
    ensure(fx, port, &c);
    assert_true(run_until(fx, p_down, WAIT_S));
    assert_true(strncmp(st_of(fx)->last_error, "TLS: ", 5) == 0);

    fx_free(fx);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_true(sh_ok(cmd));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_up_after_first_success),
        cmocka_unit_test(test_fall_and_rise),
        cmocka_unit_test(test_status_range),
        cmocka_unit_test(test_expect_body),
        cmocka_unit_test(test_tcp),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_host_header_connect_to),
        cmocka_unit_test(test_skip_while_in_flight),
        cmocka_unit_test(test_max_in_flight),
        cmocka_unit_test(test_reconcile),
        cmocka_unit_test(test_many_probes_hash),
        cmocka_unit_test(test_member_rtt),
        cmocka_unit_test(test_rtt_follows_delay),
        cmocka_unit_test(test_free_in_flight),
        cmocka_unit_test(test_https),
    };
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
