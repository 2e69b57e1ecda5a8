/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hc_vantage.c -- the clusters, probes, report and publisher of this vantage,
 * and the rebuild / debounce / offer cycle (hc_vantage.h has the rules).
 */
#include "health/hc_vantage.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "common/cm_conf.h"
#include "common/cm_ctl.h"
#include "common/cm_err.h"
#include "common/cm_log.h"
#include "common/cm_str.h"
#include "common/cm_time.h"
#include "health/hc_cluster.h"
#include "health/hc_etcdpub.h"
#include "health/hc_exec.h"
#include "health/hc_k8s.h"
#include "health/hc_kubeconfig.h"
#include "health/hc_probe.h"
#include "health/hc_publish.h"
#include "health/hc_report.h"

#define ERR_MAX 2048

/* A member from the host cluster's registry (hc_vantage_add_member). */
struct reg_member {
    char *name;               /* owned */
    char *region;             /* owned region name (indexes move with a reload) */
    char *zone;               /* owned zone name, NULL = none */
    struct hc_kube_target *t; /* owned; the member's cluster gets a copy */
};

struct hc_vantage {
    struct event_base *base; /* borrowed */
    struct hc_http *http;    /* borrowed */
    struct cm_conf *loaded;  /* reference: the configuration as loaded */
    struct cm_conf *conf;    /* reference: loaded + the registry members */
    struct reg_member *reg;  /* owned, sorted by name */
    size_t reg_count;
    bool registry_pending;               /* publishing waits for the registry's first list */
    struct hc_cluster_params params;     /* from conf->health.api */
    struct hc_cluster **clusters;        /* owned, conf->member_count entries; NULL before start */
    struct hc_probes *probes;            /* owned */
    struct hc_publish *publish;          /* owned; NULL without health.publish_to */
    struct hc_etcdpub *etcd;             /* owned; NULL outside the distributed mode */
    struct hc_report *report;            /* owned */
    struct event *ev_tick, *ev_debounce; /* owned */
    struct event *ev_write;              /* owned: the pending state file write */
    hc_vantage_clock_fn *clock;
    hc_vantage_clock_fn *cpu_clock;
    void *clock_arg;
    uint64_t started_ms; /* on the clock: the startup grace runs from here */
    bool synced;         /* every member listed once (or the grace ran out) */
    bool armed;          /* a debounced rebuild is due at due_ms */
    uint64_t due_ms;
    uint64_t first_ms;     /* the first change the armed rebuild gathers */
    uint64_t gathered;     /* changes since the last rebuild began */
    int64_t budget_us;     /* rebuild CPU that may be spent now; negative: overdrawn */
    uint64_t budget_at_ms; /* when budget_us was last refilled */
    uint64_t rebuilds, documents, offers, writes, write_errors;
    uint64_t rebuild_cpu_us, postponed, bursts;
    uint64_t changes;     /* hc_vantage_changed() calls */
    bool written_once;    /* health.state_file written since the start */
    uint64_t written_gen; /* the generation there (or resumed from) */
    uint64_t written_ms;  /* when it was written */
    bool write_pending;   /* the file is behind; written at write_due_ms */
    uint64_t write_due_ms;
};

static uint64_t mono_clock(void *arg)
{
    (void)arg;
    return cm_mono_ms();
}

static uint64_t thread_cpu(void *arg)
{
    (void)arg;
    return cm_thread_cpu_us();
}

static uint64_t now_ms(const struct hc_vantage *v)
{
    return v->clock(v->clock_arg);
}

static void params_from_conf(struct hc_cluster_params *p, const struct cm_conf *conf)
{
    const struct cm_conf_health_api *a = &conf->health.api;

    hc_cluster_params_default(p);
    p->readyz_interval_ms = a->readyz_interval_ms;
    p->readyz_timeout_ms = a->readyz_timeout_ms;
    p->fall = a->fall;
    p->rise = a->rise;
    hc_watch_params_from_conf(&p->watch, conf);
}

static bool same_params(const struct hc_cluster_params *a, const struct hc_cluster_params *b)
{
    return a->readyz_interval_ms == b->readyz_interval_ms &&
           a->readyz_timeout_ms == b->readyz_timeout_ms && a->fall == b->fall &&
           a->rise == b->rise && a->watch.backoff_min_ms == b->watch.backoff_min_ms &&
           a->watch.backoff_max_ms == b->watch.backoff_max_ms &&
           a->watch.watch_timeout_s == b->watch.watch_timeout_s &&
           a->watch.list_timeout_ms == b->watch.list_timeout_ms &&
           a->watch.page_limit == b->watch.page_limit;
}

/* ---- the cycle ---- */

static void offer(struct hc_vantage *v)
{
    const char *text;
    size_t len;

    if (v->publish == NULL && v->etcd == NULL)
        return;
    text = hc_report_text(v->report, &len);
    if (text == NULL)
        return; /* nothing built and no state file */
    if (v->etcd != NULL &&
        hc_etcdpub_offer(v->etcd, hc_report_generation(v->report), text, len) != CM_OK)
        text = NULL;
    if (text == NULL ||
        (v->publish != NULL &&
         hc_publish_offer(v->publish, hc_report_generation(v->report), text, len) != CM_OK)) {
        cm_log_error("cannot offer state generation %" PRIu64 " to the publisher: out of memory",
                     hc_report_generation(v->report));
        return;
    }
    v->offers++;
}

