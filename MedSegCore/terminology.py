"""Segment terminology (DICOM coded concepts) and Slicer's serialized terminology entry.

A terminology is a dict in the model card's form: ``category`` and ``type`` (required), optionally
``modifier``, ``anatomic_region`` and ``anatomic_region_modifier``, each ``[code value, coding scheme
designator, code meaning]``, plus an optional ``context`` (the Slicer terminology context it comes
from).  :func:`slicer_tag` writes the string Slicer keeps in a segment's terminology tag; its format is
the one of ``vtkSlicerTerminologiesModuleLogic::SerializeTerminologyEntry`` (Slicer,
Modules/Loadable/Terminologies/Logic/vtkSlicerTerminologiesModuleLogic.h):
``context~category~type~modifier~regionContext~region~regionModifier`` with each code as
``scheme^value^meaning``.  Slicer's DICOM SEG exporter (DICOMSegmentationPlugin) deserializes it and
needs a valid category and type.
"""
from __future__ import annotations

DICOM_CONTEXT = "Segmentation category and type - DICOM master list"
SLICER_CONTEXT = "Segmentation category and type - 3D Slicer General Anatomy list"
REGION_CONTEXT = "Anatomic codes - DICOM master list"
_KEYS = ("category", "type", "modifier", "anatomic_region", "anatomic_region_modifier")

# What Slicer gives a new segment (Libs/vtkSegmentationCore/vtkSegment.cxx): Tissue / Tissue.
DEFAULT = {"context": SLICER_CONTEXT, "category": ["85756007", "SCT", "Tissue"], "type": ["85756007", "SCT", "Tissue"]}

# Tags Slicer's DICOM SEG exporter reads from each segment (DICOMSegmentationPlugin._createSegmentData):
# MANUAL unless told, and a non-manual segment must name its algorithm.
ALGORITHM_TYPE_TAG = "DICOM.SegmentAlgorithmType"
ALGORITHM_NAME_TAG = "DICOM.SegmentAlgorithmName"
ALGORITHM_TYPES = ("MANUAL", "SEMIAUTOMATIC", "AUTOMATIC")
THRESHOLD_ALGORITHM = "MedSeg threshold"       # the algorithm name of every threshold segment


def codes(terminology: dict | None) -> dict:
    """{key: (value, scheme, meaning)} of a terminology, falling back to :data:`DEFAULT` if none."""
    terminology = terminology or DEFAULT
    return {k: tuple(str(v) for v in terminology[k]) for k in _KEYS if terminology.get(k)}


def slicer_tag(terminology: dict | None) -> str:
    """Slicer's terminology entry string of ``terminology`` (:data:`DEFAULT` if None)."""
    terminology = terminology or DEFAULT
    found = codes(terminology)

    def code(key):
        c = found.get(key)
        return f"{c[1]}^{c[0]}^{c[2]}" if c else "^^"
    return "~".join([terminology.get("context", DICOM_CONTEXT), code("category"), code("type"), code("modifier"),
                     REGION_CONTEXT, code("anatomic_region"), code("anatomic_region_modifier")])


def algorithm_tags(kind: str, name: str) -> dict:
    """Segment tags that tell Slicer's DICOM SEG exporter how a segment was made."""
    if kind not in ALGORITHM_TYPES:
        raise ValueError(f"algorithm type {kind!r} is not one of {', '.join(ALGORITHM_TYPES)}")
    return {ALGORITHM_TYPE_TAG: kind, ALGORITHM_NAME_TAG: name}
