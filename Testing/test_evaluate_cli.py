"""``medseg evaluate``: files of both kinds, different grids, folders, outputs and errors."""
import json
import os

import numpy as np
import pytest

from MedSegCore.image import io
from MedSegCore.evaluation import metrics
from MedSegCore.mrml import nodes
from MedSegCore.cli import main
from MedSegCore.image.geometry import Geometry
from synthetic import lps_geometry, sphere

G = lps_geometry((40, 36, 20))


def balls(shift=0.0):
    c = G.ijk_to_ras()[:3] @ [20, 18, 10, 1]
    labels = np.zeros(G.shape, np.uint8)
    labels[sphere(G, c + [shift, 0, 0], 6)] = 1
    labels[sphere(G, c + [0, 10 + shift, 0], 4)] = 2
    return labels


def write_seg(path, labels, geometry=G):
    seg = nodes.new_segmentation_node("S", geometry)
    nodes.write_label_segments(seg, labels, geometry, [(1, "Tumour", (1, 0, 0)), (2, "Vessel", (0, 0, 1))])
    nodes.save_segmentation(seg, path)


def test_label_maps_match_by_value_and_json_csv(tmp_path, capsys):
    ref, pred = balls(), balls(1.5)
    io.write_volume(ref, G, str(tmp_path / "gt.nii.gz"))
    io.write_volume(pred, G, str(tmp_path / "pred.nii.gz"))
    out = str(tmp_path / "m.json")
    assert main(["evaluate", str(tmp_path / "pred.nii.gz"), str(tmp_path / "gt.nii.gz"), "--json", out,
                 "--csv", str(tmp_path / "m.csv")]) == 0
    table = capsys.readouterr().out
    assert "Dice" in table and "HD95" in table
    rows = json.load(open(out, encoding="utf-8"))["rows"]
    expected = metrics.compute_metrics(pred == 1, ref == 1, G.spacing)
    assert rows[0]["segment"] in ("1", 1) and rows[0]["dice"] == pytest.approx(expected.dice)
    assert open(tmp_path / "m.csv", encoding="utf-8").read().count("\n") == 3


def test_segmentations_on_different_grids_are_resampled(tmp_path, caplog):
    write_seg(str(tmp_path / "gt.seg.nrrd"), balls())
    fine = Geometry((80, 72, 40), (0.3, 0.3, 1.5), G.origin, G.direction)
    c = G.ijk_to_ras()[:3] @ [20, 18, 10, 1]
    labels = np.zeros(fine.shape, np.uint8)
    labels[sphere(fine, c, 6)] = 1
    labels[sphere(fine, c + [0, 10, 0], 4)] = 2
    write_seg(str(tmp_path / "pred.seg.nrrd"), labels, fine)
    assert main(["evaluate", str(tmp_path / "pred.seg.nrrd"), str(tmp_path / "gt.seg.nrrd"),
                 "--json", str(tmp_path / "m.json")]) == 0
    assert "resampled onto the reference grid" in caplog.text
    rows = {r["segment"]: r for r in json.load(open(tmp_path / "m.json", encoding="utf-8"))["rows"]}
    assert rows["Tumour"]["dice"] > 0.9 and rows["Vessel"]["dice"] > 0.8


def test_folders_summary_overlay_and_report(tmp_path, capsys):
    (tmp_path / "pred").mkdir()
    (tmp_path / "gt").mkdir()
    for case, shift in (("a", 0.0), ("b", 2.0), ("c", 4.0)):
        io.write_volume(balls(), G, str(tmp_path / "gt" / f"{case}.nii.gz"))
        io.write_volume(balls(shift), G, str(tmp_path / "pred" / f"{case}.nii.gz"))
    image = balls().astype(np.float32) * 100
    io.write_volume(image, G, str(tmp_path / "img.nrrd"))
    assert main(["evaluate", str(tmp_path / "pred"), str(tmp_path / "gt"), "--image", str(tmp_path / "img.nrrd"),
                 "--overlay", str(tmp_path / "o.png"), "--report", str(tmp_path / "rep")]) == 0
    out = capsys.readouterr().out
    assert "summary (mean ± sd over cases)" in out and "(n=3" in out
    from PIL import Image
    from MedSegCore.evaluation import report
    pixels = {tuple(p) for p in np.asarray(Image.open(tmp_path / "o.png").convert("RGB")).reshape(-1, 3)}
    grey = sum(1 for p in pixels if p[0] == p[1] == p[2])
    assert len(pixels) - grey >= 3            # agreement, false positive and false negative colours
    assert report.COLORS["tp"] != report.COLORS["fp"] != report.COLORS["fn"]
    html = open(tmp_path / "rep" / "index.html", encoding="utf-8").read()
    assert "<table" in html and "data:image/png;base64" in html
    assert "Disagreement and per-slice Dice (c)" in html        # figures of the case whose masks are drawn


def test_errors(tmp_path, capsys):
    write_seg(str(tmp_path / "gt.seg.nrrd"), balls())
    io.write_volume(balls(), G, str(tmp_path / "pred.nii.gz"))
    assert main(["evaluate", str(tmp_path / "pred.nii.gz"), str(tmp_path / "gt.seg.nrrd")]) == 2
    err = capsys.readouterr().err
    assert "give a mapping" in err and "Tumour" in err
    assert main(["evaluate", str(tmp_path / "pred.nii.gz"), str(tmp_path / "gt.seg.nrrd"),
                 "--map", "1=Tumour", "--map", "2=Vessel"]) == 0
    capsys.readouterr()
    (tmp_path / "empty.nii.gz").write_bytes(b"")
    assert main(["evaluate", str(tmp_path / "empty.nii.gz"), str(tmp_path / "gt.seg.nrrd")]) == 2
    assert "file is empty" in capsys.readouterr().err
    io.write_volume(balls().astype(np.float32) * 0.5, G, str(tmp_path / "soft.nii.gz"))
    assert main(["evaluate", str(tmp_path / "soft.nii.gz"), str(tmp_path / "pred.nii.gz")]) == 2
    assert "non-integer values" in capsys.readouterr().err
