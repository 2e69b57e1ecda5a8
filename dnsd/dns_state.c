/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_state.c -- the vantage documents, their merge, the operator's intents
 * and the state file.
 *
 * The documents live in a cm_store (common/cm_store.h), which owns the rules
 * for accepting, expiring and forgetting them and the state file format; the
 * intents in a cm_intents set (common/cm_intent.h).
 *
 * Invariant: st->merged is the merge of the store's documents under
 * st->conf and st->view the compiled intents, and they are what the owner's
 * current view was built from. st->conf is the loaded configuration extended
 * with the registry members the documents place (members_from;
 * cm_state_members_conf), so member indexes (the merge, the intent view, the
 * answer table) follow the documents; intents name members, so they follow
 * too. Every change goes through commit(), which builds the merge and the
 * intent view of a candidate, calls apply, and only then commits the
 * candidate.
 */
#include "dnsd/dns_state.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_etcd_feed.h"
#include "common/cm_file.h"
#include "common/cm_intent.h"
#include "common/cm_log.h"
#include "common/cm_rand.h"
#include "common/cm_state.h"
#include "common/cm_store.h"
#include "common/cm_str.h"
#include "common/cm_time.h"

struct dns_state {
    struct cm_conf *conf; /* reference held */
    char *path;           /* owned; NULL = no state file */
    dns_state_apply_fn *apply;
    void *apply_arg;
    struct cm_store *store;      /* owned: the documents (common/cm_store) */
    struct cm_intents *intents;  /* owned: the operator's intents */
    struct cm_intent_view *view; /* owned: intents compiled for conf */
    struct cm_merged *merged;
    uint64_t rnd;           /* ids of the drain shorthand */
    uint64_t save_failures; /* state file writes that failed */
    bool save_last_failed;  /* the last write failed */
    bool save_pending;      /* a commit since the last write: dns_state_flush writes it */
    uint64_t saved_ms;      /* monotonic time of the last write (0: none yet) */
    uint64_t put_ms;        /* dns_state_put's time while it commits, else 0 (now) */
    bool quiet;             /* the change being committed repeats what is held */
};

/* A change being prepared: what the store will hold if apply accepts it. */
struct candidate {
    struct cm_conf *conf;       /* borrowed */
    struct cm_store_cand *docs; /* owned */
    struct cm_intents *intents; /* owned; NULL = the held set */
    int64_t now_s;              /* the intents are compiled at this time */
};

uint64_t dns_state_expiry_ms(const struct cm_conf *conf)
{
    return cm_store_expiry_ms(conf);
}

static struct cm_merged *merged_empty(struct cm_conf *conf)
{
    struct cm_merged *m = NULL;

    if (cm_merged_build(NULL, 0, conf, &m) != CM_OK)
        return NULL;
    return m;
}

struct dns_state *dns_state_new(struct cm_conf *conf, const char *path, dns_state_apply_fn *apply,
                                void *arg)
{
    struct dns_state *st = calloc(1, sizeof(*st));

    if (st == NULL)
        return NULL;
    st->conf = cm_conf_ref(conf);
    st->apply = apply;
    st->apply_arg = arg;
    st->store = cm_store_new();
    st->intents = cm_intents_new();
    st->merged = merged_empty(conf);
    cm_rand_seed(&st->rnd, st);
    if (path != NULL)
        st->path = strdup(path);
    if (st->store == NULL || st->intents == NULL || st->merged == NULL ||
        cm_intent_view_build(st->intents, conf, 0, &st->view) != CM_OK ||
        (path != NULL && st->path == NULL)) {
        dns_state_free(st);
        return NULL;
    }
    return st;
}

void dns_state_free(struct dns_state *st)
{
    if (st == NULL)
        return;
    dns_state_flush(st, cm_mono_ms(), true);
    cm_merged_free(st->merged);
    cm_store_free(st->store);
    cm_intent_view_free(st->view);
    cm_intents_free(st->intents);
    free(st->path);
    cm_conf_unref(st->conf);
    free(st);
}

