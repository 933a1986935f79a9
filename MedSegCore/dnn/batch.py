"""Batch prediction without Qt: expand inputs into cases, plan outputs, skip finished cases, run each
case (a failing case never stops the batch), write its files atomically and collect timings.

A case's ``.seg.nrrd`` is written last, so its presence marks a finished case (resume); a case's
files are renamed into place together, only once all are written and verified, so a case that fails
part-way leaves nothing (and the old files of a re-run stay).  The model is loaded once by the caller.
"""
from __future__ import annotations

import csv
import glob
import logging
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..image import io
from ..image.atomic import append_row, transaction
from ..errors import CancelledError, InputError, MedSegError, ParameterError
from .predict import PredictOptions, predict

log = logging.getLogger("medseg")
TIMING_KEYS = ("read", "preprocess", "inference", "postprocess", "write", "total")


@dataclass
class Case:
    """``name`` (output file stem), one (path, DICOM series UID or None) per input channel, and
    ``error`` when the case cannot run (missing file or channel)."""

    name: str
    sources: list
    error: str | None = None


@dataclass
class BatchOptions:
    output_dir: str
    predict: PredictOptions = field(default_factory=PredictOptions)
    labelmap: bool = False
    overlay: bool = False
    overwrite: bool = False
    timings_csv: str | None = None
    dicom_seg: bool = False            # also OUT/<case>.dcm, a DICOM SEG on the case's DICOM series
    regularize: bool = False           # irregular DICOM series: resample (io.read_volume) instead of failing


@dataclass
class CaseResult:
    """``status`` is 'ok', 'skipped' or 'failed'; ``voxels`` label name -> count; ``error`` one line."""

    name: str
    status: str
    seconds: float = 0.0
    voxels: dict = field(default_factory=dict)
    error: str | None = None
    outputs: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)
    messages: list = field(default_factory=list)


def case_name(path: str) -> str:
    """File name without its (double) extension, or the folder name."""
    base = os.path.basename(os.path.normpath(str(path)))
    ext = io.extension(base)
    return base[:-len(ext)] if ext and len(ext) < len(base) else base


def _inside(path: str, folder: str | None) -> bool:
    if folder is None:
        return False
    p, f = os.path.realpath(path), os.path.realpath(folder)
    return p == f or p.startswith(f.rstrip(os.sep) + os.sep)


def _is_volume(path: str) -> bool:
    return (os.path.isfile(path) and io.extension(path) in io.VOLUME_EXTENSIONS
            and not os.path.basename(path).startswith("."))


def _short_uids(uids) -> dict:
    """Last 8 digits of each series UID, or the whole UID (no dots) where those clash."""
    short = {u: u.replace(".", "")[-8:] for u in uids}
    return short if len(set(short.values())) == len(short) else {u: u.replace(".", "") for u in uids}


def _folder_entries(folder: str, exclude: str | None) -> list:
    """(name, path, series UID) for the volume files in ``folder`` and each DICOM series below it."""
    found = [(case_name(p), p, None) for p in sorted(glob.glob(os.path.join(glob.escape(folder), "*")))
             if _is_volume(p) and not _inside(p, exclude)]
    others = any(not f.startswith(".") and io.extension(f) not in io.VOLUME_EXTENSIONS + io.COMPANION_EXTENSIONS
                 for root, _, files in os.walk(folder) if not _inside(root, exclude) for f in files)
    if others:                                          # only scan for DICOM if there is something else
        with io.captured_stderr():                     # GDCM's "No Series were found" when there are none
            series = io._dicom_series(folder)
        base, short = os.path.basename(os.path.abspath(folder)), _short_uids(series)
        found += [(base if len(series) == 1 else f"{base}_{short[uid]}", folder, uid) for uid in sorted(series)]
    return found


