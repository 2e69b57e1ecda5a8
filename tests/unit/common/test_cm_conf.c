/* SPDX-License-Identifier: Apache-2.0 */
/* test_cm_conf.c -- the configuration loader: the example file, defaults, and
 * the exact "file: path: reason" text of every class of error. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "tests/unit/unit_text.h"

/* A small valid federation; tests add keys to it through fmt's %s. */
#define BASE                                                                                       \
    "'federation': 'f', 'zone': 'Z.Test.',"                                                        \
    "'regions': {'r1': {'zones': ['r1a', 'r1b']}, 'r2': {}},"                                      \
    "'members': {'m1': {'region': 'r1', 'zone': 'r1b'},"                                           \
    "            'm2': {'region': 'r2', 'lb': {'mode': 'proxy', 'address': '192.0.2.7'}}}"

#define SVC "'services': {'default/web': {'port': 80}}"

static int load(const char *squoted, struct cm_conf **out, char *err)
{
    char *text = unit_dq(squoted);
    int rc;

    err[0] = '\0';
    rc = cm_conf_load_string("t.json", text, out, err, CM_CONF_ERR_MAX);
    free(text);
    return rc;
}

static struct cm_conf *load_ok(const char *squoted)
{
    char err[CM_CONF_ERR_MAX];
    struct cm_conf *conf = NULL;

    if (load(squoted, &conf, err) != CM_OK)
        fail_msg("unexpected error: %s", err);
    assert_non_null(conf);
    return conf;
}

static void expect_err(const char *squoted, int code, const char *want)
{
    char err[CM_CONF_ERR_MAX];
    struct cm_conf *conf = NULL;
    int rc = load(squoted, &conf, err);

    assert_null(conf);
    assert_int_equal(rc, code);
    assert_string_equal(err, want);
}

/* Writes @content into a new temporary file; returns its owned path. */
static char *temp_file(const char *content)
{
    char *path = strdup("/tmp/test_cm_conf_XXXXXX");
    int fd;

    assert_non_null(path);
    fd = mkstemp(path);
    assert_true(fd != -1);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    return path;
}

/* The shipped example, loaded from the repository root as the daemons do. */
static struct cm_conf *load_example(void)
{
    char err[CM_CONF_ERR_MAX] = "";
    struct cm_conf *c = NULL;

    assert_int_equal(chdir(FEDGSLB_SOURCE_DIR), 0); /* paths in the file are repo-relative */
    if (cm_conf_load("conf/federation.json", &c, err, sizeof(err)) != CM_OK)
        fail_msg("%s", err);
    return c;
}

static void test_example_regions_members(void **state)
{
    struct cm_conf *c = load_example();

    (void)state;
    assert_string_equal(c->path, "conf/federation.json");
    assert_string_equal(c->federation, "myfed");
    assert_string_equal(c->zone, "fed.example.test");
    assert_int_equal(c->region_count, 3);
    assert_int_equal(cm_conf_region_index(c, "us-east-1"), 0);
    assert_int_equal(cm_conf_region_index(c, "eu-west-1"), 1);
    assert_int_equal(cm_conf_region_index(c, "ap-northeast-1"), 2);
    assert_int_equal(cm_conf_region_index(c, "nowhere"), -1);
    assert_int_equal(c->regions[0].zone_count, 2);
    assert_string_equal(c->regions[0].zones[1], "us-east-1b");

    assert_int_equal(c->member_count, 3);
    assert_int_equal(cm_conf_member_index(c, "jpn"), 2);
    assert_int_equal(c->members[2].region, 2);
    assert_int_equal(c->members[2].zone, 0);
    assert_int_equal(c->members[2].lb_mode, CM_LB_PROXY);
    assert_string_equal(c->members[2].lb_address, "198.51.100.7");
    assert_int_equal(c->members[0].lb_mode, CM_LB_NATIVE);
    assert_null(c->members[0].lb_address);
    assert_string_equal(c->members[1].kubeconfig, "conf/kubeconfig.yaml");
    assert_string_equal(c->members[1].context, "eur");
    cm_conf_unref(c);
}

static void test_example_services(void **state)
{
    struct cm_conf *c = load_example();
    int web, api, store;

    (void)state;
    web = cm_conf_service_index(c, "default/web");
    api = cm_conf_service_index(c, "default/api");
    store = cm_conf_service_index(c, "shop/store");
    assert_int_equal(web, 0);
    assert_int_equal(api, 1);
    assert_int_equal(store, 2);
    assert_int_equal(cm_conf_service_index(c, "default/nope"), -1);
    assert_string_equal(c->services[web].ns, "default");
    assert_string_equal(c->services[web].name, "web");
    assert_int_equal(c->services[web].port, 80);
    assert_int_equal(c->services[web].check.type, CM_CHECK_HTTP);
    assert_int_equal(c->services[web].check.status_min, 200);
    assert_int_equal(c->services[web].check.status_max, 399);
    assert_true(c->services[web].check.tls_verify);
    assert_int_equal(c->services[web].alias_count, 2);
    assert_string_equal(c->services[web].aliases[0], "web.fed.example.test");
    assert_int_equal(c->services[api].check.type, CM_CHECK_TCP);
    assert_string_equal(c->services[api].check.path, "/healthz"); /* default */
    assert_int_equal(c->services[api].policy.all_down, CM_ALL_DOWN_FAIL_CLOSED);
    assert_int_equal(c->services[store].check.status_max, 299);
    assert_false(c->services[store].check.tls_verify);
    assert_int_equal(c->services[store].policy.all_down, CM_ALL_DOWN_SORRY);
    assert_string_equal(c->services[store].policy.sorry_target, "sorry.fed.example.test");
    assert_int_equal(c->services[store].policy.max_answers, 8); /* default */
    cm_conf_unref(c);
}

static void test_example_networks_latency(void **state)
{
    struct cm_conf *c = load_example();
    const struct cm_conf_client_net *cn;
    char ip[INET6_ADDRSTRLEN];

    (void)state;
    assert_int_equal(c->client_network_count, 6);
    cn = &c->client_networks[0];
    assert_int_equal(cn->family, AF_INET);
    assert_int_equal(cn->prefix_len, 16);
    assert_int_equal(cn->region, 0);
    inet_ntop(AF_INET, cn->addr, ip, sizeof(ip));
    assert_string_equal(ip, "10.1.0.0");
    cn = &c->client_networks[5];
    assert_int_equal(cn->family, AF_INET6);
    assert_int_equal(cn->prefix_len, 48);
    assert_int_equal(cn->region, 2);
    inet_ntop(AF_INET6, cn->addr, ip, sizeof(ip));
    assert_string_equal(ip, "2001:db8:3::");

    assert_int_equal(cm_conf_latency(c, 0, 1), 70);
    assert_int_equal(cm_conf_latency(c, 1, 0), 70);
    assert_int_equal(cm_conf_latency(c, 2, 1), 220);
    assert_int_equal(cm_conf_latency(c, 2, 0), 150);
    assert_int_equal(cm_conf_latency(c, 1, 1), 0);
    assert_int_equal(cm_conf_latency(c, 0, 3), CM_LATENCY_UNKNOWN);
    cm_conf_unref(c);
}

static void test_example_sections(void **state)
{
    struct cm_conf *c = load_example();

    (void)state;
    assert_true(c->dnsd.present);
    assert_int_equal(c->dnsd.listen_count, 2);
    assert_int_equal(c->dnsd.listen[1].ss.ss_family, AF_INET6);
    assert_int_equal(c->dnsd.region, 0);
    assert_string_equal(c->dnsd.zone_file, "conf/fed.example.test.zone");
    assert_int_equal(c->dnsd.ttl_s, 30);
    assert_int_equal(c->dnsd.max_udp_size, 1232);
    assert_true(c->dnsd.control.enabled);
    assert_non_null(c->dnsd.control.token);
    assert_null(strchr(c->dnsd.control.token, '\n'));
    assert_true(c->health.present);
    assert_int_equal(c->health.vantage, 0);
    assert_int_equal(c->health.publish_to_count, 2);
    assert_true(c->proxy.present);
    assert_int_equal(c->proxy.listen_count, 1);
    assert_int_equal(c->proxy.listen[0].member, 2);
    assert_int_equal(c->proxy.listen[0].service, 0);
    assert_false(c->etcd.present); /* the demo pushes; the etcd demo writes its own */
    cm_conf_unref(c);
}

