/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_lbp_proxy.c -- which state documents the proxy accepts and where its
 * pools' backends come from (lbproxy/lbp_proxy.h): the newest document per
 * vantage (generated_at, then generation), backends from the vantage whose
 * entry listing some for the listener's (member, service) changed last, the static
 * backends when none does, writer scoping, and rejections that change
 * nothing; and the operator's intents: a member forced down gets no backend
 * (503), its expiry gives them back, drains keep serving.
 *
 * One table of steps, each a PUT (or a forget) and the listener's backends
 * afterwards. The proxy listens on 127.0.0.1 with a kernel-chosen port and
 * the loop never runs: no connection, no check ever happens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <jansson.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_state.h"
#include "common/cm_time.h"
#include "lbproxy/lbp_proxy.h"

#define CONF_FMT                                                                                   \
    "{'federation': 'myfed', 'zone': 'fed.example.test',"                                          \
    " 'regions': {'us-east-1': {'zones': ['us-east-1a']}, 'eu-west-1': {'zones': ['eu-west-1a']}," \
    "             'ap-northeast-1': {'zones': ['ap-northeast-1a']}},"                              \
    " 'members': {'usa': {'region': 'us-east-1'}, 'eur': {'region': 'eu-west-1'},"                 \
    "             'jpn': {'region': 'ap-northeast-1',"                                             \
    "                     'lb': {'mode': 'proxy', 'address': '198.51.100.7'}}},"                   \
    " 'services': {'default/web': {'port': 80}, 'default/api': {'port': 8443}},"                   \
    " 'proxy': {'listen': [{'address': '127.0.0.1:%u', 'member': 'jpn', 'service': 'default/web'," \
    "                       'backends': ['127.0.0.1:31234']},"                                     \
    "                      {'address': '127.0.0.1:%u', 'member': 'jpn', 'service': 'default/api'," \
    "                       'backends': ['127.0.0.1:31235']}]}}"

struct fx {
    struct event_base *base;
    struct cm_conf *conf;
    struct lbp_proxy *px;
};

/* A port on 127.0.0.1 that was free a moment ago (the proxy binds it with SO_REUSEADDR). */
static unsigned free_port(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    close(fd);
    return ntohs(sin.sin_port);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char err[CM_CONF_ERR_MAX];
    char text[2048];

    assert_non_null(f);
    snprintf(text, sizeof(text), CONF_FMT, free_port(), free_port());
    for (char *c = text; *c != '\0'; c++) {
        if (*c == '\'')
            *c = '"';
    }
    if (cm_conf_load_string("t.json", text, &f->conf, err, sizeof(err)) != CM_OK)
        fail_msg("conf: %s", err);
    f->base = event_base_new();
    assert_non_null(f->base);
    if (lbp_proxy_new(f->base, f->conf, &f->px, err, sizeof(err)) != CM_OK)
        fail_msg("proxy: %s", err);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    lbp_proxy_free(f->px);
    cm_conf_unref(f->conf);
    event_base_free(f->base);
    free(f);
    return 0;
}

/*
 * "from backend backend..." of the listener for @service: "state 10.0.0.1:80"
 * or "static 127.0.0.1:31234".
 */
static void backends_text(struct fx *f, const char *service, char *out, size_t cap)
{
    json_t *root = lbp_proxy_state_json(f->px);
    json_t *l;
    size_t i, o = 0;

    out[0] = '\0';
    json_array_foreach(json_object_get(root, "listeners"), i, l)
    {
        json_t *b;
        size_t k;

        if (strcmp(json_string_value(json_object_get(l, "service")), service) != 0)
            continue;
        o += (size_t)snprintf(out + o, cap - o, "%s",
                              json_string_value(json_object_get(l, "backends_from")));
        json_array_foreach(json_object_get(json_object_get(l, "pool"), "backends"), k, b) o +=
            (size_t)snprintf(out + o, cap - o, " %s",
                             json_string_value(json_object_get(b, "address")));
    }
    json_decref(root);
}

/* "us-east-1:5 eu-west-1:2": the documents held, vantage:generation. */
static void docs_text(struct fx *f, char *out, size_t cap)
{
    json_t *root = lbp_proxy_state_json(f->px);
    json_t *d;
    size_t i, o = 0;

    out[0] = '\0';
    json_array_foreach(json_object_get(root, "documents"), i, d) o +=
        (size_t)snprintf(out + o, cap - o, "%s%s:%lld", i > 0 ? " " : "",
                         json_string_value(json_object_get(d, "vantage")),
                         (long long)json_integer_value(json_object_get(d, "generation")));
    json_decref(root);
}

