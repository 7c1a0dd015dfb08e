/*
 * backup: sz_snapshot_create, the write data path.
 *
 *   main thread:  DISK_GET, MAP_GET, SNAP_BEGIN, parent manifest (SNAP_GET)
 *   N workers:    take the next batch of consecutive blocks and, per batch:
 *                 read -> zero check -> keyed id -> skip ids the parent has
 *                 or another worker already claimed -> HAVE at the write
 *                 target -> seal (zstd + AEAD) -> PUT, which the target node
 *                 replicates; check every block reached R durable copies
 *   main thread:  SNAP_COMMIT with the manifest (delta against the parent);
 *                 if the coordinator names blocks that are not on all R
 *                 replicas, send those again (the nodes re-replicate) and
 *                 commit once more; on failure, SNAP_ABORT.
 *
 * Every worker owns its sockets, sealing context and buffers, so workers
 * share only the manifest array (disjoint slots), the claim set (mutex) and
 * counters (atomics).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clustermap.h"
#include "crc32c.h"
#include "err.h"
#include "fsutil.h"
#include "idset.h"
#include "internal.h"
#include "manifest.h"
#include "rpc.h"
#include "seal.h"
#include "transport.h"

#define BK_BATCH_BYTES (4u << 20)

struct bk {
    sz_client *c;
    int fd;
    uint64_t size;
    uint32_t bs;
    size_t nblocks;
    size_t batch;       /* blocks per batch */
    const char *zone;   /* the disk's zone: writes prefer a replica there */
    struct cmap *map;
    uint8_t *ids;       /* manifest being built, nblocks * 32 */
    struct idset *parent;
    struct idset *claimed;
    pthread_mutex_t mu;
    atomic_size_t next;
    atomic_int failed;
    atomic_uint_fast64_t new_blocks, new_bytes;
    /* resend mode: only these block indices, no HAVE check */
    const size_t *only;
    size_t nonly;
};

static struct bk *bk_of(const struct cl_worker *w)
{
    return w->job;
}

/* One outgoing request to one node. */
struct bk_req {
    long node;
    size_t n;
    size_t slot[SZ_MAX_BATCH]; /* index into the batch */
    uint64_t req_id;
    struct tp_sock *sock;
};

static int bk_is_zero(const uint8_t *p, size_t len)
{
    return len == 0 || (p[0] == 0 && memcmp(p, p + 1, len - 1) == 0);
}

static size_t bk_block_len(const struct bk *bk, size_t idx)
{
    uint64_t off = (uint64_t)idx * bk->bs;
    return (size_t)(bk->size - off < bk->bs ? bk->size - off : bk->bs);
}

/* Where a block is written: its replica in the disk's zone, else the first. */
static long bk_target(const struct bk *bk, const uint8_t *id)
{
    size_t place[CMAP_MAX_REPLICAS];
    size_t k = cmap_place(bk->map, id, place, CMAP_MAX_REPLICAS);

    if (k == 0)
        return -1;
    for (size_t j = 0; j < k; j++)
        if (strcmp(bk->map->nodes[place[j]].zone, bk->zone) == 0)
            return (long)place[j];
    return (long)place[0];
}

static int bk_fail(struct bk *bk, int rc, const char *fmt, const char *arg)
{
    atomic_store(&bk->failed, 1);
    return cl_seterr(bk->c, rc, fmt, arg);
}

static size_t bk_group(struct bk *bk, const size_t *slots, size_t n, const uint8_t *const *ids,
                       struct bk_req *reqs)
{
    size_t nreq = 0;

    for (size_t i = 0; i < n; i++) {
        long t = bk_target(bk, ids[slots[i]]);
        size_t q;
        for (q = 0; q < nreq && reqs[q].node != t; q++)
            ;
        if (q == nreq) {
            memset(&reqs[q], 0, sizeof(reqs[q]));
            reqs[q].node = t;
            nreq++;
        }
        reqs[q].slot[reqs[q].n++] = slots[i];
    }
    return nreq;
}

