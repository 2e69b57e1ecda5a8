/* SPDX-License-Identifier: Apache-2.0 */
/* lbp_proxy.c -- listeners, sites, pools and state documents; see lbp_proxy.h. */
#include "lbproxy/lbp_proxy.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/listener.h>

#include "common/cm_ctl.h"
#include "common/cm_err.h"
#include "common/cm_etcd_feed.h"
#include "common/cm_file.h"
#include "common/cm_intent.h"
#include "common/cm_intent_ctl.h"
#include "common/cm_log.h"
#include "common/cm_nofile.h"
#include "common/cm_state.h"
#include "common/cm_store.h"
#include "common/cm_time.h"
#include "lbproxy/lbp_backend.h"
#include "lbproxy/lbp_ticket.h"

#define LBP_BACKLOG 1024

/* ---- pools ----------------------------------------------------------------------- */

static void pool_key(const struct cm_conf *conf, const struct cm_conf_proxy_listen *l, char *buf,
                     size_t cap)
{
    snprintf(buf, cap, "%s %s", conf->members[l->member].name, conf->services[l->service].key);
}

static struct lbp_poolref *pool_find(struct lbp_poolref **pools, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(pools[i]->key, key) == 0)
            return pools[i];
    }
    return NULL;
}

static struct lbp_poolref *pool_new(struct lbp_proxy *px, const struct cm_conf *conf,
                                    const struct cm_conf_proxy_listen *l, const char *key)
{
    struct lbp_poolref *pr = calloc(1, sizeof(*pr));
    struct lbp_pool_params pp;

    if (pr == NULL)
        return NULL;
    lbp_pool_params_default(&pp);
    pp.idle_max = conf->proxy.limits.upstream_idle_connections;
    pp.idle_timeout_ms = conf->proxy.timeouts_ms.upstream_idle_ms;
    pr->refs = 1;
    pr->key = strdup(key);
    pr->pool = lbp_pool_new(px->base, key, &pp, &conf->services[l->service].check);
    if (pr->key == NULL || pr->pool == NULL) {
        lbp_pool_free(pr->pool);
        free(pr->key);
        free(pr);
        return NULL;
    }
    return pr;
}

/* Backends of (member, service) from the document whose entry listing some
 * changed last (cm_state_src_better: the merge's rule). */
static const struct cm_state_endpoint *state_backends(const struct lbp_proxy *px,
                                                      const char *member, const char *service)
{
    const struct cm_state_endpoint *best = NULL;
    const struct cm_state *best_doc = NULL;

    for (size_t i = 0; i < cm_store_count(px->store); i++) {
        const struct cm_state *d = cm_store_get(px->store, i, NULL);
        const struct cm_state_service *s = cm_state_service_find(d, service);
        const struct cm_state_endpoint *ep = s != NULL ? cm_state_endpoint_find(s, member) : NULL;

        if (ep == NULL || ep->backend_count == 0)
            continue;
        if (best_doc == NULL || cm_state_src_better(ep->changed, d, best->changed, best_doc)) {
            best = ep;
            best_doc = d;
        }
    }
    return best;
}

/* Applies state or static backends to every pool used by @conf's listeners. */
static int pools_apply(struct lbp_proxy *px, const struct cm_conf *conf, char *err, size_t errlen)
{
    char key[256];

    for (size_t i = 0; i < conf->proxy.listen_count; i++) {
        const struct cm_conf_proxy_listen *l = &conf->proxy.listen[i];
        const struct cm_state_endpoint *ep;
        struct lbp_poolref *pr;
        int rc;

        pool_key(conf, l, key, sizeof(key));
        pr = pool_find(px->pools, px->pool_count, key);
        if (pr == NULL)
            continue;
        ep = state_backends(px, conf->members[l->member].name, conf->services[l->service].key);
        /* Forced down by the operator: no backend, so new requests get 503. Drains and
         * evacuations keep serving the clients DNS sent before. */
        if (px->iview != NULL && px->iview->member_count == conf->member_count &&
            cm_intent_view_admin(px->iview, l->member, NULL) == CM_ADMIN_FORCE_DOWN)
            rc = lbp_pool_set_backends(pr->pool, NULL, 0, err, errlen);
        else if (ep != NULL)
            rc = lbp_pool_set_backends(pr->pool, (const char *const *)ep->backends,
                                       ep->backend_count, err, errlen);
        else
            rc = lbp_pool_set_backends(pr->pool, (const char *const *)l->backends, l->backend_count,
                                       err, errlen);
        if (rc != CM_OK)
            return rc;
        pr->from_state = ep != NULL;
    }
    return CM_OK;
}

/* ---- sites and listeners ---------------------------------------------------------- */

/*
 * Two independent reasons pause a listener: max_connections (px->accept_paused,
 * all listeners) and its accept guard (descriptors exhausted, this listener).
 * It accepts again only when neither holds.
 */
