/*
 * replicate: a node forwards each PUT it receives from a client to the
 * block's other replicas (computed from the cluster map), in parallel, and
 * counts their durable acks.  Forwarded copies carry forwarded=true and are
 * never forwarded again.  One struct repl per worker thread: it caches one
 * DEALER socket per peer endpoint.
 */
#ifndef SZ_REPLICATE_H
#define SZ_REPLICATE_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

struct cmap;
struct tp_ctx;
struct tp_msg;
struct repl;

/** repl_new(ctx, timeout_ms, out): timeout_ms bounds each forward's wait for
 *  the peers' acks (snapnode --peer-timeout-ms, default 3000).  Caller frees
 *  with repl_free (NULL no-op). */
int repl_new(struct tp_ctx *ctx, int timeout_ms, struct repl **out);
void repl_free(struct repl *r);

/** repl_forward(r, map, self, put, msg, first, replicas): put->ids[i] has its
 *  bytes in frame first+i of msg.  For every block, send it to each replica
 *  in its placement other than node index self, and add 1 to replicas[i] for
 *  each peer that acked it durable.  Peers that fail or time out simply add
 *  nothing.  Return 0 (even if some peers failed) or SZ_ENOMEM. */
int repl_forward(struct repl *r, const struct cmap *map, long self, const Sz__BlockPut *put,
                 const struct tp_msg *msg, size_t first, uint32_t *replicas);

#endif
