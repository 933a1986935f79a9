"""Live threshold preview of the one slice a view shows (Qt-free, a few milliseconds per tick).

Only the displayed 2D slice is thresholded, never the whole volume:

* an axial IJK slice of a KJI array is just ``array[k]`` (:func:`axial_preview`);
* any other view plane is resampled once with ``vtkImageReslice`` (:class:`SliceResampler`, nearest
  neighbour, so the preview shows the voxels Apply will threshold).  Pixels outside the volume are
  marked by a value no voxel has: the integer type's minimum (or maximum) when the volume does not
  use it, keeping the reslice in the volume's own type (half the time of a float reslice), else NaN.

:func:`overlay_rgba` / :func:`classes_rgba` turn the slice into an RGBA image (straight alpha,
rows bottom-up like VTK images) that a ``vtkImageMapper`` / ``vtkActor2D`` can show in the view's XY
space, as Slicer's Threshold effect shows its preview.  Buffers can be reused between ticks.
"""
from __future__ import annotations

import numpy as np

from .errors import ParameterError


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


def _matrix(m) -> np.ndarray:
    if hasattr(m, "GetElement"):
        return np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])
    return np.asarray(m, dtype=float)


def _vtk_matrix(a):
    import vtk

    m = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            m.SetElement(r, c, float(a[r, c]))
    return m


def outside_marker(image):
    """A value no voxel of ``image`` has, in its own integer type (the type's minimum, else its
    maximum), to mark resliced pixels outside the volume; None for float volumes or volumes that
    use their type's whole range (those are resliced to float32 with NaN outside)."""
    import vtk

    if image.GetScalarType() not in (vtk.VTK_CHAR, vtk.VTK_SIGNED_CHAR, vtk.VTK_UNSIGNED_CHAR, vtk.VTK_SHORT,
                                     vtk.VTK_UNSIGNED_SHORT, vtk.VTK_INT, vtk.VTK_UNSIGNED_INT):
        return None
    if image.GetNumberOfScalarComponents() != 1:
        return None
    low, high = image.GetPointData().GetScalars().GetRange(0)     # cached by VTK until modified
    if low > image.GetScalarTypeMin():
        return int(image.GetScalarTypeMin())
    if high < image.GetScalarTypeMax():
        return int(image.GetScalarTypeMax())
    return None


class SliceResampler:
    """Resamples one slice of a volume into a slice view's XY pixel grid, reusing one
    ``vtkImageReslice`` (nearest neighbour).  After :meth:`slice`, ``outside`` is the value marking
    pixels outside the volume (None: they are NaN)."""

    def __init__(self):
        import vtk

        self.reslice = vtk.vtkImageReslice()
        self.reslice.SetInterpolationModeToNearestNeighbor()
        self.reslice.SetOutputDimensionality(2)
        self.reslice.SetOutputSpacing(1, 1, 1)
        self.reslice.SetOutputOrigin(0, 0, 0)
        self.reslice.AutoCropOutputOff()
        self.outside = None

    def axes(self, image, ijk_to_world, xy_to_ras) -> np.ndarray:
        """4x4 from XY pixel (x, y, 0) to the image's data coordinates (origin + spacing * ijk)."""
        data_from_ijk = np.diag([*image.GetSpacing(), 1.0])
        data_from_ijk[:3, 3] = image.GetOrigin()
        return data_from_ijk @ np.linalg.inv(_matrix(ijk_to_world)) @ _matrix(xy_to_ras)

    def slice(self, image, ijk_to_world, xy_to_ras, size) -> np.ndarray:
        """(h, w) values of the volume ``image`` (``vtkImageData`` whose IJK -> RAS is
        ``ijk_to_world``) on the view's XY grid (``xy_to_ras``, ``size`` = (w, h) pixels), in the
        volume's type with ``self.outside`` outside it, or float32 with NaN there.
        The array is the reslice output: valid until the next call."""
        import vtk
        from vtk.util import numpy_support

        w, h = int(size[0]), int(size[1])
        self.outside = outside_marker(image)
        if self.outside is None:
            self.reslice.SetOutputScalarType(vtk.VTK_FLOAT)
            self.reslice.SetBackgroundLevel(float("nan"))
        else:
            self.reslice.SetOutputScalarType(-1)                   # the input's type
            self.reslice.SetBackgroundLevel(float(self.outside))
        self.reslice.SetInputData(image)
        self.reslice.SetResliceAxes(_vtk_matrix(self.axes(image, ijk_to_world, xy_to_ras)))
        self.reslice.SetOutputExtent(0, w - 1, 0, h - 1, 0, 0)
        self.reslice.Update()
        out = self.reslice.GetOutput()
        values = numpy_support.vtk_to_numpy(out.GetPointData().GetScalars())
        return values.reshape(h, w)


def volume_ijk_to_world(volume_node):
    """IJK -> world 4x4 of a volume node including its linear parent transforms (Slicer's
    ``vtkSlicerSegmentEditorLogic.ImageToWorldMatrix``)."""
    import vtk
    import slicer

    m = vtk.vtkMatrix4x4()
    slicer.vtkSlicerSegmentEditorLogic.ImageToWorldMatrix(volume_node, m)
    return m


class SlicePreview:
    """Preview state of one slice view: resampler and reused buffers."""

    def __init__(self):
        self.resampler = SliceResampler()
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


class ViewOverlay:
    """Preview pipeline of one slice view, as in Slicer's Threshold effect: RGBA ``vtkImageData`` ->
    ``vtkImageMapper`` -> ``vtkActor2D`` (add ``actor`` to the view).  The slice is resampled only
    when the view's plane, size or the volume change; a new range only re-thresholds it."""

    def __init__(self):
        import vtk

        self.preview = SlicePreview()
        self.values, self.outside, self.key = None, None, None
        self.image = vtk.vtkImageData()
        self.mapper = vtk.vtkImageMapper()
        self.mapper.SetInputData(self.image)
        self.mapper.SetColorWindow(255)
        self.mapper.SetColorLevel(127.5)
        self.actor = vtk.vtkActor2D()
        self.actor.SetMapper(self.mapper)
        self.actor.VisibilityOff()
        self.customRendererTag = 0

    def inside(self) -> np.ndarray:
        """Boolean mask of the last resliced pixels that lie inside the volume."""
        if self.outside is None:
            return ~np.isnan(self.values)
        return self.values != self.outside

    def update(self, volume_node, slice_node, ranges, invert: bool = False, opacity: float = 0.5) -> np.ndarray:
        """Show ``ranges`` = [(lower, upper, color), ...] of the slice of ``volume_node`` that
        ``slice_node`` (vtkMRMLSliceNode) shows; returns the RGBA array."""
        from vtk.util import numpy_support

        xy_to_ras = slice_node.GetXYToRAS()
        size = tuple(slice_node.GetDimensions()[:2])
        ijk_to_world = volume_ijk_to_world(volume_node)
        image = volume_node.GetImageData()
        key = (_matrix(xy_to_ras).tobytes(), size, _matrix(ijk_to_world).tobytes(), image.GetMTime())
        if key != self.key:
            self.values = self.preview.resampler.slice(image, ijk_to_world, xy_to_ras, size).copy()
            self.outside, self.key = self.preview.resampler.outside, key
        rgba = self.preview.update(self.values, ranges, invert, opacity, self.outside)
        self.image.SetDimensions(size[0], size[1], 1)
        self.image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(rgba.reshape(-1, 4), deep=True))
        self.image.Modified()
        self.actor.VisibilityOn()
        return rgba
