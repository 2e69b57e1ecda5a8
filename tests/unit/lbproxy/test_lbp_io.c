/* SPDX-License-Identifier: Apache-2.0 */
/* test_lbp_io.c -- the proxy's plain byte streams on real sockets (loopback
 * TCP and socketpairs) with a real event_base: scheduled and speculative
 * writes, back-pressure and the write low mark, the read limit with its
 * automatic resume, EOF, write errors reported from the loop, non-blocking
 * connect, reading on/off, write_now, half-close, and freeing the stream
 * inside each of its callbacks (run under ASan to prove the last). No timing
 * assertions: the loop runs until a condition holds or a generous deadline. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "common/cm_err.h"
#include "lbproxy/lbp_io.h"
#include "tests/unit/lbproxy/io_loop.h"

/* The test's end of a connection: read by the loop into @got when enabled. */
struct peer {
    int fd;
    struct event *ev;
    struct evbuffer *got; /* owned: everything read */
    bool eof;
    int err; /* errno of a read error, 0 if none */
};

struct tctx {
    struct event_base *base; /* owned */
    struct event *tick;      /* owned: keeps EVLOOP_ONCE returning */
    struct lbp_io *io;       /* owned; NULL once freed */
    struct peer peer;
    struct evbuffer *sink; /* owned: what readcb drained from the input */

    bool drain_in_read; /* readcb moves the input into @sink */
    bool free_in_read;  /* readcb frees the stream */
    bool free_in_write; /* writecb frees the stream */
    bool free_in_event; /* eventcb frees the stream */
    bool in_write_call; /* the test is inside lbp_io_write/lbp_io_move */
    size_t read_max;    /* 0: not checked in readcb */
    size_t write_low;   /* writecb checks the output against it */
    size_t expect_len;  /* byte count the *_has_all predicates wait for */

    int reads, writes, events;
    int events_inside_write; /* events delivered from inside lbp_io_write */
    short last_what;
    size_t max_input_seen;
    size_t max_output_at_writecb;
};

/* ---- helpers -------------------------------------------------------------------- */

typedef bool tctx_pred_fn(struct tctx *t);

/* Runs the loop until @pred holds or @ms pass; returns whether @pred holds. */
static bool run_until(struct tctx *t, tctx_pred_fn *pred, long ms)
{
    long end = io_loop_now_ms() + ms;

    while (pred == NULL || !pred(t)) {
        if (io_loop_now_ms() >= end)
            return pred != NULL && pred(t);
        event_base_loop(t->base, EVLOOP_ONCE);
    }
    return true;
}

/* Runs the loop for @ms (a bounded wait: nothing is asserted about time). */
static void run_for(struct tctx *t, long ms)
{
    run_until(t, NULL, ms);
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);

    assert_true(fl >= 0);
    assert_int_equal(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

static void unix_pair(int *io_fd, int *peer_fd)
{
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    set_nonblock(sv[0]);
    set_nonblock(sv[1]);
    *io_fd = sv[0];
    *peer_fd = sv[1];
}

static int listener_new(struct sockaddr_in *sin)
{
    socklen_t len = sizeof(*sin);
    int l = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(l >= 0);
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(l, (struct sockaddr *)sin, sizeof(*sin)), 0);
    assert_int_equal(listen(l, 16), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)sin, &len), 0);
    return l;
}

/*
 * A loopback TCP connection: @io_fd is the accepted end (as in the proxy),
 * @peer_fd the connecting one. @bufsz > 0 makes both socket buffers small.
 */
static void tcp_pair(int *io_fd, int *peer_fd, int bufsz)
{
    struct sockaddr_in sin;
    int l = listener_new(&sin), c = socket(AF_INET, SOCK_STREAM, 0), a;

    assert_true(c >= 0);
    if (bufsz > 0)
        assert_int_equal(setsockopt(c, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz)), 0);
    assert_int_equal(connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0);
    a = accept(l, NULL, NULL);
    assert_true(a >= 0);
    close(l);
    if (bufsz > 0)
        assert_int_equal(setsockopt(a, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz)), 0);
    set_nonblock(a);
    set_nonblock(c);
    *io_fd = a;
    *peer_fd = c;
}

