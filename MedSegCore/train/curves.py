"""Training records: ``metrics.csv`` (one row per epoch) and ``curves.png`` (loss and Dice per epoch).

History rows are dicts: epoch, train_loss, val_dice ({label name: Dice} or None), val_dice_mean,
lr, seconds.  Both files are written atomically.  The plot uses matplotlib's Agg canvas directly,
so it never changes the application's matplotlib backend (Slicer has its own).
"""
from __future__ import annotations

import csv
import re

from ..image.io import atomic_path


def column(name: str) -> str:
    return "val_dice_" + (re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_") or "label")


def write_metrics_csv(path, history: list, label_names: list) -> None:
    cols = ["epoch", "train_loss"] + [column(n) for n in label_names] + ["val_dice_mean", "lr", "seconds"]
    with atomic_path(str(path)) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(cols)
        for row in history:
            dice = row.get("val_dice") or {}
            fmt = (lambda v: "" if v is None else f"{v:.6g}")
            w.writerow([row["epoch"], fmt(row.get("train_loss"))] + [fmt(dice.get(n)) for n in label_names]
                       + [fmt(row.get("val_dice_mean")), f"{row.get('lr', 0):.6g}", f"{row.get('seconds', 0):.2f}"])


def plot_curves(path, history: list, label_names: list, title: str = "") -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    epochs = [r["epoch"] for r in history]
    ax1.plot(epochs, [r.get("train_loss") for r in history], "-o", ms=2, color="tab:blue")
    ax1.set(xlabel="epoch", ylabel="training loss", title="Loss")
    ax1.grid(alpha=0.3)
    val = [r for r in history if r.get("val_dice")]
    for name in label_names:
        ax2.plot([r["epoch"] for r in val], [r["val_dice"].get(name) for r in val], "-o", ms=2, label=name)
    if len(label_names) > 1:
        ax2.plot([r["epoch"] for r in val], [r.get("val_dice_mean") for r in val], "k--", lw=1, label="mean")
    ax2.set(xlabel="epoch", ylabel="validation Dice", title="Validation Dice")
    ax2.grid(alpha=0.3)
    if val:
        ax2.legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(str(path)) as tmp:
        fig.savefig(tmp, format="png")
