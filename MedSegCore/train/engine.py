"""The training loop: patches -> U-Net -> loss -> Adam, validation by sliding window, checkpoints.

An epoch is ``steps_per_epoch`` optimiser steps (default: one pass of this rank's share of the
training cases, ``samples_per_case`` patches each).  Validation runs on whole validation volumes
(sliding window, Gaussian blending) every ``val_every`` epochs; the weights with the best mean
validation Dice (MedSegCore.evaluation.metrics) are the model written to the output folder.

Learning rate: Adam, then 'cosine' (default): linear warm-up over ``warmup_fraction`` of the run,
then cosine decay to ``min_lr_fraction * lr``, where the run's progress is the larger of the epoch
fraction and the fraction of ``max_minutes`` spent, so a run cut short by its time budget still
ends at a low rate; 'plateau': ReduceLROnPlateau on the validation Dice; 'none': constant.

Output folder: model.pt (state dict) + card.json (what MedSegCore.dnn.load_model reads),
metrics.csv, curves.png, train_config.json and checkpoint.pt (last epoch: weights, optimiser,
scheduler, epoch, RNG states, history; only tensors and plain containers, read back with
``torch.load(weights_only=True)``).  Random numbers are reseeded from (seed, epoch, rank) at
every epoch, so a resumed run continues exactly as an uninterrupted one would.
"""
from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError, MedSegError
from .config import TrainConfig

log = logging.getLogger("medseg")
CHECKPOINT = "checkpoint.pt"


@dataclass
class Progress:
    """What the progress callback receives (per step, and at each epoch end with ``val_dice``)."""

    epoch: int
    epochs: int
    step: int
    steps: int
    loss: float | None
    lr: float
    eta_s: float | None
    val_dice: dict | None = None
    best_dice: float | None = None
    epoch_end: bool = False


@dataclass
class TrainResult:
    output: str
    epochs_run: int
    best_epoch: int
    best_dice: float | None
    val_dice: dict
    history: list
    stopped: str = ""            # '', 'user', 'time', 'early stopping'
    seconds: float = 0.0
    transfer: dict = field(default_factory=dict)


class Schedule:
    """Learning rate as a function of the run's progress (0..1), or ReduceLROnPlateau."""

    def __init__(self, cfg: TrainConfig, optimizer):
        self.cfg, self.optimizer, self.plateau = cfg, optimizer, None
        if cfg.scheduler == "plateau":
            from torch.optim.lr_scheduler import ReduceLROnPlateau
            self.plateau = ReduceLROnPlateau(optimizer, mode="max", factor=cfg.plateau_factor,
                                             patience=cfg.plateau_patience)
        self.current = cfg.lr

    def lr_at(self, progress: float) -> float:
        c = self.cfg
        if c.scheduler == "cosine":
            p = min(max(progress, 0.0), 1.0)
            if p < c.warmup_fraction:
                return c.lr * max(p / c.warmup_fraction, 0.01)
            q = (p - c.warmup_fraction) / max(1 - c.warmup_fraction, 1e-9)
            low = c.lr * c.min_lr_fraction
            return low + 0.5 * (c.lr - low) * (1 + math.cos(math.pi * q))
        return self.current

    def epoch_end(self, val_mean) -> None:
        if self.plateau is not None and val_mean is not None:
            self.plateau.step(val_mean)
            self.current = self.optimizer.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        return {"current": self.current, "plateau": self.plateau.state_dict() if self.plateau else None}

    def load_state_dict(self, state: dict) -> None:
        self.current = state["current"]
        if self.plateau is not None and state.get("plateau"):
            self.plateau.load_state_dict(state["plateau"])


def check_output(output, overwrite: bool, resume: bool) -> Path:
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise InputError(f"output {out} exists and is not a folder")
    if resume:
        if not (out / CHECKPOINT).is_file():
            raise InputError(f"cannot resume: {out / CHECKPOINT} does not exist")
    elif out.exists() and any(out.iterdir()) and not overwrite:
        raise InputError(f"model folder {out} exists and is not empty; pass --overwrite to replace it")
    return out


def _rng_state() -> dict:
    import torch

    st = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy": [st[0], torch.from_numpy(st[1].astype(np.int64)), int(st[2]),
                                                      int(st[3]), float(st[4])], "python": random.getstate()}


def _set_rng_state(state: dict) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))


def _seed_epoch(seed: int, epoch: int, rank: int) -> np.random.RandomState:
    import torch

    s = (seed * 1_000_003 + epoch * 7_919 + rank * 104_729) % (2 ** 31)
    torch.manual_seed(s)
    random.seed(s)
    return np.random.RandomState(s)


def _loss_fn(kind: str):
    import torch

    if kind == "mse":
        def mse(logits, target):
            onehot = torch.nn.functional.one_hot(target[:, 0], logits.shape[1]).movedim(-1, 1).float()
            return torch.nn.functional.mse_loss(torch.softmax(logits, 1), onehot)
        return mse
    from monai.losses import DiceCELoss, DiceLoss

    return (DiceCELoss if kind == "dicece" else DiceLoss)(to_onehot_y=True, softmax=True)


def validate(network, cases: list, cfg: TrainConfig, roi, labels: list, device, amp: bool) -> dict:
    """Mean Dice per label name over ``cases`` (NetCase) by sliding-window inference."""
    import torch
    from monai.inferers import sliding_window_inference

    from ..evaluation import metrics

    names = {i + 1: lab["name"] for i, lab in enumerate(labels)}
    per_label = {n: [] for n in names.values()}
    net = getattr(network, "module", network)
    was_training = net.training
    net.eval()
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
        for case in cases:
            x = torch.from_numpy(case.normalized(cfg.normalization)).to(device)[None]
            y = sliding_window_inference(x, roi, cfg.sw_batch, net, overlap=cfg.val_overlap, mode="gaussian")
            pred = y[0].float().argmax(0).to(torch.uint8).cpu().numpy()
            rows = metrics.evaluate(pred.transpose(2, 1, 0), case.label.transpose(2, 1, 0), case.geometry,
                                    match="value", pred_names=names, ref_names=names, distances=False)
            for r in rows:
                per_label[r.segment].append(r.dice)
    net.train(was_training)
    return {n: float(np.mean(v)) for n, v in per_label.items()}


def train(source, output, config: TrainConfig | None = None, *, resume: bool = False, overwrite: bool = False,
          progress=None, stop=None, command: str | None = None) -> TrainResult:
    """Train a U-Net on ``source`` (folder, datalist or in-memory items, see :mod:`.data`) and write
    the model folder ``output``.  ``progress(Progress)`` is called on rank 0 after every step;
    ``stop()`` (or a ``threading.Event``) returning True ends the run after the current step, with
    the best model so far written.  Works alone or under torchrun (see :mod:`.ddp`)."""
    from . import ddp
    from .loop import Run

    cfg = config or TrainConfig()
    out = check_output(output, overwrite, resume)
    ctx = ddp.setup(cfg.device)
    try:
        run = Run(cfg, ctx, out, command)
        run.prepare(source, resume)
        return run.fit(progress, _stop_callable(stop))
    finally:
        ddp.cleanup(ctx)


def _stop_callable(stop):
    if stop is None:
        return lambda: False
    if hasattr(stop, "is_set"):
        return stop.is_set
    if callable(stop):
        return stop
    raise MedSegError("stop must be a callable or a threading.Event")