def _group_channels(entries, channels) -> list:
    """Group files named <case><suffix>.<ext> into multi-channel cases, one suffix per channel."""
    groups, cases = {}, []
    for name, path, uid in entries:
        suffix = max((s for s in channels if name.endswith(s) and len(name) > len(s)), key=len, default=None)
        if uid is not None:
            cases.append(Case(name, [(path, uid)]))
        elif suffix is None:
            log.warning("%s: name ends with none of the --channels suffixes %s; ignored", path, ",".join(channels))
        else:
            groups.setdefault(name[:-len(suffix)], {}).setdefault(channels.index(suffix), []).append(path)
    for name, chans in groups.items():
        missing = [s for i, s in enumerate(channels) if i not in chans]
        twice = [s for i, s in enumerate(channels) if len(chans.get(i, ())) > 1]
        error = (f"missing channel file(s) {', '.join(name + s + '.*' for s in missing)}" if missing else
                 f"several files for channel(s) {', '.join(twice)}" if twice else None)
        cases.append(Case(name, [(chans[i][0], None) if i in chans else (None, None)
                                 for i in range(len(channels))], error))
    return cases


def _make_unique(cases) -> list:
    """Prefix clashing case names with their parent folder, then number what still clashes."""
    counts, seen = Counter(c.name for c in cases), Counter()
    for c in cases:
        if counts[c.name] > 1 and c.sources[0][0]:
            c.name = f"{case_name(os.path.dirname(os.path.abspath(c.sources[0][0])))}_{c.name}"
    for c in cases:
        seen[c.name] += 1
        if seen[c.name] > 1:
            c.name = f"{c.name}_{seen[c.name]}"
    return cases


def expand_inputs(patterns, channels=None, exclude: str | None = None) -> list:
    """Cases from files, folders (volume files inside, every DICOM series below) and glob patterns.
    Files and folders found inside ``exclude`` (the output folder) are left out unless named
    explicitly.  A named path that does not exist becomes a failing case; no input at all is an error."""
    entries, missing = [], []
    for pattern in map(str, patterns):
        pattern = os.path.expanduser(pattern)
        explicit = os.path.exists(pattern)
        if not explicit and not any(c in pattern for c in "*?["):
            missing.append(pattern)
            continue
        paths = [pattern] if explicit else sorted(glob.glob(pattern, recursive=True))
        if not paths:
            log.warning("%s: matched nothing", pattern)
        for p in paths:
            if os.path.isdir(p):
                if explicit or not _inside(p, exclude):
                    entries += _folder_entries(p, exclude)
            elif explicit or (_is_volume(p) and not _inside(p, exclude)):
                entries.append((case_name(p), p, None))
    seen, unique = set(), []
    for name, path, uid in entries:
        key = (os.path.realpath(path), uid)
        if key not in seen:
            seen.add(key)
            unique.append((name, path, uid))
    if not unique:
        raise InputError(f"no input volumes found in {', '.join(map(str, patterns))}"
                         + (f" (files in the output folder {exclude} are ignored)" if exclude else ""))
    cases = _group_channels(unique, channels) if channels else [Case(n, [(p, u)]) for n, p, u in unique]
    cases += [Case(case_name(p), [(p, None)], f"{p}: no such file or folder") for p in missing]
    return _make_unique(cases)


def select_part(cases, num_parts: int = 1, part_id: int = 0) -> list:
    """Part ``part_id`` of ``num_parts`` of ``cases``: cases sorted by name, case i goes to part
    i % num_parts (nnU-Net's ``[part_id::num_parts]`` over sorted cases, nnunetv2
    inference/predict_from_raw_data.py), so the parts are disjoint, cover every case and do not
    depend on the order the inputs were given in."""
    if int(num_parts) < 1:
        raise ParameterError(f"--num-parts must be >= 1, got {num_parts}")
    if not 0 <= int(part_id) < int(num_parts):
        raise ParameterError(f"--part-id must be 0 .. {int(num_parts) - 1} for --num-parts {num_parts}, got {part_id}")
    return sorted(cases, key=lambda c: c.name)[int(part_id)::int(num_parts)]


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "label"


def plan_outputs(name: str, labels, options: BatchOptions) -> dict:
    """Paths a case writes: 'seg', and 'labelmap', 'overlay', 'dicom_seg', 'probabilities' {label: path}
    if asked."""
    out = lambda suffix: os.path.join(options.output_dir, name + suffix)   # noqa: E731
    plan = {"seg": out(".seg.nrrd")}
    if options.labelmap:
        plan["labelmap"] = out(".nii.gz")
    if options.overlay:
        plan["overlay"] = out(".png")
    if options.dicom_seg:
        plan["dicom_seg"] = out(".dcm")
    if options.predict.probabilities:
        plan["probabilities"] = {lab.name: out(f"_prob_{safe_name(lab.name)}.nii.gz") for lab in labels}
    return plan


