/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_lbp_proxy_accept.c -- the proxy's two reasons to pause accept, on real
 * sockets: max_connections (all listeners) and the accept guard (descriptors
 * exhausted, one listener). Each may clear while the other holds; accept
 * resumes only when both are clear. The guard's timer is frozen and fired by
 * the test, so nothing depends on timing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/cm_accept.h"
#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_log.h"
#include "lbproxy/lbp_proxy.h"

#define LOOPS_MAX 50 /* loop rounds allowed for an expected event */
#define IDLE_RUNS 5  /* non-blocking rounds in which nothing may be accepted */

struct fixture {
    struct event_base *base;
    struct cm_conf *conf;
    struct lbp_proxy *px;
    struct lbp_listener *l;
    uint16_t port;
};

static uint16_t free_port(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char text[1024], err[CM_CONF_ERR_MAX];

    assert_non_null(f);
    f->port = free_port();
    snprintf(text, sizeof(text),
             "{\"federation\": \"f\", \"zone\": \"z.test\","
             " \"allow_addresses\": [\"127.0.0.0/8\"],"
             " \"regions\": {\"r\": {\"zones\": [\"ra\"]}},"
             " \"members\": {\"m\": {\"region\": \"r\", \"zone\": \"ra\","
             "   \"lb\": {\"mode\": \"proxy\", \"address\": \"127.0.0.1\"}}},"
             " \"services\": {\"default/web\": {\"port\": 80}},"
             " \"proxy\": {\"max_connections\": 1, \"listen\": [{\"address\": \"127.0.0.1:%u\","
             "   \"member\": \"m\", \"service\": \"default/web\","
             "   \"backends\": [\"127.0.0.1:1\"]}]}}",
             (unsigned)f->port);
    assert_int_equal(cm_conf_load_string("test.json", text, &f->conf, err, sizeof(err)), CM_OK);
    f->base = event_base_new();
    assert_non_null(f->base);
    assert_int_equal(lbp_proxy_new(f->base, f->conf, &f->px, err, sizeof(err)), CM_OK);
    assert_int_equal(f->px->listener_count, 1);
    f->l = f->px->listeners[0];
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    lbp_proxy_free(f->px);
    event_base_free(f->base);
    cm_conf_unref(f->conf);
    free(f);
    return 0;
}

/* A connection completed in the listener's backlog. */
static int client(const struct fixture *f)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(f->port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return fd;
}

static void loop_until_conns(struct fixture *f, size_t n)
{
    for (int i = 0; i < LOOPS_MAX && f->px->conn_count != n; i++)
        assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
    assert_int_equal(f->px->conn_count, n);
}

/* A connection waits in the backlog: rounds that would accept it if the listener were on. */
static void assert_not_accepting(struct fixture *f, size_t n)
{
    for (int i = 0; i < IDLE_RUNS; i++)
        assert_int_equal(event_base_loop(f->base, EVLOOP_NONBLOCK), 0);
    assert_int_equal(f->px->conn_count, n);
}

/* The guard pauses the listener as on EMFILE; its timer is held back by the test. */
static void guard_pause_frozen(struct fixture *f)
{
    assert_false(cm_accept_guard_error(&f->l->guard, EMFILE));
    assert_true(cm_accept_guard_paused(&f->l->guard));
    assert_int_equal(event_del(f->l->guard.timer), 0);
}

static void guard_fire(struct fixture *f)
{
    event_active(f->l->guard.timer, EV_TIMEOUT, 0);
    assert_int_equal(event_base_loop(f->base, EVLOOP_NONBLOCK), 0);
    assert_false(cm_accept_guard_paused(&f->l->guard));
}

/* max_connections clears first: the guard still holds the listener. */
static void test_guard_holds_after_max_connections_clears(void **state)
{
    struct fixture *f = *state;
    int c1 = client(f), c2;

    loop_until_conns(f, 1);
    assert_true(f->px->accept_paused);
    guard_pause_frozen(f);
    close(c1);
    loop_until_conns(f, 0);
    assert_false(f->px->accept_paused);
    c2 = client(f);
    assert_not_accepting(f, 0);
    guard_fire(f);
    loop_until_conns(f, 1);
    close(c2);
    loop_until_conns(f, 0);
}

/* The guard clears first: max_connections still holds the listener. */
static void test_max_connections_holds_after_guard_clears(void **state)
{
    struct fixture *f = *state;
    int c1 = client(f), c2;

    loop_until_conns(f, 1);
    guard_pause_frozen(f);
    c2 = client(f);
    guard_fire(f);
    assert_true(f->px->accept_paused);
    assert_not_accepting(f, 1);
    close(c1);
    loop_until_conns(f, 0); /* c1 gone ... */
    loop_until_conns(f, 1); /* ... and c2 accepted: both reasons clear */
    close(c2);
    loop_until_conns(f, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_guard_holds_after_max_connections_clears, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_max_connections_holds_after_guard_clears, setup,
                                        teardown),
    };

    signal(SIGPIPE, SIG_IGN);
    cm_log_init("test", CM_LOG_TEXT, CM_LOG_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