static void listener_watch(struct lbp_listener *l)
{
    if (l->evl == NULL || l->px->conns.draining)
        return;
    if (l->px->accept_paused || cm_accept_guard_paused(&l->guard))
        evconnlistener_disable(l->evl);
    else
        evconnlistener_enable(l->evl);
}

static void listeners_watch(struct lbp_proxy *px)
{
    for (size_t i = 0; i < px->listener_count; i++)
        listener_watch(px->listeners[i]);
}

static void guard_pause(void *arg)
{
    struct lbp_listener *l = arg;

    if (l->evl != NULL)
        evconnlistener_disable(l->evl);
}

static void guard_resume(void *arg)
{
    listener_watch(arg);
}

/* evconnlistener's error callback: accept() failed with a non-retriable errno. */
static void accept_error_cb(struct evconnlistener *evl, void *arg)
{
    struct lbp_listener *l = arg;
    int e = EVUTIL_SOCKET_ERROR();

    (void)evl;
    cm_accept_guard_error(&l->guard, e);
}

static void accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    struct lbp_listener *l = arg;
    struct lbp_proxy *px = l->px;

    (void)evl;
    cm_accept_guard_ok(&l->guard);
    if (px->conns.draining || l->site == NULL) {
        close(fd);
        return;
    }
    px->conn_count++; /* conn_gone() uncounts it, even when the accept fails */
    lbp_conn_accept(&px->conns, l->site, fd, sa, salen);
    if (px->conn_count >= px->conf->proxy.max_connections && !px->accept_paused) {
        px->accept_paused = true;
        listeners_watch(px);
        cm_log_warn("max_connections=%" PRIu32 " reached: accept paused",
                    px->conf->proxy.max_connections);
    }
}

/* lbp_conn_gone_fn: a connection has ended. */
static void conn_gone(void *arg)
{
    struct lbp_proxy *px = arg;

    px->conn_count--;
    if (px->accept_paused && !px->conns.draining &&
        px->conn_count < px->conf->proxy.max_connections) {
        px->accept_paused = false;
        listeners_watch(px);
    }
    if (px->conns.draining && px->conn_count == 0)
        event_base_loopbreak(px->base);
}

static int listener_guard_init(struct lbp_listener *l)
{
    char name[CM_ACCEPT_NAME_MAX];

    snprintf(name, sizeof(name), "proxy %s", l->name);
    return cm_accept_guard_init(&l->guard, l->px->base, name, guard_pause, guard_resume, l);
}

static struct lbp_listener *listener_new(struct lbp_proxy *px, const struct cm_addr *addr,
                                         char *err, size_t errlen)
{
    struct lbp_listener *l = calloc(1, sizeof(*l));
    int fd;

    if (l == NULL) {
        cm_err_oom(err, errlen, NULL);
        return NULL;
    }
    l->refs = 1;
    l->px = px;
    l->addr = *addr;
    cm_addr_format((const struct sockaddr *)&addr->ss, l->name, sizeof(l->name));
    fd = cm_net_listen(addr, SOCK_STREAM, false, LBP_BACKLOG);
    if (fd < 0) {
        snprintf(err, errlen, "proxy.listen %s: cannot listen: %s", l->name, cm_strerror(fd));
        free(l);
        return NULL;
    }
    l->evl = evconnlistener_new(px->base, accept_cb, l, LEV_OPT_CLOSE_ON_FREE, -1, fd);
    if (l->evl == NULL) {
        close(fd);
        snprintf(err, errlen, "proxy.listen %s: cannot watch the socket", l->name);
        free(l);
        return NULL;
    }
    evconnlistener_set_error_cb(l->evl, accept_error_cb);
    if (listener_guard_init(l) != CM_OK) {
        snprintf(err, errlen, "proxy.listen %s: out of memory", l->name);
        lbp_listener_close(l);
        free(l);
        return NULL;
    }
    return l;
}

static struct lbp_listener *listener_find(struct lbp_listener **ls, size_t n,
                                          const struct cm_addr *a)
{
    for (size_t i = 0; i < n; i++) {
        if (ls[i]->addr.len == a->len && memcmp(&ls[i]->addr.ss, &a->ss, a->len) == 0)
            return ls[i];
    }
    return NULL;
}

/*
 * Builds the listener and pool sets of @conf: existing listeners (same
 * address) and pools (same member and service) are kept, the rest is new. On
 * failure nothing in service changes.
 */
