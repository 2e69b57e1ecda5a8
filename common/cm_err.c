/* SPDX-License-Identifier: Apache-2.0 */
/* cm_err.c -- CM_* codes to text. */
#include "common/cm_err.h"

#include <stdio.h>
#include <string.h>

int cm_err_from_errno(int errnum)
{
    if (errnum <= 0)
        return CM_EIO;
    return -errnum;
}

const char *cm_strerror(int code)
{
    switch (code) {
    case CM_OK:
        return "success";
    case CM_EPARSE:
        return "parse error";
    case CM_ETOOBIG:
        return "too big";
    case CM_ECONFIG:
        return "invalid configuration";
    case CM_ESTATE:
        return "invalid state document";
    case CM_EAUTH:
        return "authentication failed";
    case CM_ENOTSUP:
        return "not supported";
    default:
        break;
    }
    if (code < 0 && code > -4096)
        return strerrordesc_np(-code) != NULL ? strerrordesc_np(-code) : "unknown errno";
    return "unknown error";
}

void cm_verrf(char *err, size_t errlen, const char *fmt, va_list ap)
{
    if (err == NULL || errlen == 0)
        return;
    vsnprintf(err, errlen, fmt, ap);
}

void cm_errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    cm_verrf(err, errlen, fmt, ap);
    va_end(ap);
}

int cm_err_oom(char *err, size_t errlen, const char *what)
{
    if (what != NULL)
        cm_errf(err, errlen, "%s: out of memory", what);
    else
        cm_errf(err, errlen, "out of memory");
    return CM_ENOMEM;
}
