/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cm_intent.c -- operator intents: the model (fields, kinds, limits),
 * sets (put, remove, tombstones, expiry, pruning), the digest, re-delivery
 * (merging two holders' sets), the state file loader and the compiled view
 * (precedence, evacuation, the newest weight).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_intent.h"
#include "common/cm_state.h"
#include "common/cm_store.h"
#include "common/cm_time.h"

/* 2026-11-21T07:00:00Z, the tests' "now". */
#define T0 INT64_C(1795244400)

static const char conf_text[] = "{\"federation\": \"myfed\", \"zone\": \"fed.example.test\","
                                " \"regions\": {\"us-east-1\": {\"zones\": [\"us-east-1a\"]},"
                                "              \"eu-west-1\": {\"zones\": [\"eu-west-1a\"]}},"
                                " \"members\": {\"usa\": {\"region\": \"us-east-1\"},"
                                "             \"usb\": {\"region\": \"us-east-1\"},"
                                "             \"eur\": {\"region\": \"eu-west-1\"}},"
                                " \"services\": {\"default/web\": {\"port\": 80}}}";

#define USA 0
#define USB 1
#define EUR 2

static struct cm_conf *conf;

static int group_setup(void **state)
{
    char err[CM_CONF_ERR_MAX];

    (void)state;
    if (cm_conf_load_string("test.json", conf_text, &conf, err, sizeof(err)) != CM_OK)
        fail_msg("config: %s", err);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    cm_conf_unref(conf);
    return 0;
}

/* Parses @text (one intent); fails the test with the reason when it does not. */
static struct cm_intent *intent(const char *text)
{
    char err[CM_INTENT_ERR_MAX] = "";
    struct cm_intent *in = NULL;

    if (cm_intent_parse_text(text, strlen(text), conf, &in, err, sizeof(err)) != CM_OK)
        fail_msg("intent %s: %s", text, err);
    return in;
}

/* Expects @text to be refused with a reason containing @why. */
static void refused(const char *text, const char *why)
{
    char err[CM_INTENT_ERR_MAX] = "";
    struct cm_intent *in = NULL;
    int rc = cm_intent_parse_text(text, strlen(text), conf, &in, err, sizeof(err));

    print_message("%s -> %s\n", text, err);
    assert_int_equal(rc, CM_EINVAL);
    assert_null(in);
    assert_non_null(strstr(err, why));
}

#define META                                                                                       \
    "\"author\": \"alice\", \"reason\": \"maintenance\", \"created_at\": \"2026-11-21T06:00:00Z\""

static const char drain_eur[] =
    "{\"id\": \"d1\", \"kind\": \"drain\", \"member\": \"eur\", " META "}";

/* Puts @in into *s, which must change; the new set replaces *s. */
static void put_ok(struct cm_intents **s, struct cm_intent *in, int64_t now)
{
    char err[CM_INTENT_ERR_MAX] = "";
    struct cm_intents *n = NULL;

    if (cm_intents_put(*s, in, now, &n, err, sizeof(err)) != CM_OK)
        fail_msg("put: %s", err);
    assert_non_null(n);
    cm_intents_free(*s);
    *s = n;
}

static void test_parse_kinds(void **state)
{
    static const char *const ok[] = {
        "{\"id\": \"a\", \"kind\": \"drain\", \"member\": \"usa\", " META "}",
        "{\"id\": \"b\", \"kind\": \"force-up\", \"member\": \"usa\", " META "}",
        "{\"id\": \"c\", \"kind\": \"force-down\", \"member\": \"usa\", " META
        ", \"expires_at\": \"2026-11-21T08:00:00Z\"}",
        "{\"id\": \"d\", \"kind\": \"evacuate\", \"region\": \"eu-west-1\", " META
        ", \"expires_at\": \"2026-11-28T06:00:00Z\"}",
        "{\"id\": \"e\", \"kind\": \"weight\", \"service\": \"default/web\", \"member\": \"eur\", "
        "\"weight\": 0, " META "}",
        "{\"id\": \"f-1.x_2\", \"kind\": \"priority\", \"service\": \"shop/store\", "
        "\"member\": \"eur\", \"priority\": 1000, " META "}",
    };

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct cm_intent *in = intent(ok[i]);
        json_t *j = cm_intent_json(in);
        char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);

        /* The canonical text is the JSON form, and it parses back to itself. */
        assert_string_equal(text, in->canon);
        struct cm_intent *again = intent(text);
        assert_string_equal(again->canon, in->canon);
        cm_intent_unref(again);
        free(text);
        json_decref(j);
        cm_intent_unref(in);
    }
}

