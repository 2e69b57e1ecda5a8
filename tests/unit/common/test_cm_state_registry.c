/* SPDX-License-Identifier: Apache-2.0 */
/* test_cm_state_registry.c -- the state document's registry members (placed
 * by the document's "members" when the configuration has members_from), the
 * service rules (placement, ttl_s, allow_without_endpoints) and the
 * configuration consumers merge under (cm_state_members_conf). */
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
#include "common/cm_state.h"

#define CONF_TEXT(extra)                                                                           \
    "{\"federation\": \"f\", \"zone\": \"z.test\","                                                \
    " \"regions\": {\"us-east-1\": {\"zones\": [\"us-east-1a\"]}, \"eu-west-1\": {}},"             \
    " \"members\": {\"usa\": {\"region\": \"us-east-1\"}}" extra "}"
#define WITH_REGISTRY ", \"members_from\": {\"source\": \"kubefed\"}"

#define HDR(v, gen, ts)                                                                            \
    "\"version\":1,\"vantage\":\"" v "\",\"generation\":" gen ",\"generated_at\":\"" ts "\""

static struct cm_conf *conf_load(const char *text)
{
    char err[CM_CONF_ERR_MAX];
    struct cm_conf *c = NULL;

    if (cm_conf_load_string("t.json", text, &c, err, sizeof(err)) != CM_OK)
        fail_msg("conf: %s", err);
    return c;
}

static struct cm_state *parse(const char *text, char *err, size_t errlen)
{
    struct cm_state *st = NULL;

    err[0] = '\0';
    if (cm_state_parse(text, strlen(text), NULL, &st, err, errlen) != CM_OK)
        return NULL;
    return st;
}

static struct cm_state *parse_ok(const char *text)
{
    char err[CM_STATE_ERR_MAX];
    struct cm_state *st = parse(text, err, sizeof(err));

    if (st == NULL)
        fail_msg("parse failed: %s", err);
    return st;
}

static void expect_parse_err(const char *text, const char *want)
{
    char err[CM_STATE_ERR_MAX];

    assert_null(parse(text, err, sizeof(err)));
    assert_string_equal(err, want);
}

static void check_doc(const struct cm_conf *conf, const char *text, const char *want)
{
    char err[CM_STATE_ERR_MAX] = "";
    struct cm_state *st = parse_ok(text);
    int rc = cm_state_check_conf(st, conf, err, sizeof(err));

    if (want == NULL) {
        if (rc != CM_OK)
            fail_msg("unexpected: %s", err);
    } else {
        assert_int_equal(rc, CM_ESTATE);
        assert_string_equal(err, want);
    }
    cm_state_free(st);
}

#define SVC(rules) "\"services\":{\"default/web\":{" rules "\"members\":{}}}"