/* A loopback port with nothing listening on it. */
static void closed_port(struct sockaddr_in *sin)
{
    socklen_t len = sizeof(*sin);
    int s = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(s >= 0);
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s, (struct sockaddr *)sin, sizeof(*sin)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)sin, &len), 0);
    close(s);
}

static int pending_bytes(int fd)
{
    int n = -1;

    assert_int_equal(ioctl(fd, FIONREAD, &n), 0);
    return n;
}

/* ---- the peer ------------------------------------------------------------------- */

static void peer_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct peer *p = arg;
    char buf[65536];
    ssize_t r;

    (void)what;
    for (;;) {
        r = recv((int)fd, buf, sizeof(buf), 0);
        if (r > 0) {
            evbuffer_add(p->got, buf, (size_t)r);
            continue;
        }
        if (r == 0) {
            p->eof = true;
            event_del(p->ev);
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            p->err = errno;
            event_del(p->ev);
        }
        return;
    }
}

static void peer_attach(struct tctx *t, int fd)
{
    t->peer.fd = fd;
    t->peer.ev = event_new(t->base, fd, EV_READ | EV_PERSIST, peer_read_cb, &t->peer);
    assert_non_null(t->peer.ev);
}

static void peer_reading(struct tctx *t, bool on)
{
    if (on)
        event_add(t->peer.ev, NULL);
    else
        event_del(t->peer.ev);
}

static void peer_send(struct tctx *t, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t r = send(t->peer.fd, p, len, MSG_NOSIGNAL);

        if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd pfd = {.fd = t->peer.fd, .events = POLLOUT};

            poll(&pfd, 1, 100);
            continue;
        }
        assert_true(r > 0);
        p += r;
        len -= (size_t)r;
    }
}

/* ---- stream callbacks ---------------------------------------------------------------- */

static void on_read(struct lbp_io *io, void *arg)
{
    struct tctx *t = arg;
    size_t len = evbuffer_get_length(lbp_io_input(io));

    assert_ptr_equal(io, t->io);
    t->reads++;
    if (len > t->max_input_seen)
        t->max_input_seen = len;
    if (t->free_in_read) {
        lbp_io_free(io);
        t->io = NULL;
        return;
    }
    if (t->drain_in_read)
        evbuffer_add_buffer(t->sink, lbp_io_input(io));
}

static void on_write(struct lbp_io *io, void *arg)
{
    struct tctx *t = arg;
    size_t out = lbp_io_output_len(io);

    assert_ptr_equal(io, t->io);
    t->writes++;
    if (out > t->max_output_at_writecb)
        t->max_output_at_writecb = out;
    if (t->free_in_write) {
        lbp_io_free(io);
        t->io = NULL;
    }
}

static void on_event(struct lbp_io *io, short what, void *arg)
{
    struct tctx *t = arg;

    assert_ptr_equal(io, t->io);
    t->events++;
    t->last_what = what;
    if (t->in_write_call)
        t->events_inside_write++;
    if (t->free_in_event) {
        lbp_io_free(io);
        t->io = NULL;
    }
}

static void attach(struct tctx *t, struct lbp_io *io)
{
    assert_non_null(io);
    t->io = io;
    lbp_io_setcb(io, on_read, on_write, on_event, t);
}

/* ---- predicates ------------------------------------------------------------------- */

static bool have_event(struct tctx *t)
{
    return t->events > 0;
}

static bool have_write(struct tctx *t)
{
    return t->writes > 0;
}

static bool io_gone(struct tctx *t)
{
    return t->io == NULL;
}

static bool output_empty(struct tctx *t)
{
    return lbp_io_output_len(t->io) == 0;
}

static bool peer_eof(struct tctx *t)
{
    return t->peer.eof;
}

static bool input_nonempty(struct tctx *t)
{
    return evbuffer_get_length(lbp_io_input(t->io)) > 0;
}

static bool peer_has_all(struct tctx *t)
{
    return evbuffer_get_length(t->peer.got) >= t->expect_len;
}

static bool sink_has_all(struct tctx *t)
{
    return evbuffer_get_length(t->sink) >= t->expect_len;
}

