"""``medseg evaluate``: per-segment metrics of a prediction against ground truth."""
from __future__ import annotations

import csv
import json
import logging
import os
import sys
import time

from ..evaluation import labels, metrics, report
from ..mrml import label_files
from ..image import io
from ..image.resample import resample
from ..image.atomic import check_folder_creatable, transaction, write_error
from ..errors import InputError, MedSegError, OutputError, ParameterError
from .common import REGULARIZE_HELP, check_output

log = logging.getLogger("medseg")
COLUMNS = [("dice", "Dice"), ("iou", "IoU"), ("precision", "Prec"), ("recall", "Recall"),
           ("specificity", "Spec"), ("f1", "F1"), ("accuracy", "Acc"), ("volume_pred_ml", "Vpred mL"),
           ("volume_ref_ml", "Vref mL"), ("volume_diff_ml", "dV mL"), ("hausdorff_mm", "HD mm"),
           ("hd95_mm", "HD95 mm"), ("assd_mm", "ASSD mm")]


def add_parser(sub):
    p = sub.add_parser(
        "evaluate", help="compare a segmentation with ground truth (Dice, IoU, HD95, ...)",
        description="Compare PRED with the ground truth GT: Dice, IoU, precision, recall, specificity, F1, "
                    "accuracy, volumes, Hausdorff, HD95 and ASSD (mm) per segment. Each may be a .seg.nrrd "
                    "or a DICOM SEG .dcm (segments matched by name), a NIfTI/NRRD label map (matched by label value) or a binary "
                    "mask; PRED is resampled onto GT's grid if they differ. With two folders, files with the "
                    "same case name are paired and a summary (mean ± sd) is printed.")
    p.add_argument("pred", metavar="PRED")
    p.add_argument("gt", metavar="GT")
    p.add_argument("--map", action="append", default=[], metavar="PRED=REF",
                   help="pair a prediction segment (name or value) with a reference one; repeatable")
    p.add_argument("--json", metavar="FILE", help="write all rows (and the summary) as JSON")
    p.add_argument("--csv", metavar="FILE", help="write all rows as CSV")
    p.add_argument("--image", metavar="VOLUME", help="greyscale image for --overlay/--report (default: none)")
    p.add_argument("--regularize", action="store_true", help="--image: " + REGULARIZE_HELP)
    p.add_argument("--overlay", metavar="PNG", help="montage: agreement, false positives, false negatives")
    p.add_argument("--report", metavar="DIR", help="write a self-contained HTML report (index.html) into DIR")
    p.add_argument("--no-distances", action="store_true", help="skip Hausdorff/HD95/ASSD")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.set_defaults(func=run)


def parse_mapping(items) -> dict | None:
    mapping = {}
    for item in items:
        if "=" not in item:
            raise ParameterError(f"--map '{item}': expected PRED=REF")
        a, b = item.split("=", 1)
        if not a.strip() or not b.strip():
            raise ParameterError(f"--map '{item}': expected PRED=REF with both sides given")
        mapping[int(a) if a.strip().isdigit() else a.strip()] = int(b) if b.strip().isdigit() else b.strip()
    return mapping or None


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"


def print_table(rows) -> None:
    header = f"{'case':<16} {'segment':<22}" + "".join(f" {title:>9}" for _, title in COLUMNS)
    print(header)
    for r in rows:
        d = r.to_dict()
        name = r.segment if r.pred_segment in (None, r.segment) else f"{r.pred_segment}->{r.segment}"
        print(f"{str(r.case)[:16]:<16} {str(name)[:22]:<22}" + "".join(f" {_fmt(d[k]):>9}" for k, _ in COLUMNS))
        if r.note:
            print(f"{'':<16} note: {r.note}")


def print_summary(summary) -> None:
    print("\nsummary (mean ± sd over cases)")
    for item in summary:
        if item["metric"] in ("dice", "iou", "hd95_mm", "assd_mm"):
            print(f"  {item['segment']:<22} {item['metric']:<10} {_fmt(item['mean'])} ± {_fmt(item['sd'])}"
                  f"  (n={item['n']}{', missing ' + str(item['missing']) if item['missing'] else ''})")


def write_tables(rows, summary, args) -> None:
    if args.json:
        with io.atomic_path(args.json) as tmp, open(tmp, "w", encoding="utf-8") as f:
            json.dump({"rows": [r.to_dict() for r in rows], "summary": summary}, f, indent=2)
    if args.csv:
        dicts = [r.to_dict() for r in rows]
        with io.atomic_path(args.csv) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(dicts[0]))
            writer.writeheader()
            writer.writerows(dicts)


