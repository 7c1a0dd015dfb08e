#!/usr/bin/env bash
# local-cluster.sh: run a whole snapzone cluster (one snapcoord, N zones x M
# snapnode) on one machine for development and the integration tests: on
# 127.0.0.1, or (--netns) with every node as its own host in a network
# namespace, one bridge and subnet per zone.
#
#   local-cluster.sh up --dir DIR [--zones N] [--nodes-per-zone M]
#                       [--replicas R] [--port-base P] [--netns|--no-netns]
#                       [--coord-args "FLAGS"] [--node-args "FLAGS"]
#   local-cluster.sh down --dir DIR
#   local-cluster.sh start-node --dir DIR ID
#   local-cluster.sh start-coordinator --dir DIR
#   local-cluster.sh add-node --dir DIR --zone ZONE
#   local-cluster.sh cut-zone --dir DIR ZONE      (--netns clusters only)
#   local-cluster.sh heal-zone --dir DIR ZONE     (--netns clusters only)
#   local-cluster.sh status --dir DIR
#
# Settings not given to `up` are those of the DIR's previous `up` (else the
# defaults: 3 zones, 2 nodes per zone, R=3, port base 7400, no netns, no
# extra flags).  --coord-args / --node-args are extra flags (split on white
# space, no quoting) for every snapcoord / snapnode start, also by
# start-node, start-coordinator and add-node; "" clears them.
#
# --netns: each node runs in its own network namespace "sz<P>-<ID>" with a
# veth pair: "eth0" in the namespace (10.X.<zone#>.<10+k>/24, default route
# via .1) and "szv<P><zone letter><k>" on the zone's bridge "szb<P><zone
# letter>" (10.X.<zone#>.1/24 in the root namespace).  X is picked from the
# port base P (a 10.X.0.0/16 no route or address uses yet) and kept in
# cluster.conf.  IPv4 forwarding is enabled and `iptables -I FORWARD -i/-o
# <bridge> -j ACCEPT` lets traffic through Docker's FORWARD DROP policy.
# The coordinator listens on tcp://*:P in the root namespace; nodes reach it
# at tcp://10.X.<zone#>.1:P, clients at tcp://127.0.0.1:P.  cut-zone sets a
# zone's bridge and its veths down (the zone's processes keep running, cut
# off from everyone); heal-zone sets them up again.  Every bridge, veth,
# namespace and iptables rule is written to DIR/net.list *before* it is
# made, and `down` (or a failed `up`) removes exactly those.
#
# Layout of DIR:
#   cluster.conf      settings of the last `up` (reused by the other commands)
#   cluster.env       SNAPZONE_COORDINATOR=tcp://127.0.0.1:P
#   nodes.tsv         id zone endpoint pid data_dir (tab separated, header line)
#   coordinator.pid   pid of snapcoord
#   net.list          --netns: network objects made by `up`/`add-node`
#   coord/            snapcoord --data
#   nodes/<id>/       snapnode --data
#   logs/<name>.log   stdout+stderr of each daemon (appended across restarts)
#
# Binaries come from $SNAPZONE_BIN if set, else <repo>/build.
# Environment: SZ_UP_TIMEOUT (seconds to wait for the cluster, default 30).
# Exit codes: 0 ok, 1 failure, 2 usage; errors are one line on stderr.
set -euo pipefail

PROG=local-cluster.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
PY=/usr/bin/python3
UP_TIMEOUT=${SZ_UP_TIMEOUT:-30}
STOP_TIMEOUT=10
NET_LOCK=/run/lock/snapzone-local-cluster-net.lock

USAGE="usage: $PROG up|down|start-node|start-coordinator|add-node|cut-zone|heal-zone|status --dir DIR [--zones N] [--nodes-per-zone M] [--replicas R] [--port-base P] [--netns] [--coord-args FLAGS] [--node-args FLAGS] [--zone ZONE] [ID|ZONE]"

usage() {
    if [ $# -gt 0 ]; then
        echo "$PROG: $*; $USAGE" >&2
    else
        echo "$USAGE" >&2
    fi
    exit 2
}

die() {
    echo "$PROG: error: $*" >&2
    exit 1
}

is_uint() {
    [[ $1 =~ ^[0-9]+$ ]] && [ "${#1}" -le 6 ]
}

# ---- settings ---------------------------------------------------------------

DIR=""
ZONES=""
NPZ=""
REPLICAS=""
PORT_BASE=""
BIN_DIR=""
NODE_ARG=""
NETNS=""
NET_X=""
COORD_ARGS=""
NODE_ARGS=""
COORD_ARGS_SET=0
NODE_ARGS_SET=0
ZONE_OPT=""

C_ZONES=""
C_NPZ=""
C_REPLICAS=""
C_PORT_BASE=""
C_BIN_DIR=""
C_NETNS=""
C_NET_X=""
C_COORD_ARGS=""
C_NODE_ARGS=""

# load_conf: read DIR/cluster.conf (KEY=VALUE lines) without sourcing it.
load_conf() {
    local conf="$DIR/cluster.conf" key val
    [ -f "$conf" ] || return 1
    while IFS='=' read -r key val; do
        case "$key" in
            ZONES) C_ZONES=$val ;;
            NODES_PER_ZONE) C_NPZ=$val ;;
            REPLICAS) C_REPLICAS=$val ;;
            PORT_BASE) C_PORT_BASE=$val ;;
            BIN_DIR) C_BIN_DIR=$val ;;
            NETNS) C_NETNS=$val ;;
            NET_X) C_NET_X=$val ;;
            COORD_ARGS) C_COORD_ARGS=$val ;;
            NODE_ARGS) C_NODE_ARGS=$val ;;
            *) ;;
        esac
    done <"$conf"
    return 0
}

