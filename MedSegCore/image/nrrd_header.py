"""NRRD (``.nrrd``, ``.nhdr``, ``.seg.nrrd``) headers and data lengths checked in Python.

Slicer's segmentation storage node hands a ``.seg.nrrd`` to teem, and teem's errors there (a
truncated gzip or raw stream, a header claiming more voxels than memory, a malformed field) abort
the whole process (exit 134; in Slicer the user's unsaved scene goes with it).  :func:`check_nrrd`
finds those problems first and raises :class:`InputError` with one line naming the file and the
problem.  Headers are parsed here (Slicer's Python has no NRRD library); the rules follow the NRRD format
specification (http://teem.sourceforge.net/nrrd/format.html) and teem's own field checks
(``_nrrdFieldCheck_*`` in teem's ``nrrd/simple.c``).  The data is read as a stream, never held.
"""
from __future__ import annotations

import bz2
import os
import re
import zlib

import numpy as np

from ..errors import InputError
from .limits import check_allocation

HEADER_LIMIT = 1 << 22                      # 4 MiB of header text is far beyond any real file
_PER_AXIS = ("sizes", "spacings", "thicknesses", "axis mins", "axismins", "axis maxs", "axismaxs",
             "centerings", "kinds", "labels", "units")
_SPACES = {"right-anterior-superior": 3, "ras": 3, "left-anterior-superior": 3, "las": 3,
           "left-posterior-superior": 3, "lps": 3, "right-anterior-superior-time": 4, "rast": 4,
           "left-anterior-superior-time": 4, "last": 4, "left-posterior-superior-time": 4, "lpst": 4,
           "scanner-xyz": 3, "scanner-xyz-time": 4, "3d-right-handed": 3, "3d-left-handed": 3,
           "3d-right-handed-time": 4, "3d-left-handed-time": 4}
_ENCODINGS = {"raw": "raw", "gzip": "gzip", "gz": "gzip", "bzip2": "bzip2", "bz2": "bzip2",
              "ascii": "text", "text": "text", "txt": "text", "hex": "hex"}


def _split_header(path: str):
    """(header lines as text, offset of the first data byte) of an NRRD file."""
    with open(path, "rb") as f:
        head = f.read(HEADER_LIMIT)
    if not head.startswith(b"NRRD"):
        raise InputError(f"{path}: not an NRRD file (it does not start with 'NRRD')")
    lines, offset = [], 0
    for raw in head.splitlines(keepends=True):
        offset += len(raw)
        text = raw.rstrip(b"\r\n")
        if not text.strip():
            return lines, offset
        if not raw.endswith(b"\n"):
            break
        lines.append(text.decode("latin-1"))
    if offset >= os.path.getsize(path) and lines and head.endswith(b"\n"):
        return lines, offset                # header-only .nhdr (no blank line before the end)
    raise InputError(f"{path}: NRRD header is not terminated (no blank line within "
                     f"{min(len(head), HEADER_LIMIT)} bytes); the file is truncated or not NRRD")


_TYPES = {}
for _names, _code in ((("signed char", "int8", "int8_t"), "i1"),
                      (("uchar", "unsigned char", "uint8", "uint8_t"), "u1"),
                      (("short", "short int", "signed short", "signed short int", "int16", "int16_t"), "i2"),
                      (("ushort", "unsigned short", "unsigned short int", "uint16", "uint16_t"), "u2"),
                      (("int", "signed int", "int32", "int32_t"), "i4"),
                      (("uint", "unsigned int", "uint32", "uint32_t"), "u4"),
                      (("longlong", "long long", "long long int", "signed long long", "signed long long int",
                        "int64", "int64_t"), "i8"),
                      (("ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t"), "u8"),
                      (("float",), "f4"), (("double",), "f8")):
    _TYPES.update(dict.fromkeys(_names, _code))
_INTS = ("dimension", "space dimension", "line skip", "lineskip", "byte skip", "byteskip")
_NUMBER_LISTS = ("spacings", "thicknesses", "axis mins", "axismins", "axis maxs", "axismaxs")


def _vector(text: str, what: str) -> list | None:
    text = text.strip()
    if text == "none":
        return None
    if not (text.startswith("(") and text.endswith(")")):
        raise ValueError(f"'{what}' vector {text[:40]!r} is not of the form (a,b,c)")
    return [float(v) for v in text[1:-1].split(",")]


