"""GUI tier: module panels and the Segment Editor effect on real Qt widgets (see app.py).

Every test here fails if any exception was raised inside a Qt slot or a VTK observer during it
(PythonQt and VTK only print those; the user would see a panel that silently did nothing).
"""
import os
import sys

import pytest

from gui import pythonqt as qt

SCREENSHOTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "screenshots")


def _excepthook(exc_type, exc, tb):
    qt.record_error("a callback (sys.excepthook)", exc_type, exc, tb)


@pytest.fixture(autouse=True)
def no_slot_errors():
    """Fail the test on any exception a slot or observer raised; yields the list for tests that
    expect one (they remove what they expected)."""
    del qt.SLOT_ERRORS[:]
    previous, sys.excepthook = sys.excepthook, _excepthook
    yield qt.SLOT_ERRORS
    import slicer
    slicer.mrmlScene.Clear(False)   # File > Close Scene after the panels were left: nothing may still react
    process_events()
    sys.excepthook = previous
    errors, qt.SLOT_ERRORS[:] = list(qt.SLOT_ERRORS), []
    assert not errors, "exceptions inside slots:\n" + "\n".join(text for _w, _e, text in errors)


def process_events():
    from PySide6 import QtWidgets
    QtWidgets.QApplication.processEvents()


def screenshot(widget, name):
    """Write ``Testing/screenshots/<name>.png`` of a widget (shown offscreen) and return its path."""
    os.makedirs(SCREENSHOTS, exist_ok=True)
    widget.show()
    process_events()
    path = os.path.join(SCREENSHOTS, name + ".png")
    assert widget.grab().save(path), path
    return path


@pytest.fixture
def module_panel():
    """Create a module panel as Slicer does (setup, enter); exit and unload it afterwards."""
    import slicer_harness
    from gui import app, mrml_widgets

    panels = []

    def make(name):
        slicer_harness.load_module(name)
        panel = app.ModulePanel(name)
        panel.enter()
        panels.append(panel)
        return panel

    yield make
    for panel in panels:
        if panel.isEntered:
            panel.exit()
        panel.unload()
        panel.deleteLater()
    mrml_widgets.detach_all()
    process_events()


def check_histogram(view, array, lower, upper, color):
    """The view's bars are the volume's counts (numpy on the same bin edges) and the bars inside
    ``lower .. upper`` are drawn in ``color``, the others grey."""
    import numpy as np
    counts = np.histogram(array, bins=view.edges)[0]
    assert np.allclose(view.heights, counts / counts.max())
    image = view.widget.pixmap.toImage()
    w, h = image.width(), image.height()
    step = w / len(view.heights)
    inside = (view.edges[1:] >= lower) & (view.edges[:-1] <= upper)
    assert inside.any() and (~inside).any()
    for i in np.flatnonzero(view.heights > 0.05):
        pixel = image.pixelColor(int(i * step), h - 1)
        rgb = (pixel.red(), pixel.green(), pixel.blue())
        assert rgb == (tuple(int(255 * c) for c in color) if inside[i] else (150, 150, 150)), i
