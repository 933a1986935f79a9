"""The bad-input matrix: a case builds its hostile input in a fresh folder and names the command
line; the harness runs it in a separate process and checks what the user sees.

Each ``cases_<area>.py`` module holds a list ``CASES`` of :class:`Case` (images, segmentations,
models, outputs, batch, evaluate, options; the DICOM series cases are the table in
``Testing/test_dicom_series_cli.py``, with the same checks).
A refusal must: exit with ``rc`` (2 by default), print exactly one error line that names the file
(``names``) and matches ``expect``, print no traceback, and leave the case folder exactly as it was
(no output, no temporary file, inputs untouched).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@dataclass
class Case:
    """``build(folder)`` writes the inputs and returns the argv after ``medseg`` (paths inside
    ``folder``); ``expect`` is a regex the error line must match; ``names`` the file (relative to
    ``folder``) the line must name (None: no file); ``rc`` the exit status; ``line`` the regex
    that picks the line the user reads (default: the subcommand's error line); ``changes`` lets
    a case write some files (regex of names allowed to appear); ``needs`` 'root' or 'torch'."""

    id: str
    build: Callable
    expect: str
    names: str | None = None
    rc: int = 2
    line: str | None = None
    changes: str | None = None
    needs: tuple = ()
    setup: Callable | None = None            # run before build, returns a cleanup callable (mounts)
    one_line: bool = True                    # stderr holds nothing but that line
    shows: tuple = ()                        # regexes that must each match some output line (the rest went on)


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    before: dict
    after: dict
    argv: list = field(default_factory=list)


_MOUNT = []


def can_mount() -> bool:
    """True when this process may mount a tmpfs (root with CAP_SYS_ADMIN; not in every container)."""
    if not _MOUNT:
        import tempfile
        ok = False
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            probe = tempfile.mkdtemp(prefix="medseg-mount-")
            ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe],
                                capture_output=True).returncode == 0
            if ok:
                subprocess.run(["umount", probe], capture_output=True)
            os.rmdir(probe)
        _MOUNT.append(ok)
    return _MOUNT[0]


def skip_reason(case) -> str | None:
    """Why ``case`` cannot run here, or None."""
    if "root" in case.needs and not can_mount():
        return "needs root and permission to mount a tmpfs"
    if "readonly" in case.needs and os.geteuid() == 0 and not can_mount():
        return "as root, a read-only folder needs a read-only tmpfs mount"
    if "torch" in case.needs:
        try:
            import torch  # noqa: F401
        except ImportError:
            return "needs torch"
    return None


def snapshot(folder: Path) -> dict:
    """{relative path: (size, sha1)} of every file below ``folder`` (hidden files included), except
    the inference backends' export cache beside a model (``.medseg-cache``, written on purpose)."""
    out = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != ".medseg-cache"]
        for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
            p = os.path.join(root, name)
            rel = os.path.relpath(p, folder)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
            else:
                with open(p, "rb") as f:
                    out[rel] = (os.path.getsize(p), hashlib.sha1(f.read()).hexdigest())
    return out


class ForkServer:
    """A clean interpreter with the CLI imported that forks one child per command line."""

    def __init__(self):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT)] + os.environ.get("PYTHONPATH", "").split(os.pathsep)))
        env.setdefault("OMP_NUM_THREADS", "1")
        self.proc = subprocess.Popen([sys.executable, str(HERE / "forkserver.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env, cwd=str(ROOT))
        self.lock = threading.Lock()
        ready = self.proc.stdout.readline()
        if not ready:
            raise RuntimeError("fork server did not start")

    def run(self, argv, cwd, timeout=300) -> tuple:
        out, err = Path(cwd) / ".stdout.txt", Path(cwd) / ".stderr.txt"
        with self.lock:
            self.proc.stdin.write(json.dumps({"argv": argv, "cwd": str(cwd), "stdout": str(out), "stderr": str(err),
                                              "timeout": timeout}) + "\n")
            self.proc.stdin.flush()
            rc = json.loads(self.proc.stdout.readline())["rc"]
        stdout, stderr = out.read_text(errors="replace"), err.read_text(errors="replace")
        out.unlink()
        err.unlink()
        return rc, stdout, stderr

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def run_subprocess(argv, cwd, timeout=600) -> tuple:
    """The real console entry point, ``python -m MedSegCore``, in a new interpreter."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT)] + os.environ.get("PYTHONPATH", "").split(os.pathsep)))
    p = subprocess.run([sys.executable, "-m", "MedSegCore", *argv], cwd=str(cwd), capture_output=True, text=True,
                       env=env, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def run_case(case: Case, folder: Path, runner) -> Result:
    """Build ``case`` in ``folder`` (its inputs in ``folder``), run it, snapshot before and after."""
    folder.mkdir(parents=True, exist_ok=True)
    cleanup = case.setup(folder) if case.setup else None
    try:
        argv = [str(a) for a in case.build(folder)]
        before = snapshot(folder)
        rc, stdout, stderr = runner(argv, folder)
        after = snapshot(folder)
    finally:
        if cleanup:
            cleanup()
    return Result(rc, stdout, stderr, before, after, argv)


def check(case: Case, result: Result, folder: Path) -> None:
    """Assert what a user of ``case`` must see (see the module docstring)."""
    text = f"argv: {result.argv}\nrc {result.rc}\nstdout:\n{result.stdout[-2000:]}\nstderr:\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stdout + result.stderr, text
    assert result.rc == case.rc, text
    command = result.argv[0] if result.argv else ""
    pattern = case.line or rf"^medseg {re.escape(command)}: error: "
    lines = [ln for ln in (result.stdout + "\n" + result.stderr).splitlines() if re.search(pattern, ln)]
    assert len(lines) == 1, f"expected one line matching {pattern!r}\n{text}"
    line = lines[0]
    assert re.search(case.expect, line), f"line does not match {case.expect!r}: {line}\n{text}"
    if case.names is not None:
        named = case.names if os.path.isabs(case.names) else str(folder / case.names)
        assert named in line or os.path.basename(named) in line, f"line does not name {named}: {line}\n{text}"
    if case.one_line and case.line is None:
        others = [ln for ln in result.stderr.splitlines() if ln.strip() and ln != line]
        assert not others, f"stderr has more than the error line: {others}\n{text}"
    for pattern in case.shows:
        assert re.search(pattern, result.stdout + "\n" + result.stderr, re.M), f"no line matches {pattern!r}\n{text}"
    added = {k for k in result.after if k not in result.before}
    if case.changes:
        added = {k for k in added if not re.search(case.changes, k)}
    changed = {k for k in result.before if result.after.get(k) != result.before[k]}
    assert not added and not changed, f"folder changed: added {sorted(added)}, changed {sorted(changed)}\n{text}"
