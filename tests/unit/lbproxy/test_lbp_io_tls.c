/* SPDX-License-Identifier: Apache-2.0 */
/* test_lbp_io_tls.c -- the proxy's TLS streams (lbp_io over OpenSSL) against
 * a real OpenSSL client whose records the test puts on the socket itself
 * (memory BIOs), over a socketpair, with a real event_base and the proxy's
 * own certificate set (lbp_tls). What the socket will not announce again is
 * the point: the request in the same write as the client's Finished, records
 * held by OpenSSL past read_max or while reading is off, data and
 * close_notify in one write; also large writes against a full socket, a
 * response head and body in one record, KeyUpdate, garbage and EOF in the
 * handshake, close_notify on shutdown_wr, writes queued before the
 * handshake ends, and freeing the stream inside its callbacks (ASan). No
 * timing assertions: the loop runs until a condition holds or a generous
 * deadline passes. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/cm_err.h"
#include "lbproxy/lbp_io.h"
#include "lbproxy/lbp_tls.h"
#include "tests/unit/lbproxy/io_loop.h"

/* The test's TLS client: records go through memory BIOs, so the test decides
 * what reaches the socket and in which write. */
struct client {
    SSL_CTX *ctx;
    SSL *ssl;
    BIO *rb, *wb; /* owned by ssl */
    int fd;
    bool eof;               /* the socket reported EOF */
    bool got_close_notify;  /* SSL_read saw the server's close_notify */
    int fatal;              /* SSL_get_error of a failed read other than WANT_* / ZERO_RETURN */
    struct evbuffer *plain; /* everything decrypted */
    struct evbuffer *raw;   /* every byte received, when recording */
    bool record_raw;
};

struct tctx {
    char dir[64];
    struct lbp_tls *tls;
    struct event_base *base;
    struct event *tick;
    struct lbp_io *io; /* the server stream; NULL once freed */
    struct client c;
    struct evbuffer *sink; /* what on_read drained */
    bool drain_in_read;
    bool pause_in_read; /* on_read turns reading off (once) */
    bool free_in_read, free_in_write, free_in_event, free_on_connected;
    size_t expect_len;
    int reads, writes, events, connected;
    short last_what;
    char order[64]; /* 'C' connected, 'R' read, 'E' end/error, in order */
    size_t order_len;
};

/* ---- loop helpers ------------------------------------------------------------------ */

static void client_pump(void *arg);

/* Runs the loop, the client pumping after each pass, until @pred holds or
 * @ms pass (io_loop.h). */
static bool run_until(struct tctx *t, io_loop_pred_fn *pred, long ms)
{
    return io_loop_run(t->base, pred, client_pump, t, ms);
}

static void note(struct tctx *t, char what)
{
    if (t->order_len + 1 < sizeof(t->order))
        t->order[t->order_len++] = what;
}

/* ---- the client --------------------------------------------------------------------- */

/* Everything the client's SSL wrote goes out in one write where the socket takes it. */
static void client_flush(struct tctx *t)
{
    char buf[65536];
    int n;

    while ((n = BIO_read(t->c.wb, buf, sizeof(buf))) > 0) {
        const char *p = buf;
        size_t len = (size_t)n;

        while (len > 0) {
            ssize_t r = send(t->c.fd, p, len, MSG_NOSIGNAL);

            if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
                struct pollfd pfd = {.fd = t->c.fd, .events = POLLOUT};

                event_base_loop(t->base, EVLOOP_NONBLOCK); /* the server drains */
                poll(&pfd, 1, 10);
                continue;
            }
            assert_true(r > 0);
            p += r;
            len -= (size_t)r;
        }
    }
}

/* Takes what the socket holds into the client's SSL. */
static void client_pull(struct tctx *t)
{
    char buf[65536];
    ssize_t r;

    while (!t->c.eof) {
        r = recv(t->c.fd, buf, sizeof(buf), 0);
        if (r > 0) {
            BIO_write(t->c.rb, buf, (int)r);
            if (t->c.record_raw)
                evbuffer_add(t->c.raw, buf, (size_t)r);
            continue;
        }
        if (r == 0 || (errno != EAGAIN && errno != EINTR))
            t->c.eof = true;
        return;
    }
}

