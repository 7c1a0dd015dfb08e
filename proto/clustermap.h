/*
 * clustermap: the versioned cluster map and the placement function that
 * clients, nodes and the coordinator must agree on bit for bit.
 *
 * Placement is two-level weighted rendezvous (highest-random-weight) hashing:
 *   1. every zone that has at least one eligible node gets a score from
 *      (block id, zone name), weighted by its number of eligible nodes;
 *      zones are ranked by score;
 *   2. inside a zone, eligible nodes are ranked by a score from (block id,
 *      node id).
 * The replica list takes the best node of the best zone, then the best node
 * of the second zone, and so on, so R replicas land on R distinct zones when
 * there are at least R zones.  With fewer zones, the remaining slots take the
 * next-best nodes, zone by zone in zone rank order, so copies stay as spread
 * out as the zones allow.  Eligible = state UP (or SUSPECT: a node that only
 * missed heartbeats keeps its data and its place).  The scores depend only on
 * names and ids, never on array order (ties go to the smaller name), so
 * adding or removing a node moves O(1/N) of the blocks: about twice the
 * minimum, because the change of its zone's weight also moves a few blocks
 * between zones (bench/placesim measures it).  The exact hash and score
 * definitions are at the top of clustermap.c.
 */
#ifndef SZ_CLUSTERMAP_H
#define SZ_CLUSTERMAP_H

#include <stddef.h>
#include <stdint.h>

#define CMAP_NAME_MAX 64      /* node id and zone name, NUL included */
#define CMAP_ENDPOINT_MAX 128
#define CMAP_MAX_NODES 4096
#define CMAP_MAX_REPLICAS 8

enum cmap_state { CMAP_UP = 0, CMAP_SUSPECT = 1, CMAP_DOWN = 2, CMAP_DRAINING = 3 };

struct cmap_node {
    char id[CMAP_NAME_MAX];
    char zone[CMAP_NAME_MAX];
    char endpoint[CMAP_ENDPOINT_MAX];
    int state;                /* enum cmap_state */
    uint64_t blocks;          /* informational: last reported */
    uint64_t stored_bytes;    /* informational: last reported */
    /* private: filled by cmap_add_node */
    uint64_t id_hash;
    uint64_t zone_hash;
};

struct cmap_index;

/* Build maps only with cmap_new + cmap_add_node (or cmap_dup): nodes and
 * nnodes must not be changed by hand.  A node's state may be changed in
 * place by the map's owner before the map is shared; cmap_place reads it. */
struct cmap {
    uint64_t epoch;
    uint32_t replicas;
    size_t nnodes;
    struct cmap_node *nodes;
    /* private: placement index kept by cmap_add_node and cmap_dup */
    struct cmap_index *index;
};

/** cmap_new(epoch, replicas, out): Empty map.  Caller frees with cmap_free.
 *  SZ_EINVAL unless 1 <= replicas <= CMAP_MAX_REPLICAS. */
int cmap_new(uint64_t epoch, uint32_t replicas, struct cmap **out);

/** cmap_free(map): NULL is a no-op. */
void cmap_free(struct cmap *map);

/** cmap_add_node(map, id, zone, endpoint, state): Append a node (copies the
 *  strings).  SZ_EINVAL if a string is empty or too long or state is not a
 *  cmap_state, SZ_EEXIST if id is already present, SZ_ETOOBIG past
 *  CMAP_MAX_NODES. */
int cmap_add_node(struct cmap *map, const char *id, const char *zone, const char *endpoint,
                  int state);

/** cmap_dup(map, out): Deep copy.  Caller frees with cmap_free. */
int cmap_dup(const struct cmap *map, struct cmap **out);

/** cmap_find(map, id): Index of node id, or -1. */
long cmap_find(const struct cmap *map, const char *id);

/** cmap_nzones(map): Number of distinct zones among all nodes. */
size_t cmap_nzones(const struct cmap *map);

/** cmap_place(map, id, out, maxout): Write min(maxout, map->replicas, number
 *  of eligible nodes) distinct node indices, best first, for block id.
 *  Return how many were written (0 if no node is eligible).  Read-only and
 *  allocation-free: any number of threads may place on one map at once. */
size_t cmap_place(const struct cmap *map, const uint8_t id[32], size_t *out, size_t maxout);

/** cmap_state_name(state): "up", "suspect", "down", "draining". */
const char *cmap_state_name(int state);

#endif
