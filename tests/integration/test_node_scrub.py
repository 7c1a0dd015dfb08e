#!/usr/bin/env python3
"""Node scrub (NODE_SCRUB, sent raw over ZeroMQ to one snapnode): on a
3-zone, 1-node-per-zone cluster (R=3, so every node holds every block),
damage one node's data file in place -- a flipped payload byte, a broken
record header, and a truncated last record -- and check that the scrub
reports them (checked/corrupt/missing/repaired), heals them from the other
replicas, that a second scrub finds nothing, that concurrent scrub requests
both get an answer, that a restore served from that node's zone is
byte-identical, and that a block damaged on every node is dropped from the
index (HAVE says no) instead of being served."""
import os
import struct
import sys
import threading

import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from szharness import MiB, ClusterTestCase, make_image, main, poll  # noqa: E402
from szwire import (MSG_BLOCK_HAVE, MSG_NODE_SCRUB, MSG_REPLY, envelope, fields,  # noqa: E402
                    unzigzag, varint)

REC_MAGIC = 0x535A4231  # "SZB1", u32le
REC_HDR = 48

SCRUB_TIMEOUT_MS = 60000


def call(ctx, endpoint, frame0, req_id, timeout_ms=SCRUB_TIMEOUT_MS):
    """One request on a fresh DEALER; returns the decoded Reply fields
    (checking the reply's type and req_id)."""
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, timeout_ms)
    try:
        s.connect(endpoint)
        s.send(frame0)
        frames = s.recv_multipart()
    finally:
        s.close()
    env = fields(frames[0])
    assert env[2][0] == MSG_REPLY, env
    assert env[3][0] == req_id, (env, req_id)
    return fields(env[10][0]) if 10 in env else {}


def scrub(ctx, endpoint, req_id=7):
    rep = call(ctx, endpoint, envelope(MSG_NODE_SCRUB, req_id), req_id)
    status = unzigzag(rep.get(1, [0])[0])
    if status != 0:
        raise AssertionError("NODE_SCRUB to %s: status %d %s" % (
            endpoint, status, rep.get(2, [b""])[0].decode(errors="replace")))
    res = fields(rep[15][0]) if 15 in rep else {}
    return {k: res.get(i, [0])[0] for i, k in
            ((1, "checked"), (2, "corrupt"), (3, "repaired"), (4, "missing"))}


def have(ctx, endpoint, ids):
    body = b"".join(b"\x0a" + varint(len(i)) + i for i in ids)
    rep = call(ctx, endpoint, envelope(MSG_BLOCK_HAVE, 9, b"\x9a\x01" + varint(len(body)) + body),
               9, timeout_ms=10000)
    hv = fields(rep[9][0]) if 9 in rep else {}
    vals = []
    for v in hv.get(1, []):  # packed or not
        if isinstance(v, int):
            vals.append(bool(v))
        else:
            vals += [bool(b) for b in v]
    return vals


# --------------------------------------------------------------- data files --

def records(path):
    """(offset, payload length, id) of every record in a data file."""
    with open(path, "rb") as f:
        data = f.read()
    out = []
    off = 0
    while off + REC_HDR <= len(data):
        magic, ln = struct.unpack_from("<II", data, off)
        if magic != REC_MAGIC:
            break
        out.append((off, ln, data[off + 16:off + REC_HDR]))
        off += REC_HDR + ln
    return out


def xor_byte(path, off):
    with open(path, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0x5A]))


def data_files(node):
    d = os.path.join(node["data_dir"], "blocks", "data")
    return sorted(os.path.join(d, n) for n in os.listdir(d) if n.endswith(".dat"))