static void test_parse_refusals(void **state)
{
    (void)state;
    refused("[]", "JSON object");
    refused("{\"id\": \"a\", \"kind\": \"drain\", \"member\": \"usa\", \"colour\": 1, " META "}",
            "colour: unknown field");
    refused("{\"id\": \"A\", \"kind\": \"drain\", \"member\": \"usa\", " META "}", "id:");
    refused("{\"id\": \"-a\", \"kind\": \"drain\", \"member\": \"usa\", " META "}", "id:");
    refused("{\"id\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\", "
            "\"kind\": \"drain\", \"member\": \"usa\", " META "}",
            "id:");
    refused("{\"id\": \"a\", \"kind\": \"nap\", \"member\": \"usa\", " META "}", "kind:");
    refused("{\"id\": \"a\", \"kind\": \"drain\", " META "}", "member: missing");
    refused("{\"id\": \"a\", \"kind\": \"drain\", \"member\": \"xyz\", " META "}",
            "unknown member \"xyz\"");
    refused("{\"id\": \"a\", \"kind\": \"drain\", \"member\": \"usa\", \"region\": "
            "\"us-east-1\", " META "}",
            "region: not a field");
    refused("{\"id\": \"a\", \"kind\": \"evacuate\", \"region\": \"mars-1\", " META
            ", \"expires_at\": \"2026-11-21T08:00:00Z\"}",
            "unknown region");
    refused("{\"id\": \"a\", \"kind\": \"evacuate\", \"region\": \"eu-west-1\", " META "}",
            "evacuation needs an expiry");
    refused("{\"id\": \"a\", \"kind\": \"evacuate\", \"region\": \"eu-west-1\", " META
            ", \"expires_at\": \"2026-11-28T06:00:01Z\"}",
            "at most 7 days");
    refused("{\"id\": \"a\", \"kind\": \"weight\", \"member\": \"usa\", \"weight\": 1, " META "}",
            "service: missing");
    refused("{\"id\": \"a\", \"kind\": \"weight\", \"service\": \"web\", \"member\": \"usa\", "
            "\"weight\": 1, " META "}",
            "not a service key");
    refused("{\"id\": \"a\", \"kind\": \"weight\", \"service\": \"default/web\", \"member\": "
            "\"usa\", \"weight\": 1001, " META "}",
            "weight: must be an integer 0..1000");
    refused("{\"id\": \"a\", \"kind\": \"weight\", \"service\": \"default/web\", \"member\": "
            "\"usa\", \"priority\": 1, " META "}",
            "priority: not a field of a weight intent");
    refused("{\"id\": \"a\", \"kind\": \"drain\", \"member\": \"usa\", \"service\": "
            "\"default/web\", " META "}",
            "service: not a field");
    refused("{\"id\": \"a\", \"kind\": \"drain\", \"member\": \"usa\", \"reason\": \"r\", "
            "\"created_at\": \"2026-11-21T06:00:00Z\"}",
            "author: missing");
    refused("{\"id\": \"a\", \"kind\": \"drain\", \"member\": \"usa\", \"author\": \"a\", "
            "\"reason\": \"line\\nbreak\", \"created_at\": \"2026-11-21T06:00:00Z\"}",
            "reason: 1 to 1024");
    refused("{\"id\": \"a\", \"kind\": \"drain\", \"member\": \"usa\", \"author\": \"a\", "
            "\"reason\": \"r\", \"created_at\": \"yesterday\"}",
            "created_at: not an RFC 3339");
    refused("{\"id\": \"a\", \"kind\": \"drain\", \"member\": \"usa\", " META
            ", \"expires_at\": \"2026-11-21T06:00:00Z\"}",
            "later than created_at");
    refused("{\"id\": \"a\", \"kind\": \"drain\", \"member\": \"usa\", " META
            ", \"removed_at\": \"2026-11-21T06:30:00Z\"}",
            "removed_at and removed_by go together");
    refused("{\"id\": \"a\", \"kind\": \"drain\", \"member\": \"usa\", \"id\": \"b\", " META "}",
            "invalid JSON");
}

