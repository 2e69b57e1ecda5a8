/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_dns_fed_inc.c -- a view built after a change (dns_view_next: the
 * answer table and the precompiled parts shared where the change left them
 * alone) answers exactly as a view built from nothing from the same inputs.
 *
 * Random sequences of changes to three vantages' documents (verdicts,
 * addresses, hostnames, ready endpoints, pending, per-service and
 * member-level RTTs, members joining and leaving a service, discovered
 * services appearing and disappearing), to the intents (drains, weights,
 * priorities), to the configuration object and to the zone (a new SOA
 * serial); after each, every name of the table is asked for by clients of
 * every region and two subnets, for several types, with and without EDNS
 * Client Subnet, of both views, and the response bytes must be equal.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_intent.h"
#include "common/cm_state.h"
#include "dnsd/dns_fed.h"
#include "dnsd/dns_pre.h"
#include "dnsd/dns_query.h"
#include "dnsd/dns_view.h"
#include "dnsd/dns_wire.h"
#include "dnsd/dns_zone.h"
#include "tests/dnsd_fed_fixture.h"

#define NOW    1795244400
#define NV     3 /* vantages */
#define NM     4 /* members */
#define NSC    6 /* configured services */
#define ND     4 /* discovered services that may appear */
#define NS     (NSC + ND)
#define STEPS  30
#define SEEDS  6
#define DOCMAX 32768
#define META   "\"author\": \"t\", \"reason\": \"t\", \"created_at\": \"2026-11-21T06:00:00Z\""

static const char *const vantages[NV] = {"us-east-1", "eu-west-1", "ns1"};
static const char *const members[NM] = {"usa", "usb", "eur", "nsm"};
static const char *const services[NS] = {
    "default/web", "default/host", "default/open", "default/closed", "default/sorry",
    "default/big", "team/a",       "team/b",       "team/c",         "team/d"};

struct mep {
    bool present;
    unsigned addr; /* 0..3: which IPv4 address; 4: none */
    bool v6;
    bool host;      /* no addresses, a hostname */
    unsigned hname; /* which hostname */
    unsigned ready;
    bool healthy;
    bool pending;
    int rtt; /* -1: not measured */
};

struct model {
    bool disc[ND];
    struct mep ep[NV][NS][NM];
    int mrtt[NV][NM]; /* -1: none */
    bool drained[NM];
    int weight[NS][NM]; /* -1: no intent */
    int prio[NS][NM];
    uint64_t gen;
};

struct fx {
    struct cm_conf *conf[2];  /* the same text loaded twice: another object */
    struct dns_zone *zone[2]; /* serial 1 and 2 */
    unsigned ci, zi;
    struct model m;
    uint64_t rnd;
    struct dns_view *view; /* built step after step */
    uint8_t a[65535], b[65535];
    size_t shared_steps, names_kept, queries, zone_switches;
};

static uint32_t rnd(struct fx *f, uint32_t n)
{
    f->rnd ^= f->rnd << 13;
    f->rnd ^= f->rnd >> 7;
    f->rnd ^= f->rnd << 17;
    return (uint32_t)(f->rnd % n);
}

static struct dns_zone *load_zone(unsigned serial)
{
    char dir[] = "/tmp/test_dns_fed_inc.XXXXXX";
    char path[64], err[512], text[1024];
    struct dns_zone *zone = NULL;
    const char *at = strstr(FED_FIXTURE_ZONE, " 1 7200");
    FILE *fp;

    assert_non_null(at);
    snprintf(text, sizeof(text), "%.*s %u%s", (int)(at - FED_FIXTURE_ZONE), FED_FIXTURE_ZONE,
             serial, at + 2);
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/zone", dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    if (dns_zone_load(path, FED_FIXTURE_ORIGIN, &zone, err, sizeof(err)) != CM_OK)
        fail_msg("zone: %s", err);
    unlink(path);
    rmdir(dir);
    return zone;
}

