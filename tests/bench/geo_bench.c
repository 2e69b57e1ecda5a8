/* SPDX-License-Identifier: Apache-2.0 */
/*
 * geo_bench.c -- the GeoIP compile step on a full-size database, and the cost
 * of locating a client with and without it, in the same run.
 *
 *   perl tests/geoip/write_mmdb.pl --bench 1000000 /tmp/geo-1m.mmdb
 *   geo_bench /tmp/geo-1m.mmdb [lookups]
 *
 * Prints: open+walk time and bytes kept (dns_geodb), compile time and bytes of
 * the table (dns_geo), the RSS growth, then ns per dns_query_locate() for
 * random IPv4 clients inside the database's networks, alternating rounds
 * between a view with the database and one with client_networks only.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_lpm.h"
#include "dnsd/dns_geo.h"
#include "dnsd/dns_query.h"
#include "dnsd/dns_view.h"

static const char CONF[] =
    "{\"federation\": \"f\", \"zone\": \"fed.example.test\","
    " \"regions\": {\"us-east-1\": {\"location\": [38.9, -77.0]},"
    "              \"eu-west-1\": {\"location\": [53.3, -6.3]},"
    "              \"ap-northeast-1\": {\"location\": [35.7, 139.7]},"
    "              \"ap-southeast-2\": {\"location\": [-33.9, 151.2]},"
    "              \"sa-east-1\": {\"location\": [-23.5, -46.6]}},"
    " \"members\": {},"
    " \"client_networks\": [{\"cidr\": \"10.1.0.0/16\", \"region\": \"us-east-1\"}],"
    " \"dnsd\": {\"region\": \"us-east-1\", \"zone_file\": \"unused\","
    "          \"geo_map\": {\"AA\": \"eu-west-1\", \"EU\": \"eu-west-1\"}}}";

static double now_s(clockid_t clk)
{
    struct timespec ts;

    clock_gettime(clk, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    fclose(f);
    return kib;
}

/* CPU ns per locate over @n clients (@addrs, 4 bytes each). */
static double locate_ns(const struct dns_view *v, const uint8_t *addrs, size_t n, unsigned *sink)
{
    struct dns_client_loc loc;
    double t0 = now_s(CLOCK_PROCESS_CPUTIME_ID);

    for (size_t i = 0; i < n; i++) {
        dns_query_locate(v, AF_INET, addrs + 4 * i, 32, true, &loc);
        *sink += loc.region + loc.scope_len;
    }
    return (now_s(CLOCK_PROCESS_CPUTIME_ID) - t0) * 1e9 / (double)n;
}

int main(int argc, char **argv)
{
    struct cm_conf *conf = NULL;
    struct dns_geodb *db = NULL;
    struct dns_geo *geo = NULL, *plain = NULL;
    struct dns_view vg, vp;
    size_t nets, recs, bytes, n = argc > 2 ? strtoul(argv[2], NULL, 10) : 5000000;
    uint64_t load_us;
    char err[1024];
    double t0, with = 0, without = 0;
    long rss0 = rss_kib(), rss1, rss2;
    unsigned sink = 0;
    uint8_t *addrs;

    if (argc < 2) {
        fprintf(stderr, "usage: geo_bench FILE.mmdb [lookups]\n");
        return 2;
    }
    if (cm_conf_load_string("bench.json", CONF, &conf, err, sizeof(err)) != CM_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (dns_geodb_open(argv[1], &db, err, sizeof(err)) != CM_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    dns_geodb_stats(db, &nets, &recs, &bytes, &load_us);
    rss1 = rss_kib();
    t0 = now_s(CLOCK_MONOTONIC);
    if (dns_geo_build(conf, db, &geo, err, sizeof(err)) != CM_OK ||
        dns_geo_build(conf, NULL, &plain, err, sizeof(err)) != CM_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    rss2 = rss_kib();
    printf("database: %zu networks, %zu records, open+walk %.3f s, %.1f MiB kept "
           "(RSS +%.1f MiB)\n",
           nets, recs, (double)load_us / 1e6, (double)bytes / 1048576.0,
           (double)(rss1 - rss0) / 1024.0);
    printf("compile: %.3f s, %zu networks in the table, %zu places, table %.1f MiB "
           "(RSS +%.1f MiB)\n",
           now_s(CLOCK_MONOTONIC) - t0, geo->inserted, geo->place_count,
           (double)dns_geo_memory(geo) / 1048576.0, (double)(rss2 - rss1) / 1024.0);
    printf("compiled forms: IPv4 direct table %s, stride tables IPv4 %s, IPv6 %s\n",
           cm_lpm_direct_bits(geo->lpm) == 16   ? "yes (16-bit entries)"
           : cm_lpm_direct_bits(geo->lpm) == 32 ? "yes (32-bit entries)"
                                                : "no",
           cm_lpm_has_stride(geo->lpm, AF_INET) ? "yes" : "no",
           cm_lpm_has_stride(geo->lpm, AF_INET6) ? "yes" : "no");

    /* random clients in 1.0.0.0 .. 1.0.0.0 + nets/24s (the bench database's /24s) */
    addrs = malloc(4 * n);
    if (addrs == NULL)
        return 1;
    srand(42);
    for (size_t i = 0; i < n; i++) {
        uint32_t a = (1u << 24) + (uint32_t)((double)rand() / RAND_MAX * 0xFFFFFF * 0.9);
        addrs[4 * i] = (uint8_t)(a >> 24);
        addrs[4 * i + 1] = (uint8_t)(a >> 16);
        addrs[4 * i + 2] = (uint8_t)(a >> 8);
        addrs[4 * i + 3] = (uint8_t)a;
    }
    memset(&vg, 0, sizeof(vg));
    vg.conf = conf;
    vg.geo = geo;
    vg.lpm = geo->lpm;
    vp = vg;
    vp.geo = plain;
    vp.lpm = plain->lpm;
    for (int round = 0; round < 6; round++) {
        with += locate_ns(&vg, addrs, n, &sink);
        without += locate_ns(&vp, addrs, n, &sink);
    }
    printf("locate: %.1f ns with the database, %.1f ns without (%zu random clients x 6 "
           "rounds, sink %u)\n",
           with / 6, without / 6, n, sink & 1);
    free(addrs);
    dns_geo_unref(geo);
    dns_geo_unref(plain);
    dns_geodb_unref(db);
    cm_conf_unref(conf);
    return 0;
}
