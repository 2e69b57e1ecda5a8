/* SPDX-License-Identifier: Apache-2.0 */
/* lbp_http.c -- HTTP/1.x framing on libhttp-parser; see lbp_http.h. */
#include "lbproxy/lbp_http.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/cm_err.h"

/* ---- parser callbacks ---------------------------------------------------- */

static struct lbp_http_msg *msg_of(http_parser *p)
{
    return p->data;
}

static int on_first(http_parser *p, const char *at, size_t len)
{
    struct lbp_http_msg *m = msg_of(p);
    uint32_t off = (uint32_t)(at - m->base);

    if (m->first_len == 0)
        m->first_off = off;
    m->first_len = off + (uint32_t)len - m->first_off;
    if (m->first_len > m->lim.line_max) {
        m->status = p->type == HTTP_REQUEST ? 414 : 502;
        return 1;
    }
    return 0;
}

/* The request or status line ended before @off (its CRLF included). */
static int line_end(http_parser *p, uint32_t off)
{
    struct lbp_http_msg *m = msg_of(p);

    m->line_done = true;
    m->line_len = off >= 2 ? off - 2 : 0;
    if (m->line_len > m->lim.line_max) {
        m->status = p->type == HTTP_REQUEST ? 414 : 502;
        return 1;
    }
    return 0;
}

static int on_field(http_parser *p, const char *at, size_t len)
{
    struct lbp_http_msg *m = msg_of(p);
    uint32_t off;
    struct lbp_http_hdr *h;

    if (m->headers_done)
        return 0; /* trailer fields: passed through with the chunked body */
    off = (uint32_t)(at - m->base);
    if (!m->line_done && line_end(p, off) != 0)
        return 1;
    if (m->hdr_count == 0 || m->in_value) {
        if (m->hdr_count >= m->lim.header_count_max) {
            m->status = p->type == HTTP_REQUEST ? 431 : 502;
            return 1;
        }
        h = &m->hdrs[m->hdr_count++];
        memset(h, 0, sizeof(*h));
        h->name_off = off;
        m->in_value = false;
    }
    h = &m->hdrs[m->hdr_count - 1];
    h->name_len = off + (uint32_t)len - h->name_off;
    return 0;
}

static int on_value(http_parser *p, const char *at, size_t len)
{
    struct lbp_http_msg *m = msg_of(p);
    uint32_t off;
    struct lbp_http_hdr *h;

    if (m->hdr_count == 0 || m->headers_done)
        return 0;
    off = (uint32_t)(at - m->base);
    h = &m->hdrs[m->hdr_count - 1];
    if (!m->in_value) {
        h->val_off = off;
        m->in_value = true;
    }
    h->val_len = off + (uint32_t)len - h->val_off;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    struct lbp_http_msg *m = msg_of(p);

    unsigned status = p->status_code;

    m->headers_done = true;
    http_parser_pause(p, 1);
    /* 1xx, 204 and 304 end with their head whatever their framing headers
     * say (RFC 9112 section 6.3); so does the answer to HEAD. */
    if (p->type == HTTP_RESPONSE && (status / 100 == 1 || status == 204 || status == 304))
        return 1;
    return m->skip_body ? 1 : 0;
}

/*
 * The CRLF that must follow chunk data: libhttp-parser (non-strict, as
 * Debian builds it) skips those two bytes unchecked, and a backend that reads
 * them differently would frame the body differently. @q .. m->feed_end are
 * the bytes after the data that are at hand; the rest is checked at the start
 * of the next lbp_http_body_feed().
 */
static bool chunk_crlf(struct lbp_http_msg *m, const char *q)
{
    while (m->crlf_left > 0 && q < m->feed_end) {
        if (*q++ != "\r\n"[2 - m->crlf_left])
            return false;
        m->crlf_left--;
    }
    return true;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct lbp_http_msg *m = msg_of(p);

    m->body_bytes += len;
    if (m->body_bytes > m->lim.body_max) {
        m->status = 413;
        return 1;
    }
    if ((p->flags & F_CHUNKED) && p->content_length == 0 && m->feed_end != NULL) {
        m->crlf_left = 2;
        if (!chunk_crlf(m, at + len)) {
            m->status = p->type == HTTP_REQUEST ? 400 : 502;
            return 1;
        }
    }
    return 0;
}

