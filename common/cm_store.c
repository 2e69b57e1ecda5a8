/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_store.c -- the per-vantage document store of cm_store.h.
 *
 * The store and a candidate are the same shape: parallel arrays of document
 * pointers and accepted times. A candidate shares the store's documents; a
 * document in a candidate but not in the store is owned by the candidate
 * (freed with it), a document in the store but not in a committed candidate
 * is freed by the commit.
 */
#include "common/cm_store.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_file.h"
#include "common/cm_hash.h"
#include "common/cm_log.h"
#include "common/cm_state.h"
#include "common/cm_str.h"

#define DEFAULT_PUBLISH_INTERVAL_MS 10000u

struct set {
    struct cm_state **docs; /* see the ownership rule above */
    uint64_t *accepted_ms;
    size_t count;
};

struct cm_store {
    struct set set;
    bool all_silent; /* every vantage is past expiry; warned once */
    struct cm_store_delta_counts deltas;
    uint64_t stamp; /* the last change stamp given (cm_state_stamp) */
};

struct cm_store_cand {
    struct set set;
    const struct cm_store *from;    /* borrowed: the store it was computed from; NULL when loaded */
    const struct cm_state *new_doc; /* cm_store_put: the pushed document */
    bool quiet;
    bool delta; /* new_doc came as a delta: counted as applied at commit */
};

uint64_t cm_store_expiry_ms(const struct cm_conf *conf)
{
    uint64_t interval = DEFAULT_PUBLISH_INTERVAL_MS;

    if (conf->health.publish_interval_ms != 0)
        interval = conf->health.publish_interval_ms;
    return 3 * interval;
}

static int set_alloc(struct set *set, size_t cap)
{
    set->docs = calloc(cap + 1, sizeof(*set->docs));
    set->accepted_ms = calloc(cap + 1, sizeof(*set->accepted_ms));
    set->count = 0;
    if (set->docs == NULL || set->accepted_ms == NULL) {
        free(set->docs);
        free(set->accepted_ms);
        set->docs = NULL;
        set->accepted_ms = NULL;
        return CM_ENOMEM;
    }
    return CM_OK;
}

static void set_add(struct set *set, struct cm_state *doc, uint64_t accepted_ms)
{
    set->docs[set->count] = doc;
    set->accepted_ms[set->count] = accepted_ms;
    set->count++;
}

static bool set_has(const struct set *set, const struct cm_state *doc)
{
    for (size_t i = 0; i < set->count; i++) {
        if (set->docs[i] == doc)
            return true;
    }
    return false;
}

static ssize_t set_find(const struct set *set, const char *vantage)
{
    for (size_t i = 0; i < set->count; i++) {
        if (strcmp(set->docs[i]->vantage, vantage) == 0)
            return (ssize_t)i;
    }
    return -1;
}

/* Frees the arrays, and the documents not in @keep (NULL: all of them). */
static void set_fini(struct set *set, const struct set *keep)
{
    for (size_t i = 0; i < set->count; i++) {
        if (keep == NULL || !set_has(keep, set->docs[i]))
            cm_state_free(set->docs[i]);
    }
    free(set->docs);
    free(set->accepted_ms);
    set->docs = NULL;
    set->accepted_ms = NULL;
    set->count = 0;
}

struct cm_store *cm_store_new(void)
{
    struct cm_store *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    if (set_alloc(&s->set, 0) != CM_OK) {
        free(s);
        return NULL;
    }
    return s;
}

void cm_store_free(struct cm_store *s)
{
    if (s == NULL)
        return;
    set_fini(&s->set, NULL);
    free(s);
}

size_t cm_store_count(const struct cm_store *s)
{
    return s->set.count;
}

const struct cm_state *cm_store_get(const struct cm_store *s, size_t i, uint64_t *accepted_ms)
{
    if (i >= s->set.count)
        return NULL;
    if (accepted_ms != NULL)
        *accepted_ms = s->set.accepted_ms[i];
    return s->set.docs[i];
}

