"""Tests of MedSegCore.evaluation.metrics against SimpleITK and MONAI, empty cases, matching and bad input."""
import json
import math

import numpy as np
import pytest
from scipy import ndimage

from MedSegCore.errors import InputError, MedSegError, ParameterError
from MedSegCore.image.geometry import Geometry
from MedSegCore.evaluation.metrics import (METRICS, compute_metrics, evaluate, surface_distances,
                                summarize)

SPACING = (0.7, 0.9, 2.5)            # I, J, K mm
DIAG = math.sqrt(sum(s * s for s in SPACING))
SHAPE = (36, 60, 52)                 # K, J, I


def smooth_field(seed, shape=SHAPE, sigma=(1.5, 4, 4)):
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.standard_normal(shape), sigma)


def blob_pair(seed):
    """Overlapping random smooth blobs (several components, concave parts)."""
    f, g = smooth_field(seed), smooth_field(seed + 100)
    t = np.quantile(f, 0.8)
    ref = f > t
    pred = (f + 0.6 * g) > t
    return pred, ref


def sitk_image(mask):
    geo = Geometry(mask.shape[::-1], SPACING, (10, -5, 3), np.eye(3))
    from MedSegCore.image.geometry import to_sitk
    return to_sitk(mask.astype(np.uint8), geo)


def dump(row):
    return json.dumps(row.to_dict(slices=True), allow_nan=False)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_overlap_and_hausdorff_agree_with_simpleitk(seed):
    import SimpleITK as sitk
    pred, ref = blob_pair(seed)
    m = compute_metrics(pred, ref, SPACING)
    ov = sitk.LabelOverlapMeasuresImageFilter()
    ov.Execute(sitk_image(pred), sitk_image(ref))      # (source = prediction, target = reference)
    assert m.dice == pytest.approx(ov.GetDiceCoefficient(), abs=1e-9)
    assert m.iou == pytest.approx(ov.GetJaccardCoefficient(), abs=1e-9)
    assert m.recall == pytest.approx(1 - ov.GetFalseNegativeError(), abs=1e-9)
    assert m.precision == pytest.approx(1 - ov.GetFalseDiscoveryRate(), abs=1e-9)
    assert m.specificity == pytest.approx(1 - ov.GetFalsePositiveError(), abs=1e-9)   # ITK: FP / |not T|
    assert m.f1 == pytest.approx(m.dice, abs=1e-12)
    assert m.tp + m.fp + m.fn + m.tn == pred.size
    assert m.specificity == pytest.approx(np.count_nonzero(~pred & ~ref) / np.count_nonzero(~ref))
    assert m.accuracy == pytest.approx(np.count_nonzero(pred == ref) / pred.size)
    voxel_ml = 0.7 * 0.9 * 2.5 / 1000
    assert m.volume_pred_ml == pytest.approx(pred.sum() * voxel_ml)
    assert m.volume_diff_ml == pytest.approx((pred.sum() - ref.sum()) * voxel_ml)
    hd = sitk.HausdorffDistanceImageFilter()
    hd.Execute(sitk_image(pred), sitk_image(ref))
    assert m.hausdorff_mm > 0
    assert abs(m.hausdorff_mm - hd.GetHausdorffDistance()) <= DIAG


@pytest.mark.filterwarnings("ignore::FutureWarning")   # MONAI's own deprecation notices
@pytest.mark.parametrize("seed", [1, 4])
def test_hd95_and_assd_agree_with_monai(seed):
    import torch
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance
    pred, ref = blob_pair(seed)
    m = compute_metrics(pred, ref, SPACING)
    yp, yr = (torch.from_numpy(x[None, None].astype(np.float32)) for x in (pred, ref))
    sampling = list(SPACING[::-1])                     # MONAI works in array (KJI) axis order
    hd95 = float(compute_hausdorff_distance(yp, yr, percentile=95, spacing=sampling))
    hd = float(compute_hausdorff_distance(yp, yr, spacing=sampling))
    assd = float(compute_average_surface_distance(yp, yr, symmetric=True, spacing=sampling))
    # same surface and percentile definitions as MONAI: far closer than the one voxel diagonal
    assert m.hd95_mm == pytest.approx(hd95, abs=1e-3)
    assert m.hausdorff_mm == pytest.approx(hd, abs=1e-3)
    assert m.assd_mm == pytest.approx(assd, abs=1e-3)
    assert 0 < m.assd_mm <= m.hd95_mm <= m.hausdorff_mm


