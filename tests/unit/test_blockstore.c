/*
 * test_blockstore: the node block store -- round trips from 0 bytes to
 * 4 MiB, have/missing, dedup (across and within batches), crc rejection,
 * persistence and stats across reopen, concurrent writers with overlapping
 * ids (each id stored exactly once), on-disk corruption detection and data
 * file rotation (SNAPZONE_BS_FILE_MAX).  Each test owns a mkdtemp directory
 * under /tmp, removed afterwards.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
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

#define BS_FIXTURE_TMP "/tmp/sz_bs_XXXXXX"
#include "bs_fixture.h"

static struct bs_item item_of(const uint8_t *id, const uint8_t *data, size_t len)
{
    return (struct bs_item){.id = id, .data = data, .len = len, .crc = crc32c(0, data, len)};
}

static void put_one(struct bs *bs, const uint8_t *id, const uint8_t *data, size_t len)
{
    struct bs_item it = item_of(id, data, len);
    int res = -99;

    assert_int_equal(bs_put_batch(bs, &it, 1, &res), 0);
    assert_int_equal(res, 0);
}

static void expect_block(struct bs *bs, const uint8_t *id, const uint8_t *data, size_t len)
{
    uint8_t *out = NULL;
    size_t olen = 0;

    assert_int_equal(bs_get(bs, id, &out, &olen), 0);
    assert_non_null(out);
    assert_int_equal(olen, len);
    if (len > 0)
        assert_memory_equal(out, data, len);
    free(out);
}

static void expect_get_rc(struct bs *bs, const uint8_t *id, int want)
{
    uint8_t *out = (uint8_t *)1;
    size_t olen = 5;

    assert_int_equal(bs_get(bs, id, &out, &olen), want);
    assert_null(out);
    assert_int_equal(olen, 0);
}

static void expect_stats(struct bs *bs, uint64_t blocks, uint64_t bytes)
{
    uint64_t b = 0, y = 0;

    bs_stats(bs, &b, &y);
    assert_int_equal(b, blocks);
    assert_int_equal(y, bytes);
}

static void data_path(const struct fixture *f, unsigned file, char *buf, size_t size)
{
    snprintf(buf, size, "%s/data/%08u.dat", f->dir, file);
}

/* Number of data files and the sum of their sizes. */
static unsigned data_files(const struct fixture *f, uint64_t *total, uint64_t *largest)
{
    char path[256];
    struct stat st;
    unsigned n = 0;

    *total = 0;
    *largest = 0;
    for (unsigned i = 1; i < 10000; i++) {
        data_path(f, i, path, sizeof(path));
        if (stat(path, &st) != 0)
            break;
        n++;
        *total += (uint64_t)st.st_size;
        if ((uint64_t)st.st_size > *largest)
            *largest = (uint64_t)st.st_size;
    }
    return n;
}

/* ---- tests ------------------------------------------------------------------ */

static const size_t sizes[] = {
    0, 1, 17, 4095, 4096, 4097, 65536 + 3, 1u << 20, (4u << 20) - 1, 4u << 20,
};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static void test_roundtrip_sizes(void **state)
{
    struct fixture *f = *state;
    uint8_t ids[NSIZES][BS_ID_BYTES];
    uint8_t *data[NSIZES];
    struct bs_item items[NSIZES];
    int res[NSIZES];
    uint64_t bytes = 0;

    for (size_t i = 0; i < NSIZES; i++) {
        make_id(ids[i], i);
        data[i] = make_data(sizes[i], 100 + i);
        items[i] = item_of(ids[i], data[i], sizes[i]);
        bytes += HDR + sizes[i];
    }
    /* First half one by one, second half in one batch. */
    for (size_t i = 0; i < NSIZES / 2; i++)
        put_one(f->bs, ids[i], data[i], sizes[i]);
    assert_int_equal(bs_put_batch(f->bs, &items[NSIZES / 2], NSIZES - NSIZES / 2, res), 0);
    for (size_t i = 0; i < NSIZES - NSIZES / 2; i++)
        assert_int_equal(res[i], 0);

    for (size_t i = 0; i < NSIZES; i++)
        expect_block(f->bs, ids[i], data[i], sizes[i]);
    expect_stats(f->bs, NSIZES, bytes);
    for (size_t i = 0; i < NSIZES; i++)
        free(data[i]);
    assert_int_equal(bs_put_batch(f->bs, NULL, 0, NULL), 0);
}

