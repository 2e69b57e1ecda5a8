/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctl_intent.h -- what fedgslbctl makes of intents and of the instances'
 * answers, without I/O (unit tested):
 *
 *   drain / intent add --> ctl_intent_build --> one intent (id chosen here, so
 *                                               every instance holds the same)
 *   GET /v1/intents of every instance --> ctl_intents_union --> all of them
 *                                     --> ctl_intents_missing --> what one
 *                                         instance lacks: pushed again (the
 *                                         re-delivery of docs/architecture.md)
 *   digests of every instance --> ctl_agreement --> agree? which differs, how
 *                                    (cm_agreement, common/cm_agree.h)
 */
#ifndef CTL_CTL_INTENT_H
#define CTL_CTL_INTENT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/cm_intent.h"

struct cm_buf;
struct cm_conf;
struct ctl_opts;

/**
 * The intent of "drain TARGET" or "intent add KIND TARGET [VALUE]" as JSON
 * (new reference): id from @kind, @target, @now and @rnd; author --author
 * (else @user, else "fedgslbctl"); reason --reason (else @default_reason);
 * expiry --for or --until; service --service. Checked as a name server
 * checks it (with @conf's members and regions). NULL with a reason in @err.
 */
json_t *ctl_intent_build(const struct ctl_opts *o, enum cm_intent_kind kind, const char *target,
                         const char *value, const char *user, const char *default_reason,
                         const struct cm_conf *conf, int64_t now, uint64_t rnd, char *err,
                         size_t errlen);

/**
 * The union of the instances' intent lists (each the "intents" array of a
 * GET /v1/intents, borrowed; NULL for an instance that did not answer): one
 * entry per id, a removed one over a live one (the removal wins), else the
 * first. New array of new references, in id order.
 */
json_t *ctl_intents_union(json_t *const *lists, size_t n);

/**
 * What an instance holding @held (borrowed) lacks of @all (borrowed): the
 * active intents it does not hold and the removals of intents it holds
 * live. Expired intents are not sent. New array.
 */
json_t *ctl_intents_missing(json_t *held, json_t *all);

/** Appends the agreement model's lines (a table and the differences). */
int ctl_agreement_text(json_t *model, struct cm_buf *out);

/**
 * Appends the union @all (from ctl_intents_union) as a table, with which of
 * the @n instances (@names, their lists @lists as for ctl_intents_union)
 * hold each intent as it is.
 */
int ctl_intents_text(json_t *all, const char *const *names, json_t *const *lists, size_t n,
                     struct cm_buf *out);

#endif /* CTL_CTL_INTENT_H */
