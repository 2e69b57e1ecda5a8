/* SPDX-License-Identifier: Apache-2.0 */
/*
 * health_main.c -- fedgslb-health: command line, startup, reload and stop.
 *
 * One event loop drives everything: the curl multi handle (hc_http), one
 * hc_cluster per member (watches + API health), the data-plane probes
 * (hc_probes), the publisher (hc_publish), the control API, and the report
 * timer. Any cache or probe change schedules a rebuild of the state document
 * 100 ms later (debounce); a changed document gets the next generation, is
 * written to health.state_file atomically and offered to the publisher, which
 * pushes it to every health.publish_to control API. A 1 s tick rebuilds too,
 * so the "API unreachable for N min" reasons stay current.
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
#include "common/cm_err.h"
#include "common/cm_file.h"
#include "common/cm_log.h"
#include "common/cm_net.h"
#include "common/cm_nofile.h"
#include "common/cm_opts.h"
#include "common/cm_str.h"
#include "common/cm_time.h"
#include "common/cm_ui.h"
#include "health/hc_cluster.h"
#include "health/hc_exec.h"
#include "health/hc_http.h"
#include "health/hc_incluster.h"
#include "health/hc_k8s.h"
#include "health/hc_kubeconfig.h"
#include "health/hc_probe.h"
#include "health/hc_publish.h"
#include "health/hc_report.h"

#ifndef FEDGSLB_VERSION
#define FEDGSLB_VERSION "0.1.0"
#endif

#define ERR_MAX     2048
#define DEBOUNCE_MS 100

struct health {
    const char *config_path;
    struct cm_conf *conf; /* reference */
    struct hc_cluster_params params;
    struct event_base *base;      /* owned */
    struct hc_http *http;         /* owned */
    struct hc_cluster **clusters; /* owned, conf->member_count entries */
    struct hc_probes *probes;     /* owned */
    struct hc_publish *publish;   /* owned; NULL without health.publish_to */
    struct hc_report *report;     /* owned */
    struct cm_ctl *ctl;           /* owned; NULL without health.control */
    struct event *ev_hup, *ev_term, *ev_int, *ev_tick, *ev_debounce;
    uint64_t writes, write_errors;
    bool synced;               /* every member listed once (or the grace ran out) */
    uint64_t started_ms;       /* monotonic */
    uint32_t startup_grace_ms; /* FEDGSLB_HEALTH_STARTUP_GRACE_MS */
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: fedgslb-health --config FILE [--check-config] [--log-format text|json]\n"
            "                      [--log-level error|warn|info|debug]\n"
            "       fedgslb-health --help | --version\n"
            "\n"
            "Watches every member cluster's API server (Services, EndpointSlices, and Nodes\n"
            "for members in lb mode proxy) and serves the state document v1 of this vantage\n"
            "at GET /v1/state on the health control API and in health.state_file.\n"
            "--check-config also loads every member's kubeconfig context.\n"
            "\n"
            "Members without \"kubeconfig\" use $KUBECONFIG, then ~/.kube/config.\n"
            "Timing knobs (environment, mainly for tests; defaults in brackets):\n"
            "  FEDGSLB_HEALTH_READYZ_INTERVAL_MS  API health check interval [10000]\n"
            "  FEDGSLB_HEALTH_READYZ_TIMEOUT_MS   API health check timeout [3000]\n"
            "  FEDGSLB_HEALTH_READYZ_FALL         failures to mark unreachable [3]\n"
            "  FEDGSLB_HEALTH_READYZ_RISE         successes to recover [1]\n"
            "  FEDGSLB_HEALTH_BACKOFF_MIN_MS      first retry delay [500]\n"
            "  FEDGSLB_HEALTH_BACKOFF_MAX_MS      longest retry delay [30000]\n"
            "  FEDGSLB_HEALTH_WATCH_TIMEOUT_S     watch timeoutSeconds, +-10 s jitter [300]\n"
            "  FEDGSLB_HEALTH_LIST_TIMEOUT_MS     list page timeout [30000]\n"
            "  FEDGSLB_HEALTH_LIST_LIMIT          list page size [500]\n"
            "  FEDGSLB_HEALTH_EXEC_TIMEOUT_MS     exec credential plugin run timeout [10000]\n"
            "  FEDGSLB_SERVICEACCOUNT_DIR         in_cluster members' token, ca.crt, namespace\n"
            "                                     [/var/run/secrets/kubernetes.io/serviceaccount]\n"
            "  FEDGSLB_HEALTH_MAX_PROBES          data-plane probes in flight [512]\n"
            "  FEDGSLB_HEALTH_STARTUP_GRACE_MS    wait for every member's first list\n"
            "                                     before publishing [30000]\n"
            "  FEDGSLB_HEALTH_PUBLISH_TIMEOUT_MS  timeout of one state push [5000]\n"
            "\n"
            "Documents are pushed to health.publish_to with the bearer token of\n"
            "health.control.token_file (one token for the federation's control APIs).\n");
}