static void test_have(void **state)
{
    struct fixture *f = *state;
    uint8_t id[BS_ID_BYTES], other[BS_ID_BYTES];
    uint8_t *d = make_data(1000, 1);

    make_id(id, 1);
    make_id(other, 2);
    assert_int_equal(bs_have(f->bs, id), 0);
    expect_get_rc(f->bs, id, SZ_ENOENT);
    expect_stats(f->bs, 0, 0);

    put_one(f->bs, id, d, 1000);
    assert_int_equal(bs_have(f->bs, id), 1);
    assert_int_equal(bs_have(f->bs, other), 0);
    expect_get_rc(f->bs, other, SZ_ENOENT);
    expect_stats(f->bs, 1, HDR + 1000);
    free(d);
}

static void test_duplicates(void **state)
{
    struct fixture *f = *state;
    uint8_t a[BS_ID_BYTES], b[BS_ID_BYTES];
    uint8_t *da = make_data(5000, 1), *db = make_data(300, 2);
    struct bs_item items[5];
    int res[5];
    uint64_t total, largest, before;

    make_id(a, 10);
    make_id(b, 11);
    /* The same id three times in one batch is stored once. */
    items[0] = item_of(a, da, 5000);
    items[1] = item_of(b, db, 300);
    items[2] = item_of(a, da, 5000);
    items[3] = item_of(a, da, 5000);
    items[4] = item_of(b, db, 300);
    assert_int_equal(bs_put_batch(f->bs, items, 5, res), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(res[i], 0);
    expect_stats(f->bs, 2, 2 * HDR + 5300);
    data_files(f, &before, &largest);
    assert_int_equal(before, 2 * HDR + 5300);

    /* Putting them again changes neither stats nor the data file. */
    assert_int_equal(bs_put_batch(f->bs, items, 5, res), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(res[i], 0);
    put_one(f->bs, a, da, 5000);
    expect_stats(f->bs, 2, 2 * HDR + 5300);
    data_files(f, &total, &largest);
    assert_int_equal(total, before);
    expect_block(f->bs, a, da, 5000);
    expect_block(f->bs, b, db, 300);
    free(da);
    free(db);
}

static void test_bad_crc(void **state)
{
    struct fixture *f = *state;
    uint8_t ids[4][BS_ID_BYTES];
    uint8_t *d[4];
    struct bs_item items[5];
    int res[5];

    for (int i = 0; i < 4; i++) {
        make_id(ids[i], 20 + (uint64_t)i);
        d[i] = make_data(1000 + (size_t)i, 20 + (uint64_t)i);
        items[i] = item_of(ids[i], d[i], 1000 + (size_t)i);
    }
    items[1].crc ^= 1;           /* damaged in transit */
    items[3].crc ^= 0x80000000u; /* damaged, but ... */
    items[4] = item_of(ids[3], d[3], 1003); /* ... a good copy follows */
    assert_int_equal(bs_put_batch(f->bs, items, 5, res), 0);
    assert_int_equal(res[0], 0);
    assert_int_equal(res[1], SZ_ECORRUPT);
    assert_int_equal(res[2], 0);
    assert_int_equal(res[3], SZ_ECORRUPT);
    assert_int_equal(res[4], 0);

    assert_int_equal(bs_have(f->bs, ids[0]), 1);
    assert_int_equal(bs_have(f->bs, ids[1]), 0);
    assert_int_equal(bs_have(f->bs, ids[2]), 1);
    assert_int_equal(bs_have(f->bs, ids[3]), 1);
    expect_block(f->bs, ids[3], d[3], 1003);
    expect_stats(f->bs, 3, 3 * HDR + 1000 + 1002 + 1003);

    /* A bad item of an id already stored is still reported. */
    items[0].crc ^= 4;
    assert_int_equal(bs_put_batch(f->bs, items, 1, res), 0);
    assert_int_equal(res[0], SZ_ECORRUPT);
    expect_block(f->bs, ids[0], d[0], 1000);
    for (int i = 0; i < 4; i++)
        free(d[i]);
}

#define NPERSIST 40

static void test_persistence(void **state)
{
    struct fixture *f = *state;
    uint8_t ids[NPERSIST][BS_ID_BYTES];
    uint8_t *d[NPERSIST];
    uint64_t b0, y0, b1, y1;

    for (int i = 0; i < NPERSIST; i++) {
        make_id(ids[i], 1000 + (uint64_t)i);
        d[i] = make_data(777 * (size_t)i, (uint64_t)i);
    }
    for (int i = 0; i < NPERSIST / 2; i++)
        put_one(f->bs, ids[i], d[i], 777 * (size_t)i);
    bs_stats(f->bs, &b0, &y0);
    reopen(f);
    bs_stats(f->bs, &b1, &y1);
    assert_int_equal(b1, b0);
    assert_int_equal(y1, y0);
    for (int i = 0; i < NPERSIST / 2; i++)
        expect_block(f->bs, ids[i], d[i], 777 * (size_t)i);

    /* Appends continue after the old records without clobbering them. */
    for (int i = NPERSIST / 2; i < NPERSIST; i++)
        put_one(f->bs, ids[i], d[i], 777 * (size_t)i);
    bs_stats(f->bs, &b0, &y0);
    reopen(f);
    bs_stats(f->bs, &b1, &y1);
    assert_int_equal(b1, NPERSIST);
    assert_int_equal(b1, b0);
    assert_int_equal(y1, y0);
    for (int i = 0; i < NPERSIST; i++) {
        expect_block(f->bs, ids[i], d[i], 777 * (size_t)i);
        free(d[i]);
    }
}

/* Garbage past the last indexed record (a torn write) is skipped over. */
static void test_tail_garbage(void **state)
{
    struct fixture *f = *state;
    uint8_t a[BS_ID_BYTES], b[BS_ID_BYTES];
    uint8_t *d = make_data(4000, 5);
    char path[256];
    int fd;

    make_id(a, 50);
    make_id(b, 51);
    put_one(f->bs, a, d, 4000);
    bs_close(f->bs);
    f->bs = NULL;
    data_path(f, 1, path, sizeof(path));
    fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "torn-record", 11), 11);
    close(fd);

    assert_int_equal(bs_open(f->dir, &f->bs), 0);
    expect_stats(f->bs, 1, HDR + 4000);
    put_one(f->bs, b, d, 3000);
    expect_block(f->bs, a, d, 4000);
    expect_block(f->bs, b, d, 3000);
    expect_stats(f->bs, 2, 2 * HDR + 7000);
    free(d);
}

