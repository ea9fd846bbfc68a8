"""test_bench.py - smoke test of shmkv-bench against real servers

Starts memcached (if /usr/bin/memcached is installed) and shmkv-server, each
on a port the kernel says is free, runs shmkv-bench against each with
--json, and checks what it reports: it did work, every reply was right
(no errors, no wrong values), keys were found, and the latency percentiles
are ordered.  Throughput is never asserted: the machine is shared.

Each server runs in a session of its own and is killed in a finally, with
its whole process group, whatever happens to the test.  A server that is
missing or does not come up, or direct mode that cannot attach, fails the
test: `make test` installs memcached and builds shmkv-server first.

Usage: python3 test_bench.py PATH-TO-shmkv-bench [PATH-TO-shmkv-server]
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

BENCH = sys.argv[1] if len(sys.argv) > 1 else ""
SERVER = sys.argv[2] if len(sys.argv) > 2 else ""
MEMCACHED = "/usr/bin/memcached"
RUN = ["--requests", "20000", "--connections", "4", "--pipeline", "4",
       "--json", "--no-progress"]
failures = []


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(proc, port, timeout=10.0):
    """True once 127.0.0.1:port accepts; False if proc exits or time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def stop(proc):
    """SIGTERM the process group, then SIGKILL if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            pass


def check(name, cond, detail=""):
    if cond:
        print("ok   %s" % name)
    else:
        print("FAIL %s %s" % (name, detail))
        failures.append(name)


def bench(*args, expect_rc=0):
    cmd = [BENCH] + list(args)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def check_run(name, *args):
    """Run the bench with args, check its JSON report."""
    rc, out, err = bench(*args)
    print("$ shmkv-bench %s" % " ".join(args))
    if err.strip():
        print(err.rstrip())
    try:
        r = json.loads(out)
    except ValueError:
        check(name + ": JSON report", False, "rc %d, stdout %r" % (rc, out))
        return None
    lat = r["latency_ns"]["all"]
    check(name + ": exit status 0", rc == 0, "got %d" % rc)
    check(name + ": ops > 0", r["ops"] > 0, r["ops"])
    check(name + ": errors == 0", r["errors"] == 0 and
          r["preload"]["errors"] == 0, (r["errors"], r["preload"]["errors"]))
    check(name + ": wrong == 0", r["wrong"] == 0 and
          r["preload"]["wrong"] == 0, (r["wrong"], r["preload"]["wrong"]))
    check(name + ": no connection lost", r["connections_lost"] == 0,
          r["connections_lost"])
    check(name + ": hits > 0", r["hits"] > 0, r["hits"])
    check(name + ": gets = hits + misses", r["gets"] == r["hits"] + r["misses"],
          (r["gets"], r["hits"], r["misses"]))
    ps = [lat["p50"], lat["p90"], lat["p99"], lat["p99.9"], lat["max"]]
    check(name + ": p50 <= p90 <= p99 <= p99.9 <= max",
          all(a <= b for a, b in zip(ps, ps[1:])) and ps[0] > 0, ps)
    check(name + ": one latency sample per request",
          lat["count"] == r["requests"] or r.get("mode") == "direct",
          (lat["count"], r["requests"]))
    return r


def test_flags():
    rc, out, err = bench("--help")
    check("--help exits 0 and lists --pipeline", rc == 0 and "--pipeline" in out)
    rc, out, err = bench("--version")
    check("--version", rc == 0 and out.startswith("shmkv-bench "), out)
    for flag, bad in (("--ratio", ["--ratio", "9"]),
                      ("--pipeline", ["--pipeline", "0"]),
                      ("--bogus", ["--bogus"]),
                      ("--distribution", ["--distribution", "zipf:-1"]),
                      ("--key-size", ["--keys", "1000", "--key-size", "3"]),
                      ("--threads", ["--threads", "3", "--connections", "2"])):
        rc, out, err = bench(*bad)
        check("bad flag %s: exit 2, one line naming it" % " ".join(bad),
              rc == 2 and err.count("\n") == 1 and flag in err,
              (rc, err))


def test_memcached():
    if not os.access(MEMCACHED, os.X_OK):
        check("memcached is installed", False, MEMCACHED)
        return
    port = free_port()
    # memcached refuses to run as root unless told which user to be.
    as_root = ["-u", "root"] if os.geteuid() == 0 else []
    proc = subprocess.Popen([MEMCACHED, "-p", str(port), "-U", "0", "-l",
                             "127.0.0.1", "-t", "1", "-m", "64"] + as_root,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        if not wait_port(proc, port):
            check("memcached starts", False)
            return
        check_run("memcached", "--port", str(port), *RUN)
        check_run("memcached multiget zipf, 2 threads", "--port", str(port),
                  "--requests", "5000", "--connections", "4", "--threads",
                  "2", "--pipeline", "8", "--multiget", "4", "--distribution",
                  "zipf:0.99", "--value-size", "3000", "--json",
                  "--no-progress")
        # Keys were never set with --no-preload on a fresh key space: all
        # misses, still no errors.
        rc, out, _ = bench("--port", str(port), "--no-preload", "--keys",
                           "1000", "--key-size", "40", "--ratio", "1:0",
                           "--requests", "2000", "--json", "--no-progress")
        r = json.loads(out) if out else {}
        check("memcached --no-preload: all misses, no errors",
              rc == 0 and r.get("misses") == r.get("gets") and
              r.get("errors") == 0, (rc, out))
    finally:
        stop(proc)
    # Nothing listens any more: a clear failure, not a hang.
    rc, out, err = bench("--port", str(port), "--requests", "100",
                         "--no-progress")
    check("no server: exit 1 with 'cannot connect'",
          rc == 1 and "cannot connect" in err, (rc, err))


def test_shmkv():
    if not SERVER or not os.access(SERVER, os.X_OK):
        check("shmkv-server is built", False, SERVER or "no path given")
        return
    tmp = tempfile.mkdtemp(prefix="shmkv-bench-test-")
    run_dir = os.path.join(tmp, "run")
    port = free_port()
    log = open(os.path.join(tmp, "server.log"), "wb")
    as_root = ["-u", "root"] if os.geteuid() == 0 else []
    proc = subprocess.Popen([SERVER, "-p", str(port), "-t", "1", "-m", "64",
                             "--huge-pages", "off", "--run-dir", run_dir] + as_root,
                            stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        if not wait_port(proc, port):
            with open(os.path.join(tmp, "server.log"), "rb") as f:
                text = f.read().decode(errors="replace").strip()
            check("shmkv-server starts", False,
                  text.splitlines()[-1] if text else "no output")
            return
        check_run("shmkv-server", "--port", str(port), *RUN)
        sock = os.path.join(run_dir, "shmkv.sock")
        # Preloaded over TCP, then looked up in shared memory.
        check_run("shmkv direct", "--direct", sock, "--port", str(port),
                  "--requests", "20000", "--procs", "2", "--json",
                  "--no-progress")
        # Preloaded with shmkv_set, one round trip a key: fewer keys.
        check_run("shmkv direct, shmkv_set preload", "--direct", sock,
                  "--keys", "2000", "--key-size", "20", "--requests",
                  "5000", "--json", "--no-progress")
        check_run("shmkv direct batch", "--direct", sock, "--requests",
                  "2000", "--batch", "8", "--no-preload", "--json",
                  "--no-progress")
    finally:
        stop(proc)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    if not BENCH:
        print(__doc__)
        return 2
    try:
        test_flags()
        test_memcached()
        test_shmkv()
    except Exception as e:  # report, and still fail the test
        failures.append(repr(e))
        raise
    finally:
        if failures:
            print("%d failed: %s" % (len(failures), ", ".join(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
