"""Whole-volume threshold apply on a 512x512x300 int16 CT, segment update included,
against vtkImageThreshold alone and a bare numpy range test."""
import numpy as np

from common import best_time, synthetic_ct
from common import vtk_threshold as common_vtk_threshold


def run(report):

    from MedSegCore.mrml import nodes, segment_ops
    from MedSegCore.threshold import engine
    from MedSegCore.image.geometry import Geometry
    from MedSegCore.mrml.scene import ensure_scene

    scene = ensure_scene()
    ct = synthetic_ct()
    geometry = Geometry(ct.shape[::-1], (0.7, 0.7, 1.0), (0, 0, 0), np.eye(3))
    volume = nodes.add_volume_node(ct, geometry, "ct")
    params = engine.ThresholdParameters(lower=400, upper=3071, name="Bone")
    seg = nodes.new_segmentation_node("bench", volume)

    def medseg_apply():
        segment_ops.apply_threshold(volume, params, seg, replace=True)

    image = volume.GetImageData()
    vtk_threshold = common_vtk_threshold(image, 400, 3071)

    def numpy_threshold():
        return (ct >= 400) & (ct <= 3071)

    t_medseg = best_time(medseg_apply, repeat=10)
    t_vtk = best_time(vtk_threshold, repeat=10)      # multi-threaded: its best of 10 is the fair figure
    report("threshold apply incl. segment update, bone", t_medseg, "vtkImageThreshold alone", t_vtk)
    report("threshold apply incl. segment update, bone", t_medseg, "numpy range test", best_time(numpy_threshold))
    body = engine.ThresholdParameters(lower=-200, upper=3071, name="Body")
    report("threshold apply incl. segment update, body 49%",
           best_time(lambda: segment_ops.apply_threshold(volume, body, seg, replace=True), repeat=10),
           "vtkImageThreshold alone", best_time(common_vtk_threshold(image, -200, 3071), repeat=10))
    mask = numpy_threshold()
    report("segment update alone (write_segment)", best_time(
        lambda: nodes.write_segment(seg, mask, geometry, "Bone", replace=True), repeat=5),
        "vtkImageThreshold alone", best_time(vtk_threshold))
    scene.Clear(False)
