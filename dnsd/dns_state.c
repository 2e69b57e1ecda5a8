/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_state.c -- the vantage documents, their merge, drains and the state file.
 *
 * Invariant: st->merged is the merge of st->docs under st->conf, and it is
 * what the owner's current view was built from. Every change goes through
 * commit(), which builds the candidate merge, calls apply, and only then
 * swaps the candidate in.
 */
#include "dnsd/dns_state.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_file.h"
#include "common/cm_log.h"
#include "common/cm_state.h"
#include "common/cm_str.h"
#include "dnsd/dns_fed.h"

#define DEFAULT_PUBLISH_INTERVAL_MS 10000u

struct vantage {
    struct cm_state *doc; /* owned */
    uint64_t accepted_ms; /* monotonic time of the last accepted push */
};

struct dns_state {
    struct cm_conf *conf; /* reference held */
    char *path;           /* owned; NULL = no state file */
    dns_state_apply_fn *apply;
    void *apply_arg;
    struct vantage *v; /* owned array of v_count */
    size_t v_count;
    bool *drained; /* owned, conf->member_count entries (NULL when 0 members) */
    struct cm_merged *merged;
    bool all_silent;        /* every vantage is past expiry; warned once */
    uint64_t save_failures; /* state file writes that failed */
    bool save_last_failed;  /* the last write failed */
    bool quiet;             /* the change being committed repeats what is held */
};

/* A change being prepared: what the store will hold if apply accepts it. */
struct candidate {
    struct cm_conf *conf; /* borrowed */
    struct vantage *v;    /* owned array */
    size_t v_count;
    bool *drained; /* owned */
};

static void errf(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

uint64_t dns_state_expiry_ms(const struct cm_conf *conf)
{
    uint64_t interval = DEFAULT_PUBLISH_INTERVAL_MS;

    if (conf->health.publish_interval_ms != 0)
        interval = conf->health.publish_interval_ms;
    return 3 * interval;
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
    st->drained = drained_alloc(conf->member_count);
    st->merged = merged_empty(conf);
    if (path != NULL)
        st->path = strdup(path);
    if (st->drained == NULL || st->merged == NULL || (path != NULL && st->path == NULL)) {
        dns_state_free(st);
        return NULL;
    }
    return st;
}

static void vantages_free(struct vantage *v, size_t count)
{
    for (size_t i = 0; i < count; i++)
        cm_state_free(v[i].doc);
    free(v);
}

void dns_state_free(struct dns_state *st)
{
    if (st == NULL)
        return;
    cm_merged_free(st->merged);
    vantages_free(st->v, st->v_count);
    free(st->drained);
    free(st->path);
    cm_conf_unref(st->conf);
    free(st);
}

static bool doc_in(const struct cm_state *doc, const struct vantage *v, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (v[i].doc == doc)
            return true;
    }
    return false;
}

static int merge_docs(const struct vantage *v, size_t count, struct cm_conf *conf,
                      struct cm_merged **out)
{
    const struct cm_state **docs = calloc(count > 0 ? count : 1, sizeof(*docs));
    int rc;

    if (docs == NULL)
        return CM_ENOMEM;
    for (size_t i = 0; i < count; i++)
        docs[i] = v[i].doc;
    rc = cm_merged_build(docs, count, conf, out);
    free(docs);
    return rc;
}

/*
 * Makes @c live. Takes ownership of the candidate's arrays either way. Docs in
 * the candidate but not in the store are new (freed on failure); docs in the
 * store but not in the candidate are dropped (freed on success).
 */
