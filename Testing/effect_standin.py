"""Stand-in for qSlicerSegmentEditorScriptedEffect (a Qt class, not available headless): effect
parameters, and the editing calls forwarded to a real vtkSlicerSegmentEditorLogic the way the C++
base class qSlicerSegmentEditorAbstractEffect does in Slicer 5.10
(modifySegmentByLabelmap -> Logic->ModifySegmentByLabelmap(..., perSegment(), bypassMasking))."""
import slicer


def logic_mode(index):
    """C++: static_cast<vtkSlicerSegmentEditorLogic::ModificationMode>(index)."""
    s = slicer.vtkSlicerSegmentEditorLogic
    return [s.ModificationModeSet, s.ModificationModeAdd, s.ModificationModeRemove, s.ModificationModeRemoveAll][index]


class LogicBackedScriptedEffect:
    """What the effect sees of ``scriptedEffect``; ``calls`` records the editing calls made."""

    def __init__(self, logic=None):
        self.name, self.title, self.requireSegments, self.logic, self.params = "", "", True, logic, {}
        self.calls = []

    def setParameterDefault(self, name, value):
        self.params.setdefault(name, str(value))

    def setParameter(self, name, value):
        self.params[name] = str(value)

    def parameter(self, name):
        return self.params.get(name, "")

    def integerParameter(self, name):
        return int(float(self.params.get(name, 0)))

    def doubleParameter(self, name):
        return float(self.params.get(name, 0))

    def parameterSetNode(self):
        return self.logic.GetSegmentEditorNode()

    def sourceVolumeImageData(self):
        return self.logic.GetAlignedSourceVolume() if self.logic.UpdateAlignedSourceVolume() else None

    def maskLabelmap(self):
        return self.logic.GetMaskLabelmap() if self.logic.UpdateMaskLabelmap() else None

    def saveStateForUndo(self):
        self.calls.append("saveStateForUndo")
        self.logic.SaveStateForUndo()

    def modifySegmentByLabelmap(self, node, segment_id, labelmap, mode, bypass=False):
        self.calls.append("modifySegmentByLabelmap")
        self.logic.ModifySegmentByLabelmap(node, segment_id, labelmap, logic_mode(mode), True, bypass)

    def modifySelectedSegmentByLabelmap(self, labelmap, mode, extent=(0, -1, 0, -1, 0, -1), bypass=False):
        self.calls.append("modifySelectedSegmentByLabelmap")
        node = self.parameterSetNode()
        self.logic.ModifySegmentByLabelmap(node.GetSegmentationNode(), node.GetSelectedSegmentID(), labelmap,
                                           logic_mode(mode), list(extent), True, bypass)

    def defaultModifierLabelmap(self):
        """C++: emits updateVolumeSignal -> vtkSlicerSegmentEditorLogic::ResetModifierLabelmapToDefault."""
        return self.logic.GetModifierLabelmap() if self.logic.ResetModifierLabelmapToDefault() else None