def test_kdtree_and_distance_transform_agree():
    pred, ref = blob_pair(5)
    a = surface_distances(pred, ref, SPACING, method="kdtree")
    b = surface_distances(pred, ref, SPACING, method="edt")
    for x, y in zip(a, b):
        assert len(x) > 100
        np.testing.assert_allclose(np.sort(x), np.sort(y), atol=1e-9)
    with pytest.raises(ParameterError, match="unknown distance method"):
        compute_metrics(pred, ref, SPACING, method="brute")


def test_anisotropic_spacing_is_used_in_ijk_order():
    ref = np.zeros((20, 20, 20), dtype=bool)
    ref[5:12, 6:14, 4:15] = True
    shift_k = np.roll(ref, 2, axis=0)                  # 2 slices along K (2.5 mm each)
    shift_i = np.roll(ref, 2, axis=2)                  # 2 columns along I (0.7 mm each)
    assert compute_metrics(shift_k, ref, SPACING).hausdorff_mm == pytest.approx(5.0)
    assert compute_metrics(shift_i, ref, SPACING).hausdorff_mm == pytest.approx(1.4)
    geo = Geometry((20, 20, 20), SPACING, (0, 0, 0), np.eye(3))
    assert compute_metrics(shift_k, ref, geo).hd95_mm == pytest.approx(5.0)
    same = compute_metrics(ref, ref, SPACING)
    assert (same.dice, same.hausdorff_mm, same.hd95_mm, same.assd_mm) == (1.0, 0.0, 0.0, 0.0)


def test_2d_masks():
    ref = np.zeros((30, 30), dtype=np.uint8)
    ref[5:20, 5:20] = 1
    pred = np.roll(ref, 3, axis=1)
    m = compute_metrics(pred, ref, (0.5, 1.0))
    assert m.hausdorff_mm == pytest.approx(1.5)
    assert m.dice == pytest.approx(12 / 15)


def test_per_slice_dice():
    ref = np.zeros((4, 10, 10), dtype=bool)
    pred = np.zeros_like(ref)
    ref[1, 2:6, 2:6] = True
    pred[1, 2:6, 2:4] = True                            # half of slice 1
    pred[2, 0, 0] = True                                # false positive only
    m = compute_metrics(pred, ref, SPACING)
    assert m.slice_dice == (None, pytest.approx(2 * 8 / (8 + 16)), 0.0, None)
    assert m.to_dict(slices=True)["slice_dice"][0] is None
    assert "slice_dice" not in m.to_dict()


def test_empty_cases_are_defined_and_json_safe():
    empty = np.zeros((6, 8, 8), dtype=bool)
    full = np.ones_like(empty)
    some = empty.copy()
    some[2:4, 2:5, 3:6] = True

    both = compute_metrics(empty, empty, SPACING)
    assert both.empty == "both"
    assert (both.dice, both.iou, both.precision, both.recall, both.f1, both.specificity) == (1, 1, 1, 1, 1, 1)
    assert (both.hausdorff_mm, both.hd95_mm, both.assd_mm) == (0.0, 0.0, 0.0)

    no_pred = compute_metrics(empty, some, SPACING)
    assert no_pred.empty == "prediction" and "prediction is empty" in no_pred.note
    assert (no_pred.dice, no_pred.iou, no_pred.precision, no_pred.recall, no_pred.f1) == (0, 0, 0, 0, 0)
    assert no_pred.specificity == 1.0
    assert (no_pred.hausdorff_mm, no_pred.hd95_mm, no_pred.assd_mm) == (None, None, None)

    no_ref = compute_metrics(some, empty, SPACING)
    assert no_ref.empty == "reference" and "reference is empty" in no_ref.note
    assert (no_ref.dice, no_ref.precision, no_ref.recall) == (0, 0, 0)
    assert no_ref.specificity == pytest.approx(1 - some.sum() / some.size)
    assert no_ref.hausdorff_mm is None and no_ref.volume_ref_ml == 0

    all_ref = compute_metrics(some, full, SPACING)        # no background: specificity defined
    assert all_ref.specificity == 1.0 and all_ref.precision == 1.0
    for row in (both, no_pred, no_ref, all_ref):
        text = dump(row)
        assert "NaN" not in text and "Infinity" not in text
    assert surface_distances(empty, some, SPACING)[0].size == 0


