"""test_python.py - the `shmkv` Python module against the real server

Client(socket_path) attaches to a real shmkv-server as any Python program
would, and what it writes a plain memcached client on TCP sees (and the
other way round).  Results are bytes, a missing key is None, every failure
is shmkv.Error with the library's status, and a call that waits for the
server lets other Python threads run.

Usage: python3 test_python.py PATH-TO-shmkv-server; SHMKV_PYTHON_DIR in the
environment is the build directory holding the module.
"""
import os
import re
import signal
import subprocess
import sys
import threading
import time

import harness
from harness import ServerTest


# This interpreter imports the module too: start it again with the
# runtime preloaded, then keep the preload from the servers it starts.
if os.environ.get("SHMKV_PYTHON_PRELOAD") and "SHMKV_PYTHON_REEXEC" not in os.environ:
    os.execve(sys.executable, [sys.executable] + sys.argv,
              harness.python_module_env(SHMKV_PYTHON_REEXEC=os.environ.get("ASAN_OPTIONS", "")))
if "SHMKV_PYTHON_REEXEC" in os.environ:
    os.environ.pop("LD_PRELOAD", None)
    os.environ["ASAN_OPTIONS"] = os.environ.pop("SHMKV_PYTHON_REEXEC")

sys.path.insert(0, os.environ.get("SHMKV_PYTHON_DIR", ""))
import shmkv  # noqa: E402  (the built module, from SHMKV_PYTHON_DIR)


