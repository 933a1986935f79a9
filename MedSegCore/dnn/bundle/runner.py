"""Run a MONAI bundle the way its own ``SupervisedEvaluator`` does, on a volume in memory.

``load_bundle`` evaluates the bundle's config with MONAI's ``ConfigParser`` (``network_def``,
``preprocessing``, ``inferer``, ``postprocessing``: the ids of MONAI's inference properties,
``monai/bundle/properties.py``) and loads the weights with ``weights_only=True``.  MedSeg changes
two things only: the bundle's ``LoadImaged`` reads the volume already in memory
(:mod:`.reader`), and its ``SaveImaged`` is left out (MedSeg writes segments, label maps and
probabilities).  :meth:`BundleModel.run` follows ``SupervisedEvaluator._iteration`` and
``Workflow._register_decollate``/``_register_postprocessing`` (monai/engines): collate,
``default_prepare_batch``, ``eval_mode``, AMP on CUDA when the evaluator asks for it, the
bundle's inferer, ``Decollated``, then the post-processing through ``engine_apply_transform``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ...errors import CancelledError, InputError
from ...image.geometry import Geometry
from ..card import ModelCard
from . import config as bconfig
from . import labels as blabels
from .reader import MemoryReader, swap_loader
from .windows import Windows, planned_backend, window_total, windows_forward

PRE_IDS, POST_IDS = ("preprocessing", "pre_transforms"), ("postprocessing", "post_transforms")
_SAVERS = ("SaveImaged", "SaveImage")


@dataclass
class BundleResult:
    """``labelmap`` KJI (uint8, uint16 above 255) on ``geometry`` (the input grid when the bundle
    maps its result back with Invertd); ``probabilities`` label name -> float32 KJI or None;
    ``backend`` what ran the windows."""

    labelmap: np.ndarray
    geometry: Geometry
    probabilities: dict | None
    messages: list = field(default_factory=list)
    backend: str = "torch"                      # what ran the windows (after any fallback)


def _first_id(parser, ids):
    return next((i for i in ids if i in parser), None)


def _parsed(parser, id_: str, folder: Path):
    try:
        return parser.get_parsed_content(id_)
    except InputError:
        raise
    except Exception as e:                                              # noqa: BLE001
        text = str(e).strip().splitlines()
        raise InputError(f"MONAI bundle {folder.name}: cannot build '{id_}': "
                         f"{type(e).__name__}: {text[-1] if text else ''}") from None


def _find_ids(config, name: str, prefix: str = "") -> list:
    """Config ids of every dict whose _target_ ends with ``name``."""
    found = []
    if isinstance(config, dict):
        t = config.get("_target_")
        if isinstance(t, str) and t.rsplit(".", 1)[-1] == name:
            found.append(prefix)
        items = config.items()
    elif isinstance(config, list):
        items = enumerate(config)
    else:
        return found
    for k, v in items:
        found += _find_ids(v, name, f"{prefix}#{k}" if prefix else str(k))
    return found


def weights_path(parser, folder: Path) -> Path:
    """The checkpoint the bundle's CheckpointLoader names (its ``load_path``), else models/model.pt|.ts."""
    for id_ in _find_ids(parser.get(), "CheckpointLoader"):
        if f"{id_}#load_path" in parser:
            try:
                path = Path(str(parser.get_parsed_content(f"{id_}#load_path")))
            except Exception:                                           # noqa: BLE001
                continue
            if path.is_file():
                return path
    for name in ("model.pt", "model.pth", "model.ts"):
        if (folder / "models" / name).is_file():
            return folder / "models" / name
    raise InputError(f"MONAI bundle {folder.name}: no weights (models/model.pt or models/model.ts)")


