"""test_memcached_flags.py - memcached's -F -M -C, `verbosity` and `stats
detail`, each answered as the real memcached 1.6.18 answers

Where the reply does not depend on memory layout, the same command stream
goes to a private /usr/bin/memcached started with the same flag (-U 0, on
loopback, a port the kernel picks, stopped by PID) and to shmkv-server,
and the replies must be the same bytes.  Every command is followed by
`mn`, so each reply (or its absence, for noreply) is read up to "MN".
"""
import os
import re
import socket
import subprocess
import tempfile
import time

import harness
from difftest import start_memcached, stop_memcached
from harness import ServerTest, cmd, recv_until

MN = harness.MN_REPLY


def stat(sock, name, sub=""):
    sock.sendall(cmd("stats" + (" " + sub if sub else "")))
    got = recv_until(sock, re.compile(rb".*END\r\n", re.S)).decode()
    m = re.search(r"^STAT %s (\S+)\r$" % re.escape(name), got, re.M)
    return m.group(1) if m else None


class SameAsMemcached(ServerTest):
    def assertSameReplies(self, flags, stream, ours_extra=()):
        proc, port = start_memcached(*flags)
        self.addCleanup(stop_memcached, proc)
        srv = self.new_server(*(list(flags) + list(ours_extra)))
        with socket.create_connection(("127.0.0.1", port), 5) as mc, \
                srv.tcp() as ours:
            want = harness.replies_until_mn(mc, stream)
            got = harness.replies_until_mn(ours, stream)
        for c, w, g in zip(stream, want, got):
            self.assertEqual(g, w, "command %r" % c)
        return srv

    def test_F_refuses_flush_all_as_memcached(self):
        srv = self.assertSameReplies(["-F"], [
            cmd("set k 0 0 1", b"v"), cmd("flush_all"), cmd("flush_all 0"),
            cmd("flush_all noreply"), cmd("flush_all x"), cmd("get k"),
        ])
        with srv.tcp() as s:
            self.assertEqual(stat(s, "flush_enabled", "settings"), "no")
            self.assertEqual(stat(s, "cmd_flush"), "0")

    def test_C_shows_cas_0_and_compares_as_memcached(self):
        srv = self.assertSameReplies(["-C"], [
            cmd("cas nx 0 0 1 0", b"y"), cmd("ms nx 1 C0", b"z"),
            cmd("md nx C0"), cmd("set a 0 0 1", b"1"), cmd("gets a"),
            cmd("gats 0 a"), cmd("cas a 0 0 1 0", b"y"),
            cmd("cas a 0 0 1 1", b"y"), cmd("mg a c v"), cmd("mg a c"),
            cmd("md a C7"), cmd("incr a 1"), cmd("ma a C0 v"),
            cmd("ma a C9 v"), cmd("ma a c v"), cmd("ms a 1 I", b"z"),
            cmd("ms a 1 C0 I", b"z"), cmd("ms a 1 C5 c", b"z"),
            cmd("mg a c v"), cmd("ms a 1 c", b"w"), cmd("md a C0 q"),
            cmd("mg a v"),
        ])
        with srv.tcp() as s:
            self.assertEqual(stat(s, "cas_enabled", "settings"), "no")

    def test_stats_detail_counts_prefixes_as_memcached(self):
        keys = " ".join("%s:%d" % (p, i) for i, p in enumerate(
            ["user", "users", "x", "y", "zz", "abc", "abcd"] +
            [chr(c) for c in range(ord("e"), ord("q"))]))
        self.assertSameReplies([], [
            cmd("stats detail dump"), cmd("stats detail"),
            cmd("stats detail foo"), cmd("get a:0"), cmd("stats detail on"),
            cmd("set a:1 0 0 1", b"x"), cmd("get a:1 b:2 nocolon"),
            cmd("add a:1 0 0 1", b"x"), cmd("set a:2 0 0 1 noreply", b"x"),
            cmd("set a:3 0 0 x"), cmd("delete q:1"), cmd("delete a:1"),
            cmd("mg b:1 v"), cmd("incr a:2 1"), cmd("get " + keys),
            cmd("stats detail dump"), cmd("stats detail off"),
            cmd("get a:2"), cmd("stats detail dump"), cmd("stats reset"),
            cmd("stats detail dump"),
        ])

    def test_stats_detail_counts_every_workers_commands(self):
        srv = self.new_server(workers=3)
        conns = [srv.tcp() for _ in range(12)]
        try:
            conns[0].sendall(cmd("stats detail on"))
            self.assertEqual(recv_until(conns[0], re.compile(rb"OK\r\n")),
                             b"OK\r\n")
            for s in conns:
                s.sendall(cmd("get w:1") + b"mn\r\n")
                self.assertEqual(recv_until(s, MN), b"END\r\nMN\r\n")
            conns[-1].sendall(cmd("stats detail dump"))
            self.assertEqual(
                recv_until(conns[-1], re.compile(rb".*END\r\n", re.S)),
                b"PREFIX w get 12 hit 0 set 0 del 0\r\nEND\r\n")
        finally:
            for s in conns:
                s.close()


