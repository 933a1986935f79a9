"""Where exported models live: next to the model (``<model folder>/.medseg-cache``), or under
``$MEDSEG_HOME/cache`` (default ``~/.medseg/cache``) when the model's folder is read-only (the bundled
model inside an install).  Files are named by the network's content hash and the runtime's version,
so a changed model or an upgraded runtime never reuses a stale export; they are written atomically."""
from __future__ import annotations

import hashlib
import os
import weakref
from pathlib import Path

from ...home import medseg_home

_HASHES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def content_hash(network) -> str:
    """sha256 (first 16 hex digits) of the network's class and ``repr`` (its layers and their
    settings) and every parameter and buffer, by name, shape, dtype and bytes: equal networks give
    equal hashes wherever they came from."""
    try:
        return _HASHES[network]
    except (KeyError, TypeError):
        pass
    import torch

    h = hashlib.sha256(f"{type(network).__module__}.{type(network).__qualname__}\n{network!r}".encode())
    for name, t in network.state_dict().items():
        t = t.detach().cpu().contiguous().reshape(-1)
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    digest = h.hexdigest()[:16]
    try:
        _HASHES[network] = digest
    except TypeError:
        pass
    return digest


def _writable(folder: Path) -> bool:
    folder = folder if folder.exists() else folder.parent
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


def cache_dir(model_source: str | None) -> Path:
    """``<model folder>/.medseg-cache`` when that folder is writable, else ``$MEDSEG_HOME/cache``
    (also when the model has no folder, e.g. a network built in memory).  Created if missing."""
    if model_source:
        src = Path(model_source).expanduser()
        folder = src if src.is_dir() else src.parent
        if src.exists() and _writable(folder / ".medseg-cache"):
            target = folder / ".medseg-cache"
            target.mkdir(exist_ok=True)
            return target
    target = medseg_home() / "cache"
    target.mkdir(parents=True, exist_ok=True)
    return target


def cache_path(model_source: str | None, network, runtime: str, version: str, suffix: str,
               digest: str | None = None) -> Path:
    """File for ``network`` (or the network whose :func:`content_hash` is ``digest``) exported for
    ``runtime`` ``version``: <hash>-<runtime>-<version><suffix>."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in version)
    return cache_dir(model_source) / f"{digest or content_hash(network)}-{runtime}-{safe}{suffix}"


def shape_text(shape) -> str:
    """``(1, 64, 64, 64)`` -> ``'1x64x64x64'`` (window shapes in cache file names)."""
    return "x".join(str(int(v)) for v in shape)


def store(path, data: bytes) -> None:
    """Write ``data`` to the cache file ``path`` atomically; a read-only or full cache folder only
    loses the record (what it saves is computed again next time)."""
    try:
        from ...image.io import atomic_path

        with atomic_path(str(path)) as tmp, open(tmp, "wb") as f:
            f.write(data)
    except Exception:                           # noqa: BLE001 - any failure: run without the record
        pass


def constant_output(model_source: str | None, digest: str, value: float, shape: tuple, compute):
    """The network's output (float32 numpy) on a window of ``shape`` (C, I, J, K) holding only
    ``value``: read from ``<digest>-constant-<value>-<shape>.npy`` in :func:`cache_dir` if there, else
    ``compute()`` and written there atomically (a failed write only loses the cache)."""
    import numpy as np

    path = cache_path(model_source, None, "constant", f"{float(value).hex()}-{shape_text(shape)}", ".npy",
                      digest=digest)
    if path.is_file():
        try:
            out = np.load(path, allow_pickle=False)
            if out.dtype == np.float32 and out.shape[1:] == tuple(shape[1:]):
                return out
        except (OSError, ValueError):
            pass
    import io

    out = np.ascontiguousarray(compute(), dtype=np.float32)
    buffer = io.BytesIO()
    np.save(buffer, out, allow_pickle=False)
    store(path, buffer.getvalue())
    return out
