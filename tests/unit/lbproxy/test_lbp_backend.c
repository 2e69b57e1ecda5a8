/* SPDX-License-Identifier: Apache-2.0 */
/* test_lbp_backend.c -- the proxy's backend pool: choice, ejection, refcounts,
 * idle connections and active checks, on real loopback sockets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_log.h"
#include "common/cm_net.h"
#include "common/cm_str.h"
#include "lbproxy/lbp_backend.h"
#include "lbproxy/lbp_io.h"

/* ---- helpers ------------------------------------------------------------ */

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};

    nanosleep(&ts, NULL);
}

static struct lbp_pool *mkpool(struct event_base *base, const struct lbp_pool_params *p,
                               const char *const *addrs, size_t n)
{
    struct lbp_pool_params def;
    struct lbp_pool *pool;
    char err[256] = "";

    if (p == NULL) {
        lbp_pool_params_default(&def);
        def.active_checks = false;
        p = &def;
    }
    pool = lbp_pool_new(base, "test pool", p, NULL);
    assert_non_null(pool);
    assert_int_equal(lbp_pool_set_backends(pool, addrs, n, err, sizeof(err)), CM_OK);
    return pool;
}

/* Index of backend @name in the pool's stats order, or -1. */
static int stats_of(const struct lbp_pool *pool, const char *name, struct lbp_backend_stats *out)
{
    for (size_t i = 0; i < lbp_pool_size(pool); i++) {
        lbp_pool_backend_stats(pool, i, out);
        if (strcmp(out->name, name) == 0)
            return (int)i;
    }
    return -1;
}

/* The backend called @name (a new reference), found by picking. */
static struct lbp_backend *grab(struct lbp_pool *pool, const char *name)
{
    for (int i = 0; i < 1000; i++) {
        struct lbp_backend *b = lbp_pool_pick(pool, NULL);

        assert_non_null(b);
        if (strcmp(lbp_backend_name(b), name) == 0)
            return b;
        lbp_backend_unref(b);
    }
    fail_msg("backend %s never picked", name);
    return NULL;
}

static void fail_n(struct lbp_backend *b, int n, enum lbp_outcome o)
{
    for (int i = 0; i < n; i++) {
        lbp_backend_begin(b);
        lbp_backend_end(b, o, 1000);
    }
}

static bool is_ejected(const struct lbp_pool *pool, const char *name)
{
    struct lbp_backend_stats s;

    assert_true(stats_of(pool, name, &s) >= 0);
    return s.ejected;
}

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

typedef bool cond_fn(void *arg);

/* Runs @base until @cond holds or @timeout_ms passes; returns @cond. */
static bool run_until(struct event_base *base, cond_fn *cond, void *arg, unsigned timeout_ms)
{
    struct event *tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, 10000};
    uint64_t deadline = mono_ms() + timeout_ms;
    bool ok;

    assert_non_null(tick);
    event_add(tick, &tv);
    while (!(ok = cond(arg)) && mono_ms() < deadline)
        event_base_loop(base, EVLOOP_ONCE);
    event_free(tick);
    return ok;
}

