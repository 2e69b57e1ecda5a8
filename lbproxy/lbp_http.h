/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lbp_http.h -- HTTP/1.x message framing for the proxy on libhttp-parser:
 * one request or response head parsed into offsets, the body tracked to its
 * end (Content-Length, chunked passed through as-is once its framing is
 * checked byte by byte, or until close), and the forwarded head written in
 * one piece. Every framing line must end in exactly CRLF (see lbp_http.c).
 *
 *   bytes of the connection's input buffer (contiguous head, borrowed)
 *   |<- request line ->|<- header lines ------------>|<- body ...
 *   lbp_http_msg: url/reason and each header as (offset, length) into those
 *   bytes; head_len once the head is complete. Nothing is copied: the caller
 *   keeps the head in its input buffer until the rewritten head is written,
 *   then drains head_len bytes and feeds the body through lbp_http_body_feed()
 *   only to learn where the message ends.
 *
 * Pure code: no sockets, no libevent; unit and fuzz tests drive it with byte
 * arrays. One lbp_http_msg is reused for every message of a connection (its
 * header array is allocated once).
 */
#ifndef LBPROXY_LBP_HTTP_H
#define LBPROXY_LBP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

#include "common/cm_str.h"

/* What a header means to a proxy (RFC 9110 section 7.6.1, RFC 9112). */
enum lbp_hdr_kind {
    LBP_H_OTHER = 0,
    LBP_H_CONNECTION = 1,
    LBP_H_KEEP_ALIVE = 2,
    LBP_H_PROXY_ANY = 3, /* Proxy-Connection, Proxy-Authorization, ... */
    LBP_H_TE = 4,
    LBP_H_TRAILER = 5,
    LBP_H_TRANSFER_ENCODING = 6,
    LBP_H_UPGRADE = 7,
    LBP_H_CONTENT_LENGTH = 8,
    LBP_H_XFF = 9,  /* X-Forwarded-For */
    LBP_H_XFP = 10, /* X-Forwarded-Proto */
    LBP_H_EXPECT = 11,
    LBP_H_HOST = 12,
};

struct lbp_http_hdr {
    uint32_t name_off, name_len; /* into the head bytes */
    uint32_t val_off, val_len;
    uint8_t kind; /* enum lbp_hdr_kind */
    bool hop;     /* hop-by-hop: not forwarded */
};

struct lbp_http_limits {
    uint32_t line_max;         /* request/status line bytes, CRLF excluded (414) */
    uint32_t header_bytes_max; /* the head may be line_max + header_bytes_max bytes (431) */
    uint32_t header_count_max; /* header lines (431) */
    uint64_t body_max;         /* request body bytes (413); UINT64_MAX = none */
};

enum lbp_http_rc {
    LBP_HTTP_MORE = 0,  /* need more bytes */
    LBP_HTTP_DONE = 1,  /* head complete (head_parse) / message complete (body_feed) */
    LBP_HTTP_ERROR = -1 /* m->status says which reply (400, 405, 413, 414, 431, 501, 502) */
};

/* Longest chunk-size line, extensions included, CRLF excluded (400/502 beyond). */
#define LBP_CHUNK_LINE_MAX 4096u
/* Hex digits of a chunk size, leading zeros included; the value stays below 2^63. */
#define LBP_CHUNK_DIGITS_MAX 16u

/* Where a chunked body stands; private to lbp_http.c. */
struct lbp_chunk {
    uint64_t left;          /* data bytes still due in the current chunk */
    uint32_t line_len;      /* bytes of the current chunk-size or trailer line so far */
    uint32_t trailer_bytes; /* trailer section so far (capped by lim.header_bytes_max) */
    uint8_t state;          /* enum ck_state */
    uint8_t digits;         /* hex digits of the current chunk size */
    char name[20];          /* a trailer field name, truncated: enough to classify it */
};

