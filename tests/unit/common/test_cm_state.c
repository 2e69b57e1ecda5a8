/* SPDX-License-Identifier: Apache-2.0 */
/* test_cm_state.c -- state document v1: parsing, validation messages, round trip, merge. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_net.h"
#include "common/cm_state.h"

/* The DESIGN.md example plus unknown fields at every level. */
static const char valid_doc[] =
    "{\"version\": 1, \"vantage\": \"eu-west-1\", \"generation\": 42,"
    " \"generated_at\": \"2026-11-21T07:00:00.250Z\", \"x_top\": {\"a\": [1, 2]},"
    " \"members\": {"
    "   \"usa\": {\"region\": \"us-east-1\", \"zone\": \"us-east-1a\", \"api\": \"ok\","
    "             \"rtt_ms\": 81.2, \"x_member\": true},"
    "   \"jpn\": {\"region\": \"ap-northeast-1\", \"rtt_ms\": null}},"
    " \"services\": {"
    "   \"default/web\": {\"port\": 80, \"x_svc\": \"kept\", \"members\": {"
    "     \"usa\": {\"addresses\": [\"192.0.2.10\", \"2001:db8:10::10\"], \"hostname\": null,"
    "               \"ready_endpoints\": 2, \"healthy\": true, \"pending\": false,"
    "               \"rtt_ms\": 80.9, \"reason\": \"probe ok\", \"x_ep\": [3]},"
    "     \"jpn\": {\"via_proxy\": true, \"addresses\": [\"198.51.100.7\"],"
    "               \"backends\": [\"10.0.0.5:31234\", \"[2001:db8::5]:31234\"],"
    "               \"ready_endpoints\": 2, \"healthy\": false,"
    "               \"reason\": \"probe 3/3 failed: connect timeout\"}}},"
    "   \"default/api\": {\"members\": {"
    "     \"eur\": {\"hostname\": \"lb-1.elb.example.test\", \"healthy\": true, \"pending\": true,"
    "               \"rtt_ms\": 0}}},"
    "   \"kube-system/dns\": {}}}";

static struct cm_state *parse_ok(const char *text)
{
    char err[CM_STATE_ERR_MAX];
    struct cm_state *st = NULL;
    int rc = cm_state_parse(text, strlen(text), NULL, &st, err, sizeof(err));

    if (rc != CM_OK)
        fail_msg("parse failed: %s", err);
    assert_non_null(st);
    return st;
}

static void ip_of(const struct cm_addr *a, char *buf, size_t cap)
{
    cm_ip_format((const struct sockaddr *)&a->ss, buf, cap);
}

static void check_valid_fields(const struct cm_state *st)
{
    const struct cm_state_service *web, *api;
    const struct cm_state_endpoint *usa, *jpn, *eur;
    char ip[64];

    assert_int_equal(st->version, 1);
    assert_string_equal(st->vantage, "eu-west-1");
    assert_int_equal(st->generation, 42);
    assert_string_equal(st->generated_at, "2026-11-21T07:00:00.250Z");
    assert_int_equal(st->generated_at_unix, 1795244400);
    assert_int_equal(st->member_count, 2);
    assert_string_equal(st->members[0].name, "jpn"); /* sorted */
    assert_true(isnan(st->members[0].rtt_ms));
    assert_null(st->members[0].zone);
    assert_string_equal(st->members[1].name, "usa");
    assert_string_equal(st->members[1].api, "ok");
    assert_true(st->members[1].rtt_ms == 81.2);
    assert_int_equal(st->service_count, 3);
    assert_string_equal(st->services[0].key, "default/api");
    assert_string_equal(st->services[1].key, "default/web");
    assert_string_equal(st->services[2].key, "kube-system/dns");
    assert_int_equal(st->services[2].member_count, 0);

    web = cm_state_service_find(st, "default/web");
    assert_ptr_equal(web, &st->services[1]);
    assert_int_equal(web->port, 80);
    usa = cm_state_endpoint_find(web, "usa");
    assert_non_null(usa);
    assert_int_equal(usa->address_count, 2);
    ip_of(&usa->addresses[0], ip, sizeof(ip));
    assert_string_equal(ip, "192.0.2.10");
    ip_of(&usa->addresses[1], ip, sizeof(ip));
    assert_string_equal(ip, "2001:db8:10::10");
    assert_null(usa->hostname);
    assert_int_equal(usa->ready_endpoints, 2);
    assert_true(usa->healthy);
    assert_false(usa->pending);
    assert_false(usa->via_proxy);
    assert_true(usa->rtt_ms == 80.9);
    assert_string_equal(usa->reason, "probe ok");
    jpn = cm_state_endpoint_find(web, "jpn");
    assert_non_null(jpn);
    assert_true(jpn->via_proxy);
    assert_false(jpn->healthy);
    assert_true(isnan(jpn->rtt_ms));
    assert_int_equal(jpn->backend_count, 2);
    assert_string_equal(jpn->backends[1], "[2001:db8::5]:31234");
    assert_null(cm_state_endpoint_find(web, "eur"));

    api = cm_state_service_find(st, "default/api");
    assert_non_null(api);
    assert_int_equal(api->port, 0);
    eur = cm_state_endpoint_find(api, "eur");
    assert_non_null(eur);
    assert_string_equal(eur->hostname, "lb-1.elb.example.test");
    assert_int_equal(eur->address_count, 0);
    assert_true(eur->pending);
    assert_true(eur->rtt_ms == 0);
    assert_null(cm_state_service_find(st, "default/nope"));
}

