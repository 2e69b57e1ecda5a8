/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cm_store.c -- the per-vantage document store shared by dnsd and the
 * proxy: push rules, forget, expiry, candidates, the state file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_state.h"
#include "common/cm_store.h"

#define US "us-east-1"
#define EU "eu-west-1"

/* usa, eur; publish every 2 s: vantages expire after 6 s. */
static const char conf_text[] =
    "{\"federation\": \"myfed\", \"zone\": \"fed.example.test\","
    " \"regions\": {\"us-east-1\": {\"zones\": [\"us-east-1a\"]},"
    "              \"eu-west-1\": {\"zones\": [\"eu-west-1a\"]}},"
    " \"members\": {\"usa\": {\"region\": \"us-east-1\"},"
    "             \"eur\": {\"region\": \"eu-west-1\"}},"
    " \"services\": {\"default/web\": {\"port\": 80}},"
    " \"health\": {\"vantage\": \"us-east-1\", \"publish_interval_ms\": 2000}}";
/* Only eur: documents of vantage us-east-1 no longer pass. */
static const char conf_eu_text[] = "{\"federation\": \"myfed\", \"zone\": \"fed.example.test\","
                                   " \"regions\": {\"eu-west-1\": {\"zones\": [\"eu-west-1a\"]}},"
                                   " \"members\": {\"eur\": {\"region\": \"eu-west-1\"}},"
                                   " \"services\": {\"default/web\": {\"port\": 80}}}";

#define LIMIT_MS 6000u

struct fixture {
    struct cm_conf *conf;
    struct cm_store *s;
    char dir[64];
    char path[128];
};

static struct cm_conf *conf_load(const char *text)
{
    char err[CM_CONF_ERR_MAX];
    struct cm_conf *conf = NULL;

    if (cm_conf_load_string("test.json", text, &conf, err, sizeof(err)) != CM_OK)
        fail_msg("config: %s", err);
    return conf;
}

/*
 * A document of @vantage: usa healthy or not (@usa_up), generated at
 * 07:00:@sec. Only generation and generated_at differ between "quiet" ones.
 */
static const char *doc_text(char *buf, size_t cap, const char *vantage, unsigned gen, bool usa_up,
                            unsigned sec)
{
    int n = snprintf(buf, cap,
                     "{\"version\": 1, \"vantage\": \"%s\", \"generation\": %u,"
                     " \"generated_at\": \"2026-11-21T07:00:%02uZ\","
                     " \"services\": {\"default/web\": {\"port\": 80, \"members\": {"
                     "  \"usa\": {\"addresses\": [\"192.0.2.10\"], \"healthy\": %s}}}}}",
                     vantage, gen, sec, usa_up ? "true" : "false");

    assert_true(n > 0 && (size_t)n < cap);
    return buf;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_cm_store.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/state.json", f->dir);
    f->conf = conf_load(conf_text);
    f->s = cm_store_new();
    assert_non_null(f->s);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    static const char *const suffixes[] = {"", ".prev", ".corrupt"};
    char p[256];

    for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
        snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
        unlink(p);
    }
    rmdir(f->dir);
    cm_store_free(f->s);
    cm_conf_unref(f->conf);
    free(f);
    return 0;
}

/* "us-east-1:5@100 eu-west-1:2@0": held documents, vantage:generation@accepted_ms. */
static void held_text(const struct cm_store *s, char *out, size_t cap)
{
    size_t o = 0;

    out[0] = '\0';
    for (size_t i = 0; i < cm_store_count(s); i++) {
        uint64_t at;
        const struct cm_state *d = cm_store_get(s, i, &at);

        o += (size_t)snprintf(out + o, cap - o, "%s%s:%llu@%llu", i > 0 ? " " : "", d->vantage,
                              (unsigned long long)d->generation, (unsigned long long)at);
    }
}

enum op {
    OP_PUT = 0,    /* push a document */
    OP_FORGET = 1, /* forget a vantage */
    OP_EXPIRE = 2, /* expire at now_ms */
};

