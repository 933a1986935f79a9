"""Every control of both panels that the .ui binds to the parameter node (SlicerParameterName)
writes its parameter when the user changes it, and shows the parameter when the node changes."""
import numpy as np
import pytest

import slicer
from MedSegCore.image.geometry import Geometry
from MedSegCore.mrml import nodes


def _new_node(widget):
    """A new scene node of the selector's type."""
    cls = widget.nodeTypes[0]
    if cls == "vtkMRMLScalarVolumeNode":
        return nodes.add_volume_node(np.zeros((4, 4, 4), np.int16), Geometry((4, 4, 4), (1, 1, 1), (0, 0, 0), np.eye(3)))
    return slicer.mrmlScene.AddNewNodeByClass(cls)


def _change(widget):
    """Change a control as the user would; returns the value the parameter must then hold."""
    kind = type(widget).__name__
    if kind == "QCheckBox":
        widget.checked = not widget.checked
        return widget.checked
    if kind in ("QSpinBox", "QDoubleSpinBox"):
        value = widget.value + widget.singleStep if widget.value + widget.singleStep <= widget.maximum \
            else widget.value - widget.singleStep
        widget.value = value
        return widget.value
    if kind == "QComboBox":
        widget.currentIndex = (widget.currentIndex + 1) % widget.count
        return widget.currentText
    if kind == "QLineEdit":
        widget.text = widget.text + "7"
        return widget.text
    if kind == "qMRMLNodeComboBox":
        node = _new_node(widget)
        widget.setCurrentNode(node)
        return node
    raise AssertionError(f"no way to change a {kind}")


def _shown(widget):
    kind = type(widget).__name__
    return {"QCheckBox": lambda: widget.checked, "QSpinBox": lambda: widget.value,
            "QDoubleSpinBox": lambda: widget.value, "QComboBox": lambda: widget.currentText,
            "QLineEdit": lambda: widget.text, "qMRMLNodeComboBox": lambda: widget.currentNode()}[kind]()


@pytest.mark.parametrize("module", ["MedSegThreshold", "MedSegDNN"])
def test_every_bound_control_writes_and_shows_its_parameter(module_panel, module):
    panel = module_panel(module)
    widget = panel.widget()
    bound = {w.property("SlicerParameterName"): w for w in widget.ui.__dict__.values()
             if w.property("SlicerParameterName")}
    assert len(bound) >= 10
    p = widget._parameterNode
    for name, control in sorted(bound.items()):
        expected = _change(control)
        value = getattr(p, name)
        assert value == expected or (isinstance(value, float) and value == pytest.approx(expected)), name
    for name, control in sorted(bound.items()):   # and back: the node drives the widget
        if type(control).__name__ == "QLineEdit":
            setattr(p, name, "from the node")
            assert _shown(control) == "from the node", name
        elif type(control).__name__ == "qMRMLNodeComboBox" and control.noneEnabled:
            setattr(p, name, None)
            assert _shown(control) is None, name