def check_plan(cases, labels, options: BatchOptions, model_source: str | None = None) -> None:
    """Refuse outputs (and the timings CSV) that would overwrite an input, the model or another
    case's output, and DICOM SEG outputs for cases that are not DICOM series."""
    if options.dicom_seg and options.regularize:
        raise ParameterError("--dicom-seg with --regularize: a SEG's frames refer to the source slices one by one, "
                             "and regularizing resamples them onto other slices; drop one of the two")
    if options.dicom_seg:
        from ..image import dicom_seg

        files = [c.name for c in cases if not c.error and c.sources[0][1] is None]     # no series UID: a file
        if files:
            raise ParameterError(f"--dicom-seg: a DICOM SEG needs a DICOM series as input; case(s) "
                                 f"{', '.join(files)} are files (leave them out or drop --dicom-seg)")
        dicom_seg.require_highdicom()
    inputs = {os.path.realpath(p) for c in cases for p, _ in c.sources if p}
    protected = [("input", p) for c in cases for p, _ in c.sources if p]
    if model_source and os.path.exists(model_source):
        files = os.listdir(model_source) if os.path.isdir(model_source) else ()
        protected += [("model", model_source)] + [("model", os.path.join(model_source, f)) for f in files]
        inputs |= {os.path.realpath(p) for _, p in protected}
    if options.timings_csv:
        from ..image.atomic import check_not_input
        check_not_input(options.timings_csv, protected, "--timings")
    seen = set()
    for c in cases:
        plan = plan_outputs(c.name, labels, options)
        paths = [v for v in plan.values() if isinstance(v, str)] + list(plan.get("probabilities", {}).values())
        for p in map(os.path.realpath, paths):
            if p in inputs or p in seen:
                raise ParameterError(f"output {p} would overwrite an input or another output; choose another -o")
            seen.add(p)


def check_options(options: PredictOptions, card, model=None, device=None) -> None:
    """Raise ParameterError for options that would make every case fail (with ``model``: also windows
    that cannot fit the device's memory)."""
    from .inference import BLEND_MODES
    from .predict import _check

    if not 0 <= options.overlap < 1:
        raise ParameterError(f"--overlap must be >= 0 and < 1, got {options.overlap}")
    if options.sw_batch < 1:
        raise ParameterError(f"--sw-batch must be >= 1, got {options.sw_batch}")
    if options.blend not in BLEND_MODES:
        raise ParameterError(f"--blend must be one of {', '.join(BLEND_MODES)}, got {options.blend!r}")
    roi = _check(options, card)
    if model is not None:
        from .inference import check_windows_fit, resolve_device
        check_windows_fit(model, roi, options.sw_batch, resolve_device(device or options.device))


def _one_line(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [""])[0]
    return text if isinstance(exc, MedSegError) else f"{type(exc).__name__}: {text}".rstrip(": ")


def _write(inputs, pred, plan: dict, name: str, written: list, case: Case | None = None, card=None) -> None:
    from ..mrml import dicom_export, nodes
    from ..mrml.predictions import label_specs, model_tags
    from ..evaluation import overlay
    from ..image.dicom_seg import Algorithm

    geometry = pred.geometry or inputs[0][1]          # a bundle without Invertd answers on its own grid
    for label, path in plan.get("probabilities", {}).items():
        if label in (pred.probabilities or {}):       # a bundle may give none (see its messages)
            io.write_volume(pred.probabilities[label].astype(np.float32, copy=False), geometry, path)
            written.append(path)
    if "labelmap" in plan:
        io.write_volume(pred.labelmap, geometry, plan["labelmap"])
        written.append(plan["labelmap"])
    if "overlay" in plan and geometry.same_grid(inputs[0][1]):
        layers = [(pred.labelmap == lab.value, tuple(int(round(c * 255)) for c in lab.color), 0.5)
                  for lab in pred.labels]
        overlay.montage(inputs[0][0], layers, plan["overlay"])
        written.append(plan["overlay"])
    seg = nodes.new_segmentation_node(name, geometry)
    try:
        nodes.write_label_segments(seg, pred.labelmap, geometry, label_specs(pred.labels),
                                   tags=model_tags(pred.model_name))
        if "dicom_seg" in plan:                   # on the first channel's series, whose grid the result is on
            folder, uid = case.sources[0]
            dicom_export.save_dicom_seg(seg, geometry, plan["dicom_seg"], folder,
                                        Algorithm("AUTOMATIC", card.name, card.version, "ai"), uid, card.name)
            written.append(plan["dicom_seg"])
        nodes.save_segmentation(seg, plan["seg"])
        written.append(plan["seg"])
    finally:
        seg.GetScene().RemoveNode(seg)


