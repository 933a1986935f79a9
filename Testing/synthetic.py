"""Synthetic volumes with known answers, shared by the tests."""
from __future__ import annotations

import os

import numpy as np

from MedSegCore.image.geometry import Geometry, to_sitk


def rotation(ax: float = 0.3, bx: float = 0.2) -> np.ndarray:
    rz = np.array([[np.cos(ax), -np.sin(ax), 0], [np.sin(ax), np.cos(ax), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(bx), -np.sin(bx)], [0, np.sin(bx), np.cos(bx)]])
    return rz @ rx


def oblique_geometry(size=(20, 16, 8)) -> Geometry:
    """Oblique, anisotropic grid (0.7 x 0.9 x 2.5 mm)."""
    return Geometry(size, (0.7, 0.9, 2.5), (12.3, -45.6, 7.8), rotation())


def lps_geometry(size=(24, 20, 10)) -> Geometry:
    """Axis-aligned LPS grid, as DICOM scanners write."""
    return Geometry(size, (0.6, 0.6, 3.0), (100.0, 80.0, -30.0), np.diag([-1.0, -1.0, 1.0]))


def sphere(geometry: Geometry, center_ras, radius_mm: float) -> np.ndarray:
    """Boolean KJI mask of a physical sphere on ``geometry``."""
    k, j, i = np.indices(geometry.shape)
    ijk = np.stack([i.ravel(), j.ravel(), k.ravel(), np.ones(i.size)])
    ras = (geometry.ijk_to_ras() @ ijk)[:3].T
    return (np.linalg.norm(ras - np.asarray(center_ras), axis=1) <= radius_mm).reshape(geometry.shape)


def write_dicom_series(array: np.ndarray, geometry: Geometry, folder: str, series_uid: str,
                       modality: str = "CT") -> None:
    """Write a KJI int16 volume as a DICOM series with SimpleITK (one file per slice)."""
    import SimpleITK as sitk

    os.makedirs(folder, exist_ok=True)
    image = to_sitk(array.astype(np.int16), geometry)
    d = image.GetDirection()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(image.GetDepth()):
        s = image[:, :, k]
        s.SetMetaData("0020|000e", series_uid)
        s.SetMetaData("0008|0060", modality)
        s.SetMetaData("0020|0032", "\\".join(repr(v) for v in image.TransformIndexToPhysicalPoint((0, 0, k))))
        s.SetMetaData("0020|0037", "\\".join(repr(v) for v in (d[0], d[3], d[6], d[1], d[4], d[7])))
        s.SetMetaData("0020|0013", str(k + 1))
        s.SetMetaData("0028|0030", f"{geometry.spacing[1]!r}\\{geometry.spacing[0]!r}")
        s.SetMetaData("0018|0050", repr(geometry.spacing[2]))
        writer.SetFileName(os.path.join(folder, f"s{series_uid.replace('.', '_')}_{k:03d}.dcm"))
        writer.Execute(s)
