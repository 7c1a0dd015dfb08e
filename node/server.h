/*
 * server: the storage node's request loop.
 *
 *   clients/peers --tcp--> ROUTER (main thread, bounded frames)
 *                            | inproc proxy
 *                          DEALER --> worker threads (HAVE, PUT, GET, STAT;
 *                                     NODE_SCRUB is queued to the scrub thread)
 *                            ^ inproc
 *                          DEALER <-- scrub thread: NODE_SCRUB replies
 *   heartbeat thread: register with the coordinator, heartbeat every
 *                     heartbeat_ms (with the repair counters), fetch the map
 *                     when its epoch moves (mapbox)
 *   repair thread:    re-replication and surplus removal (repair.h)
 *   scrub thread:     on-demand and periodic scrubs (scrub.h)
 *
 * A PUT is acked only after the block store made it durable locally and the
 * other replicas answered (or timed out); the ack says how many copies are
 * durable per block.
 */
#ifndef SZ_SERVER_H
#define SZ_SERVER_H

#include <signal.h>
#include <stdint.h>

struct srv_config {
    const char *id;
    const char *zone;
    const char *listen;
    const char *advertise;
    const char *data_dir;
    const char *coordinator;
    int threads;
    int heartbeat_ms;
    int peer_timeout_ms;     /* PUT forwarding, repair and scrub requests */
    int repair_interval_ms;  /* pause between repair passes; <= 0: off */
    uint64_t repair_rate;    /* bytes/s pushed by repair */
    int scrub_interval_s;    /* periodic scrub; <= 0: on demand only */
};

/** srv_run(cfg, stop): Serve until *stop becomes nonzero.  Return 0 on a
 *  clean stop, or SZ_E* if the node could not start. */
int srv_run(const struct srv_config *cfg, volatile sig_atomic_t *stop);

#endif
