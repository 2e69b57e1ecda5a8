/* SPDX-License-Identifier: Apache-2.0 */
/* cm_file.c -- exclusive temp file, fsync, PATH.prev, rename, fsync of the directory;
 * capped reads with the fallback to PATH.prev. */
#include "common/cm_file.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/cm_err.h"
#include "common/cm_log.h"
#include "common/cm_str.h"

#define PATH_CAP      4096
#define READ_ERR_CAP  256
#define CHUNK_MIN_CAP 4096
#define WRITEV_BATCH  256 /* parts per writev() (IOV_MAX is at least 1024 on Linux) */
/*
 * Bytes per writev() at most. The page cache sizes a file's folios by the
 * writes that fill it: one large writev() gives folios of up to 2 MB (ext4
 * since Linux 6.16), and a later patch in place (cm_file_patch_atomic) of a
 * few KB then dirties, walks and writes back a whole large folio. Measured on
 * a 52 MB file, 65 patches of 5 KB and an fdatasync: 1.7-2.3 ms of CPU with
 * the file written in one writev(), 0.4 ms with 64 KB writes.
 */
#define WRITE_CHUNK_MAX (64 * 1024)

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

/* Writes every part of @iov (@n parts) in order, a batch of parts per writev()
 * (WRITEV_BATCH parts, WRITE_CHUNK_MAX bytes). */
static int writev_all(int fd, const struct iovec *iov, size_t n)
{
    struct iovec batch[WRITEV_BATCH];
    size_t i = 0, done = 0; /* iov[i] has its first @done bytes written */

    while (i < n) {
        size_t k = 0, want = 0;
        ssize_t w;

        for (size_t j = i; j < n && k < WRITEV_BATCH && want < WRITE_CHUNK_MAX; j++, k++) {
            batch[k] = iov[j];
            if (j == i) {
                batch[k].iov_base = (char *)iov[j].iov_base + done;
                batch[k].iov_len -= done;
            }
            if (batch[k].iov_len > WRITE_CHUNK_MAX - want)
                batch[k].iov_len = WRITE_CHUNK_MAX - want;
            want += batch[k].iov_len;
        }
        w = want > 0 ? writev(fd, batch, (int)k) : 0;
        if (w == -1 && errno == EINTR)
            continue;
        if (w == -1)
            return cm_err_from_errno(errno);
        if (w == 0 && want > 0)
            return CM_EIO;
        for (size_t left = (size_t)w; i < n;) {
            size_t rest = iov[i].iov_len - done;

            if (left < rest) {
                done += left;
                break;
            }
            left -= rest;
            done = 0;
            i++;
        }
    }
    return CM_OK;
}

/* The directory part of @path ("." when there is none) into @dir. */
static int dir_of(const char *path, char *dir, size_t cap)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL) {
        cm_strlcpy(dir, ".", cap);
    } else if (slash == path) {
        cm_strlcpy(dir, "/", cap);
    } else {
        if ((size_t)(slash - path) >= cap)
            return CM_ETOOBIG;
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    }
    return CM_OK;
}

static int fsync_dir_of(const char *path)
{
    char dir[PATH_CAP];
    int fd, rc;

    rc = dir_of(path, dir, sizeof(dir));
    if (rc != CM_OK)
        return rc;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd == -1)
        return cm_err_from_errno(errno);
    if (fsync(fd) == -1)
        rc = cm_err_from_errno(errno);
    close(fd);
    return rc;
}

/* 64 bits nobody else can guess; the clock when the kernel has no entropy
 * call (O_EXCL still makes a collision harmless: it is retried). */
static uint64_t tmp_token(unsigned attempt)
{
    struct timespec ts;
    uint64_t v = 0;

    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v))
        return v;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^
           attempt;
}

/*
 * Creates PATH.tmp.<random> exclusively: O_EXCL fails on anything already
 * there (a symlink included, even a dangling one) and O_NOFOLLOW makes sure
 * no symlink is ever followed. Retried under a new name on EEXIST.
 */
