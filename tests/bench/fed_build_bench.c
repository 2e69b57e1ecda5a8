/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fed_build_bench.c -- times dns_fed_build() on a large synthetic federation:
 * by default 10,000 services x 10 members x 20 regions (one zone each), three
 * vantages reporting every member with measured RTTs. The configuration loader
 * accepts at most 4096 services; the others are discovered (state only).
 *
 *   fed_build_bench [--pushes N] [--delta-only] [--each] [services [members [regions]]]
 *
 * Prints the build time in seconds and the table size, then a lookup rate,
 * then what a view (answer table + precompiled responses, dns_view_next)
 * costs in CPU of the building thread (CLOCK_THREAD_CPUTIME_ID), median and
 * max over BENCH_REPS runs:
 *
 *   full        no previous view (a start, a configuration or zone reload)
 *   unchanged   after a merge of documents that change nothing
 *   one service after a merge where one service's address changed
 *
 * and, for context, what parsing one vantage's document (cm_state_parse) and
 * the merge of the three documents (cm_merged_build) cost: both run before
 * every build after a push and are not part of the figures above.
 *
 * Last, a delta push end to end as dnsd does it (cm_store_put of a delta,
 * cm_merged_update, view; CPU per phase and in all): one service changed,
 * and nothing changed but the generation, vantage 0 pushing every time; then
 * one service changed with the vantages pushing in turn (each push the newest
 * document: the merge takes entries from the vantage that changed them last,
 * so it stays incremental). Each series is --pushes pushes (default 50);
 * "commit" is what making the candidate live costs on the same thread
 * (cm_store_commit freeing the superseded document, the old merge and view),
 * after the new answer is served and outside the total. --delta-only skips
 * everything before the delta pushes (the full builds), for profiling them;
 * --each prints every push's figures and the minor page faults it took (the
 * first pushes after a full build grow the heap).
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>

#include <jansson.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_state.h"
#include "common/cm_store.h"
#include "common/cm_str.h"
#include "dnsd/dns_fed.h"
#include "dnsd/dns_geo.h"
#include "dnsd/dns_pre.h"
#include "dnsd/dns_view.h"
#include "dnsd/dns_zone.h"

#define BENCH_CONF_SERVICES 4096
#define BENCH_REPS          7
#define BENCH_PUSHES        50

static size_t bench_pushes = BENCH_PUSHES; /* delta pushes per series (--pushes) */
static bool bench_each;                    /* --each: every push's figures too */