/* Reads and decrypts what arrived (after the handshake). */
static void client_pump(void *arg)
{
    struct tctx *t = arg;
    char buf[65536];
    int n, e;

    if (t->c.ssl == NULL || !SSL_is_init_finished(t->c.ssl))
        return;
    client_pull(t);
    for (;;) {
        n = SSL_read(t->c.ssl, buf, sizeof(buf));
        if (n > 0) {
            evbuffer_add(t->c.plain, buf, (size_t)n);
            continue;
        }
        e = SSL_get_error(t->c.ssl, n);
        if (e == SSL_ERROR_ZERO_RETURN)
            t->c.got_close_notify = true;
        else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE && t->c.fatal == 0)
            t->c.fatal = e;
        ERR_clear_error();
        break;
    }
    client_flush(t); /* e.g. the answer to the server's KeyUpdate */
}

/* The client side of the handshake, the server running in the loop. With
 * @send_finished false the client's last flight (Finished) stays in its
 * BIO, to go out together with what the test writes next. */
static void client_handshake(struct tctx *t, bool send_finished)
{
    long end = io_loop_now_ms() + DEADLINE_MS;
    int n;

    for (;;) {
        n = SSL_do_handshake(t->c.ssl);
        if (n == 1)
            break;
        assert_int_equal(SSL_get_error(t->c.ssl, n), SSL_ERROR_WANT_READ);
        client_flush(t);
        assert_true(io_loop_now_ms() < end);
        event_base_loop(t->base, EVLOOP_ONCE);
        client_pull(t);
    }
    if (send_finished)
        client_flush(t);
}

static void client_write(struct tctx *t, const void *data, size_t len)
{
    assert_int_equal(SSL_write(t->c.ssl, data, (int)len), (int)len);
}

/* ---- the server stream ---------------------------------------------------------------- */

static void on_read(struct lbp_io *io, void *arg)
{
    struct tctx *t = arg;

    assert_ptr_equal(io, t->io);
    t->reads++;
    note(t, 'R');
    if (t->free_in_read) {
        lbp_io_free(io);
        t->io = NULL;
        return;
    }
    if (t->drain_in_read)
        evbuffer_add_buffer(t->sink, lbp_io_input(io));
    if (t->pause_in_read) {
        t->pause_in_read = false;
        lbp_io_read_enable(io, false);
    }
}

static void on_write(struct lbp_io *io, void *arg)
{
    struct tctx *t = arg;

    assert_ptr_equal(io, t->io);
    t->writes++;
    if (t->free_in_write) {
        lbp_io_free(io);
        t->io = NULL;
    }
}

static void on_event(struct lbp_io *io, short what, void *arg)
{
    struct tctx *t = arg;

    assert_ptr_equal(io, t->io);
    if (what & LBP_IO_CONNECTED) {
        t->connected++;
        note(t, 'C');
        if (t->free_on_connected) {
            lbp_io_free(io);
            t->io = NULL;
        }
        return;
    }
    t->events++;
    t->last_what = what;
    note(t, 'E');
    if (t->free_in_event) {
        lbp_io_free(io);
        t->io = NULL;
    }
}

/* A socketpair: the server stream on one end, the client on the other. */
static void start(struct tctx *t, int client_max_version)
{
    int sv[2];
    SSL *s;

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(fcntl(sv[i], F_SETFL, fcntl(sv[i], F_GETFL) | O_NONBLOCK), 0);
    s = lbp_tls_new_ssl(t->tls);
    assert_non_null(s);
    t->io = lbp_io_new_tls(t->base, sv[1], s);
    assert_non_null(t->io);
    lbp_io_setcb(t->io, on_read, on_write, on_event, t);

    t->c.fd = sv[0];
    t->c.ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(t->c.ctx);
    if (client_max_version != 0)
        SSL_CTX_set_max_proto_version(t->c.ctx, client_max_version);
    t->c.ssl = SSL_new(t->c.ctx);
    assert_non_null(t->c.ssl);
    t->c.rb = BIO_new(BIO_s_mem());
    t->c.wb = BIO_new(BIO_s_mem());
    assert_true(t->c.rb != NULL && t->c.wb != NULL);
    SSL_set_bio(t->c.ssl, t->c.rb, t->c.wb);
    SSL_set_connect_state(t->c.ssl);
}

/* ---- predicates ------------------------------------------------------------------------ */

static bool sink_has_all(void *arg)
{
    struct tctx *t = arg;

    return evbuffer_get_length(t->sink) >= t->expect_len;
}

static bool input_has_all(void *arg)
{
    struct tctx *t = arg;

    return t->io != NULL && evbuffer_get_length(lbp_io_input(t->io)) >= t->expect_len;
}

