/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_state.c -- the vantage documents, their merge, drains and the state file.
 *
 * The documents live in a cm_store (common/cm_store.h), which owns the rules
 * for accepting, expiring and forgetting them and the state file format.
 *
 * Invariant: st->merged is the merge of the store's documents under
 * st->conf, and it is what the owner's current view was built from. st->conf
 * is the loaded configuration extended with the registry members the
 * documents place (members_from; cm_state_members_conf), so member indexes
 * (drains, the merge, the view) follow the documents. Every
 * change goes through commit(), which builds the merge of a cm_store
 * candidate, calls apply, and only then commits the candidate.
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
#include "common/cm_log.h"
#include "common/cm_state.h"
#include "common/cm_store.h"
#include "common/cm_str.h"
#include "dnsd/dns_rank.h"

struct dns_state {
    struct cm_conf *conf; /* reference held */
    char *path;           /* owned; NULL = no state file */
    dns_state_apply_fn *apply;
    void *apply_arg;
    struct cm_store *store; /* owned: the documents (common/cm_store) */
    bool *drained;          /* owned, conf->member_count entries (NULL when 0 members) */
    struct cm_merged *merged;
    uint64_t save_failures; /* state file writes that failed */
    bool save_last_failed;  /* the last write failed */
    bool quiet;             /* the change being committed repeats what is held */
};

/* A change being prepared: what the store will hold if apply accepts it. */
struct candidate {
    struct cm_conf *conf;       /* borrowed */
    struct cm_store_cand *docs; /* owned */
    bool *drained;              /* owned */
};

uint64_t dns_state_expiry_ms(const struct cm_conf *conf)
{
    return cm_store_expiry_ms(conf);
}

