/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_ctl.c -- the control API's routing and access layer: built-in routes,
 * daemon routes by longest prefix, tokens and what each grants, JSON replies,
 * TLS settings, and the Prometheus text helpers. The connections themselves
 * (framing, deadlines, caps) are in cm_ctl_conn.c.
 *
 * Everything runs in the event loop that owns the ctl; nothing here blocks.
 * Replies are counted by status code as they are sent.
 */
#include "common/cm_ctl.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/cm_conf.h"
#include "common/cm_ctl_int.h"
#include "common/cm_err.h"
#include "common/cm_log.h"
#include "common/cm_net.h"

#ifndef FEDGSLB_VERSION
#define FEDGSLB_VERSION "unknown"
#endif

#define CTL_METRICS_MAX  (16u << 20) /* cap on one /metrics page */
#define CTL_ERRMSG_MAX   512         /* longest error reason sent */
#define CTL_CT_JSON      "application/json"
#define CTL_CT_TEXT      "text/plain; charset=utf-8"
#define CTL_CT_PROM      "text/plain; version=0.0.4; charset=utf-8"
#define CTL_AUTH_MISSING "missing or invalid bearer token"

/* ---- Prometheus text helpers ------------------------------------------- */

/* HELP text escapes backslash and newline; label values also the quote. */
static void metrics_escape(struct cm_buf *out, const char *s, bool quote)
{
    const char *run = s;

    for (; *s != '\0'; s++) {
        const char *rep = NULL;

        if (*s == '\\')
            rep = "\\\\";
        else if (*s == '\n')
            rep = "\\n";
        else if (quote && *s == '"')
            rep = "\\\"";
        if (rep == NULL)
            continue;
        cm_buf_append(out, run, (size_t)(s - run));
        cm_buf_append_str(out, rep);
        run = s + 1;
    }
    cm_buf_append(out, run, (size_t)(s - run));
}

void cm_metrics_label_escape(struct cm_buf *out, const char *value)
{
    metrics_escape(out, value, true);
}

void cm_metrics_label(struct cm_buf *labels, const char *key, const char *value)
{
    if (labels->len > 0)
        cm_buf_append_str(labels, ",");
    cm_buf_append_str(labels, key);
    cm_buf_append_str(labels, "=\"");
    metrics_escape(labels, value, true);
    cm_buf_append_str(labels, "\"");
}

void cm_metrics_family(struct cm_buf *out, const char *name, const char *type, const char *help)
{
    cm_buf_printf(out, "# HELP %s ", name);
    metrics_escape(out, help, false);
    cm_buf_printf(out, "\n# TYPE %s %s\n", name, type);
}

/* Integers print without decimals; others in the shortest form that reads back
 * to the same double (as Go's strconv does for the Prometheus client). */
static void metrics_value(char *buf, size_t cap, double v)
{
    if (isnan(v)) {
        snprintf(buf, cap, "NaN");
    } else if (isinf(v)) {
        snprintf(buf, cap, "%s", v > 0 ? "+Inf" : "-Inf");
    } else if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(int64_t)v) {
        snprintf(buf, cap, "%.0f", v); /* |v| < 2^53: exact, and the cast is defined */
    } else {
        snprintf(buf, cap, "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, cap, "%.17g", v);
    }
}

void cm_metrics_sample(struct cm_buf *out, const char *name, const char *labels, double value)
{
    char num[64];

    metrics_value(num, sizeof(num), value);
    if (labels != NULL && labels[0] != '\0')
        cm_buf_printf(out, "%s{%s} %s\n", name, labels, num);
    else
        cm_buf_printf(out, "%s %s\n", name, num);
}

/* ---- replies ------------------------------------------------------------ */

static void reply_raw(struct cm_ctl_req *req, int code, const char *ctype, const char *body,
                      size_t len)
{
    ctl_conn_send(req, code, ctype, body, len);
}

void cm_ctl_reply_bytes(struct cm_ctl_req *req, int code, const char *ctype, const void *body,
                        size_t len)
{
    reply_raw(req, code, ctype, body, len);
}

void cm_ctl_reply_header(struct cm_ctl_req *req, const char *name, const char *value)
{
    if (strpbrk(name, "\r\n") != NULL || strpbrk(value, "\r\n") != NULL)
        return;
    cm_buf_printf(&req->headers, "%s: %s\r\n", name, value);
}

