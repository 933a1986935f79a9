"""Checks an image file must pass before a C++ reader sees it, and checks on what was read.

ITK's NIfTI reader reads a truncated ``.nii``, ``.hdr/.img`` pair or short gzip stream as zeros
and turns NaN into 0 without a word; teem aborts the process on a truncated ``.seg.nrrd``.  The
functions here read headers in Python (Slicer's Python has no NIfTI/NRRD library), check the
data holds every voxel the header promises, count NaN/infinite voxels in the file's own bytes,
and raise :class:`InputError` with one line naming the file and the problem.
"""
from __future__ import annotations

import os
import zlib

import numpy as np

from ..errors import InputError
from .limits import check_allocation

NIFTI_EXTENSIONS = (".nii", ".nii.gz", ".hdr", ".img", ".hdr.gz", ".img.gz")
NRRD_EXTENSIONS = (".nrrd", ".nhdr", ".seg.nrrd")


def kind(path: str) -> str:
    """'nifti', 'nrrd', 'metaimage' or '' from the file name."""
    name = os.path.basename(str(path)).lower()
    if name.endswith(NIFTI_EXTENSIONS):
        return "nifti"
    if name.endswith(NRRD_EXTENSIONS):
        return "nrrd"
    if name.endswith((".mha", ".mhd")):
        return "metaimage"
    return ""


def check_readable_file(path: str) -> None:
    """Raise InputError unless ``path`` is an existing, non-empty file this process may read."""
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file or folder")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a folder, not an image file")
    if not os.path.isfile(path):
        raise InputError(f"{path}: is not a regular file")
    if not os.access(path, os.R_OK):
        raise InputError(f"{path}: permission denied (file is not readable)")
    if os.path.getsize(path) == 0:
        raise InputError(f"{path}: file is empty")


def _scan(path: str, offset: int, compressed: bool, dtype, need: int, sink=None) -> tuple:
    """(data bytes present after ``offset``, NaN/inf count for float ``dtype``, stream complete).
    ``sink(bytes)`` (compressed files) receives the whole decompressed stream, header included."""
    floats = dtype is not None and dtype.kind in "fc"
    inflate = zlib.decompressobj(47) if compressed else None
    seen, bad, rest, complete = 0, 0, b"", not compressed
    try:
        with open(path, "rb") as f:
            if not compressed:
                f.seek(offset)
            skip = offset if compressed else 0
            while True:
                chunk = f.read(1 << 22)
                if not chunk:
                    break
                if inflate is not None:
                    chunk = inflate.decompress(chunk)
                    while inflate.eof and inflate.unused_data:          # concatenated gzip members
                        tail, inflate = inflate.unused_data, zlib.decompressobj(47)
                        chunk += inflate.decompress(tail)
                    if sink is not None:
                        sink(chunk)
                if skip:
                    cut = min(skip, len(chunk))
                    chunk, skip = chunk[cut:], skip - cut
                chunk = chunk[:max(0, need - seen)] if seen + len(chunk) > need else chunk
                seen += len(chunk)
                if floats and chunk:
                    chunk = rest + chunk
                    usable = len(chunk) - len(chunk) % dtype.itemsize
                    bad += int(np.count_nonzero(~np.isfinite(np.frombuffer(chunk[:usable], dtype))))
                    rest = chunk[usable:]
            if inflate is not None:
                complete = inflate.eof
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: compressed file is truncated or corrupt ({str(exc).splitlines()[0]})") from None
    return seen, bad, complete


# NIfTI-1/-2 and Analyze 7.5 datatype codes -> numpy type (nifti1.h, nifti2.h)
_NIFTI_TYPES = {2: "u1", 4: "i2", 8: "i4", 16: "f4", 32: "c8", 64: "f8", 128: "u1", 256: "i1", 512: "u2",
                768: "u4", 1024: "i8", 1280: "u8", 1792: "c16", 2304: "u1"}
_NIFTI_ITEMS = {128: 3, 2304: 4}            # RGB24 and RGBA32 hold several bytes per voxel


def _open_maybe_gz(path: str):
    import gzip
    return gzip.open(path, "rb") if path.lower().endswith(".gz") else open(path, "rb")