static bool input_full(struct tctx *t)
{
    return evbuffer_get_length(lbp_io_input(t->io)) >= t->read_max;
}

/* The input at the limit, or holding the last bytes of t->expect_len. */
static bool input_full_or_rest(struct tctx *t)
{
    return input_full(t) ||
           evbuffer_get_length(t->sink) + evbuffer_get_length(lbp_io_input(t->io)) >= t->expect_len;
}

/* ---- fixture ---------------------------------------------------------------------- */

static int setup(void **state)
{
    struct tctx *t = calloc(1, sizeof(*t));
    struct timeval tv = {0, 10000};

    if (t == NULL)
        return -1;
    t->base = event_base_new();
    t->sink = evbuffer_new();
    t->peer.got = evbuffer_new();
    t->peer.fd = -1;
    if (t->base == NULL || t->sink == NULL || t->peer.got == NULL)
        return -1;
    t->tick = event_new(t->base, -1, EV_PERSIST, io_loop_tick_cb, NULL);
    if (t->tick == NULL || event_add(t->tick, &tv) != 0)
        return -1;
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    struct tctx *t = *state;

    lbp_io_free(t->io);
    if (t->peer.ev != NULL)
        event_free(t->peer.ev);
    if (t->peer.fd >= 0)
        close(t->peer.fd);
    evbuffer_free(t->peer.got);
    evbuffer_free(t->sink);
    event_free(t->tick);
    event_base_free(t->base);
    free(t);
    return 0;
}

/* ---- (a) write and move: scheduled, then sent by the loop ----------------------------- */

static void test_write_scheduled_then_sent(void **state)
{
    struct tctx *t = *state;
    struct evbuffer *src = evbuffer_new();
    char buf[64];
    int io_fd, peer_fd;

    unix_pair(&io_fd, &peer_fd);
    attach(t, lbp_io_new(t->base, io_fd));
    peer_attach(t, peer_fd);

    assert_int_equal(lbp_io_write(t->io, "hello ", 6), CM_OK);
    evbuffer_add(src, "world!tail", 10);
    assert_int_equal(lbp_io_move(t->io, src, 6), CM_OK);
    assert_int_equal(evbuffer_get_length(src), 4); /* moved off the front */
    assert_int_equal(lbp_io_output_len(t->io), 12);
    /* Nothing on the wire before the loop runs. */
    assert_int_equal(recv(peer_fd, buf, sizeof(buf), MSG_DONTWAIT), -1);
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    assert_int_equal(t->writes, 0);

    peer_reading(t, true);
    t->expect_len = 12;
    assert_true(run_until(t, peer_has_all, DEADLINE_MS));
    assert_true(run_until(t, have_write, DEADLINE_MS));
    assert_int_equal(evbuffer_get_length(t->peer.got), 12);
    assert_memory_equal(evbuffer_pullup(t->peer.got, -1), "hello world!", 12);
    assert_int_equal(lbp_io_output_len(t->io), 0);
    assert_int_equal(t->max_output_at_writecb, 0);
    assert_int_equal(t->events, 0);
    evbuffer_free(src);
}

/* ---- (b) back-pressure: a large write to a peer that does not read ------------------ */

static void test_large_write_backpressure(void **state)
{
    struct tctx *t = *state;
    const size_t total = 8u << 20, low = 65536;
    unsigned char *data = malloc(total);
    size_t stalled;
    int io_fd, peer_fd;

    assert_non_null(data);
    io_loop_fill_pattern(data, total);
    tcp_pair(&io_fd, &peer_fd, 32768);
    attach(t, lbp_io_new(t->base, io_fd));
    peer_attach(t, peer_fd);
    lbp_io_set_write_low(t->io, low);
    t->write_low = low;

    assert_int_equal(lbp_io_write(t->io, data, total), CM_OK);
    run_for(t, SETTLE_MS);
    stalled = lbp_io_output_len(t->io);
    assert_true(stalled > low);   /* the socket is full: most is still queued */
    assert_true(stalled < total); /* but the socket took what it could */
    assert_int_equal(t->writes, 0);
    run_for(t, SETTLE_MS);
    assert_true(lbp_io_output_len(t->io) > low); /* no reader: still stuck */
    assert_int_equal(t->writes, 0);

    peer_reading(t, true);
    t->expect_len = total;
    assert_true(run_until(t, peer_has_all, DEADLINE_MS));
    assert_true(run_until(t, have_write, DEADLINE_MS));
    assert_true(t->max_output_at_writecb <= low);
    assert_int_equal(lbp_io_output_len(t->io), 0);
    assert_int_equal(evbuffer_get_length(t->peer.got), total);
    assert_memory_equal(evbuffer_pullup(t->peer.got, -1), data, total);
    assert_int_equal(t->events, 0);
    free(data);
}

