/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_endpoint.c -- Kubernetes data + probe verdicts -> one reconciled entry
 * (hc_endpoint.h). Pure but for the rate-limited log of refused addresses.
 */
#include "health/hc_endpoint.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_log.h"
#include "common/cm_str.h"
#include "health/hc_k8s.h"
#include "health/hc_probe.h"

const struct hc_k8s_port *hc_endpoint_pick_port(const struct hc_k8s_svc *s, uint16_t want)
{
    for (size_t i = 0; want != 0 && i < s->port_count; i++) {
        if (s->ports[i].port == want)
            return &s->ports[i];
    }
    for (size_t i = 0; i < s->port_count; i++) {
        if (s->ports[i].is_tcp)
            return &s->ports[i];
    }
    return s->port_count > 0 ? &s->ports[0] : NULL;
}

static int strv_push(char ***v, size_t *count, const char *s)
{
    char **nv = realloc(*v, (*count + 1) * sizeof(*nv));

    if (nv == NULL)
        return CM_ENOMEM;
    *v = nv;
    nv[*count] = strdup(s);
    if (nv[*count] == NULL)
        return CM_ENOMEM;
    (*count)++;
    return CM_OK;
}

static void strv_free(char **v, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(v[i]);
    free(v);
}

/*
 * The address rule of state documents (cm_ip_refused under allow_addresses)
 * for an address from the Kubernetes API or the proxy's configured address:
 * true when @ip must be dropped, with "@what @ip refused: kind" added to the
 * entry's refused list and logged, rate limited. *rc becomes CM_ENOMEM when
 * the message cannot be kept.
 */
static bool address_refused(const struct hc_endpoint_in *in, struct hc_endpoint *ep,
                            const char *what, const char *ip, int *rc)
{
    const struct cm_conf *conf = in->conf;
    enum cm_ip_kind kind = CM_IP_UNSPECIFIED;
    struct cm_addr a;
    char msg[CM_ADDR_STRLEN + 64];

    if (cm_ip_parse(ip, &a) == CM_OK)
        kind = cm_ip_refused((const struct sockaddr *)&a.ss, conf->allow_addresses,
                             conf->allow_address_count);
    if (kind == CM_IP_ORDINARY)
        return false;
    snprintf(msg, sizeof(msg), "%s %s refused: %s", what, ip, cm_ip_kind_name(kind));
    if (in->refused_rl != NULL)
        cm_log_ratelimited(
            in->refused_rl, CM_LOG_WARN, "member %s: %s%s", conf->members[in->member].name, msg,
            cm_ip_kind_allowable(kind) ? " (list it in allow_addresses to permit it)" : "");
    if (strv_push(&ep->refused, &ep->refused_count, msg) != CM_OK)
        *rc = CM_ENOMEM;
    return true;
}

static int add_backends(const struct hc_endpoint_in *in, struct hc_endpoint *ep)
{
    int rc = CM_OK;

    if (ep->port == NULL || ep->port->node_port == 0)
        return CM_OK;
    for (size_t i = 0; rc == CM_OK && i < in->node_count; i++) {
        const struct hc_k8s_node *n = &in->nodes[i]->u.node;
        const char *ip = n->internal_ip != NULL ? n->internal_ip : n->external_ip;
        char b[CM_ADDR_STRLEN + 8];

        if (!n->ready || ip == NULL || address_refused(in, ep, "node address", ip, &rc))
            continue;
        snprintf(b, sizeof(b), strchr(ip, ':') != NULL ? "[%s]:%u" : "%s:%u", ip,
                 (unsigned)ep->port->node_port);
        rc = strv_push(&ep->backends, &ep->backend_count, b);
    }
    return rc;
}

/* The proxy listener standing in for (member, service), or NULL. */
static const struct cm_addr *proxy_listener(const struct cm_conf *conf, size_t member,
                                            const struct cm_conf_service *svc)
{
    if (svc == NULL || !conf->proxy.present)
        return NULL;
    for (size_t i = 0; i < conf->proxy.listen_count; i++) {
        const struct cm_conf_proxy_listen *l = &conf->proxy.listen[i];

        if (l->member == member && &conf->services[l->service] == svc)
            return &l->address;
    }
    return NULL;
}

/* Where each candidate's probe connects: the proxy listener (proxy mode, when
 * one is configured), else the address at the check's port, else the
 * fedgslb.io/health-port annotation, else the service port. */
