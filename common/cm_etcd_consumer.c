/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_etcd_consumer.c -- the pieces of cm_etcd_consumer.h wired together:
 * watch events go through the feed into the daemon's store; the
 * registration is a leased key holding where the control API listens.
 */
#include "common/cm_etcd_consumer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cm_conf.h"
#include "common/cm_ctl.h"
#include "common/cm_curl.h"
#include "common/cm_err.h"
#include "common/cm_etcd.h"
#include "common/cm_etcd_lease.h"
#include "common/cm_etcd_watch.h"
#include "common/cm_log.h"
#include "common/cm_net.h"
#include "common/cm_str.h"
#include "common/cm_time.h"

#define REGISTRATION_TTL_S 10

struct cm_etcd_consumer {
    struct event_base *base; /* borrowed */
    struct cm_etcd_consumer_hooks hooks;
    struct cm_curl *curl; /* owned */
    struct cm_etcd *e;    /* owned */
    struct cm_etcd_watch *watch;
    struct cm_etcd_feed *feed;
    struct cm_etcd_lease *reg; /* owned: the registration */
    char *root;                /* owned: "<prefix><federation>/" */
    char *reg_value;           /* owned */
    char *etcd_fingerprint;    /* owned: the section's settings, to see a change on reload */
};

static void target_of(const struct cm_etcd_consumer *c, struct cm_etcd_feed_target *t)
{
    t->store = c->hooks.store(c->hooks.arg);
    t->conf = c->hooks.conf(c->hooks.arg);
    t->apply = c->hooks.apply;
    t->intents = c->hooks.intents;
    t->arg = c->hooks.arg;
    t->now_ms = cm_mono_ms();
}

static void on_sync(void *arg, const struct cm_etcd_kv *kvs, size_t count, int64_t revision)
{
    struct cm_etcd_consumer *c = arg;
    struct cm_etcd_feed_target t;

    (void)revision;
    target_of(c, &t);
    if (cm_etcd_feed_sync(c->feed, kvs, count, &t) != CM_OK)
        cm_log_error("etcd: cannot take the list in: out of memory; keeping the previous state");
}

static void on_event(void *arg, const struct cm_etcd_event *ev)
{
    struct cm_etcd_consumer *c = arg;
    struct cm_etcd_feed_target t;

    target_of(c, &t);
    if (cm_etcd_feed_event(c->feed, ev, &t) != CM_OK)
        cm_log_error("etcd: cannot take an event in: out of memory; keeping the previous state");
}

/* What may not change without a restart: endpoints, prefix, TLS, user. */
static char *fingerprint(const struct cm_conf *conf)
{
    const struct cm_conf_etcd *ec = &conf->etcd;
    struct cm_buf b;
    char *out;

    cm_buf_init(&b, 1u << 16);
    cm_buf_printf(&b, "%s|%s|", conf->federation, ec->prefix);
    for (size_t i = 0; i < ec->endpoint_count; i++)
        cm_buf_printf(&b, "%s,", ec->endpoints[i]);
    cm_buf_printf(&b, "|%s|%s|%s|%s|%u|%u", ec->tls.ca_file != NULL ? ec->tls.ca_file : "",
                  ec->tls.certificate != NULL ? ec->tls.certificate : "",
                  ec->username != NULL ? ec->username : "",
                  ec->password_file != NULL ? ec->password_file : "", ec->request_timeout_ms,
                  ec->check_interval_ms);
    out = strdup(cm_buf_cstr(&b));
    cm_buf_fini(&b);
    return out;
}

/* "<kind>@<host>:<control listen>" and its value. */
static int registration(struct cm_etcd_consumer *c, const char *kind,
                        const struct cm_conf_control *control, char **key)
{
    char host[256] = "", listen[CM_ADDR_STRLEN] = "";
    json_t *v;
    struct cm_buf k;
    int rc;

    if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
        cm_strlcpy(host, "localhost", sizeof(host));
    for (char *p = host; *p != '\0'; p++) {
        if (*p == '/' || *p < 0x21 || *p > 0x7e)
            *p = '_';
    }
    if (control != NULL && control->enabled)
        cm_addr_format((const struct sockaddr *)&control->listen.ss, listen, sizeof(listen));
    cm_buf_init(&k, 4096);
    rc = cm_buf_printf(&k, "%s" CM_ETCD_DIR_CONSUMERS "%s@%s", c->root, kind, host);
    if (rc == CM_OK && listen[0] != '\0')
        rc = cm_buf_printf(&k, ":%s", listen);
    else if (rc == CM_OK)
        rc = cm_buf_printf(&k, "#%ld", (long)getpid());
    v = json_pack("{s:s,s:s,s:s?,s:b,s:I}", "kind", kind, "host", host, "control",
                  listen[0] != '\0' ? listen : NULL, "tls",
                  control != NULL && control->enabled && control->tls.enabled, "pid",
                  (json_int_t)getpid());
    c->reg_value = v != NULL ? json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(v);
    *key = rc == CM_OK ? strdup(cm_buf_cstr(&k)) : NULL;
    cm_buf_fini(&k);
    return *key != NULL && c->reg_value != NULL ? CM_OK : CM_ENOMEM;
}

