"""harness.py - start the real shmkv-server for end-to-end tests, and always stop it

Each test gets its own server: a port the kernel says is free, a fresh
temporary run directory, small memory (-t 2 -m 64 --huge-pages off).  The
server runs in a session of its own, so that whatever happens to the test
(an assertion, an exception, ^C) the cleanup can kill the supervisor and
every worker with one killpg, and remove the SysV shim a killed server
leaves behind.  Every Server is registered for cleanup the moment it is
created; main() runs the remaining cleanups in a finally.

Usage: python3 test_x.py PATH-TO-shmkv-server [unittest args]
(or SHMKV_SERVER=PATH in the environment).
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

SERVER = os.environ.get("SHMKV_SERVER", "")
PYTHON = "/usr/bin/python3"
_live = []
# As memcached, the server runs as root only when told so with -u.
AS_ROOT = ["-u", "root"] if os.geteuid() == 0 else []


def free_port():
    """A TCP port on 127.0.0.1 nobody listens on (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid):
    """PIDs of pid's child processes (the workers of a supervisor)."""
    out = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def status_field(pid, name):
    """A field of /proc/PID/status in kB (VmRSS, RssAnon, ...), or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pid):
    """User + system CPU time pid has used so far, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def recv_exact(sock, n, timeout=5.0):
    """Read exactly n bytes, or what came before EOF or the timeout."""
    sock.settimeout(timeout)
    buf = b""
    deadline = time.monotonic() + timeout
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            d = sock.recv(n - len(buf))
        except socket.timeout:
            break
        if not d:
            break
        buf += d
    return buf


def recv_until(sock, pattern, timeout=5.0):
    """Read until the bytes read fullmatch the compiled regex pattern."""
    buf = b""
    deadline = time.monotonic() + timeout
    while not pattern.fullmatch(buf):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            d = sock.recv(65536)
        except socket.timeout:
            break
        if not d:
            break
        buf += d
    return buf


MN_REPLY = re.compile(rb".*MN\r\n", re.S)


def replies_until_mn(sock, stream):
    """Each command's reply bytes, delimited by an mn sent after it."""
    out = []
    for c in stream:
        sock.sendall(c + b"mn\r\n")
        got = recv_until(sock, MN_REPLY, timeout=10)
        out.append(got[:-len(b"MN\r\n")] if got.endswith(b"MN\r\n") else got)
    return out


def recv_quiet(sock, wait=0.1):
    """Whatever arrives within wait seconds (b'' if nothing)."""
    sock.settimeout(wait)
    buf = b""
    try:
        while True:
            d = sock.recv(65536)
            if not d:
                break
            buf += d
    except socket.timeout:
        pass
    return buf


def is_eof(sock, timeout=3.0):
    """True if the peer closed the connection (reads EOF or reset)."""
    sock.settimeout(timeout)
    try:
        while True:
            d = sock.recv(65536)
            if not d:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


