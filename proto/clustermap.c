/*
 * clustermap: the cluster map (nodes, zones, states) and the placement
 * function every party must compute bit for bit alike.
 *
 * Placement is two-level weighted rendezvous hashing (see clustermap.h).
 * Names are hashed once, in cmap_add_node, with FNV-1a 64 and a splitmix64
 * finalizer (separate salts for node ids and zone names, so a node named
 * like its zone gets unrelated scores).  For a block, u = first 8 id bytes
 * little-endian; zone z scores w / -log(h) with h = mix64(u ^ zone_hash)
 * mapped into (0,1) and w its number of eligible nodes; a node scores
 * mix64(u ^ id_hash).  Ties go to the smaller name (strcmp).
 *
 * The zone score uses no floating point: -log2(h) is computed in Q58 fixed
 * point with integer arithmetic only (a table built once by exact bit-by-bit
 * squaring, then a short series), and scores are compared by cross
 * multiplication, w_a * L_b > w_b * L_a.  The log base cancels out, and the
 * result does not depend on the libm, the FPU, FMA contraction or the CPU.
 *
 * A private index (zones with their member nodes, compact node hashes) is
 * kept up to date by cmap_add_node and cmap_dup, so cmap_place only reads
 * and never allocates: a map may be shared by any number of threads.  Node
 * states are read live by cmap_place, so the owner of a map may change
 * nodes[i].state in place (before sharing it).
 */
#include "clustermap.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

/* One zone of the index: its members are members[first .. first+count). */
struct cmap_zone {
    uint64_t hash;
    uint32_t name_node; /* a node whose .zone is this zone's name */
    uint32_t first;
    uint32_t count;
};

struct cmap_index {
    size_t cap;                     /* capacity of map->nodes and of each array */
    size_t nnodes;                  /* nodes indexed: must equal map->nnodes */
    const struct cmap_node *nodes;  /* the array indexed: must be map->nodes */
    size_t nzones;
    uint32_t *zone_of;              /* [cap] zone number of each node */
    struct cmap_zone *zones;        /* [cap] */
    uint32_t *members;              /* [cap] node indices grouped by zone */
    uint64_t *mhash;                /* [cap] id_hash of members[j] */
};

/* A ranked candidate: a zone (weight w, L = -log2 h) or a node (score s). */
struct cand {
    uint32_t idx;
    uint32_t w;
    uint64_t key;
};

#define SEED_NODE 0x6e6f64652d696421ull /* "node-id!" */
#define SEED_ZONE 0x7a6f6e652d6e6d21ull /* "zone-nm!" */

/* ---- hashing ------------------------------------------------------------ */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t name_hash(const char *s, uint64_t seed)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (; *s != '\0'; s++) {
        h ^= (uint8_t)*s;
        h *= 0x100000001b3ull;
    }
    return mix64(h ^ seed);
}

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* ---- integer logarithm -------------------------------------------------- */

__extension__ typedef unsigned __int128 u128;

#define LOG2E_M1_Q64 0x71547652b82fe177ull /* log2(e) - 1 in Q64 */

static uint64_t log_tab[256]; /* log2(1 + i/256) in Q62 */
static uint64_t rcp_tab[256]; /* floor(2^63 / (1 + i/256)) */
static pthread_once_t log_once = PTHREAD_ONCE_INIT;

/* a * b for fractions in Q64 (high half of the product). */
static uint64_t mul_q64(uint64_t a, uint64_t b)
{
    return (uint64_t)(((u128)a * b) >> 64);
}

/* log2(f) in Q62, f in [1,2) as Q63: one result bit per squaring (slow). */
static uint64_t log2_bits(uint64_t f)
{
    uint64_t y = 0;

    for (int b = 0; b < 62; b++) {
        u128 sq = (u128)f * f; /* f^2 in Q126 */
        unsigned top = (unsigned)(sq >> 127);

        f = (uint64_t)(sq >> (63 + top));
        y = (y << 1) | top;
    }
    return y;
}

static void log_init(void)
{
    for (unsigned i = 0; i < 256; i++) {
        rcp_tab[i] = (uint64_t)(((u128)1 << 71) / (256 + i));
        log_tab[i] = log2_bits((uint64_t)(256 + i) << 55);
    }
}

