"""Training data: where image/label pairs come from, one label table for all cases, and the
network-grid arrays the engine samples patches from (no torch here).

Sources (:func:`load_data`):
  * a folder in nnU-Net/MSD layout: ``imagesTr/<case>.nii.gz`` (or ``<case>_0000.nii.gz``) with
    ``labelsTr/<case>.nii.gz`` (or ``<case>.seg.nrrd``); label names from ``dataset.json`` if present;
  * a flat folder of ``<case>_image.<ext>`` + ``<case>_label.<ext>`` (``<ext>``: .nii.gz, .nii,
    .nrrd, .mha, .mhd; the label may also be ``<case>_label.seg.nrrd``);
  * a datalist: JSON (a list of {"image", "label"[, "name"]}, or {"training": [...],
    "validation": [...], "labels": {...}}) or CSV with columns image,label[,name][,split]
    (split = 'val'/'validation' marks validation cases); relative paths start at the file's folder;
  * in memory (the Slicer panel): a list of ``(array, Geometry, label, names)`` tuples or dicts with
    keys image, geometry, label, names, name; ``label`` is an integer KJI array (``names``
    {value: name} or a list naming 1, 2, ...) or a dict {segment name: boolean KJI mask}.

Labelmaps keep their values.  Named labels (``.seg.nrrd`` segments, in-memory names) get values
1..n from the sorted union of the names, and every case must have the same set of names.
Labels on another grid than their image are resampled onto it by nearest neighbour when the two
overlap; otherwise, and for cases without labelled voxels, :class:`MedSegError` is raised.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, MedSegError
from ..image.geometry import Geometry
from .sources import datalist_pairs, folder_pairs

log = logging.getLogger("medseg")
PALETTE = [(0.9, 0.2, 0.2), (0.2, 0.7, 0.2), (0.2, 0.4, 0.9), (0.9, 0.8, 0.2), (0.8, 0.3, 0.8),
           (0.2, 0.8, 0.8), (0.9, 0.5, 0.1), (0.5, 0.5, 0.9)]


@dataclass
class Case:
    """One training case: KJI image on ``geometry`` and an integer KJI labelmap on the same grid."""

    name: str
    image: np.ndarray
    geometry: Geometry
    label: np.ndarray


@dataclass
class TrainData:
    cases: list
    labels: list                      # [{"value", "name", "color"}] sorted by value
    validation: list = field(default_factory=list)   # case names marked for validation by the source
    source: str = ""


@dataclass
class _Raw:
    name: str
    image: np.ndarray
    geometry: Geometry
    labelmap: np.ndarray | None = None
    names: dict | None = None         # value -> name, for a labelmap
    masks: dict | None = None         # name -> bool mask
    colors: dict = field(default_factory=dict)


def _fit(label: np.ndarray, lgeom: Geometry, igeom: Geometry, what: str) -> np.ndarray:
    """``label`` moved onto the image grid (nearest neighbour) when the grids differ."""
    from ..image.resample import overlaps, resample

    if lgeom.same_grid(igeom):
        return label
    if not overlaps(lgeom, igeom):
        raise MedSegError(f"{what}: label and image do not overlap in space (label grid {lgeom.size} at "
                          f"{tuple(round(o, 1) for o in lgeom.origin)}, image grid {igeom.size} at "
                          f"{tuple(round(o, 1) for o in igeom.origin)}); check that they belong together")
    log.info("%s: label grid differs from the image grid; resampling it by nearest neighbour", what)
    out = resample(label, lgeom, igeom, "nearest")
    if out.shape != igeom.shape:
        raise MedSegError(f"{what}: label shape {out.shape} does not match image shape {igeom.shape} after resampling")
    return out


def _read_label(path: str, image_geom: Geometry, raw: _Raw) -> None:
    from ..image import io

    if not os.path.exists(path):
        raise InputError(f"{raw.name}: label file not found: {path}")
    if io.extension(path) == ".seg.nrrd":
        from ..mrml.label_files import read_segmentation
        from ..image.resample import overlaps

        geometry, masks, colors = read_segmentation(path, onto=image_geom)
        if not overlaps(geometry, image_geom):
            raise MedSegError(f"{raw.name}: segmentation {os.path.basename(path)} does not overlap its image")
        raw.masks, raw.colors = masks, colors
        return
    label, lgeom = io.read_volume(path)
    from ..image.validate import check_labelmap

    label = check_labelmap(label, f"{raw.name}: label file {path}")   # integers >= 0, not a greyscale image
    raw.labelmap = _fit(label, lgeom, image_geom, raw.name)


def _raw_from_files(name: str, image: str, label: str) -> _Raw:
    from ..image import io

    if not os.path.exists(image):
        raise InputError(f"{name}: image file not found: {image}")
    array, geom = io.read_volume(image)
    raw = _Raw(name, array, geom)
    _read_label(label, geom, raw)
    return raw


def _raw_from_memory(n: int, item) -> _Raw:
    if isinstance(item, dict):
        image, geom, label = item.get("image"), item.get("geometry"), item.get("label")
        names, name = item.get("names"), item.get("name") or f"case{n}"
    elif isinstance(item, (tuple, list)) and len(item) in (3, 4):
        image, geom, label = item[:3]
        names, name = (item[3] if len(item) == 4 else None), f"case{n}"
    else:
        raise InputError(f"training item {n}: expected (array, Geometry, label[, names]) or a dict")
    if not isinstance(geom, Geometry):
        raise InputError(f"{name}: the second item must be a Geometry")
    image = np.asarray(image)
    if image.shape != geom.shape:
        raise InputError(f"{name}: image shape {image.shape} does not match its geometry {geom.shape} (KJI)")
    raw = _Raw(str(name), image, geom)
    if isinstance(label, dict):
        raw.masks = {str(k): np.asarray(v, dtype=bool) for k, v in label.items()}
        arrays = raw.masks.values()
    else:
        raw.labelmap = np.asarray(label)
        if raw.labelmap.dtype.kind not in "biu":
            raise InputError(f"{name}: label array must hold integers, got {raw.labelmap.dtype}")
        raw.names = dict(enumerate(names, start=1)) if isinstance(names, (list, tuple)) else names
        arrays = [raw.labelmap]
    for a in arrays:
        if a.shape != image.shape:
            raise MedSegError(f"{name}: label shape {a.shape} does not match image shape {image.shape} (KJI); "
                              "labels must be on the image grid")
    return raw


def _unify(raws: list) -> tuple:
    """(cases, label table): one value per label name across all cases."""
    named = [r.masks is not None or bool(r.names) for r in raws]
    cases, table = [], {}
    if any(named):
        if not all(named):
            raise MedSegError("some cases have named segments and others plain labelmaps without names; "
                              "give names for all or none")
        sets = {r.name: set(r.masks) if r.masks is not None else set(r.names.values()) for r in raws}
        union = sorted(set().union(*sets.values()))
        differ = {c: s for c, s in sets.items() if s != set(union)}
        if differ:
            first = next(iter(differ))
            raise MedSegError(f"cases have different segment sets: {first} has {sorted(sets[first])} but all "
                              f"cases together have {union}; every case must have the same segments "
                              f"({len(differ)} case(s) differ: {', '.join(list(differ)[:5])})")
        values = {name: i + 1 for i, name in enumerate(union)}
        for r in raws:
            lab = np.zeros(r.image.shape, np.uint8)
            if r.masks is not None:
                covered = np.zeros(r.image.shape, bool)
                for name in union:
                    if (covered & r.masks[name]).any():
                        log.warning("%s: segment %s overlaps another; the later (by name) wins", r.name, name)
                    lab[r.masks[name]] = values[name]
                    covered |= r.masks[name]
            else:
                for v, name in r.names.items():
                    lab[r.labelmap == v] = values[name]
            cases.append(Case(r.name, r.image, r.geometry, lab))
            for name in union:
                table.setdefault(values[name], {"name": name, "color": r.colors.get(name)})
    else:
        present = set()
        for r in raws:
            vals = np.unique(r.labelmap)
            if vals.min() < 0 or vals.max() > 255:
                raise MedSegError(f"{r.name}: label values must be 0-255, found {vals.min()}..{vals.max()}")
            present |= {int(v) for v in vals if v}
            cases.append(Case(r.name, r.image, r.geometry, r.labelmap.astype(np.uint8)))
        names = next((r.names for r in raws if r.names), None) or {}
        table = {v: {"name": names.get(v, f"Label {v}"), "color": None} for v in sorted(present)}
    for c in cases:
        if not c.label.any():
            raise MedSegError(f"{c.name}: no labelled voxels (the label is all background)")
    labels = [{"value": v, "name": t["name"], "color": list(t["color"] or PALETTE[(v - 1) % len(PALETTE)])}
              for v, t in sorted(table.items())]
    return cases, labels


def load_data(source, label_overrides=None) -> TrainData:
    """Training cases and the label table from a folder, a datalist file or in-memory items."""
    validation, names = [], None
    if isinstance(source, (list, tuple)):
        raws = [_raw_from_memory(n, item) for n, item in enumerate(source)]
        where = "in-memory data"
    else:
        where = str(source)
        if not os.path.exists(where):
            raise InputError(f"training data not found: {where}")
        if os.path.isdir(where):
            pairs, names = folder_pairs(where)
        elif where.lower().endswith((".json", ".csv")):
            pairs, validation, names = datalist_pairs(where)
        else:
            raise InputError(f"{where}: training data must be a folder or a .json/.csv datalist")
        raws = [_raw_from_files(c, i, lab) for c, i, lab in pairs]
    if not raws:
        raise InputError(f"{where}: no training cases")
    dupes = sorted({r.name for r in raws if [x.name for x in raws].count(r.name) > 1})
    if dupes:
        raise InputError(f"{where}: duplicate case names {dupes}")
    for r in raws:
        if r.image.ndim != 3:
            raise InputError(f"{r.name}: image must be a 3D array (KJI), got shape {r.image.shape}")
    cases, labels = _unify(raws)
    for lab in labels:                    # labelmap files keep their values; dataset.json names them
        lab["name"] = (names or {}).get(lab["value"], lab["name"])
    labels = _apply_overrides(labels, label_overrides)
    return TrainData(cases, labels, validation, where)


def _apply_overrides(labels, overrides):
    by_value = {int(o["value"]): o for o in overrides or []}
    keys = ("name", "color", "terminology")
    return [{**lab, **{k: by_value[lab["value"]][k] for k in keys if k in by_value.get(lab["value"], {})}}
            for lab in labels]


def split_cases(data: TrainData, val_fraction: float, val_cases, seed: int) -> tuple:
    """(train indices, validation indices): explicit names first, else a seeded random fraction;
    fewer than two cases: no validation."""
    names = [c.name for c in data.cases]
    wanted = list(val_cases or []) or list(data.validation)
    if wanted:
        missing = [v for v in wanted if v not in names]
        if missing:
            raise MedSegError(f"validation case(s) {missing} are not among the cases {names[:10]}")
        val = [names.index(v) for v in wanted]
    elif len(names) < 2 or val_fraction <= 0:
        val = []
    else:
        n_val = min(max(1, int(round(len(names) * val_fraction))), len(names) - 1)
        val = sorted(np.random.RandomState(seed).permutation(len(names))[:n_val].tolist())
    train = [i for i in range(len(names)) if i not in val]
    if not train:
        raise MedSegError("no training cases left after taking out the validation cases")
    return train, val


@dataclass
class NetCase:
    """A case on the network grid: ``image`` (1, I, J, K) float32 reoriented and resampled but not
    yet normalised, ``label`` (I, J, K) uint8 channel indices (0 background, n = n-th label of the
    table), ``norm`` the constants of the card's normalisation for this case
    (:func:`MedSegCore.train.transforms.norm_params`)."""

    name: str
    image: np.ndarray
    label: np.ndarray
    geometry: Geometry
    norm: dict

    def normalized(self, normalization: dict) -> np.ndarray:
        """The image exactly as inference feeds it to the network."""
        from ..dnn.preprocess import normalize

        return normalize(self.image, normalization["type"], dict(normalization.get("params", {})))


def network_spacing(data: TrainData, cfg) -> list | None:
    """Spacing of the network grid: the config's, else (3D) the median spacing of the cases."""
    from ..dnn.preprocess import orientation_transform

    if cfg.spacing is not None:
        return [float(s) for s in cfg.spacing]
    if cfg.dims == 2:
        return None
    spacings = [orientation_transform(c.geometry, cfg.orientation)[2].spacing for c in data.cases]
    return [round(float(s), 6) for s in np.median(np.array(spacings), axis=0)]


