/* SPDX-License-Identifier: Apache-2.0 */
/* test_hc_placement.c -- what registry objects mean (health/hc_placement.h):
 * a member from a KubeFedCluster or Karmada Cluster and its Secret (name,
 * place, server URL, credentials), every reason one is not a member, and the
 * services and rules of FederatedServices and ServiceDNSRecords. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "health/hc_fedsvc.h"
#include "health/hc_k8s.h"
#include "health/hc_kubeconfig.h"
#include "health/hc_placement.h"
#include "tests/unit/health/unit_k8s.h"

static const char conf_text[] =
    "{'federation': 'myfed', 'zone': 'fed.example.test',"
    " 'regions': {'us-east-1': {'zones': ['us-east-1a', 'us-east-1b']}, 'eu-west-1': {}},"
    " 'members': {'usa': {'region': 'us-east-1'}},"
    " 'members_from': {'source': 'kubefed', 'locations': {'loc': {'region': 'us-east-1',"
    " 'zone': 'us-east-1b'}}}}";

static struct cm_conf *conf_load(void)
{
    char err[CM_CONF_ERR_MAX], *text = unit_dq(conf_text);
    struct cm_conf *c = NULL;

    if (cm_conf_load_string("t.json", text, &c, err, sizeof(err)) != CM_OK)
        fail_msg("conf: %s", err);
    free(text);
    return c;
}

#define KFC(name, labels, spec, status)                                                            \
    "{'metadata': {'name': '" name "', 'namespace': 'kube-federation-system', 'labels': {" labels  \
    "}}, 'spec': {" spec "}, 'status': {" status "}}"
#define SPEC "'apiEndpoint': 'https://10.0.0.1:6443/', 'secretRef': {'name': 's'}"
#define REGION_LABELS                                                                              \
    "'topology.kubernetes.io/region': 'us-east-1', 'topology.kubernetes.io/zone': 'us-east-1b'"
/* token "tok", ca.crt "CA" */
#define SECRET                                                                                     \
    "{'metadata': {'name': 's', 'namespace': 'n'}, 'data': {'token': 'dG9r', 'ca.crt': 'Q0E='}}"

struct member_case {
    const char *cluster; /* KubeFedCluster JSON */
    bool with_secret;
    int rc;
    const char *why;       /* rc != CM_OK: the reason; CM_OK: a note or "" */
    const char *placed_by; /* CM_OK */
    int region, zone;      /* CM_OK */
};

