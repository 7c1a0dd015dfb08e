#!/usr/bin/env bash
# compose-demo.sh: snapzone on Docker Compose, end to end.
#
#   deploy/docker/compose-demo.sh [--project NAME] [--size SIZE] [--build-dir DIR]
#                                 [--image TAG] [--shared-dir DIR] [--keep]
#
#  1. builds the image (deploy/docker/build-image.sh, FROM scratch);
#  2. `docker-compose up -d`: snapcoord + 3 zones x 2 snapnode, R=3, and waits
#     until `snapctl cluster status` (run in the `client` service) lists 6
#     nodes up;
#  3. keygen, disk create, makes a test image on the host (random, zero,
#     repeated and text regions) in the directory shared with the client,
#     snapshots it, restores it from zone-b and compares SHA-256 on the host;
#  4. kills (SIGKILL) both zone-c containers, waits until the coordinator
#     marks them down, restores again (preferring zone-c, so every block must
#     come from the survivors in zone-a/zone-b) and compares again;
#  5. `docker-compose down -v` (also on failure, unless --keep).
#
# --project NAME   compose project name (default snapzone-demo); use a unique
#                  one to run several demos side by side
# --size SIZE      test image size, K/M/G suffixes (default 64M)
# --build-dir DIR  build directory for build-image.sh (default <repo>/build-docker)
# --image TAG      image tag to build and run (default snapzone:local)
# --shared-dir DIR host directory mounted at /shared in the client (default: a
#                  new temporary directory, removed at the end); the key,
#                  disk.img, restore-1.img and restore-2.img are left in it
# --keep           leave the cluster running at the end (and on failure)
#
# Environment: SZ_COORD_PUBLISH (host side of the coordinator port; default
# "127.0.0.1:", a free port on 127.0.0.1), SZ_UP_TIMEOUT (seconds to wait for
# the cluster, default 60), SZ_DOWN_TIMEOUT (seconds to wait until the killed
# nodes are marked down, default 45).
# Exit codes: 0 ok, 1 failure (a mismatch, a failed step), 2 usage.
set -euo pipefail

PROG=compose-demo.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/../.." && pwd)
COMPOSE_FILE=$REPO_DIR/docker-compose.yml
PROJECT=snapzone-demo
SIZE=64M
BUILD_DIR=$REPO_DIR/build-docker
IMAGE=snapzone:local
SHARED=""
KEEP=0
UP_TIMEOUT=${SZ_UP_TIMEOUT:-60}
DOWN_TIMEOUT=${SZ_DOWN_TIMEOUT:-45}
NODES=(zone-a-n1 zone-a-n2 zone-b-n1 zone-b-n2 zone-c-n1 zone-c-n2)
KILLED=(zone-c-n1 zone-c-n2)

usage() {
    echo "$PROG: $*; usage: $PROG [--project NAME] [--size SIZE] [--build-dir DIR] [--image TAG] [--shared-dir DIR] [--keep]" >&2
    exit 2
}
die() {
    echo "$PROG: error: $*" >&2
    exit 1
}
step() { printf '\n== %s\n' "$*"; }

while [ $# -gt 0 ]; do
    case "$1" in
        --project | --size | --build-dir | --image | --shared-dir)
            if [ $# -lt 2 ] || [ -z "$2" ]; then usage "$1 needs a value"; fi
            case "$1" in
                --project) PROJECT=$2 ;;
                --size) SIZE=$2 ;;
                --build-dir) BUILD_DIR=$2 ;;
                --image) IMAGE=$2 ;;
                --shared-dir) SHARED=$2 ;;
            esac
            shift 2
            ;;
        --keep) KEEP=1; shift ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
            exit 0
            ;;
        *) usage "unknown argument '$1'" ;;
    esac
done
[[ $PROJECT =~ ^[a-z0-9][a-z0-9_-]*$ ]] || usage "--project must be lower-case letters, digits, '-' or '_'"
SIZE_BYTES=$(numfmt --from=iec "$SIZE" 2>/dev/null) || usage "bad --size '$SIZE'"
if [ "$SIZE_BYTES" -lt $((4 * 1048576)) ] || [ $((SIZE_BYTES % 1048576)) -ne 0 ]; then
    usage "--size must be a whole number of MiB, at least 4M"
