/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_dns_state.c -- dnsd's state store: vantages, generations, expiry, the
 * operator's intents (and the drain shorthand made of them), the state file.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_intent.h"
#include "common/cm_state.h"
#include "dnsd/dns_fed.h"
#include "dnsd/dns_state.h"

#define CONF_HEAD                                                                                  \
    "{\"federation\": \"myfed\", \"zone\": \"fed.example.test\","                                  \
    " \"regions\": {\"us-east-1\": {\"zones\": [\"us-east-1a\"]},"                                 \
    "              \"eu-west-1\": {\"zones\": [\"eu-west-1a\"]}},"
#define SERVICES " \"services\": {\"default/web\": {\"port\": 80}}"

/* usa, eur; publish every 2 s: vantages expire after 6 s. */
static const char conf_text[] =
    CONF_HEAD " \"members\": {\"usa\": {\"region\": \"us-east-1\"},"
              "             \"eur\": {\"region\": \"eu-west-1\"}}," SERVICES ","
              " \"health\": {\"vantage\": \"us-east-1\", \"publish_interval_ms\": 2000}}";
/* Members reordered, plus one; no health section (expiry 30 s). */
static const char conf2_text[] =
    CONF_HEAD " \"members\": {\"eur\": {\"region\": \"eu-west-1\"},"
              "             \"jpn\": {\"region\": \"eu-west-1\"},"
              "             \"usa\": {\"region\": \"us-east-1\"}}," SERVICES "}";
/* Only eur; region us-east-1 gone, so the us-east-1 vantage's documents are invalid. */
static const char conf3_text[] =
    "{\"federation\": \"myfed\", \"zone\": \"fed.example.test\","
    " \"regions\": {\"eu-west-1\": {\"zones\": [\"eu-west-1a\"]}},"
    " \"members\": {\"eur\": {\"region\": \"eu-west-1\"}}," SERVICES "}";

#define DOC_MAX 1024

struct fixture {
    struct cm_conf *conf;
    struct dns_state *st;
    char dir[64];
    char path[128];
    int applies;    /* apply calls */
    bool fail_next; /* the next apply fails */
};

static struct cm_conf *conf_load(const char *text)
{
    char err[CM_CONF_ERR_MAX];
    struct cm_conf *conf = NULL;

    if (cm_conf_load_string("test.json", text, &conf, err, sizeof(err)) != CM_OK)
        fail_msg("config: %s", err);
    return conf;
}

/* One vantage's document: usa and eur for default/web, with their health. */
static const char *doc_text(char *buf, size_t cap, const char *vantage, unsigned gen, bool usa_up,
                            bool eur_up)
{
    int n = snprintf(buf, cap,
                     "{\"version\": 1, \"vantage\": \"%s\", \"generation\": %u,"
                     " \"generated_at\": \"2026-11-21T07:00:00Z\", \"members\": {},"
                     " \"services\": {\"default/web\": {\"port\": 80, \"members\": {"
                     "  \"usa\": {\"addresses\": [\"192.0.2.10\"], \"ready_endpoints\": 1,"
                     "           \"healthy\": %s},"
                     "  \"eur\": {\"addresses\": [\"192.0.2.20\"], \"ready_endpoints\": 1,"
                     "           \"healthy\": %s}}}}}",
                     vantage, gen, usa_up ? "true" : "false", eur_up ? "true" : "false");

    assert_true(n > 0 && (size_t)n < cap);
    return buf;
}

static int apply_cb(void *arg, struct cm_conf *conf, const struct cm_merged *merged,
                    const struct cm_intent_view *intents, char *err, size_t errlen)
{
    struct fixture *f = arg;

    assert_non_null(conf);
    assert_non_null(merged);
    assert_non_null(intents);
    assert_int_equal(intents->member_count, conf->member_count);
    if (f->fail_next) {
        f->fail_next = false;
        snprintf(err, errlen, "view build failed on purpose");
        return CM_ECONFIG;
    }
    f->applies++;
    return CM_OK;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_dns_state.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/dnsd-state.json", f->dir);
    f->conf = conf_load(conf_text);
    f->st = dns_state_new(f->conf, f->path, apply_cb, f);
    assert_non_null(f->st);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    DIR *d;
    struct dirent *e;

    dns_state_free(f->st);
    cm_conf_unref(f->conf);
    d = opendir(f->dir);
    while (d != NULL && (e = readdir(d)) != NULL) {
        char p[512];

        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
        unlink(p);
    }
    if (d != NULL)
        closedir(d);
    rmdir(f->dir);
    free(f);
    return 0;
}

