/*
 * clustermap: the cluster map (nodes, zones, states) and the placement
 * function every party must compute bit for bit alike.
 *
 * Placement is flat rendezvous hashing with a zone constraint (see
 * clustermap.h).  Names are hashed once, in cmap_add_node, with FNV-1a 64
 * and a splitmix64 finalizer (separate salts for node ids and zone names).
 * For a block, u = first 8 id bytes little-endian, and node n scores
 * mix64(u ^ id_hash(n)), an unweighted 64-bit integer; ties go to the
 * smaller id (strcmp).  Zone names only tell which nodes share a zone: they
 * take no part in the scores.  Integers only: no libm, no floating point.
 *
 * The selection, defined on the eligible nodes in descending score order:
 *   1. walk down the list, taking a node unless its zone is already taken,
 *      until want nodes are taken or every zone is;
 *   2. if slots remain (fewer eligible zones than want), take the best nodes
 *      not yet taken, whatever their zone.
 * The replica list is in the order taken.
 *
 * It needs no sort and no per-zone state.  Step 1 takes the best node of
 * each of the want zones whose best nodes score highest, which one pass
 * finds with a list T of at most want (zone, best node) entries sorted by
 * score: a node of a zone in T replaces that zone's entry if it is better;
 * a node of another zone enters T (dropping the last entry when T is full)
 * if it beats T's last entry.  A dropped zone can only come back through a
 * node better than T's last entry, which is then the zone's best so far,
 * so T ends with exactly the top min(want, zones) zones and their best
 * nodes.  Step 2 only happens if T ends short (fewer eligible zones than
 * want); its nodes are then the best nodes outside T, and they are all
 * among the best want eligible nodes, which a second list G keeps.
 *
 * Once T is full no node scoring below T's last entry can change T or G
 * (G's last entry scores at least as high), so the hot loop is one mix64
 * and one compare per node over a contiguous array of id hashes; only the
 * rare node that passes looks at its state, its zone and the lists.  While
 * T is short but G is full, a node scoring below both lists' last entries
 * matters only if its zone is not in T yet, which costs a look at its zone
 * number (this is the loop of maps with fewer zones than replicas).
 * Ineligible nodes are skipped only once they pass, so states are read
 * live: the owner of a map may change nodes[i].state in place (before
 * sharing it).  About 1.5 ns per node and thread (1000 nodes, R = 3:
 * bench/placesim makes ~1M placements/s on 2 cores).
 *
 * The private index (compact arrays of hashes, node and zone numbers, and
 * the zone table) is kept up to date by cmap_add_node and cmap_dup, so
 * cmap_place only reads and never allocates: a map may be shared by any
 * number of threads.  The index lists the nodes zone-interleaved (every
 * zone's first node, then every zone's second node, ...) so that T fills
 * within the first few nodes whatever the order nodes were added in; the
 * result does not depend on the scan order, only the speed does.
 */
#include "clustermap.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

struct cmap_index {
    size_t cap;                    /* capacity of map->nodes and of each array */
    size_t nnodes;                 /* nodes indexed: must equal map->nnodes */
    const struct cmap_node *nodes; /* the array indexed: must be map->nodes */
    size_t nzones;
    uint32_t *zone_of;   /* [cap] zone number of node i */
    uint32_t *zone_name; /* [cap] a node whose .zone is zone z's name */
    /* scan order (zone-interleaved): slot j is node node[j] */
    uint64_t *hash;      /* [cap] id_hash of node[j] */
    uint32_t *node;      /* [cap] */
    uint32_t *zone;      /* [cap] zone number of node[j] */
    uint32_t *scratch;   /* [2 * cap] for index_layout */
};

/* A candidate: node index, its zone number and its score. */
struct cand {
    uint64_t s;
    uint32_t node;
    uint32_t zone;
};

#define SEED_NODE 0x6e6f64652d696421ull /* "node-id!" */
#define SEED_ZONE 0x7a6f6e652d6e6d21ull /* "zone-nm!" */

/* ---- hashing ------------------------------------------------------------ */

static inline uint64_t mix64(uint64_t z)
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

/* ---- placement ---------------------------------------------------------- */

static int eligible(int state)
{
    return state == CMAP_UP || state == CMAP_SUSPECT;
}

