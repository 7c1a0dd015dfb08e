/*
 * repair: see repair.h (role, state diagram, invariants).
 *
 * One pass: scan the block store in chunks of up to 4096 ids (one HAVE
 * request per peer per chunk), under the map current when the chunk is
 * handled.  Per chunk:
 *   repair_plan    placement of every id; one job per distinct target peer
 *   repair_ask     BLOCK_HAVE to every job's peer at once, then collect
 *   repair_elect   which short ids this node pushes itself (below)
 *   repair_push    rounds: each job with blocks its peer lacks sends one
 *                  PUT (<= 64 blocks, <= 8 MiB), then all are collected
 *   repair_settle  count short ids; delete surplus local copies
 * Replies are collected peer after peer, each against its own deadline;
 * past it, rpc_recv_reply still takes a reply already queued, so a dead
 * peer collected first does not make the live ones look timed out.
 *
 * Election, to avoid every holder pushing the same block: of the holders
 * this node knows of (itself, and placement nodes that said HAVE), the
 * pusher is the best-ranked placement holder, or, if no placement node
 * holds it, this (surplus) node.  A node that is not elected defers, but it
 * remembers deferred ids (by their first 8 bytes, up to 1 Mi of them) and
 * pushes anyway once an id has been short for REPAIR_DEFER_PASSES passes in
 * a row, in case the elected holder cannot push (damaged copy, stuck).
 *
 * Young blocks: a block stored less than grace = peer_timeout + 1 s ago may
 * still be on its way to its replicas (a PUT's forward), so it is not
 * pushed yet (it counts as pending).  "Stored when" comes from marks of the
 * store's append position (bs_tail) taken every grace/32 ms: records at or
 * after the newest mark older than grace are young.
 * The thread owns its peer sockets (one DEALER per endpoint, cached across
 * passes) and nothing else; the block store and mapbox are thread-safe.
 */
#include "repair.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blockstore.h"
#include "clustermap.h"
#include "codec.h"
#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "mapbox.h"
#include "rpc.h"
#include "transport.h"

#define REPAIR_CHUNK SZ_MAX_HAVE          /* ids per scan chunk = max ids per HAVE */
#define REPAIR_BATCH_BYTES (8u << 20)     /* block bytes per PUT (at least one block) */
#define REPAIR_TICK_MS 100                /* idle and rate-limit sleep granularity */
#define REPAIR_DEFER_PASSES 3             /* a deferring holder pushes on this pass */
#define REPAIR_DEFER_MAX (1u << 20)       /* deferred ids remembered per pass */
#define REPAIR_MARKS 64                   /* append-position marks kept */

/* What a target peer is known to hold of one id during a chunk. */
enum { RS_UNKNOWN = 0, RS_HAVE, RS_LACK, RS_PUSHED };

struct rp_peer {
    char endpoint[CMAP_ENDPOINT_MAX];
    struct tp_sock *sock; /* NULL: connect on next use */
    int skip;             /* failed during this pass: not asked again */
};

/* One id of the chunk: its placement targets other than self. */
struct rp_item {
    uint32_t tgt[CMAP_MAX_REPLICAS];  /* node indices in the chunk's map */
    uint16_t job[CMAP_MAX_REPLICAS];  /* job index of each target */
    uint8_t st[CMAP_MAX_REPLICAS];    /* RS_* per target */
    uint8_t ntgt;
    uint8_t nplaced; /* placement size, self included */
    uint8_t self_in;
    uint8_t self_rank; /* targets ranked before self (if self_in) */
    uint8_t defer;     /* short, but another holder is elected to push */
    uint8_t young;     /* stored within the grace period */
};

/* The store's append position at some time. */
struct rp_mark {
    uint64_t ms;
    uint32_t file;
    uint64_t off;
};

/* Deferred ids of one pass: open addressing on the id's first 8 bytes
 * (ids are keyed hashes, so uniform); key 0 marks an empty slot. */
struct rp_set {
    uint64_t *keys;
    uint8_t *count; /* consecutive passes the id was deferred */
    size_t cap, n;  /* cap: a power of two, or 0 */
};

