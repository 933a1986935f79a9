"""The network being trained: building it, transfer learning, freezing the encoder, the model card.

Transfer learning (``init``): 'default' (the bundled model), a model folder (card.json + model.pt)
or a state-dict file (.pt/.pth, with its card beside it or none).  With a card, its architecture,
normalisation, spacing and orientation are used, since the weights were learned with them.
Tensors whose name and shape match are copied; those that differ, e.g. the final layers when the
number of labels changes, keep their fresh initialisation and are listed.  The encoder is the
down path of MONAI's UNet: the first block of every level and the bottom block.
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import torch

from ..errors import InputError, MedSegError

log = logging.getLogger("medseg")


def build(arch: dict, out_channels: int, in_channels: int = 1) -> torch.nn.Module:
    from ..dnn.card import card_from_dict
    from ..dnn.loading import build_network

    return build_network(card_from_dict(skeleton_card(arch, out_channels, in_channels)))


def skeleton_card(arch: dict, out_channels: int, in_channels: int = 1) -> dict:
    labels = [{"value": i, "name": f"label {i}", "color": [1, 1, 1]} for i in range(1, out_channels)]
    return {"name": "training", "version": "0", "description": "", "intended_use": "", "trained": False,
            "architecture": arch, "in_channels": in_channels, "out_channels": out_channels,
            "roi_size": [1, 1, 1], "labels": labels, "output": "softmax"}


def read_init(init: str) -> tuple:
    """(card or None, state dict) of an init source: 'default', a model folder or a .pt file."""
    from ..dnn.card import load_card
    from ..dnn.loading import DEFAULT_MODEL_DIR, WEIGHT_NAMES, read_state_dict

    path = DEFAULT_MODEL_DIR if init == "default" else Path(init).expanduser()
    if not path.exists():
        raise InputError(f"initial model not found: {path}")
    if path.is_dir():
        weights = next((path / n for n in WEIGHT_NAMES if (path / n).is_file()), None)
        if weights is None:
            raise InputError(f"initial model folder {path} has no model.pt")
        card_path = path / "card.json"
    else:
        weights = path
        card_path = next((c for c in (path.with_name(path.stem + ".card.json"), path.with_name("card.json"))
                          if c.is_file()), None)
    card = load_card(card_path) if card_path is not None and card_path.is_file() else None
    return card, read_state_dict(weights)


def transfer(network: torch.nn.Module, state: dict) -> dict:
    """Copy matching tensors of ``state`` into ``network``; returns {'loaded', 'reinitialised', 'ignored'}."""
    own = network.state_dict()
    for prefix in ("module.", "_orig_mod."):
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    loaded = {k: v for k, v in state.items() if k in own and tuple(v.shape) == tuple(own[k].shape)}
    report = {"loaded": sorted(loaded), "reinitialised": sorted(k for k in own if k not in loaded),
              "ignored": sorted(k for k in state if k not in loaded)}
    if not loaded:
        raise MedSegError("the initial model shares no weights with this network (different architecture or "
                          "dimension); choose a compatible model or train from scratch")
    own.update(loaded)
    network.load_state_dict(own)
    log.info("transfer learning: %d tensor(s) loaded, %d re-initialised%s", len(loaded), len(report["reinitialised"]),
             f" ({', '.join(report['reinitialised'][:6])})" if report["reinitialised"] else "")
    return report


def encoder_modules(network: torch.nn.Module) -> list:
    """Down-path blocks of a monai UNet: each level's first block and the bottom block."""
    from monai.networks.layers.simplelayers import SkipConnection

    node = getattr(network, "model", None)
    if node is None:
        raise MedSegError(f"cannot find the encoder of {type(network).__name__}; freezing needs a monai UNet")
    blocks = []
    while isinstance(node, torch.nn.Sequential) and len(node) == 3 and isinstance(node[1], SkipConnection):
        blocks.append(node[0])
        node = node[1].submodule
    blocks.append(node)
    return blocks


def freeze_encoder(network: torch.nn.Module) -> int:
    """Stop gradients through the encoder; returns the number of frozen parameters."""
    n = 0
    for block in encoder_modules(network):
        for p in block.parameters():
            p.requires_grad_(False)
            n += p.numel()
    log.info("encoder frozen: %d parameter(s) will not change", n)
    return n


def dims_of(arch: dict) -> int:
    k = (arch.get("params") or {}).get("kernel_size")
    return 2 if isinstance(k, (list, tuple)) and len(k) == 3 and k[2] == 1 else 3


def make_card(cfg, arch: dict, labels: list, spacing, roi, training: dict, channel_names=None) -> dict:
    """A validated card.json dict for the trained network."""
    from ..dnn.card import card_from_dict

    card = {"name": cfg.name, "version": cfg.version, "description": cfg.description,
            "intended_use": cfg.intended_use, "trained": True, "architecture": arch,
            "in_channels": 1, "out_channels": len(labels) + 1,
            "spacing": [float(s) for s in spacing] if spacing is not None else None,
            "orientation": cfg.orientation, "normalization": cfg.normalization,
            "roi_size": [int(r) for r in roi],
            "labels": [{"value": int(lab["value"]), "name": lab["name"], "color": [float(c) for c in lab["color"]],
                        **({"terminology": lab["terminology"]} if lab.get("terminology") else {})} for lab in labels],
            "output": "softmax", "training": training}
    if channel_names:
        card["channel_names"] = list(channel_names)
    card_from_dict(json.loads(json.dumps(card)), source="trained model card")
    return card


def state_for_saving(network: torch.nn.Module) -> dict:
    """Plain CPU state dict (DDP/compile prefixes removed) that load_model reads with weights_only."""
    net = getattr(network, "module", network)
    return {re.sub(r"^_orig_mod\.", "", k): v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
