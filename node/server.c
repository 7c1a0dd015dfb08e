/*
 * server: see server.h.
 *
 * Invariants:
 *  1. Only the main thread touches the ROUTER and the proxy's DEALER; each
 *     worker owns its DEALER, its repl peer sockets and nothing else.
 *  2. A PUT reply counts a copy only if it is durable (bs_put_batch returned)
 *     on a node that is in the block's placement.
 *  3. A GET never returns bytes whose stored checksum does not verify.
 *  4. HAVE and PUT replies carry this node's map epoch, after catching up
 *     with a newer epoch named by the request, so repair can tell that a
 *     peer answered under the same map (repair.h).
 *  5. A worker never blocks on a scrub: NODE_SCRUB is queued to the scrub
 *     thread, whose late replies come back on SRV_REPLIES and are relayed
 *     to the ROUTER by the main thread like worker replies.
 *  6. A node that finds it was removed from the map (srv_was_removed) never
 *     registers again by itself; it only follows the map from then on.
 *  7. Shutdown order: main loop ends, workers are joined, then the repair
 *     and scrub threads (a scrub stops within one block check of *stop),
 *     then the sockets, context, map box and store.
 */
#include "server.h"

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
#include "repair.h"
#include "replicate.h"
#include "rpc.h"
#include "scrub.h"
#include "transport.h"

#define SRV_BACKEND "inproc://snapnode-workers"
#define SRV_REPLIES "inproc://snapnode-replies" /* late replies (scrub thread) */
#define SRV_SCRUB_QUEUE 64
#define SRV_POLL_MS 200

struct srv {
    const struct srv_config *cfg;
    volatile sig_atomic_t *stop;
    struct bs *bs;
    struct tp_ctx *ctx;
    struct mapbox *maps;
    struct repair *repair;
    struct scrub *scrub;
};

/* ---- request handlers (worker threads) -------------------------------- */

struct srv_worker {
    struct srv *s;
    struct repl *rp;
    struct tp_sock *coord; /* lazily connected: map refresh on a newer epoch */
};

static int srv_refresh_map(struct srv *s, struct tp_sock *sock);

/* A request was made under a newer map than ours: fetch it before acting, so
 * this node never places blocks by a map older than its caller's. */
static void srv_catch_up(struct srv_worker *w, uint64_t epoch)
{
    if (epoch <= mapbox_epoch(w->s->maps))
        return;
    if (w->coord == NULL && tp_connect(w->s->ctx, TP_DEALER, w->s->cfg->coordinator,
                                       SZ_MAX_ENVELOPE, &w->coord) != 0)
        return;
    if (srv_refresh_map(w->s, w->coord) == SZ_ETIMEDOUT) {
        tp_close(w->coord);
        w->coord = NULL;
    }
}

static int srv_have(struct srv_worker *w, struct tp_sock *sock, struct tp_msg *msg, sz_env *env)
{
    struct srv *s = w->s;
    const Sz__BlockIds *b = env->block_ids;
    protobuf_c_boolean *have = calloc(b->n_ids ? b->n_ids : 1, sizeof(*have));
    Sz__HaveResult hr = SZ__HAVE_RESULT__INIT;
    Sz__Reply r = SZ__REPLY__INIT;
    int rc;

    if (have == NULL)
        return rpc_reply_status(sock, msg, env, SZ_ENOMEM, "out of memory");
    srv_catch_up(w, b->map_epoch);
    for (size_t i = 0; i < b->n_ids; i++) {
        rc = bs_have(s->bs, b->ids[i].data);
        if (rc < 0) {
            free(have);
            return rpc_reply_status(sock, msg, env, rc, "index lookup failed");
        }
        have[i] = rc == 1;
    }
    hr.n_have = b->n_ids;
    hr.have = have;
    r.have = &hr;
    r.epoch = mapbox_epoch(s->maps);
    rc = rpc_reply(sock, msg, env, &r, NULL);
    free(have);
    return rc;
}

/* 1 if node self is in block id's placement under map. */
static int srv_in_placement(const struct cmap *map, long self, const uint8_t *id)
{
    size_t place[CMAP_MAX_REPLICAS];
    size_t k = cmap_place(map, id, place, CMAP_MAX_REPLICAS);

    for (size_t j = 0; j < k; j++)
        if ((long)place[j] == self)
            return 1;
    return 0;
}

