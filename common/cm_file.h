/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cm_file.h -- state files: durable replacement with the previous good copy
 * kept, and loading that falls back to it.
 *
 * Writing: a reader of PATH sees either the old content or the new one, never
 * a mix, and after a crash the file holds one of them. The text goes to a
 * temporary file in the same directory, created with O_CREAT | O_EXCL |
 * O_NOFOLLOW under an unpredictable name (so nothing planted at that name,
 * a symlink included, is ever opened or followed), fsync()ed; the current
 * PATH becomes PATH.prev (a hard link; none where links are not supported);
 * the temporary file is renamed over PATH and the directory is fsync()ed.
 *
 *   PATH.tmp.<random> --write, fsync--> link PATH -> PATH.prev
 *                                        rename tmp -> PATH, fsync(dir)
 *
 * Loading: cm_file_load() reads PATH (capped) and hands the bytes to the
 * caller's parser; a file that cannot be read or parsed (truncated by a full
 * disk, damaged by hand) is replaced by PATH.prev, with a warning naming both
 * paths and the reason; the damaged file is moved aside to PATH.corrupt (so
 * the next write does not turn it into PATH.prev) and PATH becomes a link to
 * PATH.prev (so a restart before that write finds the same state). A missing
 * PATH is no state: PATH.prev never brings back a file removed on purpose.
 */
#ifndef COMMON_CM_FILE_H
#define COMMON_CM_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Suffixes of the companions of a state file PATH. */
#define CM_FILE_PREV_SUFFIX    ".prev"
#define CM_FILE_CORRUPT_SUFFIX ".corrupt"
/* Names tried for the temporary file before giving up (each one O_EXCL). */
#define CM_FILE_TMP_ATTEMPTS 16

/**
 * Replaces @path with @text followed by one newline, created with @mode
 * (0600 is what state files use), keeping the current @path as PATH.prev.
 * @path is never missing and always complete, and the new content is
 * durable (fsync) before it replaces the old. Once PATH.prev exists as a
 * plain file of ours, the new content is written over it and the two names
 * are swapped (renameat2 RENAME_EXCHANGE; no new file for a large document
 * rewritten often), else a temporary file is renamed into place.
 * Returns CM_OK, or a CM_* code with "path: what failed: why" in @err; on
 * failure @path is unchanged (PATH.prev may not be) and no temporary file
 * is left. Blocking: call it where a short disk write is acceptable.
 */
int cm_file_write_text_atomic(const char *path, const char *text, mode_t mode, char *err,
                              size_t errlen);
/** The same for @len bytes at @text (no strlen over a large document). */
int cm_file_write_atomic(const char *path, const char *text, size_t len, mode_t mode, char *err,
                         size_t errlen);
/* Which file a path held when it was written: a later write in place checks
 * it still is that file. */
struct cm_file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_ns;
};

/**
 * The same for the concatenation of @n parts (writev; none is copied).
 * *@written (may be NULL) gets the identity of the file now at @path.
 */
int cm_file_write_atomicv(const char *path, const struct iovec *iov, size_t n, mode_t mode,
                          struct cm_file_id *written, char *err, size_t errlen);

/* A region written in place: @n parts at byte @off. */
struct cm_file_patch {
    off_t off;
    const struct iovec *iov;
    size_t n;
};

/**
 * Writes @n regions into PATH.prev in place, makes them durable and swaps
 * PATH.prev with @path (RENAME_EXCHANGE), as cm_file_write_atomicv() does
 * with a whole content: for a caller that knows PATH.prev -- the file it
 * wrote before the last one, *@prev_id -- differs from the new content only
 * in those regions (a layout of fixed slots). CM_ENOTSUP, nothing changed,
 * when PATH.prev is not that file any more (or the swap is not supported):
 * the caller then writes the whole content. *@written as above.
 */
int cm_file_patch_atomic(const char *path, const struct cm_file_id *prev_id,
                         const struct cm_file_patch *patch, size_t n, struct cm_file_id *written,
                         char *err, size_t errlen);

/**
 * Parses the @len bytes at @text (borrowed for the call; NUL-terminated for
 * convenience) read from @path. Must not change anything the caller uses
 * until it succeeds: on failure it returns a CM_* code with the reason in
 * @err (without the path).
 */
typedef int cm_file_parse_fn(void *arg, const char *path, const char *text, size_t len, char *err,
                             size_t errlen);

enum cm_file_load_flags {
    CM_FILE_LOAD_DEFAULT = 0,
    CM_FILE_LOAD_READONLY = 1, /* --check-config: never move a damaged file aside */
};

/* How cm_file_load() went. */
struct cm_file_load_info {
    bool found;       /* PATH existed */
    bool fell_back;   /* PATH was unusable and PATH.prev was parsed */
    char reason[512]; /* when fell_back: why PATH was not used ("PATH: reason") */
};

/**
 * Reads @path (at most @max bytes, a regular file; a symlink to one is
 * followed) and parses it with @parse. Falls back to PATH.prev when @path is
 * unreadable, too large, empty or refused by @parse. Returns CM_OK when one
 * of them parsed (@info says which), CM_ENOENT when @path does not exist (a
 * first start; PATH.prev is not consulted), else the code of the failure
 * with "PATH: reason; PATH.prev: reason" in @err. A fallback is logged as a
 * warning; without CM_FILE_LOAD_READONLY the damaged PATH is renamed to
 * PATH.corrupt and PATH linked to PATH.prev. @info may be NULL.
 */
int cm_file_load(const char *path, size_t max, cm_file_parse_fn *parse, void *arg, unsigned flags,
                 struct cm_file_load_info *info, char *err, size_t errlen);

/**
 * Reads from @fd into @buf until end of file or until @cap bytes are in it,
 * whichever comes first (a read interrupted by a signal is retried). *@len is
 * the number of bytes read, on failure too (so that a caller can wipe them).
 * Returns CM_OK, or the CM_* code of the failed read(). A file of exactly
 * @cap bytes and a longer one both fill @buf: a caller that must refuse the
 * longer one passes one byte more than it accepts. No NUL is added.
 */
int cm_file_read_capped(int fd, void *buf, size_t cap, size_t *len);

/**
 * Checks that the directory of @path exists, is a directory and is writable
 * (for --check-config). CM_OK, or a CM_* code with "dir: reason; fix" in @err.
 */
int cm_file_check_dir(const char *path, char *err, size_t errlen);

#endif /* COMMON_CM_FILE_H */
