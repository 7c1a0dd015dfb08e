/*
 * test_blockstore_ops: the block store's maintenance functions used by
 * repair and scrub -- bs_scan_* (every id exactly once, in chunks, over a
 * consistent view), bs_delete (index, stats, persistence, re-put),
 * bs_verify (healthy, damaged payload/header, truncated and missing data
 * files), bs_replace (crc rules, persistence) and concurrent put/delete of
 * the same ids (stats always match the index).  Each test owns a mkdtemp
 * directory under /tmp, removed afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blockstore.h"
#include "crc32c.h"
#include "err.h"
#include "sztest.h"

#define BS_FIXTURE_TMP "/tmp/sz_bsops_XXXXXX"
#include "bs_fixture.h"

static void put_one(struct bs *bs, const uint8_t *id, const uint8_t *data, size_t len)
{
    struct bs_item it = {.id = id, .data = data, .len = len, .crc = crc32c(0, data, len)};
    int res = -99;

    assert_int_equal(bs_put_batch(bs, &it, 1, &res), 0);
    assert_int_equal(res, 0);
}

static void expect_block(struct bs *bs, const uint8_t *id, const uint8_t *data, size_t len)
{
    uint8_t *out = NULL;
    size_t olen = 0;

    assert_int_equal(bs_get(bs, id, &out, &olen), 0);
    assert_int_equal(olen, len);
    if (len > 0)
        assert_memory_equal(out, data, len);
    free(out);
}

static void expect_stats(struct bs *bs, uint64_t blocks, uint64_t bytes)
{
    uint64_t b = 0, y = 0;

    bs_stats(bs, &b, &y);
    assert_int_equal(b, blocks);
    assert_int_equal(y, bytes);
}

static void expect_health(struct bs *bs, const uint8_t *id, int want, uint32_t want_crc)
{
    int health = -1;
    uint32_t crc = 0;

    assert_int_equal(bs_verify(bs, id, &health, &crc), 0);
    assert_int_equal(health, want);
    assert_int_equal(crc, want_crc);
}

/* The single entry for id, found by a full scan. */
static struct bs_entry find_entry(struct bs *bs, const uint8_t *id)
{
    struct bs_entry e[16], found;
    struct bs_scan *sc = NULL;
    size_t n;
    int hits = 0;

    memset(&found, 0, sizeof(found));
    assert_int_equal(bs_scan_new(bs, &sc), 0);
    do {
        assert_int_equal(bs_scan_next(sc, e, 16, &n), 0);
        for (size_t i = 0; i < n; i++) {
            if (memcmp(e[i].id, id, BS_ID_BYTES) == 0) {
                found = e[i];
                hits++;
            }
        }
    } while (n > 0);
    bs_scan_free(sc);
    assert_int_equal(hits, 1);
    return found;
}

static void data_path(const struct fixture *f, unsigned file, char *buf, size_t size)
{
    snprintf(buf, size, "%s/data/%08u.dat", f->dir, file);
}

