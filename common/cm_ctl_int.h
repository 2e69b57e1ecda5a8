/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_ctl_int.h -- private to common/cm_ctl*.c: the control API's objects,
 * shared by the routing and access layer (cm_ctl.c) and the connection layer
 * (cm_ctl_conn.c: listener, TLS, request framing, deadlines, caps).
 *
 *   cm_ctl --listener fd--> ctl_conn (one per client, oldest first)
 *     ctl_conn: bufferevent (plain or TLS), deadline timer, state
 *       +- cm_ctl_req: the request being served (head facts, body, reply)
 *
 * A connection reads one request head (CM_CTL_HEAD_MAX), asks cm_ctl.c
 * whether the request may go on (ctl_req_admit: route, method, token), reads
 * the body only then, dispatches, writes the reply with reading paused, and
 * starts over or closes.
 */
#ifndef COMMON_CM_CTL_INT_H
#define COMMON_CM_CTL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "common/cm_accept.h"
#include "common/cm_ctl.h"
#include "common/cm_http.h"
#include "common/cm_log.h"
#include "common/cm_net.h"
#include "common/cm_str.h"

#define CTL_CODE_MAX 600 /* status codes counted: 100..599 */
#define CTL_METHODS  (CM_HTTP_GET | CM_HTTP_PUT | CM_HTTP_POST | CM_HTTP_DELETE)

struct ctl_route {
    unsigned methods;  /* CM_HTTP_* mask */
    char *prefix;      /* owned, starts with '/' */
    size_t prefix_len; /* strlen(prefix) */
    bool exact;        /* the path must equal prefix (built-ins) */
    enum cm_ctl_access access;
    cm_ctl_route_fn *fn;
    void *arg; /* borrowed, the daemon's */
};

/* A secret and what it grants. */
struct ctl_token {
    char *secret;  /* owned; wiped on free; never logged */
    size_t len;    /* strlen(secret) */
    char *vantage; /* owned; NULL for the operator token */
};

struct ctl_conn;
TAILQ_HEAD(ctl_conn_list, ctl_conn);

struct cm_ctl {
    struct event_base *base;      /* borrowed */
    int fd;                       /* listening socket, owned */
    struct event *accept_ev;      /* owned, on fd */
    struct cm_accept_guard guard; /* pauses accept_ev when descriptors run out */
    bool guard_ready;             /* guard initialised */
    SSL_CTX *ssl;                 /* owned; NULL = plain HTTP */
    struct ctl_token *tokens;     /* owned array; empty = no authentication (loopback only) */
    size_t token_count;
    bool open_read;              /* reads need no token: loopback listener or public_read */
    struct cm_ctl_callbacks cbs; /* copied */
    struct ctl_route *routes;    /* owned array */
    size_t route_count;
    size_t body_max;            /* per request, <= CM_CTL_BODY_MAX */
    size_t body_total;          /* body bytes reserved by all connections, <= CM_CTL_BODY_TOTAL */
    struct ctl_conn_list conns; /* oldest request cycle first */
    size_t conn_count;
    size_t conn_max;
    uint32_t head_ms;    /* control.request_timeout_ms: a request head's absolute deadline */
    double start_time_s; /* process start, seconds since the epoch */
    uint64_t replies[CTL_CODE_MAX]; /* replies sent, by status code */
    uint64_t evicted;               /* connections closed to make room */
    uint64_t refused;               /* connections closed at once: table full of busy ones */
    uint64_t timeouts;              /* connections closed at their deadline */
    struct cm_log_ratelimit rl;     /* peer-triggered events */
    char listen_text[CM_ADDR_STRLEN];
};

struct cm_ctl_req {
    struct ctl_conn *conn;         /* borrowed back pointer */
    unsigned method;               /* CM_HTTP_* */
    char *path;                    /* owned, decoded */
    char *query;                   /* owned raw query string, NULL when none */
    const struct ctl_token *who;   /* borrowed; NULL: no token given */
    const struct ctl_route *route; /* borrowed; set once admitted */
    uint64_t body_len;             /* Content-Length */
    struct cm_buf body;            /* the body once read (NUL-terminated) */
    struct cm_buf headers;         /* extra reply header lines, CRLF-terminated */
    int code;                      /* 0 until replied */
};

/* Connection layer (cm_ctl_conn.c). */
int ctl_listen_start(struct cm_ctl *ctl, const struct cm_addr *listen, char *err, size_t errlen);
void ctl_listen_stop(struct cm_ctl *ctl);
/** Queues the reply (status line, headers, @body) and arranges the rest of the cycle. */
void ctl_conn_send(struct cm_ctl_req *req, int code, const char *ctype, const char *body,
                   size_t len);
/** The same with a body in two parts (@tail follows @body): no copy to join them. */
void ctl_conn_send2(struct cm_ctl_req *req, int code, const char *ctype, const char *body,
                    size_t len, const char *tail, size_t tail_len);

/*
 * Routing and access layer (cm_ctl.c), called by the connection layer.
 * ctl_req_admit: once the head is parsed, before any body byte is read.
 * Returns 0 when the request may go on (its body is read next), else the
 * status it was answered with (the connection then closes if a body follows).
 */
int ctl_req_admit(struct cm_ctl *ctl, struct cm_ctl_req *req, const struct cm_http_head *h);
/** Runs the handler once the body is in; always replies. */
void ctl_req_dispatch(struct cm_ctl *ctl, struct cm_ctl_req *req);

#endif /* COMMON_CM_CTL_INT_H */
