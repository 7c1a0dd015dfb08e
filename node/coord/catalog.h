/*
 * catalog: the coordinator's durable metadata, on kv (RocksDB).
 *
 * Keys:  c/epoch, c/replicas, c/seq     u64le counters
 *        n/<node id>                    NodeInfo
 *        d/<disk name>                  DiskInfo
 *        s/<snapshot id>                SnapInfo
 *        m/<snapshot id>                manifest, self-contained (no parent)
 *        r/<32-byte block id>           u64le reference count
 *        t/<node id>                    tombstone of a removed node
 * A snapshot becomes committed in one synced batch that writes its record,
 * its manifest and its reference counts together, so a crash leaves either
 * all or none of them.
 */
#ifndef SZ_CATALOG_H
#define SZ_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "snapzone.pb-c.h"

struct catalog;

int cat_open(const char *dir, struct catalog **out);
/** cat_close(cat): NULL is a no-op. */
void cat_close(struct catalog *cat);

/** cat_counter(cat, name, val): Read counter c/<name>; 0 if absent. */
int cat_counter(struct catalog *cat, const char *name, uint64_t *val);
int cat_counter_set(struct catalog *cat, const char *name, uint64_t val);

/** cat_node_put / cat_nodes: NodeInfo records.  cat_nodes hands back an
 *  array of unpacked records; caller frees with cat_free_list. */
int cat_node_put(struct catalog *cat, const Sz__NodeInfo *n);
int cat_nodes(struct catalog *cat, Sz__NodeInfo ***out, size_t *n);
/** cat_node_del(cat, id): Forget a node, leaving a tombstone (t/<id>) so
 *  the id cannot register again. */
int cat_node_del(struct catalog *cat, const char *id);
/** cat_node_removed(cat, id): 1 if id was removed, 0 if not. */
int cat_node_removed(struct catalog *cat, const char *id);

/** cat_disk_get(cat, name, out): Caller frees with cat_free. SZ_ENOENT. */
int cat_disk_get(struct catalog *cat, const char *name, Sz__DiskInfo **out);
int cat_disk_put(struct catalog *cat, const Sz__DiskInfo *d);
int cat_disks(struct catalog *cat, Sz__DiskInfo ***out, size_t *n);

int cat_snap_get(struct catalog *cat, const char *id, Sz__SnapInfo **out);
int cat_snap_put(struct catalog *cat, const Sz__SnapInfo *s);
/** cat_snaps(cat, disk, out, n): All snapshots (any status) of disk, or of
 *  every disk when disk is NULL or "", ordered by seq. */
int cat_snaps(struct catalog *cat, const char *disk, Sz__SnapInfo ***out, size_t *n);

/** cat_manifest(cat, id, ids, n): The decoded manifest.  Caller frees *ids. */
int cat_manifest(struct catalog *cat, const char *id, uint8_t **ids, size_t *n);
/** cat_manifest_raw(cat, id, buf, len): The stored encoding.  Caller frees. */
int cat_manifest_raw(struct catalog *cat, const char *id, uint8_t **buf, size_t *len);

/** cat_refs_iter(cat, after, alen, ids, max, n, next, nlen): Up to max
 *  referenced block ids (32 bytes each, into ids) whose keys sort after the
 *  cursor (after/alen; alen 0 = from the start).  *next receives the cursor
 *  for the following call (34 bytes); *n = 0 at the end. */
int cat_refs_iter(struct catalog *cat, const uint8_t *after, size_t alen, uint8_t *ids,
                  size_t max, size_t *n, uint8_t *next, size_t *nlen);

/** cat_refs(cat, id): Reference count of a block id (0 if unknown), or SZ_EIO. */
int64_t cat_refs(struct catalog *cat, const uint8_t id[32]);

/** cat_commit(cat, snap, ids, n): Atomically store snap (already marked
 *  committed), its manifest, and +1 on the count of each distinct non-zero
 *  id in ids. */
int cat_commit(struct catalog *cat, const Sz__SnapInfo *snap, const uint8_t *ids, size_t n);

/** cat_free(msg) / cat_free_list(list, n): release unpacked records. */
void cat_free(void *msg);
void cat_free_list(void *list, size_t n);

#endif
