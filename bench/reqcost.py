#!/usr/bin/env python3
"""reqcost.py - system calls and instructions per request, which load does not change

cpu.py's CPU per request moves with whatever else the machine runs; these two
counts do not, so they show what a change to the request path did on a busy
machine.  For shmkv-server -t 1 (its one worker) and the do-nothing server,
under workload h's load at pipeline 1 (50 connections, 9:1, 100-byte values):

  - system calls per request, by name: `perf stat` on the serving process
    over a fixed number of requests (no strace: its stops change how many
    events each epoll_wait returns);
  - user-space instructions per request: valgrind's callgrind, two runs that
    differ only in the number of requests, the difference of the serving
    process's totals over the difference of the requests, so start-up, the
    preload and shutdown cancel out.

Usage: python3 bench/reqcost.py --build build-rel [--requests 200000]
Needs perf (linux-perf) and valgrind.
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import servers  # noqa: E402

SYSCALLS = ("read", "write", "epoll_wait", "epoll_pwait", "epoll_ctl", "writev",
            "readv", "sendmsg", "recvmsg", "clock_gettime", "getrusage",
            "timerfd_settime")


def server(a, kind, tmp, wrap=()):
    """shmkv-server -t 1 or the do-nothing server, its argv after wrap."""
    if kind == "shmkv":
        srv = servers.shmkv(tmp, os.path.join(a.build, "server", "shmkv-server"), 1, 64,
                            huge="off")
    else:
        srv = servers.nullserver(tmp, a.build, 1)
    srv.argv = list(wrap) + srv.argv
    return srv


def load(a, port, requests, preload=True):
    argv = [os.path.join(a.build, "bench", "shmkv-bench"), "-p", str(port),
            "--threads", "2", "--connections", "50", "--pipeline", "1",
            "--ratio", "9:1", "--keys", "100000", "--key-size", "32",
            "--value-size", "100", "--requests", str(requests), "--no-progress"]
    subprocess.run(argv + ([] if preload else ["--no-preload"]), check=True,
                   stdout=subprocess.DEVNULL, timeout=3600)


def serving_pid(kind, proc):
    """The worker of shmkv-server (the supervisor's child); the server itself
    otherwise.  Children are listed in /proc/PID/task/*/children."""
    if kind != "shmkv":
        return proc.pid
    for _ in range(100):
        kids = []
        for f in glob.glob("/proc/%d/task/*/children" % proc.pid):
            with open(f) as fh:
                kids += [int(x) for x in fh.read().split()]
        if kids:
            return kids[0]
        time.sleep(0.1)
    raise RuntimeError("no worker process")


def syscalls(a, kind, tmp):
    """System calls per request of the serving process, by name."""
    with server(a, kind, tmp) as srv:
        port = srv.addr[1]
        load(a, port, 2000)  # the preload and a warm-up
        out = os.path.join(tmp, "perf-%s.txt" % kind)
        events = ",".join(["raw_syscalls:sys_enter"] +
                          ["syscalls:sys_enter_" + s for s in SYSCALLS])
        perf = subprocess.Popen(["perf", "stat", "-x,", "-e", events, "-p",
                                 str(serving_pid(kind, srv.proc)), "-o", out])
        time.sleep(0.5)
        load(a, port, a.requests, preload=False)
        perf.send_signal(2)
        perf.wait(timeout=60)
    counts = {}
    with open(out) as f:
        for line in f:
            field = line.strip().split(",")
            if len(field) > 2 and field[0].isdigit() and int(field[0]) > 0:
                counts[field[2].split("sys_enter_")[-1].replace(
                    "raw_syscalls:sys_enter", "all")] = int(field[0]) / a.requests
    return counts


def instructions(a, kind, tmp, requests):
    """Total user-space instructions of the serving process over a run."""
    pattern = os.path.join(tmp, "cg-%s-%d.%%p" % (kind, requests))
    srv = server(a, kind, tmp, ["valgrind", "--tool=callgrind",
                                "--callgrind-out-file=" + pattern])
    try:
        srv.start(timeout=300)
        pid = serving_pid(kind, srv.proc)
        load(a, srv.addr[1], requests)
    finally:
        srv.stop(timeout=60)
    for _ in range(300):  # a worker under valgrind may outlive its parent a while
        if not os.path.exists("/proc/%d" % pid):
            break
        time.sleep(0.2)
    text = subprocess.run(["callgrind_annotate", pattern.replace("%p", str(pid))],
                          capture_output=True, text=True, check=True).stdout
    return int(re.search(r"([\d,]+)\s+(\(\S+\)\s+)?PROGRAM TOTALS", text).group(1).replace(",", ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build-rel")
    ap.add_argument("--requests", type=int, default=200000,
                    help="requests counted by perf (default 200000)")
    ap.add_argument("--valgrind-requests", type=int, default=20000,
                    help="the difference between callgrind's two runs (default 20000)")
    a = ap.parse_args()
    a.build = os.path.abspath(a.build)
    tmp = tempfile.mkdtemp(prefix="shmkv-reqcost-")
    print("| server | system calls per request | user-space instructions per request |")
    print("|---|---|---:|")
    for kind, name in (("null", "do-nothing -t 1"), ("shmkv", "shmkv -t 1")):
        calls = syscalls(a, kind, tmp)
        few, many = 5000, 5000 + a.valgrind_requests
        ir = (instructions(a, kind, tmp, many) - instructions(a, kind, tmp, few)) / (many - few)
        shown = ", ".join("%s %.3f" % (k, v) for k, v in sorted(calls.items(), key=lambda kv: -kv[1])
                          if v >= 0.0005)
        print("| %s | %s | %.0f |" % (name, shown, ir))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
