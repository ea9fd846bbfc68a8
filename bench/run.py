#!/usr/bin/python3
"""
run.py - `make bench`: shmkv-server beside memcached and Redis, same machine, same run

Starts memcached, Redis and shmkv-server on loopback (127.0.0.1 and Unix
sockets in a private temporary directory) with the same number of worker
threads or processes and the same memory, drives each with the same
workload, stops them, and writes bench/results/<date>.md (a table per
workload: system, ops/s, p50, p99, ratio to memcached) and a PNG chart of it
(bench/plot.gp, gnuplot).

Workloads:
  a  90% get / 10% set, 100-byte values, 100k keys, 50 connections, pipeline 1
     (memcached at -t 1 and -t 2; its best is the baseline)
  b  the same with pipeline 16
  c  100% get over a zipf 0.99 key space (50 connections, pipeline 1)
  d  direct gets through libshmkv from 1 and 2 processes (single shmkv_get and
     shmkv_get_many of 16), beside memcached over its Unix socket with as many
     client processes (single get and a 16-key multi-get); then, 1M keys,
     shmkv_get and shmkv_get_many beside the raw probe (bench/rawprobe.c:
     the same table shape in process memory) in one interleaved run, 1 and 2
     processes, 2 MiB and 4 KiB pages (bench/probe_bench.py)
  e  memory: fill each system with 32-byte keys and 100-byte values under the
     same limit (64 MiB), far more than fit; count the items each keeps
  f  direct gets on a 4 GiB segment holding ~3 GiB of items, with
     --huge-pages on and off (huge pages are reserved through
     /proc/sys/vm/nr_hugepages as root, and the old value is put back)
  p  Python: the shmkv module's Client.get beside pymemcache over the Unix
     socket and TCP, in one process (bench/python_bench.py, which appends
     its own section to the report)
  h  server CPU per request and throughput beside a do-nothing server
     (bench/nullserver.c, the kernel's limit): do-nothing, memcached and
     shmkv-server at -t 1 and -t 2, pipeline 1 and 16 (bench/cpu.py)

memcached and shmkv-server are driven by shmkv-bench (memcached's text
protocol; every reply checked).  Redis does not speak that protocol, so it is
driven by redis-benchmark with the same value size, pipeline, connection
count and client threads.  A point whose tool failed, or that saw errors,
wrong values or lost connections, is reported as FAILED with the reason,
never dropped.

Only the Python standard library is used.  Every server started here is
stopped again on the way out, on success, failure, Ctrl-C or SIGTERM alike.
"""

import argparse
import datetime
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


class Stop(Exception):
    """Raised by the signal handler so that every finally block runs."""


def on_signal(signum, _frame):
    raise Stop("signal %d" % signum)


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Servers


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

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                self.exit_status = self.proc.returncode
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.exit_status = self.proc.wait(timeout=20)
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


# --------------------------------------------------------------------------
# Points: one measurement each


def point(system, config, **kw):
    p = {"system": system, "config": config, "ops": None, "p50_us": None,
         "p99_us": None, "status": "ok", "note": ""}
    p.update(kw)
    return p


