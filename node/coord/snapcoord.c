/*
 * snapcoord: the coordinator.  Keeps the catalog (zones, nodes, disks,
 * snapshots, manifests, block references), publishes the versioned cluster
 * map, and commits snapshots.  It never carries block bytes.
 *
 * Snapshot states (catalog record SnapInfo.status):
 *
 *   (none) --coord_snap_begin--> PENDING --coord_snap_commit--> COMMITTED
 *                                   |
 *                                   +--coord_snap_abort--> ABORTED
 *
 * Invariant: COMMITTED is written (cat_commit, one synced batch) only after
 * every block the manifest references that the catalog did not already hold
 * was confirmed by BLOCK_HAVE on each of its placement's R nodes.  Only
 * COMMITTED snapshots are listed or restorable.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "clustermap.h"
#include "codec.h"
#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "manifest.h"
#include "rpc.h"
#include "seal.h"
#include "transport.h"

#define COORD_NODE_TIMEOUT_MS 5000
#define COORD_MAX_MISSING 4096

struct cnode {
    char id[CMAP_NAME_MAX];
    char zone[CMAP_NAME_MAX];
    char endpoint[CMAP_ENDPOINT_MAX];
    int state;
    uint64_t blocks, stored_bytes, last_seen_ms;
    struct tp_sock *sock; /* lazily connected, for commit verification */
};

struct coord {
    struct catalog *cat;
    struct tp_ctx *ctx;
    struct tp_sock *router;
    uint32_t replicas;
    uint64_t epoch;
    struct cnode *nodes;
    size_t nnodes;
    struct cmap *map;
};

static volatile sig_atomic_t coord_stop;

static void coord_on_signal(int sig)
{
    (void)sig;
    coord_stop = 1;
}

/* ---- cluster map ------------------------------------------------------ */

static int coord_rebuild_map(struct coord *c)
{
    struct cmap *m;
    int rc;

    if ((rc = cmap_new(c->epoch, c->replicas, &m)) != 0)
        return rc;
    for (size_t i = 0; i < c->nnodes; i++) {
        struct cnode *n = &c->nodes[i];
        if ((rc = cmap_add_node(m, n->id, n->zone, n->endpoint, n->state)) != 0) {
            cmap_free(m);
            return rc;
        }
        m->nodes[m->nnodes - 1].blocks = n->blocks;
        m->nodes[m->nnodes - 1].stored_bytes = n->stored_bytes;
    }
    cmap_free(c->map);
    c->map = m;
    return 0;
}

static void coord_refresh_stats(struct coord *c)
{
    for (size_t i = 0; i < c->nnodes && i < c->map->nnodes; i++) {
        c->map->nodes[i].blocks = c->nodes[i].blocks;
        c->map->nodes[i].stored_bytes = c->nodes[i].stored_bytes;
    }
}

static int coord_persist_node(struct coord *c, const struct cnode *n)
{
    Sz__NodeInfo ni = SZ__NODE_INFO__INIT;

    ni.id = (char *)n->id;
    ni.zone = (char *)n->zone;
    ni.endpoint = (char *)n->endpoint;
    ni.state = (Sz__NodeState)n->state;
    return cat_node_put(c->cat, &ni);
}

static long coord_find_node(struct coord *c, const char *id)
{
    for (size_t i = 0; i < c->nnodes; i++)
        if (strcmp(c->nodes[i].id, id) == 0)
            return (long)i;
    return -1;
}

static int coord_bump_epoch(struct coord *c)
{
    c->epoch++;
    cat_counter_set(c->cat, "epoch", c->epoch);
    return coord_rebuild_map(c);
}

static int coord_load(struct coord *c, uint32_t replicas_flag)
{
    Sz__NodeInfo **list;
    uint64_t r;
    size_t n;
    int rc;

    cat_counter(c->cat, "epoch", &c->epoch);
    cat_counter(c->cat, "replicas", &r);
    c->replicas = replicas_flag ? replicas_flag : (r ? (uint32_t)r : 3);
    if (r != c->replicas)
        cat_counter_set(c->cat, "replicas", c->replicas);
    if ((rc = cat_nodes(c->cat, &list, &n)) != 0)
        return rc;
    c->nodes = calloc(n ? n : 1, sizeof(*c->nodes));
    if (c->nodes == NULL) {
        cat_free_list(list, n);
        return SZ_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        struct cnode *cn = &c->nodes[c->nnodes++];
        snprintf(cn->id, sizeof(cn->id), "%s", list[i]->id);
        snprintf(cn->zone, sizeof(cn->zone), "%s", list[i]->zone);
        snprintf(cn->endpoint, sizeof(cn->endpoint), "%s", list[i]->endpoint);
        cn->state = (int)list[i]->state;
        cn->last_seen_ms = fsu_now_ms();
    }
    cat_free_list(list, n);
    return coord_rebuild_map(c);
}

