"""
servers.py - the servers `make bench` measures: started, waited for, stopped

A Server is one process (memcached, Redis, shmkv-server or the do-nothing
server) started on loopback, waited for until it answers, and stopped with
SIGTERM (SIGKILL if it lingers) on the way out, whatever happened.  The
small wire helpers here (talk, mc_stats, redis_cmd, redis_info) are what
the benchmarks use to ask a server about itself.
"""

import os
import signal
import socket
import subprocess
import time

from points import log

def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def talk(addr, payload, until, timeout=5.0):
    """Send payload to addr ((host, port) or a Unix path), read until the
    reply ends with one of `until` (bytes); return the reply."""
    fam = socket.AF_UNIX if isinstance(addr, str) else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(addr)
        s.sendall(payload)
        buf = b""
        while not any(buf.endswith(u) for u in until):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        return buf


def mc_stats(addr, sub=""):
    cmd = ("stats %s" % sub).strip().encode() + b"\r\n"
    out = {}
    for line in talk(addr, cmd, (b"END\r\n",)).decode().splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == "STAT":
            out[parts[1]] = parts[2]
    return out


def redis_cmd(addr, *args):
    req = b"*%d\r\n" % len(args)
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        req += b"$%d\r\n%s\r\n" % (len(a), a)
    return talk(addr, req, (b"\r\n",))


def redis_info(addr, section):
    """INFO <section> as a dict (a bulk reply: read all of it)."""
    req = b"*2\r\n$4\r\nINFO\r\n$%d\r\n%s\r\n" % (len(section), section.encode())
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(addr)
        s.sendall(req)
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            head, sep, body = buf.partition(b"\r\n")
            if sep and head.startswith(b"$") and len(body) >= int(head[1:]) + 2:
                break
    out = {}
    for line in buf.partition(b"\r\n")[2].decode(errors="replace").splitlines():
        if ":" in line and not line.startswith("#"):
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


class Server:
    """One server process: started, waited for until it answers, stopped."""

    def __init__(self, name, argv, addr, kind, tmp):
        self.name, self.argv, self.addr, self.kind = name, argv, addr, kind
        self.logpath = os.path.join(tmp, "%s.log" % name.replace(" ", "_"))
        self.proc = None
        self.exit_status = None

    def ping(self):
        if self.kind == "redis":
            return redis_cmd(self.addr, "PING").startswith(b"+PONG")
        return talk(self.addr, b"version\r\n", (b"\r\n",)).startswith(b"VERSION")

    def log_tail(self, n=3):
        try:
            with open(self.logpath, errors="replace") as f:
                lines = [l.strip() for l in f if l.strip()]
            return " | ".join(lines[-n:])
        except OSError:
            return ""

    def start(self, timeout=60.0):
        log("starting %s: %s" % (self.name, " ".join(self.argv)))
        logf = open(self.logpath, "ab")
        try:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=subprocess.STDOUT)
        finally:
            logf.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with status %d at start-up: %s" %
                                   (self.name, self.proc.returncode, self.log_tail()))
            try:
                if self.ping():
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("%s did not answer within %.0f s: %s" %
                                   (self.name, timeout, self.log_tail()))
            time.sleep(0.05)

    def stop(self, timeout=20.0):
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                self.exit_status = self.proc.returncode
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.exit_status = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log("%s did not stop on SIGTERM; killing it" % self.name)
            self.proc.kill()
            self.exit_status = self.proc.wait()
        log("stopped %s (exit status %s)" % (self.name, self.exit_status))

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()
        return False



def memcached(tmp, threads, memory, unix=None, tag=""):
    """memcached with `threads` threads and `memory` MiB, on a free loopback
    port or, given `unix`, on that Unix socket."""
    name = "memcached -t %d%s" % (threads, tag)
    argv = ["memcached", "-u", "root", "-m", str(memory), "-t", str(threads), "-U", "0"]
    if unix:
        argv += ["-s", unix, "-a", "0700"]
        addr = unix
    else:
        port = free_port()
        argv += ["-p", str(port), "-l", "127.0.0.1"]
        addr = ("127.0.0.1", port)
    return Server(name, argv, addr, "memcached", tmp)


def shmkv(tmp, server_bin, workers, memory, huge="try", tag=""):
    """shmkv-server with its run directory under tmp; .sock is its Unix socket."""
    port = free_port()
    rundir = os.path.join(tmp, "shmkv-%d" % port)
    argv = [server_bin, "-p", str(port), "-l", "127.0.0.1", "--run-dir", rundir,
            "-m", str(memory), "-t", str(workers), "--huge-pages", huge]
    if os.geteuid() == 0:
        argv += ["-u", "root"]  # as memcached: root only when told so
    s = Server("shmkv -t %d%s" % (workers, tag), argv, ("127.0.0.1", port), "shmkv",
               tmp)
    s.sock = os.path.join(rundir, "shmkv.sock")
    return s


def nullserver(tmp, build, threads):
    """The do-nothing server (bench/nullserver.c) of build, on a free
    loopback port; it answers `version` as memcached does."""
    port = free_port()
    argv = [os.path.join(build, "bench", "shmkv-nullserver"), "-p", str(port),
            "-l", "127.0.0.1", "-t", str(threads)]
    return Server("do-nothing -t %d" % threads, argv, ("127.0.0.1", port),
                  "memcached", tmp)


def redis(tmp, memory_mb, policy="noeviction"):
    port = free_port()
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
            "--maxmemory", "%dmb" % memory_mb, "--maxmemory-policy", policy,
            "--save", "", "--appendonly", "no", "--dir", tmp,
            "--unixsocket", "", "--daemonize", "no", "--protected-mode", "yes"]
    return Server("redis", argv, ("127.0.0.1", port), "redis", tmp)

