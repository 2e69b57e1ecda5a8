/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lbp_conn.c -- one client connection and its upstream exchange.
 *
 *   HEAD ----> CONNECT ----> EXCHANGE ----> (response done, keep-alive) -> HEAD
 *    |  (idle upstream:       |  request body client->upstream and
 *    |   straight to EXCHANGE)|  response upstream->client, both streamed
 *    |                        +--101--> TUNNEL (raw bytes both ways)
 *    +-- error / timeout / close ------> CLOSING (flush, then free)
 *
 * The next pipelined request is parsed only once the previous response is
 * complete; its bytes wait in the client's input buffer. Bytes move between
 * buffers with lbp_io_move (no copies); each side stops reading
 * while the other side's output is above LBP_HIGH_WM and resumes at
 * LBP_LOW_WM. One timer per connection, whose meaning follows the state.
 */
#include "lbproxy/lbp_conn.h"

#include <arpa/inet.h>
#include <assert.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/ssl.h>

#include "common/cm_err.h"
#include "common/cm_log.h"
#include "common/cm_lpm.h"
#include "common/cm_str.h"
#include "common/cm_time.h"
#include "lbproxy/lbp_alog.h"
#include "lbproxy/lbp_backend.h"
#include "lbproxy/lbp_http.h"
#include "lbproxy/lbp_io.h"
#include "lbproxy/lbp_site.h"
#include "lbproxy/lbp_tls.h"

#define LBP_HIGH_WM  (256u * 1024u)
#define LBP_LOW_WM   (64u * 1024u)
#define LBP_FREE_MAX 1024u
#define LBP_URI_LOG  512u
#define LBP_UA_LOG   256u

enum conn_state {
    CS_HEAD = 1,     /* reading a request head, or idle between requests */
    CS_CONNECT = 2,  /* connecting to the chosen backend */
    CS_EXCHANGE = 3, /* request forwarded; streaming both ways */
    CS_TUNNEL = 4,   /* after 101 Switching Protocols */
    CS_CLOSING = 5,  /* flushing the last bytes to the client, then free */
};

enum conn_timer {
    T_NONE = 0,
    T_HEADER = 1,   /* request head incomplete: 408 */
    T_IDLE = 2,     /* keep-alive idle: close quietly */
    T_CONNECT = 3,  /* upstream connect */
    T_RESPONSE = 4, /* waiting for the response head: 504 */
    T_STREAM = 5,   /* body or tunnel stalled */
    T_CLOSING = 6,  /* flush took too long */
};

struct lbp_conn {
    TAILQ_ENTRY(lbp_conn) link; /* in reg->live or reg->freelist */
    struct lbp_conn_reg *reg;   /* borrowed */
    struct lbp_site *site;      /* reference */
    enum conn_state state;
    enum conn_timer timer_kind;
    struct lbp_io *cli; /* owned */
    struct lbp_io *up;  /* owned, NULL when none */
    struct event timer;
    struct lbp_http_msg req, resp;
    bool msgs_ready;
    struct cm_buf head;     /* forwarded request head (kept for a retry) */
    struct cm_buf out;      /* response head scratch */
    struct lbp_backend *be; /* reference while a request uses it */
    bool be_open;           /* lbp_backend_begin() without end() */
    unsigned attempts;
    bool up_reused, up_eof, up_paused;
    bool cli_paused, cli_eof;
    bool req_done, resp_started, resp_head_done, resp_done, body_sent;
    bool cli_keep, close_after, answered;
    bool tls, trusted, lingering;
    bool tls_done; /* TLS handshake finished (counted once) */
    uint16_t status;
    uint64_t t_start_us, t_sent_us, latency_us;
    uint64_t req_bytes, resp_bytes;
    char client_ip[INET6_ADDRSTRLEN];
    char uri[LBP_URI_LOG];
    char ua[LBP_UA_LOG];
    char referer[LBP_UA_LOG];
};

static void cli_read_cb(struct lbp_io *io, void *arg);
static void cli_write_cb(struct lbp_io *io, void *arg);
static void cli_event_cb(struct lbp_io *io, short what, void *arg);
static void up_read_cb(struct lbp_io *io, void *arg);
static void up_write_cb(struct lbp_io *io, void *arg);
static void up_event_cb(struct lbp_io *io, short what, void *arg);
static void try_head(struct lbp_conn *c);
static void pump_request(struct lbp_conn *c);
static void pump_response(struct lbp_conn *c);
static void connect_upstream(struct lbp_conn *c);

static void timer_set(struct lbp_conn *c, enum conn_timer kind, uint32_t ms)
{
    struct timeval tv = cm_ms_to_timeval(ms);

    c->timer_kind = kind;
    event_add(&c->timer, &tv);
}