void cm_ctl_reply_json(struct cm_ctl_req *req, int code, json_t *doc)
{
    static const char fail[] = "{\"error\":\"internal error: cannot serialize reply\"}\n";
    char *text = NULL;
    size_t len;

    if (doc != NULL)
        text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (text == NULL) {
        reply_raw(req, 500, CTL_CT_JSON, fail, sizeof(fail) - 1);
        return;
    }
    /* The serializer left room for nothing: add the newline by copying once. */
    len = strlen(text);
    {
        char *withnl = realloc(text, len + 2);

        if (withnl == NULL) {
            free(text);
            reply_raw(req, 500, CTL_CT_JSON, fail, sizeof(fail) - 1);
            return;
        }
        text = withnl;
    }
    text[len] = '\n';
    text[len + 1] = '\0';
    reply_raw(req, code, CTL_CT_JSON, text, len + 1);
    free(text);
}

void cm_ctl_reply_error(struct cm_ctl_req *req, int code, const char *fmt, ...)
{
    char msg[CTL_ERRMSG_MAX];
    json_t *s;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    s = json_string(msg);
    if (s == NULL) {
        /* Not UTF-8 (a reason quoting a peer's bytes, or a cut sequence):
         * keep the ASCII and mark the rest. */
        for (char *p = msg; *p != '\0'; p++) {
            if ((unsigned char)*p >= 0x80)
                *p = '?';
        }
        s = json_string(msg);
    }
    cm_ctl_reply_json(req, code, s == NULL ? NULL : json_pack("{s:o}", "error", s));
}

static void allow_text(unsigned methods, char *buf, size_t cap)
{
    static const unsigned order[] = {CM_HTTP_GET, CM_HTTP_PUT, CM_HTTP_POST, CM_HTTP_DELETE};
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        int n;

        if ((methods & order[i]) == 0)
            continue;
        n = snprintf(buf + used, cap - used, "%s%s", used > 0 ? ", " : "",
                     cm_http_method_name(order[i]));
        if (n < 0 || (size_t)n >= cap - used)
            return;
        used += (size_t)n;
    }
}

static void reply_405(struct cm_ctl_req *req, unsigned allowed)
{
    char allow[64];

    allow_text(allowed, allow, sizeof(allow));
    cm_ctl_reply_header(req, "Allow", allow);
    cm_ctl_reply_error(req, 405, "method not allowed; allowed: %s", allow);
}

/* ---- request helpers ---------------------------------------------------- */

unsigned cm_ctl_req_method(const struct cm_ctl_req *req)
{
    return req->method;
}

int cm_ctl_body(struct cm_ctl_req *req, struct cm_buf *body)
{
    cm_buf_reset(body);
    if (req->body.len > body->max)
        return CM_ETOOBIG;
    /* One append of nothing makes the buffer hold "" (never NULL) after. */
    if (cm_buf_append(body, "", 0) != CM_OK)
        return CM_ENOMEM;
    if (req->body.len > 0 && cm_buf_append(body, req->body.data, req->body.len) != CM_OK) {
        cm_buf_reset(body);
        return CM_ENOMEM;
    }
    return CM_OK;
}

const char *cm_ctl_query_param(const struct evkeyvalq *q, const char *key)
{
    /* Not evhttp_find_header(): it takes a non-const list. */
    const struct evkeyval *kv;

    TAILQ_FOREACH (kv, q, next) {
        if (strcmp(kv->key, key) == 0)
            return kv->value;
    }
    return NULL;
}

int cm_ctl_query_parse(struct cm_ctl_req *req, struct evkeyvalq *q)
{
    TAILQ_INIT(q);
    if (req->query == NULL || req->query[0] == '\0')
        return CM_OK;
    if (evhttp_parse_query_str(req->query, q) != 0)
        return CM_EPARSE;
    return CM_OK;
}

/* ---- tokens and access -------------------------------------------------- */

/* Compares in time that depends only on the secret's length. */
static bool token_equal(const char *given, size_t given_len, const char *secret, size_t secret_len)
{
    volatile unsigned char diff = given_len != secret_len;

    for (size_t i = 0; i < secret_len; i++) {
        unsigned char g = i < given_len ? (unsigned char)given[i] : 0;

        diff |= (unsigned char)(g ^ (unsigned char)secret[i]);
    }
    return diff == 0;
}

/* The token an Authorization value presents; every token is compared, so
 * the time taken does not tell which one (nearly) matched. */