def _load_network(parser, folder: Path, device):
    from ..loading import _is_torchscript, _load_torchscript, _strip_prefixes, read_state_dict

    path = weights_path(parser, folder)
    if _is_torchscript(path):
        return _load_torchscript(path).to(device), path
    network = _parsed(parser, "network_def", folder)
    if not isinstance(network, torch.nn.Module):
        raise InputError(f"MONAI bundle {folder.name}: network_def is not a torch network")
    expected = network.state_dict()
    state = _strip_prefixes(read_state_dict(path), expected)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        what = (f"missing {', '.join(missing[:3])}" if missing else
                f"unexpected {', '.join(unexpected[:3])}" if unexpected else f"shape of {', '.join(wrong[:3])}")
        raise InputError(f"MONAI bundle {folder.name}: {path.name} does not fit network_def ({what})")
    network.load_state_dict(state, strict=True)
    return network.to(device), path


def _without_savers(post):
    from monai.transforms import Compose

    if isinstance(post, Compose):
        kept = [_without_savers(t) for t in post.transforms if type(t).__name__ not in _SAVERS]
        post.transforms = tuple(kept)
    return post


def _flat(transform) -> list:
    from monai.transforms import Compose

    if isinstance(transform, Compose):
        return [t for item in transform.transforms for t in _flat(item)]
    return [transform]


