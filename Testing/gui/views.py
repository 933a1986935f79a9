"""Slice views and the layout manager, over real vtkMRMLSliceLogic and displayable managers.

What the effect uses of Slicer's qSlicerLayoutManager / qMRMLSliceWidget / qMRMLSliceView
(Libs/MRML/Widgets/qMRMLSliceWidget.h, qMRMLSliceView.h, Base/QTGUI/qSlicerLayoutManager.h):
``sliceViewNames()``, ``sliceWidget(name)``, ``sliceLogic()``, ``mrmlSliceNode()``,
``sliceView().displayableManagerByClassName(name)``, ``scheduleRender()``, ``forceRender()``,
``renderWindow()``.  Each view is an offscreen vtkRenderWindow (EGL) of ``SIZE`` pixels: the
slice logic's RGBA image (Slicer's own reslicing and window/level) under the slice view
displayable managers Slicer registers (segmentations 2D among them), so a screenshot shows what
Slicer would draw.  The Qt widget is a QLabel that shows the last render.
"""
import vtk
from PySide6 import QtGui, QtWidgets

from . import pythonqt as qt
import slicer

SIZE = (256, 256)
VIEWS = (("Red", "Axial"), ("Yellow", "Sagittal"), ("Green", "Coronal"))
MANAGERS = ("vtkMRMLSegmentationsDisplayableManager2D",)


class qMRMLSliceView(qt.PythonQtObject, QtWidgets.QLabel):
    """qMRMLSliceView.h: renderer, render window and displayable managers of one slice view."""

    def __init__(self, sliceNode, sliceLogic, parent=None):
        QtWidgets.QLabel.__init__(self, parent)
        self._renderWindow = vtk.vtkRenderWindow()
        self._renderWindow.SetOffScreenRendering(1)
        self._renderWindow.SetSize(*SIZE)
        self._renderer = vtk.vtkRenderer()
        self._renderWindow.AddRenderer(self._renderer)
        self._interactor = vtk.vtkRenderWindowInteractor()   # displayable managers need one
        self._interactor.SetRenderWindow(self._renderWindow)
        self._image = vtk.vtkImageMapper()
        self._image.SetColorWindow(255)
        self._image.SetColorLevel(127.5)
        self._sliceLogic = sliceLogic
        self._imageActor = vtk.vtkActor2D()
        self._imageActor.SetMapper(self._image)
        self._renderer.AddViewProp(self._imageActor)
        factory = slicer.vtkMRMLSliceViewDisplayableManagerFactory.GetInstance()
        factory.SetMRMLApplicationLogic(slicer.applicationLogic)
        for name in MANAGERS:
            if not factory.IsDisplayableManagerRegistered(name):
                factory.RegisterDisplayableManager(name)
        self._managers = factory.InstantiateDisplayableManagers(self._renderer)
        self._managers.SetMRMLDisplayableNode(sliceNode)
        self._renderPending = False

    def displayableManagerByClassName(self, className):
        return self._managers.GetDisplayableManagerByClassName(className)

    def renderWindow(self):
        return self._renderWindow

    def scheduleRender(self):
        self._renderPending = True

    def forceRender(self):
        self._renderPending = False
        # the slice logic rebuilds its output pipeline when layers change (qMRMLSliceWidget reconnects)
        self._image.SetInputConnection(self._sliceLogic.GetImageDataConnection())
        self._renderWindow.Render()
        grab = vtk.vtkWindowToImageFilter()
        grab.SetInput(self._renderWindow)
        grab.Update()
        self._lastImage = grab.GetOutput()
        w, h, _ = self._lastImage.GetDimensions()
        from vtk.util import numpy_support
        rgb = numpy_support.vtk_to_numpy(self._lastImage.GetPointData().GetScalars()).reshape(h, w, -1)[::-1].copy()
        self._rgb = rgb
        image = QtGui.QImage(rgb.data, w, h, rgb.shape[2] * w,
                             QtGui.QImage.Format.Format_RGB888 if rgb.shape[2] == 3 else QtGui.QImage.Format.Format_RGBA8888)
        QtWidgets.QLabel.setPixmap(self, QtGui.QPixmap.fromImage(image.copy()))
        return rgb


class qMRMLSliceWidget(qt.PythonQtObject, QtWidgets.QWidget):
    """qMRMLSliceWidget.h: a slice view with its vtkMRMLSliceLogic."""

    def __init__(self, name, orientation, parent=None):
        QtWidgets.QWidget.__init__(self, parent)
        self._logic = vtk_logic = slicer.vtkMRMLSliceLogic()
        vtk_logic.SetMRMLApplicationLogic(slicer.applicationLogic)
        vtk_logic.SetMRMLScene(slicer.mrmlScene)
        self._sliceNode = vtk_logic.AddSliceNode(name)
        self._sliceNode.SetOrientation(orientation)
        self._sliceNode.SetDimensions(SIZE[0], SIZE[1], 1)
        vtk_logic.SetSliceNode(self._sliceNode)
        self._view = qMRMLSliceView(self._sliceNode, vtk_logic, self)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._view)
        self.setObjectName(f"qMRMLSliceWidget{name}")

    def sliceLogic(self):
        return self._logic

    def mrmlSliceNode(self):
        return self._sliceNode

    def sliceView(self):
        return self._view

    def sliceController(self):
        raise NotImplementedError("the slice controller is not part of the harness")


class qSlicerLayoutManager:
    """qSlicerLayoutManager.h: the conventional layout's three slice views."""

    def __init__(self):
        self._container = QtWidgets.QWidget()
        layout = QtWidgets.QHBoxLayout(self._container)
        self._widgets = {}
        for name, orientation in VIEWS:
            widget = qMRMLSliceWidget(name, orientation)
            layout.addWidget(widget)
            self._widgets[name] = widget
        self._container.show()

    def sliceViewNames(self):
        return list(self._widgets)

    def sliceWidget(self, name):
        return self._widgets.get(name)

    def container(self):
        return self._container

    def resetSliceViews(self, volumeNode):
        """Show ``volumeNode`` in every view, fitted, as Slicer does when a volume is loaded."""
        for widget in self._widgets.values():
            logic = widget.sliceLogic()
            logic.GetSliceCompositeNode().SetBackgroundVolumeID(volumeNode.GetID() if volumeNode else None)
            logic.FitSliceToAll()
        self.renderAll()

    def renderAll(self):
        return {name: w.sliceView().forceRender() for name, w in self._widgets.items()}


for _cls in (qMRMLSliceView, qMRMLSliceWidget):
    _cls.__module__ = "slicer"
    qt._WRAPPER_CLASSES.add(_cls)
