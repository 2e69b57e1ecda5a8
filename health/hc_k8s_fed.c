/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_k8s_fed.c -- the registry's objects from their JSON (hc_k8s_fed.h).
 *
 * Each parser reads the fields it needs through a small reader that records
 * the first problem ("spec.apiEndpoint: missing") and goes on, so that one
 * broken object is reported by name instead of failing the whole list.
 */
#include "health/hc_k8s_fed.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_base64.h"
#include "common/cm_err.h"
#include "common/cm_str.h"
#include "health/hc_k8s.h"

/* The reading of one object: the first problem, and out of memory. */
struct rd {
    char why[HC_K8S_FED_WHY_MAX];
    bool oom;
};

static void problem(struct rd *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct rd *r, const char *fmt, ...)
{
    va_list ap;

    if (r->why[0] != '\0')
        return; /* the first one says it */
    va_start(ap, fmt);
    cm_verrf(r->why, sizeof(r->why), fmt, ap);
    va_end(ap);
}

static char *dup_checked(struct rd *r, const char *s)
{
    char *d = strdup(s);

    if (d == NULL)
        r->oom = true;
    return d;
}

/*
 * An optional string at @obj.@key (@path names it): absent or null -> NULL;
 * not a string, a NUL inside, empty when @nonempty, or longer than
 * HC_K8S_FED_STR_MAX -> NULL and a problem.
 */
static char *get_str(struct rd *r, json_t *obj, const char *key, const char *path, bool nonempty)
{
    json_t *v = json_object_get(obj, key);

    if (v == NULL || json_is_null(v))
        return NULL;
    if (!json_is_string(v)) {
        problem(r, "%s: not a string", path);
        return NULL;
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        problem(r, "%s: contains a NUL byte", path);
        return NULL;
    }
    if (json_string_length(v) > HC_K8S_FED_STR_MAX) {
        problem(r, "%s: longer than %u bytes", path, HC_K8S_FED_STR_MAX);
        return NULL;
    }
    if (nonempty && json_string_length(v) == 0)
        return NULL;
    return dup_checked(r, json_string_value(v));
}

static bool get_bool(struct rd *r, json_t *obj, const char *key, const char *path)
{
    json_t *v = json_object_get(obj, key);

    if (v == NULL || json_is_null(v))
        return false;
    if (!json_is_boolean(v)) {
        problem(r, "%s: not a boolean", path);
        return false;
    }
    return json_is_true(v);
}

/* An optional object; anything else but null is a problem. */
static json_t *get_obj(struct rd *r, json_t *obj, const char *key, const char *path)
{
    json_t *v = json_object_get(obj, key);

    if (v == NULL || json_is_null(v))
        return NULL;
    if (!json_is_object(v)) {
        problem(r, "%s: not an object", path);
        return NULL;
    }
    return v;
}

static json_t *get_arr(struct rd *r, json_t *obj, const char *key, const char *path)
{
    json_t *v = json_object_get(obj, key);

    if (v == NULL || json_is_null(v))
        return NULL;
    if (!json_is_array(v)) {
        problem(r, "%s: not an array", path);
        return NULL;
    }
    if (json_array_size(v) > HC_K8S_FED_LIST_MAX) {
        problem(r, "%s: more than %u entries", path, HC_K8S_FED_LIST_MAX);
        return NULL;
    }
    return v;
}

/* A base64 []byte field decoded, capped at @max decoded bytes. */
static char *get_bytes(struct rd *r, json_t *obj, const char *key, const char *path, size_t max,
                       size_t *len)
{
    json_t *v = json_object_get(obj, key);
    char *out = NULL;
    int rc;

    *len = 0;
    if (v == NULL || json_is_null(v) || (json_is_string(v) && json_string_length(v) == 0))
        return NULL;
    if (!json_is_string(v)) {
        problem(r, "%s: not a base64 string", path);
        return NULL;
    }
    if (json_string_length(v) / 4 * 3 > max) {
        problem(r, "%s: larger than %zu bytes", path, max);
        return NULL;
    }
    rc = cm_base64_decode(json_string_value(v), json_string_length(v), &out, len);
    if (rc == CM_ENOMEM)
        r->oom = true;
    else if (rc != CM_OK)
        problem(r, "%s: invalid base64", path);
    if (out != NULL && *len == 0) { /* blanks only: as absent */
        free(out);
        out = NULL;
    }
    return out;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* An array of strings (each at most HC_K8S_FED_STR_MAX, none empty). */
static char **get_strv(struct rd *r, json_t *obj, const char *key, const char *path, size_t *n)
{
    json_t *arr = get_arr(r, obj, key, path), *v;
    char **out;
    size_t i;

    *n = 0;
    if (arr == NULL)
        return NULL;
    out = calloc(json_array_size(arr) + 1, sizeof(*out));
    if (out == NULL) {
        r->oom = true;
        return NULL;
    }
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);

        if (s == NULL || s[0] == '\0' || strlen(s) != json_string_length(v) ||
            json_string_length(v) > HC_K8S_FED_STR_MAX) {
            problem(r, "%s[%zu]: not a non-empty string", path, i);
            break;
        }
        out[*n] = dup_checked(r, s);
        if (out[*n] == NULL)
            break;
        (*n)++;
    }
    return out;
}