static void test_valid_and_round_trip(void **state)
{
    struct cm_state *st = parse_ok(valid_doc), *st2;
    char *dump, *dump2;

    (void)state;
    check_valid_fields(st);
    dump = cm_state_dump(st);
    assert_non_null(dump);
    /* unknown fields survive, at every level */
    assert_non_null(strstr(dump, "\"x_top\":{\"a\":[1,2]}"));
    assert_non_null(strstr(dump, "\"x_member\":true"));
    assert_non_null(strstr(dump, "\"x_svc\":\"kept\""));
    assert_non_null(strstr(dump, "\"x_ep\":[3]"));
    assert_null(strchr(dump, '\n'));
    st2 = parse_ok(dump);
    check_valid_fields(st2);
    dump2 = cm_state_dump(st2);
    assert_non_null(dump2);
    assert_string_equal(dump, dump2);
    free(dump);
    free(dump2);
    cm_state_free(st);
    cm_state_free(st2);
    cm_state_free(NULL);
}

/* A document keeps "services" as received: absent, empty or not, in its JSON
 * and in what cm_state_equal compares. */
static void test_services_presence(void **state)
{
    static const char head[] = "{\"version\":1,\"vantage\":\"us-east-1\",\"generation\":3,"
                               "\"generated_at\":\"2026-11-21T07:00:00Z\"";
    char none[256], empty[256], later[256];
    struct cm_state *a, *b, *c, *d;
    char *text;

    (void)state;
    snprintf(none, sizeof(none), "%s}", head);
    snprintf(empty, sizeof(empty), "%s,\"services\":{}}", head);
    a = parse_ok(none);
    b = parse_ok(empty);
    c = parse_ok(valid_doc);
    d = parse_ok(valid_doc);
    text = cm_state_dump(a);
    assert_null(strstr(text, "services"));
    free(text);
    text = cm_state_dump(b);
    assert_non_null(strstr(text, "\"services\":{}"));
    free(text);
    assert_false(cm_state_equal(a, b, false));
    assert_false(cm_state_equal(b, a, true));
    assert_true(cm_state_equal(a, a, false));
    assert_true(cm_state_equal(c, d, false));
    assert_false(cm_state_equal(a, c, true));
    cm_state_free(d);
    /* the same but generation and generated_at */
    snprintf(later, sizeof(later), "%s,\"services\":{}}", head);
    memcpy(strstr(later, "\"generation\":3"), "\"generation\":4", strlen("\"generation\":4"));
    d = parse_ok(later);
    assert_false(cm_state_equal(b, d, false));
    assert_true(cm_state_equal(b, d, true));
    cm_state_free(a);
    cm_state_free(b);
    cm_state_free(c);
    cm_state_free(d);
}

static void test_from_json(void **state)
{
    char err[CM_STATE_ERR_MAX];
    json_error_t jerr;
    json_t *doc = json_loads(valid_doc, 0, &jerr);
    struct cm_state *st = NULL;

    (void)state;
    assert_non_null(doc);
    assert_int_equal(cm_state_from_json(doc, NULL, &st, err, sizeof(err)), CM_OK);
    json_decref(doc); /* the state holds its own reference */
    check_valid_fields(st);
    cm_state_free(st);
    assert_int_equal(cm_state_from_json(NULL, NULL, &st, err, sizeof(err)), CM_ESTATE);
    assert_string_equal(err, "document: must be a JSON object");
}

static void test_timestamps(void **state)
{
    static const struct {
        const char *ts;
        bool ok;
        int64_t unix_s;
    } cases[] = {
        {"1970-01-01T00:00:00Z", true, 0},
        {"2024-02-29T23:59:59Z", true, 1709251199},
        {"2000-03-01t00:00:00.123456789z", true, 951868800},
        {"2026-11-21T07:00:00Z", true, 1795244400},
        {"2023-02-29T00:00:00Z", false, 0},
        {"2026-13-01T00:00:00Z", false, 0},
        {"2026-11-21T24:00:00Z", false, 0},
        {"2026-11-21T07:00:00+00:00", false, 0},
        {"2026-11-21T07:00:00", false, 0},
        {"2026-11-21T07:00:00.Z", false, 0},
        {"2026-11-21 07:00:00Z", false, 0},
        {"2026-11-21T07:00:00Zx", false, 0},
        {"", false, 0},
    };
    char text[512], err[CM_STATE_ERR_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cm_state *st = NULL;
        int rc;

        snprintf(text, sizeof(text),
                 "{\"version\":1,\"vantage\":\"v\",\"generation\":0,\"generated_at\":\"%s\"}",
                 cases[i].ts);
        rc = cm_state_parse(text, strlen(text), NULL, &st, err, sizeof(err));
        print_message("ts %s -> %s\n", cases[i].ts, rc == CM_OK ? "ok" : err);
        if (cases[i].ok) {
            assert_int_equal(rc, CM_OK);
            assert_int_equal(st->generated_at_unix, cases[i].unix_s);
        } else {
            char want[256];
            assert_int_equal(rc, CM_ESTATE);
            snprintf(want, sizeof(want), "generated_at: not an RFC 3339 UTC timestamp \"%s\"",
                     cases[i].ts);
            assert_string_equal(err, want);
        }
        cm_state_free(st);
    }
}

/* ---- validation failures, each with its exact message ---- */

#define HDR                                                                                        \
    "\"version\":1,\"vantage\":\"us-east-1\",\"generation\":1,"                                    \
    "\"generated_at\":\"2026-11-21T07:00:00Z\""
#define WEB(members)                                                                               \
    "{" HDR ",\"services\":{\"default/web\":{\"port\":80,\"members\":{" members "}}}}"

struct bad_case {
    const char *text;
    int rc;
    const char *msg;
};

