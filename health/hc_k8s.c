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
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/cm_err.h"
#include "common/cm_jscan.h"
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

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Appends @str (taken; freed on failure). */
static int strv_take(char ***v, size_t *n, char *str)
{
    char **nv = realloc(*v, (*n + 1) * sizeof(*nv));

    if (nv == NULL) {
        free(str);
        return CM_ENOMEM;
    }
    *v = nv;
    nv[(*n)++] = str;
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
        free(obj); /* packed: its strings are in the same allocation */
        return;
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
    free(obj);
}

/* ---- the walk ---- */

/*
 * One parse: the reader over the text and the first failure. A JSON error
 * comes from the reader; a value of the wrong kind is explained with its
 * field's path (and the item it is in, for lists). A key read twice in an
 * object we read is refused (which one counts would be up to the parser).
 */
/* The strings of a packed object (an EndpointSlice), as they stand in the text
 * until the object is made (pack_slice): one allocation holds them all. */
enum { PK_NS, PK_NAME, PK_SERVICE, PK_COUNT };

struct pctx {
    struct cm_jscan s;
    int rc;    /* CM_OK, CM_EPARSE with err, CM_ENOMEM */
    char *err; /* borrowed */
    size_t errlen;
    const char *item; /* "items[3]: " while in a list's item, else "" */
    bool pack;        /* the object being read is packed: its strings go to pk */
    struct cm_jstr pk[PK_COUNT];
    bool pk_has[PK_COUNT];
};

static void pctx_init(struct pctx *c, const char *text, size_t len, char *err, size_t errlen)
{
    cm_jscan_init(&c->s, text, len);
    c->rc = CM_OK;
    c->err = err;
    c->errlen = errlen;
    c->item = "";
}

