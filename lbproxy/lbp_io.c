/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lbp_io.c -- the proxy's byte streams: plain sockets with their own reads
 * and speculative writes, TLS through bufferevent_openssl (see lbp_io.h).
 *
 * Plain stream flags:
 *
 *   READ_ON    the owner wants to read          } the read event is in the
 *   SUSPENDED  input at read_max                } loop iff READ_ON and not
 *   READ_DEAD  EOF or error seen                } SUSPENDED or READ_DEAD
 *   WRITE_SCHED  write handler queued with event_active (no syscall)
 *   WRITE_ADDED  write event registered (EPOLLOUT): socket full, or connecting
 *   CONNECTING   connect under way; the write handler finishes it
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

#include <event2/bufferevent_ssl.h>
#include <event2/event_struct.h>

#include "common/cm_err.h"
#include "lbproxy/lbp_io.h"

#define IO_READ_CHUNK 16384u /* bytes read per readable event at most */
#define IO_WRITE_IOV  16     /* iovecs per sendmsg */

enum {
    F_READ_ON = 1u << 0,
    F_READ_ADDED = 1u << 1,
    F_SUSPENDED = 1u << 2,
    F_READ_DEAD = 1u << 3,
    F_WRITE_SCHED = 1u << 4,
    F_WRITE_ADDED = 1u << 5,
    F_WRITE_DEAD = 1u << 6,
    F_CONNECTING = 1u << 7,
};

struct lbp_io {
    struct event_base *base;
    int fd;
    unsigned flags;
    struct bufferevent *bev;          /* TLS only: owned; its buffers are in/out */
    struct evbuffer *in, *out;        /* plain: owned */
    struct event rev, wev;            /* plain only */
    struct evbuffer_cb_entry *resume; /* on @in while SUSPENDED */
    size_t read_max, write_low;
    lbp_io_data_cb readcb, writecb;
    lbp_io_event_cb eventcb;
    void *arg;
};

static void io_read_handler(evutil_socket_t fd, short what, void *arg);
static void io_write_handler(evutil_socket_t fd, short what, void *arg);

/* ---- plain: read side ----------------------------------------------------- */

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