static void timer_progress(struct lbp_conn *c)
{
    if (c->timer_kind == T_STREAM)
        timer_set(c, T_STREAM, c->site->to.idle_ms);
    else if (c->timer_kind == T_RESPONSE)
        timer_set(c, T_RESPONSE, c->site->to.response_ms);
}

/* ---- lifetime ------------------------------------------------------------------ */

static void up_free(struct lbp_conn *c)
{
    if (c->up != NULL)
        lbp_io_free(c->up);
    c->up = NULL;
    c->up_eof = false;
    c->up_paused = false;
}

static void be_end(struct lbp_conn *c, enum lbp_outcome o)
{
    if (c->be != NULL && c->be_open)
        lbp_backend_end(c->be, o, c->latency_us);
    c->be_open = false;
}

static void be_release(struct lbp_conn *c)
{
    if (c->be != NULL)
        lbp_backend_unref(c->be);
    c->be = NULL;
}

static void conn_free(struct lbp_conn *c)
{
    struct lbp_conn_reg *reg = c->reg;

    if (c->tls && !c->tls_done)
        c->site->lst->stats.tls_failed++;
    be_end(c, LBP_OUTCOME_ABANDONED);
    be_release(c);
    up_free(c);
    if (c->cli != NULL)
        lbp_io_free(c->cli);
    c->cli = NULL;
    event_del(&c->timer);
    c->site->lst->stats.conns_active--;
    lbp_site_unref(c->site);
    c->site = NULL;
    TAILQ_REMOVE(&reg->live, c, link);
    if (reg->free_count < LBP_FREE_MAX) {
        TAILQ_INSERT_HEAD(&reg->freelist, c, link);
        reg->free_count++;
    } else {
        lbp_http_msg_fini(&c->req);
        lbp_http_msg_fini(&c->resp);
        cm_buf_fini(&c->head);
        cm_buf_fini(&c->out);
        free(c);
    }
    reg->gone(reg->gone_arg);
}

void lbp_conn_reg_init(struct lbp_conn_reg *reg, struct event_base *base, lbp_conn_gone_fn *gone,
                       void *gone_arg)
{
    *reg = (struct lbp_conn_reg){.base = base, .gone = gone, .gone_arg = gone_arg};
    TAILQ_INIT(&reg->live);
    TAILQ_INIT(&reg->freelist);
}

void lbp_conn_reg_fini(struct lbp_conn_reg *reg)
{
    struct lbp_conn *c;

    assert(TAILQ_EMPTY(&reg->live));
    while ((c = TAILQ_FIRST(&reg->freelist)) != NULL) {
        TAILQ_REMOVE(&reg->freelist, c, link);
        lbp_http_msg_fini(&c->req);
        lbp_http_msg_fini(&c->resp);
        cm_buf_fini(&c->head);
        cm_buf_fini(&c->out);
        free(c);
    }
    reg->free_count = 0;
}

void lbp_conn_close(struct lbp_conn *c)
{
    conn_free(c);
}

/*
 * The client may still be sending: request bytes not read yet (an error
 * reply before the body ended, pipelined requests), or a keep-alive client
 * that does not know this response is the last. Unread bytes at close turn
 * it into a reset that can destroy the response on the client's side.
 */
static bool client_may_send(struct lbp_conn *c)
{
    return !c->cli_eof &&
           (c->cli_keep || !c->req_done || evbuffer_get_length(lbp_io_input(c->cli)) > 0);
}

/*
 * Everything is written. If the client may still send, half-close and read
 * (discarding) until it closes or a second passes (lingering close, as
 * nginx's "lingering_close on"); else close now (TLS: close_notify first).
 */
static void closing_flushed(struct lbp_conn *c)
{
    if (c->lingering || !client_may_send(c) || lbp_io_shutdown_wr(c->cli) != CM_OK) {
        conn_free(c);
        return;
    }
    c->lingering = true;
    evbuffer_drain(lbp_io_input(c->cli), evbuffer_get_length(lbp_io_input(c->cli)));
    lbp_io_set_read_max(c->cli, 0);
    lbp_io_read_enable(c->cli, true);
    timer_set(c, T_CLOSING, 1000);
}

/* Flushes what is queued for the client, then frees. */
static void start_closing(struct lbp_conn *c)
{
    be_end(c, LBP_OUTCOME_ABANDONED);
    up_free(c);
    c->state = CS_CLOSING;
    if (lbp_io_output_len(c->cli) == 0) {
        closing_flushed(c);
        return;
    }
    lbp_io_read_enable(c->cli, false);
    lbp_io_set_write_low(c->cli, 0);
    timer_set(c, T_CLOSING, c->site->to.drain_ms > 1000 ? c->site->to.drain_ms : 1000);
}

