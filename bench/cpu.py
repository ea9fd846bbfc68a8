#!/usr/bin/env python3
"""cpu.py - server CPU per request beside a do-nothing server (workload h)

Throughput at pipeline depth 1 on loopback is bounded by the kernel: every
request costs a read, a write and a wake-up whatever the server does.
shmkv-nullserver (bench/nullserver.c) pays exactly that and nothing more, so
its figures are the limit.  For each server configuration -- the
do-nothing server, memcached -t 1 and -t 2, shmkv-server -t 1 and -t 2 --
and each depth (1 and 16) this runs shmkv-bench (50 connections, 9:1
get/set, 100-byte values) and reads the user+system CPU time of every
server process from /proc before and after the run: CPU per request is
that difference over the requests answered.  The configurations are
interleaved (one run of each, then the next round, which starts one
configuration later) and each figure is the median of the rounds, so a
neighbour's burst on a shared machine lands on one run of every
configuration rather than on all runs of one.

Throughput swings more than CPU does on a VM (the host's steal time moves
from round to round), so each depth's headline is also taken round by
round: shmkv's best -t over memcached's best -t and over the do-nothing
server's, within the same round, with the median of those ratios and a 95%
distribution-free interval for it.  shmkv competes on one kind of page (2
MiB where they can be reserved), so that each system's best is a best of
two configurations.

Run by run.py (workload h) or on its own:
    python3 bench/cpu.py --build build-rel [--rounds 5] [--duration 3]
        [--depths 1,16] [--huge-only]
"""
import argparse
import math
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run  # noqa: E402  (the Server class, free_port, shmkv_bench runner)

CLK_TCK = os.sysconf("SC_CLK_TCK")
DEPTHS = (1, 16)
SYSTEMS = ("shmkv", "memcached", "do-nothing")


