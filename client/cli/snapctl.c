/*
 * snapctl: the command-line interface to libsnapzone.
 *
 * Every command takes --json and then prints exactly one JSON object on
 * stdout; without it, a short human summary.  Any failure prints one line on
 * stderr and exits non-zero (2 for usage errors, 1 otherwise).  The
 * coordinator endpoint and key file come from SNAPZONE_COORDINATOR and
 * SNAPZONE_KEYFILE, overridden by --coordinator and --keyfile.
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapzone.h"

#define SNAPCTL_MAX_POS 8

struct args {
    const char *pos[SNAPCTL_MAX_POS];
    int npos;
    const char *coordinator, *keyfile, *size, *block_size, *zone, *file, *name, *fail_zone;
    int json, timeout_ms, threads;
};

static void usage(FILE *f)
{
    fputs("usage: snapctl [--coordinator EP] [--keyfile F] [--json] COMMAND ...\n"
          "  keygen FILE\n"
          "  cluster status\n"
          "  disk create NAME --size SIZE [--zone Z] [--block-size SIZE]\n"
          "  disk list\n"
          "  disk restore SNAPSHOT|DISK --file PATH [--zone Z]\n"
          "  disk clone SNAPSHOT NEWDISK\n"
          "  snapshot create DISK --file PATH [--name N]\n"
          "  snapshot list [DISK]\n"
          "  drill DISK --fail-zone ZONE [--file PATH]\n"
          "  cluster scrub\n"
          "  node drain ID | node remove ID\n"
          "Sizes take K, M, G, T suffixes (powers of 1024).\n"
          "Environment: SNAPZONE_COORDINATOR, SNAPZONE_KEYFILE, SNAPZONE_TIMEOUT_MS.\n",
          f);
}

static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int code, const char *fmt, ...)
{
    va_list ap;

    fputs("snapctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

/* "64K", "1G", "4096" -> bytes; 0 on any error. */
static uint64_t parse_size(const char *s)
{
    char *end;
    unsigned long long v;
    int shift = 0;

    if (s == NULL || *s < '0' || *s > '9')
        return 0;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0)
        return 0;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': shift = 10; end++; break;
    case 'm': case 'M': shift = 20; end++; break;
    case 'g': case 'G': shift = 30; end++; break;
    case 't': case 'T': shift = 40; end++; break;
    default: return 0;
    }
    if (*end == 'i' && end[1] == 'B')
        end += 2;
    else if (*end == 'B' && shift)
        end++;
    if (*end != '\0' || (shift && v > (~0ULL >> shift)))
        return 0;
    return (uint64_t)v << shift;
}

static int parse_int(const char *s, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v <= 0 || v > 1000000000L)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_args(int argc, char **argv, struct args *a)
{
    static const struct {
        const char *flag;
        size_t off;
    } valued[] = {
        {"--coordinator", offsetof(struct args, coordinator)},
        {"--keyfile", offsetof(struct args, keyfile)},
        {"--size", offsetof(struct args, size)},
        {"--block-size", offsetof(struct args, block_size)},
        {"--zone", offsetof(struct args, zone)},
        {"--file", offsetof(struct args, file)},
        {"--name", offsetof(struct args, name)},
        {"--fail-zone", offsetof(struct args, fail_zone)},
    };
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        size_t k;
        if (strcmp(s, "--json") == 0) {
            a->json = 1;
            continue;
        }
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            usage(stdout);
            exit(0);
        }
        if (strcmp(s, "--timeout") == 0 || strcmp(s, "--threads") == 0) {
            int *dst = s[4] == 'i' ? &a->timeout_ms : &a->threads;
            if (i + 1 >= argc || parse_int(argv[i + 1], dst) != 0)
                return fail(2, "%s needs a positive number", s);
            i++;
            continue;
        }
        for (k = 0; k < sizeof(valued) / sizeof(valued[0]); k++) {
            size_t fl = strlen(valued[k].flag);
            if (strncmp(s, valued[k].flag, fl) == 0 && (s[fl] == '\0' || s[fl] == '=')) {
                const char *v = s[fl] == '=' ? s + fl + 1 : (i + 1 < argc ? argv[++i] : NULL);
                if (v == NULL || *v == '\0')
                    return fail(2, "%s needs a value", valued[k].flag);
                *(const char **)((char *)a + valued[k].off) = v;
                break;
            }
        }
        if (k < sizeof(valued) / sizeof(valued[0]))
            continue;
        if (s[0] == '-' && s[1] != '\0')
            return fail(2, "unknown option '%s' (see snapctl --help)", s);
        if (a->npos == SNAPCTL_MAX_POS)
            return fail(2, "too many arguments");
        a->pos[a->npos++] = s;
    }
    if (a->coordinator == NULL)
        a->coordinator = getenv("SNAPZONE_COORDINATOR");
    if (a->keyfile == NULL)
        a->keyfile = getenv("SNAPZONE_KEYFILE");
    if (a->timeout_ms == 0 && getenv("SNAPZONE_TIMEOUT_MS"))
        parse_int(getenv("SNAPZONE_TIMEOUT_MS"), &a->timeout_ms);
    return 0;
}

