/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cm_etcd_feed.c -- etcd keys into a consumer's document store: lists
 * and events, etcd's order over generations, refused values, a vantage key
 * gone (dropped unless it was the last), the digest two consumers compare,
 * and the store's cm_store_replace / cm_store_retain underneath.
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

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_etcd_feed.h"
#include "common/cm_intent.h"
#include "common/cm_state.h"
#include "common/cm_store.h"

#define ROOT "/fedgslb/myfed/"
#define US   "us-east-1"
#define EU   "eu-west-1"
#define AP   "ap-northeast-1"

static const char conf_text[] =
    "{\"federation\": \"myfed\", \"zone\": \"fed.example.test\","
    " \"regions\": {\"us-east-1\": {\"zones\": [\"us-east-1a\"]},"
    "              \"eu-west-1\": {\"zones\": [\"eu-west-1a\"]},"
    "              \"ap-northeast-1\": {\"zones\": [\"ap-northeast-1a\"]}},"
    " \"members\": {\"usa\": {\"region\": \"us-east-1\"}},"
    " \"services\": {\"default/web\": {\"port\": 80}}}";

struct fixture {
    struct cm_conf *conf;
    struct cm_store *store;
    struct cm_etcd_feed *feed;
    struct cm_etcd_feed_target t;
    unsigned applies;
    bool refuse_apply; /* the consumer cannot build from candidates */
    char docs[4][512];
    struct cm_etcd_kv kv[8];
    struct cm_intents *intents; /* what the intents hook made of the keys */
    unsigned intent_changes;
};

static int apply_cb(void *arg, struct cm_store_cand *cand, char *err, size_t errlen)
{
    struct fixture *f = arg;

    if (f->refuse_apply) {
        cm_store_cand_free(cand);
        snprintf(err, errlen, "view build failed (test)");
        return CM_EINVAL;
    }
    cm_store_commit(f->store, cand);
    f->applies++;
    return CM_OK;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[CM_CONF_ERR_MAX];

    assert_non_null(f);
    assert_int_equal(cm_conf_load_string("t.json", conf_text, &f->conf, err, sizeof(err)), CM_OK);
    f->store = cm_store_new();
    f->feed = cm_etcd_feed_new(ROOT);
    assert_non_null(f->store);
    assert_non_null(f->feed);
    f->t = (struct cm_etcd_feed_target){
        .store = f->store, .conf = f->conf, .apply = apply_cb, .arg = f, .now_ms = 1000};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    cm_etcd_feed_free(f->feed);
    cm_intents_free(f->intents);
    cm_store_free(f->store);
    cm_conf_unref(f->conf);
    free(f);
    return 0;
}

/* A document of @vantage saying usa is up or down. */
static const char *doc(char *buf, const char *vantage, unsigned gen, bool usa_up)
{
    snprintf(buf, 512,
             "{\"version\": 1, \"vantage\": \"%s\", \"generation\": %u,"
             " \"generated_at\": \"2026-11-21T07:00:00Z\","
             " \"services\": {\"default/web\": {\"port\": 80, \"members\": {"
             "  \"usa\": {\"addresses\": [\"192.0.2.10\"], \"healthy\": %s}}}}}",
             vantage, gen, usa_up ? "true" : "false");
    return buf;
}

/* A kv (borrowing @key and @value) at @rev. */
static struct cm_etcd_kv kv_of(const char *key, const char *value, int64_t rev)
{
    return (struct cm_etcd_kv){.key = (char *)(uintptr_t)key,
                               .key_len = strlen(key),
                               .value = (char *)(uintptr_t)value,
                               .value_len = strlen(value),
                               .mod_revision = rev};
}

static void put(struct fixture *f, const char *key, const char *value, int64_t rev)
{
    struct cm_etcd_event ev = {.type = CM_ETCD_EVENT_PUT, .kv = kv_of(key, value, rev)};

    assert_int_equal(cm_etcd_feed_event(f->feed, &ev, &f->t), CM_OK);
}

static void del(struct fixture *f, const char *key, int64_t rev)
{
    struct cm_etcd_event ev = {.type = CM_ETCD_EVENT_DELETE, .kv = kv_of(key, "", rev)};

    assert_int_equal(cm_etcd_feed_event(f->feed, &ev, &f->t), CM_OK);
}

