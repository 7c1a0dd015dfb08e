#!/usr/bin/env python3
"""Fault: kill -9 of the coordinator while `snapshot create` runs, restarted
with `local-cluster.sh start-coordinator` about a second later.

The snapshot either commits (the client retries its coordinator calls) or
fails with one stderr line and is not listed (then a retry commits); no
committed snapshot is lost; the nodes reconnect by themselves (all up in
cluster status); a new snapshot and restore work; every snapshot restores
byte-identical; under_replicated_blocks is 0."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from szharness import FaultTestCase, overwrite_random, parse_one_json, MiB, main  # noqa: E402


class KillCoordinator(FaultTestCase):
    CASE = "kill_coordinator"

    def test_kill_coordinator_during_snapshot(self):
        c = self.cluster
        c.disk_create("base", "32M")
        self.take("base", self.make_img("base.img", 32, seed=6))
        c.disk_create("vol", "96M")
        img = self.make_img("vol.img", 96, seed=7)

        proc = c.snapctl_popen("snapshot", "create", "vol", "--file", img)
        time.sleep(0.3)
        was_running = proc.running()
        t_kill = time.monotonic()
        c.kill_coordinator()
        time.sleep(1.0)
        c.start_coordinator()
        self.metric("coordinator_restart_s", time.monotonic() - t_kill)
        r = proc.wait()
        self.metric("snapshot_running_at_kill", was_running)
        self.metric("snapshot_during_kill_rc", r.returncode)
        self.metric("snapshot_during_kill_s", proc.elapsed)
        if r.returncode == 0:
            self.remember(parse_one_json(r.stdout, "snapshot create"), img)
        else:
            line = self.assertOneLineError(r, "snapshot create during coordinator kill")
            self.metric("snapshot_during_kill_error", line)
            self.check_listed()
            self.take("vol", img)
        self.check_listed()

        # the nodes reconnect by themselves
        t0 = time.monotonic()
        c.wait_all_up(timeout=30)
        self.metric("nodes_all_up_after_restart_s", time.monotonic() - t0)
        st = c.status()
        self.assertEqual(len(st["nodes"]), 6, st)

        # a new snapshot and a restore work
        overwrite_random(img, [(i * 8 * MiB, 512 * 1024) for i in range(12)])
        self.take("vol", img)
        self.check_all_restore(zone="zone-c")
        self.check_after_case()


if __name__ == "__main__":
    main()
