/*
 * test_clustermap: unit tests of the cluster map and of placement (zone
 * spread, eligibility, determinism, balance, movement, pinned vectors).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clustermap.h"
#include "err.h"

#define NBLOCKS 100000

/* ---- helpers ------------------------------------------------------------ */

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

/* A map of nzones zones with sizes[z] nodes each, named "n<z>-<k>" and
 * "z<z>", all UP. */
static struct cmap *make_map(uint32_t replicas, size_t nzones, const size_t *sizes)
{
    struct cmap *m = NULL;
    char id[CMAP_NAME_MAX], zone[CMAP_NAME_MAX];

    assert_int_equal(cmap_new(7, replicas, &m), 0);
    for (size_t z = 0; z < nzones; z++) {
        for (size_t k = 0; k < sizes[z]; k++) {
            snprintf(id, sizeof(id), "n%zu-%zu", z, k);
            snprintf(zone, sizeof(zone), "z%zu", z);
            assert_int_equal(cmap_add_node(m, id, zone, "tcp://127.0.0.1:7000", CMAP_UP), 0);
        }
    }
    return m;
}

static size_t count_distinct_zones(const struct cmap *m, const size_t *set, size_t n)
{
    size_t d = 0;

    for (size_t i = 0; i < n; i++) {
        size_t j = 0;

        while (j < i && strcmp(m->nodes[set[j]].zone, m->nodes[set[i]].zone) != 0)
            j++;
        d += j == i;
    }
    return d;
}

static size_t count_distinct(const size_t *set, size_t n)
{
    size_t d = 0;

    for (size_t i = 0; i < n; i++) {
        size_t j = 0;

        while (j < i && set[j] != set[i])
            j++;
        d += j == i;
    }
    return d;
}

static int in_set(const size_t *set, size_t n, size_t x)
{
    for (size_t i = 0; i < n; i++)
        if (set[i] == x)
            return 1;
    return 0;
}

/* Over NBLOCKS ids: every set has want entries on nz distinct zones. */
static void check_spread(const struct cmap *m, size_t want, size_t nz)
{
    uint64_t seed = 1;
    size_t out[CMAP_MAX_REPLICAS];
    uint8_t id[32];

    for (int b = 0; b < NBLOCKS; b++) {
        random_id(&seed, id);
        assert_int_equal(cmap_place(m, id, out, CMAP_MAX_REPLICAS), want);
        assert_int_equal(count_distinct(out, want), want);
        assert_int_equal(count_distinct_zones(m, out, want), nz);
    }
}

/* ---- map management ----------------------------------------------------- */

static void test_new_free(void **state)
{
    struct cmap *m = NULL;

    (void)state;
    assert_int_equal(cmap_new(42, 3, &m), 0);
    assert_non_null(m);
    assert_int_equal(m->epoch, 42);
    assert_int_equal(m->replicas, 3);
    assert_int_equal(m->nnodes, 0);
    assert_int_equal(cmap_nzones(m), 0);
    cmap_free(m);
    cmap_free(NULL);
    assert_int_equal(cmap_new(1, 3, NULL), SZ_EINVAL);
    assert_int_equal(cmap_new(1, 0, &m), SZ_EINVAL);
    assert_null(m);
    assert_int_equal(cmap_new(1, CMAP_MAX_REPLICAS + 1, &m), SZ_EINVAL);
    assert_int_equal(cmap_new(1, CMAP_MAX_REPLICAS, &m), 0);
    cmap_free(m);
}

static void test_add_find(void **state)
{
    struct cmap *m = NULL;

    (void)state;
    assert_int_equal(cmap_new(1, 2, &m), 0);
    assert_int_equal(cmap_add_node(m, "a", "z1", "tcp://a:1", CMAP_UP), 0);
    assert_int_equal(cmap_add_node(m, "b", "z2", "tcp://b:1", CMAP_SUSPECT), 0);
    assert_int_equal(cmap_add_node(m, "c", "z1", "tcp://c:1", CMAP_DOWN), 0);
    assert_int_equal(m->nnodes, 3);
    assert_int_equal(cmap_find(m, "a"), 0);
    assert_int_equal(cmap_find(m, "b"), 1);
    assert_int_equal(cmap_find(m, "c"), 2);
    assert_int_equal(cmap_find(m, "d"), -1);
    assert_int_equal(cmap_find(m, ""), -1);
    assert_int_equal(cmap_find(m, NULL), -1);
    assert_int_equal(cmap_find(NULL, "a"), -1);
    assert_string_equal(m->nodes[1].id, "b");
    assert_string_equal(m->nodes[1].zone, "z2");
    assert_string_equal(m->nodes[1].endpoint, "tcp://b:1");
    assert_int_equal(m->nodes[1].state, CMAP_SUSPECT);
    assert_int_equal(m->nodes[0].blocks, 0);
    assert_true(m->nodes[0].id_hash != m->nodes[1].id_hash);
    assert_true(m->nodes[0].zone_hash == m->nodes[2].zone_hash);
    assert_true(m->nodes[0].zone_hash != m->nodes[1].zone_hash);
    assert_int_equal(cmap_nzones(m), 2);
    assert_int_equal(cmap_nzones(NULL), 0);
    cmap_free(m);
}