const struct cm_state *const *cm_store_docs(const struct cm_store *s)
{
    return (const struct cm_state *const *)s->set.docs;
}

const struct cm_state *cm_store_find(const struct cm_store *s, const char *vantage)
{
    ssize_t i = set_find(&s->set, vantage);

    return i >= 0 ? s->set.docs[i] : NULL;
}

static int vantage_cmp(const void *a, const void *b)
{
    const struct cm_state *x = *(const struct cm_state *const *)a;
    const struct cm_state *y = *(const struct cm_state *const *)b;

    return strcmp(x->vantage, y->vantage);
}

uint64_t cm_store_digest(const struct cm_store *s, uint64_t intents_digest)
{
    const struct cm_state **sorted = calloc(s->set.count + 1, sizeof(*sorted));
    uint64_t h = CM_FNV1A64_INIT;
    char gen[32];

    if (sorted == NULL)
        return 0; /* no digest equals 0 but by chance: "unknown" */
    memcpy(sorted, s->set.docs, s->set.count * sizeof(*sorted));
    qsort(sorted, s->set.count, sizeof(*sorted), vantage_cmp);
    for (size_t i = 0; i < s->set.count; i++) {
        snprintf(gen, sizeof(gen), "=%" PRIu64 "\n", sorted[i]->generation);
        h = cm_fnv1a64_str(h, sorted[i]->vantage);
        h = cm_fnv1a64_str(h, gen);
    }
    free(sorted);
    for (int i = 0; i < 8; i++)
        h = cm_fnv1a64_byte(h, (uint8_t)(intents_digest >> (8 * i)));
    return h;
}

/* ---- candidates ---- */

static struct cm_store_cand *cand_new(const struct cm_store *from, size_t cap)
{
    struct cm_store_cand *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    if (set_alloc(&c->set, cap) != CM_OK) {
        free(c);
        return NULL;
    }
    c->from = from;
    return c;
}

int cm_store_copy(const struct cm_store *s, struct cm_store_cand **out)
{
    struct cm_store_cand *c = cand_new(s, s->set.count);

    if (c == NULL)
        return CM_ENOMEM;
    for (size_t i = 0; i < s->set.count; i++)
        set_add(&c->set, s->set.docs[i], s->set.accepted_ms[i]);
    *out = c;
    return CM_OK;
}

void cm_store_cand_free(struct cm_store_cand *c)
{
    if (c == NULL)
        return;
    set_fini(&c->set, c->from != NULL ? &c->from->set : NULL);
    free(c);
}

void cm_store_commit(struct cm_store *s, struct cm_store_cand *c)
{
    assert(c->from == NULL || c->from == s);
    set_fini(&s->set, &c->set);
    s->set = c->set;
    for (size_t i = 0; i < s->set.count; i++) /* a loaded set brings its own stamps */
        if (s->set.docs[i]->changed > s->stamp)
            s->stamp = s->set.docs[i]->changed;
    if (c->delta)
        s->deltas.applied++;
    free(c);
}

struct cm_store_delta_counts cm_store_delta_counts(const struct cm_store *s)
{
    return s->deltas;
}

const struct cm_state *const *cm_store_cand_docs(const struct cm_store_cand *c, size_t *count)
{
    *count = c->set.count;
    return (const struct cm_state *const *)c->set.docs;
}

bool cm_store_cand_is_quiet(const struct cm_store_cand *c)
{
    return c->quiet;
}

const struct cm_state *cm_store_cand_new_doc(const struct cm_store_cand *c)
{
    return c->new_doc;
}

/* The candidate: the store with @doc (taken) in place of its vantage's. */
static int cand_with(const struct cm_store *s, struct cm_state *doc, uint64_t now_ms,
                     struct cm_store_cand **out)
{
    struct cm_store_cand *c = cand_new(s, s->set.count + 1);
    ssize_t held = set_find(&s->set, doc->vantage);