static const struct ctl_token *token_lookup(const struct cm_ctl *ctl, const char *auth, size_t len)
{
    const struct ctl_token *hit = NULL;

    if (auth == NULL || len < 7 || strncasecmp(auth, "Bearer ", 7) != 0)
        return NULL;
    auth += 7;
    len -= 7;
    while (len > 0 && (*auth == ' ' || *auth == '\t')) {
        auth++;
        len--;
    }
    for (size_t i = 0; i < ctl->token_count; i++) {
        const struct ctl_token *t = &ctl->tokens[i];

        if (token_equal(auth, len, t->secret, t->len) && hit == NULL)
            hit = t;
    }
    return hit;
}

/* 0 when @who may use a route open to @access, else 401 or 403. */
static int access_check(const struct cm_ctl *ctl, enum cm_ctl_access access,
                        const struct ctl_token *who, bool token_given)
{
    if (access == CM_CTL_PUBLIC || ctl->token_count == 0)
        return 0;
    if (token_given && who == NULL)
        return 401; /* a wrong token is an error even where none is needed */
    switch (access) {
    case CM_CTL_READ:
        return ctl->open_read || who != NULL ? 0 : 401;
    case CM_CTL_VANTAGE:
        return who != NULL ? 0 : 401;
    case CM_CTL_OPERATOR:
        return who == NULL ? 401 : who->vantage == NULL ? 0 : 403;
    default:
        return 0;
    }
}

static void reply_denied(struct cm_ctl_req *req, int code)
{
    if (code == 401) {
        cm_ctl_reply_header(req, "WWW-Authenticate", "Bearer realm=\"fedgslb\"");
        cm_ctl_reply_error(req, 401, CTL_AUTH_MISSING);
    } else {
        cm_ctl_reply_error(req, 403, "this token may not do that");
    }
}

/* ---- built-in routes ---------------------------------------------------- */

static void builtin_healthz(void *arg, struct cm_ctl_req *req, const char *rest)
{
    (void)arg;
    (void)rest;
    reply_raw(req, 200, CTL_CT_TEXT, "ok\n", 3);
}

static void builtin_metrics(void *arg, struct cm_ctl_req *req, const char *rest)
{
    struct cm_ctl *ctl = arg;
    struct cm_buf out, labels;

    (void)rest;
    cm_buf_init(&out, CTL_METRICS_MAX);
    cm_buf_init(&labels, 256);
    cm_metrics_family(&out, "fedgslb_ctl_requests_total", "counter",
                      "Control API requests answered, by HTTP status code.");
    for (int code = 100; code < CTL_CODE_MAX; code++) {
        char lbl[32];

        if (ctl->replies[code] == 0)
            continue;
        snprintf(lbl, sizeof(lbl), "code=\"%d\"", code);
        cm_metrics_sample(&out, "fedgslb_ctl_requests_total", lbl, (double)ctl->replies[code]);
    }
    cm_metrics_family(&out, "fedgslb_ctl_connections", "gauge",
                      "Control API connections open now.");
    cm_metrics_sample(&out, "fedgslb_ctl_connections", NULL, (double)ctl->conn_count);
    cm_metrics_family(&out, "fedgslb_ctl_connections_closed_total", "counter",
                      "Control API connections closed by the server before their request was "
                      "served: evicted (table full, oldest idle or unfinished head), refused "
                      "(table full of busy connections), deadline (request not received in time).");
    cm_metrics_sample(&out, "fedgslb_ctl_connections_closed_total", "reason=\"evicted\"",
                      (double)ctl->evicted);
    cm_metrics_sample(&out, "fedgslb_ctl_connections_closed_total", "reason=\"refused\"",
                      (double)ctl->refused);
    cm_metrics_sample(&out, "fedgslb_ctl_connections_closed_total", "reason=\"deadline\"",
                      (double)ctl->timeouts);
    cm_metrics_family(&out, "fedgslb_ctl_accept_exhausted_total", "counter",
                      "Control API accept() failures for lack of descriptors or memory (each "
                      "pauses accepting briefly).");
    cm_metrics_sample(&out, "fedgslb_ctl_accept_exhausted_total", NULL,
                      (double)cm_accept_guard_exhausted(&ctl->guard));
    cm_metrics_family(&out, "process_start_time_seconds", "gauge",
                      "Start time of the process since unix epoch in seconds.");
    cm_metrics_sample(&out, "process_start_time_seconds", NULL, ctl->start_time_s);
    cm_metrics_family(&out, "fedgslb_build_info", "gauge",
                      "Build information; the value is always 1.");
    cm_metrics_label(&labels, "version", FEDGSLB_VERSION);
    cm_metrics_label(&labels, "libevent", event_get_version());
    cm_metrics_label(&labels, "jansson", JANSSON_VERSION);
    cm_metrics_sample(&out, "fedgslb_build_info", cm_buf_cstr(&labels), 1);
    if (ctl->cbs.metrics != NULL)
        ctl->cbs.metrics(ctl->cbs.arg, &out);
    reply_raw(req, 200, CTL_CT_PROM, cm_buf_cstr(&out), out.len);
    cm_buf_fini(&labels);
    cm_buf_fini(&out);
}

