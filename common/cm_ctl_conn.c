/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_ctl_conn.c -- the control API's connections: the listener, TLS, request
 * framing, deadlines and caps (see cm_ctl_int.h for the objects).
 *
 * A connection goes round one cycle per request:
 *
 *   HEAD --admitted, body--> BODY --complete--> REPLY --written--> HEAD
 *     |  (no body) --------------------------->   |
 *     +--refused, or the client asked to close--> REPLY --written--> LINGER --> freed
 *
 * Why the cycle looks like this:
 *  - the token is checked from the head, so an unauthenticated client can
 *    make us buffer at most one head (CM_CTL_HEAD_MAX), never a body;
 *  - each cycle has one absolute deadline, armed when it starts and not
 *    moved by reads, so a client trickling bytes cannot hold a slot longer;
 *  - reading is paused while a reply is written, so pipelining cannot pile
 *    up input;
 *  - after refusing a request whose body is on its way, the connection
 *    lingers: it half-closes and discards (never buffers) what still comes
 *    for a short while, so the client reads the refusal instead of a reset.
 */
#include "common/cm_ctl_int.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>

#include "common/cm_err.h"
#include "common/cm_time.h"

#define CTL_BACKLOG       128
#define CTL_ACCEPT_BUDGET 16         /* accepts per wakeup */
#define CTL_BODY_RATE     65536      /* bytes per second a body may take at the slowest */
#define CTL_REPLY_MS      30000      /* a reply must be taken within this */
#define CTL_LINGER_MS     2000       /* how long a refused body is discarded */
#define CTL_LINGER_MAX    (1u << 20) /* and how much of it at most */

enum conn_state {
    CONN_HEAD = 0,   /* waiting for or reading a request head */
    CONN_BODY = 1,   /* reading an admitted request's body */
    CONN_REPLY = 2,  /* reply queued; reading paused until it is written */
    CONN_LINGER = 3, /* reply written, write side shut: discarding input until EOF */
};

struct ctl_conn {
    struct cm_ctl *ctl;         /* borrowed */
    struct bufferevent *bev;    /* owned; owns the socket (and the SSL) */
    struct event *deadline;     /* owned timer */
    TAILQ_ENTRY(ctl_conn) link; /* in ctl->conns, oldest cycle first */
    enum conn_state state;
    bool close_after; /* close once the reply is written */
    bool is_tls;
    size_t scanned;   /* head bytes already searched for a line end */
    size_t reserved;  /* body bytes counted in ctl->body_total */
    size_t discarded; /* LINGER: bytes thrown away */
    struct cm_ctl_req req;
};

static void conn_on_input(struct ctl_conn *c);

static void req_reset(struct cm_ctl_req *req)
{
    free(req->path);
    free(req->query);
    req->path = NULL;
    req->query = NULL;
    req->method = CM_HTTP_OTHER;
    req->who = NULL;
    req->route = NULL;
    req->body_len = 0;
    req->code = 0;
    /* A body can be megabytes: give it back rather than keep it per connection. */
    cm_buf_fini(&req->body);
    cm_buf_init(&req->body, 0);
    cm_buf_reset(&req->headers);
}

static void release_body(struct ctl_conn *c)
{
    c->ctl->body_total -= c->reserved;
    c->reserved = 0;
}

static void conn_free(struct ctl_conn *c)
{
    struct cm_ctl *ctl = c->ctl;

    TAILQ_REMOVE(&ctl->conns, c, link);
    ctl->conn_count--;
    release_body(c);
    req_reset(&c->req);
    cm_buf_fini(&c->req.body);
    cm_buf_fini(&c->req.headers);
    if (c->deadline != NULL)
        event_free(c->deadline);
    bufferevent_free(c->bev); /* closes the socket, frees the SSL */
    free(c);
}

static void arm_deadline(struct ctl_conn *c, uint64_t ms)
{
    struct timeval tv = cm_ms_to_timeval(ms);

    evtimer_add(c->deadline, &tv);
}

/* A new request cycle: the connection becomes the newest in the list. */
static void cycle_start(struct ctl_conn *c)
{
    struct cm_ctl *ctl = c->ctl;

    req_reset(&c->req);
    release_body(c);
    c->state = CONN_HEAD;
    c->scanned = 0;
    TAILQ_REMOVE(&ctl->conns, c, link);
    TAILQ_INSERT_TAIL(&ctl->conns, c, link);
    arm_deadline(c, c->ctl->head_ms);
    /* Above one head's worth, stop reading until the head is parsed. */
    bufferevent_setwatermark(c->bev, EV_READ, 0, CM_CTL_HEAD_MAX);
    bufferevent_enable(c->bev, EV_READ);
    conn_on_input(c); /* a pipelined request may already be here */
}

