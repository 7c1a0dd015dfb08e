#!/usr/bin/env python3
"""Fault: a flipped byte inside a stored block (a node's data file).

1. One byte flipped well inside one block's payload on one node: `cluster
   scrub` reports corrupt >= 1 and repaired >= 1, a second scrub reports
   corrupt 0, and every snapshot restores byte-identical.
2. Without scrubbing: the same blocks flipped on two of their three replicas
   (two zones), then a restore preferring one of those zones: the client
   never accepts a bad copy (the node's crc check or the client's AEAD/id
   check rejects it) and fails over; the output is byte-identical.  A scrub
   then heals them.

Data file records (node/blockstore.h): u32le magic 0x535a4231 | u32le len |
u32le crc32c | u32le reserved | 32-byte id | payload(len)."""
import glob
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from szharness import FaultTestCase, main  # noqa: E402

HDR = 48
MAGIC = 0x535A4231  # u32le, so the file bytes are b"1BZS"


def records(node_dir):
    """{id: (path, payload_offset, len)} of the records in a node's data
    files (the last record of an id wins)."""
    out = {}
    for path in sorted(glob.glob(os.path.join(node_dir, "blocks", "data", "*.dat"))):
        with open(path, "rb") as f:
            data = f.read()
        off = 0
        while off + HDR <= len(data):
            if struct.unpack_from("<I", data, off)[0] != MAGIC:
                raise AssertionError("%s: no record magic at offset %d" % (path, off))
            (length,) = struct.unpack_from("<I", data, off + 4)
            bid = data[off + 16:off + 48]
            out[bid] = (path, off + HDR, length)
            off += HDR + length
    return out


def flip(path, offset):
    with open(path, "r+b") as f:
        f.seek(offset)
        b = f.read(1)
        f.seek(offset)
        f.write(bytes([b[0] ^ 0x5A]))
        f.flush()
        os.fsync(f.fileno())


class BitFlip(FaultTestCase):
    CASE = "bitflip"
    # no periodic scrub: only the on-demand ones this test runs
    NODE_ARGS = FaultTestCase.NODE_ARGS + " --scrub-interval 0"

    def scrub(self):
        r = self.cluster.snapctl("cluster", "scrub", keyfile=None)
        for k in ("checked", "corrupt", "repaired"):
            self.assertIsInstance(r.get(k), int, r)
        return r

    def test_bitflip(self):
        c = self.cluster
        c.disk_create("vol", "64M")
        img = self.make_img("vol.img", 64, seed=5)
        self.take("vol", img)
        r0 = self.scrub()
        self.assertEqual(r0["corrupt"], 0, r0)
        self.assertGreater(r0["checked"], 0, r0)
        self.metric("scrub_checked", r0["checked"])

        # 1. one flipped byte on one node, found and repaired by scrub
        node = c.node("zone-a-n1")
        recs = records(node["data_dir"])
        self.assertTrue(recs, "no records on zone-a-n1")
        bid, (path, poff, length) = sorted(recs.items())[len(recs) // 2]
        self.assertGreater(length, 1024)
        flip(path, poff + length // 2)
        r1 = self.scrub()
        self.metric("scrub1", r1)
        self.assertGreaterEqual(r1["corrupt"], 1, r1)
        self.assertGreaterEqual(r1["repaired"], 1, r1)
        r2 = self.scrub()
        self.metric("scrub2", r2)
        self.assertEqual(r2["corrupt"], 0, r2)
        self.check_all_restore()
        self.check_all_restore(zone="zone-a")

        # 2. flipped on two replicas, no scrub: restores must fail over
        a = {k: v for k, v in records(c.node("zone-a-n1")["data_dir"]).items()}
        a.update(records(c.node("zone-a-n2")["data_dir"]))
        b = {}
        for n in c.zone_nodes("zone-b"):
            b.update(records(c.node(n)["data_dir"]))
        common = sorted(set(a) & set(b))
        self.assertGreaterEqual(len(common), 8, "too few blocks on both zone-a and zone-b")
        victims = common[:: max(1, len(common) // 16)][:16]
        for bid in victims:
            for recs in (a, b):
                path, poff, length = recs[bid]
                flip(path, poff + length // 2)
        self.metric("blocks_flipped_on_two_replicas", len(victims))
        self.check_all_restore(zone="zone-a")
        self.check_all_restore(zone="zone-b")
        self.check_all_restore()

        r3 = self.scrub()
        self.metric("scrub3", r3)
        self.assertGreaterEqual(r3["corrupt"], 2 * len(victims), r3)
        self.assertGreaterEqual(r3["repaired"], 2 * len(victims), r3)
        r4 = self.scrub()
        self.assertEqual(r4["corrupt"], 0, r4)
        self.check_after_case()


if __name__ == "__main__":
    main()
