"""The MedSegDNN panel: binds the .ui to the typed parameter node and calls MedSegDNNLogic.

No computation here: every button calls the Logic; runs are polled with a QTimer.
"""

import slicer
from slicer.i18n import tr as _
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleWidget
from slicer.util import VTKObservationMixin

from MedSegCore.mrml import evaluation_tables
from MedSegCore.dnn import dependencies
from MedSegCore.errors import MedSegError
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
        self._runVolume = None
        self._timer = None
        self._training = None
        self._curve = (None, None)
        self._install = None
        self._catalogFuture = None
        self._catalogRows = ()
        self._catalogNote = ""
        self._channelSelectors, self._channelNames, self._modelKey = [], [], None   # [(label, selector)]

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
        self.ui.installModelButton.connect("clicked(bool)", self.onInstallModel)
        self.ui.cancelModelInstallButton.connect("clicked(bool)", self.onCancelModelInstall)
        self.ui.catalogModelComboBox.connect("currentIndexChanged(int)", self.onCatalogModelChanged)
        self.ui.cancelModelInstallButton.enabled = False
        self.refreshCatalog()
        self.ui.cancelButton.enabled = False
        self.ui.stopTrainingButton.enabled = False
        self.ui.dependencyLabel.text = dependencies.status(check_cuda=False).message()
        self.ui.modelSourceComboBox.connect("currentIndexChanged(int)", self.updateModelControls)
        self.initializeParameterNode()
        self.updateModelControls()

    def updateModelControls(self):
        """The model path applies only to a model from a file or folder."""
        own = self.ui.modelSourceComboBox.currentText == "file or folder"
        self.ui.modelPathLineEdit.visible = self.ui.inputsCollapsibleButtonLabel2.visible = own

    def cleanup(self):
        if self._run is not None:
            self._run.cancel()
        if self._training is not None:
            self._training.cancel()
        if self._install is not None:
            self._install.cancel()
        if self._timer is not None:
            self._timer.stop()
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
        import vtk

        if self._parameterNode and self._parameterNodeGuiTag is not None:   # the first tag is 0
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
        if self._parameterNode:
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.onParameterNodeModified)
        self.onParameterNodeModified()

    def onParameterNodeModified(self, caller=None, event=None):
        """The model chosen (source, path or catalogue entry) changed: show its input channels."""
        p = self._parameterNode
        key = (p.modelSource, p.modelPath, p.catalogModel) if p else None
        if key != self._modelKey:
            self._modelKey = key
            self.updateChannelSelectors()

    def _confirm(self, text):
        return slicer.util.confirmOkCancelDisplay(text, "MedSeg DNN")

    def onInstall(self):
        with slicer.util.tryWithErrorDisplay(_("Installing PyTorch/MONAI failed."), waitCursor=True):
            self.ui.dependencyLabel.text = install_in_slicer(self._confirm).message()

    def updateChannelSelectors(self):
        """One labelled volume selector per input channel of a multi-channel bundle (its channel_def);
        the choices stay while the model's channels stay the same."""
        import qt

        try:
            names = self.logic.channelNames(self.logic.modelFromNode(self._parameterNode)) if self._parameterNode else []
        except Exception:  # noqa: BLE001 - no model chosen yet, or not a bundle
            names = []
        if names == self._channelNames:
            return
        self._channelNames = names
        self.ui.inputsCollapsibleButtonLabel0.text = f"{names[0]}:" if len(names) > 1 else _("Input volume:")
        form = self.ui.inputVolumeSelector.parentWidget().layout()
        for label, combo in self._channelSelectors:        # rows 1.. of the inputs form are the channels
            label.setParent(None)
            combo.setParent(None)
            form.removeRow(1)
        self._channelSelectors = []
        for row, name in enumerate(names[1:], start=1):
            combo = slicer.qMRMLNodeComboBox()
            combo.nodeTypes = ["vtkMRMLScalarVolumeNode"]
            combo.noneEnabled, combo.addEnabled, combo.removeEnabled = True, False, False
            combo.setMRMLScene(slicer.mrmlScene)
            combo.setCurrentNode(None)
            combo.toolTip = _("Volume for the bundle's input channel '{name}'.").format(name=name)
            label = qt.QLabel(f"{name}:")
            form.insertRow(row, label, combo)
            self._channelSelectors.append((label, combo))

    def onApply(self):
        with slicer.util.tryWithErrorDisplay(_("Segmentation failed to start."), waitCursor=True):
            try:
                self._startSegmentation()
            except MedSegError as error:                   # one line the user can act on, no traceback
                self.ui.statusLabel.text = _("Not run: {reason}").format(reason=error)

    def _startSegmentation(self):
        p = self._parameterNode
        if not dependencies.status(check_cuda=False).ready:
            install_in_slicer(self._confirm)
        status = dependencies.status()
        self.ui.dependencyLabel.text = status.message()
        model = self.logic.modelFromNode(p)
        names = self.logic.channelNames(model)
        self.updateChannelSelectors()                      # the model may have changed since it was shown
        volumes = [p.inputVolume] + [combo.currentNode() for _label, combo in self._channelSelectors]
        missing = [n for n, v in zip(names or [""], volumes) if v is None]
        if missing:
            raise MedSegError(f"select a volume for input channel {', '.join(missing)} of the bundle "
                              f"(its channels: {', '.join(names)})" if len(names) > 1 else "select an input volume")
        info = self.logic.untrustedBundle(model)
        if info is not None:
            if not slicer.util.confirmYesNoDisplay(self.logic.trustQuestion(info), _("MedSeg DNN: trust this bundle?")):
                raise MedSegError(f"MONAI bundle {info.describe()} was not trusted")
            self.logic.trustBundle(model, info)
        volumes = self.logic.volumesToSegment(volumes, p.regularizeGeometry)
        self._runVolume = volumes[0]
        self._run = self.logic.startSegmentation(volumes, model, self.logic.optionsFromNode(p))
        self.ui.statusLabel.text = self.logic.memoryEstimateText(p.inputVolume, model, self.logic.optionsFromNode(p))
        self.ui.applyButton.enabled, self.ui.cancelButton.enabled = False, True
        self.ui.progressBar.value = 0
        self._timer.start()

    # -- model catalogue: rows loaded off the GUI thread, installs in a child process ------------------
    def refreshCatalog(self, note=""):
        """Read the catalogue rows in a thread; ``note`` is shown under the selection once they are in."""
        import concurrent.futures

        self._catalogNote = note
        self.ui.catalogInfoLabel.text = note or _("Reading the model catalogue…")
        pool = concurrent.futures.ThreadPoolExecutor(1)
        self._catalogFuture = pool.submit(self.logic.catalogRows)
        pool.shutdown(wait=False)
        self._timer.start()

    def _stopTimerIfIdle(self):
        if self._run is None and self._training is None and self._install is None and self._catalogFuture is None:
            self._timer.stop()

    def _pollCatalog(self):
        if self._catalogFuture is None or not self._catalogFuture.done():
            return
        future, self._catalogFuture = self._catalogFuture, None
        try:
            self._catalogRows, problem = future.result()
        except Exception as exc:                                       # noqa: BLE001 (shown, not raised)
            self._catalogRows, problem = (), str(exc)
        combo = self.ui.catalogModelComboBox
        wasBlocked = combo.blockSignals(True)
        combo.clear()
        for row in self._catalogRows:
            combo.addItem(row.text, row.name)
        chosen = next((i for i, r in enumerate(self._catalogRows)
                       if self._parameterNode and r.name == self._parameterNode.catalogModel), 0)
        combo.setCurrentIndex(chosen)
        combo.blockSignals(wasBlocked)
        self.onCatalogModelChanged(chosen, userChoice=False)
        notes = [n for n in (problem, self._catalogNote) if n]
        if notes:
            self.ui.catalogInfoLabel.text = "\n".join(t for t in [self.ui.catalogInfoLabel.text, *notes] if t)
        self._stopTimerIfIdle()

    def onCatalogModelChanged(self, index, userChoice=True):
        from MedSegCore.catalog import panel

        row = self._catalogRows[index] if 0 <= index < len(self._catalogRows) else None
        self.ui.catalogInfoLabel.text = panel.describe(row) if row else ""
        self.ui.installModelButton.enabled = bool(row and row.installable and self._install is None)
        if row and self._parameterNode:             # the shown model is the one 'Model: catalogue' runs
            self._parameterNode.catalogModel = row.name
            if row.installed and userChoice:
                self._parameterNode.modelSource = "catalogue"
                self.updateChannelSelectors()

    def onInstallModel(self):
        index = self.ui.catalogModelComboBox.currentIndex
        if not 0 <= index < len(self._catalogRows):
            return
        with slicer.util.tryWithErrorDisplay(_("Model installation failed to start.")):
            name = self._catalogRows[index].name
            self._install = self.logic.startModelInstall(name)
            self._install.modelName = name
            self.ui.installModelButton.enabled, self.ui.cancelModelInstallButton.enabled = False, True
            self.ui.modelInstallProgressBar.value = 0
            self._timer.start()

    def onCancelModelInstall(self):
        if self._install is not None:
            self._install.cancel()
            self._install = None
            self.ui.cancelModelInstallButton.enabled = False
            self.refreshCatalog(_("Cancelled; nothing was installed (installing again resumes the download)."))

    def _pollInstall(self):
        run = self._install
        if run is None:
            return
        run.poll()
        self.ui.modelInstallProgressBar.value = int(100 * run.progress)
        self.ui.catalogInfoLabel.text = run.text
        if not run.finished:
            return
        self._install = None
        self.ui.cancelModelInstallButton.enabled = False
        if run.error:
            slicer.util.errorDisplay(_("Model installation failed: {error}").format(error=run.error))
        elif self._parameterNode:           # the installed model is the one Apply runs from now on
            self._parameterNode.catalogModel = run.modelName
            self._parameterNode.modelSource = "catalogue"
        self.refreshCatalog(_("Installation failed: {error}").format(error=run.error) if run.error else run.text)

    def onPoll(self):
        self._pollCatalog()
        self._pollInstall()
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
        self._run = None
        self._stopTimerIfIdle()
        self.ui.applyButton.enabled, self.ui.cancelButton.enabled = True, False
        p = self._parameterNode
        with slicer.util.tryWithErrorDisplay(_("Segmentation failed."), waitCursor=True):
            try:
                segmentation, messages = self.logic.finishSegmentation(run, self._runVolume, p.outputSegmentation,
                                                                        p.probabilities)
            except MedSegError as error:               # the run's own one-line reason; the scene is unchanged
                self.ui.statusLabel.text = _("Failed: {reason}").format(reason=error)
                return
            p.outputSegmentation = segmentation
            self.ui.statusLabel.text = "\n".join(messages + [f"Done in {run.elapsed():.1f} s."])

    def onCancel(self):
        if self._run is not None:
            self._run.cancel()
            self._run = None
            self._stopTimerIfIdle()
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
        self._stopTimerIfIdle()
        self.ui.startTrainingButton.enabled, self.ui.stopTrainingButton.enabled = True, False
        with slicer.util.tryWithErrorDisplay(_("Training failed.")):
            output = self.logic.finishTraining(run, self._parameterNode)
            self.ui.trainingStatusLabel.text = _("Model written to {folder}; it is now the selected model.").format(
                folder=output)