static void test_members(void **state)
{
    static const struct member_case cases[] = {
        {KFC("k1", REGION_LABELS, SPEC, ""), true, CM_OK, "", "labels", 0, 1},
        {KFC("k1", "", SPEC, "'region': 'eu-west-1'"), true, CM_OK, "", "status", 1, -1},
        /* A zone the region does not have: placed in the region only, with a note. */
        {KFC("k1", "", SPEC, "'region': 'us-east-1', 'zones': ['us-east-1z', 'us-east-1a']"), true,
         CM_OK, "", "status", 0, 0},
        {KFC("k1", "", SPEC, "'region': 'us-east-1', 'zones': ['us-east-1z']"), true, CM_OK,
         "zone \"us-east-1z\" is not one of regions.us-east-1.zones: placed in the region only",
         "status", 0, -1},
        {KFC("loc", "", SPEC, ""), true, CM_OK, "", "members_from.locations", 0, 1},
        {KFC("k1", "", SPEC, ""), true, CM_ENOENT,
         "no region: the object says none (label topology.kubernetes.io/region or "
         "status.region) and members_from.locations has no entry for it",
         NULL, 0, 0},
        {KFC("k1", "'topology.kubernetes.io/region': 'mars-1'", SPEC, ""), true, CM_ENOENT,
         "region \"mars-1\" (labels) is not one of the configured regions", NULL, 0, 0},
        {KFC("usa", REGION_LABELS, SPEC, ""), true, CM_ENOENT,
         "also configured as members.usa: a member comes from members or from the registry, "
         "not both",
         NULL, 0, 0},
        {KFC("K.1", REGION_LABELS, SPEC, ""), true, CM_ENOENT,
         "the name is not a DNS label (member names are: lowercase letters, digits and hyphens, "
         "at most 63)",
         NULL, 0, 0},
        {KFC("k1", REGION_LABELS, SPEC, ""), false, CM_ENOENT,
         "Secret kube-federation-system/s: not found", NULL, 0, 0},
        {KFC("k1", REGION_LABELS, "'secretRef': {'name': 's'}", ""), true, CM_ENOENT,
         "spec.apiEndpoint: missing", NULL, 0, 0},
        {KFC("k1", REGION_LABELS, "'apiEndpoint': 'ftp://x', 'secretRef': {'name': 's'}", ""), true,
         CM_ENOENT, "spec.apiEndpoint: the scheme must be https (or http)", NULL, 0, 0},
        {KFC("k1", REGION_LABELS,
             "'apiEndpoint': 'https://a', 'proxyURL': 'gopher://p', 'secretRef': {'name': 's'}",
             ""),
         true, CM_ENOENT, "spec.proxyURL: the scheme must be http, https or socks5", NULL, 0, 0},
    };
    struct cm_conf *conf = conf_load();
    struct hc_k8s_obj *secret = unit_k8s_obj(HC_K8S_SECRET, SECRET);

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct member_case *c = &cases[i];
        struct hc_k8s_obj *o = unit_k8s_obj(HC_K8S_KUBEFEDCLUSTER, c->cluster);
        struct cm_conf_member m;
        struct hc_kube_target *t = NULL;
        const char *by = NULL;
        char why[HC_PLACEMENT_WHY_MAX];
        int rc = hc_placement_member(conf, o, c->with_secret ? secret : NULL, &m, &t, &by, why,
                                     sizeof(why));

        if (rc != c->rc || strcmp(why, c->why) != 0)
            fail_msg("row %zu: rc %d why '%s', want %d '%s'", i, rc, why, c->rc, c->why);
        if (rc != CM_OK) {
            assert_null(t);
            hc_k8s_obj_free(o);
            continue;
        }
        assert_string_equal(by, c->placed_by);
        assert_int_equal(m.region, c->region);
        assert_int_equal(m.zone, c->zone);
        assert_string_equal(m.name, o->name);
        assert_string_equal(t->server, "https://10.0.0.1:6443");
        assert_string_equal(t->token, "tok");
        assert_int_equal(t->ca_pem_len, 2); /* the Secret's ca.crt: no caBundle here */
        assert_string_equal(t->context, i == 4 ? "kubefed/loc" : "kubefed/k1");
        hc_kube_target_free(t);
        hc_k8s_obj_free(o);
    }
    hc_k8s_obj_free(secret);
    cm_conf_unref(conf);
}

static void test_karmada_member(void **state)
{
    struct cm_conf *conf = conf_load();
    struct hc_k8s_obj *secret = unit_k8s_obj(HC_K8S_SECRET, SECRET);
    struct hc_k8s_obj *o =
        unit_k8s_obj(HC_K8S_KARMADACLUSTER,
                     "{'metadata': {'name': 'member1'}, 'spec': {'apiEndpoint': '172.18.0.3:6443',"
                     " 'secretRef': {'namespace': 'karmada-cluster', 'name': 'member1'},"
                     " 'insecureSkipTLSVerification': true, 'region': 'eu-west-1', 'proxyURL': "
                     "'socks5://p:1'}}");
    struct cm_conf_member m;
    struct hc_kube_target *t = NULL;
    const char *by = NULL;
    char why[HC_PLACEMENT_WHY_MAX];

    (void)state;
    assert_int_equal(hc_placement_member(conf, o, secret, &m, &t, &by, why, sizeof(why)), CM_OK);
    assert_string_equal(by, "spec.region");
    assert_int_equal(m.region, 1);
    assert_string_equal(t->server, "https://172.18.0.3:6443"); /* no scheme: https */
    assert_true(t->insecure_skip_tls_verify);
    assert_string_equal(t->proxy_url, "socks5://p:1");
    assert_string_equal(t->context, "karmada/member1");
    hc_kube_target_free(t);
    /* The Secret's namespace comes from the object. */
    assert_int_equal(hc_placement_member(conf, o, NULL, &m, &t, &by, why, sizeof(why)), CM_ENOENT);
    assert_string_equal(why, "Secret karmada-cluster/member1: not found");
    hc_k8s_obj_free(o);
    hc_k8s_obj_free(secret);
    secret =
        unit_k8s_obj(HC_K8S_SECRET, "{'metadata': {'name': 's', 'namespace': 'n'}, 'data': {}}");
    o = unit_k8s_obj(HC_K8S_KUBEFEDCLUSTER, KFC("k1", REGION_LABELS, SPEC, ""));
    assert_int_equal(hc_placement_member(conf, o, secret, &m, &t, &by, why, sizeof(why)),
                     CM_ENOENT);
    assert_string_equal(why, "Secret kube-federation-system/s: data.token: missing");
    hc_k8s_obj_free(o);
    hc_k8s_obj_free(secret);
    cm_conf_unref(conf);
}

