"""Bring input volumes onto a network's grid and map results back to the input grid.

Steps: extra channels are resampled (linear) onto the first input's grid; axes are permuted and
flipped (exactly, no interpolation) so that I, J, K point to the card orientation; the volume is
resampled (linear) to the card spacing; intensities are normalised.  :meth:`Prepared.to_input_grid`
undoes the geometric steps: labels by nearest neighbour, probabilities linearly.  All LPS/RAS
handling goes through :func:`MedSegCore.image.geometry.to_sitk`/``from_sitk``.  No torch here.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..errors import InputError, ParameterError
from ..image.geometry import Geometry, to_sitk

_CODE_VECTORS = {"R": (1, 0, 0), "L": (-1, 0, 0), "A": (0, 1, 0), "P": (0, -1, 0), "S": (0, 0, 1), "I": (0, 0, -1)}


def orientation_transform(geometry: Geometry, codes: str) -> tuple:
    """(perm, flips, new_geometry): new axis t is old axis ``perm[t]``, reversed if ``flips[t]``,
    chosen so that the new I, J, K point as close as possible to ``codes`` (e.g. 'RAS')."""
    codes = codes.upper()
    if sorted({"R": 0, "L": 0, "A": 1, "P": 1, "S": 2, "I": 2}.get(c, -1) for c in codes) != [0, 1, 2]:
        raise ParameterError(f"orientation {codes!r} must name R/L, A/P and S/I once each, e.g. 'RAS'")
    target = np.array([_CODE_VECTORS[c] for c in codes], dtype=float).T      # columns: wanted axes
    d = geometry.direction_matrix
    perm = max(itertools.permutations(range(3)),
               key=lambda p: sum(abs(target[:, t] @ d[:, p[t]]) for t in range(3)))
    flips = tuple(bool(target[:, t] @ d[:, perm[t]] < 0) for t in range(3))
    size = [geometry.size[p] for p in perm]
    old_index = [0, 0, 0]                       # old IJK index of the new grid's voxel (0, 0, 0)
    for t in range(3):
        old_index[perm[t]] = size[t] - 1 if flips[t] else 0
    origin = (geometry.ijk_to_ras() @ np.array([*old_index, 1.0]))[:3]
    direction = np.stack([-d[:, perm[t]] if flips[t] else d[:, perm[t]] for t in range(3)], axis=1)
    new = Geometry(size, [geometry.spacing[p] for p in perm], origin, direction)
    return tuple(perm), flips, new


def apply_orientation(array: np.ndarray, perm, flips) -> np.ndarray:
    """Permute/flip a KJI array (or C,K,J,I with a leading channel axis) as orientation_transform says."""
    lead = array.ndim - 3
    axes = list(range(lead)) + [lead + 2 - perm[2 - n] for n in range(3)]
    out = np.transpose(array, axes)
    flip_axes = tuple(lead + 2 - t for t in range(3) if flips[t])
    return np.flip(out, flip_axes) if flip_axes else out


def undo_orientation(array: np.ndarray, perm, flips) -> np.ndarray:
    """Inverse of :func:`apply_orientation`."""
    lead = array.ndim - 3
    flip_axes = tuple(lead + 2 - t for t in range(3) if flips[t])
    out = np.flip(array, flip_axes) if flip_axes else array
    inverse = [0, 0, 0]
    for n in range(3):                          # new numpy axis n holds old numpy axis 2 - perm[2 - n]
        inverse[2 - perm[2 - n]] = n
    return np.transpose(out, list(range(lead)) + [lead + a for a in inverse])


def target_grid(geometry: Geometry, spacing) -> Geometry:
    """The grid MONAI's ``Spacingd`` makes: ``geometry``'s directions and the given spacing, size
    ``round(span / spacing + 1)`` and its first voxel on the input's first voxel (the corner that is
    smallest in the new voxel coordinates).  Same arithmetic as ``monai.data.utils.compute_shape_offset``
    (scale_extent False) with the affine of ``monai.data.utils.zoom_affine``, so models trained with
    MONAI transforms see the grid they were trained on."""
    spacing = np.asarray(spacing, dtype=float)
    d = geometry.direction_matrix
    in_affine = geometry.ijk_to_ras()
    out_affine = np.eye(4)
    out_affine[:3, :3] = d @ np.diag(spacing)
    corners = np.array(list(itertools.product(*[(0.0, n - 1.0) for n in geometry.size])), float).T
    corners = np.vstack([corners, np.ones((1, corners.shape[1]))])
    out = np.linalg.solve(out_affine, in_affine) @ corners
    size = np.maximum(np.round(np.ptp(out[:3], axis=1) + 1.0).astype(int), 1)
    first = next((i for i in range(out.shape[1]) if np.allclose(np.min(out[:3] - out[:3, i:i + 1], 1), 0.0,
                                                                  rtol=1e-3)), None)
    if first is None:                           # MONAI then centres the new grid on the input's centre
        shape = np.asarray(geometry.size, float)
        origin = in_affine[:3, :3] @ (shape / 2) + in_affine[:3, 3] - out_affine[:3, :3] @ (size / 2.0)
    else:
        origin = (in_affine @ corners[:, first])[:3]
    return Geometry(size, spacing, origin, d)


def resample(array: np.ndarray, source: Geometry, target: Geometry, linear: bool = True) -> np.ndarray:
    """``array`` on ``source`` resampled onto ``target`` (float32 linear, or nearest keeping dtype);
    points just outside the source take the nearest voxel's value."""
    from ..image.resample import resample as resample_grid

    return resample_grid(array, source, target, "linear" if linear else "nearest", extrapolate=True)