static void candidate_fini(struct candidate *c)
{
    cm_store_cand_free(c->docs);
    cm_intents_free(c->intents);
    c->docs = NULL;
    c->intents = NULL;
}

/*
 * Makes @c live. Takes ownership of the candidate either way: on success its
 * documents become the store's (cm_store_commit), else they are discarded.
 */
static int commit(struct dns_state *st, struct candidate *c, char *err, size_t errlen)
{
    const struct cm_intents *intents = c->intents != NULL ? c->intents : st->intents;
    struct cm_merged *merged = NULL;
    struct cm_intent_view *view = NULL;
    struct cm_conf *conf = NULL;
    const struct cm_state *const *docs;
    size_t count;
    int rc;

    docs = cm_store_cand_docs(c->docs, &count);
    rc = cm_state_members_conf(c->conf, docs, count, st->conf, &conf);
    if (rc == CM_OK) /* only what the change touched is merged again, where that is exact */
        rc = cm_merged_update(st->merged, docs, count, conf, &merged);
    if (rc == CM_OK)
        rc = cm_intent_view_build(intents, conf, c->now_s, &view);
    if (rc != CM_OK) {
        cm_errf(err, errlen, "cannot merge state: %s", cm_strerror(rc));
        goto fail;
    }
    if (st->apply != NULL) {
        rc = st->apply(st->apply_arg, conf, merged, view, err, errlen);
        if (rc != CM_OK)
            goto fail;
    }
    cm_merged_free(st->merged);
    st->merged = merged;
    cm_intent_view_free(st->view);
    st->view = view;
    cm_store_commit(st->store, c->docs);
    c->docs = NULL;
    if (c->intents != NULL) {
        cm_intents_free(st->intents);
        st->intents = c->intents;
        c->intents = NULL;
    }
    cm_conf_unref(st->conf);
    st->conf = conf;
    st->save_pending = st->path != NULL;
    dns_state_flush(st, st->put_ms != 0 ? st->put_ms : cm_mono_ms(), false);
    return CM_OK;
fail:
    cm_merged_free(merged);
    cm_intent_view_free(view);
    cm_conf_unref(conf);
    candidate_fini(c);
    return rc;
}

/* A candidate with @docs (taken, NULL: the held ones) and @intents (taken, NULL: the held ones),
 * compiled at the view's time. */
static int candidate_make(const struct dns_state *st, struct cm_store_cand *docs,
                          struct cm_intents *intents, int64_t now_s, struct candidate *c)
{
    c->conf = st->conf;
    c->docs = docs;
    c->intents = intents;
    c->now_s = now_s;
    if (c->docs == NULL && cm_store_copy(st->store, &c->docs) != CM_OK) {
        candidate_fini(c);
        return CM_ENOMEM;
    }
    return CM_OK;
}

int dns_state_put(struct dns_state *st, const char *text, size_t len, const char *writer,
                  uint64_t now_ms, char *err, size_t errlen)
{
    struct cm_store_cand *docs = NULL;
    const struct cm_state *accepted;
    struct candidate c;
    int rc;

    rc = cm_etcd_refuse_push(st->conf, "dnsd", err, errlen);
    if (rc != CM_OK)
        return rc;
    rc = cm_store_put(st->store, text, len, writer, st->conf, now_ms, &docs, err, errlen);
    if (rc != CM_OK || docs == NULL) /* refused, or an identical re-push */
        return rc;
    accepted = cm_store_cand_new_doc(docs);
    rc = candidate_make(st, docs, NULL, cm_wall_s(), &c);
    if (rc != CM_OK)
        return rc;
    /* A new generation saying what the held one says changes nothing: debug. */
    st->quiet = cm_store_cand_is_quiet(c.docs);
    st->put_ms = now_ms;
    rc = commit(st, &c, err, errlen);
    st->put_ms = 0;
    if (rc == CM_OK) /* the store owns it now */
        cm_log_at(st->quiet ? CM_LOG_DEBUG : CM_LOG_INFO,
                  "state accepted: vantage=%s generation=%" PRIu64 " changed=%s", accepted->vantage,
                  accepted->generation, st->quiet ? "false" : "true");
    st->quiet = false;
    return rc;
}

