"""MedSegThreshold: threshold segmentation (range, presets, auto methods, multi-Otsu, masks, clean-up).

The module panel is a thin Qt layer over MedSegCore; the same calls back the ``medseg threshold``
command line.  The "MedSeg Threshold" Segment Editor effect is registered at startup.
"""
import logging
import os
import sys
from typing import Annotated


import slicer
import vtk
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.ScriptedLoadableModule import *  # noqa: F403
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.util import VTKObservationMixin
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode

# MedSegCore is installed beside this file (extension package) or one level up (a source clone
# added through "Additional module paths").
for _dir in (os.path.dirname(os.path.abspath(__file__)), os.path.dirname(os.path.dirname(os.path.abspath(__file__)))):
    if os.path.isdir(os.path.join(_dir, "MedSegCore")) and _dir not in sys.path:
        sys.path.append(_dir)

from MedSegCore.threshold import presets, engine, options  # noqa: E402
from MedSegCore.mrml import acquisition, segment_ops
from MedSegCore.errors import MedSegError  # noqa: E402
from SegmentEditorMedSegThresholdLib import EFFECT_SOURCE, registerEffect  # noqa: E402,F401
from SegmentEditorMedSegThresholdLib.HistogramView import HistogramView  # noqa: E402

METHODS = ["otsu", "huang", "isodata", "kittler_illingworth", "max_entropy", "moments", "renyi",
           "shanbhag", "triangle", "yen", "li"]


# (widget, its label, the range sources it applies to); multi-Otsu classes partition the volume: no invert
RANGE_SOURCE_CONTROLS = [
    ("lowerSpinBox", "inputsCollapsibleButtonLabel2", ("range",)),
    ("upperSpinBox", "inputsCollapsibleButtonLabel3", ("range",)),
    ("presetComboBox", "inputsCollapsibleButtonLabel4", ("preset",)),
    ("methodComboBox", "inputsCollapsibleButtonLabel5", ("method",)),
    ("levelsSpinBox", "inputsCollapsibleButtonLabel6", ("levels",)),
    ("invertCheckBox", "invertCheckBox", ("range", "preset", "method")),
]


class MedSegThreshold(ScriptedLoadableModule):  # noqa: F405
    """Module description and Segment Editor effect registration."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)  # noqa: F405
        self.parent.title = _("MedSeg Threshold")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = ["Segmentations"]
        self.parent.contributors = ["MedSeg developers"]
        self.parent.helpText = _("""Threshold a volume into segments: a range, a CT or MRI preset, an automatic