static void test_put_rules(void **state)
{
    struct cm_intents *s = cm_intents_new(), *n = NULL;
    char err[CM_INTENT_ERR_MAX] = "";

    (void)state;
    put_ok(&s, intent(drain_eur), T0);
    assert_int_equal(cm_intents_count(s), 1);
    /* The same intent again (a retry, a re-delivery): nothing changes. */
    assert_int_equal(cm_intents_put(s, intent(drain_eur), T0, &n, err, sizeof(err)), CM_OK);
    assert_null(n);
    /* The same id with other content. */
    assert_int_equal(cm_intents_put(s,
                                    intent("{\"id\": \"d1\", \"kind\": \"drain\", \"member\": "
                                           "\"usa\", " META "}"),
                                    T0, &n, err, sizeof(err)),
                     CM_EEXIST);
    assert_null(n);
    assert_non_null(strstr(err, "other content"));
    /* Expired before it arrives. */
    assert_int_equal(
        cm_intents_put(s,
                       intent("{\"id\": \"d2\", \"kind\": \"drain\", \"member\": "
                              "\"usa\", " META ", \"expires_at\": \"2026-11-21T06:30:00Z\"}"),
                       T0, &n, err, sizeof(err)),
        CM_EINVAL);
    assert_non_null(strstr(err, "already past"));
    /* Ids keep their order whatever the order of arrival. */
    put_ok(&s, intent("{\"id\": \"a0\", \"kind\": \"force-up\", \"member\": \"usa\", " META "}"),
           T0);
    put_ok(&s, intent("{\"id\": \"z9\", \"kind\": \"force-up\", \"member\": \"usb\", " META "}"),
           T0);
    assert_string_equal(cm_intents_get(s, 0)->id, "a0");
    assert_string_equal(cm_intents_get(s, 1)->id, "d1");
    assert_string_equal(cm_intents_get(s, 2)->id, "z9");
    assert_null(cm_intents_get(s, 3));
    assert_non_null(cm_intents_find(s, "z9"));
    assert_null(cm_intents_find(s, "zz"));
    cm_intents_free(s);
}

static void test_remove_and_tombstones(void **state)
{
    struct cm_intents *s = cm_intents_new(), *n = NULL;
    char err[CM_INTENT_ERR_MAX] = "";
    const struct cm_intent *t;

    (void)state;
    put_ok(&s, intent(drain_eur), T0);
    assert_int_equal(cm_intents_remove(s, "nope", "bob", T0, &n, err, sizeof(err)), CM_ENOENT);
    assert_int_equal(cm_intents_remove(s, "d1", "bob", T0 + 10, &n, err, sizeof(err)), CM_OK);
    assert_non_null(n);
    cm_intents_free(s);
    s = n;
    t = cm_intents_find(s, "d1");
    assert_non_null(t);
    assert_true(t->removed_at == T0 + 10);
    assert_string_equal(t->removed_by, "bob");
    assert_false(cm_intent_is_active(t, T0 + 10));
    assert_string_equal(cm_intent_status(t, T0 + 10), "removed");
    assert_non_null(strstr(t->canon, "\"removed_by\":\"bob\""));
    /* Removing again changes nothing; the live intent cannot come back. */
    assert_int_equal(cm_intents_remove(s, "d1", "bob", T0 + 20, &n, err, sizeof(err)), CM_OK);
    assert_null(n);
    assert_int_equal(cm_intents_put(s, intent(drain_eur), T0 + 20, &n, err, sizeof(err)),
                     CM_EEXIST);
    assert_non_null(strstr(err, "was removed"));
    /* A tombstone delivered again: nothing changes. */
    assert_int_equal(cm_intents_put(s, intent(t->canon), T0 + 20, &n, err, sizeof(err)), CM_OK);
    assert_null(n);
    cm_intents_free(s);
}

