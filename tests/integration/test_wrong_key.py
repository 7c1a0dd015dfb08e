#!/usr/bin/env python3
"""Key handling and error paths: a wrong key never yields data; keygen never
overwrites; bad input gives one clear line on stderr and a non-zero exit."""
import os
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from szharness import MiB, ClusterTestCase, make_image, main  # noqa: E402


class WrongKey(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        c = cls.cluster
        cls.img = c.path("wk.img")
        make_image(cls.img, [("random", 1 * MiB), ("text", 1 * MiB)])
        c.disk_create("wk", "4M", block_size="64K")
        cls.snap = c.snapshot("wk", cls.img)

    def assertAbsentOrEmpty(self, path):
        if os.path.exists(path):
            self.assertEqual(os.path.getsize(path), 0,
                             "%s was written although the command failed" % path)

    def test_restore_with_wrong_key(self):
        c = self.cluster
        key2 = c.keygen("wk.key2")
        out = c.path("wk.wrong")
        _, err = c.snapctl_fail("disk", "restore", self.snap["id"], "--file", out, keyfile=key2)
        self.assertIn("key", err.lower())
        self.assertAbsentOrEmpty(out)
        # the right key still works
        ok = c.path("wk.right")
        c.restore(self.snap["id"], ok)
        self.assertSameFile(self.img, ok)

    def test_keygen_refuses_overwrite(self):
        c = self.cluster
        path = c.keygen("wk.key3")
        with open(path, "rb") as f:
            before = f.read()
        mtime = os.stat(path).st_mtime_ns
        _, err = c.snapctl_fail("keygen", path, keyfile=None)
        self.assertTrue(err)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), before)
        self.assertEqual(os.stat(path).st_mtime_ns, mtime)
        # a non-key file is not overwritten either
        other = c.path("wk.notakey")
        with open(other, "w") as f:
            f.write("precious\n")
        c.snapctl_fail("keygen", other, keyfile=None)
        with open(other) as f:
            self.assertEqual(f.read(), "precious\n")

    def test_keyfile_mode(self):
        c = self.cluster
        old = os.umask(0o022)
        try:
            path = c.keygen("wk.key4")
        finally:
            os.umask(old)
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(os.stat(c.keyfile).st_mode), 0o600)

    def test_missing_keyfile(self):
        c = self.cluster
        missing = c.path("no-such.key")
        _, err = c.snapctl_fail("snapshot", "create", "wk", "--file", self.img, keyfile=missing)
        self.assertTrue("key" in err.lower() or missing in err, err)
        out = c.path("wk.nokey")
        _, err = c.snapctl_fail("disk", "restore", self.snap["id"], "--file", out, keyfile=missing)
        self.assertTrue("key" in err.lower() or missing in err, err)
        self.assertAbsentOrEmpty(out)

    def test_restore_unknown_snapshot(self):
        c = self.cluster
        out = c.path("wk.unknown")
        sid = "snap-0123456789abcdef"
        _, err = c.snapctl_fail("disk", "restore", sid, "--file", out)
        low = err.lower()
        self.assertTrue(sid in err or "not found" in low or "no such" in low, err)
        self.assertAbsentOrEmpty(out)
        _, err = c.snapctl_fail("disk", "restore", "not-a-snapshot-id", "--file", out)
        self.assertAbsentOrEmpty(out)

    def test_snapshot_missing_file(self):
        c = self.cluster
        missing = c.path("no-such.img")
        _, err = c.snapctl_fail("snapshot", "create", "wk", "--file", missing)
        low = err.lower()
        self.assertTrue(missing in err or "no such file" in low or "not found" in low, err)

    def test_snapshot_unknown_disk(self):
        c = self.cluster
        c.snapctl_fail("snapshot", "create", "no-such-disk", "--file", self.img)

    def test_snapshot_image_larger_than_disk(self):
        c = self.cluster
        c.disk_create("wk-small", "1M", block_size="64K")
        c.snapctl_fail("snapshot", "create", "wk-small", "--file", self.img)

    def test_disk_create_bad_sizes(self):
        c = self.cluster
        bad = [
            ("wk-bad1", ["--size", "abc"]),
            ("wk-bad2", ["--size", "0"]),
            ("wk-bad3", ["--size", "10M", "--block-size", "3000"]),
            ("wk-bad4", ["--size", "10M", "--block-size", "8M"]),
            ("wk-bad5", ["--size", "10M", "--block-size", "2K"]),
            ("wk-bad6", ["--size", "-5M"]),
        ]
        for name, args in bad:
            with self.subTest(args=args):
                c.snapctl_fail("disk", "create", name, *args, keyfile=None)
        names = {d["name"] for d in c.snapctl("disk", "list", keyfile=None)["disks"]}
        self.assertFalse(names & {n for n, _ in bad}, "a rejected disk was created")

    def test_disk_create_duplicate(self):
        c = self.cluster
        c.disk_create("wk-dup", "1M")
        c.snapctl_fail("disk", "create", "wk-dup", "--size", "1M", keyfile=None)

    def test_errors_without_json(self):
        c = self.cluster
        _, err = c.snapctl_fail("disk", "restore", "snap-0123456789abcdef",
                                "--file", c.path("wk.nojson"), json_flag=False)
        self.assertTrue(err)


if __name__ == "__main__":
    main()
