/* SPDX-License-Identifier: Apache-2.0 */
/* test_dns_fed.c -- the federated answer table: names, ranking, levels,
 * all-down policies, TTLs, sharing, and explain agreeing with the table. */
#include <arpa/inet.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_intent.h"
#include "common/cm_state.h"
#include "dnsd/dns_explain.h"
#include "dnsd/dns_fed.h"

#define GLOBAL  "web.default.myfed.svc.fed.example.test"
#define US      "us-east-1"
#define EU      "eu-west-1"
#define AP      "ap-northeast-1"
#define USA_V4  "192.0.2.10"
#define EUR_V4  "192.0.2.20"
#define JPN_V4  "192.0.2.30"
#define TEXTMAX 1024

static const char conf_text[] =
    "{'federation': 'myfed', 'zone': 'fed.example.test',"
    " 'regions': {'us-east-1': {'zones': ['us-east-1a', 'us-east-1b']},"
    "             'eu-west-1': {'zones': ['eu-west-1a']},"
    "             'ap-northeast-1': {'zones': ['ap-northeast-1a']}},"
    " 'members': {'usa': {'region': 'us-east-1', 'zone': 'us-east-1a'},"
    "             'eur': {'region': 'eu-west-1', 'zone': 'eu-west-1a'},"
    "             'jpn': {'region': 'ap-northeast-1', 'zone': 'ap-northeast-1a'}},"
    " 'services': {"
    "   'default/web': {'port': 80, 'aliases': ['web.fed.example.test', 'www.a.fed.example.test'],"
    "                   'policy': {'latency_slack_ms': 5, 'prefer_own_region': false}},"
    "   'default/closed': {'port': 80, 'policy': {'all_down': 'fail-closed'}},"
    "   'default/sorry': {'port': 80, 'policy': {'all_down': 'sorry:sorry.example.net'}},"
    "   'default/two': {'port': 80, 'policy': {'max_answers': 1}}},"
    " 'latency_ms': {'us-east-1': {'eu-west-1': 70, 'ap-northeast-1': 150},"
    "                'eu-west-1': {'ap-northeast-1': 220}},"
    " 'dnsd': {'listen': ['127.0.0.1:5300'], 'region': 'us-east-1', 'zone_file': 'z.zone',"
    "          'ttl_s': 30, 'min_ttl_s': 5}}";

/* One service x member entry of a state document. */
struct ep {
    const char *svc;
    const char *member;
    const char *addrs; /* comma separated, "" = none */
    const char *hostname;
    int ready;
    bool healthy;
    bool pending;
    double rtt; /* NAN: not measured */
};

struct fx {
    struct cm_conf *conf;
    struct cm_state *docs[3];
    size_t ndocs;
    struct cm_merged *merged;
    struct dns_fed *fed;
    bool drained[3];             /* members given a drain intent by fx_build */
    bool use_drains;             /* pass the intents to the build */
    struct cm_intent_view *view; /* the drains as the build saw them */
};

static struct cm_conf *load_conf(void)
{
    char err[CM_CONF_ERR_MAX];
    struct cm_conf *conf = NULL;
    char *text = strdup(conf_text);

    assert_non_null(text);
    for (char *c = text; *c != '\0'; c++) {
        if (*c == '\'')
            *c = '"';
    }
    if (cm_conf_load_string("t.json", text, &conf, err, sizeof(err)) != CM_OK)
        fail_msg("conf: %s", err);
    free(text);
    return conf;
}

