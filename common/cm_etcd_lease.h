/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_etcd_lease.h -- one key kept in etcd under a lease, with the newest
 * value: a vantage's state document (fedgslb-health), a consumer's
 * registration (dnsd, the proxy). The key lives while its writer does: when
 * the writer stops renewing, etcd deletes it after the TTL.
 *
 *   GRANT --> PUT (value, lease) --> KEEPING --(every ttl/3)--> KEEPALIVE
 *     ^        ^  a newer value: PUT at once |                      |
 *     |        +-----------------------------+<---------------------+
 *     | lease gone (keepalive TTL 0,         |
 *     | put "lease not found")               | no reply, unavailable, refused
 *     +--------------------------------------+--> BACKOFF --> KEEPALIVE (the
 *                                                 lease may still live), or
 *                                                 PUT when a newer value waits,
 *                                                 or GRANT without a lease
 *
 * A failure never deletes anything: etcd keeps the last value until the
 * lease runs out, and a newer value is written when etcd answers again.
 * Stopping (cm_etcd_lease_free) does not revoke the lease: a writer that
 * restarts takes over its key before the TTL ends, without a gap.
 */
#ifndef COMMON_CM_ETCD_LEASE_H
#define COMMON_CM_ETCD_LEASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

struct cm_buf;
struct cm_etcd;
struct cm_etcd_lease;

struct cm_etcd_lease_params {
    int64_t ttl_s;           /* the lease's TTL (etcd raises it to its minimum, ~2 s) */
    uint32_t backoff_min_ms; /* default 250 */
    uint32_t backoff_max_ms; /* default 5000 */
};

struct cm_etcd_lease_stats {
    bool ok;          /* the newest value is in etcd under a live lease */
    int64_t lease;    /* the lease ID, 0 = none */
    int64_t ttl_s;    /* granted TTL */
    int64_t revision; /* of the last put */
    uint64_t puts, keepalives, grants, failures;
    uint64_t since_ms;    /* monotonic time ok last changed */
    char last_error[200]; /* "" while ok */
};

/** @ttl_s 30, backoff 250 ms to 5 s. */
void cm_etcd_lease_params_default(struct cm_etcd_lease_params *p);

/**
 * A writer of @key (copied) through @e (borrowed, outlives it). Writes
 * nothing until the first cm_etcd_lease_set(). NULL on ENOMEM.
 */
struct cm_etcd_lease *cm_etcd_lease_new(struct event_base *base, struct cm_etcd *e, const char *key,
                                        const struct cm_etcd_lease_params *p);
/** Stops (no revoke: see above). Accepts NULL. */
void cm_etcd_lease_free(struct cm_etcd_lease *l);

/**
 * The newest value (@len bytes at @value, copied): written at once when etcd
 * is reachable, else as soon as it is. CM_ENOMEM (the previous value stays).
 */
int cm_etcd_lease_set(struct cm_etcd_lease *l, const char *value, size_t len);

const char *cm_etcd_lease_key(const struct cm_etcd_lease *l);
void cm_etcd_lease_get_stats(const struct cm_etcd_lease *l, struct cm_etcd_lease_stats *out);

#endif /* COMMON_CM_ETCD_LEASE_H */
