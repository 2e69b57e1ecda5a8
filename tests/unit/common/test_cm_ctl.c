/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cm_ctl.c -- the control API over real loopback sockets: a cm_ctl bound
 * to 127.0.0.1 port 0, driven by libevent's HTTP client on the same
 * event_base; each request runs the loop until its reply arrives.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "common/cm_conf.h"
#include "common/cm_ctl.h"
#include "common/cm_err.h"
#include "common/cm_log.h"
#include "common/cm_net.h"
#include "common/cm_str.h"

#define TOKEN "s3cret-token"

struct fixture {
    struct event_base *base;
    struct cm_ctl *ctl;
    int port;
    json_t *state; /* owned; the fake daemon's current state */
    int puts_ok;   /* accepted PUTs */
};

struct reply {
    struct event_base *base;
    int code; /* -1: no reply */
    char ctype[128];
    char allow[64];
    char www_auth[64];
    char *body; /* owned, NUL-terminated */
    size_t len;
};

/* ---- the fake daemon ----------------------------------------------------- */

static void fake_metrics(void *arg, struct cm_buf *out)
{
    (void)arg;
    cm_metrics_family(out, "fedgslb_test_things", "gauge", "Things.");
    cm_metrics_sample(out, "fedgslb_test_things", NULL, 3);
}

static json_t *fake_state_get(void *arg)
{
    struct fixture *f = arg;

    return f->state == NULL ? NULL : json_incref(f->state);
}

static int fake_state_put(void *arg, const char *body, size_t len, const char *writer, char *err,
                          size_t errlen)
{
    struct fixture *f = arg;
    json_error_t jerr;
    json_t *doc;

    assert_int_equal(body[len], '\0');
    if (writer != NULL) {
        snprintf(err, errlen, "vantage %s may not write", writer);
        return CM_EACCES;
    }
    doc = json_loadb(body, len, 0, &jerr);
    if (doc == NULL) {
        snprintf(err, errlen, "bad JSON: %s", jerr.text);
        return CM_ESTATE;
    }
    if (json_integer_value(json_object_get(doc, "version")) != 1) {
        snprintf(err, errlen, "version: must be 1");
        json_decref(doc);
        return CM_ESTATE;
    }
    json_decref(f->state);
    f->state = doc;
    f->puts_ok++;
    return CM_OK;
}

/* GET /v1/explain?name=..&client=..: echoes what it was given. */
static void route_explain(void *arg, struct cm_ctl_req *req, const char *rest)
{
    struct evkeyvalq q;
    const char *name, *client;

    (void)arg;
    if (cm_ctl_query_parse(req, &q) != CM_OK) {
        evhttp_clear_headers(&q);
        cm_ctl_reply_error(req, 400, "bad query string");
        return;
    }
    name = cm_ctl_query_param(&q, "name");
    client = cm_ctl_query_param(&q, "client");
    if (name == NULL) {
        evhttp_clear_headers(&q);
        cm_ctl_reply_error(req, 400, "name: missing");
        return;
    }
    cm_ctl_reply_json(req, 200,
                      json_pack("{s:s, s:s, s:s?}", "rest", rest, "name", name, "client", client));
    evhttp_clear_headers(&q);
}

/* POST /v1/members/NAME/drain: body read with a 16-byte cap. */
static void route_members(void *arg, struct cm_ctl_req *req, const char *rest)
{
    struct cm_buf body;
    int rc;

    (void)arg;
    cm_buf_init(&body, 16);
    rc = cm_ctl_body(req, &body);
    if (rc == CM_ETOOBIG)
        cm_ctl_reply_error(req, 413, "body too big");
    else
        cm_ctl_reply_json(req, 200, json_pack("{s:s, s:s}", "rest", rest, "body", body.data));
    cm_buf_fini(&body);
}

static void route_v1(void *arg, struct cm_ctl_req *req, const char *rest)
{
    (void)arg;
    cm_ctl_reply_json(req, 200, json_pack("{s:s, s:s}", "route", "v1", "rest", rest));
}

