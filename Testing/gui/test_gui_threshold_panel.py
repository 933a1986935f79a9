"""The MedSegThreshold panel driven as a user drives it: the real .ui through Qt's loader, the
parameter-node binding, clicks on Apply; results checked in the scene against numpy."""
import numpy as np
from PySide6 import QtCore, QtTest

import slicer
from gui.conftest import check_histogram, process_events, screenshot
from MedSegCore.errors import MedSegError
from MedSegCore.image.geometry import Geometry
from MedSegCore.mrml import nodes
from MedSegCore.threshold import presets


def _ct():
    rng = np.random.default_rng(11)
    array = rng.integers(-1000, 1500, (12, 20, 24)).astype(np.int16)
    geometry = Geometry((24, 20, 12), (0.8, 0.8, 2.0), (-10, 5, 0), np.eye(3))
    return array, geometry, nodes.add_volume_node(array, geometry, "ct")


def _click(button):
    QtTest.QTest.mouseClick(button, QtCore.Qt.MouseButton.LeftButton)
    process_events()


def _segment(segmentation, name, volume):
    return nodes.segment_array(segmentation, nodes.segment_id_by_name(segmentation, name), volume)


def test_panel_apply_every_range_source(module_panel, no_slot_errors):
    array, geometry, volume = _ct()
    panel = module_panel("MedSegThreshold")
    ui, widget = panel.widget().ui, panel.widget()
    p = widget._parameterNode
    assert type(ui.inputVolumeSelector).__name__ == "qMRMLNodeComboBox"
    assert ui.inputVolumeSelector.currentNode() is volume and p.inputVolume is volume   # first volume chosen
    assert [ui.rangeSourceComboBox.itemText(i) for i in range(ui.rangeSourceComboBox.count)] == \
        ["range", "preset", "method", "levels"]
    assert ui.maskSegmentationSelector.currentNode() is None and ui.maskSegmentationSelector.enabled

    # range: the spin boxes write the parameter node; Apply creates a segmentation
    ui.lowerSpinBox.value = 200
    ui.upperSpinBox.value = 700
    ui.segmentNameLineEdit.text = "Mid"
    assert (p.lower, p.upper, p.segmentName) == (200.0, 700.0, "Mid")
    check_histogram(widget.histogramView, array, 200, 700, (1.0, 1.0, 0.0))
    screenshot(panel, "threshold_panel_range")
    _click(ui.applyButton)
    seg = p.outputSegmentation
    assert seg is not None and ui.outputSegmentationSelector.currentNode() is seg
    expected = (array >= 200) & (array <= 700)
    assert np.array_equal(_segment(seg, "Mid", volume), expected)
    assert f"{int(expected.sum())} voxels" in ui.resultLabel.text

    # invert + replace the same segment
    ui.invertCheckBox.checked = True
    ui.replaceCheckBox.checked = True
    assert p.invert and p.replaceExisting
    _click(ui.applyButton)
    assert np.array_equal(_segment(seg, "Mid", volume), ~expected)
    ui.invertCheckBox.checked = False

    # preset
    ui.rangeSourceComboBox.currentIndex = 1
    ui.presetComboBox.currentIndex = list(presets.PRESETS).index("ct-bone")
    ui.segmentNameLineEdit.text = "Bone"
    assert (p.rangeSource, p.preset) == ("preset", "ct-bone")
    _click(ui.applyButton)
    lo, hi = presets.preset_range("ct-bone", array)
    assert np.array_equal(_segment(seg, "Bone", volume), (array >= lo) & (array <= hi))

    # automatic method: the segment is the range the result line reports
    ui.rangeSourceComboBox.currentIndex = 2
    ui.methodComboBox.currentIndex = [ui.methodComboBox.itemText(i) for i in range(ui.methodComboBox.count)].index("li")
    ui.segmentNameLineEdit.text = ""
    _click(ui.applyButton)
    from MedSegCore.threshold import engine
    lo, hi = engine.auto_range(array, "li")
    name = nodes.segment_names(seg)[-1]
    assert np.array_equal(_segment(seg, name, volume), (array >= lo) & (array <= hi))

    # multi-Otsu: one segment per class, the classes partition the volume
    ui.rangeSourceComboBox.currentIndex = 3
    ui.levelsSpinBox.value = 4
    assert p.levels == 4 and ui.levelsSpinBox.maximum == 5 and ui.levelsSpinBox.minimum == 2
    before = len(nodes.segment_names(seg))
    _click(ui.applyButton)
    names = nodes.segment_names(seg)[before:]
    assert len(names) == 4
    assert sum(_segment(seg, n, volume).astype(int) for n in names).max() == 1
    screenshot(panel, "threshold_panel_levels")


