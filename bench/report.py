#!/usr/bin/env python3
"""Render snapzone-vs-restic benchmark results as a markdown table.

    report.py --build OUTDIR     collect OUTDIR (written by run-bench.sh) into
                                 OUTDIR/results.json, then print the table
    report.py RESULTS.json       print the table of an existing results.json

OUTDIR layout: meta.kv, and per run runN/{image.json, mutate.json,
snapzone.kv, restic.kv, order}.  A .kv file has one "key value" per line.

Sizes: MiB = 2^20 bytes; throughput is image bytes / wall seconds in MiB/s.
Every figure in the table is a median over runs (min-max shown when runs > 1).
"""
import json
import os
import statistics
import sys

SYSTEMS = ("snapzone", "restic")
MIB = 1 << 20


def parse_value(v):
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    return v


def read_kv(path):
    out = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            key, _, val = line.partition(" ")
            out[key] = parse_value(val.strip())
    return out


def read_json(path):
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def build(outdir):
    meta = read_kv(os.path.join(outdir, "meta.kv"))
    runs = []
    n = int(meta.get("runs", 0))
    for i in range(1, n + 1):
        rdir = os.path.join(outdir, "run%d" % i)
        if not os.path.isdir(rdir):
            continue
        order = []
        if os.path.exists(os.path.join(rdir, "order")):
            with open(os.path.join(rdir, "order")) as f:
                order = [x.strip() for x in f if x.strip()]
        run = {"run": i, "order": order,
               "image": read_json(os.path.join(rdir, "image.json")),
               "mutation": read_json(os.path.join(rdir, "mutate.json"))}
        for s in SYSTEMS:
            kv = read_kv(os.path.join(rdir, s + ".kv"))
            if kv:
                run[s] = kv
        runs.append(run)
    res = {"meta": meta, "runs": runs, "metrics": derive(meta, runs)}
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump(res, f, indent=2, sort_keys=True)
        f.write("\n")
    return res


def derive(meta, runs):
    """Per-run derived metrics, per system: what the table shows."""
    out = []
    for r in runs:
        size = (r.get("image") or {}).get("size") or meta.get("size_bytes")
        # the store holds both snapshots: the image's unique content plus the
        # new random data the mutation wrote
        changed = (r.get("mutation") or {}).get("bytes_changed", 0)
        ideal = (r.get("image") or {}).get("unique_bytes")
        fixed = (r.get("image") or {}).get("fixed_unique_bytes")
        ideal = ideal + changed if ideal is not None else None
        fixed = fixed + changed if fixed is not None else None
        d_ideal = {"ideal_bytes": ideal, "fixed_ideal_bytes": fixed}
        d = {"run": r["run"]}
        d.update(d_ideal)
        for s in SYSTEMS:
            kv = r.get(s)
            if not kv:
                continue
            m = {}
            if kv.get("full_s"):
                m["full_mib_s"] = size / MIB / kv["full_s"]
            if "incr_s" in kv:
                m["incr_s"] = kv["incr_s"]
            if kv.get("restore_s"):
                m["restore_mib_s"] = size / MIB / kv["restore_s"]
                m["restore_durable_mib_s"] = size / MIB / (kv["restore_s"] +
                                                          kv.get("restore_sync_s", 0))
            if "data_dir_bytes" in kv:
                m["disk_all_copies_mib"] = kv["data_dir_bytes"] / MIB
            elif "stored_bytes" in kv and kv.get("replicas") == 1:
                m["disk_all_copies_mib"] = kv["stored_bytes"] / MIB
            if "incr_new_bytes" in kv:
                m["incr_new_mib"] = kv["incr_new_bytes"] / MIB
            if "stored_bytes" in kv:
                m["stored_bytes"] = kv["stored_bytes"]
                if ideal:
                    m["stored_over_ideal"] = kv["stored_bytes"] / ideal
                if fixed:
                    m["stored_over_fixed_ideal"] = kv["stored_bytes"] / fixed
            for k in ("full_rss_kb", "incr_rss_kb", "restore_rss_kb"):
                if k in kv:
                    m[k.replace("_kb", "_mib")] = kv[k] / 1024
            rss = [kv[k] for k in ("full_rss_kb", "incr_rss_kb", "restore_rss_kb") if k in kv]
            if rss:
                m["client_rss_mib"] = max(rss) / 1024
            if kv.get("node_rss_kb"):
                m["node_rss_mib"] = kv["node_rss_kb"] / 1024
            if kv.get("node_rss_sum_kb"):
                m["node_rss_sum_mib"] = kv["node_rss_sum_kb"] / 1024
            if kv.get("coord_rss_kb"):
                m["coord_rss_mib"] = kv["coord_rss_kb"] / 1024
            if "restore_ok" in kv:
                m["restore_ok"] = kv["restore_ok"]
            d[s] = m
        out.append(d)
    return out


