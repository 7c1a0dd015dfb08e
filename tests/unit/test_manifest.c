/*
 * test_manifest: unit tests of the manifest encoding (round trips, exact
 * bytes, delta against a parent, and rejection of malformed input).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "manifest.h"

#define ID MF_ID_BYTES

/* ---- helpers ------------------------------------------------------------ */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void random_bytes(uint64_t *s, uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)splitmix(s);
}

static uint8_t *alloc_ids(size_t n)
{
    uint8_t *p = calloc(n ? n : 1, ID);

    assert_non_null(p);
    return p;
}

/* n ids: a mix of zero, copied-from-parent and random entries, in runs. */
static uint8_t *random_child(uint64_t *s, size_t n, const uint8_t *parent, size_t pn)
{
    uint8_t *ids = alloc_ids(n);
    size_t i = 0;

    while (i < n) {
        size_t run = 1 + splitmix(s) % 6, kind = splitmix(s) % 3;

        for (; run > 0 && i < n; run--, i++) {
            if (kind == 0)
                continue; /* zero */
            if (kind == 1 && i < pn)
                memcpy(ids + i * ID, parent + i * ID, ID);
            else
                random_bytes(s, ids + i * ID, ID);
        }
    }
    return ids;
}

/* Encode, decode, compare; return the encoded size. */
static size_t round_trip(const uint8_t *ids, size_t n, const uint8_t *parent, size_t pn)
{
    uint8_t *buf = NULL, *out = NULL;
    size_t len = 0, on = 0;

    assert_int_equal(mf_encode(ids, n, parent, pn, &buf, &len), 0);
    assert_non_null(buf);
    assert_true(len >= 12);
    assert_memory_equal(buf, "SZM1", 4);
    assert_int_equal(mf_decode(buf, len, parent, pn, n, &out, &on), 0);
    assert_non_null(out);
    assert_int_equal(on, n);
    if (n > 0)
        assert_memory_equal(out, ids, n * ID);
    free(out);
    free(buf);
    return len;
}

static int decode_rc(const uint8_t *buf, size_t len, const uint8_t *parent, size_t pn,
                     size_t max_n)
{
    uint8_t *out = (uint8_t *)1;
    size_t n = 12345;
    int rc = mf_decode(buf, len, parent, pn, max_n, &out, &n);

    if (rc != 0) {
        assert_null(out);
        assert_int_equal(n, 0);
    }
    free(out);
    return rc;
}

/* A manifest header for n, then the given run bytes, into buf. */
static size_t craft(uint8_t *buf, uint64_t n, const uint8_t *runs, size_t rlen)
{
    memcpy(buf, "SZM1", 4);
    for (int i = 0; i < 8; i++)
        buf[4 + i] = (uint8_t)(n >> (8 * i));
    memcpy(buf + 12, runs, rlen);
    return 12 + rlen;
}

/* ---- tests -------------------------------------------------------------- */

static void test_is_zero(void **state)
{
    uint8_t id[ID] = {0};

    (void)state;
    assert_true(mf_is_zero(id));
    id[31] = 1;
    assert_false(mf_is_zero(id));
    id[31] = 0;
    id[0] = 0x80;
    assert_false(mf_is_zero(id));
}

static void test_exact_bytes(void **state)
{
    static const uint8_t want_head[] = {'S', 'Z', 'M', '1', 6, 0, 0, 0, 0, 0, 0, 0,
                                        0, 2,          /* ZERO x2 */
                                        2, 1};         /* LIT x1 ... */
    uint8_t parent[4 * ID], ids[6 * ID];
    uint8_t *buf = NULL;
    size_t len = 0, off;
    uint64_t s = 1;

    (void)state;
    random_bytes(&s, parent, sizeof(parent));
    memset(ids, 0, sizeof(ids));             /* 0, 1: zero (1 also zero in parent) */
    memset(parent + ID, 0, ID);
    random_bytes(&s, ids + 2 * ID, ID);      /* 2: literal */
    memcpy(ids + 3 * ID, parent + 3 * ID, ID); /* 3: same */
    random_bytes(&s, ids + 4 * ID, 2 * ID);  /* 4, 5: literal (past parent) */
    assert_int_equal(mf_encode(ids, 6, parent, 4, &buf, &len), 0);
    assert_int_equal(len, sizeof(want_head) + ID + 2 + 2 + 2 * ID);
    assert_memory_equal(buf, want_head, sizeof(want_head));
    off = sizeof(want_head);
    assert_memory_equal(buf + off, ids + 2 * ID, ID);
    off += ID;
    assert_int_equal(buf[off], 1); /* SAME x1 */
    assert_int_equal(buf[off + 1], 1);
    assert_int_equal(buf[off + 2], 2); /* LIT x2 */
    assert_int_equal(buf[off + 3], 2);
    assert_memory_equal(buf + off + 4, ids + 4 * ID, 2 * ID);
    free(buf);
    round_trip(ids, 6, parent, 4);
}