void ctl_conn_send(struct cm_ctl_req *req, int code, const char *ctype, const char *body,
                   size_t len)
{
    ctl_conn_send2(req, code, ctype, body, len, "", 0);
}

void ctl_conn_send2(struct cm_ctl_req *req, int code, const char *ctype, const char *body,
                    size_t len, const char *tail, size_t tail_len)
{
    struct ctl_conn *c = req->conn;
    struct evbuffer *out = bufferevent_get_output(c->bev);

    if (req->code != 0) {
        cm_log_error("control API: a second reply to one request (code=%d) dropped", code);
        return;
    }
    req->code = code;
    if (code >= 100 && code < CTL_CODE_MAX)
        c->ctl->replies[code]++;
    /* Replies are not cached unless the route says otherwise (the status page's assets). */
    evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s",
                        code, cm_http_reason(code), ctype, len + tail_len,
                        req->headers.len > 0 &&
                                strcasestr(cm_buf_cstr(&req->headers), "Cache-Control:") != NULL
                            ? ""
                            : "Cache-Control: no-store\r\n",
                        c->close_after ? "Connection: close\r\n" : "");
    evbuffer_add(out, req->headers.data != NULL ? req->headers.data : "", req->headers.len);
    evbuffer_add(out, "\r\n", 2);
    evbuffer_add(out, body, len);
    evbuffer_add(out, tail, tail_len);
    c->state = CONN_REPLY;
    bufferevent_disable(c->bev, EV_READ);
    arm_deadline(c, CTL_REPLY_MS);
    cm_log_debug("ctl request method=%s path=%.200s code=%d", cm_http_method_name(req->method),
                 req->path != NULL ? req->path : "-", code);
}

static void reply_refusal(struct ctl_conn *c, int code, const char *reason)
{
    char body[256];
    int n;

    c->close_after = true;
    n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}\n", reason);
    ctl_conn_send(&c->req, code, "application/json", body, (size_t)n);
}

static void dispatch(struct ctl_conn *c)
{
    c->state = CONN_REPLY;
    bufferevent_disable(c->bev, EV_READ);
    ctl_req_dispatch(c->ctl, &c->req);
    if (c->req.code == 0)
        reply_refusal(c, 500, "internal error: the route sent no reply");
}

static void try_body(struct ctl_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t want = (size_t)c->req.body_len - c->req.body.len;
    size_t n = evbuffer_get_length(in);

    if (n > want)
        n = want;
    if (n > 0) {
        if (cm_buf_append(&c->req.body, evbuffer_pullup(in, (ev_ssize_t)n), n) != CM_OK) {
            reply_refusal(c, 500, "out of memory");
            return;
        }
        evbuffer_drain(in, n);
    }
    if (c->req.body.len == c->req.body_len)
        dispatch(c);
}

/* Splits the target into the decoded path and the raw query. */
static int set_target(struct cm_ctl_req *req, const char *target, size_t len)
{
    const char *q = memchr(target, '?', len);
    size_t path_len = q != NULL ? (size_t)(q - target) : len;
    char *raw = strndup(target, path_len);
    size_t dec_len = 0;

    if (raw == NULL)
        return CM_ENOMEM;
    req->path = evhttp_uridecode(raw, 0, &dec_len);
    free(raw);
    if (req->path == NULL)
        return CM_ENOMEM;
    if (strlen(req->path) != dec_len || req->path[0] != '/')
        return CM_EPARSE;
    if (q != NULL) {
        req->query = strndup(q + 1, len - path_len - 1);
        if (req->query == NULL)
            return CM_ENOMEM;
    }
    return CM_OK;
}

