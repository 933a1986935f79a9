"""Writes the UNTRAINED placeholder default model (card.json + model.pt) used by tests.

    python -m MedSegCore.dnn.placeholder [folder]
"""
from __future__ import annotations

import sys
from pathlib import Path

CARD = {
    "name": "MedSeg placeholder brain tissue model",
    "version": "0.0.1",
    "description": "UNTRAINED PLACEHOLDER for tests only: a small MONAI UNet with seeded random weights. "
                   "Its output is meaningless; it will be replaced by a trained model with the same card shape.",
    "intended_use": "Software tests of the MedSeg inference pipeline. Not for any clinical or research use.",
    "trained": False,
    "license": "Apache-2.0",
    "architecture": {"type": "monai.UNet",
                     "params": {"spatial_dims": 3, "channels": [8, 16, 32, 64], "strides": [2, 2, 2],
                                "num_res_units": 2, "norm": "instance"}},
    "in_channels": 1,
    "channel_names": ["T1"],
    "out_channels": 3,
    "spacing": [1.0, 1.0, 1.0],
    "orientation": "RAS",
    "normalization": {"type": "zscore", "params": {"nonzero": False}},
    "roi_size": [64, 64, 64],
    "labels": [
        {"value": 1, "name": "Grey matter", "color": [0.6, 0.6, 0.6],
         "terminology": {"category": ["123037004", "SCT", "Anatomical Structure"], "type": ["389081007", "SCT", "Gray matter"]}},
        {"value": 2, "name": "White matter", "color": [0.95, 0.95, 0.85],
         "terminology": {"category": ["123037004", "SCT", "Anatomical Structure"], "type": ["389080008", "SCT", "White matter"]}},
    ],
    "output": "softmax",
}


def write_placeholder(folder, seed: int = 0) -> None:
    """Write card.json and model.pt (state dict of the seeded random UNet) into ``folder``."""
    import torch

    from .card import card_from_dict
    from .loading import build_network

    card = card_from_dict(CARD)
    torch.manual_seed(seed)
    net = build_network(card)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    card.save(folder / "card.json")
    torch.save({k: v.contiguous() for k, v in net.state_dict().items()}, folder / "model.pt")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m MedSegCore.dnn.placeholder FOLDER  (writes an untrained test model)")
    write_placeholder(sys.argv[1])
