#!/usr/bin/env python3
"""Fault: one zone's links go down (local-cluster.sh cut-zone) in the middle
of a restore that prefers that zone.

The restore fails over to the other zones and completes byte-identical
within its time bound; while the zone is cut its nodes are declared down and
restores still work; after heal-zone every node is up again and
under_replicated_blocks returns to 0."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from szharness import FaultTestCase, main, sha256  # noqa: E402

CUT = "zone-b"


class CutZone(FaultTestCase):
    CASE = "cut_zone"

    def test_cut_zone_mid_restore(self):
        c = self.cluster
        c.disk_create("vol", "96M")
        img = self.make_img("vol.img", 96, seed=4)
        snap = self.take("vol", img)
        digest = self.expected[snap["id"]][0]
        victims = c.zone_nodes(CUT)
        w = self.watch()

        # Start a restore reading from the zone about to be cut, and cut it
        # while the restore runs (retried with shorter delays if the restore
        # was already done by the time the links were down).
        out = c.path("restore.img")
        cut_while_running = False
        for delay in (0.15, 0.05, 0.0):
            proc = c.snapctl_popen("disk", "restore", snap["id"], "--file", out, "--zone", CUT)
            time.sleep(delay)
            t_cut = time.monotonic()
            c.cut_zone(CUT)
            cut_while_running = proc.running()
            r = proc.wait()
            self.assertEqual(r.returncode, 0, "restore across the cut failed: %s" % r.stderr)
            self.assertEqual(sha256(out), digest, "restore across the cut differs")
            self.metric("restore_across_cut_s", proc.elapsed)
            if cut_while_running:
                break
            c.heal_zone(CUT)
            c.wait_all_up(timeout=30)
        self.metric("cut_while_restore_running", cut_while_running)
        self.assertTrue(cut_while_running, "could not cut the zone while a restore was running")

        # while cut: declared down, and restores (preferring it) still work
        c.wait_states({v: "down" for v in victims},
                      timeout=(self.SUSPECT_MS + self.DOWN_MS) / 1000.0 + 10)
        self.metric("detect_cut_down_s", max(w.first(v, "down", after=t_cut) or time.monotonic()
                                             for v in victims) - t_cut)
        t0 = time.monotonic()
        self.check_all_restore(zone=CUT)
        self.metric("restore_while_cut_s", time.monotonic() - t0)

        # heal: every node is up again, nothing under-replicated
        t_heal = time.monotonic()
        c.heal_zone(CUT)
        c.wait_all_up(timeout=30)
        self.metric("all_up_after_heal_s", time.monotonic() - t_heal)
        self.wait_repaired("under_rep_zero_after_heal", since=t_heal)
        self.check_all_restore(zone=CUT)
        self.check_after_case()
        self.check_no_spurious(w, set(victims))


if __name__ == "__main__":
    main()
