/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_log.h -- single-line logs to stderr, as text or JSON lines.
 *
 * The level check happens in the macro, before any argument is evaluated, so a
 * debug line on a hot path costs one predictable branch (redis serverLog).
 * Messages carry key=value pairs for anything a machine might grep; the
 * component tag set by cm_log_init() is added to every line. Secrets are never
 * passed to these functions.
 *
 * Thread-safety: cm_log_init() and cm_log_set_level() are called at startup
 * (or from the main thread during reload); cm_log_write() is safe from any
 * thread (one write(2) per line).
 */
#ifndef COMMON_CM_LOG_H
#define COMMON_CM_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum cm_log_level {
    CM_LOG_ERROR = 0, /* the program or a request failed */
    CM_LOG_WARN = 1,  /* something is wrong but service goes on */
    CM_LOG_INFO = 2,  /* events an operator wants to see */
    CM_LOG_DEBUG = 3, /* per-request detail, off in production */
};

enum cm_log_format {
    CM_LOG_TEXT = 0, /* "2026-11-21T07:00:00.123Z dnsd info: message" */
    CM_LOG_JSON = 1, /* {"ts":..,"component":..,"level":..,"msg":..} */
};

/* The current level; read by the macros below. Written only by cm_log_init()
 * and cm_log_set_level(). */
extern _Atomic int cm_log_current_level;

/** Sets the component tag (borrowed, must be static), format and level. */
void cm_log_init(const char *component, enum cm_log_format format, enum cm_log_level level);
void cm_log_set_level(enum cm_log_level level);

/** Parses "text"/"json" and "error"/"warn"/"info"/"debug"; false if unknown. */
bool cm_log_parse_format(const char *s, enum cm_log_format *out);
bool cm_log_parse_level(const char *s, enum cm_log_level *out);

void cm_log_write(enum cm_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define cm_log_enabled(lvl)                                                                        \
    (atomic_load_explicit(&cm_log_current_level, memory_order_relaxed) >= (int)(lvl))
#define cm_log_at(lvl, ...)                                                                        \
    do {                                                                                           \
        if (cm_log_enabled(lvl))                                                                   \
            cm_log_write((lvl), __VA_ARGS__);                                                      \
    } while (0)
#define cm_log_error(...) cm_log_at(CM_LOG_ERROR, __VA_ARGS__)
#define cm_log_warn(...)  cm_log_at(CM_LOG_WARN, __VA_ARGS__)
#define cm_log_info(...)  cm_log_at(CM_LOG_INFO, __VA_ARGS__)
#define cm_log_debug(...) cm_log_at(CM_LOG_DEBUG, __VA_ARGS__)

/*
 * Rate limit for peer-triggered errors (malformed packets, resets): at most
 * `burst` lines per `period_s`, then one "suppressed N" line when the period
 * rolls over (gdnsd log_neterr). Embed one per call site or per worker.
 */
struct cm_log_ratelimit {
    _Atomic uint64_t window_start_s;
    _Atomic uint32_t count;
    _Atomic uint32_t suppressed;
    uint32_t burst;
    uint32_t period_s;
};

#define CM_LOG_RATELIMIT_INIT(burst_, period_)                                                     \
    {                                                                                              \
        .window_start_s = 0, .count = 0, .suppressed = 0, .burst = (burst_), .period_s = (period_) \
    }

void cm_log_ratelimited(struct cm_log_ratelimit *rl, enum cm_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* COMMON_CM_LOG_H */
