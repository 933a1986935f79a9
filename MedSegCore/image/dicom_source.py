"""The source instances of a DICOM series, one per slice, in the order of the volume's K axis.

A DICOM SEG refers to each of its frames' source image by SOP Instance UID, so writing one needs the
series' instances in the order :func:`MedSegCore.image.io.read_volume` stacked them.  Headers are read
by :func:`MedSegCore.image.dicom_headers.scan` (pydicom), sorted by position along the slice normal (row x column direction, the
order GDCM's series helper gives SimpleITK's ``GetGDCMSeriesFileNames``; the tests compare the two), and
checked slice by slice against the volume's geometry, so a SEG can never name the wrong slice.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .dicom_headers import scan
from .geometry import Geometry

POSITION_TOL = 0.2        # of the smallest voxel spacing: slice positions may jitter (scanners), never by a slice


@dataclass(frozen=True)
class SourceSlice:
    """One source image: its file and SOP Instance UID, and ``k`` its slice index in the volume."""

    k: int
    path: str
    sop_instance_uid: str


def series_slices(folder: str, geometry: Geometry, series_uid: str | None = None) -> list:
    """[SourceSlice] of the series read from ``folder`` onto ``geometry``, in K order.

    The series is ``series_uid``, else the one with the most instances (the rule of
    :func:`MedSegCore.image.io.choose_dicom_series`).  Every slice must lie where the geometry puts
    it (orientation, pixel spacing, rows and columns, position of voxel (0, 0, k)); otherwise
    :class:`InputError` says which slice disagrees and how."""
    folder = str(folder)
    if not os.path.isdir(folder):
        raise InputError(f"{folder}: not a DICOM series folder")
    series = scan(folder).series
    if not series:
        raise InputError(f"{folder}: folder holds no DICOM series")
    if series_uid is None:
        series_uid = max(series, key=lambda u: len(series[u]))
    elif series_uid not in series:
        raise InputError(f"{folder}: no series with UID {series_uid}")
    items = list(series[series_uid])
    for item in items:
        for value, keyword in ((item.orientation, "ImageOrientationPatient"), (item.position, "ImagePositionPatient"),
                               (item.pixel_spacing, "PixelSpacing"), (item.sop_uid, "SOPInstanceUID")):
            if value is None:
                raise InputError(f"{item.path}: {keyword} is missing or malformed; cannot place the slice")
    normal = np.cross(items[0].orientation[:3], items[0].orientation[3:])
    items.sort(key=lambda item: float(normal @ item.position))
    _check_grid(items, geometry, folder)
    return [SourceSlice(k, item.path, item.sop_uid) for k, item in enumerate(items)]


def _check_grid(items, geometry: Geometry, folder: str) -> None:
    """Raise InputError unless slice k of ``items`` is slice k of ``geometry``."""
    if len(items) != geometry.size[2]:
        raise InputError(f"{folder}: series has {len(items)} instances but the volume {geometry.size[2]} slices; "
                         "it cannot be referenced slice by slice")
    ijk_to_lps = geometry.ijk_to_lps()
    lps = ijk_to_lps[:3, :3] / np.asarray(geometry.spacing, float)      # unit axis directions in LPS
    tol = POSITION_TOL * min(geometry.spacing)
    uids = set()
    for k, item in enumerate(items):
        path, iop = item.path, np.asarray(item.orientation, float)
        if not (np.allclose(iop[:3], lps[:, 0], atol=1e-4) and np.allclose(iop[3:], lps[:, 1], atol=1e-4)):
            raise InputError(f"{path}: slice {k} is not oriented as the volume (ImageOrientationPatient "
                             f"{np.round(iop, 4).tolist()}); a DICOM SEG needs one orientation for the whole series")
        spacing = np.asarray(item.pixel_spacing, float)     # row spacing (along J), column spacing (along I)
        if not np.allclose(spacing[::-1], geometry.spacing[:2], atol=1e-4):
            raise InputError(f"{path}: slice {k} has pixel spacing {spacing.tolist()}, the volume "
                             f"{list(geometry.spacing[1::-1])}")
        rows, columns = item.size
        if (columns, rows) != tuple(geometry.size[:2]):
            raise InputError(f"{path}: slice {k} is {columns}x{rows} pixels, the volume "
                             f"{geometry.size[0]}x{geometry.size[1]}")
        position = np.asarray(item.position, float)
        expected = (ijk_to_lps @ [0.0, 0.0, float(k), 1.0])[:3]
        if np.abs(position - expected).max() > tol:
            raise InputError(f"{path}: slice {k} lies at {np.round(position, 3).tolist()} (LPS mm), the volume's "
                             f"slice {k} at {np.round(expected, 3).tolist()}; slices are missing or unevenly spaced")
        if item.sop_uid in uids:
            raise InputError(f"{path}: SOP Instance UID {item.sop_uid} appears twice in the series")
        uids.add(item.sop_uid)
