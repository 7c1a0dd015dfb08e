/*
 * libsnapzone: the client library of snapzone, a distributed, replicated
 * snapshot store for disk images.
 *
 * The client does all private work: it reads the disk image, splits it into
 * fixed-size blocks, skips all-zero blocks, names each block by a keyed
 * BLAKE2b of its plaintext, compresses (zstd) and encrypts (AEAD) it, and
 * sends only blocks the cluster does not hold yet.  Only this library ever
 * holds the tenant key.
 *
 * Conventions: functions return 0 or a negative SZ_E* code (see
 * sz_strerror); after a failure sz_last_error() gives a one-line detail.
 * Results come back through out-parameters; "Caller frees with" names the
 * release function.  A client handle is used by one thread at a time (the
 * library runs its own worker threads inside each call).
 */
#ifndef SNAPZONE_H
#define SNAPZONE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SZ_NAME_MAX 64
#define SZ_DEFAULT_BLOCK_SIZE (256u * 1024u)

typedef struct sz_client sz_client;

struct sz_options {
    const char *coordinator; /* endpoint, e.g. "tcp://127.0.0.1:7400" (required) */
    const char *keyfile;     /* needed for snapshot create and restore; may be NULL */
    int timeout_ms;          /* per request; 0 = default (30000) */
    int threads;             /* data-path workers; 0 = default (4) */
};

struct sz_disk {
    char name[SZ_NAME_MAX];
    uint64_t size;
    uint32_t block_size;
    char zone[SZ_NAME_MAX];
    char source_snapshot[SZ_NAME_MAX]; /* "" unless cloned */
    uint64_t created;
};

struct sz_node_status {
    char id[SZ_NAME_MAX];
    char zone[SZ_NAME_MAX];
    char endpoint[128];
    const char *state; /* "up", "suspect", "down", "draining" (static) */
    uint64_t blocks;
    uint64_t stored_bytes;
};

struct sz_cluster_status {
    uint64_t epoch;
    uint32_t replicas;
    size_t nzones;
    char (*zones)[SZ_NAME_MAX];
    size_t nnodes;
    struct sz_node_status *nodes;
    uint64_t under_replicated_blocks;
};

struct sz_snapshot {
    char id[SZ_NAME_MAX];
    char disk[SZ_NAME_MAX];
    char name[SZ_NAME_MAX];
    char parent[SZ_NAME_MAX];
    uint64_t created;       /* unix seconds */
    uint64_t logical_bytes; /* image bytes */
    uint64_t blocks;        /* blocks in the manifest, zero blocks included */
    uint64_t new_blocks;    /* blocks this snapshot had to send */
    uint64_t new_bytes;     /* plaintext bytes of those blocks */
    uint32_t block_size;
    int automatic;
    /* Readiness, from snapshot listing (sz_snapshot_list) only: */
    int readiness_known;
    size_t nrestorable;                   /* zones holding a live copy of every block */
    char restorable_zones[8][SZ_NAME_MAX];
    int fully_protected;                  /* every block: R live copies, distinct zones */
};

struct sz_restore_result {
    uint64_t bytes;   /* logical bytes restored */
    double seconds;
    uint64_t blocks;  /* distinct blocks fetched and verified */
    uint64_t failovers; /* block reads that had to move to another replica */
    size_t nzones_used;
    char zones_used[8][SZ_NAME_MAX]; /* zones blocks were read from */
};

struct sz_restore_options {
    const char *zone;       /* prefer replicas here (NULL: the disk's zone) */
    const char *fail_zone;  /* treat this zone as lost: never read from it */
};

struct sz_drill_result {
    char snapshot[SZ_NAME_MAX];
    char fail_zone[SZ_NAME_MAX];
    int verified;           /* the restored image matches the digest recorded at commit */
    double rpo_seconds;     /* age of the snapshot */
    double rto_seconds;     /* seconds the restore took */
    uint64_t bytes;
    size_t nzones_used;
    char zones_used[8][SZ_NAME_MAX];
    int fully_protected;    /* redundancy of the snapshot right now */
    size_t nrestorable;
    char restorable_zones[8][SZ_NAME_MAX];
};

struct sz_scrub_result {
    uint64_t checked, corrupt, repaired, missing;
    size_t nodes;           /* nodes that answered */
    size_t failed_nodes;    /* up nodes that did not */
};

