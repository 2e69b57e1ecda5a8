/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_cm_store_delta.c -- state deltas (cm_state_delta_apply through
 * cm_store_put): a delta gives exactly the document the whole one would
 * (random changes, compared byte for byte), and a bad one is refused with
 * the previous state kept.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
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
#include "common/cm_net.h"
#include "common/cm_rand.h"
#include "common/cm_state.h"
#include "common/cm_store.h"

#define US "us-east-1"

static const char conf_text[] = "{\"federation\": \"myfed\", \"zone\": \"fed.example.test\","
                                " \"regions\": {\"us-east-1\": {\"zones\": [\"us-east-1a\"]},"
                                "              \"eu-west-1\": {\"zones\": [\"eu-west-1a\"]}},"
                                " \"members\": {\"usa\": {\"region\": \"us-east-1\"},"
                                "             \"eur\": {\"region\": \"eu-west-1\"}},"
                                " \"services\": {\"default/web\": {\"port\": 80}}}";

#define KEYS 24 /* service keys the random documents draw from */

struct fixture {
    struct cm_conf *conf;
    struct cm_store *s;
    uint64_t rnd;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char err[CM_CONF_ERR_MAX];

    assert_non_null(f);
    if (cm_conf_load_string("test.json", conf_text, &f->conf, err, sizeof(err)) != CM_OK)
        fail_msg("config: %s", err);
    f->s = cm_store_new();
    assert_non_null(f->s);
    f->rnd = 0x5eed;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    cm_store_free(f->s);
    cm_conf_unref(f->conf);
    free(f);
    return 0;
}

static unsigned pick(struct fixture *f, unsigned n)
{
    return (unsigned)(cm_rand_next(&f->rnd) % n);
}

static json_t *random_service(struct fixture *f)
{
    json_t *members = json_object();
    static const char *const names[] = {"usa", "eur"};

    for (size_t i = 0; i < 2; i++) {
        char addr[32];

        if (pick(f, 4) == 0)
            continue;
        snprintf(addr, sizeof(addr), "192.0.2.%u", 1 + pick(f, 200));
        json_object_set_new(members, names[i],
                            json_pack("{s:[s],s:i,s:b,s:b}", "addresses", addr, "ready_endpoints",
                                      (int)pick(f, 4), "healthy", (int)pick(f, 2), "pending",
                                      (int)(pick(f, 5) == 0)));
    }
    return json_pack("{s:i,s:o}", "port", 80 + (int)pick(f, 3), "members", members);
}

static void key_name(char *buf, size_t cap, unsigned i)
{
    snprintf(buf, cap, "ns%u/svc%u", i % 3, i);
}

static json_t *header(uint64_t gen, unsigned sec)
{
    char at[32];

    snprintf(at, sizeof(at), "2026-11-21T07:%02u:%02uZ", sec / 60 % 60, sec % 60);
    return json_pack("{s:i,s:s,s:I,s:s}", "version", 1, "vantage", US, "generation",
                     (json_int_t)gen, "generated_at", at);
}

static char *dump(json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);

    assert_non_null(text);
    return text;
}

static int put_text(struct fixture *f, const char *text, char *err, size_t errlen)
{
    struct cm_store_cand *c = NULL;
    int rc = cm_store_put(f->s, text, strlen(text), NULL, f->conf, 1, &c, err, errlen);

    if (rc == CM_OK && c != NULL)
        cm_store_commit(f->s, c);
    return rc;
}

static int put_json(struct fixture *f, json_t *doc, char *err, size_t errlen)
{
    char *text = dump(doc);
    int rc = put_text(f, text, err, errlen);

    free(text);
    return rc;
}

/* The held document of US, serialized; the caller frees it. */
static char *held(struct fixture *f)
{
    const struct cm_state *st = cm_store_find(f->s, US);

    assert_non_null(st);
    return cm_state_dump(st);
}

/*
 * The parsed documents agree too, not only their JSON: every field the merge
 * reads (its per-service digest covers verdicts, votes, addresses, hostname,
 * ready endpoints, rules and RTTs), and the services' keys and member counts.
 */