static bool bad(struct pctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool bad(struct pctx *c, const char *fmt, ...)
{
    char msg[HC_K8S_ERR_MAX];
    va_list ap;

    if (c->rc == CM_OK && c->s.err == CM_OK) {
        va_start(ap, fmt);
        cm_verrf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        fail(c->err, c->errlen, "%s%s", c->item, msg);
        c->rc = CM_EPARSE;
    }
    cm_jscan_fail(&c->s, "stopped");
    return false;
}

static bool oom(struct pctx *c)
{
    if (c->rc == CM_OK)
        c->rc = CM_ENOMEM;
    cm_jscan_fail(&c->s, "out of memory");
    return false;
}

/* The outcome: the first failure, a JSON error from the reader, else CM_OK. */
static int pctx_done(struct pctx *c)
{
    if (c->rc == CM_OK && c->s.err == CM_ENOMEM)
        c->rc = CM_ENOMEM;
    else if (c->rc == CM_OK && c->s.err != CM_OK) {
        fail(c->err, c->errlen, "invalid JSON at byte %zu: %s", c->s.err_off,
             c->s.why != NULL ? c->s.why : "?");
        c->rc = CM_EPARSE;
    }
    return c->rc;
}

static bool ok(const struct pctx *c)
{
    return c->rc == CM_OK && c->s.err == CM_OK;
}

/* Key @k of bit @bit seen for the first time in this object. */
static bool first(struct pctx *c, unsigned *seen, unsigned bit, const struct cm_jstr *k)
{
    if ((*seen & bit) != 0)
        return bad(c, "key \"%.*s\" twice", (int)(k->len < 64 ? k->len : 64), k->p);
    *seen |= bit;
    return true;
}

/* Whether @k is @name, the first time in this object (a second time fails the
 * parse, and the value is then read by a failed reader: nothing happens). */
static bool key_is(struct pctx *c, const struct cm_jstr *k, const char *name, unsigned *seen,
                   unsigned bit)
{
    if (!cm_jstr_is(k, name))
        return false;
    first(c, seen, bit, k);
    return true;
}

/* In an object: on to its next member named in @names (@n of them), the
 * others skipped; that name's index, or -1 at the end of the object or on a
 * failure (a name twice: bit 1 << index of *seen). */
static int member_in(struct pctx *c, const char *const *names, int n, unsigned *seen)
{
    struct cm_jstr k;

    while (ok(c) && cm_jscan_key(&c->s, &k)) {
        for (int i = 0; i < n; i++) {
            if (cm_jstr_is(&k, names[i]))
                return first(c, seen, 1u << i, &k) ? i : -1;
        }
        cm_jscan_skip(&c->s);
    }
    return -1;
}

/* member_in() for one name. */
static bool member_named(struct pctx *c, const char *name, unsigned *seen)
{
    return member_in(c, &name, 1, seen) == 0;
}

/* A string value as a new C string. */
static bool dup_str(struct pctx *c, char **out)
{
    struct cm_jstr v;

    if (!cm_jscan_string(&c->s, &v))
        return false;
    *out = cm_jstr_dup(&v);
    return *out != NULL || oom(c);
}

/* A string of the object being read: copied into *out, or noted for the
 * packed object (string @pk). */
static bool take_str(struct pctx *c, char **out, int pk)
{
    if (!c->pack)
        return dup_str(c, out);
    if (!cm_jscan_string(&c->s, &c->pk[pk]))
        return false;
    c->pk_has[pk] = true;
    return true;
}

/* An optional string: null -> NULL; anything but a string is "@what: not a string". */
static bool opt_str(struct pctx *c, char **out, const char *what)
{
    enum cm_jtype t = cm_jscan_peek(&c->s);

    if (!ok(c))
        return false; /* *out untouched: it may hold the first of a key read twice */
    if (t == CM_JNULL)
        return cm_jscan_skip(&c->s);
    if (t != CM_JSTRING)
        return bad(c, "%s: not a string", what);
    return dup_str(c, out);
}

/* opt_str() for a string of the object being read (take_str). */
static bool opt_take(struct pctx *c, char **out, const char *what, int pk)
{
    enum cm_jtype t = cm_jscan_peek(&c->s);

    if (!ok(c))
        return false;
    if (t == CM_JNULL)
        return cm_jscan_skip(&c->s);
    if (t != CM_JSTRING)
        return bad(c, "%s: not a string", what);
    return take_str(c, out, pk);
}

/* A string value when it is one (else the value is skipped and *is false). */
static bool maybe_str(struct pctx *c, struct cm_jstr *v, bool *is)
{
    *is = cm_jscan_peek(&c->s) == CM_JSTRING;
    return *is ? cm_jscan_string(&c->s, v) : cm_jscan_skip(&c->s);
}

/* A port: null is 0; *valid false for anything but an integer in 0..65535. */
static bool get_u16(struct pctx *c, uint16_t *out, bool *valid)
{
    enum cm_jtype t = cm_jscan_peek(&c->s);
    int64_t i = 0;
    bool is_int = false;

    *out = 0;
    *valid = t == CM_JNULL;
    if (t != CM_JNUMBER)
        return cm_jscan_skip(&c->s);
    if (!cm_jscan_number(&c->s, &i, &is_int))
        return false;
    *valid = is_int && i >= 0 && i <= 65535;
    *out = *valid ? (uint16_t)i : 0;
    return true;
}

/* Enters an object when the next value is one; else skips it, *is false. */
static bool maybe_object(struct pctx *c, bool *is)
{
    *is = cm_jscan_peek(&c->s) == CM_JOBJECT;
    return *is ? cm_jscan_enter(&c->s, CM_JOBJECT) : cm_jscan_skip(&c->s);
}

/* A list at @path: entered when it is an array (*is), skipped when null (not
 * *is), anything else refused. */
static bool maybe_array(struct pctx *c, const char *path, bool *is)
{
    enum cm_jtype t = cm_jscan_peek(&c->s);

    *is = t == CM_JARRAY;
    if (t == CM_JNULL)
        return cm_jscan_skip(&c->s);
    if (!*is)
        return bad(c, "%s: not an array", path);
    return cm_jscan_enter(&c->s, CM_JARRAY);
}

/* ---- Services ---- */

static bool parse_port(struct pctx *c, struct hc_k8s_port *p, size_t i)
{
    struct cm_jstr k, v;
    unsigned seen = 0;
    bool port_ok = true, np_ok = true, is;

    if (cm_jscan_peek(&c->s) != CM_JOBJECT)
        return bad(c, "spec.ports[%zu]: bad port or nodePort", i);
    p->is_tcp = true; /* the default protocol */
    cm_jscan_enter(&c->s, CM_JOBJECT);
    while (ok(c) && cm_jscan_key(&c->s, &k)) {
        if (key_is(c, &k, "port", &seen, 1))
            get_u16(c, &p->port, &port_ok);
        else if (key_is(c, &k, "nodePort", &seen, 2))
            get_u16(c, &p->node_port, &np_ok);
        else if (cm_jstr_is(&k, "name")) {
            char what[48];

            snprintf(what, sizeof(what), "spec.ports[%zu].name", i);
            if (first(c, &seen, 4, &k))
                opt_str(c, &p->name, what);
        } else if (cm_jstr_is(&k, "protocol")) {
            if (first(c, &seen, 8, &k) && maybe_str(c, &v, &is) && is)
                p->is_tcp = cm_jstr_is(&v, "TCP");
        } else {
            cm_jscan_skip(&c->s);
        }
    }
    if (ok(c) && (!port_ok || !np_ok || p->port == 0))
        return bad(c, "spec.ports[%zu]: bad port or nodePort", i);
    return ok(c);
}

static bool parse_ports(struct pctx *c, struct hc_k8s_svc *s)
{
    bool is;

    if (!maybe_array(c, "spec.ports", &is) || !is)
        return ok(c);
    while (ok(c) && cm_jscan_item(&c->s)) {
        struct hc_k8s_port *np = realloc(s->ports, (s->port_count + 1) * sizeof(*np));

        if (np == NULL)
            return oom(c);
        s->ports = np;
        np[s->port_count] = (struct hc_k8s_port){0};
        s->port_count++; /* counted now: freed with the object whatever happens */
        parse_port(c, &np[s->port_count - 1], s->port_count - 1);
    }
    return ok(c);
}

static bool parse_spec(struct pctx *c, struct hc_k8s_svc *s)
{
    struct cm_jstr k;
    unsigned seen = 0;

    if (cm_jscan_peek(&c->s) != CM_JOBJECT)
        return bad(c, "spec: not an object");
    cm_jscan_enter(&c->s, CM_JOBJECT);
    while (ok(c) && cm_jscan_key(&c->s, &k)) {
        if (key_is(c, &k, "type", &seen, 1))
            opt_str(c, &s->type, "spec.type");
        else if (key_is(c, &k, "ports", &seen, 2))
            parse_ports(c, s);
        else
            cm_jscan_skip(&c->s);
    }
    return ok(c);
}

/* One ingress point: its IP when it is a valid one, its hostname when not empty. */
static bool parse_ingress_point(struct pctx *c, struct hc_k8s_svc *s)
{
    struct cm_jstr k, v;
    unsigned seen = 0;
    bool is;

    if (!maybe_object(c, &is) || !is)
        return ok(c); /* not an object: nothing in it */
    while (ok(c) && cm_jscan_key(&c->s, &k)) {
        bool ip = cm_jstr_is(&k, "ip");
        char *str;
        struct cm_addr a;

        if (!ip && !cm_jstr_is(&k, "hostname")) {
            cm_jscan_skip(&c->s);
            continue;
        }
        if (!first(c, &seen, ip ? 1 : 2, &k) || !maybe_str(c, &v, &is) || !is || v.len == 0)
            continue;
        str = cm_jstr_dup(&v);
        if (str == NULL)
            return oom(c);
        if (ip && cm_ip_parse(str, &a) != CM_OK)
            free(str);
        else if (strv_take(ip ? &s->lb_ips : &s->lb_hostnames,
                           ip ? &s->lb_ip_count : &s->lb_hostname_count, str) != CM_OK)
            return oom(c);
    }
    return ok(c);
}

/* status.loadBalancer.ingress; anything of another shape on the way holds nothing. */
static bool parse_svc_status(struct pctx *c, struct hc_k8s_svc *s)
{
    unsigned seen = 0, seen2 = 0;
    bool is;

    if (!maybe_object(c, &is) || !is)
        return ok(c);
    while (member_named(c, "loadBalancer", &seen)) {
        if (!maybe_object(c, &is) || !is)
            continue;
        while (member_named(c, "ingress", &seen2)) {
            if (!maybe_array(c, "status.loadBalancer.ingress", &is) || !is)
                continue;
            while (ok(c) && cm_jscan_item(&c->s))
                parse_ingress_point(c, s);
        }
    }
    return ok(c);
}

/* An annotation's value that is a decimal number up to @max (a string, as
 * annotations are): true with *out, false for anything else (consumed). */
static bool ann_number(struct pctx *c, uint64_t max, uint64_t *out)
{
    struct cm_jstr v;
    char text[24];
    bool is;

    if (!maybe_str(c, &v, &is) || !is || v.len >= sizeof(text))
        return false;
    cm_jstr_copy(&v, text);
    return cm_parse_u64(text, max, out);
}

static bool parse_annotations(struct pctx *c, struct hc_k8s_svc *s)
{
    struct cm_jstr k, v;
    unsigned seen = 0;
    bool is;

    if (!maybe_object(c, &is) || !is)
        return ok(c);
    while (ok(c) && cm_jscan_key(&c->s, &k)) {
        if (cm_jstr_is(&k, HC_K8S_ANN_FEDERATE)) {
            if (first(c, &seen, 1, &k) && maybe_str(c, &v, &is))
                s->federate = is && cm_jstr_is(&v, "true");
        } else if (cm_jstr_is(&k, HC_K8S_ANN_HEALTH_PATH)) {
            if (first(c, &seen, 2, &k) && maybe_str(c, &v, &is) && is && v.len > 0 &&
                v.p[0] == '/' && (s->health_path = cm_jstr_dup(&v)) == NULL)
                return oom(c);
        } else if (cm_jstr_is(&k, HC_K8S_ANN_HEALTH_PORT)) {
            uint64_t port;

            if (first(c, &seen, 4, &k) && ann_number(c, 65535, &port) && port > 0)
                s->health_port = (uint16_t)port;
        } else if (cm_jstr_is(&k, HC_K8S_ANN_WEIGHT)) {
            /* Traffic policy (dns_rank): a value out of range is as if absent. */
            uint64_t w;

            if (first(c, &seen, 8, &k) && (s->has_weight = ann_number(c, HC_K8S_POLICY_MAX, &w)))
                s->weight = (uint32_t)w;
        } else if (cm_jstr_is(&k, HC_K8S_ANN_PRIORITY)) {
            uint64_t p;

            if (first(c, &seen, 16, &k) && (s->has_priority = ann_number(c, HC_K8S_POLICY_MAX, &p)))
                s->priority = (uint32_t)p;
        } else {
            cm_jscan_skip(&c->s);
        }
    }
    return ok(c);
}

/* ---- EndpointSlices ---- */

/* endpoints[]: conditions.ready true, null or absent is ready (the API's rule). */
static bool parse_endpoints(struct pctx *c, struct hc_k8s_slice *sl)
{
    size_t i = 0;
    bool is;

    if (!maybe_array(c, "endpoints", &is) || !is)
        return ok(c);
    for (; ok(c) && cm_jscan_item(&c->s); i++) {
        unsigned seen = 0, seen2 = 0;
        bool ready = true;

        if (cm_jscan_peek(&c->s) != CM_JOBJECT)
            return bad(c, "endpoints[%zu]: not an object", i);
        cm_jscan_enter(&c->s, CM_JOBJECT);
        while (member_named(c, "conditions", &seen)) {
            if (!maybe_object(c, &is) || !is)
                continue;
            while (member_named(c, "ready", &seen2)) {
                enum cm_jtype r = cm_jscan_peek(&c->s);

                if (cm_jscan_skip(&c->s))
                    ready = r == CM_JTRUE || r == CM_JNULL;
            }
        }
        if (ready)
            sl->ready++;
        else
            sl->not_ready++;
    }
    return ok(c);
}

static bool parse_address_type(struct pctx *c, struct hc_k8s_slice *sl)
{
    struct cm_jstr v;
    bool is;

    if (!maybe_str(c, &v, &is))
        return false;
    sl->family = !is || cm_jstr_is(&v, "IPv4") ? HC_K8S_IPV4
                 : cm_jstr_is(&v, "IPv6")      ? HC_K8S_IPV6
                                               : HC_K8S_FQDN;
    return true;
}

/* ---- Nodes ---- */

/* One {type, @second} pair of a list (conditions or addresses): the two strings when set. */
static bool parse_pair(struct pctx *c, const char *second, struct cm_jstr *type, bool *has_type,
                       struct cm_jstr *val, bool *has_val)
{
    struct cm_jstr k;
    unsigned seen = 0;
    bool is;

    *has_type = *has_val = false;
    if (!maybe_object(c, &is) || !is)
        return ok(c);
    while (ok(c) && cm_jscan_key(&c->s, &k)) {
        if (key_is(c, &k, "type", &seen, 1))
            maybe_str(c, type, has_type);
        else if (key_is(c, &k, second, &seen, 2))
            maybe_str(c, val, has_val);
        else
            cm_jscan_skip(&c->s);
    }
    return ok(c);
}

/* The first InternalIP and ExternalIP that are valid IPs. */
static bool node_address(struct pctx *c, struct hc_k8s_node *n, const struct cm_jstr *type,
                         const struct cm_jstr *val)
{
    char **slot = cm_jstr_is(type, "InternalIP")   ? &n->internal_ip
                  : cm_jstr_is(type, "ExternalIP") ? &n->external_ip
                                                   : NULL;
    char *ip;
    struct cm_addr a;

    if (slot == NULL || *slot != NULL)
        return true;
    ip = cm_jstr_dup(val);
    if (ip == NULL)
        return oom(c);
    if (cm_ip_parse(ip, &a) != CM_OK)
        free(ip);
    else
        *slot = ip;
    return true;
}

static bool parse_node_status(struct pctx *c, struct hc_k8s_node *n)
{
    static const char *const keys[] = {"conditions", "addresses"};
    struct cm_jstr type, val;
    unsigned seen = 0;
    bool is, has_type, has_val;
    int w;

    if (!maybe_object(c, &is) || !is)
        return ok(c);
    while ((w = member_in(c, keys, 2, &seen)) >= 0) {
        bool conds = w == 0;

        if (cm_jscan_peek(&c->s) != CM_JARRAY) {
            cm_jscan_skip(&c->s); /* not a list: nothing in it */
            continue;
        }
        cm_jscan_enter(&c->s, CM_JARRAY);
        while (ok(c) && cm_jscan_item(&c->s)) {
            if (!parse_pair(c, conds ? "status" : "address", &type, &has_type, &val, &has_val) ||
                !has_type)
                continue;
            if (conds && cm_jstr_is(&type, "Ready"))
                n->ready = has_val && cm_jstr_is(&val, "True"); /* the last Ready counts */
            else if (!conds && has_val)
                node_address(c, n, &type, &val);
        }
    }
    return ok(c);
}

/* ---- objects ---- */

/* metadata: name, namespace, resourceVersion (into *rv when @rv), the service
 * label of a slice, the annotations of a Service. */
static bool parse_meta(struct pctx *c, struct hc_k8s_obj *obj, char **rv)
{
    struct cm_jstr k, v;
    unsigned seen = 0, seen2 = 0;
    bool is;

    if (cm_jscan_peek(&c->s) != CM_JOBJECT)
        return bad(c, "metadata.name: missing");
    cm_jscan_enter(&c->s, CM_JOBJECT);
    while (ok(c) && cm_jscan_key(&c->s, &k)) {
        if (cm_jstr_is(&k, "name")) {
            if (first(c, &seen, 1, &k) && cm_jscan_peek(&c->s) != CM_JSTRING)
                return bad(c, "metadata.name: missing");
            take_str(c, &obj->name, PK_NAME);
        } else if (key_is(c, &k, "namespace", &seen, 2)) {
            opt_take(c, &obj->ns, "metadata.namespace", PK_NS);
        } else if (cm_jstr_is(&k, "resourceVersion")) {
            char *r = NULL;

            if (first(c, &seen, 4, &k) && opt_str(c, &r, "metadata.resourceVersion") && rv != NULL)
                *rv = r;
            else
                free(r);
        } else if (obj->kind == HC_K8S_SERVICE && key_is(c, &k, "annotations", &seen, 8)) {
            parse_annotations(c, &obj->u.svc);
        } else if (cm_jstr_is(&k, "labels") && obj->kind == HC_K8S_SLICE) {
            if (!first(c, &seen, 16, &k) || !maybe_object(c, &is) || !is)
                continue;
            while (member_named(c, "kubernetes.io/service-name", &seen2)) {
                if (maybe_str(c, &v, &is) && is) {
                    c->pk[PK_SERVICE] = v; /* slices are packed */
                    c->pk_has[PK_SERVICE] = true;
                }
            }
        } else {
            cm_jscan_skip(&c->s);
        }
    }
    return ok(c);
}

/* The members of an object of @kind that are not metadata. */
static void parse_member(struct pctx *c, struct hc_k8s_obj *obj, const struct cm_jstr *k,
                         unsigned *seen)
{
    enum hc_k8s_kind kind = obj->kind;

    if (kind == HC_K8S_SERVICE && key_is(c, k, "spec", seen, 2))
        parse_spec(c, &obj->u.svc);
    else if (kind == HC_K8S_SERVICE && key_is(c, k, "status", seen, 4))
        parse_svc_status(c, &obj->u.svc);
    else if (kind == HC_K8S_NODE && key_is(c, k, "status", seen, 4))
        parse_node_status(c, &obj->u.node);
    else if (kind == HC_K8S_SLICE && key_is(c, k, "addressType", seen, 8))
        parse_address_type(c, &obj->u.slice);
    else if (kind == HC_K8S_SLICE && key_is(c, k, "endpoints", seen, 16))
        parse_endpoints(c, &obj->u.slice);
    else
        cm_jscan_skip(&c->s);
}

/* A string member of a jansson object, copied: absent or null -> NULL; false
 * for another type. */
static bool json_opt_str(json_t *o, const char *key, char **out, int *rc)
{
    json_t *v = json_object_get(o, key);

    if (v == NULL || json_is_null(v))
        return true;
    if (!json_is_string(v))
        return false;
    *out = strdup(json_string_value(v));
    if (*out == NULL)
        *rc = CM_ENOMEM;
    return true;
}

/*
 * An object of the host cluster's registry (hc_k8s_fed): few of them, read
 * with jansson as hc_k8s_fed_parse() wants it, from the text the reader
 * checked and skipped.
 */
static bool parse_fed_obj(struct pctx *c, struct hc_k8s_obj *obj, char **rv)
{
    const char *start;
    json_error_t je;
    json_t *o, *meta;
    char *r = NULL;
    int rc = CM_OK;

    cm_jscan_peek(&c->s);
    start = c->s.p;
    if (!cm_jscan_skip(&c->s))
        return false;
    o = json_loadb(start, (size_t)(c->s.p - start), JSON_REJECT_DUPLICATES, &je);
    if (o == NULL)
        return bad(c, "object: %s", je.text);
    meta = json_object_get(o, "metadata");
    if (!json_is_object(meta) || !json_is_string(json_object_get(meta, "name")))
        bad(c, "metadata.name: missing");
    else if (!json_opt_str(meta, "name", &obj->name, &rc) ||
             !json_opt_str(meta, "namespace", &obj->ns, &rc))
        bad(c, "metadata.namespace: not a string");
    else if (!json_opt_str(meta, "resourceVersion", &r, &rc))
        bad(c, "metadata.resourceVersion: not a string");
    if (rc == CM_OK && ok(c))
        rc = hc_k8s_fed_parse(o, meta, obj);
    if (rc != CM_OK)
        oom(c);
    if (ok(c) && rv != NULL)
        *rv = r;
    else
        free(r);
    json_decref(o);
    return ok(c);
}

/*
 * The EndpointSlice read into @tmp as one allocation: the header, u.slice and
 * the strings noted in c->pk after it -- less than sizeof(struct hc_k8s_obj),
 * whose union is sized for the largest kind (see struct hc_k8s_obj). NULL on
 * ENOMEM.
 */
static struct hc_k8s_obj *pack_slice(const struct pctx *c, const struct hc_k8s_obj *tmp)
{
    size_t head = offsetof(struct hc_k8s_obj, u) + sizeof(struct hc_k8s_slice), len = head;
    struct hc_k8s_obj *obj;
    char *p, **to[PK_COUNT];

    for (int i = 0; i < PK_COUNT; i++)
        len += c->pk_has[i] ? c->pk[i].len + 1 : 0;
    obj = malloc(len);
    if (obj == NULL)
        return NULL;
    memcpy(obj, tmp, head);
    to[PK_NS] = &obj->ns;
    to[PK_NAME] = &obj->name;
    to[PK_SERVICE] = &obj->u.slice.service;
    p = (char *)obj + head;
    for (int i = 0; i < PK_COUNT; i++) {
        *to[i] = NULL;
        if (c->pk_has[i]) {
            *to[i] = p;
            p += cm_jstr_copy(&c->pk[i], p) + 1;
        }
    }
    return obj;
}

/* One object of @kind; its resourceVersion into *rv when @rv is not NULL. */
static bool parse_obj(struct pctx *c, enum hc_k8s_kind kind, struct hc_k8s_obj **out, char **rv)
{
    struct hc_k8s_obj tmp = {.kind = kind}, *obj = &tmp;
    struct cm_jstr k;
    unsigned seen = 0;

    if (cm_jscan_peek(&c->s) != CM_JOBJECT)
        return bad(c, "object: not a JSON object");
    /* A slice is read into tmp (nothing allocated) and packed at the end. */
    c->pack = kind == HC_K8S_SLICE;
    memset(c->pk_has, 0, sizeof(c->pk_has));
    if (!c->pack) {
        obj = calloc(1, sizeof(*obj));
        if (obj == NULL)
            return oom(c);
        obj->kind = kind;
    }
    if (kind >= HC_K8S_KIND_COUNT) {
        parse_fed_obj(c, obj, rv);
    } else {
        cm_jscan_enter(&c->s, CM_JOBJECT);
        while (ok(c) && cm_jscan_key(&c->s, &k)) {
            if (key_is(c, &k, "metadata", &seen, 1))
                parse_meta(c, obj, rv);
            else
                parse_member(c, obj, &k, &seen);
        }
    }
    if (ok(c) && obj->name == NULL && !c->pk_has[PK_NAME])
        bad(c, "metadata.name: missing");
    if (ok(c) && hc_k8s_kind_namespaced(kind) && obj->ns == NULL && !c->pk_has[PK_NS])
        bad(c, "metadata.namespace: missing");
    if (!c->pack) {
        if (!ok(c))
            hc_k8s_obj_free(obj);
        else
            *out = obj;
        return ok(c);
    }
    c->pack = false;
    if (!ok(c))
        return false;
    *out = pack_slice(c, &tmp);
    return *out != NULL || oom(c);
}

/* ---- events ---- */

static int parse_event_type(const struct cm_jstr *t, enum hc_k8s_event_type *out)
{
    static const char *const names[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (cm_jstr_is(t, names[i])) {
            *out = (enum hc_k8s_event_type)i;
            return CM_OK;
        }
    }
    return CM_EPARSE;
}

/* An ERROR event's Status: code and message. */
static bool parse_status_object(struct pctx *c, struct hc_k8s_event *ev)
{
    struct cm_jstr k;
    unsigned seen = 0;

    cm_jscan_enter(&c->s, CM_JOBJECT);
    while (ok(c) && cm_jscan_key(&c->s, &k)) {
        if (cm_jstr_is(&k, "code") && first(c, &seen, 1, &k)) {
            int64_t code = 0;
            bool is_int = false;

            if (cm_jscan_peek(&c->s) != CM_JNUMBER)
                cm_jscan_skip(&c->s);
            else if (cm_jscan_number(&c->s, &code, &is_int) && is_int && code >= INT32_MIN &&
                     code <= INT32_MAX)
                ev->code = (int)code;
        } else if (key_is(c, &k, "message", &seen, 2)) {
            opt_str(c, &ev->message, "object.message");
        } else {
            cm_jscan_skip(&c->s);
        }
    }
    return ok(c);
}

/* A BOOKMARK's object: only metadata.resourceVersion means something. */
static bool parse_bookmark(struct pctx *c, struct hc_k8s_event *ev)
{
    unsigned seen = 0, seen2 = 0;
    bool is;

    cm_jscan_enter(&c->s, CM_JOBJECT);
    while (member_named(c, "metadata", &seen)) {
        if (!maybe_object(c, &is) || !is)
            continue;
        while (member_named(c, "resourceVersion", &seen2))
            opt_str(c, &ev->resource_version, "BOOKMARK metadata.resourceVersion");
    }
    if (ok(c) && ev->resource_version == NULL)
        return bad(c, "BOOKMARK without metadata.resourceVersion");
    return ok(c);
}

static bool parse_event_object(struct pctx *c, enum hc_k8s_kind kind, struct hc_k8s_event *ev)
{
    if (cm_jscan_peek(&c->s) != CM_JOBJECT)
        return bad(c, "object: missing");
    if (ev->type == HC_K8S_ERROR)
        return parse_status_object(c, ev);
    if (ev->type == HC_K8S_BOOKMARK)
        return parse_bookmark(c, ev);
    return parse_obj(c, kind, &ev->obj, &ev->resource_version);
}

int hc_k8s_event_parse(const char *line, size_t len, enum hc_k8s_kind kind, struct hc_k8s_event *ev,
                       char *err, size_t errlen)
{
    struct pctx c;
    struct cm_jstr k, t;
    const char *obj_at = NULL, *obj_end = NULL; /* "object" read before "type" */
    unsigned seen = 0;

    memset(ev, 0, sizeof(*ev));
    pctx_init(&c, line, len, err, errlen);
    if (cm_jscan_peek(&c.s) != CM_JOBJECT && cm_jscan_peek(&c.s) != CM_JNONE)
        bad(&c, "not a JSON object");
    cm_jscan_enter(&c.s, CM_JOBJECT);
    while (ok(&c) && cm_jscan_key(&c.s, &k)) {
        if (cm_jstr_is(&k, "type")) {
            if (first(&c, &seen, 1, &k) &&
                (cm_jscan_peek(&c.s) != CM_JSTRING || !cm_jscan_string(&c.s, &t) ||
                 parse_event_type(&t, &ev->type) != CM_OK))
                bad(&c, "type: missing or unknown");
        } else if (cm_jstr_is(&k, "object")) {
            if (!first(&c, &seen, 2, &k))
                break;
            if ((seen & 1) != 0) {
                parse_event_object(&c, kind, ev);
                continue;
            }
            cm_jscan_peek(&c.s);
            obj_at = c.s.p;
            cm_jscan_skip(&c.s);
            obj_end = c.s.p;
        } else {
            cm_jscan_skip(&c.s);
        }
    }
    if (ok(&c))
        cm_jscan_end(&c.s);
    if (ok(&c) && (seen & 1) == 0)
        bad(&c, "type: missing or unknown");
    if (ok(&c) && (seen & 2) == 0)
        bad(&c, "object: missing");
    if (ok(&c) && obj_at != NULL) {
        struct pctx sub;

        pctx_init(&sub, obj_at, (size_t)(obj_end - obj_at), err, errlen);
        parse_event_object(&sub, kind, ev);
        c.rc = pctx_done(&sub);
    }
    if (pctx_done(&c) != CM_OK)
        hc_k8s_event_fini(ev);
    return c.rc;
}

void hc_k8s_event_fini(struct hc_k8s_event *ev)
{
    hc_k8s_obj_free(ev->obj);
    free(ev->resource_version);
    free(ev->message);
    memset(ev, 0, sizeof(*ev));
}

/* ---- lists ---- */

static bool parse_list_meta(struct pctx *c, struct hc_k8s_list *out)
{
    static const char *const keys[] = {"resourceVersion", "continue"};
    unsigned seen = 0;
    bool is;
    int w;

    if (!maybe_object(c, &is) || !is)
        return ok(c);
    while ((w = member_in(c, keys, 2, &seen)) >= 0)
        opt_str(c, w == 0 ? &out->resource_version : &out->continue_token,
                w == 0 ? "metadata.resourceVersion" : "metadata.continue");
    return ok(c);
}

static bool parse_items(struct pctx *c, enum hc_k8s_kind kind, struct hc_k8s_list *out)
{
    size_t cap = 0;
    char item[40];
    bool is;

    if (!maybe_array(c, "items", &is) || !is)
        return ok(c);
    while (ok(c) && cm_jscan_item(&c->s)) {
        if (out->count + 1 >= cap) {
            size_t ncap = cap == 0 ? 64 : cap * 2;
            struct hc_k8s_obj **ni = realloc(out->items, ncap * sizeof(*ni));

            if (ni == NULL)
                return oom(c);
            out->items = ni;
            cap = ncap;
        }
        snprintf(item, sizeof(item), "items[%zu]: ", out->count);
        c->item = item;
        if (parse_obj(c, kind, &out->items[out->count], NULL))
            out->count++;
        c->item = "";
    }
    return ok(c);
}

int hc_k8s_list_parse(const char *body, size_t len, enum hc_k8s_kind kind, struct hc_k8s_list *out,
                      char *err, size_t errlen)
{
    struct pctx c;
    struct cm_jstr k;
    unsigned seen = 0;

    memset(out, 0, sizeof(*out));
    if (len > HC_K8S_LIST_MAX) {
        fail(err, errlen, "list body larger than %u bytes", HC_K8S_LIST_MAX);
        return CM_ETOOBIG;
    }
    pctx_init(&c, body, len, err, errlen);
    if (cm_jscan_peek(&c.s) != CM_JOBJECT && cm_jscan_peek(&c.s) != CM_JNONE)
        bad(&c, "not a JSON object");
    cm_jscan_enter(&c.s, CM_JOBJECT);
    while (ok(&c) && cm_jscan_key(&c.s, &k)) {
        if (key_is(&c, &k, "metadata", &seen, 1))
            parse_list_meta(&c, out);
        else if (key_is(&c, &k, "items", &seen, 2))
            parse_items(&c, kind, out);
        else
            cm_jscan_skip(&c.s);
    }
    if (ok(&c))
        cm_jscan_end(&c.s);
    if (pctx_done(&c) != CM_OK) {
        hc_k8s_list_fini(out);
        return c.rc;
    }
    if (out->continue_token != NULL && out->continue_token[0] == '\0') {
        free(out->continue_token);
        out->continue_token = NULL;
    }
    return CM_OK;
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
