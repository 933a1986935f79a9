"""Unpack a model archive (zip) without trusting it, and find the model folder inside.

Every member is checked before anything is written: no absolute paths or drive letters, no ``..``
component, no backslashes, no symbolic links or other special files, no encrypted members, no
duplicate names, and the total declared uncompressed size within a limit (zip bombs).  Members are
then streamed out one by one, counting the bytes actually produced, so a header that understates a
member's size cannot write more than the limit either.  ``zipfile.extractall`` is not used: it
sanitises names silently instead of refusing the archive, and does not bound the size.
"""
from __future__ import annotations

import re
import stat
import zipfile
from pathlib import Path, PurePosixPath

from ..errors import InputError

MAX_MEMBERS = 20000
CHUNK = 1 << 20
BUNDLE_CONFIGS = ("inference.json", "inference.yaml", "inference.yml")
WEIGHT_NAMES = ("model.pt", "model.pth", "model.ts")


class ArchiveError(InputError):
    """An archive that is refused; the message names the member and the reason."""


def default_limit(archive_bytes: int) -> int:
    """The unpacked size allowed when the catalogue gives none: 10x the archive plus 64 MiB."""
    return 10 * archive_bytes + (64 << 20)


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    if "\\" in name:
        return "has a backslash in its path"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "is an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "points outside the archive ('..')"
    if "\x00" in name or not name.strip("/"):
        return "has an invalid name"
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "is a symbolic link"
    if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        return "is not a regular file"
    if info.flag_bits & 0x1:
        return "is encrypted"
    return None


def check_zip(path: Path, max_unpacked: int) -> list:
    """The members of the zip at ``path`` after every check above (ArchiveError on the first problem)."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise ArchiveError(f"{Path(path).name} is not a readable zip archive ({e})") from None
    with zf:
        members = zf.infolist()
    if len(members) > MAX_MEMBERS:
        raise ArchiveError(f"{Path(path).name} has {len(members)} entries (more than {MAX_MEMBERS}); refused")
    seen, total = set(), 0
    for info in members:
        problem = _member_problem(info)
        if problem:
            raise ArchiveError(f"{Path(path).name}: entry {info.filename!r} {problem}; refused, nothing installed")
        key = info.filename.rstrip("/").lower()
        if key in seen and not info.is_dir():
            raise ArchiveError(f"{Path(path).name}: entry {info.filename!r} appears twice; refused, nothing installed")
        seen.add(key)
        total += info.file_size
    if total > max_unpacked:
        raise ArchiveError(f"{Path(path).name} unpacks to {total} bytes, more than the {max_unpacked} allowed "
                           f"(a zip bomb, or not the model the catalogue describes); refused, nothing installed")
    return members


def extract_zip(path: Path, dest: Path, max_unpacked: int, cancel=None) -> None:
    """Unpack the zip at ``path`` into the empty folder ``dest`` after :func:`check_zip`."""
    from ..errors import CancelledError

    dest = Path(dest)
    members = check_zip(path, max_unpacked)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    written = 0
    with zipfile.ZipFile(path) as zf:
        for info in members:
            target = (dest / info.filename).resolve()
            if root not in target.parents and target != root:
                raise ArchiveError(f"{Path(path).name}: entry {info.filename!r} points outside the archive; refused")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, open(target, "xb") as out:
                    for block in iter(lambda: src.read(CHUNK), b""):
                        written += len(block)
                        if written > max_unpacked:
                            raise ArchiveError(f"{Path(path).name} unpacks to more than the {max_unpacked} bytes "
                                               f"allowed; refused, nothing installed")
                        out.write(block)
                        if cancel is not None and cancel():
                            raise CancelledError("installation cancelled; nothing installed")
            except (zipfile.BadZipFile, EOFError, NotImplementedError) as e:
                raise ArchiveError(f"{Path(path).name}: entry {info.filename!r} is damaged ({e}); refused, "
                                   f"nothing installed") from None
            except FileExistsError:
                raise ArchiveError(f"{Path(path).name}: entry {info.filename!r} appears twice; refused") from None


def model_kind(folder: Path) -> str | None:
    """'monai-bundle' for a bundle folder, 'model-card' for card.json + weights, else None."""
    folder = Path(folder)
    if any((folder / "configs" / n).is_file() for n in BUNDLE_CONFIGS):
        return "monai-bundle"
    if (folder / "card.json").is_file() and any((folder / n).is_file() for n in WEIGHT_NAMES):
        return "model-card"
    return None


def find_model_root(folder: Path, what: str) -> tuple:
    """(model folder, kind) of unpacked content: ``folder`` itself or its one top-level folder."""
    folder = Path(folder)
    for candidate in (folder, *_single_child(folder)):
        kind = model_kind(candidate)
        if kind:
            return candidate, kind
    raise ArchiveError(f"{what} holds no model: expected a MONAI bundle (configs/inference.json) or a folder "
                       f"with card.json and model.pt, at its top level or in one folder")


def _single_child(folder: Path) -> list:
    children = [p for p in folder.iterdir() if not p.name.startswith(("__MACOSX", "."))]
    return children if len(children) == 1 and children[0].is_dir() else []
