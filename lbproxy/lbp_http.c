/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lbp_http.c -- HTTP/1.x framing on libhttp-parser; see lbp_http.h.
 *
 * Request smuggling defence. The system libhttp-parser (2.9, built
 * non-strict) accepts a bare LF where CRLF is due in most places: after the
 * request line, header lines, chunk-size lines and trailers, and skips the two
 * bytes after chunk data unchecked. A proxy that forwards what such a parser
 * accepted lets a backend that frames differently (one that ends chunk lines
 * at LF, say) see a request the proxy never saw. So the proxy only forwards
 * bytes whose framing every HTTP/1.1 implementation reads the same way:
 *
 * - head: every line of the head ends in exactly CRLF (a bare LF, or a CR
 *   followed by anything but LF, anywhere in it is refused); field names are
 *   tchar, values have no CTL but HTAB; one Host; Content-Length is one
 *   value of 1*DIGIT; Transfer-Encoding is one header line whose codings are
 *   tokens ending in one "chunked" (requests: known codings only), never
 *   with Content-Length and never in HTTP/1.0; a request target in absolute
 *   form is forwarded in origin form with Host taken from its authority
 *   (RFC 9112 section 3.2.2).
 * - chunked body: checked by our own byte-by-byte state machine (struct
 *   lbp_chunk), not by the parser: chunk-size lines with their extensions
 *   (at most LBP_CHUNK_LINE_MAX bytes, at most LBP_CHUNK_DIGITS_MAX hex
 *   digits), the CRLF after each chunk's data, and trailer lines (field-line
 *   syntax, no obs-fold, no framing or hop-by-hop fields) all end in CRLF.
 *
 * We verify and pass the chunked bytes through rather than de-chunk and
 * re-frame: the body is moved between buffers without copies (lbp_io_move),
 * the state machine is about 150 lines and needs no output buffer, and a
 * message that passes it has one reading only, so re-framing would buy
 * nothing. Whatever fails gets 400 (502 from a backend) and the connection
 * closes; bytes of a failing body_feed() call are not forwarded. The same
 * rules apply to responses, whose desync would poison the upstream pool.
 */
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
        return 0; /* defensive: chunked bodies and their trailers never reach the parser */
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

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct lbp_http_msg *m = msg_of(p);

    (void)at;
    m->body_bytes += len;
    if (m->body_bytes > m->lim.body_max) {
        m->status = 413;
        return 1;
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

/* field-vchar, SP or HTAB (RFC 9110 section 5.5): any byte but the CTLs other than HTAB. */
static bool is_field_char(unsigned char c)
{
    return c == '\t' || (c >= ' ' && c != 0x7f);
}

static bool all_field_chars(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!is_field_char((unsigned char)s[i]))
            return false;
    }
    return true;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/*
 * A field line the parser let through but a strict peer would read
 * differently: a name with anything but tchar (whitespace before the colon,
 * RFC 9112 section 5.1), or a value holding a CTL other than HTAB: CR or LF
 * (obs-fold, section 5.2), NUL, vertical tab, form feed, which parsers split
 * or trim differently. Rejected rather than repaired.
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
    return all_field_chars(data + h->val_off, h->val_len);
}

/* The value of @h without the optional whitespace around it. */
static void trimmed_value(const char *data, const struct lbp_http_hdr *h, const char **v,
                          size_t *len)
{
    const char *s = data + h->val_off, *e = s + h->val_len;

    while (s < e && is_ows(*s))
        s++;
    while (e > s && is_ows(e[-1]))
        e--;
    *v = s;
    *len = (size_t)(e - s);
}

/* Content-Length = 1*DIGIT (RFC 9110 section 8.6), at most 19 digits: no
 * sign, no list, no hex; leading zeros are digits like any other. */
static bool content_length_ok(const char *data, const struct lbp_http_hdr *h)
{
    const char *v;
    size_t len;

    trimmed_value(data, h, &v, &len);
    if (len == 0 || len > 19)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
    }
    return true;
}