static void assert_same_parse(struct fixture *f, const struct cm_state *a, const struct cm_state *b)
{
    struct cm_merged *ma = NULL, *mb = NULL;

    assert_int_equal(a->service_count, b->service_count);
    assert_int_equal(a->member_count, b->member_count);
    assert_int_equal(a->generation, b->generation);
    assert_int_equal(a->generated_at_unix, b->generated_at_unix);
    for (size_t i = 0; i < a->service_count; i++) {
        const struct cm_state_service *x = &a->services[i], *y = &b->services[i];

        assert_string_equal(x->key, y->key);
        assert_int_equal(x->port, y->port);
        assert_int_equal(x->member_count, y->member_count);
        for (size_t j = 0; j < x->member_count; j++) {
            assert_string_equal(x->members[j].member, y->members[j].member);
            assert_int_equal(x->members[j].healthy, y->members[j].healthy);
            assert_int_equal(x->members[j].pending, y->members[j].pending);
            assert_int_equal(x->members[j].ready_endpoints, y->members[j].ready_endpoints);
            assert_int_equal(x->members[j].address_count, y->members[j].address_count);
        }
    }
    for (size_t i = 0; i < a->member_count; i++)
        assert_string_equal(a->members[i].name, b->members[i].name);
    assert_int_equal(cm_merged_build(&a, 1, f->conf, &ma), CM_OK);
    assert_int_equal(cm_merged_build(&b, 1, f->conf, &mb), CM_OK);
    assert_int_equal(ma->service_count, mb->service_count);
    for (size_t i = 0; i < ma->service_count; i++) {
        assert_string_equal(ma->services[i].key, mb->services[i].key);
        assert_true(ma->services[i].digest == mb->services[i].digest);
    }
    for (size_t i = 0; i < ma->region_count * ma->member_count; i++)
        assert_true(memcmp(&ma->rtt_ms[i], &mb->rtt_ms[i], sizeof(double)) == 0);
    cm_merged_free(ma);
    cm_merged_free(mb);
}

/* Whether the documents @a and @b differ in generation and generated_at only
 * (whole JSON documents: what the store's shortcuts must agree with). */
static bool same_but_generation(json_t *a, json_t *b)
{
    json_t *c = json_copy(b);
    bool same;

    assert_non_null(c);
    assert_int_equal(json_object_set(c, "generation", json_object_get(a, "generation")), 0);
    assert_int_equal(json_object_set(c, "generated_at", json_object_get(a, "generated_at")), 0);
    same = json_equal(a, c);
    json_decref(c);
    return same;
}

/*
 * Puts @delta (from the document @cur to @next, parsed whole as @full) and
 * checks what the store made of it against @full before the commit: the
 * quiet flag (nothing but the generation changed), equality, and the change
 * stamps, which @full gets from the held document the long way (it is not
 * made from it).
 */
static void put_delta_like_full(struct fixture *f, json_t *delta, json_t *cur, json_t *next,
                                struct cm_state *full, unsigned round)
{
    const struct cm_state *prev = cm_store_find(f->s, US);
    bool quiet = same_but_generation(cur, next);
    struct cm_store_cand *c = NULL;
    const struct cm_state *made;
    char err[CM_STATE_ERR_MAX] = "";
    char *text = dump(delta);

    if (cm_store_put(f->s, text, strlen(text), NULL, f->conf, 1, &c, err, sizeof(err)) != CM_OK)
        fail_msg("round %u: delta refused: %s", round, err);
    free(text);
    assert_non_null(c);
    made = cm_store_cand_new_doc(c);
    assert_int_equal(cm_store_cand_is_quiet(c), quiet);
    assert_int_equal(cm_state_equal(prev, made, true), quiet);
    assert_int_equal(cm_state_equal(made, prev, true), quiet);
    assert_int_equal(cm_state_equal(prev, full, true), quiet);
    assert_false(cm_state_equal(prev, made, false));
    assert_true(cm_state_equal(made, full, false));
    assert_true(cm_state_equal(full, made, false));
    cm_state_stamp(full, prev, made->changed);
    assert_int_equal(full->service_count, made->service_count);
    for (size_t i = 0; i < full->service_count; i++) {
        const struct cm_state_service *x = &full->services[i], *y = &made->services[i];

        if (x->changed != y->changed)
            fail_msg("round %u: %s stamped %llu, %llu the long way", round, y->key,
                     (unsigned long long)y->changed, (unsigned long long)x->changed);
        for (size_t j = 0; j < x->member_count; j++)
            assert_int_equal(x->members[j].changed, y->members[j].changed);
    }
    cm_store_commit(f->s, c);
}

/*
 * Random changes (services changed, added, removed or re-sent as they were;
 * the members section and an unknown field now and then): the held document
 * after each delta is the one the whole document gives, byte for byte, and
 * stamped as the whole document would be.
 */
