/* SPDX-License-Identifier: Apache-2.0 */
/* test_hc_k8s_fed.c -- the registry's objects (KubeFedCluster, Karmada
 * Cluster, Secret, FederatedService, Domain, ServiceDNSRecord): the shapes
 * kubefedctl join and karmadactl join write, and hostile ones (missing
 * fields, wrong types, bad base64, huge strings), each parsed with its
 * problem named and the rest of the list unharmed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/cm_err.h"
#include "health/hc_k8s.h"
#include "tests/unit/health/unit_k8s.h"

static void expect_problem(enum hc_k8s_kind kind, const char *obj_json, const char *want)
{
    struct hc_k8s_obj *o = unit_k8s_obj(kind, obj_json);
    const char *got = hc_k8s_fed_problem(o);

    if (want == NULL && got != NULL)
        fail_msg("unexpected problem: %s", got);
    if (want != NULL && (got == NULL || strcmp(got, want) != 0))
        fail_msg("problem '%s', want '%s'", got != NULL ? got : "(none)", want);
    hc_k8s_obj_free(o);
}

/* "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" */
#define CA_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="
#define CA_PEM "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"

#define KFC_META(extra)                                                                            \
    "'metadata': {'name': 'usa', 'namespace': 'kube-federation-system', 'resourceVersion': "       \
    "'5'" extra "}"

static void test_kubefedcluster_as_joined(void **state)
{
    struct hc_k8s_obj *o =
        unit_k8s_obj(HC_K8S_KUBEFEDCLUSTER,
                     "{" KFC_META(", 'labels': {'topology.kubernetes.io/region': 'us-east-1',"
                                  " 'topology.kubernetes.io/zone': 'us-east-1a', 'tier': "
                                  "'gold'}") ","
                                             " 'spec': {'apiEndpoint': "
                                             "'https://10.0.0.1:6443', 'caBundle': '" CA_B64 "',"
                                             "          'secretRef': {'name': 'usa-2hx8k'}},"
                                             " 'status': {'conditions': [{'type': 'Ready', "
                                             "'status': 'True'}],"
                                             "            'region': 'eu-west-1', 'zones': "
                                             "['eu-west-1a']}}");
    const struct hc_k8s_fedcluster *c = &o->u.cluster;

    (void)state;
    assert_string_equal(o->name, "usa");
    assert_string_equal(o->ns, "kube-federation-system");
    assert_null(c->problem);
    assert_string_equal(c->api_endpoint, "https://10.0.0.1:6443");
    assert_int_equal(c->ca_pem_len, strlen(CA_PEM));
    assert_memory_equal(c->ca_pem, CA_PEM, c->ca_pem_len);
    assert_null(c->secret_ns);
    assert_string_equal(c->secret_name, "usa-2hx8k");
    assert_false(c->insecure);
    /* The labels win over what KubeFed recorded in status. */
    assert_string_equal(c->region, "us-east-1");
    assert_int_equal(c->zone_count, 1);
    assert_string_equal(c->zones[0], "us-east-1a");
    assert_int_equal(c->label_count, 3);
    hc_k8s_obj_free(o);

    /* Without labels, status.region and status.zones place it. */
    o = unit_k8s_obj(HC_K8S_KUBEFEDCLUSTER,
                     "{" KFC_META("") ", 'spec': {'apiEndpoint': '10.0.0.1:6443', 'secretRef':"
                                      " {'name': 's'}, 'disabledTLSValidations': ['*'],"
                                      " 'proxyURL': 'http://proxy:3128'},"
                                      " 'status': {'region': 'eu-west-1', 'zones': ['eu-west-1b',"
                                      " 'eu-west-1a']}}");
    c = &o->u.cluster;
    assert_null(c->problem);
    assert_null(c->ca_pem);
    assert_true(c->insecure);
    assert_string_equal(c->proxy_url, "http://proxy:3128");
    assert_string_equal(c->region, "eu-west-1");
    assert_int_equal(c->zone_count, 2);
    assert_string_equal(c->zones[1], "eu-west-1a");
    hc_k8s_obj_free(o);
}