static double now_s(clockid_t clk)
{
    struct timespec ts;

    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Minor page faults of the calling thread so far. */
static long thread_faults(void)
{
    struct rusage ru;

    return getrusage(RUSAGE_THREAD, &ru) == 0 ? ru.ru_minflt : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, size_t n, const char *extra)
{
    qsort(v, n, sizeof(*v), cmp_double);
    printf("%-28s cpu median %9.3f ms  p90 %9.3f ms  max %9.3f ms  (%zu runs)%s\n", what,
           v[n / 2] * 1e3, v[n * 9 / 10] * 1e3, v[n - 1] * 1e3, n, extra);
}

/* A zone file with the apex records only, for the precompiled responses. */
static struct dns_zone *bench_zone(const char *origin)
{
    char path[] = "/tmp/fed_build_bench.XXXXXX";
    char err[256];
    struct dns_zone *zone = NULL;
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;

    if (f == NULL)
        return NULL;
    fprintf(f,
            "$ORIGIN %s.\n$TTL 300\n@ IN SOA ns1 hostmaster 1 3600 600 86400 30\n"
            "@ IN NS ns1\nns1 IN A 192.0.2.53\n",
            origin);
    fclose(f);
    if (dns_zone_load(path, origin, &zone, err, sizeof(err)) != CM_OK)
        fprintf(stderr, "zone: %s\n", err);
    unlink(path);
    return zone;
}

/* Points the first IPv4 address of service @k of @doc elsewhere (and back). */
static void touch_service(struct cm_state *doc, size_t k)
{
    struct cm_state_endpoint *ep = &doc->services[k % doc->service_count].members[0];
    struct sockaddr_in *sin = (struct sockaddr_in *)&ep->addresses[0].ss;
    uint8_t *b = (uint8_t *)&sin->sin_addr;

    b[3] ^= 0x80;
}

/* One view after @prev (NULL: full), its CPU seconds in *cpu. */
static int view_after(struct dns_view *prev, struct cm_conf *conf, struct dns_zone *zone,
                      struct dns_geo *geo, const struct cm_merged *merged, struct dns_view **out,
                      double *cpu)
{
    char err[CM_CONF_ERR_MAX];
    double c0 = now_s(CLOCK_THREAD_CPUTIME_ID);
    int rc = dns_view_next(prev, conf, zone, geo, merged, NULL, 1, out, err, sizeof(err));

    *cpu = now_s(CLOCK_THREAD_CPUTIME_ID) - c0;
    if (rc != CM_OK)
        fprintf(stderr, "view: %s\n", err);
    return rc;
}

/* The views after a push: merged, zone, geo and the view in service. */
struct bench_run {
    struct cm_conf *conf;
    struct cm_state **docs;
    size_t ndocs;
    struct dns_zone *zone;
    struct dns_geo *geo;
    struct cm_merged *merged;
    struct dns_view *view;
};

/*
 * BENCH_REPS pushes: each merges the documents again (after changing one
 * service's address when @touch) and builds a view after the one in
 * service; their CPU in @cpu, the merges' in @merge; reported as @what.
 */
static int rounds(struct bench_run *r, bool touch, double *cpu, double *merge, const char *what)
{
    struct dns_view *next = NULL;
    struct cm_merged *m2 = NULL;
    struct dns_fed_stats st;
    size_t built = 0, shared = 0;
    char extra[128];
    int rc = CM_OK;

    for (size_t i = 0; i < BENCH_REPS && rc == CM_OK; i++) {
        double c0;
        if (touch)
            touch_service(r->docs[0], 97 * i + 5);
        c0 = now_s(CLOCK_THREAD_CPUTIME_ID);
        rc = cm_merged_build((const struct cm_state *const *)r->docs, r->ndocs, r->conf, &m2);
        merge[i] = now_s(CLOCK_THREAD_CPUTIME_ID) - c0;
        if (rc == CM_OK)
            rc = view_after(r->view, r->conf, r->zone, r->geo, m2, &next, &cpu[i]);
        if (rc == CM_OK) {
            dns_view_unref(r->view);
            r->view = next;
        }
        cm_merged_free(r->merged);
        r->merged = m2;
        m2 = NULL;
    }
    if (rc != CM_OK)
        return rc;
    dns_fed_stats(r->view->fed, &st);
    dns_pre_counts(r->view->pre, &built, &shared);
    snprintf(extra, sizeof(extra), "  services built %zu shared %zu, parts built %zu shared %zu",
             st.services_built, st.services_shared, built, shared);
    report(what, cpu, BENCH_REPS, extra);
    return CM_OK;
}

static int bench_views(struct cm_conf *conf, struct cm_state **docs, size_t ndocs)
{
    struct bench_run r = {.conf = conf, .docs = docs, .ndocs = ndocs};
    struct dns_view *next = NULL;
    double full[BENCH_REPS], same[BENCH_REPS], one[BENCH_REPS], merge[BENCH_REPS];
    char err[CM_CONF_ERR_MAX];
    int rc = CM_ENOMEM;

    r.zone = bench_zone(conf->zone);
    if (r.zone == NULL || dns_geo_build(conf, NULL, &r.geo, err, sizeof(err)) != CM_OK ||
        cm_merged_build((const struct cm_state *const *)docs, ndocs, conf, &r.merged) != CM_OK)
        goto out;
    for (size_t i = 0; i < BENCH_REPS; i++) {
        rc = view_after(NULL, conf, r.zone, r.geo, r.merged, &next, &full[i]);
        if (rc != CM_OK)
            goto out;
        dns_view_unref(r.view);
        r.view = next;
    }
    report("view, full build", full, BENCH_REPS, "");
    rc = rounds(&r, false, same, merge, "view, nothing changed");
    if (rc == CM_OK)
        rc = rounds(&r, true, one, merge, "view, one service changed");
    if (rc != CM_OK)
        goto out;
    report("merge (context, not above)", merge, BENCH_REPS, "");
    printf("precompiled parts: %zu KiB\n", dns_pre_memory(r.view->pre) / 1024);
out:
    dns_view_unref(r.view);
    cm_merged_free(r.merged);
    dns_geo_unref(r.geo);
    dns_zone_unref(r.zone);
    return rc;
}

/*
 * A delta of vantage 0's held document @base: service @k's first address
 * changed when @change, else nothing but the generation. New text.
 */
static char *delta_for(const struct cm_state *base, size_t k, bool change)
{
    static unsigned pushes; /* every push newer than the last */
    char at[32];
    json_t *d;
    char *text;

    pushes++;
    snprintf(at, sizeof(at), "2026-11-21T%02u:%02u:%02uZ", 8 + pushes / 3600 % 12, pushes / 60 % 60,
             pushes % 60);
    d = json_pack("{s:i,s:s,s:I,s:I,s:s}", "version", 1, "vantage", base->vantage,
                  "base_generation", (json_int_t)base->generation, "generation",
                  (json_int_t)base->generation + 1, "generated_at", at);

    if (change) {
        const struct cm_state_service *svc = &base->services[k % base->service_count];
        json_t *sj = json_deep_copy(svc->json);
        json_t *ep = json_object_iter_value(json_object_iter(json_object_get(sj, "members")));
        json_t *addrs = json_object_get(ep, "addresses");
        char addr[64];

        snprintf(addr, sizeof(addr), "10.200.%zu.%zu", (k >> 8) & 255, k & 255);
        json_array_set_new(addrs, 0, json_string(addr));
        json_object_set_new(d, "services", json_pack("{s:o}", svc->key, sj));
    }
    text = json_dumps(d, JSON_COMPACT);
    json_decref(d);
    return text;
}

/*
 * A delta push end to end, as dnsd does it (dns_state_put): cm_store_put
 * applies the delta to the held document, the documents are merged again
 * where they changed (cm_merged_update) and a view is built after the one in
 * service. CPU of the thread, per phase and
 * in all, over BENCH_REPS pushes; push i comes from vantage i % @nvant.
 */
static int delta_rounds(struct bench_run *r, struct cm_store *store, bool change, size_t nvant,
                        const char *what)
{
    size_t np = bench_pushes;
    double *apply = calloc(np, sizeof(*apply)), *merge = calloc(np, sizeof(*merge));
    double *view = calloc(np, sizeof(*view)), *total = calloc(np, sizeof(*total));
    double *gc = calloc(np, sizeof(*gc));
    char err[CM_STATE_ERR_MAX], line[160];
    int rc = apply == NULL || merge == NULL || view == NULL || total == NULL || gc == NULL
                 ? CM_ENOMEM
                 : CM_OK;

    for (size_t i = 0; i < np && rc == CM_OK; i++) {
        char *text =
            delta_for(cm_store_find(store, r->conf->regions[i % nvant].name), 131 * i + 7, change);
        struct cm_store_cand *c = NULL;
        struct cm_merged *m2 = NULL;
        struct dns_view *next = NULL;
        const struct cm_state *const *docs;
        size_t n;
        double c0, c1, c2, c3;
        long f0 = thread_faults();

        if (text == NULL) {
            rc = CM_ENOMEM;
            break;
        }
        c0 = now_s(CLOCK_THREAD_CPUTIME_ID);
        rc = cm_store_put(store, text, strlen(text), NULL, r->conf, 1, &c, err, sizeof(err));
        c1 = now_s(CLOCK_THREAD_CPUTIME_ID);
        if (rc == CM_OK && c != NULL) {
            docs = cm_store_cand_docs(c, &n);
            rc = cm_merged_update(r->merged, docs, n, r->conf, &m2);
        }
        c2 = now_s(CLOCK_THREAD_CPUTIME_ID);
        if (rc == CM_OK)
            rc = view_after(r->view, r->conf, r->zone, r->geo, m2, &next, &view[i]);
        c3 = now_s(CLOCK_THREAD_CPUTIME_ID);
        if (rc == CM_OK) {
            cm_store_commit(store, c);
            c = NULL;
            dns_view_unref(r->view);
            r->view = next;
            cm_merged_free(r->merged);
            r->merged = m2;
            m2 = NULL;
        } else {
            fprintf(stderr, "delta: %s\n", err);
        }
        gc[i] = now_s(CLOCK_THREAD_CPUTIME_ID) - c3;
        cm_store_cand_free(c);
        cm_merged_free(m2);
        free(text);
        apply[i] = c1 - c0;
        merge[i] = c2 - c1;
        total[i] = apply[i] + merge[i] + view[i];
        if (bench_each)
            printf("  push %3zu: apply %7.3f merge %7.3f view %7.3f total %7.3f commit %7.3f ms, "
                   "%ld page faults\n",
                   i, apply[i] * 1e3, merge[i] * 1e3, view[i] * 1e3, total[i] * 1e3, gc[i] * 1e3,
                   thread_faults() - f0);
    }
    if (rc == CM_OK) {
        snprintf(line, sizeof(line), "%s: total", what);
        report(line, total, np, "");
        report("  delta apply", apply, np, "");
        report("  merge", merge, np, "");
        report("  view", view, np, "");
        report("  commit (after, not in total)", gc, np, "");
    }
    free(apply);
    free(merge);
    free(view);
    free(total);
    free(gc);
    return rc;
}

static int bench_delta(struct cm_conf *conf, struct cm_state **docs, size_t ndocs)
{
    struct bench_run r = {.conf = conf};
    struct cm_store *store = cm_store_new();
    char err[CM_CONF_ERR_MAX];
    const struct cm_state *const *held;
    size_t n;
    int rc = CM_ENOMEM;

    r.zone = bench_zone(conf->zone);
    if (store == NULL || r.zone == NULL ||
        dns_geo_build(conf, NULL, &r.geo, err, sizeof(err)) != CM_OK)
        goto out;
    for (size_t v = 0; v < ndocs; v++) {
        char *text = cm_state_dump(docs[v]);
        struct cm_store_cand *c = NULL;

        rc = text == NULL
                 ? CM_ENOMEM
                 : cm_store_put(store, text, strlen(text), NULL, conf, 1, &c, err, sizeof(err));
        free(text);
        if (rc != CM_OK)
            goto out;
        cm_store_commit(store, c);
    }
    held = cm_store_docs(store);
    n = cm_store_count(store);
    rc = cm_merged_build(held, n, conf, &r.merged);
    if (rc == CM_OK)
        rc = view_after(NULL, conf, r.zone, r.geo, r.merged, &r.view, &(double){0});
    if (rc == CM_OK)
        rc = delta_rounds(&r, store, true, 1, "delta push, one service");
    if (rc == CM_OK)
        rc = delta_rounds(&r, store, false, 1, "delta push, nothing changed");
    if (rc == CM_OK)
        rc = delta_rounds(&r, store, true, ndocs, "delta push, one service, the vantages in turn");
out:
    dns_view_unref(r.view);
    cm_merged_free(r.merged);
    dns_geo_unref(r.geo);
    dns_zone_unref(r.zone);
    cm_store_free(store);
    return rc;
}

static bool arg_count(const char *s, uint64_t max, size_t *out)
{
    uint64_t v;

    if (!cm_parse_u64(s, max, &v) || v == 0)
        return false;
    *out = (size_t)v;
    return true;
}

static json_t *make_conf(size_t nsvc, size_t nmem, size_t nreg)
{
    json_t *root = json_object(), *regions = json_object(), *members = json_object();
    json_t *services = json_object(), *lat = json_object(), *dnsd = json_object();
    char name[64], zone[64];

    for (size_t r = 0; r < nreg; r++) {
        json_t *zones = json_array(), *row = json_object();
        snprintf(name, sizeof(name), "region-%zu", r);
        snprintf(zone, sizeof(zone), "region-%zua", r);
        json_array_append_new(zones, json_string(zone));
        json_object_set_new(regions, name, json_pack("{s:o}", "zones", zones));
        for (size_t k = r + 1; k < nreg; k++) {
            char other[64];
            snprintf(other, sizeof(other), "region-%zu", k);
            json_object_set_new(row, other, json_integer((json_int_t)(10 * (k - r) + 3)));
        }
        json_object_set_new(lat, name, row);
    }
    for (size_t m = 0; m < nmem; m++) {
        size_t r = (m * 2) % nreg;
        snprintf(name, sizeof(name), "member-%zu", m);
        snprintf(zone, sizeof(zone), "region-%zua", r);
        char region[64];
        snprintf(region, sizeof(region), "region-%zu", r);
        json_object_set_new(members, name, json_pack("{s:s,s:s}", "region", region, "zone", zone));
    }
    /* The loader caps configured services; the rest come from the state only. */
    for (size_t s = 0; s < nsvc && s < BENCH_CONF_SERVICES; s++) {
        snprintf(name, sizeof(name), "ns%zu/svc%zu", s % 100, s);
        json_object_set_new(services, name, json_pack("{s:i}", "port", 80));
    }
    json_object_set_new(dnsd, "listen", json_pack("[s]", "127.0.0.1:5300"));
    json_object_set_new(dnsd, "zone_file", json_string("z.zone"));
    json_object_set_new(dnsd, "region", json_string("region-0"));
    json_object_set_new(root, "federation", json_string("bench"));
    json_object_set_new(root, "zone", json_string("fed.example.test"));
    json_object_set_new(root, "regions", regions);
    json_object_set_new(root, "members", members);
    json_object_set_new(root, "services", services);
    json_object_set_new(root, "latency_ms", lat);
    json_object_set_new(root, "dnsd", dnsd);
    return root;
}

static json_t *make_state(const struct cm_conf *conf, size_t nsvc, size_t vantage)
{
    json_t *members = json_object(), *services = json_object();
    char addr[64], key[64];

    for (size_t m = 0; m < conf->member_count; m++) {
        double rtt = 1.0 + (double)((m * 7 + vantage * 13) % 50);
        json_object_set_new(members, conf->members[m].name, json_pack("{s:f}", "rtt_ms", rtt));
    }
    for (size_t s = 0; s < nsvc; s++) {
        json_t *eps = json_object();
        for (size_t m = 0; m < conf->member_count; m++) {
            snprintf(addr, sizeof(addr), "10.%zu.%zu.%zu", m, (s >> 8) & 255, s & 255);
            json_object_set_new(eps, conf->members[m].name,
                                json_pack("{s:[s],s:i,s:b,s:b}", "addresses", addr,
                                          "ready_endpoints", (int)(1 + (s + m) % 3), "healthy",
                                          (s + m) % 17 != 0, "pending", 0));
        }
        snprintf(key, sizeof(key), "ns%zu/svc%zu", s % 100, s);
        json_object_set_new(services, key, json_pack("{s:i,s:o}", "port", 80, "members", eps));
    }
    return json_pack("{s:i,s:s,s:i,s:s,s:o,s:o}", "version", 1, "vantage",
                     conf->regions[vantage].name, "generation", 1, "generated_at",
                     "2026-11-21T07:00:00Z", "members", members, "services", services);
}

int main(int argc, char **argv)
{
    size_t nsvc = 10000, nmem = 10, nreg = 20;
    struct cm_conf *conf = NULL;
    struct cm_state *docs[3] = {NULL, NULL, NULL};
    struct cm_merged *merged = NULL;
    struct dns_fed *fed = NULL;
    char err[CM_CONF_ERR_MAX];
    json_t *cj;
    char *text;
    double t0, t1, c0, c1;
    int rc = 1;

    int a = 1;
    bool delta_only = false;

    for (; a < argc && strncmp(argv[a], "--", 2) == 0; a++) {
        if (strcmp(argv[a], "--pushes") == 0 && a + 1 < argc &&
            arg_count(argv[a + 1], 100000, &bench_pushes))
            a++;
        else if (strcmp(argv[a], "--delta-only") == 0)
            delta_only = true;
        else if (strcmp(argv[a], "--each") == 0)
            bench_each = true;
        else
            break;
    }
    if (a < argc && strncmp(argv[a], "--", 2) == 0)
        argc = -1; /* an unknown option */
    if (argc < 0 || (a < argc && !arg_count(argv[a], 1000000, &nsvc)) ||
        (a + 1 < argc && !arg_count(argv[a + 1], 1000, &nmem)) ||
        (a + 2 < argc && !arg_count(argv[a + 2], 200, &nreg))) {
        fprintf(stderr,
                "usage: %s [--pushes N] [--delta-only] [--each] [services [members [regions]]]\n",
                argv[0] != NULL ? argv[0] : "fed_build_bench");
        return 2;
    }
    cj = make_conf(nsvc, nmem, nreg);
    text = json_dumps(cj, JSON_COMPACT);
    json_decref(cj);
    if (text == NULL || cm_conf_load_string("bench.json", text, &conf, err, sizeof(err)) != 0) {
        fprintf(stderr, "conf: %s\n", err);
        goto out;
    }
    for (size_t v = 0; v < 3 && v < nreg; v++) {
        json_t *sj = make_state(conf, nsvc, v);
        if (v == 0) {
            /* For context: what parsing one vantage's document costs. */
            char *doc = json_dumps(sj, JSON_COMPACT);
            struct cm_state *st = NULL;
            double p0 = now_s(CLOCK_THREAD_CPUTIME_ID);
            if (doc != NULL &&
                cm_state_parse(doc, strlen(doc), NULL, &st, err, sizeof(err)) == CM_OK)
                printf("state document parse (context): %zu KiB, cpu %.3f ms\n", strlen(doc) / 1024,
                       (now_s(CLOCK_THREAD_CPUTIME_ID) - p0) * 1e3);
            cm_state_free(st);
            free(doc);
        }
        if (cm_state_from_json(sj, NULL, &docs[v], err, sizeof(err)) != CM_OK) {
            fprintf(stderr, "state: %s\n", err);
            json_decref(sj);
            goto out;
        }
        json_decref(sj);
    }
    if (delta_only)
        goto delta;
    if (cm_merged_build((const struct cm_state *const *)docs, nreg < 3 ? nreg : 3, conf, &merged) !=
        CM_OK)
        goto out;
    t0 = now_s(CLOCK_MONOTONIC);
    c0 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    if (dns_fed_build(conf, merged, NULL, &fed, err, sizeof(err)) != CM_OK) {
        fprintf(stderr, "build: %s\n", err);
        goto out;
    }
    t1 = now_s(CLOCK_MONOTONIC);
    c1 = now_s(CLOCK_PROCESS_CPUTIME_ID);
    printf("dns_fed_build: %zu services x %zu members x %zu regions: %.3f s (cpu %.3f s), %zu "
           "names\n",
           nsvc, nmem, nreg, t1 - t0, c1 - c0, dns_fed_name_count(fed));
    {
        uint8_t wire[256];
        size_t len = 0;
        const char *labels[] = {"svc7", "ns7", "bench", "svc", "fed", "example", "test"};
        struct dns_fed_answer ans;
        uint64_t hits = 0, iters = 5000000;
        for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
            wire[len++] = (uint8_t)strlen(labels[i]);
            memcpy(wire + len, labels[i], strlen(labels[i]));
            len += strlen(labels[i]);
        }
        wire[len++] = 0;
        t0 = now_s(CLOCK_MONOTONIC);
        for (uint64_t i = 0; i < iters; i++)
            hits += dns_fed_lookup(fed, wire, len, 1, (unsigned)(i % nreg), (uint32_t)i, &ans) ==
                    DNS_FED_NAME;
        t1 = now_s(CLOCK_MONOTONIC);
        printf("dns_fed_lookup: %.1f ns per lookup (%" PRIu64 " hits)\n",
               (t1 - t0) * 1e9 / (double)iters, hits);
    }
    if (bench_views(conf, docs, nreg < 3 ? nreg : 3) != CM_OK)
        goto out;
delta:
    if (bench_delta(conf, docs, nreg < 3 ? nreg : 3) != CM_OK)
        goto out;
    rc = 0;
out:
    free(text);
    dns_fed_free(fed);
    cm_merged_free(merged);
    for (size_t v = 0; v < 3; v++)
        cm_state_free(docs[v]);
    cm_conf_unref(conf);
    return rc;
}
