/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_placement.c -- what the host cluster's registry objects mean
 * (hc_placement.h): a member made of a cluster object and its Secret, and
 * the services and rules of FederatedServices and ServiceDNSRecords. Pure:
 * no I/O, the objects and the configuration in, plain values out.
 */
#include "health/hc_placement.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_net.h"
#include "common/cm_str.h"
#include "health/hc_fedsvc.h"
#include "health/hc_k8s.h"
#include "health/hc_kubeconfig.h"

#define SERVER_MAX 2048
#define TTL_MAX_S  86400u

/* ---- a member ---- */

/* host[:port] of a URL: a DNS name or IPv4 address, or [IPv6]; port 1..65535. */
static bool authority_ok(const char *a, size_t len)
{
    char buf[64];
    size_t hl = 0;
    uint64_t port;
    struct cm_addr ip;

    if (len > 0 && a[0] == '[') {
        const char *close = memchr(a, ']', len);

        hl = close != NULL ? (size_t)(close - a) + 1 : 0;
        if (hl < 3 || hl - 2 >= sizeof(buf))
            return false;
        memcpy(buf, a + 1, hl - 2);
        buf[hl - 2] = '\0';
        if (cm_ip_parse(buf, &ip) != CM_OK || ip.ss.ss_family != AF_INET6)
            return false;
    } else {
        while (hl < len && a[hl] != ':') {
            char c = a[hl++];

            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '.'))
                return false;
        }
        if (hl == 0 || hl > 253)
            return false;
    }
    if (hl == len)
        return true;
    if (a[hl] != ':')
        return false;
    return cm_parse_u64_n(a + hl + 1, len - hl - 1, 65535, &port) && port > 0;
}

/* A path prefix (a proxy's "/k8s/clusters/c-1"): unreserved characters,
 * '%' escapes and single slashes. */
static bool path_ok(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char c = p[i];

        if ((c == '/' && i > 0 && p[i - 1] == '/') ||
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("-._~/%", c) != NULL))
            return false;
    }
    return true;
}

int hc_placement_server_url(const char *endpoint, char *out, size_t cap, char *why, size_t whylen)
{
    const char *rest = endpoint, *scheme = "https://", *slash;
    size_t len = strlen(endpoint), alen;
    int n;

    if (len == 0 || len > SERVER_MAX) {
        cm_errf(why, whylen, "empty or longer than %d bytes", SERVER_MAX);
        return CM_EINVAL;
    }
    if (strstr(endpoint, "://") != NULL) {
        if (cm_str_skip_prefix(endpoint, "https://", &rest))
            scheme = "https://";
        else if (cm_str_skip_prefix(endpoint, "http://", &rest))
            scheme = "http://";
        else {
            cm_errf(why, whylen, "the scheme must be https (or http)");
            return CM_EINVAL;
        }
    }
    len = strlen(rest);
    while (len > 0 && rest[len - 1] == '/')
        len--;
    slash = memchr(rest, '/', len);
    alen = slash != NULL ? (size_t)(slash - rest) : len;
    if (!authority_ok(rest, alen)) {
        cm_errf(why, whylen, "not host[:port] (a DNS name or an IP address, a port 1..65535)");
        return CM_EINVAL;
    }
    if (!path_ok(rest + alen, len - alen)) {
        cm_errf(why, whylen, "the path may hold letters, digits, \"-._~%%\" and single slashes");
        return CM_EINVAL;
    }
    n = snprintf(out, cap, "%s%.*s", scheme, (int)len, rest);
    if (n < 0 || (size_t)n >= cap) {
        cm_errf(why, whylen, "too long");
        return CM_EINVAL;
    }
    return CM_OK;
}

/* The member's place: the object's region (and first zone of that region),
 * else members_from.locations. CM_ENOENT with why when it has none. */
static int place(const struct cm_conf *conf, const struct hc_k8s_obj *cluster,
                 struct cm_conf_member *m, const char **placed_by, char *why, size_t whylen)
{
    const struct hc_k8s_fedcluster *c = &cluster->u.cluster;
    const struct cm_conf_members_from *mf = &conf->members_from;
    const struct cm_conf_region *rg;
    int ri;

