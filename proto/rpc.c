/*
 * rpc: see rpc.h.
 */
#include "rpc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fsutil.h"
#include "log.h"

static _Thread_local uint64_t rpc_next_id;

static uint64_t rpc_new_id(void)
{
    if (rpc_next_id == 0)
        rpc_next_id = ((uint64_t)fsu_now_ms() << 20) ^ (uint64_t)(uintptr_t)&rpc_next_id;
    return ++rpc_next_id;
}

static int rpc_build(sz_env *env, struct tp_msg *frames, struct tp_msg **out)
{
    struct tp_msg *m = NULL;
    uint8_t *buf;
    size_t len;
    int rc;

    if ((rc = codec_encode(env, &buf, &len)) != 0)
        goto err0;
    if ((rc = tp_msg_new(&m)) != 0) {
        free(buf);
        goto err0;
    }
    if ((rc = tp_msg_add_take(m, buf, len)) != 0)
        goto err1;
    for (size_t i = 0; frames != NULL && i < tp_msg_count(frames); i++)
        if ((rc = tp_msg_move(m, frames, i)) != 0)
            goto err1;
    tp_msg_free(frames);
    *out = m;
    return 0;
err1:
    tp_msg_free(m);
err0:
    tp_msg_free(frames);
    return rc;
}

int rpc_send_req(struct tp_sock *s, int type, sz_env *req, struct tp_msg *frames,
                 uint64_t *req_id)
{
    struct tp_msg *m;
    int rc;

    req->type = (Sz__MsgType)type;
    req->req_id = rpc_new_id();
    *req_id = req->req_id;
    if ((rc = rpc_build(req, frames, &m)) != 0)
        return rc;
    return tp_send(s, &m);
}

int rpc_recv_reply(struct tp_sock *s, uint64_t req_id, uint64_t deadline_ms, sz_env **reply,
                   struct tp_msg **rframes)
{
    struct tp_msg *m;
    int rc;

    *reply = NULL;
    if (rframes)
        *rframes = NULL;
    for (;;) {
        uint64_t now = fsu_now_ms();
        sz_env *e;
        char why[128];
        /* Past the deadline, still take a reply that is already queued: a
         * caller collecting several peers against one deadline must not
         * call a prompt answer a timeout because an earlier peer was slow. */
        rc = tp_recv(s, now >= deadline_ms ? 0 : (int)(deadline_ms - now), &m);
        if (rc == SZ_ETOOBIG) {
            tp_msg_free(m);
            return SZ_EPROTO;
        }
        if (rc != 0)
            return rc;
        rc = codec_decode(tp_msg_data(m, 0), tp_msg_size(m, 0), &e, why, sizeof(why));
        if (rc != 0) {
            log_debug("undecodable reply dropped: %s", why);
            tp_msg_free(m);
            continue;
        }
        if (e->req_id != req_id || e->body_case != SZ__ENVELOPE__BODY_REPLY) {
            codec_free(e); /* a late reply to an earlier, timed-out call */
            tp_msg_free(m);
            continue;
        }
        *reply = e;
        if (rframes)
            *rframes = m;
        else
            tp_msg_free(m);
        return e->reply->status;
    }
}

int rpc_call(struct tp_sock *s, int type, sz_env *req, struct tp_msg *frames, int timeout_ms,
             sz_env **reply, struct tp_msg **rframes)
{
    uint64_t deadline = fsu_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    uint64_t id;
    int rc;

    *reply = NULL;
    if (rframes)
        *rframes = NULL;
    if ((rc = rpc_send_req(s, type, req, frames, &id)) != 0)
        return rc;
    return rpc_recv_reply(s, id, deadline, reply, rframes);
}

const char *rpc_error_text(const sz_env *reply)
{
    if (reply == NULL || reply->body_case != SZ__ENVELOPE__BODY_REPLY || reply->reply->error == NULL)
        return "";
    return reply->reply->error;
}

int rpc_reply(struct tp_sock *s, struct tp_msg *req_msg, const sz_env *req_env, Sz__Reply *reply,
              struct tp_msg *frames)
{
    sz_env env = SZ__ENVELOPE__INIT;
    struct tp_msg *body, *out;
    int rc;

    env.type = SZ__MSG_TYPE__REPLY;
    env.req_id = req_env ? req_env->req_id : 0;
    env.body_case = SZ__ENVELOPE__BODY_REPLY;
    env.reply = reply;
    if ((rc = rpc_build(&env, frames, &body)) != 0)
        return rc;
    if ((rc = tp_msg_new(&out)) != 0) {
        tp_msg_free(body);
        return rc;
    }
    if ((rc = tp_msg_move(out, req_msg, 0)) != 0)
        goto err;
    for (size_t i = 0; i < tp_msg_count(body); i++)
        if ((rc = tp_msg_move(out, body, i)) != 0)
            goto err;
    tp_msg_free(body);
    return tp_send(s, &out);
err:
    tp_msg_free(body);
    tp_msg_free(out);
    return rc;
}

int rpc_reply_status(struct tp_sock *s, struct tp_msg *req_msg, const sz_env *req_env, int status,
                     const char *fmt, ...)
{
    Sz__Reply r = SZ__REPLY__INIT;
    char buf[512] = "";
    va_list ap;

    if (fmt != NULL) {
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
    }
    r.status = status;
    r.error = buf;
    return rpc_reply(s, req_msg, req_env, &r, NULL);
}

int rpc_serve_recv(struct tp_sock *s, int timeout_ms, struct tp_msg **msg, sz_env **env)
{
    struct tp_msg *m;
    char why[256];
    int rc;

    *msg = NULL;
    *env = NULL;
    rc = tp_recv(s, timeout_ms, &m);
    if (rc == SZ_ETOOBIG) {
        rpc_reply_status(s, m, NULL, SZ_ETOOBIG, "more than %d frames", TP_MAX_FRAMES);
        tp_msg_free(m);
        return SZ_EPROTO;
    }
    if (rc != 0)
        return rc;
    if (tp_msg_count(m) < 2) {
        if (tp_msg_count(m) == 1)
            rpc_reply_status(s, m, NULL, SZ_EPROTO, "message has no envelope frame");
        tp_msg_free(m);
        return SZ_EPROTO;
    }
    rc = codec_decode(tp_msg_data(m, 1), tp_msg_size(m, 1), env, why, sizeof(why));
    if (rc != 0) {
        sz_env echo = SZ__ENVELOPE__INIT;
        echo.req_id = codec_peek_req_id(tp_msg_data(m, 1), tp_msg_size(m, 1));
        log_debug("malformed request: %s", why);
        rpc_reply_status(s, m, &echo, rc, "%s", why);
        tp_msg_free(m);
        return SZ_EPROTO;
    }
    if ((*env)->type == SZ__MSG_TYPE__REPLY) {
        codec_free(*env);
        *env = NULL;
        tp_msg_free(m);
        return SZ_EPROTO; /* never answer a reply: no ping-pong */
    }
    *msg = m;
    return 0;
}
