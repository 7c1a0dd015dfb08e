/*
 * snapnode: a storage node.  Parses flags, installs signal handlers, and
 * runs the server (node/server.c) until SIGTERM or SIGINT.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "err.h"
#include "log.h"
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
               "[--log-level error|warn|info|debug]\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"id", required_argument, 0, 'i'},          {"zone", required_argument, 0, 'z'},
        {"listen", required_argument, 0, 'l'},      {"advertise", required_argument, 0, 'a'},
        {"data", required_argument, 0, 'd'},        {"coordinator", required_argument, 0, 'c'},
        {"threads", required_argument, 0, 't'},     {"log-level", required_argument, 0, 'v'},
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0}};
    struct srv_config cfg = {.threads = 4, .heartbeat_ms = 1000, .peer_timeout_ms = 10000};
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
