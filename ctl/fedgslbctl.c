/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fedgslbctl.c -- the operator CLI: the human front of the control APIs.
 *
 * Exit status: 0 ok, 1 usage or configuration error, 2 daemon unreachable
 * (or an unusable reply), 3 request rejected by the daemon (401, 4xx, 5xx),
 * 4 status found the name servers disagreeing. The bearer token is read from
 * the configuration (or --token-file) and only ever goes into the
 * Authorization header.
 *
 * With a deployment in the configuration, status, drain, undrain and intent
 * talk to every name server (and, for intents and agreement, every proxy):
 * one request each, in turn, each result reported. Intents are pushed: every
 * intent command first re-delivers what some instance misses
 * (ctl_intents_missing), so an instance that was down gets them at the next
 * call (docs/architecture.md, "Operator intents").
 */
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "common/cm_agree.h"
#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_intent.h"
#include "common/cm_net.h"
#include "common/cm_rand.h"
#include "common/cm_secret.h"
#include "common/cm_str.h"
#include "common/cm_time.h"
#include "ctl/ctl_args.h"
#include "ctl/ctl_etcd.h"
#include "ctl/ctl_http.h"
#include "ctl/ctl_intent.h"
#include "ctl/ctl_render.h"

enum ctl_exit {
    EXIT_OK_ = 0,         /* done */
    EXIT_USAGE = 1,       /* bad command line or configuration */
    EXIT_UNREACHABLE = 2, /* no HTTP exchange with the daemon, or garbage back */
    EXIT_REJECTED = 3,    /* the daemon said no */
    EXIT_DISAGREE = 4,    /* status: the name servers do not answer from the same state */
};

/* Name servers and proxies of a deployment fedgslbctl talks to at most. */
#define TARGETS_MAX 512

#define ERR_MAX 1024

