"""Reading and writing image files with exact geometry; every read is validated.

Supported inputs: NIfTI (.nii, .nii.gz), NRRD (.nrrd, .nhdr), MetaImage (.mha, .mhd) and DICOM
series folders.  Errors are :class:`InputError` with one line naming the file and the problem.
Writes are atomic: a file appears complete under its final name, or not at all.
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile

import numpy as np

from ..errors import InputError
from .geometry import Geometry, from_sitk, to_sitk

log = logging.getLogger("medseg")

VOLUME_EXTENSIONS = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


def extension(path: str) -> str:
    """Lower-case extension, keeping double ones (.nii.gz, .seg.nrrd)."""
    name = os.path.basename(str(path)).lower()
    for ext in (".seg.nrrd", ".nii.gz"):
        if name.endswith(ext):
            return ext
    return os.path.splitext(name)[1]


def _dicom_series(folder: str):
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    series = {}
    for root, _, _ in os.walk(folder):
        for uid in reader.GetGDCMSeriesIDs(root) or ():
            files = reader.GetGDCMSeriesFileNames(root, uid)
            if len(files) > len(series.get(uid, ())):
                series[uid] = files
    return series


def choose_dicom_series(folder: str, series_uid: str | None = None):
    """File names of one DICOM series in ``folder``: ``series_uid``, else the one with most slices."""
    series = _dicom_series(folder)
    if not series:
        raise InputError(f"{folder}: folder holds no DICOM series")
    if series_uid is not None:
        if series_uid not in series:
            raise InputError(f"{folder}: no series with UID {series_uid}; found: {', '.join(sorted(series))}")
        return series[series_uid]
    uid = max(series, key=lambda u: len(series[u]))
    if len(series) > 1:
        log.warning("%s: %d DICOM series found; using %s (%d slices). Choose another with --series UID: %s",
                    folder, len(series), uid, len(series[uid]),
                    ", ".join(f"{u} ({len(f)})" for u, f in series.items() if u != uid))
    return series[uid]


def _check_gzip_complete(path: str) -> None:
    """ITK reads a truncated .gz NIfTI silently (missing voxels become 0): check the stream ends
    properly and its CRC matches before trusting it."""
    import gzip
    import zlib

    try:
        with gzip.open(path, "rb") as f:
            while f.read(1 << 22):
                pass
    except (EOFError, OSError, zlib.error) as exc:
        raise InputError(f"{path}: compressed file is truncated or corrupt ({exc})") from None


_NIFTI_FLOATS = {16: "f4", 64: "f8"}


def _nifti_nonfinite(path: str) -> int:
    """Count NaN/inf voxels of a float NIfTI file from its raw data: ITK's NIfTI reader silently
    turns NaN into 0, so the check after reading cannot see them."""
    import gzip
    import struct

    opener = gzip.open if path.lower().endswith(".gz") else open
    with opener(path, "rb") as f:
        head = f.read(540)
        for endian in "<>":
            size = struct.unpack(endian + "i", head[:4])[0]
            if size in (348, 540):
                break
        else:
            return 0
        if size == 348:
            datatype = struct.unpack(endian + "h", head[70:72])[0]
            offset = int(struct.unpack(endian + "f", head[108:112])[0])
        else:
            datatype = struct.unpack(endian + "h", head[12:14])[0]
            offset = int(struct.unpack(endian + "q", head[168:176])[0])
        if datatype not in _NIFTI_FLOATS:
            return 0
        dtype = np.dtype(endian + _NIFTI_FLOATS[datatype])
        f.seek(max(offset, size))
        bad, rest = 0, b""
        while True:
            chunk = f.read(1 << 24)
            if not chunk:
                return bad
            chunk = rest + chunk
            usable = len(chunk) - len(chunk) % dtype.itemsize
            bad += int(np.count_nonzero(~np.isfinite(np.frombuffer(chunk[:usable], dtype))))
            rest = chunk[usable:]


def _read_sitk(path: str, series_uid: str | None = None):
    import SimpleITK as sitk

    if not os.path.exists(path):
        raise InputError(f"{path}: no such file or folder")
    try:
        if os.path.isdir(path):
            files = choose_dicom_series(path, series_uid)
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(files)
            return reader.Execute()
        if os.path.getsize(path) == 0:
            raise InputError(f"{path}: file is empty")
        if path.lower().endswith(".gz"):
            _check_gzip_complete(path)
        if extension(path) in (".nii", ".nii.gz"):
            bad = _nifti_nonfinite(path)
            if bad:
                raise InputError(f"{path}: image has {bad} NaN or infinite voxel(s)")
        return sitk.ReadImage(path)
    except RuntimeError as exc:
        detail = str(exc).strip().splitlines()
        reason = next((ln for ln in detail if "rror" in ln or "annot" in ln), detail[-1] if detail else "")
        raise InputError(f"{path}: cannot read image (unreadable, truncated or unsupported): {reason.strip()[:200]}") from None


def validate_image(array: np.ndarray, source: str) -> None:
    """Raise InputError unless ``array`` is a non-empty, finite, scalar 3D volume."""
    if array.size == 0:
        raise InputError(f"{source}: image is empty (size {array.shape})")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise InputError(f"{source}: voxel type {array.dtype} is not a real scalar")
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise InputError(f"{source}: image has {bad} NaN or infinite voxel(s)")


def sitk_to_volume(image, source: str = "image"):
    """(KJI array, Geometry) of a SimpleITK image, after checking it is a usable 3D scalar volume."""
    import SimpleITK as sitk

    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{source}: image has {image.GetNumberOfComponentsPerPixel()} components per voxel "
                         "(RGB or vector data); a scalar volume is needed")
    dim = image.GetDimension()
    if dim == 4 and image.GetSize()[3] == 1:
        image = image[:, :, :, 0]
    elif dim == 2:
        image = sitk.JoinSeries(image)
    elif dim != 3:
        raise InputError(f"{source}: image is {dim}D (size {image.GetSize()}); a 3D volume is needed")
    if 0 in image.GetSize():
        raise InputError(f"{source}: image is empty (size {image.GetSize()})")
    array = sitk.GetArrayFromImage(image)
    validate_image(array, source)
    return array, from_sitk(image)


def read_volume(path: str, series_uid: str | None = None):
    """Read a scalar 3D volume (file or DICOM folder) as (KJI array, Geometry in RAS)."""
    path = str(path)
    return sitk_to_volume(_read_sitk(path, series_uid), path)


@contextlib.contextmanager
def atomic_path(path: str):
    """Yield a temporary path beside ``path`` with the same extension; move it into place on
    success, delete it on failure, so no half-written file is ever left under ``path``."""
    path = str(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"{path}: output folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=".medseg-", suffix=extension(path) or ".tmp", dir=folder)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)          # mkstemp makes 0600; give the file normal permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_volume(array: np.ndarray, geometry: Geometry, path: str, compress: bool = True) -> None:
    """Write a KJI array on ``geometry`` as NIfTI/NRRD/MHA (chosen by extension), atomically."""
    import SimpleITK as sitk

    if extension(path) not in VOLUME_EXTENSIONS:
        raise InputError(f"{path}: unsupported output extension; use one of {', '.join(VOLUME_EXTENSIONS)}")
    image = to_sitk(array, geometry)
    with atomic_path(path) as tmp:
        sitk.WriteImage(image, tmp, compress)