/* What happens to a candidate. */
enum fate {
    NO_CAND = 0, /* the operation must not produce one (refused, re-push, nothing to do) */
    COMMIT = 1,  /* the caller's apply succeeded */
    DISCARD = 2, /* the caller's apply failed: the store must be unchanged */
};

struct step {
    enum op op;
    const char *vantage;
    unsigned generation;
    bool usa_up;
    unsigned sec;       /* generated_at seconds */
    const char *writer; /* NULL: the operator */
    uint64_t now_ms;
    int rc;
    enum fate fate;
    bool quiet;       /* for a put candidate: cm_store_cand_is_quiet */
    size_t dropped;   /* for expire */
    const char *held; /* held_text() after the step */
    const char *err;  /* a substring of the reason, or NULL */
};

static void run_steps(struct fixture *f, const struct step *steps, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        const struct step *s = &steps[i];
        struct cm_store_cand *c = (struct cm_store_cand *)&c; /* must be overwritten */
        char doc[1024], err[512] = "", held[512];
        size_t dropped = 0;
        int rc;

        switch (s->op) {
        case OP_PUT:
            doc_text(doc, sizeof(doc), s->vantage, s->generation, s->usa_up, s->sec);
            rc = cm_store_put(f->s, doc, strlen(doc), s->writer, f->conf, s->now_ms, &c, err,
                              sizeof(err));
            break;
        case OP_FORGET:
            rc = cm_store_forget(f->s, s->vantage, &c, err, sizeof(err));
            break;
        default:
            rc = cm_store_expire(f->s, s->now_ms, LIMIT_MS, &c, &dropped);
            break;
        }
        if (rc != s->rc)
            fail_msg("step %zu: rc %d (%s), want %d", i, rc, err, s->rc);
        if ((c != NULL) != (s->fate != NO_CAND))
            fail_msg("step %zu: candidate %s, want %s", i, c != NULL ? "made" : "none",
                     s->fate != NO_CAND ? "one" : "none");
        if (s->err != NULL && strstr(err, s->err) == NULL)
            fail_msg("step %zu: reason '%s' lacks '%s'", i, err, s->err);
        if (s->op == OP_PUT && c != NULL && cm_store_cand_is_quiet(c) != s->quiet)
            fail_msg("step %zu: quiet %d, want %d", i, cm_store_cand_is_quiet(c), s->quiet);
        if (s->op == OP_EXPIRE && dropped != s->dropped)
            fail_msg("step %zu: dropped %zu, want %zu", i, dropped, s->dropped);
        if (s->fate == COMMIT)
            cm_store_commit(f->s, c);
        else if (s->fate == DISCARD)
            cm_store_cand_free(c);
        held_text(f->s, held, sizeof(held));
        if (strcmp(held, s->held) != 0)
            fail_msg("step %zu: held '%s', want '%s'", i, held, s->held);
    }
}

#define PUT(v, g, up, sec, w, now) OP_PUT, v, g, up, sec, w, now