    m->zone = -1;
    if (c->region == NULL) {
        for (size_t i = 0; i < mf->location_count; i++) {
            if (strcmp(mf->locations[i].name, cluster->name) == 0) {
                m->region = mf->locations[i].region;
                m->zone = mf->locations[i].zone;
                *placed_by = "members_from.locations";
                return CM_OK;
            }
        }
        cm_errf(why, whylen,
                "no region: the object says none (%s) and members_from.locations has no entry "
                "for it",
                cluster->kind == HC_K8S_KARMADACLUSTER ? "spec.region"
                                                       : "label " HC_K8S_LABEL_REGION
                                                         " or status.region");
        return CM_ENOENT;
    }
    ri = cm_conf_region_index(conf, c->region);
    if (ri < 0) {
        cm_errf(why, whylen, "region \"%.64s\" (%s) is not one of the configured regions",
                c->region, c->region_from);
        return CM_ENOENT;
    }
    m->region = (size_t)ri;
    *placed_by = c->region_from;
    rg = &conf->regions[ri];
    for (size_t z = 0; z < c->zone_count && m->zone < 0; z++) {
        for (size_t k = 0; k < rg->zone_count && m->zone < 0; k++) {
            if (strcmp(c->zones[z], rg->zones[k]) == 0)
                m->zone = (int)k;
        }
    }
    if (c->zone_count > 0 && m->zone < 0)
        cm_errf(why, whylen,
                "zone \"%.64s\" is not one of regions.%s.zones: placed in the region only",
                c->zones[0], rg->name);
    return CM_OK;
}

static char *dup_bytes(const char *p, size_t len)
{
    char *d = malloc(len + 1);

    if (d != NULL) {
        memcpy(d, p, len);
        d[len] = '\0';
    }
    return d;
}

/* The target of a member: server, trust, proxy and the Secret's token. */
static struct hc_kube_target *make_target(const struct hc_k8s_obj *cluster,
                                          const struct hc_k8s_secret *sec, const char *server)
{
    const struct hc_k8s_fedcluster *c = &cluster->u.cluster;
    struct hc_kube_target *t = calloc(1, sizeof(*t));
    const char *ca = c->ca_pem != NULL ? c->ca_pem : sec->ca_pem;
    size_t ca_len = c->ca_pem != NULL ? c->ca_pem_len : sec->ca_pem_len;
    char ctx[128];

    if (t == NULL)
        return NULL;
    snprintf(ctx, sizeof(ctx), "%s/%s",
             cluster->kind == HC_K8S_KARMADACLUSTER ? "karmada" : "kubefed", cluster->name);
    t->context = strdup(ctx);
    t->cluster = strdup(cluster->name);
    t->server = strdup(server);
    t->ca_pem = ca != NULL ? dup_bytes(ca, ca_len) : NULL;
    t->ca_pem_len = ca != NULL ? ca_len : 0;
    t->insecure_skip_tls_verify = c->insecure;
    t->proxy_url = c->proxy_url != NULL ? strdup(c->proxy_url) : NULL;
    t->token = dup_bytes(sec->token, sec->token_len);
    if (t->context == NULL || t->cluster == NULL || t->server == NULL ||
        (ca != NULL && t->ca_pem == NULL) || (c->proxy_url != NULL && t->proxy_url == NULL) ||
        t->token == NULL) {
        hc_kube_target_free(t);
        return NULL;
    }
    return t;
}

int hc_placement_member(const struct cm_conf *conf, const struct hc_k8s_obj *cluster,
                        const struct hc_k8s_obj *secret, struct cm_conf_member *m,
                        struct hc_kube_target **t, const char **placed_by, char *why, size_t whylen)
{
    const struct hc_k8s_fedcluster *c = &cluster->u.cluster;
    char server[SERVER_MAX + 16], sub[HC_PLACEMENT_WHY_MAX];
    int rc;

    *t = NULL;
    *placed_by = NULL;
    why[0] = '\0';
    memset(m, 0, sizeof(*m));
    m->name = cluster->name;
    m->zone = -1;
    if (!cm_str_is_dns_label(cluster->name, strlen(cluster->name))) {
        cm_errf(why, whylen,
                "the name is not a DNS label (member names are: lowercase letters, "
                "digits and hyphens, at most 63)");
        return CM_ENOENT;
    }
    if (cm_conf_member_index(conf, cluster->name) >= 0) {
        cm_errf(why, whylen,
                "also configured as members.%s: a member comes from members or from "
                "the registry, not both",
                cluster->name);
        return CM_ENOENT;
    }
    if (c->problem != NULL) {
        cm_errf(why, whylen, "%s", c->problem);
        return CM_ENOENT;
    }
    if (secret == NULL || secret->u.secret.problem != NULL) {
        cm_errf(why, whylen, "Secret %s/%s: %s",
                c->secret_ns != NULL ? c->secret_ns : conf->members_from.namespace_, c->secret_name,
                secret == NULL ? "not found" : secret->u.secret.problem);
        return CM_ENOENT;
    }
    if (hc_placement_server_url(c->api_endpoint, server, sizeof(server), sub, sizeof(sub)) !=
        CM_OK) {
        cm_errf(why, whylen, "spec.apiEndpoint: %s", sub);
        return CM_ENOENT;
    }
    if (c->proxy_url != NULL && strncmp(c->proxy_url, "http://", 7) != 0 &&
        strncmp(c->proxy_url, "https://", 8) != 0 && strncmp(c->proxy_url, "socks5://", 9) != 0) {
        cm_errf(why, whylen, "spec.proxyURL: the scheme must be http, https or socks5");
        return CM_ENOENT;
    }
    rc = place(conf, cluster, m, placed_by, why, whylen);
    if (rc != CM_OK)
        return rc;
    *t = make_target(cluster, &secret->u.secret, server);
    return *t != NULL ? CM_OK : CM_ENOMEM;
}

