"""Install a catalogue model (download, verify, unpack, commit), import one offline, resolve names.

The order is fixed: the download is complete and verified (size, SHA-256 or the publisher's
checksum) before the archive is opened; the archive is checked member by member before anything
is written; the model is assembled in a staging folder and renamed into the store only when it is
complete.  A failure or cancel at any step leaves the store as it was (a partial download stays in
``downloads/`` so the next attempt resumes it).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..home import medseg_home
from . import archive, download, store
from .entries import Catalog, Entry, file_url_path, load_catalog


@dataclass(frozen=True)
class Outcome:
    """What an install or import did: the installed model and one sentence about it."""

    model: store.Installed | None
    message: str


def _entry_record(entry: Entry | None) -> dict:
    if entry is None:
        return {}
    return {"title": entry.title, "license": entry.license, "description": entry.description,
            "modality": entry.modality, "catalog_version": entry.version}


def _folder_version(folder: Path) -> str:
    for meta in (folder / "configs" / "metadata.json", folder / "card.json"):
        try:
            return str(json.loads(meta.read_text(encoding="utf-8"))["version"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return "?"


def _check_disk(entry: Entry) -> None:
    if entry.size_bytes is None:
        return
    target = medseg_home()
    target.mkdir(parents=True, exist_ok=True)
    need = entry.size_bytes + (entry.max_unpacked_bytes or archive.default_limit(entry.size_bytes) // 4)
    free = shutil.disk_usage(target).free
    if free < need:
        raise InputError(f"not enough disk space in {target} for {entry.name}: about {download.mib(need)} needed, "
                         f"{download.mib(free)} free")


@contextmanager
def _disk_errors(what: str):
    """A failing disk (full, read-only, permissions) as one line instead of a traceback."""
    try:
        yield
    except OSError as e:
        where = f" ({e.filename})" if e.filename else ""
        raise InputError(f"{what}: {e.strerror or e}{where}; nothing installed") from None


def _place(staged: Path, unpacked: Path, what: str) -> str:
    """Move the model folder found in ``unpacked`` to ``staged/model``; returns its kind."""
    root, kind = archive.find_model_root(unpacked, what)
    os.replace(root, staged / store.MODEL_DIR)
    shutil.rmtree(unpacked, ignore_errors=True)
    return kind


def install(name: str, catalog: Catalog | None = None, progress=None, cancel=None, force: bool = False) -> Outcome:
    """Download, verify and install the catalogue model ``name``."""
    catalog = catalog or load_catalog()
    entry = catalog.get(name)
    if entry is None:
        raise InputError(f"{name!r} is not in the model catalogue ({catalog.source}); 'medseg models list' "
                         f"shows the models there")
    if entry.bundled:
        return Outcome(None, f"{entry.name} ships with MedSeg: nothing to download (use --model {entry.name})")
    present = store.find_installed(entry.name)
    if present is not None and present.version == entry.version and not force:
        return Outcome(present, f"{entry.name} {entry.version} is already installed in {present.path.parent}")
    _check_disk(entry)
    tag = (entry.sha256 or next(iter(entry.published_checksums.values()), "") or "x")[:12]
    part = store.downloads_dir() / f"{entry.name}-{entry.version}-{tag}.zip.part"
    expected = download.Expected(entry.size_bytes, entry.sha256, dict(entry.published_checksums))
    with _disk_errors(f"installing {entry.name}"), store.install_lock(entry.name):
        got = download.download(entry.url, part, expected, progress=progress, cancel=cancel)
        limit = entry.max_unpacked_bytes or archive.default_limit(got.size)
        with store.staging() as staged:
            try:
                archive.extract_zip(part, staged / "unpacked", limit, cancel)
                kind = _place(staged, staged / "unpacked", f"the download of {entry.name}")
            except archive.ArchiveError:
                download.discard(part)         # verified but unusable: nothing to resume
                raise
            record = {"version": entry.version, "kind": kind, "source": entry.url, "sha256": got.sha256,
                      "size_bytes": got.size, "checked": got.checked, **_entry_record(entry)}
            model = store.commit(staged, entry.name, record)
        download.discard(part)
    replaced = f" (replaced {present.version})" if present is not None and present.version != entry.version else ""
    return Outcome(model, f"installed {entry.name} {entry.version}{replaced} in {model.path}; checked against "
                          f"{got.checked}; sha256 {got.sha256}")


def _hash_file(path: Path) -> dict:
    hashes = {a: hashlib.new(a) for a in ("sha256", "sha1", "md5")}
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            for h in hashes.values():
                h.update(block)
    return {a: h.hexdigest() for a, h in hashes.items()}


def _match(catalog: Catalog | None, digests: dict) -> Entry | None:
    for entry in (catalog.entries if catalog else ()):
        if entry.sha256 and entry.sha256 == digests["sha256"]:
            return entry
        if not entry.sha256 and entry.published_checksums and all(
                digests.get(a) == v for a, v in entry.published_checksums.items()):
            return entry
    return None


def _default_name(path: Path) -> str:
    stem = path.name[:-4] if path.name.lower().endswith(".zip") else path.name
    return re.sub(r"_v\d+(\.\d+)*$", "", stem)


def _copy_folder(src: Path, dest: Path) -> None:
    for p in src.rglob("*"):
        if p.is_symlink():
            raise InputError(f"{src}: {p.relative_to(src)} is a symbolic link; copy the real files and import again")
    shutil.copytree(src, dest, symlinks=True)


def import_model(path, name: str | None = None, catalog: Catalog | None = None, force: bool = False) -> Outcome:
    """Install a model zip or folder that is already on this machine (no network)."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if catalog is None:
        try:
            catalog = load_catalog()
        except InputError:
            catalog = None                 # an unreachable catalogue URL must not block an offline import
    digests = _hash_file(path) if path.is_file() else None
    entry = _match(catalog, digests) if digests else None
    named = catalog.get(name or _default_name(path)) if catalog else None
    if entry is None and named is not None and not named.bundled and name is None:
        why = ("its checksums differ" if digests else "a folder cannot be checked against the catalogue's checksum; "
               "import the zip instead")
        raise InputError(f"{path.name} is not verified as the catalogue's {named.name} {named.version} ({why}); "
                         f"to import it anyway, give it another name with --name NAME")
    target = store.check_name(name or (entry.name if entry else _default_name(path)))
    if store.find_installed(target) is not None and not force:
        raise InputError(f"a model called {target} is installed already; pass --force to replace it, or --name NAME")
    with _disk_errors(f"importing {path.name}"), store.staging() as staged:
        if path.is_file():
            limit = (entry.max_unpacked_bytes if entry else None) or archive.default_limit(path.stat().st_size)
            archive.extract_zip(path, staged / "unpacked", limit)
        else:
            _copy_folder(path, staged / "unpacked")
        kind = _place(staged, staged / "unpacked", path.name)
        version = entry.version if entry else _folder_version(staged / store.MODEL_DIR)
        checked = (f"matches the catalogue entry {entry.name} {entry.version}" if entry else
                   "not in the catalogue: unverified local import")
        record = {"version": version, "kind": kind, "source": f"import:{path.resolve()}",
                  "sha256": digests["sha256"] if digests else None,
                  "size_bytes": path.stat().st_size if digests else None, "checked": checked,
                  **_entry_record(entry)}
        model = store.commit(staged, target, record)
    return Outcome(model, f"imported {path.name} as {target} {version} in {model.path} ({checked})")


def resolve_model(source) -> str:
    """What ``load_model`` should get for ``source``: a path or 'default' unchanged, an installed
    model's folder for its name, 'default' for the bundled model's catalogue name."""
    text = str(source)
    if text == "default" or Path(text).expanduser().exists():
        return text
    if text.startswith("file:"):
        return file_url_path(text)
    model = store.find_installed(text) if store.NAME_PATTERN.match(text) else None
    if model is not None:
        return str(model.path)
    try:
        entry = load_catalog().get(text) if store.NAME_PATTERN.match(text) else None
    except InputError:
        entry = None
    if entry is not None and entry.bundled:
        return "default"
    if entry is not None:
        raise InputError(f"model {entry.name!r} is in the catalogue but not installed: run 'medseg models install "
                         f"{entry.name}' (or 'medseg models import FILE.zip' for a zip downloaded elsewhere)")
    if store.NAME_PATTERN.match(text) and "." not in text:
        raise InputError(f"model not found: {text!r} is not a file or folder, nor an installed or catalogue model "
                         f"('medseg models list' shows them)")
    return text