/* "eu-west-1:3 us-east-1:5": the vantages held with their generations, sorted. */
static const char *held(const struct fixture *f, char *out, size_t cap)
{
    const char *names[8];
    uint64_t gens[8];
    size_t n = cm_store_count(f->store), o = 0;

    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++) {
        const struct cm_state *d = cm_store_get(f->store, i, NULL);
        size_t j = i;

        while (j > 0 && strcmp(names[j - 1], d->vantage) > 0) {
            names[j] = names[j - 1];
            gens[j] = gens[j - 1];
            j--;
        }
        names[j] = d->vantage;
        gens[j] = d->generation;
    }
    out[0] = '\0';
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(out + o, cap - o, "%s%s:%llu", i > 0 ? " " : "", names[i],
                              (unsigned long long)gens[i]);
    return out;
}

static void test_key_parse(void **state)
{
    static const struct {
        const char *key;
        enum cm_etcd_key_kind kind;
        const char *name;
    } cases[] = {
        {ROOT "vantages/us-east-1", CM_ETCD_KEY_VANTAGE, "us-east-1"},
        {ROOT "intents/drain/eur", CM_ETCD_KEY_INTENT, "drain/eur"},
        {ROOT "consumers/dnsd@127.0.0.1:9153", CM_ETCD_KEY_CONSUMER, "dnsd@127.0.0.1:9153"},
        {ROOT "vantages/", CM_ETCD_KEY_OTHER, NULL},    /* no name */
        {ROOT "vantages/a/b", CM_ETCD_KEY_OTHER, NULL}, /* a vantage name has no '/' */
        {ROOT "vantage/a", CM_ETCD_KEY_OTHER, NULL},
        {"/fedgslb/otherfed/vantages/a", CM_ETCD_KEY_OTHER, NULL},
        {ROOT, CM_ETCD_KEY_OTHER, NULL},
        {"/fedgslb/myfed", CM_ETCD_KEY_OTHER, NULL},
    };
    char *root = cm_etcd_root("/fedgslb/", "myfed");

    (void)state;
    assert_string_equal(root, ROOT);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *name = NULL;
        size_t len = 0;

        print_message("%s\n", cases[i].key);
        assert_int_equal(cm_etcd_key_parse(root, cases[i].key, strlen(cases[i].key), &name, &len),
                         cases[i].kind);
        if (cases[i].name != NULL) {
            assert_int_equal(len, strlen(cases[i].name));
            assert_memory_equal(name, cases[i].name, len);
        }
    }
    /* a NUL inside a key is never a name */
    {
        const char *name;
        size_t len;

        assert_int_equal(
            cm_etcd_key_parse(root, ROOT "vantages/a\0b", sizeof(ROOT) + 10, &name, &len),
            CM_ETCD_KEY_OTHER);
    }
    free(root);
}

static void test_sync_then_events(void **state)
{
    struct fixture *f = *state;
    char h[128];

    f->kv[0] = kv_of(ROOT "vantages/" US, doc(f->docs[0], US, 5, true), 10);
    f->kv[1] = kv_of(ROOT "vantages/" EU, doc(f->docs[1], EU, 3, true), 11);
    f->kv[2] = kv_of(ROOT "consumers/dnsd@x", "{}", 12); /* not state */
    f->kv[3] = kv_of("/elsewhere", "{}", 13);
    assert_int_equal(cm_etcd_feed_sync(f->feed, f->kv, 4, &f->t), CM_OK);
    assert_string_equal(held(f, h, sizeof(h)), "eu-west-1:3 us-east-1:5");
    assert_int_equal(f->applies, 2);

    /* A new document, then a lower generation: etcd's order wins. */
    put(f, ROOT "vantages/" US, doc(f->docs[0], US, 6, false), 14);
    assert_string_equal(held(f, h, sizeof(h)), "eu-west-1:3 us-east-1:6");
    put(f, ROOT "vantages/" US, doc(f->docs[0], US, 1, false), 15);
    assert_string_equal(held(f, h, sizeof(h)), "eu-west-1:3 us-east-1:1");
    /* The same document again (a re-put): no new candidate. */
    f->applies = 0;
    put(f, ROOT "vantages/" US, doc(f->docs[0], US, 1, false), 16);
    assert_int_equal(f->applies, 0);

    /* A third vantage, then one key gone: dropped. */
    put(f, ROOT "vantages/" AP, doc(f->docs[2], AP, 9, true), 17);
    assert_string_equal(held(f, h, sizeof(h)), "ap-northeast-1:9 eu-west-1:3 us-east-1:1");
    del(f, ROOT "vantages/" EU, 18);
    assert_string_equal(held(f, h, sizeof(h)), "ap-northeast-1:9 us-east-1:1");
    del(f, ROOT "vantages/" EU, 19); /* gone already: nothing */
    assert_string_equal(held(f, h, sizeof(h)), "ap-northeast-1:9 us-east-1:1");
}

