/*
 * repair: the storage node's background re-replication.  One thread per
 * node (started by server.c) walks every stored id, makes sure each id's
 * placement nodes (cmap_place under the node's current map) hold a copy,
 * pushes a copy to those that lack one, and drops the local copy once it is
 * surplus (this node is not in the placement and every placement node holds
 * the block).  It also reports the counters the heartbeat carries
 * (NodeHeartbeat.repair_pending / repaired_blocks / repair_bytes).
 *
 * Pass state diagram (repair.c, thread repair_main):
 *
 *            repair_start
 *                 |
 *                 v          interval elapsed, or the map epoch moved
 *   +------->  IDLE  ---------------------------------------------+
 *   |     (repair_idle: ticks of 100 ms)                          |
 *   |                                                             v
 *   |                                                  SCAN (repair_pass:
 *   |                                                  bs_scan_next, 4096 ids)
 *   |                                                     |            ^
 *   |                                       chunk read    |            |
 *   |                                                     v            |
 *   |                                      ASK (repair_ask: BLOCK_HAVE |
 *   |                                      to each target peer, one    |
 *   |                                      request per peer, timeout)  |
 *   |                                                     |            |
 *   |                                                     v            |
 *   |                                   ELECT (repair_elect: short ids |
 *   |                                   a better-ranked holder pushes  |
 *   |                                   are deferred, up to 3 passes)  |
 *   |                                                     |            |
 *   |                                                     v            |
 *   |                                     PUSH (repair_push: BLOCK_PUT |
 *   |                                     forwarded=true of the blocks |
 *   |                                     each peer lacks, <= 64 blocks|
 *   |                                     / 8 MiB per request, one per |
 *   |                                     peer in flight, paced by the |
 *   |                                     token bucket)                |
 *   |                                                     |            |
 *   |                                                     v            |
 *   |                                  SETTLE (repair_settle: count    |
 *   |                                  pending ids, bs_delete surplus  |
 *   |                                  copies) --- more ids -----------+
 *   |                                                     |
 *   |                                          scan done  v
 *   +------------------------------------------  PUBLISH (repair_publish:
 *                                                 pending, log the pass)
 *   Any state --(*stop or repair_stop)--> exit; a pass cut short publishes
 *   nothing.
 *
 * Invariants:
 *  - Never hangs: every request has a deadline of peer_timeout_ms; a peer
 *    that times out (or answers with an error) is skipped for the rest of
 *    the pass and its socket is closed and reopened on next use, so a late
 *    reply is never mistaken for a new one.  At most one request per peer is
 *    in flight.
 *  - A copy is only ever sent after bs_get verified its crc; bytes pushed
 *    are paced to rate bytes/s on average (token bucket, 1 s burst).
 *  - A short id is pushed by one holder: the best-ranked placement node
 *    that holds it (or, if none does, every surplus holder).  Others defer,
 *    and push anyway when the id is still short on their third pass in a
 *    row, so a holder that cannot push never blocks repair.
 *  - A block stored less than peer_timeout_ms + 1 s ago is not pushed (the
 *    PUT that stored it may still be forwarding it); it counts as pending
 *    and is handled by a later pass.
 *  - A local copy is deleted only if: this node is not among the id's
 *    placement nodes; the placement has the full R nodes, all CMAP_UP; every
 *    one of them confirmed holding the id (HAVE said yes, or it acked our
 *    PUT as durable) in a reply stamped with our map epoch; and our map
 *    epoch is still the same just before the delete.  Nodes that agree on
 *    the map agree on the placement, and a placement node never deletes,
 *    so two nodes can never each delete a copy counting on the other's.
 *  - repair_pending is the number of ids the last complete pass left short
 *    (some placement node lacked it after the pushes, or could not be
 *    asked); repaired_blocks and repair_bytes only grow.
 */
#ifndef SZ_REPAIR_H
#define SZ_REPAIR_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

struct bs;
struct mapbox;
struct tp_ctx;
struct repair;

#define REPAIR_RATE_DEFAULT (64ull << 20) /* bytes/s */

struct repair_config {
    const char *self_id;
    int interval_ms;     /* pause between passes; <= 0: repair is off */
    uint64_t rate;       /* bytes/s of pushed block bytes, > 0 */
    int peer_timeout_ms; /* per request */
};

