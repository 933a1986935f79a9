"""Geometry of preprocessing: exact reorientation, resampling, normalisation, and results that
overlay oblique, anisotropic and LPS inputs exactly."""
import itertools

import numpy as np
import pytest
import torch

from MedSegCore.dnn import PredictOptions, card_from_dict, predict
from MedSegCore.dnn.loading import LoadedModel
from MedSegCore.dnn.preprocess import (apply_orientation, normalize, orientation_transform, prepare, resample,
                                       target_grid, undo_orientation)
from MedSegCore.errors import ParameterError
from MedSegCore.image.geometry import Geometry

torch.set_num_threads(2)


def rotation(axis, angle):
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def centres(geom):
    """RAS centres of all voxels, shape (K, J, I, 3)."""
    k, j, i = np.meshgrid(*[np.arange(n) for n in geom.shape], indexing="ij")
    ijk = np.stack([i, j, k], -1).astype(float)
    m = geom.ijk_to_ras()
    return ijk @ m[:3, :3].T + m[:3, 3]


def card(**changes):
    d = {"name": "threshold", "version": "1", "description": "fixed threshold at 0.5", "intended_use": "tests",
         "trained": False, "in_channels": 1, "out_channels": 2, "spacing": [1.0, 1.0, 1.0], "orientation": "RAS",
         "normalization": {"type": "minmax"}, "roi_size": [32, 32, 32], "output": "softmax",
         "labels": [{"value": 1, "name": "sphere", "color": [1, 0, 0]}]}
    d.update(changes)
    return card_from_dict(d)


class Threshold(torch.nn.Module):
    """'Identity-ish' network: foreground where the (normalised) input exceeds 0.5."""

    def forward(self, x):
        return torch.cat([torch.full_like(x[:, :1], 0.5), x[:, :1]], 1) * 20


OBLIQUE_LPS = rotation((1, 2, 3), 0.5) @ np.diag([-1, -1, 1])
GRIDS = {
    "oblique_anisotropic": Geometry((70, 50, 30), (0.9, 1.3, 2.2), (10, -20, 5), OBLIQUE_LPS),
    "lps_anisotropic": Geometry((60, 64, 24), (1.1, 0.8, 2.5), (40, 30, -20), np.diag([-1, -1, 1])),
    "permuted_oblique": Geometry((40, 56, 48), (1.6, 0.7, 1.2), (0, 0, 0),
                                 rotation((0, 1, 1), 0.3) @ np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]])),
}


def centred(geom, size, spacing, direction):
    """A grid of ``size``/``spacing``/``direction`` with the same centre as ``geom``."""
    m = geom.ijk_to_ras()
    centre = m[:3, :3] @ ((np.array(geom.size) - 1) / 2) + m[:3, 3]
    d = np.asarray(direction, float)
    return Geometry(size, spacing, centre - d @ ((np.array(size) - 1) / 2 * np.array(spacing)), d)


def sphere(geom, radius=15.0, where=(0.4, 0.55, 0.5)):
    m = geom.ijk_to_ras()
    centre = m[:3, :3] @ (np.array(geom.size) * np.array(where)) + m[:3, 3]
    dist = np.linalg.norm(centres(geom) - centre, axis=-1)
    return dist < radius, np.abs(dist - radius)


def test_orientation_transform_is_an_exact_relabelling():
    rng = np.random.default_rng(0)
    for perm in itertools.permutations(range(3)):
        d = np.eye(3)[:, perm] * rng.choice([-1, 1], 3)
        for direction in (d, rotation((1, 1, 0), 0.4) @ d):
            geom = Geometry((5, 6, 7), (1.0, 2.0, 3.0), (1, 2, 3), direction)
            array = rng.normal(size=geom.shape)
            p, f, new = orientation_transform(geom, "RAS")
            out = apply_orientation(array, p, f)
            assert out.shape == new.shape and new.axis_codes() == "RAS"
            ras_new = centres(new)
            ijk_old = (ras_new - geom.origin) @ np.linalg.inv(geom.ijk_to_ras()[:3, :3]).T
            idx = np.rint(ijk_old).astype(int)
            assert np.allclose(ijk_old, idx, atol=1e-6)
            assert np.array_equal(out, array[idx[..., 2], idx[..., 1], idx[..., 0]])
            assert np.array_equal(undo_orientation(out, p, f), array)
    with pytest.raises(ParameterError, match="once each"):
        orientation_transform(geom, "RRS")


@pytest.mark.parametrize("name", sorted(GRIDS))
@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (1.5, 1.5, 2.0), (0.45, 0.8, 1.3)])
def test_network_grid_is_monais_orientationd_and_spacingd_grid(name, spacing):
    """The card pipeline's network grid equals the grid of MONAI's Orientationd('RAS') + Spacingd."""
    from monai.data import MetaTensor
    from monai.transforms import Orientation, Spacing

    geom = GRIDS[name]
    image = MetaTensor(torch.zeros((1, *geom.size)), affine=torch.as_tensor(geom.ijk_to_ras()))
    expected = Spacing(pixdim=spacing)(Orientation(axcodes="RAS")(image))
    _, _, oriented = orientation_transform(geom, "RAS")
    tgt = target_grid(oriented, spacing)
    assert tgt.size == tuple(expected.shape[1:])
    assert np.allclose(tgt.ijk_to_ras(), expected.affine.numpy(), atol=1e-4)


