"""test_restart.py - the cache outlives the server: --memory-file restarts

Every test runs the real server with --memory-file on /dev/shm and checks
what a user would after a restart:
  - clean restart (SIGTERM, start again with the same flags): every key,
    value, flag and CAS is back (a client program reads it directly too),
    TTLs have run on through the downtime (an item whose TTL passed while
    no server ran is gone), new CAS values stay above the old ones, and the
    files are mode 0600;
  - crash restart: SIGKILL of the supervisor, every worker and the client
    programs in the middle of a write load of checksummed values; the next
    start recovers, and no value read afterwards is corrupt.  The share of
    keys kept is printed ("restart: ...") and must be at least 95% with
    128 partitions;
  - a client program that dies holding a partition exclusive, then the
    whole server: exactly that partition is emptied, all else kept;
  - refusals, each leaving the file as it was: other -m, other -I,
    --huge-pages on for a file on tmpfs, another server (port), another
    layout version, a file another live server holds (or only its
    orphaned workers), a file that is not ours (even with
    --memory-file-reset); and --memory-file-reset starting cold.

Usage: python3 test_restart.py PATH-TO-shmkv-server (SHMKV_CHAOS_CHECKER
names the client program that reads directly and holds locks, SHMKV_CLI
the `shmkv` command).
"""
import hashlib
import os
import random
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time

import harness
from harness import ServerTest, cmd, recv_until
from test_chaos import make_value, value_ok

CHECKER = os.environ.get("SHMKV_CHAOS_CHECKER", "")
CLI = os.environ.get("SHMKV_CLI", "")
NKEYS = 20000
# 128 partitions need each to hold 8 items of -I: 128 MiB / 128 = 1 MiB.
CRASH_FLAGS = ("-I", "64k", "--partitions", "128")
CRASH_MEMORY = 128


def request(sock, data, until=rb"(END|STORED|HD|EN|NF|NS|EX)\r\n"):
    """Send data and read until the reply ends with until."""
    sock.sendall(data)
    return recv_until(sock, re.compile(rb".*" + until, re.S), timeout=10)


def gets_all(srv, keys, batch=100):
    """{key: (flags, cas, value)} of every key a gets finds."""
    out = {}
    with srv.tcp(10) as s:
        for i in range(0, len(keys), batch):
            part = keys[i:i + batch]
            text = request(s, cmd("gets " + " ".join(part)), rb"END\r\n")
            for m in re.finditer(rb"VALUE (\S+) (\d+) (\d+) (\d+)\r\n", text):
                start = m.end()
                value = text[start:start + int(m.group(3))]
                out[m.group(1).decode()] = (int(m.group(2)), int(m.group(4)),
                                            value)
    return out


def ttl_of(sock, key):
    """Remaining TTL from mg's t flag: -1 = never, None = miss."""
    line = request(sock, cmd("mg %s t" % key), rb"\r\n")
    m = re.match(rb"HD t(-?\d+)", line)
    return int(m.group(1)) if m else None


def wait_gone(pids, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(os.path.exists("/proc/%d" % p) for p in pids):
            return
        time.sleep(0.02)
    raise AssertionError("processes %s still alive after SIGKILL" % pids)


def file_digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class Loader(threading.Thread):
    """One TCP connection pipelining checksummed sets until stopped or
    killed with its server."""

    def __init__(self, port, seed, stop):
        super().__init__(daemon=True)
        self.port, self.stop, self.rnd = port, stop, random.Random(seed)
        self.acked = 0

    def run(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), 5) as s:
                while not self.stop.is_set():
                    out = []
                    for _ in range(32):
                        k = "chaos:%d" % self.rnd.randrange(NKEYS)
                        v = make_value(k, self.rnd.randrange(1 << 30), self.rnd)
                        out.append(b"set %s 0 0 %d\r\n%s\r\n"
                                   % (k.encode(), len(v), v))
                    request(s, b"".join(out), rb"(STORED\r\n){32}")
                    self.acked += 32
        except (OSError, AssertionError):
            pass  # the server was killed under us: that is the test


