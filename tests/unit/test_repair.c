/*
 * test_repair: the pure parts of node/repair.h -- the token bucket that
 * paces repair pushes (starts full, debt then waits, long-run rate, burst
 * cap, clock going backwards, rate 0) and repair_parse_bytes (the
 * --repair-rate syntax: K/M/G suffixes, rejects).  The repair thread itself
 * is exercised by the integration tests.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "repair.h"

static void test_bucket_starts_full(void **state)
{
    struct repair_bucket b;

    (void)state;
    repair_bucket_init(&b, 1000, 5000);
    assert_int_equal(repair_bucket_wait_ms(&b, 5000), 0);
    repair_bucket_take(&b, 1000, 5000); /* the whole burst */
    assert_int_equal(repair_bucket_wait_ms(&b, 5000), 0); /* balance 0: still allowed */
    repair_bucket_take(&b, 500, 5000);                    /* now 500 in debt */
    assert_int_equal(repair_bucket_wait_ms(&b, 5000), 501);
    assert_true(repair_bucket_wait_ms(&b, 5250) > 0);
    assert_int_equal(repair_bucket_wait_ms(&b, 5500), 0);
}

static void test_bucket_big_take(void **state)
{
    struct repair_bucket b;

    (void)state;
    /* A block bigger than the burst goes out, then pays for itself. */
    repair_bucket_init(&b, 1 << 20, 0);
    repair_bucket_take(&b, 4u << 20, 0);
    assert_int_equal(repair_bucket_wait_ms(&b, 0), 3001);
    assert_true(repair_bucket_wait_ms(&b, 2999) > 0);
    assert_int_equal(repair_bucket_wait_ms(&b, 3001), 0);
}

/* Simulated sender: take 64 KiB whenever allowed, on a 1 ms clock. */
static void test_bucket_rate(void **state)
{
    const uint64_t rate = 10u << 20, chunk = 64u << 10;
    struct repair_bucket b;
    uint64_t sent = 0, now = 0;

    (void)state;
    repair_bucket_init(&b, rate, 0);
    while (now <= 10000) {
        uint64_t w = repair_bucket_wait_ms(&b, now);
        if (w > 0) {
            now += w;
            continue;
        }
        repair_bucket_take(&b, chunk, now);
        sent += chunk;
    }
    /* 10 s at 10 MiB/s plus the initial 1 s burst, within a chunk or two. */
    assert_true(sent >= 11 * rate - 2 * chunk);
    assert_true(sent <= 11 * rate + 2 * chunk);
}

static void test_bucket_burst_cap(void **state)
{
    struct repair_bucket b;

    (void)state;
    repair_bucket_init(&b, 1000, 0);
    repair_bucket_take(&b, 1000, 0);
    /* An hour idle refills one second's worth only. */
    assert_int_equal(repair_bucket_wait_ms(&b, 3600000), 0);
    repair_bucket_take(&b, 2000, 3600000);
    assert_int_equal(repair_bucket_wait_ms(&b, 3600000), 1001);
}

static void test_bucket_clock_backwards(void **state)
{
    struct repair_bucket b;

    (void)state;
    repair_bucket_init(&b, 1000, 10000);
    repair_bucket_take(&b, 2000, 10000);
    assert_true(repair_bucket_wait_ms(&b, 9000) > 0); /* no credit for the past */
    assert_int_equal(repair_bucket_wait_ms(&b, 11000), 0);
}

static void test_bucket_rate_zero(void **state)
{
    struct repair_bucket b;

    (void)state;
    repair_bucket_init(&b, 0, 0); /* becomes 1 byte/s, never divides by 0 */
    repair_bucket_take(&b, 3, 0);
    assert_int_equal(repair_bucket_wait_ms(&b, 0), 2001);
}

static void test_parse_bytes(void **state)
{
    static const struct {
        const char *s;
        uint64_t v;
    } ok[] = {
        {"1", 1},
        {"65536", 65536},
        {"64K", 64ull << 10},
        {"64k", 64ull << 10},
        {"64M", 64ull << 20},
        {"64MiB", 64ull << 20},
        {"64MB", 64ull << 20},
        {"2G", 2ull << 30},
        {"100b", 100},
        {"17179869183G", 17179869183ull << 30},
    };
    static const char *bad[] = {
        "", "0", "0M", "-5", "M", "12X", "1.5M", "64 M", "64MM", "99999999999999999999",
        "17179869184G", " 5", "5 ",
    };
    uint64_t v;

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        v = 0;
        assert_int_equal(repair_parse_bytes(ok[i].s, &v), 0);
        assert_true(v == ok[i].v);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = 42;
        if (repair_parse_bytes(bad[i], &v) == 0)
            fail_msg("'%s' parsed as %llu", bad[i], (unsigned long long)v);
        assert_int_equal(v, 42);
    }
    assert_int_equal(repair_parse_bytes(NULL, &v), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_starts_full),
        cmocka_unit_test(test_bucket_big_take),
        cmocka_unit_test(test_bucket_rate),
        cmocka_unit_test(test_bucket_burst_cap),
        cmocka_unit_test(test_bucket_clock_backwards),
        cmocka_unit_test(test_bucket_rate_zero),
        cmocka_unit_test(test_parse_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
