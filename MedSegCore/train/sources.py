"""Where training pairs come from on disk: nnU-Net/MSD folders, flat <case>_image/<case>_label
folders, JSON and CSV datalists (see :mod:`MedSegCore.train.data` for the formats)."""
from __future__ import annotations

import csv
import json
import os
import re

from ..errors import InputError

EXTS = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd")
LABEL_EXTS = (".seg.nrrd",) + EXTS


def strip_ext(filename: str) -> tuple:
    low = filename.lower()
    for ext in LABEL_EXTS:
        if low.endswith(ext):
            return filename[: -len(ext)], ext
    return filename, ""


def _dataset_json_names(path: str) -> dict | None:
    """{value: name} from an MSD ("0": "background") or nnU-Net v2 ("background": 0) dataset.json."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        labels = json.load(f).get("labels")
    return _names_from(labels)


def _names_from(labels) -> dict | None:
    if not isinstance(labels, dict):
        return None
    out = {}
    for k, v in labels.items():
        if str(k).isdigit() and isinstance(v, str):
            out[int(k)] = v
        elif isinstance(v, int) and not isinstance(v, bool):
            out[v] = str(k)
    out.pop(0, None)
    return out or None


def folder_pairs(folder: str) -> tuple:
    """([(case, image path, label path)], names) of a data folder."""
    images, labels = os.path.join(folder, "imagesTr"), os.path.join(folder, "labelsTr")
    names = _dataset_json_names(os.path.join(folder, "dataset.json"))
    pairs = []
    if os.path.isdir(images) and os.path.isdir(labels):
        files = {f: strip_ext(f) for f in os.listdir(images) if not f.startswith(".")}
        for lf in sorted(os.listdir(labels)):
            case, ext = strip_ext(lf)
            if lf.startswith(".") or not ext:
                continue
            found = [os.path.join(images, f) for f, (stem, e) in files.items() if e and stem in (case, f"{case}_0000")]
            if not found:
                raise InputError(f"{folder}: no image for label {lf} in imagesTr "
                                 f"(expected {case}.nii.gz or {case}_0000.nii.gz)")
            pairs.append((case, found[0], os.path.join(labels, lf)))
    else:
        entries = sorted(f for f in os.listdir(folder) if not f.startswith("."))
        for f in entries:
            stem, ext = strip_ext(f)
            m = re.fullmatch(r"(.+)_image", stem)
            if not (m and ext in EXTS):
                continue
            case = m.group(1)
            cands = [e for e in entries if strip_ext(e)[0] == f"{case}_label" and strip_ext(e)[1]]
            if not cands:
                raise InputError(f"{folder}: no label for {f} (expected {case}_label.nii.gz or {case}_label.seg.nrrd)")
            pairs.append((case, os.path.join(folder, f), os.path.join(folder, cands[0])))
    if not pairs:
        raise InputError(f"{folder}: no training cases found; use imagesTr/ + labelsTr/ (nnU-Net/MSD layout) "
                         "or <case>_image.nii.gz + <case>_label.nii.gz files")
    return pairs, names


def datalist_pairs(path: str) -> tuple:
    """([(case, image, label)], validation names, names) of a JSON or CSV datalist."""
    base = os.path.dirname(os.path.abspath(path))
    rows, validation, names = [], [], None
    if path.lower().endswith(".csv"):
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"image", "label"} <= {c.strip() for c in reader.fieldnames}:
                raise InputError(f"{path}: CSV datalist needs a header with 'image' and 'label' columns")
            for row in reader:
                row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
                rows.append(row)
                if row.get("split", "").lower() in ("val", "validation"):
                    validation.append(row)
    else:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: datalist is not valid JSON: {e.msg} (line {e.lineno})") from None
        if isinstance(data, dict):
            names = _names_from(data.get("labels"))
            validation = list(data.get("validation", []))
            rows = list(data.get("training", [])) + validation
        else:
            rows = list(data)
    pairs, seen = [], set()
    for n, row in enumerate(rows):
        if not isinstance(row, dict) or not row.get("image") or not row.get("label"):
            raise InputError(f"{path}: entry {n + 1} needs 'image' and 'label'")
        image, label = (p if os.path.isabs(p) else os.path.join(base, p) for p in (row["image"], row["label"]))
        case = row.get("name") or strip_ext(os.path.basename(row["image"]))[0]
        case = case if case not in seen else f"{case}_{n}"
        seen.add(case)
        pairs.append((case, image, label))
        if row in validation:
            validation[validation.index(row)] = case
    return pairs, [v for v in validation if isinstance(v, str)], names
