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

/* Appends up to @n bytes of @s (stopping at a NUL) as the inside of a JSON string. */
static size_t json_escape_n(char *buf, size_t len, size_t cap, const char *s, size_t n)
{
    for (size_t i = 0; i < n && s[i] != '\0' && len + 7 < cap; i++) {
        unsigned char c = (unsigned char)s[i];

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

static bool is_key_char(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && ((c >= '0' && c <= '9') || c == '.' || c == '-'));
}

/* The keys of a JSON line itself: a pair with one of them stays in "msg". */
static bool is_reserved_key(const char *k, size_t n)
{
    static const char *const reserved[] = {"ts", "component", "level", "msg"};

    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++) {
        if (strlen(reserved[i]) == n && memcmp(reserved[i], k, n) == 0)
            return true;
    }
    return false;
}

/*
 * One pair at @p: key=value, the value a double-quoted string (backslash
 * escapes) or a run of non-space bytes. Fills the spans and returns the byte
 * after the pair, or NULL when @p does not start a pair.
 */
static const char *pair_parse(const char *p, const char **key, size_t *key_len, const char **val,
                              size_t *val_len, bool *quoted)
{
    const char *k = p;

    if (!is_key_char(*p, true))
        return NULL;
    while (is_key_char(*p, false))
        p++;
    if (*p != '=' || is_reserved_key(k, (size_t)(p - k)))
        return NULL;
    *key = k;
    *key_len = (size_t)(p - k);
    p++;
    *quoted = *p == '"';
    if (*quoted) {
        *val = ++p;
        while (*p != '\0' && *p != '"')
            p += p[0] == '\\' && p[1] != '\0' ? 2 : 1;
        if (*p != '"')
            return NULL;
        *val_len = (size_t)(p - *val);
        p++;
    } else {
        *val = p;
        while (*p != '\0' && *p != ' ')
            p++;
        *val_len = (size_t)(p - *val);
    }
    return *p == ' ' || *p == '\0' ? p : NULL;
}

/* Whether everything from @p to the end is space-separated pairs. */
static bool pairs_to_end(const char *p)
{
    const char *k, *v;
    size_t kl, vl;
    bool q;

    if (*p == '\0')
        return false;
    while (*p != '\0') {
        p = pair_parse(p, &k, &kl, &v, &vl, &q);
        if (p == NULL)
            return false;
        while (*p == ' ')
            p++;
    }
    return true;
}

/* Where the trailing key=value pairs of @msg begin; NULL when there are none. */
static const char *pairs_start(const char *msg)
{
    for (const char *p = msg; *p != '\0'; p++) {
        if ((p == msg || p[-1] == ' ') && *p != ' ' && pairs_to_end(p))
            return p;
    }
    return NULL;
}

/* A value from between quotes: its backslash escapes undone. */
static size_t json_unquote(char *buf, size_t len, size_t cap, const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '\\' && i + 1 < n)
            i++;
        len = json_escape_n(buf, len, cap, v + i, 1);
    }
    return len;
}

/*
 * The JSON line: {"ts", "component", "level", "msg", then one key per
 * trailing key=value pair of the message} ("view built: serial=3 fed_names=7"
 * gives "msg":"view built","serial":"3","fed_names":"7"). Values stay strings.
 */
static size_t json_line(char *line, size_t cap, const char *ts, enum cm_log_level level,
                        const char *msg)
{
    const char *pairs = pairs_start(msg);
    size_t msg_len = pairs != NULL ? (size_t)(pairs - msg) : strlen(msg);
    size_t len;
    int n;

    while (pairs != NULL && msg_len > 0 && (msg[msg_len - 1] == ' ' || msg[msg_len - 1] == ':'))
        msg_len--;
    n = snprintf(line, cap, "{\"ts\":\"%s\",\"component\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
                 log_cfg.component, level_names[level]);
    len = json_escape_n(line, (size_t)n, cap - 3, msg, msg_len);
    line[len++] = '"';
    for (const char *p = pairs; p != NULL && *p != '\0';) {
        const char *k, *v;
        size_t kl, vl;
        bool q;

        p = pair_parse(p, &k, &kl, &v, &vl, &q);
        if (len + kl + 8 >= cap - 3)
            break;
        line[len++] = ',';
        line[len++] = '"';
        len = json_escape_n(line, len, cap - 3, k, kl);
        memcpy(line + len, "\":\"", 3);
        len += 3;
        len =
            q ? json_unquote(line, len, cap - 4, v, vl) : json_escape_n(line, len, cap - 4, v, vl);
        line[len++] = '"';
        while (*p == ' ')
            p++;
    }
    memcpy(line + len, "}\n", 2);
    return len + 2;
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
        len = json_line(line, sizeof(line), ts, level, msg);
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
