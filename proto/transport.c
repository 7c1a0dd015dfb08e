/*
 * transport: see transport.h.  Frames are zmq_msg_t kept in a fixed array so
 * they are never copied bytewise (libzmq forbids that).
 */
#include "transport.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "err.h"
#include "log.h"

struct tp_ctx {
    void *zctx;
};

struct tp_sock {
    void *z;
};

struct tp_msg {
    size_t n;
    zmq_msg_t f[TP_MAX_FRAMES];
};

int tp_ctx_new(int io_threads, struct tp_ctx **out)
{
    struct tp_ctx *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return SZ_ENOMEM;
    c->zctx = zmq_ctx_new();
    if (c->zctx == NULL) {
        free(c);
        return SZ_EIO;
    }
    zmq_ctx_set(c->zctx, ZMQ_IO_THREADS, io_threads > 0 ? io_threads : 1);
    zmq_ctx_set(c->zctx, ZMQ_BLOCKY, 0);
    *out = c;
    return 0;
}

void tp_ctx_free(struct tp_ctx *ctx)
{
    if (ctx == NULL)
        return;
    zmq_ctx_term(ctx->zctx);
    free(ctx);
}

static int tp_open(struct tp_ctx *ctx, int type, int64_t maxmsg, struct tp_sock **out)
{
    struct tp_sock *s = calloc(1, sizeof(*s));
    int ztype = type == TP_ROUTER ? ZMQ_ROUTER : ZMQ_DEALER;
    int linger = 0, hwm = 256, sndtimeo = 5000, reconnect_max = 5000;

    if (s == NULL)
        return SZ_ENOMEM;
    s->z = zmq_socket(ctx->zctx, ztype);
    if (s->z == NULL) {
        free(s);
        return SZ_EIO;
    }
    zmq_setsockopt(s->z, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(s->z, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
    zmq_setsockopt(s->z, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(s->z, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(s->z, ZMQ_SNDTIMEO, &sndtimeo, sizeof(sndtimeo));
    /* Back off reconnects to a peer that is gone (100 ms doubling to 5 s):
     * each attempt may resolve a host name on libzmq's shared I/O thread,
     * and a dead peer must not keep that thread busy for everyone else. */
    zmq_setsockopt(s->z, ZMQ_RECONNECT_IVL_MAX, &reconnect_max, sizeof(reconnect_max));
    *out = s;
    return 0;
}

int tp_bind(struct tp_ctx *ctx, int type, const char *endpoint, int64_t maxmsg,
            struct tp_sock **out)
{
    struct tp_sock *s;
    int rc = tp_open(ctx, type, maxmsg, &s);

    if (rc != 0)
        return rc;
    if (zmq_bind(s->z, endpoint) != 0) {
        rc = errno == EINVAL || errno == EPROTONOSUPPORT ? SZ_EINVAL : SZ_EIO;
        log_err("cannot bind %s: %s", endpoint, zmq_strerror(errno));
        tp_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

int tp_connect(struct tp_ctx *ctx, int type, const char *endpoint, int64_t maxmsg,
               struct tp_sock **out)
{
    struct tp_sock *s;
    int rc = tp_open(ctx, type, maxmsg, &s);

    if (rc != 0)
        return rc;
    if (zmq_connect(s->z, endpoint) != 0) {
        tp_close(s);
        return SZ_EINVAL;
    }
    *out = s;
    return 0;
}

void tp_close(struct tp_sock *s)
{
    if (s == NULL)
        return;
    zmq_close(s->z);
    free(s);
}

int tp_msg_new(struct tp_msg **out)
{
    struct tp_msg *m = malloc(sizeof(*m));

    if (m == NULL)
        return SZ_ENOMEM;
    m->n = 0;
    *out = m;
    return 0;
}

void tp_msg_free(struct tp_msg *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++)
        zmq_msg_close(&m->f[i]);
    free(m);
}

int tp_msg_add(struct tp_msg *m, const void *data, size_t len)
{
    if (m->n >= TP_MAX_FRAMES)
        return SZ_ETOOBIG;
    if (zmq_msg_init_size(&m->f[m->n], len) != 0)
        return SZ_ENOMEM;
    if (len > 0)
        memcpy(zmq_msg_data(&m->f[m->n]), data, len);
    m->n++;
    return 0;
}

static void tp_free_fn(void *data, void *hint)
{
    (void)hint;
    free(data);
}

int tp_msg_add_take(struct tp_msg *m, void *data, size_t len)
{
    if (m->n >= TP_MAX_FRAMES) {
        free(data);
        return SZ_ETOOBIG;
    }
    if (data == NULL || len == 0) {
        free(data);
        return tp_msg_add(m, NULL, 0);
    }
    if (zmq_msg_init_data(&m->f[m->n], data, len, tp_free_fn, NULL) != 0) {
        free(data);
        return SZ_ENOMEM;
    }
    m->n++;
    return 0;
}

int tp_msg_move(struct tp_msg *dst, struct tp_msg *src, size_t i)
{
    if (dst->n >= TP_MAX_FRAMES || i >= src->n)
        return SZ_EINVAL;
    zmq_msg_init(&dst->f[dst->n]);
    if (zmq_msg_move(&dst->f[dst->n], &src->f[i]) != 0) {
        zmq_msg_close(&dst->f[dst->n]);
        return SZ_EIO;
    }
    dst->n++;
    return 0;
}

int tp_msg_share(struct tp_msg *dst, const struct tp_msg *src, size_t i)
{
    if (dst->n >= TP_MAX_FRAMES || i >= src->n)
        return SZ_EINVAL;
    zmq_msg_init(&dst->f[dst->n]);
    if (zmq_msg_copy(&dst->f[dst->n], (zmq_msg_t *)&src->f[i]) != 0) {
        zmq_msg_close(&dst->f[dst->n]);
        return SZ_EIO;
    }
    dst->n++;
    return 0;
}

size_t tp_msg_count(const struct tp_msg *m)
{
    return m->n;
}

const void *tp_msg_data(const struct tp_msg *m, size_t i)
{
    return i < m->n ? zmq_msg_data((zmq_msg_t *)&m->f[i]) : NULL;
}

size_t tp_msg_size(const struct tp_msg *m, size_t i)
{
    return i < m->n ? zmq_msg_size((zmq_msg_t *)&m->f[i]) : 0;
}

int tp_send(struct tp_sock *s, struct tp_msg **mp)
{
    struct tp_msg *m = *mp;
    int rc = 0;
    size_t i;

    *mp = NULL;
    if (m == NULL || m->n == 0) {
        tp_msg_free(m);
        return SZ_EINVAL;
    }
    for (i = 0; i < m->n; i++) {
        int flags = i + 1 < m->n ? ZMQ_SNDMORE : 0;
        if (zmq_msg_send(&m->f[i], s->z, flags) < 0) {
            rc = errno == EAGAIN ? SZ_ETIMEDOUT : SZ_EIO;
            break;
        }
    }
    /* Frames handed to libzmq are already released by zmq_msg_send. */
    for (; i < m->n; i++)
        zmq_msg_close(&m->f[i]);
    m->n = 0;
    free(m);
    return rc;
}

static int tp_more(void *z)
{
    int more = 0;
    size_t sz = sizeof(more);

    zmq_getsockopt(z, ZMQ_RCVMORE, &more, &sz);
    return more;
}

int tp_recv(struct tp_sock *s, int timeout_ms, struct tp_msg **out)
{
    zmq_pollitem_t it = {s->z, 0, ZMQ_POLLIN, 0};
    struct tp_msg *m;
    int rc = 0, more = 1, pr;

    pr = zmq_poll(&it, 1, timeout_ms);
    if (pr < 0)
        return errno == EINTR ? SZ_ETIMEDOUT : SZ_EIO;
    if (pr == 0)
        return SZ_ETIMEDOUT;
    if ((rc = tp_msg_new(&m)) != 0)
        return rc;
    rc = 0;
    while (more) {
        zmq_msg_t tmp;
        zmq_msg_t *f = m->n < TP_MAX_FRAMES ? &m->f[m->n] : &tmp;
        zmq_msg_init(f);
        if (zmq_msg_recv(f, s->z, m->n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(f);
            tp_msg_free(m);
            return errno == EAGAIN ? SZ_ETIMEDOUT : SZ_EIO;
        }
        more = tp_more(s->z);
        if (f == &tmp) {
            zmq_msg_close(&tmp);
            rc = SZ_ETOOBIG;
        } else {
            m->n++;
        }
    }
    if (rc == SZ_ETOOBIG) {
        while (m->n > 1)
            zmq_msg_close(&m->f[--m->n]);
    }
    *out = m;
    return rc;
}

int tp_poll(struct tp_sock **socks, size_t n, int timeout_ms, int *ready)
{
    zmq_pollitem_t items[64];
    int rc;

    if (n > 64)
        return SZ_EINVAL;
    for (size_t i = 0; i < n; i++) {
        items[i].socket = socks[i]->z;
        items[i].fd = 0;
        items[i].events = ZMQ_POLLIN;
        items[i].revents = 0;
    }
    rc = zmq_poll(items, (int)n, timeout_ms);
    if (rc < 0)
        return errno == EINTR ? 0 : SZ_EIO;
    for (size_t i = 0; i < n; i++)
        ready[i] = (items[i].revents & ZMQ_POLLIN) != 0;
    return rc;
}

int tp_proxy(struct tp_sock *front, struct tp_sock *back)
{
    zmq_proxy(front->z, back->z, NULL);
    return SZ_EIO;
}

const char *tp_strerror_last(void)
{
    return zmq_strerror(errno);
}
