"""The "MedSeg Threshold" Segment Editor effect (SegmentEditorEffect.py) and its registration.

Slicer loads the effect from its source file (``setPythonSource``), so importing this package needs
neither Qt nor Slicer's SegmentEditorEffects; only :func:`registerEffect` does, inside Slicer.
"""
import os

EFFECT_NAME = "MedSeg Threshold"
EFFECT_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "SegmentEditorEffect.py")


def registerEffect():
    """Register the effect with the Segment Editor, as Slicer's scripted effect template does
    (call it on ``slicer.app`` ``startupCompleted()``)."""
    import qSlicerSegmentationsEditorEffectsPythonQt as effects

    instance = effects.qSlicerSegmentEditorScriptedEffect(None)
    instance.setPythonSource(EFFECT_SOURCE.replace("\\", "/"))
    instance.self().register()