static int put(struct fixture *f, const char *vantage, unsigned gen, bool usa_up, bool eur_up,
               uint64_t now, char *err, size_t errlen)
{
    char buf[DOC_MAX];
    const char *text = doc_text(buf, sizeof(buf), vantage, gen, usa_up, eur_up);
    int rc = dns_state_put(f->st, text, strlen(text), NULL, now, err, errlen);

    dns_state_flush(f->st, 0, true); /* the coalescing rule has its own test */
    return rc;
}

static const struct cm_merged_endpoint *merged_ep(const struct dns_state *st, const char *member)
{
    const struct cm_merged *m = dns_state_merged(st);
    int idx = cm_conf_member_index(dns_state_conf(st), member);

    assert_true(idx >= 0);
    for (size_t i = 0; i < m->service_count; i++) {
        if (strcmp(m->services[i].key, "default/web") == 0)
            return &m->services[i].members[idx];
    }
    fail_msg("default/web not in the merge");
    return NULL;
}

static void test_put_accept_and_replace(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    uint64_t at = 0;

    assert_int_equal(dns_state_vantage_count(f->st), 0);
    assert_int_equal(put(f, "us-east-1", 5, true, true, 1000, err, sizeof(err)), CM_OK);
    assert_int_equal(f->applies, 1);
    assert_int_equal(dns_state_vantage_count(f->st), 1);
    assert_true(merged_ep(f->st, "eur")->healthy);

    /* A newer generation from the same vantage replaces the document. */
    assert_int_equal(put(f, "us-east-1", 6, true, false, 2000, err, sizeof(err)), CM_OK);
    assert_int_equal(f->applies, 2);
    assert_int_equal(dns_state_vantage_count(f->st), 1);
    assert_int_equal(dns_state_vantage(f->st, 0, &at)->generation, 6);
    assert_int_equal(at, 2000);
    assert_false(merged_ep(f->st, "eur")->healthy);

    /* A second vantage is merged: 1 up, 1 down is a tie, which keeps eur up. */
    assert_int_equal(put(f, "eu-west-1", 1, true, true, 2500, err, sizeof(err)), CM_OK);
    assert_int_equal(dns_state_vantage_count(f->st), 2);
    assert_true(merged_ep(f->st, "eur")->healthy);
    assert_int_equal(merged_ep(f->st, "eur")->votes_up, 1);
    assert_int_equal(merged_ep(f->st, "eur")->votes_down, 1);
}

static void test_put_stale_generation(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    uint64_t at = 0;

    assert_int_equal(put(f, "eu-west-1", 7, true, true, 1000, err, sizeof(err)), CM_OK);
    /* Older: rejected with the reason; the held document stays. */
    assert_int_equal(put(f, "eu-west-1", 6, true, false, 1100, err, sizeof(err)), CM_EEXIST);
    assert_string_equal(err, "stale generation 6 <= 7 from vantage eu-west-1");
    /* Same generation, other content: rejected too. */
    assert_int_equal(put(f, "eu-west-1", 7, false, false, 1200, err, sizeof(err)), CM_EEXIST);
    assert_string_equal(
        err, "stale generation 7 <= 7 from vantage eu-west-1 (same generation, different content)");
    assert_true(merged_ep(f->st, "eur")->healthy);
    assert_int_equal(f->applies, 1);
    /* Same generation, same content: accepted without a rebuild, age refreshed. */
    assert_int_equal(put(f, "eu-west-1", 7, true, true, 1300, err, sizeof(err)), CM_OK);
    assert_int_equal(f->applies, 1);
    dns_state_vantage(f->st, 0, &at);
    assert_int_equal(at, 1300);
}

