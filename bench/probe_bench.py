#!/usr/bin/env python3
"""probe_bench.py - direct gets beside the raw probe (part of workload d)

bench/rawprobe.c (shmkv-rawprobe) builds a table of the segment's shape in
its own memory and times hash + probe + copy-out, then, in the same run and
interleaved round by round, shmkv_get and shmkv_get_many of 16 on a real
shmkv-server's segment: 1M keys of 32 bytes, 100-byte values, uniform
random keys, a throughput loop that reads the clock once per 4096 keys.
Each figure is the median of the rounds.  This runs it for 1 and 2
processes, with 2 MiB pages (reserved through /proc/sys/vm/nr_hugepages as
root, the old value put back) and with 4 KiB pages.

Run by run.py (workload d) or on its own:
    python3 bench/probe_bench.py --build build-rel [--rounds 5] [--seconds 1] [--big]
--big adds the 19M items in 4 GiB case (one process; about 8 GiB of memory
and a few minutes, most of it loading the items).  The raw probe is given
the segment's own number of buckets (from its stats), so both tables carry
the same load.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import run  # noqa: E402  (Server, huge_pages, point, failed)

KEYS = 1000000
MEMORY_MB = 512          # 1M items of 132 bytes and their buckets, with room
BIG_KEYS = 19000000      # --big: the 19M items ...
BIG_MEMORY_MB = 4096     # ... in 4 GiB
CASES = ("raw get", "shmkv_get", "raw get_many 16", "shmkv_get_many 16")


def primary_buckets(srv):
    """The segment's primary buckets, from its stats: hash_bytes counts every
    64-byte bucket, and each partition has nb primary ones and nb / 3 + 1 for
    overflow (client/table.c), so the raw probe can be given the same load."""
    st = run.mc_stats(srv.addr)
    parts, total = int(st["partitions"]), int(st["hash_bytes"]) // 64
    per = total // parts
    nb = (per - 1) * 3 // 4
    while nb + nb // 3 + 1 < per:
        nb += 1
    while nb > 1 and nb + nb // 3 + 1 > per:
        nb -= 1
    return nb * parts


def probe(b, srv, procs, huge, rounds, seconds, preload, keys=KEYS):
    tool = os.path.join(b.a.build, "bench", "shmkv-rawprobe")
    argv = [tool, "--keys", str(keys), "--buckets", str(primary_buckets(srv)),
            "--direct", srv.sock, "--procs", str(procs),
            "--rounds", str(rounds), "--seconds", str(seconds)]
    argv += ["--huge-pages"] if huge else []
    argv += [] if preload else ["--no-preload"]
    run.log("rawprobe: " + " ".join(argv))
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=rounds * seconds * 8 + 300 + keys / 20000)
    b.raw.append({"system": "rawprobe", "argv": argv, "rc": r.returncode,
                  "stdout": r.stdout, "stderr": r.stderr[-4000:]})
    try:
        return json.loads(r.stdout.strip().splitlines()[-1]), None
    except (ValueError, IndexError):
        return None, "shmkv-rawprobe exit %d: %s" % (r.returncode, r.stderr.strip()[-300:])


def points_of(j, procs, pages, size=""):
    pts = []
    for case in CASES:
        c = j["cases"].get(case)
        cfg = "%s, %d process%s, %s pages%s" % (case, procs, "es" * (procs > 1), pages, size)
        system = "raw probe" if case.startswith("raw") else "shmkv"
        if c is None or c["failed"] or c["wrong"]:
            pts.append(run.failed(system, cfg, "no result" if c is None else
                                  "%d wrong or missing values" % c["wrong"]))
            continue
        pts.append(run.point(system, cfg, ops=c["keys_per_sec"], ns=c["ns_per_key"],
                             case=case, procs=procs, pages=pages + size,
                             latency=j.get("dependent_load_ns") if case == "raw get" else None))
    return pts


def probe_server(b, memory_mb, huge, procs_list, rounds, seconds, keys=KEYS, size=""):
    """Points of one shmkv-server of memory_mb (on 2 MiB pages if huge), for
    each process count in procs_list; size names a non-default key count."""
    pts, pages = [], "2 MiB" if huge else "4 KiB"
    try:
        with b.shmkv(1, memory_mb, huge="on" if huge else "off",
                     tag=" (probe%s)" % size) as srv:
            for procs in procs_list:
                j, err = probe(b, srv, procs, huge, rounds, seconds, procs == 1, keys)
                if j is None:
                    pts.append(run.failed("shmkv", "probe, %d process(es), %s pages%s"
                                          % (procs, pages, size), err))
                    continue
                got = pages if j["raw_pages"] == pages else \
                    "raw %s, shmkv %s" % (j["raw_pages"], pages)
                pts += points_of(j, procs, got, size)
    except (RuntimeError, OSError) as e:
        pts.append(run.failed("shmkv", "probe" + size, str(e)))
    return pts


def run_big(b, rounds=5, seconds=1.0):
    """The large case: 19M items in a 4 GiB segment, one process, 2 MiB
    pages when they can be had, else 4 KiB pages."""
    size = ", %dM items in %d GiB" % (BIG_KEYS // 1000000, BIG_MEMORY_MB // 1024)
    with run.huge_pages(BIG_MEMORY_MB + BIG_KEYS * 200 // 2**20) as (huge, why):
        if not huge:
            run.log("big probe on 4 KiB pages: " + why)
        return probe_server(b, BIG_MEMORY_MB, huge, (1,), rounds, seconds, BIG_KEYS, size)


def run_probe(b, rounds=5, seconds=1.0):
    """Points for 1 and 2 processes, 2 MiB pages (when they can be had) and
    4 KiB pages."""
    with run.huge_pages(MEMORY_MB * 2) as (huge, why):
        pts = probe_server(b, MEMORY_MB, True, (1, 2), rounds, seconds) if huge else \
            [run.failed("shmkv", "2 MiB pages", "not run: " + why)]
    return pts + probe_server(b, MEMORY_MB, False, (1, 2), rounds, seconds)


def find(pts, case, procs, pages):
    for p in pts:
        if p.get("case") == case and p.get("procs") == procs and p.get("pages") == pages \
                and p["status"] == "ok":
            return p
    return None


def report(pts):
    """Markdown lines and the goal rows (name, target, value, limit, higher, unit)."""
    L = ["## (d) direct gets beside the raw probe (same run, interleaved, medians)", "",
         "| configuration | ns a key a process | keys/s in all | ratio to the raw probe | status |",
         "| --- | ---: | ---: | ---: | --- |"]
    for p in pts:
        raw = None
        if p.get("case", "").startswith("shmkv"):
            raw = find(pts, p["case"].replace("shmkv_get", "raw get"), p["procs"], p["pages"])
        ratio = "%.2f×" % (p["ns"] / raw["ns"]) if raw and p["status"] == "ok" else "—"
        L.append("| %s | %s | %s | %s | %s |" % (
            p["config"], "%.0f" % p["ns"] if p.get("ns") else "—", run.fmt_ops(p["ops"]),
            ratio, p["status"]))
    L += ["", "1M keys of 32 bytes with 100-byte values, uniform random keys, one server "
          "worker. The raw probe is bench/rawprobe.c: a table of the segment's shape (64-byte "
          "buckets of ten tags and refs, as many as the segment has, items of header, key and "
          "value) in the process's own memory, looked up with the same hash, tag compare and "
          "prefetches and copied out; no locks, no liveness check, no bounds checks, no "
          "counters. Rows marked 19M items in 4 GiB (--big) load 19M keys into a 4 GiB "
          "segment instead. Time per key is the throughput loop's (the clock is "
          "read once per 4096 keys); each figure is the median of the rounds, the four cases "
          "interleaved in every round.", ""]
    for p in pts:
        if p.get("latency") and p.get("procs") == 1:
            L.append("- memory latency, %s pages: %.0f ns a load that waits for the one "
                     "before (a random chase over a region of the raw table's size); a hit "
                     "reads a bucket, then an item: two such loads, %.0f ns, unless the CPU "
                     "overlaps one get's misses with the next's" % (
                         p["pages"], p["latency"], 2 * p["latency"]))
    L.append("")
    T = []
    for pages in ("2 MiB", "4 KiB"):
        one = find(pts, "shmkv_get", 1, pages)
        raw = find(pts, "raw get", 1, pages)
        many = find(pts, "shmkv_get_many 16", 1, pages)
        two = find(pts, "shmkv_get", 2, pages)
        if one:
            T.append(("(d) shmkv_get, 1 process, %s pages, time a get" % pages, "≤ 200 ns",
                      one["ns"], 200.0, False, "ns"))
        if one and raw:
            T.append(("(d) shmkv_get / raw probe, 1 process, %s pages" % pages, "≤ 1.5×",
                      one["ns"] / raw["ns"], 1.5, False, "x"))
        if many:
            T.append(("(d) shmkv_get_many 16, 1 process, %s pages, time a key" % pages,
                      "≤ 65 ns", many["ns"], 65.0, False, "ns"))
        if one and two:
            T.append(("(d) shmkv_get, 2 processes / 1, %s pages" % pages, "≥ 1.9×",
                      two["ops"] / one["ops"], 1.9, True))
    for p in pts:   # --big: reported beside the raw probe, no target
        if "items in" in p.get("pages", "") and p.get("case") == "shmkv_get":
            raw = find(pts, "raw get", 1, p["pages"])
            if raw:
                T.append(("(d) %s, shmkv_get / raw probe" % p["config"].replace(
                    "shmkv_get, ", ""), "report", p["ns"] / raw["ns"], None, False, "x"))
    return L, T


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(os.path.dirname(HERE), "build-rel"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--big", action="store_true",
                    help="also 19M items in a 4 GiB segment (needs about 8 GiB of memory)")
    ap.add_argument("--only-big", action="store_true", help="only the --big case")
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    a.threads, a.memory, a.duration = 1, MEMORY_MB, 1
    tmp = tempfile.mkdtemp(prefix="shmkv-probe-")
    b = run.Bench(a, tmp)
    pts = [] if a.only_big else run_probe(b, a.rounds, a.seconds)
    if a.big or a.only_big:
        pts += run_big(b, a.rounds, a.seconds)
    L, T = report(pts)
    print("\n".join(L))
    for name, target, v, _limit, _higher, *unit in T:
        print("%s: %s (target %s)" % (name, ("%.0f ns" % v) if unit == ["ns"] else
                                      ("%.2f×" % v), target))
    return 1 if any(p["status"] != "ok" for p in pts) else 0


if __name__ == "__main__":
    sys.exit(main())