def _parse(lines: list) -> dict:
    """Field name -> parsed value of NRRD header lines (after the magic line); key:=value pairs
    (Slicer's Segment0_... tags) are kept as text.  Duplicates and bad numbers raise ValueError."""
    header = {}
    for line in lines[1:]:
        if line.startswith("#"):
            continue
        if ":=" in line:
            key, value = line.split(":=", 1)
            header.setdefault("keyvalue", {})[key] = value
            continue
        if ": " not in line:
            raise ValueError(f"line {line[:60]!r} is not 'field: value'")
        field, value = line.split(": ", 1)
        field, value = field.strip().lower(), value.strip()
        if field in header:
            raise ValueError(f"field '{field}' appears twice")
        if field in _INTS:
            header[field] = int(value)
        elif field == "sizes":
            header[field] = [int(v) for v in value.split()]
        elif field in _NUMBER_LISTS:
            header[field] = [float(v) for v in value.split()]
        elif field == "space directions":
            header[field] = [_vector(v, field) for v in re.findall(r"\([^)]*\)|\S+", value)]
        elif field == "space origin":
            header[field] = _vector(value, field)
        elif field in ("kinds", "centerings"):
            header[field] = value.split()
        elif field in ("labels", "units", "space units"):
            header[field] = value.split('" "')
        else:
            header[field] = value
    return header


def read_header(path: str) -> tuple:
    """(parsed header dict, data offset) of an NRRD file, with every field teem checks validated."""
    path = str(path)
    lines, offset = _split_header(path)
    if not lines or not lines[0][4:].isdigit():
        raise InputError(f"{path}: malformed NRRD magic line {lines[0][:20] if lines else ''!r}")
    try:
        header = _parse(lines)
    except ValueError as exc:
        raise InputError(f"{path}: malformed NRRD header: {str(exc).splitlines()[0]}") from None
    for name in ("dimension", "type", "encoding", "sizes"):
        if name not in header:
            raise InputError(f"{path}: NRRD header has no '{name}' field")
    dim = header["dimension"]
    if not 1 <= dim <= 16:
        raise InputError(f"{path}: NRRD dimension {dim} is out of range (1-16)")
    for name in _PER_AXIS:
        if name in header and len(header[name]) != dim:
            raise InputError(f"{path}: NRRD field '{name}' has {len(header[name])} value(s) but dimension is {dim}")
    sizes = header["sizes"]
    if min(sizes) < 1:
        raise InputError(f"{path}: NRRD sizes {' '.join(map(str, sizes))} include a size below 1")
    if header["type"] not in _TYPES:
        raise InputError(f"{path}: NRRD voxel type '{header['type']}' is not supported")
    if header["encoding"].lower() not in _ENCODINGS:
        raise InputError(f"{path}: NRRD encoding '{header['encoding']}' is not supported")
    if np.dtype(_TYPES[header["type"]]).itemsize > 1 and _ENCODINGS[header["encoding"].lower()] != "text":
        if header.get("endian") not in ("little", "big"):
            raise InputError(f"{path}: NRRD header needs 'endian: little' or 'endian: big' for type {header['type']}")
    _check_space(path, header, dim)
    return header, offset


def _check_space(path: str, header: dict, dim: int) -> None:
    space_dim = None
    if "space" in header:
        space_dim = _SPACES.get(header["space"].lower())
        if space_dim is None:
            raise InputError(f"{path}: NRRD space '{header['space']}' is not a known space")
        if "space dimension" in header:
            raise InputError(f"{path}: NRRD header gives both 'space' and 'space dimension'")
    elif "space dimension" in header:
        space_dim = header["space dimension"]
        if space_dim < 1:
            raise InputError(f"{path}: NRRD space dimension {space_dim} is below 1")
    directions = header.get("space directions")
    if directions is not None:
        if space_dim is None:
            raise InputError(f"{path}: NRRD 'space directions' without 'space' or 'space dimension'")
        if len(directions) != dim or any(v is not None and len(v) != space_dim for v in directions):
            raise InputError(f"{path}: NRRD 'space directions' must have {dim} vectors (or none) of "
                             f"{space_dim} values")
        given = np.array([v for v in directions if v is not None], dtype=float).reshape(-1, space_dim)
        if not np.isfinite(given).all():
            raise InputError(f"{path}: NRRD 'space directions' hold NaN or infinite values")
        if len(given) and np.linalg.matrix_rank(given, tol=1e-12 * max(1.0, np.abs(given).max())) < len(given):
            raise InputError(f"{path}: NRRD 'space directions' are singular (axes are parallel or of zero length)")
    origin = header.get("space origin")
    if origin is not None:
        if space_dim is None or len(origin) != space_dim:
            raise InputError(f"{path}: NRRD 'space origin' must have {space_dim or 'space dimension'} values")
        if not np.isfinite(np.asarray(origin, dtype=float)).all():
            raise InputError(f"{path}: NRRD 'space origin' holds NaN or infinite values")
    for name in ("spacings", "thicknesses"):
        if name in header and np.isinf(np.asarray(header[name], float)).any():
            raise InputError(f"{path}: NRRD '{name}' hold infinite values")