static const struct bad_case bad_cases[] = {
    {"[1]", CM_ESTATE, "document: must be a JSON object"},
    {"{\"version\":2,\"vantage\":\"x\",\"generation\":1,\"generated_at\":\"2026-11-21T07:00:00Z\"}",
     CM_ESTATE, "version: unsupported version 2"},
    {"{\"vantage\":\"x\"}", CM_ESTATE, "version: missing"},
    {"{\"version\":\"1\"}", CM_ESTATE, "version: must be an integer"},
    {"{\"version\":1.0}", CM_ESTATE, "version: must be an integer"},
    {"{\"version\":1,\"generation\":1}", CM_ESTATE, "vantage: missing"},
    {"{\"version\":1,\"vantage\":\"\"}", CM_ESTATE, "vantage: must be a non-empty string"},
    {"{\"version\":1,\"vantage\":7}", CM_ESTATE, "vantage: must be a non-empty string"},
    {"{\"version\":1,\"vantage\":\"x\",\"generation\":-1}", CM_ESTATE,
     "generation: must be a non-negative integer"},
    {"{\"version\":1,\"vantage\":\"x\",\"generation\":\"5\"}", CM_ESTATE,
     "generation: must be a non-negative integer"},
    {"{\"version\":1,\"vantage\":\"x\",\"generation\":1.5}", CM_ESTATE,
     "generation: must be a non-negative integer"},
    {"{\"version\":1,\"vantage\":\"x\"}", CM_ESTATE, "generation: missing"},
    {"{\"version\":1,\"vantage\":\"x\",\"generation\":1}", CM_ESTATE, "generated_at: missing"},
    {"{\"version\":1,\"vantage\":\"x\",\"generation\":1,\"generated_at\":3}", CM_ESTATE,
     "generated_at: must be a string"},
    {"{" HDR ",\"members\":[]}", CM_ESTATE, "members: must be an object"},
    {"{" HDR ",\"members\":{\"usa\":1}}", CM_ESTATE, "members.usa: must be an object"},
    {"{" HDR ",\"members\":{\"\":{}}}", CM_ESTATE, "members: empty member name"},
    {"{" HDR ",\"members\":{\"usa\":{\"rtt_ms\":-1}}}", CM_ESTATE,
     "members.usa.rtt_ms: must be a non-negative number or null"},
    {"{" HDR ",\"members\":{\"usa\":{\"rtt_ms\":\"5\"}}}", CM_ESTATE,
     "members.usa.rtt_ms: must be a non-negative number or null"},
    {"{" HDR ",\"members\":{\"usa\":{\"region\":5}}}", CM_ESTATE,
     "members.usa.region: must be a string"},
    {"{" HDR ",\"services\":5}", CM_ESTATE, "services: must be an object"},
    {"{" HDR ",\"services\":{\"web\":{}}}", CM_ESTATE,
     "services: key \"web\" is not \"namespace/name\""},
    {"{" HDR ",\"services\":{\"Default/web\":{}}}", CM_ESTATE,
     "services: key \"Default/web\" is not \"namespace/name\""},
    {"{" HDR ",\"services\":{\"default/web/x\":{}}}", CM_ESTATE,
     "services: key \"default/web/x\" is not \"namespace/name\""},
    {"{" HDR ",\"services\":{\"default/\":{}}}", CM_ESTATE,
     "services: key \"default/\" is not \"namespace/name\""},
    {"{" HDR ",\"services\":{\"default/web\":[]}}", CM_ESTATE,
     "services.default/web: must be an object"},
    {"{" HDR ",\"services\":{\"default/web\":{\"port\":0}}}", CM_ESTATE,
     "services.default/web.port: must be an integer 1..65535"},
    {"{" HDR ",\"services\":{\"default/web\":{\"port\":65536}}}", CM_ESTATE,
     "services.default/web.port: must be an integer 1..65535"},
    {"{" HDR ",\"services\":{\"default/web\":{\"members\":[]}}}", CM_ESTATE,
     "services.default/web.members: must be an object"},
    {WEB("\"usa\":{\"addresses\":[\"192.0.2.1\",\"300.1.1.1\"],\"healthy\":true}"), CM_ESTATE,
     "services.default/web.members.usa.addresses[1]: not an IP address \"300.1.1.1\""},
    {WEB("\"usa\":{\"addresses\":[\"192.0.2.1:80\"],\"healthy\":true}"), CM_ESTATE,
     "services.default/web.members.usa.addresses[0]: not an IP address \"192.0.2.1:80\""},
    {WEB("\"usa\":{\"addresses\":[5],\"healthy\":true}"), CM_ESTATE,
     "services.default/web.members.usa.addresses[0]: must be a string"},
    {WEB("\"usa\":{\"addresses\":\"192.0.2.1\",\"healthy\":true}"), CM_ESTATE,
     "services.default/web.members.usa.addresses: must be an array"},
    {WEB("\"usa\":{\"addresses\":[\"bad\\u0001\\\"quote\"],\"healthy\":true}"), CM_ESTATE,
     "services.default/web.members.usa.addresses[0]: not an IP address \"bad??quote\""},
    {WEB("\"usa\":{\"addresses\":[]}"), CM_ESTATE,
     "services.default/web.members.usa.healthy: missing"},
    {WEB("\"usa\":{\"healthy\":\"yes\"}"), CM_ESTATE,
     "services.default/web.members.usa.healthy: must be a boolean"},
    {WEB("\"usa\":{\"healthy\":true,\"pending\":1}"), CM_ESTATE,
     "services.default/web.members.usa.pending: must be a boolean"},
    {WEB("\"usa\":{\"healthy\":true,\"via_proxy\":null}"), CM_ESTATE,
     "services.default/web.members.usa.via_proxy: must be a boolean"},
    {WEB("\"jpn\":{\"healthy\":true,\"backends\":[\"10.0.0.5\"]}"), CM_ESTATE,
     "services.default/web.members.jpn.backends[0]: not an \"ip:port\" address \"10.0.0.5\""},
    {WEB("\"jpn\":{\"healthy\":true,\"backends\":[\"10.0.0.5:0\"]}"), CM_ESTATE,
     "services.default/web.members.jpn.backends[0]: not an \"ip:port\" address \"10.0.0.5:0\""},
    {WEB("\"usa\":{\"healthy\":true,\"ready_endpoints\":-1}"), CM_ESTATE,
     "services.default/web.members.usa.ready_endpoints: must be a non-negative integer"},
    {WEB("\"usa\":{\"healthy\":true,\"ready_endpoints\":4294967296}"), CM_ESTATE,
     "services.default/web.members.usa.ready_endpoints: too large (4294967296, max 4294967295)"},
    {WEB("\"usa\":{\"healthy\":true,\"hostname\":5}"), CM_ESTATE,
     "services.default/web.members.usa.hostname: must be a non-empty string"},
    {WEB("\"usa\":{\"healthy\":true,\"hostname\":\"\"}"), CM_ESTATE,
     "services.default/web.members.usa.hostname: must be a non-empty string"},
    {WEB("\"usa\":{\"healthy\":true,\"rtt_ms\":-0.5}"), CM_ESTATE,
     "services.default/web.members.usa.rtt_ms: must be a non-negative number or null"},
    {WEB("\"usa\":{\"healthy\":true,\"reason\":[]}"), CM_ESTATE,
     "services.default/web.members.usa.reason: must be a string"},
    {WEB("\"usa\":5"), CM_ESTATE, "services.default/web.members.usa: must be an object"},
    {WEB("\"\":{\"healthy\":true}"), CM_ESTATE, "services.default/web.members: empty member name"},
};

