/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_etcd.c -- the calls, endpoints and token of cm_etcd.h.
 *
 * A call runs at most three transfers, one after the other:
 *
 *   [AUTH: no token yet] -> SEND --(2xx, or a failure)------------> done
 *                            |  "invalid auth token", first time
 *                            +--> AUTH --> SEND (again) --> done
 *
 * Invariant: a call is in e->calls from cm_etcd_call() until just before its
 * done callback runs (or it is cancelled); c->req is its transfer in flight.
 */
#include "common/cm_etcd.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "common/cm_conf.h"
#include "common/cm_curl.h"
#include "common/cm_err.h"
#include "common/cm_etcd_proto.h"
#include "common/cm_log.h"
#include "common/cm_str.h"
#include "common/cm_time.h"

#define ERR_BODY_MAX 65536u /* a stream's error reply kept for its reason */
#define USER_AGENT   "fedgslb/0.1"

enum call_phase {
    PHASE_AUTH = 0, /* authenticating before sending */
    PHASE_SEND = 1, /* the request itself */
};

struct cm_etcd {
    struct cm_curl *curl; /* borrowed */
    char **endpoints;     /* owned, without a trailing '/' */
    size_t count;
    size_t cur;                 /* the member calls go to */
    char *ca_file, *cert, *key; /* owned TLS paths, NULL = none */
    char *username;             /* owned, NULL = no authentication */
    char *password;             /* owned secret */
    char *token;                /* owned secret, NULL until authenticated */
    long timeout_ms;
    LIST_HEAD(, cm_etcd_call) calls; /* owned list */
    struct cm_etcd_stats st;
};

struct cm_etcd_call {
    struct cm_etcd *e; /* borrowed */
    char *path;        /* owned */
    char *body;        /* owned, wiped when freed (an auth body holds the password) */
    char *auth_body;   /* owned, wiped: the authenticate request in flight */
    long timeout_ms;
    cm_etcd_stream_fn *on_stream;
    cm_etcd_done_fn *on_done;
    void *arg;
    enum call_phase phase;
    struct cm_curl_req *req; /* borrowed handle of the transfer in flight */
    struct cm_buf reply;     /* a unary reply, or a stream's error reply */
    size_t endpoint;         /* index the transfer went to */
    bool fixed;              /* cm_etcd_call_member(): no moving on */
    bool retried;            /* the token was renewed once for this call */
    LIST_ENTRY(cm_etcd_call) link;
};

static int start_phase(struct cm_etcd_call *c);

const char *cm_etcd_kind_name(enum cm_etcd_result_kind kind)
{
    static const char *const names[] = {"ok", "transport", "unavailable", "refused", "auth"};

    return (unsigned)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}

