/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_dns_geo.c -- the GeoIP compile step and the nearest-region math.
 * Databases are written here with tests/geoip/write_mmdb.pl (Debian's
 * libmaxmind-db-writer-perl); nothing is downloaded.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_lpm.h"
#include "dnsd/dns_geo.h"
#include "dnsd/dns_query.h"
#include "dnsd/dns_view.h"

/* ---- nearest-region math ------------------------------------------------------ */

static void test_distance_table(void **state)
{
    static const struct {
        double lat1, lon1, lat2, lon2, km, tol;
    } cases[] = {
        {0, 0, 0, 1, 111.2, 0.1},               /* one degree on the equator */
        {0, 179, 0, -179, 222.4, 0.2},          /* across the antimeridian: short way */
        {0, -179.5, 0, 179.5, 111.2, 0.1},      /* the other way round */
        {90, 0, 90, 123, 0, 0.001},             /* the north pole: longitude is moot */
        {89, 0, 89, 180, 222.4, 0.2},           /* over the pole */
        {-90, 0, 90, 0, 20015.1, 0.5},          /* pole to pole */
        {0, 0, 0, 180, 20015.1, 0.5},           /* antipodes on the equator */
        {35.68, 139.69, 34.69, 135.50, 397, 3}, /* Tokyo - Osaka */
        {51.5, -0.13, 40.71, -74.0, 5570, 10},  /* London - New York */
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        double d = dns_geo_distance_km(cases[i].lat1, cases[i].lon1, cases[i].lat2, cases[i].lon2);
        if (d < cases[i].km - cases[i].tol || d > cases[i].km + cases[i].tol)
            fail_msg("case %zu: %.3f km, want %.3f +- %.3f", i, d, cases[i].km, cases[i].tol);
    }
}

static const char NEAR_CONF[] =
    "{\"federation\": \"f\", \"zone\": \"fed.example.test\","
    " \"regions\": {\"east\": {\"location\": [0, 179]},"
    "              \"west\": {\"location\": [0, 170]},"
    "              \"north\": {\"location\": [89.5, 0], \"bias_km\": %u},"
    "              \"plain\": {}},"
    " \"members\": {},"
    " \"dnsd\": {\"region\": \"plain\", \"zone_file\": \"unused\"}}";

static void test_nearest_table(void **state)
{
    static const struct {
        unsigned bias;
        double lat, lon;
        const char *want;
    } cases[] = {
        {0, 0, -179, "east"},    /* 2 degrees across the antimeridian beats 11 the other way */
        {0, 0, 172, "west"},     /* 2 degrees from west, 7 from east */
        {0, 90, 77, "north"},    /* the pole: 55 km from north whatever the longitude */
        {0, 80, 179, "north"},   /* 1056 km from north, 8896 from east */
        {0, 45, 179, "east"},    /* 5004 km from east, 4951 from north */
        {200, 45, 179, "north"}, /* bias_km 200 draws it to north */
        {0, -45, 179, "east"},
    };
    char text[1024];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cm_conf *conf = NULL;
        char err[512];
        size_t region = 99;
        double km = -1;

        snprintf(text, sizeof(text), NEAR_CONF, cases[i].bias);
        if (cm_conf_load_string("near.json", text, &conf, err, sizeof(err)) != CM_OK)
            fail_msg("conf: %s", err);
        assert_true(dns_geo_nearest(conf, cases[i].lat, cases[i].lon, &region, &km));
        if (strcmp(conf->regions[region].name, cases[i].want) != 0)
            fail_msg("case %zu: %s (%.0f km), want %s", i, conf->regions[region].name, km,
                     cases[i].want);
        cm_conf_unref(conf);
    }
}

