"""Builders of good and hostile input files for the bad-input matrix, written byte by byte.

Valid files are written the way the formats define them (NIfTI-1/-2 headers with ``struct``, NRRD
text headers, Slicer's ``.seg.nrrd`` fields), so a builder can then cut, lie or corrupt exactly one
thing.  ``tests_roundtrip`` in test_badinput.py checks the good ones read back with SimpleITK.
"""
from __future__ import annotations

import gzip
import os
import struct

import numpy as np

NIFTI_CODES = {"uint8": 2, "int16": 4, "int32": 8, "float32": 16, "complex64": 32, "float64": 64, "int8": 256,
               "uint16": 512}
NRRD_TYPES = {"uint8": "uchar", "int16": "short", "uint16": "ushort", "int32": "int", "float32": "float",
              "float64": "double"}
SHAPE = (12, 16, 20)          # KJI: 20 x 16 x 12 voxels (I, J, K)


def image(shape=SHAPE, dtype="int16", seed=0) -> np.ndarray:
    """A KJI test volume: a bright ball (values 300..400) in noise around 0..100."""
    rng = np.random.default_rng(seed)
    k, j, i = np.indices(shape)
    centre = [s / 2 for s in shape]
    ball = ((k - centre[0]) ** 2 + (j - centre[1]) ** 2 + (i - centre[2]) ** 2) < (min(shape) / 3) ** 2
    a = rng.integers(0, 100, shape) + 300 * ball
    return a.astype(dtype)


def labels(shape=SHAPE) -> np.ndarray:
    """A KJI label map: 1 in a ball, 2 in a slab, 0 elsewhere."""
    a = np.zeros(shape, np.uint8)
    a[image(shape) >= 300] = 1
    a[:2] = 2
    return a


def nifti_bytes(array: np.ndarray, affine=None, version: int = 1, endian: str = "<", pair: bool = False,
                dims=None, datatype=None) -> tuple:
    """(header bytes, data bytes) of a NIfTI file for a KJI ``array`` (stored I fastest)."""
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) if affine is None else np.asarray(affine, float)
    data = np.ascontiguousarray(array).astype(array.dtype.newbyteorder(endian)).tobytes()
    size = tuple(reversed(array.shape))
    dims = list(dims or (len(size),) + size)
    dims += [1] * (8 - len(dims))
    code = datatype or NIFTI_CODES[array.dtype.name]
    bitpix = array.dtype.itemsize * 8
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    if version == 1:
        h = bytearray(348)
        struct.pack_into(endian + "i", h, 0, 348)
        struct.pack_into(endian + "8h", h, 40, *dims)
        struct.pack_into(endian + "hh", h, 70, code, bitpix)
        struct.pack_into(endian + "8f", h, 76, 1.0, *spacing, 1, 1, 1, 1)
        struct.pack_into(endian + "f", h, 108, 0.0 if pair else 352.0)
        struct.pack_into(endian + "ff", h, 112, 1.0, 0.0)           # scl_slope, scl_inter
        struct.pack_into(endian + "hh", h, 252, 0, 1)               # qform_code 0, sform_code 1
        struct.pack_into(endian + "12f", h, 280, *affine[:3].ravel())
        h[344:348] = b"ni1\0" if pair else b"n+1\0"
        header = bytes(h) + (b"" if pair else b"\0" * 4)
    else:
        h = bytearray(540)
        struct.pack_into(endian + "i", h, 0, 540)
        h[4:12] = b"n+2\0\r\n\x1a\n"
        struct.pack_into(endian + "hh", h, 12, code, bitpix)
        struct.pack_into(endian + "8q", h, 16, *dims)
        struct.pack_into(endian + "8d", h, 104, 1.0, *spacing, 1, 1, 1, 1)
        struct.pack_into(endian + "q", h, 168, 544)
        struct.pack_into(endian + "dd", h, 176, 1.0, 0.0)
        struct.pack_into(endian + "ii", h, 344, 0, 1)
        struct.pack_into(endian + "12d", h, 400, *affine[:3].ravel())
        header = bytes(h) + b"\0" * 4
    return header, data


def write_nifti(path, array, affine=None, version=1, endian="<", cut=None, **kw) -> str:
    """Write ``array`` as .nii / .nii.gz / .hdr+.img (by ``path``); ``cut`` keeps that many bytes."""
    path = str(path)
    pair = path.endswith(".hdr")
    header, data = nifti_bytes(array, affine, version, endian, pair, **kw)
    if pair:
        with open(path, "wb") as f:
            f.write(header)
        content, path_data = data, path[:-4] + ".img"
    else:
        content, path_data = header + data, path
    if cut is not None:
        content = content[:cut]
    if path_data.endswith(".gz"):
        content = gzip.compress(content)
    with open(path_data, "wb") as f:
        f.write(content)
    return path


