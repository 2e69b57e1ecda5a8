/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_placement.h -- what a host cluster's registry objects (hc_k8s_fed.h)
 * mean for fedgslb, without I/O: hc_registry calls these on the objects its
 * watches hold; unit tests and the fuzz target call them on parsed text.
 *
 * A member (hc_placement_member): a KubeFedCluster or Karmada Cluster and its
 * Secret make a member when its name is a DNS label that is not a configured
 * member, the object has no problem, the Secret holds a token, the
 * apiEndpoint is a usable URL, and the member can be placed in a configured
 * region: Karmada's spec.region / spec.zones, a KubeFedCluster's
 * topology.kubernetes.io/region / zone labels, else its status.region /
 * status.zones, else members_from.locations.<name>. A zone its region does
 * not have is dropped (the member is then placed in its region only).
 *
 * Services (hc_placement_services): every FederatedService is a service,
 * placed as KubeFed places it (spec.placement.clusters, even empty, win over
 * clusterSelector, which selects registry objects by label; neither places it
 * nowhere). Every ServiceDNSRecord whose Domain names this federation (the
 * Domain's name is `federation`, its domain is `zone`) is a service too,
 * with recordTTL as ttl_s (at most 86400) and allowServiceWithoutEndpoints;
 * what cannot be taken over (another federation's Domain, dnsPrefix,
 * externalName, a broken placement) is said in a note.
 */
#ifndef HEALTH_HC_PLACEMENT_H
#define HEALTH_HC_PLACEMENT_H

#include <stddef.h>

#include <jansson.h>

struct cm_conf;
struct cm_conf_member;
struct hc_fedsvcs;
struct hc_k8s_obj;
struct hc_kube_target;

#define HC_PLACEMENT_WHY_MAX 256

/**
 * @cluster (a KubeFedCluster or Karmada Cluster) with its Secret @secret
 * (NULL: not found) under @conf. On success fills @m (name borrowed from
 * @cluster; region and zone indexes), *t (a new target: server, CA, token,
 * TLS and proxy settings) and *placed_by (static: "spec.region", "labels",
 * "status", "members_from.locations"); @why then holds a note (a zone
 * dropped) or is empty. Otherwise CM_ENOENT (not a member: @why says why,
 * naming fields, never the token) or CM_ENOMEM.
 */
int hc_placement_member(const struct cm_conf *conf, const struct hc_k8s_obj *cluster,
                        const struct hc_k8s_obj *secret, struct cm_conf_member *m,
                        struct hc_kube_target **t, const char **placed_by, char *why,
                        size_t whylen);

/**
 * The server URL of an apiEndpoint ("hostname", "hostname:port", "IP:port"
 * or a URL, a path prefix allowed), as client-go makes one: "https://" added
 * when no scheme is given, one trailing slash dropped. CM_EINVAL (with @why)
 * for a scheme other than http(s), blanks, control bytes, userinfo, a query
 * or fragment, no host, or more than 2048 bytes.
 */
int hc_placement_server_url(const char *endpoint, char *out, size_t cap, char *why, size_t whylen);

/* The host cluster's objects the services come from (all borrowed). */
struct hc_placement_objs {
    const struct cm_conf *conf;
    const struct hc_k8s_obj *const *clusters; /* KubeFedClusters or Karmada Clusters */
    size_t cluster_count;
    const struct hc_k8s_obj *const *fedsvcs; /* FederatedServices */
    size_t fedsvc_count;
    const struct hc_k8s_obj *const *records; /* ServiceDNSRecords */
    size_t record_count;
    const struct hc_k8s_obj *const *domains; /* Domains */
    size_t domain_count;
};

/**
 * The services of @in and their rules (a new set: hc_fedsvcs_free()), with a
 * string appended to @notes (a JSON array, borrowed) for each object that
 * cannot be taken over as it is. NULL on ENOMEM.
 */
struct hc_fedsvcs *hc_placement_services(const struct hc_placement_objs *in, json_t *notes);

#endif /* HEALTH_HC_PLACEMENT_H */
