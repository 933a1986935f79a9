"""Image geometry in Slicer's convention (RAS), and the one LPS <-> RAS conversion pair.

Arrays are numpy arrays in KJI order (slice, row, column), the layout of
``slicer.util.arrayFromVolume`` and ``SimpleITK.GetArrayFromImage``.  A :class:`Geometry`
describes where those voxels lie: spacing, origin and direction along the I, J, K axes, in RAS
millimetres, exactly as a ``vtkMRMLScalarVolumeNode`` stores them.

ITK/SimpleITK/DICOM/NIfTI readers work in LPS.  The only place that converts between the two is
:func:`from_sitk` / :func:`to_sitk`; every other module goes through them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Multiplying a point or direction by this converts LPS <-> RAS (it is its own inverse).
_LPS_RAS = np.diag([-1.0, -1.0, 1.0])


@dataclass(frozen=True)
class Geometry:
    """Voxel grid of a volume: ``size`` (I, J, K voxels), ``spacing`` (mm along I, J, K),
    ``origin`` (RAS mm of voxel 0,0,0's centre) and ``direction`` (3x3, columns are the unit
    I, J, K axes in RAS)."""

    size: tuple
    spacing: tuple
    origin: tuple
    direction: tuple

    def __post_init__(self):
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        object.__setattr__(self, "spacing", tuple(float(s) for s in self.spacing))
        object.__setattr__(self, "origin", tuple(float(s) for s in self.origin))
        d = np.asarray(self.direction, dtype=float).reshape(3, 3)
        object.__setattr__(self, "direction", tuple(tuple(float(v) for v in row) for row in d))

    @property
    def shape(self) -> tuple:
        """Numpy (KJI) shape of an array on this grid."""
        return tuple(reversed(self.size))

    @property
    def direction_matrix(self) -> np.ndarray:
        return np.array(self.direction, dtype=float)

    @property
    def voxel_volume_mm3(self) -> float:
        return float(np.prod(self.spacing))

    def ijk_to_ras(self) -> np.ndarray:
        """4x4 homogeneous IJK -> RAS matrix (as ``vtkMRMLVolumeNode.GetIJKToRASMatrix``)."""
        m = np.eye(4)
        m[:3, :3] = self.direction_matrix @ np.diag(self.spacing)
        m[:3, 3] = self.origin
        return m

    def ijk_to_lps(self) -> np.ndarray:
        """4x4 homogeneous IJK -> LPS matrix (DICOM's and ITK's patient coordinates)."""
        return np.diag([*np.diag(_LPS_RAS), 1.0]) @ self.ijk_to_ras()

    @classmethod
    def from_ijk_to_lps(cls, matrix, size) -> "Geometry":
        """Build a geometry from a 4x4 IJK -> LPS matrix (DICOM, ITK) and a size (I, J, K)."""
        return cls.from_ijk_to_ras(np.diag([*np.diag(_LPS_RAS), 1.0]) @ np.asarray(matrix, dtype=float), size)

    @classmethod
    def from_ijk_to_ras(cls, matrix, size) -> "Geometry":
        """Build a geometry from a 4x4 IJK -> RAS matrix and a size (I, J, K)."""
        m = np.asarray(matrix, dtype=float)
        spacing = np.linalg.norm(m[:3, :3], axis=0)
        if np.any(spacing == 0):
            raise ValueError("IJK to RAS matrix has a zero-length axis")
        return cls(size, spacing, m[:3, 3], m[:3, :3] / spacing)

    def axis_codes(self) -> str:
        """Anatomical direction each of I, J, K points to most, e.g. 'RAS' or 'LPS'."""
        codes = ""
        for col in self.direction_matrix.T:
            axis = int(np.argmax(np.abs(col)))
            codes += ("LR", "PA", "IS")[axis][int(col[axis] > 0)]
        return codes

    def is_oblique(self, tol: float = 1e-6) -> bool:
        """True if any axis is not aligned with R, A or S."""
        d = np.abs(self.direction_matrix)
        return bool(np.any((d > tol) & (np.abs(d - 1) > tol)))

    def same_grid(self, other: "Geometry", tol: float = 1e-4) -> bool:
        """True if both describe the same voxels (size equal, matrices equal within tol mm)."""
        return self.size == other.size and np.allclose(self.ijk_to_ras(), other.ijk_to_ras(), atol=tol)

    def physical_extent_mm(self) -> tuple:
        return tuple(n * s for n, s in zip(self.size, self.spacing))


def from_sitk(image) -> Geometry:
    """Geometry (RAS) of a SimpleITK image (LPS).  One half of the LPS <-> RAS pair."""
    direction = np.array(image.GetDirection(), dtype=float).reshape(image.GetDimension(), -1)
    if image.GetDimension() != 3:
        raise ValueError(f"expected a 3D image, got {image.GetDimension()}D")
    return Geometry(image.GetSize(), image.GetSpacing(),
                    _LPS_RAS @ np.array(image.GetOrigin(), dtype=float),
                    _LPS_RAS @ direction)


def to_sitk(array: np.ndarray, geometry: Geometry):
    """SimpleITK image (LPS) of a KJI array on ``geometry`` (RAS).  The other half of the pair."""
    import SimpleITK as sitk

    array = np.asarray(array)
    if array.shape != geometry.shape:
        raise ValueError(f"array shape {array.shape} does not match geometry {geometry.shape}")
    if array.dtype == bool:
        array = array.astype(np.uint8)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(geometry.spacing)
    image.SetOrigin(tuple(_LPS_RAS @ np.array(geometry.origin)))
    image.SetDirection(tuple((_LPS_RAS @ geometry.direction_matrix).ravel()))
    return image