static int on_message_complete(http_parser *p)
{
    struct lbp_http_msg *m = msg_of(p);

    m->message_done = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings head_settings = {
    .on_url = on_first,
    .on_status = on_first,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- lifecycle --------------------------------------------------------------- */

int lbp_http_msg_init(struct lbp_http_msg *m, enum http_parser_type type,
                      const struct lbp_http_limits *lim)
{
    memset(m, 0, sizeof(*m));
    m->lim = *lim;
    m->hdrs = calloc(lim->header_count_max + 1, sizeof(*m->hdrs));
    if (m->hdrs == NULL)
        return CM_ENOMEM;
    http_parser_init(&m->parser, type);
    m->parser.data = m;
    return CM_OK;
}

void lbp_http_msg_fini(struct lbp_http_msg *m)
{
    free(m->hdrs);
    m->hdrs = NULL;
}

void lbp_http_msg_reset(struct lbp_http_msg *m)
{
    enum http_parser_type type = (enum http_parser_type)m->parser.type;
    struct lbp_http_hdr *hdrs = m->hdrs;
    struct lbp_http_limits lim = m->lim;

    memset(m, 0, sizeof(*m));
    m->hdrs = hdrs;
    m->lim = lim;
    http_parser_init(&m->parser, type);
    m->parser.data = m;
}

/* ---- header analysis ----------------------------------------------------------- */

static bool name_is(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);

    return len == n && strncasecmp(s, lit, n) == 0;
}

static uint8_t classify(const char *s, size_t len)
{
    static const struct {
        const char *name;
        uint8_t kind;
    } names[] = {
        {"connection", LBP_H_CONNECTION},
        {"keep-alive", LBP_H_KEEP_ALIVE},
        {"te", LBP_H_TE},
        {"trailer", LBP_H_TRAILER},
        {"transfer-encoding", LBP_H_TRANSFER_ENCODING},
        {"upgrade", LBP_H_UPGRADE},
        {"content-length", LBP_H_CONTENT_LENGTH},
        {"x-forwarded-for", LBP_H_XFF},
        {"x-forwarded-proto", LBP_H_XFP},
        {"expect", LBP_H_EXPECT},
        {"host", LBP_H_HOST},
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (name_is(s, len, names[i].name))
            return names[i].kind;
    }
    if (len >= 6 && strncasecmp(s, "proxy-", 6) == 0)
        return LBP_H_PROXY_ANY;
    return LBP_H_OTHER;
}

/* Calls @fn for each comma-separated token of a header value, trimmed. */
typedef void token_fn(struct lbp_http_msg *m, const char *data, const char *tok, size_t len);

static void each_token(struct lbp_http_msg *m, const char *data, const struct lbp_http_hdr *h,
                       token_fn *fn)
{
    const char *v = data + h->val_off, *end = v + h->val_len;

    while (v < end) {
        const char *t = v, *e;

        while (t < end && (*t == ' ' || *t == '\t' || *t == ','))
            t++;
        e = t;
        while (e < end && *e != ',')
            e++;
        v = e;
        while (e > t && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > t)
            fn(m, data, t, (size_t)(e - t));
    }
}

/* A Connection token: a flag, or the name of another hop-by-hop header. */
static void connection_token(struct lbp_http_msg *m, const char *data, const char *tok, size_t len)
{
    if (name_is(tok, len, "close")) {
        m->conn_close = true;
    } else if (name_is(tok, len, "keep-alive")) {
        m->conn_keep_alive = true;
    } else if (name_is(tok, len, "upgrade")) {
        m->conn_upgrade = true;
    } else {
        for (uint32_t i = 0; i < m->hdr_count; i++) {
            struct lbp_http_hdr *h = &m->hdrs[i];

            if (h->name_len == len && strncasecmp(data + h->name_off, tok, len) == 0 &&
                h->kind != LBP_H_HOST && h->kind != LBP_H_CONTENT_LENGTH &&
                h->kind != LBP_H_TRANSFER_ENCODING)
                h->hop = true;
        }
    }
}

static void expect_token(struct lbp_http_msg *m, const char *data, const char *tok, size_t len)
{
    (void)data;
    if (name_is(tok, len, "100-continue"))
        m->expect_continue = true;
}

/* tchar (RFC 9110 section 5.6.2): what a field name is made of. */
static bool is_tchar(unsigned char c)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";

    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && memchr(extra, c, sizeof(extra) - 1) != NULL);
}

/*
 * A field line the parser let through but a strict peer would read
 * differently: a name with anything but tchar (whitespace before the colon,
 * RFC 9112 section 5.1), or a value holding CR or LF (obs-fold, section 5.2).
 * Rejected rather than repaired.
 */
