/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_k8s.c -- Kubernetes JSON to hc_k8s_* values.
 *
 * Everything here is pure: no sockets, no clocks, so the unit tests drive it
 * with byte arrays. Unknown fields are ignored (the API adds fields freely);
 * fields we rely on are checked for type, and a wrong type fails the object.
 */
#include "health/hc_k8s.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/cm_err.h"
#include "common/cm_net.h"

static const char *const kind_names[HC_K8S_KIND_ALL] = {
    "services", "endpointslices",    "nodes",   "kubefedclusters",  "clusters",
    "secrets",  "federatedservices", "domains", "servicednsrecords"};
/* Whole API paths, as conf/rbac and tests/integration/health/test_rbac.py read them. */
static const char *const kind_paths[HC_K8S_KIND_ALL] = {
    "/api/v1/services",
    "/apis/discovery.k8s.io/v1/endpointslices",
    "/api/v1/nodes",
    "/apis/core.kubefed.io/v1beta1/kubefedclusters",
    "/apis/cluster.karmada.io/v1alpha1/clusters",
    "/api/v1/secrets",
    "/apis/types.kubefed.io/v1beta1/federatedservices",
    "/apis/multiclusterdns.kubefed.io/v1alpha1/domains",
    "/apis/multiclusterdns.kubefed.io/v1alpha1/servicednsrecords"};

const char *hc_k8s_kind_name(enum hc_k8s_kind kind)
{
    return (unsigned)kind < HC_K8S_KIND_ALL ? kind_names[kind] : "?";
}

const char *hc_k8s_kind_path(enum hc_k8s_kind kind)
{
    return (unsigned)kind < HC_K8S_KIND_ALL ? kind_paths[kind] : "/";
}

bool hc_k8s_kind_namespaced(enum hc_k8s_kind kind)
{
    return kind != HC_K8S_NODE && kind != HC_K8S_KARMADACLUSTER;
}

int hc_k8s_kind_path_ns(enum hc_k8s_kind kind, const char *ns, char *out, size_t cap)
{
    const char *path = hc_k8s_kind_path(kind);
    const char *last = strrchr(path, '/');
    int n;

    if (ns == NULL)
        n = snprintf(out, cap, "%s", path);
    else if (!hc_k8s_kind_namespaced(kind))
        return CM_EINVAL;
    else
        n = snprintf(out, cap, "%.*s/namespaces/%s%s", (int)(last - path), path, ns, last);
    return n < 0 || (size_t)n >= cap ? CM_ETOOBIG : CM_OK;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cm_verrf(err, errlen, fmt, ap);
    va_end(ap);
    return CM_EPARSE;
}