static bool *drained_alloc(size_t count)
{
    return calloc(count > 0 ? count : 1, sizeof(bool));
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
    st->drained = drained_alloc(conf->member_count);
    st->merged = merged_empty(conf);
    if (path != NULL)
        st->path = strdup(path);
    if (st->store == NULL || st->drained == NULL || st->merged == NULL ||
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
    cm_merged_free(st->merged);
    cm_store_free(st->store);
    free(st->drained);
    free(st->path);
    cm_conf_unref(st->conf);
    free(st);
}

static void candidate_fini(struct candidate *c)
{
    cm_store_cand_free(c->docs);
    free(c->drained);
    c->docs = NULL;
    c->drained = NULL;
}

/*
 * The configuration @docs are merged under (registry members the documents
 * place join the configured ones: cm_state_members_conf), and @drained
 * (indexed by @from's members) carried over to it by name. New reference and
 * array, or CM_ENOMEM.
 */
static int members_conf(const struct dns_state *st, struct cm_conf *from, const bool *drained,
                        const struct cm_state *const *docs, size_t count, struct cm_conf **conf,
                        bool **out)
{
    int rc = cm_state_members_conf(from, docs, count, st->conf, conf);

    if (rc != CM_OK)
        return rc;
    *out = drained_alloc((*conf)->member_count);
    if (*out == NULL) {
        cm_conf_unref(*conf);
        *conf = NULL;
        return CM_ENOMEM;
    }
    for (size_t i = 0; i < from->member_count; i++) {
        int idx = drained[i] ? cm_conf_member_index(*conf, from->members[i].name) : -1;

        if (idx >= 0)
            (*out)[idx] = true;
        else if (drained[i])
            cm_log_info("drain of member %s dropped: no document places it any more",
                        from->members[i].name);
    }
    return CM_OK;
}

/*
 * Makes @c live. Takes ownership of the candidate either way: on success its
 * documents become the store's (cm_store_commit), else they are discarded.
 */
static int commit(struct dns_state *st, struct candidate *c, char *err, size_t errlen)
{
    struct cm_merged *merged = NULL;
    struct cm_conf *conf = NULL;
    bool *drained = NULL;
    struct dns_drains drains;
    const struct cm_state *const *docs;
    size_t count;
    int rc;

    docs = cm_store_cand_docs(c->docs, &count);
    rc = members_conf(st, c->conf, c->drained, docs, count, &conf, &drained);
    if (rc == CM_OK)
        rc = cm_merged_build(docs, count, conf, &merged);
    if (rc != CM_OK) {
        cm_errf(err, errlen, "cannot merge state: %s", cm_strerror(rc));
        goto fail;
    }
    drains.drained = drained;
    if (st->apply != NULL) {
        rc = st->apply(st->apply_arg, conf, merged, &drains, err, errlen);
        if (rc != CM_OK)
            goto fail;
    }
    cm_merged_free(st->merged);
    st->merged = merged;
    cm_store_commit(st->store, c->docs);
    c->docs = NULL;
    candidate_fini(c);
    free(st->drained);
    st->drained = drained;
    cm_conf_unref(st->conf);
    st->conf = conf;
    rc = dns_state_save(st);
    st->save_last_failed = rc != CM_OK;
    if (rc != CM_OK) {
        st->save_failures++;
        cm_log_warn("state file %s: cannot write: %s", st->path, cm_strerror(rc));
    }
    return CM_OK;
fail:
    cm_merged_free(merged);
    free(drained);
    cm_conf_unref(conf);
    candidate_fini(c);
    return rc;
}

/* A candidate with @docs (taken) and the current drains. */
static int candidate_make(const struct dns_state *st, struct cm_store_cand *docs,
                          struct candidate *c)
{
    c->conf = st->conf;
    c->docs = docs;
    c->drained = drained_alloc(st->conf->member_count);
    if (c->drained == NULL) {
        candidate_fini(c);
        return CM_ENOMEM;
    }
    memcpy(c->drained, st->drained, st->conf->member_count * sizeof(bool));
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
    rc = candidate_make(st, docs, &c);
    if (rc != CM_OK)
        return rc;
    /* A new generation saying what the held one says changes nothing: debug. */
    st->quiet = cm_store_cand_is_quiet(c.docs);
    rc = commit(st, &c, err, errlen);
    if (rc == CM_OK) /* the store owns it now */
        cm_log_at(st->quiet ? CM_LOG_DEBUG : CM_LOG_INFO,
                  "state accepted: vantage=%s generation=%" PRIu64 " changed=%s", accepted->vantage,
                  accepted->generation, st->quiet ? "false" : "true");
    st->quiet = false;
    return rc;
}

int dns_state_set_drain(struct dns_state *st, const char *member, bool drained, char *err,
                        size_t errlen)
{
    struct cm_store_cand *docs = NULL;
    struct candidate c;
    int idx = cm_conf_member_index(st->conf, member);
    int rc;

    if (idx < 0) {
        cm_errf(err, errlen, "unknown member \"%s\"", member);
        return CM_ENOENT;
    }
    if (st->drained[idx] == drained)
        return CM_OK;
    rc = cm_store_copy(st->store, &docs);
    if (rc == CM_OK)
        rc = candidate_make(st, docs, &c);
    if (rc != CM_OK)
        return rc;
    c.drained[idx] = drained;
    rc = commit(st, &c, err, errlen);
    if (rc == CM_OK)
        cm_log_info("member %s: drained=%s", member, drained ? "true" : "false");
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
        rc = candidate_make(st, docs, &c);
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
    rc = candidate_make(st, docs, &c);
    if (rc != CM_OK)
        return rc;
    rc = commit(st, &c, err, sizeof(err));
    if (rc != CM_OK) {
        cm_log_error("vantage expiry: cannot apply: %s; will retry", err);
        return rc;
    }
    return (int)dropped;
}

int dns_state_apply(struct dns_state *st, struct cm_store_cand *docs, char *err, size_t errlen)
{
    struct candidate c;
    int rc;

    rc = candidate_make(st, docs, &c);
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
    struct candidate c = {.conf = conf};
    int rc;

    rc = cm_store_recheck(st->store, conf, "new configuration", &c.docs);
    if (rc != CM_OK)
        return rc;
    c.drained = drained_alloc(conf->member_count);
    if (c.drained == NULL) {
        candidate_fini(&c);
        return CM_ENOMEM;
    }
    for (size_t i = 0; i < st->conf->member_count; i++) {
        int idx;

        if (!st->drained[i])
            continue;
        idx = cm_conf_member_index(conf, st->conf->members[i].name);
        if (idx < 0)
            cm_log_warn("drain of member %s dropped: not in the new configuration",
                        st->conf->members[i].name);
        else
            c.drained[idx] = true;
    }
    return commit(st, &c, err, errlen);
}

const struct cm_merged *dns_state_merged(const struct dns_state *st)
{
    return st->merged;
}

void dns_state_drains(const struct dns_state *st, struct dns_drains *out)
{
    out->drained = st->drained;
}

bool dns_state_is_drained(const struct dns_state *st, size_t member)
{
    return member < st->conf->member_count && st->drained[member];
}

struct cm_conf *dns_state_conf(const struct dns_state *st)
{
    return st->conf;
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
        if (st->drained[i])
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

json_t *dns_state_to_json(const struct dns_state *st, uint64_t view_serial)
{
    json_t *vantages = json_object();

    for (size_t i = 0; vantages != NULL && i < cm_store_count(st->store); i++) {
        const struct cm_state *doc = cm_store_get(st->store, i, NULL);

        json_object_set(vantages, doc->vantage, doc->json);
    }
    return json_pack("{s:i,s:o*,s:o*,s:o*,s:I}", "version", DNS_STATE_FILE_VERSION, "vantages",
                     vantages, "merged", merged_json(st), "drained", drained_json(st),
                     "view_serial", (json_int_t)view_serial);
}

/* ---- state file (cm_store's format, plus "drained") ---- */

int dns_state_save(const struct dns_state *st)
{
    char err[CM_STATE_ERR_MAX];
    json_t *extra;
    int rc;

    if (st->path == NULL)
        return CM_OK;
    extra = json_pack("{s:o*}", "drained", drained_json(st));
    if (extra == NULL)
        return CM_ENOMEM;
    /* The caller logs a failure with the path and the code. */
    rc = cm_store_save(st->store, st->path, extra, err, sizeof(err));
    json_decref(extra);
    return rc;
}

static int load_drains(const struct cm_conf *conf, const char *path, json_t *root, bool **out)
{
    json_t *names = json_object_get(root, "drained");
    bool *drained = drained_alloc(conf->member_count);
    size_t i;
    json_t *name;

    if (drained == NULL)
        return CM_ENOMEM;
    if (names != NULL && !json_is_array(names))
        cm_log_warn("state file %s: \"drained\" ignored: not an array", path);
    json_array_foreach(names, i, name)
    {
        int idx = json_is_string(name) ? cm_conf_member_index(conf, json_string_value(name)) : -1;

        if (idx < 0)
            cm_log_warn("state file %s: drained[%zu] skipped: not a configured member", path, i);
        else
            drained[idx] = true;
    }
    *out = drained;
    return CM_OK;
}

int dns_state_load(struct dns_state *st, uint64_t now_ms, bool check, char *err, size_t errlen)
{
    struct cm_store_loaded l;
    struct cm_merged *merged = NULL;
    struct cm_conf *conf = NULL;
    const struct cm_state *const *docs;
    bool *drained = NULL;
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
        rc = load_drains(conf, st->path, l.root, &drained);
    if (rc == CM_OK)
        rc = cm_merged_build(docs, count, conf, &merged);
    if (rc != CM_OK) {
        free(drained);
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
    free(st->drained);
    st->drained = drained;
    cm_log_info("state file %s%s: loaded %zu vantage document(s)", st->path,
                l.fell_back ? CM_FILE_PREV_SUFFIX : "", count);
    cm_store_loaded_fini(&l);
    return CM_OK;
}
