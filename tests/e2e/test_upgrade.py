"""test_upgrade.py - live upgrade under load: SIGUSR2 and --upgrade

While clients set and read back checksummed values over TCP and over the
Unix socket (a connection per set+get, so that connection attempts are
tested too) and a client program reads keys straight from shared memory
(the chaos checker, through libshmkv), the running server is replaced by
the binary at its program path.  What a user checks: no connection attempt
refused, no request failed, no key lost, a new supervisor PID, every old
process gone, the direct reader never failed a lookup.  A new binary that
cannot adopt the segment (started with another -m) is refused and the old
server goes on serving, as it does for a new binary with another -t; one
whose -l names another address (or -p another port) is refused too, naming
the socket that differs, and the old server serves on every address it
had while nobody listens on the new one; the same -l addresses in another
order, or spelt another way (127.1, 0::1), upgrade with every key.  A
SHMKV_UPGRADE variable that names no hand-over stops a start before it
takes anything.

The server runs from a copy of shmkv-server in the test's directory, so
that the test can put another program at that path, as an operator
installing a new version does.

Usage: python3 test_upgrade.py PATH-TO-shmkv-server (SHMKV_CHAOS_CHECKER
names the direct reader)
"""
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import harness
from harness import ServerTest, recv_until
from test_chaos import make_value, value_ok

CHECKER = os.environ.get("SHMKV_CHAOS_CHECKER", "")
NKEYS = 2000          # "chaos:<n>", read by the direct reader
REPLY = re.compile(rb"STORED\r\nVALUE \S+ \d+ \d+\r\n.*\r\nEND\r\n", re.S)


def lock_pid(srv):
    try:
        with open(srv.lock_path) as f:
            return int(f.readline())
    except (OSError, ValueError):
        return None