/* ---- membership ------------------------------------------------------- */

static int coord_reply_map(struct coord *c, struct tp_msg *msg, sz_env *env)
{
    Sz__ClusterMap pb;
    Sz__Reply r = SZ__REPLY__INIT;
    int rc;

    coord_refresh_stats(c);
    if ((rc = codec_map_to_pb(c->map, &pb)) != 0)
        return rpc_reply_status(c->router, msg, env, rc, "out of memory");
    r.map = &pb;
    r.epoch = c->epoch;
    rc = rpc_reply(c->router, msg, env, &r, NULL);
    codec_map_pb_release(&pb);
    return rc;
}

static int coord_register(struct coord *c, struct tp_msg *msg, sz_env *env)
{
    const Sz__NodeRegister *nr = env->node_register;
    long i = coord_find_node(c, nr->id);
    struct cnode *n;

    if (i < 0) {
        struct cnode *nn = realloc(c->nodes, (c->nnodes + 1) * sizeof(*nn));
        if (nn == NULL || c->nnodes >= CMAP_MAX_NODES)
            return rpc_reply_status(c->router, msg, env, SZ_ENOMEM, "cannot add node");
        c->nodes = nn;
        i = (long)c->nnodes++;
        memset(&c->nodes[i], 0, sizeof(c->nodes[i]));
        snprintf(c->nodes[i].id, sizeof(c->nodes[i].id), "%s", nr->id);
        c->nodes[i].state = -1;
    }
    n = &c->nodes[i];
    n->last_seen_ms = fsu_now_ms();
    if (n->state != CMAP_UP || strcmp(n->zone, nr->zone) != 0 ||
        strcmp(n->endpoint, nr->endpoint) != 0) {
        if (strcmp(n->endpoint, nr->endpoint) != 0) {
            tp_close(n->sock);
            n->sock = NULL;
        }
        snprintf(n->zone, sizeof(n->zone), "%s", nr->zone);
        snprintf(n->endpoint, sizeof(n->endpoint), "%s", nr->endpoint);
        n->state = CMAP_UP;
        coord_persist_node(c, n);
        coord_bump_epoch(c);
        log_info("node %s (%s) up at %s, epoch %llu", n->id, n->zone, n->endpoint,
                 (unsigned long long)c->epoch);
    }
    return coord_reply_map(c, msg, env);
}

static int coord_heartbeat(struct coord *c, struct tp_msg *msg, sz_env *env)
{
    const Sz__NodeHeartbeat *hb = env->node_heartbeat;
    long i = coord_find_node(c, hb->id);
    Sz__Reply r = SZ__REPLY__INIT;

    if (i < 0 || c->nodes[i].state != CMAP_UP)
        return rpc_reply_status(c->router, msg, env, SZ_ENOENT, "node %s must register", hb->id);
    c->nodes[i].last_seen_ms = fsu_now_ms();
    c->nodes[i].blocks = hb->blocks;
    c->nodes[i].stored_bytes = hb->stored_bytes;
    r.epoch = c->epoch;
    return rpc_reply(c->router, msg, env, &r, NULL);
}

static int coord_status(struct coord *c, struct tp_msg *msg, sz_env *env)
{
    Sz__ClusterStatus cs = SZ__CLUSTER_STATUS__INIT;
    Sz__ClusterMap pb;
    Sz__Reply r = SZ__REPLY__INIT;
    uint64_t under = 0;
    int rc;

    coord_refresh_stats(c);
    if ((rc = codec_map_to_pb(c->map, &pb)) != 0)
        return rpc_reply_status(c->router, msg, env, rc, "out of memory");
    cat_counter(c->cat, "under_replicated", &under);
    cs.map = &pb;
    cs.under_replicated_blocks = under;
    r.cluster = &cs;
    r.epoch = c->epoch;
    rc = rpc_reply(c->router, msg, env, &r, NULL);
    codec_map_pb_release(&pb);
    return rc;
}