static void test_put_rejected(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    const char *garbage = "{\"version\": 1, ";
    char unknown_member[DOC_MAX], *pos;

    assert_int_equal(dns_state_put(f->st, garbage, strlen(garbage), NULL, 1, err, sizeof(err)),
                     CM_EPARSE);
    /* A vantage that is not a configured region. */
    assert_int_equal(put(f, "ap-east-9", 1, true, true, 1, err, sizeof(err)), CM_ESTATE);
    assert_non_null(strstr(err, "ap-east-9"));
    /* A member that is not configured. */
    doc_text(unknown_member, sizeof(unknown_member), "eu-west-1", 1, true, true);
    pos = strstr(unknown_member, "\"eur\"");
    assert_non_null(pos);
    pos[1] = 'x'; /* "eur" -> "xur" */
    assert_int_equal(
        dns_state_put(f->st, unknown_member, strlen(unknown_member), NULL, 1, err, sizeof(err)),
        CM_ESTATE);
    assert_int_equal(dns_state_vantage_count(f->st), 0);
    assert_int_equal(f->applies, 0);
    assert_int_equal(access(f->path, F_OK), -1); /* nothing accepted, nothing written */

    /* The view cannot be built: rejected with the builder's reason, state unchanged. */
    assert_int_equal(put(f, "eu-west-1", 3, true, true, 1, err, sizeof(err)), CM_OK);
    f->fail_next = true;
    assert_int_equal(put(f, "eu-west-1", 4, false, false, 2, err, sizeof(err)), CM_ECONFIG);
    assert_string_equal(err, "view build failed on purpose");
    assert_int_equal(dns_state_vantage(f->st, 0, NULL)->generation, 3);
    assert_true(merged_ep(f->st, "eur")->healthy);
}

static void test_expiry(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";

    assert_int_equal(dns_state_expiry_ms(f->conf), 6000);
    assert_int_equal(put(f, "us-east-1", 1, true, true, 1000, err, sizeof(err)), CM_OK);
    assert_int_equal(put(f, "eu-west-1", 1, true, false, 4000, err, sizeof(err)), CM_OK);
    assert_int_equal(dns_state_expire(f->st, 7000), 0); /* exactly 3 intervals: still fresh */
    assert_int_equal(dns_state_expire(f->st, 7001), 1);
    assert_int_equal(dns_state_vantage_count(f->st), 1);
    assert_string_equal(dns_state_vantage(f->st, 0, NULL)->vantage, "eu-west-1");
    assert_false(merged_ep(f->st, "eur")->healthy); /* only eu-west-1's verdict is left */

    /* The last vantage is never dropped: every checker silent keeps the last state. */
    assert_int_equal(dns_state_expire(f->st, 20000), 0);
    assert_int_equal(dns_state_vantage_count(f->st), 1);
    assert_false(merged_ep(f->st, "eur")->healthy);

    /* An expired vantage may start over with a lower generation (restarted checker). */
    assert_int_equal(put(f, "us-east-1", 0, true, true, 21000, err, sizeof(err)), CM_OK);
    assert_int_equal(dns_state_vantage_count(f->st), 2);

    /* Now eu-west-1 is stale beside a fresh one. When the rebuild fails the vantage
     * stays, and the next tick retries. */
    f->fail_next = true;
    assert_true(dns_state_expire(f->st, 21500) < 0);
    assert_int_equal(dns_state_vantage_count(f->st), 2);
    assert_int_equal(dns_state_expire(f->st, 21500), 1);
    assert_int_equal(dns_state_vantage_count(f->st), 1);
    assert_string_equal(dns_state_vantage(f->st, 0, NULL)->vantage, "us-east-1");
}

/* 2026-11-21T07:00:00Z, the intents' clock in these tests. */
#define T0 INT64_C(1795244400)

