/*
 * membership: the nodes the coordinator knows, their states, and the
 * versioned cluster map it publishes.
 *
 * Node states (as published in the map, coord_map_state):
 *
 *            register                 no heartbeat for suspect_ms
 *   (new) ------------> UP -------------------------------------> SUSPECT
 *                        ^  <--- heartbeat (coord_heartbeat) ---     |
 *                        |                                           | no heartbeat
 *                        +---- register (coord_register) ---- DOWN <-+ for down_ms
 *                                                              (coord_tick_membership)
 *   UP/SUSPECT --coord_drain--> DRAINING (not placed on; repair moves data off)
 *   DRAINING with 0 blocks, or DOWN once nothing is under-replicated
 *              --coord_remove--> removed (tombstoned: the id may never register again)
 *
 * Invariant: every change of a published state bumps the epoch (persisted
 * before the new map is served), so nodes and clients that compare epochs
 * always learn about it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "coord.h"
#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "rpc.h"
#include "transport.h"

int coord_map_state(const struct cnode *n)
{
    if (n->live == CN_DOWN)
        return CMAP_DOWN;
    if (n->draining)
        return CMAP_DRAINING;
    return n->live == CN_SUSPECT ? CMAP_SUSPECT : CMAP_UP;
}

static int coord_build(struct coord *c, int all_up, struct cmap **out)
{
    struct cmap *m;
    int rc;

    if ((rc = cmap_new(c->epoch, c->replicas, &m)) != 0)
        return rc;
    for (size_t i = 0; i < c->nnodes; i++) {
        struct cnode *n = &c->nodes[i];
        rc = cmap_add_node(m, n->id, n->zone, n->endpoint, all_up ? CMAP_UP : coord_map_state(n));
        if (rc != 0) {
            cmap_free(m);
            return rc;
        }
        m->nodes[m->nnodes - 1].blocks = n->blocks;
        m->nodes[m->nnodes - 1].stored_bytes = n->stored_bytes;
    }
    *out = m;
    return 0;
}

int coord_rebuild_map(struct coord *c)
{
    struct cmap *m, *h;
    int rc;

    if ((rc = coord_build(c, 0, &m)) != 0)
        return rc;
    if ((rc = coord_build(c, 1, &h)) != 0) {
        cmap_free(m);
        return rc;
    }
    cmap_free(c->map);
    cmap_free(c->homemap);
    c->map = m;
    c->homemap = h;
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
    ni.state = (Sz__NodeState)coord_map_state(n);
    return cat_node_put(c->cat, &ni);
}

/* A published state changed: persist the node, bump and persist the epoch,
 * rebuild the maps, and restart the audit under the new map. */
static void coord_changed(struct coord *c, struct cnode *n, const char *why)
{
    coord_persist_node(c, n);
    c->epoch++;
    cat_counter_set(c->cat, "epoch", c->epoch);
    coord_rebuild_map(c);
    coord_audit_restart(c);
    log_info("node %s (%s) %s: %s, epoch %llu", n->id, n->zone, why,
             cmap_state_name(coord_map_state(n)), (unsigned long long)c->epoch);
}

static long coord_find_node(struct coord *c, const char *id)
{
    for (size_t i = 0; i < c->nnodes; i++)
        if (strcmp(c->nodes[i].id, id) == 0)
            return (long)i;
    return -1;
}

int coord_load_nodes(struct coord *c, uint32_t replicas_flag)
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
        cn->draining = list[i]->state == SZ__NODE_STATE__NODE_DRAINING;
        /* Nodes that were alive get a fresh grace period after a restart. */
        cn->live = list[i]->state == SZ__NODE_STATE__NODE_DOWN ? CN_DOWN : CN_UP;
        cn->last_seen_ms = fsu_now_ms();
    }
    cat_free_list(list, n);
    return coord_rebuild_map(c);
}

void coord_free_nodes(struct coord *c)
{
    for (size_t i = 0; i < c->nnodes; i++)
        tp_close(c->nodes[i].sock);
    free(c->nodes);
    c->nodes = NULL;
    c->nnodes = 0;
    cmap_free(c->map);
    cmap_free(c->homemap);
    c->map = c->homemap = NULL;
}

void coord_tick_membership(struct coord *c)
{
    uint64_t now = fsu_now_ms();

    for (size_t i = 0; i < c->nnodes; i++) {
        struct cnode *n = &c->nodes[i];
        uint64_t quiet = now - n->last_seen_ms;
        if (n->live == CN_UP && quiet >= (uint64_t)c->cfg.suspect_ms) {
            n->live = CN_SUSPECT;
            coord_changed(c, n, "missed heartbeats");
        } else if (n->live == CN_SUSPECT &&
                   quiet >= (uint64_t)c->cfg.suspect_ms + (uint64_t)c->cfg.down_ms) {
            n->live = CN_DOWN;
            tp_close(n->sock);
            n->sock = NULL;
            coord_changed(c, n, "declared down");
        }
    }
}

const char *coord_default_zone(struct coord *c)
{
    const char *best = NULL;
    for (size_t i = 0; i < c->nnodes; i++)
        if (best == NULL || strcmp(c->nodes[i].zone, best) < 0)
            best = c->nodes[i].zone;
    return best;
}

int coord_zone_known(struct coord *c, const char *zone)
{
    for (size_t i = 0; i < c->nnodes; i++)
        if (strcmp(c->nodes[i].zone, zone) == 0)
            return 1;
    return 0;
}

/* ---- requests --------------------------------------------------------- */

int coord_reply_map(struct coord *c, struct tp_msg *msg, sz_env *env)
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