/* HAVE at each target: clear want[slot] for blocks already stored there. */
static int bk_have(struct cl_worker *w, const uint8_t *const *ids, size_t *slots, size_t *n)
{
    struct bk *bk = bk_of(w);
    struct bk_req reqs[SZ_MAX_BATCH];
    uint64_t deadline = fsu_now_ms() + (uint64_t)bk->c->timeout_ms;
    size_t nreq = bk_group(bk, slots, *n, ids, reqs), keep = 0;
    int rc = 0;

    for (size_t q = 0; q < nreq; q++) {
        ProtobufCBinaryData pb[SZ_MAX_BATCH];
        Sz__BlockIds b = SZ__BLOCK_IDS__INIT;
        sz_env e = SZ__ENVELOPE__INIT;
        const char *ep = bk->map->nodes[reqs[q].node].endpoint;
        if (reqs[q].node < 0 || (reqs[q].sock = cl_pool_sock(w->pool, ep)) == NULL)
            return bk_fail(bk, SZ_EUNAVAIL, "no storage node for a block (%s)", "placement");
        for (size_t k = 0; k < reqs[q].n; k++) {
            pb[k].data = (uint8_t *)ids[reqs[q].slot[k]];
            pb[k].len = 32;
        }
        b.n_ids = reqs[q].n;
        b.ids = pb;
        e.body_case = SZ__ENVELOPE__BODY_BLOCK_IDS;
        e.block_ids = &b;
        if ((rc = rpc_send_req(reqs[q].sock, SZ__MSG_TYPE__BLOCK_HAVE, &e, NULL,
                               &reqs[q].req_id)) != 0)
            return bk_fail(bk, rc, "cannot reach storage node %s", ep);
    }
    for (size_t q = 0; q < nreq; q++) {
        const char *ep = bk->map->nodes[reqs[q].node].endpoint;
        sz_env *rep = NULL;
        rc = rpc_recv_reply(reqs[q].sock, reqs[q].req_id, deadline, &rep, NULL);
        if (rc != 0 || rep->reply->have == NULL || rep->reply->have->n_have != reqs[q].n) {
            codec_free(rep);
            if (rc == SZ_ETIMEDOUT)
                cl_pool_drop(w->pool, ep);
            return bk_fail(bk, rc ? rc : SZ_EPROTO, "storage node %s failed a lookup", ep);
        }
        for (size_t k = 0; k < reqs[q].n; k++)
            if (!rep->reply->have->have[k])
                slots[keep++] = reqs[q].slot[k];
        codec_free(rep);
    }
    *n = keep;
    return 0;
}

static int bk_put_send(struct cl_worker *w, struct bk_req *r, const uint8_t *const *ids,
                       const uint8_t *const *data, const size_t *lens)
{
    struct bk *bk = bk_of(w);
    ProtobufCBinaryData pb[SZ_MAX_BATCH];
    uint32_t crcs[SZ_MAX_BATCH];
    Sz__BlockPut p = SZ__BLOCK_PUT__INIT;
    sz_env e = SZ__ENVELOPE__INIT;
    struct tp_msg *frames;
    const char *ep = bk->map->nodes[r->node].endpoint;
    int rc;

    if ((r->sock = cl_pool_sock(w->pool, ep)) == NULL)
        return bk_fail(bk, SZ_EUNAVAIL, "cannot reach storage node %s", ep);
    if ((rc = tp_msg_new(&frames)) != 0)
        return rc;
    for (size_t k = 0; k < r->n; k++) {
        size_t s = r->slot[k];
        size_t cap = seal_bound(lens[s]), out;
        uint8_t *sealed = malloc(cap);
        if (sealed == NULL ||
            (rc = seal_block(w->seal, ids[s], data[s], lens[s], sealed, cap, &out)) != 0) {
            free(sealed);
            tp_msg_free(frames);
            return bk_fail(bk, rc ? rc : SZ_ENOMEM, "cannot seal a block%s", "");
        }
        pb[k].data = (uint8_t *)ids[s];
        pb[k].len = 32;
        crcs[k] = crc32c(0, sealed, out);
        if ((rc = tp_msg_add_take(frames, sealed, out)) != 0) {
            tp_msg_free(frames);
            return rc;
        }
    }
    p.n_ids = p.n_crcs = r->n;
    p.ids = pb;
    p.crcs = crcs;
    p.map_epoch = bk->map->epoch;
    e.body_case = SZ__ENVELOPE__BODY_BLOCK_PUT;
    e.block_put = &p;
    if ((rc = rpc_send_req(r->sock, SZ__MSG_TYPE__BLOCK_PUT, &e, frames, &r->req_id)) != 0)
        return bk_fail(bk, rc, "cannot send to storage node %s", ep);
    return 0;
}