/* ---- (c) read_max: the input never holds more; reading resumes after a drain -------- */

static void test_read_max_suspend_resume(void **state)
{
    struct tctx *t = *state;
    const size_t total = 65536, max = 1000;
    unsigned char *data = malloc(total);
    int io_fd, peer_fd, round = 0;

    assert_non_null(data);
    io_loop_fill_pattern(data, total);
    unix_pair(&io_fd, &peer_fd);
    attach(t, lbp_io_new(t->base, io_fd));
    peer_attach(t, peer_fd);
    lbp_io_set_read_max(t->io, max);
    t->read_max = max;

    t->expect_len = total;
    peer_send(t, data, total);
    shutdown(peer_fd, SHUT_WR); /* EOF after the data: reported only once all is read */
    while (evbuffer_get_length(t->sink) < total) {
        assert_true(run_until(t, input_full_or_rest, DEADLINE_MS));
        if (round < 3)
            run_for(t, 50); /* a chance to read past the limit, which must not be taken */
        assert_true(evbuffer_get_length(lbp_io_input(t->io)) <= max);
        assert_true(t->max_input_seen <= max);
        if (round < 3) /* the rest still waits in the socket, EOF unreported */
            assert_true(pending_bytes(io_fd) > 0);
        assert_int_equal(t->events, 0);
        /* Drain all, or all but one byte: below the limit either way. */
        if (round % 2 == 0) {
            evbuffer_add_buffer(t->sink, lbp_io_input(t->io));
        } else {
            size_t len = evbuffer_get_length(lbp_io_input(t->io));

            evbuffer_remove_buffer(lbp_io_input(t->io), t->sink, len > 1 ? len - 1 : len);
        }
        round++;
        if (evbuffer_get_length(t->sink) < total)
            assert_true(run_until(t, input_nonempty, DEADLINE_MS)); /* resumed by itself */
    }
    assert_int_equal(evbuffer_get_length(t->sink), total);
    assert_memory_equal(evbuffer_pullup(t->sink, -1), data, total);
    assert_true(t->max_input_seen <= max);
    assert_true(run_until(t, have_event, DEADLINE_MS));
    assert_int_equal(t->events, 1);
    assert_int_equal(t->last_what, LBP_IO_EOF | LBP_IO_READING);
    free(data);
}

/* Raising the limit (0: none) resumes a suspended stream too. */
static void test_read_max_raised_resumes(void **state)
{
    struct tctx *t = *state;
    char data[3000];
    int io_fd, peer_fd;

    memset(data, 'r', sizeof(data));
    unix_pair(&io_fd, &peer_fd);
    attach(t, lbp_io_new(t->base, io_fd));
    peer_attach(t, peer_fd);
    lbp_io_set_read_max(t->io, 100);
    t->read_max = 100;
    peer_send(t, data, sizeof(data));
    assert_true(run_until(t, input_full, DEADLINE_MS));
    run_for(t, 50);
    assert_int_equal(evbuffer_get_length(lbp_io_input(t->io)), 100);
    lbp_io_set_read_max(t->io, 0);
    t->drain_in_read = true;
    evbuffer_add_buffer(t->sink, lbp_io_input(t->io)); /* does not call readcb */
    t->expect_len = sizeof(data);
    assert_true(run_until(t, sink_has_all, DEADLINE_MS));
    assert_int_equal(evbuffer_get_length(t->sink), sizeof(data));
}