static int commit(struct dns_state *st, struct candidate *c, char *err, size_t errlen)
{
    struct cm_merged *merged = NULL;
    struct dns_drains drains = {.drained = c->drained};
    int rc;

    rc = merge_docs(c->v, c->v_count, c->conf, &merged);
    if (rc != CM_OK) {
        errf(err, errlen, "cannot merge state: %s", cm_strerror(rc));
        goto fail;
    }
    if (st->apply != NULL) {
        rc = st->apply(st->apply_arg, c->conf, merged, &drains, err, errlen);
        if (rc != CM_OK)
            goto fail;
    }
    cm_merged_free(st->merged);
    st->merged = merged;
    for (size_t i = 0; i < st->v_count; i++) {
        if (!doc_in(st->v[i].doc, c->v, c->v_count))
            cm_state_free(st->v[i].doc);
    }
    free(st->v);
    st->v = c->v;
    st->v_count = c->v_count;
    free(st->drained);
    st->drained = c->drained;
    if (c->conf != st->conf) {
        cm_conf_unref(st->conf);
        st->conf = cm_conf_ref(c->conf);
    }
    rc = dns_state_save(st);
    st->save_last_failed = rc != CM_OK;
    if (rc != CM_OK) {
        st->save_failures++;
        cm_log_warn("state file %s: cannot write: %s", st->path, cm_strerror(rc));
    }
    return CM_OK;
fail:
    cm_merged_free(merged);
    for (size_t i = 0; i < c->v_count; i++) {
        if (!doc_in(c->v[i].doc, st->v, st->v_count))
            cm_state_free(c->v[i].doc);
    }
    free(c->v);
    free(c->drained);
    return rc;
}

/* A candidate equal to the current store (arrays copied, docs shared). */
static int candidate_copy(const struct dns_state *st, size_t extra, struct candidate *c)
{
    c->conf = st->conf;
    c->v_count = st->v_count;
    c->v = calloc(st->v_count + extra + 1, sizeof(*c->v));
    c->drained = drained_alloc(st->conf->member_count);
    if (c->v == NULL || c->drained == NULL) {
        free(c->v);
        free(c->drained);
        return CM_ENOMEM;
    }
    if (st->v_count > 0)
        memcpy(c->v, st->v, st->v_count * sizeof(*c->v));
    memcpy(c->drained, st->drained, st->conf->member_count * sizeof(bool));
    return CM_OK;
}

static ssize_t vantage_find(const struct vantage *v, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++) {
        if (strcmp(v[i].doc->vantage, name) == 0)
            return (ssize_t)i;
    }
    return -1;
}

/* Whether @a and @b differ only in generation and generated_at. */
static bool same_content(const struct cm_state *a, const struct cm_state *b)
{
    json_t *ca = json_copy(a->json);
    json_t *cb = json_copy(b->json);
    bool same = false;

    if (ca != NULL && cb != NULL) {
        json_object_del(ca, "generation");
        json_object_del(ca, "generated_at");
        json_object_del(cb, "generation");
        json_object_del(cb, "generated_at");
        same = json_equal(ca, cb);
    }
    json_decref(ca);
    json_decref(cb);
    return same;
}

int dns_state_put(struct dns_state *st, const char *text, size_t len, const char *writer,
                  uint64_t now_ms, char *err, size_t errlen)
{
    struct cm_state *doc = NULL;
    const struct cm_state *accepted;
    struct cm_state_opts opts;
    struct candidate c;
    ssize_t held;
    int rc;

    cm_state_opts_from_conf(&opts, st->conf);
    rc = cm_state_parse(text, len, &opts, &doc, err, errlen);
    if (rc != CM_OK)
        return rc;
    rc = cm_state_check_writer(doc, writer, err, errlen);
    if (rc == CM_OK)
        rc = cm_state_check_conf(doc, st->conf, err, errlen);
    if (rc != CM_OK)
        goto out;
    held = vantage_find(st->v, st->v_count, doc->vantage);
    if (held >= 0) {
        const struct cm_state *old = st->v[held].doc;

        if (doc->generation == old->generation && json_equal(doc->json, old->json)) {
            st->v[held].accepted_ms = now_ms; /* idempotent re-push: the vantage is alive */
            rc = CM_OK;
            goto out;
        }
        if (doc->generation <= old->generation) {
            errf(err, errlen, "stale generation %" PRIu64 " <= %" PRIu64 " from vantage %s",
                 doc->generation, old->generation, doc->vantage);
            rc = CM_EEXIST;
            goto out;
        }
    }
    rc = candidate_copy(st, 1, &c);
    if (rc != CM_OK)
        goto out;
    if (held >= 0) {
        c.v[held].doc = doc;
        c.v[held].accepted_ms = now_ms;
    } else {
        c.v[c.v_count].doc = doc;
        c.v[c.v_count].accepted_ms = now_ms;
        c.v_count++;
    }
    accepted = doc;
    doc = NULL; /* the candidate owns it now */
    /* A new generation saying what the held one says changes nothing: debug. */
    st->quiet = held >= 0 && same_content(st->v[held].doc, accepted);
    rc = commit(st, &c, err, errlen);
    if (rc == CM_OK) /* the store owns it now */
        cm_log_at(st->quiet ? CM_LOG_DEBUG : CM_LOG_INFO,
                  "state accepted: vantage=%s generation=%" PRIu64 " changed=%s", accepted->vantage,
                  accepted->generation, st->quiet ? "false" : "true");
    st->quiet = false;
out:
    cm_state_free(doc);
    return rc;
}