/* The drain shorthand: a drain intent made, or every active one of the member removed. */
static void test_drains(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    struct cm_conf *conf2 = conf_load(conf2_text);
    struct cm_conf *conf3 = conf_load(conf3_text);
    const struct cm_intent *in;
    json_t *doc;

    assert_int_equal(dns_state_set_drain(f->st, "nope", true, "bob", T0, err, sizeof(err)),
                     CM_ENOENT);
    assert_int_equal(dns_state_set_drain(f->st, "eur", true, "bob", T0, err, sizeof(err)), CM_OK);
    assert_int_equal(f->applies, 1);
    assert_true(dns_state_is_drained(f->st, 1));
    assert_false(dns_state_is_drained(f->st, 0));
    assert_int_equal(cm_intents_count(dns_state_intents(f->st)), 1);
    in = cm_intents_get(dns_state_intents(f->st), 0);
    assert_int_equal(in->kind, CM_INTENT_DRAIN);
    assert_string_equal(in->member, "eur");
    assert_string_equal(in->author, "bob");
    assert_true(in->created_at == T0);
    assert_int_equal(strncmp(in->id, "drain-eur-1795244400-", 21), 0);
    /* Setting it again changes nothing: a drain of eur is active already. */
    assert_int_equal(dns_state_set_drain(f->st, "eur", true, "bob", T0, err, sizeof(err)), CM_OK);
    assert_int_equal(f->applies, 1);
    doc = dns_state_to_json(f->st, 9, T0);
    assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "drained"), 0)),
                        "eur");
    assert_int_equal(json_integer_value(json_object_get(doc, "view_serial")), 9);
    assert_int_equal(json_array_size(json_object_get(doc, "intents")), 1);
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(json_object_get(doc, "digest"), "active_intents"), 0)),
                        in->id);
    json_decref(doc);

    /* A rejected apply leaves the drain as it was. */
    f->fail_next = true;
    assert_int_equal(dns_state_set_drain(f->st, "eur", false, "bob", T0, err, sizeof(err)),
                     CM_ECONFIG);
    assert_true(dns_state_is_drained(f->st, 1));

    /* Reload: the intent names the member, so it follows it to its new index. */
    assert_int_equal(put(f, "us-east-1", 1, true, true, 1, err, sizeof(err)), CM_OK);
    assert_int_equal(dns_state_set_conf(f->st, conf2, err, sizeof(err)), CM_OK);
    assert_ptr_equal(dns_state_conf(f->st), conf2);
    assert_true(dns_state_is_drained(f->st, (size_t)cm_conf_member_index(conf2, "eur")));
    assert_false(dns_state_is_drained(f->st, (size_t)cm_conf_member_index(conf2, "usa")));
    assert_int_equal(dns_state_vantage_count(f->st), 1);

    /* A configuration without the us-east-1 region drops that vantage's document. */
    assert_int_equal(dns_state_set_conf(f->st, conf3, err, sizeof(err)), CM_OK);
    assert_int_equal(dns_state_vantage_count(f->st), 0);
    assert_true(dns_state_is_drained(f->st, 0));

    /* Undrain: the intent becomes a tombstone. */
    assert_int_equal(dns_state_set_drain(f->st, "eur", false, "carol", T0 + 5, err, sizeof(err)),
                     CM_OK);
    assert_false(dns_state_is_drained(f->st, 0));
    in = cm_intents_get(dns_state_intents(f->st), 0);
    assert_true(in->removed_at == T0 + 5);
    assert_string_equal(in->removed_by, "carol");
    cm_conf_unref(conf2);
    cm_conf_unref(conf3);
}

static const char force_down_usa[] =
    "{\"id\": \"fd\", \"kind\": \"force-down\", \"member\": \"usa\", \"author\": \"a\","
    " \"reason\": \"r\", \"created_at\": \"2026-11-21T06:00:00Z\","
    " \"expires_at\": \"2026-11-21T07:00:10Z\"}";