    if (c == NULL) {
        cm_state_free(doc);
        return CM_ENOMEM;
    }
    for (size_t i = 0; i < s->set.count; i++) {
        if ((ssize_t)i == held)
            set_add(&c->set, doc, now_ms);
        else
            set_add(&c->set, s->set.docs[i], s->set.accepted_ms[i]);
    }
    if (held < 0)
        set_add(&c->set, doc, now_ms);
    c->new_doc = doc;
    c->quiet = held >= 0 && cm_state_equal(s->set.docs[held], doc, true);
    *out = c;
    return CM_OK;
}

/*
 * The document @text gives: a whole one, or a delta (cm_state_delta_apply)
 * applied to the held document of its vantage (*delta set). A delta the
 * store cannot apply (no document held for its vantage, another base
 * generation) is CM_EEXIST, so the sender sends the whole document; a source
 * that orders documents itself (etcd) sends whole ones only. A refresh
 * (cm_state_delta_is_refresh) gives *doc NULL and *base the held document.
 */
static int parse_doc(struct cm_store *s, const char *text, size_t len,
                     const struct cm_state_opts *opts, bool by_source, struct cm_state **doc,
                     bool *delta, const struct cm_state **base, char *err, size_t errlen)
{
    json_t *root = NULL, *v;
    ssize_t held;
    int rc;

    rc = cm_state_load_json(text, len, &root, err, errlen);
    if (rc == CM_OK && !cm_state_is_delta(root)) {
        rc = cm_state_from_json(root, opts, doc, err, errlen);
        json_decref(root);
        return rc;
    }
    *delta = rc == CM_OK;
    if (rc == CM_OK && by_source) {
        cm_errf(err, errlen,
                "base_generation: a delta, not a document (this source takes "
                "whole documents only)");
        rc = CM_ESTATE;
    }
    if (rc == CM_OK) {
        v = json_object_get(root, "vantage");
        held = json_is_string(v) ? set_find(&s->set, json_string_value(v)) : -1;
        if (json_is_string(v) && held < 0) {
            cm_errf(err, errlen,
                    "vantage: no document of this vantage is held to apply the "
                    "delta to; send the full document");
            rc = CM_EEXIST;
        } else if (!json_is_string(v)) {
            cm_errf(err, errlen, "vantage: missing, or not a string");
            rc = CM_ESTATE;
        } else {
            *base = s->set.docs[held];
            if (cm_state_delta_is_refresh(*base, root))
                *doc = NULL; /* nothing to apply: *base stays, alive again */
            else
                rc = cm_state_delta_apply(*base, root, opts, doc, err, errlen);
        }
    }
    json_decref(root);
    return rc;
}

/*
 * cm_store_put and cm_store_replace: @by_source lets the document replace a
 * held one of any generation (the source orders them).
 */
static int put_doc(struct cm_store *s, const char *text, size_t len, const char *writer,
                   const struct cm_conf *conf, uint64_t now_ms, bool by_source,
                   struct cm_store_cand **out, char *err, size_t errlen)
{
    const struct cm_state *base = NULL;
    struct cm_state *doc = NULL;
    struct cm_state_opts opts;
    bool delta = false;
    ssize_t held;
    int rc;