class BundleModel:
    """A loaded bundle: ``run`` segments volumes; ``card`` describes it (name, labels, channels)
    for the rest of MedSeg; ``kind`` is 'bundle'."""

    kind = "bundle"

    def __init__(self, folder, info, parser, network, weights, preprocessing, inferer, postprocessing,
                 card, image_key, pred_key, amp, values):
        self.folder, self.info, self.parser, self.network = Path(folder), info, parser, network
        self.weights, self.preprocessing, self.inferer = weights, preprocessing, inferer
        self.postprocessing, self.card, self.image_key, self.pred_key = postprocessing, card, image_key, pred_key
        self.amp, self.values = amp, values
        self.source = str(folder)

    @property
    def device(self) -> torch.device:
        return next((p.device for p in self.network.parameters()), torch.device("cpu"))

    def to(self, device) -> "BundleModel":
        self.network.to(torch.device(device))
        return self

    def describe_inferer(self) -> str:
        inf = self.inferer
        keys = ("roi_size", "sw_batch_size", "overlap", "mode", "padding_mode")
        parts = [f"{k} {getattr(inf, k)}" for k in keys if hasattr(inf, k)]
        return f"{type(inf).__name__}({', '.join(map(str, parts))})"

    def backend_for(self, backend: str = "auto") -> str:
        """The backend this bundle's windows run on (see :func:`.windows.planned_backend`)."""
        return planned_backend(self.inferer, backend, self.device, self.folder)

    def run(self, inputs, progress=None, cancel=None, probabilities=False, backend="auto") -> BundleResult:
        """Segment ``inputs`` (list of (KJI array, Geometry), one per bundle input channel); the
        windows of a sliding-window inferer on the CPU run through ``backend`` (:mod:`.windows`)."""
        from monai.data import MetaTensor, list_data_collate
        from monai.engines.utils import default_prepare_batch, engine_apply_transform
        from monai.networks.utils import eval_mode
        from monai.transforms import Decollated, apply_transform

        from ..preprocess import resample

        first = inputs[0][1]
        volumes = [(np.asarray(inputs[0][0]), first)] + [
            (np.asarray(a) if g.same_grid(first) else resample(np.asarray(a), g, first), first) for a, g in inputs[1:]]
        reader, messages = MemoryReader(volumes), []
        report = progress or (lambda f, t: None)
        # inference_mode where the evaluator has no_grad (eval_mode): same numbers, less autograd bookkeeping;
        # the whole run is inside it, so post-processing may update the prediction in place.
        with bconfig.on_sys_path(self.folder), torch.inference_mode():
            report(0.0, "Running the bundle's preprocessing")
            tokens = reader.tokens
            data = {self.image_key: tokens[0] if len(tokens) == 1 else tokens}
            if not swap_loader(self.preprocessing, reader):           # no LoadImaged: hand it a MetaTensor
                array, meta = reader.get_data(reader.read(data[self.image_key]))
                data[self.image_key] = MetaTensor(torch.as_tensor(np.asarray(array, np.float32)), meta=meta)
            item = apply_transform(self.preprocessing, data)
            batch = list_data_collate([item])
            device = self.device
            x = default_prepare_batch(batch, device)[0]
            total = window_total(self.inferer, tuple(x.shape[2:]))
            forward, roi, used = windows_forward(self.network, self.inferer, x, backend, device, self.folder,
                                                 message=messages.append)
            windows = Windows(self.network, total, lambda f, t: report(0.05 + 0.85 * f, t), cancel, forward, roi)
            with eval_mode(self.network):
                with torch.autocast("cuda", enabled=bool(self.amp) and device.type == "cuda"):
                    pred = self.inferer(x, windows)
            if cancel is not None and cancel():
                raise CancelledError("inference cancelled by the user")
            report(0.9, "Running the bundle's post-processing")
            decollate = Decollated(keys=None, detach=True)
            b, o = decollate(batch)[0], decollate({"image": x, "label": None, "pred": pred})[0]
            probs = None
            for t in _flat(self.postprocessing):
                if probabilities and probs is None and type(t).__name__ in ("AsDiscreted", "Lambdad"):
                    probs = self._probabilities(o.get(self.pred_key), first)
                b, o = engine_apply_transform(b, o, t)
            if probabilities and probs is None:
                messages.append("This bundle gives no probabilities on the input grid (it takes argmax before "
                                "mapping its result back); only the label map is written.")
        labelmap, geometry = self._labelmap(o[self.pred_key], first)
        return BundleResult(labelmap, geometry, probs, messages, used)

    def _probabilities(self, pred, first: Geometry) -> dict | None:
        if pred is None or pred.ndim != 4 or tuple(pred.shape[1:]) != tuple(first.size):
            return None
        affine = np.asarray(getattr(pred, "affine", np.eye(4)), dtype=float)
        if not np.allclose(affine, first.ijk_to_ras(), atol=1e-4):
            return None
        arr = torch.as_tensor(pred).detach().float().cpu().numpy()
        out = {}
        for lab in self.card.labels:
            c = next((c for c, v in self.values.items() if v == lab.value and c >= 0), None)
            if c is not None and c < arr.shape[0]:
                out[lab.name] = np.ascontiguousarray(arr[c].transpose(2, 1, 0), dtype=np.float32)
        return out

    def _labelmap(self, pred, first: Geometry):
        arr = torch.as_tensor(pred).detach().float().cpu().numpy()
        if arr.ndim == 4 and arr.shape[0] == 1:
            arr = arr[0]
        elif arr.ndim == 4:                                 # one binary channel per label, not mapped
            out = np.zeros(arr.shape[1:], np.float32)
            for c in range(arr.shape[0]):
                out[arr[c] > 0.5] = self.values.get(c, c + 1)
            arr = out
        if arr.ndim != 3:
            raise InputError(f"MONAI bundle {self.folder.name}: its post-processing gave an output of shape "
                             f"{tuple(arr.shape)}, not a 3D label map")
        values = np.rint(arr)
        top = float(values.max()) if values.size else 0.0
        if values.size and float(values.min()) < 0 or top > 65535:
            raise InputError(f"MONAI bundle {self.folder.name}: label values outside 0-65535 in its output")
        labelmap = values.astype(np.uint16 if top > 255 else np.uint8).transpose(2, 1, 0)
        affine = np.asarray(getattr(pred, "affine", first.ijk_to_ras()), dtype=float)
        geometry = Geometry.from_ijk_to_ras(affine, arr.shape)
        if geometry.same_grid(first):
            geometry = first
        return np.ascontiguousarray(labelmap), geometry