/* ---- the client ---------------------------------------------------------- */

static void copy_header(struct evhttp_request *req, const char *name, char *dst, size_t cap)
{
    const char *v = evhttp_find_header(evhttp_request_get_input_headers(req), name);

    cm_strlcpy(dst, v != NULL ? v : "", cap);
}

static void on_reply(struct evhttp_request *req, void *arg)
{
    struct reply *r = arg;

    if (req != NULL && evhttp_request_get_response_code(req) != 0) {
        struct evbuffer *in = evhttp_request_get_input_buffer(req);

        r->code = evhttp_request_get_response_code(req);
        copy_header(req, "Content-Type", r->ctype, sizeof(r->ctype));
        copy_header(req, "Allow", r->allow, sizeof(r->allow));
        copy_header(req, "WWW-Authenticate", r->www_auth, sizeof(r->www_auth));
        r->len = evbuffer_get_length(in);
        r->body = calloc(1, r->len + 1);
        assert_non_null(r->body);
        evbuffer_remove(in, r->body, r->len);
    }
    event_base_loopbreak(r->base);
}

/* Sends one request and runs the loop until the reply. @auth is the whole
 * Authorization value or NULL; @body NULL sends none. */
static void http_do(struct fixture *f, enum evhttp_cmd_type method, const char *uri,
                    const char *auth, const char *body, size_t body_len, struct reply *r)
{
    struct evhttp_connection *conn;
    struct evhttp_request *req;

    memset(r, 0, sizeof(*r));
    r->base = f->base;
    r->code = -1;
    conn = evhttp_connection_base_new(f->base, NULL, "127.0.0.1", (ev_uint16_t)f->port);
    assert_non_null(conn);
    evhttp_connection_set_timeout(conn, 10);
    req = evhttp_request_new(on_reply, r);
    assert_non_null(req);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Host", "127.0.0.1");
    if (auth != NULL)
        evhttp_add_header(evhttp_request_get_output_headers(req), "Authorization", auth);
    if (body != NULL)
        evbuffer_add(evhttp_request_get_output_buffer(req), body, body_len);
    assert_int_equal(evhttp_make_request(conn, req, method, uri), 0);
    event_base_dispatch(f->base);
    evhttp_connection_free(conn);
}

static void reply_fini(struct reply *r)
{
    free(r->body);
    r->body = NULL;
}

/* The reply body as JSON (asserts it is JSON with the right type). */
static json_t *reply_json(const struct reply *r)
{
    json_t *doc;

    assert_string_equal(r->ctype, "application/json");
    doc = json_loads(r->body, 0, NULL);
    assert_non_null(doc);
    return doc;
}

static void assert_error_reply(const struct reply *r, int code, const char *needle)
{
    json_t *doc;
    const char *msg;

    assert_int_equal(r->code, code);
    doc = reply_json(r);
    msg = json_string_value(json_object_get(doc, "error"));
    assert_non_null(msg);
    if (strstr(msg, needle) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", msg, needle);
    json_decref(doc);
}

static void assert_contains(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL)
        fail_msg("\"%s\" not found in:\n%s", needle, hay);
}

/* ---- fixture --------------------------------------------------------------- */

static void conf_loopback(struct cm_conf_control *conf, char *token)
{
    memset(conf, 0, sizeof(*conf));
    conf->enabled = true;
    assert_int_equal(cm_ip_parse("127.0.0.1", &conf->listen), CM_OK); /* port 0 */
    conf->token = token;
}

