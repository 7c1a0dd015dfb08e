#!/usr/bin/env python3
"""Clones: `disk clone` is metadata only; the clone shares the source's
blocks, then diverges incrementally; both restore to their own images."""
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from szharness import MiB, KiB, ClusterTestCase, make_image, overwrite_random, main  # noqa: E402

BS = 64 * KiB
SIZE = 16 * MiB
SPEC = [("random", 8 * MiB), ("zero", 4 * MiB), ("text", 4 * MiB)]
CHANGES = [(2 * MiB, 2 * BS), (6 * MiB + 3 * BS, BS)]  # 3 blocks = 192 KiB, ~1.2%


class Clone(ClusterTestCase):
    def watch_stored(self, expect, seconds=3.0):
        seen = set()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            seen.add(self.cluster.stored_bytes())
            time.sleep(0.5)
        self.assertEqual(seen, {expect}, "stored_bytes changed")

    def test_clone(self):
        c = self.cluster
        a = c.disk_create("cl-a", "16M", block_size="64K", zone="zone-c")
        img = c.path("cl.img")
        make_image(img, SPEC)
        orig = c.path("cl.img.orig")
        shutil.copyfile(img, orig)

        sa = c.snapshot("cl-a", img)
        self.assertSnapJSON(sa, "cl-a", SIZE)
        c.wait_blocks_total(self.REPLICAS * sa["new_blocks"], timeout=5)
        stored = c.stable_stored_bytes()
        self.assertGreater(stored, 0)

        cl = c.snapctl("disk", "clone", sa["id"], "cl-b", keyfile=None)
        self.assertEqual(cl.get("name"), "cl-b")
        self.assertEqual(cl.get("source_snapshot"), sa["id"])
        self.watch_stored(stored)

        disks = {d["name"]: d for d in c.snapctl("disk", "list", keyfile=None)["disks"]}
        self.assertIn("cl-a", disks)
        self.assertIn("cl-b", disks)
        b = disks["cl-b"]
        self.assertEqual(b.get("source_snapshot"), sa["id"])
        self.assertEqual(b["size"], a["size"])
        self.assertEqual(b["block_size"], a["block_size"])
        self.assertFalse(disks["cl-a"].get("source_snapshot"))

        sb1 = c.snapshot("cl-b", img)
        self.assertSnapJSON(sb1, "cl-b", SIZE)
        self.assertEqual(sb1["new_bytes"], 0)
        self.assertEqual(sb1["new_blocks"], 0)
        self.watch_stored(stored)

        overwrite_random(img, CHANGES)
        sb2 = c.snapshot("cl-b", img)
        self.assertSnapJSON(sb2, "cl-b", SIZE)
        self.assertEqual(sb2["new_blocks"], 3)
        self.assertGreater(sb2["new_bytes"], 0)
        self.assertLessEqual(sb2["new_bytes"], 0.025 * SIZE)

        for snap, want, name in ((sa, orig, "a"), (sb1, orig, "b1"), (sb2, img, "b2")):
            out = c.path("cl.r-" + name)
            c.restore(snap["id"], out)
            self.assertSameFile(want, out)

        # the source disk is unaffected by the clone's new snapshot
        listed = c.snapctl("snapshot", "list", "cl-a", keyfile=None)["snapshots"]
        self.assertEqual([s["id"] for s in listed], [sa["id"]])


if __name__ == "__main__":
    main()
