/*
 * locate: where the live copies of blocks are, found by asking nodes.
 *
 * One mechanism serves three questions:
 *   - commit: is every new block durable on enough nodes in enough zones?
 *   - audit: how many referenced blocks lack R live copies in distinct zones
 *     (cluster status' under_replicated_blocks)?
 *   - readiness: from which zones is a snapshot fully restorable right now,
 *     and is it fully protected?
 * For each id the candidates are its placement over all known nodes (where
 * copies were put) and its current placement (where repair puts them); only
 * UP nodes are asked, in parallel, at most SZ_MAX_HAVE ids per request and
 * one request in flight per node.  A node that does not answer in time
 * counts as not holding; nodes silent for more than half the suspect
 * timeout are not asked at all (they are probably dead).
 *
 * The audit walks the catalog's reference keys in slices, so the
 * coordinator's loop keeps serving between slices; a finished pass publishes
 * its count, and any epoch change starts a new pass.
 */
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "coord.h"
#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "rpc.h"
#include "transport.h"

#define LOC_AUDIT_SLICE 4096

/* ---- zones ------------------------------------------------------------ */

static int loc_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted distinct zone names (pointers into c->nodes); returns the count. */
static size_t loc_zones(struct coord *c, const char **out, size_t max)
{
    size_t n = 0;

    for (size_t i = 0; i < c->nnodes; i++) {
        size_t k;
        for (k = 0; k < n && strcmp(out[k], c->nodes[i].zone) != 0; k++)
            ;
        if (k == n && n < max)
            out[n++] = c->nodes[i].zone;
    }
    qsort(out, n, sizeof(*out), loc_cmp_str);
    return n;
}

size_t coord_nzones(struct coord *c)
{
    const char *z[64];
    return loc_zones(c, z, 64);
}

const char *coord_zone_name(struct coord *c, size_t i)
{
    const char *z[64];
    size_t n = loc_zones(c, z, 64);
    return i < n ? z[i] : NULL;
}

int coord_zone_index(struct coord *c, const char *zone)
{
    const char *z[64];
    size_t n = loc_zones(c, z, 64);

    for (size_t i = 0; i < n; i++)
        if (strcmp(z[i], zone) == 0)
            return (int)i;
    return -1;
}

/* Zones that have at least one UP node right now. */
static size_t loc_up_zones(struct coord *c)
{
    uint64_t mask = 0;

    for (size_t j = 0; j < c->nnodes; j++) {
        int z = coord_zone_index(c, c->nodes[j].zone);
        if (c->nodes[j].live == CN_UP && z >= 0)
            mask |= 1ull << z;
    }
    return (size_t)__builtin_popcountll(mask);
}

int coord_protected(struct coord *c, const struct coord_loc *loc, int strict)
{
    size_t nz = strict ? coord_nzones(c) : loc_up_zones(c);
    size_t want_zones = c->replicas < nz ? c->replicas : nz;

    return loc->copies >= c->replicas && (size_t)__builtin_popcountll(loc->zones) >= want_zones;
}

/* ---- asking nodes ----------------------------------------------------- */

struct loc_node {
    size_t *idx; /* ids this node is asked about */
    size_t n, done, inflight;
    uint64_t req_id;
    int zone;
};

static int loc_plan(struct coord *c, const uint8_t *ids, size_t n, struct loc_node *ln)
{
    uint64_t now = fsu_now_ms(), quiet_max = (uint64_t)c->cfg.suspect_ms / 2;

    for (size_t j = 0; j < c->nnodes; j++) {
        ln[j].zone = coord_zone_index(c, c->nodes[j].zone);
        /* Only nodes heard from recently: one that went quiet is probably
         * dead, and waiting on it would stall the coordinator. */
        if (c->nodes[j].live != CN_UP || now - c->nodes[j].last_seen_ms > quiet_max)
            continue;
        if ((ln[j].idx = malloc((n ? n : 1) * sizeof(size_t))) == NULL)
            return SZ_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        size_t home[CMAP_MAX_REPLICAS], cur[CMAP_MAX_REPLICAS], cand[2 * CMAP_MAX_REPLICAS];
        size_t kh = cmap_place(c->homemap, ids + 32 * i, home, CMAP_MAX_REPLICAS);
        size_t kc = cmap_place(c->map, ids + 32 * i, cur, CMAP_MAX_REPLICAS), k = 0;
        for (size_t a = 0; a < kh; a++)
            cand[k++] = home[a];
        for (size_t a = 0; a < kc; a++) {
            size_t b;
            for (b = 0; b < kh && home[b] != cur[a]; b++)
                ;
            if (b == kh)
                cand[k++] = cur[a];
        }
        for (size_t a = 0; a < k; a++)
            if (ln[cand[a]].idx != NULL)
                ln[cand[a]].idx[ln[cand[a]].n++] = i;
    }
    return 0;
}

