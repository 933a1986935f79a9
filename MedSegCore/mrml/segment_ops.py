"""Node-level operations shared by the MedSegThreshold module, its effect and the CLI.

Each function computes everything first and only then touches the scene, so an error leaves the
scene as it was.
"""
from __future__ import annotations

import numpy as np

from .. import __version__, terminology
from ..image import dicom_seg, io, resample, validate
from . import nodes
from ..threshold import engine
from ..errors import InputError, ParameterError

THRESHOLD_ALGORITHM = terminology.THRESHOLD_ALGORITHM


def threshold_algorithm() -> dicom_seg.Algorithm:
    """How threshold segments are made, for DICOM SEG files (semi-automatic: a person picks the range)."""
    return dicom_seg.Algorithm("SEMIAUTOMATIC", THRESHOLD_ALGORITHM, __version__, "threshold")


def mask_from_segment(segmentation_node, segment_name: str, volume_node) -> np.ndarray:
    """Boolean mask, on the volume's grid, of an existing segment (resampled by Slicer if needed)."""
    segment_id = nodes.segment_id_by_name(segmentation_node, segment_name)
    if segment_id is None:
        raise ParameterError(f"no segment '{segment_name}' in '{segmentation_node.GetName()}'; "
                             f"segments: {', '.join(nodes.segment_names(segmentation_node)) or 'none'}")
    return nodes.segment_array(segmentation_node, segment_id, volume_node)


def mask_from_file(path: str, geometry, segment_name: str | None = None) -> np.ndarray:
    """Boolean mask on ``geometry`` from a mask file: a ``.seg.nrrd`` or DICOM SEG ``.dcm`` (one
    named segment, or all segments together) or a NIfTI/NRRD label volume (non-zero voxels),
    resampled by nearest neighbour.  A mask that does not overlap the volume is an error."""
    import slicer

    if dicom_seg.is_seg_path(path):
        segments, seg_geometry = dicom_seg.read_seg(path)
        if segment_name is not None and segment_name not in segments:
            raise ParameterError(f"no segment '{segment_name}' in {path}; segments: {', '.join(segments)}")
        if not resample.overlaps(seg_geometry, geometry):
            raise InputError(f"{path}: mask does not overlap the volume")
        union = np.logical_or.reduce([m for n, m in segments.items() if segment_name in (None, n)])
        mask = resample.resample(union, seg_geometry, geometry, "nearest").astype(bool)
    elif io.extension(path) == ".seg.nrrd":
        node = nodes.load_segmentation(path)
        try:
            ref = nodes.reference_geometry(node)
            if not resample.overlaps(ref, geometry):
                raise InputError(f"{path}: mask does not overlap the volume")
            names = [segment_name] if segment_name else nodes.segment_names(node)
            masks = [mask_from_segment(node, n, geometry) for n in names]
        finally:
            slicer.mrmlScene.RemoveNode(node)
        mask = np.logical_or.reduce(masks)
    else:
        if segment_name:
            raise ParameterError(f"--mask-segment {segment_name!r}: the mask {path} is a label map, which has no "
                                 "named segments (use a .seg.nrrd mask, or leave --mask-segment out)")
        array, mask_geometry = io.read_volume(path)
        validate.check_labelmap(array, path)
        if not resample.overlaps(mask_geometry, geometry):
            raise InputError(f"{path}: mask does not overlap the volume")
        mask = resample.resample(array != 0, mask_geometry, geometry, "nearest").astype(bool)
    if not mask.any():
        raise InputError(f"{path}: mask is empty on the volume's grid (no overlap with the volume)")
    return mask


def apply_threshold(volume_node, params: engine.ThresholdParameters, segmentation_node=None,
                    roi: np.ndarray | None = None, replace: bool = False):
    """Threshold ``volume_node`` and write the result segment(s).

    A new segmentation node is created unless ``segmentation_node`` is given; in an existing node
    only the written segments change, and a segment of the same name is replaced only if
    ``replace``.  Returns (segmentation node, [SegmentResult])."""
    import slicer

    array, geometry = nodes.volume_array(volume_node)
    buffers = []           # threshold straight into labelmaps a segment can hold

    def allocate():
        buffers.append(nodes.new_labelmap(geometry))
        return buffers[-1][1]
    results = engine.segment(array, geometry.spacing, params, roi, allocate)
    images = {id(view): image for image, view in buffers}
    if segmentation_node is not None and not replace:
        clash = [r.name for r in results if nodes.segment_id_by_name(segmentation_node, r.name)]
        if clash:
            raise ParameterError(f"segment(s) {', '.join(clash)} already exist in "
                                 f"'{segmentation_node.GetName()}'; choose another name or allow replacing")
    created = segmentation_node is None
    if created:
        segmentation_node = nodes.new_segmentation_node(f"{volume_node.GetName()} segmentation", volume_node)
    preset_term = engine.preset_terminology(params)
    tag = terminology.slicer_tag(preset_term)
    tags = terminology.algorithm_tags("SEMIAUTOMATIC", THRESHOLD_ALGORITHM)
    try:
        with slicer.util.NodeModify(segmentation_node):
            for r in results:
                image = images.get(id(r.mask))      # None: clean-up made a new array
                labelmap = (nodes.cropped(image, r.mask, geometry, r.box) if image is not None
                            else nodes.oriented_image(r.mask, geometry, r.box))
                # a replaced segment keeps its own terminology unless a preset says what it is
                keep = preset_term is None and nodes.segment_id_by_name(segmentation_node, r.name) is not None
                nodes.write_segment(segmentation_node, r.mask, geometry, r.name, r.color, replace,
                                    terminology=None if keep else tag, labelmap=labelmap, tags=tags)
    except Exception:
        if created:
            slicer.mrmlScene.RemoveNode(segmentation_node)
        raise
    return segmentation_node, results


def copy_mask_as_segment(volume_node, mask: np.ndarray, name: str, segmentation_node=None, color=None,
                         replace: bool = False):
    """Write a mask (already on the volume's grid) in as a segment; returns the segmentation node."""
    geometry = nodes.geometry_of(volume_node)
    if segmentation_node is None:
        segmentation_node = nodes.new_segmentation_node(f"{volume_node.GetName()} segmentation", volume_node)
    nodes.write_segment(segmentation_node, mask, geometry, name, color, replace)
    return segmentation_node
