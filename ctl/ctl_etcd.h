/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctl_etcd.h -- fedgslbctl's view of the distributed mode (`fedgslbctl
 * status` when the configuration has an etcd section): each etcd member's
 * own status, the consumers registered in etcd (dnsd, proxies: nobody lists
 * them), the revision and digest each consumer holds, and whether they all
 * agree.
 *
 * The etcd requests run on a private event loop with the daemons' own etcd
 * client (common/cm_etcd: endpoints, TLS, user and password as configured);
 * the consumers' control APIs are asked with ctl_http.
 */
#ifndef CTL_CTL_ETCD_H
#define CTL_CTL_ETCD_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct cm_buf;
struct cm_conf;

/**
 * The report for @conf (borrowed; its etcd section must be present):
 *
 *   {"root": "/fedgslb/myfed/",
 *    "members": [{"endpoint", "ok", "error", "leader", "version", "revision",
 *                 "raft_index", "raft_term"}],
 *    "consumers": [{"name", "kind", "control", "ok", "error", "up", "revision",
 *                   "digest", "keys", "last_error"}],
 *    "healthy": members that answered, "leader": the endpoint that leads or null,
 *    "agree": every consumer answered and holds the same digest}
 *
 * Each etcd request and each control request gets at most @timeout_ms. A
 * consumer's control API is asked with @token (NULL: the configuration's
 * token of the consumer's kind). CM_ENOMEM, or CM_EINVAL without an etcd
 * section; @err says why.
 */
int ctl_etcd_report(const struct cm_conf *conf, const char *token, uint32_t timeout_ms,
                    json_t **out, char *err, size_t errlen);

/** The report as text (two tables and a verdict line). CM_ENOMEM. */
int ctl_etcd_text(json_t *report, struct cm_buf *out);

/*
 * Intents in the distributed mode (docs/architecture.md, "Operator intents"):
 * one key <prefix><federation>/intents/<id> an intent, holding its JSON (the
 * /v1/intents form); a removal writes the intent's tombstone to its key, so
 * every consumer, and one that relists after a restart, removes it exactly
 * as a pushed tombstone would. Each call gets at most @timeout_ms an etcd
 * member, and moves to the next member when one cannot answer.
 */

/**
 * The intents held in etcd: *out [intent + "status" at @now_s...] in id order
 * (values that do not parse are left out with a warning on stderr), *revision
 * etcd's revision of the read. CM_EIO (etcd unreachable or refusing),
 * CM_ENOMEM, CM_EINVAL without an etcd section; @err says why.
 */
int ctl_etcd_intents_read(const struct cm_conf *conf, uint32_t timeout_ms, int64_t now_s,
                          json_t **out, int64_t *revision, char *err, size_t errlen);

/**
 * Writes @in (borrowed: an intent or its tombstone, checked with
 * cm_intent_parse first) to its key. *revision the write's revision,
 * @endpoint (@cap bytes) the member that took it. CM_EINVAL (a bad intent),
 * CM_EIO, CM_ENOMEM; @err says why.
 */
int ctl_etcd_intent_write(const struct cm_conf *conf, uint32_t timeout_ms, json_t *in,
                          int64_t *revision, char *endpoint, size_t cap, char *err, size_t errlen);

#endif /* CTL_CTL_ETCD_H */
