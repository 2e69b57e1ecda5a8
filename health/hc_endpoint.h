/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_endpoint.h -- one (service, member) entry of the state document,
 * reconciled from the member's Kubernetes data and the probe verdicts into a
 * plain struct; hc_report serializes it. No JSON, no I/O, no probe set here.
 *
 *   hc_endpoint_prepare():  Service, nodes, configuration
 *                           -> candidate addresses (address rule applied,
 *                              refusals in words), backends, probe targets
 *   (caller)                ensures each target's probe, sets addrs[i].st
 *   hc_endpoint_judge():    probe statuses, ready endpoints, API state,
 *                           previous verdict -> healthy, pending, reason,
 *                           rtt, the addresses answered
 *
 * The rules (hc_report.h has them in words): healthy = ready endpoints (or
 * the API away and the probe up) and an address known (proxy mode: also a
 * ready node with a nodePort) and some address's probe up; a probe with no
 * result yet keeps the previous verdict, else counts as up, and makes the
 * entry pending; only the addresses probed up are answered when any is.
 */
#ifndef HEALTH_HC_ENDPOINT_H
#define HEALTH_HC_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/cm_net.h"
#include "health/hc_cluster.h"

struct cm_conf;
struct cm_conf_check;
struct cm_conf_service;
struct cm_log_ratelimit;
struct hc_k8s_obj;
struct hc_k8s_port;
struct hc_k8s_svc;
struct hc_probe_status;

#define HC_ENDPOINT_ADDRS_MAX  16
#define HC_ENDPOINT_REASON_MAX 512

/* What one entry is reconciled from; all borrowed. */
struct hc_endpoint_in {
    const struct cm_conf *conf;
    size_t member;                         /* index into conf->members */
    const struct cm_conf_service *csvc;    /* the configured service, NULL: annotated */
    const struct hc_k8s_svc *svc;          /* the member's Service */
    uint32_t ready_v4, ready_v6;           /* its ready endpoints */
    const struct hc_k8s_obj *const *nodes; /* proxy mode: the member's Nodes */
    size_t node_count;
    enum hc_api_state api; /* the member's API state */
    time_t bad_since;      /* when it left ok (0 if ok) */
    time_t now;
    int previous_healthy;                /* the previous document's verdict: 1, 0, -1 none */
    bool probes;                         /* a probe set exists (false: Kubernetes data only) */
    bool allow_no_endpoints;             /* 0 ready endpoints do not make it unhealthy (a
                                            ServiceDNSRecord's allowServiceWithoutEndpoints) */
    struct cm_log_ratelimit *refused_rl; /* refused addresses are logged through it; NULL: not */
};

/* One candidate address and its probe. */
struct hc_endpoint_addr {
    const char *address;              /* borrowed from the Service or the configuration */
    char target[CM_ADDR_STRLEN];      /* probed address: itself, or the proxy listener */
    uint16_t port;                    /* probed port */
    const struct hc_probe_status *st; /* set by the caller between the steps; NULL: none */
    bool answered;                    /* listed in "addresses" (after judging) */
};

struct hc_endpoint {
    const struct cm_conf_check *check; /* borrowed: the service's, else health.default_check */
    const struct hc_k8s_port *port;    /* borrowed: the matching Service port, or NULL */
    const char *hostname;              /* borrowed: the LB hostname (direct mode), or NULL */
    bool via_proxy;                    /* the member is in proxy mode */
    bool probing;                      /* probes exist and the check is not "none" */
    struct hc_endpoint_addr addrs[HC_ENDPOINT_ADDRS_MAX];
    size_t addr_count;
    char **backends; /* owned "ip:port" of the ready nodes (proxy mode) */
    size_t backend_count;
    char **refused; /* owned "what ip refused: kind" for each address dropped */
    size_t refused_count;
    uint32_t ready_v4, ready_v6;
    /* From hc_endpoint_judge(): */
    bool healthy;
    bool pending;  /* some probe has no result yet or disagrees with its verdict */
    double rtt_ms; /* lowest RTT of the addresses up; < 0 none */
    char reason[HC_ENDPOINT_REASON_MAX];
};

/**
 * Fills @out (all of it; call hc_endpoint_fini() after, also on failure)
 * from @in: candidate addresses with their probe targets, backends, refused
 * addresses. CM_OK or CM_ENOMEM.
 */
int hc_endpoint_prepare(const struct hc_endpoint_in *in, struct hc_endpoint *out);

/** Judges @ep (addrs[].st set by the caller): healthy, pending, rtt, reason, answered. */
void hc_endpoint_judge(const struct hc_endpoint_in *in, struct hc_endpoint *ep);

/** Frees what hc_endpoint_prepare() allocated. */
void hc_endpoint_fini(struct hc_endpoint *ep);

/**
 * How long the API has been away, in the coarse words of the reason ("45 s",
 * "12 min", "3 h"): @since to @now. The report rebuilds a member's entries
 * when these words change.
 */
void hc_endpoint_outage_words(time_t since, time_t now, char *buf, size_t cap);

/** The Service port matching @want (0: none wanted), else the first TCP one, else any. */
const struct hc_k8s_port *hc_endpoint_pick_port(const struct hc_k8s_svc *s, uint16_t want);

#endif /* HEALTH_HC_ENDPOINT_H */