int dns_state_set_drain(struct dns_state *st, const char *member, bool drained, char *err,
                        size_t errlen)
{
    struct candidate c;
    int idx = cm_conf_member_index(st->conf, member);
    int rc;

    if (idx < 0) {
        errf(err, errlen, "unknown member \"%s\"", member);
        return CM_ENOENT;
    }
    if (st->drained[idx] == drained)
        return CM_OK;
    rc = candidate_copy(st, 0, &c);
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
    ssize_t idx = vantage_find(st->v, st->v_count, vantage);
    struct candidate c;
    uint64_t generation;
    int rc;

    if (idx < 0)
        return CM_ENOENT;
    generation = st->v[idx].doc->generation;
    rc = candidate_copy(st, 0, &c);
    if (rc != CM_OK)
        return rc;
    memmove(&c.v[idx], &c.v[idx + 1], (c.v_count - (size_t)idx - 1) * sizeof(*c.v));
    c.v_count--;
    rc = commit(st, &c, err, errlen);
    if (rc == CM_OK)
        cm_log_warn("vantage %s forgotten by the operator (it held generation %" PRIu64
                    "); its next document of any generation is accepted",
                    vantage, generation);
    return rc;
}

int dns_state_expire(struct dns_state *st, uint64_t now_ms)
{
    uint64_t limit = dns_state_expiry_ms(st->conf);
    struct candidate c;
    char err[CM_STATE_ERR_MAX];
    size_t kept = 0;
    int dropped = 0;
    int rc;

    for (size_t i = 0; i < st->v_count; i++) {
        if (now_ms > st->v[i].accepted_ms && now_ms - st->v[i].accepted_ms > limit)
            dropped++;
    }
    if (dropped == 0) {
        st->all_silent = false;
        return 0;
    }
    /*
     * When every vantage has gone silent, the health checkers (or the path to
     * them) failed, not the members: keep serving the last known state rather
     * than dropping to an empty merge. Losing the control plane is not an
     * outage. The per-vantage age is in the metrics.
     */
    if ((size_t)dropped == st->v_count) {
        if (!st->all_silent)
            cm_log_warn("every vantage silent for more than %" PRIu64
                        " ms: keeping the last known state until one publishes again",
                        limit);
        st->all_silent = true;
        return 0;
    }
    st->all_silent = false;
    rc = candidate_copy(st, 0, &c);
    if (rc != CM_OK)
        return rc;
    for (size_t i = 0; i < st->v_count; i++) {
        if (now_ms > st->v[i].accepted_ms && now_ms - st->v[i].accepted_ms > limit)
            continue;
        c.v[kept++] = st->v[i];
    }
    c.v_count = kept;
    for (size_t i = 0; i < st->v_count; i++) {
        if (now_ms > st->v[i].accepted_ms && now_ms - st->v[i].accepted_ms > limit)
            cm_log_warn("vantage %s expired: no document for %" PRIu64 " ms (limit %" PRIu64
                        " ms, generation %" PRIu64 "); dropping it from the merge",
                        st->v[i].doc->vantage, now_ms - st->v[i].accepted_ms, limit,
                        st->v[i].doc->generation);
    }
    rc = commit(st, &c, err, sizeof(err));
    if (rc != CM_OK) {
        cm_log_error("vantage expiry: cannot apply: %s; will retry", err);
        return rc;
    }
    return dropped;
}

