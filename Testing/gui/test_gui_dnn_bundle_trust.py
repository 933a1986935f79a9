"""The MedSegDNN panel asks before a MONAI bundle's first run (its config is code), on real Qt.

The question is Slicer's real ``slicer.util`` confirmation (a ctkMessageBox, gui/dialogs.py),
answered by clicking its buttons while it is the application's modal widget: "No" runs nothing,
writes nothing and trusts nothing; "Yes" runs the bundle (segments equal to MONAI's own
ConfigWorkflow on the same file) and is remembered by content hash, so a second run asks
nothing; a changed bundle (new content hash) asks again.
"""
import json

import nibabel as nib
import numpy as np
import pytest

import bundle_factory as bf
import slicer
from gui import dialogs
from gui.bundle_panel import choose_bundle, file_volume_node, labelmap, poll_until
from MedSegCore.dnn.bundle import bundle_info, is_trusted
from MedSegCore.dnn.bundle.trust import store_path


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSEG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MEDSEG_TRUST_BUNDLES", raising=False)


def _segmentations():
    return slicer.mrmlScene.GetNodesByClass("vtkMRMLSegmentationNode").GetNumberOfItems()


def _refused(widget, ui, info, box):
    """After "No": the question showed the bundle; nothing ran, was written or was trusted."""
    for part in (info.name, info.version, info.authors, info.sha256):
        assert part in box.text, part
    assert sorted(box.buttons) == ["No", "Yes"] and "MedSeg" in box.title
    assert widget._run is None and ui.applyButton.enabled and _segmentations() == 0
    assert not is_trusted(info)
    assert ui.statusLabel.text.count("\n") == 0 and "not trusted" in ui.statusLabel.text


def test_bundle_trust_dialog(module_panel, tmp_path):
    folder = bf.write_bundle(tmp_path / "bundles", "spleen", seed=11)
    geometry = bf.lps_oblique_geometry()
    path, volume = file_volume_node(bf.test_volume(geometry), geometry, tmp_path, "CT")
    panel = module_panel("MedSegDNN")
    widget, ui = panel.widget(), panel.widget().ui
    panel.show()
    ui.backendComboBox.currentText = "torch"
    choose_bundle(ui, folder)
    assert widget._parameterNode.modelPath == folder and ui.inputVolumeSelector.currentNode() is volume
    info = bundle_info(folder)

    # "No": nothing runs, nothing is written, nothing is trusted
    with dialogs.answer("No") as box:
        dialogs.click(ui.applyButton)
    _refused(widget, ui, info, box)
    assert not store_path().exists()

    # "Yes": the run happens; the segments are MONAI's own
    with dialogs.answer("Yes") as box:
        dialogs.click(ui.applyButton)
    assert info.sha256 in box.text and is_trusted(info)
    assert widget._run is not None
    poll_until(widget, lambda: widget._run is None)
    seg = widget._parameterNode.outputSegmentation
    assert seg is not None and "Done in" in ui.statusLabel.text
    got = labelmap(seg, volume, {"spleen": 1})
    reference = bf.run_monai(folder, path, str(tmp_path / "monai"), "spleen")
    ref = np.asarray(nib.load(reference).dataobj).transpose(2, 1, 0)
    assert 0 < (got == 1).sum() < got.size and np.mean(ref == got) >= 0.9999

    # the second run asks nothing
    with dialogs.no_dialog():
        dialogs.click(ui.applyButton)
        assert widget._run is not None
        poll_until(widget, lambda: widget._run is None)
    assert "Done in" in ui.statusLabel.text
    assert list(json.loads(store_path().read_text())) == [info.sha256]

    # a changed bundle (same name and version, other weights) asks again
    bf.write_bundle(tmp_path / "bundles", "spleen", seed=12)
    changed = bundle_info(folder)
    assert changed.sha256 != info.sha256 and changed.version == info.version
    slicer.mrmlScene.RemoveNode(seg)
    with dialogs.answer("No") as box:
        dialogs.click(ui.applyButton)
    assert info.sha256 not in box.text
    _refused(widget, ui, changed, box)


def test_bundle_changed_while_asked_does_not_run(module_panel, tmp_path):
    """The hash remembered is the hash the user was shown: files replaced while the question is
    open are not trusted, the run refuses them and says so in one status line."""
    folder = bf.write_bundle(tmp_path / "bundles", "spleen", seed=11)
    geometry = bf.lps_oblique_geometry()
    file_volume_node(bf.test_volume(geometry), geometry, tmp_path, "CT")
    panel = module_panel("MedSegDNN")
    widget, ui = panel.widget(), panel.widget().ui
    ui.backendComboBox.currentText = "torch"
    choose_bundle(ui, folder)
    shown = bundle_info(folder)
    with dialogs.answer("Yes", check=lambda box: bf.write_bundle(tmp_path / "bundles", "spleen", seed=13)):
        dialogs.click(ui.applyButton)
    changed = bundle_info(folder)
    assert changed.sha256 != shown.sha256 and is_trusted(shown) and not is_trusted(changed)
    poll_until(widget, lambda: widget._run is None)
    assert ui.statusLabel.text.startswith("Failed: ") and "not been trusted" in ui.statusLabel.text
    assert "\n" not in ui.statusLabel.text and _segmentations() == 0 and ui.applyButton.enabled
