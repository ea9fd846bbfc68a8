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
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import workloads
from drivers import Bench
from report import environment, write_chart, write_report
from points import log

# What bench/cpu.py, probe_bench.py and restart_bench.py reach as run.NAME.
from hugepages import huge_pages  # noqa: F401
from points import failed, point  # noqa: F401
from report import fmt_ops, fmt_ratio  # noqa: F401
from servers import Server, free_port, mc_stats, nullserver, talk  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


class Stop(Exception):
    """Raised by the signal handler so that every finally block runs."""


def on_signal(signum, _frame):
    raise Stop("signal %d" % signum)


def parse_args():
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
    return args


def check_tools(args, want):
    """Exit with a message if a tool or a binary the workloads need is missing."""
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


def run_workloads(b, args, want, tmp):
    """Every workload asked for, in order; (results, restarts, interrupted).
    A signal stops the run with what was measured so far kept."""
    res = {}
    restarts = None
    interrupted = False
    try:
        if want & {"a", "b", "c"}:
            res.update({k: v for k, v in workloads.run_network(b, want).items() if k in want})
        if "d" in want:
            res["d"] = workloads.run_direct(b)
            import probe_bench
            res["d_probe"] = probe_bench.run_probe(b)
        if "e" in want:
            res["e"] = workloads.run_memory(b)
        if "f" in want:
            res["f"] = workloads.run_huge(b)
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
    return res, restarts, interrupted


def write_results(args, want, tmp, res, restarts, interrupted):
    """The Markdown report and its chart, then (p) and (g)'s sections;
    (md path, png path, whether the chart was drawn, failed points)."""
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
            import restart_bench
            f.write(restart_bench.markdown(restarts, args.big_memory, args.big_keys,
                                           args.repeat))
        nfail += sum(1 for r in restarts if r.get("status") != "ok")
    return md, png, chart_ok, nfail


def main():
    args = parse_args()
    want = set(args.workloads)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    check_tools(args, want)
    os.makedirs(args.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="shmkv-bench-")
    t0 = time.monotonic()
    res, restarts, interrupted = run_workloads(Bench(args, tmp), args, want, tmp)
    md, png, chart_ok, nfail = write_results(args, want, tmp, res, restarts,
                                             interrupted)
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
