#!/usr/bin/env bash
# local-cluster.sh: run a whole snapzone cluster (one snapcoord, N zones x M
# snapnode) on 127.0.0.1 for development and the integration tests.
#
#   local-cluster.sh up --dir DIR [--zones N] [--nodes-per-zone M]
#                       [--replicas R] [--port-base P]
#   local-cluster.sh down --dir DIR
#   local-cluster.sh start-node --dir DIR ID
#   local-cluster.sh start-coordinator --dir DIR
#   local-cluster.sh status --dir DIR
#
# Layout of DIR:
#   cluster.conf      settings of the last `up` (reused by the other commands)
#   cluster.env       SNAPZONE_COORDINATOR=tcp://127.0.0.1:P
#   nodes.tsv         id zone endpoint pid data_dir (tab separated, header line)
#   coordinator.pid   pid of snapcoord
#   coord/            snapcoord --data
#   nodes/<id>/       snapnode --data
#   logs/<name>.log   stdout+stderr of each daemon (appended across restarts)
#
# Binaries come from $SNAPZONE_BIN if set, else <repo>/build.
# Environment: SZ_UP_TIMEOUT (seconds to wait for the cluster, default 30).
set -euo pipefail

PROG=local-cluster.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
PY=/usr/bin/python3
UP_TIMEOUT=${SZ_UP_TIMEOUT:-30}
STOP_TIMEOUT=10

USAGE="usage: $PROG up|down|start-node|start-coordinator|status --dir DIR [--zones N] [--nodes-per-zone M] [--replicas R] [--port-base P] [ID]"

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
            *) ;;
        esac
    done <"$conf"
    return 0
}

C_ZONES=""
C_NPZ=""
C_REPLICAS=""
C_PORT_BASE=""
C_BIN_DIR=""

write_atomic() { # write_atomic FILE  (content on stdin)
    local tmp
    tmp="$1.tmp.$$"
    cat >"$tmp"
    mv -f "$tmp" "$1"
}

write_conf() {
    printf 'ZONES=%s\nNODES_PER_ZONE=%s\nREPLICAS=%s\nPORT_BASE=%s\nBIN_DIR=%s\n' \
        "$ZONES" "$NPZ" "$REPLICAS" "$PORT_BASE" "$BIN_DIR" | write_atomic "$DIR/cluster.conf"
}

# require_conf: for every command but `up`: settings come from cluster.conf.
require_conf() {
    [ -d "$DIR" ] || die "no cluster directory $DIR"
    load_conf || die "no cluster.conf in $DIR (run '$PROG up --dir $DIR' first)"
    ZONES=$C_ZONES
    NPZ=$C_NPZ
    REPLICAS=$C_REPLICAS
    PORT_BASE=$C_PORT_BASE
    BIN_DIR=${C_BIN_DIR:-}
    if [ -n "${SNAPZONE_BIN:-}" ]; then BIN_DIR=$SNAPZONE_BIN; fi
    [ -n "$BIN_DIR" ] || BIN_DIR="$REPO_DIR/build"
    for v in "$ZONES" "$NPZ" "$REPLICAS" "$PORT_BASE"; do
        is_uint "$v" || die "corrupt $DIR/cluster.conf"
    done
}

coord_endpoint() { echo "tcp://127.0.0.1:$PORT_BASE"; }

