"""test_stats_counters.py - the stats counters of lookups, commands and
evictions, counted as the real memcached 1.6.18 counts them

The same commands go to a private /usr/bin/memcached (-U 0, on loopback, a
port the kernel picks, stopped by PID) and to shmkv-server; the replies must
be the same bytes and the counters the same numbers: get_expired and
get_flushed, the command hits of `stats slabs` (summed over classes, as
shmkv's classes are partitions), and the eviction fields of `stats items`.
"""
import re
import socket
import time

import harness
from difftest import start_memcached, stop_memcached
from harness import ServerTest, cmd, recv_until

END = re.compile(rb".*END\r\n", re.S)
# memcached's LRU maintainer and crawler threads reclaim expired and
# flushed items in the background within about a second, so whether an
# expiry lands in get_expired or in reclaimed depends on their timing.
# Without them memcached counts what its lookups find, as shmkv (which has
# no such threads) always does.
NO_BACKGROUND = ["-o", "no_lru_maintainer,no_lru_crawler"]
# memcached's slab classes are sized by the item, and an allocation first
# reclaims expired or flushed items at the tail of its class: stores over
# expired or flushed small items use values of other classes, so that what
# memcached counts is its lookup's find, as shmkv's would be.
BIG = b"b" * 3000
MID = b"m" * 1500


def stats(sock, sub=""):
    sock.sendall(cmd("stats" + (" " + sub if sub else "")))
    got = recv_until(sock, END, timeout=10).decode()
    return dict(line.split(" ", 2)[1:] for line in got.split("\r\n")
                if line.startswith("STAT "))


def class_sums(sock, sub, names):
    """Each name summed over the classes of `stats slabs` or `stats items`."""
    st = stats(sock, sub)
    sums = dict.fromkeys(names, 0)
    for key, value in st.items():
        parts = key.split(":")
        if parts[-1] in sums and len(parts) >= 2:
            sums[parts[-1]] += int(value)
    return sums


def wait_clock(socks, at_least, deadline=15):
    """Until every server's `stats time` is at least at_least."""
    end = time.monotonic() + deadline
    while not all(int(stats(s)["time"]) >= at_least for s in socks):
        if time.monotonic() > end:
            raise AssertionError("clocks did not reach %d" % at_least)
        time.sleep(0.1)


