"""DICOM SEG out and in (highdicom), so results go back to PACS and come back from it.

Writing (:func:`write_seg`): masks on the grid of a DICOM series, as :func:`MedSegCore.image.io.read_volume`
reads it, become a BINARY Segmentation that references that series: study, series, frame of reference
and, per frame, its source instance (frames follow the series' own instances, found and checked by
:mod:`MedSegCore.image.dicom_source`).  Each segment carries its name, colour (CIELab, from RGB),
category and type codes and the algorithm that made it; patient and study attributes are copied from
the source by highdicom.  Reading (:func:`read_seg`): a SEG's segments on the grid its plane positions
describe (highdicom's ``get_volume``), as boolean KJI masks with a :class:`Geometry` in RAS.

highdicom is an optional dependency (``pip install medseg[dicom]``); without it both say what to install.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np

from .. import __version__
from ..errors import EmptyResultError, InputError, MedSegError, ParameterError
from ..terminology import codes
from . import io
from .dicom_source import series_slices
from .geometry import Geometry

log = logging.getLogger("medseg")
SEG_EXTENSION = ".dcm"
HIGHDICOM = "highdicom==0.28.2"


@dataclass(frozen=True)
class Segment:
    """One segment to write: boolean KJI ``mask``, ``color`` (r, g, b in 0-1) and ``terminology``
    (model-card form, see :mod:`MedSegCore.terminology`; None means Slicer's default Tissue); ``kind``
    and ``algorithm_name`` override the :class:`Algorithm` given to :func:`write_seg` for this segment."""

    name: str
    mask: np.ndarray
    color: tuple
    terminology: dict | None = None
    kind: str | None = None                 # algorithm type of this segment (default: the writer's)
    algorithm_name: str | None = None


@dataclass(frozen=True)
class Algorithm:
    """How the segments were made: ``kind`` MANUAL, SEMIAUTOMATIC or AUTOMATIC, ``name`` and
    ``version``; ``family`` 'threshold' (histogram analysis) or 'ai' (artificial intelligence)."""

    kind: str
    name: str
    version: str
    family: str = "threshold"


def require_highdicom():
    """The highdicom module, or a MedSegError saying how to install it."""
    try:
        import highdicom
    except ImportError:
        raise MedSegError(f"DICOM SEG files need highdicom: pip install '{HIGHDICOM}' "
                          "(or pip install 'medseg[dicom]')") from None
    return highdicom


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]


def is_seg_path(path: str) -> bool:
    """True for a path MedSeg reads or writes as a DICOM SEG (``.dcm``)."""
    return io.extension(str(path)) == SEG_EXTENSION


def check_seg_input(source: str, output: str) -> None:
    """Raise ParameterError unless ``source`` (the image the result is made on) is a DICOM series
    folder, as a DICOM SEG output needs; then check highdicom is there, before any work."""
    if not os.path.isdir(str(source)):
        raise ParameterError(f"{output}: a DICOM SEG (.dcm) output needs a DICOM series folder as input; "
                             f"{source} is a file (write .seg.nrrd, .nii.gz or .nrrd instead)")
    require_highdicom()


def _coded(value):
    from highdicom.sr import CodedConcept

    return CodedConcept(value=value[0], scheme_designator=value[1], meaning=value[2])


def _description(hd, number: int, segment: Segment, algorithm: Algorithm):
    from pydicom.sr.codedict import codes as dcm_codes

    found = codes(segment.terminology)
    kind, identification = segment.kind or algorithm.kind, None
    if kind != "MANUAL":
        family = dcm_codes.cid7162.ArtificialIntelligence if algorithm.family == "ai" \
            else dcm_codes.cid7162.HistogramAnalysis
        name = segment.algorithm_name or algorithm.name
        identification = hd.AlgorithmIdentificationSequence(name=name[:64], family=family,
                                                             version=algorithm.version[:64])
    rgb = [int(round(min(max(c, 0.0), 1.0) * 255)) for c in segment.color]
    description = hd.seg.SegmentDescription(
        segment_number=number, segment_label=segment.name[:64],
        segmented_property_category=_coded(found["category"]), segmented_property_type=_coded(found["type"]),
        algorithm_type=kind, algorithm_identification=identification,
        anatomic_regions=[_coded(found["anatomic_region"])] if "anatomic_region" in found else None,
        display_color=hd.color.CIELabColor.from_rgb(*rgb))
    if "modifier" in found:
        from pydicom.dataset import Dataset
        item = Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = found["modifier"]
        description.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence = [item]
    return description


def write_seg(path: str, series_folder: str, geometry: Geometry, segments, algorithm: Algorithm,
              series_uid: str | None = None, description: str = "MedSeg segmentation") -> None:
    """Write ``segments`` (masks on ``geometry``, the grid the series was read onto) as a DICOM SEG
    referencing the series in ``series_folder``, atomically.  Empty segments are written without
    frames (all empty: one empty frame per slice, since a SEG needs frames)."""
    hd = require_highdicom()
    import pydicom

    segments = list(segments)
    if not segments:
        raise EmptyResultError(f"{path}: no segment to write")
    for s in segments:
        if s.mask.shape != geometry.shape:
            raise ParameterError(f"segment '{s.name}': mask shape {s.mask.shape} is not the volume's {geometry.shape}")
    slices = series_slices(series_folder, geometry, series_uid)
    sources = [pydicom.dcmread(s.path, stop_before_pixels=True) for s in slices]
    for ds in sources:
        if "FrameOfReferenceUID" not in ds:
            raise InputError(f"{ds.filename}: has no Frame of Reference UID; a DICOM SEG cannot refer to it")
    pixels = np.stack([np.asarray(s.mask, dtype=bool) for s in segments], axis=-1)   # (K, J, I, segments)
    empty = [s.name for s in segments if not s.mask.any()]
    if empty:
        log.info("%s: segment(s) %s are empty (written without frames)", path, ", ".join(empty))
    number = sources[0].get("SeriesNumber")
    try:
        seg = hd.seg.Segmentation(
            source_images=sources, pixel_array=pixels, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=[_description(hd, i, s, algorithm) for i, s in enumerate(segments, start=1)],
            series_instance_uid=hd.UID(), series_number=(int(number) + 100) if number not in (None, "") else 100,
            sop_instance_uid=hd.UID(), instance_number=1, manufacturer="MedSeg", manufacturer_model_name="MedSeg",
            software_versions=__version__, device_serial_number="0", content_label="MEDSEG",
            content_description=description[:64], series_description=description[:64],
            omit_empty_frames=len(empty) < len(segments))
    except (ValueError, TypeError, AttributeError) as exc:
        raise InputError(f"{series_folder}: cannot build a DICOM SEG on this series: {_first_line(exc)}") from None
    with io.atomic_path(path) as tmp:
        seg.save_as(tmp)


def _geometry(volume) -> Geometry:
    """Geometry (RAS, IJK = column, row, frame) of a highdicom Volume (LPS, indices frame, row, column)."""
    affine = np.asarray(volume.affine, dtype=float)[:, [2, 1, 0, 3]]
    frames, rows, columns = volume.spatial_shape
    return Geometry.from_ijk_to_lps(affine, (columns, rows, frames))


def read_seg(path: str) -> tuple:
    """({segment label: boolean KJI mask}, Geometry) of a DICOM SEG file, on the grid of its frames."""
    hd = require_highdicom()
    path = str(path)
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    try:
        seg = hd.seg.segread(path)
    except Exception as exc:                      # pydicom/highdicom raise many kinds for a bad file
        raise InputError(f"{path}: not a readable DICOM SEG ({type(exc).__name__}: {_first_line(exc)})") from None
    numbers = list(seg.segment_numbers)
    try:
        volume = seg.get_volume(combine_segments=False, segment_numbers=numbers)
    except (ValueError, RuntimeError) as exc:
        raise InputError(f"{path}: frames do not form a regular 3D grid ({_first_line(exc)})") from None
    if volume is None:
        raise InputError(f"{path}: DICOM SEG has no frames")
    geometry = _geometry(volume)
    array = np.asarray(volume.array)
    fractional = seg.segmentation_type == hd.seg.SegmentationTypeValues.FRACTIONAL
    masks, seen = {}, set()
    for index, number in enumerate(numbers):
        label = str(seg.get_segment_description(number).segment_label)
        if label in seen:
            label = f"{label} ({number})"
        seen.add(label)
        data = array[..., index]
        masks[label] = np.ascontiguousarray(data >= 0.5 if fractional else data > 0)
    return masks, geometry
