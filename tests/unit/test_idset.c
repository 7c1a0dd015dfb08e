/*
 * test_idset: the client's set of 32-byte block ids (client/lib/idset.h):
 * add/has/count, duplicates, growth far past the initial size, ids that
 * share their hash bytes, and the all-zero id, which is never stored.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "idset.h"

#define NRAND 100000

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void random_id(uint64_t *s, uint8_t id[32])
{
    for (int k = 0; k < 4; k++) {
        uint64_t v = splitmix(s);
        memcpy(id + 8 * k, &v, 8);
    }
}

static void test_basic(void **state)
{
    struct idset *s = NULL;
    uint8_t a[32], b[32], c[32];

    (void)state;
    memset(a, 0x11, 32);
    memset(b, 0x22, 32);
    memcpy(c, a, 32);
    c[31] ^= 1; /* differs from a in the last byte only */
    assert_int_equal(idset_new(4, &s), 0);
    assert_non_null(s);
    assert_int_equal(idset_count(s), 0);
    assert_int_equal(idset_has(s, a), 0);

    assert_int_equal(idset_add(s, a), 1);
    assert_int_equal(idset_count(s), 1);
    assert_int_equal(idset_has(s, a), 1);
    assert_int_equal(idset_has(s, b), 0);
    assert_int_equal(idset_has(s, c), 0);

    /* duplicate add: 0, count unchanged */
    assert_int_equal(idset_add(s, a), 0);
    assert_int_equal(idset_count(s), 1);

    assert_int_equal(idset_add(s, b), 1);
    assert_int_equal(idset_add(s, c), 1);
    assert_int_equal(idset_count(s), 3);
    assert_int_equal(idset_has(s, a), 1);
    assert_int_equal(idset_has(s, b), 1);
    assert_int_equal(idset_has(s, c), 1);
    assert_int_equal(idset_add(s, c), 0);
    assert_int_equal(idset_count(s), 3);
    idset_free(s);
    idset_free(NULL);
}

static void test_zero_id(void **state)
{
    struct idset *s = NULL;
    uint8_t z[32] = {0}, one[32] = {0};

    (void)state;
    one[31] = 1; /* not the zero id, though its hash bytes are zero */
    assert_int_equal(idset_new(0, &s), 0);
    assert_int_equal(idset_has(s, z), 0);
    assert_int_equal(idset_add(s, z), 0);
    assert_int_equal(idset_count(s), 0);
    assert_int_equal(idset_has(s, z), 0);
    assert_int_equal(idset_add(s, one), 1);
    assert_int_equal(idset_has(s, one), 1);
    /* still never stored once the set holds other ids */
    assert_int_equal(idset_add(s, z), 0);
    assert_int_equal(idset_has(s, z), 0);
    assert_int_equal(idset_count(s), 1);
    idset_free(s);
}

/* 100k random ids into a set sized for 16: all present, count exact,
 * duplicates refused, absent ids absent. */
static void test_growth_random(void **state)
{
    static uint8_t ids[NRAND][32];
    struct idset *s = NULL;
    uint64_t seed = 0x5eed;
    uint8_t other[32];

    (void)state;
    for (size_t i = 0; i < NRAND; i++)
        random_id(&seed, ids[i]);
    assert_int_equal(idset_new(16, &s), 0);
    for (size_t i = 0; i < NRAND; i++) {
        int rc = idset_add(s, ids[i]);
        if (rc != 1)
            idset_free(s);
        assert_int_equal(rc, 1);
        /* spot check while growing: earlier ids survive every rehash */
        if ((i & (i + 1)) == 0) {
            for (size_t k = 0; k <= i; k++)
                if (!idset_has(s, ids[k])) {
                    idset_free(s);
                    fail_msg("id %zu lost after %zu adds", k, i + 1);
                }
        }
    }
    assert_int_equal(idset_count(s), NRAND);
    for (size_t i = 0; i < NRAND; i++)
        if (!idset_has(s, ids[i])) {
            idset_free(s);
            fail_msg("id %zu missing", i);
        }
    for (size_t i = 0; i < NRAND; i += 7)
        if (idset_add(s, ids[i]) != 0) {
            idset_free(s);
            fail_msg("duplicate %zu added again", i);
        }
    assert_int_equal(idset_count(s), NRAND);
    for (size_t i = 0; i < NRAND; i++) {
        random_id(&seed, other);
        if (idset_has(s, other)) {
            idset_free(s);
            fail_msg("absent id %zu reported present", i);
        }
    }
    idset_free(s);
}

/* Ids sharing their first 8 (hash) bytes all land on one probe chain,
 * including a chain that wraps around the end of the table. */
static void test_colliding_ids(void **state)
{
    struct idset *s = NULL;
    uint8_t id[32];
    const size_t n = 3000;

    (void)state;
    assert_int_equal(idset_new(8, &s), 0);
    for (size_t i = 0; i < n; i++) {
        memset(id, 0xff, 8); /* hash = all ones: the last slot */
        memset(id + 8, 0, 24);
        memcpy(id + 8, &i, sizeof(i));
        id[31] = 0x5a;
        assert_int_equal(idset_add(s, id), 1);
    }
    assert_int_equal(idset_count(s), n);
    for (size_t i = 0; i < n; i++) {
        memset(id, 0xff, 8);
        memset(id + 8, 0, 24);
        memcpy(id + 8, &i, sizeof(i));
        id[31] = 0x5a;
        assert_int_equal(idset_has(s, id), 1);
        assert_int_equal(idset_add(s, id), 0);
        id[31] = 0x5b;
        assert_int_equal(idset_has(s, id), 0);
    }
    assert_int_equal(idset_count(s), n);
    idset_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_zero_id),
        cmocka_unit_test(test_growth_random),
        cmocka_unit_test(test_colliding_ids),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
