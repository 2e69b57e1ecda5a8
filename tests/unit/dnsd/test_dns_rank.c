/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_dns_rank.c -- the decision procedure (dnsd/dns_rank.h), one table per
 * rule family: eligibility, latency order and its tie-breaks, latency_slack_ms
 * and its boundary, weights, TTL, all-down policies, regional and zonal
 * levels, client independence and slot spreading (wire names: test_dns_name.c);
 * the operator's intents (drain, force up/down, evacuate) and the traffic
 * policy (priority groups, standby weight 0, own-region preference, where a
 * weight or priority comes from).
 *
 * Every row builds a state document as JSON text from one vantage
 * (us-east-1), parses it with cm_state_parse(), merges it under the
 * configuration below with cm_merged_build() and ranks through the public
 * dns_rank API. The policy is a struct literal per row, so a row can hold
 * what the configuration parser would refuse (a sorry policy without target).
 */
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

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_intent.h"
#include "common/cm_state.h"
#include "dnsd/dns_fed.h"
#include "dnsd/dns_name.h"
#include "dnsd/dns_rank.h"

#define US "us-east-1"
#define EU "eu-west-1"
#define AP "ap-northeast-1"
#define SA "sa-east-1"
#define AF "af-south-1"

/*
 * Members are declared out of name order (usb before usa, sao before cpt) so
 * that a tie broken by configuration index instead of by name shows.
 * sa-east-1 and af-south-1 have no latency_ms entries: unknown latency.
 * jpn has no zone.
 */
static const char conf_head[] =
    "{'federation': 'myfed', 'zone': 'fed.example.test',"
    " 'regions': {'us-east-1': {'zones': ['us-east-1a', 'us-east-1b']},"
    "             'eu-west-1': {'zones': ['eu-west-1a']},"
    "             'ap-northeast-1': {'zones': ['ap-northeast-1a']},"
    "             'sa-east-1': {'zones': ['sa-east-1a']},"
    "             'af-south-1': {'zones': ['af-south-1a']}},"
    " 'members': {'usb': {'region': 'us-east-1', 'zone': 'us-east-1b'},"
    "             'usa': {'region': 'us-east-1', 'zone': 'us-east-1a'},"
    "             'eur': {'region': 'eu-west-1', 'zone': 'eu-west-1a'},"
    "             'jpn': {'region': 'ap-northeast-1'},"
    "             'sao': {'region': 'sa-east-1', 'zone': 'sa-east-1a'},"
    "             'cpt': {'region': 'af-south-1', 'zone': 'af-south-1a'}},"
    " 'services': {'default/web': {'port': 80, 'policy': ";
/* ... the policy of default/web ... */
static const char conf_tail[] =
    "}},"
    " 'latency_ms': {'us-east-1': {'eu-west-1': 70, 'ap-northeast-1': 150},"
    "                'eu-west-1': {'ap-northeast-1': 220}},"
    " 'dnsd': {'listen': ['127.0.0.1:5300'], 'region': 'us-east-1', 'zone_file': 'z.zone',"
    "          'ttl_s': 30, 'min_ttl_s': 5}}";

/* Not const: cm_conf_policy.sorry_target is a char *. */
static char sorry_name[] = "sorry.example.net";

#define NMEMBERS 6
#define TTL      30
#define MIN_TTL  5

/*
 * A state in one line: space-separated members, each "name" followed by
 * comma-separated flags. Defaults: healthy, 1 ready endpoint, one address,
 * no hostname, no RTT measured. Flags:
 *   rtt=N    per-service rtt_ms measured by the us-east-1 vantage
 *   ready=N  ready endpoints
 *   down     healthy: false
 *   pending  pending: true
 *   addrs=N  N addresses 10.<position>.0.1 .. 10.<position>.0.N
 *   noaddr   no addresses
 *   host=H   hostname H
 *   w=N      weight N (the fedgslb.io/weight annotation)
 *   p=N      priority N (the fedgslb.io/priority annotation)
 * Members not named are absent from the document. Tokens starting with "@"
 * are the service's rules: "@place=usa+eur" (placement; "@place=" none),
 * "@ttl=N" (ttl_s), "@noeps" (allow_without_endpoints).
 */
static size_t service_rule(const char *tok, char *out, size_t cap)
{
    if (strncmp(tok, "@place=", 7) == 0) {
        size_t n = (size_t)snprintf(out, cap, "\"placement\": [");

        for (const char *q = tok + 7; *q != '\0';) {
            size_t l = strcspn(q, "+");

            n += (size_t)snprintf(out + n, cap - n, "%s\"%.*s\"", q > tok + 7 ? ", " : "", (int)l,
                                  q);
            q += l + (q[l] == '+');
        }
        return n + (size_t)snprintf(out + n, cap - n, "], ");
    }
    if (strncmp(tok, "@ttl=", 5) == 0)
        return (size_t)snprintf(out, cap, "\"ttl_s\": %s, ", tok + 5);
    if (strcmp(tok, "@noeps") == 0)
        return (size_t)snprintf(out, cap, "\"allow_without_endpoints\": true, ");
    fail_msg("bad service rule '%s'", tok);
    return 0;
}

static char *state_json(const char *spec)
{
    static const char head[] = "{\"version\": 1, \"vantage\": \"" US "\", \"generation\": 7,"
                               " \"generated_at\": \"2026-11-21T07:00:00Z\","
                               " \"services\": {\"default/web\": {\"port\": 80, ";
    size_t cap = 16384, len = 0, rlen = 0;
    char *out = malloc(cap), rules[1024] = "";
    const char *p = spec;
    unsigned nth = 0;

    assert_non_null(out);
    for (const char *q = spec; (q = strchr(q, '@')) != NULL;) {
        char tok[256];
        size_t l = strcspn(q, " ");

        assert_true(l < sizeof(tok));
        memcpy(tok, q, l);
        tok[l] = '\0';
        rlen += service_rule(tok, rules + rlen, sizeof(rules) - rlen);
        q += l;
    }
    len += (size_t)snprintf(out + len, cap - len, "%s%s\"members\": {", head, rules);
    while (*p != '\0') {
        char name[32], host[128] = "", tok[160], addr[2048];
        const char *end = strchr(p, ' ');
        size_t tlen = end != NULL ? (size_t)(end - p) : strlen(p);
        double rtt = NAN;
        unsigned long ready = 1, naddr = 1;
        long weight = -1, prio = -1;
        bool down = false, pending = false;
        char *save, *f;

        if (tlen == 0 || *p == '@') {
            p += tlen > 0 ? tlen : 1;
            continue;
        }
        assert_true(tlen < sizeof(tok));
        memcpy(tok, p, tlen);
        tok[tlen] = '\0';
        p += tlen;
        f = strchr(tok, ',');
        if (f != NULL)
            *f++ = '\0';
        assert_true(strlen(tok) < sizeof(name));
        memcpy(name, tok, strlen(tok) + 1);
        while (f != NULL) {
            save = strchr(f, ',');
            if (save != NULL)
                *save++ = '\0';
            if (strncmp(f, "rtt=", 4) == 0)
                rtt = strtod(f + 4, NULL);
            else if (strncmp(f, "addrs=", 6) == 0)
                naddr = strtoul(f + 6, NULL, 10);
            else if (strncmp(f, "ready=", 6) == 0)
                ready = strtoul(f + 6, NULL, 10);
            else if (strcmp(f, "down") == 0)
                down = true;
            else if (strcmp(f, "pending") == 0)
                pending = true;
            else if (strcmp(f, "noaddr") == 0)
                naddr = 0;
            else if (strncmp(f, "w=", 2) == 0)
                weight = strtol(f + 2, NULL, 10);
            else if (strncmp(f, "p=", 2) == 0)
                prio = strtol(f + 2, NULL, 10);
            else if (strncmp(f, "host=", 5) == 0)
                snprintf(host, sizeof(host), "\"%s\"", f + 5);
            else
                fail_msg("bad flag '%s' in '%s'", f, spec);
            f = save;
        }
        nth++;
        addr[0] = '\0';
        for (size_t k = 0, o = 0; k < naddr; k++)
            o += (size_t)snprintf(addr + o, sizeof(addr) - o, "%s\"10.%u.0.%zu\"",
                                  k > 0 ? ", " : "", nth, k + 1);
        len += (size_t)snprintf(out + len, cap - len,
                                "%s\"%s\": {\"addresses\": [%s], \"hostname\": %s,"
                                " \"ready_endpoints\": %lu, \"healthy\": %s, \"pending\": %s",
                                nth > 1 ? ", " : "", name, addr, host[0] != '\0' ? host : "null",
                                ready, down ? "false" : "true", pending ? "true" : "false");
        if (!isnan(rtt))
            len += (size_t)snprintf(out + len, cap - len, ", \"rtt_ms\": %.3f", rtt);
        if (weight >= 0)
            len += (size_t)snprintf(out + len, cap - len, ", \"weight\": %ld", weight);
        if (prio >= 0)
            len += (size_t)snprintf(out + len, cap - len, ", \"priority\": %ld", prio);
        len += (size_t)snprintf(out + len, cap - len, "}");
        assert_true(len < cap - 16);
    }
    snprintf(out + len, cap - len, "}}}}");
    return out;
}

