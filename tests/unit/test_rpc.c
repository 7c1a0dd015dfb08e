/*
 * test_rpc: transport (proto/transport.h) and request/reply (proto/rpc.h)
 * over real ZeroMQ sockets: a ROUTER served by a thread running
 * rpc_serve_recv/rpc_reply, and a DEALER client in the test thread, on
 * inproc:// and on tcp://127.0.0.1:<random high port>.
 *
 *  - rpc_call round trip with zero-copy data frames and req_id matching;
 *    a non-zero reply status is returned with the reply still set;
 *  - rpc_call timeout (SZ_ETIMEDOUT within about the timeout) and a late
 *    reply to the timed-out request ignored by the next call;
 *  - malformed frame 0 sent raw with tp_send: answered SZ_EPROTO /
 *    SZ_EVERSION with a reason and the request's req_id when the envelope
 *    parses (0 when it does not); the server keeps serving; a REPLY sent to
 *    the server is dropped silently;
 *  - more than TP_MAX_FRAMES frames: answered SZ_ETOOBIG (and one frame
 *    fewer is served);
 *  - tp_msg_add_take / tp_msg_share / tp_msg_move semantics and bounds;
 *  - rpc_send_req/rpc_recv_reply with two requests in flight on one socket,
 *    collected in reply order; a reply to another req_id is dropped (contract).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "err.h"
#include "fsutil.h"
#include "rpc.h"
#include "transport.h"

#define LATE_DELAY_MS 400

/* ---- server ------------------------------------------------------------- */