/* Newer, older, same generation with the same or other content. */
static void test_generations(void **state)
{
    static const struct step steps[] = {
        {PUT(US, 5, true, 0, NULL, 100), CM_OK, COMMIT, false, 0, "us-east-1:5@100", NULL},
        /* An identical re-push: 200, no candidate, liveness refreshed. */
        {PUT(US, 5, true, 0, NULL, 900), CM_OK, NO_CAND, false, 0, "us-east-1:5@900", NULL},
        /* The same generation saying something else: 409 with the reason. */
        {PUT(US, 5, false, 0, NULL, 1000), CM_EEXIST, NO_CAND, false, 0, "us-east-1:5@900",
         "stale generation 5 <= 5 from vantage us-east-1 (same generation, different content)"},
        /* Same generation, only generated_at differs: still different content. */
        {PUT(US, 5, true, 1, NULL, 1000), CM_EEXIST, NO_CAND, false, 0, "us-east-1:5@900",
         "same generation"},
        /* Older: 409, the held one stays and is not refreshed. */
        {PUT(US, 4, true, 9, NULL, 1100), CM_EEXIST, NO_CAND, false, 0, "us-east-1:5@900",
         "stale generation 4 <= 5 from vantage us-east-1"},
        /* Newer by generation, whatever generated_at says; quiet when only
         * generation and generated_at differ. */
        {PUT(US, 6, true, 0, NULL, 1200), CM_OK, COMMIT, true, 0, "us-east-1:6@1200", NULL},
        {PUT(US, 7, false, 0, NULL, 1300), CM_OK, COMMIT, false, 0, "us-east-1:7@1300", NULL},
        /* A candidate the caller could not apply changes nothing. */
        {PUT(US, 8, true, 0, NULL, 1400), CM_OK, DISCARD, false, 0, "us-east-1:7@1300", NULL},
        /* ... and its generation was not remembered. */
        {PUT(US, 8, true, 0, NULL, 1500), CM_OK, COMMIT, false, 0, "us-east-1:8@1500", NULL},
        /* Another vantage is independent. */
        {PUT(EU, 1, true, 0, NULL, 1600), CM_OK, COMMIT, false, 0,
         "us-east-1:8@1500 eu-west-1:1@1600", NULL},
    };
    run_steps(*state, steps, sizeof(steps) / sizeof(steps[0]));
}

/* Writers, the configuration, forget. */
static void test_writers_and_forget(void **state)
{
    static const struct step steps[] = {
        {PUT(US, 3, true, 0, US, 10), CM_OK, COMMIT, false, 0, "us-east-1:3@10", NULL},
        /* A vantage's credential speaks for its own vantage only. */
        {PUT(US, 4, true, 0, EU, 20), CM_EACCES, NO_CAND, false, 0, "us-east-1:3@10", "eu-west-1"},
        /* Not a configured region. */
        {PUT("sa-east-1", 1, true, 0, NULL, 20), CM_ESTATE, NO_CAND, false, 0, "us-east-1:3@10",
         "sa-east-1"},
        {OP_FORGET, "eu-west-1", 0, false, 0, NULL, 0, CM_ENOENT, NO_CAND, false, 0,
         "us-east-1:3@10", "eu-west-1"},
        /* A forget the caller could not apply changes nothing. */
        {OP_FORGET, US, 0, false, 0, NULL, 0, CM_OK, DISCARD, false, 0, "us-east-1:3@10", NULL},
        {OP_FORGET, US, 0, false, 0, NULL, 0, CM_OK, COMMIT, false, 0, "", NULL},
        /* After a forget any generation is accepted again. */
        {PUT(US, 1, true, 0, US, 30), CM_OK, COMMIT, false, 0, "us-east-1:1@30", NULL},
    };
    run_steps(*state, steps, sizeof(steps) / sizeof(steps[0]));
}

