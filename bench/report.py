"""
report.py - the results of `make bench`: bench/results/<date>.md and its chart

write_report writes a table per workload (system, ops/s, p50, p99, ratio to
memcached) and the verdict against each performance goal; write_chart draws
the bars with gnuplot (bench/plot.gp); environment says what machine ran it.
"""

import os
import platform
import subprocess

from hugepages import meminfo
from points import log, ok

HERE = os.path.dirname(os.path.abspath(__file__))

def fmt_ops(v):
    return "—" if v is None else "{:,.0f}".format(v)


def fmt_us(v):
    if v is None:
        return "—"
    return "%.2f" % v if v < 10 else "%.0f" % v


def fmt_ratio(v):
    return "—" if v is None else "%.2f×" % v



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


def report_header(args, env):
    """The lines that say what ran, where, and how each point was measured."""
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
    return L


def report_network(L, T, res):
    """(a), (b), (c): a table each, and the goals they measure."""
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


def report_direct(L, T, pts):
    """(d): direct gets beside memcached over its Unix socket."""
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


def report_memory(L, T, pts):
    """(e): items kept under the same memory limit."""
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


def report_huge(L, T, res_f, args):
    """(f): a big segment, huge pages on and off."""
    pts, notes = res_f
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


def report_goals(L, T):
    """The table of every goal measured: target, measured, verdict."""
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


def write_report(path, args, res, env, chart_name):
    L = report_header(args, env)
    # targets: (what, target text, measured value or None, target value, higher is better)
    T = []
    report_network(L, T, res)
    if "d" in res:
        report_direct(L, T, res["d"])
    if "d_probe" in res:
        import probe_bench
        lines, goals = probe_bench.report(res["d_probe"])
        L += lines
        T += goals
    if "e" in res:
        report_memory(L, T, res["e"])
    if "f" in res:
        report_huge(L, T, res["f"], args)
    if "h" in res:
        import cpu
        L += cpu.report(res["h"], args.repeat)
    report_goals(L, T)
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