def proc_cpu_seconds(pid):
    """utime + stime of pid (all its threads), 0 if it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # fields[0] is the state (field 3); utime and stime are fields 14, 15
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children(pid):
    """The PIDs whose parent is pid (shmkv-server's workers)."""
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                ppid = int(f.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            kids.append(int(name))
    return kids


def server_cpu(pid):
    """CPU seconds of a server: the process and its children."""
    return sum(proc_cpu_seconds(p) for p in [pid] + children(pid))


def configurations(b, huge):
    """Every server to measure; with huge (pages reserved), shmkv also on
    2 MiB pages, as it runs where they are reserved (and only on them with
    --huge-only)."""
    mem = b.a.memory
    confs = [("do-nothing", "-t 1", lambda: run.nullserver(b.tmp, b.a.build, 1)),
             ("do-nothing", "-t 2", lambda: run.nullserver(b.tmp, b.a.build, 2)),
             ("memcached", "-t 1", lambda: b.memcached(1, mem)),
             ("memcached", "-t 2", lambda: b.memcached(2, mem)),
             ("shmkv", "-t 1 (4 KiB pages)", lambda: b.shmkv(1, mem, huge="off")),
             ("shmkv", "-t 2 (4 KiB pages)", lambda: b.shmkv(2, mem, huge="off"))]
    if huge:
        if getattr(b.a, "huge_only", False):
            confs = [c for c in confs if c[0] != "shmkv"]
        confs += [("shmkv", "-t 1 (2 MiB pages)", lambda: b.shmkv(1, mem, huge="on")),
                  ("shmkv", "-t 2 (2 MiB pages)", lambda: b.shmkv(2, mem, huge="on"))]
    return confs


def measure_once(b, srv, system, config, depth):
    """One shmkv-bench run; a point with cpu_us_per_req."""
    flags = ["-p", str(srv.addr[1]), "--no-preload"] + b.net_flags(depth)
    before = server_cpu(srv.proc.pid)
    p = b.shmkv_bench_once(system, config, flags)
    spent = server_cpu(srv.proc.pid) - before
    if p["status"] == "ok":
        ops = p["json"]["gets"] + p["json"]["sets"]
        p["cpu_us_per_req"] = spent * 1e6 / ops if ops else None
        run.log("  -> %s %s: %.0f ops/s, %.2f us CPU per request" %
                (system, config, p["ops"], p["cpu_us_per_req"] or 0))
    return p


def run_cpu(b, rounds, depths=DEPTHS):
    """Every configuration at both depths, interleaved; medians per cell.
    As root, 2 MiB pages are reserved for the run (and given back) so that
    shmkv is measured on them too."""
    with run.huge_pages(b.a.memory * 2) as (huge, why):
        if not huge:
            run.log("cpu: shmkv on 4 KiB pages only: " + why)
        return run_rounds(b, rounds, huge, depths)


def run_rounds(b, rounds, huge, depths):
    """Points per cell (medians) and, per depth, the round-by-round
    ratios of each system's best configuration.  cells[(system, tflag,
    depth)][round] is one run, so that a start that failed after some of
    its depths were measured shifts no later round."""
    cells = {}
    for r in range(rounds):
        confs = configurations(b, huge)
        # Each round starts one configuration later, so that no server
        # always runs right after the same other one or at the same place
        # in a round.
        confs = confs[r % len(confs):] + confs[:r % len(confs)]
        for system, tflag, make in confs:
            try:
                with make() as srv:
                    # The keys are stored once per start, outside the runs.
                    warm = ["-p", str(srv.addr[1])] + b.net_flags(1)
                    warm[warm.index("--duration") + 1] = "1"
                    b.shmkv_bench_once(system, tflag + ", preload", warm)
                    for depth in depths:
                        config = "%s, 9:1, pipeline %d" % (tflag, depth)
                        cells.setdefault((system, tflag, depth), {})[r] = \
                            measure_once(b, srv, system, config, depth)
            except (RuntimeError, OSError) as e:
                for depth in depths:
                    cells.setdefault((system, tflag, depth), {}).setdefault(
                        r, run.failed(system, tflag, str(e)))
        run.log("cpu: round %d of %d done" % (r + 1, rounds))
    pts = [summarise(k, list(v.values())) for k, v in cells.items()]
    for depth in depths:
        pts.append(paired(cells, depth, rounds))
    return pts


def like_for_like(system, tflag, huge):
    """Whether a configuration competes for its system's best: shmkv's best
    is taken over its -t on one kind of page (2 MiB when reserved), as the
    others' is over their two -t; a best of four noisy runs against a best
    of two would favour shmkv by the noise alone."""
    return system != "shmkv" or not huge or "2 MiB" in tflag


def paired(cells, depth, rounds):
    """Round by round (cells as run_rounds keeps them), shmkv's best ops/s over memcached's and over the
    do-nothing server's best in that same round.  The VM's speed drifts
    between rounds (memory latency moved 10% in an afternoon) and a ratio
    taken within one round cancels what the three servers share of that
    drift, where a ratio of medians taken over all rounds does not."""
    huge = any("2 MiB" in tflag for (_, tflag, _) in cells)
    by_round = []
    for r in range(rounds):
        top = {}
        for (system, tflag, d), runs in cells.items():
            p = runs.get(r)
            if d != depth or p is None or p["status"] != "ok" or \
                    not like_for_like(system, tflag, huge):
                continue
            top[system] = max(top.get(system, 0), p["ops"])
        if all(top.get(x) for x in SYSTEMS):
            by_round.append((top["shmkv"] / top["memcached"],
                             top["shmkv"] / top["do-nothing"],
                             top["memcached"] / top["do-nothing"]))
    return {"system": "paired", "depth": depth, "status": "ok",
            "vs_memcached": [r[0] for r in by_round],
            "vs_nothing": [r[1] for r in by_round],
            "memcached_vs_nothing": [r[2] for r in by_round]}


def median_of(values):
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2.0


def summarise(key, runs):
    system, tflag, depth = key
    bad = [p for p in runs if p["status"] != "ok"]
    good = [q for q in runs if q["status"] == "ok"]
    ops = [q["ops"] for q in good]
    cpu = [q["cpu_us_per_req"] for q in good if q.get("cpu_us_per_req") is not None]
    p = run.point(system, "%s, 9:1, pipeline %d" % (tflag, depth), depth=depth,
                  ops=median_of(ops), cpu_us_per_req=median_of(cpu), runs=len(runs),
                  spread="%s–%s ops/s, %s–%s µs" % (
                      run.fmt_ops(min(ops)) if ops else "—",
                      run.fmt_ops(max(ops)) if ops else "—",
                      "%.2f" % min(cpu) if cpu else "—",
                      "%.2f" % max(cpu) if cpu else "—"))
    if bad:
        p["status"] = bad[0]["status"]
    return p


def best(pts, system, depth, key="ops", low=False):
    v = [p for p in pts if p["system"] == system and p["depth"] == depth and
         p["status"] == "ok" and p.get(key) is not None]
    if not v:
        return None
    return (min if low else max)(v, key=lambda p: p[key])


def report(pts, rounds):
    """Markdown lines for the results file."""
    L = ["## (h) server CPU per request beside a do-nothing server", "",
         "50 connections, 9:1 get/set, 100-byte values, 100000 keys; the "
         "do-nothing server (`bench/nullserver.c`) reads, answers END/STORED "
         "without a table and writes, so its figures are the kernel's limit. "
         "CPU = user+system time of every server process over the run / "
         "requests. Configurations interleaved, median of %d round%s." % (rounds, "s" * (rounds > 1)), "",
         "| system | configuration | ops/s | CPU µs/request | ops/s ÷ do-nothing | "
         "CPU ÷ do-nothing | runs: min–max | status |",
         "|---|---|---:|---:|---:|---:|---|---|"]
    pairs = [p for p in pts if p["system"] == "paired"]
    pts = [p for p in pts if p["system"] != "paired"]
    for p in sorted(pts, key=lambda p: (p["depth"], p["config"][:4], p["system"])):
        null = best(pts, "do-nothing", p["depth"])
        lean = best(pts, "do-nothing", p["depth"], "cpu_us_per_req", low=True)
        r_ops = p["ops"] / null["ops"] if null and p["ops"] else None
        r_cpu = (p["cpu_us_per_req"] / lean["cpu_us_per_req"]
                 if lean and p.get("cpu_us_per_req") else None)
        L.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            p["system"], p["config"], run.fmt_ops(p["ops"]),
            "%.2f" % p["cpu_us_per_req"] if p.get("cpu_us_per_req") else "—",
            run.fmt_ratio(r_ops), run.fmt_ratio(r_cpu), p.get("spread", ""),
            p["status"]))
    L.append("")
    for depth in sorted(set(p["depth"] for p in pts)):
        L += summary(pts, depth)
    L += [paired_line(p) for p in pairs]
    L.append("")
    return L


