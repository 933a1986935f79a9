"""MedSegCore.threshold.autothreshold against SimpleITK's threshold filters on the same arrays."""
from __future__ import annotations

import numpy as np
import pytest

sitk = pytest.importorskip("SimpleITK")

from MedSegCore.threshold import autothreshold as at  # noqa: E402
from MedSegCore.errors import ParameterError  # noqa: E402

FILTERS = {"otsu": "Otsu", "huang": "Huang", "isodata": "IsoData",
           "kittler_illingworth": "KittlerIllingworth", "max_entropy": "MaximumEntropy",
           "moments": "Moments", "renyi": "RenyiEntropy", "shanbhag": "Shanbhag",
           "triangle": "Triangle", "yen": "Yen", "li": "Li"}

# Where ITK itself fails on the MNI template (intensities in [0, 1]): Huang and Kittler-Illingworth
# throw, Li reads past its histogram (undefined value). Ours must still give a value in range.
ITK_FAILS = {("mni", "huang"), ("mni", "kittler_illingworth"), ("mni_masked", "li")}


def _ct_like(shape=(24, 48, 48), seed=0):
    rng = np.random.default_rng(seed)
    k, j, i = np.ogrid[:shape[0], :shape[1], :shape[2]]
    body = ((j - shape[1] / 2) / 20.0) ** 2 + ((i - shape[2] / 2) / 21.0) ** 2 < 1
    vol = np.where(np.broadcast_to(body, shape), 40.0, -1000.0)
    vol[:, 30:36, 20:28] = 700.0                                           # bone
    return (vol + rng.normal(0, 30, shape)).astype(np.int16)


@pytest.fixture(scope="module")
def volumes():
    from nilearn.datasets import load_mni152_template
    ct = _ct_like()
    fl = (ct.astype(np.float32) / 3.7 + np.random.default_rng(1).normal(0, 2, ct.shape)).astype(np.float32)
    mni = np.asarray(load_mni152_template(resolution=2).get_fdata(), dtype=np.float32)
    body = ct > -500
    return {"int16": (ct, None), "float32": (fl, None), "mni": (mni, None),
            "int16_masked": (ct, body), "float32_masked": (fl, body), "mni_masked": (mni, mni > 0.1)}


def _itk(array, method, mask=None):
    f = getattr(sitk, FILTERS[method] + "ThresholdImageFilter")()
    if mask is None:
        f.Execute(sitk.GetImageFromArray(array))
    else:                          # SimpleITK counts voxels whose mask equals MaskValue (255)
        f.Execute(sitk.GetImageFromArray(array), sitk.GetImageFromArray(mask.astype(np.uint8) * 255))
    return f.GetThreshold()


@pytest.mark.parametrize("name", ["int16", "float32", "mni", "int16_masked", "float32_masked", "mni_masked"])
@pytest.mark.parametrize("method", list(FILTERS))
def test_equals_simpleitk(volumes, name, method):
    array, mask = volumes[name]
    ours = at.compute_threshold(array, method, mask=mask)
    vals = array if mask is None else array[mask]
    assert vals.min() <= ours <= vals.max()
    if (name, method) in ITK_FAILS:
        if method != "li":
            with pytest.raises(RuntimeError):
                _itk(array, method, mask)
        return
    assert ours == pytest.approx(_itk(array, method, mask), rel=1e-12, abs=1e-12)


def test_shared_histogram_gives_same_values(volumes):
    ct, mask = volumes["int16_masked"]
    fl = volumes["float32"][0]
    h_ct, h_fl = at.histogram(ct, mask=mask), at.histogram(fl)
    for method in at.METHODS:
        assert at.compute_threshold(None, method, histogram=h_ct) == at.compute_threshold(ct, method, mask)
        assert at.compute_threshold(None, method, histogram=h_fl) == at.compute_threshold(fl, method)
    assert at.compute_threshold(ct.astype(">i2"), "otsu") == at.compute_threshold(ct, "otsu")
    with pytest.raises(ParameterError, match="256-bin"):
        at.compute_threshold(None, "yen", histogram=at.histogram(fl, bins=128))


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.uint16, np.int32, np.float64])
def test_other_pixel_types(volumes, dtype):
    ct = volumes["int16"][0].astype(np.float64)
    lo, hi = (0, 255) if dtype == np.uint8 else (-128, 127) if dtype == np.int8 else (None, None)
    arr = (ct if lo is None else np.clip((ct + 1100) / 8 + lo, lo, hi)).astype(dtype)
    for method in ("otsu", "huang", "triangle", "li", "renyi", "moments"):
        assert at.compute_threshold(arr, method) == pytest.approx(_itk(arr, method), rel=1e-12, abs=1e-12)


def _itk_multi(array, classes, bins):
    f = sitk.OtsuMultipleThresholdsImageFilter()
    f.SetNumberOfThresholds(classes - 1)
    f.SetNumberOfHistogramBins(bins)
    f.SetValleyEmphasis(False)
    f.Execute(sitk.GetImageFromArray(array))
    return list(f.GetThresholds())