static bool input_nonempty(void *arg)
{
    struct tctx *t = arg;

    return t->io != NULL && evbuffer_get_length(lbp_io_input(t->io)) > 0;
}

static bool client_has_all(void *arg)
{
    struct tctx *t = arg;

    return evbuffer_get_length(t->c.plain) >= t->expect_len;
}

static bool have_event(void *arg)
{
    struct tctx *t = arg;

    return t->events > 0;
}

static bool have_write(void *arg)
{
    struct tctx *t = arg;

    return t->writes > 0;
}

static bool io_gone(void *arg)
{
    struct tctx *t = arg;

    return t->io == NULL;
}

static bool client_closed(void *arg)
{
    struct tctx *t = arg;

    return t->c.got_close_notify || t->c.eof;
}

static bool read_once(void *arg)
{
    struct tctx *t = arg;

    return t->reads > 0;
}

/* ---- fixture -------------------------------------------------------------------------- */

static int setup(void **state)
{
    struct tctx *t = calloc(1, sizeof(*t));
    struct timeval tv = {0, 10000};
    struct lbp_tls_cert cert;
    char cmd[512], crt[128], key[128], err[256];

    if (t == NULL)
        return -1;
    snprintf(t->dir, sizeof(t->dir), "/tmp/test_lbp_io_tls.XXXXXX");
    if (mkdtemp(t->dir) == NULL)
        return -1;
    snprintf(crt, sizeof(crt), "%s/s.crt", t->dir);
    snprintf(key, sizeof(key), "%s/s.key", t->dir);
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout '%s' -out '%s' -days 2 -subj /CN=s.example.test 2>/dev/null",
             key, crt);
    if (system(cmd) != 0)
        return -1;
    cert = (struct lbp_tls_cert){crt, key};
    if (lbp_tls_new(&cert, 1, &t->tls, err, sizeof(err)) != CM_OK)
        return -1;
    t->base = event_base_new();
    t->sink = evbuffer_new();
    t->c.plain = evbuffer_new();
    t->c.raw = evbuffer_new();
    t->c.fd = -1;
    if (t->base == NULL || t->sink == NULL || t->c.plain == NULL || t->c.raw == NULL)
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
    char cmd[128];

    lbp_io_free(t->io);
    SSL_free(t->c.ssl);
    SSL_CTX_free(t->c.ctx);
    if (t->c.fd >= 0)
        close(t->c.fd);
    evbuffer_free(t->c.plain);
    evbuffer_free(t->c.raw);
    evbuffer_free(t->sink);
    event_free(t->tick);
    event_base_free(t->base);
    lbp_tls_unref(t->tls);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
    if (system(cmd) != 0)
        return -1;
    free(t);
    ERR_clear_error();
    return 0;
}

/* ---- tests ------------------------------------------------------------------------------ */

/* The request in the same write as the client's Finished: OpenSSL takes both
 * in one recv during the handshake, and the socket will not say so again. */
static void test_request_with_finished(void **state)
{
    struct tctx *t = *state;
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    start(t, 0);
    client_handshake(t, false);
    client_write(t, req, sizeof(req) - 1);
    client_flush(t); /* Finished + the request record, one send */
    t->expect_len = sizeof(req) - 1;
    assert_true(run_until(t, input_has_all, DEADLINE_MS));
    assert_int_equal(t->connected, 1);
    assert_memory_equal(evbuffer_pullup(lbp_io_input(t->io), -1), req, sizeof(req) - 1);
    assert_int_equal(t->order[0], 'C'); /* the handshake is reported before the data */
    assert_false(lbp_io_tls_resumed(t->io));
    assert_true(lbp_io_is_tls(t->io));
}

/* Three records in one write against read_max 100: OpenSSL holds most of
 * them; draining the input resumes reading without any socket event. */
static void test_read_max_with_records_held(void **state)
{
    struct tctx *t = *state;
    unsigned char data[3000];

    io_loop_fill_pattern(data, sizeof(data));
    start(t, 0);
    lbp_io_set_read_max(t->io, 100);
    client_handshake(t, true);
    for (int i = 0; i < 3; i++)
        client_write(t, data + i * 1000, 1000);
    client_flush(t);
    while (evbuffer_get_length(t->sink) < sizeof(data)) {
        assert_true(run_until(t, input_nonempty, DEADLINE_MS));
        assert_true(evbuffer_get_length(lbp_io_input(t->io)) <= 100);
        evbuffer_add_buffer(t->sink, lbp_io_input(t->io)); /* the drain resumes reading */
    }
    assert_memory_equal(evbuffer_pullup(t->sink, -1), data, sizeof(data));
}

