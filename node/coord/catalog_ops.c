/*
 * catalog_ops: disks and snapshots, as the coordinator serves them.
 *
 * Snapshot states (catalog record SnapInfo.status):
 *
 *   (none) --coord_snap_begin--> PENDING --coord_snap_commit--> COMMITTED
 *                                   |
 *                                   +--coord_snap_abort, or pending longer
 *                                      than pending_timeout_s
 *                                      (coord_abort_stale)--> ABORTED
 *
 * Commit rule (degraded writes).  COMMITTED is written (cat_commit, one
 * synced batch) only after every block the manifest references that the
 * catalog did not already hold was found, by BLOCK_HAVE, durable on at least
 * W = min(R, 2) live nodes spanning at least min(R, 2) distinct zones.  With
 * all nodes up that is all R replicas; blocks committed with fewer than R, or
 * in fewer than min(R, zones) zones, are what the audit counts as
 * under-replicated until repair restores them.  Only COMMITTED snapshots
 * are listed or restorable.  Committing an already committed snapshot again
 * succeeds (a client may retry after a coordinator restart).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "coord.h"
#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "manifest.h"
#include "rpc.h"
#include "seal.h"
#include "transport.h"

#define COORD_MAX_MISSING 4096

static int coord_reply_disk(struct coord *c, struct tp_msg *msg, sz_env *env, Sz__DiskInfo *d)
{
    Sz__Reply r = SZ__REPLY__INIT;

    r.disk = d;
    return rpc_reply(c->router, msg, env, &r, NULL);
}

int coord_disk_create(struct coord *c, struct tp_msg *msg, sz_env *env)
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

int coord_disk_get(struct coord *c, struct tp_msg *msg, sz_env *env)
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

int coord_disk_list(struct coord *c, struct tp_msg *msg, sz_env *env)
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

int coord_disk_clone(struct coord *c, struct tp_msg *msg, sz_env *env)
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

int coord_snap_begin(struct coord *c, struct tp_msg *msg, sz_env *env)
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
    snprintf(err, sizeof(err), "%zu blocks are not durable on %u nodes in %u zones", total,
             c->replicas < 2 ? c->replicas : 2, c->replicas < 2 ? c->replicas : 2);
    r.status = SZ_EREPLICAS;
    r.error = err;
    r.n_missing = m;
    r.missing = miss;
    rc = rpc_reply(c->router, msg, env, &r, NULL);
    free(miss);
    return rc;
}

/* The commit rule: W = min(R, 2) copies in min(R, 2) distinct zones. */
static int coord_durable_enough(struct coord *c, const struct coord_loc *l)
{
    uint32_t w = c->replicas < 2 ? c->replicas : 2;
    return l->copies >= w && (uint32_t)__builtin_popcountll(l->zones) >= w;
}

static int coord_reply_snap(struct coord *c, struct tp_msg *msg, sz_env *env, Sz__SnapInfo *s)
{
    Sz__Reply r = SZ__REPLY__INIT;

    r.snap = s;
    return rpc_reply(c->router, msg, env, &r, NULL);
}

