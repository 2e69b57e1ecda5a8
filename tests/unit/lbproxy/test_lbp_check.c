/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_lbp_check.c -- active backend checks (lbproxy/lbp_check.h): what a
 * check counts as a pass, rise/fall hysteresis, the request it sends, the
 * defaults it fills in, and stop.
 *
 * A scripted backend on 127.0.0.1 answers the N-th check connection with
 * script[N] (or hangs, or closes). The loop runs until the check has
 * completed the wanted number of runs: no assertion depends on elapsed time,
 * the short intervals only keep the suite fast.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_net.h"
#include "lbproxy/lbp_backend.h"
#include "lbproxy/lbp_check.h"

#define HANG    "<hang>"  /* accept, read the request, never answer */
#define CLOSE   "<close>" /* accept, read the request, close without a byte */
#define MAXRUNS 16

/* ---- the scripted backend ----------------------------------------------- */

struct conn;

struct backend {
    struct event_base *base;
    int lfd;
    struct event *accept_ev;
    const char *const *script; /* response per connection, in order */
    size_t script_len;
    size_t accepted;
    char request[1024];          /* the last request head received */
    struct conn *conns[MAXRUNS]; /* open connections, by accept order */
};

struct conn {
    struct backend *be;
    struct bufferevent *bev;
    size_t nth; /* index in be->conns */
    const char *reply;
    const char *rest;    /* the '|' of a reply still to finish, else NULL */
    struct event *later; /* owned: sends the rest */
    bool answered;
};

static void conn_free(struct conn *c)
{
    c->be->conns[c->nth] = NULL;
    if (c->later != NULL)
        event_free(c->later);
    bufferevent_free(c->bev);
    free(c);
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;

    /* Everything sent: half-close so that the check sees EOF after it. */
    if (c->answered && c->rest == NULL && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        shutdown(bufferevent_getfd(bev), SHUT_WR);
}

/* The part of a reply after '|'. */
static void conn_rest_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)fd;
    (void)what;
    bufferevent_write(c->bev, c->rest + 1, strlen(c->rest + 1));
    c->rest = NULL;
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
    size_t len;

    if (end.pos < 0 || c->answered)
        return; /* wait for the whole head; ignore what follows */
    len = (size_t)end.pos + 4;
    if (len > sizeof(c->be->request) - 1)
        len = sizeof(c->be->request) - 1;
    evbuffer_remove(in, c->be->request, len);
    c->be->request[len] = '\0';
    evbuffer_drain(in, evbuffer_get_length(in));
    if (strcmp(c->reply, HANG) == 0) {
        c->answered = true;
        return;
    }
    if (strcmp(c->reply, CLOSE) == 0) {
        conn_free(c);
        return;
    }
    c->answered = true;
    c->rest = strchr(c->reply, '|');
    bufferevent_write(bev, c->reply,
                      c->rest != NULL ? (size_t)(c->rest - c->reply) : strlen(c->reply));
    if (c->rest != NULL) {
        struct timeval tv = {0, 20000};
        c->later = evtimer_new(c->be->base, conn_rest_cb, c);
        assert_non_null(c->later);
        evtimer_add(c->later, &tv);
    }
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    (void)what;
    conn_free(arg);
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
    struct backend *be = arg;
    int fd = accept(lfd, NULL, NULL);
    struct conn *c;

    (void)what;
    if (fd == -1)
        return;
    evutil_make_socket_nonblocking(fd);
    assert_true(be->accepted < be->script_len && be->accepted < MAXRUNS);
    c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->be = be;
    c->nth = be->accepted;
    c->reply = be->script[be->accepted++];
    c->bev = bufferevent_socket_new(be->base, fd, BEV_OPT_CLOSE_ON_FREE);
    assert_non_null(c->bev);
    be->conns[c->nth] = c;
    /* A hung connection has no event callback: it stays open until the test
     * ends, so the check can only time out. */
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb,
                      strcmp(c->reply, HANG) == 0 ? NULL : conn_event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