/* A transfer coding a request may carry before chunked (RFC 9110 section 8.4.1). */
static bool coding_known(const char *tok, size_t len)
{
    return name_is(tok, len, "gzip") || name_is(tok, len, "x-gzip") ||
           name_is(tok, len, "deflate") || name_is(tok, len, "compress") ||
           name_is(tok, len, "x-compress");
}

/*
 * Transfer-Encoding = #transfer-coding, read strictly: comma-separated
 * tokens with OWS (SP/HTAB) around them, no empty element, no parameter;
 * "chunked" at most once and only last (RFC 9112 section 6.1). A request
 * also takes only codings we know (section 6.3: anything else is 400).
 * Sets m->chunked.
 */
static bool transfer_encoding_ok(struct lbp_http_msg *m, const char *data,
                                 const struct lbp_http_hdr *h)
{
    const char *v = data + h->val_off, *end = v + h->val_len;
    bool request = m->parser.type == HTTP_REQUEST;

    m->chunked = false;
    for (;;) {
        const char *t = v, *e;

        while (t < end && is_ows(*t))
            t++;
        e = t;
        while (e < end && is_tchar((unsigned char)*e))
            e++;
        if (e == t || m->chunked)
            return false; /* empty element, or a coding after chunked */
        if (name_is(t, (size_t)(e - t), "chunked"))
            m->chunked = true;
        else if (request && !coding_known(t, (size_t)(e - t)))
            return false;
        while (e < end && is_ows(*e))
            e++;
        if (e == end)
            return !request || m->chunked;
        if (*e != ',')
            return false;
        v = e + 1;
    }
}

/* Content-Length and Transfer-Encoding: at most one of them, at most once,
 * each well formed, and no Transfer-Encoding in HTTP/1.0 (RFC 9112 section 6.1). */
static bool framing_ok(struct lbp_http_msg *m, const char *data)
{
    bool http10 = m->parser.http_major == 1 && m->parser.http_minor == 0;

    if (m->cl_count > 1 || (m->cl_count > 0 && m->te_count > 0) || m->te_count > 1)
        return false;
    if (m->te_count > 0 && http10)
        return false;
    for (uint32_t i = 0; i < m->hdr_count; i++) {
        const struct lbp_http_hdr *h = &m->hdrs[i];

        if (h->kind == LBP_H_CONTENT_LENGTH && !content_length_ok(data, h))
            return false;
        if (h->kind == LBP_H_TRANSFER_ENCODING && !transfer_encoding_ok(m, data, h))
            return false;
    }
    /* The parser frames the bodies we do not read as chunked: it must not
     * read them as chunked either. */
    return m->chunked || (m->parser.flags & F_CHUNKED) == 0;
}

/*
 * The request target: origin form ("/p?q"), asterisk form, or absolute form
 * with an http or https authority, which is then forwarded in origin form
 * (m->target_*) with Host set to the authority (RFC 9112 section 3.2.2: the
 * server ignores the Host header then). No CTL, no space, no userinfo.
 */
static bool target_ok(struct lbp_http_msg *m, const char *data)
{
    const char *u = data + m->first_off, *end = u + m->first_len, *a, *p;

    for (const char *q = u; q < end; q++) {
        if ((unsigned char)*q <= ' ' || *q == 0x7f)
            return false;
    }
    if (m->first_len > 0 && (u[0] == '/' || (m->first_len == 1 && u[0] == '*')))
        return true;
    if (m->first_len > 7 && strncasecmp(u, "http://", 7) == 0)
        a = u + 7;
    else if (m->first_len > 8 && strncasecmp(u, "https://", 8) == 0)
        a = u + 8;
    else
        return false;
    p = a;
    while (p < end && *p != '/' && *p != '?' && *p != '#') {
        if (*p == '@')
            return false;
        p++;
    }
    if (p == a)
        return false;
    m->absolute = true;
    m->authority_off = (uint32_t)(a - data);
    m->authority_len = (uint32_t)(p - a);
    m->target_off = (uint32_t)(p - data);
    m->target_len = (uint32_t)(end - p);
    return true;
}

