"""
hugepages.py - reserve huge pages for a run, always put the old value back

Workloads (f), (h) and the probe half of (d) run shmkv-server with
--huge-pages on; as root the kernel's pool (vm.nr_hugepages) is raised for
the run and the old value written back afterwards, whatever happened:

    with huge_pages(memory_mb) as (reserved, why):
        ...
"""

import contextlib
import math
import os

from points import log

NR_HUGEPAGES = "/proc/sys/vm/nr_hugepages"


def meminfo(field):
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def reserve_huge_pages(memory_mb):
    """Reserve enough default-size huge pages for a segment of memory_mb;
    returns (old value, message) or (None, why not)."""
    hps_kb = meminfo("Hugepagesize")
    if not hps_kb:
        return None, "the kernel offers no huge pages (no Hugepagesize in /proc/meminfo)"
    if os.geteuid() != 0:
        return None, "not root: cannot write %s to reserve huge pages" % NR_HUGEPAGES
    need = int(math.ceil((memory_mb * 1024 + 4096) / hps_kb)) + 4
    with open(NR_HUGEPAGES) as f:
        old = int(f.read())
    free = meminfo("HugePages_Free") or 0
    want = old + max(0, need - free)
    try:
        with open(NR_HUGEPAGES, "w") as f:
            f.write(str(want))
    except OSError as e:
        return None, "could not write %s: %s" % (NR_HUGEPAGES, e)
    free = meminfo("HugePages_Free") or 0
    if free < need:
        restore_huge_pages(old)
        return None, ("could reserve only %d of the %d huge pages of %d KiB needed "
                      "(vm.nr_hugepages %d -> %d asked); memory too fragmented or too small"
                      % (free, need, hps_kb, old, want))
    log("reserved huge pages: vm.nr_hugepages %d -> %d (%d free, %d needed)" %
        (old, want, free, need))
    return old, ("vm.nr_hugepages raised from %d to %d for the run (%d pages of %d KiB "
                 "needed), then put back" % (old, want, need, hps_kb))


def restore_huge_pages(old):
    try:
        with open(NR_HUGEPAGES, "w") as f:
            f.write(str(old))
        log("vm.nr_hugepages put back to %d" % old)
    except OSError as e:
        log("could not put vm.nr_hugepages back to %d: %s" % (old, e))



@contextlib.contextmanager
def huge_pages(memory_mb):
    """Pages for a segment of memory_mb for the with block, put back at its
    end however it ends; yields (reserved, the message saying what was done
    or why nothing was)."""
    old, why = reserve_huge_pages(memory_mb)
    try:
        yield old is not None, why
    finally:
        if old is not None:
            restore_huge_pages(old)