/* ---- access log and counters -------------------------------------------------- */

static void count_status(struct lbp_conn *c, unsigned status)
{
    struct lbp_lstats *st = &c->site->lst->stats;

    if (status >= 100 && status < 600)
        st->status_class[status / 100]++;
}

static void log_request(struct lbp_conn *c)
{
    struct lbp_alog_entry e;
    char method[16];

    if (c->reg->alog == NULL)
        return;
    cm_strlcpy(method, lbp_http_method(&c->req), sizeof(method));
    e = (struct lbp_alog_entry){
        .client = c->client_ip,
        .listener = c->site->lst->name,
        .member = c->site->member,
        .service = c->site->service,
        .method = method,
        .uri = c->uri,
        .user_agent = c->ua,
        .referer = c->referer,
        .backend = c->be != NULL ? lbp_backend_name(c->be) : "",
        .http_minor = c->req.parser.http_minor,
        .status = c->status,
        .bytes_in = c->req_bytes,
        .bytes_out = c->resp_bytes,
        .duration_us = cm_mono_us() - c->t_start_us,
        .retries = c->attempts > 1 ? c->attempts - 1 : 0,
        .tls = c->tls,
    };
    lbp_alog_write(c->reg->alog, &e);
}

/* The proxy answers by itself (4xx/5xx) and closes. */
static void reply_error(struct lbp_conn *c, uint16_t status)
{
    struct lbp_lstats *st = &c->site->lst->stats;

    if (!c->resp_head_done && !c->answered) {
        c->answered = true;
        c->status = status;
        if (lbp_http_write_error(status, &c->out) == CM_OK) {
            lbp_io_write(c->cli, c->out.data, c->out.len);
            st->bytes_out += c->out.len;
            c->resp_bytes += c->out.len;
        }
        count_status(c, status);
        if (status < 500)
            st->rejected++;
        if (c->t_start_us == 0)
            c->t_start_us = cm_mono_us();
        log_request(c);
    }
    start_closing(c);
}

/* ---- request side -------------------------------------------------------------- */

static void copy_log_fields(struct lbp_conn *c, const char *data)
{
    size_t n = c->req.first_len < sizeof(c->uri) - 1 ? c->req.first_len : sizeof(c->uri) - 1;

    memcpy(c->uri, data + c->req.first_off, n);
    c->uri[n] = '\0';
    c->ua[0] = c->referer[0] = '\0';
    for (uint32_t i = 0; i < c->req.hdr_count; i++) {
        const struct lbp_http_hdr *h = &c->req.hdrs[i];
        char *dst = NULL;

        if (h->name_len == 10 && strncasecmp(data + h->name_off, "user-agent", 10) == 0)
            dst = c->ua;
        else if (h->name_len == 7 && strncasecmp(data + h->name_off, "referer", 7) == 0)
            dst = c->referer;
        if (dst != NULL) {
            n = h->val_len < LBP_UA_LOG - 1 ? h->val_len : LBP_UA_LOG - 1;
            memcpy(dst, data + h->val_off, n);
            dst[n] = '\0';
        }
    }
}

static void start_request(struct lbp_conn *c, const char *data)
{
    struct lbp_site *s = c->site;
    struct lbp_http_fwd fwd = {.client_ip = c->client_ip, .keep_xff = c->trusted, .tls = c->tls};
    struct evbuffer *in = lbp_io_input(c->cli);

    s->lst->stats.requests++;
    c->t_start_us = cm_mono_us();
    c->req_bytes = c->req.head_len;
    s->lst->stats.bytes_in += c->req.head_len;
    c->cli_keep = lbp_http_keep_alive(&c->req) && !c->reg->draining;
    if (c->reg->alog != NULL)
        copy_log_fields(c, data);
    if (lbp_http_write_request(&c->req, data, &fwd, &c->head) != CM_OK) {
        reply_error(c, 431);
        return;
    }
    evbuffer_drain(in, c->req.head_len);
    c->req_done = c->req.message_done;
    c->be = lbp_pool_pick(s->pr->pool, NULL);
    if (c->be == NULL) {
        reply_error(c, 503);
        return;
    }
    c->attempts = 1;
    connect_upstream(c);
}

