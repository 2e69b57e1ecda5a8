/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cm_accept.c -- the accept guard on real sockets: with RLIMIT_NOFILE
 * lowered in this process and every descriptor taken, a pending connection
 * makes accept() fail with EMFILE; the guard must pause the listener (no
 * second callback until its timer), and accept the connection once
 * descriptors are free again. Transient errors must not pause. No timing is
 * asserted: the loop is run event by event, and the loop-less form (dnsd's
 * epoll workers) is given the time its owner would pass.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "common/cm_accept.h"
#include "common/cm_err.h"
#include "common/cm_net.h"
#include "common/cm_time.h"

#define FILL_MAX  256 /* descriptors the test may take to exhaust the table */
#define LOOPS_MAX 20  /* loop rounds allowed for an expected event */

struct fixture {
    struct event_base *base;
    int lfd;
    struct event *ev; /* on lfd, with the guard's event variant */
    struct evconnlistener *evl;
    struct cm_accept_guard guard;
    int client;
    unsigned wakeups;  /* accept callbacks run */
    unsigned accepted; /* connections accepted (and closed) */
    int epfd;          /* loop-less form: the owner's epoll */
    unsigned pauses;   /* loop-less form: pause / resume callbacks run */
    unsigned resumes;
    int fill[FILL_MAX];
    size_t fill_count;
    struct rlimit saved;
};

/* The accept loop as dnsd runs it. */
static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
    struct fixture *f = arg;

    (void)what;
    f->wakeups++;
    for (int i = 0; i < 16; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd == -1) {
            int e = errno;

            if (cm_accept_guard_error(&f->guard, e))
                continue;
            return;
        }
        cm_accept_guard_ok(&f->guard);
        f->accepted++;
        close(fd);
    }
}

static int listen_loopback(uint16_t *port)
{
    struct cm_addr a;
    struct sockaddr_in sin;
    socklen_t sl = sizeof(sin);
    int fd;

    memset(&a, 0, sizeof(a));
    sin.sin_family = AF_INET;
    sin.sin_port = 0;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    memcpy(&a.ss, &sin, sizeof(sin));
    a.len = sizeof(sin);
    fd = cm_net_listen(&a, SOCK_STREAM, false, 16);
    assert_true(fd >= 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

/* A completed connection waiting in the listener's backlog. */
static int connect_loopback(uint16_t port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    assert_true(fd >= 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return fd;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    uint16_t port;

    assert_non_null(f);
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &f->saved), 0);
    f->base = event_base_new();
    assert_non_null(f->base);
    f->lfd = listen_loopback(&port);
    f->client = connect_loopback(port);
    f->epfd = -1;
    *state = f;
    return 0;
}

static void fds_release(struct fixture *f)
{
    for (size_t i = 0; i < f->fill_count; i++)
        close(f->fill[i]);
    f->fill_count = 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    fds_release(f);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &f->saved), 0);
    cm_accept_guard_fini(&f->guard);
    if (f->evl != NULL)
        evconnlistener_free(f->evl); /* closes lfd */
    else
        close(f->lfd);
    if (f->ev != NULL)
        event_free(f->ev);
    close(f->client);
    if (f->epfd >= 0)
        close(f->epfd);
    event_base_free(f->base);
    free(f);
    return 0;
}

/* Lowers the soft limit to a few above what is open, then takes every descriptor left. */
static void fds_exhaust(struct fixture *f)
{
    int probe = open("/dev/null", O_RDONLY | O_CLOEXEC);
    struct rlimit rl = f->saved;

    assert_true(probe >= 0);
    close(probe);
    /* Descriptors are allocated lowest first: probe is about how many are open. */
    rl.rlim_cur = (rlim_t)probe + 8;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    for (;;) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

        if (fd == -1) {
            assert_int_equal(errno, EMFILE);
            break;
        }
        assert_true(f->fill_count < FILL_MAX);
        f->fill[f->fill_count++] = fd;
    }
}

static void with_event(struct fixture *f)
{
    f->ev = event_new(f->base, f->lfd, EV_READ | EV_PERSIST, accept_cb, f);
    assert_non_null(f->ev);
    assert_int_equal(event_add(f->ev, NULL), 0);
    assert_int_equal(cm_accept_guard_init_event(&f->guard, f->base, "test", f->ev), CM_OK);
}