/* A listening TCP socket on 127.0.0.1 with a kernel-chosen port. */
static int listen_local(char *name, size_t cap)
{
    struct cm_addr a;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd;

    /* cm_addr_parse() wants a real port; port 0 lets the kernel choose. */
    memset(&a, 0, sizeof(a));
    a.len = sizeof(struct sockaddr_in);
    ((struct sockaddr_in *)&a.ss)->sin_family = AF_INET;
    ((struct sockaddr_in *)&a.ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = cm_net_listen(&a, SOCK_STREAM, false, 16);
    assert_true(fd >= 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    cm_addr_format((const struct sockaddr *)&ss, name, cap);
    return fd;
}

/* ---- set_backends ------------------------------------------------------- */

static void test_set_backends_keeps_state(void **state)
{
    const char *first[] = {"127.0.0.1:8001", "127.0.0.1:8002"};
    const char *second[] = {"[::1]:8003", "127.0.0.1:8001", "127.0.0.1:8001"};
    const char *bad[] = {"127.0.0.1:8004", "no-such-host:80"};
    struct lbp_pool *pool = mkpool(NULL, NULL, first, 2);
    struct lbp_backend_stats s;
    struct lbp_backend *b;
    char err[256] = "";

    (void)state;
    b = grab(pool, "127.0.0.1:8001");
    fail_n(b, 2, LBP_OUTCOME_5XX);
    lbp_backend_unref(b);

    assert_int_equal(lbp_pool_set_backends(pool, second, 3, err, sizeof(err)), CM_OK);
    assert_int_equal(lbp_pool_size(pool), 2); /* the duplicate is folded */
    assert_true(stats_of(pool, "127.0.0.1:8001", &s) >= 0);
    assert_int_equal(s.failed_5xx, 2);
    assert_int_equal(s.requests, 2);
    assert_true(stats_of(pool, "[::1]:8003", &s) >= 0);
    assert_int_equal(s.requests, 0);
    assert_int_equal(stats_of(pool, "127.0.0.1:8002", &s), -1);

    assert_int_equal(lbp_pool_set_backends(pool, bad, 2, err, sizeof(err)), CM_EINVAL);
    assert_non_null(strstr(err, "no-such-host:80"));
    assert_int_equal(lbp_pool_size(pool), 2);
    assert_true(stats_of(pool, "127.0.0.1:8001", &s) >= 0);
    assert_int_equal(s.failed_5xx, 2);
    assert_int_equal(stats_of(pool, "127.0.0.1:8004", &s), -1);

    /* port is required */
    assert_int_equal(lbp_pool_set_backends(pool, (const char *[]){"10.0.0.1"}, 1, err, sizeof(err)),
                     CM_EINVAL);
    assert_int_equal(lbp_pool_set_backends(pool, NULL, 0, err, sizeof(err)), CM_OK);
    assert_int_equal(lbp_pool_size(pool), 0);
    assert_null(lbp_pool_pick(pool, NULL));
    lbp_pool_free(pool);
}

/* ---- choice ------------------------------------------------------------- */

static void test_p2c_outstanding(void **state)
{
    const char *addrs[] = {"127.0.0.1:8001", "127.0.0.1:8002"};
    struct lbp_pool *pool = mkpool(NULL, NULL, addrs, 2);
    struct lbp_backend *busy = grab(pool, "127.0.0.1:8001");
    int other = 0;

    (void)state;
    for (int i = 0; i < 10; i++)
        lbp_backend_begin(busy);
    for (int i = 0; i < 1000; i++) {
        struct lbp_backend *b = lbp_pool_pick(pool, NULL);

        other += b != busy;
        lbp_backend_unref(b);
    }
    assert_true(other > 900);
    for (int i = 0; i < 10; i++)
        lbp_backend_end(busy, LBP_OUTCOME_ABANDONED, 0);
    lbp_backend_unref(busy);
    lbp_pool_free(pool);
}

static void test_p2c_latency(void **state)
{
    const char *addrs[] = {"127.0.0.1:8001", "127.0.0.1:8002", "127.0.0.1:8003"};
    struct lbp_pool *pool = mkpool(NULL, NULL, addrs, 3);
    struct lbp_backend *slow = grab(pool, "127.0.0.1:8002");
    struct lbp_backend_stats s;
    int picked_slow = 0;

    (void)state;
    for (int i = 0; i < 20; i++) {
        lbp_backend_begin(slow);
        lbp_backend_end(slow, LBP_OUTCOME_OK, 200000); /* 200 ms */
    }
    for (const char *const *a = addrs; a < addrs + 3; a += 2) {
        struct lbp_backend *fast = grab(pool, *a);

        lbp_backend_begin(fast);
        lbp_backend_end(fast, LBP_OUTCOME_OK, 1000); /* 1 ms */
        lbp_backend_unref(fast);
    }
    stats_of(pool, "127.0.0.1:8002", &s);
    assert_true(s.latency_ewma_ms > 190.0 && s.latency_ewma_ms < 210.0);
    /* With 3 backends the slow one is a candidate in 2 of 3 pairs but never wins. */
    for (int i = 0; i < 1000; i++) {
        struct lbp_backend *b = lbp_pool_pick(pool, NULL);

        picked_slow += b == slow;
        lbp_backend_unref(b);
    }
    assert_true(picked_slow < 100);
    lbp_backend_unref(slow);
    lbp_pool_free(pool);
}

static void test_exclude(void **state)
{
    const char *addrs[] = {"127.0.0.1:8001", "127.0.0.1:8002"};
    struct lbp_pool *pool = mkpool(NULL, NULL, addrs, 2);
    struct lbp_backend *a = grab(pool, "127.0.0.1:8001");

    (void)state;
    for (int i = 0; i < 200; i++) {
        struct lbp_backend *b = lbp_pool_pick(pool, a);

        assert_non_null(b);
        assert_ptr_not_equal(b, a);
        assert_string_equal(lbp_backend_name(b), "127.0.0.1:8002");
        lbp_backend_unref(b);
    }
    assert_int_equal(lbp_pool_set_backends(pool, addrs, 1, NULL, 0), CM_OK);
    assert_null(lbp_pool_pick(pool, a));
    lbp_backend_unref(a);
    lbp_pool_free(pool);
}

/* ---- ejection ----------------------------------------------------------- */

static void test_eject_after_consecutive(void **state)
{
    const char *addrs[] = {"127.0.0.1:8001", "127.0.0.1:8002", "127.0.0.1:8003"};
    struct lbp_pool *pool = mkpool(NULL, NULL, addrs, 3);
    struct lbp_backend *a = grab(pool, "127.0.0.1:8001");
    struct lbp_backend_stats s;
    struct lbp_pool_stats ps;

    (void)state;
    fail_n(a, 2, LBP_OUTCOME_CONNECT);
    fail_n(a, 1, LBP_OUTCOME_RESET);
    fail_n(a, 1, LBP_OUTCOME_5XX);
    assert_false(is_ejected(pool, "127.0.0.1:8001"));
    fail_n(a, 1, LBP_OUTCOME_TIMEOUT);
    stats_of(pool, "127.0.0.1:8001", &s);
    assert_true(s.ejected);
    assert_int_equal(s.ejections, 1);
    assert_true(s.ejected_ms_left > 0 && s.ejected_ms_left <= 30000);
    assert_true(s.success_rate < 0.01);
    lbp_pool_get_stats(pool, &ps);
    assert_int_equal(ps.available, 2);
    assert_int_equal(ps.ejections, 1);
    for (int i = 0; i < 300; i++) {
        struct lbp_backend *b = lbp_pool_pick(pool, NULL);

        assert_ptr_not_equal(b, a);
        lbp_backend_unref(b);
    }
    lbp_pool_get_stats(pool, &ps);
    assert_int_equal(ps.panic_picks, 0);
    lbp_backend_unref(a);
    lbp_pool_free(pool);
}

static void test_eject_guard_half(void **state)
{
    const char *addrs[] = {"127.0.0.1:8001", "127.0.0.1:8002"};
    struct lbp_pool *pool = mkpool(NULL, NULL, addrs, 2);
    struct lbp_backend *a = grab(pool, "127.0.0.1:8001");
    struct lbp_backend *b = grab(pool, "127.0.0.1:8002");
    struct lbp_pool_stats ps;

    (void)state;
    fail_n(a, 5, LBP_OUTCOME_CONNECT);
    assert_true(is_ejected(pool, "127.0.0.1:8001"));
    fail_n(b, 5, LBP_OUTCOME_CONNECT);
    assert_false(is_ejected(pool, "127.0.0.1:8002"));
    lbp_pool_get_stats(pool, &ps);
    assert_int_equal(ps.ejections, 1);
    assert_int_equal(ps.ejections_skipped, 1);
    lbp_backend_unref(a);
    lbp_backend_unref(b);
    lbp_pool_free(pool);
}

static void test_eject_doubles(void **state)
{
    const char *addrs[] = {"127.0.0.1:8001", "127.0.0.1:8002", "127.0.0.1:8003"};
    struct lbp_pool_params p;
    struct lbp_pool *pool;
    struct lbp_backend *a;
    struct lbp_backend_stats s;

    (void)state;
    lbp_pool_params_default(&p);
    p.active_checks = false;
    p.eject_base_ms = 100;
    p.eject_max_ms = 100000;
    pool = mkpool(NULL, &p, addrs, 3);
    a = grab(pool, "127.0.0.1:8001");
    fail_n(a, 5, LBP_OUTCOME_5XX);
    stats_of(pool, "127.0.0.1:8001", &s);
    assert_true(s.ejected);
    assert_true(s.ejected_ms_left <= 100);
    sleep_ms(120);
    assert_false(is_ejected(pool, "127.0.0.1:8001"));
    fail_n(a, 5, LBP_OUTCOME_5XX);
    stats_of(pool, "127.0.0.1:8001", &s);
    assert_true(s.ejected);
    assert_int_equal(s.ejections, 2);
    assert_true(s.ejected_ms_left > 100 && s.ejected_ms_left <= 200);
    lbp_backend_unref(a);
    lbp_pool_free(pool);
}

static void test_success_resets_count(void **state)
{
    const char *addrs[] = {"127.0.0.1:8001", "127.0.0.1:8002", "127.0.0.1:8003"};
    struct lbp_pool *pool = mkpool(NULL, NULL, addrs, 3);
    struct lbp_backend *a = grab(pool, "127.0.0.1:8001");
    struct lbp_backend_stats s;

    (void)state;
    fail_n(a, 4, LBP_OUTCOME_5XX);
    fail_n(a, 1, LBP_OUTCOME_OK);
    fail_n(a, 4, LBP_OUTCOME_CONNECT);
    fail_n(a, 3, LBP_OUTCOME_ABANDONED); /* neither success nor failure */
    stats_of(pool, "127.0.0.1:8001", &s);
    assert_false(s.ejected);
    assert_int_equal(s.consecutive_failures, 4);
    assert_int_equal(s.requests, 9);
    assert_int_equal(s.ok, 1);
    assert_int_equal(s.outstanding, 0);
    assert_true(s.success_rate > 0.1 && s.success_rate < 0.12); /* 1 of 9 */
    lbp_backend_unref(a);
    lbp_pool_free(pool);
}

static void test_panic_when_all_ejected(void **state)
{
    const char *addrs[] = {"127.0.0.1:8001", "127.0.0.1:8002"};
    struct lbp_pool_params p;
    struct lbp_pool *pool;
    struct lbp_backend *a, *b;
    struct lbp_pool_stats ps;

    (void)state;
    lbp_pool_params_default(&p);
    p.active_checks = false;
    p.max_eject_percent = 100;
    pool = mkpool(NULL, &p, addrs, 2);
    a = grab(pool, "127.0.0.1:8001");
    b = grab(pool, "127.0.0.1:8002");
    fail_n(a, 5, LBP_OUTCOME_CONNECT);
    fail_n(b, 5, LBP_OUTCOME_CONNECT);
    assert_true(is_ejected(pool, "127.0.0.1:8001"));
    assert_true(is_ejected(pool, "127.0.0.1:8002"));
    lbp_pool_get_stats(pool, &ps);
    assert_int_equal(ps.available, 0);
    for (int i = 0; i < 10; i++) {
        struct lbp_backend *x = lbp_pool_pick(pool, NULL);

        assert_non_null(x);
        lbp_backend_unref(x);
    }
    {
        struct lbp_backend *x = lbp_pool_pick(pool, a);

        assert_ptr_equal(x, b);
        lbp_backend_unref(x);
    }
    lbp_pool_get_stats(pool, &ps);
    assert_int_equal(ps.panic_picks, 11);
    lbp_backend_unref(a);
    lbp_backend_unref(b);
    lbp_pool_free(pool);
}

/* ---- lifetime ----------------------------------------------------------- */

static void test_refcount_removed_backend(void **state)
{
    const char *addrs[] = {"127.0.0.1:8001", "127.0.0.1:8002"};
    struct lbp_pool *pool = mkpool(NULL, NULL, addrs, 2);
    struct lbp_backend *a = grab(pool, "127.0.0.1:8001");
    struct lbp_backend *b = grab(pool, "127.0.0.1:8002");
    socklen_t len = 0;
    const struct sockaddr *sa;

    (void)state;
    lbp_backend_begin(a);
    assert_int_equal(lbp_pool_set_backends(pool, addrs + 1, 1, NULL, 0), CM_OK);
    assert_int_equal(lbp_pool_size(pool), 1);
    /* @a left the pool but is still ours: every call is valid (ASan watches). */
    assert_string_equal(lbp_backend_name(a), "127.0.0.1:8001");
    sa = lbp_backend_sockaddr(a, &len);
    assert_int_equal(sa->sa_family, AF_INET);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    lbp_backend_end(a, LBP_OUTCOME_CONNECT, 0);
    fail_n(a, 10, LBP_OUTCOME_CONNECT); /* no pool: no ejection, no crash */
    assert_null(lbp_backend_idle_take(a));
    lbp_backend_unref(a);

    /* The pool goes first; the request's reference keeps @b. */
    lbp_pool_free(pool);
    lbp_backend_begin(b);
    lbp_backend_end(b, LBP_OUTCOME_OK, 10);
    assert_string_equal(lbp_backend_name(b), "127.0.0.1:8002");
    lbp_backend_unref(b);
}

/* ---- idle connections --------------------------------------------------- */

struct conn_wait {
    bool connected, failed;
};

static void conn_event_cb(struct lbp_io *io, short what, void *arg)
{
    struct conn_wait *w = arg;

    (void)io;
    if (what & LBP_IO_CONNECTED)
        w->connected = true;
    else
        w->failed = true;
}

static bool conn_done(void *arg)
{
    struct conn_wait *w = arg;

    return w->connected || w->failed;
}

/* A connected stream to "ip:port" @name. */
static struct lbp_io *connect_name(struct event_base *base, const char *name)
{
    struct cm_addr a;
    struct conn_wait w = {false, false};
    struct lbp_io *io = NULL;

    assert_int_equal(cm_addr_parse(name, 0, &a), CM_OK);
    assert_int_equal(lbp_io_connect(base, (struct sockaddr *)&a.ss, a.len, &io), CM_OK);
    lbp_io_setcb(io, NULL, NULL, conn_event_cb, &w);
    assert_true(run_until(base, conn_done, &w, 5000));
    assert_true(w.connected);
    lbp_io_setcb(io, NULL, NULL, NULL, NULL);
    return io;
}

/* A connected stream to @lfd's address; *peer is the accepted end. */
static struct lbp_io *connect_to(struct event_base *base, int lfd, int *peer)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    struct conn_wait w = {false, false};
    struct lbp_io *io = NULL;

    assert_int_equal(getsockname(lfd, (struct sockaddr *)&ss, &len), 0);
    assert_int_equal(lbp_io_connect(base, (struct sockaddr *)&ss, len, &io), CM_OK);
    lbp_io_setcb(io, NULL, NULL, conn_event_cb, &w);
    assert_true(run_until(base, conn_done, &w, 5000));
    assert_true(w.connected);
    lbp_io_setcb(io, NULL, NULL, NULL, NULL);
    *peer = accept(lfd, NULL, NULL);
    assert_true(*peer >= 0);
    return io;
}

struct idle_wait {
    const struct lbp_pool *pool;
    const char *name;
};

static bool idle_empty(void *arg)
{
    struct idle_wait *w = arg;
    struct lbp_backend_stats s;

    assert_true(stats_of(w->pool, w->name, &s) >= 0);
    return s.idle == 0;
}

static void test_idle_put_take(void **state)
{
    struct event_base *base = event_base_new();
    char name[CM_ADDR_STRLEN];
    int lfd = listen_local(name, sizeof(name));
    const char *addrs[] = {name};
    struct lbp_pool_params p;
    struct lbp_pool *pool;
    struct lbp_backend *b;
    struct lbp_io *c1, *c2, *c3;
    struct lbp_backend_stats s;
    int p1, p2, p3;

    (void)state;
    lbp_pool_params_default(&p);
    p.active_checks = false;
    p.idle_max = 2;
    pool = mkpool(base, &p, addrs, 1);
    b = grab(pool, name);
    c1 = connect_to(base, lfd, &p1);
    c2 = connect_to(base, lfd, &p2);
    c3 = connect_to(base, lfd, &p3);

    lbp_backend_idle_put(b, c1);
    assert_ptr_equal(lbp_backend_idle_take(b), c1);
    assert_null(lbp_backend_idle_take(b));
    lbp_backend_idle_put(b, c1);
    lbp_backend_idle_put(b, c2);
    lbp_backend_idle_put(b, c3); /* over idle_max: closed */
    stats_of(pool, name, &s);
    assert_int_equal(s.idle, 2);
    event_base_loop(base, EVLOOP_NONBLOCK);
    stats_of(pool, name, &s);
    assert_int_equal(s.idle, 2); /* quiet peers: nothing closes */

    /* The peer of c2 speaks, the peer of c1 closes: both go. */
    assert_int_equal(write(p2, "x", 1), 1);
    close(p1);
    {
        struct idle_wait w = {pool, name};

        assert_true(run_until(base, idle_empty, &w, 5000));
    }
    assert_null(lbp_backend_idle_take(b));

    /* A taken connection still works: it is the caller's now. */
    c1 = connect_to(base, lfd, &p1);
    lbp_backend_idle_put(b, c1);
    c2 = lbp_backend_idle_take(b);
    assert_ptr_equal(c2, c1);
    assert_int_equal(lbp_io_write(c2, "ping", 4), CM_OK);
    lbp_io_write_now(c2);
    assert_int_equal(lbp_io_output_len(c2), 0);
    {
        char got[4];

        assert_int_equal(read(p1, got, sizeof(got)), 4);
        assert_memory_equal(got, "ping", 4);
    }
    lbp_io_free(c2);

    close(p1);
    close(p2);
    close(p3);
    close(lfd);
    lbp_backend_unref(b);
    lbp_pool_free(pool);
    event_base_free(base);
}

static void test_idle_timeout_and_removal(void **state)
{
    struct event_base *base = event_base_new();
    char name[CM_ADDR_STRLEN];
    int lfd = listen_local(name, sizeof(name));
    const char *addrs[] = {name};
    struct lbp_pool_params p;
    struct lbp_pool *pool;
    struct lbp_backend *b;
    struct lbp_backend_stats s;
    int p1, p2;

    (void)state;
    lbp_pool_params_default(&p);
    p.active_checks = false;
    p.idle_timeout_ms = 30;
    pool = mkpool(base, &p, addrs, 1);
    b = grab(pool, name);
    lbp_backend_idle_put(b, connect_to(base, lfd, &p1));
    stats_of(pool, name, &s);
    assert_int_equal(s.idle, 1);
    {
        struct idle_wait w = {pool, name};

        assert_true(run_until(base, idle_empty, &w, 5000));
    }
    /* Removing the backend closes its idle connections at once (ASan: no leak). */
    lbp_backend_idle_put(b, connect_to(base, lfd, &p2));
    stats_of(pool, name, &s);
    assert_int_equal(s.idle, 1);
    assert_int_equal(lbp_pool_set_backends(pool, NULL, 0, NULL, 0), CM_OK);
    assert_null(lbp_backend_idle_take(b));
    close(p1);
    close(p2);
    close(lfd);
    lbp_backend_unref(b);
    lbp_pool_free(pool);
    event_base_free(base);
}

/* ---- active checks ------------------------------------------------------ */

struct http_backend {
    struct evhttp *http;
    int status; /* what it answers */
    unsigned hits;
    char name[CM_ADDR_STRLEN];
};

static void http_cb(struct evhttp_request *req, void *arg)
{
    struct http_backend *hb = arg;

    hb->hits++;
    assert_string_equal(evhttp_request_get_uri(req), "/ready");
    evbuffer_add_printf(evhttp_request_get_output_buffer(req), "status %d\n", hb->status);
    evhttp_send_reply(req, hb->status, "X", NULL);
}

/* A server context with a fresh self-signed P-256 certificate. */
static SSL_CTX *tls_server_ctx(void)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    X509_NAME *nm;

    assert_non_null(key);
    assert_non_null(x);
    assert_non_null(ctx);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    nm = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"backend.test", -1,
                               -1, 0);
    assert_int_equal(X509_set_issuer_name(x, nm), 1);
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    assert_int_equal(SSL_CTX_use_certificate(ctx, x), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
    X509_free(x);
    EVP_PKEY_free(key);
    return ctx;
}

