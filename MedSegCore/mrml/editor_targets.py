"""Where the Segment Editor's edits go (Qt-free): the headless ``vtkSlicerSegmentEditorLogic``
route and the live scripted-effect route, and the voxel slice a slice view shows.

* :class:`LogicTarget` - a ``vtkSlicerSegmentEditorLogic`` (Slicer >= 5.10, and the ``slicer-core``
  wheel): the headless route, used by the tests and scripts.  ``SaveStateForUndo()`` / ``Undo()``.
* :class:`EffectTarget` - the live "MedSeg Threshold" effect.  In Slicer 5.10 a scripted effect
  cannot reach the editor widget's ``vtkSlicerSegmentEditorLogic`` (``setSegmentEditorLogic`` is not
  Q_INVOKABLE and there is no getter), so the effect calls ``scriptedEffect.saveStateForUndo()``
  and ``scriptedEffect.modifySelectedSegmentByLabelmap`` / ``modifySegmentByLabelmap``, which the
  C++ base class forwards to that same logic method (qSlicerSegmentEditorAbstractEffect.cxx).

Both offer the same calls: ``source()``, ``edit_mask()``, ``modifier()`` (the editor's cleared
modifier labelmap), ``save_state()`` and ``modify(segment_id, labelmap, mode, extent)``.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError, ParameterError

# ModificationMode<name>: same enum (Set=0, Add, Remove, RemoveAll) in vtkSlicerSegmentEditorLogic.h
# and qSlicerSegmentEditorAbstractEffect.h
_MODE_INDEX = {"Set": 0, "Add": 1, "Remove": 2, "RemoveAll": 3}


def _np4(m) -> np.ndarray:
    if hasattr(m, "GetElement"):
        return np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])
    return np.asarray(m, dtype=float)


def slice_from_plane(image, slice_to_ras, image_to_world=None, tol: float = 1e-3) -> tuple:
    """(axis, index) of the voxel slice of ``image`` (vtkOrientedImageData) that a slice view shows.

    ``slice_to_ras`` is the view's SliceToRAS 4x4 (numpy or vtkMatrix4x4); ``image_to_world``
    defaults to the image's own matrix (pass the segmentation's transformed one if it has a parent
    transform).  The view must be parallel to an IJK plane, otherwise :class:`ParameterError`."""
    import vtk

    m = _np4(slice_to_ras)
    if image_to_world is None:
        image_to_world = vtk.vtkMatrix4x4()
        image.GetImageToWorldMatrix(image_to_world)
    ras_to_ijk = np.linalg.inv(_np4(image_to_world))
    normal = ras_to_ijk[:3, :3] @ m[:3, 2]
    normal /= np.linalg.norm(normal)
    axis = int(np.argmax(np.abs(normal)))
    if abs(abs(normal[axis]) - 1) > tol:
        raise ParameterError("the slice view is oblique to the volume's voxel grid; "
                             "use 'whole volume' or align the view with the volume (reformat)")
    index = int(np.floor((ras_to_ijk @ np.append(m[:3, 3], 1.0))[axis] + 0.5))
    extent = image.GetExtent()
    if not extent[2 * axis] <= index <= extent[2 * axis + 1]:
        raise ParameterError("the slice view shows no slice of the volume")
    return axis, index - extent[2 * axis]


class LogicTarget:
    """Headless route: a configured ``vtkSlicerSegmentEditorLogic``."""

    def __init__(self, logic):
        self.logic = logic

    @property
    def editor_node(self):
        return self.logic.GetSegmentEditorNode()

    @property
    def segmentation_node(self):
        return self.logic.GetSegmentationNode()

    def source(self):
        if not self.logic.UpdateAlignedSourceVolume():
            raise InputError("the segment editor has no source volume (or no segmentation geometry)")
        return self.logic.GetAlignedSourceVolume()

    def edit_mask(self):
        if not self.logic.UpdateMaskLabelmap():
            raise InputError("the editable area could not be computed")
        return self.logic.GetMaskLabelmap()

    def modifier(self):
        return self.logic.GetModifierLabelmap() if self.logic.ResetModifierLabelmapToDefault() else None

    def save_state(self):
        self.logic.SaveStateForUndo()

    def modify(self, segment_id, labelmap, mode, extent=None):
        import slicer

        node = self.segmentation_node
        mode = getattr(slicer.vtkSlicerSegmentEditorLogic, "ModificationMode" + mode)
        self.logic.ModifySegmentByLabelmap(node, segment_id, labelmap, mode,
                                           list(extent) if extent else [0, -1, 0, -1, 0, -1], True, False)


class EffectTarget:
    """Live route: a scripted effect (``qSlicerSegmentEditorScriptedEffect``) inside Slicer."""

    def __init__(self, scripted_effect):
        self.effect = scripted_effect

    @property
    def editor_node(self):
        return self.effect.parameterSetNode()

    @property
    def segmentation_node(self):
        return self.editor_node.GetSegmentationNode()

    def source(self):
        image = self.effect.sourceVolumeImageData()
        if image is None:
            raise InputError("select a source volume in the Segment Editor first")
        return image

    def edit_mask(self):
        mask = self.effect.maskLabelmap()
        if mask is None:
            raise InputError("the editable area could not be computed")
        return mask

    def modifier(self):
        return self.effect.defaultModifierLabelmap()

    def save_state(self):
        self.effect.saveStateForUndo()

    def modify(self, segment_id, labelmap, mode, extent=None):
        import slicer

        effect_class = getattr(slicer, "qSlicerSegmentEditorAbstractEffect", None)
        mode = getattr(effect_class, "ModificationMode" + mode, _MODE_INDEX[mode])
        if extent and segment_id == self.editor_node.GetSelectedSegmentID():
            self.effect.modifySelectedSegmentByLabelmap(labelmap, mode, [int(v) for v in extent])
        else:   # the extent is an optimisation only: the labelmap is empty outside it
            self.effect.modifySegmentByLabelmap(self.segmentation_node, segment_id, labelmap, mode)


def editor_logic(segmentation_node, source_volume_node, editor_node=None):
    """A ``vtkSlicerSegmentEditorLogic`` on ``slicer.mrmlScene`` editing ``segmentation_node`` with
    ``source_volume_node`` (a new ``vtkMRMLSegmentEditorNode`` unless ``editor_node`` is given)."""
    import slicer

    from .scene import ensure_scene

    scene = ensure_scene()
    if editor_node is None:
        editor_node = scene.AddNewNodeByClass("vtkMRMLSegmentEditorNode")
    logic = slicer.vtkSlicerSegmentEditorLogic()
    logic.SetMRMLScene(scene)
    app_logic = getattr(slicer, "applicationLogic", None) or getattr(getattr(slicer, "app", None), "applicationLogic", None)
    if callable(app_logic):
        app_logic = app_logic()
    if app_logic is not None:
        logic.SetMRMLApplicationLogic(app_logic)
    logic.SetSegmentEditorNode(editor_node)
    logic.SetSegmentationNode(segmentation_node)
    logic.SetSourceVolumeNode(source_volume_node)
    if not logic.CanTriviallyConvertSourceRepresentationToBinaryLabelMap():
        raise InputError(f"segmentation '{segmentation_node.GetName()}' is not stored as a binary labelmap; "
                         "convert it in the Segment Editor first")
    logic.TrivialSetSourceRepresentationToBinaryLabelmap()
    if not logic.UpdateReferenceGeometryImage():
        raise InputError("the segmentation has no reference geometry and no source volume")
    return logic