struct fx {
    struct cm_conf *conf;
    struct cm_state *doc;
    struct cm_merged *merged;
    struct cm_intents *intents;
    struct cm_intent_view *view;
    struct dns_rank_ctx ctx;
    struct dns_rank_service rs;
    struct dns_rank_member members[NMEMBERS];
    struct dns_rank_entry ranked[NMEMBERS];
    size_t n;
};

/* The configuration with @policy (JSON, single quotes) for default/web. */
static struct cm_conf *load_conf(const char *policy)
{
    char err[CM_CONF_ERR_MAX];
    struct cm_conf *conf = NULL;
    char text[4096];

    assert_true((size_t)snprintf(text, sizeof(text), "%s%s%s", conf_head, policy, conf_tail) <
                sizeof(text));
    for (char *c = text; *c != '\0'; c++) {
        if (*c == '\'')
            *c = '"';
    }
    if (cm_conf_load_string("t.json", text, &conf, err, sizeof(err)) != CM_OK)
        fail_msg("conf: %s", err);
    assert_int_equal(conf->member_count, NMEMBERS);
    return conf;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    f->conf = load_conf("{}");
    /* The fixture relies on configuration order differing from name order. */
    assert_int_equal(cm_conf_member_index(f->conf, "usb"), 0);
    assert_int_equal(cm_conf_member_index(f->conf, "usa"), 1);
    assert_int_equal(cm_conf_member_index(f->conf, "sao"), 4);
    assert_int_equal(cm_conf_member_index(f->conf, "cpt"), 5);
    *state = f;
    return 0;
}

static void fx_clear(struct fx *f)
{
    dns_rank_ctx_fini(&f->ctx);
    cm_merged_free(f->merged);
    f->merged = NULL;
    cm_state_free(f->doc);
    f->doc = NULL;
    cm_intent_view_free(f->view);
    f->view = NULL;
    cm_intents_free(f->intents);
    f->intents = NULL;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    fx_clear(f);
    cm_conf_unref(f->conf);
    free(f);
    return 0;
}

static size_t member(const struct fx *f, const char *name)
{
    int m = cm_conf_member_index(f->conf, name);

    if (m < 0)
        fail_msg("no member %s", name);
    return (size_t)m;
}

static size_t region(const struct fx *f, const char *name)
{
    int r = cm_conf_region_index(f->conf, name);

    if (r < 0)
        fail_msg("no region %s", name);
    return (size_t)r;
}

/* 2026-11-21T07:00:00Z: the intents' "now"; they were made an hour before. */
#define NOW_S INT64_C(1795244400)

/*
 * One intent from a token of an intent spec:
 *   NAME       drain member NAME
 *   up:NAME    force-up NAME          down:NAME   force-down NAME
 *   evac:R     evacuate region R (for an hour)
 *   w:NAME=N   weight N for default/web   p:NAME=N   priority N for default/web
 */
static struct cm_intent *spec_intent(const struct fx *f, const char *tok, unsigned nth)
{
    static const char meta[] =
        "\"author\": \"t\", \"reason\": \"r\", \"created_at\": \"2026-11-21T06:00:00Z\"";
    char text[512], name[32];
    char err[CM_INTENT_ERR_MAX];
    struct cm_intent *in = NULL;
    const char *eq = strchr(tok, '=');
    unsigned long v = eq != NULL ? strtoul(eq + 1, NULL, 10) : 0;

    snprintf(name, sizeof(name), "%.*s", (int)(eq != NULL ? (size_t)(eq - tok) : strlen(tok)), tok);
    if (strncmp(name, "up:", 3) == 0)
        snprintf(text, sizeof(text),
                 "{\"id\": \"i%u\", \"kind\": \"force-up\", \"member\": \"%s\", %s}", nth, name + 3,
                 meta);
    else if (strncmp(name, "down:", 5) == 0)
        snprintf(text, sizeof(text),
                 "{\"id\": \"i%u\", \"kind\": \"force-down\", \"member\": \"%s\", %s}", nth,
                 name + 5, meta);
    else if (strncmp(name, "evac:", 5) == 0)
        snprintf(text, sizeof(text),
                 "{\"id\": \"i%u\", \"kind\": \"evacuate\", \"region\": \"%s\", %s, "
                 "\"expires_at\": \"2026-11-21T08:00:00Z\"}",
                 nth, name + 5, meta);
    else if (strncmp(name, "w:", 2) == 0 || strncmp(name, "p:", 2) == 0)
        snprintf(text, sizeof(text),
                 "{\"id\": \"i%u\", \"kind\": \"%s\", \"service\": \"default/web\", "
                 "\"member\": \"%s\", \"%s\": %lu, %s}",
                 nth, name[0] == 'w' ? "weight" : "priority", name + 2,
                 name[0] == 'w' ? "weight" : "priority", v, meta);
    else
        snprintf(text, sizeof(text),
                 "{\"id\": \"i%u\", \"kind\": \"drain\", \"member\": \"%s\", %s}", nth, name, meta);
    if (cm_intent_parse_text(text, strlen(text), f->conf, &in, err, sizeof(err)) != CM_OK)
        fail_msg("intent '%s': %s", tok, err);
    return in;
}

/* The intents of @spec (space-separated tokens, NULL: none) compiled at NOW_S. */
static void fx_intents(struct fx *f, const char *spec)
{
    unsigned nth = 0;

    f->intents = cm_intents_new();
    assert_non_null(f->intents);
    for (const char *p = spec; p != NULL && *p != '\0';) {
        char tok[48], err[CM_INTENT_ERR_MAX];
        size_t len = strcspn(p, " ");
        struct cm_intents *next = NULL;

        assert_true(len > 0 && len < sizeof(tok));
        memcpy(tok, p, len);
        tok[len] = '\0';
        if (cm_intents_put(f->intents, spec_intent(f, tok, nth++), NOW_S, &next, err,
                           sizeof(err)) != CM_OK)
            fail_msg("intent '%s': %s", tok, err);
        cm_intents_free(f->intents);
        f->intents = next;
        p += len + (p[len] == ' ');
    }
    assert_int_equal(cm_intent_view_build(f->intents, f->conf, NOW_S, &f->view), CM_OK);
}

/*
 * Parses @spec (see state_json), merges, applies the intents of @intents (see
 * spec_intent) and ranks for @client under @policy.
 */
static void fx_rank(struct fx *f, const char *spec, const char *intents,
                    const struct cm_conf_policy *policy, const char *client)
{
    char err[CM_STATE_ERR_MAX];
    char *text = state_json(spec);

    fx_clear(f);
    if (cm_state_parse(text, strlen(text), NULL, &f->doc, err, sizeof(err)) != CM_OK)
        fail_msg("state '%s': %s\n%s", spec, err, text);
    free(text);
    if (cm_state_check_conf(f->doc, f->conf, err, sizeof(err)) != CM_OK)
        fail_msg("state '%s': %s", spec, err);
    assert_int_equal(
        cm_merged_build((const struct cm_state *const *)&f->doc, 1, f->conf, &f->merged), CM_OK);
    assert_int_equal(f->merged->service_count, 1);
    fx_intents(f, intents);
    assert_int_equal(dns_rank_ctx_init(&f->ctx, f->conf, f->merged, f->view), CM_OK);
    dns_rank_service_init(&f->rs, &f->ctx, &f->merged->services[0], policy, f->members);
    f->n = dns_rank_order(&f->rs, region(f, client), f->ranked);
}

