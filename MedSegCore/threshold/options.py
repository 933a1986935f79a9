"""Threshold options checked before any work, and which panel controls apply, shared by the
``medseg threshold`` CLI, the MedSegThreshold panel and its Segment Editor effect.

Exactly one source gives the range: lower/upper, a preset, an automatic method or multi-Otsu
levels.  Giving two is refused rather than silently resolved; so are non-finite numbers.
"""
from __future__ import annotations

import math

from ..errors import ParameterError

# How each source is called on the command line (the panel offers one source at a time).
FLAGS = {"levels": "--levels", "method": "--method", "preset": "--preset", "lower": "--lower",
         "upper": "--upper", "min_size": "--min-size", "color": "--color", "name": "--name"}
SOURCES = ("range", "preset", "method", "levels")


def range_sources(params) -> list:
    """The range sources ``params`` sets, in the order the options are listed: e.g. ['--preset', '--lower']."""
    given = [key for key in ("levels", "method", "preset") if getattr(params, key) is not None]
    given += [key for key in ("lower", "upper") if getattr(params, key) is not None]
    return given


def check_parameters(params, flags: dict = FLAGS) -> None:
    """Raise ParameterError for conflicting range sources or impossible values, naming the options."""
    given = range_sources(params)
    exclusive = [k for k in given if k in ("levels", "method", "preset")]
    if len(exclusive) > 1 or (exclusive and len(given) > len(exclusive)):
        names = [flags[k] for k in given]
        raise ParameterError(f"{' and '.join(names)} conflict: give one range source (--lower/--upper, "
                             "--preset, --method or --levels), not several")
    for key in ("lower", "upper"):
        value = getattr(params, key)
        if value is not None and not math.isfinite(value):
            raise ParameterError(f"{flags[key]} {value}: must be a finite number")
    if params.levels is not None and not 2 <= params.levels <= 5:
        raise ParameterError(f"{flags['levels']} {params.levels}: multi-Otsu needs 2 to 5 classes")
    if params.method is not None:
        from .autothreshold import METHODS

        if params.method not in METHODS:
            raise ParameterError(f"{flags['method']} {params.method!r}: unknown method; use one of {', '.join(METHODS)}")
    size = params.cleanup.min_size_mm3
    if size is None or not math.isfinite(size) or size < 0:
        raise ParameterError(f"{flags['min_size']} {size}: the minimum island size must be a number >= 0 (mm3)")
    if params.color is not None:
        check_color(params.color, flags["color"])
    if params.name is not None and not params.name.strip():
        raise ParameterError(f"{flags['name']}: the segment name must not be blank")


def check_color(color, flag: str = "--color") -> tuple:
    """(r, g, b) in 0..1, or ParameterError for the wrong count, NaN or out-of-range values."""
    values = tuple(float(c) for c in color)
    if len(values) != 3 or not all(math.isfinite(v) and 0 <= v <= 1 for v in values):
        raise ParameterError(f"{flag} {','.join(map(str, values))}: expected three finite values in 0..1")
    return values


def enabled_controls(range_source: str, mask_segmentation: bool = False, mask_file: bool = False) -> dict:
    """{control: enabled?} for the panel: only the chosen range source's controls, and one kind of
    mask (a segmentation, whose segment may be named, or a file, which has no segment names)."""
    if range_source not in SOURCES:
        raise ParameterError(f"range source {range_source!r}: use one of {', '.join(SOURCES)}")
    return {"lower": range_source == "range", "upper": range_source == "range",
            "preset": range_source == "preset", "method": range_source == "method",
            "levels": range_source == "levels",
            "mask_segmentation": not mask_file, "mask_segment_name": mask_segmentation and not mask_file,
            "mask_file": not mask_segmentation}
