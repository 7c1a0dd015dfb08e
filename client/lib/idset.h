/*
 * idset: an open-addressing set of 32-byte block ids (ids are uniformly
 * random, so their first 8 bytes are the hash).  Not thread-safe by itself.
 */
#ifndef SZ_IDSET_H
#define SZ_IDSET_H

#include <stddef.h>
#include <stdint.h>

struct idset;

/** idset_new(expect, out): A set sized for about expect ids (it grows). */
int idset_new(size_t expect, struct idset **out);
/** idset_free(s): NULL is a no-op. */
void idset_free(struct idset *s);
/** idset_add(s, id): 1 if added, 0 if already present, SZ_ENOMEM. */
int idset_add(struct idset *s, const uint8_t id[32]);
/** idset_has(s, id): 1 or 0. */
int idset_has(const struct idset *s, const uint8_t id[32]);
size_t idset_count(const struct idset *s);

#endif
