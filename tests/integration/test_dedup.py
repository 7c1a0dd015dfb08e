#!/usr/bin/env python3
"""Deduplication: a repeated block is stored once; a second disk with the
same content sends nothing and stores nothing new."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from szharness import MiB, KiB, ClusterTestCase, make_image, main  # noqa: E402

BS = 64 * KiB
SIZE = 8 * MiB
SPEC = [("random", 2 * MiB), ("repeat", 4 * MiB, BS), ("random", 2 * MiB)]
UNIQUE = 2 * MiB // BS + 1 + 2 * MiB // BS  # 65


class Dedup(ClusterTestCase):
    def test_dedup(self):
        c = self.cluster
        img = c.path("dd.img")
        make_image(img, SPEC)
        c.disk_create("dd-one", "8M", block_size="64K")
        c.disk_create("dd-two", "8M", block_size="64K")

        s1 = c.snapshot("dd-one", img)
        self.assertSnapJSON(s1, "dd-one", SIZE)
        self.assertEqual(s1["blocks"], SIZE // BS)
        self.assertEqual(s1["new_blocks"], UNIQUE, "the repeated block must count once")
        self.assertGreaterEqual(s1["new_bytes"], UNIQUE * BS - BS)  # random: incompressible
        self.assertLessEqual(s1["new_bytes"], UNIQUE * (BS + 64))

        R = self.REPLICAS
        st = c.wait_blocks_total(R * UNIQUE, timeout=5)
        self.assertEqual(sum(n["blocks"] for n in st["nodes"]), R * UNIQUE, st)
        base = c.stable_stored_bytes()
        self.assertGreater(base, UNIQUE * BS * R * 0.9)

        s2 = c.snapshot("dd-two", img)
        self.assertSnapJSON(s2, "dd-two", SIZE)
        self.assertEqual(s2["blocks"], SIZE // BS)
        self.assertEqual(s2["new_blocks"], 0)
        self.assertEqual(s2["new_bytes"], 0)

        # the nodes heartbeat stats every second: watch 5 s of them
        seen = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            st = c.status()
            seen.append((sum(n["stored_bytes"] for n in st["nodes"]),
                         sum(n["blocks"] for n in st["nodes"])))
            time.sleep(0.5)
        self.assertEqual(set(seen), {(base, R * UNIQUE)},
                         "stored_bytes/blocks changed after a fully deduplicated snapshot")

        out = c.path("dd.r2")
        c.restore(s2["id"], out)
        self.assertSameFile(img, out)


if __name__ == "__main__":
    main()