/* All traffic to one target peer for one chunk. */
struct rp_job {
    long node;
    struct rp_peer *peer;
    uint32_t *idx;   /* chunk items that have this peer as a target */
    uint8_t *slot;   /* ... and at which target slot */
    size_t n;
    size_t cur;      /* push cursor into idx */
    int epoch_ok;    /* every reply so far carried our map epoch */
    uint64_t req_id;
    uint64_t deadline;
    size_t batch[SZ_MAX_BATCH]; /* positions in idx of the PUT in flight */
    uint32_t batch_len[SZ_MAX_BATCH];
    size_t nbatch;
};

/* Counters of the pass in progress. */
struct rp_pass {
    uint64_t ids, pending, pushed, bytes, deleted, unreadable, deferred, young;
};

struct repair {
    struct tp_ctx *ctx;
    struct bs *bs;
    struct mapbox *maps;
    struct repair_config cfg;
    volatile sig_atomic_t *stop;
    int quit; /* under mu */
    pthread_mutex_t mu; /* guards quit and st */
    struct repair_stats st;
    pthread_t thread;
    int started;
    /* repair thread only */
    struct rp_peer **peers; /* each allocated once: jobs keep pointers */
    size_t npeers, cap_peers;
    struct repair_bucket bucket;
    struct rp_set deferred; /* of the last complete pass */
    struct rp_set deferring; /* of the pass in progress */
    struct rp_mark marks[REPAIR_MARKS]; /* ring, oldest first from mhead */
    size_t nmarks, mhead;
    uint64_t grace_ms;
    struct rp_mark young; /* records at or after this are young (this chunk) */
};

/* ---- small helpers -------------------------------------------------------- */

static int repair_stopping(struct repair *r)
{
    int q;

    pthread_mutex_lock(&r->mu);
    q = r->quit;
    pthread_mutex_unlock(&r->mu);
    return q || *r->stop;
}

static void repair_sleep_ms(struct repair *r, uint64_t ms)
{
    while (ms > 0 && !repair_stopping(r)) {
        uint64_t t = ms < REPAIR_TICK_MS ? ms : REPAIR_TICK_MS;
        usleep((useconds_t)(t * 1000));
        ms -= t;
    }
}

static const char *repair_idhex(const uint8_t *id, char buf[17])
{
    for (int i = 0; i < 8; i++)
        snprintf(buf + 2 * i, 3, "%02x", id[i]);
    return buf;
}

/* The cached peer for endpoint, connected; NULL if it cannot be. */
static struct rp_peer *repair_peer(struct repair *r, const char *endpoint)
{
    struct rp_peer *p = NULL;

    for (size_t i = 0; i < r->npeers && p == NULL; i++)
        if (strcmp(r->peers[i]->endpoint, endpoint) == 0)
            p = r->peers[i];
    if (p == NULL) {
        if (r->npeers == r->cap_peers) {
            size_t cap = r->cap_peers ? 2 * r->cap_peers : 16;
            struct rp_peer **np = realloc(r->peers, cap * sizeof(*np));
            if (np == NULL)
                return NULL;
            r->peers = np;
            r->cap_peers = cap;
        }
        p = calloc(1, sizeof(*p));
        if (p == NULL)
            return NULL;
        snprintf(p->endpoint, sizeof(p->endpoint), "%s", endpoint);
        r->peers[r->npeers++] = p;
    }
    if (p->skip)
        return NULL;
    if (p->sock == NULL &&
        tp_connect(r->ctx, TP_DEALER, endpoint, SZ_MAX_ENVELOPE, &p->sock) != 0) {
        p->skip = 1;
        return NULL;
    }
    return p;
}

/* A peer failed: skip it for the rest of the pass; after a timeout drop its
 * socket so requests queued to it die and late replies cannot be mixed up. */
static void repair_peer_failed(struct rp_peer *p, int rc, const char *what)
{
    log_warn("repair: %s to %s failed: %s; skipping it this pass", what, p->endpoint,
             sz_strerror(rc));
    p->skip = 1;
    if (rc == SZ_ETIMEDOUT || rc == SZ_EIO) {
        tp_close(p->sock);
        p->sock = NULL;
    }
}

/* ---- young blocks ---------------------------------------------------------- */

