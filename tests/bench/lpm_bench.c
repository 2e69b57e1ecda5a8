/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lpm_bench.c -- one longest-prefix lookup on the GeoIP table: the trie walk
 * (cm_lpm_lookup_trie, what every lookup was before the direct table) against
 * cm_lpm_lookup (the IPv4 direct table when compact built one), same table,
 * same clients.
 *
 *   perl tests/geoip/write_mmdb.pl --bench 1000000 /tmp/geo-1m.mmdb
 *   lpm_bench /tmp/geo-1m.mmdb [lookups]
 *
 * Cold: a client from a random /24 of the database each time (4 M clients
 * over the database's 1 M /24s: the table is far larger than L2). Warm: the same 1,000 /24s over
 * and over. Each lookup's address depends on the previous result, so the figure is latency (one
 * query's wait), not throughput. Cache misses per lookup come from callgrind, one run function at
 * a time:
 *
 *   valgrind --tool=callgrind --cache-sim=yes --toggle-collect=run_trie_cold \
 *       lpm_bench FILE 200000
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_lpm.h"
#include "dnsd/dns_geo.h"

static const char CONF[] = "{\"federation\": \"f\", \"zone\": \"fed.example.test\","
                           " \"regions\": {\"us-east-1\": {\"location\": [38.9, -77.0]},"
                           "              \"eu-west-1\": {\"location\": [53.3, -6.3]}},"
                           " \"members\": {}, \"client_networks\": [],"
                           " \"dnsd\": {\"region\": \"us-east-1\", \"zone_file\": \"unused\"}}";

typedef bool lookup_fn(const struct cm_lpm *lpm, int family, const uint8_t *addr,
                       unsigned addr_bits, struct cm_lpm_result *res);

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* @n lookups of 32-bit sources from @addrs (@mask + 1 of them, 4 bytes each). */
static unsigned run(lookup_fn *fn, const struct cm_lpm *lpm, const uint8_t *addrs, size_t mask,
                    size_t n)
{
    struct cm_lpm_result res = {0};
    unsigned sink = 0;
    size_t j = 0;

    for (size_t i = 0; i < n; i++) {
        /* scope_len <= 32 always: the next address waits for this result */
        j = (j + 1 + (res.scope_len > 200)) & mask;
        fn(lpm, AF_INET, addrs + 4 * j, 32, &res);
        sink += res.value;
    }
    return sink;
}

/* Separate functions so that callgrind can count each alone. */
__attribute__((noinline)) static unsigned run_trie_cold(const struct cm_lpm *lpm, const uint8_t *a,
                                                        size_t m, size_t n)
{
    return run(cm_lpm_lookup_trie, lpm, a, m, n);
}

__attribute__((noinline)) static unsigned run_direct_cold(const struct cm_lpm *lpm,
                                                          const uint8_t *a, size_t m, size_t n)
{
    return run(cm_lpm_lookup, lpm, a, m, n);
}

__attribute__((noinline)) static unsigned run_trie_warm(const struct cm_lpm *lpm, const uint8_t *a,
                                                        size_t m, size_t n)
{
    return run(cm_lpm_lookup_trie, lpm, a, m, n);
}

__attribute__((noinline)) static unsigned run_direct_warm(const struct cm_lpm *lpm,
                                                          const uint8_t *a, size_t m, size_t n)
{
    return run(cm_lpm_lookup, lpm, a, m, n);
}

typedef unsigned run_fn(const struct cm_lpm *lpm, const uint8_t *a, size_t m, size_t n);

static void measure(const char *name, run_fn *fn, const struct cm_lpm *lpm, const uint8_t *a,
                    size_t mask, size_t n)
{
    double t0 = now_ns();
    unsigned sink = fn(lpm, a, mask, n);

    printf("%-12s %6.1f ns per lookup (sink %u)\n", name, (now_ns() - t0) / (double)n, sink & 1);
}

int main(int argc, char **argv)
{
    struct cm_conf *conf = NULL;
    struct dns_geodb *db = NULL;
    struct dns_geo *geo = NULL;
    size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 2000000, cold = 1u << 22;
    size_t nets, recs, bytes;
    uint64_t load_us;
    char err[1024];
    uint8_t *addrs;
    uint64_t s = 0x9e3779b97f4a7c15ull;

    if (argc < 2) {
        fprintf(stderr, "usage: lpm_bench FILE.mmdb [lookups]\n");
        return 2;
    }
    if (cm_conf_load_string("bench.json", CONF, &conf, err, sizeof(err)) != CM_OK ||
        dns_geodb_open(argv[1], &db, err, sizeof(err)) != CM_OK ||
        dns_geo_build(conf, db, &geo, err, sizeof(err)) != CM_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("table: %.1f MiB, direct table: %u-bit entries (0: none)\n",
           (double)cm_lpm_memory(geo->lpm) / 1048576.0, cm_lpm_direct_bits(geo->lpm));
    addrs = malloc(4 * cold);
    if (addrs == NULL)
        return 1;
    /* clients in the bench database's N /24s from 1.0.0.0 (it holds N + N/8 networks) */
    dns_geodb_stats(db, &nets, &recs, &bytes, &load_us);
    nets = nets / 9 * 8;
    for (size_t i = 0; i < cold; i++) {
        uint64_t r;
        uint32_t a;

        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        r = s * 2685821657736338717ull;
        a = (1u << 24) + (uint32_t)((r >> 32) % nets) * 256 + (uint32_t)(r & 255);
        addrs[4 * i] = (uint8_t)(a >> 24);
        addrs[4 * i + 1] = (uint8_t)(a >> 16);
        addrs[4 * i + 2] = (uint8_t)(a >> 8);
        addrs[4 * i + 3] = (uint8_t)a;
    }
    measure("trie cold", run_trie_cold, geo->lpm, addrs, cold - 1, n);
    measure("direct cold", run_direct_cold, geo->lpm, addrs, cold - 1, n);
    measure("trie warm", run_trie_warm, geo->lpm, addrs, 1023, n);
    measure("direct warm", run_direct_warm, geo->lpm, addrs, 1023, n);
    free(addrs);
    dns_geo_unref(geo);
    dns_geodb_unref(db);
    cm_conf_unref(conf);
    return 0;
}