static uint32_t env_u32(const char *name, uint32_t def, uint32_t min, uint32_t max)
{
    const char *s = getenv(name);
    uint64_t v;

    if (s == NULL || s[0] == '\0')
        return def;
    if (!cm_parse_u64(s, max, &v) || v < min) {
        cm_log_warn("%s=%s: expected an integer in %" PRIu32 "..%" PRIu32 "; using %" PRIu32, name,
                    s, min, max, def);
        return def;
    }
    return (uint32_t)v;
}

static void load_params(struct hc_cluster_params *p)
{
    hc_cluster_params_default(p);
    p->readyz_interval_ms =
        env_u32("FEDGSLB_HEALTH_READYZ_INTERVAL_MS", p->readyz_interval_ms, 50, 3600000);
    p->readyz_timeout_ms =
        env_u32("FEDGSLB_HEALTH_READYZ_TIMEOUT_MS", p->readyz_timeout_ms, 50, 600000);
    p->fall = env_u32("FEDGSLB_HEALTH_READYZ_FALL", p->fall, 1, 100);
    p->rise = env_u32("FEDGSLB_HEALTH_READYZ_RISE", p->rise, 1, 100);
    p->watch.backoff_min_ms =
        env_u32("FEDGSLB_HEALTH_BACKOFF_MIN_MS", p->watch.backoff_min_ms, 10, 600000);
    p->watch.backoff_max_ms = env_u32("FEDGSLB_HEALTH_BACKOFF_MAX_MS", p->watch.backoff_max_ms,
                                      p->watch.backoff_min_ms, 3600000);
    p->watch.watch_timeout_s =
        env_u32("FEDGSLB_HEALTH_WATCH_TIMEOUT_S", p->watch.watch_timeout_s, 1, 3600);
    p->watch.list_timeout_ms =
        env_u32("FEDGSLB_HEALTH_LIST_TIMEOUT_MS", p->watch.list_timeout_ms, 100, 600000);
    p->watch.page_limit = env_u32("FEDGSLB_HEALTH_LIST_LIMIT", p->watch.page_limit, 1, 100000);
}