static void test_bad_documents(void **state)
{
    char err[CM_STATE_ERR_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        struct cm_state *st = NULL;
        int rc = cm_state_parse(bad_cases[i].text, strlen(bad_cases[i].text), NULL, &st, err,
                                sizeof(err));

        print_message("case %zu: %s\n", i, rc == CM_OK ? "(accepted)" : err);
        assert_int_equal(rc, bad_cases[i].rc);
        assert_null(st);
        assert_string_equal(err, bad_cases[i].msg);
    }
}

/* ---- special addresses: refused with the path unless allow_addresses opens them ---- */

struct special_case {
    const char *member;   /* WEB() body */
    bool allowed;         /* accepted under allow = 127.0.0.0/8, ::1/128, 169.254.0.0/16 */
    const char *msg;      /* the rejection without the list */
    const char *msg_list; /* with the list, when still rejected */
};

#define P     "services.default/web.members.usa."
#define LIST  "; list it in allow_addresses to permit it"
#define NEVER "; it is never allowed"

static const struct special_case special_cases[] = {
    {"\"usa\":{\"addresses\":[\"192.0.2.1\",\"127.0.0.1\"],\"healthy\":true}", true,
     P "addresses[1]: 127.0.0.1 is a loopback address" LIST, NULL},
    {"\"usa\":{\"addresses\":[\"::1\"],\"healthy\":true}", true,
     P "addresses[0]: ::1 is a loopback address" LIST, NULL},
    {"\"usa\":{\"addresses\":[\"::ffff:127.0.0.1\"],\"healthy\":true}", true,
     P "addresses[0]: ::ffff:127.0.0.1 is a loopback address" LIST, NULL},
    {"\"usa\":{\"addresses\":[\"169.254.1.1\"],\"healthy\":true}", true,
     P "addresses[0]: 169.254.1.1 is a link-local address" LIST, NULL},
    {"\"usa\":{\"addresses\":[\"fe80::1\"],\"healthy\":true}", false,
     P "addresses[0]: fe80::1 is a link-local address" LIST,
     P "addresses[0]: fe80::1 is a link-local address" LIST},
    {"\"usa\":{\"addresses\":[\"0.0.0.0\"],\"healthy\":true}", false,
     P "addresses[0]: 0.0.0.0 is an unspecified address" NEVER,
     P "addresses[0]: 0.0.0.0 is an unspecified address" NEVER},
    {"\"usa\":{\"addresses\":[\"::\"],\"healthy\":true}", false,
     P "addresses[0]: :: is an unspecified address" NEVER,
     P "addresses[0]: :: is an unspecified address" NEVER},
    {"\"usa\":{\"addresses\":[\"224.0.0.1\"],\"healthy\":true}", false,
     P "addresses[0]: 224.0.0.1 is a multicast address" NEVER,
     P "addresses[0]: 224.0.0.1 is a multicast address" NEVER},
    {"\"usa\":{\"addresses\":[\"ff02::1\"],\"healthy\":true}", false,
     P "addresses[0]: ff02::1 is a multicast address" NEVER,
     P "addresses[0]: ff02::1 is a multicast address" NEVER},
    {"\"usa\":{\"addresses\":[\"::ffff:239.1.2.3\"],\"healthy\":true}", false,
     P "addresses[0]: ::ffff:239.1.2.3 is a multicast address" NEVER,
     P "addresses[0]: ::ffff:239.1.2.3 is a multicast address" NEVER},
    {"\"usa\":{\"addresses\":[\"255.255.255.255\"],\"healthy\":true}", false,
     P "addresses[0]: 255.255.255.255 is a broadcast address" NEVER,
     P "addresses[0]: 255.255.255.255 is a broadcast address" NEVER},
    /* proxy backends follow the same rule */
    {"\"usa\":{\"healthy\":true,\"backends\":[\"10.0.0.5:80\",\"127.0.0.1:8080\"]}", true,
     P "backends[1]: 127.0.0.1:8080 is a loopback address" LIST, NULL},
    {"\"usa\":{\"healthy\":true,\"backends\":[\"169.254.169.254:80\"]}", true,
     P "backends[0]: 169.254.169.254:80 is a link-local address" LIST, NULL},
    {"\"usa\":{\"healthy\":true,\"backends\":[\"0.0.0.0:80\"]}", false,
     P "backends[0]: 0.0.0.0:80 is an unspecified address" NEVER,
     P "backends[0]: 0.0.0.0:80 is an unspecified address" NEVER},
    {"\"usa\":{\"healthy\":true,\"backends\":[\"[ff02::1]:80\"]}", false,
     P "backends[0]: [ff02::1]:80 is a multicast address" NEVER,
     P "backends[0]: [ff02::1]:80 is a multicast address" NEVER},
    {"\"usa\":{\"healthy\":true,\"backends\":[\"255.255.255.255:80\"]}", false,
     P "backends[0]: 255.255.255.255:80 is a broadcast address" NEVER,
     P "backends[0]: 255.255.255.255:80 is a broadcast address" NEVER},
};

#undef P
#undef LIST
#undef NEVER

