/*
 * manifest: encoder and decoder of a snapshot's block list ("SZM1", see
 * manifest.h), delta-encoded against an optional parent manifest.
 *
 * The encoder is greedy: each entry is classed ZERO (all-zero id), SAME
 * (nonzero and equal to the parent's entry at that index) or LIT, and
 * consecutive entries of one class make one run.  A first pass sizes the
 * output exactly, a second writes it.  The decoder trusts nothing: every
 * length, count and parent bound is checked before memory is touched,
 * varints must be minimal LEB128 of at most 10 bytes that fit in 64 bits,
 * and runs must cover exactly n entries with no trailing bytes.
 */
#include "manifest.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

#define MF_MAGIC "SZM1"
#define MF_HDR 12 /* magic + u64le n */
#define VARINT_MAX 10

enum { RUN_ZERO = 0, RUN_SAME = 1, RUN_LIT = 2 };

int mf_is_zero(const uint8_t id[MF_ID_BYTES])
{
    uint64_t w[4];

    memcpy(w, id, sizeof(w));
    return (w[0] | w[1] | w[2] | w[3]) == 0;
}

/* ---- encoder ------------------------------------------------------------ */

static int entry_class(const uint8_t *ids, const uint8_t *parent, size_t pn, size_t i)
{
    uint64_t a[4], b[4];

    memcpy(a, ids + i * MF_ID_BYTES, sizeof(a));
    if ((a[0] | a[1] | a[2] | a[3]) == 0)
        return RUN_ZERO;
    if (i >= pn)
        return RUN_LIT;
    memcpy(b, parent + i * MF_ID_BYTES, sizeof(b));
    return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3])) == 0 ? RUN_SAME
                                                                               : RUN_LIT;
}

/* Length of the run starting at entry i; its class in *tag. */
static size_t next_run(const uint8_t *ids, size_t n, const uint8_t *parent, size_t pn, size_t i,
                       int *tag)
{
    size_t j = i + 1;

    *tag = entry_class(ids, parent, pn, i);
    while (j < n && entry_class(ids, parent, pn, j) == *tag)
        j++;
    return j - i;
}

static size_t varint_len(uint64_t v)
{
    size_t n = 1;

    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Exact encoded size, or 0 on overflow. */
static size_t encoded_size(const uint8_t *ids, size_t n, const uint8_t *parent, size_t pn)
{
    size_t size = MF_HDR;
    int tag;

    for (size_t i = 0, len; i < n; i += len) {
        len = next_run(ids, n, parent, pn, i, &tag);
        size += 1 + varint_len(len);
        if (tag == RUN_LIT) {
            if (len > (SIZE_MAX - size) / MF_ID_BYTES)
                return 0;
            size += len * MF_ID_BYTES;
        }
    }
    return size;
}

int mf_encode(const uint8_t *ids, size_t n, const uint8_t *parent, size_t pn, uint8_t **out,
              size_t *outlen)
{
    uint8_t *buf, *p;
    size_t size;
    int tag;

    if (out == NULL || outlen == NULL || (ids == NULL && n > 0))
        return SZ_EINVAL;
    *out = NULL;
    *outlen = 0;
    if (parent == NULL)
        pn = 0;
    if ((size = encoded_size(ids, n, parent, pn)) == 0 || (buf = malloc(size)) == NULL)
        return SZ_ENOMEM;
    memcpy(buf, MF_MAGIC, 4);
    put_le64(buf + 4, n);
    p = buf + MF_HDR;
    for (size_t i = 0, len; i < n; i += len) {
        len = next_run(ids, n, parent, pn, i, &tag);
        *p++ = (uint8_t)tag;
        p = put_varint(p, len);
        if (tag == RUN_LIT) {
            memcpy(p, ids + i * MF_ID_BYTES, len * MF_ID_BYTES);
            p += len * MF_ID_BYTES;
        }
    }
    *out = buf;
    *outlen = size;
    return 0;
}

/* ---- decoder ------------------------------------------------------------ */

struct reader {
    const uint8_t *buf;
    size_t len, pos;
};

static uint64_t get_le64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Minimal LEB128 of at most 10 bytes that fits in 64 bits. */
static int get_varint(struct reader *r, uint64_t *out)
{
    uint64_t v = 0;

    for (size_t k = 0; k < VARINT_MAX; k++) {
        uint8_t b;

        if (r->pos >= r->len)
            return SZ_EPROTO;
        b = r->buf[r->pos++];
        if (k == VARINT_MAX - 1 && b > 1)
            return SZ_EPROTO; /* bits past 2^64 */
        v |= (uint64_t)(b & 0x7f) << (7 * k);
        if ((b & 0x80) == 0) {
            if (b == 0 && k > 0)
                return SZ_EPROTO; /* overlong */
            *out = v;
            return 0;
        }
    }
    return SZ_EPROTO;
}

/* Decode one run into ids[*i ..], advancing *i. */
static int get_run(struct reader *r, uint8_t *ids, size_t n, const uint8_t *parent, size_t pn,
                   size_t *i)
{
    uint64_t count;
    uint8_t tag;
    int rc;

    if (r->pos >= r->len)
        return SZ_EPROTO;
    tag = r->buf[r->pos++];
    if ((rc = get_varint(r, &count)) != 0)
        return rc;
    if (count == 0 || count > n - *i)
        return SZ_EPROTO;
    switch (tag) {
    case RUN_ZERO:
        memset(ids + *i * MF_ID_BYTES, 0, count * MF_ID_BYTES);
        break;
    case RUN_SAME:
        if (parent == NULL || *i > pn || count > pn - *i)
            return SZ_EPROTO;
        memcpy(ids + *i * MF_ID_BYTES, parent + *i * MF_ID_BYTES, count * MF_ID_BYTES);
        break;
    case RUN_LIT:
        if (count > (r->len - r->pos) / MF_ID_BYTES)
            return SZ_EPROTO;
        memcpy(ids + *i * MF_ID_BYTES, r->buf + r->pos, count * MF_ID_BYTES);
        r->pos += count * MF_ID_BYTES;
        break;
    default:
        return SZ_EPROTO;
    }
    *i += count;
    return 0;
}

int mf_decode(const uint8_t *buf, size_t len, const uint8_t *parent, size_t pn, size_t max_n,
              uint8_t **ids, size_t *n)
{
    struct reader r = {buf, len, MF_HDR};
    uint64_t n64;
    uint8_t *out;
    size_t i = 0;
    int rc = 0;

    if (ids == NULL || n == NULL || (buf == NULL && len > 0))
        return SZ_EINVAL;
    *ids = NULL;
    *n = 0;
    if (len < MF_HDR || memcmp(buf, MF_MAGIC, 4) != 0)
        return SZ_EPROTO;
    if (parent == NULL)
        pn = 0;
    n64 = get_le64(buf + 4);
    if (n64 > max_n || n64 > SIZE_MAX / MF_ID_BYTES)
        return SZ_ETOOBIG;
    if ((out = malloc(n64 > 0 ? (size_t)n64 * MF_ID_BYTES : 1)) == NULL)
        return SZ_ENOMEM;
    while (rc == 0 && i < n64)
        rc = get_run(&r, out, (size_t)n64, parent, pn, &i);
    if (rc == 0 && r.pos != r.len)
        rc = SZ_EPROTO; /* trailing bytes */
    if (rc != 0) {
        free(out);
        return rc;
    }
    *ids = out;
    *n = (size_t)n64;
    return 0;
}
