"""MedSegCore.mrml.editor_apply through Slicer's real vtkSlicerSegmentEditorLogic and MRML (headless).

Every expected voxel set is computed with numpy on the volume array and compared with what the
segmentation holds afterwards (exported by Slicer's own ``arrayFromSegmentBinaryLabelmap``).
"""
import numpy as np
import pytest

import slicer

from MedSegCore.mrml import editor_apply, nodes
from MedSegCore.errors import EmptyResultError, ParameterError
from MedSegCore.image.geometry import Geometry
from MedSegCore.threshold.engine import CleanupOptions, ThresholdParameters
from effect_standin import LogicBackedScriptedEffect

SHAPE = (8, 12, 14)                       # K, J, I
SPACING = (0.8, 0.9, 2.0)                 # I, J, K mm
VOXEL_ML = 0.8 * 0.9 * 2.0 / 1000


def _rotation(deg_z=25.0, deg_x=10.0):
    a, b = np.radians(deg_z), np.radians(deg_x)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return rz @ rx


class Editor:
    """A volume, a segmentation on its grid, a segment editor node and logic."""

    def __init__(self, direction=np.eye(3), origin=(-5.0, 3.0, 10.0), array=None):
        rng = np.random.default_rng(7)
        self.array = rng.integers(0, 200, SHAPE).astype(np.int16) if array is None else array
        self.geometry = Geometry(tuple(reversed(SHAPE)), SPACING, origin, direction)
        self.volume = nodes.add_volume_node(self.array, self.geometry, "source")
        self.seg = nodes.new_segmentation_node("seg", self.volume)
        self.logic = editor_apply.editor_logic(self.seg, self.volume)
        self.node = self.logic.GetSegmentEditorNode()
        box = np.zeros(SHAPE, bool)
        box[2:7, 3:9, 4:12] = True
        self.box = box
        self.other = nodes.write_segment(self.seg, box, self.geometry, "Other")
        self.target = self.seg.GetSegmentation().AddEmptySegment("", "Target", [0.1, 0.8, 0.1])
        self.node.SetSelectedSegmentID(self.target)

    def mask(self, segment_id):
        return slicer.util.arrayFromSegmentBinaryLabelmap(self.seg, segment_id, self.volume) > 0

    def in_range(self, lo, hi):
        return (self.array >= lo) & (self.array <= hi)

    def apply(self, **kw):
        scope = kw.pop("scope", "volume")
        k = kw.pop("slice_index", None)
        return editor_apply.apply_threshold(self.logic, ThresholdParameters(**kw), scope, k)


@pytest.fixture
def ed():
    e = Editor()
    e.node.SetOverwriteMode(slicer.vtkMRMLSegmentEditorNode.OverwriteAllSegments)
    return e


def test_whole_volume_set_matches_numpy(ed):
    (res,) = ed.apply(lower=50, upper=150)
    expected = ed.in_range(50, 150)
    assert res.segment_id == ed.target and not res.created
    assert np.array_equal(ed.mask(ed.target), expected)
    assert res.voxels == int(expected.sum())
    assert res.volume_ml == pytest.approx(expected.sum() * VOXEL_ML)
    # overwrite all: the other segment lost exactly the written voxels
    assert np.array_equal(ed.mask(ed.other), ed.box & ~expected)


def test_editable_area_inside_another_segment(ed):
    ed.node.SetMaskMode(slicer.vtkMRMLSegmentationNode.EditAllowedInsideSingleSegment)
    ed.node.SetMaskSegmentID(ed.other)
    (res,) = ed.apply(lower=50, upper=150)
    expected = ed.in_range(50, 150) & ed.box
    assert np.array_equal(ed.mask(ed.target), expected)
    assert res.voxels == int(expected.sum()) > 0


def test_editable_intensity_range(ed):
    ed.apply(lower=0, upper=60)
    previous = ed.mask(ed.target)
    ed.node.SetSourceVolumeIntensityMask(True)
    ed.node.SetSourceVolumeIntensityMaskRange(100, 180)
    (res,) = ed.apply(lower=50, upper=150)
    # Slicer's Set: replaced inside the editable range, previous content kept outside it
    expected = ed.in_range(100, 150) | (previous & ~ed.in_range(100, 180))
    assert np.array_equal(ed.mask(ed.target), expected)
    assert res.voxels == int(ed.in_range(100, 150).sum())


