/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_lines.h -- an incremental line splitter for newline-delimited streams
 * (Kubernetes watch streams, etcd's watch through its JSON gateway): bytes
 * arrive in chunks of any size, complete lines come out in order, and the
 * line being assembled has a hard cap whatever the chunking.
 */
#ifndef COMMON_CM_LINES_H
#define COMMON_CM_LINES_H

#include <stddef.h>

#include "common/cm_str.h"

/** Called for each complete line (without the '\n'; borrowed until return).
 * A non-zero return stops cm_lines_feed(), which then returns that value. */
typedef int cm_line_fn(void *arg, const char *line, size_t len);

struct cm_lines {
    struct cm_buf buf; /* the unfinished line */
    size_t max;        /* longest accepted line */
};

/** @max: the line cap. Never fails (memory comes with the first partial line). */
void cm_lines_init(struct cm_lines *ls, size_t max);
void cm_lines_fini(struct cm_lines *ls);
/** Forgets a partial line (after a reconnect). */
void cm_lines_reset(struct cm_lines *ls);
/**
 * Feeds @len bytes. Calls @fn for every line completed by them, in order
 * (empty lines and a trailing '\r' are skipped). Returns CM_OK, the first
 * non-zero @fn return, CM_ETOOBIG when a line exceeds the cap (the splitter
 * must then be reset) or CM_ENOMEM.
 */
int cm_lines_feed(struct cm_lines *ls, const char *data, size_t len, cm_line_fn *fn, void *arg);
/** Bytes of the unfinished line held. */
size_t cm_lines_pending(const struct cm_lines *ls);

#endif /* COMMON_CM_LINES_H */
