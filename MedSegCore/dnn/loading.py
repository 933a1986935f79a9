"""Load a network and its model card.

Sources: ``"default"`` (the bundled model), a state-dict checkpoint (.pt/.pth, built from the
card's ``architecture``), a TorchScript file, a folder holding ``card.json`` + weights, or a MONAI
bundle folder (``configs/inference.json|yaml``), which :mod:`.bundle` loads and runs through its
own config after the user trusted it.  Checkpoints are only ever read with ``weights_only=True``:
a file that needs arbitrary unpickling is refused.
"""
from __future__ import annotations

import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import InputError
from .card import ModelCard, card_from_dict, load_card

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / "default"
WEIGHT_NAMES = ("model.pt", "model.pth", "model.ts")
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "network", "net", "module", "weights")
_PREFIXES = ("module.", "_orig_mod.", "model.", "net.", "network.")


@dataclass
class LoadedModel:
    """A network in eval mode, its card, where it came from and the kind of source."""

    network: torch.nn.Module
    card: ModelCard
    source: str
    kind: str

    @property
    def device(self) -> torch.device:
        """Where the network's weights are (the CPU for a network without any)."""
        return next((p.device for p in self.network.parameters()), torch.device("cpu"))

    def to(self, device) -> "LoadedModel":
        self.network.to(torch.device(device))
        return self


def _short(items, n=5) -> str:
    items = list(items)
    return ", ".join(items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


def read_state_dict(path) -> dict:
    """Tensors of a checkpoint (plain state dict or a common wrapper), read with weights_only=True."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model weights not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        if found or "global" in str(e).lower():
            raise InputError(
                f"{path.name} contains arbitrary Python objects{f' ({found.group(1)})' if found else ''} "
                "and will not be loaded, because reading them could run code hidden in the file. Re-save the "
                "weights as a plain state dict: torch.save(model.state_dict(), 'model.pt')") from None
        raise InputError(f"{path.name} is corrupt or not a PyTorch checkpoint") from None
    except Exception as e:                                              # noqa: BLE001
        raise InputError(f"{path.name} is corrupt or not a PyTorch checkpoint ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else 'unexpected end of file'})") from None
    for _ in range(3):
        if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return dict(obj)
        key = next((k for k in _WRAPPER_KEYS if isinstance(obj, dict) and isinstance(obj.get(k), dict)), None)
        if key is None:
            break
        obj = obj[key]
    keys = _short(map(str, obj)) if isinstance(obj, dict) else type(obj).__name__
    raise InputError(f"{path.name} does not hold a state dict of tensors (found: {keys})")


def _strip_prefixes(sd: dict, expected) -> dict:
    """Drop wrapper prefixes ('module.', 'model.', ...) while that matches more expected keys."""
    expected = set(expected)
    improved = True
    while improved:
        improved = False
        for p in _PREFIXES:
            if all(k.startswith(p) for k in sd):
                cand = {k[len(p):]: v for k, v in sd.items()}
                if len(expected & cand.keys()) > len(expected & sd.keys()):
                    sd, improved = cand, True
    return sd


def build_network(card: ModelCard) -> torch.nn.Module:
    """Instantiate ``card.architecture`` (``monai.<Network>`` with ``params``)."""
    import inspect

    import monai.networks.nets as nets

    arch = card.architecture
    if not arch:
        raise InputError(f"model card {card.name!r} has no 'architecture'; a state-dict checkpoint needs one")
    cls = getattr(nets, arch["type"].split(".", 1)[1], None)
    if not isinstance(cls, type) or not issubclass(cls, torch.nn.Module):
        raise InputError(f"architecture.type: {arch['type']!r} is not a network in monai.networks.nets")
    params = dict(arch.get("params", {}))
    accepted = inspect.signature(cls).parameters
    for key, value in (("spatial_dims", 3), ("in_channels", card.in_channels), ("out_channels", card.out_channels)):
        if key in accepted:
            params.setdefault(key, value)
    try:
        return cls(**params)
    except Exception as e:                                              # noqa: BLE001
        raise InputError(f"cannot build {arch['type']} from architecture.params: {e}") from None


def load_weights(network: torch.nn.Module, state_dict: dict, card: ModelCard, name: str) -> None:
    """Load ``state_dict`` strictly, naming missing, unexpected and mis-shaped keys on mismatch."""
    expected = network.state_dict()
    sd = _strip_prefixes(state_dict, expected)
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    shapes = [f"{k} is {tuple(sd[k].shape)} in the file but {tuple(v.shape)} in the architecture"
              for k, v in expected.items() if k in sd and sd[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = [f"missing keys: {_short(missing)}" if missing else "",
                 f"unexpected keys: {_short(unexpected)}" if unexpected else "",
                 f"shape mismatch: {_short(shapes, 3)}" if shapes else ""]
        arch = (card.architecture or {}).get("type", "network")
        raise InputError(f"the weights in {name} do not match the card's architecture ({arch}, in_channels="
                         f"{card.in_channels}, out_channels={card.out_channels}): "
                         + "; ".join(p for p in parts if p))
    network.load_state_dict(sd, strict=True)


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("/constants.pkl") or "/code/" in n for n in z.namelist())


def _load_torchscript(path: Path) -> torch.nn.Module:
    import warnings

    try:
        with warnings.catch_warnings():                 # TorchScript is deprecated but still the zoo format
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location="cpu")
    except Exception as e:                                              # noqa: BLE001
        raise InputError(f"{path.name} is corrupt or not a TorchScript model: {str(e).splitlines()[0]}") from None


def _load_file(path: Path, card: ModelCard) -> tuple:
    if _is_torchscript(path):
        return _load_torchscript(path), "torchscript"
    network = build_network(card)
    load_weights(network, read_state_dict(path), card, path.name)
    return network, "state_dict"


def _resolve_card(card, near: Path | None) -> ModelCard | None:
    if isinstance(card, ModelCard):
        return card
    if isinstance(card, dict):
        return card_from_dict(card)
    if card is not None:
        return load_card(card)
    if near is not None:
        for cand in (near.with_name(near.stem + ".card.json"), near.with_name("card.json")):
            if cand.is_file():
                return load_card(cand)
    return None


def load_model(source="default", device="cpu", card=None, trust=None):
    """Load ``source`` ('default', a weights file, a card+weights folder or a MONAI bundle folder)
    with ``card`` (a ModelCard, dict or path; default: found beside the weights) onto ``device``.
    A bundle folder gives a :class:`~.bundle.runner.BundleModel` (``trust``: see ``load_bundle``)."""
    from .inference import resolve_device

    dev = resolve_device(device)
    kind = "default" if str(source) == "default" else None
    path = DEFAULT_MODEL_DIR if kind else Path(source).expanduser()
    if not path.exists():
        raise InputError(f"model not found: {path}")
    if path.is_dir() and (path / "configs").is_dir():
        from .bundle import load_bundle

        return load_bundle(path, dev, trust)
    if path.is_dir():
        weights = next((path / n for n in WEIGHT_NAMES if (path / n).is_file()), None)
        if weights is None:
            raise InputError(f"model folder {path} has no {', '.join(WEIGHT_NAMES)}")
        path = weights
    card = _resolve_card(card, path)
    if card is None:
        raise InputError(f"no model card for {path.name}: put card.json beside it or pass card=")
    network, file_kind = _load_file(path, card)
    kind = kind or file_kind
    network.eval()
    return LoadedModel(network, card, str(path), kind).to(dev)
