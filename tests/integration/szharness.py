"""Shared harness for the snapzone integration tests.

Every test file starts its own local cluster (deploy/local-cluster.sh) on a
random free port base in a private temporary directory, drives it with the
real `snapctl`, and always stops it again, also on failure, on SIGTERM and
at interpreter exit.

Environment:
  SNAPZONE_BIN   directory holding snapcoord, snapnode, snapctl
                 (default <repo>/build)
  SNAPZONE_SRC   repository root (default: two levels above this file)
  SZ_IT_KEEP=1   keep the temporary directories (logs, data) for debugging
  SZ_IT_VERBOSE=1  echo every command run (and each timed call's duration)
  SZ_FAULT_METRICS=FILE  fault tests append their figures there (JSON lines)

Fault tests (FaultTestCase, test_fault_*.py) run the cluster with
`local-cluster.sh up --netns` (root only): every node its own host in a
network namespace; see tests/integration/README.md.
"""

import atexit
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.environ.get("SNAPZONE_SRC") or os.path.join(HERE, "..", ".."))
BIN = os.path.abspath(os.environ.get("SNAPZONE_BIN") or os.path.join(SRC, "build"))
SCRIPT = os.path.join(SRC, "deploy", "local-cluster.sh")
SNAPCTL = os.path.join(BIN, "snapctl")

CMD_TIMEOUT = 120  # seconds, for every subprocess call
KEEP = os.environ.get("SZ_IT_KEEP") == "1"
VERBOSE = os.environ.get("SZ_IT_VERBOSE") == "1"

KiB = 1024
MiB = 1024 * 1024

_DEFAULT = object()  # "use the cluster's default key file"
_live_clusters = []


# ---------------------------------------------------------------- processes --

def run(argv, timeout=CMD_TIMEOUT, env=None, input=None, cwd=None):
    """Run argv, capturing stdout/stderr as text; never hangs past timeout."""
    if VERBOSE:
        print("+ " + " ".join(argv), file=sys.stderr, flush=True)
    try:
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL if input is None else None,
                              input=input, env=env, cwd=cwd, timeout=timeout,
                              text=True, errors="replace")
    except subprocess.TimeoutExpired as e:
        raise AssertionError("command timed out after %ss: %s\nstdout: %s\nstderr: %s" % (
            timeout, " ".join(argv), _s(e.stdout), _s(e.stderr))) from None


def _s(x):
    if x is None:
        return ""
    if isinstance(x, bytes):
        return x.decode("utf-8", "replace")
    return x


def pid_alive(pid, name=None):
    """True if pid is a live, non-zombie process (whose argv[0] basename is
    name, when given)."""
    try:
        pid = int(pid)
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
        state = stat[stat.rindex(")") + 2:].split()[0]
        if state in ("Z", "X"):
            return False
        if name is not None:
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv0 = f.read().split(b"\0")[0].decode("utf-8", "replace")
            return os.path.basename(argv0) == name
        return True
    except (OSError, ValueError, IndexError):
        return False


def port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def pick_port_base(nports, lo=20000, hi=40000):
    """A random base in [lo, hi) with nports consecutive free ports, avoiding
    the kernel's ephemeral range where possible (outgoing connections of
    parallel tests could grab a port between our check and the bind)."""
    elo, ehi = _ephemeral_range()
    rng = random.SystemRandom()
    for _ in range(200):
        base = rng.randrange(lo, hi - nports)
        if base + nports >= elo and base <= ehi and rng.random() < 0.9:
            continue
        if all(port_free(base + i) for i in range(nports)):
            return base
    raise AssertionError("no free port range of %d ports in %d..%d" % (nports, lo, hi))


# ------------------------------------------------------------------- images --

def text_bytes(size, seed=0, marker=None):
    """Deterministic, highly compressible ASCII text of exactly size bytes."""
    out = bytearray()
    n = 0
    while len(out) < size:
        if marker is not None:
            out += ("%s-%d\n" % (marker, seed * 1000003 + n)).encode()
        else:
            out += ("snapzone compressible text line %010d seed %d: the quick brown fox "
                    "jumps over the lazy dog\n" % (n, seed)).encode()
        n += 1
    return bytes(out[:size])


def make_image(path, spec):
    """Write an image made of regions, in order.  spec is a list of tuples:
         ("random", size)             os.urandom bytes
         ("zero", size)               zeros (left as a hole)
         ("repeat", size, unit)       one random unit-byte chunk, repeated
         ("repeat", size, unit_bytes) the given chunk (bytes), repeated
         ("text", size[, seed])       deterministic compressible text
         ("marker", size, marker)     text lines "<marker>-<n>"
         ("bytes", data)              literal bytes
    Returns a list of dicts {kind, offset, size[, unit]} describing the
    regions (unit: the repeated chunk)."""
    regions = []
    off = 0
    with open(path, "wb") as f:
        for item in spec:
            kind = item[0]
            if kind == "bytes":
                data = bytes(item[1])
                f.write(data)
                regions.append({"kind": kind, "offset": off, "size": len(data)})
                off += len(data)
                continue
            size = int(item[1])
            reg = {"kind": kind, "offset": off, "size": size}
            if kind == "random":
                left = size
                while left:
                    n = min(left, 4 * MiB)
                    f.write(os.urandom(n))
                    left -= n
            elif kind == "zero":
                f.seek(size, os.SEEK_CUR)
            elif kind == "repeat":
                unit = item[2]
                if isinstance(unit, int):
                    unit = os.urandom(unit)
                reg["unit"] = unit
                left = size
                while left:
                    n = min(left, len(unit))
                    f.write(unit[:n])
                    left -= n
            elif kind == "text":
                seed = item[2] if len(item) > 2 else 0
                f.write(text_bytes(size, seed))
            elif kind == "marker":
                f.write(text_bytes(size, 0, marker=item[2]))
            else:
                raise ValueError("unknown region kind %r" % (kind,))
            regions.append(reg)
            off += size
        f.truncate(off)
    return regions