/* Reading turned off with records held by OpenSSL (all five came in one
 * recv; read_max let the first read take one and a half): turning it on
 * hands the rest over without a socket event. */
static void test_pause_with_records_held(void **state)
{
    struct tctx *t = *state;
    unsigned char data[500];

    io_loop_fill_pattern(data, sizeof(data));
    start(t, 0);
    lbp_io_set_read_max(t->io, 150);
    t->drain_in_read = true;
    t->pause_in_read = true;
    client_handshake(t, true);
    for (int i = 0; i < 5; i++)
        client_write(t, data + i * 100, 100);
    client_flush(t);
    assert_true(run_until(t, read_once, DEADLINE_MS));
    run_until(t, NULL, SETTLE_MS); /* reading is off: nothing more */
    assert_int_equal(t->reads, 1);
    assert_true(evbuffer_get_length(t->sink) < sizeof(data));
    lbp_io_read_enable(t->io, true);
    t->expect_len = sizeof(data);
    assert_true(run_until(t, sink_has_all, DEADLINE_MS));
    assert_memory_equal(evbuffer_pullup(t->sink, -1), data, sizeof(data));
}

/* Data and close_notify in one write: the data first, then the end, once. */
static void test_data_then_close_notify(void **state)
{
    struct tctx *t = *state;
    static const char req[] = "GET /last HTTP/1.1\r\nHost: x\r\n\r\n";

    start(t, 0);
    t->drain_in_read = true;
    client_handshake(t, true);
    client_write(t, req, sizeof(req) - 1);
    assert_true(SSL_shutdown(t->c.ssl) >= 0);
    client_flush(t);
    assert_true(run_until(t, have_event, DEADLINE_MS));
    assert_int_equal(t->last_what, LBP_IO_EOF | LBP_IO_READING);
    assert_int_equal(evbuffer_get_length(t->sink), sizeof(req) - 1);
    assert_string_equal(t->order, "CRE");
    run_until(t, NULL, SETTLE_MS);
    assert_int_equal(t->events, 1);
}

/* A TCP FIN without close_notify is an end too, not an error. */
static void test_fin_without_close_notify(void **state)
{
    struct tctx *t = *state;
    static const char req[] = "GET /fin HTTP/1.1\r\n\r\n";

    start(t, 0);
    t->drain_in_read = true;
    client_handshake(t, true);
    client_write(t, req, sizeof(req) - 1);
    client_flush(t);
    assert_int_equal(shutdown(t->c.fd, SHUT_WR), 0);
    assert_true(run_until(t, have_event, DEADLINE_MS));
    assert_int_equal(t->last_what, LBP_IO_EOF | LBP_IO_READING);
    assert_int_equal(evbuffer_get_length(t->sink), sizeof(req) - 1);
}

/* 1 MiB against a socket nobody reads: WANT_WRITE, EPOLLOUT, the same bytes
 * offered again; the write callback at the low mark; everything intact. */
static void test_large_write_full_socket(void **state)
{
    struct tctx *t = *state;
    size_t total = 1u << 20;
    unsigned char *data = malloc(total);
    int bufsz = 8192;

    assert_non_null(data);
    io_loop_fill_pattern(data, total);
    start(t, 0);
    assert_int_equal(setsockopt(lbp_io_fd(t->io), SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz)), 0);
    client_handshake(t, true);
    lbp_io_set_write_low(t->io, 4096);
    assert_int_equal(lbp_io_write(t->io, data, total), CM_OK);
    /* The client reads nothing yet: the stream stalls with most bytes queued. */
    for (int i = 0; i < 20; i++)
        event_base_loop(t->base, EVLOOP_NONBLOCK);
    assert_true(lbp_io_output_len(t->io) > total / 2);
    t->expect_len = total;
    assert_true(run_until(t, client_has_all, DEADLINE_MS));
    assert_memory_equal(evbuffer_pullup(t->c.plain, -1), data, total);
    assert_int_equal(lbp_io_output_len(t->io), 0);
    assert_true(t->writes >= 1);
    assert_int_equal(t->c.fatal, 0);
    free(data);
}

