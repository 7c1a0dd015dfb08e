/*
 * blockstore: a node's durable store of opaque (sealed) blocks.
 *
 * Data lives in append-only files DIR/data/NNNNNNNN.dat (rotated at 1 GiB);
 * each record is self-describing so the index could be rebuilt:
 *   u32le magic 0x535a4231 ("SZB1") | u32le len | u32le crc32c(payload) |
 *   u32le reserved | 32-byte id | payload(len)
 * The index (kv, in DIR/index) maps id -> (file u32, offset u64 of the record,
 * len u32, crc u32).  Durability order of bs_put_batch: records written, data
 * file fdatasync'd, then the index batch written with sync, then return.  A
 * crash before the index write leaves only unreferenced bytes.
 * The rotation size may be overridden (tests) with the environment variable
 * SNAPZONE_BS_FILE_MAX=<bytes>, read at bs_open.
 * Thread-safe: many threads may call any function at once (a struct bs_scan
 * belongs to one thread at a time).
 *
 * Maintenance (repair, scrub) uses bs_scan_* to list every stored id,
 * bs_verify to re-read one, bs_replace to re-store a damaged copy from a
 * healthy one, and bs_delete to drop an entry.  Deleted and replaced records
 * stay in the data files as unreferenced bytes (there is no compaction).
 * Writes of one id (put, replace, delete) are serialized: each claims the id
 * first, so a delete never interleaves with a put or replace of the same id.
 */
#ifndef SZ_BLOCKSTORE_H
#define SZ_BLOCKSTORE_H

#include <stddef.h>
#include <stdint.h>

#define BS_ID_BYTES 32

struct bs;

struct bs_item {
    const uint8_t *id;   /* 32 bytes */
    const void *data;    /* sealed bytes */
    size_t len;
    uint32_t crc;        /* crc32c(data, len), as sent by the writer */
};

/** bs_open(dir, out): Open or create a store in dir.  Caller closes with
 *  bs_close.  Return 0 or SZ_EIO. */
int bs_open(const char *dir, struct bs **out);

/** bs_close(bs): NULL is a no-op. */
void bs_close(struct bs *bs);

/** bs_have(bs, id): 1 if id is stored, 0 if not, or SZ_EIO. */
int bs_have(struct bs *bs, const uint8_t id[BS_ID_BYTES]);

/** bs_put_batch(bs, items, n, results): Store the items that are not stored
 *  yet; results[i] = 0 (now durable, or already was) or SZ_ECORRUPT when
 *  items[i].crc does not match the data.  Return 0 or SZ_EIO (nothing acked). */
int bs_put_batch(struct bs *bs, const struct bs_item *items, size_t n, int *results);

/** bs_get(bs, id, out, len): Read and verify the crc.  Caller frees *out with
 *  free().  Return 0, SZ_ENOENT, SZ_ECORRUPT (crc mismatch) or SZ_EIO. */
int bs_get(struct bs *bs, const uint8_t id[BS_ID_BYTES], uint8_t **out, size_t *len);

/** bs_stats(bs, blocks, bytes): Count of stored blocks and the physical bytes
 *  of their records (header included). */
void bs_stats(struct bs *bs, uint64_t *blocks, uint64_t *bytes);

/* ---- maintenance: scan, verify, replace, delete --------------------------- */

/* One index entry, as bs_scan_next lists it. */
struct bs_entry {
    uint8_t id[BS_ID_BYTES];
    uint32_t file; /* data file number (NNNNNNNN.dat) */
    uint64_t off;  /* record offset in that file */
    uint32_t len;  /* payload bytes */
    uint32_t crc;  /* crc32c of the payload, as recorded at put */
};

struct bs_scan;

/** bs_scan_new(bs, out): Start listing every stored id, in id order, over a
 *  consistent view of the index taken now (later puts and deletes are not
 *  seen).  Holds no lock between calls; puts, gets and deletes go on while a
 *  scan is open.  Free with bs_scan_free (NULL is a no-op) before bs_close.
 *  Return 0, SZ_ENOMEM or SZ_EIO. */
int bs_scan_new(struct bs *bs, struct bs_scan **out);

/** bs_scan_next(sc, out, max, n): Fill out[0..*n) with the next up to max
 *  entries; *n == 0 means the scan is complete.  Malformed index entries are
 *  logged and skipped.  Return 0 or SZ_EIO. */
int bs_scan_next(struct bs_scan *sc, struct bs_entry *out, size_t max, size_t *n);
void bs_scan_free(struct bs_scan *sc);

/* Health of a stored copy, as bs_verify finds it. */
enum bs_health {
    BS_HEALTHY = 0, /* record header matches the index and the payload crc verifies */
    BS_DAMAGED = 1, /* bad magic, length, id or crc in the header, or payload crc mismatch */
    BS_GONE = 2     /* the data file is missing (or unlinked while open) or ends
                       before the record does */
};

/** bs_verify(bs, id, health, crc): Re-read id's record from disk and check
 *  it like bs_get does, without logging.  On 0, *health is a bs_health and
 *  *crc the crc the index records for id (the crc of every good copy of id
 *  on any node).  Return 0, SZ_ENOENT (not stored), SZ_ECORRUPT (the index
 *  entry itself is malformed: crc unknown), SZ_ENOMEM or SZ_EIO. */
int bs_verify(struct bs *bs, const uint8_t id[BS_ID_BYTES], int *health, uint32_t *crc);

/** bs_tail(bs, file, off): The append position now: every record appended
 *  (space reserved) after this call lies at (file, off) or later in
 *  (file, offset) order, every earlier record before it.  Lets callers tell
 *  recently written blocks from older ones without timestamps. */
void bs_tail(struct bs *bs, uint32_t *file, uint64_t *off);

/** bs_replace(bs, id, data, len, crc): Re-store a stored id whose copy is
 *  bad: append a new record (fdatasync'd), then point the index entry at it
 *  (synced write).  Accepted only if crc32c(data) == crc and crc equals the
 *  crc the index records for id, so only a good copy of the same sealed
 *  bytes can replace it.  Stats: bytes move by the length difference (0 for
 *  a good copy); blocks is unchanged.  Return 0, SZ_ENOENT (not stored),
 *  SZ_ECORRUPT (data does not match crc), SZ_EINVAL (crc differs from the
 *  recorded one, or len > UINT32_MAX), SZ_ENOMEM or SZ_EIO. */
int bs_replace(struct bs *bs, const uint8_t id[BS_ID_BYTES], const void *data, size_t len,
               uint32_t crc);

/** bs_delete(bs, id): Remove id from the index with a synced write, then
 *  count it out of the stats (blocks - 1, bytes - its record).  Its bytes
 *  stay in the data file, unreferenced.  A malformed index entry is removed
 *  too (blocks - 1 only).  Return 0 (deleted), SZ_ENOENT (not stored) or
 *  SZ_EIO. */
int bs_delete(struct bs *bs, const uint8_t id[BS_ID_BYTES]);

#endif