def two_region_labels():
    """Label maps where labels 1 and 2 are swapped between prediction and reference."""
    ref = np.zeros((10, 16, 16), dtype=np.uint8)
    ref[2:8, 2:7, 2:7] = 1
    ref[2:8, 9:14, 9:14] = 2
    pred = np.zeros_like(ref)
    pred[ref == 1] = 2
    pred[ref == 2] = 1
    return pred, ref


def test_multilabel_is_evaluated_per_label_not_flattened():
    pred, ref = two_region_labels()
    flat = compute_metrics(pred > 0, ref > 0, SPACING)
    assert flat.dice == 1.0                                 # flattening would hide the swap
    rows = evaluate(pred, ref, SPACING, match="value", case="c1")
    assert [(r.segment, r.dice) for r in rows] == [("1", 0.0), ("2", 0.0)]
    assert all(r.case == "c1" for r in rows)
    swapped = evaluate(pred, ref, SPACING, match={1: 2, 2: 1})
    assert [(r.pred_segment, r.segment, r.dice) for r in swapped] == [("1", "2", 1.0), ("2", "1", 1.0)]


def test_match_by_name_value_and_mapping():
    pred, ref = two_region_labels()
    rows = evaluate(pred, ref, SPACING, pred_names={1: "spleen", 2: "liver"},
                    ref_names={1: "liver", 2: "spleen"})
    assert {r.segment: r.dice for r in rows} == {"liver": 1.0, "spleen": 1.0}
    masks_p = {"Liver": pred == 2, "Spleen": pred == 1}
    masks_r = {"liver": ref == 1, "spleen": ref == 2}
    mapped = evaluate(masks_p, masks_r, SPACING, match={"Liver": "liver"})
    assert [(r.pred_segment, r.segment, r.dice) for r in mapped] == [("Liver", "liver", 1.0)]
    mixed = evaluate(masks_p, ref, SPACING, match={"Spleen": 2})  # name on one side, value on the other
    assert mixed[0].segment == "2" and mixed[0].dice == 1.0
    # value matching: a label missing on one side is an empty mask there, not an error
    pred3 = pred.copy()
    pred3[0, 0, 0] = 3
    rows = evaluate(pred3, ref, SPACING, match="value")
    assert [r.segment for r in rows] == ["1", "2", "3"] and rows[2].empty == "reference"


def test_summarize_over_cases():
    rows = []
    for seed in (1, 2, 3):
        pred, ref = blob_pair(seed)
        rows += evaluate({"tumour": pred}, {"tumour": ref}, SPACING, case=f"case{seed}")
    empty = np.zeros(SHAPE, dtype=bool)
    rows += evaluate({"tumour": empty}, {"tumour": blob_pair(1)[1]}, SPACING, case="missed")
    summary = {(s["segment"], s["metric"]): s for s in summarize(rows)}
    assert {m for _, m in summary} == set(METRICS)
    dice = summary[("tumour", "dice")]
    values = [r.dice for r in rows]
    assert dice["n"] == 4 and dice["mean"] == pytest.approx(np.mean(values))
    assert dice["sd"] == pytest.approx(np.std(values, ddof=1))
    hd = summary[("tumour", "hd95_mm")]
    assert hd["n"] == 3 and hd["missing"] == 1
    single = summarize(rows[:1])
    assert all(s["sd"] is None for s in single)
    json.dumps(summarize(rows), allow_nan=False)