static json_t *ep_json(const struct ep *e)
{
    json_t *o = json_object();
    json_t *addrs = json_array();
    char buf[256];

    snprintf(buf, sizeof(buf), "%s", e->addrs);
    for (char *p = buf; *p != '\0';) {
        char *comma = strchr(p, ',');
        if (comma != NULL)
            *comma = '\0';
        json_array_append_new(addrs, json_string(p));
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    json_object_set_new(o, "addresses", addrs);
    json_object_set_new(o, "hostname",
                        e->hostname != NULL ? json_string(e->hostname) : json_null());
    json_object_set_new(o, "ready_endpoints", json_integer(e->ready));
    json_object_set_new(o, "healthy", json_boolean(e->healthy));
    json_object_set_new(o, "pending", json_boolean(e->pending));
    json_object_set_new(o, "reason", json_string(e->healthy ? "probe ok" : "probe failed"));
    if (!isnan(e->rtt))
        json_object_set_new(o, "rtt_ms", json_real(e->rtt));
    return o;
}

/* A state document from @vantage; @mrtt: member-level RTT of usa, eur, jpn (NAN: none). */
static struct cm_state *mkstate(const char *vantage, const double mrtt[3], const struct ep *eps,
                                size_t n)
{
    static const char *const names[3] = {"usa", "eur", "jpn"};
    json_t *doc = json_object();
    json_t *members = json_object();
    json_t *services = json_object();
    struct cm_state *st = NULL;
    char err[CM_STATE_ERR_MAX];

    for (size_t i = 0; i < 3; i++) {
        json_t *m = json_object();
        if (mrtt != NULL && !isnan(mrtt[i]))
            json_object_set_new(m, "rtt_ms", json_real(mrtt[i]));
        json_object_set_new(members, names[i], m);
    }
    for (size_t i = 0; i < n; i++) {
        json_t *svc = json_object_get(services, eps[i].svc);
        if (svc == NULL) {
            svc = json_object();
            json_object_set_new(svc, "port", json_integer(80));
            json_object_set_new(svc, "members", json_object());
            json_object_set_new(services, eps[i].svc, svc);
        }
        json_object_set_new(json_object_get(svc, "members"), eps[i].member, ep_json(&eps[i]));
    }
    json_object_set_new(doc, "version", json_integer(1));
    json_object_set_new(doc, "vantage", json_string(vantage));
    json_object_set_new(doc, "generation", json_integer(1));
    json_object_set_new(doc, "generated_at", json_string("2026-11-21T07:00:00Z"));
    json_object_set_new(doc, "members", members);
    json_object_set_new(doc, "services", services);
    if (cm_state_from_json(doc, NULL, &st, err, sizeof(err)) != CM_OK)
        fail_msg("state: %s", err);
    json_decref(doc);
    return st;
}

/* Every configured service healthy on all three members, no RTT. */
static size_t std_eps(struct ep *out)
{
    static const char *const svcs[] = {"default/web", "default/closed", "default/sorry",
                                       "default/two"};
    size_t n = 0;

    for (size_t s = 0; s < 4; s++) {
        out[n++] = (struct ep){svcs[s], "usa", USA_V4 ",2001:db8:10::10,192.0.2.11", NULL, 2, true,
                               false,   NAN};
        out[n++] = (struct ep){svcs[s], "eur", EUR_V4, NULL, 2, true, false, NAN};
        out[n++] =
            (struct ep){svcs[s], "jpn", JPN_V4 ",2001:db8:30::30", NULL, 2, true, false, NAN};
    }
    return n;
}

static struct ep *find_ep(struct ep *eps, size_t n, const char *svc, const char *member)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(eps[i].svc, svc) == 0 && strcmp(eps[i].member, member) == 0)
            return &eps[i];
    }
    fail_msg("no ep %s %s", svc, member);
    return NULL;
}

/* A drain intent for every member in f->drained, compiled into f->view. */
static void fx_drains(struct fx *f)
{
    struct cm_intents *set = cm_intents_new();

    cm_intent_view_free(f->view);
    f->view = NULL;
    assert_non_null(set);
    for (size_t m = 0; m < f->conf->member_count; m++) {
        char text[256], err[CM_INTENT_ERR_MAX];
        struct cm_intent *in = NULL;
        struct cm_intents *next = NULL;

        if (!f->drained[m])
            continue;
        snprintf(text, sizeof(text),
                 "{\"id\": \"drain-%s\", \"kind\": \"drain\", \"member\": \"%s\", "
                 "\"author\": \"test\", \"reason\": \"test\", "
                 "\"created_at\": \"2026-11-21T06:00:00Z\"}",
                 f->conf->members[m].name, f->conf->members[m].name);
        assert_int_equal(cm_intent_parse_text(text, strlen(text), f->conf, &in, err, sizeof(err)),
                         CM_OK);
        assert_int_equal(cm_intents_put(set, in, 1795244400, &next, err, sizeof(err)), CM_OK);
        cm_intents_free(set);
        set = next;
    }
    assert_int_equal(cm_intent_view_build(set, f->conf, 1795244400, &f->view), CM_OK);
    cm_intents_free(set);
}

static void fx_build(struct fx *f)
{
    char err[256];

    dns_fed_free(f->fed);
    f->fed = NULL;
    cm_merged_free(f->merged);
    f->merged = NULL;
    if (f->ndocs > 0)
        assert_int_equal(
            cm_merged_build((const struct cm_state *const *)f->docs, f->ndocs, f->conf, &f->merged),
            CM_OK);
    fx_drains(f);
    if (dns_fed_build(f->conf, f->merged, f->use_drains ? f->view : NULL, &f->fed, err,
                      sizeof(err)) != CM_OK)
        fail_msg("build: %s", err);
}

/* Same endpoints from all three vantages. */
static void fx_uniform(struct fx *f, const struct ep *eps, size_t n)
{
    const char *v[3] = {US, EU, AP};

    for (size_t i = 0; i < 3; i++) {
        cm_state_free(f->docs[i]);
        f->docs[i] = mkstate(v[i], NULL, eps, n);
    }
    f->ndocs = 3;
    fx_build(f);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->conf = load_conf();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    dns_fed_free(f->fed);
    cm_merged_free(f->merged);
    cm_intent_view_free(f->view);
    for (size_t i = 0; i < 3; i++)
        cm_state_free(f->docs[i]);
    cm_conf_unref(f->conf);
    free(f);
    return 0;
}

static size_t to_wire(const char *name, uint8_t *out)
{
    size_t pos = 0;
    const char *p = name;

    while (*p != '\0') {
        const char *dot = strchr(p, '.');
        size_t len = dot != NULL ? (size_t)(dot - p) : strlen(p);
        out[pos++] = (uint8_t)len;
        for (size_t i = 0; i < len; i++)
            out[pos++] = (uint8_t)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] - 'A' + 'a' : p[i]);
        p += len;
        if (*p == '.')
            p++;
    }
    out[pos++] = 0;
    return pos;
}