static void test_defaults(void **state)
{
    struct cm_conf *c;
    char ip[CM_ADDR_STRLEN];

    (void)state;
    c = load_ok("{" BASE ", " SVC ", 'dnsd': {'region': 'r2', 'zone_file': 'z'}}");
    assert_string_equal(c->zone, "z.test"); /* lowercased, trailing dot gone */
    assert_int_equal(c->members[0].zone, 1);
    assert_int_equal(c->members[1].zone, -1);
    assert_int_equal(c->services[0].check.interval_ms, 10000);
    assert_int_equal(c->services[0].check.timeout_ms, 3000);
    assert_int_equal(c->services[0].check.rise, 2);
    assert_int_equal(c->services[0].check.fall, 3);
    assert_int_equal(c->services[0].check.port, 0);
    assert_string_equal(c->services[0].check.path, "/healthz");
    assert_null(c->services[0].check.host);
    assert_int_equal(c->services[0].policy.all_down, CM_ALL_DOWN_FAIL_OPEN);
    assert_int_equal(c->services[0].policy.latency_slack_ms, 5);
    assert_int_equal(c->services[0].alias_count, 0);
    assert_int_equal(cm_conf_latency(c, 0, 1), CM_LATENCY_UNKNOWN);
    assert_int_equal(cm_conf_latency(c, 1, 1), 0);
    assert_int_equal(c->client_network_count, 0);
    assert_true(c->dnsd.present);
    assert_int_equal(c->dnsd.region, 1);
    assert_int_equal(c->dnsd.listen_count, 1);
    cm_addr_format((const struct sockaddr *)&c->dnsd.listen[0].ss, ip, sizeof(ip));
    assert_string_equal(ip, "127.0.0.1:5300");
    assert_int_equal(c->dnsd.min_ttl_s, 5);
    assert_int_equal(c->dnsd.workers, 2);
    assert_true(c->dnsd.ecs);
    assert_int_equal(c->dnsd.tcp_idle_timeout_ms, 10000);
    assert_int_equal(c->dnsd.tcp_max_conns, 1024);
    assert_false(c->dnsd.control.enabled);
    assert_false(c->health.present);
    assert_false(c->proxy.present);
    assert_false(c->etcd.present);
    cm_conf_unref(c);

    /* null means "the default" */
    c = load_ok("{" BASE ", 'services': {'a/b': {'port': 1, 'check': {'rise': null}}}}");
    assert_int_equal(c->services[0].check.rise, 2);
    cm_conf_unref(c);
}

static void test_unknown_key(void **state)
{
    (void)state;
    expect_err("{" BASE ", 'bogus': 1}", CM_ECONFIG, "t.json: bogus: unknown key");
    expect_err("{" BASE ", 'dnsd': {'lsiten': [], 'region': 'r1', 'zone_file': 'z'}}", CM_ECONFIG,
               "t.json: dnsd.lsiten: unknown key");
    expect_err("{" BASE ", 'services': {'default/web': {'port': 80, 'check': {'rize': 2}}}}",
               CM_ECONFIG, "t.json: services.default/web.check.rize: unknown key");
}

static void test_unknown_region(void **state)
{
    (void)state;
    expect_err("{'federation': 'f', 'zone': 'z.test', 'regions': {'r1': {}},"
               " 'members': {'jpn': {'region': 'ap-east-9'}}}",
               CM_ECONFIG, "t.json: members.jpn.region: unknown region \"ap-east-9\"");
    expect_err("{" BASE ", 'client_networks': [{'cidr': '10.0.0.0/8', 'region': 'r3'}]}",
               CM_ECONFIG, "t.json: client_networks[0].region: unknown region \"r3\"");
    expect_err("{" BASE ", 'health': {'vantage': 'mars'}}", CM_ECONFIG,
               "t.json: health.vantage: unknown region \"mars\"");
}

static void test_bad_zone_for_region(void **state)
{
    (void)state;
    expect_err("{'federation': 'f', 'zone': 'z.test', 'regions': {'r1': {'zones': ['r1a']},"
               " 'r2': {'zones': ['r2a']}}, 'members': {'m': {'region': 'r1', 'zone': 'r2a'}}}",
               CM_ECONFIG, "t.json: members.m.zone: zone \"r2a\" is not a zone of region \"r1\"");
    expect_err("{'federation': 'f', 'zone': 'z.test', 'regions': {'r1': {'zones': ['a', 'a']}},"
               " 'members': {}}",
               CM_ECONFIG, "t.json: regions.r1.zones[1]: duplicate zone \"a\"");
}

static void test_bad_cidr(void **state)
{
    (void)state;
    expect_err("{" BASE ", 'client_networks': [{'cidr': '10.0.0.0/33', 'region': 'r1'}]}",
               CM_ECONFIG,
               "t.json: client_networks[0].cidr: not a CIDR \"10.0.0.0/33\" (prefix length 0..32)");
    expect_err("{" BASE ", 'client_networks': [{'cidr': '10.0.0.0/8', 'region': 'r1'},"
               " {'cidr': '10.1.2.3/16', 'region': 'r2'}]}",
               CM_ECONFIG,
               "t.json: client_networks[1].cidr: host bits set in \"10.1.2.3/16\" "
               "(the network is 10.1.0.0/16)");
    expect_err("{" BASE ", 'client_networks': [{'cidr': '2001:db8:1::1/48', 'region': 'r1'}]}",
               CM_ECONFIG,
               "t.json: client_networks[0].cidr: host bits set in \"2001:db8:1::1/48\" "
               "(the network is 2001:db8:1::/48)");
    expect_err("{" BASE ", 'client_networks': [{'cidr': 'ten/8', 'region': 'r1'}]}", CM_ECONFIG,
               "t.json: client_networks[0].cidr: not a CIDR \"ten/8\"");
    expect_err("{" BASE ", 'client_networks': [{'cidr': '10.0.0.0', 'region': 'r1'}]}", CM_ECONFIG,
               "t.json: client_networks[0].cidr: not a CIDR \"10.0.0.0\"");
}

static void test_good_cidr(void **state)
{
    struct cm_conf *c;

    (void)state;
    c = load_ok("{" BASE ", 'client_networks': [{'cidr': '0.0.0.0/0', 'region': 'r1'},"
                " {'cidr': '192.0.2.128/25', 'region': 'r2'}, {'cidr': '::/0', 'region': 'r2'}]}");
    assert_int_equal(c->client_network_count, 3);
    assert_int_equal(c->client_networks[0].prefix_len, 0);
    assert_int_equal(c->client_networks[1].addr[3], 128);
    assert_int_equal(c->client_networks[1].region, 1);
    assert_int_equal(c->client_networks[2].family, AF_INET6);
    cm_conf_unref(c);
}

/* dnsd.rrl: absent = off; defaults when present; exempt CIDRs parsed; dnsd.user/group. */
static void test_dnsd_rrl_and_user(void **state)
{
    struct cm_conf *c;

    (void)state;
    c = load_ok("{" BASE ", 'dnsd': {'region': 'r1', 'zone_file': 'z'}}");
    assert_false(c->dnsd.rrl.present);
    assert_false(c->dnsd.rrl.enabled);
    assert_null(c->dnsd.user);
    assert_null(c->dnsd.group);
    cm_conf_unref(c);
    c = load_ok("{" BASE ", 'dnsd': {'region': 'r1', 'zone_file': 'z', 'user': 'nobody',"
                " 'group': 'nogroup', 'rrl': {'enabled': true,"
                " 'exempt': ['127.0.0.0/8', '2001:db8::/32']}}}");
    assert_true(c->dnsd.rrl.enabled);
    assert_int_equal(c->dnsd.rrl.responses_per_second, 20);
    assert_int_equal(c->dnsd.rrl.slip, 2);
    assert_int_equal(c->dnsd.rrl.window_s, 15);
    assert_int_equal(c->dnsd.rrl.ipv4_prefix, 24);
    assert_int_equal(c->dnsd.rrl.ipv6_prefix, 56);
    assert_int_equal(c->dnsd.rrl.table_size, 65536);
    assert_int_equal(c->dnsd.rrl.exempt_count, 2);
    assert_int_equal(c->dnsd.rrl.exempt_nets[0].family, AF_INET);
    assert_int_equal(c->dnsd.rrl.exempt_nets[0].prefix_len, 8);
    assert_int_equal(c->dnsd.rrl.exempt_nets[1].family, AF_INET6);
    assert_int_equal(c->dnsd.rrl.exempt_nets[1].prefix_len, 32);
    assert_string_equal(c->dnsd.user, "nobody");
    assert_string_equal(c->dnsd.group, "nogroup");
    cm_conf_unref(c);
    expect_err("{" BASE ", 'dnsd': {'region': 'r1', 'zone_file': 'z', 'rrl': {'exempt':"
               " ['10.0.0.1/8']}}}",
               CM_ECONFIG,
               "t.json: dnsd.rrl.exempt[0]: host bits set in \"10.0.0.1/8\" (the network is "
               "10.0.0.0/8)");
    expect_err("{" BASE ", 'dnsd': {'region': 'r1', 'zone_file': 'z', 'rrl': {'slip': 101}}}",
               CM_ECONFIG, "t.json: dnsd.rrl.slip: must be between 0 and 100");
    expect_err("{" BASE ", 'dnsd': {'region': 'r1', 'zone_file': 'z', 'rrl': {'ipv4_prefix':"
               " 33}}}",
               CM_ECONFIG, "t.json: dnsd.rrl.ipv4_prefix: must be between 8 and 32");
    expect_err("{" BASE ", 'dnsd': {'region': 'r1', 'zone_file': 'z', 'rrl': {'rate': 5}}}",
               CM_ECONFIG, "t.json: dnsd.rrl.rate: unknown key");
}