def median_interval(values):
    """A distribution-free interval for the median of values: the kth
    smallest to the kth largest, k the largest for which a Binomial(n, 1/2)
    falls below k with chance 2.5% or less, so it holds the true median
    with chance 95% or more whatever the distribution.  None when n < 6."""
    v, n = sorted(values), len(values)
    k, below = 0, 0.0
    while True:
        below += math.comb(n, k) / 2.0 ** n
        if below > 0.025:
            break
        k += 1
    return (v[k - 1], v[n - k], 1 - 2 * (below - math.comb(n, k) / 2.0 ** n)) if k else None


def paired_line(p):
    def spread(v):
        if not v:
            return "no complete round"
        ci = median_interval(v)
        return "median %.2f×, %.2f–%.2f× over %d rounds%s" % (
            median_of(v), min(v), max(v), len(v),
            ", %.0f%% interval for the median %.2f–%.2f×" % (100 * ci[2], ci[0], ci[1])
            if ci else "")
    return ("- pipeline %d, round by round, best -t against best -t: shmkv's ops/s ÷ "
            "memcached's %s (%d of them at 1.1× or more); shmkv's ÷ the do-nothing "
            "server's %s; memcached's ÷ the do-nothing server's %s" % (
                p["depth"], spread(p["vs_memcached"]),
                sum(1 for x in p["vs_memcached"] if x >= 1.1), spread(p["vs_nothing"]),
                spread(p["memcached_vs_nothing"])))


def summary(pts, depth):
    """The depth's headline: each system's best -t for throughput (the most
    ops/s) and for CPU (the fewest µs per request), shmkv's as ratios."""
    tflag = lambda p: p["config"].split(",")[0]
    huge = any("2 MiB" in p["config"] for p in pts)
    pts = [p for p in pts if like_for_like(p["system"], tflag(p), huge)]
    fast = {x: best(pts, x, depth) for x in SYSTEMS}
    lean = {x: best(pts, x, depth, "cpu_us_per_req", low=True) for x in fast}
    L = []
    s, m, n = fast["shmkv"], fast["memcached"], fast["do-nothing"]
    if s and m and n:
        L.append("- pipeline %d, ops/s: shmkv %s (%s) = %.2f× the do-nothing "
                 "server's %s (%s), %.2f× memcached's %s (%s)" % (
                     depth, run.fmt_ops(s["ops"]), tflag(s), s["ops"] / n["ops"],
                     run.fmt_ops(n["ops"]), tflag(n), s["ops"] / m["ops"],
                     run.fmt_ops(m["ops"]), tflag(m)))
    s, m, n = lean["shmkv"], lean["memcached"], lean["do-nothing"]
    if s and m and n:
        L.append("- pipeline %d, CPU per request: shmkv %.2f µs (%s) = %.2f× "
                 "the do-nothing server's %.2f µs (%s); memcached %.2f µs (%s) "
                 "= %.2f×" % (
                     depth, s["cpu_us_per_req"], tflag(s),
                     s["cpu_us_per_req"] / n["cpu_us_per_req"],
                     n["cpu_us_per_req"], tflag(n), m["cpu_us_per_req"], tflag(m),
                     m["cpu_us_per_req"] / n["cpu_us_per_req"]))
    return L


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(run.ROOT, "build-rel"))
    ap.add_argument("--duration", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2, help="client threads")
    ap.add_argument("--memory", type=int, default=256)
    ap.add_argument("--huge-only", action="store_true",
                    help="shmkv on 2 MiB pages only, where they can be reserved "
                    "(shorter rounds)")
    ap.add_argument("--depths", default="1,16",
                    help="pipeline depths, comma-separated (default 1,16)")
    args = ap.parse_args()
    try:
        depths = tuple(int(d) for d in args.depths.split(","))
    except ValueError:
        ap.error("--depths takes numbers separated by commas: %r" % args.depths)
    if not depths or min(depths) < 1:
        ap.error("--depths: each depth is 1 or more")
    args.build = os.path.abspath(args.build)
    args.repeat = 1
    tmp = tempfile.mkdtemp(prefix="shmkv-cpu-")
    b = run.Bench(args, tmp)
    pts = run_cpu(b, args.rounds, depths)
    print("\n".join(report(pts, args.rounds)))
    return 1 if any(p["status"] != "ok" for p in pts) else 0


if __name__ == "__main__":
    sys.exit(main())