/* "usa usb" from member indexes. */
static void names_text(const struct fx *f, const uint32_t *idx, size_t n, char *out, size_t cap)
{
    size_t o = 0;

    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%s", i > 0 ? " " : "",
                              f->conf->members[idx[i]].name);
}

static void u32_text(const uint32_t *v, size_t n, char *out, size_t cap)
{
    size_t o = 0;

    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%u", i > 0 ? " " : "", v[i]);
}

/* ---- eligibility and latency order: dns_rank_order() ---- */

struct order_case {
    const char *eps;
    const char *drained;
    const char *client;
    const char *want;    /* members in rank order */
    const char *sources; /* one letter per ranked member: Measured, Static, Unknown */
};

static void run_order_table(struct fx *f, const struct order_case *cases, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const struct order_case *c = &cases[i];
        uint32_t idx[NMEMBERS];
        char got[128], src[NMEMBERS + 1];

        fx_rank(f, c->eps, c->drained, NULL, c->client);
        for (size_t k = 0; k < f->n; k++) {
            idx[k] = f->ranked[k].member;
            src[k] = "MSU"[f->ranked[k].src];
        }
        src[f->n] = '\0';
        names_text(f, idx, f->n, got, sizeof(got));
        if (strcmp(got, c->want) != 0 || strcmp(src, c->sources) != 0)
            fail_msg("order row %zu (%s from %s): got '%s' [%s], want '%s' [%s]", i, c->eps,
                     c->client, got, src, c->want, c->sources);
    }
}

static void test_order(void **state)
{
    static const struct order_case cases[] = {
        /* Static matrix from us-east-1: own region 0, eu 70, ap 150; sa and af
         * unknown (1000), then by region index (sa before af) although cpt
         * sorts before sao by name. */
        {"usb usa eur jpn sao cpt", NULL, US, "usa usb eur jpn sao cpt", "SSSSUU"},
        /* Equal latency goes by name, not by configuration order. */
        {"usb usa", NULL, US, "usa usb", "SS"},
        {"cpt sao", NULL, US, "sao cpt", "UU"},
        /* From eu-west-1: us members both 70, jpn 220. */
        {"usb usa eur jpn", NULL, EU, "eur usa usb jpn", "SSSS"},
        /* From sa-east-1 (no latency row): own region 0, others unknown by region. */
        {"usb usa eur jpn sao cpt", NULL, SA, "sao usa usb eur jpn cpt", "SUUUUU"},
        /* A measurement from the client region's vantage beats the matrix. */
        {"usa,rtt=90 usb,rtt=80 eur,rtt=60", NULL, US, "eur usb usa", "MMM"},
        /* Only the client region's vantage measures: from eu-west-1, static. */
        {"usa,rtt=90 usb,rtt=80 eur,rtt=60", NULL, EU, "eur usa usb", "SSS"},
        /* Measured 0 is a measurement; tied with the own region's static 0, the own
         * region goes first. */
        {"eur,rtt=0 usa", NULL, US, "usa eur", "SM"},
        {"eur,rtt=0 usa,rtt=0.5", NULL, US, "eur usa", "MM"},
        /* Measured 1000 and unknown 1000: the known one first, even from a later name. */
        {"usa,rtt=1000 cpt", NULL, US, "usa cpt", "MU"},
        /* Equal measured RTT: the client's own region first, then by name. */
        {"usb,rtt=7 usa,rtt=7 eur,rtt=7", NULL, US, "usa usb eur", "MMM"},
        {"usb,rtt=7 usa,rtt=7 eur,rtt=7", NULL, AP, "usa usb eur", "SSS"},
        {"usb,rtt=7 jpn,rtt=7 eur,rtt=7", NULL, US, "usb eur jpn", "MMM"},
        /* Ineligible members with an address stay in the order (failing open needs them);
         * members with neither eligibility nor an address, and drained ones, do not. */
        {"usa,down eur", NULL, US, "usa eur", "SS"},
        {"usa,ready=0 eur", NULL, US, "usa eur", "SS"},
        {"usa,noaddr,down eur", NULL, US, "eur", "S"},
        {"usa eur", "usa", US, "eur", "S"},
        /* A hostname-only member is eligible, so it is ranked. */
        {"usa,noaddr,host=lb.example.com eur", NULL, US, "usa eur", "SS"},
        /* Absent members are not ranked. */
        {"", NULL, US, "", ""},
    };
    run_order_table(*state, cases, sizeof(cases) / sizeof(cases[0]));
}

struct elig_case {
    const char *eps;
    const char *drained;
    const char *who;
    bool healthy; /* the majority verdict with ready endpoints */
    bool eligible;
    bool fail_open_ok;
    const char *why_not; /* NULL when eligible */
};

/* Each row: @who's eligibility under the state and intents of the row (the only member). */
static void run_elig_table(struct fx *f, const struct elig_case *cases, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const struct elig_case *c = &cases[i];
        const struct dns_rank_member *rm;

        fx_rank(f, c->eps, c->drained, NULL, US);
        rm = &f->members[member(f, c->who)];
        if (rm->healthy != c->healthy || rm->eligible != c->eligible ||
            rm->fail_open_ok != c->fail_open_ok)
            fail_msg("elig row %zu (%s / %s): healthy %d eligible %d fail_open_ok %d", i, c->eps,
                     c->drained != NULL ? c->drained : "-", rm->healthy, rm->eligible,
                     rm->fail_open_ok);
        if (c->why_not == NULL ? rm->why_not != NULL
                               : rm->why_not == NULL || strcmp(rm->why_not, c->why_not) != 0)
            fail_msg("elig row %zu (%s): why_not '%s', want '%s'", i, c->eps,
                     rm->why_not != NULL ? rm->why_not : "(null)",
                     c->why_not != NULL ? c->why_not : "(null)");
        assert_int_equal(f->rs.eligible_count, c->eligible ? 1 : 0);
        assert_int_equal(f->rs.fail_open_count, c->fail_open_ok ? 1 : 0);
    }
}

static void test_eligibility(void **state)
{
    static const struct elig_case cases[] = {
        {"usa", NULL, "usa", true, true, true, NULL},
        {"usa,down", NULL, "usa", false, false, true, "unhealthy by majority"},
        /* Healthy by the vantage but nothing ready: not a candidate. */
        {"usa,ready=0", NULL, "usa", false, false, true, "0 ready endpoints"},
        {"usa,noaddr", NULL, "usa", true, false, false, "no address or hostname"},
        {"usa,noaddr,host=lb-1.elb.example.com", NULL, "usa", true, true, false, NULL},
        /* A hostname that is not a valid name does not count. */
        {"usa,noaddr,host=a..b", NULL, "usa", true, false, false, "no address or hostname"},
        /* The root name is no load balancer. */
        {"usa,noaddr,host=.", NULL, "usa", true, false, false, "no address or hostname"},
        /* Drained wins over every other reason, and is never answered failing open. */
        {"usa,down", "usa", "usa", false, false, false, "drained"},
        {"usa", "usa", "usa", true, false, false, "drained"},
        {"eur,noaddr", NULL, "usa", false, false, false, "not reported by any vantage"},
        /* The service's placement leaves a member out of every answer, fail-open too. */
        {"usa @place=eur", NULL, "usa", false, false, false, "not in the service's placement"},
        {"usa,down @place=", NULL, "usa", false, false, false, "not in the service's placement"},
        {"usa @place=eur+usa", NULL, "usa", true, true, true, NULL},
        /* allow_without_endpoints: 0 ready endpoints do not rule it out. */
        {"usa,ready=0 @noeps", NULL, "usa", true, true, true, NULL},
        {"usa,ready=0,down @noeps", NULL, "usa", false, false, true, "unhealthy by majority"},
    };
    run_elig_table(*state, cases, sizeof(cases) / sizeof(cases[0]));
}

/* ---- the decision: dns_rank_decide() ---- */

