"""``medseg evaluate`` with inputs that cannot be paired or compared."""
from __future__ import annotations

import numpy as np

from . import build as b
from .harness import Case


def pair(pred="labels", ref="labels", *extra, pred_name="pred.nii.gz", ref_name="ref.nii.gz"):
    writers = {"labels": lambda p: b.write_nifti(p, b.labels()), "seg": lambda p: b.write_seg(p),
               "none": lambda p: None}

    def build(d):
        writers[pred](str(d / pred_name))
        writers[ref](str(d / ref_name))
        more = [a(d) if callable(a) else a for a in extra]
        return ["evaluate", d / pred_name, d / ref_name, "--no-distances", *more]
    return build


def image(writer):
    def make(d):
        writer(str(d / "t1.nii.gz"))
        return d / "t1.nii.gz"
    return make


def _nan_image(p):
    a = b.image(dtype="float32")
    a[0, 0, 0] = np.nan
    b.write_nifti(p, a)


def _mixed(d):
    (d / "preds").mkdir()
    b.write_nifti(str(d / "ref.nii.gz"), b.labels())
    return ["evaluate", d / "preds", d / "ref.nii.gz"]


def _no_common(d):
    for side, case in (("pred", "a"), ("ref", "b")):
        (d / side).mkdir()
        b.write_nifti(str(d / side / f"{case}.nii.gz"), b.labels())
    return ["evaluate", d / "pred", d / "ref"]


CASES = [
    Case("evaluate-prediction-missing", pair("none"), r"no such file", names="pred.nii.gz"),
    Case("evaluate-reference-missing", pair("labels", "none"), r"no such file", names="ref.nii.gz"),
    Case("evaluate-seg-and-labelmap-unmatched", pair("seg", "labels", pred_name="pred.seg.nrrd"),
         r"cannot match segments .*--map", names=None, one_line=False),
    Case("evaluate-map-without-equals", pair("labels", "labels", "--map", "1"), r"--map '1': expected PRED=REF"),
    Case("evaluate-map-empty-side", pair("labels", "labels", "--map", "=2"), r"--map '=2'"),
    Case("evaluate-image-truncated", pair("labels", "labels", "--image",
                                          image(lambda p: (b.write_nifti(p, b.image()), b.truncate(p, 0.5))),
                                          "--overlay", lambda d: d / "o.png"),
         r"truncated", names="t1.nii.gz"),
    Case("evaluate-image-nan", pair("labels", "labels", "--image", image(_nan_image), "--overlay",
                                    lambda d: d / "o.png"), r"NaN", names="t1.nii.gz"),
    Case("evaluate-image-missing", pair("labels", "labels", "--image", lambda d: d / "t1.nii.gz", "--overlay",
                                        lambda d: d / "o.png"), r"no such file", names="t1.nii.gz"),
    Case("evaluate-image-without-figure", pair("labels", "labels", "--image", image(lambda p: b.write_nifti(p, b.image()))),
         r"--image needs --overlay or --report"),
    Case("evaluate-folder-and-file", _mixed, r"folder.*file|file.*folder", names="preds"),
    Case("evaluate-folders-no-common-case", _no_common, r"no case names in common"),
    Case("evaluate-overlay-bad-extension", pair("labels", "labels", "--overlay", lambda d: d / "o.jpg"),
         r"unsupported extension", names="o.jpg"),
]