static bool listening(const struct fixture *f)
{
    return event_pending(f->ev, EV_READ, NULL) != 0;
}

/* Runs the loop one round at a time until @f has accepted @n connections. */
static void loop_until_accepted(struct fixture *f, unsigned n)
{
    for (int i = 0; i < LOOPS_MAX && f->accepted < n; i++)
        assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
    assert_int_equal(f->accepted, n);
}

static void test_emfile_pauses_then_resumes(void **state)
{
    struct fixture *f = *state;

    with_event(f);
    fds_exhaust(f);
    /* The connection is pending: one wakeup, EMFILE, and the listener is paused. */
    assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
    assert_int_equal(f->wakeups, 1);
    assert_int_equal(f->accepted, 0);
    assert_true(cm_accept_guard_paused(&f->guard));
    assert_int_equal(cm_accept_guard_exhausted(&f->guard), 1);
    assert_false(listening(f));
    assert_true(evtimer_pending(f->guard.timer, NULL));
    assert_int_equal(f->guard.backoff_ms, 2 * CM_ACCEPT_BACKOFF_MIN_MS);

    /* Still exhausted: the timer resumes, the next wakeup fails and pauses longer. */
    assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0); /* the timer */
    assert_false(cm_accept_guard_paused(&f->guard));
    assert_true(listening(f));
    assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0); /* the listener */
    assert_int_equal(f->wakeups, 2);
    assert_true(cm_accept_guard_paused(&f->guard));
    assert_int_equal(cm_accept_guard_exhausted(&f->guard), 2);
    assert_int_equal(f->guard.backoff_ms, 4 * CM_ACCEPT_BACKOFF_MIN_MS);

    /* Descriptors back: the connection left in the backlog is accepted. */
    fds_release(f);
    loop_until_accepted(f, 1);
    assert_false(cm_accept_guard_paused(&f->guard));
    assert_true(listening(f));
    assert_int_equal(cm_accept_guard_exhausted(&f->guard), 2);
    /* The accept made the next pause a short one again. */
    assert_int_equal(f->guard.backoff_ms, CM_ACCEPT_BACKOFF_MIN_MS);
}

static void test_backoff_is_capped(void **state)
{
    struct fixture *f = *state;

    with_event(f);
    for (int i = 0; i < 10; i++)
        assert_false(cm_accept_guard_error(&f->guard, EMFILE));
    assert_int_equal(f->guard.backoff_ms, CM_ACCEPT_BACKOFF_MAX_MS);
    assert_int_equal(cm_accept_guard_exhausted(&f->guard), 10);
}

static void test_transient_errors_do_not_pause(void **state)
{
    static const int transient[] = {EINTR,     ECONNABORTED, EPROTO,      EPERM,      ENETDOWN,
                                    EHOSTDOWN, EHOSTUNREACH, ENETUNREACH, ENOPROTOOPT};
    struct fixture *f = *state;

    with_event(f);
    for (size_t i = 0; i < sizeof(transient) / sizeof(transient[0]); i++) {
        assert_true(cm_accept_guard_error(&f->guard, transient[i]));
        assert_false(cm_accept_guard_paused(&f->guard));
        assert_true(listening(f));
    }
    /* An empty backlog ends the wakeup but is no reason to pause. */
    assert_false(cm_accept_guard_error(&f->guard, EAGAIN));
    assert_false(cm_accept_guard_paused(&f->guard));
    assert_true(listening(f));
    assert_int_equal(cm_accept_guard_exhausted(&f->guard), 0);
    assert_false(evtimer_pending(f->guard.timer, NULL));
    loop_until_accepted(f, 1);
}

static void test_every_exhaustion_errno_pauses(void **state)
{
    static const int exhausted[] = {EMFILE, ENFILE, ENOBUFS, ENOMEM};
    struct fixture *f = *state;

    with_event(f);
    for (size_t i = 0; i < sizeof(exhausted) / sizeof(exhausted[0]); i++) {
        assert_false(cm_accept_guard_error(&f->guard, exhausted[i]));
        assert_true(cm_accept_guard_paused(&f->guard));
        assert_false(listening(f));
        assert_int_equal(cm_accept_guard_exhausted(&f->guard), i + 1);
    }
    /* An unexpected error pauses too (never spin) but is not counted as exhaustion. */
    assert_false(cm_accept_guard_error(&f->guard, EBADF));
    assert_true(cm_accept_guard_paused(&f->guard));
    assert_int_equal(cm_accept_guard_exhausted(&f->guard), 4);
    /* fini cancels the pending resume. */
    cm_accept_guard_fini(&f->guard);
    assert_false(listening(f));
}

