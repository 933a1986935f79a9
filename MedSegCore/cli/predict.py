"""``medseg predict``: segment a batch of volumes with a deep-learning model into .seg.nrrd files."""
from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys

from ..errors import ParameterError
from ..image.atomic import check_folder_creatable, check_output_folder
from .common import REGULARIZE_HELP

log = logging.getLogger("medseg")

EPILOG = """examples:
  medseg predict scans/ -o results/
  medseg predict 'data/*.nii.gz' dicom/patient1 -o out --labelmap --overlay --device cuda
  medseg predict dicom/patient1 -o out --dicom-seg      (also out/patient1.dcm, a DICOM SEG for PACS)
  medseg predict 'imagesTs/*.nii.gz' -o out --channels _0000,_0001 --model mymodel/
  medseg predict ct.nii.gz -o out --model spleen_ct_segmentation/ --trust-bundle
  medseg predict 'brats/*_t1c.nii.gz' -o out --model brats_mri_segmentation/ \
      --channels T1c=_t1c,T1=_t1,T2=_t2,FLAIR=_flair
  medseg predict cohort/ -o out --num-parts 8 --part-id $SLURM_ARRAY_TASK_ID

MONAI bundles (a folder with configs/inference.json|yaml) run through their own config, exactly as
MONAI's ConfigWorkflow runs them: their preprocessing, inferer settings, network and post-processing
(--roi, --overlap, --sw-batch and --blend apply to model cards only).  --backend applies to a bundle
whose inferer is a 3D SlidingWindowInferer on the CPU (its windows, exported beside the bundle in
.medseg-cache); other inferers run on PyTorch.  A bundle's config is Python code,
so the first run of each bundle needs --trust-bundle (or MEDSEG_TRUST_BUNDLES=1); MedSeg then remembers
the bundle by its content hash in $MEDSEG_HOME/trusted_bundles.json (default ~/.medseg) and asks again
only if the bundle changes.  Interactive bundles (deepedit, vista3d) are refused.

A re-run skips cases whose OUT/<case>.seg.nrrd exists (--overwrite redoes them).  With --num-parts N
the cases are sorted by name and case i belongs to part i % N; part K's timings go to
OUT/timings_part<K>of<N>.csv.  Exit status:
0 all cases ok or skipped, 1 some case failed, 2 nothing could run (bad options, model or inputs)."""


def add_parser(sub):
    p = sub.add_parser(
        "predict", help="segment volumes with a deep-learning model (one .seg.nrrd per case)",
        description="Segment every INPUT case with a model and write OUT/<case>.seg.nrrd, with segments "
                    "named and coloured from the model card.  INPUT is a volume file (NIfTI, NRRD, "
                    "MetaImage), a folder (its volume files, and each DICOM series below it) or a glob "
                    "pattern (quote it).  Files in OUT are never taken as inputs.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="volume files, folders or glob patterns")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output folder (created if missing)")
    m = p.add_argument_group("model")
    m.add_argument("--model", default="default", metavar="default|NAME|PATH",
                   help="'default' (bundled model), the NAME of an installed model ('medseg models list'), "
                        "a card+weights folder, a .pt/.ts file or a MONAI bundle folder")
    m.add_argument("--trust-bundle", action="store_true",
                   help="run a MONAI bundle whose config (Python code) has not been trusted before, and "
                        "remember it by its content hash")
    m.add_argument("--device", default="auto", metavar="auto|cpu|cuda|mps", help="where to run (default: auto)")
    m.add_argument("--backend", default="auto", choices=("auto", "torch", "onnxruntime", "openvino"),
                   help="what runs the windows (default auto: OpenVINO, else ONNX Runtime, on the CPU when "
                        "installed, exported once and cached; PyTorch with AMP on CUDA/MPS)")
    m.add_argument("--channels", metavar="SUFFIX,...",
                   help="multi-channel models: files <case><SUFFIX>.<ext>, one suffix per model input "
                        "channel in order, e.g. _0000,_0001, or NAME=SUFFIX pairs naming the model's channels "
                        "(a bundle's channel_def), e.g. T1c=_t1c,T1=_t1,T2=_t2,FLAIR=_flair")
    i = p.add_argument_group("inference (model cards; a MONAI bundle uses its own inferer)")
    i.add_argument("--roi", nargs=3, type=int, metavar=("X", "Y", "Z"), help="window size (default: the card's)")
    i.add_argument("--overlap", type=float, default=0.25, help="window overlap, 0 <= overlap < 1 (default 0.25)")
    i.add_argument("--sw-batch", type=int, default=4, metavar="N", help="windows per forward pass (default 4)")
    i.add_argument("--blend", choices=("gaussian", "constant"), default="gaussian", help="window blending")
    c = p.add_argument_group("clean-up (per label)")
    c.add_argument("--largest-component", action="store_true", help="keep only the largest island")
    c.add_argument("--fill-holes", action="store_true", help="fill holes")
    c.add_argument("--min-size", type=float, default=0.0, metavar="MM3", help="remove islands smaller than MM3")
    o = p.add_argument_group("output")
    o.add_argument("--labelmap", action="store_true", help="also write the label map OUT/<case>.nii.gz")
    o.add_argument("--probabilities", action="store_true",
                   help="also write each label's probability map OUT/<case>_prob_<label>.nii.gz (float32)")
    o.add_argument("--overlay", action="store_true", help="also write a PNG montage OUT/<case>.png")
    o.add_argument("--dicom-seg", action="store_true",
                   help="also write OUT/<case>.dcm, a DICOM SEG referencing the case's DICOM series "
                        "(DICOM series inputs only; needs highdicom)")
    o.add_argument("--overwrite", action="store_true", help="redo cases whose .seg.nrrd exists")
    p.add_argument("--regularize", action="store_true", help=REGULARIZE_HELP)
    o.add_argument("--timings", metavar="CSV", help="append per-case timings here (default: OUT/timings.csv, "
                                                    "OUT/timings_part<K>of<N>.csv with --num-parts)")
    s = p.add_argument_group("splitting a cohort across machines")
    s.add_argument("--num-parts", type=int, default=1, metavar="N", help="split the cases into N parts (default 1)")
    s.add_argument("--part-id", type=int, default=0, metavar="K", help="run part K, 0 <= K < N (default 0)")
    p.set_defaults(func=run)