static void test_delta_equals_full(void **state)
{
    struct fixture *f = *state;
    char err[CM_STATE_ERR_MAX] = "", key[32];
    json_t *cur = header(1, 0), *services = json_object();
    struct cm_store_delta_counts n;

    for (unsigned i = 0; i < KEYS; i += 2) {
        key_name(key, sizeof(key), i);
        json_object_set_new(services, key, random_service(f));
    }
    json_object_set_new(cur, "services", services);
    if (put_json(f, cur, err, sizeof(err)) != CM_OK)
        fail_msg("first document: %s", err);

    for (unsigned round = 0; round < 300; round++) {
        uint64_t gen = 2 + round;
        json_t *next = header(gen, round + 1), *delta = header(gen, round + 1);
        json_t *nsvc = json_copy(json_object_get(cur, "services"));
        json_t *changed = json_object(), *removed = json_array();
        struct cm_state *full = NULL;
        char *want, *got;

        json_object_set_new(delta, "base_generation", json_integer((json_int_t)gen - 1));
        for (unsigned k = 0, edits = pick(f, 5); k < edits; k++) {
            unsigned i = pick(f, KEYS);

            key_name(key, sizeof(key), i);
            if (json_object_get(json_object_get(cur, "services"), key) != NULL &&
                json_object_get(nsvc, key) != NULL && pick(f, 3) == 0) {
                json_object_del(nsvc, key);
                json_object_del(changed, key);
                json_array_append_new(removed, json_string(key));
            } else {
                /* Now and then a service re-sent as the base has it: no change. */
                json_t *had = json_object_get(json_object_get(cur, "services"), key);
                json_t *svc = had != NULL && json_object_get(nsvc, key) == had && pick(f, 3) == 0
                                  ? json_deep_copy(had)
                                  : random_service(f);

                json_object_set(nsvc, key, svc);
                json_object_set_new(changed, key, svc);
                for (size_t r = 0; r < json_array_size(removed); r++) {
                    if (strcmp(json_string_value(json_array_get(removed, r)), key) == 0)
                        json_array_remove(removed, r--);
                }
            }
        }
        /* A removal of a service the base did not have cannot happen: only held keys are
         * removed. The base may have lost one and got it back: that is a change, not both. */
        json_object_set_new(next, "services", nsvc);
        json_object_set_new(delta, "services", changed);
        json_object_set_new(delta, "removed", removed);
        if (pick(f, 5) == 0) {
            json_t *m =
                json_pack("{s:{s:s,s:f}}", "usa", "region", US, "rtt_ms", (double)pick(f, 100));

            json_object_set(next, "members", m);
            json_object_set_new(delta, "members", m);
        } else if (json_object_get(cur, "members") != NULL) {
            json_object_set(next, "members", json_object_get(cur, "members"));
        }
        if (pick(f, 7) == 0) {
            json_object_set_new(next, "x-note", json_integer(round));
            json_object_set_new(delta, "x-note", json_integer(round));
        } else if (json_object_get(cur, "x-note") != NULL) {
            json_object_set(next, "x-note", json_object_get(cur, "x-note"));
        }
        {
            char *text = dump(next);

            if (cm_state_parse(text, strlen(text), NULL, &full, err, sizeof(err)) != CM_OK)
                fail_msg("round %u: whole document refused: %s", round, err);
            free(text);
        }
        put_delta_like_full(f, delta, cur, next, full, round);
        got = held(f);
        want = cm_state_dump(full);
        assert_string_equal(got, want);
        assert_same_parse(f, cm_store_find(f->s, US), full);
        free(got);
        free(want);
        cm_state_free(full);
        json_decref(delta);
        json_decref(cur);
        cur = next;
    }
    n = cm_store_delta_counts(f->s);
    assert_int_equal(n.applied, 300);
    assert_int_equal(n.conflict, 0);
    assert_int_equal(n.rejected, 0);
    json_decref(cur);
}

/* A delta from its fields, as text: @extra (JSON members, may be "") after the header. */
static char *delta_text(uint64_t base, uint64_t gen, const char *extra)
{
    char *buf = malloc(4096);

    assert_non_null(buf);
    snprintf(buf, 4096,
             "{\"version\": 1, \"vantage\": \"" US "\", \"base_generation\": %llu,"
             " \"generation\": %llu, \"generated_at\": \"2026-11-21T08:00:00Z\"%s%s}",
             (unsigned long long)base, (unsigned long long)gen, extra[0] != '\0' ? ", " : "",
             extra);
    return buf;
}

#define SVC(ip)                                                                                    \
    "{\"port\": 80, \"members\": {\"usa\": {\"addresses\": [\"" ip "\"], \"healthy\": true}}}"

