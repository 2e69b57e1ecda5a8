/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_backoff.h -- exponential back-off with jitter, for retries after
 * failures (the k8s watch relists, pushes of state documents).
 *
 * The step starts at min_ms on the first failure and doubles on each
 * further one up to max_ms; a success resets it. Each delay is the step
 * spread by the jitter, so that many clients failing together do not retry
 * together:
 *
 *   failure:  1     2      3      4 ...      success
 *   step:     min   2min   4min   ... max    (reset: next failure is min)
 *   delay:    step spread by the jitter shape
 *
 * A caller-embedded value type: no allocation; not thread-safe (one per
 * object, driven from its loop, like the cm_rand state it draws from).
 */
#ifndef COMMON_CM_BACKOFF_H
#define COMMON_CM_BACKOFF_H

#include <stdint.h>

/* How a delay is drawn from the step. */
enum cm_backoff_jitter {
    CM_BACKOFF_JITTER_NONE = 0,  /* the step itself */
    CM_BACKOFF_JITTER_EQUAL = 1, /* "equal jitter": step/2 + [0, step/2] */
    CM_BACKOFF_JITTER_20PCT = 2, /* step - step/5 + [0, 2 * (step/5)], i.e. +-20 % */
};

struct cm_backoff {
    uint32_t min_ms;               /* the first step */
    uint32_t max_ms;               /* the largest step */
    uint32_t step_ms;              /* the current step; 0 before a failure and after a reset */
    enum cm_backoff_jitter jitter; /* the shape of the delays */
};

/**
 * Sets up @b (no failure yet). Callers keep @min_ms <= @max_ms, and @max_ms
 * at most 3,000,000,000 with CM_BACKOFF_JITTER_20PCT (step + step/5 fits).
 */
void cm_backoff_init(struct cm_backoff *b, uint32_t min_ms, uint32_t max_ms,
                     enum cm_backoff_jitter jitter);
/** A success: the next failure starts again at min_ms. */
void cm_backoff_reset(struct cm_backoff *b);
/**
 * A failure: advances the step (min_ms, then doubled, capped at max_ms) and
 * returns the delay before the retry, in ms, drawn with @rng (a cm_rand
 * state; not used by CM_BACKOFF_JITTER_NONE). May be 0 when min_ms is 0 or
 * 1; callers that need a positive delay raise it themselves.
 */
uint32_t cm_backoff_next(struct cm_backoff *b, uint64_t *rng);

#endif /* COMMON_CM_BACKOFF_H */
