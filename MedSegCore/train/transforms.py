"""Patch sampling and augmentation, batched on the training device so that a GPU is never
waiting for data.  Volumes stay in memory (on the GPU when there is room); a step costs one
class-balanced crop per patch and a few batched tensor operations.

* Patch centres come from MONAI's own crop-centre functions, the ones behind
  ``RandCropByLabelClasses`` (sampler 'classes': each channel, background included, equally often
  or by ``class_ratios``) and ``RandCropByPosNegLabel`` (sampler 'posneg').
* Augmentation follows the MONAI transforms of the same name, vectorised over the batch:
  RandAffine (rotation, zoom; a larger crop is taken first so that rotated corners hold image
  data), an optional smooth elastic deformation (random control-point offsets interpolated to
  every voxel, as MONAI's RandSmoothDeform), RandRotate90 (quarter turns in one plane), RandFlip (only along ``flip_axes``), RandBiasField (Legendre polynomial of degree 3,
  multiplicative, on the raw intensities), RandAdjustContrast (gamma on the case's intensity
  range), then the card's normalisation with the case's own statistics, then RandGaussianNoise,
  RandScaleIntensity and RandShiftIntensity on the normalised values.  With
  ``zscore`` + ``nonzero`` the zero background is left at zero, as inference does.
"""
from __future__ import annotations

import math

import numpy as np


def norm_params(raw: np.ndarray, normalization: dict) -> dict:
    """Per-case constants so that ``(raw - shift) * scale + offset`` (then clip) equals
    :func:`MedSegCore.dnn.preprocess.normalize`; ``nonzero``: only non-zero voxels change."""
    kind, p = normalization["type"], dict(normalization.get("params", {}))
    x = np.asarray(raw, dtype=np.float32)
    out = {"shift": 0.0, "scale": 1.0, "offset": 0.0, "nonzero": False, "clip": None,
           "vmin": float(x.min()), "vmax": float(x.max())}
    b_min, b_max = p.get("b_min", 0.0), p.get("b_max", 1.0)
    if kind == "zscore":
        nonzero = bool(p.get("nonzero", False))
        vals = x[x != 0] if nonzero else x
        if vals.size:
            std = float(vals.std(dtype=np.float64))
            out.update(shift=float(vals.mean(dtype=np.float64)), scale=1.0 / (std if std > 0 else 1.0))
        out["nonzero"] = nonzero
    elif kind in ("minmax", "percentile", "ct_window"):
        if kind == "minmax":
            lo, hi, clip = float(x.min()), float(x.max()), False
        elif kind == "percentile":
            lo, hi = (float(v) for v in np.percentile(x, [p.get("lower", 0.5), p.get("upper", 99.5)]))
            clip = p.get("clip", True)
        else:
            lo, hi, clip = float(p["a_min"]), float(p["a_max"]), p.get("clip", True)
        out.update(shift=lo, scale=(b_max - b_min) / (hi - lo) if hi > lo else 0.0, offset=b_min,
                   clip=(min(b_min, b_max), max(b_min, b_max)) if clip else None)
    return out


def apply_norm(x, params: dict):
    """Normalise a numpy array or tensor with :func:`norm_params` constants."""
    y = (x - params["shift"]) * params["scale"] + params["offset"]
    if params["clip"] is not None:
        y = y.clip(*params["clip"])
    if params["nonzero"]:
        y = y * (x != 0)
    return y