/* Each bad delta is refused with a reason, and the held document stays as it was. */
static void test_delta_hostile(void **state)
{
    struct fixture *f = *state;
    static const struct {
        uint64_t base, gen;
        const char *extra;
        int rc;
        const char *reason; /* a part of the message */
    } bad[] = {
        {4, 5, "", CM_EEXIST, "is not the held generation 3"},
        {2, 5, "", CM_EEXIST, "base_generation: 2 is not the held generation 3"},
        {3, 3, "\"services\": {}", CM_ESTATE, "must be greater than base_generation"},
        {3, 3, "\"x-note\": 1", CM_ESTATE, "must be greater than base_generation"},
        {3, 4, "\"removed\": [\"default/ghost\"]", CM_ESTATE, "not a service of the base"},
        {3, 4, "\"removed\": [\"default/web\", \"default/web\"]", CM_ESTATE, "listed twice"},
        {3, 4,
         "\"removed\": [\"default/web\"], \"services\": {\"default/web\": " SVC("192.0.2.7") "}",
         CM_ESTATE, "both removed and in services"},
        {3, 4, "\"removed\": \"default/web\"", CM_ESTATE, "removed: must be an array"},
        {3, 4, "\"removed\": [7]", CM_ESTATE, "removed[0]: must be a service key"},
        {3, 4, "\"services\": []", CM_ESTATE, "services: must be an object"},
        {3, 4, "\"services\": {\"default/web\": " SVC("127.0.0.1") "}", CM_ESTATE, "loopback"},
        {3, 4, "\"services\": {\"no-slash\": " SVC("192.0.2.7") "}", CM_ESTATE,
         "not \"namespace/name\""},
        {3, 4, "\"members\": {\"usa\": {\"rtt_ms\": -1}}", CM_ESTATE, "members.usa.rtt_ms"},
        {3, 4,
         "\"services\": {\"default/api\": {\"members\": {\"ghost\": {\"addresses\": "
         "[\"192.0.2.9\"], \"healthy\": true}}}}",
         CM_ESTATE, "services.default/api.members.ghost: unknown member"},
        {3, 4, "\"version\": 2", CM_EPARSE, "duplicate"}, /* a second "version" key */
    };
    char err[CM_STATE_ERR_MAX] = "", *before, *after, *text;
    struct cm_store_delta_counts n;
    size_t rejected = 0, conflicts = 0;

    text = delta_text(0, 0, "");
    /* No document held yet: a conflict, the sender sends the whole document. */
    assert_int_equal(put_text(f, text, err, sizeof(err)), CM_EEXIST);
    assert_non_null(strstr(err, "no document of this vantage"));
    conflicts++;
    free(text);
    {
        char doc[512];

        snprintf(doc, sizeof(doc),
                 "{\"version\": 1, \"vantage\": \"" US "\", \"generation\": 3,"
                 " \"generated_at\": \"2026-11-21T07:00:00Z\", \"services\": {\"default/web\": "
                 "%s}}",
                 SVC("192.0.2.10"));
        assert_int_equal(put_text(f, doc, err, sizeof(err)), CM_OK);
    }
    before = held(f);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        text = delta_text(bad[i].base, bad[i].gen, bad[i].extra);
        err[0] = '\0';
        if (put_text(f, text, err, sizeof(err)) != bad[i].rc)
            fail_msg("case %zu: want %d: %s", i, bad[i].rc, err);
        if (strstr(err, bad[i].reason) == NULL)
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, bad[i].reason);
        if (bad[i].rc == CM_EEXIST)
            conflicts++;
        else if (bad[i].rc != CM_EPARSE) /* not JSON: not known to be a delta */
            rejected++;
        free(text);
        after = held(f);
        assert_string_equal(before, after);
        free(after);
    }
    /* Not JSON, and too large. */
    assert_int_equal(put_text(f, "{\"base_generation\": 3,", err, sizeof(err)), CM_EPARSE);
    {
        size_t big = CM_STATE_MAX_BYTES + 1;
        char *huge = malloc(big);
        struct cm_store_cand *c = NULL;

        assert_non_null(huge);
        memset(huge, ' ', big);
        assert_int_equal(cm_store_put(f->s, huge, big, NULL, f->conf, 1, &c, err, sizeof(err)),
                         CM_ETOOBIG);
        free(huge);
    }
    /* Another vantage's writer may not send this vantage's delta. */
    text = delta_text(3, 4, "");
    {
        struct cm_store_cand *c = NULL;

        assert_int_equal(
            cm_store_put(f->s, text, strlen(text), "eu-west-1", f->conf, 1, &c, err, sizeof(err)),
            CM_EACCES);
        rejected++;
        /* A source that orders whole documents (etcd) takes no delta. */
        assert_int_equal(
            cm_store_replace(f->s, text, strlen(text), US, f->conf, 1, &c, err, sizeof(err)),
            CM_ESTATE);
        assert_non_null(strstr(err, "a delta, not a document"));
        rejected++;
    }
    after = held(f);
    assert_string_equal(before, after);
    free(after);
    /* A refresh (the held generation, nothing else) changes nothing but the vantage's time. */
    {
        char *rtext = delta_text(3, 3, "");
        struct cm_store_cand *c = NULL;
        uint64_t at = 0;

        assert_int_equal(
            cm_store_put(f->s, rtext, strlen(rtext), NULL, f->conf, 77, &c, err, sizeof(err)),
            CM_OK);
        assert_null(c);
        cm_store_get(f->s, 0, &at);
        assert_int_equal(at, 77);
        /* Another vantage's writer may not refresh it. */
        assert_int_equal(cm_store_put(f->s, rtext, strlen(rtext), "eu-west-1", f->conf, 78, &c, err,
                                      sizeof(err)),
                         CM_EACCES);
        rejected++;
        cm_store_get(f->s, 0, &at);
        assert_int_equal(at, 77);
        free(rtext);
    }
    after = held(f);
    assert_string_equal(before, after);
    free(after);
    /* The good one still applies. */
    assert_int_equal(put_text(f, text, err, sizeof(err)), CM_OK);
    assert_int_equal(cm_store_find(f->s, US)->generation, 4);
    free(text);
    n = cm_store_delta_counts(f->s);
    assert_int_equal(n.applied, 2); /* the refresh and the delta */
    assert_int_equal(n.conflict, conflicts);
    assert_int_equal(n.rejected, rejected);
    free(before);
}

