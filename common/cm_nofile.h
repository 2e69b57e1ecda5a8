/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_nofile.h -- the descriptor budget of a daemon (RLIMIT_NOFILE).
 *
 * At start each daemon raises its soft limit to the hard limit (the soft
 * default, 1024, is far below what a DNS or HTTP server holds) and checks
 * that its configured connection limits fit in it, so that an exhausted
 * descriptor table is a refused configuration at start and not an accept
 * loop failing under load. The daemons compute their own need (their
 * connection tables) and add the terms below; --check-config checks against
 * the hard limit, which is what the daemon will raise to.
 *
 * Not thread-safe: called from main() before any thread starts.
 */
#ifndef COMMON_CM_NOFILE_H
#define COMMON_CM_NOFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cm_conf_control;

/* Everything else a daemon opens: stdio, its event loops, listening sockets
 * of the control API, state and zone files, the access log. */
#define CM_NOFILE_RESERVE 64

/**
 * Raises the soft RLIMIT_NOFILE to the hard limit and logs the result at
 * info. *@limit is the soft limit in force afterwards (the old one when the
 * raise failed). Returns CM_OK, or a CM_* code (errno of getrlimit/setrlimit)
 * after logging a warning.
 */
int cm_nofile_raise(uint64_t *limit);

/** Descriptors a control API may hold: its listener and control.max_connections (0 if off). */
uint64_t cm_nofile_control(const struct cm_conf_control *control);

/** The hard RLIMIT_NOFILE (what cm_nofile_raise() raises to), for --check-config. */
int cm_nofile_hard(uint64_t *limit);

/**
 * CM_OK when @need descriptors fit in the limit: when @starting, the soft
 * limit after cm_nofile_raise(); else (--check-config) the hard limit, what a
 * start would get (CM_OK when it cannot be read). Otherwise CM_ECONFIG and, in
 * @err, "@file: @key: @breakdown = @need descriptors, but RLIMIT_NOFILE is
 * LIMIT: lower it or raise the limit (LimitNOFILE= in the systemd unit)".
 * @breakdown (borrowed) says how @need was counted, e.g. "2 workers x 1024
 * TCP connections + 65 control + 64 reserve".
 */
int cm_nofile_check(const char *file, const char *key, const char *breakdown, uint64_t need,
                    bool starting, char *err, size_t errlen);

#endif /* COMMON_CM_NOFILE_H */