static int build_sets(struct lbp_proxy *px, struct cm_conf *conf, char *err, size_t errlen)
{
    const struct cm_conf_proxy *pc = &conf->proxy;
    size_t n = pc->listen_count, np = 0;
    struct lbp_listener **ls = calloc(n + 1, sizeof(*ls));
    struct lbp_poolref **pools = calloc(n + 1, sizeof(*pools));
    struct lbp_site **sites = calloc(n + 1, sizeof(*sites));
    char key[256];
    int rc = CM_OK;

    if (ls == NULL || pools == NULL || sites == NULL) {
        rc = cm_err_oom(err, errlen, NULL);
        goto out;
    }
    for (size_t i = 0; i < n && rc == CM_OK; i++) {
        const struct cm_conf_proxy_listen *l = &pc->listen[i];
        struct lbp_poolref *pr;

        pool_key(conf, l, key, sizeof(key));
        pr = pool_find(pools, np, key);
        if (pr == NULL) {
            pr = pool_find(px->pools, px->pool_count, key);
            if (pr != NULL) {
                pr->refs++;
                lbp_pool_set_idle(pr->pool, pc->limits.upstream_idle_connections,
                                  pc->timeouts_ms.upstream_idle_ms);
            } else
                pr = pool_new(px, conf, l, key);
            if (pr == NULL) {
                rc = cm_err_oom(err, errlen, NULL);
                break;
            }
            pools[np++] = pr;
        }
        ls[i] = listener_find(px->listeners, px->listener_count, &l->address);
        if (ls[i] != NULL)
            ls[i]->refs++;
        else
            ls[i] = listener_new(px, &l->address, err, errlen);
        if (ls[i] == NULL) {
            rc = CM_EIO;
            break;
        }
        sites[i] = lbp_site_new(conf, i, ls[i], pr, px->tickets, err, errlen);
        if (sites[i] == NULL)
            rc = CM_ECONFIG;
    }
    if (rc != CM_OK)
        goto out;
    /* Commit: swap in the new sets, drop the old ones. */
    for (size_t i = 0; i < n; i++) {
        lbp_site_unref(ls[i]->site);
        ls[i]->site = sites[i];
        sites[i] = NULL;
    }
    for (size_t i = 0; i < px->listener_count; i++) {
        struct lbp_listener *old = px->listeners[i];

        if (listener_find(ls, n, &old->addr) == NULL) {
            cm_log_info("listener %s removed", old->name);
            lbp_listener_close(old);
            lbp_site_unref(old->site); /* drops the site's ref on old too */
            old->site = NULL;
        }
        lbp_listener_unref(old);
    }
    for (size_t i = 0; i < px->pool_count; i++)
        lbp_poolref_unref(px->pools[i]);
    free(px->listeners);
    free(px->pools);
    px->listeners = ls;
    px->listener_count = n;
    px->pools = pools;
    px->pool_count = np;
    ls = NULL;
    pools = NULL;
out:
    for (size_t i = 0; sites != NULL && i < n; i++)
        lbp_site_unref(sites[i]);
    for (size_t i = 0; ls != NULL && i < n; i++) {
        if (ls[i] != NULL && ls[i]->refs == 1 && ls[i]->site == NULL)
            lbp_listener_close(ls[i]);
        lbp_listener_unref(ls[i]);
    }
    for (size_t i = 0; pools != NULL && i < np; i++)
        lbp_poolref_unref(pools[i]);
    free(ls);
    free(pools);
    free(sites);
    return rc;
}

static void expire_tick(evutil_socket_t fd, short what, void *arg);

static void ticket_tick(evutil_socket_t fd, short what, void *arg)
{
    struct lbp_proxy *px = arg;

    (void)fd;
    (void)what;
    if (lbp_tickets_rotate(px->tickets) != CM_OK)
        cm_log_warn(
            "tls: cannot make a new session ticket key (RNG failure); keeping the current one");
    else
        cm_log_debug("tls: session ticket key rotated keys_made=%" PRIu64,
                     lbp_tickets_made(px->tickets));
}

/* (Re)starts the ticket key rotation at @conf's period. */
static int ticket_timer_start(struct lbp_proxy *px, const struct cm_conf *conf)
{
    struct timeval tv = {.tv_sec = (time_t)conf->proxy.tls_sessions.ticket_key_rotation_s};

    if (px->ticket_timer == NULL)
        px->ticket_timer = event_new(px->base, -1, EV_PERSIST, ticket_tick, px);
    if (px->ticket_timer == NULL || event_add(px->ticket_timer, &tv) != 0)
        return CM_ENOMEM;
    px->ticket_period_s = conf->proxy.tls_sessions.ticket_key_rotation_s;
    return CM_OK;
}

