/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cm_conf_deploy.c -- one file for the whole deployment: instances,
 * what selecting one changes, the keys instances supply, health.publish_to's
 * default, names and addresses that collide, and the client network checks
 * (one region per network, overlaps warned), with their exact messages.
 */
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
#include "common/cm_net.h"
#include "tests/unit/unit_text.h"

#define HEAD                                                                                       \
    "{'federation': 'f', 'zone': 'z.test',"                                                        \
    " 'regions': {'us-east-1': {}, 'eu-west-1': {}},"                                              \
    " 'members': {'usa': {'region': 'us-east-1'},"                                                 \
    "             'jpn': {'region': 'eu-west-1', 'lb': {'mode': 'proxy', 'address': "              \
    "'192.0.2.7'}}},"                                                                              \
    " 'services': {'default/web': {'port': 80}},"

/* Sections without the keys the instances give (region, vantage, control.listen). */
#define DNSD_SECTION                                                                               \
    " 'dnsd': {'zone_file': 'z.zone', 'state_file': 'var/dnsd.json', 'control': {}},"
#define PROXY_SECTION                                                                              \
    " 'proxy': {'listen': [{'address': '192.0.2.7:80', 'member': 'jpn', 'service': "               \
    "'default/web'}]},"
#define SECTIONS DNSD_SECTION " 'health': {'publish_interval_ms': 1000}," PROXY_SECTION

#define DEPLOYMENT                                                                                 \
    " 'deployment': {"                                                                             \
    "   'name_servers': {'ns1': {'listen': ['127.0.0.1:5301'], 'control': '127.0.0.1:9101',"       \
    "                            'region': 'us-east-1', 'state_file': 'var/ns1.json'},"            \
    "                    'ns2': {'listen': ['127.0.0.1:5302'], 'control': '127.0.0.1:9102',"       \
    "                            'region': 'eu-west-1'}},"                                         \
    "   'vantages': {'us-east-1': {'control': '127.0.0.1:9111', 'probe_source': '127.0.3.1'},"     \
    "                'eu-west-1': {'control': '127.0.0.1:9112', 'state_file': 'var/eu.json'}},"    \
    "   'proxies': {'px1': {'control': '127.0.0.1:9121', 'listen': ['127.0.4.3:80']}}}}"

static const char deploy_text[] = HEAD SECTIONS DEPLOYMENT;

static int load_kind(const char *squoted, int kind, const char *instance, struct cm_conf **out,
                     char *err)
{
    char *text = unit_dq(squoted);
    int rc;

    err[0] = '\0';
    *out = NULL;
    if (kind < 0)
        rc = cm_conf_load_string("t.json", text, out, err, CM_CONF_ERR_MAX);
    else
        rc = cm_conf_load_string_instance("t.json", text, (enum cm_instance_kind)kind, instance,
                                          out, err, CM_CONF_ERR_MAX);
    free(text);
    return rc;
}

static struct cm_conf *load_ok(const char *squoted, int kind, const char *instance)
{
    char err[CM_CONF_ERR_MAX];
    struct cm_conf *conf = NULL;

    if (load_kind(squoted, kind, instance, &conf, err) != CM_OK)
        fail_msg("unexpected error: %s", err);
    return conf;
}

static void expect_err(const char *squoted, int kind, const char *instance, const char *want)
{
    char err[CM_CONF_ERR_MAX];
    struct cm_conf *conf = NULL;
    int rc = load_kind(squoted, kind, instance, &conf, err);

    print_message("%s\n", err);
    assert_null(conf);
    assert_int_not_equal(rc, CM_OK);
    assert_string_equal(err, want);
}

static void addr_is(const struct cm_addr *a, const char *want)
{
    char text[CM_ADDR_STRLEN];

    cm_addr_format((const struct sockaddr *)&a->ss, text, sizeof(text));
    assert_string_equal(text, want);
}

