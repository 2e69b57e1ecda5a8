/* SPDX-License-Identifier: Apache-2.0 */
/* test_cm_file.c -- state files: exclusive temp file, PATH.prev, loading with the fallback;
 * the capped reader. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/cm_err.h"
#include "common/cm_file.h"

/*
 * The temporary file's name comes from getrandom(); this definition takes the
 * place of libc's so a test can make the first name known in advance (an
 * attacker who guesses it) and see that whatever sits there is left alone.
 */
static uint64_t forced_token;
static unsigned forced_left;

ssize_t getrandom(void *buf, size_t len, unsigned int flags)
{
    static uint64_t counter = 0x1234;
    uint64_t v = forced_left > 0 ? forced_token : ++counter * 0x9e3779b97f4a7c15ull;

    (void)flags;
    if (forced_left > 0)
        forced_left--;
    memset(buf, 0, len);
    memcpy(buf, &v, len < sizeof(v) ? len : sizeof(v));
    return (ssize_t)len;
}

struct fx {
    char dir[64];
    char path[128];
    char prev[160];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_cm_file.XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/state.json", f->dir);
    snprintf(f->prev, sizeof(f->prev), "%s.prev", f->path);
    forced_left = 0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    DIR *d = opendir(f->dir);
    struct dirent *e;

    while (d != NULL && (e = readdir(d)) != NULL) {
        char p[512];

        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
        unlink(p);
    }
    if (d != NULL)
        closedir(d);
    rmdir(f->dir);
    free(f);
    return 0;
}