int lbp_proxy_new(struct event_base *base, struct cm_conf *conf, struct lbp_proxy **out, char *err,
                  size_t errlen)
{
    struct lbp_proxy *px = calloc(1, sizeof(*px));
    int rc;

    if (px == NULL)
        return cm_err_oom(err, errlen, NULL);
    px->base = base;
    px->conf = cm_conf_ref(conf);
    lbp_conn_reg_init(&px->conns, base, conn_gone, px);
    px->store = cm_store_new();
    px->intents = cm_intents_new();
    px->tickets = lbp_tickets_new();
    if (px->store == NULL || px->intents == NULL || px->tickets == NULL ||
        cm_intent_view_build(px->intents, conf, cm_wall_s(), &px->iview) != CM_OK) {
        lbp_proxy_free(px);
        return cm_err_oom(err, errlen, NULL);
    }
    rc = lbp_alog_open(conf->proxy.access_log.format, conf->proxy.access_log.path, &px->alog, err,
                       errlen);
    px->conns.alog = px->alog;
    if (rc == CM_OK)
        rc = build_sets(px, conf, err, errlen);
    if (rc == CM_OK)
        rc = pools_apply(px, conf, err, errlen);
    if (rc == CM_OK) {
        static const struct timeval second = {1, 0};

        px->expire_timer = event_new(base, -1, EV_PERSIST, expire_tick, px);
        if (px->expire_timer == NULL || event_add(px->expire_timer, &second) != 0 ||
            ticket_timer_start(px, conf) != CM_OK) {
            snprintf(err, errlen, "cannot start the expiry and ticket key timers");
            rc = CM_ENOMEM;
        }
    }
    if (rc != CM_OK) {
        lbp_proxy_free(px);
        return rc;
    }
    *out = px;
    return CM_OK;
}

void lbp_proxy_free(struct lbp_proxy *px)
{
    struct lbp_conn *c;

    if (px == NULL)
        return;
    px->conns.draining = true;
    while ((c = TAILQ_FIRST(&px->conns.live)) != NULL)
        lbp_conn_close(c);
    for (size_t i = 0; i < px->listener_count; i++) {
        struct lbp_listener *l = px->listeners[i];

        lbp_listener_close(l);
        lbp_site_unref(l->site);
        l->site = NULL;
        lbp_listener_unref(l);
    }
    free(px->listeners);
    for (size_t i = 0; i < px->pool_count; i++)
        lbp_poolref_unref(px->pools[i]);
    free(px->pools);
    cm_store_free(px->store);
    cm_intent_view_free(px->iview);
    cm_intents_free(px->intents);
    lbp_conn_reg_fini(&px->conns);
    lbp_alog_close(px->alog);
    if (px->drain_timer != NULL)
        event_free(px->drain_timer);
    if (px->expire_timer != NULL)
        event_free(px->expire_timer);
    if (px->ticket_timer != NULL)
        event_free(px->ticket_timer);
    lbp_tickets_unref(px->tickets);
    cm_conf_unref(px->conf);
    free(px);
}

static void docs_recheck(struct lbp_proxy *px);
static void intents_view(struct lbp_proxy *px, int64_t now_s);

int lbp_proxy_reload(struct lbp_proxy *px, struct cm_conf *conf, char *err, size_t errlen)
{
    struct lbp_alog *alog = NULL;
    int rc;

    rc = lbp_alog_open(conf->proxy.access_log.format, conf->proxy.access_log.path, &alog, err,
                       errlen);
    if (rc != CM_OK)
        return rc;
    rc = build_sets(px, conf, err, errlen);
    if (rc != CM_OK) {
        lbp_alog_close(alog);
        return rc;
    }
    lbp_alog_close(px->alog);
    px->alog = alog;
    px->conns.alog = alog;
    cm_conf_unref(px->conf);
    px->conf = cm_conf_ref(conf);
    intents_view(px, cm_wall_s());
    docs_recheck(px);
    rc = pools_apply(px, conf, err, errlen);
    if (rc != CM_OK)
        cm_log_warn("reload: backends: %s", err);
    if (px->ticket_period_s != conf->proxy.tls_sessions.ticket_key_rotation_s &&
        ticket_timer_start(px, conf) != CM_OK)
        cm_log_warn("reload: cannot restart the ticket key timer; rotation keeps its old period");
    if (px->accept_paused && px->conn_count < conf->proxy.max_connections)
        px->accept_paused = false;
    listeners_watch(px); /* new listeners start paused when a reason holds */
    return CM_OK;
}

/* ---- state documents ------------------------------------------------------------- */

static void state_file_write(struct lbp_proxy *px)
{
    const char *path = px->conf->proxy.state_file;
    json_t *extra;
    char err[512];

    if (path == NULL)
        return;
    extra = json_pack("{s:o*}", "intents", cm_intents_file_json(px->intents));
    if (extra == NULL || cm_store_save(px->store, path, extra, err, sizeof(err)) != CM_OK)
        cm_log_warn("state file: %s", extra == NULL ? "out of memory" : err);
    json_decref(extra);
}

/* Compiles the intents for the configuration in service at @now_s (kept on failure). */
static void intents_view(struct lbp_proxy *px, int64_t now_s)
{
    struct cm_intent_view *v = NULL;

    if (cm_intent_view_build(px->intents, px->conf, now_s, &v) != CM_OK) {
        cm_log_warn("intents: out of memory; the pools keep the previous ones");
        return;
    }
    cm_intent_view_free(px->iview);
    px->iview = v;
}

