"""The ``medseg`` command line: the vertical slice from a volume file to a Slicer segmentation."""
import os
import subprocess
import sys

import numpy as np
import pytest

from MedSegCore.image import io
from MedSegCore.mrml import nodes
from MedSegCore.cli import main
from synthetic import oblique_geometry, sphere

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def volume_file(tmp_path):
    g = oblique_geometry((40, 36, 16))
    rng = np.random.default_rng(5)
    array = rng.normal(0, 10, size=g.shape).astype(np.int16)
    ball = sphere(g, g.ijk_to_ras()[:3] @ [20, 18, 8, 1], 8)
    array[ball] += 300
    path = str(tmp_path / "ct.nrrd")
    io.write_volume(array, g, path)
    return path, array, g


def test_threshold_writes_real_segmentation_and_overlay(volume_file, tmp_path, capsys):
    path, array, g = volume_file
    out, png = str(tmp_path / "ball.seg.nrrd"), str(tmp_path / "ball.png")
    assert main(["threshold", path, "-o", out, "--lower", "150", "--upper", "1000", "--name", "Ball",
                 "--overlay", png]) == 0
    node = nodes.load_segmentation(out)
    assert nodes.segment_names(node) == ["Ball"]
    mask = nodes.segment_arrays(node, g)["Ball"]
    expected = (array >= 150) & (array <= 1000)
    assert mask.sum() == expected.sum() > 0
    assert np.array_equal(mask, expected)
    np.testing.assert_allclose(nodes.reference_geometry(node).ijk_to_ras(), g.ijk_to_ras(), atol=1e-9)
    from PIL import Image
    image = np.asarray(Image.open(png).convert("RGB")).astype(int)
    # 50% red-ish segment over greyscale: some pixels are clearly coloured, others grey.
    coloured = np.abs(image[..., 0] - image[..., 2]) > 40
    assert coloured.any() and (~coloured).any()


def test_threshold_labelmap_output_by_extension(volume_file, tmp_path):
    path, array, g = volume_file
    out = str(tmp_path / "labels.nii.gz")
    assert main(["threshold", path, "-o", out, "--lower", "150"]) == 0
    labels, h = io.read_volume(out)
    assert set(np.unique(labels)) == {0, 1}
    assert (labels == 1).sum() == (array >= 150).sum()
    np.testing.assert_allclose(h.ijk_to_ras(), g.ijk_to_ras(), atol=2e-5)


def test_info_prints_geometry(volume_file, capsys):
    path, array, g = volume_file
    assert main(["info", path]) == 0
    text = capsys.readouterr().out
    assert "40 x 36 x 16" in text and "0.7 x 0.9 x 2.5 mm" in text
    assert f"orientation: {g.axis_codes()} (oblique)" in text
    assert f"{array.min():g} .. {array.max():g}" in text


def test_bad_input_writes_nothing(volume_file, tmp_path, capsys):
    path, _, _ = volume_file
    out = tmp_path / "x.seg.nrrd"
    cases = [
        (["threshold", path, "-o", str(out), "--lower", "10", "--upper", "5"], "above upper"),
        (["threshold", path, "-o", str(out), "--lower", "5000"], "(the volume's maximum)"),
        (["threshold", path, "-o", str(out), "--lower", "5000", "--upper", "6000"], "no voxel within"),
        (["threshold", str(tmp_path / "missing.nrrd"), "-o", str(out), "--lower", "1"], "no such file"),
        (["threshold", path, "-o", str(tmp_path / "x.png"), "--lower", "1"], "unsupported extension"),
        (["threshold", path, "-o", str(out), "--method", "nosuch"], "nosuch"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err
        assert sorted(os.listdir(tmp_path)) == ["ct.nrrd"], argv
    out.write_bytes(b"precious")
    assert main(["threshold", path, "-o", str(out), "--lower", "150"]) == 2
    assert "pass --overwrite" in capsys.readouterr().err and out.read_bytes() == b"precious"


def test_help_texts():
    result = subprocess.run([sys.executable, "-m", "MedSegCore", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and "threshold" in result.stdout and "info" in result.stdout
    for sub in ("threshold", "info"):
        result = subprocess.run([sys.executable, "-m", "MedSegCore", sub, "--help"], capture_output=True,
                                text=True, cwd=ROOT)
        assert result.returncode == 0 and "usage: medseg " + sub in result.stdout
    assert "ct-bone" in subprocess.run([sys.executable, "-m", "MedSegCore", "threshold", "--help"],
                                       capture_output=True, text=True, cwd=ROOT).stdout


def test_threshold_inside_mask_file_and_copy_mask(volume_file, tmp_path):
    path, array, g = volume_file
    roi = np.zeros(g.shape, np.uint8)
    roi[:, :, :20] = 1
    io.write_volume(roi, g, str(tmp_path / "roi.nrrd"))
    out = str(tmp_path / "masked.seg.nrrd")
    assert main(["threshold", path, "-o", out, "--lower", "150", "--name", "Ball", "--mask",
                 str(tmp_path / "roi.nrrd"), "--mask-as-segment", "ROI"]) == 0
    arrays = nodes.segment_arrays(nodes.load_segmentation(out), g)
    assert set(arrays) == {"Ball", "ROI"}
    assert np.array_equal(arrays["ROI"], roi == 1)
    assert arrays["Ball"].sum() == ((array >= 150) & (roi == 1)).sum() > 0
