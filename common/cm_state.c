/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_state.c -- the state document v1: parsing with validation, serializing,
 * lookups, checking against the configuration, and merging vantages.
 *
 * Parsing is a recursive descent over the jansson tree. Each level knows its
 * JSON path ("services.default/web.members.usa") and the first problem found
 * is reported as "<path>: <reason>". The parsed arrays are sorted by name so
 * lookups are binary searches; the jansson tree is kept for serializing, which
 * is how unknown fields survive a round trip.
 */
#include "common/cm_state.h"

#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_hash.h"
#include "common/cm_str.h"
#include "common/cm_time.h"

#define PATH_MAX_LEN  CM_STATE_ERR_MAX
#define QUOTE_MAX_LEN 64 /* bytes of an offending value quoted in an error */

struct pctx {
    char *err;
    size_t errlen;
};

static int fail(struct pctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct pctx *c, const char *path, const char *fmt, ...)
{
    char msg[CM_STATE_ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->err != NULL && c->errlen > 0)
        snprintf(c->err, c->errlen, "%s: %s", path, msg);
    return CM_ESTATE;
}

/* A printable, bounded copy of @s for an error message (no quotes or control
 * bytes from the peer end up in logs). */
static void quote(char *buf, size_t cap, const char *s)
{
    size_t i = 0, n = 0;

    for (; s[i] != '\0' && n + 4 < cap && i < QUOTE_MAX_LEN; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[n++] = (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\') ? '?' : (char)ch;
    }
    if (s[i] != '\0' && n + 4 <= cap) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
}

/* JSON paths, for messages: cm_errf() cuts one longer than the buffer short. */
static void path_join(char *buf, size_t cap, const char *parent, const char *key)
{
    if (parent[0] == '\0')
        cm_errf(buf, cap, "%s", key);
    else
        cm_errf(buf, cap, "%s.%s", parent, key);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);

    if (p != NULL)
        memcpy(p, s, n);
    return p;
}

/* ---- field readers: each reports "<parent>.<key>: <reason>" ---- */

/* A string field; absent or null gives *out = NULL unless @required. */
static int get_string(struct pctx *c, json_t *obj, const char *parent, const char *key,
                      bool required, bool nonempty, char **out)
{
    char path[PATH_MAX_LEN];
    json_t *v = json_object_get(obj, key);
    const char *s;

    *out = NULL;
    path_join(path, sizeof(path), parent, key);
    if (v == NULL || (json_is_null(v) && !required)) {
        if (required)
            return fail(c, path, "missing");
        return CM_OK;
    }
    if (!json_is_string(v))
        return fail(c, path, nonempty ? "must be a non-empty string" : "must be a string");
    s = json_string_value(v);
    if (strlen(s) != json_string_length(v))
        return fail(c, path, "contains a NUL byte");
    if (nonempty && s[0] == '\0')
        return fail(c, path, "must be a non-empty string");
    *out = dup_str(s);
    return *out == NULL ? CM_ENOMEM : CM_OK;
}

static int get_bool(struct pctx *c, json_t *obj, const char *parent, const char *key, bool required,
                    bool *out)
{
    char path[PATH_MAX_LEN];
    json_t *v = json_object_get(obj, key);

    path_join(path, sizeof(path), parent, key);
    if (v == NULL) {
        *out = false;
        return required ? fail(c, path, "missing") : CM_OK;
    }
    if (!json_is_boolean(v))
        return fail(c, path, "must be a boolean");
    *out = json_is_true(v);
    return CM_OK;
}

/* An integer in [0, max]; absent gives @def unless @required. */
static int get_uint(struct pctx *c, json_t *obj, const char *parent, const char *key, bool required,
                    uint64_t max, uint64_t def, uint64_t *out)
{
    char path[PATH_MAX_LEN];
    json_t *v = json_object_get(obj, key);
    json_int_t i;

    path_join(path, sizeof(path), parent, key);
    *out = def;
    if (v == NULL)
        return required ? fail(c, path, "missing") : CM_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return fail(c, path, "must be a non-negative integer");
    i = json_integer_value(v);
    if ((uint64_t)i > max)
        return fail(c, path, "too large (%lld, max %llu)", (long long)i, (unsigned long long)max);
    *out = (uint64_t)i;
    return CM_OK;
}

/* rtt_ms: a number >= 0, or null / absent (NAN). */
static int get_rtt(struct pctx *c, json_t *obj, const char *parent, double *out)
{
    char path[PATH_MAX_LEN];
    json_t *v = json_object_get(obj, "rtt_ms");

    *out = NAN;
    if (v == NULL || json_is_null(v))
        return CM_OK;
    path_join(path, sizeof(path), parent, "rtt_ms");
    if (!json_is_number(v) || !(json_number_value(v) >= 0) || isinf(json_number_value(v)))
        return fail(c, path, "must be a non-negative number or null");
    *out = json_number_value(v);
    return CM_OK;
}

/* An optional object; absent or null gives *out = NULL. */
static int get_object(struct pctx *c, json_t *obj, const char *parent, const char *key,
                      json_t **out)
{
    char path[PATH_MAX_LEN];
    json_t *v = json_object_get(obj, key);

    *out = NULL;
    if (v == NULL || json_is_null(v))
        return CM_OK;
    path_join(path, sizeof(path), parent, key);
    if (!json_is_object(v))
        return fail(c, path, "must be an object");
    *out = v;
    return CM_OK;
}

/* An optional array; absent or null gives *out = NULL. */
static int get_array(struct pctx *c, json_t *obj, const char *parent, const char *key, json_t **out)
{
    char path[PATH_MAX_LEN];
    json_t *v = json_object_get(obj, key);

    *out = NULL;
    if (v == NULL || json_is_null(v))
        return CM_OK;
    path_join(path, sizeof(path), parent, key);
    if (!json_is_array(v))
        return fail(c, path, "must be an array");
    *out = v;
    return CM_OK;
}

/* ---- names ---- */

static bool is_service_key(const char *key)
{
    const char *slash = strchr(key, '/');

    return slash != NULL && cm_str_is_dns_label(key, (size_t)(slash - key)) &&
           cm_str_is_dns_label(slash + 1, strlen(slash + 1));
}

/* ---- the document ---- */

static void endpoint_fini(struct cm_state_endpoint *ep)
{
    free(ep->member);
    free(ep->addresses);
    free(ep->hostname);
    for (size_t i = 0; i < ep->backend_count; i++)
        free(ep->backends[i]);
    free(ep->backends);
    free(ep->reason);
}

/*
 * The share counters of the services one parse gave (a document's or a
 * delta's): one block, so that sharing every service of a document touches
 * adjacent counters. alive counts the counters above 0 and the document that
 * parsed them; the block goes with the last.
 */
struct cm_state_refs {
    size_t alive;
    size_t used;
    size_t cap;
    unsigned count[];
};

static struct cm_state_refs *refs_new(size_t cap)
{
    struct cm_state_refs *r = calloc(1, sizeof(*r) + cap * sizeof(r->count[0]));

    if (r == NULL)
        return NULL;
    r->alive = 1;
    r->cap = cap;
    return r;
}

static void refs_release(struct cm_state_refs *r)
{
    if (r != NULL && --r->alive == 0)
        free(r);
}

/* A new counter of @r (which has room for it) for a first holder. */
static unsigned *refs_take(struct cm_state_refs *r)
{
    unsigned *n = &r->count[r->used++];

    *n = 1;
    r->alive++;
    return n;
}

/* Drops one holder of @svc: whether that was the last (its allocations are to be freed). */
static bool service_release(struct cm_state_service *svc)
{
    if (svc->shared == NULL)
        return true; /* failed before it was counted */
    if (--*svc->shared > 0)
        return false; /* another document holds it too */
    refs_release(svc->refs);
    return true;
}

static uint64_t next_serial(void)
{
    static atomic_uint_fast64_t serials;

    return (uint64_t)atomic_fetch_add_explicit(&serials, 1, memory_order_relaxed) + 1;
}

/* Whether @st was made from @base (cm_state_delta_apply): its services but
 * st->fresh are @base's, and st->removed are keys of @base. */
static bool made_from(const struct cm_state *st, const struct cm_state *base)
{
    return base != NULL && st->base_serial != 0 && st->base_serial == base->serial;
}

void cm_state_free(struct cm_state *st)
{
    if (st == NULL)
        return;
    free(st->vantage);
    free(st->generated_at);
    for (size_t i = 0; i < st->member_count; i++) {
        free(st->members[i].name);
        free(st->members[i].region);
        free(st->members[i].zone);
        free(st->members[i].api);
    }
    free(st->members);
    for (size_t i = 0; i < st->service_count; i++) {
        struct cm_state_service *svc = &st->services[i];

        if (!service_release(svc))
            continue;
        for (size_t j = 0; j < svc->member_count; j++)
            endpoint_fini(&svc->members[j]);
        free(svc->members);
        free(svc->key);
        for (size_t j = 0; j < svc->placement_count; j++)
            free(svc->placement[j]);
        free(svc->placement);
        json_decref(svc->json);
    }
    free(st->services);
    free(st->fresh);
    free(st->removed);
    refs_release(st->refs);
    json_decref(st->json);
    free(st);
}

static int parse_addresses(struct pctx *c, json_t *obj, const char *path,
                           struct cm_state_endpoint *ep)
{
    char p[PATH_MAX_LEN], q[QUOTE_MAX_LEN + 8];
    json_t *arr, *v;
    size_t i;
    int rc;

    rc = get_array(c, obj, path, "addresses", &arr);
    if (rc != CM_OK || arr == NULL || json_array_size(arr) == 0)
        return rc;
    ep->addresses = calloc(json_array_size(arr), sizeof(*ep->addresses));
    if (ep->addresses == NULL)
        return CM_ENOMEM;
    json_array_foreach(arr, i, v)
    {
        cm_errf(p, sizeof(p), "%s.addresses[%zu]", path, i);
        if (!json_is_string(v))
            return fail(c, p, "must be a string");
        if (cm_ip_parse(json_string_value(v), &ep->addresses[i]) != CM_OK) {
            quote(q, sizeof(q), json_string_value(v));
            return fail(c, p, "not an IP address \"%s\"", q);
        }
        ep->address_count++;
    }
    return CM_OK;
}