/* Listens on 127.0.0.1 with a kernel-chosen port; @addr is where it is. */
static void backend_start(struct backend *be, struct event_base *base, struct cm_addr *addr,
                          char *name, size_t cap)
{
    socklen_t len = sizeof(addr->ss);

    memset(be, 0, sizeof(*be));
    memset(addr, 0, sizeof(*addr));
    be->base = base;
    addr->len = sizeof(struct sockaddr_in);
    ((struct sockaddr_in *)&addr->ss)->sin_family = AF_INET;
    ((struct sockaddr_in *)&addr->ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    be->lfd = cm_net_listen(addr, SOCK_STREAM, false, 16);
    assert_true(be->lfd >= 0);
    assert_int_equal(getsockname(be->lfd, (struct sockaddr *)&addr->ss, &len), 0);
    addr->len = len;
    cm_addr_format((const struct sockaddr *)&addr->ss, name, cap);
    be->accept_ev = event_new(base, be->lfd, EV_READ | EV_PERSIST, accept_cb, be);
    assert_non_null(be->accept_ev);
    event_add(be->accept_ev, NULL);
}

static void backend_stop(struct backend *be)
{
    for (size_t i = 0; i < MAXRUNS; i++) {
        if (be->conns[i] != NULL)
            conn_free(be->conns[i]);
    }
    event_free(be->accept_ev);
    close(be->lfd);
}

/* ---- the check under test ----------------------------------------------- */

struct results {
    enum lbp_check_state verdict[MAXRUNS];
    size_t count;
};

static void on_result(void *arg, enum lbp_check_state verdict)
{
    struct results *r = arg;

    assert_true(r->count < MAXRUNS);
    r->verdict[r->count++] = verdict;
}

/* A check config with short intervals (the values are never asserted). */
static void fast_check(struct cm_conf_check *c, enum cm_check_type type, uint32_t rise,
                       uint32_t fall)
{
    memset(c, 0, sizeof(*c));
    c->type = type;
    c->interval_ms = 5;
    c->timeout_ms = 200;
    c->rise = rise;
    c->fall = fall;
}

/* Runs the loop until @r has @runs results. */
static void run_checks(struct event_base *base, const struct results *r, size_t runs)
{
    while (r->count < runs)
        assert_true(event_base_loop(base, EVLOOP_ONCE) == 0);
}

/* "?UD" per verdict: Unknown, Up, Down. */
static void verdict_text(const struct results *r, char *out)
{
    for (size_t i = 0; i < r->count; i++)
        out[i] = "?UD"[r->verdict[i]];
    out[r->count] = '\0';
}

/*
 * Runs one check against a backend answering @script (@n connections) and
 * writes the verdict after each run into @verdicts ("?UD...").
 */
static void run_script(const struct cm_conf_check *check, const char *const *script, size_t n,
                       char *verdicts, char *request, size_t request_cap)
{
    struct event_base *base = event_base_new();
    uint64_t rng = 0x9e3779b97f4a7c15ull;
    struct lbp_check_conf conf;
    struct lbp_check c;
    struct backend be;
    struct cm_addr addr;
    struct results r = {0};
    char name[CM_ADDR_STRLEN];

    assert_non_null(base);
    backend_start(&be, base, &addr, name, sizeof(name));
    be.script = script;
    be.script_len = n;
    assert_int_equal(lbp_check_conf_init(&conf, check, true, base, "test pool", &rng), CM_OK);
    lbp_check_init(&c, name, &addr, on_result, &r);
    assert_int_equal(lbp_check_verdict(&c), LBP_CHECK_UNKNOWN);
    lbp_check_start(&c, &conf);
    assert_true(lbp_check_is_started(&c));
    run_checks(base, &r, n);
    assert_int_equal(lbp_check_runs(&c), n);
    verdict_text(&r, verdicts);
    if (request != NULL)
        snprintf(request, request_cap, "%s", be.request);
    lbp_check_stop(&c);
    lbp_check_conf_fini(&conf);
    backend_stop(&be);
    event_base_free(base);
}

/* ---- what counts as a pass ---------------------------------------------- */

struct pass_case {
    const char *reply;
    uint16_t status_min, status_max; /* 0, 0: the default 200-399 */
    bool pass;
};

static void test_http_pass(void **state)
{
    static const struct pass_case cases[] = {
        {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 0, true},
        {"HTTP/1.0 204 No Content\r\n\r\n", 0, 0, true},
        /* The default range is 200-399, both ends included. */
        {"HTTP/1.1 399 X\r\n\r\n", 0, 0, true},
        {"HTTP/1.1 400 Bad Request\r\n\r\n", 0, 0, false},
        {"HTTP/1.1 199 X\r\n\r\n", 0, 0, false},
        {"HTTP/1.1 301 Moved\r\nLocation: /x\r\n\r\n", 0, 0, true},
        {"HTTP/1.1 503 Unavailable\r\n\r\n", 0, 0, false},
        /* A configured range replaces the default. */
        {"HTTP/1.1 204 X\r\n\r\n", 200, 200, false},
        {"HTTP/1.1 200 X\r\n\r\n", 200, 200, true},
        {"HTTP/1.1 404 X\r\n\r\n", 200, 404, true},
        {"HTTP/1.1 405 X\r\n\r\n", 200, 404, false},
        /* Exactly the status code and EOF: enough. */
        {"HTTP/1.1 200", 0, 0, true},
        /* No reason phrase, straight CRLF. */
        {"HTTP/1.1 200\r\n\r\n", 0, 0, true},
        /* Not a status line. */
        {"HTTP/1.1 2000 X\r\n\r\n", 0, 0, false},
        {"HTTP/1.1 200OK\r\n\r\n", 0, 0, false},
        {"HTTP/1.1 2x0 X\r\n\r\n", 0, 0, false},
        {"HTTP/2.0 200 OK\r\n\r\n", 0, 0, false},
        {"HTTP/1.1  200 OK\r\n\r\n", 0, 0, false},
        {"HTTP/1.1-200 OK\r\n\r\n", 0, 0, false},
        /* Below 100 is no status, even when the configured range would take it. */
        {"HTTP/1.1 099 X\r\n\r\n", 0, 399, false},
        /* The code is judged with the byte after it: "200" then "0" is 2000, not
         * 200 ('|': the rest is sent 20 ms later, in a second segment). */
        {"HTTP/1.1 200|0 X\r\n\r\n", 0, 0, false},
        {"HTTP/1.1 200| OK\r\n\r\n", 0, 0, true},
        {"http/1.1 200 OK\r\n\r\n", 0, 0, false},
        {"SSH-2.0-OpenSSH_9.2\r\n", 0, 0, false},
        /* Truncated before the code is complete. */
        {"HTTP/1.1 20", 0, 0, false},
        /* Nothing at all, or no answer within the timeout. */
        {CLOSE, 0, 0, false},
        {HANG, 0, 0, false},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cm_conf_check check;
        char got[MAXRUNS + 1];

        /* rise 1, fall 1: the verdict is the result of the run. */
        fast_check(&check, CM_CHECK_HTTP, 1, 1);
        check.status_min = cases[i].status_min;
        check.status_max = cases[i].status_max;
        if (strcmp(cases[i].reply, HANG) == 0)
            check.timeout_ms = 20;
        run_script(&check, &cases[i].reply, 1, got, NULL, 0);
        if (strcmp(got, cases[i].pass ? "U" : "D") != 0)
            fail_msg("pass row %zu (%s): verdict %s, want %s", i, cases[i].reply, got,
                     cases[i].pass ? "U" : "D");
    }
}

/* ---- rise and fall ------------------------------------------------------ */

struct hyst_case {
    uint32_t rise, fall;
    const char *results; /* P: the backend answers 200, F: 503 */
    const char *want;    /* verdict after each run: ? unknown, U up, D down */
};

static void test_rise_fall(void **state)
{
    static const struct hyst_case cases[] = {
        /* No verdict until a full streak: rise passes make it up ... */
        {2, 3, "PP", "?U"},
        /* ... fall failures make it down; before that, unknown. */
        {2, 3, "FFF", "??D"},
        /* From up, fall - 1 failures keep it up; the fall-th takes it down. */
        {2, 3, "PPFFF", "?UUUD"},
        /* From down, rise - 1 passes keep it down. */
        {2, 3, "FFFPP", "??DDU"},
        /* A pass breaks a failure streak, and a failure a pass streak. */
        {2, 3, "PPFFPFFF", "?UUUUUUD"},
        {3, 2, "FFPPFPPP", "?DDDDDDU"},
        {1, 1, "PFPF", "UDUD"},
        /* A long streak does not count beyond the threshold twice. */
        {1, 2, "PPPPFF", "UUUUUD"},
        {4, 1, "PPPFPPPP", "???DDDDU"},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct hyst_case *c = &cases[i];
        const char *script[MAXRUNS];
        struct cm_conf_check check;
        size_t n = strlen(c->results);
        char got[MAXRUNS + 1];

        for (size_t k = 0; k < n; k++)
            script[k] = c->results[k] == 'P' ? "HTTP/1.1 200 OK\r\n\r\n"
                                             : "HTTP/1.1 503 Unavailable\r\n\r\n";
        fast_check(&check, CM_CHECK_HTTP, c->rise, c->fall);
        run_script(&check, script, n, got, NULL, 0);
        if (strcmp(got, c->want) != 0)
            fail_msg("rise/fall row %zu (rise %u fall %u, %s): verdicts %s, want %s", i, c->rise,
                     c->fall, c->results, got, c->want);
    }
}

/* ---- the request -------------------------------------------------------- */

static void test_request(void **state)
{
    static const char *const ok[] = {"HTTP/1.1 200 OK\r\n\r\n"};
    static char path[] = "/ready?full=1", vhost[] = "web.example.test";
    struct cm_conf_check check;
    char got[4], req[1024], host[128];

    (void)state;
    fast_check(&check, CM_CHECK_HTTP, 1, 1);
    run_script(&check, ok, 1, got, req, sizeof(req));
    /* Default path, Host: the backend's ip:port. */
    assert_int_equal(strncmp(req, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:", 39), 0);
    assert_non_null(strstr(req, "\r\nConnection: close\r\n"));
    assert_non_null(strstr(req, "\r\nUser-Agent: fedgslb-proxy-check\r\n"));

    check.path = path;
    check.host = vhost;
    run_script(&check, ok, 1, got, req, sizeof(req));
    snprintf(host, sizeof(host), "GET /ready?full=1 HTTP/1.1\r\nHost: web.example.test\r\n");
    assert_int_equal(strncmp(req, host, strlen(host)), 0);
}

/* tcp: a connection is a pass, nothing is sent or read. */
static void test_tcp(void **state)
{
    static const char *const silent[] = {HANG, HANG};
    struct cm_conf_check check;
    struct event_base *base = event_base_new();
    uint64_t rng = 1;
    struct lbp_check_conf conf;
    struct lbp_check c;
    struct backend be;
    struct cm_addr addr;
    struct results r = {0};
    char name[CM_ADDR_STRLEN], got[MAXRUNS + 1];

    (void)state;
    fast_check(&check, CM_CHECK_TCP, 2, 1);
    run_script(&check, silent, 2, got, NULL, 0);
    assert_string_equal(got, "?U");

    /* A closed port: down. */
    assert_non_null(base);
    backend_start(&be, base, &addr, name, sizeof(name));
    backend_stop(&be);
    assert_int_equal(lbp_check_conf_init(&conf, &check, false, base, "p", &rng), CM_OK);
    lbp_check_init(&c, name, &addr, on_result, &r);
    lbp_check_start(&c, &conf);
    run_checks(base, &r, 1);
    assert_int_equal(r.verdict[0], LBP_CHECK_DOWN);
    lbp_check_stop(&c);
    lbp_check_conf_fini(&conf);
    event_base_free(base);
}

/* Stop keeps the verdict, cancels everything, and can be repeated. */
static void test_stop(void **state)
{
    static const char *const script[] = {"HTTP/1.1 200 OK\r\n\r\n", HANG};
    struct event_base *base = event_base_new();
    uint64_t rng = 7;
    struct cm_conf_check check;
    struct lbp_check_conf conf;
    struct lbp_check c;
    struct backend be;
    struct cm_addr addr;
    struct results r = {0};
    char name[CM_ADDR_STRLEN];

    (void)state;
    assert_non_null(base);
    backend_start(&be, base, &addr, name, sizeof(name));
    be.script = script;
    be.script_len = 2;
    fast_check(&check, CM_CHECK_HTTP, 1, 1);
    assert_int_equal(lbp_check_conf_init(&conf, &check, false, base, "p", &rng), CM_OK);
    lbp_check_init(&c, name, &addr, on_result, &r);
    lbp_check_start(&c, &conf);
    run_checks(base, &r, 1);
    assert_int_equal(lbp_check_verdict(&c), LBP_CHECK_UP);
    /* Wait for the second run to be in flight (it hangs), then stop it. */
    while (be.accepted < 2 || c.phase != LBP_CHECK_RUNNING)
        assert_true(event_base_loop(base, EVLOOP_ONCE) == 0);
    lbp_check_stop(&c);
    assert_false(lbp_check_is_started(&c));
    assert_int_equal(lbp_check_verdict(&c), LBP_CHECK_UP);
    assert_int_equal(lbp_check_runs(&c), 1);
    lbp_check_stop(&c);
    /* Nothing of the check is left on the loop besides the backend's events. */
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(r.count, 1);
    lbp_check_conf_fini(&conf);
    backend_stop(&be);
    event_base_free(base);
}

/* ---- lbp_check_conf_init(): defaults for the zero fields ---------------- */

struct defaults_case {
    struct cm_conf_check in;
    uint32_t interval_ms, timeout_ms, rise, fall;
    uint16_t status_min, status_max;
    const char *path;
};

static char up_path[] = "/up";

static void test_conf_defaults(void **state)
{
    static const struct defaults_case cases[] = {
        {{.type = CM_CHECK_HTTP}, 10000, 3000, 1, 1, 200, 399, "/healthz"},
        {{.type = CM_CHECK_HTTP,
          .interval_ms = 500,
          .timeout_ms = 100,
          .rise = 4,
          .fall = 5,
          .status_min = 204,
          .status_max = 204,
          .path = up_path},
         500,
         100,
         4,
         5,
         204,
         204,
         "/up"},
        /* One end of the range given: kept as is (only 0-0 means default). */
        {{.type = CM_CHECK_TCP, .status_min = 200}, 10000, 3000, 1, 1, 200, 0, "/healthz"},
        {{.type = CM_CHECK_TCP, .status_max = 299}, 10000, 3000, 1, 1, 0, 299, "/healthz"},
    };
    uint64_t rng = 1;
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct defaults_case *c = &cases[i];
        struct cm_conf_check in = c->in;
        struct lbp_check_conf conf;
        char body[] = "ok";

        in.expect_body = body;
        assert_int_equal(lbp_check_conf_init(&conf, &in, true, NULL, "p", &rng), CM_OK);
        assert_int_equal(conf.check.interval_ms, c->interval_ms);
        assert_int_equal(conf.check.timeout_ms, c->timeout_ms);
        assert_int_equal(conf.check.rise, c->rise);
        assert_int_equal(conf.check.fall, c->fall);
        assert_int_equal(conf.check.status_min, c->status_min);
        assert_int_equal(conf.check.status_max, c->status_max);
        assert_string_equal(conf.path, c->path);
        /* Own copies, and expect_body dropped. */
        assert_ptr_equal(conf.check.path, conf.path);
        assert_ptr_not_equal(conf.path, c->in.path);
        assert_null(conf.check.expect_body);
        assert_null(conf.tls);
        lbp_check_conf_fini(&conf);
    }
}

/* https gets a client context only when asked for. */
static void test_conf_tls(void **state)
{
    static char vhost[] = "web.example.test";
    struct cm_conf_check check = {.type = CM_CHECK_HTTPS, .host = vhost};
    struct lbp_check_conf conf;
    uint64_t rng = 1;

    (void)state;
    assert_int_equal(lbp_check_conf_init(&conf, &check, true, NULL, "p", &rng), CM_OK);
    assert_non_null(conf.tls);
    assert_string_equal(conf.host, "web.example.test");
    assert_ptr_not_equal(conf.host, check.host);
    lbp_check_conf_fini(&conf);
    assert_int_equal(lbp_check_conf_init(&conf, &check, false, NULL, "p", &rng), CM_OK);
    assert_null(conf.tls);
    lbp_check_conf_fini(&conf);
    lbp_check_conf_fini(&conf); /* a zeroed conf */
}

int main(void)
{
    /* A check may write to a backend that has closed. */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_pass), cmocka_unit_test(test_rise_fall),
        cmocka_unit_test(test_request),   cmocka_unit_test(test_tcp),
        cmocka_unit_test(test_stop),      cmocka_unit_test(test_conf_defaults),
        cmocka_unit_test(test_conf_tls),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