/* The head is parsed: admit or refuse, then read the body or dispatch. */
static void on_head(struct ctl_conn *c, const struct cm_http_head *h, size_t head_len)
{
    struct cm_ctl *ctl = c->ctl;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    int rc;

    c->req.method = h->method;
    c->req.body_len = h->has_length ? h->length : 0;
    /* Refusing a request whose body is coming ends the connection. */
    c->close_after = h->close || c->req.body_len > 0 || h->has_te;
    rc = set_target(&c->req, h->target, h->target_len);
    if (rc != CM_OK) {
        reply_refusal(c, rc == CM_ENOMEM ? 500 : 400, "bad request path");
        return;
    }
    if (h->has_te) {
        reply_refusal(c, 411, "Transfer-Encoding is not accepted; send Content-Length");
        return;
    }
    if (h->expect_other) {
        reply_refusal(c, 417, "only Expect: 100-continue is supported");
        return;
    }
    /* Admission reads the token from the head: drain the head only after. */
    rc = ctl_req_admit(ctl, &c->req, h);
    evbuffer_drain(in, head_len);
    if (rc != 0)
        return; /* answered; a body on its way makes us close */
    c->close_after = h->close;
    if (c->req.body_len == 0) {
        dispatch(c);
        return;
    }
    if (c->req.body_len > ctl->body_max) {
        c->close_after = true;
        cm_ctl_reply_error(&c->req, 413, "request body larger than %zu bytes", ctl->body_max);
        return;
    }
    if (ctl->body_total + c->req.body_len > CM_CTL_BODY_TOTAL) {
        c->close_after = true;
        cm_ctl_reply_header(&c->req, "Retry-After", "1");
        cm_ctl_reply_error(&c->req, 503, "too many request bodies in flight; retry");
        return;
    }
    c->reserved = (size_t)c->req.body_len;
    ctl->body_total += c->reserved;
    cm_buf_init(&c->req.body, c->reserved + 1);
    if (h->expect_continue)
        bufferevent_write(c->bev, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    c->state = CONN_BODY;
    arm_deadline(c, ctl->head_ms + c->req.body_len * 1000 / CTL_BODY_RATE);
    bufferevent_setwatermark(c->bev, EV_READ, 0, 64 * 1024);
    try_body(c);
}

static void try_head(struct ctl_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t len = evbuffer_get_length(in), head_len = 0;
    struct cm_http_head h;
    const char *why = NULL;
    const char *p;
    int rc;

    if (len > CM_CTL_HEAD_MAX)
        len = CM_CTL_HEAD_MAX;
    if (len == 0)
        return;
    p = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
    if (p == NULL)
        return;
    /* Parse only when a new line end arrived: a trickled head costs one scan. */
    if (memchr(p + c->scanned, '\n', len - c->scanned) == NULL) {
        c->scanned = len;
        rc = CM_EAGAIN;
    } else {
        rc = cm_http_head_parse(p, len, &h, &head_len, &why);
        c->scanned = len;
    }
    if (rc == CM_OK) {
        on_head(c, &h, head_len);
    } else if (rc == CM_EPARSE) {
        reply_refusal(c, 400, why);
    } else if (len >= CM_CTL_HEAD_MAX) {
        reply_refusal(c, 431, "request head too large");
    }
}

static void linger_discard(struct ctl_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t n = evbuffer_get_length(in);

    evbuffer_drain(in, n);
    c->discarded += n;
    if (c->discarded > CTL_LINGER_MAX)
        conn_free(c);
}

static void conn_on_input(struct ctl_conn *c)
{
    switch (c->state) {
    case CONN_HEAD:
        try_head(c);
        break;
    case CONN_BODY:
        try_body(c);
        break;
    case CONN_LINGER:
        linger_discard(c);
        break;
    case CONN_REPLY:
        break;
    }
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_on_input(arg);
}

/* The reply is written: next request, or close (lingering where it helps). */
static void write_cb(struct bufferevent *bev, void *arg)
{
    struct ctl_conn *c = arg;
    int fd;

    if (c->state != CONN_REPLY || evbuffer_get_length(bufferevent_get_output(bev)) > 0)
        return;
    if (!c->close_after) {
        cycle_start(c);
        return;
    }
    fd = bufferevent_getfd(bev);
    if (c->is_tls || fd < 0 || shutdown(fd, SHUT_WR) == -1) {
        conn_free(c);
        return;
    }
    c->state = CONN_LINGER;
    release_body(c);
    arm_deadline(c, CTL_LINGER_MS);
    bufferevent_setwatermark(bev, EV_READ, 0, 64 * 1024);
    bufferevent_enable(bev, EV_READ);
    linger_discard(c);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct ctl_conn *c = arg;

    (void)bev;
    if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) != 0)
        conn_free(c);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct ctl_conn *c = arg;

    (void)fd;
    (void)what;
    if (c->state != CONN_LINGER && (c->state != CONN_HEAD || c->scanned > 0))
        c->ctl->timeouts++;
    conn_free(c);
}

