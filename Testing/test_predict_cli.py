"""``medseg predict``: batch inputs, outputs checked against a deterministic threshold network,
resume, failures, timings, DICOM, multi-channel cases and the untrained default model."""
import csv
import json
import logging
import os

import numpy as np
import pytest
import torch

from MedSegCore.image import io
from MedSegCore.mrml import nodes
from MedSegCore.cli import main
from MedSegCore.dnn import batch
from MedSegCore.mrml import predictions
from MedSegCore.image.geometry import Geometry
from synthetic import rotation, sphere, write_dicom_series

OBLIQUE = Geometry((40, 40, 24), (1, 1, 1), (12.3, -45.6, 7.8), rotation())
LPS = Geometry((40, 40, 24), (1, 1, 1), (100.0, 80.0, -30.0), np.diag([-1.0, -1.0, 1.0]))
TERM = {"category": ["123037004", "SCT", "Anatomical Structure"], "type": ["4147007", "SCT", "Mass"]}


def threshold_model(folder, in_channels=1):
    """Affine 'network' (UNet of 1x1x1 convs, no norm or activation): logits (0, 10(x-50), 20(x-150)),
    so softmax gives Shell (1) for 50 < x < 250 and Core (2) above 250, from input channel 0."""
    card = {"name": "Threshold test net", "version": "1.0", "description": "test", "intended_use": "tests",
            "trained": True, "in_channels": in_channels, "out_channels": 3, "roi_size": [16, 16, 16],
            "architecture": {"type": "monai.UNet", "params": {
                "channels": [2, 2], "strides": [1], "kernel_size": 1, "up_kernel_size": 1, "num_res_units": 0,
                "act": None, "norm": None}},
            "normalization": {"type": "none"}, "output": "softmax",
            "labels": [{"value": 1, "name": "Shell", "color": [0.2, 0.8, 0.2], "terminology": TERM},
                       {"value": 2, "name": "Core", "color": [0.9, 0.1, 0.1]}]}
    from monai.networks.nets import UNet
    net = UNet(3, in_channels, 3, channels=(2, 2), strides=(1,), kernel_size=1, up_kernel_size=1,
               num_res_units=0, act=None, norm=None)
    sd = {k: torch.zeros_like(v) for k, v in net.state_dict().items()}
    sd["model.0.conv.weight"][:, 0] = 1.0                       # both features = x; the skip adds (0, 0)
    sd["model.2.conv.weight"][:2, 1], sd["model.2.conv.bias"][1] = 5.0, -500.0
    sd["model.2.conv.weight"][:2, 2], sd["model.2.conv.bias"][2] = 10.0, -3000.0
    os.makedirs(folder, exist_ok=True)
    torch.save(sd, os.path.join(folder, "model.pt"))
    with open(os.path.join(folder, "card.json"), "w", encoding="utf-8") as f:
        json.dump(card, f)
    return str(folder)


def phantom(geometry, shift=0.0):
    """0 background, 150 shell (r 9 mm), 400 core (r 4 mm): expected labels 0 / 1 / 2."""
    c = geometry.ijk_to_ras()[:3] @ [20 + shift, 20, 12, 1]
    image = np.zeros(geometry.shape, np.int16)
    image[sphere(geometry, c, 9)] = 150
    image[sphere(geometry, c, 4)] = 400
    return image


def expected(image):
    return np.where(image > 250, 2, np.where(image > 50, 1, 0)).astype(np.uint8)


@pytest.fixture(autouse=True)
def _fresh_log_handler(monkeypatch):
    """main() adds its stderr handler once; drop it so each test's captured stderr gets the log."""
    monkeypatch.setattr(logging.getLogger("medseg"), "handlers", [])


@pytest.fixture(scope="module")
def tnet(tmp_path_factory):
    return threshold_model(tmp_path_factory.mktemp("tnet"))


def leftovers(out):
    return [f for f in os.listdir(out) if f.startswith(".medseg-") or ".part" in f]


