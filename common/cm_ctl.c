/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_ctl.c -- the control API on libevent's evhttp: built-in routes, daemon
 * routes by longest prefix, bearer-token checks, JSON replies, and the
 * Prometheus text helpers.
 *
 * Everything runs in the event loop that owns the ctl; nothing here blocks.
 * Replies are counted by status code after the handler returns, so a handler
 * that answers later (evhttp_request_own) is not counted, and neither are the
 * replies libevent sends itself (413 on a too-long Content-Length, 501 for a
 * method outside GET/PUT/DELETE/POST, 400 for an unparsable request line).
 */
#include "common/cm_ctl.h"

#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_log.h"
#include "common/cm_net.h"

#ifndef FEDGSLB_VERSION
#define FEDGSLB_VERSION "unknown"
#endif

#define CTL_HEADERS_MAX  (16 * 1024) /* request line + headers */
#define CTL_TIMEOUT_S    30          /* idle / read / write timeout */
#define CTL_BACKLOG      128
#define CTL_METRICS_MAX  (16u << 20) /* cap on one /metrics page */
#define CTL_CODE_MAX     600         /* status codes counted: 100..599 */
#define CTL_ERRMSG_MAX   512         /* longest error reason sent */
#define CTL_METHODS      (EVHTTP_REQ_GET | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_POST)
#define CTL_CT_JSON      "application/json"
#define CTL_CT_TEXT      "text/plain; charset=utf-8"
#define CTL_CT_PROM      "text/plain; version=0.0.4; charset=utf-8"
#define CTL_AUTH_MISSING "missing or invalid bearer token"

struct ctl_route {
    unsigned methods;  /* EVHTTP_REQ_* mask */
    char *prefix;      /* owned, starts with '/' */
    size_t prefix_len; /* strlen(prefix) */
    bool needs_auth;
    cm_ctl_route_fn *fn;
    void *arg; /* borrowed, the daemon's */
};

struct cm_ctl {
    struct event_base *base;            /* borrowed */
    struct evhttp *http;                /* owned */
    struct evhttp_bound_socket *socket; /* owned by http */
    char *token;                        /* owned secret, NULL = no auth; never logged */
    size_t token_len;                   /* strlen(token) */
    struct cm_ctl_callbacks cbs;        /* copied */
    struct ctl_route *routes;           /* owned array */
    size_t route_count;                 /* used entries of routes */
    size_t body_max;                    /* <= CM_CTL_BODY_MAX */
    double start_time_s;                /* process start, seconds since the epoch */
    uint64_t replies[CTL_CODE_MAX];     /* replies sent, by status code */
    char listen_text[CM_ADDR_STRLEN];   /* "127.0.0.1:9153", for logs */
};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

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

static void reply_raw(struct evhttp_request *req, int code, const char *ctype, const char *body,
                      size_t len)
{
    struct evkeyvalq *hdrs = evhttp_request_get_output_headers(req);

    evhttp_remove_header(hdrs, "Content-Type");
    evhttp_add_header(hdrs, "Content-Type", ctype);
    evhttp_add_header(hdrs, "Cache-Control", "no-store");
    evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
    evhttp_send_reply(req, code, NULL, NULL);
}

void cm_ctl_reply_json(struct evhttp_request *req, int code, json_t *doc)
{
    static const char fail[] = "{\"error\":\"internal error: cannot serialize reply\"}\n";
    char *text = NULL;

    if (doc != NULL)
        text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (text == NULL) {
        reply_raw(req, 500, CTL_CT_JSON, fail, sizeof(fail) - 1);
        return;
    }
    evbuffer_add(evhttp_request_get_output_buffer(req), text, strlen(text));
    free(text);
    reply_raw(req, code, CTL_CT_JSON, "\n", 1);
}

void cm_ctl_reply_error(struct evhttp_request *req, int code, const char *fmt, ...)
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
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {
        {EVHTTP_REQ_GET, "GET"},
        {EVHTTP_REQ_PUT, "PUT"},
        {EVHTTP_REQ_POST, "POST"},
        {EVHTTP_REQ_DELETE, "DELETE"},
    };
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        int n;

        if ((methods & names[i].bit) == 0)
            continue;
        n = snprintf(buf + used, cap - used, "%s%s", used > 0 ? ", " : "", names[i].name);
        if (n < 0 || (size_t)n >= cap - used)
            return;
        used += (size_t)n;
    }
}

