"""test_not_ours.py - the server never destroys or takes what is not its own

Tried as a new user would: -s given a regular file by mistake, -s given the
socket of a server that is running, a stale socket left by a killed one;
a second -p 0 (Unix socket only) server on the same run directory, and the
lock file a killed -p 0 server left; and the run directory the server
created, which must not stay behind empty after a failed start or a clean
stop, while one the user made stays.

Usage: python3 test_not_ours.py PATH-TO-shmkv-server
"""
import os
import shutil
import signal
import socket
import tempfile
import time

import harness
from harness import ServerTest
from test_availability import wait_gone


class NotOursTest(ServerTest):
    def scratch_dir(self):
        d = tempfile.mkdtemp(prefix="shmkv-e2e-")
        self.addCleanup(shutil.rmtree, d, True)
        return d

    def wait_unix(self, srv, timeout=10.0):
        """Until srv answers `version` on its Unix socket."""
        deadline = time.monotonic() + timeout
        while True:
            self.assertIsNone(srv.proc.poll(), srv.log_text())
            try:
                with srv.unix(timeout=1) as s:
                    s.sendall(b"version\r\n")
                    if harness.recv_exact(s, 9, timeout=1).startswith(b"VERSION "):
                        return
            except OSError:
                pass
            self.assertLess(time.monotonic(), deadline, srv.log_text())
            time.sleep(0.02)

    def refused(self, srv):
        srv.proc.wait(10)
        self.assertEqual(srv.proc.returncode, 1, srv.log_text())
        return srv.log_text()

    def test_socket_path_that_is_a_file_is_kept(self):
        tmp = self.scratch_dir()
        path = os.path.join(tmp, "notes.txt")
        with open(path, "w") as f:
            f.write("my notes\n")
        srv = self.new_server("-s", path, ready=False)
        log = self.refused(srv)
        self.assertIn("%s exists and is not a socket" % path, log)
        with open(path) as f:
            self.assertEqual(f.read(), "my notes\n")

    def test_socket_of_a_live_server_is_not_taken(self):
        first = self.new_server()
        second = self.new_server("-s", first.sock_path, ready=False)
        log = self.refused(second)
        self.assertIn("a server is answering on %s" % first.sock_path, log)
        self.wait_unix(first)
        self.assertStopsCleanly(first)

    def test_stale_socket_is_replaced(self):
        tmp = self.scratch_dir()
        path = os.path.join(tmp, "stale.sock")
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(path)  # closed without unlink: what a killed server leaves
        srv = self.new_server("-s", path, ready=False)
        srv.sock_path = path
        self.wait_unix(srv)
        self.assertStopsCleanly(srv)

    def test_socket_replaced_meanwhile_is_not_removed(self):
        srv = self.new_server()
        moved = srv.sock_path + ".moved"
        os.rename(srv.sock_path, moved)
        with open(srv.sock_path, "w") as f:
            f.write("someone else's\n")
        self.assertEqual(srv.stop(), 0, srv.log_text())
        with open(srv.sock_path) as f:
            self.assertEqual(f.read(), "someone else's\n")

    def test_second_unix_only_server_refused(self):
        first = self.new_server(port=0, ready=False)
        self.wait_unix(first)
        second = self.new_server(port=0, run_dir=first.run_dir, ready=False)
        log = self.refused(second)
        self.assertIn("another shmkv-server (PID %d) is running without TCP"
                      % first.pid, log)
        self.assertNotIn("not a shmkv lock file", log)
        self.wait_unix(first)
        self.assertStopsCleanly(first)

    def test_killed_unix_only_server_cleaned_up(self):
        first = self.new_server(port=0, ready=False)
        self.wait_unix(first)
        workers = first.workers()
        os.killpg(first.pid, signal.SIGKILL)
        first.proc.wait(5)
        self.assertTrue(wait_gone(workers, 5), "workers live on")
        self.assertTrue(os.path.exists(first.lock_path))
        second = self.new_server(port=0, run_dir=first.run_dir, ready=False)
        self.wait_unix(second)
        self.assertIn("removed what a dead server (pid %d) left" % first.pid,
                      second.log_text())
        self.assertStopsCleanly(second)

    def test_run_directory_we_made_goes_with_us(self):
        srv = self.new_server()
        self.assertTrue(os.path.isdir(srv.run_dir))
        self.assertStopsCleanly(srv)
        self.assertFalse(os.path.exists(srv.run_dir), "empty run directory left")

        with socket.socket() as other:
            other.bind(("127.0.0.1", 0))
            other.listen(1)
            failed = self.new_server(port=other.getsockname()[1], ready=False)
            self.refused(failed)
        self.assertFalse(os.path.exists(failed.run_dir),
                         "a failed start left its run directory")

    def test_run_directory_of_the_user_stays(self):
        srv = self.new_server(ready=False, start=False)
        os.mkdir(srv.run_dir, 0o700)
        srv.start()
        srv.wait_ready()
        self.assertStopsCleanly(srv)
        self.assertTrue(os.path.isdir(srv.run_dir))


if __name__ == "__main__":
    harness.main()