/* 1 if a outranks b: larger score, then the smaller id. */
static inline int better(const struct cmap_node *nodes, const struct cand *a,
                         const struct cand *b)
{
    if (a->s != b->s)
        return a->s > b->s;
    return strcmp(nodes[a->node].id, nodes[b->node].id) < 0;
}

/* Move list[i] up to its place in list[0..i], sorted best first. */
static inline void bubble_up(const struct cmap_node *nodes, struct cand *list, size_t i)
{
    struct cand c = list[i];

    for (; i > 0 && better(nodes, &c, &list[i - 1]); i--)
        list[i] = list[i - 1];
    list[i] = c;
}

/* Insert c into list[0..*n), sorted best first, keeping at most k. */
static inline void top_insert(const struct cmap_node *nodes, struct cand *list, size_t *n,
                              size_t k, const struct cand *c)
{
    size_t i = *n;

    if (i == k) {
        if (!better(nodes, c, &list[k - 1]))
            return;
        i--;
    } else {
        (*n)++;
    }
    list[i] = *c;
    bubble_up(nodes, list, i);
}

/* Offer eligible candidate c to the zone list t (best node of each of the
 * top zones, at most k) and to the global list g (best k nodes). */
static void offer(const struct cmap_node *nodes, struct cand *t, size_t *nt, struct cand *g,
                  size_t *ng, size_t k, const struct cand *c)
{
    size_t i = 0;

    top_insert(nodes, g, ng, k, c);
    while (i < *nt && t[i].zone != c->zone)
        i++;
    if (i == *nt) {
        top_insert(nodes, t, nt, k, c);
    } else if (better(nodes, c, &t[i])) {
        t[i] = *c;
        bubble_up(nodes, t, i);
    }
}

/* The hot loop, once T is full: the first slot from j on whose score is at
 * least cut (T's last score), or n; *sp = its score.  Not inlined, so
 * that it gets the registers to itself. */
__attribute__((noinline)) static size_t scan(const uint64_t *hash, size_t j, size_t n,
                                             uint64_t u, uint64_t cut, uint64_t *sp)
{
    for (; j < n; j++) {
        uint64_t s = mix64(u ^ hash[j]);

        if (s >= cut) {
            *sp = s;
            return j;
        }
    }
    return n;
}

/* The loop while T is short of want zones but G is full (fewer eligible
 * zones than want so far, or for good): a node below cut = min(T's last,
 * G's last) matters only if its zone is not in T yet. */
static inline size_t scan_short(const uint64_t *hash, const uint32_t *zone, size_t j, size_t n,
                                uint64_t u, uint64_t cut, const struct cand *t, size_t nt,
                                uint64_t *sp)
{
    for (; j < n; j++) {
        uint64_t s = mix64(u ^ hash[j]);
        size_t k = 0;

        if (s < cut) {
            while (k < nt && t[k].zone != zone[j])
                k++;
            if (k < nt)
                continue;
        }
        *sp = s;
        return j;
    }
    return n;
}

static int index_valid(const struct cmap *map)
{
    const struct cmap_index *ix = map->index;

    return ix != NULL && ix->nnodes == map->nnodes && ix->nodes == map->nodes;
}

size_t cmap_place(const struct cmap *map, const uint8_t id[32], size_t *out, size_t maxout)
{
    struct cand t[CMAP_MAX_REPLICAS], g[CMAP_MAX_REPLICAS];
    const struct cmap_index *ix;
    const struct cmap_node *nodes;
    const uint64_t *hash;
    size_t want, nt = 0, ng = 0, n, nout;
    uint64_t u, s;

    if (map == NULL || id == NULL || out == NULL || !index_valid(map))
        return 0;
    ix = map->index;
    want = maxout < map->replicas ? maxout : map->replicas;
    if (want > CMAP_MAX_REPLICAS)
        want = CMAP_MAX_REPLICAS;
    if (want == 0)
        return 0;
    u = load_le64(id);
    nodes = map->nodes;
    hash = ix->hash;
    n = ix->nnodes;
    for (size_t j = 0; j < n; j++) {
        struct cand c;

        if (nt == want) {
            j = scan(hash, j, n, u, t[want - 1].s, &s);
        } else if (ng == want) { /* then nt > 0 */
            uint64_t cut = t[nt - 1].s < g[want - 1].s ? t[nt - 1].s : g[want - 1].s;

            j = scan_short(hash, ix->zone, j, n, u, cut, t, nt, &s);
        } else {
            s = mix64(u ^ hash[j]);
        }
        if (j == n)
            break;
        c = (struct cand){s, ix->node[j], ix->zone[j]};
        if (eligible(nodes[c.node].state))
            offer(nodes, t, &nt, g, &ng, want, &c);
    }
    /* step 1: the best node of each top zone, in score order */
    for (nout = 0; nout < nt; nout++)
        out[nout] = t[nout].node;
    /* step 2 (fewer eligible zones than want): the best of the others */
    for (size_t i = 0; i < ng && nout < want; i++) {
        size_t k = 0;

        while (k < nt && t[k].node != g[i].node)
            k++;
        if (k == nt)
            out[nout++] = g[i].node;
    }
    return nout;
}