static void test_kubefedcluster_hostile(void **state)
{
    char *huge = malloc(HC_K8S_FED_STR_MAX + 200), *big_ca, *obj;
    size_t n;

    (void)state;
    expect_problem(HC_K8S_KUBEFEDCLUSTER, "{" KFC_META("") "}", "spec.apiEndpoint: missing");
    expect_problem(HC_K8S_KUBEFEDCLUSTER, "{" KFC_META("") ", 'spec': 'x'}", "spec: not an object");
    expect_problem(HC_K8S_KUBEFEDCLUSTER,
                   "{" KFC_META("") ", 'spec': {'apiEndpoint': 'https://a', 'secretRef': {}}}",
                   "spec.secretRef.name: missing");
    expect_problem(HC_K8S_KUBEFEDCLUSTER,
                   "{" KFC_META("") ", 'spec': {'apiEndpoint': 7, 'secretRef': {'name': 's'}}}",
                   "spec.apiEndpoint: not a string");
    expect_problem(HC_K8S_KUBEFEDCLUSTER,
                   "{" KFC_META("") ", 'spec': {'apiEndpoint': 'https://a', 'caBundle': 'not$b64',"
                                    " 'secretRef': {'name': 's'}}}",
                   "spec.caBundle: invalid base64");
    expect_problem(HC_K8S_KUBEFEDCLUSTER,
                   "{" KFC_META("") ", 'spec': {'apiEndpoint': 'https://a', 'caBundle': 12,"
                                    " 'secretRef': {'name': 's'}}}",
                   "spec.caBundle: not a base64 string");
    expect_problem(HC_K8S_KUBEFEDCLUSTER,
                   "{" KFC_META("") ", 'spec': {'apiEndpoint': 'https://a', 'secretRef':"
                                    " {'name': 's'}, 'disabledTLSValidations': ['SubjectName']}}",
                   "spec.disabledTLSValidations[0]: only \"*\" is supported");
    expect_problem(HC_K8S_KUBEFEDCLUSTER,
                   "{" KFC_META(", 'labels': {'a': 1}") ", 'spec': {'apiEndpoint': 'https://a',"
                                                        " 'secretRef': {'name': 's'}}}",
                   "metadata.labels: value of a key not a string");
    /* A huge string: refused by its cap, not copied. */
    memset(huge, 'a', HC_K8S_FED_STR_MAX + 1);
    huge[HC_K8S_FED_STR_MAX + 1] = '\0';
    n = strlen(huge) + 512;
    obj = malloc(n);
    snprintf(obj, n,
             "{" KFC_META("") ", 'spec': {'apiEndpoint': '%s', 'secretRef': {'name': 's'}}}", huge);
    expect_problem(HC_K8S_KUBEFEDCLUSTER, obj, "spec.apiEndpoint: longer than 4096 bytes");
    free(obj);
    /* A CA bundle above 1 MiB decoded. */
    n = (HC_K8S_FED_CA_MAX / 3 + 2) * 4;
    big_ca = malloc(n + 1);
    memset(big_ca, 'A', n);
    big_ca[n] = '\0';
    obj = malloc(n + 512);
    snprintf(obj, n + 512,
             "{" KFC_META("") ", 'spec': {'apiEndpoint': 'https://a', 'caBundle': '%s',"
                              " 'secretRef': {'name': 's'}}}",
             big_ca);
    expect_problem(HC_K8S_KUBEFEDCLUSTER, obj, "spec.caBundle: larger than 1048576 bytes");
    free(obj);
    free(big_ca);
    free(huge);
}

#define KMC_META "'metadata': {'name': 'member1', 'resourceVersion': '9'}"