/* Remember the append position, at most every grace/32 ms. */
static void repair_mark(struct repair *r)
{
    uint64_t now = fsu_now_ms();
    uint64_t spacing = r->grace_ms / 32 > REPAIR_TICK_MS ? r->grace_ms / 32 : REPAIR_TICK_MS;
    struct rp_mark *m;

    if (r->nmarks > 0) {
        const struct rp_mark *last = &r->marks[(r->mhead + r->nmarks - 1) % REPAIR_MARKS];
        if (now - last->ms < spacing)
            return;
    }
    if (r->nmarks == REPAIR_MARKS) {
        r->mhead = (r->mhead + 1) % REPAIR_MARKS;
        r->nmarks--;
    }
    m = &r->marks[(r->mhead + r->nmarks) % REPAIR_MARKS];
    m->ms = now;
    bs_tail(r->bs, &m->file, &m->off);
    r->nmarks++;
}

/* Set r->young: the newest mark older than grace, else the oldest mark. */
static void repair_young_bound(struct repair *r)
{
    uint64_t now = fsu_now_ms();

    repair_mark(r);
    r->young = r->marks[r->mhead];
    for (size_t i = 0; i < r->nmarks; i++) {
        const struct rp_mark *m = &r->marks[(r->mhead + i) % REPAIR_MARKS];
        if (m->ms + r->grace_ms <= now)
            r->young = *m;
    }
}

static int repair_is_young(const struct repair *r, const struct bs_entry *e)
{
    if (e->file != r->young.file)
        return e->file > r->young.file;
    return e->off >= r->young.off;
}

/* ---- deferred-id sets ------------------------------------------------------- */

static uint64_t repair_key(const uint8_t *id)
{
    uint64_t k;

    memcpy(&k, id, sizeof(k));
    return k != 0 ? k : 1;
}

static void repair_set_clear(struct rp_set *set)
{
    free(set->keys);
    free(set->count);
    memset(set, 0, sizeof(*set));
}

/* Slot of key: where it is, or the empty slot where it would go. */
static size_t repair_set_slot(const struct rp_set *set, uint64_t key)
{
    size_t i = (size_t)(key * 0x9e3779b97f4a7c15ull) & (set->cap - 1);

    while (set->keys[i] != 0 && set->keys[i] != key)
        i = (i + 1) & (set->cap - 1);
    return i;
}

/* Times id was deferred in a row up to the set's pass (0: not in it). */
static unsigned repair_set_get(const struct rp_set *set, const uint8_t *id)
{
    uint64_t key = repair_key(id);
    size_t i;

    if (set->cap == 0)
        return 0;
    i = repair_set_slot(set, key);
    return set->keys[i] == key ? set->count[i] : 0;
}

/* Record id with count; return 0, or -1 if the set is full or out of memory. */
static int repair_set_put(struct rp_set *set, const uint8_t *id, unsigned count)
{
    uint64_t key = repair_key(id);
    size_t i;

    if (set->n >= REPAIR_DEFER_MAX)
        return -1;
    if (2 * (set->n + 1) > set->cap) {
        struct rp_set bigger = {.cap = set->cap ? 2 * set->cap : 1024};
        bigger.keys = calloc(bigger.cap, sizeof(*bigger.keys));
        bigger.count = calloc(bigger.cap, sizeof(*bigger.count));
        if (bigger.keys == NULL || bigger.count == NULL) {
            repair_set_clear(&bigger);
            return -1;
        }
        for (size_t j = 0; j < set->cap; j++) {
            if (set->keys[j] == 0)
                continue;
            i = repair_set_slot(&bigger, set->keys[j]);
            bigger.keys[i] = set->keys[j];
            bigger.count[i] = set->count[j];
        }
        bigger.n = set->n;
        repair_set_clear(set);
        *set = bigger;
    }
    i = repair_set_slot(set, key);
    if (set->keys[i] == 0)
        set->n++;
    set->keys[i] = key;
    set->count[i] = (uint8_t)(count > 255 ? 255 : count);
    return 0;
}

/* ---- plan: placement and per-peer jobs ---------------------------------- */

static void repair_free_jobs(struct rp_job *jobs, size_t njobs)
{
    for (size_t j = 0; j < njobs; j++) {
        free(jobs[j].idx);
        free(jobs[j].slot);
    }
    free(jobs);
}

/* Fill items[] and build one job per distinct target peer.  Return 0 or
 * SZ_ENOMEM; *jobs_out is set either way (free with repair_free_jobs). */