    *out = NULL;
    cm_state_opts_from_conf(&opts, conf);
    rc = parse_doc(s, text, len, &opts, by_source, &doc, &delta, &base, err, errlen);
    if (rc == CM_OK && doc == NULL) { /* a refresh (cm_state_delta_is_refresh) */
        rc = cm_state_check_writer(base, writer, err, errlen);
        if (rc == CM_OK) {
            s->set.accepted_ms[set_find(&s->set, base->vantage)] = now_ms;
            s->all_silent = false;
            s->deltas.applied++;
        }
        goto out;
    }
    if (rc == CM_OK)
        rc = cm_state_check_writer(doc, writer, err, errlen);
    if (rc == CM_OK) /* a delta's base is held: it passed @conf */
        rc = cm_state_check_conf_since(doc, base, conf, err, errlen);
    if (rc != CM_OK)
        goto out;
    held = set_find(&s->set, doc->vantage);
    if (held >= 0) {
        const struct cm_state *old = s->set.docs[held];

        if (doc->generation == old->generation && cm_state_equal(doc, old, false)) {
            s->set.accepted_ms[held] = now_ms; /* idempotent re-push: the vantage is alive */
            s->all_silent = false;
            goto out;
        }
        if (by_source && doc->generation < old->generation)
            cm_log_info("vantage %s: generation %" PRIu64 " replaces %" PRIu64
                        " (the source's order counts: the vantage restarted without its state "
                        "file?)",
                        doc->vantage, doc->generation, old->generation);
        if (!by_source && doc->generation <= old->generation) {
            cm_errf(err, errlen, "stale generation %" PRIu64 " <= %" PRIu64 " from vantage %s%s",
                    doc->generation, old->generation, doc->vantage,
                    doc->generation == old->generation ? " (same generation, different content)"
                                                       : "");
            rc = CM_EEXIST;
            goto out;
        }
    }
    /* A fresh stamp for what changed, even if the candidate is not committed:
     * stamps only need to grow. */
    cm_state_stamp(doc, held >= 0 ? s->set.docs[held] : NULL, ++s->stamp);
    rc = cand_with(s, doc, now_ms, out);
    doc = NULL; /* taken by cand_with */
    if (rc == CM_OK)
        (*out)->delta = delta;
out:
    if (delta && rc == CM_EEXIST)
        s->deltas.conflict++;
    else if (delta && rc != CM_OK)
        s->deltas.rejected++;
    cm_state_free(doc);
    return rc;
}

int cm_store_put(struct cm_store *s, const char *text, size_t len, const char *writer,
                 const struct cm_conf *conf, uint64_t now_ms, struct cm_store_cand **out, char *err,
                 size_t errlen)
{
    return put_doc(s, text, len, writer, conf, now_ms, false, out, err, errlen);
}

int cm_store_replace(struct cm_store *s, const char *text, size_t len, const char *writer,
                     const struct cm_conf *conf, uint64_t now_ms, struct cm_store_cand **out,
                     char *err, size_t errlen)
{
    return put_doc(s, text, len, writer, conf, now_ms, true, out, err, errlen);
}

int cm_store_forget(const struct cm_store *s, const char *vantage, struct cm_store_cand **out,
                    char *err, size_t errlen)
{
    ssize_t idx = set_find(&s->set, vantage);
    struct cm_store_cand *c;

    *out = NULL;
    if (idx < 0) {
        cm_errf(err, errlen, "no document of vantage \"%s\" is held", vantage);
        return CM_ENOENT;
    }
    c = cand_new(s, s->set.count);
    if (c == NULL)
        return CM_ENOMEM;
    for (size_t i = 0; i < s->set.count; i++) {
        if ((ssize_t)i != idx)
            set_add(&c->set, s->set.docs[i], s->set.accepted_ms[i]);
    }
    *out = c;
    return CM_OK;
}

/* Which held documents a rule drops, and how each drop is told. */
struct drop_rule {
    bool (*drops)(const struct cm_store *s, size_t i, const void *arg);
    void (*why)(const struct cm_store *s, size_t i, const void *arg, char *buf, size_t cap);
    const void *arg;
    const char *all; /* logged (once) when the rule would drop every held document */
};

/*
 * The candidate without the documents @r drops (expiry, keys gone at the
 * source). When it would drop every one, the checkers (or the path to them)
 * failed, not the members: nothing is dropped and the last known state keeps
 * serving (losing the control plane is not an outage). *out is NULL when
 * nothing is dropped.
 */