/* ---- disks ------------------------------------------------------------ */

static int coord_zone_known(struct coord *c, const char *zone)
{
    for (size_t i = 0; i < c->nnodes; i++)
        if (strcmp(c->nodes[i].zone, zone) == 0)
            return 1;
    return 0;
}

static const char *coord_default_zone(struct coord *c)
{
    const char *best = NULL;
    for (size_t i = 0; i < c->nnodes; i++)
        if (best == NULL || strcmp(c->nodes[i].zone, best) < 0)
            best = c->nodes[i].zone;
    return best;
}

static int coord_reply_disk(struct coord *c, struct tp_msg *msg, sz_env *env, Sz__DiskInfo *d)
{
    Sz__Reply r = SZ__REPLY__INIT;

    r.disk = d;
    return rpc_reply(c->router, msg, env, &r, NULL);
}

static int coord_disk_create(struct coord *c, struct tp_msg *msg, sz_env *env)
{
    const Sz__DiskCreate *dc = env->disk_create;
    Sz__DiskInfo d = SZ__DISK_INFO__INIT, *old;
    const char *zone = dc->zone && dc->zone[0] ? dc->zone : coord_default_zone(c);
    uint32_t bs = dc->block_size;
    int rc;

    if (!codec_valid_name(dc->name))
        return rpc_reply_status(c->router, msg, env, SZ_EINVAL,
                                "disk name must be 1-63 chars of [A-Za-z0-9._-]");
    if (bs < 4096 || bs > (4u << 20) || (bs & (bs - 1)) != 0)
        return rpc_reply_status(c->router, msg, env, SZ_EINVAL,
                                "block size must be a power of two from 4K to 4M");
    if (dc->size == 0 || dc->size % 512 != 0)
        return rpc_reply_status(c->router, msg, env, SZ_EINVAL,
                                "disk size must be a positive multiple of 512 bytes");
    if ((dc->size + bs - 1) / bs > SZ_MAX_DISK_BLOCKS)
        return rpc_reply_status(c->router, msg, env, SZ_ETOOBIG,
                                "disk has more than %u blocks; use a larger block size",
                                SZ_MAX_DISK_BLOCKS);
    if (zone == NULL || !coord_zone_known(c, zone))
        return rpc_reply_status(c->router, msg, env, SZ_ENOENT, "unknown zone '%s'",
                                zone ? zone : "");
    if (cat_disk_get(c->cat, dc->name, &old) == 0) {
        cat_free(old);
        return rpc_reply_status(c->router, msg, env, SZ_EEXIST, "disk '%s' already exists",
                                dc->name);
    }
    d.name = dc->name;
    d.size = dc->size;
    d.block_size = bs;
    d.zone = (char *)zone;
    d.created = fsu_wall_s();
    if ((rc = cat_disk_put(c->cat, &d)) != 0)
        return rpc_reply_status(c->router, msg, env, rc, "catalog write failed");
    log_info("disk %s created (%llu bytes, block %u, %s)", d.name, (unsigned long long)d.size,
             bs, zone);
    return coord_reply_disk(c, msg, env, &d);
}

static int coord_disk_get(struct coord *c, struct tp_msg *msg, sz_env *env)
{
    Sz__DiskInfo *d;
    int rc = cat_disk_get(c->cat, env->name_ref->name, &d);

    if (rc != 0)
        return rpc_reply_status(c->router, msg, env, rc, "no disk named '%s'",
                                env->name_ref->name);
    rc = coord_reply_disk(c, msg, env, d);
    cat_free(d);
    return rc;
}

static int coord_disk_list(struct coord *c, struct tp_msg *msg, sz_env *env)
{
    Sz__Reply r = SZ__REPLY__INIT;
    Sz__DiskInfo **list;
    size_t n;
    int rc = cat_disks(c->cat, &list, &n);

    if (rc != 0)
        return rpc_reply_status(c->router, msg, env, rc, "catalog read failed");
    r.n_disks = n;
    r.disks = list;
    rc = rpc_reply(c->router, msg, env, &r, NULL);
    cat_free_list(list, n);
    return rc;
}

static int coord_committed(struct coord *c, const char *id, Sz__SnapInfo **out)
{
    int rc = cat_snap_get(c->cat, id, out);

    if (rc == 0 && (*out)->status != SZ__SNAP_STATUS__SNAP_COMMITTED) {
        cat_free(*out);
        *out = NULL;
        rc = SZ_ENOENT;
    }
    return rc;
}

