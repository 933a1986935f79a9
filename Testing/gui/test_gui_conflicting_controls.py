"""The MedSegThreshold panel disables the controls that would conflict (issue 12, item 7): only the
chosen range source's controls, and one kind of mask, are enabled, on the real .ui with Qt."""
import numpy as np

from gui.conftest import process_events
from MedSegCore.image.geometry import Geometry
from MedSegCore.mrml import nodes


def test_only_the_chosen_source_and_one_mask_kind_are_enabled(module_panel, no_slot_errors):
    nodes.add_volume_node(np.zeros((4, 5, 6), np.int16), Geometry((6, 5, 4), (1, 1, 1), (0, 0, 0), np.eye(3)), "ct")
    panel = module_panel("MedSegThreshold")
    ui = panel.widget().ui
    expected = {"range": {"lowerSpinBox", "upperSpinBox"}, "preset": {"presetComboBox"},
                "method": {"methodComboBox"}, "levels": {"levelsSpinBox"}}
    sources = ("lowerSpinBox", "upperSpinBox", "presetComboBox", "methodComboBox", "levelsSpinBox")
    for index in range(ui.rangeSourceComboBox.count):
        ui.rangeSourceComboBox.currentIndex = index
        process_events()
        on = {name for name in sources if getattr(ui, name).enabled}
        assert on == expected[ui.rangeSourceComboBox.itemText(index)]
    assert ui.maskFileLineEdit.enabled and ui.maskSegmentationSelector.enabled
    assert not ui.maskSegmentNameLineEdit.enabled             # no segmentation chosen: no segment to name
    ui.maskFileLineEdit.text = "/data/mask.nii.gz"
    process_events()
    assert not ui.maskSegmentationSelector.enabled and not ui.maskSegmentNameLineEdit.enabled
    ui.maskFileLineEdit.text = ""
    mask = nodes.new_segmentation_node("mask", nodes.geometry_of(panel.widget()._parameterNode.inputVolume))
    ui.maskSegmentationSelector.setCurrentNode(mask)
    process_events()
    assert not ui.maskFileLineEdit.enabled and ui.maskSegmentNameLineEdit.enabled