static int repair_plan(struct repair *r, const struct cmap *map, const struct bs_entry *ents,
                       size_t n, struct rp_item *items, struct rp_job **jobs_out,
                       size_t *njobs_out)
{
    long self = cmap_find(map, r->cfg.self_id);
    long *job_of = malloc((map->nnodes ? map->nnodes : 1) * sizeof(*job_of));
    struct rp_job *jobs = calloc(map->nnodes ? map->nnodes : 1, sizeof(*jobs));
    size_t njobs = 0;
    int rc = SZ_ENOMEM;

    *jobs_out = jobs;
    *njobs_out = 0;
    if (job_of == NULL || jobs == NULL)
        goto out;
    for (size_t k = 0; k < map->nnodes; k++)
        job_of[k] = -1;
    for (size_t i = 0; i < n; i++) {
        size_t place[CMAP_MAX_REPLICAS];
        size_t k = cmap_place(map, ents[i].id, place, CMAP_MAX_REPLICAS);
        memset(&items[i], 0, sizeof(items[i]));
        items[i].nplaced = (uint8_t)k;
        items[i].young = (uint8_t)repair_is_young(r, &ents[i]);
        for (size_t t = 0; t < k; t++) {
            struct rp_item *it = &items[i];
            if ((long)place[t] == self) {
                it->self_in = 1;
                it->self_rank = it->ntgt;
                continue;
            }
            if (job_of[place[t]] < 0) {
                job_of[place[t]] = (long)njobs;
                jobs[njobs].node = (long)place[t];
                jobs[njobs].epoch_ok = 1;
                njobs++;
            }
            it->tgt[it->ntgt] = (uint32_t)place[t];
            it->job[it->ntgt] = (uint16_t)job_of[place[t]];
            jobs[job_of[place[t]]].n++;
            it->ntgt++;
        }
    }
    *njobs_out = njobs;
    for (size_t j = 0; j < njobs; j++) {
        jobs[j].idx = malloc(jobs[j].n * sizeof(*jobs[j].idx));
        jobs[j].slot = malloc(jobs[j].n * sizeof(*jobs[j].slot));
        if (jobs[j].idx == NULL || jobs[j].slot == NULL)
            goto out;
        jobs[j].n = 0;
    }
    for (size_t i = 0; i < n; i++) {
        for (uint8_t t = 0; t < items[i].ntgt; t++) {
            struct rp_job *jb = &jobs[items[i].job[t]];
            jb->idx[jb->n] = (uint32_t)i;
            jb->slot[jb->n] = t;
            jb->n++;
        }
    }
    rc = 0;
out:
    free(job_of);
    return rc;
}

/* ---- ask: BLOCK_HAVE ----------------------------------------------------- */

static int repair_send_have(struct repair *r, const struct cmap *map, const struct bs_entry *ents,
                            struct rp_job *jb)
{
    ProtobufCBinaryData *ids = malloc(jb->n * sizeof(*ids));
    Sz__BlockIds b = SZ__BLOCK_IDS__INIT;
    sz_env env = SZ__ENVELOPE__INIT;
    int rc;

    if (ids == NULL)
        return SZ_ENOMEM;
    for (size_t k = 0; k < jb->n; k++) {
        ids[k].data = (uint8_t *)ents[jb->idx[k]].id;
        ids[k].len = BS_ID_BYTES;
    }
    b.n_ids = jb->n;
    b.ids = ids;
    b.map_epoch = map->epoch;
    env.body_case = SZ__ENVELOPE__BODY_BLOCK_IDS;
    env.block_ids = &b;
    rc = rpc_send_req(jb->peer->sock, SZ__MSG_TYPE__BLOCK_HAVE, &env, NULL, &jb->req_id);
    jb->deadline = fsu_now_ms() + (uint64_t)r->cfg.peer_timeout_ms;
    free(ids);
    return rc;
}

static void repair_collect_have(const struct cmap *map, struct rp_item *items, struct rp_job *jb)
{
    sz_env *rep = NULL;
    int rc = rpc_recv_reply(jb->peer->sock, jb->req_id, jb->deadline, &rep, NULL);

    if (rc == 0 && (rep->reply->have == NULL || rep->reply->have->n_have != jb->n))
        rc = SZ_EPROTO;
    if (rc != 0) {
        repair_peer_failed(jb->peer, rc, "BLOCK_HAVE");
        goto out;
    }
    if (rep->reply->epoch != map->epoch)
        jb->epoch_ok = 0;
    for (size_t k = 0; k < jb->n; k++)
        items[jb->idx[k]].st[jb->slot[k]] = rep->reply->have->have[k] ? RS_HAVE : RS_LACK;
out:
    codec_free(rep);
}

