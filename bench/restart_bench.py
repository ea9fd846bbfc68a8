#!/usr/bin/python3
"""restart_bench.py - how long a restart takes until the cache serves its items again

Fills shmkv-server (--memory-file on /dev/shm) and memcached 1.6.18 (-e on
/dev/shm) with the same keys (32-byte keys, 100-byte values, preloaded by
shmkv-bench over TCP), then restarts each several times, interleaved:

  shmkv clean   SIGTERM, start again with the same flags
  shmkv crash   SIGKILL of the supervisor and every worker, start again
  memcached     SIGUSR1 (memcached's stop that saves for -e), start again

(Each server is started again 1.1 s after it stopped, untimed: memcached
1.6.18 discards its -e file, "restart incompatible due to setting for
[stop_time]", when it starts in the same second as the old one stopped.)

and measures the time from starting the new process to its first `stats`
reply, and how many items it then has (curr_items) against how many it had; a
get of three known keys checks that they are readable.
Each figure is the median of --repeat restarts, with the spread beside it.
Servers bind 127.0.0.1 on ports the kernel picks; every server started is
stopped and every file removed again, also on failure.

Run alone (prints a Markdown table), or as workload (g) of bench/run.py.
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
sys.path.insert(0, HERE)
import run  # noqa: E402  (free_port, mc_stats, log: said once, in run.py)


def wait_serving(port, proc, timeout):
    """Seconds until a `stats` on port is answered, and its curr_items."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("exited with %s during start-up" % proc.returncode)
        try:
            return int(run.mc_stats(("127.0.0.1", port)).get("curr_items", -1))
        except (OSError, ValueError):
            time.sleep(0.002)
    raise RuntimeError("not serving after %.0f s" % timeout)


class Restartable:
    """One server configuration that can be stopped and started again."""

    def __init__(self, name, argv, port, tmp):
        self.name, self.argv, self.port = name, argv, port
        self.log = open(os.path.join(tmp, name.replace(" ", "-") + ".log"), "ab")
        self.proc = None

    def start(self, timeout=600.0):
        """Start; the seconds until it serves and its curr_items."""
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        items = wait_serving(self.port, self.proc, timeout)
        return time.monotonic() - t0, items

    def stop(self, sig, timeout=600.0):
        """Send sig (to the whole process group for SIGKILL) and wait."""
        if self.proc is None or self.proc.poll() is not None:
            return
        if sig == signal.SIGKILL:
            os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)
        self.proc.wait(timeout)
        # A SIGKILLed supervisor's workers die with the group; wait for them.
        deadline = time.monotonic() + 10
        while sig == signal.SIGKILL and time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
                time.sleep(0.01)
            except ProcessLookupError:
                break

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)


