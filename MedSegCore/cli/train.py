"""``medseg train``: train a U-Net on labelled volumes and write a model folder for ``medseg predict``.

Nothing here imports torch or MONAI until the command runs (the parser stays light).
"""
from __future__ import annotations

import logging
import os
import shlex
import sys

from ..errors import ParameterError

log = logging.getLogger("medseg")

# option -> TrainConfig field (values given on the command line override --config)
_FIELDS = {"dims": "dims", "epochs": "epochs", "init": "init", "loss": "loss", "val_fraction": "val_fraction",
           "device": "device", "seed": "seed", "batch": "batch_size", "lr": "lr", "max_minutes": "max_minutes",
           "steps_per_epoch": "steps_per_epoch", "val_cases": "val_cases", "name": "name"}


def add_parser(sub):
    p = sub.add_parser(
        "train", help="train a U-Net (MONAI) on labelled volumes; writes a model folder",
        description="Train a 2D (slice-wise) or 3D U-Net on image/label pairs and write MODEL_DIR: model.pt and "
                    "card.json (what MedSegCore.dnn.load_model, the MedSegDNN module and 'medseg predict' load), "
                    "metrics.csv, curves.png, train_config.json and checkpoint.pt (for --resume). "
                    "Works the same under 'torchrun --nproc_per_node N' (one process per GPU, or Gloo on the CPU).",
        epilog="DATA: a folder with imagesTr/ + labelsTr/ (nnU-Net/MSD layout, names from dataset.json), or "
               "<case>_image.nii.gz + <case>_label.nii.gz (or _label.seg.nrrd) files, or a datalist "
               "(.json list of {image, label} / MSD-style {training, validation}; "
               ".csv with image,label[,name][,split]). "
               "Labels of .seg.nrrd files are matched by segment name. Settings not given here come from --config "
               "(a TrainConfig JSON), else the defaults.")
    p.add_argument("--data", required=True, metavar="DIR|LIST", help="training data folder or datalist (.json/.csv)")
    p.add_argument("-o", "--output", required=True, metavar="MODEL_DIR", help="model folder to write")
    p.add_argument("--config", metavar="JSON", help="training configuration file (TrainConfig fields)")
    p.add_argument("--dims", type=int, choices=(2, 3),
                   help="2: slice-wise network on axial (I, J) patches; 3: volumetric")
    p.add_argument("--epochs", type=int, metavar="N")
    p.add_argument("--steps-per-epoch", type=int, metavar="N",
                   help="optimiser steps per epoch (default: one pass over the cases)")
    p.add_argument("--patch", metavar="SIZE",
                   help="patch size: one number or I,J[,K] (default 64,64,64; 2D: I,J, default 128,128)")
    p.add_argument("--batch", type=int, metavar="N", help="patches per step")
    p.add_argument("--lr", type=float, metavar="X", help="Adam learning rate (default 1e-4)")
    p.add_argument("--loss", choices=("dicece", "dice", "mse"), help="loss (default dicece: Dice + cross-entropy)")
    p.add_argument("--val-fraction", type=float, metavar="F",
                   help="share of cases held out for validation (default 0.2)")
    p.add_argument("--val-cases", nargs="+", metavar="CASE", help="use these cases for validation instead")
    p.add_argument("--init", metavar="default|PATH",
                   help="start from the bundled model ('default') or a model folder/.pt")
    p.add_argument("--freeze-encoder", action="store_true", help="with --init: keep the encoder (down path) fixed")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), help="default auto (CUDA when available)")
    p.add_argument("--seed", type=int, metavar="N")
    p.add_argument("--max-minutes", type=float, metavar="M", help="stop after this training time (best model is kept)")
    p.add_argument("--name", help="model name written into card.json")
    p.add_argument("--resume", action="store_true",
                   help="continue from MODEL_DIR/checkpoint.pt (settings from MODEL_DIR/train_config.json unless "
                        "--config is given; e.g. --resume --epochs 80 to train longer)")
    p.add_argument("--overwrite", action="store_true", help="replace the files of an existing model folder")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=run)


