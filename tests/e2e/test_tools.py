"""test_tools.py - memcached's own tools and clients, run as their users run them

Each installed from Debian (make test's DEPS) and pointed at a real
shmkv-server:

  - memccapable -a (libmemcached-tools): every ASCII test passes, which
    needs a version that reads as memcached 1.6 or later;
  - memcstat, memcping, memcflush;
  - memcdump (every key, through stats items and stats cachedump);
  - memcached-tool (shipped in the memcached package): stats, settings,
    dump (lru_crawler metadump) and display print what they print for
    memcached, and return;
  - pymemcache's whole client API, stats subcommands and cache_memlimit;
  - pylibmc (python3-pylibmc, on libmemcached);
  - PHP's memcached extension from `php -r`;
  - memcached's process flags: root needs -u, -u USER drops to USER, -d
    detaches and -P writes (and at the stop removes) the pid file, and a
    Debian /etc/memcached.conf starts the server through --conf.
"""
import json
import os
import pwd
import signal
import tempfile
import re
import subprocess
import time

import difftest
import harness
from harness import ServerTest, cmd, recv_until

import pylibmc
from pymemcache.client.base import Client
from pymemcache.exceptions import MemcacheUnknownCommandError

MEMCACHED_TOOL = "/usr/share/memcached/scripts/memcached-tool"
TOOL_TIMEOUT = 60


def run(args, **kw):
    """A tool's result; a hang fails the test instead of the suite."""
    return subprocess.run(args, capture_output=True, text=True,
                          timeout=TOOL_TIMEOUT, **kw)


def stats_of(srv, sub=""):
    with srv.tcp() as s:
        s.sendall(cmd("stats" + (" " + sub if sub else "")))
        got = recv_until(s, re.compile(rb"(STAT [^\r\n]*\r\n)*END\r\n", re.S))
    return dict(line.split(" ", 2)[1:] for line in got.decode().split("\r\n")
                if line.startswith("STAT "))


class LibmemcachedToolsTest(ServerTest):
    def test_memccapable_ascii_passes_everything(self):
        srv = self.new_server()
        p = run(["memccapable", "-a", "-h", "127.0.0.1", "-p", str(srv.port)])
        out = p.stdout + p.stderr
        self.assertEqual(p.returncode, 0, out)
        self.assertIn("All tests passed", out)
        self.assertEqual(out.count("[pass]"), 27, out)
        self.assertNotIn("[FAIL]", out)
        self.assertStopsCleanly(srv)

    def test_memcdump_lists_every_key(self):
        srv = self.new_server()
        keys = {"key%d" % i for i in range(300)} | {"odd%key"}
        with srv.tcp() as s:
            for k in sorted(keys):
                s.sendall(cmd("set %s 0 0 1" % k, b"v"))
            got = recv_until(s, re.compile(rb"(STORED\r\n){%d}" % len(keys)))
            self.assertEqual(got.count(b"STORED"), len(keys))
        p = run(["memcdump", "--servers=127.0.0.1:%d" % srv.port])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(set(p.stdout.split()), keys)
        self.assertStopsCleanly(srv)

    def test_memcstat_memcping_memcflush(self):
        srv = self.new_server()
        servers = "--servers=127.0.0.1:%d" % srv.port
        with srv.tcp() as s:
            s.sendall(cmd("set k 0 0 1", b"v"))
            self.assertEqual(recv_until(s, re.compile(rb"STORED\r\n")), b"STORED\r\n")
        p = run(["memcstat", servers])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("Server: 127.0.0.1 (%d)" % srv.port, p.stdout)
        self.assertRegex(p.stdout, r"\bversion: 1\.6\.18\b")
        self.assertRegex(p.stdout, r"\bshmkv_version: \d+\.\d+\.\d+\b")
        self.assertRegex(p.stdout, r"\bcurr_items: 1\b")
        p = run(["memcping", servers])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        p = run(["memcping", "--servers=127.0.0.1:%d" % harness.free_port()])
        self.assertNotEqual(p.returncode, 0, "memcping of a closed port succeeded")
        p = run(["memcflush", servers])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        with srv.tcp() as s:
            s.sendall(cmd("get k"))
            self.assertEqual(recv_until(s, re.compile(rb"END\r\n")), b"END\r\n")
        self.assertStopsCleanly(srv)


