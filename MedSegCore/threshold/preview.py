"""Live threshold preview maths of the one slice a view shows (numpy only, a few milliseconds a tick).

Only the displayed 2D slice is thresholded, never the whole volume:

* an axial IJK slice of a KJI array is just ``array[k]`` (:func:`axial_preview`);
* any other view plane is resampled by ``MedSegCore.mrml.reslice`` (``vtkImageReslice``, nearest
  neighbour); pixels outside the volume carry a marker value (``outside``) or NaN.

:func:`overlay_rgba` / :func:`classes_rgba` turn the slice into an RGBA image (straight alpha,
rows bottom-up like VTK images) that a ``vtkImageMapper`` / ``vtkActor2D`` can show in the view's XY
space, as Slicer's Threshold effect shows its preview.  Buffers can be reused between ticks.
"""
from __future__ import annotations

import numpy as np

from ..errors import ParameterError


def threshold_slice(values: np.ndarray, lower: float, upper: float, invert: bool = False,
                    out: np.ndarray | None = None, outside=None) -> np.ndarray:
    """Boolean 2D mask of ``lower <= v <= upper`` (or outside it if ``invert``).  Pixels outside
    the volume never count: NaN, or ``outside`` (the marker value of :class:`SliceResampler`)."""
    if lower > upper:
        raise ParameterError(f"lower threshold {lower:g} is above upper threshold {upper:g}")
    if out is None or out.shape != values.shape:
        out = np.empty(values.shape, bool)
    if invert:
        np.less(values, lower, out=out)
        out |= values > upper
    else:
        np.greater_equal(values, lower, out=out)
        out &= values <= upper
    if outside is not None:
        out &= values != outside
    return out


def _packed(color, opacity: float) -> np.uint32:
    rgba = [int(round(255 * max(0.0, min(1.0, float(c))))) for c in (*color[:3], opacity)]
    return np.frombuffer(bytes(rgba), dtype=np.uint32)[0]


def _rgba_buffer(shape, out):
    if out is None or out.shape != (*shape, 4) or out.dtype != np.uint8:
        out = np.empty((*shape, 4), np.uint8)
    return out


def overlay_rgba(mask: np.ndarray, color=(1.0, 0.5, 0.0), opacity: float = 0.5,
                 out: np.ndarray | None = None) -> np.ndarray:
    """(h, w, 4) uint8 image: ``color`` at ``opacity`` where ``mask``, transparent elsewhere."""
    out = _rgba_buffer(mask.shape, out)
    np.multiply(mask, _packed(color, opacity), out=out.view(np.uint32).reshape(mask.shape))
    return out


def classes_rgba(values: np.ndarray, ranges, opacity: float = 0.5, invert: bool = False,
                 out: np.ndarray | None = None, outside=None) -> np.ndarray:
    """RGBA image of several classes, ``ranges`` = [(lower, upper, color), ...] (multi-Otsu)."""
    out = _rgba_buffer(values.shape, out)
    packed = out.view(np.uint32).reshape(values.shape)
    packed[...] = 0
    mask = np.empty(values.shape, bool)
    for lower, upper, color in ranges:
        threshold_slice(values, lower, upper, invert, out=mask, outside=outside)
        packed[mask] = _packed(color, opacity)
    return out


def axial_preview(array: np.ndarray, k: int, lower: float, upper: float, invert: bool = False,
                  color=(1.0, 0.5, 0.0), opacity: float = 0.5, out=None):
    """(mask, rgba) of axial slice ``k`` of a KJI array: the slice is a view, nothing is copied."""
    if not 0 <= k < array.shape[0]:
        raise ParameterError(f"slice {k} is outside the volume (0 .. {array.shape[0] - 1})")
    mask = threshold_slice(array[k], lower, upper, invert)
    return mask, overlay_rgba(mask, color, opacity, out)


class SlicePreview:
    """Preview state of one slice view: the RGBA and mask buffers reused between ticks."""

    def __init__(self):
        self.rgba = None
        self.mask = None

    def update(self, values: np.ndarray, ranges, invert: bool = False, opacity: float = 0.5,
               outside=None) -> np.ndarray:
        """RGBA overlay of ``values`` (a 2D slice; ``outside`` marks pixels outside the volume) for
        ``ranges`` = [(lower, upper, color), ...]."""
        if len(ranges) == 1:
            lower, upper, color = ranges[0]
            self.mask = threshold_slice(values, lower, upper, invert, out=self.mask, outside=outside)
            self.rgba = overlay_rgba(self.mask, color, opacity, out=self.rgba)
        else:
            self.rgba = classes_rgba(values, ranges, opacity, invert, out=self.rgba, outside=outside)
        return self.rgba
