/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_store.h -- the newest state document of every vantage, as dnsd and the
 * proxy hold them: the rules for accepting a push, expiry, forget, and the
 * state file. One store, one behaviour for both consumers.
 *
 *   PUT /v1/state --> cm_store_put ------+
 *   DELETE vantage -> cm_store_forget ---+--> candidate --> caller's apply
 *   timer ---------> cm_store_expire ----+    (docs)        (build a view,
 *   reload --------> cm_store_recheck ---+                   set pools)
 *   start ---------> cm_store_load ------+                      |
 *   etcd ----------> cm_store_replace ---+ (cm_etcd_feed)
 *                    cm_store_retain ----+
 *                                                       ok: cm_store_commit,
 *                                                           cm_store_save
 *                                                       else: cm_store_cand_free
 *
 * Every change is computed as a candidate (the document set the store would
 * hold) without touching the store. The caller builds whatever it derives
 * from the documents from cm_store_cand_docs(), and only if that succeeds
 * commits the candidate (and writes the state file); otherwise it frees the
 * candidate and nothing changed. The committed set is therefore always the
 * one the caller's derived data was built from.
 *
 * Rules (docs/architecture.md, "The state document"):
 *  - at most one document per vantage. A pushed document must parse under
 *    the configuration's address rule, come from a writer allowed to speak
 *    for its vantage and pass cm_state_check_conf;
 *  - a delta (cm_state_delta_apply: "base_generation" and the changed
 *    services) applies to the held document of its vantage when that has
 *    generation base_generation, else CM_EEXIST (409: send the whole
 *    document); the result then follows the rules of a whole document. A
 *    refresh (cm_state_delta_is_refresh: the held generation, no changes)
 *    is accepted without a change, as an identical re-push is;
 *  - it replaces the held one only when its generation is greater. The same
 *    generation with identical content (an idempotent re-push, e.g. a retry
 *    whose first answer was lost) is accepted without a change: it refreshes
 *    the vantage's liveness and needs no candidate. Any other document with
 *    a generation <= the held one is CM_EEXIST: "stale generation G <= H from
 *    vantage V" (same generation and different content says so);
 *  - a vantage whose last accepted push is older than the expiry limit is
 *    dropped, unless every held vantage is that old: then the last known
 *    state is kept (losing the health checkers is not an outage of members);
 *  - the state file is {"version": 1, "documents": [doc, ...], ...}: the
 *    caller may add its own members (dnsd: "drained"). Duplicate keys make
 *    the file invalid, a bare state document is refused as one, documents the
 *    configuration refuses are skipped with a warning, and of two documents of
 *    one vantage the higher generation is kept.
 *
 * Not thread-safe. Time is passed in (monotonic milliseconds).
 */
#ifndef COMMON_CM_STORE_H
#define COMMON_CM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct cm_conf;
struct cm_state;
struct cm_store;
struct cm_store_cand;

#define CM_STORE_FILE_VERSION 1

/** An empty store. NULL on allocation failure. */
struct cm_store *cm_store_new(void);
/** Frees the store and its documents. Accepts NULL. */
void cm_store_free(struct cm_store *s);

/** 3 x health.publish_interval_ms of @conf (10 s when not configured). */
uint64_t cm_store_expiry_ms(const struct cm_conf *conf);

/* ---- read access (borrowed; valid until the next commit) ---- */

size_t cm_store_count(const struct cm_store *s);
/** The @i-th document (NULL past the end) and when it was accepted. */
const struct cm_state *cm_store_get(const struct cm_store *s, size_t i, uint64_t *accepted_ms);
/** The documents as an array of cm_store_count() entries (for cm_merged_build). */
const struct cm_state *const *cm_store_docs(const struct cm_store *s);
/** @vantage's document, NULL when none is held. */
const struct cm_state *cm_store_find(const struct cm_store *s, const char *vantage);

/**
 * The digest of the documents a consumer answers from: FNV-1a 64 of every
 * held (vantage, generation), in vantage order, continued by @intents_digest
 * (cm_intents_digest). Two consumers with equal digests merge the same
 * generations and apply the same intents.
 */
uint64_t cm_store_digest(const struct cm_store *s, uint64_t intents_digest);

/* ---- candidates ---- */

/**
 * Validates the document or delta at @text (@len bytes) pushed by @writer
 * (NULL: the operator) under @conf (borrowed for the call) and computes the candidate
 * holding it. CM_OK with *out a candidate; CM_OK with *out NULL for an
 * identical re-push (the vantage's accepted time is set to @now_ms, nothing
 * else changes); CM_EPARSE / CM_ETOOBIG / CM_ESTATE for a bad document,
 * CM_EACCES for a writer limited to another vantage, CM_EEXIST for a stale
 * generation or a delta whose base is not held, CM_ENOMEM. A reason is in
 * @err on every failure.
 */
int cm_store_put(struct cm_store *s, const char *text, size_t len, const char *writer,
                 const struct cm_conf *conf, uint64_t now_ms, struct cm_store_cand **out, char *err,
                 size_t errlen);

/**
 * As cm_store_put, for a source that orders the documents itself (etcd: a
 * key's latest value is its vantage's current document): the document
 * replaces the held one whatever its generation; an identical one only
 * refreshes the vantage's time. @writer is the vantage the source says it is.
 */