def overwrite_random(path, ranges):
    """Overwrite (offset, size) ranges of path with fresh random bytes."""
    with open(path, "r+b") as f:
        for off, size in ranges:
            f.seek(off)
            f.write(os.urandom(size))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def allocated_bytes(path):
    return os.stat(path).st_blocks * 512


def poll(fn, pred, timeout=5.0, interval=0.25):
    """Call fn() until pred(value) or timeout; return the last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if pred(v) or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


# ------------------------------------------------------------------ cluster --

class Cluster:
    """A local cluster in a private temp directory.

    Layout: self.base/ holds cluster/ (the --dir of local-cluster.sh: the
    daemons' data and logs, nothing else) and work/ (key files, images,
    restores), so that scans of cluster/ never see test inputs."""

    def __init__(self, zones=3, nodes_per_zone=2, replicas=3, keygen=True, netns=False,
                 coord_args=None, node_args=None, timeout_ms=None):
        """netns=True: every node in its own network namespace (root only;
        see local-cluster.sh --netns).  coord_args / node_args: extra daemon
        flags (strings) for `up --coord-args/--node-args`.  timeout_ms: run
        every snapctl with SNAPZONE_TIMEOUT_MS=timeout_ms and check that no
        call takes longer than call_bound() (see timed calls below)."""
        self.zones = zones
        self.nodes_per_zone = nodes_per_zone
        self.replicas = replicas
        self.want_key = keygen
        self.netns = netns
        self.coord_args = coord_args
        self.node_args = node_args
        self.timeout_ms = timeout_ms
        self.calls = []  # (what, elapsed_s, bound_s, returncode) of timed snapctl calls
        self.base = tempfile.mkdtemp(prefix="snapzone-it-")
        self.dir = os.path.join(self.base, "cluster")
        self.work = os.path.join(self.base, "work")
        os.makedirs(self.work)
        self.port_base = None
        self.coordinator = None
        self.keyfile = None
        self.expect_down = set()  # pids a test stopped on purpose
        self.started = False
        self.closed = False
        self.last = None  # last CompletedProcess of snapctl

    # -- lifecycle --
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close(failed=exc_type is not None)
        return False

    def script(self, *args, timeout=CMD_TIMEOUT, env_extra=None):
        env = dict(os.environ, SNAPZONE_BIN=BIN)
        if env_extra:
            env.update(env_extra)
        return run(["bash", SCRIPT] + list(args), timeout=timeout, env=env)

    def up(self, port_base=None, extra=()):
        """Run `local-cluster.sh up`; returns the CompletedProcess (raises on
        failure).  Without port_base a free random one is chosen (retried if
        another test grabs it first)."""
        nports = self.zones * self.nodes_per_zone + 1
        attempts = 1 if port_base is not None else 5
        last = None
        for _ in range(attempts):
            pb = port_base if port_base is not None else pick_port_base(nports)
            p = self.script("up", "--dir", self.dir, "--zones", str(self.zones),
                            "--nodes-per-zone", str(self.nodes_per_zone),
                            "--replicas", str(self.replicas), "--port-base", str(pb),
                            *(self.up_extra() + list(extra)))
            last = p
            if p.returncode == 0:
                self.port_base = pb
                self.coordinator = "tcp://127.0.0.1:%d" % pb
                self.started = True
                if self not in _live_clusters:
                    _live_clusters.append(self)
                return p
            if "in use" not in p.stderr:
                break
        raise AssertionError("local-cluster.sh up failed (rc %d)\nstdout: %s\nstderr: %s\n%s" % (
            last.returncode, last.stdout, last.stderr, self.log_tails()))

    def up_extra(self):
        out = []
        if self.netns:
            out.append("--netns")
        if self.coord_args is not None:
            out += ["--coord-args", self.coord_args]
        if self.node_args is not None:
            out += ["--node-args", self.node_args]
        return out

    def down(self):
        p = self.script("down", "--dir", self.dir, timeout=60)
        if p.returncode != 0:
            raise AssertionError("local-cluster.sh down failed: %s %s" % (p.stdout, p.stderr))
        return p

    def start(self):
        if self not in _live_clusters:
            _live_clusters.append(self)
        self.up()
        if self.want_key:
            self.keyfile = os.path.join(self.work, "key")
            self.snapctl("keygen", self.keyfile, keyfile=None)
        return self

    def close(self, failed=False):
        """Check that no daemon died, stop the cluster, check every pid is
        gone, scan logs for sanitizer reports; raise on any problem (after
        cleaning up)."""
        if self.closed:
            return
        self.closed = True
        problems = []
        try:
            if self.started:
                for kind, ident, pid in self.pids():
                    if pid not in self.expect_down and not pid_alive(pid, kind):
                        problems.append("%s %s (pid %d) died during the test" % (kind, ident, pid))
                pids = self.pids()
                try:
                    self.down()
                except AssertionError as e:
                    problems.append(str(e))
                for kind, ident, pid in pids:
                    if pid_alive(pid, kind):
                        problems.append("%s %s (pid %d) still alive after down" % (kind, ident, pid))
                        try:
                            os.kill(pid, signal.SIGKILL)
                        except OSError:
                            pass
                problems += self.sanitizer_reports()
            elif os.path.isfile(os.path.join(self.dir, "cluster.conf")):
                # `up` failed or never finished: let `down` remove whatever
                # it left (it cleans its own network objects on failure too)
                try:
                    self.down()
                except AssertionError as e:
                    problems.append(str(e))
        finally:
            if self in _live_clusters:
                _live_clusters.remove(self)
            if problems or failed:
                sys.stderr.write(self.log_tails())
            if KEEP or problems or failed:
                sys.stderr.write("snapzone-it: kept %s\n" % self.base)
            else:
                shutil.rmtree(self.base, ignore_errors=True)
        if problems:
            raise AssertionError("; ".join(problems))

    # -- state files --
    def nodes(self):
        """Rows of nodes.tsv as dicts (pid as int)."""
        rows = []
        with open(os.path.join(self.dir, "nodes.tsv")) as f:
            lines = f.read().splitlines()
        header = lines[0].split("\t")
        for line in lines[1:]:
            if not line:
                continue
            row = dict(zip(header, line.split("\t")))
            row["pid"] = int(row["pid"])
            rows.append(row)
        return rows

    def coordinator_pid(self):
        with open(os.path.join(self.dir, "coordinator.pid")) as f:
            return int(f.read().strip())

    def pids(self):
        out = []
        try:
            out.append(("snapcoord", "coordinator", self.coordinator_pid()))
        except (OSError, ValueError):
            pass
        try:
            out += [("snapnode", r["id"], r["pid"]) for r in self.nodes()]
        except (OSError, ValueError, IndexError, KeyError):
            pass
        return out

    def all_alive(self):
        return [(k, i, p) for k, i, p in self.pids() if not pid_alive(p, k)] == []

    def log_tails(self, lines=20):
        logs = os.path.join(self.dir, "logs")
        out = []
        try:
            names = sorted(os.listdir(logs))
        except OSError:
            return ""
        for n in names:
            try:
                with open(os.path.join(logs, n), errors="replace") as f:
                    tail = f.read().splitlines()[-lines:]
            except OSError:
                continue
            out.append("--- %s ---\n%s\n" % (n, "\n".join(tail)))
        return "".join(out)

    def sanitizer_reports(self):
        logs = os.path.join(self.dir, "logs")
        bad = []
        pat = re.compile(r"ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer|"
                         r"WARNING: ThreadSanitizer|stack smashing detected")
        try:
            names = sorted(os.listdir(logs))
        except OSError:
            return bad
        for n in names:
            try:
                with open(os.path.join(logs, n), errors="replace") as f:
                    for line in f:
                        if pat.search(line):
                            bad.append("%s: %s" % (n, line.strip()))
                            break
            except OSError:
                pass
        return bad

    def path(self, name):
        """A path in the work directory (outside the cluster dir)."""
        return os.path.join(self.work, name)

    # -- snapctl --
    def snapctl_argv(self, args, keyfile=_DEFAULT, json_flag=True, coordinator=True):
        argv = [SNAPCTL]
        if coordinator:
            argv += ["--coordinator", self.coordinator]
        argv += [str(a) for a in args]
        if keyfile is _DEFAULT:
            keyfile = self.keyfile
        if keyfile is not None:
            argv += ["--keyfile", keyfile]
        if json_flag:
            argv.append("--json")
        return argv

    def snapctl_env(self, env=None):
        env2 = dict(os.environ)
        env2.pop("SNAPZONE_COORDINATOR", None)
        env2.pop("SNAPZONE_KEYFILE", None)
        if self.timeout_ms is not None:
            env2["SNAPZONE_TIMEOUT_MS"] = str(self.timeout_ms)
        if env:
            env2.update(env)
        return env2

    # -- timed calls --
    # With timeout_ms set, every snapctl call is timed against a bound
    # derived from T = SNAPZONE_TIMEOUT_MS: a control call (status, list,
    # disk create, node drain/remove, ...) makes a few coordinator requests,
    # each bounded by T, so it must end within CTRL_TIMEOUTS * T + SLACK_S;
    # a data call (snapshot create, disk restore, drill, cluster scrub) may
    # in addition wait up to T on a dead or cut-off node per failover and
    # moves the image, so it must end within DATA_TIMEOUTS * T + DATA_SLACK_S.
    # A call past its bound fails the test ("hung past its timeout"); the
    # subprocess itself is killed HARD_EXTRA_S later at the latest.
    CTRL_TIMEOUTS = 2
    SLACK_S = 5.0
    DATA_TIMEOUTS = 4
    DATA_SLACK_S = 20.0
    HARD_EXTRA_S = 30.0
    DATA_CMDS = (("snapshot", "create"), ("disk", "restore"), ("drill",), ("cluster", "scrub"))

    def call_bound(self, args):
        """Wall-clock bound (seconds) for `snapctl ARGS` (None: not timed)."""
        if self.timeout_ms is None:
            return None
        t = self.timeout_ms / 1000.0
        a = tuple(str(x) for x in args)
        if any(a[:len(d)] == d for d in self.DATA_CMDS):
            return self.DATA_TIMEOUTS * t + self.DATA_SLACK_S
        return self.CTRL_TIMEOUTS * t + self.SLACK_S

    def _note_call(self, args, elapsed, rc):
        bound = self.call_bound(args)
        what = "snapctl " + " ".join(map(str, args))
        self.calls.append((what, elapsed, bound, rc))
        if VERBOSE:
            print("  %.2fs (bound %s) rc %s: %s" % (elapsed, bound, rc, what), file=sys.stderr)
        if bound is not None and elapsed > bound:
            raise AssertionError("%s hung past its timeout: %.1f s > bound %.1f s "
                                 "(SNAPZONE_TIMEOUT_MS=%d)" % (what, elapsed, bound, self.timeout_ms))

    def max_call_ratio(self):
        """Largest elapsed/bound over every timed call so far (0 if none)."""
        r = [e / b for _, e, b, _ in self.calls if b]
        return max(r) if r else 0.0

    def snapctl_raw(self, *args, keyfile=_DEFAULT, json_flag=True, timeout=CMD_TIMEOUT, env=None):
        env2 = self.snapctl_env(env)
        bound = self.call_bound(args)
        if bound is not None:
            timeout = min(timeout, bound + self.HARD_EXTRA_S)
        t0 = time.monotonic()
        try:
            p = run(self.snapctl_argv(args, keyfile, json_flag), timeout=timeout, env=env2)
        except AssertionError:
            self._note_call(args, time.monotonic() - t0, None)
            raise
        self._note_call(args, time.monotonic() - t0, p.returncode)
        self.last = p
        return p

    def snapctl_popen(self, *args, keyfile=_DEFAULT, json_flag=True, env=None):
        """Start `snapctl ARGS` in the background; returns a TimedProc whose
        wait() gives a CompletedProcess and checks the call's bound."""
        return TimedProc(self, args, self.snapctl_argv(args, keyfile, json_flag),
                         self.snapctl_env(env))

    def snapctl(self, *args, check=True, keyfile=_DEFAULT, timeout=CMD_TIMEOUT, env=None):
        """Run `snapctl ARGS --json`; return the one JSON object it printed.
        With check=False a failing command returns None (see self.last)."""
        p = self.snapctl_raw(*args, keyfile=keyfile, timeout=timeout, env=env)
        if p.returncode != 0:
            if check:
                raise AssertionError("snapctl %s failed (rc %d): %s" % (
                    " ".join(map(str, args)), p.returncode, p.stderr.strip()))
            return None
        return parse_one_json(p.stdout, "snapctl " + " ".join(map(str, args)))

    def snapctl_fail(self, *args, keyfile=_DEFAULT, json_flag=True, env=None):
        """Run a snapctl command that must fail: non-zero exit, exactly one
        non-empty line on stderr, and on stdout nothing or one JSON object.
        Returns (returncode, stderr line)."""
        p = self.snapctl_raw(*args, keyfile=keyfile, json_flag=json_flag, env=env)
        what = "snapctl " + " ".join(map(str, args))
        if p.returncode == 0:
            raise AssertionError("%s succeeded but should fail; stdout: %s" % (what, p.stdout))
        if p.returncode < 0:
            raise AssertionError("%s died with signal %d; stderr: %s" % (what, -p.returncode, p.stderr))
        err = p.stderr
        lines = [l for l in err.split("\n") if l.strip()]
        if len(lines) != 1 or err.strip("\n").count("\n") != 0:
            raise AssertionError("%s: expected exactly one line on stderr, got %r" % (what, err))
        if json_flag and p.stdout.strip():
            parse_one_json(p.stdout, what + " (error output)")
        elif not json_flag and p.stdout.strip():
            raise AssertionError("%s: unexpected stdout on failure: %r" % (what, p.stdout))
        return p.returncode, lines[0].strip()

    # -- cluster status helpers --
    def status(self):
        return self.snapctl("cluster", "status", keyfile=None)

    def stored_bytes(self):
        return sum(int(n["stored_bytes"]) for n in self.status()["nodes"])

    def blocks_total(self):
        return sum(int(n["blocks"]) for n in self.status()["nodes"])

    def wait_blocks_total(self, expected, timeout=5.0):
        """Poll until the sum of per-node block counts equals expected; return
        the last status."""
        st = poll(self.status,
                  lambda s: sum(int(n["blocks"]) for n in s["nodes"]) == expected,
                  timeout=timeout)
        return st

    def stable_stored_bytes(self, settle=2.5, timeout=15.0):
        """stored_bytes once it stopped changing for `settle` seconds (the
        nodes heartbeat their stats every second)."""
        deadline = time.monotonic() + timeout
        last = self.stored_bytes()
        since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.25)
            v = self.stored_bytes()
            if v != last:
                last, since = v, time.monotonic()
            elif time.monotonic() - since >= settle:
                return v
        return last

    # -- common operations --
    def keygen(self, name):
        path = self.path(name)
        self.snapctl("keygen", path, keyfile=None)
        return path

    def disk_create(self, name, size, block_size=None, zone=None):
        args = ["disk", "create", name, "--size", str(size)]
        if block_size is not None:
            args += ["--block-size", str(block_size)]
        if zone is not None:
            args += ["--zone", zone]
        return self.snapctl(*args, keyfile=None)

    def snapshot(self, disk, path, name=None, keyfile=_DEFAULT):
        args = ["snapshot", "create", disk, "--file", path]
        if name:
            args += ["--name", name]
        return self.snapctl(*args, keyfile=keyfile)

    def restore(self, snap, path, zone=None, keyfile=_DEFAULT):
        args = ["disk", "restore", snap, "--file", path]
        if zone:
            args += ["--zone", zone]
        return self.snapctl(*args, keyfile=keyfile)

    # -- faults (deploy/local-cluster.sh, pids from nodes.tsv) --
    def node(self, node_id):
        """The nodes.tsv row of node_id."""
        for r in self.nodes():
            if r["id"] == node_id:
                return r
        raise AssertionError("no node %s in nodes.tsv" % node_id)

    def zone_nodes(self, zone):
        return [r["id"] for r in self.nodes() if r["zone"] == zone]

    def _kill(self, kind, pid, sig):
        self.expect_down.add(pid)
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        dead = poll(lambda: pid_alive(pid), lambda alive: not alive, timeout=10, interval=0.05)
        if dead:
            raise AssertionError("%s pid %d still alive 10 s after signal %d" % (kind, pid, sig))

    def kill_node(self, node_id, sig=signal.SIGKILL):
        """Kill a node by the pid in nodes.tsv and wait until it is gone."""
        pid = self.node(node_id)["pid"]
        self._kill("snapnode " + node_id, pid, sig)
        return pid

    def kill_coordinator(self, sig=signal.SIGKILL):
        pid = self.coordinator_pid()
        self._kill("snapcoord", pid, sig)
        return pid

    def _script_ok(self, *args, timeout=CMD_TIMEOUT):
        p = self.script(*args, timeout=timeout)
        if p.returncode != 0:
            raise AssertionError("local-cluster.sh %s failed (rc %d): %s%s\n%s" % (
                " ".join(args), p.returncode, p.stdout, p.stderr, self.log_tails()))
        return p

    def start_node(self, node_id):
        """`local-cluster.sh start-node`: restart a stopped node (waits until up)."""
        return self._script_ok("start-node", "--dir", self.dir, node_id)

    def start_coordinator(self):
        return self._script_ok("start-coordinator", "--dir", self.dir)

    def add_node(self, zone):
        """`local-cluster.sh add-node --zone ZONE`; returns the new node's id."""
        p = self._script_ok("add-node", "--dir", self.dir, "--zone", zone)
        m = re.search(r"started snapnode (\S+) \(pid (\d+)\)", p.stdout)
        if not m:
            raise AssertionError("add-node: unexpected output %r" % p.stdout)
        return m.group(1)

    def cut_zone(self, zone):
        return self._script_ok("cut-zone", "--dir", self.dir, zone)

    def heal_zone(self, zone):
        return self._script_ok("heal-zone", "--dir", self.dir, zone)

    def node_states(self, st=None):
        st = st or self.status()
        return {n["id"]: n["state"] for n in st["nodes"]}

    def under_replicated(self, st=None):
        st = st or self.status()
        return int(st["under_replicated_blocks"])

    def wait_states(self, want, timeout=30.0):
        """Poll cluster status until every node in want (id -> state) has that
        state; return (seconds waited, last status).  Raises on timeout."""
        t0 = time.monotonic()
        st = poll(self.status, lambda s: all(self.node_states(s).get(i) == w for i, w in want.items()),
                  timeout=timeout, interval=0.2)
        states = self.node_states(st)
        if not all(states.get(i) == w for i, w in want.items()):
            raise AssertionError("node states not %s after %.0f s: %s" % (want, timeout, states))
        return time.monotonic() - t0, st

    def wait_all_up(self, timeout=30.0):
        return self.wait_states({r["id"]: "up" for r in self.nodes()}, timeout=timeout)

    def wait_under_rep_zero(self, bound_s, settle_s=0.0, interval=0.2):
        """Poll until under_replicated_blocks is 0, first waiting settle_s
        (so the coordinator's audit covers the latest map).  Returns a dict
        {seconds, peak, samples}; seconds counts from the call.  Raises with
        the last status if it is not 0 within bound_s."""
        t0 = time.monotonic()
        peak = 0
        samples = []
        while True:
            st = self.status()
            u = self.under_replicated(st)
            now = time.monotonic() - t0
            samples.append((round(now, 2), u))
            peak = max(peak, u)
            if u == 0 and now >= settle_s:
                return {"seconds": now, "peak": peak, "samples": samples}
            if now > bound_s:
                raise AssertionError("under_replicated_blocks still %d after %.0f s (bound %.0f s); "
                                     "states %s; samples %s" % (
                                         u, now, bound_s, self.node_states(st), samples[-10:]))
            time.sleep(interval)


