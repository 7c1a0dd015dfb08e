/*
 * scrub: see scrub.h (role, thread loop, invariants).
 *
 * A scrub (scrub_pass) scans the store in chunks, sorts each chunk by
 * (file, offset) and verifies every entry (scrub_check).  Bad copies are
 * healed at once (scrub_heal: BLOCK_GET of that one id from one candidate
 * at a time, placement nodes first, then every other UP node).  Everything
 * here but scrub_submit runs on the scrub thread, which owns the peer
 * sockets of the scrub in progress (closed when it ends) and the reply
 * socket.
 */
#include "scrub.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blockstore.h"
#include "clustermap.h"
#include "codec.h"
#include "crc32c.h"
#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "mapbox.h"
#include "rpc.h"
#include "transport.h"

#define SCRUB_CHUNK 16384
#define SCRUB_TICK_MS 200

/* A queued NODE_SCRUB request: its routing id and req_id. */
struct sc_req {
    struct sc_req *next;
    struct tp_msg *route; /* one frame: the ROUTER routing id */
    uint64_t req_id;
};

struct scrub {
    struct tp_ctx *ctx;
    struct bs *bs;
    struct mapbox *maps;
    struct scrub_config cfg;
    volatile sig_atomic_t *stop;
    pthread_mutex_t mu; /* guards quit and the queue */
    pthread_cond_t cv;  /* signalled on submit and on scrub_free */
    int quit;
    struct sc_req *queue, **tail;
    size_t nqueued;
    pthread_t thread;
};

struct sc_peer {
    char endpoint[CMAP_ENDPOINT_MAX];
    struct tp_sock *sock;
    int dead; /* timed out during this scrub: not asked again */
};

/* One scrub in progress (lives on the stack of the thread running it). */
struct sc_run {
    struct scrub *sc;
    struct sc_peer *peers;
    size_t npeers, cap;
    struct scrub_result res;
};

static int scrub_stopping(struct scrub *sc)
{
    int q;

    pthread_mutex_lock(&sc->mu);
    q = sc->quit;
    pthread_mutex_unlock(&sc->mu);
    return q || *sc->stop;
}

static const char *scrub_idhex(const uint8_t *id, char buf[17])
{
    for (int i = 0; i < 8; i++)
        snprintf(buf + 2 * i, 3, "%02x", id[i]);
    return buf;
}

static int scrub_cmp_loc(const void *a, const void *b)
{
    const struct bs_entry *x = a, *y = b;

    if (x->file != y->file)
        return x->file < y->file ? -1 : 1;
    if (x->off != y->off)
        return x->off < y->off ? -1 : 1;
    return 0;
}

/* ---- fetching a good copy ----------------------------------------------- */

static struct sc_peer *scrub_peer(struct sc_run *run, const char *endpoint)
{
    struct sc_peer *p = NULL;

    for (size_t i = 0; i < run->npeers && p == NULL; i++)
        if (strcmp(run->peers[i].endpoint, endpoint) == 0)
            p = &run->peers[i];
    if (p == NULL) {
        if (run->npeers == run->cap) {
            size_t cap = run->cap ? 2 * run->cap : 16;
            struct sc_peer *np = realloc(run->peers, cap * sizeof(*np));
            if (np == NULL)
                return NULL;
            run->peers = np;
            run->cap = cap;
        }
        p = &run->peers[run->npeers++];
        memset(p, 0, sizeof(*p));
        snprintf(p->endpoint, sizeof(p->endpoint), "%s", endpoint);
    }
    if (p->dead)
        return NULL;
    if (p->sock == NULL &&
        tp_connect(run->sc->ctx, TP_DEALER, endpoint, SZ_MAX_BLOCK_FRAME, &p->sock) != 0) {
        p->dead = 1;
        return NULL;
    }
    return p;
}

/* Ask one node for id; re-store it if its bytes match crc.  Return 0 (healed),
 * SZ_ENOENT (the entry vanished meanwhile: nothing to heal) or another code
 * (that node could not help). */
