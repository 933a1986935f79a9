"""A segmentation node written as a DICOM SEG: each segment's name, colour, terminology and algorithm
tags read as Slicer's own DICOM SEG exporter reads them (DICOMSegmentationPlugin in Slicer, formerly in
QuantitativeReporting: ``vtkSlicerTerminologiesModuleLogic.DeserializeTerminologyEntry`` of the segment's
terminology tag, ``DICOM.SegmentAlgorithmType``/``DICOM.SegmentAlgorithmName`` tags), so the file MedSeg
writes and the one Slicer would export carry the same codes.
"""
from __future__ import annotations

from ..image import dicom_seg
from ..image.geometry import Geometry
from ..terminology import ALGORITHM_NAME_TAG, ALGORITHM_TYPE_TAG
from . import nodes


def _code(coded) -> list | None:
    if coded is None or not coded.GetCodeValue() or not coded.GetCodingSchemeDesignator():
        return None
    return [coded.GetCodeValue(), coded.GetCodingSchemeDesignator(), coded.GetCodeMeaning() or ""]


def segment_terminology(segment) -> dict | None:
    """Model-card style terminology of a ``vtkSegment`` from its tag, deserialized by Slicer's logic;
    None when the tag gives no valid category and type (Slicer's exporter refuses those)."""
    import slicer

    entry = slicer.vtkSlicerTerminologyEntry()
    if not slicer.vtkSlicerTerminologiesModuleLogic.DeserializeTerminologyEntry(segment.GetTerminology(), entry):
        return None
    found = {"context": entry.GetTerminologyContextName(), "category": _code(entry.GetCategoryObject()),
             "type": _code(entry.GetTypeObject()), "modifier": _code(entry.GetTypeModifierObject()),
             "anatomic_region": _code(entry.GetRegionObject()),
             "anatomic_region_modifier": _code(entry.GetRegionModifierObject())}
    if found["category"] is None or found["type"] is None:
        return None
    return {k: v for k, v in found.items() if v}


def segment_algorithm(segment) -> tuple:
    """(algorithm type, algorithm name) of a ``vtkSegment`` as Slicer's exporter reads them: MANUAL
    and no name unless tagged."""
    import vtk

    kind, name = vtk.reference(""), vtk.reference("")
    kind = str(kind) if segment.GetTag(ALGORITHM_TYPE_TAG, kind) else "MANUAL"
    name = str(name) if segment.GetTag(ALGORITHM_NAME_TAG, name) else ""
    return kind, name


def segments_for_seg(segmentation_node, geometry: Geometry) -> list:
    """[dicom_seg.Segment] of every segment, masks on ``geometry``."""
    seg = segmentation_node.GetSegmentation()
    out = []
    for i in range(seg.GetNumberOfSegments()):
        segment, segment_id = seg.GetNthSegment(i), seg.GetNthSegmentID(i)
        kind, name = segment_algorithm(segment)
        out.append(dicom_seg.Segment(segment.GetName(), nodes.segment_array(segmentation_node, segment_id, geometry),
                                     tuple(segment.GetColor()), segment_terminology(segment), kind, name))
    return out


def save_dicom_seg(segmentation_node, geometry: Geometry, path: str, series_folder: str,
                   algorithm: dicom_seg.Algorithm, series_uid: str | None = None, description: str | None = None) -> None:
    """Write every segment of ``segmentation_node`` as a DICOM SEG on the series it was made on."""
    dicom_seg.write_seg(path, series_folder, geometry, segments_for_seg(segmentation_node, geometry), algorithm,
                        series_uid, description or segmentation_node.GetName())
