/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_report.c -- cluster caches + configuration -> state document v1.
 *
 * Change detection compares the compact, key-sorted serialization of the
 * document without generation and generated_at, so a rebuild that finds
 * nothing new does not bump the generation or rewrite the state file.
 */
#include "health/hc_report.h"

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

struct hc_report {
    uint64_t generation;
    json_t *doc; /* owned reference; NULL before the first update */
    char *body;  /* owned: serialized content without generation / generated_at */
};

struct hc_report *hc_report_new(uint64_t generation)
{
    struct hc_report *r = calloc(1, sizeof(*r));

    if (r != NULL)
        r->generation = generation;
    return r;
}

void hc_report_free(struct hc_report *r)
{
    if (r == NULL)
        return;
    json_decref(r->doc);
    free(r->body);
    free(r);
}

json_t *hc_report_doc(const struct hc_report *r)
{
    return r->doc;
}

uint64_t hc_report_generation(const struct hc_report *r)
{
    return r->generation;
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

static json_t *backends_json(const struct hc_cluster *c, const struct hc_k8s_port *port)
{
    json_t *out = json_array();

    if (out == NULL || port == NULL || port->node_port == 0)
        return out;
    for (size_t i = 0; i < hc_cluster_count(c, HC_K8S_NODE); i++) {
        const struct hc_k8s_obj *n = hc_cluster_obj(c, HC_K8S_NODE, i);
        const char *ip =
            n->u.node.internal_ip != NULL ? n->u.node.internal_ip : n->u.node.external_ip;
        char b[CM_ADDR_STRLEN + 8];

        if (!n->u.node.ready || ip == NULL)
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

/* Verdict and reason in words. */
static bool verdict(const struct hc_cluster *c, uint32_t ready, const char *lb, bool via_proxy,
                    size_t backends, time_t now, char *reason, size_t cap)
{
    enum hc_api_state api = hc_cluster_api(c);
    bool healthy = false;
    int n;

    if (ready == 0)
        n = snprintf(reason, cap, "0 ready endpoints");
    else if (lb == NULL)
        n = snprintf(reason, cap, "%" PRIu32 " ready endpoint%s; no load balancer address", ready,
                     ready == 1 ? "" : "s");
    else if (via_proxy && backends == 0)
        n = snprintf(reason, cap, "%" PRIu32 " ready endpoint%s; no ready node with a nodePort",
                     ready, ready == 1 ? "" : "s");
    else {
        healthy = true;
        n = snprintf(reason, cap, "%" PRIu32 " ready endpoint%s; %s %s", ready,
                     ready == 1 ? "" : "s", via_proxy ? "via proxy" : "load balancer", lb);
    }
    if (api != HC_API_OK && n > 0 && (size_t)n < cap) {
        time_t since = hc_cluster_bad_since(c);
        long secs = since != 0 && now > since ? (long)(now - since) : 0;

        snprintf(reason + n, cap - (size_t)n, "; API %s for %ld s; last known data",
                 api == HC_API_STALE ? "data stale" : hc_api_state_name(api), secs);
    }
    return healthy;
}

static json_t *endpoint_json(const struct cm_conf_member *m, const struct hc_cluster *c,
                             const struct hc_k8s_obj *so, uint16_t want_port, time_t now)
{
    const struct hc_k8s_svc *s = &so->u.svc;
    const struct hc_k8s_port *port = pick_port(s, want_port);
    bool via_proxy = m->lb_mode == CM_LB_PROXY;
    json_t *e = json_object(), *addrs = json_array(), *backends;
    const char *lb = NULL;
    uint32_t v4, v6;
    char reason[256];
    int rc = CM_OK;

    hc_cluster_ready(c, so->ns, so->name, &v4, &v6);
    if (via_proxy) {
        lb = m->lb_address;
        backends = backends_json(c, port);
        if (lb != NULL && json_array_append_new(addrs, json_string(lb)) != 0)
            rc = CM_ENOMEM;
    } else {
        backends = json_array();
        for (size_t i = 0; i < s->lb_ip_count && rc == CM_OK; i++) {
            if (json_array_append_new(addrs, json_string(s->lb_ips[i])) != 0)
                rc = CM_ENOMEM;
        }
        lb = s->lb_ip_count > 0 ? s->lb_ips[0]
                                : (s->lb_hostname_count > 0 ? s->lb_hostnames[0] : NULL);
    }
    if (e == NULL || addrs == NULL || backends == NULL || rc != CM_OK) {
        json_decref(e);
        json_decref(addrs);
        json_decref(backends);
        return NULL;
    }
    bool healthy =
        verdict(c, v4 + v6, lb, via_proxy, json_array_size(backends), now, reason, sizeof(reason));
    rc = set_new(e, "addresses", addrs);
    if (rc == CM_OK)
        rc = set_new(e, "backends", backends);
    else
        json_decref(backends);
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
        rc = set_new(e, "pending", json_false());
    if (rc == CM_OK)
        rc = set_new(e, "via_proxy", json_boolean(via_proxy));
    if (rc == CM_OK)
        rc = set_new(e, "reason", json_string(reason));
    if (rc == CM_OK && s->health_path != NULL)
        rc = set_new(e, "check_path", json_string(s->health_path));
    if (rc == CM_OK && s->health_port != 0)
        rc = set_new(e, "check_port", json_integer(s->health_port));
    if (rc != CM_OK) {
        json_decref(e);
        return NULL;
    }
    return e;
}

/* Adds (or fills) services[key] from every member that has the Service. */
static int add_service(json_t *services, const struct cm_conf *conf,
                       struct hc_cluster *const *clusters, const char *ns, const char *name,
                       uint16_t conf_port, time_t now)
{
    char key[512];
    json_t *svc, *members;
    uint16_t port = conf_port;

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

        if (clusters[i] == NULL)
            continue;
        so = hc_cluster_service(clusters[i], ns, name);
        if (so == NULL)
            continue;
        e = endpoint_json(&conf->members[i], clusters[i], so, conf_port, now);
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

static json_t *services_json(const struct cm_conf *conf, struct hc_cluster *const *clusters,
                             time_t now)
{
    json_t *out = json_object();
    int rc = out != NULL ? CM_OK : CM_ENOMEM;

    for (size_t i = 0; rc == CM_OK && i < conf->service_count; i++) {
        const struct cm_conf_service *s = &conf->services[i];

        rc = add_service(out, conf, clusters, s->ns, s->name, s->port, now);
    }
    for (size_t m = 0; rc == CM_OK && m < conf->member_count; m++) {
        const struct hc_cluster *c = clusters[m];

        for (size_t i = 0; c != NULL && rc == CM_OK && i < hc_cluster_count(c, HC_K8S_SERVICE);
             i++) {
            const struct hc_k8s_obj *so = hc_cluster_obj(c, HC_K8S_SERVICE, i);

            /* Names the state document cannot carry are skipped, not fatal. */
            if (!so->u.svc.federate || !valid_label(so->ns) || !valid_label(so->name))
                continue;
            rc = add_service(out, conf, clusters, so->ns, so->name, 0, now);
        }
    }
    if (rc != CM_OK) {
        json_decref(out);
        return NULL;
    }
    return out;
}

static json_t *build(const struct cm_conf *conf, struct hc_cluster *const *clusters, time_t now)
{
    json_t *doc = json_object();
    int rc;

    if (doc == NULL)
        return NULL;
    rc = set_new(doc, "version", json_integer(CM_STATE_VERSION));
    if (rc == CM_OK)
        rc = set_new(doc, "vantage", json_string(conf->regions[conf->health.vantage].name));
    if (rc == CM_OK)
        rc = set_new(doc, "members", members_json(conf, clusters));
    if (rc == CM_OK)
        rc = set_new(doc, "services", services_json(conf, clusters, now));
    if (rc != CM_OK) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

int hc_report_update(struct hc_report *r, const struct cm_conf *conf,
                     struct hc_cluster *const *clusters, time_t now, bool *changed)
{
    char err[CM_STATE_ERR_MAX] = "";
    struct cm_state *st = NULL;
    json_t *doc;
    char *body;
    char ts[32];
    int rc;

    *changed = false;
    doc = build(conf, clusters, now);
    if (doc == NULL)
        return CM_ENOMEM;
    body = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    if (body == NULL) {
        json_decref(doc);
        return CM_ENOMEM;
    }
    if (r->body != NULL && strcmp(body, r->body) == 0) {
        free(body);
        json_decref(doc);
        return CM_OK;
    }
    hc_report_time(now, ts, sizeof(ts));
    rc = set_new(doc, "generation", json_integer((json_int_t)(r->generation + 1)));
    if (rc == CM_OK)
        rc = set_new(doc, "generated_at", json_string(ts));
    if (rc == CM_OK) {
        rc = cm_state_from_json(doc, &st, err, sizeof(err));
        if (rc != CM_OK && rc != CM_ENOMEM)
            cm_log_error("state document failed validation, keeping the previous one: %s", err);
    }
    cm_state_free(st);
    if (rc != CM_OK) {
        free(body);
        json_decref(doc);
        return rc;
    }
    r->generation++;
    json_decref(r->doc);
    r->doc = doc;
    free(r->body);
    r->body = body;
    *changed = true;
    return CM_OK;
}

int hc_report_load_generation(const char *path, uint64_t *out, char *err, size_t errlen)
{
    json_error_t je;
    json_t *doc, *g;

    *out = 0;
    if (access(path, F_OK) != 0)
        return CM_OK;
    doc = json_load_file(path, 0, &je);
    if (doc == NULL) {
        snprintf(err, errlen, "%s: line %d: %s", path, je.line, je.text);
        return CM_EPARSE;
    }
    g = json_object_get(doc, "generation");
    if (!json_is_integer(g) || json_integer_value(g) < 0) {
        snprintf(err, errlen, "%s: generation: missing or not a non-negative integer", path);
        json_decref(doc);
        return CM_EPARSE;
    }
    *out = (uint64_t)json_integer_value(g);
    json_decref(doc);
    return CM_OK;
}

int hc_report_write(const struct hc_report *r, const char *path, char *err, size_t errlen)
{
    char *text;
    int rc;

    if (r->doc == NULL)
        return CM_OK;
    text = json_dumps(r->doc, JSON_COMPACT | JSON_SORT_KEYS);
    if (text == NULL)
        return CM_ENOMEM;
    rc = cm_file_write_text_atomic(path, text, 0644, err, errlen);
    free(text);
    return rc;
}
