"""Regularising an irregular DICOM acquisition: each slice is resampled from its own DICOM position
onto one regular grid (what Slicer's "harden regularization transform" gives, Slicer
DICOMScalarVolumePlugin.AcquisitionModeling, without a grid transform in between).

The grid: the first slice's origin, rows and columns; slices perpendicular to them (the normal of
ImageOrientationPatient), from the first to the last slice position at the series' own step (the
median gap, so a missing slice is filled in at the native spacing); widened in-plane by whole
pixels so that a tilted stack loses nothing.  Each slice goes onto that lattice through
MedSegCore's resampler (``resample.resample``, linear), then neighbouring slices are blended
linearly by distance along the normal.  Voxels no slice covers get the series' minimum.
"""
from __future__ import annotations

import numpy as np

from .geometry import Geometry, from_sitk
from .resample import resample


def target_grid(lay, stacked: Geometry) -> Geometry:
    """The regular grid (RAS) for the slices of ``lay``; ``stacked`` is the grid SimpleITK put
    them on (first slice's origin, rows, columns and normal)."""
    rows, cols = lay.slices[0].size
    dcol, drow = stacked.spacing[0], stacked.spacing[1]
    span = float(lay.z[-1])
    gaps = np.diff(lay.z)
    steps = max(1, int(round(span / float(np.median(gaps))))) if len(gaps) else 1
    along_row = np.rint(lay.lateral[:, 0] / dcol).astype(int)
    along_col = np.rint(lay.lateral[:, 1] / drow).astype(int)
    lo = np.array([min(0, along_row.min()), min(0, along_col.min())])
    hi = np.array([max(0, along_row.max()), max(0, along_col.max())])
    d = stacked.direction_matrix
    origin = np.asarray(stacked.origin) + lo[0] * dcol * d[:, 0] + lo[1] * drow * d[:, 1]
    size = (cols + int(hi[0] - lo[0]), rows + int(hi[1] - lo[1]), steps + 1)
    return Geometry(size, (dcol, drow, span / steps if span > 0 else 1.0), origin, d)


def regularize_slices(lay, image):
    """SimpleITK image of the slices of ``lay`` resampled onto :func:`target_grid`; ``image`` is
    SimpleITK's read of the slices in ``lay`` order (its pixels are right, its slice positions
    are not)."""
    import SimpleITK as sitk

    from .geometry import to_sitk

    stacked = from_sitk(image)
    array = sitk.GetArrayFromImage(image)
    target = target_grid(lay, stacked)
    fill = float(array.min())
    d = stacked.direction_matrix
    lattice = Geometry((target.size[0], target.size[1], 1), (target.spacing[0], target.spacing[1], 1.0),
                       target.origin, target.direction)
    on_lattice = []
    for k, (z, (a, b)) in enumerate(zip(lay.z, lay.lateral)):
        # distances along the slice axes are the same in LPS and RAS: place slice k from them
        origin = np.asarray(stacked.origin) + a * d[:, 0] + b * d[:, 1] + z * d[:, 2]
        source = Geometry((stacked.size[0], stacked.size[1], 1), lattice.spacing, origin, stacked.direction)
        here = Geometry(lattice.size, lattice.spacing, np.asarray(lattice.origin) + z * d[:, 2], lattice.direction)
        on_lattice.append(resample(array[k:k + 1], source, here, "linear", default=fill)[0].astype(np.float32))
    out = np.empty(target.shape, dtype=np.float32)
    for k in range(target.size[2]):
        if len(lay.z) == 1:
            out[k] = on_lattice[0]
            continue
        zk = k * target.spacing[2]
        i = int(np.clip(np.searchsorted(lay.z, zk, side="right") - 1, 0, len(lay.z) - 2))
        w = float(np.clip((zk - lay.z[i]) / (lay.z[i + 1] - lay.z[i]), 0.0, 1.0))
        out[k] = (1 - w) * on_lattice[i] + w * on_lattice[i + 1]
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        out = np.clip(np.rint(out), info.min, info.max).astype(array.dtype)
    return to_sitk(out, target)