struct fx {
    struct tp_ctx *ctx;
    struct tp_sock *router; /* owned by the server thread while it runs */
    struct tp_sock *dealer;
    char endpoint[64];
    pthread_t th;
    int running;
    atomic_int stop;
    atomic_int served;   /* requests handed to the handler */
    atomic_int rejected; /* rpc_serve_recv returned SZ_EPROTO */
    atomic_int replies;  /* replies sent by the handler */
    atomic_int errors;   /* unexpected failures inside the server */
    struct tp_msg *held_msg; /* a "hold" request, answered after "release" */
    sz_env *held_env;
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Reply to msg with Reply{disk.name=name, epoch=#data frames} and every data
 * frame of the request shared back. */
static void reply_echo(struct fx *f, struct tp_msg *msg, sz_env *env, const char *name)
{
    Sz__Reply r = SZ__REPLY__INIT;
    Sz__DiskInfo d = SZ__DISK_INFO__INIT;
    struct tp_msg *frames = NULL;

    if (tp_msg_new(&frames) != 0) {
        atomic_fetch_add(&f->errors, 1);
        return;
    }
    for (size_t i = 2; i < tp_msg_count(msg); i++)
        if (tp_msg_share(frames, msg, i) != 0)
            atomic_fetch_add(&f->errors, 1);
    r.epoch = tp_msg_count(msg) - 2;
    d.name = (char *)name;
    r.disk = &d;
    if (rpc_reply(f->router, msg, env, &r, frames) != 0)
        atomic_fetch_add(&f->errors, 1);
    atomic_fetch_add(&f->replies, 1);
}

/* DISK_GET{name}: "echo" -> Reply{disk.name="echo", epoch=#data frames} with
 * every data frame shared back; "silent" -> no reply; "late" -> echo after
 * LATE_DELAY_MS; "fail" -> SZ_ENOENT with a reason; "hold" -> kept
 * unanswered until a "release", which is answered first, then the held one
 * (replies out of request order, as from a multi-worker server).  Any other
 * type -> Reply{disk.name=<type name>}.  Returns 1 if it kept msg/env. */
static int handle(struct fx *f, struct tp_msg *msg, sz_env *env)
{
    const char *name = env->type == SZ__MSG_TYPE__DISK_GET ? env->name_ref->name
                                                            : codec_type_name(env->type);

    if (strcmp(name, "silent") == 0)
        return 0;
    if (strcmp(name, "hold") == 0 && f->held_msg == NULL) {
        f->held_msg = msg;
        f->held_env = env;
        return 1;
    }
    if (strcmp(name, "late") == 0)
        sleep_ms(LATE_DELAY_MS);
    if (strcmp(name, "fail") == 0) {
        if (rpc_reply_status(f->router, msg, env, SZ_ENOENT, "no such disk %s", name) != 0)
            atomic_fetch_add(&f->errors, 1);
        atomic_fetch_add(&f->replies, 1);
        return 0;
    }
    reply_echo(f, msg, env, name);
    if (strcmp(name, "release") == 0 && f->held_msg != NULL) {
        reply_echo(f, f->held_msg, f->held_env, "hold");
        tp_msg_free(f->held_msg);
        codec_free(f->held_env);
        f->held_msg = NULL;
        f->held_env = NULL;
    }
    return 0;
}

static void *server_main(void *arg)
{
    struct fx *f = arg;

    while (!atomic_load(&f->stop)) {
        struct tp_msg *msg = NULL;
        sz_env *env = NULL;
        int rc = rpc_serve_recv(f->router, 20, &msg, &env);

        if (rc == SZ_ETIMEDOUT)
            continue;
        if (rc == SZ_EPROTO) {
            atomic_fetch_add(&f->rejected, 1);
            continue;
        }
        if (rc != 0) {
            atomic_fetch_add(&f->errors, 1);
            continue;
        }
        atomic_fetch_add(&f->served, 1);
        if (!handle(f, msg, env)) {
            tp_msg_free(msg);
            codec_free(env);
        }
    }
    return NULL;
}

static int start(struct fx *f, int tcp)
{
    static atomic_int seq;
    int rc = SZ_EIO;

    if (tp_ctx_new(1, &f->ctx) != 0)
        return -1;
    if (!tcp) {
        snprintf(f->endpoint, sizeof(f->endpoint), "inproc://sz-test-rpc-%d-%d", (int)getpid(),
                 atomic_fetch_add(&seq, 1));
        rc = tp_bind(f->ctx, TP_ROUTER, f->endpoint, SZ_MAX_BLOCK_FRAME, &f->router);
    } else {
        unsigned s = (unsigned)getpid() * 2654435761u ^ (unsigned)time(NULL);
        for (int tries = 0; tries < 50 && rc != 0; tries++) {
            s = s * 1103515245u + 12345u;
            snprintf(f->endpoint, sizeof(f->endpoint), "tcp://127.0.0.1:%u",
                     20000u + (s >> 8) % 40000u);
            rc = tp_bind(f->ctx, TP_ROUTER, f->endpoint, SZ_MAX_BLOCK_FRAME, &f->router);
        }
    }
    if (rc != 0)
        return -1;
    if (tp_connect(f->ctx, TP_DEALER, f->endpoint, SZ_MAX_BLOCK_FRAME, &f->dealer) != 0)
        return -1;
    if (pthread_create(&f->th, NULL, server_main, f) != 0)
        return -1;
    f->running = 1;
    return 0;
}

static int setup_common(void **state, int tcp)
{
    struct fx *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    *state = f;
    if (start(f, tcp) != 0) {
        print_error("cannot start server on %s\n", f->endpoint);
        return -1;
    }
    return 0;
}

static int setup_inproc(void **state)
{
    return setup_common(state, 0);
}

static int setup_tcp(void **state)
{
    return setup_common(state, 1);
}

static int teardown(void **state)
{
    struct fx *f = *state;

    if (f == NULL)
        return 0;
    atomic_store(&f->stop, 1);
    if (f->running)
        pthread_join(f->th, NULL);
    tp_msg_free(f->held_msg);
    codec_free(f->held_env);
    tp_close(f->dealer);
    tp_close(f->router);
    tp_ctx_free(f->ctx);
    free(f);
    return 0;
}

/* ---- client helpers ----------------------------------------------------- */

static uint8_t *pattern(size_t len, unsigned seed)
{
    uint8_t *p = malloc(len ? len : 1);

    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)((i * 31u + seed * 7u) ^ (i >> 9));
    return p;
}

static int pattern_ok(const void *data, size_t len, unsigned seed)
{
    const uint8_t *p = data;

    for (size_t i = 0; i < len; i++)
        if (p[i] != (uint8_t)((i * 31u + seed * 7u) ^ (i >> 9)))
            return 0;
    return 1;
}

/* rpc_call DISK_GET{name} with the given frames (may be NULL). */
static int call_name(struct fx *f, const char *name, struct tp_msg *frames, int timeout_ms,
                     uint64_t *req_id, sz_env **reply, struct tp_msg **rframes)
{
    Sz__NameRef n = SZ__NAME_REF__INIT;
    sz_env e = SZ__ENVELOPE__INIT;
    int rc;

    n.name = (char *)name;
    e.body_case = SZ__ENVELOPE__BODY_NAME_REF;
    e.name_ref = &n;
    rc = rpc_call(f->dealer, SZ__MSG_TYPE__DISK_GET, &e, frames, timeout_ms, reply, rframes);
    if (req_id)
        *req_id = e.req_id;
    return rc;
}

/* An echo call that must succeed and come back with its own req_id. */
static void expect_echo(struct fx *f)
{
    sz_env *rep = NULL;
    uint64_t id = 0;
    int rc = call_name(f, "echo", NULL, 5000, &id, &rep, NULL);
    int ok = rc == 0 && rep != NULL && rep->req_id == id && rep->reply->disk != NULL &&
             strcmp(rep->reply->disk->name, "echo") == 0;

    codec_free(rep);
    assert_int_equal(rc, 0);
    assert_true(ok);
}

/* Send raw frame 0 (copied) on the dealer and read the direct answer. */
static int raw_exchange(struct fx *f, const void *buf, size_t len, int timeout_ms,
                        sz_env **reply)
{
    struct tp_msg *m = NULL, *in = NULL;
    char why[128];
    int rc;

    *reply = NULL;
    assert_int_equal(tp_msg_new(&m), 0);
    assert_int_equal(tp_msg_add(m, buf, len), 0);
    assert_int_equal(tp_send(f->dealer, &m), 0);
    assert_null(m);
    rc = tp_recv(f->dealer, timeout_ms, &in);
    if (rc != 0)
        return rc;
    rc = tp_msg_count(in) == 1 ? codec_decode(tp_msg_data(in, 0), tp_msg_size(in, 0), reply, why,
                                              sizeof(why))
                               : SZ_EINTERNAL;
    tp_msg_free(in);
    return rc;
}

/* The server thread counts after it has replied, so a client can hold the
 * reply before the count moves: wait (bounded) for it. */
static int settle(atomic_int *counter, int want)
{
    for (int i = 0; i < 200 && atomic_load(counter) != want; i++)
        usleep(5000);
    return atomic_load(counter);
}

/* The answer to a rejected frame 0: a REPLY with `status`, a reason, and
 * req_id echoed when the envelope parses (else 0). */
static void expect_raw_rejected(struct fx *f, const void *buf, size_t len, int status,
                                uint64_t want_id)
{
    sz_env *rep = NULL;
    int rc = raw_exchange(f, buf, len, 5000, &rep);
    int type_ok, id_ok, st, why_ok;

    assert_int_equal(rc, 0);
    assert_non_null(rep);
    type_ok = rep->type == SZ__MSG_TYPE__REPLY && rep->body_case == SZ__ENVELOPE__BODY_REPLY;
    id_ok = rep->req_id == want_id;
    st = type_ok ? rep->reply->status : 12345;
    why_ok = strlen(rpc_error_text(rep)) > 0;
    codec_free(rep);
    assert_true(type_ok);
    assert_true(id_ok);
    assert_int_equal(st, status);
    assert_true(why_ok);
}

/* ---- tests: round trip -------------------------------------------------- */

static void test_call_roundtrip(void **state)
{
    struct fx *f = *state;
    uint64_t prev = 0;

    for (int round = 0; round < 10; round++) {
        static const size_t sizes[] = {200000, 7, 0, 4096};
        struct tp_msg *frames = NULL, *rframes = NULL;
        sz_env *rep = NULL;
        uint64_t id = 0;
        int rc;

        assert_int_equal(tp_msg_new(&frames), 0);
        for (size_t k = 0; k < 4; k++) {
            uint8_t *p = pattern(sizes[k], (unsigned)(round * 4 + k));
            assert_int_equal(tp_msg_add_take(frames, p, sizes[k]), 0);
            if (sizes[k] > 0) /* handed over without a copy */
                assert_ptr_equal(tp_msg_data(frames, k), p);
        }
        rc = call_name(f, "echo", frames, 5000, &id, &rep, &rframes);
        assert_int_equal(rc, 0);
        assert_non_null(rep);
        assert_int_not_equal(id, 0);
        assert_int_not_equal(id, prev); /* fresh id each call */
        prev = id;
        assert_int_equal(rep->type, SZ__MSG_TYPE__REPLY);
        assert_int_equal(rep->req_id, id);
        assert_int_equal(rep->reply->status, 0);
        assert_string_equal(rep->reply->disk->name, "echo");
        assert_int_equal(rep->reply->epoch, 4);
        assert_non_null(rframes);
        assert_int_equal(tp_msg_count(rframes), 5);
        /* frame 0 is the reply envelope itself */
        {
            sz_env *again = NULL;
            assert_int_equal(codec_decode(tp_msg_data(rframes, 0), tp_msg_size(rframes, 0),
                                          &again, NULL, 0),
                             0);
            assert_int_equal(again->req_id, id);
            codec_free(again);
        }
        for (size_t k = 0; k < 4; k++) {
            assert_int_equal(tp_msg_size(rframes, 1 + k), sizes[k]);
            assert_true(pattern_ok(tp_msg_data(rframes, 1 + k), sizes[k],
                                   (unsigned)(round * 4 + k)));
        }
        tp_msg_free(rframes);
        codec_free(rep);
    }

    /* rframes may be NULL; frames may be NULL */
    {
        sz_env *rep = NULL;
        uint64_t id = 0;
        assert_int_equal(call_name(f, "other", NULL, 5000, &id, &rep, NULL), 0);
        assert_int_equal(rep->req_id, id);
        assert_string_equal(rep->reply->disk->name, "other");
        codec_free(rep);
    }
    /* a body-less type */
    {
        sz_env e = SZ__ENVELOPE__INIT, *rep = NULL;
        assert_int_equal(rpc_call(f->dealer, SZ__MSG_TYPE__NODE_STAT, &e, NULL, 5000, &rep,
                                  NULL),
                         0);
        assert_int_equal(e.type, SZ__MSG_TYPE__NODE_STAT);
        assert_int_equal(rep->req_id, e.req_id);
        assert_string_equal(rep->reply->disk->name, "NODE_STAT");
        codec_free(rep);
    }
    assert_int_equal(atomic_load(&f->errors), 0);
    assert_int_equal(settle(&f->rejected, 0), 0);
}

static void test_call_error_status(void **state)
{
    struct fx *f = *state;
    sz_env *rep = NULL;
    struct tp_msg *rframes = NULL;
    uint64_t id = 0;
    int rc = call_name(f, "fail", NULL, 5000, &id, &rep, &rframes);

    assert_int_equal(rc, SZ_ENOENT);
    assert_non_null(rep); /* still set on a non-zero status */
    assert_int_equal(rep->req_id, id);
    assert_int_equal(rep->reply->status, SZ_ENOENT);
    assert_non_null(strstr(rpc_error_text(rep), "no such disk"));
    assert_non_null(rframes);
    assert_int_equal(tp_msg_count(rframes), 1);
    tp_msg_free(rframes);
    codec_free(rep);
    assert_string_equal(rpc_error_text(NULL), "");
    expect_echo(f);
}

/* ---- tests: timeouts ---------------------------------------------------- */

static void test_call_timeout(void **state)
{
    struct fx *f = *state;
    sz_env *rep = (sz_env *)(uintptr_t)1;
    struct tp_msg *rframes = (struct tp_msg *)(uintptr_t)1;
    uint64_t t0, el;
    int rc;

    t0 = fsu_now_ms();
    rc = call_name(f, "silent", NULL, 300, NULL, &rep, &rframes);
    el = fsu_now_ms() - t0;
    assert_int_equal(rc, SZ_ETIMEDOUT);
    assert_null(rep);
    assert_null(rframes);
    if (el < 295 || el > 1300)
        print_error("timeout after %llu ms (wanted ~300)\n", (unsigned long long)el);
    assert_true(el >= 295);
    assert_true(el <= 1300);
    /* the server still serves */
    expect_echo(f);
}

static void test_late_reply_ignored(void **state)
{
    struct fx *f = *state;
    sz_env *rep = NULL;
    struct tp_msg *rframes = NULL;
    uint64_t late_id = 0, id = 0, t0, el;
    int rc;

    t0 = fsu_now_ms();
    rc = call_name(f, "late", NULL, 100, &late_id, &rep, NULL);
    el = fsu_now_ms() - t0;
    assert_int_equal(rc, SZ_ETIMEDOUT);
    assert_null(rep);
    assert_true(el < LATE_DELAY_MS);

    /* The server answers "late" first, then this call: the stale reply
     * arrives first on the socket and must be skipped. */
    rc = call_name(f, "echo", NULL, 5000, &id, &rep, &rframes);
    assert_int_equal(rc, 0);
    assert_int_not_equal(id, late_id);
    assert_int_equal(rep->req_id, id);
    assert_string_equal(rep->reply->disk->name, "echo");
    assert_int_equal(tp_msg_count(rframes), 1);
    tp_msg_free(rframes);
    codec_free(rep);
    assert_int_equal(settle(&f->replies, 2), 2); /* the late reply was really sent */

    /* Nothing else is pending on the socket. */
    {
        struct tp_msg *in = NULL;
        assert_int_equal(tp_recv(f->dealer, 200, &in), SZ_ETIMEDOUT);
    }
}

/* ---- tests: malformed input --------------------------------------------- */

static void test_malformed_frame0(void **state)
{
    struct fx *f = *state;
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x01, 0x02};
    Sz__NameRef n = SZ__NAME_REF__INIT;
    sz_env e = SZ__ENVELOPE__INIT;
    uint8_t *buf, tmp[256];
    size_t len;