class MemcachedToolTest(ServerTest):
    def tool(self, srv, mode):
        p = run(["perl", MEMCACHED_TOOL, "127.0.0.1:%d" % srv.port, mode])
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def test_stats_settings_display(self):
        srv = self.new_server()
        with srv.tcp() as s:
            for i in range(20):
                s.sendall(cmd("set key%d 0 0 3" % i, b"abc"))
            got = recv_until(s, re.compile(rb"(STORED\r\n){20}"))
            self.assertEqual(got, b"STORED\r\n" * 20)
        out = self.tool(srv, "stats")
        self.assertRegex(out, r"^#127\.0\.0\.1:%d +Field +Value" % srv.port)
        self.assertRegex(out, r"\n +curr_items +20\n")
        self.assertRegex(out, r"\n +version +1\.6\.18\n")
        out = self.tool(srv, "settings")
        self.assertRegex(out, r"\n +maxbytes +%d\n" % (64 << 20))
        self.assertRegex(out, r"\n +tcpport +%d\n" % srv.port)
        # dump: memcached's "add" lines, which restore the cache elsewhere.
        out = self.tool(srv, "dump")
        adds = re.findall(r"add (key\d+) 0 0 3\s+abc\s", out)
        self.assertEqual(sorted(adds), sorted("key%d" % i for i in range(20)), out)
        out = self.tool(srv, "display")
        lines = out.strip().split("\n")
        self.assertTrue(lines[0].split() == ["#", "Item_Size", "Max_age", "Pages",
                                             "Count", "Full?", "Evicted",
                                             "Evict_Time", "OOM"], out)
        # One row per partition holding items; their counts add up.
        counts = [int(line.split()[4]) for line in lines[1:]]
        self.assertTrue(counts, out)
        self.assertEqual(sum(counts), 20, out)
        self.assertStopsCleanly(srv)


class PymemcacheApiTest(ServerTest):
    def test_whole_client_api(self):
        srv = self.new_server()
        c = Client(("127.0.0.1", srv.port), connect_timeout=5, timeout=5,
                   default_noreply=False)
        self.addCleanup(c.close)
        self.assertTrue(c.set("a", b"1", expire=100, flags=3))
        self.assertEqual(c.get("a"), b"1")
        self.assertEqual(c.get("missing", default=b"d"), b"d")
        self.assertEqual(c.set_many({"b": b"2", "c": b"3"}), [])
        self.assertEqual(c.set_multi({"e": b"5"}), [])
        self.assertEqual(c.get_many(["a", "b", "missing"]), {"a": b"1", "b": b"2"})
        self.assertEqual(c.get_multi(["c", "e"]), {"c": b"3", "e": b"5"})
        self.assertTrue(c.add("d", b"4"))
        self.assertFalse(c.add("d", b"x"))
        self.assertTrue(c.replace("d", b"40"))
        self.assertFalse(c.replace("missing", b"x"))
        self.assertTrue(c.append("d", b"!"))
        self.assertTrue(c.prepend("d", b"<"))
        self.assertEqual(c.get("d"), b"<40!")
        value, cas = c.gets("a")
        self.assertEqual(value, b"1")
        self.assertTrue(c.cas("a", b"10", cas))
        self.assertFalse(c.cas("a", b"11", cas))
        self.assertIsNone(c.cas("missing", b"1", cas))
        many = c.gets_many(["a", "b"])
        self.assertEqual(sorted(many), ["a", "b"])
        self.assertEqual(many["a"][0], b"10")
        self.assertEqual(c.incr("a", 5), 15)
        self.assertEqual(c.decr("a", 20), 0)
        self.assertIsNone(c.incr("missing", 1))
        self.assertTrue(c.touch("b", 100))
        self.assertFalse(c.touch("missing", 100))
        self.assertTrue(c.delete("d"))
        self.assertFalse(c.delete("d"))
        self.assertTrue(c.delete_many(["b", "c"]))
        self.assertTrue(c.delete_multi(["e"]))
        self.assertEqual(c.get_many(["b", "c", "e"]), {})
        self.assertEqual(c.version(), b"1.6.18")
        st = c.stats()
        self.assertEqual(st[b"curr_items"], 1)
        self.assertEqual(st[b"version"], b"1.6.18")
        self.assertIn(b"get_flushed", st)
        self.assertIn(b"rusage_user", st)
        self.assertEqual(c.stats("settings")[b"maxbytes"], 64 << 20)
        items = c.stats("items")
        self.assertEqual(sum(v for k, v in items.items()
                             if k.endswith(b":number")), 1)
        self.assertIn(b"active_slabs", c.stats("slabs"))
        self.assertEqual(c.stats("sizes"), {b"sizes_status": b"disabled"})
        cls = [k.split(b":")[1] for k in items if k.endswith(b":number")][0]
        self.assertEqual(c.stats("cachedump", cls.decode(), "0"),
                         {b"a": b"[2 b; 0 s]"})
        # cache_memlimit: the size the segment has is accepted; it cannot
        # move (memcached's own failure reply, which the client raises).
        self.assertTrue(c.cache_memlimit(64))
        with self.assertRaises(Exception):
            c.cache_memlimit(128)
        # Without -A, as memcached: "ERROR: shutdown not enabled".
        with self.assertRaises(MemcacheUnknownCommandError):
            c.shutdown()
        self.assertTrue(c.flush_all())
        self.assertIsNone(c.get("a"))
        c.quit()
        self.assertEqual(c.get("a"), None)  # reconnects after quit
        self.assertStopsCleanly(srv)

    def test_stats_reset(self):
        srv = self.new_server()
        c = Client(("127.0.0.1", srv.port), connect_timeout=5, timeout=5,
                   default_noreply=False)
        self.addCleanup(c.close)
        c.set("a", b"1")
        for _ in range(5):
            c.get("a")
        c.get("missing")
        st = c.stats()
        self.assertEqual((st[b"get_hits"], st[b"get_misses"], st[b"cmd_set"]),
                         (5, 1, 1))
        with srv.tcp() as s:
            s.sendall(cmd("stats reset"))
            self.assertEqual(recv_until(s, re.compile(rb"RESET\r\n")), b"RESET\r\n")
        st = c.stats()
        self.assertEqual((st[b"get_hits"], st[b"get_misses"], st[b"cmd_set"],
                          st[b"total_items"]), (0, 0, 0, 0))
        self.assertEqual(st[b"curr_items"], 1)       # a gauge: not reset
        self.assertGreaterEqual(st[b"curr_connections"], 1)
        c.get("a")
        self.assertEqual(c.stats()[b"get_hits"], 1)
        self.assertStopsCleanly(srv)