static void reply_405(struct evhttp_request *req, unsigned allowed)
{
    char allow[64];

    allow_text(allowed, allow, sizeof(allow));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
    cm_ctl_reply_error(req, 405, "method not allowed; allowed: %s", allow);
}

static void reply_401(struct evhttp_request *req)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                      "Bearer realm=\"fedgslb\"");
    cm_ctl_reply_error(req, 401, CTL_AUTH_MISSING);
}

/* ---- request helpers ---------------------------------------------------- */

int cm_ctl_body(struct evhttp_request *req, struct cm_buf *body)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    size_t cap = body->max < CM_CTL_BODY_MAX ? body->max : CM_CTL_BODY_MAX;
    struct evbuffer_ptr pos;
    char chunk[4096];
    int rc;

    cm_buf_reset(body);
    if (len > cap)
        return CM_ETOOBIG;
    /* One append of nothing makes the buffer hold "" (never NULL) after. */
    rc = cm_buf_append(body, "", 0);
    if (rc != CM_OK)
        return rc;
    if (evbuffer_ptr_set(in, &pos, 0, EVBUFFER_PTR_SET) != 0)
        return len == 0 ? CM_OK : CM_EIO;
    while (body->len < len) {
        size_t want = len - body->len < sizeof(chunk) ? len - body->len : sizeof(chunk);
        ev_ssize_t got = evbuffer_copyout_from(in, &pos, chunk, want);

        if (got <= 0) {
            rc = CM_EIO;
            break;
        }
        rc = cm_buf_append(body, chunk, (size_t)got);
        if (rc != CM_OK)
            break;
        if (evbuffer_ptr_set(in, &pos, (size_t)got, EVBUFFER_PTR_ADD) != 0 && body->len < len) {
            rc = CM_EIO;
            break;
        }
    }
    if (rc != CM_OK)
        cm_buf_reset(body);
    return rc;
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

int cm_ctl_query_parse(struct evhttp_request *req, struct evkeyvalq *q)
{
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;

    TAILQ_INIT(q);
    if (query == NULL || query[0] == '\0')
        return CM_OK;
    if (evhttp_parse_query_str(query, q) != 0)
        return CM_EPARSE;
    return CM_OK;
}

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

static bool ctl_authorized(const struct cm_ctl *ctl, struct evhttp_request *req)
{
    const char *h;

    if (ctl->token == NULL)
        return true;
    h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    while (*h == ' ' || *h == '\t')
        h++;
    return token_equal(h, strlen(h), ctl->token, ctl->token_len);
}

/* ---- built-in routes ---------------------------------------------------- */