static int emit(const struct args *a, json_t *obj, const char *human)
{
    if (obj == NULL)
        return fail(1, "out of memory");
    if (a->json) {
        char *s = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (s == NULL) {
            json_decref(obj);
            return fail(1, "cannot encode JSON");
        }
        puts(s);
        free(s);
    } else if (human != NULL) {
        fputs(human, stdout);
    }
    json_decref(obj);
    return 0;
}

static int lib_fail(sz_client *c, int rc, const char *what)
{
    const char *detail = sz_last_error(c);
    return fail(1, "%s: %s", what, detail[0] ? detail : sz_strerror(rc));
}

static int open_client(const struct args *a, int need_key, sz_client **c)
{
    struct sz_options o = {.coordinator = a->coordinator,
                           .keyfile = need_key ? a->keyfile : NULL,
                           .timeout_ms = a->timeout_ms,
                           .threads = a->threads};
    int rc;

    if (a->coordinator == NULL || a->coordinator[0] == '\0')
        return fail(2, "no coordinator: set SNAPZONE_COORDINATOR or pass --coordinator");
    if (need_key && (a->keyfile == NULL || a->keyfile[0] == '\0'))
        return fail(2, "no key: set SNAPZONE_KEYFILE or pass --keyfile");
    rc = sz_open(&o, c);
    if (rc != 0) {
        const char *d = *c ? sz_last_error(*c) : "";
        fail(1, "%s", d[0] ? d : sz_strerror(rc));
        sz_close(*c);
        *c = NULL;
        return 1;
    }
    return 0;
}

static json_t *disk_json(const struct sz_disk *d)
{
    json_t *o = json_pack("{s:s, s:I, s:i, s:s, s:I}", "name", d->name, "size",
                          (json_int_t)d->size, "block_size", (int)d->block_size, "zone", d->zone,
                          "created", (json_int_t)d->created);
    if (o && d->source_snapshot[0])
        json_object_set_new(o, "source_snapshot", json_string(d->source_snapshot));
    return o;
}

static json_t *zones_json(char (*zones)[SZ_NAME_MAX], size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(zones[i]));
    return a;
}

static json_t *snap_json(struct sz_snapshot *s)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:i, s:s}", "id", s->id, "disk",
                          s->disk, "name", s->name, "created", (json_int_t)s->created,
                          "logical_bytes", (json_int_t)s->logical_bytes, "blocks",
                          (json_int_t)s->blocks, "block_size", (int)s->block_size, "parent",
                          s->parent);
    if (o && s->readiness_known) {
        json_object_set_new(o, "restorable_zones", zones_json(s->restorable_zones, s->nrestorable));
        json_object_set_new(o, "fully_protected", json_boolean(s->fully_protected));
    }
    return o;
}