static struct hc_publish *make_publish(struct hc_vantage *v, const struct cm_conf *conf)
{
    struct hc_publish_params pp;

    if (conf->health.publish_to_count == 0)
        return NULL;
    hc_publish_params_default(&pp);
    pp.full_interval_ms = conf->health.publish_interval_ms;
    pp.timeout_ms = conf->health.publish_timeout_ms;
    pp.ca_file = conf->health.publish_tls.ca_file;
    pp.cert = conf->health.publish_tls.certificate;
    pp.key = conf->health.publish_tls.key;
    /* A vantage's own token (it may write only its document), else the
     * deployment's operator token. */
    return hc_publish_new(v->base, v->http, (const char *const *)conf->health.publish_to,
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
static bool members_synced(struct hc_vantage *v)
{
    if (v->synced)
        return true;
    if (v->clusters == NULL)
        return false; /* not started */
    if (v->registry_pending) {
        if (now_ms(v) - v->started_ms < v->conf->health.startup_grace_ms)
            return false;
        cm_log_warn("the member registry has not listed its members after %" PRIu32
                    " ms; publishing without them",
                    v->conf->health.startup_grace_ms);
    }
    for (size_t i = 0; i < v->conf->member_count; i++) {
        struct hc_cluster_stats st;
        enum hc_api_state api;

        if (v->clusters[i] == NULL)
            continue;
        api = hc_cluster_api(v->clusters[i]);
        if (api == HC_API_UNREACHABLE || api == HC_API_UNAUTHORIZED)
            continue;
        hc_cluster_get_stats(v->clusters[i], &st);
        for (int k = 0; k < HC_K8S_KIND_COUNT; k++) {
            if (st.watched[k] && st.watch[k].lists == 0) {
                if (now_ms(v) - v->started_ms < v->conf->health.startup_grace_ms)
                    return false;
                cm_log_warn("member %s has not listed its objects after %" PRIu32
                            " ms; publishing without it",
                            v->conf->members[i].name, v->conf->health.startup_grace_ms);
                v->synced = true;
                return true;
            }
        }
    }
    v->synced = true;
    cm_log_info("every member listed once: publishing state documents");
    return true;
}

/* The CPU budget of rebuilds, refilled for the time passed up to its ceiling. */
static void budget_refill(struct hc_vantage *v, uint64_t now)
{
    uint64_t add;

    if (now <= v->budget_at_ms)
        return;
    add = (now - v->budget_at_ms) * HC_VANTAGE_REBUILD_CPU_US_PER_S / 1000u;
    v->budget_at_ms = now;
    if (add >= (uint64_t)HC_VANTAGE_REBUILD_BURST_US ||
        v->budget_us + (int64_t)add >= HC_VANTAGE_REBUILD_BURST_US)
        v->budget_us = HC_VANTAGE_REBUILD_BURST_US;
    else
        v->budget_us += (int64_t)add;
}

/*
 * Charges a rebuild's CPU to the budget. The debt is bounded by what
 * HC_VANTAGE_THROTTLE_MAX_MS repays: one huge rebuild (the first, at a
 * large scale) must not hold the next ones back for minutes.
 */
static void budget_charge(struct hc_vantage *v, uint64_t cpu_us)
{
    const int64_t floor =
        -(int64_t)HC_VANTAGE_REBUILD_CPU_US_PER_S * HC_VANTAGE_THROTTLE_MAX_MS / 1000;

    budget_refill(v, now_ms(v));
    v->rebuild_cpu_us += cpu_us;
    v->budget_us -= cpu_us > (uint64_t)INT64_MAX / 2 ? INT64_MAX / 2 : (int64_t)cpu_us;
    if (v->budget_us < floor)
        v->budget_us = floor;
}

/* How long after a change its rebuild runs: the debounce, or until the budget is back at 0. */
static uint64_t rebuild_delay_ms(struct hc_vantage *v, uint64_t now)
{
    uint64_t need;

    budget_refill(v, now);
    if (v->budget_us >= 0)
        return HC_VANTAGE_DEBOUNCE_MS;
    need = ((uint64_t)-v->budget_us * 1000u + HC_VANTAGE_REBUILD_CPU_US_PER_S - 1) /
           HC_VANTAGE_REBUILD_CPU_US_PER_S;
    if (need <= HC_VANTAGE_DEBOUNCE_MS)
        return HC_VANTAGE_DEBOUNCE_MS;
    v->postponed++;
    return need < HC_VANTAGE_DEBOUNCE_MS + HC_VANTAGE_THROTTLE_MAX_MS
               ? need
               : HC_VANTAGE_DEBOUNCE_MS + HC_VANTAGE_THROTTLE_MAX_MS;
}

static void rebuild(struct hc_vantage *v);

/* Writes the current document to the state file (hc_vantage.h: the rule). */
static void write_state(struct hc_vantage *v)
{
    char err[ERR_MAX] = "";
    int rc;

    v->write_pending = false;
    if (v->conf->health.state_file == NULL)
        return;
    rc = hc_report_write(v->report, v->conf->health.state_file, err, sizeof(err));
    v->written_ms = now_ms(v);
    if (rc != CM_OK) {
        /* Retried with the next document, or after the interval. */
        v->write_errors++;
        cm_log_error("state file: %s", err);
        return;
    }
    v->writes++;
    v->written_once = true;
    v->written_gen = hc_report_generation(v->report);
}

/* A write of its own (not a rebuild's): its CPU counts as rebuilds' does. */
static void write_state_charged(struct hc_vantage *v)
{
    uint64_t c0 = v->cpu_clock(v->clock_arg);

    write_state(v);
    budget_charge(v, v->cpu_clock(v->clock_arg) - c0);
}

static void arm_write(struct hc_vantage *v, uint64_t in_ms)
{
    struct timeval tv = {(time_t)(in_ms / 1000), (suseconds_t)(in_ms % 1000) * 1000};

    evtimer_add(v->ev_write, &tv);
}

/*
 * A new document: the state file now, when its last write is old enough or
 * the file would fall too many generations behind what consumers get (a
 * restart resumes HC_VANTAGE_STATE_LAG_MAX past the file's generation);
 * otherwise once the interval has passed, with the latest document then.
 */
static void state_file_due(struct hc_vantage *v)
{
    uint64_t now = now_ms(v);

    if (v->conf->health.state_file == NULL)
        return;
    if (!v->written_once || now - v->written_ms >= HC_VANTAGE_STATE_WRITE_MS ||
        hc_report_generation(v->report) - v->written_gen >= HC_VANTAGE_STATE_LAG_MAX) {
        write_state(v);
        return;
    }
    if (v->write_pending)
        return;
    v->write_pending = true;
    v->write_due_ms = v->written_ms + HC_VANTAGE_STATE_WRITE_MS;
    arm_write(v, v->write_due_ms - now);
}

uint64_t hc_vantage_change_count(const struct hc_vantage *v)
{
    return v->changes;
}

void hc_vantage_flush(struct hc_vantage *v)
{
    if (v->write_pending || hc_report_generation(v->report) != v->written_gen) {
        if (v->ev_write != NULL)
            evtimer_del(v->ev_write);
        write_state_charged(v);
    }
}

uint64_t hc_vantage_resume_generation(uint64_t file_gen)
{
    if (file_gen == 0)
        return 0;
    return file_gen < (uint64_t)INT64_MAX - HC_VANTAGE_STATE_LAG_MAX
               ? file_gen + HC_VANTAGE_STATE_LAG_MAX
               : (uint64_t)INT64_MAX;
}

void hc_vantage_rebuild(struct hc_vantage *v)
{
    uint64_t c0;

    if (!members_synced(v))
        return;
    c0 = v->cpu_clock(v->clock_arg);
    rebuild(v);
    budget_charge(v, v->cpu_clock(v->clock_arg) - c0);
}

static void rebuild(struct hc_vantage *v)
{
    bool changed = false;
    int rc;

    v->rebuilds++;
    rc = hc_report_update(v->report, v->conf, v->clusters, v->probes, time(NULL), &changed);
    if (rc != CM_OK || !changed)
        return;
    v->documents++;
    cm_log_debug("state document generation=%" PRIu64, hc_report_generation(v->report));
    state_file_due(v);
    offer(v);
}

static void arm_timer(struct hc_vantage *v, uint64_t in_ms)
{
    struct timeval tv = {(time_t)(in_ms / 1000), (suseconds_t)(in_ms % 1000) * 1000};

    evtimer_add(v->ev_debounce, &tv);
}

void hc_vantage_changed(struct hc_vantage *v)
{
    uint64_t now, delay;

    v->changes++;
    v->gathered++;
    if (v->armed)
        return;
    now = now_ms(v);
    delay = rebuild_delay_ms(v, now);
    v->armed = true;
    v->first_ms = now;
    v->due_ms = now + delay;
    arm_timer(v, delay);
}

void hc_vantage_poll(struct hc_vantage *v)
{
    uint64_t now = now_ms(v);

    if (v->write_pending) {
        if (now >= v->write_due_ms)
            write_state_charged(v);
        else
            arm_write(v, v->write_due_ms - now); /* the timer may round down */
    }
    if (!v->armed)
        return;
    /* A burst (many changes in the debounce) gathers longer: one document for all of it. */
    if (now >= v->due_ms && v->gathered >= HC_VANTAGE_BURST_CHANGES &&
        v->due_ms < v->first_ms + HC_VANTAGE_BURST_GATHER_MS) {
        v->due_ms = v->first_ms + HC_VANTAGE_BURST_GATHER_MS;
        v->bursts++;
    }
    if (now < v->due_ms) {
        arm_timer(v, v->due_ms - now); /* the timer may round down; come back */
        return;
    }
    v->armed = false;
    v->gathered = 0;
    evtimer_del(v->ev_debounce);
    hc_vantage_rebuild(v);
}

static void on_debounce(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    hc_vantage_poll(arg);
}

static void on_changed(void *arg)
{
    hc_vantage_changed(arg);
}

/*
 * The only text that moves with the clock is "API ... for N min" of a member
 * whose API is not ok: with every member ok the tick has nothing to do (a
 * rebuild of a large federation costs real CPU).
 */
void hc_vantage_tick(struct hc_vantage *v)
{
    for (size_t i = 0; v->clusters != NULL && i < v->conf->member_count; i++) {
        if (v->clusters[i] != NULL && hc_cluster_api(v->clusters[i]) != HC_API_OK) {
            hc_vantage_rebuild(v);
            return;
        }
    }
    if (!v->synced)
        hc_vantage_rebuild(v); /* the startup grace may have run out */
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    hc_vantage_tick(arg);
}

const char *hc_vantage_state_text(const struct hc_vantage *v, size_t *len)
{
    return hc_report_text(v->report, len);
}

json_t *hc_vantage_state(const struct hc_vantage *v)
{
    json_t *doc = hc_report_doc(v->report);

    return doc != NULL ? json_incref(doc) : NULL;
}

void hc_vantage_get_stats(const struct hc_vantage *v, struct hc_vantage_stats *out)
{
    *out = (struct hc_vantage_stats){.generation = hc_report_generation(v->report),
                                     .rebuilds = v->rebuilds,
                                     .documents = v->documents,
                                     .offers = v->offers,
                                     .writes = v->writes,
                                     .write_errors = v->write_errors,
                                     .written_generation = v->written_gen,
                                     .write_pending = v->write_pending,
                                     .write_due_ms = v->write_due_ms,
                                     .synced = v->synced,
                                     .armed = v->armed,
                                     .due_ms = v->due_ms,
                                     .rebuild_cpu_us = v->rebuild_cpu_us,
                                     .postponed = v->postponed,
                                     .bursts = v->bursts,
                                     .budget_us = v->budget_us};
}

/* ---- metrics ---- */

static void probe_metrics(const struct hc_vantage *v, struct cm_buf *out)
{
    struct hc_probes_stats st;

    hc_probes_get_stats(v->probes, &st);
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

/* Member @i's cluster, or NULL (not started, or the member has none). */
static const struct hc_cluster *member_cluster(const struct hc_vantage *v, size_t i)
{
    return v->clusters != NULL ? v->clusters[i] : NULL;
}

void hc_vantage_metrics(const struct hc_vantage *v, struct cm_buf *out)
{
    static const char *const names[][2] = {
        {"fedgslb_health_watch_events_total", "Watch events applied"},
        {"fedgslb_health_watch_bookmarks_total", "Watch bookmarks received"},
        {"fedgslb_health_watch_lists_total", "Complete lists (initial and relists)"},
        {"fedgslb_health_watch_relists_total", "Lists after the first one"},
        {"fedgslb_health_watch_errors_total", "List and watch failures"},
    };
    struct cm_buf lb;
    uint64_t patches, wholes;

    hc_report_write_counts(v->report, &patches, &wholes);
    {
        /* The vantage's own counters and gauges, without labels. */
        const struct {
            const char *name, *type, *help;
            double value;
        } one[] = {
            {"fedgslb_health_generation", "gauge", "State document generation",
             (double)hc_report_generation(v->report)},
            {"fedgslb_health_state_writes_total", "counter", "State file writes",
             (double)v->writes},
            {"fedgslb_health_state_whole_writes_total", "counter",
             "State file writes of the whole file (the others patch the slots that changed)",
             (double)wholes},
            {"fedgslb_health_state_patch_bytes_total", "counter",
             "Bytes of services' slots the state file patches wrote",
             (double)hc_report_patch_bytes(v->report)},
            {"fedgslb_health_rebuilds_total", "counter",
             "State document updates run (after the members synced)", (double)v->rebuilds},
            {"fedgslb_health_documents_total", "counter", "Updates that gave a new generation",
             (double)v->documents},
            {"fedgslb_health_rebuild_cpu_seconds_total", "counter",
             "CPU spent updating, writing and offering the state document",
             (double)v->rebuild_cpu_us / 1e6},
            {"fedgslb_health_rebuilds_postponed_total", "counter",
             "Updates run later than the debounce because rebuilds used their CPU budget",
             (double)v->postponed},
            {"fedgslb_health_rebuild_bursts_total", "counter",
             "Updates that gathered a burst of changes for longer than the debounce",
             (double)v->bursts},
        };

        for (size_t i = 0; i < sizeof(one) / sizeof(one[0]); i++) {
            cm_metrics_family(out, one[i].name, one[i].type, one[i].help);
            cm_metrics_sample(out, one[i].name, NULL, one[i].value);
        }
    }
    cm_metrics_family(out, "fedgslb_health_member_api_ok", "gauge", "1 when the member API is ok");
    cm_buf_init(&lb, 4096);
    for (size_t i = 0; i < v->conf->member_count; i++) {
        cm_buf_reset(&lb);
        cm_metrics_label(&lb, "member", v->conf->members[i].name);
        cm_metrics_sample(out, "fedgslb_health_member_api_ok", cm_buf_cstr(&lb),
                          member_cluster(v, i) != NULL &&
                              hc_cluster_api(member_cluster(v, i)) == HC_API_OK);
    }
    cm_metrics_family(out, "fedgslb_health_api_checks_total", "counter",
                      "Member API health checks (/readyz or /healthz) by result");
    for (size_t i = 0; i < v->conf->member_count; i++) {
        struct hc_cluster_stats st;

        if (member_cluster(v, i) == NULL)
            continue;
        hc_cluster_get_stats(member_cluster(v, i), &st);
        for (int ok = 0; ok < 2; ok++) {
            cm_buf_reset(&lb);
            cm_metrics_label(&lb, "member", v->conf->members[i].name);
            cm_metrics_label(&lb, "result", ok ? "ok" : "failed");
            cm_metrics_sample(out, "fedgslb_health_api_checks_total", cm_buf_cstr(&lb),
                              (double)(ok ? st.readyz_ok : st.readyz_failed));
        }
    }
    for (size_t f = 0; f < sizeof(names) / sizeof(names[0]); f++) {
        cm_metrics_family(out, names[f][0], "counter", names[f][1]);
        for (size_t i = 0; i < v->conf->member_count; i++) {
            struct hc_cluster_stats st;

            if (member_cluster(v, i) == NULL)
                continue;
            hc_cluster_get_stats(member_cluster(v, i), &st);
            for (int k = 0; k < HC_K8S_KIND_COUNT; k++) {
                const struct hc_watch_stats *w = &st.watch[k];
                const uint64_t val[] = {w->events, w->bookmarks, w->lists, w->relists, w->errors};

                if (!st.watched[k])
                    continue;
                cm_buf_reset(&lb);
                cm_metrics_label(&lb, "member", v->conf->members[i].name);
                cm_metrics_label(&lb, "resource", hc_k8s_kind_name((enum hc_k8s_kind)k));
                cm_metrics_sample(out, names[f][0], cm_buf_cstr(&lb), (double)val[f]);
            }
        }
    }
    cm_buf_fini(&lb);
    probe_metrics(v, out);
    if (v->publish != NULL)
        hc_publish_metrics(v->publish, out);
    if (v->etcd != NULL)
        hc_etcdpub_metrics(v->etcd, out);
}

/* ---- members ---- */

/* Builds the cluster array for @conf from @targets (taken), reusing the
 * unchanged members of @old (moved out of it; NULL: nothing to reuse). */
static int make_clusters(struct hc_vantage *v, const struct cm_conf *conf,
                         const struct hc_cluster_params *params, struct hc_kube_target **targets,
                         struct hc_cluster **old, const struct cm_conf *old_conf,
                         struct hc_cluster ***out)
{
    struct hc_cluster **cs = calloc(conf->member_count + 1, sizeof(*cs));
    int rc = CM_OK;

    if (cs == NULL)
        rc = CM_ENOMEM;
    for (size_t i = 0; i < conf->member_count; i++) {
        const struct cm_conf_member *m = &conf->members[i];
        bool nodes = m->lb_mode == CM_LB_PROXY;
        int oi = old != NULL ? cm_conf_member_index(old_conf, m->name) : -1;

        if (rc != CM_OK) {
            hc_kube_target_free(targets[i]);
            continue;
        }
        if (oi >= 0 && old[oi] != NULL && hc_cluster_wants_nodes(old[oi]) == nodes &&
            same_params(params, &v->params) &&
            hc_kube_target_same(hc_cluster_target(old[oi]), targets[i])) {
            cs[i] = old[oi];
            old[oi] = NULL;
            hc_kube_target_free(targets[i]);
            continue;
        }
        cs[i] = hc_cluster_new(v->base, v->http, m->name, targets[i], nodes, params, on_changed, v);
        if (cs[i] != NULL && oi >= 0 && old[oi] != NULL) {
            cm_log_info("member=%s: kubeconfig, lb mode or health.api changed; restarting its "
                        "watches, keeping the last known data meanwhile",
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

static void free_targets(struct hc_kube_target **targets, size_t n)
{
    for (size_t i = 0; targets != NULL && i < n; i++)
        hc_kube_target_free(targets[i]);
    free(targets);
}

/* ---- registry members ---- */

static void reg_member_fini(struct reg_member *r)
{
    free(r->name);
    free(r->region);
    free(r->zone);
    hc_kube_target_free(r->t);
}

static long reg_find(const struct hc_vantage *v, const char *name)
{
    for (size_t i = 0; i < v->reg_count; i++) {
        if (strcmp(v->reg[i].name, name) == 0)
            return (long)i;
    }
    return -1;
}

/* Region and zone indexes of @r in @conf; false when they are gone. */
static bool reg_place(const struct reg_member *r, const struct cm_conf *conf, size_t *region,
                      int *zone)
{
    int ri = cm_conf_region_index(conf, r->region);

    *zone = -1;
    if (ri < 0)
        return false;
    *region = (size_t)ri;
    for (size_t z = 0; r->zone != NULL && z < conf->regions[ri].zone_count; z++) {
        if (strcmp(conf->regions[ri].zones[z], r->zone) == 0)
            *zone = (int)z;
    }
    return r->zone == NULL || *zone >= 0;
}

/* @loaded extended with the registry members (a new reference). */
static int effective_conf(const struct hc_vantage *v, struct cm_conf *loaded, struct cm_conf **out)
{
    struct cm_conf_member *m;

    *out = NULL;
    if (v->reg_count == 0) {
        *out = cm_conf_ref(loaded);
        return CM_OK;
    }
    m = calloc(v->reg_count, sizeof(*m));
    if (m == NULL)
        return CM_ENOMEM;
    for (size_t i = 0; i < v->reg_count; i++) {
        m[i].name = v->reg[i].name;
        (void)reg_place(&v->reg[i], loaded, &m[i].region, &m[i].zone); /* reg_keep checked */
    }
    *out = cm_conf_with_members(loaded, m, v->reg_count);
    free(m);
    return *out != NULL ? CM_OK : CM_ENOMEM;
}

/* Drops the registry members @conf configures itself or no longer places. */
static int reg_keep(struct hc_vantage *v, const struct cm_conf *conf)
{
    size_t k = 0, region;
    int zone;

    for (size_t i = 0; i < v->reg_count; i++) {
        struct reg_member *r = &v->reg[i];

        if (cm_conf_member_index(conf, r->name) >= 0) {
            cm_log_error("registry member %s dropped: the configuration has members.%s; a member "
                         "comes from members or from the registry, not both",
                         r->name, r->name);
        } else if (!reg_place(r, conf, &region, &zone)) {
            cm_log_error("registry member %s dropped: region %s%s%s is not in the configuration",
                         r->name, r->region, r->zone != NULL ? " zone " : "",
                         r->zone != NULL ? r->zone : "");
        } else {
            v->reg[k++] = *r;
            continue;
        }
        reg_member_fini(r);
    }
    v->reg_count = k;
    return CM_OK;
}

/* @targets (the loaded members', taken) extended with copies of the registry
 * members' for @eff. */
static int reg_targets(const struct hc_vantage *v, const struct cm_conf *loaded,
                       const struct cm_conf *eff, struct hc_kube_target ***targets)
{
    struct hc_kube_target **all = calloc(eff->member_count + 1, sizeof(*all));

    if (all == NULL)
        return CM_ENOMEM;
    memcpy(all, *targets, loaded->member_count * sizeof(*all));
    for (size_t i = loaded->member_count; i < eff->member_count; i++) {
        long r = reg_find(v, eff->members[i].name);

        all[i] = r >= 0 ? hc_kube_target_copy(v->reg[r].t) : NULL;
        if (all[i] == NULL) {
            free_targets(all + loaded->member_count, i - loaded->member_count);
            free(all);
            return CM_ENOMEM;
        }
    }
    free(*targets);
    *targets = all;
    return CM_OK;
}

/*
 * Switches to @conf (taken; the same members as v->conf, give or take
 * registry members): clusters are reused by name, except @fresh's (a new
 * or changed registry member), which starts with a copy of its target and the
 * last-known data of its previous cluster, if any. Clusters of members
 * @conf no longer has are stopped. On failure nothing changes.
 */
static int set_members(struct hc_vantage *v, struct cm_conf *conf, const char *fresh)
{
    struct hc_cluster **cs = calloc(conf->member_count + 1, sizeof(*cs));
    struct hc_cluster *made = NULL;
    int rc = cs != NULL ? CM_OK : CM_ENOMEM;

    for (size_t i = 0; rc == CM_OK && i < conf->member_count; i++) {
        const char *name = conf->members[i].name;
        int oi = cm_conf_member_index(v->conf, name);
        struct hc_cluster *old = oi >= 0 ? v->clusters[oi] : NULL;
        long r = reg_find(v, name);

        if (old != NULL && (fresh == NULL || strcmp(name, fresh) != 0)) {
            cs[i] = old;
            continue;
        }
        made = r >= 0 ? hc_cluster_new(v->base, v->http, name, hc_kube_target_copy(v->reg[r].t),
                                       false, &v->params, on_changed, v)
                      : NULL;
        if (made != NULL && old != NULL)
            hc_cluster_take_caches(made, old);
        if (made == NULL || hc_cluster_start(made) != CM_OK)
            rc = CM_ENOMEM;
        cs[i] = made;
    }
    if (rc != CM_OK) {
        hc_cluster_free(made);
        free(cs);
        cm_conf_unref(conf);
        return rc;
    }
    for (size_t j = 0; j < v->conf->member_count; j++) {
        int ni = cm_conf_member_index(conf, v->conf->members[j].name);

        if (ni < 0 || cs[ni] != v->clusters[j])
            hc_cluster_free(v->clusters[j]);
    }
    free(v->clusters);
    v->clusters = cs;
    cm_conf_unref(v->conf);
    v->conf = conf;
    return CM_OK;
}

static bool same_place(const struct reg_member *r, const struct cm_conf *conf,
                       const struct cm_conf_member *m)
{
    const struct cm_conf_region *rg = &conf->regions[m->region];

    return strcmp(r->region, rg->name) == 0 &&
           (m->zone < 0 ? r->zone == NULL
                        : r->zone != NULL && strcmp(r->zone, rg->zones[m->zone]) == 0);
}

/* A registry entry for @m reached through @t (taken on success). */
static int reg_make(const struct cm_conf *loaded, const struct cm_conf_member *m,
                    struct hc_kube_target *t, struct reg_member *out)
{
    const struct cm_conf_region *rg = &loaded->regions[m->region];

    *out = (struct reg_member){0};
    out->name = strdup(m->name);
    out->region = strdup(rg->name);
    out->zone = m->zone >= 0 ? strdup(rg->zones[m->zone]) : NULL;
    if (out->name == NULL || out->region == NULL || (m->zone >= 0 && out->zone == NULL)) {
        reg_member_fini(out);
        return CM_ENOMEM;
    }
    out->t = t;
    return CM_OK;
}

/*
 * Puts @nr in v->reg: in place of entry @at, whose old value goes to *old,
 * or (@at < 0) as a new entry in name order. Undone by reg_unput().
 */
static int reg_put(struct hc_vantage *v, long at, const struct reg_member *nr,
                   struct reg_member *old)
{
    struct reg_member *grown;
    size_t k;

    if (at >= 0) {
        *old = v->reg[at];
        v->reg[at] = *nr;
        return CM_OK;
    }
    grown = realloc(v->reg, (v->reg_count + 1) * sizeof(*v->reg));
    if (grown == NULL)
        return CM_ENOMEM;
    v->reg = grown;
    for (k = v->reg_count; k > 0 && strcmp(v->reg[k - 1].name, nr->name) > 0; k--)
        v->reg[k] = v->reg[k - 1];
    v->reg[k] = *nr;
    v->reg_count++;
    return CM_OK;
}

/* reg_put() undone: the new entry of @name freed, the old one (@at >= 0) back. */
static void reg_unput(struct hc_vantage *v, const char *name, long at, const struct reg_member *old)
{
    long k = reg_find(v, name);

    reg_member_fini(&v->reg[k]);
    if (at >= 0) {
        v->reg[k] = *old;
        return;
    }
    memmove(&v->reg[k], &v->reg[k + 1], (v->reg_count - (size_t)k - 1) * sizeof(*v->reg));
    v->reg_count--;
}

int hc_vantage_add_member(struct hc_vantage *v, const struct cm_conf_member *m,
                          struct hc_kube_target *t)
{
    const struct cm_conf_region *rg =
        m->region < v->loaded->region_count ? &v->loaded->regions[m->region] : NULL;
    struct reg_member nr, old = {0};
    struct cm_conf *conf = NULL;
    long at = reg_find(v, m->name);
    bool unchanged = false;
    int rc = CM_OK;

    if (v->clusters == NULL || rg == NULL || (m->zone >= 0 && (size_t)m->zone >= rg->zone_count))
        rc = CM_EINVAL;
    else if (cm_conf_member_index(v->loaded, m->name) >= 0)
        rc = CM_EEXIST;
    else if (at >= 0 && same_place(&v->reg[at], v->loaded, m) &&
             hc_kube_target_same(v->reg[at].t, t))
        unchanged = true;
    else
        rc = reg_make(v->loaded, m, t, &nr);
    if (rc != CM_OK || unchanged) {
        hc_kube_target_free(t);
        return rc;
    }
    rc = reg_put(v, at, &nr, &old);
    if (rc != CM_OK) {
        reg_member_fini(&nr);
        return rc;
    }
    rc = effective_conf(v, v->loaded, &conf);
    if (rc == CM_OK)
        rc = set_members(v, conf, m->name); /* takes conf */
    if (rc != CM_OK) {
        reg_unput(v, m->name, at, &old);
        cm_log_error("member=%s: cannot start its watches: out of memory", m->name);
        return rc;
    }
    cm_log_info("member=%s: %s the registry (region %s%s%s)", m->name,
                at < 0 ? "joined from" : "changed in", rg->name, m->zone >= 0 ? ", zone " : "",
                m->zone >= 0 ? rg->zones[m->zone] : "");
    reg_member_fini(&old);
    hc_vantage_changed(v);
    return CM_OK;
}

int hc_vantage_remove_member(struct hc_vantage *v, const char *name)
{
    struct cm_conf *conf = NULL;
    struct reg_member gone;
    long at = reg_find(v, name);
    int rc;

    if (at < 0)
        return CM_ENOENT;
    gone = v->reg[at];
    memmove(&v->reg[at], &v->reg[at + 1], (v->reg_count - (size_t)at - 1) * sizeof(*v->reg));
    v->reg_count--;
    rc = effective_conf(v, v->loaded, &conf);
    if (rc == CM_OK && v->clusters != NULL)
        rc = set_members(v, conf, NULL);
    else if (rc == CM_OK) {
        cm_conf_unref(v->conf);
        v->conf = conf;
    }
    if (rc != CM_OK) {
        /* Put it back: its cluster is still running. */
        memmove(&v->reg[at + 1], &v->reg[at], (v->reg_count - (size_t)at) * sizeof(*v->reg));
        v->reg[at] = gone;
        v->reg_count++;
        return rc;
    }
    cm_log_info("member=%s: left the registry; its answers go with the next document", name);
    reg_member_fini(&gone);
    hc_vantage_changed(v);
    return CM_OK;
}

void hc_vantage_hold_for_registry(struct hc_vantage *v, bool pending)
{
    bool was = v->registry_pending;

    v->registry_pending = pending;
    if (was && !pending)
        hc_vantage_changed(v);
}

void hc_vantage_set_services(struct hc_vantage *v, const struct hc_fedsvcs *s)
{
    hc_report_set_services(v->report, s);
    hc_vantage_changed(v);
}

size_t hc_vantage_registry_members(const struct hc_vantage *v)
{
    return v->reg_count;
}

/* ---- lifecycle ---- */

struct hc_vantage *hc_vantage_new(struct event_base *base, struct hc_http *http,
                                  struct cm_conf *conf, struct hc_report *report,
                                  const struct hc_vantage_params *p)
{
    struct hc_vantage *v = calloc(1, sizeof(*v));
    struct hc_probes_params pp;

    if (v == NULL) {
        hc_report_free(report);
        return NULL;
    }
    v->base = base;
    v->http = http;
    v->loaded = cm_conf_ref(conf);
    v->conf = cm_conf_ref(conf);
    v->report = report;
    v->clock = p != NULL && p->clock != NULL ? p->clock : mono_clock;
    v->cpu_clock = p != NULL && p->cpu_clock != NULL ? p->cpu_clock : thread_cpu;
    v->clock_arg = p != NULL ? p->clock_arg : NULL;
    v->started_ms = now_ms(v);
    v->budget_us = HC_VANTAGE_REBUILD_BURST_US;
    v->budget_at_ms = v->started_ms;
    params_from_conf(&v->params, conf);
    hc_probes_params_default(&pp);
    pp.max_in_flight = conf->health.max_probes;
    if (conf->health.probe_source != NULL)
        cm_strlcpy(pp.source, conf->health.probe_source, sizeof(pp.source));
    v->probes = hc_probes_new(base, http, &pp, on_changed, v);
    v->publish = make_publish(v, conf);
    v->etcd = conf->etcd.present ? hc_etcdpub_new(base, http, conf) : NULL;
    v->ev_tick = event_new(base, -1, EV_PERSIST, on_tick, v);
    v->ev_debounce = evtimer_new(base, on_debounce, v);
    v->ev_write = evtimer_new(base, on_debounce, v);
    v->written_gen = hc_report_generation(report);
    if (v->probes == NULL || (conf->health.publish_to_count > 0 && v->publish == NULL) ||
        (conf->etcd.present && v->etcd == NULL) || v->ev_tick == NULL || v->ev_debounce == NULL ||
        v->ev_write == NULL) {
        hc_vantage_free(v);
        return NULL;
    }
    return v;
}

void hc_vantage_free(struct hc_vantage *v)
{
    if (v == NULL)
        return;
    free_clusters(v->clusters, v->conf->member_count);
    hc_publish_free(v->publish);
    hc_etcdpub_free(v->etcd);
    hc_probes_free(v->probes);
    hc_report_free(v->report);
    if (v->ev_tick != NULL)
        event_free(v->ev_tick);
    if (v->ev_debounce != NULL)
        event_free(v->ev_debounce);
    if (v->ev_write != NULL)
        event_free(v->ev_write);
    for (size_t i = 0; i < v->reg_count; i++)
        reg_member_fini(&v->reg[i]);
    free(v->reg);
    cm_conf_unref(v->conf);
    cm_conf_unref(v->loaded);
    free(v);
}

int hc_vantage_start(struct hc_vantage *v, struct hc_kube_target **targets)
{
    struct timeval one_s = {1, 0};
    int rc;

    if (v->conf != v->loaded) {
        free_targets(targets, v->loaded->member_count);
        return CM_EINVAL; /* registry members come after the start */
    }
    if (event_add(v->ev_tick, &one_s) != 0) {
        free_targets(targets, v->conf->member_count);
        return CM_ENOMEM;
    }
    rc = make_clusters(v, v->conf, &v->params, targets, NULL, NULL, &v->clusters);
    if (rc != CM_OK)
        return rc;
    hc_vantage_rebuild(v);
    /* The document of the state file, until the first rebuild that differs:
     * consumers that restarted with us get our last word at once. */
    offer(v);
    return CM_OK;
}

int hc_vantage_reload(struct hc_vantage *v, struct cm_conf *conf, struct hc_kube_target **targets)
{
    struct hc_cluster_params params;
    struct hc_cluster **cs = NULL;
    struct cm_conf *eff = NULL;
    int rc;

    params_from_conf(&params, conf);
    /* Registry members stay unless the new configuration takes their name
     * or their place; their clusters get copies of their targets. */
    rc = reg_keep(v, conf);
    if (rc == CM_OK)
        rc = effective_conf(v, conf, &eff);
    if (rc == CM_OK)
        rc = reg_targets(v, conf, eff, &targets);
    if (rc != CM_OK) {
        cm_conf_unref(eff);
        free_targets(targets, conf->member_count);
        return rc;
    }
    rc = make_clusters(v, eff, &params, targets, v->clusters, v->conf, &cs);
    if (rc != CM_OK) {
        cm_conf_unref(eff);
        return rc;
    }
    free_clusters(v->clusters, v->conf->member_count); /* the members not reused */
    v->clusters = cs;
    v->params = params;
    /* Targets, token or interval may have changed: a new publisher gets the
     * current document at once. */
    hc_probes_set_source(v->probes, conf->health.probe_source);
    hc_publish_free(v->publish);
    v->publish = make_publish(v, conf);
    if (conf->health.publish_to_count > 0 && v->publish == NULL)
        cm_log_error("reload: cannot create the publisher: out of memory");
    if (conf->etcd.present != (v->etcd != NULL))
        cm_log_warn("reload: the etcd section came or went; the distributed mode needs a "
                    "restart");
    cm_conf_unref(v->conf);
    v->conf = eff;
    cm_conf_unref(v->loaded);
    v->loaded = cm_conf_ref(conf);
    hc_vantage_rebuild(v);
    offer(v);
    return CM_OK;
}
