"""Intensity histograms built exactly as ITK's histogram threshold filters build them (one pass
over the voxels; integer images keep one count per value so any bin count derives exactly).
Shared by the automatic threshold methods in :mod:`MedSegCore.threshold.autothreshold`."""
from __future__ import annotations

import numpy as np

from ..errors import ParameterError


class Histogram:
    """Voxel counts from one pass over the (masked) array; reusable by every method.

    Integer images keep one count per value, from which any ITK binning is derived exactly;
    float images keep ITK-binned counts for the bin counts asked for when building."""

    def __init__(self, dtype, lo, hi, offset=None, vcounts=None, binned=None, sample=False):
        if hi <= lo:
            raise ParameterError(f"all selected voxels have the value {lo:g}; no threshold is possible")
        self.dtype, self.lo, self.hi, self.offset, self.vcounts = dtype, lo, hi, offset, vcounts
        self.binned, self.sample = binned or {}, sample

    def bins(self, nbins: int, sample: bool = False):
        """(counts, bin minima, bin centres, upper bound) of ``nbins`` ITK bins."""
        mins, mids, upper = _edges(self.dtype, self.lo, self.hi, nbins, sample)
        if self.vcounts is not None:
            nz = np.flatnonzero(self.vcounts)
            idx = np.searchsorted(mins, self.offset + nz.astype(np.float64), "right") - 1
            return np.bincount(idx, self.vcounts[nz], nbins).astype(np.int64), mins, mids, upper
        if nbins not in self.binned or sample != self.sample:
            raise ParameterError(f"this histogram has no {nbins}-bin counts; build it with bins={nbins}")
        return self.binned[nbins], mins, mids, upper


def _edges(dtype, lo, hi, nbins, sample):
    """ITK's bin minima (double = lower + float32(j * float32 width)), centres and upper bound.

    ``sample`` selects OtsuMultipleThresholds' generator: no fixed 8-bit range, and for float32
    images the margin uses the float32 difference max - min."""
    if not sample and dtype.kind in "iu" and dtype.itemsize == 1:
        lower, upper = np.iinfo(dtype).min - 0.5, np.iinfo(dtype).max + 0.5
    else:
        rng = float(np.float32(hi) - np.float32(lo)) if sample and dtype == np.float32 else hi - lo
        lower, upper = float(lo), float(hi) + (rng / nbins) / 100.0
    width = (np.float32(upper) - np.float32(lower)) / np.float32(nbins)
    j = np.arange(nbins, dtype=np.float32)
    mins = lower + (j * width).astype(np.float64)
    maxs = np.append(mins[1:], upper)
    return mins, (mins + maxs) / 2.0, upper


def histogram(array, bins=(128, 256), mask=None, _sample=False) -> Histogram:
    """Count the voxels of a 3-D ``array`` where ``mask`` is set, in one pass.

    ``bins`` (int or ints) matters only for float images: the ITK bin counts to prepare (the
    default serves every method). ParameterError for NaN/infinite values, a non-3-D or
    non-numeric array, an empty mask or a constant image."""
    a = np.asarray(array)
    if a.dtype.kind not in "iuf":
        raise ParameterError(f"expected a numeric (integer or float) array, got dtype {a.dtype}")
    if a.ndim != 3:
        raise ParameterError(f"expected a 3-D (K, J, I) array, got {a.ndim}-D shape {a.shape}")
    dt = np.dtype(np.float32) if a.dtype == np.float16 else a.dtype.newbyteorder("=")
    flat = a.reshape(-1).astype(dt, copy=False)
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != a.shape:
            raise ParameterError(f"mask shape {mask.shape} differs from array shape {a.shape}")
        mask = mask.reshape(-1).astype(bool, copy=False)
        if not mask.any():
            raise ParameterError("the mask selects no voxel; nothing to threshold")
    if dt.kind in "iu" and dt.itemsize <= 2:          # one bincount over the raw bit patterns
        view, acc = flat.view(f"u{dt.itemsize}"), np.zeros(256 ** dt.itemsize, np.int64)
        for s in range(0, view.size, 1 << 20):
            c = view[s:s + (1 << 20)]
            acc += np.bincount(c if mask is None else c[mask[s:s + (1 << 20)]], minlength=acc.size)
        offset = int(np.iinfo(dt).min)
        acc = np.roll(acc, acc.size // 2) if offset else acc
        nz = np.flatnonzero(acc)
        return Histogram(dt, float(offset + nz[0]), float(offset + nz[-1]), offset + int(nz[0]),
                         acc[nz[0]:nz[-1] + 1])
    vals = flat if mask is None else flat[mask]
    lo, hi = vals.min(), vals.max()
    if np.isnan(lo) or np.isnan(hi):
        raise ParameterError("the array contains NaN values; replace them before thresholding")
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ParameterError("the array contains infinite values; no histogram can be built")
    lo, hi = float(lo), float(hi)
    if dt.kind in "iu" and hi - lo < 1 << 24:         # wide integers: still one count per value
        acc = np.zeros(int(hi - lo) + 1, np.int64)
        for s in range(0, vals.size, 1 << 20):
            acc += np.bincount((vals[s:s + (1 << 20)] - dt.type(lo)).astype(np.intp), minlength=acc.size)
        return Histogram(dt, lo, hi, int(lo), acc)
    nbs = sorted({int(b) for b in np.atleast_1d(bins)})
    if nbs[0] < 2:
        raise ParameterError(f"histogram bins must be at least 2, got {nbs[0]}")
    binned = {nb: np.zeros(nb, np.int64) for nb in nbs} if hi > lo else {}
    work = np.float32 if dt == np.float32 else np.float64   # float32 differences are exact enough
    for nb, acc in binned.items():
        mins = _edges(dt, lo, hi, nb, _sample)[0]
        span = mins[-1] - mins[0]                          # 0 when float32 cannot resolve the range
        for s in range(0, vals.size, 1 << 16):
            v = vals[s:s + (1 << 16)].astype(work, copy=False)
            if span <= 0:
                acc += np.bincount(np.searchsorted(mins, v.astype(np.float64), "right") - 1, minlength=nb)
                continue
            x = (v - work(lo)) * work((nb - 1) / span)      # bin position, off by < 1e-3 bin
            idx = np.minimum(x.astype(np.intp), nb - 1)
            acc += np.bincount(idx, minlength=nb)
            near = np.flatnonzero((np.abs(x - np.rint(x)) < 1e-3) & (x != 0))
            if near.size:                                  # settle values close to an edge exactly
                exact = np.searchsorted(mins, v[near].astype(np.float64), "right") - 1
                acc += np.bincount(exact, minlength=nb) - np.bincount(idx[near], minlength=nb)
    return Histogram(dt, lo, hi, binned=binned, sample=_sample)




def display_bins(array, nbins: int = 128, mask=None):
    """(heights in 0..1, bin edges) of ``nbins`` equal bins from the minimum to the maximum, for
    drawing the volume's histogram under a threshold range (as Slicer's Threshold effect does)."""
    h = histogram(array, bins=(nbins,), mask=mask)
    counts, mins, _mids, upper = h.bins(nbins)
    return counts / max(int(counts.max()), 1), np.append(mins, upper)


def bins_in_range(edges, lower: float, upper: float):
    """Boolean per bin: the bin overlaps ``lower .. upper``."""
    edges = np.asarray(edges, float)
    return (edges[1:] >= lower) & (edges[:-1] <= upper)