def run_case(case: Case, model, options: BatchOptions, progress=None, cancel=None) -> CaseResult:
    """Run one case; returns a result ('failed' with a one-line error rather than raising).
    Cancelling (CancelledError) or interrupting removes the case's files and propagates."""
    card, plan = model.card, plan_outputs(case.name, model.card.labels, options)
    if os.path.exists(plan["seg"]) and not options.overwrite:
        return CaseResult(case.name, "skipped", outputs=[plan["seg"]])
    report = progress or (lambda fraction, text: None)
    t0 = time.perf_counter()
    timings, written, messages = {}, [], []
    try:
        if case.error:
            raise InputError(case.error)
        if len(case.sources) != card.in_channels:
            names = f" ({', '.join(card.channel_names)})" if card.channel_names else ""
            raise InputError(f"model {card.name!r} needs {card.in_channels} input channel(s){names}, "
                             f"the case has {len(case.sources)}; group channel files with --channels")
        report(0.0, "reading")
        inputs = [io.read_volume(path, uid, options.regularize) for path, uid in case.sources]
        timings["read"] = time.perf_counter() - t0
        pred = predict(inputs, model, options.predict, progress=report, cancel=cancel)
        messages = pred.messages
        timings.update({k: pred.timings.get(k, 0.0) for k in ("preprocess", "inference", "postprocess")})
        report(1.0, "writing")
        t1 = time.perf_counter()
        with transaction():              # every file of the case, verified, or none (old ones kept)
            _write(inputs, pred, plan, case.name, written, case, card)
        timings["write"] = time.perf_counter() - t1
    except BaseException as exc:
        if isinstance(exc, CancelledError) or not isinstance(exc, Exception):
            raise
        log.debug("case %s failed", case.name, exc_info=not isinstance(exc, MedSegError))
        timings["total"] = time.perf_counter() - t0
        return CaseResult(case.name, "failed", timings["total"], error=_one_line(exc), timings=timings,
                          messages=messages)
    timings["total"] = time.perf_counter() - t0
    counts = np.bincount(pred.labelmap.ravel(), minlength=256)
    return CaseResult(case.name, "ok", timings["total"], {lab.name: int(counts[lab.value]) for lab in pred.labels},
                      outputs=written, timings=timings, messages=messages)


def append_timings(path: str, result: CaseResult) -> None:
    """Append one row (case, status, finished, <step>_s..., error) to a CSV, with a header if new:
    one fsync'ed write of whole lines (:func:`MedSegCore.image.atomic.append_row`)."""
    import io as _io

    def line(values):
        buf = _io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(values)
        return buf.getvalue()
    append_row(path, line([result.name, result.status, time.strftime("%Y-%m-%dT%H:%M:%S"),
                           *(f"{result.timings[k]:.3f}" if k in result.timings else "" for k in TIMING_KEYS),
                           result.error or ""]),
               header=line(["case", "status", "finished", *(f"{k}_s" for k in TIMING_KEYS), "error"]))


def iter_batch(cases, model, options: BatchOptions, progress=None, cancel=None):
    """Run ``cases`` one after the other, yielding a CaseResult each; ``progress(index, count, name,
    fraction, text)`` follows every case and window.  Timings of processed cases go to the CSV."""
    from ..mrml.scene import ensure_scene

    os.makedirs(options.output_dir, exist_ok=True)
    ensure_scene()                      # start Slicer's scene once, outside the first case's timings
    for i, case in enumerate(cases):
        def report(fraction, text, i=i, name=case.name):
            if progress is not None:
                progress(i, len(cases), name, fraction, text)
        result = run_case(case, model, options, report, cancel)
        if result.status != "skipped" and options.timings_csv:
            try:
                append_timings(options.timings_csv, result)
            except MedSegError as exc:       # the case's own files are complete; say so, go on
                log.warning("%s", exc)
        yield result
