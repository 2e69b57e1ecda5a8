/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lbp_proxy.h -- the proxy: listeners, their settings, backend pools, the
 * state documents that feed the pools, and the connections.
 *
 *   lbp_proxy (one event loop)
 *    +- lbp_listener ... one per proxy.listen address; the socket survives
 *    |   |               reloads; counters for metrics
 *    |   +- site ------> lbp_site (refcounted, immutable): the settings of one
 *    |                   config generation: limits, timeouts, trusted
 *    |                   proxies, TLS set, pool. A connection holds the site
 *    |                   it was accepted with, so it finishes on old settings
 *    |                   after a reload.
 *    +- lbp_poolref ...  one per (member, service); refcounted by sites; kept
 *    |                   across reloads (backend statistics survive)
 *    +- state documents  cm_store: newest accepted per vantage -> pools' backends
 *    +- connections      (lbp_conn.c), counted against max_connections
 */
#ifndef LBPROXY_LBP_PROXY_H
#define LBPROXY_LBP_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <jansson.h>

#include "common/cm_accept.h"
#include "common/cm_conf.h"
#include "common/cm_net.h"
#include "common/cm_str.h"
#include "lbproxy/lbp_http.h"

struct cm_lpm;
struct cm_state;
struct cm_store;
struct lbp_alog;
struct lbp_conn;
struct lbp_pool;
struct lbp_proxy;
struct lbp_tls;

/* Per-listener counters (kept across reloads). */
struct lbp_lstats {
    uint64_t conns_total;
    uint64_t conns_active;
    uint64_t requests;
    uint64_t status_class[6]; /* [1..5]: 1xx..5xx answered to clients */
    uint64_t bytes_in;        /* request bytes from clients (heads + bodies) */
    uint64_t bytes_out;       /* response bytes to clients */
    uint64_t retries;
    uint64_t timeouts;
    uint64_t rejected; /* 400/408/413/414/431 answered by the proxy */
};

struct lbp_poolref {
    int refs;
    char *key; /* owned "member service" */
    struct lbp_pool *pool;
    bool from_state; /* backends come from a state document (else static) */
};

struct lbp_listener {
    int refs;
    struct lbp_proxy *px; /* borrowed */
    struct cm_addr addr;
    char name[CM_ADDR_STRLEN];
    struct evconnlistener *evl; /* owned; NULL once closed */
    struct lbp_site *site;      /* reference: settings for new connections */
    struct lbp_lstats stats;
    /* Pauses evl when accept() runs out of descriptors. Accept runs only while
     * neither the guard nor px->accept_paused (max_connections) holds it. */
    struct cm_accept_guard guard;
};

struct lbp_site {
    int refs;
    struct lbp_proxy *px;     /* borrowed */
    struct lbp_listener *lst; /* reference */
    struct lbp_poolref *pr;   /* reference */
    struct lbp_tls *tls;      /* reference or NULL */
    struct cm_lpm *trusted;   /* owned or NULL */
    struct lbp_http_limits lim;
    struct cm_conf_proxy_timeouts to;
    char member[64];
    char service[128];
};

TAILQ_HEAD(lbp_conn_list, lbp_conn);

struct lbp_proxy {
    struct event_base *base; /* borrowed */
    struct cm_conf *conf;    /* reference */
    struct lbp_listener **listeners;
    size_t listener_count;
    struct lbp_poolref **pools;
    size_t pool_count;
    struct cm_store *store; /* owned: newest accepted document per vantage (cm_store.h) */
    struct lbp_conn_list conns;
    size_t conn_count;
    struct lbp_conn_list free_conns; /* recycled connection objects */
    size_t free_count;
    bool accept_paused; /* max_connections reached (the guards pause on their own) */
    bool draining;
    struct lbp_alog *alog; /* owned or NULL */
    struct event *drain_timer;
    struct event *expire_timer; /* every second: lbp_proxy_state_expire */
    uint64_t state_pushes, state_rejects;
};

/* ---- lbp_proxy.c ---- */

/** Binds every listener of @conf->proxy and builds pools. "reason" in @err. */
int lbp_proxy_new(struct event_base *base, struct cm_conf *conf, struct lbp_proxy **out, char *err,
                  size_t errlen);