int cm_store_replace(struct cm_store *s, const char *text, size_t len, const char *writer,
                     const struct cm_conf *conf, uint64_t now_ms, struct cm_store_cand **out,
                     char *err, size_t errlen);

/**
 * The candidate without the held vantages that are not among @names (@count
 * of them: the vantages the source still has), each logged. *out is NULL
 * when none would be dropped, or when every held one would (the source has
 * none of them: no key left, or only keys whose documents were refused): as
 * with expiry the last known state stays (warned once) until one publishes
 * again. *dropped is how many the candidate drops. CM_ENOMEM is the only
 * failure.
 */
int cm_store_retain(struct cm_store *s, const char *const *names, size_t count,
                    struct cm_store_cand **out, size_t *dropped);

/** The candidate without @vantage. CM_ENOENT (with a reason) when none is held. */
int cm_store_forget(const struct cm_store *s, const char *vantage, struct cm_store_cand **out,
                    char *err, size_t errlen);

/**
 * The candidate without the vantages last accepted more than @limit_ms before
 * @now_ms; each is logged. *out is NULL when none would be dropped, or when
 * every held vantage is that old (warned once until one publishes again).
 * *dropped is how many the candidate drops. CM_ENOMEM is the only failure.
 */
int cm_store_expire(struct cm_store *s, uint64_t now_ms, uint64_t limit_ms,
                    struct cm_store_cand **out, size_t *dropped);

/**
 * The candidate without the documents @conf refuses (cm_state_check_conf),
 * each logged with @what ("new configuration"). CM_ENOMEM is the only failure.
 */
int cm_store_recheck(const struct cm_store *s, const struct cm_conf *conf, const char *what,
                     struct cm_store_cand **out);

/* What became of the deltas pushed to cm_store_put (cm_state_delta_apply). */
struct cm_store_delta_counts {
    uint64_t applied;  /* committed */
    uint64_t conflict; /* base_generation not held: the sender sends the whole document */
    uint64_t rejected; /* invalid: the previous state kept */
};
struct cm_store_delta_counts cm_store_delta_counts(const struct cm_store *s);

/** A candidate equal to the store (for a change of the caller's own data). */
int cm_store_copy(const struct cm_store *s, struct cm_store_cand **out);

/** The candidate's documents (borrowed; valid until commit or free). */
const struct cm_state *const *cm_store_cand_docs(const struct cm_store_cand *c, size_t *count);
/**
 * For a cm_store_put candidate: the document that replaces a held one says
 * what it says (only generation and generated_at differ), so the caller may
 * log at debug.
 */
bool cm_store_cand_is_quiet(const struct cm_store_cand *c);
/** For a cm_store_put candidate: the new document (borrowed). NULL otherwise. */
const struct cm_state *cm_store_cand_new_doc(const struct cm_store_cand *c);

/**
 * Makes @c the store's contents (takes ownership of @c). @c must come from
 * @s with no commit in between, or from cm_store_load / cm_store_file_parse.
 */
void cm_store_commit(struct cm_store *s, struct cm_store_cand *c);
/** Discards a candidate; the store is unchanged. Accepts NULL. */
void cm_store_cand_free(struct cm_store_cand *c);

/* ---- the state file ---- */

/**
 * The state file's text: {"version":1,"documents":[...]} plus the members of
 * @extra (borrowed object, may be NULL), compact with sorted keys. Free with
 * free(). NULL on ENOMEM.
 */
char *cm_store_file_text(const struct cm_store *s, json_t *extra);

/** Writes @path atomically (cm_file_write_text_atomic). "path: why" in @err. */
int cm_store_save(const struct cm_store *s, const char *path, json_t *extra, char *err,
                  size_t errlen);

/* What cm_store_load found. */
struct cm_store_loaded {
    struct cm_store_cand *cand; /* owned: the documents that passed @conf */
    json_t *root;               /* owned reference: the whole file, for the caller's members */
    bool fell_back;             /* loaded from PATH.prev (PATH was unusable) */
    char reason[512];           /* why PATH was unusable when fell_back */
};

/**
 * Reads the state file @path (cm_file_load: PATH, else PATH.prev) into a
 * candidate of documents validated as a push would be under @conf (without
 * the writer check), each accepted at @now_ms. With @check (--check-config)
 * nothing on disk is touched and an unusable PATH fails with its reason even
 * when PATH.prev would do. CM_ENOENT when neither exists; CM_ENOMEM; any
 * other code means unusable, "PATH: reason" in @err. Release @out with
 * cm_store_loaded_fini() (after committing out->cand, set it to NULL).
 */
int cm_store_load(const char *path, const struct cm_conf *conf, uint64_t now_ms, bool check,
                  struct cm_store_loaded *out, char *err, size_t errlen);
void cm_store_loaded_fini(struct cm_store_loaded *l);

/**
 * Parses a state file's text (cm_store_load's parser, for tests and fuzzing).
 * @path names the file in warnings. On success *out is a candidate and, when
 * @root is not NULL, *root a new reference to the file. CM_EPARSE for invalid
 * JSON or duplicate keys, CM_ESTATE for a bare state document or another
 * shape or version, CM_ENOMEM.
 */
int cm_store_file_parse(const char *path, const char *text, size_t len, const struct cm_conf *conf,
                        uint64_t now_ms, struct cm_store_cand **out, json_t **root, char *err,
                        size_t errlen);

#endif /* COMMON_CM_STORE_H */
