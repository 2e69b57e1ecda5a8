/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_intent_ctl.h -- the intent routes of the control API, one implementation
 * for dnsd and the proxy (each keeps its intents with its own state):
 *
 *   GET    /v1/intents        {"intents": [intent + status], "digest": {...}}  (read)
 *   PUT    /v1/intents/ID     one intent, or its tombstone (operator)
 *                             200 {"id", "changed"}, 400 bad or expired,
 *                             409 id held with other content or removed
 *   DELETE /v1/intents/ID[?by=NAME]  remove (a tombstone)        (operator)
 *                             200 {"id", "removed": true}, 404 not held
 *
 * The holder's callbacks do the work with its own candidate rules; the
 * routes only frame requests and replies. Wall time comes from cm_wall_s().
 */
#ifndef COMMON_CM_INTENT_CTL_H
#define COMMON_CM_INTENT_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct cm_buf;
struct cm_ctl;
struct cm_intents;

/** GET /v1/intents: the document (new reference; NULL on ENOMEM). */
typedef json_t *cm_intent_get_fn(void *arg, int64_t now_s);
/** PUT: takes the body (JSON text); *changed as cm_intents_put says. */
typedef int cm_intent_put_fn(void *arg, const char *text, size_t len, int64_t now_s, bool *changed,
                             char *err, size_t errlen);
/** DELETE: removes @id by @by. CM_ENOENT when not held. */
typedef int cm_intent_remove_fn(void *arg, const char *id, const char *by, int64_t now_s, char *err,
                                size_t errlen);

struct cm_intent_routes {
    cm_intent_get_fn *get;
    cm_intent_put_fn *put;
    cm_intent_remove_fn *remove;
    void *arg;
};

/** Registers the routes on @ctl; @r (borrowed) must outlive it. */
int cm_intent_routes_register(struct cm_ctl *ctl, const struct cm_intent_routes *r);

/**
 * Appends the intent families to @out: fedgslb_intents{kind} (active intents
 * of each kind at @now_s) and fedgslb_state_digest_info{state, intents} (1,
 * labelled with @digest's two digests; @digest is taken, may be NULL).
 */
void cm_intents_metrics(const struct cm_intents *s, json_t *digest, int64_t now_s,
                        struct cm_buf *out);

#endif /* COMMON_CM_INTENT_CTL_H */
