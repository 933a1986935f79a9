"""Self-contained HTML report of an evaluation against ground truth, and the disagreement overlay.

The report is one ``index.html``: metric table, per-segment disagreement montages (PNG as base64
data URIs), per-slice Dice plots (inline SVG) and timings; no external CSS, JS or images.
Disagreement colours (Okabe-Ito, readable with colour-blindness): true positive (both) bluish
green, false positive (prediction only) vermillion, false negative (reference only) sky blue.
"""
from __future__ import annotations

import base64
import html
import io
import math
import os

import numpy as np

from ..errors import ParameterError
from .metrics import METRICS, summarize
from ..image.io import atomic_path
from .overlay import montage, pick_slices, render_slices, tile

COLORS = {"tp": (0, 158, 115), "fp": (213, 94, 0), "fn": (86, 180, 233)}
LEGEND = {"tp": "agreement (true positive)", "fp": "prediction only (false positive)",
          "fn": "reference only (false negative)"}
ALPHA = 0.55
_HEADERS = {"dice": "Dice", "iou": "IoU", "precision": "Precision", "recall": "Recall",
            "specificity": "Specificity", "f1": "F1", "accuracy": "Accuracy",
            "volume_pred_ml": "V pred (mL)", "volume_ref_ml": "V ref (mL)", "volume_diff_ml": "&Delta;V (mL)",
            "hausdorff_mm": "HD (mm)", "hd95_mm": "HD95 (mm)", "assd_mm": "ASSD (mm)"}


def _masks(pred, ref, shape=None):
    p, r = np.asarray(pred).astype(bool, copy=False), np.asarray(ref).astype(bool, copy=False)
    if p.shape != r.shape or (shape is not None and p.shape != tuple(shape)):
        raise ParameterError(f"overlay masks must share the image grid: prediction {p.shape}, "
                             f"reference {r.shape}" + (f", image {tuple(shape)}" if shape is not None else ""))
    return p, r


def _layers(p, r) -> list:
    return [(p & r, COLORS["tp"], ALPHA), (p & ~r, COLORS["fp"], ALPHA), (r & ~p, COLORS["fn"], ALPHA)]


def disagreement_overlay(image, pred, ref, path: str, count: int = 12) -> list:
    """Write a PNG montage of axial slices with TP / FP / FN in three colours over the greyscale
    ``image`` (atomically).  Returns the slice indices shown."""
    image = np.asarray(image)
    p, r = _masks(pred, ref, image.shape)
    return montage(image, _layers(p, r), path, count=count)