/* Copies an optional string member: absent or null -> NULL; wrong type -> error. */
static int opt_str(json_t *obj, const char *key, char **out)
{
    json_t *v = json_object_get(obj, key);

    *out = NULL;
    if (v == NULL || json_is_null(v))
        return CM_OK;
    if (!json_is_string(v))
        return CM_EPARSE;
    *out = strdup(json_string_value(v));
    return *out == NULL ? CM_ENOMEM : CM_OK;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int strv_push(char ***v, size_t *n, const char *s)
{
    char **nv = realloc(*v, (*n + 1) * sizeof(*nv));

    if (nv == NULL)
        return CM_ENOMEM;
    *v = nv;
    nv[*n] = strdup(s);
    if (nv[*n] == NULL)
        return CM_ENOMEM;
    (*n)++;
    return CM_OK;
}

void hc_k8s_obj_free(struct hc_k8s_obj *obj)
{
    if (obj == NULL)
        return;
    switch (obj->kind) {
    case HC_K8S_SERVICE:
        free(obj->u.svc.type);
        for (size_t i = 0; i < obj->u.svc.port_count; i++)
            free(obj->u.svc.ports[i].name);
        free(obj->u.svc.ports);
        free_strv(obj->u.svc.lb_ips, obj->u.svc.lb_ip_count);
        free_strv(obj->u.svc.lb_hostnames, obj->u.svc.lb_hostname_count);
        free(obj->u.svc.health_path);
        break;
    case HC_K8S_SLICE:
        free(obj->u.slice.service);
        break;
    case HC_K8S_NODE:
        free(obj->u.node.internal_ip);
        free(obj->u.node.external_ip);
        break;
    default:
        hc_k8s_fed_fini(obj);
        break;
    }
    free(obj->ns);
    free(obj->name);
    free(obj->resource_version);
    free(obj);
}

static bool get_u16(json_t *v, uint16_t *out)
{
    json_int_t i;

    if (v == NULL || json_is_null(v)) {
        *out = 0;
        return true;
    }
    if (!json_is_integer(v))
        return false;
    i = json_integer_value(v);
    if (i < 0 || i > 65535)
        return false;
    *out = (uint16_t)i;
    return true;
}

static int parse_ports(json_t *spec, struct hc_k8s_svc *s, char *err, size_t errlen)
{
    json_t *ports = json_object_get(spec, "ports");
    size_t i;
    json_t *p;

    if (ports == NULL || json_is_null(ports))
        return CM_OK;
    if (!json_is_array(ports))
        return fail(err, errlen, "spec.ports: not an array");
    s->ports = calloc(json_array_size(ports) + 1, sizeof(*s->ports));
    if (s->ports == NULL)
        return CM_ENOMEM;
    json_array_foreach(ports, i, p)
    {
        struct hc_k8s_port *port = &s->ports[s->port_count];
        const char *proto = json_string_value(json_object_get(p, "protocol"));

        if (!json_is_object(p) || !get_u16(json_object_get(p, "port"), &port->port) ||
            port->port == 0 || !get_u16(json_object_get(p, "nodePort"), &port->node_port))
            return fail(err, errlen, "spec.ports[%zu]: bad port or nodePort", i);
        if (opt_str(p, "name", &port->name) != CM_OK)
            return fail(err, errlen, "spec.ports[%zu].name: not a string", i);
        port->is_tcp = proto == NULL || strcmp(proto, "TCP") == 0;
        s->port_count++;
    }
    return CM_OK;
}

static int parse_ingress(json_t *status, struct hc_k8s_svc *s, char *err, size_t errlen)
{
    json_t *ing = json_object_get(json_object_get(status, "loadBalancer"), "ingress");
    size_t i;
    json_t *e;

    if (ing == NULL || json_is_null(ing))
        return CM_OK;
    if (!json_is_array(ing))
        return fail(err, errlen, "status.loadBalancer.ingress: not an array");
    json_array_foreach(ing, i, e)
    {
        const char *ip = json_string_value(json_object_get(e, "ip"));
        const char *host = json_string_value(json_object_get(e, "hostname"));
        struct cm_addr a;

        if (ip != NULL && cm_ip_parse(ip, &a) == CM_OK &&
            strv_push(&s->lb_ips, &s->lb_ip_count, ip) != CM_OK)
            return CM_ENOMEM;
        if (host != NULL && host[0] != '\0' &&
            strv_push(&s->lb_hostnames, &s->lb_hostname_count, host) != CM_OK)
            return CM_ENOMEM;
    }
    return CM_OK;
}

static int parse_annotations(json_t *meta, struct hc_k8s_svc *s)
{
    json_t *ann = json_object_get(meta, "annotations");
    const char *fed = json_string_value(json_object_get(ann, HC_K8S_ANN_FEDERATE));
    const char *path = json_string_value(json_object_get(ann, HC_K8S_ANN_HEALTH_PATH));
    const char *port = json_string_value(json_object_get(ann, HC_K8S_ANN_HEALTH_PORT));
    uint64_t v;

    s->federate = fed != NULL && strcmp(fed, "true") == 0;
    if (path != NULL && path[0] == '/') {
        s->health_path = strdup(path);
        if (s->health_path == NULL)
            return CM_ENOMEM;
    }
    if (port != NULL && cm_parse_u64(port, 65535, &v) && v > 0)
        s->health_port = (uint16_t)v;
    return CM_OK;
}

static int parse_svc(json_t *o, json_t *meta, struct hc_k8s_obj *obj, char *err, size_t errlen)
{
    json_t *spec = json_object_get(o, "spec");
    int rc;

    if (spec != NULL && !json_is_object(spec))
        return fail(err, errlen, "spec: not an object");
    if (opt_str(spec, "type", &obj->u.svc.type) != CM_OK)
        return fail(err, errlen, "spec.type: not a string");
    rc = parse_ports(spec, &obj->u.svc, err, errlen);
    if (rc == CM_OK)
        rc = parse_ingress(json_object_get(o, "status"), &obj->u.svc, err, errlen);
    if (rc == CM_OK)
        rc = parse_annotations(meta, &obj->u.svc);
    return rc;
}

static int parse_slice(json_t *o, json_t *meta, struct hc_k8s_obj *obj, char *err, size_t errlen)
{
    struct hc_k8s_slice *sl = &obj->u.slice;
    const char *at = json_string_value(json_object_get(o, "addressType"));
    const char *svc;
    json_t *eps = json_object_get(o, "endpoints");
    size_t i;
    json_t *e;

    svc = json_string_value(
        json_object_get(json_object_get(meta, "labels"), "kubernetes.io/service-name"));
    if (svc != NULL) {
        sl->service = strdup(svc);
        if (sl->service == NULL)
            return CM_ENOMEM;
    }
    if (at == NULL || strcmp(at, "IPv4") == 0)
        sl->family = HC_K8S_IPV4;
    else if (strcmp(at, "IPv6") == 0)
        sl->family = HC_K8S_IPV6;
    else
        sl->family = HC_K8S_FQDN;
    if (eps == NULL || json_is_null(eps))
        return CM_OK;
    if (!json_is_array(eps))
        return fail(err, errlen, "endpoints: not an array");
    json_array_foreach(eps, i, e)
    {
        json_t *ready = json_object_get(json_object_get(e, "conditions"), "ready");

        if (!json_is_object(e))
            return fail(err, errlen, "endpoints[%zu]: not an object", i);
        /* EndpointSlice API: a nil ready condition means ready. */
        if (ready == NULL || json_is_null(ready) || json_is_true(ready))
            sl->ready++;
        else
            sl->not_ready++;
    }
    return CM_OK;
}

static int parse_node(json_t *o, struct hc_k8s_obj *obj)
{
    json_t *status = json_object_get(o, "status");
    json_t *conds = json_object_get(status, "conditions");
    json_t *addrs = json_object_get(status, "addresses");
    size_t i;
    json_t *e;

    json_array_foreach(conds, i, e)
    {
        const char *t = json_string_value(json_object_get(e, "type"));
        const char *s = json_string_value(json_object_get(e, "status"));

        if (t != NULL && strcmp(t, "Ready") == 0)
            obj->u.node.ready = s != NULL && strcmp(s, "True") == 0;
    }
    json_array_foreach(addrs, i, e)
    {
        const char *t = json_string_value(json_object_get(e, "type"));
        const char *a = json_string_value(json_object_get(e, "address"));
        char **slot = NULL;
        struct cm_addr ad;

        if (t == NULL || a == NULL || cm_ip_parse(a, &ad) != CM_OK)
            continue;
        if (strcmp(t, "InternalIP") == 0)
            slot = &obj->u.node.internal_ip;
        else if (strcmp(t, "ExternalIP") == 0)
            slot = &obj->u.node.external_ip;
        if (slot != NULL && *slot == NULL) {
            *slot = strdup(a);
            if (*slot == NULL)
                return CM_ENOMEM;
        }
    }
    return CM_OK;
}

/* One object of @kind from its JSON. */
static int parse_obj(json_t *o, enum hc_k8s_kind kind, struct hc_k8s_obj **out, char *err,
                     size_t errlen)
{
    struct hc_k8s_obj *obj;
    json_t *meta;
    int rc;

    if (!json_is_object(o))
        return fail(err, errlen, "object: not a JSON object");
    meta = json_object_get(o, "metadata");
    if (!json_is_object(meta) || !json_is_string(json_object_get(meta, "name")))
        return fail(err, errlen, "metadata.name: missing");
    obj = calloc(1, sizeof(*obj));
    if (obj == NULL)
        return CM_ENOMEM;
    obj->kind = kind;
    rc = opt_str(meta, "name", &obj->name);
    if (rc == CM_OK && opt_str(meta, "namespace", &obj->ns) != CM_OK)
        rc = fail(err, errlen, "metadata.namespace: not a string");
    if (rc == CM_OK && opt_str(meta, "resourceVersion", &obj->resource_version) != CM_OK)
        rc = fail(err, errlen, "metadata.resourceVersion: not a string");
    if (rc == CM_OK && hc_k8s_kind_namespaced(kind) && obj->ns == NULL)
        rc = fail(err, errlen, "metadata.namespace: missing");
    if (rc == CM_OK) {
        if (kind == HC_K8S_SERVICE)
            rc = parse_svc(o, meta, obj, err, errlen);
        else if (kind == HC_K8S_SLICE)
            rc = parse_slice(o, meta, obj, err, errlen);
        else if (kind == HC_K8S_NODE)
            rc = parse_node(o, obj);
        else
            rc = hc_k8s_fed_parse(o, meta, obj);
    }
    if (rc != CM_OK) {
        hc_k8s_obj_free(obj);
        return rc;
    }
    *out = obj;
    return CM_OK;
}

static json_t *load_json(const char *text, size_t len, char *err, size_t errlen)
{
    json_error_t je;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);

    if (doc == NULL)
        fail(err, errlen, "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
    else if (!json_is_object(doc)) {
        fail(err, errlen, "not a JSON object");
        json_decref(doc);
        doc = NULL;
    }
    return doc;
}

static int parse_event_type(const char *t, enum hc_k8s_event_type *out)
{
    static const char *const names[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(t, names[i]) == 0) {
            *out = (enum hc_k8s_event_type)i;
            return CM_OK;
        }
    }
    return CM_EPARSE;
}