static int parse_special(const char *member, const struct cm_state_opts *o, char *err,
                         size_t errlen)
{
    char text[1024];
    struct cm_state *st = NULL;
    int rc;

    snprintf(text, sizeof(text),
             "{" HDR ",\"services\":{\"default/web\":{\"port\":80,\"members\":{%s}}}}", member);
    rc = cm_state_parse(text, strlen(text), o, &st, err, errlen);
    if (rc == CM_OK)
        assert_non_null(st);
    else
        assert_null(st);
    cm_state_free(st);
    return rc;
}

static void test_special_addresses(void **state)
{
    static const char *const list[] = {"127.0.0.0/8", "::1/128", "169.254.0.0/16"};
    struct cm_ip_prefix allow[3];
    struct cm_state_opts none = {0}, opts = {.allow = allow, .allow_count = 3};
    char err[CM_STATE_ERR_MAX];

    (void)state;
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(cm_ip_prefix_parse(list[i], &allow[i]), CM_OK);
    for (size_t i = 0; i < sizeof(special_cases) / sizeof(special_cases[0]); i++) {
        const struct special_case *c = &special_cases[i];

        print_message("case %zu: %s\n", i, c->member);
        assert_int_equal(parse_special(c->member, NULL, err, sizeof(err)), CM_ESTATE);
        assert_string_equal(err, c->msg);
        assert_int_equal(parse_special(c->member, &none, err, sizeof(err)), CM_ESTATE);
        assert_string_equal(err, c->msg);
        if (c->allowed) {
            assert_int_equal(parse_special(c->member, &opts, err, sizeof(err)), CM_OK);
        } else {
            assert_int_equal(parse_special(c->member, &opts, err, sizeof(err)), CM_ESTATE);
            assert_string_equal(err, c->msg_list);
        }
    }
}

/* A document accepted under a list is refused by check_conf under a configuration without it. */
static void test_special_addresses_check_conf(void **state)
{
    static const char conf_text[] = "{\"federation\":\"myfed\",\"zone\":\"fed.example.test\","
                                    "\"regions\":{\"us-east-1\":{\"zones\":[\"us-east-1a\"]}},"
                                    "\"members\":{\"usa\":{\"region\":\"us-east-1\"}}%s}";
    static const char doc[] = "{" HDR ",\"services\":{\"default/web\":{\"members\":{"
                              "\"usa\":{\"addresses\":[\"127.0.0.2\"],\"healthy\":true}}}}}";
    struct cm_conf *open_conf = NULL, *closed_conf = NULL;
    struct cm_state_opts opts;
    struct cm_state *st = NULL;
    char text[512], err[CM_STATE_ERR_MAX];

    (void)state;
    snprintf(text, sizeof(text), conf_text, ",\"allow_addresses\":[\"127.0.0.0/8\"]");
    assert_int_equal(cm_conf_load_string("a.json", text, &open_conf, err, sizeof(err)), CM_OK);
    snprintf(text, sizeof(text), conf_text, "");
    assert_int_equal(cm_conf_load_string("b.json", text, &closed_conf, err, sizeof(err)), CM_OK);
    cm_state_opts_from_conf(&opts, open_conf);
    assert_int_equal(cm_state_parse(doc, strlen(doc), &opts, &st, err, sizeof(err)), CM_OK);
    assert_int_equal(cm_state_check_conf(st, open_conf, err, sizeof(err)), CM_OK);
    assert_int_equal(cm_state_check_conf(st, closed_conf, err, sizeof(err)), CM_ESTATE);
    assert_string_equal(err, "services.default/web.members.usa.addresses[0]: 127.0.0.2 is a "
                             "loopback address; list it in allow_addresses to permit it");
    cm_state_free(st);
    cm_conf_unref(open_conf);
    cm_conf_unref(closed_conf);
}

static void test_bad_json(void **state)
{
    static const char *texts[] = {
        "", "{", "{\"version\":1,\"version\":1}", "{\"a\":\"\\u0000\"}", "nul\0l",
    };
    char err[CM_STATE_ERR_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        struct cm_state *st = NULL;
        size_t len = i == 4 ? 5 : strlen(texts[i]);

        assert_int_equal(cm_state_parse(texts[i], len, NULL, &st, err, sizeof(err)), CM_EPARSE);
        assert_null(st);
        assert_non_null(strstr(err, "document: invalid JSON at line "));
    }
}

static void test_limits(void **state)
{
    char err[CM_STATE_ERR_MAX], key[32];
    struct cm_state *st = NULL;
    json_error_t jerr;
    json_t *doc, *members, *services;
    char *big;

    (void)state;
    /* size: rejected before any byte is read */
    big = calloc(1, (size_t)CM_STATE_MAX_BYTES + 1);
    assert_non_null(big);
    assert_int_equal(
        cm_state_parse(big, (size_t)CM_STATE_MAX_BYTES + 1, NULL, &st, err, sizeof(err)),
        CM_ETOOBIG);
    assert_string_equal(err, "document: too large (67108865 bytes, max 67108864)");
    free(big);

    /* members per service */
    doc = json_loads("{" HDR ",\"services\":{\"default/web\":{\"members\":{}}}}", 0, &jerr);
    assert_non_null(doc);
    members = json_object_get(json_object_get(json_object_get(doc, "services"), "default/web"),
                              "members");
    for (unsigned i = 0; i < CM_STATE_MAX_MEMBERS; i++) {
        snprintf(key, sizeof(key), "m%u", i);
        json_object_set_new(members, key, json_pack("{s:b}", "healthy", 1));
    }
    assert_int_equal(cm_state_from_json(doc, NULL, &st, err, sizeof(err)), CM_OK);
    assert_int_equal(st->services[0].member_count, CM_STATE_MAX_MEMBERS);
    cm_state_free(st);
    st = NULL;
    json_object_set_new(members, "one-more", json_pack("{s:b}", "healthy", 1));
    assert_int_equal(cm_state_from_json(doc, NULL, &st, err, sizeof(err)), CM_ESTATE);
    assert_string_equal(err, "services.default/web.members: too many members (1001, max 1000)");
    json_decref(doc);

    /* top-level members */
    doc = json_loads("{" HDR ",\"members\":{}}", 0, &jerr);
    assert_non_null(doc);
    members = json_object_get(doc, "members");
    for (unsigned i = 0; i <= CM_STATE_MAX_MEMBERS; i++) {
        snprintf(key, sizeof(key), "m%u", i);
        json_object_set_new(members, key, json_object());
    }
    assert_int_equal(cm_state_from_json(doc, NULL, &st, err, sizeof(err)), CM_ESTATE);
    assert_string_equal(err, "members: too many members (1001, max 1000)");
    json_decref(doc);

    /* services */
    doc = json_loads("{" HDR ",\"services\":{}}", 0, &jerr);
    assert_non_null(doc);
    services = json_object_get(doc, "services");
    for (unsigned i = 0; i <= CM_STATE_MAX_SERVICES; i++) {
        snprintf(key, sizeof(key), "ns/s%u", i);
        json_object_set_new(services, key, json_object());
    }
    assert_int_equal(cm_state_from_json(doc, NULL, &st, err, sizeof(err)), CM_ESTATE);
    assert_string_equal(err, "services: too many services (100001, max 100000)");
    json_decref(doc);
}