def timing_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def check_seg(path, geometry, image):
    node = nodes.load_segmentation(str(path))
    ref = nodes.reference_geometry(node)
    assert ref.size == geometry.size
    for a, b in ((ref.spacing, geometry.spacing), (ref.origin, geometry.origin), (ref.direction, geometry.direction)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    masks = nodes.segment_arrays(node, geometry)
    assert list(masks) == ["Shell", "Core"]
    want = expected(image)
    assert masks["Shell"].sum() > 100 and masks["Core"].sum() > 50
    np.testing.assert_array_equal(masks["Shell"], want == 1)
    np.testing.assert_array_equal(masks["Core"], want == 2)
    return node


def test_outputs_geometry_segments_and_timings(tmp_path, tnet, capsys):
    a, b = phantom(OBLIQUE), phantom(LPS, 3)
    io.write_volume(a.astype(np.float32), OBLIQUE, str(tmp_path / "case_a.nii.gz"))
    io.write_volume(b, LPS, str(tmp_path / "case_b.nrrd"))
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "case_a.nii.gz"), str(tmp_path / "case_b.nrrd"), "-o", str(out),
                 "--model", tnet, "--labelmap", "--overlay", "--probabilities", "--roi", "16", "16", "8"]) == 0
    std = capsys.readouterr()
    assert "[1/2] case_a:" in std.err and "window" in std.err and "[2/2] case_b: ok" in std.err
    assert "case_a  ok" in std.out and "Shell: " in std.out
    node = check_seg(out / "case_a.seg.nrrd", OBLIQUE, a)
    seg = node.GetSegmentation()
    shell = seg.GetSegment(nodes.segment_id_by_name(node, "Shell"))
    np.testing.assert_allclose(shell.GetColor(), (0.2, 0.8, 0.2), atol=1e-6)
    import slicer
    want_tag = slicer.vtkSlicerTerminologiesModuleLogic.SerializeTerminologyEntry(
        predictions.TERMINOLOGY_CONTEXT, "123037004", "SCT", "Anatomical Structure", "4147007", "SCT", "Mass",
        "", "", "", predictions.ANATOMY_CONTEXT, "", "", "", "", "", "")
    assert shell.GetTerminology() == want_tag
    check_seg(out / "case_b.seg.nrrd", LPS, b)
    labels, geom = io.read_volume(str(out / "case_b.nii.gz"))
    assert geom.size == LPS.size and np.array_equal(labels, expected(b))
    prob, _ = io.read_volume(str(out / "case_a_prob_Core.nii.gz"))
    assert prob.dtype == np.float32 and prob[expected(a) == 2].min() > 0.99 and prob[expected(a) == 0].max() < 0.01
    assert (out / "case_a_prob_Shell.nii.gz").is_file()
    from PIL import Image
    png = np.asarray(Image.open(out / "case_a.png").convert("RGB")).astype(int)
    assert ((png[..., 1] - png[..., 0]) > 50).any() and ((png[..., 0] - png[..., 1]) > 50).any()   # green, red
    rows = timing_rows(out / "timings.csv")
    assert [r["case"] for r in rows] == ["case_a", "case_b"] and all(r["status"] == "ok" for r in rows)
    assert all(float(r["total_s"]) >= float(r["inference_s"]) > 0 for r in rows)
    assert not leftovers(out)


