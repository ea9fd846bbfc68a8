"""test_sharding.py - several shmkv servers sharded by twemproxy and by clients

shmkv has no cluster of its own: users shard with what memcached users run.
This test runs the real tools:

- twemproxy (Debian's nutcracker) in front of three servers with
  distribution: ketama and auto_eject_hosts: true.  10,000 keys written
  through it (single sets, pipelined set_many, noreply set_many), all read
  back through it with multi-key gets (which nutcracker splits by server
  and merges), every server holding at least 10% of them; then one server
  stopped, nutcracker ejecting it, and the keys on the other two still
  readable through the proxy and new writes succeeding.
- The bytes nutcracker exchanges with its servers (pipelined multi-key
  gets spanning servers, noreply storage commands, values larger than its
  16 KB buffers, values holding "\\r\\nEND\\r\\n") sent through one proxy in
  front of three shmkv servers and through another in front of three
  memcached servers (/usr/bin/memcached): the client must see the same
  replies (CAS values aside).
- No proxy: pymemcache's HashClient over the three servers, and
  libmemcached's ketama (through ctypes, as libmemcached clients configure
  it: --DISTRIBUTION=consistent) over them.

Skipped, with the reason, when nutcracker (or memcached, or libmemcached)
is not installed.  Every nutcracker and memcached started here runs in its
own session and is killed by the test's cleanups, or by main()'s finally.
"""
import ctypes
import ctypes.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import harness
from harness import ServerTest, free_port

from pymemcache.client.base import Client
from pymemcache.client.hash import HashClient
from pymemcache.exceptions import MemcacheError

NUTCRACKER = shutil.which("nutcracker") or (
    "/usr/sbin/nutcracker" if os.access("/usr/sbin/nutcracker", os.X_OK) else None)
MEMCACHED = shutil.which("memcached") or (
    "/usr/bin/memcached" if os.access("/usr/bin/memcached", os.X_OK) else None)

# Processes other than shmkv servers (nutcracker, memcached): killed in
# main()'s finally if a test's cleanups never ran.
_procs = []

NKEYS = 10000


def key(i, prefix="key"):
    return "%s:%05d" % (prefix, i)


def value(i, prefix="key"):
    # Values of different lengths, a few above nutcracker's 16 KB mbufs.
    body = b"%s-%d|" % (prefix.encode(), i)
    if i % 997 == 0:
        return body + b"x" * 40000
    return body + b"v" * (i % 200)


