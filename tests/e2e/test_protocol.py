"""test_protocol.py - every text command over the wire, byte for byte

The expected replies are what memcached 1.6.18 sends for the same bytes
(captured from /usr/bin/memcached), except where noted.  The same script
runs over TCP and over the Unix socket.  Also: 1000 commands pipelined in
one write, a command split byte by byte across writes, and values of
exactly the maximum item size and one byte more.
"""
import re
import socket
import time

import harness
from harness import ServerTest, cmd, recv_exact, recv_quiet, recv_until

K250 = "k" * 250
K251 = "k" * 251
ANY_CAS = re.compile(rb"VALUE k 0 5 (\d+)\r\nhello\r\nEND\r\n")
GATS = re.compile(rb"VALUE k2 42 3 (\d+)\r\nabc\r\nEND\r\n")

# (bytes sent, reply expected: bytes, or a compiled regex for CAS values)
SCRIPT = [
    (cmd("flush_all"), b"OK\r\n"),
    (cmd("set k 0 0 5", b"hello"), b"STORED\r\n"),
    (cmd("get k"), b"VALUE k 0 5\r\nhello\r\nEND\r\n"),
    (cmd("get nope"), b"END\r\n"),
    (cmd("set k2 42 0 3", b"abc"), b"STORED\r\n"),
    (cmd("get k k2 nope"), b"VALUE k 0 5\r\nhello\r\nVALUE k2 42 3\r\nabc\r\nEND\r\n"),
    (cmd("gets k"), ANY_CAS),
    (cmd("add k 0 0 1", b"x"), b"NOT_STORED\r\n"),
    (cmd("add k3 0 0 1", b"x"), b"STORED\r\n"),
    (cmd("replace nope 0 0 1", b"x"), b"NOT_STORED\r\n"),
    (cmd("replace k3 5 0 2", b"yz"), b"STORED\r\n"),
    (cmd("get k3"), b"VALUE k3 5 2\r\nyz\r\nEND\r\n"),
    (cmd("append k 0 0 3", b"!!!"), b"STORED\r\n"),
    (cmd("prepend k 0 0 2", b"<<"), b"STORED\r\n"),
    (cmd("append nope 0 0 1", b"x"), b"NOT_STORED\r\n"),
    (cmd("prepend nope 0 0 1", b"x"), b"NOT_STORED\r\n"),
    (cmd("get k"), b"VALUE k 0 10\r\n<<hello!!!\r\nEND\r\n"),
    (cmd("cas k 0 0 1 999999", b"x"), b"EXISTS\r\n"),
    (cmd("cas nope 0 0 1 1", b"x"), b"NOT_FOUND\r\n"),
    (cmd("set n 0 0 2", b"10"), b"STORED\r\n"),
    (cmd("incr n 5"), b"15\r\n"),
    (cmd("decr n 100"), b"0\r\n"),
    (cmd("incr nope 1"), b"NOT_FOUND\r\n"),
    (cmd("decr nope 1"), b"NOT_FOUND\r\n"),
    (cmd("incr k 1"), b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n"),
    (cmd("incr n abc"), b"CLIENT_ERROR invalid numeric delta argument\r\n"),
    (cmd("set big 0 0 20", b"18446744073709551615"), b"STORED\r\n"),
    (cmd("incr big 1"), b"0\r\n"),
    (cmd("delete k"), b"DELETED\r\n"),
    (cmd("delete k"), b"NOT_FOUND\r\n"),
    (cmd("touch k2 100"), b"TOUCHED\r\n"),
    (cmd("touch nope 100"), b"NOT_FOUND\r\n"),
    (cmd("gat 100 k2"), b"VALUE k2 42 3\r\nabc\r\nEND\r\n"),
    (cmd("gats 100 k2 nope"), GATS),
    (cmd("gat 100 nope"), b"END\r\n"),
    (cmd("verbosity 1"), b"OK\r\n"),
    (cmd("verbosity"), b"ERROR\r\n"),
    (cmd("set q 0 0 1 noreply", b"x"), b""),
    (cmd("get q"), b"VALUE q 0 1\r\nx\r\nEND\r\n"),
    (cmd("add q 0 0 1 noreply", b"y"), b""),
    (cmd("replace q 0 0 1 noreply", b"z"), b""),
    (cmd("append q 0 0 1 noreply", b"a"), b""),
    (cmd("prepend q 0 0 1 noreply", b"p"), b""),
    (cmd("get q"), b"VALUE q 0 3\r\npza\r\nEND\r\n"),
    (cmd("incr n 1 noreply"), b""),
    (cmd("touch q 1 noreply"), b""),
    (cmd("delete q noreply"), b""),
    (cmd("get q"), b"END\r\n"),
    # memcached rewrites a shorter number in place, padded with spaces.
    (cmd("get n"), b"VALUE n 0 2\r\n1 \r\nEND\r\n"),
    (cmd("flush_all"), b"OK\r\n"),
    (cmd("get k2"), b"END\r\n"),
    (cmd("flush_all 0"), b"OK\r\n"),
    (cmd("flush_all noreply"), b""),
    (cmd("foo"), b"ERROR\r\n"),
    (b"\r\n", b"ERROR\r\n"),
    (cmd("set k 0 0 1", b"abc"), b"CLIENT_ERROR bad data chunk\r\nERROR\r\n"),
    (cmd("set k 0 0 -1"), b"CLIENT_ERROR bad command line format\r\n"),
    (cmd("set k 0 0"), b"ERROR\r\n"),
    (cmd("set k abc 0 1", b"x"), b"CLIENT_ERROR bad command line format\r\nERROR\r\n"),
    (cmd("get"), b"ERROR\r\n"),
    (cmd("set %s 0 0 1" % K250, b"x"), b"STORED\r\n"),
    (cmd("get %s" % K250), ("VALUE %s 0 1\r\nx\r\nEND\r\n" % K250).encode()),
    (cmd("set %s 0 0 1" % K251, b"x"),
     b"CLIENT_ERROR bad command line format\r\nERROR\r\n"),
    (cmd("get %s" % K251), b"CLIENT_ERROR bad command line format\r\n"),
    (cmd("delete n 0"), b"NOT_FOUND\r\n"),
    (cmd("mn"), b"MN\r\n"),
    (cmd("ms mk 2", b"hi"), b"HD\r\n"),
    (cmd("mg mk v"), b"VA 2\r\nhi\r\n"),
    (cmd("mg mk s v f t"), b"VA 2 s2 f0 t-1\r\nhi\r\n"),
    (cmd("mg nope v"), b"EN\r\n"),
    (cmd("md mk"), b"HD\r\n"),
    (cmd("md mk"), b"NF\r\n"),
    (cmd("ma nope"), b"NF\r\n"),
]


def exchange(test, s, req, want):
    """Send req, read the expected reply, and fail with both on mismatch."""
    s.sendall(req)
    if isinstance(want, re.Pattern):
        got = recv_until(s, want, timeout=3)
        test.assertRegex(got, want, "for %r" % req[:80])
    elif want == b"":
        got = recv_quiet(s, 0.05)
        test.assertEqual(got, b"", "for %r" % req[:80])
    else:
        got = recv_exact(s, len(want), timeout=3)
        test.assertEqual(got, want, "for %r" % req[:80])


class TextCommandsTest(ServerTest):
    def run_script(self, s):
        for req, want in SCRIPT:
            exchange(self, s, req, want)
        # Nothing stray after the last reply; then version, and quit closes.
        s.sendall(b"version\r\n")
        got = recv_until(s, re.compile(rb"VERSION \S+\r\n"), timeout=3)
        self.assertRegex(got, rb"^VERSION \S+\r\n$")
        s.sendall(b"quit\r\n")
        self.assertTrue(harness.is_eof(s))

    def test_script_over_tcp(self):
        srv = self.new_server()
        with srv.tcp() as s:
            self.run_script(s)
        self.assertStopsCleanly(srv)

    def test_script_over_unix_socket(self):
        srv = self.new_server()
        with srv.unix() as s:
            self.run_script(s)
        self.assertStopsCleanly(srv)

    def test_stats(self):
        srv = self.new_server()
        with srv.tcp() as s:
            s.sendall(b"stats\r\n")
            got = recv_until(s, re.compile(rb"(STAT [^\r\n]*\r\n)*END\r\n", re.S))
            self.assertTrue(got.endswith(b"END\r\n"), got[-200:])
            for name in [b"pid", b"uptime", b"curr_connections", b"total_connections"]:
                self.assertIn(b"STAT " + name + b" ", got)
            s.sendall(b"stats settings\r\n")
            got = recv_until(s, re.compile(rb"(STAT [^\r\n]*\r\n)*END\r\n", re.S))
            self.assertIn(b"STAT maxconns 1024\r\n", got)
            self.assertIn(b"STAT tcpport %d\r\n" % srv.port, got)


class PipelineTest(ServerTest):
    def test_1000_commands_in_one_write(self):
        srv = self.new_server()
        batch = b"".join(cmd("set p%d 0 0 %d" % (i, len(str(i))), str(i).encode())
                         + cmd("get p%d" % i) for i in range(500))
        want = b"".join(b"STORED\r\nVALUE p%d 0 %d\r\n%d\r\nEND\r\n" % (i, len(str(i)), i)
                        for i in range(500))
        with srv.tcp() as s:
            s.sendall(batch)
            self.assertEqual(recv_exact(s, len(want), timeout=10), want)
            self.assertEqual(recv_quiet(s, 0.05), b"")
        self.assertStopsCleanly(srv)

    def test_command_split_byte_by_byte(self):
        srv = self.new_server()
        req = cmd("set split 3 0 10", b"0123456789") + cmd("get split") + cmd("incr nope 1")
        want = b"STORED\r\nVALUE split 3 10\r\n0123456789\r\nEND\r\nNOT_FOUND\r\n"
        with srv.tcp() as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for i in range(len(req)):
                s.sendall(req[i:i + 1])
                time.sleep(0.001)
            self.assertEqual(recv_exact(s, len(want)), want)
        self.assertStopsCleanly(srv)


class MaxItemTest(ServerTest):
    def check_limit(self, limit, flag):
        srv = self.new_server("-I", flag)
        ok = b"a" * limit
        with srv.tcp() as s:
            s.sendall(cmd("set max 0 0 %d" % limit, ok))
            self.assertEqual(recv_exact(s, 8, timeout=10), b"STORED\r\n")
            s.sendall(cmd("get max"))
            head = b"VALUE max 0 %d\r\n" % limit
            want = head + ok + b"\r\nEND\r\n"
            self.assertEqual(recv_exact(s, len(want), timeout=10), want)
            # One byte more: refused, and its data skipped, not parsed.
            s.sendall(cmd("set max 0 0 %d" % (limit + 1), b"b" * (limit + 1)))
            err = b"SERVER_ERROR object too large for cache\r\n"
            self.assertEqual(recv_exact(s, len(err), timeout=10), err)
            # As memcached: a failed set drops the old value (no stale data).
            s.sendall(cmd("get max"))
            self.assertEqual(recv_exact(s, 5, timeout=10), b"END\r\n")
            self.assertEqual(recv_quiet(s, 0.05), b"")
        self.assertStopsCleanly(srv)

    def test_default_1m(self):
        self.check_limit(1024 * 1024, "1m")

    def test_small_limit_with_suffix(self):
        self.check_limit(4096, "4k")


class BinaryProtocolTest(ServerTest):
    """memcached picks the protocol by the first byte; shmkv speaks only
    text and meta, so a binary request is refused in binary, at once."""

    def test_binary_request_is_refused_promptly(self):
        srv = self.new_server()
        # A binary GET of "k": magic 0x80, opcode 0, key length 1, body
        # length 1, opaque 0x01020304.
        header = bytes([0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4]) + bytes(8)
        with srv.tcp() as s:
            s.sendall(header + b"k")
            reply = recv_exact(s, 24 + 15, timeout=10)
            # Response magic, the opcode, status 0x81 "Unknown command",
            # the body length, the request's opaque.
            self.assertEqual(reply[:12], bytes([0x81, 0, 0, 0, 0, 0, 0, 0x81, 0, 0, 0, 15]))
            self.assertEqual(reply[12:16], bytes([1, 2, 3, 4]))
            self.assertEqual(reply[24:], b"Unknown command")
            s.settimeout(10)
            self.assertEqual(s.recv(1), b"", "the connection is closed")
        with srv.tcp() as t:  # the others are still served
            t.sendall(cmd("version"))
            self.assertEqual(recv_until(t, re.compile(rb"VERSION [^\r\n]*\r\n")),
                             b"VERSION 1.6.18\r\n")
        self.assertStopsCleanly(srv)

    def test_a_later_0x80_byte_is_text(self):
        srv = self.new_server()
        with srv.tcp() as s:
            s.sendall(cmd("version") + b"\x80x\r\n" + cmd("version"))
            want = b"VERSION 1.6.18\r\nERROR\r\nVERSION 1.6.18\r\n"
            self.assertEqual(recv_exact(s, len(want), timeout=10), want)
        self.assertStopsCleanly(srv)


if __name__ == "__main__":
    harness.main()