/* log2(f) in Q62, f in [1,2) as Q63.  f = (1 + i/256)(1 + r), r < 2^-8:
 * table for the first factor, ln(1+r) = r - r^2/2 + ... - r^6/6 (error
 * under 2^-58) for the second, its terms paired to shorten the chain. */
static uint64_t log2_fast(uint64_t f)
{
    unsigned i = (unsigned)(f >> 55) & 0xff;
    u128 v = (u128)f * rcp_tab[i]; /* 1 + r in Q126 */
    uint64_t r = v > ((u128)1 << 126) ? (uint64_t)((v - ((u128)1 << 126)) >> 62) : 0;
    uint64_t r2 = mul_q64(r, r), r3 = mul_q64(r2, r), r5 = mul_q64(r3, r2);
    uint64_t ln = r - (r2 >> 1);

    ln += mul_q64(r3, UINT64_MAX / 3 - (r >> 2));
    ln += mul_q64(r5, UINT64_MAX / 5 - mul_q64(r, UINT64_MAX / 6));
    return log_tab[i] + ((ln + mul_q64(ln, LOG2E_M1_Q64)) >> 2);
}

/* -log2(h) in Q58, h = ((x >> 11) + 0.5) / 2^53 in (0,1).  0 only if h is
 * within rounding of 1 (an infinite score). */
static uint64_t neglog2_unit(uint64_t x)
{
    uint64_t m = ((x >> 11) << 1) | 1; /* h = m / 2^54 */
    int e = 63 - __builtin_clzll(m);
    uint64_t lf = log2_fast(m << (63 - e)) >> 4;
    uint64_t ip = (uint64_t)(54 - e) << 58;

    return ip > lf ? ip - lf : 0;
}

/* ---- ranking ------------------------------------------------------------ */

static int eligible(int state)
{
    return state == CMAP_UP || state == CMAP_SUSPECT;
}

typedef int (*better_fn)(const struct cmap *map, const struct cmap_index *ix,
                         const struct cand *a, const struct cand *b);

/* 1 if zone a outranks zone b: larger w / L, then the smaller name. */
static int zone_better(const struct cmap *map, const struct cmap_index *ix,
                       const struct cand *a, const struct cand *b)
{
    u128 sa = (u128)a->w * b->key, sb = (u128)b->w * a->key;

    if (sa != sb)
        return sa > sb;
    return strcmp(map->nodes[ix->zones[a->idx].name_node].zone,
                  map->nodes[ix->zones[b->idx].name_node].zone) < 0;
}

/* 1 if node a outranks node b: larger score, then the smaller id. */
static int node_better(const struct cmap *map, const struct cmap_index *ix,
                       const struct cand *a, const struct cand *b)
{
    (void)ix;
    if (a->key != b->key)
        return a->key > b->key;
    return strcmp(map->nodes[a->idx].id, map->nodes[b->idx].id) < 0;
}

/* Insert c into the list top[0..*n), sorted by better, keeping at most k. */
static inline void top_insert(const struct cmap *map, const struct cmap_index *ix,
                              better_fn better, struct cand *top, size_t *n, size_t k,
                              const struct cand *c)
{
    size_t i = *n;

    if (i == k) {
        if (!better(map, ix, c, &top[k - 1]))
            return;
        i--;
    } else {
        (*n)++;
    }
    for (; i > 0 && better(map, ix, c, &top[i - 1]); i--)
        top[i] = top[i - 1];
    top[i] = *c;
}

/* Rank zones by their exact weight (eligible nodes); keep the best k.
 * Return how many zones have an eligible node; *ntop = min(that, k). */
static size_t rank_zones(const struct cmap *map, const struct cmap_index *ix, uint64_t u,
                         size_t k, struct cand *top, size_t *ntop)
{
    size_t nelig = 0;

    *ntop = 0;
    for (size_t z = 0; z < ix->nzones; z++) {
        const struct cmap_zone *zn = &ix->zones[z];
        struct cand c = {(uint32_t)z, 0, 0};

        for (uint32_t j = zn->first; j < zn->first + zn->count; j++)
            c.w += (uint32_t)eligible(map->nodes[ix->members[j]].state);
        if (c.w == 0)
            continue;
        nelig++;
        c.key = neglog2_unit(mix64(u ^ zn->hash));
        top_insert(map, ix, zone_better, top, ntop, k, &c);
    }
    return nelig;
}