write_atomic() { # write_atomic FILE  (content on stdin)
    local tmp
    tmp="$1.tmp.$$"
    cat >"$tmp"
    mv -f "$tmp" "$1"
}

write_conf() {
    printf 'ZONES=%s\nNODES_PER_ZONE=%s\nREPLICAS=%s\nPORT_BASE=%s\nBIN_DIR=%s\nNETNS=%s\nNET_X=%s\nCOORD_ARGS=%s\nNODE_ARGS=%s\n' \
        "$ZONES" "$NPZ" "$REPLICAS" "$PORT_BASE" "$BIN_DIR" "$NETNS" "$NET_X" \
        "$COORD_ARGS" "$NODE_ARGS" | write_atomic "$DIR/cluster.conf"
}

# require_conf: for every command but `up`: settings come from cluster.conf.
require_conf() {
    [ -d "$DIR" ] || die "no cluster directory $DIR"
    DIR=$(cd "$DIR" && pwd)
    load_conf || die "no cluster.conf in $DIR (run '$PROG up --dir $DIR' first)"
    ZONES=$C_ZONES
    NPZ=$C_NPZ
    REPLICAS=$C_REPLICAS
    PORT_BASE=$C_PORT_BASE
    NETNS=${C_NETNS:-0}
    NET_X=$C_NET_X
    COORD_ARGS=$C_COORD_ARGS
    NODE_ARGS=$C_NODE_ARGS
    BIN_DIR=${C_BIN_DIR:-}
    if [ -n "${SNAPZONE_BIN:-}" ]; then BIN_DIR=$SNAPZONE_BIN; fi
    [ -n "$BIN_DIR" ] || BIN_DIR="$REPO_DIR/build"
    for v in "$ZONES" "$NPZ" "$REPLICAS" "$PORT_BASE"; do
        is_uint "$v" || die "corrupt $DIR/cluster.conf"
    done
    case "$NETNS" in 0 | 1) ;; *) die "corrupt $DIR/cluster.conf (NETNS=$NETNS)" ;; esac
    if [ "$NETNS" = 1 ]; then
        is_uint "$NET_X" || die "corrupt $DIR/cluster.conf (NET_X=$NET_X)"
    fi
}

# Client-side endpoint of the coordinator (also written to cluster.env).
coord_endpoint() { echo "tcp://127.0.0.1:$PORT_BASE"; }

# What snapcoord binds: all addresses in --netns mode (nodes come in over
# the zone bridges), else loopback only.
coord_listen() {
    if [ "$NETNS" = 1 ]; then echo "tcp://*:$PORT_BASE"; else coord_endpoint; fi
}

LETTERS=abcdefghijklmnopqrstuvwxyz

zone_name() { # zone_name INDEX(0-based) -> zone-a, zone-b, ...
    echo "zone-${LETTERS:$1:1}"
}

# zone_index ZONE: 0-based index of zone-a..zone-z (fails for other names).
zone_index() {
    local z=$1 l
    [[ $z =~ ^zone-([a-z])$ ]] || return 1
    l=${BASH_REMATCH[1]}
    l=${LETTERS%%"$l"*}
    echo "${#l}"
}

# ---- network (--netns) ------------------------------------------------------

bridge_name() { echo "szb${PORT_BASE}${LETTERS:$1:1}"; } # ZONE_INDEX
veth_name() { echo "szv${PORT_BASE}${LETTERS:$1:1}$2"; } # ZONE_INDEX K
ns_name() { echo "sz${PORT_BASE}-$1"; }                  # NODE_ID
zone_gw() { echo "10.$NET_X.$(($1 + 1)).1"; }            # ZONE_INDEX
node_addr() { echo "10.$NET_X.$(($1 + 1)).$((10 + $2))"; } # ZONE_INDEX K

# node_zone_k ID -> "ZONE_INDEX K" for ids zone-<l>-n<k>
node_zone_k() {
    [[ $1 =~ ^zone-([a-z])-n([0-9]+)$ ]] || return 1
    local zi
    zi=$(zone_index "zone-${BASH_REMATCH[1]}") || return 1
    echo "$zi $((10#${BASH_REMATCH[2]}))"
}

net_record() { # net_record KIND ARGS...: remember an object before making it
    printf '%s\n' "$*" >>"$DIR/net.list"
}

# iptables commands whose FORWARD chain needs our ACCEPT rules: iptables
# always; iptables-legacy too if its FORWARD policy is not ACCEPT.
ipt_cmds() {
    echo iptables
    if command -v iptables-legacy >/dev/null 2>&1 &&
        ! iptables-legacy -S FORWARD 2>/dev/null | grep -qx -- '-P FORWARD ACCEPT'; then
        iptables-legacy -S FORWARD >/dev/null 2>&1 && echo iptables-legacy
    fi
    return 0
}

# net_teardown: remove, newest first, every object listed in DIR/net.list
# (missing ones are skipped), then the list itself.
net_teardown() {
    local list="$DIR/net.list" kind a b rest pid
    [ -f "$list" ] || return 0
    local lines=()
    mapfile -t lines <"$list"
    local i
    for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
        read -r kind a b rest <<<"${lines[$i]}" || true
        case "$kind" in
            ipt)
                # "ipt CMD -i|-o BRIDGE"
                while "$a" -D FORWARD "$b" "$rest" -j ACCEPT 2>/dev/null; do :; done
                ;;
            ns)
                if [ -e "/run/netns/$a" ]; then
                    for pid in $(ip netns pids "$a" 2>/dev/null || true); do
                        kill -KILL "$pid" 2>/dev/null || true
                    done
                    ip netns del "$a" 2>/dev/null || true
                fi
                ;;
            veth | bridge)
                if ip link show dev "$a" >/dev/null 2>&1; then
                    ip link del dev "$a" 2>/dev/null || true
                fi
                ;;
            *) ;;
        esac
    done
    rm -f "$list"
}

