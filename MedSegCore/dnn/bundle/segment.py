"""``dnn.predict`` for a bundle: check the inputs against the bundle's channels, run it, clean up
as the user asked, and return a :class:`~MedSegCore.dnn.predict.Prediction`."""
from __future__ import annotations

import time

from ...errors import ParameterError


def predict_bundle(inputs, model, options, progress=None, cancel=None):
    """Segment ``inputs`` (list of (KJI array, Geometry), one per channel_def entry) with a BundleModel.
    The bundle's own inferer settings are used; roi, overlap, sw_batch and blend are not; ``options.backend``
    runs the windows of a sliding-window inferer on the CPU (:mod:`.windows`)."""
    from ..predict import Prediction, _clean
    from ..preprocess import check_inputs

    t0 = time.perf_counter()
    inputs = check_inputs(inputs)
    card = model.card
    if len(inputs) != card.in_channels:
        names = f" ({', '.join(card.channel_names)})" if card.channel_names else ""
        raise ParameterError(f"bundle {card.name!r} needs {card.in_channels} input volume(s){names}, "
                             f"got {len(inputs)}")
    backend = model.backend_for(options.backend)                # a runtime that cannot run here: say so now
    messages = [f"Running bundle {model.info.describe()} on {model.device} ({backend}) with its own pipeline; "
                f"inferer {model.describe_inferer()}."]
    if backend == "torch" and options.backend not in ("auto", "torch"):
        messages.append(f"The bundle's {type(model.inferer).__name__} does not run fixed-shape windows on the CPU; "
                        f"its network runs on PyTorch, not {options.backend}.")
    if progress is not None:
        progress(0.0, messages[0])
    result = model.run(inputs, progress=progress, cancel=cancel, probabilities=options.probabilities,
                       backend=options.backend)
    messages += result.messages
    t1 = time.perf_counter()
    labelmap = _clean(result.labelmap, card, options, result.geometry.spacing)
    timings = {"inference": t1 - t0, "postprocess": time.perf_counter() - t1}
    timings["total"] = time.perf_counter() - t0
    if progress is not None:
        progress(1.0, "Done")
    return Prediction(labelmap, result.probabilities, list(card.labels), messages, timings, card.name, card.version,
                      geometry=None if result.geometry == inputs[0][1] else result.geometry)