def fill(build, port, keys, threads):
    """Preload every key over TCP with shmkv-bench (pipelined sets)."""
    p = subprocess.run([os.path.join(build, "bench", "shmkv-bench"), "-p", str(port),
                        "--keys", str(keys), "--key-size", "32", "--value-size", "100",
                        "--ratio", "1:0", "--duration", "1", "-c", "8", "-t", str(threads)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=3600)
    if p.returncode != 0:
        raise RuntimeError("shmkv-bench could not fill port %d: %s" % (
            port, p.stderr.decode(errors="replace").strip().splitlines()[-3:]))


def probe_keys(port, keys):
    """How many of the first, middle and last key a get finds (shmkv-bench's
    key names: "k" and the index zero-padded to 32 bytes)."""
    names = ["k%031d" % i for i in (0, keys // 2, keys - 1)]
    reply = run.talk(("127.0.0.1", port), ("get %s\r\n" % " ".join(names)).encode(),
                     (b"END\r\n",))
    return reply.count(b"VALUE ")


def median_spread(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2], xs[0], xs[-1]


def measure(build, tmp, memory, keys, repeat, threads):
    """Rows {system, how, seconds: [..], items: [..], before, status}."""
    shm = tempfile.mkdtemp(prefix="shmkv-restart-", dir="/dev/shm")
    sport, mport = run.free_port(), run.free_port()
    shmkv = Restartable("shmkv", [
        os.path.join(build, "server", "shmkv-server"), "-p", str(sport), "-l", "127.0.0.1",
        "--run-dir", os.path.join(tmp, "restart-run"), "-m", str(memory),
        "-t", str(threads), "--huge-pages", "off", "-e", os.path.join(shm, "shmkv")] +
        (["-u", "root"] if os.geteuid() == 0 else []),  # as memcached, told so
        sport, tmp)
    mc = Restartable("memcached", [
        "memcached", "-u", "root", "-p", str(mport), "-l", "127.0.0.1", "-m", str(memory),
        "-t", str(threads), "-U", "0", "-e", os.path.join(shm, "memcached")], mport, tmp)
    rows = [{"system": "shmkv", "how": "clean (SIGTERM)", "sig": signal.SIGTERM, "srv": shmkv},
            {"system": "shmkv", "how": "crash (SIGKILL of every process)",
             "sig": signal.SIGKILL, "srv": shmkv},
            {"system": "memcached", "how": "clean (SIGUSR1, -e)", "sig": signal.SIGUSR1,
             "srv": mc}]
    try:
        for srv in (shmkv, mc):
            srv.start()
            run.log("restart: filling %s with %d keys" % (srv.name, keys))
            fill(build, srv.port, keys, threads)
            srv.before = int(run.mc_stats(("127.0.0.1", srv.port))["curr_items"])
        for row in rows:
            row.update(seconds=[], items=[], before=row["srv"].before, status="ok")
        for i in range(repeat):
            for row in rows:
                row["srv"].stop(row["sig"])
                time.sleep(1.1)  # see the top: memcached needs a new second
                took, items = row["srv"].start()
                row["seconds"].append(took)
                row["items"].append(items)
                found = probe_keys(row["srv"].port, keys)
                run.log("restart: %s %s #%d: serving after %.3f s with %d of %d items"
                        % (row["system"], row["how"], i + 1, took, items, row["before"]))
                if row["system"] == "shmkv" and row["sig"] == signal.SIGTERM and \
                        (items < row["before"] or found < 3):
                    row["status"] = "FAILED: %d of %d items, %d of 3 probed keys " \
                        "after a clean restart" % (items, row["before"], found)
    except (RuntimeError, OSError, subprocess.SubprocessError, KeyError) as e:
        for row in rows:
            if len(row.get("seconds", [])) < repeat:
                row["status"] = "FAILED: %s" % e
    finally:
        shmkv.kill()
        mc.kill()
        shutil.rmtree(shm, ignore_errors=True)
    return rows


def markdown(rows, memory, keys, repeat):
    out = ["", "## (g) Restart: start to serving, %d MiB, %d keys (32 B keys, 100 B values)"
           % (memory, keys), "",
           "Time from starting the new process to its first `stats` reply; median of %d "
           "restarts (min-max), interleaved; items as `curr_items` before and after." % repeat,
           "", "| system | restart | seconds | min-max | items before | items after |",
           "| --- | --- | ---: | --- | ---: | ---: |"]
    for r in rows:
        if r.get("status") != "ok" or not r.get("seconds"):
            out.append("| %s | %s | %s | | | |" % (r["system"], r["how"], r.get("status")))
            continue
        med, lo, hi = median_spread(r["seconds"])
        out.append("| %s | %s | %.3f | %.3f-%.3f | %d | %s |" % (
            r["system"], r["how"], med, lo, hi, r["before"],
            "/".join(str(x) for x in sorted(set(r["items"])))))
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(os.path.dirname(HERE), "build-rel"))
    ap.add_argument("--memory", type=int, default=4096, help="MiB (default 4096)")
    ap.add_argument("--keys", type=int, default=19000000, help="keys (default 19M)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="shmkv-restart-bench-")
    try:
        rows = measure(a.build, tmp, a.memory, a.keys, a.repeat, a.threads)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(markdown(rows, a.memory, a.keys, a.repeat))
    return 0 if all(r.get("status") == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
