"""Headers of the DICOM files below a folder, read with pydicom (no pixel data), grouped by series.

A file that looks like DICOM (a ``DICM`` preamble or a .dcm/.dicom/.ima name) but cannot be parsed,
or whose uncompressed pixel data is shorter than its Rows x Columns x BitsAllocated say, is kept
as *unreadable* with the reason: GDCM's series scan drops such files silently, so a corrupt slice
in the middle of a series would otherwise vanish from the volume.  Files that are not DICOM images
(DICOMDIR, reports, text) are ignored.
"""
from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import InputError

log = logging.getLogger("medseg")

_DICOM_EXTENSIONS = (".dcm", ".dicom", ".ima")


@dataclass
class Slice:
    """What the header of one slice file says."""

    path: str
    series_uid: str
    instance: int | None
    sop_uid: str | None
    position: np.ndarray | None      # ImagePositionPatient (LPS mm)
    orientation: np.ndarray | None   # ImageOrientationPatient (row, column cosines)
    size: tuple                      # (Rows, Columns)
    pixel_spacing: tuple | None      # (row spacing, column spacing) mm
    frames: int

    @property
    def name(self) -> str:
        number = f" (instance {self.instance})" if self.instance is not None else ""
        return os.path.basename(self.path) + number


@dataclass
class Scan:
    """Slices of each series found below a folder, and the files that look like DICOM but cannot
    be used (path, series UID or None, reason)."""

    series: dict
    unreadable: list


def _looks_like_dicom(path: str) -> bool:
    if path.lower().endswith(_DICOM_EXTENSIONS):
        return True
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def _floats(value, count: int):
    try:
        values = np.array([float(v) for v in value], dtype=float)
    except (TypeError, ValueError):
        return None
    return values if values.size == count and np.all(np.isfinite(values)) else None


def _is_image_class(sop_class) -> bool:
    name = getattr(sop_class, "name", "") or ""
    return "Image Storage" in name


def _pixel_data_problem(ds, path: str) -> str | None:
    """Why the pixel data of an uncompressed slice cannot be complete, or None."""
    element = ds.get_item(0x7FE00010, keep_deferred=True)
    if element is None:
        return "it has no pixel data (file truncated or not an image)"
    length = getattr(element, "length", None)
    tell = getattr(element, "value_tell", None)
    if length is None or length == 0xFFFFFFFF:       # encapsulated (compressed): left to the decoder
        return None
    try:
        expected = (int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1))
                    * int(ds.get("NumberOfFrames", 1) or 1) * int(ds.BitsAllocated) + 7) // 8
    except (AttributeError, TypeError, ValueError):
        return "its image size tags are missing or invalid"
    deflated = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "")) == "1.2.840.10008.1.2.1.99"
    # a deflated file is read inflated in memory: the element's offset is not one in the file
    available = os.path.getsize(path) - tell if tell is not None and not deflated else length
    if min(length, available) < expected:
        return f"pixel data has {max(0, min(length, available))} of {expected} bytes (file truncated)"
    return None


def read_header(path: str):
    """(Slice, None) for an image slice, (None, (series UID or None, reason)) for a file that looks
    like DICOM but is unusable, (None, None) for a file that is not a DICOM image at all."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    looks = _looks_like_dicom(path)
    try:
        if os.path.getsize(path) == 0:
            return (None, (None, "file is empty")) if looks else (None, None)
        with warnings.catch_warnings():          # pydicom warns about odd values; the checks below decide
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, defer_size=1024)
    except InvalidDicomError as exc:
        return (None, (None, f"not a valid DICOM file ({str(exc).split('.')[0]})")) if looks else (None, None)
    except Exception as exc:                             # pydicom raises many kinds on corrupt input
        return None, (None, f"cannot parse the DICOM header ({type(exc).__name__}: {str(exc)[:80]})")
    try:
        series_uid = str(ds.get("SeriesInstanceUID", "") or "") or None
        meta = getattr(ds, "file_meta", None)
        image = ("Rows" in ds or _is_image_class(ds.get("SOPClassUID"))
                 or _is_image_class(meta.get("MediaStorageSOPClassUID") if meta is not None else None))
        if not image:
            return None, None                            # DICOMDIR, structured report, RT plan, ...
        problem = _pixel_data_problem(ds, path)
        if problem:
            return None, (series_uid, problem)
        if series_uid is None:
            return None, (None, "it has no SeriesInstanceUID")
        instance = ds.get("InstanceNumber")
        spacing = _floats(ds.get("PixelSpacing"), 2)
        return Slice(path, series_uid, int(instance) if instance not in (None, "") else None,
                     str(ds.get("SOPInstanceUID", "")) or None, _floats(ds.get("ImagePositionPatient"), 3),
                     _floats(ds.get("ImageOrientationPatient"), 6), (int(ds.Rows), int(ds.Columns)),
                     tuple(spacing) if spacing is not None else None,
                     int(ds.get("NumberOfFrames", 1) or 1)), None
    except Exception as exc:
        return None, (None, f"invalid header ({type(exc).__name__}: {str(exc)[:80]})")


def scan(folder: str) -> Scan:
    """Read the header of every file below ``folder`` and group the image slices by series."""
    series, unreadable = {}, []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            if not os.path.isfile(path):
                continue
            entry, problem = read_header(path)
            if entry is not None:
                series.setdefault(entry.series_uid, []).append(entry)
            elif problem is not None:
                unreadable.append((path, problem[0], problem[1]))
    return Scan(series, unreadable)


def choose(found: Scan, folder: str, series_uid: str | None = None):
    """(UID, slices) of one series: ``series_uid``, else the one with most slices (a warning names
    the others)."""
    series = found.series
    if not series:
        if found.unreadable:
            path, _, reason = found.unreadable[0]
            raise InputError(f"{folder}: folder holds no readable DICOM series; {os.path.basename(path)}: {reason}")
        raise InputError(f"{folder}: folder holds no DICOM series")
    if series_uid is not None:
        if series_uid not in series:
            raise InputError(f"{folder}: no series with UID {series_uid}; found: {', '.join(sorted(series))}")
        return series_uid, series[series_uid]
    uid = max(series, key=lambda u: len(series[u]))
    if len(series) > 1:
        log.warning("%s: %d DICOM series found; using %s (%d slices). Choose another with --series UID: %s",
                    folder, len(series), uid, len(series[uid]),
                    ", ".join(f"{u} ({len(f)})" for u, f in series.items() if u != uid))
    return uid, series[uid]