/* One log line per interval, carrying the count of failures it stands for. */
static void test_logs_once_per_interval(void **state)
{
    struct fixture *f = *state;
    char path[] = "/tmp/test_cm_accept.XXXXXX";
    char text[4096];
    int tmp = mkstemp(path), saved_err = dup(STDERR_FILENO);
    ssize_t n;
    unsigned lines = 0;

    assert_true(tmp >= 0 && saved_err >= 0);
    unlink(path);
    with_event(f);
    assert_true(dup2(tmp, STDERR_FILENO) == STDERR_FILENO);
    for (int i = 0; i < 50; i++)
        cm_accept_guard_error(&f->guard, EMFILE);
    assert_true(dup2(saved_err, STDERR_FILENO) == STDERR_FILENO);
    close(saved_err);
    n = pread(tmp, text, sizeof(text) - 1, 0);
    close(tmp);
    assert_true(n > 0);
    text[n] = '\0';
    for (const char *p = text; (p = strstr(p, "accept paused")) != NULL; p++)
        lines++;
    assert_int_equal(lines, 1);
    assert_non_null(strstr(text, "listener=\"test\""));
    assert_non_null(strstr(text, "failures=1 "));
    assert_int_equal(f->guard.unlogged, 49); /* carried by the next line */
    assert_int_equal(cm_accept_guard_exhausted(&f->guard), 50);
}

/* ---- evconnlistener, as the proxy uses it ---- */

static void evl_accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                          int salen, void *arg)
{
    struct fixture *f = arg;

    (void)evl;
    (void)sa;
    (void)salen;
    f->accepted++;
    close(fd);
}

static void evl_error_cb(struct evconnlistener *evl, void *arg)
{
    struct fixture *f = arg;
    int e = EVUTIL_SOCKET_ERROR();

    (void)evl;
    f->wakeups++;
    cm_accept_guard_error(&f->guard, e);
}

static void evl_pause(void *arg)
{
    struct fixture *f = arg;

    assert_int_equal(evconnlistener_disable(f->evl), 0);
}

static void evl_resume(void *arg)
{
    struct fixture *f = arg;

    assert_int_equal(evconnlistener_enable(f->evl), 0);
}

static void test_evconnlistener_pauses_then_resumes(void **state)
{
    struct fixture *f = *state;

    f->evl = evconnlistener_new(f->base, evl_accept_cb, f, LEV_OPT_CLOSE_ON_FREE, -1, f->lfd);
    assert_non_null(f->evl);
    evconnlistener_set_error_cb(f->evl, evl_error_cb);
    assert_int_equal(cm_accept_guard_init(&f->guard, f->base, "evl", evl_pause, evl_resume, f),
                     CM_OK);
    fds_exhaust(f);
    assert_int_equal(event_base_loop(f->base, EVLOOP_ONCE), 0);
    assert_int_equal(f->wakeups, 1);
    assert_true(cm_accept_guard_paused(&f->guard));
    assert_int_equal(cm_accept_guard_exhausted(&f->guard), 1);
    fds_release(f);
    loop_until_accepted(f, 1);
    assert_int_equal(f->wakeups, 1);
    assert_false(cm_accept_guard_paused(&f->guard));
}

/* ---- without an event_base: the owner's epoll loop, as dnsd's workers ---- */

static void ep_pause(void *arg)
{
    struct fixture *f = arg;

    f->pauses++;
    assert_int_equal(epoll_ctl(f->epfd, EPOLL_CTL_DEL, f->lfd, NULL), 0);
}

static void ep_resume(void *arg)
{
    struct fixture *f = arg;
    struct epoll_event ev = {.events = EPOLLIN};

    f->resumes++;
    assert_int_equal(epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->lfd, &ev), 0);
}