static int parse_backends(struct pctx *c, json_t *obj, const char *path,
                          struct cm_state_endpoint *ep)
{
    char p[PATH_MAX_LEN], q[QUOTE_MAX_LEN + 8];
    struct cm_addr a;
    json_t *arr, *v;
    size_t i;
    int rc;

    rc = get_array(c, obj, path, "backends", &arr);
    if (rc != CM_OK || arr == NULL || json_array_size(arr) == 0)
        return rc;
    ep->backends = calloc(json_array_size(arr), sizeof(*ep->backends));
    if (ep->backends == NULL)
        return CM_ENOMEM;
    json_array_foreach(arr, i, v)
    {
        cm_errf(p, sizeof(p), "%s.backends[%zu]", path, i);
        if (!json_is_string(v))
            return fail(c, p, "must be a string");
        if (cm_addr_parse(json_string_value(v), 0, &a) != CM_OK) {
            quote(q, sizeof(q), json_string_value(v));
            return fail(c, p, "not an \"ip:port\" address \"%s\"", q);
        }
        ep->backends[i] = dup_str(json_string_value(v));
        if (ep->backends[i] == NULL)
            return CM_ENOMEM;
        ep->backend_count++;
    }
    return CM_OK;
}

/* weight, priority: the member's Service annotations (0..CM_STATE_POLICY_MAX), null = none. */
static int get_policy_value(struct pctx *c, json_t *obj, const char *parent, const char *key,
                            bool *has, uint32_t *out)
{
    uint64_t v = 0;
    int rc;

    *has = false;
    if (json_object_get(obj, key) == NULL || json_is_null(json_object_get(obj, key)))
        return CM_OK;
    rc = get_uint(c, obj, parent, key, false, CM_STATE_POLICY_MAX, 0, &v);
    *has = rc == CM_OK;
    *out = (uint32_t)v;
    return rc;
}

static int parse_endpoint(struct pctx *c, json_t *obj, const char *path, const char *name,
                          struct cm_state_endpoint *ep)
{
    uint64_t ready;
    int rc;

    ep->rtt_ms = NAN;
    ep->member = dup_str(name);
    if (ep->member == NULL)
        return CM_ENOMEM;
    if (!json_is_object(obj))
        return fail(c, path, "must be an object");
    rc = parse_addresses(c, obj, path, ep);
    if (rc == CM_OK)
        rc = get_string(c, obj, path, "hostname", false, true, &ep->hostname);
    if (rc == CM_OK)
        rc = parse_backends(c, obj, path, ep);
    if (rc == CM_OK)
        rc = get_uint(c, obj, path, "ready_endpoints", false, UINT32_MAX, 0, &ready);
    if (rc == CM_OK) {
        ep->ready_endpoints = (uint32_t)ready;
        rc = get_bool(c, obj, path, "healthy", true, &ep->healthy);
    }
    if (rc == CM_OK)
        rc = get_bool(c, obj, path, "pending", false, &ep->pending);
    if (rc == CM_OK)
        rc = get_bool(c, obj, path, "via_proxy", false, &ep->via_proxy);
    if (rc == CM_OK)
        rc = get_rtt(c, obj, path, &ep->rtt_ms);
    if (rc == CM_OK)
        rc = get_string(c, obj, path, "reason", false, false, &ep->reason);
    if (rc == CM_OK)
        rc = get_policy_value(c, obj, path, "weight", &ep->has_weight, &ep->weight);
    if (rc == CM_OK)
        rc = get_policy_value(c, obj, path, "priority", &ep->has_priority, &ep->priority);
    return rc;
}

static int cmp_endpoint(const void *a, const void *b)
{
    return strcmp(((const struct cm_state_endpoint *)a)->member,
                  ((const struct cm_state_endpoint *)b)->member);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "placement": null (= every member) or an array of distinct member names. */
static int parse_placement(struct pctx *c, json_t *obj, const char *path,
                           struct cm_state_service *svc)
{
    char p[PATH_MAX_LEN], q[QUOTE_MAX_LEN + 8];
    json_t *arr, *v;
    size_t i;
    int rc;

    rc = get_array(c, obj, path, "placement", &arr);
    if (rc != CM_OK || arr == NULL)
        return rc;
    path_join(p, sizeof(p), path, "placement");
    if (json_array_size(arr) > CM_STATE_MAX_MEMBERS)
        return fail(c, p, "too many members (%zu, max %u)", json_array_size(arr),
                    CM_STATE_MAX_MEMBERS);
    svc->has_placement = true;
    svc->placement = calloc(json_array_size(arr) + 1, sizeof(*svc->placement));
    if (svc->placement == NULL)
        return CM_ENOMEM;
    json_array_foreach(arr, i, v)
    {
        cm_errf(p, sizeof(p), "%s.placement[%zu]", path, i);
        if (!json_is_string(v) || json_string_value(v)[0] == '\0' ||
            strlen(json_string_value(v)) != json_string_length(v))
            return fail(c, p, "must be a member name");
        svc->placement[svc->placement_count] = dup_str(json_string_value(v));
        if (svc->placement[svc->placement_count] == NULL)
            return CM_ENOMEM;
        svc->placement_count++;
    }
    qsort(svc->placement, svc->placement_count, sizeof(*svc->placement), cmp_str);
    for (i = 1; i < svc->placement_count; i++) {
        if (strcmp(svc->placement[i - 1], svc->placement[i]) == 0) {
            path_join(p, sizeof(p), path, "placement");
            quote(q, sizeof(q), svc->placement[i]);
            return fail(c, p, "member \"%s\" listed twice", q);
        }
    }
    return CM_OK;
}

/* The service's own answer rules: placement, ttl_s, allow_without_endpoints. */
static int parse_service_rules(struct pctx *c, json_t *obj, const char *path,
                               struct cm_state_service *svc)
{
    char p[PATH_MAX_LEN];
    json_t *v;
    int rc;

    rc = parse_placement(c, obj, path, svc);
    if (rc != CM_OK)
        return rc;
    v = json_object_get(obj, "ttl_s");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > CM_STATE_TTL_MAX) {
            path_join(p, sizeof(p), path, "ttl_s");
            return fail(c, p, "must be an integer 1..%u or null", CM_STATE_TTL_MAX);
        }
        svc->ttl_s = (uint32_t)json_integer_value(v);
    }
    return get_bool(c, obj, path, "allow_without_endpoints", false, &svc->allow_without_endpoints);
}

/* Service @key from @obj into @svc, counted in @refs (which has room). */
static int parse_service(struct pctx *c, const char *key, json_t *obj, const char *path,
                         struct cm_state_refs *refs, struct cm_state_service *svc)
{
    char p[PATH_MAX_LEN], mpath[PATH_MAX_LEN];
    const char *name;
    json_t *members, *v;
    int rc;

    svc->shared = refs_take(refs);
    svc->refs = refs;
    svc->json = json_incref(obj);
    svc->key = dup_str(key);
    if (svc->key == NULL)
        return CM_ENOMEM;
    if (!json_is_object(obj))
        return fail(c, path, "must be an object");
    v = json_object_get(obj, "port");
    if (v != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535) {
            path_join(p, sizeof(p), path, "port");
            return fail(c, p, "must be an integer 1..65535");
        }
        svc->port = (uint16_t)json_integer_value(v);
    }
    rc = parse_service_rules(c, obj, path, svc);
    if (rc == CM_OK)
        rc = get_object(c, obj, path, "members", &members);
    if (rc != CM_OK || members == NULL || json_object_size(members) == 0)
        return rc;
    path_join(mpath, sizeof(mpath), path, "members");
    if (json_object_size(members) > CM_STATE_MAX_MEMBERS)
        return fail(c, mpath, "too many members (%zu, max %u)", json_object_size(members),
                    CM_STATE_MAX_MEMBERS);
    svc->members = calloc(json_object_size(members), sizeof(*svc->members));
    if (svc->members == NULL)
        return CM_ENOMEM;
    json_object_foreach(members, name, v)
    {
        if (name[0] == '\0')
            return fail(c, mpath, "empty member name");
        path_join(p, sizeof(p), mpath, name);
        rc = parse_endpoint(c, v, p, name, &svc->members[svc->member_count++]);
        if (rc != CM_OK)
            return rc;
    }
    qsort(svc->members, svc->member_count, sizeof(*svc->members), cmp_endpoint);
    return CM_OK;
}

static int cmp_service(const void *a, const void *b)
{
    return strcmp(((const struct cm_state_service *)a)->key,
                  ((const struct cm_state_service *)b)->key);
}

static int cmp_member(const void *a, const void *b)
{
    return strcmp(((const struct cm_state_member *)a)->name,
                  ((const struct cm_state_member *)b)->name);
}

static int parse_members(struct pctx *c, json_t *doc, struct cm_state *st)
{
    char p[PATH_MAX_LEN];
    const char *name;
    json_t *members, *v;
    int rc;

    rc = get_object(c, doc, "", "members", &members);
    if (rc != CM_OK || members == NULL || json_object_size(members) == 0)
        return rc;
    if (json_object_size(members) > CM_STATE_MAX_MEMBERS)
        return fail(c, "members", "too many members (%zu, max %u)", json_object_size(members),
                    CM_STATE_MAX_MEMBERS);
    st->members = calloc(json_object_size(members), sizeof(*st->members));
    if (st->members == NULL)
        return CM_ENOMEM;
    json_object_foreach(members, name, v)
    {
        struct cm_state_member *m = &st->members[st->member_count++];

        m->rtt_ms = NAN;
        if (name[0] == '\0')
            return fail(c, "members", "empty member name");
        m->name = dup_str(name);
        if (m->name == NULL)
            return CM_ENOMEM;
        path_join(p, sizeof(p), "members", name);
        if (!json_is_object(v))
            return fail(c, p, "must be an object");
        rc = get_string(c, v, p, "region", false, false, &m->region);
        if (rc == CM_OK)
            rc = get_string(c, v, p, "zone", false, false, &m->zone);
        if (rc == CM_OK)
            rc = get_string(c, v, p, "api", false, false, &m->api);
        if (rc == CM_OK)
            rc = get_rtt(c, v, p, &m->rtt_ms);
        if (rc != CM_OK)
            return rc;
    }
    qsort(st->members, st->member_count, sizeof(*st->members), cmp_member);
    return CM_OK;
}