/* Loaded whole (fedgslbctl): every instance, the sections as written. */
static void test_whole_file(void **state)
{
    struct cm_conf *c = load_ok(deploy_text, -1, NULL);
    const struct cm_conf_instance *ns;
    size_t n = 0;

    (void)state;
    assert_true(c->deployment.present);
    assert_null(c->instance);
    ns = cm_conf_instances(c, CM_INSTANCE_NAME_SERVER, &n);
    assert_int_equal(n, 2);
    assert_string_equal(ns[1].name, "ns2");
    addr_is(&ns[1].control, "127.0.0.1:9102");
    assert_int_equal(ns[1].region, 1);
    assert_null(ns[1].state_file);
    (void)cm_conf_instances(c, CM_INSTANCE_VANTAGE, &n);
    assert_int_equal(n, 2);
    assert_int_equal(c->deployment.vantages[1].region, 1);
    (void)cm_conf_instances(c, CM_INSTANCE_PROXY, &n);
    assert_int_equal(n, 1);
    /* publish_to: every name server and proxy. */
    assert_int_equal(c->health.publish_to_count, 3);
    assert_string_equal(c->health.publish_to[0], "http://127.0.0.1:9101");
    assert_string_equal(c->health.publish_to[1], "http://127.0.0.1:9102");
    assert_string_equal(c->health.publish_to[2], "http://127.0.0.1:9121");
    assert_int_equal(c->warning_count, 0);
    assert_string_equal(cm_instance_kind_name(CM_INSTANCE_VANTAGE), "vantage");
    assert_string_equal(cm_instance_kind_key(CM_INSTANCE_PROXY), "proxies");
    cm_conf_unref(c);
}

/* Each daemon takes its own part. */
static void test_select(void **state)
{
    struct cm_conf *c;

    (void)state;
    c = load_ok(deploy_text, CM_INSTANCE_NAME_SERVER, "ns2");
    assert_string_equal(c->instance, "ns2");
    assert_int_equal(c->dnsd.listen_count, 1);
    addr_is(&c->dnsd.listen[0], "127.0.0.1:5302");
    assert_int_equal(c->dnsd.region, 1);
    assert_true(c->dnsd.control.enabled);
    addr_is(&c->dnsd.control.listen, "127.0.0.1:9102");
    assert_string_equal(c->dnsd.state_file, "var/dnsd.json"); /* none of its own */
    cm_conf_unref(c);
    c = load_ok(deploy_text, CM_INSTANCE_NAME_SERVER, "ns1");
    assert_string_equal(c->dnsd.state_file, "var/ns1.json");
    assert_int_equal(c->dnsd.region, 0);
    cm_conf_unref(c);
    c = load_ok(deploy_text, CM_INSTANCE_VANTAGE, "us-east-1");
    assert_int_equal(c->health.vantage, 0);
    assert_string_equal(c->health.probe_source, "127.0.3.1");
    addr_is(&c->health.control.listen, "127.0.0.1:9111");
    assert_null(c->health.state_file);
    cm_conf_unref(c);
    c = load_ok(deploy_text, CM_INSTANCE_VANTAGE, "eu-west-1");
    assert_string_equal(c->health.state_file, "var/eu.json");
    cm_conf_unref(c);
    c = load_ok(deploy_text, CM_INSTANCE_PROXY, "px1");
    addr_is(&c->proxy.listen[0].address, "127.0.4.3:80");
    addr_is(&c->proxy.control.listen, "127.0.0.1:9121");
    cm_conf_unref(c);
    /* A file without a deployment: the single-instance form, as before. */
    c = load_ok("{'federation': 'f', 'zone': 'z.test', 'regions': {'r': {}}, 'members': {},"
                " 'dnsd': {'zone_file': 'z', 'region': 'r'}}",
                CM_INSTANCE_NAME_SERVER, NULL);
    assert_null(c->instance);
    assert_false(c->deployment.present);
    cm_conf_unref(c);
}

static void test_select_errors(void **state)
{
    (void)state;
    expect_err(deploy_text, CM_INSTANCE_NAME_SERVER, NULL,
               "t.json: deployment.name_servers lists ns1, ns2: start with --instance NAME (or "
               "FEDGSLB_INSTANCE=NAME)");
    expect_err(deploy_text, CM_INSTANCE_NAME_SERVER, "ns3",
               "t.json: --instance ns3: not in deployment.name_servers (ns1, ns2)");
    expect_err(deploy_text, CM_INSTANCE_VANTAGE, "ns1",
               "t.json: --instance ns1: not in deployment.vantages (us-east-1, eu-west-1)");
    expect_err("{'federation': 'f', 'zone': 'z.test', 'regions': {'r': {}}, 'members': {},"
               " 'dnsd': {'zone_file': 'z', 'region': 'r'}}",
               CM_INSTANCE_NAME_SERVER, "ns1",
               "t.json: --instance ns1: the file lists no name server instances "
               "(deployment.name_servers); leave --instance and FEDGSLB_INSTANCE unset");
    /* An instance off loopback needs the section's token. */
    expect_err(HEAD DNSD_SECTION " 'deployment': {'name_servers': {'ns1': {'control': "
                                 "'192.0.2.53:9153', 'region': 'us-east-1'}}}}",
               CM_INSTANCE_NAME_SERVER, "ns1",
               "t.json: deployment.name_servers.ns1.control: 192.0.2.53:9153 is not a loopback "
               "address and dnsd.control sets no token: set token_file there, or listen on "
               "127.0.0.1");
}