static int coord_disk_clone(struct coord *c, struct tp_msg *msg, sz_env *env)
{
    const Sz__DiskClone *dc = env->disk_clone;
    Sz__DiskInfo d = SZ__DISK_INFO__INIT, *src = NULL, *old;
    Sz__SnapInfo *snap;
    int rc;

    if (!codec_valid_name(dc->name))
        return rpc_reply_status(c->router, msg, env, SZ_EINVAL,
                                "disk name must be 1-63 chars of [A-Za-z0-9._-]");
    if (coord_committed(c, dc->snapshot, &snap) != 0)
        return rpc_reply_status(c->router, msg, env, SZ_ENOENT, "no committed snapshot '%s'",
                                dc->snapshot);
    if (cat_disk_get(c->cat, dc->name, &old) == 0) {
        cat_free(old);
        cat_free(snap);
        return rpc_reply_status(c->router, msg, env, SZ_EEXIST, "disk '%s' already exists",
                                dc->name);
    }
    rc = cat_disk_get(c->cat, snap->disk, &src);
    d.name = dc->name;
    d.size = rc == 0 ? src->size : snap->size;
    d.block_size = snap->block_size;
    d.zone = rc == 0 ? src->zone : (char *)coord_default_zone(c);
    d.created = fsu_wall_s();
    d.source_snapshot = snap->id;
    rc = cat_disk_put(c->cat, &d);
    if (rc == 0) {
        log_info("disk %s cloned from %s", d.name, snap->id);
        rc = coord_reply_disk(c, msg, env, &d);
    } else {
        rc = rpc_reply_status(c->router, msg, env, rc, "catalog write failed");
    }
    cat_free(src);
    cat_free(snap);
    return rc;
}

/* ---- snapshots -------------------------------------------------------- */

/* The parent of a new snapshot of disk: its newest committed snapshot, or
 * the snapshot it was cloned from.  Caller frees the string. */
static char *coord_parent(struct coord *c, const Sz__DiskInfo *d)
{
    Sz__SnapInfo **list;
    size_t n;
    char *p = NULL;

    if (cat_snaps(c->cat, d->name, &list, &n) == 0) {
        for (size_t i = n; i-- > 0 && p == NULL;)
            if (list[i]->status == SZ__SNAP_STATUS__SNAP_COMMITTED)
                p = strdup(list[i]->id);
        cat_free_list(list, n);
    }
    if (p == NULL && d->source_snapshot && d->source_snapshot[0])
        p = strdup(d->source_snapshot);
    return p;
}

static int coord_snap_begin(struct coord *c, struct tp_msg *msg, sz_env *env)
{
    const Sz__SnapBegin *sb = env->snap_begin;
    Sz__SnapInfo s = SZ__SNAP_INFO__INIT;
    Sz__Reply r = SZ__REPLY__INIT;
    Sz__DiskInfo *d;
    char id[32], *parent;
    uint64_t seq, rnd;
    int rc;

    if (cat_disk_get(c->cat, sb->disk, &d) != 0)
        return rpc_reply_status(c->router, msg, env, SZ_ENOENT, "no disk named '%s'", sb->disk);
    if (sb->name[0] && !codec_valid_name(sb->name)) {
        cat_free(d);
        return rpc_reply_status(c->router, msg, env, SZ_EINVAL,
                                "snapshot name must be 1-63 chars of [A-Za-z0-9._-]");
    }
    seal_random(&rnd, sizeof(rnd));
    snprintf(id, sizeof(id), "snap-%016llx", (unsigned long long)rnd);
    cat_counter(c->cat, "seq", &seq);
    cat_counter_set(c->cat, "seq", ++seq);
    parent = coord_parent(c, d);
    s.id = id;
    s.disk = d->name;
    s.name = sb->name;
    s.parent = parent ? parent : "";
    s.created = fsu_wall_s();
    s.status = SZ__SNAP_STATUS__SNAP_PENDING;
    s.key_fingerprint = sb->key_fingerprint;
    s.block_size = d->block_size;
    s.size = d->size;
    s.automatic = sb->automatic;
    s.seq = seq;
    rc = cat_snap_put(c->cat, &s);
    if (rc == 0) {
        r.snap = &s;
        rc = rpc_reply(c->router, msg, env, &r, NULL);
    } else {
        rc = rpc_reply_status(c->router, msg, env, rc, "catalog write failed");
    }
    free(parent);
    cat_free(d);
    return rc;
}