static bool field_ok(const char *data, const struct lbp_http_hdr *h)
{
    const unsigned char *n = (const unsigned char *)data + h->name_off;

    if (h->name_len == 0)
        return false;
    for (uint32_t i = 0; i < h->name_len; i++) {
        if (!is_tchar(n[i]))
            return false;
    }
    return memchr(data + h->val_off, '\n', h->val_len) == NULL &&
           memchr(data + h->val_off, '\r', h->val_len) == NULL;
}

/* Marks hop-by-hop headers and reads the framing ones; false on smuggling shapes. */
static bool analyze(struct lbp_http_msg *m, const char *data)
{
    unsigned hosts = 0;

    for (uint32_t i = 0; i < m->hdr_count; i++) {
        struct lbp_http_hdr *h = &m->hdrs[i];

        if (!field_ok(data, h))
            return false;
        h->kind = classify(data + h->name_off, h->name_len);
        switch (h->kind) {
        case LBP_H_CONNECTION:
        case LBP_H_KEEP_ALIVE:
        case LBP_H_PROXY_ANY:
        case LBP_H_TE:
        case LBP_H_TRAILER:
        case LBP_H_UPGRADE:
            h->hop = true;
            break;
        case LBP_H_TRANSFER_ENCODING:
            m->te_count++;
            break;
        case LBP_H_CONTENT_LENGTH:
            m->cl_count++;
            break;
        case LBP_H_XFF:
            m->xff_count++;
            break;
        case LBP_H_HOST:
            hosts++;
            break;
        default:
            break;
        }
    }
    for (uint32_t i = 0; i < m->hdr_count; i++) {
        if (m->hdrs[i].kind == LBP_H_CONNECTION)
            each_token(m, data, &m->hdrs[i], connection_token);
        else if (m->hdrs[i].kind == LBP_H_EXPECT)
            each_token(m, data, &m->hdrs[i], expect_token);
    }
    if (m->cl_count > 1 || (m->cl_count > 0 && m->te_count > 0) || m->te_count > 1)
        return false;
    /* Three digits (RFC 9112 section 4); the parser takes fewer. */
    if (m->parser.type == HTTP_RESPONSE && m->parser.status_code < 100)
        return false;
    /* HTTP/1.1 requests name exactly one host (RFC 9112 section 3.2). */
    if (m->parser.type == HTTP_REQUEST &&
        (hosts > 1 || (hosts == 0 && m->parser.http_major == 1 && m->parser.http_minor >= 1)))
        return false;
    return true;
}

/* ---- parsing ------------------------------------------------------------------ */

static int fail(struct lbp_http_msg *m, uint16_t status)
{
    if (m->status == 0)
        m->status = status;
    return LBP_HTTP_ERROR;
}

static uint16_t bad_status(const struct lbp_http_msg *m)
{
    return m->parser.type == HTTP_REQUEST ? 400 : 502;
}

int lbp_http_head_parse(struct lbp_http_msg *m, const char *data, size_t len)
{
    size_t cap = (size_t)m->lim.line_max + m->lim.header_bytes_max, feed, n;

    if (m->status != 0)
        return LBP_HTTP_ERROR;
    if (len <= m->parsed)
        return LBP_HTTP_MORE;
    feed = (len < cap ? len : cap) - (m->parsed < cap ? m->parsed : cap);
    m->base = data;
    n = http_parser_execute(&m->parser, &head_settings, data + m->parsed, feed);
    m->parsed += n;
    if (HTTP_PARSER_ERRNO(&m->parser) == HPE_PAUSED && m->headers_done) {
        /* Paused in on_headers_complete before its final LF: take that byte
         * too, which may also complete a message without a body. */
        http_parser_pause(&m->parser, 0);
        if (m->parsed >= len)
            return fail(m, bad_status(m));
        n = http_parser_execute(&m->parser, &head_settings, data + m->parsed, 1);
        m->parsed += n;
        if (n != 1 || (HTTP_PARSER_ERRNO(&m->parser) != HPE_OK &&
                       HTTP_PARSER_ERRNO(&m->parser) != HPE_PAUSED))
            return fail(m, bad_status(m));
        if (HTTP_PARSER_ERRNO(&m->parser) == HPE_PAUSED)
            http_parser_pause(&m->parser, 0);
        m->head_len = (uint32_t)m->parsed;
        if (!m->line_done && line_end(&m->parser, m->head_len - 2) != 0)
            return fail(m, m->status);
        if (!analyze(m, data))
            return fail(m, bad_status(m));
        if (m->parser.type == HTTP_REQUEST && m->parser.content_length != ULLONG_MAX &&
            m->parser.content_length > m->lim.body_max)
            return fail(m, 413);
        if (m->parser.type == HTTP_REQUEST && m->parser.method == HTTP_CONNECT)
            return fail(m, 405);
        m->base = NULL;
        return LBP_HTTP_DONE;
    }
    m->base = NULL;
    if (HTTP_PARSER_ERRNO(&m->parser) != HPE_OK)
        return fail(m, bad_status(m));
    if (m->parsed >= cap || (!m->line_done && m->parsed > (size_t)m->lim.line_max + 2))
        return fail(m, !m->line_done && m->parser.type == HTTP_REQUEST
                           ? (m->first_len > 0 ? 414 : 400)
                           : (m->parser.type == HTTP_REQUEST ? 431 : 502));
    return LBP_HTTP_MORE;
}