class StatsLikeMemcachedTest(ServerTest):
    """What memcached's own t/stats.t checks, run against memcached too,
    so the expectations are memcached's and not ours."""

    def script(self, port, ours):
        s = harness.socket.create_connection(("127.0.0.1", port), 5)
        self.addCleanup(s.close)

        def call(line, data=None, until=rb"[^\r\n]*\r\n"):
            s.sendall(cmd(line, data))
            return recv_until(s, re.compile(until, re.S)).decode()

        def stats(sub=""):
            got = call("stats" + sub, until=rb"(STAT [^\r\n]*\r\n)*END\r\n")
            return dict(line.split(" ", 2)[1:] for line in got.split("\r\n")
                        if line.startswith("STAT "))

        st = stats()
        for key in ("curr_items", "total_items", "bytes", "cmd_get", "cmd_set",
                    "get_hits", "evictions", "get_misses", "delete_hits",
                    "delete_misses", "incr_hits", "incr_misses", "decr_hits",
                    "decr_misses", "listen_disabled_num", "get_flushed"):
            self.assertEqual(st[key], "0", key)
        self.assertEqual(st["accepting_conns"], "1")
        self.assertEqual(call("set foo 0 0 6", b"fooval"), "STORED\r\n")
        self.assertEqual(call("get foo", until=rb".*END\r\n"),
                         "VALUE foo 0 6\r\nfooval\r\nEND\r\n")
        st = stats()
        for key in ("total_items", "curr_items", "cmd_get", "cmd_set", "get_hits"):
            self.assertEqual(st[key], "1", key)
        cls = [k.split(":")[1] for k in stats(" items") if k.endswith(":number")][0]
        dump = call("stats cachedump %s 100" % cls, until=rb".*END\r\n")
        self.assertRegex(dump, r"\A(ITEM \S+ \[\d+ b; \d+ s\]\r\n)*END\r\n\Z")
        # memcached 1.6 lists only its cold LRU, where a new item is not yet.
        if ours:
            self.assertIn("ITEM foo [6 b; 0 s]\r\n", dump)
        self.assertEqual(call("delete foo"), "DELETED\r\n")
        self.assertEqual(call("delete foo"), "NOT_FOUND\r\n")
        st = stats()
        self.assertEqual((st["delete_hits"], st["delete_misses"]), ("1", "1"))
        self.assertEqual(call("incr i 1"), "NOT_FOUND\r\n")
        self.assertEqual(call("decr d 1"), "NOT_FOUND\r\n")
        self.assertEqual(call("set n 0 0 1", b"0"), "STORED\r\n")
        self.assertEqual(call("incr n 3"), "3\r\n")
        self.assertEqual(call("decr n 1"), "2\r\n")
        st = stats()
        self.assertEqual([st[k] for k in ("incr_hits", "incr_misses", "decr_hits",
                                          "decr_misses")], ["1", "1", "1", "1"])
        self.assertEqual(call("cas c 0 0 1 99999999", b"z"), "NOT_FOUND\r\n")
        self.assertEqual(call("set c 0 0 1", b"x"), "STORED\r\n")
        self.assertEqual(call("cas c 0 0 1 99999999", b"z"), "EXISTS\r\n")
        cas = call("gets c", until=rb".*END\r\n").split("\r\n")[0].split()[4]
        self.assertEqual(call("cas c 0 0 1 %s" % cas, b"z"), "STORED\r\n")
        st = stats()
        self.assertEqual([st[k] for k in ("cas_hits", "cas_misses", "cas_badval")],
                         ["1", "1", "1"])
        settings = stats(" settings")
        self.assertEqual([settings[k] for k in ("maxconns", "evictions", "cas_enabled",
                                                "auth_enabled_sasl")],
                         ["1024", "on", "yes", "no"])
        self.assertEqual(call("stats reset"), "RESET\r\n")
        st = stats()
        for key in ("cmd_get", "cmd_set", "get_hits", "get_misses", "delete_misses",
                    "delete_hits", "incr_misses", "incr_hits", "decr_misses",
                    "decr_hits", "cas_misses", "cas_hits", "cas_badval", "evictions",
                    "reclaimed", "total_items"):
            self.assertEqual(st[key], "0", key)
        self.assertEqual(st["curr_items"], "2")
        self.assertEqual(call("flush_all"), "OK\r\n")
        self.assertEqual(stats()["cmd_flush"], "1")

    def test_memcached_then_shmkv(self):
        proc, port = difftest.start_memcached()
        self.addCleanup(difftest.stop_memcached, proc)
        self.script(port, ours=False)
        srv = self.new_server()
        self.script(srv.port, ours=True)
        self.assertStopsCleanly(srv)