struct step {
    const char *forget; /* non-NULL: forget this vantage instead of a PUT */
    const char *writer; /* NULL: the operator */
    const char *vantage;
    unsigned generation;
    const char *at;  /* generated_at, seconds after 07:00:00Z */
    const char *web; /* jpn default/web backends as a JSON list body, NULL: not listed */
    const char *api; /* jpn default/api backends, NULL: not listed */
    int rc;
    const char *want_web; /* listener backends after the step */
    const char *want_api;
    const char *want_docs;
};

static void put(struct fx *f, const struct step *s, size_t row)
{
    char body[2048], err[512] = "";
    size_t o;
    int rc;

    o = (size_t)snprintf(body, sizeof(body),
                         "{\"version\": 1, \"vantage\": \"%s\", \"generation\": %u,"
                         " \"generated_at\": \"2026-11-21T07:00:%sZ\", \"services\": {",
                         s->vantage, s->generation, s->at);
    if (s->web != NULL)
        o += (size_t)snprintf(body + o, sizeof(body) - o,
                              "\"default/web\": {\"members\": {\"jpn\": {\"healthy\": true,"
                              " \"addresses\": [\"198.51.100.7\"], \"backends\": %s}}}",
                              s->web);
    if (s->api != NULL)
        o += (size_t)snprintf(body + o, sizeof(body) - o,
                              "%s\"default/api\": {\"members\": {\"jpn\": {\"healthy\": true,"
                              " \"backends\": %s}}}",
                              s->web != NULL ? ", " : "", s->api);
    snprintf(body + o, sizeof(body) - o, "}}");
    rc = lbp_proxy_state_put(f->px, body, strlen(body), s->writer, err, sizeof(err));
    if (rc != s->rc)
        fail_msg("step %zu: rc %d (%s), want %d", row, rc, err, s->rc);
}

static void run_steps(struct fx *f, const struct step *steps, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const struct step *s = &steps[i];
        char web[512], api[512], docs[512], err[256] = "";

        if (s->forget != NULL) {
            int rc = lbp_proxy_state_forget(f->px, s->forget, err, sizeof(err));
            if (rc != s->rc)
                fail_msg("step %zu: forget %s: rc %d, want %d", i, s->forget, rc, s->rc);
        } else {
            put(f, s, i);
        }
        backends_text(f, "default/web", web, sizeof(web));
        backends_text(f, "default/api", api, sizeof(api));
        docs_text(f, docs, sizeof(docs));
        if (strcmp(web, s->want_web) != 0 || strcmp(api, s->want_api) != 0 ||
            strcmp(docs, s->want_docs) != 0)
            fail_msg("step %zu: web '%s' api '%s' docs '%s'; want '%s' '%s' '%s'", i, web, api,
                     docs, s->want_web, s->want_api, s->want_docs);
    }
}

#define US         "us-east-1"
#define EU         "eu-west-1"
#define AP         "ap-northeast-1"
#define B1         "[\"10.0.0.1:80\"]"
#define B2         "[\"10.0.0.2:80\"]"
#define B3         "[\"10.0.0.3:80\", \"[2001:db8::3]:80\"]"
#define S1         "state 10.0.0.1:80"
#define S2         "state 10.0.0.2:80"
#define S3         "state 10.0.0.3:80 [2001:db8::3]:80"
#define STATIC_WEB "static 127.0.0.1:31234"
#define STATIC_API "static 127.0.0.1:31235"

/*
 * Newest per vantage (cm_store's rule, shared with dnsd and tested in
 * test_cm_store): by generation only; an identical re-push is accepted.
 */
static void test_newest_per_vantage(void **state)
{
    static const struct step steps[] = {
        {NULL, NULL, US, 5, "00", B1, NULL, CM_OK, S1, STATIC_API, "us-east-1:5"},
        /* The same document again: accepted, nothing changes (dnsd says the same). */
        {NULL, NULL, US, 5, "00", B1, NULL, CM_OK, S1, STATIC_API, "us-east-1:5"},
        /* The same generation saying something else: refused. */
        {NULL, NULL, US, 5, "00", B2, NULL, CM_EEXIST, S1, STATIC_API, "us-east-1:5"},
        /* A higher generation: newer. */
        {NULL, NULL, US, 6, "00", B2, NULL, CM_OK, S2, STATIC_API, "us-east-1:6"},
        /* A lower generation: older. */
        {NULL, NULL, US, 5, "00", B1, NULL, CM_EEXIST, S2, STATIC_API, "us-east-1:6"},
        /* A later time does not make a lower generation newer (health keeps its
         * generations across restarts in its state file). */
        {NULL, NULL, US, 1, "01", B1, NULL, CM_EEXIST, S2, STATIC_API, "us-east-1:6"},
        /* A higher generation wins even with an earlier time. */
        {NULL, NULL, US, 99, "00", B1, NULL, CM_OK, S1, STATIC_API, "us-east-1:99"},
    };
    run_steps(*state, steps, sizeof(steps) / sizeof(steps[0]));
}

