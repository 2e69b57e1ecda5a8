/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_file.h -- durable replacement of small files (state files).
 *
 * A reader of the path sees either the old content or the new one, never a
 * mix, and after a crash the file holds one of them: the text goes to a
 * temporary file in the same directory, which is fsync()ed and renamed over
 * the path, and then the directory itself is fsync()ed so the rename survives.
 */
#ifndef COMMON_CM_FILE_H
#define COMMON_CM_FILE_H

#include <stddef.h>
#include <sys/types.h>

/**
 * Replaces @path with @text followed by one newline, created with @mode.
 * Returns CM_OK, or a CM_* code with "path: what failed: why" in @err; the
 * temporary file is removed on failure and @path is then unchanged.
 * Blocking: call it where a short disk write is acceptable.
 */
int cm_file_write_text_atomic(const char *path, const char *text, mode_t mode, char *err,
                              size_t errlen);

#endif /* COMMON_CM_FILE_H */
