"""PNG montages of axial slices with masks drawn over the greyscale image."""
from __future__ import annotations

import math

import numpy as np

from ..errors import ParameterError


def window(image: np.ndarray, percentiles=(1.0, 99.0)) -> np.ndarray:
    """Map intensities to 0..255 between two percentiles (ignores NaN)."""
    lo, hi = np.nanpercentile(image, percentiles)
    if hi <= lo:
        hi = lo + 1
    return (np.clip((image.astype(np.float32) - lo) / (hi - lo), 0, 1) * 255).astype(np.uint8)


def pick_slices(masks, depth: int, count: int) -> list:
    """Up to ``count`` evenly spread axial slice indices, within the masks' extent if any."""
    ks = np.arange(depth)
    union = np.zeros(depth, dtype=bool)
    for m in masks:
        union |= np.asarray(m).reshape(depth, -1).any(axis=1)
    if union.any():
        ks = np.nonzero(union)[0]
    if len(ks) <= count:
        return [int(k) for k in ks]
    idx = np.linspace(0, len(ks) - 1, count + 2)[1:-1]
    return sorted({int(ks[int(round(i))]) for i in idx})


def render_slices(image: np.ndarray, layers, slices, flip_rows: bool = True) -> list:
    """RGB uint8 tiles for each slice index; ``layers`` is a list of (mask, (r, g, b), alpha)."""
    grey = window(image)
    tiles = []
    for k in slices:
        rgb = np.repeat(grey[k][..., None], 3, axis=2).astype(np.float32)
        for mask, color, alpha in layers:
            m = np.asarray(mask[k], dtype=bool)
            rgb[m] = (1 - alpha) * rgb[m] + alpha * np.asarray(color, dtype=np.float32)
        tile = rgb.astype(np.uint8)
        tiles.append(tile[::-1] if flip_rows else tile)
    return tiles


def tile(tiles, columns: int) -> np.ndarray:
    """One RGB canvas of equally sized ``tiles`` in rows of ``columns``."""
    columns = max(1, min(len(tiles), columns))
    rows = math.ceil(len(tiles) / columns)
    h, w = tiles[0].shape[:2]
    canvas = np.zeros((rows * h, columns * w, 3), dtype=np.uint8)
    for n, t in enumerate(tiles):
        r, c = divmod(n, columns)
        canvas[r * h:(r + 1) * h, c * w:(c + 1) * w] = t
    return canvas


def montage(image: np.ndarray, layers, path: str, count: int = 12, columns: int | None = None) -> list:
    """Write a montage PNG of up to ``count`` axial slices of a KJI ``image`` with coloured
    ``layers`` (mask, (r, g, b) 0..255, alpha 0..1) drawn over it.  Returns the slice indices.

    Rows are flipped so that, for a RAS-aligned volume, anterior is at the top, as in Slicer's
    axial view.  The file is written atomically."""
    from PIL import Image

    if image.ndim != 3:
        raise ParameterError(f"overlay needs a 3D image, got shape {image.shape}")
    for mask, _, alpha in layers:
        if np.asarray(mask).shape != image.shape:
            raise ParameterError(f"overlay mask shape {np.asarray(mask).shape} != image shape {image.shape}")
        if not 0 <= alpha <= 1:
            raise ParameterError(f"overlay opacity must be within 0..1, got {alpha}")
    slices = pick_slices([m for m, _, _ in layers], image.shape[0], count)
    canvas = tile(render_slices(image, layers, slices), columns or 4)
    from ..image.io import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray(canvas).save(tmp, format="PNG")
    return slices