/* ---- (d) EOF: one event, READING|EOF -------------------------------------------------- */

static void test_eof_once(void **state)
{
    struct tctx *t = *state;
    int io_fd, peer_fd;

    unix_pair(&io_fd, &peer_fd);
    attach(t, lbp_io_new(t->base, io_fd));
    t->drain_in_read = true;
    assert_int_equal(send(peer_fd, "abc", 3, 0), 3);
    close(peer_fd);
    assert_true(run_until(t, have_event, DEADLINE_MS));
    run_for(t, SETTLE_MS);
    assert_int_equal(t->events, 1);
    assert_int_equal(t->last_what, LBP_IO_EOF | LBP_IO_READING);
    assert_int_equal(evbuffer_get_length(t->sink), 3);
    assert_memory_equal(evbuffer_pullup(t->sink, -1), "abc", 3);
    /* Turning reading on after EOF does nothing. */
    lbp_io_read_enable(t->io, true);
    run_for(t, SETTLE_MS);
    assert_int_equal(t->events, 1);
}

/* ---- (e) write error: reported from the loop ---------------------------------------- */

/* Closes @fd with a reset and waits until the other end @other has seen it. */
static void reset_and_wait(int fd, int other)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    long end = io_loop_now_ms() + DEADLINE_MS;
    struct pollfd pfd = {.fd = other, .events = POLLIN};

    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
    close(fd);
    for (;;) {
        pfd.revents = 0;
        assert_true(poll(&pfd, 1, 10) >= 0);
        if (pfd.revents & (POLLERR | POLLHUP))
            return;
        assert_true(io_loop_now_ms() < end);
    }
}

static void test_write_error_from_loop(void **state)
{
    struct tctx *t = *state;
    char data[4096];
    int io_fd, peer_fd, rc;

    memset(data, 'w', sizeof(data));
    tcp_pair(&io_fd, &peer_fd, 0);
    attach(t, lbp_io_new(t->base, io_fd));
    lbp_io_read_enable(t->io, false); /* the write side is under test, not the read one */
    reset_and_wait(peer_fd, io_fd);

    t->in_write_call = true;
    rc = lbp_io_write(t->io, data, sizeof(data));
    t->in_write_call = false;
    assert_int_equal(rc, CM_OK);
    assert_int_equal(t->events, 0); /* nothing reported from inside the call */

    assert_true(run_until(t, have_event, DEADLINE_MS));
    assert_int_equal(t->events_inside_write, 0);
    assert_int_equal(t->last_what, LBP_IO_ERROR | LBP_IO_WRITING);
    assert_int_equal(lbp_io_output_len(t->io), 0); /* discarded */
    assert_int_equal(t->writes, 0);
    /* Later writes are dropped quietly, also from inside the call. */
    t->in_write_call = true;
    rc = lbp_io_write(t->io, data, 10);
    t->in_write_call = false;
    assert_int_equal(rc, CM_OK);
    run_for(t, 50);
    assert_int_equal(t->events_inside_write, 0);
    assert_int_equal(lbp_io_output_len(t->io), 0);
}

/* The same through lbp_io_move: the source is consumed either way. */
static void test_move_error_from_loop(void **state)
{
    struct tctx *t = *state;
    struct evbuffer *src = evbuffer_new();
    int io_fd, peer_fd, rc;

    tcp_pair(&io_fd, &peer_fd, 0);
    attach(t, lbp_io_new(t->base, io_fd));
    lbp_io_read_enable(t->io, false);
    reset_and_wait(peer_fd, io_fd);
    evbuffer_add(src, "0123456789", 10);
    t->in_write_call = true;
    rc = lbp_io_move(t->io, src, 10);
    t->in_write_call = false;
    assert_int_equal(rc, CM_OK);
    assert_int_equal(t->events, 0);
    assert_true(run_until(t, have_event, DEADLINE_MS));
    assert_int_equal(t->last_what, LBP_IO_ERROR | LBP_IO_WRITING);
    assert_int_equal(lbp_io_output_len(t->io), 0);
    evbuffer_add(src, "abc", 3);
    assert_int_equal(lbp_io_move(t->io, src, 3), CM_OK);
    assert_int_equal(evbuffer_get_length(src), 0);
    evbuffer_free(src);
}