class TimedProc:
    """A snapctl call running in the background (Cluster.snapctl_popen)."""

    def __init__(self, cluster, args, argv, env):
        self.cluster = cluster
        self.args = args
        if VERBOSE:
            print("+ (bg) " + " ".join(argv), file=sys.stderr, flush=True)
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, env=env, text=True,
                                     errors="replace")
        self.result = None
        self.elapsed = None

    def running(self):
        return self.proc.poll() is None

    def wait(self, timeout=CMD_TIMEOUT):
        if self.result is not None:
            return self.result
        bound = self.cluster.call_bound(self.args)
        if bound is not None:
            timeout = max(0.1, min(timeout, bound + Cluster.HARD_EXTRA_S - (time.monotonic() - self.t0)))
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            self.cluster._note_call(self.args, time.monotonic() - self.t0, None)
            raise AssertionError("snapctl %s timed out after %.0f s\nstderr: %s" % (
                " ".join(map(str, self.args)), time.monotonic() - self.t0, err)) from None
        self.elapsed = time.monotonic() - self.t0
        self.result = subprocess.CompletedProcess(self.proc.args, self.proc.returncode, out, err)
        self.cluster.last = self.result
        self.cluster._note_call(self.args, self.elapsed, self.proc.returncode)
        return self.result

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.communicate(timeout=10)
        except (subprocess.TimeoutExpired, ValueError):
            pass


