#!/usr/bin/env python3
"""Repair benchmark: how long a real local cluster (3 zones x 2 nodes, R=3,
default daemon timeouts) takes to get back to full redundancy.

  bench/repair_bench.py [--size 1G] [--runs 3] [--port-base 9300] [--out DIR]

Each run: a fresh cluster, a snapshot of a mkimage image, then
  node loss: kill -9 one node; measure the time to be declared down, and
  from the kill and from "down" until under_replicated_blocks is 0 again
  (blocks repaired / second = peak under-replicated / repair seconds);
  restart it and measure the time until surplus copies are gone (sum of
  node blocks back to 3 x distinct blocks);
  zone loss: kill -9 both nodes of zone-c; the same measurements;
  after each phase a restore must be byte-identical.
Prints one JSON line per run and a summary with medians.
"""
import argparse, hashlib, json, os, shutil, signal, statistics, subprocess, sys, tempfile, time

SRC = os.environ.get("SNAPZONE_SRC", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("SNAPZONE_BIN", os.path.join(SRC, "build"))
POLL = 0.1


def sh(*args, env=None, check=True):
    r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    if check and r.returncode != 0:
        sys.exit("repair_bench: %s failed: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Cluster:
    def __init__(self, work, port):
        self.dir = os.path.join(work, "cluster")
        self.env = dict(os.environ, SNAPZONE_BIN=BIN)
        sh("bash", os.path.join(SRC, "deploy/local-cluster.sh"), "up", "--dir", self.dir,
           "--port-base", str(port), env=self.env)
        self.env["SNAPZONE_COORDINATOR"] = "tcp://127.0.0.1:%d" % port
        self.env["SNAPZONE_KEYFILE"] = os.path.join(work, "key")

    def ctl(self, *args):
        return json.loads(sh(os.path.join(BIN, "snapctl"), "--json", *args, env=self.env))

    def nodes(self):
        rows = [l.rstrip("\n").split("\t") for l in open(os.path.join(self.dir, "nodes.tsv"))]
        return [dict(zip(rows[0], r)) for r in rows[1:]]

    def status(self):
        return self.ctl("cluster", "status")

    def down(self):
        sh("bash", os.path.join(SRC, "deploy/local-cluster.sh"), "down", "--dir", self.dir,
           env=self.env, check=False)


def wait(pred, limit):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        v = pred()
        if v:
            return time.monotonic() - t0, v
        time.sleep(POLL)
    return None, None


def phase(c, victims, distinct, img, work, label):
    """Kill victims, time detection and repair, restart, time surplus removal."""
    res = {}
    for v in victims:
        os.kill(int(v["pid"]), signal.SIGKILL)
    t_kill = time.monotonic()
    ids = {v["id"] for v in victims}
    peak = [0]

    def all_down():
        st = c.status()
        peak[0] = max(peak[0], st["under_replicated_blocks"])
        return all(n["state"] == "down" for n in st["nodes"] if n["id"] in ids)

    det, _ = wait(all_down, 60)
    t_down = time.monotonic()

    def repaired():
        st = c.status()
        peak[0] = max(peak[0], st["under_replicated_blocks"])
        return st["under_replicated_blocks"] == 0

    rep, _ = wait(repaired, 300)
    t_rep = time.monotonic()
    res.update(detect_s=det, repair_after_down_s=rep, repair_after_kill_s=t_rep - t_kill,
               peak_under_replicated=peak[0])
    if rep:
        res["blocks_per_s"] = peak[0] / rep if rep > 0 else None
    out = os.path.join(work, "restore-%s.img" % label)
    c.ctl("disk", "restore", "bench", "--file", out)
    res["restore_identical"] = sha(out) == sha(img)
    os.unlink(out)
    for v in victims:
        sh("bash", os.path.join(SRC, "deploy/local-cluster.sh"), "start-node", "--dir", c.dir,
           v["id"], env=c.env)
    t_back = time.monotonic()

    def settled():
        st = c.status()
        return (st["under_replicated_blocks"] == 0 and all(n["state"] == "up" for n in st["nodes"])
                and sum(n["blocks"] for n in st["nodes"]) == 3 * distinct)

    back, _ = wait(settled, 300)
    res["surplus_removed_s"] = back
    res["rejoin_total_s"] = time.monotonic() - t_back
    return res


def run(i, args, work):
    img = os.path.join(work, "image.img")
    info = json.loads(sh(os.path.join(BIN, "bench", "mkimage"), "create", img, "--size", args.size,
                         "--seed", str(i)))
    c = Cluster(work, args.port_base + 20 * i)
    try:
        sh(os.path.join(BIN, "snapctl"), "keygen", c.env["SNAPZONE_KEYFILE"], env=c.env)
        c.ctl("disk", "create", "bench", "--size", args.size)
        snap = c.ctl("snapshot", "create", "bench", "--file", img)
        distinct = snap["new_blocks"]
        wait(lambda: sum(n["blocks"] for n in c.status()["nodes"]) == 3 * distinct, 30)
        nodes = c.nodes()
        node = phase(c, [nodes[0]], distinct, img, work, "node")
        nodes = c.nodes()
        zone = phase(c, [n for n in nodes if n["zone"] == "zone-c"], distinct, img, work, "zone")
        r = {"run": i, "image_bytes": info["size"], "distinct_blocks": distinct,
             "stored_bytes_total": sum(n["stored_bytes"] for n in c.status()["nodes"]),
             "node_loss": node, "zone_loss": zone}
        print(json.dumps(r), flush=True)
        return r
    finally:
        c.down()


def med(rows, *path):
    vals = []
    for r in rows:
        v = r
        for p in path:
            v = v.get(p) if isinstance(v, dict) else None
        if isinstance(v, (int, float)):
            vals.append(v)
    return statistics.median(vals) if vals else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", default="1G")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--port-base", type=int, default=9300)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    rows = []
    for i in range(1, args.runs + 1):
        work = tempfile.mkdtemp(prefix="sz-repair-")
        try:
            rows.append(run(i, args, work))
        finally:
            shutil.rmtree(work, ignore_errors=True)
    summary = {}
    for ph in ("node_loss", "zone_loss"):
        summary[ph] = {k: med(rows, ph, k) for k in
                       ("detect_s", "repair_after_down_s", "repair_after_kill_s",
                        "peak_under_replicated", "blocks_per_s", "surplus_removed_s")}
        summary[ph]["restores_identical"] = all(r[ph]["restore_identical"] for r in rows)
    print(json.dumps({"summary_medians": summary, "runs": len(rows)}))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"runs": rows, "summary_medians": summary}, f, indent=1)
    ok = all(r[ph]["restore_identical"] and r[ph]["repair_after_down_s"] is not None
             for r in rows for ph in ("node_loss", "zone_loss"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
