/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proxy_main.c -- fedgslb-proxy: command line, startup, reload and stop.
 *
 * One event loop runs everything: listeners, connections, backend pools and
 * the control API. SIGHUP builds the new configuration's listeners and
 * settings before anything is swapped (a bad file changes nothing; existing
 * connections finish on the settings they started with). SIGTERM stops
 * accepting and lets in-flight requests finish for proxy.timeouts_ms.drain.
 */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "common/cm_conf.h"
#include "common/cm_ctl.h"
#include "common/cm_daemon.h"
#include "common/cm_err.h"
#include "common/cm_etcd_consumer.h"
#include "common/cm_intent_ctl.h"
#include "common/cm_log.h"
#include "common/cm_net.h"
#include "common/cm_nofile.h"
#include "common/cm_opts.h"
#include "common/cm_time.h"
#include "common/cm_ui.h"
#include "lbproxy/lbp_alog.h"
#include "lbproxy/lbp_proxy.h"
#include "lbproxy/lbp_tls.h"

#ifndef FEDGSLB_VERSION
#define FEDGSLB_VERSION "0.1.0"
#endif

#define ERR_MAX 1024

struct proxyd {
    const char *config_path;
    const char *instance; /* --instance / FEDGSLB_INSTANCE, NULL = none */
    struct cm_conf *conf;
    struct event_base *base;
    struct lbp_proxy *px;
    struct cm_ctl *ctl;
    struct cm_daemon_events ev;            /* signals and the 1 s tick */
    struct cm_intent_routes intent_routes; /* the intent routes' argument */
    struct cm_etcd_consumer *etcd;         /* owned; the distributed mode only */
    bool curl_ready;                       /* curl_global_init() done (the etcd client needs it) */
    bool stopping;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: fedgslb-proxy --config FILE [--instance NAME] [--check-config]\n"
            "                     [--log-format text|json] [--log-level error|warn|info|debug]\n"
            "       fedgslb-proxy --help | --version\n"
            "\n"
            "L7 HTTP(S) proxy standing in for members without a load balancer\n"
            "(proxy section of the federation config). SIGHUP reloads; SIGTERM drains\n"
            "and stops.\n");
}

static int load_conf(const char *path, const char *instance, struct cm_conf **out, char *err,
                     size_t errlen)
{
    int rc = cm_conf_load_instance(path, CM_INSTANCE_PROXY, instance, out, err, errlen);

    if (rc != CM_OK)
        return rc;
    cm_conf_log_warnings(*out);
    if (!(*out)->proxy.present) {
        snprintf(err, errlen, "%s: proxy: section missing", path);
        cm_conf_unref(*out);
        *out = NULL;
        return CM_ECONFIG;
    }
    return CM_OK;
}

/*
 * --check-config: builds the TLS set of every listener with "tls" through the
 * daemon's own code (files read, keys matched, chains added), binding
 * nothing. Every failing listener gets one "file: json.path: reason" line on
 * stderr. Returns the number of failing listeners.
 */
static size_t check_tls(const struct cm_conf *conf, size_t *cert_count)
{
    const struct cm_conf_proxy *pc = &conf->proxy;
    size_t bad = 0;

    *cert_count = 0;
    for (size_t i = 0; i < pc->listen_count; i++) {
        struct lbp_tls *t = NULL;
        char err[ERR_MAX];

        if (lbp_tls_from_listen(&pc->listen[i], i, &pc->tls_sessions, NULL, &t, err, sizeof(err)) !=
            CM_OK) {
            fprintf(stderr, "%s: %s\n", conf->path, err);
            bad++;
            continue;
        }
        if (t != NULL)
            *cert_count += lbp_tls_count(t);
        lbp_tls_unref(t);
    }
    return bad;
}

/*
 * The descriptor budget: max_connections (client and upstream), the idle
 * upstream pools, the control API and a reserve must fit in RLIMIT_NOFILE.
 * Starting raises the soft limit to the hard one first; --check-config
 * checks against the hard limit (what a start would get).
 */
static int check_nofile(const struct cm_conf *conf, bool starting, char *err, size_t errlen)
{
    char why[256];
    uint64_t need;

    need = lbp_proxy_nofile_need(conf, why, sizeof(why));
    return cm_nofile_check(conf->path, "proxy.max_connections", why, need, starting, err, errlen);
}

static void ctl_metrics(void *arg, struct cm_buf *out)
{
    struct proxyd *d = arg;

    lbp_proxy_metrics(d->px, out);
    if (d->etcd != NULL)
        cm_etcd_consumer_metrics(d->etcd, out);
}

static json_t *ctl_state_get(void *arg)
{
    struct proxyd *d = arg;

    json_t *doc = lbp_proxy_state_json(d->px);

    if (doc != NULL && d->etcd != NULL)
        json_object_set_new(doc, "etcd", cm_etcd_consumer_status(d->etcd));
    return doc;
}

static int ctl_state_put(void *arg, const char *body, size_t len, const char *writer, char *err,
                         size_t errlen)
{
    struct proxyd *d = arg;

    return lbp_proxy_state_put(d->px, body, len, writer, err, errlen);
}

