/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ctl_intent.c -- what fedgslbctl makes of intents: the one it builds
 * from the command line, the union of the instances' lists, what one
 * instance misses (re-delivery), and whether the instances agree (and how
 * they differ).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/cm_agree.h"
#include "common/cm_err.h"
#include "common/cm_intent.h"
#include "common/cm_str.h"
#include "ctl/ctl_args.h"
#include "ctl/ctl_intent.h"
#include "tests/unit/unit_text.h"

/* 2026-11-21T07:00:00Z */
#define T0 INT64_C(1795244400)

static json_t *j(const char *squoted)
{
    return unit_json(squoted);
}

#define META     "'author': 'a', 'reason': 'r', 'created_at': '2026-11-21T06:00:00Z'"
#define LIVE(id) "{'id': '" id "', 'kind': 'drain', 'member': 'eur', " META ", 'status': 'active'}"
#define GONE(id)                                                                                   \
    "{'id': '" id "', 'kind': 'drain', 'member': 'eur', " META                                     \
    ", 'removed_at': '2026-11-21T06:30:00Z', 'removed_by': 'b', 'status': 'removed'}"
#define OLD(id)                                                                                    \
    "{'id': '" id "', 'kind': 'drain', 'member': 'eur', " META                                     \
    ", 'expires_at': '2026-11-21T06:10:00Z', 'status': 'expired'}"

static void opts(struct ctl_opts *o)
{
    memset(o, 0, sizeof(*o));
}

static void test_build(void **state)
{
    struct ctl_opts o;
    char err[256] = "";
    json_t *in;

    (void)state;
    opts(&o);
    o.reason = "kernel upgrade";
    o.for_s = 3600;
    in = ctl_intent_build(&o, CM_INTENT_DRAIN, "eur", NULL, "alice", NULL, NULL, T0, 0x1234abcd,
                          err, sizeof(err));
    assert_non_null(in);
    assert_string_equal(json_string_value(json_object_get(in, "id")), "drain-eur-1795244400-abcd");
    assert_string_equal(json_string_value(json_object_get(in, "author")), "alice");
    assert_string_equal(json_string_value(json_object_get(in, "reason")), "kernel upgrade");
    assert_string_equal(json_string_value(json_object_get(in, "created_at")),
                        "2026-11-21T07:00:00Z");
    assert_string_equal(json_string_value(json_object_get(in, "expires_at")),
                        "2026-11-21T08:00:00Z");
    json_decref(in);
    /* --author over $USER; a weight with its service; --until. */
    o.author = "bob";
    o.for_s = 0;
    o.until = "2026-11-22T00:00:00Z";
    o.service = "default/web";
    in = ctl_intent_build(&o, CM_INTENT_WEIGHT, "usa", "0", "alice", NULL, NULL, T0, 1, err,
                          sizeof(err));
    assert_non_null(in);
    assert_string_equal(json_string_value(json_object_get(in, "author")), "bob");
    assert_int_equal(json_integer_value(json_object_get(in, "weight")), 0);
    assert_string_equal(json_string_value(json_object_get(in, "service")), "default/web");
    assert_string_equal(json_string_value(json_object_get(in, "expires_at")),
                        "2026-11-22T00:00:00Z");
    json_decref(in);
    /* The default reason of the drain shorthand; no author at all. */
    opts(&o);
    in = ctl_intent_build(&o, CM_INTENT_EVACUATE, "eu-west-1", NULL, NULL, "fedgslbctl drain", NULL,
                          T0, 1, err, sizeof(err));
    assert_null(in); /* an evacuation needs an expiry */
    assert_non_null(strstr(err, "expires_at"));
    o.for_s = 60;
    in = ctl_intent_build(&o, CM_INTENT_EVACUATE, "eu-west-1", NULL, NULL, "fedgslbctl drain", NULL,
                          T0, 1, err, sizeof(err));
    assert_non_null(in);
    assert_string_equal(json_string_value(json_object_get(in, "region")), "eu-west-1");
    assert_string_equal(json_string_value(json_object_get(in, "author")), "fedgslbctl");
    json_decref(in);
}