/** sz_strerror(code): Static text for an SZ_E* code. */
const char *sz_strerror(int code);

/** sz_keygen(path, fpr_hex): Write a new key file (mode 0600); never
 *  overwrites (SZ_EEXIST).  fpr_hex (33 bytes, may be NULL) receives the
 *  key's public fingerprint. */
int sz_keygen(const char *path, char fpr_hex[33]);

/** sz_open(opt, out): Connect to the coordinator and load the key file if
 *  given.  Caller frees with sz_close.  Return 0, SZ_EINVAL, SZ_ENOENT
 *  (key file), SZ_EIO. */
int sz_open(const struct sz_options *opt, sz_client **out);

/** sz_close(c): NULL is a no-op. */
void sz_close(sz_client *c);

/** sz_last_error(c): One-line detail of the last failure.  Borrowed; valid
 *  until the next call on c. */
const char *sz_last_error(const sz_client *c);

/** sz_cluster_status(c, out): Caller frees with sz_cluster_status_free. */
int sz_cluster_status(sz_client *c, struct sz_cluster_status **out);
void sz_cluster_status_free(struct sz_cluster_status *st);

/** sz_disk_create(c, name, size, block_size, zone, out): block_size 0 means
 *  SZ_DEFAULT_BLOCK_SIZE; zone NULL or "" means the cluster's first zone. */
int sz_disk_create(sz_client *c, const char *name, uint64_t size, uint32_t block_size,
                   const char *zone, struct sz_disk *out);

/** sz_disk_list(c, out, n): Caller frees *out with free(). */
int sz_disk_list(sz_client *c, struct sz_disk **out, size_t *n);

/** sz_disk_clone(c, snapshot, name, out): A new disk whose content is the
 *  snapshot's; no block data is copied. */
int sz_disk_clone(sz_client *c, const char *snapshot, const char *name, struct sz_disk *out);

/** sz_snapshot_create(c, disk, path, name, out): Snapshot the image at path
 *  (a file or block device no larger than the disk).  Sends only blocks not
 *  already stored, and commits only when every block is durable on its R
 *  replicas.  name may be NULL. */
int sz_snapshot_create(sz_client *c, const char *disk, const char *path, const char *name,
                       struct sz_snapshot *out);

/** sz_snapshot_list(c, disk, out, n): Committed snapshots, oldest first, of
 *  disk (or all disks when disk is NULL).  Caller frees *out with free(). */
int sz_snapshot_list(sz_client *c, const char *disk, struct sz_snapshot **out, size_t *n);

/** sz_restore(c, what, path, zone, out): Restore snapshot `what` (or, given a
 *  disk name, that disk's newest snapshot, or its clone source) into a sparse
 *  file at path.  Reads prefer replicas in zone (NULL: the disk's zone).
 *  Every block is authenticated and its id recomputed; the file appears at
 *  path only when all of it verified. */
int sz_restore(sz_client *c, const char *what, const char *path, const char *zone,
               struct sz_restore_result *out);

/** sz_restore_ex(c, what, path, opt, out): sz_restore with options. */
int sz_restore_ex(sz_client *c, const char *what, const char *path,
                  const struct sz_restore_options *opt, struct sz_restore_result *out);

/** sz_drill(c, disk, fail_zone, path, out): Disaster-recovery drill: restore
 *  the disk's newest committed snapshot without reading anything from
 *  fail_zone, re-read the result and check it against the digest recorded
 *  when the snapshot was committed.  path NULL: a temporary file, removed
 *  afterwards.  Returns 0 when the drill ran (check out->verified), or an
 *  error if it could not restore at all. */
int sz_drill(sz_client *c, const char *disk, const char *fail_zone, const char *path,
             struct sz_drill_result *out);

/** sz_cluster_scrub(c, out): Every up node re-verifies every stored block now,
 *  replacing bad copies from healthy replicas. */
int sz_cluster_scrub(sz_client *c, struct sz_scrub_result *out);

/** sz_node_drain(c, node) / sz_node_remove(c, node): Stop placing data on a
 *  node and move its data off; forget a drained (0 blocks) or dead node once
 *  nothing is under-replicated. */
int sz_node_drain(sz_client *c, const char *node);
int sz_node_remove(sz_client *c, const char *node);

#ifdef __cplusplus
}
#endif

#endif
