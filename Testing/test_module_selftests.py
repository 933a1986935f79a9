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
    factory = slicer.qSlicerSegmentEditorEffectFactory.instance()
    factory.effects[:] = []
    slicer.app.startupCompleted.emit()      # the module connected registerEffect to it (real Qt signal)
    assert [e.name for e in factory.effects] == ["MedSeg Threshold"]
    assert MedSegThreshold.EFFECT_SOURCE.endswith("SegmentEditorMedSegThresholdLib/SegmentEditorEffect.py")


def test_medsegdnn_selftest():
    slicer_harness.load_module("MedSegDNN")
    slicer.selfTests["MedSegDNN"]()