struct coord_check {
    size_t node;
    size_t *idx; /* indices into the id list */
    size_t n, done;
    uint64_t req_id;
    int inflight;
};

/* Ask each replica node, in parallel rounds of up to SZ_MAX_HAVE ids per
 * node, whether it holds the ids.  ok[i] is cleared for every id that some
 * replica lacks or could not confirm. */
static int coord_verify(struct coord *c, const uint8_t *ids, size_t n, uint8_t *ok)
{
    struct coord_check *chk = calloc(c->map->nnodes ? c->map->nnodes : 1, sizeof(*chk));
    ProtobufCBinaryData *pbids = malloc(SZ_MAX_HAVE * sizeof(*pbids));
    int rc = 0, more = 1;

    if (chk == NULL || pbids == NULL) {
        rc = SZ_ENOMEM;
        goto out;
    }
    for (size_t j = 0; j < c->map->nnodes; j++) {
        chk[j].node = j;
        chk[j].idx = malloc((n ? n : 1) * sizeof(size_t));
        if (chk[j].idx == NULL) {
            rc = SZ_ENOMEM;
            goto out;
        }
    }
    for (size_t i = 0; i < n; i++) {
        size_t place[CMAP_MAX_REPLICAS];
        size_t k = cmap_place(c->map, ids + 32 * i, place, CMAP_MAX_REPLICAS);
        ok[i] = k >= c->replicas;
        for (size_t j = 0; j < k; j++)
            chk[place[j]].idx[chk[place[j]].n++] = i;
    }
    while (more) {
        more = 0;
        for (size_t j = 0; j < c->map->nnodes; j++) {
            struct coord_check *k = &chk[j];
            struct cnode *cn = &c->nodes[j];
            Sz__BlockIds b = SZ__BLOCK_IDS__INIT;
            sz_env e = SZ__ENVELOPE__INIT;
            size_t cnt = k->n - k->done > SZ_MAX_HAVE ? SZ_MAX_HAVE : k->n - k->done;
            k->inflight = 0;
            if (cnt == 0)
                continue;
            if (cn->sock == NULL &&
                tp_connect(c->ctx, TP_DEALER, cn->endpoint, SZ_MAX_ENVELOPE, &cn->sock) != 0)
                goto fail_node;
            for (size_t q = 0; q < cnt; q++) {
                pbids[q].data = (uint8_t *)ids + 32 * k->idx[k->done + q];
                pbids[q].len = 32;
            }
            b.n_ids = cnt;
            b.ids = pbids;
            e.body_case = SZ__ENVELOPE__BODY_BLOCK_IDS;
            e.block_ids = &b;
            if (rpc_send_req(cn->sock, SZ__MSG_TYPE__BLOCK_HAVE, &e, NULL, &k->req_id) == 0) {
                k->inflight = (int)cnt;
                continue;
            }
fail_node:
            for (size_t q = 0; q < cnt; q++)
                ok[k->idx[k->done + q]] = 0;
            k->done += cnt;
        }
        uint64_t deadline = fsu_now_ms() + COORD_NODE_TIMEOUT_MS;
        for (size_t j = 0; j < c->map->nnodes; j++) {
            struct coord_check *k = &chk[j];
            sz_env *rep = NULL;
            size_t cnt = (size_t)k->inflight;
            int r;
            if (cnt == 0)
                continue;
            r = rpc_recv_reply(c->nodes[j].sock, k->req_id, deadline, &rep, NULL);
            for (size_t q = 0; q < cnt; q++) {
                int have = r == 0 && rep->reply->have && rep->reply->have->n_have == cnt &&
                           rep->reply->have->have[q];
                if (!have)
                    ok[k->idx[k->done + q]] = 0;
            }
            if (r == SZ_ETIMEDOUT) {
                tp_close(c->nodes[j].sock);
                c->nodes[j].sock = NULL;
            }
            codec_free(rep);
            k->done += cnt;
            if (k->done < k->n)
                more = 1;
        }
    }
out:
    for (size_t j = 0; chk && j < c->map->nnodes; j++)
        free(chk[j].idx);
    free(chk);
    free(pbids);
    return rc;
}