static void free_labels(struct hc_k8s_label *l, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(l[i].key);
        free(l[i].value);
    }
    free(l);
}

/* A map of strings (labels, matchLabels). */
static struct hc_k8s_label *get_labels(struct rd *r, json_t *obj, const char *key, const char *path,
                                       size_t *n)
{
    json_t *map = get_obj(r, obj, key, path), *v;
    struct hc_k8s_label *out;
    const char *k;

    *n = 0;
    if (map == NULL)
        return NULL;
    if (json_object_size(map) > HC_K8S_FED_LABELS_MAX) {
        problem(r, "%s: more than %u entries", path, HC_K8S_FED_LABELS_MAX);
        return NULL;
    }
    out = calloc(json_object_size(map) + 1, sizeof(*out));
    if (out == NULL) {
        r->oom = true;
        return NULL;
    }
    json_object_foreach(map, k, v)
    {
        const char *s = json_string_value(v);

        if (s == NULL || strlen(s) != json_string_length(v) ||
            json_string_length(v) > HC_K8S_FED_STR_MAX || strlen(k) > HC_K8S_FED_STR_MAX) {
            problem(r, "%s: value of a key not a string", path);
            break;
        }
        out[*n].key = dup_checked(r, k);
        out[*n].value = dup_checked(r, s);
        if (out[*n].key == NULL || out[*n].value == NULL) {
            free(out[*n].key);
            free(out[*n].value);
            break;
        }
        (*n)++;
    }
    return out;
}

static const char *label_value(const struct hc_k8s_label *l, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(l[i].key, key) == 0)
            return l[i].value;
    }
    return NULL;
}

/* ---- members: KubeFedCluster and Karmada Cluster ---- */

/* KubeFed: the topology labels first (an operator sets them), then what
 * KubeFed's cluster controller recorded in status. */
static void kubefed_place(struct rd *r, json_t *o, struct hc_k8s_fedcluster *c)
{
    json_t *status = get_obj(r, o, "status", "status");
    const char *region = label_value(c->labels, c->label_count, HC_K8S_LABEL_REGION);
    const char *zone = label_value(c->labels, c->label_count, HC_K8S_LABEL_ZONE);

    if (region != NULL && region[0] != '\0') {
        c->region = dup_checked(r, region);
        c->region_from = "labels";
    } else {
        c->region = get_str(r, status, "region", "status.region", true);
        c->region_from = "status";
    }
    if (zone != NULL && zone[0] != '\0') {
        c->zones = calloc(2, sizeof(*c->zones));
        if (c->zones == NULL) {
            r->oom = true;
            return;
        }
        c->zones[0] = dup_checked(r, zone);
        c->zone_count = c->zones[0] != NULL;
    } else {
        c->zones = get_strv(r, status, "zones", "status.zones", &c->zone_count);
    }
}

static void parse_kubefed(struct rd *r, json_t *o, json_t *spec, struct hc_k8s_fedcluster *c)
{
    json_t *ref = get_obj(r, spec, "secretRef", "spec.secretRef");
    json_t *dis = get_arr(r, spec, "disabledTLSValidations", "spec.disabledTLSValidations"), *v;
    size_t i;

    c->ca_pem = get_bytes(r, spec, "caBundle", "spec.caBundle", HC_K8S_FED_CA_MAX, &c->ca_pem_len);
    c->secret_name = get_str(r, ref, "name", "spec.secretRef.name", true);
    json_array_foreach(dis, i, v)
    {
        const char *s = json_string_value(v);

        if (s != NULL && strcmp(s, "*") == 0)
            c->insecure = true;
        else
            problem(r, "spec.disabledTLSValidations[%zu]: only \"*\" is supported", i);
    }
    kubefed_place(r, o, c);
}