/* A holder that missed a removal gets the tombstone: the intent goes there too. */
static void test_tombstone_delivery(void **state)
{
    struct cm_intents *ns1 = cm_intents_new(), *ns2 = cm_intents_new(), *n = NULL;
    char err[CM_INTENT_ERR_MAX] = "";
    char *tomb;

    (void)state;
    put_ok(&ns1, intent(drain_eur), T0);
    put_ok(&ns2, intent(drain_eur), T0);
    assert_int_equal(cm_intents_remove(ns1, "d1", "bob", T0 + 5, &n, err, sizeof(err)), CM_OK);
    cm_intents_free(ns1);
    ns1 = n;
    assert_true(cm_intents_digest(ns1, T0 + 6) != cm_intents_digest(ns2, T0 + 6));
    tomb = strdup(cm_intents_find(ns1, "d1")->canon);
    put_ok(&ns2, intent(tomb), T0 + 6);
    assert_false(cm_intent_is_active(cm_intents_find(ns2, "d1"), T0 + 6));
    assert_true(cm_intents_digest(ns1, T0 + 6) == cm_intents_digest(ns2, T0 + 6));
    /* A tombstone of an intent never seen is kept, so the intent cannot arrive later. */
    struct cm_intents *ns3 = cm_intents_new();
    put_ok(&ns3, intent(tomb), T0 + 6);
    assert_int_equal(cm_intents_put(ns3, intent(drain_eur), T0 + 7, &n, err, sizeof(err)),
                     CM_EEXIST);
    free(tomb);
    cm_intents_free(ns1);
    cm_intents_free(ns2);
    cm_intents_free(ns3);
}

static void test_expiry_and_prune(void **state)
{
    struct cm_intents *s = cm_intents_new(), *n = NULL;
    char err[CM_INTENT_ERR_MAX] = "";
    uint64_t before, after;

    (void)state;
    put_ok(&s,
           intent("{\"id\": \"x\", \"kind\": \"drain\", \"member\": \"eur\", " META
                  ", \"expires_at\": \"2026-11-21T07:00:10Z\"}"),
           T0);
    put_ok(&s, intent(drain_eur), T0);
    assert_true(cm_intent_is_active(cm_intents_find(s, "x"), T0 + 9));
    assert_false(cm_intent_is_active(cm_intents_find(s, "x"), T0 + 10));
    assert_string_equal(cm_intent_status(cm_intents_find(s, "x"), T0 + 10), "expired");
    assert_int_equal(cm_intents_active_count(s, T0 + 9), 2);
    assert_int_equal(cm_intents_active_count(s, T0 + 10), 1);
    before = cm_intents_digest(s, T0 + 9);
    after = cm_intents_digest(s, T0 + 10);
    assert_true(before != after);
    /* An expired intent is listed for a day, then pruned. */
    assert_int_equal(cm_intents_prune(s, T0 + 10 + CM_INTENT_EXPIRED_KEEP_S, &n), CM_OK);
    assert_null(n);
    assert_int_equal(cm_intents_prune(s, T0 + 11 + CM_INTENT_EXPIRED_KEEP_S, &n), CM_OK);
    assert_non_null(n);
    assert_int_equal(cm_intents_count(n), 1);
    assert_true(cm_intents_digest(n, T0 + 11) == after);
    cm_intents_free(s);
    s = n;
    /* A tombstone is kept for a week. */
    assert_int_equal(cm_intents_remove(s, "d1", "bob", T0 + 20, &n, err, sizeof(err)), CM_OK);
    cm_intents_free(s);
    s = n;
    assert_int_equal(cm_intents_prune(s, T0 + 20 + CM_INTENT_TOMBSTONE_KEEP_S, &n), CM_OK);
    assert_null(n);
    assert_int_equal(cm_intents_prune(s, T0 + 21 + CM_INTENT_TOMBSTONE_KEEP_S, &n), CM_OK);
    assert_non_null(n);
    assert_int_equal(cm_intents_count(n), 0);
    cm_intents_free(n);
    cm_intents_free(s);
}