fi

command -v docker >/dev/null 2>&1 || die "docker is not installed"
command -v docker-compose >/dev/null 2>&1 || die "docker-compose is not installed"
docker info >/dev/null 2>&1 || die "docker is not available ('docker info' fails)"
command -v python3 >/dev/null 2>&1 || die "python3 is needed to read snapctl's JSON"

OWN_SHARED=0
if [ -z "$SHARED" ]; then
    SHARED=$(mktemp -d /tmp/snapzone-compose.XXXXXX)
    OWN_SHARED=1
else
    mkdir -p "$SHARED"
fi
SHARED=$(cd "$SHARED" && pwd)
ERRLOG=$(mktemp /tmp/snapzone-compose-err.XXXXXX)

export SZ_IMAGE=$IMAGE
export SZ_SHARED_DIR=$SHARED
SZ_CLIENT_USER="$(id -u):$(id -g)"
export SZ_CLIENT_USER
export SZ_COORD_PUBLISH=${SZ_COORD_PUBLISH:-127.0.0.1:}

compose() { docker-compose -f "$COMPOSE_FILE" -p "$PROJECT" "$@"; }

# client ARGS...: snapctl ARGS in the client service; stdout is snapctl's,
# compose's chatter and snapctl's stderr go to ERRLOG (shown on failure).
client() {
    local rc=0
    compose run --rm -T --no-deps client "$@" 2>"$ERRLOG" || rc=$?
    if [ $rc -ne 0 ]; then
        echo "$PROG: snapctl $* failed (exit $rc):" >&2
        grep -v '^Creating .*_run \.\.\.\|^$' "$ERRLOG" | sed 's/^/  /' >&2 || true
    fi
    return $rc
}

json_get() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

# nodes_in STATE JSON: the ids of the nodes in that state, sorted, one line.
nodes_in() {
    python3 -c 'import json,sys
st=json.loads(sys.argv[2])
print(" ".join(sorted(n["id"] for n in st["nodes"] if n["state"]==sys.argv[1])))' "$1" "$2"
}

