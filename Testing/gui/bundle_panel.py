"""Driving the MedSegDNN panel with a MONAI bundle folder, as a user does: choose "file or folder",
type the folder and press Enter, pick volumes, click Apply inside the event loop (gui.dialogs)."""
import os
import time

import numpy as np
from PySide6 import QtCore, QtTest, QtWidgets

import slicer
from gui.conftest import process_events
from MedSegCore.image import io
from MedSegCore.mrml import nodes


def choose_bundle(ui, folder):
    """Model: file or folder; type ``folder`` into the path field and press Enter."""
    ui.modelSourceComboBox.currentIndex = ui.modelSourceComboBox.findText("file or folder")
    ui.modelPathLineEdit.clear()
    QtTest.QTest.keyClicks(ui.modelPathLineEdit, str(folder))
    QtTest.QTest.keyClick(ui.modelPathLineEdit, QtCore.Qt.Key.Key_Return)
    process_events()


def volume_rows(panel, ui):
    """[(label text, combo)] of the volume selectors the inputs section shows, top to bottom."""
    rows = []
    for combo in ui.inputsCollapsibleButton.findChildren(slicer.qMRMLNodeComboBox):
        if combo.nodeTypes != ["vtkMRMLScalarVolumeNode"] or not combo.isVisibleTo(panel):
            continue
        form = combo.parentWidget().layout()
        label = form.labelForField(combo) if isinstance(form, QtWidgets.QFormLayout) else None
        y = combo.mapTo(panel, QtCore.QPoint(0, 0)).y()
        shown = label is not None and QtWidgets.QWidget.isVisibleTo(label, panel)
        rows.append((y, QtWidgets.QLabel.text(label) if shown else "", combo))
    return [(text, combo) for _y, text, combo in sorted(rows, key=lambda r: r[0])]


def poll_until(widget, done, limit_s=300):
    """Let the panel's timer slot poll the child process until ``done()``."""
    start = time.monotonic()
    while not done():
        widget._timer.timeout.emit()
        process_events()
        time.sleep(0.05)
        assert time.monotonic() - start < limit_s, "the child process did not finish"


def file_volume_node(array, geometry, folder, name):
    """Write a NIfTI file (for MONAI's ConfigWorkflow) and load it as a volume node, as a user would."""
    path = os.path.join(str(folder), f"{name}.nii.gz")
    io.write_volume(array, geometry, path)
    return path, nodes.read_volume_node(path, name)


def labelmap(segmentation, volume, values):
    """KJI label map of the segmentation on ``volume``'s grid; ``values``: {segment name: label value}."""
    out = np.zeros(slicer.util.arrayFromVolume(volume).shape, np.uint16)
    for name, mask in nodes.segment_arrays(segmentation, volume).items():
        assert not out[mask].any(), f"segment {name} overlaps another"
        out[mask] = values[name]
    return out