/** Stops everything now (connections closed). Accepts NULL. */
void lbp_proxy_free(struct lbp_proxy *px);
/** New configuration: listeners reconciled by address; old settings stay with old connections. */
int lbp_proxy_reload(struct lbp_proxy *px, struct cm_conf *conf, char *err, size_t errlen);
/**
 * Loads proxy.state_file if any (a missing file is fine; a truncated or corrupt
 * one is replaced by its .prev, cm_file_load). "file: reason" in @err.
 */
int lbp_proxy_load_state(struct lbp_proxy *px, char *err, size_t errlen);
/**
 * --check-config: proxy.state_file's directory exists and is writable, and
 * the file, if present, loads without falling back to .prev. Nothing is
 * changed on disk. "file: reason" in @err.
 */
int lbp_proxy_check_state(const struct cm_conf *conf, char *err, size_t errlen);
/** PUT /v1/state. */
int lbp_proxy_state_put(struct lbp_proxy *px, const char *body, size_t len, const char *writer,
                        char *err, size_t errlen);
/**
 * Drops the documents of vantages silent for longer than cm_store_expiry_ms()
 * at @now_ms (monotonic), unless every vantage is (cm_store_expire, as dnsd
 * does); the pools then take their backends from the remaining documents.
 * Runs every second; returns how many were dropped.
 */
size_t lbp_proxy_state_expire(struct lbp_proxy *px, uint64_t now_ms);
/** Drops @vantage's document (cm_ctl_state_forget_fn); CM_ENOENT when none is held. */
int lbp_proxy_state_forget(struct lbp_proxy *px, const char *vantage, char *err, size_t errlen);
/** GET /v1/state: listeners with their pools (new reference). */
json_t *lbp_proxy_state_json(struct lbp_proxy *px);
void lbp_proxy_metrics(struct lbp_proxy *px, struct cm_buf *out);
/** SIGTERM: stop accepting, close idle connections; @done_cb runs when none is left. */
void lbp_proxy_drain(struct lbp_proxy *px);
/**
 * The descriptors the proxy may hold with @conf: a client and an upstream
 * connection per proxy.max_connections, idle upstream connections (at most
 * min(upstream_idle_connections, max_connections) per listener's pool: an
 * estimate, as backends come from state documents), the listening sockets,
 * the control API and a reserve (cm_nofile.h). How the sum is made goes into
 * @why (@cap bytes, 200 is enough).
 */
uint64_t lbp_proxy_nofile_need(const struct cm_conf *conf, char *why, size_t cap);
/** Called by lbp_conn when a connection ends. */
void lbp_proxy_conn_gone(struct lbp_proxy *px);

void lbp_site_ref(struct lbp_site *s);
void lbp_site_unref(struct lbp_site *s);

/* ---- lbp_conn.c ---- */

/** Takes @fd (accepted, non-blocking). Counts itself in px. CM_ENOMEM (fd closed). */
int lbp_conn_accept(struct lbp_proxy *px, struct lbp_site *site, int fd, const struct sockaddr *sa,
                    int salen);
/** Drain: close now if idle, else close after the current response. */
void lbp_conn_drain(struct lbp_conn *c);
/** Closes and releases (used at shutdown). */
void lbp_conn_close(struct lbp_conn *c);
/** The connection after @c in px->conns, or NULL. */
struct lbp_conn *lbp_conn_next(struct lbp_conn *c);
/** Frees recycled connection objects. */
void lbp_conn_free_list(struct lbp_proxy *px);

/* ---- lbp_alog.c ---- */

struct lbp_alog_entry {
    const char *client;
    const char *listener;
    const char *member;
    const char *service;
    const char *method;
    const char *uri; /* may be cut */
    const char *user_agent;
    const char *referer;
    const char *backend; /* "" when none */
    int http_minor;
    unsigned status;
    uint64_t bytes_in, bytes_out;
    uint64_t duration_us;
    unsigned retries;
    bool tls;
};

int lbp_alog_open(enum cm_access_log_format format, const char *path, struct lbp_alog **out,
                  char *err, size_t errlen);
void lbp_alog_write(struct lbp_alog *a, const struct lbp_alog_entry *e);
void lbp_alog_flush(struct lbp_alog *a);
void lbp_alog_close(struct lbp_alog *a);

#endif /* LBPROXY_LBP_PROXY_H */
