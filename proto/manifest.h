/*
 * manifest: compact encoding of a snapshot's full block list.
 *
 * A manifest is n entries of 32-byte block ids, entry i for disk block i; an
 * all-zero id marks an all-zero block (never stored).  Every manifest is
 * complete.  The encoding may be delta-encoded against a parent manifest:
 *
 *   "SZM1" | u64le n | runs...
 *   run := tag(1 byte) varint(count >= 1) [payload]
 *     tag 0 ZERO: count zero entries
 *     tag 1 SAME: count entries equal to the parent's at the same index
 *     tag 2 LIT:  count entries, each 32 bytes of payload
 * Runs must cover exactly n entries.  SAME needs a parent with at least that
 * many entries.  Decoding checks every bound before touching memory.
 */
#ifndef SZ_MANIFEST_H
#define SZ_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#define MF_ID_BYTES 32

/** mf_is_zero(id): 1 if id is the zero marker. */
int mf_is_zero(const uint8_t id[MF_ID_BYTES]);

/** mf_encode(ids, n, parent, pn, out, outlen): Encode n ids, delta against
 *  parent (pn entries; parent may be NULL).  Caller frees *out with free().
 *  Return 0 or SZ_ENOMEM. */
int mf_encode(const uint8_t *ids, size_t n, const uint8_t *parent, size_t pn, uint8_t **out,
              size_t *outlen);

/** mf_decode(buf, len, parent, pn, max_n, ids, n): Decode; reject n > max_n
 *  with SZ_ETOOBIG and any malformed input with SZ_EPROTO.  Caller frees
 *  *ids with free().  Return 0 or SZ_E*. */
int mf_decode(const uint8_t *buf, size_t len, const uint8_t *parent, size_t pn, size_t max_n,
              uint8_t **ids, size_t *n);

#endif
