/*
 * kv: a small ordered key-value store; the only file that includes
 * rocksdb/c.h.  The block store index and the coordinator catalog both sit on
 * it.  RocksDB's char **errptr messages become SZ_E* codes here, logged once.
 * Bloom filters (10 bits/key) are always on, since dedup lookups mostly miss.
 */
#ifndef SZ_KV_H
#define SZ_KV_H

#include <stddef.h>
#include <stdint.h>

struct kv;
struct kv_batch;
struct kv_iter;

/** kv_open(dir, out): Open or create a database in dir.  Caller closes with
 *  kv_close.  Return 0 or SZ_EIO. */
int kv_open(const char *dir, struct kv **out);

/** kv_close(db): NULL is a no-op. */
void kv_close(struct kv *db);

/** kv_get(db, key, klen, val, vlen): Caller frees *val with free().
 *  Return 0, SZ_ENOENT or SZ_EIO. */
int kv_get(struct kv *db, const void *key, size_t klen, uint8_t **val, size_t *vlen);

/** kv_exists(db, key, klen): 1 if present, 0 if not, SZ_EIO on error. */
int kv_exists(struct kv *db, const void *key, size_t klen);

/** kv_put(db, key, klen, val, vlen, sync): Single put; sync fsyncs the WAL. */
int kv_put(struct kv *db, const void *key, size_t klen, const void *val, size_t vlen, int sync);

/** kv_del(db, key, klen, sync): Delete (absent keys are fine). */
int kv_del(struct kv *db, const void *key, size_t klen, int sync);

/** kv_batch_new(out) / kv_batch_put / kv_batch_del / kv_batch_free: an
 *  atomic write batch.  NULL is a no-op for kv_batch_free. */
int kv_batch_new(struct kv_batch **out);
void kv_batch_put(struct kv_batch *b, const void *key, size_t klen, const void *val, size_t vlen);
void kv_batch_del(struct kv_batch *b, const void *key, size_t klen);
size_t kv_batch_count(const struct kv_batch *b);
void kv_batch_free(struct kv_batch *b);

/** kv_write(db, b, sync): Apply b atomically; with sync, durable on return. */
int kv_write(struct kv *db, struct kv_batch *b, int sync);

/** kv_iter_new(db, prefix, plen, out): Iterate keys starting with prefix, in
 *  order.  Caller frees with kv_iter_free (NULL is a no-op). */
int kv_iter_new(struct kv *db, const void *prefix, size_t plen, struct kv_iter **out);

/** kv_iter_seek(it, key, klen): Continue from the first key >= key (which
 *  must start with the iterator's prefix).  Return 0 or SZ_EINVAL. */
int kv_iter_seek(struct kv_iter *it, const void *key, size_t klen);

/** kv_iter_next(it, key, klen, val, vlen): Borrowed pointers valid until the
 *  next call.  Return 1 if an entry was produced, 0 at the end, SZ_EIO. */
int kv_iter_next(struct kv_iter *it, const uint8_t **key, size_t *klen, const uint8_t **val,
                 size_t *vlen);
void kv_iter_free(struct kv_iter *it);

#endif
