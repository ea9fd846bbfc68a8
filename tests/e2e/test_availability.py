"""test_availability.py - the server keeps serving through process deaths

test_sigkill_storm: for STORM_SECONDS a random worker is SIGKILLed every
50-200 ms while CLIENTS threads do checksummed sets and gets over TCP.  What
a user would check:
  - no connection attempt fails (the listening sockets are the
    supervisor's, so connections wait for the next worker);
  - no value read is corrupt;
  - every request on a connection whose worker survived succeeds: a
    connection may only fail if the worker that accepted it (found through
    /proc, from the connection's ports) was one the storm killed;
  - within 1 s after the storm every worker answers requests.
The figures are printed ("storm: ...") for the report.
test_connections_wait_for_the_next_worker is the deterministic part: a
connection made while its slot has no worker waits for the next one.

test_out_of_file_descriptors: a worker under `ulimit -n 64` offered more
connections than it has descriptors stops accepting (stats
listen_disabled_num), burns no CPU meanwhile, and accepts the waiting
connections once descriptors are free again.

test_next_server_after_supervisor_killed: a SIGKILLed supervisor's workers
exit by themselves, nothing stays bound to the port, and the next server on
the same port and run directory starts without anyone cleaning up;
test_next_server_waits_for_exiting_workers: even when it is started while a
worker of the dead one is still finishing its replies.

Usage: python3 test_availability.py PATH-TO-shmkv-server
"""
import os
import random
import resource
import re
import select
import signal
import socket
import sys
import threading
import time

import harness
from harness import ServerTest
from test_chaos import Writer, count_corrupt, make_value, value_ok

STORM_SECONDS = float(os.environ.get("SHMKV_STORM_SECONDS", "15"))
CLIENTS = 8
NKEYS = 500
REQUEST_TIMEOUT = 5.0
VALUE_LINE = re.compile(rb"VALUE (\S+) (\d+) (\d+)")


def tcp_socket_inode(server_port, client_port):
    """The inode of the server's end of the TCP connection from
    client_port, or None."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            if (state == "01" and int(local.rsplit(":", 1)[1], 16) == server_port
                    and int(remote.rsplit(":", 1)[1], 16) == client_port):
                return fields[9]
    return None


def connection_owner(sock, server_port, pids):
    """Which of pids holds the server's end of sock, or None."""
    inode = tcp_socket_inode(server_port, sock.getsockname()[1])
    if inode is None:
        return None
    target = "socket:[%s]" % inode
    for pid in pids:
        try:
            for fd in os.listdir("/proc/%d/fd" % pid):
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == target:
                    return pid
        except OSError:
            continue
    return None