/* Ask every job's peer which of its ids it holds; unanswered stay UNKNOWN. */
static void repair_ask(struct repair *r, const struct cmap *map, const struct bs_entry *ents,
                       struct rp_item *items, struct rp_job *jobs, size_t njobs)
{
    int *sent = calloc(njobs ? njobs : 1, sizeof(*sent));

    if (sent == NULL)
        return;
    for (size_t j = 0; j < njobs; j++) {
        int rc;
        jobs[j].peer = repair_peer(r, map->nodes[jobs[j].node].endpoint);
        if (jobs[j].peer == NULL || jobs[j].n == 0)
            continue;
        rc = repair_send_have(r, map, ents, &jobs[j]);
        if (rc != 0)
            repair_peer_failed(jobs[j].peer, rc, "BLOCK_HAVE");
        else
            sent[j] = 1;
    }
    for (size_t j = 0; j < njobs; j++)
        if (sent[j])
            repair_collect_have(map, items, &jobs[j]);
    free(sent);
}

/* ---- elect: who pushes a short id ------------------------------------------- */

/* Mark the short ids another holder is elected to push (see the top). */
static void repair_elect(struct repair *r, const struct bs_entry *ents, struct rp_item *items,
                         size_t n, struct rp_pass *ps)
{
    for (size_t i = 0; i < n; i++) {
        struct rp_item *it = &items[i];
        int lacking = 0, other = 0;
        unsigned times;
        for (uint8_t t = 0; t < it->ntgt; t++) {
            if (it->st[t] == RS_LACK)
                lacking = 1;
            else if (it->st[t] == RS_HAVE && (!it->self_in || t < it->self_rank))
                other = 1; /* a better-ranked placement holder */
        }
        if (lacking && it->young) {
            it->defer = 1; /* its PUT's forward may still be under way */
            ps->young++;
            continue;
        }
        if (!lacking || !other)
            continue;
        times = repair_set_get(&r->deferred, ents[i].id) + 1;
        if (times >= REPAIR_DEFER_PASSES)
            continue; /* the elected holder did not manage: push too */
        if (repair_set_put(&r->deferring, ents[i].id, times) == 0) {
            it->defer = 1;
            ps->deferred++;
        }
    }
}

/* ---- push: BLOCK_PUT of the blocks a peer lacks --------------------------- */

/* Wait for the token bucket (or a stop); return 0 or SZ_EUNAVAIL (stop). */
static int repair_pace(struct repair *r, uint64_t bytes)
{
    for (;;) {
        uint64_t wait = repair_bucket_wait_ms(&r->bucket, fsu_now_ms());
        if (repair_stopping(r))
            return SZ_EUNAVAIL;
        if (wait == 0)
            break;
        repair_mark(r);
        repair_sleep_ms(r, wait < REPAIR_TICK_MS ? wait : REPAIR_TICK_MS);
    }
    repair_bucket_take(&r->bucket, bytes, fsu_now_ms());
    return 0;
}

/* Read the next blocks job's peer lacks (from jb->cur on) into frames. */
static int repair_fill_batch(struct repair *r, const struct bs_entry *ents, struct rp_item *items,
                             struct rp_job *jb, struct rp_pass *ps, struct tp_msg *frames,
                             ProtobufCBinaryData *ids, uint32_t *crcs, uint64_t *bytes)
{
    char hex[17];

    jb->nbatch = 0;
    *bytes = 0;
    for (; jb->cur < jb->n && jb->nbatch < SZ_MAX_BATCH && *bytes < REPAIR_BATCH_BYTES;
         jb->cur++) {
        const struct bs_entry *e = &ents[jb->idx[jb->cur]];
        uint8_t *data = NULL;
        size_t len = 0;
        int rc;
        if (items[jb->idx[jb->cur]].st[jb->slot[jb->cur]] != RS_LACK ||
            items[jb->idx[jb->cur]].defer)
            continue;
        rc = bs_get(r->bs, e->id, &data, &len);
        if (rc != 0) { /* corrupt or gone here: never sent; scrub fixes it */
            log_debug("repair: cannot push %s: %s", repair_idhex(e->id, hex), sz_strerror(rc));
            ps->unreadable++;
            free(data);
            continue;
        }
        if ((rc = tp_msg_add_take(frames, data, len)) != 0)
            return rc;
        ids[jb->nbatch].data = (uint8_t *)e->id;
        ids[jb->nbatch].len = BS_ID_BYTES;
        crcs[jb->nbatch] = e->crc;
        jb->batch[jb->nbatch] = jb->cur;
        jb->batch_len[jb->nbatch] = (uint32_t)len;
        jb->nbatch++;
        *bytes += len;
    }
    return 0;
}