def load_bundle(folder, device="cpu", trust: bool | None = None) -> BundleModel:
    """Load the MONAI bundle in ``folder`` onto ``device``.  ``trust``: True runs it (and remembers
    its hash), None runs it only if trusted before (or MEDSEG_TRUST_BUNDLES=1); otherwise
    InputError says how to trust it.  Interactive bundles are refused."""
    from ..inference import resolve_device
    from . import trust as btrust

    folder = Path(folder).expanduser()
    info = bconfig.bundle_info(folder)
    btrust.require(info, trust)
    meta = bconfig.read_metadata(folder)
    parser = bconfig.read_parser(folder, Path(info.config))
    reason = bconfig.interactive_reason(parser.get(), meta)
    if reason:
        raise InputError(f"MONAI bundle {info.name} cannot be run by MedSeg: {reason}; MedSeg does not "
                         "support prompts yet.")
    missing = [i for i, ids in (("network_def", ("network_def",)), ("preprocessing", PRE_IDS),
                                ("inferer", ("inferer",)), ("postprocessing", POST_IDS))
               if _first_id(parser, ids) is None]
    if missing:
        raise InputError(f"MONAI bundle {info.name}: {Path(info.config).name} has no {', '.join(missing)}")
    dev = resolve_device(device)
    parser["device"] = f"$torch.device('{dev}')"
    with bconfig.on_sys_path(folder):
        parser.parse(reset=True)
        network, weights = _load_network(parser, folder, dev)
        pre = _parsed(parser, _first_id(parser, PRE_IDS), folder)
        inferer = _parsed(parser, "inferer", folder)
        post = _without_savers(_parsed(parser, _first_id(parser, POST_IDS), folder))
        amp = bool(parser.get_parsed_content("evaluator#amp")) if "evaluator#amp" in parser else False
    image_key = next(iter((meta.get("network_data_format") or {}).get("inputs") or {"image": 0}))
    pred_key, _, n_out = blabels.output_names(meta)
    image_key = _load_key(pre) or image_key
    n_out = n_out or _out_channels(network, parser)
    values = blabels.probe_values(post, pred_key, image_key, n_out) if n_out else None
    card = _card(info, meta, folder, n_out or 2, values, inferer)
    network.eval()
    model = BundleModel(folder, info, parser, network, weights, pre, inferer, post, card, image_key, pred_key,
                        amp, values or {})
    return model


def _load_key(pre) -> str | None:
    from monai.transforms import LoadImaged

    for t in _flat(pre):
        if isinstance(t, LoadImaged):
            return t.keys[0]
        load = getattr(t, "load", None)
        if isinstance(load, LoadImaged):
            return load.keys[0]
    return None


def _out_channels(network, parser) -> int | None:
    for key in ("network_def#out_channels", "network_def#num_classes"):
        if key in parser:
            try:
                return int(parser.get_parsed_content(key))
            except Exception:                                           # noqa: BLE001
                pass
    return None


def _card(info, meta, folder: Path, n_out: int, values, inferer) -> ModelCard:
    from ..card import load_card

    overrides = None
    if (folder / "card.json").is_file():
        overrides = load_card(folder / "card.json").labels
    labels = blabels.bundle_labels(meta, values, n_out, overrides)
    fmt, chan = bconfig.input_format(meta), bconfig.channel_names(meta)
    n_in = fmt.get("num_channels") if isinstance(fmt.get("num_channels"), int) else max(len(chan), 1)
    roi = tuple(int(r) for r in getattr(inferer, "roi_size", (96, 96, 96)))
    softmax = values is None or values.get(0, 0) == 0
    return ModelCard(name=info.name, version=info.version, description=str(meta.get("description", "")),
                     intended_use=str(meta.get("intended_use", "")), trained=True, in_channels=n_in,
                     out_channels=n_out, roi_size=roi if len(roi) == 3 else (96, 96, 96), labels=labels,
                     output="softmax" if softmax else "sigmoid",
                     channel_names=chan if len(chan) == n_in else None,
                     extra={"authors": info.authors} if info.authors else {})