method (Otsu, Huang, IsoData, Kittler-Illingworth, Maximum entropy, Moments, Renyi, Shanbhag, Triangle,
Yen, Li) or multi-Otsu classes; optionally only inside a mask, with clean-up. The same engine backs the
"MedSeg Threshold" Segment Editor effect and the <code>medseg threshold</code> command.""")
        self.parent.acknowledgementText = _("MedSeg is open source (Apache-2.0).")
        slicer.app.connect("startupCompleted()", registerEffect)


@parameterNodeWrapper
class MedSegThresholdParameterNode:
    """Typed parameters of the module panel."""

    inputVolume: vtkMRMLScalarVolumeNode
    rangeSource: Annotated[str, Choice(["range", "preset", "method", "levels"])] = "range"
    lower: float = 0.0
    upper: float = 100.0
    preset: Annotated[str, Choice(list(presets.PRESETS))] = "ct-bone"
    method: Annotated[str, Choice(METHODS)] = "otsu"
    levels: Annotated[int, WithinRange(2, 5)] = 3
    invert: bool = False
    regularizeGeometry: bool = False
    maskSegmentation: vtkMRMLSegmentationNode
    maskSegmentName: str = ""
    maskFile: str = ""
    copyMaskAsSegment: bool = False
    largestComponent: bool = False
    minSizeMm3: Annotated[float, WithinRange(0, 1e9)] = 0.0
    fillHoles: bool = False
    perSlice: bool = False
    outputSegmentation: vtkMRMLSegmentationNode
    segmentName: str = ""
    replaceExisting: bool = False


class MedSegThresholdWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):  # noqa: F405
    """Panel: binds the .ui to the parameter node and calls the Logic on Apply."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)  # noqa: F405
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._histogramVolume = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)  # noqa: F405
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/MedSegThreshold.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = MedSegThresholdLogic()
        self.ui.presetComboBox.toolTip = "\n".join(f"{n}: {p.description}" for n, p in presets.PRESETS.items())
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.rangeSourceComboBox.connect("currentIndexChanged(int)", self.updateRangeSourceControls)
        self.histogramView = HistogramView()   # under Lower/Upper: the input volume's histogram
        self.ui.inputsCollapsibleButton.layout().insertRow(4, self.histogramView.widget)
        self.ui.inputVolumeSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onInputVolumeChanged)
        for spinBox in (self.ui.lowerSpinBox, self.ui.upperSpinBox):
            spinBox.connect("valueChanged(double)", self.updateHistogramRange)
        self.initializeParameterNode()
        self.updateRangeSourceControls()
        self.onInputVolumeChanged(self.ui.inputVolumeSelector.currentNode())

    def onInputVolumeChanged(self, volumeNode):
        """New input: its histogram, now and whenever its voxels change (a volume still loading
        has no image data yet; selectors pick a new volume as soon as it is added)."""
        if self._histogramVolume is not None:
            self.removeObserver(self._histogramVolume, slicer.vtkMRMLVolumeNode.ImageDataModifiedEvent,
                                self.onInputVolumeModified)
        self._histogramVolume = volumeNode
        if volumeNode is not None:
            self.addObserver(volumeNode, slicer.vtkMRMLVolumeNode.ImageDataModifiedEvent, self.onInputVolumeModified)
        self.onInputVolumeModified()

    def onInputVolumeModified(self, caller=None, event=None):
        from MedSegCore.mrml import nodes
        volumeNode = self._histogramVolume
        image = volumeNode.GetImageData() if volumeNode is not None else None
        ready = image is not None and image.GetPointData().GetScalars() is not None
        self.histogramView.setVolumeArray(nodes.volume_array(volumeNode)[0] if ready else None)
        self.updateHistogramRange()

    def updateHistogramRange(self):
        self.histogramView.setRange(self.ui.lowerSpinBox.value, self.ui.upperSpinBox.value)

    def updateRangeSourceControls(self):
        """Show only the controls of the chosen range source (as Slicer's Threshold effect does)."""
        source = self.ui.rangeSourceComboBox.currentText
        for name, label, sources in RANGE_SOURCE_CONTROLS:
            for widgetName in (name, label):
                getattr(self.ui, widgetName).visible = source in sources
        self.histogramView.widget.visible = source == "range"

    def cleanup(self):
        self.removeObservers()
        if self._parameterNode and self._parameterNodeGuiTag is not None:   # the first tag is 0
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        if self._parameterNode and self._parameterNodeGuiTag is not None:   # the first tag is 0
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None

    def onSceneStartClose(self, caller, event):
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            self._parameterNode.inputVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")

    def setParameterNode(self, inputParameterNode):
        if self._parameterNode and self._parameterNodeGuiTag is not None:   # the first tag is 0
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
        if self._parameterNode:
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateEnabled)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._updateEnabled)
            self._updateEnabled()

    # Panel controls of each option in MedSegCore.threshold.options.enabled_controls.
    CONTROLS = {"lower": "lowerSpinBox", "upper": "upperSpinBox", "preset": "presetComboBox",
                "method": "methodComboBox", "levels": "levelsSpinBox", "mask_segmentation": "maskSegmentationSelector",
                "mask_segment_name": "maskSegmentNameLineEdit", "mask_file": "maskFileLineEdit"}

    def _updateEnabled(self, caller=None, event=None):
        """Only the chosen range source's controls, and one kind of mask, are enabled (the rest would
        be ignored or conflict); the rule is MedSegCore's, shared with the CLI's refusals."""
        p = self._parameterNode
        if p is None:
            return
        enabled = options.enabled_controls(p.rangeSource, p.maskSegmentation is not None, bool(p.maskFile))
        for key, widget in self.CONTROLS.items():
            getattr(self.ui, widget).enabled = enabled[key]

    def onApplyButton(self):
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Threshold failed."), waitCursor=True):
            output, results = self.logic.apply(
                p.inputVolume, self.logic.parametersFromNode(p), p.outputSegmentation,
                maskSegmentation=p.maskSegmentation, maskSegmentName=p.maskSegmentName or None,
                maskFile=p.maskFile or None, copyMask=p.copyMaskAsSegment, replace=p.replaceExisting,
                regularize=p.regularizeGeometry)
            p.outputSegmentation = output
            self.ui.resultLabel.text = "\n".join(
                f"{r.name}: {r.lower:g} .. {r.upper:g} → {r.voxels} voxels, {r.volume_ml:.2f} mL" for r in results)