/*
 * Our own failures are 5xx; a document older than the one held is 409
 * (Conflict: the sender may retry with a newer one); another vantage's
 * document is 403; everything else is the document's fault, 400.
 */
static int state_put_status(int rc)
{
    if (rc == CM_ENOMEM || rc == CM_EIO || rc == CM_ENOSPC)
        return 500;
    if (rc == CM_EEXIST || rc == CM_ENOTSUP) /* stale, or the documents come from etcd */
        return 409;
    if (rc == CM_EACCES)
        return 403;
    return 400;
}

static void builtin_state_put(void *arg, struct cm_ctl_req *req, const char *rest)
{
    struct cm_ctl *ctl = arg;
    char reason[CTL_ERRMSG_MAX] = "";
    const char *vantage = req->who != NULL ? req->who->vantage : NULL;
    int rc;

    (void)rest;
    rc = ctl->cbs.state_put(ctl->cbs.arg, cm_buf_cstr(&req->body), req->body.len, vantage, reason,
                            sizeof(reason));
    if (rc == CM_OK) {
        cm_ctl_reply_json(req, 200, json_pack("{s:b}", "ok", 1));
        return;
    }
    cm_ctl_reply_error(req, state_put_status(rc), "%s",
                       reason[0] != '\0' ? reason : cm_strerror(rc));
}

static void builtin_state_get(void *arg, struct cm_ctl_req *req, const char *rest)
{
    struct cm_ctl *ctl = arg;
    json_t *doc;

    (void)rest;
    if (ctl->cbs.state_text != NULL) {
        size_t len = 0;
        const char *text = ctl->cbs.state_text(ctl->cbs.arg, &len);

        if (text == NULL)
            cm_ctl_reply_error(req, 404, "no state");
        else
            ctl_conn_send2(req, 200, CTL_CT_JSON, text, len, "\n", 1);
        return;
    }
    doc = ctl->cbs.state_get != NULL ? ctl->cbs.state_get(ctl->cbs.arg) : NULL;
    if (doc == NULL) {
        cm_ctl_reply_error(req, 404, "no state");
        return;
    }
    cm_ctl_reply_json(req, 200, doc);
}

static void builtin_state_forget(void *arg, struct cm_ctl_req *req, const char *rest)
{
    struct cm_ctl *ctl = arg;
    char reason[CTL_ERRMSG_MAX] = "";
    int rc;

    if (rest[0] == '\0' || strchr(rest, '/') != NULL) {
        cm_ctl_reply_error(req, 404, "not found; use /v1/state/vantages/NAME");
        return;
    }
    rc = ctl->cbs.state_forget(ctl->cbs.arg, rest, reason, sizeof(reason));
    if (rc == CM_ENOENT) {
        cm_ctl_reply_error(req, 404, "no document of vantage \"%s\"", rest);
        return;
    }
    if (rc != CM_OK) {
        cm_ctl_reply_error(req, rc == CM_ENOTSUP ? 409 : 500, "%s",
                           reason[0] != '\0' ? reason : cm_strerror(rc));
        return;
    }
    cm_ctl_reply_json(req, 200, json_pack("{s:s,s:b}", "vantage", rest, "forgotten", 1));
}

/* ---- routing ------------------------------------------------------------ */

static int route_add(struct cm_ctl *ctl, unsigned methods, const char *prefix, bool exact,
                     enum cm_ctl_access access, cm_ctl_route_fn *fn, void *arg)
{
    struct ctl_route *routes, *r;

