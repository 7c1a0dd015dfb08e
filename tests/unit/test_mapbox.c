/*
 * test_mapbox: the node's shared current cluster map (node/mapbox.h):
 * get before set, set/get/put, epoch, readers holding a superseded map
 * (memory stays valid until their put, then it is freed -- checked through
 * ASan's poisoning when built with SZ_SANITIZE), and concurrent set/get/put
 * from 4 threads.
 *
 * mapbox.c is built only into the snapnode executable, not into a library
 * the unit tests link, so it is compiled into this test directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clustermap.h"
#include "err.h"
#include "mapbox.h"

#include "mapbox.c" /* found through the node/ include path */

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define HAVE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define HAVE_ASAN 1
#endif
#endif

/* 1 if the memory at p has been freed (ASan builds), -1 if unknown. */
static int is_freed(const void *p)
{
#ifdef HAVE_ASAN
    return __asan_address_is_poisoned(p) ? 1 : 0;
#else
    (void)p;
    return -1;
#endif
}

/* A map with epoch e and n nodes whose fields all encode e, so a reader can
 * check it is looking at one consistent, live map. */
static struct cmap *make_map(uint64_t e, int n)
{
    struct cmap *m = NULL;
    char id[32], ep[64];

    assert_int_equal(cmap_new(e, 1, &m), 0);
    for (int i = 0; i < n; i++) {
        snprintf(id, sizeof(id), "n%d", i);
        snprintf(ep, sizeof(ep), "tcp://e%llu:%d", (unsigned long long)e, i);
        assert_int_equal(cmap_add_node(m, id, "z", ep, CMAP_UP), 0);
        m->nodes[i].blocks = e;
    }
    return m;
}

static int map_consistent(const struct cmap *m)
{
    char ep[64];

    if (m->nnodes == 0)
        return 0;
    for (size_t i = 0; i < m->nnodes; i++) {
        snprintf(ep, sizeof(ep), "tcp://e%llu:%zu", (unsigned long long)m->epoch, i);
        if (m->nodes[i].blocks != m->epoch || strcmp(m->nodes[i].endpoint, ep) != 0)
            return 0;
    }
    return 1;
}

static void test_empty(void **state)
{
    struct mapbox *mb = NULL;

    (void)state;
    assert_int_equal(mapbox_new(&mb), 0);
    assert_non_null(mb);
    assert_null(mapbox_get(mb));
    assert_int_equal(mapbox_epoch(mb), 0);
    mapbox_put(mb, NULL); /* put of "no map" is harmless */
    mapbox_free(mb);
    mapbox_free(NULL);
}

static void test_set_get_put(void **state)
{
    struct mapbox *mb = NULL;
    struct cmap *m = make_map(7, 3), *keep = m;
    const struct cmap *g1, *g2;

    (void)state;
    assert_int_equal(mapbox_new(&mb), 0);
    mapbox_set(mb, &m);
    assert_null(m); /* ownership taken */
    assert_int_equal(mapbox_epoch(mb), 7);
    g1 = mapbox_get(mb);
    g2 = mapbox_get(mb);
    assert_ptr_equal(g1, keep);
    assert_ptr_equal(g2, keep);
    assert_true(map_consistent(g1));
    mapbox_put(mb, g1);
    mapbox_put(mb, g2);
    /* the box's own reference keeps it alive */
    g1 = mapbox_get(mb);
    assert_ptr_equal(g1, keep);
    assert_true(map_consistent(g1));
    assert_int_not_equal(is_freed(g1), 1);
    mapbox_put(mb, g1);
    assert_int_equal(mapbox_epoch(mb), 7);
    mapbox_free(mb); /* frees the current map: ASan's leak check covers it */
}

static void test_replace_unreferenced_frees(void **state)
{
    struct mapbox *mb = NULL;
    struct cmap *m1 = make_map(1, 2), *m2 = make_map(2, 2), *old = m1;
    const struct cmap *g;

    (void)state;
    assert_int_equal(mapbox_new(&mb), 0);
    mapbox_set(mb, &m1);
    g = mapbox_get(mb);
    mapbox_put(mb, g);
    mapbox_set(mb, &m2);
    /* nobody held map 1: it is gone as soon as it is replaced */
    assert_int_not_equal(is_freed(old), 0);
    assert_int_equal(mapbox_epoch(mb), 2);
    g = mapbox_get(mb);
    assert_int_equal(g->epoch, 2);
    mapbox_put(mb, g);
    mapbox_free(mb);
}

