"""Network results as Slicer nodes: segments with the card's names, colours and terminology,
probability maps as scalar volumes, and undo of the last write.

Writing into an existing segmentation replaces only the model's own segments (matched by name);
:class:`SegmentUndo` records what was there so the change can be undone.
"""
from __future__ import annotations

import numpy as np

from . import nodes
from .. import terminology
from ..image.geometry import Geometry

TERMINOLOGY_CONTEXT = terminology.DICOM_CONTEXT
ANATOMY_CONTEXT = terminology.REGION_CONTEXT


def terminology_tag(card_terminology: dict | None) -> str | None:
    """Slicer's terminology entry string for a card label's terminology (codes: [value, scheme,
    meaning]; see :func:`MedSegCore.terminology.slicer_tag`), None without one."""
    return terminology.slicer_tag(card_terminology) if card_terminology else None


def model_tags(model_name: str) -> dict | None:
    """DICOM algorithm tags of a model's segments (AUTOMATIC, the model's name), if it has a name."""
    return terminology.algorithm_tags("AUTOMATIC", model_name) if model_name else None


def label_specs(labels) -> list:
    """(value, name, color, terminology tag) for nodes.write_label_segments, from card labels."""
    return [(lab.value, lab.name, tuple(lab.color), terminology_tag(lab.terminology)) for lab in labels]


class SegmentUndo:
    """Snapshot of named segments of a segmentation, restorable after they were replaced or added."""

    def __init__(self, segmentation_node, names):
        import slicer

        self.node = segmentation_node
        self.saved = {}          # name -> (copy of the vtkSegment, its ID, its index)
        self.names = list(names)
        segmentation = segmentation_node.GetSegmentation()
        for name in self.names:
            segment_id = nodes.segment_id_by_name(segmentation_node, name)
            if segment_id is not None:
                copy = slicer.vtkSegment()
                copy.DeepCopy(segmentation.GetSegment(segment_id))
                self.saved[name] = (copy, segment_id, segmentation.GetSegmentIndex(segment_id))

    def restore(self) -> None:
        """Put the segmentation back as it was for these names (remove added ones)."""
        segmentation = self.node.GetSegmentation()
        for name in self.names:
            segment_id = nodes.segment_id_by_name(self.node, name)
            if segment_id is not None:
                segmentation.RemoveSegment(segment_id)
        for name, (copy, segment_id, index) in sorted(self.saved.items(), key=lambda item: item[1][2]):
            before = segmentation.GetNthSegmentID(index) if index < segmentation.GetNumberOfSegments() else ""
            segmentation.AddSegment(copy, segment_id, before)


class NewNodeUndo:
    """Undo for a run that created its segmentation node: remove that node."""

    def __init__(self, node):
        self.node = node

    def restore(self) -> None:
        import slicer

        if self.node is not None and self.node.GetScene() is not None:
            slicer.mrmlScene.RemoveNode(self.node)


def write_prediction(prediction, geometry: Geometry, reference, segmentation_node=None, name: str = "Segmentation"):
    """Write a Prediction's label map as segments.  A new node is created unless one is given; in an
    existing node the model's segments (same names) are replaced and no other segment changes.
    Segments are tagged AUTOMATIC with the model's name, for Slicer's DICOM SEG export.
    Returns (segmentation node, an undo object with ``restore()``)."""
    specs = label_specs(prediction.labels)
    if segmentation_node is None:
        segmentation_node = nodes.new_segmentation_node(name, reference)
        undo = NewNodeUndo(segmentation_node)
    else:
        undo = SegmentUndo(segmentation_node, [s[1] for s in specs])
    nodes.write_label_segments(segmentation_node, prediction.labelmap, geometry, specs, replace=True,
                               tags=model_tags(getattr(prediction, "model_name", "")))
    return segmentation_node, undo


def add_probability_volumes(prediction, geometry: Geometry, prefix: str) -> list:
    """One scalar volume node per label probability map (values 0..1), for re-thresholding."""
    volumes = []
    for label_name, array in (prediction.probabilities or {}).items():
        volumes.append(nodes.add_volume_node(np.asarray(array, np.float32), geometry, f"{prefix} {label_name} probability"))
    return volumes