static int bk_put_collect(struct cl_worker *w, struct bk_req *r, uint64_t deadline,
                          const size_t *lens)
{
    struct bk *bk = bk_of(w);
    const char *ep = bk->map->nodes[r->node].endpoint;
    sz_env *rep = NULL;
    uint64_t bytes = 0;
    int rc = rpc_recv_reply(r->sock, r->req_id, deadline, &rep, NULL);

    if (rc != 0 || rep->reply->put == NULL || rep->reply->put->n_replicas != r->n) {
        if (rc == SZ_ETIMEDOUT)
            cl_pool_drop(w->pool, ep);
        if (rep && rpc_error_text(rep)[0])
            cl_seterr(bk->c, rc, "storage node %s: %s", ep, rpc_error_text(rep));
        codec_free(rep);
        return bk_fail(bk, rc ? rc : SZ_EPROTO, "storage node %s failed a write", ep);
    }
    for (size_t k = 0; k < r->n; k++) {
        /* The degraded-write rule (see docs/DESIGN.md): W = min(R, 2) durable
         * copies now; the coordinator checks they span W zones, and repair
         * brings the block back to R. */
        uint32_t need = bk->map->replicas < 2 ? bk->map->replicas : 2;
        if (rep->reply->put->replicas[k] < need) {
            char why[320];
            snprintf(why, sizeof(why), "a block is durable on only %u node(s), %u are needed: "
                     "too many storage nodes are down or unreachable (write via %s)",
                     rep->reply->put->replicas[k], need, ep);
            codec_free(rep);
            return bk_fail(bk, SZ_EREPLICAS, "%s", why);
        }
        bytes += lens[r->slot[k]];
    }
    codec_free(rep);
    atomic_fetch_add(&bk->new_blocks, r->n);
    atomic_fetch_add(&bk->new_bytes, bytes);
    return 0;
}

static int bk_put(struct cl_worker *w, const uint8_t *const *ids, const uint8_t *const *data,
                  const size_t *lens, const size_t *slots, size_t n)
{
    struct bk_req reqs[SZ_MAX_BATCH];
    size_t nreq = bk_group(bk_of(w), slots, n, ids, reqs);
    uint64_t deadline;
    int rc = 0;

    for (size_t q = 0; q < nreq; q++) {
        if (reqs[q].node < 0)
            return bk_fail(bk_of(w), SZ_EUNAVAIL, "no storage node for a block%s", "");
        if ((rc = bk_put_send(w, &reqs[q], ids, data, lens)) != 0)
            return rc;
    }
    deadline = fsu_now_ms() + (uint64_t)bk_of(w)->c->timeout_ms;
    for (size_t q = 0; q < nreq; q++)
        if ((rc = bk_put_collect(w, &reqs[q], deadline, lens)) != 0)
            return rc;
    return 0;
}

static int bk_read(struct bk *bk, uint8_t *buf, uint64_t off, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t r = pread(bk->fd, buf + got, len - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return bk_fail(bk, SZ_EIO, "cannot read the image: %s",
                           r == 0 ? "file shrank while reading" : strerror(errno));
        got += (size_t)r;
    }
    return 0;
}

