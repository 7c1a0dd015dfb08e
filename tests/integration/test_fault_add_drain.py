#!/usr/bin/env python3
"""Membership at run time: add a node, drain one, remove it.

After `local-cluster.sh add-node --zone zone-b`, rebalancing gives the new
node part of the blocks (about its share: 1/3 of zone-b's copies, i.e. 1/9
of all copies, since placement picks zones first, then nodes) and surplus
copies are removed; after `snapctl node drain zone-a-n1` that node's blocks
fall to 0, nothing is under-replicated, `node remove` succeeds and the node
is gone from cluster status; every snapshot restores byte-identical."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from szharness import FaultTestCase, poll, main  # noqa: E402

ADD_ZONE = "zone-b"
DRAIN = "zone-a-n1"


class AddDrain(FaultTestCase):
    CASE = "add_drain"

    def blocks(self, st=None):
        st = st or self.cluster.status()
        return {n["id"]: int(n["blocks"]) for n in st["nodes"]}

    def wait_stable(self, pred, what):
        """Poll until pred(blocks) holds and the per-node counts stay the same
        for 2 s (repair done, heartbeats caught up); return (seconds, blocks)."""
        t0 = time.monotonic()
        last, since = None, time.monotonic()
        while True:
            b = self.blocks()
            if b != last:
                last, since = b, time.monotonic()
            elif pred(b) and time.monotonic() - since >= 2.0:
                return since - t0, b
            if time.monotonic() - t0 > self.REPAIR_BOUND_S:
                raise AssertionError("%s: not reached within %.0f s: %s" % (what, self.REPAIR_BOUND_S, b))
            time.sleep(0.25)

    def test_add_and_drain(self):
        c = self.cluster
        c.disk_create("vol", "96M")
        s = self.take("vol", self.make_img("vol.img", 96, seed=8))
        distinct = s["new_blocks"]
        R = self.REPLICAS
        _, before = self.wait_stable(lambda b: sum(b.values()) == R * distinct, "initial placement")
        self.metric("copies_total", sum(before.values()))

        # add a node: it receives its share by rebalancing
        w = self.watch()
        t_add = time.monotonic()
        new = c.add_node(ADD_ZONE)
        self.assertEqual(new, "zone-b-n3")
        secs, after = self.wait_stable(
            lambda b: b.get(new, 0) > 0 and sum(b.values()) == R * distinct, "rebalance after add")
        self.metric("rebalance_after_add_s", secs)
        self.wait_repaired("under_rep_zero_after_add", since=t_add)
        moved = after[new]
        total = sum(after.values())
        self.metric("blocks_moved_to_new_node", moved)
        self.metric("copies_total_after_add", total)
        self.metric("moved_fraction", moved / total)
        self.metric("moved_fraction_ideal", 1.0 / 9)
        zone_b = sum(v for k, v in after.items() if k.startswith(ADD_ZONE))
        self.metric("moved_fraction_of_zone", moved / zone_b)
        st = c.status()
        new_row = [n for n in st["nodes"] if n["id"] == new][0]
        self.assertGreater(int(new_row["stored_bytes"]), 0, new_row)
        # about its share: 1/3 of zone-b's copies (one replica per zone), with slack
        self.assertGreater(moved / zone_b, 0.15, after)
        self.assertLess(moved / zone_b, 0.55, after)
        # only blocks of zone-b moved: the other zones kept their counts
        for k in before:
            if not k.startswith(ADD_ZONE):
                self.assertEqual(after[k], before[k], (before, after))
        self.check_all_restore()

        # drain an old node: its blocks fall to 0
        t_drain = time.monotonic()
        c.snapctl("node", "drain", DRAIN, keyfile=None)
        st = poll(c.status, lambda s: {n["id"]: n for n in s["nodes"]}[DRAIN]["state"] == "draining",
                  timeout=10)
        self.assertEqual({n["id"]: n for n in st["nodes"]}[DRAIN]["state"], "draining", st)
        secs, drained = self.wait_stable(
            lambda b: b[DRAIN] == 0 and sum(b.values()) == R * distinct, "drain")
        self.metric("drain_to_zero_s", secs)
        self.metric("blocks_moved_by_drain", before[DRAIN])
        self.wait_repaired("under_rep_zero_after_drain", since=t_drain)
        self.check_all_restore()

        # remove it (its daemon still running): gone from the status, and it
        # stays gone for 2 s (8 heartbeats) - a removed node must not rejoin
        # as a fresh node that data is placed on again
        c.snapctl("node", "remove", DRAIN, keyfile=None)
        st = c.status()
        self.assertNotIn(DRAIN, [n["id"] for n in st["nodes"]], st)
        t_rm = time.monotonic()
        while time.monotonic() - t_rm < 2.0:
            st = c.status()
            self.assertNotIn(DRAIN, [n["id"] for n in st["nodes"]],
                             "removed node %s is back after %.1f s: %s" % (
                                 DRAIN, time.monotonic() - t_rm, st))
            time.sleep(0.25)
        c.kill_node(DRAIN, sig=15)  # the operator stops the removed daemon
        time.sleep(1.0)
        st = c.status()
        self.assertNotIn(DRAIN, [n["id"] for n in st["nodes"]], st)
        self.assertEqual(len(st["nodes"]), 6, st)
        self.check_after_case_without(DRAIN)
        self.check_no_spurious(w, set())

    def check_after_case_without(self, removed):
        """check_after_case, with the removed node's row no longer expected up."""
        c = self.cluster
        c.wait_states({r["id"]: "up" for r in c.nodes() if r["id"] != removed}, timeout=30)
        self.wait_repaired("final_under_rep_zero")
        self.check_listed()
        self.check_all_restore()
        self.assertLessEqual(c.max_call_ratio(), 1.0)
        self.metric("snapctl_calls", len(c.calls))


if __name__ == "__main__":
    main()