static void model_init(struct fx *f)
{
    memset(&f->m, 0, sizeof(f->m));
    for (size_t v = 0; v < NV; v++) {
        for (size_t s = 0; s < NS; s++) {
            for (size_t k = 0; k < NM; k++) {
                struct mep *e = &f->m.ep[v][s][k];
                e->present = rnd(f, 4) != 0;
                e->addr = rnd(f, 5);
                e->v6 = rnd(f, 3) == 0;
                e->host = rnd(f, 8) == 0;
                e->ready = rnd(f, 4);
                e->healthy = rnd(f, 4) != 0;
                e->rtt = rnd(f, 3) == 0 ? -1 : (int)rnd(f, 80);
            }
        }
        for (size_t k = 0; k < NM; k++)
            f->m.mrtt[v][k] = rnd(f, 3) == 0 ? -1 : (int)rnd(f, 80);
    }
    for (size_t s = 0; s < NS; s++)
        for (size_t k = 0; k < NM; k++)
            f->m.weight[s][k] = f->m.prio[s][k] = -1;
}

/* One random change of the model. */
static void mutate(struct fx *f)
{
    struct model *m = &f->m;
    size_t v = rnd(f, NV), s = rnd(f, NS), k = rnd(f, NM);
    struct mep *e = &m->ep[v][s][k];

    switch (rnd(f, 16)) {
    case 0:
        e->healthy = !e->healthy;
        break;
    case 1:
        e->addr = rnd(f, 5);
        break;
    case 2:
        e->v6 = !e->v6;
        break;
    case 3:
        e->present = !e->present; /* the member joins or leaves the service */
        break;
    case 4:
        e->ready = rnd(f, 4);
        break;
    case 5:
        e->pending = !e->pending;
        break;
    case 6:
        e->rtt = rnd(f, 3) == 0 ? -1 : (int)rnd(f, 80);
        break;
    case 7:
        m->mrtt[v][k] = rnd(f, 3) == 0 ? -1 : (int)rnd(f, 80);
        break;
    case 8:
        m->disc[rnd(f, ND)] ^= true; /* a discovered service appears or goes */
        break;
    case 9:
        m->drained[k] = !m->drained[k];
        break;
    case 10:
        m->weight[s][k] = rnd(f, 3) == 0 ? -1 : (int)rnd(f, 4);
        break;
    case 11:
        m->prio[s][k] = rnd(f, 3) == 0 ? -1 : (int)rnd(f, 3);
        break;
    case 12:
        e->host = !e->host;
        break;
    case 13:
        e->hname ^= 1;
        break;
    case 14: {
        /* one discovered service goes and another comes: as many services */
        size_t on = rnd(f, ND), off = rnd(f, ND);
        if (m->disc[on] && !m->disc[off]) {
            m->disc[on] = false;
            m->disc[off] = true;
        }
        break;
    }
    default:
        for (size_t i = 0; i < NV; i++)
            m->ep[i][s][k].healthy = !m->ep[i][s][k].healthy; /* a verdict flips */
        break;
    }
}

