/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_report.c -- cluster caches + configuration -> state document v1.
 *
 * Change detection compares the compact, key-sorted serialization of the
 * document without generation and generated_at, so a rebuild that finds
 * nothing new does not bump the generation or rewrite the state file.
 */
#include "health/hc_report.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_file.h"
#include "common/cm_log.h"
#include "common/cm_net.h"
#include "common/cm_state.h"
#include "common/cm_str.h"
#include "health/hc_cluster.h"
#include "health/hc_probe.h"

/* Refused addresses are logged at most this often (every rebuild sees them again). */
#define REFUSED_LOG_BURST    5
#define REFUSED_LOG_PERIOD_S 60

struct hc_report {
    struct cm_log_ratelimit refused_rl; /* addresses dropped by the address rule */
    uint64_t generation;
    json_t *previous; /* owned reference: the state file's document, or NULL */
    json_t *doc;      /* owned reference; NULL before the first update */
    char *text;       /* owned: hc_report_doc() serialized, made on first use; or NULL */
    size_t text_len;
};

struct hc_report *hc_report_new(uint64_t generation, json_t *previous)
{
    struct hc_report *r = calloc(1, sizeof(*r));

    if (r != NULL) {
        r->refused_rl =
            (struct cm_log_ratelimit)CM_LOG_RATELIMIT_INIT(REFUSED_LOG_BURST, REFUSED_LOG_PERIOD_S);
        r->generation = generation;
        r->previous = json_incref(previous);
    }
    return r;
}

void hc_report_free(struct hc_report *r)
{
    if (r == NULL)
        return;
    json_decref(r->previous);
    json_decref(r->doc);
    free(r->text);
    free(r);
}

json_t *hc_report_doc(const struct hc_report *r)
{
    return r->doc != NULL ? r->doc : r->previous;
}

uint64_t hc_report_generation(const struct hc_report *r)
{
    return r->generation;
}

const char *hc_report_text(struct hc_report *r, size_t *len)
{
    json_t *doc = hc_report_doc(r);

    if (r->text == NULL && doc != NULL) {
        r->text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
        r->text_len = r->text != NULL ? strlen(r->text) : 0;
    }
    *len = r->text_len;
    return r->text;
}

/*
 * The fresh build says what @published (with its generation and
 * generated_at) says. json_equal() walks both trees once; serializing both
 * with sorted keys to compare strings cost several times more at 40,000
 * entries.
 */
static bool same_content(json_t *fresh, json_t *published)
{
    const char *key;
    json_t *v;

    if (published == NULL || json_object_size(published) != json_object_size(fresh) + 2)
        return false;
    json_object_foreach(fresh, key, v)
    {
        if (!json_equal(v, json_object_get(published, key)))
            return false;
    }
    return true;
}

