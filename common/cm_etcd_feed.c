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
#include "common/cm_intent.h"
#include "common/cm_log.h"
#include "common/cm_sorted.h"
#include "common/cm_state.h"
#include "common/cm_store.h"
#include "common/cm_str.h"

struct entry {
    char *key; /* owned, key_len bytes + NUL */
    size_t key_len;
    enum cm_etcd_key_kind kind;
    char *name;  /* owned: the vantage's name (vantage keys), else NULL */
    char *value; /* owned: the value (vantage and intent keys) */
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

/* CM_OK outside the distributed mode, else CM_ENOTSUP: "this @daemon takes @what from etcd ...". */
static int refuse(const struct cm_conf *conf, const char *daemon, const char *what, const char *how,
                  char *err, size_t errlen)
{
    if (!conf->etcd.present)
        return CM_OK;
    cm_errf(err, errlen, "this %s takes %s from etcd (the etcd section is set): %s", daemon, what,
            how);
    return CM_ENOTSUP;
}

int cm_etcd_refuse_push(const struct cm_conf *conf, const char *daemon, char *err, size_t errlen)
{
    return refuse(conf, daemon, "vantage documents", "vantages write them there", err, errlen);
}

int cm_etcd_refuse_intent(const struct cm_conf *conf, const char *daemon, char *err, size_t errlen)
{
    return refuse(conf, daemon, "intents",
                  "write them there with fedgslbctl intent, drain or undrain", err, errlen);
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

/* A key being looked for: its bytes. */
struct key_ref {
    const char *key;
    size_t len;
};

static int entry_key_cmp(const void *elem, const void *key)
{
    const struct entry *e = elem;
    const struct key_ref *k = key;

    return key_cmp(e->key, e->key_len, k->key, k->len);
}

/* The index of @key, or where it would go (*found false). */
static size_t find(const struct cm_etcd_feed *f, const char *key, size_t len, bool *found)
{
    const struct key_ref k = {key, len};

    return cm_lower_bound(f->e, f->count, sizeof(*f->e), &k, entry_key_cmp, found);
}

/* Sets @e from @kv (a key the feed keeps). */
static int entry_set(struct entry *e, const struct cm_etcd_kv *kv, enum cm_etcd_key_kind kind,
                     const char *name, size_t name_len)
{
    char *key = e->key == NULL ? malloc(kv->key_len + 1) : e->key;
    char *nm = NULL, *value = NULL;

    if (kind == CM_ETCD_KEY_VANTAGE)
        nm = e->name != NULL ? e->name : strndup(name, name_len);
    value = malloc(kv->value_len + 1);
    if (key == NULL || value == NULL || (kind == CM_ETCD_KEY_VANTAGE && nm == NULL)) {
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
    memcpy(value, kv->value, kv->value_len);
    value[kv->value_len] = '\0';
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
    if (rc == CM_OK && t->intents != NULL)
        t->intents(t->arg, f); /* a list: keys not listed went away */
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
        if (kind == CM_ETCD_KEY_VANTAGE)
            return retain_present(f, t);
        if (t->intents != NULL)
            t->intents(t->arg, f);
        return CM_OK;
    }
    rc = upsert(f, &ev->kv, kind, name, name_len, &idx);
    if (rc == CM_OK && kind == CM_ETCD_KEY_INTENT && t->intents != NULL)
        t->intents(t->arg, f);
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
    if (rc == CM_OK && t->intents != NULL)
        t->intents(t->arg, f); /* the new configuration may name other members */
    return rc;
}

/* Whether @id has an intent key (intents/<id>) in @f. */
static bool has_intent_key(const struct cm_etcd_feed *f, const char *id)
{
    size_t rl = f->root_len + strlen(CM_ETCD_DIR_INTENTS);

    for (size_t i = 0; i < f->count; i++) {
        if (f->e[i].kind == CM_ETCD_KEY_INTENT && strcmp(f->e[i].key + rl, id) == 0)
            return true;
    }
    return false;
}

/* Makes *cur (owned unless it is @held) @next when @next is set. */
static void advance(const struct cm_intents *held, struct cm_intents **cur, struct cm_intents *next)
{
    if (next == NULL)
        return;
    if (*cur != held)
        cm_intents_free(*cur);
    *cur = next;
}

/* The intent key @e put into *cur: CM_OK whatever the value (a refusal is logged). */
static int put_intent_key(struct entry *e, size_t rl, const struct cm_intents *held,
                          struct cm_intents **cur, const struct cm_conf *conf, int64_t now_s)
{
    char err[CM_INTENT_ERR_MAX] = "";
    struct cm_intents *next = NULL;
    struct cm_intent *in = NULL;
    int rc = cm_intent_parse_text(e->value, e->value_len, conf, &in, err, sizeof(err));

    if (rc == CM_ENOMEM)
        return rc;
    if (rc == CM_OK && strcmp(in->id, e->key + rl) != 0) {
        cm_errf(err, sizeof(err), "id: \"%s\" is not the key's (\"%s\")", in->id, e->key + rl);
        rc = CM_EINVAL;
    }
    if (rc == CM_OK &&
        ((in->removed_at == 0 && in->expires_at != 0 && in->expires_at <= now_s) ||
         (in->removed_at != 0 && in->removed_at + CM_INTENT_TOMBSTONE_KEEP_S <= now_s))) {
        /* expired in etcd already, or a tombstone the set has pruned: nothing to apply */
        cm_intent_unref(in);
        return CM_OK;
    }
    if (rc == CM_OK) {
        rc = cm_intents_put(*cur, in, now_s, &next, err, sizeof(err));
        in = NULL; /* taken */
    }
    cm_intent_unref(in);
    if (rc == CM_ENOMEM)
        return rc;
    if (rc != CM_OK) {
        if (e->refused_rev != e->mod_revision)
            cm_log_warn("etcd: %s (revision %" PRId64 ") refused: %s; the intents held stay",
                        e->key, e->mod_revision, err);
        e->refused_rev = e->mod_revision;
        return CM_OK;
    }
    advance(held, cur, next);
    return CM_OK;
}

int cm_etcd_feed_intents(struct cm_etcd_feed *f, const struct cm_intents *held,
                         const struct cm_conf *conf, int64_t now_s, struct cm_intents **out)
{
    size_t rl = f->root_len + strlen(CM_ETCD_DIR_INTENTS);
    struct cm_intents *cur =
        (struct cm_intents *)(uintptr_t)held; /* never changed: sets are immutable */
    int rc = CM_OK;

    *out = NULL;
    for (size_t i = 0; rc == CM_OK && i < f->count; i++) {
        if (f->e[i].kind == CM_ETCD_KEY_INTENT)
            rc = put_intent_key(&f->e[i], rl, held, &cur, conf, now_s);
    }
    /* Live intents without a key: removed (their ids' storage moves with each set). */
    for (size_t i = 0; rc == CM_OK && i < cm_intents_count(cur); i++) {
        const struct cm_intent *in = cm_intents_get(cur, i);
        struct cm_intents *next = NULL;
        char err[CM_INTENT_ERR_MAX] = "";

        if (in->removed_at != 0 || has_intent_key(f, in->id))
            continue;
        cm_log_info("etcd: intent %s has no key any more: removed", in->id);
        rc = cm_intents_remove(cur, in->id, "etcd (key deleted)", now_s, &next, err, sizeof(err));
        advance(held, &cur, next);
    }
    if (rc != CM_OK) {
        if (cur != held)
            cm_intents_free(cur);
        return rc;
    }
    if (cur != held)
        *out = cur;
    return CM_OK;
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
