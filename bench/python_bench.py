#!/usr/bin/python3
"""
python_bench.py - Python programs reading shmkv: the shmkv module beside pymemcache

One Python process, one shmkv-server, the same keys (100-byte values):
  - shmkv.Client.get, read straight from shared memory
  - pymemcache's Client.get over the server's Unix socket
  - pymemcache's Client.get over TCP (127.0.0.1)
and loading 100k keys: shmkv.Client.set_many (pipelined) beside
pymemcache's set_many over the Unix socket.

Each measurement runs --repeat times, interleaved (a, b, c, a, b, c, ...),
and the median is reported with the spread, so that a noisy moment on the
machine hits every client alike.  Prints a Markdown section (or appends it
to --append FILE: bench/run.py uses that for `make bench`).

Usage: python3 bench/python_bench.py [--build DIR] [--duration S] [--repeat N]
Needs the build's server/shmkv-server and python/ module, and
python3-pymemcache.  The server it starts is stopped on every way out.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
KEYS = 10000
LOAD_KEYS = 100000
VALUE = b"v" * 100


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """shmkv-server on a free port and a private run directory."""

    def __init__(self, build, tmp):
        self.port = free_port()
        self.run_dir = os.path.join(tmp, "run")
        self.sock = os.path.join(self.run_dir, "shmkv.sock")
        self.argv = [os.path.join(build, "server", "shmkv-server"), "-p",
                     str(self.port), "--run-dir", self.run_dir, "-t", "2",
                     "-m", "256", "--huge-pages", "off"]
        if os.geteuid() == 0:
            self.argv += ["-u", "root"]  # as memcached: root only when told so
        self.log = open(os.path.join(tmp, "server.log"), "wb")
        self.proc = None

    def __enter__(self):
        self.proc = subprocess.Popen(self.argv, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("shmkv-server exited at start-up")
            try:
                with socket.create_connection(("127.0.0.1", self.port), 1):
                    pass
                if os.path.exists(self.sock):
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("shmkv-server did not answer within 30 s")
            time.sleep(0.05)

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return False


def gets_per_second(get, keys, duration):
    """Calls of get(key) per second over about duration seconds; every
    value is checked."""
    n, i, nkeys = 0, 0, len(keys)
    t0 = time.perf_counter()
    deadline = t0 + duration
    while True:
        for _ in range(1000):
            if get(keys[i]) != VALUE:
                raise RuntimeError("wrong value for %r" % keys[i])
            i = i + 1 if i + 1 < nkeys else 0
        n += 1000
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - t0)


def median_and_spread(xs):
    s = sorted(xs)
    return s[(len(s) - 1) // 2], s[0], s[-1]


def measure(args):
    sys.path.insert(0, os.path.join(args.build, "python"))
    import shmkv
    from pymemcache.client.base import Client as Pymemcache

    tmp = tempfile.mkdtemp(prefix="shmkv-pybench-")
    try:
        with Server(args.build, tmp) as srv:
            direct = shmkv.Client(srv.sock)
            unix = Pymemcache(srv.sock)
            tcp = Pymemcache(("127.0.0.1", srv.port))
            keys = [b"pykey:%d" % i for i in range(KEYS)]
            direct.set_many({k: VALUE for k in keys})
            gets = {"shmkv.Client.get (shared memory)": direct.get,
                    "pymemcache get, Unix socket": unix.get,
                    "pymemcache get, TCP 127.0.0.1": tcp.get}
            runs = {name: [] for name in gets}
            load = {"shmkv.Client.set_many": [], "pymemcache set_many, Unix socket": []}
            items = {b"load:%d" % i: VALUE for i in range(LOAD_KEYS)}
            for _ in range(args.repeat):
                for name, get in gets.items():
                    runs[name].append(gets_per_second(get, keys, args.duration))
                t = time.perf_counter()
                direct.set_many(items)
                load["shmkv.Client.set_many"].append(time.perf_counter() - t)
                t = time.perf_counter()
                failed = unix.set_many(items, noreply=False)
                load["pymemcache set_many, Unix socket"].append(time.perf_counter() - t)
                if failed:
                    raise RuntimeError("pymemcache did not store %d keys" % len(failed))
            direct.close()
            unix.close()
            tcp.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return runs, load


def report(args, runs, load):
    base = median_and_spread(runs["pymemcache get, TCP 127.0.0.1"])[0]
    L = ["## Python: the shmkv module beside pymemcache", "",
         "One Python process (`/usr/bin/python3`), one shmkv-server (`-t 2`), %d keys of "
         "100-byte values; every value read is checked. %d interleaved runs of %g s per "
         "client, median (and the range of the runs). Written by `bench/python_bench.py`."
         % (KEYS, args.repeat, args.duration), "",
         "| client | gets/s | range | × pymemcache TCP |", "| --- | ---: | --- | ---: |"]
    for name, xs in runs.items():
        m, lo, hi = median_and_spread(xs)
        L.append("| %s | %s | %s–%s | %.1f |" % (name, "{:,.0f}".format(m),
                                                 "{:,.0f}".format(lo), "{:,.0f}".format(hi),
                                                 m / base))
    L += ["", "Loading %d keys of 100 bytes in one call:" % LOAD_KEYS, "",
          "| client | seconds | range |", "| --- | ---: | --- |"]
    for name, xs in load.items():
        m, lo, hi = median_and_spread(xs)
        L.append("| %s | %.3f | %.3f–%.3f |" % (name, m, lo, hi))
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build-rel"),
                    help="meson build directory (default build-rel)")
    ap.add_argument("--duration", type=float, default=2.0, help="seconds per run")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved runs (median)")
    ap.add_argument("--append", help="append the section to this Markdown file")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("python_bench: stopped by SIGTERM"))
    runs, load = measure(args)
    text = report(args, runs, load)
    if args.append:
        with open(args.append, "a") as f:
            f.write("\n" + text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
