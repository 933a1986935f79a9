"""Multi-channel bundles in the MedSegDNN panel (issue 13 item 4), on real Qt.

Choosing a bundle shows one labelled volume selector per channel of its metadata channel_def (the
BraTS test bundle: T1c, T1, T2, FLAIR), and none for a one-channel model; the chosen volumes reach
the bundle in channel order: the panel's segments equal the logic's in-process run with the same
volumes in that order voxel for voxel, and MONAI's ConfigWorkflow on the same files; the same
volumes in another order give another result.  A missing channel is one line in the status.
"""
import nibabel as nib
import numpy as np
import pytest
from PySide6 import QtCore, QtTest

import bundle_factory as bf
import slicer
from gui import dialogs
from gui.conftest import process_events, screenshot
from gui.bundle_panel import choose_bundle, file_volume_node, labelmap, poll_until, volume_rows
from MedSegCore.dnn.bundle import input_channel_names

CHANNELS = ["T1c", "T1", "T2", "FLAIR"]


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSEG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MEDSEG_TRUST_BUNDLES", "1")            # trust is test_gui_dnn_bundle_trust's subject


def _labels(rows):
    return [text for text, _combo in rows]


def _run(widget, ui, volume, values):
    with dialogs.no_dialog():
        dialogs.click(ui.applyButton)
        assert widget._run is not None, ui.statusLabel.text
        poll_until(widget, lambda: widget._run is None)
    assert "Done in" in ui.statusLabel.text, ui.statusLabel.text
    return labelmap(widget._parameterNode.outputSegmentation, volume, values)


@pytest.fixture
def brats_scene(module_panel, tmp_path):
    """The BraTS and spleen test bundles, four MR volumes (files and nodes), the panel shown."""
    brats = bf.write_bundle(tmp_path / "bundles", "brats", seed=5)
    spleen = bf.write_bundle(tmp_path / "bundles", "spleen", seed=3)
    assert input_channel_names(brats) == CHANNELS
    geometry = bf.lps_oblique_geometry()
    files = [file_volume_node(bf.test_volume(geometry, seed=c, offset=1100), geometry, tmp_path, name)
             for c, name in enumerate(CHANNELS)]
    panel = module_panel("MedSegDNN")
    panel.show()
    panel.widget().ui.backendComboBox.currentText = "torch"
    return brats, spleen, [f[0] for f in files], [f[1] for f in files], panel


def _choose_brats(panel, ui, brats, volumes):
    """Choose the bundle; its selectors, the first the input volume selector; fill all but FLAIR."""
    choose_bundle(ui, brats)
    rows = volume_rows(panel, ui)
    assert _labels(rows) == [f"{name}:" for name in CHANNELS] and rows[0][1] is ui.inputVolumeSelector
    combos = [combo for _text, combo in rows]
    for combo, volume in zip(combos[:3], volumes[:3]):
        combo.setCurrentNode(volume)
    return combos


def test_channel_selectors_follow_the_model(brats_scene):
    brats, spleen, _paths, volumes, panel = brats_scene
    ui = panel.widget().ui
    assert _labels(volume_rows(panel, ui)) == ["Input volume:"]
    combos = _choose_brats(panel, ui, brats, volumes)
    screenshot(panel, "dnn_panel_bundle_channels")
    # pressing Enter in the path field again keeps the selectors and the choices made
    QtTest.QTest.keyClick(ui.modelPathLineEdit, QtCore.Qt.Key.Key_Return)
    process_events()
    assert [c for _t, c in volume_rows(panel, ui)] == combos
    assert [c.currentNode() for c in combos[:3]] == volumes[:3]
    # a one-channel bundle, and the default model: one selector, "Input volume:"
    choose_bundle(ui, spleen)
    assert _labels(volume_rows(panel, ui)) == ["Input volume:"]
    choose_bundle(ui, brats)
    assert _labels(volume_rows(panel, ui)) == [f"{name}:" for name in CHANNELS]
    ui.modelSourceComboBox.currentIndex = ui.modelSourceComboBox.findText("default")
    assert _labels(volume_rows(panel, ui)) == ["Input volume:"]


def test_missing_channel_is_one_status_line(brats_scene):
    brats, _spleen, _paths, volumes, panel = brats_scene
    widget, ui = panel.widget(), panel.widget().ui
    _choose_brats(panel, ui, brats, volumes)
    with dialogs.no_dialog():
        dialogs.click(ui.applyButton)
    assert widget._run is None and ui.applyButton.enabled
    assert ui.statusLabel.text.startswith("Not run: ") and "FLAIR" in ui.statusLabel.text
    assert "\n" not in ui.statusLabel.text
    assert slicer.mrmlScene.GetNodesByClass("vtkMRMLSegmentationNode").GetNumberOfItems() == 0


def test_volumes_reach_the_bundle_in_channel_order(brats_scene, tmp_path):
    brats, _spleen, paths, volumes, panel = brats_scene
    widget, ui = panel.widget(), panel.widget().ui
    combos = _choose_brats(panel, ui, brats, volumes)
    combos[3].setCurrentNode(volumes[3])

    # the panel's run equals the logic's with the volumes in channel order, and MONAI's ConfigWorkflow
    options = widget.logic.optionsFromNode(widget._parameterNode)
    reference_node, prediction = widget.logic.segment(volumes, brats, options)
    slicer.mrmlScene.RemoveNode(reference_node)
    values = {lab.name: lab.value for lab in prediction.labels}
    assert sorted(values.values()) == [1, 2, 4]
    got = _run(widget, ui, volumes[0], values)
    assert np.array_equal(got, prediction.labelmap)
    monai = np.asarray(nib.load(bf.run_monai(brats, paths, str(tmp_path / "monai"), "brats")).dataobj)
    assert np.mean(monai.transpose(2, 1, 0) == got) >= 0.9999
    assert set(np.unique(got)) == {0, 1, 2, 4}

    # T1c and FLAIR swapped: another result (so the order is what the test checks)
    combos[0].setCurrentNode(volumes[3])
    combos[3].setCurrentNode(volumes[0])
    swapped = _run(widget, ui, volumes[0], values)
    assert np.mean(swapped != got) > 0.01