/* Makes the intents @next (taken) live, compiled at @now_s, with the held documents. */
static int commit_intents(struct dns_state *st, struct cm_intents *next, int64_t now_s, char *err,
                          size_t errlen)
{
    struct candidate c;
    int rc = candidate_make(st, NULL, next, now_s, &c);

    return rc == CM_OK ? commit(st, &c, err, errlen) : rc;
}

int dns_state_intent_put(struct dns_state *st, const char *text, size_t len, int64_t now_s,
                         bool *changed, char *err, size_t errlen)
{
    struct cm_intents *next = NULL;
    struct cm_intent *in = NULL;
    char id[CM_INTENT_ID_MAX + 1];
    bool removal;
    int rc;

    *changed = false;
    rc = cm_intent_parse_text(text, len, st->conf, &in, err, errlen);
    if (rc != CM_OK)
        return rc;
    cm_strlcpy(id, in->id, sizeof(id));
    removal = in->removed_at != 0;
    rc = cm_intents_put(st->intents, in, now_s, &next, err, errlen);
    if (rc != CM_OK || next == NULL)
        return rc;
    rc = commit_intents(st, next, now_s, err, errlen);
    if (rc == CM_OK) {
        const struct cm_intent *i = cm_intents_find(st->intents, id);

        *changed = true;
        cm_log_info("intent %s: id=%s kind=%s author=\"%s\" reason=\"%s\"",
                    removal ? "removed (delivered)" : "added", id, cm_intent_kind_name(i->kind),
                    removal ? i->removed_by : i->author, i->reason);
    }
    return rc;
}

void dns_state_intents_etcd(struct dns_state *st, struct cm_etcd_feed *f, int64_t now_s)
{
    struct cm_intents *next = NULL;
    char err[CM_STATE_ERR_MAX] = "";
    int rc = cm_etcd_feed_intents(f, st->intents, st->conf, now_s, &next);

    if (rc == CM_OK && next != NULL)
        rc = commit_intents(st, next, now_s, err, sizeof(err));
    if (rc != CM_OK)
        cm_log_error("etcd: intents: %s; keeping the previous ones",
                     err[0] != '\0' ? err : cm_strerror(rc));
    else if (next != NULL)
        cm_log_info("etcd: intents now: %zu active of %zu held",
                    cm_intents_active_count(st->intents, now_s), cm_intents_count(st->intents));
}

int dns_state_intent_remove(struct dns_state *st, const char *id, const char *by, int64_t now_s,
                            char *err, size_t errlen)
{
    struct cm_intents *next = NULL;
    int rc;

    rc = cm_intents_remove(st->intents, id, by, now_s, &next, err, errlen);
    if (rc != CM_OK || next == NULL)
        return rc;
    rc = commit_intents(st, next, now_s, err, errlen);
    if (rc == CM_OK)
        cm_log_info("intent removed: id=%s by=\"%s\"", id, by);
    return rc;
}

/* Active drain intents of member @name, into @ids (at most @cap); returns how many. */
static size_t active_drains(const struct dns_state *st, const char *name, int64_t now_s,
                            const char **ids, size_t cap)
{
    size_t n = 0;

    for (size_t i = 0; i < cm_intents_count(st->intents) && n < cap; i++) {
        const struct cm_intent *in = cm_intents_get(st->intents, i);

        if (in->kind == CM_INTENT_DRAIN && strcmp(in->member, name) == 0 &&
            cm_intent_is_active(in, now_s))
            ids[n++] = in->id;
    }
    return n;
}