static int fixture_open(struct fixture *f, char *token)
{
    struct cm_conf_control conf;
    struct cm_ctl_callbacks cbs = {
        .metrics = fake_metrics,
        .state_get = fake_state_get,
        .state_put = fake_state_put,
        .arg = f,
    };
    char err[256] = "";

    f->base = event_base_new();
    assert_non_null(f->base);
    f->state = json_pack("{s:i, s:i}", "version", 1, "generation", 1);
    conf_loopback(&conf, token);
    assert_int_equal(cm_ctl_new(f->base, &conf, &cbs, &f->ctl, err, sizeof(err)), CM_OK);
    f->port = cm_ctl_port(f->ctl);
    assert_true(f->port > 0);
    assert_int_equal(
        cm_ctl_route(f->ctl, CM_HTTP_GET, "/v1/explain", CM_CTL_READ, route_explain, f), CM_OK);
    assert_int_equal(
        cm_ctl_route(f->ctl, CM_HTTP_POST, "/v1/members/", CM_CTL_OPERATOR, route_members, f),
        CM_OK);
    assert_int_equal(cm_ctl_route(f->ctl, CM_HTTP_GET, "/v1/", CM_CTL_READ, route_v1, f), CM_OK);
    return 0;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char token[] = TOKEN; /* cm_ctl_new copies it */

    assert_non_null(f);
    fixture_open(f, token);
    *state = f;
    return 0;
}