static struct bufferevent *tls_bevcb(struct event_base *base, void *arg)
{
    return bufferevent_openssl_socket_new(base, -1, SSL_new(arg), BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

static void http_backend_start(struct event_base *base, struct http_backend *hb, int status)
{
    struct evhttp_bound_socket *bs;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    hb->status = status;
    hb->hits = 0;
    hb->http = evhttp_new(base);
    assert_non_null(hb->http);
    evhttp_set_gencb(hb->http, http_cb, hb);
    bs = evhttp_bind_socket_with_handle(hb->http, "127.0.0.1", 0);
    assert_non_null(bs);
    assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&ss, &len), 0);
    cm_addr_format((const struct sockaddr *)&ss, hb->name, sizeof(hb->name));
}

struct check_wait {
    const struct lbp_pool *pool;
    const char *name;
    enum lbp_check_state want;
};

static bool check_is(void *arg)
{
    struct check_wait *w = arg;
    struct lbp_backend_stats s;

    assert_true(stats_of(w->pool, w->name, &s) >= 0);
    return s.check_state == w->want;
}

static void wait_check(struct event_base *base, const struct lbp_pool *pool, const char *name,
                       enum lbp_check_state want)
{
    struct check_wait w = {pool, name, want};

    if (!run_until(base, check_is, &w, 10000))
        fail_msg("backend %s never reached check state %s", name, lbp_check_state_name(want));
}

