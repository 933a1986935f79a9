"""Automatic thresholds on the standard 512x512x300 int16 CT: ours vs SimpleITK, histogram vs copy."""
from __future__ import annotations

import numpy as np

from common import best_time, synthetic_ct
from MedSegCore.threshold import autothreshold as at


def run(report):
    import SimpleITK as sitk

    vol = synthetic_ct()
    img = sitk.GetImageFromArray(vol)
    report("otsu threshold, 512x512x300 int16", best_time(lambda: at.compute_threshold(vol, "otsu"), repeat=3),
           "sitk.OtsuThreshold", best_time(lambda: sitk.OtsuThreshold(img, 0, 1), repeat=2))
    report("histogram (one pass), 512x512x300 int16", best_time(lambda: at.histogram(vol), repeat=3),
           "np.copy", best_time(lambda: np.copy(vol), repeat=3))
    hist = at.histogram(vol)
    report("all 11 methods from one histogram", best_time(
        lambda: [at.compute_threshold(None, m, histogram=hist) for m in at.METHODS], repeat=3),
        "sitk.OtsuThreshold", best_time(lambda: sitk.OtsuThreshold(img, 0, 1), repeat=1))
    flt = vol.astype(np.float32)
    fimg = sitk.GetImageFromArray(flt)
    report("otsu threshold, 512x512x300 float32", best_time(lambda: at.compute_threshold(flt, "otsu"), repeat=2),
           "sitk.OtsuThreshold", best_time(lambda: sitk.OtsuThreshold(fimg, 0, 1), repeat=1))
    mo = sitk.OtsuMultipleThresholdsImageFilter()
    mo.SetNumberOfThresholds(4)
    report("multi-Otsu 5 classes, 128 bins, int16", best_time(lambda: at.multi_otsu(vol, 5), repeat=2),
           "sitk.OtsuMultipleThresholds", best_time(lambda: mo.Execute(img), repeat=1))
