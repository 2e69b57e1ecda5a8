/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_time.h -- monotonic clock readings, for intervals, deadlines and
 * timeouts (never the wall clock: it jumps), and delays as libevent wants
 * them.
 */
#ifndef COMMON_CM_TIME_H
#define COMMON_CM_TIME_H

#include <stdint.h>
#include <sys/time.h>

/** Milliseconds since an arbitrary point (CLOCK_MONOTONIC). */
uint64_t cm_mono_ms(void);
/** Microseconds since the same point. */
uint64_t cm_mono_us(void);
/** CPU time the calling thread has used, in microseconds (user + system); 0 if unknown. */
uint64_t cm_thread_cpu_us(void);

/** @ms milliseconds as a struct timeval (a timer's delay for event_add()). */
static inline struct timeval cm_ms_to_timeval(uint64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000u),
                         .tv_usec = (suseconds_t)(ms % 1000u) * 1000};

    return tv;
}

#endif /* COMMON_CM_TIME_H */
