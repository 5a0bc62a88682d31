"""Memory stays flat however long the run: a transient 10x longer raises peak RSS by
less than 10% (300-node RC ladder, the bench circuit)."""
import os
import sys
import unittest

from ngstest import NGSCALE, SRC, TempDir, peak_rss_kib, read_h5_plots, run

sys.path.insert(0, os.path.join(SRC, "bench"))
import gen_circuits  # noqa: E402


SANITIZED = os.environ.get("NGSCALE_SANITIZED") == "1"


@unittest.skipIf(SANITIZED, "peak RSS is meaningless under AddressSanitizer (its quarantine "
                            "keeps freed memory); measured in the plain build")
class FlatMemory(unittest.TestCase):
    def test_ten_times_longer_transient(self):
        with TempDir() as d:
            rss = {}
            points = {}
            for factor in (1, 10):
                cir = os.path.join(d, "ladder%d.cir" % factor)
                with open(cir, "w") as f:
                    f.write(gen_circuits.rc_ladder(300, "%du" % (20 * factor), "2n"))
                out = os.path.join(d, "out%d.h5" % factor)
                rss[factor] = min(peak_rss_kib([NGSCALE, "run", "-q", cir, "-o", out])
                                  for _ in range(2))
                plots, attrs = read_h5_plots(out)
                self.assertEqual(attrs["memory_mode"], "flat")
                points[factor] = plots[0]["attrs"]["points"]
            print("points %s, peak RSS KiB %s, ratio %.3f" % (points, rss, rss[10] / rss[1]))
            self.assertGreater(points[10], 5 * points[1], "the long run really is longer")
            self.assertLess(rss[10], 1.10 * rss[1])

    def test_keep_mode_grows(self):
        """The opposite case, so the test above can fail: with ngspice keeping its
        vectors, memory grows with the run."""
        with TempDir() as d:
            rss = {}
            for factor in (1, 10):
                cir = os.path.join(d, "ladder%d.cir" % factor)
                with open(cir, "w") as f:
                    f.write(gen_circuits.rc_ladder(300, "%du" % (20 * factor), "2n"))
                rss[factor] = peak_rss_kib([NGSCALE, "run", "-q", "--memory", "keep", cir,
                                            "-o", os.path.join(d, "o.h5")])
            self.assertGreater(rss[10], 1.5 * rss[1])


if __name__ == "__main__":
    unittest.main()