/* Every line of the head ends in exactly CRLF: no bare LF, no CR before anything but LF. */
static bool crlf_lines(const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (data[i] == '\n' && (i == 0 || data[i - 1] != '\r'))
            return false;
        if (data[i] == '\r' && (i + 1 == len || data[i + 1] != '\n'))
            return false;
    }
    return true;
}

/* The start line and Host: a clean target or reason phrase, a three-digit
 * status, exactly one Host in an HTTP/1.1 request. */
static bool start_line_ok(struct lbp_http_msg *m, const char *data, unsigned hosts)
{
    if (m->parser.type == HTTP_RESPONSE &&
        !all_field_chars(data + m->first_off, m->first_len)) /* reason phrase */
        return false;
    if (m->parser.type == HTTP_REQUEST && m->parser.method != HTTP_CONNECT && !target_ok(m, data))
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
    return framing_ok(m, data) && start_line_ok(m, data, hosts);
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

/* ---- chunked bodies ------------------------------------------------------------ */

/* RFC 9112 section 7.1: chunk-size [chunk-ext] CRLF chunk-data CRLF ... last-chunk
 * trailer-section CRLF. One state per position that takes different bytes. */
enum ck_state {
    CK_SIZE = 0,     /* chunk-size hex digits (the state of a reset message) */
    CK_SIZE_WS = 1,  /* BWS after the size: only ';' may follow */
    CK_EXT = 2,      /* chunk extensions, up to the CR */
    CK_SIZE_LF = 3,  /* the CR ending a chunk-size line was seen */
    CK_DATA = 4,     /* chunk data, ck.left bytes */
    CK_DATA_CR = 5,  /* the CR after chunk data is due */
    CK_DATA_LF = 6,  /* the LF after chunk data is due */
    CK_TRAILER = 7,  /* start of a trailer line, or of the final CRLF */
    CK_TR_NAME = 8,  /* trailer field name, up to the colon */
    CK_TR_VALUE = 9, /* trailer field value, up to the CR */
    CK_TR_LF = 10,   /* the CR ending a trailer line was seen */
    CK_END_LF = 11,  /* the CR of the final empty line was seen */
};

enum ck_rc {
    CK_OK = 0,
    CK_DONE = 1, /* the byte ended the message */
    CK_BAD = -1, /* refuse; m->status set when it is not the default 400/502 */
};

/* A byte of a chunk-size line: the hex size, then BWS, ';' extensions or CR. */
static int chunk_size_byte(struct lbp_chunk *k, unsigned char c)
{
    int v = cm_hex_digit(c);

    if (c != '\r' && ++k->line_len > LBP_CHUNK_LINE_MAX)
        return CK_BAD;
    if (k->state == CK_SIZE && v >= 0) {
        /* Leading zeros count too: a size has a bounded spelling, and
         * stays below 2^63 so that no backend reads it as negative. */
        if (++k->digits > LBP_CHUNK_DIGITS_MAX || (k->left >> 59) != 0)
            return CK_BAD;
        k->left = (k->left << 4) | (uint64_t)v;
        return CK_OK;
    }
    if (k->state == CK_SIZE && k->digits == 0)
        return CK_BAD;
    if (k->state == CK_EXT) {
        if (c == '\r')
            k->state = CK_SIZE_LF;
        return c == '\r' || is_field_char(c) ? CK_OK : CK_BAD;
    }
    if (c == ';')
        k->state = CK_EXT;
    else if (c == ' ' || c == '\t')
        k->state = CK_SIZE_WS;
    else if (c == '\r' && k->state == CK_SIZE)
        k->state = CK_SIZE_LF;
    else
        return CK_BAD;
    return CK_OK;
}

/* The chunk-size line ended: data follows, or the trailer section. */
static int chunk_line_done(struct lbp_http_msg *m)
{
    struct lbp_chunk *k = &m->ck;

    k->line_len = 0;
    k->digits = 0;
    if (k->left == 0) {
        k->state = CK_TRAILER;
        return CK_OK;
    }
    if (k->left > m->lim.body_max - m->body_bytes) {
        m->status = 413;
        return CK_BAD;
    }
    k->state = CK_DATA;
    return CK_OK;
}

/* A trailer field name ended at its colon: framing, routing and hop-by-hop
 * fields are not allowed there (RFC 9110 section 6.5.1), as they travel
 * through unchanged and a backend that merges trailers would act on them. */
static bool trailer_name_ok(const struct lbp_chunk *k)
{
    size_t len = k->line_len < sizeof(k->name) ? k->line_len : sizeof(k->name);

    return k->line_len > 0 && classify(k->name, len) == LBP_H_OTHER;
}

/* A byte of a trailer field name: tchar up to the colon. */
static int trailer_name_byte(struct lbp_chunk *k, unsigned char c)
{
    if (c == ':') {
        k->state = CK_TR_VALUE;
        return trailer_name_ok(k) ? CK_OK : CK_BAD;
    }
    if (k->line_len < sizeof(k->name))
        k->name[k->line_len] = (char)c;
    k->line_len++;
    return is_tchar(c) ? CK_OK : CK_BAD;
}

/* A byte of the trailer section: field lines, then an empty line. */
static int chunk_trailer_byte(struct lbp_http_msg *m, unsigned char c)
{
    struct lbp_chunk *k = &m->ck;

    if (++k->trailer_bytes > m->lim.header_bytes_max)
        return CK_BAD;
    switch (k->state) {
    case CK_TRAILER:
        if (c == '\r') {
            k->state = CK_END_LF;
            return CK_OK;
        }
        /* A line starting with SP or HTAB (obs-fold) is not a name: refused. */
        k->line_len = 0;
        k->state = CK_TR_NAME;
        return trailer_name_byte(k, c);
    case CK_TR_NAME:
        return trailer_name_byte(k, c);
    case CK_TR_VALUE:
        if (c == '\r')
            k->state = CK_TR_LF;
        return c == '\r' || is_field_char(c) ? CK_OK : CK_BAD;
    case CK_TR_LF:
        k->state = CK_TRAILER;
        return c == '\n' ? CK_OK : CK_BAD;
    case CK_END_LF:
        return c == '\n' ? CK_DONE : CK_BAD;
    default:
        return CK_BAD;
    }
}

/* One framing byte (anything but chunk data). */
static int chunk_byte(struct lbp_http_msg *m, unsigned char c)
{
    struct lbp_chunk *k = &m->ck;

    switch (k->state) {
    case CK_SIZE:
    case CK_SIZE_WS:
    case CK_EXT:
        return chunk_size_byte(k, c);
    case CK_SIZE_LF:
        return c == '\n' ? chunk_line_done(m) : CK_BAD;
    case CK_DATA_CR:
        k->state = CK_DATA_LF;
        return c == '\r' ? CK_OK : CK_BAD;
    case CK_DATA_LF:
        k->state = CK_SIZE;
        return c == '\n' ? CK_OK : CK_BAD;
    default:
        return chunk_trailer_byte(m, c);
    }
}

/* lbp_http_body_feed() for a chunked body: data in runs, framing byte by byte. */
static int chunk_feed(struct lbp_http_msg *m, const char *data, size_t len, size_t *consumed)
{
    struct lbp_chunk *k = &m->ck;
    size_t i = 0;

    while (i < len) {
        int rc;

        if (k->state == CK_DATA) {
            size_t n = len - i < k->left ? len - i : (size_t)k->left;

            k->left -= n;
            m->body_bytes += n;
            i += n;
            if (k->left == 0)
                k->state = CK_DATA_CR;
            continue;
        }
        rc = chunk_byte(m, (unsigned char)data[i++]);
        if (rc == CK_BAD)
            return fail(m, bad_status(m));
        if (rc == CK_DONE) {
            m->message_done = true;
            *consumed = i;
            return LBP_HTTP_DONE;
        }
    }
    *consumed = len;
    return LBP_HTTP_MORE;
}

/* ---- entry points --------------------------------------------------------------- */

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
        if (!crlf_lines(data, m->head_len) || !analyze(m, data))
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
    if (m->chunked)
        return chunk_feed(m, data, len, consumed);
    n = http_parser_execute(&m->parser, &head_settings, data, len);
    *consumed = n;
    if (m->message_done) {
        http_parser_pause(&m->parser, 0);
        return LBP_HTTP_DONE;
    }
    if (HTTP_PARSER_ERRNO(&m->parser) != HPE_OK) {
        *consumed = 0;
        return fail(m, bad_status(m));
    }
    return LBP_HTTP_MORE;
}

