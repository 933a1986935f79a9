"""Write threshold results into segments the way Slicer's Segment Editor does (Qt-free).

Every write goes through Slicer's own ``vtkSlicerSegmentEditorLogic::ModifySegmentByLabelmap``, so
the editable area (mask mode), the editable intensity range, the overwrite mode and undo behave
exactly as for Slicer's Threshold effect.  Two routes reach that logic (see
:mod:`MedSegCore.mrml.editor_targets`): :class:`LogicTarget` (headless) and :class:`EffectTarget`.

Both routes get the same labelmaps from :func:`apply_threshold`: built on the aligned source volume
grid (as Slicer's Threshold effect builds its modifier labelmap), computed and checked before
anything in the scene changes.  One call is one undo step, multi-Otsu (k new segments) included.

``scope='slice'`` changes one slice (index ``slice_index`` along IJK axis ``slice_axis``, K by
default) and keeps Set semantics there: inside the editable area of that slice the segment becomes
the threshold result; elsewhere it is untouched.  It is written as "clear the editable part of the
slice" then ``ModificationModeAdd`` with the slice extent, because ``ModificationModeSet`` always
clears the whole segment first.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .. import terminology
from ..threshold import engine
from .editor_targets import EffectTarget, LogicTarget, editor_logic, slice_from_plane
from ..errors import EmptyResultError, InputError, ParameterError

__all__ = ["AppliedSegment", "EffectTarget", "LogicTarget", "apply_threshold", "editable_mask", "editor_logic",
           "image_array", "new_labelmap", "plan", "slice_from_plane", "slice_region", "undo"]

SET, ADD = "Set", "Add"   # modes passed to the targets' modify()


@dataclass
class AppliedSegment:
    """One segment written by :func:`apply_threshold`."""

    segment_id: str
    name: str
    lower: float
    upper: float
    voxels: int          # voxels set in the segment by this call (threshold result inside the editable area)
    volume_ml: float
    created: bool


# --- image helpers ------------------------------------------------------------------------------

def image_array(image) -> np.ndarray:
    """KJI numpy view of a ``vtkImageData``'s scalars (first component)."""
    from vtk.util import numpy_support

    e = image.GetExtent()
    shape = (e[5] - e[4] + 1, e[3] - e[2] + 1, e[1] - e[0] + 1)
    scalars = image.GetPointData().GetScalars() if min(shape) > 0 else None
    if scalars is None:
        raise InputError("the source volume has no voxels on the segmentation's grid")
    a = numpy_support.vtk_to_numpy(scalars)
    if a.ndim == 2:
        a = a[:, 0]
    return a.reshape(shape)


def new_labelmap(template, mask: np.ndarray, extent=None):
    """Unsigned char ``vtkOrientedImageData`` on ``template``'s geometry holding ``mask``, with
    ``template``'s extent or ``extent`` (a sub-extent, e.g. one slice)."""
    import vtk
    import slicer

    from . import nodes

    lm = slicer.vtkOrientedImageData()
    lm.SetExtent(list(extent) if extent is not None else template.GetExtent())
    lm.SetSpacing(template.GetSpacing())
    lm.SetOrigin(template.GetOrigin())
    lm.CopyDirections(template)
    lm.AllocateScalars(vtk.VTK_UNSIGNED_CHAR, 1)
    view = image_array(lm)
    nodes.advise_huge_pages(view)
    view[...] = mask
    return lm


def _on_extent(values: np.ndarray, extent, target_extent, fill):
    """``values`` (on ``extent``) cut/padded to ``target_extent``; voxels outside get ``fill``."""
    if tuple(extent) == tuple(target_extent):
        return values
    out = np.full(tuple(target_extent[2 * a + 1] - target_extent[2 * a] + 1 for a in (2, 1, 0)), fill,
                  dtype=values.dtype)
    src, dst = [], []
    for a in (2, 1, 0):
        lo, hi = max(extent[2 * a], target_extent[2 * a]), min(extent[2 * a + 1], target_extent[2 * a + 1])
        if lo > hi:
            return out
        src.append(slice(lo - extent[2 * a], hi - extent[2 * a] + 1))
        dst.append(slice(lo - target_extent[2 * a], hi - target_extent[2 * a] + 1))
    out[tuple(dst)] = values[tuple(src)]
    return out


