/*
 * blockstore: a node's durable store of opaque (sealed) blocks, in
 * append-only data files DIR/data/NNNNNNNN.dat plus a kv index DIR/index
 * (id -> file, offset, len, crc).  Record and index formats: blockstore.h.
 *
 * Invariants:
 *  - An index entry is written only after its record is on disk
 *    (pwrite, fdatasync), and a new data file's directory entry is made
 *    durable (directory fsync) before any record in it can be indexed.
 *    Bytes not referenced by the index are garbage, never read.
 *  - Space is reserved under bs->mu by advancing cur_off; each batch then
 *    writes its own disjoint range outside the lock, so concurrent batches
 *    overlap their writes, fdatasyncs and (group-committed) index writes.
 *    Only the rare file rotation does I/O under the lock.
 *  - An id is written by at most one batch at a time: a batch claims its
 *    ids in bs->claims before checking the index, and a batch that finds an
 *    id claimed (by another batch, or earlier in its own) waits for that
 *    claim's release instead of writing it again.  So an id is never stored
 *    twice and the stats count each id once.
 *  - blocks/bytes count indexed records only (header + payload); they are
 *    recomputed from the index at bs_open and grow only after the index
 *    write of a batch succeeded.
 *  - Data file descriptors live in a small LRU table, opened lazily; a slot
 *    with references is never closed.  If every slot is busy a private fd is
 *    used and closed after the operation.
 *  - bs_replace and bs_delete claim their id like a put batch does, so all
 *    writes of one id are serialized.  A put batch that waited on a claim and
 *    then finds the id unindexed (a delete held it) writes it itself.
 *  - bs_replace appends a new record and repoints the index; the old record
 *    becomes unreferenced garbage, exactly like bytes of a crashed batch.
 */
#include "blockstore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "crc32c.h"
#include "err.h"
#include "fsutil.h"
#include "kv.h"
#include "log.h"

#define BS_MAGIC 0x535a4231u
#define BS_HDR_BYTES (16 + BS_ID_BYTES)
#define BS_VAL_BYTES 20
#define BS_FILE_MAX_DEFAULT (1ull << 30)
#define BS_FILE_MAX_ENV "SNAPZONE_BS_FILE_MAX"
#define BS_FD_SLOTS 16
#define BS_CLAIM_BUCKETS 256

/* An id some bs_put_batch call is writing; lives in that call's work array. */
struct bs_claim {
    struct bs_claim *next;
    const uint8_t *id;
};

struct bs_fd {
    uint32_t file; /* 0: empty slot (data files count from 1) */
    int fd;
    unsigned refs;
    uint64_t used; /* LRU tick */
};

/* A borrowed data file fd: slot >= 0 is a table slot, -1 a private fd. */
struct bs_fdref {
    int fd;
    int slot;
};

/* Where a record lives, as stored in the index. */
struct bs_loc {
    uint32_t file;
    uint64_t off;
    uint32_t len;
    uint32_t crc;
};

struct bs {
    char *datadir;
    struct kv *index;
    uint64_t file_max;
    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t claim_cv; /* broadcast when claims are released */
    uint32_t cur_file;
    uint64_t cur_off;
    uint64_t blocks;
    uint64_t bytes;
    uint64_t tick;
    struct bs_fd fds[BS_FD_SLOTS];
    struct bs_claim *claims[BS_CLAIM_BUCKETS];
};

/* ---- little helpers ---------------------------------------------------- */

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void bs_pack_loc(uint8_t val[BS_VAL_BYTES], const struct bs_loc *loc)
{
    put_le32(val, loc->file);
    put_le64(val + 4, loc->off);
    put_le32(val + 12, loc->len);
    put_le32(val + 16, loc->crc);
}

static void bs_unpack_loc(const uint8_t val[BS_VAL_BYTES], struct bs_loc *loc)
{
    loc->file = get_le32(val);
    loc->off = get_le64(val + 4);
    loc->len = get_le32(val + 12);
    loc->crc = get_le32(val + 16);
}

static void bs_pack_hdr(uint8_t hdr[BS_HDR_BYTES], const struct bs_item *it)
{
    put_le32(hdr, BS_MAGIC);
    put_le32(hdr + 4, (uint32_t)it->len);
    put_le32(hdr + 8, it->crc);
    put_le32(hdr + 12, 0);
    memcpy(hdr + 16, it->id, BS_ID_BYTES);
}

/* First 8 id bytes in hex, for log lines. */
static const char *bs_idhex(const uint8_t *id, char buf[17])
{
    for (int i = 0; i < 8; i++)
        snprintf(buf + 2 * i, 3, "%02x", id[i]);
    return buf;
}

/* Log errno for an operation on data file `file` and return SZ_EIO. */
static int bs_ioerr(const char *what, uint32_t file)
{
    char ebuf[128];
    int e = errno;

    log_err("blockstore: %s data file %08u: %s", what, (unsigned)file,
            strerror_r(e, ebuf, sizeof(ebuf)));
    return SZ_EIO;
}

