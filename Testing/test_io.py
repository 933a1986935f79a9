"""Geometry-correct reading and writing, and the errors for bad input."""
import os

import numpy as np
import pytest
import SimpleITK as sitk

from MedSegCore.image import io
from MedSegCore.errors import InputError
from MedSegCore.image.geometry import Geometry, from_sitk, to_sitk
from synthetic import lps_geometry, oblique_geometry, write_dicom_series


def ramp(geometry, dtype=np.int16):
    return (np.arange(np.prod(geometry.shape)) % 3000 - 1000).astype(dtype).reshape(geometry.shape)


def test_lps_ras_pair_is_exact_inverse():
    g = oblique_geometry()
    image = to_sitk(np.zeros(g.shape, np.uint8), g)
    # ITK holds LPS: the first two axes of origin and direction are negated, the third kept.
    assert image.GetOrigin() == (-12.3, 45.6, 7.8)
    np.testing.assert_array_equal(np.array(image.GetDirection()).reshape(3, 3),
                                  np.diag([-1, -1, 1]) @ g.direction_matrix)
    assert from_sitk(image) == g


def test_ijk_to_lps_is_itks_index_to_physical_point():
    """DICOM code reads and writes LPS through Geometry.ijk_to_lps / from_ijk_to_lps: ITK is the reference."""
    g = oblique_geometry()
    image = to_sitk(np.zeros(g.shape, np.uint8), g)
    m = g.ijk_to_lps()
    for ijk in [(0, 0, 0), (3, 5, 7), (g.size[0] - 1, 1, g.size[2] - 1)]:
        assert np.allclose((m @ [*ijk, 1.0])[:3], image.TransformIndexToPhysicalPoint(ijk), atol=1e-9)
    back = Geometry.from_ijk_to_lps(m, g.size)
    assert back.same_grid(g, tol=1e-9)


@pytest.mark.parametrize("ext", [".mha", ".nrrd", ".nii.gz"])
def test_oblique_anisotropic_round_trip(tmp_path, ext):
    g = oblique_geometry()
    array = ramp(g)
    path = str(tmp_path / f"vol{ext}")
    io.write_volume(array, g, path)
    back, h = io.read_volume(path)
    np.testing.assert_array_equal(back, array)
    assert h.size == g.size and h.axis_codes() == g.axis_codes() and h.is_oblique()
    if ext == ".mha":
        # MetaImage stores float64 spacing, origin and direction: bit-exact.
        assert h == g
    else:
        # NRRD stores spacing x direction products (exact up to one rounding); NIfTI stores float32.
        tol = 1e-12 if ext == ".nrrd" else 2e-5
        np.testing.assert_allclose(h.ijk_to_ras(), g.ijk_to_ras(), rtol=0, atol=tol)


def test_dicom_series_lps_oblique(tmp_path):
    g = oblique_geometry()
    array = ramp(g)
    write_dicom_series(array, g, str(tmp_path / "series"), "1.2.826.0.1.3680043.2.1125.1")
    back, h = io.read_volume(str(tmp_path / "series"))
    np.testing.assert_array_equal(back, array)
    np.testing.assert_allclose(h.ijk_to_ras(), g.ijk_to_ras(), rtol=0, atol=1e-9)


def test_dicom_folder_with_several_series_picks_largest_and_honours_uid(tmp_path, caplog):
    small, big = lps_geometry((8, 8, 3)), lps_geometry((8, 8, 6))
    write_dicom_series(ramp(small), small, str(tmp_path), "1.2.3.4.1")
    write_dicom_series(ramp(big) + 5, big, str(tmp_path), "1.2.3.4.2")
    array, h = io.read_volume(str(tmp_path))
    assert h.size == (8, 8, 6) and h.axis_codes() == "LPS"
    assert "2 DICOM series found; using 1.2.3.4.2" in caplog.text
    array, h = io.read_volume(str(tmp_path), series_uid="1.2.3.4.1")
    assert h.size == (8, 8, 3)
    with pytest.raises(InputError, match="no series with UID 9.9"):
        io.read_volume(str(tmp_path), series_uid="9.9")


def test_scanner_ct_series_from_pydicom():
    """A real 5-slice CT series shipped inside pydicom: geometry agrees with the DICOM tags."""
    import pydicom

    folder = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files", "dicomdirtests",
                          "98892001", "CT5N")
    array, g = io.read_volume(folder)
    assert array.shape[0] == 5 and g.size[2] == 5
    first = min((pydicom.dcmread(os.path.join(folder, f)) for f in os.listdir(folder)),
                key=lambda ds: float(ds.ImagePositionPatient[2]))
    lps = np.array([float(v) for v in first.ImagePositionPatient])
    np.testing.assert_allclose(g.origin, [-lps[0], -lps[1], lps[2]], atol=1e-6)
    np.testing.assert_allclose(g.spacing[:2], [float(v) for v in first.PixelSpacing][::-1], atol=1e-6)


def write_raw(path, content: bytes):
    with open(path, "wb") as f:
        f.write(content)