/* The drain shorthand: a new drain intent by @by, as if it had been PUT. */
static int drain_add(struct dns_state *st, const char *member, const char *by, int64_t now_s,
                     char *err, size_t errlen)
{
    char id[CM_INTENT_ID_MAX + 1], created[32];
    bool changed = false;
    char *text;
    json_t *j;
    int rc;

    cm_intent_make_id(id, sizeof(id), CM_INTENT_DRAIN, member, now_s, cm_rand_next(&st->rnd));
    cm_time_format_rfc3339(now_s, created, sizeof(created));
    j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "id", id, "kind", "drain", "member", member,
                  "author", by, "reason", "PUT /v1/members/NAME/drain", "created_at", created);
    text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (text == NULL)
        return CM_ENOMEM;
    rc = dns_state_intent_put(st, text, strlen(text), now_s, &changed, err, errlen);
    free(text);
    return rc;
}

int dns_state_set_drain(struct dns_state *st, const char *member, bool drained, const char *by,
                        int64_t now_s, char *err, size_t errlen)
{
    const char *ids[64];
    char id[CM_INTENT_ID_MAX + 1];
    size_t n;
    int rc = CM_OK;

    n = active_drains(st, member, now_s, ids, sizeof(ids) / sizeof(ids[0]));
    /* An undrain may name a registry member no document places now. */
    if (cm_conf_member_index(st->conf, member) < 0 && (drained || n == 0)) {
        cm_errf(err, errlen, "unknown member \"%s\"", member);
        return CM_ENOENT;
    }
    if (drained)
        return n > 0 ? CM_OK : drain_add(st, member, by, now_s, err, errlen);
    /* Each removal changes the set (and the ids' storage): look again every time. */
    while (rc == CM_OK && active_drains(st, member, now_s, ids, 1) == 1) {
        cm_strlcpy(id, ids[0], sizeof(id));
        rc = dns_state_intent_remove(st, id, by, now_s, err, errlen);
    }
    return rc;
}

int dns_state_forget(struct dns_state *st, const char *vantage, char *err, size_t errlen)
{
    const struct cm_state *held = cm_store_find(st->store, vantage);
    struct cm_store_cand *docs = NULL;
    struct candidate c;
    uint64_t generation = held != NULL ? held->generation : 0;
    int rc;

    rc = cm_etcd_refuse_push(st->conf, "dnsd", err, errlen);
    if (rc != CM_OK)
        return rc;
    rc = cm_store_forget(st->store, vantage, &docs, err, errlen);
    if (rc == CM_OK)
        rc = candidate_make(st, docs, NULL, cm_wall_s(), &c);
    if (rc != CM_OK)
        return rc;
    rc = commit(st, &c, err, errlen);
    if (rc == CM_OK)
        cm_log_warn("vantage %s forgotten by the operator (it held generation %" PRIu64
                    "); its next document of any generation is accepted",
                    vantage, generation);
    return rc;
}

int dns_state_expire(struct dns_state *st, uint64_t now_ms)
{
    struct cm_store_cand *docs = NULL;
    struct candidate c;
    char err[CM_STATE_ERR_MAX];
    size_t dropped = 0;
    int rc;

    if (st->conf->etcd.present)
        return 0; /* a vantage is gone when its key is (its lease ran out): cm_etcd_feed */
    rc = cm_store_expire(st->store, now_ms, dns_state_expiry_ms(st->conf), &docs, &dropped);
    if (rc != CM_OK || docs == NULL)
        return rc;
    rc = candidate_make(st, docs, NULL, cm_wall_s(), &c);
    if (rc != CM_OK)
        return rc;
    rc = commit(st, &c, err, sizeof(err));
    if (rc != CM_OK) {
        cm_log_error("vantage expiry: cannot apply: %s; will retry", err);
        return rc;
    }
    return (int)dropped;
}