def test_editable_area_outside_all_segments(ed):
    ed.node.SetMaskMode(slicer.vtkMRMLSegmentationNode.EditAllowedOutsideAllSegments)
    ed.apply(lower=50, upper=150)
    assert np.array_equal(ed.mask(ed.target), ed.in_range(50, 150) & ~ed.box)
    assert np.array_equal(ed.mask(ed.other), ed.box)


def test_overwrite_none_keeps_overlapping_segment(ed):
    ed.node.SetOverwriteMode(slicer.vtkMRMLSegmentEditorNode.OverwriteNone)
    ed.apply(lower=50, upper=150)
    target, other = ed.mask(ed.target), ed.mask(ed.other)
    assert np.array_equal(target, ed.in_range(50, 150))
    assert np.array_equal(other, ed.box)
    assert int((target & other).sum()) == int((ed.in_range(50, 150) & ed.box).sum()) > 0


def test_undo_restores_previous_voxel_counts(ed):
    ed.apply(lower=0, upper=60)
    before = (ed.mask(ed.target).sum(), ed.mask(ed.other).sum())
    ed.apply(lower=120, upper=199, invert=True)
    assert ed.mask(ed.target).sum() == (~ed.in_range(120, 199)).sum() != before[0]
    editor_apply.undo(ed.logic)
    assert (ed.mask(ed.target).sum(), ed.mask(ed.other).sum()) == before
    assert np.array_equal(ed.mask(ed.target), ed.in_range(0, 60))


def test_slice_scope_changes_only_that_slice(ed):
    ed.apply(lower=0, upper=90)
    prev_target, prev_other = ed.mask(ed.target), ed.mask(ed.other)
    ed.node.SetSourceVolumeIntensityMask(True)
    ed.node.SetSourceVolumeIntensityMaskRange(40, 199)
    (res,) = ed.apply(lower=60, upper=170, scope="slice", slice_index=4)
    target, other = ed.mask(ed.target), ed.mask(ed.other)
    rest = np.ones(SHAPE, bool)
    rest[4] = False
    assert np.array_equal(target[rest], prev_target[rest])
    assert np.array_equal(other[rest], prev_other[rest])
    editable = ed.in_range(40, 199)[4]
    written = ed.in_range(60, 170)[4] & editable
    # Set semantics inside the slice: the editable part is replaced, the rest of the slice is kept
    assert np.array_equal(target[4], written | (prev_target[4] & ~editable))
    assert np.array_equal(other[4], prev_other[4] & ~written)
    assert res.voxels == int(written.sum())
    with pytest.raises(ParameterError):
        ed.apply(lower=60, upper=170, scope="slice", slice_index=SHAPE[0])


def test_multi_otsu_gives_k_segments_in_one_undo_step(ed):
    n0 = ed.seg.GetSegmentation().GetNumberOfSegments()
    before = ed.mask(ed.other).sum()
    results = ed.apply(levels=3, name="Tissue")
    assert [r.name for r in results] == ["Tissue 1", "Tissue 2", "Tissue 3"]
    assert all(r.created for r in results)
    assert ed.seg.GetSegmentation().GetNumberOfSegments() == n0 + 3
    masks = [ed.mask(r.segment_id) for r in results]
    assert sum(int(m.sum()) for m in masks) == ed.array.size          # classes partition the volume
    for r, m in zip(results, masks):
        assert np.array_equal(m, ed.in_range(r.lower, r.upper)) and r.voxels == int(m.sum()) > 0
    assert ed.node.GetSelectedSegmentID() == ed.target
    editor_apply.undo(ed.logic)
    assert ed.seg.GetSegmentation().GetNumberOfSegments() == n0
    assert ed.mask(ed.other).sum() == before
    for r in ed.apply(levels=2, scope="slice", slice_index=5):     # classes written in one slice only
        m = ed.mask(r.segment_id)
        assert m[5].any() and not np.delete(m, 5, axis=0).any()
        assert np.array_equal(m[5], ed.in_range(r.lower, r.upper)[5])


def test_oblique_source_volume():
    e = Editor(direction=_rotation())
    assert e.geometry.is_oblique()
    (res,) = e.apply(lower=30, upper=120, cleanup=CleanupOptions(min_size_mm3=3 * 0.8 * 0.9 * 2.0))
    from MedSegCore.threshold import cleanup
    expected = cleanup.remove_small_islands(e.in_range(30, 120), 3 * 0.8 * 0.9 * 2.0, SPACING)
    assert np.array_equal(e.mask(e.target), expected)
    assert res.volume_ml == pytest.approx(expected.sum() * VOXEL_ML)
    assert nodes.reference_geometry(e.seg).same_grid(e.geometry)