net_lock() { # hold the machine-wide lock for network setup on fd 9
    mkdir -p "$(dirname "$NET_LOCK")"
    exec 9>"$NET_LOCK"
    flock -w 60 9 || die "could not lock $NET_LOCK"
}

net_unlock() { exec 9>&-; }

# subnet_used X: 10.X.0.0/16 overlaps a route or an address of the root
# namespace.
subnet_used() {
    ip -4 -o addr show 2>/dev/null | grep -q " 10\.$1\." && return 0
    ip -4 route show table all 2>/dev/null | grep -q "^\(local \|broadcast \)\?10\.$1\." && return 0
    return 1
}

# pick_net_x: keep the previous X if still free, else one derived from the
# port base, probing upwards.
pick_net_x() {
    local x i
    if is_uint "${C_NET_X:-}" && [ "$C_NET_X" -ge 16 ] && [ "$C_NET_X" -le 239 ] &&
        ! subnet_used "$C_NET_X"; then
        echo "$C_NET_X"
        return 0
    fi
    for ((i = 0; i < 224; i++)); do
        x=$((16 + (PORT_BASE + i) % 224))
        if ! subnet_used "$x"; then
            echo "$x"
            return 0
        fi
    done
    return 1
}

# net_zone ZONE_INDEX: bridge with its gateway address and FORWARD rules.
net_zone() {
    local zi=$1 br cmd
    br=$(bridge_name "$zi")
    net_record bridge "$br"
    ip link add name "$br" type bridge || return 1
    ip addr add "$(zone_gw "$zi")/24" dev "$br" || return 1
    ip link set dev "$br" up || return 1
    for cmd in $(ipt_cmds); do
        net_record ipt "$cmd" -i "$br"
        "$cmd" -I FORWARD -i "$br" -j ACCEPT || return 1
        net_record ipt "$cmd" -o "$br"
        "$cmd" -I FORWARD -o "$br" -j ACCEPT || return 1
    done
}

# net_node ID: namespace, veth pair on the zone bridge, address, route.
net_node() {
    local id=$1 zk zi k ns veth
    zk=$(node_zone_k "$id") || return 1
    read -r zi k <<<"$zk"
    ns=$(ns_name "$id")
    veth=$(veth_name "$zi" "$k")
    net_record ns "$ns"
    ip netns add "$ns" || return 1
    ip -n "$ns" link set dev lo up || return 1
    net_record veth "$veth"
    ip link add name "$veth" type veth peer name eth0 netns "$ns" || return 1
    ip link set dev "$veth" master "$(bridge_name "$zi")" || return 1
    ip link set dev "$veth" up || return 1
    ip -n "$ns" addr add "$(node_addr "$zi" "$k")/24" dev eth0 || return 1
    ip -n "$ns" link set dev eth0 up || return 1
    ip -n "$ns" route add default via "$(zone_gw "$zi")" || return 1
}

# net_conflict: print a network object of this port base that exists but
# is not ours (not in DIR/net.list).
net_conflict() {
    local zi br
    for ((zi = 0; zi < ZONES; zi++)); do
        br=$(bridge_name "$zi")
        if ip link show dev "$br" >/dev/null 2>&1; then
            echo "bridge $br"
            return 0
        fi
    done
    if ip netns list 2>/dev/null | grep -q "^sz${PORT_BASE}-"; then
        echo "namespaces sz${PORT_BASE}-*"
        return 0
    fi
    return 0
}

check_net_tools() {
    local t
    for t in ip iptables flock sysctl; do
        command -v "$t" >/dev/null 2>&1 || die "--netns needs '$t' (not found)"
    done
    [ "$(id -u)" = 0 ] || die "--netns needs root"
}

# ---- processes --------------------------------------------------------------

# proc_alive PID NAME DATADIR: PID is a live (non-zombie) NAME process whose
# command line carries "--data DATADIR".
proc_alive() {
    local pid=$1 name=$2 data=$3 state
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [ -r "/proc/$pid/cmdline" ] || return 1
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
    case "$state" in Z | X | "") return 1 ;; *) ;; esac
    "$PY" - "$pid" "$name" "$data" <<'EOF'
import os, sys
pid, name, data = sys.argv[1], sys.argv[2], sys.argv[3]
try:
    with open("/proc/%s/cmdline" % pid, "rb") as f:
        argv = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
except OSError:
    sys.exit(1)
if not argv or os.path.basename(argv[0]) != name:
    sys.exit(1)
for i, a in enumerate(argv):
    if a == "--data" and i + 1 < len(argv) and os.path.abspath(argv[i + 1]) == os.path.abspath(data):
        sys.exit(0)
    if a == "--data=" + data:
        sys.exit(0)
sys.exit(1)
EOF
}

# start_proc LOG PIDFILE NS CMD...: start CMD detached (new session, no
# controlling terminal, stdin /dev/null, stdout+stderr appended to LOG),
# inside network namespace NS unless NS is "", and echo its pid.  The
# wrapper shell writes its own pid and then execs CMD (through `ip netns
# exec`, which execs too), so the pid is CMD's even when setsid has to fork.
# CMD never inherits the lock descriptors 8 and 9.
start_proc() {
    local log=$1 pidfile=$2 ns=$3 i pid
    shift 3
    rm -f "$pidfile"
    # shellcheck disable=SC2016 # $$ and $@ expand in the wrapper shell
    nohup setsid bash -c 'echo $$ >"$0.tmp" && mv -f "$0.tmp" "$0" || exit 1
ns=$1; shift
if [ -n "$ns" ]; then exec ip netns exec "$ns" "$@"; else exec "$@"; fi' \
        "$pidfile" "$ns" "$@" >>"$log" 2>&1 </dev/null 8>&- 9>&- &
    pid=""
    for ((i = 0; i < 100; i++)); do
        if [ -s "$pidfile" ]; then
            pid=$(cat "$pidfile")
            rm -f "$pidfile"
            break
        fi
        sleep 0.05
    done
    [ -n "$pid" ] || return 1
    # wait until the wrapper has exec'd CMD (or died), so that callers see
    # CMD's command line in /proc and never the wrapper's
    local argv0
    for ((i = 0; i < 100; i++)); do
        argv0=$({ tr '\0' '\n' <"/proc/$pid/cmdline" | head -n 1; } 2>/dev/null || true)
        [ "$argv0" = "$1" ] && break
        [ -e "/proc/$pid" ] || break
        sleep 0.05
    done
    echo "$pid"
    return 0
}

