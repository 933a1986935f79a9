"""Reading segmentation files for evaluation: ``.seg.nrrd`` through Slicer's segmentation storage,
DICOM SEG through ``MedSegCore.image.dicom_seg`` (highdicom), label maps through ``MedSegCore.image.io``, both as ``MedSegCore.evaluation.labels.Labels``."""
from __future__ import annotations

from ..evaluation.labels import Labels, evaluate_labels, labels_from_array
from ..image import dicom_seg, io


def read_segmentation(path: str, onto=None):
    """(geometry, {segment name: bool mask}, {segment name: rgb colour}) of a ``.seg.nrrd`` file:
    its own reference geometry, and the masks on that grid or on ``onto`` (a Geometry) if given."""
    import slicer

    from . import nodes
    node = nodes.load_segmentation(path)
    try:
        geometry = nodes.reference_geometry(node)
        masks = nodes.segment_arrays(node, geometry if onto is None else onto)
        seg = node.GetSegmentation()
        colors = {seg.GetNthSegment(i).GetName(): tuple(seg.GetNthSegment(i).GetColor())
                  for i in range(seg.GetNumberOfSegments())}
    finally:
        slicer.mrmlScene.RemoveNode(node)
    return geometry, masks, colors


def read_labels(path: str) -> Labels:
    """Read a ``.seg.nrrd``, a DICOM SEG or a label-map file (errors name the file and the problem)."""
    path = str(path)
    if dicom_seg.is_seg_path(path):
        masks, geometry = dicom_seg.read_seg(path)
        return Labels(path, geometry, masks=masks, frames_only=True)
    if io.extension(path) == ".seg.nrrd":
        geometry, masks, _ = read_segmentation(path)
        return Labels(path, geometry, masks=masks)
    array, geometry = io.read_volume(path)
    return labels_from_array(path, array, geometry)


def evaluate_files(pred_path: str, ref_path: str, mapping=None, distances: bool = True, case: str = ""):
    """Metrics rows for one prediction file against one reference file, plus both on the
    reference grid (returned for overlays and reports)."""
    ref = read_labels(ref_path)
    pred = read_labels(pred_path)
    return evaluate_labels(pred, ref, mapping, distances, case)
