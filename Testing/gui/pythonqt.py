"""The ``qt`` module as Slicer's PythonQt presents it, built over PySide6 (real Qt 6 widgets).

Where PythonQt differs from PySide, this module follows PythonQt (MeVisLab/pythonqt, src/):

* Qt properties are attributes, and win over methods of the same name (``label.text = "x"``,
  ``button.enabled``); ``name`` is ``objectName``; dynamic properties and named children are
  attributes too (PythonQtClassInfo::member, PythonQtInstanceWrapper_getattro/_setattro).
  Assigning an unknown attribute to a Qt class's own instance is an AttributeError, as is a
  value a property does not accept ("does not accept an object of type ...").
* ``obj.connect('clicked(bool)', f)`` / ``obj.disconnect(...)``, and ``obj.clicked.connect(f)``;
  a Python function receives only as many signal arguments as it has positional parameters
  (PythonQtSignalTarget::call).  VTK pointer types in signatures (``vtkMRMLNode*``) are carried
  as ``PyObject``; this is the one renaming of signatures the harness makes.
* An exception raised inside a slot is printed and the event loop goes on (PythonQt::handleError);
  here it is also recorded in :data:`SLOT_ERRORS`, and the GUI tests fail on any record.
* ``QUiLoader`` is Qt's real loader (QtUiTools); every class it creates is this module's class
  (or a registered CTK/qMRML stand-in), so the module code sees PythonQt semantics throughout.
"""
import inspect
import os
import re
import sys
import traceback

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6 import QtCore, QtGui, QtUiTools, QtWidgets  # noqa: E402

SLOT_ERRORS = []   # [(where, exception, formatted traceback)]: any entry fails a GUI test
CUSTOM_WIDGETS = {}  # class name -> class, for the loader (ctk / qMRML stand-ins register here)
_VIRTUAL_PROPERTIES = {"sizeHint", "minimumSizeHint"}   # also C++ virtuals: PySide looks them up as overrides
_WRAPPER_CLASSES = set()
_MEMBERS = {}
_LOADING = []   # PySide's QUiLoader sets each named child as an attribute of the top widget


def record_error(where, exc_type, exc, tb):
    """What PythonQt::handleError does (print the traceback), plus a record for the test."""
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    SLOT_ERRORS.append((where, exc, text))
    sys.stderr.write(f"[PythonQt] error in {where}:\n{text}")


def normalized_signature(signature):
    """Qt's normalised signature, with VTK object pointers carried as PyObject."""
    name, _, args = signature.partition("(")
    parts = [a.strip() for a in args.rstrip().rstrip(")").split(",") if a.strip()]
    parts = ["PyObject" if re.fullmatch(r"(const\s+)?vtk\w+\s*\*", p) else p for p in parts]
    return bytes(QtCore.QMetaObject.normalizedSignature(f"{name}({','.join(parts)})").data()).decode()


def _positional_count(function):
    """PythonQtSignalTarget::call: fixed positional parameters of a function or method, else None."""
    if inspect.ismethod(function) and inspect.isfunction(function.__func__):
        code, offset = function.__func__.__code__, 1
    elif inspect.isfunction(function):
        code, offset = function.__code__, 0
    else:
        return None
    return None if code.co_flags & inspect.CO_VARARGS else code.co_argcount - offset


class _SlotCall:
    """The PythonQt signal target: truncates arguments, records exceptions."""

    def __init__(self, function, where):
        self.function, self.where = function, where

    def __call__(self, *args):
        count = _positional_count(self.function)
        try:
            self.function(*(args if count is None else args[:count]))
        except BaseException:  # noqa: B036 - PythonQt catches everything a slot raises
            record_error(self.where, *sys.exc_info())