def conns_scenario(port, unix_path=None):
    """Connections in each of memcached's states; the `stats conns` reply
    and each client's own address."""
    opened = []

    def conn():
        s = socket.create_connection(("127.0.0.1", port), 5)
        opened.append(s)
        return s
    asker, idle, used, midway = conn(), conn(), conn(), conn()
    used.sendall(cmd("get a") + b"mn\r\n")
    recv_until(used, MN)
    midway.sendall(b"set foo 0 0 6\r\nab")
    if unix_path:
        u = socket.socket(socket.AF_UNIX)
        u.connect(unix_path)
        opened.append(u)
    ports = {name: s.getsockname()[1] for name, s in
             (("asker", asker), ("idle", idle), ("used", used),
              ("midway", midway))}
    # Until every connection is accepted and its first bytes are read.
    deadline = time.monotonic() + 20
    while True:
        asker.sendall(cmd("stats conns"))
        got = recv_until(asker, re.compile(rb".*END\r\n", re.S)).decode()
        every = all("addr tcp:127.0.0.1:%d\r" % p in got
                    for p in ports.values())
        if (every and got.count("conn_nread") == 1 and
                (unix_path is None or "?:<AF 0>" in got)) or \
                time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for s in opened:
        s.close()
    return got, ports


def conns_blocks(text):
    """{id: {field: value}} of a `stats conns` reply, each line checked."""
    blocks = {}
    for line in text.split("\r\n"):
        if line in ("", "END"):
            continue
        m = re.fullmatch(r"STAT (\d+):(addr|listen_addr|state|"
                         r"secs_since_last_cmd) (\S+|\?:<AF \d+>)", line)
        assert m, "not a stats conns line: %r" % line
        blocks.setdefault(int(m.group(1)), {})[m.group(2)] = m.group(3)
    return blocks


