"""Training U-Nets for MedSeg (MONAI/PyTorch), for the ``medseg train`` command, the Slicer panel
and ``scripts/train_default_model.py``.  Importing this package does not import torch or MONAI.

    from . import TrainConfig, train
    result = train("data/", "my_model", TrainConfig(epochs=20, patch=[96, 96, 96]))
    # my_model/ holds model.pt + card.json (MedSegCore.dnn.load_model), metrics.csv, curves.png

Modules: config (TrainConfig, JSON), data (sources, label table, network grid), transforms
(patch sampling, batched augmentation), network (build, transfer learning, encoder freezing,
card), engine/loop (training loop, validation, checkpoints), ddp (torchrun), curves (records).
May import ``image``, ``evaluation``, ``dnn`` and ``errors``; ``.seg.nrrd`` training labels are read
through ``mrml.label_files`` inside a function; cases from the scene are ``mrml.training_cases``.
"""
from .config import AugmentConfig, TrainConfig, load_config  # noqa: F401
from .data import TrainData, load_data, split_cases  # noqa: F401

_LAZY = {"train": "engine", "Progress": "engine", "TrainResult": "engine", "validate": "engine"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