static void wire_text(const uint8_t *w, char *out, size_t cap)
{
    size_t o = 0;

    out[0] = '\0';
    while (*w != 0 && o + *w + 2 < cap) {
        memcpy(out + o, w + 1, *w);
        o += *w;
        out[o++] = '.';
        w += 1 + *w;
    }
    out[o > 0 ? o - 1 : 0] = '\0';
}

/* The answer as text: "A 1.2.3.4,5.6.7.8", "CNAME x.y", "NODATA". */
static void answer_text(const struct dns_fed_answer *a, char *out, size_t cap)
{
    const struct dns_rrset *rr = a->cname != NULL ? a->cname : a->rrset;
    size_t o;

    if (rr == NULL) {
        snprintf(out, cap, "NODATA");
        return;
    }
    if (rr->type == DNS_TYPE_CNAME) {
        char name[300];
        assert_int_equal(rr->count, 1);
        wire_text(rr->rdata + 2, name, sizeof(name));
        snprintf(out, cap, "CNAME %s", name);
        return;
    }
    o = (size_t)snprintf(out, cap, "%s ", rr->type == DNS_TYPE_A ? "A" : "AAAA");
    const uint8_t *p = rr->rdata;
    for (uint16_t i = 0; i < rr->count; i++) {
        size_t len = ((size_t)p[0] << 8) | p[1];
        char ip[INET6_ADDRSTRLEN];
        assert_int_equal(len, rr->type == DNS_TYPE_A ? 4 : 16);
        inet_ntop(rr->type == DNS_TYPE_A ? AF_INET : AF_INET6, p + 2, ip, sizeof(ip));
        o += (size_t)snprintf(out + o, cap - o, "%s%s", i > 0 ? "," : "", ip);
        p += 2 + len;
    }
    assert_int_equal(p - rr->rdata, rr->rdata_len);
}

static unsigned reg(const struct fx *f, const char *name)
{
    int r = cm_conf_region_index(f->conf, name);

    assert_true(r >= 0);
    return (unsigned)r;
}

static enum dns_fed_match look(const struct fx *f, const char *name, uint16_t qtype,
                               const char *region, uint32_t hash, struct dns_fed_answer *a,
                               char *text)
{
    uint8_t wire[256];
    size_t len = to_wire(name, wire);
    enum dns_fed_match m = dns_fed_lookup(f->fed, wire, len, qtype, reg(f, region), hash, a);

    answer_text(a, text, TEXTMAX);
    return m;
}

/* Asserts the answer text and TTL of @name for a client in @region. */
static void expect(const struct fx *f, const char *name, uint16_t qtype, const char *region,
                   const char *want, uint32_t ttl)
{
    struct dns_fed_answer a;
    char text[TEXTMAX];

    assert_int_equal(look(f, name, qtype, region, 0, &a, text), DNS_FED_NAME);
    assert_string_equal(text, want);
    if (a.cname != NULL)
        assert_int_equal(a.cname->ttl, ttl);
    else if (a.rrset != NULL)
        assert_int_equal(a.rrset->ttl, ttl);
    assert_int_equal(a.negative_ttl, ttl);
}

/* Explain for (@name, @region, @hash): its rule starts with @rule, it selects
 * @member (NULL: none), and its TTL matches. */
static json_t *explain(const struct fx *f, const char *name, const char *region, uint32_t hash,
                       const char *rule, const char *member, uint32_t ttl)
{
    json_t *e = dns_explain(f->fed, f->conf, f->merged, f->use_drains ? f->view : NULL, name,
                            reg(f, region), hash);
    json_t *d, *sel;

    assert_non_null(e);
    d = json_object_get(e, "decision");
    assert_non_null(d);
    const char *got = json_string_value(json_object_get(d, "rule"));
    assert_non_null(got);
    if (strncmp(got, rule, strlen(rule)) != 0)
        fail_msg("rule '%s', want '%s'", got, rule);
    sel = json_object_get(d, "selected");
    if (member == NULL)
        assert_true(json_is_null(sel));
    else
        assert_string_equal(json_string_value(sel), member);
    assert_int_equal(json_integer_value(json_object_get(d, "ttl")), ttl);
    assert_int_equal(json_integer_value(json_object_get(d, "slot")), hash % DNS_FED_SLOTS);
    assert_string_equal(json_string_value(json_object_get(e, "client_region")), region);
    return e;
}

static void explain_ok(const struct fx *f, const char *name, const char *region, uint32_t hash,
                       const char *rule, const char *member, uint32_t ttl)
{
    json_decref(explain(f, name, region, hash, rule, member, ttl));
}

static json_t *cand(json_t *e, const char *member)
{
    json_t *c;
    size_t i;

    json_array_foreach(json_object_get(e, "candidates"), i, c)
    {
        if (strcmp(json_string_value(json_object_get(c, "member")), member) == 0)
            return c;
    }
    fail_msg("no candidate %s", member);
    return NULL;
}

/* ---- tests ---- */

