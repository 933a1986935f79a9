"""MONAI bundles: read the configs with ``monai.bundle.ConfigParser`` and derive a model card from
``metadata.json`` (``network_data_format``) and the literal values of the inference config's
transforms (Orientationd, Spacingd, intensity scaling, SlidingWindowInferer, Activationsd).
Only literal values and plain ``@id`` references are read; config expressions are not evaluated here.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .card import card_from_dict

CONFIG_NAMES = ("inference.json", "inference.yaml", "inference.yml")
_PALETTE = [(0.9, 0.3, 0.2), (0.2, 0.6, 0.9), (0.3, 0.8, 0.3), (0.95, 0.8, 0.2), (0.7, 0.4, 0.9),
            (0.2, 0.8, 0.8), (0.9, 0.5, 0.7), (0.6, 0.5, 0.3)]


def read_bundle(folder: Path):
    """A ConfigParser holding ``configs/inference.*`` and ``configs/metadata.json`` of ``folder``."""
    from monai.bundle import ConfigParser

    configs = Path(folder) / "configs"
    cfg = next((configs / n for n in CONFIG_NAMES if (configs / n).is_file()), None)
    if cfg is None:
        raise InputError(f"MONAI bundle {Path(folder).name}: configs/inference.json (or .yaml) not found")
    parser = ConfigParser()
    try:
        if (configs / "metadata.json").is_file():
            parser.read_meta(configs / "metadata.json")
        parser.read_config(cfg)
    except Exception as e:                                              # noqa: BLE001
        hint = " (reading YAML needs the PyYAML package)" if cfg.suffix != ".json" else ""
        raise InputError(f"MONAI bundle {Path(folder).name}: cannot read {cfg.name}{hint}: {e}") from None
    parser["bundle_root"] = str(folder)
    if "network_def" not in parser:
        raise InputError(f"MONAI bundle {Path(folder).name}: {cfg.name} has no 'network_def'")
    return parser


def _literal(parser, value, depth: int = 0):
    """``value`` if it is a literal; follows plain '@id' references; None for expressions."""
    if isinstance(value, str) and value.startswith("@") and depth < 5:
        ref = value[1:]
        return _literal(parser, parser.get(ref), depth + 1) if ref.replace("#", "").replace("::", "").replace("_", "").isalnum() else None
    if isinstance(value, str) and value[:1] in ("$", "%"):
        return None
    if isinstance(value, list):
        items = [_literal(parser, v, depth) for v in value]
        return None if any(v is None for v in items) else items
    return value


def _find(config, names) -> dict | None:
    """First dict in ``config`` whose ``_target_`` ends with one of ``names``."""
    stack = [config]
    while stack:
        node = stack.pop(0)
        if isinstance(node, dict):
            target = node.get("_target_")
            if isinstance(target, str) and target.replace("::", ".").split(".")[-1] in names:
                return node
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None


def _first(mapping: dict) -> dict:
    return next(iter(mapping.values()), {}) if isinstance(mapping, dict) else {}


def _normalization(parser, config) -> dict:
    get = (lambda node, key, default=None: _literal(parser, node.get(key, default)))
    node = _find(config, ("ScaleIntensityRanged", "ScaleIntensityRange"))
    if node:
        params = {k: get(node, k) for k in ("a_min", "a_max", "b_min", "b_max", "clip") if k in node}
        return {"type": "ct_window", "params": params}
    node = _find(config, ("ScaleIntensityRangePercentilesd", "ScaleIntensityRangePercentiles"))
    if node:
        params = {k: get(node, k) for k in ("lower", "upper", "b_min", "b_max", "clip") if k in node}
        return {"type": "percentile", "params": params}
    node = _find(config, ("NormalizeIntensityd", "NormalizeIntensity"))
    if node:
        return {"type": "zscore", "params": {"nonzero": bool(get(node, "nonzero", False))}}
    node = _find(config, ("ScaleIntensityd", "ScaleIntensity"))
    if node:
        return {"type": "minmax", "params": {"b_min": get(node, "minv", 0.0), "b_max": get(node, "maxv", 1.0)}}
    return {"type": "none"}


def card_from_bundle(parser, folder: Path):
    """Build a ModelCard for a bundle; raises InputError naming what could not be determined."""
    folder = Path(folder)
    meta = parser.get("_meta_", {}) or {}
    fmt = meta.get("network_data_format", {}) or {}
    inp, out = _first(fmt.get("inputs", {})), _first(fmt.get("outputs", {}))
    net_def = parser.get("network_def", {}) or {}
    pre = parser.get("preprocessing") or parser.get("") or {}
    post = parser.get("postprocessing") or parser.get("") or {}
    in_ch = inp.get("num_channels") or _literal(parser, net_def.get("in_channels"))
    out_ch = out.get("num_channels") or _literal(parser, net_def.get("out_channels"))
    if not isinstance(in_ch, int) or not isinstance(out_ch, int):
        raise InputError(f"MONAI bundle {folder.name}: cannot tell the number of input/output channels; "
                         "add network_data_format to configs/metadata.json or a card.json to the bundle")
    names = {int(k): str(v) for k, v in (out.get("channel_def") or {}).items()}
    act = _find(post, ("Activationsd", "Activations")) or {}
    if _literal(parser, act.get("sigmoid")) is True:
        output = "sigmoid"
    elif _literal(parser, act.get("softmax")) is True or names.get(0, "").lower() in ("background", "bg"):
        output = "softmax"
    else:
        output = "sigmoid" if out_ch == 1 else "softmax"
    first = 1 if output == "softmax" else 0
    labels = [{"value": c + 1 - first, "name": names.get(c, f"label {c + 1 - first}"),
               "color": list(_PALETTE[(c - first) % len(_PALETTE)])} for c in range(first, out_ch)]
    orient = _find(pre, ("Orientationd", "Orientation")) or {}
    spacing = _literal(parser, (_find(pre, ("Spacingd", "Spacing")) or {}).get("pixdim"))
    if isinstance(spacing, (int, float)):
        spacing = [float(spacing)] * 3
    inferer = _find(parser.get(""), ("SlidingWindowInferer",)) or {}
    roi = _literal(parser, inferer.get("roi_size")) or inp.get("spatial_shape") or [96, 96, 96]
    roi = [int(r) for r in (roi * 3 if len(roi) == 1 else roi)] if all(isinstance(r, int) for r in roi) else [96] * 3
    chan_names = [str(v) for _, v in sorted((inp.get("channel_def") or {}).items())]
    card = {
        "name": str(meta.get("name") or folder.name), "version": str(meta.get("version", "unknown")),
        "description": str(meta.get("description", "")), "intended_use": str(meta.get("intended_use", "")),
        "trained": True, "architecture": None, "in_channels": in_ch, "out_channels": out_ch,
        "spacing": spacing if isinstance(spacing, list) and len(spacing) == 3 else None,
        "orientation": _literal(parser, orient.get("axcodes")) if orient else None,
        "normalization": _normalization(parser, pre), "roi_size": roi, "labels": labels, "output": output,
    }
    if len(chan_names) == in_ch:
        card["channel_names"] = chan_names
    return card_from_dict(card, source=f"model card built from MONAI bundle {folder.name}")