int coord_snap_commit(struct coord *c, struct tp_msg *msg, sz_env *env)
{
    const Sz__SnapCommit *sc = env->snap_commit;
    Sz__SnapInfo *s = NULL;
    struct coord_loc *loc = NULL;
    uint8_t *parent = NULL, *ids = NULL, *nids = NULL, *ok = NULL;
    size_t pn = 0, n = 0, nn = 0, want, short_zones = 0;
    int rc;

    if (tp_msg_count(msg) != 3)
        return rpc_reply_status(c->router, msg, env, SZ_EPROTO, "commit needs a manifest frame");
    if (cat_snap_get(c->cat, sc->id, &s) != 0)
        return rpc_reply_status(c->router, msg, env, SZ_ENOENT, "no snapshot '%s'", sc->id);
    if (s->status == SZ__SNAP_STATUS__SNAP_COMMITTED) {
        rc = coord_reply_snap(c, msg, env, s); /* a retried commit */
        goto out;
    }
    if (s->status != SZ__SNAP_STATUS__SNAP_PENDING) {
        rc = rpc_reply_status(c->router, msg, env, SZ_ESTATE,
                              "snapshot '%s' was aborted; take a new one", sc->id);
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
    if ((rc = coord_new_ids(c, ids, n, &nids, &nn)) != 0 || (ok = malloc(nn ? nn : 1)) == NULL ||
        (loc = malloc((nn ? nn : 1) * sizeof(*loc))) == NULL ||
        (rc = coord_locate(c, nids, nn, loc)) != 0) {
        rc = rpc_reply_status(c->router, msg, env, rc ? rc : SZ_ENOMEM, "verification failed");
        goto out;
    }
    for (size_t i = 0; i < nn; i++) {
        ok[i] = (uint8_t)coord_durable_enough(c, &loc[i]);
        short_zones += ok[i] && !coord_protected(c, &loc[i], 0);
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
        s->digest.data = NULL;
        s->digest.len = 0;
        rc = rpc_reply_status(c->router, msg, env, rc, "catalog write failed");
        goto out;
    }
    log_info("snapshot %s of %s committed: %zu blocks, %zu new ids verified (%zu of them "
             "under-replicated, left to repair)", s->id, s->disk, n, nn, short_zones);
    if (short_zones > 0)
        coord_audit_restart(c);
    rc = coord_reply_snap(c, msg, env, s);
    s->digest.data = NULL; /* borrowed from the request */
    s->digest.len = 0;
out:
    free(loc);
    free(ok);
    free(nids);
    free(ids);
    free(parent);
    cat_free(s);
    return rc;
}

void coord_abort_stale(struct coord *c)
{
    Sz__SnapInfo **list;
    uint64_t now = fsu_wall_s();
    size_t n;

    if (cat_snaps(c->cat, NULL, &list, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        Sz__SnapInfo *s = list[i];
        if (s->status != SZ__SNAP_STATUS__SNAP_PENDING || now < s->created + c->cfg.pending_timeout_s)
            continue;
        s->status = SZ__SNAP_STATUS__SNAP_ABORTED;
        cat_snap_put(c->cat, s);
        log_info("snapshot %s aborted: pending for more than %llu s", s->id,
                 (unsigned long long)c->cfg.pending_timeout_s);
    }
    cat_free_list(list, n);
}

int coord_snap_abort(struct coord *c, struct tp_msg *msg, sz_env *env)
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

static int coord_cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

/* Readiness of each snapshot: zones holding a live copy of every block, and
 * whether every block has R live copies in distinct zones.  Locates the
 * distinct ids of all listed snapshots once. */
static int coord_readiness(struct coord *c, Sz__SnapInfo **list, size_t n, char ***zone_lists)
{
    uint8_t **mids = calloc(n ? n : 1, sizeof(*mids)), *all = NULL;
    size_t *mn = calloc(n ? n : 1, sizeof(*mn)), total = 0, u = 0, nz = coord_nzones(c);
    struct coord_loc *loc = NULL;
    uint64_t up_zones = 0;
    int rc = SZ_ENOMEM;

    if (mids == NULL || mn == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (cat_manifest(c->cat, list[i]->id, &mids[i], &mn[i]) != 0)
            mn[i] = 0;
        total += mn[i];
    }
    if ((all = malloc(total ? total * 32 : 1)) == NULL)
        goto out;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < mn[i]; k++)
            if (!mf_is_zero(mids[i] + 32 * k))
                memcpy(all + 32 * u++, mids[i] + 32 * k, 32);
    qsort(all, u, 32, coord_cmp_id);
    total = 0;
    for (size_t k = 0; k < u; k++)
        if (total == 0 || memcmp(all + 32 * (total - 1), all + 32 * k, 32) != 0)
            memmove(all + 32 * total++, all + 32 * k, 32);
    if ((loc = malloc((total ? total : 1) * sizeof(*loc))) == NULL ||
        (rc = coord_locate(c, all, total, loc)) != 0)
        goto out;
    for (size_t j = 0; j < c->nnodes; j++)
        if (c->nodes[j].live == CN_UP && coord_zone_index(c, c->nodes[j].zone) >= 0)
            up_zones |= 1ull << coord_zone_index(c, c->nodes[j].zone);
    for (size_t i = 0; i < n; i++) {
        uint64_t zones = up_zones;
        int prot = 1;
        for (size_t k = 0; k < mn[i]; k++) {
            const uint8_t *id = mids[i] + 32 * k, *hit;
            if (mf_is_zero(id))
                continue;
            hit = bsearch(id, all, total, 32, coord_cmp_id);
            if (hit == NULL)
                continue;
            zones &= loc[(size_t)(hit - all) / 32].zones;
            prot &= coord_protected(c, &loc[(size_t)(hit - all) / 32], 1);
        }
        zone_lists[i] = calloc(nz + 1, sizeof(char *));
        if (zone_lists[i] == NULL)
            goto out;
        for (size_t z = 0; z < nz; z++)
            if (zones & (1ull << z))
                zone_lists[i][list[i]->n_restorable_zones++] = (char *)coord_zone_name(c, z);
        list[i]->restorable_zones = zone_lists[i];
        list[i]->fully_protected = prot;
        list[i]->readiness_known = 1;
    }
    rc = 0;
out:
    for (size_t i = 0; mids && i < n; i++)
        free(mids[i]);
    free(mids);
    free(mn);
    free(all);
    free(loc);
    return rc;
}

int coord_snap_list(struct coord *c, struct tp_msg *msg, sz_env *env)
{
    Sz__Reply r = SZ__REPLY__INIT;
    Sz__SnapInfo **list;
    char ***zone_lists;
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
    zone_lists = calloc(k ? k : 1, sizeof(*zone_lists));
    if (zone_lists != NULL && coord_readiness(c, list, k, zone_lists) != 0)
        log_warn("snapshot readiness could not be computed");
    r.n_snaps = k;
    r.snaps = list;
    rc = rpc_reply(c->router, msg, env, &r, NULL);
    for (size_t i = 0; i < k; i++) { /* the zone names are borrowed */
        list[i]->n_restorable_zones = 0;
        list[i]->restorable_zones = NULL;
        if (zone_lists)
            free(zone_lists[i]);
    }
    free(zone_lists);
    cat_free_list(list, k);
    return rc;
}

int coord_snap_get(struct coord *c, struct tp_msg *msg, sz_env *env)
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

