/*
 * snapcoord: the coordinator.  Keeps the catalog (zones, nodes, disks,
 * snapshots, manifests, block references), publishes the versioned cluster
 * map, tracks node liveness, audits replication, and commits snapshots.  It
 * never carries block bytes.
 *
 * One thread: requests are served between timer steps (membership timeouts,
 * an audit slice, aborting stale pending snapshots), each of bounded work.
 * Crash safety: every catalog change is a synced RocksDB write, and a
 * snapshot's commit is one batch, so kill -9 at any moment loses nothing
 * committed and leaves nothing half-made.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "coord.h"
#include "err.h"
#include "fsutil.h"
#include "log.h"
#include "rpc.h"
#include "seal.h"
#include "transport.h"

#define COORD_TICK_MS 100

static volatile sig_atomic_t coord_stop;

static void coord_on_signal(int sig)
{
    (void)sig;
    coord_stop = 1;
}

static void coord_dispatch(struct coord *c, struct tp_msg *msg, sz_env *env)
{
    switch (env->type) {
    case SZ__MSG_TYPE__MAP_GET: coord_reply_map(c, msg, env); break;
    case SZ__MSG_TYPE__NODE_REGISTER: coord_register(c, msg, env); break;
    case SZ__MSG_TYPE__NODE_HEARTBEAT: coord_heartbeat(c, msg, env); break;
    case SZ__MSG_TYPE__STATUS_GET: coord_status(c, msg, env); break;
    case SZ__MSG_TYPE__NODE_DRAIN: coord_drain(c, msg, env); break;
    case SZ__MSG_TYPE__NODE_REMOVE: coord_remove(c, msg, env); break;
    case SZ__MSG_TYPE__DISK_CREATE: coord_disk_create(c, msg, env); break;
    case SZ__MSG_TYPE__DISK_LIST: coord_disk_list(c, msg, env); break;
    case SZ__MSG_TYPE__DISK_GET: coord_disk_get(c, msg, env); break;
    case SZ__MSG_TYPE__DISK_CLONE: coord_disk_clone(c, msg, env); break;
    case SZ__MSG_TYPE__SNAP_BEGIN: coord_snap_begin(c, msg, env); break;
    case SZ__MSG_TYPE__SNAP_COMMIT: coord_snap_commit(c, msg, env); break;
    case SZ__MSG_TYPE__SNAP_ABORT: coord_snap_abort(c, msg, env); break;
    case SZ__MSG_TYPE__SNAP_LIST: coord_snap_list(c, msg, env); break;
    case SZ__MSG_TYPE__SNAP_GET: coord_snap_get(c, msg, env); break;
    default:
        rpc_reply_status(c->router, msg, env, SZ_EPROTO, "%s is not served by the coordinator",
                         codec_type_name(env->type));
    }
}

static void coord_usage(FILE *f)
{
    fprintf(f, "usage: snapcoord --listen ENDPOINT --data DIR [--replicas R]\n"
               "                 [--suspect-after-ms MS] [--down-after-ms MS]\n"
               "                 [--audit-interval-ms MS] [--pending-timeout-s S]\n"
               "                 [--have-timeout-ms MS]\n"
               "                 [--log-level error|warn|info|debug]\n");
}

static int coord_parse_level(const char *s)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static int coord_num(const char *flag, const char *v, long min, long max, long *out)
{
    char *end;
    long x = strtol(v, &end, 10);

    if (*v == '\0' || *end != '\0' || x < min || x > max) {
        fprintf(stderr, "snapcoord: %s must be a number from %ld to %ld\n", flag, min, max);
        return -1;
    }
    *out = x;
    return 0;
}

static int coord_flags(int argc, char **argv, struct coord *c, const char **listen,
                       const char **data, long *replicas, int *level)
{
    static const struct option opts[] = {{"listen", required_argument, 0, 'l'},
                                         {"data", required_argument, 0, 'd'},
                                         {"replicas", required_argument, 0, 'r'},
                                         {"suspect-after-ms", required_argument, 0, 's'},
                                         {"down-after-ms", required_argument, 0, 'D'},
                                         {"audit-interval-ms", required_argument, 0, 'a'},
                                         {"pending-timeout-s", required_argument, 0, 'p'},
                                         {"have-timeout-ms", required_argument, 0, 'H'},
                                         {"log-level", required_argument, 0, 'v'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    long v;
    int ch;

    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'l': *listen = optarg; break;
        case 'd': *data = optarg; break;
        case 'r':
            if (coord_num("--replicas", optarg, 1, CMAP_MAX_REPLICAS, replicas))
                return 2;
            break;
        case 's':
            if (coord_num("--suspect-after-ms", optarg, 100, 3600000, &v))
                return 2;
            c->cfg.suspect_ms = (int)v;
            break;
        case 'D':
            if (coord_num("--down-after-ms", optarg, 100, 86400000, &v))
                return 2;
            c->cfg.down_ms = (int)v;
            break;
        case 'a':
            if (coord_num("--audit-interval-ms", optarg, 10, 3600000, &v))
                return 2;
            c->cfg.audit_ms = (int)v;
            break;
        case 'H':
            if (coord_num("--have-timeout-ms", optarg, 50, 600000, &v))
                return 2;
            c->cfg.have_timeout_ms = (int)v;
            break;
        case 'p':
            if (coord_num("--pending-timeout-s", optarg, 1, 30L * 86400, &v))
                return 2;
            c->cfg.pending_timeout_s = (uint64_t)v;
            break;
        case 'v':
            if ((*level = coord_parse_level(optarg)) < 0) {
                fprintf(stderr, "snapcoord: unknown log level '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': coord_usage(stdout); exit(0);
        default: coord_usage(stderr); return 2;
        }
    }
    if (*listen == NULL || *data == NULL) {
        fprintf(stderr, "snapcoord: --listen and --data are required\n");
        return 2;
    }
    return 0;
}

static void coord_timers(struct coord *c, uint64_t *next_tick, uint64_t *next_janitor)
{
    uint64_t now = fsu_now_ms();

    if (now >= *next_tick) {
        coord_tick_membership(c);
        coord_audit_step(c);
        *next_tick = now + COORD_TICK_MS;
    }
    if (now >= *next_janitor) {
        coord_abort_stale(c);
        *next_janitor = now + 60000;
    }
}

int main(int argc, char **argv)
{
    struct coord c = {.cfg = {.suspect_ms = 3000,
                              .down_ms = 7000,
                              .audit_ms = 1000,
                              .have_timeout_ms = 1000,
                              .pending_timeout_s = 3600}};
    const char *listen = NULL, *data = NULL;
    uint64_t next_tick = 0, next_janitor = 0;
    long replicas = 0;
    char dir[4096];
    struct sigaction sa;
    int level = LOG_INFO, rc;

    log_init("snapcoord", LOG_INFO);
    if ((rc = coord_flags(argc, argv, &c, &listen, &data, &replicas, &level)) != 0)
        return rc;
    log_init("snapcoord", level);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = coord_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    snprintf(dir, sizeof(dir), "%s/catalog", data);
    if (seal_init() != 0 || fsu_mkdirs(dir, 0700) != 0 || cat_open(dir, &c.cat) != 0) {
        fprintf(stderr, "snapcoord: cannot open catalog in %s\n", dir);
        return 1;
    }
    rc = 1;
    if (coord_load_nodes(&c, (uint32_t)replicas) != 0 || tp_ctx_new(1, &c.ctx) != 0 ||
        tp_bind(c.ctx, TP_ROUTER, listen, SZ_MAX_MANIFEST_FRAME, &c.router) != 0) {
        fprintf(stderr, "snapcoord: cannot serve on %s\n", listen);
        goto out;
    }
    log_info("snapcoord ready on %s (replicas %u, epoch %llu, %zu known nodes)", listen,
             c.replicas, (unsigned long long)c.epoch, c.nnodes);
    while (!coord_stop) {
        struct tp_msg *msg;
        sz_env *env;
        int wait = COORD_TICK_MS;
        /* Serve everything already queued before judging liveness: after a
         * slow step (a commit check waiting on a dead node) the heartbeats
         * that arrived meanwhile must count, or healthy nodes look silent. */
        for (int k = 0; k < 1024; k++) {
            int rc2 = rpc_serve_recv(c.router, wait, &msg, &env);
            if (rc2 == SZ_ETIMEDOUT || rc2 == SZ_EIO)
                break;
            wait = 0;
            if (rc2 != 0)
                continue; /* malformed: already answered */
            coord_dispatch(&c, msg, env);
            codec_free(env);
            tp_msg_free(msg);
        }
        coord_timers(&c, &next_tick, &next_janitor);
    }
    log_info("snapcoord stopped");
    rc = 0;
out:
    coord_free_nodes(&c);
    tp_close(c.router);
    tp_ctx_free(c.ctx);
    cat_close(c.cat);
    return rc;
}
