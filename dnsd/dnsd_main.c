/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dnsd_main.c -- fedgslb-dnsd: command line, startup, reload and stop.
 *
 * The main thread owns the configuration, the zone, the state store, the
 * control API and the current view; the workers (dns_server) only ever see
 * views. Every change (state push, drain, vantage expiry, SIGHUP) builds a
 * complete new view first and hands it over only when the build succeeded,
 * so a bad input never takes the old answers away. Sockets stay open across
 * reloads: no query is dropped.
 *
 * The GeoIP database (dnsd.geoip) is opened synchronously at start (and by
 * --check-config); after that, SIGHUP and a replaced file (checked on the 1 s
 * tick) reopen and compile it on a build thread, which hands the result back
 * through an event: the control API and the view builds never wait for a
 * million-network walk. A file that fails keeps the previous database.
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "common/cm_conf.h"
#include "common/cm_daemon.h"
#include "common/cm_err.h"
#include "common/cm_etcd_consumer.h"
#include "common/cm_file.h"
#include "common/cm_log.h"
#include "common/cm_net.h"
#include "common/cm_nofile.h"
#include "common/cm_opts.h"
#include "common/cm_priv.h"
#include "common/cm_time.h"
#include "dnsd/dns_ctl.h"
#include "dnsd/dns_fed.h"
#include "dnsd/dns_geo.h"
#include "dnsd/dns_qlog.h"
#include "dnsd/dns_server.h"
#include "dnsd/dns_state.h"
#include "dnsd/dns_view.h"
#include "dnsd/dns_zone.h"

#ifndef FEDGSLB_VERSION
#define FEDGSLB_VERSION "0.1.0"
#endif

#define ERR_MAX 1024

/* One reopen of the GeoIP database on the build thread. */
struct geo_job {
    pthread_t thread;
    struct cm_conf *conf; /* reference: the conf to compile for */
    char *path;           /* owned */
    struct dns_geodb *db; /* result, owned until taken */
    struct dns_geo *geo;  /* result, owned until taken */
    struct event *done;   /* borrowed: activated when the thread ends */
    int rc;
    uint64_t compile_us;
    char err[ERR_MAX];
};

struct dnsd {
    const char *config_path;
    const char *instance;       /* --instance / FEDGSLB_INSTANCE, NULL = none */
    struct cm_conf *conf;       /* reference: the configuration in service */
    struct dns_zone *zone;      /* reference: the zone in service */
    struct dns_zone *next_zone; /* during a reload: the zone views are built with */
    struct dns_state *state;    /* owned */
    struct dns_view *view;      /* reference: the view the workers were last handed */
    uint64_t serial;
    struct dns_server *server; /* owned; NULL in --check-config */
    struct dns_ctl *ctl;       /* owned; NULL when dnsd.control is absent */
    struct dns_ctl_env env;
    struct event_base *base;    /* owned */
    struct cm_daemon_events ev; /* signals and the 1 s tick */
    struct dns_geodb *geodb;    /* reference: the GeoIP database in service, NULL = none */
    struct dns_geo *geo;        /* reference: the client lookup of the view in service */
    struct geo_job *job;        /* owned: the reopen running, NULL when none */
    bool job_again;             /* another reopen was asked for while one ran */
    struct event *ev_geo;       /* owned: the job's "done" */
    struct stat geo_failed;     /* the file that failed last (not retried until it changes) */
    bool geo_failed_valid;
    struct cm_priv priv;           /* dnsd.user / dnsd.group, resolved at start */
    struct event *ev_qlog;         /* owned: drains the query log's rings; NULL when it is off */
    struct cm_etcd_consumer *etcd; /* owned; the distributed mode only */
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: fedgslb-dnsd --config FILE [--instance NAME] [--check-config]\n"
            "                    [--log-format text|json] [--log-level error|warn|info|debug]\n"
            "                    [--foreground]\n"
            "       fedgslb-dnsd --help | --version\n"
            "\n"
            "Authoritative DNS server for a federation zone. Runs in the foreground and\n"
            "logs to stderr. SIGHUP reloads the configuration and zone; SIGTERM stops.\n");
}