static int parse_services(struct pctx *c, json_t *doc, struct cm_state *st)
{
    char p[PATH_MAX_LEN], q[QUOTE_MAX_LEN + 8];
    const char *key;
    json_t *services, *v;
    int rc;

    rc = get_object(c, doc, "", "services", &services);
    if (rc != CM_OK || services == NULL || json_object_size(services) == 0)
        return rc;
    if (json_object_size(services) > CM_STATE_MAX_SERVICES)
        return fail(c, "services", "too many services (%zu, max %u)", json_object_size(services),
                    CM_STATE_MAX_SERVICES);
    st->services = calloc(json_object_size(services), sizeof(*st->services));
    st->refs = refs_new(json_object_size(services));
    if (st->services == NULL || st->refs == NULL)
        return CM_ENOMEM;
    json_object_foreach(services, key, v)
    {
        if (!is_service_key(key)) {
            quote(q, sizeof(q), key);
            return fail(c, "services", "key \"%s\" is not \"namespace/name\"", q);
        }
        path_join(p, sizeof(p), "services", key);
        rc = parse_service(c, key, v, p, st->refs, &st->services[st->service_count++]);
        if (rc != CM_OK)
            return rc;
    }
    qsort(st->services, st->service_count, sizeof(*st->services), cmp_service);
    return CM_OK;
}

/* ---- the address rule ---- */

void cm_state_opts_from_conf(struct cm_state_opts *opts, const struct cm_conf *conf)
{
    opts->allow = conf->allow_addresses;
    opts->allow_count = conf->allow_address_count;
}

static int refuse(struct pctx *c, const char *path, const char *what, enum cm_ip_kind kind)
{
    char q[QUOTE_MAX_LEN + 8], msg[CM_STATE_ERR_MAX];

    quote(q, sizeof(q), what);
    cm_ip_refusal_format(q, kind, msg, sizeof(msg));
    return fail(c, path, "%s", msg);
}

static int check_endpoint_addresses(struct pctx *c, const char *key,
                                    const struct cm_state_endpoint *ep,
                                    const struct cm_state_opts *o)
{
    char p[PATH_MAX_LEN], ip[CM_ADDR_STRLEN], m[QUOTE_MAX_LEN + 8];
    enum cm_ip_kind kind;
    struct cm_addr a;

    quote(m, sizeof(m), ep->member); /* a peer's name: no control bytes into logs */
    for (size_t i = 0; i < ep->address_count; i++) {
        const struct sockaddr *sa = (const struct sockaddr *)&ep->addresses[i].ss;

        kind = cm_ip_refused(sa, o->allow, o->allow_count);
        if (kind != CM_IP_ORDINARY) {
            cm_errf(p, sizeof(p), "services.%s.members.%s.addresses[%zu]", key, m, i);
            cm_ip_format(sa, ip, sizeof(ip));
            return refuse(c, p, ip, kind);
        }
    }
    for (size_t i = 0; i < ep->backend_count; i++) {
        if (cm_addr_parse(ep->backends[i], 0, &a) != CM_OK)
            continue; /* the parser already refused malformed ones */
        kind = cm_ip_refused((const struct sockaddr *)&a.ss, o->allow, o->allow_count);
        if (kind != CM_IP_ORDINARY) {
            cm_errf(p, sizeof(p), "services.%s.members.%s.backends[%zu]", key, m, i);
            return refuse(c, p, ep->backends[i], kind);
        }
    }
    return CM_OK;
}

/* Every address and backend of @st passes cm_ip_refused() under @o (but those of the
 * services it shares with @base, when not NULL). */
static int check_addresses(struct pctx *c, const struct cm_state *st, const struct cm_state *base,
                           const struct cm_state_opts *o)
{
    static const struct cm_state_opts none = {0};
    bool since = made_from(st, base);
    size_t n = since ? st->fresh_count : st->service_count;

    if (o == NULL)
        o = &none;
    for (size_t i = 0; i < n; i++) { /* made from @base: only what it parsed */
        const struct cm_state_service *svc = &st->services[since ? st->fresh[i] : i];

        if (base != NULL && svc->shared != NULL && *svc->shared > 1)
            continue;

        for (size_t j = 0; j < svc->member_count; j++) {
            int rc = check_endpoint_addresses(c, svc->key, &svc->members[j], o);

            if (rc != CM_OK)
                return rc;
        }
    }
    return CM_OK;
}

static int parse_header(struct pctx *c, json_t *doc, struct cm_state *st)
{
    char q[QUOTE_MAX_LEN + 8];
    json_t *v;
    int rc;

    v = json_object_get(doc, "version");
    if (v == NULL)
        return fail(c, "version", "missing");
    if (!json_is_integer(v))
        return fail(c, "version", "must be an integer");
    if (json_integer_value(v) != CM_STATE_VERSION)
        return fail(c, "version", "unsupported version %lld", (long long)json_integer_value(v));
    st->version = CM_STATE_VERSION;
    rc = get_string(c, doc, "", "vantage", true, true, &st->vantage);
    if (rc == CM_OK)
        rc = get_uint(c, doc, "", "generation", true, INT64_MAX, 0, &st->generation);
    if (rc == CM_OK)
        rc = get_string(c, doc, "", "generated_at", true, false, &st->generated_at);
    if (rc == CM_OK && !cm_time_parse_rfc3339(st->generated_at, &st->generated_at_unix)) {
        quote(q, sizeof(q), st->generated_at);
        rc = fail(c, "generated_at", "not an RFC 3339 UTC timestamp \"%s\"", q);
    }
    return rc;
}

/*
 * What a document keeps of @doc as its "json": all but the services (each
 * service keeps its own object), their presence marked by an empty object.
 */
static int doc_header_json(json_t *doc, json_t **out)
{
    json_t *h = json_copy(doc); /* shallow: the values are shared, not changed */

    *out = h;
    if (h == NULL)
        return CM_ENOMEM;
    if (json_object_get(h, "services") != NULL &&
        json_object_set_new(h, "services", json_object()) != 0)
        return CM_ENOMEM;
    return CM_OK;
}

int cm_state_from_json(json_t *doc, const struct cm_state_opts *opts, struct cm_state **out,
                       char *err, size_t errlen)
{
    struct pctx c = {.err = err, .errlen = errlen};
    struct cm_state *st = NULL;
    int rc;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (doc == NULL || !json_is_object(doc))
        return fail(&c, "document", "must be a JSON object");
    st = calloc(1, sizeof(*st));
    if (st == NULL)
        return CM_ENOMEM;
    st->serial = next_serial();
    rc = doc_header_json(doc, &st->json);
    if (rc == CM_OK)
        rc = parse_header(&c, doc, st);
    if (rc == CM_OK)
        rc = parse_members(&c, doc, st);
    if (rc == CM_OK)
        rc = parse_services(&c, doc, st);
    if (rc == CM_OK)
        rc = check_addresses(&c, st, NULL, opts);
    if (rc == CM_ENOMEM)
        fail(&c, "document", "out of memory");
    if (rc != CM_OK)
        goto out;
    *out = st;
    st = NULL;
out:
    cm_state_free(st);
    return rc;
}

int cm_state_load_json(const char *text, size_t len, json_t **out, char *err, size_t errlen)
{
    struct pctx c = {.err = err, .errlen = errlen};
    json_error_t jerr;

    *out = NULL;
    if (len > CM_STATE_MAX_BYTES) {
        fail(&c, "document", "too large (%zu bytes, max %u)", len, CM_STATE_MAX_BYTES);
        return CM_ETOOBIG;
    }
    *out = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (*out == NULL) {
        fail(&c, "document", "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
             jerr.text);
        return CM_EPARSE;
    }
    return CM_OK;
}

int cm_state_parse(const char *text, size_t len, const struct cm_state_opts *opts,
                   struct cm_state **out, char *err, size_t errlen)
{
    json_t *doc;
    int rc = cm_state_load_json(text, len, &doc, err, errlen);

    if (rc != CM_OK)
        return rc;
    rc = cm_state_from_json(doc, opts, out, err, errlen);
    json_decref(doc);
    return rc;
}

/* ---- deltas ---- */

bool cm_state_is_delta(json_t *doc)
{
    return json_is_object(doc) && json_object_get(doc, "base_generation") != NULL;
}

bool cm_state_delta_is_refresh(const struct cm_state *base, json_t *delta)
{
    static const char *const allowed[] = {"version", "vantage", "base_generation", "generation",
                                          "generated_at"};
    json_t *bg = json_object_get(delta, "base_generation"),
           *g = json_object_get(delta, "generation");
    json_t *v = json_object_get(delta, "vantage"), *ver = json_object_get(delta, "version");
    const char *key;
    json_t *val;

    if (!json_is_integer(bg) || !json_is_integer(g) || !json_is_string(v) ||
        !json_is_integer(ver) || json_integer_value(ver) != CM_STATE_VERSION ||
        json_integer_value(bg) < 0 || (uint64_t)json_integer_value(bg) != base->generation ||
        json_integer_value(g) != json_integer_value(bg) ||
        strcmp(json_string_value(v), base->vantage) != 0)
        return false;
    json_object_foreach(delta, key, val)
    {
        size_t i = 0;

        while (i < sizeof(allowed) / sizeof(allowed[0]) && strcmp(key, allowed[i]) != 0)
            i++;
        if (i == sizeof(allowed) / sizeof(allowed[0]))
            return false;
    }
    return true;
}

