/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_watch.h -- list+watch of one resource kind on one member's API server,
 * the client-go reflector loop on our event loop:
 *
 *   LISTING --(all pages)--> WATCHING --(stream ends)--> WATCHING (from last RV)
 *      ^   (limit/continue)     |  410 Gone / ERROR 410      |
 *      +------------------------+  -> relist at once         |
 *      |                        |  error / garbage / 4xx     v
 *      +------- BACKOFF <-------+  (0.5 s doubling to 30 s, jittered)
 *                  |
 *                  +--> WATCHING from the last RV when the stream was merely
 *                       dropped (connection reset, timeout, API restart)
 *
 * A list replaces the caller's cache in one callback only when every page
 * arrived and parsed, so a failed relist never empties it. Each stream is
 * split into lines with a 4 MiB cap; list bodies are capped at 64 MiB.
 * Logs name the member and resource, never credentials.
 */
#ifndef HEALTH_HC_WATCH_H
#define HEALTH_HC_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "health/hc_k8s.h"

struct cm_conf;
struct hc_http;
struct hc_kube_target;
struct hc_watch;

/** A complete list: replaces every object of the kind. Takes ownership of the
 * objects; @objs itself is borrowed. */
typedef void hc_watch_sync_fn(void *arg, enum hc_k8s_kind kind, struct hc_k8s_obj **objs,
                              size_t count);
/** ADDED / MODIFIED / DELETED. Takes ownership of @obj. */
typedef void hc_watch_event_fn(void *arg, enum hc_k8s_kind kind, enum hc_k8s_event_type type,
                               struct hc_k8s_obj *obj);
/** Health of the loop changed: @ok after data arrived, !ok on an error.
 * @http_status is the failing status (401, 403, 500 ...) or 0. */
typedef void hc_watch_status_fn(void *arg, enum hc_k8s_kind kind, bool ok, long http_status);

struct hc_watch_params {
    uint32_t backoff_min_ms;  /* default 500 */
    uint32_t backoff_max_ms;  /* default 30000 */
    uint32_t watch_timeout_s; /* server timeoutSeconds base, jittered +-10 s; default 300 */
    uint32_t list_timeout_ms; /* per page; default 30000 */
    uint32_t page_limit;      /* default 500 */
};

struct hc_watch_cbs {
    hc_watch_sync_fn *sync;
    hc_watch_event_fn *event;
    hc_watch_status_fn *status;
    void *arg;
};

struct hc_watch_stats {
    uint64_t events;    /* ADDED/MODIFIED/DELETED applied */
    uint64_t bookmarks; /* BOOKMARK events */
    uint64_t lists;     /* complete lists (initial + relists) */
    uint64_t relists;   /* lists after the first */
    uint64_t errors;    /* transport, HTTP, parse and ERROR-event failures */
    bool synced;        /* a list completed at least once */
    bool healthy;       /* no error since the last data */
};

/** Fills @p with the defaults. */
void hc_watch_params_default(struct hc_watch_params *p);
/** Fills @p from the configuration's health.api (backoff, timeouts, page size). */
void hc_watch_params_from_conf(struct hc_watch_params *p, const struct cm_conf *conf);

/**
 * A watcher (not started). @http, @t, @member are borrowed and must outlive
 * it; @p and @cbs are copied. NULL on allocation failure.
 */
struct hc_watch *hc_watch_new(struct event_base *base, struct hc_http *http,
                              const struct hc_kube_target *t, const char *member,
                              enum hc_k8s_kind kind, const struct hc_watch_params *p,
                              const struct hc_watch_cbs *cbs);
#define HC_WATCH_PATH_MAX 512

/**
 * Narrows a watcher before hc_watch_start(): objects of namespace @ns only
 * (NULL: every namespace) that match @field_selector (NULL: all), e.g.
 * "metadata.name=usa-2hx8k" for one Secret. Both copied. CM_EINVAL for a
 * namespace of a cluster-scoped kind, CM_ETOOBIG, CM_ENOMEM.
 */
int hc_watch_scope(struct hc_watch *w, const char *ns, const char *field_selector);
/** Starts with a list. CM_ENOMEM. */
int hc_watch_start(struct hc_watch *w);
/** Cancels everything in flight (no callbacks after). Accepts NULL. */
void hc_watch_free(struct hc_watch *w);
void hc_watch_get_stats(const struct hc_watch *w, struct hc_watch_stats *out);

#endif /* HEALTH_HC_WATCH_H */