static void check_conf(struct cm_conf_check *c, enum cm_check_type type)
{
    memset(c, 0, sizeof(*c));
    c->type = type;
    c->path = (char *)(uintptr_t) "/ready";
    c->status_min = 200;
    c->status_max = 399;
    c->interval_ms = 20;
    c->timeout_ms = 2000;
    c->rise = 2;
    c->fall = 3;
}

static void test_active_http_checks(void **state)
{
    struct event_base *base = event_base_new();
    struct http_backend sick, well;
    struct lbp_pool_params p;
    struct cm_conf_check c;
    struct lbp_pool *pool;
    struct lbp_backend_stats s;
    struct lbp_pool_stats ps;
    const char *addrs[2];
    char err[256];
    json_t *doc;

    (void)state;
    http_backend_start(base, &sick, 500);
    http_backend_start(base, &well, 200);
    addrs[0] = sick.name;
    addrs[1] = well.name;
    lbp_pool_params_default(&p);
    check_conf(&c, CM_CHECK_HTTP);
    pool = lbp_pool_new(base, "jpn default/web", &p, &c);
    assert_non_null(pool);
    assert_int_equal(lbp_pool_set_backends(pool, addrs, 2, err, sizeof(err)), CM_OK);
    {
        /* An idle connection to the sick backend is closed by the "down" verdict. */
        struct lbp_backend *b = grab(pool, sick.name);

        lbp_backend_idle_put(b, connect_name(base, sick.name));
        stats_of(pool, sick.name, &s);
        assert_int_equal(s.idle, s.check_state == LBP_CHECK_DOWN ? 0 : 1);
        lbp_backend_unref(b);
    }

    wait_check(base, pool, sick.name, LBP_CHECK_DOWN);
    stats_of(pool, sick.name, &s);
    assert_int_equal(s.idle, 0);
    wait_check(base, pool, well.name, LBP_CHECK_UP);
    stats_of(pool, sick.name, &s);
    assert_true(s.checks >= 3);
    assert_false(s.check_up);
    assert_true(sick.hits >= 3);
    lbp_pool_get_stats(pool, &ps);
    assert_int_equal(ps.available, 1);
    for (int i = 0; i < 200; i++) {
        struct lbp_backend *b = lbp_pool_pick(pool, NULL);

        assert_string_equal(lbp_backend_name(b), well.name);
        lbp_backend_unref(b);
    }
    doc = lbp_pool_json(pool);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(doc, "backends"), 0), "check")),
                        "down");
    json_decref(doc);

    sick.status = 204;
    wait_check(base, pool, sick.name, LBP_CHECK_UP);
    lbp_pool_get_stats(pool, &ps);
    assert_int_equal(ps.available, 2);

    /* Replacing the set keeps the verdict of kept backends and stops removed ones. */
    assert_int_equal(lbp_pool_set_backends(pool, addrs + 1, 1, err, sizeof(err)), CM_OK);
    stats_of(pool, well.name, &s);
    assert_int_equal(s.check_state, LBP_CHECK_UP);
    lbp_pool_free(pool);
    evhttp_free(sick.http);
    evhttp_free(well.http);
    event_base_free(base);
}

