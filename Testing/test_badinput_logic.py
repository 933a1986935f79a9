"""The Slicer path of the bad-input matrix: the MedSegThreshold Logic, in this process (as in
Slicer, where a C++ abort would take the user's scene), given the hostile mask files of
Testing/badinput/cases_segmentations.py.  Each must raise one MedSegError line naming the file
and the problem and leave the scene exactly as it was; the panel's enabled controls come from the
same MedSegCore rule the CLI refuses with.
"""
import numpy as np
import pytest
import slicer

import slicer_harness
from badinput import build as b
from badinput.cases_segmentations import greyscale, seg_variants
from MedSegCore.errors import MedSegError, ParameterError
from MedSegCore.image.geometry import Geometry
from MedSegCore.mrml import nodes
from MedSegCore.threshold import engine, options

VARIANTS = seg_variants()


@pytest.fixture
def logic():
    slicer_harness.load_module("MedSegThreshold")
    import MedSegThreshold
    return MedSegThreshold.MedSegThresholdLogic()


@pytest.fixture
def volume():
    # The grid build.write_seg's reference geometry describes: LPS axes of 2, 1 and 1.5 mm.
    g = Geometry(tuple(reversed(b.SHAPE)), (2.0, 1.0, 1.5), (0, 0, 0), np.diag([-1.0, -1.0, 1.0]))
    return nodes.add_volume_node(b.image(), g, "ct")


def scene_state():
    return sorted(slicer.mrmlScene.GetNthNode(i).GetID() for i in range(slicer.mrmlScene.GetNumberOfNodes()))


def refuse(logic, volume, expect, name, **kw):
    before = scene_state()
    with pytest.raises(MedSegError) as info:
        logic.apply(volume, kw.pop("params", engine.ThresholdParameters(lower=300)), **kw)
    text = str(info.value)
    assert "\n" not in text and (name is None or name in text), text
    assert __import__("re").search(expect, text), text
    assert scene_state() == before


def test_good_mask_file_is_used(logic, volume, tmp_path):
    """Control: the same call with a good .seg.nrrd mask works, so the refusals below are real."""
    path = b.write_seg(str(tmp_path / "mask.seg.nrrd"))
    seg, results = logic.apply(volume, engine.ThresholdParameters(lower=300, name="In"), maskFile=path)
    assert results[0].voxels == int((b.image() >= 300).sum()) > 0


@pytest.mark.parametrize("name,writer,expect", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_hostile_seg_mask_file(logic, volume, tmp_path, name, writer, expect):
    path = str(tmp_path / "bad.seg.nrrd")
    writer(path)
    refuse(logic, volume, expect, path, maskFile=path)


def test_greyscale_mask_file(logic, volume, tmp_path):
    path = str(greyscale(tmp_path))
    refuse(logic, volume, r"looks like a greyscale image", path, maskFile=path)


def test_mask_segmentation_and_file_together(logic, volume, tmp_path):
    mask = nodes.new_segmentation_node("mask", volume)
    path = b.write_seg(str(tmp_path / "mask.seg.nrrd"))
    refuse(logic, volume, r"mask segmentation or a mask file, not both", None, maskSegmentation=mask, maskFile=path)


@pytest.mark.parametrize("params,expect", [
    (engine.ThresholdParameters(method="otsu", levels=3), r"--levels and --method conflict"),
    (engine.ThresholdParameters(preset="ct-bone", lower=5), r"--preset and --lower conflict"),
    (engine.ThresholdParameters(lower=float("nan")), r"--lower nan"),
    (engine.ThresholdParameters(lower=300, cleanup=engine.CleanupOptions(min_size_mm3=float("nan"))), r"--min-size"),
    (engine.ThresholdParameters(lower=300, color=(float("nan"), 0, 0)), r"--color"),
])
def test_conflicting_or_impossible_parameters(logic, volume, params, expect):
    refuse(logic, volume, expect, None, params=params)


def test_panel_enables_only_the_chosen_source_and_one_mask_kind():
    for source in options.SOURCES:
        on = {k for k, v in options.enabled_controls(source).items() if v and not k.startswith("mask")}
        assert on == ({"lower", "upper"} if source == "range" else {source})
    assert options.enabled_controls("range", mask_segmentation=True)["mask_file"] is False
    assert options.enabled_controls("range", mask_file=True)["mask_segmentation"] is False
    assert options.enabled_controls("range", mask_file=True)["mask_segment_name"] is False
    assert options.enabled_controls("range", mask_segmentation=True)["mask_segment_name"] is True
    with pytest.raises(ParameterError):
        options.enabled_controls("magic")


def test_every_panel_control_named_exists_in_the_ui():
    """The widget names the panel switches on and off are the .ui file's."""
    import os
    import xml.etree.ElementTree as ET

    slicer_harness.load_module("MedSegThreshold")
    import MedSegThreshold
    ui = os.path.join(slicer_harness.MODULE_DIRS["MedSegThreshold"], "Resources", "UI", "MedSegThreshold.ui")
    names = {w.get("name") for w in ET.parse(ui).iter("widget")}
    assert set(MedSegThreshold.MedSegThresholdWidget.CONTROLS.values()) <= names
    assert set(MedSegThreshold.MedSegThresholdWidget.CONTROLS) == set(options.enabled_controls("range"))
