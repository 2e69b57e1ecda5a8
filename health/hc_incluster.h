/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_incluster.h -- the in-cluster member: fedgslb-health running as a pod
 * reaches its own cluster's API server the way client-go's InClusterConfig
 * does: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, the
 * ServiceAccount token and CA mounted at
 * /var/run/secrets/kubernetes.io/serviceaccount/ (FEDGSLB_SERVICEACCOUNT_DIR
 * overrides the directory). The token is kept as a tokenFile, so the kubelet's
 * rotations of the projected token are picked up at the next request.
 */
#ifndef HEALTH_HC_INCLUSTER_H
#define HEALTH_HC_INCLUSTER_H

#include <stddef.h>

struct hc_kube_target;

#define HC_INCLUSTER_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/**
 * Builds the in-cluster target for member @member (named in messages) from
 * the environment and @dir (NULL = $FEDGSLB_SERVICEACCOUNT_DIR, else
 * HC_INCLUSTER_DIR). On success *out is owned by the caller
 * (hc_kube_target_free). On failure writes the reason into @err:
 *   "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be
 *    set (is fedgslb-health running in a pod?)"
 *   "in-cluster: /x/token: cannot read: No such file or directory"
 */
int hc_incluster_load(const char *member, const char *dir, struct hc_kube_target **out, char *err,
                      size_t errlen);

#endif /* HEALTH_HC_INCLUSTER_H */
