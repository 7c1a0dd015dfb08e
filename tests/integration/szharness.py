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
  SZ_IT_VERBOSE=1  echo every command run
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

    def __init__(self, zones=3, nodes_per_zone=2, replicas=3, keygen=True):
        self.zones = zones
        self.nodes_per_zone = nodes_per_zone
        self.replicas = replicas
        self.want_key = keygen
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
                            *extra)
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

    def snapctl_raw(self, *args, keyfile=_DEFAULT, json_flag=True, timeout=CMD_TIMEOUT, env=None):
        env2 = dict(os.environ)
        env2.pop("SNAPZONE_COORDINATOR", None)
        env2.pop("SNAPZONE_KEYFILE", None)
        if env:
            env2.update(env)
        p = run(self.snapctl_argv(args, keyfile, json_flag), timeout=timeout, env=env2)
        self.last = p
        return p

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


__all__ = ["Cluster", "ClusterTestCase", "make_image", "overwrite_random", "sha256",
           "allocated_bytes", "poll", "pid_alive", "port_free", "pick_port_base", "run",
           "parse_one_json", "text_bytes", "main", "KiB", "MiB", "BIN", "SRC", "SCRIPT",
           "SNAPCTL", "SNAP_ID_RE"]