static int srv_put(struct srv_worker *w, struct tp_sock *sock, struct tp_msg *msg, sz_env *env)
{
    struct srv *s = w->s;
    const Sz__BlockPut *p = env->block_put;
    struct bs_item items[SZ_MAX_BATCH];
    int results[SZ_MAX_BATCH];
    uint32_t replicas[SZ_MAX_BATCH] = {0};
    Sz__PutResult pr = SZ__PUT_RESULT__INIT;
    Sz__Reply r = SZ__REPLY__INIT;
    const struct cmap *map;
    long self;
    int rc;

    if (tp_msg_count(msg) != 2 + p->n_ids)
        return rpc_reply_status(sock, msg, env, SZ_EPROTO, "put has %zu ids but %zu data frames",
                                p->n_ids, tp_msg_count(msg) - 2);
    srv_catch_up(w, p->map_epoch);
    map = mapbox_get(s->maps);
    if (map == NULL)
        return rpc_reply_status(sock, msg, env, SZ_EUNAVAIL, "node has no cluster map yet");
    self = cmap_find(map, s->cfg->id);
    for (size_t i = 0; i < p->n_ids; i++) {
        items[i].id = p->ids[i].data;
        items[i].data = tp_msg_data(msg, 2 + i);
        items[i].len = tp_msg_size(msg, 2 + i);
        items[i].crc = p->crcs[i];
        if (items[i].len == 0 || items[i].len > SZ_MAX_BLOCK_FRAME) {
            mapbox_put(s->maps, map);
            return rpc_reply_status(sock, msg, env, SZ_EPROTO, "block %zu has bad size", i);
        }
    }
    rc = bs_put_batch(s->bs, items, p->n_ids, results);
    if (rc != 0) {
        mapbox_put(s->maps, map);
        return rpc_reply_status(sock, msg, env, rc, "store failed: %s", sz_strerror(rc));
    }
    for (size_t i = 0; i < p->n_ids; i++)
        replicas[i] = results[i] == 0 && srv_in_placement(map, self, p->ids[i].data);
    if (!p->forwarded)
        repl_forward(w->rp, map, self, p, msg, 2, replicas);
    mapbox_put(s->maps, map);
    pr.n_replicas = p->n_ids;
    pr.replicas = replicas;
    r.put = &pr;
    r.epoch = mapbox_epoch(s->maps);
    return rpc_reply(sock, msg, env, &r, NULL);
}

static int srv_get(struct srv *s, struct tp_sock *sock, struct tp_msg *msg, sz_env *env)
{
    const Sz__BlockIds *b = env->block_ids;
    int32_t status[SZ_MAX_BATCH];
    Sz__GetResult gr = SZ__GET_RESULT__INIT;
    Sz__Reply r = SZ__REPLY__INIT;
    struct tp_msg *frames;
    int rc;

    if ((rc = tp_msg_new(&frames)) != 0)
        return rpc_reply_status(sock, msg, env, rc, "out of memory");
    for (size_t i = 0; i < b->n_ids; i++) {
        uint8_t *data = NULL;
        size_t len = 0;
        status[i] = bs_get(s->bs, b->ids[i].data, &data, &len);
        if (status[i] == SZ_ECORRUPT)
            log_warn("block failed its checksum; not served");
        if (status[i] != 0) {
            free(data);
            data = NULL;
            len = 0;
        }
        if ((rc = tp_msg_add_take(frames, data, len)) != 0) {
            tp_msg_free(frames);
            return rpc_reply_status(sock, msg, env, rc, "out of memory");
        }
    }
    gr.n_status = b->n_ids;
    gr.status = status;
    r.get = &gr;
    return rpc_reply(sock, msg, env, &r, frames);
}

static int srv_stat(struct srv *s, struct tp_sock *sock, struct tp_msg *msg, sz_env *env)
{
    Sz__NodeStat st = SZ__NODE_STAT__INIT;
    Sz__Reply r = SZ__REPLY__INIT;

    st.id = (char *)s->cfg->id;
    st.zone = (char *)s->cfg->zone;
    bs_stats(s->bs, &st.blocks, &st.stored_bytes);
    r.node_stat = &st;
    r.epoch = mapbox_epoch(s->maps);
    return rpc_reply(sock, msg, env, &r, NULL);
}

