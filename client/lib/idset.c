/*
 * idset: see idset.h.  Linear probing, load factor <= 1/2, copies of ids
 * stored inline; the all-zero id (the manifest's zero marker) is never
 * stored because it doubles as the empty slot.
 */
#include "idset.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

struct idset {
    size_t cap; /* power of two */
    size_t count;
    uint8_t *slots;
};

static int idset_zero(const uint8_t *p)
{
    static const uint8_t z[32];
    return memcmp(p, z, 32) == 0;
}

static size_t idset_hash(const uint8_t *id)
{
    uint64_t h;
    memcpy(&h, id, 8);
    return (size_t)h;
}

int idset_new(size_t expect, struct idset **out)
{
    struct idset *s = calloc(1, sizeof(*s));
    size_t cap = 64;

    if (s == NULL)
        return SZ_ENOMEM;
    while (cap < expect * 2)
        cap <<= 1;
    s->cap = cap;
    s->slots = calloc(cap, 32);
    if (s->slots == NULL) {
        free(s);
        return SZ_ENOMEM;
    }
    *out = s;
    return 0;
}

void idset_free(struct idset *s)
{
    if (s == NULL)
        return;
    free(s->slots);
    free(s);
}

static uint8_t *idset_slot(const struct idset *s, const uint8_t *id)
{
    size_t i = idset_hash(id) & (s->cap - 1);

    for (;;) {
        uint8_t *p = s->slots + 32 * i;
        if (idset_zero(p) || memcmp(p, id, 32) == 0)
            return p;
        i = (i + 1) & (s->cap - 1);
    }
}

static int idset_grow(struct idset *s)
{
    struct idset big = {.cap = s->cap * 2, .count = 0};

    big.slots = calloc(big.cap, 32);
    if (big.slots == NULL)
        return SZ_ENOMEM;
    for (size_t i = 0; i < s->cap; i++)
        if (!idset_zero(s->slots + 32 * i))
            memcpy(idset_slot(&big, s->slots + 32 * i), s->slots + 32 * i, 32);
    free(s->slots);
    s->slots = big.slots;
    s->cap = big.cap;
    return 0;
}

int idset_add(struct idset *s, const uint8_t id[32])
{
    uint8_t *p;

    if (idset_zero(id))
        return 0;
    if ((s->count + 1) * 2 > s->cap && idset_grow(s) != 0)
        return SZ_ENOMEM;
    p = idset_slot(s, id);
    if (!idset_zero(p))
        return 0;
    memcpy(p, id, 32);
    s->count++;
    return 1;
}

int idset_has(const struct idset *s, const uint8_t id[32])
{
    return !idset_zero(id) && !idset_zero(idset_slot(s, id));
}

size_t idset_count(const struct idset *s)
{
    return s->count;
}