def check_outputs(args) -> None:
    """Refuse, before any work, outputs that are inputs, sit in unusable folders or would be replaced."""
    inputs = {"prediction": args.pred, "reference": args.gt, "image": args.image}
    for path, exts, what in ((args.json, (".json",), "--json"), (args.csv, (".csv",), "--csv"),
                             (args.overlay, (".png",), "--overlay")):
        if path:
            check_output(path, exts, args.overwrite, what, inputs=inputs)
    if args.report:
        if os.path.exists(args.report) and not os.path.isdir(args.report):
            raise OutputError(f"--report {args.report}: is a file, not a folder")
        index = os.path.join(args.report, "index.html")
        if os.path.isdir(args.report):
            check_output(index, (".html",), True, "--report", inputs=inputs)
        else:
            check_folder_creatable(args.report, "--report")
        if os.path.exists(index) and not args.overwrite:
            raise OutputError(f"--report {args.report} already holds a report; pass --overwrite to replace it")
    if args.image and not (args.overlay or args.report):
        raise ParameterError("--image needs --overlay or --report (it is only drawn under the masks)")


def evaluate_cases(cases, mapping, args):
    """(rows, timings, last good case, number failed): a case that fails is reported in one line and
    the others go on (folder mode); with a single pair the error is raised."""
    rows, timings, last, failed = [], {}, None, 0
    for case, pred_path, ref_path in cases:
        start = time.perf_counter()
        try:
            case_rows, pred, ref = label_files.evaluate_files(pred_path, ref_path, mapping, not args.no_distances, case)
        except MedSegError as exc:
            if len(cases) == 1:
                raise
            failed += 1
            print(f"medseg evaluate: error: case {case}: {exc}", file=sys.stderr)
            continue
        timings[f"metrics {case}".strip()] = time.perf_counter() - start
        rows += case_rows
        last = (case_rows, pred, ref)
    if not rows:
        raise InputError(f"none of the {len(cases)} case(s) could be evaluated")
    return rows, timings, last, failed


def run(args) -> int:
    mapping = parse_mapping(args.map)
    check_outputs(args)
    if os.path.isdir(args.pred) != os.path.isdir(args.gt):
        folder, other = (args.pred, args.gt) if os.path.isdir(args.pred) else (args.gt, args.pred)
        if os.path.exists(other):
            raise ParameterError(f"{folder} is a folder but {other} is a file; give two files or two folders")
    image = io.read_volume(args.image, regularize=args.regularize) if args.image else None   # fails before any work
    folders = os.path.isdir(args.pred) and os.path.isdir(args.gt)
    cases = labels.pair_folders(args.pred, args.gt) if folders else [("", args.pred, args.gt)]
    rows, timings, last, failed = evaluate_cases(cases, mapping, args)
    print_table(rows)
    summary = metrics.summarize(rows) if folders else []
    if folders:
        print_summary(summary)
    with transaction():                  # all the outputs, or none of them
        write_tables(rows, summary, args)
        if args.overlay or args.report:
            write_figures(args, last, image, rows, timings)
    return 1 if failed else 0


def write_figures(args, last, image, rows, timings) -> None:
    case_rows, pred, ref = last
    if image is not None:
        img, g = image
        image = img if g.same_grid(ref.geometry) else resample(img, g, ref.geometry, "linear")
    pred_masks = labels.masks_of(pred, case_rows, "pred")
    ref_masks = labels.masks_of(ref, case_rows, "ref")
    if args.overlay:
        import numpy as np
        union_p = np.logical_or.reduce(list(pred_masks.values()))
        union_r = np.logical_or.reduce(list(ref_masks.values()))
        report.disagreement_overlay(image if image is not None else np.zeros(union_r.shape, np.float32),
                                    union_p, union_r, args.overlay)
        log.info("wrote %s", args.overlay)
    if args.report:
        try:
            os.makedirs(args.report, exist_ok=True)
        except OSError as exc:
            raise write_error(args.report, exc) from None
        path = report.write_report(args.report, rows, image, pred_masks, ref_masks, timings,
                                   title="MedSeg evaluation", figure_case=case_rows[0].case)
        log.info("wrote %s", path)
