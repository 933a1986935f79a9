"""The bundled sample: the MNI152 2009 symmetric T1 template that ships inside nilearn (no download),
its grey/white-matter reference, and the hemisphere split used to train and test the default model.

Reference: grey matter = GM probability > 0.5, white matter = WM probability > 0.5 (the larger
where both are).  Regions are in RAS millimetres from the template's affine: left x < -gap/2,
right x > +gap/2.  The template is symmetric, so the right hemisphere mirrors the left one.
"""
from __future__ import annotations

import numpy as np

from .errors import InputError
from .image.geometry import Geometry

NAMES = {1: "Grey matter", 2: "White matter"}
COLORS = {1: (0.6, 0.6, 0.6), 2: (0.95, 0.95, 0.85)}
GAP_MM = 4.0


def load_mni152(npz: str | None = None) -> tuple:
    """(T1 KJI float32 in 0..1, reference KJI uint8 (1 GM, 2 WM), Geometry) of the template."""
    if npz:
        d = np.load(npz)
        t1, gm, wm, affine = d["t1"], d["gm"], d["wm"], d["affine"]
    else:
        try:
            from nilearn import datasets
        except ModuleNotFoundError:
            raise InputError("the sample needs the nilearn package (it ships the MNI152 template): "
                             "pip install nilearn") from None
        imgs = [datasets.load_mni152_template(resolution=1), datasets.load_mni152_gm_template(resolution=1),
                datasets.load_mni152_wm_template(resolution=1)]
        t1, gm, wm = (np.asarray(i.get_fdata(), dtype=np.float32) for i in imgs)
        affine = imgs[0].affine                       # nibabel: voxel (i, j, k) -> RAS mm
    geometry = Geometry.from_ijk_to_ras(affine, t1.shape)
    t1, gm, wm = (np.ascontiguousarray(np.asarray(a, dtype=np.float32).transpose(2, 1, 0)) for a in (t1, gm, wm))
    ref = np.zeros(t1.shape, np.uint8)
    g, w = gm > 0.5, wm > 0.5
    ref[g & ~(w & (wm > gm))] = 1
    ref[w & ~(g & (gm >= wm))] = 2
    return t1, ref, geometry


def world_x(geometry: Geometry) -> np.ndarray:
    """RAS x (mm) of every voxel, KJI."""
    k, j, i = np.indices(geometry.shape, dtype=np.float32)
    m = geometry.ijk_to_ras()
    return (m[0, 0] * i + m[0, 1] * j + m[0, 2] * k + m[0, 3]).astype(np.float32)


def hemispheres(geometry: Geometry, gap_mm: float = GAP_MM) -> tuple:
    """(left, right) boolean KJI regions, leaving ``gap_mm`` around the midline out of both."""
    x = world_x(geometry)
    return x < -gap_mm / 2, x > gap_mm / 2


def otsu_labels(image: np.ndarray, region: np.ndarray) -> tuple:
    """Multi-Otsu baseline, 4 classes over the brain voxels of ``region`` (background/CSF/GM/WM):
    GM = class 3, WM = class 4.  Returns (labels 1 GM / 2 WM, classes, thresholds)."""
    from .threshold.autothreshold import multi_otsu

    th = multi_otsu(image, 4, mask=region)
    cls = (np.digitize(image, th, right=True) + 1) * region
    out = np.zeros(image.shape, np.uint8)
    out[cls == 3], out[cls == 4] = 1, 2
    return out, cls, th
