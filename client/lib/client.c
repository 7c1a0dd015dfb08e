/*
 * client: the handle, errors, coordinator calls and catalog operations
 * (cluster status, disks, snapshot listing).  The data paths live in
 * backup.c and restore.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clustermap.h"
#include "err.h"
#include "internal.h"
#include "manifest.h"
#include "rpc.h"
#include "seal.h"
#include "transport.h"

#define CL_DEFAULT_TIMEOUT_MS 10000
#define CL_COORD_ATTEMPTS 3 /* the whole timeout is split across them */
#define CL_DEFAULT_THREADS 4

/* ---- errors ----------------------------------------------------------- */

int cl_seterr(sz_client *c, int rc, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&c->err_mu);
    if (!c->err_set) {
        va_start(ap, fmt);
        vsnprintf(c->err, sizeof(c->err), fmt, ap);
        va_end(ap);
        c->err_set = 1;
    }
    pthread_mutex_unlock(&c->err_mu);
    return rc;
}

void cl_reset(sz_client *c)
{
    c->err_set = 0;
    c->err[0] = '\0';
}

const char *sz_last_error(const sz_client *c)
{
    return c && c->err[0] ? c->err : "";
}

void cl_fpr_hex(const uint8_t *fpr, size_t len, char out[33])
{
    size_t i;
    for (i = 0; i < len && i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", fpr[i]);
    out[2 * i] = '\0';
}

/* ---- handle ----------------------------------------------------------- */

int sz_keygen(const char *path, char fpr_hex[33])
{
    struct seal_keys *k;
    int rc;

    if (seal_init() != 0)
        return SZ_EINTERNAL;
    if ((rc = seal_keygen_file(path)) != 0)
        return rc;
    if (fpr_hex != NULL) {
        if ((rc = seal_keys_load(path, &k)) != 0)
            return rc;
        cl_fpr_hex(seal_fingerprint(k), SEAL_FPR_BYTES, fpr_hex);
        seal_keys_free(k);
    }
    return 0;
}

int sz_open(const struct sz_options *opt, sz_client **out)
{
    sz_client *c;
    int rc;

    *out = NULL;
    if (opt == NULL || opt->coordinator == NULL || opt->coordinator[0] == '\0')
        return SZ_EINVAL;
    if (seal_init() != 0)
        return SZ_EINTERNAL;
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return SZ_ENOMEM;
    pthread_mutex_init(&c->err_mu, NULL);
    c->timeout_ms = opt->timeout_ms > 0 ? opt->timeout_ms : CL_DEFAULT_TIMEOUT_MS;
    c->threads = opt->threads > 0 ? opt->threads : CL_DEFAULT_THREADS;
    if ((c->coordinator = strdup(opt->coordinator)) == NULL) {
        rc = SZ_ENOMEM;
        goto err;
    }
    if (opt->keyfile != NULL && (rc = seal_keys_load(opt->keyfile, &c->keys)) != 0) {
        cl_seterr(c, rc, "cannot load key file '%s': %s", opt->keyfile,
                  rc == SZ_EINVAL ? "not a snapzone key file" : sz_strerror(rc));
        goto err;
    }
    if ((rc = tp_ctx_new(1, &c->ctx)) != 0)
        goto err;
    if (tp_connect(c->ctx, TP_DEALER, c->coordinator, SZ_MAX_MANIFEST_FRAME, &c->coord) != 0) {
        rc = cl_seterr(c, SZ_EINVAL, "bad coordinator endpoint '%s'", c->coordinator);
        goto err;
    }
    *out = c;
    return 0;
err:
    *out = c; /* so the caller can read sz_last_error; sz_close frees it */
    return rc;
}

void sz_close(sz_client *c)
{
    if (c == NULL)
        return;
    tp_close(c->coord);
    tp_ctx_free(c->ctx);
    seal_keys_free(c->keys);
    free(c->coordinator);
    pthread_mutex_destroy(&c->err_mu);
    free(c);
}

int cl_need_keys(sz_client *c)
{
    if (c->keys == NULL)
        return cl_seterr(c, SZ_EINVAL, "this command needs a key: set SNAPZONE_KEYFILE or "
                                       "pass --keyfile");
    return 0;
}

/* Calls that are safe to repeat: a retry after a coordinator restart or a
 * lost reply does no harm (a repeated commit returns the committed record). */
static int cl_idempotent(int type)
{
    return type != SZ__MSG_TYPE__DISK_CREATE && type != SZ__MSG_TYPE__DISK_CLONE;
}

static struct tp_msg *cl_copy_frames(const struct tp_msg *frames)
{
    struct tp_msg *m;

    if (frames == NULL || tp_msg_new(&m) != 0)
        return NULL;
    for (size_t i = 0; i < tp_msg_count(frames); i++)
        tp_msg_share(m, frames, i);
    return m;
}

int cl_coord_call(sz_client *c, int type, sz_env *env, struct tp_msg *frames, sz_env **reply,
                  struct tp_msg **rframes)
{
    int attempts = cl_idempotent(type) ? CL_COORD_ATTEMPTS : 1, rc = SZ_ETIMEDOUT;
    int per_try = (c->timeout_ms + attempts - 1) / attempts;

    *reply = NULL;
    if (per_try < 3000) /* enough for a commit check that waits on a dead node */
        per_try = 3000;
    for (int a = 0; a < attempts; a++) {
        struct tp_msg *f = a + 1 < attempts ? cl_copy_frames(frames) : frames;
        if (a + 1 == attempts)
            frames = NULL;
        if (c->coord == NULL &&
            tp_connect(c->ctx, TP_DEALER, c->coordinator, SZ_MAX_MANIFEST_FRAME, &c->coord) != 0) {
            tp_msg_free(f);
            break;
        }
        rc = rpc_call(c->coord, type, env, f, per_try, reply, rframes);
        if (rc != SZ_ETIMEDOUT && rc != SZ_EIO)
            break;
        /* Forget requests queued to a dead coordinator, then try again. */
        tp_close(c->coord);
        c->coord = NULL;
    }
    tp_msg_free(frames);
    if (rc == 0)
        return 0;
    if (*reply != NULL && rpc_error_text(*reply)[0])
        cl_seterr(c, rc, "%s", rpc_error_text(*reply));
    else if (rc == SZ_ETIMEDOUT)
        cl_seterr(c, rc, "coordinator %s did not answer within %d ms", c->coordinator,
                  c->timeout_ms);
    else
        cl_seterr(c, rc, "coordinator request failed: %s", sz_strerror(rc));
    if (rc != SZ_EREPLICAS) { /* only a commit's "missing" list is read after failure */
        codec_free(*reply);
        *reply = NULL;
    }
    return rc;
}

int cl_get_map(sz_client *c, struct cmap **out)
{
    Sz__MapGet mg = SZ__MAP_GET__INIT;
    sz_env env = SZ__ENVELOPE__INIT, *rep = NULL;
    int rc;

    env.body_case = SZ__ENVELOPE__BODY_MAP_GET;
    env.map_get = &mg;
    rc = cl_coord_call(c, SZ__MSG_TYPE__MAP_GET, &env, NULL, &rep, NULL);
    if (rc == 0 && (rep->reply->map == NULL || codec_map_from_pb(rep->reply->map, out) != 0))
        rc = cl_seterr(c, SZ_EPROTO, "coordinator sent a bad cluster map");
    codec_free(rep);
    return rc;
}

static void cl_copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

void cl_copy_snap(struct sz_snapshot *d, const Sz__SnapInfo *s)
{
    memset(d, 0, sizeof(*d));
    cl_copy_str(d->id, sizeof(d->id), s->id);
    cl_copy_str(d->disk, sizeof(d->disk), s->disk);
    cl_copy_str(d->name, sizeof(d->name), s->name);
    cl_copy_str(d->parent, sizeof(d->parent), s->parent);
    d->created = s->created;
    d->logical_bytes = s->logical_bytes;
    d->blocks = s->blocks;
    d->new_blocks = s->new_blocks;
    d->new_bytes = s->new_bytes;
    d->block_size = s->block_size;
    d->automatic = s->automatic;
    d->readiness_known = s->readiness_known;
    d->fully_protected = s->fully_protected;
    for (size_t i = 0; i < s->n_restorable_zones && d->nrestorable < 8; i++)
        cl_copy_str(d->restorable_zones[d->nrestorable++], SZ_NAME_MAX, s->restorable_zones[i]);
}

void cl_copy_disk(struct sz_disk *d, const Sz__DiskInfo *s)
{
    memset(d, 0, sizeof(*d));
    cl_copy_str(d->name, sizeof(d->name), s->name);
    cl_copy_str(d->zone, sizeof(d->zone), s->zone);
    cl_copy_str(d->source_snapshot, sizeof(d->source_snapshot), s->source_snapshot);
    d->size = s->size;
    d->block_size = s->block_size;
    d->created = s->created;
}

/* ---- cluster and disks ------------------------------------------------ */

int sz_cluster_status(sz_client *c, struct sz_cluster_status **out)
{
    sz_env env = SZ__ENVELOPE__INIT, *rep = NULL;
    struct sz_cluster_status *st;
    const Sz__ClusterMap *m;
    int rc;

    cl_reset(c);
    rc = cl_coord_call(c, SZ__MSG_TYPE__STATUS_GET, &env, NULL, &rep, NULL);
    if (rc != 0)
        goto out;
    if (rep->reply->cluster == NULL || rep->reply->cluster->map == NULL) {
        rc = cl_seterr(c, SZ_EPROTO, "coordinator sent no status");
        goto out;
    }
    m = rep->reply->cluster->map;
    st = calloc(1, sizeof(*st));
    if (st == NULL || (st->nodes = calloc(m->n_nodes + 1, sizeof(*st->nodes))) == NULL ||
        (st->zones = calloc(m->n_zones + 1, sizeof(*st->zones))) == NULL) {
        sz_cluster_status_free(st);
        rc = SZ_ENOMEM;
        goto out;
    }
    st->epoch = m->epoch;
    st->replicas = m->replicas;
    st->under_replicated_blocks = rep->reply->cluster->under_replicated_blocks;
    st->nzones = m->n_zones;
    for (size_t i = 0; i < m->n_zones; i++)
        cl_copy_str(st->zones[i], SZ_NAME_MAX, m->zones[i]);
    st->nnodes = m->n_nodes;
    for (size_t i = 0; i < m->n_nodes; i++) {
        struct sz_node_status *n = &st->nodes[i];
        cl_copy_str(n->id, sizeof(n->id), m->nodes[i]->id);
        cl_copy_str(n->zone, sizeof(n->zone), m->nodes[i]->zone);
        cl_copy_str(n->endpoint, sizeof(n->endpoint), m->nodes[i]->endpoint);
        n->state = cmap_state_name((int)m->nodes[i]->state);
        n->blocks = m->nodes[i]->blocks;
        n->stored_bytes = m->nodes[i]->stored_bytes;
    }
    *out = st;
out:
    codec_free(rep);
    return rc;
}

void sz_cluster_status_free(struct sz_cluster_status *st)
{
    if (st == NULL)
        return;
    free(st->nodes);
    free(st->zones);
    free(st);
}

int sz_disk_create(sz_client *c, const char *name, uint64_t size, uint32_t block_size,
                   const char *zone, struct sz_disk *out)
{
    Sz__DiskCreate dc = SZ__DISK_CREATE__INIT;
    sz_env env = SZ__ENVELOPE__INIT, *rep = NULL;
    int rc;

    cl_reset(c);
    dc.name = (char *)name;
    dc.size = size;
    dc.block_size = block_size ? block_size : SZ_DEFAULT_BLOCK_SIZE;
    dc.zone = (char *)(zone ? zone : "");
    env.body_case = SZ__ENVELOPE__BODY_DISK_CREATE;
    env.disk_create = &dc;
    rc = cl_coord_call(c, SZ__MSG_TYPE__DISK_CREATE, &env, NULL, &rep, NULL);
    if (rc == 0 && rep->reply->disk)
        cl_copy_disk(out, rep->reply->disk);
    codec_free(rep);
    return rc;
}

int sz_disk_list(sz_client *c, struct sz_disk **out, size_t *n)
{
    sz_env env = SZ__ENVELOPE__INIT, *rep = NULL;
    int rc;

    cl_reset(c);
    rc = cl_coord_call(c, SZ__MSG_TYPE__DISK_LIST, &env, NULL, &rep, NULL);
    if (rc == 0) {
        *out = calloc(rep->reply->n_disks + 1, sizeof(**out));
        if (*out == NULL) {
            rc = SZ_ENOMEM;
        } else {
            for (size_t i = 0; i < rep->reply->n_disks; i++)
                cl_copy_disk(&(*out)[i], rep->reply->disks[i]);
            *n = rep->reply->n_disks;
        }
    }
    codec_free(rep);
    return rc;
}

int sz_disk_clone(sz_client *c, const char *snapshot, const char *name, struct sz_disk *out)
{
    Sz__DiskClone dc = SZ__DISK_CLONE__INIT;
    sz_env env = SZ__ENVELOPE__INIT, *rep = NULL;
    int rc;

    cl_reset(c);
    dc.snapshot = (char *)snapshot;
    dc.name = (char *)name;
    env.body_case = SZ__ENVELOPE__BODY_DISK_CLONE;
    env.disk_clone = &dc;
    rc = cl_coord_call(c, SZ__MSG_TYPE__DISK_CLONE, &env, NULL, &rep, NULL);
    if (rc == 0 && rep->reply->disk)
        cl_copy_disk(out, rep->reply->disk);
    codec_free(rep);
    return rc;
}

/* ---- snapshots -------------------------------------------------------- */

static int cl_list_snaps(sz_client *c, const char *disk, sz_env **rep)
{
    Sz__NameRef nr = SZ__NAME_REF__INIT;
    sz_env env = SZ__ENVELOPE__INIT;

    nr.name = (char *)(disk ? disk : "");
    env.body_case = SZ__ENVELOPE__BODY_NAME_REF;
    env.name_ref = &nr;
    return cl_coord_call(c, SZ__MSG_TYPE__SNAP_LIST, &env, NULL, rep, NULL);
}

int sz_snapshot_list(sz_client *c, const char *disk, struct sz_snapshot **out, size_t *n)
{
    sz_env *rep = NULL;
    int rc;

    cl_reset(c);
    rc = cl_list_snaps(c, disk, &rep);
    if (rc == 0) {
        *out = calloc(rep->reply->n_snaps + 1, sizeof(**out));
        if (*out == NULL) {
            rc = SZ_ENOMEM;
        } else {
            for (size_t i = 0; i < rep->reply->n_snaps; i++)
                cl_copy_snap(&(*out)[i], rep->reply->snaps[i]);
            *n = rep->reply->n_snaps;
        }
    }
    codec_free(rep);
    return rc;
}

static int cl_fetch_snapshot(sz_client *c, const char *id, Sz__SnapInfo **snap, uint8_t **ids,
                             size_t *n)
{
    Sz__NameRef nr = SZ__NAME_REF__INIT;
    sz_env env = SZ__ENVELOPE__INIT, *rep = NULL;
    struct tp_msg *frames = NULL;
    uint8_t *buf = NULL;
    size_t len;
    int rc;

    nr.name = (char *)id;
    env.body_case = SZ__ENVELOPE__BODY_NAME_REF;
    env.name_ref = &nr;
    rc = cl_coord_call(c, SZ__MSG_TYPE__SNAP_GET, &env, NULL, &rep, &frames);
    if (rc != 0)
        goto out;
    if (rep->reply->snap == NULL || tp_msg_count(frames) != 2) {
        rc = cl_seterr(c, SZ_EPROTO, "coordinator sent no manifest for '%s'", id);
        goto out;
    }
    rc = mf_decode(tp_msg_data(frames, 1), tp_msg_size(frames, 1), NULL, 0, SZ_MAX_DISK_BLOCKS,
                   ids, n);
    if (rc != 0) {
        rc = cl_seterr(c, rc, "manifest of '%s' does not decode", id);
        goto out;
    }
    /* Keep the SnapInfo beyond the envelope's lifetime: repack/unpack. */
    if ((rc = codec_pack(&rep->reply->snap->base, &buf, &len)) == 0)
        rc = codec_unpack(&sz__snap_info__descriptor, buf, len, (ProtobufCMessage **)snap);
    if (rc != 0) {
        free(*ids);
        *ids = NULL;
    }
out:
    free(buf);
    tp_msg_free(frames);
    codec_free(rep);
    return rc;
}

int cl_get_snapshot(sz_client *c, const char *what, Sz__SnapInfo **snap, uint8_t **ids,
                    size_t *n)
{
    Sz__NameRef nr = SZ__NAME_REF__INIT;
    sz_env env = SZ__ENVELOPE__INIT, *rep = NULL;
    char id[SZ_NAME_MAX] = "";
    int rc;

    if (strncmp(what, "snap-", 5) == 0)
        return cl_fetch_snapshot(c, what, snap, ids, n);
    /* A disk name: its newest committed snapshot, else its clone source. */
    nr.name = (char *)what;
    env.body_case = SZ__ENVELOPE__BODY_NAME_REF;
    env.name_ref = &nr;
    rc = cl_coord_call(c, SZ__MSG_TYPE__DISK_GET, &env, NULL, &rep, NULL);
    if (rc != 0) {
        c->err_set = 0;
        return cl_seterr(c, SZ_ENOENT, "no snapshot or disk named '%s'", what);
    }
    snprintf(id, sizeof(id), "%s", rep->reply->disk->source_snapshot);
    codec_free(rep);
    rep = NULL;
    if ((rc = cl_list_snaps(c, what, &rep)) != 0)
        return rc;
    if (rep->reply->n_snaps > 0)
        snprintf(id, sizeof(id), "%s", rep->reply->snaps[rep->reply->n_snaps - 1]->id);
    codec_free(rep);
    if (id[0] == '\0')
        return cl_seterr(c, SZ_ENOENT, "disk '%s' has no snapshot yet", what);
    return cl_fetch_snapshot(c, id, snap, ids, n);
}

/* ---- per-worker node connections -------------------------------------- */

#define CL_POOL_MAX 64

struct cl_pool {
    sz_client *c;
    size_t n;
    struct {
        char endpoint[CMAP_ENDPOINT_MAX];
        struct tp_sock *sock;
    } e[CL_POOL_MAX];
};

int cl_pool_new(sz_client *c, struct cl_pool **out)
{
    struct cl_pool *p = calloc(1, sizeof(*p));

    if (p == NULL)
        return SZ_ENOMEM;
    p->c = c;
    *out = p;
    return 0;
}

void cl_pool_free(struct cl_pool *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n; i++)
        tp_close(p->e[i].sock);
    free(p);
}