class MedSegThresholdLogic(ScriptedLoadableModuleLogic):  # noqa: F405
    """The module's computation: the same MedSegCore calls the ``medseg threshold`` CLI makes."""

    def getParameterNode(self):
        return MedSegThresholdParameterNode(super().getParameterNode())

    @staticmethod
    def parametersFromNode(p) -> engine.ThresholdParameters:
        """ThresholdParameters from the panel's parameter node."""
        src = p.rangeSource
        return engine.ThresholdParameters(
            lower=p.lower if src == "range" else None, upper=p.upper if src == "range" else None,
            preset=p.preset if src == "preset" else None, method=p.method if src == "method" else None,
            levels=p.levels if src == "levels" else None, invert=p.invert and src != "levels",
            name=p.segmentName or None,
            cleanup=engine.CleanupOptions(p.largestComponent, p.minSizeMm3, p.fillHoles, p.perSlice))

    def apply(self, volumeNode, params: engine.ThresholdParameters, segmentationNode=None,
              maskSegmentation=None, maskSegmentName=None, maskFile=None, copyMask=False, replace=False,
              regularize=False):
        """Threshold ``volumeNode`` into ``segmentationNode`` (a new node if None).

        The region of interest is a segment of ``maskSegmentation`` (all its segments if no name)
        or a mask file; ``copyMask`` also writes the mask in as segment "Mask".  Only the written
        segments change.  A volume under Slicer's DICOM acquisition (non-linear) transform is refused,
        or with ``regularize`` resampled onto a regular grid first.  Returns (segmentation node, results)."""
        if volumeNode is None:
            raise MedSegError("select an input volume")
        volumeNode = acquisition.volume_to_segment(volumeNode, regularize)
        roi = None
        if maskSegmentation is not None and maskFile:
            raise MedSegError("choose a mask segmentation or a mask file, not both")
        if maskSegmentation is not None:
            names = [maskSegmentName] if maskSegmentName else None
            from MedSegCore.mrml import nodes
            names = names or nodes.segment_names(maskSegmentation)
            if not names:
                raise MedSegError(f"mask segmentation '{maskSegmentation.GetName()}' has no segments")
            import numpy as np
            roi = np.logical_or.reduce([segment_ops.mask_from_segment(maskSegmentation, n, volumeNode) for n in names])
        elif maskFile:
            from MedSegCore.mrml import nodes
            roi = segment_ops.mask_from_file(maskFile, nodes.geometry_of(volumeNode))
        if copyMask and roi is None:
            raise MedSegError("copying the mask in needs a mask segmentation or a mask file")
        segmentationNode, results = segment_ops.apply_threshold(volumeNode, params, segmentationNode, roi, replace)
        if copyMask:
            segment_ops.copy_mask_as_segment(volumeNode, roi, "Mask", segmentationNode, replace=replace)
        logging.info("MedSegThreshold: %s", "; ".join(f"{r.name} {r.voxels} voxels" for r in results))
        return segmentationNode, results


