/*
 * clustermap: the versioned cluster map and the placement function that
 * clients, nodes and the coordinator must agree on bit for bit.
 *
 * Placement is flat rendezvous (highest-random-weight) hashing with a zone
 * constraint.  Every eligible node gets a 64-bit score from (block id, node
 * id), unweighted; ties go to the smaller id.  Taking the nodes in
 * descending score order, the replica list takes each node whose zone it
 * does not hold yet, until it has R nodes or every zone is taken, so R
 * replicas land on R distinct zones when there are at least R zones.  With
 * fewer zones, every zone gets a copy and the remaining slots take the
 * next-best nodes not yet taken, whatever their zone.  The list is in the
 * order taken: the primary is the best-scoring node.  Eligible = state UP
 * (or SUSPECT: a node that only missed heartbeats keeps its data and its
 * place).  Scores depend only on names and ids, never on array order, and
 * use integers only (no libm, no floating point).
 *
 * Adding or removing a node moves only the blocks whose set gains or loses
 * that node, one slot each: the primaries it wins or held (1/N) and, when
 * zones have equal sizes and outnumber R, about R/N of the blocks.
 * bench/placesim (1000 nodes, 10 zones, R = 3, 10M blocks) measures 0.99x
 * of the ideal (R/N of the blocks, 1/N of the slots and of the primaries)
 * adding a node and 1.01x removing one; the former two-level zone-then-node
 * hashing moved 1.8x.  When the zone constraint binds, the share is the one
 * the constraint allows: with R = 3 zones of 2 nodes, a 7th node in a zone
 * gains 1/3 of the blocks (its zone must still hold one copy of each), not
 * 3/7.  The exact hash and score definitions are at the top of
 * clustermap.c.
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
    /* private: placement index (compact node hashes and zone numbers) kept
     * by cmap_add_node and cmap_dup */
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