int lbp_http_body_eof(struct lbp_http_msg *m)
{
    if (m->message_done)
        return LBP_HTTP_DONE;
    if (m->chunked)
        return fail(m, bad_status(m));
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
        status == 204 || status == 304 || m->chunked)
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

/* The request target in origin form: an absolute-form target loses its
 * scheme and authority, and its path is "/" when empty (RFC 9112 section 3.2.1). */
static int put_target(const struct lbp_http_msg *m, const char *data, struct cm_buf *out)
{
    int rc = CM_OK;

    if (!m->absolute)
        return cm_buf_append(out, data + m->first_off, m->first_len);
    if (m->target_len == 0 || data[m->target_off] != '/')
        rc = cm_buf_append(out, "/", 1);
    return rc != CM_OK ? rc : cm_buf_append(out, data + m->target_off, m->target_len);
}

/* "Host: <authority of an absolute-form target>". */
static int put_host(const struct lbp_http_msg *m, const char *data, struct cm_buf *out)
{
    int rc = cm_buf_append_str(out, "Host: ");

    rc = rc != CM_OK ? rc : cm_buf_append(out, data + m->authority_off, m->authority_len);
    return rc != CM_OK ? rc : cm_buf_append(out, "\r\n", 2);
}

int lbp_http_write_request(const struct lbp_http_msg *m, const char *data,
                           const struct lbp_http_fwd *fwd, struct cm_buf *out)
{
    bool http10 = m->parser.http_major == 1 && m->parser.http_minor == 0;
    bool upgrade = m->parser.upgrade && m->conn_upgrade;
    bool host_done = false;
    int rc;

    cm_buf_reset(out);
    rc = cm_buf_append_str(out, lbp_http_method(m));
    rc = rc != CM_OK ? rc : cm_buf_append(out, " ", 1);
    rc = rc != CM_OK ? rc : put_target(m, data, out);
    rc = rc != CM_OK ? rc : cm_buf_append_str(out, http10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
    for (uint32_t i = 0; i < m->hdr_count && rc == CM_OK; i++) {
        const struct lbp_http_hdr *h = &m->hdrs[i];

        if (h->kind == LBP_H_XFF || h->kind == LBP_H_XFP)
            continue;
        if (h->kind == LBP_H_HOST && m->absolute) {
            rc = put_host(m, data, out); /* the authority of the target wins */
            host_done = true;
            continue;
        }
        if (h->hop && !(upgrade && h->kind == LBP_H_UPGRADE))
            continue;
        rc = put_header(out, data, h);
    }
    if (rc == CM_OK && m->absolute && !host_done) /* HTTP/1.0 without Host */
        rc = put_host(m, data, out);
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
