/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fedgslbctl.c -- the operator CLI: the human front of the control APIs.
 *
 * Exit status: 0 ok, 1 usage or configuration error, 2 daemon unreachable
 * (or an unusable reply), 3 request rejected by the daemon (401, 4xx, 5xx).
 * The bearer token is read from the configuration (or --token-file) and only
 * ever goes into the Authorization header.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_net.h"
#include "common/cm_secret.h"
#include "common/cm_str.h"
#include "ctl/ctl_args.h"
#include "ctl/ctl_etcd.h"
#include "ctl/ctl_http.h"
#include "ctl/ctl_render.h"

enum ctl_exit {
    EXIT_OK_ = 0,         /* done */
    EXIT_USAGE = 1,       /* bad command line or configuration */
    EXIT_UNREACHABLE = 2, /* no HTTP exchange with the daemon, or garbage back */
    EXIT_REJECTED = 3,    /* the daemon said no */
};

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
    if (o->json)
        printf("{\"ok\": true, \"regions\": %zu, \"members\": %zu, \"services\": %zu}\n",
               conf->region_count, conf->member_count, conf->service_count);
    else
        printf("ok: %zu regions, %zu members, %zu services\n", conf->region_count,
               conf->member_count, conf->service_count);
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

static int endpoint_init(const struct ctl_run *run, enum ctl_daemon d, struct ctl_endpoint *ep)
{
    const struct ctl_opts *o = run->o;
    const struct cm_conf_control *c = run->conf != NULL ? section_control(run->conf, d) : NULL;
    const char *name = ctl_daemon_name(d);
    char err[ERR_MAX] = "";

    memset(ep, 0, sizeof(*ep));
    ep->daemon = name;
    ep->timeout_ms = o->timeout_ms;
    if (o->url[d] != NULL) {
        size_t n = strlen(o->url[d]);

        while (n > 0 && o->url[d][n - 1] == '/')
            n--;
        ep->base_url = strndup(o->url[d], n);
    } else if (c != NULL && c->enabled) {
        char listen[CM_ADDR_STRLEN];

        cm_addr_format((const struct sockaddr *)&c->listen.ss, listen, sizeof(listen));
        ep->base_url = ctl_http_url_from_listen(listen, c->tls.enabled);
        ep->ca_file = c->tls.ca_file;
    } else {
        fail("%s: no %s.control section; give --%s URL", o->config, name, name);
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
static int call(const struct ctl_run *run, const struct ctl_endpoint *ep, const char *method,
                const char *path, struct ctl_reply *reply, json_t **doc)
{
    char err[ERR_MAX] = "";
    json_error_t jerr;
    json_t *hold = NULL;
    const char *reason;
    int rc;

    rc = ctl_http_request(ep, method, path, NULL, reply, err, sizeof(err));
    if (rc != CM_OK) {
        fail("cannot reach %s control API at %s: %s", ep->daemon, ep->base_url, err);
        return EXIT_UNREACHABLE;
    }
    if (reply->status == 401) {
        if (ep->token == NULL)
            fail("%s requires a token and none is configured (set %s.control.token_file or "
                 "give --token-file)",
                 ep->daemon, ep->daemon);
        else
            fail("token rejected by %s (check --token-file / %s.control.token_file)", ep->daemon,
                 ep->daemon);
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

/* ---- commands talking to a daemon ---- */

static int cmd_status(const struct ctl_run *run, const struct ctl_endpoint *ep)
{
    struct ctl_reply r1 = {0}, r2 = {0};
    json_t *state = NULL, *answers = NULL, *model = NULL, *etcd = NULL;
    char err[ERR_MAX] = "";
    struct cm_buf out;
    int ex;

    cm_buf_init(&out, 64u << 20);
    ex = call(run, ep, "GET", "/v1/state", &r1, &state);
    if (ex == EXIT_OK_)
        ex = call(run, ep, "GET", "/v1/answers", &r2, &answers);
    if (ex != EXIT_OK_)
        goto out;
    model = ctl_status_model(state, answers, ep->base_url, err, sizeof(err));
    if (model == NULL) {
        fail("%s", err);
        ex = EXIT_UNREACHABLE;
        goto out;
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
               (etcd != NULL && ctl_etcd_text(etcd, &out) != CM_OK)) {
        fail("out of memory");
        ex = EXIT_USAGE;
    } else {
        fputs(cm_buf_cstr(&out), stdout);
    }
out:
    json_decref(etcd);
    json_decref(model);
    json_decref(state);
    json_decref(answers);
    ctl_reply_fini(&r1);
    ctl_reply_fini(&r2);
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

static int cmd_drain(const struct ctl_run *run, const struct ctl_endpoint *ep, bool drain)
{
    const struct ctl_opts *o = run->o;
    struct ctl_reply r = {0};
    struct cm_buf path;
    char *esc = ctl_http_escape(o->arg);
    int ex = EXIT_USAGE;

    cm_buf_init(&path, 8192);
    if (esc == NULL || cm_buf_printf(&path, "/v1/members/%s/drain", esc) != CM_OK) {
        fail("%s: member name too long", drain ? "drain" : "undrain");
        goto out;
    }
    ex = call(run, ep, drain ? "PUT" : "DELETE", cm_buf_cstr(&path), &r, NULL);
    if (ex != EXIT_OK_)
        goto out;
    if (o->json)
        printf("%s\n", cm_buf_cstr(&r.body));
    else if (drain)
        printf("%s drained: dnsd no longer answers with it (undrain %s to undo)\n", o->arg, o->arg);
    else
        printf("%s undrained: dnsd answers with it again when it is healthy\n", o->arg);
out:
    ctl_reply_fini(&r);
    cm_buf_fini(&path);
    free(esc);
    return ex;
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

static int run_daemon_cmd(const struct ctl_opts *o)
{
    struct ctl_run run = {.o = o};
    enum ctl_daemon d = o->cmd == CTL_CMD_STATE ? o->daemon : CTL_DAEMON_DNSD;
    struct ctl_endpoint ep = {0};
    char err[CM_CONF_ERR_MAX] = "";
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
    ex = endpoint_init(&run, d, &ep);
    if (ex != EXIT_OK_)
        goto out;
    switch (o->cmd) {
    case CTL_CMD_STATUS:
        ex = cmd_status(&run, &ep);
        break;
    case CTL_CMD_EXPLAIN:
        ex = cmd_explain(&run, &ep);
        break;
    case CTL_CMD_DRAIN:
    case CTL_CMD_UNDRAIN:
        ex = cmd_drain(&run, &ep, o->cmd == CTL_CMD_DRAIN);
        break;
    case CTL_CMD_STATE:
        ex = cmd_state(&run, &ep);
        break;
    default:
        ex = EXIT_USAGE;
        break;
    }
out:
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
