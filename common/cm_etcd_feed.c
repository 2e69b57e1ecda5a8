/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_etcd_feed.c -- the keys of cm_etcd_feed.h and their way into the store.
 *
 * The feed holds the vantage and intent keys under the root as a sorted array
 * (key bytes, memcmp order), each with its mod_revision and, for vantages,
 * the value (for cm_etcd_feed_reapply). A federation has a few vantages and
 * a few hundred intents at most, so an insertion is a memmove.
 */
#include "common/cm_etcd_feed.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_hash.h"
#include "common/cm_log.h"
#include "common/cm_state.h"
#include "common/cm_store.h"
#include "common/cm_str.h"

struct entry {
    char *key; /* owned, key_len bytes + NUL */
    size_t key_len;
    enum cm_etcd_key_kind kind;
    char *name;  /* owned: the vantage's name (vantage keys), else NULL */
    char *value; /* owned: the value (vantage keys), else NULL */
    size_t value_len;
    int64_t mod_revision;
    int64_t refused_rev; /* the mod_revision whose value was refused (logged once) */
};

struct cm_etcd_feed {
    char *root; /* owned */
    size_t root_len;
    struct entry *e; /* owned, sorted by key */
    size_t count, cap;
    uint64_t applied, refused, apply_failed;
};

int cm_etcd_refuse_push(const struct cm_conf *conf, const char *daemon, char *err, size_t errlen)
{
    if (!conf->etcd.present)
        return CM_OK;
    cm_errf(err, errlen,
            "this %s takes vantage documents from etcd (the etcd section is set): vantages "
            "write them there",
            daemon);
    return CM_ENOTSUP;
}

char *cm_etcd_root(const char *prefix, const char *federation)
{
    size_t n = strlen(prefix) + strlen(federation) + 2;
    char *root = malloc(n);

    if (root != NULL)
        snprintf(root, n, "%s%s/", prefix, federation);
    return root;
}

enum cm_etcd_key_kind cm_etcd_key_parse(const char *root, const char *key, size_t len,
                                        const char **name, size_t *name_len)
{
    static const struct {
        const char *dir;
        enum cm_etcd_key_kind kind;
    } dirs[] = {
        {CM_ETCD_DIR_VANTAGES, CM_ETCD_KEY_VANTAGE},
        {CM_ETCD_DIR_INTENTS, CM_ETCD_KEY_INTENT},
        {CM_ETCD_DIR_CONSUMERS, CM_ETCD_KEY_CONSUMER},
    };
    size_t rl = strlen(root);

    *name = NULL;
    *name_len = 0;
    if (len <= rl || memcmp(key, root, rl) != 0)
        return CM_ETCD_KEY_OTHER;
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        size_t dl = strlen(dirs[i].dir);
        const char *rest = key + rl + dl;
        size_t n = len - rl - dl;

        if (len - rl <= dl || memcmp(key + rl, dirs[i].dir, dl) != 0)
            continue;
        if (memchr(rest, '\0', n) != NULL)
            return CM_ETCD_KEY_OTHER;
        if (dirs[i].kind != CM_ETCD_KEY_INTENT && memchr(rest, '/', n) != NULL)
            return CM_ETCD_KEY_OTHER;
        *name = rest;
        *name_len = n;
        return dirs[i].kind;
    }
    return CM_ETCD_KEY_OTHER;
}

struct cm_etcd_feed *cm_etcd_feed_new(const char *root)
{
    struct cm_etcd_feed *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return NULL;
    f->root = strdup(root);
    if (f->root == NULL) {
        free(f);
        return NULL;
    }
    f->root_len = strlen(root);
    return f;
}

static void entry_fini(struct entry *e)
{
    free(e->key);
    free(e->name);
    free(e->value);
}

static void entries_clear(struct cm_etcd_feed *f)
{
    for (size_t i = 0; i < f->count; i++)
        entry_fini(&f->e[i]);
    f->count = 0;
}

void cm_etcd_feed_free(struct cm_etcd_feed *f)
{
    if (f == NULL)
        return;
    entries_clear(f);
    free(f->e);
    free(f->root);
    free(f);
}

static int key_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen ? 1 : 0;
}