/* Process blocks idx[0..n) (consecutive when !bk->only). */
static int bk_batch(struct cl_worker *w, const size_t *idx, size_t n)
{
    struct bk *bk = bk_of(w);
    const uint8_t *ids[SZ_MAX_BATCH], *data[SZ_MAX_BATCH];
    size_t lens[SZ_MAX_BATCH], slots[SZ_MAX_BATCH], nslots = 0;
    int rc;

    for (size_t i = 0; i < n; i++) {
        uint8_t *p = w->buf + (size_t)i * bk->bs;
        lens[i] = bk_block_len(bk, idx[i]);
        data[i] = p;
        ids[i] = bk->ids + 32 * idx[i];
        if ((rc = bk_read(bk, p, (uint64_t)idx[i] * bk->bs, lens[i])) != 0)
            return rc;
        if (bk_is_zero(p, lens[i])) {
            memset(bk->ids + 32 * idx[i], 0, 32);
            continue;
        }
        seal_block_id(bk->c->keys, p, lens[i], bk->ids + 32 * idx[i]);
        if (bk->only != NULL) {
            slots[nslots++] = i;
            continue;
        }
        if (bk->parent != NULL && idset_has(bk->parent, ids[i]))
            continue;
        pthread_mutex_lock(&bk->mu);
        rc = idset_add(bk->claimed, ids[i]);
        pthread_mutex_unlock(&bk->mu);
        if (rc < 0)
            return bk_fail(bk, rc, "out of memory%s", "");
        if (rc == 1)
            slots[nslots++] = i;
    }
    if (nslots > 0 && bk->only == NULL && (rc = bk_have(w, ids, slots, &nslots)) != 0)
        return rc;
    if (nslots == 0)
        return 0;
    return bk_put(w, ids, data, lens, slots, nslots);
}

static void *bk_worker_main(void *arg)
{
    struct cl_worker *w = arg;
    struct bk *bk = bk_of(w);
    size_t idx[SZ_MAX_BATCH];

    while (!atomic_load(&bk->failed)) {
        size_t b = atomic_fetch_add(&bk->next, 1), n = 0;
        if (bk->only != NULL) {
            for (size_t i = b * bk->batch; i < bk->nonly && n < bk->batch; i++)
                idx[n++] = bk->only[i];
        } else {
            for (size_t i = b * bk->batch; i < bk->nblocks && n < bk->batch; i++)
                idx[n++] = i;
        }
        if (n == 0 || bk_batch(w, idx, n) != 0)
            break;
    }
    return NULL;
}

static int bk_run(struct bk *bk)
{
    int rc;

    atomic_store(&bk->next, 0);
    rc = cl_run_workers(bk->c, bk->c->threads, bk->bs, (size_t)bk->batch * bk->bs,
                        bk_worker_main, bk);
    return rc ? rc : (atomic_load(&bk->failed) ? SZ_EIO : 0);
}

/* ---- catalog side ----------------------------------------------------- */

static int bk_begin(sz_client *c, const char *disk, const char *name, Sz__DiskInfo **d,
                    Sz__SnapInfo **snap)
{
    Sz__NameRef nr = SZ__NAME_REF__INIT;
    Sz__SnapBegin sb = SZ__SNAP_BEGIN__INIT;
    sz_env env = SZ__ENVELOPE__INIT, *rep = NULL;
    uint8_t *buf;
    size_t len;
    int rc;

    nr.name = (char *)disk;
    env.body_case = SZ__ENVELOPE__BODY_NAME_REF;
    env.name_ref = &nr;
    if ((rc = cl_coord_call(c, SZ__MSG_TYPE__DISK_GET, &env, NULL, &rep, NULL)) != 0)
        return rc;
    rc = codec_pack(&rep->reply->disk->base, &buf, &len);
    codec_free(rep);
    if (rc != 0 || (rc = codec_unpack(&sz__disk_info__descriptor, buf, len,
                                      (ProtobufCMessage **)d)) != 0) {
        free(buf);
        return rc;
    }
    free(buf);
    sb.disk = (char *)disk;
    sb.name = (char *)(name ? name : "");
    sb.key_fingerprint.data = (uint8_t *)seal_fingerprint(c->keys);
    sb.key_fingerprint.len = SEAL_FPR_BYTES;
    env.body_case = SZ__ENVELOPE__BODY_SNAP_BEGIN;
    env.snap_begin = &sb;
    rep = NULL;
    if ((rc = cl_coord_call(c, SZ__MSG_TYPE__SNAP_BEGIN, &env, NULL, &rep, NULL)) != 0)
        return rc;
    rc = codec_pack(&rep->reply->snap->base, &buf, &len);
    codec_free(rep);
    if (rc == 0)
        rc = codec_unpack(&sz__snap_info__descriptor, buf, len, (ProtobufCMessage **)snap);
    free(buf);
    return rc;
}

