/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_etcdpub.h -- the vantage's publisher in the distributed mode: its state
 * document under <prefix><federation>/vantages/<vantage> in etcd, with a
 * lease of 3 x health.publish_interval_ms kept alive (cm_etcd_lease), on the
 * same curl multi handle as everything else (hc_http). Consumers watch the
 * key; no consumer is listed anywhere, so a name server or proxy added to
 * the deployment needs no change here.
 *
 * The newest document only, as hc_publish: an offer not newer than the one
 * held is ignored. When etcd is away, the last document stays there until
 * the lease ends, and the newest is written as soon as etcd answers.
 */
#ifndef HEALTH_HC_ETCDPUB_H
#define HEALTH_HC_ETCDPUB_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

struct cm_buf;
struct cm_conf;
struct hc_etcdpub;
struct hc_http;

/** The lease's TTL for @conf: 3 x health.publish_interval_ms, in whole seconds, at least 2. */
int64_t hc_etcdpub_ttl_s(const struct cm_conf *conf);

/**
 * A publisher for @conf's etcd section and vantage (borrowed for the call)
 * on @http's multi handle (borrowed, outlives it). NULL on ENOMEM.
 */
struct hc_etcdpub *hc_etcdpub_new(struct event_base *base, struct hc_http *http,
                                  const struct cm_conf *conf);
/** Stops (the key stays until its lease ends). Accepts NULL. */
void hc_etcdpub_free(struct hc_etcdpub *p);

/** The newest document: @text (@len bytes, copied) of @generation. CM_ENOMEM. */
int hc_etcdpub_offer(struct hc_etcdpub *p, uint64_t generation, const char *text, size_t len);

/** The key written (borrowed). */
const char *hc_etcdpub_key(const struct hc_etcdpub *p);
/** Prometheus lines: fedgslb_health_etcd_*. */
void hc_etcdpub_metrics(const struct hc_etcdpub *p, struct cm_buf *out);

#endif /* HEALTH_HC_ETCDPUB_H */