/* The keys instances supply are required where no instance supplies them. */
static void test_supplied_keys(void **state)
{
    (void)state;
    expect_err(HEAD " 'dnsd': {'zone_file': 'z'}, 'deployment': {'vantages': {}}}", -1, NULL,
               "t.json: dnsd.region: missing required key");
    expect_err(HEAD " 'health': {}, 'deployment': {'name_servers': {'ns1': {'control': "
                    "'127.0.0.1:1', 'region': 'us-east-1'}}}}",
               -1, NULL, "t.json: health.vantage: missing required key");
    expect_err(HEAD " 'proxy': {'control': {}}}", -1, NULL,
               "t.json: proxy.control.listen: missing required key");
    expect_err(HEAD " 'deployment': {'vantages': {'mars-1': {'control': '127.0.0.1:1'}}}}", -1,
               NULL,
               "t.json: deployment.vantages.mars-1: unknown vantage \"mars-1\": vantages are "
               "named by their region");
    expect_err(HEAD " 'deployment': {'name_servers': {'ns1': {'region': 'us-east-1'}}}}", -1, NULL,
               "t.json: deployment.name_servers.ns1.control: missing required key");
    expect_err(HEAD " 'deployment': {'name_servers': {'NS1': {'control': '127.0.0.1:1', "
                    "'region': 'us-east-1'}}}}",
               -1, NULL,
               "t.json: deployment.name_servers.NS1: not a DNS label \"NS1\" (lowercase letters, "
               "digits and hyphens, at most 63)");
}

/* Names and addresses that collide. */
static void test_collisions(void **state)
{
    (void)state;
    expect_err(HEAD " 'deployment': {'name_servers': {'us-east-1': {'control': '127.0.0.1:1',"
                    " 'region': 'us-east-1'}},"
                    " 'vantages': {'us-east-1': {'control': '127.0.0.1:2'}}}}",
               -1, NULL,
               "t.json: deployment.vantages.us-east-1: the name \"us-east-1\" is already a name "
               "server (deployment.name_servers.us-east-1): every instance needs a name of its "
               "own");
    expect_err(HEAD " 'deployment': {'name_servers': {'ns1': {'control': '127.0.0.1:9153',"
                    " 'region': 'us-east-1'}, 'ns2': {'control': '127.0.0.1:9153', 'region': "
                    "'us-east-1'}}}}",
               -1, NULL,
               "t.json: deployment.name_servers.ns2.control: 127.0.0.1:9153 is already "
               "deployment.name_servers.ns1.control: two instances cannot listen on one "
               "address");
    /* A proxy's control API on a name server's DNS port. */
    expect_err(HEAD " 'deployment': {'name_servers': {'ns1': {'listen': ['127.0.0.1:53'], "
                    "'control': '127.0.0.1:9153', 'region': 'us-east-1'}},"
                    " 'proxies': {'px': {'control': '127.0.0.1:53'}}}}",
               -1, NULL,
               "t.json: deployment.proxies.px.control: 127.0.0.1:53 is already "
               "deployment.name_servers.ns1.listen[0]: two instances cannot listen on one "
               "address");
    expect_err(HEAD PROXY_SECTION " 'deployment': {'proxies': {'px': {'control': '127.0.0.1:1', "
                                  "'listen': ['127.0.0.1:80', '127.0.0.1:81']}}}}",
               -1, NULL,
               "t.json: deployment.proxies.px.listen: 2 addresses for 1 proxy.listen entries: "
               "one bind address per entry, in order");
}

/* What passes with a warning: a shared state file, a wildcard control address. */
static void test_deployment_warnings(void **state)
{
    struct cm_conf *c =
        load_ok(HEAD DNSD_SECTION " 'deployment': {'name_servers': {"
                                  " 'ns1': {'control': '0.0.0.0:9101', 'region': 'us-east-1'},"
                                  " 'ns2': {'control': '127.0.0.1:9102', 'region': 'us-east-1'}}}}",
                -1, NULL);

    (void)state;
    assert_int_equal(c->warning_count, 2);
    assert_string_equal(c->warnings[0],
                        "t.json: deployment.name_servers.ns2: writes the state file "
                        "var/dnsd.json as ns1 does: give each its own state_file if they run "
                        "on one host");
    assert_string_equal(c->warnings[1],
                        "t.json: deployment.name_servers.ns1.control: a wildcard address: "
                        "fedgslbctl and the vantages will use the loopback; give the address "
                        "they reach it at");
    cm_conf_unref(c);
}