static void bs_data_path(const struct bs *bs, uint32_t file, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%08u.dat", bs->datadir, (unsigned)file);
}

static char *bs_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);

    if (p != NULL)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* ---- data file descriptors --------------------------------------------- */

static int bs_fd_lookup_locked(struct bs *bs, uint32_t file, int *fd)
{
    for (int i = 0; i < BS_FD_SLOTS; i++) {
        if (bs->fds[i].file != file)
            continue;
        bs->fds[i].refs++;
        bs->fds[i].used = ++bs->tick;
        *fd = bs->fds[i].fd;
        return i;
    }
    return -1;
}

/* Put fd into an unused or least recently used idle slot; -1 if all busy. */
static int bs_fd_install_locked(struct bs *bs, uint32_t file, int fd)
{
    int best = -1;

    for (int i = 0; i < BS_FD_SLOTS; i++) {
        if (bs->fds[i].refs != 0)
            continue;
        if (bs->fds[i].file == 0) {
            best = i;
            break;
        }
        if (best < 0 || bs->fds[i].used < bs->fds[best].used)
            best = i;
    }
    if (best < 0)
        return -1;
    if (bs->fds[best].file != 0)
        close(bs->fds[best].fd);
    bs->fds[best] = (struct bs_fd){.file = file, .fd = fd, .refs = 1, .used = ++bs->tick};
    return best;
}

/* Borrow an fd for data file `file`.  With quiet, a failed open is not
 * logged and *missing tells whether the file does not exist. */
static int bs_fd_get_ex(struct bs *bs, uint32_t file, struct bs_fdref *ref, int quiet,
                        int *missing)
{
    char path[PATH_MAX];
    int fd;

    pthread_mutex_lock(&bs->mu);
    ref->slot = bs_fd_lookup_locked(bs, file, &ref->fd);
    pthread_mutex_unlock(&bs->mu);
    if (ref->slot >= 0)
        return 0;

    bs_data_path(bs, file, path, sizeof(path));
    fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        if (missing != NULL)
            *missing = errno == ENOENT;
        return quiet ? SZ_EIO : bs_ioerr("open", file);
    }

    pthread_mutex_lock(&bs->mu);
    ref->slot = bs_fd_lookup_locked(bs, file, &ref->fd);
    if (ref->slot < 0) {
        ref->slot = bs_fd_install_locked(bs, file, fd);
        ref->fd = fd;
        fd = -1; /* owned by the table, or private to ref */
    }
    pthread_mutex_unlock(&bs->mu);
    if (fd >= 0)
        close(fd); /* another thread installed this file first */
    return 0;
}

static int bs_fd_get(struct bs *bs, uint32_t file, struct bs_fdref *ref)
{
    return bs_fd_get_ex(bs, file, ref, 0, NULL);
}

static void bs_fd_put(struct bs *bs, const struct bs_fdref *ref)
{
    if (ref->slot < 0) {
        close(ref->fd);
        return;
    }
    pthread_mutex_lock(&bs->mu);
    bs->fds[ref->slot].refs--;
    pthread_mutex_unlock(&bs->mu);
}

/* ---- data files ----------------------------------------------------------- */

/* Create data file `file` and make its directory entry durable. */
static int bs_create_file(struct bs *bs, uint32_t file)
{
    char path[PATH_MAX];
    int fd;

    bs_data_path(bs, file, path, sizeof(path));
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return bs_ioerr("create", file);
    close(fd);
    if (fsu_fsync_dir(bs->datadir) != 0) {
        log_err("blockstore: fsync %s failed", bs->datadir);
        return SZ_EIO;
    }
    return 0;
}

/* 1..N for names of exactly 8 digits + ".dat", else 0. */
static uint32_t bs_parse_name(const char *name)
{
    unsigned long v;

    if (strlen(name) != 12 || strspn(name, "0123456789") != 8 || strcmp(name + 8, ".dat") != 0)
        return 0;
    v = strtoul(name, NULL, 10);
    return v <= UINT32_MAX ? (uint32_t)v : 0;
}

static int bs_highest_file(struct bs *bs, uint32_t *highest)
{
    DIR *d = opendir(bs->datadir);
    struct dirent *de;

    *highest = 0;
    if (d == NULL) {
        char ebuf[128];
        log_err("blockstore: opendir %s: %s", bs->datadir,
                strerror_r(errno, ebuf, sizeof(ebuf)));
        return SZ_EIO;
    }
    while ((de = readdir(d)) != NULL) {
        uint32_t v = bs_parse_name(de->d_name);
        if (v > *highest)
            *highest = v;
    }
    closedir(d);
    return 0;
}