class PylibmcTest(ServerTest):
    def test_pylibmc(self):
        srv = self.new_server()
        mc = pylibmc.Client(["127.0.0.1:%d" % srv.port], binary=False,
                            behaviors={"cas": True})
        self.addCleanup(mc.disconnect_all)
        self.assertTrue(mc.set("a", "hello"))
        self.assertEqual(mc.get("a"), "hello")
        self.assertTrue(mc.set("n", 10))
        self.assertEqual(mc.incr("n", 5), 15)
        self.assertEqual(mc.decr("n", 3), 12)
        self.assertEqual(mc.set_multi({"x": b"1", "y": b"2"}), [])
        self.assertEqual(mc.get_multi(["a", "x", "y", "missing"]),
                         {"a": "hello", "x": b"1", "y": b"2"})
        self.assertTrue(mc.add("z", "1"))
        self.assertFalse(mc.add("z", "2"))
        self.assertTrue(mc.replace("z", "3"))
        self.assertTrue(mc.append("a", " world"))
        self.assertTrue(mc.prepend("a", ">"))
        self.assertEqual(mc.get("a"), ">hello world")
        value, cas = mc.gets("z")
        self.assertEqual(value, "3")
        self.assertTrue(mc.cas("z", "4", cas))
        self.assertFalse(mc.cas("z", "5", cas))
        self.assertTrue(mc.touch("z", 100))
        self.assertTrue(mc.delete("z"))
        self.assertFalse(mc.delete("z"))
        (name, st), = mc.get_stats()
        self.assertEqual(st["version"], b"1.6.18")
        self.assertEqual(int(st["curr_items"]), 4)
        self.assertTrue(mc.flush_all())
        self.assertIsNone(mc.get("a"))
        self.assertStopsCleanly(srv)