static void test_service_rules(void **state)
{
    struct cm_state *st;
    const struct cm_state_service *s;

    (void)state;
    st = parse_ok(
        "{" HDR("us-east-1", "1",
                "2026-11-21T07:00:00Z") ","
                                        "\"services\":{\"default/"
                                        "web\":{\"placement\":[\"k2\",\"k1\"],\"ttl_s\":300,"
                                        "\"allow_without_endpoints\":true},\"default/"
                                        "api\":{\"placement\":[]},"
                                        "\"default/old\":{\"placement\":null,\"ttl_s\":null}}}");
    s = cm_state_service_find(st, "default/web");
    assert_true(s->has_placement);
    assert_int_equal(s->placement_count, 2);
    assert_string_equal(s->placement[0], "k1"); /* sorted */
    assert_int_equal(s->ttl_s, 300);
    assert_true(s->allow_without_endpoints);
    s = cm_state_service_find(st, "default/api");
    assert_true(s->has_placement);
    assert_int_equal(s->placement_count, 0);
    assert_false(s->allow_without_endpoints);
    s = cm_state_service_find(st, "default/old");
    assert_false(s->has_placement);
    assert_int_equal(s->ttl_s, 0);
    cm_state_free(st);

#define ONE(rules) "{" HDR("us-east-1", "1", "2026-11-21T07:00:00Z") "," SVC(rules) "}"
    expect_parse_err(ONE("\"placement\":\"k1\","),
                     "services.default/web.placement: must be an array");
    expect_parse_err(ONE("\"placement\":[\"k1\",7],"),
                     "services.default/web.placement[1]: must be a member name");
    expect_parse_err(ONE("\"placement\":[\"\"],"),
                     "services.default/web.placement[0]: must be a member name");
    expect_parse_err(ONE("\"placement\":[\"k1\",\"k2\",\"k1\"],"),
                     "services.default/web.placement: member \"k1\" listed twice");
    expect_parse_err(ONE("\"ttl_s\":0,"), "services.default/web.ttl_s: must be an integer 1..86400 "
                                          "or null");
    expect_parse_err(ONE("\"ttl_s\":86401,"),
                     "services.default/web.ttl_s: must be an integer 1..86400 or null");
    expect_parse_err(ONE("\"ttl_s\":\"30\","),
                     "services.default/web.ttl_s: must be an integer 1..86400 or null");
    expect_parse_err(ONE("\"allow_without_endpoints\":1,"),
                     "services.default/web.allow_without_endpoints: must be a boolean");
#undef ONE
}

static void test_placement_limit(void **state)
{
    char err[CM_STATE_ERR_MAX];
    size_t cap = 1200 * 12 + 256;
    char *text = malloc(cap);
    size_t n;

    (void)state;
    n = (size_t)snprintf(
        text, cap,
        "{" HDR("us-east-1", "1",
                "2026-11-21T07:00:00Z") ","
                                        "\"services\":{\"default/web\":{\"placement\":[");
    for (unsigned i = 0; i < CM_STATE_MAX_MEMBERS + 1; i++)
        n += (size_t)snprintf(text + n, cap - n, "%s\"m%u\"", i > 0 ? "," : "", i);
    snprintf(text + n, cap - n, "]}}}");
    assert_null(parse(text, err, sizeof(err)));
    assert_string_equal(err, "services.default/web.placement: too many members (1001, max 1000)");
    free(text);
}

static void test_check_registry_members(void **state)
{
    struct cm_conf *plain = conf_load(CONF_TEXT(""));
    struct cm_conf *reg = conf_load(CONF_TEXT(WITH_REGISTRY));
    const char *doc = "{" HDR(
        "us-east-1", "1",
        "2026-11-21T07:00:00Z") ","
                                "\"members\":{\"usa\":{},\"k1\":{\"region\":\"eu-west-1\"},"
                                "\"k2\":{\"region\":\"us-east-1\",\"zone\":\"us-east-1a\"}},"
                                "\"services\":{\"default/"
                                "web\":{\"members\":{\"k1\":{\"healthy\":true},"
                                "\"usa\":{\"healthy\":true}}}}}";

    (void)state;
    check_doc(plain, doc, "members.k1: unknown member");
    check_doc(reg, doc, NULL);
    check_doc(reg,
              "{" HDR("us-east-1", "1", "2026-11-21T07:00:00Z") ","
                                                                "\"members\":{\"k1\":{}}}",
              "members.k1.region: missing (a registry member must be placed)");
    check_doc(reg,
              "{" HDR("us-east-1", "1",
                      "2026-11-21T07:00:00Z") ","
                                              "\"members\":{\"k1\":{\"region\":\"mars-1\"}}}",
              "members.k1.region: unknown region \"mars-1\"");
    check_doc(
        reg,
        "{" HDR("us-east-1", "1", "2026-11-21T07:00:00Z") ","
                                                          "\"members\":{\"k1\":{\"region\":\"eu-"
                                                          "west-1\",\"zone\":\"us-east-1a\"}}}",
        "members.k1.zone: zone \"us-east-1a\" is not a zone of region \"eu-west-1\"");
    check_doc(reg,
              "{" HDR("us-east-1", "1",
                      "2026-11-21T07:00:00Z") ","
                                              "\"members\":{\"K_1\":{\"region\":\"eu-west-1\"}}}",
              "members.K_1: not a configured member, and not a DNS label for a registry member");
    /* An endpoint of a member the document does not place. */
    check_doc(reg,
              "{" HDR("us-east-1", "1",
                      "2026-11-21T07:00:00Z") ","
                                              "\"services\":{\"default/"
                                              "web\":{\"members\":{\"k9\":{\"healthy\":true}}}}}",
              "services.default/web.members.k9: unknown member (neither configured nor in "
              "members)");
    cm_conf_unref(plain);
    cm_conf_unref(reg);
}

