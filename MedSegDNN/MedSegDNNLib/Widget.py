"""The MedSegDNN panel: binds the .ui to the typed parameter node and calls MedSegDNNLogic.

No computation here: every button calls the Logic; runs are polled with a QTimer.
"""

import slicer
from slicer.i18n import tr as _
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleWidget
from slicer.util import VTKObservationMixin

from MedSegCore.mrml import evaluation_tables
from MedSegCore.dnn import dependencies
from MedSegCore.mrml.torch_install import install_in_slicer


class MedSegDNNWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """Panel: parameter node binding, a timer polling the inference process, buttons calling the Logic."""

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._run = None
        self._timer = None
        self._training = None
        self._curve = (None, None)

    def setup(self):
        import qt

        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/MedSegDNN.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        from MedSegDNN import MedSegDNNLogic

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
        self.ui.startTrainingButton.connect("clicked(bool)", self.onStartTraining)
        self.ui.stopTrainingButton.connect("clicked(bool)", self.onStopTraining)
        self.ui.cancelButton.enabled = False
        self.ui.stopTrainingButton.enabled = False
        self.ui.dependencyLabel.text = dependencies.status(check_cuda=False).message()
        self.initializeParameterNode()

    def cleanup(self):
        if self._run is not None:
            self._run.cancel()
        if self._training is not None:
            self._training.cancel()
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
            self.ui.dependencyLabel.text = install_in_slicer(self._confirm).message()

    def onApply(self):
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Segmentation failed to start."), waitCursor=True):
            if not dependencies.status(check_cuda=False).ready:
                install_in_slicer(self._confirm)
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
        self._pollTraining()
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
        if self._training is None:
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
                evaluation_tables.save_table_csv(p.metricsTable, path)

    def onStartTraining(self):
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Training failed to start."), waitCursor=True):
            if not dependencies.status(check_cuda=False).ready:
                install_in_slicer(self._confirm)
            nodes = list(self.ui.trainingSegmentationsSelector.checkedNodes())
            self._training = self.logic.startTraining(nodes, p.trainOutput, self.logic.trainingConfigFromNode(p))
            self._curve = (None, None)
            self.ui.startTrainingButton.enabled, self.ui.stopTrainingButton.enabled = False, True
            self.ui.trainingProgressBar.value = 0
            self._timer.start()

    def onStopTraining(self):
        if self._training is not None:
            self._training.stop()
            self.ui.trainingStatusLabel.text = _("Stopping after the current step; the best model so far is kept.")

    def _pollTraining(self):
        run = self._training
        if run is None:
            return
        epochs_before = len(run.history)
        run.poll()
        self.ui.trainingProgressBar.value = int(100 * run.progress)
        self.ui.trainingStatusLabel.text = run.text
        if len(run.history) != epochs_before:
            first = self._curve[1] is None
            self._curve = self.logic.updateLearningCurve(run, *self._curve)
            if first:
                slicer.modules.plots.logic().ShowChartInLayout(self._curve[1])
        if not run.finished:
            return
        self._training = None
        if self._run is None:
            self._timer.stop()
        self.ui.startTrainingButton.enabled, self.ui.stopTrainingButton.enabled = True, False
        with slicer.util.tryWithErrorDisplay(_("Training failed.")):
            output = self.logic.finishTraining(run, self._parameterNode)
            self.ui.trainingStatusLabel.text = _("Model written to {folder}; it is now the selected model.").format(
                folder=output)

