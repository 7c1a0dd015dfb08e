"""szwire: hand-encoding and decoding of snapzone envelopes for tests that
talk to a daemon's socket directly (python3-zmq), per proto/snapzone.proto.
Strict: malformed input raises ValueError."""

MSG_REPLY = 1
MSG_STATUS_GET = 13
MSG_BLOCK_HAVE = 40
MSG_BLOCK_PUT = 41
MSG_NODE_STAT = 43
MSG_NODE_SCRUB = 44


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def read_varint(buf, i):
    shift = v = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError("bad varint")
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def fields(buf):
    """Top-level protobuf fields: {field: [values]} (varints as ints,
    length-delimited and fixed-width as bytes)."""
    out = {}
    i = 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(buf, i)
        elif wt in (1, 2, 5):
            if wt == 2:
                ln, i = read_varint(buf, i)
            else:
                ln = 8 if wt == 1 else 4
            if i + ln > len(buf):
                raise ValueError("truncated")
            v, i = bytes(buf[i:i + ln]), i + ln
        else:
            raise ValueError("wire type %d" % wt)
        out.setdefault(f, []).append(v)
    return out


def last_fields(buf):
    """fields(), keeping the last value of each field."""
    return {f: vs[-1] for f, vs in fields(buf).items()}


def unzigzag(v):
    return (v >> 1) ^ -(v & 1)


def envelope(mtype, req_id, body=b"", version=1):
    """Envelope{version, type, req_id} followed by raw body field bytes."""
    return (b"\x08" + varint(version) + b"\x10" + varint(mtype) + b"\x18" + varint(req_id)
            + body)
