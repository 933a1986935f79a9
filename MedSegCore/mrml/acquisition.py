"""Volumes Slicer loaded from an irregular DICOM series, in the panels.

Slicer's DICOM reader (DICOMScalarVolumePlugin, "Acquisition geometry regularization", on by default
since Slicer 5.2) leaves the voxels of a series with uneven spacing, missing slices or gantry tilt
on SimpleITK's uniform grid and puts the volume under a non-linear grid transform that moves each
slice to where its DICOM header says (``AcquisitionModeling.createAcquisitionTransform``).  The
voxel array alone is then in the wrong place, so a segmentation computed from it would be too.

The panels therefore refuse such a volume, unless asked to regularise it: then the volume is
copied and the copy's transform hardened (``HardenTransform``: Slicer resamples the voxels through
the transform onto a regular grid, Slicer's own "harden regularization transform" option), and the
copy is segmented.  The command line does the same from the DICOM files (``io.read_volume``).
"""
from __future__ import annotations

import logging

from ..errors import InputError

log = logging.getLogger("medseg")


def nonlinear_transform(volume_node):
    """The transform node above ``volume_node`` if the volume's transform to world is non-linear."""
    transform = volume_node.GetParentTransformNode()
    if transform is None or transform.IsTransformToWorldLinear():
        return None
    return transform


def volume_to_segment(volume_node, regularize: bool = False):
    """``volume_node`` itself, or - when it lies under a non-linear (acquisition) transform - a
    regularised copy if ``regularize`` (refused otherwise, with the reason)."""
    transform = nonlinear_transform(volume_node)
    if transform is None:
        return volume_node
    name = volume_node.GetName()
    if not regularize:
        raise InputError(f"volume '{name}' lies under the non-linear transform '{transform.GetName()}' (Slicer's "
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
