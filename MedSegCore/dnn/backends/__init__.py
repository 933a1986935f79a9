"""Inference backends: the same windows through PyTorch, ONNX Runtime or OpenVINO.

:func:`wrap` turns a network into a predictor for MONAI's ``sliding_window_inference`` (torch
tensors in, torch logits out), so MedSeg's own sliding-window path and a MONAI bundle's inferer use
it alike.  ``auto`` picks the fastest backend installed for the device: OpenVINO, then ONNX Runtime,
on the CPU (on the MNI152 volume both give labels equal to PyTorch's on > 99.9999 % of voxels and
probabilities within 3.1e-4, OpenVINO within 8.3e-6 on its rewritten export, see :mod:`.rewrite`,
:mod:`.winograd` and the README); PyTorch (with AMP) on CUDA and MPS.  The export happens once per
network and window shape and is cached (:mod:`.cache`); a failed export or runtime start falls back to PyTorch with one warning line.
Importing this package imports neither torch nor a runtime.
"""
from __future__ import annotations

import importlib.util
import logging
import os

log = logging.getLogger("medseg")

BACKENDS = ("auto", "torch", "onnxruntime", "openvino")
CPU_ORDER = ("openvino", "onnxruntime")          # auto on the CPU: first installed one wins (fastest first)
_MODULES = {"onnxruntime": ("onnxruntime", "onnx"), "openvino": ("openvino", "onnx")}
_RUNNERS: dict = {}                              # (hash, backend, roi, batch, threads) -> numpy forward
_FAILED: dict = {}                               # (hash, backend, roi) -> the warning


def installed(backend: str) -> bool:
    """True if the runtime (and the ``onnx`` package the export needs) can be imported."""
    if backend == "torch":
        return importlib.util.find_spec("torch") is not None
    try:
        return all(importlib.util.find_spec(m) is not None for m in _MODULES[backend])
    except (ImportError, ValueError):           # a module blocked with sys.modules[name] = None
        return False


def available() -> list:
    """Backends usable here, 'torch' first."""
    return [b for b in BACKENDS[1:] if installed(b)]


def resolve(name: str = "auto", device="cpu", exportable: bool = True) -> str:
    """The backend that will run: 'auto' -> an exported runtime on the CPU when installed and the
    network is ``exportable`` (loaded from a model file or folder, where its export is cached; a
    network built in memory runs on PyTorch unless a runtime is named), else 'torch'.  A runtime
    named on a non-CPU device or not installed raises ParameterError."""
    from ...errors import ParameterError

    name = str(name or "auto").strip().lower()
    dev_type = getattr(device, "type", str(device).split(":")[0])
    if name not in BACKENDS:
        raise ParameterError(f"unknown backend {name!r}; use one of {', '.join(BACKENDS)}")
    if name == "auto":
        if dev_type != "cpu" or not exportable:
            return "torch"
        return next((b for b in CPU_ORDER if installed(b)), "torch")
    if name != "torch":
        if dev_type != "cpu":
            raise ParameterError(f"backend {name!r} runs on the CPU only; with device {dev_type!r} use "
                                 "'torch' or 'auto'")
        if not installed(name):
            raise ParameterError(f"backend {name!r} is not installed: pip install 'medseg[fast]' "
                                 f"(or choose 'auto' or 'torch')")
    return name


def is_exportable(model_source) -> bool:
    """True if ``model_source`` names a model file or folder that exists."""
    return bool(model_source) and os.path.exists(str(model_source))


def _check(network, forward, roi, in_channels, batch):
    """Raise if ``forward`` differs from ``network`` on a seeded random window (a trace that baked
    in Python control flow, an unsupported operator translated wrongly)."""
    import numpy as np
    import torch

    x = torch.from_numpy(np.random.default_rng(0).standard_normal((1, in_channels, *roi), dtype=np.float32))
    with torch.inference_mode():
        ref = network(x)
    ref = (ref[0] if isinstance(ref, (list, tuple)) else ref).float().numpy()
    got = forward(x.numpy())
    err, scale = float(np.abs(got - ref).max()), float(np.abs(ref).max())
    if not err <= 1e-3 + 1e-3 * scale:
        raise RuntimeError(f"the exported network differs from PyTorch by {err:.3g} (outputs up to {scale:.3g})")


