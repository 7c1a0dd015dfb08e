/*
 * kv: the ordered key-value store under the block index and the coordinator
 * catalog, a thin layer over the RocksDB C API.  This is the only file that
 * includes rocksdb/c.h and it exports only kv_* symbols.
 *
 * Invariants:
 *  - Every RocksDB char *err is turned into an SZ_E* code at the call site,
 *    logged once with log_err and released with rocksdb_free.
 *  - The option objects live exactly as long as the struct kv that uses them
 *    and are destroyed in kv_close; the bloom filter policy is owned by the
 *    table options (RocksDB's set_filter_policy takes it over).
 *  - Read and write options are built once in kv_open and only read later,
 *    so any number of threads may call kv_* on one db at the same time
 *    (RocksDB itself is thread-safe).  A kv_batch or kv_iter belongs to one
 *    thread at a time.
 *  - Values handed out by kv_get are our own malloc'd copies (free()).
 */
#include "kv.h"

#include <rocksdb/c.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"

#define KV_CACHE_BYTES (64u << 20)
#define KV_BLOOM_BITS 10.0
#define KV_LOG_FILES 4

struct kv {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_block_based_table_options_t *table;
    rocksdb_cache_t *cache;
    rocksdb_readoptions_t *ropts;
    rocksdb_writeoptions_t *wsync;
    rocksdb_writeoptions_t *wnosync;
};

struct kv_batch {
    rocksdb_writebatch_t *wb;
};

struct kv_iter {
    rocksdb_iterator_t *it;
    uint8_t *prefix;
    size_t plen;
    int started;
    int done; /* past the prefix or the end: never move the iterator again */
};

/* Turn a RocksDB error string into SZ_EIO, logging it once; NULL is fine. */
static int kv_check(char *err, const char *what)
{
    if (err == NULL)
        return 0;
    log_err("kv: %s: %s", what, err);
    rocksdb_free(err);
    return SZ_EIO;
}

static void kv_free_options(struct kv *kv)
{
    rocksdb_writeoptions_destroy(kv->wnosync);
    rocksdb_writeoptions_destroy(kv->wsync);
    rocksdb_readoptions_destroy(kv->ropts);
    rocksdb_options_destroy(kv->opts);
    rocksdb_block_based_options_destroy(kv->table);
    rocksdb_cache_destroy(kv->cache);
}

static void kv_build_options(struct kv *kv, int compression)
{
    kv->cache = rocksdb_cache_create_lru(KV_CACHE_BYTES);
    kv->table = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_block_cache(kv->table, kv->cache);
    /* The table options take ownership of the policy. */
    rocksdb_block_based_options_set_filter_policy(kv->table,
                                                  rocksdb_filterpolicy_create_bloom(KV_BLOOM_BITS));

    kv->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(kv->opts, 1);
    rocksdb_options_increase_parallelism(kv->opts, 2);
    rocksdb_options_set_compression(kv->opts, compression);
    rocksdb_options_set_keep_log_file_num(kv->opts, KV_LOG_FILES);
    rocksdb_options_set_block_based_table_factory(kv->opts, kv->table);

    kv->ropts = rocksdb_readoptions_create();
    kv->wsync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(kv->wsync, 1);
    kv->wnosync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(kv->wnosync, 0);
}

/* Open with lz4; fall back to no compression if this RocksDB lacks lz4. */
static int kv_open_db(struct kv *kv, const char *dir)
{
    char *err = NULL;

    kv_build_options(kv, rocksdb_lz4_compression);
    kv->db = rocksdb_open(kv->opts, dir, &err);
    if (kv->db == NULL && err != NULL && strstr(err, "not linked") != NULL) {
        rocksdb_free(err);
        err = NULL;
        log_warn("kv: lz4 unavailable in RocksDB, opening %s uncompressed", dir);
        kv_free_options(kv);
        kv_build_options(kv, rocksdb_no_compression);
        kv->db = rocksdb_open(kv->opts, dir, &err);
    }
    if (kv->db == NULL && err == NULL)
        return SZ_EIO;
    return kv_check(err, dir);
}

int kv_open(const char *dir, struct kv **out)
{
    struct kv *kv = calloc(1, sizeof(*kv));
    int rc;

    *out = NULL;
    if (kv == NULL)
        return SZ_EIO;
    rc = kv_open_db(kv, dir);
    if (rc != 0)
        goto fail;
    *out = kv;
    return 0;
fail:
    if (kv->db != NULL)
        rocksdb_close(kv->db);
    kv_free_options(kv);
    free(kv);
    return rc;
}

void kv_close(struct kv *db)
{
    if (db == NULL)
        return;
    rocksdb_close(db->db);
    kv_free_options(db);
    free(db);
}

static rocksdb_writeoptions_t *kv_wopts(struct kv *db, int sync)
{
    return sync ? db->wsync : db->wnosync;
}

