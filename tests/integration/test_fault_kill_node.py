#!/usr/bin/env python3
"""Fault: kill -9 of one storage node while `snapshot create` runs.

The snapshot either commits or fails with one stderr line and is not listed
(then a retry commits); the coordinator declares the node down; repair
brings under_replicated_blocks back to 0; the node, restarted with
`local-cluster.sh start-node`, rejoins with its data; under_replicated_blocks
is 0 again and every snapshot restores byte-identical."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from szharness import FaultTestCase, parse_one_json, main  # noqa: E402

VICTIM = "zone-b-n1"


class KillNode(FaultTestCase):
    CASE = "kill_node"

    def test_kill_node_during_snapshot(self):
        c = self.cluster
        c.disk_create("base", "32M")
        self.take("base", self.make_img("base.img", 32, seed=1))

        c.disk_create("vol", "96M")
        img = self.make_img("vol.img", 96, seed=2)
        w = self.watch()
        proc = c.snapctl_popen("snapshot", "create", "vol", "--file", img)
        time.sleep(0.4)
        was_running = proc.running()
        t_kill = time.monotonic()
        c.kill_node(VICTIM)
        r = proc.wait()
        self.metric("snapshot_running_at_kill", was_running)
        self.metric("snapshot_during_kill_rc", r.returncode)
        self.metric("snapshot_during_kill_s", proc.elapsed)
        if r.returncode == 0:
            self.remember(parse_one_json(r.stdout, "snapshot create"), img)
        else:
            line = self.assertOneLineError(r, "snapshot create during kill")
            self.metric("snapshot_during_kill_error", line)
            self.check_listed()  # nothing half-made is listed
            self.take("vol", img)  # the retry commits (degraded if need be)
        self.check_listed()

        # failure detection: declared down within suspect + down + slack
        c.wait_states({VICTIM: "down"}, timeout=(self.SUSPECT_MS + self.DOWN_MS) / 1000.0 + 10)
        t_down = w.first(VICTIM, "down") or time.monotonic()
        self.metric("detect_down_s", t_down - t_kill)
        # survivors re-replicate the lost copies
        self.wait_repaired("repair_after_node_loss", since=t_down)
        self.check_all_restore()
        listed = self.listed()
        for sid in self.expected:
            self.assertTrue(listed[sid]["fully_protected"], listed[sid])

        # the node comes back with its data and rejoins
        t_restart = time.monotonic()
        c.start_node(VICTIM)
        c.wait_all_up(timeout=30)
        self.metric("rejoin_s", time.monotonic() - t_restart)
        self.wait_repaired("settle_after_rejoin", since=t_restart)
        st = c.status()
        node = [n for n in st["nodes"] if n["id"] == VICTIM][0]
        self.assertGreater(int(node["blocks"]), 0, "restarted node lost its data: %s" % node)
        self.check_after_case()
        self.check_no_spurious(w, {VICTIM})


if __name__ == "__main__":
    main()