static void test_members_conf(void **state)
{
    struct cm_conf *plain = conf_load(CONF_TEXT(""));
    struct cm_conf *reg = conf_load(CONF_TEXT(WITH_REGISTRY));
    struct cm_state *docs[3];
    struct cm_conf *c1 = NULL, *c2 = NULL, *c3 = NULL;

    (void)state;
    /* eu (newer) places k1 in eu-west-1; us (older) in us-east-1: eu wins. */
    docs[0] = parse_ok("{" HDR(
        "us-east-1", "5",
        "2026-11-21T07:00:00Z") ","
                                "\"members\":{\"usa\":{},\"k1\":{\"region\":\"us-east-1\"},"
                                "\"zz\":{\"region\":\"us-east-1\",\"zone\":\"us-east-1a\"}}}");
    docs[1] = parse_ok(
        "{" HDR("eu-west-1", "2", "2026-11-21T07:00:09Z") ","
                                                          "\"members\":{\"k1\":{\"region\":\"eu-"
                                                          "west-1\"},\"bad\":{\"region\":\"x\"}}}");
    /* Not a configured vantage: its members do not count. */
    docs[2] = parse_ok(
        "{" HDR("sa-east-1", "9",
                "2027-01-01T00:00:00Z") ","
                                        "\"members\":{\"k7\":{\"region\":\"eu-west-1\"}}}");

    assert_int_equal(
        cm_state_members_conf(plain, (const struct cm_state *const *)docs, 3, NULL, &c1), CM_OK);
    assert_ptr_equal(c1, plain); /* no members_from: the loaded one */
    cm_conf_unref(c1);

    assert_int_equal(cm_state_members_conf(reg, (const struct cm_state *const *)docs, 3, NULL, &c1),
                     CM_OK);
    assert_int_equal(c1->member_count, 3);
    assert_string_equal(c1->members[0].name, "usa");
    assert_string_equal(c1->members[1].name, "k1"); /* sorted */
    assert_int_equal(c1->members[1].region, 1);
    assert_int_equal(c1->members[1].zone, -1);
    assert_string_equal(c1->members[2].name, "zz");
    assert_int_equal(c1->members[2].region, 0);
    assert_int_equal(c1->members[2].zone, 0);
    /* The same members again: the same configuration (indexes stay). */
    assert_int_equal(cm_state_members_conf(c1, (const struct cm_state *const *)docs, 2, c1, &c2),
                     CM_OK);
    assert_ptr_equal(c2, c1);
    cm_conf_unref(c2);
    /* One document fewer: zz goes, k1 moves to us-east-1. */
    assert_int_equal(cm_state_members_conf(c1, (const struct cm_state *const *)docs, 1, c1, &c3),
                     CM_OK);
    assert_ptr_not_equal(c3, c1);
    assert_int_equal(c3->member_count, 3);
    assert_int_equal(c3->members[1].region, 0);
    assert_ptr_equal(cm_conf_loaded(c3), reg);
    cm_conf_unref(c3);
    /* None: just the loaded configuration's members. */
    assert_int_equal(cm_state_members_conf(c1, NULL, 0, c1, &c3), CM_OK);
    assert_int_equal(c3->member_count, 1);
    cm_conf_unref(c3);
    cm_conf_unref(c1);
    for (size_t i = 0; i < 3; i++)
        cm_state_free(docs[i]);
    cm_conf_unref(plain);
    cm_conf_unref(reg);
}