def wait_gone(pids, timeout):
    """Wait until none of pids runs (a zombie counts as gone); False if some
    still run after timeout seconds."""
    deadline = time.monotonic() + timeout
    while any(harness.status_field(p, "VmRSS") is not None for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def answered(socks, wait):
    """Those of socks that got their `version` reply within wait seconds
    (all watched at once)."""
    got = {sk: b"" for sk in socks}
    done = []
    deadline = time.monotonic() + wait
    while len(done) < len(socks):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        readable, _, _ = select.select([sk for sk in socks if sk not in done],
                                       [], [], left)
        for sk in readable:
            try:
                d = sk.recv(64)
            except OSError:
                d = b""
            got[sk] += d
            if got[sk].startswith(b"VERSION ") or not d:
                done.append(sk)
    return [sk for sk in done if got[sk].startswith(b"VERSION ")]


class Client(Writer):
    """One TCP connection doing a set and a get at a time; when the
    connection breaks, it must have been its worker's death.  (Writer gives
    it the line reading.)"""

    def __init__(self, srv, seed, stop, killed):
        super().__init__(srv.port, seed, stop)
        self.srv, self.killed = srv, killed
        self.requests = self.lost = self.connects = 0
        self.failures, self.owner = [], None

    def connect(self):
        self.connects += 1
        try:
            self.sock = socket.create_connection(("127.0.0.1", self.srv.port),
                                                 REQUEST_TIMEOUT)
        except OSError as e:
            self.failures.append("connection attempt failed: %s" % e)
            return False
        self.sock.settimeout(REQUEST_TIMEOUT)
        self.buf, self.owner = b"", None
        return True

    def request(self):
        key = "storm:%d" % self.rnd.randrange(NKEYS)
        value = make_value(key, self.rnd.randrange(1 << 30), self.rnd)
        self.sock.sendall(b"set %s 0 0 %d\r\n%s\r\n"
                          % (key.encode(), len(value), value))
        line = self.read_line()
        if line != b"STORED":
            self.failures.append("set answered %r" % line)
        other = "storm:%d" % self.rnd.randrange(NKEYS)
        self.sock.sendall(b"get %s\r\n" % other.encode())
        while True:
            line = self.read_line()
            if line == b"END":
                break
            m = VALUE_LINE.fullmatch(line)
            if not m:
                self.failures.append("get answered %r" % line)
                return
            data = self.read_n(int(m.group(3)) + 2)[:-2]
            if not value_ok(m.group(1).decode(), data):
                self.corrupt.append((m.group(1), data[:100]))
        self.requests += 1
        if self.owner is None:
            self.owner = connection_owner(self.sock, self.srv.port,
                                          self.srv.workers())

    def broken(self, why):
        # Allowed only if the worker that held the connection was killed
        # (or, not found, a kill could explain why it was not found).
        owner = self.owner
        if (owner is not None and owner not in self.killed) or \
                (owner is None and not self.killed):
            self.failures.append("a request failed (%s) on a connection of "
                                 "worker %s, which was not killed" % (why, owner))
        self.lost += 1
        self.sock.close()

    def run(self):
        if not self.connect():
            return
        while not self.stop.is_set():
            try:
                self.request()
            except (OSError, ConnectionResetError) as e:
                self.broken(type(e).__name__)
                if not self.connect():
                    return
        self.sock.close()


class AvailabilityTest(ServerTest):
    def stats(self, srv, sock=None):
        own = sock is None
        s = srv.tcp() if own else sock
        try:
            s.sendall(b"stats\r\n")
            text = harness.recv_until(s, re.compile(rb".*END\r\n", re.S))
        finally:
            if own:
                s.close()
        return {m.group(1).decode(): m.group(2).decode()
                for m in re.finditer(rb"STAT (\S+) (\S+)\r\n", text)}

    def every_worker_serving(self, srv, nworkers, deadline):
        """Open connections until each of the nworkers workers has answered
        one; the time it took, or fail at the deadline."""
        t0 = time.monotonic()
        answered = set()
        while time.monotonic() < deadline:
            live = set(srv.workers())
            for _ in range(8):
                with srv.tcp(timeout=max(0.05, deadline - time.monotonic())) as s:
                    s.sendall(b"version\r\n")
                    if harness.recv_exact(s, 9, timeout=max(
                            0.05, deadline - time.monotonic())).startswith(
                                b"VERSION "):
                        answered.add(connection_owner(s, srv.port, live))
            if len(live) == nworkers and live <= answered:
                return time.monotonic() - t0
        self.fail("not every worker answered within 1 s after the storm: "
                  "%d of %s" % (len(answered & set(srv.workers())), nworkers))

    def test_sigkill_storm(self):
        nworkers = 2
        srv = self.new_server(workers=nworkers, memory=64)
        srv.wait_ready(nworkers=nworkers)
        rnd = random.Random(os.environ.get("SHMKV_STORM_SEED", time.time()))
        stop, killed = threading.Event(), set()
        clients = [Client(srv, rnd.random(), stop, killed)
                   for _ in range(CLIENTS)]
        for c in clients:
            c.start()
        deaf_ms, deaf_since = 0.0, None
        end = time.monotonic() + STORM_SECONDS
        next_kill = time.monotonic()
        try:
            while time.monotonic() < end:
                now = time.monotonic()
                live = [p for p in srv.workers() if p not in killed]
                # How long no worker process ran at all, sampled.
                if not live:
                    deaf_since = deaf_since or now
                    deaf_ms = max(deaf_ms, (now - deaf_since) * 1000)
                else:
                    deaf_since = None
                if now >= next_kill and live:
                    victim = rnd.choice(live)
                    killed.add(victim)  # before the clients can see it die
                    os.kill(victim, signal.SIGKILL)
                    next_kill = now + rnd.uniform(0.05, 0.2)
                time.sleep(0.005)
        finally:
            stop.set()
            for c in clients:
                c.join(REQUEST_TIMEOUT * 3)
        storm_end = time.monotonic()
        took = self.every_worker_serving(srv, nworkers, storm_end + 1.0)

        bad = count_corrupt(srv, "storm", NKEYS)
        st = self.stats(srv)
        failures = [f for c in clients for f in c.failures]
        corrupt = sum(len(c.corrupt) for c in clients) + bad
        print("\nstorm: %.0f s, %d workers, %d SIGKILLs, worker_restarts %s, "
              "%d clients: %d requests (set+get) ok, %d connections lost with "
              "their killed worker, %d connection attempts, 0 allowed to fail: "
              "%d failed requests/attempts, %d corrupt values; longest "
              "sampled time with no worker process %.0f ms; every worker "
              "serving %.0f ms after the storm"
              % (STORM_SECONDS, nworkers, len(killed), st.get("worker_restarts"),
                 CLIENTS, sum(c.requests for c in clients),
                 sum(c.lost for c in clients),
                 sum(c.connects for c in clients), len(failures), corrupt,
                 deaf_ms, took * 1000), file=sys.stderr)
        self.assertEqual(failures, [])
        self.assertEqual(corrupt, 0, [c.corrupt[:3] for c in clients])
        self.assertGreater(sum(c.requests for c in clients), 0)
        self.assertGreaterEqual(int(st["worker_restarts"]), len(killed))
        self.assertStopsCleanly(srv, worker_deaths=len(killed))

    def test_connections_wait_for_the_next_worker(self):
        """Connections made while a slot has no worker (its supervisor held
        back from restarting it) are served by the replacement."""
        srv = self.new_server(workers=1)
        srv.wait_ready(nworkers=1)
        victim = srv.workers()[0]
        os.kill(srv.pid, signal.SIGSTOP)
        try:
            os.kill(victim, signal.SIGKILL)
            self.assertTrue(wait_gone([victim], 5))
            queued = []
            for _ in range(5):
                s = srv.tcp()  # must not be refused
                s.sendall(b"version\r\n")
                queued.append(s)
            u = srv.unix()
            u.sendall(b"version\r\n")
            queued.append(u)
        finally:
            os.kill(srv.pid, signal.SIGCONT)
        for s in queued:
            self.assertTrue(harness.recv_exact(s, 9, timeout=5).startswith(
                b"VERSION "))
            s.close()
        self.assertStopsCleanly(srv, worker_deaths=1)

    def test_out_of_memory_closes_only_that_connection(self):
        """A worker that cannot grow one connection's buffer (its address
        space is capped, as a full machine would refuse it) tells that client
        SERVER_ERROR out of memory and closes it; the worker lives and its
        other connections go on."""
        key = "ASAN_OPTIONS"
        saved = os.environ.get(key)
        # Under ASan a failed malloc must return NULL, as glibc's does.
        os.environ[key] = (saved + ":" if saved else "") + \
            "allocator_may_return_null=1"
        try:
            srv = self.new_server("-I", "16m", workers=1)
        finally:
            if saved is None:
                del os.environ[key]
            else:
                os.environ[key] = saved
        other = srv.tcp()
        other.sendall(b"set a 0 0 1\r\nx\r\n")
        self.assertEqual(harness.recv_exact(other, 8), b"STORED\r\n")
        (worker,) = srv.workers()
        with open("/proc/%d/status" % worker) as f:
            vm = int(re.search(r"VmSize:\s+(\d+) kB", f.read()).group(1)) * 1024
        cap = vm + 4 * 1024 * 1024
        resource.prlimit(worker, resource.RLIMIT_AS, (cap, cap))
        big = srv.tcp()
        # The line, then bytes of the value: a read after the line was
        # parsed needs the whole value's buffer.  More bytes go until then
        # (a slow server may read the first with the line).
        big.sendall(b"set big 0 0 8388608\r\n")
        big.settimeout(0.5)
        got = b""
        for _ in range(20):
            try:
                big.sendall(b"x")
                chunk = big.recv(4096)
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                break  # bytes it could not read turn the close into a reset
            if not chunk:
                break
            got += chunk
        self.assertEqual(got, b"SERVER_ERROR out of memory\r\n")
        other.sendall(b"get a\r\n")
        self.assertEqual(harness.recv_exact(other, 21),
                         b"VALUE a 0 1\r\nx\r\nEND\r\n")
        fresh = srv.tcp()
        fresh.sendall(b"set b 0 0 1\r\ny\r\n")
        self.assertEqual(harness.recv_exact(fresh, 8), b"STORED\r\n")
        self.assertEqual(srv.workers(), [worker])

    def test_out_of_file_descriptors(self):
        srv = harness.Server(workers=1, start=False)
        self.addCleanup(srv.cleanup)
        srv.args = ["/bin/sh", "-c", 'ulimit -n 64 && exec "$0" "$@"'] + srv.args
        srv.start()
        srv.wait_ready(nworkers=1)
        worker = srv.workers()[0]
        control = srv.tcp()
        offered = 100
        conns = []
        for _ in range(offered):
            s = srv.tcp()  # the supervisor's socket takes it into its backlog
            s.sendall(b"version\r\n")
            conns.append(s)
        served = answered(conns, 1.0)
        waiting = [s for s in conns if s not in served]
        self.assertGreater(len(served), 0)
        self.assertGreater(len(waiting), 0, "64 descriptors served 100 connections")
        self.assertGreaterEqual(int(self.stats(srv, control)["listen_disabled_num"]), 1)

        # Paused, not spinning: the worker uses next to no CPU.
        cpu0, t0 = harness.cpu_seconds(worker), time.monotonic()
        time.sleep(1.0)
        busy = (harness.cpu_seconds(worker) - cpu0) / (time.monotonic() - t0)
        self.assertLess(busy, 0.2, "the paused worker used %.0f%% CPU" % (busy * 100))

        # Free descriptors, and the waiting connections are served in turn.
        deadline = time.monotonic() + 20
        while waiting:
            self.assertLess(time.monotonic(), deadline,
                            "%d connections never served" % len(waiting))
            for s in served:
                s.close()
            served = answered(waiting, 0.5)
            waiting = [s for s in waiting if s not in served]
        for s in served:
            s.close()
        while self.stats(srv, control)["curr_connections"] != "1":
            self.assertLess(time.monotonic(), deadline, "connections not closed")
            time.sleep(0.02)
        control.close()
        print("\nout of fds: %d connections offered to a worker with 64 fds, "
              "listen_disabled_num %s, paused worker CPU %.1f%%"
              % (offered, self.stats(srv)["listen_disabled_num"], busy * 100),
              file=sys.stderr)
        self.assertTrue(srv.workers() == [worker], "the worker died")
        self.assertStopsCleanly(srv)

    def test_next_server_after_supervisor_killed(self):
        first = self.new_server()
        first.wait_ready(nworkers=2)
        workers = first.workers()
        idle = first.tcp()
        idle.sendall(b"version\r\n")
        self.assertTrue(harness.recv_exact(idle, 9).startswith(b"VERSION "))
        os.kill(first.pid, signal.SIGKILL)
        first.proc.wait(5)
        self.assertTrue(wait_gone(workers, 6), "orphaned workers live on")
        self.assertTrue(harness.is_eof(idle))
        idle.close()
        # Nothing listens on the port any more: a plain bind (no
        # SO_REUSEPORT) and listen succeed.
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(("127.0.0.1", first.port))
            probe.listen(1)
        second = self.new_server(port=first.port, run_dir=first.run_dir)
        with second.tcp() as s:
            s.sendall(b"version\r\n")
            self.assertTrue(harness.recv_exact(s, 9).startswith(b"VERSION "))
        self.assertIn("removed what a dead server (pid %d) left" % first.pid,
                      second.log_text())
        self.assertStopsCleanly(second)

    def test_next_server_waits_for_exiting_workers(self):
        """Restarted the moment the supervisor was killed, while a worker
        still finishes replies to a client that does not read: the new
        server waits for that worker to go, then starts."""
        first = self.new_server()
        big = b"x" * (512 * 1024)
        slow = first.tcp()
        slow.sendall(b"set big 0 0 %d\r\n%s\r\n" % (len(big), big))
        self.assertEqual(harness.recv_exact(slow, 8), b"STORED\r\n")
        slow.sendall(b"get big\r\n" * 64)  # and never read the replies
        time.sleep(0.3)
        workers = first.workers()
        os.kill(first.pid, signal.SIGKILL)
        first.proc.wait(5)
        t0 = time.monotonic()
        second = self.new_server(port=first.port, run_dir=first.run_dir,
                                 ready=False)
        # The old worker's inherited listening sockets may still accept a
        # connect while the new server waits, so ready means its own workers
        # run too.
        second.wait_ready(timeout=15, nworkers=len(workers))
        took = time.monotonic() - t0
        slow.close()
        self.assertTrue(wait_gone(workers, 1))
        self.assertIn("waiting up to", second.log_text())
        print("\nnext server ready %.1f s after the supervisor was killed "
              "(a worker was finishing replies)" % took, file=sys.stderr)
        self.assertStopsCleanly(second)


if __name__ == "__main__":
    harness.main()
