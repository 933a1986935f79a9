"""MedSegDNN: run MONAI U-Net models on loaded volumes, and evaluate segmentations against ground truth.

A thin Qt layer over MedSegCore.dnn (model cards, loading, inference) and MedSegCore.evaluation_nodes.
torch and MONAI are not needed to load this module; they are installed on first use after the
user confirms.  Runs happen in a separate process (see MedSegCore/dnn/process.py for why).
"""
import logging
import os
import sys
from typing import Annotated

import slicer
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.ScriptedLoadableModule import *  # noqa: F403
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer.util import VTKObservationMixin
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode, vtkMRMLTableNode

for _dir in (os.path.dirname(os.path.abspath(__file__)), os.path.dirname(os.path.dirname(os.path.abspath(__file__)))):
    if os.path.isdir(os.path.join(_dir, "MedSegCore")) and _dir not in sys.path:
        sys.path.append(_dir)

from MedSegCore import evaluation_nodes, mrml  # noqa: E402
from MedSegCore.dnn import PredictOptions, dependencies, nodes  # noqa: E402
from MedSegCore.errors import MedSegError  # noqa: E402


class MedSegDNN(ScriptedLoadableModule):  # noqa: F405
    """Module description."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)  # noqa: F405
        self.parent.title = _("MedSeg DNN")
        self.parent.categories = [translate("qSlicerAbstractCoreModule", "Segmentation")]
        self.parent.dependencies = ["Segmentations"]
        self.parent.contributors = ["MedSeg developers"]
        self.parent.helpText = _("""Deep-learning segmentation with MONAI U-Nets: the bundled brain-tissue model
