"""The Slicer application around module panels: ``slicer.app``, module panels, and installation.

* ``slicer.app`` (qSlicerApplication): a QObject with ``startupCompleted()``; ``testingEnabled()``
  is False, so slicer.util shows the confirmations a user sees as real modal message boxes, which
  the tests answer (dialogs.py; a dialog nobody answers is rejected and fails the test);
  ``layoutManager()`` returns the three-view layout of :mod:`views`; override cursors are the
  QApplication's; ``moduleManager()`` emits ``moduleAboutToBeUnloaded(QString)``.
* :class:`ModulePanel` is qSlicerScriptedLoadableModuleWidget: a qMRMLWidget with a QVBoxLayout
  on the scene that creates ``<Module>Widget(panel)``, calls ``setup()`` once, then ``enter()`` /
  ``exit()`` as the module is selected and left (``isEntered``), ``cleanup()`` on unload.
* ``SegmentEditorEffects.AbstractScriptedSegmentEditorEffect`` (Slicer's Python class: stores
  ``scriptedEffect``; ``register()`` adds it to the effect factory).
"""
import logging
import os
import sys
import types

from PySide6 import QtCore, QtWidgets

from . import pythonqt as qt

Signal = QtCore.Signal


class qSlicerModuleManager(qt.PythonQtObject, QtCore.QObject):
    moduleAboutToBeUnloaded = Signal(str)


class qSlicerApplication(qt.PythonQtObject, QtCore.QObject):
    """What module files and slicer.util use of slicer.app."""

    startupCompleted = Signal()

    def __init__(self):
        QtCore.QObject.__init__(self)
        self._layoutManager = None
        self._moduleManager = qSlicerModuleManager()

    def testingEnabled(self):
        return False   # as for a user: slicer.util's confirmations are real dialogs (see dialogs.py)

    def layoutManager(self):
        if self._layoutManager is None:
            from . import views
            self._layoutManager = views.qSlicerLayoutManager()
        return self._layoutManager

    def moduleManager(self):
        return self._moduleManager

    def topLevelWidgets(self):
        return QtWidgets.QApplication.topLevelWidgets()   # none is a qSlicerMainWindow here

    def processEvents(self):
        QtWidgets.QApplication.processEvents()

    def setOverrideCursor(self, cursor):
        QtWidgets.QApplication.setOverrideCursor(cursor)

    def restoreOverrideCursor(self):
        QtWidgets.QApplication.restoreOverrideCursor()

    applicationName = QtCore.Property(str, lambda self: "Slicer")


class ModulePanel(qt.PythonQtObject, QtWidgets.QWidget):
    """qSlicerScriptedLoadableModuleWidget: hosts a module's Python widget."""

    def __init__(self, moduleName):
        import slicer

        QtWidgets.QWidget.__init__(self)
        self._entered, self._moduleName = False, moduleName
        QtWidgets.QVBoxLayout(self)
        self.resize(420, 900)
        getattr(slicer.modules, moduleName.lower()).widgetRepresentation = lambda: self
        self.reload()

    def reload(self):
        """Create the module's widget from its (possibly reloaded) Python module and set it up."""
        import slicer
        self._widget = getattr(sys.modules[self._moduleName], self._moduleName + "Widget")(self)
        setattr(slicer.modules, self._moduleName + "Widget", self._widget)
        self._widget.setup()

    def widget(self):
        return self._widget

    def enter(self):
        self._entered = True
        self._widget.enter()

    def exit(self):
        self._widget.exit()
        self._entered = False

    def unload(self):
        import slicer
        slicer.app.moduleManager().moduleAboutToBeUnloaded.emit(self._widget.moduleName)
        self._widget.cleanup()

    isEntered = QtCore.Property(bool, lambda self: self._entered)


class AbstractScriptedSegmentEditorEffect:
    """SegmentEditorEffects/AbstractScriptedSegmentEditorEffect.py (the parts MedSeg's effect uses)."""

    def __init__(self, scriptedEffect):
        self.scriptedEffect = scriptedEffect

    def register(self):
        import slicer
        slicer.qSlicerSegmentEditorEffectFactory.instance().registerEffect(self.scriptedEffect)

    def cleanup(self):
        pass


class qSlicerSegmentEditorEffectFactory:
    _instance = None

    def __init__(self):
        self.effects = []

    @classmethod
    def instance(cls):
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def registerEffect(self, effect):
        if any(e.name == effect.name for e in self.effects):
            return False
        self.effects.append(effect)
        return True


def install(slicer):
    """Put the real-Qt ``qt``, ``ctk``, widget classes and application objects in place."""
    sys.modules["qt"] = qt
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["MedSegTests"])
    app.setOrganizationName("MedSegTests")
    from . import ctk_widgets, dialogs, effect_host, mrml_widgets, parameter_node, views

    dialogs.install()

    ctk = types.ModuleType("ctk")
    for name in ("ctkCollapsibleButton", "ctkCollapsibleGroupBox", "ctkRangeWidget", "ctkMessageBox"):
        setattr(ctk, name, getattr(ctk_widgets, name))
    sys.modules["ctk"] = ctk
    for cls in (mrml_widgets.qMRMLWidget, mrml_widgets.qMRMLNodeComboBox, mrml_widgets.qMRMLCheckableNodeComboBox,
                mrml_widgets.qMRMLTableView, views.qMRMLSliceWidget, views.qMRMLSliceView,
                effect_host.qSlicerSegmentEditorAbstractEffect, qSlicerSegmentEditorEffectFactory):
        setattr(slicer, cls.__name__, cls)
    pnw = types.ModuleType("slicer.parameterNodeWrapper")
    for name in ("parameterNodeWrapper", "Choice", "WithinRange", "Minimum", "Maximum", "Default",
                 "SlicerParameterNamePropertyName", "createGuiConnector"):
        setattr(pnw, name, getattr(parameter_node, name))
    sys.modules[pnw.__name__] = pnw
    slicer.parameterNodeWrapper = pnw
    effects = types.ModuleType("qSlicerSegmentationsEditorEffectsPythonQt")
    effects.qSlicerSegmentEditorScriptedEffect = effect_host.qSlicerSegmentEditorScriptedEffect
    sys.modules[effects.__name__] = effects
    see = types.ModuleType("SegmentEditorEffects")
    see.AbstractScriptedSegmentEditorEffect = AbstractScriptedSegmentEditorEffect
    see.__all__ = ["AbstractScriptedSegmentEditorEffect"]
    sys.modules[see.__name__] = see
    if not hasattr(slicer.modules, "plots"):   # the Plots module logic (real), as Slicer loads it
        from MedSegCore.mrml.scene import _LoadedModule, _new_logic
        plots = _new_logic(slicer, slicer.vtkSlicerPlotsLogic, slicer.applicationLogic, slicer.mrmlScene)
        slicer.modules.plots = _LoadedModule("Plots", plots)
    slicer.app = qSlicerApplication()
    logging.getLogger().setLevel(logging.INFO)
    return app