# start_coord: start snapcoord (with COORD_ARGS) and echo its pid.
start_coord() {
    local extra=()
    read -r -a extra <<<"$COORD_ARGS" || true
    start_proc "$DIR/logs/snapcoord.log" "$DIR/run/snapcoord.pid" "" \
        "$BIN_DIR/snapcoord" --listen "$(coord_listen)" --data "$DIR/coord" \
        --replicas "$REPLICAS" ${extra[@]+"${extra[@]}"}
}

# start_node_proc ID ZONE ENDPOINT DATA: start snapnode (with NODE_ARGS, in
# its namespace in --netns mode) and echo its pid.
start_node_proc() {
    local id=$1 zone=$2 ep=$3 data=$4 ns="" cep extra=() zk zi k
    read -r -a extra <<<"$NODE_ARGS" || true
    cep=$(coord_endpoint)
    if [ "$NETNS" = 1 ]; then
        zk=$(node_zone_k "$id") || return 1
        read -r zi k <<<"$zk"
        ns=$(ns_name "$id")
        cep="tcp://$(zone_gw "$zi"):$PORT_BASE"
    fi
    start_proc "$DIR/logs/$id.log" "$DIR/run/$id.pid" "$ns" \
        "$BIN_DIR/snapnode" --id "$id" --zone "$zone" --listen "$ep" \
        --data "$data" --coordinator "$cep" ${extra[@]+"${extra[@]}"}
}

log_size() { # bytes in a log file (0 if missing)
    if [ -f "$1" ]; then stat -c %s "$1"; else echo 0; fi
}

# log_has_since LOG OFFSET TEXT: TEXT occurs in LOG after byte OFFSET.
log_has_since() {
    [ -f "$1" ] || return 1
    tail -c +"$(($2 + 1))" "$1" 2>/dev/null | grep -qF -- "$3"
}

log_tail() { # log_tail NAME: last lines of a daemon's log, indented
    local log="$DIR/logs/$1.log"
    if [ -f "$log" ]; then
        echo "--- tail of $log ---" >&2
        tail -n 15 "$log" >&2 || true
    else
        echo "--- no log $log ---" >&2
    fi
}

snapctl_status() { # JSON of `snapctl cluster status --json` on stdout
    timeout 10 "$BIN_DIR/snapctl" --coordinator "$(coord_endpoint)" cluster status --json
}

# not_up ID...: print the ids that `cluster status` does not list as up
# ("coordinator" if the status call itself fails); return 0 iff all are up.
not_up() {
    local out
    if ! out=$(snapctl_status 2>/dev/null); then
        echo "coordinator"
        return 1
    fi
    printf '%s' "$out" | "$PY" -c '
import json, sys
try:
    d = json.loads(sys.stdin.read())
    st = {n.get("id"): n.get("state") for n in d.get("nodes", [])}
except Exception:
    print("coordinator(bad status JSON)")
    sys.exit(1)
missing = [i for i in sys.argv[1:] if st.get(i) != "up"]
print(" ".join(missing))
sys.exit(1 if missing else 0)
' "$@"
}

ports_in_use() { # print the ports among $@ that cannot be bound on 127.0.0.1
    "$PY" - "$@" <<'EOF'
import socket, sys
bad = []
for p in sys.argv[1:]:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", int(p)))
    except OSError:
        bad.append(p)
    finally:
        s.close()
print(" ".join(bad))
EOF
}

# wait_node_up ID PID DATA LOG OFFSET: wait until the node logged "ready"
# after OFFSET and the coordinator lists it as up; exit 1 on failure.
wait_node_up() {
    local id=$1 pid=$2 data=$3 log=$4 off=$5 deadline=$((SECONDS + UP_TIMEOUT))
    while :; do
        if ! proc_alive "$pid" snapnode "$data"; then
            echo "$PROG: error: snapnode $id exited during startup" >&2
            log_tail "$id"
            exit 1
        fi
        if log_has_since "$log" "$off" "ready on" && not_up "$id" >/dev/null; then
            return 0
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "$PROG: error: node $id not up after ${UP_TIMEOUT}s" >&2
            log_tail "$id"
            exit 1
        fi
        sleep 0.2
    done
}

# ---- nodes.tsv --------------------------------------------------------------

NODES_HEADER=$'id\tzone\tendpoint\tpid\tdata_dir'

tsv_lock() { # serialize read-modify-write of nodes.tsv (fd 8)
    mkdir -p "$DIR/run"
    exec 8>"$DIR/run/nodes.lock"
    flock -w 30 8 || die "could not lock $DIR/run/nodes.lock"
}