@pytest.mark.parametrize("classes", [2, 3, 4, 5])
def test_multi_otsu_equals_simpleitk(volumes, classes):
    ct, body = volumes["int16_masked"]
    mni = volumes["mni"][0]
    for array, bins in ((ct, 128), (mni, 128), (volumes["float32"][0], 64)):
        ours = at.multi_otsu(array, classes, bins=bins)
        assert len(ours) == classes - 1 and ours == sorted(ours)
        assert ours == pytest.approx(_itk_multi(array, classes, bins), rel=1e-12, abs=1e-12)
    # SimpleITK's filter has no mask: compare with it on the masked voxels alone
    ours = at.multi_otsu(ct, classes, mask=body)
    assert ours == _itk_multi(ct[body].reshape(1, 1, -1), classes, 128)


def test_bad_inputs(volumes):
    ct = volumes["int16"][0]
    with pytest.raises(ParameterError, match="unknown threshold method 'foo'; valid: otsu, huang"):
        at.compute_threshold(ct, "foo")
    with pytest.raises(ParameterError, match="mask selects no voxel"):
        at.compute_threshold(ct, "otsu", mask=np.zeros(ct.shape, bool))
    with pytest.raises(ParameterError, match="mask shape"):
        at.compute_threshold(ct, "otsu", mask=np.ones((2, 2, 2), bool))
    with pytest.raises(ParameterError, match="no threshold is possible"):
        at.compute_threshold(np.full((4, 4, 4), 7.5, np.float32), "li")
    with pytest.raises(ParameterError, match="no threshold is possible"):
        at.multi_otsu(ct, 3, mask=ct == ct[0, 0, 0])
    nan = ct.astype(np.float32)
    nan[1, 2, 3] = np.nan
    with pytest.raises(ParameterError, match="NaN"):
        at.compute_threshold(nan, "otsu")
    nan[1, 2, 3] = np.inf
    with pytest.raises(ParameterError, match="infinite"):
        at.compute_threshold(nan, "otsu")
    with pytest.raises(ParameterError, match="3-D"):
        at.compute_threshold(ct[0], "otsu")
    for bad in (ct > 0, ct.astype(complex), ct.astype(object)):
        with pytest.raises(ParameterError, match="numeric"):
            at.compute_threshold(bad, "otsu")
    with pytest.raises(ParameterError, match="at least 2"):
        at.histogram(ct.astype(np.float32), bins=1)
    for classes in (1, 6, 2.5, True):
        with pytest.raises(ParameterError, match="classes must be an integer from 2 to 5"):
            at.multi_otsu(ct, classes)


def test_li_never_fails_with_negative_values():
    rng = np.random.default_rng(5)
    # Negative CT-like values: ITK shifts by the histogram minimum and we match it exactly.
    ct = _ct_like(seed=2)
    assert at.compute_threshold(ct, "li") == _itk(ct, "li")
    # Narrow negative float range: ITK's rounding leaves the histogram and its result is
    # undefined (it reads past the end); ours falls back and stays within the data range.
    for _ in range(20):
        a = rng.normal(-rng.uniform(0.05, 5), rng.uniform(0.01, 1), (6, 20, 20)).astype(np.float32)
        a[0, 0] += np.abs(a).max() * rng.integers(0, 2)
        t = at.compute_threshold(a, "li")
        assert np.isfinite(t) and a.min() <= t <= a.max()
    a = np.zeros((4, 4, 4), np.int16)                    # two values only
    a[0] = -2
    a[1:] = -1
    assert -2 <= at.compute_threshold(a, "li") <= -1


def test_degenerate_histograms_do_not_crash():
    rng = np.random.default_rng(3)
    cases = [np.array([10, 11], np.uint8), np.array([0.0, 1e-7], np.float32),
             np.array([1e6, 1e6 + 1e-4]), rng.choice([0.0, 1.0], 500).astype(np.float32),
             np.r_[np.zeros(1000), 255].astype(np.uint8)]
    for c in cases:
        a = np.resize(c, (2, 2, max(2, c.size // 4 + 1))).astype(c.dtype)
        for method in at.METHODS:
            assert np.isfinite(at.compute_threshold(a, method))
        assert len(at.multi_otsu(a, 3, bins=16)) == 2


def test_foreground_side_matches_itk_output(volumes):
    fl, mask = volumes["float32_masked"]
    ct = volumes["int16"][0]
    for array, method in ((ct, "otsu"), (fl, "triangle"), (ct, "yen")):
        t = at.compute_threshold(array, method)
        assert at.INSIDE_IS_AT_OR_BELOW[method]
        f = getattr(sitk, FILTERS[method] + "ThresholdImageFilter")()
        f.SetInsideValue(1)
        f.SetOutsideValue(0)
        inside = sitk.GetArrayFromImage(f.Execute(sitk.GetImageFromArray(array))).astype(bool)
        np.testing.assert_array_equal(inside, array <= t)
        np.testing.assert_array_equal(~inside, array >= at.bright_lower_bound(t, array.dtype))
    assert set(at.METHODS) == set(at.DEFAULT_BINS) == set(at.INSIDE_IS_AT_OR_BELOW) == set(FILTERS)