    expect_raw_rejected(f, garbage, sizeof(garbage), SZ_EPROTO, 0);
    expect_echo(f);

    /* version 2 */
    n.name = "echo";
    e.type = SZ__MSG_TYPE__DISK_GET;
    e.req_id = 99;
    e.body_case = SZ__ENVELOPE__BODY_NAME_REF;
    e.name_ref = &n;
    e.version = 2;
    assert_int_equal(codec_pack(&e.base, &buf, &len), 0);
    assert_true(len <= sizeof(tmp));
    memcpy(tmp, buf, len);
    free(buf);
    expect_raw_rejected(f, tmp, len, SZ_EVERSION, 99);

    /* type without its body */
    e.version = 1;
    e.body_case = SZ__ENVELOPE__BODY__NOT_SET;
    e.name_ref = NULL;
    assert_int_equal(codec_pack(&e.base, &buf, &len), 0);
    assert_true(len <= sizeof(tmp));
    memcpy(tmp, buf, len);
    free(buf);
    expect_raw_rejected(f, tmp, len, SZ_EPROTO, 99);

    /* a valid frame 0 sent raw is served normally */
    {
        sz_env *rep = NULL;
        e.body_case = SZ__ENVELOPE__BODY_NAME_REF;
        e.name_ref = &n;
        e.req_id = 4242;
        assert_int_equal(codec_encode(&e, &buf, &len), 0);
        assert_int_equal(raw_exchange(f, buf, len, 5000, &rep), 0);
        free(buf);
        assert_int_equal(rep->req_id, 4242);
        assert_int_equal(rep->reply->status, 0);
        codec_free(rep);
    }