UP=0
cleanup() {
    local rc=$?
    set +e
    if [ $rc -ne 0 ] && [ $UP = 1 ]; then
        echo "$PROG: failed; last daemon log lines:" >&2
        compose logs --no-color --tail 5 >&2 2>/dev/null
    fi
    if [ $UP = 1 ] && [ $KEEP = 0 ]; then
        step "docker-compose down -v"
        compose --profile client down -v --remove-orphans 2>&1 | grep -v '^$' | tail -3
    elif [ $UP = 1 ]; then
        echo "cluster left running (--keep); files in $SHARED; use it with"
        echo "  export SZ_IMAGE=$IMAGE SZ_SHARED_DIR=$SHARED SZ_CLIENT_USER=$SZ_CLIENT_USER"
        echo "  docker-compose -f $COMPOSE_FILE -p $PROJECT run --rm -T client cluster status"
        echo "and stop it with: docker-compose -f $COMPOSE_FILE -p $PROJECT --profile client down -v"
    fi
    rm -f "$ERRLOG"
    if [ $OWN_SHARED = 1 ] && [ $KEEP = 0 ]; then rm -rf "$SHARED"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

step "building the image $IMAGE (FROM scratch, no registry)"
bash "$SCRIPT_DIR/build-image.sh" --build-dir "$BUILD_DIR" --tag "$IMAGE"

step "docker-compose -p $PROJECT up -d (coordinator + 3 zones x 2 nodes, R=3)"
UP=1
compose up -d 2>&1 | grep -v '^$' | tail -8
port=$(compose port coordinator 7400 2>/dev/null || true)
echo "coordinator published on ${port:-?} (host side); nodes only inside the compose network"

step "waiting for 6 nodes up (snapctl cluster status in the client service)"
deadline=$((SECONDS + UP_TIMEOUT))
while :; do
    st=$(client --json cluster status 2>/dev/null) || st=""
    if [ -n "$st" ] && [ "$(nodes_in up "$st")" = "${NODES[*]}" ]; then
        break
    fi
    if [ $SECONDS -ge $deadline ]; then
        [ -n "$st" ] && echo "$st" >&2
        die "cluster not up after ${UP_TIMEOUT}s"
    fi
    sleep 1
done
client cluster status

step "snapctl keygen /shared/tenant.key"
client keygen /shared/tenant.key

step "a $SIZE test image on the host: random, zero, repeated and text regions"
img=$SHARED/disk.img
mib=$((SIZE_BYTES / 1048576))
r=$((mib * 2 / 5))
z=$((mib / 4))
p=$((mib / 5))
t=$((mib - r - z - p))
python3 - "$img" "$r" "$z" "$p" "$t" <<'PYEOF' || die "could not write the test image $img"
import os, sys
path, r, z, p, t = sys.argv[1], *(int(x) for x in sys.argv[2:])
M = 1 << 20
line = b"snapzone compose demo: the quick brown fox jumps over the lazy dog\n"
with open(path, "wb") as f:
    for _ in range(r):
        f.write(os.urandom(M))            # random: incompressible, unique
    f.write(bytes(z * M))                 # zero: never stored
    blk = os.urandom(256 * 1024)
    f.write(blk * (4 * p))                # one block repeated: stored once
    f.write((line * (t * M // len(line) + 1))[: t * M])  # text: compressible
PYEOF
[ "$(stat -c %s "$img")" = "$SIZE_BYTES" ] || die "test image has the wrong size"
sum0=$(sha256sum "$img" | cut -d' ' -f1)
echo "disk.img: $SIZE_BYTES bytes (${r}M random, ${z}M zero, ${p}M one repeated 256K block, ${t}M text), sha256 $sum0"

step "snapctl disk create demo --size $SIZE --zone zone-a"
client disk create demo --size "$SIZE" --zone zone-a

step "snapctl snapshot create demo --file /shared/disk.img --name base --json"
snap_json=$(client --json snapshot create demo --file /shared/disk.img --name base)
echo "$snap_json"
snap=$(json_get "$snap_json" id)

step "snapctl disk restore $snap --file /shared/restore-1.img --zone zone-b --json"
client --json disk restore "$snap" --file /shared/restore-1.img --zone zone-b
sum1=$(sha256sum "$SHARED/restore-1.img" | cut -d' ' -f1)
echo "original   $sum0"
echo "restore-1  $sum1"
[ "$sum1" = "$sum0" ] || die "restore-1 differs from the original image"
echo "restore-1 is identical"

step "killing zone-c: docker-compose kill ${KILLED[*]}"
compose kill "${KILLED[@]}" 2>&1 | grep -v '^$' | tail -2
compose ps "${KILLED[@]}" 2>/dev/null | tail -n +3

step "waiting until the coordinator marks ${KILLED[*]} down"
deadline=$((SECONDS + DOWN_TIMEOUT))
while :; do
    st=$(client --json cluster status 2>/dev/null) || st=""
    if [ -n "$st" ] && [ "$(nodes_in down "$st")" = "${KILLED[*]}" ]; then
        break
    fi
    if [ $SECONDS -ge $deadline ]; then
        [ -n "$st" ] && echo "$st" >&2
        die "${KILLED[*]} not marked down after ${DOWN_TIMEOUT}s"
    fi
    sleep 2
done
client cluster status

step "snapctl disk restore $snap --file /shared/restore-2.img --zone zone-c --json (zone-c is gone)"
client --json disk restore "$snap" --file /shared/restore-2.img --zone zone-c
sum2=$(sha256sum "$SHARED/restore-2.img" | cut -d' ' -f1)
echo "original   $sum0"
echo "restore-2  $sum2"
[ "$sum2" = "$sum0" ] || die "restore-2 (without zone-c) differs from the original image"
echo "restore-2 is identical"

step "demo passed"
