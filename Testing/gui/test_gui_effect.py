"""The "MedSeg Threshold" Segment Editor effect driven as a user drives it, on real Qt widgets,
the real vtkSlicerSegmentEditorLogic and three real slice views (see effect_host.py, views.py).

The preview's pixels are checked against Slicer's own reslicing of the volume in each view (the
slice logic's background layer, nearest neighbour), thresholded with numpy.
"""
import numpy as np
import pytest

import slicer
from gui import effect_host
from gui.conftest import check_histogram, process_events, screenshot
from MedSegCore.image.geometry import Geometry
from MedSegCore.mrml import nodes

EFFECT = "MedSeg Threshold"


def _volume():
    rng = np.random.default_rng(5)
    array = rng.normal(1100, 30, (16, 24, 32)).astype(np.int16)   # no voxel is 0: Slicer's reslice fills 0 outside
    array[4:12, 6:18, 8:24] += 400                    # a bright block
    geometry = Geometry((32, 24, 16), (1.0, 1.0, 2.0), (-16, -12, -16), np.eye(3))
    volume = nodes.add_volume_node(array, geometry, "ct")
    volume.CreateDefaultDisplayNodes()
    display = volume.GetDisplayNode()
    display.SetAutoWindowLevel(0)
    display.SetWindowLevel(800, 1300)
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
    return (values >= lower) & (values <= upper), values


def test_preview_ticks_in_three_views_with_selected_segment(editor):
    host, effect, array, volume, segmentation, segmentID = editor
    host.activate()
    effect.thresholdSlider.setMinimumValue(1350)
    effect.thresholdSlider.setMaximumValue(float(array.max()))
    assert host.effect.doubleParameter("MinimumThreshold") == 1350
    _tick(effect, 3)
    host.effect.updateGUIFromMRML()
    check_histogram(effect.histogramView, array, 1350, float(array.max()), (0.2, 0.9, 0.3))
    layout = slicer.app.layoutManager()
    assert {w.mrmlSliceNode().GetName() for w in effect.previewPipelines} == {"Red", "Yellow", "Green"}
    for sliceWidget, pipeline in effect.previewPipelines.items():
        assert pipeline.actor.GetVisibility(), sliceWidget.mrmlSliceNode().GetName()
        expected, _ = _expected_mask(sliceWidget, 1350, float(array.max()))
        assert expected.any()
        got = pipeline.preview.mask
        assert got.shape == expected.shape
        assert np.array_equal(got, expected), sliceWidget.mrmlSliceNode().GetName()
        rgba = pipeline.preview.rgba
        color = np.round(255 * np.array([0.2, 0.9, 0.3])).astype(int)   # the segment's colour
        assert np.array_equal(rgba[expected][0, :3], color)
        assert (rgba[~expected][:, 3] == 0).all()
    _save_views("effect_preview_views")
    screenshot(host.effect.optionsFrame(), "effect_options")


def _save_views(name):
    """Testing/screenshots/<name>.png: the Red, Yellow and Green views side by side."""
    import os
    from PIL import Image
    from gui.conftest import SCREENSHOTS
    images = slicer.app.layoutManager().renderAll()
    os.makedirs(SCREENSHOTS, exist_ok=True)
    Image.fromarray(np.concatenate([images[n] for n in ("Red", "Yellow", "Green")], axis=1)).save(
        os.path.join(SCREENSHOTS, name + ".png"))


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


def _click(button):
    from PySide6 import QtCore, QtTest
    QtTest.QTest.mouseClick(button, QtCore.Qt.MouseButton.LeftButton)
    process_events()


def _choose(combo, data):
    """Pick an item as the user does: the current index changes, then activated(int) fires."""
    index = combo.findData(data)
    assert index >= 0, data
    combo.setCurrentIndex(index)
    combo.activated.emit(index)
    process_events()


def _stored(value):
    """What the editor node holds for a double parameter (QString::number: 6 significant digits)."""
    return float(f"{value:.6g}")