/* A SIGHUP keeps the table only when nothing it was built from changed. */
static void test_conf_equal(void **state)
{
    struct cm_conf *a = NULL, *b = NULL, *c = NULL;
    char text[1024], err[512];

    (void)state;
    snprintf(text, sizeof(text), NEAR_CONF, 0u);
    assert_int_equal(cm_conf_load_string("a.json", text, &a, err, sizeof(err)), CM_OK);
    assert_int_equal(cm_conf_load_string("b.json", text, &b, err, sizeof(err)), CM_OK);
    snprintf(text, sizeof(text), NEAR_CONF, 1u);
    assert_int_equal(cm_conf_load_string("c.json", text, &c, err, sizeof(err)), CM_OK);
    assert_true(dns_geo_conf_equal(a, b));
    assert_false(dns_geo_conf_equal(a, c)); /* bias_km 0 -> 1 */
    cm_conf_unref(a);
    cm_conf_unref(b);
    cm_conf_unref(c);
}

/* ---- the compile step ------------------------------------------------------------ */

/* Networks: one nested in another, one over a client network, one holding a
 * client network, IPv6, an IPv4-mapped range, coordinates only. */
static const char SPEC[] =
    "{\"ip_version\": 6, \"alias_ipv6_to_ipv4\": false, \"networks\": ["
    " {\"cidr\": \"203.0.112.0/20\", \"country\": \"JP\", \"continent\": \"AS\","
    "  \"subdivisions\": [\"13\"], \"location\": [35.68, 139.69]},"
    " {\"cidr\": \"203.0.113.0/24\", \"country\": \"KR\", \"continent\": \"AS\","
    "  \"location\": [37.56, 126.97]},"
    " {\"cidr\": \"192.0.2.0/24\", \"country\": \"US\", \"continent\": \"NA\","
    "  \"subdivisions\": [\"CA\"], \"location\": [37.4, -122.0]},"
    " {\"cidr\": \"192.0.3.0/24\", \"country\": \"US\", \"continent\": \"NA\","
    "  \"subdivisions\": [\"NY\"], \"location\": [40.7, -74.0]},"
    " {\"cidr\": \"198.51.100.0/24\", \"country\": \"FR\", \"continent\": \"EU\"},"
    " {\"cidr\": \"100.64.0.0/16\", \"country\": \"BR\", \"continent\": \"SA\","
    "  \"location\": [-23.5, -46.6]},"
    " {\"cidr\": \"10.0.0.0/8\", \"country\": \"JP\", \"continent\": \"AS\"},"
    " {\"cidr\": \"10.2.5.0/24\", \"country\": \"DE\", \"continent\": \"EU\"},"
    " {\"cidr\": \"2001:db8:1::/48\", \"country\": \"DE\", \"continent\": \"EU\"},"
    " {\"cidr\": \"2001:db8:2::/48\", \"location\": [-33.9, 151.2]},"
    " {\"cidr\": \"::ffff:198.18.0.0/112\", \"country\": \"NZ\", \"continent\": \"OC\","
    "  \"location\": [-36.85, 174.76]},"
    " {\"cidr\": \"172.16.0.0/12\", \"country\": \"ZZ\"}"
    "]}";

static const char GEO_CONF[] =
    "{\"federation\": \"f\", \"zone\": \"fed.example.test\","
    " \"regions\": {\"us-east-1\": {\"location\": [38.9, -77.0]},"
    "              \"us-west-1\": {\"location\": [37.4, -122.0]},"
    "              \"eu-west-1\": {\"location\": [53.3, -6.3]},"
    "              \"ap-northeast-1\": {\"location\": [35.7, 139.7]},"
    "              \"ap-southeast-2\": {\"location\": [-33.9, 151.2]},"
    "              \"sa-east-1\": {\"location\": [-23.5, -46.6]}},"
    " \"members\": {},"
    " \"client_networks\": [{\"cidr\": \"10.1.0.0/16\", \"region\": \"us-east-1\"},"
    "                       {\"cidr\": \"10.2.0.0/16\", \"region\": \"eu-west-1\"}],"
    " \"dnsd\": {\"region\": \"us-east-1\", \"zone_file\": \"unused\","
    "          \"geoip\": {\"path\": \"%s\"},"
    "          \"geo_map\": {\"JP\": \"ap-northeast-1\", \"KR\": \"ap-northeast-1\","
    "                      \"US\": \"us-east-1\", \"US-CA\": \"us-west-1\","
    "                      \"EU\": \"eu-west-1\"}}}";