static void test_allow_addresses(void **state)
{
    struct cm_conf *c;

    (void)state;
    c = load_ok("{" BASE ", 'allow_addresses': ['127.0.0.0/8', '::1/128', '169.254.0.0/16',"
                " 'fe80::/64', '::ffff:127.0.0.0/104']}");
    assert_int_equal(c->allow_address_count, 5);
    assert_int_equal(c->allow_addresses[0].family, AF_INET);
    assert_int_equal(c->allow_addresses[0].len, 8);
    assert_int_equal(c->allow_addresses[1].family, AF_INET6);
    cm_conf_unref(c);
    c = load_ok("{" BASE "}");
    assert_int_equal(c->allow_address_count, 0);
    cm_conf_unref(c);
    expect_err("{" BASE ", 'allow_addresses': ['224.0.0.0/4']}", CM_ECONFIG,
               "t.json: allow_addresses[0]: 224.0.0.0/4 is multicast: such addresses are never "
               "allowed");
    expect_err("{" BASE ", 'allow_addresses': ['127.0.0.0/8', '0.0.0.0/8']}", CM_ECONFIG,
               "t.json: allow_addresses[1]: 0.0.0.0/8 is unspecified: such addresses are never "
               "allowed");
    expect_err("{" BASE ", 'allow_addresses': ['255.255.255.255/32']}", CM_ECONFIG,
               "t.json: allow_addresses[0]: 255.255.255.255/32 is broadcast: such addresses are "
               "never allowed");
    expect_err("{" BASE ", 'allow_addresses': ['0.0.0.0/0']}", CM_ECONFIG,
               "t.json: allow_addresses[0]: 0.0.0.0/0 is not inside a loopback (127.0.0.0/8, "
               "::1/128) or link-local (169.254.0.0/16, fe80::/10) range; only those can be "
               "allowed");
    expect_err("{" BASE ", 'allow_addresses': ['10.0.0.0/8']}", CM_ECONFIG,
               "t.json: allow_addresses[0]: 10.0.0.0/8 is not inside a loopback (127.0.0.0/8, "
               "::1/128) or link-local (169.254.0.0/16, fe80::/10) range; only those can be "
               "allowed");
    expect_err("{" BASE ", 'allow_addresses': ['127.0.0.1']}", CM_ECONFIG,
               "t.json: allow_addresses[0]: not a CIDR \"127.0.0.1\"");
    expect_err("{" BASE ", 'allow_addresses': ['127.0.0.1/8']}", CM_ECONFIG,
               "t.json: allow_addresses[0]: host bits set in \"127.0.0.1/8\" (the network is "
               "127.0.0.0/8)");
    expect_err("{" BASE ", 'allow_addresses': [5]}", CM_ECONFIG,
               "t.json: allow_addresses[0]: must be a CIDR string such as \"127.0.0.0/8\"");
    expect_err("{" BASE ", 'allow_addresses': '127.0.0.0/8'}", CM_ECONFIG,
               "t.json: allow_addresses: must be an array of CIDR strings");
}

/* A proxy-mode member's lb.address is answered to clients: the same rule. */
static void test_lb_address_rule(void **state)
{
    struct cm_conf *c;

#define LB_CONF(addr, extra)                                                                       \
    "{'federation': 'f', 'zone': 'z.example', 'regions': {'r1': {}}, 'members': {'m': "            \
    "{'region': 'r1', 'lb': {'mode': 'proxy', 'address': '" addr "'}}}" extra "}"
    (void)state;
    expect_err(LB_CONF("127.0.0.1", ""), CM_ECONFIG,
               "t.json: members.m.lb.address: 127.0.0.1 is a loopback address; list it in "
               "allow_addresses to permit it");
    expect_err(LB_CONF("224.0.0.1", ", 'allow_addresses': ['127.0.0.0/8']"), CM_ECONFIG,
               "t.json: members.m.lb.address: 224.0.0.1 is a multicast address; it is never "
               "allowed");
    c = load_ok(LB_CONF("127.0.0.1", ", 'allow_addresses': ['127.0.0.0/8']"));
    cm_conf_unref(c);
#undef LB_CONF
}

static void test_bad_address(void **state)
{
    (void)state;
    expect_err("{" BASE ", 'dnsd': {'listen': ['127.0.0.1:53', '1.2.3.4:99999'], 'region': 'r1',"
               " 'zone_file': 'z'}}",
               CM_ECONFIG, "t.json: dnsd.listen[1]: not an address \"1.2.3.4:99999\"");
    expect_err("{" BASE ", 'dnsd': {'listen': [], 'region': 'r1', 'zone_file': 'z'}}", CM_ECONFIG,
               "t.json: dnsd.listen: must have at least 1 entry");
    expect_err("{'federation': 'f', 'zone': 'z.test', 'regions': {'r1': {}}, 'members': {'m':"
               " {'region': 'r1', 'lb': {'mode': 'proxy', 'address': 'lb.example'}}}}",
               CM_ECONFIG, "t.json: members.m.lb.address: not an IP address \"lb.example\"");
}

static void test_out_of_range(void **state)
{
    (void)state;
    expect_err("{" BASE ", 'services': {'default/web': {'port': 80, 'check': {'rise': 0}}}}",
               CM_ECONFIG, "t.json: services.default/web.check.rise: must be between 1 and 100");
    expect_err("{" BASE ", 'services': {'default/web': {'port': 65536}}}", CM_ECONFIG,
               "t.json: services.default/web.port: must be between 1 and 65535");
    expect_err("{" BASE ", 'dnsd': {'region': 'r1', 'zone_file': 'z', 'max_udp_size': 511}}",
               CM_ECONFIG, "t.json: dnsd.max_udp_size: must be between 512 and 4096");
    expect_err("{" BASE ", 'services': {'a/b': {'port': 1, 'policy': {'max_answers': -1}}}}",
               CM_ECONFIG, "t.json: services.a/b.policy.max_answers: must be between 1 and 64");
}

static void test_wrong_type(void **state)
{
    (void)state;
    expect_err("{" BASE ", 'services': {'default/web': {'port': '80'}}}", CM_ECONFIG,
               "t.json: services.default/web.port: must be an integer");
    expect_err("{" BASE ", 'services': {'default/web': {'port': 80.5}}}", CM_ECONFIG,
               "t.json: services.default/web.port: must be an integer");
    expect_err("{" BASE ", 'dnsd': {'region': 'r1', 'zone_file': 'z', 'ecs': 'yes'}}", CM_ECONFIG,
               "t.json: dnsd.ecs: must be true or false");
    expect_err("{'federation': 'f', 'zone': 'z.test', 'regions': {'r1': {'zones': 'r1a'}}}",
               CM_ECONFIG, "t.json: regions.r1.zones: must be an array");
    expect_err("{" BASE ", 'dnsd': []}", CM_ECONFIG, "t.json: dnsd: must be an object");
    expect_err("{" BASE ", 'services': {'a/b': {'port': 1, 'check': {'type': 'icmp'}}}}",
               CM_ECONFIG,
               "t.json: services.a/b.check.type: must be one of \"http\", \"https\", \"tcp\", "
               "\"none\", not \"icmp\"");
    expect_err("[1, 2]", CM_ECONFIG, "t.json: must be an object");
}

