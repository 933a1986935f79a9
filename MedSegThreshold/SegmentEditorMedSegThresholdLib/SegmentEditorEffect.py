"""The "MedSeg Threshold" Segment Editor effect: a thin Qt layer over MedSegCore.

Modelled on Slicer's SegmentEditorThresholdEffect: a range slider, a pulsing preview in every slice
view (one vtkActor2D/vtkImageMapper pipeline per view, reslice.ViewOverlay, the edited segment
hidden meanwhile by the segmentation displayable manager's custom segment renderer), Apply.
Added: presets, the 11 automatic methods (Li included) and multi-Otsu (k new segments), invert,
clean-up, and a "current slice" scope.  The preview thresholds only the displayed slice
(MedSegCore.threshold.preview, MedSegCore.mrml.reslice); Apply goes through
MedSegCore.mrml.editor_apply.EffectTarget, i.e.
``scriptedEffect.saveStateForUndo()`` and ``modify(Selected)SegmentByLabelmap``, so the editable
area, editable intensity range, overwrite mode and Undo are the Segment Editor's own.
"""
import logging
import os
import sys

import ctk
import qt
import vtk

import slicer
from SegmentEditorEffects import *  # noqa: F403
from slicer.i18n import tr as _

_HERE = os.path.dirname(os.path.abspath(__file__))
for _dir in (os.path.dirname(os.path.dirname(_HERE)), os.path.dirname(_HERE)):
    if os.path.isdir(os.path.join(_dir, "MedSegCore")) and _dir not in sys.path:
        sys.path.append(_dir)

from MedSegCore.threshold import autothreshold, engine, presets  # noqa: E402
from MedSegCore.mrml import editor_apply, nodes, reslice  # noqa: E402
from MedSegCore.errors import MedSegError  # noqa: E402
from SegmentEditorMedSegThresholdLib.HistogramView import HistogramView  # noqa: E402

EFFECT_NAME = "MedSeg Threshold"
MULTI_OTSU = "multi_otsu"