zone_name() { # zone_name INDEX(0-based) -> zone-a, zone-b, ...
    local letters=abcdefghijklmnopqrstuvwxyz
    echo "zone-${letters:$1:1}"
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

# start_proc LOG PIDFILE CMD...: start CMD detached (new session, no
# controlling terminal, stdin /dev/null, stdout+stderr appended to LOG) and
# echo its pid.  The wrapper shell writes its own pid and then execs CMD, so
# the pid is CMD's even when setsid has to fork.
start_proc() {
    local log=$1 pidfile=$2 i pid
    shift 2
    rm -f "$pidfile"
    # shellcheck disable=SC2016 # $$ and $@ expand in the wrapper shell
    nohup setsid bash -c 'echo $$ >"$0.tmp" && mv -f "$0.tmp" "$0" && exec "$@"' \
        "$pidfile" "$@" >>"$log" 2>&1 </dev/null &
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
        argv0=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n 1 || true)
        [ "$argv0" = "$1" ] && break
        [ -e "/proc/$pid" ] || break
        sleep 0.05
    done
    echo "$pid"
    return 0
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

# ---- nodes.tsv --------------------------------------------------------------

NODES_HEADER=$'id\tzone\tendpoint\tpid\tdata_dir'

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

cmd_up() {
    local have_conf=0
    if [ -d "$DIR" ] && load_conf; then have_conf=1; fi
    # Defaults: the previous settings of this DIR, else the built-in ones.
    if [ -z "$ZONES" ]; then if [ $have_conf = 1 ]; then ZONES=$C_ZONES; else ZONES=3; fi; fi
    if [ -z "$NPZ" ]; then if [ $have_conf = 1 ]; then NPZ=$C_NPZ; else NPZ=2; fi; fi
    if [ -z "$REPLICAS" ]; then if [ $have_conf = 1 ]; then REPLICAS=$C_REPLICAS; else REPLICAS=3; fi; fi
    if [ -z "$PORT_BASE" ]; then if [ $have_conf = 1 ]; then PORT_BASE=$C_PORT_BASE; else PORT_BASE=7400; fi; fi
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

    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd)
    local running
    running=$(running_pids)
    if [ -n "$running" ]; then
        die "$DIR already has a running cluster ($(echo "$running" | awk '{printf "%s%s %s", (NR>1?", ":""), $2, $3}')); run '$PROG down --dir $DIR' first"
    fi
    local ports=() i
    for ((i = 0; i <= nnodes; i++)); do ports+=($((PORT_BASE + i))); done
    local busy
    busy=$(ports_in_use "${ports[@]}")
    [ -z "$busy" ] || die "port(s) in use on 127.0.0.1: $busy"

    mkdir -p "$DIR/coord" "$DIR/logs" "$DIR/nodes" "$DIR/run"
    rm -f "$DIR/cluster.env"
    write_conf

    local cep started=() cpid offsets=() ids=() rows=""
    cep=$(coord_endpoint)
    local coff
    coff=$(log_size "$DIR/logs/snapcoord.log")
    cpid=$(start_proc "$DIR/logs/snapcoord.log" "$DIR/run/snapcoord.pid" \
        "$BIN_DIR/snapcoord" --listen "$cep" --data "$DIR/coord" --replicas "$REPLICAS") ||
        die "could not start snapcoord"
    started+=("$cpid")
    echo "$cpid" | write_atomic "$DIR/coordinator.pid"

    local z k idx=0 id zone ep data pid
    for ((z = 0; z < ZONES; z++)); do
        zone=$(zone_name "$z")
        for ((k = 1; k <= NPZ; k++)); do
            id="$zone-n$k"
            ep="tcp://127.0.0.1:$((PORT_BASE + 1 + idx))"
            data="$DIR/nodes/$id"
            mkdir -p "$data"
            offsets+=("$(log_size "$DIR/logs/$id.log")")
            if ! pid=$(start_proc "$DIR/logs/$id.log" "$DIR/run/$id.pid" \
                "$BIN_DIR/snapnode" --id "$id" --zone "$zone" --listen "$ep" \
                --data "$data" --coordinator "$cep"); then
                kill_started "${started[@]}"
                die "could not start snapnode $id"
            fi
            started+=("$pid")
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
            kill_started "${started[@]}"
            echo "$PROG: error: snapcoord exited during startup" >&2
            log_tail snapcoord
            exit 1
        fi
        local notready=""
        for ((n = 0; n < ${#ids[@]}; n++)); do
            if ! proc_alive "${started[$((n + 1))]}" snapnode "$DIR/nodes/${ids[$n]}"; then
                kill_started "${started[@]}"
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
            kill_started "${started[@]}"
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
    echo "SNAPZONE_COORDINATOR=$cep" | write_atomic "$DIR/cluster.env"
    echo "SNAPZONE_COORDINATOR=$cep"
}

cmd_down() {
    [ -d "$DIR" ] || die "no cluster directory $DIR"
    DIR=$(cd "$DIR" && pwd)
    local lines kind id pid
    lines=$(running_pids)
    if [ -z "$lines" ]; then
        echo "nothing running in $DIR"
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
    return 0
}

cmd_start_node() {
    require_conf
    DIR=$(cd "$DIR" && pwd)
    check_bins
    [ -f "$DIR/nodes.tsv" ] || die "no nodes.tsv in $DIR"
    local row id zone ep pid data
    row=$(awk -F'\t' -v id="$NODE_ARG" 'NR>1 && $1==id' "$DIR/nodes.tsv")
    [ -n "$row" ] || die "no node $NODE_ARG in $DIR/nodes.tsv"
    IFS=$'\t' read -r id zone ep pid data <<<"$row"
    if proc_alive "$pid" snapnode "$data"; then
        die "node $id is already running (pid $pid)"
    fi
    local port=${ep##*:} busy
    busy=$(ports_in_use "$port")
    [ -z "$busy" ] || die "port $port of node $id is in use"
    local log="$DIR/logs/$id.log" off newpid
    off=$(log_size "$log")
    mkdir -p "$DIR/run" "$data"
    newpid=$(start_proc "$log" "$DIR/run/$id.pid" \
        "$BIN_DIR/snapnode" --id "$id" --zone "$zone" --listen "$ep" \
        --data "$data" --coordinator "$(coord_endpoint)") || die "could not start snapnode $id"
    awk -F'\t' -v OFS='\t' -v id="$id" -v pid="$newpid" 'NR>1 && $1==id {$4=pid} {print}' \
        "$DIR/nodes.tsv" | write_atomic "$DIR/nodes.tsv"
    local deadline=$((SECONDS + UP_TIMEOUT))
    while :; do
        if ! proc_alive "$newpid" snapnode "$data"; then
            echo "$PROG: error: snapnode $id exited during startup" >&2
            log_tail "$id"
            exit 1
        fi
        if log_has_since "$log" "$off" "ready on" && not_up "$id" >/dev/null; then
            break
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "$PROG: error: node $id not up after ${UP_TIMEOUT}s" >&2
            log_tail "$id"
            exit 1
        fi
        sleep 0.2
    done
    echo "started snapnode $id (pid $newpid) on $ep"
}

cmd_start_coordinator() {
    require_conf
    DIR=$(cd "$DIR" && pwd)
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
    newpid=$(start_proc "$log" "$DIR/run/snapcoord.pid" \
        "$BIN_DIR/snapcoord" --listen "$(coord_endpoint)" --data "$DIR/coord" \
        --replicas "$REPLICAS") || die "could not start snapcoord"
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
    up | down | start-node | start-coordinator | status) ;;
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
        -h | --help)
            echo "$USAGE"
            exit 0
            ;;
        -*) usage "unknown option '$1'" ;;
        *)
            [ "$CMD" = start-node ] || usage "unexpected argument '$1'"
            [ -z "$NODE_ARG" ] || usage "more than one node id"
            NODE_ARG=$1
            shift
            ;;
    esac
done

[ -n "$DIR" ] || usage "--dir DIR is required"
if [ "$CMD" = start-node ] && [ -z "$NODE_ARG" ]; then usage "start-node needs a node ID"; fi

case "$CMD" in
    up) cmd_up ;;
    down) cmd_down ;;
    start-node) cmd_start_node ;;
    start-coordinator) cmd_start_coordinator ;;
    status) cmd_status ;;
esac