class StatsConns(ServerTest):
    def test_lists_every_workers_connections_as_memcached_does(self):
        proc, mport = start_memcached()
        self.addCleanup(stop_memcached, proc)
        mc_text, mc_ports = conns_scenario(mport)
        srv = self.new_server(workers=3)
        our_text, our_ports = conns_scenario(srv.port, srv.sock_path)

        def by_port(blocks, port):
            return [b for b in blocks.values()
                    if b.get("addr") == "tcp:127.0.0.1:%d" % port]
        for text, ports, port in ((mc_text, mc_ports, mport),
                                  (our_text, our_ports, srv.port)):
            blocks = conns_blocks(text)
            listening = [b for b in blocks.values()
                         if b["state"] == "conn_listening"]
            self.assertIn({"addr": "tcp:127.0.0.1:%d" % port,
                           "state": "conn_listening",
                           "secs_since_last_cmd": listening[0][
                               "secs_since_last_cmd"]}, listening, text)
            for name, state in (("asker", "conn_parse_cmd"),
                                ("idle", "conn_new_cmd"),
                                ("used", "conn_read"),
                                ("midway", "conn_nread")):
                got = by_port(blocks, ports[name])
                self.assertEqual(len(got), 1, "%s in\n%s" % (name, text))
                self.assertEqual(got[0]["state"], state, text)
                self.assertEqual(got[0]["listen_addr"],
                                 "tcp:127.0.0.1:%d" % port, text)
                self.assertLessEqual(int(got[0]["secs_since_last_cmd"]), 5)
        # Ours lists the Unix socket and its client too, as memcached -s.
        blocks = conns_blocks(our_text)
        self.assertIn({"addr": "?:<AF 0>", "state": "conn_new_cmd",
                       "listen_addr": "unix:" + srv.sock_path,
                       "secs_since_last_cmd": "0"},
                      [dict(b, secs_since_last_cmd="0")
                       for b in blocks.values()], our_text)
        # Closed connections are gone from the list.
        with srv.tcp() as s:
            deadline = time.monotonic() + 20
            while True:
                s.sendall(cmd("stats conns"))
                blocks = conns_blocks(recv_until(
                    s, re.compile(rb".*END\r\n", re.S)).decode())
                if len(blocks) == 3 or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            self.assertEqual(len(blocks), 3, blocks)

    def test_a_connection_whose_replies_wait_is_in_conn_mwrite(self):
        proc, mport = start_memcached()
        self.addCleanup(stop_memcached, proc)
        srv = self.new_server()
        for port in (mport, srv.port):
            self.mwrite_scenario(port)

    def mwrite_scenario(self, port):
        """A client that asks for 5 MiB of replies and reads none is in
        conn_mwrite; once it has read them all, in conn_read."""
        value = b"v" * (512 * 1024)
        with socket.create_connection(("127.0.0.1", port), 5) as asker, \
                socket.socket() as slow:
            asker.sendall(cmd("set big 0 0 %d" % len(value), value))
            self.assertEqual(recv_until(asker, re.compile(rb"[^\n]*\r\n")),
                             b"STORED\r\n")
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow.connect(("127.0.0.1", port))
            slow.sendall(b"get big\r\n" * 10 + b"mn\r\n")
            me = "tcp:127.0.0.1:%d" % slow.getsockname()[1]

            def state():
                asker.sendall(cmd("stats conns"))
                blocks = conns_blocks(recv_until(
                    asker, re.compile(rb".*END\r\n", re.S)).decode())
                return [b["state"] for b in blocks.values()
                        if b.get("addr") == me]

            deadline = time.monotonic() + 20
            while state() != ["conn_mwrite"] and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertEqual(state(), ["conn_mwrite"], "port %d" % port)
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            got = recv_until(slow, MN, timeout=60)
            self.assertEqual(got.count(b"VALUE big 0 524288\r\n"), 10)
            deadline = time.monotonic() + 20
            while state() != ["conn_read"] and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertEqual(state(), ["conn_read"], "port %d" % port)