/* ---- commands --------------------------------------------------------- */

static int cmd_keygen(const struct args *a)
{
    char fpr[33], line[256];
    int rc;

    if (a->npos != 2)
        return fail(2, "usage: snapctl keygen FILE");
    rc = sz_keygen(a->pos[1], fpr);
    if (rc != 0)
        return fail(1, "cannot write key file '%s': %s", a->pos[1],
                    rc == -5 ? "it already exists (refusing to overwrite)" : sz_strerror(rc));
    snprintf(line, sizeof(line), "wrote key %s (fingerprint %s); keep it safe: without it "
                                 "no snapshot can be restored\n", a->pos[1], fpr);
    return emit(a, json_pack("{s:s, s:s}", "keyfile", a->pos[1], "fingerprint", fpr), line);
}

static int cmd_cluster_status(const struct args *a, sz_client *c)
{
    struct sz_cluster_status *st;
    json_t *o, *zones, *nodes;
    char human[8192];
    size_t off;
    int rc = sz_cluster_status(c, &st);

    if (rc != 0)
        return lib_fail(c, rc, "cluster status");
    zones = json_array();
    nodes = json_array();
    off = (size_t)snprintf(human, sizeof(human), "epoch %llu, replicas %u, %zu nodes, %llu "
                           "under-replicated blocks\n", (unsigned long long)st->epoch,
                           st->replicas, st->nnodes,
                           (unsigned long long)st->under_replicated_blocks);
    for (size_t i = 0; i < st->nzones; i++)
        json_array_append_new(zones, json_string(st->zones[i]));
    for (size_t i = 0; i < st->nnodes; i++) {
        const struct sz_node_status *n = &st->nodes[i];
        json_array_append_new(nodes, json_pack("{s:s, s:s, s:s, s:s, s:I, s:I}", "id", n->id,
                                               "zone", n->zone, "endpoint", n->endpoint, "state",
                                               n->state, "blocks", (json_int_t)n->blocks,
                                               "stored_bytes", (json_int_t)n->stored_bytes));
        if (off < sizeof(human))
            off += (size_t)snprintf(human + off, sizeof(human) - off,
                                    "  %-16s %-10s %-8s %-26s %10llu blocks %14llu bytes\n",
                                    n->id, n->zone, n->state, n->endpoint,
                                    (unsigned long long)n->blocks,
                                    (unsigned long long)n->stored_bytes);
    }
    o = json_pack("{s:I, s:i, s:o, s:o, s:I}", "epoch", (json_int_t)st->epoch, "replicas",
                  (int)st->replicas, "zones", zones, "nodes", nodes, "under_replicated_blocks",
                  (json_int_t)st->under_replicated_blocks);
    sz_cluster_status_free(st);
    return emit(a, o, human);
}

static int cmd_disk_create(const struct args *a, sz_client *c)
{
    struct sz_disk d;
    uint64_t size, bs = SZ_DEFAULT_BLOCK_SIZE;
    char human[256];
    int rc;

    if (a->npos != 3 || a->size == NULL)
        return fail(2, "usage: snapctl disk create NAME --size SIZE [--zone Z] [--block-size SIZE]");
    if ((size = parse_size(a->size)) == 0)
        return fail(2, "bad --size '%s': want a positive number with optional K/M/G/T", a->size);
    if (a->block_size != NULL) {
        bs = parse_size(a->block_size);
        if (bs < 4096 || bs > (4u << 20) || (bs & (bs - 1)) != 0)
            return fail(2, "bad --block-size '%s': want a power of two from 4K to 4M",
                        a->block_size);
    }
    rc = sz_disk_create(c, a->pos[2], size, (uint32_t)bs, a->zone, &d);
    if (rc != 0)
        return lib_fail(c, rc, "disk create");
    snprintf(human, sizeof(human), "disk %s: %llu bytes, block size %u, zone %s\n", d.name,
             (unsigned long long)d.size, d.block_size, d.zone);
    return emit(a, json_pack("{s:s, s:I, s:i, s:s}", "name", d.name, "size", (json_int_t)d.size,
                             "block_size", (int)d.block_size, "zone", d.zone), human);
}

