/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lbp_proxy.h -- the proxy: listeners, their settings, backend pools, the
 * state documents that feed the pools, and the connections.
 *
 *   lbp_proxy (one event loop)
 *    +- lbp_listener ... one per proxy.listen address, each with its current
 *    |   |               lbp_site (lbp_site.h: settings of one config
 *    |   |               generation, held by the connections accepted with it)
 *    +- lbp_poolref ...  one per (member, service); refcounted by sites; kept
 *    |                   across reloads (backend statistics survive)
 *    +- state documents  cm_store: newest accepted per vantage -> pools' backends
 *    +- intents          the operator's (common/cm_intent.h): a member forced down
 *                        answers 503 (its pools get no backend); drained or
 *                        evacuated members keep being served (DNS sends no new
 *                        clients; those with cached answers finish)
 *    +- ticket keys      lbp_tickets (lbp_ticket.h), rotated on a timer, lent
 *                        to every TLS set
 *    +- connections      lbp_conn_reg (lbp_conn.h), counted here against
 *                        max_connections
 */
#ifndef LBPROXY_LBP_PROXY_H
#define LBPROXY_LBP_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "common/cm_conf.h"
#include "common/cm_str.h"
#include "lbproxy/lbp_alog.h"
#include "lbproxy/lbp_conn.h"
#include "lbproxy/lbp_site.h"

struct cm_intent_view;
struct cm_intents;
struct cm_lpm;
struct cm_state;
struct cm_store;
struct cm_store_cand;
struct lbp_alog;
struct lbp_proxy;

struct lbp_proxy {
    struct event_base *base; /* borrowed */
    struct cm_conf *conf;    /* reference */
    struct lbp_listener **listeners;
    size_t listener_count;
    struct lbp_poolref **pools;
    size_t pool_count;
    struct cm_store *store;       /* owned: newest accepted document per vantage (cm_store.h) */
    struct cm_intents *intents;   /* owned: the operator's intents (cm_intent.h) */
    struct cm_intent_view *iview; /* owned: intents compiled for conf */
    struct lbp_conn_reg conns;    /* its draining flag is the proxy's */
    size_t conn_count;            /* accepted and not gone yet (conn_gone) */
    bool accept_paused;           /* max_connections reached (the guards pause on their own) */
    struct lbp_alog *alog;        /* owned or NULL (lbp_alog.h); lent to conns */
    struct event *drain_timer;
    struct event *expire_timer;  /* every second: lbp_proxy_state_expire */
    struct lbp_tickets *tickets; /* owned: session ticket keys, kept across reloads */
    struct event *ticket_timer;  /* rotates them every ticket_period_s */
    uint32_t ticket_period_s;
    uint64_t state_pushes, state_rejects;
};

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
/**
 * Makes @c (a candidate of px->store, taken) the documents held: the pools
 * take their backends from them, the state file is written. The distributed
 * mode's way in (common/cm_etcd_feed); there pushes and forgets are refused
 * (CM_ENOTSUP) and expiry does nothing (a vantage goes when its key does).
 */
int lbp_proxy_state_apply(struct lbp_proxy *px, struct cm_store_cand *c, char *err, size_t errlen);
/** Drops @vantage's document (cm_ctl_state_forget_fn); CM_ENOENT when none is held. */
int lbp_proxy_state_forget(struct lbp_proxy *px, const char *vantage, char *err, size_t errlen);
/**
 * PUT /v1/intents/ID (cm_intent_routes): takes one intent at wall time
 * @now_s (cm_intents_put rules), applies it to the pools and writes the state
 * file. CM_EINVAL, CM_EEXIST, CM_ETOOBIG with a reason in @err.
 */
int lbp_proxy_intent_put(struct lbp_proxy *px, const char *text, size_t len, int64_t now_s,
                         bool *changed, char *err, size_t errlen);
struct cm_etcd_feed;
/** The distributed mode: the intents follow the intent keys of @f (cm_etcd_feed_intents). */
void lbp_proxy_intents_etcd(struct lbp_proxy *px, struct cm_etcd_feed *f, int64_t now_s);
/** DELETE /v1/intents/ID: a tombstone by @by. CM_ENOENT when not held. */
int lbp_proxy_intent_remove(struct lbp_proxy *px, const char *id, const char *by, int64_t now_s,
                            char *err, size_t errlen);
/** GET /v1/intents: {"intents": [...], "digest": {...}} (new reference). */
json_t *lbp_proxy_intents_json(struct lbp_proxy *px, int64_t now_s);
/** The 1 s tick of the intents: prunes, and applies expiries to the pools. */
void lbp_proxy_intents_tick(struct lbp_proxy *px, int64_t now_s);

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

#endif /* LBPROXY_LBP_PROXY_H */