static void bk_abort(sz_client *c, const char *id)
{
    Sz__NameRef nr = SZ__NAME_REF__INIT;
    sz_env env = SZ__ENVELOPE__INIT, *rep = NULL;
    int saved = c->err_set;

    c->err_set = 1; /* keep the first error */
    nr.name = (char *)id;
    env.body_case = SZ__ENVELOPE__BODY_NAME_REF;
    env.name_ref = &nr;
    cl_coord_call(c, SZ__MSG_TYPE__SNAP_ABORT, &env, NULL, &rep, NULL);
    codec_free(rep);
    c->err_set = saved;
}

/* Commit; on SZ_EREPLICAS, *missing gets the ids the coordinator named. */
static int bk_commit(struct bk *bk, const Sz__SnapInfo *s, const uint8_t *pids, size_t pn,
                     struct sz_snapshot *out, struct idset **missing)
{
    Sz__SnapCommit sc = SZ__SNAP_COMMIT__INIT;
    sz_env env = SZ__ENVELOPE__INIT, *rep = NULL;
    uint8_t digest[SEAL_ID_BYTES], *mf;
    struct tp_msg *frames;
    size_t mflen;
    int rc;

    if ((rc = mf_encode(bk->ids, bk->nblocks, pids, pn, &mf, &mflen)) != 0)
        return rc;
    if ((rc = tp_msg_new(&frames)) != 0) {
        free(mf);
        return rc;
    }
    if ((rc = tp_msg_add_take(frames, mf, mflen)) != 0) {
        tp_msg_free(frames);
        return rc;
    }
    seal_digest(bk->c->keys, bk->ids, bk->nblocks * 32, digest);
    sc.id = s->id;
    sc.logical_bytes = bk->size;
    sc.new_blocks = atomic_load(&bk->new_blocks);
    sc.new_bytes = atomic_load(&bk->new_bytes);
    sc.digest.data = digest;
    sc.digest.len = sizeof(digest);
    sc.manifest_parent = pids ? s->parent : "";
    env.body_case = SZ__ENVELOPE__BODY_SNAP_COMMIT;
    env.snap_commit = &sc;
    rc = cl_coord_call(bk->c, SZ__MSG_TYPE__SNAP_COMMIT, &env, frames, &rep, NULL);
    if (rc == 0 && rep->reply->snap)
        cl_copy_snap(out, rep->reply->snap);
    if (rc == SZ_EREPLICAS && rep && rep->reply->n_missing > 0 &&
        idset_new(rep->reply->n_missing, missing) == 0) {
        for (size_t i = 0; i < rep->reply->n_missing; i++)
            idset_add(*missing, rep->reply->missing[i].data);
    }
    codec_free(rep);
    return rc;
}

/* Send again the blocks whose ids the coordinator could not confirm. */
static int bk_resend(struct bk *bk, struct idset *missing)
{
    size_t *only = malloc(bk->nblocks * sizeof(*only)), n = 0;
    int rc;

    if (only == NULL)
        return SZ_ENOMEM;
    for (size_t i = 0; i < bk->nblocks; i++) {
        const uint8_t *id = bk->ids + 32 * i;
        if (idset_has(missing, id)) {
            only[n++] = i;
            idset_add(bk->claimed, id);
        }
    }
    bk->only = only;
    bk->nonly = n;
    rc = bk_run(bk);
    bk->only = NULL;
    free(only);
    return rc;
}

static int bk_parent(sz_client *c, const Sz__SnapInfo *s, uint32_t bs, uint8_t **pids,
                     size_t *pn, struct idset **set)
{
    Sz__SnapInfo *ps = NULL;
    int rc;

    *pids = NULL;
    *pn = 0;
    *set = NULL;
    if (s->parent == NULL || s->parent[0] == '\0')
        return 0;
    if ((rc = cl_get_snapshot(c, s->parent, &ps, pids, pn)) != 0)
        return rc;
    if (ps->block_size != bs) { /* no common block grid: start afresh */
        free(*pids);
        *pids = NULL;
        *pn = 0;
    } else if ((rc = idset_new(*pn, set)) == 0) {
        for (size_t i = 0; i < *pn; i++)
            idset_add(*set, *pids + 32 * i);
    }
    codec_unpack_free(&ps->base);
    return rc;
}