static void ctl_metrics(struct cm_ctl *ctl, struct evhttp_request *req)
{
    struct cm_buf out, labels;

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
 * (Conflict: the sender may retry with a newer one); everything else is the
 * document's fault, 400.
 */
static int state_put_status(int rc)
{
    if (rc == CM_ENOMEM || rc == CM_EIO || rc == CM_ENOSPC)
        return 500;
    if (rc == CM_EEXIST)
        return 409;
    return 400;
}

static void ctl_state_put(struct cm_ctl *ctl, struct evhttp_request *req)
{
    struct cm_buf body;
    char reason[CTL_ERRMSG_MAX] = "";
    int rc;

    if (!ctl_authorized(ctl, req)) {
        reply_401(req);
        return;
    }
    cm_buf_init(&body, ctl->body_max);
    rc = cm_ctl_body(req, &body);
    if (rc == CM_ETOOBIG) {
        cm_ctl_reply_error(req, 413, "request body larger than %zu bytes", ctl->body_max);
        goto out;
    }
    if (rc != CM_OK) {
        cm_ctl_reply_error(req, 500, "cannot read request body: %s", cm_strerror(rc));
        goto out;
    }
    rc = ctl->cbs.state_put(ctl->cbs.arg, cm_buf_cstr(&body), body.len, reason, sizeof(reason));
    if (rc == CM_OK) {
        cm_ctl_reply_json(req, 200, json_pack("{s:b}", "ok", 1));
        goto out;
    }
    cm_ctl_reply_error(req, state_put_status(rc), "%s",
                       reason[0] != '\0' ? reason : cm_strerror(rc));
out:
    cm_buf_fini(&body);
}

static void ctl_state(struct cm_ctl *ctl, struct evhttp_request *req, enum evhttp_cmd_type method)
{
    unsigned allowed = EVHTTP_REQ_GET | (ctl->cbs.state_put != NULL ? EVHTTP_REQ_PUT : 0u);
    json_t *doc;

    if (method == EVHTTP_REQ_PUT && ctl->cbs.state_put != NULL) {
        ctl_state_put(ctl, req);
        return;
    }
    if (method != EVHTTP_REQ_GET) {
        reply_405(req, allowed);
        return;
    }
    doc = ctl->cbs.state_get != NULL ? ctl->cbs.state_get(ctl->cbs.arg) : NULL;
    if (doc == NULL) {
        cm_ctl_reply_error(req, 404, "no state");
        return;
    }
    cm_ctl_reply_json(req, 200, doc);
}

/* True when @path is a built-in and the request was answered. */
static bool ctl_builtin(struct cm_ctl *ctl, struct evhttp_request *req, enum evhttp_cmd_type method,
                        const char *path)
{
    if (strcmp(path, "/healthz") == 0) {
        if (method != EVHTTP_REQ_GET)
            reply_405(req, EVHTTP_REQ_GET);
        else
            reply_raw(req, 200, CTL_CT_TEXT, "ok\n", 3);
        return true;
    }
    if (strcmp(path, "/metrics") == 0) {
        if (method != EVHTTP_REQ_GET)
            reply_405(req, EVHTTP_REQ_GET);
        else
            ctl_metrics(ctl, req);
        return true;
    }
    if (strcmp(path, "/v1/state") == 0) {
        ctl_state(ctl, req, method);
        return true;
    }
    return false;
}

/* ---- daemon routes ------------------------------------------------------ */

static void ctl_route_dispatch(struct cm_ctl *ctl, struct evhttp_request *req,
                               enum evhttp_cmd_type method, const char *path)
{
    const struct ctl_route *best = NULL, *hit = NULL;
    unsigned allowed = 0;

    for (size_t i = 0; i < ctl->route_count; i++) {
        const struct ctl_route *r = &ctl->routes[i];

        if (strncmp(path, r->prefix, r->prefix_len) != 0)
            continue;
        if (best == NULL || r->prefix_len > best->prefix_len)
            best = r;
    }
    if (best == NULL) {
        cm_ctl_reply_error(req, 404, "not found");
        return;
    }
    /* Several routes may share the winning prefix, one per method. */
    for (size_t i = 0; i < ctl->route_count; i++) {
        const struct ctl_route *r = &ctl->routes[i];

        if (strcmp(r->prefix, best->prefix) != 0)
            continue;
        allowed |= r->methods;
        if ((r->methods & (unsigned)method) != 0)
            hit = r;
    }
    if (hit == NULL) {
        reply_405(req, allowed);
        return;
    }
    if (hit->needs_auth && !ctl_authorized(ctl, req)) {
        reply_401(req);
        return;
    }
    hit->fn(hit->arg, req, path + hit->prefix_len);
}

static const char *method_name(enum evhttp_cmd_type m)
{
    switch (m) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    default:
        return "other";
    }
}