def _runner(network, backend, roi, batch, in_channels, model_source):
    import torch

    from . import onnx as onnx_backend
    from .cache import content_hash

    threads = torch.get_num_threads()
    key = (content_hash(network), backend, tuple(roi), in_channels, batch if backend == "openvino" else 0, threads)
    if key not in _RUNNERS:
        if backend == "onnxruntime":
            import onnxruntime

            path = onnx_backend.export_onnx(network, roi, model_source, in_channels)
            _RUNNERS[key] = onnx_backend.onnxruntime_forward(path, threads)
            checked = f"{path}.onnxruntime-{onnxruntime.__version__}.checked"
        else:
            from . import openvino as ov_backend
            streams, per_request = ov_backend.streams_for(threads, batch)
            use, timed = _winograd_choice(network, roi, in_channels, model_source, threads, batch)
            path = onnx_backend.export_onnx(network, roi, model_source, in_channels, openvino=True, use_winograd=use)
            xml = ov_backend.openvino_ir(path, per_request)
            _RUNNERS[key] = timed.get(use) or ov_backend.openvino_forward(xml, per_request, threads, streams)
            checked = f"{xml}.checked"
        if not os.path.isfile(checked):
            try:
                _check(network, _RUNNERS[key], roi, in_channels, batch)
            except Exception:
                del _RUNNERS[key]
                raise
            _mark_checked(checked)
    return _RUNNERS[key]


