/*
 * restore: sz_restore, the read data path.
 *
 * The manifest's distinct non-zero ids are sorted, each with the list of
 * block indices that hold it, and fetched in disk order.  N workers take
 * batches of ids and ask each id's best candidate; for every block they
 * authenticate and decrypt it, recompute its keyed id, and write it at every
 * index that holds it.  Candidates, best first (rs_order): the block's
 * placement over all known nodes (where it was written) and its placement
 * over live nodes (where repair puts it), UP before SUSPECT, same zone
 * first; then any other live node.  DOWN nodes and a drill's failed zone are
 * never asked.  A block that fails anywhere (timeout, error, failed AEAD or
 * id check) is asked of the next candidate; only when all failed does the
 * restore fail.  Every request has a timeout, so a dead or cut-off node
 * costs one timeout per batch, never a hang.
 * Zero blocks are never written, so the output is sparse.  The output is
 * built in PATH.part and renamed to PATH only when all of it verified, so a
 * failed restore (a wrong key, say) never leaves wrong data at PATH.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clustermap.h"
#include "err.h"
#include "fsutil.h"
#include "internal.h"
#include "manifest.h"
#include "rpc.h"
#include "seal.h"
#include "transport.h"

#define RS_BATCH_BYTES (4u << 20)
#define RS_MAX_TRIES 16
#define RS_WRITEBACK (32ull << 20)

struct rs_ent {
    const uint8_t *id;
    size_t index; /* block index */
};

struct rs {
    sz_client *c;
    int fd;
    uint64_t size;
    uint32_t bs;
    const char *zone;
    const char *fail_zone;
    struct cmap *map;
    struct cmap *homemap; /* same nodes, all eligible: original placement */
    const char *zones[64]; /* sorted zone names, for zones_used */
    size_t nzones;
    atomic_uint_fast64_t zones_used;
    atomic_uint_fast64_t failovers;
    atomic_int *slow;      /* per node: timed out during this restore */
    atomic_uint_fast64_t written;
    struct rs_ent *ents; /* sorted by id; equal ids adjacent */
    size_t nents;
    size_t *groups; /* start of each distinct id's run in ents, in disk order */
    size_t ngroups;
    size_t batch;
    atomic_size_t next;
    atomic_int failed;
    atomic_uint_fast64_t fetched;
};

static struct rs *rs_of(const struct cl_worker *w)
{
    return w->job;
}

static int rs_ent_cmp(const void *a, const void *b)
{
    const struct rs_ent *x = a, *y = b;
    int c = memcmp(x->id, y->id, 32);
    return c ? c : (x->index < y->index ? -1 : x->index > y->index);
}

/* qsort has no context argument; rs_index runs on one thread. */
static const struct rs_ent *rs_sort_ents;

static int rs_group_cmp(const void *a, const void *b)
{
    size_t x = rs_sort_ents[*(const size_t *)a].index, y = rs_sort_ents[*(const size_t *)b].index;
    return x < y ? -1 : x > y;
}

static size_t rs_block_len(const struct rs *rs, size_t idx)
{
    uint64_t off = (uint64_t)idx * rs->bs;
    return (size_t)(rs->size - off < rs->bs ? rs->size - off : rs->bs);
}

static int rs_live(const struct cmap_node *n)
{
    return n->state == CMAP_UP || n->state == CMAP_SUSPECT || n->state == CMAP_DRAINING;
}

/* Rank of a candidate: lower is asked first. */
static int rs_rank(const struct rs *rs, size_t node)
{
    const struct cmap_node *n = &rs->map->nodes[node];
    int r = n->state == CMAP_SUSPECT ? 2 : 0;

    /* A node that already timed out in this restore goes last: paying one
     * timeout per restore, not one per batch, for a dead or cut-off node. */
    if (atomic_load(&rs->slow[node]))
        r += 4;
    return r + (strcmp(n->zone, rs->zone) != 0);
}

static int rs_allowed(const struct rs *rs, size_t node)
{
    const struct cmap_node *n = &rs->map->nodes[node];
    return rs_live(n) && (rs->fail_zone == NULL || strcmp(n->zone, rs->fail_zone) != 0);
}

static void rs_add(size_t *out, size_t *n, size_t max, size_t node)
{
    for (size_t i = 0; i < *n; i++)
        if (out[i] == node)
            return;
    if (*n < max)
        out[(*n)++] = node;
}