class StateWatcher:
    """Polls `cluster status` in a thread (every interval s) and records
    every node state change and under_replicated_blocks, so a test can tell
    when a node was declared down, or whether a healthy node ever was.
    Its calls are timed like every other snapctl call."""

    def __init__(self, cluster, interval=0.2):
        import threading
        self.cluster = cluster
        self.interval = interval
        self.t0 = time.monotonic()
        self.states = {}       # id -> last state seen
        self.transitions = []  # (t, id, old, new), t = time.monotonic()
        self.under_rep = []    # (t, value)
        self.errors = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _poll_once(self):
        c = self.cluster
        args = ("cluster", "status")
        argv = c.snapctl_argv(args, keyfile=None)
        t0 = time.monotonic()
        try:
            p = run(argv, timeout=(c.call_bound(args) or CMD_TIMEOUT) + Cluster.HARD_EXTRA_S,
                    env=c.snapctl_env())
        except AssertionError as e:
            self.errors.append(str(e))
            return
        try:
            c._note_call(args, time.monotonic() - t0, p.returncode)
        except AssertionError as e:
            self.errors.append(str(e))
        if p.returncode != 0:
            return  # e.g. the coordinator is being restarted
        try:
            st = parse_one_json(p.stdout, "cluster status")
        except AssertionError as e:
            self.errors.append(str(e))
            return
        now = time.monotonic()
        for n in st.get("nodes", []):
            old = self.states.get(n["id"])
            if old != n["state"]:
                self.transitions.append((now, n["id"], old, n["state"]))
                self.states[n["id"]] = n["state"]
        self.under_rep.append((now, int(st.get("under_replicated_blocks", -1))))

    def _run(self):
        while not self._stop.is_set():
            self._poll_once()
            self._stop.wait(self.interval)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=60)
        return self

    def first(self, node_id, state, after=0.0):
        """time.monotonic() when node_id was first seen in state (after a
        given time), or None."""
        for t, i, _, new in self.transitions:
            if i == node_id and new == state and t >= after:
                return t
        return None

    def ever(self, node_id, state):
        return any(i == node_id and new == state for _, i, _, new in self.transitions)

    def spurious(self, faulty, state="down"):
        """Nodes not in faulty that were ever seen in state."""
        return sorted({i for _, i, _, new in self.transitions if new == state and i not in faulty})

    def summary(self):
        return ["%+.2fs %s %s->%s" % (t - self.t0, i, o, n) for t, i, o, n in self.transitions]


