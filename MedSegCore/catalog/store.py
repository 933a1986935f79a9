"""The model store: ``$MEDSEG_HOME/models`` (default ``~/.medseg/models``).

One folder per installed model, ``<store>/<name>/``, holding ``model/`` (the folder the loader
takes: a MONAI bundle or card + weights, exactly as unpacked) and ``install.json`` (what was
installed, from where, and its SHA-256).  A model is first assembled in a hidden staging folder
inside the store and then renamed into place, so a failed, cancelled or killed installation never
leaves a folder under a model's name; staging folders of processes that are gone are deleted on
the next use.  Partial downloads live in ``$MEDSEG_HOME/downloads`` so an install can resume.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, ParameterError
from ..home import medseg_home

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
RECORD = "install.json"
MODEL_DIR = "model"


def models_dir() -> Path:
    return medseg_home() / "models"


def downloads_dir() -> Path:
    return medseg_home() / "downloads"


def check_name(name: str) -> str:
    """``name`` if it can name a model folder (letters, digits, '_', '.', '-'), else ParameterError."""
    if not NAME_PATTERN.match(name or "") or name in (".", ".."):
        raise ParameterError(f"{name!r} is not a valid model name (use letters, digits, '_', '.' and '-')")
    if name.lower() == "default":
        raise ParameterError("'default' names the bundled model; choose another name")
    return name


@dataclass(frozen=True)
class Installed:
    """An installed model: its name, version, the folder to load and its install record."""

    name: str
    version: str
    path: Path
    record: dict


def _alive(pid: int) -> bool:
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tidy(store: Path) -> None:
    """Delete staging folders of dead processes; put back a model a crash left in the trash."""
    for p in store.iterdir():
        found = re.match(r"^\.(staging|trash|removed)-(\d+)-(.+)$", p.name)
        if not found or _alive(int(found.group(2))):
            if not (found and os.name != "posix" and time.time() - p.stat().st_mtime > 86400):
                continue                  # no cheap liveness test off POSIX: a day-old leftover is dead
        if found.group(1) == "trash" and not (store / found.group(3)).exists():
            os.replace(p, store / found.group(3))
        else:
            shutil.rmtree(p, ignore_errors=True)


def _read(folder: Path) -> Installed | None:
    try:
        record = json.loads((folder / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    model = folder / MODEL_DIR
    if not model.is_dir():
        return None
    return Installed(record.get("name", folder.name), str(record.get("version", "?")), model, record)


def installed() -> list:
    """Every installed model, sorted by name (folders without a valid record are ignored)."""
    store = models_dir()
    if not store.is_dir():
        return []
    _tidy(store)
    found = [_read(p) for p in sorted(store.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    return [m for m in found if m is not None]


def find_installed(name: str) -> Installed | None:
    """The installed model called ``name`` (exact, then case-insensitive), or None."""
    models = installed()
    return (next((m for m in models if m.name == name), None)
            or next((m for m in models if m.name.lower() == name.lower()), None))


@contextmanager
def install_lock(name: str):
    """Held while ``name`` is downloaded and installed, so two installs (panel and CLI) never share a
    partial download; a lock left by a process that is gone is taken over."""
    path = downloads_dir() / f"{check_name(name)}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            try:
                pid, age = int(path.read_text(encoding="utf-8") or 0), time.time() - path.stat().st_mtime
            except (OSError, ValueError):
                pid, age = 0, 0.0
            if pid and pid != os.getpid() and _alive(pid) and (os.name == "posix" or age < 6 * 3600):
                raise InputError(f"{name} is being installed by another MedSeg process (pid {pid}); "
                                 f"wait for it to finish") from None
            path.unlink(missing_ok=True)
    else:
        raise InputError(f"cannot lock {path} for installing {name}")
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


@contextmanager
def staging():
    """A fresh folder inside the store; deleted unless :func:`commit` moved it into place."""
    store = models_dir()
    store.mkdir(parents=True, exist_ok=True)
    _tidy(store)
    folder = Path(tempfile.mkdtemp(prefix=f".staging-{os.getpid()}-", dir=store))
    try:
        yield folder
    finally:
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)


def commit(staged: Path, name: str, record: dict) -> Installed:
    """Write ``install.json`` into ``staged`` and rename it to ``<store>/<name>``, replacing an older
    install of that name only once the new one is complete."""
    check_name(name)
    store = models_dir()
    with open(staged / RECORD, "w", encoding="utf-8") as f:
        json.dump({**record, "name": name, "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
                  f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    final = store / name
    trash = None
    if final.exists():
        trash = store / f".trash-{os.getpid()}-{name}"
        os.replace(final, trash)
    try:
        os.replace(staged, final)
    except OSError as e:
        if trash is not None:
            os.replace(trash, final)
        raise InputError(f"cannot install {name} into {store}: {e.strerror or e}") from None
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
    return _read(final)


def remove(name: str) -> Installed:
    """Delete the installed model ``name`` (renamed away first, so it disappears at once)."""
    model = find_installed(check_name(name))
    if model is None:
        raise InputError(f"no installed model called {name!r} ('medseg models list --installed' shows them)")
    folder = model.path.parent
    trash = folder.with_name(f".removed-{os.getpid()}-{folder.name}")
    os.replace(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)
    return model