static void test_each_region_own_member(void **state)
{
    struct fx *f = *state;
    struct ep eps[12];
    struct dns_fed_answer a;
    char text[TEXTMAX];

    fx_uniform(f, eps, std_eps(eps));
    expect(f, GLOBAL, DNS_TYPE_A, US, "A " USA_V4 ",192.0.2.11", 30);
    expect(f, GLOBAL, DNS_TYPE_A, EU, "A " EUR_V4, 30);
    expect(f, GLOBAL, DNS_TYPE_A, AP, "A " JPN_V4, 30);
    look(f, GLOBAL, DNS_TYPE_A, US, 0, &a, text);
    assert_true(a.client_dependent);
    assert_false(a.fail_open);
    assert_int_equal(a.service, 0);
    assert_string_equal(dns_fed_service_key(f->fed, (size_t)a.service), "default/web");
    explain_ok(f, GLOBAL, US, 7, "best latency", "usa", 30);
    explain_ok(f, GLOBAL, EU, 7, "best latency", "eur", 30);
    json_t *e = explain(f, GLOBAL, AP, 7, "best latency", "jpn", 30);
    assert_string_equal(json_string_value(json_object_get(e, "level")), "global");
    assert_string_equal(json_string_value(json_object_get(cand(e, "usa"), "rtt_source")),
                        "static latency_ms");
    assert_true(json_real_value(json_object_get(cand(e, "usa"), "rtt_ms")) == 150);
    assert_int_equal(json_integer_value(json_object_get(cand(e, "jpn"), "rank")), 1);
    assert_int_equal(json_integer_value(json_object_get(cand(e, "usa"), "rank")), 2);
    json_decref(e);
    /* Regional names with one member each do not depend on the client. */
    look(f, "web.default.myfed.svc.eu-west-1.fed.example.test", DNS_TYPE_A, US, 0, &a, text);
    assert_string_equal(text, "A " EUR_V4);
    assert_false(a.client_dependent);
    assert_int_equal(dns_fed_service_count(f->fed), 4);
    /* 4 services x (1 global + 3 regional + 4 zonal) + 2 aliases */
    assert_int_equal(dns_fed_name_count(f->fed), 4 * 8 + 2);
}

static void test_unhealthy_next_lowest(void **state)
{
    struct fx *f = *state;
    struct ep eps[12];
    size_t n = std_eps(eps);

    find_ep(eps, n, "default/web", "usa")->healthy = false;
    fx_uniform(f, eps, n);
    expect(f, GLOBAL, DNS_TYPE_A, US, "A " EUR_V4, 30);
    expect(f, GLOBAL, DNS_TYPE_A, AP, "A " JPN_V4, 30);
    json_t *e = explain(f, GLOBAL, US, 0, "best latency", "eur", 30);
    assert_false(json_boolean_value(json_object_get(cand(e, "usa"), "healthy")));
    assert_int_equal(json_integer_value(json_object_get(cand(e, "usa"), "votes_down")), 3);
    assert_string_equal(json_string_value(json_object_get(cand(e, "usa"), "reason")),
                        "probe failed");
    json_decref(e);
    /* 0 ready endpoints counts as unhealthy too. */
    find_ep(eps, n, "default/web", "usa")->healthy = true;
    find_ep(eps, n, "default/web", "usa")->ready = 0;
    fx_uniform(f, eps, n);
    expect(f, GLOBAL, DNS_TYPE_A, US, "A " EUR_V4, 30);
    e = explain(f, GLOBAL, US, 0, "best latency", "eur", 30);
    assert_string_equal(json_string_value(json_object_get(cand(e, "usa"), "excluded")),
                        "0 ready endpoints");
    json_decref(e);
}

static void test_measured_rtt_overrides_static(void **state)
{
    struct fx *f = *state;
    struct ep eps[12];
    size_t n = std_eps(eps);
    const double us_rtt[3] = {200, 10, 300};

    f->docs[0] = mkstate(US, us_rtt, eps, n);
    f->docs[1] = mkstate(EU, NULL, eps, n);
    f->ndocs = 2;
    fx_build(f);
    expect(f, GLOBAL, DNS_TYPE_A, US, "A " EUR_V4, 30);
    expect(f, GLOBAL, DNS_TYPE_A, AP, "A " JPN_V4, 30); /* no vantage in AP: static */
    json_t *e = explain(f, GLOBAL, US, 0, "best latency", "eur", 30);
    assert_string_equal(json_string_value(json_object_get(cand(e, "eur"), "rtt_source")),
                        "measured by vantage us-east-1");
    assert_true(json_real_value(json_object_get(cand(e, "eur"), "rtt_ms")) == 10);
    json_decref(e);
    /* The per-service RTT beats the member-level one. */
    find_ep(eps, n, "default/web", "usa")->rtt = 1;
    cm_state_free(f->docs[0]);
    f->docs[0] = mkstate(US, us_rtt, eps, n);
    fx_build(f);
    expect(f, GLOBAL, DNS_TYPE_A, US, "A " USA_V4 ",192.0.2.11", 30);
    explain_ok(f, GLOBAL, US, 0, "best latency", "usa", 30);
}