/* The index of @key, or where it would go (*found false). */
static size_t find(const struct cm_etcd_feed *f, const char *key, size_t len, bool *found)
{
    size_t lo = 0, hi = f->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = key_cmp(f->e[mid].key, f->e[mid].key_len, key, len);

        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/* Sets @e from @kv (a key the feed keeps). */
static int entry_set(struct entry *e, const struct cm_etcd_kv *kv, enum cm_etcd_key_kind kind,
                     const char *name, size_t name_len)
{
    char *key = e->key == NULL ? malloc(kv->key_len + 1) : e->key;
    char *nm = NULL, *value = NULL;

    if (kind == CM_ETCD_KEY_VANTAGE) {
        nm = e->name != NULL ? e->name : strndup(name, name_len);
        value = malloc(kv->value_len + 1);
    }
    if (key == NULL || (kind == CM_ETCD_KEY_VANTAGE && (nm == NULL || value == NULL))) {
        if (key != e->key)
            free(key);
        if (nm != e->name)
            free(nm);
        free(value);
        return CM_ENOMEM;
    }
    if (e->key == NULL) {
        memcpy(key, kv->key, kv->key_len);
        key[kv->key_len] = '\0';
    }
    if (value != NULL) {
        memcpy(value, kv->value, kv->value_len);
        value[kv->value_len] = '\0';
    }
    free(e->value);
    e->key = key;
    e->key_len = kv->key_len;
    e->kind = kind;
    e->name = nm;
    e->value = value;
    e->value_len = kv->value_len;
    e->mod_revision = kv->mod_revision;
    return CM_OK;
}

/* Keeps @kv (a vantage or intent key): inserted or updated. *idx is its place. */
static int upsert(struct cm_etcd_feed *f, const struct cm_etcd_kv *kv, enum cm_etcd_key_kind kind,
                  const char *name, size_t name_len, size_t *idx)
{
    bool found;
    size_t i = find(f, kv->key, kv->key_len, &found);
    struct entry fresh = {0};
    int rc;

    *idx = i;
    if (found)
        return entry_set(&f->e[i], kv, kind, name, name_len);
    if (f->count == f->cap) {
        size_t cap = f->cap > 0 ? f->cap * 2 : 16;
        struct entry *ne = realloc(f->e, cap * sizeof(*ne));

        if (ne == NULL)
            return CM_ENOMEM;
        f->e = ne;
        f->cap = cap;
    }
    rc = entry_set(&fresh, kv, kind, name, name_len);
    if (rc != CM_OK)
        return rc;
    memmove(&f->e[i + 1], &f->e[i], (f->count - i) * sizeof(*f->e));
    f->e[i] = fresh;
    f->count++;
    return CM_OK;
}

static void remove_at(struct cm_etcd_feed *f, size_t i)
{
    entry_fini(&f->e[i]);
    memmove(&f->e[i], &f->e[i + 1], (f->count - i - 1) * sizeof(*f->e));
    f->count--;
}

/* Hands @cand (taken; NULL = nothing) to the caller. */
static void apply(struct cm_etcd_feed *f, struct cm_store_cand *cand,
                  const struct cm_etcd_feed_target *t, const char *what)
{
    char err[CM_STATE_ERR_MAX] = "";

    if (cand == NULL)
        return;
    if (t->apply(t->arg, cand, err, sizeof(err)) != CM_OK) {
        f->apply_failed++;
        cm_log_error("etcd: %s: cannot apply: %s; keeping the previous state", what, err);
        return;
    }
    f->applied++;
}

/* Drops the held vantages that have no key any more (cm_store_retain's rule). */
static int retain_present(struct cm_etcd_feed *f, const struct cm_etcd_feed_target *t)
{
    const char **names = calloc(f->count + 1, sizeof(*names));
    struct cm_store_cand *cand = NULL;
    size_t n = 0, dropped = 0;
    int rc;

    if (names == NULL)
        return CM_ENOMEM;
    for (size_t i = 0; i < f->count; i++) {
        if (f->e[i].kind == CM_ETCD_KEY_VANTAGE)
            names[n++] = f->e[i].name;
    }
    rc = cm_store_retain(t->store, names, n, &cand, &dropped);
    free(names);
    if (rc == CM_OK)
        apply(f, cand, t, "vantage keys gone");
    return rc;
}

/* The document at vantage entry @i into the store. */
static int apply_vantage(struct cm_etcd_feed *f, size_t i, const struct cm_etcd_feed_target *t)
{
    struct entry *e = &f->e[i];
    struct cm_store_cand *cand = NULL;
    char err[CM_STATE_ERR_MAX] = "", what[128];
    int rc;

    rc = cm_store_replace(t->store, e->value, e->value_len, e->name, t->conf, t->now_ms, &cand, err,
                          sizeof(err));
    if (rc == CM_ENOMEM)
        return rc;
    if (rc != CM_OK) {
        f->refused++;
        if (e->refused_rev != e->mod_revision)
            cm_log_warn("etcd: %s (revision %" PRId64 ") refused: %s; vantage %s keeps its "
                        "previous document",
                        e->key, e->mod_revision, err, e->name);
        e->refused_rev = e->mod_revision;
        return CM_OK;
    }
    if (cand == NULL)
        return CM_OK; /* identical: nothing changes */
    snprintf(what, sizeof(what), "vantage %s (revision %" PRId64 ")", e->name, e->mod_revision);
    cm_log_at(cm_store_cand_is_quiet(cand) ? CM_LOG_DEBUG : CM_LOG_INFO,
              "etcd: state of vantage %s: generation=%" PRIu64 " revision=%" PRId64 " changed=%s",
              e->name, cm_store_cand_new_doc(cand)->generation, e->mod_revision,
              cm_store_cand_is_quiet(cand) ? "false" : "true");
    apply(f, cand, t, what);
    return CM_OK;
}

int cm_etcd_feed_sync(struct cm_etcd_feed *f, const struct cm_etcd_kv *kvs, size_t count,
                      const struct cm_etcd_feed_target *t)
{
    int rc = CM_OK;

    entries_clear(f);
    for (size_t i = 0; rc == CM_OK && i < count; i++) {
        const char *name;
        size_t name_len, idx;
        enum cm_etcd_key_kind kind =
            cm_etcd_key_parse(f->root, kvs[i].key, kvs[i].key_len, &name, &name_len);

        if (kind == CM_ETCD_KEY_VANTAGE || kind == CM_ETCD_KEY_INTENT)
            rc = upsert(f, &kvs[i], kind, name, name_len, &idx);
    }
    if (rc == CM_OK)
        rc = retain_present(f, t);
    for (size_t i = 0; rc == CM_OK && i < f->count; i++) {
        if (f->e[i].kind == CM_ETCD_KEY_VANTAGE)
            rc = apply_vantage(f, i, t);
    }
    return rc;
}

int cm_etcd_feed_event(struct cm_etcd_feed *f, const struct cm_etcd_event *ev,
                       const struct cm_etcd_feed_target *t)
{
    const char *name;
    size_t name_len, idx;
    bool found;
    enum cm_etcd_key_kind kind =
        cm_etcd_key_parse(f->root, ev->kv.key, ev->kv.key_len, &name, &name_len);
    int rc;

    if (kind != CM_ETCD_KEY_VANTAGE && kind != CM_ETCD_KEY_INTENT)
        return CM_OK;
    if (ev->type == CM_ETCD_EVENT_DELETE) {
        idx = find(f, ev->kv.key, ev->kv.key_len, &found);
        if (!found)
            return CM_OK;
        if (kind == CM_ETCD_KEY_VANTAGE)
            cm_log_info("etcd: key %s gone (revision %" PRId64 ")", f->e[idx].key,
                        ev->kv.mod_revision);
        remove_at(f, idx);
        return kind == CM_ETCD_KEY_VANTAGE ? retain_present(f, t) : CM_OK;
    }
    rc = upsert(f, &ev->kv, kind, name, name_len, &idx);
    if (rc != CM_OK || kind != CM_ETCD_KEY_VANTAGE)
        return rc;
    rc = apply_vantage(f, idx, t);
    if (rc == CM_OK)
        rc = retain_present(f, t); /* a vantage back: the ones kept past their keys go */
    return rc;
}

int cm_etcd_feed_reapply(struct cm_etcd_feed *f, const struct cm_etcd_feed_target *t)
{
    int rc = retain_present(f, t);

    for (size_t i = 0; rc == CM_OK && i < f->count; i++) {
        if (f->e[i].kind == CM_ETCD_KEY_VANTAGE) {
            f->e[i].refused_rev = 0; /* judged again: say so again */
            rc = apply_vantage(f, i, t);
        }
    }
    return rc;
}

uint64_t cm_etcd_feed_digest(const struct cm_etcd_feed *f)
{
    uint64_t h = CM_FNV1A64_INIT;

    for (size_t i = 0; i < f->count; i++) {
        char rev[32];
        int n = snprintf(rev, sizeof(rev), "\n%" PRId64 "\n", f->e[i].mod_revision);

        h = cm_fnv1a64(h, f->e[i].key, f->e[i].key_len);
        h = cm_fnv1a64(h, rev, (size_t)n);
    }
    return h;
}

void cm_etcd_feed_get_stats(const struct cm_etcd_feed *f, struct cm_etcd_feed_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->keys = f->count;
    for (size_t i = 0; i < f->count; i++)
        out->vantage_keys += f->e[i].kind == CM_ETCD_KEY_VANTAGE;
    out->applied = f->applied;
    out->refused = f->refused;
    out->apply_failed = f->apply_failed;
    out->digest = cm_etcd_feed_digest(f);
}