static void test_active_https_checks(void **state)
{
    struct event_base *base = event_base_new();
    struct http_backend tls, plain;
    struct lbp_pool_params p;
    struct cm_conf_check c;
    struct lbp_pool *pool;
    SSL_CTX *ctx = tls_server_ctx();
    const char *addrs[2];
    struct lbp_backend_stats s;

    (void)state;
    http_backend_start(base, &tls, 200);
    evhttp_set_bevcb(tls.http, tls_bevcb, ctx);
    http_backend_start(base, &plain, 200);
    addrs[0] = tls.name;
    addrs[1] = plain.name;
    lbp_pool_params_default(&p);
    check_conf(&c, CM_CHECK_HTTPS);
    c.host = (char *)(uintptr_t) "backend.test";
    pool = lbp_pool_new(base, "https", &p, &c);
    assert_non_null(pool);
    assert_int_equal(lbp_pool_set_backends(pool, addrs, 2, NULL, 0), CM_OK);
    wait_check(base, pool, tls.name, LBP_CHECK_UP);
    wait_check(base, pool, plain.name, LBP_CHECK_DOWN); /* no TLS there */
    assert_true(tls.hits >= 2);                         /* the GET went through TLS */
    stats_of(pool, tls.name, &s);
    assert_true(s.check_up);

    tls.status = 503;
    wait_check(base, pool, tls.name, LBP_CHECK_DOWN);
    lbp_pool_free(pool);
    evhttp_free(tls.http);
    evhttp_free(plain.http);
    SSL_CTX_free(ctx);
    event_base_free(base);
}