/* Send one PUT of the next lacking blocks; jb->nbatch == 0 if none. */
static int repair_send_put(struct repair *r, const struct cmap *map, const struct bs_entry *ents,
                           struct rp_item *items, struct rp_job *jb, struct rp_pass *ps)
{
    ProtobufCBinaryData ids[SZ_MAX_BATCH];
    uint32_t crcs[SZ_MAX_BATCH];
    Sz__BlockPut p = SZ__BLOCK_PUT__INIT;
    sz_env env = SZ__ENVELOPE__INIT;
    struct tp_msg *frames = NULL;
    uint64_t bytes = 0;
    int rc;

    if ((rc = tp_msg_new(&frames)) != 0)
        return rc;
    rc = repair_fill_batch(r, ents, items, jb, ps, frames, ids, crcs, &bytes);
    if (rc == 0 && jb->nbatch > 0)
        rc = repair_pace(r, bytes);
    if (rc != 0 || jb->nbatch == 0) {
        tp_msg_free(frames);
        jb->nbatch = 0;
        return rc;
    }
    p.n_ids = p.n_crcs = jb->nbatch;
    p.ids = ids;
    p.crcs = crcs;
    p.forwarded = 1;
    p.map_epoch = map->epoch;
    env.body_case = SZ__ENVELOPE__BODY_BLOCK_PUT;
    env.block_put = &p;
    rc = rpc_send_req(jb->peer->sock, SZ__MSG_TYPE__BLOCK_PUT, &env, frames, &jb->req_id);
    jb->deadline = fsu_now_ms() + (uint64_t)r->cfg.peer_timeout_ms;
    return rc;
}

static void repair_collect_put(struct repair *r, const struct cmap *map, struct rp_item *items,
                               struct rp_job *jb, struct rp_pass *ps)
{
    sz_env *rep = NULL;
    int rc = rpc_recv_reply(jb->peer->sock, jb->req_id, jb->deadline, &rep, NULL);
    uint64_t acked = 0, bytes = 0;

    if (rc == 0 && (rep->reply->put == NULL || rep->reply->put->n_replicas != jb->nbatch))
        rc = SZ_EPROTO;
    if (rc != 0) {
        repair_peer_failed(jb->peer, rc, "BLOCK_PUT");
        goto out;
    }
    if (rep->reply->epoch != map->epoch)
        jb->epoch_ok = 0;
    for (size_t k = 0; k < jb->nbatch; k++) {
        size_t pos = jb->batch[k];
        if (rep->reply->put->replicas[k] == 0)
            continue; /* not durable there, or not in its placement: still lacking */
        items[jb->idx[pos]].st[jb->slot[pos]] = RS_PUSHED;
        acked++;
        bytes += jb->batch_len[k];
    }
    ps->pushed += acked;
    ps->bytes += bytes;
    pthread_mutex_lock(&r->mu);
    r->st.repaired_blocks += acked;
    r->st.repair_bytes += bytes;
    pthread_mutex_unlock(&r->mu);
out:
    jb->nbatch = 0;
    codec_free(rep);
}

/* Rounds of one PUT per lacking peer, all in flight together. */
static void repair_push(struct repair *r, const struct cmap *map, const struct bs_entry *ents,
                        struct rp_item *items, struct rp_job *jobs, size_t njobs,
                        struct rp_pass *ps)
{
    for (;;) {
        size_t inflight = 0;
        for (size_t j = 0; j < njobs && !repair_stopping(r); j++) {
            struct rp_job *jb = &jobs[j];
            int rc;
            jb->nbatch = 0;
            if (jb->peer == NULL || jb->peer->skip || jb->cur >= jb->n)
                continue;
            rc = repair_send_put(r, map, ents, items, jb, ps);
            if (rc != 0 && rc != SZ_EUNAVAIL) {
                repair_peer_failed(jb->peer, rc, "BLOCK_PUT");
                jb->nbatch = 0;
            }
            if (jb->nbatch > 0)
                inflight++;
        }
        for (size_t j = 0; j < njobs; j++)
            if (jobs[j].nbatch > 0)
                repair_collect_put(r, map, items, &jobs[j], ps);
        if (inflight == 0)
            break;
    }
}