def _montage_png(image, p, r, count: int = 6, columns: int = 3, max_width: int = 960) -> tuple:
    """(PNG bytes, slice indices) of a montage of up to ``count`` slices, windowed on those slices."""
    from PIL import Image

    slices = pick_slices([p, r], p.shape[0], count)
    sub = np.zeros((len(slices),) + p.shape[1:], np.float32) if image is None else np.asarray(image)[slices]
    canvas = tile(render_slices(sub, _layers(p[slices], r[slices]), range(len(slices))), columns)
    img = Image.fromarray(canvas)
    if img.width < max_width // 2:                     # small grids: enlarge, keeping voxels crisp
        f = max_width // 2 // img.width
        img = img.resize((img.width * f, img.height * f), Image.NEAREST)
    elif img.width > max_width:
        img = img.resize((max_width, max(1, round(img.height * max_width / img.width))), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue(), slices


def dice_plot_svg(slice_dice, width: int = 640, height: int = 200, label: str = "") -> str:
    """Inline SVG line plot of per-slice Dice against slice index K (gaps where both are empty)."""
    ks = [k for k, v in enumerate(slice_dice) if v is not None]
    if not ks:
        return '<p class="note">No slice contains either mask.</p>'
    k0, k1 = ks[0], ks[-1]
    left, right, top, bottom = 44, 12, 10, 34
    pw, ph = width - left - right, height - top - bottom

    def x(k):
        return left + (k - k0) / max(k1 - k0, 1) * pw

    def y(v):
        return top + (1 - v) * ph

    out = [f'<svg class="dice-plot" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'role="img" aria-label="{html.escape("per-slice Dice " + label)}">']
    for v in (0, 0.25, 0.5, 0.75, 1):
        out.append(f'<line x1="{left}" x2="{left + pw}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>'
                   f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:g}</text>')
    step = max(1, math.ceil((k1 - k0) / 8))
    for k in range(k0, k1 + 1, step):
        out.append(f'<line x1="{x(k):.1f}" x2="{x(k):.1f}" y1="{top + ph}" y2="{top + ph + 4}" class="axis"/>'
                   f'<text x="{x(k):.1f}" y="{top + ph + 16}" text-anchor="middle">{k}</text>')
    out.append(f'<text x="{left + pw / 2:.1f}" y="{height - 3}" text-anchor="middle">slice (K)</text>'
               f'<text x="12" y="{top + ph / 2:.1f}" transform="rotate(-90 12 {top + ph / 2:.1f})" '
               f'text-anchor="middle">Dice</text>'
               f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" class="frame"/>')
    run: list = []
    for k in range(k0, k1 + 2):
        v = slice_dice[k] if k <= k1 else None
        if v is not None:
            run.append(f"{x(k):.1f},{y(v):.1f}")
            continue
        if len(run) == 1:
            cx, cy = run[0].split(",")
            out.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" class="point"/>')
        elif run:
            out.append(f'<polyline points="{" ".join(run)}" class="line"/>')
        run = []
    out.append("</svg>")
    return "".join(out)


def _fmt(value, metric: str) -> str:
    if value is None:
        return "&mdash;"
    if metric.endswith("_ml"):
        return f"{value:.3f}"
    if metric.endswith("_mm"):
        return f"{value:.2f}"
    return f"{value:.4f}"


def _metric_table(rows) -> str:
    e = html.escape
    show_case = len({r.case for r in rows}) > 1 or any(r.case for r in rows)
    show_pred = any(r.pred_segment != r.segment for r in rows)
    head = (["Case"] if show_case else []) + ["Segment"] + (["Prediction segment"] if show_pred else []) \
        + [_HEADERS[m] for m in METRICS]
    out = ['<table id="metrics"><thead><tr>' + "".join(f"<th>{h}</th>" for h in head)
           + '<th class="text">Note</th></tr></thead><tbody>']
    for r in rows:
        cells = ([e(r.case)] if show_case else []) + [e(r.segment)] + ([e(r.pred_segment)] if show_pred else [])
        cells = [f"<td>{c}</td>" for c in cells + [_fmt(getattr(r, m), m) for m in METRICS]]
        out.append("<tr>" + "".join(cells) + f'<td class="text">{e(r.note)}</td></tr>')
    out.append("</tbody></table>")
    return "".join(out)


def _summary_table(rows) -> str:
    summary = summarize(rows)
    segments = list(dict.fromkeys(s["segment"] for s in summary))
    by = {(s["segment"], s["metric"]): s for s in summary}
    out = ['<table id="summary"><thead><tr><th>Segment</th>'
           + "".join(f"<th>{_HEADERS[m]}</th>" for m in METRICS) + "</tr></thead><tbody>"]
    for seg in segments:
        cells = []
        for m in METRICS:
            s = by[(seg, m)]
            text = _fmt(s["mean"], m) + ("" if s["sd"] is None else " &plusmn; " + _fmt(s["sd"], m))
            cells.append(f'{text} <span class="n">(n={s["n"]}{", missing " + str(s["missing"]) if s["missing"] else ""})</span>')
        out.append(f"<tr><td>{html.escape(seg)}</td>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _timings_table(timings) -> str:
    if not timings:
        return '<p class="note">No timings recorded.</p>'
    body = "".join(f"<tr><td>{html.escape(str(k))}</td><td>"
                   f"{f'{v:.3f}' if isinstance(v, (int, float)) else html.escape(str(v))}</td></tr>"
                   for k, v in timings.items())
    return f'<table id="timings"><thead><tr><th>Step</th><th>Seconds</th></tr></thead><tbody>{body}</tbody></table>'


def _figures(rows, image, pred_masks, ref_masks, case) -> str:
    e = html.escape
    legend = "".join(f'<span class="swatch" style="background:rgb{COLORS[k]}"></span>{LEGEND[k]} '
                     for k in ("tp", "fp", "fn"))
    out = [f'<p class="legend">{legend}</p>']
    if image is not None:
        image = np.asarray(image)
        image = image[None] if image.ndim == 2 else image
    for n, r in enumerate(row for row in rows if row.case == case):
        title = e(r.segment) + ("" if r.pred_segment == r.segment else f" (prediction: {e(r.pred_segment)})")
        out.append(f'<section class="segment"><h3>{title}</h3>')
        if r.pred_segment in pred_masks and r.segment in ref_masks:
            p, q = (np.asarray(m) for m in (pred_masks[r.pred_segment], ref_masks[r.segment]))
            p, q = (p[None], q[None]) if p.ndim == 2 else (p, q)
            p, q = _masks(p, q, None if image is None else image.shape)
            png, slices = _montage_png(image, p, q)
            data = base64.b64encode(png).decode("ascii")
            out.append(f'<figure><img id="overlay-{n}" alt="disagreement overlay of {e(r.segment)}" '
                       f'src="data:image/png;base64,{data}"><figcaption>Axial slices {", ".join(map(str, slices))} '
                       "(anterior up)</figcaption></figure>")
        else:
            out.append('<p class="note">No masks given for this segment: no overlay.</p>')
        out.append(dice_plot_svg(r.slice_dice, label=r.segment) + "</section>")
    return "".join(out)


_CSS = """body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:8px 0 20px;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}
th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}.n{color:#777;font-size:11px}
.note{color:#666}.text{text-align:left}.swatch{display:inline-block;width:14px;height:14px;margin:0 4px 0 12px;vertical-align:middle}
figure{margin:6px 0}img{max-width:100%;image-rendering:pixelated}.segment{margin-bottom:28px}
.dice-plot text{font-size:11px;fill:#333}.grid{stroke:#ddd}.axis{stroke:#555}.frame{fill:none;stroke:#999}
.line{fill:none;stroke:#0072b2;stroke-width:1.5}.point{fill:#0072b2}"""


def render_html(rows, image, pred_masks, ref_masks, timings=None, title: str = "Evaluation against ground truth",
                figure_case=None, summary: bool = True) -> str:
    """The report's HTML text (see :func:`write_report`)."""
    rows = list(rows)
    if not rows:
        raise ParameterError("the report needs at least one row of metrics")
    cases = list(dict.fromkeys(r.case for r in rows))
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
             "<h2>Metrics</h2>", _metric_table(rows)]
    if len(cases) > 1 and summary:
        parts += [f"<h2>Mean &plusmn; sd over {len(cases)} cases</h2>", _summary_table(rows)]
    case = cases[0] if figure_case is None else figure_case
    if case not in cases:
        raise ParameterError(f"no rows for case {case!r}; cases: {', '.join(map(str, cases))}")
    head = f" ({html.escape(str(case))})" if len(cases) > 1 and case else ""
    parts += [f"<h2>Disagreement and per-slice Dice{head}</h2>",
              _figures(rows, image, pred_masks or {}, ref_masks or {}, case),
              "<h2>Timings</h2>", _timings_table(timings),
              '<p class="note">HD95 as MONAI (larger of the two directed 95th percentiles), ASSD symmetric; '
              "&mdash; means undefined because a mask is empty (see the note column).</p></body></html>"]
    return "".join(parts)


def _write_atomic(path: str, data: bytes):
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_report(directory: str, rows, image, pred_masks: dict, ref_masks: dict, timings: dict | None = None,
                 title: str = "Evaluation against ground truth", figure_case=None, summary: bool = True) -> str:
    """Write ``directory/index.html`` (self-contained) and return its path.

    ``rows``: :class:`~MedSegCore.evaluation.metrics.SegmentMetrics` (several cases add a mean ± sd table
    unless ``summary`` is False; figures are drawn for ``figure_case``, default the first case,
    whose masks ``pred_masks``/``ref_masks`` must be).  ``pred_masks`` is keyed by ``row.pred_segment``,
    ``ref_masks`` by ``row.segment``; ``image`` (KJI, or None for black) is the greyscale under
    the overlays; ``timings`` maps step names to seconds.  The whole page is built in memory and
    written atomically, so a failure leaves any previous report untouched."""
    text = render_html(rows, image, pred_masks, ref_masks, timings, title, figure_case, summary)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "index.html")
    _write_atomic(path, text.encode("utf-8"))
    return path
