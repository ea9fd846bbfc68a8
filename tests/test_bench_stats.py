"""test_bench_stats.py - the statistics bench/cpu.py prints its verdicts with

cpu.py compares servers round by round and gives the median of the
within-round ratios with a 95% interval for it (median_interval).  These
check that the interval is the one the order statistics give, that it holds
the true median at least 95% of the time on noise shaped like this VM's
(skewed, with outliers), and that the round-by-round pairing takes each
server's best of two configurations from the same round and leaves out
rounds in which one of them failed.

Usage: python3 test_bench_stats.py   (meson test bench_stats)
"""
import math
import os
import random
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))

import cpu  # noqa: E402


def ok(ops):
    return {"status": "ok", "ops": ops}


def by_round(*runs):
    """A cell as cpu.run_rounds keeps it: round -> run."""
    return dict(enumerate(runs))


class MedianInterval(unittest.TestCase):
    def test_too_few_values_give_no_interval(self):
        for n in range(0, 6):
            self.assertIsNone(cpu.median_interval(list(range(n))))

    def test_order_statistics_and_their_coverage(self):
        # For 30 values: the 10th smallest to the 10th largest, 95.7%.
        lo, hi, cover = cpu.median_interval(list(range(1, 31)))
        self.assertEqual((lo, hi), (10, 21))
        self.assertAlmostEqual(cover, 0.9572, places=4)
        for n in range(6, 80):
            v = list(range(n))
            lo, hi, cover = cpu.median_interval(v)
            k = lo + 1
            # exact: 1 - 2 P(Binomial(n, 1/2) < k), and k is the widest
            # rank that keeps it at 95% or more
            tail = sum(math.comb(n, i) for i in range(k)) / 2.0 ** n
            self.assertAlmostEqual(cover, 1 - 2 * tail, places=12)
            self.assertGreaterEqual(cover, 0.95)
            wider = tail + math.comb(n, k) / 2.0 ** n
            self.assertLess(1 - 2 * wider, 0.95, "n=%d: k could be larger" % n)
            self.assertEqual(hi, v[n - k])

    def test_unsorted_input(self):
        v = [5, 1, 4, 2, 3, 9, 8, 7, 6, 0]
        self.assertEqual(cpu.median_interval(v)[:2], (1, 8))

    def test_holds_the_true_median_on_skewed_noise(self):
        # Ratios like a VM's: lognormal around 1.08 with 10% outliers that
        # halve or double the run; the true median of that mixture is
        # found by simulation first.
        rng = random.Random(12)

        def draw():
            x = 1.08 * math.exp(rng.gauss(0, 0.1))
            u = rng.random()
            return x * 0.5 if u < 0.05 else x * 2 if u < 0.10 else x

        big = sorted(draw() for _ in range(200001))
        true_median = big[100000]
        trials, held = 2000, 0
        for _ in range(trials):
            lo, hi, _ = cpu.median_interval([draw() for _ in range(30)])
            held += lo <= true_median <= hi
        self.assertGreaterEqual(held / trials, 0.94)
        self.assertLessEqual(held / trials, 0.99)


class Paired(unittest.TestCase):
    def test_within_round_best_of_two_each(self):
        cells = {
            ("do-nothing", "-t 1", 1): by_round(ok(100), ok(50)),
            ("do-nothing", "-t 2", 1): by_round(ok(120), ok(60)),
            ("memcached", "-t 1", 1): by_round(ok(90), ok(40)),
            ("memcached", "-t 2", 1): by_round(ok(100), ok(45)),
            ("shmkv", "-t 1 (4 KiB pages)", 1): by_round(ok(1000), ok(1000)),
            ("shmkv", "-t 2 (4 KiB pages)", 1): by_round(ok(1000), ok(1000)),
            ("shmkv", "-t 1 (2 MiB pages)", 1): by_round(ok(105), ok(54)),
            ("shmkv", "-t 2 (2 MiB pages)", 1): by_round(ok(110), ok(36)),
        }
        p = cpu.paired(cells, 1, 2)
        # 4 KiB runs do not compete once 2 MiB ones exist
        self.assertEqual([round(x, 4) for x in p["vs_memcached"]], [1.1, 1.2])
        self.assertEqual([round(x, 4) for x in p["vs_nothing"]],
                         [round(110 / 120, 4), 0.9])
        self.assertEqual([round(x, 4) for x in p["memcached_vs_nothing"]],
                         [round(100 / 120, 4), 0.75])

    def test_a_round_with_a_system_missing_is_left_out(self):
        failed = {"status": "FAILED: it crashed", "ops": None}
        cells = {
            ("do-nothing", "-t 1", 1): by_round(ok(100), ok(100), ok(100)),
            ("memcached", "-t 1", 1): by_round(ok(100), failed, ok(50)),
            ("shmkv", "-t 1 (4 KiB pages)", 1): by_round(ok(120), ok(500), failed),
            ("shmkv", "-t 1 (2 MiB pages)", 1): by_round(ok(1), ok(1), ok(1)),
        }
        # Only the 2 MiB run competes, and round 1 lacks memcached's: two
        # rounds remain.
        p = cpu.paired(cells, 1, 3)
        self.assertEqual(p["vs_memcached"], [0.01, 0.02])
        del cells[("shmkv", "-t 1 (2 MiB pages)", 1)]
        # 4 KiB pages only: they compete, and round 2 lacks shmkv's.
        p = cpu.paired(cells, 1, 3)
        self.assertEqual(p["vs_memcached"], [1.2])

    def test_other_depths_are_not_mixed_in(self):
        cells = {(s, "-t 1", d): by_round(ok(100 * d + (s == "shmkv")))
                 for s in cpu.SYSTEMS for d in (1, 16)}
        self.assertEqual(cpu.paired(cells, 16, 1)["vs_memcached"], [1601 / 1600])


if __name__ == "__main__":
    unittest.main(verbosity=2)
