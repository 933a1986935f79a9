"""The "MedSeg Threshold" effect file loads under the headless harness (qt/ctk stand-ins) the way
Slicer's qSlicerSegmentEditorScriptedEffect::setPythonSource loads it, sets its stable name, and
its Apply path (no Qt involved) writes through the Segment Editor logic.

Slicer's ``SegmentEditorEffects`` package needs the Qt application, so a stand-in with the one
class the effect uses is installed here, for these tests only.
"""
import ast
import importlib.util
import os
import sys
import types

import numpy as np
import pytest

import slicer

from MedSegCore.mrml import editor_apply, nodes
from MedSegCore.image.geometry import Geometry
from effect_standin import LogicBackedScriptedEffect

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "MedSegThreshold", "SegmentEditorMedSegThresholdLib")
EFFECT_FILE = os.path.join(LIB, "SegmentEditorEffect.py")


class AbstractScriptedSegmentEditorEffect:
    """Stand-in for SegmentEditorEffects.AbstractScriptedSegmentEditorEffect (Slicer 5.10)."""

    def __init__(self, scriptedEffect):
        self.scriptedEffect = scriptedEffect


@pytest.fixture
def effect_module(monkeypatch):
    """Load SegmentEditorEffect.py as Slicer does: module named after its folder, class by file name."""
    stand_in = types.ModuleType("SegmentEditorEffects")
    stand_in.AbstractScriptedSegmentEditorEffect = AbstractScriptedSegmentEditorEffect
    stand_in.__all__ = ["AbstractScriptedSegmentEditorEffect"]
    monkeypatch.setitem(sys.modules, "SegmentEditorEffects", stand_in)
    spec = importlib.util.spec_from_file_location("SegmentEditorMedSegThresholdLib", EFFECT_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_effect_sets_stable_name(effect_module):
    fake = LogicBackedScriptedEffect()
    effect = effect_module.SegmentEditorEffect(fake)
    assert fake.name == "MedSeg Threshold"
    assert fake.title == "MedSeg Threshold" and fake.requireSegments is False
    assert effect.scriptedEffect is fake
    for method in ("clone", "icon", "helpText", "activate", "deactivate", "setupOptionsFrame", "setMRMLDefaults",
                   "updateGUIFromMRML", "updateMRMLFromGUI", "sourceVolumeNodeChanged", "layoutChanged", "cleanup"):
        assert callable(getattr(effect, method)), method


def test_name_is_not_translated_and_registration_points_at_the_file():
    tree = ast.parse(open(EFFECT_FILE, encoding="utf-8").read())
    names = [node.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
             and any(ast.unparse(t) == "scriptedEffect.name" for t in node.targets)]
    assert [ast.unparse(v) for v in names] == ["EFFECT_NAME"]
    consts = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
              if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant)}
    assert consts["EFFECT_NAME"] == "MedSeg Threshold"
    import SegmentEditorMedSegThresholdLib as lib   # Qt-free package (MedSegThreshold/ is on sys.path)
    assert lib.EFFECT_NAME == "MedSeg Threshold" and os.path.samefile(lib.EFFECT_SOURCE, EFFECT_FILE)
    assert os.path.isfile(os.path.join(LIB, "SegmentEditorEffect.png"))


def test_method_combo_offers_every_autothreshold_method(effect_module):
    from MedSegCore.threshold import autothreshold
    assert len(autothreshold.METHODS) == 11 and "li" in autothreshold.METHODS
    assert effect_module.autothreshold is autothreshold


def _scene():
    rng = np.random.default_rng(3)
    array = rng.integers(-100, 300, (6, 10, 12)).astype(np.int16)
    geometry = Geometry((12, 10, 6), (1.0, 1.0, 2.5), (0, 0, 0), np.eye(3))
    volume = nodes.add_volume_node(array, geometry, "source")
    seg = nodes.new_segmentation_node("seg", volume)
    logic = editor_apply.editor_logic(seg, volume)
    return array, seg, volume, logic


def test_effect_apply_writes_through_the_editor_logic(effect_module):
    array, seg, volume, logic = _scene()
    segment_id = seg.GetSegmentation().AddEmptySegment("", "Target", [1, 0, 0])
    logic.GetSegmentEditorNode().SetSelectedSegmentID(segment_id)
    fake = LogicBackedScriptedEffect(logic)
    effect = effect_module.SegmentEditorEffect(fake)
    effect.setMRMLDefaults()
    fake.setParameter("MinimumThreshold", 0)
    fake.setParameter("MaximumThreshold", 150)
    fake.setParameter("Invert", 1)
    (result,) = effect.applyThreshold()
    expected = (array < 0) | (array > 150)
    got = slicer.util.arrayFromSegmentBinaryLabelmap(seg, segment_id, volume) > 0
    assert np.array_equal(got, expected) and result.voxels == int(expected.sum())
    assert result.volume_ml == pytest.approx(expected.sum() * 2.5 / 1000)

    fake.setParameter("AutoThresholdMethod", "multi_otsu")
    fake.setParameter("MultiOtsuClasses", 4)
    params = effect.thresholdParameters()
    assert params.levels == 4 and not params.invert      # classes partition the volume
    results = effect.applyThreshold()
    assert len(results) == 4 and seg.GetSegmentation().GetNumberOfSegments() == 5
    logic.Undo()
    assert seg.GetSegmentation().GetNumberOfSegments() == 1