static void try_head(struct lbp_conn *c)
{
    struct evbuffer *in = lbp_io_input(c->cli);
    size_t len = evbuffer_get_length(in);
    size_t cap = (size_t)c->site->lim.line_max + c->site->lim.header_bytes_max;
    unsigned char *data;
    int rc;

    if (len == 0)
        return;
    if (c->timer_kind == T_IDLE)
        timer_set(c, T_HEADER, c->site->to.header_ms);
    if (len > cap)
        len = cap;
    data = evbuffer_pullup(in, (ev_ssize_t)len);
    if (data == NULL) {
        reply_error(c, 400);
        return;
    }
    rc = lbp_http_head_parse(&c->req, (const char *)data, len);
    if (rc == LBP_HTTP_MORE)
        return;
    if (rc == LBP_HTTP_ERROR) {
        c->site->lst->stats.requests++;
        reply_error(c, c->req.status);
        return;
    }
    event_del(&c->timer);
    c->timer_kind = T_NONE;
    start_request(c, (const char *)data);
}

/* Moves request body bytes while the upstream output has room. */
static void pump_request(struct lbp_conn *c)
{
    struct evbuffer *in = lbp_io_input(c->cli);
    struct evbuffer_iovec v;
    size_t used;
    bool moved = false;
    int rc;

    if (c->req_done || c->up == NULL || c->state != CS_EXCHANGE)
        return;
    while (!c->req_done && lbp_io_output_len(c->up) < LBP_HIGH_WM &&
           evbuffer_peek(in, -1, NULL, &v, 1) > 0) {
        rc = lbp_http_body_feed(&c->req, v.iov_base, v.iov_len, &used);
        if (used > 0) {
            lbp_io_move(c->up, in, used);
            c->req_bytes += used;
            c->site->lst->stats.bytes_in += used;
            c->body_sent = true;
            moved = true;
        }
        if (rc == LBP_HTTP_DONE)
            c->req_done = true;
        else if (rc == LBP_HTTP_ERROR) {
            be_end(c, LBP_OUTCOME_ABANDONED);
            reply_error(c, c->req.status);
            return;
        } else if (used == 0)
            break;
    }
    if (moved)
        timer_progress(c);
    if (!c->req_done && lbp_io_output_len(c->up) >= LBP_HIGH_WM) {
        lbp_io_read_enable(c->cli, false);
        c->cli_paused = true;
    }
}

/* ---- upstream side -------------------------------------------------------------- */

static void finish_exchange(struct lbp_conn *c);

static void send_head(struct lbp_conn *c)
{
    struct lbp_site *s = c->site;

    c->state = CS_EXCHANGE;
    if (!c->be_open) { /* a reused connection; a new one began at connect */
        lbp_backend_begin(c->be);
        c->be_open = true;
    }
    c->t_sent_us = cm_mono_us();
    lbp_http_msg_reset(&c->resp);
    c->resp.skip_body = c->req.parser.method == HTTP_HEAD;
    c->resp_started = c->resp_head_done = c->resp_done = false;
    lbp_io_write(c->up, c->head.data, c->head.len);
    lbp_io_set_write_low(c->up, LBP_LOW_WM);
    lbp_io_set_read_max(c->up, LBP_HIGH_WM);
    lbp_io_setcb(c->up, up_read_cb, up_write_cb, up_event_cb, c);
    lbp_io_read_enable(c->up, true);
    timer_set(c, T_RESPONSE, s->to.response_ms);
    pump_request(c);
}

static void retry_or_fail(struct lbp_conn *c, enum lbp_outcome o);

static void connect_upstream(struct lbp_conn *c)
{
    const struct sockaddr *sa;
    socklen_t salen;
    int rc;

    /* Reuse idle connections only for requests that can be retried: a
     * reset of a reused connection must never lose a POST. */
    if (lbp_http_idempotent(&c->req)) {
        c->up = lbp_backend_idle_take(c->be);
        if (c->up != NULL) {
            c->up_reused = true;
            send_head(c);
            return;
        }
    }
    c->up_reused = false;
    c->state = CS_CONNECT;
    sa = lbp_backend_sockaddr(c->be, &salen);
    lbp_backend_begin(c->be);
    c->be_open = true;
    rc = lbp_io_connect(c->reg->base, sa, salen, &c->up);
    if (rc == CM_ENOMEM) {
        be_end(c, LBP_OUTCOME_ABANDONED);
        reply_error(c, 503);
        return;
    }
    if (rc != CM_OK) {
        retry_or_fail(c, LBP_OUTCOME_CONNECT);
        return;
    }
    lbp_io_setcb(c->up, NULL, NULL, up_event_cb, c);
    timer_set(c, T_CONNECT, c->site->to.connect_ms);
}