int lbp_http_body_feed(struct lbp_http_msg *m, const char *data, size_t len, size_t *consumed)
{
    size_t n;

    *consumed = 0;
    if (m->message_done)
        return LBP_HTTP_DONE;
    if (len == 0)
        return LBP_HTTP_MORE;
    m->feed_end = data + len;
    if (m->crlf_left > 0 && !chunk_crlf(m, data)) {
        m->feed_end = NULL;
        return fail(m, bad_status(m));
    }
    n = http_parser_execute(&m->parser, &head_settings, data, len);
    m->feed_end = NULL;
    *consumed = n;
    if (m->message_done) {
        http_parser_pause(&m->parser, 0);
        return LBP_HTTP_DONE;
    }
    if (HTTP_PARSER_ERRNO(&m->parser) != HPE_OK)
        return fail(m, bad_status(m));
    return LBP_HTTP_MORE;
}

int lbp_http_body_eof(struct lbp_http_msg *m)
{
    if (m->message_done)
        return LBP_HTTP_DONE;
    http_parser_execute(&m->parser, &head_settings, NULL, 0);
    if (m->message_done) {
        http_parser_pause(&m->parser, 0);
        return LBP_HTTP_DONE;
    }
    return fail(m, bad_status(m));
}

const char *lbp_http_method(const struct lbp_http_msg *m)
{
    return http_method_str((enum http_method)m->parser.method);
}

bool lbp_http_idempotent(const struct lbp_http_msg *m)
{
    switch (m->parser.method) {
    case HTTP_GET:
    case HTTP_HEAD:
    case HTTP_OPTIONS:
    case HTTP_PUT:
    case HTTP_DELETE:
    case HTTP_TRACE:
        return true;
    default:
        return false;
    }
}

bool lbp_http_has_body(const struct lbp_http_msg *m)
{
    return !m->message_done;
}

bool lbp_http_keep_alive(const struct lbp_http_msg *m)
{
    if (m->conn_close)
        return false;
    if (m->parser.http_major == 1 && m->parser.http_minor == 0)
        return m->conn_keep_alive;
    return m->parser.http_major == 1;
}

bool lbp_http_until_eof(const struct lbp_http_msg *m)
{
    const http_parser *p = &m->parser;
    unsigned status = p->status_code;

    if (p->type != HTTP_RESPONSE || m->skip_body || (status >= 100 && status < 200) ||
        status == 204 || status == 304 || (p->flags & F_CHUNKED))
        return false;
    return p->content_length == ULLONG_MAX;
}

/* ---- writing ------------------------------------------------------------------ */

static int put_header(struct cm_buf *out, const char *data, const struct lbp_http_hdr *h)
{
    int rc = cm_buf_append(out, data + h->name_off, h->name_len);

    rc = rc != CM_OK ? rc : cm_buf_append(out, ": ", 2);
    rc = rc != CM_OK ? rc : cm_buf_append(out, data + h->val_off, h->val_len);
    return rc != CM_OK ? rc : cm_buf_append(out, "\r\n", 2);
}

/* The X-Forwarded-For line: trusted incoming values, then the client. */
static int put_xff(const struct lbp_http_msg *m, const char *data, const struct lbp_http_fwd *fwd,
                   struct cm_buf *out)
{
    int rc = cm_buf_append_str(out, "X-Forwarded-For: ");

