"""Resampling one grid onto another (SimpleITK; geometry through the LPS/RAS pair in geometry.py)."""
from __future__ import annotations

import numpy as np

from .geometry import Geometry, to_sitk


def resample(array: np.ndarray, source: Geometry, target: Geometry, interpolation: str = "nearest",
             default: float = 0) -> np.ndarray:
    """Resample a KJI ``array`` on ``source`` onto ``target`` ('nearest' for labels, 'linear' for
    intensities).  Voxels of ``target`` outside ``source`` get ``default``."""
    import SimpleITK as sitk

    if source.same_grid(target, tol=1e-6):
        return np.asarray(array).copy()
    modes = {"nearest": sitk.sitkNearestNeighbor, "linear": sitk.sitkLinear}
    if interpolation not in modes:
        raise ValueError(f"unknown interpolation '{interpolation}'; use one of {', '.join(modes)}")
    src = to_sitk(np.asarray(array), source)
    ref = to_sitk(np.zeros(target.shape, dtype=np.uint8), target)
    out = sitk.Resample(src, ref, sitk.Transform(), modes[interpolation], float(default), src.GetPixelID())
    return sitk.GetArrayFromImage(out)


def overlaps(source: Geometry, target: Geometry) -> bool:
    """True if the two grids' bounding boxes intersect in physical space."""
    def box(g: Geometry):
        corners = np.array([[i, j, k, 1] for i in (-0.5, g.size[0] - 0.5) for j in (-0.5, g.size[1] - 0.5)
                            for k in (-0.5, g.size[2] - 0.5)])
        pts = (g.ijk_to_ras() @ corners.T).T[:, :3]
        return pts.min(axis=0), pts.max(axis=0)
    (a0, a1), (b0, b1) = box(source), box(target)
    return bool(np.all(a0 <= b1) and np.all(b0 <= a1))