static int setup_noauth(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    fixture_open(f, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    cm_ctl_free(f->ctl);
    event_base_free(f->base);
    json_decref(f->state);
    free(f);
    return 0;
}

static int64_t state_generation(const struct fixture *f)
{
    return json_integer_value(json_object_get(f->state, "generation"));
}

/* ---- tests ------------------------------------------------------------------ */

static void test_healthz(void **state)
{
    struct fixture *f = *state;
    struct reply r;

    cm_log_set_level(CM_LOG_DEBUG); /* the per-request line, once */
    http_do(f, EVHTTP_REQ_GET, "/healthz", NULL, NULL, 0, &r);
    cm_log_set_level(CM_LOG_WARN);
    assert_int_equal(r.code, 200);
    assert_string_equal(r.body, "ok\n");
    assert_string_equal(r.ctype, "text/plain; charset=utf-8");
    reply_fini(&r);
}

static void test_metrics(void **state)
{
    struct fixture *f = *state;
    const char *start;
    double start_s;
    struct reply r;

    http_do(f, EVHTTP_REQ_GET, "/healthz", NULL, NULL, 0, &r);
    reply_fini(&r);
    http_do(f, EVHTTP_REQ_GET, "/nope", NULL, NULL, 0, &r);
    reply_fini(&r);
    http_do(f, EVHTTP_REQ_GET, "/metrics", NULL, NULL, 0, &r);
    assert_int_equal(r.code, 200);
    assert_string_equal(r.ctype, "text/plain; version=0.0.4; charset=utf-8");
    assert_contains(r.body, "# HELP fedgslb_ctl_requests_total ");
    assert_contains(r.body, "# TYPE fedgslb_ctl_requests_total counter\n");
    assert_contains(r.body, "\nfedgslb_ctl_requests_total{code=\"200\"} 1\n");
    assert_contains(r.body, "\nfedgslb_ctl_requests_total{code=\"404\"} 1\n");
    assert_contains(r.body, "# TYPE process_start_time_seconds gauge\n");
    start = strstr(r.body, "\nprocess_start_time_seconds ");
    assert_non_null(start);
    start_s = strtod(start + strlen("\nprocess_start_time_seconds "), NULL);
    assert_true(start_s > 1e9 && start_s <= (double)time(NULL) + 1);
    assert_contains(r.body, "\nfedgslb_build_info{version=\"");
    assert_contains(r.body, "# TYPE fedgslb_test_things gauge\nfedgslb_test_things 3\n");
    reply_fini(&r);

    /* The first /metrics reply is counted too. */
    http_do(f, EVHTTP_REQ_GET, "/metrics", NULL, NULL, 0, &r);
    assert_contains(r.body, "\nfedgslb_ctl_requests_total{code=\"200\"} 2\n");
    reply_fini(&r);
}

static void test_state_get(void **state)
{
    struct fixture *f = *state;
    struct reply r;
    json_t *doc;

    http_do(f, EVHTTP_REQ_GET, "/v1/state", NULL, NULL, 0, &r);
    assert_int_equal(r.code, 200);
    doc = reply_json(&r);
    assert_true(json_equal(doc, f->state));
    json_decref(doc);
    reply_fini(&r);

    json_decref(f->state);
    f->state = NULL; /* the callback returns NULL: 404 */
    http_do(f, EVHTTP_REQ_GET, "/v1/state", NULL, NULL, 0, &r);
    assert_error_reply(&r, 404, "no state");
    reply_fini(&r);
}

static void test_state_put_ok(void **state)
{
    static const char doc[] = "{\"version\": 1, \"generation\": 7}";
    struct fixture *f = *state;
    struct reply r;
    json_t *j;

    http_do(f, EVHTTP_REQ_PUT, "/v1/state", "Bearer " TOKEN, doc, sizeof(doc) - 1, &r);
    assert_int_equal(r.code, 200);
    j = reply_json(&r);
    assert_true(json_is_true(json_object_get(j, "ok")));
    json_decref(j);
    reply_fini(&r);
    assert_int_equal(f->puts_ok, 1);
    assert_int_equal(state_generation(f), 7);

    /* The scheme is case-insensitive (RFC 7235). */
    http_do(f, EVHTTP_REQ_PUT, "/v1/state", "bearer " TOKEN, doc, sizeof(doc) - 1, &r);
    assert_int_equal(r.code, 200);
    reply_fini(&r);
}

static void test_state_put_bad_doc(void **state)
{
    static const char bad_version[] = "{\"version\": 2, \"generation\": 9}";
    static const char not_json[] = "{\"version\": 1,";
    struct fixture *f = *state;
    struct reply r;

    http_do(f, EVHTTP_REQ_PUT, "/v1/state", "Bearer " TOKEN, bad_version, sizeof(bad_version) - 1,
            &r);
    assert_error_reply(&r, 400, "version: must be 1");
    reply_fini(&r);
    http_do(f, EVHTTP_REQ_PUT, "/v1/state", "Bearer " TOKEN, not_json, sizeof(not_json) - 1, &r);
    assert_error_reply(&r, 400, "bad JSON");
    reply_fini(&r);
    http_do(f, EVHTTP_REQ_PUT, "/v1/state", "Bearer " TOKEN, "", 0, &r);
    assert_error_reply(&r, 400, "bad JSON");
    reply_fini(&r);
    assert_int_equal(f->puts_ok, 0);
    assert_int_equal(state_generation(f), 1);
}

static void test_state_put_auth(void **state)
{
    static const char doc[] = "{\"version\": 1, \"generation\": 5}";
    static const char *const bad[] = {
        NULL,                     /* no header */
        "Bearer wrong-token!",    /* same length, wrong */
        "Bearer s3cret-toke",     /* a prefix of the token */
        "Bearer " TOKEN "x",      /* the token plus more */
        "Bearer ",                /* empty */
        "Basic czNjcmV0LXRva2Vu", /* another scheme */
        TOKEN,                    /* no scheme */
    };
    struct fixture *f = *state;
    struct reply r;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        http_do(f, EVHTTP_REQ_PUT, "/v1/state", bad[i], doc, sizeof(doc) - 1, &r);
        assert_error_reply(&r, 401, "missing or invalid bearer token");
        assert_string_equal(r.www_auth, "Bearer realm=\"fedgslb\"");
        assert_null(strstr(r.body, TOKEN));
        reply_fini(&r);
    }
    assert_int_equal(f->puts_ok, 0);
    assert_int_equal(state_generation(f), 1);

    /* A reload changes the token. */
    {
        struct cm_conf_control conf;
        char other[] = "other";
        char err[256];

        conf_loopback(&conf, other);
        assert_int_equal(cm_ctl_reload(f->ctl, &conf, err, sizeof(err)), CM_OK);
    }
    http_do(f, EVHTTP_REQ_PUT, "/v1/state", "Bearer " TOKEN, doc, sizeof(doc) - 1, &r);
    assert_int_equal(r.code, 401);
    reply_fini(&r);
    http_do(f, EVHTTP_REQ_PUT, "/v1/state", "Bearer other", doc, sizeof(doc) - 1, &r);
    assert_int_equal(r.code, 200);
    reply_fini(&r);
}

