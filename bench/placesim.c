/*
 * placesim: placement simulation for the cluster map (proto/clustermap).
 *
 * Builds a map of N nodes spread round-robin over Z zones, places B block
 * ids (from a fixed-seed splitmix64 stream, so every run and machine sees
 * the same ids) and reports:
 *   - load balance of replicas (and primaries) per node;
 *   - replica sets that do not span min(R, Z) distinct zones (must be 0);
 *   - data movement when one node is added (to zone 0) and when one node is
 *     removed (node 0), against the ideal: a share R/N of the blocks gains
 *     or loses a replica (1/N of the replica slots) and 1/N of the primaries
 *     move (N = node count of the larger map);
 *   - elapsed time and placements per second (3 placements per block).
 * A table for humans, then one line of JSON with every figure.
 *
 *   placesim [--nodes N] [--zones Z] [--blocks B] [--replicas R] [--threads T]
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clustermap.h"
#include "err.h"

#define SEED 0x5eedb10cull
#define MAX_THREADS 64

struct opts {
    size_t nodes, zones, blocks, replicas, threads;
};

/* The three maps and what a worker needs to compare placements. */
struct sim {
    const struct opts *o;
    struct cmap *base, *add, *rem;
    size_t victim;          /* base index of the removed node */
    const size_t *zone_of;  /* zone number of each base node */
};

/* Movement between the base placement and another map's. */
struct moves {
    uint64_t sets;       /* blocks whose replica set changed */
    uint64_t slots;      /* replicas placed on a node not in the old set */
    uint64_t primaries;  /* blocks whose first replica changed */
};

struct worker {
    const struct sim *sim;
    size_t from, to;     /* block numbers */
    uint64_t *replicas;  /* per base node */
    uint64_t *primaries; /* per base node */
    uint64_t zone_violations, short_sets;
    struct moves add, rem;
};

struct balance {
    double mean, max, min, stddev;
};

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Block number b's id: a pure function of b, whatever the thread split. */
static void block_id(uint64_t b, uint8_t id[32])
{
    for (int k = 0; k < 4; k++) {
        uint64_t v = splitmix64(SEED ^ (b * 4 + (uint64_t)k) * 0xd1342543de82ef95ull);

        for (int j = 0; j < 8; j++)
            id[8 * k + j] = (uint8_t)(v >> (8 * j));
    }
}

static int in_set(const size_t *set, size_t n, size_t x)
{
    for (size_t i = 0; i < n; i++)
        if (set[i] == x)
            return 1;
    return 0;
}

/* Compare placement b (nb) with the base placement a (na). */
static void count_moves(const size_t *a, size_t na, const size_t *b, size_t nb,
                        struct moves *m)
{
    size_t fresh = 0;

    for (size_t i = 0; i < nb; i++)
        fresh += !in_set(a, na, b[i]);
    m->slots += fresh;
    m->sets += fresh > 0 || na != nb;
    m->primaries += na == 0 || nb == 0 || a[0] != b[0];
}

static size_t distinct_zones(const struct sim *s, const size_t *set, size_t n)
{
    size_t d = 0;

    for (size_t i = 0; i < n; i++) {
        size_t j = 0;

        while (j < i && s->zone_of[set[j]] != s->zone_of[set[i]])
            j++;
        d += j == i;
    }
    return d;
}

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    const struct sim *s = w->sim;
    size_t r = s->o->replicas;
    size_t want_zones = r < s->o->zones ? r : s->o->zones;
    size_t a[CMAP_MAX_REPLICAS], b[CMAP_MAX_REPLICAS];
    uint8_t id[32];

    for (size_t blk = w->from; blk < w->to; blk++) {
        size_t na, nb;

        block_id(blk, id);
        na = cmap_place(s->base, id, a, CMAP_MAX_REPLICAS);
        w->short_sets += na != r;
        w->zone_violations += distinct_zones(s, a, na) != want_zones;
        for (size_t i = 0; i < na; i++)
            w->replicas[a[i]]++;
        if (na > 0)
            w->primaries[a[0]]++;
        nb = cmap_place(s->add, id, b, CMAP_MAX_REPLICAS);
        count_moves(a, na, b, nb, &w->add);
        nb = cmap_place(s->rem, id, b, CMAP_MAX_REPLICAS);
        for (size_t i = 0; i < nb; i++)
            b[i] += b[i] >= s->victim; /* back to base indices */
        count_moves(a, na, b, nb, &w->rem);
    }
    return NULL;
}

static struct balance balance_of(const uint64_t *v, size_t n)
{
    struct balance bl = {0, 0, INFINITY, 0};
    double var = 0;

    for (size_t i = 0; i < n; i++) {
        bl.mean += (double)v[i];
        bl.max = fmax(bl.max, (double)v[i]);
        bl.min = fmin(bl.min, (double)v[i]);
    }
    bl.mean /= (double)n;
    for (size_t i = 0; i < n; i++)
        var += ((double)v[i] - bl.mean) * ((double)v[i] - bl.mean);
    bl.stddev = sqrt(var / (double)n);
    return bl;
}

