"""MedSegDNN: run MONAI U-Net models on loaded volumes, and evaluate segmentations against ground truth.

A thin Qt layer over MedSegCore.dnn (model cards, loading, inference) and MedSegCore.mrml.evaluation_tables.
torch and MONAI are not needed to load this module; they are installed on first use after the
user confirms.  Runs happen in a separate process (see MedSegCore/dnn/process.py for why).
"""
import logging
import os
import sys
from typing import Annotated

import slicer  # noqa: F401  (Slicer module files import it first)
from slicer.i18n import tr as _
from slicer.i18n import translate
from slicer.ScriptedLoadableModule import *  # noqa: F403
from slicer.parameterNodeWrapper import Choice, WithinRange, parameterNodeWrapper
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode, vtkMRMLTableNode

for _dir in (os.path.dirname(os.path.abspath(__file__)), os.path.dirname(os.path.dirname(os.path.abspath(__file__)))):
    if os.path.isdir(os.path.join(_dir, "MedSegCore")) and _dir not in sys.path:
        sys.path.append(_dir)

from MedSegCore.mrml import evaluation_tables, nodes  # noqa: E402
from MedSegCore.dnn import PredictOptions  # noqa: E402
from MedSegCore.mrml import acquisition, predictions
from MedSegCore.errors import MedSegError  # noqa: E402
from MedSegDNNLib.SelfTest import MedSegDNNTest  # noqa: E402,F401  (Slicer finds <Module>Test here)
from MedSegDNNLib.Widget import MedSegDNNWidget  # noqa: E402,F401  (Slicer finds <Module>Widget here)


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
    modelSource: Annotated[str, Choice(["default", "file or folder", "catalogue"])] = "default"
    catalogModel: str = ""
    modelPath: str = ""
    device: Annotated[str, Choice(["auto", "cpu", "cuda", "mps"])] = "auto"
    backend: Annotated[str, Choice(["auto", "torch", "onnxruntime", "openvino"])] = "auto"
    roi: str = ""
    overlap: Annotated[float, WithinRange(0.0, 0.95)] = 0.25
    swBatch: Annotated[int, WithinRange(1, 64)] = 4
    blend: Annotated[str, Choice(["gaussian", "constant"])] = "gaussian"
    regularizeGeometry: bool = False
    probabilities: bool = False
    largestComponent: bool = False
    fillHoles: bool = False
    outputSegmentation: vtkMRMLSegmentationNode
    referenceSegmentation: vtkMRMLSegmentationNode
    predictedSegmentation: vtkMRMLSegmentationNode
    metricsTable: vtkMRMLTableNode
    createDisagreement: bool = True
    trainDims: Annotated[str, Choice(["3", "2"])] = "3"
    trainEpochs: Annotated[int, WithinRange(1, 10000)] = 50
    trainInit: Annotated[str, Choice(["none", "default"])] = "none"
    trainFreezeEncoder: bool = False
    trainOutput: str = ""


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
        if p.modelSource == "catalogue":
            from MedSegCore.catalog import resolve_model

            if not p.catalogModel:
                raise MedSegError("choose a model of the catalogue (Model catalogue section)")
            return resolve_model(p.catalogModel)
        if not p.modelPath:
            raise MedSegError("choose a model file (TorchScript or checkpoint) or a MONAI bundle folder")
        return p.modelPath

    @staticmethod
    def channelNames(model) -> list:
        """Input channel names of a MONAI bundle (metadata channel_def); [] for other models."""
        from MedSegCore.dnn.bundle import input_channel_names, is_bundle

        return input_channel_names(model) if model != "default" and is_bundle(model) else []

    @staticmethod
    def bundleTrustQuestion(model):
        """The question to ask before a bundle's first run, or None (not a bundle, or trusted already)."""
        from MedSegCore.dnn.bundle import is_bundle, question_for

        return question_for(model) if model != "default" and is_bundle(model) else None

    @staticmethod
    def untrustedBundle(model):
        """The BundleInfo (name, version, authors, content hash) of the bundle in ``model`` if its
        first run must be confirmed; None if ``model`` is no bundle or the bundle is trusted."""
        from MedSegCore.dnn.bundle import bundle_info, is_bundle, is_trusted

        if model == "default" or not is_bundle(model):
            return None
        info = bundle_info(model)
        return None if is_trusted(info) else info

    @staticmethod
    def trustQuestion(info) -> str:
        """The confirmation shown for ``info`` (name, version, authors, content hash, folder)."""
        from MedSegCore.dnn.bundle import trust_question

        return trust_question(info)

    @staticmethod
    def trustBundle(model, info=None) -> None:
        """Remember the bundle in ``model`` as trusted by its content hash: ``info``'s, the one the
        user was shown, if given (a bundle changed since then is asked about again)."""
        from MedSegCore.dnn.bundle import bundle_info, remember

        remember(info or bundle_info(model))

    @staticmethod
    def optionsFromNode(p) -> PredictOptions:
        roi = None
        if p.roi.strip():
            try:
                roi = tuple(int(v) for v in p.roi.replace("x", ",").split(","))
            except ValueError:
                raise MedSegError(f"ROI '{p.roi}': expected three integers, e.g. 96,96,96") from None
        return PredictOptions(roi=roi, overlap=p.overlap, sw_batch=p.swBatch, blend=p.blend, device=p.device,
                              backend=p.backend, probabilities=p.probabilities, largest_component=p.largestComponent,
                              fill_holes=p.fillHoles)

    @staticmethod
    def volumesToSegment(volumeNodes, regularize=False) -> list:
        """The input volumes, each refused if it lies under Slicer's DICOM acquisition (non-linear)
        transform, or with ``regularize`` replaced by a copy resampled onto a regular grid."""
        if not volumeNodes or any(v is None for v in volumeNodes):
            raise MedSegError("select an input volume")
        return [acquisition.volume_to_segment(v, regularize) for v in volumeNodes]

    @staticmethod
    def inputs(volumeNodes) -> list:
        """(array, Geometry) of each input volume (one per model input channel)."""
        return [nodes.volume_array(v) for v in MedSegDNNLogic.volumesToSegment(volumeNodes)]

    def memoryEstimateText(self, volumeNode, model, options) -> str:
        from MedSegCore.dnn import card as cards, estimate_memory, resolve_device
        from MedSegCore.dnn.loading import DEFAULT_MODEL_DIR

        card = cards.load_card(os.path.join(DEFAULT_MODEL_DIR, "card.json")) if model == "default" else None
        if card is None:
            return "Starting…"
        roi = options.roi or card.roi_size
        estimate = estimate_memory(card, nodes.geometry_of(volumeNode).size, roi, options.sw_batch,
                                   resolve_device(options.device))
        return f"Starting… estimated memory {estimate.text}"

    @staticmethod
    def catalogRows():
        """(rows, problem) for the catalogue selector (MedSegCore.catalog.panel); may wait on the network."""
        from MedSegCore.catalog import panel

        return panel.rows()

    @staticmethod
    def startModelInstall(name, popen=None):
        """Download and install catalogue model ``name`` in a child process; poll the InstallProcess."""
        from MedSegCore.catalog.worker import InstallProcess

        process = InstallProcess(**({"popen": popen} if popen else {}))
        process.start(name)
        return process

    def segment(self, volumeNodes, model="default", options=None, segmentationNode=None, progress=None, cancel=None,
                regularize=False):
        """Synchronous run in this process: returns (segmentation node, Prediction).  ``regularize``:
        see :meth:`volumesToSegment`."""
        from MedSegCore.dnn import predict

        volumeNodes = self.volumesToSegment(volumeNodes, regularize)
        inputs = self.inputs(volumeNodes)
        prediction = predict(inputs, model, options or PredictOptions(), progress=progress, cancel=cancel)
        segmentationNode = self._write(prediction.labelmap, prediction.labels, prediction.probabilities,
                                       volumeNodes[0], segmentationNode, prediction.model_name, prediction.geometry)
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
            node = self._write(labelmap, labels, probs if probabilities else None, volumeNode, segmentationNode,
                               (summary.get("model") or [""])[0], summary.get("labelmap_geometry"))
        finally:
            process.cleanup()
        return node, summary["messages"]

    def _write(self, labelmap, labels, probabilities, volumeNode, segmentationNode, modelName="", geometry=None):
        from types import SimpleNamespace

        geometry = geometry or nodes.geometry_of(volumeNode)     # a bundle without Invertd: its own grid
        result = SimpleNamespace(labelmap=labelmap, labels=labels, probabilities=probabilities, model_name=modelName)
        node, self._undo = predictions.write_prediction(result, geometry, volumeNode, segmentationNode,
                                                  f"{volumeNode.GetName()} DNN")
        if probabilities:
            predictions.add_probability_volumes(result, geometry, volumeNode.GetName())
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
        rows, pred, ref, geometry = evaluation_tables.evaluate_nodes(predictedNode, referenceNode, mapping)
        table = evaluation_tables.metrics_table(rows, tableNode)
        disagreement = None
        if createDisagreement:
            disagreement = evaluation_tables.disagreement_segmentation(
                rows, pred, ref, geometry, f"{predictedNode.GetName()} vs {referenceNode.GetName()}")
        logging.info("MedSegDNN evaluation: %s", "; ".join(f"{r.segment} Dice {r.dice:.3f}" for r in rows))
        return table, disagreement

    # -- training ---------------------------------------------------------------------------
    @staticmethod
    def trainingConfigFromNode(p, **overrides):
        """TrainConfig from the panel (2D: 96x96 slice patches, 3D: 64^3 patches)."""
        from MedSegCore.train import TrainConfig

        dims = int(p.trainDims)
        config = TrainConfig(dims=dims, epochs=p.trainEpochs, patch=[96, 96] if dims == 2 else [64, 64, 64],
                             init=None if p.trainInit == "none" else p.trainInit,
                             freeze_encoder=p.trainFreezeEncoder, device=p.device)
        return config.updated(**overrides) if overrides else config

    def startTraining(self, segmentationNodes, outputFolder, config, overwrite=False, popen=None):
        """Train on scene segmentations (each with its source volume) in a child process; poll the
        returned TrainingProcess and call finishTraining when it has finished."""
        from MedSegCore.train.process import TrainingProcess
        from MedSegCore.mrml.training_cases import cases_from_segmentations

        if not outputFolder:
            raise MedSegError("choose an output folder for the trained model")
        process = TrainingProcess(**({"popen": popen} if popen else {}))
        process.start(cases_from_segmentations(segmentationNodes), outputFolder, config, overwrite)
        return process

    def updateLearningCurve(self, process, tableNode=None, chartNode=None):
        """Table and plot chart nodes of the run's loss and validation Dice per epoch."""
        from MedSegCore.mrml.training_cases import learning_curve_nodes

        return learning_curve_nodes(process.history, tableNode, chartNode)

    def finishTraining(self, process, parameterNode=None):
        """Check the run ended well; select the new model in the panel.  Returns the model folder."""
        try:
            if process.error is not None:
                raise MedSegError(f"training failed: {process.error}")
            if parameterNode is not None:
                parameterNode.modelSource = "file or folder"
                parameterNode.modelPath = process.output
            return process.output
        finally:
            process.cleanup()