def wait_port(port, proc, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("%s exited with %s during start-up"
                                 % (what, proc.returncode))
        try:
            with socket.create_connection(("127.0.0.1", port), 1):
                return
        except OSError:
            time.sleep(0.02)
    raise AssertionError("%s not listening on %d after %.0f s"
                         % (what, port, timeout))


def stop_proc(proc):
    """SIGTERM, then SIGKILL the session if it lingers."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        pass
    if proc in _procs:
        _procs.remove(proc)


# twemproxy's configuration; the README's "More than one machine" shows the
# same one.  Servers are named, so that ketama hashes the names rather than
# host:port: a server moved to another port keeps its keys.
NUTCRACKER_YML = """\
shmkv:
  listen: 127.0.0.1:{listen}
  hash: fnv1a_64
  distribution: ketama
  timeout: {timeout}
  preconnect: true
  auto_eject_hosts: true
  server_retry_timeout: {retry}
  server_failure_limit: {failures}
  servers:
{servers}"""


class ShardingTest(ServerTest):

    def setUp(self):
        if not NUTCRACKER and self._testMethodName.startswith("test_proxy"):
            self.skipTest("nutcracker (twemproxy) not installed: "
                          "apt-get install nutcracker")
        self.tmp = tempfile.mkdtemp(prefix="shmkv-shard-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    # -- processes -------------------------------------------------------

    def spawn(self, args, log_name):
        log = open(os.path.join(self.tmp, log_name), "wb")
        self.addCleanup(log.close)
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        _procs.append(proc)
        self.addCleanup(stop_proc, proc)
        return proc

    def log_of(self, name):
        try:
            with open(os.path.join(self.tmp, name), "rb") as f:
                return f.read().decode(errors="replace")[-4000:]
        except OSError:
            return ""

    def shmkv_servers(self, n=3):
        return [self.new_server(workers=1, memory=64) for _ in range(n)]

    def memcached_servers(self, n=3):
        ports = []
        for i in range(n):
            port = free_port()
            root = ["-u", "nobody"] if os.geteuid() == 0 else []
            proc = self.spawn([MEMCACHED, "-l", "127.0.0.1", "-p", str(port),
                               "-U", "0", "-m", "64", "-t", "1"] + root,
                              "memcached%d.log" % i)
            wait_port(port, proc, "memcached")
            ports.append(port)
        return ports

    def nutcracker(self, ports, name="nut", timeout=1000, retry=15000,
                   failures=2):
        """nutcracker in the foreground in front of ports; returns
        (proxy port, stats port, log name)."""
        listen, stats = free_port(), free_port()
        servers = "".join("   - 127.0.0.1:%d:1 shard%d\n" % (p, i)
                          for i, p in enumerate(ports))
        conf = os.path.join(self.tmp, name + ".yml")
        with open(conf, "w") as f:
            f.write(NUTCRACKER_YML.format(listen=listen, timeout=timeout,
                                          retry=retry, failures=failures,
                                          servers=servers))
        log = name + ".log"
        proc = self.spawn([NUTCRACKER, "-c", conf, "-s", str(stats),
                           "-a", "127.0.0.1", "-i", "200",
                           "-p", os.path.join(self.tmp, name + ".pid"),
                           "-o", os.path.join(self.tmp, log), "-v", "5"],
                          name + ".out")
        wait_port(listen, proc, "nutcracker:\n" + self.log_of(log))
        wait_port(stats, proc, "nutcracker stats")
        return listen, stats, log

    def client(self, port, **kw):
        c = Client(("127.0.0.1", port), connect_timeout=5, timeout=5,
                   default_noreply=False, **kw)
        self.addCleanup(c.close)
        return c

    def nut_stats(self, stats_port):
        with socket.create_connection(("127.0.0.1", stats_port), 5) as s:
            s.settimeout(5)
            buf = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                buf += d
        return json.loads(buf)

    # -- helpers -----------------------------------------------------------

    def read_all(self, c, keys, batch=100):
        """get_many in batches; {key: value} of what was found."""
        found = {}
        for i in range(0, len(keys), batch):
            found.update(c.get_many(keys[i:i + batch]))
        return found

    def placement(self, servers, keys):
        """{key: index of the server holding it}, asking each directly."""
        where = {}
        for n, srv in enumerate(servers):
            c = self.client(srv.port)
            for k in self.read_all(c, keys, 500):
                self.assertNotIn(k, where, "%s on two servers" % k)
                where[k] = n
            c.close()
        return where

    # -- twemproxy ---------------------------------------------------------

    def test_proxy_ketama_10000_keys_and_eject(self):
        servers = self.shmkv_servers()
        proxy_port, stats_port, log = self.nutcracker([s.port for s in servers])
        c = self.client(proxy_port)
        keys = [key(i) for i in range(NKEYS)]

        self.write_all_three_ways(c, keys)
        where = self.check_every_key_placed(c, servers, keys)

        # One server goes away.
        dead = 1
        self.assertEqual(servers[dead].stop(), 0, servers[dead].log_text())
        self.check_the_rest_after_eject(c, servers, keys, where, dead, log)
        self.check_no_server_errors(stats_port)
        for n in (0, 2):
            self.assertStopsCleanly(servers[n])

    def write_all_three_ways(self, c, keys):
        """Writes: one at a time, pipelined with replies, pipelined noreply."""
        for i in range(0, 1000):
            self.assertTrue(c.set(keys[i], value(i)), keys[i])
        for lo, hi, noreply in [(1000, 5500, False), (5500, NKEYS, True)]:
            for b in range(lo, hi, 250):
                batch = {keys[i]: value(i) for i in range(b, min(b + 250, hi))}
                failed = c.set_many(batch, noreply=noreply)
                self.assertEqual(failed, [])
        # noreply sends no reply to wait for: a round trip through every
        # server makes sure they have all been applied before reading.
        self.assertTrue(c.version())

    def check_every_key_placed(self, c, servers, keys):
        """Every key reads back through the proxy, and each server holds
        its share; which server holds which key."""
        # Reads through the proxy: multi-key gets spanning the servers.
        found = self.read_all(c, keys)
        self.assertEqual(len(found), NKEYS)
        for i, k in enumerate(keys):
            self.assertEqual(found[k], value(i), k)
        self.assertEqual(c.gets_many(keys[:5]).keys(), set(keys[:5]))

        # Each server holds its share: counted by itself, and key by key.
        counts = []
        for srv in servers:
            direct = self.client(srv.port)
            counts.append(int(direct.stats()[b"curr_items"]))
            direct.close()
        self.assertEqual(sum(counts), NKEYS, counts)
        for n in counts:
            self.assertGreaterEqual(n, NKEYS // 10, counts)
        where = self.placement(servers, keys)
        self.assertEqual(len(where), NKEYS)
        self.assertEqual([list(where.values()).count(n) for n in range(3)],
                         counts)
        return where

    def check_the_rest_after_eject(self, c, servers, keys, where, dead, log):
        """Once nutcracker ejects the stopped server, the others' keys are
        all there and new writes land on the two left."""
        live_keys = [k for k in keys if where[k] != dead]
        dead_keys = [k for k in keys if where[k] == dead]

        # Until nutcracker ejects it, requests for its keys fail
        # (server_failure_limit consecutive failures eject it for
        # server_retry_timeout).  Bounded: keep asking for a while.
        deadline = time.monotonic() + 10
        while True:
            try:
                c.get_many(dead_keys[:20])
                break
            except (MemcacheError, OSError):
                c.close()  # pymemcache reconnects on the next call
                self.assertLess(time.monotonic(), deadline,
                                "nutcracker never ejected the stopped server:\n"
                                + self.log_of(log))
                time.sleep(0.05)

        # The keys on the other two are all still there, through the proxy.
        found = self.read_all(c, live_keys)
        self.assertEqual(len(found), len(live_keys))
        for k in live_keys:
            self.assertEqual(found[k], value(int(k[4:])), k)
        # The stopped server's keys are gone (ketama sends them elsewhere).
        self.assertEqual(self.read_all(c, dead_keys), {})

        # New writes succeed, on the two live servers.
        new = [key(i, "new") for i in range(1000)]
        for b in range(0, len(new), 250):
            self.assertEqual(c.set_many(
                {k: value(i, "new") for i, k in enumerate(new) if b <= i < b + 250},
                noreply=False), [])
        for i in range(0, 50):
            self.assertTrue(c.set(new[i], value(i, "new"), noreply=False))
        found = self.read_all(c, new)
        self.assertEqual(found, {k: value(i, "new") for i, k in enumerate(new)})
        live = [s for n, s in enumerate(servers) if n != dead]
        where_new = self.placement(live, new)
        self.assertEqual(len(where_new), len(new))
        self.assertEqual(set(where_new.values()), {0, 1})

    def check_no_server_errors(self, stats_port):
        """nutcracker's own account: one ejection, and no server of ours
        ever answered something it could not parse."""
        deadline = time.monotonic() + 5
        while True:
            st = self.nut_stats(stats_port)["shmkv"]
            if st["server_ejects"] >= 1 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertGreaterEqual(st["server_ejects"], 1, st)
        for n in (0, 2):
            shard = st["shard%d" % n]
            self.assertEqual(shard["server_err"], 0, shard)
            self.assertEqual(shard["server_timedout"], 0, shard)

    # -- the bytes nutcracker sends, against memcached's answers ------------

    def talk(self, port, chunks):
        """Send each chunk on a fresh proxy connection and collect what comes
        back (CAS values masked); "<closed>" marks a connection the proxy
        closed, as nutcracker does on a request it cannot parse."""
        out = []
        for data, expect_lines in chunks:
            buf = b""
            with socket.create_connection(("127.0.0.1", port), 5) as s:
                s.sendall(data)
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    s.settimeout(0.05 if buf.count(b"\r\n") >= expect_lines
                                 else 0.5)
                    try:
                        d = s.recv(1 << 20)
                    except socket.timeout:
                        if buf.count(b"\r\n") >= expect_lines:
                            break
                        continue
                    except ConnectionResetError:
                        d = b""
                    if not d:
                        buf += b"<closed>"
                        break
                    buf += d
            out.append(re.sub(rb"^(VALUE \S+ \d+ \d+) \d+\r\n",
                              rb"\1 CAS\r\n", buf, flags=re.M))
        return out

    def test_proxy_replies_match_memcached(self):
        if not MEMCACHED:
            self.skipTest("memcached not installed: apt-get install memcached")
        servers = self.shmkv_servers()
        ours, _, ours_log = self.nutcracker([s.port for s in servers], "ours")
        theirs, _, theirs_log = self.nutcracker(self.memcached_servers(),
                                                "theirs")
        keys = ["mk%d" % i for i in range(60)]
        big = b"B" * 70000
        tricky = b"a\r\nEND\r\nVALUE x 0 1\r\n"
        long_keys = [b"L%04d" % i + b"k" * 245 for i in range(300)]
        # (bytes, how many reply lines at least to wait for)
        script = [
            (b"".join(b"set %s %d 0 %d noreply\r\n%s\r\n"
                      % (k.encode(), i, len(k), k.encode())
                      for i, k in enumerate(keys))
             # nutcracker keeps the order of one client's requests to each
             # server, so this get comes after the sets on every one.
             + b"get " + " ".join(keys).encode() + b"\r\n", 121),
            (b"gets " + " ".join(keys[:30] + ["nope"] + keys[:3]).encode()
             + b"\r\n", 67),
            (b"set big 4294967295 0 %d\r\n%s\r\n" % (len(big), big)
             + b"set tricky 0 0 %d\r\n%s\r\n" % (len(tricky), tricky)
             + b"get big tricky mk1 big\r\n", 11),
            (b"add mk1 0 0 1\r\nx\r\nreplace mk2 0 0 1\r\ny\r\n"
             b"append mk3 0 0 2\r\n++\r\nprepend mk4 0 0 2\r\n--\r\n"
             b"append nope 0 0 1\r\nx\r\nget mk1 mk2 mk3 mk4 nope\r\n", 14),
            (b"set n 0 0 1\r\n5\r\nincr n 10\r\ndecr n 3\r\nincr mk1 1\r\n"
             b"incr nope 1\r\ntouch n 100\r\ntouch nope 1\r\n"
             b"delete mk5\r\ndelete mk5\r\ndelete mk6 noreply\r\n"
             b"incr n 1 noreply\r\nget n mk5 mk6\r\n", 12),
            (b"get nope1 nope2 nope3 nope4 nope5\r\n", 1),
            (b"cas nope 0 0 1 1\r\nx\r\ncas mk7 0 0 1 1\r\nx\r\n", 2),
            (b"set e 0 0 0\r\n\r\nget e\r\n", 4),
            (b"version\r\n", 1),
            # 250-byte keys: a split get line of about 75 KB.
            (b"".join(b"set %s 0 0 2 noreply\r\nab\r\n" % k
                      for k in long_keys)
             + b"get " + b" ".join(long_keys) + b"\r\n", 601),
            (b"gets " + b" ".join(long_keys) + b"\r\n", 601),
            # 3,000 keys (repeats included) in one get.
            (b"get " + b" ".join(b"mk%d" % (i % 60) for i in range(3000))
             + b"\r\n", 5801),
            (b"set sp  0 0 1\r\nx\r\nget  sp\r\n", 4),
            (b"incr mk11 18446744073709551616\r\n", 1),
            (b"set big2 0 0 1048577\r\n" + b"z" * 1048577
             + b"\r\nget big2\r\n", 2),
            # nutcracker refuses these itself (it closes the connection).
            (b"delete mk9 0\r\n", 1),
            (b"set x 0 0 1\r\nxy\r\n", 1),
        ]
        got_ours = self.talk(ours, script)
        got_theirs = self.talk(theirs, script)
        for (data, _), a, b in zip(script, got_ours, got_theirs):
            a = re.sub(rb"^VERSION .*\r\n", b"VERSION\r\n", a, flags=re.M)
            b = re.sub(rb"^VERSION .*\r\n", b"VERSION\r\n", b, flags=re.M)
            self.assertEqual(a, b, "for %r\nshmkv:     %r\nmemcached: %r\n%s"
                             % (data[:200], a[:500], b[:500],
                                self.log_of(ours_log)))
        for srv in servers:
            self.assertStopsCleanly(srv)

    # -- sharding in the client ------------------------------------------

    def test_hashclient_2000_keys(self):
        servers = self.shmkv_servers()
        hc = HashClient([("127.0.0.1", s.port) for s in servers],
                        connect_timeout=5, timeout=5, default_noreply=False)
        self.addCleanup(hc.close)
        keys = [key(i, "hc") for i in range(2000)]
        for i in range(500):
            self.assertTrue(hc.set(keys[i], value(i, "hc")))
        self.assertEqual(hc.set_many({k: value(i, "hc") for i, k in
                                      enumerate(keys) if i >= 500}), [])
        found = hc.get_many(keys)
        self.assertEqual(found, {k: value(i, "hc") for i, k in enumerate(keys)})
        where = self.placement(servers, keys)
        self.assertEqual(len(where), len(keys))
        for n in range(3):
            self.assertGreaterEqual(list(where.values()).count(n), 200)
        hc.close()
        for srv in servers:
            self.assertStopsCleanly(srv)

    def test_libmemcached_ketama(self):
        path = ctypes.util.find_library("memcached")
        if not path:
            self.skipTest("libmemcached not installed: "
                          "apt-get install libmemcached11")
        lib = ctypes.CDLL(path)
        lib.memcached.restype = ctypes.c_void_p
        lib.memcached.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        lib.memcached_free.argtypes = [ctypes.c_void_p]
        lib.memcached_set.argtypes = [
            ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_long, ctypes.c_uint32]
        lib.memcached_get.restype = ctypes.c_void_p
        lib.memcached_get.argtypes = [
            ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
            ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_uint32),
            ctypes.POINTER(ctypes.c_int)]
        libc = ctypes.CDLL(None)
        libc.free.argtypes = [ctypes.c_void_p]

        servers = self.shmkv_servers()
        conf = " ".join("--SERVER=127.0.0.1:%d" % s.port for s in servers)
        conf += " --DISTRIBUTION=consistent --CONNECT-TIMEOUT=5000"
        mc = lib.memcached(conf.encode(), len(conf))
        self.assertTrue(mc, "libmemcached refused %r" % conf)
        self.addCleanup(lib.memcached_free, mc)
        keys = [key(i, "lm") for i in range(2000)]
        for i, k in enumerate(keys):
            v = value(i, "lm")
            rc = lib.memcached_set(mc, k.encode(), len(k), v, len(v), 0, i)
            self.assertEqual(rc, 0, "memcached_set %s: rc %d" % (k, rc))
        for i, k in enumerate(keys):
            n, flags, rc = ctypes.c_size_t(), ctypes.c_uint32(), ctypes.c_int()
            p = lib.memcached_get(mc, k.encode(), len(k), ctypes.byref(n),
                                  ctypes.byref(flags), ctypes.byref(rc))
            self.assertEqual(rc.value, 0, "memcached_get %s: rc %d" % (k, rc.value))
            self.assertTrue(p)
            got = ctypes.string_at(p, n.value)
            libc.free(p)
            self.assertEqual((got, flags.value), (value(i, "lm"), i), k)
        where = self.placement(servers, keys)
        self.assertEqual(len(where), len(keys))
        for n in range(3):
            self.assertGreaterEqual(list(where.values()).count(n), 200)
        for srv in servers:
            self.assertStopsCleanly(srv)


if __name__ == "__main__":
    try:
        harness.main()
    finally:
        for p in list(_procs):
            stop_proc(p)