def med(vals):
    return statistics.median(vals) if vals else None


def fmt(v, digits=1):
    if v is None:
        return "—"
    if isinstance(v, float) or digits:
        return "%.*f" % (digits, v)
    return str(v)


def cell(vals, digits):
    if not vals:
        return "—"
    s = fmt(med(vals), digits)
    if len(vals) > 1:
        s += " (%s–%s)" % (fmt(min(vals), digits), fmt(max(vals), digits))
    return s


# (label, metric key, digits, ratio kind, meaning of the ratio)
ROWS = [
    ("Full snapshot throughput, MiB/s (higher is better)", "full_mib_s", 1, "sz/restic",
     "snapzone / restic; > 1: snapzone faster"),
    ("Incremental snapshot (1% changed) time, s (lower is better)", "incr_s", 2, "restic/sz",
     "restic / snapzone; > 1: snapzone faster"),
    ("Restore throughput, MiB/s (higher is better)", "restore_mib_s", 1, "sz/restic",
     "snapzone / restic; > 1: snapzone faster"),
    ("Restore + sync throughput, MiB/s (restic restore does not fsync; snapctl does)",
     "restore_durable_mib_s", 1, "sz/restic", "snapzone / restic; > 1: snapzone faster"),
    ("Incremental: new plaintext bytes sent, MiB", "incr_new_mib", 1, None,
     "snapctl's new_bytes; restic does not report it here"),
    ("Stored bytes per copy, MiB", "stored_mib", 1, "sz/restic",
     "snapzone / restic; < 1: snapzone smaller"),
    ("Stored / ideal (ideal: unique non-zero bytes + mutated bytes, raw)", "stored_over_ideal", 3,
     "sz/restic",
     "snapzone / restic; < 1: snapzone smaller"),
    ("Stored / fixed-block ideal (unique non-zero aligned blocks of snapzone's block size)",
     "stored_over_fixed_ideal", 3, "sz/restic", "snapzone / restic; < 1: snapzone smaller"),
    ("On-disk bytes, all copies (du -sb of node data dirs / restic repo), MiB",
     "disk_all_copies_mib", 1, "sz/restic", "snapzone / restic; R=3 copies vs 1"),
    ("Client peak RSS, full snapshot, MiB", "full_rss_mib", 1, "sz/restic",
     "snapzone / restic; < 1: snapzone leaner"),
    ("Client peak RSS, incremental, MiB", "incr_rss_mib", 1, "sz/restic",
     "snapzone / restic; < 1: snapzone leaner"),
    ("Client peak RSS, restore, MiB", "restore_rss_mib", 1, "sz/restic",
     "snapzone / restic; < 1: snapzone leaner"),
    ("Node peak RSS (max VmHWM of one snapnode), MiB", "node_rss_mib", 1, None,
     "restic has no server process"),
    ("Node peak RSS (sum over all snapnodes), MiB", "node_rss_sum_mib", 1, None,
     "restic has no server process"),
    ("Coordinator peak RSS (VmHWM), MiB", "coord_rss_mib", 1, None,
     "restic has no server process"),
]


