/*
 * rpc: request/reply over transport + codec, shared by client, node and
 * coordinator.
 *
 * Client side (DEALER): rpc_call sends [Envelope][data frames...] with a fresh
 * req_id and waits, up to a timeout, for the Reply with the same req_id.
 * Contract: at most one request in flight per socket (callers get
 * parallelism from one socket per peer); any reply with another req_id, such
 * as a late answer to a timed-out request, is stale and dropped.
 * Server side (ROUTER): rpc_serve_recv yields [routing id][Envelope][data...];
 * a frame 0 that fails to decode is answered with a Reply carrying SZ_EPROTO
 * (or SZ_EVERSION, SZ_ETOOBIG) and a one-line reason, and is never passed on.
 */
#ifndef SZ_RPC_H
#define SZ_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "transport.h"

/** rpc_call(s, type, req, frames, timeout_ms, reply, rframes): req is an
 *  Envelope whose body is set (type and req_id are filled here); frames (may
 *  be NULL) is taken over.  On return 0, *reply is a decoded Reply envelope
 *  (caller frees with codec_free) and *rframes holds all frames, frame 0
 *  being the envelope (caller frees with tp_msg_free); rframes may be NULL
 *  when the caller needs no data frames.  If the reply carries a non-zero
 *  status, that status is returned and *reply is still set.
 *  Return 0, a reply status, SZ_ETIMEDOUT, SZ_EIO or SZ_EPROTO. */
int rpc_call(struct tp_sock *s, int type, sz_env *req, struct tp_msg *frames, int timeout_ms,
             sz_env **reply, struct tp_msg **rframes);

/** rpc_send_req(s, type, req, frames, req_id): The first half of rpc_call:
 *  send and return the req_id to wait for.  frames (may be NULL) is taken. */
int rpc_send_req(struct tp_sock *s, int type, sz_env *req, struct tp_msg *frames,
                 uint64_t *req_id);

/** rpc_recv_reply(s, req_id, deadline_ms, reply, rframes): The second half:
 *  wait until the fsu_now_ms() deadline for the reply to req_id.  Same
 *  returns and ownership as rpc_call. */
int rpc_recv_reply(struct tp_sock *s, uint64_t req_id, uint64_t deadline_ms, sz_env **reply,
                   struct tp_msg **rframes);

/** rpc_error_text(reply): The reply's error detail, or "" (borrowed). */
const char *rpc_error_text(const sz_env *reply);

/** rpc_serve_recv(s, timeout_ms, msg, env): Receive one request on a ROUTER
 *  (or a DEALER behind a proxy).  Malformed requests are answered here and
 *  reported as SZ_EPROTO; the caller just continues.  On 0, *msg holds
 *  [routing id][envelope][data...] and *env the decoded envelope. */
int rpc_serve_recv(struct tp_sock *s, int timeout_ms, struct tp_msg **msg, sz_env **env);

/** rpc_reply(s, req_msg, req_env, reply, frames): Send a Reply to the sender
 *  of req_msg (its routing frame is moved out of req_msg).  frames (may be
 *  NULL) is taken over. */
int rpc_reply(struct tp_sock *s, struct tp_msg *req_msg, const sz_env *req_env, Sz__Reply *reply,
              struct tp_msg *frames);

/** rpc_reply_status(s, req_msg, req_env, status, fmt, ...): A Reply carrying
 *  only a status and a one-line error. */
int rpc_reply_status(struct tp_sock *s, struct tp_msg *req_msg, const sz_env *req_env, int status,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