/* Distinct non-zero ids of the manifest that the catalog does not hold yet. */
static int coord_new_ids(struct coord *c, const uint8_t *ids, size_t n, uint8_t **out,
                         size_t *outn)
{
    uint8_t *d = malloc(n ? n * 32 : 1);
    size_t k = 0;

    if (d == NULL)
        return SZ_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *id = ids + 32 * i;
        int64_t refs;
        if (mf_is_zero(id))
            continue;
        refs = cat_refs(c->cat, id);
        if (refs < 0) {
            free(d);
            return (int)refs;
        }
        if (refs == 0)
            memcpy(d + 32 * k++, id, 32);
    }
    *out = d;
    *outn = k;
    return 0;
}

static int coord_commit_missing(struct coord *c, struct tp_msg *msg, sz_env *env,
                                const uint8_t *nids, const uint8_t *ok, size_t nn)
{
    ProtobufCBinaryData *miss = malloc(COORD_MAX_MISSING * sizeof(*miss));
    Sz__Reply r = SZ__REPLY__INIT;
    size_t m = 0, total = 0;
    char err[160];
    int rc;

    if (miss == NULL)
        return rpc_reply_status(c->router, msg, env, SZ_ENOMEM, "out of memory");
    for (size_t i = 0; i < nn; i++) {
        if (ok[i])
            continue;
        total++;
        if (m < COORD_MAX_MISSING) {
            miss[m].data = (uint8_t *)nids + 32 * i;
            miss[m++].len = 32;
        }
    }
    snprintf(err, sizeof(err), "%zu blocks are not yet durable on all %u replicas", total,
             c->replicas);
    r.status = SZ_EREPLICAS;
    r.error = err;
    r.n_missing = m;
    r.missing = miss;
    rc = rpc_reply(c->router, msg, env, &r, NULL);
    free(miss);
    return rc;
}

static int coord_snap_commit(struct coord *c, struct tp_msg *msg, sz_env *env)
{
    const Sz__SnapCommit *sc = env->snap_commit;
    Sz__SnapInfo *s = NULL;
    Sz__Reply r = SZ__REPLY__INIT;
    uint8_t *parent = NULL, *ids = NULL, *nids = NULL, *ok = NULL;
    size_t pn = 0, n = 0, nn = 0, want;
    int rc;

    if (tp_msg_count(msg) != 3)
        return rpc_reply_status(c->router, msg, env, SZ_EPROTO, "commit needs a manifest frame");
    if (cat_snap_get(c->cat, sc->id, &s) != 0)
        return rpc_reply_status(c->router, msg, env, SZ_ENOENT, "no snapshot '%s'", sc->id);
    if (s->status != SZ__SNAP_STATUS__SNAP_PENDING) {
        rc = rpc_reply_status(c->router, msg, env, SZ_ESTATE, "snapshot '%s' is not pending",
                              sc->id);
        goto out;
    }
    if (sc->manifest_parent[0] && cat_manifest(c->cat, sc->manifest_parent, &parent, &pn) != 0) {
        rc = rpc_reply_status(c->router, msg, env, SZ_ENOENT, "no manifest for parent '%s'",
                              sc->manifest_parent);
        goto out;
    }
    rc = mf_decode(tp_msg_data(msg, 2), tp_msg_size(msg, 2), parent, pn, SZ_MAX_DISK_BLOCKS, &ids,
                   &n);
    want = (size_t)((sc->logical_bytes + s->block_size - 1) / s->block_size);
    if (rc != 0 || n != want || sc->logical_bytes > s->size) {
        rc = rpc_reply_status(c->router, msg, env, SZ_EPROTO,
                              "manifest does not match %llu logical bytes",
                              (unsigned long long)sc->logical_bytes);
        goto out;
    }
    if ((rc = coord_new_ids(c, ids, n, &nids, &nn)) != 0 ||
        (ok = malloc(nn ? nn : 1)) == NULL || (rc = coord_verify(c, nids, nn, ok)) != 0) {
        rc = rpc_reply_status(c->router, msg, env, rc ? rc : SZ_ENOMEM, "verification failed");
        goto out;
    }
    for (size_t i = 0; i < nn; i++) {
        if (!ok[i]) {
            rc = coord_commit_missing(c, msg, env, nids, ok, nn);
            goto out;
        }
    }
    s->status = SZ__SNAP_STATUS__SNAP_COMMITTED;
    s->logical_bytes = sc->logical_bytes;
    s->blocks = n;
    s->new_blocks = sc->new_blocks;
    s->new_bytes = sc->new_bytes;
    s->digest = sc->digest;
    if ((rc = cat_commit(c->cat, s, ids, n)) != 0) {
        rc = rpc_reply_status(c->router, msg, env, rc, "catalog write failed");
        goto out;
    }
    log_info("snapshot %s of %s committed: %zu blocks, %zu new ids verified on %u replicas",
             s->id, s->disk, n, nn, c->replicas);
    r.snap = s;
    rc = rpc_reply(c->router, msg, env, &r, NULL);
    s->digest.data = NULL; /* borrowed from the request */
    s->digest.len = 0;
out:
    free(ok);
    free(nids);
    free(ids);
    free(parent);
    cat_free(s);
    return rc;
}

