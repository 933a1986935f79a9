"""``medseg demo``: the main job end to end on the bundled sample (MNI152 T1 from nilearn)."""
from __future__ import annotations

import importlib.util
import logging
import os
import time


from ..image import io
from ..evaluation import metrics, overlay, report
from ..mrml import nodes, segment_ops
from .. import sample
from ..threshold import engine
from .common import to_rgb255

log = logging.getLogger("medseg")


def add_parser(sub):
    p = sub.add_parser(
        "demo", help="run the main job on the bundled sample and write the results to a folder",
        description="Read the MNI152 2009 T1 template that ships with nilearn, threshold it (brain tissue, and a "
                    "multi-Otsu grey/white-matter baseline), run the bundled network, and evaluate both against "
                    "the template's grey/white-matter maps on the right hemisphere (held out from training). "
                    "Writes .seg.nrrd files, overlays and an HTML report; files of these names in the output "
                    "folder are replaced.")
    p.add_argument("--output", "-o", default="out", metavar="DIR", help="output folder (default: out)")
    p.add_argument("--device", default="auto", help="device for the network: auto, cpu, cuda, mps")
    p.add_argument("--no-dnn", action="store_true", help="skip the network (threshold only)")
    p.set_defaults(func=run)


def _write_seg(labels, geometry, reference, path, names=sample.NAMES):
    seg = nodes.new_segmentation_node(os.path.basename(path).split(".")[0], reference)
    nodes.write_label_segments(seg, labels, geometry, [(v, n, sample.COLORS.get(v)) for v, n in names.items()],
                              replace=True)
    nodes.save_segmentation(seg, path)
    return seg


def _overlay(t1, labels, path):
    layers = [(labels == v, to_rgb255(c), 0.5) for v, c in ((1, (0.2, 0.6, 1.0)), (2, (1.0, 0.85, 0.2)))]
    overlay.montage(t1, layers, path)


def run(args) -> int:
    out = args.output
    os.makedirs(out, exist_ok=True)
    timings = {}
    start = time.perf_counter()
    t1, ref, geometry = sample.load_mni152()
    left, right = sample.hemispheres(geometry)
    timings["read sample"] = time.perf_counter() - start
    log.info("sample: MNI152 2009 T1, %s voxels, %s mm, %s", "x".join(map(str, geometry.size)),
             "x".join(f"{s:g}" for s in geometry.spacing), geometry.axis_codes())
    io.write_volume(t1, geometry, os.path.join(out, "mni152_t1.nrrd"))
    volume = nodes.add_volume_node(t1, geometry, "mni152_t1")
    _write_seg(ref, geometry, volume, os.path.join(out, "reference.seg.nrrd"))

    # Threshold: brain tissue (Otsu against background), then the multi-Otsu GM/WM baseline.
    start = time.perf_counter()
    brain_path = os.path.join(out, "brain_tissue.seg.nrrd")
    seg, [brain] = segment_ops.apply_threshold(volume, engine.ThresholdParameters(
        method="otsu", name="Brain tissue", color=(0.9, 0.4, 0.3),
        cleanup=engine.CleanupOptions(largest_component=True)))
    nodes.save_segmentation(seg, brain_path)
    overlay.montage(t1, [(brain.mask, (230, 100, 80), 0.5)], os.path.join(out, "brain_tissue.png"))
    log.info("brain tissue: threshold %.4g .. %.4g -> %.1f mL; wrote %s", brain.lower, brain.upper,
             brain.volume_ml, brain_path)
    otsu, _, cuts = sample.otsu_labels(t1, right)
    timings["threshold"] = time.perf_counter() - start
    _write_seg(otsu, geometry, volume, os.path.join(out, "threshold_baseline.seg.nrrd"))
    _overlay(t1, otsu, os.path.join(out, "threshold_baseline.png"))
    log.info("multi-Otsu baseline (right hemisphere): thresholds %s", ", ".join(f"{c:.4g}" for c in cuts))

    results = {"multi-Otsu (MedSeg Threshold)": otsu}
    if not args.no_dnn:
        if importlib.util.find_spec("torch") is None or importlib.util.find_spec("monai") is None:
            log.warning("PyTorch/MONAI not installed: skipping the network (install with pip install torch monai)")
        else:
            from ..dnn import PredictOptions, load_model, predict

            start = time.perf_counter()
            model = load_model("default", device="cpu")
            prediction = predict([(t1, geometry)], model, PredictOptions(device=args.device))
            timings["network"] = time.perf_counter() - start
            for message in prediction.messages:
                log.info("%s", message)
            _write_seg(prediction.labelmap, geometry, volume, os.path.join(out, "dnn.seg.nrrd"))
            _overlay(t1, prediction.labelmap, os.path.join(out, "dnn.png"))
            results[f"U-Net ({model.card.name})"] = prediction.labelmap

    start = time.perf_counter()
    rows = []
    for method, labels in results.items():
        rows += metrics.evaluate(labels * right, ref * right, geometry.spacing, match="value",
                                 pred_names=sample.NAMES, ref_names=sample.NAMES, case=method)
    timings["evaluation"] = time.perf_counter() - start
    print("\nDice on the right hemisphere (held out), reference = template GM/WM maps > 0.5")
    print(f"{'method':<44} {'segment':<14} {'Dice':>7} {'IoU':>7} {'HD95 mm':>8}")
    for r in rows:
        hd95 = "-" if r.hd95_mm is None else f"{r.hd95_mm:.2f}"
        print(f"{r.case:<44} {r.segment:<14} {r.dice:7.4f} {r.iou:7.4f} {hd95:>8}")
    last = list(results.values())[-1]
    pred_masks = {f"{n}": (last * right) == v for v, n in sample.NAMES.items()}
    ref_masks = {f"{n}": (ref * right) == v for v, n in sample.NAMES.items()}
    path = report.write_report(os.path.join(out, "report"), rows, t1, pred_masks, ref_masks, timings,
                               title="MedSeg demo: MNI152 grey and white matter, right hemisphere",
                               figure_case=list(results)[-1], summary=False)
    log.info("wrote %s (overlays show %s)", path, list(results)[-1])
    log.info("all results are in %s/", out)
    return 0
