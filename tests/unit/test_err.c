/*
 * test_err: the shared error vocabulary (proto/err.h).  Every code in the
 * SZ_ERRORS table must have its own symbolic name and its own text, and
 * anything outside the table must read "unknown error".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

struct err_row {
    const char *name;
    int val;
    const char *text;
};

static const struct err_row rows[] = {
#define ROW(name, val, text) {#name, val, text},
    SZ_ERRORS(ROW)
#undef ROW
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

static int is_known(int code)
{
    for (size_t i = 0; i < NROWS; i++)
        if (rows[i].val == code)
            return 1;
    return 0;
}

/* sz_errname and sz_strerror return exactly the table's name and text. */
static void test_table_lookup(void **state)
{
    (void)state;
    assert_true(NROWS >= 17);
    for (size_t i = 0; i < NROWS; i++) {
        const char *name = sz_errname(rows[i].val);
        const char *text = sz_strerror(rows[i].val);

        assert_non_null(name);
        assert_non_null(text);
        assert_string_equal(name, rows[i].name);
        assert_string_equal(text, rows[i].text);
        assert_true(strlen(text) > 0);
        assert_string_not_equal(text, "unknown error");
        /* Every name is "SZ_..." and every failure code is negative. */
        assert_int_equal(strncmp(name, "SZ_", 3), 0);
        if (rows[i].val != SZ_OK)
            assert_true(rows[i].val < 0);
    }
    /* A few spot checks against the enum itself. */
    assert_string_equal(sz_errname(SZ_OK), "SZ_OK");
    assert_string_equal(sz_errname(SZ_ENOENT), "SZ_ENOENT");
    assert_string_equal(sz_errname(SZ_ETIMEDOUT), "SZ_ETIMEDOUT");
    assert_string_equal(sz_errname(SZ_EINTERNAL), "SZ_EINTERNAL");
    assert_string_equal(sz_strerror(SZ_ENOENT), "not found");
    assert_string_equal(sz_strerror(SZ_OK), "success");
}

/* Values, names and texts are pairwise distinct. */
static void test_distinct(void **state)
{
    (void)state;
    for (size_t i = 0; i < NROWS; i++) {
        for (size_t j = i + 1; j < NROWS; j++) {
            assert_int_not_equal(rows[i].val, rows[j].val);
            assert_string_not_equal(rows[i].name, rows[j].name);
            assert_string_not_equal(rows[i].text, rows[j].text);
            assert_string_not_equal(sz_errname(rows[i].val), sz_errname(rows[j].val));
            assert_string_not_equal(sz_strerror(rows[i].val), sz_strerror(rows[j].val));
        }
    }
}

/* Codes outside the table: "unknown error", and a name that is not any
 * table name. */
static void test_unknown(void **state)
{
    static const int probes[] = {1, 2, 17, -17, -100, 1000, -1000, INT_MAX, INT_MIN, 255, -255};

    (void)state;
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        const char *name;

        assert_false(is_known(probes[i]));
        assert_string_equal(sz_strerror(probes[i]), "unknown error");
        name = sz_errname(probes[i]);
        assert_non_null(name);
        for (size_t k = 0; k < NROWS; k++)
            assert_string_not_equal(name, rows[k].name);
    }
    /* Sweep a wide range: known codes never say "unknown error", others do. */
    for (int c = -300; c <= 300; c++) {
        if (is_known(c))
            assert_string_not_equal(sz_strerror(c), "unknown error");
        else
            assert_string_equal(sz_strerror(c), "unknown error");
    }
}

/* The returned strings are static: stable across calls. */
static void test_static_strings(void **state)
{
    (void)state;
    for (size_t i = 0; i < NROWS; i++) {
        assert_ptr_equal(sz_strerror(rows[i].val), sz_strerror(rows[i].val));
        assert_ptr_equal(sz_errname(rows[i].val), sz_errname(rows[i].val));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_lookup),
        cmocka_unit_test(test_distinct),
        cmocka_unit_test(test_unknown),
        cmocka_unit_test(test_static_strings),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