struct lbp_http_msg {
    http_parser parser;
    struct lbp_http_limits lim;
    const char *base;          /* private: the head bytes during a parse call */
    size_t parsed;             /* head bytes fed to the parser so far */
    struct lbp_http_hdr *hdrs; /* owned, lim.header_count_max entries */
    uint32_t hdr_count;
    uint32_t first_off, first_len; /* request: URL; response: reason phrase */
    uint32_t head_len;             /* valid once the head is complete */
    uint32_t line_len;             /* request/status line, once line_done */
    /* Request in absolute form ("GET http://a.example/p"): forwarded as
     * target (origin form, "/" when empty) with Host set to authority. */
    uint32_t target_off, target_len;
    uint32_t authority_off, authority_len;
    bool absolute;
    bool chunked;        /* the final transfer coding is chunked */
    struct lbp_chunk ck; /* private: chunked body framing */
    uint64_t body_bytes; /* body bytes seen (chunk framing excluded) */
    uint16_t status;     /* error reply chosen on LBP_HTTP_ERROR */
    uint8_t cl_count, te_count, xff_count;
    bool in_value, line_done, headers_done, message_done;
    bool skip_body;       /* response to HEAD: set before parsing */
    bool conn_close;      /* Connection: close */
    bool conn_keep_alive; /* Connection: keep-alive */
    bool conn_upgrade;    /* Connection: upgrade (with an Upgrade header) */
    bool expect_continue; /* Expect: 100-continue */
};

/** Allocates the header array. CM_ENOMEM. @type: HTTP_REQUEST or HTTP_RESPONSE. */
int lbp_http_msg_init(struct lbp_http_msg *m, enum http_parser_type type,
                      const struct lbp_http_limits *lim);
void lbp_http_msg_fini(struct lbp_http_msg *m);
/** Ready for the next message of the same type (keeps the header array). */
void lbp_http_msg_reset(struct lbp_http_msg *m);

/**
 * Parses the head at @data (@len bytes available from the start of the
 * message, borrowed; a later call passes the same bytes plus more). On DONE,
 * head_len bytes are the head; the header offsets refer to @data.
 */
int lbp_http_head_parse(struct lbp_http_msg *m, const char *data, size_t len);

/**
 * Tracks @len body bytes (borrowed). *consumed (<= len) bytes belong to this
 * message; DONE when it ended there. ERROR: malformed chunking (400/502) or
 * over lim.body_max (413); *consumed is then 0, so that nothing of a call
 * that found bad framing is forwarded.
 */
int lbp_http_body_feed(struct lbp_http_msg *m, const char *data, size_t len, size_t *consumed);
/** The peer closed: DONE if that ends the message (no length), else ERROR. */
int lbp_http_body_eof(struct lbp_http_msg *m);

/** The method name ("GET"), request messages only. */
const char *lbp_http_method(const struct lbp_http_msg *m);
/** GET HEAD OPTIONS PUT DELETE TRACE. */
bool lbp_http_idempotent(const struct lbp_http_msg *m);
/** The message has a body to stream (chunked or Content-Length > 0 or until close). */
bool lbp_http_has_body(const struct lbp_http_msg *m);
/** Keep-alive after this message, per its version and Connection header. */
bool lbp_http_keep_alive(const struct lbp_http_msg *m);
/** The body is delimited by the connection close (response without length). */
bool lbp_http_until_eof(const struct lbp_http_msg *m);

struct lbp_http_fwd {
    const char *client_ip; /* appended to X-Forwarded-For */
    bool keep_xff;         /* the client is a trusted proxy: keep its X-Forwarded-For */
    bool tls;              /* X-Forwarded-Proto: https */
};

/** Writes the forwarded request head for @m (head bytes @data) to @out. */
int lbp_http_write_request(const struct lbp_http_msg *m, const char *data,
                           const struct lbp_http_fwd *fwd, struct cm_buf *out);

/**
 * Writes the response head for the client. @close: add "Connection: close";
 * @keep_alive10: an HTTP/1.0 client keeps the connection ("Connection:
 * keep-alive"); @tunnel: 101 Switching Protocols keeps Upgrade/Connection.
 */
int lbp_http_write_response(const struct lbp_http_msg *m, const char *data, bool close,
                            bool keep_alive10, bool tunnel, struct cm_buf *out);

/** A complete small error response ("HTTP/1.1 431 ...", Connection: close). */
int lbp_http_write_error(uint16_t status, struct cm_buf *out);
const char *lbp_http_reason(uint16_t status);

#endif /* LBPROXY_LBP_HTTP_H */
