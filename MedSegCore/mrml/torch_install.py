"""Installing PyTorch and MONAI inside Slicer (the PyTorch extension's installer, then pip), after the
user confirms.  Outside Slicer, ``MedSegCore.dnn.dependencies.require`` says what to install."""
from __future__ import annotations

from ..dnn.dependencies import MONAI_REQUIREMENT, DependencyStatus, status


def install_in_slicer(confirm) -> DependencyStatus:
    """Install what is missing, inside Slicer.  ``confirm(text) -> bool`` asks the user first."""
    import slicer

    current = status(check_cuda=False)
    if current.ready:
        return status()
    if not confirm("MedSeg's deep-learning features need PyTorch and MONAI, which are not installed yet.\n\n"
                   "Install them now? PyTorch comes from the PyTorch extension (a CUDA build matching your "
                   "GPU driver when one is found); this can take several minutes."):
        raise RuntimeError("installation of PyTorch/MONAI was declined")
    if current.torch is None:
        try:
            import PyTorchUtils
        except ModuleNotFoundError:
            raise RuntimeError("the PyTorch extension is required: install it from the Extensions Manager") from None
        if PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=False) is None:
            raise RuntimeError("PyTorch was not installed")
    if current.monai is None:
        slicer.util.pip_install(MONAI_REQUIREMENT)
    return status()