/* Intents pushed as the control API does: rules, applies, expiry on the tick. */
static void test_intents(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    bool changed = true;
    const char bad[] = "{\"id\": \"x\", \"kind\": \"drain\", \"member\": \"nobody\","
                       " \"author\": \"a\", \"reason\": \"r\","
                       " \"created_at\": \"2026-11-21T06:00:00Z\"}";

    assert_int_equal(dns_state_intent_put(f->st, bad, strlen(bad), T0, &changed, err, sizeof(err)),
                     CM_EINVAL);
    assert_false(changed);
    assert_non_null(strstr(err, "unknown member"));
    assert_int_equal(dns_state_intent_put(f->st, force_down_usa, strlen(force_down_usa), T0,
                                          &changed, err, sizeof(err)),
                     CM_OK);
    assert_true(changed);
    assert_int_equal(f->applies, 1);
    assert_int_equal(cm_intent_view_admin(dns_state_intent_view(f->st), 0, NULL),
                     CM_ADMIN_FORCE_DOWN);
    /* Delivered again (fedgslbctl re-delivers): nothing changes, nothing is rebuilt. */
    assert_int_equal(dns_state_intent_put(f->st, force_down_usa, strlen(force_down_usa), T0 + 1,
                                          &changed, err, sizeof(err)),
                     CM_OK);
    assert_false(changed);
    assert_int_equal(f->applies, 1);
    /* A failed build refuses the intent and keeps the set. */
    f->fail_next = true;
    assert_int_equal(dns_state_intent_remove(f->st, "fd", "bob", T0 + 1, err, sizeof(err)),
                     CM_ECONFIG);
    assert_true(cm_intent_is_active(cm_intents_find(dns_state_intents(f->st), "fd"), T0 + 1));
    assert_int_equal(dns_state_intent_remove(f->st, "nope", "bob", T0 + 1, err, sizeof(err)),
                     CM_ENOENT);
    /* The tick rebuilds when an intent expires, once. */
    assert_int_equal(dns_state_intents_tick(f->st, T0 + 9), CM_OK);
    assert_int_equal(f->applies, 1);
    assert_int_equal(dns_state_intents_tick(f->st, T0 + 10), CM_OK);
    assert_int_equal(f->applies, 2);
    assert_int_equal(cm_intent_view_admin(dns_state_intent_view(f->st), 0, NULL), CM_ADMIN_NONE);
    assert_int_equal(dns_state_intents_tick(f->st, T0 + 11), CM_OK);
    assert_int_equal(f->applies, 2);
    /* ... and prunes it a day later. */
    assert_int_equal(dns_state_intents_tick(f->st, T0 + 11 + CM_INTENT_EXPIRED_KEEP_S), CM_OK);
    assert_int_equal(cm_intents_count(dns_state_intents(f->st)), 0);
}

/* Intents and tombstones survive a restart; an older file's drains become intents. */
static void test_intents_state_file(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    bool changed;
    struct dns_state *st2;
    FILE *fp;

    assert_int_equal(dns_state_intent_put(f->st, force_down_usa, strlen(force_down_usa), T0,
                                          &changed, err, sizeof(err)),
                     CM_OK);
    assert_int_equal(dns_state_set_drain(f->st, "eur", true, "bob", T0, err, sizeof(err)), CM_OK);
    assert_int_equal(dns_state_set_drain(f->st, "eur", false, "bob", T0 + 1, err, sizeof(err)),
                     CM_OK);
    dns_state_flush(f->st, 0, true);
    st2 = dns_state_new(f->conf, f->path, apply_cb, f);
    assert_non_null(st2);
    assert_int_equal(dns_state_load(st2, 1, T0 + 2, false, NULL, 0), CM_OK);
    assert_int_equal(cm_intents_count(dns_state_intents(st2)), 2);
    assert_int_equal(cm_intent_view_admin(dns_state_intent_view(st2), 0, NULL),
                     CM_ADMIN_FORCE_DOWN);
    assert_false(dns_state_is_drained(st2, 1));
    /* The removed drain stays removed: delivering it again is refused. */
    {
        json_t *j = cm_intent_json(cm_intents_get(dns_state_intents(st2), 0));
        const struct cm_intent *t = cm_intents_get(dns_state_intents(st2), 0);

        assert_true(t->removed_at != 0);
        json_object_del(j, "removed_at");
        json_object_del(j, "removed_by");
        char *text = json_dumps(j, 0);
        assert_int_equal(
            dns_state_intent_put(st2, text, strlen(text), T0 + 3, &changed, err, sizeof(err)),
            CM_EEXIST);
        free(text);
        json_decref(j);
    }
    dns_state_free(st2);

    /* A state file of an earlier version: "drained" names become drain intents. */
    fp = fopen(f->path, "w");
    assert_non_null(fp);
    fputs("{\"version\": 1, \"documents\": [], \"drained\": [\"usa\", \"ghost\"]}", fp);
    fclose(fp);
    dns_state_flush(f->st, 0, true);
    st2 = dns_state_new(f->conf, f->path, NULL, NULL);
    assert_non_null(st2);
    assert_int_equal(dns_state_load(st2, 1, T0, false, NULL, 0), CM_OK);
    assert_true(dns_state_is_drained(st2, 0));
    assert_non_null(cm_intents_find(dns_state_intents(st2), "drain-usa-migrated"));
    assert_int_equal(cm_intents_count(dns_state_intents(st2)), 1);
    dns_state_free(st2);
}

