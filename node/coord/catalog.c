/*
 * catalog: see catalog.h.
 */
#include "catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "err.h"
#include "fsutil.h"
#include "kv.h"
#include "log.h"
#include "manifest.h"

struct catalog {
    struct kv *kv;
};

static size_t cat_key(char *buf, size_t cap, char kind, const char *name)
{
    int n = snprintf(buf, cap, "%c/%s", kind, name);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

static void cat_u64_put(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t cat_u64_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int cat_open(const char *dir, struct catalog **out)
{
    struct catalog *c = calloc(1, sizeof(*c));
    int rc;

    if (c == NULL)
        return SZ_ENOMEM;
    if ((rc = kv_open(dir, &c->kv)) != 0) {
        free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void cat_close(struct catalog *cat)
{
    if (cat == NULL)
        return;
    kv_close(cat->kv);
    free(cat);
}

int cat_counter(struct catalog *cat, const char *name, uint64_t *val)
{
    char key[80];
    size_t klen = cat_key(key, sizeof(key), 'c', name), vlen;
    uint8_t *v;
    int rc = kv_get(cat->kv, key, klen, &v, &vlen);

    *val = 0;
    if (rc == SZ_ENOENT)
        return 0;
    if (rc != 0)
        return rc;
    if (vlen == 8)
        *val = cat_u64_get(v);
    free(v);
    return 0;
}

int cat_counter_set(struct catalog *cat, const char *name, uint64_t val)
{
    char key[80];
    size_t klen = cat_key(key, sizeof(key), 'c', name);
    uint8_t v[8];

    cat_u64_put(v, val);
    return kv_put(cat->kv, key, klen, v, 8, 1);
}

static int cat_put_msg(struct catalog *cat, char kind, const char *name, const ProtobufCMessage *m)
{
    char key[80];
    size_t klen = cat_key(key, sizeof(key), kind, name), len;
    uint8_t *buf;
    int rc;

    if (klen == 0)
        return SZ_EINVAL;
    if ((rc = codec_pack(m, &buf, &len)) != 0)
        return rc;
    rc = kv_put(cat->kv, key, klen, buf, len, 1);
    free(buf);
    return rc;
}

static int cat_get_msg(struct catalog *cat, char kind, const char *name,
                       const ProtobufCMessageDescriptor *d, ProtobufCMessage **out)
{
    char key[80];
    size_t klen = cat_key(key, sizeof(key), kind, name), len;
    uint8_t *buf;
    int rc;

    if (klen == 0)
        return SZ_ENOENT;
    if ((rc = kv_get(cat->kv, key, klen, &buf, &len)) != 0)
        return rc;
    rc = codec_unpack(d, buf, len, out);
    free(buf);
    return rc;
}

/* All records under prefix "<kind>/", unpacked, in key order. */
static int cat_list(struct catalog *cat, char kind, const ProtobufCMessageDescriptor *d,
                    ProtobufCMessage ***out, size_t *n)
{
    char prefix[3] = {kind, '/', 0};
    ProtobufCMessage **list = NULL;
    size_t cnt = 0, cap = 0;
    struct kv_iter *it;
    const uint8_t *k, *v;
    size_t kl, vl;
    int rc;

    if ((rc = kv_iter_new(cat->kv, prefix, 2, &it)) != 0)
        return rc;
    while ((rc = kv_iter_next(it, &k, &kl, &v, &vl)) == 1) {
        ProtobufCMessage *m;
        if (codec_unpack(d, v, vl, &m) != 0)
            continue;
        if (cnt == cap) {
            ProtobufCMessage **nl = realloc(list, (cap ? cap * 2 : 16) * sizeof(*list));
            if (nl == NULL) {
                codec_unpack_free(m);
                rc = SZ_ENOMEM;
                break;
            }
            list = nl;
            cap = cap ? cap * 2 : 16;
        }
        list[cnt++] = m;
    }
    kv_iter_free(it);
    if (rc < 0) {
        cat_free_list(list, cnt);
        return rc;
    }
    *out = list;
    *n = cnt;
    return 0;
}

void cat_free(void *msg)
{
    codec_unpack_free(msg);
}

void cat_free_list(void *list, size_t n)
{
    ProtobufCMessage **l = list;
    for (size_t i = 0; l != NULL && i < n; i++)
        codec_unpack_free(l[i]);
    free(l);
}

int cat_node_put(struct catalog *cat, const Sz__NodeInfo *n)
{
    return cat_put_msg(cat, 'n', n->id, &n->base);
}

int cat_nodes(struct catalog *cat, Sz__NodeInfo ***out, size_t *n)
{
    return cat_list(cat, 'n', &sz__node_info__descriptor, (ProtobufCMessage ***)out, n);
}

int cat_node_del(struct catalog *cat, const char *id)
{
    char key[80], tomb[80];
    size_t klen = cat_key(key, sizeof(key), 'n', id), tlen = cat_key(tomb, sizeof(tomb), 't', id);
    struct kv_batch *b;
    uint8_t when[8];
    int rc;

    if (klen == 0 || tlen == 0)
        return SZ_EINVAL;
    if ((rc = kv_batch_new(&b)) != 0)
        return rc;
    cat_u64_put(when, fsu_wall_s());
    kv_batch_del(b, key, klen);
    kv_batch_put(b, tomb, tlen, when, sizeof(when));
    rc = kv_write(cat->kv, b, 1);
    kv_batch_free(b);
    return rc;
}

int cat_node_removed(struct catalog *cat, const char *id)
{
    char key[80];
    size_t klen = cat_key(key, sizeof(key), 't', id);

    return klen ? kv_exists(cat->kv, key, klen) == 1 : 0;
}

int cat_refs_iter(struct catalog *cat, const uint8_t *after, size_t alen, uint8_t *ids,
                  size_t max, size_t *n, uint8_t *next, size_t *nlen)
{
    struct kv_iter *it;
    const uint8_t *k, *v;
    size_t kl, vl, cnt = 0;
    int rc;

    *n = 0;
    if ((rc = kv_iter_new(cat->kv, "r/", 2, &it)) != 0)
        return rc;
    if (alen == 34)
        kv_iter_seek(it, after, alen);
    while (cnt < max && (rc = kv_iter_next(it, &k, &kl, &v, &vl)) == 1) {
        if (kl != 34)
            continue;
        if (alen == 34 && memcmp(k, after, 34) <= 0)
            continue;
        memcpy(ids + 32 * cnt++, k + 2, 32);
        memcpy(next, k, 34);
        *nlen = 34;
    }
    kv_iter_free(it);
    *n = cnt;
    return rc < 0 ? rc : 0;
}

int cat_disk_get(struct catalog *cat, const char *name, Sz__DiskInfo **out)
{
    return cat_get_msg(cat, 'd', name, &sz__disk_info__descriptor, (ProtobufCMessage **)out);
}

int cat_disk_put(struct catalog *cat, const Sz__DiskInfo *d)
{
    return cat_put_msg(cat, 'd', d->name, &d->base);
}

int cat_disks(struct catalog *cat, Sz__DiskInfo ***out, size_t *n)
{
    return cat_list(cat, 'd', &sz__disk_info__descriptor, (ProtobufCMessage ***)out, n);
}

int cat_snap_get(struct catalog *cat, const char *id, Sz__SnapInfo **out)
{
    return cat_get_msg(cat, 's', id, &sz__snap_info__descriptor, (ProtobufCMessage **)out);
}

int cat_snap_put(struct catalog *cat, const Sz__SnapInfo *s)
{
    return cat_put_msg(cat, 's', s->id, &s->base);
}

static int cat_snap_cmp(const void *a, const void *b)
{
    const Sz__SnapInfo *x = *(Sz__SnapInfo *const *)a, *y = *(Sz__SnapInfo *const *)b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int cat_snaps(struct catalog *cat, const char *disk, Sz__SnapInfo ***out, size_t *n)
{
    Sz__SnapInfo **all;
    size_t cnt, keep = 0;
    int rc = cat_list(cat, 's', &sz__snap_info__descriptor, (ProtobufCMessage ***)&all, &cnt);

    if (rc != 0)
        return rc;
    for (size_t i = 0; i < cnt; i++) {
        if (disk == NULL || disk[0] == '\0' || strcmp(all[i]->disk, disk) == 0)
            all[keep++] = all[i];
        else
            codec_unpack_free(&all[i]->base);
    }
    if (keep > 1)
        qsort(all, keep, sizeof(*all), cat_snap_cmp);
    *out = all;
    *n = keep;
    return 0;
}

int cat_manifest_raw(struct catalog *cat, const char *id, uint8_t **buf, size_t *len)
{
    char key[80];
    size_t klen = cat_key(key, sizeof(key), 'm', id);

    return kv_get(cat->kv, key, klen, buf, len);
}

int cat_manifest(struct catalog *cat, const char *id, uint8_t **ids, size_t *n)
{
    uint8_t *buf;
    size_t len;
    int rc = cat_manifest_raw(cat, id, &buf, &len);

    if (rc != 0)
        return rc;
    rc = mf_decode(buf, len, NULL, 0, SZ_MAX_DISK_BLOCKS, ids, n);
    free(buf);
    return rc;
}

int64_t cat_refs(struct catalog *cat, const uint8_t id[32])
{
    uint8_t key[34] = {'r', '/'}, *v;
    size_t vlen;
    int rc;
    int64_t cnt = 0;

    memcpy(key + 2, id, 32);
    rc = kv_get(cat->kv, key, sizeof(key), &v, &vlen);
    if (rc == SZ_ENOENT)
        return 0;
    if (rc != 0)
        return rc;
    if (vlen == 8)
        cnt = (int64_t)cat_u64_get(v);
    free(v);
    return cnt;
}

static int cat_id_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

/* Sorted copy of the distinct non-zero ids. */
static int cat_distinct(const uint8_t *ids, size_t n, uint8_t **out, size_t *outn)
{
    uint8_t *d = malloc(n ? n * 32 : 1);
    size_t k = 0;

    if (d == NULL)
        return SZ_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!mf_is_zero(ids + 32 * i))
            memcpy(d + 32 * k++, ids + 32 * i, 32);
    qsort(d, k, 32, cat_id_cmp);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || memcmp(d + 32 * (u - 1), d + 32 * i, 32) != 0)
            memmove(d + 32 * u++, d + 32 * i, 32);
    *out = d;
    *outn = u;
    return 0;
}

int cat_commit(struct catalog *cat, const Sz__SnapInfo *snap, const uint8_t *ids, size_t n)
{
    struct kv_batch *b = NULL;
    uint8_t *mf = NULL, *sbuf = NULL, *d = NULL;
    size_t mflen, slen, nd;
    char key[80];
    int rc;

    if (cat_key(key, sizeof(key), 's', snap->id) == 0)
        return SZ_EINVAL; /* the id does not fit a key */
    if ((rc = mf_encode(ids, n, NULL, 0, &mf, &mflen)) != 0)
        return rc;
    if ((rc = codec_pack(&snap->base, &sbuf, &slen)) != 0)
        goto out;
    if ((rc = cat_distinct(ids, n, &d, &nd)) != 0)
        goto out;
    if ((rc = kv_batch_new(&b)) != 0)
        goto out;
    kv_batch_put(b, key, cat_key(key, sizeof(key), 's', snap->id), sbuf, slen);
    kv_batch_put(b, key, cat_key(key, sizeof(key), 'm', snap->id), mf, mflen);
    for (size_t i = 0; i < nd; i++) {
        uint8_t rk[34] = {'r', '/'}, v[8];
        int64_t cnt = cat_refs(cat, d + 32 * i);
        if (cnt < 0) {
            rc = (int)cnt;
            goto out;
        }
        memcpy(rk + 2, d + 32 * i, 32);
        cat_u64_put(v, (uint64_t)cnt + 1);
        kv_batch_put(b, rk, sizeof(rk), v, 8);
    }
    rc = kv_write(cat->kv, b, 1);
out:
    kv_batch_free(b);
    free(d);
    free(sbuf);
    free(mf);
    return rc;
}
