/*
 * test_fsutil: crash-safe file helpers (proto/fsutil.h).
 *
 *  - fsu_write_atomic creates a file with exactly `mode`, replaces an
 *    existing one (content and mode), leaves no temporary file behind, and
 *    with excl refuses an existing path with SZ_EEXIST without touching it;
 *  - fsu_mkdirs creates nested paths, is idempotent, fails on a file in the
 *    way;
 *  - fsu_read_file honours maxlen (SZ_ETOOBIG, boundary inclusive) and
 *    reports a missing file as SZ_ENOENT;
 *  - fsu_fsync_dir / fsu_fsync_parent, fsu_now_ms, fsu_wall_s.
 * Every test works in its own mkdtemp directory under /tmp, removed after.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "fsutil.h"
#include "sztest.h"

struct fx {
    char dir[64];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/sz_fsutil_XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;

    chmod(f->dir, 0700);
    sztest_rmrf(f->dir);
    free(f);
    return 0;
}

static void path_in(const struct fx *f, const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", f->dir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

/* Number of entries (besides . and ..) in dir. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* Content of path must equal (buf, len). */
static void assert_content(const char *path, const void *buf, size_t len)
{
    uint8_t *got = NULL;
    size_t glen = 0;
    int rc = fsu_read_file(path, 1u << 20, &got, &glen);
    int same;

    assert_int_equal(rc, 0);
    same = glen == len && (len == 0 || memcmp(got, buf, len) == 0);
    free(got);
    assert_true(same);
}

static mode_t mode_of(const char *path)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return st.st_mode & 07777;
}

/* ---- fsu_write_atomic --------------------------------------------------- */

static void test_write_creates_with_mode(void **state)
{
    struct fx *f = *state;
    char p1[128], p2[128], p3[128];
    mode_t old = umask(022);

    path_in(f, "a.bin", p1, sizeof(p1));
    path_in(f, "b.bin", p2, sizeof(p2));
    path_in(f, "c.bin", p3, sizeof(p3));
    assert_int_equal(fsu_write_atomic(p1, "hello", 5, 0600, 0), 0);
    assert_int_equal(fsu_write_atomic(p2, "world!", 6, 0640, 1), 0);
    assert_int_equal(fsu_write_atomic(p3, "", 0, 0644, 0), 0);
    umask(old);
    assert_int_equal(mode_of(p1), 0600);
    assert_int_equal(mode_of(p2), 0640);
    assert_int_equal(mode_of(p3), 0644);
    assert_content(p1, "hello", 5);
    assert_content(p2, "world!", 6);
    assert_content(p3, "", 0);
    /* Only the three files: no temporary left behind. */
    assert_int_equal(count_entries(f->dir), 3);
}

static void test_write_replaces(void **state)
{
    struct fx *f = *state;
    static uint8_t big[300000];
    char p[128];

    for (size_t i = 0; i < 300000; i++)
        big[i] = (uint8_t)(i * 2654435761u >> 13);
    path_in(f, "r.bin", p, sizeof(p));
    assert_int_equal(fsu_write_atomic(p, "first version, long", 19, 0644, 0), 0);
    assert_content(p, "first version, long", 19);
    /* Shorter content: no trailing bytes of the old file survive. */
    assert_int_equal(fsu_write_atomic(p, "v2", 2, 0600, 0), 0);
    assert_content(p, "v2", 2);
    assert_int_equal(mode_of(p), 0600);
    /* Larger content. */
    assert_int_equal(fsu_write_atomic(p, big, 300000, 0640, 0), 0);
    assert_content(p, big, 300000);
    assert_int_equal(mode_of(p), 0640);
    assert_int_equal(count_entries(f->dir), 1);
}

static void test_write_excl(void **state)
{
    struct fx *f = *state;
    char p[128];
    struct stat st1, st2;

    path_in(f, "x.bin", p, sizeof(p));
    assert_int_equal(fsu_write_atomic(p, "original", 8, 0600, 1), 0);
    assert_int_equal(stat(p, &st1), 0);
    assert_int_equal(fsu_write_atomic(p, "intruder!", 9, 0644, 1), SZ_EEXIST);
    /* Untouched: same content, same inode, same mode. */
    assert_content(p, "original", 8);
    assert_int_equal(stat(p, &st2), 0);
    assert_int_equal(st1.st_ino, st2.st_ino);
    assert_int_equal(st2.st_mode & 07777, 0600);
    assert_int_equal(count_entries(f->dir), 1);
    /* Without excl the same call replaces. */
    assert_int_equal(fsu_write_atomic(p, "intruder!", 9, 0644, 0), 0);
    assert_content(p, "intruder!", 9);
}

static void test_write_bad_dir(void **state)
{
    struct fx *f = *state;
    char p[160];

    snprintf(p, sizeof(p), "%s/no/such/dir/file", f->dir);
    assert_int_not_equal(fsu_write_atomic(p, "x", 1, 0600, 0), 0);
    assert_int_not_equal(fsu_write_atomic(p, "x", 1, 0600, 1), 0);
    assert_int_equal(access(p, F_OK), -1);
    assert_int_equal(count_entries(f->dir), 0);
}

/* ---- fsu_mkdirs --------------------------------------------------------- */