/* ---- a configuration built by hand (independent of the conf parser) ---- */

static char r_us[] = "us-east-1", r_eu[] = "eu-west-1", r_ap[] = "ap-northeast-1";
static char m_usa[] = "usa", m_eur[] = "eur", m_jpn[] = "jpn";
static char s_api[] = "default/api", s_idle[] = "default/idle", s_web[] = "default/web";

static void conf_init(struct cm_conf *conf, struct cm_conf_region *regions,
                      struct cm_conf_member *members, struct cm_conf_service *services)
{
    memset(conf, 0, sizeof(*conf));
    memset(regions, 0, 3 * sizeof(*regions));
    memset(members, 0, 3 * sizeof(*members));
    memset(services, 0, 3 * sizeof(*services));
    regions[0].name = r_us;
    regions[1].name = r_eu;
    regions[2].name = r_ap;
    members[0].name = m_usa;
    members[0].region = 0;
    members[1].name = m_eur;
    members[1].region = 1;
    members[2].name = m_jpn;
    members[2].region = 2;
    services[0].key = s_web;
    services[0].port = 80;
    services[1].key = s_api;
    services[1].port = 8080;
    services[2].key = s_idle;
    services[2].port = 9000;
    conf->regions = regions;
    conf->region_count = 3;
    conf->members = members;
    conf->member_count = 3;
    conf->services = services;
    conf->service_count = 3;
}

static void test_check_conf(void **state)
{
    struct cm_conf conf;
    struct cm_conf_region regions[3];
    struct cm_conf_member members[3];
    struct cm_conf_service services[3];
    char err[CM_STATE_ERR_MAX];
    struct cm_state *st;

    (void)state;
    conf_init(&conf, regions, members, services);
    st = parse_ok("{" HDR ",\"members\":{\"usa\":{},\"jpn\":{}},"
                  "\"services\":{\"other/x\":{\"members\":{\"eur\":{\"healthy\":true}}}}}");
    assert_int_equal(cm_state_check_conf(st, &conf, err, sizeof(err)), CM_OK);
    cm_state_free(st);

    st = parse_ok("{\"version\":1,\"vantage\":\"sa-east-1\",\"generation\":1,"
                  "\"generated_at\":\"2026-11-21T07:00:00Z\"}");
    assert_int_equal(cm_state_check_conf(st, &conf, err, sizeof(err)), CM_ESTATE);
    assert_string_equal(err, "vantage: unknown region \"sa-east-1\"");
    cm_state_free(st);

    st = parse_ok("{" HDR ",\"members\":{\"usa\":{},\"bra\":{}}}");
    assert_int_equal(cm_state_check_conf(st, &conf, err, sizeof(err)), CM_ESTATE);
    assert_string_equal(err, "members.bra: unknown member");
    cm_state_free(st);

    st = parse_ok(WEB("\"usa\":{\"healthy\":true},\"bra\":{\"healthy\":true}"));
    assert_int_equal(cm_state_check_conf(st, &conf, err, sizeof(err)), CM_ESTATE);
    assert_string_equal(err, "services.default/web.members.bra: unknown member");
    cm_state_free(st);
}

/* ---- merge ---- */

static struct cm_state *vantage_doc(const char *vantage, unsigned generation, const char *ts,
                                    const char *members, const char *services)
{
    char text[4096];

    snprintf(text, sizeof(text),
             "{\"version\":1,\"vantage\":\"%s\",\"generation\":%u,\"generated_at\":\"%s\","
             "\"members\":{%s},\"services\":{%s}}",
             vantage, generation, ts, members, services);
    return parse_ok(text);
}

static const struct cm_merged_service *merged_find(const struct cm_merged *m, const char *key)
{
    for (size_t i = 0; i < m->service_count; i++)
        if (strcmp(m->services[i].key, key) == 0)
            return &m->services[i];
    return NULL;
}

enum { USA = 0, EUR = 1, JPN = 2, US = 0, EU = 1, AP = 2 };