int dns_state_set_conf(struct dns_state *st, struct cm_conf *conf, char *err, size_t errlen)
{
    struct candidate c = {.conf = conf};
    char why[CM_STATE_ERR_MAX];

    c.v = calloc(st->v_count + 1, sizeof(*c.v));
    c.drained = drained_alloc(conf->member_count);
    if (c.v == NULL || c.drained == NULL) {
        free(c.v);
        free(c.drained);
        return CM_ENOMEM;
    }
    for (size_t i = 0; i < st->v_count; i++) {
        if (cm_state_check_conf(st->v[i].doc, conf, why, sizeof(why)) != CM_OK) {
            cm_log_warn("state of vantage %s dropped by the new configuration: %s",
                        st->v[i].doc->vantage, why);
            continue;
        }
        c.v[c.v_count++] = st->v[i];
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
    return st->v_count;
}

const struct cm_state *dns_state_vantage(const struct dns_state *st, size_t i,
                                         uint64_t *accepted_ms)
{
    if (i >= st->v_count)
        return NULL;
    if (accepted_ms != NULL)
        *accepted_ms = st->v[i].accepted_ms;
    return st->v[i].doc;
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

    for (size_t i = 0; vantages != NULL && i < st->v_count; i++)
        json_object_set(vantages, st->v[i].doc->vantage, st->v[i].doc->json);
    return json_pack("{s:i,s:o*,s:o*,s:o*,s:I}", "version", DNS_STATE_FILE_VERSION, "vantages",
                     vantages, "merged", merged_json(st), "drained", drained_json(st),
                     "view_serial", (json_int_t)view_serial);
}

/* ---- state file ---- */

static char *state_file_text(const struct dns_state *st)
{
    json_t *docs = json_array();
    json_t *root;
    char *text;

    for (size_t i = 0; docs != NULL && i < st->v_count; i++)
        json_array_append(docs, st->v[i].doc->json);
    root = json_pack("{s:i,s:o*,s:o*}", "version", DNS_STATE_FILE_VERSION, "documents", docs,
                     "drained", drained_json(st));
    if (root == NULL)
        return NULL;
    text = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    return text;
}

int dns_state_save(const struct dns_state *st)
{
    char err[CM_STATE_ERR_MAX];
    char *text;
    int rc;

    if (st->path == NULL)
        return CM_OK;
    text = state_file_text(st);
    if (text == NULL)
        return CM_ENOMEM;
    /* The caller logs a failure with the path and the code. */
    rc = cm_file_write_text_atomic(st->path, text, 0600, err, sizeof(err));
    free(text);
    return rc;
}

/* Keeps the newest document per vantage in @v (takes ownership of @doc). */
static void loaded_add(struct vantage *v, size_t *count, struct cm_state *doc, uint64_t now_ms)
{
    ssize_t i = vantage_find(v, *count, doc->vantage);

    if (i < 0) {
        v[*count].doc = doc;
        v[*count].accepted_ms = now_ms;
        (*count)++;
    } else if (doc->generation > v[i].doc->generation) {
        cm_state_free(v[i].doc);
        v[i].doc = doc;
    } else {
        cm_state_free(doc);
    }
}

static int load_documents(struct dns_state *st, const char *path, json_t *docs,
                          struct vantage **out, size_t *out_count, uint64_t now_ms)
{
    size_t n = json_array_size(docs);
    struct vantage *v = calloc(n + 1, sizeof(*v));
    size_t count = 0;
    struct cm_state_opts opts;

    if (v == NULL)
        return CM_ENOMEM;
    cm_state_opts_from_conf(&opts, st->conf);
    for (size_t i = 0; i < n; i++) {
        struct cm_state *doc = NULL;
        char err[CM_STATE_ERR_MAX];
        int rc = cm_state_from_json(json_array_get(docs, i), &opts, &doc, err, sizeof(err));

        if (rc == CM_OK)
            rc = cm_state_check_conf(doc, st->conf, err, sizeof(err));
        if (rc == CM_ENOMEM) {
            cm_state_free(doc);
            vantages_free(v, count);
            return rc;
        }
        if (rc != CM_OK) {
            cm_log_warn("state file %s: documents[%zu] skipped: %s", path, i, err);
            cm_state_free(doc);
            continue;
        }
        loaded_add(v, &count, doc, now_ms);
    }
    *out = v;
    *out_count = count;
    return CM_OK;
}

static void load_drains(struct dns_state *st, const char *path, json_t *names, bool *drained)
{
    size_t i;
    json_t *name;

    json_array_foreach(names, i, name)
    {
        int idx =
            json_is_string(name) ? cm_conf_member_index(st->conf, json_string_value(name)) : -1;

        if (idx < 0)
            cm_log_warn("state file %s: drained[%zu] skipped: not a configured member", path, i);
        else
            drained[idx] = true;
    }
}

/* What a state file holds, parsed and merged, before it replaces the store. */
struct loaded {
    struct dns_state *st; /* borrowed */
    uint64_t now_ms;
    struct vantage *v; /* owned */
    size_t count;
    bool *drained; /* owned */
    struct cm_merged *merged;
};

static void loaded_fini(struct loaded *l)
{
    vantages_free(l->v, l->count);
    free(l->drained);
    cm_merged_free(l->merged);
    l->v = NULL;
    l->count = 0;
    l->drained = NULL;
    l->merged = NULL;
}

/* cm_file_parse_fn: a dnsd state file {"version":1,"documents":[...],"drained":[...]}. */
static int parse_state_file(void *arg, const char *path, const char *text, size_t len, char *err,
                            size_t errlen)
{
    struct loaded *l = arg;
    json_error_t jerr;
    json_t *root, *docs, *drains;
    int rc = CM_ESTATE;

    loaded_fini(l);
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        errf(err, errlen, "invalid JSON at line %d column %d: %s", jerr.line, jerr.column,
             jerr.text);
        return CM_EPARSE;
    }
    docs = json_object_get(root, "documents");
    drains = json_object_get(root, "drained");
    if (!json_is_object(root) || json_integer_value(json_object_get(root, "version")) != 1 ||
        !json_is_array(docs) || (drains != NULL && !json_is_array(drains))) {
        errf(err, errlen, "not a version 1 dnsd state file");
        goto out;
    }
    rc = load_documents(l->st, path, docs, &l->v, &l->count, l->now_ms);
    if (rc == CM_OK) {
        l->drained = drained_alloc(l->st->conf->member_count);
        rc = l->drained != NULL ? CM_OK : CM_ENOMEM;
    }
    if (rc == CM_OK) {
        load_drains(l->st, path, drains, l->drained);
        rc = merge_docs(l->v, l->count, l->st->conf, &l->merged);
    }
    if (rc != CM_OK) {
        errf(err, errlen, "%s", cm_strerror(rc));
        loaded_fini(l);
    }
out:
    json_decref(root);
    return rc;
}

