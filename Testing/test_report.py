"""Tests of MedSegCore.evaluation.report: HTML content, overlays, atomic writing, and rendering in Chromium."""
import base64
import io
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from MedSegCore.errors import ParameterError
from MedSegCore.evaluation.metrics import as_segment_masks, evaluate
from MedSegCore.evaluation.report import dice_plot_svg, disagreement_overlay, write_report

SPACING = (0.8, 0.8, 2.0)
NAMES = {1: 'liver <b>"&', 2: "spleen"}
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


def small_case():
    rng = np.random.default_rng(0)
    image = ndimage.gaussian_filter(rng.standard_normal((20, 48, 44)), 2) * 300
    ref = np.zeros(image.shape, dtype=np.uint8)
    ref[4:15, 8:30, 10:32] = 1
    ref[6:13, 34:44, 30:40] = 2
    pred = np.roll(ref, 2, axis=2)                     # liver shifted: TP, FP and FN
    pred[pred == 2] = 0                                # spleen missed entirely
    pred[2, 2:5, 2:5] = 1                              # a stray false positive
    return image, pred, ref


def report_for(tmp_path, timings=None, case=""):
    image, pred, ref = small_case()
    rows = evaluate(pred, ref, SPACING, pred_names=NAMES, ref_names=NAMES, case=case)
    path = write_report(str(tmp_path / "report"), rows, image, as_segment_masks(pred, NAMES),
                        as_segment_masks(ref, NAMES), timings or {"segmentation <gpu>": 1.25, "metrics": 0.031},
                        title="Liver & spleen <eval>")
    return path, rows


def hue_counts(rgb):
    """Pixels dominated by the TP (green), FP (vermillion) and FN (sky blue) overlay colours."""
    r, g, b = (rgb[..., c].astype(int) for c in range(3))
    return {"tp": int(np.count_nonzero((g - r > 50) & (g - b > 15))),
            "fp": int(np.count_nonzero((r - b > 80) & (r - g > 40))),
            "fn": int(np.count_nonzero((b - r > 50) & (b - g > 10)))}


def embedded_pngs(text):
    return [Image.open(io.BytesIO(base64.b64decode(d))).convert("RGB")
            for d in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)]


def test_report_html_has_table_images_plot_and_timings(tmp_path):
    path, rows = report_for(tmp_path)
    assert path == str(tmp_path / "report" / "index.html")
    text = open(path, encoding="utf-8").read()
    assert text.startswith("<!DOCTYPE html>")
    assert '<table id="metrics">' in text and text.count("<tr>") >= 3
    assert "liver &lt;b&gt;&quot;&amp;" in text and "<b>" not in text          # names escaped
    assert "<title>Liver &amp; spleen &lt;eval&gt;</title>" in text
    assert f"{rows[0].dice:.4f}" in text and "prediction is empty" in text
    assert '<table id="timings">' in text and "segmentation &lt;gpu&gt;" in text and "1.250" in text
    assert text.count('<svg class="dice-plot"') == 2 and "<polyline" in text
    # self-contained: nothing fetched from elsewhere
    assert not re.search(r'(src|href)="(?!data:)', text) and "<link" not in text and "<script" not in text
    pngs = embedded_pngs(text)
    assert len(pngs) == 2
    liver, spleen = (hue_counts(np.asarray(p)) for p in pngs)
    assert liver["tp"] > 100 and liver["fp"] > 10 and liver["fn"] > 10
    assert spleen["fn"] > 100 and spleen["tp"] == 0
    assert sorted(os.listdir(tmp_path / "report")) == ["index.html"]           # no temp files left


def test_report_with_several_cases_has_summary(tmp_path):
    image, pred, ref = small_case()
    rows = []
    for case, shift in (("a", 1), ("b", 3)):
        rows += evaluate(np.roll(pred, shift, axis=1), ref, SPACING, pred_names=NAMES, ref_names=NAMES, case=case)
    path = write_report(str(tmp_path), rows, image, {}, {}, None, "two cases")
    text = open(path, encoding="utf-8").read()
    assert '<table id="summary">' in text and "&plusmn;" in text and "(n=2" in text
    assert "missing 2" in text                                # spleen distances undefined in both cases
    assert "No masks given" in text and "No timings recorded" in text


