/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_time.h -- monotonic clock readings, for intervals, deadlines and
 * timeouts (never the wall clock: it jumps), and delays as libevent wants
 * them; and RFC 3339 UTC timestamps ("2026-11-21T07:00:00Z"), the form of
 * wall-clock times in state documents and operator intents.
 */
#ifndef COMMON_CM_TIME_H
#define COMMON_CM_TIME_H

#include <stdbool.h>
#include <stddef.h>
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

/** Seconds since the epoch (CLOCK_REALTIME): for timestamps, not intervals. */
int64_t cm_wall_s(void);

/**
 * Parses "YYYY-MM-DDTHH:MM:SS[.frac]Z" (T and Z in either case) into seconds
 * since the epoch (the fraction dropped; a leap second :60 counts as the next
 * second). False for anything else, offsets other than Z included.
 */
bool cm_time_parse_rfc3339(const char *s, int64_t *out);

/** Writes @t as "YYYY-MM-DDTHH:MM:SSZ" into @buf (at least 21 bytes). */
void cm_time_format_rfc3339(int64_t t, char *buf, size_t cap);

#endif /* COMMON_CM_TIME_H */
