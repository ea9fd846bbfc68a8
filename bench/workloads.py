"""
workloads.py - workloads a-f of `make bench`: which servers, which load

Each run_* starts the servers its workload compares, drives them through a
Bench (bench/drivers.py) and returns its points; every server is stopped
again before the next starts.  (g) is bench/restart_bench.py, (h)
bench/cpu.py, (p) bench/python_bench.py, the probe half of (d)
bench/probe_bench.py.
"""

import contextlib
import os
import subprocess

from hugepages import huge_pages
from points import failed, log, point
from servers import mc_stats, redis_cmd, redis_info


def run_network(bench, want):
    """a, b, c: one start per server configuration, then its workloads."""
    res = {"a": [], "b": [], "c": []}
    mem = bench.a.memory
    runs = [("memcached", lambda: bench.memcached(1, mem), "-t 1"),
            ("memcached", lambda: bench.memcached(2, mem), "-t 2"),
            ("shmkv", lambda: bench.shmkv(bench.a.threads, mem), "-t %d" % bench.a.threads)]
    if bench.a.threads != 1:
        runs.append(("shmkv", lambda: bench.shmkv(1, mem), "-t 1"))
    for system, make, cfg in runs:
        try:
            with make() as srv:
                port = ["-p", str(srv.addr[1])]
                if "a" in want:
                    res["a"].append(bench.shmkv_bench(system, cfg + ", 9:1, pipeline 1",
                                                     port + bench.net_flags(1)))
                if "b" in want:
                    res["b"].append(bench.shmkv_bench(system, cfg + ", 9:1, pipeline 16",
                                                     port + bench.net_flags(16)))
                if "c" in want:
                    res["c"].append(bench.shmkv_bench(
                        system, cfg + ", get, zipf 0.99",
                        port + bench.net_flags(1, "1:0", "zipf:0.99")))
        except (RuntimeError, OSError) as e:
            for w in want & {"a", "b", "c"}:
                res[w].append(failed(system, cfg, str(e)))
    # Redis: single-threaded for commands (its I/O threads are off by default)
    try:
        with bench.redis(mem) as srv:
            n1 = max(100000, 60000 * bench.a.duration)
            n16 = max(500000, 400000 * bench.a.duration)
            if "a" in want:
                pts = bench.redis_points(srv, 1, ["set", "get"], "100%, pipeline 1", n1)
                res["a"] += pts + [mix(pts, "9:1 from the GET and SET runs")]
            if "b" in want:
                pts = bench.redis_points(srv, 16, ["set", "get"], "100%, pipeline 16", n16)
                res["b"] += pts + [mix(pts, "9:1 from the GET and SET runs")]
            if "c" in want:
                if "a" not in want and "b" not in want:
                    bench.redis_points(srv, 16, ["set"], "fill", n16)
                pts = bench.redis_points(srv, 1, ["get"], "uniform (no zipf in redis-benchmark)", n1)
                res["c"] += pts
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        for w in want & {"a", "b", "c"}:
            res[w].append(failed("redis", "", str(e)))
    return res

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

def run_direct(bench):
    """d: libshmkv direct gets beside memcached over its Unix socket."""
    res = []
    D = str(bench.a.duration)
    common = ["--ratio", "1:0", "--keys", "100000", "--key-size", "32",
              "--value-size", "100", "--duration", D]
    clients = [1, 2]
    # memcached over its Unix socket: one thread, one connection per client
    sock = os.path.join(bench.tmp, "memcached.sock")
    try:
        with bench.memcached(bench.a.threads, bench.a.memory, unix=sock, tag=" (unix)"):
            for n in clients:
                res.append(bench.shmkv_bench(
                    "memcached", "unix socket, get, %d client%s" % (n, "s" * (n > 1)),
                    ["--unix", sock, "--threads", str(n), "--connections", str(n),
                     "--pipeline", "1"] + common))
            for n in clients:
                res.append(bench.shmkv_bench(
                    "memcached", "unix socket, 16-key multiget, %d client%s" % (n, "s" * (n > 1)),
                    ["--unix", sock, "--threads", str(n), "--connections", str(n),
                     "--pipeline", "1", "--multiget", "16"] + common))
    except (RuntimeError, OSError) as e:
        res.append(failed("memcached", "unix socket", str(e)))
    try:
        with bench.shmkv(bench.a.threads, bench.a.memory) as srv:
            for n in clients:
                res.append(bench.shmkv_bench(
                    "shmkv", "unix socket, get, %d client%s" % (n, "s" * (n > 1)),
                    ["--unix", srv.sock, "--threads", str(n), "--connections", str(n),
                     "--pipeline", "1"] + common))
            for n in clients:
                res.append(bench.shmkv_bench(
                    "shmkv", "direct shmkv_get, %d process%s" % (n, "es" * (n > 1)),
                    ["--direct", srv.sock, "-p", str(srv.addr[1]), "--procs", str(n)] + common))
            for n in clients:
                res.append(bench.shmkv_bench(
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

def run_memory(bench):
    """e: fill under the same limit, count what each keeps."""
    res = []
    mb = bench.a.fill_memory
    keys = bench.a.fill_keys
    fill = ["--threads", str(bench.a.threads), "--connections", "50", "--pipeline", "1",
            "--ratio", "0:1", "--keys", str(keys), "--key-size", "32",
            "--value-size", "100", "--requests", "1000"]
    for system, make in (("memcached", lambda: bench.memcached(bench.a.threads, mb)),
                         ("shmkv", lambda: bench.shmkv(bench.a.threads, mb))):
        cfg = "-m %d, %d keys written" % (mb, keys)
        try:
            with make() as srv:
                p = bench.shmkv_bench(system, cfg, ["-p", str(srv.addr[1])] + fill,
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
        with bench.redis(mb, "allkeys-lru") as srv:
            before = redis_info(srv.addr, "stats")
            key = "k" * 20 + "__rand_int__"      # 20 + 12 digits = 32 bytes
            val = "v" * 100
            rc, rows, err = bench.redis_benchmark(
                srv.addr, ["-P", "16", "-c", "50", "-n", str(2 * keys), "-r", str(keys),
                           "--threads", str(bench.a.threads)], ["SET", key, val])
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

def run_huge(bench):
    """f: a segment of several GiB, --huge-pages on and off."""
    res = []
    notes = []
    mb, keys = bench.a.big_memory, bench.a.big_keys
    flags = ["--ratio", "1:0", "--keys", str(keys), "--key-size", "32",
             "--value-size", "100", "--duration", str(bench.a.duration)]
    for huge in ("on", "off"):
        with huge_pages(mb) if huge == "on" else contextlib.nullcontext((False, None)) \
                as (reserved, why):
            if huge == "on":
                notes.append(why)
                if not reserved:
                    for b in (1, 16):
                        res.append(failed("shmkv", "huge pages on, batch %d" % b,
                                          "not run: " + why))
                    continue
            try:
                with bench.shmkv(bench.a.threads, mb, huge=huge, tag=" huge %s" % huge) as srv:
                    st = mc_stats(srv.addr)
                    page = int(st.get("page_size", 0))
                    got = "%s KiB pages" % (page // 1024) if page else "page size unknown"
                    for b in (1, 16):
                        cfg = "huge pages %s (%s), %s" % (
                            huge, got, "shmkv_get" if b == 1 else "shmkv_get_many 16")
                        extra = ["--batch", str(b)] if b > 1 else []
                        # the first run preloads every key over the network
                        pre = ["-p", str(srv.addr[1])] if b == 1 else ["--no-preload"]
                        p = bench.shmkv_bench("shmkv", cfg,
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
    return res, notes