static void loc_send(struct coord *c, const uint8_t *ids, struct loc_node *ln, size_t j,
                     ProtobufCBinaryData *pb)
{
    struct cnode *cn = &c->nodes[j];
    Sz__BlockIds b = SZ__BLOCK_IDS__INIT;
    sz_env e = SZ__ENVELOPE__INIT;
    size_t cnt = ln->n - ln->done > SZ_MAX_HAVE ? SZ_MAX_HAVE : ln->n - ln->done;

    ln->inflight = 0;
    if (cnt == 0)
        return;
    if (cn->sock == NULL &&
        tp_connect(c->ctx, TP_DEALER, cn->endpoint, SZ_MAX_ENVELOPE, &cn->sock) != 0) {
        ln->done = ln->n; /* unreachable: holds nothing, as far as we know */
        return;
    }
    for (size_t q = 0; q < cnt; q++) {
        pb[q].data = (uint8_t *)ids + 32 * ln->idx[ln->done + q];
        pb[q].len = 32;
    }
    b.n_ids = cnt;
    b.ids = pb;
    e.body_case = SZ__ENVELOPE__BODY_BLOCK_IDS;
    e.block_ids = &b;
    if (rpc_send_req(cn->sock, SZ__MSG_TYPE__BLOCK_HAVE, &e, NULL, &ln->req_id) == 0)
        ln->inflight = cnt;
    else
        ln->done = ln->n;
}

static void loc_collect(struct coord *c, struct loc_node *ln, size_t j, uint64_t deadline,
                        struct coord_loc *loc)
{
    struct cnode *cn = &c->nodes[j];
    sz_env *rep = NULL;
    size_t cnt = ln->inflight;
    int rc;

    if (cnt == 0)
        return;
    rc = rpc_recv_reply(cn->sock, ln->req_id, deadline, &rep, NULL);
    if (rc == 0 && rep->reply->have && rep->reply->have->n_have == cnt) {
        for (size_t q = 0; q < cnt; q++) {
            struct coord_loc *l = &loc[ln->idx[ln->done + q]];
            if (!rep->reply->have->have[q])
                continue;
            l->copies++;
            if (ln->zone >= 0)
                l->zones |= 1ull << ln->zone;
        }
        ln->done += cnt;
    } else {
        if (rc == SZ_ETIMEDOUT) {
            log_warn("node %s did not answer BLOCK_HAVE in time", cn->id);
            tp_close(cn->sock);
            cn->sock = NULL;
        }
        ln->done = ln->n; /* give up on this node for this call */
    }
    codec_free(rep);
}

int coord_locate(struct coord *c, const uint8_t *ids, size_t n, struct coord_loc *loc)
{
    struct loc_node *ln = calloc(c->nnodes ? c->nnodes : 1, sizeof(*ln));
    ProtobufCBinaryData *pb = malloc(SZ_MAX_HAVE * sizeof(*pb));
    int rc = 0, more = 1;

    memset(loc, 0, n * sizeof(*loc));
    if (ln == NULL || pb == NULL || (rc = loc_plan(c, ids, n, ln)) != 0) {
        rc = rc ? rc : SZ_ENOMEM;
        goto out;
    }
    while (more) {
        uint64_t deadline;
        more = 0;
        for (size_t j = 0; j < c->nnodes; j++)
            if (ln[j].idx != NULL)
                loc_send(c, ids, &ln[j], j, pb);
        deadline = fsu_now_ms() + (uint64_t)c->cfg.have_timeout_ms;
        for (size_t j = 0; j < c->nnodes; j++) {
            if (ln[j].idx == NULL)
                continue;
            loc_collect(c, &ln[j], j, deadline, loc);
            if (ln[j].done < ln[j].n)
                more = 1;
        }
    }
out:
    for (size_t j = 0; ln && j < c->nnodes; j++)
        free(ln[j].idx);
    free(ln);
    free(pb);
    return rc;
}

/* ---- audit ------------------------------------------------------------ */

void coord_audit_restart(struct coord *c)
{
    c->audit_cursor_len = 0;
    c->audit_partial = 0;
    c->next_audit_ms = 0;
}

void coord_audit_step(struct coord *c)
{
    uint8_t *ids = NULL, next[34];
    struct coord_loc *loc = NULL;
    size_t n = 0, nlen = 0;
    uint64_t now = fsu_now_ms();

    if (now < c->next_audit_ms)
        return;
    if ((ids = malloc(LOC_AUDIT_SLICE * 32)) == NULL ||
        (loc = malloc(LOC_AUDIT_SLICE * sizeof(*loc))) == NULL)
        goto out;
    if (cat_refs_iter(c->cat, c->audit_cursor, c->audit_cursor_len, ids, LOC_AUDIT_SLICE, &n,
                      next, &nlen) != 0)
        goto out;
    if (n == 0) {
        if (!c->audit_complete || c->under_replicated != c->audit_partial)
            log_info("audit: %llu under-replicated blocks",
                     (unsigned long long)c->audit_partial);
        c->under_replicated = c->audit_partial;
        c->audit_complete = 1;
        coord_audit_restart(c);
        c->next_audit_ms = now + (uint64_t)c->cfg.audit_ms;
        goto out;
    }
    if (coord_locate(c, ids, n, loc) == 0)
        for (size_t i = 0; i < n; i++)
            c->audit_partial += !coord_protected(c, &loc[i], 0);
    memcpy(c->audit_cursor, next, nlen);
    c->audit_cursor_len = nlen;
    c->next_audit_ms = now + 10; /* let requests in between slices */
out:
    free(ids);
    free(loc);
}
