"""Argument helpers shared by the subcommands."""
from __future__ import annotations

import math
import os

from ..image import io
from ..image.atomic import check_not_input, check_output_folder
from ..errors import OutputError, ParameterError

REGULARIZE_HELP = ("resample an irregular DICOM series (missing slices, uneven spacing, gantry tilt) onto a "
                   "regular grid instead of refusing it; a warning says what was done")
REGULARIZE_SEG_CONFLICT = ("--regularize cannot be combined with a DICOM SEG output: a SEG's frames refer to the "
                           "source slices one by one, and regularizing resamples them onto other slices; write "
                           ".seg.nrrd or NIfTI instead, or drop --regularize")


def parse_color(text: str | None):
    """'R,G,B' as 0-255 integers or 0-1 floats -> (r, g, b) in 0..1, or None."""
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ParameterError(f"--color '{text}': expected R,G,B numbers") from None
    if len(values) != 3 or not all(math.isfinite(v) and 0 <= v <= 255 for v in values):
        raise ParameterError(f"--color '{text}': expected three finite values in 0..255 (or 0..1)")
    return tuple(v / 255.0 for v in values) if max(values) > 1 else tuple(values)


def check_output(path: str, allowed: tuple, overwrite: bool, what: str = "output", inputs=None) -> str:
    """Check an output path before any work: extension, folder (exists, is one, writable), never one
    of ``inputs`` ({role: path}, e.g. the image, mask, reference, model; links included, with or
    without --overwrite), and no silent overwrite."""
    ext = io.extension(path)
    if ext not in allowed:
        raise ParameterError(f"{what} {path}: unsupported extension '{ext}'; use {', '.join(allowed)}")
    check_not_input(path, inputs or {}, what)
    check_output_folder(path)
    if os.path.lexists(path) and not overwrite:
        raise OutputError(f"{what} {path} exists; pass --overwrite to replace it")
    return path


def to_rgb255(color) -> tuple:
    return tuple(int(round(c * 255)) for c in color)