/* Hand the request to the scrub thread, which replies when its scrub ends. */
static int srv_scrub(struct srv *s, struct tp_sock *sock, struct tp_msg *msg, sz_env *env)
{
    int rc = scrub_submit(s->scrub, msg, env->req_id);

    if (rc == SZ_EUNAVAIL)
        return rpc_reply_status(sock, msg, env, rc,
                                "scrub unavailable: too many scrub requests waiting, or stopping");
    if (rc != 0)
        return rpc_reply_status(sock, msg, env, rc, "scrub not queued: %s", sz_strerror(rc));
    return 0;
}

static void srv_dispatch(struct srv_worker *w, struct tp_sock *sock, struct tp_msg *msg,
                         sz_env *env)
{
    struct srv *s = w->s;

    switch (env->type) {
    case SZ__MSG_TYPE__BLOCK_HAVE:
        srv_have(w, sock, msg, env);
        break;
    case SZ__MSG_TYPE__BLOCK_PUT:
        srv_put(w, sock, msg, env);
        break;
    case SZ__MSG_TYPE__BLOCK_GET:
        srv_get(s, sock, msg, env);
        break;
    case SZ__MSG_TYPE__NODE_STAT:
        srv_stat(s, sock, msg, env);
        break;
    case SZ__MSG_TYPE__NODE_SCRUB:
        srv_scrub(s, sock, msg, env);
        break;
    default:
        rpc_reply_status(sock, msg, env, SZ_EPROTO, "%s is not served by a storage node",
                         codec_type_name(env->type));
    }
}

static void *srv_worker(void *arg)
{
    struct srv_worker w = {.s = arg};
    struct srv *s = w.s;
    struct tp_sock *sock = NULL;

    if (tp_connect(s->ctx, TP_DEALER, SRV_BACKEND, -1, &sock) != 0 ||
        repl_new(s->ctx, s->cfg->peer_timeout_ms, &w.rp) != 0) {
        log_err("worker could not start");
        *s->stop = 1;
        goto out;
    }
    while (!*s->stop) {
        struct tp_msg *msg;
        sz_env *env;
        if (rpc_serve_recv(sock, SRV_POLL_MS, &msg, &env) != 0)
            continue;
        srv_dispatch(&w, sock, msg, env);
        codec_free(env);
        tp_msg_free(msg);
    }
out:
    repl_free(w.rp);
    tp_close(w.coord);
    tp_close(sock);
    return NULL;
}

/* ---- membership (heartbeat thread) ------------------------------------ */

static int srv_install_map(struct srv *s, const Sz__ClusterMap *pb)
{
    struct cmap *m;
    int rc;

    if (pb == NULL)
        return SZ_EPROTO;
    if ((rc = codec_map_from_pb(pb, &m)) != 0)
        return rc;
    if (m->epoch != mapbox_epoch(s->maps))
        log_info("cluster map epoch %llu, %zu nodes", (unsigned long long)m->epoch, m->nnodes);
    mapbox_set(s->maps, &m);
    return 0;
}

static int srv_register(struct srv *s, struct tp_sock *sock)
{
    Sz__NodeRegister nr = SZ__NODE_REGISTER__INIT;
    sz_env env = SZ__ENVELOPE__INIT, *rep = NULL;
    int rc;

    nr.id = (char *)s->cfg->id;
    nr.zone = (char *)s->cfg->zone;
    nr.endpoint = (char *)s->cfg->advertise;
    env.body_case = SZ__ENVELOPE__BODY_NODE_REGISTER;
    env.node_register = &nr;
    rc = rpc_call(sock, SZ__MSG_TYPE__NODE_REGISTER, &env, NULL, 2000, &rep, NULL);
    if (rc == 0)
        rc = srv_install_map(s, rep->reply->map);
    else if (rep != NULL)
        log_warn("registration refused: %s", rpc_error_text(rep));
    codec_free(rep);
    return rc;
}