/* The best k eligible nodes of zone z, best first, into top; return how
 * many.  *nelig = number of eligible nodes in the zone. */
static size_t rank_nodes(const struct cmap *map, const struct cmap_index *ix, size_t z,
                         uint64_t u, size_t k, struct cand *top, uint32_t *nelig)
{
    const struct cmap_zone *zn = &ix->zones[z];
    size_t n = 0;

    *nelig = 0;
    for (uint32_t j = zn->first; j < zn->first + zn->count; j++) {
        struct cand c = {ix->members[j], 0, 0};

        if (!eligible(map->nodes[c.idx].state))
            continue;
        (*nelig)++;
        c.key = mix64(u ^ ix->mhash[j]);
        top_insert(map, ix, node_better, top, &n, k, &c);
    }
    return n;
}

/* The best eligible node of zone z (rank_nodes with k = 1, kept tight
 * because it is the hot loop): its index, or UINT32_MAX if none.
 * *nelig = number of eligible nodes in the zone. */
static uint32_t best_node(const struct cmap *map, const struct cmap_index *ix, size_t z,
                          uint64_t u, uint32_t *nelig)
{
    const struct cmap_zone *zn = &ix->zones[z];
    const struct cmap_node *nodes = map->nodes;
    uint32_t best = UINT32_MAX, cnt = 0;
    uint64_t top = 0;

    for (uint32_t j = zn->first, end = zn->first + zn->count; j < end; j++) {
        uint32_t i = ix->members[j];
        uint64_t s;

        if (!eligible(nodes[i].state))
            continue;
        cnt++;
        s = mix64(u ^ ix->mhash[j]);
        if (best == UINT32_MAX || s > top ||
            (s == top && strcmp(nodes[i].id, nodes[best].id) < 0)) {
            best = i;
            top = s;
        }
    }
    *nelig = cnt;
    return best;
}

/* Fewer eligible zones than slots: take each zone's next-best node, zone by
 * zone in rank order, round after round. */
static size_t place_spread(const struct cmap *map, const struct cmap_index *ix, uint64_t u,
                           const struct cand *zones, size_t nz, size_t *out, size_t want)
{
    struct cand best[CMAP_MAX_REPLICAS][CMAP_MAX_REPLICAS];
    size_t nbest[CMAP_MAX_REPLICAS], n = 0;
    uint32_t nelig;

    for (size_t z = 0; z < nz; z++)
        nbest[z] = rank_nodes(map, ix, zones[z].idx, u, want, best[z], &nelig);
    for (size_t round = 0; n < want; round++) {
        size_t before = n;

        for (size_t z = 0; z < nz && n < want; z++)
            if (round < nbest[z])
                out[n++] = best[z][round].idx;
        if (n == before)
            break;
    }
    return n;
}

/* Exact placement: count every zone's eligible nodes first. */
static size_t place_exact(const struct cmap *map, const struct cmap_index *ix, uint64_t u,
                          size_t *out, size_t want)
{
    struct cand zones[CMAP_MAX_REPLICAS];
    size_t nz;
    uint32_t nelig;

    if (rank_zones(map, ix, u, want, zones, &nz) < want)
        return place_spread(map, ix, u, zones, nz, out, want);
    for (size_t k = 0; k < want; k++)
        out[k] = best_node(map, ix, zones[k].idx, u, &nelig);
    return want;
}

/* Fast placement, valid when the top zones have no ineligible node: rank
 * zones with every member counted (an upper bound of the weight, so of the
 * score).  If the best want zones turn out to be all eligible, their scores
 * are exact and no other zone can beat them; otherwise return 0.  This
 * reads only the states of the chosen zones' nodes, not all N. */
static size_t place_fast(const struct cmap *map, const struct cmap_index *ix, uint64_t u,
                         size_t *out, size_t want)
{
    struct cand zones[CMAP_MAX_REPLICAS];
    size_t nz = 0;
    uint32_t nelig;

    for (size_t z = 0; z < ix->nzones; z++) {
        struct cand c = {(uint32_t)z, ix->zones[z].count, 0};

        c.key = neglog2_unit(mix64(u ^ ix->zones[z].hash));
        top_insert(map, ix, zone_better, zones, &nz, want, &c);
    }
    if (nz < want)
        return 0;
    for (size_t k = 0; k < want; k++) {
        out[k] = best_node(map, ix, zones[k].idx, u, &nelig);
        if (nelig != zones[k].w)
            return 0;
    }
    return want;
}

