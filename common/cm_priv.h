/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_priv.h -- giving up root after binding: user and group lookup, the drop
 * itself (supplementary groups, gid, uid, no capabilities left, no way back)
 * and the checks that what the daemon must still write stays writable.
 *
 * Order in a daemon: cm_priv_lookup() while reading the configuration, bind
 * every socket as root, cm_priv_drop() before any worker thread starts, then
 * cm_priv_check_access() on the files it writes later.
 */
#ifndef COMMON_CM_PRIV_H
#define COMMON_CM_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct cm_priv {
    bool enabled; /* a user was configured */
    uid_t uid;
    gid_t gid;
    char user[64]; /* for messages */
    char group[64];
};

/**
 * Resolves @user (a name) and @group (NULL: the user's primary
 * group) into @out. @user NULL leaves out->enabled false. CM_ECONFIG with
 * "dnsd.user: no such user "x"" style text in @err.
 */
int cm_priv_lookup(const char *user, const char *group, const char *key_prefix, struct cm_priv *out,
                   char *err, size_t errlen);

/**
 * Becomes @p's user: setgroups(gid only), setgid, setuid with
 * PR_SET_KEEPCAPS 0 and PR_SET_NO_NEW_PRIVS, then verifies that the ids
 * took, that setuid(0) fails and that /proc/self/status shows CapEff 0.
 * Not root and already that user: nothing to do. Call before creating
 * threads. CM_* code with the failing step in @err.
 */
int cm_priv_drop(const struct cm_priv *p, char *err, size_t errlen);

/**
 * After the drop: checks that the directory of @path (and @path itself when
 * it exists) is writable (@write) or that @path is readable (!@write), as
 * the current user. CM_EACCES with the path and the fix in @err.
 */
int cm_priv_check_access(const struct cm_priv *p, const char *what, const char *path, bool write,
                         char *err, size_t errlen);

#endif /* COMMON_CM_PRIV_H */
