/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_k8s.h -- the Kubernetes API objects the watcher needs, as plain C
 * values: pure parsing (bytes in, structs out), no I/O.
 *
 * Three kinds are modelled, each reduced to what the state document needs:
 *
 *   Service        ns/name, ports (port, nodePort), LB ingress IPs and
 *                  hostnames, fedgslb.io annotations
 *   EndpointSlice  ns/name, owning service (kubernetes.io/service-name),
 *                  address family, ready / not-ready endpoint counts
 *   Node           name, Ready condition, InternalIP / ExternalIP
 *
 * A list response (`{"metadata":{"resourceVersion","continue"},"items":[]}`)
 * and a watch event line (`{"type":"ADDED","object":{...}}`) parse into these,
 * read with cm_jscan: what is not needed is skipped (checked, never stored),
 * and a key read twice in an object that is read fails the parse (the
 * registry's kinds, few objects, go through jansson for hc_k8s_fed).
 * Watch streams are newline-delimited JSON, split by common/cm_lines.h.
 */
#ifndef HEALTH_HC_K8S_H
#define HEALTH_HC_K8S_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cm_str.h"
#include "health/hc_k8s_fed.h"

#define HC_K8S_LINE_MAX (4u << 20)  /* longest accepted watch event line */
#define HC_K8S_LIST_MAX (64u << 20) /* largest accepted list response body */
#define HC_K8S_ERR_MAX  256

#define HC_K8S_ANN_FEDERATE    "fedgslb.io/federate"
#define HC_K8S_ANN_HEALTH_PATH "fedgslb.io/health-path"
#define HC_K8S_ANN_HEALTH_PORT "fedgslb.io/health-port"
#define HC_K8S_ANN_WEIGHT      "fedgslb.io/weight"   /* traffic policy: 0..1000, 0 = standby */
#define HC_K8S_ANN_PRIORITY    "fedgslb.io/priority" /* traffic policy: 0..1000, lower first */
#define HC_K8S_POLICY_MAX      1000

enum hc_k8s_kind {
    HC_K8S_SERVICE = 0, /* core/v1 Service */
    HC_K8S_SLICE = 1,   /* discovery.k8s.io/v1 EndpointSlice */
    HC_K8S_NODE = 2,    /* core/v1 Node */
    /* The host cluster's registry (hc_k8s_fed.h, read by hc_registry): */
    HC_K8S_KUBEFEDCLUSTER = 3, /* core.kubefed.io/v1beta1 KubeFedCluster */
    HC_K8S_KARMADACLUSTER = 4, /* cluster.karmada.io/v1alpha1 Cluster */
    HC_K8S_SECRET = 5,         /* core/v1 Secret */
    HC_K8S_FEDSERVICE = 6,     /* types.kubefed.io/v1beta1 FederatedService */
    HC_K8S_DOMAIN = 7,         /* multiclusterdns.kubefed.io/v1alpha1 Domain */
    HC_K8S_SVCDNS = 8,         /* multiclusterdns.kubefed.io/v1alpha1 ServiceDNSRecord */
};
/* The kinds watched in a member cluster (hc_cluster): the first three. */
#define HC_K8S_KIND_COUNT 3
/* Every kind, the registry's included. */
#define HC_K8S_KIND_ALL 9

struct hc_k8s_port {
    char *name;         /* owned, NULL when unnamed */
    uint16_t port;      /* the service port */
    uint16_t node_port; /* 0 when none */
    bool is_tcp;        /* protocol TCP (the default) */
};

struct hc_k8s_svc {
    char *type; /* owned, "LoadBalancer", "ClusterIP", ... */
    struct hc_k8s_port *ports;
    size_t port_count;
    char **lb_ips; /* owned: status.loadBalancer.ingress[].ip, validated IPs */
    size_t lb_ip_count;
    char **lb_hostnames; /* owned: status.loadBalancer.ingress[].hostname */
    size_t lb_hostname_count;
    bool federate;        /* annotation fedgslb.io/federate == "true" */
    char *health_path;    /* owned annotation value, NULL when absent */
    uint16_t health_port; /* annotation value, 0 when absent or invalid */
    bool has_weight;      /* fedgslb.io/weight given as a number 0..HC_K8S_POLICY_MAX */
    uint32_t weight;
    bool has_priority; /* fedgslb.io/priority likewise */
    uint32_t priority;
};

enum hc_k8s_family {
    HC_K8S_IPV4 = 0, /* addressType IPv4 */
    HC_K8S_IPV6 = 1, /* addressType IPv6 */
    HC_K8S_FQDN = 2, /* addressType FQDN (counted as neither family) */
};

struct hc_k8s_slice {
    char *service; /* owned label kubernetes.io/service-name, NULL when absent */
    enum hc_k8s_family family;
    uint32_t ready;     /* endpoints with conditions.ready true (absent = ready) */
    uint32_t not_ready; /* the others */
};

struct hc_k8s_node {
    bool ready;        /* condition Ready == "True" */
    char *internal_ip; /* owned first InternalIP, NULL when none */
    char *external_ip; /* owned first ExternalIP, NULL when none */
};

/* One object of any kind. ns is NULL for cluster-scoped kinds (Node,
 * Karmada's Cluster). Its resourceVersion is not kept: the event or list that
 * brought it has it. An EndpointSlice (the most numerous kind) is packed: one
 * allocation holds the header, u.slice and its strings, shorter than this
 * struct (the union is sized for the largest kind) -- so objects are passed
 * by pointer, never copied by value, and freed with hc_k8s_obj_free() only. */
struct hc_k8s_obj {
    enum hc_k8s_kind kind;
    char *ns;   /* owned */
    char *name; /* owned */
    union {
        struct hc_k8s_svc svc;
        struct hc_k8s_slice slice;
        struct hc_k8s_node node;
        struct hc_k8s_fedcluster cluster; /* KUBEFEDCLUSTER, KARMADACLUSTER */
        struct hc_k8s_secret secret;
        struct hc_k8s_fedsvc fedsvc;
        struct hc_k8s_domain domain;
        struct hc_k8s_svcdns svcdns;
    } u;
};

enum hc_k8s_event_type {
    HC_K8S_ADDED = 0,    /* object created (or seen first) */
    HC_K8S_MODIFIED = 1, /* object changed */
    HC_K8S_DELETED = 2,  /* object removed; obj holds its last state */
    HC_K8S_BOOKMARK = 3, /* only resource_version is meaningful */
    HC_K8S_ERROR = 4,    /* a Status object: code and message */
};

struct hc_k8s_event {
    enum hc_k8s_event_type type;
    struct hc_k8s_obj *obj; /* owned; NULL for BOOKMARK and ERROR */
    char *resource_version; /* owned; from the object (or bookmark), NULL if absent */
    int code;               /* ERROR: Status.code (410 = Gone), else 0 */
    char *message;          /* owned; ERROR: Status.message, else NULL */
};

struct hc_k8s_list {
    struct hc_k8s_obj **items; /* owned array of owned objects */
    size_t count;
    char *resource_version; /* owned metadata.resourceVersion, NULL if absent */
    char *continue_token;   /* owned metadata.continue, NULL when last page */
};

/** Name of the kind in logs and metrics: "services", "endpointslices", "nodes"... */
const char *hc_k8s_kind_name(enum hc_k8s_kind kind);
/** The collection path below the server URL, e.g. "/api/v1/services". */
const char *hc_k8s_kind_path(enum hc_k8s_kind kind);
/** Whether objects of the kind live in namespaces. */
bool hc_k8s_kind_namespaced(enum hc_k8s_kind kind);
/**
 * The collection path of a namespaced kind in namespace @ns (NULL: every
 * namespace), e.g. "/api/v1/namespaces/ns1/secrets", into @out. CM_ETOOBIG
 * when it does not fit, CM_EINVAL for a cluster-scoped kind with @ns.
 */
int hc_k8s_kind_path_ns(enum hc_k8s_kind kind, const char *ns, char *out, size_t cap);

/**
 * Parses one watch event line (@len bytes at @line, borrowed, need not be
 * NUL-terminated) holding objects of @kind. CM_EPARSE with a reason in @err
 * on bad JSON or a missing field; CM_ENOMEM. On success the caller owns
 * *ev's contents and releases them with hc_k8s_event_fini().
 */
int hc_k8s_event_parse(const char *line, size_t len, enum hc_k8s_kind kind, struct hc_k8s_event *ev,
                       char *err, size_t errlen);
void hc_k8s_event_fini(struct hc_k8s_event *ev);

/**
 * Parses a list response of @kind. Items that are not valid objects of that
 * kind fail the whole list (CM_EPARSE). The caller owns *out's contents:
 * hc_k8s_list_fini().
 */
int hc_k8s_list_parse(const char *body, size_t len, enum hc_k8s_kind kind, struct hc_k8s_list *out,
                      char *err, size_t errlen);
void hc_k8s_list_fini(struct hc_k8s_list *l);

/**
 * Parses a Status body ({"kind":"Status","code":410,"message":..}): the code
 * or 0, and the message copied into @msg (truncated). For error replies.
 */
int hc_k8s_status_parse(const char *body, size_t len, char *msg, size_t msglen);

/** Releases an object. Accepts NULL. */
void hc_k8s_obj_free(struct hc_k8s_obj *obj);

#endif /* HEALTH_HC_K8S_H */