static void test_syntax_errors(void **state)
{
    (void)state;
    expect_err("{'federation': 'f', 'federation': 'g'}", CM_EPARSE,
               "t.json: line 1, column 32: duplicate object key near '\"federation\"'");
    expect_err("{\n  'federation': 'f'\n  'zone': 'z'\n}", CM_EPARSE,
               "t.json: line 3, column 8: '}' expected near '\"zone\"'");
    expect_err("", CM_EPARSE, "t.json: line 1, column 0: '[' or '{' expected near end of file");
}

static void test_missing_required(void **state)
{
    (void)state;
    expect_err("{'zone': 'z.test', 'regions': {'r1': {}}, 'members': {}}", CM_ECONFIG,
               "t.json: federation: missing required key");
    expect_err("{" BASE ", 'dnsd': {'region': 'r1'}}", CM_ECONFIG,
               "t.json: dnsd.zone_file: missing required key");
    expect_err("{" BASE ", 'services': {'a/b': {}}}", CM_ECONFIG,
               "t.json: services.a/b.port: missing required key");
    expect_err("{'federation': 'f', 'zone': 'z.test', 'regions': {}, 'members': {}}", CM_ECONFIG,
               "t.json: regions: must have at least 1 entry");
    expect_err("{'federation': 'f', 'zone': 'z.test', 'regions': {'r1': {}}, 'members':"
               " {'m': {'region': 'r1', 'lb': {'mode': 'proxy'}}}}",
               CM_ECONFIG, "t.json: members.m.lb.address: required when mode is \"proxy\"");
}

static void test_names(void **state)
{
    (void)state;
    expect_err("{'federation': 'MyFed', 'zone': 'z.test'}", CM_ECONFIG,
               "t.json: federation: not a DNS label \"MyFed\" (lowercase letters, digits and "
               "hyphens, at most 63)");
    expect_err("{'federation': 'f', 'zone': 'a..b'}", CM_ECONFIG,
               "t.json: zone: not a domain name \"a..b\"");
    expect_err("{'federation': 'f', 'zone': 'z.test', 'regions': {'r_1': {}}}", CM_ECONFIG,
               "t.json: regions.r_1: not a DNS label \"r_1\" (lowercase letters, digits and "
               "hyphens, at most 63)");
    expect_err("{" BASE ", 'services': {'web': {'port': 80}}}", CM_ECONFIG,
               "t.json: services.web: not a service key \"web\" (\"namespace/name\", both DNS "
               "labels)");
}

static void test_aliases(void **state)
{
    struct cm_conf *c;

    (void)state;
    c = load_ok("{" BASE
                ", 'services': {'a/b': {'port': 1, 'aliases': ['Web.Z.test.', 'z.test']}}}");
    assert_string_equal(c->services[0].aliases[0], "web.z.test");
    assert_string_equal(c->services[0].aliases[1], "z.test");
    cm_conf_unref(c);
    expect_err("{" BASE ", 'services': {'default/web': {'port': 80,"
               " 'aliases': ['web.example.com']}}}",
               CM_ECONFIG,
               "t.json: services.default/web.aliases[0]: alias \"web.example.com\" is outside zone "
               "\"z.test\"");
    expect_err("{" BASE ", 'services': {'a/b': {'port': 1, 'aliases': ['xz.test']}}}", CM_ECONFIG,
               "t.json: services.a/b.aliases[0]: alias \"xz.test\" is outside zone \"z.test\"");
    expect_err("{" BASE ", 'services': {'a/b': {'port': 1, 'aliases': ['w.z.test']},"
               " 'a/c': {'port': 1, 'aliases': ['x.z.test', 'W.z.test']}}}",
               CM_ECONFIG,
               "t.json: services.a/c.aliases[1]: alias \"w.z.test\" is already used by service "
               "\"a/b\"");
}

static void test_all_down_policy(void **state)
{
    struct cm_conf *c;

    (void)state;
    c = load_ok("{" BASE ", 'services': {'a/b': {'port': 1, 'policy': {'all_down':"
                " 'sorry:Sorry.Example.ORG.'}}}}");
    assert_int_equal(c->services[0].policy.all_down, CM_ALL_DOWN_SORRY);
    assert_string_equal(c->services[0].policy.sorry_target, "sorry.example.org");
    cm_conf_unref(c);
    expect_err("{" BASE ", 'services': {'a/b': {'port': 1, 'policy': {'all_down': 'sorry:'}}}}",
               CM_ECONFIG,
               "t.json: services.a/b.policy.all_down: not a domain name \"\" after \"sorry:\"");
    expect_err("{" BASE ", 'services': {'a/b': {'port': 1, 'policy': {'all_down': 'sorry-page'}}}}",
               CM_ECONFIG,
               "t.json: services.a/b.policy.all_down: must be \"fail-open\", \"fail-closed\" or "
               "\"sorry:<domain>\", not \"sorry-page\"");
    expect_err("{" BASE ", 'services': {'a/b': {'port': 1, 'policy': {'all_down': 1}}}}",
               CM_ECONFIG,
               "t.json: services.a/b.policy.all_down: must be \"fail-open\", \"fail-closed\" or "
               "\"sorry:<domain>\"");
}

static void test_check_status_and_timeouts(void **state)
{
    struct cm_conf *c;

    (void)state;
    c = load_ok("{" BASE ", 'services': {'a/b': {'port': 1, 'check': {'status': [200, 204]}},"
                " 'a/c': {'port': 1, 'check': {'status': '204'}}}}");
    assert_int_equal(c->services[0].check.status_min, 200);
    assert_int_equal(c->services[0].check.status_max, 204);
    assert_int_equal(c->services[1].check.status_min, 204);
    assert_int_equal(c->services[1].check.status_max, 204);
    cm_conf_unref(c);
    expect_err("{" BASE ", 'services': {'a/b': {'port': 1, 'check': {'status': '399-200'}}}}",
               CM_ECONFIG,
               "t.json: services.a/b.check.status: must be a range of status codes within "
               "100-599, min <= max");
    expect_err("{" BASE ", 'services': {'a/b': {'port': 1, 'check': {'status': 'ok'}}}}",
               CM_ECONFIG,
               "t.json: services.a/b.check.status: must be a status range \"min-max\" or "
               "[min, max], e.g. \"200-399\"");
    expect_err("{" BASE ", 'services': {'a/b': {'port': 1, 'check': {'interval_ms': 1000,"
               " 'timeout_ms': 1000}}}}",
               CM_ECONFIG,
               "t.json: services.a/b.check.timeout_ms: must be less than interval_ms (1000)");
    expect_err("{" BASE ", 'services': {'a/b': {'port': 1, 'check': {'path': 'healthz'}}}}",
               CM_ECONFIG, "t.json: services.a/b.check.path: must start with \"/\"");
}

static void test_health_probe_keys(void **state)
{
    struct cm_conf *c;

    (void)state;
    c = load_ok("{" BASE ", 'services': {'a/b': {'port': 1, 'check': {'type': 'none'}}},"
                " 'health': {'vantage': 'r1', 'probe_source': '127.0.3.1',"
                " 'default_check': {'type': 'tcp', 'interval_ms': 5000}}}");
    assert_int_equal(c->services[0].check.type, CM_CHECK_NONE);
    assert_string_equal(c->health.probe_source, "127.0.3.1");
    assert_int_equal(c->health.default_check.type, CM_CHECK_TCP);
    assert_int_equal(c->health.default_check.interval_ms, 5000);
    assert_int_equal(c->health.default_check.fall, 3);
    cm_conf_unref(c);
    /* Absent: the defaults of any check. */
    c = load_ok("{" BASE ", 'health': {'vantage': 'r1'}}");
    assert_null(c->health.probe_source);
    assert_int_equal(c->health.default_check.type, CM_CHECK_HTTP);
    assert_string_equal(c->health.default_check.path, "/healthz");
    cm_conf_unref(c);
    expect_err("{" BASE ", 'health': {'vantage': 'r1', 'probe_source': 'eth0'}}", CM_ECONFIG,
               "t.json: health.probe_source: not an IPv4 or IPv6 address \"eth0\"");
    expect_err("{" BASE ", 'health': {'vantage': 'r1', 'default_check': {'rise': 0}}}", CM_ECONFIG,
               "t.json: health.default_check.rise: must be between 1 and 100");
}

/* The timings that were FEDGSLB_HEALTH_* environment variables: same
 * defaults and ranges, and backoff_max_ms >= backoff_min_ms. */
