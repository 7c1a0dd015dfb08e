"""snapzone on Docker Compose: deploy/docker/compose-demo.sh end to end.

Builds the FROM-scratch image from $SNAPZONE_BIN (deploy/docker/build-image.sh,
under a tag of its own), starts docker-compose.yml under a unique project
name (coordinator + 3 zones x 2 nodes, R=3, on a compose bridge network),
snapshots a host-made image through the `client` service, restores it, kills
both zone-c containers and restores again from the survivors.  Checks:

  - the demo exits 0; the original image and both restores are byte-identical
    (SHA-256 computed here, on the host);
  - the coordinator port is published on 127.0.0.1 only and answers the
    host's snapctl: 4 nodes up, the 2 zone-c nodes down;
  - the zone-c containers are stopped, no other container restarted;
  - the coordinator's healthcheck passes, and on `docker-compose stop`
    (SIGTERM) every daemon exits 0.

The project is always torn down (docker-compose down -v), also on failure,
SIGTERM and at exit, and the image tag is removed.

Docker is required: if `docker info` fails the test FAILS, unless
SZ_SKIP_DOCKER=1 is set (then it is skipped).

Environment: SNAPZONE_BIN (build directory), SNAPZONE_SRC (repository root),
SZ_SKIP_DOCKER=1, SZ_IT_KEEP=1 (leave the cluster and files for debugging),
SZ_IT_VERBOSE=1 (print the demo's output also on success).
"""

import atexit
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.environ.get("SNAPZONE_SRC") or os.path.join(HERE, "..", ".."))
BIN = os.path.abspath(os.environ.get("SNAPZONE_BIN") or os.path.join(SRC, "build"))
DEMO = os.path.join(SRC, "deploy", "docker", "compose-demo.sh")
COMPOSE_FILE = os.path.join(SRC, "docker-compose.yml")
KEEP = os.environ.get("SZ_IT_KEEP") == "1"
VERBOSE = os.environ.get("SZ_IT_VERBOSE") == "1"

DEMO_TIMEOUT = 170  # seconds for the whole demo (its own waits are bounded)
CMD_TIMEOUT = 60    # seconds for every other command
SIZE = "32M"
NODES = ["zone-a-n1", "zone-a-n2", "zone-b-n1", "zone-b-n2", "zone-c-n1", "zone-c-n2"]
KILLED = ["zone-c-n1", "zone-c-n2"]


def run(argv, timeout=CMD_TIMEOUT, env=None):
    try:
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, env=env, timeout=timeout,
                              text=True, errors="replace")
    except subprocess.TimeoutExpired as e:
        raise AssertionError("timed out after %ss: %s" % (timeout, " ".join(argv))) from None
    except FileNotFoundError as e:
        return subprocess.CompletedProcess(argv, 127, "", str(e))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def docker_problem():
    """None if docker and docker-compose are usable, else why not."""
    if shutil.which("docker") is None:
        return "docker is not installed (no 'docker' on PATH)"
    r = run(["docker", "info", "--format", "{{.ServerVersion}}"])
    if r.returncode != 0:
        return "'docker info' fails: %s" % (r.stderr.strip().splitlines() or ["?"])[-1]
    if shutil.which("docker-compose") is None:
        return "docker-compose is not installed (no 'docker-compose' on PATH)"
    return None