/* Counts the TLS records in @raw (5-byte headers). */
static int count_records(struct evbuffer *raw)
{
    size_t len = evbuffer_get_length(raw), off = 0;
    const unsigned char *p = evbuffer_pullup(raw, -1);
    int n = 0;

    while (off + 5 <= len) {
        off += 5 + ((size_t)p[off + 3] << 8 | p[off + 4]);
        n++;
    }
    assert_int_equal(off, len);
    return n;
}

/* A response head written and a body moved in after it go out as one record. */
static void test_head_and_body_one_record(void **state)
{
    struct tctx *t = *state;
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
    unsigned char body[1000];
    struct evbuffer *src = evbuffer_new();

    io_loop_fill_pattern(body, sizeof(body));
    assert_non_null(src);
    start(t, TLS1_2_VERSION); /* no tickets after the handshake to tell apart */
    client_handshake(t, true);
    run_until(t, NULL, SETTLE_MS);
    t->c.record_raw = true;
    evbuffer_add(src, body, sizeof(body));
    assert_int_equal(lbp_io_write(t->io, head, sizeof(head) - 1), CM_OK);
    assert_int_equal(lbp_io_move(t->io, src, sizeof(body)), CM_OK);
    t->expect_len = sizeof(head) - 1 + sizeof(body);
    assert_true(run_until(t, client_has_all, DEADLINE_MS));
    assert_int_equal(count_records(t->c.raw), 1);
    evbuffer_free(src);
}

/* TLS 1.3 KeyUpdate asking for the server's: OpenSSL answers before the
 * next record it writes; both directions keep working under the new keys. */
static void test_key_update(void **state)
{
    struct tctx *t = *state;
    static const char ping[] = "ping", pong[] = "pong";

    start(t, 0);
    t->drain_in_read = true;
    client_handshake(t, true);
    assert_int_equal(SSL_key_update(t->c.ssl, SSL_KEY_UPDATE_REQUESTED), 1);
    client_write(t, ping, 4); /* sends the KeyUpdate first */
    client_flush(t);
    t->expect_len = 4;
    assert_true(run_until(t, sink_has_all, DEADLINE_MS));
    assert_int_equal(lbp_io_write(t->io, pong, 4), CM_OK);
    assert_true(run_until(t, client_has_all, DEADLINE_MS));
    assert_memory_equal(evbuffer_pullup(t->c.plain, -1), pong, 4);
    assert_int_equal(t->c.fatal, 0);
    assert_int_equal(t->events, 0);
}

/* Plain HTTP to a TLS stream: an error, reported once, no data. */
static void test_handshake_garbage(void **state)
{
    struct tctx *t = *state;
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

    start(t, 0);
    assert_int_equal(send(t->c.fd, req, sizeof(req) - 1, 0), (ssize_t)(sizeof(req) - 1));
    assert_true(run_until(t, have_event, DEADLINE_MS));
    assert_int_equal(t->last_what, LBP_IO_ERROR | LBP_IO_READING);
    assert_int_equal(t->reads, 0);
    assert_int_equal(t->connected, 0);
    assert_int_equal(ERR_peek_error(), 0); /* nothing left on OpenSSL's queue */
    run_until(t, NULL, SETTLE_MS);
    assert_int_equal(t->events, 1);
}

/* The client goes away in the middle of its handshake. */
static void test_handshake_eof(void **state)
{
    struct tctx *t = *state;
    char buf[4096];
    int n;

    start(t, 0);
    assert_int_equal(SSL_do_handshake(t->c.ssl), -1);
    n = BIO_read(t->c.wb, buf, sizeof(buf)); /* the ClientHello */
    assert_true(n > 10);
    assert_int_equal(send(t->c.fd, buf, 10, 0), 10);
    assert_int_equal(shutdown(t->c.fd, SHUT_WR), 0);
    assert_true(run_until(t, have_event, DEADLINE_MS));
    assert_true(t->last_what & LBP_IO_READING);
    assert_true(t->last_what & (LBP_IO_EOF | LBP_IO_ERROR));
    assert_int_equal(t->connected, 0);
}

