"""Deep-learning segmentation: model cards, model loading, preprocessing, sliding-window inference.

Importing this package does not import torch or MONAI (Slicer must start without them); the names
that need them are loaded on first use.  May import ``image``, ``threshold``, ``evaluation`` and
``errors``; writing results as segments (``batch``) imports ``mrml`` inside functions only.

    from . import load_model, predict, PredictOptions
    model = load_model("default", device="auto")
    result = predict([(array, geometry)], model, PredictOptions(probabilities=True))
"""
from .card import Label, ModelCard, card_from_dict, load_card, validate_card
from .predict import PredictOptions, Prediction, predict   # torch is imported inside predict()

_LAZY = {
    "load_model": "loading", "LoadedModel": "loading", "DEFAULT_MODEL_DIR": "loading",
    "run_inference": "inference", "estimate_memory": "inference", "resolve_device": "inference",
    "prepare": "preprocess", "load_bundle": "bundle", "bundle_info": "bundle",
}

__all__ = ["Label", "ModelCard", "card_from_dict", "load_card", "validate_card", "PredictOptions",
           "Prediction", "predict", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
