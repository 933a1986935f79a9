"""Atomic, verified writes: a file appears complete under its final name, or not at all.

A writer fills a temporary file beside the target; before the rename the file is checked (ITK's
NIfTI writer reports a short write on a full disk without failing, so the size and readability
of what was written are verified by type), flushed to disk (``fsync``), and only then renamed
over the target.  On any failure, SIGINT or SIGTERM the temporary file is removed and the old
file is left untouched.  OS errors become one line ("disk full while writing ...").
:func:`append_row` is the same for appends (``timings.csv``).
"""
from __future__ import annotations

import atexit
import contextlib
import errno
import os
import signal
import tempfile
import threading

from ..errors import InputError, OutputError

_LIVE: set = set()                   # temporary files being written, removed at exit or on SIGTERM
_DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG)


def _double_ext(path: str) -> str:
    name = os.path.basename(path).lower()
    for ext in (".seg.nrrd", ".nii.gz", ".hdr.gz", ".img.gz"):
        if name.endswith(ext):
            return ext
    return os.path.splitext(name)[1]


def write_error(path: str, exc: OSError) -> OutputError:
    """One-line error for an OS error while writing ``path``."""
    if exc.errno in _DISK_FULL:
        return OutputError(f"disk full while writing {path}")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return OutputError(f"cannot write {path}: permission denied (the folder is read-only or not yours)")
    if exc.errno == errno.ENOTDIR:
        return OutputError(f"cannot write {path}: a part of the path is a file, not a folder")
    if exc.errno == errno.EISDIR:
        return OutputError(f"cannot write {path}: it is a folder")
    return OutputError(f"cannot write {path}: {exc.strerror or exc}")


