/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_secret.c -- secrets from files (see cm_secret.h). The buffer that held
 * the secret is wiped on every path out.
 */
#include "common/cm_secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cm_err.h"
#include "common/cm_file.h"

/* Checks what the descriptor is before anything is read from it. */
static int check_file(int fd, const char *path, char *err, size_t errlen)
{
    struct stat st;

    if (fstat(fd, &st) == -1) {
        int rc = cm_err_from_errno(errno);

        snprintf(err, errlen, "cannot read \"%s\": %s", path, cm_strerror(rc));
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "token file \"%s\" is not a regular file", path);
        return CM_EINVAL;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(err, errlen,
                 "token file \"%s\" has mode %04o: group and others must have no access "
                 "(chmod 600 %s)",
                 path, (unsigned)(st.st_mode & 07777), path);
        return CM_EACCES;
    }
    return CM_OK;
}

static int read_all(int fd, const char *path, char *buf, size_t cap, size_t *len, char *err,
                    size_t errlen)
{
    int rc = cm_file_read_capped(fd, buf, cap, len);

    if (rc != CM_OK)
        snprintf(err, errlen, "cannot read \"%s\": %s", path, cm_strerror(rc));
    return rc;
}

static int check_text(const char *buf, size_t len, const char *path, char *err, size_t errlen)
{
    if (len > CM_SECRET_MAX) {
        snprintf(err, errlen, "token file \"%s\" is larger than %d bytes", path, CM_SECRET_MAX);
        return CM_ETOOBIG;
    }
    if (len == 0) {
        snprintf(err, errlen, "token file \"%s\" is empty", path);
        return CM_EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f) {
            snprintf(err, errlen, "token file \"%s\" must hold one line of printable text", path);
            return CM_EINVAL;
        }
    }
    return CM_OK;
}

int cm_secret_read(const char *path, char **out, char *err, size_t errlen)
{
    char buf[CM_SECRET_MAX + 2];
    size_t len = 0;
    int fd, rc;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd == -1) {
        rc = cm_err_from_errno(errno);
        snprintf(err, errlen, "cannot read \"%s\": %s", path, cm_strerror(rc));
        return rc;
    }
    rc = check_file(fd, path, err, errlen);
    if (rc == CM_OK)
        rc = read_all(fd, path, buf, sizeof(buf), &len, err, errlen);
    close(fd);
    while (rc == CM_OK && len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    if (rc == CM_OK)
        rc = check_text(buf, len, path, err, errlen);
    if (rc == CM_OK) {
        *out = strndup(buf, len);
        if (*out == NULL)
            rc = cm_err_oom(err, errlen, NULL);
    }
    explicit_bzero(buf, sizeof(buf));
    return rc;
}