static int tmp_create(const char *path, mode_t mode, char *tmp, size_t cap, int *fd_out)
{
    for (unsigned i = 0; i < CM_FILE_TMP_ATTEMPTS; i++) {
        int fd;

        if (snprintf(tmp, cap, "%s.tmp.%016" PRIx64, path, tmp_token(i)) >= (int)cap)
            return CM_ETOOBIG;
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd != -1) {
            *fd_out = fd;
            return CM_OK;
        }
        if (errno != EEXIST)
            return cm_err_from_errno(errno);
    }
    return CM_EEXIST;
}

/* PATH.prev := the current PATH, by a hard link, so PATH stays in place
 * throughout (a rename would leave a moment without PATH, which a restart
 * would read as "no state"). Where links are not supported no .prev is kept. */
static int keep_prev(const char *path, const char *prev)
{
    struct stat sb;

    /* No PATH (a first write, or PATH moved aside as damaged): PATH.prev, if
     * any, is the last good file and stays. */
    if (lstat(path, &sb) == -1)
        return errno == ENOENT ? CM_OK : cm_err_from_errno(errno);
    if (unlink(prev) == -1 && errno != ENOENT)
        return cm_err_from_errno(errno);
    if (link(path, prev) == 0 || errno == ENOENT)
        return CM_OK;
    if (errno != EPERM && errno != EOPNOTSUPP && errno != EMLINK)
        return cm_err_from_errno(errno);
    cm_log_debug("state file %s: no hard links here; no %s kept", path, prev);
    return CM_OK;
}

static void file_id(const struct stat *sb, struct cm_file_id *out)
{
    if (out != NULL)
        *out = (struct cm_file_id){.dev = sb->st_dev,
                                   .ino = sb->st_ino,
                                   .size = sb->st_size,
                                   .mtime_ns = (int64_t)sb->st_mtim.tv_sec * 1000000000 +
                                               sb->st_mtim.tv_nsec};
}

static bool same_id(const struct stat *sb, const struct cm_file_id *want)
{
    struct cm_file_id got;

    file_id(sb, &got);
    return got.dev == want->dev && got.ino == want->ino && got.size == want->size &&
           got.mtime_ns == want->mtime_ns;
}

static int tmp_fill(int fd, const struct iovec *iov, size_t n, struct cm_file_id *written)
{
    int rc = writev_all(fd, iov, n);
    struct stat sb;

    if (rc == CM_OK)
        rc = write_all(fd, "\n", 1);
    if (rc == CM_OK && fsync(fd) == -1)
        rc = cm_err_from_errno(errno);
    if (rc == CM_OK && fstat(fd, &sb) == 0)
        file_id(&sb, written);
    if (close(fd) == -1 && rc == CM_OK)
        rc = cm_err_from_errno(errno);
    return rc;
}

/*
 * The fast way for a file rewritten often: PATH.prev, no longer needed once
 * the new content is durable, is written in place and then swapped with
 * PATH in one step (renameat2 RENAME_EXCHANGE), so PATH is never missing and
 * always complete, and PATH.prev ends up holding the previous content as
 * with keep_prev(). An existing inode means no page cache to allocate and
 * free for a large file. This opens PATH.prev for it: CM_ENOTSUP, nothing
 * changed, when the way does not apply -- no PATH.prev yet, PATH or PATH.prev
 * not a plain file of ours with one link (never written through a symlink
 * or into another file's inode), or not the file @expect describes (NULL:
 * any).
 */
static int open_prev(const char *path, const char *prev, const struct cm_file_id *expect, int *out)
{
    struct stat sp, sv;
    int fd;

    if (lstat(path, &sp) == -1 || !S_ISREG(sp.st_mode))
        return CM_ENOTSUP;
    fd = open(prev, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd == -1)
        return CM_ENOTSUP;
    if (fstat(fd, &sv) == -1 || !S_ISREG(sv.st_mode) || sv.st_nlink != 1 ||
        sv.st_uid != geteuid() || sv.st_ino == sp.st_ino ||
        (expect != NULL && !same_id(&sv, expect))) {
        close(fd);
        return CM_ENOTSUP;
    }
    *out = fd;
    return CM_OK;
}

/* Makes what was written to @fd (PATH.prev) durable, notes its identity and
 * swaps it with PATH. A failure leaves PATH as it was. */