static void test_empty(void **state)
{
    uint8_t *buf = NULL, *out = NULL;
    size_t len = 0, n = 99;

    (void)state;
    assert_int_equal(mf_encode(NULL, 0, NULL, 0, &buf, &len), 0);
    assert_int_equal(len, 12);
    assert_int_equal(mf_decode(buf, len, NULL, 0, 0, &out, &n), 0);
    assert_int_equal(n, 0);
    free(out);
    free(buf);
}

static void test_all_zero(void **state)
{
    uint8_t *ids = alloc_ids(10000);

    (void)state;
    assert_int_equal(round_trip(ids, 10000, NULL, 0), 12 + 1 + 2);
    assert_int_equal(round_trip(ids, 10000, ids, 10000), 12 + 1 + 2); /* ZERO wins */
    free(ids);
}

static void test_all_same(void **state)
{
    uint64_t s = 7;
    uint8_t *parent = alloc_ids(300), *buf = NULL;
    size_t len = 0;

    (void)state;
    random_bytes(&s, parent, 300 * ID);
    assert_int_equal(round_trip(parent, 300, parent, 300), 12 + 1 + 2);
    assert_int_equal(round_trip(parent, 200, parent, 300), 12 + 1 + 2); /* shorter child */
    /* SAME runs need the parent */
    assert_int_equal(mf_encode(parent, 300, parent, 300, &buf, &len), 0);
    assert_int_equal(decode_rc(buf, len, NULL, 0, 300), SZ_EPROTO);
    assert_int_equal(decode_rc(buf, len, parent, 299, 300), SZ_EPROTO);
    assert_int_equal(decode_rc(buf, len, parent, 300, 300), 0);
    free(buf);
    free(parent);
}

static void test_all_literal(void **state)
{
    uint64_t s = 9;
    uint8_t *ids = alloc_ids(100), *other = alloc_ids(100);

    (void)state;
    random_bytes(&s, ids, 100 * ID);
    random_bytes(&s, other, 100 * ID);
    assert_int_equal(round_trip(ids, 100, NULL, 0), 12 + 1 + 1 + 100 * ID);
    assert_int_equal(round_trip(ids, 100, other, 100), 12 + 1 + 1 + 100 * ID);
    assert_int_equal(round_trip(ids, 1, NULL, 0), 12 + 1 + 1 + ID);
    free(ids);
    free(other);
}

static void test_random_mix(void **state)
{
    static const size_t sizes[] = {1, 2, 3, 17, 127, 128, 129, 1000, 20000};
    uint64_t s = 42;

    (void)state;
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k], pn = n / 2 + (k % 3) * n; /* shorter, then longer parents */
        uint8_t *parent = random_child(&s, pn, NULL, 0);
        uint8_t *ids = random_child(&s, n, parent, pn);

        round_trip(ids, n, NULL, 0);
        round_trip(ids, n, parent, pn);
        free(ids);
        free(parent);
    }
}

static void test_large(void **state)
{
    const size_t n = 2000000;
    uint64_t s = 3;
    uint8_t *parent = random_child(&s, n, NULL, 0);
    uint8_t *ids = alloc_ids(n);

    (void)state;
    /* a typical next snapshot: 1% rewritten, some blocks zeroed */
    memcpy(ids, parent, n * ID);
    for (size_t i = 0; i < n / 100; i++) {
        size_t at = splitmix(&s) % n;

        if (i % 4 == 0)
            memset(ids + at * ID, 0, ID);
        else
            random_bytes(&s, ids + at * ID, ID);
    }
    assert_true(round_trip(ids, n, parent, n) < n * ID / 2);
    free(ids);
    free(parent);
}

static void test_truncated(void **state)
{
    uint64_t s = 5;
    uint8_t *parent = random_child(&s, 64, NULL, 0);
    uint8_t *ids = random_child(&s, 80, parent, 64), *buf = NULL, *copy;
    size_t len = 0;

    (void)state;
    assert_int_equal(mf_encode(ids, 80, parent, 64, &buf, &len), 0);
    for (size_t cut = 0; cut < len; cut++) {
        copy = malloc(cut ? cut : 1); /* exact size, so ASan sees overreads */
        assert_non_null(copy);
        memcpy(copy, buf, cut);
        assert_int_not_equal(decode_rc(copy, cut, parent, 64, 80), 0);
        free(copy);
    }
    /* and trailing bytes */
    copy = malloc(len + 1);
    assert_non_null(copy);
    memcpy(copy, buf, len);
    copy[len] = 0;
    assert_int_equal(decode_rc(copy, len + 1, parent, 64, 80), SZ_EPROTO);
    assert_int_equal(decode_rc(copy, len, parent, 64, 80), 0);
    free(copy);
    free(buf);
    free(ids);
    free(parent);
}