class Progress:
    """One updating line on a terminal; plain lines (each 10 %) otherwise."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.drawn, self.last = False, None

    def update(self, index, count, name, fraction, text):
        line = f"[{index + 1}/{count}] {name}: {int(fraction * 100):3d}% {text}"
        if self.tty:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write("\r" + line[:width] + "\x1b[K")
            self.stream.flush()
            self.drawn = True
        elif (index, int(fraction * 10)) != self.last:
            self.last = (index, int(fraction * 10))
            print(line, file=self.stream, flush=True)

    def line(self, text):
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.drawn = False
        print(text, file=self.stream, flush=True)


def _device_text(device) -> str:
    import torch

    if torch.cuda.is_available():
        found = f"CUDA found: {torch.cuda.get_device_name(0)}, {torch.cuda.device_count()} device(s)"
    else:
        found = "CUDA not found"
    return f"{device} ({found})"


def _memory_text(model, options, device) -> str:
    """Windows (fixed) plus the part that grows with the volume (stitched output and input)."""
    from ..dnn.inference import estimate_memory, human_bytes

    roi = tuple(options.roi or model.card.roi_size)
    est = estimate_memory(model, (100, 100, 100), roi, options.sw_batch, device)
    return (f"about {human_bytes(est.window_bytes)} for the windows (roi {'x'.join(map(str, roi))}, sw_batch "
            f"{options.sw_batch}) + {human_bytes(est.output_bytes + est.input_bytes)} per million voxels of input")


def summary_table(results) -> str:
    """Plain-text table: case, status, seconds, voxels per label (or the error)."""
    rows = [("case", "status", "seconds", "voxels per label / error")]
    for r in results:
        detail = (", ".join(f"{k}: {v}" for k, v in r.voxels.items()) if r.status == "ok"
                  else "exists" if r.status == "skipped" else r.error or "")
        rows.append((r.name, r.status, "-" if r.status == "skipped" else f"{r.seconds:.1f}", detail))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}  {d}".rstrip() for a, b, c, d in rows)


def _status_line(i, n, r) -> str:
    if r.status == "ok":
        vox = ", ".join(f"{k} {v}" for k, v in r.voxels.items())
        return f"[{i}/{n}] {r.name}: ok in {r.seconds:.1f} s ({vox} voxels)"
    if r.status == "skipped":
        return f"[{i}/{n}] {r.name}: skipped (exists)"
    return f"[{i}/{n}] {r.name}: FAILED: {r.error}"


def _channel_suffixes(text: str, card) -> list:
    """Suffixes in the model's channel order from 'S1,S2' or 'NAME=S1,NAME=S2' (names from the card)."""
    items = [s.strip() for s in text.split(",")]
    named = ["=" in s for s in items]
    if any(named) and not all(named):
        raise ParameterError(f"--channels {text!r}: give either all suffixes or all NAME=SUFFIX pairs")
    pairs = [s.split("=", 1) for s in items] if all(named) else [(None, s) for s in items]
    suffixes = [s.strip() for _, s in pairs]
    if not all(suffixes) or len(set(suffixes)) != len(suffixes):
        raise ParameterError(f"--channels {text!r}: expected distinct, non-empty suffixes")
    if card is None:
        return suffixes
    if len(suffixes) != card.in_channels:
        raise ParameterError(f"--channels gives {len(suffixes)} suffix(es) but model {card.name!r} "
                             f"has {card.in_channels} input channel(s)"
                             + (f" ({', '.join(card.channel_names)})" if card.channel_names else ""))
    if not all(named):
        return suffixes
    known = {n.lower(): i for i, n in enumerate(card.channel_names or [])}
    order = [None] * len(suffixes)
    for name, suffix in pairs:
        i = known.get(name.strip().lower())
        if i is None or order[i] is not None:
            raise ParameterError(f"--channels: {name.strip()!r} is not a channel of model {card.name!r} (its channels: "
                                 f"{', '.join(card.channel_names or []) or 'unnamed'}), or is given twice")
        order[i] = suffix.strip()
    return order