def slice_region(shape, axis: int, index: int):
    """numpy index of one slice (``axis`` 0=I, 1=J, 2=K, index from 0) of a KJI array."""
    kji = 2 - int(axis)
    if not 0 <= int(axis) <= 2:
        raise ParameterError(f"slice axis must be 0 (I), 1 (J) or 2 (K), got {axis}")
    if not 0 <= int(index) < shape[kji]:
        raise ParameterError(f"slice index {index} is outside the volume (0 .. {shape[kji] - 1})")
    region = [slice(None)] * 3
    region[kji] = slice(int(index), int(index) + 1)
    return tuple(region)


# --- the operation ------------------------------------------------------------------------------

def editable_mask(target, source, region=(slice(None),) * 3) -> np.ndarray | None:
    """Boolean KJI editable area on ``source``'s grid, cut to ``region`` (None: everywhere), from
    Slicer's mask labelmap (mask mode) and the editable intensity range (inclusive, as
    ``vtkImageThreshold``)."""
    import slicer

    node = target.editor_node
    editable = None
    if node.GetMaskMode() != slicer.vtkMRMLSegmentationNode.EditAllowedEverywhere:
        mask = target.edit_mask()      # non-zero where editing is not allowed
        editable = _on_extent(image_array(mask) == 0, mask.GetExtent(), source.GetExtent(), True)[region]
    if node.GetSourceVolumeIntensityMask():
        lo, hi = node.GetSourceVolumeIntensityMaskRange()
        values = image_array(source)[region]
        inside = (values >= lo) & (values <= hi)
        editable = inside if editable is None else editable & inside
    return editable


@dataclass
class _Planned:
    name: str
    lower: float
    upper: float
    color: tuple | None
    mask: np.ndarray          # threshold result on the written region (whole grid or one slice)
    voxels: int
    extent: list | None = None    # IJK extent of the result's voxels (whole-volume scope; None: empty)
    labelmap: object = None       # the editor's modifier labelmap when ``mask`` is a view of its memory


def _modifier_scratch(target, source):
    """The editor's modifier labelmap, cleared, and a bool view of its memory, when it lies on
    ``source``'s grid; else (None, None).  Reusing it, as Slicer's Threshold effect does, spares a
    fresh whole-volume allocation per apply."""
    import vtk
    import slicer

    labelmap = target.modifier()
    if (labelmap is None or tuple(labelmap.GetExtent()) != tuple(source.GetExtent())
            or labelmap.GetScalarType() != vtk.VTK_UNSIGNED_CHAR
            or not slicer.vtkOrientedImageDataResample.DoGeometriesMatch(labelmap, source)):
        return None, None
    return labelmap, image_array(labelmap).view(bool)


def box_extent(box, extent) -> list | None:
    """IJK extent of a KJI bounding box (tuple of slices, :func:`engine.bounding_box`) of an
    array whose own IJK extent is ``extent``; None for None (no voxels)."""
    if box is None:
        return None
    k, j, i = box
    return [extent[0] + i.start, extent[0] + i.stop - 1, extent[2] + j.start, extent[2] + j.stop - 1,
            extent[4] + k.start, extent[4] + k.stop - 1]


