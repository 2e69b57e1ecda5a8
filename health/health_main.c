/* SPDX-License-Identifier: Apache-2.0 */
/*
 * health_main.c -- fedgslb-health: command line, configuration, startup,
 * reload and stop.
 *
 * One event loop drives everything: the curl multi handle (hc_http), the
 * vantage (hc_vantage: one hc_cluster per member, the data-plane probes, the
 * state document and its publisher, rebuilt 100 ms after a change) and the
 * control API, which serves the vantage's document and metrics.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>

#include "common/cm_conf.h"
#include "common/cm_ctl.h"
#include "common/cm_daemon.h"
#include "common/cm_err.h"
#include "common/cm_file.h"
#include "common/cm_log.h"
#include "common/cm_nofile.h"
#include "common/cm_opts.h"
#include "common/cm_state.h"
#include "common/cm_time.h"
#include "common/cm_ui.h"
#include "health/hc_exec.h"
#include "health/hc_http.h"
#include "health/hc_incluster.h"
#include "health/hc_k8s.h"
#include "health/hc_kubeconfig.h"
#include "health/hc_registry.h"
#include "health/hc_report.h"
#include "health/hc_vantage.h"

#ifndef FEDGSLB_VERSION
#define FEDGSLB_VERSION "0.1.0"
#endif

#define ERR_MAX        2048
#define LOOP_BUSY_US   5000 /* wakeups closer than this: under load */
#define LOOP_GATHER_US 2000 /* the pause after such a wakeup */

struct health {
    const char *config_path;
    const char *instance;         /* --instance / FEDGSLB_INSTANCE, NULL = none */
    struct cm_conf *conf;         /* reference */
    struct event_base *base;      /* owned */
    struct hc_http *http;         /* owned */
    struct hc_report *report;     /* owned until the vantage takes it */
    struct hc_vantage *vantage;   /* owned */
    struct hc_registry *registry; /* owned; NULL without members_from */
    struct cm_ctl *ctl;           /* owned; NULL without health.control */
    struct cm_daemon_events ev;   /* signals */
    struct cm_buf state_buf;      /* GET /v1/state with the registry's status spliced in */
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: fedgslb-health --config FILE [--instance VANTAGE] [--check-config]\n"
            "                      [--log-format text|json] [--log-level error|warn|info|debug]\n"
            "       fedgslb-health --help | --version\n"
            "\n"
            "Watches every member cluster's API server (Services, EndpointSlices, and Nodes\n"
            "for members in lb mode proxy) and serves the state document v1 of this vantage\n"
            "at GET /v1/state on the health control API and in health.state_file.\n"
            "--check-config also loads every member's kubeconfig context.\n"
            "\n"
            "Members without \"kubeconfig\" use $KUBECONFIG, then ~/.kube/config.\n"
            "With members_from, members also come from the host cluster's KubeFed or\n"
            "Karmada registry, watched: joins and unjoins apply without a restart.\n"
            "Timings and limits are health.* configuration keys (docs/configuration.md).\n"
            "Environment: FEDGSLB_SERVICEACCOUNT_DIR, in_cluster members' token, ca.crt\n"
            "and namespace [/var/run/secrets/kubernetes.io/serviceaccount].\n"
            "\n"
            "Documents are pushed to health.publish_to with the bearer token of\n"
            "health.control.token_file (one token for the federation's control APIs).\n");
}

/*
 * The descriptor budget: probes in flight, each member's API connections
 * (a watch per kind and /readyz), the publish targets, the control API and a
 * reserve must fit in RLIMIT_NOFILE. Starting raises the soft limit to the
 * hard one first; --check-config checks against the hard limit.
 */