static void test_merge_rules(void **state)
{
    struct cm_conf *reg = conf_load(CONF_TEXT(WITH_REGISTRY));
    struct cm_state *docs[2];
    struct cm_conf *c = NULL;
    struct cm_merged *m = NULL;
    const struct cm_merged_service *web, *api;

    (void)state;
    docs[0] = parse_ok("{" HDR(
        "us-east-1", "5",
        "2026-11-21T07:00:00Z") ","
                                "\"members\":{\"k1\":{\"region\":\"eu-west-1\"},\"k2\":{\"region\":"
                                "\"us-east-1\"}},"
                                "\"services\":{\"default/"
                                "web\":{\"placement\":[\"usa\"],\"ttl_s\":9,\"members\":{"
                                "\"usa\":{\"healthy\":true},\"k1\":{\"healthy\":true},\"k2\":{"
                                "\"healthy\":true}}},"
                                "\"default/api\":{\"members\":{\"k1\":{\"healthy\":true}}}}}");
    /* eu is newer: its rules count for web; it says nothing of api. */
    docs[1] = parse_ok("{" HDR(
        "eu-west-1", "2", "2026-11-21T07:00:09Z") ","
                                                  "\"members\":{\"k1\":{\"region\":\"eu-west-1\"},"
                                                  "\"k2\":{\"region\":\"us-east-1\"}},"
                                                  "\"services\":{\"default/"
                                                  "web\":{\"placement\":[\"k1\",\"usa\",\"gone\"],"
                                                  "\"allow_without_endpoints\":true,\"members\":{"
                                                  "\"k1\":{\"healthy\":true}}}}}");
    assert_int_equal(cm_state_members_conf(reg, (const struct cm_state *const *)docs, 2, NULL, &c),
                     CM_OK);
    assert_int_equal(c->member_count, 3); /* usa, k1, k2 */
    assert_int_equal(cm_merged_build((const struct cm_state *const *)docs, 2, c, &m), CM_OK);
    web = &m->services[1];
    api = &m->services[0];
    assert_string_equal(web->key, "default/web");
    assert_false(web->members[0].unplaced); /* usa */
    assert_false(web->members[1].unplaced); /* k1 */
    assert_true(web->members[2].unplaced);  /* k2: present but not placed */
    assert_true(web->members[2].present);
    assert_int_equal(web->ttl_s, 0); /* eu's rules: no ttl_s */
    assert_true(web->allow_without_endpoints);
    assert_string_equal(api->key, "default/api");
    for (size_t i = 0; i < 3; i++)
        assert_false(api->members[i].unplaced); /* no placement: everyone */
    assert_false(api->allow_without_endpoints);
    cm_merged_free(m);
    /* Only the older document: its placement and TTL. */
    assert_int_equal(cm_merged_build((const struct cm_state *const *)docs, 1, c, &m), CM_OK);
    web = &m->services[1];
    assert_true(web->members[1].unplaced);
    assert_false(web->members[0].unplaced);
    assert_int_equal(web->ttl_s, 9);
    assert_false(web->allow_without_endpoints);
    cm_merged_free(m);
    cm_conf_unref(c);
    cm_state_free(docs[0]);
    cm_state_free(docs[1]);
    cm_conf_unref(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_service_rules),
        cmocka_unit_test(test_placement_limit),
        cmocka_unit_test(test_check_registry_members),
        cmocka_unit_test(test_members_conf),
        cmocka_unit_test(test_merge_rules),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