static void test_health_timing_keys(void **state)
{
    struct cm_conf *c;

    (void)state;
    c = load_ok("{" BASE ", 'health': {'vantage': 'r1'}}");
    assert_int_equal(c->health.api.readyz_interval_ms, 10000);
    assert_int_equal(c->health.api.readyz_timeout_ms, 3000);
    assert_int_equal(c->health.api.rise, 1);
    assert_int_equal(c->health.api.fall, 3);
    assert_int_equal(c->health.api.watch_timeout_s, 300);
    assert_int_equal(c->health.api.list_timeout_ms, 30000);
    assert_int_equal(c->health.api.list_limit, 500);
    assert_int_equal(c->health.api.backoff_min_ms, 500);
    assert_int_equal(c->health.api.backoff_max_ms, 30000);
    assert_int_equal(c->health.exec_timeout_ms, 10000);
    assert_int_equal(c->health.max_probes, 512);
    assert_int_equal(c->health.startup_grace_ms, 30000);
    assert_int_equal(c->health.publish_timeout_ms, 5000);
    cm_conf_unref(c);
    c = load_ok("{" BASE ", 'health': {'vantage': 'r1', 'startup_grace_ms': 0,"
                " 'api': {'readyz_interval_ms': 200, 'list_limit': 2, 'backoff_min_ms': 100,"
                " 'backoff_max_ms': 100}}}");
    assert_int_equal(c->health.startup_grace_ms, 0);
    assert_int_equal(c->health.api.readyz_interval_ms, 200);
    assert_int_equal(c->health.api.list_limit, 2);
    assert_int_equal(c->health.api.backoff_max_ms, 100);
    assert_int_equal(c->health.api.fall, 3); /* the rest keep their defaults */
    cm_conf_unref(c);
    expect_err("{" BASE ", 'health': {'vantage': 'r1', 'api': {'backoff_min_ms': 1000,"
               " 'backoff_max_ms': 999}}}",
               CM_ECONFIG, "t.json: health.api.backoff_max_ms: must be >= backoff_min_ms (1000)");
    expect_err("{" BASE ", 'health': {'vantage': 'r1', 'api': {'readyz_interval_ms': 49}}}",
               CM_ECONFIG, "t.json: health.api.readyz_interval_ms: must be between 50 and 3600000");
    expect_err("{" BASE ", 'health': {'vantage': 'r1', 'max_probes': 0}}", CM_ECONFIG,
               "t.json: health.max_probes: must be between 1 and 100000");
    expect_err("{" BASE ", 'health': {'vantage': 'r1', 'exec_timeout_ms': 99}}", CM_ECONFIG,
               "t.json: health.exec_timeout_ms: must be between 100 and 600000");
    expect_err("{" BASE ", 'health': {'vantage': 'r1', 'api': {'readyz_rise': 1}}}", CM_ECONFIG,
               "t.json: health.api.readyz_rise: unknown key");
}

static void test_proxy_options(void **state)
{
    struct cm_conf *c;

    (void)state;
    /* Defaults. */
    c = load_ok("{" BASE ", " SVC ", 'proxy': {'listen': [{'address': '127.0.0.1:8080',"
                " 'member': 'm2', 'service': 'default/web'}]}}");
    assert_int_equal(c->proxy.max_connections, 10000);
    assert_int_equal(c->proxy.limits.request_line_bytes, 8192);
    assert_int_equal(c->proxy.limits.header_bytes, 32768);
    assert_int_equal(c->proxy.limits.header_count, 100);
    assert_int_equal(c->proxy.limits.body_bytes, 1073741824u);
    assert_int_equal(c->proxy.timeouts_ms.header_ms, 10000);
    assert_int_equal(c->proxy.timeouts_ms.idle_ms, 60000);
    assert_int_equal(c->proxy.timeouts_ms.connect_ms, 3000);
    assert_int_equal(c->proxy.timeouts_ms.response_ms, 30000);
    assert_int_equal(c->proxy.timeouts_ms.drain_ms, 10000);
    assert_int_equal(c->proxy.access_log.format, CM_ACCESS_LOG_OFF);
    assert_string_equal(c->proxy.access_log.path, "-");
    assert_int_equal(c->proxy.trusted_proxy_count, 0);
    assert_int_equal(c->proxy.listen[0].backend_count, 0);
    assert_false(c->proxy.listen[0].tls.enabled);
    cm_conf_unref(c);
    /* Everything given. */
    c = load_ok("{" BASE ", " SVC ", 'proxy': {'listen': [{'address': '127.0.0.1:8443',"
                " 'member': 'm2', 'service': 'default/web', 'backends': ['10.0.0.5:31234',"
                " '[2001:db8::1]:31234'], 'tls': {'certificates': [{'cert': 'a.crt',"
                " 'key': 'a.key'}, {'cert': 'b.crt', 'key': 'b.key'}]}}],"
                " 'max_connections': 5, 'limits': {'header_count': 20},"
                " 'timeouts_ms': {'header': 500}, 'trusted_proxies': ['10.0.0.0/8', '::1/128'],"
                " 'access_log': {'format': 'json', 'path': 'x.log'}}}");
    assert_int_equal(c->proxy.listen[0].backend_count, 2);
    assert_string_equal(c->proxy.listen[0].backends[1], "[2001:db8::1]:31234");
    assert_true(c->proxy.listen[0].tls.enabled);
    assert_int_equal(c->proxy.listen[0].tls.certificate_count, 2);
    assert_string_equal(c->proxy.listen[0].tls.certificates[1].key, "b.key");
    assert_int_equal(c->proxy.max_connections, 5);
    assert_int_equal(c->proxy.limits.header_count, 20);
    assert_int_equal(c->proxy.limits.header_bytes, 32768);
    assert_int_equal(c->proxy.timeouts_ms.header_ms, 500);
    assert_int_equal(c->proxy.trusted_proxy_count, 2);
    assert_int_equal(c->proxy.access_log.format, CM_ACCESS_LOG_JSON);
    cm_conf_unref(c);
#define PL                                                                                         \
    "'proxy': {'listen': [{'address': '127.0.0.1:8080', 'member': 'm2',"                           \
    " 'service': 'default/web'"
    expect_err("{" BASE ", " SVC ", " PL ", 'backends': ['10.0.0.5']}]}}", CM_ECONFIG,
               "t.json: proxy.listen[0].backends[0]: not a numeric \"ip:port\" backend "
               "address: \"10.0.0.5\"");
    expect_err("{" BASE ", " SVC ", " PL ", 'tls': {'certificates': []}}]}}", CM_ECONFIG,
               "t.json: proxy.listen[0].tls.certificates: must have at least 1 entry");
    expect_err("{" BASE ", " SVC ", " PL ", 'tls': {'certificates': [{'cert': 'a'}]}}]}}",
               CM_ECONFIG, "t.json: proxy.listen[0].tls.certificates[0].key: missing required key");
    expect_err("{" BASE ", " SVC ", " PL "}], 'trusted_proxies': ['10.0.0.1/8']}}", CM_ECONFIG,
               "t.json: proxy.trusted_proxies[0]: host bits set in \"10.0.0.1/8\" (the network "
               "is 10.0.0.0/8)");
    expect_err("{" BASE ", " SVC ", " PL "}], 'limits': {'header_count': 1}}}", CM_ECONFIG,
               "t.json: proxy.limits.header_count: must be between 8 and 1000");
    expect_err("{" BASE ", " SVC ", " PL "}], 'access_log': {'format': 'xml'}}}", CM_ECONFIG,
               "t.json: proxy.access_log.format: must be one of \"off\", \"json\", "
               "\"combined\", not \"xml\"");
    expect_err("{" BASE ", " SVC ", " PL "}, {'address': '127.0.0.1:8080', 'member': 'm2',"
               " 'service': 'default/web'}]}}",
               CM_ECONFIG,
               "t.json: proxy.listen[1].address: 127.0.0.1:8080 is already used by listen[0]");
    expect_err("{" BASE ", " SVC ", " PL "}], 'timeouts_ms': {'idel': 5}}}", CM_ECONFIG,
               "t.json: proxy.timeouts_ms.idel: unknown key");
#undef PL
}

static void test_min_ttl(void **state)
{
    (void)state;
    expect_err("{" BASE ", 'dnsd': {'region': 'r1', 'zone_file': 'z', 'min_ttl_s': 31}}",
               CM_ECONFIG, "t.json: dnsd.min_ttl_s: must not exceed ttl_s (30)");
    expect_err("{" BASE ", 'dnsd': {'region': 'r1', 'zone_file': 'z', 'ttl_s': 10,"
               " 'min_ttl_s': 20}}",
               CM_ECONFIG, "t.json: dnsd.min_ttl_s: must not exceed ttl_s (10)");
}

