#!/usr/bin/env python3
"""Incremental snapshots: changing ~1% of an image sends ~1% new bytes, and
both snapshots restore to their own image."""
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from szharness import MiB, KiB, ClusterTestCase, make_image, overwrite_random, main  # noqa: E402

BS = 64 * KiB
SIZE = 48 * MiB
SPEC = [("random", 24 * MiB), ("zero", 8 * MiB), ("text", 8 * MiB), ("random", 8 * MiB)]
# three block-aligned runs inside the random regions: 3 + 2 + 3 blocks = 512 KiB (~1.04%)
CHANGES = [(1 * MiB, 3 * BS), (13 * MiB + 5 * BS, 2 * BS), (42 * MiB + 7 * BS, 3 * BS)]
CHANGED_BLOCKS = 8


class Incremental(ClusterTestCase):
    def test_incremental(self):
        c = self.cluster
        c.disk_create("inc", "48M", block_size="64K")
        img = c.path("inc.img")
        make_image(img, SPEC)
        first = c.path("inc.img.v1")
        shutil.copyfile(img, first)

        s1 = c.snapshot("inc", img, name="v1")
        self.assertSnapJSON(s1, "inc", SIZE)
        self.assertEqual(s1["blocks"], SIZE // BS)

        overwrite_random(img, CHANGES)
        self.assertEqual(os.path.getsize(img), SIZE)
        s2 = c.snapshot("inc", img, name="v2")
        self.assertSnapJSON(s2, "inc", SIZE)
        self.assertNotEqual(s1["id"], s2["id"])
        self.assertEqual(s2["blocks"], SIZE // BS)
        self.assertEqual(s2["new_blocks"], CHANGED_BLOCKS)
        self.assertGreater(s2["new_bytes"], 0)
        self.assertGreaterEqual(s2["new_bytes"], 0.005 * SIZE, s2)
        self.assertLessEqual(s2["new_bytes"], 0.025 * SIZE, s2)

        listed = c.snapctl("snapshot", "list", "inc", keyfile=None)["snapshots"]
        self.assertEqual(sorted(s["id"] for s in listed), sorted([s1["id"], s2["id"]]))

        r1 = c.path("inc.r1")
        r2 = c.path("inc.r2")
        c.restore(s1["id"], r1)
        c.restore(s2["id"], r2)
        self.assertSameFile(first, r1)
        self.assertSameFile(img, r2)


if __name__ == "__main__":
    main()