static int cmd_disk_list(const struct args *a, sz_client *c)
{
    struct sz_disk *d;
    size_t n;
    json_t *arr;
    int rc;

    if (a->npos != 2)
        return fail(2, "usage: snapctl disk list");
    if ((rc = sz_disk_list(c, &d, &n)) != 0)
        return lib_fail(c, rc, "disk list");
    arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, disk_json(&d[i]));
        if (!a->json)
            printf("%-24s %14llu bytes  block %-8u %-10s %s\n", d[i].name,
                   (unsigned long long)d[i].size, d[i].block_size, d[i].zone,
                   d[i].source_snapshot);
    }
    free(d);
    return emit(a, json_pack("{s:o}", "disks", arr), NULL);
}

static int cmd_disk_restore(const struct args *a, sz_client *c)
{
    struct sz_restore_result r;
    char human[256];
    int rc;

    if (a->npos != 3 || a->file == NULL)
        return fail(2, "usage: snapctl disk restore SNAPSHOT --file PATH [--zone Z]");
    if ((rc = sz_restore(c, a->pos[2], a->file, a->zone, &r)) != 0)
        return lib_fail(c, rc, "restore");
    snprintf(human, sizeof(human), "restored %llu bytes to %s in %.2f s (%.0f MiB/s)\n",
             (unsigned long long)r.bytes, a->file, r.seconds,
             r.seconds > 0 ? (double)r.bytes / r.seconds / 1048576.0 : 0.0);
    return emit(a, json_pack("{s:I, s:f, s:I, s:s}", "bytes", (json_int_t)r.bytes, "seconds",
                             r.seconds, "blocks", (json_int_t)r.blocks, "file", a->file), human);
}

static int cmd_disk_clone(const struct args *a, sz_client *c)
{
    struct sz_disk d;
    char human[256];
    int rc;

    if (a->npos != 4)
        return fail(2, "usage: snapctl disk clone SNAPSHOT NEWDISK");
    if ((rc = sz_disk_clone(c, a->pos[2], a->pos[3], &d)) != 0)
        return lib_fail(c, rc, "disk clone");
    snprintf(human, sizeof(human), "disk %s cloned from %s (no data copied)\n", d.name,
             d.source_snapshot);
    return emit(a, json_pack("{s:s, s:s, s:I, s:i, s:s}", "name", d.name, "source_snapshot",
                             d.source_snapshot, "size", (json_int_t)d.size, "block_size",
                             (int)d.block_size, "zone", d.zone), human);
}

static int cmd_snapshot_create(const struct args *a, sz_client *c)
{
    struct sz_snapshot s;
    char human[512];
    int rc;

    if (a->npos != 3 || a->file == NULL)
        return fail(2, "usage: snapctl snapshot create DISK --file PATH [--name N]");
    if ((rc = sz_snapshot_create(c, a->pos[2], a->file, a->name, &s)) != 0)
        return lib_fail(c, rc, "snapshot create");
    snprintf(human, sizeof(human), "snapshot %s of %s: %llu bytes, %llu blocks, %llu new "
                                   "blocks (%llu new bytes)\n", s.id, s.disk,
             (unsigned long long)s.logical_bytes, (unsigned long long)s.blocks,
             (unsigned long long)s.new_blocks, (unsigned long long)s.new_bytes);
    return emit(a, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s}", "id", s.id, "disk",
                             s.disk, "name", s.name, "logical_bytes",
                             (json_int_t)s.logical_bytes, "new_bytes", (json_int_t)s.new_bytes,
                             "blocks", (json_int_t)s.blocks, "new_blocks",
                             (json_int_t)s.new_blocks, "parent", s.parent), human);
}