static void test_proxy_listen(void **state)
{
    struct cm_conf *c;

    (void)state;
    c = load_ok("{" BASE ", " SVC ", 'proxy': {'listen': [{'address': '[::1]:8080',"
                " 'member': 'm2', 'service': 'default/web'}]}}");
    assert_int_equal(c->proxy.listen[0].member, 1);
    assert_int_equal(c->proxy.listen[0].service, 0);
    assert_int_equal(c->proxy.listen[0].address.ss.ss_family, AF_INET6);
    cm_conf_unref(c);
    expect_err("{" BASE ", " SVC ", 'proxy': {'listen': [{'address': '127.0.0.1:8080',"
               " 'member': 'xyz', 'service': 'default/web'}]}}",
               CM_ECONFIG, "t.json: proxy.listen[0].member: unknown member \"xyz\"");
    expect_err("{" BASE ", " SVC ", 'proxy': {'listen': [{'address': '127.0.0.1:8080',"
               " 'member': 'm1', 'service': 'default/web'}]}}",
               CM_ECONFIG,
               "t.json: proxy.listen[0].member: member \"m1\" does not have lb.mode \"proxy\"");
    expect_err("{" BASE ", " SVC ", 'proxy': {'listen': [{'address': '127.0.0.1:8080',"
               " 'member': 'm2', 'service': 'default/api'}]}}",
               CM_ECONFIG, "t.json: proxy.listen[0].service: unknown service \"default/api\"");
}

static void test_latency(void **state)
{
    struct cm_conf *c;

    (void)state;
    c = load_ok("{" BASE ", 'latency_ms': {'r2': {'r1': 40, 'r2': 0}, 'r1': {'r2': 40}}}");
    assert_int_equal(cm_conf_latency(c, 0, 1), 40);
    assert_int_equal(cm_conf_latency(c, 1, 0), 40);
    assert_int_equal(cm_conf_latency(c, 0, 0), 0);
    cm_conf_unref(c);
    expect_err("{" BASE ", 'latency_ms': {'r1': {'r9': 40}}}", CM_ECONFIG,
               "t.json: latency_ms.r1.r9: unknown region \"r9\"");
    expect_err("{" BASE ", 'latency_ms': {'r1': {'r2': 40}, 'r2': {'r1': 41}}}", CM_ECONFIG,
               "t.json: latency_ms.r2.r1: 41 contradicts latency_ms.r1.r2 = 40");
    expect_err("{" BASE ", 'latency_ms': {'r1': {'r1': 3}}}", CM_ECONFIG,
               "t.json: latency_ms.r1.r1: must be 0 (a region to itself)");
    expect_err("{" BASE ", 'latency_ms': {'r1': {'r2': 100001}}}", CM_ECONFIG,
               "t.json: latency_ms.r1.r2: must be between 0 and 100000");
}

static void test_token_file(void **state)
{
    char *good = temp_file("s3cr3t-value\r\n");
    char *empty = temp_file("\n");
    char *two = temp_file("s3cr3t-value\nmore\n");
    char json[1024], err[CM_CONF_ERR_MAX], want[CM_CONF_ERR_MAX];
    struct cm_conf *c = NULL;

    (void)state;
    snprintf(json, sizeof(json),
             "{" BASE ", 'health': {'vantage': 'r1', 'control': {'listen': '127.0.0.1:9154',"
             " 'token_file': '%s'}}}",
             good);
    c = load_ok(json);
    assert_true(c->health.control.enabled);
    assert_string_equal(c->health.control.token, "s3cr3t-value");
    assert_string_equal(c->health.control.token_file, good);
    cm_conf_unref(c);

    snprintf(json, sizeof(json),
             "{" BASE ", 'health': {'vantage': 'r1', 'control': {'listen': '127.0.0.1:9154',"
             " 'token_file': '%s'}}}",
             empty);
    snprintf(want, sizeof(want), "t.json: health.control.token_file: token file \"%s\" is empty",
             empty);
    expect_err(json, CM_ECONFIG, want);

    snprintf(json, sizeof(json),
             "{" BASE ", 'health': {'vantage': 'r1', 'control': {'listen': '127.0.0.1:9154',"
             " 'token_file': '%s'}}}",
             two);
    assert_int_equal(load(json, &c, err), CM_ECONFIG);
    assert_null(strstr(err, "s3cr3t")); /* a secret never reaches a message */
    assert_non_null(strstr(err, "must hold one line"));

    expect_err("{" BASE ", 'health': {'vantage': 'r1', 'control': {'listen': '127.0.0.1:9154',"
               " 'token_file': '/nonexistent/token'}}}",
               CM_ECONFIG,
               "t.json: health.control.token_file: cannot read \"/nonexistent/token\": "
               "No such file or directory");
    expect_err("{" BASE ", 'health': {'vantage': 'r1', 'control': {}}}", CM_ECONFIG,
               "t.json: health.control.listen: missing required key");
    unlink(good);
    unlink(empty);
    unlink(two);
    free(good);
    free(empty);
    free(two);
}

/* etcd: defaults, the prefix's trailing "/", TLS and credentials in pairs. */
static void test_etcd_section(void **state)
{
    char *pw = temp_file("etcd-pa55word\n");
    char json[1024], err[CM_CONF_ERR_MAX];
    struct cm_conf *c = NULL;

    (void)state;
    c = load_ok("{" BASE ", 'etcd': {'endpoints': ['http://127.0.0.1:2379']}}");
    assert_true(c->etcd.present);
    assert_string_equal(c->etcd.prefix, "/fedgslb/");
    assert_int_equal(c->etcd.endpoint_count, 1);
    assert_false(c->etcd.tls.enabled);
    assert_null(c->etcd.username);
    assert_null(c->etcd.password);
    assert_int_equal(c->etcd.request_timeout_ms, 5000);
    assert_int_equal(c->etcd.check_interval_ms, 5000);
    assert_int_equal(c->etcd.backoff_min_ms, 250);
    assert_int_equal(c->etcd.backoff_max_ms, 5000);
    cm_conf_unref(c);

    snprintf(json, sizeof(json),
             "{" BASE ", 'etcd': {'endpoints': ['https://a:2379', 'https://b:2379'],"
             " 'prefix': '/x/y', 'tls': {'ca_file': 'ca.pem', 'certificate': 'c.pem',"
             " 'key': 'k.pem'}, 'username': 'fed', 'password_file': '%s',"
             " 'check_interval_ms': 1000, 'backoff_max_ms': 3000}}",
             pw);
    c = load_ok(json);
    assert_string_equal(c->etcd.prefix, "/x/y/");
    assert_int_equal(c->etcd.endpoint_count, 2);
    assert_true(c->etcd.tls.enabled);
    assert_string_equal(c->etcd.tls.key, "k.pem");
    assert_string_equal(c->etcd.username, "fed");
    assert_string_equal(c->etcd.password, "etcd-pa55word");
    assert_int_equal(c->etcd.check_interval_ms, 1000);
    cm_conf_unref(c);

    expect_err("{" BASE ", 'etcd': {}}", CM_ECONFIG,
               "t.json: etcd.endpoints: missing required key");
    expect_err("{" BASE ", 'etcd': {'endpoints': ['127.0.0.1:2379']}}", CM_ECONFIG,
               "t.json: etcd.endpoints[0]: not an http(s) URL \"127.0.0.1:2379\"");
    expect_err("{" BASE ", 'etcd': {'endpoints': ['http://e'], 'prefix': 'fed'}}", CM_ECONFIG,
               "t.json: etcd.prefix: must start with \"/\"");
    expect_err("{" BASE ", 'etcd': {'endpoints': ['http://e'], 'username': 'u'}}", CM_ECONFIG,
               "t.json: etcd: username and password_file go together");
    expect_err("{" BASE ", 'etcd': {'endpoints': ['http://e'], 'tls': {'key': 'k'}}}", CM_ECONFIG,
               "t.json: etcd.tls: certificate and key go together");
    expect_err("{" BASE ", 'etcd': {'endpoints': ['http://e'], 'backoff_min_ms': 900,"
               " 'backoff_max_ms': 800}}",
               CM_ECONFIG, "t.json: etcd.backoff_max_ms: less than backoff_min_ms (900)");
    expect_err("{" BASE ", 'etcd': {'endpoints': ['http://e'], 'password_file': '/nonexistent/p',"
               " 'username': 'u'}}",
               CM_ECONFIG,
               "t.json: etcd.password_file: cannot read \"/nonexistent/p\": No such file or "
               "directory");
    assert_int_equal(load("{" BASE ", 'etcd': {'endpoints': ['http://e'], 'nope': 1}}", &c, err),
                     CM_ECONFIG);
    assert_string_equal(err, "t.json: etcd.nope: unknown key");
    unlink(pw);
    free(pw);
}