(a demonstration, not for clinical use), your own TorchScript file, state-dict checkpoint with a model card,
or MONAI bundle. Runs on CUDA when available, otherwise on the CPU, in a separate process with progress and
Cancel. The Evaluation section compares any two segmentations (Dice, IoU, HD95, ...).""")
        self.parent.acknowledgementText = _("MedSeg is open source (Apache-2.0). Built on MONAI and PyTorch.")


@parameterNodeWrapper
class MedSegDNNParameterNode:
    """Typed parameters of the panel."""

    inputVolume: vtkMRMLScalarVolumeNode
    modelSource: Annotated[str, Choice(["default", "file or folder"])] = "default"
    modelPath: str = ""
    device: Annotated[str, Choice(["auto", "cpu", "cuda", "mps"])] = "auto"
    roi: str = ""
    overlap: Annotated[float, WithinRange(0.0, 0.95)] = 0.25
    swBatch: Annotated[int, WithinRange(1, 64)] = 4
    blend: Annotated[str, Choice(["gaussian", "constant"])] = "gaussian"
    probabilities: bool = False
    largestComponent: bool = False
    fillHoles: bool = False
    outputSegmentation: vtkMRMLSegmentationNode
    referenceSegmentation: vtkMRMLSegmentationNode
    predictedSegmentation: vtkMRMLSegmentationNode
    metricsTable: vtkMRMLTableNode
    createDisagreement: bool = True


class MedSegDNNWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):  # noqa: F405
    """Panel: parameter node binding, a timer polling the inference process, buttons calling the Logic."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)  # noqa: F405
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._run = None
        self._timer = None

    def setup(self):
        import qt

        ScriptedLoadableModuleWidget.setup(self)  # noqa: F405
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/MedSegDNN.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = MedSegDNNLogic()
        self._timer = qt.QTimer()
        self._timer.setInterval(200)
        self._timer.timeout.connect(self.onPoll)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApply)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancel)
        self.ui.undoButton.connect("clicked(bool)", self.onUndo)
        self.ui.installButton.connect("clicked(bool)", self.onInstall)
        self.ui.evaluateButton.connect("clicked(bool)", self.onEvaluate)
        self.ui.exportCsvButton.connect("clicked(bool)", self.onExportCsv)
        self.ui.cancelButton.enabled = False
        self.ui.dependencyLabel.text = dependencies.status(check_cuda=False).message()
        self.initializeParameterNode()

    def cleanup(self):
        if self._run is not None:
            self._run.cancel()
        if self._timer is not None:
            self._timer.stop()
        self.removeObservers()
        if self._parameterNode and self._parameterNodeGuiTag:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        if self._parameterNode and self._parameterNodeGuiTag:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None

    def onSceneStartClose(self, caller, event):
        self.onCancel()
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            self._parameterNode.inputVolume = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")

    def setParameterNode(self, inputParameterNode):
        if self._parameterNode and self._parameterNodeGuiTag:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)

    def _confirm(self, text):
        return slicer.util.confirmOkCancelDisplay(text, "MedSeg DNN")

    def onInstall(self):
        with slicer.util.tryWithErrorDisplay(_("Installing PyTorch/MONAI failed."), waitCursor=True):
            self.ui.dependencyLabel.text = dependencies.install_in_slicer(self._confirm).message()

    def onApply(self):
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Segmentation failed to start."), waitCursor=True):
            if not dependencies.status(check_cuda=False).ready:
                dependencies.install_in_slicer(self._confirm)
            status = dependencies.status()
            self.ui.dependencyLabel.text = status.message()
            self._run = self.logic.startSegmentation([p.inputVolume], self.logic.modelFromNode(p),
                                                     self.logic.optionsFromNode(p))
            self.ui.statusLabel.text = self.logic.memoryEstimateText(p.inputVolume, self.logic.modelFromNode(p),
                                                                     self.logic.optionsFromNode(p))
            self.ui.applyButton.enabled, self.ui.cancelButton.enabled = False, True
            self.ui.progressBar.value = 0
            self._timer.start()

    def onPoll(self):
        run = self._run
        if run is None:
            return
        run.poll()
        eta = run.eta()
        self.ui.progressBar.value = int(100 * run.progress)
        self.ui.statusLabel.text = (f"{run.text}\nElapsed {run.elapsed():.0f} s"
                                    + (f", about {eta:.0f} s left" if eta is not None else ""))
        if not run.finished:
            return
        self._timer.stop()
        self._run = None
        self.ui.applyButton.enabled, self.ui.cancelButton.enabled = True, False
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Segmentation failed."), waitCursor=True):
            segmentation, messages = self.logic.finishSegmentation(run, p.inputVolume, p.outputSegmentation,
                                                                    p.probabilities)
            p.outputSegmentation = segmentation
            self.ui.statusLabel.text = "\n".join(messages + [f"Done in {run.elapsed():.1f} s."])

    def onCancel(self):
        if self._run is not None:
            self._run.cancel()
            self._run = None
            self._timer.stop()
            self.ui.applyButton.enabled, self.ui.cancelButton.enabled = True, False
            self.ui.statusLabel.text = _("Cancelled; the scene was not changed.")

    def onUndo(self):
        with slicer.util.tryWithErrorDisplay(_("Undo failed.")):
            self.logic.undoLastRun()
            self.ui.statusLabel.text = _("Last result undone.")

    def onEvaluate(self):
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Evaluation failed."), waitCursor=True):
            table, _disagreement = self.logic.evaluate(p.predictedSegmentation, p.referenceSegmentation,
                                                        p.metricsTable, p.createDisagreement)
            p.metricsTable = table
            self.ui.metricsTableView.setMRMLTableNode(table)

    def onExportCsv(self):
        import qt

        p = self._parameterNode
        if not p.metricsTable:
            return
        path = qt.QFileDialog.getSaveFileName(None, _("Export metrics"), "metrics.csv", "CSV (*.csv)")
        if path:
            with slicer.util.tryWithErrorDisplay(_("Export failed.")):
                evaluation_nodes.save_table_csv(p.metricsTable, path)