/* ---- (f) connect ------------------------------------------------------------------- */

static void test_connect_refused(void **state)
{
    struct tctx *t = *state;
    struct sockaddr_in sin;
    struct lbp_io *io = (struct lbp_io *)(uintptr_t)1; /* the call resets it */
    int rc;

    closed_port(&sin);
    rc = lbp_io_connect(t->base, (struct sockaddr *)&sin, sizeof(sin), &io);
    if (rc < 0) {
        assert_null(io);
        return;
    }
    assert_int_equal(rc, CM_OK);
    attach(t, io);
    assert_true(run_until(t, have_event, DEADLINE_MS));
    assert_true(t->last_what & LBP_IO_ERROR);
    assert_false(t->last_what & LBP_IO_CONNECTED);
    run_for(t, 50);
    assert_int_equal(t->events, 1);
    assert_int_equal(t->reads, 0);
}

static void test_connect_ok_then_exchange(void **state)
{
    struct tctx *t = *state;
    struct sockaddr_in sin;
    struct lbp_io *io = NULL;
    int l = listener_new(&sin), a;

    assert_int_equal(lbp_io_connect(t->base, (struct sockaddr *)&sin, sizeof(sin), &io), CM_OK);
    attach(t, io);
    /* Bytes queued during the connect go out once it is done. */
    assert_int_equal(lbp_io_write(t->io, "ping", 4), CM_OK);
    assert_true(run_until(t, have_event, DEADLINE_MS));
    assert_int_equal(t->last_what, LBP_IO_CONNECTED);
    assert_int_equal(t->events, 1);

    a = accept(l, NULL, NULL);
    close(l);
    assert_true(a >= 0);
    set_nonblock(a);
    peer_attach(t, a);
    peer_reading(t, true);
    t->expect_len = 4;
    assert_true(run_until(t, peer_has_all, DEADLINE_MS));
    assert_memory_equal(evbuffer_pullup(t->peer.got, -1), "ping", 4);
    /* Reading is on after the connect. */
    t->drain_in_read = true;
    peer_send(t, "pong", 4);
    assert_true(run_until(t, sink_has_all, DEADLINE_MS));
    assert_memory_equal(evbuffer_pullup(t->sink, -1), "pong", 4);
    assert_int_equal(t->events, 1);
}

/* ---- (g) freeing the stream inside each callback ---------------------------------------- */

static void test_free_in_readcb(void **state)
{
    struct tctx *t = *state;
    char c;
    int io_fd, peer_fd;

    unix_pair(&io_fd, &peer_fd);
    attach(t, lbp_io_new(t->base, io_fd));
    t->free_in_read = true;
    assert_int_equal(send(peer_fd, "x", 1, 0), 1);
    assert_true(run_until(t, io_gone, DEADLINE_MS));
    peer_attach(t, peer_fd);
    (void)send(peer_fd, "more", 4, MSG_NOSIGNAL);
    run_for(t, 50);
    assert_int_equal(t->reads, 1);
    assert_int_equal(recv(peer_fd, &c, 1, 0), 0); /* the socket was closed */
}

static void test_free_in_writecb(void **state)
{
    struct tctx *t = *state;
    int io_fd, peer_fd;

    unix_pair(&io_fd, &peer_fd);
    attach(t, lbp_io_new(t->base, io_fd));
    peer_attach(t, peer_fd);
    t->free_in_write = true;
    assert_int_equal(lbp_io_write(t->io, "bye", 3), CM_OK);
    assert_true(run_until(t, io_gone, DEADLINE_MS));
    peer_reading(t, true);
    assert_true(run_until(t, peer_eof, DEADLINE_MS));
    assert_int_equal(t->writes, 1);
    assert_int_equal(evbuffer_get_length(t->peer.got), 3);
}