struct decide_case {
    const char *eps;
    const char *drained;
    struct cm_conf_policy policy;
    const char *client;
    const char *scope_region; /* NULL: the global name */
    const char *scope_zone;   /* NULL: the regional name (or global) */
    enum dns_rank_rule rule;
    const char *chosen;  /* members in answer order */
    const char *weights; /* NULL: not checked */
    uint32_t ttl;
    enum dns_rank_ttl_why ttl_why;
};

#define POLICY(slack)                                                                              \
    {                                                                                              \
        .all_down = CM_ALL_DOWN_FAIL_OPEN, .max_answers = 8, .latency_slack_ms = (slack)           \
    }
#define CLOSED(slack)                                                                              \
    {                                                                                              \
        .all_down = CM_ALL_DOWN_FAIL_CLOSED, .max_answers = 8, .latency_slack_ms = (slack)         \
    }
#define SORRY(target)                                                                              \
    {                                                                                              \
        .all_down = CM_ALL_DOWN_SORRY, .sorry_target = (target), .max_answers = 8,                 \
        .latency_slack_ms = 5                                                                      \
    }

static void scope_of(const struct fx *f, const struct decide_case *c, struct dns_rank_scope *s)
{
    memset(s, 0, sizeof(*s));
    s->level = DNS_RANK_GLOBAL;
    if (c->scope_region == NULL)
        return;
    s->level = DNS_RANK_REGIONAL;
    s->region = region(f, c->scope_region);
    if (c->scope_zone == NULL)
        return;
    s->level = DNS_RANK_ZONAL;
    s->zone = -1;
    for (size_t z = 0; z < f->conf->regions[s->region].zone_count; z++) {
        if (strcmp(f->conf->regions[s->region].zones[z], c->scope_zone) == 0)
            s->zone = (int)z;
    }
    assert_true(s->zone >= 0);
}

static void run_decide_table(struct fx *f, const char *table, const struct decide_case *cases,
                             size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const struct decide_case *c = &cases[i];
        struct dns_rank_scope scope;
        struct dns_rank_decision d;
        char chosen[128], weights[128];

        fx_rank(f, c->eps, c->drained, &c->policy, c->client);
        scope_of(f, c, &scope);
        dns_rank_decide(&f->rs, &scope, f->ranked, f->n, &d);
        names_text(f, d.chosen, d.chosen_count, chosen, sizeof(chosen));
        u32_text(d.weight, d.chosen_count, weights, sizeof(weights));
        if (d.rule != c->rule || strcmp(chosen, c->chosen) != 0 || d.ttl != c->ttl ||
            d.ttl_why != c->ttl_why || (c->weights != NULL && strcmp(weights, c->weights) != 0))
            fail_msg("%s row %zu (%s from %s): got rule '%s' chosen '%s' weights '%s' ttl %u/%d;"
                     " want '%s' '%s' '%s' %u/%d",
                     table, i, c->eps, c->client, dns_rank_rule_text(d.rule), chosen, weights,
                     d.ttl, (int)d.ttl_why, dns_rank_rule_text(c->rule), c->chosen,
                     c->weights != NULL ? c->weights : "-", c->ttl, (int)c->ttl_why);
    }
}

#define RUN(f, cases) run_decide_table((f), #cases, (cases), sizeof(cases) / sizeof((cases)[0]))

/* Which members share: latency_slack_ms measured from the best, boundary included. */
static void test_slack(void **state)
{
    static const struct decide_case slack[] = {
        /* The difference equals the slack: shared (the rule is "more than slack
         * behind the best is out"). */
        {"usa,rtt=10 eur,rtt=15", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_SHARED, "usa eur", NULL,
         TTL, DNS_RANK_TTL_NORMAL},
        /* Just past the boundary: the best alone. */
        {"usa,rtt=10 eur,rtt=15.001", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "usa", NULL,
         TTL, DNS_RANK_TTL_NORMAL},
        {"usa,rtt=10 eur,rtt=14.999", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_SHARED, "usa eur",
         NULL, TTL, DNS_RANK_TTL_NORMAL},
        /* Slack 0: only exact ties share (the own region's member first). */
        {"usa,rtt=10 eur,rtt=10", NULL, POLICY(0), US, NULL, NULL, DNS_RANK_SHARED, "usa eur", NULL,
         TTL, DNS_RANK_TTL_NORMAL},
        {"usa,rtt=10 eur,rtt=10.001", NULL, POLICY(0), US, NULL, NULL, DNS_RANK_BEST, "usa", NULL,
         TTL, DNS_RANK_TTL_NORMAL},
        /* Static latencies: from eu-west-1, usa and usb are both 70 behind eur (0). */
        {"usa usb eur", NULL, POLICY(69), EU, NULL, NULL, DNS_RANK_BEST, "eur", NULL, TTL,
         DNS_RANK_TTL_NORMAL},
        {"usa usb eur", NULL, POLICY(70), EU, NULL, NULL, DNS_RANK_SHARED, "eur usa usb", NULL, TTL,
         DNS_RANK_TTL_NORMAL},
        /* The window is anchored at the best, not chained: jpn is 4 behind eur
         * but 8 behind usa. */
        {"usa,rtt=10 eur,rtt=14 jpn,rtt=18", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_SHARED,
         "usa eur", NULL, TTL, DNS_RANK_TTL_NORMAL},
        /* The best is the best candidate: an ineligible faster member neither
         * shares nor anchors the window. */
        {"usb,rtt=1,down usa,rtt=10 eur,rtt=15 jpn,rtt=16", NULL, POLICY(5), US, NULL, NULL,
         DNS_RANK_SHARED, "usa eur", NULL, TTL, DNS_RANK_TTL_NORMAL},
        /* An ineligible member inside the window does not end it. */
        {"usa,rtt=10 usb,rtt=11,ready=0 eur,rtt=12", NULL, POLICY(5), US, NULL, NULL,
         DNS_RANK_SHARED, "usa eur", NULL, TTL, DNS_RANK_TTL_NORMAL},
        /* Four within the slack: all share, in rank order. */
        {"usb,rtt=3 usa,rtt=1 eur,rtt=2 jpn,rtt=4 sao,rtt=9", NULL, POLICY(5), US, NULL, NULL,
         DNS_RANK_SHARED, "usa eur usb jpn", NULL, TTL, DNS_RANK_TTL_NORMAL},
    };
    RUN(*state, slack);
}

/* Ties: equal latency is broken by member name, whatever the configuration order. */
static void test_ties(void **state)
{
    static const struct decide_case ties[] = {
        /* Static tie at 0 from us-east-1; usb comes first in the configuration. */
        {"usb usa", NULL, POLICY(0), US, NULL, NULL, DNS_RANK_SHARED, "usa usb", "1 1", TTL,
         DNS_RANK_TTL_NORMAL},
        /* Measured tie with the names reversed against configuration order. */
        {"cpt,rtt=20 sao,rtt=20", NULL, POLICY(0), US, NULL, NULL, DNS_RANK_SHARED, "cpt sao",
         "1 1", TTL, DNS_RANK_TTL_NORMAL},
        /* Unknown latency (both 1000): region index first, so sao before cpt. */
        {"cpt sao", NULL, POLICY(0), US, NULL, NULL, DNS_RANK_SHARED, "sao cpt", "1 1", TTL,
         DNS_RANK_TTL_NORMAL},
        /* The fail-open list uses the same order. */
        {"usb,down usa,down", NULL, POLICY(0), US, NULL, NULL, DNS_RANK_FAIL_OPEN, "usa usb", NULL,
         MIN_TTL, DNS_RANK_TTL_FAIL_OPEN},
    };
    RUN(*state, ties);
}

/* Shared members are weighted by their ready endpoints; 0 counts as 1. */
static void test_weights(void **state)
{
    static const struct decide_case weights[] = {
        {"usa,rtt=1,ready=3 eur,rtt=2,ready=1", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_SHARED,
         "usa eur", "3 1", TTL, DNS_RANK_TTL_NORMAL},
        {"usa,rtt=2,ready=1 eur,rtt=1,ready=7", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_SHARED,
         "eur usa", "7 1", TTL, DNS_RANK_TTL_NORMAL},
        /* A hostname-only member shares too. */
        {"usa,rtt=1,ready=2 eur,rtt=1,noaddr,host=lb.example.com,ready=5", NULL, POLICY(5), US,
         NULL, NULL, DNS_RANK_SHARED, "usa eur", "2 5", TTL, DNS_RANK_TTL_NORMAL},
    };
    RUN(*state, weights);
}

