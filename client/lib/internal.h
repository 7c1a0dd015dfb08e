/*
 * internal: what the library's files share: the client handle, coordinator
 * calls, per-thread node connections, and the first-error slot.
 */
#ifndef SZ_CLIENT_INTERNAL_H
#define SZ_CLIENT_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "snapzone.h"

struct tp_ctx;
struct tp_sock;
struct tp_msg;
struct cmap;
struct seal_keys;

struct sz_client {
    char *coordinator;
    struct seal_keys *keys;
    struct tp_ctx *ctx;
    struct tp_sock *coord;
    int timeout_ms;
    int threads;
    pthread_mutex_t err_mu;
    int err_set;
    char err[512];
};

/** cl_seterr(c, rc, fmt, ...): Record the first error of a call; returns rc. */
int cl_seterr(sz_client *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/** cl_reset(c): Forget the last error (start of a public call). */
void cl_reset(sz_client *c);

/** cl_coord_call(c, type, env, frames, reply, rframes): rpc_call to the
 *  coordinator with the client's timeout; failures are recorded with
 *  cl_seterr (the reply's error text when there is one).  On failure *reply
 *  is NULL, except for SZ_EREPLICAS, whose reply lists the missing ids. */
int cl_coord_call(sz_client *c, int type, sz_env *env, struct tp_msg *frames, sz_env **reply,
                  struct tp_msg **rframes);

/** cl_get_map(c, out): The current cluster map.  Caller frees with cmap_free. */
int cl_get_map(sz_client *c, struct cmap **out);

/** cl_need_keys(c): SZ_EINVAL with a clear error if no key file was given. */
int cl_need_keys(sz_client *c);

/** cl_copy_snap(dst, src) / cl_copy_disk(dst, src): protobuf -> public structs. */
void cl_copy_snap(struct sz_snapshot *dst, const Sz__SnapInfo *src);
void cl_copy_disk(struct sz_disk *dst, const Sz__DiskInfo *src);

/* A worker's connections to storage nodes, one DEALER per endpoint. */
struct cl_pool;
int cl_pool_new(sz_client *c, struct cl_pool **out);
void cl_pool_free(struct cl_pool *p);
/** cl_pool_sock(p, endpoint): Borrowed; NULL on failure. */
struct tp_sock *cl_pool_sock(struct cl_pool *p, const char *endpoint);
/** cl_pool_drop(p, endpoint): Close the socket (after a timeout). */
void cl_pool_drop(struct cl_pool *p, const char *endpoint);

/* One data-path worker: its own connections, sealing context and buffer, so
 * workers share nothing but the operation's state (job). */
struct cl_worker {
    void *job;             /* borrowed: the operation's shared state */
    struct cl_pool *pool;
    struct seal_ctx *seal;
    uint8_t *buf;
};

/** cl_run_workers(c, n, max_block, bufsize, fn, job): Give n (1..32) workers
 *  a pool, a sealing context for blocks up to max_block and a bufsize-byte
 *  buffer, run fn(struct cl_worker *) on a thread each, and wait for all.
 *  If anything cannot be set up, no thread runs.  Return 0, SZ_ENOMEM or
 *  SZ_EINTERNAL (recorded with cl_seterr); the job reports its own errors. */
int cl_run_workers(sz_client *c, int n, uint32_t max_block, size_t bufsize,
                   void *(*fn)(void *), void *job);

/** cl_get_snapshot(c, what, snap, ids, n): Resolve a snapshot id (or a disk
 *  name: newest snapshot, else its clone source) and fetch its info and
 *  decoded manifest.  Caller frees *snap with codec_unpack_free(&snap->base)
 *  and *ids with free(). */
int cl_get_snapshot(sz_client *c, const char *what, Sz__SnapInfo **snap, uint8_t **ids,
                    size_t *n);

/** cl_restore_snap(c, s, ids, n, path, opt, out): Restore an already
 *  fetched snapshot (restore.c; used by restore and drill). */
int cl_restore_snap(sz_client *c, const Sz__SnapInfo *s, const uint8_t *ids, size_t n,
                    const char *path, const struct sz_restore_options *opt,
                    struct sz_restore_result *out);

/** cl_fpr_hex(fpr, out): 16 bytes -> 32 hex chars + NUL. */
void cl_fpr_hex(const uint8_t *fpr, size_t len, char out[33]);

#endif