static int swap_in(int fd, int rc, const char *path, const char *prev, struct cm_file_id *written)
{
    struct stat sb;

    if (rc == CM_OK && fdatasync(fd) == -1)
        rc = cm_err_from_errno(errno);
    if (rc == CM_OK && fstat(fd, &sb) == 0)
        file_id(&sb, written);
    if (close(fd) == -1 && rc == CM_OK)
        rc = cm_err_from_errno(errno);
    if (rc == CM_OK && renameat2(AT_FDCWD, prev, AT_FDCWD, path, RENAME_EXCHANGE) == -1)
        rc = errno == EINVAL || errno == ENOSYS ? CM_ENOTSUP : cm_err_from_errno(errno);
    return rc;
}

/* The whole content into PATH.prev, then swapped in (see open_prev()). */
static int rotate(const char *path, const char *prev, const struct iovec *iov, size_t n,
                  mode_t mode, struct cm_file_id *written)
{
    struct stat sb;
    off_t len = 0;
    int fd, rc = open_prev(path, prev, NULL, &fd);

    if (rc != CM_OK)
        return rc;
    for (size_t i = 0; i < n; i++)
        len += (off_t)iov[i].iov_len;
    if (fstat(fd, &sb) == -1)
        rc = cm_err_from_errno(errno);
    else if ((sb.st_mode & 07777) != mode && fchmod(fd, mode) == -1)
        rc = cm_err_from_errno(errno);
    if (rc == CM_OK)
        rc = writev_all(fd, iov, n);
    if (rc == CM_OK)
        rc = write_all(fd, "\n", 1);
    if (rc == CM_OK && ftruncate(fd, len + 1) == -1)
        rc = cm_err_from_errno(errno);
    return swap_in(fd, rc, path, prev, written);
}

/* pwritev() of every part of one region at @off, partial writes resumed. */
static int pwritev_all(int fd, const struct iovec *iov, size_t n, off_t off)
{
    for (size_t i = 0; i < n; i++) {
        const char *p = iov[i].iov_base;
        size_t left = iov[i].iov_len;

        while (left > 0) {
            ssize_t w = pwrite(fd, p, left, off);

            if (w == -1 && errno == EINTR)
                continue;
            if (w == -1)
                return cm_err_from_errno(errno);
            if (w == 0)
                return CM_EIO;
            p += w;
            left -= (size_t)w;
            off += w;
        }
    }
    return CM_OK;
}

int cm_file_patch_atomic(const char *path, const struct cm_file_id *prev_id,
                         const struct cm_file_patch *patch, size_t n, struct cm_file_id *written,
                         char *err, size_t errlen)
{
    char prev[PATH_CAP];
    int fd, rc;

    if (snprintf(prev, sizeof(prev), "%s" CM_FILE_PREV_SUFFIX, path) >= (int)sizeof(prev)) {
        snprintf(err, errlen, "%s: path too long", path);
        return CM_ETOOBIG;
    }
    rc = open_prev(path, prev, prev_id, &fd);
    if (rc != CM_OK)
        return rc;
    for (size_t i = 0; rc == CM_OK && i < n; i++) {
        if (patch[i].off < 0 || patch[i].off > prev_id->size)
            rc = CM_EINVAL;
        else
            rc = pwritev_all(fd, patch[i].iov, patch[i].n, patch[i].off);
    }
    rc = swap_in(fd, rc, path, prev, written);
    if (rc == CM_OK) {
        rc = fsync_dir_of(path);
        if (rc != CM_OK)
            snprintf(err, errlen, "%s: cannot sync its directory: %s", path, cm_strerror(rc));
    } else if (rc != CM_ENOTSUP) {
        snprintf(err, errlen, "%s: cannot write (in place of %s): %s", path, prev, cm_strerror(rc));
    }
    return rc;
}

int cm_file_write_text_atomic(const char *path, const char *text, mode_t mode, char *err,
                              size_t errlen)
{
    return cm_file_write_atomic(path, text, strlen(text), mode, err, errlen);
}