/* ---- services ---- */

static void note(json_t *notes, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(json_t *notes, const char *fmt, ...)
{
    char buf[HC_PLACEMENT_WHY_MAX * 2];
    va_list ap;

    va_start(ap, fmt);
    cm_verrf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    json_array_append_new(notes, json_string(buf));
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The service ns/name in @set, added (without rules) when missing; NULL on ENOMEM. */
static struct hc_fedsvc *svc_entry(struct hc_fedsvcs *set, const char *ns, const char *name)
{
    struct hc_fedsvc *f, *grown;

    for (size_t i = 0; i < set->count; i++) {
        if (strcmp(set->v[i].ns, ns) == 0 && strcmp(set->v[i].name, name) == 0)
            return &set->v[i];
    }
    grown = realloc(set->v, (set->count + 1) * sizeof(*set->v));
    if (grown == NULL)
        return NULL;
    set->v = grown;
    f = &set->v[set->count];
    *f = (struct hc_fedsvc){0};
    f->ns = strdup(ns);
    f->name = strdup(name);
    f->key = malloc(strlen(ns) + strlen(name) + 2);
    if (f->ns == NULL || f->name == NULL || f->key == NULL) {
        free(f->ns);
        free(f->name);
        free(f->key);
        return NULL;
    }
    snprintf(f->key, strlen(ns) + strlen(name) + 2, "%s/%s", ns, name);
    set->count++;
    return f;
}

static int placement_add(struct hc_fedsvc *f, const char *member)
{
    char **grown;

    for (size_t i = 0; i < f->placement_count; i++) {
        if (strcmp(f->placement[i], member) == 0)
            return CM_OK;
    }
    grown = realloc(f->placement, (f->placement_count + 1) * sizeof(*f->placement));
    if (grown == NULL)
        return CM_ENOMEM;
    f->placement = grown;
    f->placement[f->placement_count] = strdup(member);
    if (f->placement[f->placement_count] == NULL)
        return CM_ENOMEM;
    f->placement_count++;
    return CM_OK;
}

/* A FederatedService's placement, KubeFed's way: clusters (even empty) win
 * over clusterSelector, which picks registry objects by label; neither, or a
 * placement that does not parse, places it nowhere. */
static int fedsvc_placement(const struct hc_placement_objs *in, const struct hc_k8s_obj *o,
                            struct hc_fedsvc *f, json_t *notes)
{
    const struct hc_k8s_fedsvc *p = &o->u.fedsvc;
    int rc = CM_OK;

    f->has_placement = true;
    if (p->problem != NULL) {
        note(notes, "FederatedService %s/%s: %s: placed nowhere", o->ns, o->name, p->problem);
    } else if (p->has_clusters) {
        for (size_t i = 0; rc == CM_OK && i < p->cluster_count; i++)
            rc = placement_add(f, p->clusters[i]);
    } else if (p->has_selector) {
        for (size_t i = 0; rc == CM_OK && i < in->cluster_count; i++) {
            const struct hc_k8s_fedcluster *c = &in->clusters[i]->u.cluster;

            if (hc_k8s_selector_match(&p->selector, c->labels, c->label_count))
                rc = placement_add(f, in->clusters[i]->name);
        }
    }
    if (rc == CM_OK && f->placement_count > 1)
        qsort(f->placement, f->placement_count, sizeof(*f->placement), cmp_str);
    return rc;
}

static const struct hc_k8s_domain *find_domain(const struct hc_placement_objs *in, const char *name)
{
    for (size_t i = 0; name != NULL && i < in->domain_count; i++) {
        const struct hc_k8s_obj *o = in->domains[i];

        if (strcmp(o->name, name) == 0 && o->ns != NULL &&
            strcmp(o->ns, in->conf->members_from.namespace_) == 0)
            return &o->u.domain;
    }
    return NULL;
}

/* A ServiceDNSRecord's rules, when its Domain is this federation's. */
static int svcdns_rules(const struct hc_placement_objs *in, const struct hc_k8s_obj *o,
                        struct hc_fedsvcs *set, json_t *notes)
{
    const struct hc_k8s_svcdns *d = &o->u.svcdns;
    const struct cm_conf *conf = in->conf;
    const struct hc_k8s_domain *dom = find_domain(in, d->domain_ref);
    char zone[HC_K8S_FED_STR_MAX + 1];
    struct hc_fedsvc *f;

    if (d->problem != NULL) {
        note(notes, "ServiceDNSRecord %s/%s: %s: skipped", o->ns, o->name, d->problem);
        return CM_OK;
    }
    if (dom == NULL || dom->problem != NULL) {
        note(notes, "ServiceDNSRecord %s/%s: Domain %s/%s %s: skipped", o->ns, o->name,
             conf->members_from.namespace_, d->domain_ref,
             dom == NULL ? "not found" : dom->problem);
        return CM_OK;
    }
    cm_strlcpy(zone, dom->domain, sizeof(zone));
    for (char *c = zone; *c != '\0'; c++)
        *c = (char)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c);
    if (zone[0] != '\0' && zone[strlen(zone) - 1] == '.')
        zone[strlen(zone) - 1] = '\0';
    if (strcmp(d->domain_ref, conf->federation) != 0 || strcmp(zone, conf->zone) != 0) {
        note(notes,
             "ServiceDNSRecord %s/%s: its names are %s.%s.%s.svc.%s, not this federation's "
             "(federation %s, zone %s): skipped",
             o->ns, o->name, o->name, o->ns, d->domain_ref, zone, conf->federation, conf->zone);
        return CM_OK;
    }
    f = svc_entry(set, o->ns, o->name);
    if (f == NULL)
        return CM_ENOMEM;
    f->ttl_s = d->record_ttl > TTL_MAX_S ? TTL_MAX_S : d->record_ttl;
    if (d->record_ttl > TTL_MAX_S)
        note(notes, "ServiceDNSRecord %s/%s: recordTTL %" PRIu32 " above %u: answered with %u",
             o->ns, o->name, d->record_ttl, TTL_MAX_S, TTL_MAX_S);
    f->allow_no_endpoints = d->allow_no_endpoints;
    if (d->dns_prefix != NULL)
        note(notes,
             "ServiceDNSRecord %s/%s: dnsPrefix %s.%s is not served: list it in "
             "services.%s.aliases",
             o->ns, o->name, d->dns_prefix, conf->zone, f->key);
    if (d->external_name != NULL)
        note(notes, "ServiceDNSRecord %s/%s: externalName is not supported: ignored", o->ns,
             o->name);
    return CM_OK;
}

static int cmp_svc(const void *a, const void *b)
{
    return strcmp(((const struct hc_fedsvc *)a)->key, ((const struct hc_fedsvc *)b)->key);
}

struct hc_fedsvcs *hc_placement_services(const struct hc_placement_objs *in, json_t *notes)
{
    size_t nfs = in->fedsvc_count, total = in->fedsvc_count + in->record_count;
    struct hc_fedsvcs *set = calloc(1, sizeof(*set));
    int rc = set != NULL ? CM_OK : CM_ENOMEM;

    for (size_t i = 0; rc == CM_OK && i < total; i++) {
        const struct hc_k8s_obj *o = i < nfs ? in->fedsvcs[i] : in->records[i - nfs];
        struct hc_fedsvc *f;

        if (!cm_str_is_dns_label(o->ns, strlen(o->ns)) ||
            !cm_str_is_dns_label(o->name, strlen(o->name))) {
            note(notes, "%s %.64s/%.64s: not a service key (namespace/name, DNS labels): skipped",
                 i < nfs ? "FederatedService" : "ServiceDNSRecord", o->ns, o->name);
            continue;
        }
        if (i >= nfs) {
            rc = svcdns_rules(in, o, set, notes);
            continue;
        }
        f = svc_entry(set, o->ns, o->name);
        rc = f != NULL ? fedsvc_placement(in, o, f, notes) : CM_ENOMEM;
    }
    if (rc != CM_OK) {
        hc_fedsvcs_free(set);
        return NULL;
    }
    if (set->count > 1)
        qsort(set->v, set->count, sizeof(*set->v), cmp_svc);
    return set;
}