class MedSegThresholdTest(ScriptedLoadableModuleTest):  # noqa: F405
    """Self-test (run by Slicer's SelfTests module and headless by the test suite)."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_voxel_counts_match_numpy()
        self.setUp()
        self.test_existing_segments_untouched()
        self.setUp()
        self.test_mask_file_and_copy()
        self.setUp()
        self.test_bad_input_leaves_scene_unchanged()

    def _volume(self):
        import numpy as np
        from MedSegCore.mrml import nodes
        from MedSegCore.image.geometry import Geometry

        rng = np.random.default_rng(7)
        array = rng.integers(-1000, 1500, size=(24, 40, 48)).astype(np.int16)
        geometry = Geometry((48, 40, 24), (0.8, 0.8, 2.5), (-20, 10, 5), [[0, -1, 0], [1, 0, 0], [0, 0, 1]])
        return array, geometry, nodes.add_volume_node(array, geometry, "synthetic")

    def test_voxel_counts_match_numpy(self):
        import numpy as np
        from MedSegCore.mrml import nodes

        self.delayDisplay("Threshold voxel counts against numpy")
        array, geometry, volume = self._volume()
        logic = MedSegThresholdLogic()
        seg, results = logic.apply(volume, engine.ThresholdParameters(lower=200, upper=700, name="Bone"))
        expected = np.count_nonzero((array >= 200) & (array <= 700))
        self.assertEqual(results[0].voxels, expected)
        written = nodes.segment_array(seg, nodes.segment_id_by_name(seg, "Bone"), volume)
        self.assertEqual(int(np.count_nonzero(written)), expected)
        self.assertTrue(np.array_equal(written, (array >= 200) & (array <= 700)))
        self.assertAlmostEqual(results[0].volume_ml, expected * 0.8 * 0.8 * 2.5 / 1000, places=6)
        _, inverted = logic.apply(volume, engine.ThresholdParameters(lower=200, upper=700, invert=True, name="Not"),
                                  seg)
        self.assertEqual(inverted[0].voxels, array.size - expected)

    def test_existing_segments_untouched(self):
        import numpy as np
        from MedSegCore.mrml import nodes

        self.delayDisplay("Writing into an existing segmentation touches only its own segment")
        array, geometry, volume = self._volume()
        logic = MedSegThresholdLogic()
        seg, _ = logic.apply(volume, engine.ThresholdParameters(lower=-1000, upper=0, name="Low"))
        before = nodes.segment_array(seg, nodes.segment_id_by_name(seg, "Low"), volume).copy()
        logic.apply(volume, engine.ThresholdParameters(lower=-500, upper=500, name="Mid"), seg)
        after = nodes.segment_array(seg, nodes.segment_id_by_name(seg, "Low"), volume)
        self.assertTrue(np.array_equal(before, after))
        self.assertEqual(nodes.segment_names(seg), ["Low", "Mid"])
        with self.assertRaises(MedSegError):
            logic.apply(volume, engine.ThresholdParameters(lower=0, upper=10, name="Low"), seg)
        self.assertTrue(np.array_equal(before, nodes.segment_array(seg, nodes.segment_id_by_name(seg, "Low"), volume)))

    def test_mask_file_and_copy(self):
        import tempfile

        import numpy as np
        from MedSegCore.image import io
        from MedSegCore.mrml import nodes

        self.delayDisplay("Threshold only inside a mask file, and copy the mask in as a segment")
        array, geometry, volume = self._volume()
        roi = np.zeros(geometry.shape, np.uint8)
        roi[:, :, :20] = 1
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "roi.nii.gz")
            io.write_volume(roi, geometry, path)
            seg, [r] = MedSegThresholdLogic().apply(
                volume, engine.ThresholdParameters(lower=200, upper=700, name="Inside"), maskFile=path, copyMask=True)
        self.assertEqual(r.voxels, int(np.count_nonzero((array >= 200) & (array <= 700) & (roi == 1))))
        self.assertEqual(nodes.segment_names(seg), ["Inside", "Mask"])
        self.assertTrue(np.array_equal(nodes.segment_array(seg, nodes.segment_id_by_name(seg, "Mask"), volume), roi == 1))

    def test_bad_input_leaves_scene_unchanged(self):
        self.delayDisplay("Bad input: clear errors, scene unchanged")
        _, _, volume = self._volume()
        logic = MedSegThresholdLogic()
        count = slicer.mrmlScene.GetNumberOfNodes()
        for params in (engine.ThresholdParameters(lower=10, upper=5),
                       engine.ThresholdParameters(lower=5000, upper=6000),
                       engine.ThresholdParameters(preset="no-such-preset")):
            with self.assertRaises(MedSegError):
                logic.apply(volume, params)
            self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), count)