static int coord_snap_abort(struct coord *c, struct tp_msg *msg, sz_env *env)
{
    Sz__SnapInfo *s;
    int rc;

    if (cat_snap_get(c->cat, env->name_ref->name, &s) != 0)
        return rpc_reply_status(c->router, msg, env, SZ_ENOENT, "no snapshot '%s'",
                                env->name_ref->name);
    if (s->status == SZ__SNAP_STATUS__SNAP_PENDING) {
        s->status = SZ__SNAP_STATUS__SNAP_ABORTED;
        cat_snap_put(c->cat, s);
        log_info("snapshot %s aborted", s->id);
    }
    rc = rpc_reply_status(c->router, msg, env, s->status == SZ__SNAP_STATUS__SNAP_ABORTED ? 0
                                                                                       : SZ_ESTATE,
                          s->status == SZ__SNAP_STATUS__SNAP_ABORTED ? NULL : "already committed");
    cat_free(s);
    return rc;
}

static int coord_snap_list(struct coord *c, struct tp_msg *msg, sz_env *env)
{
    Sz__Reply r = SZ__REPLY__INIT;
    Sz__SnapInfo **list;
    size_t n, k = 0;
    int rc;

    if (env->name_ref->name[0]) {
        Sz__DiskInfo *d;
        if (cat_disk_get(c->cat, env->name_ref->name, &d) != 0)
            return rpc_reply_status(c->router, msg, env, SZ_ENOENT, "no disk named '%s'",
                                    env->name_ref->name);
        cat_free(d);
    }
    if ((rc = cat_snaps(c->cat, env->name_ref->name, &list, &n)) != 0)
        return rpc_reply_status(c->router, msg, env, rc, "catalog read failed");
    for (size_t i = 0; i < n; i++) /* only committed snapshots are usable */
        if (list[i]->status == SZ__SNAP_STATUS__SNAP_COMMITTED)
            list[k++] = list[i];
        else
            cat_free(list[i]);
    r.n_snaps = k;
    r.snaps = list;
    rc = rpc_reply(c->router, msg, env, &r, NULL);
    cat_free_list(list, k);
    return rc;
}

static int coord_snap_get(struct coord *c, struct tp_msg *msg, sz_env *env)
{
    Sz__Reply r = SZ__REPLY__INIT;
    Sz__SnapInfo *s;
    struct tp_msg *frames;
    uint8_t *mf;
    size_t len;
    int rc;

    if (coord_committed(c, env->name_ref->name, &s) != 0)
        return rpc_reply_status(c->router, msg, env, SZ_ENOENT, "no committed snapshot '%s'",
                                env->name_ref->name);
    if ((rc = cat_manifest_raw(c->cat, s->id, &mf, &len)) != 0) {
        cat_free(s);
        return rpc_reply_status(c->router, msg, env, rc, "manifest missing for '%s'",
                                env->name_ref->name);
    }
    if ((rc = tp_msg_new(&frames)) == 0)
        rc = tp_msg_add_take(frames, mf, len);
    else
        free(mf);
    if (rc == 0) {
        r.snap = s;
        rc = rpc_reply(c->router, msg, env, &r, frames);
    } else {
        tp_msg_free(frames);
    }
    cat_free(s);
    return rc;
}

/* ---- main loop -------------------------------------------------------- */