/* One candidate: BEST with addresses, HOSTNAME without. */
static void test_best_and_hostname(void **state)
{
    static const struct decide_case best[] = {
        {"usa eur jpn", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "usa", "1", TTL,
         DNS_RANK_TTL_NORMAL},
        {"usa eur jpn", NULL, POLICY(5), AP, NULL, NULL, DNS_RANK_BEST, "jpn", "1", TTL,
         DNS_RANK_TTL_NORMAL},
        /* The next lowest when the best is down, has nothing ready, or is drained. */
        {"usa,down eur jpn", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "eur", NULL, TTL,
         DNS_RANK_TTL_NORMAL},
        {"usa,ready=0 eur jpn", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "eur", NULL, TTL,
         DNS_RANK_TTL_NORMAL},
        {"usa eur jpn", "usa", POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "eur", NULL, TTL,
         DNS_RANK_TTL_NORMAL},
        {"usa,noaddr,host=lb-1.elb.example.com eur", NULL, POLICY(5), US, NULL, NULL,
         DNS_RANK_HOSTNAME, "usa", NULL, TTL, DNS_RANK_TTL_NORMAL},
        /* Addresses win over the hostname when the member has both. */
        {"usa,host=lb-1.elb.example.com eur", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "usa",
         NULL, TTL, DNS_RANK_TTL_NORMAL},
    };
    RUN(*state, best);
}

/* A pending member anywhere shortens the TTL of every answer of the service. */
static void test_ttl(void **state)
{
    static const struct decide_case ttl[] = {
        {"usa eur", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "usa", NULL, TTL,
         DNS_RANK_TTL_NORMAL},
        {"usa,pending eur", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "usa", NULL, MIN_TTL,
         DNS_RANK_TTL_PENDING},
        /* The first member in configuration order (index 0) pending. */
        {"usb,pending eur", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "usb", NULL, MIN_TTL,
         DNS_RANK_TTL_PENDING},
        /* Pending on a member that is not chosen, even a down one. */
        {"usa eur,down,pending", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "usa", NULL,
         MIN_TTL, DNS_RANK_TTL_PENDING},
        {"usa jpn,pending", NULL, POLICY(5), US, EU, NULL, DNS_RANK_CNAME_UP_REGION, "", NULL,
         MIN_TTL, DNS_RANK_TTL_PENDING},
        /* All down wins over pending. */
        {"usa,down,pending", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_FAIL_OPEN, "usa", NULL,
         MIN_TTL, DNS_RANK_TTL_FAIL_OPEN},
        /* The service's own TTL (a ServiceDNSRecord's recordTTL), longer or shorter. */
        {"usa eur @ttl=300", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "usa", NULL, 300,
         DNS_RANK_TTL_NORMAL},
        {"usa eur @ttl=2", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "usa", NULL, 2,
         DNS_RANK_TTL_NORMAL},
        /* Pending shortens it to min_ttl_s, and never lengthens it. */
        {"usa,pending eur @ttl=300", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "usa", NULL,
         MIN_TTL, DNS_RANK_TTL_PENDING},
        {"usa,pending eur @ttl=2", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "usa", NULL, 2,
         DNS_RANK_TTL_PENDING},
        /* Placement: the best member by latency is not placed. */
        {"usa eur @place=eur", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "eur", NULL, TTL,
         DNS_RANK_TTL_NORMAL},
        /* Placed nowhere healthy: fail-open answers only placed members. */
        {"usa eur,down @place=eur", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_FAIL_OPEN, "eur",
         NULL, MIN_TTL, DNS_RANK_TTL_FAIL_OPEN},
    };
    RUN(*state, ttl);
}

/* Nothing eligible anywhere: the all_down policy of the service. */
static void test_all_down(void **state)
{
    static const struct decide_case all_down[] = {
        /* fail-open: every member with an address, ranked for the client, min TTL;
         * down, 0-ready and unhealthy alike, but not drained or address-less ones. */
        {"usa,down eur,down jpn,ready=0", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_FAIL_OPEN,
         "usa eur jpn", NULL, MIN_TTL, DNS_RANK_TTL_FAIL_OPEN},
        {"usa,down eur,down jpn,ready=0", NULL, POLICY(5), AP, NULL, NULL, DNS_RANK_FAIL_OPEN,
         "jpn usa eur", NULL, MIN_TTL, DNS_RANK_TTL_FAIL_OPEN},
        {"usa,down eur,down jpn,down,noaddr,host=x.example.com", "eur", POLICY(5), US, NULL, NULL,
         DNS_RANK_FAIL_OPEN, "usa", NULL, MIN_TTL, DNS_RANK_TTL_FAIL_OPEN},
        /* fail-open with nothing to answer: still the fail-open rule, empty. */
        {"", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_FAIL_OPEN, "", NULL, MIN_TTL,
         DNS_RANK_TTL_FAIL_OPEN},
        {"usa,down eur,down", NULL, CLOSED(5), US, NULL, NULL, DNS_RANK_FAIL_CLOSED, "", NULL,
         MIN_TTL, DNS_RANK_TTL_ALL_DOWN},
        {"usa,down eur,down", NULL, SORRY(sorry_name), US, NULL, NULL, DNS_RANK_SORRY, "", NULL,
         MIN_TTL, DNS_RANK_TTL_ALL_DOWN},
        /* A sorry policy without a target fails open. */
        {"usa,down eur,down", NULL, SORRY(NULL), US, NULL, NULL, DNS_RANK_FAIL_OPEN, "usa eur",
         NULL, MIN_TTL, DNS_RANK_TTL_FAIL_OPEN},
        /* Not all down: one candidate left, however far, is answered normally. */
        {"usa,down eur,down jpn", NULL, CLOSED(5), US, NULL, NULL, DNS_RANK_BEST, "jpn", NULL, TTL,
         DNS_RANK_TTL_NORMAL},
        {"usa,down eur,down cpt,noaddr,host=lb.example.com", NULL, SORRY(sorry_name), US, NULL,
         NULL, DNS_RANK_HOSTNAME, "cpt", NULL, TTL, DNS_RANK_TTL_NORMAL},
        /* The only healthy member drained: all down. */
        {"usa,down eur", "eur", CLOSED(5), US, NULL, NULL, DNS_RANK_FAIL_CLOSED, "", NULL, MIN_TTL,
         DNS_RANK_TTL_ALL_DOWN},
    };
    RUN(*state, all_down);
}