static void test_malformed(void **state)
{
    uint8_t buf[256], parent[2 * ID];
    uint64_t s = 8;

    (void)state;
    random_bytes(&s, parent, sizeof(parent));
    /* sanity: a valid base case */
    assert_int_equal(decode_rc(buf, craft(buf, 3, (const uint8_t[]){0, 3}, 2), NULL, 0, 10), 0);
    /* bad magic */
    craft(buf, 3, (const uint8_t[]){0, 3}, 2);
    buf[3] = '2';
    assert_int_equal(decode_rc(buf, 14, NULL, 0, 10), SZ_EPROTO);
    assert_int_equal(decode_rc(NULL, 0, NULL, 0, 10), SZ_EPROTO);
    /* unknown tag */
    assert_int_equal(decode_rc(buf, craft(buf, 3, (const uint8_t[]){3, 3}, 2), NULL, 0, 10),
                     SZ_EPROTO);
    /* count 0 */
    assert_int_equal(decode_rc(buf, craft(buf, 3, (const uint8_t[]){0, 0, 0, 3}, 4), NULL, 0, 10),
                     SZ_EPROTO);
    /* runs past n, runs short of n */
    assert_int_equal(decode_rc(buf, craft(buf, 3, (const uint8_t[]){0, 2, 0, 2}, 4), NULL, 0, 10),
                     SZ_EPROTO);
    assert_int_equal(decode_rc(buf, craft(buf, 3, (const uint8_t[]){0, 2}, 2), NULL, 0, 10),
                     SZ_EPROTO);
    /* a huge count (2^64 - 1) must not wrap */
    assert_int_equal(decode_rc(buf,
                               craft(buf, 3,
                                     (const uint8_t[]){0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff,
                                                       0xff, 0xff, 0xff, 0xff, 0x01},
                                     13),
                               NULL, 0, 10),
                     SZ_EPROTO);
    /* varints: overlong, more than 10 bytes, over 64 bits, truncated */
    assert_int_equal(decode_rc(buf, craft(buf, 1, (const uint8_t[]){0, 0x81, 0x00}, 3), NULL, 0,
                               10),
                     SZ_EPROTO);
    assert_int_equal(decode_rc(buf,
                               craft(buf, 1,
                                     (const uint8_t[]){0, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80,
                                                       0x80, 0x80, 0x80, 0x80, 0x00},
                                     12),
                               NULL, 0, 10),
                     SZ_EPROTO);
    assert_int_equal(decode_rc(buf,
                               craft(buf, 1,
                                     (const uint8_t[]){0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                                       0xff, 0xff, 0xff, 0x02},
                                     11),
                               NULL, 0, 10),
                     SZ_EPROTO);
    /* ... and 1 with bit 64 set: wraps to 1 if the 10th byte goes unchecked */
    assert_int_equal(decode_rc(buf,
                               craft(buf, 1,
                                     (const uint8_t[]){0, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80,
                                                       0x80, 0x80, 0x80, 0x02},
                                     11),
                               NULL, 0, 10),
                     SZ_EPROTO);
    assert_int_equal(decode_rc(buf, craft(buf, 1, (const uint8_t[]){0, 0x81}, 2), NULL, 0, 10),
                     SZ_EPROTO);
    /* multi-byte minimal varints are fine: 200 = c8 01, 128 = 80 01 */
    assert_int_equal(decode_rc(buf, craft(buf, 200, (const uint8_t[]){0, 0xc8, 0x01}, 3), NULL,
                               0, 200),
                     0);
    assert_int_equal(decode_rc(buf, craft(buf, 128, (const uint8_t[]){0, 0x80, 0x01}, 3), NULL,
                               0, 200),
                     0);
    /* LIT payload short by one byte */
    craft(buf, 2, (const uint8_t[]){2, 2}, 2);
    random_bytes(&s, buf + 14, 2 * ID);
    assert_int_equal(decode_rc(buf, 14 + 2 * ID, NULL, 0, 10), 0);
    assert_int_equal(decode_rc(buf, 14 + 2 * ID - 1, NULL, 0, 10), SZ_EPROTO);
    /* SAME past the parent, SAME without parent, SAME after the parent ends */
    assert_int_equal(decode_rc(buf, craft(buf, 2, (const uint8_t[]){1, 2}, 2), parent, 2, 10), 0);
    assert_int_equal(decode_rc(buf, craft(buf, 3, (const uint8_t[]){1, 3}, 2), parent, 2, 10),
                     SZ_EPROTO);
    assert_int_equal(decode_rc(buf, craft(buf, 2, (const uint8_t[]){1, 2}, 2), NULL, 2, 10),
                     SZ_EPROTO);
    assert_int_equal(decode_rc(buf, craft(buf, 4, (const uint8_t[]){0, 3, 1, 1}, 4), parent, 2,
                               10),
                     SZ_EPROTO);
    /* tag without count */
    assert_int_equal(decode_rc(buf, craft(buf, 1, (const uint8_t[]){0}, 1), NULL, 0, 10),
                     SZ_EPROTO);
}

