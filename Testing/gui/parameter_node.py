"""``slicer.parameterNodeWrapper``: typed parameter nodes and their GUI binding, with Slicer's rules.

Written from Slicer's Base/Python/slicer/parameterNodeWrapper (wrapper.py, serializers.py,
validators.py, guiConnectors.py); only the types and widgets MedSeg uses are supported, and an
unsupported one raises as Slicer does ("Unable to create serializer/GUI connector ..."):

* Storage (serializers.py): int/float as ``str(value)``, bool as "True"/"False", str as is, a
  node as a node reference with an empty parameter of the same name; missing parameters are
  written with their default when the wrapper is created.  Writes are validated first: ints
  must be int, floats int or float, nodes instances of the annotated class; ``Choice``,
  ``WithinRange``, ``Minimum``, ``Maximum`` (validators.py) raise ValueError.
* GUI (guiConnectors.py): widgets are found by their ``SlicerParameterName`` property; the widget
  type must be exactly one of the connector's classes (``type(widget) in (...)``).  QCheckBox <->
  bool (stateChanged), QSpinBox <-> int (valueChanged; range from WithinRange else the int
  limits), QDoubleSpinBox <-> float (valueChanged; range from WithinRange else -inf..inf),
  QComboBox <-> a Choice (the combo box is refilled with the choices; currentIndexChanged),
  QLineEdit <-> str (textChanged), qMRMLNodeComboBox <-> node (nodeTypes set from the annotation;
  currentNodeChanged).  ``connectGui`` writes the parameter values into the widgets, then every
  widget change writes back (inside NodeModify), and every parameter-node modification updates
  all connected widgets; ``disconnectGui(tag)`` removes both directions.
"""
import typing

import qt
import slicer
import vtk

SlicerParameterNamePropertyName = "SlicerParameterName"


class _Validator:
    def validate(self, value):
        raise NotImplementedError


class WithinRange(_Validator):
    def __init__(self, minimum, maximum):
        self.minimum, self.maximum = minimum, maximum

    def validate(self, value):
        if not self.minimum <= value <= self.maximum:
            raise ValueError(f"Value must be within range [{self.minimum}, {self.maximum}], is {value}")


class Minimum(_Validator):
    def __init__(self, minimum):
        self.minimum = minimum

    def validate(self, value):
        if value < self.minimum:
            raise ValueError(f"Value must be greater than {self.minimum}, is {value}")


class Maximum(_Validator):
    def __init__(self, maximum):
        self.maximum = maximum

    def validate(self, value):
        if value > self.maximum:
            raise ValueError(f"Value must be less than {self.maximum}, is {value}")


class Choice(_Validator):
    def __init__(self, choices):
        self.choices = list(choices)

    def validate(self, value):
        if value not in self.choices:
            raise ValueError(f"Value is {value}, but must be in one of the following: {self.choices}")


class Default:
    def __init__(self, value):
        self.value = value


class _Serializer:
    """One typed parameter stored on a vtkMRMLScriptedModuleNode (serializers.py)."""

    def __init__(self, name, datatype, annotations):
        self.name, self.type = name, datatype
        self.validators = [a for a in annotations if isinstance(a, _Validator)]
        self.isNode = isinstance(datatype, type) and issubclass(datatype, slicer.vtkMRMLNode)
        if not (self.isNode or datatype in (int, float, bool, str)):
            raise Exception(f"Unable to create serializer for type: {datatype}")

    def default(self):
        return None if self.isNode else self.type()

    def validate(self, value):
        if self.isNode:
            if value is not None and not isinstance(value, self.type):
                raise TypeError(f"Value must be of type '{self.type}', is type '{type(value)}' value '{value}'")
        elif self.type is bool:
            if not isinstance(value, bool):
                raise TypeError(f"Value must be of type '{bool}', is type '{type(value)}' value '{value}'")
        elif not isinstance(value, (int, float) if self.type is float else self.type) or value is None:
            raise TypeError(f"Value must be of type '{self.type}', is type '{type(value)}' value '{value}'")
        for validator in self.validators:
            validator.validate(value)

    def write(self, node, value):
        self.validate(value)
        if self.isNode:
            node.SetParameter(self.name, "")
            node.SetNodeReferenceID(self.name, value.GetID() if value is not None else None)
        elif self.type is bool:
            node.SetParameter(self.name, "True" if value else "False")
        else:
            node.SetParameter(self.name, str(value))

    def read(self, node):
        if self.isNode:
            return node.GetNodeReference(self.name)
        text = node.GetParameter(self.name)
        return text == "True" if self.type is bool else self.type(text)