def parse_one_json(text, what="output"):
    """stdout must be exactly one JSON object (surrounding whitespace ok)."""
    s = text.strip()
    if not s:
        raise AssertionError("%s: empty stdout, expected one JSON object" % what)
    try:
        dec = json.JSONDecoder()
        obj, end = dec.raw_decode(s)
    except ValueError as e:
        raise AssertionError("%s: stdout is not JSON (%s): %r" % (what, e, text[:500])) from None
    if s[end:].strip():
        raise AssertionError("%s: more than one JSON value on stdout: %r" % (what, text[:500]))
    if not isinstance(obj, dict):
        raise AssertionError("%s: stdout JSON is not an object: %r" % (what, text[:500]))
    return obj


SNAP_ID_RE = re.compile(r"^snap-[0-9a-f]{16}$")


# --------------------------------------------------------------- test base --

class ClusterTestCase(unittest.TestCase):
    """One cluster per test class (setUpClass), always torn down."""

    ZONES = 3
    NODES_PER_ZONE = 2
    REPLICAS = 3
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        for b in ("snapcoord", "snapnode", "snapctl"):
            if not os.access(os.path.join(BIN, b), os.X_OK):
                raise AssertionError("missing binary %s (set SNAPZONE_BIN)" % os.path.join(BIN, b))
        cls.cluster = Cluster(cls.ZONES, cls.NODES_PER_ZONE, cls.REPLICAS)
        cls.addClassCleanup(cls.cluster.close)
        cls.cluster.start()

    def assertSnapJSON(self, snap, disk, logical):
        for k in ("id", "disk", "logical_bytes", "new_bytes", "blocks", "new_blocks"):
            self.assertIn(k, snap)
        self.assertRegex(snap["id"], SNAP_ID_RE)
        self.assertEqual(snap["disk"], disk)
        self.assertEqual(snap["logical_bytes"], logical)
        for k in ("logical_bytes", "new_bytes", "blocks", "new_blocks"):
            self.assertIsInstance(snap[k], int, k)
            self.assertGreaterEqual(snap[k], 0, k)

    def assertSameFile(self, a, b):
        self.assertEqual(os.path.getsize(a), os.path.getsize(b), "size of %s vs %s" % (a, b))
        self.assertEqual(sha256(a), sha256(b), "sha256 of %s vs %s" % (a, b))


