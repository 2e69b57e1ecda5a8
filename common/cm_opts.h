/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_opts.h -- the command line every fedgslb daemon shares:
 *
 *   --config FILE  --instance NAME  --check-config  --log-format text|json
 *   --log-level error|warn|info|debug  --foreground (accepted, no effect)
 *   --help  --version
 *
 * --instance names the daemon's instance in a deployment file
 * (cm_conf_load_instance); without it, $FEDGSLB_INSTANCE does.
 *
 * One parser, so the three daemons agree on spelling, errors and exit codes
 * (0 after --help/--version, 2 on a usage error).
 */
#ifndef COMMON_CM_OPTS_H
#define COMMON_CM_OPTS_H

#include <stdbool.h>
#include <stdio.h>

#include "common/cm_log.h"

struct cm_opts {
    const char *config;   /* borrowed from argv */
    const char *instance; /* borrowed from argv or the environment; NULL = none */
    bool check;
    enum cm_log_format format;
    enum cm_log_level level;
};

/** Prints the program's usage text to @out. */
typedef void cm_opts_usage_fn(FILE *out);

/**
 * Parses @argv for program @prog ("fedgslb-dnsd") at @version. Returns -1 to
 * go on with @o filled in, else the exit code to return (usage or version
 * already printed).
 */
int cm_opts_parse(int argc, char **argv, const char *prog, const char *version,
                  cm_opts_usage_fn *usage, struct cm_opts *o);

#endif /* COMMON_CM_OPTS_H */