static void test_majority_vote(void **state)
{
    struct fx *f = *state;
    struct ep good[12], bad[12];
    size_t n = std_eps(good);

    std_eps(bad);
    find_ep(bad, n, "default/web", "usa")->healthy = false;
    /* One of three says down: still up. */
    f->docs[0] = mkstate(US, NULL, bad, n);
    f->docs[1] = mkstate(EU, NULL, good, n);
    f->docs[2] = mkstate(AP, NULL, good, n);
    f->ndocs = 3;
    fx_build(f);
    expect(f, GLOBAL, DNS_TYPE_A, US, "A " USA_V4 ",192.0.2.11", 30);
    explain_ok(f, GLOBAL, US, 0, "best latency", "usa", 30);
    /* Two of three: down. */
    cm_state_free(f->docs[1]);
    f->docs[1] = mkstate(EU, NULL, bad, n);
    fx_build(f);
    expect(f, GLOBAL, DNS_TYPE_A, US, "A " EUR_V4, 30);
    explain_ok(f, GLOBAL, US, 0, "best latency", "eur", 30);
    /* A 1:1 tie keeps it up. */
    f->ndocs = 2;
    cm_state_free(f->docs[1]);
    f->docs[1] = mkstate(EU, NULL, good, n);
    fx_build(f);
    expect(f, GLOBAL, DNS_TYPE_A, US, "A " USA_V4 ",192.0.2.11", 30);
}

static void test_regional_and_zonal_cname_up(void **state)
{
    struct fx *f = *state;
    struct ep eps[12];
    size_t n = std_eps(eps);
    const char *us = "web.default.myfed.svc.us-east-1.fed.example.test";
    const char *us_a = "web.default.myfed.svc.us-east-1a.us-east-1.fed.example.test";
    const char *us_b = "web.default.myfed.svc.us-east-1b.us-east-1.fed.example.test";
    struct dns_fed_answer a;
    char text[TEXTMAX];

    fx_uniform(f, eps, n);
    expect(f, us, DNS_TYPE_A, EU, "A " USA_V4 ",192.0.2.11", 30);
    expect(f, us_a, DNS_TYPE_A, AP, "A " USA_V4 ",192.0.2.11", 30);
    expect(f, us_b, DNS_TYPE_A, US,
           "CNAME "
           "web.default.myfed.svc.us-east-1.fed.example.test",
           30);
    look(f, us_b, DNS_TYPE_TXT, US, 0, &a, text);
    assert_string_equal(text, "CNAME web.default.myfed.svc.us-east-1.fed.example.test");
    assert_false(a.client_dependent);
    explain_ok(f, us_b, US, 0, "cname up: no healthy member in zone us-east-1b", NULL, 30);
    explain_ok(f, us_a, EU, 0, "best latency", "usa", 30);

    find_ep(eps, n, "default/web", "usa")->healthy = false;
    fx_uniform(f, eps, n);
    expect(f, us, DNS_TYPE_A, US, "CNAME " GLOBAL, 30);
    expect(f, us, DNS_TYPE_AAAA, EU, "CNAME " GLOBAL, 30);
    expect(f, us_a, DNS_TYPE_A, US, "CNAME web.default.myfed.svc.us-east-1.fed.example.test", 30);
    json_t *e = explain(f, us, EU, 0, "cname up: no healthy member in region us-east-1", NULL, 30);
    assert_string_equal(json_string_value(json_object_get(e, "level")), "regional");
    assert_string_equal(json_string_value(json_object_get(json_object_get(e, "decision"), "cname")),
                        GLOBAL);
    json_decref(e);
    /* The global name then answers the next best member. */
    expect(f, GLOBAL, DNS_TYPE_A, US, "A " EUR_V4, 30);
}

static void test_fail_open(void **state)
{
    struct fx *f = *state;
    struct ep eps[12];
    size_t n = std_eps(eps);
    struct dns_fed_answer a;
    char text[TEXTMAX];

    for (size_t i = 0; i < n; i++)
        eps[i].healthy = false;
    fx_uniform(f, eps, n);
    assert_int_equal(look(f, GLOBAL, DNS_TYPE_A, US, 0, &a, text), DNS_FED_NAME);
    assert_string_equal(text, "A " USA_V4 ",192.0.2.11," EUR_V4 "," JPN_V4);
    assert_true(a.fail_open);
    assert_int_equal(a.rrset->ttl, 5);
    assert_int_equal(a.negative_ttl, 5);
    expect(f, GLOBAL, DNS_TYPE_A, AP, "A " JPN_V4 "," USA_V4 ",192.0.2.11," EUR_V4, 5);
    expect(f, GLOBAL, DNS_TYPE_AAAA, EU, "AAAA 2001:db8:10::10,2001:db8:30::30", 5);
    /* max_answers caps the combined answer. */
    expect(f, "two.default.myfed.svc.fed.example.test", DNS_TYPE_A, EU, "A " EUR_V4, 5);
    /* A regional name goes up to the global name first. */
    expect(f, "web.default.myfed.svc.eu-west-1.fed.example.test", DNS_TYPE_A, EU, "CNAME " GLOBAL,
           5);
    explain_ok(f, "web.default.myfed.svc.eu-west-1.fed.example.test", EU, 0,
               "cname up: no healthy member in region eu-west-1", NULL, 5);
    json_t *e = explain(f, GLOBAL, AP, 0, "all down: fail-open", NULL, 5);
    json_t *d = json_object_get(e, "decision");
    assert_string_equal(json_string_value(json_object_get(d, "ttl_reason")),
                        "min_ttl_s: failing open");
    assert_string_equal(json_string_value(json_array_get(json_object_get(d, "chosen"), 0)), "jpn");
    assert_int_equal(json_array_size(json_object_get(d, "chosen")), 3);
    json_decref(e);
}

