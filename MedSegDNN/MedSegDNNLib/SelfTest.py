"""MedSegDNN self-test, run by Slicer's SelfTests module and headless by the test suite."""
import logging
import os

import slicer
from slicer.ScriptedLoadableModule import ScriptedLoadableModuleTest

from MedSegCore.mrml import evaluation_tables, nodes
from MedSegCore.dnn import PredictOptions, dependencies
from MedSegCore.errors import MedSegError


def MedSegDNNLogic():
    from MedSegDNN import MedSegDNNLogic as logic

    return logic()


class MedSegDNNTest(ScriptedLoadableModuleTest):
    """Self-test: inference (synchronous and in a process, cancel), writing and undo, evaluation."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        tests = [self.test_evaluation_table_and_disagreement]
        if dependencies.status(check_cuda=False).ready:
            tests += [self.test_default_model_writes_card_segments, self.test_existing_node_replace_and_undo,
                      self.test_process_run_matches_and_cancel_leaves_scene, self.test_training_from_scene]
        else:
            logging.warning("MedSegDNNTest: PyTorch/MONAI not installed; inference tests skipped")
        for test in tests:
            self.setUp()
            test()

    def _volume(self):
        import numpy as np
        from MedSegCore.image.geometry import Geometry

        rng = np.random.default_rng(3)
        array = rng.normal(100, 20, size=(24, 28, 32)).astype(np.float32)
        array[6:18, 8:20, 10:22] += 150
        geometry = Geometry((32, 28, 24), (1.0, 1.0, 1.0), (-16, -14, -12), [[-1, 0, 0], [0, -1, 0], [0, 0, 1]])
        return nodes.add_volume_node(array, geometry, "synthetic")

    def test_default_model_writes_card_segments(self):
        import numpy as np

        self.delayDisplay("Default model: segments named and coloured from the model card")
        volume = self._volume()
        seg, prediction = MedSegDNNLogic().segment([volume], "default", PredictOptions(device="cpu", sw_batch=2))
        names = [lab.name for lab in prediction.labels]
        self.assertEqual(nodes.segment_names(seg), names)
        for lab in prediction.labels:
            written = nodes.segment_array(seg, nodes.segment_id_by_name(seg, lab.name), volume)
            self.assertTrue(np.array_equal(written, prediction.labelmap == lab.value))
            color = seg.GetSegmentation().GetSegment(nodes.segment_id_by_name(seg, lab.name)).GetColor()
            self.assertTrue(np.allclose(color, lab.color, atol=1e-6))
        self.assertEqual(prediction.labelmap.shape, nodes.volume_array(volume)[0].shape)

    def test_existing_node_replace_and_undo(self):
        import numpy as np

        self.delayDisplay("Writing into an existing segmentation replaces only the model's segments; undo")
        volume = self._volume()
        geometry = nodes.geometry_of(volume)
        seg = nodes.new_segmentation_node("Existing", volume)
        mine = np.zeros(geometry.shape, bool)
        mine[:4] = True
        other = np.zeros(geometry.shape, bool)
        other[-3:] = True
        nodes.write_segment(seg, mine, geometry, "Grey matter")
        nodes.write_segment(seg, other, geometry, "Tumour")
        logic = MedSegDNNLogic()
        _, prediction = logic.segment([volume], "default", PredictOptions(device="cpu", sw_batch=2), seg)
        self.assertEqual(nodes.segment_names(seg), ["Grey matter", "Tumour", "White matter"])
        self.assertTrue(np.array_equal(nodes.segment_array(seg, nodes.segment_id_by_name(seg, "Tumour"), volume), other))
        self.assertTrue(np.array_equal(nodes.segment_array(seg, nodes.segment_id_by_name(seg, "Grey matter"), volume),
                                       prediction.labelmap == 1))
        logic.undoLastRun()
        self.assertEqual(nodes.segment_names(seg), ["Grey matter", "Tumour"])
        self.assertTrue(np.array_equal(nodes.segment_array(seg, nodes.segment_id_by_name(seg, "Grey matter"), volume),
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
            written = nodes.segment_array(seg, nodes.segment_id_by_name(seg, name), volume)
            self.assertTrue(np.array_equal(written, direct.labelmap == value))
        self.assertTrue(any(m.startswith("Running MedSeg brain tissue") for m in messages))
        self.assertFalse(os.path.exists(run.workdir))

    def test_evaluation_table_and_disagreement(self):
        import numpy as np

        self.delayDisplay("Evaluation: metrics table and disagreement segmentation")
        volume = self._volume()
        geometry = nodes.geometry_of(volume)
        ref, pred = np.zeros(geometry.shape, bool), np.zeros(geometry.shape, bool)
        ref[4:12, 4:12, 4:12] = True                 # 512 voxels
        pred[4:12, 4:12, 6:14] = True                # 384 overlap, 128 FP, 128 FN
        ref_node = nodes.new_segmentation_node("Reference", volume)
        pred_node = nodes.new_segmentation_node("Prediction", volume)
        nodes.write_segment(ref_node, ref, geometry, "Lesion")
        nodes.write_segment(pred_node, pred, geometry, "Lesion")
        table, disagreement = MedSegDNNLogic().evaluate(pred_node, ref_node)
        self.assertEqual(table.GetNumberOfRows(), 1)
        dice_column = evaluation_tables.COLUMNS.index("dice")
        self.assertAlmostEqual(float(table.GetCellText(0, dice_column)), 2 * 384 / 1024, places=5)
        fp = nodes.segment_array(disagreement, nodes.segment_id_by_name(disagreement, "Lesion false positive"), volume)
        fn = nodes.segment_array(disagreement, nodes.segment_id_by_name(disagreement, "Lesion false negative"), volume)
        self.assertEqual((int(fp.sum()), int(fn.sum())), (128, 128))
        import tempfile
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "metrics.csv")
            evaluation_tables.save_table_csv(table, path)
            import csv
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
            self.assertEqual(len(rows), 1)
            self.assertEqual(rows[0]["segment"], "Lesion")
            self.assertAlmostEqual(float(rows[0]["dice"]), 0.75, places=5)

    def test_training_from_scene(self):
        import tempfile

        import numpy as np
        from MedSegCore.dnn import load_model, predict

        self.delayDisplay("Training from scene segmentations in a child process; the model becomes selectable")
        logic = MedSegDNNLogic()
        segmentations = []
        for n in range(2):
            volume = self._volume()
            geometry = nodes.geometry_of(volume)
            image, _ = nodes.volume_array(volume)
            seg = nodes.new_segmentation_node(f"case {n}", volume)
            nodes.write_segment(seg, image > 180, geometry, "Bright")
            segmentations.append(seg)
        from types import SimpleNamespace

        # The panel's values (the typed parameter node needs Slicer's GUI layer; the Logic reads attributes).
        parameters = SimpleNamespace(trainDims="3", trainEpochs=2, trainInit="none", trainFreezeEncoder=False,
                                     device="cpu", modelSource="default", modelPath="")
        config = logic.trainingConfigFromNode(parameters, patch=[16, 16, 16], channels=[8, 16], batch_size=2,
                                              steps_per_epoch=3, val_fraction=0.5, device="cpu", lr=1e-2)
        with tempfile.TemporaryDirectory() as folder:
            output = os.path.join(folder, "model")
            run = logic.startTraining(segmentations, output, config)
            run.wait(timeout=600)
            table, chart = logic.updateLearningCurve(run)
            self.assertEqual(table.GetNumberOfRows(), 2)
            self.assertEqual(chart.GetNumberOfPlotSeriesNodes(), 2)
            self.assertEqual(logic.finishTraining(run, parameters), output)
            self.assertEqual((parameters.modelSource, parameters.modelPath), ("file or folder", output))
            model = load_model(output, device="cpu")
            self.assertEqual([lab.name for lab in model.card.labels], ["Bright"])
            image, geometry = nodes.volume_array(slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode"))
            result = predict([(image, geometry)], model, PredictOptions(device="cpu"))
            self.assertEqual(result.labelmap.shape, image.shape)
        with self.assertRaises(MedSegError):
            logic.startTraining(segmentations, "", config)

