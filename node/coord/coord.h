/*
 * coord: the coordinator's shared state, private to node/coord/.
 *
 *   snapcoord.c   main, flags, request loop, dispatch, timers
 *   membership.c  nodes, states, the versioned cluster map, drain/remove
 *   locate.c      where block copies live (BLOCK_HAVE fan-out), the audit
 *                 that counts under-replicated blocks, snapshot readiness
 *   catalog_ops.c disks and snapshots: create, clone, begin, commit, list
 *   catalog.c     the durable catalog on kv (RocksDB)
 */
#ifndef SZ_COORD_H
#define SZ_COORD_H

#include <stddef.h>
#include <stdint.h>

#include "clustermap.h"
#include "codec.h"

struct catalog;
struct tp_ctx;
struct tp_sock;
struct tp_msg;

/* Liveness as the coordinator sees it (admin draining is separate). */
enum { CN_UP = 0, CN_SUSPECT = 1, CN_DOWN = 2 };

struct cnode {
    char id[CMAP_NAME_MAX];
    char zone[CMAP_NAME_MAX];
    char endpoint[CMAP_ENDPOINT_MAX];
    int live;      /* CN_UP / CN_SUSPECT / CN_DOWN */
    int draining;  /* admin: no new placement, data moves off */
    uint64_t blocks, stored_bytes, last_seen_ms;
    uint64_t repair_pending, repaired_blocks, repair_bytes;
    struct tp_sock *sock; /* lazily connected, for BLOCK_HAVE */
};

struct coord_config {
    int suspect_ms;       /* UP -> SUSPECT after this long without a heartbeat */
    int down_ms;          /* SUSPECT -> DOWN after this long */
    int audit_ms;         /* pause between audit steps */
    int have_timeout_ms;  /* BLOCK_HAVE to a node */
    uint64_t pending_timeout_s; /* abort snapshots pending this long */
};

struct coord {
    struct coord_config cfg;
    struct catalog *cat;
    struct tp_ctx *ctx;
    struct tp_sock *router;
    uint32_t replicas;
    uint64_t epoch;
    struct cnode *nodes;
    size_t nnodes;
    struct cmap *map;      /* states as published: placement view */
    struct cmap *homemap;  /* every node eligible: where copies may live */
    /* audit state */
    uint8_t audit_cursor[34];
    size_t audit_cursor_len;
    int audit_restart;
    uint64_t audit_partial;   /* under-replicated so far in this pass */
    uint64_t under_replicated; /* result of the last complete pass */
    int audit_complete;       /* at least one pass finished */
    uint64_t next_audit_ms;
};

/* ---- membership.c ---- */
int coord_load_nodes(struct coord *c, uint32_t replicas_flag);
int coord_rebuild_map(struct coord *c);
void coord_tick_membership(struct coord *c);
int coord_map_state(const struct cnode *n);
int coord_reply_map(struct coord *c, struct tp_msg *msg, sz_env *env);
int coord_register(struct coord *c, struct tp_msg *msg, sz_env *env);
int coord_heartbeat(struct coord *c, struct tp_msg *msg, sz_env *env);
int coord_status(struct coord *c, struct tp_msg *msg, sz_env *env);
int coord_drain(struct coord *c, struct tp_msg *msg, sz_env *env);
int coord_remove(struct coord *c, struct tp_msg *msg, sz_env *env);
const char *coord_default_zone(struct coord *c);
int coord_zone_known(struct coord *c, const char *zone);
void coord_free_nodes(struct coord *c);

/* ---- locate.c ---- */

/* Where a block's copies are, among nodes that are not DOWN. */
struct coord_loc {
    uint64_t zones;  /* bit z: a live copy in zone z of coord_zone_index */
    uint32_t copies; /* live nodes holding it */
};

/** coord_locate(c, ids, n, loc): Ask every live node that may hold each id
 *  (its placement over all nodes, plus its current placement) with
 *  BLOCK_HAVE.  Nodes that do not answer count as not holding. */
int coord_locate(struct coord *c, const uint8_t *ids, size_t n, struct coord_loc *loc);

/** coord_zone_index(c, zone): Index of zone among the map's sorted zones. */
int coord_zone_index(struct coord *c, const char *zone);
size_t coord_nzones(struct coord *c);
const char *coord_zone_name(struct coord *c, size_t i);

/** coord_protected(c, loc, strict): 1 if the block has R live copies in
 *  min(R, Z) distinct zones, where Z counts every known zone when strict
 *  (a snapshot's "fully protected") or only zones with an UP node when not
 *  (the audit: repair can only spread over zones that are up). */
int coord_protected(struct coord *c, const struct coord_loc *loc, int strict);

/** coord_audit_step(c): Check the next slice of referenced blocks. */
void coord_audit_step(struct coord *c);
void coord_audit_restart(struct coord *c);

/* ---- catalog_ops.c ---- */
int coord_disk_create(struct coord *c, struct tp_msg *msg, sz_env *env);
int coord_disk_get(struct coord *c, struct tp_msg *msg, sz_env *env);
int coord_disk_list(struct coord *c, struct tp_msg *msg, sz_env *env);
int coord_disk_clone(struct coord *c, struct tp_msg *msg, sz_env *env);
int coord_snap_begin(struct coord *c, struct tp_msg *msg, sz_env *env);
int coord_snap_commit(struct coord *c, struct tp_msg *msg, sz_env *env);
int coord_snap_abort(struct coord *c, struct tp_msg *msg, sz_env *env);
int coord_snap_list(struct coord *c, struct tp_msg *msg, sz_env *env);
int coord_snap_get(struct coord *c, struct tp_msg *msg, sz_env *env);
void coord_abort_stale(struct coord *c);

#endif
