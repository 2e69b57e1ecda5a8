/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lbp_io.c -- the proxy's byte streams: sockets with their own reads and
 * speculative writes, plain or through OpenSSL (see lbp_io.h).
 *
 * Stream flags:
 *
 *   READ_ON    the owner wants to read          } the read event is in the
 *   SUSPENDED  input at read_max                } loop iff READ_ON and not
 *   READ_DEAD  EOF or error seen                } SUSPENDED or READ_DEAD
 *                                               } (TLS: or while HANDSHAKE
 *                                               } or WWANTR)
 *   WRITE_SCHED  write handler queued with event_active (no syscall)
 *   WRITE_ADDED  write event registered (EPOLLOUT): socket full, connecting,
 *                or TLS RWANTW
 *   CONNECTING   connect under way; the write handler finishes it
 *
 * TLS only:
 *
 *   HANDSHAKE  handshake not finished; both handlers drive it
 *   RWANTW     a read (or the handshake) waits for the socket to take bytes
 *   WWANTR     a write waits for bytes from the peer (renegotiation-like
 *              cases; the read handler re-schedules the write)
 *   SHUT       close_notify sent: reads are raw (discarded by the owner)
 *   BROKEN     TLS or socket error: freed without close_notify
 *
 * A write that OpenSSL could not finish must be repeated with the same
 * bytes: they stay at the front of the output (drained only once written)
 * and tls_wlen remembers how many were offered.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/event_struct.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/cm_err.h"
#include "lbproxy/lbp_io.h"

#define IO_READ_CHUNK 16384u /* bytes read per readable event at most */
#define IO_WRITE_IOV  16     /* iovecs per sendmsg */
#define IO_TLS_RECORD 16384u /* plaintext per TLS record (the protocol's maximum) */
#define IO_TLS_GATHER 8      /* output chains looked at to fill one record */
/* TLS: a small first write into an empty output gets this much room, so the
 * bytes that follow it (a body after a response head) join it in one record
 * without a new allocation when the record is made. */
#define IO_TLS_COALESCE 4096u

enum {
    F_READ_ON = 1u << 0,
    F_READ_ADDED = 1u << 1,
    F_SUSPENDED = 1u << 2,
    F_READ_DEAD = 1u << 3,
    F_WRITE_SCHED = 1u << 4,
    F_WRITE_ADDED = 1u << 5,
    F_WRITE_DEAD = 1u << 6,
    F_CONNECTING = 1u << 7,
    F_TLS_HANDSHAKE = 1u << 8,
    F_TLS_RWANTW = 1u << 9,
    F_TLS_WWANTR = 1u << 10,
    F_TLS_SHUT = 1u << 11,
    F_TLS_BROKEN = 1u << 12,
};

struct lbp_io {
    struct event_base *base;
    int fd;
    unsigned flags;
    SSL *ssl;                  /* TLS only: owned */
    size_t tls_wlen;           /* TLS: bytes of an SSL_write to repeat, 0 if none */
    short tls_later;           /* TLS: end/error met after data, reported next */
    struct evbuffer *in, *out; /* owned */
    struct event rev, wev;
    struct evbuffer_cb_entry *resume; /* on @in while SUSPENDED */
    size_t read_max, write_low;
    lbp_io_data_cb readcb, writecb;
    lbp_io_event_cb eventcb;
    void *arg;
};

static void io_read_handler(evutil_socket_t fd, short what, void *arg);
static void io_write_handler(evutil_socket_t fd, short what, void *arg);
static void write_sched(struct lbp_io *io);

/* ---- read side ---------------------------------------------------------------- */

/* Puts @ev in or out of the loop; @added is the flag that says where it is. */
static void ev_set(struct lbp_io *io, struct event *ev, unsigned added, bool on)
{
    if (on && !(io->flags & added)) {
        if (event_add(ev, NULL) == 0)
            io->flags |= added;
    } else if (!on && (io->flags & added)) {
        event_del(ev);
        io->flags &= ~added;
    }
}