static void parse_karmada(struct rd *r, json_t *spec, struct hc_k8s_fedcluster *c)
{
    json_t *ref = get_obj(r, spec, "secretRef", "spec.secretRef");
    char *zone;

    c->secret_ns = get_str(r, ref, "namespace", "spec.secretRef.namespace", true);
    c->secret_name = get_str(r, ref, "name", "spec.secretRef.name", true);
    c->insecure =
        get_bool(r, spec, "insecureSkipTLSVerification", "spec.insecureSkipTLSVerification");
    c->region = get_str(r, spec, "region", "spec.region", true);
    c->region_from = "spec.region";
    c->zones = get_strv(r, spec, "zones", "spec.zones", &c->zone_count);
    if (c->zone_count > 0 || r->oom)
        return;
    zone = get_str(r, spec, "zone", "spec.zone", true); /* deprecated, older objects */
    if (zone == NULL)
        return;
    free(c->zones);
    c->zones = calloc(2, sizeof(*c->zones));
    if (c->zones == NULL) {
        free(zone);
        r->oom = true;
        return;
    }
    c->zones[0] = zone;
    c->zone_count = 1;
}

static void parse_cluster(struct rd *r, json_t *o, json_t *meta, struct hc_k8s_obj *obj)
{
    struct hc_k8s_fedcluster *c = &obj->u.cluster;
    json_t *spec = get_obj(r, o, "spec", "spec");

    c->labels = get_labels(r, meta, "labels", "metadata.labels", &c->label_count);
    c->api_endpoint = get_str(r, spec, "apiEndpoint", "spec.apiEndpoint", true);
    c->proxy_url = get_str(r, spec, "proxyURL", "spec.proxyURL", true);
    if (obj->kind == HC_K8S_KUBEFEDCLUSTER)
        parse_kubefed(r, o, spec, c);
    else
        parse_karmada(r, spec, c);
    if (c->api_endpoint == NULL)
        problem(r, "spec.apiEndpoint: missing");
    if (c->secret_name == NULL)
        problem(r, "spec.secretRef.name: missing");
    if (obj->kind == HC_K8S_KARMADACLUSTER && c->secret_ns == NULL)
        problem(r, "spec.secretRef.namespace: missing");
}

/* ---- Secret ---- */

static void parse_secret(struct rd *r, json_t *o, struct hc_k8s_secret *s)
{
    json_t *data = get_obj(r, o, "data", "data");

    s->token = get_bytes(r, data, "token", "data.token", HC_K8S_FED_TOKEN_MAX, &s->token_len);
    s->ca_pem = get_bytes(r, data, "ca.crt", "data[\"ca.crt\"]", HC_K8S_FED_CA_MAX, &s->ca_pem_len);
    if (s->ca_pem == NULL && !r->oom)
        s->ca_pem =
            get_bytes(r, data, "caBundle", "data.caBundle", HC_K8S_FED_CA_MAX, &s->ca_pem_len);
    if (s->token != NULL && (s->token_len == 0 || memchr(s->token, '\0', s->token_len) != NULL ||
                             memchr(s->token, '\n', s->token_len) != NULL))
        problem(r, "data.token: not a bearer token (empty, or a NUL or line break inside)");
    else if (s->token == NULL)
        problem(r, "data.token: missing");
}

/* ---- FederatedService placement ---- */

static const char *const sel_ops[] = {"In", "NotIn", "Exists", "DoesNotExist"};

static void parse_expr(struct rd *r, json_t *e, size_t i, struct hc_k8s_sel_expr *x)
{
    const char *op = json_string_value(json_object_get(e, "operator"));
    char path[96], sub[104];
    size_t k;

    snprintf(path, sizeof(path), "spec.placement.clusterSelector.matchExpressions[%zu]", i);
    if (!json_is_object(e)) {
        problem(r, "%s: not an object", path);
        return;
    }
    snprintf(sub, sizeof(sub), "%s.key", path);
    x->key = get_str(r, e, "key", sub, true);
    if (x->key == NULL)
        problem(r, "%s: missing", sub);
    for (k = 0; op != NULL && k < 4 && strcmp(op, sel_ops[k]) != 0; k++)
        ;
    if (op == NULL || k == 4) {
        problem(r, "%s.operator: not In, NotIn, Exists or DoesNotExist", path);
        return;
    }
    x->op = (enum hc_k8s_sel_op)k;
    snprintf(sub, sizeof(sub), "%s.values", path);
    x->values = get_strv(r, e, "values", sub, &x->value_count);
    /* As metav1.LabelSelectorAsSelector checks them. */
    if ((x->op == HC_K8S_SEL_IN || x->op == HC_K8S_SEL_NOT_IN) && x->value_count == 0)
        problem(r, "%s.values: In and NotIn need values", path);
    if ((x->op == HC_K8S_SEL_EXISTS || x->op == HC_K8S_SEL_DOES_NOT_EXIST) && x->value_count > 0)
        problem(r, "%s.values: Exists and DoesNotExist take none", path);
}

