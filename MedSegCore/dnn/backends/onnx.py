"""ONNX export (shared by ONNX Runtime and OpenVINO) and the ONNX Runtime predictor.

The export is PyTorch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``,
opset 17, dynamic batch, fixed window shape), measured on the bundled U-Net: probabilities within 3e-4 of PyTorch.
The file is cached by the network's content hash, the opset, the window shape and the torch version that wrote it.

For OpenVINO the network is exported with each ``InstanceNorm`` computed on a (N, C, voxels) view
(:class:`PlanarInstanceNorm`, the same arithmetic): OpenVINO's CPU plugin runs a 5D instance norm in
the blocked layout its convolutions write, and that kernel's mean is far less precise (measured on the
bundled U-Net over MNI152: logits off by 0.10 in near-empty windows, probabilities by 3.6e-3); on the
flat view it uses its planar kernel (logits within 9e-3, probabilities within 1e-3 of PyTorch).
"""
from __future__ import annotations

import copy
import warnings

from .cache import cache_path

OPSET = 17


def _planar_instance_norm():
    import torch

    class PlanarInstanceNorm(torch.nn.Module):
        """``InstanceNorm1d/2d/3d`` (running statistics unused, as in eval without them) on the
        (N, C, voxels) view of its input; affine weight and bias applied afterwards."""

        def __init__(self, norm):
            super().__init__()
            self.eps = float(norm.eps)
            self.weight = norm.weight if norm.affine else None
            self.bias = norm.bias if norm.affine else None

        def forward(self, x):
            flat = torch.nn.functional.instance_norm(x.reshape(x.shape[0], x.shape[1], -1), eps=self.eps)
            y = flat.reshape(x.shape)
            if self.weight is not None:
                shape = (1, -1) + (1,) * (x.ndim - 2)
                y = y * self.weight.reshape(shape) + self.bias.reshape(shape)
            return y
    return PlanarInstanceNorm


def planar_norms(network):
    """A copy of ``network`` whose instance norms (without running statistics) work on a flat
    (N, C, voxels) view, or ``network`` itself when it has none (or cannot be copied: TorchScript)."""
    import torch

    kinds = (torch.nn.InstanceNorm1d, torch.nn.InstanceNorm2d, torch.nn.InstanceNorm3d)
    if isinstance(network, torch.jit.ScriptModule) or not any(
            isinstance(m, kinds) and not m.track_running_stats for m in network.modules()):
        return network
    planar, twin = _planar_instance_norm(), copy.deepcopy(network)
    for module in list(twin.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, kinds) and not child.track_running_stats:
                setattr(module, name, planar(child))
    return twin


def export_onnx(network, roi, model_source: str | None, in_channels: int, planar: bool = False) -> str:
    """Path of ``network`` exported to ONNX (exported now unless cached); raises on failure.
    ``planar``: instance norms on a flat view (:func:`planar_norms`, for OpenVINO)."""
    import torch

    from ...image.io import atomic_path, captured_stderr

    shape = "x".join(str(int(v)) for v in (in_channels, *roi))
    kind = "onnx-planar" if planar else "onnx"
    path = cache_path(model_source, network, kind, f"opset{OPSET}-torch{torch.__version__}-{shape}", ".onnx")
    if path.is_file():
        return str(path)
    example = torch.zeros((1, in_channels, *map(int, roi)), dtype=torch.float32)
    exported = planar_norms(network) if planar else network
    # captured_stderr: on a failure PyTorch's exporter prints the whole Torch IR graph to the C stderr;
    # the caller reports the failure in one line instead.
    with atomic_path(str(path)) as tmp, warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad(), \
            captured_stderr():
        warnings.simplefilter("ignore")          # tracer notes on MONAI's shape checks (shapes are fixed here)
        torch.onnx.export(exported, (example,), tmp, dynamo=False, opset_version=OPSET, input_names=["x"],
                          output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    return str(path)


def onnxruntime_forward(onnx_path: str, threads: int):
    """A callable numpy (N, C, I, J, K) float32 -> numpy logits, on ONNX Runtime's CPU provider."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(int(threads), 1)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def forward(x):
        return session.run(None, {name: x})[0]
    return forward