static void test_mkdirs(void **state)
{
    struct fx *f = *state;
    char p[200], q[200], file[160];
    struct stat st;

    snprintf(p, sizeof(p), "%s/a/b/c/d", f->dir);
    assert_int_equal(fsu_mkdirs(p, 0700), 0);
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    snprintf(q, sizeof(q), "%s/a/b", f->dir);
    assert_int_equal(stat(q, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    /* Idempotent. */
    assert_int_equal(fsu_mkdirs(p, 0700), 0);
    /* Existing prefix, new tail; trailing slash. */
    snprintf(q, sizeof(q), "%s/a/b/x/y/", f->dir);
    assert_int_equal(fsu_mkdirs(q, 0755), 0);
    snprintf(q, sizeof(q), "%s/a/b/x/y", f->dir);
    assert_int_equal(stat(q, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    /* A file in the way. */
    path_in(f, "plain", file, sizeof(file));
    assert_int_equal(fsu_write_atomic(file, "x", 1, 0600, 0), 0);
    snprintf(q, sizeof(q), "%s/plain/sub", f->dir);
    assert_int_equal(fsu_mkdirs(q, 0700), SZ_EIO);
}

/* Was a bug (fixed): fsu_mkdirs(path) returns 0 when path already exists as a regular
 * file: mkdir() fails with EEXIST and fsutil.c treats every EEXIST as
 * success, without checking that the existing entry is a directory.  The
 * contract ("Create path and missing parents. Return 0 or SZ_EIO") means
 * that on 0 the directory exists; here it does not.  (A file in the middle
 * of the path is reported correctly -- see test_mkdirs.) */
static void test_mkdirs_file_in_place(void **state)
{
    struct fx *f = *state;
    char file[160];
    struct stat st;
    int rc;

    path_in(f, "plain", file, sizeof(file));
    assert_int_equal(fsu_write_atomic(file, "x", 1, 0600, 0), 0);
    rc = fsu_mkdirs(file, 0700);
    assert_int_equal(stat(file, &st), 0);
    if (rc == 0 && !S_ISDIR(st.st_mode))
        print_error("fsu_mkdirs returned 0 but %s is a regular file\n", file);
    assert_true(rc != 0 || S_ISDIR(st.st_mode));
    assert_int_equal(rc, SZ_EIO);
}

/* ---- fsu_read_file ------------------------------------------------------ */

static void test_read_limits(void **state)
{
    struct fx *f = *state;
    char p[128], e[128];
    uint8_t data[100], *out = (uint8_t *)(uintptr_t)1;
    size_t len = 12345;

    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i + 1);
    path_in(f, "hundred", p, sizeof(p));
    assert_int_equal(fsu_write_atomic(p, data, sizeof(data), 0600, 0), 0);

    assert_int_equal(fsu_read_file(p, 99, &out, &len), SZ_ETOOBIG);
    assert_int_equal(fsu_read_file(p, 0, &out, &len), SZ_ETOOBIG);
    out = NULL;
    assert_int_equal(fsu_read_file(p, 100, &out, &len), 0);
    assert_int_equal(len, 100);
    assert_memory_equal(out, data, 100);
    free(out);
    out = NULL;
    assert_int_equal(fsu_read_file(p, (size_t)-1, &out, &len), 0);
    assert_int_equal(len, 100);
    free(out);

    /* empty file, maxlen 0 */
    path_in(f, "empty", e, sizeof(e));
    assert_int_equal(fsu_write_atomic(e, "", 0, 0600, 0), 0);
    out = NULL;
    assert_int_equal(fsu_read_file(e, 0, &out, &len), 0);
    assert_int_equal(len, 0);
    free(out);
}

static void test_read_missing(void **state)
{
    struct fx *f = *state;
    char p[160];
    uint8_t *out = NULL;
    size_t len = 0;

    path_in(f, "nope", p, sizeof(p));
    assert_int_equal(fsu_read_file(p, 100, &out, &len), SZ_ENOENT);
    snprintf(p, sizeof(p), "%s/no/dir/file", f->dir);
    assert_int_equal(fsu_read_file(p, 100, &out, &len), SZ_ENOENT);
    assert_null(out);
}

/* ---- misc --------------------------------------------------------------- */

static void test_fsync_and_clocks(void **state)
{
    struct fx *f = *state;
    char p[160];
    struct timespec ts = {0, 60 * 1000000L};
    uint64_t t0, t1, w;

    assert_int_equal(fsu_fsync_dir(f->dir), 0);
    snprintf(p, sizeof(p), "%s/missing", f->dir);
    assert_int_equal(fsu_fsync_dir(p), SZ_EIO);
    path_in(f, "file", p, sizeof(p));
    assert_int_equal(fsu_fsync_parent(p), 0);

    t0 = fsu_now_ms();
    nanosleep(&ts, NULL);
    t1 = fsu_now_ms();
    assert_true(t1 >= t0 + 59);
    assert_true(t1 < t0 + 5000);

    w = fsu_wall_s();
    assert_true(w + 2 >= (uint64_t)time(NULL) && w <= (uint64_t)time(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_write_creates_with_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_replaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_excl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_bad_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdirs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdirs_file_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsync_and_clocks, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