def _members(obj):
    """{attribute: (kind, data)} of the object's meta-object: properties and signals."""
    cls = type(obj)
    members = _MEMBERS.get(cls)
    if members is None:
        meta = QtCore.QObject.metaObject(obj)
        members = {}
        for i in range(meta.methodCount()):
            method = meta.method(i)
            if method.methodType() == QtCore.QMetaMethod.MethodType.Signal:
                members.setdefault(bytes(method.name().data()).decode(),
                                   ("signal", bytes(method.methodSignature().data()).decode()))
        for i in range(meta.propertyCount()):
            prop = meta.property(i)
            if prop.name() not in _VIRTUAL_PROPERTIES:
                members[prop.name()] = ("property", prop)
        members["name"] = ("property", meta.property(meta.indexOfProperty("objectName")))
        _MEMBERS[cls] = members
    return members


class _BoundSignal:
    """``obj.signalName``: connect / disconnect / emit, as PythonQtSignalFunction."""

    def __init__(self, obj, signature):
        self._obj, self._signature = obj, signature

    def connect(self, function):
        return self._obj.connect(self._signature, function)

    def disconnect(self, function=None):
        return self._obj.disconnect(self._signature, function)

    def emit(self, *args):
        name = self._signature.split("(")[0]
        return super(PythonQtObject, self._obj).__getattribute__(name).emit(*args)


class PythonQtObject:
    """Mixin giving a PySide QObject class PythonQt's attribute and connection rules."""

    def __getattribute__(self, name):
        if name.startswith("_"):
            return super().__getattribute__(name)
        member = _members(self).get(name)
        if member is not None:
            kind, data = member
            if kind == "property":
                return QtCore.QObject.property(self, data.name())
            return _BoundSignal(self, data)
        for klass in type(self).__mro__:   # Python-defined members first (Shiboken prefers static C++ ones)
            if name in klass.__dict__:
                if not klass.__module__.startswith(("PySide6", "Shiboken")):
                    attr = klass.__dict__[name]
                    return attr.__get__(self, type(self)) if hasattr(attr, "__get__") else attr
                break
        try:
            return super().__getattribute__(name)
        except AttributeError:
            pass
        if name.encode() in [bytes(n.data()) for n in QtCore.QObject.dynamicPropertyNames(self)]:
            return QtCore.QObject.property(self, name)
        for child in QtCore.QObject.children(self):
            if child.objectName() == name:
                return child
        raise AttributeError(f"{type(self).__name__} has no attribute named '{name}'")

    def __setattr__(self, name, value):
        if name.startswith("_"):
            return super().__setattr__(name, value)
        member = _members(self).get(name)
        if member is not None:
            kind, prop = member
            if kind != "property":
                raise AttributeError(f"Signal '{name}' can not be overwritten on {type(self).__name__} object")
            if not prop.isWritable():
                raise AttributeError(f"Property '{name}' of {type(self).__name__} object is not writable")
            if not QtCore.QObject.setProperty(self, prop.name(), value):
                raise AttributeError(f"Property '{name}' of type '{prop.typeName()}' does not accept an object of "
                                     f"type {type(value).__name__} ({value!r})")
            return None
        if name.encode() in [bytes(n.data()) for n in QtCore.QObject.dynamicPropertyNames(self)]:
            QtCore.QObject.setProperty(self, name, value)
            return None
        if callable(getattr(type(self), name, None)):
            raise AttributeError(f"Slot '{name}' can not be overwritten on {type(self).__name__} object")
        if type(self) in _WRAPPER_CLASSES and not _LOADING:
            raise AttributeError(f"'{name}' does not exist on {type(self).__name__} and creating new attributes on "
                                 "C++ objects is not allowed")
        return super().__setattr__(name, value)

    def connect(self, signal, function):
        """PythonQt's ``obj.connect('signal(args)', callable)``; False (and a recorded error) if no such signal."""
        signature = normalized_signature(signal)
        if QtCore.QObject.metaObject(self).indexOfSignal(signature) < 0:
            record_error(f"{type(self).__name__}.connect", RuntimeError,
                         RuntimeError(f"PythonQt::connect() signal '{signal}' does not exist on {type(self).__name__}"),
                         None)
            return False
        slots = self.__dict__.setdefault("_pythonqt_slots", {})
        if (signature, function) in slots:
            return True
        call = _SlotCall(function, f"slot {getattr(function, '__qualname__', function)!s} for {signature}")
        slots[(signature, function)] = call
        return bool(QtCore.QObject.connect(self, QtCore.SIGNAL(signature), call))

    def disconnect(self, signal, function=None):
        signature = normalized_signature(signal)
        slots = self.__dict__.get("_pythonqt_slots", {})
        keys = [k for k in slots if k[0] == signature and (function is None or k[1] == function)]
        for key in keys:
            QtCore.QObject.disconnect(self, QtCore.SIGNAL(signature), slots.pop(key))
        return bool(keys)

    def className(self):
        return QtCore.QObject.metaObject(self).className()


