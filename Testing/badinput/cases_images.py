"""Hostile image files given to ``medseg threshold`` (and ``info``): truncated, lying, NaN, bad geometry."""
from __future__ import annotations

import gzip
import os

import numpy as np

from . import build as b
from .harness import Case


def threshold(name, *extra):
    """Build function: the image ``name`` (written by the caller) thresholded into out/x.seg.nrrd."""
    def argv(d):
        (d / "out").mkdir(exist_ok=True)
        return ["threshold", d / name, "-o", d / "out" / "x.seg.nrrd", "--lower", "300", *extra]
    return argv


def case(id, write, name, expect, **kw):
    """A case whose input ``name`` is made by ``write(path)`` and thresholded."""
    def build(d):
        write(str(d / name))
        return threshold(name)(d)
    return Case(id, build, expect, names=name, **kw)


A = b.image()
F = b.image(dtype="float32")


def with_nan(dtype="float32", value=np.nan):
    a = b.image(dtype=dtype)
    a[3, 4, 5] = value
    return a


def nifti_cut(keep):
    def write(p):
        b.write_nifti(p, A)
        b.truncate(p, keep)
    return write


def gz_nifti_short(p):
    header, data = b.nifti_bytes(A)
    open(p, "wb").write(gzip.compress((header + data)[:-200]))


def gz_cut(fraction):
    def write(p):
        b.write_nifti(p, A)
        b.truncate(p, fraction)
    return write


def gz_crc(p):
    b.write_nifti(p, A)
    data = bytearray(open(p, "rb").read())
    data[-6] ^= 0xFF                          # inside the CRC32 of the gzip trailer
    open(p, "wb").write(bytes(data))


def pair_cut(p):
    b.write_nifti(p, A)
    b.truncate(p[:-4] + ".img", 0.5)


def pair_no_img(p):
    b.write_nifti(p, A)
    os.remove(p[:-4] + ".img")


def pair_nan(p):
    b.write_nifti(p, with_nan())


def pair_nan_gz(p):
    """.hdr/.img.gz pair (the image file compressed) with a NaN voxel."""
    header, data = b.nifti_bytes(with_nan(), pair=True)
    open(p, "wb").write(header)
    open(p[:-4] + ".img.gz", "wb").write(gzip.compress(data))


def nrrd(p, array=A, **kw):
    b.write_nrrd(p, array, **kw)


def nhdr_detached(cut=None, missing=False):
    def write(p):
        raw = A.astype("<i2").tobytes()
        data = p[:-5] + ".raw"
        b.write_text(p, b.nrrd_header(A, "raw", fields={"data file": os.path.basename(data)}))
        if not missing:
            open(data, "wb").write(raw[:cut] if cut else raw)
    return write


def mha(array, cut=None, compressed=False):
    def write(p):
        import SimpleITK as sitk
        sitk.WriteImage(sitk.GetImageFromArray(array), p, compressed)
        if cut:
            b.truncate(p, cut)
    return write


