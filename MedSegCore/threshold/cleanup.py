"""Mask clean-up shared by threshold and network results: islands and holes, in 2D or 3D.

All functions take a boolean KJI mask and return a new boolean mask; ``per_slice=True`` works on
each axial (K) slice independently, as users of slice-wise tools expect.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

_STRUCT_3D = ndimage.generate_binary_structure(3, 1)   # 6-connectivity, as Slicer's Islands effect
_STRUCT_2D = ndimage.generate_binary_structure(2, 1)


def _per_slice(fn, mask, *args):
    out = np.zeros_like(mask, dtype=bool)
    for k in range(mask.shape[0]):
        if mask[k].any():
            out[k] = fn(mask[k], *args)
    return out


def _largest(mask: np.ndarray) -> np.ndarray:
    struct = _STRUCT_3D if mask.ndim == 3 else _STRUCT_2D
    labels, n = ndimage.label(mask, structure=struct)
    if n <= 1:
        return mask.astype(bool, copy=True)
    counts = np.bincount(labels.ravel())
    counts[0] = 0
    return labels == int(np.argmax(counts))


def keep_largest_component(mask: np.ndarray, per_slice: bool = False) -> np.ndarray:
    """Keep only the largest connected component (6-connected in 3D, 4-connected in 2D)."""
    mask = np.asarray(mask, dtype=bool)
    return _per_slice(_largest, mask) if per_slice else _largest(mask)


def _remove_small(mask: np.ndarray, min_voxels: float) -> np.ndarray:
    struct = _STRUCT_3D if mask.ndim == 3 else _STRUCT_2D
    labels, n = ndimage.label(mask, structure=struct)
    if n == 0:
        return mask.astype(bool, copy=True)
    counts = np.bincount(labels.ravel())
    keep = counts >= min_voxels
    keep[0] = False
    return keep[labels]


def remove_small_islands(mask: np.ndarray, min_size_mm3: float, spacing, per_slice: bool = False) -> np.ndarray:
    """Remove connected components smaller than ``min_size_mm3`` (``spacing`` is I, J, K mm).

    In 2D mode the size of an island is its area times the slice thickness, so the threshold
    means the same physical volume in both modes."""
    if min_size_mm3 < 0:
        raise ValueError(f"minimum island size must be >= 0 mm3, got {min_size_mm3}")
    mask = np.asarray(mask, dtype=bool)
    min_voxels = float(min_size_mm3) / float(np.prod(spacing))
    if min_voxels <= 1:
        return mask.copy()
    return _per_slice(_remove_small, mask, min_voxels) if per_slice else _remove_small(mask, min_voxels)


def _fill(mask: np.ndarray) -> np.ndarray:
    struct = _STRUCT_3D if mask.ndim == 3 else _STRUCT_2D
    return ndimage.binary_fill_holes(mask, structure=struct)


def fill_holes(mask: np.ndarray, per_slice: bool = False) -> np.ndarray:
    """Fill background regions not connected to the volume's border."""
    mask = np.asarray(mask, dtype=bool)
    return _per_slice(_fill, mask) if per_slice else _fill(mask)


def clean(mask: np.ndarray, spacing, largest: bool = False, min_size_mm3: float = 0.0,
          holes: bool = False, per_slice: bool = False) -> np.ndarray:
    """Apply the chosen clean-up steps in Slicer's order: small islands, largest island, holes."""
    out = np.asarray(mask, dtype=bool)
    if min_size_mm3:
        out = remove_small_islands(out, min_size_mm3, spacing, per_slice)
    if largest:
        out = keep_largest_component(out, per_slice)
    if holes:
        out = fill_holes(out, per_slice)
    return out