int cm_etcd_consumer_new(struct event_base *base, const struct cm_conf *conf, const char *kind,
                         const struct cm_conf_control *control,
                         const struct cm_etcd_consumer_hooks *hooks, struct cm_etcd_consumer **out,
                         char *err, size_t errlen)
{
    const struct cm_conf_etcd *ec = &conf->etcd;
    struct cm_etcd_consumer *c = calloc(1, sizeof(*c));
    struct cm_etcd_watch_params wp;
    struct cm_etcd_lease_params lp;
    struct cm_etcd_watch_cbs cbs = {.sync = on_sync, .event = on_event};
    char *reg_key = NULL;

    *out = NULL;
    if (c == NULL)
        return cm_err_oom(err, errlen, "etcd");
    c->base = base;
    c->hooks = *hooks;
    cbs.arg = c;
    cm_etcd_watch_params_default(&wp);
    wp.check_interval_ms = ec->check_interval_ms;
    wp.check_timeout_ms = ec->request_timeout_ms;
    wp.backoff_min_ms = ec->backoff_min_ms;
    wp.backoff_max_ms = ec->backoff_max_ms;
    cm_etcd_lease_params_default(&lp);
    lp.ttl_s = REGISTRATION_TTL_S;
    lp.backoff_min_ms = ec->backoff_min_ms;
    lp.backoff_max_ms = ec->backoff_max_ms;
    c->curl = cm_curl_new(base);
    c->e = c->curl != NULL ? cm_etcd_new(c->curl, ec) : NULL;
    c->root = cm_etcd_root(ec->prefix, conf->federation);
    c->feed = c->root != NULL ? cm_etcd_feed_new(c->root) : NULL;
    c->etcd_fingerprint = fingerprint(conf);
    if (c->e == NULL || c->feed == NULL || c->etcd_fingerprint == NULL ||
        registration(c, kind, control, &reg_key) != CM_OK)
        goto fail;
    c->watch = cm_etcd_watch_new(base, c->e, c->root, strlen(c->root), &wp, &cbs);
    c->reg = cm_etcd_lease_new(base, c->e, reg_key, &lp);
    free(reg_key);
    reg_key = NULL;
    if (c->watch == NULL || c->reg == NULL)
        goto fail;
    *out = c;
    return CM_OK;
fail:
    free(reg_key);
    cm_etcd_consumer_free(c);
    return cm_err_oom(err, errlen, "etcd");
}

void cm_etcd_consumer_start(struct cm_etcd_consumer *c)
{
    cm_log_info("etcd: distributed mode: watching %s at %s (%zu endpoints); registered as %s",
                c->root, cm_etcd_endpoint(c->e), cm_etcd_endpoint_count(c->e),
                cm_etcd_lease_key(c->reg));
    cm_etcd_watch_start(c->watch);
    if (cm_etcd_lease_set(c->reg, c->reg_value, strlen(c->reg_value)) != CM_OK)
        cm_log_warn("etcd: cannot register: out of memory");
}

void cm_etcd_consumer_free(struct cm_etcd_consumer *c)
{
    if (c == NULL)
        return;
    cm_etcd_watch_free(c->watch);
    cm_etcd_lease_free(c->reg);
    cm_etcd_feed_free(c->feed);
    cm_etcd_free(c->e);
    cm_curl_free(c->curl);
    free(c->root);
    free(c->reg_value);
    free(c->etcd_fingerprint);
    free(c);
}

void cm_etcd_consumer_reload(struct cm_etcd_consumer *c, const struct cm_conf *conf)
{
    struct cm_etcd_feed_target t;
    char *fp = conf->etcd.present ? fingerprint(conf) : NULL;

    if (fp == NULL || strcmp(fp, c->etcd_fingerprint) != 0)
        cm_log_warn("reload: the etcd section changed (or went); this needs a restart "
                    "(still watching %s at %s)",
                    c->root, cm_etcd_endpoint(c->e));
    free(fp);
    target_of(c, &t);
    t.conf = conf;
    if (cm_etcd_feed_reapply(c->feed, &t) != CM_OK)
        cm_log_error("etcd: reload: cannot judge the held values again: out of memory");
}

