"""The Segment Editor side of a scripted effect, over the real vtkSlicerSegmentEditorLogic.

* ``qSlicerSegmentEditorScriptedEffect`` (Modules/Loadable/Segmentations/EditorEffects/
  qSlicerSegmentEditorScriptedEffect.cxx, qSlicerSegmentEditorAbstractEffect.cxx):
  ``setPythonSource`` imports the file under its folder's name unless that module already has the
  class (the file's base name), replacing the ``sys.modules`` entry, and instantiates it;
  parameters are attributes ``<effect name>.<name>`` of the segment editor node (common ones
  without prefix; a double is stored as ``QString::number`` writes it, 6 significant digits) and
  each change invokes EffectParameterModified; the options frame is a QFrame with a QFormLayout;
  ``modify(Selected)SegmentByLabelmap`` call the logic's ModifySegmentByLabelmap with perSegment;
  ``saveStateForUndo``, ``sourceVolumeImageData``, ``defaultModifierLabelmap``,
  ``maskLabelmap`` go to the logic; ``addActor2D``/``removeActor2D`` use the slice view's renderer.
* ``SegmentEditor`` stands for qMRMLSegmentEditorWidget's effect handling: activating an effect
  calls ``activate`` then ``updateGUIFromMRML``; parameter changes call ``updateGUIFromMRML``;
  a new source volume calls ``sourceVolumeNodeChanged``; ``undo()`` is the logic's Undo.
"""
import importlib.util
import os
import sys

from . import pythonqt as qt
import slicer

from PySide6 import QtWidgets


class qSlicerSegmentEditorAbstractEffect:
    """The enums scripted effects read (qSlicerSegmentEditorAbstractEffect.h)."""

    ModificationModeSet, ModificationModeAdd, ModificationModeRemove, ModificationModeRemoveAll = range(4)
    NotConfirmed, ConfirmedWithoutDialog, ConfirmedWithDialog = range(3)


_LOGIC_MODES = ("ModificationModeSet", "ModificationModeAdd", "ModificationModeRemove", "ModificationModeRemoveAll")


