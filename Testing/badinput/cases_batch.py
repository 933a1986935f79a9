"""Folder mode: one bad case among good ones is reported in one line and the others go on.

``medseg predict FOLDER`` (two good volumes and one bad one) must finish the good cases, name the
bad file in its FAILED line and exit 1; ``medseg evaluate PRED_DIR GT_DIR`` likewise.
"""
from __future__ import annotations

import gzip
import os

import numpy as np

from . import build as b
from .cases_models import model_folder
from .harness import Case

A = b.image(dtype="float32")


def _nan():
    a = A.copy()
    a[2, 3, 4] = np.nan
    return a


BAD_VOLUMES = [
    ("nifti-truncated", "bad.nii", lambda p: (b.write_nifti(p, A), b.truncate(p, 0.5)), r"truncated"),
    ("niigz-short-stream", "bad.nii.gz",
     lambda p: open(p, "wb").write(gzip.compress(b"".join(b.nifti_bytes(A))[:-300])), r"truncated"),
    ("niigz-cut", "bad.nii.gz", lambda p: (b.write_nifti(p, A), b.truncate(p, 0.5)), r"truncated"),
    ("nifti-nan", "bad.nii", lambda p: b.write_nifti(p, _nan()), r"NaN"),
    ("nrrd-huge", "bad.nrrd", lambda p: b.write_nrrd(p, A, fields={"sizes": "90000 90000 90000"}), r"more than"),
    ("nrrd-raw-truncated", "bad.nrrd", lambda p: b.write_nrrd(p, A, encoding="raw", cut=100), r"truncated"),
    ("nrrd-bad-type", "bad.nrrd", lambda p: b.write_nrrd(p, A, fields={"type": "quaternion"}), r"voxel type"),
    ("nifti-sheared", "bad.nii", lambda p: b.write_nifti(p, A, [[1, .5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]),
     r"not orthonormal"),
    ("nifti-4d", "bad.nii", lambda p: b.write_nifti(p, np.stack([A, A]), dims=(4, 20, 16, 12, 2)), r"4D"),
    ("empty-file", "bad.nii.gz", lambda p: b.write_text(p, b""), r"empty"),
    ("garbage", "bad.nrrd", lambda p: b.write_text(p, os.urandom(500)), r"not an NRRD"),
    ("pair-no-img", "bad.hdr", lambda p: (b.write_nifti(p, A), os.remove(p[:-4] + ".img")), r"missing"),
]


def _predict(name, writer):
    def build(d):
        scans = d / "scans"
        scans.mkdir()
        for good in ("good1", "good2"):
            b.write_nifti(str(scans / f"{good}.nii.gz"), A)
        writer(str(scans / name))
        model = model_folder(d)
        return ["predict", scans, "-o", d / "out", "--model", model, "--device", "cpu"]
    return build


CASES = [Case(f"batch-predict-{n}", _predict(name, w), expect, names=name, rc=1,
              line=r"^\[\d/3\] bad: FAILED: ", one_line=False, needs=("torch",),
              changes=r"^out/(good1|good2)\.seg\.nrrd$|^out/timings\.csv$",
              shows=(r"^\[\d/3\] good1: ok", r"^\[\d/3\] good2: ok"))
         for n, name, w, expect in BAD_VOLUMES]


def _evaluate(bad_writer, name="c3.nii.gz"):
    def build(d):
        for side in ("pred", "ref"):
            (d / side).mkdir()
            for case in ("c1", "c2"):
                b.write_nifti(str(d / side / f"{case}.nii.gz"), b.labels())
        b.write_nifti(str(d / "ref" / name), b.labels())
        bad_writer(str(d / "pred" / name))
        return ["evaluate", d / "pred", d / "ref", "--no-distances"]
    return build


def _grey(p):
    b.write_nifti(p, np.random.default_rng(1).integers(0, 200, b.SHAPE).astype(np.uint8))


def _seg_cut(p):
    b.write_seg(p, cut=50)


CASES += [
    Case(f"batch-evaluate-{n}", _evaluate(w, name), expect, names=name, rc=1,
         line=r"^medseg evaluate: error: ", one_line=False,
         shows=(r"^c1\s", r"^c2\s")) for n, name, w, expect in [
        ("truncated", "c3.nii.gz", lambda p: (b.write_nifti(p, b.labels()), b.truncate(p, 0.5)), r"truncated"),
        ("greyscale", "c3.nii.gz", _grey, r"greyscale"),
        ("seg-truncated", "c3.seg.nrrd", _seg_cut, r"truncated"),
        ("empty", "c3.nii.gz", lambda p: b.write_text(p, b""), r"empty"),
        ("nan", "c3.nii.gz", lambda p: b.write_nifti(p, np.where(b.labels() > 0, np.nan, 0).astype(np.float32)), r"NaN"),
    ]
]