static size_t put(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static size_t put(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;
    int w;

    va_start(ap, fmt);
    w = vsnprintf(out + n, DOCMAX - n, fmt, ap);
    va_end(ap);
    assert_true(w >= 0 && (size_t)w < DOCMAX - n);
    return n + (size_t)w;
}

static size_t put_ep(char *out, size_t n, size_t s, size_t k, const struct mep *e)
{
    n = put(out, n, "\"%s\": {\"addresses\": [", members[k]);
    if (!e->host && e->addr < 4)
        n = put(out, n, "\"192.0.2.%zu\"%s", 10 * (s + 1) + 4 * k + e->addr, e->v6 ? ", " : "");
    if (!e->host && e->v6)
        n = put(out, n, "\"2001:db8::%zx:%zx\"", s + 1, k + 1);
    n = put(out, n,
            "], \"hostname\": %s, \"ready_endpoints\": %u, \"healthy\": %s, "
            "\"pending\": %s",
            e->host ? (e->hname != 0 ? "\"lb1.example.org\"" : "\"lb.example.org\"") : "null",
            e->ready, e->healthy ? "true" : "false", e->pending ? "true" : "false");
    if (e->rtt >= 0)
        n = put(out, n, ", \"rtt_ms\": %d", e->rtt);
    return put(out, n, "}");
}

static struct cm_state *doc_of(struct fx *f, size_t v)
{
    static char text[DOCMAX];
    char err[CM_STATE_ERR_MAX];
    struct cm_state *st = NULL;
    size_t n = 0;
    bool first = true;

    n = put(text, n,
            "{\"version\": 1, \"vantage\": \"%s\", \"generation\": %llu, "
            "\"generated_at\": \"2026-11-21T07:00:0%zuZ\", \"members\": {",
            vantages[v], (unsigned long long)f->m.gen, v);
    for (size_t k = 0; k < NM; k++) {
        n = put(text, n, "%s\"%s\": {\"api\": \"ok\"", k > 0 ? ", " : "", members[k]);
        if (f->m.mrtt[v][k] >= 0)
            n = put(text, n, ", \"rtt_ms\": %d", f->m.mrtt[v][k]);
        n = put(text, n, "}");
    }
    n = put(text, n, "}, \"services\": {");
    for (size_t s = 0; s < NS; s++) {
        bool any = false;
        if (s >= NSC && !f->m.disc[s - NSC])
            continue;
        n = put(text, n, "%s\"%s\": {\"port\": 80, \"members\": {", first ? "" : ", ", services[s]);
        first = false;
        for (size_t k = 0; k < NM; k++) {
            if (!f->m.ep[v][s][k].present)
                continue;
            n = put(text, n, "%s", any ? ", " : "");
            n = put_ep(text, n, s, k, &f->m.ep[v][s][k]);
            any = true;
        }
        n = put(text, n, "}}");
    }
    put(text, n, "}}");
    if (cm_state_parse(text, strlen(text), NULL, &st, err, sizeof(err)) != CM_OK)
        fail_msg("state: %s\n%s", err, text);
    return st;
}

static void add_intent(struct cm_conf *conf, struct cm_intents **set, const char *text)
{
    char err[CM_INTENT_ERR_MAX];
    struct cm_intent *in = NULL;
    struct cm_intents *next = NULL;

    if (cm_intent_parse_text(text, strlen(text), conf, &in, err, sizeof(err)) != CM_OK)
        fail_msg("intent: %s: %s", err, text);
    assert_int_equal(cm_intents_put(*set, in, NOW, &next, err, sizeof(err)), CM_OK);
    cm_intents_free(*set);
    *set = next;
}

static struct cm_intent_view *intents_of(struct fx *f)
{
    struct cm_conf *conf = f->conf[f->ci];
    struct cm_intents *set = cm_intents_new();
    struct cm_intent_view *view = NULL;
    char text[512];

    assert_non_null(set);
    for (size_t k = 0; k < NM; k++) {
        if (!f->m.drained[k])
            continue;
        snprintf(text, sizeof(text),
                 "{\"id\": \"drain-%s\", \"kind\": \"drain\", \"member\": \"%s\", " META "}",
                 members[k], members[k]);
        add_intent(conf, &set, text);
    }
    for (size_t s = 0; s < NS; s++) {
        for (size_t k = 0; k < NM; k++) {
            if (f->m.weight[s][k] >= 0) {
                snprintf(text, sizeof(text),
                         "{\"id\": \"w-%zu-%zu\", \"kind\": \"weight\", \"service\": \"%s\", "
                         "\"member\": \"%s\", \"weight\": %d, " META "}",
                         s, k, services[s], members[k], f->m.weight[s][k]);
                add_intent(conf, &set, text);
            }
            if (f->m.prio[s][k] >= 0) {
                snprintf(text, sizeof(text),
                         "{\"id\": \"p-%zu-%zu\", \"kind\": \"priority\", \"service\": \"%s\", "
                         "\"member\": \"%s\", \"priority\": %d, " META "}",
                         s, k, services[s], members[k], f->m.prio[s][k]);
                add_intent(conf, &set, text);
            }
        }
    }
    assert_int_equal(cm_intent_view_build(set, conf, NOW, &view), CM_OK);
    cm_intents_free(set);
    return view;
}

/* ---- queries ---- */

static size_t mkquery(uint8_t *q, const uint8_t *name, size_t len, uint16_t qtype, bool ecs,
                      const uint8_t client[4])
{
    static const uint8_t head[12] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
    size_t n = sizeof(head);

    memcpy(q, head, n);
    q[11] = ecs ? 1 : 0;
    memcpy(q + n, name, len);
    n += len;
    q[n++] = (uint8_t)(qtype >> 8);
    q[n++] = (uint8_t)qtype;
    q[n++] = 0;
    q[n++] = DNS_CLASS_IN;
    if (!ecs)
        return n;
    static const uint8_t opt[] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 11, 0, 8, 0, 7, 0, 1, 24, 0};
    memcpy(q + n, opt, sizeof(opt));
    n += sizeof(opt);
    memcpy(q + n, client, 3);
    return n + 3;
}