def test_empty_result_leaves_scene_unchanged(ed):
    ed.apply(lower=0, upper=60)
    prev = {sid: ed.mask(sid) for sid in (ed.target, ed.other)}
    n0 = ed.seg.GetSegmentation().GetNumberOfSegments()
    can_undo = ed.logic.CanUndo()
    with pytest.raises(EmptyResultError, match="nothing was written"):
        ed.apply(lower=500, upper=900)
    ed.node.SetMaskMode(slicer.vtkMRMLSegmentationNode.EditAllowedInsideSingleSegment)
    ed.node.SetMaskSegmentID(ed.other)
    with pytest.raises(EmptyResultError):   # voxels exist, but none inside the editable area
        ed.apply(lower=0, upper=60, scope="slice", slice_index=0)
    assert ed.seg.GetSegmentation().GetNumberOfSegments() == n0
    assert all(np.array_equal(ed.mask(sid), m) for sid, m in prev.items())
    assert ed.logic.CanUndo() == can_undo
    (res,) = ed.apply(lower=500, upper=900, allow_empty=True)
    assert res.voxels == 0


def test_new_segment_when_none_selected(ed):
    ed.node.SetSelectedSegmentID(None)
    n0 = ed.seg.GetSegmentation().GetNumberOfSegments()
    (res,) = ed.apply(lower=150, name="Bright")          # upper: the volume maximum
    assert res.created and res.name == "Bright" and res.upper == ed.array.max()
    assert ed.seg.GetSegmentation().GetNumberOfSegments() == n0 + 1
    assert np.array_equal(ed.mask(res.segment_id), ed.array >= 150)


def test_effect_route_writes_what_the_logic_route_writes(ed):
    ed.node.SetMaskMode(slicer.vtkMRMLSegmentationNode.EditAllowedInsideSingleSegment)
    ed.node.SetMaskSegmentID(ed.other)
    fake = LogicBackedScriptedEffect(ed.logic)
    params = ThresholdParameters(lower=50, upper=150)
    editor_apply.apply_threshold(editor_apply.EffectTarget(fake), params, "slice", 3)
    via_effect = ed.mask(ed.target)
    assert fake.calls == ["saveStateForUndo", "modifySelectedSegmentByLabelmap"]
    editor_apply.undo(ed.logic)
    assert not ed.mask(ed.target).any()
    editor_apply.apply_threshold(ed.logic, params, "slice", 3)
    assert np.array_equal(ed.mask(ed.target), via_effect)
    assert via_effect.sum() == (ed.in_range(50, 150) & ed.box)[3].sum() > 0


BLOB = (slice(1, 3), slice(1, 4), slice(2, 5))          # K, J, I: a compact bright region


def _blob_editor():
    """Dim noise (0..99) with one compact bright blob (250), and a target segment already holding
    dim voxels all over the volume, far outside the blob's extent."""
    array = np.random.default_rng(3).integers(0, 100, SHAPE).astype(np.int16)
    array[BLOB] = 250
    e = Editor(array=array)
    e.node.SetOverwriteMode(slicer.vtkMRMLSegmentEditorNode.OverwriteAllSegments)
    e.apply(lower=0, upper=30)
    return e


@pytest.fixture
def modified_extents(monkeypatch):
    """Extents of the labelmaps handed to ModifySegmentByLabelmap."""
    extents = []
    original = editor_apply.LogicTarget.modify

    def modify(self, segment_id, labelmap, mode, extent=None):
        extents.append(list(labelmap.GetExtent()))
        return original(self, segment_id, labelmap, mode, extent)
    monkeypatch.setattr(editor_apply.LogicTarget, "modify", modify)
    return extents


def test_whole_volume_set_hands_slicer_a_labelmap_cropped_to_the_result(modified_extents):
    e = _blob_editor()
    assert modified_extents[-1] == [0, SHAPE[2] - 1, 0, SHAPE[1] - 1, 0, SHAPE[0] - 1]
    previous_other = e.mask(e.other)
    (res,) = e.apply(lower=200, upper=255)
    assert modified_extents[-1] == [2, 4, 1, 3, 1, 2]                  # I, J, K extent of BLOB
    blob = np.zeros(SHAPE, bool)
    blob[BLOB] = True
    # Set without masking: the earlier voxels outside the crop are gone, exactly the blob remains
    assert np.array_equal(e.mask(e.target), blob) and res.voxels == blob.sum()
    assert np.array_equal(e.mask(e.other), previous_other & ~blob)


