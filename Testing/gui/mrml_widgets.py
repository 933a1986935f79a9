"""qMRML widgets (Slicer Libs/MRML/Widgets) as real Qt widgets over the real slicer-core scene.

Each class has the API of its header that MedSeg uses (properties, signals, slots and
Q_INVOKABLEs as PythonQt wraps them), with the behaviour of the .cxx where a test can see it:

* qMRMLWidget.h: ``setMRMLScene`` emits ``mrmlSceneChanged(vtkMRMLScene*)`` (the .ui files
  connect it to their node selectors).
* qMRMLNodeComboBox.h/.cxx: lists the scene's nodes of ``nodeTypes`` (exact classes unless
  ``showChildNodeTypes``; hidden nodes only with ``showHidden``), a "None" item first when
  ``noneEnabled`` (text ``noneDisplay``); follows node addition, removal, renaming and scene close;
  without "None" the first node becomes current as soon as there is one (QComboBox's rule);
  disabled while it has no scene; ``currentNodeChanged(vtkMRMLNode*)``, ``currentNodeChanged(bool)``
  and ``currentNodeIDChanged(QString)`` fire when the current node changes.
* qMRMLCheckableNodeComboBox.h: the same list with a check box per node; ``checkedNodes()``.
* qMRMLTableView.h: shows a vtkMRMLTableNode's table and follows its modifications.
"""
import weakref

import vtk

from PySide6 import QtCore, QtGui, QtWidgets

from . import pythonqt as qt

Property, Signal, Slot = QtCore.Property, QtCore.Signal, QtCore.Slot
_LIVE = weakref.WeakSet()   # widgets observing the scene; detached when a test ends


def detach_all():
    """Remove every stand-in's scene observers (the C++ widgets do it in their destructors)."""
    for widget in list(_LIVE):
        widget._detach()


class _SceneObserver:
    """VTK observations owned by a widget, removed in ``_detach``."""

    def _observe(self, obj, event, method):
        ref = weakref.WeakMethod(method)
        tag = obj.AddObserver(event, lambda caller, ev: ref() and ref()(caller, ev))
        self.__dict__.setdefault("_observations", []).append((obj, tag))
        _LIVE.add(self)

    def _detach(self):
        for obj, tag in self.__dict__.pop("_observations", []):
            obj.RemoveObserver(tag)


class qMRMLWidget(qt.PythonQtObject, QtWidgets.QWidget):
    """qMRMLWidget.h"""

    mrmlSceneChanged = Signal(object)

    def __init__(self, parent=None):
        QtWidgets.QWidget.__init__(self, parent)
        self._scene = None

    @Slot(object)
    def setMRMLScene(self, scene):
        if scene is self._scene:
            return
        self._scene = scene
        self.mrmlSceneChanged.emit(scene)

    def mrmlScene(self):
        return self._scene