def _data_file(path: str) -> str:
    """The .img (or .img.gz) beside a .hdr, or the file itself."""
    low = path.lower()
    for hdr in (".hdr.gz", ".hdr"):
        if low.endswith(hdr):
            base = path[:-len(hdr)]
            for ext in (".img", ".IMG", ".img.gz", ".IMG.GZ"):
                if os.path.exists(base + ext):
                    return base + ext
            return base + ".img"
    return path


def _header_file(path: str) -> str:
    low = path.lower()
    for img, hdr in ((".img.gz", ".hdr.gz"), (".img", ".hdr")):
        if low.endswith(img):
            return path[:-len(img)] + (hdr.upper() if path.endswith(img.upper()) else hdr)
    return path


def nifti_header(path: str) -> dict:
    """The fields of a NIfTI-1/NIfTI-2/Analyze header this module needs: 'shape', 'dtype',
    'offset' (first data byte in the data file), 'data_file', 'sform'/'qform' codes and 'srow'."""
    import struct

    header_path = _header_file(path)
    if not os.path.isfile(header_path):
        raise InputError(f"{path}: its header file {header_path} is missing")
    try:
        with _open_maybe_gz(header_path) as f:
            head = f.read(540)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: compressed file is truncated or corrupt ({str(exc).splitlines()[0]})") from None
    if len(head) < 348:
        raise InputError(f"{path}: NIfTI header is truncated ({len(head)} of 348 bytes)")
    for endian in "<>":
        size = struct.unpack(endian + "i", head[:4])[0]
        if size in (348, 540):
            break
    else:
        raise InputError(f"{path}: not a NIfTI or Analyze file (header size field is not 348 or 540)")
    if size == 540:
        if len(head) < 540:
            raise InputError(f"{path}: NIfTI-2 header is truncated ({len(head)} of 540 bytes)")
        dims = struct.unpack(endian + "8q", head[16:80])
        datatype = struct.unpack(endian + "h", head[12:14])[0]
        offset = struct.unpack(endian + "q", head[168:176])[0]
        qcode, scode = struct.unpack(endian + "ii", head[344:352])
        srow = struct.unpack(endian + "12d", head[400:496])
    else:
        dims = struct.unpack(endian + "8h", head[40:56])
        datatype = struct.unpack(endian + "h", head[70:72])[0]
        offset = int(struct.unpack(endian + "f", head[108:112])[0])
        qcode, scode = struct.unpack(endian + "hh", head[252:256])
        srow = struct.unpack(endian + "12f", head[280:328])
    ndim = dims[0]
    if not 1 <= ndim <= 7:
        raise InputError(f"{path}: NIfTI header gives {ndim} dimensions (1-7 allowed)")
    if datatype not in _NIFTI_TYPES:
        raise InputError(f"{path}: NIfTI voxel type code {datatype} is not supported")
    single = (head[4:8] == b"n+2\0") if size == 540 else (head[344:348] == b"n+1\0")
    data_file = path if single else _data_file(header_path)
    return {"shape": tuple(int(d) for d in dims[1:ndim + 1]), "dtype": np.dtype(endian + _NIFTI_TYPES[datatype]),
            "items": _NIFTI_ITEMS.get(datatype, 1), "offset": max(int(offset), size if single else 0),
            "data_file": data_file, "qform_code": qcode, "sform_code": scode, "version": 2 if size == 540 else 1,
            "srow": np.array(srow, dtype=float).reshape(3, 4)}


def check_nifti(path: str, finite: bool = True, sink=None) -> None:
    """Raise InputError for a NIfTI/Analyze file (.nii, .nii.gz, .hdr/.img) whose data is shorter
    than its header promises (truncated file or short gzip stream), whose gzip stream is broken,
    whose voxels cannot fit in memory, or (if ``finite``) whose float voxels include NaN or infinity.
    ``sink(bytes)``: for a single-file .nii.gz, receives the decompressed file as it is checked."""
    header = nifti_header(path)                  # a gzip stream broken inside the header is reported here
    if path.lower().endswith(".gz") and header["data_file"] != path and not _scan(path, 0, True, None, 1 << 62)[2]:
        raise InputError(f"{path}: compressed file is truncated (the gzip stream stops early)")
    shape, dtype = header["shape"], header["dtype"]
    if min(shape) < 1:
        raise InputError(f"{path}: NIfTI header gives image size {shape}; every size must be at least 1")
    need = int(np.prod(shape, dtype=object)) * dtype.itemsize * header["items"]
    check_allocation(path, need, "x".join(map(str, shape)) + " voxels")
    data_file = header["data_file"]
    if not os.path.isfile(data_file):
        raise InputError(f"{path}: the image's data file {data_file} is missing")
    compressed = data_file.lower().endswith(".gz")    # one pass: length, NaN and (gzip) the stream's end
    seen, bad, complete = _scan(data_file, header["offset"], compressed, dtype if finite else None, need,
                                sink if data_file == path else None)
    named = path if data_file == path else f"{path}: its data file {data_file}"
    if compressed and not complete:
        raise InputError(f"{named}: compressed file is truncated (the gzip stream stops early)")
    if seen < need:
        where = "decompressed data" if compressed else "data"
        raise InputError(f"{named}: file is truncated: its {where} holds {seen} of the {need} bytes "
                         f"the header promises ({'x'.join(map(str, shape))} {dtype.name})")
    if bad:
        raise InputError(f"{path}: image has {bad} NaN or infinite voxel(s)")


