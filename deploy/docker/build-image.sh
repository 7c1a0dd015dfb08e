#!/usr/bin/env bash
# build-image.sh: build the snapzone container image without any registry.
#
#   deploy/docker/build-image.sh [--build-dir DIR] [--tag TAG] [--rebuild] [--no-strip]
#
# No base image can be pulled on these machines, so the image is built
# FROM scratch: a minimal root file system is assembled from what is on this
# host, i.e.
#   /usr/local/bin/{snapcoord,snapnode,snapctl}   from the build directory
#   every shared library they need, as resolved by ldd, and the dynamic loader
#   /etc/{passwd,group,nsswitch.conf,ld.so.conf,ld.so.cache}  (minimal)
#   /data (owned by the unprivileged user snapzone, uid/gid 10001) and /tmp
# and copied into the image by deploy/docker/Dockerfile (FROM scratch + COPY).
# There is no shell in the image.
#
# --build-dir DIR  the CMake build directory holding the binaries (default
#                  <repo>/build-docker).  If a binary is missing there, the
#                  project is built into DIR with deploy/build.sh first.
# --rebuild        run deploy/build.sh DIR even if the binaries exist.
# --tag TAG        image name (default snapzone:local).
# --no-strip       keep the debug info in the copied binaries.
#
# Idempotent: an unchanged build gives the same image (layer cache).  Prints
# the image id on stdout as its last line; progress goes to stderr.  Exit
# codes: 0 ok, 1 failure (one line on stderr), 2 usage.
set -euo pipefail

PROG=build-image.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/../.." && pwd)
BUILD_DIR=$REPO_DIR/build-docker
TAG=snapzone:local
REBUILD=0
STRIP=1
BINS=(snapcoord snapnode snapctl)
SZ_UID=10001
SZ_GID=10001

die() {
    echo "$PROG: error: $*" >&2
    exit 1
}
usage() {
    echo "$PROG: $*; usage: $PROG [--build-dir DIR] [--tag TAG] [--rebuild] [--no-strip]" >&2
    exit 2
}
info() { echo "$PROG: $*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --build-dir)
            if [ $# -lt 2 ] || [ -z "$2" ]; then usage "--build-dir needs a value"; fi
            BUILD_DIR=$2
            shift 2
            ;;
        --build-dir=*) BUILD_DIR=${1#*=}; shift ;;
        --tag)
            if [ $# -lt 2 ] || [ -z "$2" ]; then usage "--tag needs a value"; fi
            TAG=$2
            shift 2
            ;;
        --tag=*) TAG=${1#*=}; shift ;;
        --rebuild) REBUILD=1; shift ;;
        --no-strip) STRIP=0; shift ;;
        -h | --help)
            sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
            exit 0
            ;;
        *) usage "unknown argument '$1'" ;;
    esac
done
[ -n "$TAG" ] || usage "--tag may not be empty"

# ---- docker must be usable before anything else is done ---------------------
command -v docker >/dev/null 2>&1 || die "docker is not installed (no 'docker' on PATH)"
docker_err=$(docker version --format '{{.Server.Version}}' 2>&1 >/dev/null) ||
    die "docker is not available: $(printf '%s' "$docker_err" | tr '\n' ' ' | sed 's/ *$//')"
command -v ldd >/dev/null 2>&1 || die "ldd is not installed"

# ---- build the project if needed --------------------------------------------
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR=$PWD/$BUILD_DIR ;; esac
need_build=$REBUILD
for b in "${BINS[@]}"; do
    [ -x "$BUILD_DIR/$b" ] || need_build=1
done
if [ "$need_build" = 1 ]; then
    info "building the project into $BUILD_DIR (deploy/build.sh)"
    bash "$REPO_DIR/deploy/build.sh" "$BUILD_DIR" >&2 || die "deploy/build.sh $BUILD_DIR failed"
fi
for b in "${BINS[@]}"; do
    [ -x "$BUILD_DIR/$b" ] || die "no executable $BUILD_DIR/$b after the build"
done