class MedSegDNNLogic(ScriptedLoadableModuleLogic):  # noqa: F405
    """Everything the panel does, callable without it (tests use the synchronous ``segment``)."""

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)  # noqa: F405
        self._undo = None

    def getParameterNode(self):
        return MedSegDNNParameterNode(super().getParameterNode())

    @staticmethod
    def modelFromNode(p) -> str:
        if p.modelSource == "default":
            return "default"
        if not p.modelPath:
            raise MedSegError("choose a model file (TorchScript or checkpoint) or a MONAI bundle folder")
        return p.modelPath

    @staticmethod
    def optionsFromNode(p) -> PredictOptions:
        roi = None
        if p.roi.strip():
            try:
                roi = tuple(int(v) for v in p.roi.replace("x", ",").split(","))
            except ValueError:
                raise MedSegError(f"ROI '{p.roi}': expected three integers, e.g. 96,96,96") from None
        return PredictOptions(roi=roi, overlap=p.overlap, sw_batch=p.swBatch, blend=p.blend, device=p.device,
                              probabilities=p.probabilities, largest_component=p.largestComponent,
                              fill_holes=p.fillHoles)

    @staticmethod
    def inputs(volumeNodes) -> list:
        """(array, Geometry) of each input volume (one per model input channel)."""
        if not volumeNodes or any(v is None for v in volumeNodes):
            raise MedSegError("select an input volume")
        return [mrml.volume_array(v) for v in volumeNodes]

    def memoryEstimateText(self, volumeNode, model, options) -> str:
        from MedSegCore.dnn import card as cards, estimate_memory, resolve_device
        from MedSegCore.dnn.loading import DEFAULT_MODEL_DIR

        card = cards.load_card(os.path.join(DEFAULT_MODEL_DIR, "card.json")) if model == "default" else None
        if card is None:
            return "Starting…"
        roi = options.roi or card.roi_size
        estimate = estimate_memory(card, mrml.geometry_of(volumeNode).size, roi, options.sw_batch,
                                   resolve_device(options.device))
        return f"Starting… estimated memory {estimate.text}"

    def segment(self, volumeNodes, model="default", options=None, segmentationNode=None, progress=None, cancel=None):
        """Synchronous run in this process: returns (segmentation node, Prediction)."""
        from MedSegCore.dnn import predict

        inputs = self.inputs(volumeNodes)
        prediction = predict(inputs, model, options or PredictOptions(), progress=progress, cancel=cancel)
        segmentationNode = self._write(prediction.labelmap, prediction.labels, prediction.probabilities,
                                       volumeNodes[0], segmentationNode)
        return segmentationNode, prediction

    def startSegmentation(self, volumeNodes, model="default", options=None, popen=None):
        """Start a run in a separate process; poll the returned InferenceProcess, then call finishSegmentation."""
        from MedSegCore.dnn.process import InferenceProcess

        process = InferenceProcess(**({"popen": popen} if popen else {}))
        process.start(self.inputs(volumeNodes), model, options or PredictOptions())
        return process

    def finishSegmentation(self, process, volumeNode, segmentationNode=None, probabilities=False):
        """Write a finished process's result into the scene; returns (segmentation node, messages)."""
        from MedSegCore.dnn.card import Label

        try:
            labelmap, probs, summary = process.result()
            labels = [Label(lab["value"], lab["name"], tuple(lab["color"]), lab.get("terminology"))
                      for lab in summary["labels"]]
            node = self._write(labelmap, labels, probs if probabilities else None, volumeNode, segmentationNode)
        finally:
            process.cleanup()
        return node, summary["messages"]

    def _write(self, labelmap, labels, probabilities, volumeNode, segmentationNode):
        from types import SimpleNamespace

        geometry = mrml.geometry_of(volumeNode)
        result = SimpleNamespace(labelmap=labelmap, labels=labels, probabilities=probabilities)
        node, self._undo = nodes.write_prediction(result, geometry, volumeNode, segmentationNode,
                                                  f"{volumeNode.GetName()} DNN")
        if probabilities:
            nodes.add_probability_volumes(result, geometry, volumeNode.GetName())
        return node

    def undoLastRun(self):
        """Restore the segments the last run replaced (a new node from the last run is removed)."""
        if self._undo is None:
            raise MedSegError("nothing to undo")
        self._undo.restore()
        self._undo = None

    def evaluate(self, predictedNode, referenceNode, tableNode=None, createDisagreement=True, mapping=None):
        """Metrics of ``predictedNode`` against ``referenceNode`` into a table node (and optionally a
        disagreement segmentation with false positives and negatives).  Returns (table, disagreement)."""
        rows, pred, ref, geometry = evaluation_nodes.evaluate_nodes(predictedNode, referenceNode, mapping)
        table = evaluation_nodes.metrics_table(rows, tableNode)
        disagreement = None
        if createDisagreement:
            disagreement = evaluation_nodes.disagreement_segmentation(
                rows, pred, ref, geometry, f"{predictedNode.GetName()} vs {referenceNode.GetName()}")
        logging.info("MedSegDNN evaluation: %s", "; ".join(f"{r.segment} Dice {r.dice:.3f}" for r in rows))
        return table, disagreement