class SegmentEditorEffect(AbstractScriptedSegmentEditorEffect):  # noqa: F405
    """Threshold with presets, automatic methods, multi-Otsu, clean-up and live slice preview."""

    def __init__(self, scriptedEffect):
        scriptedEffect.name = EFFECT_NAME  # no tr (modules find effects by name)
        scriptedEffect.title = _("MedSeg Threshold")
        scriptedEffect.requireSegments = False   # creates a segment (or k for multi-Otsu) if needed
        AbstractScriptedSegmentEditorEffect.__init__(self, scriptedEffect)  # noqa: F405
        self.previewPipelines = {}
        self.previewedSegmentationDisplayNode = None
        self.previewedSegmentID = None
        self.previewState, self.previewStep, self.previewSteps = 0, 1, 5
        self.classRanges = []          # [(lower, upper, color)] of the last multi-Otsu computation
        self.timer = qt.QTimer()
        self.timer.connect("timeout()", self.preview)

    def cleanup(self):
        self.timer.stop()
        self.timer.disconnect("timeout()", self.preview)
        self.clearPreviewDisplayPipelines()

    def clone(self):
        import qSlicerSegmentationsEditorEffectsPythonQt as effects

        clonedEffect = effects.qSlicerSegmentEditorScriptedEffect(None)
        clonedEffect.setPythonSource(__file__.replace("\\", "/"))
        return clonedEffect

    def icon(self):
        iconPath = os.path.join(_HERE, "SegmentEditorEffect.png")
        return qt.QIcon(iconPath) if os.path.exists(iconPath) else qt.QIcon()

    def helpText(self):
        return "<html>" + _("""Fill the selected segment with the source volume's voxels in an intensity range.<p>
<ul style="margin: 0">
<li><b>Preset / Automatic:</b> set the range from a CT (HU) or MRI (percentile) preset or an automatic method.
<li><b>Multi-Otsu:</b> Apply creates one new segment per class.
<li><b>Clean-up:</b> keep the largest island, drop small islands, fill holes (2D or 3D).
<li><b>Scope:</b> the whole volume or only the slice shown in the chosen view.
</ul>Masking settings (editable area, intensity range, overwrite) apply; Undo reverts one Apply.</html>""")

    def activate(self):
        self.sourceVolumeNodeChanged()
        self.timer.start(200)

    def deactivate(self):
        self.timer.stop()
        self.clearPreviewDisplayPipelines()

    # --- options panel ------------------------------------------------------------------------

    def setupOptionsFrame(self):
        self.thresholdSlider = ctk.ctkRangeWidget()
        self.thresholdSlider.spinBoxAlignment = qt.Qt.AlignTop
        self.thresholdSlider.singleStep = 0.01
        self.thresholdSlider.setToolTip(_("Voxels from the lower to the upper value (inclusive) are segmented."))
        self.scriptedEffect.addLabeledOptionsWidget(_("Range:"), self.thresholdSlider)
        self.histogramView = HistogramView()
        self.scriptedEffect.addOptionsWidget(self.histogramView.widget)

        self.presetComboBox = qt.QComboBox()
        self.presetComboBox.addItem(_("(choose a preset)"), "")
        for name, preset in presets.PRESETS.items():
            self.presetComboBox.addItem(_(preset.label), name)
            self.presetComboBox.setItemData(self.presetComboBox.count - 1, preset.description, qt.Qt.ToolTipRole)
        self.presetComboBox.setToolTip(_("Set the range from a preset: CT in HU, MRI as foreground percentiles."))
        self.scriptedEffect.addLabeledOptionsWidget(_("Preset:"), self.presetComboBox)

        self.methodComboBox = qt.QComboBox()
        for key, label in autothreshold.METHODS.items():
            self.methodComboBox.addItem(_(label), key)
        self.methodComboBox.addItem(_("Multi-Otsu (k classes)"), MULTI_OTSU)
        self.methodComboBox.setToolTip(_("Automatic method; the range becomes [threshold, maximum]. "
                                         "Multi-Otsu splits the volume into k classes, one new segment each."))
        self.classesSpinBox = qt.QSpinBox()
        self.classesSpinBox.setRange(2, 5)
        self.classesSpinBox.setToolTip(_("Number of multi-Otsu classes"))
        self.autoButton = qt.QPushButton(_("Set"))
        self.autoButton.setToolTip(_("Compute the threshold(s) with the selected method"))
        autoLayout = qt.QHBoxLayout()
        autoLayout.addWidget(self.methodComboBox, 1)
        autoLayout.addWidget(self.classesSpinBox)
        autoLayout.addWidget(self.autoButton)
        self.scriptedEffect.addLabeledOptionsWidget(_("Automatic:"), autoLayout)

        self.invertCheckBox = qt.QCheckBox(_("Invert (segment outside the range)"))
        self.scriptedEffect.addOptionsWidget(self.invertCheckBox)

        self.largestIslandCheckBox = qt.QCheckBox(_("Keep largest island"))
        self.minIslandSpinBox = qt.QDoubleSpinBox()
        self.minIslandSpinBox.setRange(0, 1e9)
        self.minIslandSpinBox.setSuffix(" mm³")
        self.minIslandSpinBox.setToolTip(_("Remove islands smaller than this (0: keep all)"))
        self.fillHolesCheckBox = qt.QCheckBox(_("Fill holes"))
        self.cleanup2DCheckBox = qt.QCheckBox(_("2D (each slice)"))
        self.cleanup2DCheckBox.setToolTip(_("Clean up each axial slice separately instead of in 3D"))
        cleanupLayout = qt.QFormLayout()
        cleanupLayout.addRow(self.largestIslandCheckBox, self.fillHolesCheckBox)
        cleanupLayout.addRow(_("Min island:"), self.minIslandSpinBox)
        cleanupLayout.addRow(self.cleanup2DCheckBox)
        cleanupGroupBox = ctk.ctkCollapsibleGroupBox()
        cleanupGroupBox.setTitle(_("Clean-up"))
        cleanupGroupBox.setLayout(cleanupLayout)
        cleanupGroupBox.collapsed = True
        self.scriptedEffect.addOptionsWidget(cleanupGroupBox)

        self.scopeComboBox = qt.QComboBox()
        self.scopeComboBox.addItem(_("Whole volume"), "volume")
        self.scopeComboBox.addItem(_("Current slice"), "slice")
        self.sliceViewComboBox = qt.QComboBox()
        self.sliceViewComboBox.setToolTip(_("Slice view whose current slice is thresholded"))
        scopeLayout = qt.QHBoxLayout()
        scopeLayout.addWidget(self.scopeComboBox, 1)
        scopeLayout.addWidget(self.sliceViewComboBox)
        self.scriptedEffect.addLabeledOptionsWidget(_("Scope:"), scopeLayout)

        self.applyButton = qt.QPushButton(_("Apply"))
        self.applyButton.objectName = self.__class__.__name__ + "Apply"
        self.applyButton.setToolTip(_("Write the previewed threshold into the segment (Undo reverts it)"))
        self.scriptedEffect.addOptionsWidget(self.applyButton)
        self.resultLabel = qt.QLabel("")
        self.scriptedEffect.addOptionsWidget(self.resultLabel)

        self.thresholdSlider.connect("valuesChanged(double,double)", self.updateMRMLFromGUI)
        self.presetComboBox.connect("activated(int)", self.onPreset)
        self.methodComboBox.connect("activated(int)", self.updateMRMLFromGUI)
        self.classesSpinBox.connect("valueChanged(int)", self.updateMRMLFromGUI)
        self.autoButton.connect("clicked()", self.onAutoThreshold)
        for checkBox in (self.invertCheckBox, self.largestIslandCheckBox, self.fillHolesCheckBox, self.cleanup2DCheckBox):
            checkBox.connect("toggled(bool)", self.updateMRMLFromGUI)
        self.minIslandSpinBox.connect("valueChanged(double)", self.updateMRMLFromGUI)
        self.scopeComboBox.connect("activated(int)", self.updateMRMLFromGUI)
        self.sliceViewComboBox.connect("activated(int)", self.updateMRMLFromGUI)
        self.applyButton.connect("clicked()", self.onApply)

    def setMRMLDefaults(self):
        for name, value in (("MinimumThreshold", 0.0), ("MaximumThreshold", 0.0), ("AutoThresholdMethod", "otsu"),
                            ("MultiOtsuClasses", 3), ("Invert", 0), ("LargestIsland", 0), ("MinIslandSizeMm3", 0.0),
                            ("FillHoles", 0), ("Cleanup2D", 0), ("Scope", "volume"), ("SliceView", "Red")):
            self.scriptedEffect.setParameterDefault(name, value)

    def sourceVolumeNodeChanged(self):
        image = self.scriptedEffect.sourceVolumeImageData()
        if not image or not hasattr(self, "thresholdSlider"):
            return
        lo, hi = image.GetScalarRange()
        self.thresholdSlider.setRange(lo, hi)
        self.thresholdSlider.singleStep = (hi - lo) / 1000.0 if hi > lo else 1.0
        if self.scriptedEffect.doubleParameter("MinimumThreshold") == self.scriptedEffect.doubleParameter("MaximumThreshold"):
            self.scriptedEffect.setParameter("MinimumThreshold", lo + (hi - lo) * 0.25)
            self.scriptedEffect.setParameter("MaximumThreshold", hi)
        self.classRanges = []
        self.histogramView.setVolumeArray(editor_apply.image_array(image))

    def layoutChanged(self):
        self.updatePreviewDisplayPipelines()

    def updateGUIFromMRML(self):
        e = self.scriptedEffect
        widgets = (self.thresholdSlider, self.methodComboBox, self.classesSpinBox, self.invertCheckBox,
                   self.largestIslandCheckBox, self.minIslandSpinBox, self.fillHolesCheckBox, self.cleanup2DCheckBox,
                   self.scopeComboBox, self.sliceViewComboBox)
        blocked = [w.blockSignals(True) for w in widgets]
        self.thresholdSlider.setMinimumValue(e.doubleParameter("MinimumThreshold"))
        self.thresholdSlider.setMaximumValue(e.doubleParameter("MaximumThreshold"))
        self.methodComboBox.setCurrentIndex(self.methodComboBox.findData(e.parameter("AutoThresholdMethod")))
        self.classesSpinBox.value = e.integerParameter("MultiOtsuClasses")
        self.classesSpinBox.enabled = e.parameter("AutoThresholdMethod") == MULTI_OTSU
        self.invertCheckBox.checked = bool(e.integerParameter("Invert"))
        self.largestIslandCheckBox.checked = bool(e.integerParameter("LargestIsland"))
        self.minIslandSpinBox.value = e.doubleParameter("MinIslandSizeMm3")
        self.fillHolesCheckBox.checked = bool(e.integerParameter("FillHoles"))
        self.cleanup2DCheckBox.checked = bool(e.integerParameter("Cleanup2D"))
        self.scopeComboBox.setCurrentIndex(self.scopeComboBox.findData(e.parameter("Scope")))
        layoutManager = slicer.app.layoutManager()
        names = list(layoutManager.sliceViewNames()) if layoutManager else []
        if [self.sliceViewComboBox.itemText(i) for i in range(self.sliceViewComboBox.count)] != names:
            self.sliceViewComboBox.clear()
            self.sliceViewComboBox.addItems(names)
        self.sliceViewComboBox.setCurrentIndex(max(0, self.sliceViewComboBox.findText(e.parameter("SliceView"))))
        self.sliceViewComboBox.enabled = e.parameter("Scope") == "slice"
        ranges = self.previewRanges()   # multi-Otsu classes: no single range to highlight
        self.histogramView.setRange(*(ranges[0] if len(ranges) == 1 else (1, 0)))
        for w, b in zip(widgets, blocked):
            w.blockSignals(b)

    def updateMRMLFromGUI(self, *args):
        e = self.scriptedEffect
        with slicer.util.NodeModify(e.parameterSetNode()):
            e.setParameter("MinimumThreshold", self.thresholdSlider.minimumValue)
            e.setParameter("MaximumThreshold", self.thresholdSlider.maximumValue)
            e.setParameter("AutoThresholdMethod", self.methodComboBox.itemData(self.methodComboBox.currentIndex))
            e.setParameter("MultiOtsuClasses", self.classesSpinBox.value)
            for name, checkBox in (("Invert", self.invertCheckBox), ("LargestIsland", self.largestIslandCheckBox),
                                   ("FillHoles", self.fillHolesCheckBox), ("Cleanup2D", self.cleanup2DCheckBox)):
                e.setParameter(name, int(checkBox.checked))
            e.setParameter("MinIslandSizeMm3", self.minIslandSpinBox.value)
            e.setParameter("Scope", self.scopeComboBox.itemData(self.scopeComboBox.currentIndex))
            e.setParameter("SliceView", self.sliceViewComboBox.currentText or "Red")
        if e.parameter("AutoThresholdMethod") != MULTI_OTSU or len(self.classRanges) != self.classesSpinBox.value:
            self.classRanges = []   # stale: press Set again to preview the classes

    # --- computations (all in MedSegCore) -------------------------------------------------------

    def sourceArray(self):
        image = self.scriptedEffect.sourceVolumeImageData()
        if image is None:
            raise MedSegError(_("Select a source volume first."))
        return editor_apply.image_array(image)

    def thresholdParameters(self):
        """ThresholdParameters from the effect's parameters (multi-Otsu: k levels, else the range)."""
        e = self.scriptedEffect
        cleanup = engine.CleanupOptions(largest_component=bool(e.integerParameter("LargestIsland")),
                                           min_size_mm3=e.doubleParameter("MinIslandSizeMm3"),
                                           fill_holes=bool(e.integerParameter("FillHoles")),
                                           per_slice=bool(e.integerParameter("Cleanup2D")))
        if e.parameter("AutoThresholdMethod") == MULTI_OTSU:   # classes partition the volume: no invert
            return engine.ThresholdParameters(levels=e.integerParameter("MultiOtsuClasses"), cleanup=cleanup)
        return engine.ThresholdParameters(lower=e.doubleParameter("MinimumThreshold"),
                                             upper=e.doubleParameter("MaximumThreshold"),
                                             invert=bool(e.integerParameter("Invert")), cleanup=cleanup)

    def onPreset(self, index):
        name = self.presetComboBox.itemData(index)
        if name:
            self._run(lambda: self._setRange(*presets.preset_range(name, self.sourceArray())))

    def onAutoThreshold(self):
        self.updateMRMLFromGUI()
        method = self.scriptedEffect.parameter("AutoThresholdMethod")
        if method == MULTI_OTSU:
            def compute():
                ranges = engine.resolve_ranges(self.sourceArray(), self.thresholdParameters())
                colors = nodes.DEFAULT_COLORS   # the colours Apply gives the class segments
                self.classRanges = [(lo, hi, colors[i % len(colors)]) for i, (_n, lo, hi, _c) in enumerate(ranges)]
                self.resultLabel.text = ", ".join(f"{lo:g}..{hi:g}" for lo, hi, _c in self.classRanges)
            self._run(compute)
        else:
            self._run(lambda: self._setRange(*engine.auto_range(self.sourceArray(), method)))

    def _setRange(self, lower, upper):
        with slicer.util.NodeModify(self.scriptedEffect.parameterSetNode()):
            self.scriptedEffect.setParameter("MinimumThreshold", lower)
            self.scriptedEffect.setParameter("MaximumThreshold", upper)

    def applyThreshold(self):
        """Apply with the current parameters; returns MedSegCore AppliedSegment results."""
        e = self.scriptedEffect
        scope, index, axis = e.parameter("Scope") or "volume", None, 2
        if scope == "slice":
            sliceWidget = slicer.app.layoutManager().sliceWidget(e.parameter("SliceView"))
            if sliceWidget is None:
                raise MedSegError(_("No slice view named {name}.").format(name=e.parameter("SliceView")))
            image = e.sourceVolumeImageData()
            if image is None:
                raise MedSegError(_("Select a source volume first."))
            imageToWorld = vtk.vtkMatrix4x4()
            slicer.vtkSlicerSegmentEditorLogic.ImageToWorldMatrix(image, e.parameterSetNode().GetSegmentationNode(), imageToWorld)
            axis, index = editor_apply.slice_from_plane(image, sliceWidget.mrmlSliceNode().GetSliceToRAS(), imageToWorld)
        return editor_apply.apply_threshold(editor_apply.EffectTarget(e), self.thresholdParameters(), scope, index, axis)

    def onApply(self):
        multi = self.scriptedEffect.parameter("AutoThresholdMethod") == MULTI_OTSU
        if not multi and self.scriptedEffect.parameterSetNode().GetSelectedSegmentID():
            if not self.scriptedEffect.confirmCurrentSegmentVisible():
                return
        results = self._run(self.applyThreshold)
        if results:
            self.resultLabel.text = "; ".join(_("{name}: {voxels} voxels, {ml:.2f} mL").format(
                name=r.name, voxels=r.voxels, ml=r.volume_ml) for r in results)

    def _run(self, function):
        """Run ``function`` with a wait cursor; a MedSegError is shown to the user, not raised."""
        qt.QApplication.setOverrideCursor(qt.Qt.WaitCursor)
        try:
            return function()
        except MedSegError as exc:
            message = str(exc)
        except Exception:
            logging.exception("MedSeg Threshold failed")
            message = _("MedSeg Threshold failed; see the Python console for details.")
        finally:
            qt.QApplication.restoreOverrideCursor()
        slicer.util.errorDisplay(message)
        return None

    # --- live preview (one pipeline per slice view, as Slicer's Threshold effect) ---------------

    def clearPreviewDisplayPipelines(self):
        for sliceWidget, pipeline in self.previewPipelines.items():
            self.scriptedEffect.removeActor2D(sliceWidget, pipeline.actor)
            manager = sliceWidget.sliceView().displayableManagerByClassName("vtkMRMLSegmentationsDisplayableManager2D")
            if pipeline.customRendererTag:
                manager.RemoveCustomSegmentRenderer(pipeline.customRendererTag)
        self.previewPipelines = {}
        self.previewedSegmentationDisplayNode = None
        self.previewedSegmentID = None

    def updatePreviewDisplayPipelines(self):
        layoutManager = slicer.app.layoutManager()
        names = layoutManager.sliceViewNames() if layoutManager and self.previewedSegmentationDisplayNode else []
        keep = []
        for name in names:
            sliceWidget = layoutManager.sliceWidget(name)
            composite = sliceWidget.sliceLogic().GetSliceCompositeNode()
            if (not sliceWidget.isVisible() or not (composite.GetBackgroundVolumeID() or composite.GetForegroundVolumeID())
                    or not self.scriptedEffect.segmentationDisplayableInView(sliceWidget.mrmlSliceNode())):
                continue
            keep.append(sliceWidget)
            if sliceWidget in self.previewPipelines:
                continue
            pipeline = reslice.ViewOverlay()
            self.previewPipelines[sliceWidget] = pipeline
            self.scriptedEffect.addActor2D(sliceWidget, pipeline.actor)
            manager = sliceWidget.sliceView().displayableManagerByClassName("vtkMRMLSegmentationsDisplayableManager2D")
            if self.previewedSegmentID and not manager.GetCustomSegmentRendererTag(
                    self.previewedSegmentationDisplayNode.GetID(), self.previewedSegmentID):
                pipeline.customRendererTag = manager.AddCustomSegmentRenderer(
                    self.previewedSegmentationDisplayNode.GetID(), self.previewedSegmentID)
        for sliceWidget in [w for w in self.previewPipelines if w not in keep]:
            pipeline = self.previewPipelines.pop(sliceWidget)
            self.scriptedEffect.removeActor2D(sliceWidget, pipeline.actor)
            if pipeline.customRendererTag:
                sliceWidget.sliceView().displayableManagerByClassName(
                    "vtkMRMLSegmentationsDisplayableManager2D").RemoveCustomSegmentRenderer(pipeline.customRendererTag)

    def previewRanges(self):
        if self.scriptedEffect.parameter("AutoThresholdMethod") == MULTI_OTSU:
            return self.classRanges
        color = (1.0, 1.0, 0.0)
        if self.previewedSegmentationDisplayNode and self.previewedSegmentID:
            # a vtkVector3d in Slicer (vtkMRMLSegmentationDisplayNode.h): index it, it cannot be sliced
            c = self.previewedSegmentationDisplayNode.GetSegmentColor(self.previewedSegmentID)
            color = (c[0], c[1], c[2])
        lower, upper = self.scriptedEffect.doubleParameter("MinimumThreshold"), self.scriptedEffect.doubleParameter("MaximumThreshold")
        return [(lower, upper, color)] if lower <= upper else []

    def preview(self):
        node = self.scriptedEffect.parameterSetNode()
        segmentationNode = node.GetSegmentationNode() if node else None
        displayNode = segmentationNode.GetDisplayNode() if segmentationNode else None
        segmentID = node.GetSelectedSegmentID() if node else None
        if displayNode != self.previewedSegmentationDisplayNode or segmentID != self.previewedSegmentID:
            self.clearPreviewDisplayPipelines()
            self.previewedSegmentationDisplayNode, self.previewedSegmentID = displayNode, segmentID
        self.updatePreviewDisplayPipelines()
        volumeNode = node.GetSourceVolumeNode() if node else None
        ranges = self.previewRanges()
        invert = bool(self.scriptedEffect.integerParameter("Invert")) and len(ranges) == 1
        opacity = 0.5 + self.previewState / (2.0 * self.previewSteps)
        for sliceWidget, pipeline in self.previewPipelines.items():
            if volumeNode is None or volumeNode.GetImageData() is None or not ranges:
                pipeline.actor.VisibilityOff()
                continue
            try:
                pipeline.update(volumeNode, sliceWidget.mrmlSliceNode(), ranges, invert, opacity)
            except MedSegError:
                pipeline.actor.VisibilityOff()
            sliceWidget.sliceView().scheduleRender()
        self.previewState += self.previewStep
        if self.previewState >= self.previewSteps or self.previewState <= 0:
            self.previewStep = -self.previewStep

