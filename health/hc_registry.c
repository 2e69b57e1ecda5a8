/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_registry.c -- the host cluster's member registry (hc_registry.h): its
 * watches, the objects they keep, and the reconcile step that turns them
 * into members (joined, changed, left) and services.
 *
 * Watch callbacks only update the object caches and schedule a reconcile on
 * the loop (ev_reconcile): reconciling starts and stops Secret watches,
 * which must not happen inside a watch's own callback.
 */
#include "health/hc_registry.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_conf.h"
#include "common/cm_ctl.h"
#include "common/cm_err.h"
#include "common/cm_log.h"
#include "common/cm_str.h"
#include "health/hc_fedsvc.h"
#include "health/hc_k8s.h"
#include "health/hc_kubeconfig.h"
#include "health/hc_placement.h"

#define SERVER_MAX  2048
#define OBJECTS_MAX 10000u   /* objects of one kind kept; more are dropped with a warning */
#define HOST_LABEL  "(host)" /* the "member" of the host cluster's watches in logs: no DNS label */
#define TTL_MAX_S   86400u

/* The objects of one kind, in a small array (registries hold tens of them). */
struct objs {
    struct hc_k8s_obj **v; /* owned */
    size_t count;
};

/* One watched Secret (a member's secretRef). */
struct secret_ref {
    struct hc_registry *r;  /* back pointer for the watch callbacks */
    char *ns, *name;        /* owned */
    struct hc_watch *w;     /* owned */
    struct hc_k8s_obj *obj; /* owned: the Secret, NULL while absent */
    bool listed;            /* its first list arrived */
    bool used;              /* referenced by the last reconcile */
    long failed_status;     /* the HTTP status of the last failed list or watch (403...), or 0 */
};

/* A member as last handed to the holder: what a change is judged against. */
struct joined {
    char *name;
    size_t region;
    int zone;
    struct hc_kube_target *t; /* owned copy */
    const char *placed_by;    /* static */
    char note[HC_PLACEMENT_WHY_MAX];
    bool seen; /* placed (or kept) by the current reconcile */
};

/* A name and a reason: unplaced members, pending ones. */
struct reason {
    char *name;
    char *why;
};

struct reasons {
    struct reason *v;
    size_t count;
};

struct hc_registry {
    struct event_base *base;     /* borrowed */
    struct hc_http *http;        /* borrowed */
    struct cm_conf *conf;        /* reference */
    struct hc_kube_target *host; /* owned */
    struct hc_watch_params p;
    struct hc_registry_cbs cbs;
    enum hc_k8s_kind cluster_kind;
    struct hc_watch *w[HC_K8S_KIND_ALL]; /* owned: clusters, services, domains, records */
    struct objs objs[HC_K8S_KIND_ALL];
    bool listed[HC_K8S_KIND_ALL];
    struct secret_ref **secrets; /* owned */
    size_t secret_count;
    struct joined *joined; /* owned */
    size_t joined_count;
    struct reasons unplaced, pending;
    struct hc_fedsvcs *svcs;    /* owned; NULL: none */
    json_t *notes;              /* owned array of strings about services */
    struct event *ev_reconcile; /* owned */
    bool synced;
    uint64_t joins, leaves;
};

static const char *source_name(const struct hc_registry *r)
{
    return r->cluster_kind == HC_K8S_KARMADACLUSTER ? "karmada" : "kubefed";
}

/* ---- objects ---- */

static void objs_clear(struct objs *o)
{
    for (size_t i = 0; i < o->count; i++)
        hc_k8s_obj_free(o->v[i]);
    free(o->v);
    o->v = NULL;
    o->count = 0;
}

static long objs_find(const struct objs *o, const char *ns, const char *name)
{
    for (size_t i = 0; i < o->count; i++) {
        const struct hc_k8s_obj *x = o->v[i];

        if (strcmp(x->name, name) == 0 &&
            (x->ns == NULL || ns == NULL ? x->ns == ns : strcmp(x->ns, ns) == 0))
            return (long)i;
    }
    return -1;
}