static void test_digest(void **state)
{
    struct cm_intents *a = cm_intents_new(), *b = cm_intents_new(), *n = NULL;
    const char *w = "{\"id\": \"w\", \"kind\": \"weight\", \"service\": \"default/web\", "
                    "\"member\": \"eur\", \"weight\": 3, " META "}";
    char err[CM_INTENT_ERR_MAX];

    (void)state;
    assert_true(cm_intents_digest(a, T0) == cm_intents_digest(b, T0));
    put_ok(&a, intent(drain_eur), T0);
    put_ok(&a, intent(w), T0);
    put_ok(&b, intent(w), T0);
    assert_true(cm_intents_digest(a, T0) != cm_intents_digest(b, T0));
    put_ok(&b, intent(drain_eur), T0);
    assert_true(cm_intents_digest(a, T0) == cm_intents_digest(b, T0));
    /* A removed intent counts as absent: equal to a holder that never had it. */
    struct cm_intents *c = cm_intents_new();
    put_ok(&c, intent(w), T0);
    assert_int_equal(cm_intents_remove(a, "d1", "bob", T0, &n, err, sizeof(err)), CM_OK);
    assert_true(cm_intents_digest(n, T0) == cm_intents_digest(c, T0));
    cm_intents_free(n);
    cm_intents_free(a);
    cm_intents_free(b);
    cm_intents_free(c);
}

static void test_load(void **state)
{
    struct cm_intents *s = NULL;
    json_t *arr =
        json_loads("[{\"id\": \"b\", \"kind\": \"drain\", \"member\": \"eur\", " META "},"
                   " {\"id\": \"a\", \"kind\": \"drain\", \"member\": \"nobody\", " META "},"
                   " 7,"
                   " {\"id\": \"b\", \"kind\": \"drain\", \"member\": \"eur\", " META
                   ", \"removed_at\": \"2026-11-21T06:10:00Z\", \"removed_by\": \"bob\"},"
                   " {\"id\": \"c\", \"kind\": \"force-up\", \"member\": \"usa\", " META "}]",
                   0, NULL);

    (void)state;
    assert_non_null(arr);
    assert_int_equal(cm_intents_load(arr, conf, "state.json", &s), CM_OK);
    /* The unknown member and the number are skipped; of b the tombstone stays. */
    assert_int_equal(cm_intents_count(s), 2);
    assert_string_equal(cm_intents_get(s, 0)->id, "b");
    assert_true(cm_intents_get(s, 0)->removed_at != 0);
    assert_string_equal(cm_intents_get(s, 1)->id, "c");
    json_t *out = cm_intents_json(s, T0);
    assert_int_equal(json_array_size(out), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(out, 0), "status")),
                        "removed");
    assert_string_equal(json_string_value(json_object_get(json_array_get(out, 1), "status")),
                        "active");
    json_decref(out);
    json_decref(arr);
    cm_intents_free(s);
}