static void probe_targets(const struct hc_endpoint_in *in, struct hc_endpoint *ep)
{
    const struct cm_addr *pl =
        ep->via_proxy ? proxy_listener(in->conf, in->member, in->csvc) : NULL;

    for (size_t i = 0; i < ep->addr_count; i++) {
        struct hc_endpoint_addr *a = &ep->addrs[i];

        if (pl != NULL) {
            cm_ip_format((const struct sockaddr *)&pl->ss, a->target, sizeof(a->target));
            a->port = (uint16_t)cm_addr_port((const struct sockaddr *)&pl->ss);
        } else {
            cm_strlcpy(a->target, a->address, sizeof(a->target));
            a->port = ep->check->port != 0        ? ep->check->port
                      : in->svc->health_port != 0 ? in->svc->health_port
                      : ep->port != NULL          ? ep->port->port
                                                  : 80;
        }
    }
}

int hc_endpoint_prepare(const struct hc_endpoint_in *in, struct hc_endpoint *out)
{
    const struct cm_conf_member *m = &in->conf->members[in->member];
    const struct hc_k8s_svc *s = in->svc;
    int rc = CM_OK;

    *out = (struct hc_endpoint){.rtt_ms = -1, .ready_v4 = in->ready_v4, .ready_v6 = in->ready_v6};
    out->check = in->csvc != NULL ? &in->csvc->check : &in->conf->health.default_check;
    out->port = hc_endpoint_pick_port(s, in->csvc != NULL ? in->csvc->port : 0);
    out->via_proxy = m->lb_mode == CM_LB_PROXY;
    out->probing = in->probes && out->check->type != CM_CHECK_NONE;
    out->hostname = !out->via_proxy && s->lb_hostname_count > 0 ? s->lb_hostnames[0] : NULL;
    if (out->via_proxy) {
        rc = add_backends(in, out);
        if (m->lb_address != NULL && !address_refused(in, out, "proxy address", m->lb_address, &rc))
            out->addrs[out->addr_count++].address = m->lb_address;
    } else {
        for (size_t i = 0; i < s->lb_ip_count && out->addr_count < HC_ENDPOINT_ADDRS_MAX; i++) {
            if (!address_refused(in, out, "load-balancer address", s->lb_ips[i], &rc))
                out->addrs[out->addr_count++].address = s->lb_ips[i];
        }
        if (s->lb_ip_count == 0 && s->lb_hostname_count > 0)
            out->addrs[out->addr_count++].address = s->lb_hostnames[0];
    }
    if (out->probing)
        probe_targets(in, out);
    return rc;
}

void hc_endpoint_fini(struct hc_endpoint *ep)
{
    strv_free(ep->backends, ep->backend_count);
    strv_free(ep->refused, ep->refused_count);
    ep->backends = ep->refused = NULL;
    ep->backend_count = ep->refused_count = 0;
}

/* What the probes of one entry say together. */
struct probe_verdict {
    bool up;                             /* at least one address up (unknown: seeded) */
    bool pending;                        /* some address is pending or unknown */
    bool any_known;                      /* some address has a result */
    double rtt_ms;                       /* the lowest reported RTT of the up addresses; < 0 none */
    const struct hc_probe_status *worst; /* for the reason: a down or pending probe */
};

static void judge_probes(const struct hc_endpoint *ep, int seeded, struct probe_verdict *v)
{
    *v = (struct probe_verdict){.rtt_ms = -1};
    for (size_t i = 0; i < ep->addr_count; i++) {
        const struct hc_probe_status *st = ep->addrs[i].st;

        if (st == NULL || st->verdict == HC_PROBE_UNKNOWN) {
            v->pending = true;
            if (seeded != 0)
                v->up = true; /* no result yet: the last verdict, else benefit of the doubt */
            continue;
        }
        v->any_known = true;
        if (st->pending)
            v->pending = true;
        if (st->verdict == HC_PROBE_UP) {
            v->up = true;
            if (st->rtt_ms >= 0 && (v->rtt_ms < 0 || st->rtt_ms < v->rtt_ms))
                v->rtt_ms = st->rtt_ms;
        }
        if (st->verdict == HC_PROBE_DOWN || st->pending) {
            if (v->worst == NULL || st->verdict == HC_PROBE_DOWN)
                v->worst = st;
        }
    }
}

