/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_intent.h -- the operator's intents: decisions kept apart from the
 * vantages' health documents, held by every name server and proxy of a
 * deployment (docs/architecture.md, "Operator intents").
 *
 *   kind        target                 effect (dns_rank; the proxy: lbp_proxy)
 *   drain       member                 leaves every answer (failing open too)
 *   force-up    member                 healthy whatever the vantages say
 *   force-down  member                 unhealthy whatever the vantages say
 *   evacuate    region (expiry needed) every member there leaves every answer
 *   weight      service + member, N    its share among equals (0 = standby)
 *   priority    service + member, N    its priority group (lower N first)
 *
 * Every intent has an id (chosen by its writer, fedgslbctl: the same intent
 * on every name server has the same id), an author, a reason, a creation
 * time and an optional expiry; it is active until it expires or is removed.
 * Removal leaves a tombstone (removed_at, removed_by) kept for
 * CM_INTENT_TOMBSTONE_KEEP_S, so that re-delivering a set to a name server
 * that missed the removal removes it there too instead of bringing it back.
 *
 *   PUT intent ---> cm_intents_put ----+
 *   DELETE id ----> cm_intents_remove -+--> new set (candidate) --> caller
 *   1 s tick -----> cm_intents_prune --+    builds from it, then keeps it
 *   state file ---> cm_intents_load ---+
 *
 *   set --cm_intent_view_build(conf, now)--> per member admin state, per
 *                                            (service, member) weight and
 *                                            priority: what a build reads
 *
 * A set is immutable: every change makes a new set sharing the unchanged
 * intents (reference counted, not thread-safe: one thread owns sets and
 * views). Two sets with the same active intents have the same digest.
 */
#ifndef COMMON_CM_INTENT_H
#define COMMON_CM_INTENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct cm_conf;

#define CM_INTENT_ID_MAX           64          /* characters of an id */
#define CM_INTENT_AUTHOR_MAX       128         /* characters of an author */
#define CM_INTENT_REASON_MAX       1024        /* characters of a reason */
#define CM_INTENT_TEXT_MAX         (16 * 1024) /* one intent as JSON text */
#define CM_INTENTS_MAX             4096        /* intents held, tombstones included */
#define CM_INTENT_VALUE_MAX        1000        /* weight and priority */
#define CM_INTENT_EVACUATE_MAX_S   (7 * 86400) /* longest evacuation */
#define CM_INTENT_EXPIRED_KEEP_S   86400       /* expired intents are listed this long */
#define CM_INTENT_TOMBSTONE_KEEP_S (7 * 86400) /* removed ones are remembered this long */
#define CM_INTENT_ERR_MAX          512

enum cm_intent_kind {
    CM_INTENT_DRAIN = 0,      /* "drain": member out of every answer */
    CM_INTENT_FORCE_UP = 1,   /* "force-up": member healthy (gdnsd admin_state UP) */
    CM_INTENT_FORCE_DOWN = 2, /* "force-down": member unhealthy (admin_state DOWN) */
    CM_INTENT_EVACUATE = 3,   /* "evacuate": region out of every answer (zonal shift) */
    CM_INTENT_WEIGHT = 4,     /* "weight": service + member, value 0..1000 */
    CM_INTENT_PRIORITY = 5,   /* "priority": service + member, value 0..1000 */
};
#define CM_INTENT_KIND_COUNT 6

/* One intent, immutable once parsed. Strings are owned; NULL when absent. */
struct cm_intent {
    char *id;
    enum cm_intent_kind kind;
    char *member;       /* drain, force-*, weight, priority */
    char *region;       /* evacuate */
    char *service;      /* weight, priority: "ns/name" */
    uint32_t value;     /* weight, priority */
    char *author;       /* who decided */
    char *reason;       /* why */
    int64_t created_at; /* seconds since the epoch */
    int64_t expires_at; /* 0 = until removed */
    int64_t removed_at; /* 0 = not removed; else a tombstone */
    char *removed_by;   /* with removed_at */
    char *canon;        /* the intent as compact JSON with sorted keys: its identity */
    unsigned refs;      /* private: sets sharing it */
};

/** "drain", "force-up", ... */
const char *cm_intent_kind_name(enum cm_intent_kind kind);
/** The kind named @name; false when none is. */
bool cm_intent_kind_parse(const char *name, enum cm_intent_kind *out);

/**
 * A fresh id for an intent of @kind on @target (a member or region name):
 * "drain-eur-1795244400-3f2a" (kind, target cut to 32 characters, @now,
 * 16 bits of @rnd), into @buf (at least CM_INTENT_ID_MAX + 1 bytes).
 */
void cm_intent_make_id(char *buf, size_t cap, enum cm_intent_kind kind, const char *target,
                       int64_t now, uint64_t rnd);

/**
 * Parses and validates one intent (or tombstone) from @v (borrowed). With
 * @conf (may be NULL) its member and region must be configured. CM_OK with
 * *out (one reference), else CM_EINVAL (CM_ENOMEM) with "field: reason" in
 * @err. Unknown fields are refused.
 */
int cm_intent_parse(json_t *v, const struct cm_conf *conf, struct cm_intent **out, char *err,
                    size_t errlen);
/** The same from JSON text (a request body; at most CM_INTENT_TEXT_MAX bytes). */
int cm_intent_parse_text(const char *text, size_t len, const struct cm_conf *conf,
                         struct cm_intent **out, char *err, size_t errlen);
/** Drops a reference. Accepts NULL. */
void cm_intent_unref(struct cm_intent *i);

/** Not removed and not expired at @now. */
bool cm_intent_is_active(const struct cm_intent *i, int64_t now);
/** "active", "expired" or "removed" at @now. */
const char *cm_intent_status(const struct cm_intent *i, int64_t now);
/** The intent as JSON (new reference; NULL on ENOMEM). */
json_t *cm_intent_json(const struct cm_intent *i);

