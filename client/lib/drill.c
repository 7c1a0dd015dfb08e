/*
 * drill: disaster-recovery drills, cluster scrub, and node administration.
 *
 * A drill restores a disk's newest committed snapshot as if one zone were
 * lost (no request ever goes there), then re-reads the restored image,
 * recomputes every block id and the manifest digest, and compares it with
 * the digest the client recorded when the snapshot was committed.  The
 * result is measured, not assumed: RPO is the snapshot's age, RTO the
 * restore's duration, and zones_used the zones blocks really came from.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clustermap.h"
#include "err.h"
#include "fsutil.h"
#include "internal.h"
#include "manifest.h"
#include "rpc.h"
#include "seal.h"
#include "transport.h"

/* ---- verification: re-read the image, recompute the manifest digest ---- */

struct dr_verify {
    sz_client *c;
    int fd;
    uint64_t size;
    uint32_t bs;
    size_t nblocks;
    uint8_t *ids;
    size_t next; /* protected by mu */
    pthread_mutex_t mu;
    int failed;
};

static void *dr_verify_worker(void *arg)
{
    struct dr_verify *v = arg;
    uint8_t *buf = malloc(v->bs);

    if (buf == NULL) {
        v->failed = 1;
        return NULL;
    }
    for (;;) {
        size_t i, len, got = 0;
        pthread_mutex_lock(&v->mu);
        i = v->next++;
        pthread_mutex_unlock(&v->mu);
        if (i >= v->nblocks || v->failed)
            break;
        len = (size_t)((v->size - (uint64_t)i * v->bs) < v->bs ? v->size - (uint64_t)i * v->bs
                                                              : v->bs);
        while (got < len) {
            ssize_t r = pread(v->fd, buf + got, len - got, (off_t)((uint64_t)i * v->bs + got));
            if (r <= 0) {
                v->failed = 1;
                break;
            }
            got += (size_t)r;
        }
        if (v->failed)
            break;
        if (buf[0] == 0 && memcmp(buf, buf + 1, len - 1) == 0)
            memset(v->ids + 32 * i, 0, 32);
        else
            seal_block_id(v->c->keys, buf, len, v->ids + 32 * i);
    }
    free(buf);
    return NULL;
}