def alive(pid):
    """Running (not exited, not a zombie)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError("not within %.0f s: %s" % (timeout, what))


class Client(threading.Thread):
    """Sets its own keys and reads each back on the same connection, a new
    connection each time; records every failure."""

    def __init__(self, connect, name, stop):
        super().__init__(daemon=True)
        self.connect, self.name, self.stop = connect, name, stop
        self.rnd = random.Random(name)
        self.last = {}        # key -> last value acknowledged
        self.ops = 0
        self.failures = []

    def one(self, key, value):
        try:
            s = self.connect()
        except OSError as e:
            self.failures.append("connect: %r" % e)
            return
        with s:
            try:
                s.sendall(b"set %s 0 0 %d\r\n%s\r\nget %s\r\n"
                          % (key.encode(), len(value), value, key.encode()))
                reply = recv_until(s, REPLY, timeout=10)
            except OSError as e:
                self.failures.append("%s: %r" % (key, e))
                return
        if not REPLY.fullmatch(reply) or value not in reply:
            self.failures.append("%s: reply %r" % (key, reply[:200]))
            return
        self.last[key] = value
        self.ops += 1

    def run(self):
        version = 0
        while not self.stop.is_set():
            key = "%s:%d" % (self.name, self.rnd.randrange(200))
            version += 1
            self.one(key, make_value(key, version, self.rnd))


class UpgradeTest(ServerTest):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="shmkv-e2e-up-", dir="/dev/shm")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.binary = os.path.join(self.dir, "shmkv-server")
        shutil.copy(harness.SERVER, self.binary)

    def server(self, *extra):
        srv = harness.Server(*extra, start=False)
        srv.args[0] = self.binary
        self.addCleanup(srv.cleanup)
        srv.start()
        return srv.wait_ready(nworkers=2)

    def stop_successor(self, srv, pid):
        """SIGTERM the new supervisor (not our child) and wait for it."""
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not alive(pid), 20, "pid %d stopped" % pid)
        log = srv.log_text()
        self.assertIn("[%d]: stopped" % pid, log)
        for bad in ["Sanitizer", "runtime error:", "restarting it"]:
            self.assertNotIn(bad, log)
        self.assertFalse(os.path.exists(srv.sock_path), "socket left behind")
        self.assertFalse(os.path.exists(srv.lock_path), "lock file left behind")
        self.assertFalse(os.path.exists(srv.run_dir), "run directory left behind")

    def preload(self, srv):
        rnd = random.Random(1)
        values = {}
        with srv.tcp(10) as s:
            for i in range(NKEYS):
                k = "chaos:%d" % i
                values[k] = make_value(k, 0, rnd)
                s.sendall(b"set %s 0 0 %d\r\n%s\r\n"
                          % (k.encode(), len(values[k]), values[k]))
                self.assertEqual(recv_until(s, re.compile(rb"STORED\r\n")),
                                 b"STORED\r\n")
        return values

    def check_keys(self, srv, expect, host="127.0.0.1"):
        """Every key holds the value last acknowledged, read on host."""
        with socket.create_connection((host, srv.port), 10) as s:
            s.settimeout(10)
            for k, v in expect.items():
                s.sendall(b"get %s\r\n" % k.encode())
                reply = recv_until(s, re.compile(rb"(VALUE .*\r\n)?END\r\n", re.S))
                self.assertIn(v, reply, "key %s lost or changed" % k)
                self.assertTrue(value_ok(k, v))

    def upgrade_under_load(self, srv, trigger):
        old_pid, old_workers = srv.pid, srv.workers()
        values = self.preload(srv)
        stop = threading.Event()
        clients = [Client(lambda: srv.tcp(10), "tcp%d" % i, stop) for i in range(2)]
        clients.append(Client(lambda: srv.unix(10), "unix", stop))
        reader = None
        if CHECKER:
            reader = subprocess.Popen([CHECKER, srv.sock_path, str(NKEYS), "20",
                                       "5000"], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE)
        for c in clients:
            c.start()
        wait_until(lambda: all(c.ops > 20 for c in clients), 20, "load running")
        trigger(old_pid)
        new_pid = None

        def replaced():
            nonlocal new_pid
            new_pid = lock_pid(srv)
            return new_pid not in (None, old_pid) and srv.proc.poll() is not None
        wait_until(replaced, 40, "the new server took over:\n" + srv.log_text())
        # The direct reader read on through the whole upgrade.
        self.assertTrue(reader is None or reader.poll() is None,
                        "the direct reader ended before the upgrade did")
        self.addCleanup(lambda: alive(new_pid) and os.kill(new_pid, signal.SIGKILL))
        done = {c.name: c.ops for c in clients}
        wait_until(lambda: all(c.ops > done[c.name] + 20 for c in clients), 20,
                   "load served by the new server")
        stop.set()
        for c in clients:
            c.join(20)
        for c in clients:
            self.assertEqual(c.failures, [], c.name)
        if reader is not None:
            out, err = reader.communicate(timeout=60)
            self.assertEqual(reader.returncode, 0, err)
            m = re.search(rb"lookups=(\d+) hits=(\d+) misses=(\d+) errors=(\d+)", out)
            self.assertTrue(m, out)
            self.assertGreater(int(m.group(1)), 0)
            self.assertEqual(int(m.group(3)), 0, "direct reader missed keys")
            self.assertEqual(int(m.group(4)), 0, "direct reader got errors")
        self.assertEqual(srv.proc.returncode, 0, srv.log_text())
        self.assertNotEqual(new_pid, old_pid)
        self.assertTrue(alive(new_pid))
        for pid in old_workers:
            self.assertFalse(alive(pid), "old worker %d still running" % pid)
        self.assertEqual(len(harness.children(new_pid)), 2)
        for c in clients:
            values.update(c.last)
        self.check_keys(srv, values)
        self.values = values
        return new_pid

    def test_sigusr2_under_load_keeps_every_key_and_connection(self):
        srv = self.server()
        new_pid = self.upgrade_under_load(srv, lambda pid: os.kill(pid, signal.SIGUSR2))
        self.assertIn("upgrade: our 2 worker(s) serve", srv.log_text())
        self.stop_successor(srv, new_pid)

    def test_upgrade_command_with_a_memory_file_twice(self):
        path = os.path.join(self.dir, "cache")
        pid_file = os.path.join(self.dir, "pid")
        srv = self.server("--memory-file", path, "-P", pid_file)

        def pid_in_file():
            with open(pid_file) as f:
                return int(f.read())

        def command(pid):
            p = subprocess.run(srv.args + ["--upgrade"], capture_output=True,
                               timeout=90)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn(b"upgraded: pid", p.stdout)
        new_pid = self.upgrade_under_load(srv, command)
        self.assertEqual(pid_in_file(), new_pid)  # memcached's -P follows
        # The successor can be upgraded in turn, and a third server never
        # gets in: the memory file and the port stay taken.
        i = srv.args.index("-P")
        third = subprocess.run(srv.args[:i] + srv.args[i + 2:],
                               capture_output=True, timeout=30)
        self.assertEqual(third.returncode, 1, third.stderr)
        self.assertIn(b"is running", third.stderr)
        p = subprocess.run(srv.args + ["--upgrade"], capture_output=True, timeout=90)
        self.assertEqual(p.returncode, 0, p.stderr)
        newest = lock_pid(srv)
        self.assertNotIn(newest, (None, new_pid))
        wait_until(lambda: not alive(new_pid), 20, "second old server gone")
        self.assertEqual(pid_in_file(), newest)
        self.check_keys(srv, self.values)
        self.stop_successor(srv, newest)
        self.assertFalse(os.path.exists(pid_file), "pid file left behind")
        # Stopped cleanly: the next start adopts the file with its items.
        again = self.new_server("--memory-file", path, port=srv.port,
                                run_dir=srv.run_dir)
        self.assertIn("stopped cleanly", again.log_text())
        self.check_keys(again, self.values)
        self.assertStopsCleanly(again)

    def test_a_refused_upgrade_leaves_the_old_server_serving(self):
        srv = self.server()
        values = self.preload(srv)
        workers = srv.workers()
        self.wrap_binary("-m 32")
        self.upgrade_refused(srv, srv.pid, "-m 64")
        self.check_keys(srv, values)
        with srv.unix() as s:
            s.sendall(b"set after 0 0 1\r\nx\r\n")
            self.assertEqual(recv_until(s, re.compile(rb"STORED\r\n")), b"STORED\r\n")
        # SIGUSR2 with another -t: the sockets are one per worker, refused.
        self.wrap_binary("-t 3")
        os.kill(srv.pid, signal.SIGUSR2)
        wait_until(lambda: srv.log_text().count("upgrade refused") >= 2, 30,
                   "second refusal")
        self.assertIn("-t and -p cannot change in an upgrade", srv.log_text())
        # The refusal is logged when it arrives; the refused binary, a child
        # of the supervisor too, may take a moment longer to exit and be reaped.
        wait_until(lambda: sorted(srv.workers()) == sorted(workers), 30,
                   "the refused binary gone, the same workers left")
        self.assertEqual(sorted(srv.workers()), sorted(workers))
        self.check_keys(srv, values)
        self.assertStopsCleanly(srv)

    def server_listening_on(self, listen):
        """A server whose -l is in a --conf file, as Debian's
        /etc/memcached.conf gives it: an operator edits the file, then
        upgrades (listen_next).  Returns the server."""
        self.conf = os.path.join(self.dir, "memcached.conf")
        self.listen_next(listen)
        return self.server("--conf", self.conf)

    def listen_next(self, listen):
        with open(self.conf, "w") as f:
            f.write("-l %s\n" % listen)

    def wrap_binary(self, flags):
        """The binary an upgrade runs becomes a script that runs the real
        one with flags added (the command line's flag wins over --conf's)."""
        real = self.binary + ".real"
        if not os.path.exists(real):
            os.rename(self.binary, real)
        with open(self.binary, "w") as f:
            f.write('#!/bin/sh\nexec "%s" "$@" %s\n' % (real, flags))
        os.chmod(self.binary, 0o755)

    def upgrade_refused(self, srv, pid, why):
        """--upgrade of supervisor pid exits 1 saying why, and pid serves on
        with the same workers."""
        workers = harness.children(pid)
        p = subprocess.run(srv.args + ["--upgrade"], capture_output=True,
                           timeout=90)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertIn(b"refused", p.stderr)
        self.assertIn(why.encode(), p.stderr)
        self.assertEqual(lock_pid(srv), pid)
        self.assertTrue(alive(pid))
        wait_until(lambda: sorted(harness.children(pid)) == sorted(workers),
                   30, "the refused binary gone, the same workers left")
        self.assertRegex(srv.log_text(), "upgrade refused; going on serving: "
                         ".*" + re.escape(why))

    def upgrade_accepted(self, srv, pid):
        """--upgrade of supervisor pid exits 0; the new one's PID."""
        p = subprocess.run(srv.args + ["--upgrade"], capture_output=True,
                           timeout=90)
        self.assertEqual(p.returncode, 0, p.stderr)
        new_pid = lock_pid(srv)
        self.assertNotIn(new_pid, (None, pid))
        self.addCleanup(lambda: alive(new_pid) and os.kill(new_pid, signal.SIGKILL))
        self.assertIn(b"upgraded: pid %d" % new_pid, p.stdout)
        wait_until(lambda: not alive(pid), 30, "old server gone")
        return new_pid

    def assertServesOn(self, srv, listen, values):
        """Each address of listen serves every key, and stats settings
        names listen."""
        for host in listen.split(","):
            self.check_keys(srv, values, host)
            with socket.create_connection((host, srv.port), 10) as s:
                s.sendall(b"stats settings\r\n")
                reply = recv_until(s, re.compile(rb".*END\r\n", re.S), 10)
            self.assertIn(b"STAT inter %s\r\n" % listen.encode(), reply)

    def assertNobodyListens(self, host, port):
        with self.assertRaises(ConnectionRefusedError):
            socket.create_connection((host, port), 10).close()

    def refusal(self, socket_no, nsockets, bound, asked):
        return ("TCP socket %d of %d is bound to %s, which this start does "
                "not ask for: it asks for %s" % (socket_no, nsockets, bound,
                                                  asked))

    def test_an_upgrade_to_another_listen_address_is_refused(self):
        srv = self.server_listening_on("127.0.0.1,127.0.0.2")
        values = self.preload(srv)
        at = lambda host: "%s:%d" % (host, srv.port)
        self.listen_next("127.0.0.1,127.0.0.3")
        self.upgrade_refused(srv, srv.pid, self.refusal(
            2, 4, at("127.0.0.2"), at("127.0.0.3")))
        self.assertServesOn(srv, "127.0.0.1,127.0.0.2", values)
        self.assertNobodyListens("127.0.0.3", srv.port)
        self.listen_next("127.0.0.1,::1")
        self.upgrade_refused(srv, srv.pid, self.refusal(
            2, 4, at("127.0.0.2"), at("[::1]")))
        self.assertNobodyListens("::1", srv.port)
        # The same addresses on another port: refused alike.  The new
        # binary's own flag, as the command line's -p wins over --conf's.
        self.listen_next("127.0.0.1,127.0.0.2")
        self.wrap_binary("-p %d" % (srv.port + 1))
        self.upgrade_refused(srv, srv.pid, self.refusal(
            1, 4, at("127.0.0.1"), "127.0.0.1:%d" % (srv.port + 1)))
        self.assertServesOn(srv, "127.0.0.1,127.0.0.2", values)
        self.assertStopsCleanly(srv)

    def test_an_upgrade_may_reorder_the_listen_addresses(self):
        # The same sockets: accepted, as nginx matches the sockets it
        # inherits to its listen directives by address, not by place.
        srv = self.server_listening_on("127.0.0.1,127.0.0.2")
        values = self.preload(srv)
        self.listen_next("127.0.0.2,127.0.0.1")
        new_pid = self.upgrade_accepted(srv, srv.pid)
        self.assertServesOn(srv, "127.0.0.2,127.0.0.1", values)
        # The new server holds them in its -l order: asked to give up
        # 127.0.0.1, the socket it names is each worker's second.
        self.listen_next("127.0.0.3,127.0.0.2")
        self.upgrade_refused(srv, new_pid, self.refusal(
            2, 4, "127.0.0.1:%d" % srv.port, "127.0.0.3:%d" % srv.port))
        self.assertServesOn(srv, "127.0.0.2,127.0.0.1", values)
        self.assertNobodyListens("127.0.0.3", srv.port)
        self.stop_successor(srv, new_pid)

    def test_an_unchanged_listen_list_upgrades_with_every_key(self):
        srv = self.server_listening_on("127.0.0.1,127.0.0.2,::1")
        values = self.preload(srv)
        pid = self.upgrade_accepted(srv, srv.pid)
        self.assertServesOn(srv, "127.0.0.1,127.0.0.2,::1", values)
        self.assertEqual(len(harness.children(pid)), 2)
        # Addresses, not their spelling: 127.1 is 127.0.0.1, 0::1 is ::1.
        self.listen_next("127.1,127.0.0.2,0::1")
        pid = self.upgrade_accepted(srv, pid)
        self.assertServesOn(srv, "127.1,127.0.0.2,0::1", values)
        # The IPv6 socket is the one a change names.
        self.listen_next("127.0.0.1,127.0.0.2,127.0.0.3")
        self.upgrade_refused(srv, pid, self.refusal(
            3, 6, "[::1]:%d" % srv.port, "127.0.0.3:%d" % srv.port))
        self.assertServesOn(srv, "127.1,127.0.0.2,0::1", values)
        self.stop_successor(srv, pid)

    def test_a_stray_upgrade_variable_is_refused(self):
        env = dict(os.environ, SHMKV_UPGRADE="1 2 3")
        srv = harness.Server(start=False)
        self.addCleanup(srv.cleanup)
        p = subprocess.run(srv.args, env=env, capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn(b"SHMKV_UPGRADE is set but does not name", p.stderr)
        self.assertFalse(os.path.exists(srv.run_dir), "it created a run directory")


if __name__ == "__main__":
    harness.main()