static int check_nofile(const struct cm_conf *conf, bool starting, char *err, size_t errlen)
{
    const uint64_t api = HC_K8S_KIND_COUNT + 1;
    uint64_t need, probes = conf->health.max_probes;
    char why[256];

    snprintf(why, sizeof(why),
             "%" PRIu64 " probes in flight + %zu members x %" PRIu64
             " API connections + %zu publish targets + %" PRIu64 " control + %d reserve",
             probes, conf->member_count, api, conf->health.publish_to_count,
             cm_nofile_control(&conf->health.control), CM_NOFILE_RESERVE);
    need = probes + conf->member_count * api + conf->health.publish_to_count +
           cm_nofile_control(&conf->health.control) + CM_NOFILE_RESERVE;
    return cm_nofile_check(conf->path, "health", why, need, starting, err, errlen);
}

static const char *kubeconfig_path(const char *configured, char *buf, size_t cap)
{
    const char *env = getenv("KUBECONFIG");
    const char *home = getenv("HOME");

    if (configured != NULL)
        return configured;
    if (env != NULL && env[0] != '\0')
        return env;
    snprintf(buf, cap, "%s/.kube/config", home != NULL ? home : ".");
    return buf;
}

/*
 * Loads every member's kubeconfig context into @out (conf->member_count
 * entries). Every failure is reported, one line each, in @err.
 */
static int load_targets(const struct cm_conf *conf, struct hc_kube_target ***out, char *err,
                        size_t errlen)
{
    struct hc_kube_target **ts = calloc(conf->member_count + 1, sizeof(*ts));
    int first = CM_OK;
    size_t used = 0;

    if (ts == NULL)
        return CM_ENOMEM;
    for (size_t i = 0; i < conf->member_count; i++) {
        const struct cm_conf_member *m = &conf->members[i];
        char kerr[HC_KUBECONFIG_ERR_MAX] = "";
        char pathbuf[1024];
        int rc, n;

        if (m->in_cluster && (m->kubeconfig != NULL || m->context != NULL)) {
            snprintf(kerr, sizeof(kerr), "in_cluster excludes kubeconfig and context");
            rc = CM_ECONFIG;
        } else if (m->in_cluster) {
            rc = hc_incluster_load(m->name, NULL, &ts[i], kerr, sizeof(kerr));
        } else {
            rc = hc_kubeconfig_load(kubeconfig_path(m->kubeconfig, pathbuf, sizeof(pathbuf)),
                                    m->context, &ts[i], kerr, sizeof(kerr));
        }
        if (rc == CM_OK && ts[i]->exec != NULL)
            hc_exec_set_timeout(ts[i]->exec, conf->health.exec_timeout_ms);
        if (rc == CM_OK)
            continue;
        if (first == CM_OK)
            first = rc;
        n = snprintf(err + used, errlen - used, "%s%s: members.%s (context %s): %s",
                     used > 0 ? "\n" : "", conf->path, m->name,
                     m->in_cluster        ? "in-cluster"
                     : m->context != NULL ? m->context
                                          : "(current-context)",
                     kerr);
        if (n > 0)
            used = (size_t)n >= errlen - used ? errlen - 1 : used + (size_t)n;
    }
    if (first != CM_OK) {
        for (size_t i = 0; i < conf->member_count; i++)
            hc_kube_target_free(ts[i]);
        free(ts);
        return first;
    }
    *out = ts;
    return CM_OK;
}

/* members_from's host cluster: its kubeconfig context, or the pod's own. */
static int load_host(const struct cm_conf *conf, struct hc_kube_target **out, char *err,
                     size_t errlen)
{
    const struct cm_conf_members_from *mf = &conf->members_from;
    char kerr[HC_KUBECONFIG_ERR_MAX] = "", pathbuf[1024];
    int rc;

    *out = NULL;
    if (!mf->present)
        return CM_OK;
    if (mf->in_cluster)
        rc = hc_incluster_load("members_from", NULL, out, kerr, sizeof(kerr));
    else
        rc = hc_kubeconfig_load(kubeconfig_path(mf->kubeconfig, pathbuf, sizeof(pathbuf)),
                                mf->context, out, kerr, sizeof(kerr));
    if (rc == CM_OK && (*out)->exec != NULL)
        hc_exec_set_timeout((*out)->exec, conf->health.exec_timeout_ms);
    if (rc != CM_OK)
        snprintf(err, errlen, "%s: members_from (context %s): %s", conf->path,
                 mf->in_cluster        ? "in-cluster"
                 : mf->context != NULL ? mf->context
                                       : "(current-context)",
                 kerr);
    return rc;
}