static int cand_dropping(struct cm_store *s, const struct drop_rule *r, struct cm_store_cand **out,
                         size_t *dropped)
{
    struct cm_store_cand *c;
    size_t n = 0;

    *out = NULL;
    *dropped = 0;
    for (size_t i = 0; i < s->set.count; i++)
        n += r->drops(s, i, r->arg);
    if (n == 0 || n == s->set.count) {
        if (n != 0 && !s->all_silent)
            cm_log_warn("%s: keeping the last known state until one publishes again", r->all);
        s->all_silent = n != 0;
        return CM_OK;
    }
    s->all_silent = false;
    c = cand_new(s, s->set.count);
    if (c == NULL)
        return CM_ENOMEM;
    for (size_t i = 0; i < s->set.count; i++) {
        char why[160];

        if (!r->drops(s, i, r->arg)) {
            set_add(&c->set, s->set.docs[i], s->set.accepted_ms[i]);
            continue;
        }
        r->why(s, i, r->arg, why, sizeof(why));
        cm_log_warn("vantage %s %s (generation %" PRIu64 "); dropping it from the merge",
                    s->set.docs[i]->vantage, why, s->set.docs[i]->generation);
    }
    *out = c;
    *dropped = n;
    return CM_OK;
}

struct expiry {
    uint64_t now_ms, limit_ms;
};

static bool is_expired(const struct cm_store *s, size_t i, const void *arg)
{
    const struct expiry *x = arg;
    uint64_t at = s->set.accepted_ms[i];

    return x->now_ms > at && x->now_ms - at > x->limit_ms;
}

static void expired_why(const struct cm_store *s, size_t i, const void *arg, char *buf, size_t cap)
{
    const struct expiry *x = arg;

    snprintf(buf, cap, "expired: no document for %" PRIu64 " ms (limit %" PRIu64 " ms)",
             x->now_ms - s->set.accepted_ms[i], x->limit_ms);
}

int cm_store_expire(struct cm_store *s, uint64_t now_ms, uint64_t limit_ms,
                    struct cm_store_cand **out, size_t *dropped)
{
    const struct expiry x = {.now_ms = now_ms, .limit_ms = limit_ms};
    char all[96];
    struct drop_rule r = {.drops = is_expired, .why = expired_why, .arg = &x, .all = all};

    snprintf(all, sizeof(all), "every vantage silent for more than %" PRIu64 " ms", limit_ms);
    return cand_dropping(s, &r, out, dropped);
}

struct listing {
    const char *const *names;
    size_t count;
};

static bool not_listed(const struct cm_store *s, size_t i, const void *arg)
{
    const struct listing *l = arg;

    for (size_t k = 0; k < l->count; k++) {
        if (strcmp(l->names[k], s->set.docs[i]->vantage) == 0)
            return false;
    }
    return true;
}

static void gone_why(const struct cm_store *s, size_t i, const void *arg, char *buf, size_t cap)
{
    (void)s;
    (void)i;
    (void)arg;
    snprintf(buf, cap, "gone from the source");
}

int cm_store_retain(struct cm_store *s, const char *const *names, size_t count,
                    struct cm_store_cand **out, size_t *dropped)
{
    const struct listing l = {.names = names, .count = count};
    const struct drop_rule r = {.drops = not_listed,
                                .why = gone_why,
                                .arg = &l,
                                .all = "no vantage held is left at the source"};

    return cand_dropping(s, &r, out, dropped);
}

int cm_store_recheck(const struct cm_store *s, const struct cm_conf *conf, const char *what,
                     struct cm_store_cand **out)
{
    struct cm_store_cand *c = cand_new(s, s->set.count);

    *out = NULL;
    if (c == NULL)
        return CM_ENOMEM;
    for (size_t i = 0; i < s->set.count; i++) {
        char why[CM_STATE_ERR_MAX];

        if (cm_state_check_conf(s->set.docs[i], conf, why, sizeof(why)) != CM_OK) {
            cm_log_warn("state of vantage %s dropped by the %s: %s", s->set.docs[i]->vantage, what,
                        why);
            continue;
        }
        set_add(&c->set, s->set.docs[i], s->set.accepted_ms[i]);
    }
    *out = c;
    return CM_OK;
}

/* ---- the state file ---- */