def _winograd_choice(network, roi, in_channels, model_source, threads, batch) -> tuple:
    """(use, {use: forward}): whether OpenVINO runs the Winograd export (:mod:`.winograd`) faster
    than the one without it, here, and the forwards compiled to find out (none when the choice was
    read).  Measured on ``batch`` seeded random windows the first time and recorded beside the
    exports (a JSON file named by the network's hash, window shape, threads, batch and the OpenVINO
    and rewrite versions), so later processes read it.  False when the rewrite does not apply or its
    export fails (the plain rewritten export then runs; its own failure is raised)."""
    import json

    import numpy as np
    import openvino as ov

    from . import onnx as onnx_backend
    from . import openvino as ov_backend
    from .cache import cache_path, shape_text, store

    version = f"r{onnx_backend.REWRITE_VERSION}-openvino{ov.__version__.split('-')[0]}"
    record = cache_path(model_source, network, "openvino-winograd",
                        f"{version}-{shape_text((in_channels, *roi))}-t{threads}-b{batch}", ".json")
    try:
        return bool(json.loads(record.read_text())["winograd"]), {}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    forwards, seconds = {}, {}
    if onnx_backend.winograd_applies(network, roi, in_channels):
        streams, per_request = ov_backend.streams_for(threads, batch)
        for use in (False, True):
            try:
                path = onnx_backend.export_onnx(network, roi, model_source, in_channels, openvino=True, use_winograd=use)
                forwards[use] = ov_backend.openvino_forward(ov_backend.openvino_ir(path, per_request), per_request,
                                                            threads, streams)
            except Exception as exc:             # noqa: BLE001 - the Winograd export failing leaves the other
                if not use:
                    raise
                log.info("Winograd export not used: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        if True in forwards:
            x = np.random.default_rng(1).standard_normal((int(batch), int(in_channels), *map(int, roi)), dtype=np.float32)
            seconds = ov_backend.fastest(forwards, x)[1]
    choice = bool(seconds) and seconds[True] < seconds[False]
    store(record, json.dumps({"winograd": choice, "windows": int(batch),
                              "seconds": {"without": seconds.get(False), "winograd": seconds.get(True)}}).encode())
    return choice, forwards


def _mark_checked(marker: str) -> None:
    """Record that the export beside ``marker`` passed :func:`_check` (its name carries the network's
    hash, window shape and runtime version, so the record cannot outlive what it vouches for): later
    processes skip the PyTorch run on the check window.  A failed write only costs that run again."""
    from .cache import store

    store(marker, b"checked against PyTorch on a seeded random window\n")


def wrap(network, backend: str = "auto", roi=(96, 96, 96), sw_batch: int = 4, *, device="cpu",
         in_channels: int = 1, model_source: str | None = None, message=None):
    """A predictor ``f(x) -> logits`` on torch tensors (N, C, *roi) for ``sliding_window_inference``.
    ``backend`` 'auto'|'torch'|'onnxruntime'|'openvino' (see :func:`resolve`); ``model_source`` is
    the model's file or folder (where the export is cached; 'auto' without one means PyTorch).  The
    export is checked against PyTorch on one random window the first time it is used (a ``.checked``
    file beside it records that).  If the export, the runtime or that check
    fails, the network itself is returned after one warning (logged and passed to ``message``)."""
    chosen = resolve(backend, device, exportable=is_exportable(model_source))
    if chosen == "torch":
        return network
    from .cache import content_hash

    failed = (content_hash(network), chosen, tuple(int(r) for r in roi))
    if failed not in _FAILED:
        try:
            forward = _runner(network, chosen, [int(r) for r in roi], int(sw_batch), int(in_channels), model_source)
        except Exception as exc:                # noqa: BLE001 - any export/runtime failure falls back
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            _FAILED[failed] = f"Warning: {chosen} export failed ({type(exc).__name__}: {first}); running on PyTorch."
            log.warning("%s", _FAILED[failed])           # once per process and network: not retried
    if failed in _FAILED:
        if message is not None:
            message(_FAILED[failed])
        return network
    return ExportedPredictor(network, forward, model_source)


class ExportedPredictor:
    """Runs windows through an exported ``forward`` (numpy in, numpy out).  A window holding one
    value only (pure background) runs through the PyTorch network instead, once per value: instance
    normalisation of a constant is 0/0, where the runtimes return rounding noise amplified layer by
    layer (measured: logits off by 34 on the bundled model) while PyTorch returns exact zeros.  That
    output is kept beside the export (:func:`.cache.constant_output`), so later runs skip it too."""

    def __init__(self, network, forward, model_source: str | None = None):
        from .cache import content_hash

        self.network, self.forward, self.model_source, self.constant = network, forward, model_source, {}
        self.digest = content_hash(network)

    def _constant(self, x, i, value):
        import torch

        from .cache import constant_output

        key = (value, tuple(x.shape[1:]))
        if key not in self.constant:
            def compute():
                with torch.inference_mode():
                    out = self.network(x[i:i + 1].float())
                return (out[0] if isinstance(out, (list, tuple)) else out).float()[0].cpu().numpy()
            self.constant[key] = torch.from_numpy(constant_output(self.model_source, self.digest, value,
                                                                  tuple(x.shape[1:]), compute))
        return self.constant[key]

    def __call__(self, x):
        import numpy as np
        import torch

        flat = x.detach().reshape(x.shape[0], -1)
        low, high = torch.aminmax(flat, dim=1)
        const = (low == high).tolist()
        live = [i for i, c in enumerate(const) if not c]
        parts = {}
        if live:
            sub = x if len(live) == len(const) else x[live]
            y = torch.from_numpy(self.forward(np.ascontiguousarray(sub.detach().cpu().float().numpy())))
            if len(live) == len(const):
                return y.to(x.device)
            parts.update(zip(live, y))
        for i, c in enumerate(const):
            if c:
                parts[i] = self._constant(x, i, float(low[i]))
        return torch.stack([parts[i] for i in range(len(const))]).to(x.device)
