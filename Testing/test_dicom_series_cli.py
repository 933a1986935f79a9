"""Bad DICOM series against the command line, table-driven: each case builds a series folder,
runs ``medseg`` as a subprocess, and checks the exit status, the one stderr line naming the folder,
the slice and the problem, that no traceback is printed, and that the output folder is unchanged.
The cases that ask for --regularize (or are within tolerance) succeed with a warning."""
import os
import subprocess
import sys

import numpy as np
import pydicom
import pytest

from MedSegCore.image import io
from dicom_series_data import defect_positions, set_tags, truncate, write_series
from synthetic import oblique_geometry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
G = oblique_geometry((20, 16, 8))


def positions(kind):
    return lambda folder: write_series(folder, G, positions_lps=defect_positions(kind, G))


def edited(edit):
    return lambda folder: edit(write_series(folder, G))


def sizes(folder):
    write_series(folder, G, sizes=[(20, 16)] * 4 + [(20, 15)] + [(20, 16)] * 3)


def junk_only(folder):
    os.makedirs(folder)
    with open(os.path.join(folder, "notes.txt"), "w") as f:
        f.write("no images here\n")


def same_image_twice(paths):
    first = pydicom.dcmread(paths[3])
    set_tags(paths[4], SOPInstanceUID=first.SOPInstanceUID, ImagePositionPatient=first.ImagePositionPatient)


def garbage(paths):
    with open(paths[3], "wb") as f:
        f.write(np.random.default_rng(3).bytes(900))


def emptied(paths):
    open(paths[3], "wb").close()


BUILDERS = {
    "missing": positions("missing"), "nonuniform": positions("nonuniform"), "tilt": positions("tilt"),
    "duplicate": positions("duplicate"), "jitter": positions("jitter"), "regular": lambda f: write_series(f, G),
    "same image twice": edited(same_image_twice),
    "truncated pixel data": edited(lambda p: truncate(p[3], -100)),
    "truncated header": edited(lambda p: truncate(p[3], 300)),
    "garbage slice": edited(garbage), "empty slice": edited(emptied),
    "no position": edited(lambda p: set_tags(p[2], ImagePositionPatient=None)),
    "mixed orientation": edited(lambda p: set_tags(p[5], ImageOrientationPatient=[1, 0, 0, 0, 0, -1])),
    "non-orthogonal": edited(lambda p: [set_tags(x, ImageOrientationPatient=[1, 0, 0, 0.5, 0.5, 0]) for x in p]),
    "mixed pixel spacing": edited(lambda p: set_tags(p[1], PixelSpacing=[0.9, 0.75])),
    "mixed sizes": sizes, "empty folder": os.makedirs, "junk only": junk_only,
}

# (case id, series builder, arguments after the subcommand: {in} the series, {out} the output folder,
#  expected exit status, texts the error line must hold)
REFUSED = [
    ("info-missing", "missing", ["info", "{in}"], ["1 missing slice(s)", "slice_003.dcm (instance 3)",
                                                   "slice_004.dcm (instance 4)", "--regularize"]),
    ("info-nonuniform", "nonuniform", ["info", "{in}"], ["not equally spaced", "slice_005.dcm (instance 5)"]),
    ("info-tilt", "tilt", ["info", "{in}"], ["gantry tilt", "tilted 15 deg", "slice_008.dcm (instance 8)"]),
    ("info-duplicate", "duplicate", ["info", "{in}"], ["duplicate slice positions", "slice_004.dcm", "slice_005.dcm"]),
    ("info-same-image", "same image twice", ["info", "{in}"], ["the same image (SOP Instance UID"]),
    ("info-truncated-pixels", "truncated pixel data", ["info", "{in}"], ["corrupt or unreadable slice slice_004.dcm",
                                                                          "file truncated"]),
    ("info-truncated-header", "truncated header", ["info", "{in}"], ["slice_004.dcm", "no pixel data"]),
    ("info-garbage", "garbage slice", ["info", "{in}"], ["slice_004.dcm", "not a valid DICOM file"]),
    ("info-empty-slice", "empty slice", ["info", "{in}"], ["slice_004.dcm", "file is empty"]),
    ("info-no-position", "no position", ["info", "{in}"], ["slice_003.dcm (instance 3)", "no ImagePositionPatient"]),
    ("info-mixed-orientation", "mixed orientation", ["info", "{in}"], ["slices have 2 orientations",
                                                                       "slice_006.dcm (instance 6)"]),
    ("info-non-orthogonal", "non-orthogonal", ["info", "{in}"], ["not two orthogonal unit vectors"]),
    ("info-mixed-spacing", "mixed pixel spacing", ["info", "{in}"], ["different pixel spacing", "slice_002.dcm"]),
    ("info-mixed-sizes", "mixed sizes", ["info", "{in}"], ["different sizes", "slice_005.dcm (instance 5) is 15x20"]),
    ("info-empty-folder", "empty folder", ["info", "{in}"], ["folder holds no DICOM series"]),
    ("info-junk-only", "junk only", ["info", "{in}"], ["folder holds no DICOM series"]),
    ("info-unknown-series", "regular", ["info", "{in}", "--series", "9.9.9"], ["no series with UID 9.9.9"]),
    ("info-garbage-regularize", "garbage slice", ["info", "{in}", "--regularize"], ["not a valid DICOM file"]),
    ("threshold-missing", "missing", ["threshold", "{in}", "-o", "{out}/seg.seg.nrrd", "--lower", "0"],
     ["missing slice", "slice_003.dcm"]),
    ("threshold-tilt", "tilt", ["threshold", "{in}", "-o", "{out}/t.nii.gz", "--lower", "0"], ["gantry tilt"]),
    ("threshold-truncated", "truncated pixel data", ["threshold", "{in}", "-o", "{out}/t.nii.gz", "--lower", "0",
                                                     "--regularize"], ["slice_004.dcm", "file truncated"]),
    ("evaluate-image-nonuniform", "nonuniform", ["evaluate", "{out}/pred.nii.gz", "{out}/ref.nii.gz", "--image", "{in}",
                                                 "--overlay", "{out}/o.png", "--json", "{out}/m.json"],
     ["not equally spaced"]),
]