class CountersSameAsMemcached(ServerTest):
    def pair(self, mc_flags, ours_flags=(), memory=64):
        proc, port = start_memcached("-m", str(memory), *mc_flags)
        self.addCleanup(stop_memcached, proc)
        srv = self.new_server(*ours_flags, memory=memory)
        mc = socket.create_connection(("127.0.0.1", port), 5)
        self.addCleanup(mc.close)
        ours = srv.tcp()
        self.addCleanup(ours.close)
        return mc, ours

    def same(self, mc, ours, stream):
        want = harness.replies_until_mn(mc, stream)
        got = harness.replies_until_mn(ours, stream)
        for c, w, g in zip(stream, want, got):
            self.assertEqual(g, w, "command %r" % c)

    def test_lookups_of_expired_and_flushed_items(self):
        mc, ours = self.pair(NO_BACKGROUND)
        keys = ["get", "gets", "del", "incr", "decr", "touch", "gat", "mg",
                "md", "ma", "set", "cas", "twice"]
        # TTL 1 s, then every lookup once both clocks have passed it.
        self.same(mc, ours, [cmd("set x%s 0 1 1" % k, b"7") for k in keys] +
                  [cmd("set keep 0 0 1", b"k")])
        # shmkv's clock is its supervisor's tick, up to a second behind.
        now = max(int(stats(s)["time"]) for s in (mc, ours))
        wait_clock((mc, ours), now + 3)
        self.same(mc, ours, [
            cmd("get xget"), cmd("gets xgets"), cmd("delete xdel"),
            cmd("incr xincr 1"), cmd("decr xdecr 1"), cmd("touch xtouch 10"),
            cmd("gat 10 xgat"), cmd("mg xmg v"), cmd("md xmd"),
            cmd("ma xma"), cmd("set xset 0 0 %d" % len(BIG), BIG),
            cmd("cas xcas 0 0 %d 1" % len(BIG), BIG),
            # memcached unlinks what its lookup found expired: once only.
            cmd("get xtwice"), cmd("get xtwice"), cmd("mg xtwice v"),
        ])
        self.same(mc, ours, [cmd("set f%d 0 0 1" % i, b"1") for i in range(4)] +
                  [cmd("flush_all"), cmd("get f0"), cmd("get f0"),
                   cmd("delete f1"), cmd("mg f2 v"),
                   cmd("set f3 0 0 %d" % len(MID), MID), cmd("get keep")])
        names = ["get_expired", "get_flushed", "get_hits", "get_misses",
                 "delete_misses", "incr_misses", "decr_misses",
                 "touch_misses", "cas_misses", "cmd_get", "cmd_touch",
                 "reclaimed"]
        want = {n: stats(mc)[n] for n in names}
        got = {n: stats(ours)[n] for n in names}
        self.assertEqual(got, want)
        # Each x key once; f0 to f3 and keep once each.
        self.assertEqual((want["get_expired"], want["get_flushed"],
                          want["reclaimed"]), ("13", "5", "0"))

    def test_command_hits_of_stats_slabs(self):
        # One partition: a class that loses its last item leaves shmkv's
        # `stats slabs` (a partition holding nothing is not listed).
        mc, ours = self.pair([], ["--partitions", "1"])
        self.same(mc, ours, [
            cmd("set keep 0 0 1", b"k"), cmd("set n 0 0 1", b"5"),
            cmd("incr n 2"), cmd("decr n 1"), cmd("ma n"), cmd("ma n MD"),
            cmd("ma vv N0 J7"), cmd("incr nope 1"), cmd("set t 0 0 1", b"x"),
            cmd("incr t 1"), cmd("touch n 100"), cmd("gat 100 n"),
            cmd("mg n T30 v"), cmd("mg n v"), cmd("get n"),
            cmd("cas n 0 0 1 999999", b"9"), cmd("ms n 1 C999999", b"9"),
            cmd("ms n 1 MA C999999", b"9"), cmd("set m 0 0 1", b"1"),
            cmd("md m I"), cmd("md m"), cmd("md m"), cmd("set p 0 0 1", b"1"),
            cmd("md p C999999"), cmd("delete p"), cmd("delete p"),
        ])
        # A cas that matches: each server's own CAS of n.
        for sock in (mc, ours):
            sock.sendall(cmd("gets n"))
            m = re.match(rb"VALUE n 0 1 (\d+)\r\n",
                         recv_until(sock, END, timeout=10))
            self.assertIsNotNone(m)
            cas = cmd("cas n 0 0 1 %s" % m.group(1).decode(), b"3")
            self.assertEqual(harness.replies_until_mn(sock, [cas]),
                             [b"STORED\r\n"])
        names = ["get_hits", "delete_hits", "incr_hits", "decr_hits",
                 "cas_hits", "cas_badval", "touch_hits"]
        want, got = class_sums(mc, "slabs", names), class_sums(ours, "slabs", names)
        self.assertEqual(got, want)
        self.assertEqual(want, {"get_hits": 3, "delete_hits": 2,
                                "incr_hits": 2, "decr_hits": 2,
                                "cas_hits": 1, "cas_badval": 2,
                                "touch_hits": 3})
        # The totals of `stats` are the classes' sums, on both.
        for sock in (mc, ours):
            st = stats(sock)
            self.assertEqual({n: int(st[n]) for n in names}, want)
        # stats reset zeroes the per-class counters too, on both.
        self.same(mc, ours, [cmd("stats reset")])
        for sock in (mc, ours):
            self.assertEqual(class_sums(sock, "slabs", names + ["cmd_set"]),
                             dict.fromkeys(names + ["cmd_set"], 0))
            self.assertEqual(class_sums(sock, "items", ["number"]),
                             {"number": 4})

    def test_eviction_fields_of_stats_items(self):
        mc, ours = self.pair([], ["--partitions", "1"], memory=2)
        names = ["evicted", "evicted_nonzero", "evicted_time",
                 "evicted_active", "evicted_unfetched"]

        def store_until_evicted(sock, prefix, ttl, evictions):
            i = 0
            while int(stats(sock)["evictions"]) < evictions:
                self.assertLess(i, 20000)
                sock.sendall(cmd("set %s%d 0 %d %d" % (prefix, i, ttl,
                                                      len(BIG)), BIG))
                self.assertEqual(recv_until(sock, re.compile(rb".*\r\n")),
                                 b"STORED\r\n")
                i += 1
            return i

        held, started = {}, {}
        for sock in (mc, ours):
            started[sock] = time.time()
            held[sock] = store_until_evicted(sock, "old", 1000, 1)
        # Items stored with a TTL, not read, evicted 2 s later.
        now = max(int(stats(s)["time"]) for s in (mc, ours))
        wait_clock((mc, ours), now + 3)
        sums, idle = {}, {}
        for sock in (mc, ours):
            first = int(stats(sock)["evictions"])
            held[sock] += store_until_evicted(sock, "new", 1000, first + 1)
            idle[sock] = time.time() - started[sock]
            sums[sock] = class_sums(sock, "items", names)
        for sock in (mc, ours):
            s = sums[sock]
            self.assertEqual(s["evicted_nonzero"], s["evicted"])
            self.assertEqual(s["evicted_unfetched"], s["evicted"])
            self.assertEqual(s["evicted_active"], 0)
            self.assertEqual(int(stats(sock)["evicted_active"]), 0)
            # Seconds since the evicted item was stored, as each server's
            # coarse clock (a second's ticks) saw them.
            self.assertGreaterEqual(s["evicted_time"], 2, s)
            self.assertLessEqual(s["evicted_time"], idle[sock] + 1, s)
        # Without a TTL: every item with one is evicted first (both evict
        # the least recently used), and these are not "nonzero".
        for sock in (mc, ours):
            store_until_evicted(sock, "zero", 0, 2 * held[sock] + 10)
            s = class_sums(sock, "items", names)
            self.assertGreater(s["evicted"], s["evicted_nonzero"])
            self.assertEqual(s["evicted_nonzero"], held[sock])
            # The last one evicted was stored a moment ago.
            self.assertIn(s["evicted_time"], (0, 1))


if __name__ == "__main__":
    harness.main()