def test_glob_folder_and_dicom_expansion(tmp_path):
    data = tmp_path / "data"
    for name in ("p1_t1.nii.gz", "p2_t1.nii.gz", "p2_t2.nii.gz", "x.seg.nrrd", "notes.txt"):
        (data / "sub").mkdir(parents=True, exist_ok=True)
        (data / name).write_bytes(b"x")
    (data / "sub" / "deep.nii.gz").write_bytes(b"x")
    geom = Geometry((8, 8, 3), (1, 1, 2), (0, 0, 0), np.eye(3))
    write_dicom_series(np.zeros(geom.shape), geom, str(tmp_path / "pat" / "s1"), "1.2.3.4.100000001")
    write_dicom_series(np.zeros(geom.shape), geom, str(tmp_path / "pat" / "s2"), "1.2.3.4.200000002")
    cases = batch.expand_inputs([str(data / "*_t1.nii.gz"), str(data), str(tmp_path / "pat")])
    names = [c.name for c in cases]
    assert names == ["p1_t1", "p2_t1", "p2_t2", "pat_00000001", "pat_00000002"]
    assert cases[-1].sources == [(str(tmp_path / "pat"), "1.2.3.4.200000002")]
    grouped = batch.expand_inputs([str(data)], channels=["_t1", "_t2"])
    assert [(c.name, c.error is None) for c in grouped] == [("p1", False), ("p2", True)]
    assert "missing channel file(s) p1_t2.*" in grouped[0].error
    out = data / "out"
    out.mkdir()
    (out / "p1_t1.nii.gz").write_bytes(b"x")                         # outputs are never inputs
    assert [c.name for c in batch.expand_inputs([str(data / "**" / "*.nii.gz")], exclude=str(out))] == \
        ["p1_t1", "p2_t1", "p2_t2", "deep"]
    with pytest.raises(Exception, match="no input volumes found"):
        batch.expand_inputs([str(tmp_path / "none*.nii.gz")])


def test_dicom_series_folder(tmp_path, tnet):
    image = phantom(LPS)
    write_dicom_series(image, LPS, str(tmp_path / "patient7"), "1.2.826.0.1.3680043.2.1125.77")
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "patient7"), "-o", str(out), "--model", tnet]) == 0
    _, geometry = io.read_volume(str(tmp_path / "patient7"))
    check_seg(out / "patient7.seg.nrrd", geometry, image)


def test_resume_overwrite_and_interrupt(tmp_path, tnet, capsys, monkeypatch):
    for n in ("c1", "c2", "c3"):
        io.write_volume(phantom(OBLIQUE), OBLIQUE, str(tmp_path / f"{n}.nii.gz"))
    out, args = tmp_path / "out", ["predict", str(tmp_path / "*.nii.gz"), "-o", str(tmp_path / "out"), "--model", tnet]
    real, calls = batch.predict, []

    def interrupted(*a, **kw):                       # Ctrl+C while the second case runs
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*a, **kw)
    monkeypatch.setattr(batch, "predict", interrupted)
    assert main(args + ["--labelmap"]) == 130
    assert sorted(os.listdir(out)) == ["c1.nii.gz", "c1.seg.nrrd", "timings.csv"]
    monkeypatch.setattr(batch, "predict", real)
    capsys.readouterr()
    stamp = os.stat(out / "c1.seg.nrrd").st_mtime_ns
    assert main(args) == 0
    assert "[1/3] c1: skipped (exists)" in capsys.readouterr().err
    assert os.stat(out / "c1.seg.nrrd").st_mtime_ns == stamp
    assert [r["case"] for r in timing_rows(out / "timings.csv")] == ["c1", "c2", "c3"]
    assert main(args + ["--overwrite", "--timings", str(tmp_path / "t.csv")]) == 0
    assert "c1: skipped" not in capsys.readouterr().err and os.stat(out / "c1.seg.nrrd").st_mtime_ns != stamp
    assert len(timing_rows(tmp_path / "t.csv")) == 3