class Server:
    """One shmkv-server process tree, with its own port and run directory."""

    def __init__(self, *extra, workers=2, memory=64, port=None, run_dir=None,
                 start=True):
        self.port = free_port() if port is None else port
        self.tmp = tempfile.mkdtemp(prefix="shmkv-e2e-")
        self.run_dir = run_dir or os.path.join(self.tmp, "run")
        self.sock_path = os.path.join(self.run_dir, "shmkv.sock")
        self.lock_path = os.path.join(self.run_dir, "shmkv.pid")
        self.args = [SERVER, "-p", str(self.port), "--run-dir", self.run_dir,
                     "-t", str(workers), "-m", str(memory),
                     "--huge-pages", "off"] + AS_ROOT + list(extra)
        self.log_path = os.path.join(self.tmp, "server.log")
        self.proc = None
        self.returncode = None
        _live.append(self)
        if start:
            self.start()

    def start(self):
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdout=self.log,
                                     stderr=subprocess.STDOUT,
                                     start_new_session=True)

    @property
    def pid(self):
        return self.proc.pid

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def workers(self):
        return children(self.pid)

    def wait_ready(self, timeout=10.0, nworkers=None):
        """Until TCP and the Unix socket both answer (and, if given, that
        many workers run)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("server exited with %s during start-up:\n%s"
                                     % (self.proc.returncode, self.log_text()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), 1):
                    pass
                with socket.socket(socket.AF_UNIX) as u:
                    u.settimeout(1)
                    u.connect(self.sock_path)
                if nworkers is None or len(self.workers()) >= nworkers:
                    return self
            except OSError:
                pass
            time.sleep(0.02)
        raise AssertionError("server not ready after %.1f s:\n%s"
                             % (timeout, self.log_text()))

    def tcp(self, timeout=5.0):
        s = socket.create_connection(("127.0.0.1", self.port), timeout)
        s.settimeout(timeout)
        return s

    def unix(self, timeout=5.0):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.sock_path)
        return s

    def stop(self, timeout=15.0):
        """SIGTERM and wait; returns the exit status (killed on timeout)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError("server did not stop within %.0f s:\n%s"
                                     % (timeout, self.log_text()))
        self.returncode = self.proc.returncode
        return self.returncode

    def shim_key(self):
        try:
            with open(self.lock_path) as f:
                lines = f.read().split("\n")
            return lines[3].strip() if len(lines) > 3 and lines[3].strip() else None
        except OSError:
            return None

    def kill(self):
        """Kill the whole process tree and remove what it left."""
        if self.proc is None:
            return
        key = self.shim_key()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        # Orphaned workers live in the same session; give them a moment.
        time.sleep(0.05)
        if key:
            subprocess.run(["ipcrm", "-M", key], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
        elif self.proc is not None:
            # The supervisor is gone; orphans of its session may not be.
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if os.path.exists(self.lock_path):
                key = self.shim_key()
                if key:
                    subprocess.run(["ipcrm", "-M", key], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            self.log.close()
        except AttributeError:
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self in _live:
            _live.remove(self)


class ServerTest(unittest.TestCase):
    """A TestCase whose new_server() is always cleaned up."""

    def new_server(self, *extra, ready=True, **kw):
        srv = Server(*extra, **kw)
        self.addCleanup(srv.cleanup)
        if ready:
            srv.wait_ready()
        return srv

    def assertStopsCleanly(self, srv, worker_deaths=0):
        """Exit 0 on SIGTERM, socket and lock file removed, and no worker
        died (beyond those the test killed) nor tripped a sanitizer."""
        rc = srv.stop()
        log = srv.log_text()
        self.assertEqual(rc, 0, "exit status %s; log:\n%s" % (rc, log))
        for bad in ["Sanitizer", "runtime error:"]:
            self.assertNotIn(bad, log)
        deaths = len(re.findall(r"worker \d+ \(pid \d+\) .* restarting it", log))
        self.assertEqual(deaths, worker_deaths, log)
        self.assertFalse(os.path.exists(srv.sock_path), "socket left behind")
        self.assertFalse(os.path.exists(srv.lock_path), "lock file left behind")


def python_module_env(base=None, **extra):
    """The environment for a Python process that imports the shmkv module:
    in the sanitizer build (SHMKV_PYTHON_PRELOAD set, see meson.build) with
    ASan's runtime preloaded, which /usr/bin/python3 does not carry, and leak
    checks off, since the interpreter does not free what it holds at exit."""
    env = dict(os.environ if base is None else base, **extra)
    preload = os.environ.get("SHMKV_PYTHON_PRELOAD", "")
    if preload:
        env["LD_PRELOAD"] = preload
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":detect_leaks=0"
    return env


def cmd(line, data=None):
    """A command line, with its data block if any, as bytes on the wire."""
    b = line.encode() + b"\r\n"
    if data is not None:
        b += data + b"\r\n"
    return b


CAS_LINE = re.compile(rb"VALUE (\S+) (\d+) (\d+) (\d+)\r\n")


def main():
    global SERVER
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        SERVER = sys.argv.pop(1)
    if not SERVER or not os.access(SERVER, os.X_OK):
        sys.stderr.write("usage: %s PATH-TO-shmkv-server\n" % sys.argv[0])
        sys.exit(2)
    SERVER = os.path.abspath(SERVER)
    try:
        unittest.main(verbosity=2)
    finally:
        for srv in list(_live):
            srv.cleanup()
