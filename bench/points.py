"""
points.py - one measurement each, and the log every part of `make bench` writes

A point is a dict: system, config, ops (per second), p50_us, p99_us, status
("ok" or "FAILED: why") and a note; workloads add fields of their own.  A
failed point is kept and reported with its reason, never dropped.
"""

import sys


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)



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



def ok(p):
    return p is not None and p["status"] == "ok" and p.get("ops") is not None