static void assert_same_merge(const struct cm_merged *a, const struct cm_merged *b)
{
    assert_int_equal(a->service_count, b->service_count);
    assert_int_equal(a->doc_count, b->doc_count);
    for (size_t i = 0; i < a->region_count * a->member_count; i++)
        assert_true(memcmp(&a->rtt_ms[i], &b->rtt_ms[i], sizeof(double)) == 0);
    for (size_t i = 0; i < a->service_count; i++) {
        const struct cm_merged_service *x = &a->services[i], *y = &b->services[i];

        assert_string_equal(x->key, y->key);
        assert_true(x->digest == y->digest);
        assert_int_equal(x->conf_index, y->conf_index);
        assert_int_equal(x->port, y->port);
        assert_int_equal(x->ttl_s, y->ttl_s);
        assert_int_equal(x->allow_without_endpoints, y->allow_without_endpoints);
        for (size_t j = 0; j < a->member_count; j++) {
            const struct cm_merged_endpoint *e = &x->members[j], *f = &y->members[j];

            assert_int_equal(e->present, f->present);
            assert_int_equal(e->unplaced, f->unplaced);
            assert_int_equal(e->healthy, f->healthy);
            assert_int_equal(e->pending, f->pending);
            assert_int_equal(e->votes_up, f->votes_up);
            assert_int_equal(e->votes_down, f->votes_down);
            assert_ptr_equal(e->src, f->src); /* the same endpoint of the same document */
            for (size_t r = 0; e->present && r < a->region_count; r++)
                assert_true(memcmp(&e->rtt_by_region[r], &f->rtt_by_region[r], sizeof(double)) ==
                            0);
        }
    }
}

/*
 * Two vantages push random deltas (now and then a whole document, and
 * generated_at going back and forth so the newest-first order changes):
 * cm_merged_update after each is what cm_merged_build makes, field by field
 * and src pointer by pointer, and it does share entries when it may.
 */
/*
 * The first documents of @vantages into @cur and the store, and their merge:
 * vantage v's is generated at second v * @sec_step and holds every
 * (1 + v * @key_step)-th of KEYS services.
 */
static struct cm_merged *first_documents(struct fixture *f, const char *const vantages[2],
                                         json_t *cur[2], unsigned sec_step, unsigned key_step)
{
    char err[CM_STATE_ERR_MAX] = "", key[32];
    struct cm_merged *m = NULL;

    for (unsigned v = 0; v < 2; v++) {
        json_t *services = json_object();

        cur[v] = header(1, v * sec_step);
        json_object_set_new(cur[v], "vantage", json_string(vantages[v]));
        for (unsigned i = 0; i < KEYS; i += 1 + v * key_step) {
            key_name(key, sizeof(key), i);
            json_object_set_new(services, key, random_service(f));
        }
        json_object_set_new(cur[v], "services", services);
        if (put_json(f, cur[v], err, sizeof(err)) != CM_OK)
            fail_msg("first document: %s", err);
    }
    assert_int_equal(cm_merged_build(cm_store_docs(f->s), cm_store_count(f->s), f->conf, &m),
                     CM_OK);
    return m;
}

/*
 * Stores @text (freed) for candidate *@c and merges its documents both
 * ways: *@inc from @m incrementally, checked against a build from nothing.
 */
static void put_and_merge(struct fixture *f, char *text, unsigned round, struct cm_store_cand **c,
                          struct cm_merged *m, struct cm_merged **inc)
{
    struct cm_merged *full = NULL;
    const struct cm_state *const *docs;
    char err[CM_STATE_ERR_MAX];
    size_t n;

    if (cm_store_put(f->s, text, strlen(text), NULL, f->conf, 1, c, err, sizeof(err)) != CM_OK)
        fail_msg("round %u: %s", round, err);
    free(text);
    assert_non_null(*c);
    docs = cm_store_cand_docs(*c, &n);
    assert_int_equal(cm_merged_update(m, docs, n, f->conf, inc), CM_OK);
    assert_int_equal(cm_merged_build(docs, n, f->conf, &full), CM_OK);
    assert_same_merge(*inc, full);
    cm_merged_free(full);
}

