/* SPDX-License-Identifier: Apache-2.0 */
/*
 * lbp_alog.h -- the access log: one line per request, JSON or "combined", to
 * a file or stdout. Lines go through a stdio buffer; the owner flushes it
 * (the daemon's tick) and closes it. Single-threaded: one event loop.
 */
#ifndef LBPROXY_LBP_ALOG_H
#define LBPROXY_LBP_ALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cm_conf.h"

struct lbp_alog;

/* One request as logged. Every string is borrowed for the lbp_alog_write() call. */
struct lbp_alog_entry {
    const char *client;
    const char *listener;
    const char *member;
    const char *service;
    const char *method;
    const char *uri; /* may be cut */
    const char *user_agent;
    const char *referer;
    const char *backend; /* "" when none */
    int http_minor;
    unsigned status;
    uint64_t bytes_in, bytes_out;
    uint64_t duration_us;
    unsigned retries;
    bool tls;
};

/**
 * Opens the log of @format at @path (NULL or "-": stdout; a file is appended
 * to). *@out is NULL when @format is CM_ACCESS_LOG_OFF. Returns a CM_* code
 * with "proxy.access_log.path: file: reason" in @err. Free with lbp_alog_close().
 */
int lbp_alog_open(enum cm_access_log_format format, const char *path, struct lbp_alog **out,
                  char *err, size_t errlen);
/** Formats @e into the buffer. Accepts a NULL @a (log off). */
void lbp_alog_write(struct lbp_alog *a, const struct lbp_alog_entry *e);
/** Writes the buffered lines out. Accepts NULL. */
void lbp_alog_flush(struct lbp_alog *a);
/** Flushes, closes the file (not stdout) and frees. Accepts NULL. */
void lbp_alog_close(struct lbp_alog *a);

#endif /* LBPROXY_LBP_ALOG_H */
