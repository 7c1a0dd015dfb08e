#!/usr/bin/env bash
# shellcheck disable=SC2317  # the { } wrapper below confuses reachability checks
# snapzone vs restic: full snapshot, 1% incremental, restore, stored bytes and
# peak memory on the same synthetic image, in the same run.  See bench/README.md.
#
#   bench/run-bench.sh [--size 1G] [--runs 3] [--out DIR] [--percent 1]
#                      [--align 64K] [--only snapzone|restic] [--work DIR] [--keep]
#
# Environment: SNAPZONE_BIN (default <repo>/build) holds snapctl, snapnode and
# snapcoord.  The script installs nothing; it needs restic (Debian package
# `restic`), /usr/bin/time (package `time`), python3, sha256sum, a C compiler
# for bench/mkimage.c, and root to drop the page cache before timed steps.
set -euo pipefail
# The whole script is one { } block: bash parses it completely before running
# it, so editing this file while a benchmark runs cannot derail that run.
{

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
SNAPZONE_BIN=${SNAPZONE_BIN:-$REPO/build}
SNAPZONE_BIN=$(cd "$SNAPZONE_BIN" 2>/dev/null && pwd || echo "$SNAPZONE_BIN")
CLUSTER_SH=${CLUSTER_SH:-$REPO/deploy/local-cluster.sh}

SIZE=1G
RUNS=3
OUT=""
WORK=""
PERCENT=1
ALIGN=64K
ONLY=""
KEEP=0
ZONES=3
NODES_PER_ZONE=2
REPLICAS=3
DISK=benchdisk
SZ_BLOCK_SIZE=256K   # snapzone's default block size (SZ_DEFAULT_BLOCK_SIZE)

usage() {
    sed -n '3,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'
    exit "${1:-2}"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --size) SIZE=$2; shift 2 ;;
        --runs) RUNS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --work) WORK=$2; shift 2 ;;
        --percent) PERCENT=$2; shift 2 ;;
        --align) ALIGN=$2; shift 2 ;;
        --only) ONLY=$2; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) usage 0 ;;
        *) echo "run-bench: unknown argument: $1" >&2; usage 2 ;;
    esac
done
case "$ONLY" in ""|snapzone|restic) ;; *) echo "run-bench: --only takes snapzone or restic" >&2; exit 2 ;; esac
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "run-bench: --runs must be a positive integer" >&2; exit 2; }

# ---- prerequisites -----------------------------------------------------------
missing=0
if ! command -v restic >/dev/null 2>&1 && [ "$ONLY" != snapzone ]; then
    echo "run-bench: restic not found; install the Debian package: apt-get install restic" >&2
    missing=1
fi
if [ ! -x /usr/bin/time ]; then
    echo "run-bench: /usr/bin/time not found; install the Debian package: apt-get install time" >&2
    missing=1
fi
for t in python3 sha256sum du; do
    command -v "$t" >/dev/null 2>&1 || { echo "run-bench: $t not found" >&2; missing=1; }
done
if [ "$ONLY" != restic ]; then
    for b in snapctl snapnode snapcoord; do
        [ -x "$SNAPZONE_BIN/$b" ] || { echo "run-bench: $SNAPZONE_BIN/$b not found (set SNAPZONE_BIN)" >&2; missing=1; }
    done
    [ -x "$CLUSTER_SH" ] || [ -f "$CLUSTER_SH" ] || { echo "run-bench: $CLUSTER_SH not found" >&2; missing=1; }
fi
[ "$missing" = 0 ] || exit 1
SNAPCTL=$SNAPZONE_BIN/snapctl