static int scrub_fetch(struct sc_run *run, const struct cmap *map, size_t node, const uint8_t *id,
                       uint32_t crc)
{
    ProtobufCBinaryData pid = {.len = BS_ID_BYTES, .data = (uint8_t *)id};
    Sz__BlockIds b = SZ__BLOCK_IDS__INIT;
    sz_env env = SZ__ENVELOPE__INIT, *rep = NULL;
    struct tp_msg *frames = NULL;
    struct sc_peer *p = scrub_peer(run, map->nodes[node].endpoint);
    const Sz__GetResult *gr;
    char hex[17];
    int rc;

    if (p == NULL)
        return SZ_EUNAVAIL;
    b.n_ids = 1;
    b.ids = &pid;
    b.map_epoch = map->epoch;
    env.body_case = SZ__ENVELOPE__BODY_BLOCK_IDS;
    env.block_ids = &b;
    rc = rpc_call(p->sock, SZ__MSG_TYPE__BLOCK_GET, &env, NULL, run->sc->cfg.peer_timeout_ms,
                  &rep, &frames);
    if (rc == SZ_ETIMEDOUT || rc == SZ_EIO) {
        log_warn("scrub: %s did not answer (%s); not asking it again this scrub", p->endpoint,
                 sz_strerror(rc));
        p->dead = 1;
        tp_close(p->sock);
        p->sock = NULL;
        goto out;
    }
    if (rc != 0)
        goto out;
    gr = rep->reply->get;
    if (gr == NULL || gr->n_status != 1 || tp_msg_count(frames) != 2) {
        rc = SZ_EPROTO;
        goto out;
    }
    if ((rc = gr->status[0]) != 0)
        goto out;
    if (crc32c(0, tp_msg_data(frames, 1), tp_msg_size(frames, 1)) != crc) {
        log_warn("scrub: copy of %s from %s does not match the recorded crc; not used",
                 scrub_idhex(id, hex), map->nodes[node].id);
        rc = SZ_ECORRUPT;
        goto out;
    }
    rc = bs_replace(run->sc->bs, id, tp_msg_data(frames, 1), tp_msg_size(frames, 1), crc);
    if (rc == 0)
        log_info("scrub: block %s healed from %s", scrub_idhex(id, hex), map->nodes[node].id);
    else if (rc != SZ_ENOENT)
        log_err("scrub: cannot re-store %s: %s", scrub_idhex(id, hex), sz_strerror(rc));
out:
    codec_free(rep);
    tp_msg_free(frames);
    return rc;
}

/* Heal id from the first node with a good copy: its placement, then every
 * other UP node.  Return 0, SZ_ENOENT (entry gone meanwhile), SZ_EUNAVAIL
 * (no node had a good copy), SZ_ESTATE (no map yet: nobody was asked) or
 * SZ_ENOMEM. */
static int scrub_heal(struct sc_run *run, const uint8_t *id, uint32_t crc)
{
    const struct cmap *map = mapbox_get(run->sc->maps);
    size_t place[CMAP_MAX_REPLICAS], k;
    uint8_t *tried = NULL;
    long self;
    int rc = SZ_ESTATE;

    if (map == NULL)
        goto out; /* nobody to ask yet: keep the entry for the next scrub */
    rc = SZ_ENOMEM;
    tried = calloc(map->nnodes ? map->nnodes : 1, 1);
    if (tried == NULL)
        goto out;
    rc = SZ_EUNAVAIL;
    self = cmap_find(map, run->sc->cfg.self_id);
    if (self >= 0)
        tried[self] = 1;
    k = cmap_place(map, id, place, CMAP_MAX_REPLICAS);
    for (size_t t = 0; t < k && rc != 0 && rc != SZ_ENOENT; t++) {
        if (tried[place[t]])
            continue;
        tried[place[t]] = 1;
        rc = scrub_fetch(run, map, place[t], id, crc);
    }
    for (size_t n = 0; n < map->nnodes && rc != 0 && rc != SZ_ENOENT; n++) {
        if (tried[n] || map->nodes[n].state != CMAP_UP)
            continue;
        tried[n] = 1;
        rc = scrub_fetch(run, map, n, id, crc);
    }
    if (rc != 0 && rc != SZ_ENOENT)
        rc = SZ_EUNAVAIL;
out:
    free(tried);
    mapbox_put(run->sc->maps, map);
    return rc;
}

/* ---- checking ------------------------------------------------------------- */

static void scrub_drop(struct sc_run *run, const uint8_t *id, const char *why)
{
    char hex[17];
    int rc = bs_delete(run->sc->bs, id);

    if (rc == 0)
        log_err("scrub: block %s %s and no node has a good copy; entry dropped",
                scrub_idhex(id, hex), why);
    else if (rc != SZ_ENOENT)
        log_err("scrub: cannot drop entry %s: %s", scrub_idhex(id, hex), sz_strerror(rc));
}