/* Takes @obj in every case. */
static void objs_put(struct objs *o, struct hc_k8s_obj *obj)
{
    long at = objs_find(o, obj->ns, obj->name);
    struct hc_k8s_obj **grown;

    if (at >= 0) {
        hc_k8s_obj_free(o->v[at]);
        o->v[at] = obj;
        return;
    }
    grown = o->count < OBJECTS_MAX ? realloc(o->v, (o->count + 1) * sizeof(*o->v)) : NULL;
    if (grown == NULL) {
        cm_log_error("registry: %s %s dropped: %s", hc_k8s_kind_name(obj->kind), obj->name,
                     o->count < OBJECTS_MAX ? "out of memory" : "too many objects");
        hc_k8s_obj_free(obj);
        return;
    }
    o->v = grown;
    o->v[o->count++] = obj;
}

static void objs_del(struct objs *o, const struct hc_k8s_obj *obj)
{
    long at = objs_find(o, obj->ns, obj->name);

    if (at < 0)
        return;
    hc_k8s_obj_free(o->v[at]);
    o->v[at] = o->v[--o->count];
}

/* ---- watches ---- */

static void schedule(struct hc_registry *r)
{
    event_active(r->ev_reconcile, EV_TIMEOUT, 0);
}

static void on_sync(void *arg, enum hc_k8s_kind kind, struct hc_k8s_obj **objs, size_t count)
{
    struct hc_registry *r = arg;

    objs_clear(&r->objs[kind]);
    for (size_t i = 0; i < count; i++)
        objs_put(&r->objs[kind], objs[i]);
    r->listed[kind] = true;
    schedule(r);
}

static void on_event(void *arg, enum hc_k8s_kind kind, enum hc_k8s_event_type type,
                     struct hc_k8s_obj *obj)
{
    struct hc_registry *r = arg;

    cm_log_debug("registry: %s %s %s%s%s", hc_k8s_kind_name(kind),
                 type == HC_K8S_DELETED ? "DELETED"
                 : type == HC_K8S_ADDED ? "ADDED"
                                        : "MODIFIED",
                 obj->ns != NULL ? obj->ns : "", obj->ns != NULL ? "/" : "", obj->name);

    if (type == HC_K8S_DELETED) {
        objs_del(&r->objs[kind], obj);
        hc_k8s_obj_free(obj);
    } else {
        objs_put(&r->objs[kind], obj);
    }
    schedule(r);
}

static void on_secret_sync(void *arg, enum hc_k8s_kind kind, struct hc_k8s_obj **objs, size_t count)
{
    struct secret_ref *s = arg;

    (void)kind;
    hc_k8s_obj_free(s->obj);
    s->obj = NULL;
    for (size_t i = 0; i < count; i++) {
        if (s->obj == NULL && strcmp(objs[i]->name, s->name) == 0)
            s->obj = objs[i];
        else
            hc_k8s_obj_free(objs[i]); /* the field selector lets only one through */
    }
    s->listed = true;
    schedule(s->r);
}

static void on_secret_event(void *arg, enum hc_k8s_kind kind, enum hc_k8s_event_type type,
                            struct hc_k8s_obj *obj)
{
    struct secret_ref *s = arg;

    (void)kind;
    cm_log_debug("registry: secret %s/%s %s", s->ns, s->name,
                 type == HC_K8S_DELETED ? "DELETED" : "changed");
    if (strcmp(obj->name, s->name) != 0) {
        hc_k8s_obj_free(obj);
        return;
    }
    hc_k8s_obj_free(s->obj);
    s->obj = NULL;
    if (type == HC_K8S_DELETED)
        hc_k8s_obj_free(obj);
    else
        s->obj = obj;
    schedule(s->r);
}

/* A Secret that cannot be read says why in the member's pending reason. */
static void on_secret_status(void *arg, enum hc_k8s_kind kind, bool ok, long http_status)
{
    struct secret_ref *s = arg;

    (void)kind;
    s->failed_status = ok ? 0 : http_status;
    if (!s->listed)
        schedule(s->r);
}