def wrap_class(base, name=None):
    """The PythonQt-semantics subclass of a PySide class (one per class, cached)."""
    cls = type(name or base.__name__, (PythonQtObject, base), {"__module__": "qt"})
    _WRAPPER_CLASSES.add(cls)
    return cls


_CLASSES = {}


def _lookup(name):
    if name in _CLASSES:
        return _CLASSES[name]
    for module in (QtWidgets, QtGui, QtCore, QtUiTools):
        base = getattr(module, name, None)
        if base is not None:
            break
    else:
        raise AttributeError(f"module 'qt' has no attribute '{name}'")
    if isinstance(base, type) and issubclass(base, QtCore.QObject) and name not in ("QUiLoader",):
        base = wrap_class(base, name)
    _CLASSES[name] = base
    return base


class QUiLoader(QtUiTools.QUiLoader):
    """Qt's QUiLoader; widgets are created as this module's classes or the registered stand-ins."""

    def createWidget(self, className, parent=None, name=""):
        cls = CUSTOM_WIDGETS.get(className)
        if cls is None:
            try:
                cls = _lookup(className)
            except AttributeError:
                return super().createWidget(className, parent, name)
        widget = cls(parent)
        widget.setObjectName(name)
        return widget

    def load(self, device, parent=None):
        """Load a .ui file (an open QIODevice or a path), VTK pointer signatures read as PyObject."""
        if isinstance(device, str):
            with open(device, "rb") as f:
                data = f.read()
        else:
            data = bytes(device.readAll().data())
        text = re.sub(r"(<(?:signal|slot)>[^<]*)", lambda m: _ui_signature(m.group(1)), data.decode("utf-8"))
        buffer = QtCore.QBuffer()
        buffer.setData(QtCore.QByteArray(text.encode("utf-8")))
        buffer.open(QtCore.QIODevice.OpenModeFlag.ReadOnly)
        _LOADING.append(True)
        try:
            widget = super().load(buffer, parent)
        finally:
            _LOADING.pop()
        if widget is None:
            raise RuntimeError(self.errorString())
        return widget


def _ui_signature(element):
    tag, _, signature = element.partition(">")
    return f"{tag}>{normalized_signature(signature)}"


class QFileDialog(PythonQtObject, QtWidgets.QFileDialog):
    """PythonQt returns the file name of getSaveFileName / getOpenFileName (PySide: a tuple)."""

    @staticmethod
    def getSaveFileName(*args):
        return QtWidgets.QFileDialog.getSaveFileName(*args)[0]

    @staticmethod
    def getOpenFileName(*args):
        return QtWidgets.QFileDialog.getOpenFileName(*args)[0]


_WRAPPER_CLASSES.add(QFileDialog)
_CLASSES["QUiLoader"], _CLASSES["QFileDialog"] = QUiLoader, QFileDialog
Qt = QtCore.Qt
QT_VERSION_STR = QtCore.qVersion()


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    return _lookup(name)