/* dnsd.cookies and dnsd.nsid: secrets from 0600 files as 32 hex digits. */
static void test_dnsd_cookies_nsid(void **state)
{
    char *good = temp_file("e5e973e5a6b2a43f48e7dc849e37bfcf\n");
    char *prev = temp_file("445536BCD2513298075A5D379663C962");
    char *bad = temp_file("e5e973e5a6b2a43f48e7dc849e37bfzz\n");
    char *shorter = temp_file("e5e973e5a6b2a43f\n");
    char json[1024], err[CM_CONF_ERR_MAX];
    struct cm_conf *c = NULL;

    (void)state;
    snprintf(json, sizeof(json),
             "{" BASE ", 'dnsd': {'region': 'r1', 'zone_file': 'z', 'nsid': 'ns1.r1',"
             " 'cookies': {'secret_file': '%s', 'previous_secret_file': '%s',"
             " 'require': true}}}",
             good, prev);
    c = load_ok(json);
    assert_true(c->dnsd.cookies.enabled);
    assert_true(c->dnsd.cookies.require);
    assert_true(c->dnsd.cookies.has_previous);
    assert_memory_equal(c->dnsd.cookies.secret,
                        "\xe5\xe9\x73\xe5\xa6\xb2\xa4\x3f\x48\xe7\xdc\x84\x9e\x37\xbf\xcf", 16);
    assert_int_equal(c->dnsd.cookies.previous[0], 0x44);
    assert_int_equal(c->dnsd.nsid_len, 6);
    assert_memory_equal(c->dnsd.nsid_data, "ns1.r1", 6);
    cm_conf_unref(c);

    /* defaults: no cookies, no NSID; require false; hex NSID */
    snprintf(json, sizeof(json),
             "{" BASE ", 'dnsd': {'region': 'r1', 'zone_file': 'z', 'nsid': 'hex:00ff10',"
             " 'cookies': {'secret_file': '%s'}}}",
             good);
    c = load_ok(json);
    assert_false(c->dnsd.cookies.require);
    assert_false(c->dnsd.cookies.has_previous);
    assert_int_equal(c->dnsd.nsid_len, 3);
    assert_memory_equal(c->dnsd.nsid_data, "\x00\xff\x10", 3);
    cm_conf_unref(c);
    c = load_ok("{" BASE ", 'dnsd': {'region': 'r1', 'zone_file': 'z'}}");
    assert_false(c->dnsd.cookies.enabled);
    assert_int_equal(c->dnsd.nsid_len, 0);
    cm_conf_unref(c);

    /* a bad secret: the file is named, its content never */
    const char *bads[] = {bad, shorter};
    for (size_t i = 0; i < 2; i++) {
        snprintf(json, sizeof(json),
                 "{" BASE ", 'dnsd': {'region': 'r1', 'zone_file': 'z',"
                 " 'cookies': {'secret_file': '%s'}}}",
                 bads[i]);
        assert_int_equal(load(json, &c, err), CM_ECONFIG);
        assert_non_null(strstr(err, "dnsd.cookies.secret_file"));
        assert_non_null(strstr(err, bads[i]));
        assert_non_null(strstr(err, "32 hex digits"));
        assert_null(strstr(err, "e5e973"));
    }
    expect_err("{" BASE ", 'dnsd': {'region': 'r1', 'zone_file': 'z', 'cookies': {}}}", CM_ECONFIG,
               "t.json: dnsd.cookies.secret_file: missing required key");
    snprintf(json, sizeof(json),
             "{" BASE ", 'dnsd': {'region': 'r1', 'zone_file': 'z',"
             " 'cookies': {'secret_file': '%s', 'requre': true}}}",
             good);
    expect_err(json, CM_ECONFIG, "t.json: dnsd.cookies.requre: unknown key");
    /* a group-readable secret is refused */
    assert_int_equal(chmod(good, 0640), 0);
    snprintf(json, sizeof(json),
             "{" BASE ", 'dnsd': {'region': 'r1', 'zone_file': 'z',"
             " 'cookies': {'secret_file': '%s'}}}",
             good);
    assert_int_equal(load(json, &c, err), CM_ECONFIG);
    assert_non_null(strstr(err, "chmod 600"));

    expect_err("{" BASE ", 'dnsd': {'region': 'r1', 'zone_file': 'z', 'nsid': 'hex:abc'}}",
               CM_ECONFIG,
               "t.json: dnsd.nsid: \"hex:abc\": \"hex:\" must be followed by 2 to 256 hex "
               "digits, an even number");
    expect_err("{" BASE ", 'dnsd': {'region': 'r1', 'zone_file': 'z', 'nsid': 'hex:zz'}}",
               CM_ECONFIG,
               "t.json: dnsd.nsid: \"hex:zz\": \"hex:\" must be followed by 2 to 256 hex "
               "digits, an even number");
    char longer[256];
    memset(longer, 'n', 129);
    longer[129] = '\0';
    snprintf(json, sizeof(json),
             "{" BASE ", 'dnsd': {'region': 'r1', 'zone_file': 'z', 'nsid': '%s'}}", longer);
    expect_err(json, CM_ECONFIG, "t.json: dnsd.nsid: longer than 128 bytes");
    char *paths[] = {good, prev, bad, shorter};
    for (size_t i = 0; i < 4; i++) {
        unlink(paths[i]);
        free(paths[i]);
    }
}

static void test_load_file_errors(void **state)
{
    char err[CM_CONF_ERR_MAX];
    struct cm_conf *c = NULL;
    char *path = temp_file("{\n'federation': 'f'\n");

    (void)state;
    assert_int_equal(cm_conf_load("/nonexistent/fed.json", &c, err, sizeof(err)), CM_ENOENT);
    assert_null(c);
    assert_string_equal(err, "/nonexistent/fed.json: cannot read: No such file or directory");
    assert_int_equal(cm_conf_load(path, &c, err, sizeof(err)), CM_EPARSE);
    assert_null(c);
    assert_non_null(strstr(err, ": line 2, column 1: "));
    unlink(path);
    free(path);
}

/* Found by fuzz_cm_conf: quoting a value full of escapes wrote one byte past
 * the quote buffer. */
static void test_bug_quote_overflow(void **state)
{
    /* 3 plain bytes, then 4-byte escapes: the 22nd escape ended at the limit */
    char json[1024] = "{'federation': 'f', 'zone': 'abc";
    char err[CM_CONF_ERR_MAX];
    struct cm_conf *c = NULL;
    size_t len;

    (void)state;
    for (int i = 0; i < 60; i++)
        strncat(json, "\\u007f", sizeof(json) - strlen(json) - 1);
    strncat(json, "'}", sizeof(json) - strlen(json) - 1);
    assert_int_equal(load(json, &c, err), CM_ECONFIG);
    len = strlen(err);
    assert_true(len > 40);
    assert_string_equal(err + len - 4, "...\"");
    assert_non_null(strstr(err, "t.json: zone: not a domain name \"abc\\x7f\\x7f"));
}

static void test_ref_unref(void **state)
{
    struct cm_conf *c = load_ok("{" BASE "}");

    (void)state;
    assert_ptr_equal(cm_conf_ref(c), c);
    assert_int_equal(atomic_load(&c->refs), 2);
    cm_conf_unref(c);
    assert_int_equal(atomic_load(&c->refs), 1);
    assert_string_equal(c->federation, "f"); /* still alive */
    cm_conf_unref(c);                        /* freed: ASan would flag a leak or double free */
    cm_conf_unref(NULL);
}

/* ---- members_from (the host cluster's member registry) ---- */

#define RBASE                                                                                      \
    "'federation': 'f', 'zone': 'z.test',"                                                         \
    "'regions': {'r1': {'zones': ['r1a', 'r1b']}, 'r2': {}},"                                      \
    "'members': {'m1': {'region': 'r1', 'zone': 'r1b'}}"

static void test_registry_absent(void **state)
{
    struct cm_conf *c = load_ok("{" RBASE "}");

    (void)state;
    assert_false(c->members_from.present);
    assert_null(c->members_from.namespace_);
    assert_false(c->members_from.services);
    cm_conf_unref(c);
}