/* Expiry: silent vantages go, unless every one is silent. */
static void test_expiry(void **state)
{
    static const struct step steps[] = {
        {PUT(US, 1, true, 0, NULL, 1000), CM_OK, COMMIT, false, 0, "us-east-1:1@1000", NULL},
        {PUT(EU, 1, true, 0, NULL, 5000), CM_OK, COMMIT, false, 0,
         "us-east-1:1@1000 eu-west-1:1@5000", NULL},
        /* Exactly the limit is not past it. */
        {OP_EXPIRE, NULL, 0, false, 0, NULL, 7000, CM_OK, NO_CAND, false, 0,
         "us-east-1:1@1000 eu-west-1:1@5000", NULL},
        /* us-east-1 is past it; the caller fails to apply: nothing changes. */
        {OP_EXPIRE, NULL, 0, false, 0, NULL, 7001, CM_OK, DISCARD, false, 1,
         "us-east-1:1@1000 eu-west-1:1@5000", NULL},
        {OP_EXPIRE, NULL, 0, false, 0, NULL, 7001, CM_OK, COMMIT, false, 1, "eu-west-1:1@5000",
         NULL},
        /* The last vantage falls silent too: every one is, the last state stays. */
        {OP_EXPIRE, NULL, 0, false, 0, NULL, 60000, CM_OK, NO_CAND, false, 0, "eu-west-1:1@5000",
         NULL},
        /* An identical re-push revives it ... */
        {PUT(EU, 1, true, 0, NULL, 61000), CM_OK, NO_CAND, false, 0, "eu-west-1:1@61000", NULL},
        {PUT(US, 2, true, 0, NULL, 62000), CM_OK, COMMIT, false, 0,
         "eu-west-1:1@61000 us-east-1:2@62000", NULL},
        /* ... and from then on a silent vantage expires again. */
        {OP_EXPIRE, NULL, 0, false, 0, NULL, 67500, CM_OK, COMMIT, false, 1, "us-east-1:2@62000",
         NULL},
    };
    assert_int_equal(cm_store_expiry_ms(((struct fixture *)*state)->conf), LIMIT_MS);
    run_steps(*state, steps, sizeof(steps) / sizeof(steps[0]));
}

/* A new configuration drops the documents it refuses. */
static void test_recheck(void **state)
{
    struct fixture *f = *state;
    static const struct step steps[] = {
        {PUT(US, 1, true, 0, NULL, 1), CM_OK, COMMIT, false, 0, "us-east-1:1@1", NULL},
        {PUT(EU, 2, true, 0, NULL, 2), CM_OK, COMMIT, false, 0, "us-east-1:1@1 eu-west-1:2@2",
         NULL},
    };
    struct cm_conf *eu = conf_load(conf_eu_text);
    struct cm_store_cand *c = NULL;
    const struct cm_state *const *docs;
    char held[256];
    size_t n;

    run_steps(f, steps, sizeof(steps) / sizeof(steps[0]));
    /* eu-west-1's document lists usa, which conf_eu lacks: both go. */
    assert_int_equal(cm_store_recheck(f->s, eu, "new configuration", &c), CM_OK);
    docs = cm_store_cand_docs(c, &n);
    assert_int_equal(n, 0);
    (void)docs;
    cm_store_cand_free(c);
    held_text(f->s, held, sizeof(held));
    assert_string_equal(held, "us-east-1:1@1 eu-west-1:2@2");
    assert_int_equal(cm_store_recheck(f->s, f->conf, "new configuration", &c), CM_OK);
    cm_store_cand_docs(c, &n);
    assert_int_equal(n, 2);
    cm_store_commit(f->s, c);
    cm_conf_unref(eu);
}

static void write_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, true);
    assert_int_equal(fclose(fp), 0);
}