static void scrub_check(struct sc_run *run, const struct bs_entry *e)
{
    struct scrub_result *res = &run->res;
    int health = BS_HEALTHY;
    uint32_t crc = 0;
    char hex[17];
    const char *why;
    int rc = bs_verify(run->sc->bs, e->id, &health, &crc);

    if (rc == SZ_ENOENT)
        return; /* deleted since the scan listed it */
    res->checked++;
    if (rc == SZ_ECORRUPT) { /* malformed index entry: crc unknown, cannot heal */
        res->corrupt++;
        scrub_drop(run, e->id, "has a malformed index entry");
        return;
    }
    if (rc != 0) {
        log_warn("scrub: cannot verify %s: %s", scrub_idhex(e->id, hex), sz_strerror(rc));
        return;
    }
    if (health == BS_HEALTHY)
        return;
    if (health == BS_DAMAGED) {
        res->corrupt++;
        why = "is damaged";
    } else {
        res->missing++;
        why = "has lost its bytes";
    }
    log_warn("scrub: block %s at %08u:%llu %s; fetching a good copy", scrub_idhex(e->id, hex),
             (unsigned)e->file, (unsigned long long)e->off, why);
    rc = scrub_heal(run, e->id, crc);
    if (rc == 0)
        res->repaired++;
    else if (rc == SZ_EUNAVAIL)
        scrub_drop(run, e->id, why);
    else if (rc != SZ_ENOENT)
        log_warn("scrub: block %s left as is for now: %s", scrub_idhex(e->id, hex),
                 rc == SZ_ESTATE ? "no cluster map yet" : sz_strerror(rc));
}

/* One whole scrub on the calling thread. */
static int scrub_pass(struct scrub *sc, struct scrub_result *out)
{
    struct sc_run run = {.sc = sc};
    struct bs_entry *ents = malloc(SCRUB_CHUNK * sizeof(*ents));
    struct bs_scan *scan = NULL;
    uint64_t t0 = fsu_now_ms();
    int rc = SZ_ENOMEM;

    if (ents == NULL)
        goto out;
    if ((rc = bs_scan_new(sc->bs, &scan)) != 0)
        goto out;
    for (;;) {
        size_t n = 0;
        if ((rc = bs_scan_next(scan, ents, SCRUB_CHUNK, &n)) != 0 || n == 0)
            break;
        qsort(ents, n, sizeof(*ents), scrub_cmp_loc);
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (scrub_stopping(sc))
                rc = SZ_EUNAVAIL;
            else
                scrub_check(&run, &ents[i]);
        }
        if (rc != 0)
            break;
    }
    log_info("scrub: %llu checked, %llu corrupt, %llu missing, %llu repaired in %.1f s%s",
             (unsigned long long)run.res.checked, (unsigned long long)run.res.corrupt,
             (unsigned long long)run.res.missing, (unsigned long long)run.res.repaired,
             (double)(fsu_now_ms() - t0) / 1000.0, rc != 0 ? " (cut short)" : "");
out:
    for (size_t i = 0; i < run.npeers; i++)
        tp_close(run.peers[i].sock);
    free(run.peers);
    bs_scan_free(scan);
    free(ents);
    *out = run.res;
    return rc;
}

/* ---- the scrub thread ------------------------------------------------------ */

static void scrub_timedwait(struct scrub *sc, int ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&sc->cv, &sc->mu, &ts);
}

/* Answer one queued request (with the result when rc == 0) and free it. */
static void scrub_reply(struct tp_sock *out, struct sc_req *q, int rc,
                        const struct scrub_result *res)
{
    Sz__ScrubResult sr = SZ__SCRUB_RESULT__INIT;
    Sz__Reply r = SZ__REPLY__INIT;
    sz_env req = SZ__ENVELOPE__INIT;
    char why[96];

    req.req_id = q->req_id;
    if (rc == 0) {
        sr.checked = res->checked;
        sr.corrupt = res->corrupt;
        sr.repaired = res->repaired;
        sr.missing = res->missing;
        r.scrub = &sr;
    } else {
        snprintf(why, sizeof(why), "scrub %s: %s",
                 rc == SZ_EUNAVAIL ? "cut short, node stopping" : "failed", sz_strerror(rc));
        r.status = rc;
        r.error = why;
    }
    if (out != NULL && rpc_reply(out, q->route, &req, &r, NULL) != 0)
        log_warn("scrub: could not send a NODE_SCRUB reply");
    tp_msg_free(q->route);
    free(q);
}

static void scrub_reply_all(struct tp_sock *out, struct sc_req *list, int rc,
                            const struct scrub_result *res)
{
    while (list != NULL) {
        struct sc_req *next = list->next;
        scrub_reply(out, list, rc, res);
        list = next;
    }
}