/* Regional and zonal names: members of the scope only; empty scope: CNAME up. */
static void test_levels(void **state)
{
    static const struct decide_case levels[] = {
        /* From eu-west-1 the us-east-1 name still answers us members only (a
         * static tie at 70, by name). */
        {"usa usb eur", NULL, POLICY(5), EU, US, NULL, DNS_RANK_SHARED, "usa usb", NULL, TTL,
         DNS_RANK_TTL_NORMAL},
        {"usa usb eur", NULL, POLICY(5), US, EU, NULL, DNS_RANK_BEST, "eur", NULL, TTL,
         DNS_RANK_TTL_NORMAL},
        /* The better member out of scope is skipped (usa at 1 does not anchor
         * the window of the eu-west-1 name). */
        {"usa,rtt=1 eur,rtt=100", NULL, POLICY(5), US, EU, NULL, DNS_RANK_BEST, "eur", NULL, TTL,
         DNS_RANK_TTL_NORMAL},
        {"usa,rtt=1 usb,rtt=50 eur,rtt=52", NULL, POLICY(5), US, US, "us-east-1b", DNS_RANK_BEST,
         "usb", NULL, TTL, DNS_RANK_TTL_NORMAL},
        {"usa usb", NULL, POLICY(5), AP, US, "us-east-1a", DNS_RANK_BEST, "usa", NULL, TTL,
         DNS_RANK_TTL_NORMAL},
        /* Empty region while others are up: CNAME to the global name, normal TTL. */
        {"usa eur,down", NULL, POLICY(5), US, EU, NULL, DNS_RANK_CNAME_UP_REGION, "", NULL, TTL,
         DNS_RANK_TTL_NORMAL},
        {"usa", NULL, POLICY(5), US, AP, NULL, DNS_RANK_CNAME_UP_REGION, "", NULL, TTL,
         DNS_RANK_TTL_NORMAL},
        /* Exactly one candidate elsewhere is enough for the normal TTL. */
        {"jpn eur,down", NULL, CLOSED(5), US, EU, NULL, DNS_RANK_CNAME_UP_REGION, "", NULL, TTL,
         DNS_RANK_TTL_NORMAL},
        {"usa,down usb", NULL, POLICY(5), US, US, "us-east-1a", DNS_RANK_CNAME_UP_ZONE, "", NULL,
         TTL, DNS_RANK_TTL_NORMAL},
        /* jpn has no zone: never in a zonal scope. */
        {"jpn", NULL, POLICY(5), AP, AP, "ap-northeast-1a", DNS_RANK_CNAME_UP_ZONE, "", NULL, TTL,
         DNS_RANK_TTL_NORMAL},
        /* Everything down: up to a name that is itself all down, at min TTL, with
         * the reason of that global answer. Never failing open at this level. */
        {"usa,down eur,down", NULL, POLICY(5), US, EU, NULL, DNS_RANK_CNAME_UP_REGION, "", NULL,
         MIN_TTL, DNS_RANK_TTL_FAIL_OPEN},
        {"usa,down eur,down", NULL, CLOSED(5), US, EU, NULL, DNS_RANK_CNAME_UP_REGION, "", NULL,
         MIN_TTL, DNS_RANK_TTL_ALL_DOWN},
        {"usa,down eur,down", NULL, SORRY(sorry_name), US, US, "us-east-1a", DNS_RANK_CNAME_UP_ZONE,
         "", NULL, MIN_TTL, DNS_RANK_TTL_ALL_DOWN},
    };
    RUN(*state, levels);
}

/* ---- the operator's intents and the traffic policy ---- */

/* Eligibility under intents: force-up, force-down, evacuate, and what wins. */
static void test_intent_eligibility(void **state)
{
    static const struct elig_case cases[] = {
        /* Forced up: healthy by the operator's word, even with nothing ready. */
        {"usa,down", "up:usa", "usa", false, true, true, NULL},
        {"usa,ready=0", "up:usa", "usa", false, true, true, NULL},
        /* ... but an answer still needs an address or a hostname. */
        {"usa,noaddr", "up:usa", "usa", true, false, false, "no address or hostname"},
        /* Forced down: out of the answers, but answered when failing open. */
        {"usa", "down:usa", "usa", true, false, true, "forced down"},
        /* Down wins over up; a drain wins over both and over evacuation. */
        {"usa", "up:usa down:usa", "usa", true, false, true, "forced down"},
        {"usa", "down:usa usa", "usa", true, false, false, "drained"},
        /* Evacuating the region takes it out of everything, failing open too. */
        {"usa", "evac:us-east-1", "usa", true, false, false, "region evacuated"},
        {"usa", "up:usa evac:us-east-1", "usa", true, false, false, "region evacuated"},
        {"usa", "evac:us-east-1 usa", "usa", true, false, false, "drained"},
        /* Another region's evacuation does not touch it. */
        {"usa", "evac:eu-west-1", "usa", true, true, true, NULL},
    };

    run_elig_table(*state, cases, sizeof(cases) / sizeof(cases[0]));
}

/* Decisions under intents: evacuation moves every client away from a region. */
static void test_intent_decisions(void **state)
{
    static const struct decide_case cases[] = {
        /* us clients go to eur while us-east-1 is evacuated... */
        {"usa usb eur jpn", "evac:us-east-1", POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "eur", NULL,
         TTL, DNS_RANK_TTL_NORMAL},
        /* ... and its regional name goes up to the global one. */
        {"usa usb eur jpn", "evac:us-east-1", POLICY(5), US, US, NULL, DNS_RANK_CNAME_UP_REGION, "",
         NULL, TTL, DNS_RANK_TTL_NORMAL},
        /* Forced down everywhere: fail-open still answers the forced-down member. */
        {"usa", "down:usa", POLICY(5), US, NULL, NULL, DNS_RANK_FAIL_OPEN, "usa", NULL, MIN_TTL,
         DNS_RANK_TTL_FAIL_OPEN},
        /* Drained everywhere: nothing to fail open to. */
        {"usa", "usa", POLICY(5), US, NULL, NULL, DNS_RANK_FAIL_OPEN, "", NULL, MIN_TTL,
         DNS_RANK_TTL_FAIL_OPEN},
        /* Forced up wins over the vantages' verdict: answered while they say down. */
        {"usa,down eur", "up:usa", POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "usa", NULL, TTL,
         DNS_RANK_TTL_NORMAL},
    };
    RUN(*state, cases);
}

/* Priority groups: the lower group only when the higher has no candidate. */
static void test_priority_groups(void **state)
{
    static const struct decide_case cases[] = {
        /* eur in group 0 beats the nearer usa in group 1 (an annotation). */
        {"usa,rtt=1,p=1 eur,rtt=50", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "eur", NULL,
         TTL, DNS_RANK_TTL_NORMAL},
        /* The higher group down: the lower one is answered. */
        {"usa,rtt=1,p=1 eur,rtt=50,down", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "usa",
         NULL, TTL, DNS_RANK_TTL_NORMAL},
        /* Drained counts as not there: the group falls through. */
        {"usa,rtt=1,p=1 eur,rtt=50", "eur", POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "usa", NULL,
         TTL, DNS_RANK_TTL_NORMAL},
        /* Latency ranks within a group, the slack shares within it only. */
        {"usa,rtt=1,p=2 usb,rtt=2,p=2 eur,rtt=40,p=3 jpn,rtt=80,p=3", NULL, POLICY(5), US, NULL,
         NULL, DNS_RANK_SHARED, "usa usb", NULL, TTL, DNS_RANK_TTL_NORMAL},
        {"usa,rtt=1,p=2,down usb,rtt=2,p=2,down eur,rtt=40,p=3 jpn,rtt=42,p=3", NULL, POLICY(5), US,
         NULL, NULL, DNS_RANK_SHARED, "eur jpn", NULL, TTL, DNS_RANK_TTL_NORMAL},
        /* An intent sets the group over the annotation. */
        {"usa,rtt=1,p=1 eur,rtt=50", "p:usa=0", POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "usa",
         NULL, TTL, DNS_RANK_TTL_NORMAL},
        /* Regional names rank their own members by group too. */
        {"usa,p=1 usb", NULL, POLICY(5), EU, US, NULL, DNS_RANK_BEST, "usb", NULL, TTL,
         DNS_RANK_TTL_NORMAL},
        /* Every group down: the all-down policy, as before. */
        {"usa,p=1,down eur,down", NULL, CLOSED(5), US, NULL, NULL, DNS_RANK_FAIL_CLOSED, "", NULL,
         MIN_TTL, DNS_RANK_TTL_ALL_DOWN},
    };
    struct fx *f = *state;
    struct dns_rank_decision d;
    struct dns_rank_scope global = {.level = DNS_RANK_GLOBAL};

    RUN(f, cases);
    fx_rank(f, "usa,rtt=1,p=7 eur,rtt=50,p=4", NULL, &cases[0].policy, US);
    dns_rank_decide(&f->rs, &global, f->ranked, f->n, &d);
    assert_int_equal(d.group, 4);
    assert_false(d.standby);
}