class PatchSampler:
    """Crops of ``crop`` voxels (I, J, K) around class-balanced centres of in-memory cases."""

    def __init__(self, cases, crop, num_classes: int, device, sampler: str = "classes",
                 pos_fraction: float = 0.5, ratios=None, max_indices: int = 250_000, seed: int = 0):
        import torch

        self.crop, self.device, self.sampler = [int(c) for c in crop], device, sampler
        self.pos_fraction, self.ratios = pos_fraction, ratios
        rng = np.random.RandomState(seed)
        self.images, self.labels, self.indices, self.norms = [], [], [], []
        for case in cases:
            img, lab = case.image[0], case.label
            pad = [(0, max(0, c - s)) for c, s in zip(self.crop, lab.shape)]
            if any(p[1] for p in pad):
                img, lab = np.pad(img, pad), np.pad(lab, pad)
            self.norms.append(case.norm)
            flat = lab.ravel()
            groups = ([np.flatnonzero(flat == k) for k in range(num_classes)] if sampler == "classes"
                      else [np.flatnonzero(flat > 0), np.flatnonzero(flat == 0)])
            self.indices.append([g if len(g) <= max_indices else np.sort(rng.choice(g, max_indices, replace=False))
                                 for g in groups])
            self.images.append(torch.from_numpy(np.ascontiguousarray(img, dtype=np.float32)).to(device))
            self.labels.append(torch.from_numpy(np.ascontiguousarray(lab)).to(device))

    def centres(self, i: int, n: int, rng: np.random.RandomState) -> list:
        from monai.transforms.utils import (generate_label_classes_crop_centers,
                                            generate_pos_neg_label_crop_centers)

        shape = tuple(self.labels[i].shape)
        if self.sampler == "classes":
            ratios = list(self.ratios) if self.ratios else None
            return list(generate_label_classes_crop_centers(self.crop, n, shape, self.indices[i], ratios, rng,
                                                            warn=False))
        fg, bg = self.indices[i]
        if not len(bg):
            bg = fg
        return list(generate_pos_neg_label_crop_centers(self.crop, n, self.pos_fraction, shape, fg, bg, rng))

    def sample(self, i: int, n: int, rng: np.random.RandomState) -> tuple:
        """(images (n, 1, *crop) float32, labels (n, 1, *crop) uint8) of case ``i``."""
        import torch

        imgs, labs = [], []
        shape = self.labels[i].shape
        for c in self.centres(i, n, rng):
            start = [min(max(int(ci) - s // 2, 0), dim - s) for ci, s, dim in zip(c, self.crop, shape)]
            sl = tuple(slice(a, a + s) for a, s in zip(start, self.crop))
            imgs.append(self.images[i][sl])
            labs.append(self.labels[i][sl])
        return torch.stack(imgs)[:, None], torch.stack(labs)[:, None]


def crop_size(aug, dims: int, patch) -> list:
    """Crop needed so that a rotated/zoomed/deformed patch is filled with image data."""
    deform = aug.deform_prob > 0
    if aug.affine_prob <= 0 and not deform:
        return list(patch)
    f = 1.0
    if aug.affine_prob > 0:
        r = math.radians(aug.rotate_deg)
        f = (1 + aug.scale) * (abs(math.cos(r)) + abs(math.sin(r)))
    margin = 2 * math.ceil(aug.deform_voxels) if deform else 0
    return [int(math.ceil((p * f + margin) / 2)) * 2 if (dims == 3 or a < 2) else p for a, p in enumerate(patch)]


def _rotation(angles) -> np.ndarray:
    a, b, c = angles
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _legendre(n: int, device):
    """(4, n): Legendre polynomials P0..P3 on n points in [-1, 1] (P0 only when n == 1)."""
    import torch

    x = torch.linspace(-1, 1, n, device=device) if n > 1 else torch.zeros(1, device=device)
    return torch.stack([torch.ones_like(x), x, (3 * x ** 2 - 1) / 2, (5 * x ** 3 - 3 * x) / 2])


class Augmenter:
    """Batched augmentation of (raw image, label) crops into normalised patches of ``patch`` size."""

    def __init__(self, aug, dims: int, patch, crop):
        self.aug, self.dims, self.patch, self.crop = aug, dims, [int(p) for p in patch], [int(c) for c in crop]

    def _affine(self, img, lab, rng):
        import torch
        import torch.nn.functional as F

        a, B, dev = self.aug, img.shape[0], img.device
        start = [(c - p) // 2 for c, p in zip(self.crop, self.patch)]
        centre = tuple(slice(s, s + p) for s, p in zip(start, self.patch))
        out_img, out_lab = img[(slice(None), slice(None)) + centre], lab[(slice(None), slice(None)) + centre]
        affine = rng.random_sample(B) < a.affine_prob
        deform = rng.random_sample(B) < a.deform_prob
        chosen = np.flatnonzero(affine | deform)
        if not len(chosen):
            return out_img.contiguous(), out_lab.contiguous()
        r = math.radians(a.rotate_deg)
        thetas = []
        for b in chosen:
            angles = rng.uniform(-r, r, 3) if self.dims == 3 else np.array([0.0, 0.0, rng.uniform(-r, r)])
            zoom = rng.uniform(1 - a.scale, 1 + a.scale, 3)
            if self.dims == 2:
                zoom[2] = 1.0
            if not affine[b]:
                angles, zoom = np.zeros(3), np.ones(3)
            a_ijk = _rotation(angles) @ np.diag(zoom)               # output offset -> input offset (voxels)
            m = np.diag(2.0 / np.array(self.crop)) @ a_ijk @ np.diag(np.array(self.patch) / 2.0)
            m = m[::-1, ::-1] if self.dims == 3 else m[:2, :2][::-1, ::-1]      # (I, J, K) -> grid (x, y, z)
            thetas.append(np.concatenate([m, np.zeros((m.shape[0], 1))], axis=1))
        theta = torch.tensor(np.stack(thetas), dtype=torch.float32, device=dev)
        sub_img, sub_lab = img[chosen].float(), lab[chosen].float()
        size = [len(chosen), 1] + self.patch
        if self.dims == 2:
            sub_img, sub_lab, size = sub_img[..., 0], sub_lab[..., 0], size[:-1]
        grid = F.affine_grid(theta, size, align_corners=False)
        if deform[chosen].any():
            grid = grid + self._displacement(deform[chosen], size, rng, dev)
        w_img = F.grid_sample(sub_img, grid, mode="bilinear", padding_mode="border", align_corners=False)
        w_lab = F.grid_sample(sub_lab, grid, mode="nearest", padding_mode="border", align_corners=False)
        if self.dims == 2:
            w_img, w_lab = w_img[..., None], w_lab[..., None]
        out_img, out_lab = out_img.clone(), out_lab.clone()
        idx = torch.as_tensor(chosen, device=dev)
        out_img[idx] = w_img.to(out_img.dtype)
        out_lab[idx] = w_lab.round().to(out_lab.dtype)
        return out_img, out_lab

    def _displacement(self, which, size, rng, dev):
        """Smooth random displacements for ``grid_sample`` grids of ``size`` (zero where not
        ``which``): uniform random offsets of up to ``deform_voxels`` voxels on a coarse grid of
        control points, interpolated (trilinear) to every output voxel."""
        import torch
        import torch.nn.functional as F

        a, n, spatial = self.aug, len(which), size[2:]
        g = max(2, int(a.deform_grid))
        coarse = rng.uniform(-1, 1, (n, len(spatial)) + (g,) * len(spatial))
        coarse *= which.reshape((n,) + (1,) * (len(spatial) + 1))
        field = torch.tensor(coarse, dtype=torch.float32, device=dev)
        field = F.interpolate(field, size=spatial, mode="bilinear" if len(spatial) == 2 else "trilinear",
                              align_corners=True)
        # grid channels are (x, y[, z]) = the last, second-last[, third-last] tensor axes, in units
        # of half the input crop: one voxel is 2 / crop along that axis
        crop = self.crop[:len(spatial)]
        per_voxel = torch.tensor([2.0 * a.deform_voxels / c for c in reversed(crop)], device=dev)
        return field.movedim(1, -1) * per_voxel

    def __call__(self, img, lab, norms: list, rng: np.random.RandomState):
        """``img`` (B, 1, *crop) raw, ``lab`` (B, 1, *crop); ``norms``: norm_params per patch.
        Returns (normalised float32 image, int64 label), both (B, 1, *patch)."""
        import torch

        a, B, dev = self.aug, img.shape[0], img.device
        img, lab = self._affine(img, lab, rng)
        img = img.float()

        def per_sample(values):
            return torch.tensor(values, dtype=torch.float32, device=dev).view(B, *([1] * (img.ndim - 1)))

        def chance(p):
            return per_sample((rng.random_sample(B) < p).astype(np.float32))

        if a.rotate90_prob > 0:
            # rotations keep the anatomy's handedness (flips do not): k = 1..3 quarter turns per patch
            dims = tuple(2 + int(d) for d in a.rotate90_axes)
            turns = np.where(rng.random_sample(B) < a.rotate90_prob, rng.randint(1, 4, B), 0)
            for k in (1, 2, 3):
                m = per_sample((turns == k).astype(np.float32)) > 0
                if m.any():
                    img = torch.where(m, img.rot90(k, dims), img)
                    lab = torch.where(m, lab.rot90(k, dims), lab)
        for axis in a.flips(self.dims):
            m = chance(a.flip_prob) > 0
            img = torch.where(m, img.flip(2 + axis), img)
            lab = torch.where(m, lab.flip(2 + axis), lab)
        nonzero = img != 0
        if a.bias_prob > 0 and a.bias_coeff > 0:
            deg = np.indices((4, 4, 4)).sum(0)
            keep = (deg <= 3) & (deg > 0)
            if self.dims == 2:
                keep &= np.indices((4, 4, 4))[2] == 0
            coef = rng.uniform(-a.bias_coeff, a.bias_coeff, (B, 4, 4, 4)) * keep
            coef *= (rng.random_sample(B) < a.bias_prob)[:, None, None, None]
            px, py, pz = (_legendre(n, dev) for n in self.patch)
            field = torch.einsum("nabc,ai,bj,ck->nijk", torch.tensor(coef, dtype=torch.float32, device=dev), px, py, pz)
            img = img * torch.exp(field)[:, None]
        if a.gamma_prob > 0:
            lo, hi = per_sample([n["vmin"] for n in norms]), per_sample([n["vmax"] for n in norms])
            g = per_sample(np.where(rng.random_sample(B) < a.gamma_prob, rng.uniform(*a.gamma, B), 1.0))
            span = (hi - lo).clamp_min(1e-8)
            img = ((img - lo) / span).clamp_min(0) ** g * span + lo
        shift, scale = per_sample([n["shift"] for n in norms]), per_sample([n["scale"] for n in norms])
        offset = per_sample([n["offset"] for n in norms])
        img = (img - shift) * scale + offset
        clip = norms[0]["clip"]
        if clip is not None:
            img = img.clamp(*clip)
        tissue = nonzero.float() if norms[0]["nonzero"] else torch.ones_like(img)
        sigma = per_sample(rng.uniform(0, a.noise_std, B)) * chance(a.noise_prob)
        gen = torch.Generator(device=dev).manual_seed(int(rng.randint(2 ** 31)))
        img = img + sigma * torch.randn(img.shape, device=dev, generator=gen) * tissue
        on = chance(a.intensity_prob)
        img = img * (1 + on * per_sample(rng.uniform(-a.intensity_scale, a.intensity_scale, B)))
        img = img + on * per_sample(rng.uniform(-a.intensity_shift, a.intensity_shift, B)) * tissue
        return (img * tissue).contiguous(), lab.long()