struct repair_stats {
    uint64_t pending;         /* ids short of replicas after the last full pass */
    uint64_t repaired_blocks; /* copies pushed and acked durable, ever */
    uint64_t repair_bytes;    /* their bytes */
    uint64_t deleted;         /* surplus local copies dropped, ever */
    uint64_t passes;          /* complete passes */
};

/** repair_start(ctx, bs, maps, cfg, stop, out): Start the repair thread
 *  (nothing is started when cfg->interval_ms <= 0; *out is still a valid
 *  handle).  ctx, bs, maps and stop must outlive it; cfg is copied (self_id
 *  is borrowed).  Stop with repair_stop.  Return 0, SZ_ENOMEM or SZ_EIO. */
int repair_start(struct tp_ctx *ctx, struct bs *bs, struct mapbox *maps,
                 const struct repair_config *cfg, volatile sig_atomic_t *stop,
                 struct repair **out);

/** repair_stop(r): Ask the thread to stop (it stops within about one peer
 *  timeout), join it and free r.  NULL is a no-op. */
void repair_stop(struct repair *r);

/** repair_get_stats(r, st): A consistent copy of the counters (all 0 for a
 *  NULL r). */
void repair_get_stats(struct repair *r, struct repair_stats *st);

/* ---- token bucket (pure; inline so unit tests need no node objects) ------- */

/* Bytes may be taken while the balance is >= 0, which can drive it negative
 * (a block larger than the burst still goes out); the next taker waits
 * until refills repay the debt.  So the long-run average is `rate`, and at
 * most one second's worth (plus one batch) goes out at once. */
struct repair_bucket {
    double rate;   /* bytes per second, >= 1 */
    double burst;  /* cap of the balance: one second's worth */
    double tokens; /* balance; may be negative */
    uint64_t last_ms;
};

/** repair_bucket_init(b, rate, now_ms): A full bucket (rate 0 becomes 1). */
static inline void repair_bucket_init(struct repair_bucket *b, uint64_t rate, uint64_t now_ms)
{
    b->rate = rate > 0 ? (double)rate : 1.0;
    b->burst = b->rate;
    b->tokens = b->burst;
    b->last_ms = now_ms;
}

/** repair_bucket_refill(b, now_ms): Credit the time since the last refill
 *  (a clock that went backwards credits nothing). */
static inline void repair_bucket_refill(struct repair_bucket *b, uint64_t now_ms)
{
    if (now_ms <= b->last_ms)
        return;
    b->tokens += b->rate * (double)(now_ms - b->last_ms) / 1000.0;
    if (b->tokens > b->burst)
        b->tokens = b->burst;
    b->last_ms = now_ms;
}

/** repair_bucket_wait_ms(b, now_ms): Refill, then the milliseconds until a
 *  take is allowed (0: now). */
static inline uint64_t repair_bucket_wait_ms(struct repair_bucket *b, uint64_t now_ms)
{
    double ms;

    repair_bucket_refill(b, now_ms);
    if (b->tokens >= 0)
        return 0;
    ms = -b->tokens * 1000.0 / b->rate;
    return (uint64_t)ms + 1;
}

/** repair_bucket_take(b, n, now_ms): Spend n bytes (call it once
 *  repair_bucket_wait_ms returned 0). */
static inline void repair_bucket_take(struct repair_bucket *b, uint64_t n, uint64_t now_ms)
{
    repair_bucket_refill(b, now_ms);
    b->tokens -= (double)n;
}

/** repair_parse_bytes(s, out): Parse "N", "NK", "NM", "NG" (powers of 1024,
 *  case-insensitive, optional trailing B or iB) into *out > 0.
 *  Return 0, or -1 for anything else (empty, zero, junk, overflow). */
static inline int repair_parse_bytes(const char *s, uint64_t *out)
{
    uint64_t v = 0, mul = 1;
    const char *p = s;

    if (s == NULL || *p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > (UINT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    switch (*p) {
    case 'k': case 'K': mul = 1ull << 10; p++; break;
    case 'm': case 'M': mul = 1ull << 20; p++; break;
    case 'g': case 'G': mul = 1ull << 30; p++; break;
    default: break;
    }
    if (mul > 1 && (*p == 'i' || *p == 'I'))
        p++;
    if (*p == 'b' || *p == 'B')
        p++;
    if (*p != '\0' || v == 0 || v > UINT64_MAX / mul)
        return -1;
    *out = v * mul;
    return 0;
}

#endif