static int bk_open_image(sz_client *c, const char *path, uint64_t disk_size, int *fd,
                         uint64_t *size)
{
    struct stat st;

    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return cl_seterr(c, errno == ENOENT ? SZ_ENOENT : SZ_EIO, "cannot open image '%s': %s",
                         path, strerror(errno));
    if (fstat(*fd, &st) != 0)
        return cl_seterr(c, SZ_EIO, "cannot stat '%s'", path);
    if (S_ISBLK(st.st_mode)) {
        off_t end = lseek(*fd, 0, SEEK_END);
        *size = end > 0 ? (uint64_t)end : 0;
    } else if (S_ISREG(st.st_mode)) {
        *size = (uint64_t)st.st_size;
    } else {
        return cl_seterr(c, SZ_EINVAL, "'%s' is not a file or block device", path);
    }
    if (*size > disk_size)
        return cl_seterr(c, SZ_EINVAL, "image '%s' (%llu bytes) is larger than the disk (%llu)",
                         path, (unsigned long long)*size, (unsigned long long)disk_size);
    posix_fadvise(*fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    return 0;
}

int sz_snapshot_create(sz_client *c, const char *disk, const char *path, const char *name,
                       struct sz_snapshot *out)
{
    struct bk bk = {.c = c, .fd = -1};
    Sz__DiskInfo *d = NULL;
    Sz__SnapInfo *s = NULL;
    struct idset *missing = NULL;
    uint8_t *pids = NULL;
    size_t pn = 0;
    int rc;

    cl_reset(c);
    if ((rc = cl_need_keys(c)) != 0)
        return rc;
    pthread_mutex_init(&bk.mu, NULL);
    if ((rc = bk_begin(c, disk, name, &d, &s)) != 0)
        goto out;
    if ((rc = bk_open_image(c, path, d->size, &bk.fd, &bk.size)) != 0)
        goto abort;
    bk.bs = d->block_size;
    bk.zone = d->zone;
    bk.nblocks = (size_t)((bk.size + bk.bs - 1) / bk.bs);
    bk.batch = BK_BATCH_BYTES / bk.bs ? BK_BATCH_BYTES / bk.bs : 1;
    if (bk.batch > SZ_MAX_BATCH)
        bk.batch = SZ_MAX_BATCH;
    if ((rc = cl_get_map(c, &bk.map)) != 0 ||
        (rc = bk_parent(c, s, bk.bs, &pids, &pn, &bk.parent)) != 0)
        goto abort;
    if (cmap_nzones(bk.map) == 0 || bk.map->nnodes < bk.map->replicas) {
        rc = cl_seterr(c, SZ_EREPLICAS, "cluster has %zu nodes, fewer than %u replicas",
                       bk.map->nnodes, bk.map->replicas);
        goto abort;
    }
    if ((bk.ids = calloc(bk.nblocks ? bk.nblocks : 1, 32)) == NULL ||
        idset_new(bk.nblocks, &bk.claimed) != 0) {
        rc = SZ_ENOMEM;
        goto abort;
    }
    if ((rc = bk_run(&bk)) != 0)
        goto abort;
    rc = bk_commit(&bk, s, pids, pn, out, &missing);
    if (rc == SZ_EREPLICAS && missing != NULL) {
        uint64_t nb = atomic_load(&bk.new_blocks), nby = atomic_load(&bk.new_bytes);
        c->err_set = 0;
        rc = bk_resend(&bk, missing);
        idset_free(missing);
        missing = NULL;
        atomic_store(&bk.new_blocks, nb); /* resent blocks were not new */
        atomic_store(&bk.new_bytes, nby);
        if (rc == 0)
            rc = bk_commit(&bk, s, pids, pn, out, &missing);
    }
    if (rc == 0)
        goto out;
abort:
    bk_abort(c, s->id);
out:
    if (bk.fd >= 0)
        close(bk.fd);
    idset_free(missing);
    idset_free(bk.claimed);
    idset_free(bk.parent);
    free(bk.ids);
    free(pids);
    cmap_free(bk.map);
    if (s)
        codec_unpack_free(&s->base);
    if (d)
        codec_unpack_free(&d->base);
    pthread_mutex_destroy(&bk.mu);
    return rc;
}