class MedSegDNNTest(ScriptedLoadableModuleTest):  # noqa: F405
    """Self-test: inference (synchronous and in a process, cancel), writing and undo, evaluation."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        tests = [self.test_evaluation_table_and_disagreement]
        if dependencies.status(check_cuda=False).ready:
            tests += [self.test_default_model_writes_card_segments, self.test_existing_node_replace_and_undo,
                      self.test_process_run_matches_and_cancel_leaves_scene]
        else:
            logging.warning("MedSegDNNTest: PyTorch/MONAI not installed; inference tests skipped")
        for test in tests:
            self.setUp()
            test()

    def _volume(self):
        import numpy as np
        from MedSegCore.geometry import Geometry

        rng = np.random.default_rng(3)
        array = rng.normal(100, 20, size=(24, 28, 32)).astype(np.float32)
        array[6:18, 8:20, 10:22] += 150
        geometry = Geometry((32, 28, 24), (1.0, 1.0, 1.0), (-16, -14, -12), [[-1, 0, 0], [0, -1, 0], [0, 0, 1]])
        return mrml.add_volume_node(array, geometry, "synthetic")

    def test_default_model_writes_card_segments(self):
        import numpy as np

        self.delayDisplay("Default model: segments named and coloured from the model card")
        volume = self._volume()
        seg, prediction = MedSegDNNLogic().segment([volume], "default", PredictOptions(device="cpu", sw_batch=2))
        names = [lab.name for lab in prediction.labels]
        self.assertEqual(mrml.segment_names(seg), names)
        for lab in prediction.labels:
            written = mrml.segment_array(seg, mrml.segment_id_by_name(seg, lab.name), volume)
            self.assertTrue(np.array_equal(written, prediction.labelmap == lab.value))
            color = seg.GetSegmentation().GetSegment(mrml.segment_id_by_name(seg, lab.name)).GetColor()
            self.assertTrue(np.allclose(color, lab.color, atol=1e-6))
        self.assertEqual(prediction.labelmap.shape, mrml.volume_array(volume)[0].shape)

    def test_existing_node_replace_and_undo(self):
        import numpy as np

        self.delayDisplay("Writing into an existing segmentation replaces only the model's segments; undo")
        volume = self._volume()
        geometry = mrml.geometry_of(volume)
        seg = mrml.new_segmentation_node("Existing", volume)
        mine = np.zeros(geometry.shape, bool)
        mine[:4] = True
        other = np.zeros(geometry.shape, bool)
        other[-3:] = True
        mrml.write_segment(seg, mine, geometry, "Grey matter")
        mrml.write_segment(seg, other, geometry, "Tumour")
        logic = MedSegDNNLogic()
        _, prediction = logic.segment([volume], "default", PredictOptions(device="cpu", sw_batch=2), seg)
        self.assertEqual(mrml.segment_names(seg), ["Grey matter", "Tumour", "White matter"])
        self.assertTrue(np.array_equal(mrml.segment_array(seg, mrml.segment_id_by_name(seg, "Tumour"), volume), other))
        self.assertTrue(np.array_equal(mrml.segment_array(seg, mrml.segment_id_by_name(seg, "Grey matter"), volume),
                                       prediction.labelmap == 1))
        logic.undoLastRun()
        self.assertEqual(mrml.segment_names(seg), ["Grey matter", "Tumour"])
        self.assertTrue(np.array_equal(mrml.segment_array(seg, mrml.segment_id_by_name(seg, "Grey matter"), volume),
                                       mine))
        with self.assertRaises(MedSegError):
            logic.undoLastRun()

    def test_process_run_matches_and_cancel_leaves_scene(self):
        import numpy as np

        self.delayDisplay("Inference in a separate process: same result; Cancel leaves the scene as it was")
        volume = self._volume()
        logic = MedSegDNNLogic()
        options = PredictOptions(device="cpu", sw_batch=2)
        _, direct = MedSegDNNLogic().segment([volume], "default", options)
        nodes_before = slicer.mrmlScene.GetNumberOfNodes()
        run = logic.startSegmentation([volume], "default", options)
        workdir = run.workdir
        run.cancel()
        self.assertEqual(slicer.mrmlScene.GetNumberOfNodes(), nodes_before)
        self.assertFalse(os.path.exists(workdir))
        run = logic.startSegmentation([volume], "default", options)
        run.wait(timeout=300)
        self.assertGreater(run.progress, 0.5)
        seg, messages = logic.finishSegmentation(run, volume)
        for value, name in ((1, "Grey matter"), (2, "White matter")):
            written = mrml.segment_array(seg, mrml.segment_id_by_name(seg, name), volume)
            self.assertTrue(np.array_equal(written, direct.labelmap == value))
        self.assertTrue(any("not trained" in m for m in messages))
        self.assertFalse(os.path.exists(run.workdir))

    def test_evaluation_table_and_disagreement(self):
        import numpy as np

        self.delayDisplay("Evaluation: metrics table and disagreement segmentation")
        volume = self._volume()
        geometry = mrml.geometry_of(volume)
        ref, pred = np.zeros(geometry.shape, bool), np.zeros(geometry.shape, bool)
        ref[4:12, 4:12, 4:12] = True                 # 512 voxels
        pred[4:12, 4:12, 6:14] = True                # 384 overlap, 128 FP, 128 FN
        ref_node = mrml.new_segmentation_node("Reference", volume)
        pred_node = mrml.new_segmentation_node("Prediction", volume)
        mrml.write_segment(ref_node, ref, geometry, "Lesion")
        mrml.write_segment(pred_node, pred, geometry, "Lesion")
        table, disagreement = MedSegDNNLogic().evaluate(pred_node, ref_node)
        self.assertEqual(table.GetNumberOfRows(), 1)
        dice_column = evaluation_nodes.COLUMNS.index("dice")
        self.assertAlmostEqual(float(table.GetCellText(0, dice_column)), 2 * 384 / 1024, places=5)
        fp = mrml.segment_array(disagreement, mrml.segment_id_by_name(disagreement, "Lesion false positive"), volume)
        fn = mrml.segment_array(disagreement, mrml.segment_id_by_name(disagreement, "Lesion false negative"), volume)
        self.assertEqual((int(fp.sum()), int(fn.sum())), (128, 128))
        import tempfile
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "metrics.csv")
            evaluation_nodes.save_table_csv(table, path)
            import csv
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
            self.assertEqual(len(rows), 1)
            self.assertEqual(rows[0]["segment"], "Lesion")
            self.assertAlmostEqual(float(rows[0]["dice"]), 0.75, places=5)
