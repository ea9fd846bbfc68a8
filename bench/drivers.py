"""
drivers.py - the load generators: shmkv-bench and redis-benchmark

Bench holds one run's settings (args), its temporary directory and the raw
output of every tool run (written to raw.json); its methods run shmkv-bench
or redis-benchmark against a started server and turn what they print into
points, the median of --repeat runs.  The server factories are here too, so
that a workload (and bench/cpu.py, bench/probe_bench.py) needs only a Bench.
"""

import json
import os
import subprocess

import servers
from points import failed, log, median, point
from servers import redis_info

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
        return servers.memcached(self.tmp, threads, memory, unix, tag)

    def shmkv(self, workers, memory, huge="try", tag=""):
        return servers.shmkv(self.tmp, self.server_bin, workers, memory, huge, tag)

    def redis(self, memory_mb, policy="noeviction"):
        return servers.redis(self.tmp, memory_mb, policy)