/* Probes in flight at once (FEDGSLB_HEALTH_MAX_PROBES, else the default). */
static uint32_t max_probes(void)
{
    struct hc_probes_params pp;

    hc_probes_params_default(&pp);
    return env_u32("FEDGSLB_HEALTH_MAX_PROBES", pp.max_in_flight, 1, 100000);
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
    uint64_t need, probes = max_probes();
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

static const char *kubeconfig_path(const struct cm_conf_member *m, char *buf, size_t cap)
{
    const char *env = getenv("KUBECONFIG");
    const char *home = getenv("HOME");

    if (m->kubeconfig != NULL)
        return m->kubeconfig;
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
            rc = hc_kubeconfig_load(kubeconfig_path(m, pathbuf, sizeof(pathbuf)), m->context,
                                    &ts[i], kerr, sizeof(kerr));
        }
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

/* ---- report ---- */

static void offer(struct health *h)
{
    const char *text;
    size_t len;

    if (h->publish == NULL || hc_report_doc(h->report) == NULL)
        return;
    text = hc_report_text(h->report, &len);
    if (text == NULL ||
        hc_publish_offer(h->publish, hc_report_generation(h->report), text, len) != CM_OK)
        cm_log_error("cannot offer state generation %" PRIu64 " to the publisher: out of memory",
                     hc_report_generation(h->report));
}

static struct hc_publish *make_publish(struct health *h, const struct cm_conf *conf)
{
    struct hc_publish_params pp;

    if (conf->health.publish_to_count == 0)
        return NULL;
    hc_publish_params_default(&pp);
    pp.full_interval_ms = conf->health.publish_interval_ms;
    pp.timeout_ms = env_u32("FEDGSLB_HEALTH_PUBLISH_TIMEOUT_MS", pp.timeout_ms, 50, 600000);
    pp.ca_file = conf->health.publish_tls.ca_file;
    pp.cert = conf->health.publish_tls.certificate;
    pp.key = conf->health.publish_tls.key;
    /* A vantage's own token (it may write only its document), else the
     * deployment's operator token. */
    return hc_publish_new(h->base, h->http, (const char *const *)conf->health.publish_to,
                          conf->health.publish_to_count,
                          conf->health.publish_token != NULL ? conf->health.publish_token
                                                             : conf->health.control.token,
                          &pp);
}

/*
 * Until every member has listed its objects once (or been declared
 * unreachable or unauthorized), a document would claim that services
 * vanished: nothing is built or published then, and consumers keep the
 * previous document (offered at start from the state file). The startup grace
 * bounds the wait.
 */
static bool members_synced(struct health *h)
{
    if (h->synced)
        return true;
    for (size_t i = 0; i < h->conf->member_count; i++) {
        struct hc_cluster_stats st;
        enum hc_api_state api;

        if (h->clusters[i] == NULL)
            continue;
        api = hc_cluster_api(h->clusters[i]);
        if (api == HC_API_UNREACHABLE || api == HC_API_UNAUTHORIZED)
            continue;
        hc_cluster_get_stats(h->clusters[i], &st);
        for (int k = 0; k < HC_K8S_KIND_COUNT; k++) {
            if (st.watched[k] && st.watch[k].lists == 0) {
                if (cm_mono_ms() - h->started_ms < h->startup_grace_ms)
                    return false;
                cm_log_warn("member %s has not listed its objects after %" PRIu32
                            " ms; publishing without it",
                            h->conf->members[i].name, h->startup_grace_ms);
                h->synced = true;
                return true;
            }
        }
    }
    h->synced = true;
    cm_log_info("every member listed once: publishing state documents");
    return true;
}

static void rebuild(struct health *h)
{
    char err[ERR_MAX] = "";
    bool changed = false;
    int rc;

    if (!members_synced(h))
        return;
    rc = hc_report_update(h->report, h->conf, h->clusters, h->probes, time(NULL), &changed);
    if (rc != CM_OK || !changed)
        return;
    cm_log_debug("state document generation=%" PRIu64, hc_report_generation(h->report));
    /* The state file first: a restart must never resume below a generation
     * that a consumer has already seen. */
    if (h->conf->health.state_file != NULL) {
        rc = hc_report_write(h->report, h->conf->health.state_file, err, sizeof(err));
        if (rc != CM_OK) {
            h->write_errors++;
            cm_log_error("state file: %s", err);
        } else {
            h->writes++;
        }
    }
    offer(h);
}

static void on_debounce(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    rebuild(arg);
}

static void on_changed(void *arg)
{
    struct health *h = arg;
    struct timeval tv = {0, DEBOUNCE_MS * 1000};

    if (!evtimer_pending(h->ev_debounce, NULL))
        evtimer_add(h->ev_debounce, &tv);
}

/*
 * The only text that moves with the clock is "API ... for N min" of a member
 * whose API is not ok: with every member ok the tick has nothing to do (a
 * rebuild of a large federation costs real CPU).
 */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct health *h = arg;

    (void)fd;
    (void)what;
    for (size_t i = 0; i < h->conf->member_count; i++) {
        if (h->clusters[i] != NULL && hc_cluster_api(h->clusters[i]) != HC_API_OK) {
            rebuild(h);
            return;
        }
    }
    if (!h->synced)
        rebuild(h); /* the startup grace may have run out */
}

static json_t *state_get(void *arg)
{
    struct health *h = arg;
    json_t *doc = hc_report_doc(h->report);

    return doc != NULL ? json_incref(doc) : NULL;
}

