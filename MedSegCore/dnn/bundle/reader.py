"""The data source of a bundle run: volumes already in memory, handed to the bundle's own
``LoadImaged`` through a MONAI ``ImageReader``.

MONAI's ``LoadImage`` accepts a runtime reader (``LoadImaged.__call__(data, reader)``); this one
returns what ``monai.data.NibabelReader`` returns for a NIfTI file holding the same voxels: the
array indexed (I, J, K), ``affine``/``original_affine`` (IJK -> RAS), ``spatial_shape``,
``space`` RAS and ``original_channel_dim`` (no channel; several files are stacked on a new first
axis, as ``monai.data.image_reader._stack_images`` does).  Everything else ``LoadImaged`` does
(dtype, ``ensure_channel_first``, ``image_only``, meta keys) stays the bundle's own.
"""
from __future__ import annotations

import numpy as np
from monai.data import ImageReader
from monai.transforms import Compose, LoadImaged

from ...errors import InputError
from ...image.geometry import Geometry

TOKEN = "medseg-memory-input-{}"


class MemoryReader(ImageReader):
    """An ImageReader over (KJI array, Geometry) pairs named by :data:`TOKEN` strings."""

    def __init__(self, volumes):
        super().__init__()
        self.volumes = {TOKEN.format(i): v for i, v in enumerate(volumes)}

    @property
    def tokens(self) -> list:
        return list(self.volumes)

    def verify_suffix(self, filename) -> bool:
        names = [filename] if isinstance(filename, str) else list(filename)
        return all(str(n) in self.volumes for n in names)

    def read(self, data, **kwargs):
        names = [data] if isinstance(data, str) else list(data)
        missing = [n for n in map(str, names) if n not in self.volumes]
        if missing:
            raise InputError(f"the bundle asked for an input MedSeg did not give it: {missing[0]}")
        return [self.volumes[str(n)] for n in names]

    def get_data(self, img):
        arrays, meta = [], None
        for array, geometry in img:
            affine = geometry.ijk_to_ras()
            if meta is None:
                meta = {"affine": affine.copy(), "original_affine": affine.copy(),
                        "spatial_shape": np.asarray(geometry.size, dtype=np.int16 if max(geometry.size) < 32768 else np.int64),
                        "space": "RAS", "original_channel_dim": float("nan")}
            elif not np.allclose(meta["affine"], affine, atol=1e-4):
                raise InputError("the input channels of a multi-channel bundle must share one grid")
            arrays.append(np.asarray(array).transpose(2, 1, 0))        # KJI -> IJK, as nibabel indexes
        if len(arrays) == 1:
            return arrays[0], meta
        meta["original_channel_dim"] = 0
        return np.stack(arrays, axis=0), meta


class LoadFromMemory:
    """Stands where the bundle's ``LoadImaged`` stood: calls it with :class:`MemoryReader`."""

    def __init__(self, load: LoadImaged, reader: MemoryReader):
        self.load, self.reader = load, reader

    def __call__(self, data):
        return self.load(data, self.reader)


def swap_loader(preprocessing, reader: MemoryReader) -> int:
    """Replace every ``LoadImaged`` in ``preprocessing`` (a Compose, nested ones too) in place, so
    that ``Invertd`` transforms referring to the same Compose see the same chain.  Returns how
    many were replaced."""
    count = 0
    if isinstance(preprocessing, Compose):
        items = list(preprocessing.transforms)
        for i, t in enumerate(items):
            if isinstance(t, LoadImaged):
                items[i] = LoadFromMemory(t, reader)
                count += 1
            elif isinstance(t, LoadFromMemory):
                t.reader = reader
                count += 1
            else:
                count += swap_loader(t, reader)
        preprocessing.transforms = type(preprocessing.transforms)(items) if isinstance(
            preprocessing.transforms, tuple) else items
    return count
