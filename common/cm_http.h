/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_http.h -- strict parsing of an HTTP/1.x request head (RFC 9112) for the
 * control API's own server (cm_ctl.c).
 *
 * Pure code: bytes in, a parsed head out; no sockets, so unit and fuzz tests
 * drive it with byte arrays. Strict where leniency is an attack surface: every
 * line ends in exactly CRLF, field names are tokens with no whitespace before
 * the colon, values hold no CR, LF or NUL, there is no obs-fold, Content-Length
 * is 1*DIGIT and given at most once (or repeated with the same value), and
 * Transfer-Encoding is reported so the server can refuse it (the control API
 * takes Content-Length bodies only: 411).
 *
 *   "PUT /v1/state?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 42\r\n\r\n{...
 *    |<-- method, target, minor -->|<-- fields ------------------>|<- body
 *    |<----------------------------- head_len ------------------------>|
 */
#ifndef COMMON_CM_HTTP_H
#define COMMON_CM_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Request methods, as bits so routes can take several. */
enum cm_http_method {
    CM_HTTP_OTHER = 0, /* a valid token we do not serve: 501 */
    CM_HTTP_GET = 1,
    CM_HTTP_HEAD = 2,
    CM_HTTP_PUT = 4,
    CM_HTTP_POST = 8,
    CM_HTTP_DELETE = 16,
};

#define CM_HTTP_CL_DIGITS_MAX 18 /* Content-Length digits: below 10^18, no overflow */

struct cm_http_head {
    unsigned method;      /* one enum cm_http_method value */
    const char *target;   /* borrowed from the parsed bytes, not NUL-terminated */
    size_t target_len;    /* > 0 */
    unsigned minor;       /* HTTP/1.minor: 0 or 1 */
    bool has_length;      /* a Content-Length field was given */
    uint64_t length;      /* its value (0 when absent) */
    bool has_te;          /* a Transfer-Encoding field was given */
    bool close;           /* the client asks to close after the reply */
    bool expect_continue; /* Expect: 100-continue */
    bool expect_other;    /* an Expect we cannot meet: 417 */
    const char *auth;     /* Authorization value, borrowed; NULL when absent */
    size_t auth_len;      /* its length, surrounding whitespace excluded */
};

/**
 * Parses the request head at the start of @buf (@len bytes available).
 * Returns CM_OK with *head_len (CRLFCRLF included) and @h filled; CM_EAGAIN
 * when the head is not complete yet (and nothing seen so far is wrong);
 * CM_EPARSE with a static reason in *why for a malformed head (answer 400 and
 * close). @h points into @buf: it is valid while @buf is. The caller bounds
 * @len (431 past its cap when CM_EAGAIN persists).
 */
int cm_http_head_parse(const char *buf, size_t len, struct cm_http_head *h, size_t *head_len,
                       const char **why);

/** The method's name ("GET"), "OTHER" for CM_HTTP_OTHER. */
const char *cm_http_method_name(unsigned method);

/** The reason phrase of a status code ("Not Found"), "Unknown" if not ours. */
const char *cm_http_reason(int code);

#endif /* COMMON_CM_HTTP_H */