static struct hc_watch *watch_new(struct hc_registry *r, enum hc_k8s_kind kind, const char *ns,
                                  const char *fs, const struct hc_watch_cbs *cbs)
{
    struct hc_watch *w = hc_watch_new(r->base, r->http, r->host, HOST_LABEL, kind, &r->p, cbs);

    if (w != NULL && (ns != NULL || fs != NULL) && hc_watch_scope(w, ns, fs) != CM_OK) {
        hc_watch_free(w);
        return NULL;
    }
    if (w != NULL && hc_watch_start(w) != CM_OK) {
        hc_watch_free(w);
        return NULL;
    }
    return w;
}

static void secret_free(struct secret_ref *s)
{
    if (s == NULL)
        return;
    hc_watch_free(s->w);
    hc_k8s_obj_free(s->obj);
    free(s->ns);
    free(s->name);
    free(s);
}

/* The Secret ns/name, watched from now on (NULL on ENOMEM). */
static struct secret_ref *secret_get(struct hc_registry *r, const char *ns, const char *name)
{
    struct hc_watch_cbs cbs = {
        .sync = on_secret_sync, .event = on_secret_event, .status = on_secret_status};
    struct secret_ref *s, **grown;
    char fs[HC_K8S_FED_STR_MAX + 32];

    for (size_t i = 0; i < r->secret_count; i++) {
        if (strcmp(r->secrets[i]->ns, ns) == 0 && strcmp(r->secrets[i]->name, name) == 0)
            return r->secrets[i];
    }
    s = calloc(1, sizeof(*s));
    grown = realloc(r->secrets, (r->secret_count + 1) * sizeof(*r->secrets));
    if (grown != NULL)
        r->secrets = grown;
    if (s == NULL || grown == NULL) {
        free(s);
        return NULL;
    }
    s->r = r;
    s->ns = strdup(ns);
    s->name = strdup(name);
    cbs.arg = s;
    snprintf(fs, sizeof(fs), "metadata.name=%s", name);
    s->w = s->ns != NULL && s->name != NULL ? watch_new(r, HC_K8S_SECRET, ns, fs, &cbs) : NULL;
    if (s->w == NULL) {
        secret_free(s);
        return NULL;
    }
    r->secrets[r->secret_count++] = s;
    return s;
}

/* Stops the Secret watches no member refers to any more. */
static void secrets_sweep(struct hc_registry *r)
{
    size_t k = 0;

    for (size_t i = 0; i < r->secret_count; i++) {
        if (r->secrets[i]->used)
            r->secrets[k++] = r->secrets[i];
        else
            secret_free(r->secrets[i]);
    }
    r->secret_count = k;
}

static int start_watches(struct hc_registry *r)
{
    const struct cm_conf_members_from *mf = &r->conf->members_from;
    struct hc_watch_cbs cbs = {.sync = on_sync, .event = on_event, .arg = r};
    const char *ns = r->cluster_kind == HC_K8S_KUBEFEDCLUSTER ? mf->namespace_ : NULL;

    r->w[r->cluster_kind] = watch_new(r, r->cluster_kind, ns, NULL, &cbs);
    if (r->w[r->cluster_kind] == NULL)
        return CM_ENOMEM;
    if (!mf->services)
        return CM_OK;
    /* Federated services and DNS records live in the services' namespaces;
     * the Domains in KubeFed's. */
    r->w[HC_K8S_FEDSERVICE] = watch_new(r, HC_K8S_FEDSERVICE, NULL, NULL, &cbs);
    r->w[HC_K8S_SVCDNS] = watch_new(r, HC_K8S_SVCDNS, NULL, NULL, &cbs);
    r->w[HC_K8S_DOMAIN] = watch_new(r, HC_K8S_DOMAIN, mf->namespace_, NULL, &cbs);
    if (r->w[HC_K8S_FEDSERVICE] == NULL || r->w[HC_K8S_SVCDNS] == NULL ||
        r->w[HC_K8S_DOMAIN] == NULL)
        return CM_ENOMEM;
    return CM_OK;
}

