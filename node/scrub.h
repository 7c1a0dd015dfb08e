/*
 * scrub: the storage node's integrity check.  A scrub re-reads every stored
 * block and checks its record and crc32c (bs_verify).  A copy that is
 * damaged, or whose bytes are gone, is healed from another node: ask the
 * id's placement nodes, then every other UP node, with BLOCK_GET, accept only
 * bytes whose crc32c equals the crc this node recorded for the id (the
 * sealed bytes of an id are the same on every replica), and bs_replace.  If
 * no node has a good copy, the entry is deleted (bs_delete) so HAVE reports
 * it missing and repair on another holder pushes it back later.
 *
 * All scrubs run on the scrub thread: periodically (every interval_s
 * seconds; 0 = never) and on demand.  A worker that receives NODE_SCRUB
 * hands the request to scrub_submit and returns at once (a worker never
 * blocks on a scrub: the inproc backend deals requests round-robin, so a
 * busy worker would stall every request queued behind it).  When the scrub
 * ends, the scrub thread sends each waiting request's Reply{scrub} through
 * its own DEALER connected to cfg->reply_endpoint, which the server's main
 * thread relays to its ROUTER like any worker reply.
 *
 * Thread loop (scrub_main):
 *   WAIT (requests queued? periodic due? stop?) --request or due--> RUN
 *   (scrub_pass over the requests queued so far) --> REPLY (scrub_reply to
 *   each) --> WAIT;  WAIT --stop--> answer queued requests SZ_EUNAVAIL, exit
 *
 * Invariants:
 *  - At most one scrub runs at a time.  A request that arrives while one
 *    runs is answered by the next scrub, which starts after it arrived, so
 *    it never reports a scrub that began before the request (e.g. before a
 *    corruption it wants found).  Requests queued together share one scrub.
 *  - At most max_queued requests wait (the rest get SZ_EUNAVAIL at once).
 *  - Every queued request gets exactly one reply (a result, or an error if
 *    the scrub failed or the node is stopping).
 *  - Every peer request has a deadline (peer_timeout_ms); a peer that times
 *    out is not asked again during that scrub.
 *  - A copy is replaced only by bytes matching the recorded crc; an entry
 *    is deleted only after every reachable candidate was asked.
 *  - Blocks are verified in (file, offset) order within chunks of 16384
 *    ids, so reads are mostly sequential.
 */
#ifndef SZ_SCRUB_H
#define SZ_SCRUB_H

#include <signal.h>
#include <stdint.h>

struct bs;
struct mapbox;
struct tp_ctx;
struct scrub;

struct tp_msg;

struct scrub_config {
    const char *self_id;
    int interval_s;             /* periodic scrub; <= 0: only on demand */
    int peer_timeout_ms;        /* per BLOCK_GET */
    int max_queued;             /* on-demand requests waiting at once, >= 1 */
    const char *reply_endpoint; /* inproc endpoint replies are sent to */
};

/* ScrubResult of the proto, field for field. */
struct scrub_result {
    uint64_t checked;  /* index entries verified */
    uint64_t corrupt;  /* records damaged (header, length, id or crc) */
    uint64_t repaired; /* damaged or missing copies re-stored from a peer */
    uint64_t missing;  /* index entries whose bytes were gone */
};

/** scrub_new(ctx, bs, maps, cfg, stop, out): Start the scrub thread.  ctx,
 *  bs, maps and stop must outlive it; cfg is copied (its strings are
 *  borrowed); reply_endpoint must be bound already.  Free with scrub_free.
 *  Return 0, SZ_ENOMEM or SZ_EIO. */
int scrub_new(struct tp_ctx *ctx, struct bs *bs, struct mapbox *maps,
              const struct scrub_config *cfg, volatile sig_atomic_t *stop, struct scrub **out);

/** scrub_free(sc): Stop and join the scrub thread (a scrub in progress stops
 *  within one block check), answer what is still queued, free sc.  NULL is
 *  a no-op. */
void scrub_free(struct scrub *sc);

/** scrub_submit(sc, req, req_id): Queue the NODE_SCRUB request req (frame 0,
 *  its routing id, is copied; req stays the caller's) for the next scrub;
 *  its Reply{scrub: ...} (or Reply{status}) goes out when that scrub ends.
 *  Return 0 (queued: the caller must not reply), SZ_EUNAVAIL (queue full or
 *  stopping) or SZ_ENOMEM: then the caller replies with that status. */
int scrub_submit(struct scrub *sc, const struct tp_msg *req, uint64_t req_id);

#endif