static void test_fail_closed_and_sorry(void **state)
{
    struct fx *f = *state;
    struct ep eps[12];
    size_t n = std_eps(eps);
    struct dns_fed_answer a;
    char text[TEXTMAX];

    for (size_t i = 0; i < n; i++)
        eps[i].healthy = false;
    fx_uniform(f, eps, n);
    assert_int_equal(
        look(f, "closed.default.myfed.svc.fed.example.test", DNS_TYPE_A, US, 0, &a, text),
        DNS_FED_NAME);
    assert_string_equal(text, "NODATA");
    assert_null(a.rrset);
    assert_null(a.cname);
    assert_false(a.fail_open);
    assert_int_equal(a.negative_ttl, 5);
    explain_ok(f, "closed.default.myfed.svc.fed.example.test", US, 0, "all down: fail-closed", NULL,
               5);
    expect(f, "closed.default.myfed.svc.eu-west-1.fed.example.test", DNS_TYPE_A, US,
           "CNAME closed.default.myfed.svc.fed.example.test", 5);

    expect(f, "sorry.default.myfed.svc.fed.example.test", DNS_TYPE_A, EU, "CNAME sorry.example.net",
           5);
    expect(f, "sorry.default.myfed.svc.fed.example.test", DNS_TYPE_MX, EU,
           "CNAME sorry.example.net", 5);
    explain_ok(f, "sorry.default.myfed.svc.fed.example.test", EU, 0,
               "all down: sorry sorry.example.net", NULL, 5);
}

static void test_hostname_cname(void **state)
{
    struct fx *f = *state;
    struct ep eps[12];
    size_t n = std_eps(eps);
    struct ep *usa = find_ep(eps, n, "default/web", "usa");

    usa->addrs = "";
    usa->hostname = "LB-1.elb.example.com";
    fx_uniform(f, eps, n);
    expect(f, GLOBAL, DNS_TYPE_A, US, "CNAME LB-1.elb.example.com", 30);
    expect(f, GLOBAL, DNS_TYPE_AAAA, US, "CNAME LB-1.elb.example.com", 30);
    expect(f, GLOBAL, DNS_TYPE_TXT, US, "CNAME LB-1.elb.example.com", 30);
    expect(f, GLOBAL, DNS_TYPE_A, EU, "A " EUR_V4, 30);
    explain_ok(f, GLOBAL, US, 0, "hostname load balancer: cname", "usa", 30);
}

static void test_aaaa_and_missing_family(void **state)
{
    struct fx *f = *state;
    struct ep eps[12];
    struct dns_fed_answer a;
    char text[TEXTMAX];

    fx_uniform(f, eps, std_eps(eps));
    expect(f, GLOBAL, DNS_TYPE_AAAA, US, "AAAA 2001:db8:10::10", 30);
    expect(f, GLOBAL, DNS_TYPE_AAAA, EU, "NODATA", 30);
    look(f, GLOBAL, DNS_TYPE_AAAA, EU, 0, &a, text);
    assert_null(a.rrset);
    assert_null(a.cname);
    look(f, GLOBAL, DNS_TYPE_TXT, US, 0, &a, text);
    assert_string_equal(text, "NODATA");
    /* max_answers 1 */
    expect(f, "two.default.myfed.svc.fed.example.test", DNS_TYPE_A, US, "A " USA_V4, 30);
}

static void test_pending_min_ttl(void **state)
{
    struct fx *f = *state;
    struct ep eps[12];
    size_t n = std_eps(eps);

    find_ep(eps, n, "default/web", "jpn")->pending = true;
    fx_uniform(f, eps, n);
    expect(f, GLOBAL, DNS_TYPE_A, US, "A " USA_V4 ",192.0.2.11", 5);
    expect(f, "closed.default.myfed.svc.fed.example.test", DNS_TYPE_A, US,
           "A " USA_V4 ",192.0.2.11", 30);
    json_t *e = explain(f, GLOBAL, US, 0, "best latency", "usa", 5);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(e, "decision"), "ttl_reason")),
        "min_ttl_s: member jpn pending");
    json_decref(e);
}

static void test_drained_excluded(void **state)
{
    struct fx *f = *state;
    struct ep eps[12];

    f->use_drains = true;
    f->drained[cm_conf_member_index(f->conf, "usa")] = true;
    fx_uniform(f, eps, std_eps(eps));
    expect(f, GLOBAL, DNS_TYPE_A, US, "A " EUR_V4, 30);
    expect(f, "web.default.myfed.svc.us-east-1.fed.example.test", DNS_TYPE_A, US, "CNAME " GLOBAL,
           30);
    json_t *e = explain(f, GLOBAL, US, 0, "best latency", "eur", 30);
    assert_true(json_boolean_value(json_object_get(cand(e, "usa"), "drained")));
    /* Explain names the intent that drained it, for the member and the service. */
    assert_string_equal(json_string_value(json_object_get(cand(e, "usa"), "admin")), "drained");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(cand(e, "usa"), "intents"), 0), "id")),
                        "drain-usa");
    assert_int_equal(json_array_size(json_object_get(cand(e, "eur"), "intents")), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(e, "intents"), 0), "id")),
        "drain-usa");
    json_decref(e);
}

