/*
 * transport: multipart ZeroMQ messaging; the only file that includes zmq.h.
 *
 * Every socket is bounded: ZMQ_MAXMSGSIZE caps any single frame (a peer that
 * sends more is disconnected by libzmq), tp_recv caps the frame count, high
 * water marks cap queues, and every receive has a timeout.  Large frames are
 * sent without copying (tp_msg_add_take hands the buffer to libzmq).
 * A socket is used by one thread at a time; a context is shared.
 */
#ifndef SZ_TRANSPORT_H
#define SZ_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#define TP_MAX_FRAMES 72 /* routing id + envelope + a full batch, with room */

enum tp_type { TP_ROUTER = 1, TP_DEALER = 2 };

struct tp_ctx;
struct tp_sock;
struct tp_msg;

/** tp_ctx_new(io_threads, out): Caller frees with tp_ctx_free after closing
 *  every socket. */
int tp_ctx_new(int io_threads, struct tp_ctx **out);
void tp_ctx_free(struct tp_ctx *ctx);

/** tp_bind(ctx, type, endpoint, maxmsg, out) / tp_connect(...): Open a socket
 *  whose inbound frames are limited to maxmsg bytes.  Caller closes with
 *  tp_close (NULL is a no-op).  Return 0, SZ_EINVAL (bad endpoint) or SZ_EIO. */
int tp_bind(struct tp_ctx *ctx, int type, const char *endpoint, int64_t maxmsg,
            struct tp_sock **out);
int tp_connect(struct tp_ctx *ctx, int type, const char *endpoint, int64_t maxmsg,
               struct tp_sock **out);
void tp_close(struct tp_sock *s);

/** tp_msg_new(out): An empty multipart message.  Caller frees with
 *  tp_msg_free (NULL is a no-op) unless it is handed to tp_send. */
int tp_msg_new(struct tp_msg **out);
void tp_msg_free(struct tp_msg *m);

/** tp_msg_add(m, data, len): Append a copy of data as a frame. */
int tp_msg_add(struct tp_msg *m, const void *data, size_t len);

/** tp_msg_add_take(m, data, len): Append data as a frame without copying.
 *  Takes ownership of data (released with free()), even on failure. */
int tp_msg_add_take(struct tp_msg *m, void *data, size_t len);

/** tp_msg_move(dst, src, i): Move frame i of src to the end of dst without
 *  copying; src's frame i becomes empty. */
int tp_msg_move(struct tp_msg *dst, struct tp_msg *src, size_t i);

/** tp_msg_share(dst, src, i): Append frame i of src to dst, sharing its
 *  buffer (reference counted by libzmq; no copy). */
int tp_msg_share(struct tp_msg *dst, const struct tp_msg *src, size_t i);

size_t tp_msg_count(const struct tp_msg *m);
/** tp_msg_data(m, i) / tp_msg_size(m, i): Borrowed; valid until m is freed. */
const void *tp_msg_data(const struct tp_msg *m, size_t i);
size_t tp_msg_size(const struct tp_msg *m, size_t i);

/** tp_send(s, mp): Send and free *mp, setting it to NULL.  Never blocks longer
 *  than the socket's send timeout (5 s).  Return 0, SZ_ETIMEDOUT or SZ_EIO. */
int tp_send(struct tp_sock *s, struct tp_msg **mp);

/** tp_recv(s, timeout_ms, out): Receive one multipart message (timeout_ms < 0
 *  waits forever).  A message with more than TP_MAX_FRAMES frames is drained
 *  and returned truncated to its first frame, with SZ_ETOOBIG.
 *  Return 0, SZ_ETIMEDOUT, SZ_ETOOBIG or SZ_EIO. */
int tp_recv(struct tp_sock *s, int timeout_ms, struct tp_msg **out);

/** tp_poll(socks, n, timeout_ms, ready): ready[i] = 1 for sockets with input.
 *  Return the number ready (0 on timeout) or SZ_EIO. */
int tp_poll(struct tp_sock **socks, size_t n, int timeout_ms, int *ready);

/** tp_proxy(front, back): Shuttle messages both ways until the context is
 *  terminated.  Return SZ_EIO (terminated). */
int tp_proxy(struct tp_sock *front, struct tp_sock *back);

/** tp_strerror_last(): libzmq's text for the last failure on this thread. */
const char *tp_strerror_last(void);

#endif