#define NTHREADS 4
#define OWN 48
#define SHARED 48
#define BATCH 8

struct worker {
    struct bs *bs;
    int tid;
    int failures;
};

static uint64_t own_seed(int tid, int i)
{
    return 100000 + (uint64_t)tid * 1000 + (uint64_t)i;
}

static size_t block_len(uint64_t seed)
{
    return 1 + (size_t)(seed * 2654435761u % 20000);
}

/* The k-th id thread tid offers: its own ids and all shared ids alternate,
 * so every batch mixes both.  Threads 0/1 and 2/3 walk the shared ids in
 * the same order, so the same id is often in flight in two batches. */
static uint64_t offer_seed(int tid, int k)
{
    if (k % 2 == 0)
        return own_seed(tid, k / 2);
    return 900000 + (uint64_t)((k / 2 + (tid / 2) * 7) % SHARED);
}

static void *put_worker(void *arg)
{
    struct worker *w = arg;
    uint8_t ids[BATCH][BS_ID_BYTES];
    uint8_t *data[BATCH];
    struct bs_item items[BATCH];
    int res[BATCH];

    for (int k = 0; k < OWN + SHARED; k += BATCH) {
        for (int j = 0; j < BATCH; j++) {
            uint64_t s = offer_seed(w->tid, k + j);
            make_id(ids[j], s);
            data[j] = make_data(block_len(s), s);
            items[j] = item_of(ids[j], data[j], block_len(s));
        }
        if (bs_put_batch(w->bs, items, BATCH, res) != 0)
            w->failures++;
        for (int j = 0; j < BATCH; j++) {
            if (res[j] != 0)
                w->failures++;
            free(data[j]);
        }
    }
    return NULL;
}