static void test_slack_sharing(void **state)
{
    struct fx *f = *state;
    struct ep eps[12];
    size_t n = std_eps(eps);
    const double us_rtt[3] = {10, 12, 300};
    unsigned count_usa = 0, count_eur = 0;
    struct dns_fed_answer a;
    char text[TEXTMAX], again[TEXTMAX];

    find_ep(eps, n, "default/web", "usa")->ready = 3;
    find_ep(eps, n, "default/web", "eur")->ready = 1;
    f->docs[0] = mkstate(US, us_rtt, eps, n);
    f->ndocs = 1;
    fx_build(f);
    for (uint32_t h = 0; h < 64; h++) {
        look(f, GLOBAL, DNS_TYPE_A, US, h, &a, text);
        assert_true(a.client_dependent);
        if (strcmp(text, "A " USA_V4 ",192.0.2.11") == 0) {
            count_usa++;
            explain_ok(f, GLOBAL, US, h, "shared within latency_slack_ms", "usa", 30);
        } else {
            assert_string_equal(text, "A " EUR_V4);
            count_eur++;
            explain_ok(f, GLOBAL, US, h, "shared within latency_slack_ms", "eur", 30);
        }
        /* Deterministic per hash. */
        look(f, GLOBAL, DNS_TYPE_A, US, h + 64 * 1000, &a, again);
        assert_string_equal(text, again);
    }
    assert_int_equal(count_usa, 48);
    assert_int_equal(count_eur, 16);
    /* Outside the slack: only the best. */
    expect(f, "closed.default.myfed.svc.fed.example.test", DNS_TYPE_A, EU, "A " EUR_V4, 30);
}

/* The default policy: of members equally near, the client's own region's answers alone. */
static void test_own_region_wins(void **state)
{
    struct fx *f = *state;
    struct ep eps[12];
    size_t n = std_eps(eps);
    const double us_rtt[3] = {12, 10, 300};
    struct dns_fed_answer a;
    char text[TEXTMAX];
    json_t *e;

    f->docs[0] = mkstate(US, us_rtt, eps, n);
    f->ndocs = 1;
    fx_build(f);
    /* default/closed keeps the default: eur is 2 ms nearer, but usa is in us-east-1. */
    for (uint32_t h = 0; h < 64; h++) {
        look(f, "closed.default.myfed.svc.fed.example.test", DNS_TYPE_A, US, h, &a, text);
        assert_string_equal(text, "A " USA_V4 ",192.0.2.11");
    }
    e = explain(f, "closed.default.myfed.svc.fed.example.test", US, 0, "best latency", "usa", 30);
    assert_true(
        json_boolean_value(json_object_get(json_object_get(e, "decision"), "own_region_only")));
    assert_true(json_boolean_value(json_object_get(cand(e, "usa"), "own_region")));
    assert_false(json_boolean_value(json_object_get(cand(e, "eur"), "own_region")));
    json_decref(e);
    /* default/web turns it off: they share. */
    look(f, GLOBAL, DNS_TYPE_A, US, 0, &a, text);
    assert_true(a.subnet_dependent);
}

static void test_ents_and_misses(void **state)
{
    struct fx *f = *state;
    struct ep eps[12];
    struct dns_fed_answer a;
    char text[TEXTMAX];
    static const char *const ents[] = {
        "default.myfed.svc.fed.example.test",
        "myfed.svc.fed.example.test",
        "svc.fed.example.test",
        "us-east-1.fed.example.test",
        "svc.us-east-1.fed.example.test",
        "myfed.svc.us-east-1.fed.example.test",
        "default.myfed.svc.us-east-1.fed.example.test",
        "us-east-1b.us-east-1.fed.example.test",
        "svc.us-east-1b.us-east-1.fed.example.test",
        "default.myfed.svc.ap-northeast-1a.ap-northeast-1.fed.example.test",
        "a.fed.example.test",
    };

    fx_uniform(f, eps, std_eps(eps));
    for (size_t i = 0; i < sizeof(ents) / sizeof(ents[0]); i++) {
        if (look(f, ents[i], DNS_TYPE_A, US, 0, &a, text) != DNS_FED_ENT)
            fail_msg("%s: not an ENT", ents[i]);
        assert_null(a.rrset);
        assert_null(a.cname);
        assert_null(dns_explain(f->fed, f->conf, f->merged, NULL, ents[i], 0, 0));
    }
    assert_int_equal(look(f, "fed.example.test", DNS_TYPE_A, US, 0, &a, text), DNS_FED_NONE);
    assert_int_equal(look(f, "www.fed.example.test", DNS_TYPE_A, US, 0, &a, text), DNS_FED_NONE);
    assert_int_equal(
        look(f, "x.web.default.myfed.svc.fed.example.test", DNS_TYPE_A, US, 0, &a, text),
        DNS_FED_NONE);
    assert_int_equal(
        look(f, "nope.default.myfed.svc.fed.example.test", DNS_TYPE_A, US, 0, &a, text),
        DNS_FED_NONE);
    assert_null(dns_explain(f->fed, f->conf, f->merged, NULL,
                            "nope.default.myfed.svc.fed.example.test", 0, 0));
    assert_null(dns_explain(f->fed, f->conf, f->merged, NULL, "www.fed.example.test", 0, 0));
}

