/*
 * replicate: see replicate.h.
 *
 * For one incoming batch: group blocks by peer (each peer gets at most one
 * sub-batch), send every sub-batch before waiting for any reply, then collect
 * replies until the deadline.  Replies are collected one peer after the
 * other against that one deadline; a peer reached after the deadline passed
 * (waiting on a dead one first) still has its already-queued reply taken,
 * as rpc_recv_reply looks once more past the deadline.  A peer that times
 * out has its socket closed, so a stale reply can never be mistaken for a
 * new one.  Nodes marked DOWN are never sent to (placement excludes them
 * anyway; this guards maps built by other rules).
 */
#include "replicate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clustermap.h"
#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "rpc.h"
#include "transport.h"

#define REPL_MAX_PEERS 64

struct repl_peer {
    char endpoint[CMAP_ENDPOINT_MAX];
    struct tp_sock *sock;
};

struct repl {
    struct tp_ctx *ctx;
    int timeout_ms;
    struct repl_peer peers[REPL_MAX_PEERS];
    size_t npeers;
};

int repl_new(struct tp_ctx *ctx, int timeout_ms, struct repl **out)
{
    struct repl *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return SZ_ENOMEM;
    r->ctx = ctx;
    r->timeout_ms = timeout_ms;
    *out = r;
    return 0;
}

void repl_free(struct repl *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->npeers; i++)
        tp_close(r->peers[i].sock);
    free(r);
}

static struct repl_peer *repl_peer(struct repl *r, const char *endpoint)
{
    struct repl_peer *p = NULL;

    for (size_t i = 0; i < r->npeers; i++)
        if (strcmp(r->peers[i].endpoint, endpoint) == 0)
            p = &r->peers[i];
    if (p == NULL) {
        if (r->npeers == REPL_MAX_PEERS) {
            tp_close(r->peers[0].sock); /* evict the oldest */
            memmove(&r->peers[0], &r->peers[1], (REPL_MAX_PEERS - 1) * sizeof(r->peers[0]));
            r->npeers--;
        }
        p = &r->peers[r->npeers++];
        memset(p, 0, sizeof(*p));
        snprintf(p->endpoint, sizeof(p->endpoint), "%s", endpoint);
    }
    if (p->sock == NULL &&
        tp_connect(r->ctx, TP_DEALER, endpoint, SZ_MAX_ENVELOPE, &p->sock) != 0)
        return NULL;
    return p;
}

struct repl_job {
    long node;
    size_t n;
    size_t idx[SZ_MAX_BATCH];
    uint64_t req_id;
    struct repl_peer *peer;
};

/* Group blocks by destination node (every replica except self). */
static size_t repl_plan(const struct cmap *map, long self, const Sz__BlockPut *put,
                        struct repl_job *jobs)
{
    size_t njobs = 0;

    for (size_t i = 0; i < put->n_ids; i++) {
        size_t place[CMAP_MAX_REPLICAS];
        size_t k = cmap_place(map, put->ids[i].data, place, CMAP_MAX_REPLICAS);
        for (size_t j = 0; j < k; j++) {
            size_t q;
            if ((long)place[j] == self || map->nodes[place[j]].state == CMAP_DOWN)
                continue;
            for (q = 0; q < njobs && jobs[q].node != (long)place[j]; q++)
                ;
            if (q == njobs) {
                memset(&jobs[q], 0, sizeof(jobs[q]));
                jobs[q].node = (long)place[j];
                njobs++;
            }
            jobs[q].idx[jobs[q].n++] = i;
        }
    }
    return njobs;
}

static int repl_send(struct repl *r, const struct cmap *map, const Sz__BlockPut *put,
                     const struct tp_msg *msg, size_t first, struct repl_job *job)
{
    ProtobufCBinaryData ids[SZ_MAX_BATCH];
    uint32_t crcs[SZ_MAX_BATCH];
    Sz__BlockPut fw = SZ__BLOCK_PUT__INIT;
    sz_env env = SZ__ENVELOPE__INIT;
    struct tp_msg *frames;
    int rc;

    job->peer = repl_peer(r, map->nodes[job->node].endpoint);
    if (job->peer == NULL)
        return SZ_EUNAVAIL;
    if ((rc = tp_msg_new(&frames)) != 0)
        return rc;
    for (size_t k = 0; k < job->n; k++) {
        ids[k] = put->ids[job->idx[k]];
        crcs[k] = put->crcs[job->idx[k]];
        if ((rc = tp_msg_share(frames, msg, first + job->idx[k])) != 0) {
            tp_msg_free(frames);
            return rc;
        }
    }
    fw.n_ids = fw.n_crcs = job->n;
    fw.ids = ids;
    fw.crcs = crcs;
    fw.forwarded = 1;
    fw.map_epoch = map->epoch;
    env.body_case = SZ__ENVELOPE__BODY_BLOCK_PUT;
    env.block_put = &fw;
    return rpc_send_req(job->peer->sock, SZ__MSG_TYPE__BLOCK_PUT, &env, frames, &job->req_id);
}

static void repl_collect(struct repl_job *job, uint64_t deadline, uint32_t *replicas)
{
    sz_env *rep = NULL;
    int rc = rpc_recv_reply(job->peer->sock, job->req_id, deadline, &rep, NULL);

    if (rc == 0 && rep->reply->put != NULL && rep->reply->put->n_replicas == job->n) {
        for (size_t k = 0; k < job->n; k++)
            if (rep->reply->put->replicas[k] > 0)
                replicas[job->idx[k]]++;
    } else {
        log_warn("forward to %s failed: %s", job->peer->endpoint,
                 rc ? sz_strerror(rc) : "bad reply");
        if (rc == SZ_ETIMEDOUT) {
            tp_close(job->peer->sock);
            job->peer->sock = NULL;
        }
    }
    codec_free(rep);
}

int repl_forward(struct repl *r, const struct cmap *map, long self, const Sz__BlockPut *put,
                 const struct tp_msg *msg, size_t first, uint32_t *replicas)
{
    struct repl_job *jobs = malloc(sizeof(*jobs) * (map->nnodes ? map->nnodes : 1));
    uint64_t deadline;
    size_t njobs;

    if (jobs == NULL)
        return SZ_ENOMEM;
    njobs = repl_plan(map, self, put, jobs);
    for (size_t q = 0; q < njobs; q++)
        if (repl_send(r, map, put, msg, first, &jobs[q]) != 0)
            jobs[q].n = 0;
    deadline = fsu_now_ms() + (uint64_t)r->timeout_ms;
    for (size_t q = 0; q < njobs; q++)
        if (jobs[q].n > 0)
            repl_collect(&jobs[q], deadline, replicas);
    free(jobs);
    return 0;
}