int kv_get(struct kv *db, const void *key, size_t klen, uint8_t **val, size_t *vlen)
{
    rocksdb_pinnableslice_t *ps;
    const char *v;
    char *err = NULL;
    size_t n;
    int rc = 0;

    *val = NULL;
    *vlen = 0;
    ps = rocksdb_get_pinned(db->db, db->ropts, key, klen, &err);
    if (err != NULL)
        return kv_check(err, "get");
    if (ps == NULL)
        return SZ_ENOENT;
    v = rocksdb_pinnableslice_value(ps, &n);
    *val = malloc(n > 0 ? n : 1);
    if (*val == NULL) {
        rc = SZ_ENOMEM;
        goto out;
    }
    if (n > 0)
        memcpy(*val, v, n);
    *vlen = n;
out:
    rocksdb_pinnableslice_destroy(ps);
    return rc;
}

int kv_exists(struct kv *db, const void *key, size_t klen)
{
    rocksdb_pinnableslice_t *ps;
    char *err = NULL;

    ps = rocksdb_get_pinned(db->db, db->ropts, key, klen, &err);
    if (err != NULL)
        return kv_check(err, "exists");
    if (ps == NULL)
        return 0;
    rocksdb_pinnableslice_destroy(ps);
    return 1;
}

int kv_put(struct kv *db, const void *key, size_t klen, const void *val, size_t vlen, int sync)
{
    char *err = NULL;

    rocksdb_put(db->db, kv_wopts(db, sync), key, klen, val, vlen, &err);
    return kv_check(err, "put");
}

int kv_del(struct kv *db, const void *key, size_t klen, int sync)
{
    char *err = NULL;

    rocksdb_delete(db->db, kv_wopts(db, sync), key, klen, &err);
    return kv_check(err, "delete");
}

int kv_batch_new(struct kv_batch **out)
{
    struct kv_batch *b = malloc(sizeof(*b));

    *out = NULL;
    if (b == NULL)
        return SZ_ENOMEM;
    b->wb = rocksdb_writebatch_create();
    *out = b;
    return 0;
}

void kv_batch_put(struct kv_batch *b, const void *key, size_t klen, const void *val, size_t vlen)
{
    rocksdb_writebatch_put(b->wb, key, klen, val, vlen);
}

void kv_batch_del(struct kv_batch *b, const void *key, size_t klen)
{
    rocksdb_writebatch_delete(b->wb, key, klen);
}

size_t kv_batch_count(const struct kv_batch *b)
{
    return (size_t)rocksdb_writebatch_count(b->wb);
}

void kv_batch_free(struct kv_batch *b)
{
    if (b == NULL)
        return;
    rocksdb_writebatch_destroy(b->wb);
    free(b);
}

int kv_write(struct kv *db, struct kv_batch *b, int sync)
{
    char *err = NULL;

    rocksdb_write(db->db, kv_wopts(db, sync), b->wb, &err);
    return kv_check(err, "write batch");
}

int kv_iter_new(struct kv *db, const void *prefix, size_t plen, struct kv_iter **out)
{
    struct kv_iter *it = calloc(1, sizeof(*it));

    *out = NULL;
    if (it == NULL)
        return SZ_ENOMEM;
    it->prefix = malloc(plen > 0 ? plen : 1);
    if (it->prefix == NULL) {
        free(it);
        return SZ_ENOMEM;
    }
    if (plen > 0)
        memcpy(it->prefix, prefix, plen);
    it->plen = plen;
    it->it = rocksdb_create_iterator(db->db, db->ropts);
    if (plen > 0)
        rocksdb_iter_seek(it->it, (const char *)it->prefix, plen);
    else
        rocksdb_iter_seek_to_first(it->it);
    *out = it;
    return 0;
}

int kv_iter_seek(struct kv_iter *it, const void *key, size_t klen)
{
    if (klen < it->plen || memcmp(key, it->prefix, it->plen) != 0)
        return SZ_EINVAL;
    rocksdb_iter_seek(it->it, (const char *)key, klen);
    it->started = 0;
    it->done = 0;
    return 0;
}

int kv_iter_next(struct kv_iter *it, const uint8_t **key, size_t *klen, const uint8_t **val,
                 size_t *vlen)
{
    char *err = NULL;
    const char *k;
    size_t kl;

    if (it->done)
        return 0;
    if (it->started)
        rocksdb_iter_next(it->it);
    it->started = 1;
    if (!rocksdb_iter_valid(it->it)) {
        it->done = 1;
        rocksdb_iter_get_error(it->it, &err);
        return kv_check(err, "iterate");
    }
    k = rocksdb_iter_key(it->it, &kl);
    if (kl < it->plen || memcmp(k, it->prefix, it->plen) != 0) {
        it->done = 1;
        return 0;
    }
    *key = (const uint8_t *)k;
    *klen = kl;
    *val = (const uint8_t *)rocksdb_iter_value(it->it, vlen);
    return 1;
}

void kv_iter_free(struct kv_iter *it)
{
    if (it == NULL)
        return;
    rocksdb_iter_destroy(it->it);
    free(it->prefix);
    free(it);
}