struct gfix {
    char dir[64];
    char db_path[128];
    struct cm_conf *conf;
    struct dns_geodb *db;
    struct dns_geo *geo;
    struct dns_view view;
};

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static int write_db(const char *spec_path, const char *out)
{
    char cmd[1024];

    snprintf(cmd, sizeof(cmd), "perl %s/tests/geoip/write_mmdb.pl %s %s", FEDGSLB_SOURCE_DIR,
             spec_path, out);
    return system(cmd);
}

static int setup(void **state)
{
    struct gfix *f = calloc(1, sizeof(*f));
    char spec[128], text[4096], err[512];

    snprintf(f->dir, sizeof(f->dir), "/tmp/test_dns_geo.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(spec, sizeof(spec), "%s/spec.json", f->dir);
    snprintf(f->db_path, sizeof(f->db_path), "%s/test.mmdb", f->dir);
    write_file(spec, SPEC);
    if (write_db(spec, f->db_path) != 0)
        return -1;
    snprintf(text, sizeof(text), GEO_CONF, f->db_path);
    if (cm_conf_load_string("geo.json", text, &f->conf, err, sizeof(err)) != CM_OK) {
        fprintf(stderr, "conf: %s\n", err);
        return -1;
    }
    if (dns_geodb_open(f->db_path, &f->db, err, sizeof(err)) != CM_OK ||
        dns_geo_build(f->conf, f->db, &f->geo, err, sizeof(err)) != CM_OK) {
        fprintf(stderr, "geo: %s\n", err);
        return -1;
    }
    f->view.conf = f->conf;
    f->view.geo = f->geo;
    f->view.lpm = f->geo->lpm;
    f->view.default_region = (unsigned)f->conf->dnsd.region;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct gfix *f = *state;
    char cmd[128];

    dns_geo_unref(f->geo);
    dns_geodb_unref(f->db);
    cm_conf_unref(f->conf);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* Locates @ip/@bits and checks region, source, scope and the explanation. */
static void expect(const struct gfix *f, const char *ip, unsigned bits, const char *region,
                   enum dns_place_source source, unsigned scope, const char *text)
{
    uint8_t a[16];
    int fam = strchr(ip, ':') != NULL ? AF_INET6 : AF_INET;
    struct dns_client_loc loc;
    char why[256];

    assert_int_equal(inet_pton(fam, ip, a), 1);
    memset(&loc, 0, sizeof(loc));
    dns_query_locate(&f->view, fam, a, bits, true, &loc);
    if (strcmp(f->conf->regions[loc.region].name, region) != 0 || loc.source != source ||
        loc.region_scope != scope)
        fail_msg("%s/%u: %s %s scope %u, want %s %s scope %u", ip, bits,
                 f->conf->regions[loc.region].name, dns_place_source_name(loc.source),
                 loc.region_scope, region, dns_place_source_name(source), scope);
    if (text == NULL)
        return;
    if (fam == AF_INET6 && bits >= 96 && IN6_IS_ADDR_V4MAPPED((struct in6_addr *)(void *)a))
        dns_geo_describe(f->geo, AF_INET, a + 12, loc.matched_len, loc.value, why, sizeof(why));
    else
        dns_geo_describe(f->geo, fam, a, loc.matched_len, loc.value, why, sizeof(why));
    if (loc.source == DNS_PLACE_DEFAULT)
        snprintf(why, sizeof(why), "default region");
    if (strcmp(why, text) != 0)
        fail_msg("%s/%u: \"%s\", want \"%s\"", ip, bits, why, text);
}

static void test_compile_placement(void **state)
{
    struct gfix *f = *state;

    /* nested: the /24 inside the /20 has its own country and prefix */
    expect(f, "203.0.113.7", 32, "ap-northeast-1", DNS_PLACE_GEO_MAP, 24,
           "GeoIP KR 203.0.113.0/24 -> ap-northeast-1 (geo_map)");
    /* the /20 around it: split by the database into /24, /23, /22, /21 */
    expect(f, "203.0.120.1", 32, "ap-northeast-1", DNS_PLACE_GEO_MAP, 21,
           "GeoIP JP 203.0.120.0/21 -> ap-northeast-1 (geo_map)");
    expect(f, "203.0.114.1", 32, "ap-northeast-1", DNS_PLACE_GEO_MAP, 23, NULL);
    /* subdivision beats country: US-CA -> us-west-1, US-NY -> US -> us-east-1 */
    expect(f, "192.0.2.1", 32, "us-west-1", DNS_PLACE_GEO_MAP, 24,
           "GeoIP US-CA 192.0.2.0/24 -> us-west-1 (geo_map)");
    expect(f, "192.0.3.1", 32, "us-east-1", DNS_PLACE_GEO_MAP, 24,
           "GeoIP US 192.0.3.0/24 -> us-east-1 (geo_map)");
    /* continent: FR is not mapped, EU is */
    expect(f, "198.51.100.9", 32, "eu-west-1", DNS_PLACE_GEO_MAP, 24,
           "GeoIP EU 198.51.100.0/24 -> eu-west-1 (geo_map)");
    /* coordinates only: nearest */
    expect(f, "100.64.3.4", 32, "sa-east-1", DNS_PLACE_NEAREST, 16,
           "GeoIP -23.5,-46.6 100.64.0.0/16 -> sa-east-1 (nearest, 0 km)");
    expect(f, "2001:db8:2::1", 128, "ap-southeast-2", DNS_PLACE_NEAREST, 48, NULL);
    /* IPv6 by continent */
    expect(f, "2001:db8:1:ff::1", 56, "eu-west-1", DNS_PLACE_GEO_MAP, 48,
           "GeoIP EU 2001:db8:1::/48 -> eu-west-1 (geo_map)");
    /* client_networks wins: inside the database's 10/8, and over its 10.2.5/24 */
    expect(f, "10.1.2.3", 32, "us-east-1", DNS_PLACE_CLIENT_NETWORKS, 16,
           "client_networks 10.1.0.0/16");
    expect(f, "10.2.5.1", 32, "eu-west-1", DNS_PLACE_CLIENT_NETWORKS, 16,
           "client_networks 10.2.0.0/16");
    /* the database split its 10/8 around 10.2.5.0/24: 10.8.0.0/13 */
    expect(f, "10.9.9.9", 32, "ap-northeast-1", DNS_PLACE_GEO_MAP, 13,
           "GeoIP JP 10.8.0.0/13 -> ap-northeast-1 (geo_map)");
    /* ZZ: no map, no coordinates: default region, and not in the table, so
     * the scope is that of the default answer: nothing in 128.0.0.0/2 is placed */
    expect(f, "172.16.1.1", 32, "us-east-1", DNS_PLACE_DEFAULT, 2, "default region");
    /* the database's ::ffff:198.18.0.0/112 is 198.18.0.0/16; as IPv4 and IPv4-mapped */
    expect(f, "198.18.7.7", 32, "ap-southeast-2", DNS_PLACE_NEAREST, 16, NULL);
    expect(f, "::ffff:198.18.7.7", 128, "ap-southeast-2", DNS_PLACE_NEAREST, 96 + 16,
           "GeoIP -36.9,174.8 198.18.0.0/16 -> ap-southeast-2 (nearest, 2156 km)");
    /* a source shorter than the networks inside it: cm_lpm's covering rule,
     * scope = the longest prefix inside (never claims the /20 for one region) */
    expect(f, "203.0.112.0", 20, "us-east-1", DNS_PLACE_DEFAULT, 24, NULL);
    /* a source longer than the network: the database's prefix */
    expect(f, "203.0.113.0", 24, "ap-northeast-1", DNS_PLACE_GEO_MAP, 24, NULL);
    /* outside every network */
    expect(f, "8.8.8.8", 32, "us-east-1", DNS_PLACE_DEFAULT, 7, NULL); /* 8/7 vs 10/8 */
    /* inside 10.2.0.0/16: 10.2.5.0/24 and the 8 pieces of 10/8 around it */
    assert_int_equal(f->geo->covered, 9);
}

/* The same placements, scopes and explanations through the compiled forms a
 * full-size database gets: the IPv4 direct table (16-bit entries: the
 * places fold into their regions), with blocks, then without any (the /24s
 * holding longer networks ask the trie). */
static void test_compile_placement_direct(void **state)
{
    struct gfix *f = *state;

    uint8_t a[4] = {203, 0, 113, 7};
    struct dns_client_loc loc;

    cm_lpm_compact_with(f->geo->lpm, 0, CM_LPM_DIRECT_MAX_BLOCKS, true);
    assert_int_equal(cm_lpm_direct_bits(f->geo->lpm), 16);
    test_compile_placement(state);
    /* the table holds regions, not places: one result per region and source */
    dns_query_locate(&f->view, AF_INET, a, 32, true, &loc);
    assert_int_equal(loc.value, DNS_GEO_PLACE_BIT | DNS_GEO_REGION_BIT |
                                    (uint32_t)DNS_PLACE_GEO_MAP << 16 | loc.region);
    cm_lpm_compact_with(f->geo->lpm, 0, 0, true);
    assert_int_equal(cm_lpm_direct_bits(f->geo->lpm), 16);
    test_compile_placement(state);
}

/* A database that does not open: the reason names the file. */
static void test_open_errors(void **state)
{
    struct gfix *f = *state;
    struct dns_geodb *db = NULL;
    char path[160], err[512];
    FILE *in, *out;
    char buf[4096];
    size_t n;

    snprintf(path, sizeof(path), "%s/missing.mmdb", f->dir);
    assert_int_not_equal(dns_geodb_open(path, &db, err, sizeof(err)), CM_OK);
    assert_non_null(strstr(err, "missing.mmdb"));
    /* truncated: half of a real file */
    snprintf(path, sizeof(path), "%s/half.mmdb", f->dir);
    in = fopen(f->db_path, "rb");
    out = fopen(path, "wb");
    assert_non_null(in);
    assert_non_null(out);
    n = fread(buf, 1, sizeof(buf), in);
    assert_true(fwrite(buf, 1, n / 2, out) == n / 2);
    fclose(in);
    fclose(out);
    assert_int_not_equal(dns_geodb_open(path, &db, err, sizeof(err)), CM_OK);
    assert_non_null(strstr(err, "half.mmdb"));
    assert_null(db);
}

/* The IPv4 subtree's aliases (::ffff:0:0/96, 2002::/16) are not walked twice. */
static void test_aliases_skipped(void **state)
{
    struct gfix *f = *state;
    struct dns_geodb *db = NULL;
    char spec[160], path[160], err[512];
    size_t nets, recs, bytes;
    uint64_t us;

    snprintf(spec, sizeof(spec), "%s/alias.json", f->dir);
    snprintf(path, sizeof(path), "%s/alias.mmdb", f->dir);
    write_file(spec, "{\"ip_version\": 6, \"alias_ipv6_to_ipv4\": true, \"networks\": ["
                     " {\"cidr\": \"203.0.113.0/24\", \"country\": \"KR\"},"
                     " {\"cidr\": \"2001:db8::/32\", \"country\": \"DE\"}]}");
    assert_int_equal(write_db(spec, path), 0);
    if (dns_geodb_open(path, &db, err, sizeof(err)) != CM_OK)
        fail_msg("%s", err);
    dns_geodb_stats(db, &nets, &recs, &bytes, &us);
    assert_int_equal(nets, 2);
    dns_geodb_unref(db);
}

static size_t read_all(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    size_t n;

    assert_non_null(f);
    n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void write_all(const char *path, const uint8_t *buf, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_true(fwrite(buf, 1, len, f) == len);
    assert_int_equal(fclose(f), 0);
}

/* The metadata's node_count (a uint32 after the "node_count" key). */
static uint32_t node_count_of(const uint8_t *buf, size_t len)
{
    static const char key[] = "node_count";

    for (size_t i = 0; i + sizeof(key) + 5 < len; i++) {
        if (memcmp(buf + i, key, sizeof(key) - 1) != 0)
            continue;
        const uint8_t *v = buf + i + sizeof(key) - 1;
        unsigned size = v[0] & 0x1F; /* type 6 (uint32) in the top 3 bits, size below */
        uint32_t n = 0;
        for (unsigned k = 0; k < size; k++)
            n = n << 8 | v[1 + k];
        return n;
    }
    fail_msg("no node_count in the metadata");
    return 0;
}

/* Node @n's two 28-bit records (record_size 28: 7 bytes a node). */
static void set_node28(uint8_t *buf, uint32_t n, uint32_t left, uint32_t right)
{
    uint8_t *b = buf + 7 * n;

    b[0] = (uint8_t)(left >> 16);
    b[1] = (uint8_t)(left >> 8);
    b[2] = (uint8_t)left;
    b[3] = (uint8_t)(((left >> 20) & 0xF0) | ((right >> 24) & 0x0F));
    b[4] = (uint8_t)(right >> 16);
    b[5] = (uint8_t)(right >> 8);
    b[6] = (uint8_t)right;
}

/* A crafted file must not crash or hang the walk: a node pointing to itself
 * on both sides (2^127 paths without the visit cap), then random byte flips
 * anywhere in the file. Every open either fails with a reason or yields a
 * table that builds. */
static void test_hostile_files(void **state)
{
    struct gfix *f = *state;
    static uint8_t orig[65536], buf[65536];
    size_t len = read_all(f->db_path, orig, sizeof(orig));
    char path[160], err[512];
    unsigned seed = 12345;
    uint32_t nodes = node_count_of(orig, len);

    snprintf(path, sizeof(path), "%s/hostile.mmdb", f->dir);
    assert_true(nodes > 63);
    memcpy(buf, orig, len);
    set_node28(buf, 0, 1, 2); /* root: left to 1, right to 2 */
    set_node28(buf, 1, 1, 1); /* 1 loops, and is where 96 zero bits end: an alias, skipped */
    set_node28(buf, 2, 2, 2); /* 2 loops: the depth bound stops it */
    write_all(path, buf, len);
    struct dns_geodb *db = NULL;
    assert_int_not_equal(dns_geodb_open(path, &db, err, sizeof(err)), CM_OK);
    assert_non_null(strstr(err, "deeper than the address size"));
    /* a ladder: 2 -> 3 -> ... -> 62 by both records, then empty: no cycle, no
     * path deeper than 63, but 2^60 paths: only the visit cap stops it */
    for (uint32_t n = 2; n < 62; n++)
        set_node28(buf, n, n + 1, n + 1);
    set_node28(buf, 62, nodes, nodes);
    write_all(path, buf, len);
    assert_int_not_equal(dns_geodb_open(path, &db, err, sizeof(err)), CM_OK);
    assert_non_null(strstr(err, "hostile.mmdb: search tree is not a tree"));
    for (int i = 0; i < 400; i++) {
        struct dns_geo *geo = NULL;
        memcpy(buf, orig, len);
        for (int k = 0; k < 1 + i % 4; k++) {
            seed = seed * 1103515245u + 12345u;
            buf[(seed >> 8) % len] ^= (uint8_t)(1u << ((seed >> 4) % 8));
        }
        write_all(path, buf, len);
        db = NULL;
        if (dns_geodb_open(path, &db, err, sizeof(err)) != CM_OK)
            continue;
        assert_int_equal(dns_geo_build(f->conf, db, &geo, err, sizeof(err)), CM_OK);
        dns_geo_unref(geo);
        dns_geodb_unref(db);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distance_table),
        cmocka_unit_test(test_nearest_table),
        cmocka_unit_test(test_conf_equal),
        cmocka_unit_test_setup_teardown(test_compile_placement, setup, teardown),
        cmocka_unit_test_setup_teardown(test_compile_placement_direct, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aliases_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile_files, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
