"""Run inference in a separate process with progress, cancel and a clean scene on cancel.

Why a process and not a thread: inference holds the GIL in Python pre/post-processing (a thread
would still stutter Slicer's GUI), a CUDA or driver crash would take Slicer down with it, and a
thread cannot be stopped mid-window, while a process can be killed at once.  This follows
SlicerMONAIAuto3DSeg.  The scene is only touched after the process finished, by the caller, so a
cancelled run leaves it exactly as it was.

The launcher is injectable (``popen``) so tests can run it synchronously or mock it.
"""
from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict


def emit(**message) -> None:
    """Write one message of the worker protocol: a JSON line on stdout, flushed at once (numpy
    numbers are written as floats)."""
    sys.stdout.write(json.dumps(message, default=float) + "\n")
    sys.stdout.flush()

from ..errors import CancelledError, MedSegError


def python_executable() -> str:
    """Slicer's ``PythonSlicer`` inside Slicer, else this interpreter."""
    return shutil.which("PythonSlicer") or sys.executable


def _package_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class WorkerProcess:
    """A MedSeg worker module run as a child process that prints JSON lines; ``launch`` ->
    ``poll`` (until ``finished``).  Subclasses write the request and read the result."""

    module = ""

    def __init__(self, popen=subprocess.Popen, python: str | None = None):
        self._popen = popen
        self._python = python or python_executable()
        self._events = queue.Queue()
        self.process = None
        self.workdir = None
        self.progress = 0.0
        self.text = ""
        self.error = None
        self.done = False
        self.started = None

    def launch(self, request: dict) -> None:
        """Write ``request`` as JSON into the work folder and start the worker on it."""
        request_path = os.path.join(self.workdir, "request.json")
        with open(request_path, "w", encoding="utf-8") as f:
            json.dump(request, f)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_package_root(), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONIOENCODING"] = "utf-8"
        self.started = time.monotonic()
        self.process = self._popen([self._python, "-m", self.module, request_path],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, encoding="utf-8",
                                   errors="replace", env=env)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            line = line.strip()
            if line.startswith("{"):
                try:
                    self._events.put(json.loads(line))
                    continue
                except json.JSONDecodeError:
                    pass
            if line:
                self._events.put({"log": line})
        self._events.put({"exit": self.process.wait()})

    def poll(self) -> list:
        """Events received since the last poll (progress, log lines, done/error/exit)."""
        events = []
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return events
            if "progress" in event:
                self.progress, self.text = event["progress"], event.get("text", self.text)
            if "error" in event:
                self.error = event["error"]
            if "done" in event:
                self.done = True
            if "exit" in event and event["exit"] != 0 and self.error is None:
                self.error = f"inference process exited with status {event['exit']}"
            events.append(event)

    @property
    def finished(self) -> bool:
        return self.done or self.error is not None

    def elapsed(self) -> float:
        return 0.0 if self.started is None else time.monotonic() - self.started

    def eta(self) -> float | None:
        """Seconds left, extrapolated from progress so far (None until there is some)."""
        if self.progress <= 0.02:
            return None
        return self.elapsed() * (1 - self.progress) / self.progress

    def wait(self, timeout: float | None = None) -> None:
        """Block until finished (the synchronous path)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.finished:
            self.poll()
            if deadline is not None and time.monotonic() > deadline:
                raise MedSegError("inference process did not finish in time")
            time.sleep(0.05)

    def cancel(self) -> None:
        """Stop the child at once and delete everything it wrote."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.error = self.error or "cancelled"
        self.cleanup()

    def cleanup(self) -> None:
        if self.workdir and os.path.isdir(self.workdir):
            shutil.rmtree(self.workdir, ignore_errors=True)


class InferenceProcess(WorkerProcess):
    """One inference run in a child process.  ``start`` -> ``poll`` (until ``finished``) -> ``result``."""

    module = "MedSegCore.dnn.worker"

    def start(self, inputs, model, options) -> None:
        """Write the inputs ((array, Geometry) pairs) to a private folder and launch the worker."""
        from ..image import io

        self.workdir = tempfile.mkdtemp(prefix="medseg-infer-")
        paths = []
        for i, (array, geometry) in enumerate(inputs):
            path = os.path.join(self.workdir, f"input_{i}.nrrd")
            io.write_volume(array, geometry, path, compress=False)
            paths.append(path)
        self.launch({"inputs": paths, "model": str(model), "options": asdict(options), "output_dir": self.workdir})

    def result(self):
        """(labelmap array, {label name: probability array}, summary dict) of a finished run."""
        from ..image import io

        if self.error is not None:
            if self.error == "cancelled":
                raise CancelledError("inference cancelled by the user")
            raise MedSegError(self.error)
        with open(os.path.join(self.workdir, "result.json"), encoding="utf-8") as f:
            summary = json.load(f)
        labelmap, geometry = io.read_volume(os.path.join(self.workdir, "labelmap.nrrd"))
        if summary.get("own_grid"):
            summary["labelmap_geometry"] = geometry
        probabilities = {name: io.read_volume(path)[0] for name, path in summary["probabilities"].items()}
        return labelmap, probabilities or None, summary
