/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_etcd_watch.h -- every key under a prefix, kept current: list, then
 * watch from the list's revision (etcd's counterpart of health/hc_watch, the
 * client-go reflector loop), on a cm_etcd client.
 *
 *   LISTING --(range)--> WATCHING --(stream ends)--------> WATCHING from the
 *      ^                  |                                last revision
 *      |                  | canceled, history compacted -> LISTING at once
 *      |                  | stream dropped, error,
 *      |                  | check failed               -> BACKOFF, then
 *      |                  v                                WATCHING from the
 *      +---------------- BACKOFF <-- list failed           last revision
 *
 * The check: a watch through a member that was stopped (SIGSTOP) or cut off
 * from the quorum stays open and silent. While WATCHING, every
 * check_interval_ms a linearizable count-only range of the prefix goes to the
 * member in use; when it fails, the watch is dropped and resumed on the next
 * member from the last revision delivered.
 *
 * Nothing the caller holds is touched by a failure: a failed list delivers
 * nothing, so the last state stays. Retries are spaced by cm_backoff
 * (backoff_min_ms doubling to backoff_max_ms, equal jitter).
 */
#ifndef COMMON_CM_ETCD_WATCH_H
#define COMMON_CM_ETCD_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "common/cm_etcd_proto.h"

struct cm_etcd;
struct cm_etcd_watch;

/** A complete list: every key under the prefix at @revision (@kvs borrowed). */
typedef void cm_etcd_sync_fn(void *arg, const struct cm_etcd_kv *kvs, size_t count,
                             int64_t revision);
/** One event, in revision order (borrowed). */
typedef void cm_etcd_event_fn(void *arg, const struct cm_etcd_event *ev);
/** The connection went up (listed or watching, checks passing) or down. */
typedef void cm_etcd_up_fn(void *arg, bool up);

struct cm_etcd_watch_cbs {
    cm_etcd_sync_fn *sync;
    cm_etcd_event_fn *event;
    cm_etcd_up_fn *up; /* optional */
    void *arg;
};

struct cm_etcd_watch_params {
    uint32_t check_interval_ms; /* default 5000 */
    uint32_t check_timeout_ms;  /* default 5000 */
    uint32_t backoff_min_ms;    /* default 250 */
    uint32_t backoff_max_ms;    /* default 5000 */
};

struct cm_etcd_watch_stats {
    bool up;               /* watching, and the last check passed */
    bool synced;           /* listed at least once */
    int64_t revision;      /* every change under the prefix up to here was delivered */
    int64_t etcd_revision; /* the cluster's revision at the last list or check */
    uint64_t events;       /* events delivered */
    uint64_t lists;        /* complete lists (the first one and relists) */
    uint64_t compactions;  /* relists because the history was compacted */
    uint64_t resumes;      /* watches resumed from a revision after a drop */
    uint64_t failures;     /* lists, watches and checks that failed */
    uint64_t since_ms;     /* monotonic time up or down changed */
    char last_error[200];  /* "" while up */
};

void cm_etcd_watch_params_default(struct cm_etcd_watch_params *p);

/**
 * A watcher of @prefix (@prefix_len bytes, copied) through @e (borrowed, must
 * outlive it), not started. NULL on ENOMEM.
 */
struct cm_etcd_watch *cm_etcd_watch_new(struct event_base *base, struct cm_etcd *e,
                                        const char *prefix, size_t prefix_len,
                                        const struct cm_etcd_watch_params *p,
                                        const struct cm_etcd_watch_cbs *cbs);
/** Starts with a list. */
void cm_etcd_watch_start(struct cm_etcd_watch *w);
/** Stops everything (no callbacks after). Accepts NULL. */
void cm_etcd_watch_free(struct cm_etcd_watch *w);
void cm_etcd_watch_get_stats(const struct cm_etcd_watch *w, struct cm_etcd_watch_stats *out);

#endif /* COMMON_CM_ETCD_WATCH_H */
