"""Live preview of one 512x512 slice of the synthetic CT (against a numpy copy of that slice), and
the whole-volume apply through the Segment Editor logic (against vtkImageThreshold alone)."""
import numpy as np

from common import best_time, synthetic_ct
from common import vtk_threshold as common_vtk_threshold


def _oblique_xy_to_ras(ijk_to_ras, spacing, k, degrees=20.0):
    t = np.radians(degrees)
    rot = np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]])
    xy = np.eye(4)
    xy[:3, :3] = rot @ np.diag(spacing)
    xy[:3, 3] = (ijk_to_ras @ [0, 0, k, 1])[:3]
    return xy


def run(report):
    import vtk

    from MedSegCore.mrml import editor_apply, nodes, reslice
    from MedSegCore.threshold import preview as preview_maths
    from MedSegCore.image.geometry import Geometry
    from MedSegCore.mrml.scene import ensure_scene
    from MedSegCore.threshold.engine import ThresholdParameters

    scene = ensure_scene()
    ct = synthetic_ct()
    k = ct.shape[0] // 2
    spacing = (0.7, 0.7, 1.0)
    geometry = Geometry(ct.shape[::-1], spacing, (0, 0, 0), np.eye(3))
    volume = nodes.add_volume_node(ct, geometry, "ct")
    image, ijk_to_ras = volume.GetImageData(), geometry.ijk_to_ras()
    copy_time = best_time(lambda: ct[k].copy(), repeat=50)

    preview = preview_maths.SlicePreview()
    resampler = reslice.SliceResampler()
    ranges = [(400, 3071, (0.9, 0.9, 0.6))]
    report("preview 512x512 axial slice (array[k])",
           best_time(lambda: preview.update(ct[k], ranges), repeat=50), "numpy copy of the slice", copy_time)

    axial = np.eye(4)
    axial[:3, :3] = np.diag(spacing)
    axial[:3, 3] = (ijk_to_ras @ [0, 0, k, 1])[:3]
    for name, xy in (("axial", axial), ("oblique 20 deg", _oblique_xy_to_ras(ijk_to_ras, spacing, k))):
        def resliced(xy=xy):
            values = resampler.slice(image, ijk_to_ras, xy, (512, 512))
            return preview.update(values, ranges)
        report(f"preview 512x512 {name} slice (vtkImageReslice)", best_time(resliced, repeat=20),
               "numpy copy of the slice", copy_time)

    seg = nodes.new_segmentation_node("bench", volume)
    logic = editor_apply.editor_logic(seg, volume)
    logic.SetMaximumNumberOfUndoStates(1)
    segment_id = seg.GetSegmentation().AddEmptySegment("", "Bone", [0.9, 0.9, 0.6])
    logic.GetSegmentEditorNode().SetSelectedSegmentID(segment_id)
    params = ThresholdParameters(lower=400, upper=3071)

    vtk_threshold = common_vtk_threshold(image, 400, 3071)

    def slicer_threshold_apply():
        """What Slicer's Threshold effect's Apply does (SegmentEditorThresholdEffect.onApply)."""
        import slicer

        logic.ResetModifierLabelmapToDefault()
        logic.UpdateAlignedSourceVolume()
        modifier = logic.GetModifierLabelmap()
        thresh = vtk.vtkImageThreshold()
        thresh.SetInputData(logic.GetAlignedSourceVolume())
        thresh.ThresholdBetween(400, 3071)
        thresh.SetInValue(1)
        thresh.SetOutValue(0)
        thresh.SetOutputScalarType(modifier.GetScalarType())
        thresh.Update()
        modifier.DeepCopy(thresh.GetOutput())
        logic.SaveStateForUndo()
        logic.ModifySegmentByLabelmap(seg, segment_id, modifier,
                                      slicer.vtkSlicerSegmentEditorLogic.ModificationModeSet, True, False)

    t_apply = best_time(lambda: editor_apply.apply_threshold(logic, params), repeat=10)
    report("editor apply whole volume, bone (Set, undo state)", t_apply,
           "vtkImageThreshold alone", best_time(vtk_threshold, repeat=10))
    report("editor apply whole volume, bone (Set, undo state)", t_apply,
           "Slicer Threshold effect Apply path", best_time(slicer_threshold_apply, repeat=3))
    # A result spread over the whole body: nothing to crop, Slicer's merge of a full-size modifier.
    body = ThresholdParameters(lower=-200, upper=3071)
    report("editor apply whole volume, body 49% (Set, undo state)",
           best_time(lambda: editor_apply.apply_threshold(logic, body), repeat=3),
           "vtkImageThreshold alone", best_time(common_vtk_threshold(image, -200, 3071), repeat=10))
    report("editor apply one slice (clear + Add), body segment",
           best_time(lambda: editor_apply.apply_threshold(logic, params, "slice", k), repeat=3),
           "vtkImageThreshold alone", best_time(vtk_threshold, repeat=10))
    del logic
    scene.Clear(False)