static int ctl_state_forget(void *arg, const char *vantage, char *err, size_t errlen)
{
    struct proxyd *d = arg;

    return lbp_proxy_state_forget(d->px, vantage, err, errlen);
}

static void proxyd_reload(struct proxyd *d)
{
    struct cm_conf *nconf = NULL;
    char err[ERR_MAX] = "";

    cm_log_info("reload: reading %s", d->config_path);
    if (load_conf(d->config_path, d->instance, &nconf, err, sizeof(err)) != CM_OK) {
        cm_log_error("reload failed: %s; keeping the old configuration", err);
        return;
    }
    /* A larger max_connections must fit too (the limit was raised at start). */
    if (check_nofile(nconf, false, err, sizeof(err)) != CM_OK) {
        cm_log_error("reload failed: %s; keeping the old configuration", err);
        cm_conf_unref(nconf);
        return;
    }
    if (lbp_proxy_reload(d->px, nconf, err, sizeof(err)) != CM_OK) {
        cm_log_error("reload failed: %s; keeping the old configuration", err);
        cm_conf_unref(nconf);
        return;
    }
    if (d->ctl != NULL && cm_ctl_reload(d->ctl, &nconf->proxy.control, err, sizeof(err)) != CM_OK)
        cm_log_warn("reload: control API settings not changed: %s", err);
    cm_conf_unref(d->conf);
    d->conf = nconf;
    if (d->etcd != NULL)
        cm_etcd_consumer_reload(d->etcd, nconf);
    else if (nconf->etcd.present)
        cm_log_warn("reload: an etcd section appeared; the distributed mode needs a restart");
    cm_log_info("reload done: listeners=%zu", nconf->proxy.listen_count);
}

static void on_reload(void *arg)
{
    proxyd_reload(arg);
}

/* The first signal drains (timeouts_ms.drain); a second one stops at once. */
static void on_stop(void *arg, int sig)
{
    struct proxyd *d = arg;

    if (d->stopping) {
        cm_log_info("signal %d again: stopping now", sig);
        event_base_loopbreak(d->base);
        return;
    }
    d->stopping = true;
    cm_log_info("signal %d: draining up to %u ms", sig, d->conf->proxy.timeouts_ms.drain_ms);
    lbp_proxy_drain(d->px);
}

static void on_tick(void *arg)
{
    struct proxyd *d = arg;

    lbp_alog_flush(d->px->alog);
}

/* ---- /v1/intents (common/cm_intent_ctl.h) ---- */

static json_t *intents_get(void *arg, int64_t now_s)
{
    struct proxyd *d = arg;

    return lbp_proxy_intents_json(d->px, now_s);
}

static int intents_put(void *arg, const char *text, size_t len, int64_t now_s, bool *changed,
                       char *err, size_t errlen)
{
    struct proxyd *d = arg;
    int rc = cm_etcd_refuse_intent(d->px->conf, "proxy", err, errlen);

    *changed = false;
    return rc != CM_OK ? rc : lbp_proxy_intent_put(d->px, text, len, now_s, changed, err, errlen);
}

static int intents_remove(void *arg, const char *id, const char *by, int64_t now_s, char *err,
                          size_t errlen)
{
    struct proxyd *d = arg;
    int rc = cm_etcd_refuse_intent(d->px->conf, "proxy", err, errlen);

    return rc != CM_OK ? rc : lbp_proxy_intent_remove(d->px, id, by, now_s, err, errlen);
}

/* ---- the distributed mode: documents from etcd (cm_etcd_consumer) ---- */

static struct cm_store *etcd_store(void *arg)
{
    struct proxyd *d = arg;

    return d->px->store;
}

static const struct cm_conf *etcd_conf(void *arg)
{
    struct proxyd *d = arg;

    return d->px->conf;
}

static int etcd_apply(void *arg, struct cm_store_cand *cand, char *err, size_t errlen)
{
    struct proxyd *d = arg;

    return lbp_proxy_state_apply(d->px, cand, err, errlen);
}

static void etcd_intents(void *arg, struct cm_etcd_feed *f)
{
    struct proxyd *d = arg;

    lbp_proxy_intents_etcd(d->px, f, cm_wall_s());
}

static int proxyd_etcd_start(struct proxyd *d, char *err, size_t errlen)
{
    const struct cm_etcd_consumer_hooks hooks = {.store = etcd_store,
                                                 .conf = etcd_conf,
                                                 .apply = etcd_apply,
                                                 .intents = etcd_intents,
                                                 .arg = d};
    int rc;

    if (!d->conf->etcd.present)
        return CM_OK;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) { /* one thread: fine here */
        snprintf(err, errlen, "etcd: cannot initialise libcurl");
        return CM_ENOMEM;
    }
    d->curl_ready = true;
    rc = cm_etcd_consumer_new(d->base, d->conf, "proxy", &d->conf->proxy.control, &hooks, &d->etcd,
                              err, errlen);
    if (rc == CM_OK)
        cm_etcd_consumer_start(d->etcd);
    return rc;
}