int cm_file_write_atomic(const char *path, const char *text, size_t len, mode_t mode, char *err,
                         size_t errlen)
{
    struct iovec iov = {.iov_base = (void *)(uintptr_t)text, .iov_len = len};

    return cm_file_write_atomicv(path, &iov, 1, mode, NULL, err, errlen);
}

int cm_file_write_atomicv(const char *path, const struct iovec *iov, size_t n, mode_t mode,
                          struct cm_file_id *written, char *err, size_t errlen)
{
    char tmp[PATH_CAP], prev[PATH_CAP];
    const char *what = "cannot write";
    int fd = -1, rc;

    if (snprintf(prev, sizeof(prev), "%s" CM_FILE_PREV_SUFFIX, path) >= (int)sizeof(prev)) {
        snprintf(err, errlen, "%s: path too long", path);
        return CM_ETOOBIG;
    }
    rc = rotate(path, prev, iov, n, mode, written);
    if (rc == CM_OK) {
        rc = fsync_dir_of(path);
        if (rc != CM_OK)
            snprintf(err, errlen, "%s: cannot sync its directory: %s", path, cm_strerror(rc));
        return rc;
    }
    if (rc != CM_ENOTSUP) {
        snprintf(err, errlen, "%s: cannot write (in place of %s): %s", path, prev, cm_strerror(rc));
        return rc;
    }
    rc = tmp_create(path, mode, tmp, sizeof(tmp), &fd);
    if (rc != CM_OK) {
        snprintf(err, errlen, "%s: cannot create a temporary file beside it: %s", path,
                 cm_strerror(rc));
        return rc;
    }
    rc = tmp_fill(fd, iov, n, written);
    if (rc == CM_OK) {
        rc = keep_prev(path, prev);
        what = "cannot keep the previous file as " CM_FILE_PREV_SUFFIX;
    }
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

/* ---- loading ---- */

int cm_file_read_capped(int fd, void *buf, size_t cap, size_t *len)
{
    *len = 0;
    while (*len < cap) {
        ssize_t n = read(fd, (char *)buf + *len, cap - *len);

        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1)
            return cm_err_from_errno(errno);
        if (n == 0)
            break;
        *len += (size_t)n;
    }
    return CM_OK;
}

/* Reads all of @fd (a regular file of at most @max bytes) into a new
 * NUL-terminated buffer. */
static int read_fd(int fd, size_t max, char **out, size_t *out_len, char *why, size_t cap)
{
    struct stat sb;
    size_t len = 0, bufcap;
    char *buf;

    if (fstat(fd, &sb) == -1 || !S_ISREG(sb.st_mode)) {
        snprintf(why, cap, "not a regular file");
        return CM_EINVAL;
    }
    if ((uint64_t)sb.st_size > max) {
        snprintf(why, cap, "too large (%jd bytes, max %zu)", (intmax_t)sb.st_size, max);
        return CM_ETOOBIG;
    }
    bufcap = (size_t)sb.st_size + CHUNK_MIN_CAP; /* room to see it grow while we read */
    buf = malloc(bufcap + 1);
    if (buf == NULL)
        return CM_ENOMEM;
    for (;;) {
        ssize_t n = read(fd, buf + len, bufcap - len);

        if (n == -1 && errno == EINTR)
            continue;
        if (n == -1 || (n > 0 && len + (size_t)n > max)) {
            snprintf(why, cap, "%s", n == -1 ? strerror(errno) : "grew past the limit");
            free(buf);
            return n == -1 ? CM_EIO : CM_ETOOBIG;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len == bufcap) {
            snprintf(why, cap, "changed while being read");
            free(buf);
            return CM_EIO;
        }
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return CM_OK;
}

/* Reads and parses one file. CM_ENOENT when it does not exist. */
static int load_one(const char *path, size_t max, cm_file_parse_fn *parse, void *arg, char *why,
                    size_t cap)
{
    char *text = NULL;
    size_t len = 0;
    int fd, rc;

    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd == -1) {
        rc = cm_err_from_errno(errno);
        snprintf(why, cap, "%s", rc == CM_ENOENT ? "not found" : cm_strerror(rc));
        return rc;
    }
    rc = read_fd(fd, max, &text, &len, why, cap);
    close(fd);
    if (rc != CM_OK)
        return rc;
    if (len == 0) {
        snprintf(why, cap, "empty (truncated?)");
        rc = CM_EPARSE;
    } else {
        rc = parse(arg, path, text, len, why, cap);
    }
    free(text);
    return rc;
}

