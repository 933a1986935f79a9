"""How much memory this machine can give, and refusing work that cannot fit before it starts."""
from __future__ import annotations

import os

from ..errors import InputError


def available_memory() -> int:
    """Bytes of memory a new allocation can get now: MemAvailable plus free swap on Linux, else
    physical memory; 0 when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f if line.split()[1:]}
        return info.get("MemAvailable", info.get("MemFree", 0)) + info.get("SwapFree", 0)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def human(n: float) -> str:
    """Bytes as B/KiB/MiB/GiB/TiB/PiB text."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def check_allocation(source: str, nbytes: int, what: str) -> None:
    """Raise InputError if ``nbytes`` (for ``what``, e.g. '512x512x300 voxels') cannot fit in memory."""
    free = available_memory()
    if free and nbytes > free:
        raise InputError(f"{source}: {what} need {human(nbytes)}, more than the {human(free)} of memory "
                         "available (the header is wrong, or the data is too large for this machine)")