class SeveralAddresses(ServerTest):
    def test_l_listens_on_ipv4_and_ipv6_loopback_as_memcached(self):
        proc, mport = start_memcached("-l", "::1")
        self.addCleanup(stop_memcached, proc)
        srv = self.new_server("-l", "127.0.0.1,::1", workers=2)
        with socket.create_connection(("127.0.0.1", srv.port), 5) as v4, \
                socket.create_connection(("::1", srv.port), 5) as v6:
            v4.sendall(cmd("set k 0 0 2", b"v4"))
            self.assertEqual(recv_until(v4, re.compile(rb"[^\n]*\r\n")),
                             b"STORED\r\n")
            v6.sendall(cmd("get k"))
            self.assertEqual(recv_until(v6, re.compile(rb".*END\r\n", re.S)),
                             b"VALUE k 0 2\r\nv4\r\nEND\r\n")
            v6.sendall(cmd("stats conns"))
            ours = conns_blocks(recv_until(
                v6, re.compile(rb".*END\r\n", re.S)).decode())
        listening = sorted(b["addr"] for b in ours.values()
                           if b["state"] == "conn_listening")
        self.assertEqual(listening, sorted([
            "tcp:127.0.0.1:%d" % srv.port, "tcp6:[::1]:%d" % srv.port,
            "unix:" + srv.sock_path]))
        # memcached writes an IPv6 client and its listener the same way.
        with socket.create_connection(("::1", mport), 5) as m:
            m.sendall(cmd("stats conns"))
            theirs = conns_blocks(recv_until(
                m, re.compile(rb".*END\r\n", re.S)).decode())
        for blocks, port in ((ours, srv.port), (theirs, mport)):
            self.assertIn("tcp6:[::1]:%d" % port,
                          [b.get("listen_addr") for b in blocks.values()])
            self.assertTrue(any(re.fullmatch(r"tcp6:\[::1\]:\d+", b["addr"])
                                for b in blocks.values()
                                if "listen_addr" in b))