static void test_server_url(void **state)
{
    static const char *const good[][2] = {
        {"https://10.0.0.1:6443", "https://10.0.0.1:6443"},
        {"https://10.0.0.1:6443///", "https://10.0.0.1:6443"},
        {"10.0.0.1", "https://10.0.0.1"},
        {"api.example.test:443", "https://api.example.test:443"},
        {"http://[2001:db8::1]:8080", "http://[2001:db8::1]:8080"},
        {"https://rancher.example/k8s/clusters/c-m-1/",
         "https://rancher.example/k8s/clusters/c-m-1"},
    };
    static const char *const bad[] = {
        "",
        "ftp://h",
        "https://",
        "https:///x",
        "https://u:p@h",
        "https://h?x",
        "https://h#x",
        "https://h:0",
        "https://h:65536",
        "https://h:",
        "https://h:6443:",
        "https://10.0.0.1:6443:///",
        "https://h//x",
        "https://[::1",
        "https://[10.0.0.1]",
        "https://h x",
        "https://h\n",
        "https://h_1",
    };
    char out[4096], why[HC_PLACEMENT_WHY_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (hc_placement_server_url(good[i][0], out, sizeof(out), why, sizeof(why)) != CM_OK)
            fail_msg("'%s': %s", good[i][0], why);
        assert_string_equal(out, good[i][1]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why[0] = '\0';
        if (hc_placement_server_url(bad[i], out, sizeof(out), why, sizeof(why)) != CM_EINVAL)
            fail_msg("'%s' accepted: %s", bad[i], out);
        assert_true(why[0] != '\0');
    }
}

/* Services: FederatedService placement and ServiceDNSRecord rules. */
static void test_services(void **state)
{
    struct cm_conf *conf = conf_load();
    struct hc_k8s_obj *clusters[] = {
        unit_k8s_obj(HC_K8S_KUBEFEDCLUSTER, KFC("k1", "'tier': 'gold'", SPEC, "")),
        unit_k8s_obj(HC_K8S_KUBEFEDCLUSTER, KFC("k2", "'tier': 'iron'", SPEC, "")),
        unit_k8s_obj(HC_K8S_KUBEFEDCLUSTER, KFC("k3", "'tier': 'gold'", SPEC, "")),
    };
    struct hc_k8s_obj *fs[] = {
        unit_k8s_obj(HC_K8S_FEDSERVICE,
                     "{'metadata': {'name': 'sel', 'namespace': 'd'}, 'spec': "
                     "{'placement': {'clusterSelector': {'matchLabels': {'tier': "
                     "'gold'}}}}}"),
        unit_k8s_obj(HC_K8S_FEDSERVICE,
                     "{'metadata': {'name': 'list', 'namespace': 'd'}, 'spec': "
                     "{'placement': {'clusters': [{'name': 'k2'}, {'name': 'gone'}, "
                     "{'name': 'k2'}], 'clusterSelector': {}}}}"),
        unit_k8s_obj(HC_K8S_FEDSERVICE,
                     "{'metadata': {'name': 'none', 'namespace': 'd'}, 'spec': {}}"),
        unit_k8s_obj(HC_K8S_FEDSERVICE, "{'metadata': {'name': 'bad', 'namespace': 'd'}, 'spec': "
                                        "{'placement': {'clusters': 'k1'}}}"),
        unit_k8s_obj(HC_K8S_FEDSERVICE, "{'metadata': {'name': 'Not_A_Label', 'namespace': 'd'}}"),
    };
    struct hc_k8s_obj *recs[] = {
        unit_k8s_obj(HC_K8S_SVCDNS, "{'metadata': {'name': 'sel', 'namespace': 'd'}, 'spec': "
                                    "{'domainRef': 'myfed', 'recordTTL': 300, "
                                    "'allowServiceWithoutEndpoints': true}}"),
        unit_k8s_obj(HC_K8S_SVCDNS, "{'metadata': {'name': 'dnsonly', 'namespace': 'd'}, 'spec': "
                                    "{'domainRef': 'myfed', 'recordTTL': 999999}}"),
        unit_k8s_obj(HC_K8S_SVCDNS, "{'metadata': {'name': 'other', 'namespace': 'd'}, 'spec': "
                                    "{'domainRef': 'otherfed'}}"),
    };
    struct hc_k8s_obj *doms[] = {
        unit_k8s_obj(HC_K8S_DOMAIN, "{'metadata': {'name': 'myfed', 'namespace': "
                                    "'kube-federation-system'}, 'domain': 'FED.Example.Test.'}"),
    };
    struct hc_placement_objs in = {.conf = conf,
                                   .clusters = (const struct hc_k8s_obj *const *)clusters,
                                   .cluster_count = 3,
                                   .fedsvcs = (const struct hc_k8s_obj *const *)fs,
                                   .fedsvc_count = 5,
                                   .records = (const struct hc_k8s_obj *const *)recs,
                                   .record_count = 3,
                                   .domains = (const struct hc_k8s_obj *const *)doms,
                                   .domain_count = 1};
    json_t *notes = json_array();
    struct hc_fedsvcs *set = hc_placement_services(&in, notes);
    const struct hc_fedsvc *f;

    (void)state;
    assert_non_null(set);
    assert_int_equal(set->count, 5); /* bad, dnsonly, list, none, sel */
    f = hc_fedsvcs_find(set, "d", "sel");
    assert_true(f->has_placement);
    assert_int_equal(f->placement_count, 2);
    assert_string_equal(f->placement[0], "k1");
    assert_string_equal(f->placement[1], "k3");
    assert_int_equal(f->ttl_s, 300);
    assert_true(f->allow_no_endpoints);
    f = hc_fedsvcs_find(set, "d", "list"); /* clusters win; duplicates once; sorted */
    assert_int_equal(f->placement_count, 2);
    assert_string_equal(f->placement[0], "gone");
    assert_string_equal(f->placement[1], "k2");
    f = hc_fedsvcs_find(set, "d", "none");
    assert_true(f->has_placement);
    assert_int_equal(f->placement_count, 0);
    f = hc_fedsvcs_find(set, "d", "bad");
    assert_true(f->has_placement);
    assert_int_equal(f->placement_count, 0);
    f = hc_fedsvcs_find(set, "d", "dnsonly"); /* a record alone: every member */
    assert_false(f->has_placement);
    assert_int_equal(f->ttl_s, 86400);
    assert_null(hc_fedsvcs_find(set, "d", "other"));
    assert_int_equal(json_array_size(notes), 4);
    assert_string_equal(json_string_value(json_array_get(notes, 0)),
                        "FederatedService d/bad: spec.placement.clusters: not an array: placed "
                        "nowhere");
    assert_string_equal(json_string_value(json_array_get(notes, 1)),
                        "FederatedService d/Not_A_Label: not a service key (namespace/name, DNS "
                        "labels): skipped");
    assert_string_equal(json_string_value(json_array_get(notes, 2)),
                        "ServiceDNSRecord d/dnsonly: recordTTL 999999 above 86400: answered with "
                        "86400");
    assert_string_equal(json_string_value(json_array_get(notes, 3)),
                        "ServiceDNSRecord d/other: Domain kube-federation-system/otherfed not "
                        "found: skipped");
    assert_true(hc_fedsvcs_equal(set, set));
    assert_false(hc_fedsvcs_equal(set, NULL));
    hc_fedsvcs_free(set);
    json_decref(notes);
    for (size_t i = 0; i < 3; i++)
        hc_k8s_obj_free(clusters[i]);
    for (size_t i = 0; i < 5; i++)
        hc_k8s_obj_free(fs[i]);
    for (size_t i = 0; i < 3; i++)
        hc_k8s_obj_free(recs[i]);
    hc_k8s_obj_free(doms[0]);
    cm_conf_unref(conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_members),
        cmocka_unit_test(test_karmada_member),
        cmocka_unit_test(test_server_url),
        cmocka_unit_test(test_services),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