@pytest.mark.parametrize("masking", ["intensity", "inside_segment"])
def test_cropped_set_keeps_voxels_outside_the_editable_area(masking, modified_extents):
    e = _blob_editor()
    previous = e.mask(e.target)
    assert previous[:, :, 8:].any()                      # voxels far outside the blob's extent
    if masking == "intensity":
        e.node.SetSourceVolumeIntensityMask(True)
        e.node.SetSourceVolumeIntensityMaskRange(150, 255)
        editable = e.in_range(150, 255)
    else:
        e.node.SetMaskMode(slicer.vtkMRMLSegmentationNode.EditAllowedInsideSingleSegment)
        e.node.SetMaskSegmentID(e.other)
        editable = e.mask(e.other)
    blob = e.in_range(200, 255)
    (res,) = e.apply(lower=200, upper=255)
    # Slicer's Set semantics: replaced inside the editable area, kept outside it
    assert np.array_equal(e.mask(e.target), (blob & editable) | (previous & ~editable))
    assert res.voxels == int((blob & editable).sum()) > 0
    e_ijk = modified_extents[-1]
    assert e_ijk[4] <= BLOB[0].start and e_ijk[5] >= 7 and e_ijk[1] >= 8   # crop covers the old voxels


def test_box_extent():
    from MedSegCore.threshold.engine import bounding_box

    mask = np.zeros((5, 6, 7), bool)
    assert bounding_box(mask) is None and editor_apply.box_extent(None, [0, 6, 0, 5, 0, 4]) is None
    mask[1, 2, 3] = mask[3, 4, 1] = True
    assert bounding_box(mask) == (slice(1, 4), slice(2, 5), slice(1, 4))
    assert editor_apply.box_extent(bounding_box(mask), [10, 16, 20, 25, 30, 34]) == [11, 13, 22, 24, 31, 33]


def test_slice_from_plane():
    e = Editor(direction=_rotation())
    source = editor_apply.LogicTarget(e.logic).source()
    ijk_to_ras = e.geometry.ijk_to_ras()
    plane = np.eye(4)
    plane[:3, :3] = e.geometry.direction_matrix              # view axes = I, J; normal = K
    plane[:3, 3] = (ijk_to_ras @ [3, 5, 6, 1])[:3]
    assert editor_apply.slice_from_plane(source, plane) == (2, 6)
    plane[:3, :3] = e.geometry.direction_matrix[:, [1, 2, 0]]  # normal = I
    assert editor_apply.slice_from_plane(source, plane) == (0, 3)
    plane[:3, :3] = _rotation(40, 30)
    with pytest.raises(ParameterError, match="oblique"):
        editor_apply.slice_from_plane(source, plane)


# --- live preview of the displayed slice (MedSegCore.threshold.preview, MedSegCore.mrml.reslice) -----------------------------

def _nearest(array, ijk_to_ras, xy_to_ras, w, h):
    """numpy reference: nearest-neighbour value under each XY pixel, NaN outside the volume."""
    ys, xs = np.mgrid[:h, :w]
    xy = np.stack([xs.ravel(), ys.ravel(), np.zeros(xs.size), np.ones(xs.size)])
    ijk = np.floor((np.linalg.inv(ijk_to_ras) @ xy_to_ras @ xy)[:3] + 0.5).astype(int)
    inside = np.all((ijk >= 0) & (ijk < np.array(array.shape[::-1])[:, None]), axis=0)
    out = np.full(xs.size, np.nan, np.float32)
    out[inside] = array[ijk[2, inside], ijk[1, inside], ijk[0, inside]]
    return out.reshape(h, w)


