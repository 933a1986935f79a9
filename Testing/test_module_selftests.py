"""Run each module's own self-test class (the code Slicer's SelfTests module runs) headless."""
import slicer

import slicer_harness


def test_medsegthreshold_selftest():
    module = slicer_harness.load_module("MedSegThreshold")
    assert slicer.selfTests["MedSegThreshold"] == module.runTest
    slicer.selfTests["MedSegThreshold"]()


def test_medsegthreshold_registers_effect_at_startup():
    slicer_harness.load_module("MedSegThreshold")
    import MedSegThreshold
    assert ("startupCompleted()", MedSegThreshold.registerEffect) in slicer.app.connections
    assert MedSegThreshold.EFFECT_SOURCE.endswith("SegmentEditorMedSegThresholdLib/SegmentEditorEffect.py")


def test_medsegdnn_selftest():
    slicer_harness.load_module("MedSegDNN")
    slicer.selfTests["MedSegDNN"]()