def test_panel_shows_only_the_controls_of_the_range_source(module_panel):
    import MedSegThreshold
    panel = module_panel("MedSegThreshold")
    panel.show()
    ui = panel.widget().ui
    for index, source in enumerate(["range", "preset", "method", "levels"]):
        ui.rangeSourceComboBox.currentIndex = index
        process_events()
        for name, label, sources in MedSegThreshold.RANGE_SOURCE_CONTROLS:
            assert getattr(ui, name).isVisibleTo(panel) == (source in sources), (source, name)
            assert getattr(ui, label).isVisibleTo(panel) == (source in sources), (source, label)
        if source != "range":
            screenshot(panel, f"threshold_panel_{source}")


def test_panel_bad_input_one_clear_error_scene_unchanged(module_panel, no_slot_errors):
    array, geometry, volume = _ct()
    panel = module_panel("MedSegThreshold")
    ui = panel.widget().ui
    ui.lowerSpinBox.value = 900
    ui.upperSpinBox.value = 100
    count = slicer.mrmlScene.GetNumberOfNodes()
    _click(ui.applyButton)
    # slicer.util.tryWithErrorDisplay shows the message, then re-raises inside the slot (Slicer prints it)
    assert len(no_slot_errors) == 1 and isinstance(no_slot_errors[0][1], MedSegError)
    assert "900" in str(no_slot_errors[0][1]) and "100" in str(no_slot_errors[0][1])
    no_slot_errors.clear()
    assert slicer.mrmlScene.GetNumberOfNodes() == count


def test_panel_mask_cleanup_close_scene_exit(module_panel, no_slot_errors):
    array, geometry, volume = _ct()
    roi = np.zeros(array.shape, bool)
    roi[:, :, :12] = True
    mask = nodes.new_segmentation_node("mask", volume)
    nodes.write_segment(mask, roi, geometry, "Left")
    panel = module_panel("MedSegThreshold")
    ui, widget = panel.widget().ui, panel.widget()
    p = widget._parameterNode
    ui.maskSegmentationSelector.setCurrentNode(mask)
    ui.maskSegmentNameLineEdit.text = "Left"
    ui.copyMaskCheckBox.checked = True
    ui.largestComponentCheckBox.checked = True
    ui.fillHolesCheckBox.checked = True
    ui.perSliceCheckBox.checked = True
    ui.minSizeSpinBox.value = 5.0
    assert (p.maskSegmentation, p.maskSegmentName, p.copyMaskAsSegment) == (mask, "Left", True)
    assert (p.largestComponent, p.fillHoles, p.perSlice, p.minSizeMm3) == (True, True, True, 5.0)
    ui.largestComponentCheckBox.checked = False
    ui.fillHolesCheckBox.checked = False
    ui.minSizeSpinBox.value = 0.0
    ui.lowerSpinBox.value = 0
    ui.upperSpinBox.value = 1500
    _click(ui.applyButton)
    seg = p.outputSegmentation
    assert np.array_equal(_segment(seg, "Mask", volume), roi)
    written = _segment(seg, nodes.segment_names(seg)[0], volume)
    assert np.array_equal(written, (array >= 0) & roi)

    # the parameter node drives the widgets too
    p.lower = -50.0
    assert ui.lowerSpinBox.value == -50.0
    # File > Close Scene with the panel shown: a fresh parameter node, inputs cleared
    slicer.mrmlScene.Clear(False)
    process_events()
    p2 = widget._parameterNode
    assert p2.inputVolume is None and ui.inputVolumeSelector.currentNode() is None
    assert ui.lowerSpinBox.value == 0.0 and p2.lower == 0.0
    # leaving the module disconnects the panel from the parameter node
    panel.exit()
    p2.lower = 42.0
    assert ui.lowerSpinBox.value == 0.0
    panel.enter()
    assert ui.lowerSpinBox.value == 42.0