@pytest.mark.parametrize("oblique", [False, True])
def test_view_overlay_thresholds_the_displayed_slice(oblique):
    from MedSegCore.mrml import reslice

    e = Editor(direction=_rotation() if oblique else np.eye(3))
    slice_node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSliceNode")
    slice_node.SetOrientation("Axial")
    slice_node.SetDimensions(40, 30, 1)
    pixel = 0.8 if oblique else 0.2                  # oblique: the view is larger than the volume
    slice_node.SetFieldOfView(40 * pixel, 30 * pixel, 1.0)
    center = e.geometry.ijk_to_ras() @ [6.3, 5.2, 3, 1]          # view centred inside the volume, slice K=3
    slice_to_ras = slice_node.GetSliceToRAS()
    for r in range(3):
        slice_to_ras.SetElement(r, 3, float(center[r]))
    slice_node.UpdateMatrices()
    overlay = reslice.ViewOverlay()
    rgba = overlay.update(e.volume, slice_node, [(50, 150, (1.0, 0.0, 0.0))], opacity=0.6)
    xy_to_ras = reslice._matrix(slice_node.GetXYToRAS())
    values = _nearest(e.array, e.geometry.ijk_to_ras(), xy_to_ras, 40, 30)
    inside_volume = ~np.isnan(values)
    assert overlay.outside == -32768 and overlay.values.dtype == np.int16     # resliced in the volume's type
    assert np.array_equal(overlay.inside(), inside_volume)
    assert np.array_equal(overlay.values[inside_volume], values[inside_volume])
    assert np.isnan(values).any() == oblique        # the tilted volume does not fill the view
    if not oblique:                                 # the axial view shows voxels of IJK slice 3 only
        assert set(np.unique(values)) <= set(np.unique(e.array[3]).astype(np.float32))
    inside = (values >= 50) & (values <= 150)
    assert inside.sum() > 0 and np.array_equal(rgba[..., 3] > 0, inside)
    assert (rgba[inside] == [255, 0, 0, 153]).all()
    assert overlay.image.GetDimensions() == (40, 30, 1) and overlay.actor.GetVisibility()
    # a range that includes the outside marker still shows only pixels inside the volume
    rgba = overlay.update(e.volume, slice_node, [(-32768, 32767, (1.0, 0.0, 0.0))], invert=False)
    assert np.array_equal(rgba[..., 3] > 0, inside_volume)
    rgba = overlay.update(e.volume, slice_node, [(0, 60, (1.0, 0.0, 0.0)), (61, 32767, (0.0, 1.0, 0.0))])
    assert np.array_equal(rgba[..., 3] > 0, inside_volume)
    slice_node.SetSliceOffset(slice_node.GetSliceOffset() + 2.0)      # plane moved: resliced again
    overlay.update(e.volume, slice_node, [(50, 150, (1.0, 0.0, 0.0))])
    moved = _nearest(e.array, e.geometry.ijk_to_ras(), reslice._matrix(slice_node.GetXYToRAS()), 40, 30)
    assert np.array_equal(overlay.inside(), ~np.isnan(moved))
    assert np.array_equal(overlay.values[~np.isnan(moved)], moved[~np.isnan(moved)])


@pytest.mark.parametrize("dtype, expected", [(np.int16, -32768), (np.uint8, 255), (np.float32, None)])
def test_outside_marker_is_a_value_no_voxel_has(dtype, expected):
    from MedSegCore.mrml import reslice

    array = np.arange(60, dtype=dtype).reshape(3, 4, 5)           # uint8: uses 0, so the marker is 255
    volume = nodes.add_volume_node(array, Geometry((5, 4, 3), (1, 1, 1), (0, 0, 0), np.eye(3)), "marker")
    assert reslice.outside_marker(volume.GetImageData()) == expected
    array = np.array([0, 255] * 30, np.uint8).reshape(3, 4, 5)    # whole uint8 range: NaN in float32
    volume = nodes.add_volume_node(array, Geometry((5, 4, 3), (1, 1, 1), (0, 0, 0), np.eye(3)), "full")
    assert reslice.outside_marker(volume.GetImageData()) is None
    resampler = reslice.SliceResampler()
    xy = np.eye(4)
    xy[:3, 3] = [-2, -2, 1]                                       # a 4x4-pixel view half off the volume
    values = resampler.slice(volume.GetImageData(), np.eye(4), xy, (4, 4))
    assert values.dtype == np.float32 and resampler.outside is None
    assert np.isnan(values[:, :2]).all() and np.isnan(values[:2]).all()
    assert np.array_equal(values[2:, 2:], array[1, :2, :2].astype(np.float32))


def test_axial_preview_and_classes():
    from MedSegCore.threshold import preview

    array = np.random.default_rng(1).integers(-1000, 1000, (3, 64, 80)).astype(np.int16)
    mask, rgba = preview.axial_preview(array, 1, -100, 300, invert=True, color=(0, 1, 0), opacity=1.0)
    assert np.array_equal(mask, (array[1] < -100) | (array[1] > 300))
    assert (rgba[mask] == [0, 255, 0, 255]).all() and (rgba[~mask] == 0).all()
    ranges = [(-1000, -1, (1, 0, 0)), (0, 999, (0, 0, 1))]
    rgba = preview.classes_rgba(array[2], ranges, opacity=1.0)
    assert (rgba[array[2] < 0] == [255, 0, 0, 255]).all() and (rgba[array[2] >= 0] == [0, 0, 255, 255]).all()
    with pytest.raises(ParameterError):
        preview.axial_preview(array, 3, 0, 1)