static void test_add_invalid(void **state)
{
    char big[CMAP_ENDPOINT_MAX + 1];
    struct cmap *m = NULL;

    (void)state;
    assert_int_equal(cmap_new(1, 3, &m), 0);
    assert_int_equal(cmap_add_node(NULL, "a", "z", "e", CMAP_UP), SZ_EINVAL);
    assert_int_equal(cmap_add_node(m, NULL, "z", "e", CMAP_UP), SZ_EINVAL);
    assert_int_equal(cmap_add_node(m, "", "z", "e", CMAP_UP), SZ_EINVAL);
    assert_int_equal(cmap_add_node(m, "a", NULL, "e", CMAP_UP), SZ_EINVAL);
    assert_int_equal(cmap_add_node(m, "a", "", "e", CMAP_UP), SZ_EINVAL);
    assert_int_equal(cmap_add_node(m, "a", "z", NULL, CMAP_UP), SZ_EINVAL);
    assert_int_equal(cmap_add_node(m, "a", "z", "", CMAP_UP), SZ_EINVAL);
    assert_int_equal(cmap_add_node(m, "a", "z", "e", -1), SZ_EINVAL);
    assert_int_equal(cmap_add_node(m, "a", "z", "e", CMAP_DRAINING + 1), SZ_EINVAL);

    memset(big, 'x', sizeof(big));
    big[CMAP_NAME_MAX] = '\0'; /* 64 chars: one too many */
    assert_int_equal(cmap_add_node(m, big, "z", "e", CMAP_UP), SZ_EINVAL);
    assert_int_equal(cmap_add_node(m, "a", big, "e", CMAP_UP), SZ_EINVAL);
    big[CMAP_NAME_MAX - 1] = '\0'; /* 63: fits */
    assert_int_equal(cmap_add_node(m, big, big, "e", CMAP_UP), 0);
    memset(big, 'y', sizeof(big));
    big[CMAP_ENDPOINT_MAX] = '\0';
    assert_int_equal(cmap_add_node(m, "b", "z", big, CMAP_UP), SZ_EINVAL);
    big[CMAP_ENDPOINT_MAX - 1] = '\0';
    assert_int_equal(cmap_add_node(m, "b", "z", big, CMAP_UP), 0);
    assert_string_equal(m->nodes[1].endpoint, big);

    assert_int_equal(cmap_add_node(m, "b", "other", "e", CMAP_UP), SZ_EEXIST);
    assert_int_equal(m->nnodes, 2);
    assert_int_equal(cmap_nzones(m), 2);
    cmap_free(m);
}

static void test_max_nodes(void **state)
{
    struct cmap *m = NULL;
    char id[CMAP_NAME_MAX], zone[CMAP_NAME_MAX];
    size_t out[CMAP_MAX_REPLICAS];
    uint8_t bid[32] = {1, 2, 3};

    (void)state;
    assert_int_equal(cmap_new(1, 3, &m), 0);
    for (int i = 0; i < CMAP_MAX_NODES; i++) {
        snprintf(id, sizeof(id), "node%d", i);
        snprintf(zone, sizeof(zone), "zone%d", i % 16);
        assert_int_equal(cmap_add_node(m, id, zone, "e", CMAP_UP), 0);
    }
    assert_int_equal(cmap_add_node(m, "one-more", "zone0", "e", CMAP_UP), SZ_ETOOBIG);
    assert_int_equal(m->nnodes, CMAP_MAX_NODES);
    assert_int_equal(cmap_nzones(m), 16);
    assert_int_equal(cmap_place(m, bid, out, CMAP_MAX_REPLICAS), 3);
    assert_int_equal(count_distinct_zones(m, out, 3), 3);
    cmap_free(m);
}