/* Weight 0 is standby: answered only when no other member is a candidate. */
static void test_standby(void **state)
{
    static const struct decide_case cases[] = {
        /* A standby member is not answered while another is healthy, however near. */
        {"usa,rtt=1,w=0 eur,rtt=60", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "eur", NULL,
         TTL, DNS_RANK_TTL_NORMAL},
        /* ... not even in a better priority group. */
        {"usa,rtt=1,w=0 eur,rtt=60,p=5", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "eur",
         NULL, TTL, DNS_RANK_TTL_NORMAL},
        /* Nothing else healthy: the standby member answers (not a fail-open). */
        {"usa,rtt=1,w=0 eur,rtt=60,down", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "usa",
         NULL, TTL, DNS_RANK_TTL_NORMAL},
        /* Standbys share among themselves by ready endpoints. */
        {"usa,rtt=1,w=0,ready=3 usb,rtt=2,w=0,ready=1 eur,down", NULL, POLICY(5), US, NULL, NULL,
         DNS_RANK_SHARED, "usa usb", "3 1", TTL, DNS_RANK_TTL_NORMAL},
        /* A weight intent of 0 puts a member on standby. */
        {"usa,rtt=1 eur,rtt=60", "w:usa=0", POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "eur", NULL,
         TTL, DNS_RANK_TTL_NORMAL},
        /* ... and one of 2 takes it back over the annotation. */
        {"usa,rtt=1,w=0 eur,rtt=60", "w:usa=2", POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "usa",
         NULL, TTL, DNS_RANK_TTL_NORMAL},
    };
    struct fx *f = *state;
    struct dns_rank_decision d;
    struct dns_rank_scope global = {.level = DNS_RANK_GLOBAL};

    RUN(f, cases);
    fx_rank(f, "usa,rtt=1,w=0 eur,down", NULL, &cases[0].policy, US);
    dns_rank_decide(&f->rs, &global, f->ranked, f->n, &d);
    assert_true(d.standby);
}

/* Weights share the answers of equally near members: weight x ready endpoints. */
static void test_policy_weights(void **state)
{
    static const struct decide_case cases[] = {
        {"usa,rtt=1,ready=2,w=3 eur,rtt=2,ready=2", NULL, POLICY(5), US, NULL, NULL,
         DNS_RANK_SHARED, "usa eur", "6 2", TTL, DNS_RANK_TTL_NORMAL},
        {"usa,rtt=1,ready=2 eur,rtt=2,ready=2", "w:eur=5", POLICY(5), US, NULL, NULL,
         DNS_RANK_SHARED, "usa eur", "2 10", TTL, DNS_RANK_TTL_NORMAL},
        /* The largest weight with a large ready count saturates instead of wrapping. */
        {"usa,rtt=1,ready=4294967295,w=1000 eur,rtt=2", NULL, POLICY(5), US, NULL, NULL,
         DNS_RANK_SHARED, "usa eur", "4294967295 1", TTL, DNS_RANK_TTL_NORMAL},
        /* A weight does not make a far member near. */
        {"usa,rtt=1 eur,rtt=60,w=1000", NULL, POLICY(5), US, NULL, NULL, DNS_RANK_BEST, "usa", NULL,
         TTL, DNS_RANK_TTL_NORMAL},
    };
    RUN(*state, cases);
}

#define LOCAL(slack)                                                                               \
    {                                                                                              \
        .all_down = CM_ALL_DOWN_FAIL_OPEN, .max_answers = 8, .latency_slack_ms = (slack),          \
        .prefer_own_region = true                                                                  \
    }

/* Equally near members: the client's own region wins (prefer_own_region). */
static void test_own_region(void **state)
{
    static const struct decide_case cases[] = {
        /* Four members at the same RTT from us-east-1: only us-east-1's share. */
        {"usa,rtt=5 usb,rtt=5 eur,rtt=5 jpn,rtt=5", NULL, LOCAL(5), US, NULL, NULL, DNS_RANK_SHARED,
         "usa usb", NULL, TTL, DNS_RANK_TTL_NORMAL},
        {"usa,rtt=5 eur,rtt=5 jpn,rtt=5", NULL, LOCAL(5), US, NULL, NULL, DNS_RANK_BEST, "usa",
         NULL, TTL, DNS_RANK_TTL_NORMAL},
        /* Within the slack counts as equal: the own region wins although 3 ms behind. */
        {"usa,rtt=8 eur,rtt=5", NULL, LOCAL(5), US, NULL, NULL, DNS_RANK_BEST, "usa", NULL, TTL,
         DNS_RANK_TTL_NORMAL},
        /* Past the slack it does not. */
        {"usa,rtt=11 eur,rtt=5", NULL, LOCAL(5), US, NULL, NULL, DNS_RANK_BEST, "eur", NULL, TTL,
         DNS_RANK_TTL_NORMAL},
        /* No member of the client's region near: the others share as before
         * (from ap-northeast-1, static: us 150, eu 220). */
        {"usa,rtt=5 usb,rtt=5 eur,rtt=5", NULL, LOCAL(70), AP, NULL, NULL, DNS_RANK_SHARED,
         "usa usb eur", NULL, TTL, DNS_RANK_TTL_NORMAL},
        /* Off: everyone near shares. */
        {"usa,rtt=5 usb,rtt=5 eur,rtt=5 jpn,rtt=5", NULL, POLICY(5), US, NULL, NULL,
         DNS_RANK_SHARED, "usa usb eur jpn", NULL, TTL, DNS_RANK_TTL_NORMAL},
        /* Standby and groups come first: an own-region standby does not win. */
        {"usa,rtt=5,w=0 eur,rtt=5", NULL, LOCAL(5), US, NULL, NULL, DNS_RANK_BEST, "eur", NULL, TTL,
         DNS_RANK_TTL_NORMAL},
    };
    struct fx *f = *state;
    struct dns_rank_decision d;
    struct dns_rank_scope global = {.level = DNS_RANK_GLOBAL};

    RUN(f, cases);
    fx_rank(f, "usa,rtt=5 eur,rtt=5", NULL, &cases[0].policy, US);
    dns_rank_decide(&f->rs, &global, f->ranked, f->n, &d);
    assert_true(d.own_region_only);
    fx_rank(f, "usa,rtt=5 usb,rtt=5", NULL, &cases[0].policy, US);
    dns_rank_decide(&f->rs, &global, f->ranked, f->n, &d);
    assert_false(d.own_region_only);
}

/* Where a weight and a priority come from: intent > configuration > annotation > default. */
static void test_policy_sources(void **state)
{
    struct fx *f = *state;
    const struct dns_rank_member *usa, *eur, *jpn;

    cm_conf_unref(f->conf);
    f->conf = load_conf("{'weights': {'usa': 4, 'eur': 0}, 'priority': {'usa': 2}}");
    fx_rank(f, "usa,w=9,p=9 eur,w=9 jpn,w=7,p=3 usb", "w:usa=6", &f->conf->services[0].policy, US);
    usa = &f->members[member(f, "usa")];
    eur = &f->members[member(f, "eur")];
    jpn = &f->members[member(f, "jpn")];
    assert_int_equal(usa->weight, 6);
    assert_int_equal(usa->weight_src, DNS_RANK_POLICY_INTENT);
    assert_string_equal(usa->weight_by->id, "i0");
    assert_int_equal(usa->priority, 2);
    assert_int_equal(usa->priority_src, DNS_RANK_POLICY_CONFIG);
    assert_int_equal(eur->weight, 0);
    assert_int_equal(eur->weight_src, DNS_RANK_POLICY_CONFIG);
    assert_int_equal(jpn->weight, 7);
    assert_int_equal(jpn->weight_src, DNS_RANK_POLICY_ANNOTATION);
    assert_int_equal(jpn->priority, 3);
    assert_int_equal(jpn->priority_src, DNS_RANK_POLICY_ANNOTATION);
    assert_int_equal(f->members[member(f, "usb")].weight, 1);
    assert_int_equal(f->members[member(f, "usb")].weight_src, DNS_RANK_POLICY_DEFAULT);
    assert_int_equal(f->members[member(f, "usb")].priority, 0);
    /* The configuration's prefer_own_region defaults to true. */
    assert_true(f->conf->services[0].policy.prefer_own_region);
}

/* ---- max_answers: applied by dns_fed when it turns a decision into rrsets ---- */

struct max_case {
    const char *policy;
    const char *eps;
    uint16_t want; /* A records in the global answer for a us-east-1 client */
};