    assert_int_equal(settle(&f->rejected, 3), 3);
    expect_echo(f);
    assert_int_equal(atomic_load(&f->errors), 0);
}

/* A REPLY sent to a server is dropped without an answer (no ping-pong). */
static void test_reply_to_server_dropped(void **state)
{
    struct fx *f = *state;
    Sz__Reply r = SZ__REPLY__INIT;
    sz_env e = SZ__ENVELOPE__INIT, *rep = NULL;
    uint8_t *buf;
    size_t len;

    e.type = SZ__MSG_TYPE__REPLY;
    e.req_id = 5;
    e.body_case = SZ__ENVELOPE__BODY_REPLY;
    e.reply = &r;
    assert_int_equal(codec_encode(&e, &buf, &len), 0);
    assert_int_equal(raw_exchange(f, buf, len, 300, &rep), SZ_ETIMEDOUT);
    free(buf);
    assert_null(rep);
    assert_int_equal(settle(&f->served, 0), 0);
    expect_echo(f);
}

static void test_too_many_frames(void **state)
{
    struct fx *f = *state;
    Sz__NameRef n = SZ__NAME_REF__INIT;
    sz_env e = SZ__ENVELOPE__INIT;
    struct tp_msg *m = NULL, *rframes = NULL;
    sz_env *rep = NULL;
    uint8_t *buf, one = 1;
    size_t len;
    int rc, st;

    /* TP_MAX_FRAMES frames from the dealer: with the routing id the ROUTER
     * sees TP_MAX_FRAMES + 1 -> SZ_ETOOBIG, and the handler never runs. */
    n.name = "echo";
    e.type = SZ__MSG_TYPE__DISK_GET;
    e.req_id = 77;
    e.body_case = SZ__ENVELOPE__BODY_NAME_REF;
    e.name_ref = &n;
    assert_int_equal(codec_encode(&e, &buf, &len), 0);
    assert_int_equal(tp_msg_new(&m), 0);
    assert_int_equal(tp_msg_add_take(m, buf, len), 0);
    while (tp_msg_count(m) < TP_MAX_FRAMES)
        assert_int_equal(tp_msg_add(m, &one, 1), 0);
    assert_int_equal(tp_msg_add(m, &one, 1), SZ_ETOOBIG); /* the message itself is full */
    assert_int_equal(tp_send(f->dealer, &m), 0);
    {
        struct tp_msg *in = NULL;
        char why[128];
        rc = tp_recv(f->dealer, 5000, &in);
        assert_int_equal(rc, 0);
        rc = codec_decode(tp_msg_data(in, 0), tp_msg_size(in, 0), &rep, why, sizeof(why));
        tp_msg_free(in);
        assert_int_equal(rc, 0);
        st = rep->reply->status;
        codec_free(rep);
        rep = NULL;
        assert_int_equal(st, SZ_ETOOBIG);
    }
    assert_int_equal(settle(&f->served, 0), 0);
    assert_int_equal(settle(&f->rejected, 1), 1);

    /* One frame fewer is within bounds and served: envelope + 70 data
     * frames (72 frames at the ROUTER, routing id included). */
    assert_int_equal(tp_msg_new(&m), 0);
    while (tp_msg_count(m) < TP_MAX_FRAMES - 2)
        assert_int_equal(tp_msg_add(m, &one, 1), 0);
    rc = call_name(f, "echo", m, 5000, NULL, &rep, &rframes);
    assert_int_equal(rc, 0);
    assert_int_equal(rep->reply->epoch, TP_MAX_FRAMES - 2);
    assert_int_equal(tp_msg_count(rframes), TP_MAX_FRAMES - 1);
    tp_msg_free(rframes);
    codec_free(rep);
    assert_int_equal(settle(&f->served, 1), 1);
    expect_echo(f);
}

