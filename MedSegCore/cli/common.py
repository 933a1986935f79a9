"""Argument helpers shared by the subcommands."""
from __future__ import annotations

import os

from ..image import io
from ..errors import InputError, ParameterError


def parse_color(text: str | None):
    """'R,G,B' as 0-255 integers or 0-1 floats -> (r, g, b) in 0..1, or None."""
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise ParameterError(f"--color '{text}': expected R,G,B numbers") from None
    if len(values) != 3 or min(values) < 0 or max(values) > 255:
        raise ParameterError(f"--color '{text}': expected three values in 0..255 (or 0..1)")
    return tuple(v / 255.0 for v in values) if max(values) > 1 else tuple(values)


def check_output(path: str, allowed: tuple, overwrite: bool, what: str = "output") -> str:
    """Check an output path before any work: extension, folder, and no silent overwrite."""
    ext = io.extension(path)
    if ext not in allowed:
        raise ParameterError(f"{what} {path}: unsupported extension '{ext}'; use {', '.join(allowed)}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"{what} {path}: folder {folder} does not exist")
    if os.path.exists(path) and not overwrite:
        raise InputError(f"{what} {path} exists; pass --overwrite to replace it")
    return path


def to_rgb255(color) -> tuple:
    return tuple(int(round(c * 255)) for c in color)
