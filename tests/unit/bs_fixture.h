/*
 * bs_fixture: the block-store test fixture shared by test_blockstore.c and
 * test_blockstore_ops.c (test code only): a store in a fresh temp dir,
 * reopen, and deterministic ids and data.  Define BS_FIXTURE_TMP (a mkdtemp
 * template) before including.
 */
#ifndef SZ_BS_FIXTURE_H
#define SZ_BS_FIXTURE_H

#define HDR 48 /* record header bytes, see blockstore.h */

struct fixture {
    char dir[64];
    struct bs *bs;
};

/* ---- helpers -------------------------------------------------------------- */

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    strcpy(f->dir, BS_FIXTURE_TMP);
    if (mkdtemp(f->dir) == NULL || bs_open(f->dir, &f->bs) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    bs_close(f->bs);
    sztest_rmrf(f->dir);
    free(f);
    unsetenv("SNAPZONE_BS_FILE_MAX");
    return 0;
}

static void reopen(struct fixture *f)
{
    bs_close(f->bs);
    f->bs = NULL;
    assert_int_equal(bs_open(f->dir, &f->bs), 0);
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void make_id(uint8_t id[BS_ID_BYTES], uint64_t seed)
{
    uint64_t s = seed * 7919 + 1;

    for (int i = 0; i < BS_ID_BYTES; i += 8) {
        uint64_t v = splitmix(&s);
        memcpy(id + i, &v, 8);
    }
}

static uint8_t *make_data(size_t len, uint64_t seed)
{
    uint8_t *p = malloc(len > 0 ? len : 1);
    uint64_t s = seed;

    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(splitmix(&s) >> 56);
    return p;
}

#endif
