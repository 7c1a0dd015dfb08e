#!/usr/bin/env python3
"""Robustness: raw ZeroMQ garbage sent to the coordinator and to a node
(random bytes, empty frames, truncated protobuf, too many frames, oversized
frames, a wrong protocol version) never kills a daemon or stops it serving."""
import os
import sys
import time

import zmq

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from szharness import MiB, KiB, ClusterTestCase, make_image, pid_alive, main  # noqa: E402
import szwire  # noqa: E402
from szwire import (MSG_BLOCK_PUT, MSG_NODE_STAT, MSG_REPLY, MSG_STATUS_GET,  # noqa: E402
                    last_fields)



def envelope(version, mtype, req_id, extra=b""):
    return szwire.envelope(mtype, req_id, extra, version=version)


class BadFrames(ClusterTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.ctx = zmq.Context()
        cls.addClassCleanup(cls.ctx.term)
        c = cls.cluster
        cls.coord_ep = c.coordinator
        cls.node = c.nodes()[0]
        cls.node_ep = cls.node["endpoint"]
        cls.pids_before = c.pids()

    def dealer(self, ep, linger=0):
        s = self.ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, linger)
        s.setsockopt(zmq.SNDHWM, 10)
        s.connect(ep)
        return s

    def send_and_maybe_recv(self, ep, frames, wait=2.0, linger=0):
        """Send one multipart message on a fresh DEALER; return the reply
        frames, or None if nothing came back within `wait` seconds."""
        s = self.dealer(ep, linger=linger)
        try:
            s.send_multipart(frames, copy=True)
            if s.poll(int(wait * 1000), zmq.POLLIN):
                return s.recv_multipart()
            return None
        finally:
            s.close(linger=linger)

    def assertReplyOrNothing(self, reply, what):
        if reply is None:
            return
        self.assertGreaterEqual(len(reply), 1, what)
        # a reply must at least be a decodable envelope
        try:
            f = last_fields(reply[0])
        except ValueError as e:
            self.fail("%s: undecodable reply frame %r (%s)" % (what, reply[0][:64], e))
        self.assertEqual(f.get(2, 0), MSG_REPLY, "%s: reply type" % what)

    def control(self, ep, mtype, req_id):
        """A well-formed request must get a REPLY echoing its req_id."""
        reply = self.send_and_maybe_recv(ep, [envelope(1, mtype, req_id)], wait=5.0)
        self.assertIsNotNone(reply, "no reply to a valid request type %d on %s" % (mtype, ep))
        f = last_fields(reply[0])
        self.assertEqual(f.get(1), 1, "reply version")
        self.assertEqual(f.get(2), MSG_REPLY, "reply type")
        self.assertEqual(f.get(3), req_id, "reply req_id")
        return f

    def garbage_cases(self, valid_type):
        rnd = os.urandom(4096)
        return [
            ("random bytes", [rnd]),
            ("random short", [os.urandom(7)]),
            ("empty frame", [b""]),
            ("two empty frames", [b"", b""]),
            ("truncated varint", [b"\x08"]),
            ("truncated envelope", [envelope(1, valid_type, 5)[:-1] + b"\x98"]),
            ("length past end", [envelope(1, valid_type, 5, b"\x52\x40\x08")]),
            ("huge length", [envelope(1, valid_type, 5, b"\x52\xff\xff\xff\xff\x0f")]),
            ("bad wire type", [envelope(1, valid_type, 5, b"\x0f\x00")]),
            ("unknown type", [envelope(1, 9999, 5)]),
            ("no type", [b"\x08\x01\x18\x05"]),
            ("version 0", [envelope(0, valid_type, 5)]),
            ("version 99", [bytes([0x08, 0x63, 0x10, 0x0D, 0x18, 0x07])]),
            ("version 99 node", [envelope(99, MSG_NODE_STAT, 7)]),
            ("reply sent as request", [envelope(1, MSG_REPLY, 5)]),
            ("block put without frames",
             [envelope(1, MSG_BLOCK_PUT, 5, b"\xa2\x01\x22\x0a\x20" + b"\x11" * 32)]),
            ("block put bad frames",
             [envelope(1, MSG_BLOCK_PUT, 5, b"\xa2\x01\x22\x0a\x20" + b"\x11" * 32),
              os.urandom(1000), os.urandom(1000)]),
            ("200 frames", [envelope(1, valid_type, 5)] + [os.urandom(16) for _ in range(199)]),
            ("200 empty frames", [b""] * 200),
        ]

    def run_cases(self, ep, valid_type):
        for what, frames in self.garbage_cases(valid_type):
            with self.subTest(endpoint=ep, case=what):
                self.assertReplyOrNothing(self.send_and_maybe_recv(ep, frames), what)

    def oversize(self, ep, size):
        # libzmq drops a peer whose frame exceeds ZMQ_MAXMSGSIZE; linger so
        # the frame is actually written before the socket closes
        big = b"\x08\x01" + bytes(size - 2)
        reply = self.send_and_maybe_recv(ep, [big], wait=2.0, linger=3000)
        self.assertReplyOrNothing(reply, "oversize %d" % size)

    def assertStillServing(self):
        c = self.cluster
        for kind, ident, pid in self.pids_before:
            self.assertTrue(pid_alive(pid, kind), "%s %s (pid %d) died" % (kind, ident, pid))
        st = c.status()
        self.assertEqual(len(st["nodes"]), self.ZONES * self.NODES_PER_ZONE)

    def test_1_controls(self):
        self.control(self.coord_ep, MSG_STATUS_GET, 4242)
        self.control(self.node_ep, MSG_NODE_STAT, 4243)

    def test_2_coordinator_garbage(self):
        self.run_cases(self.coord_ep, MSG_STATUS_GET)
        self.oversize(self.coord_ep, 80 * MiB)
        self.assertStillServing()
        self.control(self.coord_ep, MSG_STATUS_GET, 77)

    def test_3_node_garbage(self):
        self.run_cases(self.node_ep, MSG_NODE_STAT)
        self.oversize(self.node_ep, 8 * MiB)
        self.assertStillServing()
        self.control(self.node_ep, MSG_NODE_STAT, 78)

    def test_4_flood_then_serve(self):
        # many bad messages on one connection, then a valid one on it
        s = self.dealer(self.coord_ep)
        try:
            for _ in range(300):
                s.send_multipart([os.urandom(64)])
            s.send_multipart([envelope(1, MSG_STATUS_GET, 99999)])
            deadline = time.monotonic() + 10
            got = False
            while time.monotonic() < deadline and not got:
                if s.poll(500, zmq.POLLIN):
                    fr = s.recv_multipart()
                    try:
                        got = last_fields(fr[0]).get(3) == 99999
                    except ValueError:
                        pass
            self.assertTrue(got, "no reply to a valid request after 300 bad ones")
        finally:
            s.close(linger=0)

    def test_5_round_trip_after_abuse(self):
        c = self.cluster
        self.assertStillServing()
        img = c.path("bf.img")
        make_image(img, [("random", 512 * KiB), ("zero", 256 * KiB), ("text", 256 * KiB)])
        c.disk_create("bf", "1M", block_size="64K")
        snap = c.snapshot("bf", img)
        self.assertSnapJSON(snap, "bf", 1 * MiB)
        out = c.path("bf.r")
        c.restore(snap["id"], out)
        self.assertSameFile(img, out)
        self.assertStillServing()


if __name__ == "__main__":
    main()
