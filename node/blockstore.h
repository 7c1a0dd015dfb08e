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
 * Thread-safe: many threads may call any function at once.
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

#endif