static void check_all_blocks(struct bs *bs, uint64_t *bytes)
{
    uint8_t id[BS_ID_BYTES];

    *bytes = 0;
    for (int t = 0; t < NTHREADS; t++) {
        for (int i = 0; i < OWN; i++) {
            uint64_t s = own_seed(t, i);
            uint8_t *d = make_data(block_len(s), s);
            make_id(id, s);
            expect_block(bs, id, d, block_len(s));
            *bytes += HDR + block_len(s);
            free(d);
        }
    }
    for (int i = 0; i < SHARED; i++) {
        uint64_t s = 900000 + (uint64_t)i;
        uint8_t *d = make_data(block_len(s), s);
        make_id(id, s);
        expect_block(bs, id, d, block_len(s));
        *bytes += HDR + block_len(s);
        free(d);
    }
}

static void test_concurrent(void **state)
{
    struct fixture *f = *state;
    struct worker w[NTHREADS];
    pthread_t th[NTHREADS];
    uint64_t bytes, total, largest;

    for (int i = 0; i < NTHREADS; i++) {
        w[i] = (struct worker){.bs = f->bs, .tid = i};
        assert_int_equal(pthread_create(&th[i], NULL, put_worker, &w[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    check_all_blocks(f->bs, &bytes);
    expect_stats(f->bs, NTHREADS * OWN + SHARED, bytes);
    /* No id was written twice: the data files hold exactly the records. */
    data_files(f, &total, &largest);
    assert_int_equal(total, bytes);

    reopen(f);
    expect_stats(f->bs, NTHREADS * OWN + SHARED, bytes);
    check_all_blocks(f->bs, &bytes);
}

static void flip_byte(const struct fixture *f, unsigned file, off_t off)
{
    char path[256];
    uint8_t c;
    int fd;

    data_path(f, file, path, sizeof(path));
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &c, 1, off), 1);
    c ^= 0x10;
    assert_int_equal(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

static void test_corruption(void **state)
{
    struct fixture *f = *state;
    uint8_t a[BS_ID_BYTES], b[BS_ID_BYTES];
    uint8_t *da = make_data(10000, 7), *db = make_data(2000, 8);
    char path[256];

    make_id(a, 70);
    make_id(b, 71);
    put_one(f->bs, a, da, 10000); /* record at offset 0 of file 1 */
    put_one(f->bs, b, db, 2000);  /* record at HDR + 10000 */
    expect_block(f->bs, a, da, 10000);

    /* A payload bit flip, then undone. */
    flip_byte(f, 1, HDR + 5000);
    expect_get_rc(f->bs, a, SZ_ECORRUPT);
    expect_block(f->bs, b, db, 2000);
    flip_byte(f, 1, HDR + 5000);
    expect_block(f->bs, a, da, 10000);

    /* Header fields: magic, length, crc, id. */
    static const off_t hdr_offs[] = {0, 4, 8, 16, 47};
    for (size_t i = 0; i < sizeof(hdr_offs) / sizeof(hdr_offs[0]); i++) {
        flip_byte(f, 1, hdr_offs[i]);
        expect_get_rc(f->bs, a, SZ_ECORRUPT);
        flip_byte(f, 1, hdr_offs[i]);
        expect_block(f->bs, a, da, 10000);
    }

    /* A truncated data file: the second record is cut short. */
    data_path(f, 1, path, sizeof(path));
    assert_int_equal(truncate(path, HDR + 10000 + HDR + 1000), 0);
    expect_get_rc(f->bs, b, SZ_ECORRUPT);
    expect_block(f->bs, a, da, 10000);

    /* The same detection after a reopen (fresh file descriptors). */
    flip_byte(f, 1, HDR + 9999);
    reopen(f);
    expect_get_rc(f->bs, a, SZ_ECORRUPT);
    free(da);
    free(db);
}

#define ROT_MAX 65536
#define ROT_N 30
#define ROT_LEN 10000

static void test_rotation(void **state)
{
    struct fixture *f = *state;
    uint8_t ids[ROT_N + 1][BS_ID_BYTES];
    uint8_t *d[ROT_N + 1];
    struct bs_item items[3];
    int res[3];
    uint64_t total, largest, b0, y0;
    unsigned nfiles;

    setenv("SNAPZONE_BS_FILE_MAX", "65536", 1);
    reopen(f);
    for (int i = 0; i <= ROT_N; i++) {
        size_t len = i == ROT_N ? 3 * ROT_MAX : ROT_LEN;
        make_id(ids[i], 3000 + (uint64_t)i);
        d[i] = make_data(len, (uint64_t)i);
    }
    for (int i = 0; i < ROT_N; i += 3) {
        for (int j = 0; j < 3; j++)
            items[j] = item_of(ids[i + j], d[i + j], ROT_LEN);
        assert_int_equal(bs_put_batch(f->bs, items, 3, res), 0);
        assert_int_equal(res[0] | res[1] | res[2], 0);
    }
    /* A record larger than the limit gets a file of its own. */
    put_one(f->bs, ids[ROT_N], d[ROT_N], 3 * ROT_MAX);

    nfiles = data_files(f, &total, &largest);
    /* 6 records (60288 bytes) fit per 64 KiB file: 5 files + the big one. */
    assert_int_equal(nfiles, 6);
    assert_int_equal(largest, HDR + 3 * ROT_MAX);
    assert_int_equal(total, (ROT_N + 1) * HDR + ROT_N * ROT_LEN + 3 * ROT_MAX);
    for (int i = 0; i < ROT_N; i++)
        expect_block(f->bs, ids[i], d[i], ROT_LEN);
    expect_block(f->bs, ids[ROT_N], d[ROT_N], 3 * ROT_MAX);

    /* Reopen continues in a new file after the (full) highest one. */
    bs_stats(f->bs, &b0, &y0);
    reopen(f);
    expect_stats(f->bs, b0, y0);
    put_one(f->bs, ids[0], d[0], ROT_LEN); /* dup: no new file */
    assert_int_equal(data_files(f, &total, &largest), 6);
    free(d[0]);
    d[0] = make_data(ROT_LEN, 999);
    make_id(ids[0], 999);
    put_one(f->bs, ids[0], d[0], ROT_LEN);
    assert_int_equal(data_files(f, &total, &largest), 7);
    for (int i = 0; i <= ROT_N; i++) {
        expect_block(f->bs, ids[i], d[i], i == ROT_N ? 3 * ROT_MAX : ROT_LEN);
        free(d[i]);
    }
}

static void test_open_fails(void **state)
{
    struct fixture *f = *state;
    struct bs *bs = (struct bs *)1;
    char path[256];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/plainfile", f->dir);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(bs_open(path, &bs), SZ_EIO);
    assert_null(bs);
    /* The live store's index is locked against a second opener. */
    bs = (struct bs *)1;
    assert_int_equal(bs_open(f->dir, &bs), SZ_EIO);
    assert_null(bs);
    bs_close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip_sizes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_have, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_crc, setup, teardown),
        cmocka_unit_test_setup_teardown(test_persistence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tail_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corruption, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_fails, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
