/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fed_build_bench.c -- times dns_fed_build() on a large synthetic federation:
 * by default 10,000 services x 10 members x 20 regions (one zone each), three
 * vantages reporting every member with measured RTTs. The configuration loader
 * accepts at most 4096 services; the others are discovered (state only).
 *
 *   fed_build_bench [services [members [regions]]]
 *
 * Prints the build time in seconds and the table size, then a lookup rate.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_state.h"
#include "common/cm_str.h"
#include "dnsd/dns_fed.h"

#define BENCH_CONF_SERVICES 4096

static double now_s(clockid_t clk)
{
    struct timespec ts;

    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
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

    if ((argc > 1 && !arg_count(argv[1], 1000000, &nsvc)) ||
        (argc > 2 && !arg_count(argv[2], 1000, &nmem)) ||
        (argc > 3 && !arg_count(argv[3], 200, &nreg))) {
        fprintf(stderr, "usage: %s [services [members [regions]]]\n", argv[0]);
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
        if (cm_state_from_json(sj, NULL, &docs[v], err, sizeof(err)) != CM_OK) {
            fprintf(stderr, "state: %s\n", err);
            json_decref(sj);
            goto out;
        }
        json_decref(sj);
    }
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
