"""Evaluation inputs: segmentation files and folders of cases, brought onto one grid for metrics.

A prediction or reference is a ``.seg.nrrd`` or a DICOM SEG ``.dcm`` (segments by name; read by
``MedSegCore.mrml.label_files``) or a NIfTI/NRRD/MHA label map (segments by label value; a binary
mask is a label map with one value).  The prediction is
resampled onto the reference's grid by nearest neighbour when the grids differ.  A DICOM SEG's grid
spans only the slices it has frames on, so a SEG reference is first extended (empty) to cover the
prediction's grid: voxels a prediction has beyond those slices still count as false positives.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np

from ..image import io, resample, validate
from . import metrics
from ..errors import InputError
from ..image.geometry import Geometry

log = logging.getLogger("medseg")
LABEL_EXTENSIONS = (".seg.nrrd", ".dcm") + io.VOLUME_EXTENSIONS


@dataclass
class Labels:
    """Segments of one file on its grid: ``masks`` {name: bool mask} or ``labelmap`` (int array)."""

    path: str
    geometry: Geometry
    masks: dict | None = None
    labelmap: np.ndarray | None = None
    frames_only: bool = False          # a DICOM SEG: the grid covers only the slices with frames

    @property
    def segments(self):
        return self.masks if self.masks is not None else self.labelmap

    def on_grid(self, geometry: Geometry) -> "Labels":
        """The same segments resampled (nearest neighbour) onto ``geometry``."""
        if self.geometry.same_grid(geometry, tol=1e-5):
            return self
        if not resample.overlaps(self.geometry, geometry):
            raise InputError(f"{self.path}: does not overlap the reference grid")
        log.info("%s: on a different grid; resampled onto the reference grid (nearest neighbour)", self.path)
        if self.masks is not None:
            return Labels(self.path, geometry, masks={n: resample.resample(m, self.geometry, geometry).astype(bool)
                                                      for n, m in self.masks.items()}, frames_only=self.frames_only)
        return Labels(self.path, geometry, labelmap=resample.resample(self.labelmap, self.geometry, geometry))


def labels_from_array(path: str, array: np.ndarray, geometry: Geometry) -> Labels:
    """Labels of a label-map file already read as (array, geometry): integer values >= 0 in regions,
    not a greyscale image (:func:`MedSegCore.image.validate.check_labelmap`)."""
    return Labels(path, geometry, labelmap=validate.check_labelmap(array, path))


def default_match(pred: Labels, ref: Labels, mapping=None):
    """'name' for two segmentations, 'value' for two label maps; mixed inputs need a mapping."""
    if mapping:
        return mapping
    if (pred.masks is None) != (ref.masks is None):
        pred_names = list(pred.masks) if pred.masks is not None else sorted(int(v) for v in np.unique(pred.labelmap) if v)
        ref_names = list(ref.masks) if ref.masks is not None else sorted(int(v) for v in np.unique(ref.labelmap) if v)
        raise InputError(f"cannot match segments of a segmentation and a label map by themselves; "
                         f"give a mapping (--map PRED=REF). Prediction has {pred_names}, reference has {ref_names}")
    return "name" if pred.masks is not None else "value"


def evaluate_labels(pred: Labels, ref: Labels, mapping=None, distances: bool = True, case: str = ""):
    """Metrics rows for one prediction against one reference (the prediction brought onto the
    reference grid), plus both on the reference grid (for overlays and reports)."""
    if len(ref.geometry.shape) != len(pred.geometry.shape):
        raise InputError(f"{pred.path} and {ref.path} have different dimensionality")
    if ref.frames_only:
        ref = ref.on_grid(resample.covering_grid(ref.geometry, pred.geometry))
    pred = pred.on_grid(ref.geometry)
    rows = metrics.evaluate(pred.segments, ref.segments, ref.geometry.spacing, match=default_match(pred, ref, mapping),
                            case=case, distances=distances)
    return rows, pred, ref


def masks_of(labels: Labels, rows, side: str) -> dict:
    """{segment name as in the rows: bool mask} for a report, from either kind of Labels."""
    out = {}
    for row in rows:
        key = row.pred_segment if side == "pred" else row.segment
        if labels.masks is not None:
            out[key] = labels.masks.get(key, np.zeros(labels.geometry.shape, bool))
        else:
            try:
                out[key] = labels.labelmap == int(key)
            except ValueError:
                out[key] = np.zeros(labels.geometry.shape, bool)
    return out


def case_name(path: str) -> str:
    base = os.path.basename(path)
    ext = io.extension(base)
    return base[: -len(ext)] if ext else base


def pair_folders(pred_dir: str, ref_dir: str) -> list:
    """(case, prediction path, reference path) for files with the same case name in both folders."""
    def listing(folder):
        if not os.path.isdir(folder):
            raise InputError(f"{folder}: no such folder")
        return {case_name(f): os.path.join(folder, f) for f in sorted(os.listdir(folder))
                if io.extension(f) in LABEL_EXTENSIONS}
    preds, refs = listing(pred_dir), listing(ref_dir)
    common = sorted(set(preds) & set(refs))
    if not common:
        raise InputError(f"no case names in common between {pred_dir} ({len(preds)} files) and "
                         f"{ref_dir} ({len(refs)} files)")
    for missing, where in ((set(refs) - set(preds), pred_dir), (set(preds) - set(refs), ref_dir)):
        if missing:
            log.warning("%d case(s) missing in %s: %s", len(missing), where, ", ".join(sorted(missing)))
    return [(c, preds[c], refs[c]) for c in common]
