"""Segment labels of a bundle: output channel names from ``metadata.json`` (``channel_def``), the
label value each channel ends up as after the bundle's own post-processing, colours.

The value of each channel is found by running the bundle's post-processing (without ``Invertd``
and ``SaveImaged``) on a probe: one voxel per channel where only that channel is high, and one
voxel where none is.  Softmax/argmax bundles give channel c -> value c; BraTS's thresholds and
``Lambdad`` mapping give 1/2/4.  A ``card.json`` in the bundle folder may override names,
colours and terminology per value.
"""
from __future__ import annotations

import logging

from ..card import Label

log = logging.getLogger("medseg")
PALETTE = [(0.9, 0.3, 0.2), (0.2, 0.6, 0.9), (0.3, 0.8, 0.3), (0.95, 0.8, 0.2), (0.7, 0.4, 0.9),
           (0.2, 0.8, 0.8), (0.9, 0.5, 0.7), (0.6, 0.5, 0.3), (0.5, 0.7, 0.2), (0.9, 0.6, 0.3)]
_SKIP = ("Invertd", "SaveImaged", "SaveImage", "Invert")


def output_names(meta: dict) -> tuple:
    """(pred key, {channel: name}, number of output channels or None) from network_data_format."""
    outputs = ((meta.get("network_data_format") or {}).get("outputs") or {})
    key, fmt = next(iter(outputs.items()), ("pred", {}))
    names = {}
    for k, v in (fmt.get("channel_def") or {}).items():
        try:
            names[int(k)] = str(v)
        except (TypeError, ValueError):
            continue
    n = fmt.get("num_channels")
    return key, names, n if isinstance(n, int) else None


def _flat(transform) -> list:
    from monai.transforms import Compose

    if isinstance(transform, Compose):
        return [t for item in transform.transforms for t in _flat(item)]
    return [transform]


def probe_values(post, pred_key: str, image_key: str, channels: int) -> dict | None:
    """{channel: label value} as the post-processing maps a voxel where only that channel is high,
    plus -1: the value of a voxel where none is; None if the chain cannot run on the probe."""
    import torch
    from monai.data import MetaTensor
    from monai.transforms import apply_transform

    x = torch.full((channels, channels + 1, 1, 1), -8.0)
    for c in range(channels):
        x[c, c] = 8.0
    data = {pred_key: MetaTensor(x), image_key: MetaTensor(torch.zeros(1, channels + 1, 1, 1))}
    try:
        for t in _flat(post):
            if type(t).__name__ not in _SKIP:
                data = apply_transform(t, data)
        out = torch.as_tensor(data[pred_key]).detach().cpu().float()
    except Exception as e:                                              # noqa: BLE001
        log.debug("label probe failed: %s", e)
        return None
    if out.ndim != 4 or out.shape[0] != 1 or out.shape[1] != channels + 1:
        return None
    values = [int(round(float(v))) for v in out[0, :, 0, 0]]
    return {**{c: values[c] for c in range(channels)}, -1: values[channels]}


def bundle_labels(meta: dict, values: dict | None, channels: int, overrides=None) -> list:
    """Labels (value > 0) named from channel_def; ``values`` from :func:`probe_values` (None:
    channel c -> value c when channel 0 is background, else c + 1)."""
    _, names, _ = output_names(meta)
    if values is None:
        first_bg = names.get(0, "").lower() in ("background", "bg") or channels > 1
        values = {c: c if first_bg else c + 1 for c in range(channels)}
    labels, seen = [], set()
    for c in range(channels):
        v = values.get(c, 0)
        if v <= 0 or v in seen:
            continue
        seen.add(v)
        labels.append(Label(v, names.get(c, f"label {v}"), PALETTE[(len(labels)) % len(PALETTE)]))
    by_value = {lab.value: lab for lab in (overrides or [])}
    return [by_value.get(lab.value, lab) for lab in labels]