def plan(target, params: engine.ThresholdParameters, scope: str = "volume", slice_index=None,
         slice_axis: int = 2):
    """Compute every labelmap :func:`apply_threshold` would write; touches nothing in the scene.

    Returns (source image, region index, editable mask on the region or None, [_Planned])."""
    if scope not in ("volume", "slice"):
        raise ParameterError(f"scope must be 'volume' or 'slice', got {scope!r}")
    source = target.source()
    array = image_array(source)
    if np.issubdtype(array.dtype, np.floating) and np.isnan(array).any():
        raise ParameterError("source volume has NaN voxels; thresholds are undefined there")
    spacing = source.GetSpacing()
    region = (slice(None),) * 3
    if scope == "slice":
        if slice_index is None:
            raise ParameterError("scope 'slice' needs a slice index")
        region = slice_region(array.shape, slice_axis, slice_index)
    editable = editable_mask(target, source, region)
    if editable is not None and not editable.any() and not params.allow_empty:
        raise EmptyResultError("the editable area (masking settings) is empty here; nothing was written")
    cleanup = replace(params.cleanup, per_slice=params.cleanup.per_slice and scope == "volume")
    ranges = engine.resolve_ranges(array, params)
    scratch_labelmap, scratch = None, None
    if scope == "volume" and len(ranges) == 1:
        scratch_labelmap, scratch = _modifier_scratch(target, source)
    planned = []
    for name, lo, hi, color in ranges:
        one = engine.ThresholdParameters(lower=lo, upper=hi, invert=params.invert, cleanup=cleanup,
                                            name=name, allow_empty=True)
        allocate = (lambda: scratch) if scratch is not None else None
        result = engine.segment(array[region], spacing, one, allocate=allocate)[0]
        mask = result.mask
        written = result.voxels if editable is None else int(np.count_nonzero(mask & editable))
        if written == 0 and not params.allow_empty:
            where = " inside the editable area" if editable is not None else ""
            side = "outside" if params.invert else "within"
            raise EmptyResultError(f"no voxel {side} {lo:g} .. {hi:g}{where}"
                                   f"{' in this slice' if scope == 'slice' else ''}; nothing was written")
        extent = box_extent(result.box, source.GetExtent()) if scope == "volume" else None
        planned.append(_Planned(name, lo, hi, color, mask, written, extent,
                                scratch_labelmap if mask is scratch else None))
    return source, region, editable, planned


def _segment_extent(target, segment_id, source) -> list | None:
    """IJK extent (on ``source``'s grid) holding all voxels of ``segment_id``'s labelmap layer;
    None if the layer is empty, ``source``'s whole extent if the layer lies on another grid."""
    import slicer

    segment = target.segmentation_node.GetSegmentation().GetSegment(segment_id)
    name = slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName()
    layer = segment.GetRepresentation(name) if segment is not None else None
    if layer is None:
        return None
    resample = slicer.vtkOrientedImageDataResample
    if not resample.DoGeometriesMatch(layer, source):
        return list(source.GetExtent())
    e = [0, -1, 0, -1, 0, -1]
    return e if resample.CalculateEffectiveExtent(layer, e) else None


def _volume_labelmap(target, segment_id, source, p: _Planned, masked: bool):
    """The modifier labelmap for a whole-volume Set of ``p``, cropped to the voxels it sets.

    Slicer's ModifySegmentByLabelmap (Set) clears the whole segment and merges the modifier back,
    so a modifier cropped to the result's extent writes the same segment and skips most of the
    merge work.  With an editable area, Slicer keeps the segment's voxels outside it only within
    the modifier's extent, so the crop then also covers the segment's current voxels."""
    full = list(source.GetExtent())
    extent = p.extent
    if masked:
        current = _segment_extent(target, segment_id, source)
        if current is not None:
            extent = current if extent is None else [
                min(a, b) if n % 2 == 0 else max(a, b) for n, (a, b) in enumerate(zip(extent, current))]
    if extent is None:
        extent = full
    extent = [max(v, full[n]) if n % 2 == 0 else min(v, full[n]) for n, v in enumerate(extent)]
    if extent == full and p.labelmap is not None:
        return p.labelmap
    crop = tuple(slice(extent[2 * a] - full[2 * a], extent[2 * a + 1] - full[2 * a] + 1) for a in (2, 1, 0))
    return new_labelmap(source, p.mask[crop], extent)