static void test_last_key_gone_keeps_state(void **state)
{
    struct fixture *f = *state;
    char h[128];

    put(f, ROOT "vantages/" US, doc(f->docs[0], US, 5, true), 10);
    put(f, ROOT "vantages/" EU, doc(f->docs[1], EU, 3, true), 11);
    del(f, ROOT "vantages/" US, 12);
    assert_string_equal(held(f, h, sizeof(h)), "eu-west-1:3");
    /* Every key gone (every lease expired, or etcd lost its data): keep the last state. */
    del(f, ROOT "vantages/" EU, 13);
    assert_string_equal(held(f, h, sizeof(h)), "eu-west-1:3");
    /* An empty list says the same. */
    assert_int_equal(cm_etcd_feed_sync(f->feed, NULL, 0, &f->t), CM_OK);
    assert_string_equal(held(f, h, sizeof(h)), "eu-west-1:3");
    /* One vantage writes again: the ones kept past their keys go. */
    put(f, ROOT "vantages/" AP, doc(f->docs[2], AP, 1, true), 14);
    assert_string_equal(held(f, h, sizeof(h)), "ap-northeast-1:1");
}

static void test_list_drops_unlisted(void **state)
{
    struct fixture *f = *state;
    char h[128];

    put(f, ROOT "vantages/" US, doc(f->docs[0], US, 5, true), 10);
    put(f, ROOT "vantages/" EU, doc(f->docs[1], EU, 3, true), 11);
    /* A relist after compaction: eu's key went while we were not watching. */
    f->kv[0] = kv_of(ROOT "vantages/" US, doc(f->docs[0], US, 7, true), 30);
    assert_int_equal(cm_etcd_feed_sync(f->feed, f->kv, 1, &f->t), CM_OK);
    assert_string_equal(held(f, h, sizeof(h)), "us-east-1:7");
}

static void test_refused_values(void **state)
{
    struct fixture *f = *state;
    struct cm_etcd_feed_stats st;
    char h[128];

    put(f, ROOT "vantages/" US, doc(f->docs[0], US, 5, true), 10);
    /* garbage, another vantage's document, a vantage the configuration does not know */
    put(f, ROOT "vantages/" US, "{not json", 11);
    put(f, ROOT "vantages/" US, doc(f->docs[1], EU, 8, false), 12);
    put(f, ROOT "vantages/eu-central-9", doc(f->docs[2], "eu-central-9", 1, false), 13);
    assert_string_equal(held(f, h, sizeof(h)), "us-east-1:5"); /* the held one stays */
    cm_etcd_feed_get_stats(f->feed, &st);
    assert_int_equal(st.refused, 3);
    assert_int_equal(st.vantage_keys, 2);
    /* us's key goes; only keys with refused documents are left: as when every
     * key is gone, the last state stays */
    del(f, ROOT "vantages/" US, 14);
    assert_string_equal(held(f, h, sizeof(h)), "us-east-1:5");
}