def to_network_grid(case: Case, labels: list, cfg, spacing) -> NetCase:
    """Reorient and resample one case exactly as MedSegCore.dnn.preprocess.prepare does at inference
    (image linear, label nearest), map label values to channel indices and note the normalisation."""
    from ..dnn.preprocess import apply_orientation, orientation_transform, resample, target_grid
    from .transforms import norm_params

    perm, flips, oriented = orientation_transform(case.geometry, cfg.orientation)
    image = np.ascontiguousarray(apply_orientation(np.asarray(case.image), perm, flips))
    label = np.ascontiguousarray(apply_orientation(case.label, perm, flips))
    net = oriented
    if spacing is not None and not np.allclose(oriented.spacing, spacing, rtol=1e-3, atol=1e-4):
        net = target_grid(oriented, spacing)
        image = resample(image, oriented, net, linear=True)
        label = resample(label, oriented, net, linear=False)
    image = np.asarray(image, dtype=np.float32)
    lut = np.zeros(256, np.uint8)
    for channel, lab in enumerate(labels, start=1):
        lut[lab["value"]] = channel
    return NetCase(case.name, np.ascontiguousarray(image.transpose(2, 1, 0))[None],
                   np.ascontiguousarray(lut[label].transpose(2, 1, 0)), net, norm_params(image, cfg.normalization))