static void test_karmada_cluster(void **state)
{
    struct hc_k8s_obj *o = unit_k8s_obj(
        HC_K8S_KARMADACLUSTER,
        "{" KMC_META ", 'spec': {'syncMode': 'Push', 'apiEndpoint': 'https://172.18.0.3:6443',"
        " 'secretRef': {'namespace': 'karmada-cluster', 'name': 'member1'},"
        " 'impersonatorSecretRef': {'namespace': 'karmada-cluster', 'name': 'member1-imp'},"
        " 'insecureSkipTLSVerification': true, 'region': 'eu-west-1',"
        " 'zones': ['eu-west-1a', 'eu-west-1b'], 'provider': 'aws'}}");
    const struct hc_k8s_fedcluster *c = &o->u.cluster;

    (void)state;
    assert_null(o->ns); /* cluster-scoped */
    assert_null(c->problem);
    assert_string_equal(c->secret_ns, "karmada-cluster");
    assert_string_equal(c->secret_name, "member1");
    assert_true(c->insecure);
    assert_string_equal(c->region, "eu-west-1");
    assert_int_equal(c->zone_count, 2);
    hc_k8s_obj_free(o);
    /* The deprecated single zone of older objects. */
    o = unit_k8s_obj(HC_K8S_KARMADACLUSTER,
                     "{" KMC_META
                     ", 'spec': {'apiEndpoint': 'https://a', 'secretRef': {'namespace':"
                     " 'k', 'name': 'm'}, 'zone': 'us-east-1a'}}");
    assert_int_equal(o->u.cluster.zone_count, 1);
    assert_string_equal(o->u.cluster.zones[0], "us-east-1a");
    assert_null(o->u.cluster.region);
    hc_k8s_obj_free(o);
    /* Pull mode: no credentials for us. */
    expect_problem(HC_K8S_KARMADACLUSTER,
                   "{" KMC_META ", 'spec': {'syncMode': 'Pull', 'apiEndpoint': 'https://a'}}",
                   "spec.secretRef.name: missing");
    expect_problem(HC_K8S_KARMADACLUSTER,
                   "{" KMC_META ", 'spec': {'apiEndpoint': 'https://a', 'secretRef': {'name':"
                   " 'm'}}}",
                   "spec.secretRef.namespace: missing");
    expect_problem(HC_K8S_KARMADACLUSTER,
                   "{" KMC_META ", 'spec': {'apiEndpoint': 'https://a', 'secretRef': {'namespace':"
                   " 'k', 'name': 'm'}, 'insecureSkipTLSVerification': 'yes'}}",
                   "spec.insecureSkipTLSVerification: not a boolean");
    expect_problem(HC_K8S_KARMADACLUSTER,
                   "{" KMC_META ", 'spec': {'apiEndpoint': 'https://a', 'secretRef': {'namespace':"
                   " 'k', 'name': 'm'}, 'zones': ['a', '']}}",
                   "spec.zones[1]: not a non-empty string");
}

#define SECRET(data)                                                                               \
    "{'metadata': {'name': 'usa-2hx8k', 'namespace': 'kube-federation-system'}, 'type':"           \
    " 'Opaque', 'data': {" data "}}"

static void test_secret(void **state)
{
    /* token "tok-usa", ca.crt the PEM above */
    struct hc_k8s_obj *o =
        unit_k8s_obj(HC_K8S_SECRET, SECRET("'token': 'dG9rLXVzYQ==', 'ca.crt': '" CA_B64 "'"));

    (void)state;
    assert_null(o->u.secret.problem);
    assert_int_equal(o->u.secret.token_len, 7);
    assert_string_equal(o->u.secret.token, "tok-usa");
    assert_memory_equal(o->u.secret.ca_pem, CA_PEM, strlen(CA_PEM));
    hc_k8s_obj_free(o);
    /* Karmada's key for the CA. */
    o = unit_k8s_obj(HC_K8S_SECRET, SECRET("'token': 'dG9rLXVzYQ==', 'caBundle': '" CA_B64 "'"));
    assert_int_equal(o->u.secret.ca_pem_len, strlen(CA_PEM));
    hc_k8s_obj_free(o);
    expect_problem(HC_K8S_SECRET, SECRET("'ca.crt': '" CA_B64 "'"), "data.token: missing");
    expect_problem(HC_K8S_SECRET, SECRET("'token': 'dG9r=LXVz'"), "data.token: invalid base64");
    /* "a\nb": a token that would split an HTTP header */
    expect_problem(HC_K8S_SECRET, SECRET("'token': 'YQpi'"),
                   "data.token: not a bearer token (empty, or a NUL or line break inside)");
    expect_problem(HC_K8S_SECRET, "{'metadata': {'name': 's', 'namespace': 'n'}, 'data': []}",
                   "data: not an object");
}

