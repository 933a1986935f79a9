"""Shared pieces of the benchmarks: timing, the standard synthetic CT, result rows.

Each ``bench_*.py`` module defines ``run(report)``; it calls
``report(case, project_seconds, baseline_name, baseline_seconds)`` once per comparison.
``python Testing/benchmarks/run.py`` (``make bench``) runs them all and prints the ratios.
"""
from __future__ import annotations

import time

import numpy as np


def best_time(fn, repeat: int = 5, warmup: int = 1) -> float:
    """Best wall time of ``fn()`` in seconds over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def synthetic_ct(shape=(300, 512, 512), seed: int = 0) -> np.ndarray:
    """int16 KJI CT-like volume: air outside, soft-tissue body, fat rim, lung, bone, vessels."""
    rng = np.random.default_rng(seed)
    k, j, i = np.ogrid[:shape[0], :shape[1], :shape[2]]
    cz, cy, cx = (s / 2 for s in shape)
    vol = np.full(shape, -1000, dtype=np.int16)
    body = ((j - cy) / (0.42 * shape[1])) ** 2 + ((i - cx) / (0.45 * shape[2])) ** 2 < 1
    vol[np.broadcast_to(body, shape)] = -100                                      # fat rim
    inner = ((j - cy) / (0.38 * shape[1])) ** 2 + ((i - cx) / (0.41 * shape[2])) ** 2 < 1
    vol[np.broadcast_to(inner, shape)] = 40                                       # soft tissue
    for side in (-1, 1):
        lung = (((j - cy) / (0.22 * shape[1])) ** 2 + ((i - cx - side * 0.2 * shape[2]) / (0.14 * shape[2])) ** 2
                + ((k - cz) / (0.4 * shape[0])) ** 2) < 1
        vol[lung] = -850
    spine = ((j - cy - 0.28 * shape[1]) ** 2 + (i - cx) ** 2) < (0.05 * shape[2]) ** 2
    vol[np.broadcast_to(spine, shape)] = 700
    aorta = ((j - cy - 0.12 * shape[1]) ** 2 + (i - cx + 0.05 * shape[2]) ** 2) < (0.03 * shape[2]) ** 2
    vol[np.broadcast_to(aorta, shape)] = 300
    vol += rng.normal(0, 20, size=shape).astype(np.int16)
    return vol


def vtk_threshold(image, lower: float, upper: float):
    """A callable running ``vtkImageThreshold`` (lower..upper -> 1, else 0, unsigned char) on a
    vtkImageData: the baseline of the threshold benchmarks."""
    import vtk

    f = vtk.vtkImageThreshold()
    f.SetInputData(image)
    f.ThresholdBetween(lower, upper)
    f.SetInValue(1)
    f.SetOutValue(0)
    f.SetOutputScalarTypeToUnsignedChar()

    def run():
        f.Modified()
        f.Update()
    return run