/* ---- index maintenance -------------------------------------------------- */

static void index_free(struct cmap_index *ix)
{
    if (ix == NULL)
        return;
    free(ix->zone_of);
    free(ix->zone_name);
    free(ix->hash);
    free(ix->node);
    free(ix->zone);
    free(ix->scratch);
    free(ix);
}

/* Resize array p to n elements; return SZ_ENOMEM (p unchanged) on failure. */
#define GROW(p, n)                                                                               \
    do {                                                                                         \
        void *q_ = realloc((p), (n) * sizeof(*(p)));                                             \
        if (q_ == NULL)                                                                          \
            return SZ_ENOMEM;                                                                    \
        (p) = q_;                                                                                \
    } while (0)

/* Grow map->nodes and the index arrays to hold at least need nodes. */
static int index_reserve(struct cmap *map, size_t need)
{
    struct cmap_index *ix = map->index;
    size_t cap = ix->cap ? ix->cap : 16;

    if (need <= ix->cap)
        return 0;
    while (cap < need)
        cap *= 2;
    if (cap > CMAP_MAX_NODES)
        cap = CMAP_MAX_NODES;
    GROW(map->nodes, cap);
    ix->nodes = map->nodes; /* same nodes, moved: keep the index valid on failure */
    GROW(ix->zone_of, cap);
    GROW(ix->zone_name, cap);
    GROW(ix->hash, cap);
    GROW(ix->node, cap);
    GROW(ix->zone, cap);
    GROW(ix->scratch, 2 * cap);
    ix->cap = cap;
    return 0;
}

/* Zone number of node i, adding a new zone if its zone is unknown. */
static uint32_t index_zone(struct cmap *map, size_t i)
{
    struct cmap_index *ix = map->index;
    const struct cmap_node *nd = &map->nodes[i];

    for (size_t z = 0; z < ix->nzones; z++) {
        const struct cmap_node *zn = &map->nodes[ix->zone_name[z]];

        if (zn->zone_hash == nd->zone_hash && strcmp(zn->zone, nd->zone) == 0)
            return (uint32_t)z;
    }
    ix->zone_name[ix->nzones] = (uint32_t)i;
    return (uint32_t)ix->nzones++;
}

/* Lay out the scan order, zone-interleaved: node i goes to round r = its
 * rank inside its zone (in node order); rounds in order, nodes in node
 * order inside a round.  Counting sort, O(nodes + zones). */
static void index_layout(struct cmap *map)
{
    struct cmap_index *ix = map->index;
    size_t n = map->nnodes;
    uint32_t *cnt, *slot, pos = 0;

    ix->nnodes = n;
    ix->nodes = map->nodes;
    if (n == 0)
        return; /* the arrays may not exist yet */
    cnt = ix->scratch;
    slot = ix->scratch + ix->cap;
    memset(cnt, 0, ix->nzones * sizeof(*cnt));
    for (size_t i = 0; i < n; i++)
        slot[i] = cnt[ix->zone_of[i]]++; /* rank in its zone = its round */
    memset(cnt, 0, n * sizeof(*cnt));
    for (size_t i = 0; i < n; i++)
        cnt[slot[i]]++;
    for (size_t r = 0; r < n; r++) { /* cnt[r] = first slot of round r */
        uint32_t c = cnt[r];

        cnt[r] = pos;
        pos += c;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t j = cnt[slot[i]]++;

        ix->node[j] = (uint32_t)i;
        ix->hash[j] = map->nodes[i].id_hash;
        ix->zone[j] = ix->zone_of[i];
    }
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
