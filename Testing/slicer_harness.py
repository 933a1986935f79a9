"""Headless Slicer harness: what the Slicer application supplies to scripted modules, and no more.

The MRML scene and the Colors, Volumes and Segmentations module logics are Slicer's real classes
from the ``slicer-core`` wheel (built by :func:`MedSegCore.mrml.scene.ensure_scene`).  This file adds
only what the Qt application would otherwise provide to a module file:

* ``slicer.ScriptedLoadableModule``: the four base classes, with Slicer's behaviour for what runs
  headless (module registration in ``slicer.selfTests``, ``runTest`` finding ``<Module>Test``,
  singleton parameter nodes in the scene, ``unittest.TestCase`` tests); widgets are created by
  Testing/gui's ModulePanel, as qSlicerScriptedLoadableModuleWidget does.
* ``slicer.i18n`` (``tr``/``translate`` return the source text, as with no translation loaded).
* ``qt``, ``ctk``, the qMRML widgets, ``slicer.parameterNodeWrapper``, ``slicer.app`` and the
  Segment Editor effect host: real Qt widgets with PythonQt's rules, from Testing/gui (see
  Testing/gui/__init__.py for what each stands in for and where its behaviour comes from).
* ``slicer.util.delayDisplay``: logs the message (Slicer also logs it, then shows a popup).

Nothing replaces MRML nodes, segmentation logic or ``slicer.util``.
"""
from __future__ import annotations

import importlib
import logging
import os
import sys
import types
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MODULE_DIRS = {"MedSegThreshold": os.path.join(ROOT, "MedSegThreshold"),
               "MedSegDNN": os.path.join(ROOT, "MedSegDNN")}


# --- slicer.ScriptedLoadableModule -------------------------------------------------------------

class ScriptedLoadableModule:
    """Registers the module's self-test in ``slicer.selfTests`` as Slicer does."""

    def __init__(self, parent):
        import slicer
        self.parent = parent
        self.moduleName = self.__class__.__name__
        parent.title, parent.categories, parent.dependencies, parent.contributors = "", [], [], []
        parent.helpText = parent.acknowledgementText = ""
        if not hasattr(slicer, "selfTests"):
            slicer.selfTests = {}
        slicer.selfTests[self.moduleName] = self.runTest

    def resourcePath(self, filename):
        return os.path.join(os.path.dirname(self.parent.path), "Resources", filename)

    def getDefaultModuleDocumentationLink(self, docPage=None):
        return ""

    def runTest(self, msec=100, **kwargs):
        module = importlib.import_module(self.__module__)
        cls = getattr(module, self.moduleName + "Test", None)
        if cls is None:
            raise AssertionError(f"Test case class not found: {self.__module__}.{self.moduleName}Test")
        test = cls()
        test.messageDelay = msec
        test.runTest(**kwargs)


class ScriptedLoadableModuleWidget:
    """Slicer's base class (Base/Python/slicer/ScriptedLoadableModule.py) without the developer
    section: ``parent`` is the module panel (Testing/gui/app.py ModulePanel), ``layout`` its layout."""

    def __init__(self, parent=None):
        import slicer
        self.moduleName = self.__class__.__name__.removesuffix("Widget")
        self.developerMode = False
        if parent is None:
            raise RuntimeError("create module widgets through Testing/gui (ModulePanel), as Slicer does")
        self.parent = parent
        self.layout = self.parent.layout()
        slicer.app.moduleManager().connect("moduleAboutToBeUnloaded(QString)", self._onModuleAboutToBeUnloaded)

    def resourcePath(self, filename):
        import slicer
        return os.path.join(os.path.dirname(slicer.util.modulePath(self.moduleName)), "Resources", filename)

    def setup(self):
        pass

    def enter(self):
        pass

    def exit(self):
        pass

    def cleanup(self):
        pass

    def _onModuleAboutToBeUnloaded(self, moduleName):
        import slicer
        if moduleName == self.moduleName:
            self.cleanup()
            slicer.app.moduleManager().disconnect("moduleAboutToBeUnloaded(QString)", self._onModuleAboutToBeUnloaded)