/* The database that goes with @conf: the one held, if @conf names its file. */
static struct dns_geodb *geodb_for(const struct dnsd *d, const struct cm_conf *conf)
{
    const struct cm_conf_geoip *g = &conf->dnsd.geoip;

    if (!g->present || d->geodb == NULL || strcmp(g->path, dns_geodb_path(d->geodb)) != 0)
        return NULL;
    return d->geodb;
}

/* A reference to the client lookup for @conf: the one in service when it fits,
 * else compiled now (client_networks and the database held). */
static int geo_for(struct dnsd *d, struct cm_conf *conf, struct dns_geo **out, char *err,
                   size_t errlen)
{
    struct dns_geodb *db = geodb_for(d, conf);
    int rc;

    /* A SIGHUP that leaves regions, client_networks and geo_map alone keeps
     * the table: the main loop does not compile a million networks again
     * (the build thread reopens the file right after). */
    if (d->geo != NULL && d->geo->db == db && dns_geo_conf_equal(d->geo->conf, conf)) {
        *out = dns_geo_ref(d->geo);
        return CM_OK;
    }
    rc = dns_geo_build(conf, db, out, err, errlen);
    if (rc == CM_OK && db != NULL)
        cm_log_info("geoip: compiled %s: %zu networks in the table, %zu inside client_networks, "
                    "%zu left to dnsd.region, %zu places, %zu KiB, build_ms=%" PRIu64,
                    dns_geodb_path(db), (*out)->inserted, (*out)->covered, (*out)->unplaced,
                    (*out)->place_count, dns_geo_memory(*out) / 1024, (*out)->build_us / 1000);
    return rc;
}

/* dns_state's apply: builds the view for a candidate and puts it in service. */
static int apply_view(void *arg, struct cm_conf *conf, const struct cm_merged *merged,
                      const struct cm_intent_view *intents, char *err, size_t errlen)
{
    struct dnsd *d = arg;
    struct dns_zone *zone = d->next_zone != NULL ? d->next_zone : d->zone;
    struct dns_view *view = NULL;
    struct dns_geo *geo = NULL;
    uint64_t t0 = cm_mono_us(), dt;
    struct dns_fed_stats st;
    int rc;

    rc = geo_for(d, conf, &geo, err, errlen);
    if (rc == CM_OK)
        rc = dns_view_next(d->view, conf, zone, geo, merged, intents, d->serial + 1, &view, err,
                           errlen);
    if (rc != CM_OK) {
        dns_geo_unref(geo);
        cm_log_warn("view build failed: %s; keeping view serial=%" PRIu64, err, d->serial);
        return rc;
    }
    dt = cm_mono_us() - t0;
    d->serial++;
    dns_fed_stats(view->fed, &st);
    /* A push that repeats what is held rebuilds the same table: debug then. */
    cm_log_at(d->state != NULL && dns_state_is_quiet(d->state) ? CM_LOG_DEBUG : CM_LOG_INFO,
              "view built: serial=%" PRIu64 " fed_names=%zu zone_names=%zu services=%zu "
              "services_built=%zu build_us=%" PRIu64,
              view->serial, dns_fed_name_count(view->fed), dns_zone_name_count(view->zone),
              dns_fed_service_count(view->fed), st.services_built, dt);
    if (d->server != NULL)
        dns_server_set_view(d->server, view);
    dns_view_unref(d->view);
    d->view = view;
    d->env.view = view;
    dns_geo_unref(d->geo);
    d->geo = geo;
    d->env.table_builds++;
    d->env.table_builds_incr += st.services_shared > 0;
    d->env.table_svcs_built += st.services_built;
    d->env.last_build_s = (double)dt / 1e6;
    return CM_OK;
}

/* Configuration (for @instance) + zone; "file: path: reason" in @err on failure. */
static int load_conf_zone(const char *path, const char *instance, struct cm_conf **conf_out,
                          struct dns_zone **zone_out, char *err, size_t errlen)
{
    struct cm_conf *conf = NULL;
    int rc;