static void test_aliases(void **state)
{
    struct fx *f = *state;
    struct ep eps[12];
    const char *regions[3] = {US, EU, AP};

    fx_uniform(f, eps, std_eps(eps));
    for (size_t i = 0; i < 3; i++) {
        struct dns_fed_answer g, a;
        char gt[TEXTMAX], at[TEXTMAX];
        look(f, GLOBAL, DNS_TYPE_A, regions[i], 0, &g, gt);
        assert_int_equal(look(f, "WEB.fed.example.test", DNS_TYPE_A, regions[i], 0, &a, at),
                         DNS_FED_NAME);
        assert_string_equal(at, gt);
        assert_int_equal(a.service, g.service);
        assert_int_equal(look(f, "www.a.fed.example.test", DNS_TYPE_A, regions[i], 0, &a, at),
                         DNS_FED_NAME);
        assert_string_equal(at, gt);
    }
    json_t *e = explain(f, "Web.Fed.Example.Test.", EU, 0, "best latency", "eur", 30);
    assert_string_equal(json_string_value(json_object_get(e, "level")), "alias");
    assert_string_equal(json_string_value(json_object_get(e, "service")), "default/web");
    assert_string_equal(json_string_value(json_object_get(e, "name")), "web.fed.example.test");
    json_decref(e);
}

static void test_no_state(void **state)
{
    struct fx *f = *state;
    struct dns_fed_answer a;
    char text[TEXTMAX];

    fx_build(f); /* merged == NULL */
    assert_int_equal(look(f, GLOBAL, DNS_TYPE_A, US, 0, &a, text), DNS_FED_NAME);
    assert_string_equal(text, "NODATA");
    assert_true(a.fail_open);
    assert_int_equal(a.negative_ttl, 5);
    expect(f, "sorry.default.myfed.svc.fed.example.test", DNS_TYPE_A, US, "CNAME sorry.example.net",
           5);
    json_t *e = explain(f, GLOBAL, US, 0, "all down: fail-open", NULL, 5);
    assert_false(json_boolean_value(json_object_get(cand(e, "usa"), "present")));
    json_decref(e);
    /* An unknown client region uses dnsd.region. */
    uint8_t wire[256];
    size_t len = to_wire("web.default.myfed.svc.us-east-1b.us-east-1.fed.example.test", wire);
    assert_int_equal(dns_fed_lookup(f->fed, wire, len, DNS_TYPE_A, 99, 0, &a), DNS_FED_NAME);
    assert_non_null(a.cname);
}

static void test_discovered_service(void **state)
{
    struct fx *f = *state;
    struct ep eps[14];
    size_t n = std_eps(eps);

    eps[n++] = (struct ep){"shop/cart", "eur", "192.0.2.99", NULL, 1, true, false, NAN};
    fx_uniform(f, eps, n);
    assert_int_equal(dns_fed_service_count(f->fed), 5);
    expect(f, "cart.shop.myfed.svc.fed.example.test", DNS_TYPE_A, US, "A 192.0.2.99", 30);
    expect(f, "cart.shop.myfed.svc.us-east-1.fed.example.test", DNS_TYPE_A, US,
           "CNAME cart.shop.myfed.svc.fed.example.test", 30);
    json_t *e =
        explain(f, "cart.shop.myfed.svc.fed.example.test", AP, 0, "best latency", "eur", 30);
    assert_false(json_boolean_value(json_object_get(e, "configured")));
    json_decref(e);
}

static void test_alias_collision_rejected(void **state)
{
    struct fx *f = *state;
    char err[256];
    struct dns_fed *fed = NULL;
    struct cm_conf *conf = NULL;
    char cerr[CM_CONF_ERR_MAX];
    char *text = strdup(conf_text);
    char *p;

    (void)f;
    /* An alias equal to another service's global name. */
    assert_non_null(text);
    p = strstr(text, "'web.fed.example.test'");
    assert_non_null(p);
    {
        char buf[sizeof(conf_text) + 64];
        snprintf(buf, sizeof(buf), "%.*s'two.default.myfed.svc.fed.example.test'%s",
                 (int)(p - text), text, p + strlen("'web.fed.example.test'"));
        for (char *c = buf; *c != '\0'; c++) {
            if (*c == '\'')
                *c = '"';
        }
        if (cm_conf_load_string("t.json", buf, &conf, cerr, sizeof(cerr)) != CM_OK)
            fail_msg("conf: %s", cerr);
    }
    free(text);
    assert_int_equal(dns_fed_build(conf, NULL, NULL, &fed, err, sizeof(err)), CM_ECONFIG);
    assert_null(fed);
    assert_non_null(strstr(err, "defined twice"));
    cm_conf_unref(conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_each_region_own_member, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unhealthy_next_lowest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_measured_rtt_overrides_static, setup, teardown),
        cmocka_unit_test_setup_teardown(test_majority_vote, setup, teardown),
        cmocka_unit_test_setup_teardown(test_regional_and_zonal_cname_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fail_closed_and_sorry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostname_cname, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aaaa_and_missing_family, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_min_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drained_excluded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_own_region_wins, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slack_sharing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ents_and_misses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aliases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discovered_service, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alias_collision_rejected, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
