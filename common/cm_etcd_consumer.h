/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_etcd_consumer.h -- a consumer's link to etcd in the distributed mode
 * (dnsd, the proxy): its federation's keys watched and fed into the daemon's
 * one document store, its registration for fedgslbctl, and what it tells
 * about both (GET /v1/state's "etcd" object, metrics, logs).
 *
 *   cm_curl -- cm_etcd --+-- cm_etcd_watch <prefix><federation>/ --> cm_etcd_feed --> apply
 *                        |                                           (the daemon's commit)
 *                        +-- cm_etcd_lease <prefix><federation>/consumers/<name>
 *
 * An etcd outage changes nothing the daemon serves: the watch keeps retrying
 * (cm_etcd_watch), the store and its state file keep the last documents, and
 * the daemon's own time-based expiry is off in this mode (a vantage is gone
 * when its key is, cm_etcd_feed). A consumer added to the deployment needs no
 * change anywhere else: it lists the keys and registers itself.
 */
#ifndef COMMON_CM_ETCD_CONSUMER_H
#define COMMON_CM_ETCD_CONSUMER_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "common/cm_etcd_feed.h"

struct cm_buf;
struct cm_conf;
struct cm_conf_control;
struct cm_etcd_consumer;
struct cm_store;

/* What the consumer needs from its daemon, asked for at each change. */
struct cm_etcd_consumer_hooks {
    struct cm_store *(*store)(void *arg);     /* the daemon's document store */
    const struct cm_conf *(*conf)(void *arg); /* the configuration in service */
    cm_etcd_apply_fn *apply;                  /* build from a candidate, commit */
    cm_etcd_intents_fn *intents;              /* the intent keys changed (NULL: ignored) */
    void *arg;
};

/**
 * A consumer of @conf's etcd section (borrowed for the call) on @base.
 * @kind ("dnsd", "proxy") and @control (the daemon's control API, NULL when
 * it has none) name its registration. Nothing happens until
 * cm_etcd_consumer_start(). CM_ENOMEM, with a reason in @err.
 */
int cm_etcd_consumer_new(struct event_base *base, const struct cm_conf *conf, const char *kind,
                         const struct cm_conf_control *control,
                         const struct cm_etcd_consumer_hooks *hooks, struct cm_etcd_consumer **out,
                         char *err, size_t errlen);
/** Lists, watches and registers. */
void cm_etcd_consumer_start(struct cm_etcd_consumer *c);
/** Stops (no callbacks after). Accepts NULL. */
void cm_etcd_consumer_free(struct cm_etcd_consumer *c);

/**
 * After a configuration reload: the values held are judged again under the
 * new configuration (one refused before may pass now). Settings of the etcd
 * section itself need a restart (warned about when they changed).
 */
void cm_etcd_consumer_reload(struct cm_etcd_consumer *c, const struct cm_conf *conf);

/**
 * GET /v1/state's "etcd": {"endpoints": [...], "endpoint": "...", "up": b,
 * "since_s": seconds in that state, "revision": n, "etcd_revision": n,
 * "digest": "hex", "keys": n, "vantage_keys": n, "events", "lists",
 * "compactions", "resumes", "failures", "refused", "last_error",
 * "registration": key}. New reference; NULL on ENOMEM.
 */
json_t *cm_etcd_consumer_status(const struct cm_etcd_consumer *c);
/** The fedgslb_etcd_* families (docs/metrics.md). */
void cm_etcd_consumer_metrics(const struct cm_etcd_consumer *c, struct cm_buf *out);

#endif /* COMMON_CM_ETCD_CONSUMER_H */