static void test_active_tcp_checks(void **state)
{
    struct event_base *base = event_base_new();
    char open_name[CM_ADDR_STRLEN], closed_name[CM_ADDR_STRLEN];
    int lfd = listen_local(open_name, sizeof(open_name));
    int cfd = listen_local(closed_name, sizeof(closed_name));
    const char *addrs[] = {open_name, closed_name};
    struct lbp_pool_params p;
    struct cm_conf_check c;
    struct lbp_pool *pool;

    (void)state;
    close(cfd); /* nothing listens there any more: connection refused */
    lbp_pool_params_default(&p);
    check_conf(&c, CM_CHECK_TCP);
    c.rise = 1;
    c.fall = 1;
    pool = lbp_pool_new(base, "tcp", &p, &c);
    assert_non_null(pool);
    assert_int_equal(lbp_pool_set_backends(pool, addrs, 2, NULL, 0), CM_OK);
    wait_check(base, pool, open_name, LBP_CHECK_UP);
    wait_check(base, pool, closed_name, LBP_CHECK_DOWN);
    lbp_pool_free(pool);
    close(lfd);
    event_base_free(base);
}

static void test_checks_off(void **state)
{
    struct event_base *base = event_base_new();
    const char *addrs[] = {"127.0.0.1:1"};
    struct lbp_pool_params p;
    struct cm_conf_check c;
    struct lbp_pool *pool;
    struct lbp_backend_stats s;
    json_t *doc;

    (void)state;
    lbp_pool_params_default(&p);
    p.active_checks = false;
    check_conf(&c, CM_CHECK_TCP);
    pool = lbp_pool_new(base, "off", &p, &c);
    assert_int_equal(lbp_pool_set_backends(pool, addrs, 1, NULL, 0), CM_OK);
    event_base_loop(base, EVLOOP_NONBLOCK);
    stats_of(pool, addrs[0], &s);
    assert_int_equal(s.checks, 0);
    assert_true(s.check_up);
    doc = lbp_pool_json(pool);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(doc, "backends"), 0), "check")),
                        "off");
    json_decref(doc);
    lbp_pool_free(pool);
    event_base_free(base);
}