#define NETS(list) HEAD " 'client_networks': [" list "]}"

/* client_networks: a network has one region; overlaps are said. */
static void test_client_networks(void **state)
{
    struct cm_conf *c;

    (void)state;
    expect_err(NETS("{'cidr': '10.1.0.0/16', 'region': 'us-east-1'},"
                    "{'cidr': '10.9.0.0/16', 'region': 'us-east-1'},"
                    "{'cidr': '10.1.0.0/16', 'region': 'eu-west-1'}"),
               -1, NULL,
               "t.json: client_networks[2].cidr: 10.1.0.0/16 is mapped to eu-west-1 here and to "
               "us-east-1 by client_networks[0]: a network has one region; remove one of them");
    expect_err(NETS("{'cidr': '2001:db8::/32', 'region': 'us-east-1'},"
                    "{'cidr': '2001:db8::/32', 'region': 'eu-west-1'}"),
               -1, NULL,
               "t.json: client_networks[1].cidr: 2001:db8::/32 is mapped to eu-west-1 here and "
               "to us-east-1 by client_networks[0]: a network has one region; remove one of "
               "them");
    c = load_ok(NETS("{'cidr': '10.1.2.0/24', 'region': 'eu-west-1'},"
                     "{'cidr': '10.1.0.0/16', 'region': 'us-east-1'},"
                     "{'cidr': '10.1.3.0/24', 'region': 'us-east-1'},"
                     "{'cidr': '10.2.0.0/16', 'region': 'us-east-1'},"
                     "{'cidr': '10.2.0.0/16', 'region': 'us-east-1'},"
                     "{'cidr': '10.1.2.128/25', 'region': 'us-east-1'},"
                     "{'cidr': '10.0.0.0/8', 'region': 'us-east-1'},"
                     "{'cidr': '::/0', 'region': 'eu-west-1'},"
                     "{'cidr': '2001:db8::/48', 'region': 'eu-west-1'},"
                     "{'cidr': '172.16.0.0/12', 'region': 'eu-west-1'},"
                     "{'cidr': '172.24.0.0/16', 'region': 'us-east-1'},"
                     "{'cidr': '172.32.0.0/16', 'region': 'us-east-1'}"),
                -1, NULL);
    for (size_t i = 0; i < c->warning_count; i++)
        print_message("%s\n", c->warnings[i]);
    assert_int_equal(c->warning_count, 4);
    /* A prefix off the byte boundary: 172.24/16 is in 172.16/12, 172.32/16 is not. */
    assert_string_equal(c->warnings[3],
                        "t.json: client_networks[10].cidr: 172.24.0.0/16 (us-east-1) lies inside "
                        "client_networks[9] 172.16.0.0/12 (eu-west-1): its addresses go to "
                        "us-east-1, the longer prefix; fine if that is meant");
    /* Sorted by address: 10.1.2.0/24 (eu) in 10.1/16 (us); 10.1.2.128/25 (us) in it; a dup. */
    assert_string_equal(c->warnings[0],
                        "t.json: client_networks[0].cidr: 10.1.2.0/24 (eu-west-1) lies inside "
                        "client_networks[1] 10.1.0.0/16 (us-east-1): its addresses go to "
                        "eu-west-1, the longer prefix; fine if that is meant");
    assert_string_equal(c->warnings[1],
                        "t.json: client_networks[5].cidr: 10.1.2.128/25 (us-east-1) lies inside "
                        "client_networks[0] 10.1.2.0/24 (eu-west-1): its addresses go to "
                        "us-east-1, the longer prefix; fine if that is meant");
    assert_string_equal(c->warnings[2], "t.json: client_networks[4].cidr: 10.2.0.0/16 is listed "
                                        "twice (also client_networks[3])");
    cm_conf_unref(c);
}

