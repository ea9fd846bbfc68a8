"""test_memcached_t.py - what memcached's own protocol tests check, against shmkv

memcached's source has a t/ directory of Perl tests (getset.t, cas.t,
incrdecr.t, noreply.t, flush-all.t, expirations.t, touch.t, getandtouch.t,
flags.t, metaget.t, bogus-commands.t, malicious-commands.t and the issue_*
files).  They state the bytes memcached users depend on.  Each test here
restates one of those checks in our own words, and runs it against
shmkv-server and against a private /usr/bin/memcached (1.6.18, which make
test installs) the same way: the expected bytes are memcached's, so a
check that memcached itself failed would be a wrong reading of its tests.

What those files test about memcached's internals (slab classes and
chunks: issue_14, issue_29, issue_183's "reclaimed"; evictions; -R's
conn_yields: issue_61; the binary protocol: issue_192), and the -F and -C
flags, are left out.

Waits for an expiry are bounded polls (an item that must expire is looked
for until it is gone, up to a deadline), never a fixed sleep deciding the
outcome.
"""
import re
import socket
import time

import difftest
import harness
from harness import ServerTest, cmd, recv_exact, recv_until

ANY_GETS = rb"VALUE %s %d %d (\d+)\r\n"


class Peer:
    """One server under test: its name and how to open a connection."""

    def __init__(self, name, port):
        self.name = name
        self.port = port

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.port), 5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s


