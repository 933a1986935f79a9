"""OpenVINO predictor: the ONNX export read by OpenVINO, reshaped to a fixed window batch (faster than
a dynamic one; a short last batch is padded), saved as OpenVINO IR keyed by the OpenVINO version, and
compiled for the CPU in float32 (``INFERENCE_PRECISION_HINT`` f32: OpenVINO would otherwise pick bf16
on CPUs that have it) with ``INFERENCE_NUM_THREADS`` set to torch's thread count."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np



def openvino_ir(onnx_path: str, batch: int) -> str:
    """Path of the cached IR (.xml, its .bin beside it) for ``batch`` windows, beside the ONNX file
    and named after it (network hash, window shape, torch version) and the OpenVINO version; written
    atomically (the .bin first, the .xml last, so an .xml present means a complete pair)."""
    import openvino as ov

    from ...image.io import atomic_path

    onnx = Path(onnx_path)
    xml = onnx.with_name(f"{onnx.stem}-openvino-{ov.__version__.split('-')[0]}-b{int(batch)}.xml")
    if xml.is_file() and xml.with_suffix(".bin").is_file():
        return str(xml)
    model = ov.Core().read_model(onnx_path)
    shape = [int(str(d)) for d in list(model.inputs[0].get_partial_shape())[1:]]     # C, I, J, K are static
    model.reshape({0: [batch, *shape]})
    with atomic_path(str(xml)) as tmp:
        tmp_bin = os.path.splitext(tmp)[0] + ".bin"
        try:
            ov.save_model(model, tmp, compress_to_fp16=False)
            os.replace(tmp_bin, xml.with_suffix(".bin"))
        finally:
            if os.path.exists(tmp_bin):
                os.remove(tmp_bin)
    return str(xml)


def openvino_forward(xml_path: str, batch: int, threads: int):
    """A callable numpy (n <= batch, C, I, J, K) float32 -> numpy logits (n, ...)."""
    import openvino as ov

    compiled = ov.Core().compile_model(xml_path, "CPU", {"INFERENCE_NUM_THREADS": max(int(threads), 1),
                                                         "INFERENCE_PRECISION_HINT": "f32",
                                                         "PERFORMANCE_HINT": "LATENCY"})
    request = compiled.create_infer_request()

    def forward(x):
        n = x.shape[0]
        if n < batch:
            x = np.concatenate([x, np.zeros((batch - n, *x.shape[1:]), x.dtype)])
        return request.infer({0: x})[0][:n].copy()
    return forward