static int index_valid(const struct cmap *map)
{
    const struct cmap_index *ix = map->index;

    return ix != NULL && ix->nnodes == map->nnodes && ix->nodes == map->nodes;
}

size_t cmap_place(const struct cmap *map, const uint8_t id[32], size_t *out, size_t maxout)
{
    size_t want, n;
    uint64_t u;

    if (map == NULL || id == NULL || out == NULL || !index_valid(map))
        return 0;
    want = maxout < map->replicas ? maxout : map->replicas;
    if (want > CMAP_MAX_REPLICAS)
        want = CMAP_MAX_REPLICAS;
    if (want == 0)
        return 0;
    u = load_le64(id);
    if ((n = place_fast(map, map->index, u, out, want)) > 0)
        return n;
    return place_exact(map, map->index, u, out, want);
}

/* ---- index maintenance -------------------------------------------------- */

static void index_free(struct cmap_index *ix)
{
    if (ix == NULL)
        return;
    free(ix->zone_of);
    free(ix->zones);
    free(ix->members);
    free(ix->mhash);
    free(ix);
}

/* Grow map->nodes and the index arrays to hold at least need nodes. */
static int index_reserve(struct cmap *map, size_t need)
{
    struct cmap_index *ix = map->index;
    size_t cap = ix->cap ? ix->cap : 16;
    void *p;

    if (need <= ix->cap)
        return 0;
    while (cap < need)
        cap *= 2;
    if (cap > CMAP_MAX_NODES)
        cap = CMAP_MAX_NODES;
    if ((p = realloc(map->nodes, cap * sizeof(*map->nodes))) == NULL)
        return SZ_ENOMEM;
    map->nodes = p;
    ix->nodes = p; /* same nodes, moved: keep the index valid on failure */
    if ((p = realloc(ix->zone_of, cap * sizeof(*ix->zone_of))) == NULL)
        return SZ_ENOMEM;
    ix->zone_of = p;
    if ((p = realloc(ix->zones, cap * sizeof(*ix->zones))) == NULL)
        return SZ_ENOMEM;
    ix->zones = p;
    if ((p = realloc(ix->members, cap * sizeof(*ix->members))) == NULL)
        return SZ_ENOMEM;
    ix->members = p;
    if ((p = realloc(ix->mhash, cap * sizeof(*ix->mhash))) == NULL)
        return SZ_ENOMEM;
    ix->mhash = p;
    ix->cap = cap;
    return 0;
}

/* Zone number of node i, adding a new zone if its zone is unknown. */
static uint32_t index_zone(struct cmap *map, size_t i)
{
    struct cmap_index *ix = map->index;
    const struct cmap_node *nd = &map->nodes[i];

    for (size_t z = 0; z < ix->nzones; z++)
        if (ix->zones[z].hash == nd->zone_hash &&
            strcmp(map->nodes[ix->zones[z].name_node].zone, nd->zone) == 0)
            return (uint32_t)z;
    ix->zones[ix->nzones] = (struct cmap_zone){nd->zone_hash, (uint32_t)i, 0, 0};
    return (uint32_t)ix->nzones++;
}

/* Group nodes by zone (counting sort, node order kept inside a zone). */
static void index_layout(struct cmap *map)
{
    struct cmap_index *ix = map->index;
    uint32_t pos = 0;

    for (size_t z = 0; z < ix->nzones; z++)
        ix->zones[z].count = 0;
    for (size_t i = 0; i < map->nnodes; i++)
        ix->zones[ix->zone_of[i]].count++;
    for (size_t z = 0; z < ix->nzones; z++) {
        ix->zones[z].first = pos;
        pos += ix->zones[z].count;
        ix->zones[z].count = 0;
    }
    for (size_t i = 0; i < map->nnodes; i++) {
        struct cmap_zone *zn = &ix->zones[ix->zone_of[i]];
        uint32_t j = zn->first + zn->count++;

        ix->members[j] = (uint32_t)i;
        ix->mhash[j] = map->nodes[i].id_hash;
    }
    ix->nnodes = map->nnodes;
    ix->nodes = map->nodes;
}

/* ---- public API --------------------------------------------------------- */

