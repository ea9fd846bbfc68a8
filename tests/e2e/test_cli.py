"""test_cli.py - the `shmkv` command and the installed libshmkv, as a user meets them

The `shmkv` tool (client/shmkv_cli.c) against a real server: get, set
(with --ttl and --flags, a value from standard input), del (also of a
prefix), keys and stats, options before or after the words, a newline
after a value only on a terminal, and its exit codes (0 found or done, 1
not found, 2 error: bad usage, no server, a plain memcached on the socket).  Then what `meson
install` puts in place: the library (shared and static) exporting only
shmkv_*, shmkv.h, shmkv.pc, and the README's example program compiled with
`cc prog.c $(pkg-config --cflags --libs shmkv)` that must print the value
it set.

Usage: python3 test_cli.py PATH-TO-shmkv-server; the environment gives
SHMKV_CLI (the built `shmkv`), SHMKV_BUILD_ROOT (for `meson install`),
SHMKV_CC and SHMKV_SANITIZE (to build the example as the library was).
"""
import os
import pty
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import harness
from harness import ServerTest

CLI = os.environ.get("SHMKV_CLI", "")

# The README's example; if README.md has a C block using shmkv.h, that one
# is compiled instead, so the README cannot drift from what works.
EXAMPLE = r"""#include <stdio.h>
#include <shmkv.h>

int main(int argc, char **argv)
{
	shmkv *kv;
	char buf[64];
	size_t len;

	if (argc < 2 || shmkv_open(argv[1], &kv) != SHMKV_OK)
		return fprintf(stderr, "%s\n", shmkv_last_error()), 1;
	shmkv_set(kv, "greeting", 8, "hello", 5, 0, 0);
	if (shmkv_get(kv, "greeting", 8, buf, sizeof buf, &len, NULL) == SHMKV_OK)
		printf("%.*s\n", (int)len, buf);
	shmkv_close(kv);
	return 0;
}
"""


def readme_example():
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        with open(os.path.join(here, "..", "..", "README.md")) as f:
            text = f.read()
    except OSError:
        return EXAMPLE
    for block in re.findall(r"```c\n(.*?)```", text, re.S):
        if "shmkv.h" in block and "main(" in block:
            return block
    return EXAMPLE