static void stop_watches(struct hc_registry *r)
{
    for (int k = 0; k < HC_K8S_KIND_ALL; k++) {
        hc_watch_free(r->w[k]);
        r->w[k] = NULL;
        objs_clear(&r->objs[k]);
        r->listed[k] = false;
    }
    for (size_t i = 0; i < r->secret_count; i++)
        secret_free(r->secrets[i]);
    free(r->secrets);
    r->secrets = NULL;
    r->secret_count = 0;
}

/* ---- reconcile: members ---- */

static void reasons_clear(struct reasons *rs)
{
    for (size_t i = 0; i < rs->count; i++) {
        free(rs->v[i].name);
        free(rs->v[i].why);
    }
    free(rs->v);
    rs->v = NULL;
    rs->count = 0;
}

static void reasons_add(struct reasons *rs, const char *name, const char *why)
{
    struct reason *grown = realloc(rs->v, (rs->count + 1) * sizeof(*rs->v));

    if (grown == NULL)
        return; /* the status misses one line; the log has it */
    rs->v = grown;
    rs->v[rs->count].name = strdup(name);
    rs->v[rs->count].why = strdup(why);
    if (rs->v[rs->count].name == NULL || rs->v[rs->count].why == NULL) {
        free(rs->v[rs->count].name);
        free(rs->v[rs->count].why);
        return;
    }
    rs->count++;
}

static const char *reasons_find(const struct reasons *rs, const char *name)
{
    for (size_t i = 0; i < rs->count; i++) {
        if (strcmp(rs->v[i].name, name) == 0)
            return rs->v[i].why;
    }
    return NULL;
}

static long joined_find(const struct hc_registry *r, const char *name)
{
    for (size_t i = 0; i < r->joined_count; i++) {
        if (strcmp(r->joined[i].name, name) == 0)
            return (long)i;
    }
    return -1;
}

/* Keeps a joined member as it is (its Secret is not listed yet, or memory ran out). */
static void keep(struct hc_registry *r, const char *name)
{
    long at = joined_find(r, name);

    if (at >= 0)
        r->joined[at].seen = true;
}

static void leave(struct hc_registry *r, size_t i)
{
    struct joined *j = &r->joined[i];

    r->leaves++;
    if (r->cbs.leave != NULL)
        r->cbs.leave(r->cbs.arg, j->name);
    free(j->name);
    hc_kube_target_free(j->t);
    r->joined[i] = r->joined[--r->joined_count];
}

/* @m placed, reached through @t (taken): joined, changed, or as it was. */
static void placed(struct hc_registry *r, const struct cm_conf_member *m, struct hc_kube_target *t,
                   const char *placed_by, const char *note)
{
    long at = joined_find(r, m->name);
    struct joined *j = at >= 0 ? &r->joined[at] : NULL, *grown;
    struct hc_kube_target *copy;

    if (j != NULL && j->region == m->region && j->zone == m->zone && hc_kube_target_same(j->t, t)) {
        j->seen = true;
        j->placed_by = placed_by;
        cm_strlcpy(j->note, note, sizeof(j->note));
        hc_kube_target_free(t);
        return;
    }
    copy = hc_kube_target_copy(t);
    grown = j == NULL && copy != NULL
                ? realloc(r->joined, (r->joined_count + 1) * sizeof(*r->joined))
                : r->joined;
    if (copy == NULL || grown == NULL) {
        cm_log_error("registry: member %s: out of memory; kept as it was", m->name);
        hc_kube_target_free(copy);
        hc_kube_target_free(t);
        keep(r, m->name);
        return;
    }
    r->joined = grown;
    if (j == NULL) {
        j = &r->joined[r->joined_count];
        *j = (struct joined){.name = strdup(m->name)};
        if (j->name == NULL) {
            hc_kube_target_free(copy);
            hc_kube_target_free(t);
            return;
        }
        r->joined_count++;
    }
    hc_kube_target_free(j->t);
    j->t = copy;
    j->region = m->region;
    j->zone = m->zone;
    j->placed_by = placed_by;
    cm_strlcpy(j->note, note, sizeof(j->note));
    j->seen = true;
    r->joins++;
    if (r->cbs.join != NULL)
        r->cbs.join(r->cbs.arg, m, t);
    else
        hc_kube_target_free(t);
}

