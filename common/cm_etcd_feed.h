/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_etcd_feed.h -- what a consumer (dnsd, the proxy) makes of the keys of
 * its federation in etcd: the vantages' documents go into its one document
 * store (cm_store) as pushes would have put them, and the keys it holds are
 * summed up in a digest that two consumers in agreement share. Pure: the
 * keys and events come from cm_etcd_watch, the candidates go to the caller.
 *
 *   <prefix><federation>/vantages/<vantage>   a vantage's state document, under
 *                                             a lease the vantage keeps alive
 *   <prefix><federation>/intents/...          operator intents
 *   <prefix><federation>/consumers/<name>     consumers' registrations (not state)
 *
 * Rules (the store's, with etcd's order):
 *  - a vantage key's value is checked as a push of that vantage would be
 *    (cm_store_replace: parsed under the configuration's address rule, the
 *    document's vantage must be the key's, cm_state_check_conf), but etcd's
 *    order is the order: the key's latest value replaces the held document
 *    even with a lower generation (a vantage restarted without its file);
 *  - a refused value is logged once per key revision and changes nothing:
 *    the vantage's held document stays, as after a refused push;
 *  - a vantage key that goes away (the vantage stopped renewing its lease,
 *    or someone deleted it) drops that vantage's document, as expiry does
 *    for pushes, unless no vantage key is left at all: then the last state
 *    stays (cm_store_retain) until one is written again;
 *  - a list replaces what the feed knew: keys not listed went away.
 *
 * Every resulting candidate goes through the caller's apply callback (build
 * the view, then commit); a candidate the caller cannot apply changes
 * nothing. Not thread-safe.
 */
#ifndef COMMON_CM_ETCD_FEED_H
#define COMMON_CM_ETCD_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cm_etcd_proto.h"

struct cm_conf;
struct cm_etcd_feed;
struct cm_intents;
struct cm_store;
struct cm_store_cand;

#define CM_ETCD_DIR_VANTAGES  "vantages/"
#define CM_ETCD_DIR_INTENTS   "intents/"
#define CM_ETCD_DIR_CONSUMERS "consumers/"

/**
 * Makes @cand (taken) the caller's state: build what derives from it, then
 * cm_store_commit(), or free it and return a CM_* code with a reason.
 */
typedef int cm_etcd_apply_fn(void *arg, struct cm_store_cand *cand, char *err, size_t errlen);

/**
 * The intent keys changed (an event, a list): make the caller's intent set
 * what cm_etcd_feed_intents() says, as a push would have. NULL: ignored.
 */
typedef void cm_etcd_intents_fn(void *arg, struct cm_etcd_feed *f);

/* Where the documents go (all borrowed for the call). */
struct cm_etcd_feed_target {
    struct cm_store *store;
    const struct cm_conf *conf;
    cm_etcd_apply_fn *apply;
    cm_etcd_intents_fn *intents; /* NULL: intent keys are only counted */
    void *arg;
    uint64_t now_ms;
};

enum cm_etcd_key_kind {
    CM_ETCD_KEY_OTHER = 0,    /* not ours, or malformed */
    CM_ETCD_KEY_VANTAGE = 1,  /* vantages/<name> */
    CM_ETCD_KEY_INTENT = 2,   /* intents/<...> */
    CM_ETCD_KEY_CONSUMER = 3, /* consumers/<name> */
};

struct cm_etcd_feed_stats {
    size_t keys;           /* vantage and intent keys held */
    size_t vantage_keys;   /* of them, vantages */
    uint64_t applied;      /* candidates applied */
    uint64_t refused;      /* values refused (bad document, another vantage's name ...) */
    uint64_t apply_failed; /* candidates the caller could not apply */
    uint64_t digest;       /* cm_etcd_feed_digest() */
};

/**
 * CM_OK outside the distributed mode; in it (@conf's etcd section set) a
 * consumer takes vantage documents from etcd only, and a push or forget is
 * CM_ENOTSUP with the reason in @err (@daemon names the refusing daemon).
 */
int cm_etcd_refuse_push(const struct cm_conf *conf, const char *daemon, char *err, size_t errlen);

/** The same for an intent push or removal: intents are written to etcd (fedgslbctl intent). */
int cm_etcd_refuse_intent(const struct cm_conf *conf, const char *daemon, char *err, size_t errlen);

/**
 * The intent set @held (borrowed) made to follow the intent keys held, at
 * @now_s, under @conf: each key intents/<id> holds one intent's JSON (the
 * /v1/intents form) or its tombstone, put as a push would be
 * (cm_intents_put: a tombstone removes, an id held with other content or
 * removed is refused); a value that does not parse, whose id is not the
 * key's, or that the set refuses is logged once per revision and changes
 * nothing (the held intent of that id stays). A live intent with no key any
 * more (the key was deleted, or a list no longer has it) is removed (a
 * tombstone by "etcd"). *out the new set, or NULL when nothing changes.
 * CM_OK, or CM_ENOMEM.
 */
int cm_etcd_feed_intents(struct cm_etcd_feed *f, const struct cm_intents *held,
                         const struct cm_conf *conf, int64_t now_s, struct cm_intents **out);

/** "<prefix><federation>/": the root every key of the federation is under. New string. */
char *cm_etcd_root(const char *prefix, const char *federation);

/**
 * What the key @key (@len bytes) under @root is; *name (borrowed from @key)
 * is what follows the directory, *name_len its length. A vantage name must be
 * non-empty and hold no '/' or NUL; otherwise the key is CM_ETCD_KEY_OTHER.
 */
enum cm_etcd_key_kind cm_etcd_key_parse(const char *root, const char *key, size_t len,
                                        const char **name, size_t *name_len);

/** A feed for the keys under @root (copied). NULL on ENOMEM. */
struct cm_etcd_feed *cm_etcd_feed_new(const char *root);
void cm_etcd_feed_free(struct cm_etcd_feed *f);

/**
 * A complete list (every key under the root at one revision): the keys held
 * are replaced, vantages no longer listed are dropped (the rule above), then
 * each listed vantage's document is applied. CM_OK, or CM_ENOMEM.
 */
int cm_etcd_feed_sync(struct cm_etcd_feed *f, const struct cm_etcd_kv *kvs, size_t count,
                      const struct cm_etcd_feed_target *t);
/** One event. CM_OK, or CM_ENOMEM. */
int cm_etcd_feed_event(struct cm_etcd_feed *f, const struct cm_etcd_event *ev,
                       const struct cm_etcd_feed_target *t);
/**
 * Applies every vantage key's value again (after a configuration reload, a
 * value the old one refused may pass). CM_OK, or CM_ENOMEM.
 */
int cm_etcd_feed_reapply(struct cm_etcd_feed *f, const struct cm_etcd_feed_target *t);

/**
 * FNV-1a 64 of the vantage and intent keys held, sorted, each with its
 * mod_revision: equal for two consumers that hold the same versions of the
 * same keys, however they came by them (events or a list).
 */
uint64_t cm_etcd_feed_digest(const struct cm_etcd_feed *f);
void cm_etcd_feed_get_stats(const struct cm_etcd_feed *f, struct cm_etcd_feed_stats *out);

#endif /* COMMON_CM_ETCD_FEED_H */