/* The state file and its previous version, no leftover temporary. */
static bool dir_has_only_state_files(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int files = 0;
    bool ok = true;

    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        files++;
        ok = ok && (strcmp(e->d_name, "dnsd-state.json") == 0 ||
                    strcmp(e->d_name, "dnsd-state.json.prev") == 0);
    }
    if (d != NULL)
        closedir(d);
    return d != NULL && ok && files == 2;
}

static void test_state_file_round_trip(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    struct dns_state *st2;
    json_t *file;
    json_error_t jerr;

    assert_int_equal(put(f, "us-east-1", 11, true, false, 1, err, sizeof(err)), CM_OK);
    assert_int_equal(put(f, "eu-west-1", 12, true, true, 2, err, sizeof(err)), CM_OK);
    assert_int_equal(dns_state_set_drain(f->st, "usa", true, "bob", T0, err, sizeof(err)), CM_OK);
    /* Written atomically: the file, its .prev and no leftover temporary. */
    assert_true(dir_has_only_state_files(f->dir));
    file = json_load_file(f->path, 0, &jerr);
    assert_non_null(file);
    assert_int_equal(json_integer_value(json_object_get(file, "version")), 1);
    assert_int_equal(json_array_size(json_object_get(file, "documents")), 2);
    assert_int_equal(json_array_size(json_object_get(file, "intents")), 1);
    assert_null(json_object_get(file, "drained"));
    json_decref(file);

    /* A new store (restart) serves the same state at once, aged from load time. */
    dns_state_flush(f->st, 0, true);
    st2 = dns_state_new(f->conf, f->path, apply_cb, f);
    assert_non_null(st2);
    assert_int_equal(dns_state_load(st2, 50000, T0, false, NULL, 0), CM_OK);
    assert_int_equal(f->applies, 3); /* loading does not apply */
    assert_int_equal(dns_state_vantage_count(st2), 2);
    assert_true(dns_state_is_drained(st2, 0));
    assert_true(merged_ep(st2, "eur")->healthy); /* tie keeps eur up */
    assert_int_equal(dns_state_expire(st2, 50000 + 6000), 0);
    /* The generations survive: an old push is still stale after the restart. */
    assert_int_equal(
        put(&(struct fixture){.st = st2}, "us-east-1", 10, true, true, 50001, err, sizeof(err)),
        CM_EEXIST);
    dns_state_free(st2);
}

static void test_state_file_corrupt(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    FILE *fp;
    struct cm_conf *conf3 = conf_load(conf3_text);
    struct dns_state *st3;

    /* Not JSON at all: a warning, an empty store. */
    fp = fopen(f->path, "w");
    assert_non_null(fp);
    fputs("{\"version\": 1, \"documents\": [tru", fp);
    fclose(fp);
    assert_int_equal(dns_state_load(f->st, 1, T0, false, NULL, 0), CM_OK);
    assert_int_equal(dns_state_vantage_count(f->st), 0);
    /* Wrong shape: same. */
    fp = fopen(f->path, "w");
    assert_non_null(fp);
    fputs("{\"version\": 2, \"documents\": {}}", fp);
    fclose(fp);
    assert_int_equal(dns_state_load(f->st, 1, T0, false, NULL, 0), CM_OK);
    assert_int_equal(dns_state_vantage_count(f->st), 0);
    /* No file: fine. */
    unlink(f->path);
    assert_int_equal(dns_state_load(f->st, 1, T0, false, NULL, 0), CM_OK);

    /* Documents that no longer fit the configuration are skipped; the rest loads. */
    assert_int_equal(put(f, "us-east-1", 1, true, true, 1, err, sizeof(err)), CM_OK);
    assert_int_equal(put(f, "eu-west-1", 1, true, true, 1, err, sizeof(err)), CM_OK);
    dns_state_flush(f->st, 0, true);
    st3 = dns_state_new(conf3, f->path, NULL, NULL);
    assert_non_null(st3);
    assert_int_equal(dns_state_load(st3, 1, T0, false, NULL, 0), CM_OK);
    assert_int_equal(dns_state_vantage_count(st3), 0); /* both mention usa, not in conf3 */
    dns_state_free(st3);
    cm_conf_unref(conf3);
}

/* bug: a truncated state file served nothing until the first push; now .prev is loaded. */
static uint64_t file_generation(const char *path)
{
    json_error_t jerr;
    json_t *file = json_load_file(path, 0, &jerr);
    json_t *doc = json_array_get(json_object_get(file, "documents"), 0);
    uint64_t gen;

    assert_non_null(doc);
    gen = (uint64_t)json_integer_value(json_object_get(doc, "generation"));
    json_decref(file);
    return gen;
}