/* ---- setup -------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: placesim [--nodes N] [--zones Z] [--blocks B] [--replicas R] "
               "[--threads T]\n"
               "defaults: 1000 nodes, 10 zones, 10000000 blocks, 3 replicas, 2 threads\n");
}

static int parse_size(const char *s, size_t *out)
{
    char *end;
    unsigned long long v;

    if (s == NULL || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > SIZE_MAX)
        return -1;
    *out = (size_t)v;
    return 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){1000, 10, 10000000, 3, 2};
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        size_t *dst = !strcmp(a, "--nodes")      ? &o->nodes
                      : !strcmp(a, "--zones")    ? &o->zones
                      : !strcmp(a, "--blocks")   ? &o->blocks
                      : !strcmp(a, "--replicas") ? &o->replicas
                      : !strcmp(a, "--threads")  ? &o->threads
                                                 : NULL;

        if (dst == NULL || parse_size(v, dst) != 0)
            return -1;
    }
    if (o->nodes < 2 || o->nodes >= CMAP_MAX_NODES || o->zones < 1 || o->zones > o->nodes ||
        o->blocks < 1 || o->replicas < 1 || o->replicas > CMAP_MAX_REPLICAS ||
        o->threads < 1 || o->threads > MAX_THREADS)
        return -1;
    return 0;
}

static void node_name(char *buf, size_t len, size_t i)
{
    snprintf(buf, len, "node-%04zu", i);
}

static void zone_name(char *buf, size_t len, size_t z)
{
    snprintf(buf, len, "zone-%02zu", z);
}

/* Base map: node i in zone i % Z.  Skip node skip (SIZE_MAX: none). */
static int build_map(const struct opts *o, size_t skip, struct cmap **out)
{
    char id[CMAP_NAME_MAX], zone[CMAP_NAME_MAX], ep[CMAP_ENDPOINT_MAX];
    int rc = cmap_new(1, (uint32_t)o->replicas, out);

    for (size_t i = 0; rc == 0 && i < o->nodes; i++) {
        if (i == skip)
            continue;
        node_name(id, sizeof(id), i);
        zone_name(zone, sizeof(zone), i % o->zones);
        snprintf(ep, sizeof(ep), "tcp://10.0.%zu.%zu:7100", i / 250, i % 250);
        rc = cmap_add_node(*out, id, zone, ep, CMAP_UP);
    }
    return rc;
}

static int build_sim(const struct opts *o, struct sim *s, size_t *zone_of)
{
    char zone[CMAP_NAME_MAX];
    int rc;

    s->o = o;
    s->victim = 0;
    s->zone_of = zone_of;
    for (size_t i = 0; i < o->nodes; i++)
        zone_of[i] = i % o->zones;
    if ((rc = build_map(o, SIZE_MAX, &s->base)) != 0)
        return rc;
    if ((rc = cmap_dup(s->base, &s->add)) != 0)
        return rc;
    zone_name(zone, sizeof(zone), 0);
    if ((rc = cmap_add_node(s->add, "node-added", zone, "tcp://10.0.99.1:7100", CMAP_UP)) != 0)
        return rc;
    return build_map(o, s->victim, &s->rem);
}

/* ---- run and report ----------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_workers(const struct sim *s, struct worker *w, size_t nt)
{
    pthread_t tid[MAX_THREADS];
    size_t n = s->o->nodes;

    for (size_t t = 0; t < nt; t++) {
        w[t] = (struct worker){.sim = s};
        w[t].from = s->o->blocks * t / nt;
        w[t].to = s->o->blocks * (t + 1) / nt;
        w[t].replicas = calloc(n, sizeof(uint64_t));
        w[t].primaries = calloc(n, sizeof(uint64_t));
        if (w[t].replicas == NULL || w[t].primaries == NULL)
            return SZ_ENOMEM;
    }
    for (size_t t = 0; t < nt; t++)
        if (pthread_create(&tid[t], NULL, worker_run, &w[t]) != 0)
            return SZ_EINTERNAL; /* exits: started threads die with us */
    for (size_t t = 0; t < nt; t++)
        pthread_join(tid[t], NULL);
    return 0;
}

/* Fold workers 1.. into worker 0. */
static void merge(struct worker *w, size_t nt, size_t n)
{
    for (size_t t = 1; t < nt; t++) {
        for (size_t i = 0; i < n; i++) {
            w[0].replicas[i] += w[t].replicas[i];
            w[0].primaries[i] += w[t].primaries[i];
        }
        w[0].zone_violations += w[t].zone_violations;
        w[0].short_sets += w[t].short_sets;
        w[0].add.sets += w[t].add.sets;
        w[0].add.slots += w[t].add.slots;
        w[0].add.primaries += w[t].add.primaries;
        w[0].rem.sets += w[t].rem.sets;
        w[0].rem.slots += w[t].rem.slots;
        w[0].rem.primaries += w[t].rem.primaries;
    }
}

/* Shares of one move experiment, and the ideal for a map of n nodes. */
struct share {
    double sets, slots, primaries, ideal_sets, ideal_slots;
};

static struct share share_of(const struct moves *m, const struct opts *o, size_t n)
{
    double b = (double)o->blocks, r = (double)o->replicas;

