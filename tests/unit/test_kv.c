/*
 * test_kv: the kv layer over RocksDB -- point operations, missing keys,
 * batch atomicity and ordering, prefix iteration boundaries, persistence
 * across reopen, error mapping and concurrent callers.  Every test works in
 * its own mkdtemp directory under /tmp, removed afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "kv.h"
#include "sztest.h"

struct fixture {
    char dir[64];
    struct kv *db;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/sz_kv_XXXXXX");
    if (mkdtemp(f->dir) == NULL || kv_open(f->dir, &f->db) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    kv_close(f->db);
    sztest_rmrf(f->dir);
    free(f);
    return 0;
}

static void reopen(struct fixture *f)
{
    kv_close(f->db);
    f->db = NULL;
    assert_int_equal(kv_open(f->dir, &f->db), 0);
}

/* Assert key holds exactly the C string want (without its NUL). */
static void expect_val(struct kv *db, const char *key, const char *want)
{
    uint8_t *val = NULL;
    size_t vlen = 0;

    assert_int_equal(kv_get(db, key, strlen(key), &val, &vlen), 0);
    assert_int_equal(vlen, strlen(want));
    assert_memory_equal(val, want, vlen);
    free(val);
}

static void expect_missing(struct kv *db, const char *key)
{
    uint8_t *val = (uint8_t *)1;
    size_t vlen = 7;

    assert_int_equal(kv_get(db, key, strlen(key), &val, &vlen), SZ_ENOENT);
    assert_null(val);
    assert_int_equal(vlen, 0);
    assert_int_equal(kv_exists(db, key, strlen(key)), 0);
}

static void test_put_get_del(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(kv_put(f->db, "alpha", 5, "one", 3, 0), 0);
    assert_int_equal(kv_put(f->db, "beta", 4, "two", 3, 1), 0);
    expect_val(f->db, "alpha", "one");
    expect_val(f->db, "beta", "two");
    assert_int_equal(kv_exists(f->db, "alpha", 5), 1);

    assert_int_equal(kv_put(f->db, "alpha", 5, "uno!", 4, 1), 0);
    expect_val(f->db, "alpha", "uno!");

    assert_int_equal(kv_del(f->db, "alpha", 5, 1), 0);
    expect_missing(f->db, "alpha");
    expect_val(f->db, "beta", "two");
    assert_int_equal(kv_del(f->db, "never-there", 11, 0), 0);
}

static void test_missing_and_empty(void **state)
{
    struct fixture *f = *state;
    const uint8_t binkey[4] = {0, 1, 0, 2};
    uint8_t *val = NULL;
    size_t vlen = 9;

    expect_missing(f->db, "nothing");
    /* A key that is a prefix of a stored key is still missing. */
    assert_int_equal(kv_put(f->db, "abc", 3, "x", 1, 0), 0);
    expect_missing(f->db, "ab");

    /* Empty values and binary keys with NULs round-trip. */
    assert_int_equal(kv_put(f->db, binkey, sizeof(binkey), "", 0, 1), 0);
    assert_int_equal(kv_exists(f->db, binkey, sizeof(binkey)), 1);
    assert_int_equal(kv_get(f->db, binkey, sizeof(binkey), &val, &vlen), 0);
    assert_non_null(val);
    assert_int_equal(vlen, 0);
    free(val);
    assert_int_equal(kv_exists(f->db, binkey, 3), 0);
}