static void test_merge(void **state)
{
    struct cm_conf conf;
    struct cm_conf_region regions[3];
    struct cm_conf_member members[3];
    struct cm_conf_service services[3];
    struct cm_state *docs[5];
    struct cm_merged *m = NULL;
    const struct cm_merged_service *web, *api, *idle, *other;

    (void)state;
    conf_init(&conf, regions, members, services);
    docs[0] =
        vantage_doc("us-east-1", 7, "2026-11-21T07:00:00Z",
                    "\"usa\":{\"rtt_ms\":1.5},\"eur\":{\"rtt_ms\":70},\"jpn\":{\"rtt_ms\":150}",
                    "\"default/web\":{\"port\":80,\"members\":{"
                    "\"usa\":{\"healthy\":true,\"rtt_ms\":2.0,\"reason\":\"us says up\"},"
                    "\"eur\":{\"healthy\":true,\"rtt_ms\":null},"
                    "\"jpn\":{\"healthy\":false,\"reason\":\"us says down\"},"
                    "\"bra\":{\"healthy\":false}}},"
                    "\"other/svc\":{\"port\":1234,\"members\":{\"eur\":{\"healthy\":true}}}");
    docs[1] = vantage_doc(
        "eu-west-1", 3, "2026-11-21T07:00:05Z", "\"usa\":{\"rtt_ms\":71},\"eur\":{\"rtt_ms\":0.7}",
        "\"default/web\":{\"members\":{"
        "\"usa\":{\"healthy\":false,\"reason\":\"eu says down\"},"
        "\"eur\":{\"healthy\":true,\"rtt_ms\":0.9},"
        "\"jpn\":{\"healthy\":true,\"reason\":\"eu says up\"}}},"
        "\"default/api\":{\"members\":{\"usa\":{\"healthy\":true,\"pending\":true}}},"
        "\"other/svc\":{\"port\":4321,\"members\":{}}");
    docs[2] = vantage_doc("ap-northeast-1", 9, "2026-11-21T07:00:01Z",
                          "\"usa\":{\"rtt_ms\":149},\"jpn\":{\"rtt_ms\":1}",
                          "\"default/web\":{\"members\":{"
                          "\"usa\":{\"healthy\":false,\"rtt_ms\":151},"
                          "\"eur\":{\"healthy\":true}}},"
                          "\"default/api\":{\"members\":{\"usa\":{\"healthy\":true}}}");
    /* unknown vantage: would turn eur down and add rtt if it counted */
    docs[3] = vantage_doc("sa-east-1", 99, "2027-01-01T00:00:00Z", "\"eur\":{\"rtt_ms\":5}",
                          "\"default/web\":{\"members\":{\"eur\":{\"healthy\":false},"
                          "\"usa\":{\"healthy\":false},\"jpn\":{\"healthy\":false}}}");
    docs[4] = NULL;

    assert_int_equal(cm_merged_build((const struct cm_state *const *)docs, 5, &conf, &m), CM_OK);
    assert_non_null(m);
    assert_int_equal(m->doc_count, 5);
    assert_ptr_equal(m->docs[3], docs[3]);
    assert_int_equal(m->region_count, 3);
    assert_int_equal(m->member_count, 3);

    /* services: union of documents and configuration, sorted */
    assert_int_equal(m->service_count, 4);
    assert_string_equal(m->services[0].key, "default/api");
    assert_string_equal(m->services[1].key, "default/idle");
    assert_string_equal(m->services[2].key, "default/web");
    assert_string_equal(m->services[3].key, "other/svc");
    web = merged_find(m, "default/web");
    api = merged_find(m, "default/api");
    idle = merged_find(m, "default/idle");
    other = merged_find(m, "other/svc");

    /* web: usa up(us) down(eu, ap) -> 1-2 down */
    assert_int_equal(web->conf_index, 0);
    assert_int_equal(web->port, 80);
    assert_int_equal(web->members[USA].member, USA);
    assert_true(web->members[USA].present);
    assert_int_equal(web->members[USA].votes_up, 1);
    assert_int_equal(web->members[USA].votes_down, 2);
    assert_false(web->members[USA].healthy);
    /* newest document (eu, 07:00:05) supplies src */
    assert_string_equal(web->members[USA].src->reason, "eu says down");
    /* eur: 3-0 up; the unknown vantage's down vote did not count */
    assert_int_equal(web->members[EUR].votes_up, 3);
    assert_int_equal(web->members[EUR].votes_down, 0);
    assert_true(web->members[EUR].healthy);
    /* jpn: down(us) up(eu), not reported by ap -> 1-1 tie keeps it up */
    assert_int_equal(web->members[JPN].votes_up, 1);
    assert_int_equal(web->members[JPN].votes_down, 1);
    assert_true(web->members[JPN].healthy);
    assert_false(web->members[JPN].pending);
    assert_string_equal(web->members[JPN].src->reason, "eu says up");

    /* api: pending from one vantage propagates */
    assert_int_equal(api->port, 8080); /* configured port */
    assert_true(api->members[USA].present);
    assert_true(api->members[USA].pending);
    assert_true(api->members[USA].healthy);
    assert_int_equal(api->members[USA].votes_up, 2);
    assert_false(api->members[EUR].present);
    assert_false(api->members[EUR].healthy);
    assert_null(api->members[EUR].src);

    /* configured, reported by nobody */
    assert_int_equal(idle->conf_index, 2);
    assert_int_equal(idle->port, 9000);
    for (size_t i = 0; i < 3; i++) {
        assert_false(idle->members[i].present);
        assert_false(idle->members[i].healthy);
        assert_null(idle->members[i].src);
        assert_int_equal(idle->members[i].member, i);
    }

    /* discovered: port from the newest document giving one */
    assert_int_equal(other->conf_index, -1);
    assert_int_equal(other->port, 4321);
    assert_true(other->members[EUR].present);

    /* member-level matrix: one row per vantage region */
    assert_true(m->rtt_ms[US * 3 + USA] == 1.5);
    assert_true(m->rtt_ms[US * 3 + JPN] == 150);
    assert_true(m->rtt_ms[EU * 3 + EUR] == 0.7);
    assert_true(isnan(m->rtt_ms[EU * 3 + JPN]));
    assert_true(isnan(m->rtt_ms[AP * 3 + EUR])); /* sa-east-1's 5 ms did not land anywhere */

    /* cm_merged_rtt: per-service value of that region's vantage, else the matrix */
    assert_true(cm_merged_rtt(m, US, web, USA) == 2.0);
    assert_true(cm_merged_rtt(m, US, web, EUR) == 70); /* null per-service -> matrix */
    assert_true(cm_merged_rtt(m, EU, web, EUR) == 0.9);
    assert_true(cm_merged_rtt(m, EU, web, USA) == 71);
    assert_true(cm_merged_rtt(m, AP, web, USA) == 151);
    assert_true(isnan(cm_merged_rtt(m, AP, web, EUR)));
    assert_true(cm_merged_rtt(m, AP, api, USA) == 149);
    assert_true(cm_merged_rtt(m, US, idle, JPN) == 150);
    assert_true(cm_merged_rtt(m, US, NULL, USA) == 1.5);
    assert_true(isnan(cm_merged_rtt(m, 3, web, USA)));
    assert_true(isnan(cm_merged_rtt(m, US, web, 3)));

    cm_merged_free(m);
    cm_merged_free(NULL);
    for (size_t i = 0; i < 4; i++)
        cm_state_free(docs[i]);
}