/* ---- tests: frames ------------------------------------------------------ */

static void test_msg_ops(void **state)
{
    struct tp_msg *a = NULL, *b = NULL, *c = NULL;
    const size_t big = 65536;
    uint8_t *p = pattern(big, 3), *q;
    const void *pdata;

    (void)state;
    assert_int_equal(tp_msg_new(&a), 0);
    assert_int_equal(tp_msg_count(a), 0);
    assert_null(tp_msg_data(a, 0));
    assert_int_equal(tp_msg_size(a, 0), 0);

    /* add_take: no copy */
    assert_int_equal(tp_msg_add_take(a, p, big), 0);
    assert_ptr_equal(tp_msg_data(a, 0), p);
    assert_int_equal(tp_msg_size(a, 0), big);
    /* add: a copy */
    assert_int_equal(tp_msg_add(a, "xyz", 3), 0);
    assert_ptr_not_equal(tp_msg_data(a, 1), "xyz");
    assert_memory_equal(tp_msg_data(a, 1), "xyz", 3);
    assert_int_equal(tp_msg_add(a, NULL, 0), 0);
    assert_int_equal(tp_msg_size(a, 2), 0);
    assert_int_equal(tp_msg_count(a), 3);

    /* share: same buffer, reference counted */
    assert_int_equal(tp_msg_new(&b), 0);
    assert_int_equal(tp_msg_new(&c), 0);
    assert_int_equal(tp_msg_share(b, a, 0), 0);
    assert_int_equal(tp_msg_share(c, a, 0), 0);
    assert_ptr_equal(tp_msg_data(b, 0), p);
    assert_ptr_equal(tp_msg_data(c, 0), p);
    assert_int_equal(tp_msg_size(b, 0), big);
    assert_int_equal(tp_msg_count(a), 3); /* the source keeps its frame */
    assert_ptr_equal(tp_msg_data(a, 0), p);
    assert_int_equal(tp_msg_share(b, a, 3), SZ_EINVAL);
    tp_msg_free(a); /* the shared buffer outlives its first owner */
    assert_true(pattern_ok(tp_msg_data(b, 0), big, 3));
    tp_msg_free(b);
    assert_true(pattern_ok(tp_msg_data(c, 0), big, 3));

    /* move: zero copy, the source frame becomes empty */
    assert_int_equal(tp_msg_new(&a), 0);
    assert_int_equal(tp_msg_move(a, c, 0), 0);
    assert_ptr_equal(tp_msg_data(a, 0), p);
    assert_int_equal(tp_msg_size(c, 0), 0);
    assert_int_equal(tp_msg_count(c), 1);
    assert_int_equal(tp_msg_move(a, c, 1), SZ_EINVAL);
    tp_msg_free(c);
    assert_true(pattern_ok(tp_msg_data(a, 0), big, 3));
    tp_msg_free(a); /* last reference: p freed now (leak check) */

    /* bounds */
    assert_int_equal(tp_msg_new(&a), 0);
    while (tp_msg_count(a) < TP_MAX_FRAMES)
        assert_int_equal(tp_msg_add(a, "f", 1), 0);
    assert_int_equal(tp_msg_add(a, "f", 1), SZ_ETOOBIG);
    q = malloc(100);
    assert_non_null(q);
    assert_int_equal(tp_msg_add_take(a, q, 100), SZ_ETOOBIG); /* q freed: leak check */
    assert_int_equal(tp_msg_new(&b), 0);
    assert_int_equal(tp_msg_add(b, "g", 1), 0);
    assert_int_equal(tp_msg_share(a, b, 0), SZ_EINVAL);
    assert_int_equal(tp_msg_move(a, b, 0), SZ_EINVAL);
    pdata = tp_msg_data(b, 0);
    assert_memory_equal(pdata, "g", 1);
    assert_int_equal(tp_msg_count(a), TP_MAX_FRAMES);
    tp_msg_free(a);
    tp_msg_free(b);
    tp_msg_free(NULL);
}