    rc = cm_conf_load_instance(path, CM_INSTANCE_NAME_SERVER, instance, &conf, err, errlen);
    if (rc != CM_OK)
        return rc;
    cm_conf_log_warnings(conf);
    if (!conf->dnsd.present) {
        snprintf(err, errlen, "%s: dnsd: section missing", path);
        cm_conf_unref(conf);
        return CM_ECONFIG;
    }
    rc = dns_zone_load(conf->dnsd.zone_file, conf->zone, zone_out, err, errlen);
    if (rc != CM_OK) {
        cm_conf_unref(conf);
        return rc;
    }
    *conf_out = conf;
    return CM_OK;
}

/* The state file's directory must take writes; --check-config fails without it. */
static int check_state_dir(const char *path, bool check, char *err, size_t errlen)
{
    int rc;

    if (path == NULL)
        return CM_OK;
    rc = cm_file_check_dir(path, err, errlen);
    if (rc != CM_OK && !check) {
        cm_log_warn("state file: %s", err);
        rc = CM_OK;
    }
    return rc;
}

static void geodb_log(const struct dns_geodb *db, const char *what)
{
    size_t nets, recs, bytes;
    uint64_t us;

    dns_geodb_stats(db, &nets, &recs, &bytes, &us);
    cm_log_info("geoip: %s %s: %zu networks, %zu records, %zu KiB, load_ms=%" PRIu64, what,
                dns_geodb_path(db), nets, recs, bytes / 1024, us / 1000);
}

/* At start and --check-config: a required database must open; else a warning. */
static int geoip_open_start(struct dnsd *d, char *err, size_t errlen)
{
    const struct cm_conf_geoip *g = &d->conf->dnsd.geoip;
    char why[ERR_MAX / 2];
    int rc;

    if (!g->present)
        return CM_OK;
    rc = dns_geodb_open(g->path, &d->geodb, why, sizeof(why));
    if (rc == CM_OK) {
        geodb_log(d->geodb, "opened");
        return CM_OK;
    }
    if (g->required) {
        snprintf(err, errlen, "%s: dnsd.geoip: %s", d->conf->path, why);
        return rc;
    }
    cm_log_warn("geoip: %s (dnsd.geoip.required is false: clients fall back to client_networks "
                "and dnsd.region)",
                why);
    return CM_OK;
}

/* Loads everything and builds the first view; --check-config stops here. */
static int dnsd_prepare(struct dnsd *d, bool check, char *err, size_t errlen)
{
    int rc;

    rc = load_conf_zone(d->config_path, d->instance, &d->conf, &d->zone, err, errlen);
    if (rc != CM_OK)
        return rc;
    if (d->conf->dnsd.group != NULL && d->conf->dnsd.user == NULL) {
        snprintf(err, errlen, "%s: dnsd.group: needs dnsd.user", d->config_path);
        return CM_ECONFIG;
    }
    rc = cm_priv_lookup(d->conf->dnsd.user, d->conf->dnsd.group, "dnsd", &d->priv, err, errlen);
    if (rc != CM_OK)
        return rc;
    d->state = dns_state_new(d->conf, d->conf->dnsd.state_file, apply_view, d);
    if (d->state == NULL) {
        return cm_err_oom(err, errlen, NULL);
    }
    rc = check_state_dir(d->conf->dnsd.state_file, check, err, errlen);
    if (rc == CM_OK)
        rc = dns_state_load(d->state, cm_mono_ms(), cm_wall_s(), check, err, errlen);
    if (rc == CM_ENOMEM)
        snprintf(err, errlen, "state file: %s", cm_strerror(rc));
    if (rc != CM_OK)
        return rc;
    d->env.state = d->state;
    rc = geoip_open_start(d, err, errlen);
    if (rc != CM_OK)
        return rc;
    return apply_view(d, dns_state_conf(d->state), dns_state_merged(d->state),
                      dns_state_intent_view(d->state), err, errlen);
}

/*
 * The descriptor budget: the TCP tables, the control API and a reserve must
 * fit in RLIMIT_NOFILE, or an exhausted table would starve the control API
 * under a flood. Starting raises the soft limit to the hard one first;
 * --check-config checks against the hard limit (what a start would get).
 */
static int dnsd_check_nofile(const struct dnsd *d, bool starting, char *err, size_t errlen)
{
    char why[256];
    uint64_t need;

    need = dns_server_nofile_need(d->conf, why, sizeof(why));
    return cm_nofile_check(d->conf->path, "dnsd.tcp_max_conns", why, need, starting, err, errlen);
}