/* Commits @c (which frees the replaced document: @m is done with it) and
 * keeps *@cur in step with what the store now holds for @vantage. */
static void commit_and_reload(struct fixture *f, struct cm_store_cand *c, struct cm_merged *m,
                              json_t **cur, const char *vantage)
{
    char *text;

    cm_store_commit(f->s, c);
    cm_merged_free(m);
    json_decref(*cur);
    text = cm_state_dump(cm_store_find(f->s, vantage));
    *cur = json_loads(text, 0, NULL);
    free(text);
}

static void test_merge_update_equals_build(void **state)
{
    struct fixture *f = *state;
    static const char *const vantages[] = {US, "eu-west-1"};
    json_t *cur[2];
    struct cm_merged *m = NULL;
    size_t shared = 0, rebuilt = 0;
    char key[32];

    m = first_documents(f, vantages, cur, 0, 1);
    for (unsigned round = 0; round < 400; round++) {
        size_t v = pick(f, 4) == 0; /* mostly the same vantage: its order stays */
        uint64_t gen = (uint64_t)json_integer_value(json_object_get(cur[v], "generation")) + 1;
        unsigned sec = pick(f, 6) == 0 ? pick(f, 60) : 59; /* now and then out of order */
        json_t *delta = header(gen, sec), *changed = json_object(), *removed = json_array();
        json_t *services = json_object_get(cur[v], "services");
        struct cm_store_cand *c = NULL;
        struct cm_merged *inc = NULL;

        json_object_set_new(delta, "vantage", json_string(vantages[v]));
        json_object_set_new(delta, "base_generation", json_integer((json_int_t)gen - 1));
        for (unsigned e = 0, edits = pick(f, 3); e < edits; e++) {
            key_name(key, sizeof(key), pick(f, KEYS));
            if (json_object_get(changed, key) != NULL)
                continue;
            if (json_object_get(services, key) != NULL && pick(f, 4) == 0) {
                int dup = 0;

                for (size_t r = 0; r < json_array_size(removed); r++)
                    dup |= strcmp(json_string_value(json_array_get(removed, r)), key) == 0;
                if (!dup)
                    json_array_append_new(removed, json_string(key));
            } else {
                int gone = 0;

                for (size_t r = 0; r < json_array_size(removed); r++)
                    gone |= strcmp(json_string_value(json_array_get(removed, r)), key) == 0;
                if (!gone)
                    json_object_set_new(changed, key, random_service(f));
            }
        }
        json_object_set_new(delta, "services", changed);
        json_object_set_new(delta, "removed", removed);
        put_and_merge(f, dump(delta), round, &c, m, &inc);
        for (size_t i = 0, j = 0; i < inc->service_count && j < m->service_count;) {
            int cmp = strcmp(inc->services[i].key, m->services[j].key);

            if (cmp == 0 && inc->services[i].members == m->services[j].members)
                shared++;
            else if (cmp == 0)
                rebuilt++;
            i += cmp <= 0;
            j += cmp >= 0;
        }
        commit_and_reload(f, c, m, &cur[v], vantages[v]);
        m = inc;
        json_decref(delta);
    }
    assert_true(shared > 0);  /* the incremental path ran */
    assert_true(rebuilt > 0); /* and so did the other */
    cm_merged_free(m);
    json_decref(cur[0]);
    json_decref(cur[1]);
}

/*
 * Vantages pushing in turn, each document newer than the last (the normal
 * case: the newest document changes on every push), with now and then a
 * vantage re-sending the other's older entry (a lagging watch) and a whole
 * document: cm_merged_update is what cm_merged_build makes, and a delta
 * push re-merges only the services it changed.
 */
