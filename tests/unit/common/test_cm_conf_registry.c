/* SPDX-License-Identifier: Apache-2.0 */
/* test_cm_conf_registry.c -- members_from (the host cluster's member
 * registry) and configurations extended with registry members
 * (cm_conf_with_members). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"

static char *dq(const char *s)
{
    char *out = strdup(s);

    assert_non_null(out);
    for (char *c = out; *c != '\0'; c++) {
        if (*c == '\'')
            *c = '"';
    }
    return out;
}

#define BASE                                                                                       \
    "'federation': 'f', 'zone': 'z.test',"                                                         \
    "'regions': {'r1': {'zones': ['r1a', 'r1b']}, 'r2': {}},"                                      \
    "'members': {'m1': {'region': 'r1', 'zone': 'r1b'}}"

static int load(const char *squoted, struct cm_conf **out, char *err)
{
    char *text = dq(squoted);
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
    return conf;
}

static void expect_err(const char *squoted, const char *want)
{
    char err[CM_CONF_ERR_MAX];
    struct cm_conf *conf = NULL;

    assert_int_equal(load(squoted, &conf, err), CM_ECONFIG);
    assert_null(conf);
    assert_string_equal(err, want);
}

static void test_absent(void **state)
{
    struct cm_conf *c = load_ok("{" BASE "}");

    (void)state;
    assert_false(c->members_from.present);
    assert_null(c->members_from.namespace_);
    assert_false(c->members_from.services);
    cm_conf_unref(c);
}

static void test_kubefed_defaults(void **state)
{
    struct cm_conf *c = load_ok("{" BASE ", 'members_from': {'source': 'kubefed', 'kubeconfig':"
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

static void test_karmada(void **state)
{
    struct cm_conf *c = load_ok("{" BASE ", 'members_from': {'source': 'karmada', 'in_cluster':"
                                " true}}");

    (void)state;
    assert_int_equal(c->members_from.source, CM_REGISTRY_KARMADA);
    assert_true(c->members_from.in_cluster);
    assert_null(c->members_from.namespace_);
    assert_false(c->members_from.services);
    cm_conf_unref(c);
    c = load_ok("{" BASE ", 'members_from': {'source': 'kubefed', 'namespace': 'fed',"
                " 'services': false}}");
    assert_string_equal(c->members_from.namespace_, "fed");
    assert_false(c->members_from.services);
    cm_conf_unref(c);
}

static void test_errors(void **state)
{
    (void)state;
    expect_err("{" BASE ", 'members_from': {}}",
               "t.json: members_from.source: missing required key");
    expect_err("{" BASE ", 'members_from': {'source': 'clusternet'}}",
               "t.json: members_from.source: must be one of \"kubefed\", \"karmada\", not "
               "\"clusternet\"");
    expect_err("{" BASE ", 'members_from': {'source': 'karmada', 'namespace': 'x'}}",
               "t.json: members_from.namespace: only with source \"kubefed\" (Karmada's Clusters "
               "are cluster-scoped and spec.secretRef names the Secret's namespace)");
    expect_err("{" BASE ", 'members_from': {'source': 'karmada', 'services': true}}",
               "t.json: members_from.services: only with source \"kubefed\" (FederatedService, "
               "Domain and ServiceDNSRecord are KubeFed's)");
    expect_err("{" BASE ", 'members_from': {'source': 'kubefed', 'services': 'yes'}}",
               "t.json: members_from.services: must be true or false");
    expect_err("{" BASE ", 'members_from': {'source': 'kubefed', 'in_cluster': true,"
               " 'context': 'host'}}",
               "t.json: members_from.in_cluster: excludes kubeconfig and context");
    /* The one name in both places: named by both paths. */
    expect_err("{" BASE ", 'members_from': {'source': 'kubefed', 'locations': {'m1':"
               " {'region': 'r1'}}}}",
               "t.json: members_from.locations.m1: \"m1\" is a configured member (members.m1): a "
               "member comes from members or from the registry, not both");
    expect_err("{" BASE ", 'members_from': {'source': 'kubefed', 'locations': {'m3':"
               " {'region': 'r9'}}}}",
               "t.json: members_from.locations.m3.region: unknown region \"r9\"");
    expect_err("{" BASE ", 'members_from': {'source': 'kubefed', 'locations': {'m3':"
               " {'region': 'r2', 'zone': 'r1a'}}}}",
               "t.json: members_from.locations.m3.zone: zone \"r1a\" is not a zone of region "
               "\"r2\"");
    expect_err("{" BASE ", 'members_from': {'source': 'kubefed', 'locations': {'M_3':"
               " {'region': 'r2'}}}}",
               "t.json: members_from.locations.M_3: not a DNS label \"M_3\" (lowercase letters, "
               "digits and hyphens, at most 63)");
    expect_err("{" BASE ", 'members_from': {'source': 'kubefed', 'bogus': 1}}",
               "t.json: members_from.bogus: unknown key");
}

static void test_with_members(void **state)
{
    struct cm_conf *c = load_ok("{" BASE ", 'members_from': {'source': 'kubefed'}}");
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
    c = load_ok("{" BASE "}");
    d = cm_conf_with_members(c, NULL, 0);
    assert_int_equal(d->member_count, 1);
    cm_conf_unref(d);
    cm_conf_unref(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_absent),       cmocka_unit_test(test_kubefed_defaults),
        cmocka_unit_test(test_karmada),      cmocka_unit_test(test_errors),
        cmocka_unit_test(test_with_members),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
