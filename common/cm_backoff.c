/* SPDX-License-Identifier: Apache-2.0 */
/* cm_backoff.c -- exponential back-off with jitter (see cm_backoff.h). */
#include "common/cm_backoff.h"

#include "common/cm_rand.h"

void cm_backoff_init(struct cm_backoff *b, uint32_t min_ms, uint32_t max_ms,
                     enum cm_backoff_jitter jitter)
{
    b->min_ms = min_ms;
    b->max_ms = max_ms;
    b->step_ms = 0;
    b->jitter = jitter;
}

void cm_backoff_reset(struct cm_backoff *b)
{
    b->step_ms = 0;
}

uint32_t cm_backoff_next(struct cm_backoff *b, uint64_t *rng)
{
    uint32_t j;

    /* Compared with max/2 before doubling, so that the step never overflows. */
    if (b->step_ms == 0)
        b->step_ms = b->min_ms;
    else if (b->step_ms < b->max_ms / 2)
        b->step_ms *= 2;
    else
        b->step_ms = b->max_ms;
    switch (b->jitter) {
    case CM_BACKOFF_JITTER_EQUAL:
        return b->step_ms / 2 + cm_rand_below(rng, b->step_ms / 2 + 1);
    case CM_BACKOFF_JITTER_20PCT:
        j = b->step_ms / 5;
        return b->step_ms - j + cm_rand_below(rng, 2 * j + 1);
    case CM_BACKOFF_JITTER_NONE:
    default:
        return b->step_ms;
    }
}
