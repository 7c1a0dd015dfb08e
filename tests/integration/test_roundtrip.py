#!/usr/bin/env python3
"""Round trip: keygen, disk create, snapshot of a mixed ~48 MiB image, list,
restore (default zone and --zone zone-b) byte-identical and sparse."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from szharness import (MiB, KiB, SNAPCTL, ClusterTestCase, make_image, allocated_bytes,  # noqa: E402
                       main, parse_one_json, run)

BS = 256 * KiB  # the default block size
SPEC = [
    ("random", 12 * MiB),
    ("zero", 8 * MiB),           # a zero region much larger than a block
    ("repeat", 8 * MiB, BS),     # one block repeated 32 times
    ("random", 4 * MiB),
    ("text", 8 * MiB),
    ("zero", 4 * MiB),
    ("random", 4 * MiB),
]
SIZE = 48 * MiB
RANDOM = 20 * MiB
ZEROS = 12 * MiB
UNIQUE_BLOCKS = RANDOM // BS + 1 + (8 * MiB) // BS  # random + one repeated + text


class RoundTrip(ClusterTestCase):
    state = {}

    def need(self, key):
        if key not in self.state:
            self.skipTest("an earlier step failed")
        return self.state[key]

    def test_1_keygen(self):
        c = self.cluster
        path = c.path("rt.key")
        out = c.snapctl("keygen", path, keyfile=None)
        self.assertEqual(out.get("keyfile"), path)
        self.assertRegex(out.get("fingerprint", ""), r"^[0-9a-f]{16,}$")
        self.assertTrue(os.path.isfile(path))
        self.state["key"] = path

    def test_2_disk_create(self):
        c = self.cluster
        d = c.disk_create("rt-disk", "64M", zone="zone-a")
        self.assertEqual(d, {**d, "name": "rt-disk", "size": 64 * MiB, "block_size": BS,
                             "zone": "zone-a"})
        self.state["disk"] = "rt-disk"

    def test_3_snapshot(self):
        c = self.cluster
        key = self.need("key")
        disk = self.need("disk")
        img = c.path("rt.img")
        make_image(img, SPEC)
        self.assertEqual(os.path.getsize(img), SIZE)
        t0 = time.time()
        snap = c.snapshot(disk, img, name="first", keyfile=key)
        self.assertSnapJSON(snap, disk, SIZE)
        self.assertEqual(snap["blocks"], SIZE // BS)
        self.assertEqual(snap["new_blocks"], UNIQUE_BLOCKS,
                         "zero blocks must not count, the repeated block counts once")
        self.assertLess(snap["new_bytes"], snap["logical_bytes"])
        # random data cannot shrink; zero and repeated blocks are not sent
        self.assertGreaterEqual(snap["new_bytes"], RANDOM)
        self.assertLessEqual(snap["new_bytes"], UNIQUE_BLOCKS * (BS + 64))
        self.state.update(img=img, snap=snap, t0=t0)

    def test_4_snapshot_list(self):
        c = self.cluster
        snap = self.need("snap")
        for args in (("snapshot", "list"), ("snapshot", "list", "rt-disk")):
            out = c.snapctl(*args, keyfile=None)
            self.assertIsInstance(out.get("snapshots"), list)
            mine = [s for s in out["snapshots"] if s.get("id") == snap["id"]]
            self.assertEqual(len(mine), 1, out)
            s = mine[0]
            self.assertEqual(s["disk"], "rt-disk")
            self.assertEqual(s["name"], "first")
            self.assertEqual(s["logical_bytes"], SIZE)
            self.assertIsInstance(s["created"], int)
            self.assertLessEqual(abs(s["created"] - self.state["t0"]), 120)
        c.disk_create("rt-empty", "1M")
        out = c.snapctl("snapshot", "list", "rt-empty", keyfile=None)
        self.assertEqual(out.get("snapshots"), [])

    def test_5_restore(self):
        c = self.cluster
        snap = self.need("snap")
        img = self.state["img"]
        out_path = c.path("rt.restored")
        r = c.restore(snap["id"], out_path, keyfile=self.state["key"])
        self.assertEqual(r.get("bytes"), SIZE, r)
        self.assertIsInstance(r.get("seconds"), (int, float))
        self.assertGreaterEqual(r["seconds"], 0)
        self.assertSameFile(img, out_path)
        alloc = allocated_bytes(out_path)
        self.assertLess(alloc, SIZE - ZEROS // 2,
                        "restored file is not sparse: %d bytes allocated of %d" % (alloc, SIZE))

    def test_6_restore_zone_b(self):
        c = self.cluster
        snap = self.need("snap")
        out_path = c.path("rt.restored-b")
        r = c.restore(snap["id"], out_path, zone="zone-b", keyfile=self.state["key"])
        self.assertEqual(r.get("bytes"), SIZE, r)
        self.assertSameFile(self.state["img"], out_path)

    def test_7_disk_list(self):
        c = self.cluster
        self.need("disk")
        out = c.snapctl("disk", "list", keyfile=None)
        self.assertIsInstance(out.get("disks"), list)
        d = [x for x in out["disks"] if x.get("name") == "rt-disk"]
        self.assertEqual(len(d), 1, out)
        self.assertEqual(d[0]["size"], 64 * MiB)
        self.assertEqual(d[0]["block_size"], BS)
        self.assertEqual(d[0]["zone"], "zone-a")
        self.assertFalse(d[0].get("source_snapshot"), "not a clone")

    def test_8_env_and_flag_order(self):
        # SNAPZONE_COORDINATOR / SNAPZONE_KEYFILE instead of flags, and
        # global flags placed before the command
        c = self.cluster
        snap = self.need("snap")
        out_path = c.path("rt.restored-env")
        env = dict(os.environ, SNAPZONE_COORDINATOR=c.coordinator,
                   SNAPZONE_KEYFILE=self.state["key"])
        p = run([SNAPCTL, "--json", "disk", "restore", snap["id"], "--file", out_path], env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(parse_one_json(p.stdout).get("bytes"), SIZE)
        self.assertSameFile(self.state["img"], out_path)
        # a --keyfile flag overrides SNAPZONE_KEYFILE
        env["SNAPZONE_KEYFILE"] = c.path("no-such.key")
        out2 = c.path("rt.restored-flag")
        p = run([SNAPCTL, "--keyfile", self.state["key"], "disk", "restore", snap["id"],
                 "--json", "--file", out2], env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertSameFile(self.state["img"], out2)


if __name__ == "__main__":
    main()