static void parse_selector(struct rd *r, json_t *sel, struct hc_k8s_selector *s)
{
    json_t *exprs =
        get_arr(r, sel, "matchExpressions", "spec.placement.clusterSelector.matchExpressions");
    json_t *e;
    size_t i;

    s->labels = get_labels(r, sel, "matchLabels", "spec.placement.clusterSelector.matchLabels",
                           &s->label_count);
    if (exprs == NULL || json_array_size(exprs) == 0)
        return;
    s->exprs = calloc(json_array_size(exprs), sizeof(*s->exprs));
    if (s->exprs == NULL) {
        r->oom = true;
        return;
    }
    json_array_foreach(exprs, i, e)
    {
        parse_expr(r, e, i, &s->exprs[s->expr_count++]);
        if (r->oom || r->why[0] != '\0')
            return;
    }
}

static void parse_fedsvc(struct rd *r, json_t *o, struct hc_k8s_fedsvc *f)
{
    json_t *pl = get_obj(r, get_obj(r, o, "spec", "spec"), "placement", "spec.placement");
    json_t *clusters = get_arr(r, pl, "clusters", "spec.placement.clusters"), *c;
    json_t *sel = get_obj(r, pl, "clusterSelector", "spec.placement.clusterSelector");
    size_t i;

    if (clusters != NULL) {
        f->has_clusters = true;
        f->clusters = calloc(json_array_size(clusters) + 1, sizeof(*f->clusters));
        if (f->clusters == NULL) {
            r->oom = true;
            return;
        }
        json_array_foreach(clusters, i, c)
        {
            char path[64];

            snprintf(path, sizeof(path), "spec.placement.clusters[%zu].name", i);
            f->clusters[f->cluster_count] = get_str(r, c, "name", path, true);
            if (f->clusters[f->cluster_count] == NULL) {
                problem(r, "%s: missing", path);
                return;
            }
            f->cluster_count++;
        }
    }
    if (sel != NULL) {
        f->has_selector = true;
        parse_selector(r, sel, &f->selector);
    }
}

/* ---- multicluster DNS ---- */

static void parse_svcdns(struct rd *r, json_t *o, struct hc_k8s_svcdns *d)
{
    json_t *spec = get_obj(r, o, "spec", "spec");
    json_t *ttl = json_object_get(spec, "recordTTL");

    d->domain_ref = get_str(r, spec, "domainRef", "spec.domainRef", true);
    d->dns_prefix = get_str(r, spec, "dnsPrefix", "spec.dnsPrefix", true);
    d->external_name = get_str(r, spec, "externalName", "spec.externalName", true);
    d->allow_no_endpoints =
        get_bool(r, spec, "allowServiceWithoutEndpoints", "spec.allowServiceWithoutEndpoints");
    if (ttl != NULL && !json_is_null(ttl)) {
        if (!json_is_integer(ttl) || json_integer_value(ttl) < 0 ||
            json_integer_value(ttl) > INT32_MAX)
            problem(r, "spec.recordTTL: not a TTL in seconds");
        else
            d->record_ttl = (uint32_t)json_integer_value(ttl);
    }
    if (d->domain_ref == NULL)
        problem(r, "spec.domainRef: missing");
}

static char *take_problem(struct rd *r)
{
    return r->why[0] != '\0' ? dup_checked(r, r->why) : NULL;
}

int hc_k8s_fed_parse(json_t *o, json_t *meta, struct hc_k8s_obj *obj)
{
    struct rd r = {.why = "", .oom = false};
    char **why = NULL;

    switch (obj->kind) {
    case HC_K8S_KUBEFEDCLUSTER:
    case HC_K8S_KARMADACLUSTER:
        parse_cluster(&r, o, meta, obj);
        why = &obj->u.cluster.problem;
        break;
    case HC_K8S_SECRET:
        parse_secret(&r, o, &obj->u.secret);
        why = &obj->u.secret.problem;
        break;
    case HC_K8S_FEDSERVICE:
        parse_fedsvc(&r, o, &obj->u.fedsvc);
        why = &obj->u.fedsvc.problem;
        break;
    case HC_K8S_DOMAIN:
        obj->u.domain.domain = get_str(&r, o, "domain", "domain", true);
        if (obj->u.domain.domain == NULL)
            problem(&r, "domain: missing");
        why = &obj->u.domain.problem;
        break;
    case HC_K8S_SVCDNS:
        parse_svcdns(&r, o, &obj->u.svcdns);
        why = &obj->u.svcdns.problem;
        break;
    default:
        return CM_EINVAL;
    }
    *why = take_problem(&r);
    return r.oom ? CM_ENOMEM : CM_OK;
}