class PythonTest(ServerTest):
    def setUp(self):
        self.srv = self.new_server()
        self.c = shmkv.Client(self.srv.sock_path)
        self.addCleanup(self.c.close)

    def tcp(self, line, data=None, until=rb".*\r\n"):
        with self.srv.tcp() as s:
            s.sendall(harness.cmd(line, data))
            return harness.recv_until(s, re.compile(until, re.S))

    def test_get_set_bytes(self):
        self.assertIsNone(self.c.get("nothing"))
        self.c.set("k", b"v\x00\xff", ttl=100, flags=7)
        self.assertEqual(self.c.get("k"), b"v\x00\xff")
        self.assertIs(type(self.c.get(b"k")), bytes)
        # str values are stored as UTF-8; results are bytes all the same.
        self.c.set("s", "h\u00e9llo")
        self.assertEqual(self.c.get("s"), "h\u00e9llo".encode())
        # What it wrote, memcached's protocol shows, with flags and TTL.
        reply = self.tcp("mg k s f t").decode()
        m = re.match(r"HD s3 f7 t(\d+)", reply)
        self.assertTrue(m and 95 <= int(m.group(1)) <= 100, reply)
        # And what TCP wrote, the module reads from shared memory.
        self.tcp("set fromtcp 0 0 5", b"hello")
        self.assertEqual(self.c.get("fromtcp"), b"hello")
        # Values beyond the first buffer sizes come back whole.
        big = bytes(range(256)) * 4000
        self.c.set("big", big)
        self.assertEqual(self.c.get("big"), big)
        self.assertEqual(self.c.get_many(["big"]), {"big": big})

    def test_get_many_set_many(self):
        self.c.set_many({"a": b"1", "b": b"2", b"c": bytearray(b"3")})
        self.c.set_many([("d", b"4"), ("e", b"5")], ttl=50, flags=9)
        got = self.c.get_many(["a", "b", b"c", "d", "e", "missing"])
        self.assertEqual(got, {"a": b"1", "b": b"2", b"c": b"3",
                               "d": b"4", "e": b"5"})
        self.assertEqual(self.tcp("mg e f", until=rb"HD.*\r\n"), b"HD f9\r\n")
        # Many keys in one call, all stored.
        items = {"many:%d" % i: b"x" * (i % 200) for i in range(5000)}
        self.c.set_many(items)
        self.assertEqual(self.c.get_many(list(items)), items)
        self.assertIn(b"STAT curr_items 5005\r\n",
                      self.tcp("stats", until=rb".*END\r\n"))

    def test_set_many_failure_raises_after_storing_the_rest(self):
        too_big = b"x" * (2 * 1024 * 1024)
        with self.assertRaises(shmkv.Error) as e:
            self.c.set_many([("ok1", b"1"), ("big", too_big), ("ok2", b"2")])
        self.assertEqual(e.exception.status, shmkv.TOO_LARGE)
        self.assertIn("'big'", str(e.exception))
        self.assertEqual(self.c.get_many(["ok1", "big", "ok2"]),
                         {"ok1": b"1", "ok2": b"2"})

    def test_delete_incr_decr_touch(self):
        self.c.set("n", b"10")
        self.assertEqual(self.c.incr("n"), 11)
        self.assertEqual(self.c.incr("n", 5), 16)
        self.assertEqual(self.c.decr("n", 20), 0)   # stops at 0
        self.assertIsNone(self.c.incr("absent"))
        self.assertIsNone(self.c.decr("absent"))
        # As memcached's decr, the shorter number may keep the old length.
        self.assertEqual(self.c.get("n").rstrip(b" "), b"0")
        self.c.set("word", b"abc")
        with self.assertRaises(shmkv.Error) as e:
            self.c.incr("word")
        self.assertEqual(e.exception.status, shmkv.NON_NUMERIC)
        self.assertTrue(self.c.touch("n", 300))
        self.assertFalse(self.c.touch("absent", 300))
        m = re.match(rb"HD t(\d+)", self.tcp("mg n t"))
        self.assertTrue(m and 295 <= int(m.group(1)) <= 300)
        self.assertTrue(self.c.delete("n"))
        self.assertFalse(self.c.delete("n"))
        self.assertIsNone(self.c.get("n"))

    def test_scan(self):
        for i in range(100):
            self.c.set("user:%d" % i, b"v" * i, flags=i, ttl=0 if i % 2 else 600)
        self.c.set("other", b"o")
        found = {k.key: k for k in self.c.scan("user:")}
        self.assertEqual(set(found), {b"user:%d" % i for i in range(100)})
        k = found[b"user:42"]
        self.assertEqual((k.size, k.flags), (42, 42))
        self.assertTrue(590 <= k.ttl <= 600, k.ttl)
        self.assertEqual(found[b"user:41"].ttl, -1)
        self.assertIsInstance(k.cas, int)
        self.assertEqual(len(self.c.scan()), 101)
        self.assertEqual(self.c.scan(b"nobody"), [])

    def test_errors(self):
        with self.assertRaises(shmkv.Error) as e:
            shmkv.Client(os.path.join(self.srv.tmp, "no.sock"))
        self.assertEqual(e.exception.status, shmkv.NO_SERVER)
        self.assertIn("no.sock", str(e.exception))
        with self.assertRaises(shmkv.Error) as e:
            self.c.set("x" * 300, b"v")
        self.assertEqual(e.exception.status, shmkv.BAD_KEY)
        self.assertIn("300", str(e.exception))
        with self.assertRaises(shmkv.Error) as e:
            self.c.get("")
        self.assertEqual(e.exception.status, shmkv.BAD_KEY)
        self.assertEqual(shmkv.strerror(shmkv.BAD_KEY), str(e.exception))
        with self.assertRaises(TypeError):
            self.c.get(42)
        with self.assertRaises(TypeError):
            self.c.set("k", 42)
        with shmkv.Client(self.srv.sock_path) as other:
            other.set("ctx", b"1")
        with self.assertRaises(ValueError):
            other.get("ctx")
        self.assertEqual(self.c.get("ctx"), b"1")

    def test_server_stop_then_restart(self):
        self.c.set("k", b"v")
        self.assertStopsCleanly(self.srv)
        with self.assertRaises(shmkv.Error) as e:
            self.c.get("k")
        self.assertEqual(e.exception.status, shmkv.SERVER_GONE)
        again = harness.Server(port=self.srv.port, run_dir=self.srv.run_dir)
        self.addCleanup(again.cleanup)
        again.wait_ready()
        # The same Client reattaches by itself: an empty new cache.
        self.assertIsNone(self.c.get("k"))
        self.c.set("k", b"new")
        self.assertEqual(self.c.get("k"), b"new")
        self.assertStopsCleanly(again)

    def test_waiting_call_releases_the_gil(self):
        """A set blocked on a stopped server lets other threads run."""
        procs = [self.srv.pid] + self.srv.workers()
        started, done = threading.Event(), threading.Event()
        result = []

        def writer():
            started.set()
            try:
                self.c.set("during", b"stop")
                result.append("ok")
            except Exception as e:  # reported by the assertion below
                result.append(e)
            done.set()

        for p in procs:
            os.kill(p, signal.SIGSTOP)
        try:
            t = threading.Thread(target=writer)
            t.start()
            self.assertTrue(started.wait(10))
            # This thread keeps running Python while the writer waits.
            spins, deadline = 0, time.monotonic() + 0.5
            while time.monotonic() < deadline:
                spins += 1
            self.assertFalse(done.is_set(), "the set did not wait for the server")
            self.assertGreater(spins, 1000)
        finally:
            for p in procs:
                os.kill(p, signal.SIGCONT)
        self.assertTrue(done.wait(20))
        t.join()
        self.assertEqual(result, ["ok"])
        self.assertEqual(self.c.get("during"), b"stop")

    def test_threads_share_a_client(self):
        errors = []

        def work(n):
            try:
                for i in range(300):
                    key = "t%d:%d" % (n, i)
                    self.c.set(key, key.encode())
                    if self.c.get(key) != key.encode():
                        errors.append(key)
            except Exception as e:  # reported by the assertion below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(len(self.c.scan("t")), 1200)

    def test_readme_example(self):
        """README.md's Python example runs as written, on this server."""
        here = os.path.dirname(os.path.abspath(__file__))
        with open(os.path.join(here, "..", "..", "README.md")) as f:
            blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
        example = next(b for b in blocks if "import shmkv" in b)
        example = example.replace("/tmp/shmkv-11211/shmkv.sock", self.srv.sock_path)
        r = subprocess.run(["/usr/bin/python3", "-c", example], capture_output=True,
                           timeout=30, env=harness.python_module_env(PYTHONPATH=sys.path[0]))
        self.assertEqual(r.returncode, 0, r.stderr)
        # The scan printed nothing (no user: keys); the except branch did.
        self.assertRegex(r.stdout, rb"^True bad key: .*300\)?\n$")
        self.assertEqual(self.c.get("greeting"), b"hello")
        self.assertEqual(self.c.get_many(["a", "b"]), {"a": b"1", "b": b"2"})


if __name__ == "__main__":
    harness.main()