static int cmd_snapshot_list(const struct args *a, sz_client *c)
{
    struct sz_snapshot *s;
    size_t n;
    json_t *arr;
    int rc;

    if (a->npos != 2 && a->npos != 3)
        return fail(2, "usage: snapctl snapshot list [DISK]");
    if ((rc = sz_snapshot_list(c, a->npos == 3 ? a->pos[2] : NULL, &s, &n)) != 0)
        return lib_fail(c, rc, "snapshot list");
    arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, snap_json(&s[i]));
        if (!a->json) {
            char zl[256] = "";
            for (size_t z = 0; z < s[i].nrestorable; z++)
                snprintf(zl + strlen(zl), sizeof(zl) - strlen(zl), "%s%s", z ? "," : "",
                         s[i].restorable_zones[z]);
            printf("%-22s %-16s %-14s %12llu bytes  created %llu  restorable from [%s]%s\n",
                   s[i].id, s[i].disk, s[i].name, (unsigned long long)s[i].logical_bytes,
                   (unsigned long long)s[i].created, zl,
                   s[i].fully_protected ? "  fully protected" : "  NOT fully protected");
        }
    }
    free(s);
    return emit(a, json_pack("{s:o}", "snapshots", arr), NULL);
}

static int cmd_drill(const struct args *a, sz_client *c)
{
    struct sz_drill_result d;
    char human[1024], used[256] = "";
    json_t *o;
    int rc;

    if (a->npos != 2 || a->fail_zone == NULL)
        return fail(2, "usage: snapctl drill DISK --fail-zone ZONE [--file PATH]");
    if ((rc = sz_drill(c, a->pos[1], a->fail_zone, a->file, &d)) != 0)
        return lib_fail(c, rc, "drill");
    for (size_t z = 0; z < d.nzones_used; z++)
        snprintf(used + strlen(used), sizeof(used) - strlen(used), "%s%s", z ? "," : "",
                 d.zones_used[z]);
    snprintf(human, sizeof(human),
             "drill of %s with %s lost: %s\n  RPO %.0f s (snapshot age), RTO %.2f s (restore), "
             "%llu bytes, read from [%s]\n  redundancy: %s\n",
             d.snapshot, d.fail_zone, d.verified ? "VERIFIED byte-identical" : "VERIFICATION FAILED",
             d.rpo_seconds, d.rto_seconds, (unsigned long long)d.bytes, used,
             d.fully_protected ? "fully protected" : "NOT fully protected");
    o = json_pack("{s:s, s:s, s:b, s:f, s:f, s:I, s:o, s:b, s:o}", "snapshot", d.snapshot,
                  "fail_zone", d.fail_zone, "verified", d.verified, "rpo_seconds", d.rpo_seconds,
                  "rto_seconds", d.rto_seconds, "bytes", (json_int_t)d.bytes, "zones_used",
                  zones_json(d.zones_used, d.nzones_used), "fully_protected", d.fully_protected,
                  "restorable_zones", zones_json(d.restorable_zones, d.nrestorable));
    rc = emit(a, o, human);
    if (rc == 0 && !d.verified)
        return fail(1, "drill: the restored image does not match snapshot %s's digest",
                    d.snapshot);
    return rc;
}

static int cmd_cluster_scrub(const struct args *a, sz_client *c)
{
    struct sz_scrub_result r;
    char human[256];
    int rc = sz_cluster_scrub(c, &r);

    if (rc != 0)
        return lib_fail(c, rc, "cluster scrub");
    snprintf(human, sizeof(human), "scrubbed %zu nodes: %llu blocks checked, %llu corrupt, %llu "
             "repaired, %llu missing%s\n", r.nodes, (unsigned long long)r.checked,
             (unsigned long long)r.corrupt, (unsigned long long)r.repaired,
             (unsigned long long)r.missing, r.failed_nodes ? " (some nodes did not answer)" : "");
    return emit(a, json_pack("{s:I, s:I, s:I, s:I, s:i, s:i}", "checked", (json_int_t)r.checked,
                             "corrupt", (json_int_t)r.corrupt, "repaired",
                             (json_int_t)r.repaired, "missing", (json_int_t)r.missing, "nodes",
                             (int)r.nodes, "failed_nodes", (int)r.failed_nodes), human);
}