static void test_view_precedence(void **state)
{
    struct cm_intents *s = cm_intents_new();
    struct cm_intent_view *v = NULL;
    const struct cm_intent *by = NULL;

    (void)state;
    put_ok(&s, intent("{\"id\": \"u1\", \"kind\": \"force-up\", \"member\": \"usa\", " META "}"),
           T0);
    put_ok(&s, intent("{\"id\": \"u2\", \"kind\": \"force-down\", \"member\": \"usa\", " META "}"),
           T0);
    put_ok(&s, intent("{\"id\": \"b1\", \"kind\": \"force-up\", \"member\": \"usb\", " META "}"),
           T0);
    put_ok(&s,
           intent("{\"id\": \"ev\", \"kind\": \"evacuate\", \"region\": \"eu-west-1\", " META
                  ", \"expires_at\": \"2026-11-21T08:00:00Z\"}"),
           T0);
    put_ok(&s, intent(drain_eur), T0);
    assert_int_equal(cm_intent_view_build(s, conf, T0, &v), CM_OK);
    /* force-down over force-up; drain over evacuate. */
    assert_int_equal(cm_intent_view_admin(v, USA, &by), CM_ADMIN_FORCE_DOWN);
    assert_string_equal(by->id, "u2");
    assert_int_equal(cm_intent_view_admin(v, USB, &by), CM_ADMIN_FORCE_UP);
    assert_int_equal(cm_intent_view_admin(v, EUR, &by), CM_ADMIN_DRAINED);
    assert_string_equal(by->id, "d1");
    assert_int_equal(cm_intent_view_admin(v, 7, &by), CM_ADMIN_NONE);
    assert_null(by);
    assert_int_equal(cm_intent_view_admin(NULL, USA, NULL), CM_ADMIN_NONE);
    assert_int_equal(v->active_count, 5);
    assert_true(v->digest == cm_intents_digest(s, T0));
    cm_intent_view_free(v);
    /* After the evacuation expires and with the drain gone, eur is back to NONE. */
    struct cm_intents *n = NULL;
    char err[CM_INTENT_ERR_MAX];
    assert_int_equal(cm_intents_remove(s, "d1", "bob", T0, &n, err, sizeof(err)), CM_OK);
    assert_int_equal(cm_intent_view_build(n, conf, T0, &v), CM_OK);
    assert_int_equal(cm_intent_view_admin(v, EUR, &by), CM_ADMIN_EVACUATED);
    assert_string_equal(by->id, "ev");
    cm_intent_view_free(v);
    assert_int_equal(cm_intent_view_build(n, conf, T0 + 3600, &v), CM_OK);
    assert_int_equal(cm_intent_view_admin(v, EUR, NULL), CM_ADMIN_NONE);
    assert_int_equal(v->active_count, 3);
    cm_intent_view_free(v);
    cm_intents_free(n);
    cm_intents_free(s);
}

/* Evacuating a region takes every member there, and only those. */
static void test_view_evacuate(void **state)
{
    struct cm_intents *s = cm_intents_new();
    struct cm_intent_view *v = NULL;

    (void)state;
    put_ok(&s,
           intent("{\"id\": \"ev\", \"kind\": \"evacuate\", \"region\": \"us-east-1\", " META
                  ", \"expires_at\": \"2026-11-21T08:00:00Z\"}"),
           T0);
    assert_int_equal(cm_intent_view_build(s, conf, T0, &v), CM_OK);
    assert_int_equal(cm_intent_view_admin(v, USA, NULL), CM_ADMIN_EVACUATED);
    assert_int_equal(cm_intent_view_admin(v, USB, NULL), CM_ADMIN_EVACUATED);
    assert_int_equal(cm_intent_view_admin(v, EUR, NULL), CM_ADMIN_NONE);
    assert_true(cm_intent_applies(cm_intents_get(s, 0), conf, NULL, USB));
    assert_false(cm_intent_applies(cm_intents_get(s, 0), conf, NULL, EUR));
    cm_intent_view_free(v);
    cm_intents_free(s);
}