# running_pids: print "kind id pid" for every live daemon of DIR.
running_pids() {
    local id zone ep pid data cpid
    if [ -f "$DIR/coordinator.pid" ]; then
        cpid=$(tr -d ' \n' <"$DIR/coordinator.pid")
        if proc_alive "$cpid" snapcoord "$DIR/coord"; then
            echo "snapcoord coordinator $cpid"
        fi
    fi
    if [ -f "$DIR/nodes.tsv" ]; then
        while IFS=$'\t' read -r id zone ep pid data; do
            [ "$id" = "id" ] && continue
            [ -n "$id" ] || continue
            if proc_alive "$pid" snapnode "$data"; then
                echo "snapnode $id $pid"
            fi
        done <"$DIR/nodes.tsv"
    fi
}

# kill_started PID...: used when `up` fails: stop what it started.
kill_started() {
    local pid i
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    for ((i = 0; i < 50; i++)); do
        local any=0
        for pid in "$@"; do
            if [ -e "/proc/$pid" ] && [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]; then any=1; fi
        done
        [ "$any" = 0 ] && return 0
        sleep 0.1
    done
    for pid in "$@"; do kill -KILL "$pid" 2>/dev/null || true; done
}

check_bins() {
    local b
    for b in snapcoord snapnode snapctl; do
        [ -x "$BIN_DIR/$b" ] || die "missing binary $BIN_DIR/$b (set SNAPZONE_BIN or build into $REPO_DIR/build)"
    done
}

# ---- commands ---------------------------------------------------------------

UP_DONE=0
UP_NET=0
UP_STARTED=()