    if (fn == NULL || prefix == NULL || prefix[0] != '/' || methods == 0 ||
        (methods & ~(unsigned)CTL_METHODS) != 0)
        return CM_EINVAL;
    for (size_t i = 0; i < ctl->route_count; i++) {
        if ((ctl->routes[i].methods & methods) != 0 && strcmp(ctl->routes[i].prefix, prefix) == 0)
            return CM_EEXIST;
    }
    routes = realloc(ctl->routes, (ctl->route_count + 1) * sizeof(*routes));
    if (routes == NULL)
        return CM_ENOMEM;
    ctl->routes = routes;
    r = &routes[ctl->route_count];
    r->prefix = strdup(prefix);
    if (r->prefix == NULL)
        return CM_ENOMEM;
    r->prefix_len = strlen(prefix);
    r->exact = exact;
    r->methods = methods;
    r->access = access;
    r->fn = fn;
    r->arg = arg;
    ctl->route_count++;
    return CM_OK;
}

int cm_ctl_route(struct cm_ctl *ctl, unsigned methods, const char *prefix,
                 enum cm_ctl_access access, cm_ctl_route_fn *fn, void *arg)
{
    return route_add(ctl, methods, prefix, false, access, fn, arg);
}

static bool route_matches(const struct ctl_route *r, const char *path)
{
    if (r->exact)
        return strcmp(path, r->prefix) == 0;
    return strncmp(path, r->prefix, r->prefix_len) == 0;
}

/* The longest matching prefix; several routes may share it, one per method. */
static const struct ctl_route *route_find(const struct cm_ctl *ctl, const char *path,
                                          unsigned method, unsigned *allowed)
{
    const struct ctl_route *best = NULL, *hit = NULL;

    *allowed = 0;
    for (size_t i = 0; i < ctl->route_count; i++) {
        const struct ctl_route *r = &ctl->routes[i];

        if (route_matches(r, path) && (best == NULL || r->prefix_len > best->prefix_len))
            best = r;
    }
    for (size_t i = 0; best != NULL && i < ctl->route_count; i++) {
        const struct ctl_route *r = &ctl->routes[i];

        if (r->exact != best->exact || strcmp(r->prefix, best->prefix) != 0)
            continue;
        *allowed |= r->methods;
        if ((r->methods & method) != 0)
            hit = r;
    }
    return hit;
}

int ctl_req_admit(struct cm_ctl *ctl, struct cm_ctl_req *req, const struct cm_http_head *h)
{
    const struct ctl_route *hit;
    unsigned allowed;
    int code;

    req->who = token_lookup(ctl, h->auth, h->auth_len);
    hit = route_find(ctl, req->path, req->method, &allowed);
    if (hit == NULL && allowed == 0) {
        cm_ctl_reply_error(req, 404, "not found");
        return 404;
    }
    if (hit == NULL && req->method == CM_HTTP_OTHER) {
        cm_ctl_reply_error(req, 501, "method not implemented");
        return 501;
    }
    if (hit == NULL) {
        reply_405(req, allowed);
        return 405;
    }
    code = access_check(ctl, hit->access, req->who, h->auth != NULL);
    if (code != 0) {
        reply_denied(req, code);
        return code;
    }
    req->route = hit;
    return 0;
}

void ctl_req_dispatch(struct cm_ctl *ctl, struct cm_ctl_req *req)
{
    (void)ctl;
    req->route->fn(req->route->arg, req, req->path + req->route->prefix_len);
}

/* ---- settings: tokens, TLS ---------------------------------------------- */

static void tokens_free(struct ctl_token *tokens, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        explicit_bzero(tokens[i].secret, tokens[i].len);
        free(tokens[i].secret);
        free(tokens[i].vantage);
    }
    free(tokens);
}

static int token_add(struct ctl_token *t, const char *secret, const char *vantage)
{
    t->secret = strdup(secret);
    t->len = strlen(secret);
    t->vantage = vantage != NULL ? strdup(vantage) : NULL;
    if (t->secret == NULL || (vantage != NULL && t->vantage == NULL))
        return CM_ENOMEM;
    return CM_OK;
}

