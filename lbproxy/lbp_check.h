/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lbp_check.h -- active health checks of the proxy's backends. Private to
 * lbproxy: the interface between lbp_backend.c (the pool, which decides
 * when a backend is checked and what a verdict means for traffic) and
 * lbp_check.c (running the checks). lbp_backend.h includes it for the
 * verdict; this header needs nothing of the pool's.
 *
 *   lbp_pool ----------- struct lbp_check_conf: the service's check with
 *    |                   defaults filled in, the https client context
 *    +- lbp_backend ---- struct lbp_check: timer, connection, rise/fall
 *                        streak, verdict
 *
 *   lbp_check_start                 timer                 connected (tcp) or
 *   ---------------> IDLE --------------------> RUNNING ---------------------+
 *                     ^  first run: within a      | status line (http/https),|
 *                     |  tenth of the interval    | timeout, error           |
 *                     |                           v                          |
 *                     +------------------- result: rise/fall -> verdict <----+
 *                       next run in             on_result(arg, verdict)
 *                       interval +- 10 %
 *
 * What a check does (http, https, tcp; one deadline of timeout_ms for
 * connect + request + status line) is described at the end of
 * lbp_backend.h. Everything runs on the pool's event loop.
 */
#ifndef LBPROXY_LBP_CHECK_H
#define LBPROXY_LBP_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/ssl.h>

#include "common/cm_conf.h"
#include "common/cm_net.h"

/** Active check verdict of a backend. */
enum lbp_check_state {
    LBP_CHECK_UNKNOWN = 0, /* no verdict yet (or checks off): counts as up */
    LBP_CHECK_UP = 1,      /* `rise` consecutive passes */
    LBP_CHECK_DOWN = 2,    /* `fall` consecutive failures */
};

/** "unknown", "up", "down" (static storage). */
const char *lbp_check_state_name(enum lbp_check_state s);

/* The pool's side of its backends' checks (embedded in struct lbp_pool). */
struct lbp_check_conf {
    struct cm_conf_check check; /* defaults filled in; path/host: the copies below */
    char *path;                 /* owned */
    char *host;                 /* owned, NULL = the backend's address */
    SSL_CTX *tls;               /* owned client context for https checks, else NULL */
    struct event_base *base;    /* borrowed: the pool's loop */
    const char *pool_name;      /* borrowed: the pool's name, for logs */
    uint64_t *rng;              /* borrowed: the pool's random state (cm_rand) */
};

/**
 * Copies @check (borrowed) into @conf with defaults for the zero fields
 * (interval 10 s, timeout 3 s, rise 1, fall 1, status 200-399, path
 * "/healthz"); expect_body is dropped. @with_tls: create the client context
 * when the check is https. @base, @pool_name and @rng are borrowed and must
 * outlive @conf. CM_ENOMEM (with @conf left empty).
 */
int lbp_check_conf_init(struct lbp_check_conf *conf, const struct cm_conf_check *check,
                        bool with_tls, struct event_base *base, const char *pool_name,
                        uint64_t *rng);
/** Frees what lbp_check_conf_init() allocated. Accepts a zeroed @conf. */
void lbp_check_conf_fini(struct lbp_check_conf *conf);

/** Called after every completed check with the verdict, changed or not. */
typedef void lbp_check_result_fn(void *arg, enum lbp_check_state verdict);

enum lbp_check_phase {
    LBP_CHECK_IDLE = 0,    /* waiting for the next run */
    LBP_CHECK_RUNNING = 1, /* connecting / waiting for the status line */
};

/* Active check of one backend (embedded in struct lbp_backend). Fields are
 * lbp_check.c's; the backend reads them through the inline functions below. */
struct lbp_check {
    const struct lbp_check_conf *conf; /* borrowed: the pool's; NULL while stopped */
    const char *name;                  /* borrowed: the backend's "ip:port" (Host, logs) */
    const struct cm_addr *addr;        /* borrowed: where to connect */
    lbp_check_result_fn *on_result;
    void *arg;

    enum lbp_check_phase phase;
    enum lbp_check_state verdict;
    struct event *timer;     /* owned: interval while idle, deadline while running */
    struct bufferevent *bev; /* owned while running */
    uint32_t passes, fails;  /* consecutive results of the current streak */
    uint64_t runs;
};

/**
 * Prepares @c (no verdict yet, not started). @name and @addr (borrowed)
 * must outlive @c; @on_result(@arg, verdict) reports each result.
 */
void lbp_check_init(struct lbp_check *c, const char *name, const struct cm_addr *addr,
                    lbp_check_result_fn *on_result, void *arg);
/**
 * Starts checking with @conf (borrowed, until lbp_check_stop): the first run
 * comes within a tenth of the interval. Without memory for the timer the
 * check stays unstarted (lbp_check_is_started() false) and may be started
 * again later.
 */
void lbp_check_start(struct lbp_check *c, const struct lbp_check_conf *conf);
/** Cancels a running check and the timer; the verdict stays. Idempotent. */
void lbp_check_stop(struct lbp_check *c);

static inline bool lbp_check_is_started(const struct lbp_check *c)
{
    return c->timer != NULL;
}

static inline enum lbp_check_state lbp_check_verdict(const struct lbp_check *c)
{
    return c->verdict;
}

/** Checks completed. */
static inline uint64_t lbp_check_runs(const struct lbp_check *c)
{
    return c->runs;
}

#endif /* LBPROXY_LBP_CHECK_H */