/* Connect failure or reset before any response byte. */
static void retry_or_fail(struct lbp_conn *c, enum lbp_outcome o)
{
    struct lbp_backend *next;
    bool reused = c->up_reused;

    up_free(c);
    c->up_reused = false;
    if (reused && o == LBP_OUTCOME_RESET && !c->body_sent) {
        /* The backend closed an idle connection as we reused it: not its
         * fault; try a fresh connection to the same backend. */
        be_end(c, LBP_OUTCOME_ABANDONED);
        connect_upstream(c);
        return;
    }
    be_end(c, o);
    if (c->attempts < 2 && !c->body_sent && !c->resp_started && lbp_http_idempotent(&c->req)) {
        next = lbp_pool_pick(c->site->pr->pool, c->be);
        if (next != NULL) {
            be_release(c);
            c->be = next;
            c->attempts++;
            c->site->lst->stats.retries++;
            connect_upstream(c);
            return;
        }
    }
    reply_error(c, o == LBP_OUTCOME_TIMEOUT ? 504 : 502);
}

static void response_head(struct lbp_conn *c, const char *data)
{
    unsigned status = c->resp.parser.status_code;
    bool http10 = c->req.parser.http_major == 1 && c->req.parser.http_minor == 0;
    bool tunnel = status == 101 && c->req.parser.upgrade;
    bool close;

    c->latency_us = cm_mono_us() - c->t_sent_us;
    if (status >= 100 && status < 200 && !tunnel) {
        /* Interim (100 Continue): forward and wait for the final head. */
        if (!http10 &&
            lbp_http_write_response(&c->resp, data, false, false, false, &c->out) == CM_OK)
            lbp_io_write(c->cli, c->out.data, c->out.len);
        evbuffer_drain(lbp_io_input(c->up), c->resp.head_len);
        lbp_http_msg_reset(&c->resp);
        c->resp.skip_body = c->req.parser.method == HTTP_HEAD;
        return;
    }
    c->resp_head_done = true;
    c->status = (uint16_t)status;
    count_status(c, status);
    close = !c->cli_keep || !c->req_done || lbp_http_until_eof(&c->resp) || c->reg->draining ||
            (c->req.parser.upgrade && !tunnel);
    c->close_after = close;
    if (lbp_http_write_response(&c->resp, data, close, http10 && !close, tunnel, &c->out) !=
        CM_OK) {
        retry_or_fail(c, LBP_OUTCOME_RESET);
        return;
    }
    lbp_io_write(c->cli, c->out.data, c->out.len);
    c->resp_bytes += c->out.len;
    c->site->lst->stats.bytes_out += c->out.len;
    evbuffer_drain(lbp_io_input(c->up), c->resp.head_len);
    timer_set(c, T_STREAM, c->site->to.idle_ms);
    if (tunnel) {
        be_end(c, LBP_OUTCOME_OK);
        c->state = CS_TUNNEL;
        c->close_after = true;
        log_request(c);
        lbp_io_read_enable(c->cli, true);
        c->cli_paused = false;
        cli_read_cb(c->cli, c);
        if (c->state == CS_TUNNEL)
            up_read_cb(c->up, c);
        return;
    }
    pump_response(c);
}

static void pump_response(struct lbp_conn *c)
{
    struct evbuffer *in = lbp_io_input(c->up);
    struct evbuffer_iovec v;
    size_t used;
    bool moved = false;
    int rc;

    while (!c->resp_done && lbp_io_output_len(c->cli) < LBP_HIGH_WM &&
           evbuffer_peek(in, -1, NULL, &v, 1) > 0) {
        rc = lbp_http_body_feed(&c->resp, v.iov_base, v.iov_len, &used);
        if (used > 0) {
            lbp_io_move(c->cli, in, used);
            c->resp_bytes += used;
            c->site->lst->stats.bytes_out += used;
            moved = true;
        }
        if (rc == LBP_HTTP_DONE)
            c->resp_done = true;
        else if (rc == LBP_HTTP_ERROR || used == 0) {
            if (rc == LBP_HTTP_ERROR) {
                be_end(c, LBP_OUTCOME_RESET);
                start_closing(c);
                return;
            }
            break;
        }
    }
    if (moved)
        timer_progress(c);
    if (!c->resp_done && c->up_eof && evbuffer_get_length(in) == 0) {
        if (lbp_http_body_eof(&c->resp) != LBP_HTTP_DONE) {
            be_end(c, LBP_OUTCOME_RESET);
            start_closing(c);
            return;
        }
        c->resp_done = true;
    }
    if (!c->resp_done && lbp_io_output_len(c->cli) >= LBP_HIGH_WM && c->up != NULL) {
        lbp_io_read_enable(c->up, false);
        c->up_paused = true;
    }
    if (c->resp_done && c->req_done)
        finish_exchange(c);
    else if (c->resp_done && !c->req_done)
        start_closing(c); /* answered before the request ended: cannot reuse */
}

