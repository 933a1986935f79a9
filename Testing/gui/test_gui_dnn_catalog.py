"""The MedSegDNN panel's "Model catalogue" section driven as a user drives it, on real Qt.

The catalogue ($MEDSEG_CATALOG) and the model zip (the bundled brain-tissue model, zipped as
Testing/test_catalog.py zips its models) come from a loopback HTTP server this test starts;
$MEDSEG_HOME is in tmp_path.  The panel's own QTimer polls the install process while the Qt event
loop keeps running: the test only processes events, as Slicer's main loop would.
"""
import hashlib
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore, QtTest

import slicer
from catalog_helpers import assert_nothing_installed, entry, home, use_catalog, zip_bytes  # noqa: F401
from gui.conftest import process_events, screenshot
from loopback_http import LoopbackServer
from MedSegCore.dnn.loading import DEFAULT_MODEL_DIR
from MedSegCore.mrml import nodes
from gui.test_gui_dnn_panel import _brain

CHUNK = 65536          # the loopback server's write size when it is slowed down


def _click(button):
    QtTest.QTest.mouseClick(button, QtCore.Qt.MouseButton.LeftButton)
    process_events()


def _run_event_loop(done, limit_s=240):
    """Process Qt events (the panel's timer fires on its own) until ``done()``; returns how many
    times a 20 ms heartbeat timer fired meanwhile (it fires only while the event loop is free)."""
    from PySide6 import QtCore as C
    beats = [0]
    heartbeat = C.QTimer()
    heartbeat.setInterval(20)
    heartbeat.timeout.connect(lambda: beats.__setitem__(0, beats[0] + 1))
    heartbeat.start()
    start = time.monotonic()
    try:
        while not done():
            process_events()
            time.sleep(0.01)
            assert time.monotonic() - start < limit_s, "the panel did not finish"
    finally:
        heartbeat.stop()
    return beats[0]


