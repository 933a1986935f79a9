"""Benchmark: all evaluation metrics of a 512x512x300 mask pair against SimpleITK's filters.

Each pair is two large overlapping ellipsoids (about 20 % of the volume each, 0.7 x 0.9 x 2.5 mm):
"far" differ in size and position (Dice ~0.94, HD ~26 mm; the hard case for surface distances),
"close" as a good prediction would (Dice ~0.99, HD a few mm).  Project: ``compute_metrics`` (overlap, volumes,
Hausdorff, HD95, ASSD, per-slice Dice).  Baseline: SimpleITK ``LabelOverlapMeasuresImageFilter``
plus ``HausdorffDistanceImageFilter`` on the same pair (Hausdorff and mean distance only).
"""
from __future__ import annotations

import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(os.path.dirname(HERE))]

from common import best_time  # noqa: E402

from MedSegCore.image.geometry import Geometry, to_sitk  # noqa: E402
from MedSegCore.evaluation.metrics import compute_metrics  # noqa: E402

SPACING = (0.7, 0.9, 2.5)


PAIRS = {  # (centre K, J, I), (radii K, J, I) of prediction and reference, in voxels
    "far": (((150, 256, 256), (110, 180, 190)), ((145, 262, 250), (105, 185, 180))),
    "close": (((150, 256, 256), (110, 180, 190)), ((149, 258, 254), (109, 182, 188))),
}


def ellipsoid_pair(kind="far", shape=(300, 512, 512)):
    """Two overlapping ellipsoids (KJI bool), built slice by slice to keep memory low."""
    j, i = np.ogrid[:shape[1], :shape[2]]
    out = []
    for (ck, cj, ci), (rk, rj, ri) in PAIRS[kind]:
        m = np.empty(shape, dtype=bool)
        plane = ((j - cj) / rj) ** 2 + ((i - ci) / ri) ** 2
        for kk in range(shape[0]):
            np.less(plane, 1 - ((kk - ck) / rk) ** 2, out=m[kk])
        out.append(m)
    return out


def run(report):
    import SimpleITK as sitk

    for kind in ("far", "close"):
        pred, ref = ellipsoid_pair(kind)
        geo = Geometry(pred.shape[::-1], SPACING, (0, 0, 0), np.eye(3))
        ours = best_time(lambda: compute_metrics(pred, ref, SPACING), repeat=3)
        m = compute_metrics(pred, ref, SPACING)
        p_img, r_img = to_sitk(pred, geo), to_sitk(ref, geo)

        def overlap():
            f = sitk.LabelOverlapMeasuresImageFilter()
            f.Execute(p_img, r_img)
            return f

        def hausdorff():
            f = sitk.HausdorffDistanceImageFilter()
            f.Execute(p_img, r_img)
            return f

        t_overlap = best_time(overlap, repeat=3)
        t_hd = best_time(hausdorff, repeat=1, warmup=0)
        f_ov, f_hd = overlap(), hausdorff()
        assert abs(f_ov.GetDiceCoefficient() - m.dice) < 1e-9
        assert abs(f_hd.GetHausdorffDistance() - m.hausdorff_mm) < np.linalg.norm(SPACING)
        case = (f"all metrics, 512x512x300 ellipsoids, {kind} (Dice {m.dice:.3f}, HD {m.hausdorff_mm:.1f} mm, "
                f"HD95 {m.hd95_mm:.1f} mm)")
        report(case, ours, "SimpleITK LabelOverlapMeasures + HausdorffDistance", t_overlap + t_hd)
        report(f"all metrics vs overlap only, {kind}", ours, "SimpleITK LabelOverlapMeasures", t_overlap)


if __name__ == "__main__":
    run(lambda case, ours, name, base: print(f"{case}: {ours:.3f} s; {name}: {base:.3f} s ({base / ours:.1f}x)"))
