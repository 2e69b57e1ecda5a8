/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lbp_backend.h -- the backends of one proxy listener (member x service):
 * choice, health, and idle upstream connections.
 *
 *   lbp_pool (one per listener; lives on the listener's event loop)
 *    +- lbp_backend ... one per "ip:port" from the state document's
 *                       `backends` (the member's Ready nodes at the nodePort)
 *        +- outstanding requests, latency EWMA, success/failure counters
 *        +- passive outlier state: consecutive failures -> ejected
 *        +- active check: the service's check (http/https/tcp) on its own
 *           timer, rise/fall hysteresis
 *        +- idle keep-alive connections (owned lbp_io streams)
 *
 * Choice: power of two choices. Two distinct random candidates among the
 * available backends (active check up or unknown, not ejected, not
 * @exclude); the one with the lower (outstanding + 1) * latency EWMA wins
 * (a backend with no sample yet uses the pool's mean). One candidate: it.
 * None available: "panic" -- choose among all non-excluded backends as if
 * healthy (a proxy that refuses everything is worse than one that tries),
 * counted in stats.
 *
 * Passive outlier ejection: `eject_consecutive` (5) consecutive connect
 * failures / resets / 5xx eject the backend for eject_base_ms (30 s), doubled
 * on every repeat ejection up to eject_max_ms; the doubling resets after a
 * backend stays healthy for eject_max_ms. Never more than max_eject_percent
 * (50 %) of the backends are ejected at once: an ejection over that limit is
 * skipped (counted). Successes reset the consecutive count.
 *
 * Lifetime: backends are reference counted. A connection holding a backend
 * for a request keeps it alive; lbp_pool_set_backends() drops the pool's
 * reference to removed backends (their idle connections are closed at once,
 * in-flight requests finish).
 */
#ifndef LBPROXY_LBP_BACKEND_H
#define LBPROXY_LBP_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <jansson.h>

#include "common/cm_conf.h"
#include "lbproxy/lbp_check.h"

struct cm_buf;
struct lbp_backend;
struct lbp_io;
struct lbp_pool;

struct lbp_pool_params {
    uint32_t eject_consecutive; /* default 5 */
    uint32_t eject_base_ms;     /* default 30000 */
    uint32_t eject_max_ms;      /* default 300000 */
    uint32_t max_eject_percent; /* default 50 */
    uint32_t idle_max;          /* idle upstream connections kept per backend, default 1024 */
    uint32_t idle_timeout_ms; /* an idle upstream connection is closed after this, default 15000 */
    bool active_checks;       /* default true */
};

enum lbp_outcome {
    LBP_OUTCOME_OK = 0,       /* a response other than 5xx */
    LBP_OUTCOME_5XX = 1,      /* a 5xx response */
    LBP_OUTCOME_CONNECT = 2,  /* connect failed or timed out */
    LBP_OUTCOME_RESET = 3,    /* closed or reset before a complete response */
    LBP_OUTCOME_TIMEOUT = 4,  /* upstream timeout after the request was sent */
    LBP_OUTCOME_ABANDONED = 5 /* client went away; not the backend's fault, not counted */
};

struct lbp_backend_stats {
    const char *name; /* borrowed "ip:port" */
    bool check_up;    /* active check verdict (true while unknown) */
    bool ejected;
    uint64_t ejected_ms_left;
    uint32_t ejections;
    uint32_t outstanding;
    uint64_t requests, ok, failed_5xx, failed_connect, failed_reset, failed_timeout;
    double latency_ewma_ms; /* < 0 when no sample */
    double success_rate;    /* over the last 100 outcomes, 1.0 when none */
    uint32_t idle;          /* idle connections held */
    /* additions */
    enum lbp_check_state check_state;
    uint32_t consecutive_failures; /* the current streak feeding ejection */
    uint64_t checks;               /* active checks completed */
};

struct lbp_pool_stats {
    size_t backends;
    size_t available;
    uint64_t picks, panic_picks, ejections, ejections_skipped;
};

void lbp_pool_params_default(struct lbp_pool_params *p);

/**
 * A pool named @name ("jpn default/web", for logs and metrics; copied) on
 * @base (borrowed). @check: the service's check for active checks (copied;
 * NULL = no active checks). NULL on ENOMEM.
 */
struct lbp_pool *lbp_pool_new(struct event_base *base, const char *name,
                              const struct lbp_pool_params *p, const struct cm_conf_check *check);
/** Drops the pool's references; backends still held by requests live on. Accepts NULL. */
void lbp_pool_free(struct lbp_pool *pool);

/**
 * Replaces the set with @addrs ("ip:port" / "[v6]:port"). Backends present
 * before keep their state and statistics. CM_EINVAL names the bad address in
 * @err (and changes nothing); CM_ENOMEM.
 */
int lbp_pool_set_backends(struct lbp_pool *pool, const char *const *addrs, size_t n, char *err,
                          size_t errlen);
size_t lbp_pool_size(const struct lbp_pool *pool);

/**
 * Picks a backend (see the top of this file), never @exclude (may be NULL).
 * Returns a new reference (lbp_backend_unref when done) or NULL when the pool
 * has no other backend.
 */
struct lbp_backend *lbp_pool_pick(struct lbp_pool *pool, const struct lbp_backend *exclude);

void lbp_backend_ref(struct lbp_backend *b);
void lbp_backend_unref(struct lbp_backend *b);

/** A request is being sent to @b. */
void lbp_backend_begin(struct lbp_backend *b);
/**
 * The request started with lbp_backend_begin() ended. @latency_us: time to
 * the response head (OK / 5XX), ignored otherwise. Feeds the EWMA, the
 * success window and outlier ejection.
 */
void lbp_backend_end(struct lbp_backend *b, enum lbp_outcome o, uint64_t latency_us);

/** The backend's address (borrowed). */
const struct sockaddr *lbp_backend_sockaddr(const struct lbp_backend *b, socklen_t *len);
const char *lbp_backend_name(const struct lbp_backend *b);

/**
 * Idle keep-alive connections to @b. take: an idle connection that is still
 * open (owned by the caller from now on, callbacks cleared, read enabled
 * state undefined: set your own), or NULL. put: hands back a connection whose
 * last response was complete and reusable; the pool owns it, closes it on
 * any read event (an idle upstream must not send), error, idle timeout, or
 * when over idle_max.
 */
struct lbp_io *lbp_backend_idle_take(struct lbp_backend *b);
/** New idle limits (a reload); connections over @idle_max close as they come back. */
void lbp_pool_set_idle(struct lbp_pool *pool, uint32_t idle_max, uint32_t idle_timeout_ms);
void lbp_backend_idle_put(struct lbp_backend *b, struct lbp_io *io);

void lbp_pool_get_stats(const struct lbp_pool *pool, struct lbp_pool_stats *out);
/** Stats of backend @i (0 .. lbp_pool_size - 1) in a stable order. */
void lbp_pool_backend_stats(const struct lbp_pool *pool, size_t i, struct lbp_backend_stats *out);

/**
 * {"backends": [{"address", "check", "ejected", "ejections", "outstanding",
 * "requests", "success_rate", "latency_ewma_ms", ...}], "panic_picks": N}
 * for the proxy's /v1/state: what real traffic sees. New reference or NULL.
 */
json_t *lbp_pool_json(const struct lbp_pool *pool);
/** Prometheus lines, labels pool="<name>",backend="<ip:port>". */
void lbp_pool_metrics(const struct lbp_pool *pool, struct cm_buf *out);

/* ---- additions (lbp_backend.c) ----------------------------------------
 *
 * Details the declarations above leave open:
 * - Outcomes: LBP_OUTCOME_TIMEOUT counts toward ejection like 5xx, connect
 *   failures and resets; ABANDONED only decrements `outstanding` (not in
 *   `requests`). requests = ok + 5xx + connect + reset + timeout. The latency
 *   EWMA (alpha 0.25) takes OK and 5XX samples only; without new samples a
 *   backend's latency drifts to the pool mean (the gap halves every 5 s), so
 *   a backend that lost every choice after a slow answer is tried again.
 * - An ejection over max_eject_percent is skipped and the consecutive count
 *   starts over (one pool with a single backend never ejects it).
 * - lbp_backend_idle_take() returns the connection with callbacks and
 *   timeouts cleared, EV_READ enabled (it was, while idle) and watermarks as
 *   the caller left them at put: set callbacks, timeouts and enable/disable
 *   as needed. idle_put() on an ejected, check-down or removed backend
 *   closes at once; an ejection or a "down" verdict closes the idle ones.
 * - Active checks: per backend, every interval_ms +- 10 %, one deadline of
 *   timeout_ms for connect + request + status line. http: "GET path
 *   HTTP/1.1", Host = check->host or the backend address, Connection: close;
 *   only the status line is judged ("HTTP/1.x NNN" within [status_min,
 *   status_max]; expect_body is ignored). https: the same GET after a TLS
 *   1.2+ handshake (SNI = check->host; the certificate is not verified:
 *   nodes are addressed by IP). tcp: a connect that succeeds passes. Checks
 *   go to the backend's own address and port (the nodePort): check->port is
 *   ignored, since a node forwards only the nodePort.
 */

/**
 * Prometheus lines of @n pools (borrowed) with each family's HELP/TYPE once:
 * use this rather than lbp_pool_metrics() per pool when there are several
 * pools, since a family must not repeat its HELP/TYPE in one exposition.
 * Families: fedgslb_proxy_backend_{requests_total, outcomes_total{outcome},
 * success_rate, latency_ewma_seconds, ejected, ejections_total, outstanding,
 * check_up, idle_connections}{pool,backend} and
 * fedgslb_proxy_pool_{picks_total, panic_picks_total,
 * ejections_skipped_total}{pool}.
 */
void lbp_pools_metrics(const struct lbp_pool *const *pools, size_t n, struct cm_buf *out);

#endif /* LBPROXY_LBP_BACKEND_H */