static int proxyd_start(struct proxyd *d, char *err, size_t errlen)
{
    const struct cm_conf_proxy *pc = &d->conf->proxy;
    struct cm_ctl_callbacks cbs = {.metrics = ctl_metrics,
                                   .state_get = ctl_state_get,
                                   .state_put = ctl_state_put,
                                   .state_forget = ctl_state_forget,
                                   .arg = d};
    const struct cm_daemon_hooks hooks = {
        .reload = on_reload, .stop = on_stop, .tick = on_tick, .arg = d};
    int rc;

    d->base = event_base_new();
    if (d->base == NULL) {
        snprintf(err, errlen, "cannot create the event loop");
        return CM_ENOMEM;
    }
    rc = lbp_proxy_new(d->base, d->conf, &d->px, err, errlen);
    if (rc != CM_OK)
        return rc;
    rc = lbp_proxy_load_state(d->px, err, errlen);
    if (rc != CM_OK)
        cm_log_warn("state file: %s", err);
    if (pc->control.enabled) {
        rc = cm_ctl_new(d->base, &pc->control, &cbs, &d->ctl, err, errlen);
        d->intent_routes = (struct cm_intent_routes){
            .get = intents_get, .put = intents_put, .remove = intents_remove, .arg = d};
        if (rc == CM_OK)
            rc = cm_intent_routes_register(d->ctl, &d->intent_routes);
        if (rc == CM_OK)
            rc = cm_ui_register(d->ctl, "state.html");
        if (rc != CM_OK)
            return rc;
    }
    if (cm_daemon_events_start(&d->ev, d->base, &hooks) != CM_OK) {
        snprintf(err, errlen, "cannot register signal handlers");
        return CM_ENOMEM;
    }
    rc = proxyd_etcd_start(d, err, errlen);
    if (rc != CM_OK)
        return rc;
    for (size_t i = 0; i < pc->listen_count; i++) {
        char a[CM_ADDR_STRLEN];

        cm_addr_format((const struct sockaddr *)&pc->listen[i].address.ss, a, sizeof(a));
        cm_log_info("listening on %s member=%s service=%s tls=%s", a,
                    d->conf->members[pc->listen[i].member].name,
                    d->conf->services[pc->listen[i].service].key,
                    pc->listen[i].tls.enabled ? "yes" : "no");
    }
    return CM_OK;
}

static void proxyd_fini(struct proxyd *d)
{
    cm_etcd_consumer_free(d->etcd);
    d->etcd = NULL;
    if (d->curl_ready)
        curl_global_cleanup();
    d->curl_ready = false;
    cm_ctl_free(d->ctl);
    lbp_proxy_free(d->px);
    cm_daemon_events_fini(&d->ev);
    if (d->base != NULL)
        event_base_free(d->base);
    cm_conf_unref(d->conf);
}

int main(int argc, char **argv)
{
    struct cm_opts o;
    struct proxyd d;
    char err[ERR_MAX] = "";
    int rc;

    rc = cm_opts_parse(argc, argv, "fedgslb-proxy", FEDGSLB_VERSION, usage, &o);
    if (rc >= 0)
        return rc;
    cm_log_init("lbproxy", o.format, o.level);
    signal(SIGPIPE, SIG_IGN);
    /* Every socket read borrows a 16 KiB buffer chain that is freed once the
     * bytes move on; with glibc's default 128 KiB trim threshold the heap top
     * shrinks and grows again all the time (brk calls and page faults on the
     * request path). Keep up to 64 MiB of freed memory instead. */
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_TOP_PAD, 1 << 20);
    memset(&d, 0, sizeof(d));
    d.config_path = o.config;
    d.instance = o.instance;
    rc = load_conf(o.config, o.instance, &d.conf, err, sizeof(err));
    if (rc != CM_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (o.check) {
        size_t certs = 0, bad = check_tls(d.conf, &certs);

        if (check_nofile(d.conf, false, err, sizeof(err)) != CM_OK) {
            fprintf(stderr, "%s\n", err);
            bad++;
        }
        if (lbp_proxy_check_state(d.conf, err, sizeof(err)) != CM_OK) {
            fprintf(stderr, "%s\n", err);
            bad++;
        }

        if (bad == 0 && certs > 0)
            printf("config OK: %zu proxy listeners, %zu services, %zu members, "
                   "%zu TLS certificates loaded\n",
                   d.conf->proxy.listen_count, d.conf->service_count, d.conf->member_count, certs);
        else if (bad == 0)
            printf("config OK: %zu proxy listeners, %zu services, %zu members\n",
                   d.conf->proxy.listen_count, d.conf->service_count, d.conf->member_count);
        proxyd_fini(&d);
        return bad == 0 ? 0 : 1;
    }
    rc = check_nofile(d.conf, true, err, sizeof(err));
    if (rc == CM_OK)
        rc = proxyd_start(&d, err, sizeof(err));
    if (rc != CM_OK) {
        cm_log_error("cannot start: %s", err);
        proxyd_fini(&d);
        return 1;
    }
    cm_log_info("fedgslb-proxy %s started", FEDGSLB_VERSION);
    event_base_dispatch(d.base);
    cm_log_info("stopped");
    proxyd_fini(&d);
    return 0;
}