/* The state file is written at most once a second; the latest state at the latest on free. */
static void test_state_file_coalesced(void **state)
{
    struct fixture *f = *state;
    char buf[DOC_MAX], err[256] = "";
    const char *text;

    text = doc_text(buf, sizeof(buf), "us-east-1", 1, true, true);
    assert_int_equal(dns_state_put(f->st, text, strlen(text), NULL, 10000, err, sizeof(err)),
                     CM_OK);
    assert_int_equal(file_generation(f->path), 1); /* the first write is at once */
    text = doc_text(buf, sizeof(buf), "us-east-1", 2, false, true);
    assert_int_equal(dns_state_put(f->st, text, strlen(text), NULL, 10500, err, sizeof(err)),
                     CM_OK);
    assert_int_equal(file_generation(f->path), 1); /* due, not written */
    dns_state_flush(f->st, 10999, false);
    assert_int_equal(file_generation(f->path), 1);
    dns_state_flush(f->st, 11000, false);
    assert_int_equal(file_generation(f->path), 2);
    dns_state_flush(f->st, 13000, false); /* nothing due: no write */
    assert_int_equal(file_generation(f->path), 2);
    text = doc_text(buf, sizeof(buf), "us-east-1", 3, true, true);
    assert_int_equal(dns_state_put(f->st, text, strlen(text), NULL, 11500, err, sizeof(err)),
                     CM_OK);
    assert_int_equal(file_generation(f->path), 2);
    dns_state_free(f->st); /* shutdown writes what is due */
    f->st = NULL;
    assert_int_equal(file_generation(f->path), 3);
}

static void test_state_file_truncated_falls_back_to_prev(void **state)
{
    struct fixture *f = *state;
    char err[512] = "", corrupt[600];
    struct dns_state *st2;

    assert_int_equal(put(f, "us-east-1", 1, true, true, 1, err, sizeof(err)), CM_OK);
    assert_int_equal(put(f, "eu-west-1", 2, true, true, 1, err, sizeof(err)), CM_OK);
    /* The last write left .prev = { us-east-1 }; truncate the current file. */
    assert_int_equal(truncate(f->path, 20), 0);

    dns_state_flush(f->st, 0, true);
    st2 = dns_state_new(f->conf, f->path, NULL, NULL);
    assert_non_null(st2);
    /* --check-config: refused, named, nothing moved. */
    assert_int_not_equal(dns_state_load(st2, 1, T0, true, err, sizeof(err)), CM_OK);
    assert_non_null(strstr(err, f->path));
    assert_non_null(strstr(err, "invalid JSON"));
    assert_int_equal(access(f->path, F_OK), 0);
    /* Start: the previous file serves at once; the damaged one is moved aside. */
    assert_int_equal(dns_state_load(st2, 1, T0, false, NULL, 0), CM_OK);
    assert_int_equal(dns_state_vantage_count(st2), 1);
    snprintf(corrupt, sizeof(corrupt), "%s.corrupt", f->path);
    assert_int_equal(access(corrupt, F_OK), 0);
    dns_state_free(st2);
    /* ... and the state file holds the previous state again: a second restart agrees */
    dns_state_flush(f->st, 0, true);
    st2 = dns_state_new(f->conf, f->path, NULL, NULL);
    assert_non_null(st2);
    assert_int_equal(dns_state_load(st2, 1, T0, true, err, sizeof(err)), CM_OK);
    assert_int_equal(dns_state_vantage_count(st2), 1);
    dns_state_free(st2);
}

/* usa configured; k1 a registry member (members_from) placed by the documents. */
static const char reg_conf_text[] =
    CONF_HEAD " \"members\": {\"usa\": {\"region\": \"us-east-1\"}},"
              " \"members_from\": {\"source\": \"kubefed\"}," SERVICES "}";