# ------------------------------------------------------------ fault tests --

class FaultTestCase(unittest.TestCase):
    """Base of the tests/integration/test_fault_*.py cases: one --netns
    cluster per class (every node its own host: a network namespace with a
    veth pair on its zone's bridge, one subnet per zone), 3 zones x 2 nodes,
    R=3, short failure-detection and repair timings, and every snapctl call
    timed (SNAPZONE_TIMEOUT_MS=TIMEOUT_MS, Cluster.call_bound).

    Subclasses call check_after_case() at the end: every committed snapshot
    is listed (and nothing else is), restores byte-identical, and
    under_replicated_blocks is 0 within REPAIR_BOUND_S."""

    ZONES = 3
    NODES_PER_ZONE = 2
    REPLICAS = 3
    TIMEOUT_MS = 5000
    # documented bound (tests/integration/README.md) for under_replicated_blocks
    # to return to 0 after a fault is detected / healed
    REPAIR_BOUND_S = 60.0
    # nodes: suspect after 1 s without heartbeat, down 2 s later
    SUSPECT_MS = 1000
    DOWN_MS = 2000
    AUDIT_MS = 200
    COORD_ARGS = "--suspect-after-ms %d --down-after-ms %d --audit-interval-ms %d" % (
        SUSPECT_MS, DOWN_MS, AUDIT_MS)
    NODE_ARGS = "--heartbeat-ms 250 --repair-interval-ms 500 --peer-timeout-ms 2000"
    CASE = "fault"
    maxDiff = 4000

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest("fault tests need root (network namespaces, bridges, iptables)")
        for b in ("snapcoord", "snapnode", "snapctl"):
            if not os.access(os.path.join(BIN, b), os.X_OK):
                raise AssertionError("missing binary %s (set SNAPZONE_BIN)" % os.path.join(BIN, b))
        cls.cluster = Cluster(cls.ZONES, cls.NODES_PER_ZONE, cls.REPLICAS, netns=True,
                              coord_args=cls.COORD_ARGS, node_args=cls.NODE_ARGS,
                              timeout_ms=cls.TIMEOUT_MS)
        cls.failed = False
        # class cleanups run last-in first-out: close, then the leftover check
        cls.addClassCleanup(cls.check_net_removed, cls.cluster)
        cls.addClassCleanup(lambda: cls.cluster.close(failed=cls.failed))
        cls.cluster.start()
        cls.expected = {}  # committed snapshot id -> (sha256, size) of its image
        cls.metrics = {}

    @staticmethod
    def check_net_removed(cluster):
        """After `down`: no namespace, bridge, veth or iptables rule of the
        cluster's tag (its port base) is left."""
        pb = cluster.port_base
        if pb is None:
            return
        left = []
        p = run(["ip", "netns", "list"])
        left += [l.split()[0] for l in p.stdout.splitlines() if l.startswith("sz%d-" % pb)]
        p = run(["ip", "-o", "link", "show"])
        for l in p.stdout.splitlines():
            name = l.split(":")[1].strip().split("@")[0] if ":" in l else ""
            if name.startswith(("szb%d" % pb, "szv%d" % pb)):
                left.append(name)
        p = run(["iptables", "-S", "FORWARD"])
        left += [l for l in p.stdout.splitlines() if "szb%d" % pb in l]
        if os.path.exists(os.path.join(cluster.dir, "net.list")):
            left.append(os.path.join(cluster.dir, "net.list"))
        if left:
            raise AssertionError("network objects left after down: %s" % left)

    def tearDown(self):
        # keep the cluster directory (logs) and print log tails if a test failed
        result = getattr(getattr(self, "_outcome", None), "result", None)
        if result is not None and any(t is self for t, _ in
                                      list(result.failures) + list(result.errors)):
            type(self).failed = True

    # -- images and snapshots --
    def make_img(self, name, mib, seed=0):
        """A mixed image of mib MiB: 3/4 random, 1/8 text, 1/8 zero."""
        path = self.cluster.path(name)
        total = mib * MiB
        rnd = (total * 3 // 4) // (256 * KiB) * (256 * KiB)
        txt = (total - rnd) // 2
        make_image(path, [("random", rnd), ("text", txt, seed), ("zero", total - rnd - txt)])
        return path

    def remember(self, snap, img):
        self.assertRegex(snap["id"], SNAP_ID_RE)
        self.expected[snap["id"]] = (sha256(img), os.path.getsize(img))

    def take(self, disk, img):
        snap = self.cluster.snapshot(disk, img)
        self.remember(snap, img)
        return snap

    def assertOneLineError(self, p, what):
        self.assertNotEqual(p.returncode, 0, what)
        self.assertGreater(p.returncode, 0, "%s died with signal %d" % (what, -p.returncode))
        lines = [l for l in p.stderr.split("\n") if l.strip()]
        self.assertEqual(len(lines), 1, "%s: expected one stderr line, got %r" % (what, p.stderr))
        return lines[0]

    def listed(self):
        return {s["id"]: s for s in self.cluster.snapctl("snapshot", "list")["snapshots"]}

    def check_listed(self):
        """Exactly the committed snapshots are listed: nothing half-made."""
        self.assertEqual(sorted(self.listed()), sorted(self.expected))

    def check_all_restore(self, zone=None):
        c = self.cluster
        for sid, (digest, size) in sorted(self.expected.items()):
            out = c.path("restore-check.img")
            c.restore(sid, out, zone=zone)
            self.assertEqual(os.path.getsize(out), size, sid)
            self.assertEqual(sha256(out), digest, "restore of %s differs" % sid)
            os.unlink(out)

    # -- measurements --
    def metric(self, key, value):
        """Record a figure (printed as 'szfault-metric CASE KEY VALUE'; also
        appended as JSON to $SZ_FAULT_METRICS if set)."""
        if isinstance(value, float):
            value = round(value, 2)
        self.metrics[key] = value
        sys.stderr.write("szfault-metric %s %s %s\n" % (self.CASE, key, value))
        out = os.environ.get("SZ_FAULT_METRICS")
        if out:
            with open(out, "a") as f:
                f.write(json.dumps({"case": self.CASE, "key": key, "value": value}) + "\n")

    def settle_s(self):
        """Wait this long before trusting under_replicated_blocks == 0: the
        coordinator's audit restarts on every map change and publishes its
        count when a pass ends."""
        return 3 * self.AUDIT_MS / 1000.0 + 1.0

    def wait_repaired(self, label, since=None):
        """Wait until under_replicated_blocks is 0 (REPAIR_BOUND_S); record
        '<label>_s' (seconds from `since`, a time.monotonic() value, or from
        now) and '<label>_peak'."""
        t_call = time.monotonic()
        m = self.cluster.wait_under_rep_zero(self.REPAIR_BOUND_S, settle_s=self.settle_s())
        t0 = since if since is not None else t_call
        # the start of the final run of zero samples (with peak 0, repair was
        # done before the audit could see anything missing)
        first_zero = m["seconds"]
        for t, u in reversed(m["samples"]):
            if u != 0:
                break
            first_zero = t
        secs = (t_call - t0) + first_zero
        self.metric(label + "_s", secs)
        self.metric(label + "_peak", m["peak"])
        if m["peak"] and secs > 0:
            self.metric(label + "_blocks_per_s", m["peak"] / secs)
        return secs, m

    def watch(self):
        """Start a StateWatcher (stopped at cleanup)."""
        w = StateWatcher(self.cluster)
        self.addCleanup(w.stop)
        return w

    def check_no_spurious(self, w, faulty):
        """No node outside `faulty` was ever declared down while w watched
        (healthy nodes must not be declared down because another one died);
        spurious 'suspect' states are recorded as a metric."""
        w.stop()
        self.metric("transitions", " | ".join(w.summary()))
        self.assertEqual(w.errors, [])
        sus = w.spurious(faulty, "suspect")
        self.metric("spurious_suspect", ",".join(sus) or "none")
        self.assertEqual(w.spurious(faulty, "down"), [],
                         "healthy nodes declared down; transitions:\n  " + "\n  ".join(w.summary()))

    def check_after_case(self):
        """The checks after every fault case."""
        c = self.cluster
        c.wait_all_up(timeout=30)
        self.wait_repaired("final_under_rep_zero")
        self.check_listed()
        self.check_all_restore()
        self.assertLessEqual(c.max_call_ratio(), 1.0)
        slow = sorted(c.calls, key=lambda x: -x[1])[:3]
        self.metric("slowest_calls", "; ".join("%.2fs/%.0fs %s" % (e, b or 0, w[:60])
                                               for w, e, b, _ in slow))
        self.metric("snapctl_calls", len(c.calls))


def _cleanup_all():
    for c in list(_live_clusters):
        try:
            c.close(failed=True)
        except Exception as e:  # noqa: BLE001 - best effort at exit
            sys.stderr.write("snapzone-it: cleanup: %s\n" % e)


def _on_signal(signum, frame):
    _cleanup_all()
    os._exit(128 + signum)


TSAN_SUPPRESSIONS = (
    "# libzmq and librocksdb are not built with TSan: their internal lock-free\n"
    "# handoffs show up as races in our frames.  Suppress only those.\n"
    "called_from_lib:libzmq.so\n"
    "race:libzmq.so\n"
    "called_from_lib:librocksdb.so\n"
    "race:librocksdb.so\n")


def _setup_tsan_env():
    """For SZ_TSAN builds: point TSAN_OPTIONS at suppressions for the
    uninstrumented third-party libraries (no effect on other builds).  Set
    SZ_IT_TSAN_SUPP=0, or put suppressions= in TSAN_OPTIONS, to opt out."""
    opts = os.environ.get("TSAN_OPTIONS", "")
    if os.environ.get("SZ_IT_TSAN_SUPP") == "0" or "suppressions=" in opts:
        return
    path = os.path.join(tempfile.gettempdir(), "snapzone-it-tsan-%d.supp" % os.getuid())
    try:
        tmp = "%s.%d" % (path, os.getpid())
        with open(tmp, "w") as f:
            f.write(TSAN_SUPPRESSIONS)
        os.replace(tmp, path)
    except OSError:
        return
    os.environ["TSAN_OPTIONS"] = (opts + " " if opts else "") + "suppressions=" + path


_setup_tsan_env()
atexit.register(_cleanup_all)
for _sig in (signal.SIGTERM, signal.SIGHUP):
    try:
        signal.signal(_sig, _on_signal)
    except (ValueError, OSError):
        pass


def main():
    """unittest.main with verbose output; exits non-zero on failure."""
    unittest.main(verbosity=2)


__all__ = ["Cluster", "ClusterTestCase", "FaultTestCase", "TimedProc", "StateWatcher", "make_image", "overwrite_random", "sha256",
           "allocated_bytes", "poll", "pid_alive", "port_free", "pick_port_base", "run",
           "parse_one_json", "text_bytes", "main", "KiB", "MiB", "BIN", "SRC", "SCRIPT",
           "SNAPCTL", "SNAP_ID_RE"]