def _split(annotated):
    if typing.get_origin(annotated) is typing.Annotated:
        args = typing.get_args(annotated)
        return args[0], list(args[1:])
    return annotated, []


# --- GUI connectors (guiConnectors.py) ----------------------------------------------------------

class _Connector:
    def __init__(self, widget, serializer, signal):
        self.widget, self.serializer, self.signal, self.callback = widget, serializer, signal, None

    def onChanged(self, callback):
        if self.callback is not None:
            getattr(self.widget, self.signal).disconnect(self._changed)
        self.callback = callback
        if callback is not None:
            getattr(self.widget, self.signal).connect(self._changed)

    def _changed(self):
        if self.callback:
            self.callback()


class _Value(_Connector):
    def __init__(self, widget, serializer, prop, signal):
        super().__init__(widget, serializer, signal)
        self.prop = prop

    def read(self):
        value = getattr(self.widget, self.prop)
        return int(value) if self.serializer.type is int and self.prop == "value" else value

    def write(self, value):
        if getattr(self.widget, self.prop) != value:
            setattr(self.widget, self.prop, value)


class _ComboChoice(_Connector):
    def __init__(self, widget, serializer):
        super().__init__(widget, serializer, "currentIndexChanged")
        choice = next((v for v in serializer.validators if isinstance(v, Choice)), None)
        if choice is None:
            raise RuntimeError("ComboBoxToStringableConnector requires the Choice annotation to be used.")
        self.choices = choice.choices
        widget.clear()
        for c in self.choices:
            widget.addItem(str(c))

    def read(self):
        return self.choices[self.widget.currentIndex]

    def write(self, value):
        if value not in self.choices:
            raise ValueError(f"Unable to find value {value} in choices {self.choices}")
        self.widget.currentIndex = self.choices.index(value)


class _NodeCombo(_Connector):
    def __init__(self, widget, serializer):
        super().__init__(widget, serializer, "currentNodeChanged")
        widget.nodeTypes = [serializer.type.__name__]

    def read(self):
        return self.widget.currentNode()

    def write(self, value):
        self.widget.setCurrentNode(value)


def _range(widget, serializer, integer):
    bounds = next((v for v in serializer.validators if isinstance(v, WithinRange)), None)
    low = next((v.minimum for v in serializer.validators if isinstance(v, Minimum)), None)
    high = next((v.maximum for v in serializer.validators if isinstance(v, Maximum)), None)
    if bounds is not None:
        low, high = bounds.minimum, bounds.maximum
    unbounded = (-(2 ** 31), 2 ** 31 - 1) if integer else (float("-inf"), float("inf"))
    widget.minimum = low if low is not None else unbounded[0]
    widget.maximum = high if high is not None else unbounded[1]


def createGuiConnector(widget, serializer):
    """The connector for exactly this widget class and parameter type, or RuntimeError."""
    kind, t = type(widget), serializer.type
    if kind is qt.QCheckBox and t is bool:
        return _Value(widget, serializer, "checked", "stateChanged")
    if kind is qt.QSpinBox and t is int:
        _range(widget, serializer, True)
        return _Value(widget, serializer, "value", "valueChanged")
    if kind is qt.QDoubleSpinBox and t in (int, float):
        if t is int:
            widget.decimals = 0
        _range(widget, serializer, False)
        return _Value(widget, serializer, "value", "valueChanged")
    if kind is qt.QComboBox and t in (int, float, str, bool):
        return _ComboChoice(widget, serializer)
    if kind is qt.QLineEdit and t is str:
        return _Value(widget, serializer, "text", "textChanged")
    if kind is slicer.qMRMLNodeComboBox and serializer.isNode:
        return _NodeCombo(widget, serializer)
    raise RuntimeError(f"Unable to create GUI connector from datatype '{t}' to widget type '{kind}'.")


