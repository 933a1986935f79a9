"""MedSeg's own folder: ``$MEDSEG_HOME``, default ``~/.medseg`` (installed models, downloads, the
trusted-bundle list, exported inference runtimes of read-only models)."""
from __future__ import annotations

import os
from pathlib import Path


def medseg_home() -> Path:
    """``$MEDSEG_HOME`` or ``~/.medseg`` (not created here)."""
    return Path(os.environ.get("MEDSEG_HOME") or Path.home() / ".medseg").expanduser()