int dns_state_intents_tick(struct dns_state *st, int64_t now_s)
{
    struct cm_intents *pruned = NULL;
    struct candidate c;
    char err[CM_STATE_ERR_MAX] = "out of memory";
    int rc;

    rc = cm_intents_prune(st->intents, now_s, &pruned);
    if (rc != CM_OK)
        return rc;
    if (pruned == NULL && cm_intents_digest(st->intents, now_s) == st->view->digest)
        return CM_OK;
    rc = candidate_make(st, NULL, pruned, now_s, &c);
    if (rc == CM_OK)
        rc = commit(st, &c, err, sizeof(err));
    if (rc != CM_OK)
        cm_log_error("intents: cannot apply an expiry: %s; will retry", err);
    else
        cm_log_info("intents: %zu active after expiry", st->view->active_count);
    return rc;
}

int dns_state_apply(struct dns_state *st, struct cm_store_cand *docs, char *err, size_t errlen)
{
    struct candidate c;
    int rc;

    rc = candidate_make(st, docs, NULL, cm_wall_s(), &c);
    if (rc != CM_OK)
        return cm_err_oom(err, errlen, "state");
    st->quiet = cm_store_cand_is_quiet(c.docs);
    rc = commit(st, &c, err, errlen);
    st->quiet = false;
    return rc;
}

struct cm_store *dns_state_store(struct dns_state *st)
{
    return st->store;
}

int dns_state_set_conf(struct dns_state *st, struct cm_conf *conf, char *err, size_t errlen)
{
    struct candidate c = {.conf = conf, .now_s = cm_wall_s()};
    int rc;

    rc = cm_store_recheck(st->store, conf, "new configuration", &c.docs);
    if (rc != CM_OK)
        return rc;
    return commit(st, &c, err, errlen);
}

const struct cm_merged *dns_state_merged(const struct dns_state *st)
{
    return st->merged;
}

const struct cm_intents *dns_state_intents(const struct dns_state *st)
{
    return st->intents;
}

const struct cm_intent_view *dns_state_intent_view(const struct dns_state *st)
{
    return st->view;
}

bool dns_state_is_drained(const struct dns_state *st, size_t member)
{
    enum cm_intent_admin a = cm_intent_view_admin(st->view, member, NULL);

    return a == CM_ADMIN_DRAINED || a == CM_ADMIN_EVACUATED;
}

struct cm_conf *dns_state_conf(const struct dns_state *st)
{
    return st->conf;
}

struct cm_store_delta_counts dns_state_delta_counts(const struct dns_state *st)
{
    return cm_store_delta_counts(st->store);
}

uint64_t dns_state_save_failures(const struct dns_state *st)
{
    return st->save_failures;
}

bool dns_state_save_last_failed(const struct dns_state *st)
{
    return st->save_last_failed;
}

bool dns_state_is_quiet(const struct dns_state *st)
{
    return st->quiet;
}

size_t dns_state_vantage_count(const struct dns_state *st)
{
    return cm_store_count(st->store);
}

const struct cm_state *dns_state_vantage(const struct dns_state *st, size_t i,
                                         uint64_t *accepted_ms)
{
    return cm_store_get(st->store, i, accepted_ms);
}

static json_t *drained_json(const struct dns_state *st)
{
    json_t *arr = json_array();

    for (size_t i = 0; arr != NULL && i < st->conf->member_count; i++) {
        if (dns_state_is_drained(st, i))
            json_array_append_new(arr, json_string(st->conf->members[i].name));
    }
    return arr;
}