static void finish_exchange(struct lbp_conn *c)
{
    struct evbuffer *in;
    bool reuse;

    be_end(c, c->status >= 500 ? LBP_OUTCOME_5XX : LBP_OUTCOME_OK);
    reuse = c->up != NULL && !c->up_eof && lbp_http_keep_alive(&c->resp) &&
            !lbp_http_until_eof(&c->resp) && evbuffer_get_length(lbp_io_input(c->up)) == 0;
    if (reuse) {
        lbp_io_setcb(c->up, NULL, NULL, NULL, NULL);
        lbp_backend_idle_put(c->be, c->up);
        c->up = NULL;
    } else {
        up_free(c);
    }
    log_request(c);
    be_release(c);
    if (c->close_after || c->cli_eof) {
        start_closing(c);
        return;
    }
    /* Next request: its bytes may already be buffered (pipelining). */
    c->state = CS_HEAD;
    lbp_http_msg_reset(&c->req);
    c->req_done = c->resp_started = c->resp_head_done = c->resp_done = c->body_sent = false;
    c->status = 0;
    c->attempts = 0;
    c->answered = false;
    c->t_start_us = 0;
    c->latency_us = 0;
    c->req_bytes = c->resp_bytes = 0;
    if (c->cli_paused) {
        lbp_io_read_enable(c->cli, true);
        c->cli_paused = false;
    }
    in = lbp_io_input(c->cli);
    if (evbuffer_get_length(in) > 0) {
        timer_set(c, T_HEADER, c->site->to.header_ms);
        try_head(c);
    } else {
        timer_set(c, T_IDLE, c->site->to.idle_ms);
    }
}

/* ---- tunnel ---------------------------------------------------------------------- */

static void tunnel_move(struct lbp_conn *c, struct lbp_io *from, struct lbp_io *to)
{
    struct evbuffer *in = lbp_io_input(from);
    size_t n = evbuffer_get_length(in);

    if (n > 0) {
        lbp_io_move(to, in, n);
        timer_progress(c);
    }
    if (lbp_io_output_len(to) >= LBP_HIGH_WM) {
        lbp_io_read_enable(from, false);
        if (from == c->cli)
            c->cli_paused = true;
        else
            c->up_paused = true;
    }
}

/* ---- callbacks ------------------------------------------------------------------- */

static void cli_read_cb(struct lbp_io *io, void *arg)
{
    struct lbp_conn *c = arg;

    (void)io;
    switch (c->state) {
    case CS_HEAD:
        try_head(c);
        break;
    case CS_EXCHANGE:
        pump_request(c);
        break;
    case CS_TUNNEL:
        tunnel_move(c, c->cli, c->up);
        break;
    case CS_CLOSING:
        if (c->lingering)
            evbuffer_drain(lbp_io_input(c->cli), evbuffer_get_length(lbp_io_input(c->cli)));
        break;
    default:
        break;
    }
}

static void cli_write_cb(struct lbp_io *io, void *arg)
{
    struct lbp_conn *c = arg;

    (void)io;
    if (c->state == CS_CLOSING) {
        if (lbp_io_output_len(c->cli) == 0)
            closing_flushed(c);
        return;
    }
    if (c->up_paused && c->up != NULL) {
        c->up_paused = false;
        lbp_io_read_enable(c->up, true);
        if (c->state == CS_TUNNEL)
            tunnel_move(c, c->up, c->cli);
        else if (c->state == CS_EXCHANGE && c->resp_head_done)
            pump_response(c);
    } else if (c->state == CS_EXCHANGE && c->resp_head_done && c->up_eof) {
        pump_response(c);
    }
}

static void cli_event_cb(struct lbp_io *io, short what, void *arg)
{
    struct lbp_conn *c = arg;

    if (what & LBP_IO_CONNECTED) { /* TLS handshake done */
        c->tls_done = true;
        if (lbp_io_tls_resumed(io))
            c->site->lst->stats.tls_resumed++;
        else
            c->site->lst->stats.tls_full++;
        return;
    }
    if ((what & LBP_IO_EOF) && (what & LBP_IO_READING) && c->req_done &&
        (c->state == CS_EXCHANGE || c->state == CS_CONNECT)) {
        /* Half close after a complete request (also while the upstream
         * connect is under way): answer, then close. */
        c->cli_eof = true;
        c->close_after = true;
        lbp_io_read_enable(c->cli, false);
        return;
    }
    if (c->state == CS_HEAD && evbuffer_get_length(lbp_io_input(c->cli)) == 0 &&
        (what & LBP_IO_EOF)) {
        /* The client is done. A response queued in this same loop iteration
         * (its write not run yet) still goes out before the close. */
        c->cli_eof = true;
        if (lbp_io_output_len(c->cli) > 0)
            start_closing(c);
        else
            conn_free(c);
        return;
    }
    if (c->state == CS_TUNNEL && (what & LBP_IO_EOF) && c->up != NULL) {
        tunnel_move(c, c->cli, c->up);
        lbp_io_write_now(c->up);
    }
    be_end(c, LBP_OUTCOME_ABANDONED);
    conn_free(c);
}