/* One frame shared into two requests: both carry the same bytes. */
static void test_shared_frame_sent_twice(void **state)
{
    struct fx *f = *state;
    struct tp_msg *src = NULL, *f1 = NULL, *f2 = NULL, *r1 = NULL, *r2 = NULL;
    sz_env *rep1 = NULL, *rep2 = NULL;
    const size_t big = 300000;
    uint8_t *p = pattern(big, 11);

    assert_int_equal(tp_msg_new(&src), 0);
    assert_int_equal(tp_msg_add_take(src, p, big), 0);
    assert_int_equal(tp_msg_new(&f1), 0);
    assert_int_equal(tp_msg_new(&f2), 0);
    assert_int_equal(tp_msg_share(f1, src, 0), 0);
    assert_int_equal(tp_msg_share(f2, src, 0), 0);
    tp_msg_free(src);
    assert_int_equal(call_name(f, "echo", f1, 5000, NULL, &rep1, &r1), 0);
    assert_int_equal(call_name(f, "echo", f2, 5000, NULL, &rep2, &r2), 0);
    assert_int_equal(tp_msg_count(r1), 2);
    assert_int_equal(tp_msg_count(r2), 2);
    assert_int_equal(tp_msg_size(r1, 1), big);
    assert_int_equal(tp_msg_size(r2, 1), big);
    assert_true(pattern_ok(tp_msg_data(r1, 1), big, 11));
    assert_true(pattern_ok(tp_msg_data(r2, 1), big, 11));
    tp_msg_free(r1);
    tp_msg_free(r2);
    codec_free(rep1);
    codec_free(rep2);
}