/* Puts the read event in or out of the loop to match the flags. */
static void read_sync(struct lbp_io *io)
{
    ev_set(io, &io->rev, F_READ_ADDED,
           (io->flags & (F_READ_ON | F_SUSPENDED | F_READ_DEAD | F_CONNECTING)) == F_READ_ON);
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

static void io_read_handler(evutil_socket_t fd, short what, void *arg)
{
    struct lbp_io *io = arg;
    struct evbuffer_iovec v[2];
    struct iovec iov[2];
    size_t len = evbuffer_get_length(io->in), room = IO_READ_CHUNK, got;
    int n, used = 0;
    ssize_t r;

    (void)what;
    if (io->read_max > 0) {
        if (len >= io->read_max) {
            suspend(io);
            return;
        }
        if (io->read_max - len < room)
            room = io->read_max - len;
    }
    n = evbuffer_reserve_space(io->in, (ev_ssize_t)room, v, 2);
    if (n <= 0) {
        io->flags |= F_READ_DEAD;
        read_sync(io);
        errno = ENOMEM;
        if (io->eventcb != NULL)
            io->eventcb(io, LBP_IO_ERROR | LBP_IO_READING, io->arg);
        return;
    }
    for (size_t want = room; used < n && want > 0; used++) {
        iov[used].iov_base = v[used].iov_base;
        iov[used].iov_len = v[used].iov_len < want ? v[used].iov_len : want;
        want -= iov[used].iov_len;
    }
    do {
        r = readv((int)fd, iov, used);
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
    io->flags |= F_READ_DEAD;
    read_sync(io);
    if (io->eventcb != NULL)
        io->eventcb(io, (short)((r == 0 ? LBP_IO_EOF : LBP_IO_ERROR) | LBP_IO_READING), io->arg);
}

/* ---- plain: write side ---------------------------------------------------- */

static void write_sched(struct lbp_io *io)
{
    if (io->bev != NULL || (io->flags & (F_WRITE_SCHED | F_WRITE_ADDED | F_CONNECTING)))
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
    if (io->flags & F_WRITE_DEAD)
        return;
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
    write_wait(io, evbuffer_get_length(io->out) > 0);
    if (sent > 0 && evbuffer_get_length(io->out) <= io->write_low && io->writecb != NULL)
        io->writecb(io, io->arg);
}

/* ---- TLS: bufferevent callbacks passed through ------------------------------ */

static void tls_read_cb(struct bufferevent *bev, void *arg)
{
    struct lbp_io *io = arg;

    (void)bev;
    if (io->readcb != NULL)
        io->readcb(io, io->arg);
}

static void tls_write_cb(struct bufferevent *bev, void *arg)
{
    struct lbp_io *io = arg;

    (void)bev;
    if (io->writecb != NULL)
        io->writecb(io, io->arg);
}

static void tls_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct lbp_io *io = arg;

    (void)bev;
    if (io->eventcb != NULL)
        io->eventcb(io, what, io->arg);
}

/* ---- life ------------------------------------------------------------------- */

static struct lbp_io *plain_new(struct event_base *base, int fd)
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

struct lbp_io *lbp_io_new(struct event_base *base, int fd)
{
    struct lbp_io *io = plain_new(base, fd);

    if (io != NULL) {
        io->flags |= F_READ_ON;
        read_sync(io);
    }
    return io;
}

struct lbp_io *lbp_io_new_tls(struct event_base *base, int fd, SSL *ssl)
{
    struct lbp_io *io = calloc(1, sizeof(*io));

    if (io == NULL)
        return NULL;
    io->base = base;
    io->fd = fd;
    io->bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE);
    if (io->bev == NULL) {
        free(io);
        return NULL;
    }
    bufferevent_openssl_set_allow_dirty_shutdown(io->bev, 1);
    io->in = bufferevent_get_input(io->bev);
    io->out = bufferevent_get_output(io->bev);
    bufferevent_setcb(io->bev, tls_read_cb, tls_write_cb, tls_event_cb, io);
    bufferevent_enable(io->bev, EV_READ | EV_WRITE);
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
    io = plain_new(base, fd);
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
    if (io->bev != NULL) {
        bufferevent_free(io->bev);
    } else {
        event_del(&io->rev);
        event_del(&io->wev);
        resume_off(io);
        evbuffer_free(io->in);
        evbuffer_free(io->out);
        close(io->fd);
    }
    free(io);
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
    if (io->bev != NULL) {
        if (on)
            bufferevent_enable(io->bev, EV_READ);
        else
            bufferevent_disable(io->bev, EV_READ);
        return;
    }
    if (on)
        io->flags |= F_READ_ON;
    else
        io->flags &= ~(unsigned)F_READ_ON;
    read_sync(io);
}

void lbp_io_set_read_max(struct lbp_io *io, size_t max)
{
    io->read_max = max;
    if (io->bev != NULL) {
        bufferevent_setwatermark(io->bev, EV_READ, 0, max);
        return;
    }
    if ((io->flags & F_SUSPENDED) && (max == 0 || evbuffer_get_length(io->in) < max)) {
        resume_off(io);
        read_sync(io);
    }
}

void lbp_io_set_write_low(struct lbp_io *io, size_t low)
{
    io->write_low = low;
    if (io->bev != NULL)
        bufferevent_setwatermark(io->bev, EV_WRITE, low, 0);
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
    if (io->bev != NULL || (io->flags & (F_WRITE_DEAD | F_CONNECTING)))
        return;
    if (write_some(io) < 0) {
        io->flags |= F_WRITE_DEAD;
        evbuffer_drain(io->out, evbuffer_get_length(io->out));
    }
}

int lbp_io_shutdown_wr(struct lbp_io *io)
{
    if (io->bev != NULL)
        return CM_EINVAL;
    return shutdown(io->fd, SHUT_WR) == 0 ? CM_OK : CM_EIO;
}

int lbp_io_fd(const struct lbp_io *io)
{
    return io->fd;
}

bool lbp_io_is_tls(const struct lbp_io *io)
{
    return io->bev != NULL;
}