static int cmd_node(const struct args *a, sz_client *c)
{
    int drain = strcmp(a->pos[1], "drain") == 0, rc;
    char human[256];

    if (a->npos != 3)
        return fail(2, "usage: snapctl node drain|remove ID");
    rc = drain ? sz_node_drain(c, a->pos[2]) : sz_node_remove(c, a->pos[2]);
    if (rc != 0)
        return lib_fail(c, rc, drain ? "node drain" : "node remove");
    snprintf(human, sizeof(human), "node %s %s\n", a->pos[2],
             drain ? "is draining: its data moves to other nodes" : "removed");
    return emit(a, json_pack("{s:s, s:s}", "node", a->pos[2], "state",
                             drain ? "draining" : "removed"), human);
}

int main(int argc, char **argv)
{
    struct args a = {0};
    sz_client *c = NULL;
    const char *g, *v;
    int rc, need_key;

    if ((rc = parse_args(argc, argv, &a)) != 0)
        return rc;
    if (a.npos == 0) {
        usage(stderr);
        return 2;
    }
    g = a.pos[0];
    v = a.npos > 1 ? a.pos[1] : "";
    if (strcmp(g, "keygen") == 0)
        return cmd_keygen(&a);
    if (strcmp(g, "version") == 0) {
        return emit(&a, json_pack("{s:s}", "version", "0.1.0"), "snapctl 0.1.0\n");
    }
    need_key = (strcmp(g, "snapshot") == 0 && strcmp(v, "create") == 0) ||
               (strcmp(g, "disk") == 0 && strcmp(v, "restore") == 0) || strcmp(g, "drill") == 0;
    if (!((strcmp(g, "cluster") == 0 && (!strcmp(v, "status") || !strcmp(v, "scrub"))) ||
          strcmp(g, "drill") == 0 ||
          (strcmp(g, "node") == 0 && (!strcmp(v, "drain") || !strcmp(v, "remove"))) ||
          (strcmp(g, "disk") == 0 && (!strcmp(v, "create") || !strcmp(v, "list") ||
                                      !strcmp(v, "restore") || !strcmp(v, "clone"))) ||
          (strcmp(g, "snapshot") == 0 && (!strcmp(v, "create") || !strcmp(v, "list")))))
        return fail(2, "unknown command '%s%s%s' (see snapctl --help)", g, v[0] ? " " : "", v);
    if ((rc = open_client(&a, need_key, &c)) != 0)
        return rc;
    if (strcmp(g, "drill") == 0)
        rc = cmd_drill(&a, c);
    else if (strcmp(g, "node") == 0)
        rc = cmd_node(&a, c);
    else if (strcmp(g, "cluster") == 0 && strcmp(v, "scrub") == 0)
        rc = cmd_cluster_scrub(&a, c);
    else if (strcmp(g, "cluster") == 0)
        rc = cmd_cluster_status(&a, c);
    else if (strcmp(g, "disk") == 0 && strcmp(v, "create") == 0)
        rc = cmd_disk_create(&a, c);
    else if (strcmp(g, "disk") == 0 && strcmp(v, "list") == 0)
        rc = cmd_disk_list(&a, c);
    else if (strcmp(g, "disk") == 0 && strcmp(v, "restore") == 0)
        rc = cmd_disk_restore(&a, c);
    else if (strcmp(g, "disk") == 0)
        rc = cmd_disk_clone(&a, c);
    else if (strcmp(v, "create") == 0)
        rc = cmd_snapshot_create(&a, c);
    else
        rc = cmd_snapshot_list(&a, c);
    sz_close(c);
    return rc;
}