int dns_state_load(struct dns_state *st, uint64_t now_ms, bool check, char *err, size_t errlen)
{
    struct loaded l = {.st = st, .now_ms = now_ms};
    struct cm_file_load_info info;
    char why[CM_STATE_ERR_MAX * 2];
    int rc;

    if (st->path == NULL)
        return CM_OK;
    rc =
        cm_file_load(st->path, CM_STATE_FILE_MAX_BYTES, parse_state_file, &l,
                     check ? CM_FILE_LOAD_READONLY : CM_FILE_LOAD_DEFAULT, &info, why, sizeof(why));
    if (rc == CM_ENOENT) {
        cm_log_info("state file %s: not found; starting with no state", st->path);
        return CM_OK;
    }
    if (rc == CM_ENOMEM)
        return rc;
    if (check && (rc != CM_OK || info.fell_back)) {
        errf(err, errlen, "%s", rc != CM_OK ? why : info.reason);
        loaded_fini(&l);
        return rc != CM_OK ? rc : CM_ESTATE;
    }
    if (rc != CM_OK) {
        cm_log_warn("state file unusable: %s; starting with no state", why);
        return CM_OK;
    }
    cm_merged_free(st->merged);
    st->merged = l.merged;
    vantages_free(st->v, st->v_count);
    st->v = l.v;
    st->v_count = l.count;
    free(st->drained);
    st->drained = l.drained;
    cm_log_info("state file %s%s: loaded %zu vantage document(s)", st->path,
                info.fell_back ? CM_FILE_PREV_SUFFIX : "", st->v_count);
    return CM_OK;
}