static void probe_metrics(struct health *h, struct cm_buf *out)
{
    struct hc_probes_stats st;

    hc_probes_get_stats(h->probes, &st);
    cm_metrics_family(out, "fedgslb_health_probes", "gauge", "Data-plane probes configured");
    cm_metrics_sample(out, "fedgslb_health_probes", NULL, (double)st.probes);
    cm_metrics_family(out, "fedgslb_health_probes_in_flight", "gauge", "Probes running now");
    cm_metrics_sample(out, "fedgslb_health_probes_in_flight", NULL, (double)st.in_flight);
    cm_metrics_family(out, "fedgslb_health_probe_runs_total", "counter", "Probes run");
    cm_metrics_sample(out, "fedgslb_health_probe_runs_total", NULL, (double)st.runs);
    cm_metrics_family(out, "fedgslb_health_probe_failures_total", "counter",
                      "Probes failed, by reason class.");
    for (int c = 0; c < HC_PROBE_FAIL_COUNT; c++) {
        char lbl[48];

        snprintf(lbl, sizeof(lbl), "reason=\"%s\"", hc_probe_fail_name((enum hc_probe_fail)c));
        cm_metrics_sample(out, "fedgslb_health_probe_failures_total", lbl,
                          (double)st.failures_by_class[c]);
    }
    cm_metrics_family(out, "fedgslb_health_probe_skipped_total", "counter",
                      "Probe turns skipped because the previous run was still in flight");
    cm_metrics_sample(out, "fedgslb_health_probe_skipped_total", NULL, (double)st.skipped);
    cm_metrics_family(out, "fedgslb_health_probe_deferred_total", "counter",
                      "Probe turns deferred by the in-flight cap");
    cm_metrics_sample(out, "fedgslb_health_probe_deferred_total", NULL, (double)st.deferred);
    cm_metrics_family(out, "fedgslb_health_probe_lateness_max_ms", "gauge",
                      "Longest delay of a probe start past its scheduled time");
    cm_metrics_sample(out, "fedgslb_health_probe_lateness_max_ms", NULL, st.late_max_ms);
}

static void metrics(void *arg, struct cm_buf *out)
{
    static const char *const names[][2] = {
        {"fedgslb_health_watch_events_total", "Watch events applied"},
        {"fedgslb_health_watch_bookmarks_total", "Watch bookmarks received"},
        {"fedgslb_health_watch_lists_total", "Complete lists (initial and relists)"},
        {"fedgslb_health_watch_relists_total", "Lists after the first one"},
        {"fedgslb_health_watch_errors_total", "List and watch failures"},
    };
    struct health *h = arg;
    struct cm_buf lb;

    cm_metrics_family(out, "fedgslb_health_generation", "gauge", "State document generation");
    cm_metrics_sample(out, "fedgslb_health_generation", NULL,
                      (double)hc_report_generation(h->report));
    cm_metrics_family(out, "fedgslb_health_state_writes_total", "counter", "State file writes");
    cm_metrics_sample(out, "fedgslb_health_state_writes_total", NULL, (double)h->writes);
    cm_metrics_family(out, "fedgslb_health_member_api_ok", "gauge", "1 when the member API is ok");
    cm_buf_init(&lb, 4096);
    for (size_t i = 0; i < h->conf->member_count; i++) {
        cm_buf_reset(&lb);
        cm_metrics_label(&lb, "member", h->conf->members[i].name);
        cm_metrics_sample(out, "fedgslb_health_member_api_ok", cm_buf_cstr(&lb),
                          h->clusters[i] != NULL && hc_cluster_api(h->clusters[i]) == HC_API_OK);
    }
    cm_metrics_family(out, "fedgslb_health_api_checks_total", "counter",
                      "Member API health checks (/readyz or /healthz) by result");
    for (size_t i = 0; i < h->conf->member_count; i++) {
        struct hc_cluster_stats st;

        if (h->clusters[i] == NULL)
            continue;
        hc_cluster_get_stats(h->clusters[i], &st);
        for (int ok = 0; ok < 2; ok++) {
            cm_buf_reset(&lb);
            cm_metrics_label(&lb, "member", h->conf->members[i].name);
            cm_metrics_label(&lb, "result", ok ? "ok" : "failed");
            cm_metrics_sample(out, "fedgslb_health_api_checks_total", cm_buf_cstr(&lb),
                              (double)(ok ? st.readyz_ok : st.readyz_failed));
        }
    }
    for (size_t f = 0; f < sizeof(names) / sizeof(names[0]); f++) {
        cm_metrics_family(out, names[f][0], "counter", names[f][1]);
        for (size_t i = 0; i < h->conf->member_count; i++) {
            struct hc_cluster_stats st;

            if (h->clusters[i] == NULL)
                continue;
            hc_cluster_get_stats(h->clusters[i], &st);
            for (int k = 0; k < HC_K8S_KIND_COUNT; k++) {
                const struct hc_watch_stats *w = &st.watch[k];
                const uint64_t v[] = {w->events, w->bookmarks, w->lists, w->relists, w->errors};

                if (!st.watched[k])
                    continue;
                cm_buf_reset(&lb);
                cm_metrics_label(&lb, "member", h->conf->members[i].name);
                cm_metrics_label(&lb, "resource", hc_k8s_kind_name((enum hc_k8s_kind)k));
                cm_metrics_sample(out, names[f][0], cm_buf_cstr(&lb), (double)v[f]);
            }
        }
    }
    cm_buf_fini(&lb);
    probe_metrics(h, out);
    if (h->publish != NULL)
        hc_publish_metrics(h->publish, out);
}