/* ---- tests: requests in flight ----------------------------------------- */

static int send_named(struct fx *f, const char *name, unsigned seed, uint64_t *id)
{
    Sz__NameRef n = SZ__NAME_REF__INIT;
    sz_env e = SZ__ENVELOPE__INIT;
    struct tp_msg *frames = NULL;

    n.name = (char *)name;
    e.body_case = SZ__ENVELOPE__BODY_NAME_REF;
    e.name_ref = &n;
    assert_int_equal(tp_msg_new(&frames), 0);
    assert_int_equal(tp_msg_add_take(frames, pattern(1000 + seed, seed), 1000 + seed), 0);
    return rpc_send_req(f->dealer, SZ__MSG_TYPE__DISK_GET, &e, frames, id);
}

static int send_echo(struct fx *f, unsigned seed, uint64_t *id)
{
    return send_named(f, "echo", seed, id);
}

/* Wait for the reply to id and check it carries the frame sent with seed. */
static void recv_named(struct fx *f, const char *name, unsigned seed, uint64_t id, int wait_ms)
{
    sz_env *rep = NULL;
    struct tp_msg *rf = NULL;
    int rc = rpc_recv_reply(f->dealer, id, fsu_now_ms() + (uint64_t)wait_ms, &rep, &rf);
    int ok = 0;

    if (rc == 0)
        ok = rep->req_id == id && strcmp(rep->reply->disk->name, name) == 0 &&
             tp_msg_count(rf) == 2 && tp_msg_size(rf, 1) == 1000 + seed &&
             pattern_ok(tp_msg_data(rf, 1), 1000 + seed, seed);
    tp_msg_free(rf);
    codec_free(rep);
    if (rc != 0)
        print_error("reply to \"%s\" (req_id %llu): %s\n", name, (unsigned long long)id,
                    sz_errname(rc));
    assert_int_equal(rc, 0);
    assert_true(ok);
}