static void test_merge_in_turn(void **state)
{
    struct fixture *f = *state;
    static const char *const vantages[] = {US, "eu-west-1"};
    json_t *cur[2];
    struct cm_merged *m = NULL;
    size_t shared = 0;
    char key[32];

    m = first_documents(f, vantages, cur, 1, 0);
    for (unsigned round = 0; round < 600; round++) {
        size_t v = round % 2;
        uint64_t gen = (uint64_t)json_integer_value(json_object_get(cur[v], "generation")) + 1;
        bool whole = round % 25 == 24;
        json_t *doc = header(gen, 2 + round / 60 % 57), *changed = json_object();
        json_t *services = json_object_get(cur[v], "services");
        struct cm_store_cand *c = NULL;
        struct cm_merged *inc = NULL;
        size_t rebuilt = 0;

        json_object_set_new(doc, "vantage", json_string(vantages[v]));
        for (unsigned e = 0, edits = 1 + pick(f, 2); e < edits; e++) {
            json_t *other;

            key_name(key, sizeof(key), pick(f, KEYS));
            other = json_object_get(json_object_get(cur[1 - v], "services"), key);
            if (pick(f, 3) == 0 && other != NULL) /* re-sends what the other one said */
                json_object_set(changed, key, other);
            else if (pick(f, 4) == 0 && json_object_get(services, key) != NULL)
                json_object_set(changed, key, json_object_get(services, key)); /* unchanged */
            else
                json_object_set_new(changed, key, random_service(f));
        }
        if (whole) {
            json_t *all = json_copy(services);

            json_object_update(all, changed);
            json_object_set_new(doc, "services", all);
            json_decref(changed);
        } else {
            json_object_set_new(doc, "base_generation", json_integer((json_int_t)gen - 1));
            json_object_set_new(doc, "services", changed);
        }
        put_and_merge(f, dump(doc), round, &c, m, &inc);
        for (size_t i = 0; i < inc->service_count; i++) {
            if (inc->services[i].members == m->services[i].members)
                shared++;
            else
                rebuilt++;
        }
        if (!whole) /* only what the delta brought was merged again */
            assert_true(rebuilt <= json_object_size(json_object_get(doc, "services")));
        commit_and_reload(f, c, m, &cur[v], vantages[v]);
        m = inc;
        json_decref(doc);
    }
    assert_true(shared > 0);
    cm_merged_free(m);
    json_decref(cur[0]);
    json_decref(cur[1]);
}

/* A whole document of @vantage: generation @gen, generated_at second @sec,
 * service default/web with member usa at @addr. */
static int put_web(struct fixture *f, const char *vantage, uint64_t gen, unsigned sec,
                   const char *addr)
{
    json_t *doc = header(gen, sec);
    char err[CM_STATE_ERR_MAX] = "";
    int rc;

    json_object_set_new(doc, "vantage", json_string(vantage));
    json_object_set_new(doc, "services",
                        json_pack("{s:{s:i,s:{s:{s:[s],s:i,s:b}}}}", "default/web", "port", 80,
                                  "members", "usa", "addresses", addr, "ready_endpoints", 1,
                                  "healthy", 1));
    rc = put_json(f, doc, err, sizeof(err));
    json_decref(doc);
    return rc;
}

/* The address member usa of default/web is answered with, merged from the store. */
static void assert_web_addr(struct fixture *f, const char *want)
{
    struct cm_merged *m = NULL;
    char got[CM_ADDR_STRLEN];
    const struct cm_merged_endpoint *me;
    int usa = cm_conf_member_index(f->conf, "usa");

    assert_int_equal(cm_merged_build(cm_store_docs(f->s), cm_store_count(f->s), f->conf, &m),
                     CM_OK);
    assert_int_equal(m->service_count, 1);
    me = &m->services[0].members[usa];
    assert_non_null(me->src);
    assert_int_equal(me->src->address_count, 1);
    assert_true(inet_ntop(AF_INET, &((struct sockaddr_in *)&me->src->addresses[0].ss)->sin_addr,
                          got, sizeof(got)) != NULL);
    assert_string_equal(got, want);
    cm_merged_free(m);
}

/*
 * The merge rule: a member's addresses come from the vantage whose entry
 * changed last, not from the newest document. A vantage whose watch lags
 * re-sends the old address in newer documents without changing it; it does
 * not take the answer back.
 */
static void test_rule_changed_last(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(put_web(f, US, 1, 1, "192.0.2.1"), CM_OK);
    assert_int_equal(put_web(f, "eu-west-1", 1, 2, "192.0.2.1"), CM_OK);
    assert_web_addr(f, "192.0.2.1");
    assert_int_equal(put_web(f, US, 2, 3, "192.0.2.2"), CM_OK); /* US sees the change */
    assert_web_addr(f, "192.0.2.2");
    /* eu-west-1 lags: newer documents, the old address */
    assert_int_equal(put_web(f, "eu-west-1", 2, 4, "192.0.2.1"), CM_OK);
    assert_web_addr(f, "192.0.2.2");
    assert_int_equal(put_web(f, "eu-west-1", 3, 5, "192.0.2.1"), CM_OK);
    assert_web_addr(f, "192.0.2.2");
    /* US re-sends its address (newer document, same entry): still its */
    assert_int_equal(put_web(f, US, 3, 6, "192.0.2.2"), CM_OK);
    assert_web_addr(f, "192.0.2.2");
    /* eu-west-1 catches up with yet another change: it changed last */
    assert_int_equal(put_web(f, "eu-west-1", 4, 7, "192.0.2.3"), CM_OK);
    assert_web_addr(f, "192.0.2.3");
    /* an older generated_at does not matter: the change does */
    assert_int_equal(put_web(f, US, 4, 0, "192.0.2.4"), CM_OK);
    assert_web_addr(f, "192.0.2.4");
}

/*
 * Stamps are not in the state file: a loaded set is stamped oldest document
 * first, so after a load the newest document supplies every entry; of two
 * equally new documents, the vantage that sorts first. Unstamped documents
 * (a merge outside a store) follow the same order.
 */
