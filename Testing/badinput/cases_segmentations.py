"""Hostile segmentation files (.seg.nrrd and label maps) as ``evaluate`` inputs and ``threshold --mask``.

A truncated or lying ``.seg.nrrd`` used to abort the whole process inside Slicer's C++ reader
(exit 134); each must now be one line, in every place a segmentation is read.
"""
from __future__ import annotations

import bz2
import gzip

import numpy as np

from . import build as b
from .harness import Case

MASK = (b.image() >= 300).astype(np.uint8)
RAW = MASK.tobytes()


def seg_variants():
    """(name, writer(path), expected problem) of .seg.nrrd files a C++ reader must never see."""
    w = b.write_seg
    return [
        ("gzip-truncated", lambda p: w(p, cut=60), r"truncated"),
        ("gzip-header-only", lambda p: w(p, data=b""), r"truncated"),
        ("gzip-short-valid", lambda p: w(p, data=gzip.compress(RAW[:500])), rf"short: 500 of {len(RAW)} bytes"),
        ("gzip-corrupt", lambda p: w(p, data=b"\x1f\x8b\x08\x00" + b"\xff" * 200), r"corrupt|truncated"),
        ("raw-truncated", lambda p: w(p, encoding="raw", cut=len(RAW) // 2),
         rf"truncated: {len(RAW) // 2} of {len(RAW)} bytes"),
        ("huge-sizes", lambda p: w(p, fields={"sizes": "100000 100000 100000"}), r"voxels need .* more than"),
        ("huge-sizes-raw", lambda p: w(p, encoding="raw", fields={"sizes": "100000 100000 100000"}),
         r"voxels need .* more than"),
        ("bad-type", lambda p: w(p, fields={"type": "banana"}), r"voxel type 'banana'"),
        ("sizes-dimension-mismatch", lambda p: w(p, fields={"sizes": "20 16"}), r"'sizes' has 2 value"),
        ("zero-size", lambda p: w(p, fields={"sizes": "20 0 12"}), r"size below 1"),
        ("negative-size", lambda p: w(p, fields={"sizes": "-20 16 12"}), r"size below 1"),
        ("directions-count", lambda p: w(p, fields={"space directions": "(1,0,0) (0,1,0)"}),
         r"'space directions' must have 3 vectors"),
        ("direction-4-values", lambda p: w(p, fields={"space directions": "(1,0,0,0) (0,1,0,0) (0,0,1,0)"}),
         r"'space directions' must have 3 vectors"),
        ("singular-directions", lambda p: w(p, fields={"space directions": "(1,0,0) (1,0,0) (0,0,1)"}), r"singular"),
        ("origin-count", lambda p: w(p, fields={"space origin": "(0,0)"}), r"'space origin' must have 3"),
        ("unknown-space", lambda p: w(p, fields={"space": "martian"}), r"space 'martian'"),
        ("bad-encoding", lambda p: w(p, fields={"encoding": "lzma"}), r"encoding 'lzma'"),
        ("no-type", lambda p: w(p, fields={"type": None}), r"no 'type' field"),
        ("not-nrrd", lambda p: b.write_text(p, b"PK\x03\x04 not an nrrd"), r"not an NRRD file"),
        ("empty", lambda p: b.write_text(p, b""), r"file is empty"),
        ("header-unterminated", lambda p: b.write_text(p, b.nrrd_header(MASK, extra=b.seg_fields()).rstrip("\n")),
         r"not terminated"),
        ("duplicate-field", lambda p: w(p, extra=b.seg_fields() + "type: uchar\n"), r"appears twice"),
        ("bzip2-truncated", lambda p: w(p, encoding="bzip2", data=bz2.compress(RAW)[:40]), r"truncated|corrupt"),
        ("short-type-no-endian", lambda p: b.write_seg(p, MASK.astype(np.int16), fields={"endian": None}),
         r"endian"),
    ]


def good_seg(d, name="ref.seg.nrrd"):
    return b.write_seg(str(d / name))


def as_pred(writer):
    def build(d):
        writer(str(d / "bad.seg.nrrd"))
        return ["evaluate", d / "bad.seg.nrrd", good_seg(d), "--no-distances"]
    return build


def as_ref(writer):
    def build(d):
        writer(str(d / "bad.seg.nrrd"))
        return ["evaluate", good_seg(d, "pred.seg.nrrd"), d / "bad.seg.nrrd", "--no-distances"]
    return build


def as_mask(writer):
    def build(d):
        writer(str(d / "bad.seg.nrrd"))
        b.write_nrrd(str(d / "ct.nrrd"), b.image())
        (d / "out").mkdir()
        return ["threshold", d / "ct.nrrd", "-o", d / "out" / "x.seg.nrrd", "--lower", "300", "--mask", d / "bad.seg.nrrd"]
    return build


CASES = []
for _name, _writer, _expect in seg_variants():
    CASES.append(Case(f"seg-{_name}", as_pred(_writer), _expect, names="bad.seg.nrrd"))
    CASES.append(Case(f"seg-as-mask-{_name}", as_mask(_writer), _expect, names="bad.seg.nrrd"))
for _name, _writer, _expect in seg_variants()[:6]:
    CASES.append(Case(f"seg-as-reference-{_name}", as_ref(_writer), _expect, names="bad.seg.nrrd"))


def greyscale(d, name="grey.nii.gz", values=100):
    """A greyscale image with ``values`` distinct levels where a label map is expected."""
    rng = np.random.default_rng(3)
    b.write_nifti(str(d / name), rng.integers(0, values, b.SHAPE).astype(np.uint8))
    return d / name


def _grey_ref(d):
    b.write_nifti(str(d / "pred.nii.gz"), b.labels())
    return ["evaluate", d / "pred.nii.gz", greyscale(d), "--no-distances"]


def _grey_pred(d):
    b.write_nifti(str(d / "ref.nii.gz"), b.labels())
    return ["evaluate", greyscale(d), d / "ref.nii.gz", "--no-distances"]


def _grey_mask(d):
    b.write_nrrd(str(d / "ct.nrrd"), b.image())
    (d / "out").mkdir()
    return ["threshold", d / "ct.nrrd", "-o", d / "out" / "x.seg.nrrd", "--lower", "300", "--mask", greyscale(d)]


def _grey_mri(d):
    b.write_nifti(str(d / "ref.nii.gz"), b.labels())
    b.write_nifti(str(d / "mri.nii.gz"), (b.image(dtype="uint16") * 7))
    return ["evaluate", d / "mri.nii.gz", d / "ref.nii.gz", "--no-distances"]


def _labelmap(writer, name="lab.nii.gz"):
    def build(d):
        writer(str(d / name))
        b.write_nifti(str(d / "ref.nii.gz"), b.labels())
        return ["evaluate", d / name, d / "ref.nii.gz", "--no-distances"]
    return build


def _no_overlap(d):
    b.write_nifti(str(d / "ref.nii.gz"), b.labels())
    far = np.eye(4)
    far[:3, 3] = 5000
    b.write_nifti(str(d / "lab.nii.gz"), b.labels(), far)
    return ["evaluate", d / "lab.nii.gz", d / "ref.nii.gz", "--no-distances"]


CASES += [
    Case("seg-greyscale-as-reference", _grey_ref, r"looks like a greyscale image, not a segmentation",
         names="grey.nii.gz"),
    Case("seg-greyscale-as-prediction", _grey_pred, r"looks like a greyscale image", names="grey.nii.gz"),
    Case("seg-greyscale-as-mask", _grey_mask, r"looks like a greyscale image", names="grey.nii.gz"),
    Case("seg-mri-as-prediction", _grey_mri, r"looks like a greyscale image", names="mri.nii.gz"),
    Case("seg-labelmap-float-fractions", _labelmap(lambda p: b.write_nifti(p, b.labels() + np.float32(0.5))),
         r"non-integer values", names="lab.nii.gz"),
    Case("seg-labelmap-negative", _labelmap(lambda p: b.write_nifti(p, b.labels().astype(np.int16) - 1)),
         r"negative values", names="lab.nii.gz"),
    Case("seg-labelmap-nan", _labelmap(lambda p: b.write_nifti(
        p, np.where(b.labels() == 2, np.nan, b.labels()).astype(np.float32))), r"NaN", names="lab.nii.gz"),
    Case("seg-labelmap-truncated", _labelmap(lambda p: (b.write_nifti(p, b.labels()), b.truncate(p, 0.5))),
         r"truncated", names="lab.nii.gz"),
    Case("seg-labelmap-no-overlap", _no_overlap, r"does not overlap", names="lab.nii.gz"),
]