/* Every name of @full asked of @full and @inc: the same bytes. */
static void compare_views(struct fx *f, const struct dns_view *full, const struct dns_view *inc,
                          const char *when)
{
    static const uint8_t clients[][4] = {{192, 0, 2, 200}, {10, 1, 7, 9},  {10, 1, 99, 9},
                                         {10, 2, 7, 9},    {10, 2, 50, 1}, {10, 3, 7, 9}};
    static const uint16_t qtypes[] = {DNS_TYPE_A, DNS_TYPE_AAAA, DNS_TYPE_ANY, DNS_TYPE_TXT};
    uint8_t q[512];

    assert_int_equal(dns_fed_name_total(full->fed), dns_fed_name_total(inc->fed));
    assert_int_equal(dns_fed_service_count(full->fed), dns_fed_service_count(inc->fed));
    for (size_t i = 0; i < dns_fed_name_total(full->fed); i++) {
        size_t len;
        const uint8_t *name = dns_fed_name_wire(full->fed, i, &len);
        for (size_t c = 0; c < sizeof(clients) / sizeof(clients[0]); c++) {
            struct sockaddr_in sin = {.sin_family = AF_INET};
            memcpy(&sin.sin_addr, clients[c], 4);
            for (size_t t = 0; t < sizeof(qtypes) / sizeof(qtypes[0]); t++) {
                for (int ecs = 0; ecs < 2; ecs++) {
                    struct dns_query_info ia, ib;
                    size_t ql = mkquery(q, name, len, qtypes[t], ecs != 0, clients[c]);
                    size_t la = dns_query_process(full, q, ql, f->a, 4096,
                                                  (const struct sockaddr *)&sin, false, &ia, NOW);
                    size_t lb = dns_query_process(inc, q, ql, f->b, 4096,
                                                  (const struct sockaddr *)&sin, false, &ib, NOW);
                    f->queries++;
                    if (la != lb || memcmp(f->a, f->b, la) != 0 || ia.member != ib.member ||
                        ia.precompiled != ib.precompiled)
                        fail_msg("%s: name #%zu client %zu qtype %u ecs %d: the incremental "
                                 "view answers otherwise (%zu vs %zu bytes)",
                                 when, i, c, qtypes[t], ecs, la, lb);
                }
            }
        }
    }
}

/* One step: the documents and intents of the model, a view after the last
 * one and a view from nothing, compared. */
static void step(struct fx *f, const char *when)
{
    struct cm_conf *conf = f->conf[f->ci];
    struct dns_zone *zone = f->zone[f->zi];
    struct cm_state *docs[NV];
    struct cm_merged *merged = NULL;
    struct cm_intent_view *iv = intents_of(f);
    struct dns_view *inc = NULL, *full = NULL;
    struct dns_fed_stats st;
    char err[512];

    f->m.gen++;
    for (size_t v = 0; v < NV; v++)
        docs[v] = doc_of(f, v);
    assert_int_equal(cm_merged_build((const struct cm_state *const *)docs, NV, conf, &merged),
                     CM_OK);
    if (dns_view_next(f->view, conf, zone, NULL, merged, iv, f->m.gen, &inc, err, sizeof(err)) !=
        CM_OK)
        fail_msg("%s: incremental view: %s", when, err);
    if (dns_view_new(conf, zone, merged, iv, f->m.gen, &full, err, sizeof(err)) != CM_OK)
        fail_msg("%s: full view: %s", when, err);
    /* The previous view goes first: nothing of it may be needed any more. */
    dns_view_unref(f->view);
    f->view = inc;
    for (size_t v = 0; v < NV; v++)
        cm_state_free(docs[v]);
    cm_merged_free(merged);
    cm_intent_view_free(iv);
    dns_fed_stats(inc->fed, &st);
    f->shared_steps += st.services_shared > 0;
    f->names_kept += st.names_shared;
    compare_views(f, full, inc, when);
    dns_view_unref(full);
}