/* Continue appending at the end of the highest-numbered data file. */
static int bs_open_tail(struct bs *bs)
{
    char path[PATH_MAX];
    struct stat st;
    uint32_t highest;
    int rc = bs_highest_file(bs, &highest);

    if (rc != 0)
        return rc;
    if (highest == 0) {
        bs->cur_file = 1;
        bs->cur_off = 0;
        return bs_create_file(bs, 1);
    }
    bs_data_path(bs, highest, path, sizeof(path));
    if (stat(path, &st) != 0)
        return bs_ioerr("stat", highest);
    bs->cur_file = highest;
    bs->cur_off = (uint64_t)st.st_size;
    return 0;
}

/* Reserve `need` contiguous bytes, rotating to a new file when the current
 * one would grow past file_max (a record bigger than that gets its own). */
static int bs_reserve(struct bs *bs, uint64_t need, uint32_t *file, uint64_t *off)
{
    int rc = 0;

    pthread_mutex_lock(&bs->mu);
    if (bs->cur_off > 0 && bs->cur_off + need > bs->file_max) {
        /* Rare; doing it under the lock keeps every reservation in the new
         * file behind its durable directory entry. */
        rc = bs_create_file(bs, bs->cur_file + 1);
        if (rc == 0) {
            bs->cur_file++;
            bs->cur_off = 0;
        }
    }
    if (rc == 0) {
        *file = bs->cur_file;
        *off = bs->cur_off;
        bs->cur_off += need;
    }
    pthread_mutex_unlock(&bs->mu);
    return rc;
}

/* ---- open / close ------------------------------------------------------- */

static uint64_t bs_file_max_env(void)
{
    const char *s = getenv(BS_FILE_MAX_ENV);
    unsigned long long v;
    char *end;

    if (s == NULL || *s == '\0')
        return BS_FILE_MAX_DEFAULT;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v == 0) {
        log_warn("blockstore: ignoring bad %s=%s", BS_FILE_MAX_ENV, s);
        return BS_FILE_MAX_DEFAULT;
    }
    return v;
}

static int bs_load_stats(struct bs *bs)
{
    struct kv_iter *it = NULL;
    const uint8_t *k, *v;
    size_t klen, vlen;
    struct bs_loc loc;
    int rc = kv_iter_new(bs->index, NULL, 0, &it);

    while (rc == 0 && (rc = kv_iter_next(it, &k, &klen, &v, &vlen)) == 1) {
        if (klen != BS_ID_BYTES || vlen != BS_VAL_BYTES) {
            log_err("blockstore: malformed index entry (key %zu, value %zu bytes)", klen, vlen);
            rc = SZ_EIO;
            break;
        }
        bs_unpack_loc(v, &loc);
        bs->blocks++;
        bs->bytes += BS_HDR_BYTES + (uint64_t)loc.len;
        rc = 0;
    }
    kv_iter_free(it);
    return rc < 0 ? SZ_EIO : 0;
}

static int bs_open_dirs(struct bs *bs, const char *dir)
{
    char *indexdir = bs_join(dir, "index");
    int rc = SZ_EIO;

    bs->datadir = bs_join(dir, "data");
    if (indexdir == NULL || bs->datadir == NULL)
        goto out;
    if (fsu_mkdirs(bs->datadir, 0755) != 0) {
        log_err("blockstore: cannot create %s", bs->datadir);
        goto out;
    }
    rc = kv_open(indexdir, &bs->index);
    if (rc != 0)
        goto out;
    /* Make DIR, DIR/data and DIR/index themselves durable. */
    if (fsu_fsync_dir(dir) != 0 || fsu_fsync_parent(dir) != 0) {
        log_err("blockstore: cannot fsync %s", dir);
        rc = SZ_EIO;
    }
out:
    free(indexdir);
    return rc;
}

int bs_open(const char *dir, struct bs **out)
{
    struct bs *bs = calloc(1, sizeof(*bs));
    int rc;

    *out = NULL;
    if (bs == NULL)
        return SZ_EIO;
    pthread_mutex_init(&bs->mu, NULL);
    pthread_cond_init(&bs->claim_cv, NULL);
    for (int i = 0; i < BS_FD_SLOTS; i++)
        bs->fds[i].fd = -1;
    bs->file_max = bs_file_max_env();

    rc = bs_open_dirs(bs, dir);
    if (rc == 0)
        rc = bs_open_tail(bs);
    if (rc == 0)
        rc = bs_load_stats(bs);
    if (rc != 0)
        goto fail;
    *out = bs;
    return 0;
fail:
    bs_close(bs);
    return SZ_EIO;
}

void bs_close(struct bs *bs)
{
    if (bs == NULL)
        return;
    for (int i = 0; i < BS_FD_SLOTS; i++)
        if (bs->fds[i].file != 0)
            close(bs->fds[i].fd);
    kv_close(bs->index);
    pthread_cond_destroy(&bs->claim_cv);
    pthread_mutex_destroy(&bs->mu);
    free(bs->datadir);
    free(bs);
}

/* ---- lookups ---------------------------------------------------------- */