#define FSVC(spec) "{'metadata': {'name': 'web', 'namespace': 'default'}, 'spec': " spec "}"

static void test_federatedservice(void **state)
{
    struct hc_k8s_obj *o =
        unit_k8s_obj(HC_K8S_FEDSERVICE,
                     FSVC("{'template': {'spec': {'ports': [{'port': 80}]}},"
                          " 'placement': {'clusters': [{'name': 'usa'}, {'name': 'eur'}],"
                          "               'clusterSelector': {'matchLabels': {'tier': 'gold'}}}}"));
    const struct hc_k8s_fedsvc *f = &o->u.fedsvc;

    (void)state;
    assert_null(f->problem);
    assert_true(f->has_clusters);
    assert_int_equal(f->cluster_count, 2);
    assert_string_equal(f->clusters[1], "eur");
    assert_true(f->has_selector);
    hc_k8s_obj_free(o);
    o = unit_k8s_obj(HC_K8S_FEDSERVICE, FSVC("{'placement': {'clusters': []}}"));
    assert_true(o->u.fedsvc.has_clusters);
    assert_int_equal(o->u.fedsvc.cluster_count, 0);
    assert_false(o->u.fedsvc.has_selector);
    hc_k8s_obj_free(o);
    o = unit_k8s_obj(HC_K8S_FEDSERVICE, FSVC("{}"));
    assert_false(o->u.fedsvc.has_clusters);
    assert_false(o->u.fedsvc.has_selector);
    assert_null(o->u.fedsvc.problem);
    hc_k8s_obj_free(o);
    o = unit_k8s_obj(HC_K8S_FEDSERVICE,
                     FSVC("{'placement': {'clusterSelector': {'matchExpressions': [{'key': 'env',"
                          " 'operator': 'In', 'values': ['prod', 'stage']}, {'key': 'beta',"
                          " 'operator': 'DoesNotExist'}]}}}"));
    f = &o->u.fedsvc;
    assert_null(f->problem);
    assert_int_equal(f->selector.expr_count, 2);
    assert_int_equal(f->selector.exprs[0].op, HC_K8S_SEL_IN);
    assert_int_equal(f->selector.exprs[0].value_count, 2);
    assert_int_equal(f->selector.exprs[1].op, HC_K8S_SEL_DOES_NOT_EXIST);
    hc_k8s_obj_free(o);
    expect_problem(HC_K8S_FEDSERVICE, FSVC("{'placement': {'clusters': [{'nom': 'usa'}]}}"),
                   "spec.placement.clusters[0].name: missing");
    expect_problem(HC_K8S_FEDSERVICE, FSVC("{'placement': {'clusters': {'name': 'usa'}}}"),
                   "spec.placement.clusters: not an array");
    expect_problem(HC_K8S_FEDSERVICE,
                   FSVC("{'placement': {'clusterSelector': {'matchExpressions': [{'key': 'a',"
                        " 'operator': 'Gt', 'values': ['1']}]}}}"),
                   "spec.placement.clusterSelector.matchExpressions[0].operator: not In, NotIn, "
                   "Exists or DoesNotExist");
    expect_problem(HC_K8S_FEDSERVICE,
                   FSVC("{'placement': {'clusterSelector': {'matchExpressions': [{'key': 'a',"
                        " 'operator': 'In'}]}}}"),
                   "spec.placement.clusterSelector.matchExpressions[0].values: In and NotIn "
                   "need values");
    expect_problem(HC_K8S_FEDSERVICE,
                   FSVC("{'placement': {'clusterSelector': {'matchExpressions': [{'key': 'a',"
                        " 'operator': 'Exists', 'values': ['x']}]}}}"),
                   "spec.placement.clusterSelector.matchExpressions[0].values: Exists and "
                   "DoesNotExist take none");
}