class CliTest(ServerTest):
    def shmkv(self, *args, env=None, sock=None):
        """Run the CLI; (exit status, stdout, stderr)."""
        argv = [CLI]
        if sock is not None:
            argv += ["-s", sock]
        r = subprocess.run(argv + list(args), capture_output=True, timeout=20,
                           env=env)
        for bad in (b"Sanitizer", b"runtime error:"):
            self.assertNotIn(bad, r.stderr)
        return r.returncode, r.stdout, r.stderr

    def mg(self, srv, key, flags):
        """The meta-get reply line for key over TCP."""
        with srv.tcp() as s:
            s.sendall(("mg %s %s\r\n" % (key, flags)).encode())
            return harness.recv_until(s, re.compile(rb".*\r\n", re.S)).decode().strip()

    def test_get_set_del(self):
        srv = self.new_server()
        sock = srv.sock_path
        self.assertEqual(self.shmkv("get", "k", sock=sock), (1, b"", b""))
        self.assertEqual(self.shmkv("set", "k", "hello world", sock=sock)[0], 0)
        # Not a terminal: the value exactly, no newline added.
        self.assertEqual(self.shmkv("get", "k", sock=sock), (0, b"hello world", b""))
        # What the CLI set, any memcached client sees.
        with srv.tcp() as s:
            s.sendall(b"get k\r\n")
            self.assertEqual(harness.recv_until(s, re.compile(rb".*END\r\n", re.S)),
                             b"VALUE k 0 11\r\nhello world\r\nEND\r\n")
        self.assertEqual(self.shmkv("del", "k", sock=sock)[0], 0)
        self.assertEqual(self.shmkv("get", "k", sock=sock), (1, b"", b""))
        self.assertEqual(self.shmkv("del", "k", sock=sock)[0], 1)
        # Flags travel with the value.
        self.assertEqual(self.shmkv("set", "f", "v", "--flags", "77", sock=sock)[0], 0)
        self.assertEqual(self.mg(srv, "f", "f"), "HD f77")
        # The socket may come from the environment instead of -s.
        env = dict(os.environ, SHMKV_SOCKET=sock)
        self.assertEqual(self.shmkv("get", "f", env=env), (0, b"v", b""))
        self.assertStopsCleanly(srv)

    def test_ttl(self):
        srv = self.new_server()
        sock = srv.sock_path
        self.assertEqual(self.shmkv("set", "long", "l", "--ttl", "100", sock=sock)[0], 0)
        self.assertEqual(self.shmkv("--ttl", "1", "set", "short", "s", sock=sock)[0], 0)
        # The server says how long each has left.
        m = re.fullmatch(r"HD t(\d+)", self.mg(srv, "long", "t"))
        self.assertTrue(m and 95 <= int(m.group(1)) <= 100, self.mg(srv, "long", "t"))
        m = re.fullmatch(r"HD t(\d+)", self.mg(srv, "short", "t"))
        self.assertTrue(m and int(m.group(1)) <= 1, self.mg(srv, "short", "t"))
        time.sleep(2.2)  # the server's clock ticks once a second
        self.assertEqual(self.shmkv("get", "short", sock=sock), (1, b"", b""))
        self.assertEqual(self.shmkv("get", "long", sock=sock), (0, b"l", b""))
        self.assertEqual(self.shmkv("set", "x", "y", "--ttl", "soon", sock=sock)[0], 2)
        self.assertStopsCleanly(srv)

    def test_stats(self):
        srv = self.new_server()
        sock = srv.sock_path
        self.assertEqual(self.shmkv("set", "a", "1", sock=sock)[0], 0)
        self.assertEqual(self.shmkv("get", "a", sock=sock)[0], 0)
        self.assertEqual(self.shmkv("get", "b", sock=sock)[0], 1)
        rc, out, err = self.shmkv("stats", sock=sock)
        self.assertEqual(rc, 0, err)
        stats = dict(re.findall(rb"STAT (\S+) (\S+)", out))
        self.assertEqual(stats[b"curr_items"], b"1")
        # The two earlier commands' lookups were direct, and are counted.
        self.assertEqual(stats[b"direct_get_hits"], b"1")
        self.assertEqual(stats[b"direct_get_misses"], b"1")
        self.assertNotIn(b"END", out)
        # stdout is the server's report and nothing else, so that it can
        # be parsed; this process's own counters go to stderr on request.
        for line in out.splitlines():
            self.assertTrue(line.startswith(b"STAT "), line)
        self.assertEqual(err, b"")
        rc, out2, err = self.shmkv("stats", "--verbose", sock=sock)
        self.assertEqual(rc, 0, err)
        self.assertRegex(err, rb"^shmkv: this process: 0 direct hits, 0 misses\n$")
        self.assertStopsCleanly(srv)

    def test_options_anywhere_and_stdin(self):
        srv = self.new_server()
        sock = srv.sock_path
        # -s and --ttl after the words, and between them.
        self.assertEqual(self.shmkv("set", "k", "v1", "-s", sock, "--ttl", "100")[0], 0)
        self.assertEqual(self.shmkv("get", "-s", sock, "k"), (0, b"v1", b""))
        m = re.fullmatch(r"HD t(\d+)", self.mg(srv, "k", "t"))
        self.assertTrue(m and 95 <= int(m.group(1)) <= 100)
        # - reads the value from standard input, any bytes.
        value = b"line one\nline two\x00\xff" * 1000
        r = subprocess.run([CLI, "-s", sock, "set", "bin", "-", "--flags", "3"],
                           input=value, capture_output=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(self.shmkv("get", "bin", sock=sock), (0, value, b""))
        self.assertEqual(self.mg(srv, "bin", "f s"), "HD f3 s%d" % len(value))
        # -- ends the options: a value may start with a dash.
        self.assertEqual(self.shmkv("set", "neg", "--", "-5", sock=sock)[0], 0)
        self.assertEqual(self.shmkv("get", "neg", sock=sock), (0, b"-5", b""))
        self.assertStopsCleanly(srv)

    def test_newline_only_on_a_terminal(self):
        srv = self.new_server()
        sock = srv.sock_path
        self.assertEqual(self.shmkv("set", "k", "hello", sock=sock)[0], 0)
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)
        p = subprocess.Popen([CLI, "-s", sock, "get", "k"], stdout=slave,
                             stderr=subprocess.PIPE)
        os.close(slave)
        out = b""
        while True:
            try:
                chunk = os.read(master, 1024)
            except OSError:   # EIO: the terminal's other side closed
                break
            if not chunk:
                break
            out += chunk
        self.assertEqual(p.wait(timeout=20), 0)
        p.stderr.close()
        # The terminal turns the newline into \r\n.
        self.assertEqual(out, b"hello\r\n")
        self.assertStopsCleanly(srv)

    def test_keys_and_del_prefix(self):
        srv = self.new_server()
        sock = srv.sock_path
        for i in range(30):
            self.assertEqual(self.shmkv("set", "user:%d" % i, "x" * i,
                                        "--flags", str(i), sock=sock)[0], 0)
        self.assertEqual(self.shmkv("set", "other", "o", "--ttl", "50", sock=sock)[0], 0)
        rc, out, err = self.shmkv("keys", "user:", sock=sock)
        self.assertEqual(rc, 0, err)
        self.assertEqual(sorted(out.split(b"\n")[:-1]),
                         sorted(b"user:%d" % i for i in range(30)))
        rc, out, _ = self.shmkv("keys", sock=sock)
        self.assertEqual(len(out.splitlines()), 31)
        rc, out, _ = self.shmkv("keys", "oth", "--long", sock=sock)
        m = re.fullmatch(rb"other 1 0 (\d+)\n", out)
        self.assertTrue(m and 45 <= int(m.group(1)) <= 50, out)
        rc, out, _ = self.shmkv("keys", "-l", "user:7", sock=sock)
        self.assertEqual(out, b"user:7 7 7 -1\n")
        self.assertEqual(self.shmkv("keys", "nothing:", sock=sock), (1, b"", b""))

        self.assertEqual(self.shmkv("del", "--prefix", "user:", sock=sock),
                         (0, b"deleted 30 keys\n", b""))
        self.assertEqual(self.shmkv("keys", "user:", sock=sock)[0], 1)
        self.assertEqual(self.shmkv("get", "other", sock=sock), (0, b"o", b""))
        self.assertEqual(self.shmkv("del", "--prefix", "user:", sock=sock),
                         (1, b"deleted 0 keys\n", b""))
        # A KEY and --prefix together, or neither, is a usage error.
        self.assertEqual(self.shmkv("del", "k", "--prefix", "u", sock=sock)[0], 2)
        with srv.tcp() as s:
            s.sendall(b"stats\r\n")
            stats = harness.recv_until(s, re.compile(rb".*END\r\n", re.S))
            self.assertIn(b"STAT curr_items 1\r\n", stats)
        self.assertStopsCleanly(srv)

    def test_plain_memcached_is_named(self):
        memcached = shutil.which("memcached")
        self.assertIsNotNone(memcached, "memcached is a test dependency")
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp, True)
        sock = os.path.join(tmp, "memcached.sock")
        argv = [memcached, "-l", "127.0.0.1", "-p", str(harness.free_port()),
                "-U", "0", "-s", sock]
        if os.getuid() == 0:
            argv += ["-u", pwd.getpwuid(0).pw_name]
        mc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
        self.addCleanup(mc.wait)
        self.addCleanup(mc.send_signal, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(sock)
                break
            except OSError:
                self.assertIsNone(mc.poll(), "memcached exited")
                self.assertLess(time.monotonic(), deadline, "memcached did not start")
                time.sleep(0.05)
        rc, out, err = self.shmkv("get", "k", sock=sock)
        self.assertEqual((rc, out), (2, b""))
        self.assertIn(b"this is not a shmkv server", err)
        self.assertIn(sock.encode(), err)

    def test_names_itself_and_version(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp, True)
        other = os.path.join(tmp, "kvtool")
        os.symlink(CLI, other)
        r = subprocess.run([other, "frobnicate"], capture_output=True, timeout=20)
        self.assertEqual(r.returncode, 2)
        self.assertTrue(r.stderr.startswith(b"kvtool: unknown command 'frobnicate'"),
                        r.stderr)
        r = subprocess.run([other, "--help"], capture_output=True, timeout=20)
        self.assertIn(b"usage: kvtool", r.stdout)
        rc, out, err = self.shmkv("--version")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, rb"^shmkv \(shmkv\) \d+\.\d+\.\d+\n$")

    def test_errors_exit_2(self):
        tmp = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, tmp, True)
        nowhere = os.path.join(tmp, "shmkv.sock")
        rc, out, err = self.shmkv("get", "k", sock=nowhere)
        self.assertEqual(rc, 2)
        self.assertIn(nowhere.encode(), err)
        self.assertEqual(out, b"")
        for args in ([], ["frobnicate"], ["get"], ["set", "k"], ["get", "a", "b"],
                     ["del"], ["stats", "extra"], ["set", "k", "v", "--ttl"],
                     ["keys", "a", "b"], ["del", "--prefix"],
                     ["set", "k", "v", "--flags", "-1"], ["--bogus", "get", "k"]):
            rc, out, err = self.shmkv(*args, sock=nowhere)
            self.assertEqual(rc, 2, "%s: %s" % (args, err))
            self.assertNotEqual(err, b"", args)
        rc, out, _ = self.shmkv("--help")
        self.assertEqual(rc, 0)
        self.assertIn(b"usage: shmkv", out)