static void wipe_free(char *p, size_t len)
{
    if (p != NULL)
        explicit_bzero(p, len);
    free(p);
}

void hc_k8s_fed_fini(struct hc_k8s_obj *obj)
{
    switch (obj->kind) {
    case HC_K8S_KUBEFEDCLUSTER:
    case HC_K8S_KARMADACLUSTER:
        free(obj->u.cluster.api_endpoint);
        free(obj->u.cluster.ca_pem);
        free(obj->u.cluster.secret_ns);
        free(obj->u.cluster.secret_name);
        free(obj->u.cluster.proxy_url);
        free(obj->u.cluster.region);
        free_strv(obj->u.cluster.zones, obj->u.cluster.zone_count);
        free_labels(obj->u.cluster.labels, obj->u.cluster.label_count);
        free(obj->u.cluster.problem);
        break;
    case HC_K8S_SECRET:
        wipe_free(obj->u.secret.token, obj->u.secret.token_len);
        free(obj->u.secret.ca_pem);
        free(obj->u.secret.problem);
        break;
    case HC_K8S_FEDSERVICE:
        free_strv(obj->u.fedsvc.clusters, obj->u.fedsvc.cluster_count);
        free_labels(obj->u.fedsvc.selector.labels, obj->u.fedsvc.selector.label_count);
        for (size_t i = 0; i < obj->u.fedsvc.selector.expr_count; i++) {
            free(obj->u.fedsvc.selector.exprs[i].key);
            free_strv(obj->u.fedsvc.selector.exprs[i].values,
                      obj->u.fedsvc.selector.exprs[i].value_count);
        }
        free(obj->u.fedsvc.selector.exprs);
        free(obj->u.fedsvc.problem);
        break;
    case HC_K8S_DOMAIN:
        free(obj->u.domain.domain);
        free(obj->u.domain.problem);
        break;
    case HC_K8S_SVCDNS:
        free(obj->u.svcdns.domain_ref);
        free(obj->u.svcdns.dns_prefix);
        free(obj->u.svcdns.external_name);
        free(obj->u.svcdns.problem);
        break;
    default:
        break;
    }
}

const char *hc_k8s_fed_problem(const struct hc_k8s_obj *obj)
{
    switch (obj->kind) {
    case HC_K8S_KUBEFEDCLUSTER:
    case HC_K8S_KARMADACLUSTER:
        return obj->u.cluster.problem;
    case HC_K8S_SECRET:
        return obj->u.secret.problem;
    case HC_K8S_FEDSERVICE:
        return obj->u.fedsvc.problem;
    case HC_K8S_DOMAIN:
        return obj->u.domain.problem;
    case HC_K8S_SVCDNS:
        return obj->u.svcdns.problem;
    default:
        return NULL;
    }
}

bool hc_k8s_selector_match(const struct hc_k8s_selector *sel, const struct hc_k8s_label *labels,
                           size_t count)
{
    for (size_t i = 0; i < sel->label_count; i++) {
        const char *v = label_value(labels, count, sel->labels[i].key);

        if (v == NULL || strcmp(v, sel->labels[i].value) != 0)
            return false;
    }
    for (size_t i = 0; i < sel->expr_count; i++) {
        const struct hc_k8s_sel_expr *x = &sel->exprs[i];
        const char *v = x->key != NULL ? label_value(labels, count, x->key) : NULL;
        bool in = false;

        for (size_t k = 0; v != NULL && k < x->value_count && !in; k++)
            in = strcmp(v, x->values[k]) == 0;
        if ((x->op == HC_K8S_SEL_IN && !in) || (x->op == HC_K8S_SEL_NOT_IN && in) ||
            (x->op == HC_K8S_SEL_EXISTS && v == NULL) ||
            (x->op == HC_K8S_SEL_DOES_NOT_EXIST && v != NULL))
            return false;
    }
    return true;
}
