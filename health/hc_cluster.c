/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_cluster.c -- per-member caches and the API health checker.
 *
 * Caches are arrays (for iteration) with a hash index by namespace/name, and
 * the slice cache also keeps the ready endpoints per (namespace, service)
 * summed as slices come and go: a report rebuild looks up every (service,
 * member) pair, and at 2,000 Services x 3 slices x 20 members linear scans
 * made one rebuild take seconds (tests/bench/watch_bench.py).
 */
#include "health/hc_cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_err.h"
#include "common/cm_hash.h"
#include "common/cm_log.h"
#include "common/cm_str.h"
#include "common/cm_time.h"
#include "health/hc_http.h"
#include "health/hc_kubeconfig.h"

/* Index entry: an object's key -> its position in cache.objs. */
struct idx_ent {
    struct idx_ent *next;
    uint64_t hash;
    size_t pos;
};

/* Ready endpoints of one service (ns, kubernetes.io/service-name) summed over
 * its slices, kept current as slices come and go. */
struct ready_ent {
    struct ready_ent *next;
    uint64_t hash;
    char *ns;      /* owned */
    char *service; /* owned */
    uint32_t v4, v6;
    size_t slices; /* slices counted; the entry goes when it drops to 0 */
};

struct cache {
    struct hc_k8s_obj **objs; /* owned array of owned objects */
    size_t count;
    size_t cap;
    struct idx_ent **idx; /* owned hash buckets (nbuckets, a power of two) */
    size_t nbuckets;
    struct ready_ent **ready; /* owned, slices only; nbuckets buckets as well */
    size_t nready;
};

/* A changed service of the member, for the report. */
struct chg_ent {
    struct chg_ent *next;
    uint64_t hash;
    char key[]; /* "ns/name" */
};

/* The services changed since the report last took them (a string set). */
struct changes {
    bool all;                 /* everything may have changed; the set is empty then */
    struct chg_ent **buckets; /* owned; nbuckets (a power of two) or NULL */
    size_t nbuckets;
    size_t count;
};

struct hc_cluster {
    struct event_base *base;  /* borrowed */
    struct hc_http *http;     /* borrowed */
    char *name;               /* owned */
    struct hc_kube_target *t; /* owned */
    bool want_nodes;
    struct hc_cluster_params p;
    hc_cluster_changed_fn *changed;
    void *arg;
    struct hc_watch *watch[HC_K8S_KIND_COUNT]; /* owned; NULL when not watched */
    bool watch_auth_failed[HC_K8S_KIND_COUNT];
    struct cache cache[HC_K8S_KIND_COUNT];
    /* readyz checker */
    struct event *readyz_timer;     /* owned */
    struct hc_http_req *readyz_req; /* borrowed handle while in flight */
    bool use_healthz;               /* /readyz answered 404 */
    bool reachable;                 /* hysteresis output */
    bool readyz_auth_failed;        /* last failure was 401/403 */
    uint32_t fails, oks;            /* consecutive */
    char last_error[200];
    uint64_t readyz_ok, readyz_failed;
    enum hc_api_state api;
    time_t last_seen;   /* last successful contact */
    time_t frozen_seen; /* last_seen when the state last left HC_API_OK */
    time_t bad_since;
    struct changes changes;
};

static const char *const api_names[] = {"ok", "stale", "unreachable", "unauthorized"};

const char *hc_api_state_name(enum hc_api_state s)
{
    return (unsigned)s < 4 ? api_names[s] : "unknown";
}

void hc_cluster_params_default(struct hc_cluster_params *p)
{
    p->readyz_interval_ms = 10000;
    p->readyz_timeout_ms = 3000;
    p->fall = 3;
    p->rise = 1;
    hc_watch_params_default(&p->watch);
}

static bool same_key(const struct hc_k8s_obj *o, const char *ns, const char *name)
{
    if (strcmp(o->name, name) != 0)
        return false;
    if (o->ns == NULL || ns == NULL)
        return o->ns == ns;
    return strcmp(o->ns, ns) == 0;
}

