/*
 * mapbox: see mapbox.h.  Each installed map has a reference count; the box
 * itself holds one reference.  Invariant: a map leaves memory only when its
 * count reaches zero, which needs the box to have dropped it.
 */
#include "mapbox.h"

#include <pthread.h>
#include <stdlib.h>

#include "clustermap.h"
#include "err.h"

struct mapref {
    struct cmap *map;
    int refs;
    struct mapref *next;
};

struct mapbox {
    pthread_mutex_t mu;
    struct mapref *cur;
    struct mapref *old; /* superseded maps still referenced by readers */
};

int mapbox_new(struct mapbox **out)
{
    struct mapbox *mb = calloc(1, sizeof(*mb));

    if (mb == NULL)
        return SZ_ENOMEM;
    pthread_mutex_init(&mb->mu, NULL);
    *out = mb;
    return 0;
}

static void mapbox_drop(struct mapref *r)
{
    cmap_free(r->map);
    free(r);
}

void mapbox_free(struct mapbox *mb)
{
    if (mb == NULL)
        return;
    if (mb->cur)
        mapbox_drop(mb->cur);
    while (mb->old) {
        struct mapref *n = mb->old->next;
        mapbox_drop(mb->old);
        mb->old = n;
    }
    pthread_mutex_destroy(&mb->mu);
    free(mb);
}

void mapbox_set(struct mapbox *mb, struct cmap **mapp)
{
    struct mapref *r = calloc(1, sizeof(*r));

    if (r == NULL) {
        cmap_free(*mapp);
        *mapp = NULL;
        return;
    }
    r->map = *mapp;
    r->refs = 1;
    *mapp = NULL;
    pthread_mutex_lock(&mb->mu);
    if (mb->cur) {
        if (--mb->cur->refs == 0) {
            mapbox_drop(mb->cur);
        } else {
            mb->cur->next = mb->old;
            mb->old = mb->cur;
        }
    }
    mb->cur = r;
    pthread_mutex_unlock(&mb->mu);
}

const struct cmap *mapbox_get(struct mapbox *mb)
{
    const struct cmap *m = NULL;

    pthread_mutex_lock(&mb->mu);
    if (mb->cur) {
        mb->cur->refs++;
        m = mb->cur->map;
    }
    pthread_mutex_unlock(&mb->mu);
    return m;
}

void mapbox_put(struct mapbox *mb, const struct cmap *map)
{
    struct mapref **pp;

    if (map == NULL)
        return;
    pthread_mutex_lock(&mb->mu);
    if (mb->cur && mb->cur->map == map) {
        mb->cur->refs--;
    } else {
        for (pp = &mb->old; *pp; pp = &(*pp)->next) {
            if ((*pp)->map == map) {
                struct mapref *r = *pp;
                if (--r->refs == 0) {
                    *pp = r->next;
                    mapbox_drop(r);
                }
                break;
            }
        }
    }
    pthread_mutex_unlock(&mb->mu);
}

uint64_t mapbox_epoch(struct mapbox *mb)
{
    uint64_t e = 0;

    pthread_mutex_lock(&mb->mu);
    if (mb->cur)
        e = mb->cur->map->epoch;
    pthread_mutex_unlock(&mb->mu);
    return e;
}