static void test_max_answers(void **state)
{
    static const struct max_case cases[] = {
        {"{'max_answers': 1}", "usa,addrs=3", 1},
        {"{'max_answers': 2}", "usa,addrs=3", 2},
        {"{'max_answers': 3}", "usa,addrs=3", 3},
        {"{'max_answers': 4}", "usa,addrs=3", 3},
        /* The default is 8. */
        {"{}", "usa,addrs=9", 8},
        {"{}", "usa,addrs=8", 8},
        {"{'max_answers': 64}", "usa,addrs=70", 64},
        /* Failing open, the cap applies to the combined answer. */
        {"{'max_answers': 5}", "usa,addrs=2,down eur,addrs=2,down jpn,addrs=2,down", 5},
        {"{'max_answers': 6}", "usa,addrs=2,down eur,addrs=2,down jpn,addrs=2,down", 6},
        {"{'max_answers': 7}", "usa,addrs=2,down eur,addrs=2,down jpn,addrs=2,down", 6},
    };
    struct fx *f = *state;
    uint8_t wire[DNS_NAME_MAX];
    size_t wlen = dns_name_from_text("web.default.myfed.svc.fed.example.test", true, wire);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct max_case *c = &cases[i];
        struct dns_fed *fed = NULL;
        struct dns_fed_answer a;
        char err[256];

        cm_conf_unref(f->conf);
        f->conf = load_conf(c->policy);
        fx_rank(f, c->eps, NULL, NULL, US);
        if (dns_fed_build(f->conf, f->merged, NULL, &fed, err, sizeof(err)) != CM_OK)
            fail_msg("build: %s", err);
        assert_int_equal(
            dns_fed_lookup(fed, wire, wlen, DNS_TYPE_A, (unsigned)region(f, US), 0, &a),
            DNS_FED_NAME);
        assert_non_null(a.rrset);
        if (a.rrset->count != c->want)
            fail_msg("max row %zu (%s, %s): %u records, want %u", i, c->policy, c->eps,
                     a.rrset->count, c->want);
        dns_fed_free(fed);
    }
}

/* ---- dns_rank_client_independent() ---- */

struct indep_case {
    const char *eps;
    struct cm_conf_policy policy;
    const char *scope_region;
    const char *scope_zone;
    bool independent;
};

static void test_client_independent(void **state)
{
    static const struct indep_case cases[] = {
        {"usa eur", POLICY(5), NULL, NULL, false},
        {"usa eur,down", POLICY(5), NULL, NULL, true},
        /* Two in the region: the order (by client) decides. */
        {"usa usb eur", POLICY(5), US, NULL, false},
        {"usa usb eur", POLICY(5), EU, NULL, true},
        {"usa usb eur", POLICY(5), US, "us-east-1a", true},
        /* Empty scope: a CNAME up, the same for everyone. */
        {"usa usb", POLICY(5), EU, NULL, true},
        /* All down: failing open with two addresses ranks per client ... */
        {"usa,down eur,down", POLICY(5), NULL, NULL, false},
        {"usa,down eur,down,noaddr", POLICY(5), NULL, NULL, true},
        /* ... the other policies do not. */
        {"usa,down eur,down", CLOSED(5), NULL, NULL, true},
        {"usa,down eur,down", SORRY(sorry_name), NULL, NULL, true},
        {"usa,down eur,down", SORRY(NULL), NULL, NULL, false},
    };
    struct fx *f = *state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct indep_case *c = &cases[i];
        struct decide_case dc = {.scope_region = c->scope_region, .scope_zone = c->scope_zone};
        struct dns_rank_scope scope;

        fx_rank(f, c->eps, NULL, &c->policy, US);
        scope_of(f, &dc, &scope);
        if (dns_rank_client_independent(&f->rs, &scope) != c->independent)
            fail_msg("indep row %zu (%s): want %d", i, c->eps, c->independent);
    }
}

/* Every client region gets the same decision when independence is claimed. */
static void test_client_independent_agrees(void **state)
{
    static const char *const specs[] = {"usa eur,down", "usa,down eur,down,noaddr", "usa usb eur",
                                        "usa,down eur,down"};
    static const char *const regions[] = {US, EU, AP, SA, AF};
    struct fx *f = *state;

    for (size_t s = 0; s < sizeof(specs) / sizeof(specs[0]); s++) {
        for (int level = 0; level < 2; level++) {
            struct decide_case dc = {.scope_region = level == 0 ? NULL : US};
            struct dns_rank_decision first, d;
            struct dns_rank_scope scope;
            bool indep;

            for (size_t r = 0; r < sizeof(regions) / sizeof(regions[0]); r++) {
                fx_rank(f, specs[s], NULL, NULL, regions[r]);
                scope_of(f, &dc, &scope);
                indep = dns_rank_client_independent(&f->rs, &scope);
                dns_rank_decide(&f->rs, &scope, f->ranked, f->n, r == 0 ? &first : &d);
                if (r > 0 && indep &&
                    (d.rule != first.rule || d.chosen_count != first.chosen_count ||
                     memcmp(d.chosen, first.chosen, d.chosen_count * sizeof(d.chosen[0])) != 0))
                    fail_msg("'%s' level %d: independent but differs from %s", specs[s], level,
                             regions[r]);
            }
        }
    }
}

/* ---- dns_rank_slots(): the client hash -> member map of a shared answer ---- */

struct slots_case {
    uint32_t weight[4];
    size_t n;
    uint32_t want[4]; /* slots per variant */
};

static void test_slots(void **state)
{
    static const struct slots_case cases[] = {
        {{3, 1}, 2, {48, 16}},
        {{1, 1}, 2, {32, 32}},
        /* 64/3 = 21 r 1 each: equal remainders go to the better ranked. */
        {{1, 1, 1}, 3, {22, 21, 21}},
        /* 21.33 and 42.67: the larger remainder gets the spare slot. */
        {{1, 2}, 2, {21, 43}},
        {{2, 1}, 2, {43, 21}},
        /* A weight of 0 counts as 1. */
        {{0, 1}, 2, {32, 32}},
        {{5}, 1, {64}},
        /* Two spare slots over three equal remainders: the first two. */
        {{1, 1, 1, 3}, 4, {11, 11, 10, 32}},
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct slots_case *c = &cases[i];
        uint8_t slots[DNS_RANK_SLOTS];
        uint32_t got[4] = {0};

        memset(slots, 0xff, sizeof(slots));
        dns_rank_slots(c->weight, c->n, slots);
        for (size_t s = 0; s < DNS_RANK_SLOTS; s++) {
            assert_true(slots[s] < c->n);
            /* Contiguous blocks in rank order. */
            if (s > 0)
                assert_true(slots[s] >= slots[s - 1]);
            got[slots[s]]++;
        }
        for (size_t k = 0; k < c->n; k++) {
            if (got[k] != c->want[k])
                fail_msg("slots row %zu: variant %zu has %u, want %u", i, k, got[k], c->want[k]);
        }
    }
}

/* The same state decided twice, and through a fresh context, gives the same answer. */
static void test_deterministic(void **state)
{
    struct fx *f = *state;
    const struct cm_conf_policy pol = POLICY(5);
    struct dns_rank_scope scope = {.level = DNS_RANK_GLOBAL};
    struct dns_rank_decision a, b;
    uint8_t sa[DNS_RANK_SLOTS], sb[DNS_RANK_SLOTS];

    fx_rank(f, "usb,rtt=3,ready=2 usa,rtt=3,ready=5 eur,rtt=4", NULL, &pol, US);
    dns_rank_decide(&f->rs, &scope, f->ranked, f->n, &a);
    dns_rank_slots(a.weight, a.chosen_count, sa);
    fx_rank(f, "usa,rtt=3,ready=5 eur,rtt=4 usb,rtt=3,ready=2", NULL, &pol, US);
    dns_rank_decide(&f->rs, &scope, f->ranked, f->n, &b);
    dns_rank_slots(b.weight, b.chosen_count, sb);
    assert_int_equal(a.chosen_count, 3);
    assert_memory_equal(&a, &b, sizeof(a));
    assert_memory_equal(sa, sb, sizeof(sa));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_eligibility, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slack, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ties, setup, teardown),
        cmocka_unit_test_setup_teardown(test_weights, setup, teardown),
        cmocka_unit_test_setup_teardown(test_best_and_hostname, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_levels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intent_eligibility, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intent_decisions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_priority_groups, setup, teardown),
        cmocka_unit_test_setup_teardown(test_standby, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_weights, setup, teardown),
        cmocka_unit_test_setup_teardown(test_own_region, setup, teardown),
        cmocka_unit_test_setup_teardown(test_policy_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_independent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_client_independent_agrees, setup, teardown),
        cmocka_unit_test(test_slots),
        cmocka_unit_test_setup_teardown(test_deterministic, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