static void test_dup(void **state)
{
    const size_t sizes[] = {3, 1, 2, 4};
    struct cmap *m = make_map(3, 4, sizes), *d = NULL;
    size_t a[CMAP_MAX_REPLICAS], b[CMAP_MAX_REPLICAS];
    uint64_t seed = 99;
    uint8_t id[32];

    (void)state;
    m->nodes[2].blocks = 11;
    m->nodes[2].stored_bytes = 12345;
    m->nodes[4].state = CMAP_DOWN;
    assert_int_equal(cmap_dup(m, &d), 0);
    assert_ptr_not_equal(d->nodes, m->nodes);
    assert_int_equal(d->epoch, m->epoch);
    assert_int_equal(d->replicas, m->replicas);
    assert_int_equal(d->nnodes, m->nnodes);
    assert_memory_equal(d->nodes, m->nodes, m->nnodes * sizeof(*m->nodes));
    assert_int_equal(cmap_nzones(d), 4);
    for (int i = 0; i < 1000; i++) {
        random_id(&seed, id);
        assert_int_equal(cmap_place(m, id, a, 8), 3);
        assert_int_equal(cmap_place(d, id, b, 8), 3);
        assert_memory_equal(a, b, 3 * sizeof(*a));
    }
    /* independent copies */
    assert_int_equal(cmap_add_node(d, "extra", "z9", "e", CMAP_UP), 0);
    d->nodes[0].state = CMAP_DOWN;
    assert_int_equal(m->nnodes, 10);
    assert_int_equal(m->nodes[0].state, CMAP_UP);
    assert_int_equal(cmap_nzones(m), 4);
    assert_int_equal(cmap_nzones(d), 5);
    cmap_free(d);

    assert_int_equal(cmap_dup(m, NULL), SZ_EINVAL);
    assert_int_equal(cmap_dup(NULL, &d), SZ_EINVAL);
    assert_null(d);
    cmap_free(m);

    assert_int_equal(cmap_new(5, 2, &m), 0); /* empty map */
    assert_int_equal(cmap_dup(m, &d), 0);
    assert_int_equal(d->nnodes, 0);
    assert_int_equal(cmap_add_node(d, "a", "z", "e", CMAP_UP), 0);
    assert_int_equal(cmap_place(d, id, a, 8), 1);
    cmap_free(d);
    cmap_free(m);
}

static void test_state_name(void **state)
{
    (void)state;
    assert_string_equal(cmap_state_name(CMAP_UP), "up");
    assert_string_equal(cmap_state_name(CMAP_SUSPECT), "suspect");
    assert_string_equal(cmap_state_name(CMAP_DOWN), "down");
    assert_string_equal(cmap_state_name(CMAP_DRAINING), "draining");
    assert_non_null(cmap_state_name(17));
}

/* ---- placement ---------------------------------------------------------- */

static void test_place_args(void **state)
{
    const size_t sizes[] = {2, 2, 2};
    struct cmap *m = make_map(3, 3, sizes), *e = NULL;
    size_t full[CMAP_MAX_REPLICAS], part[CMAP_MAX_REPLICAS];
    uint8_t id[32] = {9, 8, 7, 6, 5, 4, 3, 2, 1};

    (void)state;
    assert_int_equal(cmap_place(NULL, id, full, 8), 0);
    assert_int_equal(cmap_place(m, NULL, full, 8), 0);
    assert_int_equal(cmap_place(m, id, NULL, 8), 0);
    assert_int_equal(cmap_place(m, id, full, 0), 0);
    assert_int_equal(cmap_place(m, id, full, 8), 3);
    assert_int_equal(cmap_place(m, id, part, 2), 2);
    assert_memory_equal(full, part, 2 * sizeof(*full));
    assert_int_equal(cmap_place(m, id, part, 1), 1);
    assert_int_equal(part[0], full[0]);
    m->replicas = 2; /* replicas caps the count too */
    assert_int_equal(cmap_place(m, id, part, 8), 2);
    assert_memory_equal(full, part, 2 * sizeof(*full));
    assert_int_equal(cmap_new(1, 3, &e), 0);
    assert_int_equal(cmap_place(e, id, full, 8), 0);
    cmap_free(e);
    cmap_free(m);
}

