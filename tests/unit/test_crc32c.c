/*
 * test_crc32c: unit tests of crc32c (CRC-32C, Castagnoli): published
 * vectors, incremental use, alignment, and the fast path against a bitwise
 * reference implemented here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"

/* Bit-at-a-time reflected CRC-32C, polynomial 0x82F63B78. */
static uint32_t crc_ref(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void fill_noise(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;

    for (size_t i = 0; i < n; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        p[i] = (uint8_t)(s >> 32);
    }
}

#define THREADS 8
#define THREAD_LEN 65536

struct job {
    const uint8_t *buf;
    uint32_t crc;
};

static void *crc_thread(void *arg)
{
    struct job *j = arg;

    j->crc = crc32c(0, j->buf, THREAD_LEN);
    return NULL;
}

/* Must run first: several threads make the very first calls at once, so the
 * lazy initialisation is exercised concurrently (run under TSan too). */
static void test_concurrent_first_use(void **state)
{
    uint8_t *buf = malloc(THREAD_LEN);
    pthread_t t[THREADS];
    struct job jobs[THREADS];
    uint32_t want;
    (void)state;

    assert_non_null(buf);
    fill_noise(buf, THREAD_LEN, 99);
    want = crc_ref(0, buf, THREAD_LEN);
    for (int i = 0; i < THREADS; i++) {
        jobs[i].buf = buf;
        assert_int_equal(pthread_create(&t[i], NULL, crc_thread, &jobs[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(jobs[i].crc, want);
    }
    free(buf);
}

static void test_known_vectors(void **state)
{
    uint8_t buf[32];
    (void)state;

    assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(crc32c(0, "", 0), 0);
    assert_int_equal(crc32c(0, NULL, 0), 0);
    assert_int_equal(crc32c(0xE3069283u, "", 0), 0xE3069283u);
    assert_int_equal(crc32c(0, "a", 1), 0xC1D04330u);
    /* RFC 3720 (iSCSI), appendix B.4 */
    memset(buf, 0, sizeof(buf));
    assert_int_equal(crc32c(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, sizeof(buf));
    assert_int_equal(crc32c(0, buf, 32), 0x62A8AB43u);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)i;
    assert_int_equal(crc32c(0, buf, 32), 0x46DD794Eu);
    for (int i = 0; i < 32; i++)
        buf[i] = (uint8_t)(31 - i);
    assert_int_equal(crc32c(0, buf, 32), 0x113FDB5Cu);
}

static void test_reference_matches_vectors(void **state)
{
    (void)state;
    /* The reference itself must be right, or the comparisons prove nothing. */
    assert_int_equal(crc_ref(0, (const uint8_t *)"123456789", 9), 0xE3069283u);
    assert_int_equal(crc_ref(0, (const uint8_t *)"", 0), 0);
}

static void test_incremental(void **state)
{
    uint8_t buf[300];
    uint32_t whole;
    (void)state;

    fill_noise(buf, sizeof(buf), 1);
    whole = crc32c(0, buf, sizeof(buf));
    for (size_t split = 0; split <= sizeof(buf); split++) {
        uint32_t c = crc32c(0, buf, split);
        assert_int_equal(crc32c(c, buf + split, sizeof(buf) - split), whole);
    }
    /* Three pieces and byte-by-byte. */
    for (size_t a = 0; a < 40; a++) {
        uint32_t c = crc32c(0, buf, a);
        c = crc32c(c, buf + a, 17);
        assert_int_equal(crc32c(c, buf + a + 17, sizeof(buf) - a - 17), whole);
    }
    {
        uint32_t c = 0;
        for (size_t i = 0; i < sizeof(buf); i++)
            c = crc32c(c, buf + i, 1);
        assert_int_equal(c, whole);
    }
}

static void test_unaligned(void **state)
{
    uint8_t *base = malloc(256 + 16);
    uint8_t copy[256];
    (void)state;

    assert_non_null(base);
    fill_noise(copy, sizeof(copy), 2);
    for (size_t off = 0; off < 16; off++) {
        memcpy(base + off, copy, sizeof(copy));
        for (size_t len = 0; len <= sizeof(copy); len++)
            assert_int_equal(crc32c(0, base + off, len), crc_ref(0, copy, len));
    }
    free(base);
}

static void test_large_vs_reference(void **state)
{
    size_t n = (8u << 20) + 13;
    uint8_t *buf = malloc(n + 1);
    uint32_t want, c = 0;
    size_t pos = 0, step = 1;
    (void)state;

    assert_non_null(buf);
    fill_noise(buf, n + 1, 3);
    want = crc_ref(0, buf + 1, n); /* odd start address */
    assert_int_equal(crc32c(0, buf + 1, n), want);
    /* Irregular pieces, including ones that cross 8-byte boundaries. */
    while (pos < n) {
        size_t take = step < n - pos ? step : n - pos;
        c = crc32c(c, buf + 1 + pos, take);
        pos += take;
        step = step * 3 + 1;
        if (step > 1000000)
            step = 5;
    }
    assert_int_equal(c, want);
    /* A single flipped bit changes the crc. */
    buf[n / 2] ^= 0x20;
    assert_int_not_equal(crc32c(0, buf + 1, n), want);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_first_use),
        cmocka_unit_test(test_known_vectors),
        cmocka_unit_test(test_reference_matches_vectors),
        cmocka_unit_test(test_incremental),
        cmocka_unit_test(test_unaligned),
        cmocka_unit_test(test_large_vs_reference),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