/* The owner's reading is on and not held back. */
static bool read_open(const struct lbp_io *io)
{
    return (io->flags & (F_READ_ON | F_SUSPENDED | F_READ_DEAD | F_CONNECTING)) == F_READ_ON;
}

/* Puts the read event in or out of the loop to match the flags. */
static void read_sync(struct lbp_io *io)
{
    bool tls_needs = (io->flags & (F_TLS_HANDSHAKE | F_TLS_WWANTR)) && !(io->flags & F_READ_DEAD);

    ev_set(io, &io->rev, F_READ_ADDED, read_open(io) || tls_needs);
}

/*
 * TLS: OpenSSL may hold bytes the socket will not announce again (read-ahead
 * past the room we gave, or an end seen after data): hand them over later
 * in this loop iteration when the owner reads.
 */
static void read_kick(struct lbp_io *io)
{
    if (io->ssl == NULL || (io->flags & (F_TLS_HANDSHAKE | F_TLS_SHUT)) || !read_open(io))
        return;
    if (io->tls_later != 0 || SSL_has_pending(io->ssl))
        event_active(&io->rev, EV_READ, 1);
}

static void resume_off(struct lbp_io *io)
{
    if (io->resume != NULL) {
        evbuffer_remove_cb_entry(io->in, io->resume);
        io->resume = NULL;
    }
    io->flags &= ~(unsigned)F_SUSPENDED;
}

/* The owner drained the input of a suspended stream. */
static void resume_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct lbp_io *io = arg;

    (void)info;
    if (io->read_max == 0 || evbuffer_get_length(buf) < io->read_max) {
        resume_off(io);
        read_sync(io);
        read_kick(io);
    }
}

static void suspend(struct lbp_io *io)
{
    io->flags |= F_SUSPENDED;
    read_sync(io);
    if (io->resume == NULL)
        io->resume = evbuffer_add_cb(io->in, resume_cb, io);
    if (io->resume == NULL) { /* cannot watch the drain: keep reading instead */
        io->flags &= ~(unsigned)F_SUSPENDED;
        read_sync(io);
    }
}

/* Reading ends: EOF or an error (@what), reported once. */
static void read_end(struct lbp_io *io, short what)
{
    io->flags |= F_READ_DEAD;
    read_sync(io);
    if (io->eventcb != NULL)
        io->eventcb(io, what, io->arg);
}

/*
 * How many bytes this wakeup may add to the input (0: the input is at
 * read_max; the stream is suspended).
 */
static size_t read_room(struct lbp_io *io)
{
    size_t len = evbuffer_get_length(io->in), room = IO_READ_CHUNK;

    if (io->read_max > 0) {
        if (len >= io->read_max) {
            suspend(io);
            return 0;
        }
        if (io->read_max - len < room)
            room = io->read_max - len;
    }
    return room;
}

/*
 * Reserves input space for this wakeup's read into @v (2 extents): their
 * count, with the bytes allowed in *@room; 0 when the input is at read_max
 * (suspended) or when there was no memory (reported: the stream may be gone).
 */
static int read_reserve(struct lbp_io *io, struct evbuffer_iovec *v, size_t *room)
{
    int n;

    *room = read_room(io);
    if (*room == 0)
        return 0;
    n = evbuffer_reserve_space(io->in, (ev_ssize_t)*room, v, 2);
    if (n <= 0) {
        errno = ENOMEM;
        read_end(io, LBP_IO_ERROR | LBP_IO_READING);
        return 0;
    }
    return n;
}

static void plain_read(struct lbp_io *io)
{
    struct evbuffer_iovec v[2];
    struct iovec iov[2];
    size_t room, got;
    int n = read_reserve(io, v, &room), used = 0;
    ssize_t r;

    if (n == 0)
        return;
    for (size_t want = room; used < n && want > 0; used++) {
        iov[used].iov_base = v[used].iov_base;
        iov[used].iov_len = v[used].iov_len < want ? v[used].iov_len : want;
        want -= iov[used].iov_len;
    }
    do {
        r = readv(io->fd, iov, used);
    } while (r < 0 && errno == EINTR);
    if (r > 0) {
        got = (size_t)r;
        for (int i = 0; i < used; i++) {
            v[i].iov_len = got < iov[i].iov_len ? got : iov[i].iov_len;
            got -= v[i].iov_len;
        }
        evbuffer_commit_space(io->in, v, used);
        if (io->readcb != NULL)
            io->readcb(io, io->arg);
        return;
    }
    evbuffer_commit_space(io->in, v, 0);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    read_end(io, (short)((r == 0 ? LBP_IO_EOF : LBP_IO_ERROR) | LBP_IO_READING));
}

