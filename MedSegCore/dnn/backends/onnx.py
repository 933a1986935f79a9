"""ONNX export (shared by ONNX Runtime and OpenVINO) and the ONNX Runtime predictor.

The export is PyTorch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``,
opset 17, dynamic batch, fixed window shape), measured on the bundled U-Net: probabilities within 3e-4 of PyTorch.
The file is cached by the network's content hash, the opset, the window shape and the torch version that wrote it.

For OpenVINO the network is exported rewritten, the same function in operations OpenVINO runs
exactly and fast (:mod:`.rewrite`: instance norms reduced one axis at a time, narrow transposed
convolutions as convolution + depth-to-space; :mod:`.winograd`: 3x3x3 convolutions as Winograd
F(4,3) along D, where that measured faster), cached under its own name.
"""
from __future__ import annotations

import warnings

from .cache import cache_path, shape_text
from . import winograd
from .rewrite import for_openvino

OPSET = 17
# Version of the OpenVINO rewrites (.rewrite, .winograd) in the cached file's name: a change to them
# must bump it, or an export written by the old rewrite would be reused.
REWRITE_VERSION = 1


def _rewritten(network, example, use_winograd: bool):
    twin = for_openvino(network)
    return winograd.rewrite(twin, example) if use_winograd else twin


def winograd_applies(network, roi, in_channels: int) -> bool:
    """True if :func:`.winograd.rewrite` changes ``network`` for windows of ``roi``."""
    import torch

    twin = for_openvino(network)
    with torch.inference_mode(False), torch.no_grad():
        return winograd.rewrite(twin, torch.zeros((1, in_channels, *map(int, roi)))) is not twin


def export_onnx(network, roi, model_source: str | None, in_channels: int, openvino: bool = False,
                use_winograd: bool = False) -> str:
    """Path of ``network`` exported to ONNX (exported now unless cached); raises on failure.
    ``openvino``: the network rewritten for OpenVINO (:func:`.rewrite.for_openvino`), with its 3x3x3
    convolutions as Winograd (:func:`.winograd.rewrite`) if ``use_winograd``."""
    import torch

    from ...image.io import atomic_path, captured_stderr

    shape = shape_text((in_channels, *roi))
    kind = f"onnx-openvino-r{REWRITE_VERSION}{'-winograd' if use_winograd else ''}" if openvino else "onnx"
    path = cache_path(model_source, network, kind, f"opset{OPSET}-torch{torch.__version__}-{shape}", ".onnx")
    if path.is_file():
        return str(path)
    example = torch.zeros((1, in_channels, *map(int, roi)), dtype=torch.float32)
    with torch.inference_mode(False), torch.no_grad():
        exported = _rewritten(network, example, use_winograd) if openvino else network
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