def test_bad_input_messages():
    pred, ref = two_region_labels()
    with pytest.raises(MedSegError, match=r"segment names differ: prediction has \['Liver'\], "
                                          r"reference has \['liver', 'spleen'\]"):
        evaluate({"Liver": pred == 1}, {"liver": ref == 1, "spleen": ref == 2}, SPACING)
    with pytest.raises(InputError, match=r"prediction shape \(10, 16, 15\) differs from reference shape \(10, 16, 16\)"):
        compute_metrics(pred[..., :15] > 0, ref > 0, SPACING)
    with pytest.raises(InputError, match=r"shape \(10, 16, 15\) differs"):
        evaluate(pred[..., :15], ref, SPACING, match="value")
    with pytest.raises(InputError, match="prediction segment 'tumour' is not a binary mask: found value 2"):
        evaluate({"tumour": pred}, {"tumour": ref == 1}, SPACING)
    with pytest.raises(InputError, match="not a binary mask: found value 0.5"):
        compute_metrics(np.full((3, 4, 4), 0.5), ref[:3, :4, :4] > 0, SPACING)
    with pytest.raises(MedSegError, match="prediction and reference both have no segments"):
        evaluate(np.zeros_like(pred), np.zeros_like(ref), SPACING, match="value")
    with pytest.raises(MedSegError, match="both have no segments"):
        evaluate({}, {}, SPACING)
    with pytest.raises(InputError, match="prediction is 2D but reference is 3D"):
        evaluate(pred[0], ref, SPACING, match="value")
    with pytest.raises(InputError, match="prediction is 2D but reference is 3D"):
        compute_metrics(pred[0] > 0, ref > 0, SPACING)
    with pytest.raises(MedSegError, match=r"mapping names reference segment 'kidney', which does not exist; "
                                          r"reference has \['liver'=1, 'spleen'=2\]"):
        evaluate(pred, ref, SPACING, ref_names={1: "liver", 2: "spleen"}, match={1: "kidney"})
    with pytest.raises(ParameterError, match="match='value' needs label values"):
        evaluate({"a": pred == 1}, {"a": ref == 1}, SPACING, match="value")
    with pytest.raises(ParameterError, match="unknown match 'size'"):
        evaluate(pred, ref, SPACING, match="size")
    with pytest.raises(ParameterError, match="spacing has 2 values but the masks are 3D"):
        compute_metrics(pred > 0, ref > 0, (1.0, 1.0))
    with pytest.raises(ParameterError, match="positive"):
        compute_metrics(pred > 0, ref > 0, (1.0, 0.0, 1.0))
    with pytest.raises(InputError, match="must hold integer labels"):
        evaluate(pred.astype(float), ref, SPACING, match="value")


def test_auto_method_and_inputs_accepted():
    rng = np.random.default_rng(7)
    speckle_p, speckle_r = rng.random((2, 12, 20, 20)) < 0.3      # surfaces fill the box: EDT path
    auto = surface_distances(speckle_p, speckle_r, SPACING)
    tree = surface_distances(speckle_p, speckle_r, SPACING, method="kdtree")
    for x, y in zip(auto, tree):
        np.testing.assert_allclose(np.sort(x), np.sort(y), atol=1e-9)
    pred, ref = two_region_labels()
    by_list = evaluate(pred, ref, SPACING, pred_names=["a", "b"], ref_names=["a", "b"])
    by_int_keys = evaluate({1: pred == 1, 2: pred == 2}, {1: ref == 1, 2: ref == 2}, SPACING, match="value")
    assert [r.dice for r in by_list] == [r.dice for r in by_int_keys] == [0.0, 0.0]
    with pytest.raises(ParameterError, match=r"names are not unique: \['x'\]"):
        evaluate(pred, ref, SPACING, pred_names={1: "x", 2: "x"})


def test_large_pair_values():
    """All metrics of a 512x512x300 pair of large overlapping ellipsoids (its speed is measured by
    Testing/benchmarks/bench_metrics.py, not asserted here)."""
    shape = (300, 512, 512)
    j, i = np.ogrid[:shape[1], :shape[2]]
    pred, ref = np.empty(shape, dtype=bool), np.empty(shape, dtype=bool)
    for k in range(shape[0]):
        np.less(((j - 256) / 180) ** 2 + ((i - 256) / 190) ** 2, 1 - ((k - 150) / 110) ** 2, out=pred[k])
        np.less(((j - 262) / 185) ** 2 + ((i - 250) / 180) ** 2, 1 - ((k - 145) / 105) ** 2, out=ref[k])
    m = compute_metrics(pred, ref, SPACING)
    assert 0.9 < m.dice < 0.97 and 10 < m.hd95_mm < m.hausdorff_mm < 40
