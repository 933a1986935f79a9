"""``medseg models``: list the model catalogue, install, import (offline) and remove models."""
from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time

from ..errors import InputError

log = logging.getLogger("medseg")

EPILOG = """examples:
  medseg models list
  medseg models install spleen_ct_segmentation
  medseg predict ct.nii.gz -o out --model spleen_ct_segmentation --trust-bundle
  medseg models import ~/Downloads/spleen_ct_segmentation_v0.5.9.zip     # no network needed
  medseg models remove spleen_ct_segmentation

Models are stored in $MEDSEG_HOME/models (default ~/.medseg/models) and work offline once installed.
MEDSEG_CATALOG=PATH_OR_URL replaces the catalogue that ships with MedSeg (a mirror, a hospital's own).
A download is unpacked only after its size and SHA-256 (or, where the catalogue has no SHA-256 yet,
the checksum its publisher gives) match; an interrupted download resumes when you install again.
Proxies are taken from https_proxy / http_proxy / no_proxy.  A Model Zoo bundle's config can run
code: 'medseg predict' asks for --trust-bundle before it runs one."""


def add_parser(sub):
    p = sub.add_parser("models", help="list, install, import and remove models of the catalogue",
                       description="The model catalogue: models MedSeg installs by name, verified before "
                                   "they are unpacked.", epilog=EPILOG,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    ls = actions.add_parser("list", help="the catalogue, with what is installed")
    ls.add_argument("--installed", action="store_true", help="only installed models (no catalogue needed)")
    ins = actions.add_parser("install", help="download, verify and install a catalogue model")
    ins.add_argument("name", metavar="NAME")
    ins.add_argument("--force", action="store_true", help="reinstall even if this version is installed")
    imp = actions.add_parser("import", help="install a model zip or folder already on this machine (offline)")
    imp.add_argument("path", metavar="ZIP|FOLDER")
    imp.add_argument("--name", help="install under this name (default: the catalogue entry it matches, "
                                    "else the file name without _vX.Y.Z)")
    imp.add_argument("--force", action="store_true", help="replace an installed model of that name")
    rm = actions.add_parser("remove", help="delete an installed model")
    rm.add_argument("name", metavar="NAME")
    p.set_defaults(func=run)


def human(n) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0


class Bar:
    """A progress bar on one line on a terminal; a line each 10 % otherwise."""

    def __init__(self, label, stream=None):
        self.label, self.stream = label, stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start, self.last, self.drawn = time.monotonic(), None, False

    def __call__(self, done, total):
        rate = done / max(time.monotonic() - self.start, 1e-6)
        if total:
            frac = min(done / total, 1.0)
            width = 30
            text = (f"{self.label} [{'#' * int(frac * width):<{width}}] {frac * 100:3.0f}% "
                    f"{human(done)} / {human(total)}, {human(rate)}/s")
            step = int(frac * 10)
        else:
            text, step = f"{self.label} {human(done)}, {human(rate)}/s", done >> 26
        if self.tty:
            cols = shutil.get_terminal_size((100, 20)).columns - 1
            self.stream.write("\r" + text[:cols] + "\x1b[K")
            self.stream.flush()
            self.drawn = True
        elif step != self.last:
            self.last = step
            print(text, file=self.stream, flush=True)

    def close(self):
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


def _table(rows) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(f"{c:<{w}}" for c, w in zip(r, widths)) + "  " + r[-1] for r in rows).rstrip()


def _list(args) -> int:
    from .. import catalog

    models = {m.name: m for m in catalog.installed()}
    rows = [("name", "version", "modality", "size", "installed", "license")]
    if args.installed:
        for m in models.values():
            r = m.record
            rows.append((m.name, m.version, r.get("modality", "?"), human(r.get("size_bytes")),
                         "yes", r.get("license", "(imported)")))
        rows.append(("medseg_brain_tissue", "-", "MR", "-", "built in", "see 'medseg models list'"))
        print(_table(rows))
        print(f"store: {catalog.models_dir()}")
        return 0
    cat = catalog.load_catalog()
    for e in cat.entries:
        m = models.pop(e.name, None)
        state = ("built in" if e.bundled else f"yes ({m.version})" if m and m.version != e.version
                 else "yes" if m else "no")
        rows.append((e.name, e.version, e.modality, human(e.size_bytes) if e.size_bytes else "? (unverified)",
                     state, e.license))
    for m in models.values():
        rows.append((m.name, m.version, m.record.get("modality", "?"), human(m.record.get("size_bytes")),
                     "yes (not in catalogue)", m.record.get("license", "(imported)")))
    print(_table(rows))
    print(f"catalogue: {cat.source}\nstore: {catalog.models_dir()}")
    return 0


def _install(args) -> int:
    from .. import catalog

    cat = catalog.load_catalog()
    entry = cat.get(args.name)
    if entry is not None and not entry.bundled:
        log.info("%s %s: %s, %s, licence: %s", entry.name, entry.version, entry.modality,
                 human(entry.size_bytes) if entry.size_bytes else "size unknown", entry.license)
        log.info("from %s", entry.url)
    bar = Bar(f"{args.name}:")
    try:
        outcome = catalog.install(args.name, cat, progress=bar, force=args.force)
    except KeyboardInterrupt:
        bar.close()
        log.info("download interrupted; 'medseg models install %s' resumes it", args.name)
        raise
    finally:
        bar.close()
    log.info("%s", outcome.message)
    if outcome.model is not None and outcome.model.record.get("kind") == "monai-bundle":
        log.info("run it with: medseg predict INPUT -o OUT --model %s --trust-bundle", outcome.model.name)
    return 0


def run(args) -> int:
    from .. import catalog

    if args.action == "list":
        return _list(args)
    if args.action == "install":
        return _install(args)
    if args.action == "import":
        outcome = catalog.import_model(args.path, args.name, force=args.force)
        log.info("%s", outcome.message)
        return 0
    try:
        entry = catalog.load_catalog().get(args.name)
    except catalog.DownloadError:
        entry = None
    if entry is not None and entry.bundled:
        raise InputError(f"{entry.name} ships with MedSeg and cannot be removed")
    model = catalog.remove(args.name)
    log.info("removed %s %s (%s)", model.name, model.version, model.path.parent)
    return 0