/* Many overlaps: the first 20 are listed, the rest counted. */
static void test_client_networks_many(void **state)
{
    char text[16384];
    size_t len = 0;
    struct cm_conf *c;

    (void)state;
    len += (size_t)snprintf(text + len, sizeof(text) - len,
                            HEAD " 'client_networks': [{'cidr': '10.0.0.0/8', 'region': "
                                 "'us-east-1'}");
    for (int i = 0; i < 30; i++)
        len += (size_t)snprintf(text + len, sizeof(text) - len,
                                ", {'cidr': '10.%d.0.0/16', 'region': 'eu-west-1'}", i);
    snprintf(text + len, sizeof(text) - len, "]}");
    c = load_ok(text, -1, NULL);
    assert_int_equal(c->warning_count, 21);
    assert_string_equal(c->warnings[20],
                        "t.json: client_networks: 10 more overlapping networks not listed");
    cm_conf_unref(c);
}

/* https publish targets where the section's control speaks TLS. */
static void test_publish_tls(void **state)
{
    struct cm_conf *c = load_ok(
        HEAD " 'dnsd': {'zone_file': 'z', 'control': {'tls': {'certificate': 'c', 'key': 'k'}}},"
             " 'health': {}, 'deployment': {'name_servers': {'ns1': {'control': '[::1]:9101', "
             "'region': 'us-east-1'}}, 'vantages': {'us-east-1': {'control': '127.0.0.1:9111'}}}}",
        -1, NULL);

    (void)state;
    assert_int_equal(c->health.publish_to_count, 1);
    assert_string_equal(c->health.publish_to[0], "https://[::1]:9101");
    cm_conf_unref(c);
    /* Given publish_to wins. */
    c = load_ok(HEAD " 'health': {'publish_to': ['http://127.0.0.1:1']}, 'deployment': "
                     "{'name_servers': {'ns1': {'control': '127.0.0.1:9101', 'region': "
                     "'us-east-1'}}, 'vantages': {'us-east-1': {'control': '127.0.0.1:9111'}}}}",
                CM_INSTANCE_VANTAGE, "us-east-1");
    assert_int_equal(c->health.publish_to_count, 1);
    assert_string_equal(c->health.publish_to[0], "http://127.0.0.1:1");
    cm_conf_unref(c);
    /* The distributed mode: the vantages write to etcd, nobody is pushed to. */
    c = load_ok(HEAD " 'health': {}, 'etcd': {'endpoints': ['http://127.0.0.1:2379']}, "
                     "'deployment': {'name_servers': {'ns1': {'control': '127.0.0.1:9101', "
                     "'region': 'us-east-1'}}, 'vantages': {'us-east-1': {'control': "
                     "'127.0.0.1:9111'}}}}",
                CM_INSTANCE_VANTAGE, "us-east-1");
    assert_int_equal(c->health.publish_to_count, 0);
    cm_conf_unref(c);
}

/* conf/deployment.json, the shipped example: loads whole and for every instance. */
static void test_example(void **state)
{
    static const struct {
        enum cm_instance_kind kind;
        const char *name;
    } instances[] = {
        {CM_INSTANCE_NAME_SERVER, "ns1"},        {CM_INSTANCE_NAME_SERVER, "ns2"},
        {CM_INSTANCE_VANTAGE, "us-east-1"},      {CM_INSTANCE_VANTAGE, "eu-west-1"},
        {CM_INSTANCE_VANTAGE, "ap-northeast-1"}, {CM_INSTANCE_PROXY, "px1"},
    };
    char err[CM_CONF_ERR_MAX] = "";
    struct cm_conf *c = NULL;

    (void)state;
    assert_int_equal(chdir(FEDGSLB_SOURCE_DIR), 0); /* paths in the file are repo-relative */
    if (cm_conf_load("conf/deployment.json", &c, err, sizeof(err)) != CM_OK)
        fail_msg("%s", err);
    assert_int_equal(c->warning_count, 0);
    assert_int_equal(c->health.publish_to_count, 3);
    assert_non_null(c->services[1].policy.weights);
    cm_conf_unref(c);
    for (size_t i = 0; i < sizeof(instances) / sizeof(instances[0]); i++) {
        if (cm_conf_load_instance("conf/deployment.json", instances[i].kind, instances[i].name, &c,
                                  err, sizeof(err)) != CM_OK)
            fail_msg("%s: %s", instances[i].name, err);
        assert_string_equal(c->instance, instances[i].name);
        cm_conf_unref(c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_file),      cmocka_unit_test(test_select),
        cmocka_unit_test(test_select_errors),   cmocka_unit_test(test_supplied_keys),
        cmocka_unit_test(test_collisions),      cmocka_unit_test(test_deployment_warnings),
        cmocka_unit_test(test_client_networks), cmocka_unit_test(test_client_networks_many),
        cmocka_unit_test(test_publish_tls),     cmocka_unit_test(test_example),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