static void test_selector_match(void **state)
{
    char k_tier[] = "tier", k_env[] = "env", v_gold[] = "gold", v_prod[] = "prod", v_dev[] = "dev";
    struct hc_k8s_label gold_prod[] = {{k_tier, v_gold}, {k_env, v_prod}};
    struct hc_k8s_label dev[] = {{k_env, v_dev}};
    char *in_vals[] = {v_prod, v_dev};
    struct hc_k8s_sel_expr in_env = {k_env, HC_K8S_SEL_IN, in_vals, 1};
    struct hc_k8s_sel_expr notin_env = {k_env, HC_K8S_SEL_NOT_IN, in_vals, 1};
    struct hc_k8s_sel_expr has_tier = {k_tier, HC_K8S_SEL_EXISTS, NULL, 0};
    struct hc_k8s_sel_expr no_tier = {k_tier, HC_K8S_SEL_DOES_NOT_EXIST, NULL, 0};
    struct hc_k8s_selector empty = {0};
    struct hc_k8s_selector ml = {.labels = gold_prod, .label_count = 1};

    (void)state;
    assert_true(hc_k8s_selector_match(&empty, NULL, 0)); /* {} selects every cluster */
    assert_true(hc_k8s_selector_match(&ml, gold_prod, 2));
    assert_false(hc_k8s_selector_match(&ml, dev, 1));
    ml.exprs = &in_env;
    ml.expr_count = 1;
    assert_true(hc_k8s_selector_match(&ml, gold_prod, 2)); /* ANDed: tier=gold, env in (prod) */
    ml.label_count = 0;
    assert_false(hc_k8s_selector_match(&ml, dev, 1));
    ml.exprs = &notin_env;
    assert_true(hc_k8s_selector_match(&ml, dev, 1));
    assert_true(hc_k8s_selector_match(&ml, NULL, 0)); /* NotIn matches an absent label */
    assert_false(hc_k8s_selector_match(&ml, gold_prod, 2));
    ml.exprs = &has_tier;
    assert_true(hc_k8s_selector_match(&ml, gold_prod, 2));
    assert_false(hc_k8s_selector_match(&ml, dev, 1));
    ml.exprs = &no_tier;
    assert_false(hc_k8s_selector_match(&ml, gold_prod, 2));
    assert_true(hc_k8s_selector_match(&ml, dev, 1));
}

static void test_multicluster_dns(void **state)
{
    struct hc_k8s_obj *o = unit_k8s_obj(
        HC_K8S_SVCDNS, "{'metadata': {'name': 'web', 'namespace': 'default'}, 'spec': {"
                       "'domainRef': 'myfed', 'recordTTL': 300, 'dnsPrefix': 'www',"
                       " 'allowServiceWithoutEndpoints': true}, 'status': {'domain': 'x'}}");

    (void)state;
    assert_null(o->u.svcdns.problem);
    assert_string_equal(o->u.svcdns.domain_ref, "myfed");
    assert_int_equal(o->u.svcdns.record_ttl, 300);
    assert_true(o->u.svcdns.allow_no_endpoints);
    assert_string_equal(o->u.svcdns.dns_prefix, "www");
    assert_null(o->u.svcdns.external_name);
    hc_k8s_obj_free(o);
    expect_problem(HC_K8S_SVCDNS, "{'metadata': {'name': 'w', 'namespace': 'd'}, 'spec': {}}",
                   "spec.domainRef: missing");
    expect_problem(HC_K8S_SVCDNS,
                   "{'metadata': {'name': 'w', 'namespace': 'd'}, 'spec': {'domainRef': 'f',"
                   " 'recordTTL': -5}}",
                   "spec.recordTTL: not a TTL in seconds");
    expect_problem(HC_K8S_SVCDNS,
                   "{'metadata': {'name': 'w', 'namespace': 'd'}, 'spec': {'domainRef': 'f',"
                   " 'recordTTL': 1e9}}",
                   "spec.recordTTL: not a TTL in seconds");
    o = unit_k8s_obj(HC_K8S_DOMAIN, "{'metadata': {'name': 'myfed', 'namespace':"
                                    " 'kube-federation-system'}, 'domain': 'fed.example.test',"
                                    " 'nameServer': 'ns1.example.test'}");
    assert_string_equal(o->u.domain.domain, "fed.example.test");
    assert_null(o->u.domain.problem);
    hc_k8s_obj_free(o);
    expect_problem(HC_K8S_DOMAIN, "{'metadata': {'name': 'f', 'namespace': 'n'}}",
                   "domain: missing");
}