PHP_SCRIPT = r"""
$m = new Memcached();
$m->setOption(Memcached::OPT_COMPRESSION, false);
$m->addServer('127.0.0.1', (int)$argv[1]);
$out = [];
$out['set'] = $m->set('greeting', 'hello', 100);
$out['get'] = $m->get('greeting');
$out['miss'] = $m->get('missing') === false && $m->getResultCode() == Memcached::RES_NOTFOUND;
$out['setMulti'] = $m->setMulti(['a' => '1', 'b' => '2']);
$out['getMulti'] = $m->getMulti(['a', 'b', 'missing']);
$out['incr'] = $m->increment('a', 9);
$out['delete'] = $m->delete('b');
$out['deleted'] = $m->get('b');
$out['version'] = array_values($m->getVersion())[0];
echo json_encode($out), "\n";
"""


class PhpMemcachedTest(ServerTest):
    def test_php_r(self):
        srv = self.new_server()
        p = run(["php", "-r", PHP_SCRIPT, "--", str(srv.port)])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        got = json.loads(p.stdout.strip().split("\n")[-1])
        self.assertEqual(got, {"set": True, "get": "hello", "miss": True,
                               "setMulti": True,
                               "getMulti": {"a": "1", "b": "2"}, "incr": 10,
                               "delete": True, "deleted": False,
                               "version": "1.6.18"})
        self.assertStopsCleanly(srv)


def uid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[2])  # effective
    return None


def pid_in(path):
    """The PID a pid file holds, or None while it is missing or not written
    yet."""
    try:
        with open(path) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def wait_for(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


class ProcessFlagsTest(ServerTest):
    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root: -u and the root check act only as root")

    def test_root_needs_u(self):
        p = run([harness.SERVER, "-p", str(harness.free_port()), "-t", "1",
                 "-m", "64", "--huge-pages", "off"])
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertEqual(p.stderr.strip().split("\n"),
                         ["shmkv-server: can't run as root without the -u switch "
                          "(-u root to mean it)"])

    def test_u_drops_to_the_user(self):
        nobody = pwd.getpwnam("nobody")
        top = tempfile.mkdtemp(prefix="shmkv-e2e-u-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", top]))
        os.chown(top, nobody.pw_uid, nobody.pw_gid)
        srv = self.new_server("-u", "nobody", run_dir=os.path.join(top, "run"),
                              ready=False)
        srv.wait_ready(nworkers=2)
        self.assertEqual(uid_of(srv.pid), nobody.pw_uid)
        for w in srv.workers():
            self.assertEqual(uid_of(w), nobody.pw_uid)
        self.assertEqual(os.stat(srv.run_dir).st_uid, nobody.pw_uid)
        self.assertStopsCleanly(srv)

    def test_d_and_P(self):
        tmp = tempfile.mkdtemp(prefix="shmkv-e2e-d-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", tmp]))
        pid_file = os.path.join(tmp, "memcached.pid")
        port = harness.free_port()
        args = [harness.SERVER, "-p", str(port), "--run-dir", os.path.join(tmp, "run"),
                "-t", "1", "-m", "64", "--huge-pages", "off", "-u", "root",
                "-d", "-P", pid_file]
        # Registered before the start: whatever fails below, the daemon
        # the pid file names is stopped (memcached too writes the file in
        # two steps, so it can be seen empty for a moment).
        self.addCleanup(lambda: pid_in(pid_file) and
                        os.path.exists("/proc/%d" % pid_in(pid_file)) and
                        os.kill(pid_in(pid_file), signal.SIGKILL))
        p = run(args)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertTrue(wait_for(lambda: pid_in(pid_file)), "no pid in the pid file")
        pid = pid_in(pid_file)
        # Detached: a session of its own, and it serves.
        self.assertEqual(os.getsid(pid), pid)
        with socket_when_ready(port) as s:
            s.sendall(cmd("version"))
            self.assertEqual(recv_until(s, re.compile(rb"VERSION [^\r\n]*\r\n")),
                             b"VERSION 1.6.18\r\n")
            # As memcached's t/daemonize.t: stats' pid is the pid file's.
            s.sendall(cmd("stats"))
            got = recv_until(s, re.compile(rb"(STAT [^\r\n]*\r\n)*END\r\n", re.S))
            self.assertIn(b"\r\nSTAT pid %d\r\n" % pid, b"\r\n" + got)
        # A second server refuses to take the pid file over, before it
        # detaches (so the refusal reaches the terminal).
        second = list(args)
        second[2] = str(harness.free_port())
        second[4] = os.path.join(tmp, "run2")
        p = run(second)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("-P: %s names process %d, which is running" % (pid_file, pid),
                      p.stderr)
        os.kill(pid, signal.SIGTERM)
        self.assertTrue(wait_for(lambda: not os.path.exists("/proc/%d" % pid)),
                        "the daemon did not stop on SIGTERM")
        self.assertFalse(os.path.exists(pid_file), "pid file left behind")

    def test_debian_memcached_conf(self):
        tmp = tempfile.mkdtemp(prefix="shmkv-e2e-conf-")
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", tmp]))
        port = harness.free_port()
        conf = os.path.join(tmp, "memcached.conf")
        log = os.path.join(tmp, "memcached.log")
        with open(conf, "w") as f:
            f.write("# memcached default config file\n"
                    "logfile %s\n-m 64\n-p %d\n-u root\n-l 127.0.0.1\n"
                    "-c 100\n-o idle_timeout=600\n" % (log, port))
        srv = self.new_server("--conf", conf, "-p", str(port), ready=False,
                              port=port)
        srv.wait_ready()
        st = stats_of(srv, "settings")
        self.assertEqual((st["maxconns"], st["idle_timeout"], st["tcpport"]),
                         ("100", "600", str(port)))
        self.assertStopsCleanly(srv)
        with open(log) as f:
            self.assertIn("listening", f.read())