/* ---- TLS ---------------------------------------------------------------------- */

/*
 * What a failed SSL call with SSL_get_error() == @err means for the stream:
 * LBP_IO_EOF for the peer's end (close_notify, or a plain TCP close:
 * SSL_OP_IGNORE_UNEXPECTED_EOF), else LBP_IO_ERROR with errno set and the
 * stream marked BROKEN. Clears OpenSSL's error queue (it is per thread and
 * would confuse the next SSL_get_error of another stream).
 */
static short tls_failure(struct lbp_io *io, int err)
{
    int saved = errno;
    short what = LBP_IO_ERROR;

    if (err == SSL_ERROR_ZERO_RETURN) {
        what = LBP_IO_EOF;
    } else if (err == SSL_ERROR_SYSCALL && saved == 0 && ERR_peek_error() == 0) {
        what =
            LBP_IO_EOF; /* EOF that OpenSSL did not classify (errno was cleared before the call) */
    } else {
        io->flags |= F_TLS_BROKEN;
        saved = err == SSL_ERROR_SYSCALL && saved != 0 ? saved : EPROTO;
    }
    ERR_clear_error();
    errno = saved;
    return what;
}

static void tls_handshake(struct lbp_io *io)
{
    int r, err;

    errno = 0; /* SSL_ERROR_SYSCALL leaves errno as the socket call set it */
    r = SSL_do_handshake(io->ssl);
    if (r == 1) {
        io->flags &= ~(unsigned)(F_TLS_HANDSHAKE | F_TLS_RWANTW);
        ev_set(io, &io->wev, F_WRITE_ADDED, false);
        read_sync(io);
        if (evbuffer_get_length(io->out) > 0)
            write_sched(io);
        read_kick(io); /* the request often came with the client's Finished */
        if (io->eventcb != NULL)
            io->eventcb(io, LBP_IO_CONNECTED, io->arg);
        return;
    }
    err = SSL_get_error(io->ssl, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        if (err == SSL_ERROR_WANT_WRITE)
            io->flags |= F_TLS_RWANTW;
        else
            io->flags &= ~(unsigned)F_TLS_RWANTW;
        ev_set(io, &io->wev, F_WRITE_ADDED, err == SSL_ERROR_WANT_WRITE);
        return;
    }
    /* HANDSHAKE stays set: nothing is written and no close_notify sent. */
    io->flags &= ~(unsigned)F_TLS_RWANTW;
    ev_set(io, &io->wev, F_WRITE_ADDED, false);
    io->flags |= F_WRITE_DEAD;
    read_end(io, (short)(tls_failure(io, err) | LBP_IO_READING));
}

/*
 * Decrypts into @v (reserved input space, @n extents) up to @room bytes;
 * returns the bytes placed, their extents committed by the caller through
 * @used. Stops at the first SSL_read that does not fill its extent while
 * OpenSSL holds nothing more: the socket is then empty or announces more
 * by itself (no recv that would only return EAGAIN). *@err is
 * SSL_ERROR_NONE or what stopped it.
 */
static size_t tls_fill(struct lbp_io *io, struct evbuffer_iovec *v, int n, size_t room, int *used,
                       int *err)
{
    size_t got = 0, fill[2] = {0, 0}, done;
    int i = 0;

    *err = SSL_ERROR_NONE;
    while (i < n && room > 0) {
        size_t cap = v[i].iov_len - fill[i];

        if (cap == 0) {
            i++;
            continue;
        }
        if (cap > room)
            cap = room;
        errno = 0;
        if (SSL_read_ex(io->ssl, (char *)v[i].iov_base + fill[i], cap, &done) != 1) {
            *err = SSL_get_error(io->ssl, 0);
            break;
        }
        fill[i] += done;
        room -= done;
        got += done;
        if (done < cap && !SSL_has_pending(io->ssl))
            break;
    }
    *used = 0;
    for (int k = 0; k < n && k < 2 && fill[k] > 0; k++) {
        v[k].iov_len = fill[k];
        *used = k + 1;
    }
    return got;
}