class ScriptedLoadableModuleLogic:
    """Parameter node handling as in Slicer: one singleton scripted-module node per module."""

    def __init__(self, parent=None):
        self.moduleName = self.__class__.__name__.removesuffix("Logic")
        self.isSingletonParameterNode = True

    def getParameterNode(self):
        import slicer
        node = slicer.mrmlScene.GetSingletonNode(self.moduleName, "vtkMRMLScriptedModuleNode")
        if node is None:
            node = slicer.mrmlScene.AddNode(self.createParameterNode())
        return node

    def createParameterNode(self):
        import slicer
        node = slicer.mrmlScene.CreateNodeByClass("vtkMRMLScriptedModuleNode")
        node.UnRegister(None)
        node.SetSingletonTag(self.moduleName)
        node.SetAttribute("ModuleName", self.moduleName)
        node.SetName(slicer.mrmlScene.GenerateUniqueName(self.moduleName))
        return node


class ScriptedLoadableModuleTest(unittest.TestCase):
    """Base of ``<Module>Test``; ``delayDisplay`` logs instead of showing a popup."""

    def delayDisplay(self, message, requestedDelay=None, msec=None):
        logging.info(message)

    def takeScreenshot(self, name, description, type=-1):
        logging.info(description)

    def runTest(self):
        logging.warning("No test is defined in " + self.__class__.__name__)


# --- installation ------------------------------------------------------------------------------

def _module(name, **attrs):
    mod = types.ModuleType(name)
    mod.__dict__.update(attrs)
    return mod


def install():
    """Create the headless scene and module logics and the import stand-ins (idempotent)."""
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from MedSegCore.mrml.scene import ensure_scene
    import slicer

    ensure_scene()
    if "slicer.ScriptedLoadableModule" not in sys.modules:
        slm = _module("slicer.ScriptedLoadableModule", ScriptedLoadableModule=ScriptedLoadableModule,
                      ScriptedLoadableModuleWidget=ScriptedLoadableModuleWidget,
                      ScriptedLoadableModuleLogic=ScriptedLoadableModuleLogic,
                      ScriptedLoadableModuleTest=ScriptedLoadableModuleTest)
        slm.__all__ = ["ScriptedLoadableModule", "ScriptedLoadableModuleWidget",
                       "ScriptedLoadableModuleLogic", "ScriptedLoadableModuleTest"]
        i18n = _module("slicer.i18n", tr=lambda text: text, translate=lambda context, text: text)
        pnw = _module("slicer.parameterNodeWrapper", parameterNodeWrapper=lambda cls: cls,
                      parameterPack=lambda cls: cls, WithinRange=lambda lo, hi: None,
                      Default=lambda value: None, Choice=lambda choices: None,
                      Minimum=lambda v: None, Maximum=lambda v: None)
        for mod in (slm, i18n, pnw):
            sys.modules[mod.__name__] = mod
            setattr(slicer, mod.__name__.split(".")[1], mod)
        slicer.selfTests = {}
        slicer.util.delayDisplay = lambda message, autoCloseMsec=1000, parent=None, **kw: logging.info(message)
    if "qt" not in sys.modules:
        from gui import app
        app.install(slicer)
    for path in MODULE_DIRS.values():
        if path not in sys.path:
            sys.path.insert(0, path)


def load_module(name: str):
    """Import a MedSeg scripted module file and create its module object, as Slicer does at
    startup; returns the module object (``slicer.modules.<name lower>`` is set too)."""
    import slicer

    install()
    pymod = importlib.import_module(name)
    parent = types.SimpleNamespace(path=os.path.join(MODULE_DIRS[name], name + ".py"))
    instance = getattr(pymod, name)(parent)
    setattr(slicer.modules, name.lower(), types.SimpleNamespace(name=name, path=parent.path, instance=instance))
    return instance
