"""Resampling of one slice view's plane out of a volume node, and the preview actor of that view
(``vtkImageReslice`` -> RGBA ``vtkImageData`` -> ``vtkImageMapper`` -> ``vtkActor2D``), as Slicer's
Threshold effect shows its preview.  The thresholding maths is ``MedSegCore.threshold.preview``.

Any view plane is resampled once with ``vtkImageReslice`` (:class:`SliceResampler`, nearest neighbour,
so the preview shows the voxels Apply will threshold).  Pixels outside the volume are marked by a
value no voxel has: the integer type's minimum (or maximum) when the volume does not use it, keeping
the reslice in the volume's own type (half the time of a float reslice), else NaN.
"""
from __future__ import annotations

import numpy as np

from ..threshold.preview import SlicePreview
from .nodes import vtk_matrix


def _matrix(m) -> np.ndarray:
    if hasattr(m, "GetElement"):
        return np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)])
    return np.asarray(m, dtype=float)


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
        self.reslice.SetResliceAxes(vtk_matrix(self.axes(image, ijk_to_world, xy_to_ras)))
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


class ViewOverlay:
    """Preview pipeline of one slice view, as in Slicer's Threshold effect: RGBA ``vtkImageData`` ->
    ``vtkImageMapper`` -> ``vtkActor2D`` (add ``actor`` to the view).  The slice is resampled only
    when the view's plane, size or the volume change; a new range only re-thresholds it."""

    def __init__(self):
        import vtk

        self.preview = SlicePreview()
        self.resampler = SliceResampler()
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
            self.values = self.resampler.slice(image, ijk_to_world, xy_to_ras, size).copy()
            self.outside, self.key = self.resampler.outside, key
        rgba = self.preview.update(self.values, ranges, invert, opacity, self.outside)
        self.image.SetDimensions(size[0], size[1], 1)
        self.image.GetPointData().SetScalars(numpy_support.numpy_to_vtk(rgba.reshape(-1, 4), deep=True))
        self.image.Modified()
        self.actor.VisibilityOn()
        return rgba
