/*
 * snapnode: a storage node.  Parses flags, installs signal handlers, and
 * runs the server (node/server.c) until SIGTERM or SIGINT.  Flags and their
 * defaults are documented in docs/daemons.md.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "err.h"
#include "log.h"
#include "repair.h"
#include "seal.h"
#include "server.h"

static volatile sig_atomic_t snapnode_stop;

static void snapnode_on_signal(int sig)
{
    (void)sig;
    snapnode_stop = 1;
}

static int snapnode_level(const char *s)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static void snapnode_usage(FILE *f)
{
    fprintf(f, "usage: snapnode --id ID --zone ZONE --listen ENDPOINT --data DIR "
               "--coordinator ENDPOINT [--advertise ENDPOINT] [--threads N] "
               "[--heartbeat-ms MS] [--peer-timeout-ms MS] [--repair-interval-ms MS] "
               "[--repair-rate BYTES[K|M|G]] [--scrub-interval SECONDS] "
               "[--log-level error|warn|info|debug]\n");
}

/* Parse a whole decimal int in [lo, hi]; -1 if it is not one. */
static int snapnode_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int snapnode_bad(const char *flag, const char *val, const char *want)
{
    fprintf(stderr, "snapnode: bad %s '%s': want %s\n", flag, val, want);
    return 2;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"id", required_argument, 0, 'i'},          {"zone", required_argument, 0, 'z'},
        {"listen", required_argument, 0, 'l'},      {"advertise", required_argument, 0, 'a'},
        {"data", required_argument, 0, 'd'},        {"coordinator", required_argument, 0, 'c'},
        {"threads", required_argument, 0, 't'},     {"log-level", required_argument, 0, 'v'},
        {"heartbeat-ms", required_argument, 0, 'H'},
        {"peer-timeout-ms", required_argument, 0, 'T'},
        {"repair-interval-ms", required_argument, 0, 'R'},
        {"repair-rate", required_argument, 0, 'r'},
        {"scrub-interval", required_argument, 0, 'S'},
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0}};
    struct srv_config cfg = {.threads = 4,
                             .heartbeat_ms = 1000,
                             .peer_timeout_ms = 3000,
                             .repair_interval_ms = 2000,
                             .repair_rate = REPAIR_RATE_DEFAULT,
                             .scrub_interval_s = 3600};
    struct sigaction sa;
    int c, level = LOG_INFO, rc;

    log_init("snapnode", LOG_INFO);
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'i': cfg.id = optarg; break;
        case 'z': cfg.zone = optarg; break;
        case 'l': cfg.listen = optarg; break;
        case 'a': cfg.advertise = optarg; break;
        case 'd': cfg.data_dir = optarg; break;
        case 'c': cfg.coordinator = optarg; break;
        case 't': cfg.threads = atoi(optarg); break;
        case 'H':
            if (snapnode_int(optarg, 50, 60000, &cfg.heartbeat_ms) != 0)
                return snapnode_bad("--heartbeat-ms", optarg, "50..60000");
            break;
        case 'T':
            if (snapnode_int(optarg, 10, 600000, &cfg.peer_timeout_ms) != 0)
                return snapnode_bad("--peer-timeout-ms", optarg, "10..600000");
            break;
        case 'R':
            if (snapnode_int(optarg, 0, 86400000, &cfg.repair_interval_ms) != 0)
                return snapnode_bad("--repair-interval-ms", optarg, "0 (off)..86400000");
            break;
        case 'r':
            if (repair_parse_bytes(optarg, &cfg.repair_rate) != 0)
                return snapnode_bad("--repair-rate", optarg, "bytes/s > 0, e.g. 64M");
            break;
        case 'S':
            if (snapnode_int(optarg, 0, 100000000, &cfg.scrub_interval_s) != 0)
                return snapnode_bad("--scrub-interval", optarg, "seconds, 0 = off");
            break;
        case 'v':
            if ((level = snapnode_level(optarg)) < 0) {
                fprintf(stderr, "snapnode: unknown log level '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': snapnode_usage(stdout); return 0;
        default: snapnode_usage(stderr); return 2;
        }
    }
    if (!cfg.id || !cfg.zone || !cfg.listen || !cfg.data_dir || !cfg.coordinator) {
        fprintf(stderr, "snapnode: --id, --zone, --listen, --data and --coordinator are required\n");
        return 2;
    }
    if (!codec_valid_name(cfg.id) || !codec_valid_name(cfg.zone)) {
        fprintf(stderr, "snapnode: node id and zone must be 1-63 chars of [A-Za-z0-9._-]\n");
        return 2;
    }
    if (cfg.threads < 1 || cfg.threads > 32) {
        fprintf(stderr, "snapnode: --threads must be 1..32\n");
        return 2;
    }
    if (cfg.advertise == NULL)
        cfg.advertise = cfg.listen;
    log_init("snapnode", level);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = snapnode_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    rc = srv_run(&cfg, &snapnode_stop);
    if (rc != 0) {
        fprintf(stderr, "snapnode: %s\n", sz_strerror(rc));
        return 1;
    }
    log_info("snapnode %s stopped", cfg.id);
    return 0;
}