def check_image_file(path: str) -> None:
    """All file-level checks for an image or segmentation file, chosen by its extension."""
    path = str(path)
    check_readable_file(path)
    which = kind(path)
    if which == "nifti":
        check_nifti(path)
    elif which == "nrrd":
        from .nrrd_header import check_nrrd, check_header_with_itk
        check_nrrd(path)
        if path.lower().endswith(".seg.nrrd"):
            check_header_with_itk(path)        # teem's own parse, where a failure is catchable
    elif path.lower().endswith(".gz"):
        _, _, complete = _scan(path, 0, True, None, 1 << 62)
        if not complete:
            raise InputError(f"{path}: compressed file is truncated (the gzip stream stops early)")


def direction_problem(direction) -> str | None:
    """None for an orthonormal 3x3 direction matrix, else what is wrong with it, in words."""
    d = np.asarray(direction, dtype=float).reshape(3, 3)
    if not np.isfinite(d).all():
        return "direction matrix holds NaN or infinite values"
    norms = np.linalg.norm(d, axis=0)
    if norms.min() < 1e-8 or abs(np.linalg.det(d)) < 1e-8 * max(norms.prod(), 1e-300):
        return "direction matrix is singular (an axis has zero length or two axes are parallel)"
    unit = d / norms
    worst = float(np.abs(unit.T @ unit - np.eye(3)).max())
    if worst > 1e-3:
        return (f"direction matrix is not orthonormal (axes are sheared: cosines between axes up to "
                f"{worst:.3g}); Slicer and ITK need perpendicular axes")
    return None


def describe_direction_error(path: str) -> str:
    """One line for an ITK 'orthonormal direction cosines' refusal, naming what is wrong."""
    if kind(path) == "nifti":
        try:
            header = nifti_header(path)
            problem = direction_problem(header["srow"][:, :3]) if header["sform_code"] > 0 else None
            if problem:
                return f"{path}: {problem.replace('direction matrix', 'direction matrix (sform)')}"
        except InputError:
            pass
    return (f"{path}: direction matrix is singular or not orthonormal (ITK only reads images whose axes are "
            "perpendicular and of non-zero length)")


def check_labelmap(array: np.ndarray, source: str) -> np.ndarray:
    """An integer label map from ``array``, or InputError when the data is not one: non-integer or
    negative values, or a greyscale image (more than 255 distinct values, or more than 16 where
    most neighbouring voxels differ, as in an image, not in regions of a few labels)."""
    if np.issubdtype(array.dtype, np.floating):
        if not np.array_equal(array, np.round(array)):
            raise InputError(f"{source}: holds non-integer values; a label map or binary mask is expected")
        array = array.astype(np.int32)
    if array.size and array.min() < 0:
        raise InputError(f"{source}: holds negative values ({array.min()}); a label map is expected")
    values = np.unique(array)
    count = int(np.count_nonzero(values))
    if count > 16:
        changes = sum(np.count_nonzero(np.diff(array, axis=a)) for a in range(array.ndim) if array.shape[a] > 1)
        pairs = sum(array.size // array.shape[a] * (array.shape[a] - 1) for a in range(array.ndim) if array.shape[a] > 1)
        fraction = changes / max(pairs, 1)
        if count > 255 or fraction > 0.25:
            raise InputError(f"{source}: looks like a greyscale image, not a segmentation: {count} distinct "
                             f"values and {fraction:.0%} of neighbouring voxels differ (a label map has a few "
                             "labels in connected regions)")
    return array
