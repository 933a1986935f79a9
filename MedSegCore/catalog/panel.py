"""What MedSegDNN's model selector shows for the catalogue: one row per model (no Qt here).

The panel calls :func:`rows` off the GUI thread (a catalogue given by URL may take a while) and
shows each row's ``text`` in a combo box and :func:`describe` under it.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from . import store
from .entries import load_catalog


@dataclass(frozen=True)
class Row:
    """One model in the selector: its name, the text shown, and whether it can run / be installed."""

    name: str
    text: str
    details: str
    installed: bool
    installable: bool


def _size(n) -> str:
    return "size not yet verified" if n is None else f"{n / 1e6:.1f} MB"


def rows(catalog=None) -> tuple:
    """(rows, problem): the catalogue's models and the installed ones, and a line if the catalogue
    could not be read (then only installed models are listed, and they still run offline)."""
    installed = {m.name: m for m in store.installed()}
    problem = None
    try:
        catalog = catalog or load_catalog()
        entries = catalog.entries
    except InputError as e:
        entries, problem = (), f"catalogue unavailable ({e}); installed models still work"
    out = []
    for e in entries:
        m = installed.pop(e.name, None)
        state = ("built in" if e.bundled else f"installed {m.version}" if m else "not installed")
        out.append(Row(e.name, f"{e.title or e.name} {e.version} - {e.modality} - {e.license} - "
                               f"{_size(e.size_bytes)} - {state}",
                       f"{e.description}\nLicence: {e.license}\nDownload: {_size(e.size_bytes)}"
                       + ("" if e.bundled or e.verified else " (checked against the publisher's checksum)")
                       + (f"\nLabels: {', '.join(e.labels[:12])}{' ...' if len(e.labels) > 12 else ''}"
                          if e.labels else "")
                       + ("\nA MONAI bundle: its configuration runs code, so its first run asks you to trust it."
                          if e.kind == "monai-bundle" else ""),
                       e.bundled or m is not None, not e.bundled and (m is None or m.version != e.version)))
    for m in installed.values():
        r = m.record
        out.append(Row(m.name, f"{m.name} {m.version} - {r.get('modality', '?')} - {r.get('license', 'licence unknown')}"
                               " - installed",
                       f"{r.get('description', 'imported model')}\nLicence: {r.get('license', 'unknown')}\n"
                       f"{r.get('checked', '')}", True, False))
    return tuple(out), problem


def describe(row: Row) -> str:
    """The text under the selector for ``row``."""
    action = ("Installed: runs offline." if row.installed and not row.installable else
              "A newer version can be installed." if row.installed else "Press Install to download it.")
    return f"{row.details}\n{action}"