/* The delta's own members, checked against @base: everything but the services. */
static int delta_header(struct pctx *c, const struct cm_state *base, json_t *delta)
{
    char q[QUOTE_MAX_LEN + 8], qb[QUOTE_MAX_LEN + 8];
    uint64_t bg, gen;
    json_t *v;
    int rc;

    rc = get_uint(c, delta, "", "base_generation", true, INT64_MAX, 0, &bg);
    if (rc == CM_OK)
        rc = get_uint(c, delta, "", "generation", true, INT64_MAX, 0, &gen);
    if (rc != CM_OK)
        return rc;
    if (bg != base->generation) {
        quote(qb, sizeof(qb), base->vantage);
        fail(c, "base_generation",
             "%" PRIu64 " is not the held generation %" PRIu64 " of vantage %s; send the full "
             "document",
             bg, base->generation, qb);
        return CM_EEXIST;
    }
    if (gen <= bg)
        return fail(c, "generation", "%" PRIu64 " must be greater than base_generation %" PRIu64,
                    gen, bg);
    v = json_object_get(delta, "vantage");
    if (!json_is_string(v))
        return fail(c, "vantage", "missing, or not a string");
    if (strcmp(json_string_value(v), base->vantage) != 0) {
        quote(q, sizeof(q), json_string_value(v));
        quote(qb, sizeof(qb), base->vantage);
        return fail(c, "vantage", "\"%s\" is not the base document's vantage \"%s\"", q, qb);
    }
    if (json_object_get(delta, "generated_at") == NULL)
        return fail(c, "generated_at", "missing");
    v = json_object_get(delta, "services");
    if (v != NULL && !json_is_object(v))
        return fail(c, "services", "must be an object");
    v = json_object_get(delta, "removed");
    if (v != NULL && !json_is_array(v))
        return fail(c, "removed", "must be an array of service keys");
    return CM_OK;
}

static int cmp_key_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A "removed" entry and its place in the array. */
struct removed_ref {
    const char *key;
    size_t at;
};

static int cmp_removed_ref(const void *a, const void *b)
{
    const struct removed_ref *x = a, *y = b;
    int c = strcmp(x->key, y->key);

    return c != 0 ? c : x->at < y->at ? -1 : x->at > y->at;
}