void hc_report_time(time_t t, char *buf, size_t cap)
{
    struct tm tm;

    if (gmtime_r(&t, &tm) == NULL || strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        cm_strlcpy(buf, "1970-01-01T00:00:00Z", cap);
}

/* Steals @v; on failure @obj is left as it was. */
static int set_new(json_t *obj, const char *key, json_t *v)
{
    if (v == NULL)
        return CM_ENOMEM;
    return json_object_set_new(obj, key, v) == 0 ? CM_OK : CM_ENOMEM;
}

static json_t *members_json(const struct cm_conf *conf, struct hc_cluster *const *clusters)
{
    json_t *out = json_object();

    for (size_t i = 0; out != NULL && i < conf->member_count; i++) {
        const struct cm_conf_member *m = &conf->members[i];
        const struct cm_conf_region *rg = &conf->regions[m->region];
        const struct hc_cluster *c = clusters[i];
        json_t *e = json_object();
        char ts[32];
        int rc;

        rc = set_new(e, "region", json_string(rg->name));
        if (rc == CM_OK)
            rc = set_new(e, "zone", m->zone >= 0 ? json_string(rg->zones[m->zone]) : json_null());
        if (rc == CM_OK)
            rc = set_new(e, "api",
                         json_string(c != NULL ? hc_api_state_name(hc_cluster_api(c)) : "unknown"));
        /* Only a member that is not ok says when it was last seen: a time
         * that moved while everything is fine would change every document. */
        if (rc == CM_OK && c != NULL && hc_cluster_api(c) != HC_API_OK) {
            hc_report_time(hc_cluster_last_seen(c), ts, sizeof(ts));
            rc = set_new(e, "last_seen",
                         hc_cluster_last_seen(c) != 0 ? json_string(ts) : json_null());
        }
        if (rc != CM_OK || set_new(out, m->name, e) != CM_OK) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* The service port matching the configured one, else the first TCP port. */
static const struct hc_k8s_port *pick_port(const struct hc_k8s_svc *s, uint16_t want)
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

/* Everything one rebuild reads; all borrowed. */
struct build_ctx {
    const struct cm_conf *conf;
    struct hc_cluster *const *clusters;
    struct hc_probes *probes; /* NULL: Kubernetes data only */
    const json_t *previous;   /* the last document published, or NULL */
    time_t now;
    struct cm_log_ratelimit *refused_rl;
};

/*
 * The address rule of state documents (cm_ip_refused under allow_addresses)
 * for an address from the Kubernetes API or the proxy's configured address:
 * true when @ip must be dropped, with "@what @ip refused: kind" appended to
 * @refused (the endpoint's "refused" list) and logged, rate limited.
 */
static bool address_refused(const struct build_ctx *bc, const char *member, const char *what,
                            const char *ip, json_t *refused)
{
    enum cm_ip_kind kind = CM_IP_UNSPECIFIED;
    struct cm_addr a;
    char msg[CM_ADDR_STRLEN + 64];

    if (cm_ip_parse(ip, &a) == CM_OK)
        kind = cm_ip_refused((const struct sockaddr *)&a.ss, bc->conf->allow_addresses,
                             bc->conf->allow_address_count);
    if (kind == CM_IP_ORDINARY)
        return false;
    snprintf(msg, sizeof(msg), "%s %s refused: %s", what, ip, cm_ip_kind_name(kind));
    cm_log_ratelimited(bc->refused_rl, CM_LOG_WARN, "member %s: %s%s", member, msg,
                       cm_ip_kind_allowable(kind) ? " (list it in allow_addresses to permit it)"
                                                  : "");
    json_array_append_new(refused, json_string(msg));
    return true;
}

static json_t *backends_json(const struct build_ctx *bc, const char *member,
                             const struct hc_cluster *c, const struct hc_k8s_port *port,
                             json_t *refused)
{
    json_t *out = json_array();

    if (out == NULL || port == NULL || port->node_port == 0)
        return out;
    for (size_t i = 0; i < hc_cluster_count(c, HC_K8S_NODE); i++) {
        const struct hc_k8s_obj *n = hc_cluster_obj(c, HC_K8S_NODE, i);
        const char *ip =
            n->u.node.internal_ip != NULL ? n->u.node.internal_ip : n->u.node.external_ip;
        char b[CM_ADDR_STRLEN + 8];

        if (!n->u.node.ready || ip == NULL ||
            address_refused(bc, member, "node address", ip, refused))
            continue;
        snprintf(b, sizeof(b), strchr(ip, ':') != NULL ? "[%s]:%u" : "%s:%u", ip,
                 (unsigned)port->node_port);
        if (json_array_append_new(out, json_string(b)) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

/* "for 45 s", "for 12 min", "for 3 h": coarse, so the reason (and with it the
 * document) changes a few times a minute at most. */
static void outage_words(time_t since, time_t now, char *buf, size_t cap)
{
    long secs = since != 0 && now > since ? (long)(now - since) : 0;

    if (secs < 60)
        snprintf(buf, cap, "%ld s", secs / 15 * 15);
    else if (secs < 3600)
        snprintf(buf, cap, "%ld min", secs / 60);
    else
        snprintf(buf, cap, "%ld h", secs / 3600);
}

/* The configured service ns/name, or NULL (annotated services). */
static const struct cm_conf_service *conf_service(const struct cm_conf *conf, const char *ns,
                                                  const char *name)
{
    for (size_t i = 0; i < conf->service_count; i++) {
        if (strcmp(conf->services[i].ns, ns) == 0 && strcmp(conf->services[i].name, name) == 0)
            return &conf->services[i];
    }
    return NULL;
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

/* One address of a (service, member) and what its probe says. */
struct addr_probe {
    const char *address;              /* borrowed, as reported */
    const struct hc_probe_status *st; /* NULL: no probe (no probes object) */
};

/* The previous document's verdict for (service, member), or -1. */
static int previous_healthy(const json_t *previous, const char *key, const char *member)
{
    const json_t *v = json_object_get(
        json_object_get(
            json_object_get(json_object_get(json_object_get(previous, "services"), key), "members"),
            member),
        "healthy");

    return json_is_boolean(v) ? json_is_true(v) : -1;
}

struct probe_verdict {
    bool up;                             /* at least one address up (unknown: seeded) */
    bool pending;                        /* some address is pending or unknown */
    bool any_known;                      /* some address has a result */
    double rtt_ms;                       /* the lowest reported RTT of the up addresses; < 0 none */
    const struct hc_probe_status *worst; /* for the reason: a down or pending probe */
};

static void judge_probes(const struct addr_probe *ap, size_t n, int seeded, struct probe_verdict *v)
{
    *v = (struct probe_verdict){.rtt_ms = -1};
    for (size_t i = 0; i < n; i++) {
        const struct hc_probe_status *st = ap[i].st;

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

/* Verdict and reason in words. @refused: the addresses the address rule
 * dropped (the first explains a missing load balancer address). */
static bool verdict(const struct build_ctx *bc, const struct hc_cluster *c, bool probing,
                    uint32_t ready, const char *lb, bool via_proxy, size_t backends,
                    const json_t *refused, const struct probe_verdict *pv, char *reason, size_t cap)
{
    enum hc_api_state api = hc_cluster_api(c);
    bool healthy = false;
    char probe[HC_PROBE_ERR_MAX + 64];
    int n;

    probe_words(pv, probe, sizeof(probe));
    /* With the API away, last-known readiness is not evidence: the probe decides. */
    if (ready == 0 && (api == HC_API_OK || !probing))
        n = snprintf(reason, cap, "0 ready endpoints");
    else if (lb == NULL && json_array_size(refused) > 0)
        n = snprintf(reason, cap, "%" PRIu32 " ready endpoint%s; %s", ready, ready == 1 ? "" : "s",
                     json_string_value(json_array_get(refused, 0)));
    else if (lb == NULL)
        n = snprintf(reason, cap, "%" PRIu32 " ready endpoint%s; no load balancer address", ready,
                     ready == 1 ? "" : "s");
    else if (via_proxy && backends == 0 && (api == HC_API_OK || !probing))
        n = snprintf(reason, cap, "%" PRIu32 " ready endpoint%s; no ready node with a nodePort",
                     ready, ready == 1 ? "" : "s");
    else if (probing && !pv->up)
        n = snprintf(reason, cap, "%s", probe);
    else {
        healthy = true;
        if (probing)
            n = snprintf(reason, cap, "%" PRIu32 " ready endpoint%s; %s", ready,
                         ready == 1 ? "" : "s", probe);
        else
            n = snprintf(reason, cap, "%" PRIu32 " ready endpoint%s; %s %s", ready,
                         ready == 1 ? "" : "s", via_proxy ? "via proxy" : "load balancer", lb);
    }
    if (api != HC_API_OK && n > 0 && (size_t)n < cap) {
        char len[32];

        outage_words(hc_cluster_bad_since(c), bc->now, len, sizeof(len));
        snprintf(reason + n, cap - (size_t)n, "; API %s for %s; last known data",
                 api == HC_API_STALE ? "data stale" : hc_api_state_name(api), len);
    }
    return healthy;
}

static json_t *rtt_json(double ms)
{
    return ms >= 0 ? json_real((double)(long long)(ms * 10.0 + 0.5) / 10.0) : json_null();
}

static json_t *probes_json(const struct addr_probe *ap, size_t n)
{
    json_t *out = json_object();

    for (size_t i = 0; out != NULL && i < n; i++) {
        const struct hc_probe_status *st = ap[i].st;
        const char *state = st == NULL || st->verdict == HC_PROBE_UNKNOWN ? "unknown"
                            : st->verdict == HC_PROBE_UP                  ? "up"
                                                                          : "down";
        json_t *e = json_object();

        if (e == NULL || set_new(e, "state", json_string(state)) != CM_OK ||
            set_new(e, "rtt_ms", rtt_json(st != NULL ? st->rtt_ms : -1)) != CM_OK ||
            set_new(e, "error", json_string(st != NULL ? st->last_error : "")) != CM_OK ||
            set_new(out, ap[i].address, e) != CM_OK) {
            json_decref(e);
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

#define MAX_ADDRS 16

static json_t *endpoint_json(const struct build_ctx *bc, size_t mi, const struct hc_cluster *c,
                             const struct hc_k8s_obj *so, const struct cm_conf_service *csvc)
{
    const struct cm_conf_member *m = &bc->conf->members[mi];
    const struct hc_k8s_svc *s = &so->u.svc;
    const struct hc_k8s_port *port = pick_port(s, csvc != NULL ? csvc->port : 0);
    bool via_proxy = m->lb_mode == CM_LB_PROXY;
    struct addr_probe ap[MAX_ADDRS];
    struct probe_verdict pv;
    const struct cm_conf_check *check =
        csvc != NULL ? &csvc->check : &bc->conf->health.default_check;
    bool probing = bc->probes != NULL && check->type != CM_CHECK_NONE;
    char key[512], reason[512];
    json_t *e = json_object(), *addrs = json_array(), *refused = json_array(), *backends, *probes;
    const char *lb = NULL;
    size_t nap = 0;
    uint32_t v4, v6;
    int rc = CM_OK;

    snprintf(key, sizeof(key), "%s/%s", so->ns, so->name);
    hc_cluster_ready(c, so->ns, so->name, &v4, &v6);
    if (via_proxy) {
        backends = backends_json(bc, m->name, c, port, refused);
        if (m->lb_address != NULL &&
            !address_refused(bc, m->name, "proxy address", m->lb_address, refused))
            ap[nap++] = (struct addr_probe){.address = m->lb_address};
    } else {
        backends = json_array();
        for (size_t i = 0; i < s->lb_ip_count && nap < MAX_ADDRS; i++) {
            if (!address_refused(bc, m->name, "load-balancer address", s->lb_ips[i], refused))
                ap[nap++] = (struct addr_probe){.address = s->lb_ips[i]};
        }
        if (s->lb_ip_count == 0 && s->lb_hostname_count > 0)
            ap[nap++] = (struct addr_probe){.address = s->lb_hostnames[0]};
    }
    lb = nap > 0 ? ap[0].address : NULL;
    /* Probes: wanted (reconcile) and read. */
    for (size_t i = 0; probing && i < nap; i++) {
        const struct cm_addr *pl = via_proxy ? proxy_listener(bc->conf, mi, csvc) : NULL;
        char target[CM_ADDR_STRLEN];
        uint16_t pport;

        if (pl != NULL) {
            cm_ip_format((const struct sockaddr *)&pl->ss, target, sizeof(target));
            pport = ntohs(pl->ss.ss_family == AF_INET6
                              ? ((const struct sockaddr_in6 *)&pl->ss)->sin6_port
                              : ((const struct sockaddr_in *)&pl->ss)->sin_port);
        } else {
            cm_strlcpy(target, ap[i].address, sizeof(target));
            pport = check->port != 0      ? check->port
                    : s->health_port != 0 ? s->health_port
                    : port != NULL        ? port->port
                                          : 80;
        }
        if (hc_probes_ensure(bc->probes, key, m->name, target, pport, check, s->health_path) !=
            CM_OK)
            rc = CM_ENOMEM;
        ap[i].st = hc_probes_get(bc->probes, key, m->name, target);
    }
    judge_probes(ap, nap, previous_healthy(bc->previous, key, m->name), &pv);
    /* Addresses: the ones whose probe is up, when any is; else all. */
    for (size_t i = 0; i < nap && rc == CM_OK; i++) {
        bool up = ap[i].st != NULL && ap[i].st->verdict == HC_PROBE_UP;

        if (s->lb_ip_count == 0 && !via_proxy)
            break; /* a hostname-only LB is answered as a CNAME: no addresses */
        if (probing && pv.any_known && pv.up && !up && ap[i].st != NULL &&
            ap[i].st->verdict != HC_PROBE_UNKNOWN)
            continue;
        if (json_array_append_new(addrs, json_string(ap[i].address)) != 0)
            rc = CM_ENOMEM;
    }
    probes = probing ? probes_json(ap, nap) : json_object();
    if (e == NULL || addrs == NULL || backends == NULL || probes == NULL || refused == NULL ||
        rc != CM_OK) {
        json_decref(e);
        json_decref(addrs);
        json_decref(backends);
        json_decref(probes);
        json_decref(refused);
        return NULL;
    }
    bool healthy = verdict(bc, c, probing, v4 + v6, lb, via_proxy, json_array_size(backends),
                           refused, &pv, reason, sizeof(reason));
    rc = set_new(e, "addresses", addrs);
    if (rc == CM_OK)
        rc = set_new(e, "backends", backends);
    else
        json_decref(backends);
    if (rc == CM_OK)
        rc = set_new(e, "probes", probes);
    else
        json_decref(probes);
    if (rc == CM_OK)
        rc = set_new(e, "hostname",
                     !via_proxy && s->lb_hostname_count > 0 ? json_string(s->lb_hostnames[0])
                                                            : json_null());
    if (rc == CM_OK)
        rc = set_new(e, "port", port != NULL ? json_integer(port->port) : json_null());
    if (rc == CM_OK)
        rc = set_new(e, "ready_endpoints", json_integer((json_int_t)v4 + v6));
    if (rc == CM_OK)
        rc = set_new(e, "ready_endpoints_ipv4", json_integer(v4));
    if (rc == CM_OK)
        rc = set_new(e, "ready_endpoints_ipv6", json_integer(v6));
    if (rc == CM_OK)
        rc = set_new(e, "healthy", json_boolean(healthy));
    if (rc == CM_OK)
        rc = set_new(e, "pending", json_boolean(probing && pv.pending));
    if (rc == CM_OK && pv.rtt_ms >= 0)
        rc = set_new(e, "rtt_ms", rtt_json(pv.rtt_ms));
    if (rc == CM_OK)
        rc = set_new(e, "via_proxy", json_boolean(via_proxy));
    if (rc == CM_OK)
        rc = set_new(e, "reason", json_string(reason));
    if (rc == CM_OK && s->health_path != NULL)
        rc = set_new(e, "check_path", json_string(s->health_path));
    if (rc == CM_OK && s->health_port != 0)
        rc = set_new(e, "check_port", json_integer(s->health_port));
    /* Only when something was dropped: an unchanged document stays the same. */
    if (rc == CM_OK && json_array_size(refused) > 0)
        rc = set_new(e, "refused", json_incref(refused));
    json_decref(refused);
    if (rc != CM_OK) {
        json_decref(e);
        return NULL;
    }
    return e;
}

/* Adds (or fills) services[key] from every member that has the Service. */
static int add_service(json_t *services, const struct build_ctx *bc, const char *ns,
                       const char *name)
{
    const struct cm_conf *conf = bc->conf;
    const struct cm_conf_service *csvc = conf_service(conf, ns, name);
    char key[512];
    json_t *svc, *members;
    uint16_t port = csvc != NULL ? csvc->port : 0;

    snprintf(key, sizeof(key), "%s/%s", ns, name);
    if (json_object_get(services, key) != NULL)
        return CM_OK;
    svc = json_object();
    members = json_object();
    if (svc == NULL || members == NULL || json_object_set_new(svc, "members", members) != 0) {
        json_decref(svc);
        json_decref(members);
        return CM_ENOMEM;
    }
    for (size_t i = 0; i < conf->member_count; i++) {
        const struct hc_k8s_obj *so;
        json_t *e;

        if (bc->clusters[i] == NULL)
            continue;
        so = hc_cluster_service(bc->clusters[i], ns, name);
        if (so == NULL)
            continue;
        e = endpoint_json(bc, i, bc->clusters[i], so, csvc);
        if (e == NULL || json_object_set_new(members, conf->members[i].name, e) != 0) {
            json_decref(svc);
            return CM_ENOMEM;
        }
        if (port == 0) {
            const struct hc_k8s_port *p = pick_port(&so->u.svc, 0);

            port = p != NULL ? p->port : 0;
        }
    }
    if (port != 0 && json_object_set_new(svc, "port", json_integer(port)) != 0) {
        json_decref(svc);
        return CM_ENOMEM;
    }
    return json_object_set_new(services, key, svc) == 0 ? CM_OK : CM_ENOMEM;
}

static bool valid_label(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    }
    return true;
}

static json_t *services_json(const struct build_ctx *bc)
{
    const struct cm_conf *conf = bc->conf;
    json_t *out = json_object();
    int rc = out != NULL ? CM_OK : CM_ENOMEM;

    for (size_t i = 0; rc == CM_OK && i < conf->service_count; i++) {
        const struct cm_conf_service *s = &conf->services[i];

        rc = add_service(out, bc, s->ns, s->name);
    }
    for (size_t m = 0; rc == CM_OK && m < conf->member_count; m++) {
        const struct hc_cluster *c = bc->clusters[m];

        for (size_t i = 0; c != NULL && rc == CM_OK && i < hc_cluster_count(c, HC_K8S_SERVICE);
             i++) {
            const struct hc_k8s_obj *so = hc_cluster_obj(c, HC_K8S_SERVICE, i);

            /* Names the state document cannot carry are skipped, not fatal. */
            if (!so->u.svc.federate || !valid_label(so->ns) || !valid_label(so->name))
                continue;
            rc = add_service(out, bc, so->ns, so->name);
        }
    }
    if (rc != CM_OK) {
        json_decref(out);
        return NULL;
    }
    return out;
}

static json_t *build(const struct build_ctx *bc)
{
    const struct cm_conf *conf = bc->conf;
    json_t *doc = json_object(), *members;
    int rc;

    if (doc == NULL)
        return NULL;
    rc = set_new(doc, "version", json_integer(CM_STATE_VERSION));
    if (rc == CM_OK)
        rc = set_new(doc, "vantage", json_string(conf->regions[conf->health.vantage].name));
    /* Services first: they reconcile the probes the member RTTs come from. */
    if (rc == CM_OK)
        rc = set_new(doc, "services", services_json(bc));
    if (rc == CM_OK) {
        members = members_json(conf, bc->clusters);
        for (size_t i = 0; members != NULL && bc->probes != NULL && i < conf->member_count; i++) {
            double rtt = hc_probes_member_rtt(bc->probes, conf->members[i].name);
            json_t *me = json_object_get(members, conf->members[i].name);

            if (rtt >= 0 && set_new(me, "rtt_ms", rtt_json(rtt)) != CM_OK) {
                json_decref(members);
                members = NULL;
            }
        }
        rc = set_new(doc, "members", members);
    }
    if (rc != CM_OK) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

int hc_report_update(struct hc_report *r, const struct cm_conf *conf,
                     struct hc_cluster *const *clusters, struct hc_probes *probes, time_t now,
                     bool *changed)
{
    struct build_ctx bc = {.conf = conf,
                           .clusters = clusters,
                           .probes = probes,
                           .previous = r->doc != NULL ? r->doc : r->previous,
                           .now = now,
                           .refused_rl = &r->refused_rl};
    char err[CM_STATE_ERR_MAX] = "";
    struct cm_state_opts opts;
    struct cm_state *st = NULL;
    json_t *doc;
    char ts[32];
    int rc;

    *changed = false;
    if (probes != NULL)
        hc_probes_mark(probes);
    doc = build(&bc);
    if (doc == NULL)
        return CM_ENOMEM; /* no sweep: a partial build must not stop probes */
    if (probes != NULL)
        hc_probes_sweep(probes);
    if (same_content(doc, r->doc)) {
        json_decref(doc);
        return CM_OK;
    }
    hc_report_time(now, ts, sizeof(ts));
    rc = set_new(doc, "generation", json_integer((json_int_t)(r->generation + 1)));
    if (rc == CM_OK)
        rc = set_new(doc, "generated_at", json_string(ts));
    if (rc == CM_OK) {
        cm_state_opts_from_conf(&opts, conf);
        rc = cm_state_from_json(doc, &opts, &st, err, sizeof(err));
        if (rc != CM_OK && rc != CM_ENOMEM)
            cm_log_error("state document failed validation, keeping the previous one: %s", err);
    }
    cm_state_free(st);
    if (rc != CM_OK) {
        json_decref(doc);
        return rc;
    }
    r->generation++;
    json_decref(r->doc);
    r->doc = doc;
    free(r->text);
    r->text = NULL;
    *changed = true;
    return CM_OK;
}

/* What the state file gave: its generation and document. */
struct loaded {
    uint64_t gen;
    json_t *doc; /* owned */
};

/* cm_file_parse_fn: a JSON object with a non-negative integer "generation". */
static int parse_state_file(void *arg, const char *path, const char *text, size_t len, char *err,
                            size_t errlen)
{
    struct loaded *l = arg;
    json_error_t je;
    json_t *doc, *g;

    (void)path;
    doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (doc == NULL) {
        snprintf(err, errlen, "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
        return CM_EPARSE;
    }
    g = json_object_get(doc, "generation");
    if (!json_is_integer(g) || json_integer_value(g) < 0) {
        snprintf(err, errlen, "generation: missing or not a non-negative integer");
        json_decref(doc);
        return CM_EPARSE;
    }
    json_decref(l->doc);
    l->gen = (uint64_t)json_integer_value(g);
    l->doc = doc;
    return CM_OK;
}

int hc_report_load(const char *path, bool check, uint64_t *gen, json_t **out, char *err,
                   size_t errlen)
{
    struct cm_file_load_info info;
    struct loaded l = {0};
    int rc;

    *gen = 0;
    *out = NULL;
    rc = cm_file_load(path, CM_STATE_FILE_MAX_BYTES, parse_state_file, &l,
                      check ? CM_FILE_LOAD_READONLY : CM_FILE_LOAD_DEFAULT, &info, err, errlen);
    if (rc == CM_ENOENT)
        return CM_OK;
    if (rc == CM_OK && check && info.fell_back) {
        snprintf(err, errlen, "%s", info.reason);
        rc = CM_EPARSE;
    }
    if (rc != CM_OK) {
        json_decref(l.doc);
        return rc;
    }
    *gen = l.gen;
    *out = l.doc;
    return CM_OK;
}

int hc_report_write(struct hc_report *r, const char *path, char *err, size_t errlen)
{
    const char *text;
    size_t len;

    if (r->doc == NULL)
        return CM_OK;
    text = hc_report_text(r, &len);
    if (text == NULL)
        return CM_ENOMEM;
    return cm_file_write_text_atomic(path, text, 0600, err, errlen);
}