/* Makes @next (taken) the intents, and the pools and the state file follow. */
static void intents_commit(struct lbp_proxy *px, struct cm_intents *next, int64_t now_s)
{
    char err[CM_STATE_ERR_MAX];

    cm_intents_free(px->intents);
    px->intents = next;
    intents_view(px, now_s);
    if (pools_apply(px, px->conf, err, sizeof(err)) != CM_OK)
        cm_log_warn("intents: backends: %s", err);
    state_file_write(px);
}

int lbp_proxy_intent_put(struct lbp_proxy *px, const char *text, size_t len, int64_t now_s,
                         bool *changed, char *err, size_t errlen)
{
    struct cm_intents *next = NULL;
    struct cm_intent *in = NULL;
    int rc;

    *changed = false;
    rc = cm_intent_parse_text(text, len, px->conf, &in, err, errlen);
    if (rc == CM_OK) {
        cm_log_info("intent %s: id=%s kind=%s", in->removed_at != 0 ? "removal" : "put", in->id,
                    cm_intent_kind_name(in->kind));
        rc = cm_intents_put(px->intents, in, now_s, &next, err, errlen);
    }
    if (rc != CM_OK || next == NULL)
        return rc;
    intents_commit(px, next, now_s);
    *changed = true;
    return CM_OK;
}

void lbp_proxy_intents_etcd(struct lbp_proxy *px, struct cm_etcd_feed *f, int64_t now_s)
{
    struct cm_intents *next = NULL;

    if (cm_etcd_feed_intents(f, px->intents, px->conf, now_s, &next) != CM_OK) {
        cm_log_error("etcd: intents: out of memory; keeping the previous ones");
        return;
    }
    if (next != NULL)
        intents_commit(px, next, now_s);
}

int lbp_proxy_intent_remove(struct lbp_proxy *px, const char *id, const char *by, int64_t now_s,
                            char *err, size_t errlen)
{
    struct cm_intents *next = NULL;
    int rc = cm_intents_remove(px->intents, id, by, now_s, &next, err, errlen);

    if (rc != CM_OK || next == NULL)
        return rc;
    cm_log_info("intent removed: id=%s by=\"%s\"", id, by);
    intents_commit(px, next, now_s);
    return CM_OK;
}

json_t *lbp_proxy_intents_json(struct lbp_proxy *px, int64_t now_s)
{
    return json_pack("{s:o*,s:o*}", "intents", cm_intents_json(px->intents, now_s), "digest",
                     cm_intents_digest_json(px->store, px->intents, now_s));
}

void lbp_proxy_intents_tick(struct lbp_proxy *px, int64_t now_s)
{
    struct cm_intents *pruned = NULL;
    char err[CM_STATE_ERR_MAX];

    if (cm_intents_prune(px->intents, now_s, &pruned) != CM_OK)
        return;
    if (pruned != NULL) {
        intents_commit(px, pruned, now_s);
    } else if (cm_intents_digest(px->intents, now_s) != px->iview->digest) {
        /* An intent expired: the pools follow. */
        intents_view(px, now_s);
        if (pools_apply(px, px->conf, err, sizeof(err)) != CM_OK)
            cm_log_warn("intents: backends: %s", err);
    }
}

/* Makes @c (taken) the store's documents, feeds the pools and writes the state file. */
static void docs_commit(struct lbp_proxy *px, struct cm_store_cand *c, const char *what)
{
    char err[CM_STATE_ERR_MAX];

    cm_store_commit(px->store, c);
    if (pools_apply(px, px->conf, err, sizeof(err)) != CM_OK)
        cm_log_warn("%s: backends: %s", what, err);
    state_file_write(px);
}

/* After a reload: the documents the new configuration refuses (members it no
 * longer has, addresses its allow_addresses no longer opens) are dropped. */
static void docs_recheck(struct lbp_proxy *px)
{
    struct cm_store_cand *c = NULL;
    size_t n;

    if (cm_store_recheck(px->store, px->conf, "new configuration", &c) != CM_OK) {
        cm_log_warn("reload: cannot recheck the state documents: out of memory");
        return;
    }
    (void)cm_store_cand_docs(c, &n);
    if (n == cm_store_count(px->store)) {
        cm_store_cand_free(c); /* nothing dropped */
        return;
    }
    cm_store_commit(px->store, c);
    state_file_write(px);
}

size_t lbp_proxy_state_expire(struct lbp_proxy *px, uint64_t now_ms)
{
    struct cm_store_cand *c = NULL;
    size_t dropped = 0;

    if (px->conf->etcd.present)
        return 0; /* a vantage is gone when its key in etcd is (cm_etcd_feed) */

    if (cm_store_expire(px->store, now_ms, cm_store_expiry_ms(px->conf), &c, &dropped) != CM_OK) {
        cm_log_warn("vantage expiry: out of memory; will retry");
        return 0;
    }
    if (c != NULL)
        docs_commit(px, c, "vantage expiry");
    return dropped;
}

static void expire_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    lbp_proxy_state_expire(arg, cm_mono_ms());
    lbp_proxy_intents_tick(arg, cm_wall_s());
}