static void wipe_free(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* ---- the client ---- */

static char *dup_or_null(const char *s, bool *failed)
{
    char *d;

    if (s == NULL)
        return NULL;
    d = strdup(s);
    if (d == NULL)
        *failed = true;
    return d;
}

struct cm_etcd *cm_etcd_new(struct cm_curl *curl, const struct cm_conf_etcd *conf)
{
    struct cm_etcd *e = calloc(1, sizeof(*e));
    bool failed = false;

    if (e == NULL)
        return NULL;
    e->curl = curl;
    e->timeout_ms = conf->request_timeout_ms > 0 ? (long)conf->request_timeout_ms : 5000L;
    e->endpoints = calloc(conf->endpoint_count > 0 ? conf->endpoint_count : 1, sizeof(char *));
    failed = e->endpoints == NULL;
    for (size_t i = 0; !failed && i < conf->endpoint_count; i++) {
        size_t n = strlen(conf->endpoints[i]);

        while (n > 0 && conf->endpoints[i][n - 1] == '/')
            n--;
        e->endpoints[i] = strndup(conf->endpoints[i], n);
        failed = e->endpoints[i] == NULL;
        e->count += !failed;
    }
    if (conf->tls.enabled) {
        e->ca_file = dup_or_null(conf->tls.ca_file, &failed);
        e->cert = dup_or_null(conf->tls.certificate, &failed);
        e->key = dup_or_null(conf->tls.key, &failed);
    }
    e->username = dup_or_null(conf->username, &failed);
    e->password = dup_or_null(conf->password, &failed);
    if (failed || e->count == 0) {
        cm_etcd_free(e);
        return NULL;
    }
    return e;
}

static void call_unlink(struct cm_etcd_call *c)
{
    LIST_REMOVE(c, link);
}

static void call_free(struct cm_etcd_call *c)
{
    free(c->path);
    wipe_free(c->body);
    wipe_free(c->auth_body);
    cm_buf_fini(&c->reply);
    free(c);
}

void cm_etcd_call_cancel(struct cm_etcd_call *c)
{
    if (c == NULL)
        return;
    cm_curl_req_cancel(c->req);
    call_unlink(c);
    call_free(c);
}

void cm_etcd_free(struct cm_etcd *e)
{
    if (e == NULL)
        return;
    while (!LIST_EMPTY(&e->calls))
        cm_etcd_call_cancel(LIST_FIRST(&e->calls));
    for (size_t i = 0; i < e->count; i++)
        free(e->endpoints[i]);
    free(e->endpoints);
    free(e->ca_file);
    free(e->cert);
    free(e->key);
    free(e->username);
    wipe_free(e->password);
    wipe_free(e->token);
    free(e);
}

const char *cm_etcd_endpoint(const struct cm_etcd *e)
{
    return e->endpoints[e->cur];
}

size_t cm_etcd_endpoint_count(const struct cm_etcd *e)
{
    return e->count;
}

const char *cm_etcd_endpoint_at(const struct cm_etcd *e, size_t i)
{
    return i < e->count ? e->endpoints[i] : NULL;
}

void cm_etcd_get_stats(const struct cm_etcd *e, struct cm_etcd_stats *out)
{
    *out = e->st;
}

/* Leaves member @from for the next one, unless another failure did already. */
static void rotate_from(struct cm_etcd *e, size_t from)
{
    if (e->count < 2 || from != e->cur)
        return;
    e->cur = (e->cur + 1) % e->count;
    e->st.rotations++;
    cm_log_debug("etcd: %s failed; next requests go to %s", e->endpoints[from],
                 e->endpoints[e->cur]);
}

void cm_etcd_next_endpoint(struct cm_etcd *e)
{
    rotate_from(e, e->cur);
}

void cm_etcd_forget_token(struct cm_etcd *e)
{
    wipe_free(e->token);
    e->token = NULL;
}

/* ---- one transfer ---- */

static int add_header(struct curl_slist **headers, const char *line)
{
    struct curl_slist *l = curl_slist_append(*headers, line);

    if (l == NULL)
        return CM_ENOMEM;
    *headers = l;
    return CM_OK;
}

/* The Authorization header carries the token as is (etcd's gateway reads it so). */
static int add_token(struct curl_slist **headers, const char *token)
{
    size_t n = strlen(token) + sizeof("Authorization: ");
    char *line = malloc(n);
    int rc;

    if (line == NULL)
        return CM_ENOMEM;
    snprintf(line, n, "Authorization: %s", token);
    rc = add_header(headers, line);
    OPENSSL_cleanse(line, n);
    free(line);
    return rc;
}

static CURL *build_easy(const struct cm_etcd *e, const char *url, const char *body)
{
    CURL *easy = curl_easy_init();

    if (easy == NULL)
        return NULL;
    if (curl_easy_setopt(easy, CURLOPT_URL, url) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_NOPROXY, "*") != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_USERAGENT, USER_AGENT) != CURLE_OK ||
        /* the gateway speaks HTTP/1.1; h2 on this port is gRPC's */
        curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body) != CURLE_OK ||
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body)) != CURLE_OK ||
        (e->ca_file != NULL && curl_easy_setopt(easy, CURLOPT_CAINFO, e->ca_file) != CURLE_OK) ||
        (e->cert != NULL && (curl_easy_setopt(easy, CURLOPT_SSLCERT, e->cert) != CURLE_OK ||
                             curl_easy_setopt(easy, CURLOPT_SSLKEY, e->key) != CURLE_OK))) {
        curl_easy_cleanup(easy);
        return NULL;
    }
    return easy;
}