def config_from_args(args):
    from ..train.config import TrainConfig, load_config

    saved = os.path.join(args.output, "train_config.json")
    if args.config:
        cfg = load_config(args.config)
    elif args.resume and os.path.isfile(saved):
        cfg = load_config(saved)                    # resume with the settings the run started with
    else:
        cfg = TrainConfig()
    changes = {field: getattr(args, opt) for opt, field in _FIELDS.items() if getattr(args, opt, None) is not None}
    if args.freeze_encoder:
        changes["freeze_encoder"] = True
    if args.patch:
        try:
            size = [int(v) for v in args.patch.replace("x", ",").split(",")]
        except ValueError:
            raise ParameterError(f"--patch {args.patch!r}: expected a number or I,J[,K]") from None
        dims = changes.get("dims", cfg.dims)
        changes["patch"] = size * dims if len(size) == 1 else size
    elif changes.get("dims") == 2 and cfg.dims == 3 and len(cfg.patch) == 3:
        changes["patch"] = [max(cfg.patch[0], 128)] * 2
    if args.freeze_encoder and not changes.get("init", cfg.init):
        raise ParameterError("--freeze-encoder needs --init (a pretrained encoder to keep)")
    return cfg.updated(**changes)


def _command(args) -> str:
    parts = ["medseg", "train", "--data", args.data, "-o", args.output]
    for opt in ("config", "dims", "epochs", "steps_per_epoch", "patch", "batch", "lr", "loss", "val_fraction",
                "init", "device", "seed", "max_minutes", "name"):
        if getattr(args, opt, None) is not None:
            parts += ["--" + opt.replace("_", "-"), str(getattr(args, opt))]
    if args.val_cases:
        parts += ["--val-cases", *args.val_cases]
    parts += [f"--{f}" for f in ("freeze_encoder", "resume", "overwrite") if getattr(args, f)]
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    prefix = ["torchrun", f"--nproc_per_node={world}"] if world > 1 else []
    return shlex.join(prefix + [p.replace("_", "-") if p.startswith("--") else p for p in parts])


def _duration(seconds) -> str:
    if seconds is None:
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class ProgressLine:
    """One status line on stderr: rewritten in place on a terminal, one line per epoch otherwise."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.last_val = None

    def __call__(self, p) -> None:
        if p.val_dice:
            self.last_val = (p.val_dice, p.best_dice)
        if not (p.epoch_end or self.tty):
            return
        text = f"epoch {p.epoch}/{p.epochs} step {p.step}/{p.steps} loss {p.loss:.4f}"
        if self.last_val:
            dice, best = self.last_val
            text += " | val Dice " + ", ".join(f"{k} {v:.3f}" for k, v in dice.items())
            if best is not None:
                text += f" (best mean {best:.3f})"
        text += f" | lr {p.lr:.2e} | ETA {_duration(p.eta_s)}"
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if p.epoch_end else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def run(args) -> int:
    from ..dnn.dependencies import require

    require("medseg train")
    from ..train.engine import check_output, train

    cfg = config_from_args(args)
    check_output(args.output, args.overwrite, args.resume)
    if int(os.environ.get("RANK", "0") or 0) != 0:
        logging.getLogger("medseg").setLevel(logging.WARNING)
    progress = None if args.quiet else ProgressLine()
    result = train(args.data, args.output, cfg, resume=args.resume, overwrite=args.overwrite, progress=progress,
                   command=_command(args))
    if int(os.environ.get("RANK", "0") or 0) == 0:
        dice = ", ".join(f"{k} {v:.3f}" for k, v in result.val_dice.items())
        kind = "best" if cfg.select == "best" else "last epoch's"
        best = f"{kind} mean validation Dice {result.best_dice:.3f} at epoch {result.best_epoch} ({dice})" \
            if result.best_dice is not None else f"no validation cases; model of epoch {result.best_epoch}"
        why = f"; stopped: {result.stopped}" if result.stopped else ""
        log.info("wrote %s: %s; %d epoch(s) in %s%s", args.output, best, result.epochs_run,
                 _duration(result.seconds), why)
    return 0
