"""Deep-learning dependencies: what is installed and whether CUDA is usable.

Nothing is installed at import time.  Inside Slicer, ``MedSegCore.mrml.torch_install`` installs torch
through the PyTorch extension's ``PyTorchUtils`` (which picks the CUDA build matching the driver) and
MONAI with pip, only after the user confirmed.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass

MONAI_REQUIREMENT = "monai>=1.4"


@dataclass
class DependencyStatus:
    torch: str | None           # installed version, or None
    monai: str | None
    cuda: bool
    device_name: str

    @property
    def ready(self) -> bool:
        return self.torch is not None and self.monai is not None

    def message(self) -> str:
        """The pre-flight line shown before a run."""
        if self.torch is None:
            return "PyTorch is not installed: it will be installed (with your confirmation) on first use."
        if self.monai is None:
            return f"PyTorch {self.torch} found; MONAI is not installed and will be on first use."
        where = f"CUDA found: {self.device_name}" if self.cuda else "CUDA not found: inference runs on the CPU (slower)"
        return f"PyTorch {self.torch}, MONAI {self.monai}. {where}."


def _version(name: str) -> str | None:
    if importlib.util.find_spec(name) is None:
        return None
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def status(check_cuda: bool = True) -> DependencyStatus:
    """Installed versions and CUDA availability (imports torch only if it is installed)."""
    torch_version, monai_version = _version("torch"), _version("monai")
    cuda, name = False, "CPU"
    if torch_version and check_cuda:
        import torch

        cuda = bool(torch.cuda.is_available())
        name = torch.cuda.get_device_name(0) if cuda else "CPU"
    return DependencyStatus(torch_version, monai_version, cuda, name)


def require(feature: str) -> None:
    """Raise a clear MedSegError if PyTorch or MONAI is missing (outside Slicer)."""
    from ..errors import MedSegError

    current = status(check_cuda=False)
    if not current.ready:
        missing = " and ".join(n for n, v in (("PyTorch", current.torch), ("MONAI", current.monai)) if v is None)
        raise MedSegError(f"{feature} needs {missing}: install torch (the build for your GPU, or the CPU one) "
                          "and then: pip install 'medseg[dnn]'")