int lbp_proxy_state_forget(struct lbp_proxy *px, const char *vantage, char *err, size_t errlen)
{
    const struct cm_state *held = cm_store_find(px->store, vantage);
    struct cm_store_cand *c = NULL;
    int rc;

    rc = cm_etcd_refuse_push(px->conf, "proxy", err, errlen);
    if (rc != CM_OK)
        return rc;
    if (held != NULL)
        cm_log_warn("vantage %s forgotten by the operator (it held generation %" PRIu64
                    "); its next document of any generation is accepted",
                    vantage, held->generation);
    rc = cm_store_forget(px->store, vantage, &c, err, errlen);
    if (rc != CM_OK)
        return rc;
    docs_commit(px, c, "state forget");
    return CM_OK;
}

int lbp_proxy_state_put(struct lbp_proxy *px, const char *body, size_t len, const char *writer,
                        char *err, size_t errlen)
{
    struct cm_store_cand *c = NULL;
    const struct cm_state *doc;
    bool quiet;
    int rc;

    rc = cm_etcd_refuse_push(px->conf, "proxy", err, errlen);
    if (rc == CM_OK)
        rc = cm_store_put(px->store, body, len, writer, px->conf, cm_mono_ms(), &c, err, errlen);
    if (rc != CM_OK) {
        px->state_rejects++;
        cm_log_warn("state push rejected: %s", err);
        return rc;
    }
    px->state_pushes++;
    if (c == NULL) /* an identical re-push: the vantage is alive, nothing changes */
        return CM_OK;
    doc = cm_store_cand_new_doc(c);
    quiet = cm_store_cand_is_quiet(c);
    cm_log_at(quiet ? CM_LOG_DEBUG : CM_LOG_INFO,
              "state accepted: vantage=%s generation=%" PRIu64 " changed=%s", doc->vantage,
              doc->generation, quiet ? "false" : "true");
    docs_commit(px, c, "state push");
    return CM_OK;
}

int lbp_proxy_state_apply(struct lbp_proxy *px, struct cm_store_cand *c, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    docs_commit(px, c, "etcd");
    return CM_OK;
}

int lbp_proxy_check_state(const struct cm_conf *conf, char *err, size_t errlen)
{
    struct cm_store_loaded l;
    const char *path = conf->proxy.state_file;
    int rc;

    if (path == NULL)
        return CM_OK;
    rc = cm_file_check_dir(path, err, errlen);
    if (rc != CM_OK)
        return rc;
    rc = cm_store_load(path, conf, 0, true, &l, err, errlen);
    cm_store_loaded_fini(&l);
    return rc == CM_ENOENT ? CM_OK : rc;
}

int lbp_proxy_load_state(struct lbp_proxy *px, char *err, size_t errlen)
{
    struct cm_store_loaded l;
    const char *path = px->conf->proxy.state_file;
    int rc;

    if (path == NULL)
        return CM_OK;
    if (cm_file_check_dir(path, err, errlen) != CM_OK)
        cm_log_warn("state file: %s", err);
    rc = cm_store_load(path, px->conf, cm_mono_ms(), false, &l, err, errlen);
    if (rc == CM_ENOENT)
        return CM_OK;
    if (rc != CM_OK)
        return rc;
    {
        struct cm_intents *loaded = NULL;
        json_t *arr = json_object_get(l.root, "intents");

        if (cm_intents_load(json_is_array(arr) ? arr : NULL, px->conf, path, &loaded) != CM_OK) {
            cm_store_loaded_fini(&l);
            return cm_err_oom(err, errlen, path);
        }
        cm_intents_free(px->intents);
        px->intents = loaded;
        intents_view(px, cm_wall_s());
    }
    cm_store_commit(px->store, l.cand);
    l.cand = NULL;
    cm_store_loaded_fini(&l);
    cm_log_info("state file %s%s: loaded %zu vantage document(s)", path,
                l.fell_back ? CM_FILE_PREV_SUFFIX : "", cm_store_count(px->store));
    return pools_apply(px, px->conf, err, errlen);
}

/* What the operator's intents say of a listener's member: what the proxy does about it. */
static const char *listener_admin(const struct lbp_proxy *px, const struct lbp_site *s)
{
    int m = cm_conf_member_index(px->conf, s->member);

    switch (m >= 0 ? cm_intent_view_admin(px->iview, (size_t)m, NULL) : CM_ADMIN_NONE) {
    case CM_ADMIN_FORCE_DOWN:
        return "forced down: 503";
    case CM_ADMIN_DRAINED:
        return "drained: serving the clients DNS sent before";
    case CM_ADMIN_EVACUATED:
        return "evacuated: serving the clients DNS sent before";
    case CM_ADMIN_FORCE_UP:
        return "forced up";
    case CM_ADMIN_NONE:
        break;
    }
    return "none";
}