static int parse_event_body(json_t *doc, enum hc_k8s_kind kind, struct hc_k8s_event *ev, char *err,
                            size_t errlen)
{
    const char *type = json_string_value(json_object_get(doc, "type"));
    json_t *o = json_object_get(doc, "object");
    json_t *code;
    int rc;

    if (type == NULL || parse_event_type(type, &ev->type) != CM_OK)
        return fail(err, errlen, "type: missing or unknown");
    if (!json_is_object(o))
        return fail(err, errlen, "object: missing");
    if (ev->type == HC_K8S_ERROR) {
        code = json_object_get(o, "code");
        ev->code = json_is_integer(code) ? (int)json_integer_value(code) : 0;
        if (opt_str(o, "message", &ev->message) != CM_OK)
            return fail(err, errlen, "object.message: not a string");
        return CM_OK;
    }
    if (ev->type == HC_K8S_BOOKMARK) {
        /* Every CM_EPARSE carries a reason: the watcher logs it. */
        rc = opt_str(json_object_get(o, "metadata"), "resourceVersion", &ev->resource_version);
        if (rc != CM_OK)
            return rc == CM_ENOMEM
                       ? rc
                       : fail(err, errlen, "BOOKMARK metadata.resourceVersion: not a string");
        if (ev->resource_version == NULL)
            return fail(err, errlen, "BOOKMARK without metadata.resourceVersion");
        return CM_OK;
    }
    rc = parse_obj(o, kind, &ev->obj, err, errlen);
    if (rc == CM_OK && ev->obj->resource_version != NULL) {
        ev->resource_version = strdup(ev->obj->resource_version);
        if (ev->resource_version == NULL)
            rc = CM_ENOMEM;
    }
    return rc;
}