static void ctl_dispatch(struct evhttp_request *req, void *arg)
{
    struct cm_ctl *ctl = arg;
    enum evhttp_cmd_type method = evhttp_request_get_command(req);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *raw = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
    char *path = NULL;
    size_t path_len = 0;
    int code;

    if (raw == NULL || raw[0] == '\0')
        raw = "/";
    path = evhttp_uridecode(raw, 0, &path_len);
    if (path == NULL)
        cm_ctl_reply_error(req, 500, "out of memory");
    else if (strlen(path) != path_len || path[0] != '/')
        cm_ctl_reply_error(req, 400, "bad request path");
    else if (!ctl_builtin(ctl, req, method, path))
        ctl_route_dispatch(ctl, req, method, path);
    /* The request stays alive until its reply is written by the loop. */
    code = evhttp_request_get_response_code(req);
    if (code >= 100 && code < CTL_CODE_MAX)
        ctl->replies[code]++;
    cm_log_debug("ctl request method=%s path=%.200s code=%d", method_name(method), raw, code);
    free(path);
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

static int ctl_bind(struct cm_ctl *ctl, const struct cm_conf_control *conf, char *err,
                    size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd;

    cm_addr_format((const struct sockaddr *)&conf->listen.ss, ctl->listen_text,
                   sizeof(ctl->listen_text));
    fd = cm_net_listen(&conf->listen, SOCK_STREAM, false, CTL_BACKLOG);
    if (fd < 0) {
        set_err(err, errlen, "control.listen %s: %s", ctl->listen_text, cm_strerror(fd));
        return fd;
    }
    ctl->socket = evhttp_accept_socket_with_handle(ctl->http, fd);
    if (ctl->socket == NULL) {
        close(fd);
        set_err(err, errlen, "control.listen %s: cannot start the HTTP listener", ctl->listen_text);
        return CM_ENOMEM;
    }
    /* With port 0 the kernel chose one: name that one in logs. */
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        cm_addr_format((const struct sockaddr *)&ss, ctl->listen_text, sizeof(ctl->listen_text));
    return CM_OK;
}

int cm_ctl_new(struct event_base *base, const struct cm_conf_control *conf,
               const struct cm_ctl_callbacks *cbs, struct cm_ctl **out, char *err, size_t errlen)
{
    struct cm_ctl *ctl;
    int rc;

    *out = NULL;
    ctl = calloc(1, sizeof(*ctl));
    if (ctl == NULL) {
        set_err(err, errlen, "control: out of memory");
        return CM_ENOMEM;
    }
    ctl->base = base;
    ctl->body_max = CM_CTL_BODY_MAX;
    if (cbs != NULL)
        ctl->cbs = *cbs;
    ctl->start_time_s = process_start_time();
    rc = cm_ctl_set_token(ctl, conf->token);
    if (rc != CM_OK) {
        set_err(err, errlen, "control.token: %s",
                rc == CM_EINVAL ? "must not be empty" : cm_strerror(rc));
        goto out;
    }
    ctl->http = evhttp_new(base);
    if (ctl->http == NULL) {
        rc = CM_ENOMEM;
        set_err(err, errlen, "control: cannot create the HTTP server");
        goto out;
    }
    evhttp_set_max_body_size(ctl->http, CM_CTL_BODY_MAX);
    evhttp_set_max_headers_size(ctl->http, CTL_HEADERS_MAX);
    evhttp_set_timeout(ctl->http, CTL_TIMEOUT_S);
    evhttp_set_allowed_methods(ctl->http, CTL_METHODS);
    evhttp_set_default_content_type(ctl->http, CTL_CT_JSON);
    evhttp_set_gencb(ctl->http, ctl_dispatch, ctl);
    rc = ctl_bind(ctl, conf, err, errlen);
    if (rc != CM_OK)
        goto out;
    cm_log_info("control API listening addr=%s auth=%s", ctl->listen_text,
                ctl->token != NULL ? "bearer" : "none");
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
    if (ctl->http != NULL)
        evhttp_free(ctl->http); /* closes the listener and every connection */
    for (size_t i = 0; i < ctl->route_count; i++)
        free(ctl->routes[i].prefix);
    free(ctl->routes);
    cm_ctl_set_token(ctl, NULL);
    free(ctl);
}

int cm_ctl_set_token(struct cm_ctl *ctl, const char *token)
{
    char *copy = NULL;

    if (token != NULL) {
        if (token[0] == '\0')
            return CM_EINVAL;
        copy = strdup(token);
        if (copy == NULL)
            return CM_ENOMEM;
    }
    if (ctl->token != NULL) {
        explicit_bzero(ctl->token, ctl->token_len);
        free(ctl->token);
    }
    ctl->token = copy;
    ctl->token_len = copy != NULL ? strlen(copy) : 0;
    return CM_OK;
}

int cm_ctl_route(struct cm_ctl *ctl, unsigned method, const char *prefix, bool needs_auth,
                 cm_ctl_route_fn *fn, void *arg)
{
    struct ctl_route *routes, *r;

    if (fn == NULL || prefix == NULL || prefix[0] != '/' || method == 0 ||
        (method & ~(unsigned)CTL_METHODS) != 0)
        return CM_EINVAL;
    for (size_t i = 0; i < ctl->route_count; i++) {
        if ((ctl->routes[i].methods & method) != 0 && strcmp(ctl->routes[i].prefix, prefix) == 0)
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
    r->methods = method;
    r->needs_auth = needs_auth;
    r->fn = fn;
    r->arg = arg;
    ctl->route_count++;
    return CM_OK;
}

int cm_ctl_port(const struct cm_ctl *ctl)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    evutil_socket_t fd;

    if (ctl == NULL || ctl->socket == NULL)
        return -1;
    fd = evhttp_bound_socket_get_fd(ctl->socket);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

void cm_ctl_set_body_max(struct cm_ctl *ctl, size_t max)
{
    if (max == 0 || max > CM_CTL_BODY_MAX)
        max = CM_CTL_BODY_MAX;
    ctl->body_max = max;
    evhttp_set_max_body_size(ctl->http, (ev_ssize_t)max);
}