/* ---- members ---- */

static bool same_bytes(const char *a, size_t alen, const char *b, size_t blen)
{
    if (a == NULL || b == NULL)
        return a == b;
    return alen == blen && memcmp(a, b, alen) == 0;
}

static bool same_str(const char *a, const char *b)
{
    return same_bytes(a, a != NULL ? strlen(a) : 0, b, b != NULL ? strlen(b) : 0);
}

static bool same_target(const struct hc_kube_target *a, const struct hc_kube_target *b)
{
    return same_str(a->server, b->server) &&
           same_bytes(a->ca_pem, a->ca_pem_len, b->ca_pem, b->ca_pem_len) &&
           a->insecure_skip_tls_verify == b->insecure_skip_tls_verify &&
           same_str(a->proxy_url, b->proxy_url) && same_str(a->token, b->token) &&
           same_bytes(a->client_cert_pem, a->client_cert_pem_len, b->client_cert_pem,
                      b->client_cert_pem_len) &&
           same_bytes(a->client_key_pem, a->client_key_pem_len, b->client_key_pem,
                      b->client_key_pem_len) &&
           same_str(a->username, b->username) && same_str(a->password, b->password) &&
           same_str(a->token_file, b->token_file) && hc_exec_same(a->exec, b->exec);
}

/* Builds the cluster array for @conf from @targets (taken), reusing the
 * unchanged members of @old (moved out of it). */
static int make_clusters(struct health *h, const struct cm_conf *conf,
                         struct hc_kube_target **targets, struct hc_cluster **old,
                         const struct cm_conf *old_conf, struct hc_cluster ***out)
{
    struct hc_cluster **cs = calloc(conf->member_count + 1, sizeof(*cs));
    int rc = CM_OK;

    if (cs == NULL)
        rc = CM_ENOMEM;
    for (size_t i = 0; i < conf->member_count; i++) {
        const struct cm_conf_member *m = &conf->members[i];
        bool nodes = m->lb_mode == CM_LB_PROXY;
        int oi = old_conf != NULL ? cm_conf_member_index(old_conf, m->name) : -1;

        if (rc != CM_OK) {
            hc_kube_target_free(targets[i]);
            continue;
        }
        if (oi >= 0 && old[oi] != NULL && hc_cluster_wants_nodes(old[oi]) == nodes &&
            same_target(hc_cluster_target(old[oi]), targets[i])) {
            cs[i] = old[oi];
            old[oi] = NULL;
            hc_kube_target_free(targets[i]);
            continue;
        }
        cs[i] =
            hc_cluster_new(h->base, h->http, m->name, targets[i], nodes, &h->params, on_changed, h);
        if (cs[i] != NULL && oi >= 0 && old[oi] != NULL) {
            cm_log_info("member=%s: kubeconfig or lb mode changed; restarting its watches, "
                        "keeping the last known data meanwhile",
                        m->name);
            hc_cluster_take_caches(cs[i], old[oi]);
        }
        if (cs[i] == NULL || hc_cluster_start(cs[i]) != CM_OK)
            rc = CM_ENOMEM;
    }
    free(targets);
    if (rc != CM_OK) {
        for (size_t i = 0; cs != NULL && i < conf->member_count; i++)
            hc_cluster_free(cs[i]);
        free(cs);
        return rc;
    }
    *out = cs;
    return CM_OK;
}