/* Backends of a listener: from the vantage whose entry listing some changed
 * last (cm_state_src_better), not from the newest document. */
static void test_backends_from_newest_listing(void **state)
{
    static const struct step steps[] = {
        {NULL, NULL, US, 1, "10", B1, NULL, CM_OK, S1, STATIC_API, "us-east-1:1"},
        /* Another vantage's new entry is the latest change, whatever its time. */
        {NULL, NULL, EU, 50, "05", B2, B2, CM_OK, S2, S2, "us-east-1:1 eu-west-1:50"},
        /* Re-sent unchanged: it keeps its place. */
        {NULL, NULL, EU, 51, "10", B2, B2, CM_OK, S2, S2, "us-east-1:1 eu-west-1:51"},
        {NULL, NULL, AP, 1, "10", B3, NULL, CM_OK, S3, S2,
         "us-east-1:1 eu-west-1:51 ap-northeast-1:1"},
        /* A lagging vantage re-sending its old backends in a newer document
         * does not take them back. */
        {NULL, NULL, EU, 52, "20", B2, B2, CM_OK, S3, S2,
         "us-east-1:1 eu-west-1:52 ap-northeast-1:1"},
        {NULL, NULL, AP, 2, "11", B3, NULL, CM_OK, S3, S2,
         "us-east-1:1 eu-west-1:52 ap-northeast-1:2"},
        /* The vantage that changed last stops listing web backends (and an
         * empty list counts as none): the one that changed them before. */
        {NULL, NULL, AP, 3, "12", NULL, "[]", CM_OK, S2, S2,
         "us-east-1:1 eu-west-1:52 ap-northeast-1:3"},
        /* Forgetting a vantage falls back the same way ... */
        {EU, NULL, NULL, 0, NULL, NULL, NULL, CM_OK, S1, STATIC_API,
         "us-east-1:1 ap-northeast-1:3"},
        {EU, NULL, NULL, 0, NULL, NULL, NULL, CM_ENOENT, S1, STATIC_API,
         "us-east-1:1 ap-northeast-1:3"},
        /* ... down to the static backends when no document lists any. */
        {US, NULL, NULL, 0, NULL, NULL, NULL, CM_OK, STATIC_WEB, STATIC_API, "ap-northeast-1:3"},
    };
    run_steps(*state, steps, sizeof(steps) / sizeof(steps[0]));
}

/* Rejected documents change nothing, not even their vantage's slot. */
static void test_rejections(void **state)
{
    static const struct step steps[] = {
        {NULL, NULL, US, 1, "00", B1, NULL, CM_OK, S1, STATIC_API, "us-east-1:1"},
        /* A vantage's credential speaks for that vantage only. */
        {NULL, EU, US, 2, "01", B2, NULL, CM_EACCES, S1, STATIC_API, "us-east-1:1"},
        {NULL, US, US, 2, "01", B2, NULL, CM_OK, S2, STATIC_API, "us-east-1:2"},
        /* A backend that is not ip:port rejects the whole document. */
        {NULL, NULL, US, 3, "02", "[\"10.0.0.9:80\", \"backend.local:80\"]", NULL, CM_ESTATE, S2,
         STATIC_API, "us-east-1:2"},
        {NULL, NULL, US, 3, "02", "[\"10.0.0.9\"]", NULL, CM_ESTATE, S2, STATIC_API, "us-east-1:2"},
        /* Not a configured region. */
        {NULL, NULL, "sa-east-1", 1, "03", B1, NULL, CM_ESTATE, S2, STATIC_API, "us-east-1:2"},
        /* The rejected generation 3 was not remembered: it is still accepted. */
        {NULL, NULL, US, 3, "02", B3, NULL, CM_OK, S3, STATIC_API, "us-east-1:3"},
    };
    run_steps(*state, steps, sizeof(steps) / sizeof(steps[0]));
}

/*
 * Expiry runs cm_store_expire (tested in test_cm_store): within the limit
 * nothing goes, and when every vantage is silent the last state is kept, so
 * the pools keep their state backends.
 */