static void test_free_in_eventcb_eof(void **state)
{
    struct tctx *t = *state;
    int io_fd, peer_fd;

    unix_pair(&io_fd, &peer_fd);
    attach(t, lbp_io_new(t->base, io_fd));
    t->free_in_event = true;
    close(peer_fd);
    assert_true(run_until(t, io_gone, DEADLINE_MS));
    run_for(t, 50);
    assert_int_equal(t->events, 1);
    assert_int_equal(t->last_what, LBP_IO_EOF | LBP_IO_READING);
}

static void test_free_in_eventcb_write_error(void **state)
{
    struct tctx *t = *state;
    int io_fd, peer_fd;

    tcp_pair(&io_fd, &peer_fd, 0);
    attach(t, lbp_io_new(t->base, io_fd));
    lbp_io_read_enable(t->io, false);
    reset_and_wait(peer_fd, io_fd);
    t->free_in_event = true;
    assert_int_equal(lbp_io_write(t->io, "data", 4), CM_OK);
    assert_true(run_until(t, io_gone, DEADLINE_MS));
    run_for(t, 50);
    assert_int_equal(t->events, 1);
    assert_int_equal(t->last_what, LBP_IO_ERROR | LBP_IO_WRITING);
}

static void test_free_in_eventcb_connect(void **state)
{
    struct tctx *t = *state;
    struct sockaddr_in sin;
    struct lbp_io *io = NULL;
    int l = listener_new(&sin), rc;

    /* Connected: freed inside the CONNECTED event, with a write queued. */
    assert_int_equal(lbp_io_connect(t->base, (struct sockaddr *)&sin, sizeof(sin), &io), CM_OK);
    attach(t, io);
    t->free_in_event = true;
    assert_int_equal(lbp_io_write(t->io, "queued", 6), CM_OK);
    assert_true(run_until(t, io_gone, DEADLINE_MS));
    run_for(t, 50);
    assert_int_equal(t->events, 1);
    assert_int_equal(t->last_what, LBP_IO_CONNECTED);
    close(l);

    /* Refused: freed inside the error event. */
    t->events = 0;
    closed_port(&sin);
    io = NULL;
    rc = lbp_io_connect(t->base, (struct sockaddr *)&sin, sizeof(sin), &io);
    if (rc < 0)
        return;
    attach(t, io);
    assert_true(run_until(t, io_gone, DEADLINE_MS));
    run_for(t, 50);
    assert_int_equal(t->events, 1);
    assert_true(t->last_what & LBP_IO_ERROR);
}

/* Freed with a write scheduled, with EPOLLOUT registered, and while suspended. */
static void test_free_with_work_pending(void **state)
{
    struct tctx *t = *state;
    const size_t big = 4u << 20;
    unsigned char *data = calloc(1, big);
    char fill[2000];
    int io_fd, peer_fd;

    assert_non_null(data);
    /* A write scheduled with event_active, not yet run. */
    unix_pair(&io_fd, &peer_fd);
    attach(t, lbp_io_new(t->base, io_fd));
    assert_int_equal(lbp_io_write(t->io, "x", 1), CM_OK);
    lbp_io_free(t->io);
    t->io = NULL;
    run_for(t, 50);
    close(peer_fd);

    /* The socket full: the write event registered. */
    tcp_pair(&io_fd, &peer_fd, 32768);
    attach(t, lbp_io_new(t->base, io_fd));
    assert_int_equal(lbp_io_write(t->io, data, big), CM_OK);
    run_for(t, 50);
    assert_true(lbp_io_output_len(t->io) > 0);
    lbp_io_free(t->io);
    t->io = NULL;
    run_for(t, 50);
    close(peer_fd);

    /* Suspended at read_max: the drain watcher is on the input. */
    unix_pair(&io_fd, &peer_fd);
    attach(t, lbp_io_new(t->base, io_fd));
    lbp_io_set_read_max(t->io, 10);
    t->read_max = 10;
    memset(fill, 'f', sizeof(fill));
    assert_int_equal(send(peer_fd, fill, sizeof(fill), 0), (ssize_t)sizeof(fill));
    assert_true(run_until(t, input_full, DEADLINE_MS));
    run_for(t, 50);
    lbp_io_free(t->io);
    t->io = NULL;
    run_for(t, 50);
    close(peer_fd);
    assert_int_equal(t->events, 0);
    assert_int_equal(t->writes, 0);
    free(data);
}

