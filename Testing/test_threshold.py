"""Threshold engine and node operations: presets, invert, auto methods, multi-Otsu, masks, clean-up."""
import numpy as np
import pytest

from MedSegCore.threshold import cleanup, engine
from MedSegCore.image import io
from MedSegCore.mrml import nodes, segment_ops
from MedSegCore.errors import EmptyResultError, InputError, ParameterError
from MedSegCore.image.geometry import Geometry
from MedSegCore.threshold.engine import CleanupOptions, ThresholdParameters
from synthetic import lps_geometry, sphere

# Synthetic CT: each region has one exact HU value, so every preset's voxel count is known.
REGIONS = {"air": -1000, "lung": -850, "fat": -100, "soft": 40, "vessel": 300, "bone": 1000}


@pytest.fixture
def ct():
    g = lps_geometry((48, 40, 30))
    array = np.full(g.shape, REGIONS["air"], np.int16)
    array[:, 5:35, 4:44] = REGIONS["fat"]
    array[:, 8:32, 8:40] = REGIONS["soft"]
    array[5:25, 10:20, 10:20] = REGIONS["lung"]
    array[5:25, 10:20, 28:38] = REGIONS["bone"]
    array[10:20, 24:28, 20:26] = REGIONS["vessel"]
    return array, g


@pytest.mark.parametrize("preset,region", [("ct-bone", "bone"), ("ct-soft-tissue", "soft"), ("ct-lung", "lung"),
                                           ("ct-fat", "fat"), ("ct-air", "air"), ("ct-vessels-contrast", "vessel")])
def test_ct_presets_select_exactly_their_region(ct, preset, region):
    array, g = ct
    [result] = engine.segment(array, g.spacing, ThresholdParameters(preset=preset))
    assert result.voxels == np.count_nonzero(array == REGIONS[region])
    assert np.array_equal(result.mask, array == REGIONS[region])


def test_invert_selects_the_complement(ct):
    array, g = ct
    [result] = engine.segment(array, g.spacing, ThresholdParameters(preset="ct-bone", invert=True))
    assert result.voxels == array.size - np.count_nonzero(array == REGIONS["bone"])


def test_mri_percentile_presets_split_the_foreground():
    rng = np.random.default_rng(0)
    array = np.zeros((20, 30, 30), np.float32)
    array[2:18, 3:27, 3:27] = rng.uniform(1, 100, size=(16, 24, 24))
    spacing = (1, 1, 1)
    fg = array[array > 0]
    counts = {p: engine.segment(array, spacing, ThresholdParameters(preset=p))[0].voxels
              for p in ("mri-dark", "mri-mid", "mri-bright")}
    assert counts["mri-bright"] == pytest.approx(0.25 * fg.size, rel=0.01)
    assert counts["mri-mid"] == pytest.approx(0.5 * fg.size, rel=0.01)
    assert counts["mri-dark"] == pytest.approx(0.25 * fg.size, rel=0.01)      # background excluded


def test_auto_method_range_runs_from_threshold_to_maximum(ct):
    from MedSegCore.threshold import autothreshold
    array, g = ct
    [result] = engine.segment(array, g.spacing, ThresholdParameters(method="otsu"))
    t = autothreshold.compute_threshold(array, "otsu")
    assert result.lower == autothreshold.bright_lower_bound(t, array.dtype) > t       # ITK: inside is <= t
    assert result.upper == array.max()
    assert result.voxels == np.count_nonzero(array > t)


def test_multi_otsu_gives_one_segment_per_class_partitioning_the_volume():
    rng = np.random.default_rng(1)
    array = np.concatenate([rng.normal(m, 5, size=(10, 20, 20)) for m in (0, 100, 200)]).astype(np.float32)
    results = engine.segment(array, (1, 1, 1), ThresholdParameters(levels=3, name="Tissue"))
    assert [r.name for r in results] == ["Tissue 1", "Tissue 2", "Tissue 3"]
    total = np.zeros(array.shape, int)
    for r in results:
        total += r.mask
    assert (total == 1).all()
    assert [r.voxels for r in results] == pytest.approx([4000, 4000, 4000], abs=40)


def test_cleanup_options():
    mask = np.zeros((10, 20, 20), bool)
    mask[2:8, 2:12, 2:12] = True           # big island (600 voxels) with a hole
    mask[4:6, 6:8, 6:8] = False
    mask[1, 16:18, 16:18] = True           # small island (4 voxels)
    spacing = (1.0, 1.0, 2.0)              # voxel = 2 mm3
    assert cleanup.keep_largest_component(mask).sum() == mask.sum() - 4
    assert cleanup.remove_small_islands(mask, 10, spacing).sum() == mask.sum() - 4   # 8 mm3 < 10
    assert cleanup.remove_small_islands(mask, 8, spacing).sum() == mask.sum()
    assert cleanup.fill_holes(mask).sum() == mask.sum() + 8
    ring = np.zeros((3, 9, 9), bool)
    ring[:, 2:7, 2:7] = True
    ring[:, 4, 4] = False                  # a tube: a hole in each slice, open in 3D
    assert cleanup.fill_holes(ring).sum() == ring.sum()
    assert cleanup.fill_holes(ring, per_slice=True).sum() == ring.sum() + 3