int bs_have(struct bs *bs, const uint8_t id[BS_ID_BYTES])
{
    int rc = kv_exists(bs->index, id, BS_ID_BYTES);

    return rc < 0 ? SZ_EIO : rc;
}

void bs_stats(struct bs *bs, uint64_t *blocks, uint64_t *bytes)
{
    pthread_mutex_lock(&bs->mu);
    *blocks = bs->blocks;
    *bytes = bs->bytes;
    pthread_mutex_unlock(&bs->mu);
}

static int bs_lookup(struct bs *bs, const uint8_t *id, struct bs_loc *loc)
{
    uint8_t *val = NULL;
    size_t vlen = 0;
    char hex[17];
    int rc = kv_get(bs->index, id, BS_ID_BYTES, &val, &vlen);

    if (rc == SZ_ENOENT)
        return rc;
    if (rc != 0)
        return SZ_EIO;
    if (vlen == BS_VAL_BYTES) {
        bs_unpack_loc(val, loc);
    } else {
        log_err("blockstore: index entry of %s has %zu bytes", bs_idhex(id, hex), vlen);
        rc = SZ_ECORRUPT;
    }
    free(val);
    return rc;
}

/* preadv the whole iovec; a short file is SZ_ECORRUPT, a failed read SZ_EIO.
 * With quiet, nothing is logged. */