static void test_reader_keeps_old_map(void **state)
{
    struct mapbox *mb = NULL;
    struct cmap *m1 = make_map(10, 5), *m2 = make_map(11, 4), *m3 = make_map(12, 3);
    const struct cmap *r1, *r1b, *r2, *cur;

    (void)state;
    assert_int_equal(mapbox_new(&mb), 0);
    mapbox_set(mb, &m1);
    r1 = mapbox_get(mb);  /* two readers of map 10 */
    r1b = mapbox_get(mb);
    mapbox_set(mb, &m2);  /* map 10 superseded while referenced */
    assert_int_equal(mapbox_epoch(mb), 11);
    /* the old map is still valid memory with its old content */
    assert_int_not_equal(is_freed(r1), 1); /* live (or unknown without ASan) */
    assert_int_equal(r1->epoch, 10);
    assert_true(map_consistent(r1));
    r2 = mapbox_get(mb);
    assert_int_equal(r2->epoch, 11);
    mapbox_set(mb, &m3);  /* map 11 superseded too: two old maps alive */
    assert_true(map_consistent(r2));
    assert_true(map_consistent(r1b));

    mapbox_put(mb, r1);
    assert_int_not_equal(is_freed(r1b), 1); /* live (or unknown without ASan) */ /* one reader left */
    assert_true(map_consistent(r1b));
    mapbox_put(mb, r1b);                /* last reader: freed now */
    assert_int_not_equal(is_freed(r1b), 0);
    assert_true(map_consistent(r2));    /* unaffected */
    mapbox_put(mb, r2);
    assert_int_not_equal(is_freed(r2), 0);

    cur = mapbox_get(mb);
    assert_int_equal(cur->epoch, 12);
    assert_true(map_consistent(cur));
    mapbox_put(mb, cur);
    assert_int_not_equal(is_freed(cur), 1); /* live (or unknown without ASan) */
    mapbox_free(mb);
}

/* A reader still holding an old map when the box is freed is a contract
 * violation; here all readers put before free and the maps superseded in
 * between are all released (ASan's leak check at exit covers this). */
static void test_many_generations(void **state)
{
    struct mapbox *mb = NULL;
    const struct cmap *held[50];

    (void)state;
    assert_int_equal(mapbox_new(&mb), 0);
    for (int i = 0; i < 50; i++) {
        struct cmap *m = make_map((uint64_t)i + 1, 1 + i % 4);
        mapbox_set(mb, &m);
        held[i] = mapbox_get(mb);
        assert_int_equal(mapbox_epoch(mb), (uint64_t)i + 1);
    }
    /* release in a scrambled order; every held map stays intact until its
     * own put */
    for (int k = 0; k < 50; k++) {
        int i = (k * 17) % 50;
        assert_int_equal(held[i]->epoch, (uint64_t)i + 1);
        assert_true(map_consistent(held[i]));
        mapbox_put(mb, held[i]);
        if (i != 49)
            assert_int_not_equal(is_freed(held[i]), 0);
    }
    assert_int_equal(mapbox_epoch(mb), 50);
    assert_null(mb->old); /* white box: no superseded map left behind */
    mapbox_free(mb);
}

/* ---- concurrency -------------------------------------------------------- */

#define NTHREADS 4
#define ITERS 4000

struct shared {
    struct mapbox *mb;
    atomic_ullong next_epoch;
    atomic_int bad;
};

static void *worker(void *arg)
{
    struct shared *sh = arg;

    for (int i = 0; i < ITERS; i++) {
        const struct cmap *m, *m2;
        if (i % 8 == 0) {
            uint64_t e = atomic_fetch_add(&sh->next_epoch, 1);
            struct cmap *nm = NULL;
            char id[16], ep[64];
            if (cmap_new(e, 1, &nm) != 0) {
                atomic_fetch_add(&sh->bad, 1);
                continue;
            }
            for (int k = 0; k < 2; k++) {
                snprintf(id, sizeof(id), "n%d", k);
                snprintf(ep, sizeof(ep), "tcp://e%llu:%d", (unsigned long long)e, k);
                cmap_add_node(nm, id, "z", ep, CMAP_UP);
                nm->nodes[k].blocks = e;
            }
            mapbox_set(sh->mb, &nm);
            if (nm != NULL)
                atomic_fetch_add(&sh->bad, 1);
        }
        m = mapbox_get(sh->mb);
        if (m == NULL) {
            atomic_fetch_add(&sh->bad, 1);
            continue;
        }
        m2 = mapbox_get(sh->mb); /* nested reference, maybe of a newer map */
        if (!map_consistent(m) || (m2 != NULL && !map_consistent(m2)))
            atomic_fetch_add(&sh->bad, 1);
        if (mapbox_epoch(sh->mb) == 0)
            atomic_fetch_add(&sh->bad, 1);
        mapbox_put(sh->mb, m2);
        if (!map_consistent(m)) /* still ours after the other put */
            atomic_fetch_add(&sh->bad, 1);
        mapbox_put(sh->mb, m);
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    struct shared sh;
    pthread_t th[NTHREADS];
    struct cmap *first = make_map(1, 2);
    const struct cmap *last;

    (void)state;
    memset(&sh, 0, sizeof(sh));
    atomic_init(&sh.next_epoch, 2);
    atomic_init(&sh.bad, 0);
    assert_int_equal(mapbox_new(&sh.mb), 0);
    mapbox_set(sh.mb, &first);
    for (int i = 0; i < NTHREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, worker, &sh), 0);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&sh.bad), 0);
    assert_int_equal(atomic_load(&sh.next_epoch), 2 + NTHREADS * (ITERS / 8));
    last = mapbox_get(sh.mb);
    assert_non_null(last);
    assert_true(map_consistent(last));
    assert_int_equal(mapbox_epoch(sh.mb), last->epoch);
    mapbox_put(sh.mb, last);
    /* white box: every superseded map is already gone, and the box holds
     * exactly its own reference to the current one */
    assert_null(sh.mb->old);
    assert_int_equal(sh.mb->cur->refs, 1);
    mapbox_free(sh.mb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_set_get_put),
        cmocka_unit_test(test_replace_unreferenced_frees),
        cmocka_unit_test(test_reader_keeps_old_map),
        cmocka_unit_test(test_many_generations),
        cmocka_unit_test(test_concurrent),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
