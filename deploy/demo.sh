#!/usr/bin/env bash
# README command 1: install dependencies, build, start a local 3-zone
# cluster (3 zones x 2 nodes, R=3) and run a demo:
#   make a disk image -> snapshot -> change 1% -> incremental snapshot ->
#   restore in another zone -> clone -> snapshot the clone -> verify checksums.
# The cluster keeps running afterwards; the script prints how to use and stop it.
#   deploy/demo.sh [--dir DIR] [--size SIZE] [--port-base P]
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
dir=$repo/_demo
size=256M
port=7400
while (($#)); do
  case $1 in
    --dir) dir=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --port-base) port=$2; shift 2 ;;
    *) echo "demo.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "installing dependencies (Debian packages)"
bash deploy/install-deps.sh
step "building"
bash deploy/build.sh build
export PATH=$repo/build:$repo/build/bench:$PATH

if [ -f "$dir/coordinator.pid" ]; then
  bash deploy/local-cluster.sh down --dir "$dir" >/dev/null 2>&1 || true
fi
rm -rf "$dir"
mkdir -p "$dir/work"
step "starting a local cluster: 3 zones x 2 nodes, 3 replicas"
bash deploy/local-cluster.sh up --dir "$dir" --zones 3 --nodes-per-zone 2 --replicas 3 --port-base "$port"
# shellcheck disable=SC1091
source "$dir/cluster.env"
export SNAPZONE_COORDINATOR SNAPZONE_KEYFILE=$dir/tenant.key
snapctl cluster status

step "a key that only this client holds"
snapctl keygen "$SNAPZONE_KEYFILE"

img=$dir/work/disk.img
step "a $size disk image: random, zero, repeated and text regions"
mkimage create "$img" --size "$size" --seed 7 >/dev/null
ls -l "$img"
sum0=$(sha256sum "$img" | cut -d' ' -f1)

step "snapctl disk create web01 --size $size --zone zone-a"
snapctl disk create web01 --size "$size" --zone zone-a
step "snapctl snapshot create web01 (full)"
snapctl snapshot create web01 --file "$img" --name base --json | tee "$dir/work/s1.json"
s1=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["id"])' "$dir/work/s1.json")
cp --sparse=always "$img" "$dir/work/disk-v1.img"

step "changing about 1% of the disk, then an incremental snapshot"
mkimage mutate "$img" --percent 1 --seed 8
sum1=$(sha256sum "$img" | cut -d' ' -f1)
snapctl snapshot create web01 --file "$img" --name after-change --json | tee "$dir/work/s2.json"
s2=$(python3 -c 'import json,sys;print(json.load(open(sys.argv[1]))["id"])' "$dir/work/s2.json")
snapctl snapshot list web01

step "restoring both snapshots, reading from zone-c (another zone)"
snapctl disk restore "$s1" --file "$dir/work/restored-v1.img" --zone zone-c
snapctl disk restore "$s2" --file "$dir/work/restored-v2.img" --zone zone-c

step "cloning snapshot 1 into a new disk (no data copied), then snapshotting the clone"
snapctl disk clone "$s1" web01-test
snapctl snapshot create web01-test --file "$dir/work/restored-v1.img" --name clone-first
snapctl disk restore web01-test --file "$dir/work/restored-clone.img" --zone zone-b

step "verifying checksums"
ok=1
check() {
  local got
  got=$(sha256sum "$1" | cut -d' ' -f1)
  if [ "$got" = "$2" ]; then echo "OK    $1"; else echo "FAIL  $1"; ok=0; fi
}
check "$dir/work/restored-v1.img" "$sum0"
check "$dir/work/restored-v2.img" "$sum1"
check "$dir/work/restored-clone.img" "$sum0"
snapctl cluster status
if [ "$ok" != 1 ]; then echo "demo: checksum mismatch" >&2; exit 1; fi

cat <<TXT

The cluster is still running. Try:
  source $dir/cluster.env; export SNAPZONE_COORDINATOR SNAPZONE_KEYFILE=$SNAPZONE_KEYFILE
  build/snapctl snapshot list
Stop it with:
  deploy/local-cluster.sh down --dir $dir
TXT
