/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_k8s_fed.h -- the host cluster's objects the member registry
 * (hc_registry) reads, as plain C values: pure parsing, no I/O.
 *
 *   KubeFedCluster    core.kubefed.io/v1beta1: spec.apiEndpoint, caBundle,
 *                     secretRef.name, proxyURL, disabledTLSValidations;
 *                     region/zone from the topology.kubernetes.io labels,
 *                     else status.region / status.zones
 *   Cluster           cluster.karmada.io/v1alpha1: spec.apiEndpoint,
 *                     secretRef {namespace, name}, insecureSkipTLSVerification,
 *                     proxyURL, region, zones (or the deprecated zone)
 *   Secret            core/v1: data.token, data["ca.crt"] or data.caBundle
 *                     (base64), wiped when freed
 *   FederatedService  types.kubefed.io/v1beta1: spec.placement.clusters[].name
 *                     or spec.placement.clusterSelector
 *   Domain            multiclusterdns.kubefed.io/v1alpha1: domain
 *   ServiceDNSRecord  multiclusterdns.kubefed.io/v1alpha1: spec.domainRef,
 *                     recordTTL, allowServiceWithoutEndpoints, dnsPrefix,
 *                     externalName
 *
 * These come from an API server we do not control and describe members we
 * are about to connect to, so one bad object must not take the others down:
 * an object with a name parses, and what is wrong with its fields (missing,
 * wrong type, bad base64, too long) is said in `problem` for the registry to
 * report. Every string and list has a cap.
 */
#ifndef HEALTH_HC_K8S_FED_H
#define HEALTH_HC_K8S_FED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define HC_K8S_FED_STR_MAX    4096u      /* any string field */
#define HC_K8S_FED_CA_MAX     (1u << 20) /* a decoded CA bundle */
#define HC_K8S_FED_TOKEN_MAX  65536u     /* a decoded token */
#define HC_K8S_FED_LABELS_MAX 256u       /* labels of one object, matchLabels of one selector */
#define HC_K8S_FED_LIST_MAX   1000u      /* placement clusters, zones, expressions, values */
#define HC_K8S_FED_WHY_MAX    160u

#define HC_K8S_LABEL_REGION "topology.kubernetes.io/region"
#define HC_K8S_LABEL_ZONE   "topology.kubernetes.io/zone"

struct hc_k8s_label {
    char *key;   /* owned */
    char *value; /* owned */
};

/* A KubeFedCluster or a Karmada Cluster: what makes a member. */
struct hc_k8s_fedcluster {
    char *api_endpoint; /* owned spec.apiEndpoint as written, NULL when absent */
    char *ca_pem;       /* owned spec.caBundle decoded (KubeFed), NULL when absent */
    size_t ca_pem_len;
    char *secret_ns;         /* owned spec.secretRef.namespace (Karmada), NULL for KubeFed */
    char *secret_name;       /* owned spec.secretRef.name, NULL when absent */
    char *proxy_url;         /* owned spec.proxyURL, NULL when absent */
    bool insecure;           /* insecureSkipTLSVerification, or disabledTLSValidations ["*"] */
    char *region;            /* owned, NULL when the object does not say */
    const char *region_from; /* static: where region came from ("spec.region", "labels",
                                "status"), NULL with it */
    char **zones;            /* owned, in the object's order */
    size_t zone_count;
    struct hc_k8s_label *labels; /* owned metadata.labels (clusterSelector matches them) */
    size_t label_count;
    char *problem; /* owned: why the object cannot make a member, NULL when it can */
};

struct hc_k8s_secret {
    char *token; /* owned data.token decoded; a secret: wiped when freed */
    size_t token_len;
    char *ca_pem; /* owned data["ca.crt"] (KubeFed) or data.caBundle (Karmada), NULL */
    size_t ca_pem_len;
    char *problem; /* owned, NULL when usable */
};

enum hc_k8s_sel_op {
    HC_K8S_SEL_IN = 0,            /* the label's value is one of values */
    HC_K8S_SEL_NOT_IN = 1,        /* absent, or not one of values */
    HC_K8S_SEL_EXISTS = 2,        /* the label is set */
    HC_K8S_SEL_DOES_NOT_EXIST = 3 /* the label is not set */
};

struct hc_k8s_sel_expr {
    char *key; /* owned */
    enum hc_k8s_sel_op op;
    char **values; /* owned */
    size_t value_count;
};

/* metav1.LabelSelector: matchLabels and matchExpressions, ANDed; empty = everything. */
struct hc_k8s_selector {
    struct hc_k8s_label *labels; /* owned matchLabels */
    size_t label_count;
    struct hc_k8s_sel_expr *exprs; /* owned matchExpressions */
    size_t expr_count;
};

/* A FederatedService's placement (KubeFed's rules: clusters, when given even
 * empty, win over clusterSelector; neither places it nowhere). */
struct hc_k8s_fedsvc {
    bool has_clusters;
    char **clusters; /* owned spec.placement.clusters[].name */
    size_t cluster_count;
    bool has_selector;
    struct hc_k8s_selector selector;
    char *problem; /* owned, NULL when the placement is usable */
};

struct hc_k8s_domain {
    char *domain;  /* owned "domain": the DNS zone of the federation */
    char *problem; /* owned, NULL when usable */
};

struct hc_k8s_svcdns {
    char *domain_ref;        /* owned spec.domainRef, NULL when absent */
    uint32_t record_ttl;     /* spec.recordTTL, 0 when absent */
    bool allow_no_endpoints; /* spec.allowServiceWithoutEndpoints */
    char *dns_prefix;        /* owned spec.dnsPrefix, NULL when absent */
    char *external_name;     /* owned spec.externalName, NULL when absent */
    char *problem;           /* owned, NULL when usable */
};

struct hc_k8s_obj;

/**
 * Fills @obj's registry kind (obj->kind set, obj->u zeroed) from @o, its
 * metadata @meta. A field that is wrong becomes obj's problem; CM_ENOMEM
 * is the only failure.
 */
int hc_k8s_fed_parse(json_t *o, json_t *meta, struct hc_k8s_obj *obj);
/** Frees what hc_k8s_fed_parse() allocated (secrets wiped). */
void hc_k8s_fed_fini(struct hc_k8s_obj *obj);
/** The problem of a registry object, or NULL (and NULL for member kinds). */
const char *hc_k8s_fed_problem(const struct hc_k8s_obj *obj);

/** Whether @labels (@count) satisfy @sel. */
bool hc_k8s_selector_match(const struct hc_k8s_selector *sel, const struct hc_k8s_label *labels,
                           size_t count);

#endif /* HEALTH_HC_K8S_FED_H */