static int srv_refresh_map(struct srv *s, struct tp_sock *sock)
{
    Sz__MapGet mg = SZ__MAP_GET__INIT;
    sz_env env = SZ__ENVELOPE__INIT, *rep = NULL;
    int rc;

    mg.known_epoch = mapbox_epoch(s->maps);
    env.body_case = SZ__ENVELOPE__BODY_MAP_GET;
    env.map_get = &mg;
    rc = rpc_call(sock, SZ__MSG_TYPE__MAP_GET, &env, NULL, 2000, &rep, NULL);
    if (rc == 0)
        rc = srv_install_map(s, rep->reply->map);
    codec_free(rep);
    return rc;
}

static int srv_heartbeat(struct srv *s, struct tp_sock *sock)
{
    Sz__NodeHeartbeat hb = SZ__NODE_HEARTBEAT__INIT;
    sz_env env = SZ__ENVELOPE__INIT, *rep = NULL;
    struct repair_stats rs;
    int rc;

    hb.id = (char *)s->cfg->id;
    bs_stats(s->bs, &hb.blocks, &hb.stored_bytes);
    repair_get_stats(s->repair, &rs);
    hb.repair_pending = rs.pending;
    hb.repaired_blocks = rs.repaired_blocks;
    hb.repair_bytes = rs.repair_bytes;
    hb.map_epoch = mapbox_epoch(s->maps);
    env.body_case = SZ__ENVELOPE__BODY_NODE_HEARTBEAT;
    env.node_heartbeat = &hb;
    rc = rpc_call(sock, SZ__MSG_TYPE__NODE_HEARTBEAT, &env, NULL, 2000, &rep, NULL);
    if (rc == 0 && rep->reply->epoch != hb.map_epoch)
        rc = srv_refresh_map(s, sock);
    codec_free(rep);
    return rc;
}

/* The heartbeat was answered "register again".  1 if that is because this
 * node was removed: the map it had listed it, and the coordinator's current
 * map is newer and does not.  (A DOWN node is still listed; a coordinator
 * that lost its catalog starts again from a lower epoch.)  The map fetched
 * is installed either way, so repair moves any data left here off. */
static int srv_was_removed(struct srv *s, struct tp_sock *sock)
{
    const struct cmap *old = mapbox_get(s->maps);
    const struct cmap *cur;
    uint64_t epoch = old != NULL ? old->epoch : 0;
    int listed = old != NULL && cmap_find(old, s->cfg->id) >= 0;
    int removed = 0;

    mapbox_put(s->maps, old);
    if (!listed || srv_refresh_map(s, sock) != 0)
        return 0;
    cur = mapbox_get(s->maps);
    removed = cur != NULL && cur->epoch > epoch && cmap_find(cur, s->cfg->id) < 0;
    mapbox_put(s->maps, cur);
    return removed;
}

static void *srv_membership(void *arg)
{
    struct srv *s = arg;
    struct tp_sock *sock = NULL;
    int registered = 0, announced = 0, removed = 0;

    while (!*s->stop) {
        int rc;
        if (sock == NULL &&
            tp_connect(s->ctx, TP_DEALER, s->cfg->coordinator, SZ_MAX_ENVELOPE, &sock) != 0) {
            log_err("bad coordinator endpoint %s", s->cfg->coordinator);
            *s->stop = 1;
            break;
        }
        if (removed)
            rc = srv_refresh_map(s, sock); /* keep following the map, never rejoin */
        else
            rc = registered ? srv_heartbeat(s, sock) : srv_register(s, sock);
        if (removed) {
            /* nothing: a removed node only watches the map */
        } else if (rc == 0 && !registered) {
            registered = 1;
            if (!announced) {
                log_info("snapnode %s ready on %s", s->cfg->id, s->cfg->listen);
                announced = 1;
            }
        } else if (rc == SZ_ENOENT && registered && srv_was_removed(s, sock)) {
            removed = 1;
            log_warn("node %s was removed from the cluster (map epoch %llu no longer lists it); "
                     "not registering again (restart the daemon to rejoin)",
                     s->cfg->id, (unsigned long long)mapbox_epoch(s->maps));
        } else if (rc == SZ_ENOENT) {
            registered = 0; /* coordinator forgot us, or we were down: register again */
        }
        if (rc == SZ_ETIMEDOUT) {
            tp_close(sock); /* drop queued requests to a dead coordinator */
            sock = NULL;
        }
        for (int t = 0; t < s->cfg->heartbeat_ms && !*s->stop; t += 50)
            usleep(50 * 1000);
    }
    tp_close(sock);
    return NULL;
}

