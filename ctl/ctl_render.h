/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ctl_render.h -- what fedgslbctl shows, built from dnsd's replies. Pure
 * (JSON in, text or JSON out), so it is unit tested without a daemon.
 *
 *   GET /v1/state   --+
 *                     +--> ctl_status_model() --> --json: the model itself
 *   GET /v1/answers --+                       --> ctl_status_text(): two tables
 *
 *   GET /v1/explain ---> ctl_explain_text(): the ranking and the reason
 *
 * The status model (one JSON object):
 *   {"dnsd": URL, "view_serial": N, "vantages": [V...], "regions": [R...],
 *    "services": [{"service": KEY, "configured": bool,
 *       "members": [{"member", "present", "healthy", "votes_up", "votes_down",
 *                    "reason", "ready_endpoints", "pending", "draining",
 *                    "eligible", "excluded", "rtt_ms": {V: ms or null}}],
 *       "answers": {R: {"member", "chosen": [...], "rule", "fail_open",
 *                       "cname", "ttl", "text"}}}]}
 * where "text" is the table cell: the member, "a|b" when several share,
 * "fail-open", "fail-closed" or "sorry:TARGET".
 */
#ifndef CTL_CTL_RENDER_H
#define CTL_CTL_RENDER_H

#include <stddef.h>

#include <jansson.h>

struct cm_buf;

/**
 * Builds the status model from dnsd's GET /v1/state (@state) and
 * GET /v1/answers (@answers), both borrowed. @dnsd_url is copied. New
 * reference, or NULL with a reason in @err when a reply does not have the
 * expected shape (or on allocation failure).
 */
json_t *ctl_status_model(json_t *state, json_t *answers, const char *dnsd_url, char *err,
                         size_t errlen);

/** Appends the two status tables for @model (borrowed). CM_OK or cm_buf's code. */
int ctl_status_text(json_t *model, struct cm_buf *out);

/** The answer cell of one region's answer object ("eur", "fail-open", ...). Static or borrowed. */
const char *ctl_answer_cell(json_t *answer, char *buf, size_t cap);

/**
 * Appends a readable form of dnsd's /v1/explain document @doc (borrowed):
 * the client's region and how it was found, the decision and its reason,
 * one row per member in rank order, and the A / AAAA responses.
 */
int ctl_explain_text(json_t *doc, struct cm_buf *out);

#endif /* CTL_CTL_RENDER_H */