static void test_distinct_zones(void **state)
{
    const size_t three_by_two[] = {2, 2, 2};
    const size_t five[] = {1, 2, 3, 4, 5};
    struct cmap *m;

    (void)state;
    m = make_map(3, 3, three_by_two);
    check_spread(m, 3, 3);
    cmap_free(m);
    m = make_map(3, 5, five);
    check_spread(m, 3, 3);
    cmap_free(m);
    m = make_map(5, 5, five); /* R = zones */
    check_spread(m, 5, 5);
    cmap_free(m);
}

static void test_fewer_zones(void **state)
{
    const size_t two_by_three[] = {3, 3};
    const size_t lopsided[] = {1, 5};
    const size_t one[] = {2};
    uint64_t seed = 5;
    size_t out[CMAP_MAX_REPLICAS];
    uint8_t id[32];
    struct cmap *m;

    (void)state;
    m = make_map(3, 2, two_by_three);
    check_spread(m, 3, 2);
    cmap_free(m);

    /* zone z0 has a single node: every set takes it and two of z1 */
    m = make_map(3, 2, lopsided);
    check_spread(m, 3, 2);
    for (int b = 0; b < 1000; b++) {
        random_id(&seed, id);
        assert_int_equal(cmap_place(m, id, out, 8), 3);
        assert_true(in_set(out, 3, 0));
    }
    cmap_free(m);

    /* fewer nodes than replicas: all of them */
    m = make_map(3, 1, one);
    check_spread(m, 2, 1);
    cmap_free(m);
}

static void test_ineligible(void **state)
{
    const size_t sizes[] = {3, 3, 3, 3};
    struct cmap *m = make_map(3, 4, sizes), *ref;
    size_t out[CMAP_MAX_REPLICAS], ro[CMAP_MAX_REPLICAS];
    uint64_t seed = 77;
    uint8_t id[32];

    (void)state;
    /* in-place state changes are honoured */
    m->nodes[0].state = CMAP_DOWN;
    m->nodes[4].state = CMAP_DRAINING;
    m->nodes[9].state = CMAP_DOWN;
    m->nodes[10].state = CMAP_DOWN;
    m->nodes[11].state = CMAP_DOWN; /* zone z3 entirely out */
    m->nodes[7].state = CMAP_SUSPECT;
    ref = make_map(3, 4, sizes); /* same map, but node 7 UP */
    for (size_t i = 0; i < ref->nnodes; i++)
        if (i != 7)
            ref->nodes[i].state = m->nodes[i].state;
    for (int b = 0; b < NBLOCKS; b++) {
        size_t n;

        random_id(&seed, id);
        n = cmap_place(m, id, out, 8);
        assert_int_equal(n, 3);
        assert_int_equal(count_distinct_zones(m, out, n), 3);
        for (size_t k = 0; k < n; k++) {
            int st = m->nodes[out[k]].state;

            assert_true(st == CMAP_UP || st == CMAP_SUSPECT);
        }
        assert_int_equal(cmap_place(ref, id, ro, 8), 3);
        assert_memory_equal(out, ro, 3 * sizeof(*out)); /* SUSPECT keeps its place */
    }
    /* everything down: nothing */
    for (size_t i = 0; i < m->nnodes; i++)
        m->nodes[i].state = CMAP_DOWN;
    assert_int_equal(cmap_place(m, id, out, 8), 0);
    /* one node left */
    m->nodes[5].state = CMAP_UP;
    assert_int_equal(cmap_place(m, id, out, 8), 1);
    assert_int_equal(out[0], 5);
    cmap_free(ref);
    cmap_free(m);
}

