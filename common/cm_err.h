/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_err.h -- the one error space of fedgslb.
 *
 * Fallible functions return int: CM_OK (0) or a negative CM_* code. Codes that
 * mirror errno are exactly -errno, so a syscall failure converts without a
 * table; our own codes sit below -4096, clear of every errno value.
 */
#ifndef COMMON_CM_ERR_H
#define COMMON_CM_ERR_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>

enum cm_err {
    CM_OK = 0,
    CM_ENOMEM = -ENOMEM,
    CM_EINVAL = -EINVAL,
    CM_EAGAIN = -EAGAIN,
    CM_ENOENT = -ENOENT,
    CM_EEXIST = -EEXIST,
    CM_EACCES = -EACCES,
    CM_ERANGE = -ERANGE,
    CM_EIO = -EIO,
    CM_ETIMEDOUT = -ETIMEDOUT,
    CM_ECONNREFUSED = -ECONNREFUSED,
    CM_ENOSPC = -ENOSPC,

    CM_EPARSE = -5000,  /* input does not follow its grammar */
    CM_ETOOBIG = -5001, /* input or output exceeds a fixed limit */
    CM_ECONFIG = -5002, /* configuration is well-formed but invalid */
    CM_ESTATE = -5003,  /* state document rejected */
    CM_EAUTH = -5004,   /* missing or wrong credentials */
    CM_ENOTSUP = -5005, /* a feature we deliberately do not implement */
};

/** Converts an errno value (positive) to a CM_* code. errno 0 maps to CM_EIO. */
int cm_err_from_errno(int errnum);

/** Human-readable text for a CM_* code; never NULL, static storage. */
const char *cm_strerror(int code);

/**
 * Formats a human-readable message into @err (@errlen bytes, cut to fit and
 * always NUL-terminated): the "char *err, size_t errlen" out-parameter of
 * setup and config code. Does nothing when @err is NULL or @errlen is 0.
 */
void cm_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/**
 * Writes "@what: out of memory" into @err ("out of memory" when @what is
 * NULL), as cm_errf() does, and returns CM_ENOMEM.
 */
int cm_err_oom(char *err, size_t errlen, const char *what);
/** The same with a va_list, for wrappers that also return a code. */
void cm_verrf(char *err, size_t errlen, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif /* COMMON_CM_ERR_H */