static int on_data(void *arg, long status, const char *data, size_t len)
{
    struct cm_etcd_call *c = arg;

    if (c->phase == PHASE_SEND && c->on_stream != NULL && status >= 200 && status < 300)
        return c->on_stream(c->arg, data, len);
    /* a unary reply (or a stream's error): kept whole, within the cap */
    return cm_buf_append(&c->reply, data, len) == CM_OK ? 0 : 1;
}

static void on_transfer_done(void *arg, int rc, long status, bool aborted, const char *reason);

/* Starts the transfer of the current phase. CM_ENOMEM. */
static int start_phase(struct cm_etcd_call *c)
{
    struct cm_etcd *e = c->e;
    struct cm_curl_opts o = {.on_data = on_data, .on_done = on_transfer_done, .arg = c};
    const char *path = c->phase == PHASE_AUTH ? CM_ETCD_PATH_AUTH : c->path;
    const char *body = c->phase == PHASE_AUTH ? c->auth_body : c->body;
    struct curl_slist *headers = NULL;
    struct cm_buf url;
    CURL *easy;
    int rc;

    if (!c->fixed)
        c->endpoint = e->cur;
    cm_buf_fini(&c->reply);
    cm_buf_init(&c->reply,
                c->on_stream != NULL && c->phase == PHASE_SEND ? ERR_BODY_MAX : CM_ETCD_BODY_MAX);
    cm_buf_init(&url, 4096);
    rc = cm_buf_printf(&url, "%s%s", e->endpoints[c->endpoint], path);
    easy = rc == CM_OK ? build_easy(e, cm_buf_cstr(&url), body) : NULL;
    cm_buf_fini(&url);
    if (easy == NULL)
        return CM_ENOMEM;
    rc = add_header(&headers, "Content-Type: application/json");
    if (rc == CM_OK)
        rc = add_header(&headers, "Expect:");
    if (rc == CM_OK && c->phase == PHASE_SEND && e->token != NULL)
        rc = add_token(&headers, e->token);
    if (rc != CM_OK) {
        cm_curl_headers_free(headers);
        curl_easy_cleanup(easy);
        return rc;
    }
    if (c->phase == PHASE_SEND && c->timeout_ms != CM_ETCD_NO_TIMEOUT)
        o.timeout_ms = c->timeout_ms > 0 ? c->timeout_ms : e->timeout_ms;
    else if (c->phase == PHASE_AUTH)
        o.timeout_ms = e->timeout_ms;
    o.connect_timeout_ms = e->timeout_ms;
    return cm_curl_start(e->curl, easy, headers, NULL, &o, &c->req);
}

/* Runs the caller's callback and frees the call. */
static void finish(struct cm_etcd_call *c, struct cm_etcd_result *res)
{
    struct cm_etcd *e = c->e;
    cm_etcd_done_fn *done = c->on_done;
    void *arg = c->arg;

    res->endpoint = e->endpoints[c->endpoint];
    if (res->body == NULL) {
        res->body = cm_buf_cstr(&c->reply);
        res->len = c->reply.len;
    }
    if (res->reason == NULL)
        res->reason = "";
    if (res->kind == CM_ETCD_OK) {
        e->st.last_ok_ms = cm_mono_ms();
    } else {
        e->st.failures++;
        e->st.last_err_ms = cm_mono_ms();
        snprintf(e->st.last_error, sizeof(e->st.last_error), "%s: %s", res->endpoint, res->reason);
    }
    call_unlink(c);
    if (done != NULL)
        done(arg, res);
    call_free(c);
}

static void fail_now(struct cm_etcd_call *c, enum cm_etcd_result_kind kind, const char *reason)
{
    struct cm_etcd_result res = {.kind = kind, .reason = reason};

    finish(c, &res);
}