static void test_expiry(void **state)
{
    struct fx *f = *state;
    static const struct step steps[] = {
        {NULL, NULL, US, 1, "00", B1, NULL, CM_OK, S1, STATIC_API, "us-east-1:1"},
        {NULL, NULL, EU, 1, "00", NULL, B2, CM_OK, S1, S2, "us-east-1:1 eu-west-1:1"},
    };
    char web[512], docs[512];

    run_steps(f, steps, sizeof(steps) / sizeof(steps[0]));
    assert_int_equal(lbp_proxy_state_expire(f->px, cm_mono_ms()), 0);
    assert_int_equal(lbp_proxy_state_expire(f->px, cm_mono_ms() + 3600 * 1000), 0);
    backends_text(f, "default/web", web, sizeof(web));
    docs_text(f, docs, sizeof(docs));
    assert_string_equal(web, S1);
    assert_string_equal(docs, "us-east-1:1 eu-west-1:1");
}

/* 2026-11-21T07:00:00Z: the intents' clock. */
#define T0 INT64_C(1795244400)

static int intent_put(struct fx *f, const char *kind, const char *id, int64_t now)
{
    char text[512], err[256] = "";
    bool changed = false;
    int rc;

    snprintf(text, sizeof(text),
             "{\"id\": \"%s\", \"kind\": \"%s\", \"member\": \"jpn\", \"author\": \"t\","
             " \"reason\": \"r\", \"created_at\": \"2026-11-21T06:00:00Z\","
             " \"expires_at\": \"2026-11-21T07:00:10Z\"}",
             id, kind);
    rc = lbp_proxy_intent_put(f->px, text, strlen(text), now, &changed, err, sizeof(err));
    if (rc != CM_OK)
        print_message("intent: %s\n", err);
    return rc;
}

/* The listener's admin text in GET /v1/state. */
static const char *admin_of(struct fx *f, char *buf, size_t cap)
{
    json_t *root = lbp_proxy_state_json(f->px);

    snprintf(buf, cap, "%s",
             json_string_value(
                 json_object_get(json_array_get(json_object_get(root, "listeners"), 0), "admin")));
    json_decref(root);
    return buf;
}

/* Forced down: the pools empty (new requests get 503) until it expires or goes. */
static void test_intents(void **state)
{
    struct fx *f = *state;
    char web[512], admin[128], err[256];
    json_t *doc;

    assert_int_equal(intent_put(f, "drain", "d", T0), CM_OK);
    backends_text(f, "default/web", web, sizeof(web));
    assert_string_equal(web, STATIC_WEB); /* drained: still served */
    assert_non_null(strstr(admin_of(f, admin, sizeof(admin)), "drained"));
    assert_int_equal(lbp_proxy_intent_remove(f->px, "d", "bob", T0, err, sizeof(err)), CM_OK);
    assert_string_equal(admin_of(f, admin, sizeof(admin)), "none");
    assert_int_equal(intent_put(f, "force-down", "fd", T0), CM_OK);
    backends_text(f, "default/web", web, sizeof(web));
    assert_string_equal(web, "static");
    backends_text(f, "default/api", web, sizeof(web));
    assert_string_equal(web, "static");
    assert_string_equal(admin_of(f, admin, sizeof(admin)), "forced down: 503");
    /* The digest names both. */
    doc = lbp_proxy_intents_json(f->px, T0);
    assert_int_equal(
        json_array_size(json_object_get(json_object_get(doc, "digest"), "active_intents")), 1);
    assert_int_equal(json_array_size(json_object_get(doc, "intents")), 2); /* d removed */
    json_decref(doc);
    /* Expiry on the tick gives the backends back. */
    lbp_proxy_intents_tick(f->px, T0 + 9);
    backends_text(f, "default/web", web, sizeof(web));
    assert_string_equal(web, "static");
    lbp_proxy_intents_tick(f->px, T0 + 10);
    backends_text(f, "default/web", web, sizeof(web));
    assert_string_equal(web, STATIC_WEB);
    assert_int_equal(lbp_proxy_intent_remove(f->px, "nope", "bob", T0 + 11, err, sizeof(err)),
                     CM_ENOENT);
    /* Ids are not reused; an expired intent is refused as such. */
    assert_int_equal(intent_put(f, "force-up", "fd", T0 + 5), CM_EEXIST);
    assert_int_equal(intent_put(f, "force-up", "fu", T0 + 11), CM_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_newest_per_vantage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backends_from_newest_listing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intents, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