/* The operator token first, then one per vantage. */
static int tokens_from_conf(const struct cm_conf_control *conf, struct ctl_token **out,
                            size_t *count)
{
    size_t n = (conf->token != NULL ? 1 : 0) + conf->vantage_token_count, used = 0;
    struct ctl_token *t = calloc(n + 1, sizeof(*t));
    int rc = CM_OK;

    if (t == NULL)
        return CM_ENOMEM;
    if (conf->token != NULL)
        rc = token_add(&t[used++], conf->token, NULL);
    for (size_t i = 0; rc == CM_OK && i < conf->vantage_token_count; i++)
        rc = token_add(&t[used++], conf->vantage_tokens[i].token, conf->vantage_tokens[i].vantage);
    if (rc != CM_OK) {
        tokens_free(t, used);
        return rc;
    }
    *out = t;
    *count = n;
    return CM_OK;
}

/* "file: what failed: OpenSSL's reason". */
static int tls_fail(char *err, size_t errlen, const char *what, const char *path)
{
    char reason[256] = "unknown error";
    unsigned long e = ERR_get_error();

    if (e != 0)
        ERR_error_string_n(e, reason, sizeof(reason));
    ERR_clear_error();
    cm_errf(err, errlen, "control.tls.%s %s: %s", what, path, reason);
    return CM_ECONFIG;
}

/* A server context from control.tls; NULL in *out when TLS is off. */
static int tls_from_conf(const struct cm_conf_control_tls *tls, SSL_CTX **out, char *err,
                         size_t errlen)
{
    SSL_CTX *ctx;
    int rc = CM_OK;

    *out = NULL;
    if (!tls->enabled)
        return CM_OK;
    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return tls_fail(err, errlen, "certificate", tls->certificate);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, tls->certificate) != 1)
        rc = tls_fail(err, errlen, "certificate", tls->certificate);
    else if (SSL_CTX_use_PrivateKey_file(ctx, tls->key, SSL_FILETYPE_PEM) != 1)
        rc = tls_fail(err, errlen, "key", tls->key);
    else if (SSL_CTX_check_private_key(ctx) != 1)
        rc = tls_fail(err, errlen, "key", tls->key);
    if (rc == CM_OK && tls->client_ca != NULL) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(tls->client_ca);

        if (names == NULL || SSL_CTX_load_verify_locations(ctx, tls->client_ca, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            rc = tls_fail(err, errlen, "client_ca", tls->client_ca);
        } else {
            SSL_CTX_set_client_CA_list(ctx, names);
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        }
    }
    if (rc != CM_OK) {
        SSL_CTX_free(ctx);
        return rc;
    }
    *out = ctx;
    return CM_OK;
}

int cm_ctl_reload(struct cm_ctl *ctl, const struct cm_conf_control *conf, char *err, size_t errlen)
{
    struct ctl_token *tokens = NULL;
    size_t count = 0;
    SSL_CTX *ssl = NULL;
    int rc;

    rc = tls_from_conf(&conf->tls, &ssl, err, errlen);
    if (rc != CM_OK)
        return rc;
    if (ctl->fd >= 0 && (ssl == NULL) != (ctl->ssl == NULL)) {
        SSL_CTX_free(ssl);
        cm_errf(err, errlen, "control.tls: turning TLS on or off needs a restart");
        return CM_ECONFIG;
    }
    rc = tokens_from_conf(conf, &tokens, &count);
    if (rc != CM_OK) {
        SSL_CTX_free(ssl);
        cm_err_oom(err, errlen, "control");
        return rc;
    }
    tokens_free(ctl->tokens, ctl->token_count);
    ctl->tokens = tokens;
    ctl->token_count = count;
    SSL_CTX_free(ctl->ssl); /* open connections hold their own reference */
    ctl->ssl = ssl;
    ctl->head_ms = conf->request_timeout_ms > 0 ? conf->request_timeout_ms : CM_CTL_TIMEOUT_MS;
    ctl->conn_max = conf->max_connections > 0 ? conf->max_connections : CM_CTL_CONN_MAX;
    ctl->open_read =
        conf->public_read || cm_addr_is_loopback((const struct sockaddr *)&conf->listen.ss);
    return CM_OK;
}

/* ---- lifecycle ---------------------------------------------------------- */

/* From /proc: boot time plus the process's start in clock ticks since boot.
 * Falls back to now (the ctl is made at startup). */