/* FNV-1a over ns (or a marker for cluster-scoped objects) and name. */
static uint64_t key_hash(const char *ns, const char *name)
{
    uint64_t h = cm_fnv1a64_str(CM_FNV1A64_INIT, ns != NULL ? ns : "");

    h = cm_fnv1a64_byte(h, ns != NULL ? 0x2f : 0x01);
    return cm_fnv1a64_str(h, name);
}

/* Grows the buckets (both tables) to keep chains short. */
static int cache_grow(struct cache *c)
{
    size_t n = c->nbuckets == 0 ? 64 : c->nbuckets * 2;
    struct idx_ent **idx = calloc(n, sizeof(*idx));
    struct ready_ent **ready = calloc(n, sizeof(*ready));

    if (idx == NULL || ready == NULL) {
        free(idx);
        free(ready);
        return CM_ENOMEM;
    }
    CM_CHAIN_REHASH(struct idx_ent, c->idx, c->nbuckets, idx, n, next, hash);
    CM_CHAIN_REHASH(struct ready_ent, c->ready, c->nbuckets, ready, n, next, hash);
    free(c->idx);
    free(c->ready);
    c->idx = idx;
    c->ready = ready;
    c->nbuckets = n;
    return CM_OK;
}

static struct idx_ent **idx_slot(const struct cache *c, const char *ns, const char *name)
{
    uint64_t h;
    struct idx_ent **pp;

    if (c->nbuckets == 0)
        return NULL;
    h = key_hash(ns, name);
    for (pp = &c->idx[h & (c->nbuckets - 1)]; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->hash == h && same_key(c->objs[(*pp)->pos], ns, name))
            return pp;
    }
    return NULL;
}

static long cache_find(const struct cache *c, const char *ns, const char *name)
{
    struct idx_ent **pp = idx_slot(c, ns, name);

    return pp == NULL ? -1 : (long)(*pp)->pos;
}

static struct ready_ent *ready_find(const struct cache *c, const char *ns, const char *service,
                                    uint64_t h)
{
    struct ready_ent *r;

    if (c->nbuckets == 0)
        return NULL;
    for (r = c->ready[h & (c->nbuckets - 1)]; r != NULL; r = r->next) {
        if (r->hash == h && strcmp(r->ns, ns) == 0 && strcmp(r->service, service) == 0)
            return r;
    }
    return NULL;
}

/* Adds (sign > 0) or removes (sign < 0) a slice's ready endpoints. */
static void ready_account(struct cache *c, const struct hc_k8s_obj *o, int sign)
{
    const struct hc_k8s_slice *sl = &o->u.slice;
    uint64_t h;
    struct ready_ent *r, **pp;

    if (o->kind != HC_K8S_SLICE || sl->service == NULL || o->ns == NULL || c->nbuckets == 0)
        return;
    h = key_hash(o->ns, sl->service);
    r = ready_find(c, o->ns, sl->service, h);
    if (sign > 0) {
        if (r == NULL) {
            r = calloc(1, sizeof(*r));
            if (r != NULL) {
                r->ns = strdup(o->ns);
                r->service = strdup(sl->service);
            }
            if (r == NULL || r->ns == NULL || r->service == NULL) {
                if (r != NULL) {
                    free(r->ns);
                    free(r->service);
                }
                free(r);
                cm_log_error("cache: out of memory; ready endpoints of %s/%s undercounted", o->ns,
                             sl->service);
                return;
            }
            r->hash = h;
            r->next = c->ready[h & (c->nbuckets - 1)];
            c->ready[h & (c->nbuckets - 1)] = r;
            c->nready++;
        }
        r->slices++;
        if (sl->family == HC_K8S_IPV4)
            r->v4 += sl->ready;
        else if (sl->family == HC_K8S_IPV6)
            r->v6 += sl->ready;
        return;
    }
    if (r == NULL)
        return;
    if (sl->family == HC_K8S_IPV4)
        r->v4 -= sl->ready;
    else if (sl->family == HC_K8S_IPV6)
        r->v6 -= sl->ready;
    if (--r->slices > 0)
        return;
    pp = &c->ready[h & (c->nbuckets - 1)];
    while (*pp != r)
        pp = &(*pp)->next;
    *pp = r->next;
    free(r->ns);
    free(r->service);
    free(r);
    c->nready--;
}

