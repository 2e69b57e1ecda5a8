/* SPDX-License-Identifier: Apache-2.0 */
/* cm_rand.c -- xorshift64* (Marsaglia; Vigna's multiplier), see cm_rand.h. */
#include "common/cm_rand.h"

#include <stddef.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>

void cm_rand_seed(uint64_t *state, const void *salt)
{
    uint64_t seed = 0;
    struct timespec ts;

    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)(uintptr_t)salt;
    }
    *state = seed != 0 ? seed : 0x9E3779B97F4A7C15ULL;
}

uint64_t cm_rand_next(uint64_t *state)
{
    uint64_t x = *state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

uint32_t cm_rand_below(uint64_t *state, uint32_t n)
{
    /* The high bits are the best ones of xorshift64*. */
    return n == 0 ? 0 : (uint32_t)((cm_rand_next(state) >> 32) % n);
}

double cm_rand_unit(uint64_t *state)
{
    return (double)(cm_rand_next(state) >> 11) / 9007199254740992.0; /* 53 bits / 2^53 */
}