json_t *cm_etcd_consumer_status(const struct cm_etcd_consumer *c)
{
    struct cm_etcd_watch_stats ws;
    struct cm_etcd_feed_stats fs;
    struct cm_etcd_lease_stats ls;
    json_t *eps = json_array(), *o;
    char digest[24];

    cm_etcd_watch_get_stats(c->watch, &ws);
    cm_etcd_feed_get_stats(c->feed, &fs);
    cm_etcd_lease_get_stats(c->reg, &ls);
    snprintf(digest, sizeof(digest), "%016" PRIx64, fs.digest);
    for (size_t i = 0; eps != NULL && i < cm_etcd_endpoint_count(c->e); i++)
        json_array_append_new(eps, json_string(cm_etcd_endpoint_at(c->e, i)));
    o = json_pack("{s:o*,s:s,s:s,s:b,s:b,s:f,s:I,s:I,s:s,s:I,s:I}", "endpoints", eps, "endpoint",
                  cm_etcd_endpoint(c->e), "root", c->root, "up", ws.up, "synced", ws.synced,
                  "since_s", ws.since_ms != 0 ? (double)(cm_mono_ms() - ws.since_ms) / 1000.0 : 0.0,
                  "revision", (json_int_t)ws.revision, "etcd_revision",
                  (json_int_t)ws.etcd_revision, "digest", digest, "keys", (json_int_t)fs.keys,
                  "vantage_keys", (json_int_t)fs.vantage_keys);
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "events", json_integer((json_int_t)ws.events));
    json_object_set_new(o, "lists", json_integer((json_int_t)ws.lists));
    json_object_set_new(o, "compactions", json_integer((json_int_t)ws.compactions));
    json_object_set_new(o, "resumes", json_integer((json_int_t)ws.resumes));
    json_object_set_new(o, "failures", json_integer((json_int_t)ws.failures));
    json_object_set_new(o, "refused", json_integer((json_int_t)fs.refused));
    json_object_set_new(o, "last_error", json_string(ws.last_error));
    json_object_set_new(o, "registration", json_string(cm_etcd_lease_key(c->reg)));
    json_object_set_new(o, "registered", json_boolean(ls.ok));
    return o;
}

void cm_etcd_consumer_metrics(const struct cm_etcd_consumer *c, struct cm_buf *out)
{
    struct cm_etcd_watch_stats ws;
    struct cm_etcd_feed_stats fs;
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"fedgslb_etcd_up", "gauge",
         "1 while the watch of the federation's keys in etcd is up (0: serving the last state)"},
        {"fedgslb_etcd_revision", "gauge",
         "etcd revision up to which this consumer has every change of its federation's keys"},
        {"fedgslb_etcd_cluster_revision", "gauge", "etcd's own revision at the last list or check"},
        {"fedgslb_etcd_keys", "gauge", "Vantage and intent keys held"},
        {"fedgslb_etcd_state_seconds", "gauge", "Seconds since fedgslb_etcd_up last changed"},
        {"fedgslb_etcd_events_total", "counter", "Watch events received"},
        {"fedgslb_etcd_lists_total", "counter", "Complete lists (the first and every relist)"},
        {"fedgslb_etcd_compactions_total", "counter",
         "Relists because etcd had compacted the history the watch needed"},
        {"fedgslb_etcd_resumes_total", "counter",
         "Watches resumed from the last revision after a drop"},
        {"fedgslb_etcd_failures_total", "counter", "Lists, watches and checks that failed"},
        {"fedgslb_etcd_refused_total", "counter",
         "Values under vantages/ refused (not a valid document for the key's vantage)"},
    };
    double vals[sizeof(fam) / sizeof(fam[0])];

    cm_etcd_watch_get_stats(c->watch, &ws);
    cm_etcd_feed_get_stats(c->feed, &fs);
    vals[0] = ws.up ? 1.0 : 0.0;
    vals[1] = (double)ws.revision;
    vals[2] = (double)ws.etcd_revision;
    vals[3] = (double)fs.keys;
    vals[4] = ws.since_ms != 0 ? (double)(cm_mono_ms() - ws.since_ms) / 1000.0 : 0.0;
    vals[5] = (double)ws.events;
    vals[6] = (double)ws.lists;
    vals[7] = (double)ws.compactions;
    vals[8] = (double)ws.resumes;
    vals[9] = (double)ws.failures;
    vals[10] = (double)fs.refused;
    for (size_t i = 0; i < sizeof(fam) / sizeof(fam[0]); i++) {
        cm_metrics_family(out, fam[i].name, fam[i].type, fam[i].help);
        cm_metrics_sample(out, fam[i].name, NULL, vals[i]);
    }
}
