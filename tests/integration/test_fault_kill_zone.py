#!/usr/bin/env python3
"""Fault: kill -9 of every node of one zone.

The snapshot restores byte-identical from the other zones; `drill DISK
--fail-zone <dead zone>` verifies without using it; a new snapshot commits
while the zone is down (degraded write); repair re-spreads the copies over
the surviving zones (under_replicated_blocks -> 0); after the zone's nodes
restart, under_replicated_blocks is 0 again and both snapshots are fully
protected and restorable from the restarted zone."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from szharness import FaultTestCase, MiB, overwrite_random, poll, sha256, main  # noqa: E402

DEAD = "zone-a"


class KillZone(FaultTestCase):
    CASE = "kill_zone"

    def test_kill_zone(self):
        c = self.cluster
        c.disk_create("vol", "64M", zone="zone-b")
        img = self.make_img("vol.img", 64, seed=3)
        s1 = self.take("vol", img)
        self.assertEqual(self.listed()[s1["id"]]["restorable_zones"], ["zone-a", "zone-b", "zone-c"])

        victims = c.zone_nodes(DEAD)
        self.assertEqual(len(victims), 2)
        w = self.watch()
        t_kill = time.monotonic()
        for v in victims:
            c.kill_node(v)
        c.wait_states({v: "down" for v in victims}, timeout=(self.SUSPECT_MS + self.DOWN_MS) / 1000.0 + 10)
        t_down = max(w.first(v, "down") or time.monotonic() for v in victims)
        self.metric("detect_zone_down_s", t_down - t_kill)

        # restore from the survivors (also when asked to prefer the dead zone)
        self.check_all_restore()
        self.check_all_restore(zone=DEAD)

        # drill treating the dead zone as lost
        d = c.snapctl("drill", "vol", "--fail-zone", DEAD, "--file", c.path("drill.img"))
        self.assertIs(d["verified"], True, d)
        self.assertEqual(d["snapshot"], s1["id"])
        self.assertEqual(d["fail_zone"], DEAD)
        self.assertEqual(d["bytes"], 64 * MiB)
        self.assertNotIn(DEAD, d["zones_used"])
        self.assertTrue(d["zones_used"], d)
        self.metric("drill_rto_s", d["rto_seconds"])
        self.assertEqual(sha256(c.path("drill.img")), self.expected[s1["id"]][0])

        # a degraded write: a new snapshot commits while the zone is down
        overwrite_random(img, [(i * 4 * MiB, 256 * 1024) for i in range(16)])
        t_w = time.monotonic()
        s2 = self.take("vol", img)
        self.metric("degraded_snapshot_s", time.monotonic() - t_w)
        self.check_listed()

        # repair re-spreads copies over the surviving zones
        self.wait_repaired("repair_after_zone_loss", since=t_down)
        listed = self.listed()
        for sid in (s1["id"], s2["id"]):
            self.assertNotIn(DEAD, listed[sid]["restorable_zones"], listed[sid])
            self.assertEqual(sorted(listed[sid]["restorable_zones"]), ["zone-b", "zone-c"], listed[sid])
        self.check_all_restore()

        # the zone comes back
        t_back = time.monotonic()
        for v in victims:
            c.start_node(v)
        c.wait_all_up(timeout=30)
        self.wait_repaired("settle_after_zone_back", since=t_back)

        def ready():
            ls = self.listed()
            return all(ls[sid]["fully_protected"] is True and DEAD in ls[sid]["restorable_zones"]
                       for sid in (s1["id"], s2["id"])), ls
        ok, ls = poll(ready, lambda v: v[0], timeout=self.REPAIR_BOUND_S, interval=0.5)
        self.assertTrue(ok, ls)
        self.metric("fully_protected_after_zone_back_s", time.monotonic() - t_back)
        self.check_all_restore(zone=DEAD)
        self.check_after_case()
        self.check_no_spurious(w, set(victims))


if __name__ == "__main__":
    main()