/* One broken object does not fail the list; a nameless one still does. */
static void test_list_isolation(void **state)
{
    char *body = unit_dq("{'metadata': {'resourceVersion': '77'}, 'items': ["
                         "{'metadata': {'name': 'bad', 'namespace': 'k'}, 'spec': 7},"
                         "{'metadata': {'name': 'good', 'namespace': 'k'}, 'spec': {'apiEndpoint':"
                         " 'https://a', 'secretRef': {'name': 's'}}}]}");
    char *nameless = unit_dq("{'metadata': {}, 'items': [{'metadata': {'namespace': 'k'}}]}");
    char err[HC_K8S_ERR_MAX];
    struct hc_k8s_list l;

    (void)state;
    assert_int_equal(
        hc_k8s_list_parse(body, strlen(body), HC_K8S_KUBEFEDCLUSTER, &l, err, sizeof(err)), CM_OK);
    assert_int_equal(l.count, 2);
    assert_string_equal(l.items[0]->u.cluster.problem, "spec: not an object");
    assert_null(l.items[1]->u.cluster.problem);
    hc_k8s_list_fini(&l);
    assert_int_equal(
        hc_k8s_list_parse(nameless, strlen(nameless), HC_K8S_SECRET, &l, err, sizeof(err)),
        CM_EPARSE);
    free(body);
    free(nameless);
}

static void test_paths(void **state)
{
    char p[128];

    (void)state;
    assert_string_equal(hc_k8s_kind_name(HC_K8S_KARMADACLUSTER), "clusters");
    assert_string_equal(hc_k8s_kind_path(HC_K8S_FEDSERVICE),
                        "/apis/types.kubefed.io/v1beta1/federatedservices");
    assert_int_equal(hc_k8s_kind_path_ns(HC_K8S_SECRET, "kube-federation-system", p, sizeof(p)),
                     CM_OK);
    assert_string_equal(p, "/api/v1/namespaces/kube-federation-system/secrets");
    assert_int_equal(hc_k8s_kind_path_ns(HC_K8S_KUBEFEDCLUSTER, "kfs", p, sizeof(p)), CM_OK);
    assert_string_equal(p, "/apis/core.kubefed.io/v1beta1/namespaces/kfs/kubefedclusters");
    assert_int_equal(hc_k8s_kind_path_ns(HC_K8S_DOMAIN, NULL, p, sizeof(p)), CM_OK);
    assert_string_equal(p, "/apis/multiclusterdns.kubefed.io/v1alpha1/domains");
    assert_int_equal(hc_k8s_kind_path_ns(HC_K8S_KARMADACLUSTER, "x", p, sizeof(p)), CM_EINVAL);
    assert_int_equal(hc_k8s_kind_path_ns(HC_K8S_SECRET, "kube-federation-system", p, 20),
                     CM_ETOOBIG);
    assert_false(hc_k8s_kind_namespaced(HC_K8S_KARMADACLUSTER));
    assert_true(hc_k8s_kind_namespaced(HC_K8S_SVCDNS));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kubefedcluster_as_joined),
        cmocka_unit_test(test_kubefedcluster_hostile),
        cmocka_unit_test(test_karmada_cluster),
        cmocka_unit_test(test_secret),
        cmocka_unit_test(test_federatedservice),
        cmocka_unit_test(test_selector_match),
        cmocka_unit_test(test_multicluster_dns),
        cmocka_unit_test(test_list_isolation),
        cmocka_unit_test(test_paths),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
