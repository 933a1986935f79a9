"""The MedSegDNN panel driven as a user drives it: Apply runs the bundled model in its child
process (polled by the panel's QTimer), Cancel, Undo, Evaluate into a table shown in the
qMRMLTableView, Export CSV, Start/Stop training; close the scene, leave, unload."""
import csv
import os

import numpy as np
from PySide6 import QtCore, QtTest

import slicer
from gui.bundle_panel import poll_until
from gui.conftest import process_events, screenshot
from MedSegCore.image.geometry import Geometry
from MedSegCore.mrml import nodes


def _click(button):
    QtTest.QTest.mouseClick(button, QtCore.Qt.MouseButton.LeftButton)
    process_events()


def _brain():
    """A small T1-like volume: bright 'white matter' block inside darker 'grey matter'."""
    rng = np.random.default_rng(2)
    array = rng.normal(0.35, 0.03, (32, 40, 36)).astype(np.float32)
    array[8:24, 10:30, 9:27] = rng.normal(0.75, 0.03, (16, 20, 18))
    array[:, :, :3] = 0
    geometry = Geometry((36, 40, 32), (1.0, 1.0, 1.0), (-18, -20, -16), np.eye(3))
    return array, geometry, nodes.add_volume_node(array, geometry, "t1")


def test_apply_cancel_undo(module_panel):
    array, geometry, volume = _brain()
    panel = module_panel("MedSegDNN")
    widget, ui = panel.widget(), panel.widget().ui
    p = widget._parameterNode
    assert ui.inputVolumeSelector.currentNode() is volume and p.modelSource == "default"
    assert not ui.cancelButton.enabled
    panel.show()
    assert not ui.modelPathLineEdit.isVisibleTo(panel)            # only for a model from a file
    ui.modelSourceComboBox.currentIndex = 1
    assert ui.modelPathLineEdit.isVisibleTo(panel) and p.modelSource == "file or folder"
    ui.modelSourceComboBox.currentIndex = 0
    ui.swBatchSpinBox.value = 2
    ui.overlapSpinBox.value = 0.25
    assert (p.swBatch, p.overlap) == (2, 0.25)

    # Cancel a run: the scene is not changed
    count = slicer.mrmlScene.GetNumberOfNodes()
    _click(ui.applyButton)
    assert ui.cancelButton.enabled and not ui.applyButton.enabled
    _click(ui.cancelButton)
    assert ui.applyButton.enabled and "Cancelled" in ui.statusLabel.text
    assert slicer.mrmlScene.GetNumberOfNodes() == count

    # Apply: a new segmentation with the model card's segments
    _click(ui.applyButton)
    poll_until(widget, lambda: widget._run is None)
    seg = p.outputSegmentation
    assert seg is not None and ui.outputSegmentationSelector.currentNode() is seg
    names = nodes.segment_names(seg)
    assert len(names) >= 2 and "Done in" in ui.statusLabel.text and ui.progressBar.value == 100
    labelled = sum(nodes.segment_array(seg, nodes.segment_id_by_name(seg, n), volume).astype(int) for n in names)
    assert labelled.max() == 1 and labelled.any()
    screenshot(panel, "dnn_panel_after_run")

    # Undo removes the node this run created
    _click(ui.undoButton)
    assert slicer.mrmlScene.GetNodeByID(seg.GetID()) is None
    assert "undone" in ui.statusLabel.text

    # File > Close Scene during a run cancels it
    _click(ui.applyButton)
    assert widget._run is not None
    slicer.mrmlScene.Clear(False)
    process_events()
    assert widget._run is None and ui.applyButton.enabled and "Cancelled" in ui.statusLabel.text


def test_evaluate_and_export(module_panel, tmp_path, monkeypatch):
    import qt
    array, geometry, volume = _brain()
    truth = np.zeros(array.shape, bool)
    truth[8:24, 10:30, 9:27] = True
    guess = np.zeros(array.shape, bool)
    guess[8:24, 10:30, 12:27] = True
    ref = nodes.new_segmentation_node("truth", volume)
    nodes.write_segment(ref, truth, geometry, "WM")
    pred = nodes.new_segmentation_node("guess", volume)
    nodes.write_segment(pred, guess, geometry, "WM")
    panel = module_panel("MedSegDNN")
    widget, ui = panel.widget(), panel.widget().ui
    ui.referenceSegmentationSelector.setCurrentNode(ref)
    ui.predictedSegmentationSelector.setCurrentNode(pred)
    ui.createDisagreementCheckBox.checked = False
    _click(ui.evaluateButton)
    table = widget._parameterNode.metricsTable
    assert table is not None and ui.metricsTableView.mrmlTableNode() is table
    model = ui.metricsTableView.model()
    headers = [model.headerData(c, QtCore.Qt.Orientation.Horizontal) for c in range(model.columnCount())]
    dice = 2 * (truth & guess).sum() / (truth.sum() + guess.sum())
    row = {h: model.item(0, c).text() for c, h in enumerate(headers)}
    assert abs(float(row[next(h for h in headers if h.lower().startswith("dice"))]) - dice) < 1e-5
    path = str(tmp_path / "metrics.csv")
    # the user's choice in the modal dialog (PythonQt returns the path itself)
    monkeypatch.setattr(qt.QFileDialog, "getSaveFileName", staticmethod(lambda *args: path))
    _click(ui.exportCsvButton)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and set(headers) <= set(rows[0])
    screenshot(panel, "dnn_panel_evaluation")


def test_start_stop_training_close_scene(module_panel, tmp_path):
    array, geometry, volume = _brain()
    labels = np.zeros(array.shape, bool)
    labels[8:24, 10:30, 9:27] = True
    seg = nodes.new_segmentation_node("case", volume)
    nodes.write_segment(seg, labels, geometry, "WM")
    nodes.write_segment(seg, (array > 0.2) & ~labels, geometry, "GM")
    panel = module_panel("MedSegDNN")
    widget, ui = panel.widget(), panel.widget().ui
    ui.trainingSegmentationsSelector.setCheckState(seg, QtCore.Qt.CheckState.Checked)
    assert ui.trainingSegmentationsSelector.checkedNodes() == [seg]
    ui.trainEpochsSpinBox.value = 1
    output = str(tmp_path / "model")
    ui.trainOutputLineEdit.text = output
    _click(ui.startTrainingButton)
    assert ui.stopTrainingButton.enabled and not ui.startTrainingButton.enabled
    poll_until(widget, lambda: widget._training is None or widget._training.progress > 0)
    _click(ui.stopTrainingButton)
    poll_until(widget, lambda: widget._training is None)
    assert ui.startTrainingButton.enabled and not ui.stopTrainingButton.enabled
    p = widget._parameterNode
    assert (p.modelSource, p.modelPath) == ("file or folder", output)
    assert os.path.isdir(output)
    chart = slicer.mrmlScene.GetNodeByID(slicer.applicationLogic.GetSelectionNode().GetActivePlotChartID())
    assert chart is not None and chart.GetNumberOfPlotSeriesNodes() >= 1        # the learning curve is shown
    slicer.mrmlScene.Clear(False)          # File > Close Scene with the panel shown
    process_events()
    assert widget._parameterNode.modelSource == "default" and ui.inputVolumeSelector.currentNode() is None