json_t *lbp_proxy_state_json(struct lbp_proxy *px)
{
    json_t *root = json_object(), *ls = json_array(), *docs = json_array();

    for (size_t i = 0; i < px->listener_count; i++) {
        const struct lbp_listener *l = px->listeners[i];
        const struct lbp_site *s = l->site;

        if (s == NULL)
            continue;
        json_array_append_new(
            ls,
            json_pack("{s:s,s:s,s:s,s:s,s:b,s:s,s:o*,s:{s:I,s:I,s:I}}", "address", l->name, "admin",
                      listener_admin(px, s), "member", s->member, "service", s->service, "tls",
                      s->tls != NULL, "backends_from", s->pr->from_state ? "state" : "static",
                      "pool", lbp_pool_json(s->pr->pool), "connections", "active",
                      (json_int_t)l->stats.conns_active, "total", (json_int_t)l->stats.conns_total,
                      "requests", (json_int_t)l->stats.requests));
    }
    for (size_t i = 0; i < cm_store_count(px->store); i++) {
        const struct cm_state *d = cm_store_get(px->store, i, NULL);

        json_array_append_new(docs, json_pack("{s:s,s:I,s:s}", "vantage", d->vantage, "generation",
                                              (json_int_t)d->generation, "generated_at",
                                              d->generated_at));
    }
    json_object_set_new(root, "listeners", ls);
    json_object_set_new(root, "documents", docs);
    json_object_set_new(root, "connections", json_integer((json_int_t)px->conn_count));
    json_object_set_new(root, "draining", json_boolean(px->conns.draining));
    json_object_set_new(root, "intents", cm_intents_json(px->intents, cm_wall_s()));
    json_object_set_new(root, "digest",
                        cm_intents_digest_json(px->store, px->intents, cm_wall_s()));
    return root;
}

/* One family header per metric across every pool (Prometheus rejects repeats). */
static void pool_metrics(const struct lbp_proxy *px, struct cm_buf *out)
{
    const struct lbp_pool *small[16];
    const struct lbp_pool **pools = small;

    if (px->pool_count == 0)
        return;
    if (px->pool_count > sizeof(small) / sizeof(small[0])) {
        pools = calloc(px->pool_count, sizeof(*pools));
        if (pools == NULL)
            return;
    }
    for (size_t i = 0; i < px->pool_count; i++)
        pools[i] = px->pools[i]->pool;
    lbp_pools_metrics(pools, px->pool_count, out);
    if (pools != small)
        free(pools);
}

static void metric_l(struct cm_buf *out, const char *name, const struct lbp_listener *l,
                     const char *extra, double v)
{
    struct cm_buf labels;

    cm_buf_init(&labels, 1024);
    cm_metrics_label(&labels, "listener", l->name);
    if (l->site != NULL) {
        cm_metrics_label(&labels, "member", l->site->member);
        cm_metrics_label(&labels, "service", l->site->service);
    }
    if (extra != NULL)
        cm_buf_printf(&labels, ",%s", extra);
    cm_metrics_sample(out, name, cm_buf_cstr(&labels), v);
    cm_buf_fini(&labels);
}