int hc_k8s_event_parse(const char *line, size_t len, enum hc_k8s_kind kind, struct hc_k8s_event *ev,
                       char *err, size_t errlen)
{
    json_t *doc;
    int rc;

    memset(ev, 0, sizeof(*ev));
    doc = load_json(line, len, err, errlen);
    if (doc == NULL)
        return CM_EPARSE;
    rc = parse_event_body(doc, kind, ev, err, errlen);
    json_decref(doc);
    if (rc != CM_OK)
        hc_k8s_event_fini(ev);
    return rc;
}

void hc_k8s_event_fini(struct hc_k8s_event *ev)
{
    hc_k8s_obj_free(ev->obj);
    free(ev->resource_version);
    free(ev->message);
    memset(ev, 0, sizeof(*ev));
}

static int parse_list_body(json_t *doc, enum hc_k8s_kind kind, struct hc_k8s_list *out, char *err,
                           size_t errlen)
{
    json_t *meta = json_object_get(doc, "metadata");
    json_t *items = json_object_get(doc, "items");
    char sub[HC_K8S_ERR_MAX];
    size_t i;
    json_t *it;
    int rc;

    if (opt_str(meta, "resourceVersion", &out->resource_version) != CM_OK ||
        opt_str(meta, "continue", &out->continue_token) != CM_OK)
        return fail(err, errlen, "metadata: bad resourceVersion or continue");
    if (out->continue_token != NULL && out->continue_token[0] == '\0') {
        free(out->continue_token);
        out->continue_token = NULL;
    }
    if (items == NULL || json_is_null(items))
        return CM_OK;
    if (!json_is_array(items))
        return fail(err, errlen, "items: not an array");
    out->items = calloc(json_array_size(items) + 1, sizeof(*out->items));
    if (out->items == NULL)
        return CM_ENOMEM;
    json_array_foreach(items, i, it)
    {
        sub[0] = '\0';
        rc = parse_obj(it, kind, &out->items[out->count], sub, sizeof(sub));
        if (rc != CM_OK)
            return rc == CM_ENOMEM ? rc : fail(err, errlen, "items[%zu]: %s", i, sub);
        out->count++;
    }
    return CM_OK;
}

