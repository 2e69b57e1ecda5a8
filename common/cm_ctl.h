/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_ctl.h -- the control API every daemon serves (docs: README "Control
 * API"), on our own small HTTP/1.1 server in the daemon's main event loop.
 *
 * Built in:  GET /healthz            "ok" (always public)
 *            GET /metrics            Prometheus text exposition (0.0.4)
 *            GET /v1/state           the daemon's state document(s), JSON
 *            PUT /v1/state           400 + reason on a bad document (the old
 *                                    state stays), 401 without a valid token,
 *                                    403 for another vantage's document, 409
 *                                    for a document older than the one held
 *            DELETE /v1/state/vantages/NAME   forget a vantage's document
 * Daemons add their own routes (dnsd: /v1/explain, /v1/members/NAME/drain).
 * Every error reply is JSON: {"error": "reason"}.
 *
 * Hostile clients: the token is checked from the request head before any body
 * byte is read (a refused request with a body is answered and the connection
 * closed); bodies need Content-Length, are capped per request and in total;
 * a request must arrive within an absolute deadline (not one that restarts on
 * every read); connections are capped, and a new one evicts the oldest that
 * has not finished sending a request head. Tokens are compared in constant
 * time and never logged. With control.tls the listener speaks only TLS
 * (optionally requiring client certificates).
 *
 * Access (enum cm_ctl_access): the operator token (control.token_file) may do
 * everything; a vantage token (control.vantage_tokens) may PUT its own
 * vantage's document and read; reads need a token unless the listener is on
 * loopback or control.public_read is set; without any token configured (only
 * allowed on loopback) everything is open.
 */
#ifndef COMMON_CM_CTL_H
#define COMMON_CM_CTL_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "common/cm_http.h"
#include "common/cm_str.h"

struct cm_conf_control;
struct cm_ctl;
struct cm_ctl_req;

#define CM_CTL_BODY_MAX   (16u << 20) /* largest accepted request body */
#define CM_CTL_BODY_TOTAL (64u << 20) /* request bodies buffered at once, all connections */
#define CM_CTL_HEAD_MAX   (16 * 1024) /* request line + header fields */
#define CM_CTL_CONN_MAX   64          /* default control.max_connections */
#define CM_CTL_TIMEOUT_MS 10000       /* default control.request_timeout_ms */

/* Who may use a route. */
enum cm_ctl_access {
    CM_CTL_PUBLIC = 0,   /* anyone (/healthz) */
    CM_CTL_READ = 1,     /* any valid token; anyone on loopback or with public_read */
    CM_CTL_VANTAGE = 2,  /* a vantage token (own document only) or the operator token */
    CM_CTL_OPERATOR = 3, /* the operator token only */
};

/** Appends the Prometheus text of the daemon's metrics to @out. */
typedef void cm_ctl_metrics_fn(void *arg, struct cm_buf *out);
/** Returns the state as a new JSON value (caller owns the reference). */
typedef json_t *cm_ctl_state_get_fn(void *arg);
/**
 * Returns the state already serialized as JSON (borrowed until the loop runs
 * again; *len bytes), or NULL when there is none: a large document is sent
 * as it is, without a tree to serialize.
 */
typedef const char *cm_ctl_state_text_fn(void *arg, size_t *len);
/**
 * Takes a PUT body (borrowed, NUL-terminated, @len bytes). @vantage is NULL
 * for the operator (any document), else the only vantage whose document the
 * writer may send: another one is CM_EPERM (403). Returns CM_OK, or an error
 * code with a reason in @err; the old state must then stay.
 */
typedef int cm_ctl_state_put_fn(void *arg, const char *body, size_t len, const char *vantage,
                                char *err, size_t errlen);
/**
 * Drops @vantage's document (DELETE /v1/state/vantages/NAME, operator only):
 * the remedy for a vantage credential abused to pin a huge generation.
 * CM_ENOENT when no document of @vantage is held.
 */
typedef int cm_ctl_state_forget_fn(void *arg, const char *vantage, char *err, size_t errlen);
/**
 * A daemon route. @path_rest is what follows the registered prefix (borrowed,
 * decoded path, no query string). Replies through cm_ctl_reply_*() before it
 * returns (a route that does not gets 500).
 */
typedef void cm_ctl_route_fn(void *arg, struct cm_ctl_req *req, const char *path_rest);

struct cm_ctl_callbacks {
    cm_ctl_metrics_fn *metrics;           /* may be NULL: only cm_ctl's own metrics */
    cm_ctl_state_get_fn *state_get;       /* may be NULL: 404 */
    cm_ctl_state_text_fn *state_text;     /* may be NULL; GET /v1/state prefers it to state_get */
    cm_ctl_state_put_fn *state_put;       /* may be NULL: 405 */
    cm_ctl_state_forget_fn *state_forget; /* may be NULL: 404 */
    void *arg;
};

/**
 * Binds the control listener described by @conf on @base (borrowed; outlives
 * the ctl). Tokens are copied; the TLS certificate and key are loaded. CM_*
 * code with a reason in @err (naming the file for TLS errors).
 */
int cm_ctl_new(struct event_base *base, const struct cm_conf_control *conf,
               const struct cm_ctl_callbacks *cbs, struct cm_ctl **out, char *err, size_t errlen);
/** Closes the listener and every connection, and releases everything. Accepts NULL. */
void cm_ctl_free(struct cm_ctl *ctl);

/**
 * Takes the tokens, public_read and TLS files of @conf (on reload; the listen
 * address is not changed). All or nothing: on error (a certificate that does
 * not load) the old settings stay and @err says why. Connections already
 * open keep their TLS session.
 */
int cm_ctl_reload(struct cm_ctl *ctl, const struct cm_conf_control *conf, char *err, size_t errlen);

/**
 * Registers @fn for @methods (CM_HTTP_GET, ...) and every path starting with
 * @prefix ("/v1/members/"), open to @access.
 */
int cm_ctl_route(struct cm_ctl *ctl, unsigned methods, const char *prefix,
                 enum cm_ctl_access access, cm_ctl_route_fn *fn, void *arg);

/** The request's method: one CM_HTTP_* value. */
unsigned cm_ctl_req_method(const struct cm_ctl_req *req);
/** Replies with @code and @doc serialized (steals the reference). */
void cm_ctl_reply_json(struct cm_ctl_req *req, int code, json_t *doc);
/** Replies with @code and {"error": reason}. */
void cm_ctl_reply_error(struct cm_ctl_req *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** Replies with @code, @ctype and @len bytes of @body (copied). */
void cm_ctl_reply_bytes(struct cm_ctl_req *req, int code, const char *ctype, const void *body,
                        size_t len);
/** Adds a header to the coming reply (@name and @value: no CR or LF). */
void cm_ctl_reply_header(struct cm_ctl_req *req, const char *name, const char *value);
/** The request body copied into @body, NUL-terminated (CM_ETOOBIG past body->max). */
int cm_ctl_body(struct cm_ctl_req *req, struct cm_buf *body);
/** Looks up a decoded query parameter; NULL when absent. Borrowed from @q. */
const char *cm_ctl_query_param(const struct evkeyvalq *q, const char *key);
/**
 * Initializes @q and parses the query string of @req into it (decoded keys
 * and values; '+' is a space, as in forms). The caller calls
 * evhttp_clear_headers(@q) afterwards, also on error. CM_EPARSE on a
 * malformed query string (a key without '=').
 */
int cm_ctl_query_parse(struct cm_ctl_req *req, struct evkeyvalq *q);

/**
 * The TCP port the listener is bound to (useful when conf->listen has port 0),
 * or -1 if it cannot be read.
 */
int cm_ctl_port(const struct cm_ctl *ctl);
/**
 * Sets the request body cap (default and ceiling CM_CTL_BODY_MAX; 0 means the
 * default). A larger body gets 413 before any of it is read.
 */
void cm_ctl_set_body_max(struct cm_ctl *ctl, size_t max);

/* Prometheus text helpers: "# HELP", "# TYPE" once per family, then samples. */
void cm_metrics_family(struct cm_buf *out, const char *name, const char *type, const char *help);
/** @labels is preformatted 'a="b",c="d"' or NULL. */
void cm_metrics_sample(struct cm_buf *out, const char *name, const char *labels, double value);
/** Appends @value escaped as a label value: backslash, double quote, newline. */
void cm_metrics_label_escape(struct cm_buf *out, const char *value);
/** Appends key="value" (value escaped) to @labels, after a comma if not empty. */
void cm_metrics_label(struct cm_buf *labels, const char *key, const char *value);

#endif /* COMMON_CM_CTL_H */