def test_bad_inputs_have_clear_errors(tmp_path):
    g = lps_geometry((6, 5, 4))
    with pytest.raises(InputError, match="no such file"):
        io.read_volume(str(tmp_path / "missing.nii.gz"))
    empty = tmp_path / "empty.nrrd"
    write_raw(empty, b"")
    with pytest.raises(InputError, match="empty.nrrd: file is empty"):
        io.read_volume(str(empty))
    good = str(tmp_path / "good.nii.gz")
    io.write_volume(ramp(g), g, good)
    with open(good, "rb") as f:
        data = f.read()
    truncated = tmp_path / "truncated.nii.gz"
    write_raw(truncated, data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated.nii.gz: compressed file is truncated"):
        io.read_volume(str(truncated))
    four_d = str(tmp_path / "4d.nii.gz")
    vol = sitk.GetImageFromArray(np.zeros((3, 4, 5), np.float32))
    sitk.WriteImage(sitk.JoinSeries([vol, vol]), four_d)
    with pytest.raises(InputError, match="4D"):
        io.read_volume(four_d)
    rgb = str(tmp_path / "rgb.nrrd")
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((3, 4, 5, 3), np.uint8), isVector=True), rgb)
    with pytest.raises(InputError, match="3 components per voxel"):
        io.read_volume(rgb)
    nan = ramp(g, np.float32)
    nan[1, 2, 3] = np.nan
    nan_path = str(tmp_path / "nan.mha")
    sitk.WriteImage(to_sitk(nan, g), nan_path)
    with pytest.raises(InputError, match="1 NaN or infinite voxel"):
        io.read_volume(nan_path)
    nan_nifti = str(tmp_path / "nan.nii.gz")
    io.write_volume(nan, g, nan_nifti)                   # ITK's NIfTI reader would turn NaN into 0
    with pytest.raises(InputError, match="nan.nii.gz: image has 1 NaN or infinite voxel"):
        io.read_volume(nan_nifti)
    (tmp_path / "nodicom").mkdir()
    write_raw(tmp_path / "nodicom" / "notes.txt", b"hello")
    with pytest.raises(InputError, match="folder holds no DICOM series"):
        io.read_volume(str(tmp_path / "nodicom"))
    with pytest.raises(InputError, match="empty"):
        io.validate_image(np.zeros((0, 3, 3)), "x")


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.nrrd"
    with pytest.raises(RuntimeError):
        with io.atomic_path(str(target)) as tmp:
            write_raw(tmp, b"partial")
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []
    io.write_volume(np.zeros((2, 2, 2)), Geometry((2, 2, 2), (1, 1, 1), (0, 0, 0), np.eye(3)), str(target))
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(target).st_mode & 0o777 == 0o666 & ~umask
    os.remove(target)
    with pytest.raises(InputError, match="unsupported output extension"):
        io.write_volume(np.zeros((2, 2, 2)), Geometry((2, 2, 2), (1, 1, 1), (0, 0, 0), np.eye(3)),
                        str(tmp_path / "x.png"))
    assert os.listdir(tmp_path) == []


def test_geometry_axis_codes_and_matrix():
    g = lps_geometry()
    assert g.axis_codes() == "LPS" and not g.is_oblique()
    m = g.ijk_to_ras()
    assert np.allclose(m @ [1, 0, 0, 1], [100 - 0.6, 80, -30, 1])
    assert Geometry.from_ijk_to_ras(m, g.size) == g


def test_nii_gz_read_once_equals_itk_reading_the_gz(tmp_path, monkeypatch):
    """A .nii.gz is inflated once (checked while copied to a temporary .nii for ITK): the voxels and
    geometry are ITK's own read of the .gz, and the temporary file is gone afterwards."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    os.makedirs(tmp_path / "tmp")
    geometry = oblique_geometry()
    array = np.random.default_rng(0).normal(size=geometry.shape).astype(np.float32)
    path = str(tmp_path / "v.nii.gz")
    io.write_volume(array, geometry, path)
    from MedSegCore.image import atomic

    seen = []
    real_read = sitk.ReadImage
    monkeypatch.setattr(sitk, "ReadImage", lambda p, *a: seen.append((p, p in atomic._LIVE)) or real_read(p, *a))
    got, g = io.read_volume(path)
    monkeypatch.setattr(sitk, "ReadImage", real_read)
    assert len(seen) == 1 and seen[0][0].endswith(".nii") and seen[0][1]     # the copy, known to the cleanup
    ref = sitk.ReadImage(path)
    assert np.array_equal(got, sitk.GetArrayFromImage(ref)) and g == from_sitk(ref)
    assert os.listdir(tmp_path / "tmp") == [] and seen[0][0] not in atomic._LIVE
    with open(path, "r+b") as f:                                 # truncated stream: the check still refuses it
        f.truncate(os.path.getsize(path) // 2)
    with pytest.raises(InputError, match="truncated"):
        io.read_volume(path)
    assert os.listdir(tmp_path / "tmp") == []