int hc_k8s_list_parse(const char *body, size_t len, enum hc_k8s_kind kind, struct hc_k8s_list *out,
                      char *err, size_t errlen)
{
    json_t *doc;
    int rc;

    memset(out, 0, sizeof(*out));
    if (len > HC_K8S_LIST_MAX) {
        fail(err, errlen, "list body larger than %u bytes", HC_K8S_LIST_MAX);
        return CM_ETOOBIG;
    }
    doc = load_json(body, len, err, errlen);
    if (doc == NULL)
        return CM_EPARSE;
    rc = parse_list_body(doc, kind, out, err, errlen);
    json_decref(doc);
    if (rc != CM_OK)
        hc_k8s_list_fini(out);
    return rc;
}

void hc_k8s_list_fini(struct hc_k8s_list *l)
{
    for (size_t i = 0; i < l->count; i++)
        hc_k8s_obj_free(l->items[i]);
    free(l->items);
    free(l->resource_version);
    free(l->continue_token);
    memset(l, 0, sizeof(*l));
}

int hc_k8s_status_parse(const char *body, size_t len, char *msg, size_t msglen)
{
    json_t *doc = json_loadb(body, len, 0, NULL);
    const char *m;
    json_t *code;
    int c = 0;

    if (msglen > 0)
        msg[0] = '\0';
    if (doc == NULL)
        return 0;
    code = json_object_get(doc, "code");
    if (json_is_integer(code))
        c = (int)json_integer_value(code);
    m = json_string_value(json_object_get(doc, "message"));
    if (m != NULL && msglen > 0)
        cm_strlcpy(msg, m, msglen);
    json_decref(doc);
    return c;
}