/* "probe 3/3 failed: connection refused", "probe ok (12.3 ms)" ... */
static void probe_words(const struct probe_verdict *v, char *buf, size_t cap)
{
    const struct hc_probe_status *w = v->worst;

    if (w != NULL && w->verdict == HC_PROBE_DOWN && !w->pending)
        snprintf(buf, cap, "probe %u/%u failed: %s",
                 (unsigned)(w->streak < w->fall ? w->streak : w->fall), (unsigned)w->fall,
                 w->last_error[0] != '\0' ? w->last_error : "failed");
    else if (w != NULL && w->verdict == HC_PROBE_DOWN)
        snprintf(buf, cap, "probe %u/%u ok; still down", (unsigned)w->streak, (unsigned)w->rise);
    else if (w != NULL)
        snprintf(buf, cap, "probe %u/%u failed: %s; still up", (unsigned)w->streak,
                 (unsigned)w->fall, w->last_error[0] != '\0' ? w->last_error : "failed");
    else if (!v->any_known)
        snprintf(buf, cap, "awaiting first probe");
    else if (v->rtt_ms >= 0)
        snprintf(buf, cap, "probe ok (%.1f ms)", v->rtt_ms);
    else
        snprintf(buf, cap, "probe ok");
}

/* "for 45 s", "for 12 min", "for 3 h": coarse, so the reason (and with it the
 * document) changes a few times a minute at most. */
void hc_endpoint_outage_words(time_t since, time_t now, char *buf, size_t cap)
{
    long secs = since != 0 && now > since ? (long)(now - since) : 0;

    if (secs < 60)
        snprintf(buf, cap, "%ld s", secs / 15 * 15);
    else if (secs < 3600)
        snprintf(buf, cap, "%ld min", secs / 60);
    else
        snprintf(buf, cap, "%ld h", secs / 3600);
}

/* Verdict and reason in words. The first refused address explains a missing
 * load balancer address. */
static bool verdict(const struct hc_endpoint_in *in, struct hc_endpoint *ep,
                    const struct probe_verdict *pv)
{
    const char *lb = ep->addr_count > 0 ? ep->addrs[0].address : NULL;
    uint32_t ready = ep->ready_v4 + ep->ready_v6;
    const char *s = ready == 1 ? "" : "s";
    bool probing = ep->probing, api_ok = in->api == HC_API_OK;
    char probe[HC_PROBE_ERR_MAX + 64], *reason = ep->reason;
    size_t cap = sizeof(ep->reason);
    bool healthy = false;
    int n;

    probe_words(pv, probe, sizeof(probe));
    /* With the API away, last-known readiness is not evidence: the probe decides. */
    if (ready == 0 && (api_ok || !probing) && !in->allow_no_endpoints)
        n = snprintf(reason, cap, "0 ready endpoints");
    else if (lb == NULL && ep->refused_count > 0)
        n = snprintf(reason, cap, "%" PRIu32 " ready endpoint%s; %s", ready, s, ep->refused[0]);
    else if (lb == NULL)
        n = snprintf(reason, cap, "%" PRIu32 " ready endpoint%s; no load balancer address", ready,
                     s);
    else if (ep->via_proxy && ep->backend_count == 0 && (api_ok || !probing))
        n = snprintf(reason, cap, "%" PRIu32 " ready endpoint%s; no ready node with a nodePort",
                     ready, s);
    else if (probing && !pv->up)
        n = snprintf(reason, cap, "%s", probe);
    else {
        healthy = true;
        if (probing)
            n = snprintf(reason, cap, "%" PRIu32 " ready endpoint%s; %s", ready, s, probe);
        else
            n = snprintf(reason, cap, "%" PRIu32 " ready endpoint%s; %s %s", ready, s,
                         ep->via_proxy ? "via proxy" : "load balancer", lb);
    }
    if (!api_ok && n > 0 && (size_t)n < cap) {
        char len[32];

        hc_endpoint_outage_words(in->bad_since, in->now, len, sizeof(len));
        snprintf(reason + n, cap - (size_t)n, "; API %s for %s; last known data",
                 in->api == HC_API_STALE ? "data stale" : hc_api_state_name(in->api), len);
    }
    return healthy;
}

void hc_endpoint_judge(const struct hc_endpoint_in *in, struct hc_endpoint *ep)
{
    struct probe_verdict pv;

    judge_probes(ep, in->previous_healthy, &pv);
    /* Addresses: the ones whose probe is up, when any is; else all. A
     * hostname-only LB is answered as a CNAME: no addresses. */
    for (size_t i = 0; i < ep->addr_count; i++) {
        const struct hc_probe_status *st = ep->addrs[i].st;
        bool known = st != NULL && st->verdict != HC_PROBE_UNKNOWN;

        ep->addrs[i].answered =
            (in->svc->lb_ip_count > 0 || ep->via_proxy) &&
            !(ep->probing && pv.any_known && pv.up && known && st->verdict != HC_PROBE_UP);
    }
    ep->healthy = verdict(in, ep, &pv);
    ep->pending = ep->probing && pv.pending;
    ep->rtt_ms = pv.rtt_ms;
}