/* One registry object: a member, pending (its Secret not listed yet), or unplaced. */
static void reconcile_one(struct hc_registry *r, const struct hc_k8s_obj *o,
                          struct reasons *unplaced, struct reasons *pending)
{
    const struct hc_k8s_fedcluster *c = &o->u.cluster;
    const char *sns = c->secret_ns != NULL ? c->secret_ns : r->conf->members_from.namespace_;
    char why[HC_PLACEMENT_WHY_MAX], wait[HC_PLACEMENT_WHY_MAX];
    struct secret_ref *s = NULL;
    struct hc_kube_target *t = NULL;
    struct cm_conf_member m;
    const char *by = NULL;
    int rc;

    if (c->problem == NULL && c->secret_name != NULL && sns != NULL &&
        cm_str_is_dns_label(o->name, strlen(o->name)) &&
        cm_conf_member_index(r->conf, o->name) < 0) {
        s = secret_get(r, sns, c->secret_name);
        if (s != NULL)
            s->used = true;
        if (s == NULL || !s->listed) {
            if (s != NULL && s->failed_status != 0)
                cm_errf(wait, sizeof(wait), "waiting for Secret %s/%s: its list failed: HTTP %ld%s",
                        sns, c->secret_name, s->failed_status,
                        s->failed_status == 403
                            ? " (not granted: conf/rbac/fedgslb-health-host.yaml)"
                            : "");
            else
                cm_errf(wait, sizeof(wait), "%s Secret %s/%s",
                        s == NULL ? "out of memory watching" : "waiting for", sns, c->secret_name);
            reasons_add(pending, o->name, wait);
            keep(r, o->name);
            return;
        }
    }
    rc = hc_placement_member(r->conf, o, s != NULL ? s->obj : NULL, &m, &t, &by, why, sizeof(why));
    if (rc == CM_ENOMEM) {
        reasons_add(pending, o->name, "out of memory");
        keep(r, o->name);
    } else if (rc != CM_OK) {
        reasons_add(unplaced, o->name, why);
    } else {
        placed(r, &m, t, by, why);
    }
}

/* "KubeFedCluster kube-federation-system/usa" or "Cluster usa": the object, for messages. */
static void object_label(const struct hc_registry *r, const char *name, char *buf, size_t cap)
{
    if (r->cluster_kind == HC_K8S_KARMADACLUSTER)
        snprintf(buf, cap, "Cluster %s", name);
    else
        snprintf(buf, cap, "KubeFedCluster %s/%s", r->conf->members_from.namespace_, name);
}

/* Logs each unplaced member whose reason is new; the both-places case is an error. */
static void log_unplaced(const struct hc_registry *r, const struct reasons *now)
{
    char obj[HC_K8S_FED_STR_MAX + 64];

    for (size_t i = 0; i < now->count; i++) {
        const char *name = now->v[i].name, *before = reasons_find(&r->unplaced, name);

        if (before != NULL && strcmp(before, now->v[i].why) == 0)
            continue;
        object_label(r, name, obj, sizeof(obj));
        if (cm_conf_member_index(r->conf, name) >= 0)
            cm_log_error("registry: %s and members.%s in %s name the same member; the registry's "
                         "is not used (a member comes from members or from the registry, not "
                         "both)",
                         obj, name, r->conf->path);
        else
            cm_log_warn("registry: %s not used as a member: %s", obj, now->v[i].why);
    }
}