/* Makes room for one more connection; false when every slot is busy. */
static bool make_room(struct cm_ctl *ctl)
{
    struct ctl_conn *c;

    if (ctl->conn_count < ctl->conn_max)
        return true;
    TAILQ_FOREACH (c, &ctl->conns, link) {
        if (c->state == CONN_HEAD || c->state == CONN_LINGER) {
            ctl->evicted++;
            conn_free(c);
            return true;
        }
    }
    return false;
}

static void conn_new(struct cm_ctl *ctl, int fd)
{
    struct ctl_conn *c = calloc(1, sizeof(*c));
    SSL *ssl = NULL;

    if (c == NULL)
        goto fail;
    c->ctl = ctl;
    c->req.conn = c;
    cm_buf_init(&c->req.body, 1);
    cm_buf_init(&c->req.headers, 4096);
    if (ctl->ssl != NULL) {
        ssl = SSL_new(ctl->ssl);
        if (ssl != NULL)
            c->bev = bufferevent_openssl_socket_new(ctl->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                    BEV_OPT_CLOSE_ON_FREE);
        c->is_tls = true;
    } else {
        c->bev = bufferevent_socket_new(ctl->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (c->bev == NULL)
        goto fail;
    if (c->is_tls)
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    c->deadline = evtimer_new(ctl->base, deadline_cb, c);
    TAILQ_INSERT_TAIL(&ctl->conns, c, link);
    ctl->conn_count++;
    if (c->deadline == NULL) {
        conn_free(c);
        return;
    }
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    cycle_start(c);
    return;
fail:
    if (ssl != NULL && (c == NULL || c->bev == NULL))
        SSL_free(ssl);
    close(fd);
    if (c != NULL) {
        cm_buf_fini(&c->req.body);
        cm_buf_fini(&c->req.headers);
        free(c);
    }
    cm_log_ratelimited(&ctl->rl, CM_LOG_WARN,
                       "control API: cannot take a connection: out of memory");
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
    struct cm_ctl *ctl = arg;

    (void)what;
    for (int i = 0; i < CTL_ACCEPT_BUDGET; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (fd == -1) {
            /* Out of descriptors, the guard pauses this listener: no spinning. */
            if (cm_accept_guard_error(&ctl->guard, errno))
                continue;
            return;
        }
        cm_accept_guard_ok(&ctl->guard);
        if (!make_room(ctl)) {
            ctl->refused++;
            close(fd);
            continue;
        }
        conn_new(ctl, fd);
    }
}

int ctl_listen_start(struct cm_ctl *ctl, const struct cm_addr *listen, char *err, size_t errlen)
{
    char name[CM_ACCEPT_NAME_MAX];
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    cm_addr_format((const struct sockaddr *)&listen->ss, ctl->listen_text,
                   sizeof(ctl->listen_text));
    ctl->fd = cm_net_listen(listen, SOCK_STREAM, false, CTL_BACKLOG);
    if (ctl->fd < 0) {
        int rc = ctl->fd;

        snprintf(err, errlen, "control.listen %s: %s", ctl->listen_text, cm_strerror(rc));
        return rc;
    }
    /* With port 0 the kernel chose one: name that one in logs. */
    if (getsockname(ctl->fd, (struct sockaddr *)&ss, &len) == 0)
        cm_addr_format((const struct sockaddr *)&ss, ctl->listen_text, sizeof(ctl->listen_text));
    snprintf(name, sizeof(name), "control %s", ctl->listen_text);
    ctl->accept_ev = event_new(ctl->base, ctl->fd, EV_READ | EV_PERSIST, accept_cb, ctl);
    if (ctl->accept_ev == NULL ||
        cm_accept_guard_init_event(&ctl->guard, ctl->base, name, ctl->accept_ev) != CM_OK) {
        snprintf(err, errlen, "control.listen %s: cannot start the listener", ctl->listen_text);
        return CM_ENOMEM;
    }
    ctl->guard_ready = true;
    if (event_add(ctl->accept_ev, NULL) != 0) {
        snprintf(err, errlen, "control.listen %s: cannot start the listener", ctl->listen_text);
        return CM_ENOMEM;
    }
    return CM_OK;
}

void ctl_listen_stop(struct cm_ctl *ctl)
{
    while (ctl->conn_count > 0 && !TAILQ_EMPTY(&ctl->conns))
        conn_free(TAILQ_FIRST(&ctl->conns));
    if (ctl->guard_ready)
        cm_accept_guard_fini(&ctl->guard);
    ctl->guard_ready = false;
    if (ctl->accept_ev != NULL)
        event_free(ctl->accept_ev);
    ctl->accept_ev = NULL;
    if (ctl->fd >= 0)
        close(ctl->fd);
    ctl->fd = -1;
}