def normalize(array: np.ndarray, kind: str, params: dict) -> np.ndarray:
    """Intensity normalisation of one channel as a card describes it; returns float32."""
    x = np.asarray(array, dtype=np.float32)
    b_min, b_max = params.get("b_min", 0.0), params.get("b_max", 1.0)
    if kind == "none":
        return x.copy()
    if kind == "zscore":
        sel = x != 0 if params.get("nonzero", False) else None
        vals = x if sel is None else x[sel]
        if vals.size == 0:
            return x.copy()
        mean, std = float(vals.mean(dtype=np.float64)), float(vals.std(dtype=np.float64))
        std = std if std > 0 else 1.0
        if sel is None:
            return (x - np.float32(mean)) / np.float32(std)
        out = x.copy()
        out[sel] = (vals - mean) / std
        return out
    if kind == "minmax":
        lo, hi = float(x.min()), float(x.max())
        clip = False
    elif kind == "percentile":
        lo, hi = (float(v) for v in np.percentile(x, [params.get("lower", 0.5), params.get("upper", 99.5)]))
        clip = params.get("clip", True)
    elif kind == "ct_window":
        lo, hi, clip = float(params["a_min"]), float(params["a_max"]), params.get("clip", True)
    else:
        raise ParameterError(f"unknown intensity normalisation {kind!r}")
    scale = (b_max - b_min) / (hi - lo) if hi > lo else 0.0
    out = (x - np.float32(lo)) * np.float32(scale) + np.float32(b_min)
    return np.clip(out, min(b_min, b_max), max(b_min, b_max), out=out) if clip else out


@dataclass
class Prepared:
    """Network-ready data ``(C, K, J, I)`` float32 on ``net_geometry`` and the way back."""

    data: np.ndarray
    net_geometry: Geometry
    input_geometry: Geometry
    oriented_geometry: Geometry
    perm: tuple
    flips: tuple

    def to_input_grid(self, array: np.ndarray, labels: bool) -> np.ndarray:
        """Map a KJI array on the network grid back onto the input grid (exact shape and voxels)."""
        out = resample(array, self.net_geometry, self.oriented_geometry, linear=not labels)
        return np.ascontiguousarray(undo_orientation(out, self.perm, self.flips))


def check_inputs(inputs) -> list:
    """Normalise ``inputs`` to a list of (array, Geometry) with matching shapes."""
    if isinstance(inputs, tuple) and len(inputs) == 2 and isinstance(inputs[1], Geometry):
        inputs = [inputs]
    inputs = list(inputs)
    if not inputs:
        raise InputError("no input volume given")
    for n, item in enumerate(inputs):
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[1], Geometry)):
            raise InputError(f"input {n}: expected an (array, Geometry) pair")
        if np.asarray(item[0]).shape != item[1].shape:
            raise InputError(f"input {n}: array shape {np.asarray(item[0]).shape} does not match "
                             f"its geometry {item[1].shape} (KJI)")
    return inputs


def prepare(inputs, card) -> Prepared:
    """Resample, reorient and normalise ``inputs`` (list of (array, Geometry)) as ``card`` says."""
    inputs = check_inputs(inputs)
    if len(inputs) != card.in_channels:
        raise ParameterError(f"model {card.name!r} needs {card.in_channels} input volume(s) "
                             f"({', '.join(card.channel_names or [])}), got {len(inputs)}".replace(" ()", ""))
    geom = inputs[0][1]
    channels = [np.asarray(inputs[0][0])] + [resample(a, g, geom) for a, g in inputs[1:]]
    if card.orientation:
        perm, flips, oriented = orientation_transform(geom, card.orientation)
    else:
        perm, flips, oriented = (0, 1, 2), (False, False, False), geom
    net = oriented
    if card.spacing and not np.allclose(oriented.spacing, card.spacing, rtol=1e-3, atol=1e-4):
        net = target_grid(oriented, card.spacing)
    data = np.empty((len(channels), *net.shape), np.float32)
    for c, arr in enumerate(channels):
        arr = apply_orientation(arr, perm, flips)
        if net is not oriented:
            arr = resample(np.ascontiguousarray(arr), oriented, net)
        data[c] = normalize(arr, *card.normalization_for(c))
    return Prepared(data, net, geom, oriented, perm, flips)