static void test_registry_kubefed_defaults(void **state)
{
    struct cm_conf *c = load_ok("{" RBASE ", 'members_from': {'source': 'kubefed', 'kubeconfig':"
                                " 'host.yaml', 'context': 'host', 'locations': {'m3': {'region':"
                                " 'r1', 'zone': 'r1a'}, 'm4': {'region': 'r2'}}}}");
    const struct cm_conf_members_from *mf = &c->members_from;

    (void)state;
    assert_true(mf->present);
    assert_int_equal(mf->source, CM_REGISTRY_KUBEFED);
    assert_string_equal(mf->kubeconfig, "host.yaml");
    assert_string_equal(mf->context, "host");
    assert_false(mf->in_cluster);
    assert_string_equal(mf->namespace_, "kube-federation-system");
    assert_true(mf->services);
    assert_int_equal(mf->location_count, 2);
    assert_string_equal(mf->locations[0].name, "m3");
    assert_int_equal(mf->locations[0].region, 0);
    assert_int_equal(mf->locations[0].zone, 0);
    assert_string_equal(mf->locations[1].name, "m4");
    assert_int_equal(mf->locations[1].region, 1);
    assert_int_equal(mf->locations[1].zone, -1);
    cm_conf_unref(c);
}

static void test_registry_karmada(void **state)
{
    struct cm_conf *c = load_ok("{" RBASE ", 'members_from': {'source': 'karmada', 'in_cluster':"
                                " true}}");

    (void)state;
    assert_int_equal(c->members_from.source, CM_REGISTRY_KARMADA);
    assert_true(c->members_from.in_cluster);
    assert_null(c->members_from.namespace_);
    assert_false(c->members_from.services);
    cm_conf_unref(c);
    c = load_ok("{" RBASE ", 'members_from': {'source': 'kubefed', 'namespace': 'fed',"
                " 'services': false}}");
    assert_string_equal(c->members_from.namespace_, "fed");
    assert_false(c->members_from.services);
    cm_conf_unref(c);
}

static void test_registry_errors(void **state)
{
    (void)state;
    expect_err("{" RBASE ", 'members_from': {}}", CM_ECONFIG,
               "t.json: members_from.source: missing required key");
    expect_err("{" RBASE ", 'members_from': {'source': 'clusternet'}}", CM_ECONFIG,
               "t.json: members_from.source: must be one of \"kubefed\", \"karmada\", not "
               "\"clusternet\"");
    expect_err("{" RBASE ", 'members_from': {'source': 'karmada', 'namespace': 'x'}}", CM_ECONFIG,
               "t.json: members_from.namespace: only with source \"kubefed\" (Karmada's Clusters "
               "are cluster-scoped and spec.secretRef names the Secret's namespace)");
    expect_err("{" RBASE ", 'members_from': {'source': 'karmada', 'services': true}}", CM_ECONFIG,
               "t.json: members_from.services: only with source \"kubefed\" (FederatedService, "
               "Domain and ServiceDNSRecord are KubeFed's)");
    expect_err("{" RBASE ", 'members_from': {'source': 'kubefed', 'services': 'yes'}}", CM_ECONFIG,
               "t.json: members_from.services: must be true or false");
    expect_err("{" RBASE ", 'members_from': {'source': 'kubefed', 'in_cluster': true,"
               " 'context': 'host'}}",
               CM_ECONFIG, "t.json: members_from.in_cluster: excludes kubeconfig and context");
    /* The one name in both places: named by both paths. */
    expect_err("{" RBASE ", 'members_from': {'source': 'kubefed', 'locations': {'m1':"
               " {'region': 'r1'}}}}",
               CM_ECONFIG,
               "t.json: members_from.locations.m1: \"m1\" is a configured member (members.m1): a "
               "member comes from members or from the registry, not both");
    expect_err("{" RBASE ", 'members_from': {'source': 'kubefed', 'locations': {'m3':"
               " {'region': 'r9'}}}}",
               CM_ECONFIG, "t.json: members_from.locations.m3.region: unknown region \"r9\"");
    expect_err("{" RBASE ", 'members_from': {'source': 'kubefed', 'locations': {'m3':"
               " {'region': 'r2', 'zone': 'r1a'}}}}",
               CM_ECONFIG,
               "t.json: members_from.locations.m3.zone: zone \"r1a\" is not a zone of region "
               "\"r2\"");
    expect_err("{" RBASE ", 'members_from': {'source': 'kubefed', 'locations': {'M_3':"
               " {'region': 'r2'}}}}",
               CM_ECONFIG,
               "t.json: members_from.locations.M_3: not a DNS label \"M_3\" (lowercase letters, "
               "digits and hyphens, at most 63)");
    expect_err("{" RBASE ", 'members_from': {'source': 'kubefed', 'bogus': 1}}", CM_ECONFIG,
               "t.json: members_from.bogus: unknown key");
}

static void test_with_members(void **state)
{
    struct cm_conf *c = load_ok("{" RBASE ", 'members_from': {'source': 'kubefed'}}");
    char k1[] = "k1", k2[] = "k2";
    const struct cm_conf_member extra[] = {
        {.name = k1, .region = 1, .zone = -1},
        {.name = k2, .region = 0, .zone = 1},
    };
    struct cm_conf *d, *e;

    (void)state;
    d = cm_conf_with_members(c, extra, 2);
    assert_non_null(d);
    assert_int_equal(d->member_count, 3);
    assert_string_equal(d->members[0].name, "m1");
    assert_ptr_equal(d->members[0].name, c->members[0].name); /* shared */
    assert_string_equal(d->members[1].name, "k1");
    assert_ptr_not_equal(d->members[1].name, extra[0].name); /* copied */
    assert_int_equal(d->members[1].region, 1);
    assert_int_equal(d->members[2].zone, 1);
    assert_int_equal(d->members[2].lb_mode, CM_LB_NATIVE);
    assert_null(d->members[2].kubeconfig);
    assert_int_equal(cm_conf_member_index(d, "k2"), 2);
    assert_ptr_equal(d->regions, c->regions);
    assert_ptr_equal(cm_conf_loaded(d), c);
    assert_ptr_equal(cm_conf_loaded(c), c);
    /* Extending an extended one extends the loaded one: k1, k2 are gone. */
    e = cm_conf_with_members(d, extra + 1, 1);
    assert_non_null(e);
    assert_int_equal(e->member_count, 2);
    assert_string_equal(e->members[1].name, "k2");
    assert_ptr_equal(cm_conf_loaded(e), c);
    /* The loaded one lives as long as an extension does. */
    cm_conf_unref(c);
    cm_conf_unref(d);
    assert_string_equal(e->members[0].name, "m1");
    assert_string_equal(e->federation, "f");
    cm_conf_unref(e); /* frees all: ASan flags a leak or a double free */
    c = load_ok("{" RBASE "}");
    d = cm_conf_with_members(c, NULL, 0);
    assert_int_equal(d->member_count, 1);
    cm_conf_unref(d);
    cm_conf_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_regions_members),
        cmocka_unit_test(test_example_services),
        cmocka_unit_test(test_example_networks_latency),
        cmocka_unit_test(test_example_sections),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_unknown_region),
        cmocka_unit_test(test_bad_zone_for_region),
        cmocka_unit_test(test_bad_cidr),
        cmocka_unit_test(test_allow_addresses),
        cmocka_unit_test(test_lb_address_rule),
        cmocka_unit_test(test_good_cidr),
        cmocka_unit_test(test_dnsd_rrl_and_user),
        cmocka_unit_test(test_bad_address),
        cmocka_unit_test(test_out_of_range),
        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_health_probe_keys),
        cmocka_unit_test(test_health_timing_keys),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_aliases),
        cmocka_unit_test(test_all_down_policy),
        cmocka_unit_test(test_check_status_and_timeouts),
        cmocka_unit_test(test_min_ttl),
        cmocka_unit_test(test_proxy_listen),
        cmocka_unit_test(test_proxy_options),
        cmocka_unit_test(test_latency),
        cmocka_unit_test(test_token_file),
        cmocka_unit_test(test_etcd_section),
        cmocka_unit_test(test_dnsd_cookies_nsid),
        cmocka_unit_test(test_load_file_errors),
        cmocka_unit_test(test_bug_quote_overflow),
        cmocka_unit_test(test_ref_unref),
        cmocka_unit_test(test_registry_absent),
        cmocka_unit_test(test_registry_kubefed_defaults),
        cmocka_unit_test(test_registry_karmada),
        cmocka_unit_test(test_registry_errors),
        cmocka_unit_test(test_with_members),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