void lbp_proxy_metrics(struct lbp_proxy *px, struct cm_buf *out)
{
    static const char *const classes[] = {
        "", "code=\"1xx\"", "code=\"2xx\"", "code=\"3xx\"", "code=\"4xx\"", "code=\"5xx\""};
    int64_t now_s = cm_wall_s();

    cm_intents_metrics(px->intents, cm_intents_digest_json(px->store, px->intents, now_s), now_s,
                       out);
    cm_metrics_family(out, "fedgslb_proxy_connections", "gauge", "Open client connections.");
    for (size_t i = 0; i < px->listener_count; i++)
        metric_l(out, "fedgslb_proxy_connections", px->listeners[i], NULL,
                 (double)px->listeners[i]->stats.conns_active);
    cm_metrics_family(out, "fedgslb_proxy_connections_total", "counter",
                      "Client connections accepted.");
    for (size_t i = 0; i < px->listener_count; i++)
        metric_l(out, "fedgslb_proxy_connections_total", px->listeners[i], NULL,
                 (double)px->listeners[i]->stats.conns_total);
    cm_metrics_family(out, "fedgslb_proxy_requests_total", "counter", "Requests received.");
    for (size_t i = 0; i < px->listener_count; i++)
        metric_l(out, "fedgslb_proxy_requests_total", px->listeners[i], NULL,
                 (double)px->listeners[i]->stats.requests);
    cm_metrics_family(out, "fedgslb_proxy_responses_total", "counter",
                      "Responses to clients by status class.");
    for (size_t i = 0; i < px->listener_count; i++) {
        for (int k = 1; k <= 5; k++)
            metric_l(out, "fedgslb_proxy_responses_total", px->listeners[i], classes[k],
                     (double)px->listeners[i]->stats.status_class[k]);
    }
    cm_metrics_family(out, "fedgslb_proxy_bytes_total", "counter", "Bytes from/to clients.");
    for (size_t i = 0; i < px->listener_count; i++) {
        metric_l(out, "fedgslb_proxy_bytes_total", px->listeners[i], "direction=\"in\"",
                 (double)px->listeners[i]->stats.bytes_in);
        metric_l(out, "fedgslb_proxy_bytes_total", px->listeners[i], "direction=\"out\"",
                 (double)px->listeners[i]->stats.bytes_out);
    }
    cm_metrics_family(out, "fedgslb_proxy_retries_total", "counter",
                      "Requests retried on another backend.");
    for (size_t i = 0; i < px->listener_count; i++)
        metric_l(out, "fedgslb_proxy_retries_total", px->listeners[i], NULL,
                 (double)px->listeners[i]->stats.retries);
    cm_metrics_family(out, "fedgslb_proxy_timeouts_total", "counter",
                      "Header, response and stream timeouts.");
    for (size_t i = 0; i < px->listener_count; i++)
        metric_l(out, "fedgslb_proxy_timeouts_total", px->listeners[i], NULL,
                 (double)px->listeners[i]->stats.timeouts);
    cm_metrics_family(out, "fedgslb_accept_exhausted_total", "counter",
                      "Failed accepts for want of descriptors or memory (EMFILE, ENFILE, "
                      "ENOBUFS, ENOMEM); each pauses the listener, by listener.");
    for (size_t i = 0; i < px->listener_count; i++)
        metric_l(out, "fedgslb_accept_exhausted_total", px->listeners[i], NULL,
                 (double)cm_accept_guard_exhausted(&px->listeners[i]->guard));
    cm_metrics_family(out, "fedgslb_proxy_tls_handshakes_total", "counter",
                      "TLS handshakes on client connections: full, resumed (session ticket or "
                      "cache), failed (the connection ended first).");
    for (size_t i = 0; i < px->listener_count; i++) {
        const struct lbp_lstats *st = &px->listeners[i]->stats;

        if (px->listeners[i]->site == NULL || px->listeners[i]->site->tls == NULL)
            continue;
        metric_l(out, "fedgslb_proxy_tls_handshakes_total", px->listeners[i], "result=\"full\"",
                 (double)st->tls_full);
        metric_l(out, "fedgslb_proxy_tls_handshakes_total", px->listeners[i], "result=\"resumed\"",
                 (double)st->tls_resumed);
        metric_l(out, "fedgslb_proxy_tls_handshakes_total", px->listeners[i], "result=\"failed\"",
                 (double)st->tls_failed);
    }
    cm_metrics_family(out, "fedgslb_proxy_tls_ticket_keys_total", "counter",
                      "Session ticket keys made (the first at start, then one per rotation).");
    cm_metrics_sample(out, "fedgslb_proxy_tls_ticket_keys_total", NULL,
                      (double)lbp_tickets_made(px->tickets));
    cm_metrics_family(out, "fedgslb_proxy_state_pushes_total", "counter",
                      "State documents accepted.");
    cm_metrics_sample(out, "fedgslb_proxy_state_pushes_total", NULL, (double)px->state_pushes);
    pool_metrics(px, out);
}

uint64_t lbp_proxy_nofile_need(const struct cm_conf *conf, char *why, size_t cap)
{
    const struct cm_conf_proxy *pc = &conf->proxy;
    uint64_t conns = pc->max_connections;
    uint64_t idle =
        pc->limits.upstream_idle_connections < conns ? pc->limits.upstream_idle_connections : conns;
    uint64_t listeners = pc->listen_count;
    uint64_t control = cm_nofile_control(&pc->control);

    snprintf(why, cap,
             "2 x %" PRIu64 " connections (client + upstream) + %" PRIu64 " listeners x (%" PRIu64
             " idle upstream + 1 socket) + %" PRIu64 " control + %d reserve",
             conns, listeners, idle, control, CM_NOFILE_RESERVE);
    return 2 * conns + listeners * (idle + 1) + control + CM_NOFILE_RESERVE;
}

static void drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct lbp_proxy *px = arg;

    (void)fd;
    (void)what;
    cm_log_warn("drain timeout: closing %zu connections", px->conn_count);
    event_base_loopbreak(px->base);
}

void lbp_proxy_drain(struct lbp_proxy *px)
{
    struct lbp_conn *c, *next;
    uint32_t ms = px->conf->proxy.timeouts_ms.drain_ms;
    struct timeval tv = cm_ms_to_timeval(ms);

    px->conns.draining = true;
    for (size_t i = 0; i < px->listener_count; i++)
        lbp_listener_close(px->listeners[i]);
    for (c = TAILQ_FIRST(&px->conns.live); c != NULL; c = next) {
        next = lbp_conn_next(c);
        lbp_conn_drain(c);
    }
    if (px->conn_count == 0) {
        event_base_loopbreak(px->base);
        return;
    }
    px->drain_timer = evtimer_new(px->base, drain_timeout, px);
    if (px->drain_timer != NULL)
        evtimer_add(px->drain_timer, &tv);
}