static void test_build_refusals(void **state)
{
    static const struct {
        enum cm_intent_kind kind;
        const char *target, *value, *service, *until, *reason, *want;
    } cases[] = {
        {CM_INTENT_DRAIN, "eur", NULL, NULL, NULL, NULL, "--reason TEXT is required"},
        {CM_INTENT_DRAIN, "eur", "3", NULL, NULL, "r", "takes no value"},
        {CM_INTENT_WEIGHT, "eur", NULL, "default/web", NULL, "r", "N must be 0..1000"},
        {CM_INTENT_WEIGHT, "eur", "1001", "default/web", NULL, "r", "N must be 0..1000"},
        {CM_INTENT_PRIORITY, "eur", "1", NULL, NULL, "r", "--service NS/NAME is required"},
        {CM_INTENT_DRAIN, "eur", NULL, NULL, "tomorrow", "r", "--until: not an RFC 3339"},
        {CM_INTENT_DRAIN, "eur", NULL, NULL, "2026-11-21T07:00:00Z", "r", "not in the future"},
        {CM_INTENT_DRAIN, "EUR", NULL, NULL, NULL, "r", "member: not a member name"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct ctl_opts o;
        char err[256] = "";
        json_t *in;

        opts(&o);
        o.service = cases[i].service;
        o.until = cases[i].until;
        o.reason = cases[i].reason;
        in = ctl_intent_build(&o, cases[i].kind, cases[i].target, cases[i].value, "u", NULL, NULL,
                              T0, 1, err, sizeof(err));
        if (in != NULL || strstr(err, cases[i].want) == NULL)
            fail_msg("case %zu: \"%s\", want \"%s\"", i, err, cases[i].want);
    }
}

static const char *id_at(json_t *arr, size_t i)
{
    return json_string_value(json_object_get(json_array_get(arr, i), "id"));
}

/* The union: one entry per id, the removal winning; what each instance misses. */
static void test_union_and_missing(void **state)
{
    json_t *ns1 = j("[" LIVE("b") ", " GONE("a") ", " OLD("e") "]");
    json_t *ns2 = j("[" LIVE("a") ", " LIVE("c") "]");
    json_t *lists[3] = {ns1, NULL, ns2}; /* the middle one did not answer */
    json_t *all = ctl_intents_union(lists, 3), *miss;

    (void)state;
    assert_int_equal(json_array_size(all), 4);
    assert_string_equal(id_at(all, 0), "a");
    assert_non_null(json_object_get(json_array_get(all, 0), "removed_at")); /* removal wins */
    assert_string_equal(id_at(all, 1), "b");
    assert_string_equal(id_at(all, 2), "c");
    assert_string_equal(id_at(all, 3), "e");
    /* ns1 misses c; the expired e is nobody's business. */
    miss = ctl_intents_missing(ns1, all);
    assert_int_equal(json_array_size(miss), 1);
    assert_string_equal(id_at(miss, 0), "c");
    assert_null(json_object_get(json_array_get(miss, 0), "status"));
    json_decref(miss);
    /* ns2 misses b, and the removal of a (it holds a live). */
    miss = ctl_intents_missing(ns2, all);
    assert_int_equal(json_array_size(miss), 2);
    assert_string_equal(id_at(miss, 0), "a");
    assert_non_null(json_object_get(json_array_get(miss, 0), "removed_at"));
    assert_string_equal(id_at(miss, 1), "b");
    json_decref(miss);
    /* An instance that never heard of a is not sent its tombstone. */
    json_t *empty = json_array();
    miss = ctl_intents_missing(empty, all);
    assert_int_equal(json_array_size(miss), 2); /* b and c */
    json_decref(miss);
    json_decref(empty);
    /* Whatever it sends parses as an intent (no "status"). */
    miss = ctl_intents_missing(ns2, all);
    for (size_t i = 0; i < json_array_size(miss); i++) {
        struct cm_intent *in = NULL;
        char err[256];

        if (cm_intent_parse(json_array_get(miss, i), NULL, &in, err, sizeof(err)) != CM_OK)
            fail_msg("%s", err);
        cm_intent_unref(in);
    }
    json_decref(miss);
    json_decref(all);
    /* The removal wins in whichever order the lists come. */
    json_t *rev[2] = {ns2, ns1};
    all = ctl_intents_union(rev, 2);
    assert_string_equal(id_at(all, 0), "a");
    assert_non_null(json_object_get(json_array_get(all, 0), "removed_at"));
    json_decref(all);
    json_decref(ns1);
    json_decref(ns2);
}

#define DIGEST(state, intents, gen, ids)                                                           \
    "{'state': '" state "', 'intents': '" intents "', 'vantages': {'us-east-1': " gen              \
    ", 'eu-west-1': 5}, 'active_intents': " ids "}"

static void test_agreement(void **state)
{
    const char *names[] = {"ns1", "ns2", "ns3", "px1"};
    json_t *d1 = j(DIGEST("aaaa", "1111", "42", "['drain-x']"));
    json_t *d2 = j(DIGEST("aaaa", "1111", "42", "['drain-x']"));
    json_t *d3 = j(DIGEST("bbbb", "2222", "41", "['w-1']"));
    json_t *d4 = j(DIGEST("aaaa", "1111", "42", "['drain-x']"));
    json_t *ds[4] = {d1, d2, d3, d4};
    json_t *m;
    struct cm_buf out;

    (void)state;
    m = cm_agreement(names, ds, 2);
    assert_true(json_is_true(json_object_get(m, "agree")));
    assert_int_equal(json_array_size(json_object_get(m, "differences")), 0);
    json_decref(m);
    /* ns3 misses drain-x, holds w-1, is a generation behind: said in three lines. */
    m = cm_agreement(names, ds, 4);
    assert_false(json_is_true(json_object_get(m, "agree")));
    assert_false(json_is_true(json_object_get(m, "intents_agree")));
    assert_string_equal(json_string_value(json_object_get(m, "reference")), "ns1");
    json_t *diffs = json_object_get(m, "differences");
    assert_int_equal(json_array_size(diffs), 3);
    assert_string_equal(json_string_value(json_array_get(diffs, 0)),
                        "ns3 misses intent drain-x (ns1 holds it)");
    assert_string_equal(json_string_value(json_array_get(diffs, 1)),
                        "ns3 holds intent w-1, which ns1 does not");
    assert_string_equal(json_string_value(json_array_get(diffs, 2)),
                        "ns3 holds vantage us-east-1 generation 41, ns1 generation 42");
    cm_buf_init(&out, 1 << 16);
    assert_int_equal(ctl_agreement_text(m, &out), CM_OK);
    assert_non_null(strstr(cm_buf_cstr(&out), "the instances DISAGREE:"));
    assert_non_null(strstr(cm_buf_cstr(&out), "ns3       bbbb"));
    cm_buf_fini(&out);
    json_decref(m);
    /* The majority is the reference, even when the first instance differs. */
    json_t *ds2[3] = {d3, d1, d2};
    m = cm_agreement(names, ds2, 3);
    assert_string_equal(json_string_value(json_object_get(m, "reference")), "ns2");
    json_decref(m);
    /* Only vantage generations differ: the intents agree. */
    json_t *d5 = j(DIGEST("cccc", "1111", "43", "['drain-x']"));
    json_t *ds3[2] = {d1, d5};
    m = cm_agreement(names, ds3, 2);
    assert_false(json_is_true(json_object_get(m, "agree")));
    assert_true(json_is_true(json_object_get(m, "intents_agree")));
    json_decref(m);
    /* An instance that did not answer: not agreeing, and said. */
    json_t *ds4[2] = {d1, NULL};
    m = cm_agreement(names, ds4, 2);
    assert_false(json_is_true(json_object_get(m, "agree")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(m, "differences"), 0)),
                        "ns2 did not answer: whether it agrees is unknown");
    json_decref(m);
    json_decref(d1);
    json_decref(d2);
    json_decref(d3);
    json_decref(d4);
    json_decref(d5);
}

static void test_list_text(void **state)
{
    const char *names[] = {"ns1", "ns2"};
    json_t *ns1 = j("[" LIVE("b") "]"), *lists[2] = {ns1, NULL};
    json_t *all = ctl_intents_union(lists, 2);
    struct cm_buf out;

    (void)state;
    cm_buf_init(&out, 1 << 16);
    assert_int_equal(ctl_intents_text(all, names, lists, 2, &out), CM_OK);
    assert_non_null(strstr(cm_buf_cstr(&out), "b   drain  eur"));
    assert_non_null(strstr(cm_buf_cstr(&out), "ns1 (not: ns2?)"));
    cm_buf_fini(&out);
    json_decref(all);
    json_decref(ns1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build),
        cmocka_unit_test(test_build_refusals),
        cmocka_unit_test(test_union_and_missing),
        cmocka_unit_test(test_agreement),
        cmocka_unit_test(test_list_text),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
