/*
 * mapbox: the node's current cluster map, shared by worker threads.
 * The heartbeat thread installs new maps; workers take a reference for the
 * duration of one request, so a map is never freed under a reader.
 */
#ifndef SZ_MAPBOX_H
#define SZ_MAPBOX_H

#include <stdint.h>

struct cmap;
struct mapbox;

int mapbox_new(struct mapbox **out);
/** mapbox_free(mb): NULL is a no-op. No references may be outstanding. */
void mapbox_free(struct mapbox *mb);

/** mapbox_set(mb, mapp): Takes ownership of *mapp and NULLs it. */
void mapbox_set(struct mapbox *mb, struct cmap **mapp);

/** mapbox_get(mb): A referenced map, or NULL if none yet.  Release with
 *  mapbox_put. */
const struct cmap *mapbox_get(struct mapbox *mb);
void mapbox_put(struct mapbox *mb, const struct cmap *map);

/** mapbox_epoch(mb): Epoch of the current map, 0 if none. */
uint64_t mapbox_epoch(struct mapbox *mb);

#endif