/* ---- (h) reading off and on ----------------------------------------------------------- */

static void test_read_enable(void **state)
{
    struct tctx *t = *state;
    char data[100];
    int io_fd, peer_fd;

    memset(data, 'h', sizeof(data));
    unix_pair(&io_fd, &peer_fd);
    attach(t, lbp_io_new(t->base, io_fd));
    peer_attach(t, peer_fd);
    t->drain_in_read = true;
    lbp_io_read_enable(t->io, false);
    peer_send(t, data, sizeof(data));
    run_for(t, SETTLE_MS);
    assert_int_equal(t->reads, 0);
    assert_int_equal(evbuffer_get_length(lbp_io_input(t->io)), 0);
    assert_int_equal(pending_bytes(io_fd), (int)sizeof(data)); /* still in the socket */

    lbp_io_read_enable(t->io, true);
    t->expect_len = sizeof(data);
    assert_true(run_until(t, sink_has_all, DEADLINE_MS));
    assert_int_equal(pending_bytes(io_fd), 0);
    assert_memory_equal(evbuffer_pullup(t->sink, -1), data, sizeof(data));

    /* Off again: a second batch stays in the socket. */
    lbp_io_read_enable(t->io, false);
    peer_send(t, "again", 5);
    run_for(t, SETTLE_MS);
    assert_int_equal(evbuffer_get_length(t->sink), sizeof(data));
    assert_int_equal(pending_bytes(io_fd), 5);
}

/* ---- (i) write_now ---------------------------------------------------------------------- */

static void test_write_now_synchronous(void **state)
{
    struct tctx *t = *state;
    char data[1000], buf[2000];
    int io_fd, peer_fd;

    memset(data, 'n', sizeof(data));
    unix_pair(&io_fd, &peer_fd);
    attach(t, lbp_io_new(t->base, io_fd));
    assert_int_equal(lbp_io_write(t->io, data, sizeof(data)), CM_OK);
    lbp_io_write_now(t->io);
    assert_int_equal(lbp_io_output_len(t->io), 0);
    /* On the wire without the loop having run. */
    assert_int_equal(recv(peer_fd, buf, sizeof(buf), MSG_DONTWAIT), (ssize_t)sizeof(data));
    assert_memory_equal(buf, data, sizeof(data));
    run_for(t, 50);
    assert_int_equal(recv(peer_fd, buf, sizeof(buf), MSG_DONTWAIT), -1); /* nothing twice */
    assert_int_equal(t->events, 0);
    close(peer_fd);
}

/* ---- (j) half-close ----------------------------------------------------------------------- */

static void test_shutdown_wr(void **state)
{
    struct tctx *t = *state;
    int io_fd, peer_fd;

    tcp_pair(&io_fd, &peer_fd, 0);
    attach(t, lbp_io_new(t->base, io_fd));
    peer_attach(t, peer_fd);
    peer_reading(t, true);
    assert_int_equal(lbp_io_write(t->io, "bye", 3), CM_OK);
    assert_true(run_until(t, output_empty, DEADLINE_MS));
    assert_int_equal(lbp_io_shutdown_wr(t->io), CM_OK);
    assert_true(run_until(t, peer_eof, DEADLINE_MS));
    assert_int_equal(evbuffer_get_length(t->peer.got), 3);
    assert_memory_equal(evbuffer_pullup(t->peer.got, -1), "bye", 3);
    /* The read side stays open. */
    t->drain_in_read = true;
    peer_send(t, "after", 5);
    t->expect_len = 5;
    assert_true(run_until(t, sink_has_all, DEADLINE_MS));
    assert_memory_equal(evbuffer_pullup(t->sink, -1), "after", 5);
    assert_int_equal(t->events, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_scheduled_then_sent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_write_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_max_suspend_resume, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_max_raised_resumes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eof_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_error_from_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_move_error_from_loop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_ok_then_exchange, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_in_readcb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_in_writecb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_in_eventcb_eof, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_in_eventcb_write_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_in_eventcb_connect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_with_work_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_enable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_now_synchronous, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_wr, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