def render(res):
    meta = res["meta"]
    metrics = res["metrics"]
    for d in metrics:
        for s in SYSTEMS:
            if s in d and "stored_bytes" in d[s]:
                d[s]["stored_mib"] = d[s]["stored_bytes"] / MIB
    lines = []
    size = meta.get("size_bytes", 0)
    imgs = [r["image"] for r in res["runs"] if r.get("image")]
    ideal = med([d["ideal_bytes"] for d in metrics if d.get("ideal_bytes")])
    lines.append("Image %.0f MiB (mkimage, seed = run number), %s%% mutated between the full and "
                 "incremental snapshot; %d run(s), medians (min–max over runs)."
                 % (size / MIB, meta.get("percent", "?"), len(res["runs"])))
    if ideal:
        lines.append("Ideal stored size (unique non-zero bytes of the image + bytes the mutation "
                     "wrote; raw, before compression): %.1f MiB (median)." % (ideal / MIB))
    fixed = med([d["fixed_ideal_bytes"] for d in metrics if d.get("fixed_ideal_bytes")])
    if fixed:
        lines.append("Fixed-block ideal (distinct non-zero %d KiB blocks at aligned offsets + "
                     "mutated bytes, raw): %.1f MiB (median); regions are %d KiB-aligned."
                     % (imgs[0]["fixed_block_size"] // 1024, fixed / MIB, imgs[0]["align"] // 1024))
    lines.append("Page cache: %s before every timed step. restic: %s, repository format v%s, "
                 "compression auto. snapzone: %s zones x %s nodes, R=%s."
                 % (meta.get("page_cache", "?"), str(meta.get("restic_version", "?")).replace("_", " "),
                    _repo_version(res), meta.get("zones", "?"), meta.get("nodes_per_zone", "?"),
                    meta.get("replicas", "?")))
    lines.append("")
    lines.append("| metric | snapzone | restic | ratio | ratio means |")
    lines.append("|---|---:|---:|---:|---|")
    for label, key, digits, kind, meaning in ROWS:
        sz = [d["snapzone"][key] for d in metrics if key in d.get("snapzone", {})]
        rs = [d["restic"][key] for d in metrics if key in d.get("restic", {})]
        if not sz and not rs:
            continue
        ratios = []
        for d in metrics:
            a = d.get("snapzone", {}).get(key)
            b = d.get("restic", {}).get(key)
            if a is None or b is None or kind is None:
                continue
            if kind == "sz/restic" and b:
                ratios.append(a / b)
            elif kind == "restic/sz" and a:
                ratios.append(b / a)
        lines.append("| %s | %s | %s | %s | %s |" % (
            label, cell(sz, digits), cell(rs, digits),
            cell(ratios, 2) if ratios else "—", meaning))
    ok = []
    for d in metrics:
        for s in SYSTEMS:
            if s in d and "restore_ok" in d[s]:
                ok.append("%s run %d: %s" % (s, d["run"], "sha256 OK" if d[s]["restore_ok"] == 1
                                             else "SHA256 MISMATCH"))
    if ok:
        lines.append("")
        lines.append("Restore verification: " + "; ".join(ok) + ".")
    return "\n".join(lines) + "\n"


def _repo_version(res):
    vs = {str(r["restic"].get("repo_version")) for r in res["runs"] if r.get("restic")}
    return "/".join(sorted(vs)) if vs else "?"


def main(argv):
    if len(argv) == 3 and argv[1] == "--build":
        res = build(argv[2])
    elif len(argv) == 2 and not argv[1].startswith("-"):
        with open(argv[1]) as f:
            res = json.load(f)
    else:
        sys.stderr.write(__doc__)
        return 2
    sys.stdout.write(render(res))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