static double process_start_time(void)
{
    double now = (double)time(NULL);
    unsigned long long start_ticks = 0, btime = 0;
    long ticks_per_s = sysconf(_SC_CLK_TCK);
    char line[1024];
    const char *p;
    char *end;
    FILE *fp;
    size_t n;

    fp = fopen("/proc/self/stat", "r");
    if (fp == NULL)
        return now;
    n = fread(line, 1, sizeof(line) - 1, fp);
    fclose(fp);
    line[n] = '\0';
    p = strrchr(line, ')'); /* the command name may hold spaces and ')' */
    if (p == NULL || ticks_per_s <= 0)
        return now;
    /* Fields 3 (state) to 21 follow; field 22 is starttime. */
    for (int field = 2; field < 22 && p != NULL; field++)
        p = strchr(p + 1, ' ');
    if (p == NULL)
        return now;
    start_ticks = strtoull(p + 1, &end, 10);
    if (end == p + 1)
        return now;
    fp = fopen("/proc/stat", "r");
    if (fp == NULL)
        return now;
    while (fgets(line, sizeof(line), fp) != NULL) {
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    }
    fclose(fp);
    if (btime == 0)
        return now;
    return (double)btime + (double)start_ticks / (double)ticks_per_s;
}

int cm_ctl_new(struct event_base *base, const struct cm_conf_control *conf,
               const struct cm_ctl_callbacks *cbs, struct cm_ctl **out, char *err, size_t errlen)
{
    struct cm_ctl *ctl;
    int rc;

    *out = NULL;
    ctl = calloc(1, sizeof(*ctl));
    if (ctl == NULL)
        return cm_err_oom(err, errlen, "control");
    ctl->base = base;
    ctl->fd = -1;
    TAILQ_INIT(&ctl->conns);
    ctl->body_max = CM_CTL_BODY_MAX;
    ctl->rl = (struct cm_log_ratelimit)CM_LOG_RATELIMIT_INIT(5, 10);
    if (cbs != NULL)
        ctl->cbs = *cbs;
    ctl->start_time_s = process_start_time();
    rc = cm_ctl_reload(ctl, conf, err, errlen);
    if (rc == CM_OK)
        rc = route_add(ctl, CM_HTTP_GET, "/healthz", true, CM_CTL_PUBLIC, builtin_healthz, ctl);
    if (rc == CM_OK)
        rc = route_add(ctl, CM_HTTP_GET, "/metrics", true, CM_CTL_READ, builtin_metrics, ctl);
    if (rc == CM_OK)
        rc = route_add(ctl, CM_HTTP_GET, "/v1/state", true, CM_CTL_READ, builtin_state_get, ctl);
    if (rc == CM_OK && ctl->cbs.state_put != NULL)
        rc = route_add(ctl, CM_HTTP_PUT, "/v1/state", true, CM_CTL_VANTAGE, builtin_state_put, ctl);
    if (rc == CM_OK && ctl->cbs.state_forget != NULL)
        rc = route_add(ctl, CM_HTTP_DELETE, "/v1/state/vantages/", false, CM_CTL_OPERATOR,
                       builtin_state_forget, ctl);
    if (rc == CM_ENOMEM)
        cm_err_oom(err, errlen, "control");
    if (rc == CM_OK)
        rc = ctl_listen_start(ctl, &conf->listen, err, errlen);
    if (rc != CM_OK)
        goto out;
    cm_log_info("control API listening addr=%s tls=%s auth=%s read=%s", ctl->listen_text,
                ctl->ssl != NULL ? (conf->tls.client_ca != NULL ? "mutual" : "on") : "off",
                ctl->token_count > 0 ? "bearer" : "none", ctl->open_read ? "open" : "token");
    *out = ctl;
    ctl = NULL; /* ownership moved to caller */
out:
    cm_ctl_free(ctl);
    return rc;
}

void cm_ctl_free(struct cm_ctl *ctl)
{
    if (ctl == NULL)
        return;
    ctl_listen_stop(ctl);
    for (size_t i = 0; i < ctl->route_count; i++)
        free(ctl->routes[i].prefix);
    free(ctl->routes);
    tokens_free(ctl->tokens, ctl->token_count);
    SSL_CTX_free(ctl->ssl);
    free(ctl);
}

int cm_ctl_port(const struct cm_ctl *ctl)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (ctl == NULL || ctl->fd < 0)
        return -1;
    if (getsockname(ctl->fd, (struct sockaddr *)&ss, &len) == -1)
        return -1;
    return cm_addr_port((const struct sockaddr *)&ss);
}

void cm_ctl_set_body_max(struct cm_ctl *ctl, size_t max)
{
    if (max == 0 || max > CM_CTL_BODY_MAX)
        max = CM_CTL_BODY_MAX;
    ctl->body_max = max;
}
