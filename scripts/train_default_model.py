#!/usr/bin/env python3
"""Train MedSeg's bundled brain-tissue model (1 Grey matter, 2 White matter) and evaluate it.

Data: the MNI152 2009 symmetric T1 template at 1 mm as shipped in nilearn (no download), with the
reference GM/WM = probability maps > 0.5 (the larger where both are; background otherwise).

Protocol (all in RAS millimetres, midline x = 0 from the template's affine):
  * training: the LEFT hemisphere only, x < -gap/2 (the rest of the volume is set to 0);
  * validation (best epoch) and the reported test: the RIGHT hemisphere, x > +gap/2, given to
    the model alone (the left half set to 0), and perturbed copies of it: gamma, a smooth bias
    field, noise, small rotations (image resampled linearly, reference and region by nearest
    neighbour with the same rotation);
  * NO left-right flip augmentation: the symmetric template's right hemisphere is the exact mirror
    image of the left one, so an L-R flip would put the test set into the training set.  The
    default config flips along no axis at all;
  * baseline: multi-Otsu (MedSegCore.threshold.autothreshold.multi_otsu, 4 classes over the held-out region:
    background/CSF/GM/WM, GM = class 3, WM = class 4; the order is checked and printed).

The shipped model (1.1.0) took two runs: stage 1 from scratch (stage1_config.json), stage 2
fine-tuning it with quarter turns in the axial plane (train_config.json, which names build/stage1).

Usage (from the repository root; slicer-core is not needed):
    python scripts/train_default_model.py --config MedSegCore/models/default/stage1_config.json \
        --device cuda --max-minutes 2.7 -o build/stage1
    python scripts/train_default_model.py --init build/stage1 --device cpu -o MedSegCore/models/default_new
    python scripts/train_default_model.py --smoke -o /tmp/default_smoke     # CPU, about 2 minutes
The output folder gets model.pt + card.json (loadable by MedSegCore.dnn.load_model), EVALUATION.md,
evaluation.json, metrics.csv, curves.png and train_config.json.  --max-minutes is the training time;
evaluation adds about a minute on a GPU.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from MedSegCore.image.geometry import Geometry  # noqa: E402
from MedSegCore.sample import NAMES, load_mni152 as load_template, otsu_labels, world_x  # noqa: E402

log = logging.getLogger("medseg")
CONFIG = ROOT / "MedSegCore" / "models" / "default" / "train_config.json"
DESCRIPTION = (
    "3D U-Net (MONAI) segmenting grey and white matter on skull-stripped T1-weighted MRI at 1 mm (RAS), "
    "trained by scripts/train_default_model.py on the LEFT hemisphere of the MNI152 2009 symmetric template "
    "(nilearn), reference = GM/WM probability maps > 0.5, and tested on the right hemisphere. No left-right flip "
    "augmentation was used: the template is symmetric, so the right hemisphere is the mirror image of the left "
    "and an L-R flip would leak the test set (quarter turns are rotations: they keep handedness). Trained on one "
    "template image only: expect it to work on template-like, skull-stripped T1 images, not on arbitrary scans.")
INTENDED_USE = "demonstration; not for clinical use"


# -- data ------------------------------------------------------------------------------------
def save_template(path: str) -> None:
    """Write the template arrays (IJK, as nibabel gives them) for a machine without nilearn."""
    from nilearn import datasets

    imgs = [datasets.load_mni152_template(resolution=1), datasets.load_mni152_gm_template(resolution=1),
            datasets.load_mni152_wm_template(resolution=1)]
    t1, gm, wm = (np.asarray(i.get_fdata(), dtype=np.float32) for i in imgs)
    np.savez_compressed(path, t1=t1, gm=gm, wm=wm, affine=imgs[0].affine)


def crop(arrays, keep: np.ndarray, geometry: Geometry, margin: int = 8) -> tuple:
    """``arrays`` cut to the bounding box of ``keep`` (+ margin), and the geometry of that box."""
    idx = np.argwhere(keep)
    lo = np.maximum(idx.min(0) - margin, 0)
    hi = np.minimum(idx.max(0) + margin + 1, keep.shape)
    sl = tuple(slice(a, b) for a, b in zip(lo, hi))
    origin = geometry.ijk_to_ras() @ np.array([lo[2], lo[1], lo[0], 1.0])
    g = Geometry((hi - lo)[::-1], geometry.spacing, origin[:3], geometry.direction)
    return [np.ascontiguousarray(a[sl]) for a in arrays], g


def hemisphere(t1, ref, region, geometry, name: str, margin: int | None = 8) -> dict:
    """The test/training input: image and reference set to 0 outside ``region``, cropped to the
    region's brain + ``margin`` voxels (None: not cropped, so that training patches see the
    hemisphere at every position, not always at the same distance from a volume border)."""
    arrays = [t1 * region, ref * region, region]
    if margin is None:
        (img, lab, reg), g = arrays, geometry
    else:
        (img, lab, reg), g = crop(arrays, region & (t1 != 0), geometry, margin)
    return {"image": img.astype(np.float32), "geometry": g, "label": lab.astype(np.uint8), "names": NAMES,
            "name": name, "region": reg}


# -- perturbations ---------------------------------------------------------------------------
def rotate(arrays, geometry: Geometry, degrees, orders) -> list:
    """Rotate arrays about the volume centre by RAS Euler angles (about x, y, z, in degrees)."""
    from scipy import ndimage

    ax, ay, az = (math.radians(d) for d in degrees)
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    m = geometry.ijk_to_ras()[:3, :3]
    r_ijk = np.linalg.inv(m) @ (rz @ ry @ rx) @ m                      # rotation in voxel (I, J, K) space
    r_kji = r_ijk[::-1, ::-1]
    inv = np.linalg.inv(r_kji)                                        # output voxel -> input voxel
    c = (np.array(geometry.shape) - 1) / 2
    return [ndimage.affine_transform(a.astype(np.float32), inv, offset=c - inv @ c, order=o, mode="constant",
                                     cval=0.0) for a, o in zip(arrays, orders)]


def perturbed_copies(t1, ref, right, geometry, quick: bool = False) -> list:
    """[(name, image, reference, region)] of the right hemisphere and its perturbations."""
    rng = np.random.default_rng(2009)
    brain = t1 > 0
    k, j, i = (np.linspace(-1, 1, n, dtype=np.float32) for n in t1.shape)
    z, y, x = np.meshgrid(k, j, i, indexing="ij")
    g = 0.5 * x + 0.4 * y - 0.35 * z + 0.3 * x * y - 0.25 * z * z
    bias = np.exp(math.log(1.25) * g / np.abs(g[brain]).max()).astype(np.float32)
    out = [("right hemisphere", t1, ref, right),
           ("gamma 0.7", t1 ** 0.7, ref, right),
           ("gamma 1.4", t1 ** 1.4, ref, right),
           ("bias field x0.8-1.25", t1 * bias, ref, right),
           ("noise sd 0.03", np.where(brain, t1 + rng.normal(0, 0.03, t1.shape).astype(np.float32), 0), ref, right)]
    for deg in ((2, 3, 5), (4, 6, 10)) if not quick else ((4, 6, 10),):
        img, lab, reg = rotate([t1, ref, right], geometry, deg, (1, 0, 0))
        out.append((f"rotation {deg[2]} deg (x {deg[0]}, y {deg[1]}, z {deg[2]})", img, lab.round().astype(np.uint8),
                    reg > 0.5))
    return out


# -- evaluation ------------------------------------------------------------------------------
def dice_table(pred, ref, region, geometry) -> dict:
    from MedSegCore.evaluation import metrics

    rows = metrics.evaluate(pred * region, ref * region, geometry, match="value", pred_names=NAMES,
                            ref_names=NAMES, distances=False)
    return {r.segment: round(float(r.dice), 4) for r in rows}


def evaluate(model_dir, t1, ref, geometry, left, right, device: str, quick: bool) -> dict:
    from MedSegCore.dnn import PredictOptions, load_model, predict

    model = load_model(model_dir, device=device)
    opts = PredictOptions(device=device, overlap=0.25 if quick else 0.5, sw_batch=4, blend="gaussian")
    rows, t0 = [], time.time()

    def run(name, image, reference, region, whole=False):
        if whole:
            case = {"image": image, "label": reference * region, "region": region, "geometry": geometry}
        else:
            case = hemisphere(image, reference, region, geometry, name)
        pred = predict([(case["image"], case["geometry"])], model, opts).labelmap
        otsu, _, _ = otsu_labels(case["image"], case["region"])
        row = {"case": name, "model": dice_table(pred, case["label"], case["region"], case["geometry"]),
               "multi_otsu": dice_table(otsu, case["label"], case["region"], case["geometry"])}
        log.info("%-45s model GM %.4f WM %.4f | multi-Otsu GM %.4f WM %.4f", name, row["model"]["Grey matter"],
                 row["model"]["White matter"], row["multi_otsu"]["Grey matter"], row["multi_otsu"]["White matter"])
        rows.append(row)

    for name, image, reference, region in perturbed_copies(t1, ref, right, geometry, quick):
        run(name, image, reference, region)
    if not quick:
        run("right hemisphere, whole head as input", t1, ref, right, whole=True)
    run("left hemisphere (TRAINING data, not held out)", t1, ref, left)
    return {"rows": rows, "seconds": round(time.time() - t0, 1), "overlap": opts.overlap}


def otsu_check(t1, ref, right, geometry) -> dict:
    """Mean intensity and reference overlap of each multi-Otsu class on the clean right hemisphere,
    and the label-informed variant (4 classes on non-zero voxels, classes 2+3 = GM) for context."""
    case = hemisphere(t1, ref, right, geometry, "check")
    _, cls, th = otsu_labels(case["image"], case["region"])
    lab = case["label"]
    classes = {int(c): {"mean": round(float(case["image"][cls == c].mean()), 3),
                        "share_gm": round(float((lab[cls == c] == 1).mean()), 3),
                        "share_wm": round(float((lab[cls == c] == 2).mean()), 3)} for c in range(1, 5)}
    from MedSegCore.threshold.autothreshold import multi_otsu

    nz = case["region"] & (case["image"] != 0)
    th2 = multi_otsu(case["image"], 4, mask=nz)
    c2 = (np.digitize(case["image"], th2, right=True) + 1) * nz
    tuned = np.zeros(lab.shape, np.uint8)
    tuned[(c2 == 2) | (c2 == 3)], tuned[c2 == 4] = 1, 2
    return {"thresholds": [round(t, 4) for t in th], "classes": classes,
            "tuned_variant": dice_table(tuned, lab, case["region"], case["geometry"])}


def write_report(path: Path, ev: dict, check: dict, info: dict) -> None:
    lines = ["# Evaluation of the MedSeg brain-tissue model", "",
             f"Model: `{info['name']}`, trained {info['train_minutes']:.1f} min on {info['device']} "
             f"({info['epochs']} epochs, {'best' if info['select'] == 'best' else 'weights of'} epoch "
             f"{info['best_epoch']}).  Command: `{info['command']}`", "",
             "Data: MNI152 2009 symmetric T1 template (nilearn, 1 mm). Reference: GM / WM probability maps > 0.5. "
             f"Training on the left hemisphere (x < -{info['gap_mm'] / 2:g} mm), test on the right hemisphere "
             f"(x > +{info['gap_mm'] / 2:g} mm), each given to the model alone (the other half set to 0).", "",
             "**No left-right flip augmentation** (no flips at all): the template is symmetric, its right hemisphere "
             "is the mirror image of the left, so an L-R flip would leak the test set into training (and an A-P or "
             "S-I flip of the left hemisphere equals the right one rotated by 180 degrees).  " + (
                 "The right hemisphere also served to pick the best epoch (validation), which makes its clean row "
                 "slightly optimistic; the perturbed copies were never seen during training." if info["select"] == "best"
                 else "The weights are the last epoch's: the right hemisphere only drew the learning curve and "
                 "picked nothing."), "",
             "Dice per label (MedSegCore.evaluation.metrics) inside the held-out region:", "",
             "| Test case | Model GM | Model WM | multi-Otsu GM | multi-Otsu WM |", "|---|---|---|---|---|"]
    for r in ev["rows"]:
        m, o = r["model"], r["multi_otsu"]
        lines.append(f"| {r['case']} | {m['Grey matter']:.4f} | {m['White matter']:.4f} | "
                     f"{o['Grey matter']:.4f} | {o['White matter']:.4f} |")
    cls = ", ".join(f"class {c}: mean {v['mean']}, GM {v['share_gm']:.0%}, WM {v['share_wm']:.0%}"
                    for c, v in check["classes"].items())
    lines += ["", "multi-Otsu: MedSegCore.threshold.autothreshold.multi_otsu with 4 classes over the held-out region "
              f"(background/CSF/GM/WM), GM = class 3, WM = class 4. Class check on the clean right hemisphere "
              f"(thresholds {check['thresholds']}): {cls}.",
              f"For context, a label-informed variant (4 classes on non-zero voxels, classes 2+3 merged as GM, "
              f"chosen by looking at the reference) reaches GM {check['tuned_variant']['Grey matter']:.4f} / "
              f"WM {check['tuned_variant']['White matter']:.4f} on the clean right hemisphere.", "",
              f"Sliding window: roi {info['roi']}, overlap {ev['overlap']}, Gaussian blending; evaluation took "
              f"{ev['seconds']:.0f} s.  Intended use: {INTENDED_USE}.", ""]
    path.write_text("\n".join(lines))


# -- main ------------------------------------------------------------------------------------
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-o", "--output", default=str(ROOT / "MedSegCore" / "models" / "default_new"))
    p.add_argument("--config", default=str(CONFIG), help="TrainConfig JSON (default: the shipped model's last "
                   "stage, train_config.json; stage1_config.json trains from scratch)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--max-minutes", type=float, help="training time budget (overrides the config)")
    p.add_argument("--gap-mm", type=float, default=4.0, help="gap left out at the midline (mm)")
    p.add_argument("--init", help="start from this model folder (fine-tuning; overrides the config's init)")
    p.add_argument("--select", choices=("best", "last"),
                   help="weights to ship: best validation Dice on the right hemisphere (the shipped config), or "
                        "the last epoch's, so that the test hemisphere only draws the learning curve")
    p.add_argument("--smoke", action="store_true", help="small, short CPU run to check the pipeline end to end")
    p.add_argument("--template", metavar="NPZ", help="read the template from this file instead of nilearn")
    p.add_argument("--save-template", metavar="NPZ", help="write the template arrays to NPZ and exit")
    p.add_argument("--keep-checkpoint", action="store_true", help="keep checkpoint.pt in the output folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output folder's files")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    if args.save_template:
        save_template(args.save_template)
        return 0
    from MedSegCore.cli.train import ProgressLine
    from MedSegCore.dnn.placeholder import CARD
    from MedSegCore.train import load_config, train

    t_start = time.time()
    cfg = load_config(args.config)
    changes = {"device": args.device, "max_minutes": args.max_minutes, "val_cases": ["right hemisphere"],
               "labels": CARD["labels"], "description": DESCRIPTION, "intended_use": INTENDED_USE}
    if args.select:
        changes["select"] = args.select
    if args.init:
        changes["init"] = args.init
    if args.smoke:
        changes.update(channels=[16, 32], patch=[32, 32, 32], batch_size=2, samples_per_case=2,
                       steps_per_epoch=40, epochs=100, val_overlap=0.25, max_minutes=args.max_minutes or 1.5,
                       name=cfg.name + " (smoke test)", init=args.init or "")   # a small network: from scratch
    cfg = cfg.updated(**changes)
    if any(a == 0 for a in cfg.augment.flips(cfg.dims)):
        raise SystemExit("refusing to train with left-right flips (axis 0): the symmetric template's right "
                         "hemisphere, the test set, is the mirror image of the training hemisphere")
    t1, ref, geometry = load_template(args.template)
    x = world_x(geometry)
    left, right = x < -args.gap_mm / 2, x > args.gap_mm / 2
    train_case = hemisphere(t1, ref, left, geometry, "left hemisphere", margin=None)
    val_case = hemisphere(t1, ref, right, geometry, "right hemisphere")
    items = [{k: c[k] for k in ("image", "geometry", "label", "names", "name")} for c in (train_case, val_case)]
    command = shlex.join(["python", "scripts/train_default_model.py"] + list(sys.argv[1:] if argv is None else argv))
    log.info("training on the left hemisphere %s, validating on the right %s", train_case["image"].shape,
             val_case["image"].shape)
    result = train(items, args.output, cfg, overwrite=args.overwrite, progress=ProgressLine(), command=command)
    out = Path(args.output)
    device = "cuda" if cfg.device == "cuda" or (cfg.device == "auto" and _cuda()) else "cpu"
    ev = evaluate(out, t1, ref, geometry, left, right, device, args.smoke)
    check = otsu_check(t1, ref, right, geometry)
    card = json.loads((out / "card.json").read_text())
    card["training"]["evaluation"] = {"protocol": "train: left hemisphere x < -gap/2; test: right hemisphere "
                                      "x > +gap/2 given alone; no flips (symmetric template)",
                                      "gap_mm": args.gap_mm, **ev, "multi_otsu_check": check}
    card["license"] = "Apache-2.0 (weights); MNI152 template: see its copyright notice (McConnell Brain Imaging Centre)"
    card["references"] = ["Fonov V. et al., Unbiased average age-appropriate atlases for pediatric studies, "
                          "NeuroImage 54(1), 2011; MNI ICBM152 2009 symmetric template via nilearn"]
    from MedSegCore.dnn.card import card_from_dict
    card_from_dict(card, "trained model card")
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    (out / "evaluation.json").write_text(json.dumps({"evaluation": ev, "multi_otsu_check": check}, indent=2) + "\n")
    info = {"name": card["name"], "train_minutes": result.seconds / 60, "device": device, "epochs": result.epochs_run,
            "best_epoch": result.best_epoch, "command": command, "gap_mm": args.gap_mm, "roi": card["roi_size"],
            "select": cfg.select}
    write_report(out / "EVALUATION.md", ev, check, info)
    if not args.keep_checkpoint and (out / "checkpoint.pt").exists():
        (out / "checkpoint.pt").unlink()
    log.info("wrote %s (model %.1f MB); total %.1f min", out, (out / "model.pt").stat().st_size / 2 ** 20,
             (time.time() - t_start) / 60)
    print((out / "EVALUATION.md").read_text())
    return 0


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


if __name__ == "__main__":
    sys.exit(main())
