/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_ctl.h -- the control API every daemon serves (DESIGN.md, "Control API"),
 * on libevent's HTTP server, in the daemon's main event loop.
 *
 * Built in:  GET /healthz            "ok"
 *            GET /metrics            Prometheus text exposition (0.0.4)
 *            GET /v1/state           the daemon's state document(s), JSON
 *            PUT /v1/state           bearer token; 400 + reason on a bad
 *                                    document (the old state stays), 401
 *                                    without a valid token, 409 for a
 *                                    document older than the one held
 * Daemons add their own routes (dnsd: /v1/explain, /v1/members/NAME/drain).
 * Every error reply is JSON: {"error": "reason"}. Request bodies are capped.
 * Tokens are compared in constant time and never logged.
 */
#ifndef COMMON_CM_CTL_H
#define COMMON_CM_CTL_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <event2/http.h>
#include <jansson.h>

#include "common/cm_str.h"

struct cm_conf_control;
struct cm_ctl;

#define CM_CTL_BODY_MAX (16u << 20) /* largest accepted request body */

/** Appends the Prometheus text of the daemon's metrics to @out. */
typedef void cm_ctl_metrics_fn(void *arg, struct cm_buf *out);
/** Returns the state as a new JSON value (caller owns the reference). */
typedef json_t *cm_ctl_state_get_fn(void *arg);
/**
 * Takes a PUT body (borrowed, NUL-terminated, @len bytes). Returns CM_OK, or
 * an error code with a reason in @err; the old state must then stay.
 */
typedef int cm_ctl_state_put_fn(void *arg, const char *body, size_t len, char *err, size_t errlen);
/**
 * A daemon route. @path_rest is what follows the registered prefix (borrowed,
 * decoded path, no query string). Replies through cm_ctl_reply_*().
 */
typedef void cm_ctl_route_fn(void *arg, struct evhttp_request *req, const char *path_rest);

struct cm_ctl_callbacks {
    cm_ctl_metrics_fn *metrics;     /* may be NULL: only cm_ctl's own metrics */
    cm_ctl_state_get_fn *state_get; /* may be NULL: 404 */
    cm_ctl_state_put_fn *state_put; /* may be NULL: 405 */
    void *arg;
};

/**
 * Binds the control listener described by @conf on @base (borrowed; outlives
 * the ctl). @conf's token is copied. CM_* code with a reason in @err.
 */
int cm_ctl_new(struct event_base *base, const struct cm_conf_control *conf,
               const struct cm_ctl_callbacks *cbs, struct cm_ctl **out, char *err, size_t errlen);
/** Closes the listener and releases everything. Accepts NULL. */
void cm_ctl_free(struct cm_ctl *ctl);

/** Replaces the bearer token (on reload). NULL disables auth. */
int cm_ctl_set_token(struct cm_ctl *ctl, const char *token);

/**
 * Registers @fn for @method (EVHTTP_REQ_GET, ...) and every path starting with
 * @prefix ("/v1/members/"). @needs_auth: a valid bearer token is required.
 */
int cm_ctl_route(struct cm_ctl *ctl, unsigned method, const char *prefix, bool needs_auth,
                 cm_ctl_route_fn *fn, void *arg);

/** Replies with @code and @doc serialized (steals the reference). */
void cm_ctl_reply_json(struct evhttp_request *req, int code, json_t *doc);
/** Replies with @code and {"error": reason}. */
void cm_ctl_reply_error(struct evhttp_request *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/** The request body, NUL-terminated, in @body (CM_ETOOBIG past CM_CTL_BODY_MAX). */
int cm_ctl_body(struct evhttp_request *req, struct cm_buf *body);
/** Looks up a decoded query parameter; NULL when absent. Borrowed from @q. */
const char *cm_ctl_query_param(const struct evkeyvalq *q, const char *key);

/**
 * The TCP port the listener is bound to (useful when conf->listen has port 0),
 * or -1 if it cannot be read.
 */
int cm_ctl_port(const struct cm_ctl *ctl);
/**
 * Sets the request body cap (default and ceiling CM_CTL_BODY_MAX; 0 means the
 * default). A larger body gets 413 before any handler runs.
 */
void cm_ctl_set_body_max(struct cm_ctl *ctl, size_t max);
/**
 * Initializes @q (no TAILQ_INIT needed) and parses the query string of @req
 * into it (decoded keys and values; '+' is a space, as in forms). The caller
 * calls evhttp_clear_headers(@q) afterwards, also on error. CM_EPARSE on a
 * malformed query string (a key without '=').
 */
int cm_ctl_query_parse(struct evhttp_request *req, struct evkeyvalq *q);

/* Prometheus text helpers: "# HELP", "# TYPE" once per family, then samples. */
void cm_metrics_family(struct cm_buf *out, const char *name, const char *type, const char *help);
/** @labels is preformatted 'a="b",c="d"' or NULL. */
void cm_metrics_sample(struct cm_buf *out, const char *name, const char *labels, double value);
/** Appends @value escaped as a label value: backslash, double quote, newline. */
void cm_metrics_label_escape(struct cm_buf *out, const char *value);
/** Appends key="value" (value escaped) to @labels, after a comma if not empty. */
void cm_metrics_label(struct cm_buf *labels, const char *key, const char *value);

#endif /* COMMON_CM_CTL_H */
