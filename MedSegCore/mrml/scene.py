"""A Slicer MRML scene with the module logics MedSeg needs, for use outside the Slicer application.

Inside Slicer, :func:`ensure_scene` returns the application's scene and does nothing else.  Outside
(the ``medseg`` command line, the test suite) it builds what Slicer's application would, from the
real classes of the ``slicer-core`` wheel: a ``vtkMRMLScene``, a ``vtkSlicerApplicationLogic``
and the Colors, Volumes and Segmentations module logics, reachable as
``slicer.mrmlScene`` and ``slicer.modules.<name>.logic()``.  Nothing here replaces MRML.
"""
from __future__ import annotations

import types


class _LoadedModule:
    """What ``slicer.modules.<name>`` offers for a loadable module: its name and its logic."""

    def __init__(self, name: str, logic):
        self.name = name
        self._logic = logic

    def logic(self):
        return self._logic


def _new_logic(slicer, cls, app, scene):
    logic = cls()
    logic.SetMRMLApplicationLogic(app)
    logic.SetMRMLScene(scene)
    return logic


def ensure_scene():
    """Return ``slicer.mrmlScene``, creating a headless scene and module logics if there is none."""
    import slicer

    if getattr(slicer, "mrmlScene", None) is not None:
        return slicer.mrmlScene
    scene = slicer.vtkMRMLScene()
    app = slicer.vtkSlicerApplicationLogic()
    app.SetMRMLScene(scene)
    modules = getattr(slicer, "modules", None) or types.SimpleNamespace()

    # The application's own colour logic, with Slicer's default colour tables (GenericColors ...).
    colors = app.GetColorLogic()
    colors.SetMRMLScene(scene)
    colors.AddDefaultColorNodes()
    app.SetModuleLogic("Colors", colors)
    volumes = _new_logic(slicer, slicer.vtkSlicerVolumesLogic, app, scene)
    app.SetModuleLogic("Volumes", volumes)
    # SetMRMLScene registers the segmentation converter rules (binary labelmap <-> closed surface).
    segmentations = _new_logic(slicer, slicer.vtkSlicerSegmentationsModuleLogic, app, scene)
    app.SetModuleLogic("Segmentations", segmentations)

    modules.colors = _LoadedModule("Colors", colors)
    modules.volumes = _LoadedModule("Volumes", volumes)
    modules.segmentations = _LoadedModule("Segmentations", segmentations)
    slicer.modules = modules
    slicer.mrmlScene = scene
    slicer.applicationLogic = app
    return scene


def clear_scene():
    """Remove all nodes the user added (as File > Close Scene does)."""
    import slicer

    if getattr(slicer, "mrmlScene", None) is not None:
        slicer.mrmlScene.Clear(False)
