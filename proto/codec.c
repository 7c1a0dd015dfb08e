/*
 * codec: see codec.h.  Validation order: size bound, unpack, version, body
 * matches type, per-field bounds.  Nothing past this file sees an unchecked
 * message.
 */
#include "codec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clustermap.h"
#include "err.h"

static int codec_fail(char *why, size_t whylen, int rc, const char *fmt, ...)
{
    va_list ap;

    if (why != NULL && whylen > 0) {
        va_start(ap, fmt);
        vsnprintf(why, whylen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int codec_valid_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > SZ_MAX_NAME || s[0] == '.' || s[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int codec_str_ok(const char *s, size_t max)
{
    return s == NULL || strlen(s) <= max;
}

static int codec_ids_ok(size_t n, const ProtobufCBinaryData *ids, size_t max)
{
    if (n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i].len != 32)
            return 0;
    return 1;
}

static int codec_map_ok(const Sz__ClusterMap *m)
{
    if (m->n_nodes > CMAP_MAX_NODES || m->n_zones > CMAP_MAX_NODES || m->replicas < 1 ||
        m->replicas > CMAP_MAX_REPLICAS)
        return 0;
    for (size_t i = 0; i < m->n_nodes; i++) {
        const Sz__NodeInfo *n = m->nodes[i];
        if (!codec_str_ok(n->id, SZ_MAX_NAME) || !codec_str_ok(n->zone, SZ_MAX_NAME) ||
            !codec_str_ok(n->endpoint, CMAP_ENDPOINT_MAX - 1))
            return 0;
    }
    return 1;
}

static int codec_reply_ok(const Sz__Reply *r)
{
    if (!codec_str_ok(r->error, 1024))
        return 0;
    if (r->map != NULL && !codec_map_ok(r->map))
        return 0;
    if (r->cluster != NULL && r->cluster->map != NULL && !codec_map_ok(r->cluster->map))
        return 0;
    if (r->have != NULL && r->have->n_have > SZ_MAX_HAVE)
        return 0;
    if (r->put != NULL && r->put->n_replicas > SZ_MAX_BATCH)
        return 0;
    if (r->get != NULL && r->get->n_status > SZ_MAX_BATCH)
        return 0;
    if (!codec_ids_ok(r->n_missing, r->missing, SZ_MAX_HAVE))
        return 0;
    if (r->snap != NULL && (r->snap->key_fingerprint.len > 32 || r->snap->digest.len > 32))
        return 0;
    for (size_t i = 0; i < r->n_snaps; i++)
        if (r->snaps[i]->n_restorable_zones > CMAP_MAX_NODES)
            return 0;
    return 1;
}

/* Which body each type must carry (NOT_SET = no body). */
static int codec_body_for(int type)
{
    switch (type) {
    case SZ__MSG_TYPE__REPLY: return SZ__ENVELOPE__BODY_REPLY;
    case SZ__MSG_TYPE__MAP_GET: return SZ__ENVELOPE__BODY_MAP_GET;
    case SZ__MSG_TYPE__NODE_REGISTER: return SZ__ENVELOPE__BODY_NODE_REGISTER;
    case SZ__MSG_TYPE__NODE_HEARTBEAT: return SZ__ENVELOPE__BODY_NODE_HEARTBEAT;
    case SZ__MSG_TYPE__STATUS_GET: return SZ__ENVELOPE__BODY__NOT_SET;
    case SZ__MSG_TYPE__DISK_CREATE: return SZ__ENVELOPE__BODY_DISK_CREATE;
    case SZ__MSG_TYPE__DISK_LIST: return SZ__ENVELOPE__BODY__NOT_SET;
    case SZ__MSG_TYPE__DISK_GET: return SZ__ENVELOPE__BODY_NAME_REF;
    case SZ__MSG_TYPE__DISK_CLONE: return SZ__ENVELOPE__BODY_DISK_CLONE;
    case SZ__MSG_TYPE__SNAP_BEGIN: return SZ__ENVELOPE__BODY_SNAP_BEGIN;
    case SZ__MSG_TYPE__SNAP_COMMIT: return SZ__ENVELOPE__BODY_SNAP_COMMIT;
    case SZ__MSG_TYPE__SNAP_ABORT: return SZ__ENVELOPE__BODY_NAME_REF;
    case SZ__MSG_TYPE__SNAP_LIST: return SZ__ENVELOPE__BODY_NAME_REF;
    case SZ__MSG_TYPE__SNAP_GET: return SZ__ENVELOPE__BODY_NAME_REF;
    case SZ__MSG_TYPE__BLOCK_HAVE: return SZ__ENVELOPE__BODY_BLOCK_IDS;
    case SZ__MSG_TYPE__BLOCK_PUT: return SZ__ENVELOPE__BODY_BLOCK_PUT;
    case SZ__MSG_TYPE__BLOCK_GET: return SZ__ENVELOPE__BODY_BLOCK_IDS;
    case SZ__MSG_TYPE__NODE_STAT: return SZ__ENVELOPE__BODY__NOT_SET;
    case SZ__MSG_TYPE__NODE_SCRUB: return SZ__ENVELOPE__BODY__NOT_SET;
    case SZ__MSG_TYPE__NODE_DRAIN: return SZ__ENVELOPE__BODY_NAME_REF;
    case SZ__MSG_TYPE__NODE_REMOVE: return SZ__ENVELOPE__BODY_NAME_REF;
    default: return -1;
    }
}

static int codec_body_ok(const sz_env *e, char *why, size_t whylen)
{
    switch (e->body_case) {
    case SZ__ENVELOPE__BODY_REPLY:
        if (!codec_reply_ok(e->reply))
            return codec_fail(why, whylen, SZ_EPROTO, "reply field out of bounds");
        break;
    case SZ__ENVELOPE__BODY_NODE_REGISTER:
        if (!codec_valid_name(e->node_register->id) ||
            !codec_valid_name(e->node_register->zone) ||
            !codec_str_ok(e->node_register->endpoint, CMAP_ENDPOINT_MAX - 1) ||
            e->node_register->endpoint[0] == '\0')
            return codec_fail(why, whylen, SZ_EPROTO, "bad node id, zone or endpoint");
        break;
    case SZ__ENVELOPE__BODY_NODE_HEARTBEAT:
        if (!codec_valid_name(e->node_heartbeat->id))
            return codec_fail(why, whylen, SZ_EPROTO, "bad node id");
        break;
    case SZ__ENVELOPE__BODY_DISK_CREATE:
        if (!codec_str_ok(e->disk_create->name, SZ_MAX_NAME) ||
            !codec_str_ok(e->disk_create->zone, SZ_MAX_NAME))
            return codec_fail(why, whylen, SZ_EPROTO, "name too long");
        break;
    case SZ__ENVELOPE__BODY_NAME_REF:
        if (!codec_str_ok(e->name_ref->name, SZ_MAX_NAME))
            return codec_fail(why, whylen, SZ_EPROTO, "name too long");
        break;
    case SZ__ENVELOPE__BODY_DISK_CLONE:
        if (!codec_str_ok(e->disk_clone->name, SZ_MAX_NAME) ||
            !codec_str_ok(e->disk_clone->snapshot, SZ_MAX_NAME))
            return codec_fail(why, whylen, SZ_EPROTO, "name too long");
        break;
    case SZ__ENVELOPE__BODY_SNAP_BEGIN:
        if (!codec_str_ok(e->snap_begin->disk, SZ_MAX_NAME) ||
            !codec_str_ok(e->snap_begin->name, SZ_MAX_NAME) ||
            e->snap_begin->key_fingerprint.len > 32)
            return codec_fail(why, whylen, SZ_EPROTO, "snapshot begin field out of bounds");
        break;
    case SZ__ENVELOPE__BODY_SNAP_COMMIT:
        if (!codec_str_ok(e->snap_commit->id, SZ_MAX_NAME) ||
            !codec_str_ok(e->snap_commit->manifest_parent, SZ_MAX_NAME) ||
            e->snap_commit->digest.len > 32)
            return codec_fail(why, whylen, SZ_EPROTO, "snapshot commit field out of bounds");
        break;
    case SZ__ENVELOPE__BODY_BLOCK_IDS: {
        size_t max = e->type == SZ__MSG_TYPE__BLOCK_HAVE ? SZ_MAX_HAVE : SZ_MAX_BATCH;
        if (!codec_ids_ok(e->block_ids->n_ids, e->block_ids->ids, max))
            return codec_fail(why, whylen, SZ_EPROTO, "ids must be 32 bytes, at most %zu", max);
        break;
    }
    case SZ__ENVELOPE__BODY_BLOCK_PUT:
        if (!codec_ids_ok(e->block_put->n_ids, e->block_put->ids, SZ_MAX_BATCH) ||
            e->block_put->n_crcs != e->block_put->n_ids)
            return codec_fail(why, whylen, SZ_EPROTO, "put needs matching 32-byte ids and crcs");
        break;
    default:
        break;
    }
    return 0;
}

int codec_decode(const void *buf, size_t len, sz_env **out, char *why, size_t whylen)
{
    sz_env *e;
    int want, rc;

    *out = NULL;
    if (len > SZ_MAX_ENVELOPE)
        return codec_fail(why, whylen, SZ_ETOOBIG, "envelope of %zu bytes exceeds %u", len,
                          SZ_MAX_ENVELOPE);
    e = sz__envelope__unpack(NULL, len, buf);
    if (e == NULL)
        return codec_fail(why, whylen, SZ_EPROTO, "envelope does not parse");
    if (e->version != SZ_PROTO_VERSION) {
        rc = codec_fail(why, whylen, SZ_EVERSION, "protocol version %u, expected %u",
                        e->version, SZ_PROTO_VERSION);
        goto err;
    }
    want = codec_body_for(e->type);
    if (want < 0) {
        rc = codec_fail(why, whylen, SZ_EPROTO, "unknown message type %d", (int)e->type);
        goto err;
    }
    if ((int)e->body_case != want) {
        rc = codec_fail(why, whylen, SZ_EPROTO, "%s %s", codec_type_name(e->type),
                        want == SZ__ENVELOPE__BODY__NOT_SET ? "takes no body"
                                                            : "without its body");
        goto err;
    }
    if ((rc = codec_body_ok(e, why, whylen)) != 0)
        goto err;
    *out = e;
    return 0;
err:
    sz__envelope__free_unpacked(e, NULL);
    return rc;
}

uint64_t codec_peek_req_id(const void *buf, size_t len)
{
    sz_env *e;
    uint64_t id;

    if (len > SZ_MAX_ENVELOPE || (e = sz__envelope__unpack(NULL, len, buf)) == NULL)
        return 0;
    id = e->req_id;
    sz__envelope__free_unpacked(e, NULL);
    return id;
}

void codec_free(sz_env *env)
{
    if (env != NULL)
        sz__envelope__free_unpacked(env, NULL);
}

int codec_pack(const ProtobufCMessage *msg, uint8_t **out, size_t *outlen)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(n ? n : 1);

    if (buf == NULL)
        return SZ_ENOMEM;
    protobuf_c_message_pack(msg, buf);
    *out = buf;
    *outlen = n;
    return 0;
}

int codec_encode(sz_env *env, uint8_t **out, size_t *outlen)
{
    env->version = SZ_PROTO_VERSION;
    return codec_pack(&env->base, out, outlen);
}

int codec_unpack(const ProtobufCMessageDescriptor *desc, const void *buf, size_t len,
                 ProtobufCMessage **out)
{
    *out = protobuf_c_message_unpack(desc, NULL, len, buf);
    return *out ? 0 : SZ_ECORRUPT;
}

void codec_unpack_free(ProtobufCMessage *msg)
{
    if (msg != NULL)
        protobuf_c_message_free_unpacked(msg, NULL);
}

int codec_map_from_pb(const Sz__ClusterMap *pb, struct cmap **out)
{
    struct cmap *m;
    int rc;

    if (!codec_map_ok(pb))
        return SZ_EPROTO;
    if ((rc = cmap_new(pb->epoch, pb->replicas, &m)) != 0)
        return rc == SZ_ENOMEM ? rc : SZ_EPROTO;
    for (size_t i = 0; i < pb->n_nodes; i++) {
        const Sz__NodeInfo *n = pb->nodes[i];
        rc = cmap_add_node(m, n->id, n->zone, n->endpoint, (int)n->state);
        if (rc != 0) {
            cmap_free(m);
            return SZ_EPROTO;
        }
        m->nodes[m->nnodes - 1].blocks = n->blocks;
        m->nodes[m->nnodes - 1].stored_bytes = n->stored_bytes;
    }
    *out = m;
    return 0;
}

static int codec_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int codec_map_to_pb(const struct cmap *map, Sz__ClusterMap *out)
{
    sz__cluster_map__init(out);
    out->epoch = map->epoch;
    out->replicas = map->replicas;
    out->n_nodes = map->nnodes;
    out->nodes = calloc(map->nnodes ? map->nnodes : 1, sizeof(*out->nodes));
    out->zones = calloc(map->nnodes ? map->nnodes : 1, sizeof(*out->zones));
    if (out->nodes == NULL || out->zones == NULL) {
        codec_map_pb_release(out);
        return SZ_ENOMEM;
    }
    for (size_t i = 0; i < map->nnodes; i++) {
        const struct cmap_node *n = &map->nodes[i];
        Sz__NodeInfo *pn = calloc(1, sizeof(*pn));
        size_t z;
        if (pn == NULL) {
            out->n_nodes = i;
            codec_map_pb_release(out);
            return SZ_ENOMEM;
        }
        sz__node_info__init(pn);
        pn->id = (char *)n->id;
        pn->zone = (char *)n->zone;
        pn->endpoint = (char *)n->endpoint;
        pn->state = (Sz__NodeState)n->state;
        pn->blocks = n->blocks;
        pn->stored_bytes = n->stored_bytes;
        out->nodes[i] = pn;
        for (z = 0; z < out->n_zones; z++)
            if (strcmp(out->zones[z], n->zone) == 0)
                break;
        if (z == out->n_zones)
            out->zones[out->n_zones++] = (char *)n->zone;
    }
    qsort(out->zones, out->n_zones, sizeof(*out->zones), codec_cmp_str);
    return 0;
}

void codec_map_pb_release(Sz__ClusterMap *pb)
{
    for (size_t i = 0; pb->nodes != NULL && i < pb->n_nodes; i++)
        free(pb->nodes[i]);
    free(pb->nodes);
    free(pb->zones);
    pb->nodes = NULL;
    pb->zones = NULL;
    pb->n_nodes = pb->n_zones = 0;
}

const char *codec_type_name(int type)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(&sz__msg_type__descriptor,
                                                                        type);
    return v ? v->name : "UNKNOWN";
}