static void free_clusters(struct hc_cluster **cs, size_t n)
{
    for (size_t i = 0; cs != NULL && i < n; i++)
        hc_cluster_free(cs[i]);
    free(cs);
}

static void reload(struct health *h)
{
    struct hc_kube_target **targets = NULL;
    struct hc_cluster **cs = NULL;
    struct cm_conf *nconf = NULL;
    char err[ERR_MAX] = "";
    int rc;

    cm_log_info("SIGHUP: reloading %s", h->config_path);
    rc = cm_conf_load(h->config_path, &nconf, err, sizeof(err));
    if (rc == CM_OK && !nconf->health.present) {
        snprintf(err, sizeof(err), "%s: health: section missing", h->config_path);
        rc = CM_ECONFIG;
    }
    if (rc == CM_OK)
        rc = load_targets(nconf, &targets, err, sizeof(err));
    if (rc == CM_OK)
        rc = make_clusters(h, nconf, targets, h->clusters, h->conf, &cs);
    if (rc != CM_OK) {
        cm_log_error("reload failed: %s; keeping the old configuration", err);
        cm_conf_unref(nconf);
        return;
    }
    free_clusters(h->clusters, h->conf->member_count); /* the members not reused */
    h->clusters = cs;
    /* Targets, token or interval may have changed: a new publisher gets the
     * current document at once. */
    hc_probes_set_source(h->probes, nconf->health.probe_source);
    hc_publish_free(h->publish);
    h->publish = make_publish(h, nconf);
    if (nconf->health.publish_to_count > 0 && h->publish == NULL)
        cm_log_error("reload: cannot create the publisher: out of memory");
    if (h->ctl != NULL && cm_ctl_reload(h->ctl, &nconf->health.control, err, sizeof(err)) != CM_OK)
        cm_log_warn("reload: control API settings not changed: %s", err);
    cm_conf_unref(h->conf);
    h->conf = nconf;
    rebuild(h);
    offer(h);
    cm_log_info("reload done: members=%zu services=%zu", nconf->member_count, nconf->service_count);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct health *h = arg;

    (void)what;
    if (sig == SIGHUP) {
        reload(h);
        return;
    }
    cm_log_info("signal %d: stopping", (int)sig);
    event_base_loopbreak(h->base);
}