/* Sends the request itself (after authenticating, or again after renewing). */
static void go_send(struct cm_etcd_call *c)
{
    c->phase = PHASE_SEND;
    if (start_phase(c) != CM_OK)
        fail_now(c, CM_ETCD_TRANSPORT, "cannot start the request: out of memory");
}

static void go_auth(struct cm_etcd_call *c)
{
    struct cm_etcd *e = c->e;

    wipe_free(c->auth_body);
    c->auth_body = cm_etcd_body_auth(e->username, e->password);
    c->phase = PHASE_AUTH;
    e->st.auths++;
    if (c->auth_body == NULL || start_phase(c) != CM_OK)
        fail_now(c, CM_ETCD_TRANSPORT, "cannot start authenticating: out of memory");
}

static bool is_unavailable(long status, int code)
{
    return code == 14 || code == 4 || status == 502 || status == 503 || status == 504;
}

/* An authenticate reply: the token, or why not. */
static void auth_done(struct cm_etcd_call *c, long status)
{
    struct cm_etcd *e = c->e;
    char why[CM_ETCD_ERR_MAX + 32], msg[CM_ETCD_ERR_MAX];
    char *token = NULL;
    int code = 0;

    wipe_free(c->auth_body);
    c->auth_body = NULL;
    if (status >= 200 && status < 300 &&
        cm_etcd_parse_auth(c->reply.data != NULL ? c->reply.data : "", c->reply.len, &token, msg,
                           sizeof(msg)) == CM_OK) {
        OPENSSL_cleanse(c->reply.data, c->reply.len);
        wipe_free(e->token);
        e->token = token;
        go_send(c);
        return;
    }
    if (status < 200 || status >= 300) {
        if (!cm_etcd_reply_error(cm_buf_cstr(&c->reply), c->reply.len, &code, msg, sizeof(msg)))
            snprintf(msg, sizeof(msg), "HTTP %ld", status);
    }
    if (c->reply.data != NULL) /* a 2xx reply that did not parse may hold a token */
        OPENSSL_cleanse(c->reply.data, c->reply.len);
    snprintf(why, sizeof(why), "authenticate as %s: %s", e->username, msg);
    if (is_unavailable(status, code)) {
        if (!c->fixed)
            rotate_from(e, c->endpoint);
        fail_now(c, CM_ETCD_UNAVAILABLE, why);
        return;
    }
    fail_now(c, CM_ETCD_AUTH, why);
}

/* The request's reply. */
static void send_done(struct cm_etcd_call *c, long status, bool aborted)
{
    struct cm_etcd *e = c->e;
    struct cm_etcd_result res = {.status = status, .aborted = aborted};
    char msg[CM_ETCD_ERR_MAX];

    if (status >= 200 && status < 300) {
        res.kind = CM_ETCD_OK;
        if (c->on_stream != NULL) { /* the stream's bytes went to the caller */
            res.body = "";
            res.len = 0;
        }
        finish(c, &res);
        return;
    }
    if (!cm_etcd_reply_error(cm_buf_cstr(&c->reply), c->reply.len, &res.code, msg, sizeof(msg)))
        snprintf(msg, sizeof(msg), "HTTP %ld", status);
    res.reason = msg;
    if (res.code == CM_ETCD_CODE_UNAUTHENTICATED && e->username != NULL && !c->retried) {
        /* the token expired or the member restarted: once more with a new one */
        c->retried = true;
        cm_etcd_forget_token(e);
        cm_log_info("etcd: %s: %s; authenticating again", e->endpoints[c->endpoint], msg);
        go_auth(c);
        return;
    }
    if (res.code == CM_ETCD_CODE_UNAUTHENTICATED || status == 401 ||
        strstr(msg, "user name is empty") != NULL) { /* auth on, and no user given */
        res.kind = CM_ETCD_AUTH;
        if (e->username == NULL) {
            snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg),
                     " (etcd wants a user: set etcd.username and etcd.password_file)");
        }
    } else if (is_unavailable(status, res.code)) {
        res.kind = CM_ETCD_UNAVAILABLE;
        if (!c->fixed)
            rotate_from(e, c->endpoint);
    } else {
        res.kind = CM_ETCD_REFUSED;
    }
    finish(c, &res);
}

