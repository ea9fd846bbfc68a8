"""test_server.py - the server process: flags, start-up, shutdown, restarts, limits

What an operator sees of server/{main,config,supervisor,worker,connection}.c:
bad flags, the start-up line, a clean stop on SIGTERM, a second server
refused, a killed worker replaced, the connection limit, and a client that
never reads its replies.  Commands used here are version and get/set, the
least of the protocol.
"""
import os
import signal
import socket
import subprocess
import threading
import time

import harness
from harness import ServerTest, cmd, is_eof, recv_exact


class FlagsTest(ServerTest):
    def run_server(self, *args):
        return subprocess.run([harness.SERVER] + list(args), capture_output=True,
                              timeout=10)

    def test_bad_flags_exit_2_with_one_line(self):
        cases = [
            (["--memory", "abc"], "--memory: 'abc' is not a number of MiB"),
            (["-m", "0"], "--memory"),
            (["-p", "70000"], "--port"),
            (["-t", "0"], "--workers"),
            (["-c", "x"], "--max-connections"),
            (["-I", "12q"], "--max-item-size"),
            (["-I", "100"], "--max-item-size"),
            (["--partitions", "6"], "--partitions"),
            (["--huge-pages", "sometimes"], "--huge-pages"),
            (["--huge-page-size", "3M"], "--huge-page-size"),
            (["--no-such-flag"], "--no-such-flag"),
            (["-Z"], "-Z"),
            (["-m"], "-m: needs a value"),
            (["stray"], "stray"),
        ]
        for args, what in cases:
            with self.subTest(args=args):
                r = self.run_server(*args)
                self.assertEqual(r.returncode, 2, r.stderr)
                err = r.stderr.decode()
                self.assertEqual(err.count("\n"), 1, err)
                self.assertTrue(err.startswith("shmkv-server: "), err)
                self.assertIn(what, err)
                self.assertEqual(r.stdout, b"")

    def test_help_documents_every_flag(self):
        r = self.run_server("--help")
        self.assertEqual(r.returncode, 0)
        text = r.stdout.decode()
        for flag in ["-p, --port", "-l, --listen", "-s, --unix-socket", "--run-dir",
                     "-m, --memory", "-t, --workers", "-c, --max-connections",
                     "-I, --max-item-size", "--partitions", "--huge-pages",
                     "--huge-page-size", "--prefault", "-v, --verbose",
                     "-h, --help", "-V, --version"]:
            self.assertIn(flag, text)

    def test_version(self):
        r = self.run_server("-V")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout.decode(), r"^shmkv-server \d+\.\d+\.\d+\n$")


class LifecycleTest(ServerTest):
    def test_start_line_and_clean_stop(self):
        srv = self.new_server()
        # The workers come up after the start line; wait for both.
        deadline = time.monotonic() + 5
        while len(srv.workers()) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(len(srv.workers()), 2)
        log = srv.log_text()
        start = [l for l in log.splitlines() if " started: " in l]
        self.assertEqual(len(start), 1, log)
        for part in ["memory 64 MiB", "segment ready in ", "pages of 4 KiB", "2 workers", "8 partitions",
                     "127.0.0.1:%d" % srv.port, srv.sock_path]:
            self.assertIn(part, start[0])
        self.assertTrue(os.path.exists(srv.sock_path))
        self.assertTrue(os.path.exists(srv.lock_path))
        self.assertEqual(os.stat(srv.run_dir).st_mode & 0o777, 0o700)
        self.assertStopsCleanly(srv)

    def test_sigint_stops_too(self):
        srv = self.new_server()
        srv.proc.send_signal(signal.SIGINT)
        srv.proc.wait(15)
        self.assertEqual(srv.proc.returncode, 0, srv.log_text())
        self.assertFalse(os.path.exists(srv.sock_path))
        self.assertFalse(os.path.exists(srv.lock_path))

    def test_port_zero_serves_unix_only(self):
        srv = self.new_server(port=0, ready=False)
        deadline = time.monotonic() + 5
        while True:
            try:
                s = srv.unix()
                break
            except OSError:
                self.assertLess(time.monotonic(), deadline, srv.log_text())
                time.sleep(0.02)
        with s:
            s.sendall(b"version\r\n")
            self.assertTrue(recv_exact(s, 9).startswith(b"VERSION "))
        self.assertStopsCleanly(srv)

    def test_second_server_on_same_port_refused(self):
        first = self.new_server()
        # Another run directory: the per-port shim must still refuse it.
        second = self.new_server(port=first.port, ready=False)
        second.proc.wait(10)
        self.assertNotEqual(second.proc.returncode, 0)
        self.assertIn(str(first.pid), second.log_text())
        # The same run directory: the lock file refuses it.
        third = self.new_server(port=first.port, run_dir=first.run_dir, ready=False)
        third.proc.wait(10)
        self.assertNotEqual(third.proc.returncode, 0)
        self.assertIn(str(first.pid), third.log_text())
        # The first one is untouched.
        s = first.tcp()
        s.sendall(b"version\r\n")
        self.assertTrue(recv_exact(s, 9).startswith(b"VERSION "))
        s.close()
        self.assertStopsCleanly(first)

    def test_port_taken_by_another_program(self):
        with socket.socket() as other:
            other.bind(("127.0.0.1", 0))
            other.listen(1)
            srv = self.new_server(port=other.getsockname()[1], ready=False)
            srv.proc.wait(10)
        self.assertEqual(srv.proc.returncode, 1)
        self.assertIn("Address already in use", srv.log_text())
        self.assertFalse(os.path.exists(srv.lock_path))

    def test_killed_worker_is_replaced(self):
        srv = self.new_server()
        srv.wait_ready(nworkers=2)
        time.sleep(1.1)  # past the quick-death back-off
        victim = srv.workers()[0]
        os.kill(victim, signal.SIGKILL)
        t0 = time.monotonic()
        replaced = False
        while time.monotonic() - t0 < 1.0:
            w = srv.workers()
            if victim not in w and len(w) == 2:
                replaced = True
                break
            time.sleep(0.01)
        self.assertTrue(replaced, srv.log_text())
        # Every connection is answered again: try enough to reach both workers.
        for _ in range(20):
            s = srv.tcp(timeout=1)
            s.sendall(b"version\r\n")
            self.assertTrue(recv_exact(s, 9, timeout=1).startswith(b"VERSION "))
            s.close()
        self.assertLess(time.monotonic() - t0, 2.0)
        self.assertIn("was killed by signal 9", srv.log_text())
        self.assertStopsCleanly(srv, worker_deaths=1)

    def test_workers_follow_a_killed_supervisor(self):
        srv = self.new_server()
        srv.wait_ready(nworkers=2)
        workers = srv.workers()
        os.kill(srv.pid, signal.SIGKILL)
        srv.proc.wait(5)
        deadline = time.monotonic() + 3
        while any(os.path.exists("/proc/%d" % w) and
                  harness.status_field(w, "VmRSS") is not None for w in workers):
            self.assertLess(time.monotonic(), deadline, "orphaned workers live on")
            time.sleep(0.02)

    def test_graceful_shutdown_with_clients_connected(self):
        srv = self.new_server()
        idle = [srv.tcp() for _ in range(3)] + [srv.unix() for _ in range(2)]
        busy = srv.tcp()
        busy.sendall(b"version\r\n")
        self.assertTrue(recv_exact(busy, 9).startswith(b"VERSION "))
        busy.sendall(b"set half 0 0 10\r\nabc")  # a command cut in the middle
        time.sleep(0.1)
        t0 = time.monotonic()
        self.assertStopsCleanly(srv)
        self.assertLess(time.monotonic() - t0, 8)
        for s in idle + [busy]:
            self.assertTrue(is_eof(s, 2))
            s.close()