def _stream_length(path: str, offset: int, encoding: str, need: int) -> tuple:
    """(decompressed bytes, whether the stream ended properly) of a gzip/bzip2 stream at ``offset``."""
    decomp = zlib.decompressobj(47) if encoding == "gzip" else bz2.BZ2Decompressor()
    total = 0
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            while True:
                chunk = f.read(1 << 22)
                if not chunk:
                    break
                total += len(decomp.decompress(chunk))
                if decomp.eof:
                    break
    except (OSError, zlib.error, EOFError, ValueError) as exc:
        raise InputError(f"{path}: compressed NRRD data is corrupt ({str(exc).splitlines()[0]})") from None
    return total, decomp.eof


def check_nrrd(path: str) -> dict:
    """Raise InputError unless the NRRD file's header is valid, its voxel count fits in memory and
    its data (attached or detached, raw, gzip or bzip2) holds every voxel the header promises.
    Returns the parsed header."""
    path = str(path)
    header, offset = read_header(path)
    sizes = header["sizes"]
    itemsize = np.dtype(_TYPES[header["type"]]).itemsize
    need = int(np.prod(sizes, dtype=object)) * itemsize
    check_allocation(path, need, "x".join(map(str, sizes)) + " voxels")
    data_path = header.get("data file", header.get("datafile"))
    if data_path is not None:
        if data_path.split()[0].upper() == "LIST" or len(data_path.split()) > 1:
            return header                 # several detached files: accepted without a length check
        data_path = os.path.join(os.path.dirname(os.path.abspath(path)), data_path) \
            if not os.path.isabs(data_path) else data_path
        if not os.path.isfile(data_path):
            raise InputError(f"{path}: NRRD data file {data_path} does not exist")
        offset = 0
    else:
        data_path = path
    line_skip = header.get("line skip", header.get("lineskip", 0))
    byte_skip = header.get("byte skip", header.get("byteskip", 0))
    if line_skip:
        with open(data_path, "rb") as f:
            f.seek(offset)
            for _ in range(line_skip):
                if not f.readline():
                    raise InputError(f"{path}: NRRD data is truncated (fewer lines than 'line skip')")
            offset = f.tell()
    encoding = _ENCODINGS[header["encoding"].lower()]
    have = os.path.getsize(data_path) - offset
    if encoding == "raw":
        if byte_skip != -1:
            have -= byte_skip
        if have < need:
            raise InputError(f"{path}: NRRD data is truncated: {max(have, 0)} of {need} bytes present")
    elif encoding in ("gzip", "bzip2"):
        got, ended = _stream_length(data_path, offset, encoding, need)
        if byte_skip > 0:
            got -= byte_skip
        if not ended:
            raise InputError(f"{path}: compressed NRRD data is truncated (the {encoding} stream stops early "
                             f"after {max(got, 0)} of {need} bytes)")
        if got < need:
            raise InputError(f"{path}: compressed NRRD data is short: {max(got, 0)} of {need} bytes")
    elif have <= 0:
        raise InputError(f"{path}: NRRD file has no data after its header")
    return header


def check_header_with_itk(path: str) -> None:
    """Parse the header with ITK's NRRD reader (teem), which raises a catchable error, so a header
    teem rejects for a reason not checked above never reaches Slicer's segmentation reader."""
    import SimpleITK as sitk

    from .atomic import captured_stderr

    reader = sitk.ImageFileReader()
    reader.SetImageIO("NrrdImageIO")
    reader.SetFileName(str(path))
    with captured_stderr():
        try:
            reader.ReadImageInformation()
        except RuntimeError as exc:
            lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip().startswith("[nrrd]")]
            reason = lines[-1] if lines else (str(exc).strip().splitlines() or ["unreadable"])[-1]
            raise InputError(f"{path}: NRRD header is not valid: {reason[:200]}") from None