class MemcachedTestsTest(ServerTest):
    """Each test runs its checks on shmkv and on memcached."""

    @classmethod
    def setUpClass(cls):
        cls.mc, cls.mc_port = difftest.start_memcached()
        cls.srv = harness.Server(workers=2, memory=64)
        try:
            cls.srv.wait_ready()
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        difftest.stop_memcached(cls.mc)
        cls.srv.cleanup()

    def peers(self):
        return [Peer("shmkv", self.srv.port), Peer("memcached", self.mc_port)]

    def each(self, check):
        """check(peer, sock) on both servers, each on a new connection
        after flush_all."""
        for p in self.peers():
            with self.subTest(server=p.name), p.connect() as s:
                self.send(s, cmd("flush_all"), b"OK\r\n")
                check(p, s)

    def send(self, s, data, want):
        """Send data; the reply must be want (bytes), or fullmatch want (a
        compiled regex, whose match is returned)."""
        s.sendall(data)
        if isinstance(want, re.Pattern):
            got = recv_until(s, want, timeout=5)
            m = want.fullmatch(got)
            self.assertIsNotNone(m, "for %r: got %r" % (data[:80], got[:300]))
            return m
        got = recv_exact(s, len(want), timeout=5)
        self.assertEqual(got, want, "for %r" % data[:80])
        return None

    def gets_cas(self, s, key, flags, value):
        m = self.send(s, cmd("gets " + key), re.compile(
            ANY_GETS % (key.encode(), flags, len(value)) + re.escape(value) +
            rb"\r\nEND\r\n"))
        return int(m.group(1))

    def quiet(self, s):
        """Nothing was answered: the next reply is mn's."""
        self.send(s, b"mn\r\n", b"MN\r\n")

    def wait_gone(self, s, key, timeout=15.0):
        """Poll get until key misses; fail after timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.sendall(cmd("get " + key))
            got = recv_until(s, re.compile(rb"(VALUE [^\r\n]*\r\n.*\r\n)?END\r\n", re.S))
            if got == b"END\r\n":
                return
            time.sleep(0.2)
        self.fail("%s still there after %.0f s" % (key, timeout))

    # getset.t

    def test_getset(self):
        def check(p, s):
            self.send(s, cmd("set foo 0 0 6", b"fooval"), b"STORED\r\n")
            self.send(s, cmd("get foo"), b"VALUE foo 0 6\r\nfooval\r\nEND\r\n")
            self.send(s, cmd("add bar 0 0 6", b"barval"), b"STORED\r\n")
            self.send(s, cmd("add foo 0 0 5", b"foov2"), b"NOT_STORED\r\n")
            self.send(s, cmd("get foo"), b"VALUE foo 0 6\r\nfooval\r\nEND\r\n")
            self.send(s, cmd("replace bar 0 0 6", b"barva2"), b"STORED\r\n")
            self.send(s, cmd("replace notexist 0 0 6", b"barva2"), b"NOT_STORED\r\n")
            self.send(s, cmd("delete foo"), b"DELETED\r\n")
            self.send(s, cmd("delete foo"), b"NOT_FOUND\r\n")
            self.send(s, cmd("add moo 0 0 6", b"mooval"), b"STORED\r\n")
            self.send(s, cmd("cas moo 0 0 6 0", b"MOOVAL"), b"EXISTS\r\n")
            cas = self.gets_cas(s, "moo", 0, b"mooval")
            self.send(s, cmd("cas moo 0 0 6 %d" % cas, b"MOOVAL"), b"STORED\r\n")
            self.send(s, cmd("get moo"), b"VALUE moo 0 6\r\nMOOVAL\r\nEND\r\n")
            # Pipelined: four replies, in order.
            self.send(s, cmd("set foo 0 0 6", b"fooval") + cmd("delete foo") +
                      cmd("set foo 0 0 6", b"fooval") + cmd("delete foo"),
                      b"STORED\r\nDELETED\r\nSTORED\r\nDELETED\r\n")
        self.each(check)

    def test_sizes_around_the_item_limit(self):
        """Up to 1 MB less 1 KB is stored; past 1 MB the set fails and the
        old value is gone too."""
        def check(p, s):
            ok = 1024 * 1024 - 1024
            self.send(s, cmd("set big 0 0 %d" % ok, b"B" * ok), b"STORED\r\n")
            for n in (1024 * 1024 + 1024, 1024 * 1024 + 3072):
                key = "foo_%d" % n
                self.send(s, cmd("set %s 0 0 3" % key, b"MOO"), b"STORED\r\n")
                self.send(s, cmd("set %s 0 0 %d" % (key, n), b"B" * n),
                          b"SERVER_ERROR object too large for cache\r\n")
                self.send(s, cmd("get " + key), b"END\r\n")
        self.each(check)

    def test_large_multiget(self):
        def check(p, s):
            self.send(s, cmd("set foobarbaz 0 0 2", b"hi"), b"STORED\r\n")
            n = 1024 * 128 // 7 + 1
            self.send(s, cmd("get " + "foobarbaz " * n),
                      b"VALUE foobarbaz 0 2\r\nhi\r\n" * n + b"END\r\n")
        self.each(check)

    # cas.t

    def test_cas(self):
        def check(p, s):
            self.send(s, cmd("gets foo"), b"END\r\n")
            self.send(s, cmd("set foo 0 0 6", b"barval"), b"STORED\r\n")
            self.send(s, cmd("cas foo 0 0 6 123", b"barva2"), b"EXISTS\r\n")
            cas = self.gets_cas(s, "foo", 0, b"barval")
            self.send(s, cmd("cas foo 0 0 6 %d" % cas, b"barva2"), b"STORED\r\n")
            self.send(s, cmd("cas foo 0 0 6 %d" % cas, b"barva2"), b"EXISTS\r\n")
            self.send(s, cmd("delete foo"), b"DELETED\r\n")
            self.send(s, cmd("cas foo 0 0 6 %d" % cas, b"barva2"), b"NOT_FOUND\r\n")
            # No CAS: the line is an error, and so is the data after it.
            self.send(s, b"cas foo 0 0 6 \r\nbarva2\r\n", b"ERROR\r\nERROR\r\n")
            self.send(s, cmd("set foo1 0 0 1", b"1"), b"STORED\r\n")
            self.send(s, cmd("set foo2 0 0 1", b"2"), b"STORED\r\n")
            m = self.send(s, cmd("gets foo1 foo2"), re.compile(
                rb"VALUE foo1 0 1 (\d+)\r\n1\r\nVALUE foo2 0 1 (\d+)\r\n2\r\nEND\r\n"))
            self.assertNotEqual(m.group(1), m.group(2))
            # Two clients race with the same CAS: one wins.
            c1 = self.gets_cas(s, "foo1", 0, b"1")
            with p.connect() as s2:
                c2 = self.gets_cas(s2, "foo1", 0, b"1")
                self.assertEqual(c1, c2)
                self.send(s, cmd("cas foo1 0 0 6 %d" % c1, b"barva2"), b"STORED\r\n")
                self.send(s2, cmd("cas foo1 0 0 5 %d" % c2, b"apple"), b"EXISTS\r\n")
        self.each(check)

    # incrdecr.t, issue_68.t

    def test_incr_decr(self):
        def check(p, s):
            self.send(s, cmd("set num 0 0 1", b"1"), b"STORED\r\n")
            self.send(s, cmd("incr num 1"), b"2\r\n")
            self.send(s, cmd("get num"), b"VALUE num 0 1\r\n2\r\nEND\r\n")
            self.send(s, cmd("incr num 8"), b"10\r\n")
            self.send(s, cmd("get num"), b"VALUE num 0 2\r\n10\r\nEND\r\n")
            self.send(s, cmd("decr num 1"), b"9\r\n")
            self.send(s, cmd("decr num 9"), b"0\r\n")
            self.send(s, cmd("decr num 5"), b"0\r\n")
            self.send(s, cmd("set num 0 0 10", b"4294967296"), b"STORED\r\n")
            self.send(s, cmd("incr num 1"), b"4294967297\r\n")
            self.send(s, cmd("set num 0 0 20", b"18446744073709551615"), b"STORED\r\n")
            self.send(s, cmd("incr num 1"), b"0\r\n")
            self.send(s, cmd("decr bogus 5"), b"NOT_FOUND\r\n")
            self.send(s, cmd("decr incr 5"), b"NOT_FOUND\r\n")
            self.send(s, cmd("set text 0 0 2", b"hi"), b"STORED\r\n")
            self.send(s, cmd("incr text 1"),
                      b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n")
            # Keys of every length up to 249: set, get, incr from 9 to 10.
            for n in range(1, 250, 31):
                k = "x" * n
                self.send(s, cmd("set %s 0 0 1" % k, b"9"), b"STORED\r\n")
                self.send(s, cmd("incr %s 1" % k), b"10\r\n")
                self.send(s, cmd("get " + k),
                          b"VALUE %s 0 2\r\n10\r\nEND\r\n" % k.encode())
        self.each(check)

    # noreply.t, issue_3.t, issue_108.t

    def test_noreply(self):
        def check(p, s):
            s.sendall(cmd("flush_all noreply") + cmd("flush_all 0 noreply") +
                      cmd("verbosity 0 noreply"))
            self.quiet(s)
            steps = [("add noreply:foo 0 0 1 noreply", b"1", b"1"),
                     ("set noreply:foo 0 0 1 noreply", b"2", b"2"),
                     ("replace noreply:foo 0 0 1 noreply", b"3", b"3"),
                     ("append noreply:foo 0 0 1 noreply", b"4", b"34"),
                     ("prepend noreply:foo 0 0 1 noreply", b"5", b"534")]
            for line, data, now in steps:
                s.sendall(cmd(line, data))
                self.send(s, cmd("get noreply:foo"), b"VALUE noreply:foo 0 %d\r\n%s\r\nEND\r\n"
                          % (len(now), now))
            cas = self.gets_cas(s, "noreply:foo", 0, b"534")
            s.sendall(cmd("cas noreply:foo 0 0 1 %d noreply" % cas, b"6"))
            self.send(s, cmd("get noreply:foo"), b"VALUE noreply:foo 0 1\r\n6\r\nEND\r\n")
            s.sendall(cmd("incr noreply:foo 3 noreply"))
            self.send(s, cmd("get noreply:foo"), b"VALUE noreply:foo 0 1\r\n9\r\nEND\r\n")
            s.sendall(cmd("decr noreply:foo 2 noreply"))
            self.send(s, cmd("get noreply:foo"), b"VALUE noreply:foo 0 1\r\n7\r\nEND\r\n")
            s.sendall(cmd("delete noreply:foo noreply"))
            self.send(s, cmd("get noreply:foo"), b"END\r\n")
        self.each(check)

    def test_delete_forms(self):
        def check(p, s):
            self.send(s, cmd("delete del_key"), b"NOT_FOUND\r\n")
            self.send(s, cmd("add del_key 0 0 1", b"x"), b"STORED\r\n")
            # A delete with a time is refused, silently with noreply.
            s.sendall(cmd("delete del_key 10 noreply"))
            self.quiet(s)
            self.send(s, cmd("delete del_key 10"), b"CLIENT_ERROR bad command line "
                      b"format.  Usage: delete <key> [noreply]\r\n")
            s.sendall(cmd("delete del_key noreply"))
            self.send(s, cmd("set del_key 0 0 1", b"x"), b"STORED\r\n")
            self.send(s, cmd("delete del_key"), b"DELETED\r\n")
            self.send(s, cmd("set del_key 0 0 1", b"x"), b"STORED\r\n")
            s.sendall(cmd("delete del_key noreply"))
            self.send(s, cmd("add del_key 0 0 1", b"x"), b"STORED\r\n")
            # A time of 0 is accepted.
            self.send(s, cmd("delete del_key 0"), b"DELETED\r\n")
            self.send(s, cmd("add del_key 0 0 1", b"x"), b"STORED\r\n")
        self.each(check)

    # flush-all.t

    def test_flush_all(self):
        def check(p, s):
            for line in ("flush_all", "flush_all 0"):
                self.send(s, cmd("set foo 0 0 6", b"fooval"), b"STORED\r\n")
                self.send(s, cmd(line), b"OK\r\n")
                self.send(s, cmd("get foo"), b"END\r\n")
                # What is stored right after is kept.
                self.send(s, cmd("set foo 0 0 3", b"new"), b"STORED\r\n")
                self.send(s, cmd("get foo"), b"VALUE foo 0 3\r\nnew\r\nEND\r\n")
            # A far delay leaves items alone, old and new.
            self.send(s, cmd("set foo 0 0 5", b"12345"), b"STORED\r\n")
            self.send(s, cmd("flush_all 86400"), b"OK\r\n")
            self.send(s, cmd("set foo2 0 0 5", b"54321"), b"STORED\r\n")
            self.send(s, cmd("get foo foo2"), b"VALUE foo 0 5\r\n12345\r\n"
                      b"VALUE foo2 0 5\r\n54321\r\nEND\r\n")
            # A flush at an absolute time a few seconds ahead: an item stored
            # now is there until then, and gone after.
            self.send(s, cmd("flush_all 0"), b"OK\r\n")
            self.send(s, cmd("flush_all %d" % (int(time.time()) + 3)), b"OK\r\n")
            self.send(s, cmd("set foo 0 0 4", b"1234"), b"STORED\r\n")
            self.send(s, cmd("get foo"), b"VALUE foo 0 4\r\n1234\r\nEND\r\n")
            self.wait_gone(s, "foo")
            self.send(s, cmd("flush_all 0"), b"OK\r\n")
        self.each(check)

    # expirations.t, touch.t, getandtouch.t

    def test_expirations(self):
        def check(p, s):
            # Absolute times in the past and negative TTLs: expired at once.
            for ttl in (int(time.time()) - 1, int(time.time()) - 20, -1):
                self.send(s, cmd("set foo 0 %d 6" % ttl, b"fooval"), b"STORED\r\n")
                self.send(s, cmd("get foo"), b"END\r\n")
            # A short TTL: there at first (3 s is long enough to read it
            # back on a loaded machine), gone later; then add works again.
            self.send(s, cmd("add add 0 3 6", b"addval"), b"STORED\r\n")
            self.send(s, cmd("add add 0 3 7", b"addval2"), b"NOT_STORED\r\n")
            self.wait_gone(s, "add")
            self.send(s, cmd("add add 0 3 7", b"addval3"), b"STORED\r\n")
            self.send(s, cmd("get add"), b"VALUE add 0 7\r\naddval3\r\nEND\r\n")
            self.send(s, cmd("set foo 0 %d 6" % (int(time.time()) + 3), b"foov+1"),
                      b"STORED\r\n")
            self.send(s, cmd("get foo"), b"VALUE foo 0 6\r\nfoov+1\r\nEND\r\n")
            self.wait_gone(s, "foo")
        self.each(check)

    def test_touch_and_gat_set_a_new_ttl(self):
        ttl = re.compile(rb"HD t(\d+)\r\n")
        def check(p, s):
            self.send(s, cmd("gat 10 foo1"), b"END\r\n")
            self.send(s, cmd("set foo 0 2 6", b"fooval"), b"STORED\r\n")
            self.send(s, cmd("touch foo 100"), b"TOUCHED\r\n")
            self.assertGreater(int(self.send(s, cmd("mg foo t"), ttl).group(1)), 90)
            self.send(s, cmd("set foo1 0 2 7", b"fooval1"), b"STORED\r\n")
            self.send(s, cmd("set foo2 0 2 7", b"fooval2"), b"STORED\r\n")
            self.send(s, cmd("gats 100 foo1 foo2"), re.compile(
                rb"VALUE foo1 0 7 \d+\r\nfooval1\r\nVALUE foo2 0 7 \d+\r\n"
                rb"fooval2\r\nEND\r\n"))
            self.send(s, cmd("gat 200 foo1 foo2"), b"VALUE foo1 0 7\r\nfooval1\r\n"
                      b"VALUE foo2 0 7\r\nfooval2\r\nEND\r\n")
            for k in ("foo1", "foo2"):
                self.assertGreater(int(self.send(s, cmd("mg %s t" % k), ttl).group(1)), 190)
        self.each(check)

    # flags.t

    def test_client_flags(self):
        def check(p, s):
            for flags in (0, 123, 2 ** 16 - 1, 2 ** 31, 2 ** 32 - 1):
                self.send(s, cmd("set foo %d 0 6" % flags, b"fooval"), b"STORED\r\n")
                self.send(s, cmd("get foo"),
                          b"VALUE foo %d 6\r\nfooval\r\nEND\r\n" % flags)
        self.each(check)

    # bogus-commands.t, malicious-commands.t, issue_70.t, issue_152.t

    def test_bad_commands(self):
        def check(p, s):
            self.send(s, cmd("boguscommand slkdsldkfjsd"), b"ERROR\r\n")
            self.send(s, cmd("set issue70 0 0 0", b""), b"STORED\r\n")
            self.send(s, cmd("set issue70 0 0 -1"),
                      b"CLIENT_ERROR bad command line format\r\n")
            self.send(s, cmd("set issue70 0 0 4294967295"),
                      b"CLIENT_ERROR bad command line format\r\n")
            self.send(s, cmd("set a 1 0 1", b"a"), b"STORED\r\n")
            self.send(s, cmd("get a " + "a" * 251),
                      b"CLIENT_ERROR bad command line format\r\n")
            self.send(s, cmd("version"), re.compile(rb"VERSION \S+\r\n"))
        self.each(check)

    def test_stats_slabs_of_many_sizes(self):
        """issue_41: items of 69 sizes, then stats slabs; the server still
        answers."""
        def check(p, s):
            size = 2
            for i in range(69):
                for j in range(10):
                    self.send(s, cmd("set key%d:%d 0 0 %d" % (i, j, size), b"x" * size),
                              b"STORED\r\n")
                size = -(-size * 12 // 10)
            self.send(s, cmd("stats slabs"),
                      re.compile(rb"(STAT [^\r\n]*\r\n)+END\r\n"))
            self.send(s, cmd("version"), re.compile(rb"VERSION \S+\r\n"))
        self.each(check)

    def test_http_requests_are_hung_up_on(self):
        for p in self.peers():
            for line in ("GET / HTTP/1.0", "PUT /asdf/asd/fasdfasdf/sadf HTTP/1.1",
                         "DELETE HTTP/1.1"):
                with self.subTest(server=p.name, line=line), p.connect() as s:
                    s.sendall(cmd(line))
                    self.assertTrue(harness.is_eof(s, 5))

    # metaget.t, in 1.6's mg/ms/md words

    def test_meta_recache_and_stale(self):
        va = re.compile(rb"VA (\d+) s(\d+) t(\d+) c(\d+)( [WXZ])*\r\n([^\r]*)\r\n")

        def check(p, s):
            # N vivifies an empty item and wins; the next fetch sees Z.
            m = self.send(s, cmd("mg needwin s c v N30 t"),
                          re.compile(rb"VA 0 s0 c(\d+) t(\d+) W\r\n\r\n"))
            self.assertTrue(0 < int(m.group(2)) <= 30)
            self.send(s, cmd("mg needwin s t c v N30"),
                      re.compile(rb"VA 0 s0 t\d+ c\d+ Z\r\n\r\n"))
            cas = int(m.group(1))
            self.send(s, cmd("ms needwin 2 T120 C%d" % (cas + 1000), b"nu"), b"EX\r\n")
            self.send(s, cmd("ms needwin 2 T120 C%d" % cas, b"mu"), b"HD\r\n")
            m = self.send(s, cmd("mg needwin s t c v N30"), va)
            self.assertEqual((m.group(5), m.group(6)), (None, b"mu"))
            self.assertTrue(100 < int(m.group(3)) <= 120)
            # R above the TTL left: one client wins the recache.
            self.send(s, cmd("mg needwin s t c v N30 R130"),
                      re.compile(rb"VA 2 s2 t\d+ c\d+ W\r\nmu\r\n"))
            m = self.send(s, cmd("mg needwin s t c v N30 R130"),
                          re.compile(rb"VA 2 s2 t\d+ c(\d+) Z\r\nmu\r\n"))
            self.send(s, cmd("ms needwin 4 T300 C%s" % m.group(1).decode(), b"zuuu"),
                      b"HD\r\n")
            m = self.send(s, cmd("mg needwin s t c v N30"), va)
            self.assertEqual((m.group(2), m.group(5), m.group(6)), (b"4", None, b"zuuu"))
            # md I marks stale: the next fetch wins, sees X; a stale store
            # (I, an older CAS) keeps the TTL and the token; a good one clears.
            self.send(s, cmd("set toinv 0 0 3", b"moo"), b"STORED\r\n")
            self.send(s, cmd("md toinv I T30"), b"HD\r\n")
            self.send(s, cmd("mg toinv s t c v"),
                      re.compile(rb"VA 3 s3 t(30|29) c\d+ X W\r\nmoo\r\n"))
            self.send(s, cmd("ms toinv 1 T90 C1", b"f"), b"EX\r\n")
            self.send(s, cmd("ms toinv 1 I T90 C1", b"f"), b"HD\r\n")
            m = self.send(s, cmd("mg toinv s t c v"),
                          re.compile(rb"VA 1 s1 t(30|29) c(\d+) Z X\r\nf\r\n"))
            self.send(s, cmd("ms toinv 1 T90 C%s" % m.group(2).decode(), b"g"),
                      b"HD\r\n")
            m = self.send(s, cmd("mg toinv s t c v"), va)
            self.assertEqual((m.group(5), m.group(6)), (None, b"g"))
            self.assertTrue(30 < int(m.group(3)) <= 90)
        self.each(check)

    def test_meta_quiet_mode(self):
        def check(p, s):
            # q hides the replies that mean "as expected"; an error shows.
            self.send(s, cmd("ms quiet 2 q", b"mo") + cmd("md quiet q") +
                      cmd("mg quiet v q") + cmd("ms quiet"),
                      b"CLIENT_ERROR bad command line format\r\n")
            self.quiet(s)
        self.each(check)


if __name__ == "__main__":
    harness.main()
