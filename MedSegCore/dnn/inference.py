"""Sliding-window inference: device choice, memory estimate, per-window progress and cancel, and
an out-of-memory fallback (smaller window batches, then stitching on the CPU, then CPU only).

Tensors are ``(N, C, I, J, K)`` as in MONAI.  Nothing is written to disk here.
"""
from __future__ import annotations

import gc
from dataclasses import dataclass

import numpy as np
import torch
from monai.data.utils import dense_patch_slices
from monai.inferers import sliding_window_inference

from ..errors import CancelledError, InputError, MedSegError, ParameterError
from . import backends

BLEND_MODES = ("constant", "gaussian")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(name="auto") -> torch.device:
    """'auto' picks cuda > mps > cpu; a named device that is not available raises ParameterError."""
    name = str(name or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise ParameterError(f"unknown device {name!r}; use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ParameterError(f"device {name!r} was requested but CUDA is not available (no NVIDIA GPU or "
                                 "driver, or a CPU-only PyTorch build); choose 'auto' or 'cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ParameterError(f"device {name!r} does not exist: {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps" and not _mps_available():
        raise ParameterError(f"device {name!r} was requested but Apple Metal (MPS) is not available; choose 'auto' or 'cpu'")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ParameterError(f"device type {dev.type!r} is not supported; use 'cpu', 'cuda' or 'mps'")
    return dev


def window_count(image_size, roi_size, overlap: float) -> int:
    """Number of windows sliding_window_inference visits (same formula as MONAI)."""
    size = [max(int(s), int(r)) for s, r in zip(image_size, roi_size)]
    interval = [r if r == s else max(int(r * (1 - overlap)), 1) for s, r in zip(size, roi_size)]
    return len(dense_patch_slices(size, list(roi_size), interval))


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


@dataclass(frozen=True)
class MemoryEstimate:
    """Rough peak memory of a run, in bytes, split by role; ``text`` is for the user."""

    total_bytes: int
    window_bytes: int
    output_bytes: int
    input_bytes: int
    text: str


def estimate_memory(model, input_shape, roi_size, sw_batch_size: int, device="cpu",
                    in_channels: int | None = None, out_channels: int | None = None) -> MemoryEstimate:
    """Rough peak memory for ``model`` (a ModelCard, a LoadedModel or an nn.Module) on a volume of
    spatial ``input_shape`` (network grid): windows (weights, activations, on ``device``), the
    stitched output and the input.  Activations follow a UNet's ``channels``/``strides`` from the
    card (measured on an H100: within ~1.5x, conservative), else assume 32 full-resolution features."""
    card = getattr(model, "card", model if hasattr(model, "roi_size") else None)
    network = getattr(model, "network", model if isinstance(model, torch.nn.Module) else None)
    in_channels = in_channels or (card.in_channels if card else 1)
    out_channels = out_channels or (card.out_channels if card else 2)
    params = ((card.architecture or {}).get("params", {}) if card else {})
    if "channels" in params and "strides" in params:             # UNet-like: level l at 1/prod(strides[:l+1])
        features, factor = 0.0, 1.0
        for i, c in enumerate(params["channels"]):
            if i < len(params["strides"]):
                factor *= float(np.prod(np.broadcast_to(np.asarray(params["strides"][i]), (3,))))
            features += 2.6 * c / factor
    else:
        features = float(params.get("init_filters", params.get("feature_size", 32)))
    act_bytes = 2 if torch.device(device).type == "cuda" else 4      # AMP (float16) on CUDA only
    per_voxel = 20 + sw_batch_size * act_bytes * (2 * (in_channels + out_channels) + features)
    window = per_voxel * float(np.prod(roi_size))
    if network is not None:
        window += sum(p.numel() * p.element_size() for p in network.parameters())
    vox = float(np.prod(input_shape))
    output = 4.0 * vox * (2 * out_channels + 1)          # stitched sum + count map + activation copy
    inp = 4.0 * vox * in_channels
    total = window + output + inp
    text = (f"about {human_bytes(total)} (windows {human_bytes(window)}, stitched output "
            f"{human_bytes(output)}, input {human_bytes(inp)})")
    return MemoryEstimate(int(total), int(window), int(output), int(inp), text)


def is_out_of_memory(error: BaseException) -> bool:
    """True for CUDA/MPS out-of-memory errors (including MONAI's wrapped 'Seems to be OOM')."""
    oom = getattr(torch.cuda, "OutOfMemoryError", ())
    if oom and isinstance(error, oom):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and ("out of memory" in text or "seems to be oom" in text)


def _module_device(network) -> torch.device | None:
    for p in network.parameters():
        return p.device
    return None


class _Predictor:
    """Wraps the network for sliding_window_inference: cancel check, AMP, progress per window."""

    def __init__(self, network, total, progress, cancel, amp, out_channels):
        self.network, self.total, self.done = network, total, 0
        self.progress, self.cancel, self.amp, self.out_channels = progress, cancel, amp, out_channels

    def __call__(self, x):
        if self.cancel is not None and self.cancel():
            raise CancelledError("inference cancelled by the user")
        try:
            with torch.autocast("cuda", dtype=torch.float16, enabled=self.amp):
                y = self.network(x)
        except RuntimeError as e:
            if is_out_of_memory(e):
                raise
            raise InputError(f"the network failed on a window of shape {tuple(x.shape)} (N, C, I, J, K): {e} "
                             "- check in_channels and roi_size in the model card") from e
        y = y[0] if isinstance(y, (list, tuple)) else y
        if not isinstance(y, torch.Tensor) or y.ndim != x.ndim:
            shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise InputError(f"the network's output has shape {shape} for a window of shape {tuple(x.shape)}: "
                             "a 3D segmentation network must return (N, C, I, J, K), rank 5")
        if tuple(y.shape[2:]) != tuple(x.shape[2:]) or y.shape[0] != x.shape[0]:
            raise InputError(f"the network's output has shape {tuple(y.shape)} for a window of shape "
                             f"{tuple(x.shape)}: each output window must have the input window's size")
        if not bool(torch.isfinite(y.sum())):       # one reduction; the exact count only when it is not finite
            bad = int((~torch.isfinite(y)).sum())
            if bad:
                raise InputError(f"the network's output holds {bad} NaN or infinite value(s) (in a window of shape "
                                 f"{tuple(x.shape)}): the model is broken or does not suit this input")
        if self.out_channels is not None and y.shape[1] != self.out_channels:
            raise InputError(f"the network produced {y.shape[1]} output channel(s) but its model card "
                             f"declares out_channels = {self.out_channels}")
        self.done += x.shape[0]
        if self.progress is not None:
            self.progress(min(self.done / self.total, 1.0), f"window {self.done} of {self.total}")
        return y.float()


def _plan(device: torch.device, sw_batch_size: int, cpu_fallback: bool) -> list:
    """Attempts in order: (sw_batch, window device, stitch device, message before the attempt)."""
    cpu = torch.device("cpu")
    steps, b = [(sw_batch_size, device, device, None)], sw_batch_size
    while b > 1:
        steps.append((max(b // 2, 1), device, device, f"Out of memory with sw_batch {b}; retrying with "
                                                      f"sw_batch {max(b // 2, 1)}."))
        b = max(b // 2, 1)
    if cpu_fallback:
        steps.append((1, device, cpu, f"Out of memory with sw_batch 1; retrying with the windows on {device} "
                                      "and the result stitched on the CPU."))
        steps.append((1, cpu, cpu, "Out of memory again; running entirely on the CPU (slower)."))
    return steps


def run_inference(network, data, roi_size, *, overlap: float = 0.25, sw_batch_size: int = 4,
                  blend: str = "gaussian", device="auto", out_channels: int | None = None,
                  activation: str | None = None, progress=None, cancel=None, message=None,
                  cpu_fallback: bool | None = None, backend: str = "torch",
                  model_source: str | None = None) -> torch.Tensor:
    """Run ``network`` over ``data`` (C, I, J, K) in windows of ``roi_size``; returns (C_out, I, J, K)
    float32 on the CPU, after ``activation`` ('softmax'|'sigmoid'|None).  ``progress(fraction, text)``
    is called per window, ``cancel()`` returning True raises CancelledError between windows,
    ``message(text)`` reports fallbacks.  ``cpu_fallback`` (default: device is not the CPU) adds
    the stitch-on-CPU and CPU-only steps after sw_batch has been halved down to 1.  ``backend``
    ('torch'|'auto'|'onnxruntime'|'openvino', see :mod:`.backends`) runs the windows; an export is
    cached beside ``model_source``."""
    if blend not in BLEND_MODES:
        raise ParameterError(f"blend mode must be one of {', '.join(BLEND_MODES)}, got {blend!r}")
    if not 0 <= overlap < 1:
        raise ParameterError(f"overlap must be >= 0 and < 1, got {overlap}")
    if int(sw_batch_size) < 1:
        raise ParameterError(f"sw_batch must be >= 1, got {sw_batch_size}")
    roi_size = [int(r) for r in roi_size]
    if len(roi_size) != 3 or min(roi_size) < 1:
        raise ParameterError(f"roi size must be 3 positive integers, got {roi_size}")
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    x = torch.as_tensor(np.ascontiguousarray(data), dtype=torch.float32)[None]
    total = window_count(x.shape[2:], roi_size, overlap)
    steps = _plan(dev, int(sw_batch_size), dev.type != "cpu" if cpu_fallback is None else cpu_fallback)
    network.eval()
    for i, (batch, sw_dev, out_dev, note) in enumerate(steps):
        if note and message is not None:
            message(note)
        try:
            if _module_device(network) not in (None, sw_dev):
                network.to(sw_dev)
            forward = backends.wrap(network, backend, roi_size, batch, device=sw_dev, in_channels=x.shape[1],
                                    model_source=model_source, message=message)
            pred = _Predictor(forward, total, progress, cancel, sw_dev.type == "cuda", out_channels)
            # With windows and stitching on the same accelerator, move the input there once instead
            # of copying every window from host memory.
            xin = x.to(sw_dev) if sw_dev == out_dev else x
            with torch.inference_mode():
                y = sliding_window_inference(xin, roi_size, batch, pred, overlap=overlap, mode=blend,
                                             sw_device=sw_dev, device=out_dev)
                y = y[0] if isinstance(y, (list, tuple)) else y
                if activation == "softmax":
                    y = torch.softmax(y, dim=1)
                elif activation == "sigmoid":
                    y = torch.sigmoid(y)
                return y[0].float().cpu()
        except Exception as e:                       # noqa: BLE001 - only OOM is retried
            if not is_out_of_memory(e):
                raise
            if i == len(steps) - 1:
                raise MedSegError(f"out of memory even with sw_batch 1 on {sw_dev}: {str(e).splitlines()[0]}; "
                                  "try a smaller roi size") from e
        if sw_dev.type != "cpu" or out_dev.type != "cpu":      # free accelerator memory before retrying
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
    raise AssertionError("unreachable")  # pragma: no cover


def check_windows_fit(model, roi_size, sw_batch_size: int, device) -> None:
    """Raise ParameterError before a run whose windows alone (weights, activations of ``sw_batch``
    windows of ``roi_size``) need more memory than ``device`` has free (the same estimate the run
    prints)."""
    from ..image.limits import available_memory

    dev = torch.device(device)
    est = estimate_memory(model, (1, 1, 1), roi_size, sw_batch_size, dev)
    free, where = 0, dev.type
    if dev.type == "cuda" and torch.cuda.is_available():
        free = torch.cuda.mem_get_info(dev.index or 0)[0]
        where = f"{dev} ({torch.cuda.get_device_name(dev.index or 0)})"
    elif dev.type == "cpu":
        free, where = available_memory(), "this machine"
    if free and est.window_bytes > free:
        raise ParameterError(f"windows of {'x'.join(map(str, roi_size))} voxels with sw_batch {sw_batch_size} need "
                             f"about {human_bytes(est.window_bytes)} of memory, more than the {human_bytes(free)} free on "
                             f"{where}; use a smaller --roi or --sw-batch (the model card asks for roi_size "
                             f"{list(getattr(getattr(model, 'card', model), 'roi_size', roi_size))})")


def roi_fits(roi_size, strides) -> bool:
    """True if each roi side is divisible by the network's total downsampling (product of strides)."""
    factor = np.ones(3, dtype=int)
    for s in strides:
        factor *= np.broadcast_to(np.asarray(s, dtype=int), (3,))
    return all(int(r) % int(f) == 0 for r, f in zip(roi_size, factor))
