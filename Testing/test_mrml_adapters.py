"""Volume and segmentation node adapters on Slicer's real MRML classes (slicer-core)."""
import numpy as np
import pytest
import slicer

from MedSegCore.mrml import nodes
from MedSegCore.errors import InputError, ParameterError
from synthetic import lps_geometry, oblique_geometry, sphere


def test_volume_node_round_trip_keeps_geometry():
    g = oblique_geometry()
    array = np.random.default_rng(1).normal(size=g.shape).astype(np.float32)
    node = nodes.add_volume_node(array, g, "vol")
    back, h = nodes.volume_array(node)
    np.testing.assert_array_equal(back, array)
    assert h == g
    # Slicer's own matrix agrees with ours
    m = slicer.util.arrayFromVTKMatrix(_ijk_to_ras(node))
    np.testing.assert_array_equal(m, g.ijk_to_ras())


def _ijk_to_ras(node):
    import vtk
    m = vtk.vtkMatrix4x4()
    node.GetIJKToRASMatrix(m)
    return m


def test_labels_to_segments_names_colors_and_back(tmp_path):
    g = lps_geometry((30, 28, 12))
    labels = np.zeros(g.shape, np.uint8)
    labels[sphere(g, g.ijk_to_ras()[:3] @ [10, 10, 6, 1], 5)] = 1
    labels[sphere(g, g.ijk_to_ras()[:3] @ [20, 18, 6, 1], 4)] = 2
    volume = nodes.add_volume_node(labels.astype(np.int16), g, "ref")
    seg = nodes.new_segmentation_node("Seg", volume)
    ids = nodes.write_label_segments(seg, labels, g, [(1, "Liver", (1, 0, 0)), (2, "Spleen", (0, 0, 1))])
    segmentation = seg.GetSegmentation()
    assert [segmentation.GetSegment(i).GetName() for i in ids] == ["Liver", "Spleen"]
    assert tuple(segmentation.GetSegment(ids[1]).GetColor()) == (0, 0, 1)
    assert nodes.reference_geometry(seg) == g
    arrays = nodes.segment_arrays(seg, volume)
    assert np.array_equal(arrays["Liver"], labels == 1) and np.array_equal(arrays["Spleen"], labels == 2)
    path = str(tmp_path / "seg.seg.nrrd")
    nodes.save_segmentation(seg, path)
    loaded = nodes.load_segmentation(path)
    assert nodes.segment_names(loaded) == ["Liver", "Spleen"]
    np.testing.assert_allclose(nodes.reference_geometry(loaded).ijk_to_ras(), g.ijk_to_ras(), atol=1e-9)
    reloaded = nodes.segment_arrays(loaded, g)
    assert int(reloaded["Liver"].sum()) == int((labels == 1).sum())
    assert np.array_equal(reloaded["Spleen"], labels == 2)
    assert tuple(round(c, 3) for c in loaded.GetSegmentation().GetSegment(
        nodes.segment_id_by_name(loaded, "Liver")).GetColor()) == (1, 0, 0)


def test_writing_never_changes_other_segments():
    g = oblique_geometry()
    rng = np.random.default_rng(3)
    a, b = rng.random(g.shape) > 0.5, rng.random(g.shape) > 0.6   # overlapping masks
    seg = nodes.new_segmentation_node("S", g)
    ia = nodes.write_segment(seg, a, g, "A")
    nodes.write_segment(seg, b, g, "B")
    assert np.array_equal(nodes.segment_array(seg, ia, g), a)
    with pytest.raises(ParameterError, match="segment 'A' already exists"):
        nodes.write_segment(seg, b, g, "A")
    with pytest.raises(ParameterError, match="A already exist"):
        nodes.write_label_segments(seg, b.astype(np.uint8), g, [(1, "C", None), (1, "A", None)])
    assert nodes.segment_names(seg) == ["A", "B"]          # nothing half-written
    c = rng.random(g.shape) > 0.9
    nodes.write_segment(seg, c, g, "B", replace=True)
    assert np.array_equal(nodes.segment_array(seg, ia, g), a)
    assert np.array_equal(nodes.segment_array(seg, nodes.segment_id_by_name(seg, "B"), g), c)


def test_segment_resampled_onto_other_grid():
    fine = lps_geometry((40, 40, 20))
    coarse = lps_geometry((40, 40, 20))
    coarse = type(fine)(coarse.size, (1.2, 1.2, 6.0), coarse.origin, coarse.direction)
    center = fine.ijk_to_ras()[:3] @ [20, 20, 10, 1]
    seg = nodes.new_segmentation_node("S", fine)
    sid = nodes.write_segment(seg, sphere(fine, center, 7), fine, "Ball")
    on_coarse = nodes.segment_array(seg, sid, coarse)
    expected = sphere(coarse, center, 7)
    dice = 2 * (on_coarse & expected).sum() / (on_coarse.sum() + expected.sum())
    assert dice > 0.85


def test_adapter_errors():
    with pytest.raises(InputError, match="no such file"):
        nodes.load_segmentation("/nonexistent/x.seg.nrrd")
    g = lps_geometry((4, 4, 4))
    seg = nodes.new_segmentation_node("S", g)
    with pytest.raises(ParameterError, match="does not match volume shape"):
        nodes.write_segment(seg, np.zeros((3, 3, 3), bool), g, "X")
    with pytest.raises(InputError, match=r"must end in \.seg\.nrrd"):
        nodes.save_segmentation(seg, "/tmp/x.nrrd")
