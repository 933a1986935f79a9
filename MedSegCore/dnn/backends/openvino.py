"""OpenVINO predictor: the ONNX export read by OpenVINO, reshaped to a fixed window batch (faster than
a dynamic one; a short last batch is padded), saved as OpenVINO IR keyed by the OpenVINO version, and
compiled for the CPU in float32 (``INFERENCE_PRECISION_HINT`` f32: OpenVINO would otherwise pick bf16
on CPUs that have it) with ``INFERENCE_NUM_THREADS`` set to torch's thread count, split over parallel
streams (:func:`streams_for`); compiled models are kept in OpenVINO's ``CACHE_DIR`` beside the IR."""
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


def streams_for(threads: int, sw_batch: int) -> tuple[int, int]:
    """(streams, windows per request) for ``sw_batch`` windows on ``threads`` threads: one stream per
    thread up to one per window, each request holding its share of the windows.  Parallel requests
    beat one request spreading each layer over the threads (on 2 threads, 4 windows of the bundled
    U-Net: 2 streams of 1 window took 0.75-0.82 of one request of 4, bench_backends)."""
    threads, sw_batch = max(int(threads), 1), max(int(sw_batch), 1)
    streams = max(min(threads, sw_batch), 1)
    return streams, -(-sw_batch // streams)


def openvino_forward(xml_path: str, batch: int, threads: int, streams: int = 1):
    """A callable numpy (n, C, I, J, K) float32 -> numpy logits (n, ...): the windows split into
    requests of ``batch`` (the IR's fixed batch; a short one padded with zeros), run ``streams`` at a
    time on ``threads`` threads in all."""
    import openvino as ov

    streams = max(int(streams), 1)
    config = {"INFERENCE_NUM_THREADS": max(int(threads), 1), "INFERENCE_PRECISION_HINT": "f32"}
    if streams > 1:
        config.update({"PERFORMANCE_HINT": "THROUGHPUT", "NUM_STREAMS": streams})
    else:
        config["PERFORMANCE_HINT"] = "LATENCY"
    # OpenVINO's own cache of compiled models (keyed by model, device and settings): a later process
    # imports the compiled blob instead of compiling (bundled U-Net: 0.09 s instead of 0.29 s).
    try:
        compiled = ov.Core().compile_model(xml_path, "CPU", {**config,
                                                             "CACHE_DIR": str(Path(xml_path).parent / "openvino-compiled")})
    except RuntimeError:                         # the cache folder cannot be used: compile without it
        compiled = ov.Core().compile_model(xml_path, "CPU", config)
    requests = [compiled.create_infer_request() for _ in range(streams)]
    out_shape = tuple(int(d) for d in compiled.outputs[0].get_shape())[1:]

    def forward(x):
        """The requests take the chunks in turn, each starting its next chunk as soon as its last
        one is done, and write their logits straight into the result (no copies; a short last
        chunk through a padded buffer of its own).  The chunks are shared, not copied: ``alive``
        keeps them until the requests are done."""
        n = x.shape[0]
        result = np.empty((n, *out_shape), np.float32)
        short, alive = [], []
        for k, start in enumerate(range(0, n, batch)):
            request = requests[k % streams]
            if k >= streams:
                request.wait()
            chunk = np.ascontiguousarray(x[start:start + batch], dtype=np.float32)
            if chunk.shape[0] == batch:
                target = result[start:start + batch]
            else:
                chunk = np.concatenate([chunk, np.zeros((batch - chunk.shape[0], *x.shape[1:]), np.float32)])
                target = np.empty((batch, *out_shape), np.float32)
                short.append((start, target))
            alive.append(chunk)
            request.set_output_tensor(0, ov.Tensor(target, shared_memory=True))
            request.start_async({0: chunk}, share_inputs=True)
        for request in requests:
            request.wait()
        for start, target in short:
            result[start:] = target[:n - start]
        return result
    return forward


def fastest(forwards: dict, x) -> tuple:
    """(key of the fastest, {key: seconds}) of ``forwards`` (key -> numpy forward) on the windows
    ``x``: one warm-up run each, then the best of two runs, alternating."""
    import time

    for forward in forwards.values():
        forward(x)
    best = {key: float("inf") for key in forwards}
    for _ in range(2):
        for key, forward in forwards.items():
            start = time.perf_counter()
            forward(x)
            best[key] = min(best[key], time.perf_counter() - start)
    return min(best, key=best.get), best