/* Saved, loaded back the same, with the caller's members. */
static void test_file_round_trip(void **state)
{
    struct fixture *f = *state;
    struct cm_store_loaded l;
    struct cm_store *back = cm_store_new();
    char doc[1024], err[512] = "", a[256], b[256];
    struct cm_store_cand *c = NULL;
    json_t *extra = json_pack("{s:[s]}", "drained", "usa");

    doc_text(doc, sizeof(doc), US, 7, true, 3);
    assert_int_equal(cm_store_put(f->s, doc, strlen(doc), NULL, f->conf, 1, &c, err, sizeof(err)),
                     CM_OK);
    cm_store_commit(f->s, c);
    doc_text(doc, sizeof(doc), EU, 9, false, 4);
    assert_int_equal(cm_store_put(f->s, doc, strlen(doc), NULL, f->conf, 2, &c, err, sizeof(err)),
                     CM_OK);
    cm_store_commit(f->s, c);
    assert_int_equal(cm_store_save(f->s, f->path, extra, err, sizeof(err)), CM_OK);

    assert_int_equal(cm_store_load(f->path, f->conf, 50, false, &l, err, sizeof(err)), CM_OK);
    assert_false(l.fell_back);
    assert_string_equal(json_string_value(json_array_get(json_object_get(l.root, "drained"), 0)),
                        "usa");
    assert_int_equal(json_integer_value(json_object_get(l.root, "version")), CM_STORE_FILE_VERSION);
    cm_store_commit(back, l.cand);
    l.cand = NULL;
    cm_store_loaded_fini(&l);
    /* Every loaded vantage counts as accepted at load time. */
    held_text(back, a, sizeof(a));
    assert_string_equal(a, "us-east-1:7@50 eu-west-1:9@50");
    for (size_t i = 0; i < cm_store_count(back); i++)
        assert_true(
            cm_state_equal(cm_store_get(back, i, NULL), cm_store_get(f->s, i, NULL), false));
    /* Saving what was loaded gives the same bytes. */
    {
        char *t1 = cm_store_file_text(f->s, extra);
        char *t2 = cm_store_file_text(back, extra);

        assert_string_equal(t1, t2);
        free(t1);
        free(t2);
    }
    held_text(f->s, b, sizeof(b));
    assert_string_equal(b, "us-east-1:7@1 eu-west-1:9@2");
    json_decref(extra);
    cm_store_free(back);
}

/* State file texts and what cm_store_file_parse makes of them. */
static void test_file_parse(void **state)
{
    struct fixture *f = *state;
    char us5[1024], us6[1024], eu1[1024], bad[1024], text[4096];
    static const char sa[] = "{\"version\": 1, \"vantage\": \"sa-east-1\", \"generation\": 1,"
                             " \"generated_at\": \"2026-11-21T07:00:00Z\"}";
    struct {
        const char *text;
        int rc;
        const char *held; /* on success */
        const char *err;  /* on failure */
    } cases[] = {
        {"{\"version\": 1, \"documents\": []}", CM_OK, "", NULL},
        /* Two documents of one vantage: the higher generation, in either order. */
        {NULL, CM_OK, "us-east-1:6@5 eu-west-1:1@5", NULL},
        {NULL, CM_OK, "us-east-1:6@5", NULL},
        /* A document the configuration refuses is skipped, the rest loads. */
        {NULL, CM_OK, "eu-west-1:1@5", NULL},
        {"{\"version\": 1, \"documents\": [], \"documents\": []}", CM_EPARSE, NULL,
         "duplicate object key"},
        {"{\"version\": 1, \"documents\": [", CM_EPARSE, NULL, "invalid JSON"},
        /* A bare state document is refused as one, not loaded as zero documents. */
        {NULL, CM_ESTATE, NULL, "a bare state document (vantage us-east-1), not a state file"},
        {"{\"version\": 2, \"documents\": []}", CM_ESTATE, NULL, "not a version 1 state file"},
        {"{\"documents\": []}", CM_ESTATE, NULL, "not a version 1 state file"},
        {"{\"version\": 1}", CM_ESTATE, NULL, "\"documents\" is missing or not an array"},
        {"{\"version\": 1, \"documents\": {}}", CM_ESTATE, NULL, "\"documents\""},
        {"[]", CM_ESTATE, NULL, "not an object"},
    };

    doc_text(us5, sizeof(us5), US, 5, true, 0);
    doc_text(us6, sizeof(us6), US, 6, false, 0);
    doc_text(eu1, sizeof(eu1), EU, 1, true, 0);
    memcpy(bad, sa, sizeof(sa));
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct cm_store_cand *c = NULL;
        struct cm_store *s = cm_store_new();
        json_t *root = NULL;
        char err[512] = "", held[256];
        const char *t = cases[i].text;
        int rc;

        if (i == 1)
            snprintf(text, sizeof(text), "{\"version\":1,\"documents\":[%s,%s,%s]}", us5, us6, eu1);
        else if (i == 2)
            snprintf(text, sizeof(text), "{\"version\":1,\"documents\":[%s,%s]}", us6, us5);
        else if (i == 3)
            snprintf(text, sizeof(text), "{\"version\":1,\"documents\":[%s,%s]}", bad, eu1);
        else if (i == 6)
            snprintf(text, sizeof(text), "%s", us5);
        if (t == NULL)
            t = text;
        rc = cm_store_file_parse("state.json", t, strlen(t), f->conf, 5, &c, &root, err,
                                 sizeof(err));
        if (rc != cases[i].rc)
            fail_msg("case %zu: rc %d (%s), want %d", i, rc, err, cases[i].rc);
        if (rc == CM_OK) {
            assert_non_null(root);
            cm_store_commit(s, c);
            held_text(s, held, sizeof(held));
            if (strcmp(held, cases[i].held) != 0)
                fail_msg("case %zu: held '%s', want '%s'", i, held, cases[i].held);
        } else {
            assert_null(c);
            assert_null(root);
            if (strstr(err, cases[i].err) == NULL)
                fail_msg("case %zu: reason '%s' lacks '%s'", i, err, cases[i].err);
        }
        json_decref(root);
        cm_store_free(s);
    }
}