struct tp_sock *cl_pool_sock(struct cl_pool *p, const char *endpoint)
{
    size_t i;

    for (i = 0; i < p->n; i++)
        if (strcmp(p->e[i].endpoint, endpoint) == 0)
            break;
    if (i == p->n) {
        if (p->n == CL_POOL_MAX)
            return NULL;
        snprintf(p->e[i].endpoint, sizeof(p->e[i].endpoint), "%s", endpoint);
        p->e[i].sock = NULL;
        p->n++;
    }
    if (p->e[i].sock == NULL &&
        tp_connect(p->c->ctx, TP_DEALER, endpoint, SZ_MAX_BLOCK_FRAME, &p->e[i].sock) != 0)
        return NULL;
    return p->e[i].sock;
}

void cl_pool_drop(struct cl_pool *p, const char *endpoint)
{
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->e[i].endpoint, endpoint) == 0) {
            tp_close(p->e[i].sock);
            p->e[i].sock = NULL;
        }
    }
}

/* ---- data-path workers ------------------------------------------------ */

int cl_run_workers(sz_client *c, int n, uint32_t max_block, size_t bufsize,
                   void *(*fn)(void *), void *job)
{
    struct cl_worker ws[32];
    pthread_t th[32];
    int started = 0, rc = 0;

    if (n < 1)
        n = 1;
    if (n > 32)
        n = 32;
    memset(ws, 0, sizeof(ws));
    for (int i = 0; i < n && rc == 0; i++) {
        ws[i].job = job;
        if (cl_pool_new(c, &ws[i].pool) != 0 || seal_ctx_new(c->keys, max_block, &ws[i].seal) != 0 ||
            (ws[i].buf = malloc(bufsize ? bufsize : 1)) == NULL)
            rc = cl_seterr(c, SZ_ENOMEM, "out of memory");
    }
    for (; rc == 0 && started < n; started++)
        if (pthread_create(&th[started], NULL, fn, &ws[started]) != 0)
            break;
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < n; i++) {
        cl_pool_free(ws[i].pool);
        seal_ctx_free(ws[i].seal);
        free(ws[i].buf);
    }
    if (rc == 0 && started == 0)
        rc = cl_seterr(c, SZ_EINTERNAL, "cannot start worker threads");
    return rc;
}