OUT=${OUT:-/tmp/snapzone-bench-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=${WORK:-$OUT/work}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" | tee -a "$OUT/bench.log" >&2; }
die() { log "ERROR: $*"; exit 1; }

# mkimage: compiled from bench/mkimage.c (libc only) so it matches the source;
# the CMake-built $SNAPZONE_BIN/bench/mkimage if there is no C compiler.
CC=${CC:-cc}
if command -v "$CC" >/dev/null 2>&1; then
    MKIMAGE=$OUT/mkimage
    "$CC" -std=c11 -O2 -Wall -Wextra -o "$MKIMAGE" "$HERE/mkimage.c" || die "building mkimage failed"
else
    MKIMAGE=$SNAPZONE_BIN/bench/mkimage
    [ -x "$MKIMAGE" ] || die "no C compiler ($CC) and no $MKIMAGE"
fi

SIZE_BYTES=$(python3 - "$SIZE" <<'EOF'
import re, sys
m = re.fullmatch(r'(\d+(?:\.\d+)?)([KMGT]?)(?:i?B)?', sys.argv[1], re.I)
if not m:
    sys.exit("bad --size")
mul = {'': 1, 'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40}[m.group(2).upper()]
print(int(float(m.group(1)) * mul + 0.5))
EOF
) || die "bad --size $SIZE"

# ---- page cache --------------------------------------------------------------
# Before every timed step: sync and drop the page cache, so each step reads
# its input from disk (needs root; if it fails the results say so).
CACHE_POLICY=dropped
drop_caches() {
    sync
    if ! { echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
        if [ "$CACHE_POLICY" = dropped ]; then
            log "WARNING: cannot write /proc/sys/vm/drop_caches; page cache is NOT dropped"
        fi
        CACHE_POLICY=not-dropped
    fi
}

# ---- helpers ---------------------------------------------------------------
KV=""          # current key/value result file
kv() { printf '%s %s\n' "$1" "$2" >>"$KV"; }

now_ns() { date +%s%N; }

# timed NAME LOG cmd... : drop caches, run cmd under /usr/bin/time, record
# NAME_s (wall seconds, ns clock), NAME_rss_kb (peak RSS of the command) and
# NAME_sync_s (a `sync` right after it: data the command left dirty in the
# page cache, e.g. restic restore does not fsync while snapctl does).
timed() {
    local name=$1 logf=$2; shift 2
    local tf=$logf.time t0 t1 rc=0
    drop_caches
    log "  $name: $*"
    t0=$(now_ns)
    /usr/bin/time -f '%e %M' -o "$tf" "$@" >"$logf" 2>&1 || rc=$?
    t1=$(now_ns)
    if [ "$rc" != 0 ]; then
        log "FAILED ($rc): $*"
        log "---- last lines of $logf ----"
        tail -n 40 "$logf" | tee -a "$OUT/bench.log" >&2
        return "$rc"
    fi
    sync
    local t2 secs ssecs rss
    t2=$(now_ns)
    secs=$(python3 -c "print('%.3f' % (($t1 - $t0) / 1e9))")
    ssecs=$(python3 -c "print('%.3f' % (($t2 - $t1) / 1e9))")
    rss=$(tail -n 1 "$tf" | awk '{print $2}')
    kv "${name}_s" "$secs"
    kv "${name}_sync_s" "$ssecs"
    kv "${name}_rss_kb" "$rss"
    log "  $name: ${secs}s (+${ssecs}s sync), peak RSS ${rss} KiB"
}

# run a command, logging it; on failure show its output and fail.
step() {
    local logf=$1; shift
    log "  $*"
    if ! "$@" >"$logf" 2>&1; then
        log "FAILED: $*"
        tail -n 40 "$logf" | tee -a "$OUT/bench.log" >&2
        return 1
    fi
}

sha() { sha256sum "$1" | awk '{print $1}'; }

# free_port_base N: a base port with N consecutive free TCP ports.
free_port_base() {
    python3 - "$1" <<'EOF'
import random, socket, sys
n = int(sys.argv[1])
rng = random.Random()
for _ in range(200):
    base = rng.randrange(20000, 60000 - n)
    socks = []
    try:
        for p in range(base, base + n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", p))
            socks.append(s)
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(base)
    sys.exit(0)
sys.exit("no free port range")
EOF
}

# make_image RUN: (re)create the base image of this run; deterministic, so
# every system starts from identical bytes (checked by sha256).
IMG=$WORK/image.img
make_image() {
    local run=$1 rdir=$2
    rm -f "$IMG"
    "$MKIMAGE" create "$IMG" --size "$SIZE_BYTES" --seed "$run" --align "$ALIGN" \
        --block-size "$SZ_BLOCK_SIZE" >"$rdir/image.json.tmp" \
        || die "mkimage create failed"
    local s
    s=$(sha "$IMG")
    if [ -f "$rdir/image.json" ]; then
        [ "$s" = "$(cat "$rdir/base.sha256")" ] || die "regenerated image differs from the first one"
        rm -f "$rdir/image.json.tmp"
    else
        mv "$rdir/image.json.tmp" "$rdir/image.json"
        echo "$s" >"$rdir/base.sha256"
    fi
}

# mutate_image RUN RDIR: the same ~PERCENT% overwrite for every system.
mutate_image() {
    local run=$1 rdir=$2
    "$MKIMAGE" mutate "$IMG" --percent "$PERCENT" --seed "$((run + 1000))" --align "$ALIGN" \
        >"$rdir/mutate.json.tmp" \
        || die "mkimage mutate failed"
    local s
    s=$(sha "$IMG")
    if [ -f "$rdir/mutated.sha256" ]; then
        [ "$s" = "$(cat "$rdir/mutated.sha256")" ] || die "mutated image differs between systems"
        rm -f "$rdir/mutate.json.tmp"
    else
        mv "$rdir/mutate.json.tmp" "$rdir/mutate.json"
        echo "$s" >"$rdir/mutated.sha256"
    fi
}

# ---- restic ------------------------------------------------------------------
RESTIC_NOSCAN=()
if command -v restic >/dev/null 2>&1; then
    RESTIC_VERSION=$(restic version 2>/dev/null | head -n 1)
    if restic backup --help 2>/dev/null | grep -q -- '--no-scan'; then
        RESTIC_NOSCAN=(--no-scan)
    fi
else
    RESTIC_VERSION=none
fi

bench_restic() {
    local run=$1 rdir=$2
    local R=$WORK/restic-repo C=$WORK/restic-cache T=$WORK/restic-restore
    KV=$rdir/restic.kv
    : >"$KV"
    rm -rf "$R" "$C" "$T"
    export RESTIC_PASSWORD=snapzone-bench
    log "restic (run $run)"
    make_image "$run" "$rdir"
    step "$rdir/restic-init.log" restic init --repo "$R" --cache-dir "$C"
    local ver
    ver=$(restic cat config --repo "$R" --cache-dir "$C" --no-lock 2>/dev/null \
        | python3 -c 'import json,sys; print(json.load(sys.stdin).get("version","?"))' || echo "?")
    kv repo_version "$ver"
    timed full "$rdir/restic-full.log" \
        restic backup --repo "$R" --cache-dir "$C" --host bench "${RESTIC_NOSCAN[@]}" "$IMG"
    mutate_image "$run" "$rdir"
    timed incr "$rdir/restic-incr.log" \
        restic backup --repo "$R" --cache-dir "$C" --host bench "${RESTIC_NOSCAN[@]}" "$IMG"
    mkdir -p "$T"
    timed restore "$rdir/restic-restore.log" \
        restic restore latest --repo "$R" --cache-dir "$C" --target "$T"
    local got
    got=$(sha "$T$IMG")
    if [ "$got" = "$(cat "$rdir/mutated.sha256")" ]; then kv restore_ok 1; else
        kv restore_ok 0; log "ERROR: restic restore sha256 mismatch"; fi
    kv stored_bytes "$(du -sb "$R" | awk '{print $1}')"
    kv replicas 1
    rm -rf "$T"
    [ "$KEEP" = 1 ] || rm -rf "$R" "$C"
}

# ---- snapzone ----------------------------------------------------------------
SZ_D=""
sz_cleanup() {
    if [ -n "$SZ_D" ] && [ -d "$SZ_D" ]; then
        bash "$CLUSTER_SH" down --dir "$SZ_D" >>"$OUT/bench.log" 2>&1 || true
    fi
}
trap sz_cleanup EXIT

# VmHWM (KiB) of a pid, read from /proc before the cluster goes down.
vmhwm() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || true; }

# json_field FILE KEY: KEY of the last JSON object line in FILE (snapctl --json).
json_field() {
    python3 - "$1" "$2" <<'EOF'
import json, sys
obj = None
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("{"):
        try:
            obj = json.loads(line)
        except ValueError:
            pass
if obj is None or sys.argv[2] not in obj:
    sys.exit("no '%s' in JSON output of %s" % (sys.argv[2], sys.argv[1]))
print(obj[sys.argv[2]])
EOF
}

bench_snapzone() {
    local run=$1 rdir=$2
    local D=$WORK/sz-cluster T=$WORK/sz-restore.img K=$WORK/sz.key
    KV=$rdir/snapzone.kv
    : >"$KV"
    log "snapzone (run $run)"
    make_image "$run" "$rdir"
    rm -rf "$D" "$T" "$K"
    local port
    port=$(free_port_base $((ZONES * NODES_PER_ZONE + 1))) || die "no free port range"
    SZ_D=$D
    step "$rdir/sz-up.log" env SNAPZONE_BIN="$SNAPZONE_BIN" bash "$CLUSTER_SH" up --dir "$D" \
        --zones "$ZONES" --nodes-per-zone "$NODES_PER_ZONE" --replicas "$REPLICAS" --port-base "$port"
    local coord
    coord=$(sed -n 's/^SNAPZONE_COORDINATOR=//p' "$D/cluster.env")
    [ -n "$coord" ] || die "no SNAPZONE_COORDINATOR in $D/cluster.env"
    local -a sz=("$SNAPCTL" --coordinator "$coord" --keyfile "$K" --json)
    step "$rdir/sz-keygen.log" "${sz[@]}" keygen "$K"
    step "$rdir/sz-disk-create.log" "${sz[@]}" disk create "$DISK" --size "$SIZE_BYTES"
    kv block_size "$(json_field "$rdir/sz-disk-create.log" block_size)"
    timed full "$rdir/sz-full.log" "${sz[@]}" snapshot create "$DISK" --file "$IMG" --name full
    kv full_new_bytes "$(json_field "$rdir/sz-full.log" new_bytes)"
    mutate_image "$run" "$rdir"
    timed incr "$rdir/sz-incr.log" "${sz[@]}" snapshot create "$DISK" --file "$IMG" --name incr
    kv incr_new_bytes "$(json_field "$rdir/sz-incr.log" new_bytes)"
    local snap
    snap=$(json_field "$rdir/sz-incr.log" id)
    timed restore "$rdir/sz-restore.log" "${sz[@]}" disk restore "$snap" --file "$T"
    local got
    got=$(sha "$T")
    if [ "$got" = "$(cat "$rdir/mutated.sha256")" ]; then kv restore_ok 1; else
        kv restore_ok 0; log "ERROR: snapzone restore sha256 mismatch"; fi
    kv restore_alloc_bytes "$(du -B1 "$T" | awk '{print $1}')"
    rm -f "$T"
    # stored bytes: nodes report stored_bytes in heartbeats (every second)
    sleep 3
    step "$rdir/sz-status.json" "${sz[@]}" cluster status
    python3 - "$rdir/sz-status.json" "$REPLICAS" >>"$KV" <<'EOF' || die "cannot parse cluster status"
import json, sys
st = json.loads([l for l in open(sys.argv[1]) if l.startswith("{")][-1])
nodes = st["nodes"]
total = sum(int(n.get("stored_bytes", 0)) for n in nodes)
reps = int(st.get("replicas") or sys.argv[2])
print("stored_bytes_all_replicas", total)
print("stored_bytes", total // reps)
print("replicas", reps)
print("nodes", len(nodes))
print("nodes_up", sum(1 for n in nodes if n.get("state") == "up"))
print("under_replicated_blocks", st.get("under_replicated_blocks", 0))
EOF
    kv data_dir_bytes "$(du -sb "$D/nodes" | awk '{print $1}')"
    # peak memory of every snapnode and of the coordinator, before `down`
    local maxhwm=0 sumhwm=0 n=0 pid h
    while read -r pid; do
        h=$(vmhwm "$pid")
        [ -n "$h" ] || { log "WARNING: snapnode pid $pid is gone"; continue; }
        n=$((n + 1))
        sumhwm=$((sumhwm + h))
        [ "$h" -gt "$maxhwm" ] && maxhwm=$h
    done < <(awk -F'\t' 'NR > 1 && $4 ~ /^[0-9]+$/ {print $4}' "$D/nodes.tsv")
    [ "$n" -gt 0 ] || log "WARNING: no live snapnode pids in $D/nodes.tsv"
    kv node_rss_kb "$maxhwm"
    kv node_rss_sum_kb "$sumhwm"
    kv node_pids "$n"
    pid=$(tr -d ' \n' <"$D/coordinator.pid" 2>/dev/null || true)
    h=""
    [ -z "$pid" ] || h=$(vmhwm "$pid")
    [ -z "$h" ] || kv coord_rss_kb "$h"
    step "$rdir/sz-down.log" bash "$CLUSTER_SH" down --dir "$D"
    SZ_D=""
    rm -f "$K"
    [ "$KEEP" = 1 ] || rm -rf "$D"
}

# ---- main --------------------------------------------------------------------
main() {
    {
        echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo "host $(hostname)"
        echo "kernel $(uname -r)"
        echo "cpus $(nproc)"
        echo "mem_kb $(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
        echo "size_bytes $SIZE_BYTES"
        echo "runs $RUNS"
        echo "percent $PERCENT"
        echo "align $ALIGN"
        echo "sz_block_size $SZ_BLOCK_SIZE"
        echo "restic_version ${RESTIC_VERSION// /_}"
        echo "restic_no_scan $([ ${#RESTIC_NOSCAN[@]} -gt 0 ] && echo 1 || echo 0)"
        echo "zones $ZONES"
        echo "nodes_per_zone $NODES_PER_ZONE"
        echo "replicas $REPLICAS"
        echo "snapzone_bin $SNAPZONE_BIN"
        echo "only ${ONLY:-both}"
    } >"$OUT/meta.kv"
    log "out=$OUT work=$WORK size=$SIZE_BYTES runs=$RUNS percent=$PERCENT restic='$RESTIC_VERSION'"

    for run in $(seq 1 "$RUNS"); do
        rdir=$OUT/run$run
        rm -rf "$rdir"
        mkdir -p "$rdir"
        if [ $((run % 2)) = 1 ]; then order="snapzone restic"; else order="restic snapzone"; fi
        for sys in $order; do
            [ -z "$ONLY" ] || [ "$ONLY" = "$sys" ] || continue
            echo "$sys" >>"$rdir/order"
            "bench_$sys" "$run" "$rdir"
        done
        rm -f "$IMG"
    done
    echo "page_cache $CACHE_POLICY" >>"$OUT/meta.kv"

    python3 "$HERE/report.py" --build "$OUT" >"$OUT/results.md"
    cat "$OUT/results.md"
    log "results: $OUT/results.json, table: $OUT/results.md"
    [ "$KEEP" = 1 ] || rmdir "$WORK" 2>/dev/null || true
}

main "$@"
exit $?
}
