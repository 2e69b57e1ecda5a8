/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_rand.h -- the one small random generator of the daemons (xorshift64*):
 * jitter of timers and back-offs, and load-balancing choices. Fast and good
 * enough for spreading load; never for secrets (keys, cookies, tokens).
 *
 * The state is a uint64_t the caller embeds (one per loop or object, so no
 * locks); it is never 0.
 */
#ifndef COMMON_CM_RAND_H
#define COMMON_CM_RAND_H

#include <stdint.h>

/** Seeds @state from getrandom(), else the clock mixed with @salt (an address). */
void cm_rand_seed(uint64_t *state, const void *salt);
/** The next 64 random bits. */
uint64_t cm_rand_next(uint64_t *state);
/** A number in [0, @n); 0 when @n is 0. */
uint32_t cm_rand_below(uint64_t *state, uint32_t n);
/** A number in [0, 1). */
double cm_rand_unit(uint64_t *state);

#endif /* COMMON_CM_RAND_H */