static bool removed_is_key(json_t *v)
{
    return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

/*
 * The delta's "removed", checked against @base and the changed services in
 * order (the first bad entry is the one reported): each a service key the
 * base has, not also changed, listed once. *out: the base's keys (borrowed),
 * sorted.
 */
static int delta_removed(struct pctx *c, const struct cm_state *base, json_t *delta,
                         const char ***out, size_t *count)
{
    char p[PATH_MAX_LEN], q[QUOTE_MAX_LEN + 8];
    json_t *changed = json_object_get(delta, "services");
    json_t *removed = json_object_get(delta, "removed");
    size_t n = json_array_size(removed), nref = 0, i;
    struct removed_ref *refs = calloc(n + 1, sizeof(*refs));
    bool *twice = calloc(n + 1, sizeof(*twice));
    const char **keys = calloc(n + 1, sizeof(*keys));
    json_t *v;
    int rc = CM_ENOMEM;

    *out = NULL;
    *count = 0;
    if (refs == NULL || twice == NULL || keys == NULL)
        goto out;
    json_array_foreach(removed, i, v)
    {
        if (removed_is_key(v))
            refs[nref++] = (struct removed_ref){.key = json_string_value(v), .at = i};
    }
    qsort(refs, nref, sizeof(*refs), cmp_removed_ref);
    for (i = 1; i < nref; i++)
        twice[refs[i].at] = strcmp(refs[i - 1].key, refs[i].key) == 0;
    rc = CM_OK;
    json_array_foreach(removed, i, v)
    {
        const struct cm_state_service *svc;

        cm_errf(p, sizeof(p), "removed[%zu]", i);
        if (!removed_is_key(v)) {
            rc = fail(c, p, "must be a service key (a string)");
            break;
        }
        quote(q, sizeof(q), json_string_value(v));
        if (json_object_get(changed, json_string_value(v)) != NULL) {
            rc = fail(c, p, "\"%s\" is both removed and in services", q);
            break;
        }
        svc = cm_state_service_find(base, json_string_value(v));
        if (svc == NULL || twice[i]) {
            rc = fail(c, p, "\"%s\" is not a service of the base document (or listed twice)", q);
            break;
        }
        keys[(*count)++] = svc->key;
    }
    if (rc == CM_OK) {
        qsort(keys, *count, sizeof(*keys), cmp_key_str);
        *out = keys;
        keys = NULL;
    } else {
        *count = 0;
    }
out:
    free(keys);
    free(twice);
    free(refs);
    return rc;
}

/* Service @from (of a base document) shared by the document @to is built into: only
 * its counter changes. */
static int share_service(const struct cm_state_service *from, struct cm_state_service *to)
{
    if (from->shared == NULL) /* parse_service gives every service its counter */
        return CM_EINVAL;
    ++*from->shared;
    *to = *from;
    return CM_OK;
}

/*
 * The services of @st, @base's with @delta's changes: the changed ones parsed
 * and checked as a whole document's are (their indexes in st->fresh), the
 * others shared with @base (not parsed again), the removed ones
 * (st->removed, from delta_removed) left out.
 */
static int delta_build_services(struct pctx *c, const struct cm_state *base, json_t *delta,
                                const struct cm_state_opts *o, struct cm_state *st)
{
    static const struct cm_state_opts none = {0};
    json_t *changed = json_object_get(delta, "services");
    size_t nchg = json_object_size(changed), nrem = st->removed_count, k = 0, r = 0;
    const char **keys = calloc(nchg + 1, sizeof(*keys));
    const char **gone = st->removed;
    char p[PATH_MAX_LEN], q[QUOTE_MAX_LEN + 8];
    const char *key;
    json_t *v;
    size_t i;
    int rc = CM_ENOMEM;

    st->services = calloc(base->service_count + nchg + 1, sizeof(*st->services));
    st->fresh = calloc(nchg + 1, sizeof(*st->fresh));
    st->refs = refs_new(nchg);
    if (keys == NULL || st->services == NULL || st->fresh == NULL || st->refs == NULL)
        goto out;
    json_object_foreach(changed, key, v) keys[k++] = key;
    qsort(keys, nchg, sizeof(*keys), cmp_key_str);
    if (o == NULL)
        o = &none;
    k = 0;
    rc = CM_OK;
    for (i = 0; rc == CM_OK && (i < base->service_count || k < nchg);) {
        const struct cm_state_service *b = i < base->service_count ? &base->services[i] : NULL;
        int cmp = b == NULL ? 1 : k == nchg ? -1 : strcmp(b->key, keys[k]);
        struct cm_state_service *out = &st->services[st->service_count];

        if (cmp < 0 && r < nrem && b->key == gone[r]) {
            i++;
            r++;
            continue; /* removed (delta_removed checked the base has it) */
        }
        if (cmp < 0) {
            rc = share_service(b, out);
            st->service_count += rc == CM_OK;
            i++;
            continue;
        }
        i += cmp == 0;
        key = keys[k++];
        if (!is_service_key(key)) {
            quote(q, sizeof(q), key);
            rc = fail(c, "services", "key \"%s\" is not \"namespace/name\"", q);
            break;
        }
        path_join(p, sizeof(p), "services", key);
        st->fresh[st->fresh_count++] = st->service_count;
        st->service_count++; /* counted first: cm_state_free frees what a failure leaves */
        rc = parse_service(c, key, json_object_get(changed, key), p, st->refs, out);
        for (size_t j = 0; rc == CM_OK && j < out->member_count; j++)
            rc = check_endpoint_addresses(c, key, &out->members[j], o);
    }
    if (rc == CM_OK && st->service_count > CM_STATE_MAX_SERVICES)
        rc = fail(c, "services", "too many services (%zu, max %u)", st->service_count,
                  CM_STATE_MAX_SERVICES);
out:
    free(keys);
    return rc;
}

/* Whether the headers (all but the services) @a and @b are equal, but
 * generation and generated_at when @ignore_generation. */
static bool same_header(json_t *a, json_t *b, bool ignore_generation)
{
    json_t *ca, *cb;
    bool same = false;

    if (!ignore_generation)
        return json_equal(a, b);
    ca = json_copy(a);
    cb = json_copy(b);
    if (ca != NULL && cb != NULL) {
        json_object_del(ca, "generation");
        json_object_del(ca, "generated_at");
        json_object_del(cb, "generation");
        json_object_del(cb, "generated_at");
        same = json_equal(ca, cb);
    }
    json_decref(ca);
    json_decref(cb);
    return same;
}

/* Whether @st (made from @base) says what @base says (but its generation):
 * nothing removed, every service it parsed the base's as it was. */
static bool delta_same_as_base(const struct cm_state *st, const struct cm_state *base)
{
    if (st->removed_count > 0 || !same_header(st->json, base->json, true))
        return false;
    for (size_t i = 0; i < st->fresh_count; i++) {
        const struct cm_state_service *s = &st->services[st->fresh[i]];
        const struct cm_state_service *b = cm_state_service_find(base, s->key);

        if (b == NULL || !json_equal(s->json, b->json))
            return false;
    }
    return true;
}

/* The document from @base and @delta (its header @next) without parsing what the
 * delta leaves alone. */
static int delta_build(struct pctx *c, const struct cm_state *base, json_t *delta, json_t *next,
                       const struct cm_state_opts *opts, struct cm_state **out)
{
    struct cm_state *st = calloc(1, sizeof(*st));
    int rc;

    if (st == NULL)
        return CM_ENOMEM;
    st->serial = next_serial();
    st->base_serial = base->serial;
    st->json = json_incref(next);
    rc = delta_removed(c, base, delta, &st->removed, &st->removed_count);
    if (rc == CM_OK)
        rc = parse_header(c, next, st);
    if (rc == CM_OK)
        rc = parse_members(c, next, st);
    if (rc == CM_OK)
        rc = delta_build_services(c, base, delta, opts, st);
    if (rc != CM_OK) {
        cm_state_free(st);
        return rc;
    }
    st->same_as_base = delta_same_as_base(st, base);
    *out = st;
    return CM_OK;
}

int cm_state_delta_apply(const struct cm_state *base, json_t *delta,
                         const struct cm_state_opts *opts, struct cm_state **out, char *err,
                         size_t errlen)
{
    struct pctx c = {.err = err, .errlen = errlen};
    json_t *next = NULL, *v;
    const char *key;
    int rc;

    *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (!json_is_object(delta))
        return fail(&c, "document", "must be a JSON object");
    rc = delta_header(&c, base, delta);
    if (rc != CM_OK)
        return rc;
    next = json_copy(base->json); /* shallow, and without the services: a few members */
    if (next == NULL)
        return CM_ENOMEM;
    json_object_foreach(delta, key, v)
    {
        if (strcmp(key, "base_generation") == 0 || strcmp(key, "removed") == 0 ||
            strcmp(key, "services") == 0)
            continue;
        if (json_object_set(next, key, v) != 0) {
            rc = CM_ENOMEM;
            goto out;
        }
    }
    /* A delta that changes services leaves the document with "services". */
    if ((json_object_size(json_object_get(delta, "services")) > 0 ||
         json_array_size(json_object_get(delta, "removed")) > 0) &&
        json_object_get(next, "services") == NULL &&
        json_object_set_new(next, "services", json_object()) != 0) {
        rc = CM_ENOMEM;
        goto out;
    }
    rc = delta_build(&c, base, delta, next, opts, out);
out:
    if (rc == CM_ENOMEM)
        fail(&c, "document", "out of memory");
    json_decref(next);
    return rc;
}

/* Whether @a and @b carry the same port, placement, TTL and endpoint rule. */
static bool same_rules(const struct cm_state_service *a, const struct cm_state_service *b)
{
    if (a->port != b->port || a->ttl_s != b->ttl_s ||
        a->allow_without_endpoints != b->allow_without_endpoints ||
        a->has_placement != b->has_placement || a->placement_count != b->placement_count)
        return false;
    for (size_t i = 0; i < a->placement_count; i++)
        if (strcmp(a->placement[i], b->placement[i]) != 0)
            return false;
    return true;
}

static bool same_opt_str(const char *a, const char *b)
{
    return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/* Whether @a and @b say the same of what their vantages observed of the
 * member's Service (the fields the merge takes from one vantage). */
static bool same_observed(const struct cm_state_endpoint *a, const struct cm_state_endpoint *b)
{
    if (a->via_proxy != b->via_proxy || a->ready_endpoints != b->ready_endpoints ||
        a->has_weight != b->has_weight || a->weight != b->weight ||
        a->has_priority != b->has_priority || a->priority != b->priority ||
        a->address_count != b->address_count || a->backend_count != b->backend_count ||
        !same_opt_str(a->hostname, b->hostname))
        return false;
    for (size_t i = 0; i < a->address_count; i++)
        if (a->addresses[i].len != b->addresses[i].len ||
            memcmp(&a->addresses[i].ss, &b->addresses[i].ss, a->addresses[i].len) != 0)
            return false;
    for (size_t i = 0; i < a->backend_count; i++)
        if (strcmp(a->backends[i], b->backends[i]) != 0)
            return false;
    return true;
}

/* Stamps service @s of a document from @p, the previous document's entry for it (NULL: none). */
static void stamp_service(struct cm_state_service *s, const struct cm_state_service *p,
                          uint64_t stamp)
{
    s->changed = p != NULL && same_rules(p, s) ? p->changed : stamp;
    for (size_t j = 0; j < s->member_count; j++) {
        struct cm_state_endpoint *e = &s->members[j];
        const struct cm_state_endpoint *pe = cm_state_endpoint_find(p, e->member);

        e->changed = pe != NULL && same_observed(pe, e) ? pe->changed : stamp;
    }
}

void cm_state_stamp(struct cm_state *st, const struct cm_state *prev, uint64_t stamp)
{
    size_t at = 0, np = prev != NULL ? prev->service_count : 0;

    st->changed = stamp;
    if (made_from(st, prev)) { /* what it parsed */
        for (size_t i = 0; i < st->fresh_count; i++) {
            struct cm_state_service *s = &st->services[st->fresh[i]];

            stamp_service(s, cm_state_service_find(prev, s->key), stamp);
        }
        return;
    }
    for (size_t i = 0; i < st->service_count; i++) { /* both sorted by key: one walk */
        struct cm_state_service *s = &st->services[i];
        const struct cm_state_service *p = NULL;

        while (at < np && prev->services[at].key != s->key &&
               strcmp(prev->services[at].key, s->key) < 0)
            at++;
        if (at < np &&
            (prev->services[at].key == s->key || strcmp(prev->services[at].key, s->key) == 0))
            p = &prev->services[at];
        if (p != NULL && p->shared == s->shared)
            continue; /* shared with @prev: its stamps already */
        stamp_service(s, p, stamp);
    }
}

json_t *cm_state_json(const struct cm_state *st)
{
    json_t *doc = json_copy(st->json), *services = NULL; /* shallow */

    if (doc == NULL)
        return NULL;
    if (json_object_get(doc, "services") == NULL && st->service_count == 0)
        return doc; /* it had none */
    services = json_object();
    for (size_t i = 0; services != NULL && i < st->service_count; i++) {
        if (json_object_set(services, st->services[i].key, st->services[i].json) != 0) {
            json_decref(services);
            services = NULL;
        }
    }
    if (services == NULL || json_object_set_new(doc, "services", services) != 0) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

char *cm_state_dump(const struct cm_state *st)
{
    json_t *doc = cm_state_json(st);
    char *text = doc != NULL ? json_dumps(doc, JSON_SORT_KEYS | JSON_COMPACT) : NULL;

    json_decref(doc);
    return text;
}

bool cm_state_equal(const struct cm_state *a, const struct cm_state *b, bool ignore_generation)
{
    if (made_from(b, a)) /* what the delta changed; its generation is above @a's */
        return b->same_as_base && ignore_generation;
    if (made_from(a, b))
        return cm_state_equal(b, a, ignore_generation);
    if (a->service_count != b->service_count)
        return false;
    for (size_t i = 0; i < a->service_count; i++) {
        const struct cm_state_service *x = &a->services[i], *y = &b->services[i];

        if ((x->key != y->key && strcmp(x->key, y->key) != 0) ||
            (x->json != y->json && !json_equal(x->json, y->json)))
            return false;
    }
    return same_header(a->json, b->json, ignore_generation); /* "services" presence included */
}

const struct cm_state_service *cm_state_service_find(const struct cm_state *st, const char *key)
{
    struct cm_state_service k = {.key = (char *)(uintptr_t)key};

    if (st == NULL || st->service_count == 0)
        return NULL;
    return bsearch(&k, st->services, st->service_count, sizeof(k), cmp_service);
}

const struct cm_state_endpoint *cm_state_endpoint_find(const struct cm_state_service *svc,
                                                       const char *member)
{
    struct cm_state_endpoint k = {.member = (char *)(uintptr_t)member};

    if (svc == NULL || svc->member_count == 0)
        return NULL;
    return bsearch(&k, svc->members, svc->member_count, sizeof(k), cmp_endpoint);
}

int cm_state_check_writer(const struct cm_state *st, const char *vantage, char *err, size_t errlen)
{
    if (vantage == NULL || strcmp(vantage, st->vantage) == 0)
        return CM_OK;
    snprintf(err, errlen, "the token of vantage %s may not send vantage %s's document", vantage,
             st->vantage);
    return CM_EACCES;
}

static const struct cm_state_member *state_member(const struct cm_state *st, const char *name)
{
    struct cm_state_member k = {.name = (char *)(uintptr_t)name};

    if (st->member_count == 0)
        return NULL;
    return bsearch(&k, st->members, st->member_count, sizeof(k), cmp_member);
}

/* Region and zone indexes of @m in @conf; false when it is not placed there. */
static bool member_place(const struct cm_conf *conf, const struct cm_state_member *m, int *region,
                         int *zone)
{
    const struct cm_conf_region *r;

    *region = m->region != NULL ? cm_conf_region_index(conf, m->region) : -1;
    *zone = -1;
    if (*region < 0)
        return false;
    if (m->zone == NULL)
        return true;
    r = &conf->regions[*region];
    for (size_t i = 0; i < r->zone_count; i++) {
        if (strcmp(r->zones[i], m->zone) == 0) {
            *zone = (int)i;
            return true;
        }
    }
    return false;
}

/* A member of the document that is not configured: a registry member the
 * document places, or an error. */
static int check_registry_member(struct pctx *c, const struct cm_conf *conf,
                                 const struct cm_state_member *m)
{
    char mp[PATH_MAX_LEN], p[PATH_MAX_LEN], q[QUOTE_MAX_LEN + 8], z[QUOTE_MAX_LEN + 8];
    int region, zone;

    path_join(mp, sizeof(mp), "members", m->name);
    if (!conf->members_from.present)
        return fail(c, mp, "unknown member");
    if (!cm_str_is_dns_label(m->name, strlen(m->name)))
        return fail(c, mp, "not a configured member, and not a DNS label for a registry member");
    if (member_place(conf, m, &region, &zone))
        return CM_OK;
    if (region < 0) {
        path_join(p, sizeof(p), mp, "region");
        if (m->region == NULL)
            return fail(c, p, "missing (a registry member must be placed)");
        quote(q, sizeof(q), m->region);
        return fail(c, p, "unknown region \"%s\"", q);
    }
    quote(q, sizeof(q), m->zone);
    quote(z, sizeof(z), m->region);
    path_join(p, sizeof(p), mp, "zone");
    return fail(c, p, "zone \"%s\" is not a zone of region \"%s\"", q, z);
}

int cm_state_check_conf(const struct cm_state *st, const struct cm_conf *conf, char *err,
                        size_t errlen)
{
    return cm_state_check_conf_since(st, NULL, conf, err, errlen);
}

int cm_state_check_conf_since(const struct cm_state *st, const struct cm_state *base,
                              const struct cm_conf *conf, char *err, size_t errlen)
{
    struct pctx c = {.err = err, .errlen = errlen};
    char p[PATH_MAX_LEN], q[QUOTE_MAX_LEN + 8];
    struct cm_state_opts o;
    bool since;
    size_t n;
    int rc;

    /* A registry member's place comes from the members section: when that
     * changed, every service is checked again. */
    if (base != NULL && conf->members_from.present &&
        !json_equal(json_object_get(st->json, "members"), json_object_get(base->json, "members")))
        base = NULL;
    if (cm_conf_region_index(conf, st->vantage) < 0) {
        quote(q, sizeof(q), st->vantage);
        return fail(&c, "vantage", "unknown region \"%s\"", q);
    }
    for (size_t i = 0; i < st->member_count; i++) {
        if (cm_conf_member_index(conf, st->members[i].name) >= 0)
            continue;
        rc = check_registry_member(&c, conf, &st->members[i]);
        if (rc != CM_OK)
            return rc;
    }
    since = made_from(st, base);
    n = since ? st->fresh_count : st->service_count;
    for (size_t i = 0; i < n; i++) { /* made from @base: only what it parsed */
        const struct cm_state_service *svc = &st->services[since ? st->fresh[i] : i];

        if (base != NULL && svc->shared != NULL && *svc->shared > 1)
            continue; /* shared with @base, which passed */
        for (size_t j = 0; j < svc->member_count; j++) {
            const char *name = svc->members[j].member;

            if (cm_conf_member_index(conf, name) < 0 &&
                (!conf->members_from.present || state_member(st, name) == NULL)) {
                cm_errf(p, sizeof(p), "services.%s.members.%s", svc->key, name);
                return fail(&c, p, "%s",
                            conf->members_from.present
                                ? "unknown member (neither configured nor in members)"
                                : "unknown member");
            }
        }
    }
    cm_state_opts_from_conf(&o, conf);
    return check_addresses(&c, st, base, &o);
}

/* ---- merged view over several vantages ---- */

/* A document that counts in the merge, with its vantage's region index. */
struct used_doc {
    const struct cm_state *doc; /* borrowed */
    size_t region;
};

/* A service key to merge; from_doc keys are borrowed from a document,
 * the others from the configuration (copied before the merge returns). */
struct key_ref {
    const char *key;
    bool from_doc;
};

static bool doc_newer(const struct cm_state *a, const struct cm_state *b)
{
    if (a->generated_at_unix != b->generated_at_unix)
        return a->generated_at_unix > b->generated_at_unix;
    return a->generation > b->generation;
}

static int cmp_key_ref(const void *a, const void *b)
{
    const struct key_ref *x = a, *y = b;
    int d = strcmp(x->key, y->key);

    return d != 0 ? d : (int)y->from_doc - (int)x->from_doc; /* document keys first */
}

static size_t at_least_one(size_t n)
{
    return n == 0 ? 1 : n;
}

void cm_merged_free(struct cm_merged *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->service_count; i++) {
        struct cm_merged_service *ms = &m->services[i];

        if (ms->shared != NULL && --*ms->shared > 0)
            continue; /* a later merge holds it too (cm_merged_update) */
        if (ms->shared != NULL)
            refs_release(ms->refs);
        free(m->services[i].members);
        free(m->services[i].rtt_block);
        free(m->services[i].key_owned);
    }
    free(m->services);
    free(m->rtt_ms);
    free(m->docs);
    refs_release(m->refs);
    free(m);
}

/* The documents that count: a configured vantage, and the newest per vantage. */
static int select_docs(const struct cm_state *const *docs, size_t count, const struct cm_conf *conf,
                       struct used_doc **out, size_t *nused)
{
    struct used_doc *used = calloc(at_least_one(count), sizeof(*used));
    size_t n = 0;

    if (used == NULL)
        return CM_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        int r = docs[i] == NULL ? -1 : cm_conf_region_index(conf, docs[i]->vantage);
        size_t j = 0;

        if (r < 0)
            continue;
        while (j < n && used[j].region != (size_t)r)
            j++;
        if (j == n)
            used[n++] = (struct used_doc){.doc = docs[i], .region = (size_t)r};
        else if (doc_newer(docs[i], used[j].doc))
            used[j].doc = docs[i];
    }
    *out = used;
    *nused = n;
    return CM_OK;
}

/* Sorted, de-duplicated union of the documents' and the configured service keys. */
static int collect_keys(const struct used_doc *used, size_t nused, const struct cm_conf *conf,
                        struct key_ref **out, size_t *nkeys)
{
    size_t total = conf->service_count, n = 0, k = 0;
    struct key_ref *keys;

    for (size_t d = 0; d < nused; d++)
        total += used[d].doc->service_count;
    keys = calloc(at_least_one(total), sizeof(*keys));
    if (keys == NULL)
        return CM_ENOMEM;
    for (size_t d = 0; d < nused; d++)
        for (size_t i = 0; i < used[d].doc->service_count; i++)
            keys[n++] = (struct key_ref){.key = used[d].doc->services[i].key, .from_doc = true};
    for (size_t i = 0; i < conf->service_count; i++)
        keys[n++] = (struct key_ref){.key = conf->services[i].key, .from_doc = false};
    qsort(keys, n, sizeof(*keys), cmp_key_ref);
    for (size_t i = 0; i < n; i++)
        if (k == 0 || strcmp(keys[k - 1].key, keys[i].key) != 0)
            keys[k++] = keys[i];
    *out = keys;
    *nkeys = k;
    return CM_OK;
}

/* The merge rule for what one vantage supplies (cm_state.h). */
bool cm_state_src_better(uint64_t stamp, const struct cm_state *doc, uint64_t cur_stamp,
                         const struct cm_state *cur_doc)
{
    if (stamp != cur_stamp)
        return stamp > cur_stamp;
    if (doc_newer(doc, cur_doc) || doc_newer(cur_doc, doc))
        return doc_newer(doc, cur_doc);
    return strcmp(doc->vantage, cur_doc->vantage) < 0;
}

/*
 * Counts the votes for one service. found[d] receives the service as document
 * d reports it (or NULL); src_doc (member_count entries, zeroed) tracks which
 * document supplied each member's src.
 */
static void merge_votes(struct cm_merged_service *ms, const struct used_doc *used, size_t nused,
                        const struct cm_conf *conf, const struct cm_state_service **found,
                        const struct cm_state **src_doc)
{
    const struct cm_state *port_doc = NULL;
    uint64_t port_stamp = 0;

    for (size_t d = 0; d < nused; d++) {
        const struct cm_state *doc = used[d].doc;
        const struct cm_state_service *s = cm_state_service_find(doc, ms->key);

        found[d] = s;
        if (s == NULL)
            continue;
        if (ms->conf_index < 0 && s->port != 0 &&
            (port_doc == NULL || cm_state_src_better(s->changed, doc, port_stamp, port_doc))) {
            ms->port = s->port;
            port_doc = doc;
            port_stamp = s->changed;
        }
        for (size_t i = 0; i < s->member_count; i++) {
            const struct cm_state_endpoint *ep = &s->members[i];
            int idx = cm_conf_member_index(conf, ep->member);
            struct cm_merged_endpoint *me;

            if (idx < 0)
                continue;
            me = &ms->members[idx];
            me->present = true;
            if (ep->healthy)
                me->votes_up++;
            else
                me->votes_down++;
            me->pending = me->pending || ep->pending;
            if (me->src == NULL ||
                cm_state_src_better(ep->changed, doc, me->src->changed, src_doc[idx])) {
                me->src = ep;
                src_doc[idx] = doc;
            }
        }
    }
    for (size_t i = 0; i < conf->member_count; i++)
        ms->members[i].healthy =
            ms->members[i].present && !(ms->members[i].votes_down > ms->members[i].votes_up);
}

/* Per-service RTTs: one row of region_count values per present member. */
static int merge_rtts(struct cm_merged_service *ms, const struct used_doc *used, size_t nused,
                      const struct cm_conf *conf, const struct cm_state_service *const *found)
{
    size_t nregion = conf->region_count, present = 0, k = 0;

    for (size_t i = 0; i < conf->member_count; i++)
        present += ms->members[i].present;
    if (present == 0 || nregion == 0)
        return CM_OK;
    ms->rtt_block = malloc(present * nregion * sizeof(*ms->rtt_block));
    if (ms->rtt_block == NULL)
        return CM_ENOMEM;
    for (size_t i = 0; i < present * nregion; i++)
        ms->rtt_block[i] = NAN;
    for (size_t i = 0; i < conf->member_count; i++)
        if (ms->members[i].present)
            ms->members[i].rtt_by_region = ms->rtt_block + nregion * k++;
    for (size_t d = 0; d < nused; d++) {
        for (size_t i = 0; found[d] != NULL && i < found[d]->member_count; i++) {
            const struct cm_state_endpoint *ep = &found[d]->members[i];
            int idx = cm_conf_member_index(conf, ep->member);
            size_t row;

            if (idx < 0)
                continue;
            row = (size_t)(ms->members[idx].rtt_by_region - ms->rtt_block);
            ms->rtt_block[row + used[d].region] = ep->rtt_ms;
        }
    }
    return CM_OK;
}

/* Member-level RTT rows: each vantage's row for its own region. */
static int merge_matrix(struct cm_merged *m, const struct used_doc *used, size_t nused,
                        const struct cm_conf *conf)
{
    size_t cells = m->region_count * m->member_count;

    m->rtt_ms = malloc(at_least_one(cells) * sizeof(*m->rtt_ms));
    if (m->rtt_ms == NULL)
        return CM_ENOMEM;
    for (size_t i = 0; i < at_least_one(cells); i++)
        m->rtt_ms[i] = NAN;
    for (size_t d = 0; d < nused; d++) {
        for (size_t i = 0; i < used[d].doc->member_count; i++) {
            int idx = cm_conf_member_index(conf, used[d].doc->members[i].name);
            if (idx >= 0)
                m->rtt_ms[used[d].region * m->member_count + (size_t)idx] =
                    used[d].doc->members[i].rtt_ms;
        }
    }
    return CM_OK;
}

static bool placed(const struct cm_state_service *s, const char *member)
{
    const char *k = member;

    return !s->has_placement ||
           (s->placement_count > 0 &&
            bsearch(&k, s->placement, s->placement_count, sizeof(*s->placement), cmp_str) != NULL);
}

/* Placement, TTL and the endpoint rule: from the document whose entry for
 * the service changed them last (cm_state_src_better; found[d] from merge_votes). */
static void merge_rules(struct cm_merged_service *ms, const struct used_doc *used, size_t nused,
                        const struct cm_conf *conf, const struct cm_state_service *const *found)
{
    const struct cm_state_service *rules = NULL;
    const struct cm_state *rules_doc = NULL;

    for (size_t d = 0; d < nused; d++) {
        if (found[d] != NULL &&
            (rules_doc == NULL ||
             cm_state_src_better(found[d]->changed, used[d].doc, rules->changed, rules_doc))) {
            rules = found[d];
            rules_doc = used[d].doc;
        }
    }
    if (rules == NULL)
        return;
    ms->ttl_s = rules->ttl_s;
    ms->allow_without_endpoints = rules->allow_without_endpoints;
    for (size_t i = 0; i < conf->member_count; i++)
        ms->members[i].unplaced = !placed(rules, conf->members[i].name);
}

/* @h continued by the 64-bit word @v. */
static uint64_t dmix(uint64_t h, uint64_t v)
{
    return cm_fmix64(h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)));
}

