/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lbp_conn.h -- client connections, each with its upstream exchange (the
 * state machine is in lbp_conn.c), and the registry that holds them for
 * their owner.
 *
 *   owner (lbp_proxy) ... counts connections against its limits
 *    +- lbp_conn_reg (embedded): event base, access log, draining flag,
 *        |                       gone callback back to the owner
 *        +- live ---> lbp_conn <-> lbp_conn ...  each holds a reference on the
 *        |                                       lbp_site it was accepted with
 *        +- freelist: recycled lbp_conn objects (malloc at boot, pools at run)
 *
 * A connection knows its registry and its site, never its owner: when it
 * ends it calls reg->gone, through which the owner resumes accepting or
 * finishes draining. Single-threaded: everything runs on reg->base.
 */
#ifndef LBPROXY_LBP_CONN_H
#define LBPROXY_LBP_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/event.h>

struct lbp_alog;
struct lbp_conn;
struct lbp_site;

/** A connection of the registry has ended (once per lbp_conn_accept() call). */
typedef void lbp_conn_gone_fn(void *arg);

TAILQ_HEAD(lbp_conn_list, lbp_conn);

struct lbp_conn_reg {
    struct event_base *base; /* borrowed */
    /* Borrowed, NULL when off: the owner opens, replaces and closes it;
     * connections use it only while handling an event. */
    struct lbp_alog *alog;
    struct lbp_conn_list live;     /* open connections, oldest first */
    struct lbp_conn_list freelist; /* recycled connection objects */
    size_t free_count;
    bool draining; /* set by the owner: no more keep-alive */
    lbp_conn_gone_fn *gone;
    void *gone_arg; /* borrowed */
};

/** An empty registry on @base; @gone(@gone_arg) runs as each connection ends. */
void lbp_conn_reg_init(struct lbp_conn_reg *reg, struct event_base *base, lbp_conn_gone_fn *gone,
                       void *gone_arg);
/** Frees the recycled objects. Close the live connections first (lbp_conn_close()). */
void lbp_conn_reg_fini(struct lbp_conn_reg *reg);

/**
 * A connection on @fd (accepted, non-blocking; taken, closed on failure too)
 * with @site's settings (a reference is taken). The owner counts it before
 * the call: reg->gone runs exactly once for it, when it ends, or before this
 * returns CM_ENOMEM.
 */
int lbp_conn_accept(struct lbp_conn_reg *reg, struct lbp_site *site, int fd,
                    const struct sockaddr *sa, int salen);
/** Drain: close now if idle, else close after the current response. */
void lbp_conn_drain(struct lbp_conn *c);
/** Closes and releases (used at shutdown); reg->gone runs. */
void lbp_conn_close(struct lbp_conn *c);
/** The connection after @c in its registry's live list, or NULL. */
struct lbp_conn *lbp_conn_next(struct lbp_conn *c);

#endif /* LBPROXY_LBP_CONN_H */
