#!/usr/bin/env python3
"""deploy/local-cluster.sh: up writes cluster.env/nodes.tsv/coordinator.pid,
the cluster status is complete, blocks land on R nodes, down stops exactly
its pids, data survives a down/up cycle, restarts of single daemons work,
and up refuses a running DIR or a busy port."""
import os
import signal
import socket
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from szharness import (MiB, Cluster, make_image, pid_alive, poll, run,  # noqa: E402
                       BIN, SNAPCTL, main, parse_one_json, pick_port_base)

ZONES, NPZ, R = 3, 2, 3


def wait_dead(pid, timeout=10):
    return poll(lambda: pid_alive(pid), lambda alive: not alive, timeout=timeout, interval=0.1)


class LocalCluster(unittest.TestCase):
    maxDiff = 4000
    snap = None
    img = None

    def need_snap(self):
        if self.snap is None:
            self.skipTest("the snapshot step failed")

    @classmethod
    def setUpClass(cls):
        for b in ("snapcoord", "snapnode", "snapctl"):
            if not os.access(os.path.join(BIN, b), os.X_OK):
                raise AssertionError("missing binary %s (set SNAPZONE_BIN)" % os.path.join(BIN, b))
        cls.c = Cluster(ZONES, NPZ, R, keygen=False)
        cls.addClassCleanup(cls.c.close)

    def setUp(self):
        self.c = type(self).c

    def check_nodes_tsv(self, c):
        with open(os.path.join(c.dir, "nodes.tsv")) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines[0], "id\tzone\tendpoint\tpid\tdata_dir")
        rows = [l.split("\t") for l in lines[1:] if l]
        self.assertEqual(len(rows), ZONES * NPZ)
        want_ids = ["zone-%s-n%d" % (z, k) for z in "abc" for k in range(1, NPZ + 1)]
        self.assertEqual(sorted(r[0] for r in rows), sorted(want_ids))
        eps = set()
        for r in rows:
            self.assertEqual(len(r), 5, r)
            nid, zone, ep, pid, data = r
            self.assertTrue(nid.startswith(zone + "-n"), r)
            self.assertRegex(ep, r"^tcp://127\.0\.0\.1:\d+$")
            port = int(ep.rsplit(":", 1)[1])
            self.assertTrue(c.port_base < port <= c.port_base + ZONES * NPZ, r)
            eps.add(ep)
            self.assertTrue(pid_alive(int(pid), "snapnode"), "node %s pid %s not alive" % (nid, pid))
            self.assertEqual(os.path.realpath(data), os.path.realpath(os.path.join(c.dir, "nodes", nid)))
            self.assertTrue(os.path.isdir(data))
        self.assertEqual(len(eps), ZONES * NPZ)
        # zone-major order: zone-a-n1 gets port base+1, ...
        byid = {r[0]: r for r in rows}
        self.assertEqual(byid["zone-a-n1"][2], "tcp://127.0.0.1:%d" % (c.port_base + 1))
        return rows

    def test_1_up(self):
        c = self.c
        p = c.up()
        line = "SNAPZONE_COORDINATOR=tcp://127.0.0.1:%d" % c.port_base
        self.assertIn(line, p.stdout.splitlines())
        with open(os.path.join(c.dir, "cluster.env")) as f:
            self.assertIn(line, f.read().splitlines())
        self.check_nodes_tsv(c)
        self.assertTrue(pid_alive(c.coordinator_pid(), "snapcoord"))
        self.assertTrue(os.path.isfile(os.path.join(c.dir, "cluster.conf")))
        for n in c.nodes():
            self.assertTrue(os.path.isfile(os.path.join(c.dir, "logs", n["id"] + ".log")))

    def test_2_status(self):
        c = self.c
        st = c.status()
        for k in ("epoch", "replicas", "zones", "nodes", "under_replicated_blocks"):
            self.assertIn(k, st)
        self.assertIsInstance(st["epoch"], int)
        self.assertEqual(st["replicas"], R)
        self.assertEqual(sorted(st["zones"]), ["zone-a", "zone-b", "zone-c"])
        self.assertEqual(st["under_replicated_blocks"], 0)
        self.assertEqual(len(st["nodes"]), ZONES * NPZ)
        tsv = {n["id"]: n for n in c.nodes()}
        for n in st["nodes"]:
            for k in ("id", "zone", "endpoint", "state", "blocks", "stored_bytes"):
                self.assertIn(k, n)
            self.assertEqual(n["state"], "up", n)
            self.assertIn(n["id"], tsv)
            self.assertEqual(n["zone"], tsv[n["id"]]["zone"])
            self.assertEqual(n["endpoint"], tsv[n["id"]]["endpoint"])
        # the script's status command prints the same JSON
        p = c.script("status", "--dir", c.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(parse_one_json(p.stdout)["nodes"]), ZONES * NPZ)
        # snapctl reads SNAPZONE_COORDINATOR from the environment (cluster.env)
        env = dict(os.environ)
        with open(os.path.join(c.dir, "cluster.env")) as f:
            for l in f.read().splitlines():
                k, _, v = l.partition("=")
                env[k] = v
        env.pop("SNAPZONE_KEYFILE", None)
        p = run([SNAPCTL, "cluster", "status", "--json"], env=env)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(parse_one_json(p.stdout)["nodes"]), ZONES * NPZ)

    def test_3_snapshot_spreads(self):
        c = self.c
        c.keyfile = c.keygen("lc.key")
        img = c.path("lc.img")
        make_image(img, [("random", 6 * MiB), ("zero", 1 * MiB), ("text", 1 * MiB)])
        c.disk_create("lc", "8M", block_size="64K")
        snap = c.snapshot("lc", img)
        self.assertGreater(snap["new_blocks"], 100)
        st = c.wait_blocks_total(R * snap["new_blocks"])
        self.assertEqual(sum(n["blocks"] for n in st["nodes"]), R * snap["new_blocks"], st)
        self.assertEqual(st["under_replicated_blocks"], 0, st)
        for n in st["nodes"]:
            self.assertGreater(n["stored_bytes"], 0, n)
            self.assertGreater(n["blocks"], 0, n)
        # each zone holds one copy of every block
        for z in ("zone-a", "zone-b", "zone-c"):
            self.assertEqual(sum(n["blocks"] for n in st["nodes"] if n["zone"] == z),
                             snap["new_blocks"], "zone %s" % z)
        type(self).snap = snap
        type(self).img = img

    def test_4_restart_node(self):
        c = self.c
        node = c.nodes()[2]
        os.kill(node["pid"], signal.SIGTERM)
        self.assertFalse(wait_dead(node["pid"]), "node did not exit on SIGTERM")
        if self.snap is not None:
            # every block has R copies in R zones: a restore works with a node down
            out = c.path("lc.r-node-down")
            c.restore(self.snap["id"], out)
            with open(out, "rb") as f1, open(self.img, "rb") as f2:
                self.assertTrue(f1.read() == f2.read(), "restore with a node down differs")
        p = c.script("start-node", "--dir", c.dir, node["id"])
        self.assertEqual(p.returncode, 0, p.stderr + c.log_tails())
        new = {n["id"]: n for n in c.nodes()}[node["id"]]
        self.assertNotEqual(new["pid"], node["pid"])
        self.assertTrue(pid_alive(new["pid"], "snapnode"))
        self.assertEqual(new["endpoint"], node["endpoint"])
        self.check_nodes_tsv(c)
        st = c.status()
        self.assertEqual({n["id"]: n["state"] for n in st["nodes"]}[node["id"]], "up")
        # starting a running node is refused
        p = c.script("start-node", "--dir", c.dir, node["id"])
        self.assertEqual(p.returncode, 1)
        p = c.script("start-node", "--dir", c.dir, "zone-q-n9")
        self.assertEqual(p.returncode, 1)

    def test_5_restart_coordinator(self):
        c = self.c
        old = c.coordinator_pid()
        os.kill(old, signal.SIGTERM)
        self.assertFalse(wait_dead(old), "coordinator did not exit on SIGTERM")
        p = c.script("start-coordinator", "--dir", c.dir)
        self.assertEqual(p.returncode, 0, p.stderr + c.log_tails())
        new = c.coordinator_pid()
        self.assertNotEqual(new, old)
        self.assertTrue(pid_alive(new, "snapcoord"))
        # catalog survived; nodes re-register
        st = poll(c.status, lambda s: len(s["nodes"]) == ZONES * NPZ
                  and all(n["state"] == "up" for n in s["nodes"]), timeout=15)
        self.assertTrue(all(n["state"] == "up" for n in st["nodes"]), st)
        self.need_snap()
        snaps = c.snapctl("snapshot", "list", "lc", keyfile=None)["snapshots"]
        self.assertEqual([s["id"] for s in snaps], [self.snap["id"]])

    def test_6_up_refuses_running(self):
        c = self.c
        before = c.pids()
        p = c.script("up", "--dir", c.dir, "--port-base", str(pick_port_base(ZONES * NPZ + 1)))
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertEqual(c.pids(), before)
        for kind, ident, pid in before:
            self.assertTrue(pid_alive(pid, kind), ident)

    def test_7_up_refuses_busy_port(self):
        other = Cluster(1, 1, 1, keygen=False)
        self.addCleanup(other.close)
        base = pick_port_base(2)
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", base + 1))
        s.listen(1)
        try:
            p = other.script("up", "--dir", other.dir, "--zones", "1", "--nodes-per-zone", "1",
                             "--replicas", "1", "--port-base", str(base))
        finally:
            s.close()
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertIn(str(base + 1), p.stderr)
        self.assertFalse(os.path.exists(os.path.join(other.dir, "cluster.env")))

    def test_8_usage_errors(self):
        c = self.c
        for args in ([], ["bogus"], ["up"], ["up", "--dir"], ["up", "--dir", c.dir, "--zones", "x"],
                     ["start-node", "--dir", c.dir], ["down", "--dir", c.dir, "--frob"]):
            with self.subTest(args=args):
                p = c.script(*args)
                self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
                self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)

    def test_9_down_and_up_again(self):
        c = self.c
        pids = c.pids()
        self.assertEqual(len(pids), ZONES * NPZ + 1)
        p = c.down()
        for kind, ident, pid in pids:
            self.assertFalse(pid_alive(pid), "%s %s still alive" % (kind, ident))
            self.assertIn(str(pid), p.stdout)
        self.assertEqual(len([l for l in p.stdout.splitlines() if "stopped" in l]), len(pids),
                         p.stdout)
        # down again: nothing to do, still success
        p = c.down()
        self.assertEqual(p.returncode, 0)

        p = c.up(port_base=c.port_base)
        self.assertIn("SNAPZONE_COORDINATOR=%s" % c.coordinator, p.stdout)
        self.check_nodes_tsv(c)
        for kind, ident, pid in c.pids():
            self.assertNotIn(pid, [x[2] for x in pids])
        st = c.status()
        self.assertTrue(all(n["state"] == "up" for n in st["nodes"]))
        self.need_snap()
        out = c.path("lc.r")
        c.restore(self.snap["id"], out)
        self.assertEqual(os.path.getsize(out), os.path.getsize(self.img))
        with open(out, "rb") as a, open(self.img, "rb") as b:
            self.assertTrue(a.read() == b.read(), "restored data differs after down/up")


if __name__ == "__main__":
    main()