static void test_batch_atomic(void **state)
{
    struct fixture *f = *state;
    struct kv_batch *b = NULL;

    assert_int_equal(kv_put(f->db, "c", 1, "old", 3, 0), 0);
    assert_int_equal(kv_batch_new(&b), 0);
    kv_batch_put(b, "a", 1, "A", 1);
    kv_batch_put(b, "b", 1, "B", 1);
    kv_batch_del(b, "c", 1);
    kv_batch_put(b, "d", 1, "first", 5);
    kv_batch_del(b, "d", 1); /* later operations win within a batch */
    kv_batch_put(b, "e", 1, "1", 1);
    kv_batch_put(b, "e", 1, "2", 1);
    assert_int_equal(kv_batch_count(b), 7);

    /* Nothing is visible before kv_write. */
    expect_missing(f->db, "a");
    expect_missing(f->db, "b");
    expect_val(f->db, "c", "old");

    assert_int_equal(kv_write(f->db, b, 1), 0);
    kv_batch_free(b);
    expect_val(f->db, "a", "A");
    expect_val(f->db, "b", "B");
    expect_missing(f->db, "c");
    expect_missing(f->db, "d");
    expect_val(f->db, "e", "2");

    /* A batch dropped without kv_write changes nothing. */
    assert_int_equal(kv_batch_new(&b), 0);
    kv_batch_put(b, "z", 1, "Z", 1);
    kv_batch_del(b, "a", 1);
    kv_batch_free(b);
    expect_missing(f->db, "z");
    expect_val(f->db, "a", "A");

    /* An empty batch is fine. */
    assert_int_equal(kv_batch_new(&b), 0);
    assert_int_equal(kv_batch_count(b), 0);
    assert_int_equal(kv_write(f->db, b, 0), 0);
    kv_batch_free(b);
}

struct kspan {
    const char *p;
    size_t n;
};

#define KS(s) {s, sizeof(s) - 1}