static void test_order_independent(void **state)
{
    static const char *ids[] = {"alpha", "bravo", "charlie", "delta", "echo",
                                "foxtrot", "golf", "hotel", "india"};
    static const char *zones[] = {"r1", "r2", "r3", "r1", "r2", "r3", "r4", "r4", "r1"};
    static const int order[] = {6, 2, 8, 0, 4, 7, 1, 5, 3};
    struct cmap *a = NULL, *b = NULL;
    size_t oa[CMAP_MAX_REPLICAS], ob[CMAP_MAX_REPLICAS];
    uint64_t seed = 3;
    uint8_t id[32];

    (void)state;
    assert_int_equal(cmap_new(1, 3, &a), 0);
    assert_int_equal(cmap_new(1, 3, &b), 0);
    for (int i = 0; i < 9; i++) {
        assert_int_equal(cmap_add_node(a, ids[i], zones[i], "e", CMAP_UP), 0);
        assert_int_equal(cmap_add_node(b, ids[order[i]], zones[order[i]], "e", CMAP_UP), 0);
    }
    for (int blk = 0; blk < NBLOCKS / 4; blk++) {
        size_t na, nb;

        random_id(&seed, id);
        na = cmap_place(a, id, oa, 8);
        nb = cmap_place(b, id, ob, 8);
        assert_int_equal(na, 3);
        assert_int_equal(nb, na);
        for (size_t k = 0; k < na; k++)
            assert_string_equal(a->nodes[oa[k]].id, b->nodes[ob[k]].id);
    }
    cmap_free(a);
    cmap_free(b);
}

/* Pinned vectors, computed by an independent reference implementation of
 * the algorithm (double-precision log): a change here breaks compatibility
 * between clients, nodes and the coordinator. */
static void test_golden(void **state)
{
    static const char *want[8][3] = {
        {"node-06", "node-00", "node-03"}, {"node-08", "node-01", "node-06"},
        {"node-09", "node-04", "node-03"}, {"node-00", "node-02", "node-09"},
        {"node-08", "node-09", "node-02"}, {"node-09", "node-04", "node-06"},
        {"node-08", "node-09", "node-02"}, {"node-07", "node-09", "node-08"}};
    static const char *degraded[8][3] = {
        {"node-08", "node-05", "node-04"}, {"node-08", "node-05", "node-04"},
        {"node-05", "node-04", "node-08"}, {"node-04", "node-05", "node-08"},
        {"node-08", "node-05", "node-04"}, {"node-05", "node-04", "node-08"},
        {"node-08", "node-05", "node-04"}, {"node-08", "node-05", "node-04"}};
    static const int down[] = {0, 1, 2, 3, 6, 7, 9};
    struct cmap *m = NULL;
    char name[CMAP_NAME_MAX], zone[CMAP_NAME_MAX];
    size_t out[CMAP_MAX_REPLICAS];
    uint8_t id[8][32];

    (void)state;
    assert_int_equal(cmap_new(1, 3, &m), 0);
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "node-%02d", i);
        snprintf(zone, sizeof(zone), "zone-%c", "abcd"[i % 4]);
        assert_int_equal(cmap_add_node(m, name, zone, "tcp://h:7000", CMAP_UP), 0);
    }
    for (int k = 0; k < 8; k++)
        for (int j = 0; j < 32; j++)
            id[k][j] = (uint8_t)(k * 37 + j * 11 + 5);
    for (int k = 0; k < 8; k++) {
        assert_int_equal(cmap_place(m, id[k], out, 8), 3);
        for (int r = 0; r < 3; r++)
            assert_string_equal(m->nodes[out[r]].id, want[k][r]);
    }
    for (size_t i = 0; i < sizeof(down) / sizeof(down[0]); i++)
        m->nodes[down[i]].state = CMAP_DOWN;
    for (int k = 0; k < 8; k++) {
        assert_int_equal(cmap_place(m, id[k], out, 8), 3);
        for (int r = 0; r < 3; r++)
            assert_string_equal(m->nodes[out[r]].id, degraded[k][r]);
    }
    cmap_free(m);
}

static void check_within(const uint64_t *counts, size_t n, double mean, double tol)
{
    for (size_t i = 0; i < n; i++) {
        double c = (double)counts[i];

        if (c < mean * (1 - tol) || c > mean * (1 + tol))
            fail_msg("node %zu: %.0f, mean %.1f, tolerance %.2f", i, c, mean, tol);
    }
}

