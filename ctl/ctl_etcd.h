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

#endif /* CTL_CTL_ETCD_H */