def run(args) -> int:
    from ..dnn.dependencies import require

    require("medseg predict")
    from ..catalog import resolve_model
    from ..dnn import PredictOptions, batch
    from ..dnn.backends import resolve as resolve_backend
    from ..dnn.inference import resolve_device
    from ..dnn.loading import load_model

    out = args.output
    if os.path.exists(out) and not os.path.isdir(out):
        raise ParameterError(f"-o {out}: exists and is not a folder")
    check_folder_creatable(out, "-o")
    parts = (args.num_parts, args.part_id)
    batch.select_part([], *parts)                                    # bad --num-parts / --part-id: say so now
    name = "timings.csv" if parts[0] == 1 else f"timings_part{parts[1]}of{parts[0]}.csv"
    timings = args.timings or os.path.join(out, name)
    if args.timings:
        check_output_folder(timings)
    popts = PredictOptions(roi=tuple(args.roi) if args.roi else None, overlap=args.overlap, sw_batch=args.sw_batch,
                           blend=args.blend, device=args.device, backend=args.backend,
                           probabilities=args.probabilities,
                           largest_component=args.largest_component, fill_holes=args.fill_holes,
                           min_size_mm3=args.min_size)
    if args.channels is not None:
        _channel_suffixes(args.channels, None)                 # bad syntax fails before the model loads
    device = resolve_device(args.device)
    backend = resolve_backend(args.backend, device)                # a model from disk: exportable
    model = load_model(resolve_model(args.model), device, trust=True if args.trust_bundle else None)
    card = model.card
    batch.check_options(popts, card, None if model.kind == "bundle" else model, device)   # a bundle: its own inferer
    channels = _channel_suffixes(args.channels, card) if args.channels else None
    if channels is None and card.in_channels > 1:
        raise ParameterError(f"model {card.name!r} needs {card.in_channels} input channels "
                             f"({', '.join(card.channel_names or [])}); name them with --channels SUFFIX,... "
                             "or NAME=SUFFIX,...")
    cases = batch.expand_inputs(args.inputs, channels, exclude=out)
    total = len(cases)
    cases = batch.select_part(cases, *parts)
    options = batch.BatchOptions(out, popts, args.labelmap, args.overlay, args.overwrite, timings, args.dicom_seg,
                                 regularize=args.regularize)
    batch.check_plan(cases, card.labels, options, None if args.model == "default" else args.model)
    os.makedirs(out, exist_ok=True)

    log.info("model: %s %s (%s, %s)%s", card.name, card.version, model.kind, model.source,
             "" if card.trained else " - NOT TRAINED")
    if model.kind == "bundle":
        log.info("bundle: %s; its own pipeline, inferer %s", model.info.describe(), model.describe_inferer())
    if channels:
        log.info("channels: %s", ", ".join(f"{n}={s}" for n, s in zip(card.channel_names or range(len(channels)),
                                                                      channels)))
    if not card.trained:
        log.warning("WARNING: %r is an UNTRAINED PLACEHOLDER model: its segmentations are MEANINGLESS "
                    "(use --model PATH for a real model)", card.name)
    if model.kind == "bundle":                                       # its windows, when its inferer allows
        backend = model.backend_for(args.backend)
    log.info("device: %s; backend: %s", _device_text(device), backend)
    if model.kind != "bundle":
        log.info("memory: %s", _memory_text(model, popts, device))
    done = sum(os.path.exists(batch.plan_outputs(c.name, card.labels, options)["seg"]) for c in cases)
    if parts[0] > 1:
        log.info("part %d of %d (0-based): %d of the %d case(s)", parts[1], parts[0], len(cases), total)
    log.info("%d case(s) -> %s%s", len(cases), out,
             f" ({done} done already: {'redone (--overwrite)' if args.overwrite else 'skipped'})" if done else "")

    printer, results = Progress(), []
    try:
        for r in batch.iter_batch(cases, model, options, progress=printer.update):
            results.append(r)
            printer.line(_status_line(len(results), len(cases), r))
            for text in r.messages:
                if text.startswith("Out of memory"):
                    log.warning("%s: %s", r.name, text)
    except KeyboardInterrupt:
        printer.line(f"interrupted after {len(results)} of {len(cases)} case(s); run again to resume")
        print(summary_table(results))
        raise
    print(summary_table(results))
    counts = {s: sum(r.status == s for r in results) for s in ("ok", "skipped", "failed")}
    log.info("%d ok, %d skipped, %d failed; timings in %s", counts["ok"], counts["skipped"], counts["failed"], timings)
    return 1 if counts["failed"] else 0
