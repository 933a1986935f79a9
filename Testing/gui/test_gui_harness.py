"""The harness keeps PythonQt's, Qt's and Slicer's rules (so module code that breaks them fails
here as it would in Slicer): each test states one rule and the source it comes from."""
import pytest
from PySide6 import QtCore

import slicer
from gui import pythonqt
from MedSegCore.image.geometry import Geometry
from MedSegCore.mrml import nodes


def test_properties_are_attributes_and_unknown_attributes_fail():
    import qt
    label = qt.QLabel()
    label.text = "hello"                        # PythonQtInstanceWrapper_setattro: property write
    assert label.text == "hello" and label.name == "" and isinstance(label.enabled, bool)
    label.name = "status"                       # PythonQtClassInfo: "name" is objectName
    assert label.objectName == "status" and QtCore.QObject.objectName(label) == "status"
    with pytest.raises(AttributeError, match="creating new attributes on C\\+\\+ objects is not allowed"):
        label.txt = "typo"
    spin = qt.QSpinBox()
    with pytest.raises(AttributeError, match="does not accept"):
        spin.value = "three"
    with pytest.raises(AttributeError, match="can not be overwritten"):
        spin.valueChanged = None
    combo = qt.QComboBox()
    combo.setProperty("SlicerParameterName", "x")
    assert combo.SlicerParameterName == "x"     # dynamic properties are attributes too


def test_slots_receive_as_many_arguments_as_they_take(no_slot_errors):
    import qt
    box = qt.QCheckBox()
    got = []
    box.connect("toggled(bool)", lambda: got.append("none"))
    box.connect("toggled(bool)", lambda checked: got.append(checked))
    box.connect("toggled(bool)", lambda *args: got.append(args))
    box.checked = True
    assert got == ["none", True, (True,)]       # PythonQtSignalTarget::call
    assert box.connect("noSuchSignal()", print) is False
    assert len(no_slot_errors) == 1 and "does not exist" in str(no_slot_errors[0][1])
    no_slot_errors.clear()
    assert box.disconnect("toggled(bool)") and not box.disconnect("toggled(bool)")


def test_an_exception_inside_a_slot_is_recorded_and_qt_goes_on(no_slot_errors):
    import qt
    button = qt.QPushButton()
    after = []

    def broken():
        raise ZeroDivisionError("inside a slot")

    button.connect("clicked()", broken)
    button.clicked.connect(lambda: after.append(1))
    button.click()
    assert after == [1]
    assert [type(e) for _w, e, _t in no_slot_errors] == [ZeroDivisionError]
    no_slot_errors.clear()


def test_ui_file_loads_through_qt_loader_with_the_stand_in_widgets():
    import os
    import qt
    messages = []
    previous = QtCore.qInstallMessageHandler(lambda kind, context, text: messages.append(text))
    try:
        from slicer_harness import MODULE_DIRS
        widget = slicer.util.loadUI(os.path.join(MODULE_DIRS["MedSegThreshold"], "Resources", "UI", "MedSegThreshold.ui"))
    finally:
        QtCore.qInstallMessageHandler(previous)
    assert [m for m in messages if "propagateSizeHints" not in m] == []   # Qt's loader warned about nothing
    ui = slicer.util.childWidgetVariables(widget)
    assert type(widget) is slicer.qMRMLWidget and type(ui.applyButton) is qt.QPushButton
    selector = ui.maskSegmentationSelector
    assert type(selector) is slicer.qMRMLNodeComboBox
    assert (selector.nodeTypes, selector.noneEnabled, selector.noneDisplay) == (
        ["vtkMRMLSegmentationNode"], True, "No mask (whole volume)")
    assert selector.mrmlScene() is None and not selector.enabled
    widget.setMRMLScene(slicer.mrmlScene)       # the .ui's connections reach every selector
    assert all(s.mrmlScene() is slicer.mrmlScene and s.enabled
               for s in (ui.inputVolumeSelector, ui.maskSegmentationSelector, ui.outputSegmentationSelector))


def test_node_combo_box_follows_the_scene_as_qmrmlnodecombobox_does():
    import numpy as np
    combo = slicer.qMRMLNodeComboBox()
    combo.nodeTypes = ["vtkMRMLScalarVolumeNode"]
    combo.showChildNodeTypes = False
    combo.noneEnabled = False
    combo.setMRMLScene(slicer.mrmlScene)
    changes = []
    combo.connect("currentNodeChanged(vtkMRMLNode*)", changes.append)
    geometry = Geometry((4, 4, 4), (1, 1, 1), (0, 0, 0), np.eye(3))
    label = nodes.add_volume_node(np.zeros((4, 4, 4), np.uint8), geometry, "labels", labelmap=True)
    assert combo.nodeCount() == 0 and combo.currentNode() is None          # a labelmap is a child class
    first = nodes.add_volume_node(np.zeros((4, 4, 4), np.int16), geometry, "first")
    assert combo.currentNode() is first and changes == [first]             # without None: first node selected
    second = nodes.add_volume_node(np.zeros((4, 4, 4), np.int16), geometry, "second")
    second.SetHideFromEditors(True)
    slicer.mrmlScene.RemoveNode(first)
    assert combo.currentNode() is None and combo.nodeCount() == 0          # hidden nodes are not listed
    combo.showHidden = True
    assert combo.currentNode() is second
    from gui import mrml_widgets
    mrml_widgets.detach_all()
    assert label is not None


def test_parameter_node_wrapper_validates_as_slicer_does():
    from typing import Annotated
    from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper, createGuiConnector
    import qt

    @parameterNodeWrapper
    class Params:
        mode: Annotated[str, Choice(["a", "b"])] = "a"
        count: Annotated[int, WithinRange(1, 3)] = 2
        volume: slicer.vtkMRMLScalarVolumeNode

    node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLScriptedModuleNode")
    p = Params(node)
    assert (node.GetParameter("mode"), node.GetParameter("count"), p.volume) == ("a", "2", None)
    with pytest.raises(ValueError):
        p.mode = "c"
    with pytest.raises(ValueError):
        p.count = 4
    with pytest.raises(TypeError):
        p.count = 2.5
    with pytest.raises(TypeError):
        p.volume = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode")
    with pytest.raises(RuntimeError, match="Unable to create GUI connector"):
        createGuiConnector(qt.QLineEdit(), Params.allParameters["count"])
    combo = qt.QComboBox()
    combo.setProperty("SlicerParameterName", "mode")
    ui = type("ui", (), {})()                    # what slicer.util.childWidgetVariables returns
    ui.combo = combo
    tag = p.connectGui(ui)
    assert [combo.itemText(i) for i in range(combo.count)] == ["a", "b"]
    combo.currentIndex = 1
    assert p.mode == "b"                         # GUI -> node
    p.mode = "a"
    assert combo.currentIndex == 0               # node -> GUI
    p.disconnectGui(tag)
    combo.currentIndex = 1
    assert p.mode == "a"
    assert pythonqt.SLOT_ERRORS == []