class ShutdownTest(ServerTest):
    def test_shutdown_only_with_A(self):
        srv = self.new_server()
        c = Client(("127.0.0.1", srv.port), connect_timeout=5, timeout=5)
        self.addCleanup(c.close)
        with self.assertRaises(MemcacheUnknownCommandError):
            c.shutdown()
        self.assertEqual(c.version(), b"1.6.18")
        self.assertStopsCleanly(srv)
        srv = self.new_server("-A")
        self.assertEqual(stats_of(srv, "settings")["shutdown_command"], "yes")
        with srv.tcp() as s:
            s.sendall(cmd("shutdown bogus"))
            self.assertEqual(recv_until(s, re.compile(rb"[^\r\n]*\r\n")),
                             b"CLIENT_ERROR invalid shutdown mode\r\n")
        c = Client(("127.0.0.1", srv.port), connect_timeout=5, timeout=5)
        self.addCleanup(c.close)
        c.shutdown()
        # The clean stop: exit 0, socket and lock file gone.
        srv.proc.wait(15)
        self.assertStopsCleanly(srv)


class IdleKicksTest(ServerTest):
    def test_o_idle_timeout_counts_idle_kicks(self):
        srv = self.new_server()
        self.assertNotIn("idle_kicks", stats_of(srv))  # as memcached: no timeout
        self.assertStopsCleanly(srv)
        srv = self.new_server("-o", "idle_timeout=1")
        self.assertEqual(stats_of(srv)["idle_kicks"], "0")
        idle = srv.tcp()
        self.addCleanup(idle.close)
        self.assertTrue(harness.is_eof(idle, 10.0), "not closed after 1 s idle")
        self.assertEqual(stats_of(srv)["idle_kicks"], "1")
        self.assertEqual(stats_of(srv, "settings")["idle_timeout"], "1")
        self.assertStopsCleanly(srv)


class ListenTest(ServerTest):
    def test_ipv6_loopback(self):
        srv = self.new_server("-l", "::1", ready=False)
        deadline = time.monotonic() + 10
        while True:
            try:
                s = harness.socket.create_connection(("::1", srv.port), 2)
                break
            except OSError:
                self.assertIsNone(srv.proc.poll(), srv.log_text())
                self.assertLess(time.monotonic(), deadline, srv.log_text())
                time.sleep(0.05)
        with s:
            s.sendall(cmd("version"))
            self.assertEqual(recv_until(s, re.compile(rb"VERSION [^\r\n]*\r\n")),
                             b"VERSION 1.6.18\r\n")
        self.assertStopsCleanly(srv)
        self.assertIn("listening on [::1]:%d" % srv.port, srv.log_text())


def socket_when_ready(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return harness.socket.create_connection(("127.0.0.1", port), 2)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    harness.main()