static void reconcile_members(struct hc_registry *r)
{
    const struct objs *clusters = &r->objs[r->cluster_kind];
    struct reasons unplaced = {0}, pending = {0};

    for (size_t i = 0; i < r->joined_count; i++)
        r->joined[i].seen = false;
    for (size_t i = 0; i < r->secret_count; i++)
        r->secrets[i]->used = false;
    for (size_t i = 0; i < clusters->count; i++)
        reconcile_one(r, clusters->v[i], &unplaced, &pending);
    for (size_t i = r->joined_count; i-- > 0;) {
        if (!r->joined[i].seen)
            leave(r, i);
    }
    secrets_sweep(r);
    log_unplaced(r, &unplaced);
    reasons_clear(&r->unplaced);
    reasons_clear(&r->pending);
    r->unplaced = unplaced;
    r->pending = pending;
}

/* ---- reconcile: services ---- */

static void reconcile_services(struct hc_registry *r)
{
    const struct objs *cl = &r->objs[r->cluster_kind];
    struct hc_placement_objs in = {
        .conf = r->conf,
        .clusters = (const struct hc_k8s_obj *const *)cl->v,
        .cluster_count = cl->count,
        .fedsvcs = (const struct hc_k8s_obj *const *)r->objs[HC_K8S_FEDSERVICE].v,
        .fedsvc_count = r->objs[HC_K8S_FEDSERVICE].count,
        .records = (const struct hc_k8s_obj *const *)r->objs[HC_K8S_SVCDNS].v,
        .record_count = r->objs[HC_K8S_SVCDNS].count,
        .domains = (const struct hc_k8s_obj *const *)r->objs[HC_K8S_DOMAIN].v,
        .domain_count = r->objs[HC_K8S_DOMAIN].count};
    json_t *notes;
    struct hc_fedsvcs *set;

    if (!r->conf->members_from.services)
        return;
    notes = json_array();
    set = notes != NULL ? hc_placement_services(&in, notes) : NULL;
    if (set == NULL) {
        cm_log_error("registry: services not updated: out of memory");
        json_decref(notes);
        return;
    }
    for (size_t i = 0; i < json_array_size(notes); i++) {
        if (!json_equal(json_array_get(notes, i), json_array_get(r->notes, i)))
            cm_log_warn("registry: %s", json_string_value(json_array_get(notes, i)));
    }
    json_decref(r->notes);
    r->notes = notes;
    if (hc_fedsvcs_equal(set, r->svcs)) {
        hc_fedsvcs_free(set);
        return;
    }
    hc_fedsvcs_free(r->svcs);
    r->svcs = set;
    cm_log_info("registry: %zu service(s) from the host cluster", set->count);
    if (r->cbs.services != NULL)
        r->cbs.services(r->cbs.arg);
}

/* ---- the reconcile step ---- */

static bool all_listed(const struct hc_registry *r)
{
    if (!r->listed[r->cluster_kind])
        return false;
    if (r->conf->members_from.services &&
        (!r->listed[HC_K8S_FEDSERVICE] || !r->listed[HC_K8S_SVCDNS] || !r->listed[HC_K8S_DOMAIN]))
        return false;
    for (size_t i = 0; i < r->secret_count; i++) {
        if (!r->secrets[i]->listed)
            return false;
    }
    return true;
}

static void reconcile(struct hc_registry *r)
{
    /* Before the first list nothing is known: the members joined stay. */
    if (!r->listed[r->cluster_kind])
        return;
    reconcile_members(r);
    reconcile_services(r);
    if (!r->synced && all_listed(r)) {
        r->synced = true;
        cm_log_info("registry: %s listed: %zu member(s), %zu not used, %zu pending", source_name(r),
                    r->joined_count, r->unplaced.count, r->pending.count);
        if (r->cbs.synced != NULL)
            r->cbs.synced(r->cbs.arg);
    }
}

static void on_reconcile(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    reconcile(arg);
}

void hc_registry_unjoin_all(struct hc_registry *r)
{
    while (r->joined_count > 0)
        leave(r, r->joined_count - 1);
}

bool hc_registry_synced(const struct hc_registry *r)
{
    return r->synced;
}

const struct hc_fedsvcs *hc_registry_services(const struct hc_registry *r)
{
    return r->svcs;
}

/* ---- status and metrics ---- */