/*
 * The vantage's document as served, with what the registry holds beside it
 * ({..., "registry": {...}}): spliced into the text, which is not parsed.
 */
static const char *state_text(void *arg, size_t *len)
{
    struct health *h = arg;
    const char *text = h->vantage != NULL ? hc_vantage_state_text(h->vantage, len) : NULL;
    json_t *status;
    char *reg;

    cm_buf_fini(&h->state_buf); /* the last reply has its copy */
    if (text == NULL || h->registry == NULL || *len < 2 || text[*len - 1] != '}')
        return text;
    status = hc_registry_status(h->registry);
    reg = status != NULL ? json_dumps(status, JSON_COMPACT) : NULL;
    json_decref(status);
    cm_buf_init(&h->state_buf, CM_STATE_FILE_MAX_BYTES);
    if (reg == NULL || cm_buf_append(&h->state_buf, text, *len - 1) != CM_OK ||
        cm_buf_printf(&h->state_buf, ",\"registry\":%s}", reg) != CM_OK) {
        free(reg);
        cm_buf_fini(&h->state_buf);
        return text; /* the document alone rather than nothing */
    }
    free(reg);
    *len = h->state_buf.len;
    return h->state_buf.data;
}

static void metrics(void *arg, struct cm_buf *out)
{
    struct health *h = arg;

    hc_vantage_metrics(h->vantage, out);
    if (h->registry != NULL)
        hc_registry_metrics(h->registry, out);
}

/* ---- the registry drives the vantage's registry members ---- */

static void on_join(void *arg, const struct cm_conf_member *m, struct hc_kube_target *t)
{
    struct health *h = arg;
    int rc = hc_vantage_add_member(h->vantage, m, t);

    if (rc != CM_OK)
        cm_log_error("registry: member %s not added: %s", m->name, cm_strerror(rc));
}

static void on_leave(void *arg, const char *name)
{
    struct health *h = arg;

    (void)hc_vantage_remove_member(h->vantage, name); /* CM_ENOENT: never added */
}

static void on_services(void *arg)
{
    struct health *h = arg;

    hc_vantage_set_services(h->vantage, hc_registry_services(h->registry));
}

static void on_registry_synced(void *arg)
{
    struct health *h = arg;

    hc_vantage_hold_for_registry(h->vantage, false);
}

/* Starts the registry of @conf on @host (taken). */
static int registry_start(struct health *h, struct cm_conf *conf, struct hc_kube_target *host)
{
    const struct hc_registry_cbs cbs = {.join = on_join,
                                        .leave = on_leave,
                                        .services = on_services,
                                        .synced = on_registry_synced,
                                        .arg = h};
    struct hc_watch_params p;

    hc_watch_params_from_conf(&p, conf);
    h->registry = hc_registry_new(h->base, h->http, conf, host, &p, &cbs);
    if (h->registry == NULL)
        return CM_ENOMEM;
    hc_vantage_hold_for_registry(h->vantage, true);
    return hc_registry_start(h->registry);
}