struct ctl_run {
    const struct ctl_opts *o;
    struct cm_conf *conf; /* owned reference, NULL when running without a config */
};

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
    va_list ap;

    fputs("fedgslbctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- check-config ---- */

static int cmd_check_config(const struct ctl_opts *o)
{
    char err[CM_CONF_ERR_MAX] = "";
    struct cm_conf *conf = NULL;
    int rc = cm_conf_load(o->config, &conf, err, sizeof(err));

    if (rc != CM_OK) {
        if (o->json) {
            json_t *j = json_pack("{s:b,s:s}", "ok", false, "error", err);
            char *text = j != NULL ? json_dumps(j, 0) : NULL;

            if (text != NULL)
                puts(text);
            free(text);
            json_decref(j);
        }
        fail("%s", err);
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < conf->warning_count; i++)
        fprintf(stderr, "fedgslbctl: warning: %s\n", conf->warnings[i]);
    if (o->json)
        printf("{\"ok\": true, \"regions\": %zu, \"members\": %zu, \"services\": %zu, "
               "\"instances\": %zu, \"warnings\": %zu}\n",
               conf->region_count, conf->member_count, conf->service_count,
               conf->deployment.name_server_count + conf->deployment.vantage_count +
                   conf->deployment.proxy_count,
               conf->warning_count);
    else
        printf("ok: %zu regions, %zu members, %zu services", conf->region_count, conf->member_count,
               conf->service_count);
    if (!o->json && conf->deployment.present)
        printf("; deployment: %zu name servers, %zu vantages, %zu proxies",
               conf->deployment.name_server_count, conf->deployment.vantage_count,
               conf->deployment.proxy_count);
    if (!o->json && conf->warning_count > 0)
        printf("; %zu warnings", conf->warning_count);
    if (!o->json)
        putchar('\n');
    cm_conf_unref(conf);
    return EXIT_OK_;
}

/* ---- endpoints ---- */

static const struct cm_conf_control *section_control(const struct cm_conf *conf, enum ctl_daemon d)
{
    switch (d) {
    case CTL_DAEMON_DNSD:
        return &conf->dnsd.control;
    case CTL_DAEMON_HEALTH:
        return &conf->health.control;
    case CTL_DAEMON_PROXY:
        return &conf->proxy.control;
    }
    return NULL;
}

/*
 * The endpoint of daemon @d: at @at (an instance's control address) when not
 * NULL, else --dnsd/--health/--proxy, else the section's control.listen; the
 * section gives the token and TLS settings. @name names it in messages.
 */
static int endpoint_init_at(const struct ctl_run *run, enum ctl_daemon d, const char *name,
                            const struct cm_addr *at, struct ctl_endpoint *ep)
{
    const struct ctl_opts *o = run->o;
    const struct cm_conf_control *c = run->conf != NULL ? section_control(run->conf, d) : NULL;
    char err[ERR_MAX] = "";

    memset(ep, 0, sizeof(*ep));
    ep->daemon = name;
    ep->section = ctl_daemon_name(d);
    ep->timeout_ms = o->timeout_ms;
    if (at != NULL) {
        char url[CM_URL_STRLEN];

        cm_addr_url((const struct sockaddr *)&at->ss, c != NULL && c->tls.enabled, url,
                    sizeof(url));
        ep->base_url = strdup(url);
        ep->ca_file = c != NULL ? c->tls.ca_file : NULL;
    } else if (o->url[d] != NULL) {
        size_t n = strlen(o->url[d]);

        while (n > 0 && o->url[d][n - 1] == '/')
            n--;
        ep->base_url = strndup(o->url[d], n);
    } else if (c != NULL && c->enabled) {
        char url[CM_URL_STRLEN];

        cm_addr_url((const struct sockaddr *)&c->listen.ss, c->tls.enabled, url, sizeof(url));
        ep->base_url = strdup(url);
        ep->ca_file = c->tls.ca_file;
    } else {
        fail("%s: no %s.control section; give --%s URL", o->config, ep->section, ep->section);
        return EXIT_USAGE;
    }
    if (o->cacert != NULL)
        ep->ca_file = o->cacert;
    ep->cert = o->cert;
    ep->key = o->key != NULL ? o->key : o->cert;
    if (o->token_file != NULL) {
        if (cm_secret_read(o->token_file, &ep->token, err, sizeof(err)) != CM_OK) {
            fail("%s", err);
            ctl_endpoint_fini(ep);
            return EXIT_USAGE;
        }
    } else if (c != NULL && c->token != NULL) {
        ep->token = strdup(c->token);
    }
    if (ep->base_url == NULL) {
        fail("out of memory");
        ctl_endpoint_fini(ep);
        return EXIT_USAGE;
    }
    return EXIT_OK_;
}

static int endpoint_init(const struct ctl_run *run, enum ctl_daemon d, struct ctl_endpoint *ep)
{
    return endpoint_init_at(run, d, ctl_daemon_name(d), NULL, ep);
}

/* ---- one request, judged ---- */

static const char *reply_reason(const struct ctl_reply *r, json_t **hold)
{
    json_t *doc = json_loads(cm_buf_cstr(&r->body), 0, NULL);
    const char *reason = json_string_value(json_object_get(doc, "error"));

    *hold = doc;
    return reason != NULL ? reason : cm_buf_cstr(&r->body);
}

/*
 * Sends the request; on a 2xx reply and a non-NULL @doc parses the body into
 * *doc. Returns an exit status, having said what went wrong.
 */
static int call_body(const struct ctl_run *run, const struct ctl_endpoint *ep, const char *method,
                     const char *path, const char *body, struct ctl_reply *reply, json_t **doc)
{
    char err[ERR_MAX] = "";
    json_error_t jerr;
    json_t *hold = NULL;
    const char *reason;
    int rc;

    rc = ctl_http_request(ep, method, path, body, reply, err, sizeof(err));
    if (rc != CM_OK) {
        fail("cannot reach %s control API at %s: %s", ep->daemon, ep->base_url, err);
        return EXIT_UNREACHABLE;
    }
    if (reply->status == 401) {
        if (ep->token == NULL)
            fail("%s requires a token and none is configured (set %s.control.token_file or "
                 "give --token-file)",
                 ep->daemon, ep->section);
        else
            fail("token rejected by %s (check --token-file / %s.control.token_file)", ep->daemon,
                 ep->section);
        return EXIT_REJECTED;
    }
    if (reply->status < 200 || reply->status >= 300) {
        reason = reply_reason(reply, &hold);
        fail("%s rejected %s %s: %ld %s", ep->daemon, method, path, reply->status,
             reason[0] != '\0' ? reason : "(no reason given)");
        json_decref(hold);
        return EXIT_REJECTED;
    }
    (void)run;
    if (doc == NULL)
        return EXIT_OK_;
    *doc = json_loads(cm_buf_cstr(&reply->body), 0, &jerr);
    if (*doc == NULL) {
        fail("%s sent a reply to %s %s that is not JSON: %s", ep->daemon, method, path, jerr.text);
        return EXIT_UNREACHABLE;
    }
    return EXIT_OK_;
}

static int call(const struct ctl_run *run, const struct ctl_endpoint *ep, const char *method,
                const char *path, struct ctl_reply *reply, json_t **doc)
{
    return call_body(run, ep, method, path, NULL, reply, doc);
}

/* Prints @doc (borrowed) indented. */
static int print_json(json_t *doc)
{
    char *s = json_dumps(doc, JSON_INDENT(2));

    if (s == NULL) {
        fail("out of memory");
        return EXIT_USAGE;
    }
    puts(s);
    free(s);
    return EXIT_OK_;
}

/* Prints @doc and drops the reference (a document made for printing). */
static int print_json_new(json_t *doc)
{
    int ex = doc != NULL ? print_json(doc) : EXIT_USAGE;

    if (doc == NULL)
        fail("out of memory");
    json_decref(doc);
    return ex;
}

/* ---- commands talking to a daemon ---- */

/* ---- the instances a command talks to ---- */

/* One control API: an instance of the deployment, or the one daemon of a section. */
struct target {
    enum ctl_daemon daemon;
    struct ctl_endpoint ep; /* ep.daemon is the instance's name */
};

struct targets {
    struct target *t;
    size_t n;
    size_t name_servers; /* the first n entries are name servers */
};

static void targets_fini(struct targets *ts)
{
    for (size_t i = 0; i < ts->n; i++)
        ctl_endpoint_fini(&ts->t[i].ep);
    free(ts->t);
    ts->t = NULL;
    ts->n = 0;
}

static int target_add(const struct ctl_run *run, struct targets *ts, enum ctl_daemon d,
                      const char *name, const struct cm_addr *at)
{
    int ex = endpoint_init_at(run, d, name, at, &ts->t[ts->n].ep);

    if (ex == EXIT_OK_)
        ts->t[ts->n++].daemon = d;
    return ex;
}

/*
 * The name servers (and, with @proxies, the proxies) to talk to: --dnsd
 * (and --proxy) when given, else every instance of the deployment, else the
 * dnsd of the configuration alone.
 */
static int targets_init(const struct ctl_run *run, bool proxies, struct targets *ts)
{
    const struct ctl_opts *o = run->o;
    const struct cm_conf_instance *ns = NULL, *px = NULL;
    size_t nns = 0, npx = 0;
    int ex = EXIT_OK_;

    memset(ts, 0, sizeof(*ts));
    if (run->conf != NULL && o->url[CTL_DAEMON_DNSD] == NULL) {
        ns = cm_conf_instances(run->conf, CM_INSTANCE_NAME_SERVER, &nns);
        px = cm_conf_instances(run->conf, CM_INSTANCE_PROXY, &npx);
    }
    if (!proxies || nns == 0)
        npx = 0;
    ts->t = calloc(nns + npx + 2, sizeof(*ts->t));
    if (ts->t == NULL || nns + npx > TARGETS_MAX) {
        fail("too many instances");
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < nns && ex == EXIT_OK_; i++)
        ex = target_add(run, ts, CTL_DAEMON_DNSD, ns[i].name, &ns[i].control);
    if (nns == 0 && ex == EXIT_OK_)
        ex = target_add(run, ts, CTL_DAEMON_DNSD, "dnsd", NULL);
    ts->name_servers = ts->n;
    for (size_t i = 0; i < npx && ex == EXIT_OK_; i++)
        ex = target_add(run, ts, CTL_DAEMON_PROXY, px[i].name, &px[i].control);
    if (proxies && nns == 0 && o->url[CTL_DAEMON_PROXY] != NULL && ex == EXIT_OK_)
        ex = target_add(run, ts, CTL_DAEMON_PROXY, "proxy", NULL);
    if (ex != EXIT_OK_)
        targets_fini(ts);
    return ex;
}

/* The worse of two exit statuses for a command that talks to several instances. */
static int worse(int a, int b)
{
    static const int rank[] = {[EXIT_OK_] = 0,
                               [EXIT_DISAGREE] = 1,
                               [EXIT_UNREACHABLE] = 2,
                               [EXIT_REJECTED] = 3,
                               [EXIT_USAGE] = 4};

    return rank[b] > rank[a] ? b : a;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* ---- status ---- */

/* The tables of one name server: services x members, and who each region gets. */
static int status_tables(const struct ctl_run *run, const struct ctl_endpoint *ep, json_t *state,
                         json_t **model_out)
{
    struct ctl_reply r = {0};
    json_t *answers = NULL;
    char err[ERR_MAX] = "";
    int ex = call(run, ep, "GET", "/v1/answers", &r, &answers);

    if (ex == EXIT_OK_) {
        *model_out = ctl_status_model(state, answers, ep->base_url, err, sizeof(err));
        if (*model_out == NULL) {
            fail("%s", err);
            ex = EXIT_UNREACHABLE;
        }
    }
    json_decref(answers);
    ctl_reply_fini(&r);
    return ex;
}

/* GET @path of every target: docs[i] a new reference, or NULL (said on stderr). */
static int fetch_all(const struct ctl_run *run, const struct targets *ts, const char *path,
                     json_t **docs)
{
    int ex = EXIT_OK_;

    for (size_t i = 0; i < ts->n; i++) {
        struct ctl_reply r = {0};

        docs[i] = NULL;
        ex = worse(ex, call(run, &ts->t[i].ep, "GET", path, &r, &docs[i]));
        ctl_reply_fini(&r);
    }
    return ex;
}

/*
 * Whether the instances answer from the same state. Documents of the
 * vantages arrive at each name server a moment apart: when only those
 * differ, look again a few times before saying so.
 */
static json_t *agreement(const struct ctl_run *run, const struct targets *ts, json_t **docs)
{
    const char *names[TARGETS_MAX];
    json_t *digests[TARGETS_MAX];
    json_t *model = NULL;

    for (size_t i = 0; i < ts->n; i++)
        names[i] = ts->t[i].ep.daemon;
    for (int attempt = 0; attempt < 6; attempt++) {
        bool all = true;

        for (size_t i = 0; i < ts->n; i++) {
            digests[i] = json_object_get(docs[i], "digest");
            all = all && digests[i] != NULL;
        }
        json_decref(model);
        model = cm_agreement(names, digests, ts->n);
        if (model == NULL || json_is_true(json_object_get(model, "agree")) || !all ||
            !json_is_true(json_object_get(model, "intents_agree")) || attempt == 5)
            break;
        sleep_ms(300);
        for (size_t i = 0; i < ts->n; i++)
            json_decref(docs[i]);
        (void)fetch_all(run, ts, "/v1/intents", docs);
    }
    return model;
}

static int cmd_status(const struct ctl_run *run, const struct targets *ts)
{
    json_t *docs[TARGETS_MAX] = {NULL}, *model = NULL, *agree = NULL, *etcd = NULL;
    const struct ctl_endpoint *ep;
    char err[ERR_MAX] = "";
    struct cm_buf out;
    size_t first = ts->n;
    int ex, fetched;

    cm_buf_init(&out, 64u << 20);
    fetched = fetch_all(run, ts, "/v1/state", docs);
    for (size_t i = 0; i < ts->name_servers && first == ts->n; i++)
        first = docs[i] != NULL ? i : ts->n;
    if (first == ts->n) {
        ex = worse(fetched, EXIT_UNREACHABLE);
        goto out;
    }
    ep = &ts->t[first].ep;
    ex = status_tables(run, ep, docs[first], &model);
    if (ex != EXIT_OK_)
        goto out;
    if (ts->n > 1) {
        agree = agreement(run, ts, docs);
        if (agree == NULL || json_object_set(model, "agreement", agree) != 0) {
            fail("out of memory");
            ex = EXIT_USAGE;
            goto out;
        }
    }
    if (run->conf != NULL && run->conf->etcd.present) {
        /* the distributed mode: etcd's members, the consumers and their agreement */
        if (ctl_etcd_report(run->conf,
                            ep->token != NULL && run->o->token_file != NULL ? ep->token : NULL,
                            run->o->timeout_ms, &etcd, err, sizeof(err)) != CM_OK) {
            fail("%s", err);
            ex = EXIT_USAGE;
            goto out;
        }
        json_object_set(model, "etcd", etcd);
    }
    if (run->o->json) {
        ex = print_json(model);
    } else if (ctl_status_text(model, &out) != CM_OK ||
               (agree != NULL &&
                (cm_buf_printf(&out, "\n") != CM_OK || ctl_agreement_text(agree, &out) != CM_OK)) ||
               (etcd != NULL && ctl_etcd_text(etcd, &out) != CM_OK)) {
        fail("out of memory");
        ex = EXIT_USAGE;
    } else {
        fputs(cm_buf_cstr(&out), stdout);
    }
    ex = worse(ex, fetched);
    if (ex == EXIT_OK_ && agree != NULL && !json_is_true(json_object_get(agree, "agree")))
        ex = EXIT_DISAGREE;
out:
    for (size_t i = 0; i < ts->n; i++)
        json_decref(docs[i]);
    json_decref(etcd);
    json_decref(model);
    json_decref(agree);
    cm_buf_fini(&out);
    return ex;
}

/* Appends "&key=escaped(value)" (or "?key=..." first). */
static int query_add(struct cm_buf *q, const char *key, const char *value, size_t vlen)
{
    char *copy = strndup(value, vlen);
    char *esc = copy != NULL ? ctl_http_escape(copy) : NULL;
    int rc =
        esc != NULL ? cm_buf_printf(q, "%c%s=%s", q->len == 0 ? '?' : '&', key, esc) : CM_ENOMEM;

    free(esc);
    free(copy);
    return rc;
}

static int cmd_explain(const struct ctl_run *run, const struct ctl_endpoint *ep)
{
    const struct ctl_opts *o = run->o;
    struct ctl_reply r = {0};
    struct cm_buf q, path, out;
    json_t *doc = NULL;
    int ex = EXIT_USAGE;
    int rc;

    cm_buf_init(&q, 8192);
    cm_buf_init(&path, 8192);
    cm_buf_init(&out, 16u << 20);
    rc = query_add(&q, "name", o->arg, strlen(o->arg));
    if (rc == CM_OK && o->client != NULL) {
        const char *slash = strchr(o->client, '/');

        rc = query_add(&q, "client", o->client,
                       slash != NULL ? (size_t)(slash - o->client) : strlen(o->client));
    }
    if (rc == CM_OK && o->region != NULL)
        rc = query_add(&q, "region", o->region, strlen(o->region));
    if (rc == CM_OK && o->ecs != NULL)
        rc = query_add(&q, "ecs", o->ecs, strlen(o->ecs));
    if (rc == CM_OK)
        rc = cm_buf_printf(&path, "/v1/explain%s", cm_buf_cstr(&q));
    if (rc != CM_OK) {
        fail("explain: arguments too long");
        goto out;
    }
    ex = call(run, ep, "GET", cm_buf_cstr(&path), &r, o->json ? NULL : &doc);
    if (ex != EXIT_OK_)
        goto out;
    if (o->json) {
        fputs(cm_buf_cstr(&r.body), stdout);
        if (r.body.len == 0 || r.body.data[r.body.len - 1] != '\n')
            fputc('\n', stdout);
    } else if (ctl_explain_text(doc, &out) != CM_OK) {
        fail("out of memory");
        ex = EXIT_USAGE;
    } else {
        fputs(cm_buf_cstr(&out), stdout);
    }
out:
    json_decref(doc);
    ctl_reply_fini(&r);
    cm_buf_fini(&q);
    cm_buf_fini(&path);
    cm_buf_fini(&out);
    return ex;
}

/* ---- intents: pushed to every name server and proxy ---- */

/* The "intents" arrays of every target's GET /v1/intents (NULL: no answer). */
struct fleet_intents {
    json_t *docs[TARGETS_MAX];
    json_t *lists[TARGETS_MAX]; /* borrowed from docs */
    json_t *all;                /* the union */
};

static void fleet_fini(struct fleet_intents *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        json_decref(f->docs[i]);
    json_decref(f->all);
}

static int fleet_fetch(const struct ctl_run *run, const struct targets *ts, struct fleet_intents *f)
{
    int ex = fetch_all(run, ts, "/v1/intents", f->docs);

    for (size_t i = 0; i < ts->n; i++)
        f->lists[i] = json_object_get(f->docs[i], "intents");
    f->all = ctl_intents_union(f->lists, ts->n);
    if (f->all == NULL) {
        fail("out of memory");
        return EXIT_USAGE;
    }
    return ex;
}

/* PUT one intent (borrowed) to @ep; *changed as the instance says. */
static int put_intent(const struct ctl_run *run, const struct ctl_endpoint *ep, json_t *in,
                      bool *changed)
{
    struct ctl_reply r = {0};
    struct cm_buf path;
    char *body = json_dumps(in, JSON_COMPACT | JSON_SORT_KEYS);
    char *esc = ctl_http_escape(json_string_value(json_object_get(in, "id")));
    json_t *doc = NULL;
    int ex = EXIT_USAGE;

    *changed = false;
    cm_buf_init(&path, 1024);
    if (body == NULL || esc == NULL || cm_buf_printf(&path, "/v1/intents/%s", esc) != CM_OK) {
        fail("out of memory");
        goto out;
    }
    ex = call_body(run, ep, "PUT", cm_buf_cstr(&path), body, &r, &doc);
    *changed = json_is_true(json_object_get(doc, "changed"));
out:
    json_decref(doc);
    ctl_reply_fini(&r);
    cm_buf_fini(&path);
    free(body);
    free(esc);
    return ex;
}

/*
 * Re-delivery: what each instance that answered lacks of the union (intents
 * it missed while down, removals it missed) is PUT to it again.
 */
static int fleet_deliver(const struct ctl_run *run, const struct targets *ts,
                         struct fleet_intents *f, bool report)
{
    int ex = EXIT_OK_;

    for (size_t i = 0; i < ts->n; i++) {
        json_t *missing = f->docs[i] != NULL ? ctl_intents_missing(f->lists[i], f->all) : NULL;
        size_t k, sent = 0;
        json_t *in;

        json_array_foreach(missing, k, in)
        {
            bool changed;
            int e = put_intent(run, &ts->t[i].ep, in, &changed);

            ex = worse(ex, e);
            sent += e == EXIT_OK_ && changed;
        }
        if (sent > 0 || (report && f->docs[i] != NULL && !run->o->json))
            printf("  %-10s %s: %zu intent(s) or removal(s) it missed re-delivered\n",
                   ts->t[i].ep.daemon, ts->t[i].ep.base_url, sent);
        json_decref(missing);
    }
    return ex;
}

/* "drain eur" / "weight default/web eur 3": what an intent is, for people. */
static void intent_words(json_t *in, char *buf, size_t cap)
{
    json_t *v = json_object_get(in, "weight") != NULL ? json_object_get(in, "weight")
                                                      : json_object_get(in, "priority");
    const char *target = json_string_value(json_object_get(in, "member"));
    const char *svc = json_string_value(json_object_get(in, "service"));

    if (target == NULL)
        target = json_string_value(json_object_get(in, "region"));
    snprintf(buf, cap, "%s%s%s %s", json_string_value(json_object_get(in, "kind")),
             svc != NULL ? " " : "", svc != NULL ? svc : "", target != NULL ? target : "?");
    if (v != NULL)
        snprintf(buf + strlen(buf), cap - strlen(buf), " %lld", (long long)json_integer_value(v));
}

/* Writes @in (borrowed) to every instance and says how each took it. */
static int push_intent(const struct ctl_run *run, const struct targets *ts, json_t *in,
                       size_t *accepted)
{
    json_t *results = json_object();
    char what[256];
    int ex = EXIT_OK_;

    *accepted = 0;
    intent_words(in, what, sizeof(what));
    if (!run->o->json)
        printf("intent %s (%s, by %s: \"%s\"%s%s)\n", json_string_value(json_object_get(in, "id")),
               what, json_string_value(json_object_get(in, "author")),
               json_string_value(json_object_get(in, "reason")),
               json_object_get(in, "expires_at") != NULL ? ", until " : "",
               json_object_get(in, "expires_at") != NULL
                   ? json_string_value(json_object_get(in, "expires_at"))
                   : "");
    for (size_t i = 0; i < ts->n; i++) {
        bool changed = false;
        int e = put_intent(run, &ts->t[i].ep, in, &changed);
        const char *how = e == EXIT_OK_           ? (changed ? "added" : "already held")
                          : e == EXIT_UNREACHABLE ? "unreachable: it gets the intent at the next "
                                                    "fedgslbctl intent call (intent sync)"
                                                  : "rejected (see above)";

        *accepted += e == EXIT_OK_;
        ex = worse(ex, e);
        json_object_set_new(results, ts->t[i].ep.daemon, json_string(how));
        if (!run->o->json)
            printf("  %-10s %s: %s\n", ts->t[i].ep.daemon, ts->t[i].ep.base_url, how);
    }
    if (run->o->json)
        print_json_new(json_pack("{s:O,s:o}", "intent", in, "results", results));
    else
        json_decref(results);
    return ex;
}

/* Who runs fedgslbctl: $USER, else the account's name (the default author of intents). */
static const char *user_name(void)
{
    const char *u = getenv("USER");
    const struct passwd *pw;

    if (u != NULL && u[0] != '\0')
        return u;
    pw = getpwuid(getuid());
    return pw != NULL && pw->pw_name != NULL && pw->pw_name[0] != '\0' ? pw->pw_name : NULL;
}

/* ---- intents in the distributed mode: written to etcd (ctl_etcd.h) ---- */

/* Whether intents go through etcd: the configuration has an etcd section. */
static bool etcd_mode(const struct ctl_run *run)
{
    return run->conf != NULL && run->conf->etcd.present;
}

static int etcd_exit(int rc)
{
    return rc == CM_EIO ? EXIT_UNREACHABLE : rc == CM_EINVAL ? EXIT_REJECTED : EXIT_USAGE;
}

/* Writes @in (borrowed) to etcd and says how it went ("written" or "removed"). */
static int etcd_write(const struct ctl_run *run, json_t *in, const char *done, json_t *results)
{
    char err[ERR_MAX] = "", endpoint[200] = "";
    const char *id = json_string_value(json_object_get(in, "id"));
    int64_t revision = 0;
    int rc = ctl_etcd_intent_write(run->conf, run->o->timeout_ms, in, &revision, endpoint,
                                   sizeof(endpoint), err, sizeof(err));

    if (rc != CM_OK) {
        fail("intent %s: %s", id, err);
        json_array_append_new(results, json_pack("{s:s,s:s}", "id", id, "error", err));
        return etcd_exit(rc);
    }
    json_array_append_new(results,
                          json_pack("{s:s,s:s,s:s,s:I}", "id", id, "result", done, "endpoint",
                                    endpoint, "revision", (json_int_t)revision));
    if (!run->o->json)
        printf("  etcd %s: %s %s at revision %" PRId64
               "; every name server and proxy applies it from etcd\n",
               endpoint, id, done, revision);
    return EXIT_OK_;
}

static int etcd_intent_add(const struct ctl_run *run, json_t *in, enum cm_intent_kind kind,
                           const char *target)
{
    json_t *results = json_array();
    char what[256];
    int ex;

    intent_words(in, what, sizeof(what));
    if (!run->o->json)
        printf("intent %s (%s, by %s: \"%s\")\n", json_string_value(json_object_get(in, "id")),
               what, json_string_value(json_object_get(in, "author")),
               json_string_value(json_object_get(in, "reason")));
    ex = etcd_write(run, in, "written", results);
    if (ex == EXIT_OK_ && kind == CM_INTENT_DRAIN && !run->o->json)
        printf("%s drained: the name servers no longer answer with it (undrain %s to undo)\n",
               target, target);
    if (run->o->json)
        print_json_new(json_pack("{s:O,s:o}", "intent", in, "etcd", results));
    else
        json_decref(results);
    return ex;
}

/* The tombstone of @in (an intent + status, borrowed) by @by at @now (new reference). */
static json_t *tombstone_of(json_t *in, const char *by, int64_t now)
{
    json_t *t = json_deep_copy(in);
    char at[32];

    cm_time_format_rfc3339(now, at, sizeof(at));
    if (t != NULL) {
        json_object_del(t, "status");
        json_object_set_new(t, "removed_at", json_string(at));
        json_object_set_new(t, "removed_by", json_string(by));
    }
    return t;
}

static int etcd_intent_remove(const struct ctl_run *run, const char *id, const char *undrain)
{
    const char *by = run->o->author != NULL ? run->o->author : user_name();
    json_t *list = NULL, *results = json_array(), *in;
    char err[ERR_MAX] = "";
    int64_t now = cm_wall_s(), revision;
    size_t found = 0, removed = 0, i;
    int ex = EXIT_OK_;
    int rc = ctl_etcd_intents_read(run->conf, run->o->timeout_ms, now, &list, &revision, err,
                                   sizeof(err));

    if (rc != CM_OK) {
        fail("%s", err);
        json_decref(results);
        return etcd_exit(rc);
    }
    json_array_foreach(list, i, in)
    {
        const char *st = json_string_value(json_object_get(in, "status"));
        const char *member = json_string_value(json_object_get(in, "member"));
        bool match = id != NULL
                         ? strcmp(json_string_value(json_object_get(in, "id")), id) == 0
                         : strcmp(json_string_value(json_object_get(in, "kind")), "drain") == 0 &&
                               member != NULL && strcmp(member, undrain) == 0 && st != NULL &&
                               strcmp(st, "active") == 0;
        json_t *t;

        if (!match)
            continue;
        found++;
        if (st != NULL && strcmp(st, "removed") == 0) {
            if (!run->o->json)
                printf("  etcd: %s was removed already\n", id);
            continue;
        }
        t = tombstone_of(in, by != NULL ? by : "fedgslbctl", now);
        if (t == NULL) {
            fail("out of memory");
            ex = EXIT_USAGE;
            break;
        }
        rc = etcd_write(run, t, "removed", results);
        removed += rc == EXIT_OK_;
        ex = worse(ex, rc);
        json_decref(t);
    }
    if (id != NULL && found == 0) {
        fail("etcd holds no intent %s", id);
        ex = worse(ex, EXIT_REJECTED);
    }
    if (undrain != NULL && ex == EXIT_OK_ && !run->o->json)
        printf("%s undrained: the name servers answer with it again when it is healthy%s\n",
               undrain, found == 0 ? " (it was not drained)" : "");
    if (run->o->json)
        print_json_new(json_pack("{s:I,s:I,s:o}", "matched", (json_int_t)found, "removed",
                                 (json_int_t)removed, "etcd", results));
    else
        json_decref(results);
    json_decref(list);
    return ex;
}

static int etcd_intent_list(const struct ctl_run *run, bool sync)
{
    const char *names[1] = {"etcd"};
    json_t *list = NULL;
    char err[ERR_MAX] = "";
    struct cm_buf out;
    int64_t revision = 0;
    int ex = EXIT_OK_;
    int rc = ctl_etcd_intents_read(run->conf, run->o->timeout_ms, cm_wall_s(), &list, &revision,
                                   err, sizeof(err));

    if (rc != CM_OK) {
        fail("%s", err);
        return etcd_exit(rc);
    }
    cm_buf_init(&out, 16u << 20);
    if (run->o->json) {
        print_json_new(
            json_pack("{s:O,s:{s:I}}", "intents", list, "etcd", "revision", (json_int_t)revision));
    } else if (ctl_intents_text(list, names, &list, 1, &out) != CM_OK) {
        fail("out of memory");
        ex = EXIT_USAGE;
    } else {
        if (sync)
            printf("intents live in etcd: every name server and proxy follows them, nothing to "
                   "re-deliver\n");
        printf("%s(etcd revision %" PRId64 ")\n", cm_buf_cstr(&out), revision);
    }
    cm_buf_fini(&out);
    json_decref(list);
    return ex;
}

/* drain MEMBER, intent add KIND TARGET [VALUE]. */
static int cmd_intent_add(const struct ctl_run *run, const struct targets *ts,
                          enum cm_intent_kind kind, const char *target, const char *value,
                          const char *default_reason)
{
    struct fleet_intents f = {0};
    char err[ERR_MAX] = "";
    uint64_t rnd;
    size_t accepted = 0;
    json_t *in;
    int ex;

    cm_rand_seed(&rnd, &f);
    /* Names are checked by the instances (their answer names the problem). */
    in = ctl_intent_build(run->o, kind, target, value, user_name(), default_reason, NULL,
                          cm_wall_s(), cm_rand_next(&rnd), err, sizeof(err));
    if (in == NULL) {
        fail("%s", err);
        return EXIT_USAGE;
    }
    if (etcd_mode(run)) {
        ex = etcd_intent_add(run, in, kind, target);
        json_decref(in);
        return ex;
    }
    ex = fleet_fetch(run, ts, &f);
    if (ex != EXIT_USAGE)
        ex = worse(ex, fleet_deliver(run, ts, &f, false));
    if (ex != EXIT_USAGE)
        ex = worse(ex, push_intent(run, ts, in, &accepted));
    if (accepted > 0 && kind == CM_INTENT_DRAIN && !run->o->json)
        printf("%s drained: %s no longer answer%s with it (undrain %s to undo)\n", target,
               ts->n > 1 ? "the name servers" : "dnsd", ts->n > 1 ? "" : "s", target);
    json_decref(in);
    fleet_fini(&f, ts->n);
    return ex;
}

/* DELETE /v1/intents/@id on every instance; *removed counts those that held it. */
static int delete_intent(const struct ctl_run *run, const struct targets *ts, const char *id,
                         size_t *removed)
{
    const char *by = run->o->author != NULL ? run->o->author : user_name();
    char *eid = ctl_http_escape(id), *eby = ctl_http_escape(by != NULL ? by : "fedgslbctl");
    struct cm_buf path;
    int ex = EXIT_OK_;

    cm_buf_init(&path, 2048);
    if (eid == NULL || eby == NULL ||
        cm_buf_printf(&path, "/v1/intents/%s?by=%s", eid, eby) != CM_OK) {
        fail("out of memory");
        ex = EXIT_USAGE;
    }
    for (size_t i = 0; ex != EXIT_USAGE && i < ts->n; i++) {
        struct ctl_reply r = {0};
        char err[ERR_MAX] = "";
        int rc = ctl_http_request(&ts->t[i].ep, "DELETE", cm_buf_cstr(&path), NULL, &r, err,
                                  sizeof(err));
        const char *how;

        if (rc != CM_OK) {
            how = "unreachable: it gets the removal at the next fedgslbctl intent call";
            ex = worse(ex, EXIT_UNREACHABLE);
        } else if (r.status == 404) {
            how = "did not hold it";
        } else if (r.status >= 200 && r.status < 300) {
            how = "removed";
            (*removed)++;
        } else {
            ctl_reply_fini(&r);
            ex = worse(ex, call(run, &ts->t[i].ep, "DELETE", cm_buf_cstr(&path), &r, NULL));
            how = "rejected (see above)";
        }
        if (!run->o->json)
            printf("  %-10s %s: %s %s\n", ts->t[i].ep.daemon, ts->t[i].ep.base_url, id, how);
        ctl_reply_fini(&r);
    }
    cm_buf_fini(&path);
    free(eid);
    free(eby);
    return ex;
}

/* intent remove ID; undrain MEMBER (every active drain of it). */
static int cmd_intent_remove(const struct ctl_run *run, const struct targets *ts, const char *id,
                             const char *undrain)
{
    struct fleet_intents f = {0};
    size_t removed = 0, found = 0, i;
    json_t *in;
    int ex;

    if (etcd_mode(run))
        return etcd_intent_remove(run, id, undrain);
    ex = fleet_fetch(run, ts, &f);

    if (ex != EXIT_USAGE)
        ex = worse(ex, fleet_deliver(run, ts, &f, false));
    json_array_foreach(f.all, i, in)
    {
        const char *st = json_string_value(json_object_get(in, "status"));
        bool match =
            id != NULL
                ? strcmp(json_string_value(json_object_get(in, "id")), id) == 0
                : strcmp(json_string_value(json_object_get(in, "kind")), "drain") == 0 &&
                      json_is_string(json_object_get(in, "member")) &&
                      strcmp(json_string_value(json_object_get(in, "member")), undrain) == 0 &&
                      st != NULL && strcmp(st, "active") == 0;

        if (!match || ex == EXIT_USAGE)
            continue;
        found++;
        ex = worse(ex,
                   delete_intent(run, ts, json_string_value(json_object_get(in, "id")), &removed));
    }
    if (id != NULL && found == 0 && ex != EXIT_USAGE) {
        fail("no instance holds intent %s", id);
        ex = worse(ex, EXIT_REJECTED);
    }
    if (undrain != NULL && ex != EXIT_USAGE && ex != EXIT_REJECTED && !run->o->json)
        printf("%s undrained: %s answer%s with it again when it is healthy%s\n", undrain,
               ts->n > 1 ? "the name servers" : "dnsd", ts->n > 1 ? "" : "s",
               found == 0 ? " (it was not drained)" : "");
    if (run->o->json)
        print_json_new(
            json_pack("{s:I,s:I}", "matched", (json_int_t)found, "removed", (json_int_t)removed));
    fleet_fini(&f, ts->n);
    return ex;
}

static int cmd_intent_list(const struct ctl_run *run, const struct targets *ts, bool sync)
{
    struct fleet_intents f = {0};
    const char *names[TARGETS_MAX];
    struct cm_buf out;
    int ex;

    if (etcd_mode(run))
        return etcd_intent_list(run, sync);
    ex = fleet_fetch(run, ts, &f);

    cm_buf_init(&out, 16u << 20);
    for (size_t i = 0; i < ts->n; i++)
        names[i] = ts->t[i].ep.daemon;
    if (ex != EXIT_USAGE && sync) {
        ex = worse(ex, fleet_deliver(run, ts, &f, true));
    } else if (ex != EXIT_USAGE && run->o->json) {
        json_t *by = json_object();

        for (size_t i = 0; i < ts->n; i++)
            json_object_set(by, names[i], f.lists[i] != NULL ? f.lists[i] : json_null());
        print_json_new(json_pack("{s:O,s:o}", "intents", f.all, "instances", by));
    } else if (ex != EXIT_USAGE) {
        if (ctl_intents_text(f.all, names, f.lists, ts->n, &out) != CM_OK)
            ex = EXIT_USAGE;
        else
            fputs(cm_buf_cstr(&out), stdout);
    }
    cm_buf_fini(&out);
    fleet_fini(&f, ts->n);
    return ex;
}

static int cmd_intent(const struct ctl_run *run, const struct targets *ts)
{
    const struct ctl_opts *o = run->o;
    enum cm_intent_kind kind;

    switch (o->intent) {
    case CTL_INTENT_LIST:
        return cmd_intent_list(run, ts, false);
    case CTL_INTENT_SYNC:
        return cmd_intent_list(run, ts, true);
    case CTL_INTENT_REMOVE:
        return cmd_intent_remove(run, ts, o->args[1], NULL);
    case CTL_INTENT_ADD:
        if (!cm_intent_kind_parse(o->args[1], &kind)) {
            fail("intent add: unknown kind \"%s\" (drain, force-up, force-down, evacuate, "
                 "weight, priority)",
                 o->args[1]);
            return EXIT_USAGE;
        }
        return cmd_intent_add(run, ts, kind, o->args[2], o->nargs > 3 ? o->args[3] : NULL, NULL);
    }
    return EXIT_USAGE;
}

static int cmd_state(const struct ctl_run *run, const struct ctl_endpoint *ep)
{
    struct ctl_reply r = {0};
    json_t *doc = NULL;
    int ex = call(run, ep, "GET", "/v1/state", &r, &doc);

    if (ex == EXIT_OK_)
        ex = print_json(doc);
    json_decref(doc);
    ctl_reply_fini(&r);
    return ex;
}

/* ---- main ---- */

/* The one endpoint of daemon @d: --URL, else the deployment's first instance, else the section. */
static int single_endpoint(const struct ctl_run *run, enum ctl_daemon d, struct ctl_endpoint *ep)
{
    static const enum cm_instance_kind kinds[] = {
        [CTL_DAEMON_DNSD] = CM_INSTANCE_NAME_SERVER,
        [CTL_DAEMON_HEALTH] = CM_INSTANCE_VANTAGE,
        [CTL_DAEMON_PROXY] = CM_INSTANCE_PROXY,
    };
    const struct cm_conf_instance *in = NULL;
    size_t n = 0;

    if (run->conf != NULL && run->o->url[d] == NULL)
        in = cm_conf_instances(run->conf, kinds[d], &n);
    if (n > 0)
        return endpoint_init_at(run, d, in[0].name, &in[0].control, ep);
    return endpoint_init(run, d, ep);
}

static int run_daemon_cmd(const struct ctl_opts *o)
{
    struct ctl_run run = {.o = o};
    enum ctl_daemon d = o->cmd == CTL_CMD_STATE ? o->daemon : CTL_DAEMON_DNSD;
    struct ctl_endpoint ep = {0};
    struct targets ts = {0};
    char err[CM_CONF_ERR_MAX] = "";
    bool fleet = o->cmd == CTL_CMD_STATUS || o->cmd == CTL_CMD_DRAIN || o->cmd == CTL_CMD_UNDRAIN ||
                 o->cmd == CTL_CMD_INTENT;
    int ex;

    if (cm_conf_load(o->config, &run.conf, err, sizeof(err)) != CM_OK) {
        /* With the URL on the command line and no config asked for, the
         * default config is optional. */
        if (o->url[d] == NULL || o->config_given) {
            fail("%s", err);
            return EXIT_USAGE;
        }
        run.conf = NULL;
    }
    ex = fleet ? targets_init(&run, true, &ts) : single_endpoint(&run, d, &ep);
    if (ex != EXIT_OK_)
        goto out;
    switch (o->cmd) {
    case CTL_CMD_STATUS:
        ex = cmd_status(&run, &ts);
        break;
    case CTL_CMD_EXPLAIN:
        ex = cmd_explain(&run, &ep);
        break;
    case CTL_CMD_DRAIN:
        ex = cmd_intent_add(&run, &ts, CM_INTENT_DRAIN, o->arg, NULL, "fedgslbctl drain");
        break;
    case CTL_CMD_UNDRAIN:
        ex = cmd_intent_remove(&run, &ts, NULL, o->arg);
        break;
    case CTL_CMD_INTENT:
        ex = cmd_intent(&run, &ts);
        break;
    case CTL_CMD_STATE:
        ex = cmd_state(&run, &ep);
        break;
    default:
        ex = EXIT_USAGE;
        break;
    }
out:
    targets_fini(&ts);
    ctl_endpoint_fini(&ep);
    cm_conf_unref(run.conf);
    return ex;
}

/* The configuration reference; fails naming keys without a meaning. */
static int cmd_config_reference(void)
{
    struct cm_buf out, problems;
    int ex = EXIT_OK_;

    cm_buf_init(&out, 1u << 20);
    cm_buf_init(&problems, 1u << 16);
    if (cm_conf_reference(&out, &problems) != CM_OK) {
        fail("the configuration reference is incomplete:\n%s", cm_buf_cstr(&problems));
        ex = EXIT_USAGE;
    } else {
        fputs(cm_buf_cstr(&out), stdout);
    }
    cm_buf_fini(&problems);
    cm_buf_fini(&out);
    return ex;
}

int main(int argc, char **argv)
{
    struct ctl_opts o;
    char err[ERR_MAX] = "";
    int ex;

    if (ctl_args_parse(argc, (const char *const *)argv, getenv("FEDGSLB_CONFIG"), &o, err,
                       sizeof(err)) != CM_OK) {
        fail("%s", err);
        return EXIT_USAGE;
    }
    if (o.cmd == CTL_CMD_HELP) {
        fputs(ctl_args_usage(), stdout);
        return EXIT_OK_;
    }
    if (o.cmd == CTL_CMD_CHECK_CONFIG)
        return cmd_check_config(&o);
    if (o.cmd == CTL_CMD_CONFIG_REF)
        return cmd_config_reference();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fail("cannot initialise libcurl");
        return EXIT_USAGE;
    }
    ex = run_daemon_cmd(&o);
    curl_global_cleanup();
    return ex;
}
