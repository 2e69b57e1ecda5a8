/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_agree.h -- agreement of name servers: one model for fedgslbctl status
 * and dnsd's GET /v1/peers (the status page's indicator).
 *
 *   digest of each instance (GET /v1/state or /v1/intents "digest")
 *     --> cm_agreement --> agree? the reference, which differs and how
 */
#ifndef COMMON_CM_AGREE_H
#define COMMON_CM_AGREE_H

#include <stddef.h>

#include <jansson.h>

/**
 * Agreement of the instances named @names whose digest documents (the
 * "digest" of GET /v1/state or /v1/intents, borrowed; NULL: no answer) are
 * @digests: {"agree": bool, "intents_agree": bool, "reference": name,
 * "instances": [{"name", "state", "intents", "reachable", "agrees"}],
 * "differences": ["ns2: ...", ...]}. The reference is the state most
 * instances hold (the first on a tie). New reference.
 */
json_t *cm_agreement(const char *const *names, json_t *const *digests, size_t n);

#endif /* COMMON_CM_AGREE_H */
