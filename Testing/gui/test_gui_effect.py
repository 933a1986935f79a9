"""The "MedSeg Threshold" Segment Editor effect driven as a user drives it, on real Qt widgets,
the real vtkSlicerSegmentEditorLogic and three real slice views (see effect_host.py, views.py).

The preview's pixels are checked against Slicer's own reslicing of the volume in each view (the
slice logic's background layer, nearest neighbour), thresholded with numpy.
"""
import numpy as np
import pytest

import slicer
from gui import effect_host
from gui.conftest import process_events, screenshot
from MedSegCore.image.geometry import Geometry
from MedSegCore.mrml import nodes

EFFECT = "MedSeg Threshold"


def _volume():
    rng = np.random.default_rng(5)
    array = rng.normal(100, 30, (16, 24, 32)).astype(np.int16)
    array[4:12, 6:18, 8:24] += 400                    # a bright block
    geometry = Geometry((32, 24, 16), (1.0, 1.0, 2.0), (-16, -12, -16), np.eye(3))
    volume = nodes.add_volume_node(array, geometry, "ct")
    volume.CreateDefaultDisplayNodes()
    display = volume.GetDisplayNode()
    display.SetAutoWindowLevel(0)
    display.SetWindowLevel(800, 300)
    display.SetInterpolate(0)
    return array, volume


@pytest.fixture
def editor():
    """Effect registered at startup (MedSegThreshold's startupCompleted slot), then set up in a
    segment editor over a volume shown in the three views, with one selected segment."""
    import slicer_harness
    slicer_harness.load_module("MedSegThreshold")
    factory = slicer.qSlicerSegmentEditorEffectFactory.instance()
    factory.effects[:] = []
    slicer.app.startupCompleted.emit()                 # Slicer: registers the effect
    (scripted,) = [e for e in factory.effects if e.name == EFFECT]
    array, volume = _volume()
    segmentation = nodes.new_segmentation_node("seg", volume)
    segmentation.CreateDefaultDisplayNodes()
    segmentID = segmentation.GetSegmentation().AddEmptySegment("", "Bright", [0.2, 0.9, 0.3])
    layout = slicer.app.layoutManager()
    layout.resetSliceViews(volume)
    host = effect_host.SegmentEditor(scripted, segmentation, volume)
    host.node.SetSelectedSegmentID(segmentID)
    yield host, scripted.self(), array, volume, segmentation, segmentID
    host.close()
    process_events()


def _tick(effect, ticks=1):
    for _ in range(ticks):
        effect.timer.timeout.emit()


def _expected_mask(sliceWidget, lower, upper):
    """Slicer's own reslice of the volume into this view, thresholded with numpy."""
    layer = sliceWidget.sliceLogic().GetBackgroundLayer()
    layer.GetReslice().Update()
    from vtk.util import numpy_support
    out = layer.GetReslice().GetOutput()
    w, h, _ = out.GetDimensions()
    values = numpy_support.vtk_to_numpy(out.GetPointData().GetScalars()).reshape(h, w)
    inside = numpy_support.vtk_to_numpy(out.GetPointData().GetArray(0)).reshape(h, w)
    return (values >= lower) & (values <= upper), inside


def test_preview_ticks_in_three_views_with_selected_segment(editor):
    host, effect, array, volume, segmentation, segmentID = editor
    host.activate()
    effect.thresholdSlider.setMinimumValue(350)
    effect.thresholdSlider.setMaximumValue(float(array.max()))
    assert host.effect.doubleParameter("MinimumThreshold") == 350
    _tick(effect, 3)
    layout = slicer.app.layoutManager()
    assert {w.mrmlSliceNode().GetName() for w in effect.previewPipelines} == {"Red", "Yellow", "Green"}
    for sliceWidget, pipeline in effect.previewPipelines.items():
        assert pipeline.actor.GetVisibility(), sliceWidget.mrmlSliceNode().GetName()
        expected, _ = _expected_mask(sliceWidget, 350, float(array.max()))
        assert expected.any()
        got = pipeline.preview.mask
        assert got.shape == expected.shape
        assert np.array_equal(got, expected), sliceWidget.mrmlSliceNode().GetName()
        rgba = pipeline.preview.rgba
        color = np.round(255 * np.array([0.2, 0.9, 0.3])).astype(int)   # the segment's colour
        assert np.array_equal(rgba[expected][0, :3], color)
        assert (rgba[~expected][:, 3] == 0).all()
    images = layout.renderAll()
    from PIL import Image
    import os
    from gui.conftest import SCREENSHOTS
    os.makedirs(SCREENSHOTS, exist_ok=True)
    Image.fromarray(np.concatenate([images[n] for n in ("Red", "Yellow", "Green")], axis=1)).save(
        os.path.join(SCREENSHOTS, "effect_preview_views.png"))
    screenshot(host.effect.optionsFrame(), "effect_options")


def test_developer_reload_after_the_effect_is_registered(module_panel):
    """Slicer's setPythonSource imports the effect file under its folder's name and replaces that
    sys.modules entry unless the package already has the class; Reload then re-runs
    MedSegThreshold.py, which imports EFFECT_SOURCE and registerEffect from that package."""
    import sys
    panel = module_panel("MedSegThreshold")
    factory = slicer.qSlicerSegmentEditorEffectFactory.instance()
    factory.effects[:] = []
    slicer.app.startupCompleted.emit()
    assert [e.name for e in factory.effects] == [EFFECT]
    package = sys.modules["SegmentEditorMedSegThresholdLib"]
    assert hasattr(package, "EFFECT_SOURCE") and hasattr(package, "registerEffect")
    reloaded = slicer.util.reloadScriptedModule("MedSegThreshold")       # Slicer's own Reload
    assert reloaded.EFFECT_SOURCE == package.EFFECT_SOURCE
    assert panel.widget() is slicer.modules.MedSegThresholdWidget and panel.widget().ui.applyButton.enabled
    clone = factory.effects[0].self().clone()                             # the editor clones effects per view
    assert clone.name == EFFECT and type(clone.self()).__name__ == "SegmentEditorEffect"