/* The registry follows a reload: started, reloaded, or gone with its members. */
static void registry_reload(struct health *h, struct cm_conf *nconf, struct hc_kube_target *host)
{
    struct hc_watch_params p;
    int rc = CM_OK;

    if (!nconf->members_from.present) {
        if (h->registry != NULL) {
            cm_log_info("reload: members_from removed: its members leave");
            hc_registry_unjoin_all(h->registry);
            hc_vantage_set_services(h->vantage, NULL); /* before the set goes */
            hc_registry_free(h->registry);
            h->registry = NULL;
            hc_vantage_hold_for_registry(h->vantage, false);
        }
        return;
    }
    hc_watch_params_from_conf(&p, nconf);
    if (h->registry != NULL)
        rc = hc_registry_reload(h->registry, nconf, host, &p);
    else
        rc = registry_start(h, nconf, host);
    if (rc != CM_OK)
        cm_log_error("reload: cannot watch the member registry: %s", cm_strerror(rc));
}

static void reload(struct health *h)
{
    struct hc_kube_target **targets = NULL, *host = NULL;
    struct cm_conf *nconf = NULL;
    char err[ERR_MAX] = "";
    int rc;

    cm_log_info("SIGHUP: reloading %s", h->config_path);
    rc = cm_conf_load_instance(h->config_path, CM_INSTANCE_VANTAGE, h->instance, &nconf, err,
                               sizeof(err));
    if (rc == CM_OK)
        cm_conf_log_warnings(nconf);
    if (rc == CM_OK && !nconf->health.present) {
        snprintf(err, sizeof(err), "%s: health: section missing", h->config_path);
        rc = CM_ECONFIG;
    }
    if (rc == CM_OK)
        rc = load_host(nconf, &host, err, sizeof(err));
    if (rc == CM_OK)
        rc = load_targets(nconf, &targets, err, sizeof(err));
    if (rc == CM_OK) {
        rc = hc_vantage_reload(h->vantage, nconf, targets);
        if (rc != CM_OK)
            snprintf(err, sizeof(err), "cannot start the member watchers: %s", cm_strerror(rc));
    }
    if (rc != CM_OK) {
        cm_log_error("reload failed: %s; keeping the old configuration", err);
        hc_kube_target_free(host);
        cm_conf_unref(nconf);
        return;
    }
    registry_reload(h, nconf, host);
    if (h->ctl != NULL && cm_ctl_reload(h->ctl, &nconf->health.control, err, sizeof(err)) != CM_OK)
        cm_log_warn("reload: control API settings not changed: %s", err);
    cm_conf_unref(h->conf);
    h->conf = nconf;
    cm_log_info("reload done: members=%zu services=%zu", nconf->member_count, nconf->service_count);
}

static void on_reload(void *arg)
{
    reload(arg);
}

static void on_stop(void *arg, int sig)
{
    struct health *h = arg;

    cm_log_info("signal %d: stopping", sig);
    event_base_loopbreak(h->base);
}

static void free_targets(struct hc_kube_target **targets, size_t n)
{
    for (size_t i = 0; targets != NULL && i < n; i++)
        hc_kube_target_free(targets[i]);
    free(targets);
}

static int start(struct health *h, struct hc_kube_target **targets, struct hc_kube_target *host,
                 char *err, size_t errlen)
{
    struct cm_ctl_callbacks cbs = {.metrics = metrics, .state_text = state_text, .arg = h};
    const struct cm_daemon_hooks hooks = {.reload = on_reload, .stop = on_stop, .arg = h};
    int rc;

    h->base = event_base_new();
    h->http = h->base != NULL ? hc_http_new(h->base) : NULL;
    if (h->http == NULL) {
        snprintf(err, errlen, "cannot create the event loop");
        free_targets(targets, h->conf->member_count);
        hc_kube_target_free(host);
        return CM_ENOMEM;
    }
    if (cm_daemon_events_start(&h->ev, h->base, &hooks) != CM_OK) {
        snprintf(err, errlen, "cannot register events");
        free_targets(targets, h->conf->member_count);
        hc_kube_target_free(host);
        return CM_ENOMEM;
    }
    h->vantage = hc_vantage_new(h->base, h->http, h->conf, h->report, NULL);
    h->report = NULL; /* the vantage's now */
    if (h->vantage == NULL) {
        snprintf(err, errlen, "cannot create the probes or the publisher: out of memory");
        free_targets(targets, h->conf->member_count);
        hc_kube_target_free(host);
        return CM_ENOMEM;
    }
    /* Registry members come later: the document waits for them (within the
     * startup grace) rather than say they are gone. */
    if (host != NULL)
        hc_vantage_hold_for_registry(h->vantage, true);
    rc = hc_vantage_start(h->vantage, targets);
    if (rc == CM_OK && host != NULL)
        rc = registry_start(h, h->conf, host);
    else
        hc_kube_target_free(host);
    if (rc != CM_OK) {
        snprintf(err, errlen, "cannot start the member watchers: %s", cm_strerror(rc));
        return rc;
    }
    if (h->conf->health.control.enabled) {
        rc = cm_ctl_new(h->base, &h->conf->health.control, &cbs, &h->ctl, err, errlen);
        if (rc == CM_OK)
            rc = cm_ui_register(h->ctl, "state.html");
        if (rc != CM_OK)
            return rc;
    }
    return CM_OK;
}