int coord_register(struct coord *c, struct tp_msg *msg, sz_env *env)
{
    const Sz__NodeRegister *nr = env->node_register;
    long i = coord_find_node(c, nr->id);
    struct cnode *n;

    if (i < 0 && cat_node_removed(c->cat, nr->id))
        return rpc_reply_status(c->router, msg, env, SZ_ESTATE,
                                "node %s was removed from the cluster; a replacement needs a "
                                "new id", nr->id);
    if (i < 0) {
        struct cnode *nn;
        if (c->nnodes >= CMAP_MAX_NODES ||
            (nn = realloc(c->nodes, (c->nnodes + 1) * sizeof(*nn))) == NULL)
            return rpc_reply_status(c->router, msg, env, SZ_ENOMEM, "cannot add node");
        c->nodes = nn;
        i = (long)c->nnodes++;
        memset(&c->nodes[i], 0, sizeof(c->nodes[i]));
        snprintf(c->nodes[i].id, sizeof(c->nodes[i].id), "%s", nr->id);
        c->nodes[i].live = -1;
    }
    n = &c->nodes[i];
    n->last_seen_ms = fsu_now_ms();
    if (n->live != CN_UP || strcmp(n->zone, nr->zone) != 0 ||
        strcmp(n->endpoint, nr->endpoint) != 0) {
        int was = n->live;
        if (strcmp(n->endpoint, nr->endpoint) != 0) {
            tp_close(n->sock);
            n->sock = NULL;
        }
        snprintf(n->zone, sizeof(n->zone), "%s", nr->zone);
        snprintf(n->endpoint, sizeof(n->endpoint), "%s", nr->endpoint);
        n->live = CN_UP;
        coord_changed(c, n, was < 0 ? "joined" : "registered");
    }
    return coord_reply_map(c, msg, env);
}

int coord_heartbeat(struct coord *c, struct tp_msg *msg, sz_env *env)
{
    const Sz__NodeHeartbeat *hb = env->node_heartbeat;
    long i = coord_find_node(c, hb->id);
    Sz__Reply r = SZ__REPLY__INIT;
    struct cnode *n;

    if (i < 0 || c->nodes[i].live == CN_DOWN)
        return rpc_reply_status(c->router, msg, env, SZ_ENOENT, "node %s must register", hb->id);
    n = &c->nodes[i];
    n->last_seen_ms = fsu_now_ms();
    n->blocks = hb->blocks;
    n->stored_bytes = hb->stored_bytes;
    n->repair_pending = hb->repair_pending;
    n->repaired_blocks = hb->repaired_blocks;
    n->repair_bytes = hb->repair_bytes;
    if (n->live == CN_SUSPECT) {
        n->live = CN_UP;
        coord_changed(c, n, "heartbeats again");
    }
    r.epoch = c->epoch;
    return rpc_reply(c->router, msg, env, &r, NULL);
}

int coord_status(struct coord *c, struct tp_msg *msg, sz_env *env)
{
    Sz__ClusterStatus cs = SZ__CLUSTER_STATUS__INIT;
    Sz__ClusterMap pb;
    Sz__Reply r = SZ__REPLY__INIT;
    uint64_t pending = 0;
    int rc;

    coord_refresh_stats(c);
    if ((rc = codec_map_to_pb(c->map, &pb)) != 0)
        return rpc_reply_status(c->router, msg, env, rc, "out of memory");
    for (size_t i = 0; i < c->nnodes; i++)
        if (c->nodes[i].live == CN_UP)
            pending += c->nodes[i].repair_pending;
    cs.map = &pb;
    /* The audit's count, or, before its first pass, what nodes report. */
    cs.under_replicated_blocks = c->audit_complete ? c->under_replicated : pending;
    r.cluster = &cs;
    r.epoch = c->epoch;
    rc = rpc_reply(c->router, msg, env, &r, NULL);
    codec_map_pb_release(&pb);
    return rc;
}

int coord_drain(struct coord *c, struct tp_msg *msg, sz_env *env)
{
    long i = coord_find_node(c, env->name_ref->name);

    if (i < 0)
        return rpc_reply_status(c->router, msg, env, SZ_ENOENT, "no node '%s'",
                                env->name_ref->name);
    if (!c->nodes[i].draining) {
        c->nodes[i].draining = 1;
        coord_changed(c, &c->nodes[i], "drain requested");
    }
    return coord_reply_map(c, msg, env);
}

int coord_remove(struct coord *c, struct tp_msg *msg, sz_env *env)
{
    long i = coord_find_node(c, env->name_ref->name);
    struct cnode *n;
    char key[CMAP_NAME_MAX];

    if (i < 0)
        return rpc_reply_status(c->router, msg, env, SZ_ENOENT, "no node '%s'",
                                env->name_ref->name);
    n = &c->nodes[i];
    if (!(n->draining && n->blocks == 0 && n->live == CN_UP) &&
        !(n->live == CN_DOWN && c->audit_complete && c->under_replicated == 0))
        return rpc_reply_status(c->router, msg, env, SZ_ESTATE,
                                "node '%s' still holds data: drain it until it has 0 blocks "
                                "(it has %llu), or wait until it is down and nothing is "
                                "under-replicated", n->id, (unsigned long long)n->blocks);
    snprintf(key, sizeof(key), "%s", n->id);
    tp_close(n->sock);
    memmove(n, n + 1, (c->nnodes - (size_t)i - 1) * sizeof(*n));
    c->nnodes--;
    cat_node_del(c->cat, key);
    c->epoch++;
    cat_counter_set(c->cat, "epoch", c->epoch);
    coord_rebuild_map(c);
    coord_audit_restart(c);
    log_info("node %s removed, epoch %llu", key, (unsigned long long)c->epoch);
    return coord_reply_map(c, msg, env);
}