SHEAR = np.array([[1, 0.4, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
SINGULAR = np.diag([1.0, 0.0, 1.0, 1.0])

# ``medseg info`` reads with the same checks.
def _info(d):
    b.write_nifti(str(d / "in.nii"), A)
    b.truncate(str(d / "in.nii"), 0.5)
    return ["info", d / "in.nii"]


def _mhd(d):
    import SimpleITK as sitk
    sitk.WriteImage(sitk.GetImageFromArray(A), str(d / "in.mhd"), False)
    os.remove(d / "in.raw")
    return threshold("in.mhd")(d)


def _control(d):
    """A good image: the command runs and fails only because the range selects nothing."""
    b.write_nifti(str(d / "in.nii.gz"), A)
    (d / "out").mkdir()
    return ["threshold", d / "in.nii.gz", "-o", d / "out" / "x.seg.nrrd", "--lower", "5000"]


CASES = [
    Case("image-missing", threshold("nope.nii.gz"), r"no such file", names="nope.nii.gz"),
    case("image-empty-nii", lambda p: b.write_text(p, b""), "in.nii", r"file is empty"),
    case("image-empty-nii-gz", lambda p: b.write_text(p, b""), "in.nii.gz", r"file is empty"),
    case("image-empty-nrrd", lambda p: b.write_text(p, b""), "in.nrrd", r"file is empty"),
    case("image-folder-no-dicom", lambda p: os.mkdir(p), "emptydir", r"no DICOM series"),
    case("image-nifti-truncated", nifti_cut(0.5), "in.nii", r"truncated.*of the \d+ bytes"),
    case("image-nifti-header-only", nifti_cut(352), "in.nii", r"truncated: its data holds 0 of"),
    case("image-nifti-header-cut", nifti_cut(100), "in.nii", r"NIfTI header is truncated"),
    case("image-nifti-one-byte-short", nifti_cut(352 + A.nbytes - 1), "in.nii",
         r"truncated.*holds \d+ of"),
    case("image-niigz-stream-cut", gz_cut(0.6), "in.nii.gz", r"gzip stream stops early"),
    case("image-niigz-short-valid-stream", gz_nifti_short, "in.nii.gz", r"decompressed data holds \d+ of"),
    case("image-niigz-bad-crc", gz_crc, "in.nii.gz", r"compressed file is (corrupt|truncated)"),
    case("image-niigz-corrupt-middle", lambda p: (b.write_nifti(p, A), b.flip_byte(p, 0.5)), "in.nii.gz",
         r"compressed file is (corrupt|truncated)|truncated"),
    case("image-niigz-not-gzip", lambda p: open(p, "wb").write(b"".join(b.nifti_bytes(A))), "in.nii.gz",
         r"compressed file is (corrupt|truncated)"),
    case("image-pair-img-truncated", pair_cut, "in.hdr", r"truncated"),
    case("image-pair-img-missing", pair_no_img, "in.hdr", r"data file .*in\.img is missing"),
    case("image-pair-hdr-missing", lambda p: (b.write_nifti(p[:-4] + ".hdr", A), os.remove(p[:-4] + ".hdr")),
         "in.img", r"header file .*in\.hdr is missing"),
    case("image-nifti-nan", lambda p: b.write_nifti(p, with_nan()), "in.nii", r"1 NaN or infinite voxel"),
    case("image-niigz-nan", lambda p: b.write_nifti(p, with_nan()), "in.nii.gz", r"1 NaN or infinite voxel"),
    case("image-pair-nan", pair_nan, "in.hdr", r"1 NaN or infinite voxel"),
    case("image-pair-img-given-nan", lambda p: pair_nan(p[:-4] + ".hdr"), "in.img", r"1 NaN or infinite voxel"),
    case("image-pair-imggz-nan", pair_nan_gz, "in.hdr", r"1 NaN or infinite voxel"),
    case("image-nifti2-nan", lambda p: b.write_nifti(p, with_nan(), version=2), "in.nii", r"1 NaN or infinite voxel"),
    case("image-nifti2-float", lambda p: b.write_nifti(p, F, version=2), "in.nii", r"NIfTI-2"),
    case("image-nifti-float64-nan", lambda p: b.write_nifti(p, with_nan("float64")), "in.nii.gz",
         r"1 NaN or infinite voxel"),
    case("image-nifti-inf", lambda p: b.write_nifti(p, with_nan(value=np.inf)), "in.nii", r"1 NaN or infinite"),
    case("image-nifti-minus-inf", lambda p: b.write_nifti(p, with_nan(value=-np.inf)), "in.nii.gz",
         r"1 NaN or infinite"),
    case("image-nifti-big-endian-nan", lambda p: b.write_nifti(p, with_nan(), endian=">"), "in.nii",
         r"1 NaN or infinite voxel"),
    case("image-nifti-many-nan", lambda p: b.write_nifti(p, np.full(b.SHAPE, np.nan, np.float32)), "in.nii",
         rf"{int(np.prod(b.SHAPE))} NaN or infinite"),
    case("image-nrrd-nan", lambda p: nrrd(p, with_nan()), "in.nrrd", r"1 NaN or infinite voxel"),
    case("image-nrrd-inf-raw", lambda p: nrrd(p, with_nan(value=np.inf), encoding="raw"), "in.nrrd",
         r"1 NaN or infinite voxel"),
    case("image-mha-nan", mha(with_nan()), "in.mha", r"1 NaN or infinite voxel"),
    case("image-nifti-singular-sform", lambda p: b.write_nifti(p, A, SINGULAR), "in.nii", r"singular"),
    case("image-nifti-sheared-sform", lambda p: b.write_nifti(p, A, SHEAR), "in.nii", r"not orthonormal"),
    case("image-nrrd-singular-directions",
         lambda p: nrrd(p, directions=[(1, 0, 0), (2, 0, 0), (0, 0, 1)]), "in.nrrd", r"singular"),
    case("image-nrrd-zero-direction", lambda p: nrrd(p, directions=[(1, 0, 0), (0, 0, 0), (0, 0, 1)]), "in.nrrd",
         r"singular"),
    case("image-nrrd-sheared-directions", lambda p: nrrd(p, directions=[(1, 0, 0), (0.5, 1, 0), (0, 0, 1)]),
         "in.nrrd", r"not orthonormal"),
    case("image-nrrd-nan-direction", lambda p: nrrd(p, directions=[(float("nan"), 0, 0), (0, 1, 0), (0, 0, 1)]),
         "in.nrrd", r"NaN or infinite"),
    case("image-nrrd-nan-origin", lambda p: nrrd(p, origin=(0, float("nan"), 0)), "in.nrrd", r"NaN or infinite"),
    case("image-nrrd-huge-sizes", lambda p: nrrd(p, fields={"sizes": "100000 100000 100000"}), "in.nrrd",
         r"100000x100000x100000 voxels need .* more than"),
    case("image-nrrd-raw-truncated", lambda p: nrrd(p, encoding="raw", cut=A.nbytes // 2), "in.nrrd",
         rf"truncated: {A.nbytes // 2} of {A.nbytes} bytes"),
    case("image-nrrd-gzip-truncated", lambda p: nrrd(p, cut=300), "in.nrrd", r"truncated"),
    case("image-nrrd-gzip-short-valid", lambda p: nrrd(p, data=gzip.compress(A.tobytes()[:1000])), "in.nrrd",
         rf"short: 1000 of {A.nbytes} bytes"),
    case("image-nrrd-bzip2-truncated",
         lambda p: nrrd(p, encoding="bzip2", data=__import__("bz2").compress(A.tobytes())[:200]), "in.nrrd",
         r"truncated|corrupt"),
    case("image-nrrd-bad-type", lambda p: nrrd(p, fields={"type": "banana"}), "in.nrrd", r"voxel type 'banana'"),
    case("image-nrrd-sizes-dimension-mismatch", lambda p: nrrd(p, fields={"sizes": "20 16"}), "in.nrrd",
         r"'sizes' has 2 value\(s\) but dimension is 3"),
    case("image-nrrd-zero-size", lambda p: nrrd(p, fields={"sizes": "20 0 12"}), "in.nrrd", r"size below 1"),
    case("image-nrrd-negative-size", lambda p: nrrd(p, fields={"sizes": "20 -16 12"}), "in.nrrd", r"size below 1"),
    case("image-nrrd-no-endian", lambda p: nrrd(p, fields={"endian": None}), "in.nrrd", r"endian"),
    case("image-nrrd-bad-encoding", lambda p: nrrd(p, fields={"encoding": "zip"}), "in.nrrd", r"encoding 'zip'"),
    case("image-nrrd-no-sizes", lambda p: nrrd(p, fields={"sizes": None}), "in.nrrd", r"no 'sizes' field"),
    case("image-nrrd-kinds-mismatch", lambda p: nrrd(p, fields={"kinds": "domain domain"}), "in.nrrd",
         r"'kinds' has 2 value"),
    case("image-nrrd-header-unterminated", lambda p: b.write_text(p, b.nrrd_header(A).rstrip("\n")), "in.nrrd",
         r"not terminated|truncated"),
    case("image-nrrd-bad-number", lambda p: nrrd(p, fields={"sizes": "20 sixteen 12"}), "in.nrrd",
         r"malformed NRRD header"),
    case("image-nrrd-text-not-nrrd", lambda p: b.write_text(p, "hello\nworld\n"), "in.nrrd", r"not an NRRD file"),
    case("image-nhdr-data-missing", nhdr_detached(missing=True), "in.nhdr", r"data file .* does not exist"),
    case("image-nhdr-data-truncated", nhdr_detached(cut=100), "in.nhdr", rf"truncated: 100 of {A.nbytes}"),
    case("image-nifti-huge-dims", lambda p: b.write_nifti(p, A, dims=(3, 30000, 30000, 30000)), "in.nii",
         r"30000x30000x30000 voxels need .* more than"),
    case("image-nifti-zero-dim", lambda p: b.write_nifti(p, A, dims=(3, 20, 0, 12)), "in.nii", r"at least 1"),
    case("image-nifti-bad-datatype", lambda p: b.write_nifti(p, A, datatype=9999), "in.nii", r"type code 9999"),
    case("image-nifti-garbage", lambda p: b.write_text(p, os.urandom(2000)), "in.nii",
         r"not a NIfTI or Analyze file|cannot read"),
    case("image-nifti-complex", lambda p: b.write_nifti(p, (A + 1j).astype(np.complex64)), "in.nii",
         r"components per voxel|not a real scalar|complex"),
    case("image-nrrd-rgb", lambda p: b.write_nrrd(p, np.stack([A] * 3, -1), fields={
        "sizes": "3 20 16 12", "kinds": "RGB-color domain domain domain",
        "space directions": "none (2.0,0,0) (0,1.0,0) (0,0,1.5)"}), "in.nrrd", r"3 components per voxel"),
    case("image-nifti-4d", lambda p: b.write_nifti(p, np.stack([A] * 3), dims=(4, 20, 16, 12, 3)), "in.nii",
         r"4D"),
    case("image-unknown-extension", lambda p: b.write_text(p, "just text\n"), "in.txt", r"cannot read image"),
    case("image-mha-truncated", mha(A, cut=400), "in.mha", r"cannot read image|truncated"),
    Case("image-mhd-raw-missing", lambda d: _mhd(d), r"cannot read image|missing|no such", names="in.mhd"),
    Case("image-info-nifti-truncated", lambda d: _info(d), r"truncated", names="in.nii"),
    Case("image-control-empty-range", lambda d: _control(d), r"lower threshold 5000 is above upper threshold 399", names=None),
]

