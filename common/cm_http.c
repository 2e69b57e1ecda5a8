/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_http.c -- strict HTTP/1.x request-head parsing (see cm_http.h).
 *
 * The head is parsed only once it is complete (an empty line seen), line by
 * line; a line that is already complete is checked as soon as it is seen, so a
 * bare LF is refused without waiting for the rest of the head.
 */
#include "common/cm_http.h"

#include <string.h>
#include <strings.h>

#include "common/cm_err.h"

#define FIELDS_MAX 100 /* header fields in one head */
#define METHOD_MAX 16  /* longest method token */

/* tchar (RFC 9110 section 5.6.2). */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-value characters: VCHAR, obs-text, SP, HTAB (no other control). */
static bool is_field_char(unsigned char c)
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

static bool token_eq(const char *s, size_t len, const char *lit)
{
    return strlen(lit) == len && strncasecmp(s, lit, len) == 0;
}

/* True when the comma-separated list @v holds @tok (case-insensitive). */
static bool list_has(const char *v, size_t len, const char *tok)
{
    size_t i = 0;

    while (i < len) {
        size_t start, end;

        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        start = i;
        while (i < len && v[i] != ',')
            i++;
        end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end > start && token_eq(v + start, end - start, tok))
            return true;
    }
    return false;
}

static unsigned method_of(const char *s, size_t len)
{
    static const struct {
        const char *name;
        unsigned method;
    } methods[] = {
        {"GET", CM_HTTP_GET},   {"HEAD", CM_HTTP_HEAD},     {"PUT", CM_HTTP_PUT},
        {"POST", CM_HTTP_POST}, {"DELETE", CM_HTTP_DELETE},
    };

    /* Methods are case-sensitive (RFC 9110 section 9.1). */
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (strlen(methods[i].name) == len && memcmp(methods[i].name, s, len) == 0)
            return methods[i].method;
    }
    return CM_HTTP_OTHER;
}

const char *cm_http_method_name(unsigned method)
{
    switch (method) {
    case CM_HTTP_GET:
        return "GET";
    case CM_HTTP_HEAD:
        return "HEAD";
    case CM_HTTP_PUT:
        return "PUT";
    case CM_HTTP_POST:
        return "POST";
    case CM_HTTP_DELETE:
        return "DELETE";
    default:
        return "OTHER";
    }
}

const char *cm_http_reason(int code)
{
    static const struct {
        int code;
        const char *text;
    } reasons[] = {
        {100, "Continue"},
        {200, "OK"},
        {204, "No Content"},
        {302, "Found"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {411, "Length Required"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {417, "Expectation Failed"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {503, "Service Unavailable"},
        {505, "HTTP Version Not Supported"},
    };

    for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
        if (reasons[i].code == code)
            return reasons[i].text;
    }
    return "Unknown";
}

/* "METHOD SP request-target SP HTTP/1.x" (the CRLF already cut off). */
static int parse_request_line(const char *s, size_t len, struct cm_http_head *h, const char **why)
{
    const char *sp1 = memchr(s, ' ', len), *sp2;
    size_t rest;

    if (sp1 == NULL || sp1 == s || (size_t)(sp1 - s) > METHOD_MAX) {
        *why = "malformed request line";
        return CM_EPARSE;
    }
    for (const char *p = s; p < sp1; p++) {
        if (!is_tchar((unsigned char)*p)) {
            *why = "malformed method";
            return CM_EPARSE;
        }
    }
    h->method = method_of(s, (size_t)(sp1 - s));
    rest = len - (size_t)(sp1 + 1 - s);
    sp2 = memchr(sp1 + 1, ' ', rest);
    if (sp2 == NULL || sp2 == sp1 + 1) {
        *why = "malformed request line";
        return CM_EPARSE;
    }
    h->target = sp1 + 1;
    h->target_len = (size_t)(sp2 - h->target);
    for (size_t i = 0; i < h->target_len; i++) {
        unsigned char c = (unsigned char)h->target[i];

        if (c <= 0x20 || c >= 0x7f) {
            *why = "malformed request target";
            return CM_EPARSE;
        }
    }
    if (h->target[0] != '/') {
        *why = "the request target must be a path (origin form)";
        return CM_EPARSE;
    }
    rest = len - (size_t)(sp2 + 1 - s);
    if (rest != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || (sp2[8] != '0' && sp2[8] != '1')) {
        *why = "unsupported HTTP version";
        return CM_EPARSE;
    }
    h->minor = (unsigned)(sp2[8] - '0');
    return CM_OK;
}

static int parse_length(const char *v, size_t len, struct cm_http_head *h, const char **why)
{
    uint64_t n = 0;

    if (len == 0 || len > CM_HTTP_CL_DIGITS_MAX) {
        *why = "malformed Content-Length";
        return CM_EPARSE;
    }
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') {
            *why = "malformed Content-Length";
            return CM_EPARSE;
        }
        n = n * 10 + (uint64_t)(v[i] - '0');
    }
    if (h->has_length && h->length != n) {
        *why = "conflicting Content-Length fields";
        return CM_EPARSE;
    }
    h->has_length = true;
    h->length = n;
    return CM_OK;
}

