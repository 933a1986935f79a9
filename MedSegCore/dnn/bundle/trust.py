"""Trust in a bundle before its config runs: a bundle's config is code (``$`` expressions,
``scripts/``), so the first run of each bundle is confirmed by the user.

Confirmations are remembered per content hash (any change to the bundle asks again) in
``$MEDSEG_HOME/trusted_bundles.json`` (default ``~/.medseg``).  ``MEDSEG_TRUST_BUNDLES=1`` trusts
every bundle (for scripted use).  The CLI passes ``--trust-bundle``; the MedSegDNN panel shows
:meth:`BundleInfo.describe` and asks.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ...errors import InputError
from ...home import medseg_home

STORE_NAME = "trusted_bundles.json"
ENV_TRUST = "MEDSEG_TRUST_BUNDLES"


class UntrustedBundleError(InputError):
    """The bundle has not been trusted yet; the message says how to trust it."""


def store_path() -> Path:
    return medseg_home() / STORE_NAME


def _read() -> dict:
    try:
        data = json.loads(store_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def is_trusted(info) -> bool:
    """True if ``info``'s content hash was trusted before, or MEDSEG_TRUST_BUNDLES=1."""
    if os.environ.get(ENV_TRUST, "").strip().lower() in ("1", "true", "yes"):
        return True
    return info.sha256 in _read()


def remember(info) -> None:
    """Record ``info`` (by content hash) as trusted, atomically."""
    from ...image.io import atomic_path

    data = _read()
    data[info.sha256] = {"name": info.name, "version": info.version, "authors": info.authors,
                         "folder": info.folder, "trusted": time.strftime("%Y-%m-%dT%H:%M:%S")}
    store_path().parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(str(store_path())) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def require(info, trust: bool | None) -> None:
    """Pass if ``trust`` is True (remembered) or the bundle is trusted; else UntrustedBundleError."""
    if trust:
        if not is_trusted(info):
            remember(info)
        return
    if is_trusted(info):
        return
    raise UntrustedBundleError(
        f"MONAI bundle {info.describe()} has not been trusted yet: its config runs Python code. If you trust "
        f"its source, run again with --trust-bundle (or set {ENV_TRUST}=1); MedSeg then remembers this "
        f"bundle (by its content hash) in {store_path()}.")


def trust_question(info) -> str:
    """The confirmation the MedSegDNN panel shows before a bundle's first run."""
    return (f"The MONAI bundle\n\n  {info.name}\n  version {info.version}\n  by {info.authors or 'unknown authors'}\n"
            f"  content hash (sha256) {info.sha256}\n  in {info.folder}\n\nhas not been run before. Its config "
            "contains Python code that runs with your permissions. Run it only if you trust its source.\n\n"
            "Trust this bundle? (MedSeg remembers the answer for exactly these files.)")


def question_for(folder) -> str | None:
    """None if the bundle in ``folder`` is trusted, else :func:`trust_question` for it."""
    from .config import bundle_info

    info = bundle_info(folder)
    return None if is_trusted(info) else trust_question(info)