def test_mask_file_on_another_grid_is_resampled(ct, tmp_path):
    array, g = ct
    volume = nodes.add_volume_node(array, g, "ct")
    # coarse grid shifted 0.1 mm along I and K so that no fine voxel centre falls on a tie
    shifted = np.asarray(g.origin) + g.direction_matrix @ [0.1, 0.0, 0.1]
    coarse = Geometry((24, 20, 15), (1.2, 1.2, 6.0), shifted, g.direction)
    roi = np.zeros(coarse.shape, np.uint8)
    roi[:, :, :12] = 1                                       # first half along I
    io.write_volume(roi, coarse, str(tmp_path / "roi.nii.gz"))
    mask = segment_ops.mask_from_file(str(tmp_path / "roi.nii.gz"), g)
    # nearest neighbour: fine voxel i lies in coarse voxel round((0.6 i - 0.1) / 1.2), K likewise
    i_inside = np.round((0.6 * np.arange(48) - 0.1) / 1.2) < 12
    k_inside = np.round((3.0 * np.arange(30) - 0.1) / 6.0) < 15
    expected = k_inside[:, None, None] & i_inside[None, None, :] & np.ones((1, 40, 1), bool)
    assert np.array_equal(mask, expected)
    seg, [r] = segment_ops.apply_threshold(volume, ThresholdParameters(preset="ct-soft-tissue"), roi=mask)
    assert 0 < r.voxels == np.count_nonzero((array == REGIONS["soft"]) & expected)


def test_segment_as_mask_and_copy(ct):
    array, g = ct
    volume = nodes.add_volume_node(array, g, "ct")
    seg, _ = segment_ops.apply_threshold(volume, ThresholdParameters(preset="ct-soft-tissue", name="Body"))
    roi = segment_ops.mask_from_segment(seg, "Body", volume)
    _, [r] = segment_ops.apply_threshold(volume, ThresholdParameters(lower=-2000, upper=5000, name="All in body"),
                                         seg, roi=roi)
    assert r.voxels == np.count_nonzero(array == REGIONS["soft"])
    segment_ops.copy_mask_as_segment(volume, roi, "Body copy", seg)
    assert nodes.segment_names(seg) == ["Body", "All in body", "Body copy"]
    with pytest.raises(ParameterError, match="no segment 'Nope'.*Body"):
        segment_ops.mask_from_segment(seg, "Nope", volume)


def test_mask_errors(ct, tmp_path):
    array, g = ct
    far = Geometry((4, 4, 4), (1, 1, 1), (5000, 5000, 5000), np.eye(3))
    io.write_volume(np.ones(far.shape, np.uint8), far, str(tmp_path / "far.nrrd"))
    with pytest.raises(InputError, match="does not overlap"):
        segment_ops.mask_from_file(str(tmp_path / "far.nrrd"), g)
    with pytest.raises(EmptyResultError, match="mask"):
        engine.segment(array, g.spacing, ThresholdParameters(lower=0), roi=np.zeros(array.shape, bool))


def test_bad_parameters(ct):
    array, g = ct
    with pytest.raises(ParameterError, match="above upper"):
        engine.segment(array, g.spacing, ThresholdParameters(lower=5, upper=1))
    with pytest.raises(ParameterError, match="unknown preset 'x'.*ct-bone"):
        engine.segment(array, g.spacing, ThresholdParameters(preset="x"))
    with pytest.raises(ParameterError, match="2 to 5 classes"):
        engine.segment(array, g.spacing, ThresholdParameters(levels=7))
    with pytest.raises(ParameterError, match="give a range"):
        engine.segment(array, g.spacing, ThresholdParameters())
    with pytest.raises(EmptyResultError, match="no voxel within 2000 .. 3000"):
        engine.segment(array, g.spacing, ThresholdParameters(lower=2000, upper=3000))
    [r] = engine.segment(array, g.spacing, ThresholdParameters(lower=2000, upper=3000, allow_empty=True))
    assert r.voxels == 0
    nan = array.astype(np.float32)
    nan[0, 0, 0] = np.nan
    with pytest.raises(ParameterError, match="NaN"):
        engine.segment(nan, g.spacing, ThresholdParameters(lower=0))
    with pytest.raises(ParameterError, match="3D"):
        engine.segment(array[0], g.spacing, ThresholdParameters(lower=0))


@pytest.mark.parametrize("invert", [False, True])
def test_threshold_blocks_count_and_box_match_numpy(invert):
    # large enough for several blocks on several threads; the voxels sit in an off-centre box
    rng = np.random.default_rng(5)
    array = rng.integers(-100, 100, (40, 180, 200)).astype(np.int16)
    array[7:29, 30:95, 101:187] += 300
    roi = np.zeros(array.shape, bool)
    roi[3:35, 20:170, 90:199] = True
    lo, hi = (-100, 150) if invert else (150, 400)
    mask, count, box = engine.threshold_blocks(array, lo, hi, invert, roi)
    expected = (((array >= lo) & (array <= hi)) != invert) & roi
    assert np.array_equal(mask, expected) and count == int(expected.sum()) > 0
    assert box == engine.bounding_box(expected) == (slice(7, 29), slice(30, 95), slice(101, 187))
    out = np.ones(array.shape, bool)
    assert engine.threshold_blocks(array, 1000, 2000, out=out) == (out, 0, None) and not out.any()