class qMRMLNodeComboBox(_SceneObserver, qt.PythonQtObject, QtWidgets.QWidget):
    """qMRMLNodeComboBox.h"""

    currentNodeChanged = Signal(object)
    currentNodeIDChanged = Signal(str)
    nodeAdded = Signal(object)
    nodeAboutToBeRemoved = Signal(object)

    def __init__(self, parent=None):
        QtWidgets.QWidget.__init__(self, parent)
        self._scene, self._types, self._childTypes, self._hidden = None, [], True, False
        self._none, self._add, self._remove, self._edit, self._rename = False, True, True, False, False
        self._noneDisplay, self._baseName, self._currentID, self._updating = "None", "", "", False
        self._combo = QtWidgets.QComboBox(self)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._combo)
        self._combo.currentIndexChanged.connect(self._onIndexChanged)
        self.setEnabled(False)

    # --- scene and list -------------------------------------------------------------------
    @Slot(object)
    def setMRMLScene(self, scene):
        if scene is self._scene:
            return
        self._detach()
        self._scene = scene
        if scene is not None:
            for event in (scene.NodeAddedEvent, scene.NodeRemovedEvent, scene.EndCloseEvent, scene.EndImportEvent):
                self._observe(scene, event, self._onSceneChanged)
        self._refresh()
        self.setEnabled(scene is not None)

    def mrmlScene(self):
        return self._scene

    def _matches(self, node):
        if not self._hidden and node.GetHideFromEditors():
            return False
        if self._childTypes:
            return any(node.IsA(t) for t in self._types)
        return node.GetClassName() in self._types

    def _nodes(self):
        if self._scene is None or not self._types:
            return []
        return [n for n in (self._scene.GetNthNode(i) for i in range(self._scene.GetNumberOfNodes())) if self._matches(n)]

    def _onSceneChanged(self, caller, event):
        self._refresh()

    def _refresh(self):
        nodes = self._nodes()
        oldIndex = self._combo.currentIndex()
        self._updating = True
        self._combo.clear()
        if self._none:
            self._combo.addItem(self._noneDisplay, "")
        for node in nodes:
            self._combo.addItem(node.GetName() or node.GetID(), node.GetID())
        index = self._combo.findData(self._currentID) if self._currentID else (0 if self._none else -1)
        if index < 0:
            index = 0 if self._none else min(max(oldIndex, 0), len(nodes) - 1)
        self._combo.setCurrentIndex(index)
        self._updating = False
        self._emitIfChanged()

    def _onIndexChanged(self, index):
        if not self._updating:
            self._emitIfChanged()

    def _emitIfChanged(self):
        node = self.currentNode()
        nodeID = node.GetID() if node is not None else ""
        if nodeID == self._currentID:
            return
        self._currentID = nodeID
        self.currentNodeChanged.emit(node)
        self.currentNodeIDChanged.emit(nodeID)

    # --- Q_INVOKABLE and slots ---------------------------------------------------------------
    def currentNode(self):
        nodeID = self._combo.itemData(self._combo.currentIndex()) if self._combo.currentIndex() >= 0 else ""
        return self._scene.GetNodeByID(nodeID) if nodeID and self._scene is not None else None

    def currentNodeId(self):
        return self.currentNodeID

    @Slot(object)
    def setCurrentNode(self, node):
        self.setCurrentNodeID(node.GetID() if node is not None else "")

    @Slot(str)
    def setCurrentNodeID(self, nodeID):
        index = self._combo.findData(nodeID) if nodeID else (0 if self._none else -1)
        self._combo.setCurrentIndex(index)
        self._emitIfChanged()

    @Slot(int)
    def setCurrentNodeIndex(self, index):
        self._combo.setCurrentIndex(index + (1 if self._none else 0))

    def nodeCount(self):
        return self._combo.count() - (1 if self._none else 0) if self._scene is not None else 0

    def nodeFromIndex(self, index):
        nodeID = self._combo.itemData(index + (1 if self._none else 0))
        return self._scene.GetNodeByID(nodeID) if nodeID and self._scene is not None else None

    def _setTypes(self, types):
        self._types = list(types)
        self._refresh()

    def _setFlag(name):
        def setter(self, value):
            setattr(self, name, bool(value))
            self._refresh()
        return setter

    def _setNoneDisplay(self, text):
        self._noneDisplay = text
        self._refresh()

    def _setBaseName(self, text):
        self._baseName = text

    currentNodeID = Property(str, lambda self: self._currentID, setCurrentNodeID, notify=currentNodeIDChanged)
    nodeTypes = Property("QStringList", lambda self: self._types, _setTypes)
    showHidden = Property(bool, lambda self: self._hidden, _setFlag("_hidden"))
    showChildNodeTypes = Property(bool, lambda self: self._childTypes, _setFlag("_childTypes"))
    noneEnabled = Property(bool, lambda self: self._none, _setFlag("_none"))
    addEnabled = Property(bool, lambda self: self._add, _setFlag("_add"))
    removeEnabled = Property(bool, lambda self: self._remove, _setFlag("_remove"))
    editEnabled = Property(bool, lambda self: self._edit, _setFlag("_edit"))
    renameEnabled = Property(bool, lambda self: self._rename, _setFlag("_rename"))
    noneDisplay = Property(str, lambda self: self._noneDisplay, _setNoneDisplay)
    baseName = Property(str, lambda self: self._baseName, _setBaseName)