static json_t *merged_json(const struct dns_state *st)
{
    const struct cm_merged *m = st->merged;
    json_t *out = json_object();

    for (size_t s = 0; out != NULL && s < m->service_count; s++) {
        const struct cm_merged_service *svc = &m->services[s];
        json_t *members = json_object();

        for (size_t i = 0; members != NULL && i < m->member_count; i++) {
            const struct cm_merged_endpoint *ep = &svc->members[i];

            if (!ep->present)
                continue;
            json_object_set_new(members, st->conf->members[ep->member].name,
                                json_pack("{s:b,s:I,s:I,s:b,s:b}", "healthy", ep->healthy,
                                          "votes_up", (json_int_t)ep->votes_up, "votes_down",
                                          (json_int_t)ep->votes_down, "pending", ep->pending,
                                          "drained", dns_state_is_drained(st, ep->member)));
        }
        json_object_set_new(out, svc->key, members);
    }
    return out;
}

json_t *dns_state_digest_json(const struct dns_state *st, int64_t now_s)
{
    return cm_intents_digest_json(st->store, st->intents, now_s);
}

json_t *dns_state_to_json(const struct dns_state *st, uint64_t view_serial, int64_t now_s)
{
    json_t *vantages = json_object();

    for (size_t i = 0; vantages != NULL && i < cm_store_count(st->store); i++) {
        const struct cm_state *doc = cm_store_get(st->store, i, NULL);

        if (json_object_set_new(vantages, doc->vantage, cm_state_json(doc)) != 0) {
            json_decref(vantages);
            vantages = NULL;
        }
    }
    return json_pack("{s:i,s:o*,s:o*,s:o*,s:o*,s:o*,s:I}", "version", DNS_STATE_FILE_VERSION,
                     "vantages", vantages, "merged", merged_json(st), "drained", drained_json(st),
                     "intents", cm_intents_json(st->intents, now_s), "digest",
                     dns_state_digest_json(st, now_s), "view_serial", (json_int_t)view_serial);
}

/* ---- state file (cm_store's format, plus "intents") ---- */

int dns_state_save(const struct dns_state *st)
{
    char err[CM_STATE_ERR_MAX];
    json_t *extra;
    int rc;

    if (st->path == NULL)
        return CM_OK;
    extra = json_pack("{s:o*}", "intents", cm_intents_file_json(st->intents));
    if (extra == NULL)
        return CM_ENOMEM;
    /* The caller logs a failure with the path and the code. */
    rc = cm_store_save(st->store, st->path, extra, err, sizeof(err));
    json_decref(extra);
    return rc;
}

void dns_state_flush(struct dns_state *st, uint64_t now_ms, bool force)
{
    int rc;

    if (!st->save_pending)
        return;
    if (!force && st->saved_ms != 0 && now_ms - st->saved_ms < DNS_STATE_SAVE_INTERVAL_MS)
        return;
    rc = dns_state_save(st);
    st->saved_ms = now_ms != 0 ? now_ms : 1;
    st->save_pending = false;
    st->save_last_failed = rc != CM_OK;
    if (rc != CM_OK) {
        st->save_failures++;
        cm_log_warn("state file %s: cannot write: %s", st->path, cm_strerror(rc));
    }
}

/*
 * The drains of an older state file ("drained": [names]) as drain intents:
 * one implementation of a drain, and a restart after an upgrade keeps them.
 * @conf: what the file's documents are merged under.
 */
static int migrate_drains(const struct cm_conf *conf, const char *path, json_t *root, int64_t now_s,
                          struct cm_intents **set)
{
    json_t *names = json_object_get(root, "drained");
    char id[CM_INTENT_ID_MAX + 1], created[32], err[CM_INTENT_ERR_MAX];
    size_t i;
    json_t *name;