static json_t *members_json(const struct hc_registry *r)
{
    json_t *out = json_object();

    for (size_t i = 0; out != NULL && i < r->joined_count; i++) {
        const struct joined *j = &r->joined[i];
        const struct cm_conf_region *rg;
        json_t *e;

        if (j->region >= r->conf->region_count)
            continue; /* placed again after a reload */
        rg = &r->conf->regions[j->region];
        e = json_pack("{s:s,s:s?,s:s,s:s}", "region", rg->name, "zone",
                      j->zone >= 0 ? rg->zones[j->zone] : NULL, "server", j->t->server, "placed_by",
                      j->placed_by);

        if (e != NULL && j->note[0] != '\0')
            json_object_set_new(e, "note", json_string(j->note));
        json_object_set_new(out, j->name, e);
    }
    return out;
}

static json_t *reasons_json(const struct reasons *rs)
{
    json_t *out = json_object();

    for (size_t i = 0; out != NULL && i < rs->count; i++)
        json_object_set_new(out, rs->v[i].name, json_string(rs->v[i].why));
    return out;
}

static json_t *services_json(const struct hc_registry *r)
{
    json_t *out = json_object();

    for (size_t i = 0; out != NULL && r->svcs != NULL && i < r->svcs->count; i++) {
        const struct hc_fedsvc *f = &r->svcs->v[i];
        json_t *e = json_object(), *pl = f->has_placement ? json_array() : json_null();

        for (size_t k = 0; pl != NULL && k < f->placement_count; k++)
            json_array_append_new(pl, json_string(f->placement[k]));
        json_object_set_new(e, "placement", pl);
        json_object_set_new(e, "ttl_s", f->ttl_s > 0 ? json_integer(f->ttl_s) : json_null());
        json_object_set_new(e, "allow_without_endpoints", json_boolean(f->allow_no_endpoints));
        json_object_set_new(out, f->key, e);
    }
    return out;
}

json_t *hc_registry_status(const struct hc_registry *r)
{
    return json_pack(
        "{s:s,s:s,s:s?,s:b,s:o*,s:o*,s:o*,s:o*,s:O?}", "source", source_name(r), "host",
        r->host->server, "namespace",
        r->cluster_kind == HC_K8S_KUBEFEDCLUSTER ? r->conf->members_from.namespace_ : NULL,
        "synced", r->synced, "members", members_json(r), "unplaced", reasons_json(&r->unplaced),
        "pending", reasons_json(&r->pending), "services", services_json(r), "notes", r->notes);
}

void hc_registry_metrics(const struct hc_registry *r, struct cm_buf *out)
{
    static const char *const kinds[] = {"members", "secrets", "services"};
    char lbl[96];

    cm_metrics_family(out, "fedgslb_health_registry_members", "gauge",
                      "Registry members by state: placed (watched), unplaced (reported with a "
                      "reason), pending (their Secret not listed yet)");
    cm_metrics_sample(out, "fedgslb_health_registry_members", "state=\"placed\"",
                      (double)r->joined_count);
    cm_metrics_sample(out, "fedgslb_health_registry_members", "state=\"unplaced\"",
                      (double)r->unplaced.count);
    cm_metrics_sample(out, "fedgslb_health_registry_members", "state=\"pending\"",
                      (double)r->pending.count);
    cm_metrics_family(out, "fedgslb_health_registry_synced", "gauge",
                      "1 once the registry's first lists arrived");
    cm_metrics_sample(out, "fedgslb_health_registry_synced", NULL, r->synced);
    cm_metrics_family(out, "fedgslb_health_registry_changes_total", "counter",
                      "Members joined (or changed: new endpoint, CA or token) and left");
    cm_metrics_sample(out, "fedgslb_health_registry_changes_total", "change=\"join\"",
                      (double)r->joins);
    cm_metrics_sample(out, "fedgslb_health_registry_changes_total", "change=\"leave\"",
                      (double)r->leaves);
    cm_metrics_family(out, "fedgslb_health_registry_objects", "gauge",
                      "Host cluster objects held: member objects, watched Secrets, services");
    for (size_t k = 0; k < 3; k++) {
        size_t n = k == 0   ? r->objs[r->cluster_kind].count
                   : k == 1 ? r->secret_count
                            : (r->svcs != NULL ? r->svcs->count : 0);

        snprintf(lbl, sizeof(lbl), "kind=\"%s\"", kinds[k]);
        cm_metrics_sample(out, "fedgslb_health_registry_objects", lbl, (double)n);
    }
}

