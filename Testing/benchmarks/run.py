"""Run the benchmarks (``make bench``): each case's time, a baseline measured in the same run, ratio.

Usage: python Testing/benchmarks/run.py [NAME ...]   (NAME: threshold, autothreshold, preview, metrics,
predict, catalog, backends; default all).  Nothing here asserts: the numbers are for people to read and record.
"""
from __future__ import annotations

import importlib
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE), os.path.dirname(os.path.dirname(HERE))]


def main(argv) -> int:
    names = argv or sorted(f[6:-3] for f in os.listdir(HERE) if f.startswith("bench_") and f.endswith(".py"))
    rows = []

    def report(case, seconds, baseline_name, baseline_seconds):
        ratio = seconds / baseline_seconds if baseline_seconds else float("inf")
        rows.append((case, seconds, baseline_name, baseline_seconds, ratio))
        print(f"{case:<48} {seconds * 1000:10.1f} ms   {baseline_name:<34} {baseline_seconds * 1000:10.1f} ms"
              f"   ratio {ratio:6.2f}", flush=True)

    print(f"{'case':<48} {'MedSeg':>13}   {'baseline':<34} {'':>13}   ratio")
    for name in names:
        start = time.perf_counter()
        try:
            importlib.import_module(f"bench_{name}").run(report)
        except Exception as exc:  # keep going: one broken benchmark must not hide the others
            print(f"{name}: FAILED: {exc!r}")
        print(f"-- {name} done in {time.perf_counter() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