static void tls_read(struct lbp_io *io)
{
    struct evbuffer_iovec v[2];
    size_t room, got;
    int n, used, err;
    short what;

    if (io->flags & F_TLS_WWANTR) { /* the peer sent what a write waited for */
        io->flags &= ~(unsigned)F_TLS_WWANTR;
        read_sync(io);
        write_sched(io);
    }
    if (io->flags & F_TLS_HANDSHAKE) {
        if (!(io->flags & F_READ_DEAD)) /* (failed: reported once) */
            tls_handshake(io);
        return;
    }
    if (!read_open(io))
        return; /* a kick that came after the owner stopped reading */
    if (io->tls_later != 0) {
        what = io->tls_later;
        io->tls_later = 0;
        read_end(io, what);
        return;
    }
    n = read_reserve(io, v, &room);
    if (n == 0)
        return;
    got = tls_fill(io, v, n, room, &used, &err);
    evbuffer_commit_space(io->in, v, used);
    if (err == SSL_ERROR_WANT_WRITE) { /* e.g. the answer to a KeyUpdate */
        io->flags |= F_TLS_RWANTW;
        ev_set(io, &io->wev, F_WRITE_ADDED, true);
    } else if (err != SSL_ERROR_NONE && err != SSL_ERROR_WANT_READ) {
        what = (short)(tls_failure(io, err) | LBP_IO_READING);
        if (got == 0) {
            read_end(io, what);
            return;
        }
        io->tls_later = what; /* after the data */
    }
    /* Stopped for want of room with more held by OpenSSL, or an end to
     * report after the data: go on in this loop iteration. (Not after
     * WANT_READ: a partial record needs the socket, and a kick would spin.) */
    if (io->tls_later != 0 || (err == SSL_ERROR_NONE && SSL_has_pending(io->ssl)))
        event_active(&io->rev, EV_READ, 1);
    if (got > 0 && io->readcb != NULL)
        io->readcb(io, io->arg);
}

/* Bytes for the next record: whole chains from the front while they fit in
 * one (a response head and a small body go out together), else as much of
 * the first chain as a record holds. */
static size_t tls_record_len(struct lbp_io *io)
{
    struct evbuffer_iovec v[IO_TLS_GATHER];
    int n = evbuffer_peek(io->out, IO_TLS_RECORD, NULL, v, IO_TLS_GATHER);
    size_t want = 0;

    if (n > IO_TLS_GATHER)
        n = IO_TLS_GATHER;
    for (int i = 0; i < n && want + v[i].iov_len <= IO_TLS_RECORD; i++)
        want += v[i].iov_len;
    if (want == 0 && n > 0)
        want = v[0].iov_len < IO_TLS_RECORD ? v[0].iov_len : IO_TLS_RECORD;
    return want;
}

/* write_some() for TLS: one SSL_write (one record, one send) per round. */
static ssize_t tls_write_some(struct lbp_io *io)
{
    ssize_t total = 0;
    size_t want, done;
    unsigned char *data;
    int err;

    if (io->flags & F_TLS_SHUT) { /* nothing may follow close_notify */
        evbuffer_drain(io->out, evbuffer_get_length(io->out));
        return 0;
    }
    while (evbuffer_get_length(io->out) > 0) {
        want = io->tls_wlen != 0 ? io->tls_wlen : tls_record_len(io);
        data = evbuffer_pullup(io->out, (ev_ssize_t)want); /* no copy when one chain holds it */
        if (data == NULL) {
            errno = ENOMEM;
            return -1;
        }
        errno = 0;
        if (SSL_write_ex(io->ssl, data, want, &done) == 1) {
            io->tls_wlen = 0;
            evbuffer_drain(io->out, done);
            total += (ssize_t)done;
            continue;
        }
        io->tls_wlen = want;
        err = SSL_get_error(io->ssl, 0);
        if (err == SSL_ERROR_WANT_WRITE)
            return total;
        if (err == SSL_ERROR_WANT_READ) {
            io->flags |= F_TLS_WWANTR;
            read_sync(io);
            return total;
        }
        (void)tls_failure(io, err);
        io->flags |= F_TLS_BROKEN;
        if (errno == 0)
            errno = EPIPE;
        return -1;
    }
    return total;
}