static void test_max_n(void **state)
{
    uint8_t *ids = alloc_ids(100), *buf = NULL, hdr[32];
    size_t len = 0;

    (void)state;
    assert_int_equal(mf_encode(ids, 100, NULL, 0, &buf, &len), 0);
    assert_int_equal(decode_rc(buf, len, NULL, 0, 100), 0);
    assert_int_equal(decode_rc(buf, len, NULL, 0, 99), SZ_ETOOBIG);
    assert_int_equal(decode_rc(buf, len, NULL, 0, 0), SZ_ETOOBIG);
    /* n that cannot be allocated is too big whatever max_n says */
    assert_int_equal(decode_rc(hdr, craft(hdr, UINT64_MAX, (const uint8_t[]){0, 1}, 2), NULL, 0,
                               SIZE_MAX),
                     SZ_ETOOBIG);
    assert_int_equal(decode_rc(hdr, craft(hdr, (uint64_t)1 << 60, (const uint8_t[]){0, 1}, 2),
                               NULL, 0, SIZE_MAX),
                     SZ_ETOOBIG);
    free(buf);
    free(ids);
}

static void test_garbage(void **state)
{
    uint8_t buf[512], parent[8 * ID];
    uint64_t s = 1234;

    (void)state;
    random_bytes(&s, parent, sizeof(parent));
    for (int iter = 0; iter < 200000; iter++) {
        size_t len = splitmix(&s) % sizeof(buf);
        int rc;

        random_bytes(&s, buf, len);
        if (iter % 2 == 0 && len >= 12) { /* plausible header, random runs */
            memcpy(buf, "SZM1", 4);
            memset(buf + 4, 0, 8);
            buf[4] = (uint8_t)(splitmix(&s) % 16);
            for (size_t i = 12; i < len; i++)
                if (splitmix(&s) % 2)
                    buf[i] &= 0x07;
        }
        rc = decode_rc(buf, len, iter % 3 ? parent : NULL, 8, 64);
        assert_true(rc == 0 || rc == SZ_EPROTO || rc == SZ_ETOOBIG);
    }
}

static void test_invalid_args(void **state)
{
    uint8_t id[ID] = {1}, *buf = NULL, *out = NULL;
    size_t len = 0, n = 0;

    (void)state;
    assert_int_equal(mf_encode(NULL, 1, NULL, 0, &buf, &len), SZ_EINVAL);
    assert_int_equal(mf_encode(id, 1, NULL, 0, NULL, &len), SZ_EINVAL);
    assert_int_equal(mf_encode(id, 1, NULL, 0, &buf, NULL), SZ_EINVAL);
    assert_int_equal(mf_encode(id, 1, NULL, 5, &buf, &len), 0); /* NULL parent: no parent */
    assert_int_equal(mf_decode(buf, len, NULL, 0, 1, NULL, &n), SZ_EINVAL);
    assert_int_equal(mf_decode(buf, len, NULL, 0, 1, &out, NULL), SZ_EINVAL);
    assert_int_equal(mf_decode(NULL, 12, NULL, 0, 1, &out, &n), SZ_EINVAL);
    assert_int_equal(mf_decode(buf, len, NULL, 0, 1, &out, &n), 0);
    assert_int_equal(n, 1);
    assert_memory_equal(out, id, ID);
    free(out);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_is_zero),     cmocka_unit_test(test_exact_bytes),
        cmocka_unit_test(test_empty),       cmocka_unit_test(test_all_zero),
        cmocka_unit_test(test_all_same),    cmocka_unit_test(test_all_literal),
        cmocka_unit_test(test_random_mix),  cmocka_unit_test(test_large),
        cmocka_unit_test(test_truncated),   cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_max_n),       cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_invalid_args),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