static void test_apply_refused_changes_nothing(void **state)
{
    struct fixture *f = *state;
    struct cm_etcd_feed_stats st;
    char h[128];

    put(f, ROOT "vantages/" US, doc(f->docs[0], US, 5, true), 10);
    f->refuse_apply = true;
    put(f, ROOT "vantages/" US, doc(f->docs[0], US, 6, false), 11);
    assert_string_equal(held(f, h, sizeof(h)), "us-east-1:5");
    cm_etcd_feed_get_stats(f->feed, &st);
    assert_int_equal(st.apply_failed, 1);
    /* After a reload that lets it build, the held value is applied again. */
    f->refuse_apply = false;
    assert_int_equal(cm_etcd_feed_reapply(f->feed, &f->t), CM_OK);
    assert_string_equal(held(f, h, sizeof(h)), "us-east-1:6");
}

static void test_digest(void **state)
{
    struct fixture *f = *state;
    struct cm_etcd_feed *g = cm_etcd_feed_new(ROOT);
    struct cm_store *s2 = cm_store_new();
    struct fixture f2 = *f;
    uint64_t empty = cm_etcd_feed_digest(g);

    (void)state;
    f2.store = s2;
    f2.t.store = s2;
    f2.t.arg = &f2;
    /* f by events, g by a list: the same keys at the same revisions, the same digest. */
    put(f, ROOT "vantages/" US, doc(f->docs[0], US, 5, true), 10);
    put(f, ROOT "intents/drain/eur", "{\"drain\":true}", 11);
    put(f, ROOT "vantages/" EU, doc(f->docs[1], EU, 2, true), 12);
    put(f, ROOT "vantages/" EU, doc(f->docs[1], EU, 3, true), 13);
    f->kv[0] = kv_of(ROOT "vantages/" EU, doc(f->docs[2], EU, 3, true), 13);
    f->kv[1] = kv_of(ROOT "intents/drain/eur", "{\"drain\":true}", 11);
    f->kv[2] = kv_of(ROOT "vantages/" US, doc(f->docs[3], US, 5, true), 10);
    assert_int_equal(cm_etcd_feed_sync(g, f->kv, 3, &f2.t), CM_OK);
    assert_true(cm_etcd_feed_digest(f->feed) == cm_etcd_feed_digest(g));
    assert_true(cm_etcd_feed_digest(g) != empty);
    /* One revision apart: different. */
    put(f, ROOT "intents/drain/eur", "{\"drain\":true}", 20);
    assert_true(cm_etcd_feed_digest(f->feed) != cm_etcd_feed_digest(g));
    del(f, ROOT "intents/drain/eur", 21);
    f->kv[1] = kv_of(ROOT "vantages/" US, doc(f->docs[3], US, 5, true), 10);
    assert_int_equal(cm_etcd_feed_sync(g, f->kv, 2, &f2.t), CM_OK);
    assert_true(cm_etcd_feed_digest(f->feed) == cm_etcd_feed_digest(g));
    cm_etcd_feed_free(g);
    cm_store_free(s2);
}

/* ---- intents ---- */

#define NOW_S 1795244400 /* 2026-11-21T07:00:00Z */

static void intents_cb(void *arg, struct cm_etcd_feed *feed)
{
    struct fixture *f = arg;
    struct cm_intents *next = NULL;

    assert_int_equal(cm_etcd_feed_intents(feed, f->intents, f->conf, NOW_S, &next), CM_OK);
    if (next != NULL) {
        cm_intents_free(f->intents);
        f->intents = next;
        f->intent_changes++;
    }
}

static int setup_intents(void **state)
{
    struct fixture *f;

    setup(state);
    f = *state;
    f->intents = cm_intents_new();
    assert_non_null(f->intents);
    f->t.intents = intents_cb;
    return 0;
}

/* A drain of @member with @id; @extra is more JSON members ("" or ", ..."). */
static const char *drain(char *buf, const char *id, const char *member, const char *extra)
{
    snprintf(buf, 512,
             "{\"id\": \"%s\", \"kind\": \"drain\", \"member\": \"%s\", \"author\": \"ops\","
             " \"reason\": \"test\", \"created_at\": \"2026-11-21T06:00:00Z\"%s}",
             id, member, extra);
    return buf;
}