static void coord_dispatch(struct coord *c, struct tp_msg *msg, sz_env *env)
{
    switch (env->type) {
    case SZ__MSG_TYPE__MAP_GET: coord_reply_map(c, msg, env); break;
    case SZ__MSG_TYPE__NODE_REGISTER: coord_register(c, msg, env); break;
    case SZ__MSG_TYPE__NODE_HEARTBEAT: coord_heartbeat(c, msg, env); break;
    case SZ__MSG_TYPE__STATUS_GET: coord_status(c, msg, env); break;
    case SZ__MSG_TYPE__DISK_CREATE: coord_disk_create(c, msg, env); break;
    case SZ__MSG_TYPE__DISK_LIST: coord_disk_list(c, msg, env); break;
    case SZ__MSG_TYPE__DISK_GET: coord_disk_get(c, msg, env); break;
    case SZ__MSG_TYPE__DISK_CLONE: coord_disk_clone(c, msg, env); break;
    case SZ__MSG_TYPE__SNAP_BEGIN: coord_snap_begin(c, msg, env); break;
    case SZ__MSG_TYPE__SNAP_COMMIT: coord_snap_commit(c, msg, env); break;
    case SZ__MSG_TYPE__SNAP_ABORT: coord_snap_abort(c, msg, env); break;
    case SZ__MSG_TYPE__SNAP_LIST: coord_snap_list(c, msg, env); break;
    case SZ__MSG_TYPE__SNAP_GET: coord_snap_get(c, msg, env); break;
    default:
        rpc_reply_status(c->router, msg, env, SZ_EPROTO, "%s is not served by the coordinator",
                         codec_type_name(env->type));
    }
}

static void coord_usage(FILE *f)
{
    fprintf(f, "usage: snapcoord --listen ENDPOINT --data DIR [--replicas R] "
               "[--log-level error|warn|info|debug]\n");
}

static int coord_parse_level(const char *s)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"listen", required_argument, 0, 'l'},
                                         {"data", required_argument, 0, 'd'},
                                         {"replicas", required_argument, 0, 'r'},
                                         {"log-level", required_argument, 0, 'v'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    struct coord c = {0};
    const char *listen = NULL, *data = NULL;
    char dir[4096];
    struct sigaction sa;
    int ch, level = LOG_INFO, replicas = 0, rc = 1;

    log_init("snapcoord", LOG_INFO);
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'l': listen = optarg; break;
        case 'd': data = optarg; break;
        case 'r': replicas = atoi(optarg); break;
        case 'v':
            if ((level = coord_parse_level(optarg)) < 0) {
                fprintf(stderr, "snapcoord: unknown log level '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': coord_usage(stdout); return 0;
        default: coord_usage(stderr); return 2;
        }
    }
    if (listen == NULL || data == NULL) {
        fprintf(stderr, "snapcoord: --listen and --data are required\n");
        return 2;
    }
    if (replicas < 0 || replicas > CMAP_MAX_REPLICAS) {
        fprintf(stderr, "snapcoord: --replicas must be 1..%d\n", CMAP_MAX_REPLICAS);
        return 2;
    }
    log_init("snapcoord", level);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = coord_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof(dir), "%s/catalog", data);
    if (seal_init() != 0 || fsu_mkdirs(dir, 0700) != 0 || cat_open(dir, &c.cat) != 0) {
        fprintf(stderr, "snapcoord: cannot open catalog in %s\n", dir);
        return 1;
    }
    if (coord_load(&c, (uint32_t)replicas) != 0 || tp_ctx_new(1, &c.ctx) != 0 ||
        tp_bind(c.ctx, TP_ROUTER, listen, SZ_MAX_MANIFEST_FRAME, &c.router) != 0) {
        fprintf(stderr, "snapcoord: cannot serve on %s\n", listen);
        goto out;
    }
    log_info("snapcoord ready on %s (replicas %u, epoch %llu, %zu known nodes)", listen,
             c.replicas, (unsigned long long)c.epoch, c.nnodes);
    while (!coord_stop) {
        struct tp_msg *msg;
        sz_env *env;
        if (rpc_serve_recv(c.router, 500, &msg, &env) != 0)
            continue;
        coord_dispatch(&c, msg, env);
        codec_free(env);
        tp_msg_free(msg);
    }
    log_info("snapcoord stopped");
    rc = 0;
out:
    for (size_t i = 0; i < c.nnodes; i++)
        tp_close(c.nodes[i].sock);
    free(c.nodes);
    cmap_free(c.map);
    tp_close(c.router);
    tp_ctx_free(c.ctx);
    cat_close(c.cat);
    return rc;
}