def median(runs):
    """The run with the median ops/s (the lower middle of an even count),
    noting the spread of all of them."""
    if len(runs) == 1:
        return runs[0]
    order = sorted(runs, key=lambda p: p["ops"])
    m = dict(order[(len(order) - 1) // 2])
    spread = "median of %d: %s-%s ops/s" % (len(runs), "{:,.0f}".format(order[0]["ops"]),
                                            "{:,.0f}".format(order[-1]["ops"]))
    m["note"] = spread + ("; " + m["note"] if m["note"] else "")
    return m


def failed(system, config, reason, **kw):
    log("FAILED: %s %s: %s" % (system, config, reason))
    return point(system, config, status="FAILED: " + reason, **kw)


class Bench:
    def __init__(self, args, tmp):
        self.a = args
        self.tmp = tmp
        self.tool = os.path.join(args.build, "bench", "shmkv-bench")
        self.server_bin = os.path.join(args.build, "server", "shmkv-server")
        self.raw = []   # every tool output, for the record

    # -- shmkv-bench -------------------------------------------------------

    def shmkv_bench(self, system, config, flags, timeout=None, repeat=None):
        """Run shmkv-bench --repeat times; the median point by ops/s, FAILED if
        any run failed.  Runs after the first skip the preload (the keys are
        there already)."""
        repeat = self.a.repeat if repeat is None else repeat
        runs = []
        for i in range(repeat):
            extra = ["--no-preload"] if i and "--no-preload" not in flags else []
            runs.append(self.shmkv_bench_once(system, config, flags + extra, timeout))
            if runs[-1]["status"] != "ok":
                return runs[-1]
        return median(runs)

    def shmkv_bench_once(self, system, config, flags, timeout=None):
        """Run shmkv-bench --json once; a point (FAILED on any error)."""
        argv = [self.tool, "--json", "--no-progress"] + flags
        log("%s / %s: %s" % (system, config, " ".join(argv[1:])))
        if timeout is None:
            timeout = self.a.duration * 4 + 300
        try:
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=timeout, text=True)
        except subprocess.TimeoutExpired:
            return failed(system, config, "shmkv-bench did not finish in %d s" % timeout)
        self.raw.append({"system": system, "config": config, "argv": argv,
                         "rc": r.returncode, "stdout": r.stdout, "stderr": r.stderr[-2000:]})
        try:
            j = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return failed(system, config, "shmkv-bench exit %d, no JSON report: %s" %
                          (r.returncode, r.stderr.strip()[-300:]))
        lat = j["latency_ns"]["get"] if j["ratio"].endswith(":0") else j["latency_ns"]["all"]
        p = point(system, config, ops=j["ops_per_sec"], p50_us=lat["p50"] / 1000.0,
                  p99_us=lat["p99"] / 1000.0, json=j)
        problems = []
        for what in ("errors", "wrong"):
            if j[what]:
                problems.append("%d %s" % (j[what], what))
            if j["preload"][what]:
                problems.append("preload: %d %s" % (j["preload"][what], what))
        if j["connections_lost"]:
            problems.append("%d %s lost" % (j["connections_lost"],
                                            "processes" if j["mode"] == "direct" else "connections"))
        if r.returncode != 0:
            problems.insert(0, "shmkv-bench exit status %d" % r.returncode)
        if j["ops"] == 0:
            problems.append("no operations")
        if problems:
            first = [l for l in r.stderr.splitlines() if l.startswith("shmkv-bench: ")]
            if first:   # the tool's first complaint, e.g. the server's error reply
                problems.append("first: " + first[0][len("shmkv-bench: "):][:160])
            p["status"] = "FAILED: " + ", ".join(problems)
            log("FAILED: %s %s: %s" % (system, config, p["status"]))
        if j["misses"]:
            p["note"] = "%.2f%% misses" % (100.0 * j["misses"] / max(1, j["gets"]))
        log("  -> %.0f ops/s, p50 %.2f us, p99 %.2f us %s" %
            (p["ops"], p["p50_us"], p["p99_us"], p["status"]))
        return p

    def net_flags(self, pipeline, ratio="9:1", dist="uniform"):
        return ["--threads", str(self.a.threads), "--connections", "50",
                "--pipeline", str(pipeline), "--ratio", ratio, "--keys", "100000",
                "--key-size", "32", "--value-size", "100", "--distribution", dist,
                "--duration", str(self.a.duration)]

    # -- redis-benchmark ---------------------------------------------------

    def redis_benchmark(self, addr, flags, extra=None):
        argv = ["redis-benchmark", "-h", addr[0], "-p", str(addr[1]), "--csv"] + flags
        if extra:
            argv += extra
        log("redis: " + " ".join(argv))
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=self.a.duration * 20 + 300)
        self.raw.append({"system": "redis", "argv": argv, "rc": r.returncode,
                         "stdout": r.stdout, "stderr": r.stderr[-2000:]})
        rows = {}
        header = None
        for line in r.stdout.splitlines():
            cells = [c.strip('"') for c in line.strip().split('","')]
            if not line.strip():
                continue
            if header is None:
                header = cells
                continue
            if len(cells) == len(header):
                rows[cells[0]] = dict(zip(header, cells))
        return r.returncode, rows, r.stderr.strip()

    def redis_points(self, srv, pipeline, tests, label, n):
        """redis-benchmark -t <tests>, --repeat times; the median point per test."""
        runs = [self.redis_points_once(srv, pipeline, tests, label, n)
                for _ in range(self.a.repeat)]
        out = []
        for i in range(len(tests)):
            pts = [r[i] for r in runs]
            bad = [p for p in pts if p["status"] != "ok"]
            out.append(bad[0] if bad else median(pts))
        return out

    def redis_points_once(self, srv, pipeline, tests, label, n):
        """redis-benchmark -t <tests>; one point per test (GET, SET)."""
        before = redis_info(srv.addr, "stats")
        flags = ["-t", ",".join(tests), "-d", "100", "-P", str(pipeline), "-c", "50",
                 "-n", str(n), "-r", "100000", "--threads", str(self.a.threads)]
        try:
            rc, rows, err = self.redis_benchmark(srv.addr, flags)
        except subprocess.TimeoutExpired:
            return [failed("redis", "%s %s" % (t.upper(), label), "redis-benchmark timed out")
                    for t in tests]
        after = redis_info(srv.addr, "stats")
        errs = int(after.get("total_error_replies", 0)) - int(before.get("total_error_replies", 0))
        pts = []
        for t in tests:
            name = t.upper()
            cfg = "%s %s" % (name, label)
            row = rows.get(name)
            if rc != 0 or row is None:
                pts.append(failed("redis", cfg, "redis-benchmark exit %d, no %s row: %s" %
                                  (rc, name, err[-300:])))
                continue
            p = point("redis", cfg, ops=float(row["rps"]),
                      p50_us=float(row["p50_latency_ms"]) * 1000.0,
                      p99_us=float(row["p99_latency_ms"]) * 1000.0)
            if errs:
                p["status"] = "FAILED: %d error replies during the run" % errs
            log("  -> redis %s: %.0f ops/s, p50 %.2f us, p99 %.2f us" %
                (cfg, p["ops"], p["p50_us"], p["p99_us"]))
            pts.append(p)
        return pts

    # -- servers -----------------------------------------------------------

    def memcached(self, threads, memory, unix=None, tag=""):
        name = "memcached -t %d%s" % (threads, tag)
        argv = ["memcached", "-u", "root", "-m", str(memory), "-t", str(threads), "-U", "0"]
        if unix:
            argv += ["-s", unix, "-a", "0700"]
            addr = unix
        else:
            port = free_port()
            argv += ["-p", str(port), "-l", "127.0.0.1"]
            addr = ("127.0.0.1", port)
        return Server(name, argv, addr, "memcached", self.tmp)

    def shmkv(self, workers, memory, huge="try", tag=""):
        port = free_port()
        rundir = os.path.join(self.tmp, "shmkv-%d" % port)
        argv = [self.server_bin, "-p", str(port), "-l", "127.0.0.1", "--run-dir", rundir,
                "-m", str(memory), "-t", str(workers), "--huge-pages", huge]
        if os.geteuid() == 0:
            argv += ["-u", "root"]  # as memcached: root only when told so
        s = Server("shmkv -t %d%s" % (workers, tag), argv, ("127.0.0.1", port), "shmkv",
                   self.tmp)
        s.sock = os.path.join(rundir, "shmkv.sock")
        return s

    def redis(self, memory_mb, policy="noeviction"):
        port = free_port()
        argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                "--maxmemory", "%dmb" % memory_mb, "--maxmemory-policy", policy,
                "--save", "", "--appendonly", "no", "--dir", self.tmp,
                "--unixsocket", "", "--daemonize", "no", "--protected-mode", "yes"]
        return Server("redis", argv, ("127.0.0.1", port), "redis", self.tmp)

    # -- workloads ---------------------------------------------------------

    def run_network(self, want):
        """a, b, c: one start per server configuration, then its workloads."""
        res = {"a": [], "b": [], "c": []}
        mem = self.a.memory
        runs = [("memcached", lambda: self.memcached(1, mem), "-t 1"),
                ("memcached", lambda: self.memcached(2, mem), "-t 2"),
                ("shmkv", lambda: self.shmkv(self.a.threads, mem), "-t %d" % self.a.threads)]
        if self.a.threads != 1:
            runs.append(("shmkv", lambda: self.shmkv(1, mem), "-t 1"))
        for system, make, cfg in runs:
            try:
                with make() as srv:
                    port = ["-p", str(srv.addr[1])]
                    if "a" in want:
                        res["a"].append(self.shmkv_bench(system, cfg + ", 9:1, pipeline 1",
                                                         port + self.net_flags(1)))
                    if "b" in want:
                        res["b"].append(self.shmkv_bench(system, cfg + ", 9:1, pipeline 16",
                                                         port + self.net_flags(16)))
                    if "c" in want:
                        res["c"].append(self.shmkv_bench(
                            system, cfg + ", get, zipf 0.99",
                            port + self.net_flags(1, "1:0", "zipf:0.99")))
            except (RuntimeError, OSError) as e:
                for w in want & {"a", "b", "c"}:
                    res[w].append(failed(system, cfg, str(e)))
        # Redis: single-threaded for commands (its I/O threads are off by default)
        try:
            with self.redis(mem) as srv:
                n1 = max(100000, 60000 * self.a.duration)
                n16 = max(500000, 400000 * self.a.duration)
                if "a" in want:
                    pts = self.redis_points(srv, 1, ["set", "get"], "100%, pipeline 1", n1)
                    res["a"] += pts + [self.mix(pts, "9:1 from the GET and SET runs")]
                if "b" in want:
                    pts = self.redis_points(srv, 16, ["set", "get"], "100%, pipeline 16", n16)
                    res["b"] += pts + [self.mix(pts, "9:1 from the GET and SET runs")]
                if "c" in want:
                    if "a" not in want and "b" not in want:
                        self.redis_points(srv, 16, ["set"], "fill", n16)
                    pts = self.redis_points(srv, 1, ["get"], "uniform (no zipf in redis-benchmark)", n1)
                    res["c"] += pts
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
            for w in want & {"a", "b", "c"}:
                res[w].append(failed("redis", "", str(e)))
        return res

    @staticmethod
    def mix(pts, label):
        """A 9:1 get/set rate from separate GET and SET runs: the time of 9
        gets and 1 set, i.e. 1 / (0.9/get + 0.1/set).  No percentiles."""
        by = {p["config"].split()[0]: p for p in pts}
        g, s = by.get("GET"), by.get("SET")
        if not g or not s or g["ops"] is None or s["ops"] is None:
            return failed("redis", "9:1 (derived)", "a GET or SET run failed")
        p = point("redis", label, ops=1.0 / (0.9 / g["ops"] + 0.1 / s["ops"]),
                  note="derived, not measured")
        if g["status"] != "ok" or s["status"] != "ok":
            p["status"] = "FAILED: a GET or SET run failed"
        return p

    def run_direct(self):
        """d: libshmkv direct gets beside memcached over its Unix socket."""
        res = []
        D = str(self.a.duration)
        common = ["--ratio", "1:0", "--keys", "100000", "--key-size", "32",
                  "--value-size", "100", "--duration", D]
        clients = [1, 2]
        # memcached over its Unix socket: one thread, one connection per client
        sock = os.path.join(self.tmp, "memcached.sock")
        try:
            with self.memcached(self.a.threads, self.a.memory, unix=sock, tag=" (unix)"):
                for n in clients:
                    res.append(self.shmkv_bench(
                        "memcached", "unix socket, get, %d client%s" % (n, "s" * (n > 1)),
                        ["--unix", sock, "--threads", str(n), "--connections", str(n),
                         "--pipeline", "1"] + common))
                for n in clients:
                    res.append(self.shmkv_bench(
                        "memcached", "unix socket, 16-key multiget, %d client%s" % (n, "s" * (n > 1)),
                        ["--unix", sock, "--threads", str(n), "--connections", str(n),
                         "--pipeline", "1", "--multiget", "16"] + common))
        except (RuntimeError, OSError) as e:
            res.append(failed("memcached", "unix socket", str(e)))
        try:
            with self.shmkv(self.a.threads, self.a.memory) as srv:
                for n in clients:
                    res.append(self.shmkv_bench(
                        "shmkv", "unix socket, get, %d client%s" % (n, "s" * (n > 1)),
                        ["--unix", srv.sock, "--threads", str(n), "--connections", str(n),
                         "--pipeline", "1"] + common))
                for n in clients:
                    res.append(self.shmkv_bench(
                        "shmkv", "direct shmkv_get, %d process%s" % (n, "es" * (n > 1)),
                        ["--direct", srv.sock, "-p", str(srv.addr[1]), "--procs", str(n)] + common))
                for n in clients:
                    res.append(self.shmkv_bench(
                        "shmkv", "direct shmkv_get_many 16, %d process%s" % (n, "es" * (n > 1)),
                        ["--direct", srv.sock, "-p", str(srv.addr[1]), "--procs", str(n),
                         "--batch", "16"] + common))
        except (RuntimeError, OSError) as e:
            res.append(failed("shmkv", "direct", str(e)))
        # the baseline of each row: memcached's Unix socket, same clients, same kind
        for p in res:
            n = p["config"].rsplit(",", 1)[-1].split()[0] if "," in p["config"] else "1"
            kind = "multiget" if ("multiget" in p["config"] or "get_many" in p["config"]) else "get"
            p["base"] = "memcached unix %s %s" % (kind, n)
            if p["system"] == "memcached":
                p["key"] = p["base"]
        return res

    def run_memory(self):
        """e: fill under the same limit, count what each keeps."""
        res = []
        mb = self.a.fill_memory
        keys = self.a.fill_keys
        fill = ["--threads", str(self.a.threads), "--connections", "50", "--pipeline", "1",
                "--ratio", "0:1", "--keys", str(keys), "--key-size", "32",
                "--value-size", "100", "--requests", "1000"]
        for system, make in (("memcached", lambda: self.memcached(self.a.threads, mb)),
                             ("shmkv", lambda: self.shmkv(self.a.threads, mb))):
            cfg = "-m %d, %d keys written" % (mb, keys)
            try:
                with make() as srv:
                    p = self.shmkv_bench(system, cfg, ["-p", str(srv.addr[1])] + fill,
                                         repeat=1)
                    st = mc_stats(srv.addr)
                    items = int(st["curr_items"])
                    q = point(system, cfg, items=items, status=p["status"],
                              limit=int(st["limit_maxbytes"]))
                    q["bytes_stat"] = int(st.get("bytes", 0))
                    if system == "shmkv" and items:
                        q["bytes_per_item"] = q["limit"] / items
                        q["overhead"] = q["limit"] / items - 132
                    log("  -> %s keeps %d items" % (system, items))
                    res.append(q)
            except (RuntimeError, OSError, KeyError, ValueError) as e:
                res.append(failed(system, cfg, str(e)))
        # Redis: SET <32-byte key> <100-byte value>, keys drawn from `keys`
        cfg = "maxmemory %dmb allkeys-lru, ~%d keys written" % (mb, keys)
        try:
            with self.redis(mb, "allkeys-lru") as srv:
                before = redis_info(srv.addr, "stats")
                key = "k" * 20 + "__rand_int__"      # 20 + 12 digits = 32 bytes
                val = "v" * 100
                rc, rows, err = self.redis_benchmark(
                    srv.addr, ["-P", "16", "-c", "50", "-n", str(2 * keys), "-r", str(keys),
                               "--threads", str(self.a.threads)], ["SET", key, val])
                after = redis_info(srv.addr, "stats")
                errs = int(after.get("total_error_replies", 0)) - \
                    int(before.get("total_error_replies", 0))
                items = int(redis_cmd(srv.addr, "DBSIZE").strip()[1:])
                mem = redis_info(srv.addr, "memory")
                q = point("redis", cfg, items=items, limit=mb << 20,
                          bytes_stat=int(mem.get("used_memory", 0)))
                if rc != 0 or not rows:
                    q["status"] = "FAILED: redis-benchmark exit %d: %s" % (rc, err[-300:])
                elif errs:
                    q["status"] = "FAILED: %d error replies" % errs
                log("  -> redis keeps %d items" % items)
                res.append(q)
        except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as e:
            res.append(failed("redis", cfg, str(e)))
        return res

    def run_huge(self):
        """f: a segment of several GiB, --huge-pages on and off."""
        res = []
        notes = []
        mb, keys = self.a.big_memory, self.a.big_keys
        flags = ["--ratio", "1:0", "--keys", str(keys), "--key-size", "32",
                 "--value-size", "100", "--duration", str(self.a.duration)]
        for huge in ("on", "off"):
            reservation = None
            try:
                if huge == "on":
                    reservation, why = reserve_huge_pages(mb)
                    if reservation is None:
                        notes.append(why)
                        for b in (1, 16):
                            res.append(failed("shmkv", "huge pages on, batch %d" % b,
                                              "not run: " + why))
                        continue
                    notes.append(why)
                try:
                    with self.shmkv(self.a.threads, mb, huge=huge, tag=" huge %s" % huge) as srv:
                        st = mc_stats(srv.addr)
                        page = int(st.get("page_size", 0))
                        got = "%s KiB pages" % (page // 1024) if page else "page size unknown"
                        for b in (1, 16):
                            cfg = "huge pages %s (%s), %s" % (
                                huge, got, "shmkv_get" if b == 1 else "shmkv_get_many 16")
                            extra = ["--batch", str(b)] if b > 1 else []
                            # the first run preloads every key over the network
                            pre = ["-p", str(srv.addr[1])] if b == 1 else ["--no-preload"]
                            p = self.shmkv_bench("shmkv", cfg,
                                                 ["--direct", srv.sock, "--procs", "1"] +
                                                 pre + extra + flags, timeout=1800)
                            p["huge"] = huge
                            p["batch"] = b
                            p["page_size"] = page
                            if huge == "on" and page and page <= 4096:
                                p["status"] = "FAILED: asked for huge pages, got %d-byte pages" % page
                            res.append(p)
                        st = mc_stats(srv.addr)
                        notes.append("huge pages %s: %s items in the segment (%s keys written), "
                                     "page size %s" % (huge, st.get("curr_items"), keys,
                                                       st.get("page_size")))
                except (RuntimeError, OSError) as e:
                    res.append(failed("shmkv", "huge pages %s" % huge, str(e)))
            finally:
                if reservation is not None:
                    restore_huge_pages(reservation)
        return res, notes


# --------------------------------------------------------------------------
# Huge pages: reserve for (f), always put the old value back


NR_HUGEPAGES = "/proc/sys/vm/nr_hugepages"


def meminfo(field):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def reserve_huge_pages(memory_mb):
    """Reserve enough default-size huge pages for a segment of memory_mb;
    returns (old value, message) or (None, why not)."""
    hps_kb = meminfo("Hugepagesize")
    if not hps_kb:
        return None, "the kernel offers no huge pages (no Hugepagesize in /proc/meminfo)"
    if os.geteuid() != 0:
        return None, "not root: cannot write %s to reserve huge pages" % NR_HUGEPAGES
    need = int(math.ceil((memory_mb * 1024 + 4096) / hps_kb)) + 4
    with open(NR_HUGEPAGES) as f:
        old = int(f.read())
    free = meminfo("HugePages_Free") or 0
    want = old + max(0, need - free)
    try:
        with open(NR_HUGEPAGES, "w") as f:
            f.write(str(want))
    except OSError as e:
        return None, "could not write %s: %s" % (NR_HUGEPAGES, e)
    free = meminfo("HugePages_Free") or 0
    if free < need:
        restore_huge_pages(old)
        return None, ("could reserve only %d of the %d huge pages of %d KiB needed "
                      "(vm.nr_hugepages %d -> %d asked); memory too fragmented or too small"
                      % (free, need, hps_kb, old, want))
    log("reserved huge pages: vm.nr_hugepages %d -> %d (%d free, %d needed)" %
        (old, want, free, need))
    return old, ("vm.nr_hugepages raised from %d to %d for the run (%d pages of %d KiB "
                 "needed), then put back" % (old, want, need, hps_kb))


def restore_huge_pages(old):
    try:
        with open(NR_HUGEPAGES, "w") as f:
            f.write(str(old))
        log("vm.nr_hugepages put back to %d" % old)
    except OSError as e:
        log("could not put vm.nr_hugepages back to %d: %s" % (old, e))


# --------------------------------------------------------------------------
# Report


def fmt_ops(v):
    return "—" if v is None else "{:,.0f}".format(v)


def fmt_us(v):
    if v is None:
        return "—"
    return "%.2f" % v if v < 10 else "%.0f" % v


def fmt_ratio(v):
    return "—" if v is None else "%.2f×" % v


def ok(p):
    return p is not None and p["status"] == "ok" and p.get("ops") is not None


def best(pts, system):
    c = [p for p in pts if p["system"] == system and ok(p) and "derived" not in p["note"]]
    return max(c, key=lambda p: p["ops"]) if c else None


def table(pts, base_of):
    out = ["| system | configuration | ops/s | p50 (µs) | p99 (µs) | ratio to memcached | status |",
           "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for p in pts:
        b = base_of(p)
        ratio = p["ops"] / b["ops"] if ok(p) and ok(b) else None
        status = p["status"]
        if p["note"]:
            status += " (%s)" % p["note"]
        out.append("| %s | %s | %s | %s | %s | %s | %s |" % (
            p["system"], p["config"], fmt_ops(p["ops"]), fmt_us(p["p50_us"]),
            fmt_us(p["p99_us"]), fmt_ratio(ratio), status))
    return out


def ratio_of(a, b):
    return a["ops"] / b["ops"] if ok(a) and ok(b) else None


def write_report(path, args, res, env, chart_name):
    L = []
    L.append("# shmkv beside memcached and Redis — %s" % env["date"])
    L.append("")
    L.append("Written by `make bench` (`bench/run.py`). Machine: %s, %d cores, %s, kernel %s. "
             "Client and servers share the cores." % (env["cpu"], env["cores"], env["mem"],
                                                      env["kernel"]))
    L.append("")
    L.append("Versions: %s; %s; %s. Build: `%s` (release, NDEBUG)." %
             (env["shmkv"], env["memcached"], env["redis"], args.build))
    L.append("")
    if args.repeat > 1:
        per = ("each point is the median of %d runs of %d s (the spread of the %d is in the "
               "status column), Redis's by requests (`-n`) sized to about as long" %
               (args.repeat, args.duration, args.repeat))
    else:
        per = ("one run of %d s per point, Redis's by requests (`-n`) sized to about as long" %
               args.duration)
    L.append("Settings: %s; servers with %d worker threads or processes "
             "(memcached `-t`, shmkv-server `-t`; Redis executes commands on one thread, "
             "its I/O threads are off by default, so it runs as it ships) and %d MiB "
             "(memcached `-m`, shmkv-server `-m`, Redis `--maxmemory`); clients with %d "
             "threads (`shmkv-bench --threads`, `redis-benchmark --threads`). "
             "Latencies are per request as the client sees it, queueing in the pipeline "
             "included. Each shmkv-bench point checks every reply; a point with errors, "
             "wrong values, lost connections or a non-zero exit status is marked FAILED." %
             (per, args.threads, args.memory, args.threads))
    L.append("")
    if args.note:
        L.append("Note: " + args.note)
        L.append("")
    # targets: (what, target text, measured value or None, target value, higher is better)
    T = []

    for w, title, extra in (
            ("a", "(a) 90% get / 10% set, 100-byte values, 100k keys, 50 connections, pipeline 1",
             "Redis: `redis-benchmark -t set,get -d 100 -P 1 -c 50 -r 100000` runs SETs then "
             "GETs (it cannot mix them); the 9:1 row combines the two rates "
             "(1 / (0.9/GET + 0.1/SET)) and is derived, not measured. Its keys are 16 bytes "
             "(`key:NNNNNNNNNNNN`); ours 32. Ratios are to memcached's best thread count."),
            ("b", "(b) the same with pipeline 16", "Redis as in (a), with `-P 16`."),
            ("c", "(c) 100% get over a zipf 0.99 key space, 50 connections, pipeline 1",
             "redis-benchmark has no zipf distribution: its row is uniform GETs, shown for "
             "scale only.")):
        pts = res.get(w)
        if pts is None:
            continue
        L.append("## " + title)
        L.append("")
        mb = best(pts, "memcached")
        L += table(pts, lambda p, mb=mb: mb)
        L.append("")
        L.append(extra)
        L.append("")
    if "a" in res:
        pts = res["a"]
        T.append(("(a) shmkv (best) / memcached (best), pipeline 1", "≥ 1.25×",
                  ratio_of(best(pts, "shmkv"), best(pts, "memcached")), 1.25, True))
    if "b" in res:
        pts = res["b"]
        sb = best(pts, "shmkv")
        T.append(("(b) shmkv (best) / memcached (best), pipeline 16", "≥ 1.8×",
                  ratio_of(sb, best(pts, "memcached")), 1.8, True))
        rg = [p for p in pts if p["system"] == "redis" and p["config"].startswith("GET")]
        if rg:
            T.append(("(b) shmkv 9:1 / Redis 100% GET, pipeline 16", "> 1× (ahead)",
                      ratio_of(sb, rg[0]), 1.0, True))
    if "d" in res:
        pts = res["d"]
        keyed = {p["key"]: p for p in pts if "key" in p}
        L.append("## (d) direct gets through libshmkv beside memcached over its Unix socket")
        L.append("")
        L += table(pts, lambda p: keyed.get(p["base"]))
        L.append("")
        L.append("Ratios are to memcached over its Unix socket with the same number of client "
                 "processes (one thread and one connection each, pipeline 1) and the same kind "
                 "of lookup: single gets to `get`, `shmkv_get_many` of 16 to a 16-key `get k1 "
                 "… k16`. ops/s counts keys. Latency: memcached rows and the shmkv unix-socket "
                 "rows per request (16 keys for a multiget); direct `shmkv_get` per call; "
                 "`shmkv_get_many` per key (batch time / 16). Direct timings include one "
                 "`clock_gettime` pair per call (~20 ns here).")
        L.append("")
        d1 = [p for p in pts if p["config"] == "direct shmkv_get, 1 process"]
        if d1:
            T.append(("(d) direct shmkv_get / memcached Unix-socket get, 1 process", "≥ 50×",
                      ratio_of(d1[0], keyed.get(d1[0]["base"])), 50.0, True))
            T.append(("(d) direct shmkv_get p99, 1 process", "< 1 µs",
                      d1[0]["p99_us"] if ok(d1[0]) else None, 1.0, False))
            T.append(("(d) direct shmkv_get, time per get (1 / ops/s), 1 process",
                      "≤ 1.5 × 141 ns = 212 ns", 1e9 / d1[0]["ops"] if ok(d1[0]) else None,
                      212.0, False, "ns"))
        dm = [p for p in pts if p["config"] == "direct shmkv_get_many 16, 1 process"]
        if dm:
            T.append(("(d) direct shmkv_get_many 16, time per key (1 / keys/s), 1 process",
                      "≤ 1.5 × 51 ns = 77 ns", 1e9 / dm[0]["ops"] if ok(dm[0]) else None,
                      77.0, False, "ns"))
    if "d_probe" in res:
        import probe_bench
        lines, goals = probe_bench.report(res["d_probe"])
        L += lines
        T += goals
    if "e" in res:
        pts = res["e"]
        L.append("## (e) memory: items kept under the same limit (32-byte keys, 100-byte values)")
        L.append("")
        L.append("| system | configuration | items kept | ratio to memcached | bytes per item | status |")
        L.append("| --- | --- | ---: | ---: | ---: | --- |")
        memc = [p for p in pts if p["system"] == "memcached" and p.get("items")]
        for p in pts:
            items = p.get("items")
            r = items / memc[0]["items"] if items and memc else None
            bpi = ("%.1f (overhead %.1f beyond 132)" % (p["bytes_per_item"], p["overhead"])
                   if "bytes_per_item" in p else
                   ("%.1f" % (p["limit"] / items) if items else "—"))
            L.append("| %s | %s | %s | %s | %s | %s |" % (
                p["system"], p["config"], "{:,}".format(items) if items is not None else "—",
                fmt_ratio(r), bpi, p["status"]))
        L.append("")
        L.append("Bytes per item: the memory limit over the items kept (shmkv: `limit_maxbytes / "
                 "curr_items`, and that minus the 132 bytes of key and value). The limits do not "
                 "bound the same things: memcached's `-m` is item (slab) memory only, its hash "
                 "table comes on top; shmkv's `-m` bounds buckets and items together; Redis's "
                 "`maxmemory` counts everything it allocates, its own start-up memory included.")
        L.append("")
        sh = [p for p in pts if p["system"] == "shmkv" and p.get("items")]
        if sh and memc:
            T.append(("(e) shmkv items / memcached items, same memory", "≥ 1.2×",
                      sh[0]["items"] / memc[0]["items"], 1.2, True))
    if "f" in res:
        pts, notes = res["f"]
        L.append("## (f) direct gets on a %d MiB segment (%d keys of 32 + 100 bytes), huge pages on and off"
                 % (args.big_memory, args.big_keys))
        L.append("")
        offs = {p.get("batch"): p for p in pts if p.get("huge") == "off"}
        out = ["| system | configuration | ops/s | p50 (µs) | p99 (µs) | on / off | status |",
               "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
        for p in pts:
            r = ratio_of(p, offs.get(p.get("batch"))) if p.get("huge") == "on" else None
            st = p["status"] + (" (%s)" % p["note"] if p["note"] else "")
            out.append("| %s | %s | %s | %s | %s | %s | %s |" % (
                p["system"], p["config"], fmt_ops(p["ops"]), fmt_us(p["p50_us"]),
                fmt_us(p["p99_us"]), fmt_ratio(r), st))
        L += out
        L.append("")
        L.append("One process; memcached has no counterpart here. The first run preloads every "
                 "key over the network, the second reads the same keys. "
                 + " ".join(n.rstrip(".") + "." for n in notes))
        L.append("")
        ons = [p for p in pts if p.get("huge") == "on" and p.get("batch") == 1]
        if ons:
            T.append(("(f) huge pages on / off, shmkv_get", "13-19% faster (≥ 1.13×)",
                      ratio_of(ons[0], offs.get(1)), 1.13, True))
            T.append(("(f) huge pages on, shmkv_get, time per get (1 / ops/s)",
                      "≤ 1.5 × 120 ns = 180 ns", 1e9 / ons[0]["ops"] if ok(ons[0]) else None,
                      180.0, False, "ns"))
    if "h" in res:
        import cpu
        L += cpu.report(res["h"], args.repeat)
    L.append("## Against the performance goals")
    L.append("")
    L.append("| what | target | measured | verdict |")
    L.append("| --- | --- | ---: | --- |")
    for name, target, v, t, higher, *unit in T:
        if v is None:
            shown, say = "—", "not measured (a point failed)"
        elif higher:
            shown = "%.2f×" % v
            say = "meets it" if v >= t else "short by %.0f%%" % (100.0 * (1 - v / t))
        else:
            shown = {"ns": "%.0f ns", "x": "%.2f×"}.get(unit[0] if unit else "", "%.2f µs") % v
            say = "meets it" if v <= t else "%.0f%% over (%.1f× the target)" % (
                100.0 * (v / t - 1), v / t)
        L.append("| %s | %s | %s | %s |" % (name, target, shown, say))
    L.append("")
    L.append("![chart](%s)" % chart_name)
    L.append("")
    with open(path, "w") as f:
        f.write("\n".join(L))


def gp_str(s):
    return "'" + s.replace("'", "''") + "'"


SYSTEM_COLOR = {"memcached": 0x4a7fb5, "redis": 0xc0504d, "shmkv": 0x5a9e4b}


def write_chart(res, datafile, varsfile, png):
    """One panel per workload; bars of ops/s (items for (e))."""
    panels = []
    for w, title in (("a", "(a) 9:1, pipeline 1: thousand ops/s"), ("b", "(b) 9:1, pipeline 16: thousand ops/s"),
                     ("c", "(c) get, zipf 0.99: thousand ops/s"), ("d", "(d) 1 client: thousand keys/s (log scale)"),
                     ("e", "(e) thousand items kept in the same memory"), ("f", "(f) direct, big segment: thousand gets/s")):
        if w not in res:
            continue
        pts = res[w][0] if w == "f" else res[w]
        rows = []
        for p in pts:
            if w == "d" and not p["config"].endswith(" 1 client") and \
                    not p["config"].endswith(" 1 process"):
                continue
            label = "%s %s" % (p["system"], p["config"])
            label = (label.replace(", 9:1, pipeline 16", "").replace(", 9:1, pipeline 1", "")
                     .replace(", get, zipf 0.99", "").replace(", 1 client", "")
                     .replace(", 1 process", "").replace("100%, pipeline 16", "")
                     .replace("100%, pipeline 1", "").replace("9:1 from the GET and SET runs", "9:1 (derived)")
                     .replace("unix socket, ", "unix ").replace("16-key multiget", "multiget 16")
                     .replace("direct shmkv_get_many 16", "direct get_many 16")
                     .replace("uniform (no zipf in redis-benchmark)", "uniform"))
            if w == "e":
                label = p["system"]
                value = p.get("items") or 0
            elif w == "f":
                label = "%s, %s" % ("huge on" if p.get("huge") == "on" else "huge off",
                                    "get" if p.get("batch") == 1 else "get_many 16")
                value = p["ops"] if ok(p) else 0
            else:
                value = p["ops"] if ok(p) else 0
            if p["status"] != "ok":
                label += " FAILED"
            rows.append((label.strip(), value, SYSTEM_COLOR.get(p["system"], 0)))
        panels.append((title, w == "d", rows))
    with open(datafile, "w") as f:
        for i, (_t, _log, rows) in enumerate(panels):
            if i:
                f.write("\n\n")
            for label, value, color in rows:
                f.write('"%s" %.1f %d\n' % (label.replace('"', "'"), max(value, 0) / 1000.0,
                                             color))
    with open(varsfile, "w") as f:
        f.write("npanels = %d\n" % len(panels))
        for i, (t, lg, rows) in enumerate(panels):
            f.write("title%d = %s\nlog%d = %d\n" % (i, gp_str(t), i, 1 if lg else 0))
        f.write("datafile = %s\noutfile = %s\n" % (gp_str(datafile), gp_str(png)))
    r = subprocess.run(["gnuplot", "-e", "varsfile=%s" % gp_str(varsfile),
                        os.path.join(HERE, "plot.gp")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        log("gnuplot failed: " + r.stderr.strip()[-500:])
        return False
    return True


def environment(args):
    def out(argv):
        try:
            return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, timeout=10).stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "?"
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"date": args.date, "cpu": cpu, "cores": os.cpu_count() or 0,
            "mem": "%d GiB RAM" % round((meminfo("MemTotal") or 0) / 1048576),
            "kernel": platform.release(),
            "shmkv": out([os.path.join(args.build, "server", "shmkv-server"), "--version"]),
            "memcached": out(["memcached", "-V"]),
            "redis": " ".join(out(["redis-server", "--version"]).split()[:3])}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build-rel"),
                    help="meson build dir with shmkv-server and shmkv-bench (default build-rel)")
    ap.add_argument("--out", default=os.path.join(HERE, "results"), help="results dir")
    ap.add_argument("--date", default=datetime.date.today().isoformat())
    ap.add_argument("--duration", type=int, default=3, help="seconds per run (default 3)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs per point; the point is their median (default 3)")
    ap.add_argument("--threads", type=int, default=2,
                    help="server workers/threads and client threads (default 2)")
    ap.add_argument("--memory", type=int, default=1024, help="MiB per server (default 1024)")
    ap.add_argument("--fill-memory", type=int, default=64, help="MiB for (e) (default 64)")
    ap.add_argument("--fill-keys", type=int, default=1500000,
                    help="distinct keys written in (e) (default 1500000)")
    ap.add_argument("--big-memory", type=int, default=4096, help="MiB for (f) (default 4096)")
    ap.add_argument("--big-keys", type=int, default=19000000,
                    help="keys in (f) (default 19000000, ~3 GiB of items)")
    ap.add_argument("--workloads", default="abcdefghp", help="which of a-h and p to run (default all)")
    ap.add_argument("--note", default="", help="a line to put at the top of the results")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)
    want = set(args.workloads)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    tools = ["memcached"]
    if want & set("abce"):
        tools += ["redis-server", "redis-benchmark"]
    if want & set("abcdef"):   # (g) has no chart panel
        tools.append("gnuplot")
    for tool in tools:
        if shutil.which(tool) is None:
            sys.exit("bench: %s is not installed (make bench installs it)" % tool)
    for exe in ("bench/shmkv-bench", "server/shmkv-server", "bench/shmkv-rawprobe"):
        if not os.access(os.path.join(args.build, exe), os.X_OK):
            sys.exit("bench: %s/%s is missing: build it first" % (args.build, exe))

    os.makedirs(args.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="shmkv-bench-")
    t0 = time.monotonic()
    res = {}
    restarts = None
    interrupted = False
    b = Bench(args, tmp)
    try:
        if want & {"a", "b", "c"}:
            res.update({k: v for k, v in b.run_network(want).items() if k in want})
        if "d" in want:
            res["d"] = b.run_direct()
            import probe_bench
            res["d_probe"] = probe_bench.run_probe(b)
        if "e" in want:
            res["e"] = b.run_memory()
        if "f" in want:
            res["f"] = b.run_huge()
        if "g" in want:  # restarts: bench/restart_bench.py, its own table
            import restart_bench
            restarts = restart_bench.measure(args.build, tmp, args.big_memory,
                                             args.big_keys, args.repeat, args.threads)
        if "h" in want:
            import cpu
            res["h"] = cpu.run_cpu(b, args.repeat)
    except Stop as e:
        interrupted = True
        log("stopped by %s; writing what was measured" % e)
        args.note = (args.note + " " if args.note else "") + \
            "The run was interrupted (%s): workloads after that point are missing." % e
    finally:
        with open(os.path.join(tmp, "raw.json"), "w") as f:
            json.dump(b.raw, f)
    # neither an interrupted run nor one of only some workloads overwrites
    # a complete one of the same day
    partial = "" if want >= set("abcdefghp") else "." + "".join(sorted(want))
    stem = args.date + partial + (".interrupted" if interrupted else "")
    md = os.path.join(args.out, "%s.md" % stem)
    png = os.path.join(args.out, "%s.png" % stem)
    env = environment(args)
    chart_ok = want & set("abcdef") and write_chart(
        res, os.path.join(tmp, "chart.dat"), os.path.join(tmp, "chart.gp"), png)
    write_report(md, args, res, env, os.path.basename(png) if chart_ok else "(chart failed)")
    nfail = sum(1 for w, v in res.items() for p in (v[0] if w == "f" else v)
                if p["status"] != "ok")
    if "p" in want and not interrupted:
        nfail += subprocess.call([sys.executable, os.path.join(HERE, "python_bench.py"),
                                  "--build", args.build, "--append", md,
                                  "--duration", str(args.duration),
                                  "--repeat", str(args.repeat)],
                                 stdout=subprocess.DEVNULL) != 0
    if restarts is not None:
        with open(md, "a") as f:
            f.write(restart_bench.markdown(restarts, args.big_memory, args.big_keys,
                                           args.repeat))
        nfail += sum(1 for r in restarts if r.get("status") != "ok")
    log("wrote %s%s in %.0f s; %d failed point(s)" %
        (md, " and " + png if chart_ok else "", time.monotonic() - t0, nfail))
    with open(md) as f:
        print(f.read())
    if nfail or interrupted:
        log("kept %s (server logs, raw.json)" % tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if nfail or interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
