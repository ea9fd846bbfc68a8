"""test_difftest.py - a short, fixed-seed differential stream: shmkv answers as memcached

Runs tests/e2e/difftest.py's generator for a few fixed seeds, text and meta
mixed, against a private memcached and a shmkv-server, and fails with the
report (a minimal stream per divergence) if any reply differs.

What the tester normalises, and what it keeps out of the streams because
two correct servers may disagree on it (clock readings, memcached's
reference counts), is in difftest.py's opening comment; the deliberate
differences docs/compatibility.md lists are kept out of the streams or
compared as that page says.
"""
import io
import os

import difftest
import harness
from harness import ServerTest

SEEDS = [1, 2, 3]
OPS = 1500


class DifferentialTest(ServerTest):
    def test_fixed_seeds_agree_with_memcached(self):
        self.assertTrue(os.access(difftest.MEMCACHED, os.X_OK),
                        "%s is needed (make test installs memcached)"
                        % difftest.MEMCACHED)
        out = io.StringIO()
        found = difftest.run(harness.SERVER, SEEDS, OPS, "all", out, quiet=True)
        self.assertEqual(found, {}, "\n" + out.getvalue())


if __name__ == "__main__":
    harness.main()