    return (struct share){(double)m->sets / b, (double)m->slots / (b * r),
                          (double)m->primaries / b, r / (double)n, 1.0 / (double)n};
}

static void print_balance(const char *what, const struct balance *b)
{
    printf("  %-10s mean %12.1f   max/mean %.4f   min/mean %.4f   stddev/mean %.4f   "
           "(noise %.4f)\n",
           what, b->mean, b->max / b->mean, b->min / b->mean, b->stddev / b->mean,
           1.0 / sqrt(b->mean));
}

static void print_share(const char *what, const struct share *s)
{
    printf("  %-14s %10.6f %10.6f %6.2fx   %10.6f %10.6f %6.2fx   %10.6f %6.2fx\n", what, s->sets,
           s->ideal_sets, s->sets / s->ideal_sets, s->slots, s->ideal_slots,
           s->slots / s->ideal_slots, s->primaries, s->primaries / s->ideal_slots);
}

static void json_balance(const char *key, const struct balance *b)
{
    printf("\"%s\":{\"mean\":%.3f,\"max_over_mean\":%.6f,\"min_over_mean\":%.6f,"
           "\"stddev_over_mean\":%.6f},",
           key, b->mean, b->max / b->mean, b->min / b->mean, b->stddev / b->mean);
}

static void json_share(const char *key, const struct share *s)
{
    printf("\"%s\":{\"blocks_changed\":%.8f,\"ideal_blocks_changed\":%.8f,"
           "\"slots_moved\":%.8f,\"ideal_slots_moved\":%.8f,"
           "\"primaries_moved\":%.8f,\"ideal_primaries_moved\":%.8f},",
           key, s->sets, s->ideal_sets, s->slots, s->ideal_slots, s->primaries, s->ideal_slots);
}

static void report(const struct opts *o, const struct worker *w, double secs)
{
    struct balance rb = balance_of(w->replicas, o->nodes);
    struct balance pb = balance_of(w->primaries, o->nodes);
    struct share add = share_of(&w->add, o, o->nodes + 1);
    struct share rem = share_of(&w->rem, o, o->nodes);
    double placements = 3.0 * (double)o->blocks;

    printf("placesim: %zu nodes, %zu zones, %zu replicas, %zu blocks, %zu threads\n\n", o->nodes,
           o->zones, o->replicas, o->blocks, o->threads);
    printf("load per node (noise = 1/sqrt(mean), the sampling floor of stddev/mean)\n");
    print_balance("replicas", &rb);
    print_balance("primaries", &pb);
    printf("\nzone spread: %" PRIu64 " replica sets on fewer than %zu zones, %" PRIu64
           " sets short of %zu replicas\n\n",
           w->zone_violations, o->replicas < o->zones ? o->replicas : o->zones, w->short_sets,
           o->replicas);
    printf("movement        blocks-chg   ideal R/N  ratio   slots-moved  ideal 1/N  ratio"
           "   prim-moved  ratio\n");
    print_share("add 1 node", &add);
    print_share("remove 1 node", &rem);
    printf("\nelapsed %.2f s, %.0f placements, %.0f placements/s (%zu threads)\n\n", secs,
           placements, placements / secs, o->threads);

    printf("{\"nodes\":%zu,\"zones\":%zu,\"replicas\":%zu,\"blocks\":%zu,\"threads\":%zu,", o->nodes,
           o->zones, o->replicas, o->blocks, o->threads);
    json_balance("replica_load", &rb);
    json_balance("primary_load", &pb);
    printf("\"zone_violations\":%" PRIu64 ",\"short_sets\":%" PRIu64 ",", w->zone_violations,
           w->short_sets);
    json_share("add_node", &add);
    json_share("remove_node", &rem);
    printf("\"elapsed_s\":%.3f,\"placements\":%.0f,\"placements_per_s\":%.0f}\n", secs, placements,
           placements / secs);
}

int main(int argc, char **argv)
{
    struct opts o;
    struct sim s = {0};
    struct worker w[MAX_THREADS];
    size_t *zone_of;
    double t0;
    int rc;

    if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        usage(stdout);
        return 0;
    }
    if (parse_opts(argc, argv, &o) != 0) {
        usage(stderr);
        return 2;
    }
    if ((zone_of = calloc(o.nodes, sizeof(*zone_of))) == NULL)
        return 1;
    if ((rc = build_sim(&o, &s, zone_of)) != 0) {
        fprintf(stderr, "placesim: building maps: %s\n", sz_strerror(rc));
        return 1;
    }
    t0 = now_s();
    if ((rc = run_workers(&s, w, o.threads)) != 0) {
        fprintf(stderr, "placesim: %s\n", sz_strerror(rc));
        return 1;
    }
    merge(w, o.threads, o.nodes);
    report(&o, &w[0], now_s() - t0);
    for (size_t t = 0; t < o.threads; t++) {
        free(w[t].replicas);
        free(w[t].primaries);
    }
    cmap_free(s.base);
    cmap_free(s.add);
    cmap_free(s.rem);
    free(zone_of);
    return 0;
}