/* The store's state file text, parsed back into a candidate to commit. */
static struct cm_store_cand *own_file_parsed(struct fixture *f)
{
    char err[CM_STATE_ERR_MAX] = "", *file = cm_store_file_text(f->s, NULL);
    struct cm_store_cand *c = NULL;

    assert_non_null(file);
    if (cm_store_file_parse("state.json", file, strlen(file), f->conf, 1, &c, NULL, err,
                            sizeof(err)) != CM_OK)
        fail_msg("state file: %s", err);
    free(file);
    return c;
}

static void test_rule_loaded_and_ties(void **state)
{
    struct fixture *f = *state;
    struct cm_store_cand *c;
    char err[CM_STATE_ERR_MAX] = "";

    assert_int_equal(put_web(f, US, 1, 9, "192.0.2.1"), CM_OK);
    assert_int_equal(put_web(f, "eu-west-1", 1, 2, "192.0.2.2"), CM_OK);
    assert_web_addr(f, "192.0.2.2"); /* changed last, though older */
    c = own_file_parsed(f);
    cm_store_free(f->s); /* a restart */
    f->s = cm_store_new();
    assert_non_null(f->s);
    cm_store_commit(f->s, c);
    assert_web_addr(f, "192.0.2.1"); /* loaded: the newest document */
    /* the counter continues above the loaded stamps: a change still wins */
    assert_int_equal(put_web(f, "eu-west-1", 2, 3, "192.0.2.5"), CM_OK);
    assert_web_addr(f, "192.0.2.5");

    /* a tie (same generated_at and generation): the vantage sorting first */
    cm_store_free(f->s);
    f->s = cm_store_new();
    assert_non_null(f->s);
    assert_int_equal(put_web(f, US, 1, 5, "192.0.2.1"), CM_OK);
    assert_int_equal(put_web(f, "eu-west-1", 1, 5, "192.0.2.2"), CM_OK);
    c = own_file_parsed(f);
    cm_store_commit(f->s, c);
    assert_web_addr(f, "192.0.2.2"); /* "eu-west-1" < "us-east-1" */
    {
        const struct cm_state *docs[2];
        struct cm_state *a = NULL, *b = NULL;
        struct cm_merged *m = NULL;
        int usa = cm_conf_member_index(f->conf, "usa");

        struct cm_state_opts opts;
        char *ta = cm_state_dump(cm_store_find(f->s, US));
        char *tb = cm_state_dump(cm_store_find(f->s, "eu-west-1"));
        const struct cm_state_endpoint *want;

        /* unstamped copies, in both orders */
        cm_state_opts_from_conf(&opts, f->conf);
        assert_int_equal(cm_state_parse(ta, strlen(ta), &opts, &a, err, sizeof(err)), CM_OK);
        assert_int_equal(cm_state_parse(tb, strlen(tb), &opts, &b, err, sizeof(err)), CM_OK);
        free(ta);
        free(tb);
        want = cm_state_endpoint_find(cm_state_service_find(b, "default/web"), "usa");
        for (int order = 0; order < 2; order++) {
            docs[order] = a;
            docs[1 - order] = b;
            assert_int_equal(cm_merged_build(docs, 2, f->conf, &m), CM_OK);
            assert_ptr_equal(m->services[0].members[usa].src, want);
            cm_merged_free(m);
        }
        /* a newer document of US sharing its services (a delta without
         * changes): unstamped, the order counts, and the update follows it */
        {
            json_t *d =
                json_pack("{s:s,s:I,s:I,s:s}", "vantage", US, "base_generation", (json_int_t)1,
                          "generation", (json_int_t)2, "generated_at", "2026-11-21T07:59:00Z");
            struct cm_state *a2 = NULL;
            struct cm_merged *inc = NULL, *full = NULL;

            assert_non_null(d);
            assert_int_equal(cm_state_delta_apply(a, d, &opts, &a2, err, sizeof(err)), CM_OK);
            json_decref(d);
            docs[0] = a;
            docs[1] = b;
            assert_int_equal(cm_merged_build(docs, 2, f->conf, &m), CM_OK);
            docs[0] = a2;
            assert_int_equal(cm_merged_update(m, docs, 2, f->conf, &inc), CM_OK);
            assert_int_equal(cm_merged_build(docs, 2, f->conf, &full), CM_OK);
            assert_same_merge(inc, full);
            assert_ptr_equal(
                full->services[0].members[usa].src,
                cm_state_endpoint_find(cm_state_service_find(a2, "default/web"), "usa"));
            cm_merged_free(inc);
            cm_merged_free(full);
            cm_merged_free(m);
            cm_state_free(a2);
        }
        cm_state_free(a);
        cm_state_free(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_delta_equals_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delta_hostile, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_update_equals_build, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_in_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_changed_last, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rule_loaded_and_ties, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