/* ---- settle: pending count and surplus deletion -------------------------- */

/* 1 if the local copy of item i may go (see the invariant in repair.h). */
static int repair_surplus(struct repair *r, const struct cmap *map, const struct rp_item *it,
                          const struct rp_job *jobs)
{
    if (it->self_in || it->nplaced != map->replicas || it->ntgt != it->nplaced)
        return 0;
    for (uint8_t t = 0; t < it->ntgt; t++) {
        if (it->st[t] != RS_HAVE && it->st[t] != RS_PUSHED)
            return 0;
        if (map->nodes[it->tgt[t]].state != CMAP_UP || !jobs[it->job[t]].epoch_ok)
            return 0;
    }
    return mapbox_epoch(r->maps) == map->epoch;
}

static void repair_settle(struct repair *r, const struct cmap *map, const struct bs_entry *ents,
                          size_t n, const struct rp_item *items, const struct rp_job *jobs,
                          struct rp_pass *ps)
{
    char hex[17];

    for (size_t i = 0; i < n; i++) {
        const struct rp_item *it = &items[i];
        int shortfall = 0, rc;
        for (uint8_t t = 0; t < it->ntgt; t++)
            if (it->st[t] != RS_HAVE && it->st[t] != RS_PUSHED)
                shortfall = 1;
        if (shortfall) {
            ps->pending++;
            continue;
        }
        if (!repair_surplus(r, map, it, jobs))
            continue;
        rc = bs_delete(r->bs, ents[i].id);
        if (rc == 0) {
            ps->deleted++;
            log_debug("repair: dropped surplus copy of %s", repair_idhex(ents[i].id, hex));
        } else if (rc != SZ_ENOENT) {
            log_warn("repair: cannot drop surplus %s: %s", repair_idhex(ents[i].id, hex),
                     sz_strerror(rc));
        }
    }
}

/* ---- pass ---------------------------------------------------------------- */

static int repair_chunk(struct repair *r, const struct cmap *map, const struct bs_entry *ents,
                        size_t n, struct rp_item *items, struct rp_pass *ps)
{
    struct rp_job *jobs = NULL;
    size_t njobs = 0;
    int rc = repair_plan(r, map, ents, n, items, &jobs, &njobs);

    if (rc != 0)
        goto out;
    repair_ask(r, map, ents, items, jobs, njobs);
    repair_elect(r, ents, items, n, ps);
    if (!repair_stopping(r))
        repair_push(r, map, ents, items, jobs, njobs, ps);
    if (!repair_stopping(r))
        repair_settle(r, map, ents, n, items, jobs, ps);
    ps->ids += n;
out:
    repair_free_jobs(jobs, njobs);
    return rc;
}

static void repair_publish(struct repair *r, const struct rp_pass *ps, uint64_t t0)
{
    double secs = (double)(fsu_now_ms() - t0) / 1000.0;
    uint64_t old;

    repair_set_clear(&r->deferred);
    r->deferred = r->deferring;
    memset(&r->deferring, 0, sizeof(r->deferring));
    pthread_mutex_lock(&r->mu);
    old = r->st.pending;
    r->st.pending = ps->pending;
    r->st.deleted += ps->deleted;
    r->st.passes++;
    pthread_mutex_unlock(&r->mu);
    if (ps->pushed > 0 || ps->deleted > 0 || ps->pending != old)
        log_info("repair pass: %llu ids, %llu copies pushed (%llu bytes), %llu surplus "
                 "deleted, %llu pending (%llu left to other holders, %llu just written, "
                 "%llu unreadable here), %.1f s",
                 (unsigned long long)ps->ids, (unsigned long long)ps->pushed,
                 (unsigned long long)ps->bytes, (unsigned long long)ps->deleted,
                 (unsigned long long)ps->pending, (unsigned long long)ps->deferred,
                 (unsigned long long)ps->young, (unsigned long long)ps->unreadable, secs);
}