static int put_reg(struct dns_state *st, unsigned gen, bool with_k1, uint64_t now)
{
    char buf[DOC_MAX], err[256] = "";
    int n = snprintf(buf, sizeof(buf),
                     "{\"version\": 1, \"vantage\": \"us-east-1\", \"generation\": %u,"
                     " \"generated_at\": \"2026-11-21T07:00:00Z\", \"members\": {%s},"
                     " \"services\": {\"default/web\": {\"port\": 80, \"members\": {"
                     "  \"usa\": {\"addresses\": [\"192.0.2.10\"], \"ready_endpoints\": 1,"
                     "           \"healthy\": true}%s}}}}",
                     gen,
                     with_k1 ? "\"k1\": {\"region\": \"eu-west-1\", \"zone\": \"eu-west-1a\"}" : "",
                     with_k1 ? ", \"k1\": {\"addresses\": [\"192.0.2.30\"], \"ready_endpoints\": 1,"
                               " \"healthy\": true}"
                             : "");
    int rc;

    assert_true(n > 0 && (size_t)n < sizeof(buf));
    rc = dns_state_put(st, buf, strlen(buf), NULL, now, err, sizeof(err));
    if (rc != CM_OK)
        fail_msg("put: %s", err);
    dns_state_flush(st, 0, true);
    return rc;
}

/* Registry members join with the documents that place them and leave with them. */
static void test_registry_members(void **state)
{
    struct fixture *f = *state;
    struct cm_conf *reg = conf_load(reg_conf_text);
    struct dns_state *st = dns_state_new(reg, f->path, apply_cb, f), *st2;
    const struct cm_conf *c;
    char err[256] = "";
    int k1;

    assert_non_null(st);
    assert_int_equal(dns_state_conf(st)->member_count, 1);
    put_reg(st, 1, true, 1);
    c = dns_state_conf(st);
    assert_int_equal(c->member_count, 2);
    k1 = cm_conf_member_index(c, "k1");
    assert_int_equal(k1, 1);
    assert_int_equal(c->members[k1].region, 1);
    assert_int_equal(c->members[k1].zone, 0);
    assert_true(merged_ep(st, "k1")->present && merged_ep(st, "k1")->healthy);
    /* A registry member can be drained, and the drain is kept while it stays. */
    assert_int_equal(dns_state_set_drain(st, "k1", true, "op", T0, err, sizeof(err)), CM_OK);
    assert_true(dns_state_is_drained(st, (size_t)k1));
    put_reg(st, 2, true, 2);
    assert_ptr_equal(dns_state_conf(st), c); /* the same members: the same configuration */
    assert_true(dns_state_is_drained(st, (size_t)k1));

    /* A restart loads it back from the state file, k1 and its drain included. */
    dns_state_flush(st, 0, true);
    st2 = dns_state_new(reg, f->path, NULL, NULL);
    assert_int_equal(dns_state_load(st2, 5, T0, false, NULL, 0), CM_OK);
    assert_int_equal(cm_conf_member_index(dns_state_conf(st2), "k1"), 1);
    assert_true(dns_state_is_drained(st2, 1));
    assert_true(merged_ep(st2, "k1")->present);
    dns_state_free(st2);

    /* Unjoined: the next document does not place it; it leaves the merge. */
    put_reg(st, 3, false, 3);
    assert_int_equal(dns_state_conf(st)->member_count, 1);
    assert_int_equal(cm_conf_member_index(dns_state_conf(st), "k1"), -1);
    assert_int_equal(dns_state_set_drain(st, "k1", true, "op", T0, err, sizeof(err)), CM_ENOENT);
    /* Joined again: the drain intent names it, so it is drained again ... */
    put_reg(st, 4, true, 4);
    assert_true(dns_state_is_drained(st, (size_t)cm_conf_member_index(dns_state_conf(st), "k1")));
    /* ... until undrained; an undrain also reaches it while no document places it. */
    put_reg(st, 5, false, 5);
    assert_int_equal(dns_state_set_drain(st, "k1", false, "op", T0, err, sizeof(err)), CM_OK);
    assert_int_equal(dns_state_set_drain(st, "k1", false, "op", T0, err, sizeof(err)), CM_ENOENT);
    put_reg(st, 6, true, 6);
    assert_false(dns_state_is_drained(st, (size_t)cm_conf_member_index(dns_state_conf(st), "k1")));
    dns_state_free(st);
    cm_conf_unref(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_accept_and_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_intents_state_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_file_coalesced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_file_truncated_falls_back_to_prev, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_put_stale_generation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_drains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_file_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_state_file_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_registry_members, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