static void cache_clear(struct cache *c)
{
    for (size_t i = 0; i < c->count; i++)
        hc_k8s_obj_free(c->objs[i]);
    free(c->objs);
    for (size_t b = 0; b < c->nbuckets; b++) {
        struct idx_ent *e = c->idx[b], *next;
        struct ready_ent *r = c->ready[b], *rnext;

        for (; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
        for (; r != NULL; r = rnext) {
            rnext = r->next;
            free(r->ns);
            free(r->service);
            free(r);
        }
    }
    free(c->idx);
    free(c->ready);
    memset(c, 0, sizeof(*c));
}

/* Takes ownership of @obj in every case; @pp is idx_slot() of its key. */
static void cache_put_at(struct cache *c, struct idx_ent **pp, struct hc_k8s_obj *obj)
{
    struct idx_ent *e;
    struct hc_k8s_obj **n;

    if (pp != NULL) {
        size_t i = (*pp)->pos;

        ready_account(c, c->objs[i], -1);
        hc_k8s_obj_free(c->objs[i]);
        c->objs[i] = obj;
        ready_account(c, obj, +1);
        return;
    }
    if (c->count == c->cap) {
        size_t cap = c->cap == 0 ? 16 : c->cap * 2;

        n = realloc(c->objs, cap * sizeof(*n));
        if (n == NULL)
            goto oom;
        c->objs = n;
        c->cap = cap;
    }
    if ((c->count >= c->nbuckets || c->nready >= c->nbuckets) && cache_grow(c) != CM_OK &&
        c->nbuckets == 0)
        goto oom;
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        goto oom;
    e->hash = key_hash(obj->ns, obj->name);
    e->pos = c->count;
    e->next = c->idx[e->hash & (c->nbuckets - 1)];
    c->idx[e->hash & (c->nbuckets - 1)] = e;
    c->objs[c->count++] = obj;
    ready_account(c, obj, +1);
    return;
oom:
    cm_log_error("cache: out of memory; dropping object %s", obj->name);
    hc_k8s_obj_free(obj);
}

static void cache_put(struct cache *c, struct hc_k8s_obj *obj)
{
    cache_put_at(c, idx_slot(c, obj->ns, obj->name), obj);
}

/* Drops the object at @pp (idx_slot() of its key; NULL: none). */
static void cache_del_at(struct cache *c, struct idx_ent **pp)
{
    struct idx_ent *e, **mp;
    size_t i, last;

    if (pp == NULL)
        return;
    e = *pp;
    i = e->pos;
    *pp = e->next;
    free(e);
    ready_account(c, c->objs[i], -1);
    hc_k8s_obj_free(c->objs[i]);
    last = --c->count;
    if (i != last) {
        /* The last object moves into the hole: its index entry follows. */
        c->objs[i] = c->objs[last];
        mp = idx_slot(c, c->objs[i]->ns, c->objs[i]->name);
        if (mp != NULL)
            (*mp)->pos = i;
    }
}

/* ---- changes for the report ---- */

/* Past this many distinct services between two takes, "everything" is cheaper to keep. */
#define CHANGES_MAX (1u << 18)

static void changes_clear(struct changes *ch)
{
    for (size_t b = 0; b < ch->nbuckets; b++) {
        struct chg_ent *e = ch->buckets[b], *next;

        for (; e != NULL; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(ch->buckets);
    *ch = (struct changes){0};
}

static void changes_all(struct changes *ch)
{
    changes_clear(ch);
    ch->all = true;
}

static int changes_grow(struct changes *ch)
{
    size_t n = ch->nbuckets == 0 ? 64 : ch->nbuckets * 2;
    struct chg_ent **nb = calloc(n, sizeof(*nb));

    if (nb == NULL)
        return CM_ENOMEM;
    CM_CHAIN_REHASH(struct chg_ent, ch->buckets, ch->nbuckets, nb, n, next, hash);
    free(ch->buckets);
    ch->buckets = nb;
    ch->nbuckets = n;
    return CM_OK;
}

/* Notes service ns/name as changed; without memory for it, everything. */
static void changes_note(struct changes *ch, const char *ns, const char *name)
{
    size_t nl = strlen(ns), ml = strlen(name);
    uint64_t h;
    struct chg_ent *e;

    if (ch->all)
        return;
    h = cm_fnv1a64(cm_fnv1a64_byte(cm_fnv1a64(CM_FNV1A64_INIT, ns, nl), '/'), name, ml);
    for (e = ch->nbuckets > 0 ? ch->buckets[h & (ch->nbuckets - 1)] : NULL; e != NULL;
         e = e->next) {
        if (e->hash == h && strncmp(e->key, ns, nl) == 0 && e->key[nl] == '/' &&
            strcmp(e->key + nl + 1, name) == 0)
            return;
    }
    if (ch->count >= CHANGES_MAX || (ch->count >= ch->nbuckets && changes_grow(ch) != CM_OK)) {
        changes_all(ch);
        return;
    }
    e = malloc(sizeof(*e) + nl + ml + 2);
    if (e == NULL) {
        changes_all(ch);
        return;
    }
    e->hash = h;
    memcpy(e->key, ns, nl);
    e->key[nl] = '/';
    memcpy(e->key + nl + 1, name, ml + 1);
    e->next = ch->buckets[h & (ch->nbuckets - 1)];
    ch->buckets[h & (ch->nbuckets - 1)] = e;
    ch->count++;
}

static bool same_opt_str(const char *a, const char *b)
{
    return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/*
 * What an event changes for the report: a Service its own entry, a slice the
 * entry of the service it is labelled with (before and after), a Node every
 * entry of the member (backends), but only when its readiness or addresses
 * moved: kubelets rewrite their Node every few seconds. @old is the cached
 * object (NULL: none), @obj the new state (NULL: deleted).
 */
static void note_event(struct hc_cluster *c, enum hc_k8s_kind kind, const struct hc_k8s_obj *old,
                       const struct hc_k8s_obj *obj)
{
    const struct hc_k8s_obj *any = obj != NULL ? obj : old;

    if (any == NULL)
        return;
    if (kind == HC_K8S_NODE) {
        if (old == NULL || obj == NULL || old->u.node.ready != obj->u.node.ready ||
            !same_opt_str(old->u.node.internal_ip, obj->u.node.internal_ip) ||
            !same_opt_str(old->u.node.external_ip, obj->u.node.external_ip))
            changes_all(&c->changes);
        return;
    }
    if (any->ns == NULL)
        return;
    if (kind == HC_K8S_SERVICE) {
        changes_note(&c->changes, any->ns, any->name);
        return;
    }
    if (old != NULL && old->u.slice.service != NULL)
        changes_note(&c->changes, old->ns, old->u.slice.service);
    if (obj != NULL && obj->u.slice.service != NULL)
        changes_note(&c->changes, obj->ns, obj->u.slice.service);
}

bool hc_cluster_take_changes(struct hc_cluster *c, hc_cluster_change_fn *fn, void *arg)
{
    bool all = c->changes.all;

    for (size_t b = 0; !all && b < c->changes.nbuckets; b++) {
        for (const struct chg_ent *e = c->changes.buckets[b]; e != NULL; e = e->next)
            fn(arg, e->key);
    }
    changes_clear(&c->changes);
    return all;
}

static enum hc_api_state compute_api(const struct hc_cluster *c)
{
    if (!c->reachable)
        return c->readyz_auth_failed ? HC_API_UNAUTHORIZED : HC_API_UNREACHABLE;
    for (int k = 0; k < HC_K8S_KIND_COUNT; k++) {
        if (c->watch_auth_failed[k])
            return HC_API_UNAUTHORIZED;
    }
    for (int k = 0; k < HC_K8S_KIND_COUNT; k++) {
        struct hc_watch_stats st;

        if (c->watch[k] == NULL)
            continue;
        hc_watch_get_stats(c->watch[k], &st);
        if (!st.synced || !st.healthy)
            return HC_API_STALE;
    }
    return HC_API_OK;
}

static void refresh(struct hc_cluster *c, bool data_changed)
{
    enum hc_api_state n = compute_api(c);

    if (n != c->api) {
        if (n == HC_API_OK) {
            cm_log_info("member=%s: API state %s -> ok", c->name, hc_api_state_name(c->api));
            c->bad_since = 0;
        } else {
            if (c->api == HC_API_OK) {
                c->bad_since = time(NULL);
                c->frozen_seen = c->last_seen;
            }
            cm_log_warn("member=%s: API state %s -> %s; keeping last known data", c->name,
                        hc_api_state_name(c->api), hc_api_state_name(n));
        }
        c->api = n;
        changes_all(&c->changes); /* every entry's reason names the API state */
        data_changed = true;
    }
    if (data_changed && c->changed != NULL)
        c->changed(c->arg);
}

/* ---- watch callbacks ---- */

static void on_sync(void *arg, enum hc_k8s_kind kind, struct hc_k8s_obj **objs, size_t count)
{
    struct hc_cluster *c = arg;

    cache_clear(&c->cache[kind]);
    for (size_t i = 0; i < count; i++)
        cache_put(&c->cache[kind], objs[i]);
    changes_all(&c->changes);
    c->last_seen = time(NULL);
    refresh(c, true);
}

static void on_event(void *arg, enum hc_k8s_kind kind, enum hc_k8s_event_type type,
                     struct hc_k8s_obj *obj)
{
    struct hc_cluster *c = arg;
    struct cache *ca = &c->cache[kind];
    struct idx_ent **pp = idx_slot(ca, obj->ns, obj->name); /* one look-up for both steps */

    note_event(c, kind, pp != NULL ? ca->objs[(*pp)->pos] : NULL,
               type == HC_K8S_DELETED ? NULL : obj);
    if (type == HC_K8S_DELETED) {
        cache_del_at(ca, pp);
        hc_k8s_obj_free(obj);
    } else {
        cache_put_at(ca, pp, obj);
    }
    c->last_seen = time(NULL);
    refresh(c, true);
}

static void on_watch_status(void *arg, enum hc_k8s_kind kind, bool ok, long http_status)
{
    struct hc_cluster *c = arg;

    c->watch_auth_failed[kind] = !ok && (http_status == 401 || http_status == 403);
    refresh(c, false);
}

/* ---- readyz ---- */

static void readyz_result(struct hc_cluster *c, bool ok, bool auth, const char *why)
{
    if (ok) {
        c->readyz_ok++;
        c->fails = 0;
        c->oks++;
        c->last_seen = time(NULL);
        c->readyz_auth_failed = false;
        if (!c->reachable && c->oks >= c->p.rise) {
            cm_log_info("member=%s: API server reachable again", c->name);
            c->reachable = true;
        }
    } else {
        c->readyz_failed++;
        c->oks = 0;
        c->fails++;
        c->readyz_auth_failed = auth;
        if (c->fails == 1 || strcmp(c->last_error, why) != 0)
            cm_log_warn("member=%s: API health check failed (%u/%u): %s", c->name, c->fails,
                        c->p.fall, why);
        cm_strlcpy(c->last_error, why, sizeof(c->last_error));
        if (c->reachable && c->fails >= c->p.fall) {
            cm_log_warn("member=%s: API server %s after %u failed checks; keeping last known "
                        "data",
                        c->name, auth ? "unauthorized" : "unreachable", c->fails);
            c->reachable = false;
        }
    }
    refresh(c, false);
}

static void readyz_start(struct hc_cluster *c);

static void on_readyz_done(void *arg, int rc, long status, bool aborted, const char *reason)
{
    struct hc_cluster *c = arg;
    char why[200];

    (void)aborted;
    c->readyz_req = NULL;
    if (rc == CM_OK && status == 404 && !c->use_healthz) {
        c->use_healthz = true; /* an older API server: fall back to /healthz */
        readyz_start(c);
        return;
    }
    if (rc == CM_OK && status >= 200 && status < 300) {
        readyz_result(c, true, false, "");
        return;
    }
    if (rc == CM_OK)
        snprintf(why, sizeof(why), "GET %s: HTTP %ld%s", c->use_healthz ? "/healthz" : "/readyz",
                 status, status == 401 || status == 403 ? " (credentials rejected)" : "");
    else
        snprintf(why, sizeof(why), "GET %s: %s", c->use_healthz ? "/healthz" : "/readyz", reason);
    readyz_result(c, false, rc == CM_OK && (status == 401 || status == 403), why);
}

static void readyz_start(struct hc_cluster *c)
{
    struct cm_curl_opts o = {.timeout_ms = c->p.readyz_timeout_ms,
                             .connect_timeout_ms = c->p.readyz_timeout_ms,
                             .on_done = on_readyz_done,
                             .arg = c};
    char url[2048];
    int rc;

    snprintf(url, sizeof(url), "%s%s", c->t->server, c->use_healthz ? "/healthz" : "/readyz");
    rc = hc_http_get(c->http, c->t, url, &o, &c->readyz_req);
    if (rc != CM_OK)
        readyz_result(c, false, false, cm_strerror(rc));
}

static void on_readyz_timer(evutil_socket_t fd, short what, void *arg)
{
    struct hc_cluster *c = arg;

    (void)fd;
    (void)what;
    if (c->readyz_req != NULL) {
        cm_log_debug("member=%s: health check still running; skipping this round", c->name);
        return;
    }
    readyz_start(c);
}

struct hc_cluster *hc_cluster_new(struct event_base *base, struct hc_http *http, const char *name,
                                  struct hc_kube_target *t, bool want_nodes,
                                  const struct hc_cluster_params *p, hc_cluster_changed_fn *changed,
                                  void *arg)
{
    struct hc_cluster *c = calloc(1, sizeof(*c));
    struct hc_watch_cbs cbs = {
        .sync = on_sync, .event = on_event, .status = on_watch_status, .arg = c};

    if (c == NULL) {
        hc_kube_target_free(t);
        return NULL;
    }
    c->base = base;
    c->http = http;
    c->t = t;
    c->want_nodes = want_nodes;
    c->p = *p;
    c->changed = changed;
    c->arg = arg;
    c->reachable = true;
    c->changes.all = true; /* nothing reported yet */
    c->api = HC_API_STALE;
    c->bad_since = time(NULL);
    c->name = strdup(name);
    c->readyz_timer = event_new(base, -1, EV_PERSIST, on_readyz_timer, c);
    if (c->name == NULL || c->readyz_timer == NULL)
        goto fail;
    for (int k = 0; k < HC_K8S_KIND_COUNT; k++) {
        if (k == HC_K8S_NODE && !want_nodes)
            continue;
        c->watch[k] = hc_watch_new(base, http, t, c->name, (enum hc_k8s_kind)k, &p->watch, &cbs);
        if (c->watch[k] == NULL)
            goto fail;
    }
    return c;
fail:
    hc_cluster_free(c);
    return NULL;
}

int hc_cluster_start(struct hc_cluster *c)
{
    struct timeval tv = cm_ms_to_timeval(c->p.readyz_interval_ms);

    cm_log_info("member=%s: watching %s (context %s)%s", c->name, c->t->server, c->t->context,
                c->want_nodes ? " with nodes" : "");
    for (int k = 0; k < HC_K8S_KIND_COUNT; k++) {
        if (c->watch[k] != NULL && hc_watch_start(c->watch[k]) != CM_OK)
            return CM_ENOMEM;
    }
    if (event_add(c->readyz_timer, &tv) != 0)
        return CM_ENOMEM;
    readyz_start(c);
    return CM_OK;
}

void hc_cluster_free(struct hc_cluster *c)
{
    if (c == NULL)
        return;
    for (int k = 0; k < HC_K8S_KIND_COUNT; k++) {
        hc_watch_free(c->watch[k]);
        cache_clear(&c->cache[k]);
    }
    changes_clear(&c->changes);
    hc_http_req_cancel(c->readyz_req);
    if (c->readyz_timer != NULL)
        event_free(c->readyz_timer);
    hc_kube_target_free(c->t);
    free(c->name);
    free(c);
}

const char *hc_cluster_name(const struct hc_cluster *c)
{
    return c->name;
}

const struct hc_kube_target *hc_cluster_target(const struct hc_cluster *c)
{
    return c->t;
}

bool hc_cluster_wants_nodes(const struct hc_cluster *c)
{
    return c->want_nodes;
}

enum hc_api_state hc_cluster_api(const struct hc_cluster *c)
{
    return c->api;
}

time_t hc_cluster_last_seen(const struct hc_cluster *c)
{
    return c->api == HC_API_OK ? c->last_seen : c->frozen_seen;
}

void hc_cluster_take_caches(struct hc_cluster *dst, struct hc_cluster *src)
{
    for (int k = 0; k < HC_K8S_KIND_COUNT; k++) {
        if (dst->watch[k] == NULL)
            continue;
        cache_clear(&dst->cache[k]);
        dst->cache[k] = src->cache[k];
        memset(&src->cache[k], 0, sizeof(src->cache[k]));
    }
    changes_all(&dst->changes);
    dst->last_seen = src->last_seen;
    dst->frozen_seen = src->api == HC_API_OK ? src->last_seen : src->frozen_seen;
    dst->bad_since = src->api == HC_API_OK ? time(NULL) : src->bad_since;
}

time_t hc_cluster_bad_since(const struct hc_cluster *c)
{
    return c->api == HC_API_OK ? 0 : c->bad_since;
}

size_t hc_cluster_count(const struct hc_cluster *c, enum hc_k8s_kind kind)
{
    return c->cache[kind].count;
}

const struct hc_k8s_obj *hc_cluster_obj(const struct hc_cluster *c, enum hc_k8s_kind kind, size_t i)
{
    return i < c->cache[kind].count ? c->cache[kind].objs[i] : NULL;
}

const struct hc_k8s_obj *hc_cluster_service(const struct hc_cluster *c, const char *ns,
                                            const char *name)
{
    long i = cache_find(&c->cache[HC_K8S_SERVICE], ns, name);

    return i < 0 ? NULL : c->cache[HC_K8S_SERVICE].objs[i];
}

void hc_cluster_ready(const struct hc_cluster *c, const char *ns, const char *name, uint32_t *v4,
                      uint32_t *v6)
{
    const struct ready_ent *r =
        ns != NULL ? ready_find(&c->cache[HC_K8S_SLICE], ns, name, key_hash(ns, name)) : NULL;

    *v4 = r != NULL ? r->v4 : 0;
    *v6 = r != NULL ? r->v6 : 0;
}

void hc_cluster_get_stats(const struct hc_cluster *c, struct hc_cluster_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (int k = 0; k < HC_K8S_KIND_COUNT; k++) {
        if (c->watch[k] == NULL)
            continue;
        out->watched[k] = true;
        hc_watch_get_stats(c->watch[k], &out->watch[k]);
    }
    out->readyz_ok = c->readyz_ok;
    out->readyz_failed = c->readyz_failed;
}