/* One full scan of the store; publishes only if it completed. */
static int repair_pass(struct repair *r)
{
    struct bs_entry *ents = malloc(REPAIR_CHUNK * sizeof(*ents));
    struct rp_item *items = malloc(REPAIR_CHUNK * sizeof(*items));
    struct bs_scan *sc = NULL;
    struct rp_pass ps = {0};
    uint64_t t0 = fsu_now_ms();
    int rc = SZ_ENOMEM;

    for (size_t i = 0; i < r->npeers; i++)
        r->peers[i]->skip = 0;
    repair_set_clear(&r->deferring);
    if (ents == NULL || items == NULL)
        goto out;
    if ((rc = bs_scan_new(r->bs, &sc)) != 0)
        goto out;
    for (;;) {
        const struct cmap *map;
        size_t n = 0;
        if (repair_stopping(r)) {
            rc = SZ_EUNAVAIL;
            goto out;
        }
        if ((rc = bs_scan_next(sc, ents, REPAIR_CHUNK, &n)) != 0 || n == 0)
            break;
        map = mapbox_get(r->maps);
        if (map == NULL) {
            rc = SZ_EUNAVAIL;
            goto out;
        }
        repair_young_bound(r);
        rc = repair_chunk(r, map, ents, n, items, &ps);
        mapbox_put(r->maps, map);
        if (rc != 0)
            goto out;
    }
    if (rc == 0 && !repair_stopping(r))
        repair_publish(r, &ps, t0);
out:
    if (rc != 0 && rc != SZ_EUNAVAIL)
        log_warn("repair pass stopped: %s", sz_strerror(rc));
    bs_scan_free(sc);
    free(ents);
    free(items);
    return rc;
}

/* Wait until the next pass is due: interval elapsed or the epoch moved. */
static void repair_idle(struct repair *r, uint64_t pass_epoch, uint64_t due)
{
    while (!repair_stopping(r)) {
        uint64_t e = mapbox_epoch(r->maps);
        repair_mark(r);
        if (e != 0 && (e != pass_epoch || fsu_now_ms() >= due))
            return;
        usleep(REPAIR_TICK_MS * 1000);
    }
}

static void *repair_main(void *arg)
{
    struct repair *r = arg;
    uint64_t pass_epoch = 0, due = 0;

    repair_bucket_init(&r->bucket, r->cfg.rate, fsu_now_ms());
    r->grace_ms = (uint64_t)(r->cfg.peer_timeout_ms > 0 ? r->cfg.peer_timeout_ms : 0) + 1000;
    repair_mark(r); /* everything stored before the thread started is old */
    for (;;) {
        repair_idle(r, pass_epoch, due); /* IDLE */
        if (repair_stopping(r))
            break;
        pass_epoch = mapbox_epoch(r->maps);
        repair_pass(r); /* SCAN .. PUBLISH */
        due = fsu_now_ms() + (uint64_t)r->cfg.interval_ms;
    }
    for (size_t i = 0; i < r->npeers; i++) {
        tp_close(r->peers[i]->sock);
        r->peers[i]->sock = NULL;
    }
    return NULL;
}

/* ---- lifecycle ------------------------------------------------------------ */

int repair_start(struct tp_ctx *ctx, struct bs *bs, struct mapbox *maps,
                 const struct repair_config *cfg, volatile sig_atomic_t *stop,
                 struct repair **out)
{
    struct repair *r = calloc(1, sizeof(*r));

    *out = NULL;
    if (r == NULL)
        return SZ_ENOMEM;
    r->ctx = ctx;
    r->bs = bs;
    r->maps = maps;
    r->cfg = *cfg;
    r->stop = stop;
    pthread_mutex_init(&r->mu, NULL);
    if (cfg->interval_ms > 0) {
        if (pthread_create(&r->thread, NULL, repair_main, r) != 0) {
            pthread_mutex_destroy(&r->mu);
            free(r);
            return SZ_EIO;
        }
        r->started = 1;
    }
    *out = r;
    return 0;
}

void repair_stop(struct repair *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->quit = 1;
    pthread_mutex_unlock(&r->mu);
    if (r->started)
        pthread_join(r->thread, NULL);
    pthread_mutex_destroy(&r->mu);
    repair_set_clear(&r->deferred);
    repair_set_clear(&r->deferring);
    for (size_t i = 0; i < r->npeers; i++)
        free(r->peers[i]);
    free(r->peers);
    free(r);
}

void repair_get_stats(struct repair *r, struct repair_stats *st)
{
    memset(st, 0, sizeof(*st));
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    *st = r->st;
    pthread_mutex_unlock(&r->mu);
}