# ---- assemble the root file system ------------------------------------------
STAGE=$(mktemp -d /tmp/snapzone-image.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
ROOT=$STAGE/rootfs
# Debian 12 layout (merged /usr): /lib and /lib64 are links into /usr.
mkdir -p "$ROOT"/usr/local/bin "$ROOT"/usr/lib/x86_64-linux-gnu "$ROOT"/usr/lib64 \
    "$ROOT"/etc "$ROOT"/tmp "$ROOT"/shared
ln -s usr/lib "$ROOT/lib"
ln -s usr/lib64 "$ROOT/lib64"
ln -s usr/bin "$ROOT/bin"
mkdir -p "$ROOT"/usr/bin

for b in "${BINS[@]}"; do
    if [ "$STRIP" = 1 ] && command -v strip >/dev/null 2>&1; then
        strip --strip-debug -o "$ROOT/usr/local/bin/$b" "$BUILD_DIR/$b" ||
            die "strip $BUILD_DIR/$b failed"
    else
        cp "$BUILD_DIR/$b" "$ROOT/usr/local/bin/$b"
    fi
    chmod 0755 "$ROOT/usr/local/bin/$b"
done

# Every library ldd resolves for any of the binaries, plus the loader.  Each
# is copied (dereferenced) to the path ldd printed: the loader finds them there.
libs=$(
    for b in "${BINS[@]}"; do
        out=$(ldd "$BUILD_DIR/$b" 2>&1) || die "ldd $BUILD_DIR/$b failed: $out"
        if grep -q 'not found' <<<"$out"; then
            die "ldd $BUILD_DIR/$b: $(grep 'not found' <<<"$out" | head -1 | sed 's/^[[:space:]]*//')"
        fi
        awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' <<<"$out"
    done | sort -u
)
[ -n "$libs" ] || die "ldd listed no libraries (static binaries are not expected)"
grep -q 'ld-linux' <<<"$libs" || die "ldd did not list the dynamic loader"
nlibs=0
while read -r lib; do
    [ -e "$lib" ] || die "library $lib (from ldd) does not exist"
    dest=$ROOT$lib
    mkdir -p "$(dirname "$dest")"
    cp -L "$lib" "$dest"
    nlibs=$((nlibs + 1))
done <<<"$libs"

# glibc >= 2.34 has the 'files' and 'dns' NSS modules built into libc, so
# name resolution (Docker's /etc/hosts and embedded DNS) needs no libnss_*.
cat >"$ROOT/etc/passwd" <<EOP
root:x:0:0:root:/root:/sbin/nologin
snapzone:x:$SZ_UID:$SZ_GID:snapzone:/data:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
EOP
cat >"$ROOT/etc/group" <<EOG
root:x:0:
snapzone:x:$SZ_GID:
nogroup:x:65534:
EOG
cat >"$ROOT/etc/nsswitch.conf" <<'EON'
passwd: files
group: files
shadow: files
hosts: files dns
networks: files
protocols: files
services: files
EON
printf '/usr/local/lib\n/usr/lib/x86_64-linux-gnu\n' >"$ROOT/etc/ld.so.conf"
if command -v ldconfig >/dev/null 2>&1; then
    ldconfig -r "$ROOT" 2>/dev/null || info "warning: ldconfig -r failed; the loader's default paths are used"
fi
chmod 0755 "$ROOT" "$ROOT/etc" "$ROOT/shared"
chmod 0644 "$ROOT"/etc/passwd "$ROOT"/etc/group "$ROOT"/etc/nsswitch.conf "$ROOT"/etc/ld.so.conf
chmod 1777 "$ROOT/tmp"
# Fixed times, so an unchanged build hits the builder's cache (same image id).
find "$ROOT" -exec touch -h -d @0 {} +

# /data comes from datadir/ in a second COPY --chown (see the Dockerfile): a
# directory that COPY creates gets the --chown owner, so it is not in rootfs.
mkdir -p "$STAGE/datadir"
chmod 0750 "$STAGE/datadir"
touch -h -d @0 "$STAGE/datadir"
cp "$SCRIPT_DIR/Dockerfile" "$STAGE/Dockerfile"

size=$(du -sk "$ROOT" | cut -f1)
info "rootfs: ${#BINS[@]} binaries, $nlibs libraries (incl. loader), $((size / 1024)) MiB"

# ---- build the image --------------------------------------------------------
# Plain 'docker build' (the classic builder; BuildKit/buildx is not needed for
# FROM scratch + COPY).  --pull=false: never contact a registry.
log=$STAGE/build.log
old_id=$(docker image inspect --format '{{.Id}}' "$TAG" 2>/dev/null || true)
if ! DOCKER_BUILDKIT=0 docker build --pull=false --network none \
    --build-arg SZ_UID=$SZ_UID --build-arg SZ_GID=$SZ_GID \
    -t "$TAG" -f "$STAGE/Dockerfile" "$STAGE" >"$log" 2>&1; then
    die "docker build failed: $(grep -v '^DEPRECATED\|^ *Install the buildx\|^ *BuildKit is currently\|^ *environment-variable\|^ *https://docs.docker\|^$' "$log" | tail -1)"
fi
id=$(docker image inspect --format '{{.Id}}' "$TAG" 2>/dev/null) || die "image $TAG not found after the build"
# The image TAG named before, if this build replaced it and nothing else
# names or uses it: remove it rather than leave it dangling.
if [ -n "$old_id" ] && [ "$old_id" != "$id" ] &&
    [ "$(docker image inspect --format '{{len .RepoTags}}' "$old_id" 2>/dev/null)" = 0 ]; then
    docker rmi "$old_id" >/dev/null 2>&1 && info "removed the previous, now untagged image ${old_id#sha256:}"
fi
info "built image $TAG"
echo "$id"