/* ---- lifecycle ---- */

struct hc_registry *hc_registry_new(struct event_base *base, struct hc_http *http,
                                    struct cm_conf *conf, struct hc_kube_target *host,
                                    const struct hc_watch_params *p,
                                    const struct hc_registry_cbs *cbs)
{
    struct hc_registry *r = calloc(1, sizeof(*r));

    if (r == NULL) {
        hc_kube_target_free(host);
        return NULL;
    }
    r->base = base;
    r->http = http;
    r->conf = cm_conf_ref(conf);
    r->host = host;
    r->p = *p;
    r->cbs = *cbs;
    r->cluster_kind = conf->members_from.source == CM_REGISTRY_KARMADA ? HC_K8S_KARMADACLUSTER
                                                                       : HC_K8S_KUBEFEDCLUSTER;
    r->ev_reconcile = event_new(base, -1, 0, on_reconcile, r);
    if (r->ev_reconcile == NULL) {
        hc_registry_free(r);
        return NULL;
    }
    return r;
}

int hc_registry_start(struct hc_registry *r)
{
    cm_log_info("registry: watching %s members on %s%s%s", source_name(r), r->host->server,
                r->cluster_kind == HC_K8S_KUBEFEDCLUSTER ? " namespace " : "",
                r->cluster_kind == HC_K8S_KUBEFEDCLUSTER ? r->conf->members_from.namespace_ : "");
    return start_watches(r);
}

void hc_registry_free(struct hc_registry *r)
{
    if (r == NULL)
        return;
    stop_watches(r);
    if (r->ev_reconcile != NULL)
        event_free(r->ev_reconcile);
    for (size_t i = 0; i < r->joined_count; i++) {
        free(r->joined[i].name);
        hc_kube_target_free(r->joined[i].t);
    }
    free(r->joined);
    reasons_clear(&r->unplaced);
    reasons_clear(&r->pending);
    hc_fedsvcs_free(r->svcs);
    json_decref(r->notes);
    hc_kube_target_free(r->host);
    cm_conf_unref(r->conf);
    free(r);
}

static bool same_source(const struct cm_conf_members_from *a, const struct cm_conf_members_from *b)
{
    return a->source == b->source && a->services == b->services &&
           (a->namespace_ == NULL || b->namespace_ == NULL
                ? a->namespace_ == b->namespace_
                : strcmp(a->namespace_, b->namespace_) == 0);
}

int hc_registry_reload(struct hc_registry *r, struct cm_conf *conf, struct hc_kube_target *host,
                       const struct hc_watch_params *p)
{
    bool restart = !hc_kube_target_same(r->host, host) ||
                   !same_source(&r->conf->members_from, &conf->members_from) ||
                   memcmp(&r->p, p, sizeof(*p)) != 0;

    cm_conf_unref(r->conf);
    r->conf = cm_conf_ref(conf);
    /* Region and zone indexes are the old configuration's: every member is
     * placed again (joining the holder again is a no-op when nothing moved). */
    for (size_t i = 0; i < r->joined_count; i++) {
        r->joined[i].region = SIZE_MAX;
        r->joined[i].zone = -1;
    }
    if (!restart) {
        hc_kube_target_free(host);
        schedule(r); /* locations or configured members may have changed */
        return CM_OK;
    }
    /* The members joined stay until the new lists say otherwise. */
    stop_watches(r);
    hc_kube_target_free(r->host);
    r->host = host;
    r->p = *p;
    r->cluster_kind = conf->members_from.source == CM_REGISTRY_KARMADA ? HC_K8S_KARMADACLUSTER
                                                                       : HC_K8S_KUBEFEDCLUSTER;
    cm_log_info("registry: host cluster or source changed: listing again");
    return start_watches(r);
}