static void test_state_put_too_big(void **state)
{
    struct fixture *f = *state;
    char big[200];
    struct reply r;

    cm_ctl_set_body_max(f->ctl, 64);
    memset(big, ' ', sizeof(big));
    memcpy(big, "{\"version\": 1, \"generation\": 3}", 31);
    http_do(f, EVHTTP_REQ_PUT, "/v1/state", "Bearer " TOKEN, big, sizeof(big), &r);
    assert_int_equal(r.code, 413);
    reply_fini(&r);
    assert_int_equal(f->puts_ok, 0);
    assert_int_equal(state_generation(f), 1);

    /* At the cap exactly it passes. */
    http_do(f, EVHTTP_REQ_PUT, "/v1/state", "Bearer " TOKEN, big, 64, &r);
    assert_int_equal(r.code, 200);
    reply_fini(&r);
    assert_int_equal(state_generation(f), 3);

    /* A handler's own smaller cap (cm_ctl_body) answers JSON 413. */
    http_do(f, EVHTTP_REQ_POST, "/v1/members/usa/drain", "Bearer " TOKEN, big, 17, &r);
    assert_error_reply(&r, 413, "body too big");
    reply_fini(&r);
}

static void test_unknown_path(void **state)
{
    struct fixture *f = *state;
    struct reply r;

    http_do(f, EVHTTP_REQ_GET, "/nope", NULL, NULL, 0, &r);
    assert_error_reply(&r, 404, "not found");
    reply_fini(&r);
    http_do(f, EVHTTP_REQ_GET, "/healthz/x", NULL, NULL, 0, &r);
    assert_error_reply(&r, 404, "not found");
    reply_fini(&r);
    http_do(f, EVHTTP_REQ_GET, "/v1/stat", NULL, NULL, 0, &r); /* falls to the /v1/ route */
    assert_int_equal(r.code, 200);
    reply_fini(&r);
}

static void test_wrong_method(void **state)
{
    struct fixture *f = *state;
    struct reply r;

    http_do(f, EVHTTP_REQ_DELETE, "/healthz", NULL, NULL, 0, &r);
    assert_error_reply(&r, 405, "method not allowed");
    assert_string_equal(r.allow, "GET");
    reply_fini(&r);
    http_do(f, EVHTTP_REQ_POST, "/metrics", NULL, "x", 1, &r);
    assert_int_equal(r.code, 405);
    assert_string_equal(r.allow, "GET");
    reply_fini(&r);
    http_do(f, EVHTTP_REQ_POST, "/v1/state", "Bearer " TOKEN, "{}", 2, &r);
    assert_error_reply(&r, 405, "method not allowed");
    assert_string_equal(r.allow, "GET, PUT");
    reply_fini(&r);
    /* The longest prefix wins even when only a shorter one has the method. */
    http_do(f, EVHTTP_REQ_GET, "/v1/members/usa", NULL, NULL, 0, &r);
    assert_int_equal(r.code, 405);
    assert_string_equal(r.allow, "POST");
    reply_fini(&r);
    http_do(f, EVHTTP_REQ_PUT, "/v1/explain", "Bearer " TOKEN, "{}", 2, &r);
    assert_int_equal(r.code, 405);
    assert_string_equal(r.allow, "GET");
    reply_fini(&r);
}