def test_failed_report_leaves_previous_one_untouched(tmp_path):
    path, rows = report_for(tmp_path)
    before = open(path, "rb").read()
    image, pred, ref = small_case()
    bad = {n: m[:, :10] for n, m in as_segment_masks(pred, NAMES).items()}
    with pytest.raises(ParameterError, match="share the image grid"):
        write_report(str(tmp_path / "report"), rows, image, bad, as_segment_masks(ref, NAMES), {}, "x")
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path / "report") == ["index.html"]
    with pytest.raises(ParameterError, match="at least one row"):
        write_report(str(tmp_path / "other"), [], image, {}, {}, {}, "x")
    assert not (tmp_path / "other").exists()


def test_disagreement_overlay_png(tmp_path):
    image, pred, ref = small_case()
    out = tmp_path / "overlay.png"
    slices = disagreement_overlay(image, pred == 1, ref == 1, str(out), count=6)
    assert len(slices) == 6 and all(2 <= k <= 14 for k in slices)
    counts = hue_counts(np.asarray(Image.open(out).convert("RGB")))
    assert counts["tp"] > 100 and counts["fp"] > 10 and counts["fn"] > 10
    assert os.listdir(tmp_path) == ["overlay.png"]
    with pytest.raises(ParameterError, match="share the image grid"):
        disagreement_overlay(image, pred[:5] == 1, ref[:5] == 1, str(tmp_path / "bad.png"))


def test_dice_plot_svg_gaps_and_empty():
    svg = dice_plot_svg([None, 0.5, 0.6, None, None, 0.9, 1.0, None, 0.2])
    assert svg.count("<polyline") == 2 and svg.count("<circle") == 1
    assert dice_plot_svg([None, None]).startswith('<p class="note">')


def run_chromium(args, tmp_path, timeout=90):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'chromium-profile'}"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, encoding="utf-8", errors="replace", timeout=timeout)


def test_report_renders_in_chromium(tmp_path):
    if CHROMIUM is None:
        pytest.skip("chromium not installed: apt-get install chromium")
    path, rows = report_for(tmp_path)
    # a copy of the page with a probe that records, after load, what the browser displayed
    probe = ("<script>window.addEventListener('load',function(){var im=[].slice.call(document.images);"
             "var d=document.createElement('div');d.id='probe';"
             "d.setAttribute('data-images',im.length);"
             "d.setAttribute('data-loaded',im.filter(function(i){return i.complete&&i.naturalWidth>0}).length);"
             "d.setAttribute('data-rows',document.querySelectorAll('#metrics tbody tr').length);"
             "d.setAttribute('data-table-height',document.getElementById('metrics').getBoundingClientRect().height);"
             "d.setAttribute('data-plots',document.querySelectorAll('svg.dice-plot polyline').length);"
             "document.body.appendChild(d);});</script></body>")
    checked = tmp_path / "checked.html"
    checked.write_text(open(path, encoding="utf-8").read().replace("</body>", probe), encoding="utf-8")
    result = run_chromium(["--virtual-time-budget=10000", "--dump-dom", checked.as_uri()], tmp_path)
    m = re.search(r'<div id="probe"([^>]*)>', result.stdout)
    assert m, f"probe not found; chromium said: {result.stderr[-2000:]}"
    attrs = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', m.group(1)))
    assert attrs["images"] == "2" and attrs["loaded"] == "2"
    assert attrs["rows"] == str(len(rows)) and float(attrs["table-height"]) > 20
    assert int(attrs["plots"]) >= 1
    # and the page itself, as a user sees it, is not blank and shows the overlay colours
    shot = tmp_path / "shot.png"
    run_chromium(["--window-size=1200,1600", f"--screenshot={shot}", "file://" + path], tmp_path)
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    assert pixels.std() > 20
    counts = hue_counts(pixels)
    assert counts["tp"] > 100 and counts["fn"] > 100


def test_report_for_2d_masks(tmp_path):
    image = np.random.default_rng(3).random((40, 36))
    ref = np.zeros((40, 36), dtype=bool)
    ref[5:20, 5:20] = True
    pred = np.roll(ref, 2, axis=0)
    rows = evaluate({"a": pred}, {"a": ref}, (1.0, 1.0))
    path = write_report(str(tmp_path), rows, image, {"a": pred}, {"a": ref}, {"step": "n/a"}, "2D")
    text = open(path, encoding="utf-8").read()
    assert len(embedded_pngs(text)) == 1 and "<td>n/a</td>" in text