static void test_intent_keys(void **state)
{
    struct fixture *f = *state;
    const struct cm_intent *in;
    struct cm_intents *before;
    char b[512];

    put(f, ROOT "intents/d1", drain(f->docs[0], "d1", "usa", ""), 5);
    assert_int_equal(f->intent_changes, 1);
    assert_int_equal(cm_intents_active_count(f->intents, NOW_S), 1);
    before = f->intents;
    /* Hostile values: each is refused, the set held stays (no new set at all). */
    put(f, ROOT "intents/x1", "{not json", 6);
    put(f, ROOT "intents/x2", drain(b, "d1", "usa", ", \"reason\": \"other\""), 7);
    put(f, ROOT "intents/x3", drain(b, "x1", "usa", ""), 8);               /* not the key's id */
    put(f, ROOT "intents/x4", drain(b, "x4", "nowhere", ""), 9);           /* unknown member */
    put(f, ROOT "intents/x5", drain(b, "x5", "usa", ", \"evil\": 1"), 10); /* unknown field */
    put(f, ROOT "intents/x6", "[]", 11);
    put(f, ROOT "intents/x7", drain(b, "x7", "usa", ", \"expires_at\": \"2026-11-21T06:30:00Z\""),
        12); /* expired already: nothing to apply */
    put(f, ROOT "intents/d1", drain(b, "d1", "usa", ", \"reason\": \"changed\""), 13);
    assert_ptr_equal(f->intents, before);
    assert_int_equal(f->intent_changes, 1);
    assert_int_equal(cm_intents_count(f->intents), 1);
    assert_string_equal(cm_intents_get(f->intents, 0)->reason, "test");
    /* The tombstone written to the key removes it (removed_by kept). */
    put(f, ROOT "intents/d1",
        drain(b, "d1", "usa",
              ", \"removed_at\": \"2026-11-21T06:59:00Z\", \"removed_by\": \"alice\""),
        14);
    in = cm_intents_find(f->intents, "d1");
    assert_non_null(in);
    assert_int_equal(cm_intents_active_count(f->intents, NOW_S), 0);
    assert_string_equal(in->removed_by, "alice");
    /* A live intent again under a removed id: refused, as a push would be. */
    put(f, ROOT "intents/d1", drain(f->docs[0], "d1", "usa", ""), 15);
    assert_int_equal(cm_intents_active_count(f->intents, NOW_S), 0);
    /* A key deleted: its live intent goes (a tombstone by etcd). */
    put(f, ROOT "intents/d2", drain(f->docs[1], "d2", "usa", ""), 16);
    assert_int_equal(cm_intents_active_count(f->intents, NOW_S), 1);
    del(f, ROOT "intents/d2", 17);
    assert_int_equal(cm_intents_active_count(f->intents, NOW_S), 0);
    assert_string_equal(cm_intents_find(f->intents, "d2")->removed_by, "etcd (key deleted)");
    /* A list without a live intent's key removes it; one with it keeps it. */
    put(f, ROOT "intents/d3", drain(f->docs[2], "d3", "usa", ""), 18);
    f->kv[0] = kv_of(ROOT "intents/d3", f->docs[2], 18);
    assert_int_equal(cm_etcd_feed_sync(f->feed, f->kv, 1, &f->t), CM_OK);
    assert_true(cm_intent_is_active(cm_intents_find(f->intents, "d3"), NOW_S));
    assert_int_equal(cm_etcd_feed_sync(f->feed, f->kv, 0, &f->t), CM_OK);
    assert_false(cm_intent_is_active(cm_intents_find(f->intents, "d3"), NOW_S));
    /* A key holding a NUL, and one under intents/ with no id: not intent keys. */
    {
        const char *name;
        size_t nl;
        static const char nul[] = ROOT "intents/a\0b";

        assert_int_equal(cm_etcd_key_parse(ROOT, nul, sizeof(nul) - 1, &name, &nl),
                         CM_ETCD_KEY_OTHER);
        assert_int_equal(
            cm_etcd_key_parse(ROOT, ROOT "intents/", strlen(ROOT "intents/"), &name, &nl),
            CM_ETCD_KEY_OTHER);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_parse),
        cmocka_unit_test_setup_teardown(test_sync_then_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_last_key_gone_keeps_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_drops_unlisted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_refused_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_digest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intent_keys, setup_intents, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