static uint64_t dmix_bytes(uint64_t h, const void *p, size_t len)
{
    const uint8_t *b = p;
    uint64_t w;

    h = dmix(h, len);
    for (; len >= 8; b += 8, len -= 8) {
        memcpy(&w, b, 8);
        h = dmix(h, w);
    }
    w = 0;
    memcpy(&w, b, len);
    return dmix(h, w);
}

static uint64_t dmix_double(uint64_t h, double v)
{
    uint64_t w;

    if (isnan(v))
        return dmix(h, 0x7ff8000000000001ULL); /* one NAN whatever its bits */
    memcpy(&w, &v, sizeof(w));
    return dmix(h, w);
}

/* One member's entry as merged: what cm_merged_service.digest covers. */
static uint64_t endpoint_digest(uint64_t h, const struct cm_merged_endpoint *me, size_t nregion)
{
    const struct cm_state_endpoint *src = me->src;

    h = dmix(h, (uint64_t)me->present | (uint64_t)me->unplaced << 1 | (uint64_t)me->healthy << 2 |
                    (uint64_t)me->pending << 3 | (uint64_t)me->votes_up << 8 |
                    (uint64_t)me->votes_down << 36);
    if (src == NULL)
        return dmix(h, 0);
    h = dmix(h, (uint64_t)src->ready_endpoints | (uint64_t)src->healthy << 32 |
                    (uint64_t)src->pending << 33 | (uint64_t)src->via_proxy << 34 |
                    (uint64_t)src->has_weight << 35 | (uint64_t)src->has_priority << 36);
    h = dmix(h, (uint64_t)src->weight << 32 | src->priority);
    h = dmix(h, src->address_count);
    for (size_t k = 0; k < src->address_count; k++) {
        const struct sockaddr_storage *ss = &src->addresses[k].ss;
        if (ss->ss_family == AF_INET)
            h = dmix_bytes(h, &((const struct sockaddr_in *)ss)->sin_addr, 4);
        else if (ss->ss_family == AF_INET6)
            h = dmix_bytes(h, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
        else
            h = dmix(h, ss->ss_family);
    }
    h = src->hostname != NULL ? dmix_bytes(h, src->hostname, strlen(src->hostname)) : dmix(h, 1);
    for (size_t r = 0; me->rtt_by_region != NULL && r < nregion; r++)
        h = dmix_double(h, me->rtt_by_region[r]);
    return h;
}

static void service_digest(struct cm_merged_service *ms, const struct cm_conf *conf)
{
    uint64_t h = dmix_bytes(CM_FNV1A64_INIT, ms->key, strlen(ms->key));

    h = dmix(h, (uint64_t)(uint32_t)ms->conf_index | (uint64_t)ms->port << 32 |
                    (uint64_t)ms->allow_without_endpoints << 48);
    h = dmix(h, ms->ttl_s);
    for (size_t i = 0; i < conf->member_count; i++)
        h = endpoint_digest(h, &ms->members[i], conf->region_count);
    ms->digest = h;
}

/*
 * The configured services sorted by key, for merge_service's lookups
 * (cm_conf_service_index scans: 10,000 keys against 4,096 configured
 * services took most of a merge). NULL on ENOMEM.
 */
struct conf_key {
    const char *key; /* borrowed from the configuration */
    int index;
};

static int cmp_conf_key(const void *a, const void *b)
{
    return strcmp(((const struct conf_key *)a)->key, ((const struct conf_key *)b)->key);
}

static struct conf_key *conf_service_order(const struct cm_conf *conf)
{
    struct conf_key *order = malloc(at_least_one(conf->service_count) * sizeof(*order));

    if (order == NULL)
        return NULL;
    for (size_t i = 0; i < conf->service_count; i++)
        order[i] = (struct conf_key){.key = conf->services[i].key, .index = (int)i};
    qsort(order, conf->service_count, sizeof(*order), cmp_conf_key);
    return order;
}

/* cm_conf_service_index(@conf, @key): the first of equal keys, as its scan finds
 * (@order NULL: that scan, for a few keys). */
static int conf_service_find(const struct cm_conf *conf, const struct conf_key *order,
                             const char *key)
{
    size_t lo = 0, hi = conf->service_count;
    int found = -1;

    if (order == NULL)
        return cm_conf_service_index(conf, key);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(order[mid].key, key);

        if (c == 0 && (found < 0 || order[mid].index < found))
            found = order[mid].index;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return found;
}

/* Fills service @k of @m from key @kr. */
static int merge_service(struct cm_merged *m, const struct key_ref *kr, const struct used_doc *used,
                         size_t nused, const struct cm_conf *conf, const struct conf_key *order,
                         const struct cm_state_service **found, const struct cm_state **src_doc)
{
    struct cm_merged_service *ms = &m->services[m->service_count++];

    ms->shared = refs_take(m->refs); /* made with room for every entry merged */
    ms->refs = m->refs;
    if (kr->from_doc) {
        ms->key = kr->key;
    } else {
        ms->key_owned = dup_str(kr->key);
        if (ms->key_owned == NULL)
            return CM_ENOMEM;
        ms->key = ms->key_owned;
    }
    ms->conf_index = conf_service_find(conf, order, ms->key);
    if (ms->conf_index >= 0)
        ms->port = conf->services[ms->conf_index].port;
    ms->members = calloc(at_least_one(conf->member_count), sizeof(*ms->members));
    if (ms->members == NULL)
        return CM_ENOMEM;
    for (size_t i = 0; i < conf->member_count; i++) {
        ms->members[i].member = i;
        src_doc[i] = NULL;
    }
    int rc;

    merge_votes(ms, used, nused, conf, found, src_doc);
    merge_rules(ms, used, nused, conf, found);
    rc = merge_rtts(ms, used, nused, conf, found);
    if (rc == CM_OK)
        service_digest(ms, conf);
    return rc;
}

/* An empty merge of @docs (@count, borrowed) under @conf: its header and document list. */
static struct cm_merged *merged_new(const struct cm_state *const *docs, size_t count,
                                    const struct cm_conf *conf)
{
    struct cm_merged *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return NULL;
    m->conf = conf;
    m->region_count = conf->region_count;
    m->member_count = conf->member_count;
    m->docs = calloc(at_least_one(count), sizeof(*m->docs));
    if (m->docs == NULL) {
        cm_merged_free(m);
        return NULL;
    }
    if (count > 0)
        memcpy(m->docs, docs, count * sizeof(*m->docs));
    m->doc_count = count;
    return m;
}

int cm_merged_build(const struct cm_state *const *docs, size_t count, const struct cm_conf *conf,
                    struct cm_merged **out)
{
    struct cm_merged *m = NULL;
    struct used_doc *used = NULL;
    struct key_ref *keys = NULL;
    const struct cm_state_service **found = NULL;
    const struct cm_state **src_doc = NULL;
    struct conf_key *order = NULL;
    size_t nused = 0, nkeys = 0;
    int rc = CM_ENOMEM;

    m = merged_new(docs, count, conf);
    order = conf_service_order(conf);
    if (m == NULL || order == NULL)
        goto out;
    rc = select_docs(docs, count, conf, &used, &nused);
    if (rc == CM_OK)
        rc = merge_matrix(m, used, nused, conf);
    if (rc == CM_OK)
        rc = collect_keys(used, nused, conf, &keys, &nkeys);
    if (rc != CM_OK)
        goto out;
    rc = CM_ENOMEM;
    m->services = calloc(at_least_one(nkeys), sizeof(*m->services));
    m->refs = refs_new(nkeys);
    found = calloc(at_least_one(nused), sizeof(*found));
    src_doc = calloc(at_least_one(conf->member_count), sizeof(*src_doc));
    if (m->services == NULL || m->refs == NULL || found == NULL || src_doc == NULL)
        goto out;
    for (size_t k = 0; k < nkeys; k++) {
        rc = merge_service(m, &keys[k], used, nused, conf, order, found, src_doc);
        if (rc != CM_OK)
            goto out;
    }
    rc = CM_OK;
    *out = m;
    m = NULL;
out:
    free(order);
    free(src_doc);
    free(found);
    free(keys);
    free(used);
    cm_merged_free(m);
    return rc;
}

/* ---- incremental merge ---- */

/* Whether @a and @b (one vantage's documents) hold service @x and @y as the same allocation. */
static bool same_service(const struct cm_state_service *x, const struct cm_state_service *y)
{
    return x != NULL && y != NULL && x->shared != NULL && x->shared == y->shared;
}

/* Appends @key to @dirty. */
static int dirty_add(const char ***dirty, size_t *count, size_t *cap, const char *key)
{
    if (*count == *cap) {
        size_t ncap = *cap != 0 ? 2 * *cap : 16;
        const char **a = realloc(*dirty, ncap * sizeof(*a));

        if (a == NULL)
            return CM_ENOMEM;
        *dirty = a;
        *cap = ncap;
    }
    (*dirty)[(*count)++] = key;
    return CM_OK;
}

/* Adds to @dirty (sorted later) every key whose service differs between @p and @n. */
static int dirty_keys(const struct cm_state *p, const struct cm_state *n, const char ***dirty,
                      size_t *count, size_t *cap)
{
    size_t i = 0, j = 0;
    int rc = CM_OK;

    if (made_from(n, p)) { /* what the delta parsed or removed */
        for (i = 0; rc == CM_OK && i < n->fresh_count; i++)
            rc = dirty_add(dirty, count, cap, n->services[n->fresh[i]].key);
        for (i = 0; rc == CM_OK && i < n->removed_count; i++)
            rc = dirty_add(dirty, count, cap, n->removed[i]);
        return rc;
    }
    while (i < p->service_count || j < n->service_count) {
        const struct cm_state_service *x = i < p->service_count ? &p->services[i] : NULL;
        const struct cm_state_service *y = j < n->service_count ? &n->services[j] : NULL;
        int c = x == NULL ? 1 : y == NULL ? -1 : strcmp(x->key, y->key);
        const char *key;

        i += c <= 0;
        j += c >= 0;
        if (c == 0 && same_service(x, y))
            continue;
        key = c > 0 ? y->key : x->key;
        if (dirty_add(dirty, count, cap, key) != CM_OK)
            return CM_ENOMEM;
    }
    return CM_OK;
}

/*
 * Whether a merge of @used can reuse @prev's entries (@b): the same regions
 * counted, in the same places. An entry's sources are chosen by change stamp
 * (cm_state_src_better), which a service's entry carries with it: an entry whose
 * documents did not change is what a merge would make again. Unstamped
 * documents fall back to document order, so with one of them the
 * newest-first order must stay as well.
 */
static bool same_order(const struct used_doc *a, const struct used_doc *b, size_t n)
{
    bool stamped = true;

    for (size_t i = 0; i < n; i++) {
        if (a[i].region != b[i].region)
            return false;
        stamped = stamped && a[i].doc->changed != 0 && b[i].doc->changed != 0;
    }
    for (size_t i = 0; !stamped && i < n; i++)
        for (size_t j = 0; j < n; j++)
            if (i != j && doc_newer(a[i].doc, a[j].doc) != doc_newer(b[i].doc, b[j].doc))
                return false;
    return true;
}

#define UPDATE_SCAN_MAX 16 /* dirty keys looked up by a scan of the configured services */

/* The merge of the keys @dirty (sorted, unique) into @m, the others shared from @prev. */
static int update_services(struct cm_merged *m, const struct cm_merged *prev, const char **dirty,
                           size_t ndirty, const struct used_doc *used, size_t nused,
                           const struct cm_conf *conf)
{
    const struct cm_state_service **found = calloc(at_least_one(nused), sizeof(*found));
    const struct cm_state **src_doc = calloc(at_least_one(conf->member_count), sizeof(*src_doc));
    /* Sorting the configured keys pays for many lookups, not for a few scans. */
    struct conf_key *order = ndirty > UPDATE_SCAN_MAX ? conf_service_order(conf) : NULL;
    size_t i = 0, k = 0;
    int rc = CM_ENOMEM;

    m->services = calloc(prev->service_count + ndirty + 1, sizeof(*m->services));
    m->refs = refs_new(ndirty);
    if (found == NULL || src_doc == NULL || (order == NULL && ndirty > UPDATE_SCAN_MAX) ||
        m->services == NULL || m->refs == NULL)
        goto out;
    rc = CM_OK;
    while (rc == CM_OK && (i < prev->service_count || k < ndirty)) {
        const struct cm_merged_service *ps = i < prev->service_count ? &prev->services[i] : NULL;
        int c = ps == NULL ? 1 : k == ndirty ? -1 : strcmp(ps->key, dirty[k]);
        struct key_ref kr = {.key = NULL, .from_doc = true};

        if (c < 0) { /* untouched: the same entry */
            m->services[m->service_count] = *ps;
            ++*ps->shared;
            m->service_count++;
            i++;
            continue;
        }
        i += c == 0;
        for (size_t d = 0; d < nused && kr.key == NULL; d++) {
            const struct cm_state_service *sv = cm_state_service_find(used[d].doc, dirty[k]);

            if (sv != NULL)
                kr.key = sv->key;
        }
        if (kr.key == NULL && conf_service_find(conf, order, dirty[k]) >= 0)
            kr = (struct key_ref){.key = dirty[k], .from_doc = false};
        k++;
        if (kr.key != NULL) /* else gone from every document and not configured */
            rc = merge_service(m, &kr, used, nused, conf, order, found, src_doc);
    }
out:
    free(order);
    free(src_doc);
    free(found);
    return rc;
}

int cm_merged_update(const struct cm_merged *prev, const struct cm_state *const *docs, size_t count,
                     const struct cm_conf *conf, struct cm_merged **out)
{
    struct used_doc *used = NULL, *pused = NULL;
    size_t nused = 0, npused = 0, ndirty = 0, cap = 0, k = 0;
    const char **dirty = NULL;
    struct cm_merged *m = NULL;
    int rc;

    if (prev == NULL || prev->conf != conf)
        return cm_merged_build(docs, count, conf, out);
    rc = select_docs(docs, count, conf, &used, &nused);
    if (rc == CM_OK)
        rc = select_docs(prev->docs, prev->doc_count, conf, &pused, &npused);
    if (rc != CM_OK)
        goto out;
    if (nused != npused || !same_order(used, pused, nused)) {
        rc = cm_merged_build(docs, count, conf, out);
        goto out;
    }
    for (size_t d = 0; rc == CM_OK && d < nused; d++) {
        if (used[d].doc != pused[d].doc)
            rc = dirty_keys(pused[d].doc, used[d].doc, &dirty, &ndirty, &cap);
    }
    if (rc != CM_OK)
        goto out;
    if (ndirty > 1)
        qsort(dirty, ndirty, sizeof(*dirty), cmp_str);
    for (size_t i = 0; i < ndirty; i++) /* unique */
        if (k == 0 || strcmp(dirty[k - 1], dirty[i]) != 0)
            dirty[k++] = dirty[i];
    rc = CM_ENOMEM;
    m = merged_new(docs, count, conf);
    if (m == NULL)
        goto out;
    rc = merge_matrix(m, used, nused, conf);
    if (rc == CM_OK)
        rc = update_services(m, prev, dirty, k, used, nused, conf);
    if (rc != CM_OK)
        goto out;
    *out = m;
    m = NULL;
out:
    cm_merged_free(m);
    free(dirty);
    free(pused);
    free(used);
    return rc;
}

double cm_merged_rtt(const struct cm_merged *m, size_t region, const struct cm_merged_service *svc,
                     size_t member)
{
    if (m == NULL || region >= m->region_count || member >= m->member_count)
        return NAN;
    if (svc != NULL && svc->members[member].rtt_by_region != NULL) {
        double v = svc->members[member].rtt_by_region[region];
        if (!isnan(v))
            return v;
    }
    return m->rtt_ms[region * m->member_count + member];
}

/* ---- registry members: the configuration documents are merged under ---- */

struct placed_member {
    struct cm_conf_member m;    /* name borrowed from a document */
    const struct cm_state *doc; /* the document that placed it */
};

/* By name; of one name, the newest document's first. */
static int cmp_placed(const void *a, const void *b)
{
    const struct placed_member *x = a, *y = b;
    int c = strcmp(x->m.name, y->m.name);

    if (c != 0)
        return c;
    return doc_newer(x->doc, y->doc) ? -1 : doc_newer(y->doc, x->doc) ? 1 : 0;
}

/* @prev extends @loaded with exactly the members @pm. */
static bool same_extension(const struct cm_conf *prev, const struct cm_conf *loaded,
                           const struct placed_member *pm, size_t n)
{
    if (prev == NULL || prev->extends != loaded || prev->member_count != loaded->member_count + n)
        return false;
    for (size_t i = 0; i < n; i++) {
        const struct cm_conf_member *a = &prev->members[loaded->member_count + i];

        if (strcmp(a->name, pm[i].m.name) != 0 || a->region != pm[i].m.region ||
            a->zone != pm[i].m.zone)
            return false;
    }
    return true;
}

/* Appends the registry members @doc places to @pm (*n entries). */
static void collect_placed(const struct cm_conf *loaded, const struct cm_state *doc,
                           struct placed_member *pm, size_t *n)
{
    for (size_t i = 0; i < doc->member_count; i++) {
        const struct cm_state_member *sm = &doc->members[i];
        int region, zone;

        if (cm_conf_member_index(loaded, sm->name) >= 0 ||
            !cm_str_is_dns_label(sm->name, strlen(sm->name)) ||
            !member_place(loaded, sm, &region, &zone))
            continue;
        pm[(*n)++] = (struct placed_member){
            .m = {.name = (char *)(uintptr_t)sm->name, .region = (size_t)region, .zone = zone},
            .doc = doc};
    }
}

int cm_state_members_conf(struct cm_conf *conf, const struct cm_state *const *docs, size_t count,
                          struct cm_conf *prev, struct cm_conf **out)
{
    struct cm_conf *loaded = cm_conf_loaded(conf);
    struct cm_conf_member *extra = NULL;
    struct placed_member *pm = NULL;
    size_t total = 0, n = 0, kept = 0;
    int rc = CM_OK;

    if (!loaded->members_from.present) {
        *out = cm_conf_ref(loaded);
        return CM_OK;
    }
    for (size_t d = 0; d < count; d++)
        total += docs[d] != NULL ? docs[d]->member_count : 0;
    pm = calloc(at_least_one(total), sizeof(*pm));
    extra = calloc(at_least_one(total), sizeof(*extra));
    if (pm == NULL || extra == NULL) {
        rc = CM_ENOMEM;
        goto out;
    }
    for (size_t d = 0; d < count; d++) {
        if (docs[d] != NULL && cm_conf_region_index(loaded, docs[d]->vantage) >= 0)
            collect_placed(loaded, docs[d], pm, &n);
    }
    qsort(pm, n, sizeof(*pm), cmp_placed);
    /* One per name: the newest document's place (sorted first). */
    for (size_t i = 0; i < n; i++) {
        if (kept == 0 || strcmp(pm[kept - 1].m.name, pm[i].m.name) != 0)
            pm[kept++] = pm[i];
    }
    n = kept;
    if (same_extension(prev, loaded, pm, n)) {
        *out = cm_conf_ref(prev);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        extra[i] = pm[i].m;
    *out = cm_conf_with_members(loaded, extra, n);
    if (*out == NULL)
        rc = CM_ENOMEM;
out:
    free(extra);
    free(pm);
    return rc;
}