/* Candidates for id, best first (see the file comment). */
static size_t rs_order(const struct rs *rs, const uint8_t *id, size_t *out)
{
    size_t home[CMAP_MAX_REPLICAS], cur[CMAP_MAX_REPLICAS], cand[2 * CMAP_MAX_REPLICAS];
    size_t kh = cmap_place(rs->homemap, id, home, CMAP_MAX_REPLICAS);
    size_t kc = cmap_place(rs->map, id, cur, CMAP_MAX_REPLICAS), k = 0, n = 0;

    for (size_t j = 0; j < kh; j++)
        rs_add(cand, &k, 2 * CMAP_MAX_REPLICAS, home[j]);
    for (size_t j = 0; j < kc; j++)
        rs_add(cand, &k, 2 * CMAP_MAX_REPLICAS, cur[j]);
    for (int rank = 0; rank < 8; rank++)
        for (size_t j = 0; j < k; j++)
            if (rs_allowed(rs, cand[j]) && rs_rank(rs, cand[j]) == rank)
                rs_add(out, &n, RS_MAX_TRIES, cand[j]);
    for (size_t j = 0; j < rs->map->nnodes; j++) /* last resort: anyone alive */
        if (rs_allowed(rs, j))
            rs_add(out, &n, RS_MAX_TRIES, j);
    return n;
}

static void rs_used(struct rs *rs, size_t node)
{
    for (size_t z = 0; z < rs->nzones; z++)
        if (strcmp(rs->zones[z], rs->map->nodes[node].zone) == 0)
            atomic_fetch_or(&rs->zones_used, 1ull << z);
}

/* Start writeback of each finished 32 MiB stretch now, so the final
 * fdatasync has little left to flush (it overlaps with fetching). */
