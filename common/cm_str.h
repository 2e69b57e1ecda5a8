/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_str.h -- bounded buffers and string cursor helpers.
 *
 * struct cm_buf is a growable byte buffer with a hard cap (curl dynbuf): an
 * append past `max` fails with CM_ETOOBIG and leaves the buffer unchanged.
 * The contents are always NUL-terminated (the NUL is not counted in len), so
 * text can be handed to C string functions without a copy.
 */
#ifndef COMMON_CM_STR_H
#define COMMON_CM_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cm_buf {
    char *data; /* owned; NULL until the first append */
    size_t len; /* bytes used, excluding the trailing NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* hard limit on len */
};

/** Initializes an empty buffer that may hold up to @max bytes. Never fails. */
void cm_buf_init(struct cm_buf *b, size_t max);
/** Releases the memory; the buffer may be reused after cm_buf_init(). */
void cm_buf_fini(struct cm_buf *b);
/** Empties the buffer, keeping its memory. */
void cm_buf_reset(struct cm_buf *b);
/** Appends @n bytes. CM_ETOOBIG past max, CM_ENOMEM; unchanged on error. */
int cm_buf_append(struct cm_buf *b, const void *p, size_t n);
int cm_buf_append_str(struct cm_buf *b, const char *s);
int cm_buf_printf(struct cm_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Removes the first @n bytes (n <= len). */
void cm_buf_consume(struct cm_buf *b, size_t n);
/** The contents as a C string ("" when empty); borrowed until the next change. */
const char *cm_buf_cstr(const struct cm_buf *b);

/** A new string "@a@sep@b" ("NAME=value", "dir/file"); NULL on allocation failure. */
char *cm_str_join(const char *a, char sep, const char *b);

/** The value of the hex digit @c (either case), or -1. */
int cm_hex_digit(int c);

/** Copies at most cap-1 bytes and NUL-terminates; returns strlen(src). */
size_t cm_strlcpy(char *dst, const char *src, size_t cap);

/**
 * Parses all of @s as a decimal unsigned integer no larger than @max.
 * No sign, no blanks, no trailing bytes. False on any deviation.
 */
bool cm_parse_u64(const char *s, uint64_t max, uint64_t *out);
/** The same for the @len bytes at @s, which need not be NUL-terminated. */
bool cm_parse_u64_n(const char *s, size_t len, uint64_t max, uint64_t *out);

/**
 * True if the @len bytes at @s are one DNS label as Kubernetes and our
 * configuration write them (RFC 1123): 1..63 of [a-z0-9-], no hyphen at
 * either end. Uppercase is refused (normalize first where it is allowed).
 */
bool cm_str_is_dns_label(const char *s, size_t len);

/** True if @s starts with @prefix; *rest (optional) points past it. */
bool cm_str_skip_prefix(const char *s, const char *prefix, const char **rest);
/** True if @s ends with @suffix. */
bool cm_str_has_suffix(const char *s, const char *suffix);

#endif /* COMMON_CM_STR_H */
