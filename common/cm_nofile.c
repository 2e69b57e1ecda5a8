/* SPDX-License-Identifier: Apache-2.0 */
/* cm_nofile.c -- RLIMIT_NOFILE: raise at start, check the configured need; see cm_nofile.h. */
#include "common/cm_nofile.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <sys/resource.h>

#include "common/cm_conf.h"
#include "common/cm_err.h"
#include "common/cm_log.h"

static uint64_t rlim_u64(rlim_t v)
{
    return v == RLIM_INFINITY ? UINT64_MAX : (uint64_t)v;
}

uint64_t cm_nofile_control(const struct cm_conf_control *control)
{
    return control->enabled ? (uint64_t)control->max_connections + 1 : 0;
}

int cm_nofile_raise(uint64_t *limit)
{
    struct rlimit rl;
    rlim_t old;
    int rc;

    if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
        rc = cm_err_from_errno(errno);
        *limit = 0;
        cm_log_warn("RLIMIT_NOFILE: cannot read it: %s", cm_strerror(rc));
        return rc;
    }
    old = rl.rlim_cur;
    *limit = rlim_u64(old);
    if (rl.rlim_cur != rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == -1) {
            rc = cm_err_from_errno(errno);
            cm_log_warn("RLIMIT_NOFILE: cannot raise %" PRIu64 " to %" PRIu64 ": %s", *limit,
                        rlim_u64(rl.rlim_max), cm_strerror(rc));
            return rc;
        }
        *limit = rlim_u64(rl.rlim_max);
    }
    cm_log_info("RLIMIT_NOFILE: %" PRIu64 " descriptors (soft was %" PRIu64
                ", raised to the hard limit)",
                *limit, rlim_u64(old));
    return CM_OK;
}

int cm_nofile_hard(uint64_t *limit)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == -1) {
        *limit = 0;
        return cm_err_from_errno(errno);
    }
    *limit = rlim_u64(rl.rlim_max);
    return CM_OK;
}

int cm_nofile_check(const char *file, const char *key, const char *breakdown, uint64_t need,
                    bool starting, char *err, size_t errlen)
{
    uint64_t limit;

    if (starting)
        cm_nofile_raise(&limit); /* on failure: the limit in force, logged */
    else if (cm_nofile_hard(&limit) != CM_OK)
        return CM_OK; /* nothing to check against */
    if (need <= limit)
        return CM_OK;
    snprintf(err, errlen,
             "%s: %s: %s = %" PRIu64 " descriptors, but RLIMIT_NOFILE is %" PRIu64
             ": lower it or raise the limit (LimitNOFILE= in the systemd unit)",
             file, key, breakdown, need, limit);
    return CM_ECONFIG;
}