static void up_read_cb(struct lbp_io *io, void *arg)
{
    struct lbp_conn *c = arg;
    struct evbuffer *in = lbp_io_input(io);
    size_t cap = (size_t)c->site->lim.line_max + c->site->lim.header_bytes_max, len;
    unsigned char *data;
    int rc;

    if (c->state == CS_TUNNEL) {
        tunnel_move(c, c->up, c->cli);
        return;
    }
    if (c->state != CS_EXCHANGE)
        return;
    while (!c->resp_head_done && c->state == CS_EXCHANGE && c->up != NULL) {
        len = evbuffer_get_length(in);
        if (len == 0)
            return;
        c->resp_started = c->resp_started || len > 0;
        if (len > cap)
            len = cap;
        data = evbuffer_pullup(in, (ev_ssize_t)len);
        rc = lbp_http_head_parse(&c->resp, (const char *)data, len);
        if (rc == LBP_HTTP_MORE)
            return;
        if (rc == LBP_HTTP_ERROR) {
            be_end(c, LBP_OUTCOME_RESET);
            c->resp_started = false;
            reply_error(c, 502);
            return;
        }
        response_head(c, (const char *)data);
        return;
    }
    if (c->state == CS_EXCHANGE)
        pump_response(c);
}

static void up_write_cb(struct lbp_io *io, void *arg)
{
    struct lbp_conn *c = arg;

    (void)io;
    if (!c->cli_paused)
        return;
    c->cli_paused = false;
    lbp_io_read_enable(c->cli, true);
    if (c->state == CS_TUNNEL)
        tunnel_move(c, c->cli, c->up);
    else
        pump_request(c);
}

static void up_event_cb(struct lbp_io *io, short what, void *arg)
{
    struct lbp_conn *c = arg;

    (void)io;
    if (what & LBP_IO_CONNECTED) {
        event_del(&c->timer);
        send_head(c);
        return;
    }
    if (c->state == CS_CONNECT) {
        retry_or_fail(c, LBP_OUTCOME_CONNECT);
        return;
    }
    if (c->state == CS_TUNNEL) {
        tunnel_move(c, c->up, c->cli);
        c->close_after = true;
        start_closing(c);
        return;
    }
    if (c->state != CS_EXCHANGE)
        return;
    if (!c->resp_started && evbuffer_get_length(lbp_io_input(c->up)) == 0) {
        retry_or_fail(c, LBP_OUTCOME_RESET);
        return;
    }
    if (c->resp_head_done && (what & LBP_IO_EOF)) {
        c->up_eof = true;
        lbp_io_read_enable(c->up, false);
        pump_response(c);
        return;
    }
    be_end(c, LBP_OUTCOME_RESET);
    if (!c->resp_head_done) {
        c->resp_started = false;
        reply_error(c, 502);
        return;
    }
    start_closing(c);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct lbp_conn *c = arg;
    enum conn_timer kind = c->timer_kind;

    (void)fd;
    (void)what;
    c->timer_kind = T_NONE;
    switch (kind) {
    case T_HEADER:
        c->site->lst->stats.timeouts++;
        if (evbuffer_get_length(lbp_io_input(c->cli)) > 0 || c->req.parsed > 0) {
            c->site->lst->stats.requests++;
            reply_error(c, 408);
        } else {
            conn_free(c);
        }
        break;
    case T_IDLE:
    case T_CLOSING:
        conn_free(c);
        break;
    case T_CONNECT:
        retry_or_fail(c, LBP_OUTCOME_CONNECT);
        break;
    case T_RESPONSE:
        c->site->lst->stats.timeouts++;
        if (c->resp_head_done) {
            be_end(c, LBP_OUTCOME_TIMEOUT);
            start_closing(c);
        } else {
            be_end(c, LBP_OUTCOME_TIMEOUT);
            up_free(c);
            reply_error(c, 504);
        }
        break;
    case T_STREAM:
        c->site->lst->stats.timeouts++;
        be_end(c, LBP_OUTCOME_TIMEOUT);
        start_closing(c);
        break;
    default:
        break;
    }
}

/* ---- accept and drain ------------------------------------------------------------- */