def test_presets_and_every_automatic_method(editor):
    from MedSegCore.threshold import autothreshold, engine, presets
    host, effect, array, volume, segmentation, segmentID = editor
    host.activate()
    e = host.effect
    _choose(effect.presetComboBox, "ct-bone")
    lo, hi = presets.preset_range("ct-bone", array)
    assert (e.doubleParameter("MinimumThreshold"), e.doubleParameter("MaximumThreshold")) == (_stored(lo), _stored(hi))
    # ctkRangeWidget clamps to its range (the volume's): the slider shows the part of the preset inside it
    assert (effect.thresholdSlider.minimumValue, effect.thresholdSlider.maximumValue) == (max(_stored(lo), array.min()),
                                                                                         min(_stored(hi), array.max()))
    assert len(autothreshold.METHODS) == 11
    for method in autothreshold.METHODS:
        _choose(effect.methodComboBox, method)
        assert not effect.classesSpinBox.enabled
        _click(effect.autoButton)
        lo, hi = engine.auto_range(array, method)
        assert e.parameter("AutoThresholdMethod") == method
        assert e.doubleParameter("MinimumThreshold") == _stored(lo), method
        assert e.doubleParameter("MaximumThreshold") == _stored(hi), method


def test_multi_otsu_preview_apply_undo(editor):
    from MedSegCore.threshold import engine
    host, effect, array, volume, segmentation, segmentID = editor
    host.activate()
    _choose(effect.methodComboBox, "multi_otsu")
    assert effect.classesSpinBox.enabled
    effect.classesSpinBox.value = 3
    _click(effect.autoButton)
    ranges = engine.resolve_ranges(array, engine.ThresholdParameters(levels=3))
    assert [(lo, hi) for lo, hi, _c in effect.classRanges] == [(lo, hi) for _n, lo, hi, _c in ranges]
    _tick(effect, 2)
    for sliceWidget, pipeline in effect.previewPipelines.items():
        layer = sliceWidget.sliceLogic().GetBackgroundLayer().GetReslice().GetOutput()
        from vtk.util import numpy_support
        w, h, _ = layer.GetDimensions()
        values = numpy_support.vtk_to_numpy(layer.GetPointData().GetScalars()).reshape(h, w)
        rgba = pipeline.preview.rgba
        for lo, hi, color in effect.classRanges:
            expected = (values >= lo) & (values <= hi)
            if expected.any():
                got = np.unique(rgba[expected][:, :3], axis=0)
                assert got.shape[0] == 1 and np.array_equal(got[0], np.round(255 * np.asarray(color[:3])))
    _save_views("effect_preview_multi_otsu")
    _click(effect.applyButton)
    names = nodes.segment_names(segmentation)
    assert len(names) == 4                                   # "Bright" (untouched) + 3 classes
    total = sum(nodes.segment_array(segmentation, nodes.segment_id_by_name(segmentation, n), volume).astype(int)
                for n in names[1:])
    assert (total == 1).all()                                # the classes partition the volume
    host.undo()
    assert nodes.segment_names(segmentation) == ["Bright"]


def test_apply_undo_current_slice_and_deactivate(editor):
    host, effect, array, volume, segmentation, segmentID = editor
    host.activate()
    _tick(effect)
    effect.thresholdSlider.setValues(1350, float(array.max()))
    _click(effect.applyButton)
    got = nodes.segment_array(segmentation, segmentID, volume)
    assert np.array_equal(got, array >= 1350)
    assert f"{int((array >= 1350).sum())} voxels" in effect.resultLabel.text
    host.undo()
    assert not nodes.segment_array(segmentation, segmentID, volume).any()

    # current slice of the Red (axial) view: slice k = 5 (origin -16 mm, 2 mm slices)
    red = slicer.app.layoutManager().sliceWidget("Red")
    red.mrmlSliceNode().SetSliceOffset(-16 + 2 * 5)
    _choose(effect.scopeComboBox, "slice")
    assert effect.sliceViewComboBox.enabled and effect.sliceViewComboBox.currentText == "Red"
    _click(effect.applyButton)
    expected = np.zeros_like(array, bool)
    expected[5] = array[5] >= 1350
    assert np.array_equal(nodes.segment_array(segmentation, segmentID, volume), expected)

    renderers = {w: w.sliceView().renderWindow().GetRenderers().GetFirstRenderer() for w in effect.previewPipelines}
    actors = {w: p.actor for w, p in effect.previewPipelines.items()}
    host.deactivate()
    assert effect.previewPipelines == {} and not effect.timer.isActive()
    for w, renderer in renderers.items():
        assert not renderer.HasViewProp(actors[w])
        manager = w.sliceView().displayableManagerByClassName("vtkMRMLSegmentationsDisplayableManager2D")
        assert not manager.GetCustomSegmentRendererTag(segmentation.GetDisplayNode().GetID(), segmentID)
