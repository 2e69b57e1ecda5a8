/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lbp_io.h -- one byte stream of the proxy: an input and an output evbuffer
 * over a socket, plain or TLS, with bufferevent-like callbacks.
 *
 * Why not libevent's bufferevents for plain sockets: a socket bufferevent
 * registers EPOLLOUT for every write and removes it when the buffer drains
 * (two epoll_ctl per response on each side), and asks FIONREAD before every
 * read. For a small keep-alive exchange that is ten system calls where four
 * do (one recv and one send per side). Plain streams here work the way
 * HAProxy's connections do:
 *
 *   read:  the read event stays registered while reading is enabled; a
 *          readable socket is read once, straight into reserved evbuffer
 *          space (no copy, no ioctl), at most up to the read limit.
 *   write: lbp_io_write()/lbp_io_move() queue bytes and schedule a write for
 *          later in the same loop iteration (event_active: no system call);
 *          that write sends what it can at once and registers EPOLLOUT only
 *          when the socket is full.
 *
 * TLS streams take the same path with OpenSSL as a transform on it (HAProxy's
 * ssl_sock over its raw socket layer): the SSL reads and writes the socket
 * itself (a socket BIO; read-ahead, so one recv takes in every record the
 * socket holds), plaintext goes straight into reserved input space, and the
 * output is written one record at a time from the front of the output
 * buffer, a response head and a small body in one record and one send. The
 * handshake runs from the same events. EPOLLOUT is registered only when
 * OpenSSL reports the socket full (or a read needs to write, as for a
 * TLS 1.3 KeyUpdate); a write that needs bytes from the peer keeps the read
 * event registered instead. Bytes OpenSSL holds past a read (read-ahead,
 * a record larger than the room left) are handed over later in the same
 * loop iteration, so nothing waits for a socket event that will not come.
 * A clean end (shutdown_wr, or free after a finished handshake without an
 * error) sends close_notify, which keeps the session resumable; after a
 * TLS or socket error the SSL is freed without it (OpenSSL then drops the
 * session from its cache).
 *
 * Callbacks (any of them may free the stream; the stream never touches
 * itself after calling one):
 *   read:  bytes were appended to the input.
 *   write: after a write that left the output at or below the write low
 *          mark (0 by default).
 *   event: LBP_IO_CONNECTED (connect or TLS handshake done), or LBP_IO_EOF /
 *          LBP_IO_ERROR together with LBP_IO_READING or LBP_IO_WRITING;
 *          after EOF or an error reading stops, and after a write error the
 *          output is discarded.
 *
 * Errors met while writing are reported from the event loop, never from
 * inside lbp_io_write/lbp_io_move, and only once: later writes return CM_OK
 * and drop their bytes. Reading stops while the input holds
 * read_max bytes or more and resumes by itself once the owner drains it.
 */
#ifndef LBPROXY_LBP_IO_H
#define LBPROXY_LBP_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/ssl.h>

struct lbp_io;

/* Event flags (libevent's bufferevent values, for familiarity). */
#define LBP_IO_READING   BEV_EVENT_READING
#define LBP_IO_WRITING   BEV_EVENT_WRITING
#define LBP_IO_EOF       BEV_EVENT_EOF
#define LBP_IO_ERROR     BEV_EVENT_ERROR
#define LBP_IO_CONNECTED BEV_EVENT_CONNECTED

typedef void (*lbp_io_data_cb)(struct lbp_io *io, void *arg);
typedef void (*lbp_io_event_cb)(struct lbp_io *io, short what, void *arg);

/** A plain stream over accepted, non-blocking @fd (owned: closed on free). NULL on ENOMEM. */
struct lbp_io *lbp_io_new(struct event_base *base, int fd);
/**
 * A TLS server stream over accepted, non-blocking @fd (owned: closed on
 * free); owns @ssl on success (the caller frees it on failure). The
 * handshake starts with the first readable event; LBP_IO_CONNECTED reports
 * its end. NULL on ENOMEM.
 */
struct lbp_io *lbp_io_new_tls(struct event_base *base, int fd, SSL *ssl);
/**
 * A plain stream connecting to @sa: *out is set and CM_OK returned when the
 * connect is under way (LBP_IO_CONNECTED or an error event follows); a
 * negative CM_* code when it failed at once (nothing to free).
 */
int lbp_io_connect(struct event_base *base, const struct sockaddr *sa, socklen_t salen,
                   struct lbp_io **out);
/** Closes the socket and frees. Accepts NULL. Safe inside the stream's own callbacks. */
void lbp_io_free(struct lbp_io *io);

void lbp_io_setcb(struct lbp_io *io, lbp_io_data_cb readcb, lbp_io_data_cb writecb,
                  lbp_io_event_cb eventcb, void *arg);
/** Reading on or off (on after EOF or an error does nothing). */
void lbp_io_read_enable(struct lbp_io *io, bool on);
/** Stop reading while the input holds @max bytes or more (0: no limit). */
void lbp_io_set_read_max(struct lbp_io *io, size_t max);
/** The write callback runs when the output is at or below @low after a write. */
void lbp_io_set_write_low(struct lbp_io *io, size_t low);

/** Borrowed buffers. Drain the input freely; add to the output only through the calls below. */
struct evbuffer *lbp_io_input(struct lbp_io *io);
struct evbuffer *lbp_io_output(struct lbp_io *io);
size_t lbp_io_output_len(const struct lbp_io *io);

/** Queues a copy of @len bytes and schedules the write. CM_ENOMEM. */
int lbp_io_write(struct lbp_io *io, const void *data, size_t len);
/** Moves @len bytes (no copy) from the front of @src and schedules the write. */
int lbp_io_move(struct lbp_io *io, struct evbuffer *src, size_t len);
/**
 * Writes what the socket takes now, without callbacks (used before freeing,
 * e.g. the last bytes of a tunnel). Nothing during a TLS handshake.
 */
void lbp_io_write_now(struct lbp_io *io);
/**
 * Half-close now (TLS: close_notify first, then shutdown SHUT_WR); call with
 * the output empty. Later reads take raw bytes (TLS: no longer decrypted),
 * for a lingering close that discards them. CM_EIO when shutdown fails.
 */
int lbp_io_shutdown_wr(struct lbp_io *io);

int lbp_io_fd(const struct lbp_io *io);
bool lbp_io_is_tls(const struct lbp_io *io);
/** TLS: the handshake resumed a session (ticket or session cache). False for plain streams. */
bool lbp_io_tls_resumed(const struct lbp_io *io);

#endif /* LBPROXY_LBP_IO_H */
