/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lbp_site.h -- what a connection needs from the configuration it was
 * accepted with: the listener (its counters), the site (settings of one
 * configuration generation) and the pool reference. All refcounted; the
 * proxy builds and swaps them on reload, connections hold sites.
 *
 *   lbp_listener ... one per proxy.listen address; the socket survives
 *    |               reloads; counters for metrics (lbp_lstats)
 *    +- site ------> lbp_site (refcounted, immutable): limits, timeouts,
 *                     |  trusted proxies, TLS set. A connection holds the
 *                     |  site it was accepted with, so it finishes on old
 *                     |  settings after a reload.
 *                     +- lst ---> its lbp_listener (reference)
 *                     +- pr ----> lbp_poolref: one per (member, service);
 *                                 refcounted by sites; kept across reloads
 *                                 (backend statistics survive)
 *
 * A listener references its current site and every site references its
 * listener: the proxy breaks that cycle by dropping l->site when the listener
 * leaves the configuration or the proxy stops. Single-threaded.
 */
#ifndef LBPROXY_LBP_SITE_H
#define LBPROXY_LBP_SITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "common/cm_accept.h"
#include "common/cm_conf.h"
#include "common/cm_net.h"
#include "lbproxy/lbp_http.h"

struct cm_lpm;
struct lbp_pool;
struct lbp_proxy;
struct lbp_tickets;
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
    uint64_t rejected;    /* 400/408/413/414/431 answered by the proxy */
    uint64_t tls_full;    /* TLS handshakes done in full */
    uint64_t tls_resumed; /* TLS handshakes that resumed a session */
    uint64_t tls_failed;  /* TLS connections that ended before their handshake did */
};

/* Made by the proxy, which reconciles its pool set on reload; released here. */
struct lbp_poolref {
    int refs;
    char *key; /* owned "member service" */
    struct lbp_pool *pool;
    bool from_state; /* backends come from a state document (else static) */
};

struct lbp_listener {
    int refs;
    struct lbp_proxy *px; /* borrowed: the owner, for its accept callbacks (opaque here) */
    struct cm_addr addr;
    char name[CM_ADDR_STRLEN];
    struct evconnlistener *evl; /* owned; NULL once closed */
    struct lbp_site *site;      /* reference: settings for new connections */
    struct lbp_lstats stats;
    /* Pauses evl when accept() runs out of descriptors. Accept runs only while
     * neither the guard nor the owner's max_connections pause holds it. */
    struct cm_accept_guard guard;
};

struct lbp_site {
    int refs;
    struct lbp_listener *lst; /* reference */
    struct lbp_poolref *pr;   /* reference */
    struct lbp_tls *tls;      /* reference or NULL */
    struct cm_lpm *trusted;   /* owned or NULL */
    struct lbp_http_limits lim;
    struct cm_conf_proxy_timeouts to;
    char member[64];
    char service[128];
};

/** Drops a reference; the last one frees the pool. Accepts NULL. */
void lbp_poolref_unref(struct lbp_poolref *pr);

/** Stops accepting on @l (accept guard and socket released); safe to repeat. */
void lbp_listener_close(struct lbp_listener *l);
/** Drops a reference; the last one closes and frees @l. Accepts NULL. */
void lbp_listener_unref(struct lbp_listener *l);

/**
 * The site (refs 1) of listen entry @idx of @conf: settings copied from @conf,
 * trusted proxies and TLS set built (session tickets under @tickets' keys,
 * borrowed; the set takes a reference), and a reference taken on @lst and
 * @pr. NULL with "reason" in @err on allocation failure or a bad TLS setting.
 * Release with lbp_site_unref().
 */
struct lbp_site *lbp_site_new(const struct cm_conf *conf, size_t idx, struct lbp_listener *lst,
                              struct lbp_poolref *pr, struct lbp_tickets *tickets, char *err,
                              size_t errlen);
void lbp_site_ref(struct lbp_site *s);
/** Drops a reference; the last one releases the TLS set, pool and listener. Accepts NULL. */
void lbp_site_unref(struct lbp_site *s);

#endif /* LBPROXY_LBP_SITE_H */