static void test_balance(void **state)
{
    const size_t three_by_two[] = {2, 2, 2};
    const size_t uneven[] = {1, 2, 3};
    uint64_t reps[6] = {0}, prim[6] = {0}, seed = 11;
    size_t out[CMAP_MAX_REPLICAS];
    uint8_t id[32];
    struct cmap *m;

    (void)state;
    m = make_map(3, 3, three_by_two);
    for (int b = 0; b < NBLOCKS; b++) {
        random_id(&seed, id);
        assert_int_equal(cmap_place(m, id, out, 8), 3);
        prim[out[0]]++;
        for (int k = 0; k < 3; k++)
            reps[out[k]]++;
    }
    check_within(reps, 6, NBLOCKS * 3 / 6.0, 0.03);
    check_within(prim, 6, NBLOCKS / 6.0, 0.05);
    cmap_free(m);

    /* zones weighted by their node count: 1, 2 and 3 nodes, R = 1 */
    memset(prim, 0, sizeof(prim));
    m = make_map(1, 3, uneven);
    for (int b = 0; b < NBLOCKS; b++) {
        random_id(&seed, id);
        assert_int_equal(cmap_place(m, id, out, 8), 1);
        prim[out[0]]++;
    }
    check_within(prim, 6, NBLOCKS / 6.0, 0.05);
    cmap_free(m);
}

struct movement {
    double primaries, sets;
    int foreign; /* changed sets without the new node */
};

/* Place NBLOCKS ids on a and on b (a plus one node, index a->nnodes). */
static struct movement measure_add(const struct cmap *a, const struct cmap *b)
{
    struct movement mv = {0, 0, 0};
    size_t oa[CMAP_MAX_REPLICAS], ob[CMAP_MAX_REPLICAS], added = a->nnodes;
    uint64_t seed = 2024, prim = 0, sets = 0;
    uint8_t id[32];

    for (int blk = 0; blk < NBLOCKS; blk++) {
        size_t na, nb, fresh = 0;

        random_id(&seed, id);
        na = cmap_place(a, id, oa, 8);
        nb = cmap_place(b, id, ob, 8);
        assert_int_equal(na, nb);
        prim += oa[0] != ob[0];
        for (size_t k = 0; k < nb; k++)
            fresh += !in_set(oa, na, ob[k]);
        sets += fresh > 0;
        mv.foreign += fresh > 0 && !in_set(ob, nb, added);
    }
    mv.primaries = (double)prim / NBLOCKS;
    mv.sets = (double)sets / NBLOCKS;
    return mv;
}

static void test_add_movement(void **state)
{
    const size_t sizes[] = {2, 2, 2};
    struct cmap *base = make_map(3, 3, sizes), *grown = NULL;
    struct movement mv;

    (void)state;
    /* 7th node in an existing zone: 1/3 of the sets gain it (it is z0's
     * best node for 1/3 of the blocks); primaries move ~0.21 (1/7 to the
     * new node plus z0's weight pulling primaries in from z1 and z2) */
    assert_int_equal(cmap_dup(base, &grown), 0);
    assert_int_equal(cmap_add_node(grown, "n0-new", "z0", "e", CMAP_UP), 0);
    mv = measure_add(base, grown);
    print_message("add to zone: primaries %.4f, sets %.4f\n", mv.primaries, mv.sets);
    assert_true(mv.primaries >= 0.08 && mv.primaries <= 0.25);
    assert_true(mv.sets >= 0.30 && mv.sets <= 0.37);
    assert_int_equal(mv.foreign, 0);
    cmap_free(grown);

    /* 7th node in a new zone: exactly the blocks it wins move (1/7 of the
     * primaries); it enters the top 3 of 4 zones for 1 - 16/35 of them */
    assert_int_equal(cmap_dup(base, &grown), 0);
    assert_int_equal(cmap_add_node(grown, "n3-new", "z3", "e", CMAP_UP), 0);
    mv = measure_add(base, grown);
    print_message("add new zone: primaries %.4f, sets %.4f\n", mv.primaries, mv.sets);
    assert_true(mv.primaries >= 0.08 && mv.primaries <= 0.25);
    assert_true(mv.primaries >= 1 / 7.0 - 0.01 && mv.primaries <= 1 / 7.0 + 0.01);
    assert_true(mv.sets >= 19 / 35.0 - 0.02 && mv.sets <= 19 / 35.0 + 0.02);
    assert_int_equal(mv.foreign, 0);
    cmap_free(grown);
    cmap_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_free),
        cmocka_unit_test(test_add_find),
        cmocka_unit_test(test_add_invalid),
        cmocka_unit_test(test_max_nodes),
        cmocka_unit_test(test_dup),
        cmocka_unit_test(test_state_name),
        cmocka_unit_test(test_place_args),
        cmocka_unit_test(test_distinct_zones),
        cmocka_unit_test(test_fewer_zones),
        cmocka_unit_test(test_ineligible),
        cmocka_unit_test(test_order_independent),
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_balance),
        cmocka_unit_test(test_add_movement),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