    for (uint32_t i = 0; fwd->keep_xff && i < m->hdr_count && rc == CM_OK; i++) {
        const struct lbp_http_hdr *h = &m->hdrs[i];

        if (h->kind != LBP_H_XFF || h->val_len == 0)
            continue;
        rc = cm_buf_append(out, data + h->val_off, h->val_len);
        rc = rc != CM_OK ? rc : cm_buf_append(out, ", ", 2);
    }
    rc = rc != CM_OK ? rc : cm_buf_append_str(out, fwd->client_ip);
    return rc != CM_OK ? rc : cm_buf_append(out, "\r\n", 2);
}

int lbp_http_write_request(const struct lbp_http_msg *m, const char *data,
                           const struct lbp_http_fwd *fwd, struct cm_buf *out)
{
    bool http10 = m->parser.http_major == 1 && m->parser.http_minor == 0;
    bool upgrade = m->parser.upgrade && m->conn_upgrade;
    int rc;

    cm_buf_reset(out);
    rc = cm_buf_append_str(out, lbp_http_method(m));
    rc = rc != CM_OK ? rc : cm_buf_append(out, " ", 1);
    rc = rc != CM_OK ? rc : cm_buf_append(out, data + m->first_off, m->first_len);
    rc = rc != CM_OK ? rc : cm_buf_append_str(out, http10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
    for (uint32_t i = 0; i < m->hdr_count && rc == CM_OK; i++) {
        const struct lbp_http_hdr *h = &m->hdrs[i];

        if (h->kind == LBP_H_XFF || h->kind == LBP_H_XFP)
            continue;
        if (h->hop && !(upgrade && h->kind == LBP_H_UPGRADE))
            continue;
        rc = put_header(out, data, h);
    }
    rc = rc != CM_OK ? rc : put_xff(m, data, fwd, out);
    rc = rc != CM_OK ? rc
                     : cm_buf_append_str(out, fwd->tls ? "X-Forwarded-Proto: https\r\n"
                                                       : "X-Forwarded-Proto: http\r\n");
    rc = rc != CM_OK ? rc : cm_buf_append_str(out, "Via: 1.1 fedgslb-proxy\r\n");
    if (rc == CM_OK && upgrade)
        rc = cm_buf_append_str(out, "Connection: upgrade\r\n");
    else if (rc == CM_OK && http10)
        rc = cm_buf_append_str(out, "Connection: keep-alive\r\n");
    return rc != CM_OK ? rc : cm_buf_append(out, "\r\n", 2);
}

int lbp_http_write_response(const struct lbp_http_msg *m, const char *data, bool close,
                            bool keep_alive10, bool tunnel, struct cm_buf *out)
{
    unsigned status = m->parser.status_code; /* 100..999: the parser takes 3 digits */
    char line[13] = "HTTP/1.1 000 ";
    int rc;

    line[9] = (char)('0' + status / 100 % 10);
    line[10] = (char)('0' + status / 10 % 10);
    line[11] = (char)('0' + status % 10);
    cm_buf_reset(out);
    rc = cm_buf_append(out, line, sizeof(line));
    rc = rc != CM_OK ? rc : cm_buf_append(out, data + m->first_off, m->first_len);
    rc = rc != CM_OK ? rc : cm_buf_append(out, "\r\n", 2);
    for (uint32_t i = 0; i < m->hdr_count && rc == CM_OK; i++) {
        const struct lbp_http_hdr *h = &m->hdrs[i];

        if (h->hop && !(tunnel && h->kind == LBP_H_UPGRADE))
            continue;
        rc = put_header(out, data, h);
    }
    if (rc == CM_OK && tunnel)
        rc = cm_buf_append_str(out, "Connection: upgrade\r\n");
    else if (rc == CM_OK && close)
        rc = cm_buf_append_str(out, "Connection: close\r\n");
    else if (rc == CM_OK && keep_alive10)
        rc = cm_buf_append_str(out, "Connection: keep-alive\r\n");
    return rc != CM_OK ? rc : cm_buf_append(out, "\r\n", 2);
}

const char *lbp_http_reason(uint16_t status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Error";
    }
}

int lbp_http_write_error(uint16_t status, struct cm_buf *out)
{
    const char *reason = lbp_http_reason(status);

    cm_buf_reset(out);
    return cm_buf_printf(out,
                         "HTTP/1.1 %u %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                         "Connection: close\r\nVia: 1.1 fedgslb-proxy\r\n\r\n%u %s\n",
                         (unsigned)status, reason, strlen(reason) + 5, (unsigned)status, reason);
}
