/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dns_state.h -- what dnsd answers from: the last accepted state document of
 * every vantage, their merge, and the operator's intents (drains, forced
 * states, evacuations, weights, priorities), kept in the state file across
 * restarts.
 *
 *   PUT /v1/state -----> dns_state_put ----------+
 *   PUT /v1/intents/ID > dns_state_intent_put ---+
 *   DELETE intent -----> dns_state_intent_remove +--> candidate --> apply(conf,
 *   drain / undrain ---> dns_state_set_drain ----+    merge,         merged,
 *   1 s timer ---------> dns_state_expire, _tick +    intent view    intents)
 *   SIGHUP ------------> dns_state_set_conf -----+                   = a view
 *
 * Every change is computed as a candidate (documents + intents), merged and
 * compiled (cm_intent_view_build), and handed to the owner's apply callback
 * (which builds a new dns_view and hands it to the server). Only when apply
 * succeeds is the candidate committed and the state file rewritten
 * (atomically); otherwise nothing changes and the caller gets the reason. So
 * the merge and the intent view held here are always those the current view
 * was built from, and /v1/explain can use them.
 *
 * The documents are held in a cm_store (common/cm_store.h), which has the
 * rules, shared with the proxy: at most one document per vantage, newer by
 * generation, an identical re-push accepted as a sign of life (it only
 * refreshes the vantage's age), anything else of a generation <= the held
 * one CM_EEXIST; expiry after dns_state_expiry_ms() unless every vantage is
 * that old; the state file format. The intents are a cm_intents set
 * (common/cm_intent.h) with its rules (ids, tombstones, expiry). dnsd adds
 * the merge, and the apply callback that turns a candidate into a view.
 *
 * The drains of earlier versions ("drained" in the state file, PUT and
 * DELETE /v1/members/NAME/drain) are drain intents now.
 *
 * Not thread-safe: everything runs in the main thread. Time is passed in
 * (monotonic milliseconds for vantage ages, wall seconds for intents) so
 * tests need no clock.
 */
#ifndef DNSD_DNS_STATE_H
#define DNSD_DNS_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/cm_store.h"

struct cm_conf;
struct cm_intent_view;
struct cm_intents;
struct cm_merged;
struct cm_state;
struct cm_store;
struct cm_store_cand;
struct dns_state;

#define DNS_STATE_FILE_VERSION 1

/**
 * Makes a candidate live (normally: builds a view from it). @conf, @merged and
 * @intents are borrowed for the call. Returns CM_OK, or a CM_* code with a
 * reason in @err, in which case the candidate is discarded.
 */
typedef int dns_state_apply_fn(void *arg, struct cm_conf *conf, const struct cm_merged *merged,
                               const struct cm_intent_view *intents, char *err, size_t errlen);

/**
 * A new, empty store for @conf (a reference is taken). @path is the state
 * file (copied; NULL = none). @apply may be NULL (every candidate accepted).
 * NULL on allocation failure.
 */
struct dns_state *dns_state_new(struct cm_conf *conf, const char *path, dns_state_apply_fn *apply,
                                void *arg);
/** Accepts NULL. */
void dns_state_free(struct dns_state *st);

/**
 * Loads the state file, if any, replacing the store's contents without calling
 * apply (the caller builds its first view from dns_state_merged() and
 * dns_state_intent_view()). A missing file is normal (a first start). A
 * truncated or corrupt file is replaced by PATH.prev (cm_file_load: a warning
 * names both and the reason); when both are unusable the store starts empty
 * with a warning. Documents that no longer pass cm_state_check_conf and
 * intents that do not parse are skipped with a warning; an older file's
 * "drained" members become drain intents. Every loaded vantage counts as
 * accepted at @now_ms; intents are compiled at @now_s (wall).
 * With @check (--check-config) nothing on disk is touched and an unusable
 * PATH fails with "PATH: reason" in @err even when PATH.prev would do.
 * Otherwise fails only with CM_ENOMEM.
 */
int dns_state_load(struct dns_state *st, uint64_t now_ms, int64_t now_s, bool check, char *err,
                   size_t errlen);

/**
 * Accepts one document (JSON text, @len bytes). CM_OK when accepted (or an
 * identical re-push); CM_EPARSE / CM_ESTATE for a bad document; CM_EEXIST for
 * a stale generation; the apply callback's code when the view cannot be
 * built. Every failure leaves the store unchanged and explains in @err.
 */
int dns_state_put(struct dns_state *st, const char *text, size_t len, const char *writer,
                  uint64_t now_ms, char *err, size_t errlen);

/**
 * Drops @vantage's document from the store (the operator's remedy for a
 * vantage whose credential was abused to pin a huge generation: after a new
 * token, its next document of any generation is accepted). CM_ENOENT when
 * the store holds no document of @vantage.
 */
int dns_state_forget(struct dns_state *st, const char *vantage, char *err, size_t errlen);

/**
 * Makes @docs (a candidate of the store, taken) the documents held, as a put
 * would: merge, apply, commit, state file. For the distributed mode, whose
 * documents come from etcd (common/cm_etcd_feed) instead of pushes: there
 * dns_state_put and dns_state_forget refuse (CM_ENOTSUP) and
 * dns_state_expire does nothing (a vantage goes when its key does).
 */
int dns_state_apply(struct dns_state *st, struct cm_store_cand *docs, char *err, size_t errlen);
/** The document store (borrowed): for the etcd feed's candidates. */
struct cm_store *dns_state_store(struct dns_state *st);

/**
 * Takes one intent (JSON text; a tombstone removes its intent) at wall time
 * @now_s (cm_intents_put rules). *changed tells whether the set changed (an
 * intent delivered again does not). CM_EINVAL for an intent that does not
 * parse or has expired, CM_EEXIST for an id held with other content or
 * removed, CM_ETOOBIG past CM_INTENTS_MAX, the apply callback's code.
 */
int dns_state_intent_put(struct dns_state *st, const char *text, size_t len, int64_t now_s,
                         bool *changed, char *err, size_t errlen);

struct cm_etcd_feed;
/**
 * The distributed mode: the intents made to follow the intent keys of @f
 * (cm_etcd_feed_intents) at wall time @now_s and committed as a push would
 * be; a failure is logged and keeps the previous intents.
 */
void dns_state_intents_etcd(struct dns_state *st, struct cm_etcd_feed *f, int64_t now_s);

/** Removes intent @id (a tombstone by @by). CM_ENOENT when it is not held. */
int dns_state_intent_remove(struct dns_state *st, const char *id, const char *by, int64_t now_s,
                            char *err, size_t errlen);

/**
 * The shorthand of PUT / DELETE /v1/members/NAME/drain: drains @member with a
 * new drain intent by @by (no change when a drain of it is active), or
 * removes every active drain intent of @member. CM_ENOENT for an unknown
 * member.
 */
int dns_state_set_drain(struct dns_state *st, const char *member, bool drained, const char *by,
                        int64_t now_s, char *err, size_t errlen);

/**
 * Drops vantages not heard from for longer than dns_state_expiry_ms(). Returns
 * the number dropped (0 if none), or a negative CM_* code when apply failed
 * (the store is then unchanged and the next call tries again).
 */
int dns_state_expire(struct dns_state *st, uint64_t now_ms);

/**
 * The intents' clock: prunes old expired intents and tombstones, and builds
 * a new view when the active intents changed since the last one (an intent
 * expired). CM_OK, or apply's code (tried again at the next tick).
 */
int dns_state_intents_tick(struct dns_state *st, int64_t now_s);

/**
 * Switches to a new configuration (reference taken on success): documents that
 * fail cm_state_check_conf against it are dropped and the intents are
 * compiled for it (those naming members or regions it lacks are kept, and
 * apply again when they come back), then apply is called with @conf. On
 * failure nothing changes.
 */
int dns_state_set_conf(struct dns_state *st, struct cm_conf *conf, char *err, size_t errlen);

/** 3 x health.publish_interval_ms (10 s when not configured). */
uint64_t dns_state_expiry_ms(const struct cm_conf *conf);

/* ---- read access (borrowed; valid until the next change) ---- */

/** The merge of the held documents; never NULL after dns_state_new. */
const struct cm_merged *dns_state_merged(const struct dns_state *st);
/** The intents held, removed and expired ones included. */
const struct cm_intents *dns_state_intents(const struct dns_state *st);
/** The compiled intents the current view was built from; never NULL after dns_state_new. */
const struct cm_intent_view *dns_state_intent_view(const struct dns_state *st);
/** Drained or evacuated by an intent: out of every answer. */
bool dns_state_is_drained(const struct dns_state *st, size_t member);
/** The configuration the merge and the view use: the loaded one, extended
 *  with the registry members the held documents place (members_from). */
struct cm_conf *dns_state_conf(const struct dns_state *st);

/** What became of the deltas pushed (cm_store_delta_counts). */
struct cm_store_delta_counts dns_state_delta_counts(const struct dns_state *st);

/** State file writes that failed since start, and whether the last one did. */
uint64_t dns_state_save_failures(const struct dns_state *st);
bool dns_state_save_last_failed(const struct dns_state *st);
/**
 * True while apply runs for a document that repeats the held one (only its
 * generation and generated_at differ): the caller may log at debug.
 */
bool dns_state_is_quiet(const struct dns_state *st);

size_t dns_state_vantage_count(const struct dns_state *st);
/** The @i-th held document and when it was accepted (monotonic ms). */
const struct cm_state *dns_state_vantage(const struct dns_state *st, size_t i,
                                         uint64_t *accepted_ms);

/**
 * The digest document of what dnsd answers from at @now_s
 * (cm_intents_digest_json). New reference; NULL on ENOMEM.
 */
json_t *dns_state_digest_json(const struct dns_state *st, int64_t now_s);

/**
 * GET /v1/state: {"version":1, "vantages":{V: document}, "merged": {service:
 * {member: {healthy, votes_up, votes_down, pending, drained}}}, "drained":
 * [names], "intents": [intent + status], "digest": {...}, "view_serial":
 * @view_serial}. New reference; NULL on ENOMEM.
 */
json_t *dns_state_to_json(const struct dns_state *st, uint64_t view_serial, int64_t now_s);

/** Writes the state file now (atomically). CM_OK when there is no file. */
int dns_state_save(const struct dns_state *st);

/*
 * The state file is written at most once per DNS_STATE_SAVE_INTERVAL_MS: a
 * commit writes it at once when the last write is older than that, else
 * marks it due, and dns_state_flush (the daemon's 1 s tick) writes the
 * latest state once the interval has passed; dns_state_free writes what is
 * still due. A burst of pushes costs one write per second, not one each (at
 * 10,000 services x 20 vantages the file is ~28 MB).
 */
#define DNS_STATE_SAVE_INTERVAL_MS 1000u

/** Writes the state file if a commit made it due and the interval has passed (@force: now). */
void dns_state_flush(struct dns_state *st, uint64_t now_ms, bool force);

#endif /* DNSD_DNS_STATE_H */