# up_cleanup: EXIT trap of `up`: if it did not finish, stop what it started
# and remove the network objects it made.
up_cleanup() {
    [ "$UP_DONE" = 1 ] && return 0
    if [ ${#UP_STARTED[@]} -gt 0 ]; then kill_started "${UP_STARTED[@]}"; fi
    if [ "$UP_NET" = 1 ]; then net_teardown 2>/dev/null || true; fi
    return 0
}

cmd_up() {
    local have_conf=0
    if [ -d "$DIR" ] && load_conf; then have_conf=1; fi
    # Defaults: the previous settings of this DIR, else the built-in ones.
    if [ -z "$ZONES" ]; then if [ $have_conf = 1 ]; then ZONES=$C_ZONES; else ZONES=3; fi; fi
    if [ -z "$NPZ" ]; then if [ $have_conf = 1 ]; then NPZ=$C_NPZ; else NPZ=2; fi; fi
    if [ -z "$REPLICAS" ]; then if [ $have_conf = 1 ]; then REPLICAS=$C_REPLICAS; else REPLICAS=3; fi; fi
    if [ -z "$PORT_BASE" ]; then if [ $have_conf = 1 ]; then PORT_BASE=$C_PORT_BASE; else PORT_BASE=7400; fi; fi
    if [ -z "$NETNS" ]; then if [ "$C_NETNS" = 1 ]; then NETNS=1; else NETNS=0; fi; fi
    if [ "$COORD_ARGS_SET" = 0 ]; then COORD_ARGS=$C_COORD_ARGS; fi
    if [ "$NODE_ARGS_SET" = 0 ]; then NODE_ARGS=$C_NODE_ARGS; fi
    if [ -n "${SNAPZONE_BIN:-}" ]; then BIN_DIR=$SNAPZONE_BIN; else BIN_DIR="$REPO_DIR/build"; fi
    for v in "$ZONES" "$NPZ" "$REPLICAS" "$PORT_BASE"; do
        is_uint "$v" || usage "not a number: $v"
    done
    if [ "$ZONES" -lt 1 ] || [ "$ZONES" -gt 26 ]; then usage "--zones must be 1..26"; fi
    if [ "$NPZ" -lt 1 ] || [ "$NPZ" -gt 100 ]; then usage "--nodes-per-zone must be 1..100"; fi
    if [ "$REPLICAS" -lt 1 ] || [ "$REPLICAS" -gt 8 ]; then usage "--replicas must be 1..8"; fi
    local nnodes=$((ZONES * NPZ))
    if [ "$PORT_BASE" -lt 1024 ] || [ $((PORT_BASE + nnodes)) -gt 65535 ]; then
        usage "--port-base must leave room for $((nnodes + 1)) ports in 1024..65535"
    fi
    BIN_DIR=$(cd "$BIN_DIR" 2>/dev/null && pwd) || die "no binary directory ${SNAPZONE_BIN:-$REPO_DIR/build}"
    check_bins
    if [ "$NETNS" = 1 ]; then check_net_tools; fi

    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd)
    local running
    running=$(running_pids)
    if [ -n "$running" ]; then
        die "$DIR already has a running cluster ($(echo "$running" | awk '{printf "%s%s %s", (NR>1?", ":""), $2, $3}')); run '$PROG down --dir $DIR' first"
    fi
    local ports=() i
    if [ "$NETNS" = 1 ]; then
        ports=("$PORT_BASE") # node ports live in their own namespaces
    else
        for ((i = 0; i <= nnodes; i++)); do ports+=($((PORT_BASE + i))); done
    fi
    local busy
    busy=$(ports_in_use "${ports[@]}")
    [ -z "$busy" ] || die "port(s) in use on 127.0.0.1: $busy"

    mkdir -p "$DIR/coord" "$DIR/logs" "$DIR/nodes" "$DIR/run"
    rm -f "$DIR/cluster.env"
    trap up_cleanup EXIT

    local z k zone
    if [ "$NETNS" = 1 ]; then
        net_lock
        # leftovers of an earlier up of this DIR (nothing of it runs)
        net_teardown
        local conflict
        conflict=$(net_conflict)
        [ -z "$conflict" ] || die "network tag sz$PORT_BASE in use ($conflict exists); pick another --port-base"
        NET_X=$(pick_net_x) || die "no free 10.X.0.0/16 subnet for the cluster network"
        UP_NET=1
        write_conf
        sysctl -q -w net.ipv4.ip_forward=1 >/dev/null 2>>"$DIR/logs/net.log" ||
            die "could not enable net.ipv4.ip_forward (see $DIR/logs/net.log)"
        for ((z = 0; z < ZONES; z++)); do
            net_zone "$z" 2>>"$DIR/logs/net.log" ||
                die "could not set up bridge $(bridge_name "$z") (see $DIR/logs/net.log)"
        done
        for ((z = 0; z < ZONES; z++)); do
            zone=$(zone_name "$z")
            for ((k = 1; k <= NPZ; k++)); do
                net_node "$zone-n$k" 2>>"$DIR/logs/net.log" ||
                    die "could not set up namespace $(ns_name "$zone-n$k") (see $DIR/logs/net.log)"
            done
        done
        net_unlock
    else
        NET_X=""
        write_conf
    fi

    local cep cpid offsets=() ids=() rows=""
    cep=$(coord_endpoint)
    local coff
    coff=$(log_size "$DIR/logs/snapcoord.log")
    cpid=$(start_coord) || die "could not start snapcoord"
    UP_STARTED+=("$cpid")
    echo "$cpid" | write_atomic "$DIR/coordinator.pid"

    local idx=0 id ep data pid
    for ((z = 0; z < ZONES; z++)); do
        zone=$(zone_name "$z")
        for ((k = 1; k <= NPZ; k++)); do
            id="$zone-n$k"
            if [ "$NETNS" = 1 ]; then
                ep="tcp://$(node_addr "$z" "$k"):$((PORT_BASE + 1 + idx))"
            else
                ep="tcp://127.0.0.1:$((PORT_BASE + 1 + idx))"
            fi
            data="$DIR/nodes/$id"
            mkdir -p "$data"
            offsets+=("$(log_size "$DIR/logs/$id.log")")
            pid=$(start_node_proc "$id" "$zone" "$ep" "$data") || die "could not start snapnode $id"
            UP_STARTED+=("$pid")
            ids+=("$id")
            rows+=$(printf '%s\t%s\t%s\t%s\t%s' "$id" "$zone" "$ep" "$pid" "$data")$'\n'
            idx=$((idx + 1))
        done
    done
    printf '%s\n%s' "$NODES_HEADER" "$rows" | write_atomic "$DIR/nodes.tsv"

    # Wait until every daemon logged "ready" (after this start) and the
    # coordinator lists every node as up.
    local deadline=$((SECONDS + UP_TIMEOUT)) missing="" n
    while :; do
        missing=""
        if ! proc_alive "$cpid" snapcoord "$DIR/coord"; then
            echo "$PROG: error: snapcoord exited during startup" >&2
            log_tail snapcoord
            exit 1
        fi
        local notready=""
        for ((n = 0; n < ${#ids[@]}; n++)); do
            if ! proc_alive "${UP_STARTED[$((n + 1))]}" snapnode "$DIR/nodes/${ids[$n]}"; then
                echo "$PROG: error: snapnode ${ids[$n]} exited during startup" >&2
                log_tail "${ids[$n]}"
                exit 1
            fi
            if ! log_has_since "$DIR/logs/${ids[$n]}.log" "${offsets[$n]}" "ready on"; then
                notready+="${notready:+ }${ids[$n]}"
            fi
        done
        if ! log_has_since "$DIR/logs/snapcoord.log" "$coff" "ready on"; then
            missing="coordinator"
        elif ! missing=$(not_up "${ids[@]}"); then
            :
        elif [ -n "$notready" ]; then
            missing="$notready (no 'ready on' log line)"
        else
            break
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "$PROG: error: cluster not up after ${UP_TIMEOUT}s: not up: $missing" >&2
            local first=${missing%% *}
            case "$first" in
                coordinator*) log_tail snapcoord ;;
                *) log_tail "$first" ;;
            esac
            exit 1
        fi
        sleep 0.2
    done
    UP_DONE=1
    trap - EXIT
    echo "SNAPZONE_COORDINATOR=$cep" | write_atomic "$DIR/cluster.env"
    echo "SNAPZONE_COORDINATOR=$cep"
}

# down_net: remove the --netns objects of DIR, if any.
down_net() {
    [ -f "$DIR/net.list" ] || return 0
    local n
    n=$(grep -c . "$DIR/net.list" || true)
    net_lock
    net_teardown
    net_unlock
    echo "removed $n network objects (namespaces, veths, bridges, iptables rules)"
}

cmd_down() {
    [ -d "$DIR" ] || die "no cluster directory $DIR"
    DIR=$(cd "$DIR" && pwd)
    local lines kind id pid
    lines=$(running_pids)
    if [ -z "$lines" ]; then
        echo "nothing running in $DIR"
        rm -f "$DIR/cluster.env"
        down_net
        return 0
    fi
    local pids=() names=()
    while read -r kind id pid; do
        [ -n "$pid" ] || continue
        kill -TERM "$pid" 2>/dev/null || true
        pids+=("$pid")
        names+=("$kind $id")
    done <<<"$lines"
    local deadline=$((SECONDS + STOP_TIMEOUT)) left i
    while :; do
        left=0
        for ((i = 0; i < ${#pids[@]}; i++)); do
            if [ -e "/proc/${pids[$i]}" ] &&
                [ "$(awk '{print $3}' "/proc/${pids[$i]}/stat" 2>/dev/null)" != Z ]; then
                left=1
            fi
        done
        [ $left = 0 ] && break
        if [ $SECONDS -ge $deadline ]; then
            for ((i = 0; i < ${#pids[@]}; i++)); do
                if [ -e "/proc/${pids[$i]}" ] &&
                    [ "$(awk '{print $3}' "/proc/${pids[$i]}/stat" 2>/dev/null)" != Z ]; then
                    kill -KILL "${pids[$i]}" 2>/dev/null || true
                    echo "killed ${names[$i]} (pid ${pids[$i]}) after ${STOP_TIMEOUT}s"
                    names[i]=""
                fi
            done
            break
        fi
        sleep 0.1
    done
    for ((i = 0; i < ${#pids[@]}; i++)); do
        [ -n "${names[$i]}" ] && echo "stopped ${names[$i]} (pid ${pids[$i]})"
    done
    rm -f "$DIR/cluster.env"
    down_net
    return 0
}

# need_ns ID: in --netns mode the node's namespace must exist.
need_ns() {
    [ "$NETNS" = 1 ] || return 0
    local ns
    ns=$(ns_name "$1")
    [ -e "/run/netns/$ns" ] || die "no network namespace $ns for node $1 (cluster is down? run '$PROG up --dir $DIR')"
}

cmd_start_node() {
    require_conf
    check_bins
    [ -f "$DIR/nodes.tsv" ] || die "no nodes.tsv in $DIR"
    tsv_lock
    local row id zone ep pid data
    row=$(awk -F'\t' -v id="$NODE_ARG" 'NR>1 && $1==id' "$DIR/nodes.tsv")
    [ -n "$row" ] || die "no node $NODE_ARG in $DIR/nodes.tsv"
    IFS=$'\t' read -r id zone ep pid data <<<"$row"
    if proc_alive "$pid" snapnode "$data"; then
        die "node $id is already running (pid $pid)"
    fi
    need_ns "$id"
    if [ "$NETNS" != 1 ]; then
        local port=${ep##*:} busy
        busy=$(ports_in_use "$port")
        [ -z "$busy" ] || die "port $port of node $id is in use"
    fi
    local log="$DIR/logs/$id.log" off newpid
    off=$(log_size "$log")
    mkdir -p "$DIR/run" "$data" "$DIR/logs"
    newpid=$(start_node_proc "$id" "$zone" "$ep" "$data") || die "could not start snapnode $id"
    awk -F'\t' -v OFS='\t' -v id="$id" -v pid="$newpid" 'NR>1 && $1==id {$4=pid} {print}' \
        "$DIR/nodes.tsv" | write_atomic "$DIR/nodes.tsv"
    exec 8>&-
    wait_node_up "$id" "$newpid" "$data" "$log" "$off"
    echo "started snapnode $id (pid $newpid) on $ep"
}

cmd_start_coordinator() {
    require_conf
    check_bins
    local cpid=""
    if [ -f "$DIR/coordinator.pid" ]; then cpid=$(tr -d ' \n' <"$DIR/coordinator.pid"); fi
    if proc_alive "$cpid" snapcoord "$DIR/coord"; then
        die "coordinator is already running (pid $cpid)"
    fi
    local busy
    busy=$(ports_in_use "$PORT_BASE")
    [ -z "$busy" ] || die "coordinator port $PORT_BASE is in use"
    local log="$DIR/logs/snapcoord.log" off newpid
    off=$(log_size "$log")
    mkdir -p "$DIR/run" "$DIR/coord" "$DIR/logs"
    newpid=$(start_coord) || die "could not start snapcoord"
    echo "$newpid" | write_atomic "$DIR/coordinator.pid"
    local deadline=$((SECONDS + UP_TIMEOUT))
    while :; do
        if ! proc_alive "$newpid" snapcoord "$DIR/coord"; then
            echo "$PROG: error: snapcoord exited during startup" >&2
            log_tail snapcoord
            exit 1
        fi
        if log_has_since "$log" "$off" "ready on" && snapctl_status >/dev/null 2>&1; then
            break
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "$PROG: error: coordinator not up after ${UP_TIMEOUT}s" >&2
            log_tail snapcoord
            exit 1
        fi
        sleep 0.2
    done
    echo "started snapcoord (pid $newpid) on $(coord_endpoint)"
}

# zone_arg ZONE: ZONE must be one of the cluster's zones; echo its index.
zone_arg() {
    local zi
    zi=$(zone_index "$1") || die "no zone '$1' (zones are zone-a..$(zone_name $((ZONES - 1))))"
    [ "$zi" -lt "$ZONES" ] || die "no zone '$1' (zones are zone-a..$(zone_name $((ZONES - 1))))"
    echo "$zi"
}

cmd_add_node() {
    require_conf
    check_bins
    [ -f "$DIR/nodes.tsv" ] || die "no nodes.tsv in $DIR"
    local zi
    zi=$(zone_arg "$ZONE_OPT")
    local cpid=""
    if [ -f "$DIR/coordinator.pid" ]; then cpid=$(tr -d ' \n' <"$DIR/coordinator.pid"); fi
    proc_alive "$cpid" snapcoord "$DIR/coord" || die "the coordinator of $DIR is not running"
    tsv_lock
    # next free k in the zone and the next port after every one in use
    local k port
    read -r k port < <(awk -F'\t' -v z="$ZONE_OPT" -v pb="$PORT_BASE" '
        BEGIN { k = 0; p = pb }
        NR > 1 {
            n = split($3, a, ":"); if (a[n] + 0 > p) p = a[n] + 0
            if ($2 == z && match($1, /-n[0-9]+$/)) { v = substr($1, RSTART + 2) + 0; if (v > k) k = v }
        }
        END { print k + 1, p + 1 }' "$DIR/nodes.tsv")
    [ "$port" -le 65535 ] || die "no port left above $PORT_BASE"
    local id="$ZONE_OPT-n$k" ep
    if [ "$NETNS" = 1 ]; then
        ep="tcp://$(node_addr "$zi" "$k"):$port"
        [ $((10 + k)) -le 254 ] || die "zone $ZONE_OPT has no address left for node $k"
        net_lock
        net_node "$id" 2>>"$DIR/logs/net.log" ||
            die "could not set up namespace $(ns_name "$id") (see $DIR/logs/net.log; '$PROG down' removes it)"
        net_unlock
    else
        local busy
        busy=$(ports_in_use "$port")
        [ -z "$busy" ] || die "port $port for node $id is in use"
        ep="tcp://127.0.0.1:$port"
    fi
    local data="$DIR/nodes/$id" log="$DIR/logs/$id.log" off pid
    mkdir -p "$data" "$DIR/logs"
    off=$(log_size "$log")
    pid=$(start_node_proc "$id" "$ZONE_OPT" "$ep" "$data") || die "could not start snapnode $id"
    printf '%s\t%s\t%s\t%s\t%s\n' "$id" "$ZONE_OPT" "$ep" "$pid" "$data" >>"$DIR/nodes.tsv"
    exec 8>&-
    wait_node_up "$id" "$pid" "$data" "$log" "$off"
    echo "started snapnode $id (pid $pid) on $ep"
}

# cmd_cut_heal down|up: set a zone's bridge and every veth on it down/up.
cmd_cut_heal() {
    local how=$1
    require_conf
    [ "$NETNS" = 1 ] || die "$CMD needs a cluster started with --netns"
    local zi br links=() l
    zi=$(zone_arg "$NODE_ARG")
    br=$(bridge_name "$zi")
    ip link show dev "$br" >/dev/null 2>&1 || die "no bridge $br (cluster is down?)"
    mapfile -t links < <(ip -o link show master "$br" 2>/dev/null | awk -F': ' '{sub(/@.*/, "", $2); print $2}')
    if [ "$how" = down ]; then
        for l in ${links[@]+"${links[@]}"}; do
            ip link set dev "$l" down 2>/dev/null || die "could not set $l down"
        done
        ip link set dev "$br" down 2>/dev/null || die "could not set $br down"
        echo "cut $NODE_ARG: bridge $br and ${#links[@]} veths down"
    else
        ip link set dev "$br" up 2>/dev/null || die "could not set $br up"
        for l in ${links[@]+"${links[@]}"}; do
            ip link set dev "$l" up 2>/dev/null || die "could not set $l up"
        done
        echo "healed $NODE_ARG: bridge $br and ${#links[@]} veths up"
    fi
}

cmd_status() {
    require_conf
    check_bins
    local out
    out=$(snapctl_status) || exit 1
    printf '%s\n' "$out"
}

# ---- argument parsing -------------------------------------------------------

[ $# -ge 1 ] || usage "missing command"
CMD=$1
shift
case "$CMD" in
    up | down | start-node | start-coordinator | add-node | cut-zone | heal-zone | status) ;;
    -h | --help | help)
        echo "$USAGE"
        exit 0
        ;;
    *) usage "unknown command '$CMD'" ;;
esac

need_val() { if [ $# -lt 2 ] || [ -z "$2" ]; then usage "$1 needs a value"; fi; }

while [ $# -gt 0 ]; do
    case "$1" in
        --dir)
            need_val "$@"
            DIR=$2
            shift 2
            ;;
        --dir=*)
            DIR=${1#--dir=}
            shift
            ;;
        --zones | --nodes-per-zone | --replicas | --port-base)
            [ "$CMD" = up ] || usage "$1 is only valid with 'up'"
            need_val "$@"
            is_uint "$2" || usage "$1 needs a number, got '$2'"
            case "$1" in
                --zones) ZONES=$2 ;;
                --nodes-per-zone) NPZ=$2 ;;
                --replicas) REPLICAS=$2 ;;
                --port-base) PORT_BASE=$2 ;;
            esac
            shift 2
            ;;
        --netns | --no-netns)
            [ "$CMD" = up ] || usage "$1 is only valid with 'up'"
            if [ "$1" = --netns ]; then NETNS=1; else NETNS=0; fi
            shift
            ;;
        --coord-args | --node-args)
            [ "$CMD" = up ] || usage "$1 is only valid with 'up'"
            [ $# -ge 2 ] || usage "$1 needs a value"
            case "$2" in *$'\n'* | *=) usage "$1: the flags may not hold a newline or end in '='" ;; *) ;; esac
            if [ "$1" = --coord-args ]; then
                COORD_ARGS=$2
                COORD_ARGS_SET=1
            else
                NODE_ARGS=$2
                NODE_ARGS_SET=1
            fi
            shift 2
            ;;
        --zone)
            [ "$CMD" = add-node ] || usage "$1 is only valid with 'add-node'"
            need_val "$@"
            ZONE_OPT=$2
            shift 2
            ;;
        -h | --help)
            echo "$USAGE"
            exit 0
            ;;
        -*) usage "unknown option '$1'" ;;
        *)
            case "$CMD" in
                start-node | cut-zone | heal-zone) ;;
                *) usage "unexpected argument '$1'" ;;
            esac
            [ -z "$NODE_ARG" ] || usage "more than one ${CMD#*-}"
            NODE_ARG=$1
            shift
            ;;
    esac
done

[ -n "$DIR" ] || usage "--dir DIR is required"
if [ "$CMD" = start-node ] && [ -z "$NODE_ARG" ]; then usage "start-node needs a node ID"; fi
if [ "$CMD" = cut-zone ] || [ "$CMD" = heal-zone ]; then
    [ -n "$NODE_ARG" ] || usage "$CMD needs a ZONE"
fi
if [ "$CMD" = add-node ] && [ -z "$ZONE_OPT" ]; then usage "add-node needs --zone ZONE"; fi

case "$CMD" in
    up) cmd_up ;;
    down) cmd_down ;;
    start-node) cmd_start_node ;;
    start-coordinator) cmd_start_coordinator ;;
    add-node) cmd_add_node ;;
    cut-zone) cmd_cut_heal down ;;
    heal-zone) cmd_cut_heal up ;;
    status) cmd_status ;;
esac