    if (names != NULL && !json_is_array(names))
        cm_log_warn("state file %s: \"drained\" ignored: not an array", path);
    cm_time_format_rfc3339(now_s > 0 ? now_s : 1, created, sizeof(created));
    json_array_foreach(names, i, name)
    {
        struct cm_intents *next = NULL;
        struct cm_intent *in = NULL;
        const char *m = json_string_value(name);
        json_t *j;
        int rc;

        if (m == NULL || cm_conf_member_index(conf, m) < 0) {
            cm_log_warn("state file %s: drained[%zu] skipped: not a configured member", path, i);
            continue;
        }
        snprintf(id, sizeof(id), "drain-%.40s-migrated", m);
        j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "id", id, "kind", "drain", "member", m, "author",
                      "fedgslb-dnsd", "reason",
                      "drained before drains were intents (state file migration)", "created_at",
                      created);
        rc = j != NULL ? cm_intent_parse(j, conf, &in, err, sizeof(err)) : CM_ENOMEM;
        json_decref(j);
        if (rc == CM_OK)
            rc = cm_intents_put(*set, in, now_s, &next, err, sizeof(err));
        if (rc == CM_ENOMEM)
            return rc;
        if (next != NULL) {
            cm_intents_free(*set);
            *set = next;
            cm_log_info("state file %s: drain of %s kept as intent %s", path, m, id);
        }
    }
    return CM_OK;
}

static int load_intents(const struct cm_conf *conf, const char *path, json_t *root, int64_t now_s,
                        struct cm_intents **out)
{
    json_t *arr = json_object_get(root, "intents");
    int rc;

    if (arr != NULL && !json_is_array(arr)) {
        cm_log_warn("state file %s: \"intents\" ignored: not an array", path);
        arr = NULL;
    }
    rc = cm_intents_load(arr, conf, path, out);
    if (rc == CM_OK)
        rc = migrate_drains(conf, path, root, now_s, out);
    if (rc != CM_OK) {
        cm_intents_free(*out);
        *out = NULL;
    }
    return rc;
}

int dns_state_load(struct dns_state *st, uint64_t now_ms, int64_t now_s, bool check, char *err,
                   size_t errlen)
{
    struct cm_store_loaded l;
    struct cm_merged *merged = NULL;
    struct cm_intent_view *view = NULL;
    struct cm_conf *conf = NULL;
    const struct cm_state *const *docs;
    struct cm_intents *intents = NULL;
    char why[CM_STATE_ERR_MAX * 2];
    size_t count;
    int rc;

    if (st->path == NULL)
        return CM_OK;
    rc = cm_store_load(st->path, st->conf, now_ms, check, &l, why, sizeof(why));
    if (rc == CM_ENOENT) {
        cm_log_info("state file %s: not found; starting with no state", st->path);
        return CM_OK;
    }
    if (rc == CM_ENOMEM)
        return rc;
    if (rc != CM_OK && check) {
        cm_errf(err, errlen, "%s", why);
        return rc;
    }
    if (rc != CM_OK) {
        cm_log_warn("state file unusable: %s; starting with no state", why);
        return CM_OK;
    }
    docs = cm_store_cand_docs(l.cand, &count);
    rc = cm_state_members_conf(st->conf, docs, count, NULL, &conf);
    if (rc == CM_OK)
        rc = load_intents(conf, st->path, l.root, now_s, &intents);
    if (rc == CM_OK)
        rc = cm_merged_build(docs, count, conf, &merged);
    if (rc == CM_OK)
        rc = cm_intent_view_build(intents, conf, now_s, &view);
    if (rc != CM_OK) {
        cm_merged_free(merged);
        cm_intents_free(intents);
        cm_conf_unref(conf);
        cm_store_loaded_fini(&l);
        return rc;
    }
    cm_conf_unref(st->conf);
    st->conf = conf;
    cm_merged_free(st->merged);
    st->merged = merged;
    cm_store_commit(st->store, l.cand);
    l.cand = NULL;
    cm_intents_free(st->intents);
    st->intents = intents;
    cm_intent_view_free(st->view);
    st->view = view;
    cm_log_info("state file %s%s: loaded %zu vantage document(s), %zu intent(s) (%zu active)",
                st->path, l.fell_back ? CM_FILE_PREV_SUFFIX : "", count, cm_intents_count(intents),
                view->active_count);
    cm_store_loaded_fini(&l);
    return CM_OK;
}