def test_failing_cases_do_not_stop_the_batch(tmp_path, tnet, capsys, monkeypatch):
    io.write_volume(phantom(OBLIQUE), OBLIQUE, str(tmp_path / "good.nii.gz"))
    (tmp_path / "corrupt.nii.gz").write_bytes(b"\x1f\x8b\x08\x00 this is not a volume")
    nan = phantom(OBLIQUE).astype(np.float32)
    nan[3, 4, 5] = np.nan
    io.write_volume(nan, OBLIQUE, str(tmp_path / "nan.nrrd"))          # (ITK's NIfTI reader turns NaN into 0)
    io.write_volume(phantom(LPS), LPS, str(tmp_path / "writefail.nii.gz"))
    real = nodes.save_segmentation

    def failing_save(node, path):                    # the disk fills up half-way through one .seg.nrrd
        if "writefail" not in path:
            return real(node, path)
        with io.atomic_path(path) as tmp:
            open(tmp, "wb").write(b"NRRD0004\npartial")
            raise OSError(28, "No space left on device")
    monkeypatch.setattr(nodes, "save_segmentation", failing_save)
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path), "-o", str(out), "--model", tnet, "--labelmap"]) == 1
    std = capsys.readouterr()
    table = {line.split()[0]: line for line in std.out.splitlines()[1:]}
    assert "ok" in table["good"] and "failed" in table["corrupt"] and "truncated or corrupt" in table["corrupt"]
    assert "NaN" in table["nan"] and "disk full while writing" in table["writefail"]
    assert "[1/4] corrupt: FAILED:" in std.err
    assert sorted(os.listdir(out)) == ["good.nii.gz", "good.seg.nrrd", "timings.csv"]   # nothing partial
    rows = {r["case"]: r for r in timing_rows(out / "timings.csv")}
    assert len(rows) == 4 and rows["nan"]["status"] == "failed" and "NaN" in rows["nan"]["error"]


def test_multichannel_cases_and_global_errors(tmp_path, capsys):
    model2 = threshold_model(tmp_path / "net2", in_channels=2)
    for name in ("a_0000", "a_0001", "b_0000"):
        io.write_volume(phantom(OBLIQUE), OBLIQUE, str(tmp_path / f"{name}.nii.gz"))
    out = str(tmp_path / "out")
    assert main(["predict", str(tmp_path / "*.nii.gz"), "-o", out, "--model", model2,
                 "--channels", "_0000,_0001"]) == 1
    text = capsys.readouterr().out
    assert "a     ok" in text and "missing channel file(s) b_0001.*" in text
    check_seg(os.path.join(out, "a.seg.nrrd"), OBLIQUE, phantom(OBLIQUE))
    for argv, message in (([str(tmp_path / "*.nii.gz")], "needs 2 input channels"),
                          ([str(tmp_path / "a_0000.nii.gz"), "--channels", "_0000"], "1 suffix(es)"),
                          ([str(tmp_path / "nothing*.nrrd")], "no input volumes found"),
                          ([str(tmp_path / "a_0000.nii.gz"), "--overlap", "1.5"], "--overlap"),
                          ([str(tmp_path / "a_0000.nii.gz"), "--roi", "0", "16", "16"], "roi size")):
        model = model2 if "suffix" in message or "needs" in message else "default"
        assert main(["predict", *argv, "-o", out, "--model", model]) == 2, message
        assert message in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "a_0000.nii.gz"), "-o", out, "--model", str(tmp_path / "no")]) == 2


def test_default_model_and_untrained_warning(tmp_path, capsys, caplog):
    from MedSegCore.dnn.placeholder import write_placeholder
    image = np.random.default_rng(0).normal(100, 20, OBLIQUE.shape).astype(np.float32)
    io.write_volume(image, OBLIQUE, str(tmp_path / "brain.nii.gz"))
    write_placeholder(tmp_path / "untrained")
    assert main(["predict", str(tmp_path / "brain.nii.gz"), "-o", str(tmp_path / "u"),
                 "--model", str(tmp_path / "untrained")]) == 0
    assert "UNTRAINED PLACEHOLDER" in caplog.text
    caplog.clear()
    out = tmp_path / "out"
    assert main(["predict", str(tmp_path / "brain.nii.gz"), "-o", str(out)]) == 0
    assert "UNTRAINED" not in caplog.text and "CUDA" in caplog.text and "memory: about" in caplog.text
    node = nodes.load_segmentation(str(out / "brain.seg.nrrd"))
    assert nodes.segment_names(node) == ["Grey matter", "White matter"]
    ref = nodes.reference_geometry(node)
    np.testing.assert_allclose(ref.ijk_to_ras(), OBLIQUE.ijk_to_ras(), atol=1e-6)
    seg = node.GetSegmentation().GetNthSegment(0)
    assert "~SCT^389081007^Gray matter~" in seg.GetTerminology()
