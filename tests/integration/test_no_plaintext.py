#!/usr/bin/env python3
"""Client-side encryption: after a snapshot, no plaintext of the image (text
markers, an embedded marker in random data, samples of the random data) and
no key material appears in any file of the cluster directory (node and
coordinator data including RocksDB files, and the logs)."""
import base64
import binascii
import os
import random
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from szharness import MiB, KiB, ClusterTestCase, make_image, main  # noqa: E402

MARKER = "SNAPZONE-PLAINTEXT-MARKER"
EMBEDDED = b"SNAPZONE-EMBEDDED-RANDOM-MARKER-" + b"0123456789abcdef0123456789ABCDEF"
assert len(EMBEDDED) == 64


def key_needles(raw):
    """Byte strings that would betray the key file's content: the file
    itself, and for a text key file every hex/base64 token in it and its
    decoded bytes; then 16-byte windows of all binary key material."""
    needles = [raw]
    binary = []
    text = all(32 <= ch < 127 or ch in (9, 10, 13) for ch in raw)
    if text:
        for tok in re.findall(rb"[0-9a-fA-F]{32,}", raw):
            needles.append(tok)
            try:
                binary.append(bytes.fromhex(tok.decode("ascii")))
            except ValueError:
                pass
        for tok in re.findall(rb"[A-Za-z0-9+/]{40,}={0,2}", raw):
            needles.append(tok)
            try:
                binary.append(base64.b64decode(tok, validate=True))
            except (ValueError, binascii.Error):
                pass
    else:
        binary.append(raw)
    for k in binary:
        needles.append(k)
        needles += [k[i:i + 16] for i in range(0, max(0, len(k) - 15), 8)]
    return [n for n in needles if len(n) >= 16]


class NoPlaintext(ClusterTestCase):
    def test_no_plaintext_at_rest(self):
        c = self.cluster
        img = c.path("np.img")
        make_image(img, [
            ("marker", 2 * MiB, MARKER),  # compressible text, many marker copies
            ("random", 1 * MiB + 12345),
            ("bytes", EMBEDDED),          # a 64-byte marker inside random data
            ("random", 1 * MiB - 12345 - len(EMBEDDED)),
            ("marker", 1 * MiB, MARKER + "-TAIL"),
        ])
        size = os.path.getsize(img)
        self.assertEqual(size, 5 * MiB)
        with open(img, "rb") as f:
            data = f.read()
        self.assertIn(MARKER.encode(), data)
        rnd_lo, rnd_hi = 2 * MiB, 4 * MiB
        rng = random.Random(1234)
        samples = []
        while len(samples) < 50:
            o = rng.randrange(rnd_lo, rnd_hi - 32)
            w = data[o:o + 32]
            if EMBEDDED[:8] not in w and EMBEDDED[-8:] not in w:
                samples.append(w)

        c.disk_create("np", "8M", block_size="64K")
        snap = c.snapshot("np", img)
        self.assertGreater(snap["new_blocks"], 0)
        # let nodes flush/replicate and heartbeat before scanning
        c.wait_blocks_total(self.REPLICAS * snap["new_blocks"], timeout=5)

        with open(c.keyfile, "rb") as f:
            keyraw = f.read()
        needles = [(b"marker", MARKER.encode()), (b"embedded", EMBEDDED),
                   (b"embedded-half", EMBEDDED[:32])]
        needles += [(b"random-sample-%d" % i, w) for i, w in enumerate(samples)]
        needles += [(b"key-material", k) for k in key_needles(keyraw)]

        scanned = 0
        scanned_bytes = 0
        hits = []
        for root, _dirs, files in os.walk(c.dir):
            for fn in files:
                p = os.path.join(root, fn)
                if os.path.islink(p) or not os.path.isfile(p):
                    continue
                try:
                    with open(p, "rb") as f:
                        blob = f.read()
                except OSError as e:
                    self.fail("cannot read %s: %s" % (p, e))
                scanned += 1
                scanned_bytes += len(blob)
                for name, n in needles:
                    if n in blob:
                        hits.append("%s found in %s" % (name.decode(), os.path.relpath(p, c.dir)))
        self.assertGreater(scanned, 10)
        self.assertGreater(scanned_bytes, snap["new_blocks"] * 64 * KiB,
                           "scanned less data than was stored")
        self.assertEqual(hits, [], "plaintext or key material at rest")

        out = c.path("np.r")
        c.restore(snap["id"], out)
        self.assertSameFile(img, out)


if __name__ == "__main__":
    main()
