/* SPDX-License-Identifier: Apache-2.0 */
/* cm_file.c -- temp file, fsync, rename, fsync of the directory. */
#include "common/cm_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/cm_err.h"
#include "common/cm_str.h"

#define PATH_CAP 4096

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);

        if (n == -1) {
            if (errno == EINTR)
                continue;
            return cm_err_from_errno(errno);
        }
        p += n;
        len -= (size_t)n;
    }
    return CM_OK;
}

static int fsync_dir_of(const char *path)
{
    char dir[PATH_CAP];
    const char *slash = strrchr(path, '/');
    int fd, rc = CM_OK;

    if (slash == NULL) {
        cm_strlcpy(dir, ".", sizeof(dir));
    } else if (slash == path) {
        cm_strlcpy(dir, "/", sizeof(dir));
    } else {
        if ((size_t)(slash - path) >= sizeof(dir))
            return CM_ETOOBIG;
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd == -1)
        return cm_err_from_errno(errno);
    if (fsync(fd) == -1)
        rc = cm_err_from_errno(errno);
    close(fd);
    return rc;
}

int cm_file_write_text_atomic(const char *path, const char *text, mode_t mode, char *err,
                              size_t errlen)
{
    char tmp[PATH_CAP];
    const char *what = "cannot write";
    int fd, rc;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
        snprintf(err, errlen, "%s: path too long", path);
        return CM_ETOOBIG;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd == -1) {
        rc = cm_err_from_errno(errno);
        snprintf(err, errlen, "%s: cannot create: %s", tmp, cm_strerror(rc));
        return rc;
    }
    rc = write_all(fd, text, strlen(text));
    if (rc == CM_OK)
        rc = write_all(fd, "\n", 1);
    if (rc == CM_OK && fsync(fd) == -1)
        rc = cm_err_from_errno(errno);
    if (close(fd) == -1 && rc == CM_OK)
        rc = cm_err_from_errno(errno);
    if (rc == CM_OK && rename(tmp, path) == -1) {
        rc = cm_err_from_errno(errno);
        what = "cannot rename into place";
    }
    if (rc != CM_OK) {
        snprintf(err, errlen, "%s: %s: %s", path, what, cm_strerror(rc));
        unlink(tmp);
        return rc;
    }
    rc = fsync_dir_of(path);
    if (rc != CM_OK)
        snprintf(err, errlen, "%s: cannot sync its directory: %s", path, cm_strerror(rc));
    return rc;
}
