/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_secret.h -- reading a secret (a bearer token) from a file, as ssh reads
 * a private key: the file must be a regular file that group and others can
 * neither read nor write, and hold one line of printable text.
 */
#ifndef COMMON_CM_SECRET_H
#define COMMON_CM_SECRET_H

#include <stddef.h>

#define CM_SECRET_MAX 4096 /* longest secret accepted */

/**
 * Reads the secret in @path into *out (a new string; the caller wipes it with
 * explicit_bzero before free). A trailing newline is dropped. CM_* code with a
 * reason in @err that names the file (and the fix), never the content:
 * unreadable, not a regular file, mode open to group or others ("chmod 600"),
 * empty, longer than CM_SECRET_MAX, or holding control characters.
 */
int cm_secret_read(const char *path, char **out, char *err, size_t errlen);

#endif /* COMMON_CM_SECRET_H */
