"""Inference in a separate process: ``python -m MedSegCore.dnn.worker REQUEST.json``.

The request names the input volume files, the model, the options and an output folder.  Progress
goes to stdout as JSON lines ``{"progress": f, "text": t}``; at the end the worker writes
``labelmap.nrrd`` (and ``prob_<i>.nrrd``) plus ``result.json`` atomically, then prints
``{"done": true}``.  Errors print ``{"error": message}`` and exit with status 1.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict

from .process import emit as _emit


def run(request_path: str) -> int:
    from ..image import io
    from ..errors import MedSegError
    from .predict import PredictOptions, predict

    with open(request_path, encoding="utf-8") as f:
        request = json.load(f)
    out = request["output_dir"]
    try:
        inputs = [io.read_volume(path) for path in request["inputs"]]
        options = PredictOptions(**request.get("options", {}))
        result = predict(inputs, request.get("model", "default"), options,
                         progress=lambda fraction, text: _emit(progress=round(float(fraction), 4), text=text))
        geometry = result.geometry or inputs[0][1]
        io.write_volume(result.labelmap, geometry, os.path.join(out, "labelmap.nrrd"))
        probability_files = {}
        for i, (name, array) in enumerate((result.probabilities or {}).items()):
            path = os.path.join(out, f"prob_{i}.nrrd")
            io.write_volume(array, geometry, path)
            probability_files[name] = path
        summary = {"labels": [asdict(lab) for lab in result.labels], "messages": result.messages,
                   "timings": result.timings, "probabilities": probability_files,
                   "model": [result.model_name, result.model_version], "own_grid": result.geometry is not None}
        with io.atomic_path(os.path.join(out, "result.json")) as tmp, open(tmp, "w", encoding="utf-8") as f:
            json.dump(summary, f)
    except MedSegError as exc:
        _emit(error=str(exc))
        return 1
    except Exception as exc:  # a crash in torch must reach the user as a message, not a hang
        _emit(error=f"{type(exc).__name__}: {exc}")
        return 1
    _emit(done=True)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1]))
