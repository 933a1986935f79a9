"""The "MedSeg Threshold" Segment Editor effect (SegmentEditorEffect.py) and its registration.

The package exports the effect class, as Slicer's scripted effect template does
(``from .SegmentEditorEffect import *``): ``qSlicerSegmentEditorScriptedEffect::setPythonSource``
first looks for the class in ``sys.modules["SegmentEditorMedSegThresholdLib"]`` and only when it is
missing imports the file under that name, replacing this package (Reload then fails: EFFECT_SOURCE
is gone).  The export is lazy (module ``__getattr__``), so importing the package needs neither Qt
nor Slicer's SegmentEditorEffects; only the effect class and :func:`registerEffect` do.
"""
import os

EFFECT_NAME = "MedSeg Threshold"
EFFECT_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "SegmentEditorEffect.py")


def __getattr__(name):
    if name == "SegmentEditorEffect":
        from .SegmentEditorEffect import SegmentEditorEffect
        globals()[name] = SegmentEditorEffect   # the import bound the submodule to this name
        return SegmentEditorEffect
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def registerEffect():
    """Register the effect with the Segment Editor, as Slicer's scripted effect template does
    (call it on ``slicer.app`` ``startupCompleted()``)."""
    import qSlicerSegmentationsEditorEffectsPythonQt as effects

    instance = effects.qSlicerSegmentEditorScriptedEffect(None)
    instance.setPythonSource(EFFECT_SOURCE.replace("\\", "/"))
    instance.self().register()
