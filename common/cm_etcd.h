/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_etcd.h -- an etcd v3 client on the event loop, through the JSON gateway
 * (cm_etcd_proto) and common/cm_curl: no gRPC stack.
 *
 *   cm_etcd (one per daemon, from the etcd section)
 *    +- endpoints: the members' URLs; calls go to the current one, and a
 *    |             member that fails (no reply, "unavailable") is left for
 *    |             the next, round robin
 *    +- TLS: etcd.tls (CA, client certificate)
 *    +- token: etcd.username / password_file -> POST /v3/auth/authenticate,
 *    |         fetched when a call first needs it and again when etcd says it
 *    |         is invalid (a member restarted, the token expired): the call is
 *    |         retried once with the new one, unseen by the caller
 *    +- cm_etcd_call ... one POST each; a stream (the watch) hands its bytes
 *                        over as they arrive
 *
 * What to do after a failure (back off, relist) is the caller's: cm_etcd
 * only classifies it (struct cm_etcd_result). The password and the token are
 * never logged and are wiped from memory when dropped.
 */
#ifndef COMMON_CM_ETCD_H
#define COMMON_CM_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cm_conf_etcd;
struct cm_curl;
struct cm_etcd;
struct cm_etcd_call;

#define CM_ETCD_NO_TIMEOUT (-1L) /* cm_etcd_call(): a stream, ended by the server or a cancel */

enum cm_etcd_result_kind {
    CM_ETCD_OK = 0,          /* a 2xx reply: body is etcd's answer */
    CM_ETCD_TRANSPORT = 1,   /* no reply: refused, timed out, TLS, reset; next member next */
    CM_ETCD_UNAVAILABLE = 2, /* the member cannot serve now (no leader, its own timeout, 5xx) */
    CM_ETCD_REFUSED = 3,     /* etcd refused this request (permission, argument, no such lease) */
    CM_ETCD_AUTH = 4,        /* authentication failed: wrong user or password, or auth needed */
};

struct cm_etcd_result {
    enum cm_etcd_result_kind kind;
    long status;      /* HTTP status, 0 without a reply */
    int code;         /* etcd's gRPC code (cm_etcd_code), 0 when none */
    const char *body; /* the reply (borrowed for the callback); "" for a stream's end */
    size_t len;
    const char *reason;   /* one line, "" when ok: "connection refused", "etcdserver: ..." */
    const char *endpoint; /* the member asked (borrowed for the callback) */
    bool aborted;         /* a stream whose data callback stopped it */
};

/** The call ended. @res and what it points to are borrowed for the callback. */
typedef void cm_etcd_done_fn(void *arg, const struct cm_etcd_result *res);
/**
 * Bytes of a stream's 200 reply as they arrive (borrowed). Non-zero stops the
 * transfer (the done callback then has aborted=true). Must not cancel calls.
 */
typedef int cm_etcd_stream_fn(void *arg, const char *data, size_t len);

struct cm_etcd_stats {
    uint64_t calls;       /* started */
    uint64_t failures;    /* ended without a 2xx reply */
    uint64_t auths;       /* authenticate requests */
    uint64_t rotations;   /* moves to the next member */
    uint64_t last_ok_ms;  /* monotonic time of the last 2xx reply, 0 = none yet */
    uint64_t last_err_ms; /* of the last failure, 0 = none */
    char last_error[160]; /* "endpoint: reason" of the last failure */
};

/**
 * A client for @conf (borrowed for the call: endpoints, TLS paths, user and
 * password are copied). @curl is borrowed and must outlive it. NULL on ENOMEM.
 */
struct cm_etcd *cm_etcd_new(struct cm_curl *curl, const struct cm_conf_etcd *conf);
/** Cancels every call (no callbacks) and wipes the secrets. Accepts NULL. */
void cm_etcd_free(struct cm_etcd *e);

/**
 * POSTs @body (taken, also on failure; wiped when freed) to @path on the
 * current member. @timeout_ms: 0 = etcd.request_timeout_ms,
 * CM_ETCD_NO_TIMEOUT for a stream. @on_stream (streams only) gets the reply
 * bytes of a 200 reply; @on_done runs once at the end (not when cancelled,
 * not from inside this function). On success *out (if not NULL) is a handle
 * valid until @on_done runs. CM_ENOMEM.
 */
int cm_etcd_call(struct cm_etcd *e, const char *path, char *body, long timeout_ms,
                 cm_etcd_stream_fn *on_stream, cm_etcd_done_fn *on_done, void *arg,
                 struct cm_etcd_call **out);
/**
 * The same to the @i-th configured member, whatever the current one is, and
 * without moving on after a failure (fedgslbctl asks every member).
 */
int cm_etcd_call_member(struct cm_etcd *e, size_t i, const char *path, char *body, long timeout_ms,
                        cm_etcd_done_fn *on_done, void *arg, struct cm_etcd_call **out);
/** Stops a call; its done callback does not run. Accepts NULL. Not from a data callback. */
void cm_etcd_call_cancel(struct cm_etcd_call *c);

/**
 * The current member misbehaves in a way no call saw (a watch silent while a
 * check failed): calls from now on go to the next member.
 */
void cm_etcd_next_endpoint(struct cm_etcd *e);
/** etcd said the token is invalid outside a call's reply (a watch's cancel). */
void cm_etcd_forget_token(struct cm_etcd *e);

/** The member calls go to now (borrowed). */
const char *cm_etcd_endpoint(const struct cm_etcd *e);
size_t cm_etcd_endpoint_count(const struct cm_etcd *e);
/** The @i-th configured endpoint (borrowed). */
const char *cm_etcd_endpoint_at(const struct cm_etcd *e, size_t i);
void cm_etcd_get_stats(const struct cm_etcd *e, struct cm_etcd_stats *out);

/** "ok", "transport", "unavailable", "refused", "auth". */
const char *cm_etcd_kind_name(enum cm_etcd_result_kind kind);

#endif /* COMMON_CM_ETCD_H */