static void test_merge_newest_and_duplicates(void **state)
{
    struct cm_conf conf;
    struct cm_conf_region regions[3];
    struct cm_conf_member members[3];
    struct cm_conf_service services[3];
    struct cm_state *docs[3];
    struct cm_merged *m = NULL;
    const struct cm_merged_service *web;

    (void)state;
    conf_init(&conf, regions, members, services);
    /* same timestamp: the higher generation supplies src */
    docs[0] = vantage_doc("us-east-1", 8, "2026-11-21T07:00:00Z", "",
                          "\"default/web\":{\"members\":{\"usa\":{\"healthy\":true,"
                          "\"reason\":\"gen 8\"}}}");
    docs[1] = vantage_doc("eu-west-1", 9, "2026-11-21T07:00:00Z", "",
                          "\"default/web\":{\"members\":{\"usa\":{\"healthy\":true,"
                          "\"reason\":\"gen 9\"}}}");
    /* an older document from eu-west-1 again: it does not count */
    docs[2] = vantage_doc("eu-west-1", 2, "2026-11-21T06:00:00Z", "\"usa\":{\"rtt_ms\":500}",
                          "\"default/web\":{\"members\":{\"usa\":{\"healthy\":false}}}");
    assert_int_equal(cm_merged_build((const struct cm_state *const *)docs, 3, &conf, &m), CM_OK);
    web = merged_find(m, "default/web");
    assert_non_null(web);
    assert_string_equal(web->members[USA].src->reason, "gen 9");
    assert_int_equal(web->members[USA].votes_up, 2);
    assert_int_equal(web->members[USA].votes_down, 0);
    assert_true(isnan(m->rtt_ms[EU * 3 + USA]));
    cm_merged_free(m);

    /* no documents at all: every configured service, nobody present */
    m = NULL;
    assert_int_equal(cm_merged_build(NULL, 0, &conf, &m), CM_OK);
    assert_int_equal(m->service_count, 3);
    assert_false(m->services[0].members[0].present);
    assert_true(isnan(cm_merged_rtt(m, US, &m->services[0], USA)));
    cm_merged_free(m);
    for (size_t i = 0; i < 3; i++)
        cm_state_free(docs[i]);
}

/* ---- the sample documents in conf/state/ ---- */

static char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf;
    long n;

    if (fp == NULL)
        fail_msg("cannot open %s", path);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    n = ftell(fp);
    assert_true(n > 0);
    rewind(fp);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static void test_sample_documents(void **state)
{
    static const char *names[] = {"us-east-1", "eu-west-1", "ap-northeast-1"};
    char err[CM_CONF_ERR_MAX > CM_STATE_ERR_MAX ? CM_CONF_ERR_MAX : CM_STATE_ERR_MAX];
    struct cm_state *docs[3] = {NULL, NULL, NULL};
    struct cm_conf *conf = NULL;
    struct cm_merged *m = NULL;
    int rc;

    (void)state;
    /* paths inside federation.json are relative to the source tree */
    assert_int_equal(chdir(FEDGSLB_SOURCE_DIR), 0);
    rc = cm_conf_load("conf/federation.json", &conf, err, sizeof(err));
    if (rc != CM_OK)
        fail_msg("conf/federation.json: %s", err);
    for (size_t i = 0; i < 3; i++) {
        char path[256];
        size_t len;
        char *text;

        snprintf(path, sizeof(path), "conf/state/%s.json", names[i]);
        text = read_file(path, &len);
        rc = cm_state_parse(text, len, NULL, &docs[i], err, sizeof(err));
        free(text);
        if (rc != CM_OK)
            fail_msg("%s: %s", path, err);
        assert_string_equal(docs[i]->vantage, names[i]);
        rc = cm_state_check_conf(docs[i], conf, err, sizeof(err));
        if (rc != CM_OK)
            fail_msg("%s: %s", path, err);
    }
    assert_int_equal(cm_merged_build((const struct cm_state *const *)docs, 3, conf, &m), CM_OK);
    /* every configured service has every member present and healthy, and each
     * region sees its own member fastest */
    for (size_t s = 0; s < m->service_count; s++) {
        const struct cm_merged_service *svc = &m->services[s];
        assert_true(svc->conf_index >= 0);
        for (size_t i = 0; i < m->member_count; i++) {
            size_t own = conf->members[i].region;
            assert_true(svc->members[i].present);
            assert_true(svc->members[i].healthy);
            assert_int_equal(svc->members[i].votes_up, 3);
            for (size_t j = 0; j < m->member_count; j++) {
                if (j != i)
                    assert_true(cm_merged_rtt(m, own, svc, i) < cm_merged_rtt(m, own, svc, j));
            }
        }
    }
    cm_merged_free(m);
    for (size_t i = 0; i < 3; i++)
        cm_state_free(docs[i]);
    cm_conf_unref(conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_and_round_trip),
        cmocka_unit_test(test_services_presence),
        cmocka_unit_test(test_from_json),
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_bad_documents),
        cmocka_unit_test(test_special_addresses),
        cmocka_unit_test(test_special_addresses_check_conf),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_check_conf),
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_merge_newest_and_duplicates),
        cmocka_unit_test(test_sample_documents),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
