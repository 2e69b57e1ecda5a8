/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_log.c -- formatting and writing of log lines.
 *
 * The logger's settings are process-wide by nature (one stderr); they are set
 * once at startup, which is why they live here and not in a context struct.
 */
#include "common/cm_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 2048

_Atomic int cm_log_current_level = CM_LOG_INFO;

static struct {
    const char *component;
    enum cm_log_format format;
} log_cfg = {"fedgslb", CM_LOG_TEXT};

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void cm_log_init(const char *component, enum cm_log_format format, enum cm_log_level level)
{
    log_cfg.component = component;
    log_cfg.format = format;
    cm_log_set_level(level);
}

void cm_log_set_level(enum cm_log_level level)
{
    atomic_store(&cm_log_current_level, (int)level);
}

bool cm_log_parse_format(const char *s, enum cm_log_format *out)
{
    if (strcmp(s, "text") == 0)
        *out = CM_LOG_TEXT;
    else if (strcmp(s, "json") == 0)
        *out = CM_LOG_JSON;
    else
        return false;
    return true;
}

bool cm_log_parse_level(const char *s, enum cm_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum cm_log_level)i;
            return true;
        }
    }
    return false;
}

/* Appends @s to @buf as the inside of a JSON string; returns the new length. */
static size_t json_escape(char *buf, size_t len, size_t cap, const char *s)
{
    for (; *s != '\0' && len + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[len++] = '\\';
            buf[len++] = (char)c;
        } else if (c < 0x20) {
            len += (size_t)snprintf(buf + len, cap - len, "\\u%04x", c);
        } else {
            buf[len++] = (char)c;
        }
    }
    return len;
}

__attribute__((format(printf, 2, 0))) static void log_vwrite(enum cm_log_level level,
                                                             const char *fmt, va_list ap)
{
    char msg[LOG_LINE_MAX];
    char line[LOG_LINE_MAX + 256];
    char ts[40];
    struct timespec now;
    struct tm tm;
    size_t len;
    int n;

    n = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (n < 0)
        return;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    n = (int)strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - (size_t)n, ".%03ldZ", now.tv_nsec / 1000000);

    if (log_cfg.format == CM_LOG_JSON) {
        n = snprintf(line, sizeof(line),
                     "{\"ts\":\"%s\",\"component\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
                     log_cfg.component, level_names[level]);
        len = json_escape(line, (size_t)n, sizeof(line) - 3, msg);
        memcpy(line + len, "\"}\n", 3);
        len += 3;
    } else {
        n = snprintf(line, sizeof(line), "%s %s %s: %s\n", ts, log_cfg.component,
                     level_names[level], msg);
        len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
        line[len - 1] = '\n';
    }
    /* One write per line keeps lines whole when threads log at once. */
    if (write(STDERR_FILENO, line, len) < 0)
        return;
}

void cm_log_write(enum cm_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vwrite(level, fmt, ap);
    va_end(ap);
}

void cm_log_ratelimited(struct cm_log_ratelimit *rl, enum cm_log_level level, const char *fmt, ...)
{
    struct timespec now;
    uint64_t start;
    uint32_t suppressed;
    va_list ap;

    if (!cm_log_enabled(level))
        return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    start = atomic_load(&rl->window_start_s);
    if ((uint64_t)now.tv_sec >= start + rl->period_s &&
        atomic_compare_exchange_strong(&rl->window_start_s, &start, (uint64_t)now.tv_sec)) {
        suppressed = atomic_exchange(&rl->suppressed, 0);
        atomic_store(&rl->count, 0);
        if (suppressed > 0)
            cm_log_write(level, "rate limit: suppressed=%u similar messages", suppressed);
    }
    if (atomic_fetch_add(&rl->count, 1) >= rl->burst) {
        atomic_fetch_add(&rl->suppressed, 1);
        return;
    }
    va_start(ap, fmt);
    log_vwrite(level, fmt, ap);
    va_end(ap);
}