static int start(struct health *h, struct hc_kube_target **targets, char *err, size_t errlen)
{
    struct cm_ctl_callbacks cbs = {.metrics = metrics, .state_get = state_get, .arg = h};
    struct hc_probes_params pp;
    struct timeval one_s = {1, 0};
    int rc;

    h->base = event_base_new();
    h->http = h->base != NULL ? hc_http_new(h->base) : NULL;
    if (h->http == NULL) {
        snprintf(err, errlen, "cannot create the event loop");
        for (size_t i = 0; i < h->conf->member_count; i++)
            hc_kube_target_free(targets[i]);
        free(targets);
        return CM_ENOMEM;
    }
    h->ev_hup = evsignal_new(h->base, SIGHUP, on_signal, h);
    h->ev_term = evsignal_new(h->base, SIGTERM, on_signal, h);
    h->ev_int = evsignal_new(h->base, SIGINT, on_signal, h);
    h->ev_tick = event_new(h->base, -1, EV_PERSIST, on_tick, h);
    h->ev_debounce = evtimer_new(h->base, on_debounce, h);
    if (h->ev_hup == NULL || h->ev_term == NULL || h->ev_int == NULL || h->ev_tick == NULL ||
        h->ev_debounce == NULL || evsignal_add(h->ev_hup, NULL) != 0 ||
        evsignal_add(h->ev_term, NULL) != 0 || evsignal_add(h->ev_int, NULL) != 0 ||
        event_add(h->ev_tick, &one_s) != 0) {
        snprintf(err, errlen, "cannot register events");
        for (size_t i = 0; i < h->conf->member_count; i++)
            hc_kube_target_free(targets[i]);
        free(targets);
        return CM_ENOMEM;
    }
    h->started_ms = cm_mono_ms();
    h->startup_grace_ms = env_u32("FEDGSLB_HEALTH_STARTUP_GRACE_MS", 30000, 0, 3600000);
    hc_probes_params_default(&pp);
    pp.max_in_flight = max_probes();
    if (h->conf->health.probe_source != NULL)
        cm_strlcpy(pp.source, h->conf->health.probe_source, sizeof(pp.source));
    h->probes = hc_probes_new(h->base, h->http, &pp, on_changed, h);
    h->publish = make_publish(h, h->conf);
    if (h->probes == NULL || (h->conf->health.publish_to_count > 0 && h->publish == NULL)) {
        snprintf(err, errlen, "cannot create the probes or the publisher: out of memory");
        for (size_t i = 0; i < h->conf->member_count; i++)
            hc_kube_target_free(targets[i]);
        free(targets);
        return CM_ENOMEM;
    }
    rc = make_clusters(h, h->conf, targets, NULL, NULL, &h->clusters);
    if (rc != CM_OK) {
        snprintf(err, errlen, "cannot start the member watchers: %s", cm_strerror(rc));
        return rc;
    }
    rebuild(h);
    /* The document of the state file, until the first rebuild that differs:
     * consumers that restarted with us get our last word at once. */
    offer(h);
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
    if (h->conf != NULL)
        free_clusters(h->clusters, h->conf->member_count);
    hc_publish_free(h->publish);
    hc_probes_free(h->probes);
    hc_http_free(h->http);
    hc_report_free(h->report);
    if (h->ev_hup != NULL)
        event_free(h->ev_hup);
    if (h->ev_term != NULL)
        event_free(h->ev_term);
    if (h->ev_int != NULL)
        event_free(h->ev_int);
    if (h->ev_tick != NULL)
        event_free(h->ev_tick);
    if (h->ev_debounce != NULL)
        event_free(h->ev_debounce);
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
static int prepare(struct health *h, bool check, struct hc_kube_target ***targets, char *err,
                   size_t errlen)
{
    json_t *previous = NULL;
    uint64_t gen = 0;
    int rc;

    rc = cm_conf_load(h->config_path, &h->conf, err, errlen);
    if (rc != CM_OK)
        return rc;
    if (!h->conf->health.present) {
        snprintf(err, errlen, "%s: health: section missing", h->config_path);
        return CM_ECONFIG;
    }
    rc = load_state(h->conf->health.state_file, check, &gen, &previous, err, errlen);
    if (rc == CM_OK)
        rc = load_targets(h->conf, targets, err, errlen);
    if (rc != CM_OK) {
        json_decref(previous);
        return rc;
    }
    h->report = hc_report_new(gen, previous);
    json_decref(previous);
    return h->report != NULL ? CM_OK : CM_ENOMEM;
}

int main(int argc, char **argv)
{
    struct cm_opts o;
    struct hc_kube_target **targets = NULL;
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
    load_params(&h.params);
    rc = prepare(&h, o.check, &targets, err, sizeof(err));
    if (rc != CM_OK) {
        fprintf(stderr, "%s\n", err);
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
        for (size_t i = 0; targets != NULL && i < h.conf->member_count; i++)
            hc_kube_target_free(targets[i]);
        free(targets);
        fini(&h);
        curl_global_cleanup();
        return 1;
    }
    if (o.check) {
        printf("config OK: %zu members (kubeconfig contexts loaded), %zu services, vantage %s\n",
               h.conf->member_count, h.conf->service_count,
               h.conf->regions[h.conf->health.vantage].name);
        for (size_t i = 0; i < h.conf->member_count; i++)
            hc_kube_target_free(targets[i]);
        free(targets);
        fini(&h);
        curl_global_cleanup();
        return 0;
    }
    rc = start(&h, targets, err, sizeof(err));
    if (rc != CM_OK) {
        cm_log_error("cannot start: %s", err);
        fini(&h);
        curl_global_cleanup();
        return 1;
    }
    cm_log_info(
        "fedgslb-health %s started: vantage=%s members=%zu services=%zu generation=%" PRIu64,
        FEDGSLB_VERSION, h.conf->regions[h.conf->health.vantage].name, h.conf->member_count,
        h.conf->service_count, hc_report_generation(h.report));
    event_base_dispatch(h.base);
    if (h.conf->health.state_file != NULL) {
        rebuild(&h);
    }
    fini(&h);
    curl_global_cleanup();
    cm_log_info("stopped");
    return 0;
}