class qMRMLCheckableNodeComboBox(qMRMLNodeComboBox):
    """qMRMLCheckableNodeComboBox.h: every listed node has a check box (unchecked when added)."""

    checkedNodesChanged = Signal()

    def __init__(self, parent=None):
        qMRMLNodeComboBox.__init__(self, parent)
        self._checked = set()
        self._combo.setModel(QtGui.QStandardItemModel(self._combo))
        self._combo.model().itemChanged.connect(lambda item: self.checkedNodesChanged.emit())

    def _refresh(self):
        qMRMLNodeComboBox._refresh(self)
        model = self._combo.model()
        present = {model.item(i).data(QtCore.Qt.ItemDataRole.UserRole) for i in range(model.rowCount())}
        self._checked &= present
        for i in range(model.rowCount()):
            item = model.item(i)
            if item.data(QtCore.Qt.ItemDataRole.UserRole):
                item.setCheckable(True)
                checked = item.data(QtCore.Qt.ItemDataRole.UserRole) in self._checked
                item.setCheckState(QtCore.Qt.CheckState.Checked if checked else QtCore.Qt.CheckState.Unchecked)

    def checkedNodes(self):
        return [n for n in self._nodes() if n.GetID() in self._checked]

    def uncheckedNodes(self):
        return [n for n in self._nodes() if n.GetID() not in self._checked]

    def checkState(self, node):
        return QtCore.Qt.CheckState.Checked if node.GetID() in self._checked else QtCore.Qt.CheckState.Unchecked

    def setCheckState(self, node, state):
        if state == QtCore.Qt.CheckState.Checked:
            self._checked.add(node.GetID())
        else:
            self._checked.discard(node.GetID())
        self._refresh()
        self.checkedNodesChanged.emit()

    @Slot(object)
    def check(self, node):
        self.setCheckState(node, QtCore.Qt.CheckState.Checked)

    @Slot(object)
    def uncheck(self, node):
        self.setCheckState(node, QtCore.Qt.CheckState.Unchecked)


class qMRMLTableView(_SceneObserver, qt.PythonQtObject, QtWidgets.QTableView):
    """qMRMLTableView.h: the cells of a vtkMRMLTableNode (column names as headers)."""

    def __init__(self, parent=None):
        QtWidgets.QTableView.__init__(self, parent)
        self._scene, self._table = None, None
        self.setModel(QtGui.QStandardItemModel(self))

    @Slot(object)
    def setMRMLScene(self, scene):
        self._scene = scene

    def mrmlScene(self):
        return self._scene

    @Slot(object)
    def setMRMLTableNode(self, node):
        self._detach()
        self._table = node
        if node is not None:
            self._observe(node, vtk.vtkCommand.ModifiedEvent, self._onTableModified)
        self._fill()

    def _onTableModified(self, caller, event):
        self._fill()

    def mrmlTableNode(self):
        return self._table

    def _fill(self):
        model = QtWidgets.QTableView.model(self)
        model.clear()
        table = self._table.GetTable() if self._table is not None else None
        if table is None:
            return
        model.setHorizontalHeaderLabels([table.GetColumnName(c) for c in range(table.GetNumberOfColumns())])
        for r in range(table.GetNumberOfRows()):
            model.appendRow([QtGui.QStandardItem(table.GetValue(r, c).ToString()) for c in range(table.GetNumberOfColumns())])


for _cls in (qMRMLWidget, qMRMLNodeComboBox, qMRMLCheckableNodeComboBox, qMRMLTableView):
    _cls.__module__ = "slicer"
    qt.CUSTOM_WIDGETS[_cls.__name__] = _cls
    qt._WRAPPER_CLASSES.add(_cls)