class RestartTest(ServerTest):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="shmkv-e2e-", dir="/dev/shm")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.path = os.path.join(self.dir, "cache")

    def server(self, *extra, first=None, memory=64, ready=True, **kw):
        """A server on self.path; with first, on first's port and run dir."""
        if first is not None:
            kw.setdefault("port", first.port)
            kw.setdefault("run_dir", first.run_dir)
        return self.new_server("--memory-file", self.path, *extra,
                               memory=memory, ready=ready, **kw)

    def refused(self, *extra, first=None, memory=64, **kw):
        """Start a server that must refuse: its exit status and log."""
        srv = self.server(*extra, first=first, memory=memory, ready=False, **kw)
        try:
            rc = srv.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.fail("server did not refuse:\n" + srv.log_text())
        return rc, srv.log_text()

    def crash(self, srv, *others):
        """SIGKILL the whole server and the given client programs at once."""
        pids = [srv.pid] + srv.workers() + [p.pid for p in others]
        os.killpg(srv.pid, signal.SIGKILL)
        for p in others:
            p.kill()
        srv.proc.wait(10)
        for p in others:
            p.wait(10)
        wait_gone(pids)

    def fill(self, srv, n, prefix="k", ttl=0):
        with srv.tcp(10) as s:
            for i in range(0, n, 200):
                out = b"".join(cmd("set %s%d %d %d 12" % (prefix, j, j, ttl),
                                   b"value-%06d" % j)
                               for j in range(i, min(n, i + 200)))
                request(s, out, rb"(STORED\r\n){%d}" % (min(n, i + 200) - i))

    def test_clean_restart_keeps_every_item(self):
        srv = self.server()
        self.fill(srv, 3000)
        with srv.tcp() as s:
            request(s, cmd("set short 1 2 2", b"ab") + cmd("set long 2 500 2", b"cd"))
            long_ttl = ttl_of(s, "long")
        before = gets_all(srv, ["k%d" % i for i in range(3000)] + ["long"])
        self.assertEqual(len(before), 3001)
        stopped_at = time.time()
        self.assertStopsCleanly(srv)
        for p in (self.path, self.path + ".ctl"):
            self.assertEqual(stat.S_IMODE(os.stat(p).st_mode), 0o600, p)
        # Let "short" (TTL 2 s) run out while no server runs.
        while time.time() < stopped_at + 3:
            time.sleep(0.1)

        again = self.server(first=srv)
        self.assertIn("stopped cleanly", again.log_text())
        after = gets_all(again, ["k%d" % i for i in range(3000)] + ["long"])
        self.assertEqual(after, before)
        with again.tcp() as s:
            self.assertEqual(request(s, cmd("get short"), rb"END\r\n"), b"END\r\n")
            left = ttl_of(s, "long")
            self.assertTrue(long_ttl - 10 <= left <= long_ttl - 3,
                            "TTL %d before, %d after" % (long_ttl, left))
            request(s, cmd("set fresh 0 0 1", b"x"))
        if CLI:  # a client program reads the adopted segment directly
            p = subprocess.run([CLI, "-s", again.sock_path, "get", "k1234"],
                               capture_output=True, timeout=10)
            self.assertEqual((p.returncode, p.stdout.strip()), (0, b"value-001234"),
                             p.stderr)
        fresh = gets_all(again, ["fresh"])["fresh"][1]
        self.assertGreater(fresh, max(c for _, c, _ in before.values()))
        self.assertStopsCleanly(again)

    def test_crash_under_load_keeps_the_rest_uncorrupted(self):
        if not CHECKER or not os.access(CHECKER, os.X_OK):
            self.skipTest("SHMKV_CHAOS_CHECKER does not name the checker")
        srv = self.server(*CRASH_FLAGS, memory=CRASH_MEMORY)
        rnd = random.Random(13)
        keys = ["chaos:%d" % i for i in range(NKEYS)]
        with srv.tcp(10) as s:
            for i in range(0, NKEYS, 200):
                out = b"".join(b"set %s 0 0 %d\r\n%s\r\n" % (k.encode(), len(v), v)
                               for k in keys[i:i + 200]
                               for v in [make_value(k, 0, rnd)])
                request(s, out, rb"(STORED\r\n){200}")
        readers = [subprocess.Popen([CHECKER, srv.sock_path, str(NKEYS), "60"],
                                    stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL) for _ in range(2)]
        for p in readers:
            self.addCleanup(lambda p=p: p.poll() is None and p.kill())
        stop = threading.Event()
        loaders = [Loader(srv.port, seed, stop) for seed in range(3)]
        for t in loaders:
            t.start()
        deadline = time.monotonic() + 30
        while sum(t.acked for t in loaders) < 3000 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertGreater(sum(t.acked for t in loaders), 0, "no load ran")
        time.sleep(random.uniform(0.1, 0.5))  # kill at no particular moment
        self.crash(srv, *readers)
        stop.set()
        for t in loaders:
            t.join(10)

        again = self.server(*CRASH_FLAGS, first=srv, memory=CRASH_MEMORY)
        log = again.log_text()
        self.assertIn("its last server died", log)
        found = gets_all(again, keys)
        corrupt = [k for k, (_, _, v) in found.items() if not value_ok(k, v)]
        dropped = len(re.findall(r"dropped partition \d+", log))
        kept = len(found) / NKEYS
        print("restart: kept %d of %d keys (%.1f%%) after SIGKILL under load; "
              "%d partition(s) of 128 dropped; %d corrupt"
              % (len(found), NKEYS, kept * 100, dropped, len(corrupt)))
        self.assertEqual(corrupt, [])
        self.assertGreaterEqual(kept, 0.95)
        self.assertStopsCleanly(again)

    def test_partition_held_by_a_dead_client_is_emptied(self):
        if not CHECKER or not os.access(CHECKER, os.X_OK):
            self.skipTest("SHMKV_CHAOS_CHECKER does not name the checker")
        srv = self.server(*CRASH_FLAGS, memory=CRASH_MEMORY)
        self.fill(srv, 5000)
        holder = subprocess.Popen([CHECKER, srv.sock_path, "hold", "k0",
                                   "exclusive"], stdout=subprocess.PIPE)
        self.addCleanup(lambda: holder.poll() is None and holder.kill())
        self.assertTrue(holder.stdout.readline().startswith(b"held"))
        holder.stdout.close()
        self.crash(srv, holder)

        again = self.server(*CRASH_FLAGS, first=srv, memory=CRASH_MEMORY)
        found = gets_all(again, ["k%d" % i for i in range(5000)])
        self.assertNotIn("k0", found)
        dropped = re.findall(r"dropped partition (\d+)", again.log_text())
        self.assertEqual(len(dropped), 1, again.log_text())
        # One partition of 128 is about 1/128 of the keys.
        self.assertTrue(5000 * 0.97 < len(found) < 5000, len(found))
        for k, (flags, _, v) in found.items():
            self.assertEqual((flags, v), (int(k[1:]), b"value-%06d" % int(k[1:])))
        self.assertStopsCleanly(again)

    def test_a_segment_that_does_not_fit_is_refused_untouched(self):
        srv = self.server()
        self.fill(srv, 100)
        self.assertStopsCleanly(srv)
        digest = file_digest(self.path)
        for extra, memory, want in [((), 128, "made with -m 64 (this start: -m 128)"),
                                    (("-I", "512k"), 64, "made with -I 1048576 "
                                     "(this start: -I 524288)"),
                                    (("--huge-pages", "on"), 64, "is on normal pages, "
                                     "but this start asks for --huge-pages on")]:
            rc, log = self.refused(*extra, first=srv, memory=memory)
            self.assertEqual(rc, 1, log)
            self.assertIn(want, log)
            if "made with" in want:  # a reset would help; for pages it would not
                self.assertIn("--memory-file-reset", log)
        rc, log = self.refused()  # another port and run directory
        self.assertEqual(rc, 1, log)
        self.assertIn("made by the server on port %d" % srv.port, log)
        self.assertEqual(file_digest(self.path), digest)

        again = self.server(first=srv)
        self.assertEqual(len(gets_all(again, ["k%d" % i for i in range(100)])), 100)
        rc, log = self.refused(first=None)  # while `again` holds it
        self.assertEqual(rc, 1, log)
        self.assertIn("in use by another running server (pid %d" % again.pid, log)
        self.assertStopsCleanly(again)

    def test_orphaned_workers_still_hold_the_file(self):
        srv = self.server()
        self.fill(srv, 100)
        worker = srv.workers()[0]
        os.kill(worker, signal.SIGSTOP)  # it cannot act on its parent's death
        self.addCleanup(lambda: os.path.exists("/proc/%d" % worker) and
                        os.kill(worker, signal.SIGKILL))
        others = [w for w in srv.workers() if w != worker]
        os.kill(srv.pid, signal.SIGKILL)
        srv.proc.wait(10)
        wait_gone(others)
        # Another port and run directory, so only the file's lock can tell.
        rc, log = self.refused()
        self.assertEqual(rc, 1, log)
        self.assertIn("in use by another running server", log)
        os.kill(worker, signal.SIGKILL)
        wait_gone([worker])
        again = self.server(first=srv)
        self.assertIn("its last server died", again.log_text())
        self.assertEqual(len(gets_all(again, ["k%d" % i for i in range(100)])), 100)
        self.assertStopsCleanly(again)

    def test_another_layout_version_is_refused_and_reset_starts_cold(self):
        srv = self.server()
        self.fill(srv, 100)
        self.assertStopsCleanly(srv)
        with open(self.path, "r+b") as f:  # the layout version, at offset 8
            f.seek(8)
            f.write((2).to_bytes(4, "little"))
        rc, log = self.refused(first=srv)
        self.assertEqual(rc, 1, log)
        self.assertIn("has layout version 2, this server knows", log)

        cold = self.server("--memory-file-reset", first=srv)
        self.assertEqual(gets_all(cold, ["k%d" % i for i in range(100)]), {})
        self.assertStopsCleanly(cold)

    def test_a_file_that_is_not_ours_is_never_taken(self):
        with open(self.path, "wb") as f:
            f.write(b"precious data of somebody else\n" * 100)
        os.chmod(self.path, 0o600)
        digest = file_digest(self.path)
        for extra in [(), ("--memory-file-reset",)]:
            rc, log = self.refused(*extra)
            self.assertEqual(rc, 1, log)
            self.assertIn("is not a shmkv segment", log)
        self.assertEqual(file_digest(self.path), digest)
        link = os.path.join(self.dir, "link")
        os.symlink(self.path, link)
        self.path = link
        rc, log = self.refused("--memory-file-reset")
        self.assertEqual(rc, 1, log)
        self.assertIn("symbolic link", log)

    def test_memory_file_reset_needs_a_memory_file(self):
        p = subprocess.run([harness.SERVER, "--memory-file-reset"],
                           capture_output=True, timeout=10)
        self.assertEqual(p.returncode, 2)
        self.assertEqual(p.stderr.count(b"\n"), 1, p.stderr)
        self.assertIn(b"--memory-file-reset", p.stderr)


if __name__ == "__main__":
    harness.main()
