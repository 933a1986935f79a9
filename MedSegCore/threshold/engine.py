"""Threshold segmentation engine: ranges, presets, auto methods, multi-Otsu, masks and clean-up.

Pure numpy; :mod:`MedSegCore.mrml.segment_ops` writes its results into Slicer segmentation nodes.
A range is inclusive at both ends (``lower <= value <= upper``), as in Slicer's Threshold effect.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import cleanup, presets
from ..errors import EmptyResultError, ParameterError


@dataclass
class CleanupOptions:
    """Clean-up applied to each result mask before it is written."""

    largest_component: bool = False
    min_size_mm3: float = 0.0
    fill_holes: bool = False
    per_slice: bool = False      # 2D (each axial slice) instead of 3D

    def any(self) -> bool:
        return bool(self.largest_component or self.min_size_mm3 or self.fill_holes)


@dataclass
class ThresholdParameters:
    """Everything that defines a threshold segmentation.  Exactly one source of the range may be
    given: ``levels`` (multi-Otsu), ``method`` (auto threshold), ``preset`` or ``lower``/``upper``."""

    lower: float | None = None
    upper: float | None = None
    method: str | None = None
    levels: int | None = None          # multi-Otsu classes, 2..5: one segment per class
    preset: str | None = None
    invert: bool = False
    cleanup: CleanupOptions = field(default_factory=CleanupOptions)
    name: str | None = None
    color: tuple | None = None
    allow_empty: bool = False


@dataclass
class SegmentResult:
    name: str
    mask: np.ndarray
    color: tuple | None
    lower: float
    upper: float
    voxels: int
    volume_ml: float
    box: tuple | None = None       # KJI bounding box (slices) of the voxels; None if empty


_POOL = None
_THREADS = 1


def _pool():
    """Threads for :func:`threshold_blocks` (numpy's comparisons release the GIL)."""
    global _POOL, _THREADS
    if _POOL is None:
        import os
        from concurrent.futures import ThreadPoolExecutor

        _THREADS = max(1, min(4, os.cpu_count() or 1))
        _POOL = ThreadPoolExecutor(max_workers=_THREADS, thread_name_prefix="medseg-threshold")
    return _POOL


def threshold_blocks(array: np.ndarray, lower: float, upper: float, invert: bool = False,
                     roi: np.ndarray | None = None, out: np.ndarray | None = None):
    """``lower <= array <= upper`` (or outside it if ``invert``) within ``roi``, as a boolean KJI
    mask, with its voxel count and the KJI bounding box of its voxels (a tuple of slices, None
    if empty), all in one pass: blocks of slices (about 1 MB of voxels each, so the count and the
    box are taken while the block is in cache) spread over a few threads.  ``out`` may be a
    preallocated bool array (e.g. a view of VTK's memory).  Returns (mask, count, box)."""
    if lower > upper:
        raise ParameterError(f"lower threshold {lower:g} is above upper threshold {upper:g}")
    if array.ndim != 3:
        raise ParameterError(f"threshold needs a 3D array, got shape {array.shape}")
    mask = np.empty(array.shape, bool) if out is None else out
    n = array.shape[0]
    step = max(1, (1 << 20) // max(1, array[0].size))
    starts = list(range(0, n, step))
    pool = _pool()                   # sets _THREADS
    workers = min(len(starts), _THREADS) if n * array[0].size >= (1 << 22) else 1
    occupied = np.zeros(n, bool)

    def work(which):
        scratch = np.empty((step,) + array.shape[1:], bool)
        plane, count = np.zeros(array.shape[1:], bool), 0
        for k in starts[which::workers]:
            block, tmp = mask[k:k + step], scratch[:min(step, n - k)]
            np.greater_equal(array[k:k + step], lower, out=block)
            np.less_equal(array[k:k + step], upper, out=tmp)
            block &= tmp
            if invert:
                np.logical_not(block, out=block)
            if roi is not None:
                block &= roi[k:k + step]
            occupied[k:k + step] = block.reshape(len(block), -1).max(axis=1)
            count += int(np.count_nonzero(block))
            np.logical_or.reduce(block, axis=0, out=tmp[0])
            plane |= tmp[0]
        return plane, count

    if workers == 1:
        parts = [work(0)]
    else:
        parts = list(pool.map(work, range(workers)))
    count = sum(c for _, c in parts)
    if count == 0:
        return mask, 0, None
    plane = np.logical_or.reduce([p for p, _ in parts])
    return mask, count, _box(occupied, plane)


def threshold_mask(array: np.ndarray, lower: float, upper: float, invert: bool = False,
                   roi: np.ndarray | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """Boolean mask of ``lower <= array <= upper`` (or outside it if ``invert``), within ``roi``
    (:func:`threshold_blocks` without the count and box)."""
    return threshold_blocks(array, lower, upper, invert, roi, out)[0]


def bounding_box(mask: np.ndarray):
    """KJI bounding box (tuple of slices) of a 3D mask's non-zero voxels; None if it has none."""
    occupied = mask.reshape(mask.shape[0], -1).max(axis=1)
    k = np.flatnonzero(occupied)
    if k.size == 0:
        return None
    return _box(occupied, np.logical_or.reduce(mask[k[0]:k[-1] + 1], axis=0))


def _box(occupied: np.ndarray, plane: np.ndarray) -> tuple:
    """KJI slices from the occupied slices (K) and the OR of them projected on the JI plane."""
    return tuple(slice(int(v[0]), int(v[-1]) + 1) for v in (
        np.flatnonzero(occupied), np.flatnonzero(plane.max(axis=1)), np.flatnonzero(plane.max(axis=0))))


def _value_range(array, roi):
    values = array[roi] if roi is not None else array
    if values.size == 0:
        raise EmptyResultError("the region of interest (mask) is empty")
    return float(values.min()), float(values.max())


def auto_range(array: np.ndarray, method: str, roi: np.ndarray | None = None) -> tuple:
    """(lower, upper) from an automatic method: from the threshold to the maximum (the brighter
    class is the foreground, as in Slicer's Threshold effect's default "auto → maximum" mode)."""
    from . import autothreshold

    t = autothreshold.compute_threshold(array, method, mask=roi)
    _, vmax = _value_range(array, roi)
    # ITK's filters put voxels <= t inside (dark) and > t outside: the bright class starts above t.
    return float(autothreshold.bright_lower_bound(t, array.dtype)), vmax


def resolve_ranges(array: np.ndarray, params: ThresholdParameters, roi=None) -> list:
    """List of (name, lower, upper, color) the parameters ask for (several for multi-Otsu)."""
    base = params.name
    if params.levels is not None:
        from . import autothreshold

        if not 2 <= params.levels <= 5:
            raise ParameterError(f"multi-Otsu needs 2 to 5 classes, got {params.levels}")
        cuts = autothreshold.multi_otsu(array, params.levels, mask=roi)
        vmin, vmax = _value_range(array, roi)
        edges = [vmin] + [float(c) for c in cuts] + [vmax]
        out = []
        for i in range(params.levels):
            # Class i holds (edge_i, edge_i+1] as in ITK; class 0 includes the minimum.
            lo = edges[i] if i == 0 else float(autothreshold.bright_lower_bound(edges[i], array.dtype))
            out.append((f"{base or 'Class'} {i + 1}", lo, edges[i + 1], None))
        return out
    if params.method:
        lo, hi = auto_range(array, params.method, roi)
        return [(base or params.method.replace("_", " ").title(), lo, hi, params.color)]
    if params.preset:
        preset = presets.get_preset(params.preset)
        lo, hi = presets.preset_range(params.preset, array, roi)
        return [(base or preset.label, lo, hi, params.color or preset.color)]
    if params.lower is None and params.upper is None:
        raise ParameterError("give a range (lower/upper), a preset, an auto method or multi-Otsu levels")
    if params.lower is None or params.upper is None:
        vmin, vmax = _value_range(array, roi)
    lo = vmin if params.lower is None else float(params.lower)
    hi = vmax if params.upper is None else float(params.upper)
    if lo > hi:
        which = " (the volume's maximum)" if params.upper is None else (
            " (the volume's minimum)" if params.lower is None else "")
        raise ParameterError(f"lower threshold {lo:g} is above upper threshold {hi:g}{which}")
    return [(base or "Threshold", lo, hi, params.color)]


def preset_terminology(params: ThresholdParameters) -> dict | None:
    """Terminology of the segment a preset's range makes (None where multi-Otsu levels, an auto
    method or --invert decide what the segment is)."""
    if params.preset and not params.levels and not params.method and not params.invert:
        return presets.get_preset(params.preset).terminology
    return None


def segment(array: np.ndarray, spacing, params: ThresholdParameters, roi: np.ndarray | None = None,
            allocate=None) -> list:
    """Run the threshold described by ``params`` on a KJI ``array`` (``spacing`` I, J, K mm),
    inside ``roi`` if given.  Returns one :class:`SegmentResult` per output segment.
    ``allocate()`` may supply each output bool array (e.g. a view of a VTK labelmap's memory).

    An empty result raises :class:`EmptyResultError` unless ``params.allow_empty``; conflicting or
    impossible parameters raise ParameterError first (:func:`.options.check_parameters`)."""
    from .options import check_parameters

    check_parameters(params)
    if array.ndim != 3:
        raise ParameterError(f"threshold needs a 3D scalar volume, got shape {array.shape}")
    if np.issubdtype(array.dtype, np.floating) and np.isnan(array).any():
        raise ParameterError("volume has NaN voxels; thresholds are undefined there")
    if roi is not None and not roi.any():
        raise EmptyResultError("the mask (region of interest) is empty")
    voxel_ml = float(np.prod(spacing)) / 1000.0
    results = []
    for name, lo, hi, color in resolve_ranges(array, params, roi):
        mask, count, box = threshold_blocks(array, lo, hi, params.invert, roi, out=allocate() if allocate else None)
        if params.cleanup.any():
            c = params.cleanup
            mask = cleanup.clean(mask, spacing, c.largest_component, c.min_size_mm3, c.fill_holes, c.per_slice)
            count, box = int(np.count_nonzero(mask)), bounding_box(mask)
        if count == 0 and not params.allow_empty:
            side = "outside" if params.invert else "within"
            raise EmptyResultError(f"no voxel {side} {lo:g} .. {hi:g}"
                                   f"{' after clean-up' if params.cleanup.any() else ''}; nothing was written")
        results.append(SegmentResult(name, mask, color, lo, hi, count, count * voxel_ml, box))
    return results