class FlagsOfOurOwn(ServerTest):
    def test_M_answers_out_of_memory_instead_of_evicting(self):
        srv = self.new_server("-M", "-I", "64k", memory=2, workers=1)
        value = b"x" * 1000
        stored, refused = [], 0
        with srv.tcp() as s:
            for i in range(6000):
                s.sendall(cmd("set k%d 0 0 %d" % (i, len(value)), value))
                line = recv_until(s, re.compile(rb"[^\n]*\r\n"))
                if line == b"STORED\r\n":
                    stored.append(i)
                else:
                    self.assertEqual(
                        line, b"SERVER_ERROR out of memory storing object\r\n")
                    refused += 1
            self.assertGreater(refused, 0, "2 MiB never filled up")
            self.assertGreater(len(stored), 100)
            self.assertEqual(stat(s, "evictions"), "0")
            self.assertEqual(stat(s, "store_no_memory"), str(refused))
            self.assertEqual(stat(s, "evictions", "settings"), "off")
            s.sendall(cmd("stats items"))
            items = recv_until(s, re.compile(rb".*END\r\n", re.S)).decode()
            self.assertEqual(sum(int(n) for n in re.findall(
                r"STAT items:\d+:outofmemory (\d+)", items)), refused)
            # Nothing stored was evicted to make room.
            for i in stored:
                s.sendall(cmd("mg k%d" % i))
                self.assertEqual(recv_until(s, re.compile(rb"[^\n]*\r\n")),
                                 b"HD\r\n", "k%d was evicted" % i)
            # Deleting the oldest items makes room again.
            for i in stored[:len(stored) // 2]:
                s.sendall(cmd("delete k%d" % i))
                recv_until(s, re.compile(rb"[^\n]*\r\n"))
            s.sendall(cmd("set again 0 0 %d" % len(value), value))
            self.assertEqual(recv_until(s, re.compile(rb"[^\n]*\r\n")),
                             b"STORED\r\n")

    def test_verbosity_applies_to_every_worker(self):
        srv = self.new_server(workers=3)
        with srv.tcp() as s:
            s.sendall(cmd("verbosity 2"))
            self.assertEqual(recv_until(s, re.compile(rb"OK\r\n")), b"OK\r\n")
            self.assertEqual(stat(s, "verbosity", "settings"), "2")
        workers = set(srv.workers())
        self.assertEqual(len(workers), 3)
        # New connections spread over the workers (SO_REUSEPORT); each
        # worker logs them at -vv, whichever worker took the command.
        deadline = time.monotonic() + 30
        logged = set()
        while logged != workers and time.monotonic() < deadline:
            for _ in range(10):
                with srv.tcp() as c:
                    c.sendall(cmd("version"))
                    recv_until(c, re.compile(rb"VERSION [^\r]*\r\n"))
            logged = {int(p) for p in re.findall(
                r"shmkv-server\[(\d+)\]: .*connection", srv.log_text())}
            logged &= workers
        self.assertEqual(logged, workers, srv.log_text())
        with srv.tcp() as s:
            s.sendall(cmd("verbosity 0"))
            recv_until(s, re.compile(rb"OK\r\n"))
            self.assertEqual(stat(s, "verbosity", "settings"), "0")


class WholeServerCpu(ServerTest):
    def test_rusage_is_every_processes_cpu(self):
        srv = self.new_server(workers=3)
        srv.wait_ready(nworkers=3)
        # Make every worker spend some CPU: connections spread over them.
        socks = [srv.tcp() for _ in range(9)]
        batch = b"".join(cmd("set k%d 0 0 100" % i, b"v" * 100)
                         for i in range(2000))
        pids = [srv.pid] + srv.workers()
        # Until the workers other than the busiest have spent clearly more
        # than the clock tick's rounding (10 ms) between them.
        deadline = time.monotonic() + 60
        while True:
            for s in socks:
                s.sendall(batch)
            for s in socks:
                recv_until(s, re.compile(rb"(STORED\r\n){2000}"), timeout=30)
            spent = [harness.cpu_seconds(p) for p in pids]
            if sum(spent) - max(spent) >= 0.1:
                break
            self.assertLess(time.monotonic(), deadline, spent)
        before = sum(harness.cpu_seconds(p) for p in pids)
        socks[0].sendall(cmd("stats"))
        got = recv_until(socks[0], re.compile(rb".*END\r\n", re.S)).decode()
        after = sum(harness.cpu_seconds(p) for p in pids)
        for s in socks:
            s.close()
        user = float(re.search(r"STAT rusage_user (\S+)", got).group(1))
        system = float(re.search(r"STAT rusage_system (\S+)", got).group(1))
        # Not the answering worker's alone: the sum over the server.
        self.assertGreaterEqual(user + system, before - 0.02)
        self.assertLessEqual(user + system, after + 0.02)
        self.assertGreater(user + system,
                           max(harness.cpu_seconds(p) for p in pids) + 0.05)


class MemcachedConf(ServerTest):
    def write_conf(self, text):
        fd, path = tempfile.mkstemp(suffix=".conf")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        self.addCleanup(os.unlink, path)
        return path

    def test_conf_with_F_M_C_lines_means_what_memcached_reads(self):
        path = self.write_conf(
            "# memcached's flags, one or more a line\n-F\n-M\n-C\n"
            "-c 512  # connections\n")
        srv = self.new_server("--conf", path)
        with srv.tcp() as s:
            for name, want in (("flush_enabled", "no"), ("evictions", "off"),
                               ("cas_enabled", "no"), ("maxconns", "512")):
                self.assertEqual(stat(s, name, "settings"), want, name)
            s.sendall(cmd("flush_all"))
            self.assertEqual(recv_until(s, re.compile(rb"[^\n]*\r\n")),
                             b"CLIENT_ERROR flush_all not allowed\r\n")

    def test_conf_with_several_listen_addresses_listens_on_each(self):
        path = self.write_conf("-m 64\n-l 127.0.0.1,::1\n")
        srv = self.new_server("--conf", path)
        with socket.create_connection(("::1", srv.port), 5) as s:
            self.assertEqual(stat(s, "inter", "settings"), "127.0.0.1,::1")

    def test_conf_with_a_flag_we_lack_says_so_in_one_line(self):
        path = self.write_conf("-m 64\n-U 11211\n")
        p = subprocess.run([harness.SERVER, "--conf", path, "-p",
                            str(harness.free_port())] + harness.AS_ROOT,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertIn("-U: '11211': shmkv has no UDP", p.stderr)


if __name__ == "__main__":
    harness.main()