def check_output_folder(path: str) -> str:
    """The folder ``path`` will be written into, after checking it exists, is a folder and is
    writable, and that ``path`` itself is not a folder; raises OutputError otherwise."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise OutputError(f"{path}: is a folder; give a file name")
    if not os.path.exists(folder):
        parent = folder
        while parent and not os.path.exists(parent):
            parent = os.path.dirname(parent)
        if parent and not os.path.isdir(parent):
            raise OutputError(f"{path}: {parent} is a file, not a folder")
        raise OutputError(f"{path}: output folder {folder} does not exist")
    if not os.path.isdir(folder):
        raise OutputError(f"{path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: output folder {folder} is not writable (read-only or not yours)")
    return folder


def check_folder_creatable(folder: str, what: str = "output folder") -> None:
    """Raise OutputError unless ``folder`` is a writable folder or can be made (its nearest existing
    ancestor is a writable folder, not a file)."""
    probe = os.path.abspath(folder)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        raise OutputError(f"{what} {folder}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise OutputError(f"{what} {folder}: {probe} is not writable (read-only or not yours)")


def check_not_input(path: str, inputs, what: str = "output") -> None:
    """Raise OutputError if the output ``path`` is, or would replace, one of ``inputs`` ({role: path}
    or (role, path) pairs, roles like 'input', 'mask', 'reference', 'model'): the same path, a path
    that resolves to it (symbolic links, '..'), or a hard link to the same file."""
    target = os.path.realpath(path)
    for role, source in (inputs.items() if isinstance(inputs, dict) else inputs):
        if not source:
            continue
        if os.path.realpath(source) == target:
            how = "is the same file as" if os.path.islink(path) else "would overwrite"
            raise OutputError(f"{what} {path} {how} the {role} {source}; choose another output name")
        try:
            same = os.path.exists(path) and os.path.exists(source) and os.path.samefile(path, source)
        except OSError:
            same = False
        if same:
            raise OutputError(f"{what} {path} is the same file as the {role} {source} (a hard link); "
                              "choose another output name")


def _free_bytes(folder: str) -> int:
    try:
        st = os.statvfs(folder)
        return st.f_bavail * st.f_frsize
    except OSError:
        return -1


def verify_written(tmp: str, path: str) -> None:
    """Raise OutputError if the file ``tmp`` (to become ``path``) is not complete and readable
    for its type: NIfTI/NRRD data length, PNG decode, JSON parse, CSV/HTML end, zip CRCs (.pt)."""
    ext = _double_ext(path)
    try:
        if os.path.getsize(tmp) == 0:
            raise InputError("the file is empty")
        if ext in (".nii", ".nii.gz", ".hdr", ".img", ".nrrd", ".seg.nrrd", ".nhdr"):
            from .validate import check_nifti, kind
            from .nrrd_header import check_nrrd
            check_nifti(tmp, finite=False) if kind(path) == "nifti" else check_nrrd(tmp)
        elif ext in (".mha", ".mhd"):
            import SimpleITK as sitk
            sitk.ReadImage(tmp)
        elif ext == ".png":
            from PIL import Image
            with Image.open(tmp) as im:
                im.load()
        elif ext == ".json":
            import json
            with open(tmp, encoding="utf-8") as f:
                json.load(f)
        elif ext in (".csv", ".html", ".txt"):
            with open(tmp, "rb") as f:
                f.seek(-1, os.SEEK_END)
                if f.read(1) not in (b"\n", b">"):
                    raise InputError("the file does not end where it should")
        elif ext in (".pt", ".pth", ".zip"):
            import zipfile
            if zipfile.is_zipfile(tmp):
                with zipfile.ZipFile(tmp) as z:
                    bad = z.testzip()
                if bad:
                    raise InputError(f"member {bad} is corrupt")
    except (InputError, OSError, ValueError, RuntimeError, EOFError, SyntaxError) as exc:
        reason = str(exc).replace(tmp + ": ", "").replace(tmp, os.path.basename(path))
        free = _free_bytes(os.path.dirname(tmp))
        if 0 <= free < (1 << 20):
            raise OutputError(f"disk full while writing {path} (the written file is incomplete: {reason})") from None
        raise OutputError(f"writing {path} failed: the written file is incomplete or unreadable ({reason})") from None


def _fsync(path: str, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    try:
        os.fsync(fd)
    except OSError:
        if not directory:            # some file systems cannot fsync folders; the data is what matters
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str, verify: bool = True):
    """Yield a temporary path beside ``path`` with the same extension.  When the block succeeds the
    file is verified (:func:`verify_written`), fsync'ed and renamed to ``path``; on any failure or
    interruption it is deleted and ``path`` keeps its old content.  OS errors become OutputError."""
    path = str(path)
    folder = check_output_folder(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".medseg-", suffix=_double_ext(path) or ".tmp", dir=folder)
    except OSError as exc:
        raise write_error(path, exc) from None
    os.close(fd)
    _LIVE.add(tmp)
    try:
        try:
            yield tmp
        except OSError as exc:
            raise write_error(path, exc) from None
        except RuntimeError as exc:                   # ITK and Slicer's writers report failures this way
            if "ITK" not in str(exc) and "writer failed" not in str(exc):
                raise
            reason = next((ln.strip() for ln in reversed(str(exc).splitlines()) if ln.strip()), "")
            if 0 <= _free_bytes(folder) < (1 << 20):
                raise OutputError(f"disk full while writing {path}") from None
            raise OutputError(f"writing {path} failed: {reason[:200]}") from None
        try:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)          # mkstemp makes 0600; give the file normal permissions
            if verify:
                verify_written(tmp, path)
            _fsync(tmp)
            pending = getattr(_STATE, "pending", None)
            if pending is not None:                # inside transaction(): renamed when it ends well
                pending.append((tmp, path, folder))
                return
            os.replace(tmp, path)
            _fsync(folder, directory=True)
        except OSError as exc:
            raise write_error(path, exc) from None
    finally:
        if all(tmp != t for t, _, _ in getattr(_STATE, "pending", None) or ()):
            _remove(tmp)


def _remove(tmp: str) -> None:
    _LIVE.discard(tmp)
    with contextlib.suppress(OSError):
        if os.path.lexists(tmp):
            os.remove(tmp)


_STATE = threading.local()            # .pending: (temporary, final path, folder) awaiting transaction()'s end


@contextlib.contextmanager
def transaction():
    """All or nothing for several outputs (a segmentation and its overlay, a case's files): every
    :func:`atomic_path` inside is written and verified, but only renamed into place when the whole
    block succeeds; if anything fails, none of the files (or their old versions) change.  Nested
    transactions join the outer one."""
    if getattr(_STATE, "pending", None) is not None:
        yield
        return
    _STATE.pending = []
    try:
        yield
        for tmp, path, folder in _STATE.pending:
            try:
                os.replace(tmp, path)
                _fsync(folder, directory=True)
            except OSError as exc:
                raise write_error(path, exc) from None
    finally:
        pending, _STATE.pending = _STATE.pending, None
        for tmp, _, _ in pending:
            _remove(tmp)


def append_row(path: str, line: str, header: str | None = None) -> None:
    """Append one text ``line`` (and ``header`` first if the file is new or empty) to ``path`` in a
    single write, fsync'ed.  A partial write (full disk) is cut off again, so the file only ever
    holds whole lines; a file left without a final newline gets one first.  OS errors become
    OutputError."""
    path = str(path)
    check_output_folder(path)
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as exc:
        raise write_error(path, exc) from None
    try:
        size = os.fstat(fd).st_size
        text = line if line.endswith("\n") else line + "\n"
        if size == 0 and header:
            text = (header if header.endswith("\n") else header + "\n") + text
        elif size and os.pread(fd, 1, size - 1) != b"\n":
            text = "\n" + text
        data = text.encode("utf-8")
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, "short write")
            os.fsync(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise write_error(path, exc) from None
    finally:
        os.close(fd)


@contextlib.contextmanager
def captured_stderr():
    """Collect what C/C++ code writes to file descriptor 2 meanwhile (niftilib's "wrote only N of M
    bytes", teem's "[nrrd] ..." lines) and yield a list that receives it, so a failure is reported
    once, as one line, by the caller.  A no-op when descriptor 2 cannot be duplicated."""
    import sys

    collected: list = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield collected
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield collected
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            collected.append(sink.read().decode("utf-8", "replace"))


def remove_live_files() -> None:
    """Delete every temporary file still being written (at exit and on SIGTERM)."""
    for tmp in list(_LIVE):
        with contextlib.suppress(OSError):
            os.remove(tmp)
        _LIVE.discard(tmp)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so ``finally`` blocks remove temporary files."""


def _on_sigterm(signum, frame):
    raise Terminated()


def install_signal_cleanup() -> None:
    """Make SIGTERM raise :class:`Terminated` (SIGINT already raises KeyboardInterrupt), so an
    interrupted write removes its temporary file; for command-line use, in the main thread."""
    with contextlib.suppress(ValueError, OSError):          # not the main thread: leave handlers alone
        signal.signal(signal.SIGTERM, _on_sigterm)


atexit.register(remove_live_files)
__all__ = ["atomic_path", "transaction", "append_row", "verify_written", "check_output_folder", "check_not_input", "write_error",
           "install_signal_cleanup", "Terminated"]
