"""Conflicting and impossible options: refused before any work, one line naming the options."""
from __future__ import annotations

from . import build as b
from .harness import Case


def threshold(*options, mask=None):
    def build(d):
        b.write_nrrd(str(d / "ct.nrrd"), b.image())
        (d / "out").mkdir()
        extra = []
        if mask == "labelmap":
            b.write_nifti(str(d / "mask.nii.gz"), b.labels())
            extra = ["--mask", d / "mask.nii.gz"]
        elif mask == "seg":
            b.write_seg(str(d / "mask.seg.nrrd"))
            extra = ["--mask", d / "mask.seg.nrrd"]
        return ["threshold", d / "ct.nrrd", "-o", d / "out" / "x.seg.nrrd", *options, *extra]
    return build


T = [
    ("method-with-levels", ("--method", "otsu", "--levels", "3"), r"--method.*--levels|--levels.*--method"),
    ("preset-with-lower", ("--preset", "ct-bone", "--lower", "100"), r"--preset.*--lower"),
    ("preset-with-upper", ("--preset", "ct-bone", "--upper", "100"), r"--preset.*--upper"),
    ("preset-with-method", ("--preset", "ct-bone", "--method", "otsu"), r"--preset.*--method|--method.*--preset"),
    ("levels-with-lower", ("--levels", "3", "--lower", "5"), r"--levels.*--lower|--lower.*--levels"),
    ("method-with-upper", ("--method", "otsu", "--upper", "5"), r"--method.*--upper|--upper.*--method"),
    ("levels-with-preset", ("--levels", "2", "--preset", "ct-bone"), r"--levels.*--preset|--preset.*--levels"),
    ("min-size-negative", ("--lower", "300", "--min-size", "-5"), r"--min-size"),
    ("min-size-nan", ("--lower", "300", "--min-size", "nan"), r"--min-size"),
    ("min-size-inf", ("--lower", "300", "--min-size", "inf"), r"--min-size"),
    ("lower-nan", ("--lower", "nan"), r"--lower"),
    ("upper-inf", ("--lower", "300", "--upper", "inf"), r"--upper"),
    ("lower-above-upper", ("--lower", "300", "--upper", "100"), r"above upper"),
    ("color-nan", ("--lower", "300", "--color", "nan,0,0"), r"--color"),
    ("color-inf", ("--lower", "300", "--color", "1,inf,0"), r"--color"),
    ("color-two-values", ("--lower", "300", "--color", "1,2"), r"--color"),
    ("color-out-of-range", ("--lower", "300", "--color", "300,0,0"), r"--color"),
    ("color-negative", ("--lower", "300", "--color=-1,0,0"), r"--color"),
    ("min-size-not-a-number", ("--lower", "300", "--min-size", "big"), r"--min-size: invalid float value"),
    ("color-words", ("--lower", "300", "--color", "red"), r"--color"),
    ("levels-too-many", ("--levels", "9"), r"levels|classes"),
    ("levels-one", ("--levels", "1"), r"levels|classes"),
    ("method-unknown", ("--method", "magic"), r"magic"),
    ("mask-as-segment-without-mask", ("--lower", "300", "--mask-as-segment", "M"), r"--mask-as-segment needs --mask"),
    ("name-empty", ("--lower", "300", "--name", " "), r"--name"),
]

CASES = [Case(f"option-{n}", threshold(*o), e) for n, o, e in T]
CASES += [
    Case("option-unknown-option", threshold("--lower", "300", "--colour", "1,0,0"),
         r"unrecognized arguments: --colour", line=r"^medseg: error: "),
    Case("option-mask-segment-with-labelmap-mask", threshold("--lower", "300", "--mask-segment", "Ball",
                                                             mask="labelmap"),
         r"--mask-segment.*label map|label map.*--mask-segment", names="mask.nii.gz"),
    Case("option-mask-segment-missing", threshold("--lower", "300", "--mask-segment", "Liver", mask="seg"),
         r"no segment 'Liver'", names=None),
]