/* ---- write side ---------------------------------------------------------------- */

static void write_sched(struct lbp_io *io)
{
    if (io->flags & (F_WRITE_SCHED | F_WRITE_ADDED | F_CONNECTING | F_TLS_HANDSHAKE))
        return;
    io->flags |= F_WRITE_SCHED;
    event_active(&io->wev, EV_WRITE, 1);
}

static void write_wait(struct lbp_io *io, bool on)
{
    ev_set(io, &io->wev, F_WRITE_ADDED, on);
}

/*
 * Sends what the socket takes. Returns bytes sent (>= 0), or -1 with errno
 * set for an error other than EAGAIN.
 */
static ssize_t write_some(struct lbp_io *io)
{
    struct evbuffer_iovec v[IO_WRITE_IOV];
    struct iovec iov[IO_WRITE_IOV];
    struct msghdr mh;
    ssize_t total = 0, r;
    int n;

    if (io->ssl != NULL)
        return tls_write_some(io);
    while (evbuffer_get_length(io->out) > 0) {
        n = evbuffer_peek(io->out, -1, NULL, v, IO_WRITE_IOV);
        if (n > IO_WRITE_IOV)
            n = IO_WRITE_IOV;
        for (int i = 0; i < n; i++) {
            iov[i].iov_base = v[i].iov_base;
            iov[i].iov_len = v[i].iov_len;
        }
        memset(&mh, 0, sizeof(mh));
        mh.msg_iov = iov;
        mh.msg_iovlen = (size_t)n;
        do {
            r = sendmsg(io->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        } while (r < 0 && errno == EINTR);
        if (r < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? total : -1;
        evbuffer_drain(io->out, (size_t)r);
        total += r;
    }
    return total;
}

static void connect_done(struct lbp_io *io)
{
    int err = 0;
    socklen_t elen = sizeof(err);

    write_wait(io, false);
    if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0)
        err = errno;
    if (err == EINPROGRESS || err == EALREADY) { /* spurious wakeup */
        write_wait(io, true);
        return;
    }
    io->flags &= ~(unsigned)F_CONNECTING;
    if (err != 0) {
        io->flags |= F_READ_DEAD | F_WRITE_DEAD;
        errno = err;
        if (io->eventcb != NULL)
            io->eventcb(io, LBP_IO_ERROR, io->arg);
        return;
    }
    read_sync(io);
    if (evbuffer_get_length(io->out) > 0)
        write_sched(io);
    if (io->eventcb != NULL)
        io->eventcb(io, LBP_IO_CONNECTED, io->arg);
}

static void io_write_handler(evutil_socket_t fd, short what, void *arg)
{
    struct lbp_io *io = arg;
    ssize_t sent;

    (void)fd;
    (void)what;
    io->flags &= ~(unsigned)F_WRITE_SCHED;
    if (io->flags & F_CONNECTING) {
        connect_done(io);
        return;
    }
    if (io->flags & F_TLS_RWANTW) { /* the socket takes bytes again: the read side goes on */
        io->flags &= ~(unsigned)F_TLS_RWANTW;
        event_active(&io->rev, EV_READ, 1);
        if (io->flags & F_TLS_HANDSHAKE) {
            write_wait(io, false);
            return;
        }
    }
    if (io->flags & F_WRITE_DEAD) {
        write_wait(io, false);
        return;
    }
    sent = write_some(io);
    if (sent < 0) {
        int err = errno;

        io->flags |= F_WRITE_DEAD;
        write_wait(io, false);
        evbuffer_drain(io->out, evbuffer_get_length(io->out));
        errno = err;
        if (io->eventcb != NULL)
            io->eventcb(io, LBP_IO_ERROR | LBP_IO_WRITING, io->arg);
        return;
    }
    write_wait(io, (evbuffer_get_length(io->out) > 0 && !(io->flags & F_TLS_WWANTR)) ||
                       (io->flags & F_TLS_RWANTW));
    if (sent > 0 && evbuffer_get_length(io->out) <= io->write_low && io->writecb != NULL)
        io->writecb(io, io->arg);
}

static void io_read_handler(evutil_socket_t fd, short what, void *arg)
{
    struct lbp_io *io = arg;

    (void)fd;
    (void)what;
    if (io->ssl != NULL && !(io->flags & F_TLS_SHUT))
        tls_read(io);
    else if (read_open(io))
        plain_read(io);
}

/* ---- life ------------------------------------------------------------------- */

static struct lbp_io *io_new(struct event_base *base, int fd)
{
    struct lbp_io *io = calloc(1, sizeof(*io));

    if (io == NULL)
        return NULL;
    io->base = base;
    io->fd = fd;
    io->in = evbuffer_new();
    io->out = evbuffer_new();
    if (io->in == NULL || io->out == NULL) {
        if (io->in != NULL)
            evbuffer_free(io->in);
        if (io->out != NULL)
            evbuffer_free(io->out);
        free(io);
        return NULL;
    }
    event_assign(&io->rev, base, fd, EV_READ | EV_PERSIST, io_read_handler, io);
    event_assign(&io->wev, base, fd, EV_WRITE | EV_PERSIST, io_write_handler, io);
    return io;
}

static void io_release(struct lbp_io *io)
{
    event_del(&io->rev);
    event_del(&io->wev);
    resume_off(io);
    evbuffer_free(io->in);
    evbuffer_free(io->out);
    free(io);
}

struct lbp_io *lbp_io_new(struct event_base *base, int fd)
{
    struct lbp_io *io = io_new(base, fd);

    if (io != NULL) {
        io->flags |= F_READ_ON;
        read_sync(io);
    }
    return io;
}

struct lbp_io *lbp_io_new_tls(struct event_base *base, int fd, SSL *ssl)
{
    struct lbp_io *io = io_new(base, fd);

    if (io == NULL)
        return NULL;
    if (SSL_set_fd(ssl, fd) != 1) {
        ERR_clear_error();
        io_release(io);
        return NULL;
    }
    SSL_set_accept_state(ssl);
    io->ssl = ssl;
    io->flags |= F_READ_ON | F_TLS_HANDSHAKE;
    read_sync(io);
    return io;
}

int lbp_io_connect(struct event_base *base, const struct sockaddr *sa, socklen_t salen,
                   struct lbp_io **out)
{
    struct lbp_io *io;
    int fd, one = 1, rc;

    *out = NULL;
    fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return errno == ENOMEM || errno == ENOBUFS ? CM_ENOMEM : CM_EIO;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    do {
        rc = connect(fd, sa, salen);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0 && errno != EINPROGRESS) {
        int err = errno;

        close(fd);
        errno = err;
        return err == ECONNREFUSED ? CM_ECONNREFUSED : CM_EIO;
    }
    io = io_new(base, fd);
    if (io == NULL) {
        close(fd);
        return CM_ENOMEM;
    }
    io->flags |= F_READ_ON | F_CONNECTING;
    if (rc == 0) { /* connected at once: report it from the loop like the others */
        io->flags |= F_WRITE_SCHED;
        event_active(&io->wev, EV_WRITE, 1);
    } else {
        write_wait(io, true);
    }
    *out = io;
    return CM_OK;
}

void lbp_io_free(struct lbp_io *io)
{
    if (io == NULL)
        return;
    if (io->ssl != NULL) {
        /* A clean end says so (close_notify), which also keeps the session
         * in the cache; a broken one must not (OpenSSL drops it on free). */
        if (!(io->flags & (F_TLS_HANDSHAKE | F_TLS_SHUT | F_TLS_BROKEN)) && io->tls_wlen == 0)
            SSL_shutdown(io->ssl);
        ERR_clear_error();
        SSL_free(io->ssl);
    }
    close(io->fd);
    io_release(io);
}

/* ---- settings and buffers ------------------------------------------------------ */

void lbp_io_setcb(struct lbp_io *io, lbp_io_data_cb readcb, lbp_io_data_cb writecb,
                  lbp_io_event_cb eventcb, void *arg)
{
    io->readcb = readcb;
    io->writecb = writecb;
    io->eventcb = eventcb;
    io->arg = arg;
}

void lbp_io_read_enable(struct lbp_io *io, bool on)
{
    if (on)
        io->flags |= F_READ_ON;
    else
        io->flags &= ~(unsigned)F_READ_ON;
    read_sync(io);
    if (on)
        read_kick(io);
}

void lbp_io_set_read_max(struct lbp_io *io, size_t max)
{
    io->read_max = max;
    if ((io->flags & F_SUSPENDED) && (max == 0 || evbuffer_get_length(io->in) < max)) {
        resume_off(io);
        read_sync(io);
        read_kick(io);
    }
}

void lbp_io_set_write_low(struct lbp_io *io, size_t low)
{
    io->write_low = low;
}

struct evbuffer *lbp_io_input(struct lbp_io *io)
{
    return io->in;
}

struct evbuffer *lbp_io_output(struct lbp_io *io)
{
    return io->out;
}

size_t lbp_io_output_len(const struct lbp_io *io)
{
    return evbuffer_get_length(io->out);
}

int lbp_io_write(struct lbp_io *io, const void *data, size_t len)
{
    if (io->flags & F_WRITE_DEAD)
        return CM_OK; /* the error is (or was) reported from the loop */
    if (io->ssl != NULL && len < IO_TLS_COALESCE && evbuffer_get_length(io->out) == 0)
        (void)evbuffer_expand(io->out, IO_TLS_COALESCE); /* only an optimisation */
    if (evbuffer_add(io->out, data, len) != 0)
        return CM_ENOMEM;
    write_sched(io);
    return CM_OK;
}

int lbp_io_move(struct lbp_io *io, struct evbuffer *src, size_t len)
{
    if (io->flags & F_WRITE_DEAD) {
        evbuffer_drain(src, len);
        return CM_OK;
    }
    if (evbuffer_remove_buffer(src, io->out, len) < 0)
        return CM_ENOMEM;
    write_sched(io);
    return CM_OK;
}

void lbp_io_write_now(struct lbp_io *io)
{
    if (io->flags & (F_WRITE_DEAD | F_CONNECTING | F_TLS_HANDSHAKE))
        return;
    if (write_some(io) < 0) {
        io->flags |= F_WRITE_DEAD;
        evbuffer_drain(io->out, evbuffer_get_length(io->out));
    }
}

int lbp_io_shutdown_wr(struct lbp_io *io)
{
    if (io->ssl != NULL && !(io->flags & F_TLS_SHUT)) {
        if (!(io->flags & (F_TLS_HANDSHAKE | F_TLS_BROKEN)) && io->tls_wlen == 0)
            SSL_shutdown(io->ssl); /* close_notify; a full socket just loses it */
        ERR_clear_error();
        io->flags |= F_TLS_SHUT;
        io->flags &= ~(unsigned)(F_TLS_HANDSHAKE | F_TLS_WWANTR | F_TLS_RWANTW);
        io->tls_later = 0;
        read_sync(io);
    }
    return shutdown(io->fd, SHUT_WR) == 0 ? CM_OK : CM_EIO;
}

int lbp_io_fd(const struct lbp_io *io)
{
    return io->fd;
}

bool lbp_io_is_tls(const struct lbp_io *io)
{
    return io->ssl != NULL;
}

bool lbp_io_tls_resumed(const struct lbp_io *io)
{
    return io->ssl != NULL && !(io->flags & F_TLS_HANDSHAKE) && SSL_session_reused(io->ssl) == 1;
}
