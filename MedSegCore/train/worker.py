"""Training in a separate process (the Slicer panel's Start/Stop): ``python -m MedSegCore.train.worker REQUEST.json``.

Request: ``items`` [{image, label (label-map files), names {value: name}, name}], ``config`` (TrainConfig
fields), ``output`` (model folder), ``overwrite``, ``stop_file``.  Prints JSON lines: per step (at most
twice a second) ``{"progress", "text", "epoch", "loss"}``, per epoch ``{"epoch_end": true, "history": row}``,
then ``{"done": true, "output", "best_dice"}`` or ``{"error": message}`` (exit status 1).  Creating the
stop file ends the run after the current step with the best model so far written.
"""
from __future__ import annotations

import json
import os
import sys
import time

from ..dnn.process import emit as _emit


def run(request_path: str) -> int:
    from ..image import io
    from ..errors import MedSegError
    from .config import TrainConfig
    from .engine import train

    with open(request_path, encoding="utf-8") as f:
        request = json.load(f)
    last = [0.0]

    def progress(p):
        now = time.monotonic()
        if p.epoch_end:
            _emit(epoch_end=True, epoch=p.epoch, epochs=p.epochs, loss=p.loss, val_dice=p.val_dice,
                  best_dice=p.best_dice, progress=p.epoch / max(p.epochs, 1))
        elif now - last[0] > 0.5:
            last[0] = now
            fraction = ((p.epoch - 1) + p.step / max(p.steps, 1)) / max(p.epochs, 1)
            eta = f", about {p.eta_s:.0f} s left" if p.eta_s is not None else ""
            _emit(progress=round(fraction, 4), epoch=p.epoch, loss=p.loss,
                  text=f"epoch {p.epoch}/{p.epochs} step {p.step}/{p.steps} loss {p.loss:.4f}{eta}")

    try:
        items = []
        for item in request["items"]:
            image, geometry = io.read_volume(item["image"])
            label, _ = io.read_volume(item["label"])
            names = {int(k): v for k, v in item["names"].items()}
            items.append({"image": image, "geometry": geometry, "label": label, "names": names, "name": item["name"]})
        config = TrainConfig.from_dict(request.get("config", {}), "training request")
        stop_file = request.get("stop_file")
        result = train(items, request["output"], config, overwrite=request.get("overwrite", False),
                       progress=progress, stop=lambda: bool(stop_file) and os.path.exists(stop_file),
                       command="MedSeg DNN module (Slicer), training panel")
    except MedSegError as exc:
        _emit(error=str(exc))
        return 1
    except Exception as exc:
        _emit(error=f"{type(exc).__name__}: {exc}")
        return 1
    _emit(done=True, output=result.output, best_dice=result.best_dice, stopped=result.stopped)
    return 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1]))