/* Records what the server acts on; other fields are ignored. */
static int apply_field(const char *name, size_t nlen, const char *v, size_t vlen,
                       struct cm_http_head *h, bool *seen_host, bool *keep_alive, const char **why)
{
    if (token_eq(name, nlen, "content-length"))
        return parse_length(v, vlen, h, why);
    if (token_eq(name, nlen, "transfer-encoding")) {
        h->has_te = true;
    } else if (token_eq(name, nlen, "connection")) {
        h->close = h->close || list_has(v, vlen, "close");
        *keep_alive = *keep_alive || list_has(v, vlen, "keep-alive");
    } else if (token_eq(name, nlen, "expect")) {
        if (token_eq(v, vlen, "100-continue"))
            h->expect_continue = true;
        else
            h->expect_other = true;
    } else if (token_eq(name, nlen, "authorization")) {
        if (h->auth != NULL) {
            *why = "more than one Authorization field";
            return CM_EPARSE;
        }
        h->auth = v;
        h->auth_len = vlen;
    } else if (token_eq(name, nlen, "host")) {
        if (*seen_host) {
            *why = "more than one Host field";
            return CM_EPARSE;
        }
        *seen_host = true;
    }
    return CM_OK;
}

/* "name: OWS value OWS" (the CRLF already cut off). */
static int parse_field(const char *s, size_t len, struct cm_http_head *h, bool *seen_host,
                       bool *keep_alive, const char **why)
{
    const char *colon = memchr(s, ':', len);
    const char *v, *end = s + len;

    if (s[0] == ' ' || s[0] == '\t') {
        *why = "obsolete line folding";
        return CM_EPARSE;
    }
    if (colon == NULL || colon == s) {
        *why = "malformed header field";
        return CM_EPARSE;
    }
    for (const char *p = s; p < colon; p++) {
        if (!is_tchar((unsigned char)*p)) {
            *why = "malformed header field name";
            return CM_EPARSE;
        }
    }
    for (const char *p = colon + 1; p < end; p++) {
        if (!is_field_char((unsigned char)*p)) {
            *why = "control character in a header field value";
            return CM_EPARSE;
        }
    }
    v = colon + 1;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    return apply_field(s, (size_t)(colon - s), v, (size_t)(end - v), h, seen_host, keep_alive, why);
}

int cm_http_head_parse(const char *buf, size_t len, struct cm_http_head *h, size_t *head_len,
                       const char **why)
{
    bool seen_host = false, keep_alive = false;
    size_t pos = 0, fields = 0;
    int rc;

    memset(h, 0, sizeof(*h));
    *why = NULL;
    for (;;) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        size_t line_len;

        if (nl == NULL)
            return CM_EAGAIN;
        line_len = (size_t)(nl - (buf + pos));
        if (line_len == 0 || buf[pos + line_len - 1] != '\r') {
            *why = "a line does not end in CRLF";
            return CM_EPARSE;
        }
        line_len--; /* the CR */
        if (memchr(buf + pos, '\r', line_len) != NULL || memchr(buf + pos, '\0', line_len)) {
            *why = "stray CR or NUL in the head";
            return CM_EPARSE;
        }
        if (pos == 0) {
            rc = parse_request_line(buf, line_len, h, why);
        } else if (line_len == 0) {
            break;
        } else if (++fields > FIELDS_MAX) {
            *why = "too many header fields";
            rc = CM_EPARSE;
        } else {
            rc = parse_field(buf + pos, line_len, h, &seen_host, &keep_alive, why);
        }
        if (rc != CM_OK)
            return rc;
        pos += line_len + 2;
    }
    if (h->minor == 1 && !seen_host) {
        *why = "HTTP/1.1 request without Host";
        return CM_EPARSE;
    }
    if (h->minor == 0 && !keep_alive)
        h->close = true;
    *head_len = pos + 2;
    return CM_OK;
}