static void with_epoll(struct fixture *f)
{
    struct epoll_event ev = {.events = EPOLLIN};

    f->epfd = epoll_create1(EPOLL_CLOEXEC);
    assert_true(f->epfd >= 0);
    assert_int_equal(epoll_ctl(f->epfd, EPOLL_CTL_ADD, f->lfd, &ev), 0);
    assert_int_equal(cm_accept_guard_init(&f->guard, NULL, "ep", ep_pause, ep_resume, f), CM_OK);
    assert_null(f->guard.timer);
}

/* One round of the owner's loop: the accept loop when epoll reports the listener. */
static bool ep_round(struct fixture *f)
{
    struct epoll_event ev;

    if (epoll_wait(f->epfd, &ev, 1, 0) != 1)
        return false;
    accept_cb(f->lfd, EV_READ, f);
    return true;
}

static void test_loopless_pauses_then_resumes_when_polled(void **state)
{
    struct fixture *f = *state;
    uint64_t at, at2;

    with_epoll(f);
    assert_int_equal(cm_accept_guard_resume_at(&f->guard), 0);
    assert_false(cm_accept_guard_poll(&f->guard, UINT64_MAX)); /* nothing to resume */
    fds_exhaust(f);
    assert_true(ep_round(f));
    assert_int_equal(f->wakeups, 1);
    assert_true(cm_accept_guard_paused(&f->guard));
    assert_int_equal(f->pauses, 1);
    assert_int_equal(cm_accept_guard_exhausted(&f->guard), 1);
    at = cm_accept_guard_resume_at(&f->guard);
    assert_true(at >= CM_ACCEPT_BACKOFF_MIN_MS);
    /* Paused: epoll no longer reports the pending connection. */
    assert_false(ep_round(f));
    /* Not due yet: nothing happens. */
    assert_false(cm_accept_guard_poll(&f->guard, at - 1));
    assert_true(cm_accept_guard_paused(&f->guard));
    assert_int_equal(f->resumes, 0);
    /* Due: resumed once, nothing left to wait for. */
    assert_true(cm_accept_guard_poll(&f->guard, at));
    assert_false(cm_accept_guard_paused(&f->guard));
    assert_int_equal(f->resumes, 1);
    assert_int_equal(cm_accept_guard_resume_at(&f->guard), 0);
    assert_false(cm_accept_guard_poll(&f->guard, at + 1));
    assert_int_equal(f->resumes, 1);

    /* Still exhausted: the next failure pauses for twice as long (from its
     * own clock read, no earlier than the first's: at - 100 + 200). */
    assert_true(ep_round(f));
    assert_int_equal(f->pauses, 2);
    at2 = cm_accept_guard_resume_at(&f->guard);
    assert_true(at2 >= at + CM_ACCEPT_BACKOFF_MIN_MS);
    assert_int_equal(f->guard.backoff_ms, 4 * CM_ACCEPT_BACKOFF_MIN_MS);

    /* Descriptors back: resumed, the connection left in the backlog is accepted. */
    fds_release(f);
    assert_true(cm_accept_guard_poll(&f->guard, at2));
    assert_true(ep_round(f));
    assert_int_equal(f->accepted, 1);
    assert_int_equal(f->guard.backoff_ms, CM_ACCEPT_BACKOFF_MIN_MS);
    assert_int_equal(cm_accept_guard_exhausted(&f->guard), 2);
}

static void test_loopless_fini_cancels_the_resume(void **state)
{
    struct fixture *f = *state;

    uint64_t before, after, at;

    with_epoll(f);
    before = cm_mono_ms();
    assert_false(cm_accept_guard_error(&f->guard, ENFILE));
    after = cm_mono_ms();
    /* Due one back-off after the failure, by the clock the owner reads. */
    at = cm_accept_guard_resume_at(&f->guard);
    assert_true(at >= before + CM_ACCEPT_BACKOFF_MIN_MS && at <= after + CM_ACCEPT_BACKOFF_MIN_MS);
    cm_accept_guard_fini(&f->guard);
    assert_int_equal(cm_accept_guard_resume_at(&f->guard), 0);
    assert_false(cm_accept_guard_poll(&f->guard, UINT64_MAX));
    assert_int_equal(f->resumes, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_emfile_pauses_then_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backoff_is_capped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transient_errors_do_not_pause, setup, teardown),
        cmocka_unit_test_setup_teardown(test_every_exhaustion_errno_pauses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs_once_per_interval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_evconnlistener_pauses_then_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loopless_pauses_then_resumes_when_polled, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_loopless_fini_cancels_the_resume, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
