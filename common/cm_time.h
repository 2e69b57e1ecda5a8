/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_time.h -- monotonic clock readings, for intervals, deadlines and
 * timeouts (never the wall clock: it jumps).
 */
#ifndef COMMON_CM_TIME_H
#define COMMON_CM_TIME_H

#include <stdint.h>

/** Milliseconds since an arbitrary point (CLOCK_MONOTONIC). */
uint64_t cm_mono_ms(void);
/** Microseconds since the same point. */
uint64_t cm_mono_us(void);

#endif /* COMMON_CM_TIME_H */