/* ---- sets ---- */

struct cm_intents;

/** An empty set; NULL on allocation failure. */
struct cm_intents *cm_intents_new(void);
/** Accepts NULL. */
void cm_intents_free(struct cm_intents *s);

size_t cm_intents_count(const struct cm_intents *s);
/** By position in id order (NULL past the end); borrowed, valid while @s lives. */
const struct cm_intent *cm_intents_get(const struct cm_intents *s, size_t i);
const struct cm_intent *cm_intents_find(const struct cm_intents *s, const char *id);

/**
 * The set with @in (a reference is taken by the new set, or dropped) at
 * @now: *out a new set, or NULL when nothing changes (the same intent again,
 * or a tombstone of one already removed). A live intent that expired already
 * is CM_EINVAL; one whose id is held with other content, or was removed, is
 * CM_EEXIST; a tombstone replaces the live intent of its id. CM_ETOOBIG past
 * CM_INTENTS_MAX. A reason in @err on failure.
 */
int cm_intents_put(const struct cm_intents *s, struct cm_intent *in, int64_t now,
                   struct cm_intents **out, char *err, size_t errlen);

/**
 * The set with @id removed by @by at @now (a tombstone): *out NULL when it
 * was removed already. CM_ENOENT when @id is not held.
 */
int cm_intents_remove(const struct cm_intents *s, const char *id, const char *by, int64_t now,
                      struct cm_intents **out, char *err, size_t errlen);

/**
 * The set without expired intents older than CM_INTENT_EXPIRED_KEEP_S and
 * tombstones older than CM_INTENT_TOMBSTONE_KEEP_S; *out NULL when none is.
 * CM_ENOMEM is the only failure.
 */
int cm_intents_prune(const struct cm_intents *s, int64_t now, struct cm_intents **out);

/**
 * FNV-1a 64 of the active intents' canonical texts in id order: equal on two
 * holders exactly when they apply the same intents at @now.
 */
uint64_t cm_intents_digest(const struct cm_intents *s, int64_t now);

/** The intents as a state file keeps them: [intent...] in id order, no status (new reference). */
json_t *cm_intents_file_json(const struct cm_intents *s);

/** [intent + "status"...] in id order (new reference; NULL on ENOMEM). */
json_t *cm_intents_json(const struct cm_intents *s, int64_t now);

/** Active intents at @now. */
size_t cm_intents_active_count(const struct cm_intents *s, int64_t now);

/**
 * A set from the array @arr (borrowed; a state file's "intents"): entries
 * that do not parse under @conf are skipped with a warning naming @path and
 * the index, of two with one id the tombstone (else the first) is kept.
 * CM_ENOMEM is the only failure.
 */
int cm_intents_load(json_t *arr, const struct cm_conf *conf, const char *path,
                    struct cm_intents **out);

struct cm_store;

/**
 * What GET /v1/state and /metrics say about the state a consumer answers
 * from: {"state": 16 hex digits (cm_store_digest), "intents": 16 hex digits
 * (cm_intents_digest), "vantages": {V: generation}, "active_intents": [id]}.
 * New reference; NULL on ENOMEM.
 */
json_t *cm_intents_digest_json(const struct cm_store *store, const struct cm_intents *s,
                               int64_t now);

/* ---- what a build reads ---- */

/* A member's administrative state, from its intents; a higher value wins. */
enum cm_intent_admin {
    CM_ADMIN_NONE = 0,       /* the vantages decide */
    CM_ADMIN_FORCE_UP = 1,   /* healthy whatever the vantages say */
    CM_ADMIN_FORCE_DOWN = 2, /* unhealthy whatever the vantages say */
    CM_ADMIN_EVACUATED = 3,  /* its region is evacuated */
    CM_ADMIN_DRAINED = 4,    /* drained */
};

struct cm_intent_override; /* private: one (service, member, kind) value */

struct cm_intent_view {
    size_t member_count;                  /* conf->member_count of the build */
    enum cm_intent_admin *admin;          /* owned, per conf member */
    const struct cm_intent **admin_by;    /* owned array of borrowed: what decided */
    struct cm_intent **active;            /* owned references, in id order */
    size_t active_count;                  /* active intents that name this configuration */
    struct cm_intent_override *overrides; /* private, sorted */
    size_t override_count;                /* private */
    uint64_t digest;                      /* cm_intents_digest at build time */
};

/**
 * Compiles the active intents of @s at @now for @conf: intents naming
 * members or regions @conf does not have are left out. CM_ENOMEM is the
 * only failure. The view holds its own references: @s may go.
 */
int cm_intent_view_build(const struct cm_intents *s, const struct cm_conf *conf, int64_t now,
                         struct cm_intent_view **out);
/** Accepts NULL. */
void cm_intent_view_free(struct cm_intent_view *v);

/** The admin state of conf member @m (NONE for a NULL view or index out of range). */
enum cm_intent_admin cm_intent_view_admin(const struct cm_intent_view *v, size_t m,
                                          const struct cm_intent **by);

/**
 * The value of a weight or priority intent for (@service, member @m): true
 * with *value and *by (the newest such intent) when there is one.
 */
bool cm_intent_view_value(const struct cm_intent_view *v, const char *service, size_t m,
                          enum cm_intent_kind kind, uint32_t *value, const struct cm_intent **by);

/** Whether @i concerns member @m of @conf for @service (NULL: any service). */
bool cm_intent_applies(const struct cm_intent *i, const struct cm_conf *conf, const char *service,
                       size_t m);

#endif /* COMMON_CM_INTENT_H */