class NodeScrub(ClusterTestCase):
    ZONES = 3
    NODES_PER_ZONE = 1
    REPLICAS = 3

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ctx = zmq.Context()

    @classmethod
    def tearDownClass(cls):
        cls.ctx.destroy(linger=0)
        super().tearDownClass()

    def node(self, zone):
        return [n for n in self.cluster.nodes() if n["zone"] == zone][0]

    def test_scrub_heals_and_drops(self):
        c = self.cluster
        c.disk_create("d", "4M", block_size="64K")
        img = c.path("img")
        make_image(img, [("random", 4 * MiB)])
        snap = c.snapshot("d", img)
        self.assertEqual(snap["new_blocks"], 64)

        a = self.node("zone-a")
        ep = a["endpoint"]
        # A clean store scrubs clean.
        res = scrub(self.ctx, ep)
        self.assertEqual(res, {"checked": 64, "corrupt": 0, "repaired": 0, "missing": 0})

        files = data_files(a)
        self.assertEqual(len(files), 1)
        recs = records(files[0])
        self.assertEqual(len(recs), 64)

        # The last record loses its tail: its bytes are gone.
        last = recs[-1]
        with open(files[0], "r+b") as f:
            f.truncate(last[0] + REC_HDR + 100)
        self.assertEqual(scrub(self.ctx, ep),
                         {"checked": 64, "corrupt": 0, "repaired": 1, "missing": 1})

        # A flipped payload byte of one record, a broken length field of
        # another.  Two requests at once: each is answered by a scrub that
        # started after it arrived -- the same one (both see the damage) or,
        # if the first finished before the second arrived, a later clean one.
        xor_byte(files[0], recs[10][0] + REC_HDR + recs[10][1] // 2)
        xor_byte(files[0], recs[20][0] + 5)
        results = [None, None]

        def go(i):
            results[i] = scrub(self.ctx, ep, req_id=100 + i)
        th = [threading.Thread(target=go, args=(i,)) for i in range(2)]
        for t in th:
            t.start()
        for t in th:
            t.join(90)
        want = {"checked": 64, "corrupt": 2, "repaired": 2, "missing": 0}
        clean = {"checked": 64, "corrupt": 0, "repaired": 0, "missing": 0}
        self.assertIn(want, results)
        self.assertIn(sorted(map(str, results)), [sorted(map(str, [want, want])),
                                                  sorted(map(str, [want, clean]))])

        # Healed: a second scrub finds nothing, and the node still has all 64.
        self.assertEqual(scrub(self.ctx, ep),
                         {"checked": 64, "corrupt": 0, "repaired": 0, "missing": 0})
        self.assertEqual(have(self.ctx, ep, [r[2] for r in recs]), [True] * 64)
        # (stats travel with the 1 s heartbeat)
        st = poll(c.status, lambda s: [int(n["blocks"]) for n in s["nodes"]
                                       if n["id"] == a["id"]] == [64], timeout=10)
        self.assertEqual([int(n["blocks"]) for n in st["nodes"] if n["id"] == a["id"]], [64])

        out = c.path("out")
        c.restore(snap["id"], out, zone="zone-a")
        self.assertSameFile(img, out)

        # A block damaged on every node cannot be healed: it is dropped from
        # zone-a's index (so HAVE says no) rather than served.
        # (zone-a's file can no longer be walked past record 20's broken
        # header, so use the offsets read before the damage there.)
        victim = recs[30][2]
        xor_byte(files[0], recs[30][0] + REC_HDR + recs[30][1] - 1)
        hit = 0
        for n in c.nodes():
            if n["id"] == a["id"]:
                continue
            for path in data_files(n):
                for off, ln, rid in records(path):
                    if rid == victim:
                        xor_byte(path, off + REC_HDR + ln - 1)
                        hit += 1
        self.assertEqual(hit, 2)
        res = scrub(self.ctx, ep)
        self.assertEqual(res, {"checked": 64, "corrupt": 1, "repaired": 0, "missing": 0})
        self.assertEqual(have(self.ctx, ep, [victim, recs[31][2]]), [False, True])


if __name__ == "__main__":
    main()