class InstallTest(ServerTest):
    """meson install into a temporary DESTDIR, then build against it."""

    def run_ok(self, argv, **kw):
        r = subprocess.run(argv, capture_output=True, timeout=120, **kw)
        self.assertEqual(r.returncode, 0, "%s:\n%s%s" % (
            " ".join(argv), r.stdout.decode(errors="replace"),
            r.stderr.decode(errors="replace")))
        return r.stdout.decode()

    def find(self, root, name):
        for d, _, files in os.walk(root):
            if name in files:
                return os.path.join(d, name)
        self.fail("meson install put no %s under %s" % (name, root))

    def test_install_and_build_the_example(self):
        build = os.environ.get("SHMKV_BUILD_ROOT")
        if not build:
            self.skipTest("SHMKV_BUILD_ROOT not set (run through meson test)")
        dest = tempfile.mkdtemp(prefix="shmkv-install-")
        self.addCleanup(shutil.rmtree, dest, True)
        self.run_ok(["meson", "install", "-C", build, "--no-rebuild",
                     "--destdir", dest])

        pc = self.find(dest, "shmkv.pc")
        header = self.find(dest, "shmkv.h")
        so = self.find(dest, "libshmkv.so")
        static = self.find(dest, "libshmkv.a")
        cli = self.find(dest, "shmkv")
        libdir = os.path.dirname(so)
        self.assertTrue(os.access(cli, os.X_OK))
        self.assertEqual(os.path.basename(os.path.dirname(header)), "include")

        # Only the public API leaves the shared library.
        syms = self.run_ok(["nm", "-D", "--defined-only", so]).split()[2::3]
        self.assertIn("shmkv_open", syms)
        self.assertIn("shmkv_get_many", syms)
        private = [s for s in syms if not s.startswith("shmkv_")
                   and not s.startswith("__") and s not in ("_init", "_fini")]
        self.assertEqual(private, [], "exported beyond shmkv_*")
        self.assertNotIn("shmkv_open_version", syms)  # the tests' back door
        static_syms = self.run_ok(["nm", "--defined-only", static])
        self.assertRegex(static_syms, r" T shmkv_open\n")
        prog, prog_static = self.build_the_example(dest, pc, static)
        self.run_the_example(dest, cli, libdir, prog, prog_static)
        self.check_man_pages(dest, cli)
        self.check_unit(dest)

    def build_the_example(self, dest, pc, static):
        """The README's example, built with what pkg-config says, against
        the shared library and statically; the two programs."""
        # pkg-config as a user would run it; the sysroot maps the prefix
        # recorded in shmkv.pc into the temporary DESTDIR.
        env = dict(os.environ, PKG_CONFIG_PATH=os.path.dirname(pc),
                   PKG_CONFIG_SYSROOT_DIR=dest)
        flags = shlex.split(self.run_ok(["pkg-config", "--cflags", "--libs",
                                         "shmkv"], env=env))
        self.assertIn("-lshmkv", flags)
        static_flags = shlex.split(self.run_ok(
            ["pkg-config", "--static", "--cflags", "--libs", "shmkv"], env=env))

        cc = shlex.split(os.environ.get("SHMKV_CC") or "cc")
        sanitize = os.environ.get("SHMKV_SANITIZE", "none")
        if sanitize and sanitize != "none":
            # The library was built instrumented; so must the program be.
            cc += ["-fsanitize=" + sanitize]
        src = os.path.join(dest, "prog.c")
        with open(src, "w") as f:
            f.write(readme_example())
        prog = os.path.join(dest, "prog")
        self.run_ok(cc + [src, "-o", prog] + flags)
        needed = self.run_ok(["readelf", "-d", prog])
        self.assertIn("libshmkv.so.0", needed)
        # And statically: the archive and what shmkv.pc says it needs.
        prog_static = os.path.join(dest, "prog-static")
        self.run_ok(cc + [src, "-o", prog_static, static] +
                    [f for f in static_flags if f != "-lshmkv"])
        self.assertNotIn("libshmkv", self.run_ok(["readelf", "-d", prog_static]))
        return prog, prog_static

    def run_the_example(self, dest, cli, libdir, prog, prog_static):
        """Both example programs, the installed CLI and the installed Python
        module against a server: what one sets, the others read."""
        srv = self.new_server()
        run_env = dict(os.environ, LD_LIBRARY_PATH=libdir)
        for p in (prog, prog_static):
            r = subprocess.run([p, srv.sock_path], capture_output=True,
                               timeout=20, env=run_env)
            self.assertEqual((r.returncode, r.stdout), (0, b"hello\n"), r.stderr)
        # The installed CLI reads what the example set.
        r = subprocess.run([cli, "-s", srv.sock_path, "get", "greeting"],
                           capture_output=True, timeout=20, env=run_env)
        self.assertEqual((r.returncode, r.stdout), (0, b"hello"), r.stderr)
        # And so does the installed Python module, from where python3 looks.
        module = None
        for d, _, files in os.walk(dest):
            module = module or next((os.path.join(d, f) for f in files
                                     if f.startswith("shmkv.cpython-")), None)
        self.assertIsNotNone(module, "meson install put no Python module")
        site = os.path.dirname(module)
        self.assertIn(site[len(dest):], self.python_paths())
        r = subprocess.run(["/usr/bin/python3", "-c",
                            "import sys, shmkv; print(shmkv.Client(sys.argv[1])"
                            ".get('greeting').decode())", srv.sock_path],
                           capture_output=True, timeout=20,
                           env=harness.python_module_env(run_env, PYTHONPATH=site))
        self.assertEqual((r.returncode, r.stdout), (0, b"hello\n"), r.stderr)
        self.assertStopsCleanly(srv)

    def python_paths(self):
        """sys.path of the system's python3 for an installed /usr/local."""
        r = subprocess.run(["/usr/bin/python3", "-c", "import sys; print(sys.path)"],
                           capture_output=True, timeout=20, text=True,
                           env={"PATH": os.environ.get("PATH", "")})
        return r.stdout

    def check_man_pages(self, dest, cli):
        """Both man pages render cleanly and name every option --help does."""
        server = harness.SERVER
        for prog, page in ((server, "shmkv-server.1"), (cli, "shmkv.1")):
            path = self.find(dest, page)
            self.assertIn(os.path.join("share", "man", "man1"), path)
            r = subprocess.run(["groff", "-man", "-ww", "-z", path],
                               capture_output=True, timeout=20)
            self.assertEqual((r.returncode, r.stderr), (0, b""), page)
            with open(path) as f:
                text = f.read().replace("\\-", "-").replace("\\fB", "") \
                    .replace("\\fR", "").replace("\\fI", "")
            self.assertNotIn("@VERSION@", text)
            helptext = subprocess.run([prog, "--help"], capture_output=True,
                                      timeout=20, text=True).stdout
            options = set(re.findall(r"(--[a-z][a-z-]+)", helptext))
            self.assertGreater(len(options), 5, helptext)
            for opt in options:
                self.assertIn(opt, text, "%s does not document %s" % (page, opt))

    def check_unit(self, dest):
        """shmkv.service's command line, with its settings, starts the server."""
        unit = self.find(dest, "shmkv.service")
        self.assertIn(os.path.join("lib", "systemd", "system"), unit)
        with open(unit) as f:
            lines = [l.strip() for l in f if l.strip() and not l.startswith("#")]
        env = dict(l[len("Environment="):].split("=", 1) for l in lines
                   if l.startswith("Environment="))
        for setting in ("SHMKV_USER", "SHMKV_PORT", "SHMKV_MEMORY_MB", "SHMKV_RUN_DIR"):
            self.assertIn(setting, env)
        self.assertIn("User=shmkv", lines)
        exec_start = next(l for l in lines if l.startswith("ExecStart="))
        argv = shlex.split(exec_start[len("ExecStart="):])
        self.assertTrue(argv[0].endswith("/bin/shmkv-server"), argv[0])
        self.assertTrue(os.access(dest + argv[0], os.X_OK), argv[0])
        # The unit's own defaults, but on a free port, in a private run
        # directory and with little memory: its flags must be the server's.
        run_dir = os.path.join(dest, "unit-run")
        # The test runs as root, where the unit's -u would need its user:
        # the unit's -u with root, which the server accepts as meant.
        env.update(SHMKV_PORT=str(harness.free_port()), SHMKV_RUN_DIR=run_dir,
                   SHMKV_USER="root" if os.geteuid() == 0 else env["SHMKV_USER"],
                   SHMKV_MEMORY_MB="64", SHMKV_OPTIONS="--huge-pages=off -t 2")
        words = []
        for a in argv[1:]:
            a = re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], a)
            words += env[a[1:]].split() if a.startswith("$") else [a]
        srv = harness.Server(start=False)
        self.addCleanup(srv.cleanup)
        srv.args = [dest + argv[0]] + words
        srv.port, srv.run_dir = int(env["SHMKV_PORT"]), run_dir
        srv.sock_path = os.path.join(run_dir, "shmkv.sock")
        srv.lock_path = os.path.join(run_dir, "shmkv.pid")
        srv.start()
        srv.wait_ready()
        self.assertStopsCleanly(srv)


if __name__ == "__main__":
    if not CLI or not os.access(CLI, os.X_OK):
        raise SystemExit("SHMKV_CLI must name the built shmkv command")
    harness.main()