/* 1 if the image at path hashes to the recorded digest, 0 if not, <0 error. */
static int dr_verify(sz_client *c, const Sz__SnapInfo *s, const char *path)
{
    struct dr_verify v = {.c = c, .size = s->logical_bytes, .bs = s->block_size};
    uint8_t digest[SEAL_ID_BYTES];
    pthread_t th[8];
    int nt = c->threads > 8 ? 8 : c->threads, started = 0, rc;

    if (s->digest.len != SEAL_ID_BYTES)
        return cl_seterr(c, SZ_ENOENT, "snapshot %s has no recorded digest", s->id);
    v.nblocks = (size_t)((v.size + v.bs - 1) / v.bs);
    if ((v.fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return cl_seterr(c, SZ_EIO, "cannot reopen '%s': %s", path, strerror(errno));
    if ((v.ids = calloc(v.nblocks ? v.nblocks : 1, 32)) == NULL) {
        close(v.fd);
        return SZ_ENOMEM;
    }
    pthread_mutex_init(&v.mu, NULL);
    for (; started < nt; started++)
        if (pthread_create(&th[started], NULL, dr_verify_worker, &v) != 0)
            break;
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    if (started == 0 || v.failed) {
        rc = cl_seterr(c, SZ_EIO, "cannot re-read '%s' to verify it", path);
    } else {
        seal_digest(c->keys, v.ids, v.nblocks * 32, digest);
        rc = memcmp(digest, s->digest.data, SEAL_ID_BYTES) == 0;
    }
    pthread_mutex_destroy(&v.mu);
    free(v.ids);
    close(v.fd);
    return rc;
}

static void dr_readiness(sz_client *c, const char *disk, const char *id, struct sz_drill_result *out)
{
    struct sz_snapshot *list = NULL;
    size_t n = 0;
    int saved = c->err_set;

    c->err_set = 1; /* readiness is informational: keep any earlier error */
    if (sz_snapshot_list(c, disk, &list, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            if (strcmp(list[i].id, id) != 0)
                continue;
            out->fully_protected = list[i].fully_protected;
            out->nrestorable = list[i].nrestorable;
            memcpy(out->restorable_zones, list[i].restorable_zones, sizeof(out->restorable_zones));
        }
    }
    free(list);
    c->err_set = saved;
}

int sz_drill(sz_client *c, const char *disk, const char *fail_zone, const char *path,
             struct sz_drill_result *out)
{
    struct sz_restore_options opt = {.fail_zone = fail_zone};
    struct sz_restore_result rr;
    Sz__SnapInfo *s = NULL;
    uint8_t *ids = NULL;
    char tmp[4096];
    size_t n = 0;
    int rc;

    cl_reset(c);
    memset(out, 0, sizeof(*out));
    if ((rc = cl_need_keys(c)) != 0)
        return rc;
    if (fail_zone == NULL || fail_zone[0] == '\0')
        return cl_seterr(c, SZ_EINVAL, "a drill needs --fail-zone ZONE");
    if (path == NULL) {
        snprintf(tmp, sizeof(tmp), "%s/snapzone-drill-%ld.img",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (long)getpid());
    }
    if ((rc = cl_get_snapshot(c, disk, &s, &ids, &n)) != 0)
        return rc;
    snprintf(out->snapshot, sizeof(out->snapshot), "%s", s->id);
    snprintf(out->fail_zone, sizeof(out->fail_zone), "%s", fail_zone);
    dr_readiness(c, s->disk, s->id, out); /* redundancy as it stands before the drill */
    rc = cl_restore_snap(c, s, ids, n, path ? path : tmp, &opt, &rr);
    if (rc == 0) {
        out->rto_seconds = rr.seconds;
        out->rpo_seconds = (double)(fsu_wall_s() - s->created);
        out->bytes = rr.bytes;
        out->nzones_used = rr.nzones_used;
        memcpy(out->zones_used, rr.zones_used, sizeof(out->zones_used));
        rc = dr_verify(c, s, path ? path : tmp);
        if (rc >= 0) {
            out->verified = rc;
            rc = 0;
        }
        if (path == NULL)
            unlink(tmp);
    }
    free(ids);
    codec_unpack_free(&s->base);
    return rc;
}

/* ---- scrub and node administration ------------------------------------ */

int sz_cluster_scrub(sz_client *c, struct sz_scrub_result *out)
{
    struct tp_sock *socks[CMAP_MAX_NODES > 256 ? 256 : CMAP_MAX_NODES];
    uint64_t ids[256], deadline;
    struct cmap *map = NULL;
    size_t n = 0;
    int rc;

    cl_reset(c);
    memset(out, 0, sizeof(*out));
    if ((rc = cl_get_map(c, &map)) != 0)
        return rc;
    for (size_t i = 0; i < map->nnodes && n < 256; i++) {
        sz_env env = SZ__ENVELOPE__INIT;
        if (map->nodes[i].state != CMAP_UP && map->nodes[i].state != CMAP_DRAINING)
            continue;
        socks[n] = NULL;
        if (tp_connect(c->ctx, TP_DEALER, map->nodes[i].endpoint, SZ_MAX_ENVELOPE, &socks[n]) != 0 ||
            rpc_send_req(socks[n], SZ__MSG_TYPE__NODE_SCRUB, &env, NULL, &ids[n]) != 0)
            out->failed_nodes++;
        n++;
    }
    /* A scrub reads every stored byte: allow it far longer than one request. */
    deadline = fsu_now_ms() + 30ull * (uint64_t)c->timeout_ms;
    for (size_t i = 0; i < n; i++) {
        sz_env *rep = NULL;
        if (socks[i] == NULL)
            continue;
        if (rpc_recv_reply(socks[i], ids[i], deadline, &rep, NULL) == 0 && rep->reply->scrub) {
            out->checked += rep->reply->scrub->checked;
            out->corrupt += rep->reply->scrub->corrupt;
            out->repaired += rep->reply->scrub->repaired;
            out->missing += rep->reply->scrub->missing;
            out->nodes++;
        } else {
            out->failed_nodes++;
        }
        codec_free(rep);
        tp_close(socks[i]);
    }
    cmap_free(map);
    if (out->nodes == 0)
        return cl_seterr(c, SZ_EUNAVAIL, "no storage node completed the scrub");
    return 0;
}

static int dr_node_admin(sz_client *c, int type, const char *node)
{
    Sz__NameRef nr = SZ__NAME_REF__INIT;
    sz_env env = SZ__ENVELOPE__INIT, *rep = NULL;
    int rc;

    cl_reset(c);
    nr.name = (char *)node;
    env.body_case = SZ__ENVELOPE__BODY_NAME_REF;
    env.name_ref = &nr;
    rc = cl_coord_call(c, type, &env, NULL, &rep, NULL);
    codec_free(rep);
    return rc;
}

int sz_node_drain(sz_client *c, const char *node)
{
    return dr_node_admin(c, SZ__MSG_TYPE__NODE_DRAIN, node);
}

int sz_node_remove(sz_client *c, const char *node)
{
    return dr_node_admin(c, SZ__MSG_TYPE__NODE_REMOVE, node);
}