class qSlicerSegmentEditorScriptedEffect(qSlicerSegmentEditorAbstractEffect):
    """The C++ adaptor a scripted effect sees as ``self.scriptedEffect``."""

    def __init__(self, parent=None):
        self.name, self.title, self.perSegment, self.requireSegments = "", "", True, True
        self._python, self._source, self._logic, self._node = None, None, None, None
        self._frame = qt.QFrame()
        self._frame.setLayout(qt.QFormLayout())

    def setPythonSource(self, path):
        if not path.endswith((".py", ".pyc")):
            return False
        moduleName = os.path.basename(os.path.dirname(path))
        className = os.path.splitext(os.path.basename(path))[0]
        className += "" if className.endswith("Effect") else "Effect"
        module = sys.modules.get(moduleName)
        cls = getattr(module, className, None) if module is not None else None
        if cls is None:
            spec = importlib.util.spec_from_file_location(moduleName, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[moduleName] = module
            spec.loader.exec_module(module)
            cls = getattr(sys.modules[moduleName], className, None)
        if cls is None:
            raise RuntimeError(f"qSlicerSegmentEditorScriptedEffect::setPythonSource - Failed to load segment editor "
                               f"scripted effect: class {className} was not found in {path}")
        self._python = cls(self)
        self._source = path
        setattr(slicer, moduleName, self._python)
        return True

    def self(self):
        return self._python

    # --- parameters -------------------------------------------------------------------------
    def parameterSetNode(self):
        return self._node

    def setParameterSetNode(self, node):
        self._node = node

    def _text(self, value):
        if isinstance(value, bool):
            return str(int(value))
        if isinstance(value, float):
            return f"{value:.6g}"
        return str(value)

    def setCommonParameter(self, name, value):
        text = self._text(value)
        old = self._node.GetAttribute(name)
        if (old is None and text == "") or text == old:
            return
        disabled = self._node.GetDisableModifiedEvent()
        self._node.SetDisableModifiedEvent(1)
        self._node.SetAttribute(name, text)
        self._node.SetDisableModifiedEvent(disabled)
        self._node.InvokeCustomModifiedEvent(slicer.vtkMRMLSegmentEditorNode.EffectParameterModified)

    def setParameter(self, name, value):
        self.setCommonParameter(f"{self.name}.{name}", value)

    def parameterDefined(self, name):
        return bool(self._node.GetAttribute(f"{self.name}.{name}"))

    def setParameterDefault(self, name, value):
        if not self.parameterDefined(name):
            self.setParameter(name, value)

    def parameter(self, name):
        value = self._node.GetAttribute(f"{self.name}.{name}")
        value = self._node.GetAttribute(name) if value is None else value
        if value is None:
            raise AssertionError(f"qCritical: Parameter named {name} cannot be found for effect {self.name}")
        return value

    def integerParameter(self, name):
        try:
            return int(self.parameter(name))
        except ValueError:
            raise AssertionError(f"qCritical: Parameter named {name} cannot be converted to integer!") from None

    def doubleParameter(self, name):
        return float(self.parameter(name))

    # --- options frame -----------------------------------------------------------------------
    def optionsFrame(self):
        return self._frame

    def optionsLayout(self):
        return self._frame.layout()

    def addOptionsWidget(self, widget):
        if isinstance(widget, QtWidgets.QLayout):
            self.optionsLayout().addRow(widget)
            return
        widget.setParent(self._frame)
        self.optionsLayout().addRow(widget)

    def addLabeledOptionsWidget(self, label, widget):
        labelWidget = qt.QLabel(label)
        if not isinstance(widget, QtWidgets.QLayout):
            widget.setParent(self._frame)
        self.optionsLayout().addRow(labelWidget, widget)
        return labelWidget

    # --- editing through the logic ---------------------------------------------------------------
    def setSegmentEditorLogic(self, logic):
        self._logic = logic

    def scene(self):
        return slicer.mrmlScene

    def sourceVolumeImageData(self):
        return self._logic.GetAlignedSourceVolume() if self._logic.UpdateAlignedSourceVolume() else None

    def maskLabelmap(self):
        return self._logic.GetMaskLabelmap() if self._logic.UpdateMaskLabelmap() else None

    def defaultModifierLabelmap(self):
        return self._logic.GetModifierLabelmap() if self._logic.ResetModifierLabelmapToDefault() else None

    def saveStateForUndo(self):
        self._logic.SaveStateForUndo()

    def modifySegmentByLabelmap(self, segmentationNode, segmentID, labelmap, mode, *rest):
        extent, bypass = self._extent(rest)
        self._logic.ModifySegmentByLabelmap(segmentationNode, segmentID, labelmap,
                                            getattr(slicer.vtkSlicerSegmentEditorLogic, _LOGIC_MODES[mode]),
                                            extent, self.perSegment, bypass)

    def modifySelectedSegmentByLabelmap(self, labelmap, mode, *rest):
        node = self._node
        self.modifySegmentByLabelmap(node.GetSegmentationNode(), node.GetSelectedSegmentID() or "", labelmap, mode, *rest)

    @staticmethod
    def _extent(rest):
        extent, bypass = [0, -1, 0, -1, 0, -1], False
        for value in rest:
            if isinstance(value, bool):
                bypass = value
            else:
                extent = [int(v) for v in value]
                if len(extent) != 6:
                    raise AssertionError("qCritical: extent must have 6 int values")
        return extent, bypass

    def confirmCurrentSegmentVisible(self):
        segmentation = self._node.GetSegmentationNode() if self._node else None
        segmentID = self._node.GetSelectedSegmentID() if self._node else None
        if segmentation is None or not segmentID:
            return self.ConfirmedWithoutDialog
        display = segmentation.GetDisplayNode()
        if display is not None and display.GetVisibility() and display.GetSegmentVisibility(segmentID):
            return self.ConfirmedWithoutDialog
        raise AssertionError("the effect would show a modal dialog (segment hidden)")

    def segmentationDisplayableInView(self, viewNode):
        return self._logic.IsSegmentationDisplayableInView(viewNode) if self._logic else False

    # --- views ------------------------------------------------------------------------------------
    def renderer(self, viewWidget):
        return viewWidget.sliceView().renderWindow().GetRenderers().GetFirstRenderer()

    def addActor2D(self, viewWidget, actor):
        self.renderer(viewWidget).AddViewProp(actor)
        viewWidget.sliceView().scheduleRender()

    def removeActor2D(self, viewWidget, actor):
        self.renderer(viewWidget).RemoveViewProp(actor)
        viewWidget.sliceView().scheduleRender()

    def updateGUIFromMRML(self):
        self._python.updateGUIFromMRML()


class SegmentEditor:
    """qMRMLSegmentEditorWidget's handling of one scripted effect (activation, GUI updates, undo)."""

    def __init__(self, effect, segmentationNode, sourceVolumeNode):
        self.effect = effect
        self.node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentEditorNode")
        self.logic = slicer.vtkSlicerSegmentEditorLogic()
        self.logic.SetMRMLScene(slicer.mrmlScene)
        self.logic.SetSegmentEditorNode(self.node)
        self.node.SetAndObserveSegmentationNode(segmentationNode)
        self.node.SetAndObserveSourceVolumeNode(sourceVolumeNode)
        self.logic.UpdateReferenceGeometryImage()
        effect.setSegmentEditorLogic(self.logic)
        effect.setParameterSetNode(self.node)
        effect.self().setupOptionsFrame()
        effect.self().setMRMLDefaults()
        self._tag = self.node.AddObserver(slicer.vtkMRMLSegmentEditorNode.EffectParameterModified,
                                          self._onParameterModified)
        self.active = False

    def _onParameterModified(self, caller, event):
        if self.active:
            self.effect.self().updateGUIFromMRML()

    def activate(self):
        self.active = True
        self.effect.self().activate()
        self.effect.self().updateGUIFromMRML()

    def deactivate(self):
        self.effect.self().deactivate()
        self.active = False

    def setSourceVolumeNode(self, volumeNode):
        self.node.SetAndObserveSourceVolumeNode(volumeNode)
        self.effect.self().sourceVolumeNodeChanged()

    def undo(self):
        self.logic.Undo()

    def close(self):
        if self.active:
            self.deactivate()
        self.effect.self().cleanup()
        self.node.RemoveObserver(self._tag)