static int bs_preadv_all(int fd, struct iovec *iov, int cnt, uint64_t off, uint32_t file,
                         int quiet)
{
    while (cnt > 0) {
        ssize_t n = preadv(fd, iov, cnt, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return quiet ? SZ_EIO : bs_ioerr("read", file);
        if (n == 0) {
            if (!quiet)
                log_err("blockstore: data file %08u ends before record end", (unsigned)file);
            return SZ_ECORRUPT;
        }
        off += (uint64_t)n;
        for (; cnt > 0 && (size_t)n >= iov->iov_len; iov++, cnt--)
            n -= (ssize_t)iov->iov_len;
        if (cnt > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

/* Why the record (hdr, payload) does not match id's index entry, or NULL. */
static const char *bs_check_record(const uint8_t *id, const struct bs_loc *loc,
                                   const uint8_t *hdr, const uint8_t *payload)
{
    const char *why = NULL;

    if (get_le32(hdr) != BS_MAGIC)
        why = "bad magic";
    else if (get_le32(hdr + 4) != loc->len)
        why = "length differs from index";
    else if (get_le32(hdr + 8) != loc->crc)
        why = "header crc differs from index";
    else if (memcmp(hdr + 16, id, BS_ID_BYTES) != 0)
        why = "id differs";
    else if (crc32c(0, payload, loc->len) != loc->crc)
        why = "payload crc mismatch";
    return why;
}

static int bs_verify_record(const uint8_t *id, const struct bs_loc *loc, const uint8_t *hdr,
                            const uint8_t *payload)
{
    const char *why = bs_check_record(id, loc, hdr, payload);
    char hex[17];

    if (why == NULL)
        return 0;
    log_err("blockstore: block %s at %08u:%llu corrupt: %s", bs_idhex(id, hex),
            (unsigned)loc->file, (unsigned long long)loc->off, why);
    return SZ_ECORRUPT;
}

int bs_get(struct bs *bs, const uint8_t id[BS_ID_BYTES], uint8_t **out, size_t *len)
{
    uint8_t hdr[BS_HDR_BYTES];
    uint8_t *buf = NULL;
    struct bs_fdref ref;
    struct bs_loc loc;
    struct iovec iov[2];
    int rc;

    *out = NULL;
    *len = 0;
    rc = bs_lookup(bs, id, &loc);
    if (rc != 0)
        return rc;
    buf = malloc(loc.len > 0 ? loc.len : 1);
    if (buf == NULL)
        return SZ_ENOMEM;
    rc = bs_fd_get(bs, loc.file, &ref);
    if (rc != 0)
        goto fail;
    iov[0] = (struct iovec){.iov_base = hdr, .iov_len = sizeof(hdr)};
    iov[1] = (struct iovec){.iov_base = buf, .iov_len = loc.len};
    rc = bs_preadv_all(ref.fd, iov, 2, loc.off, loc.file, 0);
    bs_fd_put(bs, &ref);
    if (rc == 0)
        rc = bs_verify_record(id, &loc, hdr, buf);
    if (rc != 0)
        goto fail;
    *out = buf;
    *len = loc.len;
    return 0;
fail:
    free(buf);
    return rc;
}

/* ---- put ------------------------------------------------------------------- */

enum { W_WRITE, W_HAVE, W_WAIT, W_RETRY };

struct bs_work {
    struct bs_claim claim; /* claim.id is the item's id even when unclaimed */
    size_t item;
    int state;
    int claimed;
    uint64_t off;
    uint8_t hdr[BS_HDR_BYTES];
};

static unsigned bs_claim_bucket(const uint8_t *id)
{
    uint32_t h = 2166136261u;

    for (int i = 0; i < BS_ID_BYTES; i++)
        h = (h ^ id[i]) * 16777619u;
    return h % BS_CLAIM_BUCKETS;
}

static int bs_claimed_locked(struct bs *bs, const uint8_t *id)
{
    for (struct bs_claim *c = bs->claims[bs_claim_bucket(id)]; c != NULL; c = c->next)
        if (memcmp(c->id, id, BS_ID_BYTES) == 0)
            return 1;
    return 0;
}

static void bs_unclaim_locked(struct bs *bs, struct bs_claim *claim)
{
    struct bs_claim **pp = &bs->claims[bs_claim_bucket(claim->id)];

    while (*pp != claim)
        pp = &(*pp)->next;
    *pp = claim->next;
}

/* Check crcs into results; return the number of valid items put into w. */
static size_t bs_collect(const struct bs_item *items, size_t n, int *results, struct bs_work *w)
{
    size_t nw = 0;
    char hex[17];

    for (size_t i = 0; i < n; i++) {
        if (crc32c(0, items[i].data, items[i].len) != items[i].crc) {
            log_warn("blockstore: rejecting block %s: crc mismatch", bs_idhex(items[i].id, hex));
            results[i] = SZ_ECORRUPT;
            continue;
        }
        results[i] = 0;
        w[nw] = (struct bs_work){.claim.id = items[i].id, .item = i, .state = W_WRITE};
        nw++;
    }
    return nw;
}

/* Claim every id no batch is writing yet; the rest wait for their writer.
 * That includes repeats of an id within this batch: they find the first
 * occurrence's claim and, as it is released before waiting, simply see it
 * indexed. */
static void bs_claim_all(struct bs *bs, struct bs_work *w, size_t nw)
{
    pthread_mutex_lock(&bs->mu);
    for (size_t i = 0; i < nw; i++) {
        struct bs_claim **head;
        if (bs_claimed_locked(bs, w[i].claim.id)) {
            w[i].state = W_WAIT;
            continue;
        }
        head = &bs->claims[bs_claim_bucket(w[i].claim.id)];
        w[i].claim.next = *head;
        *head = &w[i].claim;
        w[i].claimed = 1;
    }
    pthread_mutex_unlock(&bs->mu);
}

/* After claiming, ids already in the index need no write. */
static int bs_drop_present(struct bs *bs, struct bs_work *w, size_t nw)
{
    for (size_t i = 0; i < nw; i++) {
        int rc;
        if (w[i].state != W_WRITE)
            continue;
        rc = kv_exists(bs->index, w[i].claim.id, BS_ID_BYTES);
        if (rc < 0)
            return SZ_EIO;
        if (rc == 1)
            w[i].state = W_HAVE;
    }
    return 0;
}

/* pwritev the whole iovec (IOV_MAX entries at a time), resuming after
 * short writes.  The iovec is consumed. */
static int bs_pwritev_all(int fd, struct iovec *iov, int cnt, uint64_t off, uint32_t file)
{
    while (cnt > 0) {
        ssize_t n = pwritev(fd, iov, cnt < IOV_MAX ? cnt : IOV_MAX, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return bs_ioerr("write", file);
        }
        off += (uint64_t)n;
        for (; cnt > 0 && (size_t)n >= iov->iov_len; iov++, cnt--)
            n -= (ssize_t)iov->iov_len;
        if (cnt > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    return 0;
}

/* Lay out the W_WRITE records from `off` on and write them in one go. */
static int bs_write_records(const struct bs_item *items, struct bs_work *w, size_t nw,
                            size_t nrec, int fd, uint32_t file, uint64_t off)
{
    struct iovec *iov = malloc(2 * nrec * sizeof(*iov));
    uint64_t start = off;
    int cnt = 0, rc;

    if (iov == NULL)
        return SZ_ENOMEM;
    for (size_t i = 0; i < nw; i++) {
        const struct bs_item *it = &items[w[i].item];
        if (w[i].state != W_WRITE)
            continue;
        w[i].off = off;
        bs_pack_hdr(w[i].hdr, it);
        iov[cnt++] = (struct iovec){.iov_base = w[i].hdr, .iov_len = BS_HDR_BYTES};
        if (it->len > 0)
            iov[cnt++] = (struct iovec){.iov_base = (void *)it->data, .iov_len = it->len};
        off += BS_HDR_BYTES + (uint64_t)it->len;
    }
    rc = bs_pwritev_all(fd, iov, cnt, start, file);
    free(iov);
    return rc;
}

/* One synced kv batch with the index entries of the records just written. */
static int bs_write_index(struct bs *bs, const struct bs_item *items, const struct bs_work *w,
                          size_t nw, uint32_t file)
{
    uint8_t val[BS_VAL_BYTES];
    struct kv_batch *b = NULL;
    int rc = kv_batch_new(&b);

    if (rc != 0)
        return rc;
    for (size_t i = 0; i < nw; i++) {
        const struct bs_item *it = &items[w[i].item];
        struct bs_loc loc;
        if (w[i].state != W_WRITE)
            continue;
        loc = (struct bs_loc){.file = file, .off = w[i].off, .len = (uint32_t)it->len,
                              .crc = it->crc};
        bs_pack_loc(val, &loc);
        kv_batch_put(b, it->id, BS_ID_BYTES, val, sizeof(val));
    }
    rc = kv_write(bs->index, b, 1);
    kv_batch_free(b);
    return rc < 0 ? SZ_EIO : 0;
}

/* Records, fdatasync, then index: the durability order of blockstore.h. */
static int bs_store(struct bs *bs, const struct bs_item *items, struct bs_work *w, size_t nw)
{
    struct bs_fdref ref;
    uint64_t need = 0, off;
    uint32_t file;
    size_t nrec = 0;
    int rc;

    for (size_t i = 0; i < nw; i++) {
        if (w[i].state != W_WRITE)
            continue;
        need += BS_HDR_BYTES + (uint64_t)items[w[i].item].len;
        nrec++;
    }
    if (nrec == 0)
        return 0;
    rc = bs_reserve(bs, need, &file, &off);
    if (rc != 0)
        return rc;
    rc = bs_fd_get(bs, file, &ref);
    if (rc != 0)
        return rc;
    rc = bs_write_records(items, w, nw, nrec, ref.fd, file, off);
    if (rc == 0 && fdatasync(ref.fd) != 0)
        rc = bs_ioerr("fdatasync", file);
    bs_fd_put(bs, &ref);
    if (rc == 0)
        rc = bs_write_index(bs, items, w, nw, file);
    return rc;
}

/* Count what this batch stored (on success), then drop its claims. */
static void bs_release(struct bs *bs, const struct bs_item *items, struct bs_work *w, size_t nw,
                       int ok)
{
    pthread_mutex_lock(&bs->mu);
    for (size_t i = 0; i < nw; i++) {
        if (ok && w[i].state == W_WRITE) {
            bs->blocks++;
            bs->bytes += BS_HDR_BYTES + (uint64_t)items[w[i].item].len;
        }
        if (w[i].claimed)
            bs_unclaim_locked(bs, &w[i].claim);
    }
    pthread_cond_broadcast(&bs->claim_cv);
    pthread_mutex_unlock(&bs->mu);
}

/* Ids another batch (or a replace, or a delete) held: wait for its release;
 * then they are indexed, or (after a delete or a failed write) marked
 * W_RETRY for this batch to write itself.  Return 0 or SZ_EIO. */
static int bs_wait_others(struct bs *bs, struct bs_work *w, size_t nw, size_t *nretry)
{
    *nretry = 0;
    for (size_t i = 0; i < nw; i++) {
        int rc;
        if (w[i].state != W_WAIT)
            continue;
        pthread_mutex_lock(&bs->mu);
        while (bs_claimed_locked(bs, w[i].claim.id))
            pthread_cond_wait(&bs->claim_cv, &bs->mu);
        pthread_mutex_unlock(&bs->mu);
        rc = kv_exists(bs->index, w[i].claim.id, BS_ID_BYTES);
        if (rc < 0)
            return SZ_EIO;
        if (rc == 0) {
            w[i].state = W_RETRY;
            (*nretry)++;
        }
    }
    return 0;
}

static int bs_check_sizes(const struct bs_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (items[i].len > UINT32_MAX) {
            log_err("blockstore: block of %zu bytes is too large", items[i].len);
            return SZ_EINVAL;
        }
    }
    return 0;
}

#define BS_PUT_ATTEMPTS 8

static int bs_put_attempt(struct bs *bs, const struct bs_item *items, size_t n, int *results,
                          int attempt);

/* Write the W_RETRY items of w again, as a batch of their own. */
static int bs_put_retry(struct bs *bs, const struct bs_item *items, const struct bs_work *w,
                        size_t nw, size_t nretry, int attempt)
{
    struct bs_item *sub = malloc(nretry * sizeof(*sub));
    int *subres = malloc(nretry * sizeof(*subres));
    size_t k = 0;
    char hex[17];
    int rc = SZ_ENOMEM;

    if (sub == NULL || subres == NULL)
        goto out;
    for (size_t i = 0; i < nw; i++)
        if (w[i].state == W_RETRY)
            sub[k++] = items[w[i].item];
    rc = SZ_EIO;
    if (attempt + 1 >= BS_PUT_ATTEMPTS) {
        log_err("blockstore: concurrent writes of %s keep failing", bs_idhex(sub[0].id, hex));
        goto out;
    }
    /* Every item here passed its crc check already, so results stay 0. */
    rc = bs_put_attempt(bs, sub, k, subres, attempt + 1);
out:
    free(sub);
    free(subres);
    return rc;
}

int bs_put_batch(struct bs *bs, const struct bs_item *items, size_t n, int *results)
{
    return bs_put_attempt(bs, items, n, results, 0);
}

static int bs_put_attempt(struct bs *bs, const struct bs_item *items, size_t n, int *results,
                          int attempt)
{
    struct bs_work *w;
    size_t nw, nretry = 0;
    int rc;

    if (n == 0)
        return 0;
    rc = bs_check_sizes(items, n);
    if (rc != 0)
        return rc;
    w = malloc(n * sizeof(*w));
    if (w == NULL)
        return SZ_ENOMEM;
    nw = bs_collect(items, n, results, w);
    bs_claim_all(bs, w, nw);
    rc = bs_drop_present(bs, w, nw);
    if (rc == 0)
        rc = bs_store(bs, items, w, nw);
    bs_release(bs, items, w, nw, rc == 0);
    if (rc == 0)
        rc = bs_wait_others(bs, w, nw, &nretry);
    if (rc == 0 && nretry > 0)
        rc = bs_put_retry(bs, items, w, nw, nretry, attempt);
    free(w);
    return rc;
}

/* ---- maintenance: scan, verify, replace, delete ---------------------------- */

/* Claim one id for a replace or delete, waiting while anyone else holds it. */
static void bs_claim_one(struct bs *bs, struct bs_claim *claim)
{
    struct bs_claim **head = &bs->claims[bs_claim_bucket(claim->id)];

    pthread_mutex_lock(&bs->mu);
    while (bs_claimed_locked(bs, claim->id))
        pthread_cond_wait(&bs->claim_cv, &bs->mu);
    claim->next = *head;
    *head = claim;
    pthread_mutex_unlock(&bs->mu);
}

static void bs_unclaim_one(struct bs *bs, struct bs_claim *claim)
{
    pthread_mutex_lock(&bs->mu);
    bs_unclaim_locked(bs, claim);
    pthread_cond_broadcast(&bs->claim_cv);
    pthread_mutex_unlock(&bs->mu);
}

struct bs_scan {
    struct kv_iter *it;
    int done;
};

int bs_scan_new(struct bs *bs, struct bs_scan **out)
{
    struct bs_scan *sc = calloc(1, sizeof(*sc));

    *out = NULL;
    if (sc == NULL)
        return SZ_ENOMEM;
    if (kv_iter_new(bs->index, NULL, 0, &sc->it) != 0) {
        free(sc);
        return SZ_EIO;
    }
    *out = sc;
    return 0;
}

int bs_scan_next(struct bs_scan *sc, struct bs_entry *out, size_t max, size_t *n)
{
    const uint8_t *k, *v;
    size_t klen, vlen;
    struct bs_loc loc;

    *n = 0;
    while (!sc->done && *n < max) {
        int rc = kv_iter_next(sc->it, &k, &klen, &v, &vlen);
        if (rc < 0)
            return SZ_EIO;
        if (rc == 0) {
            sc->done = 1;
            break;
        }
        if (klen != BS_ID_BYTES || vlen != BS_VAL_BYTES) {
            log_err("blockstore: scan skips a malformed index entry (key %zu, value %zu bytes)",
                    klen, vlen);
            continue;
        }
        bs_unpack_loc(v, &loc);
        memcpy(out[*n].id, k, BS_ID_BYTES);
        out[*n].file = loc.file;
        out[*n].off = loc.off;
        out[*n].len = loc.len;
        out[*n].crc = loc.crc;
        (*n)++;
    }
    return 0;
}

void bs_scan_free(struct bs_scan *sc)
{
    if (sc == NULL)
        return;
    kv_iter_free(sc->it);
    free(sc);
}

void bs_tail(struct bs *bs, uint32_t *file, uint64_t *off)
{
    pthread_mutex_lock(&bs->mu);
    *file = bs->cur_file;
    *off = bs->cur_off;
    pthread_mutex_unlock(&bs->mu);
}

int bs_verify(struct bs *bs, const uint8_t id[BS_ID_BYTES], int *health, uint32_t *crc)
{
    uint8_t hdr[BS_HDR_BYTES];
    uint8_t *buf = NULL;
    struct bs_fdref ref;
    struct bs_loc loc;
    struct iovec iov[2];
    struct stat st;
    int missing = 0, rc;

    *health = BS_HEALTHY;
    *crc = 0;
    rc = bs_lookup(bs, id, &loc);
    if (rc != 0)
        return rc;
    *crc = loc.crc;
    buf = malloc(loc.len > 0 ? loc.len : 1);
    if (buf == NULL)
        return SZ_ENOMEM;
    rc = bs_fd_get_ex(bs, loc.file, &ref, 1, &missing);
    if (rc != 0) {
        if (missing) {
            *health = BS_GONE;
            rc = 0;
        }
        goto out;
    }
    if (fstat(ref.fd, &st) == 0 && st.st_nlink == 0) {
        /* Unlinked while a cached fd kept it readable: its bytes are gone. */
        bs_fd_put(bs, &ref);
        *health = BS_GONE;
        goto out;
    }
    iov[0] = (struct iovec){.iov_base = hdr, .iov_len = sizeof(hdr)};
    iov[1] = (struct iovec){.iov_base = buf, .iov_len = loc.len};
    rc = bs_preadv_all(ref.fd, iov, 2, loc.off, loc.file, 1);
    bs_fd_put(bs, &ref);
    if (rc == SZ_ECORRUPT) { /* the file ends before the record does */
        *health = BS_GONE;
        rc = 0;
    } else if (rc == 0 && bs_check_record(id, &loc, hdr, buf) != NULL) {
        *health = BS_DAMAGED;
    }
out:
    free(buf);
    return rc;
}

/* Append one record for (id, data) and make it durable; return where. */
static int bs_append_one(struct bs *bs, const struct bs_item *it, struct bs_loc *loc)
{
    uint8_t hdr[BS_HDR_BYTES];
    struct iovec iov[2];
    struct bs_fdref ref;
    uint64_t off;
    uint32_t file;
    int cnt = 1, rc;

    rc = bs_reserve(bs, BS_HDR_BYTES + (uint64_t)it->len, &file, &off);
    if (rc != 0)
        return rc;
    rc = bs_fd_get(bs, file, &ref);
    if (rc != 0)
        return rc;
    bs_pack_hdr(hdr, it);
    iov[0] = (struct iovec){.iov_base = hdr, .iov_len = BS_HDR_BYTES};
    if (it->len > 0)
        iov[cnt++] = (struct iovec){.iov_base = (void *)it->data, .iov_len = it->len};
    rc = bs_pwritev_all(ref.fd, iov, cnt, off, file);
    if (rc == 0 && fdatasync(ref.fd) != 0)
        rc = bs_ioerr("fdatasync", file);
    bs_fd_put(bs, &ref);
    *loc = (struct bs_loc){.file = file, .off = off, .len = (uint32_t)it->len, .crc = it->crc};
    return rc;
}

int bs_replace(struct bs *bs, const uint8_t id[BS_ID_BYTES], const void *data, size_t len,
               uint32_t crc)
{
    struct bs_item it = {.id = id, .data = data, .len = len, .crc = crc};
    struct bs_claim claim = {.id = id};
    uint8_t val[BS_VAL_BYTES];
    struct bs_loc old, loc;
    char hex[17];
    int rc;

    if (len > UINT32_MAX)
        return SZ_EINVAL;
    if (crc32c(0, data, len) != crc)
        return SZ_ECORRUPT;
    bs_claim_one(bs, &claim);
    rc = bs_lookup(bs, id, &old);
    if (rc == SZ_ECORRUPT)
        rc = SZ_EINVAL; /* no recorded crc to match */
    if (rc != 0)
        goto out;
    if (old.crc != crc) {
        log_err("blockstore: refusing to replace %s: crc %08x is not the recorded %08x",
                bs_idhex(id, hex), (unsigned)crc, (unsigned)old.crc);
        rc = SZ_EINVAL;
        goto out;
    }
    rc = bs_append_one(bs, &it, &loc);
    if (rc != 0)
        goto out;
    bs_pack_loc(val, &loc);
    if (kv_put(bs->index, id, BS_ID_BYTES, val, sizeof(val), 1) != 0) {
        rc = SZ_EIO;
        goto out;
    }
    pthread_mutex_lock(&bs->mu);
    bs->bytes = bs->bytes - old.len + loc.len;
    pthread_mutex_unlock(&bs->mu);
    log_info("blockstore: block %s re-stored at %08u:%llu (was %08u:%llu)", bs_idhex(id, hex),
             (unsigned)loc.file, (unsigned long long)loc.off, (unsigned)old.file,
             (unsigned long long)old.off);
out:
    bs_unclaim_one(bs, &claim);
    return rc;
}

int bs_delete(struct bs *bs, const uint8_t id[BS_ID_BYTES])
{
    struct bs_claim claim = {.id = id};
    struct bs_loc loc = {0};
    int rc, malformed;

    bs_claim_one(bs, &claim);
    rc = bs_lookup(bs, id, &loc);
    malformed = rc == SZ_ECORRUPT;
    if (rc != 0 && !malformed)
        goto out;
    if (kv_del(bs->index, id, BS_ID_BYTES, 1) != 0) {
        rc = SZ_EIO;
        goto out;
    }
    rc = 0;
    pthread_mutex_lock(&bs->mu);
    if (bs->blocks > 0)
        bs->blocks--;
    if (!malformed)
        bs->bytes -= BS_HDR_BYTES + (uint64_t)loc.len;
    pthread_mutex_unlock(&bs->mu);
out:
    bs_unclaim_one(bs, &claim);
    return rc;
}