/* ---- main thread: bounded front door and proxy ------------------------ */

static void srv_proxy(struct srv *s, struct tp_sock *front, struct tp_sock *back,
                      struct tp_sock *late)
{
    struct tp_sock *socks[3] = {front, back, late};

    while (!*s->stop) {
        int ready[3];
        struct tp_msg *m;
        int rc;
        if (tp_poll(socks, 3, SRV_POLL_MS, ready) <= 0)
            continue;
        if (ready[0]) {
            rc = tp_recv(front, 0, &m);
            if (rc == SZ_ETOOBIG) {
                rpc_reply_status(front, m, NULL, SZ_ETOOBIG, "more than %d frames",
                                 TP_MAX_FRAMES);
                tp_msg_free(m);
            } else if (rc == 0) {
                tp_send(back, &m);
            }
        }
        if (ready[1] && tp_recv(back, 0, &m) == 0)
            tp_send(front, &m);
        if (ready[2] && tp_recv(late, 0, &m) == 0)
            tp_send(front, &m);
    }
}

int srv_run(const struct srv_config *cfg, volatile sig_atomic_t *stop)
{
    struct srv s = {.cfg = cfg, .stop = stop};
    struct tp_sock *front = NULL, *back = NULL, *late = NULL;
    pthread_t workers[32], member;
    int nworkers = cfg->threads > 32 ? 32 : cfg->threads;
    int started = 0, rc;
    char dir[4096];
    struct repair_config rcfg = {.self_id = cfg->id, .interval_ms = cfg->repair_interval_ms,
                                 .rate = cfg->repair_rate, .peer_timeout_ms = cfg->peer_timeout_ms};
    struct scrub_config scfg = {.self_id = cfg->id, .interval_s = cfg->scrub_interval_s,
                                .peer_timeout_ms = cfg->peer_timeout_ms,
                                .max_queued = SRV_SCRUB_QUEUE, .reply_endpoint = SRV_REPLIES};

    snprintf(dir, sizeof(dir), "%s/blocks", cfg->data_dir);
    if ((rc = fsu_mkdirs(dir, 0700)) != 0 || (rc = bs_open(dir, &s.bs)) != 0) {
        log_err("cannot open block store in %s: %s", dir, sz_strerror(rc));
        return rc;
    }
    if ((rc = mapbox_new(&s.maps)) != 0 || (rc = tp_ctx_new(2, &s.ctx)) != 0)
        goto out;
    if ((rc = tp_bind(s.ctx, TP_ROUTER, cfg->listen, SZ_MAX_BLOCK_FRAME, &front)) != 0 ||
        (rc = tp_bind(s.ctx, TP_DEALER, SRV_BACKEND, -1, &back)) != 0 ||
        (rc = tp_bind(s.ctx, TP_DEALER, SRV_REPLIES, -1, &late)) != 0)
        goto out;
    if ((rc = scrub_new(s.ctx, s.bs, s.maps, &scfg, stop, &s.scrub)) != 0 ||
        (rc = repair_start(s.ctx, s.bs, s.maps, &rcfg, stop, &s.repair)) != 0) {
        log_err("cannot start repair/scrub: %s", sz_strerror(rc));
        goto out;
    }
    for (; started < nworkers; started++)
        if (pthread_create(&workers[started], NULL, srv_worker, &s) != 0)
            break;
    if (pthread_create(&member, NULL, srv_membership, &s) != 0) {
        *stop = 1;
    } else {
        srv_proxy(&s, front, back, late);
        pthread_join(member, NULL);
    }
    *stop = 1;
    for (int i = 0; i < started; i++)
        pthread_join(workers[i], NULL);
out:
    repair_stop(s.repair);
    scrub_free(s.scrub);
    tp_close(front);
    tp_close(back);
    tp_close(late);
    tp_ctx_free(s.ctx);
    mapbox_free(s.maps);
    bs_close(s.bs);
    return rc;
}