static void fini(struct health *h)
{
    cm_ctl_free(h->ctl);
    cm_buf_fini(&h->state_buf);
    hc_registry_free(h->registry);
    hc_vantage_free(h->vantage);
    hc_http_free(h->http);
    hc_report_free(h->report);
    cm_daemon_events_fini(&h->ev);
    if (h->base != NULL)
        event_base_free(h->base);
    cm_conf_unref(h->conf);
}

/*
 * The generation to continue from and the last document, from the state file
 * (or its .prev). A damaged state file must not stop the checker: generations
 * then restart above the current time so they still only go up. With @check
 * (--check-config) a damaged file, or a state directory that is missing or
 * not writable, is an error instead.
 */
static int load_state(const char *path, bool check, uint64_t *gen, json_t **previous, char *err,
                      size_t errlen)
{
    int rc;

    if (path == NULL)
        return CM_OK;
    rc = check ? cm_file_check_dir(path, err, errlen) : CM_OK;
    if (rc == CM_OK)
        rc = hc_report_load(path, check, gen, previous, err, errlen);
    if (rc != CM_OK && rc != CM_ENOMEM && !check) {
        cm_log_warn("state file unusable (%s); starting generation from the clock", err);
        *gen = (uint64_t)time(NULL);
        rc = CM_OK;
    }
    return rc;
}

/* Config, state file, kubeconfigs, generation: everything --check-config checks. */
static int prepare(struct health *h, bool check, struct hc_kube_target ***targets,
                   struct hc_kube_target **host, char *err, size_t errlen)
{
    json_t *previous = NULL;
    uint64_t gen = 0;
    int rc;

    rc = cm_conf_load_instance(h->config_path, CM_INSTANCE_VANTAGE, h->instance, &h->conf, err,
                               errlen);
    if (rc != CM_OK)
        return rc;
    cm_conf_log_warnings(h->conf);
    if (!h->conf->health.present) {
        snprintf(err, errlen, "%s: health: section missing", h->config_path);
        return CM_ECONFIG;
    }
    rc = load_state(h->conf->health.state_file, check, &gen, &previous, err, errlen);
    if (rc == CM_OK)
        rc = load_host(h->conf, host, err, errlen);
    if (rc == CM_OK)
        rc = load_targets(h->conf, targets, err, errlen);
    if (rc != CM_OK) {
        json_decref(previous);
        return rc;
    }
    h->report = hc_report_new(hc_vantage_resume_generation(gen), previous);
    json_decref(previous);
    return h->report != NULL ? CM_OK : CM_ENOMEM;
}

