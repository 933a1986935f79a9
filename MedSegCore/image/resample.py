"""Resampling one grid onto another (SimpleITK; geometry through the LPS/RAS pair in geometry.py)."""
from __future__ import annotations

import numpy as np

from .geometry import Geometry, to_sitk


def resample(array: np.ndarray, source: Geometry, target: Geometry, interpolation: str = "nearest",
             default: float = 0, extrapolate: bool = False) -> np.ndarray:
    """Resample a KJI ``array`` on ``source`` onto ``target``: 'nearest' keeps the dtype (labels),
    'linear' gives float32 (intensities).  Voxels of ``target`` outside ``source`` get ``default``,
    or with ``extrapolate`` the nearest source voxel's value.  The same grid returns ``array``."""
    if source.same_grid(target):
        return np.asarray(array)
    import SimpleITK as sitk

    modes = {"nearest": sitk.sitkNearestNeighbor, "linear": sitk.sitkLinear}
    if interpolation not in modes:
        raise ValueError(f"unknown interpolation '{interpolation}'; use one of {', '.join(modes)}")
    src = np.asarray(array, dtype=np.float32) if interpolation == "linear" else np.asarray(array)
    image = to_sitk(np.ascontiguousarray(src), source)
    f = sitk.ResampleImageFilter()
    f.SetReferenceImage(to_sitk(np.zeros(target.shape, dtype=np.uint8), target))
    f.SetInterpolator(modes[interpolation])
    f.SetDefaultPixelValue(float(default))
    f.SetUseNearestNeighborExtrapolator(extrapolate)
    f.SetOutputPixelType(image.GetPixelID())
    return sitk.GetArrayFromImage(f.Execute(image))


def overlaps(source: Geometry, target: Geometry) -> bool:
    """True if the two grids' bounding boxes intersect in physical space."""
    def box(g: Geometry):
        corners = np.array([[i, j, k, 1] for i in (-0.5, g.size[0] - 0.5) for j in (-0.5, g.size[1] - 0.5)
                            for k in (-0.5, g.size[2] - 0.5)])
        pts = (g.ijk_to_ras() @ corners.T).T[:, :3]
        return pts.min(axis=0), pts.max(axis=0)
    (a0, a1), (b0, b1) = box(source), box(target)
    return bool(np.all(a0 <= b1) and np.all(b0 <= a1))


def covering_grid(base: Geometry, other: Geometry, tol: float = 1e-3) -> Geometry:
    """``base``'s grid (same spacing and directions, same voxel centres) extended to cover every
    voxel centre of ``other``."""
    corners = np.array([[i, j, k, 1.0] for i in (0, other.size[0] - 1) for j in (0, other.size[1] - 1)
                        for k in (0, other.size[2] - 1)]).T
    index = (np.linalg.inv(base.ijk_to_ras()) @ other.ijk_to_ras() @ corners)[:3]
    low = np.minimum(np.floor(index.min(axis=1) + tol), 0)
    high = np.maximum(np.ceil(index.max(axis=1) - tol), np.array(base.size) - 1)
    origin = (base.ijk_to_ras() @ np.append(low, 1.0))[:3]
    return Geometry((high - low + 1).astype(int), base.spacing, origin, base.direction)
