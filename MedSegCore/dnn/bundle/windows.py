"""The bundle's network as the bundle's own inferer calls it: progress and cancel per forward, and
the windows through an inference backend (:mod:`MedSegCore.dnn.backends`) where that gives the same
result.

A 3D ``SlidingWindowInferer`` (and its ``SlidingWindowInfererAdapt``) calls the network on windows of
one fixed shape, ``fall_back_tuple(roi_size, spatial shape)`` (``monai.inferers.utils
.sliding_window_inference`` pads a smaller input up to it), at most ``sw_batch_size`` at a time: the
shape an exported runtime needs.  Those windows run on the CPU through ``backends.wrap`` (exported
once and cached in the bundle's ``.medseg-cache``; a failed export falls back to PyTorch with one
warning).  Every other inferer (``SimpleInferer`` on whole volumes of varying shape, ``SliceInferer``
on 2D slices) and any call with extra arguments (``with_coord``) stays on the PyTorch network.
"""
from __future__ import annotations

import math

from ...errors import CancelledError


def window_roi(inferer, spatial) -> tuple | None:
    """The fixed 3D window shape ``inferer`` runs the network on for an input of ``spatial`` shape,
    or None (not a 3D sliding-window inferer)."""
    from monai.inferers import SliceInferer, SlidingWindowInferer
    from monai.utils import fall_back_tuple

    if not isinstance(inferer, SlidingWindowInferer) or isinstance(inferer, SliceInferer) or len(spatial) != 3:
        return None
    try:
        roi = tuple(int(r) for r in fall_back_tuple(inferer.roi_size, tuple(int(s) for s in spatial)))
    except (TypeError, ValueError):
        return None
    return roi if len(roi) == 3 and min(roi) > 0 else None


def window_total(inferer, spatial) -> int | None:
    """Forward passes a sliding-window inferer makes over ``spatial`` (None for other inferers)."""
    from ..inference import window_count

    roi = window_roi(inferer, spatial)
    if roi is None:
        return None
    return math.ceil(window_count(spatial, roi, inferer.overlap) / max(int(inferer.sw_batch_size), 1))


def _on_cpu(inferer, device) -> bool:
    import torch

    where = (device, getattr(inferer, "sw_device", None))          # None: the input's device
    return all(torch.device(d).type == "cpu" for d in where if d is not None)


def planned_backend(inferer, backend: str, device, folder) -> str:
    """The backend the bundle's windows will run on (before any export): ``backends.resolve`` for a
    3D sliding-window inferer on the CPU, else 'torch'.  A runtime named where it cannot run
    (not installed, not the CPU) raises ParameterError, as for model cards."""
    from .. import backends

    chosen = backends.resolve(backend, device, exportable=backends.is_exportable(folder))
    roi_ok = getattr(inferer, "roi_size", None) is not None and window_roi(inferer, (64, 64, 64)) is not None
    return chosen if chosen != "torch" and roi_ok and _on_cpu(inferer, device) else "torch"


def windows_forward(network, inferer, x, backend: str, device, folder, message=None):
    """(forward, roi, backend used) for ``x``'s windows: ``backends.wrap``'s predictor and the roi it
    was exported for, or (network, None, 'torch') for PyTorch, other inferers or a failed export."""
    from .. import backends

    chosen = planned_backend(inferer, backend, device, folder)
    roi = window_roi(inferer, tuple(x.shape[2:]))
    if chosen == "torch" or roi is None:
        return network, None, "torch"
    forward = backends.wrap(network, chosen, roi, max(int(inferer.sw_batch_size), 1), device=device,
                            in_channels=int(x.shape[1]), model_source=str(folder), message=message)
    return (network, None, "torch") if forward is network else (forward, roi, chosen)


class Windows:
    """What the inferer calls: ``forward`` (a backend's predictor) on windows of ``roi`` without extra
    arguments, the network otherwise; same output, plus progress and cancel per forward."""

    def __init__(self, network, total, progress, cancel, forward=None, roi=None):
        self.network, self.total, self.done, self.progress, self.cancel = network, total, 0, progress, cancel
        self.forward, self.roi = forward or network, roi

    def __call__(self, x, *args, **kwargs):
        if self.cancel is not None and self.cancel():
            raise CancelledError("inference cancelled by the user")
        if self.roi is not None and not args and not kwargs and tuple(x.shape[2:]) == self.roi:
            y = self.forward(x)
        else:
            y = self.network(x, *args, **kwargs)
        self.done += 1
        if self.progress is not None:
            frac = min(self.done / self.total, 1.0) if self.total else 0.5
            self.progress(frac, f"forward pass {self.done}" + (f" of {self.total}" if self.total else ""))
        return y