/*
 * The event loop, gathering under load: a wakeup that brought changes (watch
 * events, probe results) within LOOP_BUSY_US of the previous such wakeup is
 * followed by a pause of LOOP_GATHER_US before the next poll, so that what
 * arrives meanwhile (watch events of 20 members, each in its own TLS record)
 * is read with one wakeup, one recv per socket and one ACK instead of one
 * each. A quiet daemon answers at once, a busy one adds at most
 * LOOP_GATHER_US to a change, and wakeups that change nothing (a large
 * GET /v1/state reply written in pieces) never pause.
 */
static void run_loop(struct event_base *base, const struct hc_vantage *v)
{
    const struct timespec gather = {0, LOOP_GATHER_US * 1000L};
    uint64_t last = 0, now, changes = hc_vantage_change_count(v);

    for (;;) {
        if (event_base_loop(base, EVLOOP_ONCE) != 0 || event_base_got_break(base) ||
            event_base_got_exit(base))
            return;
        if (hc_vantage_change_count(v) == changes)
            continue;
        changes = hc_vantage_change_count(v);
        now = cm_mono_us();
        if (now - last < LOOP_BUSY_US)
            nanosleep(&gather, NULL);
        last = now;
    }
}

int main(int argc, char **argv)
{
    struct cm_opts o;
    struct hc_kube_target **targets = NULL, *host = NULL;
    struct hc_vantage_stats st;
    struct health h;
    char err[ERR_MAX] = "";
    int rc;

    rc = cm_opts_parse(argc, argv, "fedgslb-health", FEDGSLB_VERSION, usage, &o);
    if (rc >= 0)
        return rc;
    cm_log_init("health", o.format, o.level);
    signal(SIGPIPE, SIG_IGN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "fedgslb-health: cannot initialize libcurl\n");
        return 1;
    }
    memset(&h, 0, sizeof(h));
    h.config_path = o.config;
    h.instance = o.instance;
    rc = prepare(&h, o.check, &targets, &host, err, sizeof(err));
    if (rc != CM_OK) {
        fprintf(stderr, "%s\n", err);
        hc_kube_target_free(host);
        fini(&h);
        curl_global_cleanup();
        return 1;
    }
    rc = check_nofile(h.conf, !o.check, err, sizeof(err));
    if (rc != CM_OK) {
        if (o.check)
            fprintf(stderr, "%s\n", err);
        else
            cm_log_error("cannot start: %s", err);
        free_targets(targets, h.conf->member_count);
        hc_kube_target_free(host);
        fini(&h);
        curl_global_cleanup();
        return 1;
    }
    if (o.check) {
        printf("config OK: %zu members (kubeconfig contexts loaded), %zu services, vantage %s\n",
               h.conf->member_count, h.conf->service_count,
               h.conf->regions[h.conf->health.vantage].name);
        if (host != NULL)
            printf("members_from: %s registry on %s (context %s)\n",
                   h.conf->members_from.source == CM_REGISTRY_KARMADA ? "karmada" : "kubefed",
                   host->server, host->context != NULL ? host->context : "in-cluster");
        hc_kube_target_free(host);
        free_targets(targets, h.conf->member_count);
        fini(&h);
        curl_global_cleanup();
        return 0;
    }
    rc = start(&h, targets, host, err, sizeof(err));
    if (rc != CM_OK) {
        cm_log_error("cannot start: %s", err);
        fini(&h);
        curl_global_cleanup();
        return 1;
    }
    hc_vantage_get_stats(h.vantage, &st);
    cm_log_info(
        "fedgslb-health %s started: vantage=%s members=%zu services=%zu generation=%" PRIu64,
        FEDGSLB_VERSION, h.conf->regions[h.conf->health.vantage].name, h.conf->member_count,
        h.conf->service_count, st.generation);
    run_loop(h.base, h.vantage);
    if (h.conf->health.state_file != NULL) {
        hc_vantage_rebuild(h.vantage);
        hc_vantage_flush(h.vantage); /* the latest document, whatever the interval */
    }
    fini(&h);
    curl_global_cleanup();
    cm_log_info("stopped");
    return 0;
}