class _Project:
    """One compose project; teardown() is idempotent and runs at most once."""

    def __init__(self):
        self.name = "szit%d%s" % (os.getpid(), secrets.token_hex(3))
        self.image = "snapzone:it-" + self.name
        self.shared = tempfile.mkdtemp(prefix="snapzone-compose-it-")
        self.env = dict(os.environ, SZ_IMAGE=self.image, SZ_SHARED_DIR=self.shared,
                        SZ_COORD_PUBLISH="127.0.0.1:",
                        SZ_CLIENT_USER="%d:%d" % (os.getuid(), os.getgid()))
        self.torn_down = False

    def compose(self, *args, timeout=CMD_TIMEOUT):
        return run(["docker-compose", "-f", COMPOSE_FILE, "-p", self.name] + list(args),
                   timeout=timeout, env=self.env)

    def containers(self, all_=True):
        """{service: container id} of this project."""
        argv = ["docker", "ps", "-q", "--filter",
                "label=com.docker.compose.project=%s" % self.name]
        if all_:
            argv.insert(2, "-a")
        r = run(argv)
        ids = r.stdout.split()
        out = {}
        for cid in ids:
            s = run(["docker", "inspect", "--format",
                     '{{index .Config.Labels "com.docker.compose.service"}}', cid])
            out.setdefault(s.stdout.strip(), cid)
        return out

    def teardown(self):
        if self.torn_down:
            return []
        self.torn_down = True
        problems = []
        if KEEP:
            print("SZ_IT_KEEP=1: left project %s running; shared dir %s; remove with: "
                  "docker-compose -f %s -p %s --profile client down -v; docker rmi %s"
                  % (self.name, self.shared, COMPOSE_FILE, self.name, self.image),
                  file=sys.stderr)
            return problems
        # A killed demo may leave docker-compose requests in flight that the
        # engine completes after a first `down`: retry while anything is left.
        for attempt in range(3):
            if attempt:
                time.sleep(2)
            r = self.compose("--profile", "client", "down", "-v", "--remove-orphans",
                             timeout=120)
            if r.returncode == 0 and not self.containers():
                break
        if r.returncode != 0:
            problems.append("docker-compose down -v failed: %s" % r.stderr.strip()[-500:])
        left = self.containers()
        if left:
            problems.append("containers left after down: %s" % sorted(left))
        r = run(["docker", "volume", "ls", "-q", "--filter",
                 "label=com.docker.compose.project=%s" % self.name])
        if r.stdout.strip():
            problems.append("volumes left after down: %s" % r.stdout.split())
        run(["docker", "rmi", self.image])
        shutil.rmtree(self.shared, ignore_errors=True)
        return problems


_projects = []


def _teardown_all():
    for p in _projects:
        try:
            p.teardown()
        except Exception as e:  # at exit: report, never raise
            print("teardown of %s: %s" % (p.name, e), file=sys.stderr)


def _on_signal(signum, frame):
    # Unwind: the test's finally blocks kill the demo, then tear down; atexit
    # catches anything left.
    raise SystemExit(128 + signum)


atexit.register(_teardown_all)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGHUP, _on_signal)