def _region_extent(source, region):
    e = list(source.GetExtent())
    for a, r in zip((2, 1, 0), region):
        if r.start is not None:
            e[2 * a] = e[2 * a] + r.start
            e[2 * a + 1] = e[2 * a] + (r.stop - r.start) - 1
    return e


def _clear(target, segment_id, source, region, editable):
    """Remove ``segment_id``'s voxels in the editable part of ``region``: what Remove mode does
    without masking (``SetBinaryLabelmapToSegment`` MERGE_MIN with the inverted region)."""
    import slicer

    extent = _region_extent(source, region)
    keep = np.uint8(0) if editable is None else np.where(editable, 0, 255).astype(np.uint8)
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    if not logic.SetBinaryLabelmapToSegment(new_labelmap(source, keep, extent), target.segmentation_node,
                                            segment_id, logic.MODE_MERGE_MIN, extent, False, []):
        raise InputError(f"could not clear segment '{segment_id}' in the slice")


def apply_threshold(target, params: engine.ThresholdParameters, scope: str = "volume",
                    slice_index=None, slice_axis: int = 2, segment_id: str | None = None) -> list:
    """Threshold the editor's source volume into a segment, through the Segment Editor logic.

    ``target`` is a :class:`LogicTarget`, an :class:`EffectTarget` or a ``vtkSlicerSegmentEditorLogic``.
    The result replaces ``segment_id`` (default: the selected segment; a new one if none is selected)
    inside the editable area; multi-Otsu (``params.levels``) writes k new segments.  One undo step.
    An empty result raises :class:`EmptyResultError` and leaves the scene as it was, unless
    ``params.allow_empty``.  Returns one :class:`AppliedSegment` per written segment."""
    from . import nodes

    if not isinstance(target, (LogicTarget, EffectTarget)):
        target = LogicTarget(target)
    seg_node = target.segmentation_node
    if seg_node is None:
        raise InputError("the segment editor has no segmentation")
    source, region, editable, planned = plan(target, params, scope, slice_index, slice_axis)
    segmentation = seg_node.GetSegmentation()
    if params.levels is None:
        segment_id = segment_id or target.editor_node.GetSelectedSegmentID() or None
        if segment_id is not None and segmentation.GetSegment(segment_id) is None:
            raise ParameterError(f"no segment '{segment_id}' in '{seg_node.GetName()}'")
    voxel_ml = float(np.prod(source.GetSpacing())) / 1000.0
    extent = _region_extent(source, region) if scope == "slice" else None

    target.save_state()
    results = []
    colors = nodes.DEFAULT_COLORS
    for i, p in enumerate(planned):
        sid, created = segment_id, False
        if params.levels is not None or sid is None:
            color = p.color or colors[(i if params.levels else segmentation.GetNumberOfSegments()) % len(colors)]
            sid = segmentation.AddEmptySegment("", p.name, [float(c) for c in color])
            created = True
        if scope == "volume":
            target.modify(sid, _volume_labelmap(target, sid, source, p, editable is not None), SET)
        elif created:
            target.modify(sid, new_labelmap(source, p.mask, extent), SET, extent)
        else:
            labelmap = new_labelmap(source, p.mask, extent)
            _clear(target, sid, source, region, editable)
            target.modify(sid, labelmap, ADD, extent)
        segment = segmentation.GetSegment(sid)        # how it was made, for Slicer's DICOM SEG export
        for key, value in terminology.algorithm_tags("SEMIAUTOMATIC", terminology.THRESHOLD_ALGORITHM).items():
            segment.SetTag(key, value)
        if created or engine.preset_terminology(params):
            segment.SetTag(segment.GetTerminologyEntryTagName(), terminology.slicer_tag(engine.preset_terminology(params)))
        results.append(AppliedSegment(sid, segment.GetName(), p.lower, p.upper,
                                      p.voxels, p.voxels * voxel_ml, created))
    return results


def undo(target) -> None:
    """Restore the state saved before the last apply (headless: ``vtkSlicerSegmentEditorLogic.Undo``)."""
    logic = target.logic if isinstance(target, LogicTarget) else target
    logic.Undo()