/* shutdown_wr sends close_notify after the data; later bytes are read raw. */
static void test_shutdown_wr_close_notify(void **state)
{
    struct tctx *t = *state;
    static const char bye[] = "HTTP/1.1 400 Bad Request\r\n\r\n";

    start(t, 0);
    client_handshake(t, true);
    assert_int_equal(lbp_io_write(t->io, bye, sizeof(bye) - 1), CM_OK);
    t->expect_len = sizeof(bye) - 1;
    assert_true(run_until(t, client_has_all, DEADLINE_MS));
    assert_int_equal(lbp_io_output_len(t->io), 0);
    assert_int_equal(lbp_io_shutdown_wr(t->io), CM_OK);
    assert_true(run_until(t, client_closed, DEADLINE_MS));
    assert_true(t->c.got_close_notify);
    assert_int_equal(t->c.fatal, 0);
    /* Lingering: whatever the client still sends is taken as it is. */
    t->drain_in_read = true;
    assert_int_equal(send(t->c.fd, "junk", 4, 0), 4);
    t->expect_len = 4;
    assert_true(run_until(t, sink_has_all, DEADLINE_MS));
    assert_memory_equal(evbuffer_pullup(t->sink, -1), "junk", 4);
}

/* Bytes written before the handshake ends wait for it. */
static void test_write_before_handshake(void **state)
{
    struct tctx *t = *state;

    start(t, 0);
    assert_int_equal(lbp_io_write(t->io, "early", 5), CM_OK);
    client_handshake(t, true);
    t->expect_len = 5;
    assert_true(run_until(t, client_has_all, DEADLINE_MS));
    assert_memory_equal(evbuffer_pullup(t->c.plain, -1), "early", 5);
}

/* Freed inside its callbacks, with a read kick or a write still queued. */
static void test_free_in_callbacks(void **state)
{
    struct tctx *t = *state;
    static const char req[] = "GET / HTTP/1.1\r\n\r\n";

    start(t, 0);
    t->free_on_connected = true;
    client_handshake(t, false);
    client_write(t, req, sizeof(req) - 1);
    client_flush(t); /* Finished + data: a read kick is queued when CONNECTED runs */
    assert_true(run_until(t, io_gone, DEADLINE_MS));
    run_until(t, NULL, SETTLE_MS);
}

static void test_free_in_read_with_more_held(void **state)
{
    struct tctx *t = *state;
    unsigned char data[40000];

    io_loop_fill_pattern(data, sizeof(data));
    start(t, 0);
    t->free_in_read = true;
    client_handshake(t, true);
    client_write(t, data, sizeof(data));
    client_flush(t);
    assert_true(run_until(t, io_gone, DEADLINE_MS));
    run_until(t, NULL, SETTLE_MS);
    assert_int_equal(t->reads, 1);
}

static void test_free_in_write_and_event(void **state)
{
    struct tctx *t = *state;

    start(t, 0);
    t->free_in_write = true;
    client_handshake(t, true);
    assert_int_equal(lbp_io_write(t->io, "x", 1), CM_OK);
    assert_true(run_until(t, have_write, DEADLINE_MS));
    assert_null(t->io);

    /* A second stream freed in its end event. */
    SSL_free(t->c.ssl);
    SSL_CTX_free(t->c.ctx);
    close(t->c.fd);
    t->c.ssl = NULL;
    t->c.ctx = NULL;
    t->c.eof = false;
    start(t, 0);
    t->free_in_event = true;
    client_handshake(t, true);
    close(t->c.fd);
    t->c.fd = -1;
    assert_true(run_until(t, io_gone, DEADLINE_MS));
}

/* Freed with a record half written (the client reads nothing). */
static void test_free_with_write_pending(void **state)
{
    struct tctx *t = *state;
    size_t total = 1u << 20;
    unsigned char *data = calloc(1, total);

    assert_non_null(data);
    start(t, 0);
    client_handshake(t, true);
    assert_int_equal(lbp_io_write(t->io, data, total), CM_OK);
    for (int i = 0; i < 20; i++)
        event_base_loop(t->base, EVLOOP_NONBLOCK);
    assert_true(lbp_io_output_len(t->io) > 0);
    lbp_io_free(t->io);
    t->io = NULL;
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_request_with_finished, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_max_with_records_held, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pause_with_records_held, setup, teardown),
        cmocka_unit_test_setup_teardown(test_data_then_close_notify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fin_without_close_notify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_write_full_socket, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_and_body_one_record, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_eof, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_wr_close_notify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_before_handshake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_in_callbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_in_read_with_more_held, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_in_write_and_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_with_write_pending, setup, teardown),
    };

    signal(SIGPIPE, SIG_IGN); /* OpenSSL's socket BIO writes with write(), as in the daemon */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