class ComposeDemoTest(unittest.TestCase):

    def test_compose_demo(self):
        why = docker_problem()
        if why is not None:
            if os.environ.get("SZ_SKIP_DOCKER") == "1":
                self.skipTest("SZ_SKIP_DOCKER=1 and docker is unusable: " + why)
            self.fail("docker is required for this test but %s "
                      "(set SZ_SKIP_DOCKER=1 to skip it on machines without docker)" % why)

        p = _Project()
        _projects.append(p)
        try:
            self._demo_and_checks(p)
        finally:
            problems = p.teardown()
        self.assertEqual(problems, [], "teardown problems")

    def _demo_and_checks(self, p):
        t0 = time.monotonic()
        argv = ["bash", DEMO, "--project", p.name, "--build-dir", BIN, "--image", p.image,
                "--shared-dir", p.shared, "--size", SIZE, "--keep"]
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=p.env, text=True,
                                errors="replace", start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=DEMO_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            self.fail("compose-demo.sh did not finish in %ss; output:\n%s"
                      % (DEMO_TIMEOUT, out[-6000:]))
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        took = time.monotonic() - t0
        if VERBOSE:
            print(out, file=sys.stderr)
        self.assertEqual(proc.returncode, 0,
                         "compose-demo.sh exited %d after %.0fs; output:\n%s"
                         % (proc.returncode, took, out[-8000:]))
        self.assertIn("== demo passed", out)
        print("compose-demo.sh passed in %.0fs" % took, file=sys.stderr)

        # The restores, compared here on the host.
        files = {n: os.path.join(p.shared, n) for n in
                 ("disk.img", "restore-1.img", "restore-2.img")}
        for n, f in files.items():
            self.assertTrue(os.path.isfile(f), "%s missing in %s" % (n, p.shared))
        want = sha256(files["disk.img"])
        self.assertEqual(os.path.getsize(files["disk.img"]), 32 << 20)
        self.assertEqual(sha256(files["restore-1.img"]), want, "restore-1 differs")
        self.assertEqual(sha256(files["restore-2.img"]), want,
                         "restore-2 (zone-c killed) differs")

        # Containers: zone-c killed, nothing else restarted or stopped.
        cons = p.containers()
        for svc in ["coordinator"] + NODES:
            self.assertIn(svc, cons, "no container for service %s" % svc)
        self.assertNotIn("client", p.containers(all_=False),
                         "a client container is still running")
        for svc in ["coordinator"] + NODES:
            r = run(["docker", "inspect", "--format",
                     "{{.State.Running}} {{.RestartCount}}", cons[svc]])
            running, restarts = r.stdout.split()
            self.assertEqual(running, "false" if svc in KILLED else "true",
                             "%s running=%s" % (svc, running))
            self.assertEqual(restarts, "0", "%s restarted %s times" % (svc, restarts))

        # The coordinator port is published on 127.0.0.1 only ...
        r = run(["docker", "inspect", "--format",
                 "{{json .NetworkSettings.Ports}}", cons["coordinator"]])
        ports = json.loads(r.stdout)["7400/tcp"]
        self.assertTrue(ports, "coordinator port 7400 is not published")
        self.assertEqual({b["HostIp"] for b in ports}, {"127.0.0.1"}, ports)
        # ... and answers snapctl on the host.
        snapctl = os.path.join(BIN, "snapctl")
        if os.access(snapctl, os.X_OK):
            ep = "tcp://127.0.0.1:%s" % ports[0]["HostPort"]
            r = run([snapctl, "--coordinator", ep, "--json", "cluster", "status"])
            self.assertEqual(r.returncode, 0, "host snapctl via %s: %s" % (ep, r.stderr))
            st = json.loads(r.stdout)
            self.assertEqual(st["replicas"], 3)
            self.assertEqual(sorted(st["zones"]), ["zone-a", "zone-b", "zone-c"])
            state = {n["id"]: n["state"] for n in st["nodes"]}
            self.assertEqual(state, {n: ("down" if n in KILLED else "up") for n in NODES})
            for n in st["nodes"]:
                self.assertEqual(n["endpoint"], "tcp://%s:7401" % n["id"])
            self.assertGreater(sum(n["blocks"] for n in st["nodes"]), 0)

        # The coordinator's healthcheck (snapctl in the container) passes.
        deadline = time.monotonic() + 30
        while True:
            r = run(["docker", "inspect", "--format", "{{.State.Health.Status}}",
                     cons["coordinator"]])
            health = r.stdout.strip()
            if health == "healthy" or time.monotonic() > deadline:
                break
            time.sleep(1)
        self.assertEqual(health, "healthy", "coordinator healthcheck")

        # SIGTERM (docker-compose stop) ends every daemon cleanly: exit 0.
        r = p.compose("stop", "-t", "20", timeout=120)
        self.assertEqual(r.returncode, 0, "docker-compose stop: %s" % r.stderr)
        for svc in ["coordinator"] + NODES:
            r = run(["docker", "inspect", "--format", "{{.State.ExitCode}}", cons[svc]])
            want = "137" if svc in KILLED else "0"
            self.assertEqual(r.stdout.strip(), want, "%s exit code after %s" % (
                svc, "docker-compose kill" if svc in KILLED else "SIGTERM"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