static void put_file(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

/* The whole file, or "" when it cannot be read. */
static const char *slurp(const char *path, char *buf, size_t cap)
{
    FILE *fp = fopen(path, "r");
    size_t n = 0;

    buf[0] = '\0';
    if (fp == NULL)
        return buf;
    n = fread(buf, 1, cap - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static size_t dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;

    while (d != NULL && (e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    if (d != NULL)
        closedir(d);
    return n;
}

static void test_write_keeps_prev(void **state)
{
    struct fx *f = *state;
    char err[512], buf[64];
    struct stat sb;

    assert_int_equal(cm_file_write_text_atomic(f->path, "one", 0600, err, sizeof(err)), CM_OK);
    assert_string_equal(slurp(f->path, buf, sizeof(buf)), "one\n");
    assert_int_not_equal(access(f->prev, F_OK), 0); /* nothing to keep yet */
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    assert_int_equal(cm_file_write_text_atomic(f->path, "two", 0600, err, sizeof(err)), CM_OK);
    assert_string_equal(slurp(f->path, buf, sizeof(buf)), "two\n");
    assert_string_equal(slurp(f->prev, buf, sizeof(buf)), "one\n");
    assert_int_equal(cm_file_write_text_atomic(f->path, "three", 0600, err, sizeof(err)), CM_OK);
    assert_string_equal(slurp(f->path, buf, sizeof(buf)), "three\n");
    assert_string_equal(slurp(f->prev, buf, sizeof(buf)), "two\n");
    assert_int_equal(dir_entries(f->dir), 2); /* no temporary left behind */
}

/* Parts are written in order, empty ones and more than one writev() batch included. */
static void test_write_parts(void **state)
{
    enum { PARTS = 700 };
    struct fx *f = *state;
    static char want[PARTS * 4 + 2], buf[sizeof(want) + 16];
    static char text[PARTS][4];
    struct iovec iov[PARTS];
    size_t o = 0;
    char err[512];

    for (size_t i = 0; i < PARTS; i++) {
        size_t len = i % 4; /* 0..3 bytes: every fourth part is empty */

        for (size_t k = 0; k < len; k++)
            text[i][k] = (char)('a' + (i + k) % 26);
        memcpy(want + o, text[i], len);
        o += len;
        iov[i] = (struct iovec){.iov_base = text[i], .iov_len = len};
    }
    want[o++] = '\n';
    want[o] = '\0';
    assert_int_equal(cm_file_write_atomicv(f->path, iov, PARTS, 0600, NULL, err, sizeof(err)),
                     CM_OK);
    assert_string_equal(slurp(f->path, buf, sizeof(buf)), want);
    assert_int_equal(cm_file_write_atomicv(f->path, iov, 0, 0600, NULL, err, sizeof(err)), CM_OK);
    assert_string_equal(slurp(f->path, buf, sizeof(buf)), "\n");
    assert_string_equal(slurp(f->prev, buf, sizeof(buf)), want);
}

/* Parts larger than one write (64 KB) and parts across that bound: split
 * between writes, written whole and in order. */
static void test_write_large_parts(void **state)
{
    static const size_t sizes[] = {100000, 3, 65533, 0, 70000, 1, 131072};
    enum { N = sizeof(sizes) / sizeof(sizes[0]) };
    struct fx *f = *state;
    struct iovec iov[N];
    char *parts[N], *want, *buf, err[512];
    size_t total = 0, o = 0;

    for (size_t i = 0; i < N; i++)
        total += sizes[i];
    want = malloc(total + 2);
    buf = malloc(total + 16);
    assert_true(want != NULL && buf != NULL);
    for (size_t i = 0; i < N; i++) {
        parts[i] = malloc(sizes[i] + 1);
        assert_non_null(parts[i]);
        for (size_t k = 0; k < sizes[i]; k++)
            parts[i][k] = (char)('a' + (i * 7 + k) % 26);
        memcpy(want + o, parts[i], sizes[i]);
        o += sizes[i];
        iov[i] = (struct iovec){.iov_base = parts[i], .iov_len = sizes[i]};
    }
    want[o++] = '\n';
    want[o] = '\0';
    assert_int_equal(cm_file_write_atomicv(f->path, iov, N, 0600, NULL, err, sizeof(err)), CM_OK);
    assert_string_equal(slurp(f->path, buf, total + 16), want);
    for (size_t i = 0; i < N; i++)
        free(parts[i]);
    free(want);
    free(buf);
}

/* bug: the temporary name was predictable and opened with O_TRUNC, following a
 * symlink planted there (any file the daemon could write was clobbered). */
static void test_symlink_at_temp_path_not_followed(void **state)
{
    struct fx *f = *state;
    char err[512], tmp[256], victim[160], old_tmp[256], buf[64];

    snprintf(victim, sizeof(victim), "%s/victim", f->dir);
    put_file(victim, "precious\n");
    /* the name the old code used ... */
    snprintf(old_tmp, sizeof(old_tmp), "%s.tmp.%ld", f->path, (long)getpid());
    assert_int_equal(symlink(victim, old_tmp), 0);
    /* ... and the first name the new code will try */
    forced_token = 0x00c0ffee00c0ffeeull;
    forced_left = 1;
    snprintf(tmp, sizeof(tmp), "%s.tmp.%016" PRIx64, f->path, forced_token);
    assert_int_equal(symlink(victim, tmp), 0);

    assert_int_equal(cm_file_write_text_atomic(f->path, "new", 0600, err, sizeof(err)), CM_OK);
    assert_string_equal(slurp(victim, buf, sizeof(buf)), "precious\n");
    assert_string_equal(slurp(f->path, buf, sizeof(buf)), "new\n");
    /* the planted links are still links, to the untouched victim */
    assert_int_equal(readlink(tmp, buf, sizeof(buf)) > 0, 1);
    assert_int_equal(readlink(old_tmp, buf, sizeof(buf)) > 0, 1);
}

/* A dangling symlink at the temp name (pointing where a file would be created). */
static void test_dangling_symlink_at_temp_path(void **state)
{
    struct fx *f = *state;
    char err[512], tmp[256], target[160];

    snprintf(target, sizeof(target), "%s/created-through-link", f->dir);
    forced_token = 0x0badc0de0badc0deull;
    forced_left = CM_FILE_TMP_ATTEMPTS;
    snprintf(tmp, sizeof(tmp), "%s.tmp.%016" PRIx64, f->path, forced_token);
    assert_int_equal(symlink(target, tmp), 0);
    /* every attempt lands on the link: refused, nothing created through it */
    assert_int_not_equal(cm_file_write_text_atomic(f->path, "x", 0600, err, sizeof(err)), CM_OK);
    assert_non_null(strstr(err, f->path));
    assert_int_not_equal(access(target, F_OK), 0);
    assert_int_not_equal(access(f->path, F_OK), 0);
}

static ino_t inode_of(const char *path)
{
    struct stat sb;

    assert_int_equal(lstat(path, &sb), 0);
    return sb.st_ino;
}

/* Once PATH.prev exists, the new content goes into its inode and the two
 * names swap: no new file, PATH never missing, the mode reapplied. */
static void test_write_rotates_in_place(void **state)
{
    struct fx *f = *state;
    char err[512], buf[64];
    ino_t prev_ino, path_ino;
    struct stat sb;

    assert_int_equal(cm_file_write_text_atomic(f->path, "one", 0600, err, sizeof(err)), CM_OK);
    assert_int_equal(cm_file_write_text_atomic(f->path, "two, longer", 0600, err, sizeof(err)),
                     CM_OK);
    prev_ino = inode_of(f->prev);
    path_ino = inode_of(f->path);
    assert_int_equal(chmod(f->prev, 0644), 0);
    assert_int_equal(cm_file_write_text_atomic(f->path, "3", 0600, err, sizeof(err)), CM_OK);
    assert_string_equal(slurp(f->path, buf, sizeof(buf)), "3\n"); /* shorter: truncated */
    assert_string_equal(slurp(f->prev, buf, sizeof(buf)), "two, longer\n");
    assert_true(inode_of(f->path) == prev_ino);
    assert_true(inode_of(f->prev) == path_ino);
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_int_equal(dir_entries(f->dir), 2);
}

static int write_id(struct fx *f, const char *text, struct cm_file_id *id)
{
    struct iovec iov = {.iov_base = (void *)(uintptr_t)text, .iov_len = strlen(text)};
    char err[512];

    return cm_file_write_atomicv(f->path, &iov, 1, 0600, id, err, sizeof(err));
}

/* A layout of fixed slots: the file written before the last one gets only
 * the regions that differ, then takes PATH's place; a PATH.prev that is not
 * that file any more (replaced, touched) is refused with nothing changed. */
static void test_patch_in_place(void **state)
{
    struct fx *f = *state;
    struct cm_file_id a, b, c, d;
    char xs[] = "XXXX", ys[] = "YY";
    struct iovec x = {.iov_base = xs, .iov_len = 4}, y = {.iov_base = ys, .iov_len = 2};
    struct cm_file_patch p[2] = {{.off = 5, .iov = &x, .n = 1}, {.off = 12, .iov = &y, .n = 1}};
    char err[512], buf[64];
    struct timespec ts[2] = {{0, UTIME_OMIT}, {12345, 0}};

    assert_int_equal(write_id(f, "aaaa bbbb cccc", &a), CM_OK);
    assert_int_equal(write_id(f, "1111 2222 3333", &b), CM_OK);
    assert_int_equal(a.size, 15);
    /* PATH.prev holds a: two regions make it the next content. */
    assert_int_equal(cm_file_patch_atomic(f->path, &a, p, 2, &c, err, sizeof(err)), CM_OK);
    assert_string_equal(slurp(f->path, buf, sizeof(buf)), "aaaa XXXX ccYY\n");
    assert_string_equal(slurp(f->prev, buf, sizeof(buf)), "1111 2222 3333\n");
    assert_true(c.ino == a.ino);
    assert_int_equal(inode_of(f->path), a.ino);
    /* Now PATH.prev holds b; a stale identity (a) is refused, nothing written. */
    assert_int_equal(cm_file_patch_atomic(f->path, &a, p, 1, &d, err, sizeof(err)), CM_ENOTSUP);
    assert_string_equal(slurp(f->prev, buf, sizeof(buf)), "1111 2222 3333\n");
    assert_string_equal(slurp(f->path, buf, sizeof(buf)), "aaaa XXXX ccYY\n");
    /* Touched since (another writer, an editor): refused as well. */
    assert_int_equal(utimensat(AT_FDCWD, f->prev, ts, 0), 0);
    assert_int_equal(cm_file_patch_atomic(f->path, &b, p, 1, &d, err, sizeof(err)), CM_ENOTSUP);
    assert_string_equal(slurp(f->prev, buf, sizeof(buf)), "1111 2222 3333\n");
}

/* PATH.prev is written in place only when it is a plain file with one link:
 * a symlink planted there, or a second name of another file, is left alone. */
static void test_prev_not_written_through(void **state)
{
    struct fx *f = *state;
    char err[512], buf[64], victim[160];

    snprintf(victim, sizeof(victim), "%s/victim", f->dir);
    put_file(victim, "precious\n");
    assert_int_equal(cm_file_write_text_atomic(f->path, "one", 0600, err, sizeof(err)), CM_OK);
    assert_int_equal(symlink(victim, f->prev), 0);
    assert_int_equal(cm_file_write_text_atomic(f->path, "two", 0600, err, sizeof(err)), CM_OK);
    assert_string_equal(slurp(victim, buf, sizeof(buf)), "precious\n");
    assert_string_equal(slurp(f->path, buf, sizeof(buf)), "two\n");
    assert_string_equal(slurp(f->prev, buf, sizeof(buf)), "one\n");
    /* A hard link: PATH.prev and the victim are one inode. */
    assert_int_equal(unlink(f->prev), 0);
    assert_int_equal(link(victim, f->prev), 0);
    assert_int_equal(cm_file_write_text_atomic(f->path, "three", 0600, err, sizeof(err)), CM_OK);
    assert_string_equal(slurp(victim, buf, sizeof(buf)), "precious\n");
    assert_string_equal(slurp(f->path, buf, sizeof(buf)), "three\n");
    assert_string_equal(slurp(f->prev, buf, sizeof(buf)), "two\n");
}

/* ---- loading ---- */

/* A toy format: "ok:<text>\n"; anything else (a truncated file) is refused. */
struct toy {
    char got[64];
    int calls;
};

static int toy_parse(void *arg, const char *path, const char *text, size_t len, char *err,
                     size_t errlen)
{
    struct toy *t = arg;

    (void)path;
    t->calls++;
    if (len < 4 || strncmp(text, "ok:", 3) != 0 || text[len - 1] != '\n') {
        snprintf(err, errlen, "not a toy file");
        return CM_EPARSE;
    }
    snprintf(t->got, sizeof(t->got), "%.*s", (int)(len - 4), text + 3);
    return CM_OK;
}

static int load(struct fx *f, unsigned flags, struct toy *t, struct cm_file_load_info *info,
                char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    return cm_file_load(f->path, 1024, toy_parse, t, flags, info, err, errlen);
}

static void test_load_current(void **state)
{
    struct fx *f = *state;
    struct cm_file_load_info info;
    struct toy t;
    char err[512] = "";

    assert_int_equal(load(f, 0, &t, &info, err, sizeof(err)), CM_ENOENT); /* first start */
    assert_false(info.found);
    put_file(f->path, "ok:current\n");
    put_file(f->prev, "ok:previous\n");
    assert_int_equal(load(f, 0, &t, &info, err, sizeof(err)), CM_OK);
    assert_string_equal(t.got, "current");
    assert_false(info.fell_back);
}

/* bug: a truncated state file at start served NODATA until the first push. */
static void test_load_falls_back_on_truncated(void **state)
{
    struct fx *f = *state;
    struct cm_file_load_info info;
    struct toy t;
    char err[512] = "", corrupt[200], buf[64];

    put_file(f->path, "ok:curr"); /* cut short */
    put_file(f->prev, "ok:previous\n");
    /* --check-config: the fallback is reported, nothing moves */
    assert_int_equal(load(f, CM_FILE_LOAD_READONLY, &t, &info, err, sizeof(err)), CM_OK);
    assert_true(info.fell_back);
    assert_non_null(strstr(info.reason, f->path));
    assert_non_null(strstr(info.reason, "not a toy file"));
    assert_int_equal(access(f->path, F_OK), 0);
    /* start: the previous file serves; the damaged one is moved aside and
     * PATH restored from .prev, so a restart before the next write is the same */
    assert_int_equal(load(f, 0, &t, &info, err, sizeof(err)), CM_OK);
    assert_true(info.fell_back);
    assert_string_equal(t.got, "previous");
    snprintf(corrupt, sizeof(corrupt), "%s.corrupt", f->path);
    assert_string_equal(slurp(corrupt, buf, sizeof(buf)), "ok:curr");
    assert_string_equal(slurp(f->path, buf, sizeof(buf)), "ok:previous\n");
    assert_string_equal(slurp(f->prev, buf, sizeof(buf)), "ok:previous\n");
    assert_int_equal(load(f, 0, &t, &info, err, sizeof(err)), CM_OK);
    assert_false(info.fell_back);
    assert_string_equal(t.got, "previous");
    /* the next write keeps the good state as .prev, never the damaged file */
    assert_int_equal(cm_file_write_text_atomic(f->path, "ok:next", 0600, err, sizeof(err)), CM_OK);
    assert_string_equal(slurp(f->prev, buf, sizeof(buf)), "ok:previous\n");
    assert_string_equal(slurp(f->path, buf, sizeof(buf)), "ok:next\n");
}

static void test_load_falls_back_on_other_damage(void **state)
{
    struct fx *f = *state;
    struct cm_file_load_info info;
    struct toy t;
    char err[512] = "", big[2048];

    put_file(f->prev, "ok:previous\n");
    /* empty */
    put_file(f->path, "");
    assert_int_equal(load(f, CM_FILE_LOAD_READONLY, &t, &info, err, sizeof(err)), CM_OK);
    assert_true(info.fell_back);
    assert_non_null(strstr(info.reason, "empty"));
    /* too large: refused before parsing */
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    put_file(f->path, big);
    assert_int_equal(load(f, CM_FILE_LOAD_READONLY, &t, &info, err, sizeof(err)), CM_OK);
    assert_true(info.fell_back);
    assert_non_null(strstr(info.reason, "too large"));
    assert_int_equal(t.calls, 1); /* only .prev was parsed */
    /* not a regular file */
    unlink(f->path);
    assert_int_equal(mkdir(f->path, 0700), 0);
    assert_int_equal(load(f, CM_FILE_LOAD_READONLY, &t, &info, err, sizeof(err)), CM_OK);
    assert_true(info.fell_back);
    assert_non_null(strstr(info.reason, "not a regular file"));
    rmdir(f->path);
    /* missing: no state, whatever .prev holds (removed on purpose to start afresh) */
    assert_int_equal(load(f, 0, &t, &info, err, sizeof(err)), CM_ENOENT);
    assert_false(info.found);
    assert_int_equal(t.calls, 0);
}

static void test_load_both_bad(void **state)
{
    struct fx *f = *state;
    struct cm_file_load_info info;
    struct toy t;
    char err[512] = "";

    put_file(f->path, "garbage");
    put_file(f->prev, "more garbage");
    assert_int_equal(load(f, 0, &t, &info, err, sizeof(err)), CM_EPARSE);
    assert_true(info.found);
    assert_non_null(strstr(err, f->path));
    assert_non_null(strstr(err, f->prev));
    assert_int_equal(access(f->path, F_OK), 0); /* nothing moved when nothing loaded */
    unlink(f->prev);
    assert_int_equal(load(f, 0, &t, &info, err, sizeof(err)), CM_EPARSE);
    assert_non_null(strstr(err, "not found"));
}

/* Reading follows a symlink (operators link state files elsewhere). */
static void test_load_through_symlink(void **state)
{
    struct fx *f = *state;
    struct toy t;
    char err[512] = "", real[160];

    snprintf(real, sizeof(real), "%s/real", f->dir);
    put_file(real, "ok:linked\n");
    assert_int_equal(symlink(real, f->path), 0);
    assert_int_equal(load(f, 0, &t, NULL, err, sizeof(err)), CM_OK);
    assert_string_equal(t.got, "linked");
}

static void test_check_dir(void **state)
{
    struct fx *f = *state;
    char err[512] = "", p[200], file[160];

    assert_int_equal(cm_file_check_dir(f->path, err, sizeof(err)), CM_OK);
    snprintf(p, sizeof(p), "%s/nope/state.json", f->dir);
    assert_int_equal(cm_file_check_dir(p, err, sizeof(err)), CM_ENOENT);
    assert_non_null(strstr(err, "does not exist"));
    assert_non_null(strstr(err, "mkdir -p"));
    snprintf(file, sizeof(file), "%s/afile", f->dir);
    put_file(file, "x");
    snprintf(p, sizeof(p), "%s/state.json", file);
    assert_int_not_equal(cm_file_check_dir(p, err, sizeof(err)), CM_OK);
    assert_non_null(strstr(err, "not a directory"));
}

/* cm_file_read_capped() over a pipe holding @size bytes (then end of file). */
static void test_read_capped(void **state)
{
    static const struct {
        size_t size, cap, want;
    } cases[] = {
        {0, 16, 0},         {1, 16, 1},         {15, 16, 15},
        {16, 16, 16},                     /* full: caller cannot tell */
        {17, 16, 16},       {17, 18, 17}, /* one more than accepted: the caller's "too large" */
        {4000, 4096, 4000}, {5000, 4096, 4096}, {3, 0, 0},
    };
    char in[8192], out[8192];

    (void)state;
    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (char)('a' + i % 26);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int p[2];
        size_t len = 99;

        print_message("size %zu cap %zu\n", cases[i].size, cases[i].cap);
        assert_int_equal(pipe(p), 0);
        assert_int_equal(write(p[1], in, cases[i].size), (ssize_t)cases[i].size);
        close(p[1]);
        memset(out, 0, sizeof(out));
        assert_int_equal(cm_file_read_capped(p[0], out, cases[i].cap, &len), CM_OK);
        assert_int_equal(len, cases[i].want);
        assert_memory_equal(out, in, len);
        assert_int_equal(out[len], 0); /* nothing past what it reports */
        close(p[0]);
    }
}

static void test_read_capped_error(void **state)
{
    char buf[8];
    size_t len = 99;

    (void)state;
    assert_int_equal(cm_file_read_capped(-1, buf, sizeof(buf), &len), -EBADF);
    assert_int_equal(len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_keeps_prev, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_parts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_large_parts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_rotates_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_patch_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prev_not_written_through, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_at_temp_path_not_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dangling_symlink_at_temp_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_current, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_falls_back_on_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_falls_back_on_other_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_both_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_through_symlink, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_dir, setup, teardown),
        cmocka_unit_test(test_read_capped),
        cmocka_unit_test(test_read_capped_error),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