static struct lbp_conn *conn_get(struct lbp_conn_reg *reg, const struct lbp_site *s)
{
    struct lbp_conn *c = TAILQ_FIRST(&reg->freelist);

    if (c != NULL) {
        TAILQ_REMOVE(&reg->freelist, c, link);
        reg->free_count--;
        if (c->req.lim.header_count_max == s->lim.header_count_max) {
            c->req.lim = s->lim;
            c->resp.lim = s->lim;
            c->resp.lim.body_max = UINT64_MAX;
            lbp_http_msg_reset(&c->req);
            lbp_http_msg_reset(&c->resp);
            return c;
        }
        lbp_http_msg_fini(&c->req);
        lbp_http_msg_fini(&c->resp);
        cm_buf_fini(&c->head);
        cm_buf_fini(&c->out);
        free(c);
    }
    return NULL;
}

static struct lbp_conn *conn_alloc(struct lbp_conn_reg *reg, const struct lbp_site *s)
{
    struct lbp_conn *c = conn_get(reg, s);
    struct lbp_http_limits rl = s->lim;

    if (c != NULL) {
        struct lbp_http_msg req = c->req, resp = c->resp;
        struct cm_buf head = c->head, out = c->out;

        memset(c, 0, sizeof(*c));
        c->req = req;
        c->resp = resp;
        c->head = head;
        c->out = out;
        return c;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    rl.body_max = UINT64_MAX;
    if (lbp_http_msg_init(&c->req, HTTP_REQUEST, &s->lim) != CM_OK ||
        lbp_http_msg_init(&c->resp, HTTP_RESPONSE, &rl) != CM_OK) {
        lbp_http_msg_fini(&c->req);
        lbp_http_msg_fini(&c->resp);
        free(c);
        return NULL;
    }
    cm_buf_init(&c->head, (size_t)s->lim.line_max + s->lim.header_bytes_max + 4096);
    cm_buf_init(&c->out, (size_t)s->lim.line_max + s->lim.header_bytes_max + 4096);
    return c;
}

static void client_address(struct lbp_conn *c, const struct sockaddr *sa)
{
    struct lbp_site *s = c->site;
    struct cm_lpm_result r;
    const uint8_t *a = NULL;
    int fam = sa->sa_family;

    cm_ip_format(sa, c->client_ip, sizeof(c->client_ip));
    if (fam == AF_INET)
        a = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    else if (fam == AF_INET6)
        a = (const uint8_t *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    c->trusted = s->trusted != NULL && a != NULL &&
                 cm_lpm_lookup(s->trusted, fam, a, fam == AF_INET ? 32 : 128, &r);
}

int lbp_conn_accept(struct lbp_conn_reg *reg, struct lbp_site *site, int fd,
                    const struct sockaddr *sa, int salen)
{
    struct lbp_conn *c = conn_alloc(reg, site);
    int one = 1;

    (void)salen;
    if (c == NULL) {
        close(fd);
        reg->gone(reg->gone_arg); /* the owner counted it */
        return CM_ENOMEM;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->reg = reg;
    c->site = site;
    lbp_site_ref(site);
    c->tls = site->tls != NULL;
    client_address(c, sa);
    if (c->tls) {
        SSL *ssl = lbp_tls_new_ssl(site->tls);

        c->cli = ssl == NULL ? NULL : lbp_io_new_tls(reg->base, fd, ssl);
        if (c->cli == NULL && ssl != NULL)
            SSL_free(ssl);
    } else {
        c->cli = lbp_io_new(reg->base, fd);
    }
    TAILQ_INSERT_TAIL(&reg->live, c, link);
    site->lst->stats.conns_total++;
    site->lst->stats.conns_active++;
    event_assign(&c->timer, reg->base, -1, 0, timer_cb, c);
    if (c->cli == NULL) {
        close(fd);
        conn_free(c);
        return CM_ENOMEM;
    }
    c->state = CS_HEAD;
    lbp_io_setcb(c->cli, cli_read_cb, cli_write_cb, cli_event_cb, c);
    lbp_io_set_read_max(c->cli, (size_t)site->lim.line_max + site->lim.header_bytes_max + 16384);
    lbp_io_set_write_low(c->cli, LBP_LOW_WM);
    timer_set(c, T_HEADER, site->to.header_ms);
    return CM_OK;
}

struct lbp_conn *lbp_conn_next(struct lbp_conn *c)
{
    return TAILQ_NEXT(c, link);
}

void lbp_conn_drain(struct lbp_conn *c)
{
    if (c->state == CS_HEAD && evbuffer_get_length(lbp_io_input(c->cli)) == 0) {
        conn_free(c);
        return;
    }
    c->cli_keep = false;
    c->close_after = true;
}