static void rs_writeback(struct rs *rs, size_t len)
{
    uint64_t before = atomic_fetch_add(&rs->written, len), after = before + len;

    if (before / RS_WRITEBACK != after / RS_WRITEBACK)
        sync_file_range(rs->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

static int rs_write(struct rs *rs, size_t g, const uint8_t *plain, size_t len)
{
    const uint8_t *id = rs->ents[rs->groups[g]].id;

    for (size_t e = rs->groups[g]; e < rs->nents && memcmp(rs->ents[e].id, id, 32) == 0; e++) {
        size_t idx = rs->ents[e].index, want = rs_block_len(rs, idx), done = 0;
        if (want != len)
            return SZ_ECORRUPT;
        while (done < len) {
            ssize_t w = pwrite(rs->fd, plain + done, len - done,
                               (off_t)((uint64_t)idx * rs->bs + done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return SZ_EIO;
            done += (size_t)w;
        }
        rs_writeback(rs, len);
    }
    return 0;
}

struct rs_req {
    long node;
    size_t n;
    size_t g[SZ_MAX_BATCH];  /* groups asked */
    size_t pi[SZ_MAX_BATCH]; /* their slots in the pending array */
    uint64_t req_id;
    struct tp_sock *sock;
};

/* A block still to fetch, and the nodes already asked for it. */
struct rs_pend {
    size_t g;
    size_t ntried;
    size_t tried[RS_MAX_TRIES];
    int done;
};

/* The best candidate for p not asked yet, or -1. */
static long rs_next(const struct rs *rs, const struct rs_pend *p)
{
    size_t order[RS_MAX_TRIES], k = rs_order(rs, rs->ents[rs->groups[p->g]].id, order);

    for (size_t j = 0; j < k; j++) {
        size_t t;
        for (t = 0; t < p->ntried && p->tried[t] != order[j]; t++)
            ;
        if (t == p->ntried)
            return (long)order[j];
    }
    return -1;
}

/* One round: ask, for every pending group, its try-th nearest replica.
 * Groups that verify and are written leave pending. */
/* One round: ask every pending block's best untried candidate.  Blocks that
 * verify and are written are marked done.  Return 1 if anything was asked. */
static int rs_round(struct cl_worker *w, struct rs_pend *pend, size_t npend, int *lastrc)
{
    struct rs *rs = rs_of(w);
    struct rs_req reqs[SZ_MAX_BATCH];
    size_t nreq = 0;
    uint64_t deadline;

    for (size_t i = 0; i < npend; i++) {
        long node;
        size_t q;
        if (pend[i].done || (node = rs_next(rs, &pend[i])) < 0)
            continue;
        pend[i].tried[pend[i].ntried++] = (size_t)node;
        for (q = 0; q < nreq && reqs[q].node != node; q++)
            ;
        if (q == nreq) {
            memset(&reqs[q], 0, sizeof(reqs[q]));
            reqs[q].node = node;
            nreq++;
        }
        reqs[q].pi[reqs[q].n] = i;
        reqs[q].g[reqs[q].n++] = pend[i].g;
    }
    if (nreq == 0)
        return 0;
    for (size_t q = 0; q < nreq; q++) {
        ProtobufCBinaryData pb[SZ_MAX_BATCH];
        Sz__BlockIds b = SZ__BLOCK_IDS__INIT;
        sz_env e = SZ__ENVELOPE__INIT;
        reqs[q].sock = cl_pool_sock(w->pool, rs->map->nodes[reqs[q].node].endpoint);
        for (size_t k = 0; k < reqs[q].n; k++) {
            pb[k].data = (uint8_t *)rs->ents[rs->groups[reqs[q].g[k]]].id;
            pb[k].len = 32;
        }
        b.n_ids = reqs[q].n;
        b.ids = pb;
        e.body_case = SZ__ENVELOPE__BODY_BLOCK_IDS;
        e.block_ids = &b;
        if (reqs[q].sock == NULL ||
            rpc_send_req(reqs[q].sock, SZ__MSG_TYPE__BLOCK_GET, &e, NULL, &reqs[q].req_id) != 0)
            reqs[q].sock = NULL;
    }
    deadline = fsu_now_ms() + (uint64_t)rs->c->timeout_ms;
    for (size_t q = 0; q < nreq; q++) {
        const char *ep = rs->map->nodes[reqs[q].node].endpoint;
        struct tp_msg *frames = NULL;
        sz_env *rep = NULL;
        int rc = reqs[q].sock ? rpc_recv_reply(reqs[q].sock, reqs[q].req_id, deadline, &rep,
                                               &frames)
                              : SZ_EUNAVAIL;
        int good = rc == 0 && rep->reply->get && rep->reply->get->n_status == reqs[q].n &&
                   tp_msg_count(frames) == 1 + reqs[q].n;
        if (rc == SZ_ETIMEDOUT) {
            cl_pool_drop(w->pool, ep);
            atomic_store(&rs->slow[reqs[q].node], 1);
        }
        for (size_t k = 0; k < reqs[q].n; k++) {
            size_t g = reqs[q].g[k], len = 0;
            int r = good ? rep->reply->get->status[k] : (rc ? rc : SZ_EPROTO);
            if (r == 0)
                r = seal_open(w->seal, rs->ents[rs->groups[g]].id, tp_msg_data(frames, 1 + k),
                              tp_msg_size(frames, 1 + k), w->buf, rs->bs, &len);
            if (r == 0)
                r = rs_write(rs, g, w->buf, len);
            if (r == 0) {
                atomic_fetch_add(&rs->fetched, 1);
                if (pend[reqs[q].pi[k]].ntried > 1)
                    atomic_fetch_add(&rs->failovers, 1);
                rs_used(rs, (size_t)reqs[q].node);
                pend[reqs[q].pi[k]].done = 1;
            } else {
                *lastrc = r;
            }
        }
        tp_msg_free(frames);
        codec_free(rep);
    }
    return 1;
}

static int rs_batch(struct cl_worker *w, size_t first, size_t n)
{
    struct rs *rs = rs_of(w);
    struct rs_pend pend[SZ_MAX_BATCH];
    size_t npend = 0;
    int lastrc = 0;

    for (size_t i = 0; i < n; i++) {
        pend[i].g = first + i;
        pend[i].ntried = 0;
        pend[i].done = 0;
    }
    while (rs_round(w, pend, n, &lastrc))
        ;
    for (size_t i = 0; i < n; i++)
        npend += !pend[i].done;
    if (npend == 0)
        return 0;
    atomic_store(&rs->failed, 1);
    if (lastrc == SZ_EAUTH)
        return cl_seterr(rs->c, SZ_EAUTH, "%zu blocks failed authentication on every replica: "
                                          "wrong key, or the data was tampered with", npend);
    return cl_seterr(rs->c, lastrc ? lastrc : SZ_EUNAVAIL,
                     "%zu blocks could not be read and verified from any replica: %s", npend,
                     sz_strerror(lastrc ? lastrc : SZ_EUNAVAIL));
}

static void *rs_worker_main(void *arg)
{
    struct cl_worker *w = arg;
    struct rs *rs = rs_of(w);

    while (!atomic_load(&rs->failed)) {
        size_t b = atomic_fetch_add(&rs->next, 1), first = b * rs->batch, n;
        if (first >= rs->ngroups)
            break;
        n = rs->ngroups - first < rs->batch ? rs->ngroups - first : rs->batch;
        if (rs_batch(w, first, n) != 0)
            break;
    }
    return NULL;
}

static int rs_run(struct rs *rs)
{
    /* Restore workers spend much of their time waiting for a GET, so twice
     * the write path's count keeps both cores busy (measured in bench/). */
    int rc = cl_run_workers(rs->c, rs->c->threads * 2, rs->bs, rs->bs, rs_worker_main, rs);

    return rc ? rc : (atomic_load(&rs->failed) ? SZ_EIO : 0);
}

static int rs_index(struct rs *rs, const uint8_t *ids, size_t n)
{
    rs->ents = malloc((n ? n : 1) * sizeof(*rs->ents));
    rs->groups = malloc((n ? n : 1) * sizeof(*rs->groups));
    if (rs->ents == NULL || rs->groups == NULL)
        return SZ_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (mf_is_zero(ids + 32 * i))
            continue;
        rs->ents[rs->nents].id = ids + 32 * i;
        rs->ents[rs->nents++].index = i;
    }
    qsort(rs->ents, rs->nents, sizeof(*rs->ents), rs_ent_cmp);
    for (size_t e = 0; e < rs->nents; e++)
        if (e == 0 || memcmp(rs->ents[e].id, rs->ents[e - 1].id, 32) != 0)
            rs->groups[rs->ngroups++] = e;
    /* Fetch in disk order (each id at its first use): nodes stored blocks in
     * about that order, so their reads stay sequential, not random. */
    rs_sort_ents = rs->ents;
    qsort(rs->groups, rs->ngroups, sizeof(*rs->groups), rs_group_cmp);
    return 0;
}

static int rs_check_key(sz_client *c, const Sz__SnapInfo *s)
{
    char have[33], want[33];

    if (s->key_fingerprint.len != SEAL_FPR_BYTES ||
        memcmp(s->key_fingerprint.data, seal_fingerprint(c->keys), SEAL_FPR_BYTES) == 0)
        return 0;
    cl_fpr_hex(s->key_fingerprint.data, SEAL_FPR_BYTES, want);
    cl_fpr_hex(seal_fingerprint(c->keys), SEAL_FPR_BYTES, have);
    return cl_seterr(c, SZ_EKEY, "wrong key: snapshot %s was sealed with key %s, this key is %s",
                     s->id, want, have);
}

static char *rs_zone_of(sz_client *c, const char *disk)
{
    Sz__NameRef nr = SZ__NAME_REF__INIT;
    sz_env env = SZ__ENVELOPE__INIT, *rep = NULL;
    char *zone = NULL;
    int saved = c->err_set;

    c->err_set = 1;
    nr.name = (char *)disk;
    env.body_case = SZ__ENVELOPE__BODY_NAME_REF;
    env.name_ref = &nr;
    if (cl_coord_call(c, SZ__MSG_TYPE__DISK_GET, &env, NULL, &rep, NULL) == 0)
        zone = strdup(rep->reply->disk->zone);
    codec_free(rep);
    c->err_set = saved;
    return zone;
}

static int rs_zone_known(const struct cmap *m, const char *zone)
{
    for (size_t i = 0; i < m->nnodes; i++)
        if (strcmp(m->nodes[i].zone, zone) == 0)
            return 1;
    return 0;
}

static int rs_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* homemap: every node eligible; zones: the sorted zone names. */
static int rs_maps(sz_client *c, struct rs *rs)
{
    int rc = cl_get_map(c, &rs->map);

    if (rc != 0)
        return rc;
    if ((rc = cmap_new(rs->map->epoch, rs->map->replicas, &rs->homemap)) != 0)
        return rc;
    if ((rs->slow = calloc(rs->map->nnodes + 1, sizeof(*rs->slow))) == NULL)
        return SZ_ENOMEM;
    for (size_t i = 0; i < rs->map->nnodes; i++) {
        const struct cmap_node *n = &rs->map->nodes[i];
        size_t z;
        if ((rc = cmap_add_node(rs->homemap, n->id, n->zone, n->endpoint, CMAP_UP)) != 0)
            return rc;
        for (z = 0; z < rs->nzones && strcmp(rs->zones[z], n->zone) != 0; z++)
            ;
        if (z == rs->nzones && rs->nzones < 64)
            rs->zones[rs->nzones++] = n->zone;
    }
    qsort(rs->zones, rs->nzones, sizeof(rs->zones[0]), rs_cmp_str);
    return 0;
}

int cl_restore_snap(sz_client *c, const Sz__SnapInfo *s, const uint8_t *ids, size_t n,
                    const char *path, const struct sz_restore_options *opt,
                    struct sz_restore_result *out)
{
    struct rs rs = {.c = c, .fd = -1};
    char part[4096], *dzone = NULL;
    struct timespec t0, t1;
    uint64_t used;
    int rc;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(out, 0, sizeof(*out));
    if (snprintf(part, sizeof(part), "%s.part", path) >= (int)sizeof(part))
        return cl_seterr(c, SZ_EINVAL, "output path too long");
    if ((rc = rs_check_key(c, s)) != 0 || (rc = rs_maps(c, &rs)) != 0)
        goto out;
    if (opt && opt->zone && opt->zone[0] && !rs_zone_known(rs.map, opt->zone)) {
        rc = cl_seterr(c, SZ_ENOENT, "unknown zone '%s'", opt->zone);
        goto out;
    }
    if (opt && opt->fail_zone && opt->fail_zone[0]) {
        if (!rs_zone_known(rs.map, opt->fail_zone)) {
            rc = cl_seterr(c, SZ_ENOENT, "unknown zone '%s'", opt->fail_zone);
            goto out;
        }
        rs.fail_zone = opt->fail_zone;
    }
    if (opt && opt->zone && opt->zone[0]) {
        rs.zone = opt->zone;
    } else {
        dzone = rs_zone_of(c, s->disk);
        rs.zone = dzone ? dzone : "";
    }
    if (rs.fail_zone && strcmp(rs.zone, rs.fail_zone) == 0)
        rs.zone = ""; /* the preferred zone is the lost one: no preference */
    rs.size = s->logical_bytes;
    rs.bs = s->block_size;
    if (rs.bs == 0 || n != (size_t)((rs.size + rs.bs - 1) / rs.bs)) {
        rc = cl_seterr(c, SZ_ECORRUPT, "manifest of %s does not match its size", s->id);
        goto out;
    }
    rs.batch = RS_BATCH_BYTES / rs.bs ? RS_BATCH_BYTES / rs.bs : 1;
    if (rs.batch > SZ_MAX_BATCH)
        rs.batch = SZ_MAX_BATCH;
    if ((rc = rs_index(&rs, ids, n)) != 0)
        goto out;
    rs.fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (rs.fd < 0) {
        rc = cl_seterr(c, SZ_EIO, "cannot create '%s': %s", part, strerror(errno));
        goto out;
    }
    if (ftruncate(rs.fd, (off_t)rs.size) != 0) {
        rc = cl_seterr(c, SZ_EIO, "cannot size '%s': %s", part, strerror(errno));
        goto out;
    }
    if ((rc = rs_run(&rs)) != 0)
        goto out;
    if (fdatasync(rs.fd) != 0 || rename(part, path) != 0) {
        rc = cl_seterr(c, SZ_EIO, "cannot finish '%s': %s", path, strerror(errno));
        goto out;
    }
    fsu_fsync_parent(path);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    out->bytes = rs.size;
    out->blocks = atomic_load(&rs.fetched);
    out->failovers = atomic_load(&rs.failovers);
    out->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    used = atomic_load(&rs.zones_used);
    for (size_t z = 0; z < rs.nzones && out->nzones_used < 8; z++)
        if (used & (1ull << z))
            snprintf(out->zones_used[out->nzones_used++], SZ_NAME_MAX, "%s", rs.zones[z]);
out:
    if (rs.fd >= 0) {
        close(rs.fd);
        if (rc != 0)
            unlink(part);
    }
    free(dzone);
    free(rs.ents);
    free(rs.groups);
    cmap_free(rs.homemap);
    cmap_free(rs.map);
    free(rs.slow);
    return rc;
}

int sz_restore_ex(sz_client *c, const char *what, const char *path,
                  const struct sz_restore_options *opt, struct sz_restore_result *out)
{
    Sz__SnapInfo *s = NULL;
    uint8_t *ids = NULL;
    size_t n = 0;
    int rc;

    cl_reset(c);
    if ((rc = cl_need_keys(c)) != 0)
        return rc;
    if ((rc = cl_get_snapshot(c, what, &s, &ids, &n)) != 0)
        return rc;
    rc = cl_restore_snap(c, s, ids, n, path, opt, out);
    free(ids);
    codec_unpack_free(&s->base);
    return rc;
}

int sz_restore(sz_client *c, const char *what, const char *path, const char *zone,
               struct sz_restore_result *out)
{
    struct sz_restore_options o = {.zone = zone};
    return sz_restore_ex(c, what, path, &o, out);
}
