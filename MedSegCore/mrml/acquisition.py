"""Volumes Slicer loaded from an irregular DICOM series, in the panels.

Slicer's DICOM reader (DICOMScalarVolumePlugin, "Acquisition geometry regularization", on by default
since Slicer 5.2) leaves the voxels of a series with uneven spacing, missing slices or gantry tilt
on SimpleITK's uniform grid and puts the volume under a non-linear grid transform that moves each
slice to where its DICOM header says (``AcquisitionModeling.createAcquisitionTransform``).  The
voxel array alone is then in the wrong place, so a segmentation computed from it would be too.

The panels therefore refuse such a volume when the transform moves its slices by more than the
jitter tolerance of the DICOM checks (``image.dicom_series``: 0.1 mm + 5 % of the voxel size; less
is only warned about), unless asked to regularise it: then the volume is
copied and the copy's transform hardened (``HardenTransform``: Slicer resamples the voxels through
the transform onto a regular grid, Slicer's own "harden regularization transform" option), and the
copy is segmented.  The command line does the same from the DICOM files (``io.read_volume``).
"""
from __future__ import annotations

import logging

import numpy as np

from ..errors import InputError
from ..image.dicom_series import JITTER_ATOL, JITTER_RTOL

log = logging.getLogger("medseg")


def nonlinear_transform(volume_node):
    """The transform node above ``volume_node`` if the volume's transform to world is non-linear."""
    transform = volume_node.GetParentTransformNode()
    if transform is None or transform.IsTransformToWorldLinear():
        return None
    return transform


def max_displacement(volume_node) -> float:
    """How far (mm) the volume's transform moves the corners of its slices - where Slicer's
    acquisition transform is defined (AcquisitionModeling.cornersToWorld)."""
    from .nodes import geometry_of

    geometry = geometry_of(volume_node)
    columns, rows, slices = geometry.size
    ijk_to_ras = geometry.ijk_to_ras()
    worst = 0.0
    for k in range(slices):
        for j in (0, rows):
            for i in (0, columns):
                point = (ijk_to_ras @ [i, j, k, 1])[:3]
                moved = [0.0, 0.0, 0.0]
                volume_node.TransformPointToWorld(list(point), moved)
                worst = max(worst, float(np.linalg.norm(np.asarray(moved) - point)))
    return worst


def volume_to_segment(volume_node, regularize: bool = False):
    """``volume_node`` itself, or - when it lies under a non-linear (acquisition) transform - a
    regularised copy if ``regularize`` (refused otherwise, with the reason).  A transform that
    moves the slices less than the jitter tolerance of the DICOM checks is only warned about."""
    transform = nonlinear_transform(volume_node)
    if transform is None:
        return volume_node
    name = volume_node.GetName()
    moved = max_displacement(volume_node)
    tolerance = JITTER_ATOL + JITTER_RTOL * min(volume_node.GetSpacing())
    if not regularize and moved <= tolerance:
        log.warning("volume '%s' lies under the non-linear transform '%s', which moves its slices up to %.3g mm "
                    "(within tolerance %.3g mm): segmented on its voxel grid ('Regularize DICOM geometry' resamples "
                    "it first)", name, transform.GetName(), moved, tolerance)
        return volume_node
    if not regularize:
        raise InputError(f"volume '{name}' lies under the non-linear transform '{transform.GetName()}', which moves "
                         f"its slices up to {moved:.3g} mm (Slicer's "
                         "acquisition geometry regularization of an irregular DICOM series: uneven spacing, missing "
                         "slices or gantry tilt); its voxels are not where the transform shows them. Tick "
                         "'Regularize DICOM geometry' to resample it onto a regular grid")
    import slicer

    scene = volume_node.GetScene()
    copy = slicer.modules.volumes.logic().CloneVolume(scene, volume_node, f"{name} regularized")     # CloneVolume makes it unique
    copy.SetAndObserveTransformNodeID(transform.GetID())
    copy.HardenTransform()
    dims = copy.GetImageData().GetDimensions()
    log.warning("volume '%s' regularized: resampled through the non-linear transform '%s' onto a regular grid "
                "(%d x %d x %d voxels) as '%s'", name, transform.GetName(), *dims, copy.GetName())
    return copy
