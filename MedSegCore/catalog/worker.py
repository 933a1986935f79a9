"""Install a catalogue model in a child process: ``python -m MedSegCore.catalog.worker REQUEST.json``.

Slicer's panel starts it through :class:`InstallProcess` (the same JSON-lines protocol as the
inference worker, MedSegCore/dnn/process.py) so the GUI never waits on the network, and Cancel
kills the child at once.  Killing it is safe: the model is renamed into the store only when it is
complete (staging folders of dead processes are removed later) and the partial download is kept,
so installing again resumes it.
"""
from __future__ import annotations

import json
import sys
import tempfile

from ..dnn.process import WorkerProcess, emit as _emit


def run(request_path: str) -> int:
    from ..errors import MedSegError
    from .install import install

    with open(request_path, encoding="utf-8") as f:
        request = json.load(f)

    def progress(done, total):
        text = f"{done / 1e6:.1f} of {total / 1e6:.1f} MB" if total else f"{done / 1e6:.1f} MB"
        _emit(progress=round(done / total, 4) if total else 0.0, text=f"Downloading {request['name']}: {text}")

    try:
        outcome = install(request["name"], progress=progress, force=request.get("force", False))
    except MedSegError as exc:
        _emit(error=str(exc))
        return 1
    except Exception as exc:                                           # noqa: BLE001 (one line for the panel)
        _emit(error=f"{type(exc).__name__}: {exc}")
        return 1
    _emit(progress=1.0, text=outcome.message, path=str(outcome.model.path) if outcome.model else None)
    _emit(done=True)
    return 0


class InstallProcess(WorkerProcess):
    """``start(name)`` -> ``poll()`` until ``finished``; ``text`` holds the last message, ``error`` a failure."""

    module = "MedSegCore.catalog.worker"

    def start(self, name: str, force: bool = False) -> None:
        self.workdir = tempfile.mkdtemp(prefix="medseg-install-")
        self.launch({"name": name, "force": force})


if __name__ == "__main__":
    sys.exit(run(sys.argv[1]))