def test_resampling_reproduces_a_linear_field_between_oblique_grids():
    src = GRIDS["oblique_anisotropic"]
    dst = centred(src, (40, 40, 40), (1.0, 1.0, 1.0), np.diag([-1, 1, 1]))
    field = lambda ras: ras @ np.array([0.5, -1.0, 2.0]) + 3.0   # noqa: E731
    out = resample(field(centres(src)).astype(np.float32), src, dst)
    cont = (centres(dst) - src.origin) @ np.linalg.inv(src.ijk_to_ras()[:3, :3]).T
    inside = np.all((cont >= 0) & (cont <= np.array(src.size) - 1), axis=-1)
    assert inside.sum() > 5000
    assert np.allclose(out[inside], field(centres(dst))[inside], atol=1e-3)


def test_second_channel_is_resampled_onto_the_first_grid():
    first = GRIDS["lps_anisotropic"]
    second = centred(first, (50, 40, 40), (1.5, 1.5, 1.5), rotation((1, 0, 1), 0.2))
    field = lambda ras: ras @ np.array([1.0, 2.0, -0.5])         # noqa: E731
    c = card(in_channels=2, normalization={"type": "none"}, spacing=None, labels=[
        {"value": 1, "name": "x", "color": [1, 0, 0]}])
    prep = prepare([(field(centres(first)), first), (field(centres(second)), second)], c)
    cont = (centres(prep.net_geometry) - second.origin) @ np.linalg.inv(second.ijk_to_ras()[:3, :3]).T
    inside = np.all((cont >= 0) & (cont <= np.array(second.size) - 1), axis=-1)
    assert inside.mean() > 0.3 and prep.net_geometry.axis_codes() == "RAS"
    assert np.allclose(prep.data[1][inside], prep.data[0][inside], atol=1e-3)


def test_normalisations():
    x = np.random.default_rng(1).normal(50, 10, (10, 10, 10)).astype(np.float32)
    z = normalize(x, "zscore", {})
    assert abs(z.mean()) < 1e-4 and abs(z.std() - 1) < 1e-3 and z.dtype == np.float32
    x0 = x.copy()
    x0[:5] = 0
    zn = normalize(x0, "zscore", {"nonzero": True})
    assert np.all(zn[:5] == 0) and abs(zn[5:].mean()) < 1e-4
    mm = normalize(x, "minmax", {"b_min": -1.0, "b_max": 1.0})
    assert np.isclose(mm.min(), -1) and np.isclose(mm.max(), 1)
    p = normalize(x, "percentile", {"lower": 5, "upper": 95})
    assert p.min() == 0 and p.max() == 1 and 0.045 < (p == 0).mean() < 0.06
    ct = normalize(np.array([-1000, -57, 53.5, 164, 3000], np.float32), "ct_window", {"a_min": -57, "a_max": 164})
    assert np.allclose(ct, [0, 0, 0.5, 1, 1])
    assert np.array_equal(normalize(x, "none", {}), x)


def test_lps_input_without_spacing_round_trips_exactly():
    geom = GRIDS["lps_anisotropic"]
    mask, _ = sphere(geom)
    model = LoadedModel(Threshold(), card(spacing=None), "threshold", "test")
    result = predict([(mask * 80.0 + 10, geom)], model, PredictOptions(device="cpu", sw_batch=2))
    assert np.array_equal(result.labelmap == 1, mask)


@pytest.mark.parametrize("name", sorted(GRIDS))
def test_result_overlays_oblique_anisotropic_input(name):
    geom = GRIDS[name]
    mask, dist = sphere(geom)
    model = LoadedModel(Threshold(), card(), "threshold", "test")
    result = predict([(mask * 100.0 + 20, geom)], model, PredictOptions(device="cpu", sw_batch=2,
                                                                         probabilities=True))
    got = result.labelmap == 1
    assert got.shape == mask.shape
    dice = 2 * (got & mask).sum() / (got.sum() + mask.sum())
    assert dice >= 0.98, dice
    assert np.all(dist[got != mask] < max(geom.spacing))       # disagreements only at the boundary
    prob = result.probabilities["sphere"]
    assert prob.dtype == np.float32 and prob[mask & (dist > 3)].min() > 0.99 and prob[~mask & (dist > 3)].max() < 0.01


def test_network_receives_ras_ijk_tensors():
    geom = Geometry((12, 10, 8), (1.0, 1.0, 1.0), (0, 0, 0), np.diag([-1, -1, 1]))   # LPS, I points left
    ras = centres(geom)
    seen = []

    class Recorder(torch.nn.Module):
        def forward(self, x):
            seen.append(x.clone())
            return torch.cat([torch.zeros_like(x), x], 1)

    c = card(spacing=None, normalization={"type": "none"}, roi_size=[12, 10, 8])
    predict([(ras[..., 0] + 100 * ras[..., 2], geom)], LoadedModel(Recorder(), c, "rec", "test"),
            PredictOptions(device="cpu", blend="constant"))
    x = seen[0][0, 0]                                            # (I, J, K) after reorientation to RAS
    assert x.shape == (12, 10, 8)
    assert torch.all(x[1:] - x[:-1] == 1) and torch.all(x[:, 1:] == x[:, :-1])
    assert torch.all(x[:, :, 1:] - x[:, :, :-1] == 100)