static void run_seed(struct fx *f, uint64_t seed)
{
    char when[64];

    f->rnd = seed * 0x9E3779B97F4A7C15ull + 1;
    f->ci = f->zi = 0;
    model_init(f);
    dns_view_unref(f->view);
    f->view = NULL;
    for (unsigned i = 0; i < STEPS; i++) {
        unsigned changes = rnd(f, 4); /* 0: a push that changes nothing */
        for (unsigned c = 0; c < changes; c++)
            mutate(f);
        if (rnd(f, 12) == 0)
            f->ci ^= 1; /* a configuration reload */
        if (rnd(f, 12) == 0) {
            f->zi ^= 1; /* a zone reload with another serial */
            f->zone_switches++;
        }
        snprintf(when, sizeof(when), "seed %llu step %u", (unsigned long long)seed, i);
        step(f, when);
    }
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char err[512];

    assert_non_null(f);
    for (int i = 0; i < 2; i++) {
        if (cm_conf_load_string("test.json", FED_FIXTURE_CONF, &f->conf[i], err, sizeof(err)) !=
            CM_OK)
            fail_msg("conf: %s", err);
        f->zone[i] = load_zone(1 + (unsigned)i);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    dns_view_unref(f->view);
    for (int i = 0; i < 2; i++) {
        dns_zone_unref(f->zone[i]);
        cm_conf_unref(f->conf[i]);
    }
    free(f);
    return 0;
}

static void test_incremental_answers_as_full(void **state)
{
    struct fx *f = *state;

    for (uint64_t seed = 1; seed <= SEEDS; seed++)
        run_seed(f, seed);
    print_message("%zu queries compared; %zu of %d steps shared services, %zu kept the names\n",
                  f->queries, f->shared_steps, SEEDS * STEPS, f->names_kept);
    /* The comparison means something only if sharing happened often. */
    assert_true(f->shared_steps > SEEDS * STEPS / 3);
    assert_true(f->names_kept > SEEDS * STEPS / 3);
    assert_true(f->zone_switches > 0);
}

/* Services (configured, or discovered and there) that a vantage reports member @k in. */
static size_t with_member(const struct fx *f, size_t k)
{
    size_t n = 0;

    for (size_t s = 0; s < NS; s++) {
        bool in = false;
        if (s >= NSC && !f->m.disc[s - NSC])
            continue;
        for (size_t v = 0; v < NV; v++)
            in = in || f->m.ep[v][s][k].present;
        n += in;
    }
    return n;
}

/* Every used slot of every service has its hot records (dns_pre_hot), taken
 * with the parts when they are shared: none is left to the slower lookup. */
static void assert_all_hot(const struct fx *f)
{
    const struct dns_fed *fed = f->view->fed;

    for (size_t s = 0; s < dns_fed_service_count(fed); s++) {
        for (size_t slot = 0; slot < dns_fed_slot_total(fed, s); slot++) {
            if (dns_fed_slot_regions(fed, s, slot) > 0)
                assert_non_null(dns_pre_hot(f->view->pre, (int)s, (uint32_t)slot, 0));
        }
    }
}

/* What is shared and what is built, change by change. */
static void test_sharing(void **state)
{
    struct fx *f = *state;
    struct dns_fed_stats st;
    size_t built, shared;

    f->rnd = 42;
    model_init(f);
    memset(f->m.disc, 0, sizeof(f->m.disc));
    step(f, "first");
    dns_fed_stats(f->view->fed, &st);
    assert_int_equal(st.services_shared, 0);
    assert_int_equal(st.services_built, NSC);
    /* Nothing changed: everything is the previous view's. */
    step(f, "unchanged");
    dns_fed_stats(f->view->fed, &st);
    dns_pre_counts(f->view->pre, &built, &shared);
    assert_int_equal(st.services_built, 0);
    assert_true(st.names_shared);
    assert_int_equal(built, 0);
    assert_int_equal(shared, NSC);
    assert_all_hot(f);
    /* One service's address: that service only. */
    f->m.ep[0][1][3].present = true;
    f->m.ep[0][1][3].host = false;
    f->m.ep[0][1][3].addr = (f->m.ep[0][1][3].addr + 1) % 4;
    step(f, "one address");
    dns_fed_stats(f->view->fed, &st);
    dns_pre_counts(f->view->pre, &built, &shared);
    assert_int_equal(st.services_built, 1);
    assert_int_equal(built, 1);
    assert_all_hot(f);
    /* A weight intent on one service: that service only. */
    f->m.weight[2][0] = 3;
    step(f, "one weight");
    dns_fed_stats(f->view->fed, &st);
    assert_int_equal(st.services_built, 1);
    /* A discovered service appears: the names are built again, the blocks kept. */
    f->m.disc[0] = true;
    step(f, "a new service");
    dns_fed_stats(f->view->fed, &st);
    assert_false(st.names_shared);
    assert_int_equal(st.services_built, 1);
    assert_int_equal(st.services_shared, NSC);
    assert_all_hot(f);
    /* A drain changes the services the member is in, and only those; so
     * does a change of its member-level RTT. */
    for (size_t v = 0; v < NV; v++)
        f->m.ep[v][1][0].present = false; /* usa is in no vantage's default/host */
    f->m.ep[0][2][0].present = true;      /* and in default/open */
    step(f, "usa leaves default/host");
    f->m.drained[0] = true;
    step(f, "a drain");
    dns_fed_stats(f->view->fed, &st);
    assert_int_equal(st.services_built, with_member(f, 0));
    assert_int_equal(st.services_shared, NSC + 1 - with_member(f, 0));
    assert_true(st.services_shared > 0);
    f->m.mrtt[1][0] = f->m.mrtt[1][0] == 7 ? 8 : 7;
    step(f, "a member-level RTT");
    dns_fed_stats(f->view->fed, &st);
    assert_int_equal(st.services_built, with_member(f, 0));
    /* Another zone: the table is kept, every part compiled again. */
    f->zi = 1;
    step(f, "another zone");
    dns_fed_stats(f->view->fed, &st);
    dns_pre_counts(f->view->pre, &built, &shared);
    assert_int_equal(st.services_built, 0);
    assert_int_equal(shared, 0);
    /* Another configuration object: everything built again. */
    f->ci = 1;
    step(f, "another configuration");
    dns_fed_stats(f->view->fed, &st);
    assert_int_equal(st.services_shared, 0);
    assert_false(st.names_shared);
}

/* The digest of service @s merged from the model's documents. */
static uint64_t digest_of(struct fx *f, size_t s)
{
    struct cm_state *docs[NV];
    struct cm_merged *merged = NULL;
    uint64_t d = 0;

    for (size_t v = 0; v < NV; v++)
        docs[v] = doc_of(f, v);
    assert_int_equal(cm_merged_build((const struct cm_state *const *)docs, NV, f->conf[0], &merged),
                     CM_OK);
    for (size_t i = 0; i < merged->service_count; i++) {
        if (strcmp(merged->services[i].key, services[s]) == 0)
            d = merged->services[i].digest;
    }
    cm_merged_free(merged);
    for (size_t v = 0; v < NV; v++)
        cm_state_free(docs[v]);
    return d;
}

/* Every field a merged entry is made of changes its digest (dns_fed_update
 * shares a service's answers while the digest stays). Addresses, hostname
 * and ready endpoints come from the newest document (the last vantage's:
 * these documents are unstamped, cm_state_src_better);
 * votes, pending and RTTs from every vantage. */
static void test_digest_covers(void **state)
{
    struct fx *f = *state;

    for (size_t v = 0; v < NV; v++) {
        for (size_t k = 0; k < NM; k++) {
            for (unsigned field = 0; field < 9; field++) {
                bool src_only = (field >= 3 && field <= 6) || field == 8;
                struct mep *e = &f->m.ep[v][0][k];
                uint64_t before, after;
                f->rnd = 7;
                model_init(f);
                for (size_t i = 0; i < NV; i++)
                    f->m.ep[i][0][k] =
                        (struct mep){true, 1, false, field == 8, 0, 2, true, false, 20};
                before = digest_of(f, 0);
                switch (field) {
                default:
                case 0:
                    e->healthy = false;
                    break;
                case 1:
                    e->pending = true;
                    break;
                case 2:
                    e->rtt = 21;
                    break;
                case 3:
                    e->addr = 2;
                    break;
                case 4:
                    e->v6 = true;
                    break;
                case 5:
                    e->host = true;
                    break;
                case 6:
                    e->ready = 3;
                    break;
                case 8:
                    e->hname = 1;
                    break;
                case 7:
                    e->present = false;
                    break;
                }
                after = digest_of(f, 0);
                if (src_only && v != NV - 1)
                    continue; /* not the newest document: the merge does not see it */
                if (before == after)
                    fail_msg("vantage %zu member %zu field %u: the digest stays", v, k, field);
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_incremental_answers_as_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sharing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_digest_covers, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
