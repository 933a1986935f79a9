"""``medseg demo`` end to end on the MNI152 sample: files written, and the bundled model's Dice
on the held-out right hemisphere against the template's grey/white-matter maps."""
import os
import re

import pytest

from MedSegCore.mrml import nodes
from MedSegCore.cli import main


def test_demo_writes_results_and_the_model_beats_the_baseline(tmp_path, capsys):
    out = str(tmp_path / "out")
    assert main(["demo", "--output", out, "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    for name in ("mni152_t1.nrrd", "reference.seg.nrrd", "brain_tissue.seg.nrrd", "brain_tissue.png",
                 "threshold_baseline.seg.nrrd", "threshold_baseline.png", "dnn.seg.nrrd", "dnn.png",
                 os.path.join("report", "index.html")):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    assert nodes.segment_names(nodes.load_segmentation(os.path.join(out, "dnn.seg.nrrd"))) == \
        ["Grey matter", "White matter"]
    dice = {}
    for line in text.splitlines():
        m = re.match(r"(multi-Otsu|U-Net).*?\s(Grey matter|White matter)\s+([0-9.]+)", line)
        if m:
            dice[m.group(1), m.group(2)] = float(m.group(3))
    assert len(dice) == 4, text
    # Figures recorded in MedSegCore/models/default/EVALUATION.md ("right hemisphere, whole head as input",
    # as the demo runs it): model 0.958 / 0.956, multi-Otsu 0.910 / 0.949.
    assert dice["U-Net", "Grey matter"] == pytest.approx(0.958, abs=0.01)
    assert dice["U-Net", "White matter"] == pytest.approx(0.956, abs=0.01)
    assert dice["multi-Otsu", "Grey matter"] == pytest.approx(0.910, abs=0.005)
    assert dice["multi-Otsu", "White matter"] == pytest.approx(0.949, abs=0.005)
    assert dice["U-Net", "Grey matter"] > dice["multi-Otsu", "Grey matter"] + 0.03
    assert dice["U-Net", "White matter"] > dice["multi-Otsu", "White matter"]
