/* SPDX-License-Identifier: Apache-2.0 */
/* cm_priv.c -- dropping root after binding (see cm_priv.h). */
#include "common/cm_priv.h"

#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common/cm_err.h"
#include "common/cm_str.h"

#define PW_BUF 4096

int cm_priv_lookup(const char *user, const char *group, const char *key_prefix, struct cm_priv *out,
                   char *err, size_t errlen)
{
    struct passwd pw, *pwp = NULL;
    struct group gr, *grp = NULL;
    char buf[PW_BUF];
    int e;

    memset(out, 0, sizeof(*out));
    if (user == NULL)
        return CM_OK;
    e = getpwnam_r(user, &pw, buf, sizeof(buf), &pwp);
    if (pwp == NULL) {
        snprintf(err, errlen, "%s.user: no such user \"%s\"%s%s", key_prefix, user,
                 e != 0 ? ": " : "", e != 0 ? cm_strerror(cm_err_from_errno(e)) : "");
        return CM_ECONFIG;
    }
    out->enabled = true;
    out->uid = pw.pw_uid;
    out->gid = pw.pw_gid;
    cm_strlcpy(out->user, user, sizeof(out->user));
    if (group == NULL) {
        snprintf(out->group, sizeof(out->group), "%u", (unsigned)out->gid);
        return CM_OK;
    }
    e = getgrnam_r(group, &gr, buf, sizeof(buf), &grp);
    if (grp == NULL) {
        snprintf(err, errlen, "%s.group: no such group \"%s\"%s%s", key_prefix, group,
                 e != 0 ? ": " : "", e != 0 ? cm_strerror(cm_err_from_errno(e)) : "");
        return CM_ECONFIG;
    }
    out->gid = gr.gr_gid;
    cm_strlcpy(out->group, group, sizeof(out->group));
    return CM_OK;
}

/* The CapEff line of /proc/self/status is all zeroes. */
static bool cap_eff_zero(void)
{
    char line[256];
    bool zero = false;
    FILE *f = fopen("/proc/self/status", "re");

    if (f == NULL)
        return false;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, "CapEff:", 7) == 0) {
            const char *p = line + 7;

            p += strspn(p, " \t");
            zero = strspn(p, "0") == 16 && (p[16] == '\n' || p[16] == '\0');
            break;
        }
    }
    fclose(f);
    return zero;
}

static int fail(char *err, size_t errlen, const char *step, int e)
{
    int rc = cm_err_from_errno(e);

    snprintf(err, errlen, "dropping privileges: %s: %s", step, cm_strerror(rc));
    return rc;
}

int cm_priv_drop(const struct cm_priv *p, char *err, size_t errlen)
{
    if (!p->enabled)
        return CM_OK;
    if (geteuid() != 0) {
        if (geteuid() == p->uid && getegid() == p->gid)
            return CM_OK;
        snprintf(err, errlen,
                 "user \"%s\" is configured but the daemon does not run as root "
                 "(uid %u): start it as root or as that user",
                 p->user, (unsigned)geteuid());
        return CM_EACCES;
    }
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) == -1)
        return fail(err, errlen, "prctl(PR_SET_KEEPCAPS, 0)", errno);
    if (setgroups(1, &p->gid) == -1)
        return fail(err, errlen, "setgroups", errno);
    if (setresgid(p->gid, p->gid, p->gid) == -1)
        return fail(err, errlen, "setresgid", errno);
    if (setresuid(p->uid, p->uid, p->uid) == -1)
        return fail(err, errlen, "setresuid", errno);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
        return fail(err, errlen, "prctl(PR_SET_NO_NEW_PRIVS, 1)", errno);
    /* Verify: the ids took, there is no way back, and no capability is left. */
    if (getuid() != p->uid || geteuid() != p->uid || getgid() != p->gid || getegid() != p->gid) {
        snprintf(err, errlen, "dropping privileges: the ids did not change");
        return CM_EACCES;
    }
    if (p->uid != 0 && setuid(0) != -1) {
        snprintf(err, errlen, "dropping privileges: setuid(0) still works");
        return CM_EACCES;
    }
    if (p->uid != 0 && !cap_eff_zero()) {
        snprintf(err, errlen,
                 "dropping privileges: capabilities left (CapEff in /proc/self/status "
                 "is not 0)");
        return CM_EACCES;
    }
    return CM_OK;
}

int cm_priv_check_access(const struct cm_priv *p, const char *what, const char *path, bool write,
                         char *err, size_t errlen)
{
    char copy[4096], *dir;
    const char *bad = path;
    int e;

    if (path == NULL)
        return CM_OK;
    if (!write) {
        if (access(path, R_OK) == 0)
            return CM_OK;
        e = errno;
        snprintf(err, errlen, "%s %s: not readable by user %s (uid %u): %s; fix: chown %s:%s %s",
                 what, path, p->user, (unsigned)getuid(), cm_strerror(cm_err_from_errno(e)),
                 p->user, p->group, path);
        return CM_EACCES;
    }
    if (strlen(path) >= sizeof(copy)) {
        snprintf(err, errlen, "%s: path too long", what);
        return CM_ETOOBIG;
    }
    cm_strlcpy(copy, path, sizeof(copy));
    dir = dirname(copy);
    if (access(dir, W_OK | X_OK) == -1) {
        bad = dir;
    } else if (access(path, W_OK) == -1 && errno != ENOENT) {
        bad = path;
    } else {
        return CM_OK;
    }
    e = errno;
    snprintf(err, errlen,
             "%s %s: %s is not writable by user %s (uid %u): %s; fix: chown %s:%s %s (the "
             "directory must be writable: the file is replaced by rename)",
             what, path, bad, p->user, (unsigned)getuid(), cm_strerror(cm_err_from_errno(e)),
             p->user, p->group, bad);
    return CM_EACCES;
}