static void test_route_query(void **state)
{
    struct fixture *f = *state;
    struct reply r;
    json_t *doc;

    http_do(f, EVHTTP_REQ_GET, "/v1/explain?name=web.default.myfed.svc%2Efed&client=192.0.2.1",
            NULL, NULL, 0, &r);
    assert_int_equal(r.code, 200);
    doc = reply_json(&r);
    assert_string_equal(json_string_value(json_object_get(doc, "rest")), "");
    assert_string_equal(json_string_value(json_object_get(doc, "name")),
                        "web.default.myfed.svc.fed");
    assert_string_equal(json_string_value(json_object_get(doc, "client")), "192.0.2.1");
    json_decref(doc);
    reply_fini(&r);

    http_do(f, EVHTTP_REQ_GET, "/v1/explain?client=192.0.2.1", NULL, NULL, 0, &r);
    assert_error_reply(&r, 400, "name: missing");
    reply_fini(&r);
    http_do(f, EVHTTP_REQ_GET, "/v1/explain?name=a+b%20c&client", NULL, NULL, 0, &r);
    assert_error_reply(&r, 400, "bad query string");
    reply_fini(&r);
    http_do(f, EVHTTP_REQ_GET, "/v1/explain?name=a+b%20c", NULL, NULL, 0, &r);
    assert_int_equal(r.code, 200);
    doc = reply_json(&r);
    assert_string_equal(json_string_value(json_object_get(doc, "name")), "a b c");
    assert_true(json_is_null(json_object_get(doc, "client")));
    json_decref(doc);
    reply_fini(&r);

    /* The rest of the path is decoded and carries no query string. */
    http_do(f, EVHTTP_REQ_POST, "/v1/members/us%61/drain?now=1", "Bearer " TOKEN, "go", 2, &r);
    assert_int_equal(r.code, 200);
    doc = reply_json(&r);
    assert_string_equal(json_string_value(json_object_get(doc, "rest")), "usa/drain");
    assert_string_equal(json_string_value(json_object_get(doc, "body")), "go");
    json_decref(doc);
    reply_fini(&r);

    /* needs_auth routes check the token. */
    http_do(f, EVHTTP_REQ_POST, "/v1/members/usa/drain", NULL, "go", 2, &r);
    assert_error_reply(&r, 401, "bearer token");
    reply_fini(&r);
    http_do(f, EVHTTP_REQ_GET, "/v1/other/thing", NULL, NULL, 0, &r);
    assert_int_equal(r.code, 200);
    doc = reply_json(&r);
    assert_string_equal(json_string_value(json_object_get(doc, "rest")), "other/thing");
    json_decref(doc);
    reply_fini(&r);
}

static void test_route_register(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(cm_ctl_route(f->ctl, CM_HTTP_GET, "/v1/explain", CM_CTL_READ, route_v1, NULL),
                     CM_EEXIST);
    assert_int_equal(cm_ctl_route(f->ctl, CM_HTTP_GET, "v1", CM_CTL_READ, route_v1, NULL),
                     CM_EINVAL);
    assert_int_equal(cm_ctl_route(f->ctl, CM_HTTP_HEAD, "/x", CM_CTL_READ, route_v1, NULL),
                     CM_EINVAL);
    assert_int_equal(cm_ctl_route(f->ctl, CM_HTTP_GET, "/x", CM_CTL_READ, NULL, NULL), CM_EINVAL);
    assert_int_equal(
        cm_ctl_route(f->ctl, CM_HTTP_DELETE, "/v1/explain", CM_CTL_OPERATOR, route_v1, NULL),
        CM_OK);
}

static void test_noauth_writes_allowed(void **state)
{
    static const char doc[] = "{\"version\": 1, \"generation\": 11}";
    struct fixture *f = *state;
    struct reply r;

    http_do(f, EVHTTP_REQ_PUT, "/v1/state", NULL, doc, sizeof(doc) - 1, &r);
    assert_int_equal(r.code, 200);
    reply_fini(&r);
    assert_int_equal(state_generation(f), 11);
    http_do(f, EVHTTP_REQ_POST, "/v1/members/usa/drain", NULL, "", 0, &r);
    assert_int_equal(r.code, 200);
    reply_fini(&r);
}