/* A truncated state file: PATH.prev is loaded instead (cm_file_load), and
 * --check-config (check) refuses PATH even though PATH.prev would do. */
static void test_file_truncated_uses_prev(void **state)
{
    struct fixture *f = *state;
    struct cm_store_loaded l;
    struct cm_store_cand *c = NULL;
    char doc[1024], err[1024] = "", held[256], prev[160];
    struct cm_store *back = cm_store_new();
    int rc;

    doc_text(doc, sizeof(doc), US, 3, true, 0);
    assert_int_equal(cm_store_put(f->s, doc, strlen(doc), NULL, f->conf, 1, &c, err, sizeof(err)),
                     CM_OK);
    cm_store_commit(f->s, c);
    assert_int_equal(cm_store_save(f->s, f->path, NULL, err, sizeof(err)), CM_OK);
    doc_text(doc, sizeof(doc), US, 4, true, 0);
    assert_int_equal(cm_store_put(f->s, doc, strlen(doc), NULL, f->conf, 2, &c, err, sizeof(err)),
                     CM_OK);
    cm_store_commit(f->s, c);
    assert_int_equal(cm_store_save(f->s, f->path, NULL, err, sizeof(err)), CM_OK);
    /* PATH now holds generation 4, PATH.prev generation 3; cut PATH short. */
    assert_int_equal(truncate(f->path, 20), 0);

    assert_int_equal(cm_store_load(f->path, f->conf, 9, true, &l, err, sizeof(err)), CM_ESTATE);
    assert_non_null(strstr(err, "invalid JSON"));
    assert_null(l.cand);

    assert_int_equal(cm_store_load(f->path, f->conf, 9, false, &l, err, sizeof(err)), CM_OK);
    assert_true(l.fell_back);
    assert_non_null(strstr(l.reason, "invalid JSON"));
    cm_store_commit(back, l.cand);
    l.cand = NULL;
    cm_store_loaded_fini(&l);
    held_text(back, held, sizeof(held));
    assert_string_equal(held, "us-east-1:3@9");
    cm_store_free(back);

    /* Neither file: CM_ENOENT (a first start). */
    snprintf(prev, sizeof(prev), "%s.prev", f->path);
    unlink(prev);
    unlink(f->path);
    assert_int_equal(cm_store_load(f->path, f->conf, 9, false, &l, err, sizeof(err)), CM_ENOENT);
    /* A bare document and no PATH.prev: unusable, with the reason. */
    write_file(f->path, doc);
    rc = cm_store_load(f->path, f->conf, 9, false, &l, err, sizeof(err));
    assert_true(rc != CM_OK && rc != CM_ENOENT);
    assert_non_null(strstr(err, "a bare state document"));
    assert_null(l.cand);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_generations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writers_and_forget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recheck, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_parse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_truncated_uses_prev, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
