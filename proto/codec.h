/*
 * codec: the only place protobuf is unpacked.  Frame 0 of every message is an
 * Envelope (proto/snapzone.proto); codec_decode checks the size bound, unpacks,
 * checks the version, checks that the body matches the type, and checks every
 * repeated field and string against the bounds below before any caller sees
 * the message.  Callers read the returned protobuf-c structs directly.
 */
#ifndef SZ_CODEC_H
#define SZ_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "snapzone.pb-c.h"

struct cmap;

#define SZ_PROTO_VERSION 1u
#define SZ_MAX_BATCH 64                           /* blocks per PUT/GET/HAVE */
#define SZ_MAX_HAVE 4096                          /* ids per HAVE */
#define SZ_MAX_ENVELOPE (4u << 20)                /* frame 0 */
#define SZ_MAX_BLOCK_FRAME ((4u << 20) + 64u)     /* a sealed 4 MiB block */
#define SZ_MAX_MANIFEST_FRAME (72u << 20)         /* 2 Mi literal ids */
#define SZ_MAX_DISK_BLOCKS (2u << 20)             /* blocks per disk */
#define SZ_MAX_NAME 63                            /* disk, snapshot, zone, node names */

typedef Sz__Envelope sz_env;

/** codec_decode(buf, len, out, why, whylen): Decode and validate frame 0.
 *  On failure write a one-line reason into why.  Caller frees *out with
 *  codec_free.  Return 0, SZ_ETOOBIG, SZ_EPROTO or SZ_EVERSION. */
int codec_decode(const void *buf, size_t len, sz_env **out, char *why, size_t whylen);

/** codec_peek_req_id(buf, len): The req_id of an envelope that parses but
 *  failed validation (so an error reply can echo it), else 0. */
uint64_t codec_peek_req_id(const void *buf, size_t len);

/** codec_free(env): NULL is a no-op. */
void codec_free(sz_env *env);

/** codec_encode(env, out, outlen): Pack env (version is forced to
 *  SZ_PROTO_VERSION).  Caller frees *out with free(). */
int codec_encode(sz_env *env, uint8_t **out, size_t *outlen);

/** codec_pack(msg, out, outlen): Pack any message (catalog records).
 *  Caller frees *out with free(). */
int codec_pack(const ProtobufCMessage *msg, uint8_t **out, size_t *outlen);

/** codec_unpack(desc, buf, len, out): Unpack a catalog record.  Caller frees
 *  with codec_unpack_free. Return 0 or SZ_ECORRUPT. */
int codec_unpack(const ProtobufCMessageDescriptor *desc, const void *buf, size_t len,
                 ProtobufCMessage **out);
void codec_unpack_free(ProtobufCMessage *msg);

/** codec_map_from_pb(pb, out): Build a cluster map.  Caller frees with
 *  cmap_free.  Return 0, SZ_EPROTO or SZ_ENOMEM. */
int codec_map_from_pb(const Sz__ClusterMap *pb, struct cmap **out);

/** codec_map_to_pb(map, out): Fill *out (sz__cluster_map__init'd by the
 *  callee); release with codec_map_pb_release. */
int codec_map_to_pb(const struct cmap *map, Sz__ClusterMap *out);
void codec_map_pb_release(Sz__ClusterMap *pb);

/** codec_type_name(type): "BLOCK_PUT" etc. */
const char *codec_type_name(int type);

/** codec_valid_name(s): 1 if s is a valid disk/zone/node/snapshot name:
 *  1..SZ_MAX_NAME chars of [A-Za-z0-9._-], not starting with '.' or '-'. */
int codec_valid_name(const char *s);

#endif