int cmap_new(uint64_t epoch, uint32_t replicas, struct cmap **out)
{
    struct cmap *m;

    if (out == NULL)
        return SZ_EINVAL;
    *out = NULL;
    if (replicas == 0 || replicas > CMAP_MAX_REPLICAS)
        return SZ_EINVAL;
    if ((m = calloc(1, sizeof(*m))) == NULL)
        return SZ_ENOMEM;
    if ((m->index = calloc(1, sizeof(*m->index))) == NULL) {
        free(m);
        return SZ_ENOMEM;
    }
    pthread_once(&log_once, log_init);
    m->epoch = epoch;
    m->replicas = replicas;
    *out = m;
    return 0;
}

void cmap_free(struct cmap *map)
{
    if (map == NULL)
        return;
    index_free(map->index);
    free(map->nodes);
    free(map);
}

/* 0 if s is a non-empty string that fits in max bytes with its NUL. */
static int check_str(const char *s, size_t max)
{
    return s != NULL && s[0] != '\0' && strnlen(s, max) < max ? 0 : SZ_EINVAL;
}

int cmap_add_node(struct cmap *map, const char *id, const char *zone, const char *endpoint,
                  int state)
{
    struct cmap_node *nd;
    int rc;

    if (map == NULL || !index_valid(map) || check_str(id, CMAP_NAME_MAX) ||
        check_str(zone, CMAP_NAME_MAX) || check_str(endpoint, CMAP_ENDPOINT_MAX) ||
        state < CMAP_UP || state > CMAP_DRAINING)
        return SZ_EINVAL;
    if (cmap_find(map, id) >= 0)
        return SZ_EEXIST;
    if (map->nnodes >= CMAP_MAX_NODES)
        return SZ_ETOOBIG;
    if ((rc = index_reserve(map, map->nnodes + 1)) != 0)
        return rc;
    nd = &map->nodes[map->nnodes];
    memset(nd, 0, sizeof(*nd));
    strcpy(nd->id, id);
    strcpy(nd->zone, zone);
    strcpy(nd->endpoint, endpoint);
    nd->state = state;
    nd->id_hash = name_hash(id, SEED_NODE);
    nd->zone_hash = name_hash(zone, SEED_ZONE);
    map->index->zone_of[map->nnodes] = index_zone(map, map->nnodes);
    map->nnodes++;
    index_layout(map);
    return 0;
}

int cmap_dup(const struct cmap *map, struct cmap **out)
{
    struct cmap *m;
    int rc;

    if (out == NULL)
        return SZ_EINVAL;
    *out = NULL;
    if (map == NULL || map->nnodes > CMAP_MAX_NODES || (map->nnodes > 0 && map->nodes == NULL))
        return SZ_EINVAL;
    if ((rc = cmap_new(map->epoch, 1, &m)) != 0)
        return rc;
    m->replicas = map->replicas;
    if ((rc = index_reserve(m, map->nnodes)) != 0) {
        cmap_free(m);
        return rc;
    }
    if (map->nnodes > 0)
        memcpy(m->nodes, map->nodes, map->nnodes * sizeof(*m->nodes));
    m->nnodes = map->nnodes;
    for (size_t i = 0; i < m->nnodes; i++)
        m->index->zone_of[i] = index_zone(m, i);
    index_layout(m);
    *out = m;
    return 0;
}

long cmap_find(const struct cmap *map, const char *id)
{
    if (map == NULL || id == NULL)
        return -1;
    for (size_t i = 0; i < map->nnodes; i++)
        if (strcmp(map->nodes[i].id, id) == 0)
            return (long)i;
    return -1;
}

size_t cmap_nzones(const struct cmap *map)
{
    size_t n = 0;

    if (map == NULL)
        return 0;
    if (index_valid(map))
        return map->index->nzones;
    for (size_t i = 0; i < map->nnodes; i++) {
        size_t j = 0;

        while (j < i && strcmp(map->nodes[j].zone, map->nodes[i].zone) != 0)
            j++;
        n += j == i;
    }
    return n;
}

const char *cmap_state_name(int state)
{
    switch (state) {
    case CMAP_UP:
        return "up";
    case CMAP_SUSPECT:
        return "suspect";
    case CMAP_DOWN:
        return "down";
    case CMAP_DRAINING:
        return "draining";
    }
    return "unknown";
}