static bool control_equal(const struct cm_conf_control *a, const struct cm_conf_control *b)
{
    return a->enabled == b->enabled &&
           (!a->enabled || (a->listen.len == b->listen.len &&
                            memcmp(&a->listen.ss, &b->listen.ss, a->listen.len) == 0));
}

static bool str_equal(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool exempt_equal(const struct cm_conf_dnsd_rrl *a, const struct cm_conf_dnsd_rrl *b)
{
    if (a->exempt_count != b->exempt_count)
        return false;
    for (size_t i = 0; i < a->exempt_count; i++) {
        if (strcmp(a->exempt[i], b->exempt[i]) != 0)
            return false;
    }
    return true;
}

/* Settings fixed at start: warn that changing them needs a restart. */
static void reload_warn_fixed(const struct dnsd *d, const struct cm_conf *nconf)
{
    const struct cm_conf_dnsd *o = &d->conf->dnsd, *n = &nconf->dnsd;

    if (d->server != NULL && !dns_server_conf_matches(d->server, nconf))
        cm_log_warn("reload: dnsd.listen or dnsd.workers changed; this needs a restart "
                    "(the old sockets stay open)");
    if (o->tcp_idle_timeout_ms != n->tcp_idle_timeout_ms || o->tcp_max_conns != n->tcp_max_conns ||
        o->tcp_max_conns_per_source != n->tcp_max_conns_per_source ||
        o->max_udp_size != n->max_udp_size)
        cm_log_warn("reload: dnsd.tcp_idle_timeout_ms, tcp_max_conns, tcp_max_conns_per_source "
                    "or max_udp_size changed; this needs a restart to take full effect");
    if (!control_equal(&o->control, &n->control))
        cm_log_warn("reload: dnsd.control.listen changed; this needs a restart");
    if (!str_equal(o->state_file, n->state_file))
        cm_log_warn("reload: dnsd.state_file changed; this needs a restart");
    if (!str_equal(o->user, n->user) || !str_equal(o->group, n->group))
        cm_log_warn("reload: dnsd.user or dnsd.group changed; this needs a restart");
    if (o->rrl.enabled != n->rrl.enabled ||
        (n->rrl.enabled &&
         (o->rrl.responses_per_second != n->rrl.responses_per_second ||
          o->rrl.slip != n->rrl.slip || o->rrl.window_s != n->rrl.window_s ||
          o->rrl.ipv4_prefix != n->rrl.ipv4_prefix || o->rrl.ipv6_prefix != n->rrl.ipv6_prefix ||
          o->rrl.table_size != n->rrl.table_size || !exempt_equal(&o->rrl, &n->rrl))))
        cm_log_warn("reload: dnsd.rrl changed; this needs a restart");
    if (o->packet_cache.entries != n->packet_cache.entries)
        cm_log_warn("reload: dnsd.packet_cache.entries changed; this needs a restart (the "
                    "workers keep their caches of %u entries)",
                    o->packet_cache.entries);
}

/* Counted for fedgslb_reloads_total and fedgslb_reload_last_success. */
static void reload_failed(struct dnsd *d, const char *err)
{
    d->env.reloads_failed++;
    d->env.reload_last_failed = true;
    cm_log_error("reload failed: %s; keeping the old configuration", err);
}

/* dnsd.query_log.sample changes at once when the log was on at start. */
static void query_log_reload(struct dnsd *d, const struct cm_conf *nconf)
{
    const struct cm_conf_dnsd_query_log *o = &d->conf->dnsd.query_log;
    const struct cm_conf_dnsd_query_log *n = &nconf->dnsd.query_log;
    struct dns_qlog *ql = d->server != NULL ? dns_server_qlog(d->server) : NULL;

    if (ql != NULL)
        dns_qlog_set_sample(ql, n->sample);
    else if (n->sample > 0 && cm_log_enabled(CM_LOG_DEBUG))
        cm_log_warn("reload: dnsd.query_log.sample was 0 at start; turning the query log on "
                    "needs a restart");
    if (ql != NULL && o->ring_size != n->ring_size)
        cm_log_warn("reload: dnsd.query_log.ring_size changed; this needs a restart");
}

static void dnsd_reload(struct dnsd *d)
{
    struct cm_conf *nconf = NULL;
    struct dns_zone *nzone = NULL;
    char err[ERR_MAX] = "";
    int rc;

    cm_log_info("reload: reading %s", d->config_path);
    d->env.reload_last_unix_s = (double)time(NULL);
    rc = load_conf_zone(d->config_path, d->instance, &nconf, &nzone, err, sizeof(err));
    if (rc != CM_OK) {
        reload_failed(d, err);
        return;
    }
    reload_warn_fixed(d, nconf);
    d->next_zone = nzone;
    rc = dns_state_set_conf(d->state, nconf, err, sizeof(err));
    d->next_zone = NULL;
    if (rc != CM_OK) {
        reload_failed(d, err);
        dns_zone_unref(nzone);
        cm_conf_unref(nconf);
        return;
    }
    if (d->ctl != NULL && dns_ctl_reload(d->ctl, &nconf->dnsd.control, err, sizeof(err)) != CM_OK)
        cm_log_warn("reload: control API settings not changed: %s", err);
    if (d->etcd != NULL)
        cm_etcd_consumer_reload(d->etcd, nconf);
    else if (nconf->etcd.present)
        cm_log_warn("reload: an etcd section appeared; the distributed mode needs a restart");
    dns_zone_unref(d->zone);
    d->zone = nzone;
    query_log_reload(d, nconf);
    cm_conf_unref(d->conf);
    d->conf = nconf;
    d->env.reloads_ok++;
    d->env.reload_last_failed = false;
    cm_log_info("reload done: serial=%" PRIu64 " services=%zu members=%zu zone_names=%zu",
                d->serial, nconf->service_count, nconf->member_count, dns_zone_name_count(nzone));
}

static void *geo_job_run(void *arg)
{
    struct geo_job *j = arg;
    uint64_t t0;

    j->rc = dns_geodb_open(j->path, &j->db, j->err, sizeof(j->err));
    if (j->rc == CM_OK) {
        t0 = cm_mono_us();
        j->rc = dns_geo_build(j->conf, j->db, &j->geo, j->err, sizeof(j->err));
        j->compile_us = cm_mono_us() - t0;
    }
    event_active(j->done, EV_READ, 0);
    return NULL;
}

static void geo_job_free(struct geo_job *j)
{
    if (j == NULL)
        return;
    dns_geo_unref(j->geo);
    dns_geodb_unref(j->db);
    cm_conf_unref(j->conf);
    free(j->path);
    free(j);
}

/* Reopens the configured database on the build thread (one at a time). */
static void geo_job_start(struct dnsd *d)
{
    const struct cm_conf_geoip *g = &d->conf->dnsd.geoip;
    struct geo_job *j;

    if (!g->present || d->ev_geo == NULL)
        return;
    if (d->job != NULL) {
        d->job_again = true;
        return;
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL || (j->path = strdup(g->path)) == NULL) {
        free(j);
        cm_log_error("geoip: %s: out of memory; keeping the previous database", g->path);
        return;
    }
    j->conf = cm_conf_ref(d->conf);
    j->done = d->ev_geo;
    if (pthread_create(&j->thread, NULL, geo_job_run, j) != 0) {
        cm_log_error("geoip: %s: cannot start the build thread; keeping the previous database",
                     g->path);
        geo_job_free(j);
        return;
    }
    d->job = j;
}

static void geo_failed_remember(struct dnsd *d, const char *path)
{
    d->geo_failed_valid = stat(path, &d->geo_failed) == 0;
}

/* The build thread is done: put its database in service, or keep the old one. */
static void on_geo_done(evutil_socket_t fd, short what, void *arg)
{
    struct dnsd *d = arg;
    struct geo_job *j = d->job;
    char err[ERR_MAX];

    (void)fd;
    (void)what;
    if (j == NULL)
        return;
    pthread_join(j->thread, NULL);
    d->job = NULL;
    if (j->rc != CM_OK) {
        d->env.geoip_reloads_failed++;
        cm_log_error("geoip: %s; keeping the previous database%s", j->err,
                     d->geodb != NULL ? "" : " (none: clients fall back to dnsd.region)");
        geo_failed_remember(d, j->path);
    } else if (j->conf == d->conf) {
        d->geo_failed_valid = false;
        geodb_log(j->db, "reloaded");
        dns_geodb_unref(d->geodb);
        d->geodb = j->db;
        j->db = NULL;
        dns_geo_unref(d->geo);
        d->geo = j->geo; /* geo_for() finds it: same conf, same database */
        j->geo = NULL;
        d->env.geoip_reloads_ok++;
        if (apply_view(d, dns_state_conf(d->state), dns_state_merged(d->state),
                       dns_state_intent_view(d->state), err, sizeof(err)) != CM_OK)
            cm_log_error("geoip: view not rebuilt: %s", err);
    }
    geo_job_free(j);
    if (d->job_again) {
        d->job_again = false;
        geo_job_start(d);
    }
}

/* The 1 s tick: the configured file replaced (or back after failing)? */
static void geo_tick(struct dnsd *d)
{
    const struct cm_conf_geoip *g = &d->conf->dnsd.geoip;
    struct stat st;

    if (!g->present || d->job != NULL || stat(g->path, &st) == -1)
        return;
    if (d->geo_failed_valid && st.st_ino == d->geo_failed.st_ino &&
        st.st_size == d->geo_failed.st_size && st.st_mtim.tv_sec == d->geo_failed.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == d->geo_failed.st_mtim.tv_nsec)
        return; /* the same file failed already */
    if (d->geodb != NULL && strcmp(dns_geodb_path(d->geodb), g->path) == 0 &&
        !dns_geodb_changed(d->geodb, g->path))
        return;
    cm_log_info("geoip: %s changed; reopening", g->path);
    geo_job_start(d);
}

static void on_reload(void *arg)
{
    struct dnsd *d = arg;

    dnsd_reload(d);
    geo_job_start(d); /* the database is reread on every SIGHUP */
}

static void on_stop(void *arg, int sig)
{
    struct dnsd *d = arg;

    cm_log_info("signal %d: stopping", sig);
    event_base_loopbreak(d->base);
}

static void on_tick(void *arg)
{
    struct dnsd *d = arg;

    dns_state_expire(d->state, cm_mono_ms());
    dns_state_intents_tick(d->state, cm_wall_s());
    dns_state_flush(d->state, cm_mono_ms(), false);
    geo_tick(d);
}

/* The query log's timer: the workers' records become log lines. */
static void on_qlog(evutil_socket_t fd, short what, void *arg)
{
    struct dnsd *d = arg;

    (void)fd;
    (void)what;
    dns_qlog_drain(dns_server_qlog(d->server), NULL, NULL);
}

/* The query log, when dns_server made one: its drain timer on the main loop. */
static int query_log_start(struct dnsd *d)
{
    const struct cm_conf_dnsd_query_log *q = &d->conf->dnsd.query_log;
    struct timeval tv = cm_ms_to_timeval(DNS_QLOG_DRAIN_MS);

    if (dns_server_qlog(d->server) == NULL) {
        if (q->sample > 0)
            cm_log_info("dnsd.query_log.sample is %u but the log level is not debug: no query "
                        "log",
                        q->sample);
        return CM_OK;
    }
    d->ev_qlog = event_new(d->base, -1, EV_PERSIST, on_qlog, d);
    if (d->ev_qlog == NULL || event_add(d->ev_qlog, &tv) != 0)
        return CM_ENOMEM;
    cm_log_debug("query log on: sample=%u ring_size=%u workers=%u", q->sample, q->ring_size,
                 d->conf->dnsd.workers);
    return CM_OK;
}

static int dnsd_events(struct dnsd *d)
{
    const struct cm_daemon_hooks hooks = {
        .reload = on_reload, .stop = on_stop, .tick = on_tick, .arg = d};

    d->ev_geo = event_new(d->base, -1, 0, on_geo_done, d);
    if (d->ev_geo == NULL)
        return CM_ENOMEM;
    return cm_daemon_events_start(&d->ev, d->base, &hooks);
}

/*
 * Every socket is bound: become dnsd.user, then make sure what must be read
 * or written later (state file, reload of config, zone and token) still is.
 */
static int dnsd_drop_privileges(struct dnsd *d, char *err, size_t errlen)
{
    const struct cm_conf_dnsd *dc = &d->conf->dnsd;
    int rc;

    if (!d->priv.enabled) {
        if (geteuid() == 0)
            cm_log_warn("running as root: set dnsd.user (and dnsd.group) to drop privileges "
                        "once the sockets are bound");
        return CM_OK;
    }
    rc = cm_priv_drop(&d->priv, err, errlen);
    if (rc != CM_OK)
        return rc;
    rc = cm_priv_check_access(&d->priv, "dnsd.state_file", dc->state_file, true, err, errlen);
    if (rc == CM_OK)
        rc = cm_priv_check_access(&d->priv, "configuration", d->config_path, false, err, errlen);
    if (rc == CM_OK)
        rc = cm_priv_check_access(&d->priv, "dnsd.zone_file", dc->zone_file, false, err, errlen);
    if (rc == CM_OK && dc->control.enabled)
        rc = cm_priv_check_access(&d->priv, "dnsd.control.token_file", dc->control.token_file,
                                  false, err, errlen);
    if (rc != CM_OK)
        return rc;
    cm_log_info("privileges dropped: user=%s uid=%u gid=%u capabilities=none", d->priv.user,
                (unsigned)getuid(), (unsigned)getgid());
    return CM_OK;
}

/* ---- the distributed mode: documents from etcd (cm_etcd_consumer) ---- */

static struct cm_store *etcd_store(void *arg)
{
    struct dnsd *d = arg;

    return dns_state_store(d->state);
}

static const struct cm_conf *etcd_conf(void *arg)
{
    struct dnsd *d = arg;

    return dns_state_conf(d->state);
}

static int etcd_apply(void *arg, struct cm_store_cand *cand, char *err, size_t errlen)
{
    struct dnsd *d = arg;

    return dns_state_apply(d->state, cand, err, errlen);
}

static void etcd_intents(void *arg, struct cm_etcd_feed *f)
{
    struct dnsd *d = arg;

    dns_state_intents_etcd(d->state, f, cm_wall_s());
}

static int dnsd_etcd_start(struct dnsd *d, char *err, size_t errlen)
{
    const struct cm_etcd_consumer_hooks hooks = {.store = etcd_store,
                                                 .conf = etcd_conf,
                                                 .apply = etcd_apply,
                                                 .intents = etcd_intents,
                                                 .arg = d};
    int rc;

    if (!d->conf->etcd.present)
        return CM_OK;
    rc = cm_etcd_consumer_new(d->base, d->conf, "dnsd", &d->conf->dnsd.control, &hooks, &d->etcd,
                              err, errlen);
    if (rc != CM_OK)
        return rc;
    d->env.etcd = d->etcd;
    cm_etcd_consumer_start(d->etcd);
    return CM_OK;
}

static int dnsd_start(struct dnsd *d, char *err, size_t errlen)
{
    const struct cm_conf_dnsd *dc = &d->conf->dnsd;
    int rc;

    d->base = event_base_new();
    if (d->base == NULL) {
        snprintf(err, errlen, "cannot create the event loop");
        return CM_ENOMEM;
    }
    if (dc->control.enabled) {
        rc = dns_ctl_new(d->base, &dc->control, &d->env, &d->ctl, err, errlen);
        if (rc != CM_OK)
            return rc;
    }
    rc = dns_server_new(d->conf, d->view, &d->server, err, errlen);
    if (rc != CM_OK)
        return rc;
    rc = dnsd_drop_privileges(d, err, errlen);
    if (rc != CM_OK)
        return rc;
    d->env.server = d->server;
    rc = dns_server_start(d->server, err, errlen);
    if (rc != CM_OK)
        return rc;
    rc = dnsd_events(d);
    if (rc != CM_OK) {
        snprintf(err, errlen, "cannot register signal handlers");
        return rc;
    }
    rc = query_log_start(d);
    if (rc != CM_OK) {
        snprintf(err, errlen, "dnsd.query_log: cannot register its timer");
        return rc;
    }
    rc = dnsd_etcd_start(d, err, errlen);
    if (rc != CM_OK)
        return rc;
    for (size_t i = 0; i < dc->listen_count; i++) {
        char a[CM_ADDR_STRLEN];

        cm_addr_format((const struct sockaddr *)&dc->listen[i].ss, a, sizeof(a));
        cm_log_info("listening on %s udp+tcp workers=%u", a, dc->workers);
    }
    return CM_OK;
}

static void dnsd_fini(struct dnsd *d)
{
    if (d->server != NULL && dns_server_qlog(d->server) != NULL) {
        dns_server_stop(d->server); /* graceful: joins the workers */
        /* The queries answered last, in the log too. */
        while (dns_qlog_drain(dns_server_qlog(d->server), NULL, NULL) > 0)
            continue;
    }
    if (d->ev_qlog != NULL)
        event_free(d->ev_qlog);
    dns_server_free(d->server); /* graceful: joins the workers */
    d->server = NULL;
    d->env.server = NULL;
    dns_ctl_free(d->ctl);
    cm_etcd_consumer_free(d->etcd);
    d->etcd = NULL;
    d->env.etcd = NULL;
    cm_daemon_events_fini(&d->ev);
    if (d->job != NULL) {
        pthread_join(d->job->thread, NULL);
        geo_job_free(d->job);
        d->job = NULL;
    }
    if (d->ev_geo != NULL)
        event_free(d->ev_geo);
    if (d->base != NULL)
        event_base_free(d->base);
    dns_view_unref(d->view);
    dns_geo_unref(d->geo);
    dns_geodb_unref(d->geodb);
    dns_state_free(d->state);
    dns_zone_unref(d->zone);
    cm_conf_unref(d->conf);
}

/* Everything after the process-wide setup; returns the exit status. */
static int dnsd_run(const struct cm_opts *o)
{
    struct dnsd d;
    char err[ERR_MAX] = "";
    int rc;

    memset(&d, 0, sizeof(d));
    d.config_path = o->config;
    d.instance = o->instance;
    rc = dnsd_prepare(&d, o->check, err, sizeof(err));
    if (rc != CM_OK) {
        fprintf(stderr, "%s\n", err);
        dnsd_fini(&d);
        return 1;
    }
    rc = dnsd_check_nofile(&d, !o->check, err, sizeof(err));
    if (rc != CM_OK) {
        if (o->check)
            fprintf(stderr, "%s\n", err);
        else
            cm_log_error("cannot start: %s", err);
        dnsd_fini(&d);
        return 1;
    }
    if (o->check) {
        printf("config OK: %zu services, %zu members, zone %s (%zu names)%s%s\n",
               d.conf->service_count, d.conf->member_count, d.conf->zone,
               dns_zone_name_count(d.zone), d.conf->instance != NULL ? ", instance " : "",
               d.conf->instance != NULL ? d.conf->instance : "");
        dnsd_fini(&d);
        return 0;
    }
    rc = dnsd_start(&d, err, sizeof(err));
    if (rc != CM_OK) {
        cm_log_error("cannot start: %s", err);
        dnsd_fini(&d);
        return 1;
    }
    cm_log_info("fedgslb-dnsd %s started: zone=%s serial=%" PRIu64 "%s%s", FEDGSLB_VERSION,
                d.conf->zone, d.serial, d.conf->instance != NULL ? " instance=" : "",
                d.conf->instance != NULL ? d.conf->instance : "");
    event_base_dispatch(d.base);
    cm_log_info("stopping: finishing queued queries");
    dnsd_fini(&d);
    cm_log_info("stopped");
    return 0;
}

int main(int argc, char **argv)
{
    struct cm_opts o;
    int rc;

    rc = cm_opts_parse(argc, argv, "fedgslb-dnsd", FEDGSLB_VERSION, usage, &o);
    if (rc >= 0)
        return rc;
    cm_log_init("dnsd", o.format, o.level);
    signal(SIGPIPE, SIG_IGN);
    if (evthread_use_pthreads() != 0) {
        fprintf(stderr, "fedgslb-dnsd: libevent: cannot enable threads\n");
        return 1;
    }
    /* Before any thread: the etcd client of the distributed mode uses libcurl. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "fedgslb-dnsd: cannot initialise libcurl\n");
        return 1;
    }
    rc = dnsd_run(&o);
    curl_global_cleanup();
    return rc;
}