static void on_transfer_done(void *arg, int rc, long status, bool aborted, const char *reason)
{
    struct cm_etcd_call *c = arg;
    char why[CURL_ERROR_SIZE + 64];

    c->req = NULL;
    if (aborted && c->phase == PHASE_SEND && c->on_stream != NULL && status >= 200 &&
        status < 300) {
        struct cm_etcd_result res = {.kind = CM_ETCD_OK, .status = status, .aborted = true};

        res.body = "";
        finish(c, &res);
        return;
    }
    if (rc != CM_OK || aborted) {
        /* no reply (or one past the cap): the member is unreachable or broken */
        snprintf(why, sizeof(why), "%s%s", c->phase == PHASE_AUTH ? "authenticate: " : "",
                 aborted ? "reply larger than the limit" : reason);
        for (char *p = why; *p != '\0'; p++) {
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                *p = '?';
        }
        if (!c->fixed)
            rotate_from(c->e, c->endpoint);
        fail_now(c, CM_ETCD_TRANSPORT, why);
        return;
    }
    if (c->phase == PHASE_AUTH)
        auth_done(c, status);
    else
        send_done(c, status, aborted);
}

static int call_new(struct cm_etcd *e, const char *path, char *body, long timeout_ms,
                    cm_etcd_stream_fn *on_stream, cm_etcd_done_fn *on_done, void *arg,
                    struct cm_etcd_call **out)
{
    struct cm_etcd_call *c = calloc(1, sizeof(*c));

    if (c == NULL || body == NULL) {
        free(c);
        wipe_free(body);
        return CM_ENOMEM;
    }
    c->e = e;
    c->body = body;
    c->path = strdup(path);
    c->timeout_ms = timeout_ms;
    c->on_stream = on_stream;
    c->on_done = on_done;
    c->arg = arg;
    c->endpoint = e->cur;
    cm_buf_init(&c->reply, CM_ETCD_BODY_MAX);
    if (c->path == NULL) {
        call_free(c);
        return CM_ENOMEM;
    }
    *out = c;
    return CM_OK;
}

/* Links @c and starts its first transfer. */
static int call_launch(struct cm_etcd_call *c, struct cm_etcd_call **out)
{
    struct cm_etcd *e = c->e;
    int rc;

    LIST_INSERT_HEAD(&e->calls, c, link);
    e->st.calls++;
    if (e->username != NULL && e->token == NULL) {
        c->auth_body = cm_etcd_body_auth(e->username, e->password);
        c->phase = PHASE_AUTH;
        e->st.auths++;
        rc = c->auth_body != NULL ? start_phase(c) : CM_ENOMEM;
    } else {
        c->phase = PHASE_SEND;
        rc = start_phase(c);
    }
    if (rc != CM_OK) {
        call_unlink(c);
        call_free(c);
        return rc;
    }
    if (out != NULL)
        *out = c;
    return CM_OK;
}

int cm_etcd_call(struct cm_etcd *e, const char *path, char *body, long timeout_ms,
                 cm_etcd_stream_fn *on_stream, cm_etcd_done_fn *on_done, void *arg,
                 struct cm_etcd_call **out)
{
    struct cm_etcd_call *c = NULL;
    int rc = call_new(e, path, body, timeout_ms, on_stream, on_done, arg, &c);

    return rc == CM_OK ? call_launch(c, out) : rc;
}

int cm_etcd_call_member(struct cm_etcd *e, size_t i, const char *path, char *body, long timeout_ms,
                        cm_etcd_done_fn *on_done, void *arg, struct cm_etcd_call **out)
{
    struct cm_etcd_call *c = NULL;
    int rc;

    if (i >= e->count) {
        wipe_free(body);
        return CM_EINVAL;
    }
    rc = call_new(e, path, body, timeout_ms, NULL, on_done, arg, &c);
    if (rc != CM_OK)
        return rc;
    c->fixed = true;
    c->endpoint = i;
    return call_launch(c, out);
}