/*
 * After a fallback: the damaged PATH goes to PATH.corrupt (for inspection,
 * and so the next write cannot keep it as PATH.prev in place of the good
 * one), and PATH becomes a link to PATH.prev, so a restart before the next
 * write loads the same state again.
 */
static void move_aside(const char *path, const char *prev)
{
    char dst[PATH_CAP];

    if (snprintf(dst, sizeof(dst), "%s" CM_FILE_CORRUPT_SUFFIX, path) >= (int)sizeof(dst))
        return;
    if (rename(path, dst) == -1) {
        cm_log_warn("state file %s: cannot move it aside to %s: %s", path, dst, strerror(errno));
        return;
    }
    if (link(prev, path) == -1)
        cm_log_warn("state file %s: moved aside to %s; cannot restore it from %s: %s", path, dst,
                    prev, strerror(errno));
    else
        cm_log_warn("state file %s: moved aside to %s and restored from %s", path, dst, prev);
}

int cm_file_load(const char *path, size_t max, cm_file_parse_fn *parse, void *arg, unsigned flags,
                 struct cm_file_load_info *info, char *err, size_t errlen)
{
    struct cm_file_load_info local;
    char prev[PATH_CAP], why[READ_ERR_CAP], why_prev[READ_ERR_CAP];
    int rc, rc_prev;

    if (info == NULL)
        info = &local;
    memset(info, 0, sizeof(*info));
    rc = load_one(path, max, parse, arg, why, sizeof(why));
    info->found = rc != CM_ENOENT;
    /* No PATH is no state (a first start, or removed on purpose): PATH.prev
     * only ever stands in for a damaged PATH. */
    if (rc == CM_OK || rc == CM_ENOMEM || rc == CM_ENOENT)
        return rc;
    if (snprintf(prev, sizeof(prev), "%s" CM_FILE_PREV_SUFFIX, path) >= (int)sizeof(prev)) {
        snprintf(err, errlen, "%s: %s", path, why);
        return rc;
    }
    rc_prev = load_one(prev, max, parse, arg, why_prev, sizeof(why_prev));
    if (rc_prev == CM_OK) {
        info->found = info->fell_back = true;
        snprintf(info->reason, sizeof(info->reason), "%s: %s", path, why);
        cm_log_warn("state file %s: %s; loaded the previous one, %s, instead", path, why, prev);
        if (!(flags & CM_FILE_LOAD_READONLY))
            move_aside(path, prev);
        return CM_OK;
    }
    snprintf(err, errlen, "%s: %s; %s: %s", path, why, prev, why_prev);
    return rc;
}

int cm_file_check_dir(const char *path, char *err, size_t errlen)
{
    char dir[PATH_CAP];
    struct stat sb;
    int rc;

    rc = dir_of(path, dir, sizeof(dir));
    if (rc != CM_OK) {
        snprintf(err, errlen, "%s: path too long", path);
        return rc;
    }
    if (stat(dir, &sb) == -1) {
        rc = cm_err_from_errno(errno);
        if (rc == CM_ENOENT)
            snprintf(err, errlen,
                     "%s: directory %s does not exist; create it (mkdir -p %s) or change the "
                     "state_file path",
                     path, dir, dir);
        else
            snprintf(err, errlen, "%s: directory %s: %s", path, dir, cm_strerror(rc));
        return rc;
    }
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "%s: %s is not a directory; change the state_file path", path, dir);
        return CM_EINVAL;
    }
    if (access(dir, W_OK | X_OK) == -1) {
        rc = cm_err_from_errno(errno);
        snprintf(err, errlen,
                 "%s: directory %s is not writable (%s); give the daemon's user write access "
                 "to it or change the state_file path",
                 path, dir, cm_strerror(rc));
        return rc;
    }
    return CM_OK;
}