static void recv_echo(struct fx *f, unsigned seed, uint64_t id)
{
    recv_named(f, "echo", seed, id, 5000);
}

static void test_two_in_flight(void **state)
{
    struct fx *f = *state;
    uint64_t a = 0, b = 0, c = 0;

    assert_int_equal(send_echo(f, 1, &a), 0);
    assert_int_equal(send_echo(f, 2, &b), 0);
    assert_int_not_equal(a, 0);
    assert_int_not_equal(b, 0);
    assert_int_not_equal(a, b);
    recv_echo(f, 1, a);
    recv_echo(f, 2, b);

    /* again with a third in flight before the first is collected */
    assert_int_equal(send_echo(f, 3, &a), 0);
    assert_int_equal(send_echo(f, 4, &b), 0);
    recv_echo(f, 3, a);
    assert_int_equal(send_echo(f, 5, &c), 0);
    recv_echo(f, 4, b);
    recv_echo(f, 5, c);

    /* a deadline already past: immediate SZ_ETIMEDOUT */
    {
        sz_env *rep = NULL;
        assert_int_equal(rpc_recv_reply(f->dealer, 1, fsu_now_ms(), &rep, NULL), SZ_ETIMEDOUT);
        assert_null(rep);
    }
}

/* The contract (rpc.h, PROTOCOL.md): one request in flight per socket;
 * callers get parallelism from one socket per peer.  A reply to any other
 * req_id -- a late answer to a timed-out call, or one the caller chose not to
 * wait for -- is stale and dropped, never handed to the wrong caller.  Here
 * the server answers B before A: waiting for A drops B's reply, and waiting
 * for B afterwards times out instead of returning A's or a stale reply. */
static void test_other_reply_dropped(void **state)
{
    struct fx *f = *state;
    uint64_t a = 0, b = 0;
    sz_env *rep = NULL;

    assert_int_equal(send_named(f, "hold", 6, &a), 0);
    assert_int_equal(send_named(f, "release", 7, &b), 0);
    recv_named(f, "hold", 6, a, 5000);
    assert_int_equal(rpc_recv_reply(f->dealer, b, fsu_now_ms() + 300, &rep, NULL), SZ_ETIMEDOUT);
    assert_null(rep);
}

/* ---- tests: endpoints --------------------------------------------------- */

static void test_bad_endpoints(void **state)
{
    struct tp_ctx *ctx = NULL;
    struct tp_sock *s = NULL;

    (void)state;
    assert_int_equal(tp_ctx_new(1, &ctx), 0);
    assert_int_equal(tp_bind(ctx, TP_ROUTER, "bogus://nowhere", 1024, &s), SZ_EINVAL);
    assert_int_equal(tp_connect(ctx, TP_DEALER, "not an endpoint", 1024, &s), SZ_EINVAL);
    tp_close(NULL);
    tp_ctx_free(ctx);
    tp_ctx_free(NULL);
}

/* Each socket test runs once over inproc:// and once over tcp://. */
#define BOTH(t)                                                                               \
    {#t "[inproc]", t, setup_inproc, teardown, NULL},                                         \
    {                                                                                         \
        #t "[tcp]", t, setup_tcp, teardown, NULL                                              \
    }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_msg_ops),
        cmocka_unit_test(test_bad_endpoints),
        BOTH(test_call_roundtrip),
        BOTH(test_call_error_status),
        BOTH(test_call_timeout),
        BOTH(test_late_reply_ignored),
        BOTH(test_malformed_frame0),
        BOTH(test_reply_to_server_dropped),
        BOTH(test_too_many_frames),
        BOTH(test_shared_frame_sent_twice),
        BOTH(test_two_in_flight),
        BOTH(test_other_reply_dropped),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