def nrrd_header(array: np.ndarray, encoding="gzip", fields=None, directions=None, origin=(0.0, 0.0, 0.0),
                extra: str = "") -> str:
    """NRRD header text for a KJI ``array`` in LPS space (2 mm, 1 mm, 1.5 mm spacing by default)."""
    size = tuple(reversed(array.shape))
    directions = directions if directions is not None else [(2.0, 0, 0), (0, 1.0, 0), (0, 0, 1.5)]
    vec = lambda v: "(" + ",".join(repr(float(x)) for x in v) + ")"     # noqa: E731
    f = {"type": NRRD_TYPES[array.dtype.name], "dimension": str(array.ndim), "space": "left-posterior-superior",
         "sizes": " ".join(map(str, size)), "space directions": " ".join(vec(v) for v in directions),
         "kinds": " ".join(["domain"] * array.ndim), "endian": "little", "encoding": encoding,
         "space origin": vec(origin)}
    for key, value in (fields or {}).items():
        if value is None:
            f.pop(key, None)
        else:
            f[key] = value
    return "NRRD0004\n" + "".join(f"{k}: {v}\n" for k, v in f.items()) + extra + "\n"


def write_nrrd(path, array, encoding="gzip", cut=None, data=None, **kw) -> str:
    """Write an NRRD file; ``data`` replaces the encoded voxels, ``cut`` keeps that many data bytes."""
    raw = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
    if data is None:
        data = gzip.compress(raw) if encoding == "gzip" else raw
    if cut is not None:
        data = data[:cut]
    with open(path, "wb") as f:
        f.write(nrrd_header(array, encoding, **kw).encode("latin-1") + data)
    return str(path)


def seg_fields(names=("Ball",), shape=SHAPE) -> str:
    """Slicer .seg.nrrd key:=value fields for segments 1..n of one shared layer."""
    k, j, i = shape
    text = ""
    for n, name in enumerate(names):
        text += (f"Segment{n}_Color:=0.9 0.2 0.2\nSegment{n}_Extent:=0 {i - 1} 0 {j - 1} 0 {k - 1}\n"
                 f"Segment{n}_ID:=Segment_{n + 1}\nSegment{n}_LabelValue:={n + 1}\nSegment{n}_Layer:=0\n"
                 f"Segment{n}_Name:={name}\n")
    # Reference geometry as Slicer serialises it: the IJK-to-RAS matrix row by row, then the extent
    # (vtkSegmentationConverter::SerializeImageGeometry); LPS (2, 1, 1.5) mm axes are RAS (-2, -1, 1.5).
    matrix = "-2;0;0;0;0;-1;0;0;0;0;1.5;0;0;0;0;1;"
    text += (f"Segmentation_ConversionParameters:=Reference image geometry|{matrix}0;{i - 1};0;{j - 1};0;{k - 1};"
             "|Image geometry description string&\n")
    return (text + "Segmentation_ContainedRepresentationNames:=Binary labelmap|\n"
            "Segmentation_MasterRepresentation:=Binary labelmap\n"
            "Segmentation_ReferenceImageExtentOffset:=0 0 0\n")


def write_seg(path, mask=None, names=("Ball",), **kw) -> str:
    """A .seg.nrrd like Slicer writes (uchar, gzip, one layer); ``mask`` is a KJI label array."""
    mask = (image() >= 300).astype(np.uint8) if mask is None else mask
    kw.setdefault("extra", seg_fields(names, mask.shape))
    return write_nrrd(path, mask, **kw)


def write_text(path, text: str | bytes) -> str:
    with open(path, "wb") as f:
        f.write(text.encode() if isinstance(text, str) else text)
    return str(path)


def flip_byte(path, where: float = 0.5) -> str:
    """Corrupt one byte at a fraction of the file's length."""
    data = bytearray(open(path, "rb").read())
    data[int(len(data) * where)] ^= 0xFF
    open(path, "wb").write(bytes(data))
    return str(path)


def truncate(path, keep: float | int) -> str:
    size = os.path.getsize(path)
    n = int(size * keep) if isinstance(keep, float) else keep
    with open(path, "r+b") as f:
        f.truncate(n)
    return str(path)