char *cm_store_file_text(const struct cm_store *s, json_t *extra)
{
    json_t *docs = json_array();
    json_t *root;
    char *text;

    for (size_t i = 0; docs != NULL && i < s->set.count; i++) {
        json_t *doc = cm_state_json(s->set.docs[i]);

        if (doc == NULL || json_array_append_new(docs, doc) != 0) {
            json_decref(docs); /* json_array_append_new took @doc either way */
            docs = NULL;
        }
    }
    if (docs == NULL)
        return NULL;
    root = json_pack("{s:i,s:o*}", "version", CM_STORE_FILE_VERSION, "documents", docs);
    if (root == NULL)
        return NULL;
    if (extra != NULL && json_object_update_missing(root, extra) != 0) {
        json_decref(root);
        return NULL;
    }
    text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    return text;
}

int cm_store_save(const struct cm_store *s, const char *path, json_t *extra, char *err,
                  size_t errlen)
{
    char *text = cm_store_file_text(s, extra);
    int rc;

    if (text == NULL) {
        cm_errf(err, errlen, "%s: %s", path, cm_strerror(CM_ENOMEM));
        return CM_ENOMEM;
    }
    rc = cm_file_write_text_atomic(path, text, 0600, err, errlen);
    free(text);
    return rc;
}

/* Keeps the newest document per vantage in @set (takes ownership of @doc). */
static void loaded_add(struct set *set, struct cm_state *doc, uint64_t now_ms)
{
    ssize_t i = set_find(set, doc->vantage);

    if (i < 0) {
        set_add(set, doc, now_ms);
    } else if (doc->generation > set->docs[i]->generation) {
        cm_state_free(set->docs[i]);
        set->docs[i] = doc;
    } else {
        cm_state_free(doc);
    }
}

static int cmp_oldest_first(const void *a, const void *b)
{
    const struct cm_state *x = *(struct cm_state *const *)a, *y = *(struct cm_state *const *)b;

    if (x->generated_at_unix != y->generated_at_unix)
        return x->generated_at_unix < y->generated_at_unix ? -1 : 1;
    if (x->generation != y->generation)
        return x->generation < y->generation ? -1 : 1;
    return -strcmp(x->vantage, y->vantage);
}

/*
 * The change stamps of a loaded set (the file does not keep them): one a
 * document, the oldest document first (generated_at, generation, then the
 * vantage that sorts last), so right after a load every entry comes from the
 * newest document reporting it, and the vantage that sorts first wins a tie.
 */
static void stamp_loaded(struct set *set)
{
    struct cm_state **order = malloc((set->count + 1) * sizeof(*order));

    if (order == NULL) { /* still deterministic: in the file's order */
        for (size_t i = 0; i < set->count; i++)
            cm_state_stamp(set->docs[i], NULL, i + 1);
        return;
    }
    memcpy(order, set->docs, set->count * sizeof(*order));
    qsort(order, set->count, sizeof(*order), cmp_oldest_first);
    for (size_t i = 0; i < set->count; i++)
        cm_state_stamp(order[i], NULL, i + 1);
    free(order);
}

static int load_documents(const char *path, json_t *docs, const struct cm_conf *conf,
                          uint64_t now_ms, struct cm_store_cand *c)
{
    struct cm_state_opts opts;

    cm_state_opts_from_conf(&opts, conf);
    for (size_t i = 0; i < json_array_size(docs); i++) {
        struct cm_state *doc = NULL;
        char why[CM_STATE_ERR_MAX];
        int rc = cm_state_from_json(json_array_get(docs, i), &opts, &doc, why, sizeof(why));

        if (rc == CM_OK)
            rc = cm_state_check_conf(doc, conf, why, sizeof(why));
        if (rc == CM_ENOMEM) {
            cm_state_free(doc);
            return rc;
        }
        if (rc != CM_OK) {
            cm_log_warn("state file %s: documents[%zu] skipped: %s", path, i, why);
            cm_state_free(doc);
            continue;
        }
        loaded_add(&c->set, doc, now_ms);
    }
    stamp_loaded(&c->set);
    return CM_OK;
}