/* Iterate prefix and assert exactly `want` comes back, in order. */
static void expect_iter(struct kv *db, const char *prefix, size_t plen, const struct kspan *want,
                        size_t nwant)
{
    struct kv_iter *it = NULL;
    const uint8_t *k, *v;
    size_t klen, vlen, got = 0;
    int rc;

    assert_int_equal(kv_iter_new(db, prefix, plen, &it), 0);
    while ((rc = kv_iter_next(it, &k, &klen, &v, &vlen)) == 1) {
        assert_true(got < nwant);
        assert_int_equal(klen, want[got].n);
        assert_memory_equal(k, want[got].p, klen);
        /* Every value equals its key. */
        assert_int_equal(vlen, klen);
        assert_memory_equal(v, k, vlen);
        got++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(got, nwant);
    /* Stays at the end. */
    assert_int_equal(kv_iter_next(it, &k, &klen, &v, &vlen), 0);
    kv_iter_free(it);
}

static void test_iter_prefix(void **state)
{
    struct fixture *f = *state;
    static const struct kspan keys[] = {
        KS("a"), KS("aa\xff"), KS("ab"), KS("ab\x00"), KS("ab\x00\x01"), KS("abc"),
        KS("ab\xff"), KS("ac"), KS("b"), KS("\xff"), KS("\xff\xff\x01"),
    };
    static const struct kspan ab[] = {
        KS("ab"), KS("ab\x00"), KS("ab\x00\x01"), KS("abc"), KS("ab\xff"),
    };
    static const struct kspan ab0[] = {KS("ab\x00"), KS("ab\x00\x01")};
    static const struct kspan ff[] = {KS("\xff"), KS("\xff\xff\x01")};
    static const struct kspan ffff[] = {KS("\xff\xff\x01")};
    size_t nkeys = sizeof(keys) / sizeof(keys[0]);

    /* Insert out of order to exercise the ordering. */
    for (size_t i = nkeys; i-- > 0;)
        assert_int_equal(kv_put(f->db, keys[i].p, keys[i].n, keys[i].p, keys[i].n, 0), 0);

    expect_iter(f->db, "ab", 2, ab, 5);
    expect_iter(f->db, "ab\x00", 3, ab0, 2);
    expect_iter(f->db, "\xff", 1, ff, 2);
    expect_iter(f->db, "\xff\xff", 2, ffff, 1);
    expect_iter(f->db, "abd", 3, NULL, 0); /* between keys */
    expect_iter(f->db, "0", 1, NULL, 0);   /* before everything */
    expect_iter(f->db, "\xff\xff\xff", 3, NULL, 0); /* after everything */
    expect_iter(f->db, "abc", 3, &ab[3], 1);
    expect_iter(f->db, "ab\xff", 3, &ab[4], 1);
    expect_iter(f->db, NULL, 0, keys, nkeys); /* empty prefix: all */
}

static void test_reopen_persists(void **state)
{
    struct fixture *f = *state;
    struct kv_batch *b = NULL;

    assert_int_equal(kv_put(f->db, "sync", 4, "S", 1, 1), 0);
    assert_int_equal(kv_put(f->db, "nosync", 6, "N", 1, 0), 0);
    assert_int_equal(kv_put(f->db, "gone", 4, "G", 1, 1), 0);
    assert_int_equal(kv_del(f->db, "gone", 4, 1), 0);
    assert_int_equal(kv_batch_new(&b), 0);
    kv_batch_put(b, "batched", 7, "B", 1);
    assert_int_equal(kv_write(f->db, b, 1), 0);
    kv_batch_free(b);

    reopen(f);
    expect_val(f->db, "sync", "S");
    expect_val(f->db, "nosync", "N");
    expect_val(f->db, "batched", "B");
    expect_missing(f->db, "gone");

    /* Still writable after reopen, and again durable. */
    assert_int_equal(kv_put(f->db, "later", 5, "L", 1, 1), 0);
    reopen(f);
    expect_val(f->db, "later", "L");
    expect_val(f->db, "sync", "S");
}

static void test_open_fails(void **state)
{
    struct fixture *f = *state;
    char path[128];
    struct kv *db = (struct kv *)1;
    FILE *fp;

    /* A regular file where the database directory should be. */
    snprintf(path, sizeof(path), "%s/plainfile", f->dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(kv_open(path, &db), SZ_EIO);
    assert_null(db);

    /* A second open of a live database fails on RocksDB's lock. */
    db = (struct kv *)1;
    assert_int_equal(kv_open(f->dir, &db), SZ_EIO);
    assert_null(db);

    kv_close(NULL);
    kv_batch_free(NULL);
    kv_iter_free(NULL);
}

#define NTHREADS 4
#define PER_THREAD 500

struct worker {
    struct kv *db;
    int id;
    int failures;
};

static void *kv_worker(void *arg)
{
    struct worker *w = arg;
    char key[32], val[32];

    for (int i = 0; i < PER_THREAD; i++) {
        int kl = snprintf(key, sizeof(key), "t%d/k%04d", w->id, i);
        int vl = snprintf(val, sizeof(val), "v%d.%d", w->id, i);
        uint8_t *got = NULL;
        size_t glen = 0;

        if (kv_put(w->db, key, (size_t)kl, val, (size_t)vl, i % 50 == 0) != 0)
            w->failures++;
        if (kv_get(w->db, key, (size_t)kl, &got, &glen) != 0 || glen != (size_t)vl ||
            memcmp(got, val, glen) != 0)
            w->failures++;
        free(got);
        /* Read another thread's keyspace too (may or may not exist yet). */
        kl = snprintf(key, sizeof(key), "t%d/k%04d", (w->id + 1) % NTHREADS, i);
        if (kv_exists(w->db, key, (size_t)kl) < 0)
            w->failures++;
    }
    return NULL;
}

static size_t count_prefix(struct kv *db, const char *prefix)
{
    struct kv_iter *it = NULL;
    const uint8_t *k, *v;
    size_t klen, vlen, n = 0;

    assert_int_equal(kv_iter_new(db, prefix, strlen(prefix), &it), 0);
    while (kv_iter_next(it, &k, &klen, &v, &vlen) == 1)
        n++;
    kv_iter_free(it);
    return n;
}

static void test_concurrent(void **state)
{
    struct fixture *f = *state;
    struct worker w[NTHREADS];
    pthread_t th[NTHREADS];
    char prefix[8];

    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (struct worker){.db = f->db, .id = i};
        assert_int_equal(pthread_create(&th[i], NULL, kv_worker, &w[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        snprintf(prefix, sizeof(prefix), "t%d/", i);
        assert_int_equal(count_prefix(f->db, prefix), PER_THREAD);
    }
    assert_int_equal(count_prefix(f->db, "t"), NTHREADS * PER_THREAD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_del, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_and_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_iter_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_persists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
