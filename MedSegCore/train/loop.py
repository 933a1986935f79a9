"""One training run: set-up (data, network, optimiser, resume) and the epoch loop.  Used by
:func:`MedSegCore.train.engine.train`; see there for the behaviour."""
from __future__ import annotations

import copy
import itertools
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError, MedSegError, ParameterError
from ..image.io import atomic_path
from . import ddp
from .config import TrainConfig
from .curves import plot_curves, write_metrics_csv
from .data import load_data, network_spacing, split_cases, to_network_grid
from .engine import (CHECKPOINT, Progress, Schedule, TrainResult, _loss_fn, _rng_state, _seed_epoch, _set_rng_state,
                     validate)
from .network import build, dims_of, freeze_encoder, make_card, read_init, state_for_saving, transfer
from .transforms import Augmenter, PatchSampler, crop_size

log = logging.getLogger("medseg")
_STOPS = ["", "user", "time", "early stopping"]


class Run:
    def __init__(self, cfg: TrainConfig, ctx, out: Path, command: str | None):
        self.cfg, self.ctx, self.out, self.command = cfg, ctx, out, command
        self.transfer, self.seen, self.history = {}, [], []
        self.epoch0, self.best, self.best_epoch, self.bad, self.elapsed0 = 0, None, 0, 0, 0.0
        self.best_seen = None       # best validation mean so far (early stopping; = best unless select 'last')
        self.channel_names = None

    # -- set-up ------------------------------------------------------------------------------
    def prepare(self, source, resume: bool) -> None:
        cfg, ctx = self.cfg, self.ctx
        from monai.utils import set_determinism

        set_determinism(seed=cfg.seed)
        if not cfg.deterministic:
            torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = False, True
        init_card, init_state = read_init(cfg.init) if cfg.init else (None, None)
        arch = cfg.architecture()
        if init_card is not None and init_card.architecture:
            arch = copy.deepcopy(init_card.architecture)
            for key in ("in_channels", "out_channels"):
                arch.get("params", {}).pop(key, None)
            norm = init_card.normalization[0] if isinstance(init_card.normalization, list) else init_card.normalization
            dims = dims_of(arch)
            patch = cfg.patch if dims == cfg.dims else cfg.roi()[:dims]
            cfg = cfg.updated(dims=dims, patch=patch, normalization=norm,
                              orientation=init_card.orientation or cfg.orientation,
                              spacing=list(init_card.spacing) if init_card.spacing else cfg.spacing)
            self.channel_names = init_card.channel_names
            log.info("initialising from %s: its architecture, spacing and normalisation are used", cfg.init)
        from ..dnn.inference import roi_fits
        self.roi = cfg.roi()
        if not roi_fits(self.roi, arch.get("params", {}).get("strides", [])):
            raise ParameterError(f"patch {self.roi} must be divisible by the network's downsampling "
                                 f"(strides {arch['params'].get('strides')})")
        self.cfg, self.arch = cfg, arch
        data = load_data(source, cfg.labels)
        self.labels, self.source = data.labels, data.source
        n_classes = len(self.labels) + 1
        if cfg.sampler == "classes" and cfg.class_ratios and len(cfg.class_ratios) != n_classes:
            raise ParameterError(f"class_ratios: need {n_classes} values (background and {len(self.labels)} label(s))")
        train_idx, val_idx = split_cases(data, cfg.val_fraction, cfg.val_cases, cfg.seed)
        if not val_idx:
            log.warning("no validation cases: the model of the last epoch is kept")
        self.spacing = network_spacing(data, cfg)
        cases = [to_network_grid(c, self.labels, cfg, self.spacing) for c in data.cases]
        self.train_names = [cases[i].name for i in train_idx]
        self.train_cases, self.val_cases = [cases[i] for i in train_idx], [cases[i] for i in val_idx]
        self.train_global = train_idx
        self._card({})                                          # fail now, not after training
        torch.manual_seed(cfg.seed)
        net = build(arch, n_classes)
        if init_state is not None:
            self.transfer = transfer(net, init_state)
        self.frozen = freeze_encoder(net) if cfg.freeze_encoder else 0
        self.net = net.to(ctx.device)
        self.model = ddp.wrap(ctx, self.net)
        self.optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=cfg.lr,
                                          weight_decay=cfg.weight_decay)
        self.schedule = Schedule(cfg, self.optimizer)
        self.loss_fn = _loss_fn(cfg.loss)
        self.amp = bool(cfg.amp and ctx.device.type == "cuda")
        crop = crop_size(cfg.augment, cfg.dims, self.roi)
        nbytes = sum(c.image.nbytes + c.label.nbytes for c in self.train_cases)
        data_dev = ctx.device if ctx.device.type == "cuda" and nbytes < 4 * 2 ** 30 else torch.device("cpu")
        self.sampler = PatchSampler(self.train_cases, crop, n_classes, data_dev, cfg.sampler, cfg.pos_fraction,
                                    cfg.class_ratios, seed=cfg.seed)
        self.augment = Augmenter(cfg.augment, cfg.dims, self.roi, crop)
        from torch.utils.data.distributed import DistributedSampler
        self.dist_sampler = DistributedSampler(list(range(len(self.train_cases))), num_replicas=ctx.world,
                                               rank=ctx.rank, shuffle=True, seed=cfg.seed)
        self.steps = cfg.steps_per_epoch or math.ceil(len(self.dist_sampler) * cfg.samples_per_case / cfg.batch_size)
        if resume:
            self._load_checkpoint()
        if ctx.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            cfg.save(self.out / "train_config.json")
        ddp.barrier(ctx)
        log.info("training on %s: %d training / %d validation case(s), %d label(s), patch %s, %d step(s) per epoch%s",
                 ctx.device, len(self.train_cases), len(self.val_cases), len(self.labels), self.roi, self.steps,
                 f", {ctx.world} processes" if ctx.enabled else "")

    def _signature(self) -> str:
        return json.dumps({"arch": self.arch, "labels": [lab["name"] for lab in self.labels], "roi": self.roi})

    def _load_checkpoint(self) -> None:
        path = self.out / CHECKPOINT
        try:
            ck = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:                                              # noqa: BLE001
            raise InputError(f"cannot resume from {path}: {str(e).splitlines()[0]}") from None
        if ck.get("signature") != self._signature():
            raise MedSegError(f"cannot resume from {path}: it was made with another network, labels or patch size")
        self.net.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.schedule.load_state_dict(ck["schedule"])
        self.epoch0, self.best_epoch, self.bad = int(ck["epoch"]), int(ck["best_epoch"]), int(ck["bad_epochs"])
        self.best = None if ck["best_dice"] < 0 else float(ck["best_dice"])
        self.history, self.elapsed0 = list(ck["history"]), float(ck["elapsed"])
        seen = [r["val_dice_mean"] for r in self.history if r.get("val_dice_mean") is not None]
        self.best_seen = max(seen) if seen else None
        _set_rng_state(ck["rng"])
        log.info("resuming from epoch %d of %s", self.epoch0, path)

    # -- files (rank 0) ------------------------------------------------------------------------
    def _card(self, extra: dict) -> dict:
        versions = {"torch": torch.__version__}
        try:
            import monai
            versions["monai"] = monai.__version__
        except ImportError:                                                 # pragma: no cover
            pass
        last = next((r for r in reversed(self.history) if r.get("epoch") == self.best_epoch), {})
        training = {"command": self.command, "data": self.source, "config": self.cfg.to_dict(),
                    "cases": {"train": self.train_names, "validation": [c.name for c in self.val_cases]},
                    "best_epoch": self.best_epoch, "metrics": {"validation_dice": last.get("val_dice"),
                                                               "validation_dice_mean": last.get("val_dice_mean")},
                    "world_size": self.ctx.world, "device": str(self.ctx.device), "versions": versions,
                    "init": self.cfg.init, "frozen_encoder": bool(self.cfg.freeze_encoder), **extra}
        return make_card(self.cfg, self.arch, self.labels, self.spacing, self.roi, training, self.channel_names)

    def _write_model(self, extra: dict) -> None:
        with atomic_path(str(self.out / "model.pt")) as tmp:
            torch.save(state_for_saving(self.net), tmp)
        self._write_card(extra)

    def _write_card(self, extra: dict) -> None:
        with atomic_path(str(self.out / "card.json")) as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(self._card(extra), indent=2) + "\n")

    def _write_records(self, epoch: int, elapsed: float) -> None:
        names = [lab["name"] for lab in self.labels]
        write_metrics_csv(self.out / "metrics.csv", self.history, names)
        plot_curves(self.out / "curves.png", self.history, names, f"{self.cfg.name}: {self.cfg.loss} loss")
        ck = {"version": 1, "epoch": epoch, "model": state_for_saving(self.net),
              "optimizer": self.optimizer.state_dict(),
              "schedule": self.schedule.state_dict(), "best_dice": -1.0 if self.best is None else float(self.best),
              "best_epoch": self.best_epoch, "bad_epochs": self.bad, "history": self.history, "elapsed": elapsed,
              "rng": _rng_state(), "signature": self._signature()}
        with atomic_path(str(self.out / CHECKPOINT)) as tmp:
            torch.save(ck, tmp)

    def _debug_seen(self, epoch: int, seen: list) -> None:
        if self.cfg.debug_seen_file:
            with open(f"{self.cfg.debug_seen_file}.rank{self.ctx.rank}", "a", encoding="utf-8") as f:
                f.writelines(f"{epoch} {i}\n" for i in seen)

    # -- the loop ------------------------------------------------------------------------------
    def _batch(self, queue, rng, seen: list) -> tuple:
        cfg, imgs, labs, norms, need = self.cfg, [], [], [], self.cfg.batch_size
        while need > 0:
            j = next(queue)
            seen.append(self.train_global[j])
            k = min(cfg.samples_per_case, need)
            i_, l_ = self.sampler.sample(j, k, rng)
            imgs.append(i_)
            labs.append(l_)
            norms += [self.train_cases[j].norm] * k
            need -= k
        img, lab = torch.cat(imgs).to(self.ctx.device), torch.cat(labs).to(self.ctx.device)
        return self.augment(img, lab, norms, rng)

    def fit(self, progress, stop) -> TrainResult:
        cfg, ctx, steps = self.cfg, self.ctx, self.steps
        budget = cfg.max_minutes * 60 if cfg.max_minutes else None
        t0 = time.monotonic() - self.elapsed0
        last_s, stopped, epoch = None, "", self.epoch0
        for epoch in range(self.epoch0, cfg.epochs):
            te = time.monotonic()
            rng = _seed_epoch(cfg.seed, epoch, ctx.rank)
            self.dist_sampler.set_epoch(epoch)
            queue, seen = itertools.cycle(list(self.dist_sampler)), []
            elapsed = time.monotonic() - t0
            p0 = max(epoch / cfg.epochs, elapsed / budget if budget else 0.0)
            dp = max(1 / (cfg.epochs * steps), last_s / budget / steps if budget and last_s else 0.0)
            p0, dp, self.schedule.current = ddp.broadcast(ctx, [p0, dp, self.schedule.current])
            self.model.train()
            total, n = torch.zeros((), device=ctx.device), 0
            for step in range(steps):
                lr = self.schedule.lr_at(p0 + step * dp)
                for g in self.optimizer.param_groups:
                    g["lr"] = lr
                img, lab = self._batch(queue, rng, seen)
                self.optimizer.zero_grad(set_to_none=True)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp):
                    logits = self.model(img)
                loss = self.loss_fn(logits.float(), lab)
                loss.backward()
                self.optimizer.step()
                total, n = total + loss.detach(), n + 1
                want = 0
                if ctx.is_main:
                    want = 1 if stop() else 2 if budget and time.monotonic() - t0 > budget else 0
                want = int(ddp.broadcast(ctx, [want])[0]) if ctx.enabled else want
                if progress is not None and ctx.is_main:
                    progress(Progress(epoch + 1, cfg.epochs, step + 1, steps, loss.item(), lr,
                                      self._eta(te, step + 1, epoch, last_s, t0, budget)))
                if want:
                    stopped = _STOPS[want]
                    break
            train_loss = ddp.mean(ctx, float(total / max(n, 1)))
            val = None
            due = (epoch + 1) % cfg.val_every == 0 or epoch + 1 == cfg.epochs or stopped
            if ctx.is_main and self.val_cases and due:
                val = validate(self.model, self.val_cases, cfg, self.roi, self.labels, ctx.device, self.amp)
            val_mean = float(np.mean(list(val.values()))) if val else None
            better = val_mean is not None and (self.best_seen is None or val_mean > self.best_seen)
            improved = not self.val_cases or better
            if better:
                self.best_seen = val_mean
            if val_mean is not None:
                self.bad = 0 if improved else self.bad + 1
            if cfg.select == "last":        # every epoch replaces the model; validation only reports
                improved = True
            if improved:
                self.best, self.best_epoch = (val_mean if self.val_cases else self.best), epoch + 1
            self.schedule.epoch_end(val_mean)
            last_s = time.monotonic() - te
            self.history.append({"epoch": epoch + 1, "train_loss": train_loss, "val_dice": val,
                                 "val_dice_mean": val_mean, "lr": float(self.optimizer.param_groups[0]["lr"]),
                                 "seconds": last_s})
            self._debug_seen(epoch, seen)
            if ctx.is_main:
                if improved:
                    self._write_model({"epochs_run": epoch + 1})
                self._write_records(epoch + 1, time.monotonic() - t0)
            if not stopped and ctx.is_main:
                now = time.monotonic() - t0
                stopped = ("early stopping" if cfg.patience and self.bad >= cfg.patience else
                           "time" if budget and now + last_s > budget else "user" if stop() else "")
            stopped = _STOPS[int(ddp.broadcast(ctx, [_STOPS.index(stopped)])[0])] if ctx.enabled else stopped
            if progress is not None and ctx.is_main:
                progress(Progress(epoch + 1, cfg.epochs, steps, steps, train_loss, self.history[-1]["lr"],
                                  self._eta(te, steps, epoch, last_s, t0, budget), val, self.best_seen, True))
            if stopped:
                break
        seconds = time.monotonic() - t0
        if ctx.is_main:
            self._write_card({"epochs_run": len(self.history), "stopped": stopped, "seconds": round(seconds, 1)})
        ddp.barrier(ctx)
        best_row = next((r for r in self.history if r["epoch"] == self.best_epoch), {})
        return TrainResult(str(self.out), len(self.history), self.best_epoch, self.best, best_row.get("val_dice") or {},
                           self.history, stopped, seconds, self.transfer)

    def _eta(self, te, done_steps, epoch, last_s, t0, budget):
        per_step = (time.monotonic() - te) / max(done_steps, 1)
        epoch_s = last_s or per_step * self.steps
        eta = (self.steps - done_steps) * per_step + (self.cfg.epochs - epoch - 1) * epoch_s
        if budget:
            eta = min(eta, max(budget - (time.monotonic() - t0), 0.0))
        return eta