static void test_view_values(void **state)
{
    struct cm_intents *s = cm_intents_new();
    struct cm_intent_view *v = NULL;
    const struct cm_intent *by = NULL;
    uint32_t value = 99;

    (void)state;
    put_ok(&s,
           intent("{\"id\": \"w-old\", \"kind\": \"weight\", \"service\": \"default/web\", "
                  "\"member\": \"eur\", \"weight\": 5, " META "}"),
           T0);
    put_ok(&s,
           intent("{\"id\": \"w-new\", \"kind\": \"weight\", \"service\": \"default/web\", "
                  "\"member\": \"eur\", \"weight\": 0, \"author\": \"a\", \"reason\": \"r\", "
                  "\"created_at\": \"2026-11-21T06:30:00Z\"}"),
           T0);
    put_ok(&s,
           intent("{\"id\": \"p\", \"kind\": \"priority\", \"service\": \"default/web\", "
                  "\"member\": \"usa\", \"priority\": 2, " META "}"),
           T0);
    put_ok(&s,
           intent("{\"id\": \"q\", \"kind\": \"priority\", \"service\": \"shop/store\", "
                  "\"member\": \"usa\", \"priority\": 7, " META "}"),
           T0);
    assert_int_equal(cm_intent_view_build(s, conf, T0, &v), CM_OK);
    assert_true(cm_intent_view_value(v, "default/web", EUR, CM_INTENT_WEIGHT, &value, &by));
    assert_int_equal(value, 0);
    assert_string_equal(by->id, "w-new");
    assert_false(cm_intent_view_value(v, "default/web", EUR, CM_INTENT_PRIORITY, &value, NULL));
    assert_false(cm_intent_view_value(v, "default/web", USB, CM_INTENT_WEIGHT, &value, NULL));
    assert_true(cm_intent_view_value(v, "default/web", USA, CM_INTENT_PRIORITY, &value, NULL));
    assert_int_equal(value, 2);
    assert_true(cm_intent_view_value(v, "shop/store", USA, CM_INTENT_PRIORITY, &value, NULL));
    assert_int_equal(value, 7);
    assert_false(cm_intent_view_value(v, "other/svc", USA, CM_INTENT_PRIORITY, &value, NULL));
    assert_false(cm_intent_view_value(NULL, "default/web", USA, CM_INTENT_PRIORITY, &value, NULL));
    assert_true(cm_intent_applies(cm_intents_find(s, "q"), conf, "shop/store", USA));
    assert_false(cm_intent_applies(cm_intents_find(s, "q"), conf, "default/web", USA));
    cm_intent_view_free(v);
    cm_intents_free(s);
}

/* The digest document: generations by vantage and the active intents. */
static void test_digest_json(void **state)
{
    struct cm_store *store = cm_store_new();
    struct cm_intents *s = cm_intents_new();
    json_t *d1, *d2;

    (void)state;
    d1 = cm_intents_digest_json(store, s, T0);
    put_ok(&s, intent(drain_eur), T0);
    d2 = cm_intents_digest_json(store, s, T0);
    assert_string_equal(
        json_string_value(json_object_get(d2, "active_intents") != NULL
                              ? json_array_get(json_object_get(d2, "active_intents"), 0)
                              : NULL),
        "d1");
    assert_int_equal(strlen(json_string_value(json_object_get(d1, "state"))), 16);
    assert_string_not_equal(json_string_value(json_object_get(d1, "state")),
                            json_string_value(json_object_get(d2, "state")));
    assert_string_not_equal(json_string_value(json_object_get(d1, "intents")),
                            json_string_value(json_object_get(d2, "intents")));
    json_decref(d1);
    json_decref(d2);
    cm_intents_free(s);
    cm_store_free(store);
}

static void test_make_id(void **state)
{
    char id[CM_INTENT_ID_MAX + 1];

    (void)state;
    cm_intent_make_id(id, sizeof(id), CM_INTENT_DRAIN, "eur", T0, 0x12345);
    assert_string_equal(id, "drain-eur-1795244400-2345");
    /* Whatever the target, the id is well formed (the target is checked elsewhere). */
    cm_intent_make_id(id, sizeof(id), CM_INTENT_EVACUATE, "EU West/1", T0, 7);
    assert_string_equal(id, "evacuate-eu-west-1-1795244400-0007");
    cm_intent_make_id(id, sizeof(id), CM_INTENT_FORCE_DOWN,
                      "a-member-name-that-is-much-longer-than-thirty-two", T0, 0);
    assert_int_equal(strlen(id), strlen("force-down--1795244400-0000") + 32);
    assert_true(strlen(id) <= CM_INTENT_ID_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_kinds),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_put_rules),
        cmocka_unit_test(test_remove_and_tombstones),
        cmocka_unit_test(test_tombstone_delivery),
        cmocka_unit_test(test_expiry_and_prune),
        cmocka_unit_test(test_digest),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_view_precedence),
        cmocka_unit_test(test_view_evacuate),
        cmocka_unit_test(test_view_values),
        cmocka_unit_test(test_digest_json),
        cmocka_unit_test(test_make_id),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
