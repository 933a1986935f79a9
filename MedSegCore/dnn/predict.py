"""End to end: input volumes -> network grid -> sliding-window inference -> labelmap (and optional
probabilities) on the input grid, cleaned per label with :mod:`MedSegCore.threshold.cleanup`.
Importing this module does not import torch; :func:`predict` does."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..threshold import cleanup
from ..errors import ParameterError


@dataclass
class PredictOptions:
    """Inference settings; ``roi=None`` uses the card's roi_size, ``device`` is 'auto'|'cpu'|'cuda'|'mps',
    ``backend`` 'auto'|'torch'|'onnxruntime'|'openvino' (see :mod:`MedSegCore.dnn.backends`)."""

    roi: tuple | None = None
    overlap: float = 0.25
    sw_batch: int = 4
    blend: str = "gaussian"
    device: str = "auto"
    backend: str = "auto"
    probabilities: bool = False
    largest_component: bool = False
    fill_holes: bool = False
    min_size_mm3: float = 0.0


@dataclass
class Prediction:
    """``labelmap`` KJI (uint8; uint16 when a label exceeds 255) on ``geometry`` (None: the first
    input's grid); ``probabilities`` label name -> float32 KJI array (or None); ``labels`` from the
    card; ``messages`` shown to the user; ``timings`` s."""

    labelmap: np.ndarray
    probabilities: dict | None
    labels: list
    messages: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    model_name: str = ""               # the card's name and version (segments' algorithm)
    model_version: str = ""
    geometry: object = None


def _check(options: PredictOptions, card) -> list:
    roi = list(options.roi if options.roi is not None else card.roi_size)
    if len(roi) != 3 or any(int(r) != r or r < 1 for r in roi):
        raise ParameterError(f"roi size must be 3 positive integers, got {roi}")
    strides = ((card.architecture or {}).get("params") or {}).get("strides")
    if strides:
        from .inference import roi_fits
        if not roi_fits(roi, strides):
            raise ParameterError(f"roi size {roi} must be divisible by the network's downsampling "
                                 f"(product of strides {strides})")
    if not math.isfinite(options.min_size_mm3) or options.min_size_mm3 < 0:
        raise ParameterError(f"--min-size {options.min_size_mm3}: the minimum island size must be a number >= 0 mm3")
    return [int(r) for r in roi]


def _labels_from(probs, card, logits: bool = False) -> np.ndarray:
    """uint8 labelmap (K, J, I) from probabilities (C, I, J, K) (a torch tensor), one channel at a
    time (argmax for softmax; for sigmoid the most probable label above 0.5).  ``logits``: ``probs``
    holds the network's output before the activation, which orders the channels the same (softmax
    and sigmoid are monotonic; sigmoid's 0.5 is a logit of 0), so the labels are the same."""
    import torch

    values = card.channel_values()
    start = 1 if card.output == "softmax" else 0
    best = probs[0].clone() if start else torch.full_like(probs[0], 0.0 if logits else 0.5)
    out = torch.zeros(best.shape, dtype=torch.uint8)
    for c in range(start, probs.shape[0]):
        better = probs[c] > best
        out.masked_fill_(better, values[c])
        torch.maximum(best, probs[c], out=best)
    return out.permute(2, 1, 0).contiguous().numpy()


def _clean(labelmap: np.ndarray, card, options: PredictOptions, spacing) -> np.ndarray:
    if not (options.largest_component or options.fill_holes or options.min_size_mm3):
        return labelmap
    out = labelmap.copy()
    for lab in card.labels:
        mask = labelmap == lab.value
        if not mask.any():
            continue
        kept = cleanup.clean(mask, spacing, largest=options.largest_component,
                             min_size_mm3=options.min_size_mm3, holes=options.fill_holes)
        out[mask & ~kept] = 0
        out[kept & ~mask & (labelmap == 0)] = lab.value      # filled holes never overwrite other labels
    return out


def predict(inputs, model, options: PredictOptions | None = None, progress=None, cancel=None) -> Prediction:
    """Segment ``inputs`` (list of (array KJI, Geometry), one per card input channel; extra channels are
    resampled onto the first) with ``model`` (a LoadedModel or a source for load_model).
    ``progress(fraction, text)`` is called as work advances; ``cancel()`` returning True raises
    CancelledError.  Nothing is written to disk."""
    from ..errors import CancelledError
    from .inference import estimate_memory, resolve_device, run_inference
    from .loading import LoadedModel, load_model
    from .preprocess import prepare

    options = options or PredictOptions()
    t0 = time.perf_counter()
    messages, timings, last = [], {}, [0.0]

    def report(fraction, text):
        last[0] = fraction
        if progress is not None:
            progress(fraction, text)

    def say(text):
        messages.append(text)
        report(last[0], text)

    def check_cancel():
        if cancel is not None and cancel():
            raise CancelledError("inference cancelled by the user")

    device = resolve_device(options.device)
    model = model if isinstance(model, LoadedModel) or hasattr(model, "run") else load_model(model, device)
    if getattr(model, "kind", None) == "bundle":                 # the bundle's own pipeline
        from .bundle.segment import predict_bundle

        return predict_bundle(inputs, model.to(device), options, progress=report, cancel=cancel)
    card = model.card
    roi = _check(options, card)
    from .inference import check_windows_fit
    check_windows_fit(model, roi, options.sw_batch, device)        # before any work, on every path
    if not card.trained:
        say(f"Warning: model {card.name!r} is not trained; its output is meaningless.")
    report(0.0, "Preparing the input")
    prep = prepare(inputs, card)
    check_cancel()
    data = np.transpose(prep.data, (0, 3, 2, 1))                 # (C, K, J, I) -> (C, I, J, K)
    timings["preprocess"] = time.perf_counter() - t0
    est = estimate_memory(model, data.shape[1:], roi, options.sw_batch, device)
    from .backends import is_exportable, resolve as resolve_backend
    backend = resolve_backend(options.backend, device, is_exportable(model.source))
    say(f"Running {card.name} on {device} ({backend}): {data.shape[1:]} voxels (I, J, K), roi {tuple(roi)}, "
        f"sw_batch {options.sw_batch}; estimated memory {est.text}.")
    model.to(device)

    def window_progress(fraction, text):
        report(0.05 + 0.85 * fraction, text)

    t1 = time.perf_counter()
    probs = run_inference(model.network, data, roi, overlap=options.overlap, sw_batch_size=options.sw_batch,
                          blend=options.blend, device=device, out_channels=card.out_channels,
                          activation=card.output if options.probabilities else None,      # labels: logits do
                          progress=window_progress, cancel=cancel, message=say,
                          backend=backend, model_source=model.source)
    timings["inference"] = time.perf_counter() - t1
    check_cancel()
    report(0.9, "Mapping the result onto the input grid")
    t2 = time.perf_counter()
    labels = _labels_from(probs, card, logits=not options.probabilities)
    labelmap = prep.to_input_grid(labels, labels=True).astype(np.uint8, copy=False)
    probabilities = None
    if options.probabilities:                                        # (I, J, K) -> (K, J, I) per channel
        first = 1 if card.output == "softmax" else 0
        probabilities = {lab.name: prep.to_input_grid(probs[first + i].permute(2, 1, 0).contiguous().numpy(),
                                                      labels=False).astype(np.float32, copy=False)
                         for i, lab in enumerate(card.labels)}
    del probs
    labelmap = _clean(labelmap, card, options, prep.input_geometry.spacing)
    timings["postprocess"] = time.perf_counter() - t2
    timings["total"] = time.perf_counter() - t0
    report(1.0, "Done")
    return Prediction(labelmap, probabilities, list(card.labels), messages, timings, card.name, card.version)