/* XOR one byte of data file `file` at offset `off`, in place. */
static void flip_byte(const struct fixture *f, unsigned file, uint64_t off)
{
    char path[256];
    uint8_t b;
    int fd;

    data_path(f, file, path, sizeof(path));
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
    b ^= 0x40;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, BS_ID_BYTES);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_scan_empty(void **state)
{
    struct fixture *f = *state;
    struct bs_scan *sc = NULL;
    struct bs_entry e[4];
    size_t n = 99;

    assert_int_equal(bs_scan_new(f->bs, &sc), 0);
    assert_int_equal(bs_scan_next(sc, e, 4, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(bs_scan_next(sc, e, 4, &n), 0); /* stays done */
    assert_int_equal(n, 0);
    bs_scan_free(sc);
    bs_scan_free(NULL);
}

#define SCAN_N 1000

static void test_scan_all(void **state)
{
    struct fixture *f = *state;
    static uint8_t ids[SCAN_N][BS_ID_BYTES];
    static uint8_t seen[SCAN_N][BS_ID_BYTES];
    struct bs_entry e[37];
    struct bs_scan *sc = NULL;
    uint8_t late[BS_ID_BYTES];
    size_t total = 0, n;
    uint8_t *d = make_data(300, 5);

    for (size_t i = 0; i < SCAN_N; i++) {
        make_id(ids[i], i);
        d[0] = (uint8_t)i;
        d[1] = (uint8_t)(i >> 8);
        put_one(f->bs, ids[i], d, 100 + i % 200);
    }
    assert_int_equal(bs_scan_new(f->bs, &sc), 0);
    /* A put after the scan started is not part of its view. */
    make_id(late, 424242);
    put_one(f->bs, late, d, 10);
    do {
        assert_int_equal(bs_scan_next(sc, e, 37, &n), 0);
        assert_true(n <= 37);
        for (size_t i = 0; i < n; i++) {
            assert_true(total < SCAN_N);
            memcpy(seen[total], e[i].id, BS_ID_BYTES);
            if (total > 0) /* id order */
                assert_true(memcmp(seen[total - 1], seen[total], BS_ID_BYTES) < 0);
            assert_true(e[i].file >= 1);
            assert_true(e[i].len >= 100 && e[i].len < 300);
            total++;
        }
    } while (n > 0);
    bs_scan_free(sc);
    assert_int_equal(total, SCAN_N);
    qsort(ids, SCAN_N, BS_ID_BYTES, cmp_id);
    assert_memory_equal(ids, seen, sizeof(ids));
    free(d);
}

static void test_scan_entry_fields(void **state)
{
    struct fixture *f = *state;
    uint8_t a[BS_ID_BYTES], b[BS_ID_BYTES];
    uint8_t *da = make_data(1000, 1), *db = make_data(2000, 2);
    struct bs_entry ea, eb;

    make_id(a, 1);
    make_id(b, 2);
    put_one(f->bs, a, da, 1000);
    put_one(f->bs, b, db, 2000);
    ea = find_entry(f->bs, a);
    eb = find_entry(f->bs, b);
    assert_int_equal(ea.file, 1);
    assert_int_equal(ea.off, 0);
    assert_int_equal(ea.len, 1000);
    assert_int_equal(ea.crc, crc32c(0, da, 1000));
    assert_int_equal(eb.file, 1);
    assert_int_equal(eb.off, HDR + 1000);
    assert_int_equal(eb.len, 2000);
    assert_int_equal(eb.crc, crc32c(0, db, 2000));
    free(da);
    free(db);
}

static void test_delete(void **state)
{
    struct fixture *f = *state;
    uint8_t a[BS_ID_BYTES], b[BS_ID_BYTES], none[BS_ID_BYTES];
    uint8_t *da = make_data(5000, 1), *db = make_data(7000, 2);
    uint8_t *out = NULL;
    size_t olen = 0;

    make_id(a, 1);
    make_id(b, 2);
    make_id(none, 3);
    put_one(f->bs, a, da, 5000);
    put_one(f->bs, b, db, 7000);
    expect_stats(f->bs, 2, 2 * HDR + 12000);

    assert_int_equal(bs_delete(f->bs, a), 0);
    assert_int_equal(bs_have(f->bs, a), 0);
    assert_int_equal(bs_get(f->bs, a, &out, &olen), SZ_ENOENT);
    expect_stats(f->bs, 1, HDR + 7000);
    assert_int_equal(bs_delete(f->bs, a), SZ_ENOENT);
    assert_int_equal(bs_delete(f->bs, none), SZ_ENOENT);
    expect_stats(f->bs, 1, HDR + 7000);
    expect_block(f->bs, b, db, 7000);

    /* Durable, and the stats recomputed at open agree. */
    reopen(f);
    assert_int_equal(bs_have(f->bs, a), 0);
    expect_stats(f->bs, 1, HDR + 7000);

    /* A deleted id can be stored again. */
    put_one(f->bs, a, da, 5000);
    expect_block(f->bs, a, da, 5000);
    expect_stats(f->bs, 2, 2 * HDR + 12000);
    reopen(f);
    expect_stats(f->bs, 2, 2 * HDR + 12000);
    expect_block(f->bs, a, da, 5000);
    free(da);
    free(db);
}

static void test_verify(void **state)
{
    struct fixture *f = *state;
    uint8_t a[BS_ID_BYTES], b[BS_ID_BYTES], c[BS_ID_BYTES], none[BS_ID_BYTES];
    uint8_t *d = make_data(4096, 9);
    uint32_t crc = crc32c(0, d, 4096), got = 1;
    struct bs_entry ea, eb;
    int health = -1;

    make_id(a, 1);
    make_id(b, 2);
    make_id(c, 3);
    make_id(none, 4);
    put_one(f->bs, a, d, 4096);
    put_one(f->bs, b, d, 4096);
    put_one(f->bs, c, d, 4096);
    expect_health(f->bs, a, BS_HEALTHY, crc);
    assert_int_equal(bs_verify(f->bs, none, &health, &got), SZ_ENOENT);

    /* A payload byte and a header byte. */
    ea = find_entry(f->bs, a);
    eb = find_entry(f->bs, b);
    flip_byte(f, ea.file, ea.off + HDR + 100);
    flip_byte(f, eb.file, eb.off + 5); /* length field */
    expect_health(f->bs, a, BS_DAMAGED, crc);
    expect_health(f->bs, b, BS_DAMAGED, crc);
    expect_health(f->bs, c, BS_HEALTHY, crc);
    free(d);
}

static void test_verify_gone(void **state)
{
    struct fixture *f = *state;
    uint8_t a[BS_ID_BYTES], b[BS_ID_BYTES];
    uint8_t *d = make_data(3000, 4);
    uint32_t crc = crc32c(0, d, 3000);
    char path[256];
    struct bs_entry eb;

    make_id(a, 1);
    make_id(b, 2);
    put_one(f->bs, a, d, 3000);
    put_one(f->bs, b, d, 3000);
    eb = find_entry(f->bs, b);

    /* Truncated mid-record: b's bytes are gone, a's still fine. */
    data_path(f, 1, path, sizeof(path));
    assert_int_equal(truncate(path, (off_t)(eb.off + HDR + 10)), 0);
    expect_health(f->bs, a, BS_HEALTHY, crc);
    expect_health(f->bs, b, BS_GONE, crc);

    /* The whole file removed: gone even through the cached fd, and after
     * a reopen. */
    assert_int_equal(unlink(path), 0);
    expect_health(f->bs, a, BS_GONE, crc);
    bs_close(f->bs);
    f->bs = NULL;
    assert_int_equal(bs_open(f->dir, &f->bs), 0);
    expect_health(f->bs, a, BS_GONE, crc);
    expect_health(f->bs, b, BS_GONE, crc);
    free(d);
}

static void test_replace(void **state)
{
    struct fixture *f = *state;
    uint8_t a[BS_ID_BYTES], none[BS_ID_BYTES];
    uint8_t *d = make_data(10000, 7), *other = make_data(10000, 8);
    uint32_t crc = crc32c(0, d, 10000);
    struct bs_entry e1, e2;
    uint8_t *out = NULL;
    size_t olen = 0;

    make_id(a, 1);
    make_id(none, 2);
    put_one(f->bs, a, d, 10000);
    e1 = find_entry(f->bs, a);
    flip_byte(f, e1.file, e1.off + HDR + 9999);
    expect_health(f->bs, a, BS_DAMAGED, crc);
    assert_int_equal(bs_get(f->bs, a, &out, &olen), SZ_ECORRUPT);

    /* Refusals leave the entry as it was. */
    assert_int_equal(bs_replace(f->bs, a, d, 10000, crc ^ 1), SZ_ECORRUPT);
    assert_int_equal(bs_replace(f->bs, a, other, 10000, crc32c(0, other, 10000)), SZ_EINVAL);
    assert_int_equal(bs_replace(f->bs, none, d, 10000, crc), SZ_ENOENT);
    expect_health(f->bs, a, BS_DAMAGED, crc);
    assert_int_equal(bs_have(f->bs, none), 0);

    assert_int_equal(bs_replace(f->bs, a, d, 10000, crc), 0);
    expect_health(f->bs, a, BS_HEALTHY, crc);
    expect_block(f->bs, a, d, 10000);
    expect_stats(f->bs, 1, HDR + 10000);
    e2 = find_entry(f->bs, a);
    assert_true(e2.off != e1.off || e2.file != e1.file);

    reopen(f);
    expect_block(f->bs, a, d, 10000);
    expect_stats(f->bs, 1, HDR + 10000);
    free(d);
    free(other);
}

/* Replace after the data file vanished (the scrub's "missing" case). */
static void test_replace_gone(void **state)
{
    struct fixture *f = *state;
    uint8_t a[BS_ID_BYTES];
    uint8_t *d = make_data(2048, 3);
    uint32_t crc = crc32c(0, d, 2048);
    char path[256];

    setenv("SNAPZONE_BS_FILE_MAX", "4096", 1);
    reopen(f);
    make_id(a, 1);
    put_one(f->bs, a, d, 2048);
    data_path(f, 1, path, sizeof(path));
    /* Fill file 1 so the replacement goes to file 2, then drop file 1. */
    put_one(f->bs, (const uint8_t *)"0123456789abcdef0123456789abcdef", d, 2048);
    bs_close(f->bs);
    f->bs = NULL;
    assert_int_equal(unlink(path), 0);
    assert_int_equal(bs_open(f->dir, &f->bs), 0);
    expect_health(f->bs, a, BS_GONE, crc);
    assert_int_equal(bs_replace(f->bs, a, d, 2048, crc), 0);
    expect_health(f->bs, a, BS_HEALTHY, crc);
    expect_block(f->bs, a, d, 2048);
    free(d);
}

/* ---- concurrent put and delete of the same ids ------------------------------ */

#define CC_IDS 32
#define CC_ROUNDS 200

struct cc_arg {
    struct bs *bs;
    int deleter;
    uint64_t seed;
};

static uint8_t cc_ids[CC_IDS][BS_ID_BYTES];
static uint8_t cc_data[512];

static void *cc_thread(void *p)
{
    struct cc_arg *a = p;
    uint64_t s = a->seed;

    for (int r = 0; r < CC_ROUNDS; r++) {
        size_t i = splitmix(&s) % CC_IDS;
        if (a->deleter) {
            int rc = bs_delete(a->bs, cc_ids[i]);
            if (rc != 0 && rc != SZ_ENOENT)
                return (void *)1;
        } else {
            struct bs_item it[2];
            int res[2];
            size_t j = splitmix(&s) % CC_IDS;
            it[0] = (struct bs_item){cc_ids[i], cc_data, sizeof(cc_data),
                                     crc32c(0, cc_data, sizeof(cc_data))};
            it[1] = (struct bs_item){cc_ids[j], cc_data, sizeof(cc_data),
                                     crc32c(0, cc_data, sizeof(cc_data))};
            if (bs_put_batch(a->bs, it, 2, res) != 0 || res[0] != 0 || res[1] != 0)
                return (void *)1;
        }
    }
    return NULL;
}

static void test_concurrent_put_delete(void **state)
{
    struct fixture *f = *state;
    pthread_t th[4];
    struct cc_arg args[4];
    uint64_t blocks = 0, bytes = 0, n = 0;

    for (size_t i = 0; i < CC_IDS; i++)
        make_id(cc_ids[i], 1000 + i);
    memset(cc_data, 0x5a, sizeof(cc_data));
    for (int t = 0; t < 4; t++) {
        args[t] = (struct cc_arg){.bs = f->bs, .deleter = t >= 2, .seed = 77 + (uint64_t)t};
        assert_int_equal(pthread_create(&th[t], NULL, cc_thread, &args[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        void *ret = (void *)2;
        pthread_join(th[t], &ret);
        assert_null(ret);
    }
    for (size_t i = 0; i < CC_IDS; i++) {
        int h = bs_have(f->bs, cc_ids[i]);
        assert_true(h == 0 || h == 1);
        n += (uint64_t)h;
        if (h == 1)
            expect_block(f->bs, cc_ids[i], cc_data, sizeof(cc_data));
    }
    bs_stats(f->bs, &blocks, &bytes);
    assert_int_equal(blocks, n);
    assert_int_equal(bytes, n * (HDR + sizeof(cc_data)));
    reopen(f);
    expect_stats(f->bs, n, n * (HDR + sizeof(cc_data)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scan_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_scan_entry_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_gone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_put_delete, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
