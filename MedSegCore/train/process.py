"""Training in a child process for the Slicer panel: Start, live progress and curve, Stop, Cancel."""
from __future__ import annotations

import os
import tempfile

import numpy as np

from ..dnn.process import WorkerProcess


def labelmap_from_masks(masks: dict, shape) -> tuple:
    """(uint8 label map, {value: name}) from {segment name: mask}; later segments win where they overlap."""
    labels = np.zeros(shape, np.uint8)
    names = {}
    for value, (name, mask) in enumerate(masks.items(), start=1):
        labels[np.asarray(mask, bool)] = value
        names[value] = name
    return labels, names


class TrainingProcess(WorkerProcess):
    """``start(cases, output, config)`` -> ``poll`` -> finished; ``history`` grows per epoch."""

    module = "MedSegCore.train.worker"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.history = []
        self.output = None
        self.best_dice = None

    def start(self, cases, output: str, config, overwrite: bool = False) -> None:
        """``cases``: [(name, image array, Geometry, {segment name: mask})]; the same segment name
        means the same label in every case."""
        from ..image import io

        self.workdir = tempfile.mkdtemp(prefix="medseg-train-")
        items = []
        for n, (name, image, geometry, masks) in enumerate(cases):
            labels, names = labelmap_from_masks(masks, image.shape)
            image_path = os.path.join(self.workdir, f"case{n}_image.nrrd")
            label_path = os.path.join(self.workdir, f"case{n}_label.nrrd")
            io.write_volume(image, geometry, image_path, compress=False)
            io.write_volume(labels, geometry, label_path)
            items.append({"image": image_path, "label": label_path, "names": names, "name": name})
        self.output = output
        self.launch({"items": items, "config": config.to_dict(), "output": output, "overwrite": overwrite,
                     "stop_file": os.path.join(self.workdir, "STOP")})

    def poll(self) -> list:
        events = super().poll()
        for event in events:
            if event.get("epoch_end"):
                self.history.append(event)
            if event.get("done"):
                self.best_dice = event.get("best_dice")
        return events

    def stop(self) -> None:
        """Ask the run to end after the current step; the best model so far is written."""
        if self.workdir and os.path.isdir(self.workdir):
            open(os.path.join(self.workdir, "STOP"), "w", encoding="utf-8").close()