class LimitsTest(ServerTest):
    def admitted(self, connect, deadline):
        """A connection the server took (it answers version).  A place is
        freed only once a worker has seen the close of the connection that
        held it -- start-up's readiness probes included, which another
        worker may not have read yet -- so a refusal is retried."""
        while True:
            s = connect()
            s.sendall(b"version\r\n")
            got = recv_exact(s, 9)
            if got.startswith(b"VERSION "):
                return s
            s.close()
            self.assertEqual(got, b"ERROR Too")
            self.assertLess(time.monotonic(), deadline, got)
            time.sleep(0.05)

    def test_max_connections(self):
        srv = self.new_server("-c", "4")
        deadline = time.monotonic() + 10
        conns = [self.admitted(srv.tcp if i % 2 else srv.unix, deadline)
                 for i in range(4)]
        extra = srv.tcp()
        msg = b"ERROR Too many open connections\r\n"
        self.assertEqual(recv_exact(extra, len(msg)), msg)
        self.assertTrue(is_eof(extra))
        extra.close()
        conns.pop().close()
        conns.append(self.admitted(srv.tcp, time.monotonic() + 10))
        for s in conns:
            s.close()
        self.assertStopsCleanly(srv)

    def test_client_that_never_reads(self):
        srv = self.new_server()
        srv.wait_ready(nworkers=2)
        value = b"v" * (256 * 1024)
        s = srv.tcp()
        s.sendall(cmd("set fat 0 0 %d" % len(value), value))
        self.assertEqual(recv_exact(s, 8), b"STORED\r\n")
        s.close()
        base = {w: harness.status_field(w, "RssAnon") for w in srv.workers()}

        hog = srv.tcp()
        hog.setblocking(False)
        batch = b"get fat\r\n" * 4096
        sent = 0
        stop = time.monotonic() + 2.0
        while time.monotonic() < stop:
            try:
                sent += hog.send(batch)
            except BlockingIOError:
                time.sleep(0.01)
        # The hog asked for sent/9 * 256 KiB; gigabytes if nothing pushed back.
        self.assertGreater(sent, 9 * 100)
        # Others are still served, by either worker.
        for _ in range(10):
            c = srv.tcp()
            c.sendall(b"get fat\r\n")
            head = b"VALUE fat 0 %d\r\n" % len(value)
            self.assertEqual(recv_exact(c, len(head)), head)
            c.close()
        for w in srv.workers():
            rss = harness.status_field(w, "RssAnon")
            grown = rss - base.get(w, rss)
            self.assertLess(grown, 48 * 1024,
                            "worker %d grew %d kB of private memory" % (w, grown))
        self.assertEqual(srv.proc.poll(), None)
        # Shutdown is not held up for ever by the hog.
        self.assertStopsCleanly(srv)
        hog.close()


if __name__ == "__main__":
    harness.main()