static void test_no_callbacks(void **state)
{
    struct event_base *base = event_base_new();
    struct cm_conf_control conf;
    struct fixture f = {.base = base};
    struct cm_ctl *ctl = NULL;
    char token[] = TOKEN;
    struct reply r;

    (void)state;
    conf_loopback(&conf, token);
    assert_int_equal(cm_ctl_new(base, &conf, NULL, &ctl, NULL, 0), CM_OK);
    f.port = cm_ctl_port(ctl);
    http_do(&f, EVHTTP_REQ_GET, "/v1/state", NULL, NULL, 0, &r);
    assert_error_reply(&r, 404, "no state");
    reply_fini(&r);
    http_do(&f, EVHTTP_REQ_PUT, "/v1/state", "Bearer " TOKEN, "{}", 2, &r);
    assert_int_equal(r.code, 405);
    assert_string_equal(r.allow, "GET");
    reply_fini(&r);
    http_do(&f, EVHTTP_REQ_GET, "/metrics", NULL, NULL, 0, &r);
    assert_int_equal(r.code, 200);
    assert_null(strstr(r.body, "fedgslb_test_things"));
    reply_fini(&r);
    cm_ctl_free(ctl);
    event_base_free(base);
}

static void test_bind_conflict(void **state)
{
    struct fixture *f = *state;
    struct cm_conf_control conf;
    struct cm_ctl *ctl2 = NULL;
    char err[256] = "", want[128];

    conf_loopback(&conf, NULL);
    assert_int_equal(cm_addr_parse("127.0.0.1", (uint16_t)f->port, &conf.listen), CM_OK);
    assert_int_not_equal(cm_ctl_new(f->base, &conf, NULL, &ctl2, err, sizeof(err)), CM_OK);
    assert_null(ctl2);
    snprintf(want, sizeof(want), "control.listen 127.0.0.1:%d: Address already in use", f->port);
    assert_string_equal(err, want);
    cm_ctl_free(NULL);
}

static void test_metrics_format(void **state)
{
    struct cm_buf b, lbl;

    (void)state;
    cm_buf_init(&b, 4096);
    cm_buf_init(&lbl, 256);
    cm_metrics_family(&b, "x_total", "counter", "Line one\nwith \\ backslash.");
    cm_metrics_sample(&b, "x_total", NULL, 3);
    cm_metrics_sample(&b, "x_total", "a=\"b\"", 0.5);
    cm_metrics_sample(&b, "x_total", "", -2);
    cm_metrics_sample(&b, "x_total", NULL, 0.1);
    cm_metrics_sample(&b, "x_total", NULL, 1e300);
    cm_metrics_sample(&b, "x_total", NULL, 1234567890123.0);
    cm_metrics_sample(&b, "x_total", NULL, NAN);
    cm_metrics_sample(&b, "x_total", NULL, INFINITY);
    cm_metrics_sample(&b, "x_total", NULL, -INFINITY);
    assert_string_equal(cm_buf_cstr(&b), "# HELP x_total Line one\\nwith \\\\ backslash.\n"
                                         "# TYPE x_total counter\n"
                                         "x_total 3\n"
                                         "x_total{a=\"b\"} 0.5\n"
                                         "x_total -2\n"
                                         "x_total 0.1\n"
                                         "x_total 1e+300\n"
                                         "x_total 1234567890123\n"
                                         "x_total NaN\n"
                                         "x_total +Inf\n"
                                         "x_total -Inf\n");
    cm_metrics_label(&lbl, "member", "us\"a");
    cm_metrics_label(&lbl, "path", "a\\b\nc");
    assert_string_equal(cm_buf_cstr(&lbl), "member=\"us\\\"a\",path=\"a\\\\b\\nc\"");
    cm_buf_reset(&lbl);
    cm_metrics_label_escape(&lbl, "plain");
    assert_string_equal(cm_buf_cstr(&lbl), "plain");
    cm_buf_fini(&lbl);
    cm_buf_fini(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_format),
        cmocka_unit_test(test_no_callbacks),
        cmocka_unit_test_setup_teardown(test_healthz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_put_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_put_bad_doc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_put_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_put_too_big, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_method, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_route_register, setup, teardown),
        cmocka_unit_test_setup_teardown(test_noauth_writes_allowed, setup_noauth, teardown),
        cmocka_unit_test_setup_teardown(test_bind_conflict, setup, teardown),
    };

    cm_log_init("test", CM_LOG_TEXT, CM_LOG_WARN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