/* CM_OK when @root has the state file's shape, else CM_ESTATE and why. */
static int check_shape(json_t *root, char *err, size_t errlen)
{
    json_t *version = json_object_get(root, "version");
    json_t *vantage = json_object_get(root, "vantage");

    if (!json_is_object(root)) {
        cm_errf(err, errlen, "not a state file: the top level is not an object");
        return CM_ESTATE;
    }
    if (json_object_get(root, "documents") == NULL && json_is_string(vantage)) {
        cm_errf(err, errlen,
                "a bare state document (vantage %s), not a state file; a state file is "
                "{\"version\":%d,\"documents\":[...]}",
                json_string_value(vantage), CM_STORE_FILE_VERSION);
        return CM_ESTATE;
    }
    if (!json_is_integer(version) || json_integer_value(version) != CM_STORE_FILE_VERSION) {
        cm_errf(err, errlen, "not a version %d state file (\"version\" is missing or different)",
                CM_STORE_FILE_VERSION);
        return CM_ESTATE;
    }
    if (!json_is_array(json_object_get(root, "documents"))) {
        cm_errf(err, errlen, "not a state file: \"documents\" is missing or not an array");
        return CM_ESTATE;
    }
    return CM_OK;
}

int cm_store_file_parse(const char *path, const char *text, size_t len, const struct cm_conf *conf,
                        uint64_t now_ms, struct cm_store_cand **out, json_t **root, char *err,
                        size_t errlen)
{
    struct cm_store_cand *c = NULL;
    json_error_t jerr;
    json_t *doc;
    int rc;

    *out = NULL;
    if (root != NULL)
        *root = NULL;
    doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        cm_errf(err, errlen, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
                jerr.text);
        return CM_EPARSE;
    }
    rc = check_shape(doc, err, errlen);
    if (rc != CM_OK)
        goto out;
    c = cand_new(NULL, json_array_size(json_object_get(doc, "documents")));
    rc = c != NULL ? CM_OK : CM_ENOMEM;
    if (rc == CM_OK)
        rc = load_documents(path, json_object_get(doc, "documents"), conf, now_ms, c);
    if (rc != CM_OK) {
        cm_errf(err, errlen, "%s", cm_strerror(rc));
        goto out;
    }
    *out = c;
    c = NULL;
    if (root != NULL) {
        *root = doc;
        doc = NULL;
    }
out:
    cm_store_cand_free(c);
    json_decref(doc);
    return rc;
}

struct load_ctx {
    const struct cm_conf *conf;
    uint64_t now_ms;
    struct cm_store_loaded *l;
};

/* cm_file_parse_fn: may run twice (PATH, then PATH.prev). */
static int parse_file(void *arg, const char *path, const char *text, size_t len, char *err,
                      size_t errlen)
{
    struct load_ctx *x = arg;

    cm_store_loaded_fini(x->l);
    return cm_store_file_parse(path, text, len, x->conf, x->now_ms, &x->l->cand, &x->l->root, err,
                               errlen);
}

int cm_store_load(const char *path, const struct cm_conf *conf, uint64_t now_ms, bool check,
                  struct cm_store_loaded *out, char *err, size_t errlen)
{
    struct load_ctx x = {.conf = conf, .now_ms = now_ms, .l = out};
    struct cm_file_load_info info;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = cm_file_load(path, CM_STATE_FILE_MAX_BYTES, parse_file, &x,
                      check ? CM_FILE_LOAD_READONLY : CM_FILE_LOAD_DEFAULT, &info, err, errlen);
    if (rc == CM_OK && info.fell_back) {
        out->fell_back = true;
        cm_strlcpy(out->reason, info.reason, sizeof(out->reason));
        if (check) {
            cm_errf(err, errlen, "%s", info.reason);
            rc = CM_ESTATE;
        }
    }
    if (rc != CM_OK)
        cm_store_loaded_fini(out);
    return rc;
}

void cm_store_loaded_fini(struct cm_store_loaded *l)
{
    cm_store_cand_free(l->cand);
    json_decref(l->root);
    l->cand = NULL;
    l->root = NULL;
}