/* ---- reporting ---------------------------------------------------------- */

static void test_json_and_metrics(void **state)
{
    const char *addrs[] = {"127.0.0.1:8001", "[::1]:8002"};
    struct lbp_pool *pool = mkpool(NULL, NULL, addrs, 2);
    struct lbp_backend *a = grab(pool, "127.0.0.1:8001");
    const struct lbp_pool *pools[2];
    struct lbp_pool *other;
    struct cm_buf out;
    json_t *doc, *arr, *o = NULL;
    const char *text;

    (void)state;
    lbp_backend_begin(a);
    lbp_backend_end(a, LBP_OUTCOME_OK, 4000);
    lbp_backend_begin(a);
    lbp_backend_end(a, LBP_OUTCOME_5XX, 4000);
    lbp_backend_begin(a);

    doc = lbp_pool_json(pool);
    assert_non_null(doc);
    arr = json_object_get(doc, "backends");
    assert_int_equal(json_array_size(arr), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *x = json_array_get(arr, i);

        if (strcmp(json_string_value(json_object_get(x, "address")), "127.0.0.1:8001") == 0)
            o = x;
        else
            assert_true(json_is_null(json_object_get(x, "latency_ewma_ms")));
    }
    assert_non_null(o);
    assert_int_equal(json_integer_value(json_object_get(o, "requests")), 2);
    assert_int_equal(json_integer_value(json_object_get(o, "failed_5xx")), 1);
    assert_int_equal(json_integer_value(json_object_get(o, "outstanding")), 1);
    assert_true(json_real_value(json_object_get(o, "success_rate")) == 0.5);
    assert_true(json_real_value(json_object_get(o, "latency_ewma_ms")) == 4.0);
    assert_true(json_is_false(json_object_get(o, "ejected")));
    assert_int_equal(json_integer_value(json_object_get(doc, "panic_picks")), 0);
    json_decref(doc);

    other = mkpool(NULL, NULL, addrs + 1, 1);
    pools[0] = pool;
    pools[1] = other;
    cm_buf_init(&out, 1 << 20);
    lbp_pools_metrics(pools, 2, &out);
    text = cm_buf_cstr(&out);
    assert_non_null(strstr(text, "fedgslb_proxy_backend_requests_total{pool=\"test pool\","
                                 "backend=\"127.0.0.1:8001\"} 2\n"));
    assert_non_null(strstr(text, "fedgslb_proxy_backend_outcomes_total{pool=\"test pool\","
                                 "backend=\"127.0.0.1:8001\",outcome=\"5xx\"} 1\n"));
    assert_non_null(strstr(text, "fedgslb_proxy_backend_outstanding{pool=\"test pool\","
                                 "backend=\"127.0.0.1:8001\"} 1\n"));
    assert_non_null(strstr(text, "backend=\"[::1]:8002\""));
    /* one HELP per family, even with two pools */
    {
        const char *first = strstr(text, "# TYPE fedgslb_proxy_backend_requests_total counter");

        assert_non_null(first);
        assert_null(strstr(first + 1, "# TYPE fedgslb_proxy_backend_requests_total counter"));
    }
    cm_buf_fini(&out);

    lbp_backend_end(a, LBP_OUTCOME_ABANDONED, 0);
    lbp_backend_unref(a);
    lbp_pool_free(other);
    lbp_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_backends_keeps_state),
        cmocka_unit_test(test_p2c_outstanding),
        cmocka_unit_test(test_p2c_latency),
        cmocka_unit_test(test_exclude),
        cmocka_unit_test(test_eject_after_consecutive),
        cmocka_unit_test(test_eject_guard_half),
        cmocka_unit_test(test_eject_doubles),
        cmocka_unit_test(test_success_resets_count),
        cmocka_unit_test(test_panic_when_all_ejected),
        cmocka_unit_test(test_refcount_removed_backend),
        cmocka_unit_test(test_idle_put_take),
        cmocka_unit_test(test_idle_timeout_and_removal),
        cmocka_unit_test(test_active_http_checks),
        cmocka_unit_test(test_active_https_checks),
        cmocka_unit_test(test_active_tcp_checks),
        cmocka_unit_test(test_checks_off),
        cmocka_unit_test(test_json_and_metrics),
    };

    /* As in proxy_main.c: a check closes as soon as it has the status line, so
     * the in-process servers may write to a closed peer. */
    signal(SIGPIPE, SIG_IGN);
    cm_log_init("lbproxy", CM_LOG_TEXT, CM_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
