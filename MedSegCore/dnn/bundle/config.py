"""Reading a MONAI bundle folder: its inference config (JSON or YAML) into MONAI's
``ConfigParser``, its ``metadata.json``, what it is (:class:`BundleInfo`, with a content hash),
whether it is interactive, and its ``scripts/`` on ``sys.path`` as ``ConfigWorkflow.run`` does.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from ...errors import InputError

CONFIG_NAMES = ("inference.json", "inference.yaml", "inference.yml")
_SKIP_DIRS = {"eval", "__pycache__", ".git", ".ipynb_checkpoints"}
# Words in transform/network targets and config ids of point- or click-guided bundles.
_INTERACTIVE_TARGETS = ("deepedit", "deepgrow", "vista3d", "vista2d", "addguidance", "addinitialseedpoint",
                        "findaddnewguidance", "adddeepgrowguidance", "nuclick")
_INTERACTIVE_IDS = ("use_click", "label_prompt", "points", "point_labels", "click", "guidance")


@dataclass(frozen=True)
class BundleInfo:
    """What the user is asked to trust: ``name``, ``version``, ``authors``, ``sha256`` of the
    bundle's files (configs, scripts, weights), the ``folder`` and its inference ``config``."""

    name: str
    version: str
    authors: str
    sha256: str
    folder: str
    config: str

    def describe(self) -> str:
        return f"{self.name} {self.version} by {self.authors or 'unknown authors'} (sha256 {self.sha256[:16]}…)"


def is_bundle(folder) -> bool:
    """True if ``folder`` looks like a MONAI bundle (``configs/`` with an inference config)."""
    configs = Path(folder) / "configs"
    return configs.is_dir() and any((configs / n).is_file() for n in CONFIG_NAMES)


def config_path(folder) -> Path:
    configs = Path(folder) / "configs"
    cfg = next((configs / n for n in CONFIG_NAMES if (configs / n).is_file()), None)
    if cfg is None:
        raise InputError(f"MONAI bundle {Path(folder).name}: configs/inference.json (or .yaml) not found")
    return cfg


def read_metadata(folder) -> dict:
    path = Path(folder) / "configs" / "metadata.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f"MONAI bundle {Path(folder).name}: cannot read configs/metadata.json: {e}") from None
    return data if isinstance(data, dict) else {}


def input_format(meta: dict) -> dict:
    """The first input's entry of metadata's network_data_format (empty if none)."""
    inputs = ((meta.get("network_data_format") or {}).get("inputs") or {})
    fmt = next(iter(inputs.values()), {}) if isinstance(inputs, dict) else {}
    return fmt if isinstance(fmt, dict) else {}


def channel_names(meta: dict) -> list:
    """Names of the input channels from the metadata's channel_def, in channel order."""
    names = {int(k): str(v) for k, v in (input_format(meta).get("channel_def") or {}).items() if str(k).isdigit()}
    return [names[k] for k in sorted(names)]


def input_channel_names(folder) -> list:
    """Names of the bundle's input channels from metadata.json (channel_def), in channel order."""
    return channel_names(read_metadata(folder))


def content_hash(folder) -> str:
    """sha256 over the relative path and bytes of every file of the bundle (outputs, caches and
    hidden files left out), in sorted order: any change to configs, scripts or weights changes it."""
    root = Path(folder)
    digest = hashlib.sha256()
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        files += [Path(dirpath) / f for f in filenames if not f.startswith(".") and not f.endswith(".pyc")]
    for path in sorted(files, key=lambda p: p.relative_to(root).as_posix()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def bundle_info(folder) -> BundleInfo:
    """Name, version, authors and content hash of the bundle in ``folder`` (no torch needed)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InputError(f"MONAI bundle not found: {folder}")
    cfg = config_path(folder)
    meta = read_metadata(folder)
    authors = meta.get("authors", "")
    authors = ", ".join(map(str, authors)) if isinstance(authors, list) else str(authors or "")
    return BundleInfo(str(meta.get("name") or folder.name), str(meta.get("version", "unknown")), authors,
                      content_hash(folder), str(folder.resolve()), str(cfg))


def read_parser(folder, cfg: Path | None = None):
    """A ConfigParser holding the inference config and metadata, ``bundle_root`` set to ``folder``."""
    from monai.bundle import ConfigParser

    folder = Path(folder)
    cfg = cfg or config_path(folder)
    if cfg.suffix != ".json":
        try:
            import yaml  # noqa: F401
        except ImportError:
            raise InputError(f"MONAI bundle {folder.name}: {cfg.name} is YAML, which needs the PyYAML package "
                             "(pip install pyyaml)") from None
    parser = ConfigParser()
    try:
        parser.read_config(str(cfg))
        if (folder / "configs" / "metadata.json").is_file():
            parser.read_meta(str(folder / "configs" / "metadata.json"))
    except Exception as e:                                              # noqa: BLE001
        raise InputError(f"MONAI bundle {folder.name}: cannot read {cfg.name}: {e}") from None
    parser["bundle_root"] = str(folder.resolve())
    return parser


def _targets(node) -> list:
    found, stack = [], [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            t = item.get("_target_")
            if isinstance(t, str):
                found.append(t)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def interactive_reason(config: dict, meta: dict) -> str | None:
    """Why a bundle is point- or click-guided (deepedit, deepgrow, vista3d, ...), or None."""
    text = " ".join(str(meta.get(k, "")) for k in ("name", "task", "description")).lower()
    for word in ("deepedit", "deepgrow", "vista3d", "vista2d", "nuclick", "interactive"):
        if word in text:
            return f"it is an interactive ({word}) model that needs clicks or prompts"
    for target in _targets(config):
        name = target.rsplit(".", 1)[-1].lower()
        if any(name.startswith(w) for w in _INTERACTIVE_TARGETS):
            return f"its config uses {target.rsplit('.', 1)[-1]}, which needs clicks or prompts"
    ids = [k for k in config if isinstance(k, str) and k.lower() in _INTERACTIVE_IDS]
    if ids:
        return f"its config takes {ids[0]!r}, i.e. clicks or prompts"
    fmt = input_format(meta)
    n, names = fmt.get("num_channels"), fmt.get("channel_def") or {}
    if isinstance(n, int) and names and n > len(names):
        return (f"its network takes {n} input channels but only {len(names)} are images "
                "(the others are guidance from clicks)")
    return None


@contextlib.contextmanager
def on_sys_path(folder):
    """The bundle folder on ``sys.path`` (as ConfigWorkflow.run inserts it at index 1), with any
    other bundle's ``scripts`` package unloaded first (as MONAI Label's BundleInferTask does)."""
    folder = str(Path(folder).resolve())
    for name in [m for m in sys.modules if m == "scripts" or m.startswith("scripts.")]:
        origin = getattr(sys.modules.get(name), "__file__", None) or ""
        if not origin.startswith(folder + os.sep):
            del sys.modules[name]
    sys.path.insert(1, folder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