# --- the wrapper (wrapper.py) ----------------------------------------------------------------------

def parameterNodeWrapper(classtype=None):
    """Class decorator: typed attributes stored on the wrapped parameter node, GUI binding."""
    if classtype is None:
        return parameterNodeWrapper
    serializers = {}
    for name, annotated in typing.get_type_hints(classtype, include_extras=True).items():
        datatype, annotations = _split(annotated)
        serializer = _Serializer(name, datatype, annotations)
        default = next((a.value for a in annotations if isinstance(a, Default)), serializer.default())
        serializer.defaultValue = classtype.__dict__.get(name, default)
        serializers[name] = serializer
        setattr(classtype, name, property(lambda self, s=serializer: s.read(self.parameterNode),
                                          lambda self, value, s=serializer: s.write(self.parameterNode, value)))
    classtype.allParameters = serializers
    classtype.__init__ = _init
    for method in (_connectGui, _disconnectGui, _getValue, _setValue):
        setattr(classtype, method.__name__[1:], method)
    classtype.StartModify = lambda self: self.parameterNode.StartModify()
    classtype.EndModify = lambda self, wasModifying: self.parameterNode.EndModify(wasModifying)
    classtype.AddObserver = lambda self, event, callback, priority=0.0: self.parameterNode.AddObserver(event, callback, priority)
    classtype.RemoveObserver = lambda self, tag: self.parameterNode.RemoveObserver(tag)
    return classtype


def _init(self, parameterNode):
    self.parameterNode = parameterNode
    self._guis, self._guiTags, self._nextTag, self._updatingGUI = {}, {}, 0, False
    for s in self.allParameters.values():
        if not parameterNode.HasParameter(s.name):
            s.write(parameterNode, s.defaultValue)


def _getValue(self, name):
    return getattr(self, name)


def _setValue(self, name, value):
    setattr(self, name, value)


def _connectGui(self, gui):
    widgets = QtChildren(gui)
    connectors = {}
    for widget in widgets:
        name = widget.property(SlicerParameterNamePropertyName)
        if name:
            if name not in self.allParameters:
                raise ValueError(f"Cannot find a param with the given name: {name}")
            connectors[name] = createGuiConnector(widget, self.allParameters[name])
    tag, self._nextTag = self._nextTag, self._nextTag + 1
    self._guis[tag] = connectors
    for name, connector in connectors.items():
        connector.write(getattr(self, name))
        connector.onChanged(lambda n=name, c=connector: _guiChanged(self, n, c))
    self._guiTags[tag] = self.parameterNode.AddObserver(vtk.vtkCommand.ModifiedEvent, lambda caller, event: _updateGUI(self))
    return tag


def QtChildren(gui):
    """The widgets of a GUI: a widget's children, or the values of a childWidgetVariables object."""
    if getattr(gui, "isWidgetType", lambda: False)():
        return gui.findChildren(qt.QWidget)
    return list(gui.__dict__.values())


def _guiChanged(self, name, connector):
    with slicer.util.NodeModify(self.parameterNode):
        if not self._updatingGUI:
            setattr(self, name, connector.read())


def _updateGUI(self):
    if self._updatingGUI:
        return
    self._updatingGUI = True
    try:
        with slicer.util.NodeModify(self.parameterNode):
            for connectors in self._guis.values():
                for name, connector in connectors.items():
                    connector.write(getattr(self, name))
    finally:
        self._updatingGUI = False


def _disconnectGui(self, tag):
    for connector in self._guis.pop(tag, {}).values():
        connector.onChanged(None)
    if tag in self._guiTags:
        self.parameterNode.RemoveObserver(self._guiTags.pop(tag))