@pytest.fixture
def served(tmp_path, monkeypatch, home):  # noqa: F811 (catalog_helpers' fixture)
    """A loopback server with the bundled model zipped ('brain') and a tampered copy ('brain_tampered':
    the catalogue's sha256 is the real zip's, the server sends it with one byte changed)."""
    folder = Path(DEFAULT_MODEL_DIR)
    data = zip_bytes({f"brain_v1.0/{p.name}": p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()})
    tampered = bytearray(data)
    tampered[len(data) // 2] ^= 0xFF
    with LoopbackServer({"/brain.zip": data, "/tampered.zip": bytes(tampered)}) as srv:
        models = [entry("brain", srv.url("/brain.zip"), data, title="Brain tissue (zipped)", modality="MR", kind="model-card",
                        license="CC-BY-4.0", labels=["background", "CSF", "GM", "WM"][1:]),
                  entry("brain_tampered", srv.url("/tampered.zip"), data, modality="MR", kind="model-card")]
        catalog_json = use_catalog(tmp_path, monkeypatch, *models).read_bytes()
        srv.files["/catalog.json"] = catalog_json
        monkeypatch.setenv("MEDSEG_CATALOG", srv.url("/catalog.json"))
        srv.data = data
        yield srv


def _catalog_panel(module_panel):
    panel = module_panel("MedSegDNN")
    widget = panel.widget()
    panel.show()
    _run_event_loop(lambda: widget._catalogFuture is None)        # rows are read in a thread
    return panel, widget, widget.ui


def _section_screenshot(panel, ui, name):
    """The catalogue section, after the panel took the height its wrapped labels need (Slicer's
    module panel is a scroll area; this test window is not)."""
    process_events()
    panel.adjustSize()
    process_events()
    label = ui.catalogInfoLabel
    assert label.height >= label.heightForWidth(label.width), "the model description is cut off"
    return screenshot(ui.catalogCollapsibleButton, name)


def _items(combo):
    return [combo.itemText(i) for i in range(combo.count)]


def test_catalogue_lists_installs_in_background_cancel_and_apply_by_name(module_panel, served, home):  # noqa: F811
    array, geometry, volume = _brain()
    panel, widget, ui = _catalog_panel(module_panel)
    combo, info = ui.catalogModelComboBox, ui.catalogInfoLabel
    size = f"{len(served.data) / 1e6:.1f} MB"
    items = _items(combo)
    assert [combo.itemData(i) for i in range(combo.count)] == ["brain", "brain_tampered"]
    assert "Brain tissue (zipped) 1.0" in items[0] and "CC-BY-4.0" in items[0] and size in items[0]
    assert "not installed" in items[0]
    assert "Licence: CC-BY-4.0" in info.text and f"Download: {size}" in info.text and "Press Install" in info.text
    assert ui.installModelButton.enabled and not ui.cancelModelInstallButton.enabled
    _section_screenshot(panel, ui, "dnn_panel_catalogue")

    # Install, then Cancel while it downloads: nothing is installed, the panel is ready again
    served.slow["/brain.zip"] = 0.25
    _click(ui.installModelButton)
    assert ui.cancelModelInstallButton.enabled and not ui.installModelButton.enabled
    _run_event_loop(lambda: 0 < ui.modelInstallProgressBar.value)
    assert "Downloading brain" in info.text
    _click(ui.cancelModelInstallButton)
    assert widget._install is None and not ui.cancelModelInstallButton.enabled
    _run_event_loop(lambda: widget._catalogFuture is None)
    assert "Cancelled; nothing was installed" in info.text and ui.installModelButton.enabled
    assert_nothing_installed(home)

    # Install again: progress shown while the event loop keeps running, then the model is selected
    served.slow["/brain.zip"] = 0.05
    seen = set()
    _click(ui.installModelButton)
    beats = _run_event_loop(lambda: seen.add(ui.modelInstallProgressBar.value) or
                            (widget._install is None and widget._catalogFuture is None))
    assert beats > 10, "the GUI was blocked during the install"
    assert any(0 < v < 100 for v in seen), sorted(seen)
    assert ui.modelInstallProgressBar.value == 100 and not ui.cancelModelInstallButton.enabled
    ranges = [rng for path, rng, _sent, _host in served.requests if path == "/brain.zip"]
    assert ranges[0] is None and ranges[-1] and ranges[-1].startswith("bytes="), ranges   # resumed, as the note says
    installed = home / "models" / "brain" / "model"
    assert hashlib.sha256((installed / "model.pt").read_bytes()).digest() == \
        hashlib.sha256((Path(DEFAULT_MODEL_DIR) / "model.pt").read_bytes()).digest()
    assert "installed 1.0" in combo.currentText and combo.currentData == "brain"
    assert "Installed: runs offline." in info.text and not ui.installModelButton.enabled
    p = widget._parameterNode
    assert (p.modelSource, p.catalogModel) == ("catalogue", "brain")
    assert ui.modelSourceComboBox.currentText == "catalogue"

    # Apply runs the installed model by name; the segments equal the bundled model's on the same volume
    _click(ui.applyButton)
    _run_event_loop(lambda: widget._run is None)
    seg = p.outputSegmentation
    assert seg is not None and "Done in" in ui.statusLabel.text
    reference, _ = widget.logic.segment([volume], "default", widget.logic.optionsFromNode(p))
    names = nodes.segment_names(seg)
    assert names == nodes.segment_names(reference) and len(names) >= 2
    for name in names:
        got = nodes.segment_array(seg, nodes.segment_id_by_name(seg, name), volume)
        want = nodes.segment_array(reference, nodes.segment_id_by_name(reference, name), volume)
        assert got.sum() > 0 and np.array_equal(got, want), name
    _section_screenshot(panel, ui, "dnn_panel_catalogue_installed")


def test_tampered_download_is_refused_with_one_line_in_the_panel(module_panel, served, home):  # noqa: F811
    panel, widget, ui = _catalog_panel(module_panel)
    combo = ui.catalogModelComboBox
    combo.setCurrentIndex(1)                                        # the user picks brain_tampered
    process_events()
    assert widget._parameterNode.catalogModel == "brain_tampered"
    _click(ui.installModelButton)
    _run_event_loop(lambda: widget._install is None and widget._catalogFuture is None)
    lines = ui.catalogInfoLabel.text.splitlines()
    errors = [line for line in lines if line.startswith("Installation failed:")]
    assert len(errors) == 1 and "tampered with; refused, nothing installed" in errors[0], lines
    assert hashlib.sha256(served.data).hexdigest() in errors[0]            # the checksum it required
    assert "Traceback" not in ui.catalogInfoLabel.text
    assert combo.currentData == "brain_tampered" and "not installed" in combo.currentText
    assert ui.installModelButton.enabled and not ui.cancelModelInstallButton.enabled
    assert widget._parameterNode.modelSource == "default"          # the selection did not change
    assert_nothing_installed(home)


def test_installed_model_shown_first_runs_when_model_is_catalogue(module_panel, served, home):  # noqa: F811
    """A model installed earlier (here by the CLI's install) is listed first and works offline: the
    user only switches Model to 'catalogue' and presses Apply."""
    from MedSegCore.catalog import install
    install("brain")
    served.files.clear()                                            # offline from now on
    array, geometry, volume = _brain()
    panel, widget, ui = _catalog_panel(module_panel)
    assert "unavailable" in ui.catalogInfoLabel.text and "installed models still work" in ui.catalogInfoLabel.text
    assert [ui.catalogModelComboBox.itemData(i) for i in range(ui.catalogModelComboBox.count)] == ["brain"]
    ui.modelSourceComboBox.currentIndex = ui.modelSourceComboBox.findText("catalogue")
    assert widget._parameterNode.modelSource == "catalogue"
    _click(ui.applyButton)
    _run_event_loop(lambda: widget._run is None)
    seg = widget._parameterNode.outputSegmentation
    assert seg is not None and "Done in" in ui.statusLabel.text, ui.statusLabel.text
    assert all(nodes.segment_array(seg, nodes.segment_id_by_name(seg, n), volume).any()
               for n in nodes.segment_names(seg))