def medseg(args, cwd):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "MedSegCore", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=300)


def snapshot(folder):
    return {name: (os.path.getsize(os.path.join(folder, name)), os.path.getmtime(os.path.join(folder, name)))
            for name in sorted(os.listdir(folder))}


def prepare(tmp_path, builder):
    series, out = str(tmp_path / "series"), str(tmp_path / "out")
    BUILDERS[builder](series)
    os.makedirs(out)
    labels = np.zeros(G.shape, np.uint8)
    labels[2:5, 4:10, 5:12] = 1
    io.write_volume(labels, G, os.path.join(out, "pred.nii.gz"))
    io.write_volume(labels, G, os.path.join(out, "ref.nii.gz"))
    return series, out


def fill(args, series, out):
    return [a.replace("{in}", series).replace("{out}", out) for a in args]


@pytest.mark.parametrize("case, builder, args, texts", REFUSED, ids=[c[0] for c in REFUSED])
def test_bad_series_refused_with_one_line(tmp_path, case, builder, args, texts):
    series, out = prepare(tmp_path, builder)
    before = snapshot(out)
    result = medseg(fill(args, series, out), str(tmp_path))
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"medseg {args[0]}: error: ") and series in lines[0]
    for text in texts:
        assert text in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert snapshot(out) == before


def test_predict_fails_the_case_naming_the_problem_and_writes_no_segmentation(tmp_path):
    series, out = prepare(tmp_path, "missing")
    result = medseg(["predict", series, "-o", out], str(tmp_path))
    assert result.returncode in (1, 2), result.stderr
    failed = [ln for ln in (result.stdout + result.stderr).splitlines() if "FAILED" in ln]
    assert failed and "1 missing slice(s)" in failed[0] and "slice_003.dcm" in failed[0]
    assert "Traceback" not in result.stderr + result.stdout
    assert not [n for n in os.listdir(out) if n.endswith(".seg.nrrd")]


ACCEPTED = [
    ("info-missing-regularize", "missing", ["info", "{in}", "--regularize"], "regularized: 1 missing slice(s)",
     "size:        20 x 16 x 8 voxels"),
    ("info-tilt-regularize", "tilt", ["info", "{in}", "--regularize"], "regularized: gantry tilt",
     "size:        20 x 21 x 8 voxels"),
    ("info-jitter", "jitter", ["info", "{in}"], "slice positions deviate up to", "size:        20 x 16 x 8"),
    ("threshold-nonuniform-regularize", "nonuniform", ["threshold", "{in}", "-o", "{out}/t.nii.gz", "--lower",
                                                        "-30000", "--regularize"], "regularized: slices are not equally spaced",
     None),
]


@pytest.mark.parametrize("case, builder, args, warning, stdout", ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_irregular_series_read_with_a_warning(tmp_path, case, builder, args, warning, stdout):
    series, out = prepare(tmp_path, builder)
    result = medseg(fill(args, series, out), str(tmp_path))
    assert result.returncode == 0, result.stderr
    warnings = [ln for ln in result.stderr.splitlines() if warning in ln]
    assert len(warnings) == 1 and warnings[0].startswith("medseg: ") and series in warnings[0]
    assert "Traceback" not in result.stderr
    if stdout:
        assert stdout in result.stdout
    if args[0] == "threshold":
        labels, g = io.read_volume(os.path.join(out, "t.nii.gz"))
        assert g.size == (20, 16, 8) and int(labels.sum()) == labels.size      # every voxel >= -30000


def test_regularize_with_a_dicom_seg_output_is_refused_before_reading(tmp_path):
    series, out = prepare(tmp_path, "tilt")
    before = snapshot(out)
    result = medseg(["threshold", series, "--regularize", "-o", os.path.join(out, "t.dcm"), "--lower", "0"],
                    str(tmp_path))
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert "--regularize cannot be combined with a DICOM SEG output" in lines[0]
    assert snapshot(out) == before


def test_predict_plan_refuses_dicom_seg_with_regularize(tmp_path):
    from MedSegCore.dnn import batch
    from MedSegCore.errors import ParameterError

    options = batch.BatchOptions(str(tmp_path / "out"), dicom_seg=True, regularize=True)
    with pytest.raises(ParameterError, match="--dicom-seg with --regularize"):
        batch.check_plan([], [], options)