/* Take the whole queue (under mu). */
static struct sc_req *scrub_take_locked(struct scrub *sc)
{
    struct sc_req *list = sc->queue;

    sc->queue = NULL;
    sc->tail = &sc->queue;
    sc->nqueued = 0;
    return list;
}

static void *scrub_main(void *arg)
{
    struct scrub *sc = arg;
    struct tp_sock *out = NULL;
    uint64_t due = sc->cfg.interval_s > 0 ? fsu_now_ms() + (uint64_t)sc->cfg.interval_s * 1000
                                          : UINT64_MAX;

    if (tp_connect(sc->ctx, TP_DEALER, sc->cfg.reply_endpoint, -1, &out) != 0)
        log_err("scrub: cannot connect %s; NODE_SCRUB replies are lost", sc->cfg.reply_endpoint);
    for (;;) {
        struct scrub_result res;
        struct sc_req *batch;
        int rc;
        pthread_mutex_lock(&sc->mu);
        while (!sc->quit && !*sc->stop && sc->queue == NULL && fsu_now_ms() < due) /* WAIT */
            scrub_timedwait(sc, SCRUB_TICK_MS);
        batch = scrub_take_locked(sc);
        if (sc->quit || *sc->stop) {
            sc->quit = 1; /* no more submissions */
            pthread_mutex_unlock(&sc->mu);
            scrub_reply_all(out, batch, SZ_EUNAVAIL, NULL);
            break;
        }
        pthread_mutex_unlock(&sc->mu);
        rc = scrub_pass(sc, &res); /* RUN */
        scrub_reply_all(out, batch, rc, &res); /* REPLY */
        if (sc->cfg.interval_s > 0)
            due = fsu_now_ms() + (uint64_t)sc->cfg.interval_s * 1000;
    }
    tp_close(out);
    return NULL;
}

int scrub_submit(struct scrub *sc, const struct tp_msg *req, uint64_t req_id)
{
    struct sc_req *q = calloc(1, sizeof(*q));
    int rc = SZ_ENOMEM;

    if (q == NULL)
        return rc;
    q->req_id = req_id;
    if (tp_msg_new(&q->route) != 0 ||
        tp_msg_add(q->route, tp_msg_data(req, 0), tp_msg_size(req, 0)) != 0)
        goto fail;
    rc = SZ_EUNAVAIL;
    pthread_mutex_lock(&sc->mu);
    if (sc->quit || *sc->stop || sc->nqueued >= (size_t)sc->cfg.max_queued) {
        pthread_mutex_unlock(&sc->mu);
        goto fail;
    }
    *sc->tail = q;
    sc->tail = &q->next;
    sc->nqueued++;
    pthread_cond_broadcast(&sc->cv);
    pthread_mutex_unlock(&sc->mu);
    return 0;
fail:
    tp_msg_free(q->route);
    free(q);
    return rc;
}

/* ---- lifecycle ------------------------------------------------------------ */

int scrub_new(struct tp_ctx *ctx, struct bs *bs, struct mapbox *maps,
              const struct scrub_config *cfg, volatile sig_atomic_t *stop, struct scrub **out)
{
    struct scrub *sc = calloc(1, sizeof(*sc));

    *out = NULL;
    if (sc == NULL)
        return SZ_ENOMEM;
    sc->ctx = ctx;
    sc->bs = bs;
    sc->maps = maps;
    sc->cfg = *cfg;
    if (sc->cfg.max_queued < 1)
        sc->cfg.max_queued = 1;
    sc->stop = stop;
    sc->tail = &sc->queue;
    pthread_mutex_init(&sc->mu, NULL);
    pthread_cond_init(&sc->cv, NULL);
    if (pthread_create(&sc->thread, NULL, scrub_main, sc) != 0) {
        pthread_cond_destroy(&sc->cv);
        pthread_mutex_destroy(&sc->mu);
        free(sc);
        return SZ_EIO;
    }
    *out = sc;
    return 0;
}

void scrub_free(struct scrub *sc)
{
    if (sc == NULL)
        return;
    pthread_mutex_lock(&sc->mu);
    sc->quit = 1;
    pthread_cond_broadcast(&sc->cv);
    pthread_mutex_unlock(&sc->mu);
    pthread_join(sc->thread, NULL);
    scrub_reply_all(NULL, scrub_take_locked(sc), SZ_EUNAVAIL, NULL); /* none: thread drained */
    pthread_cond_destroy(&sc->cv);
    pthread_mutex_destroy(&sc->mu);
    free(sc);
}
