"""Sliding-window inference: progress, cancel, out-of-memory fallback, devices, memory estimate,
and predict's post-processing."""
import numpy as np
import pytest
import torch

from MedSegCore.dnn import PredictOptions, card_from_dict, predict
from MedSegCore.dnn.inference import _plan, estimate_memory, resolve_device, run_inference, window_count
from MedSegCore.dnn.loading import LoadedModel, load_model
from MedSegCore.errors import CancelledError, InputError, MedSegError, ParameterError
from MedSegCore.image.geometry import Geometry

torch.set_num_threads(2)


class Threshold(torch.nn.Module):
    """Foreground logit where the input exceeds 0.5; records calls and the inference mode."""

    def __init__(self):
        super().__init__()
        self.calls, self.inference_mode = 0, []

    def forward(self, x):
        self.calls += 1
        self.inference_mode.append(torch.is_inference_mode_enabled())
        return torch.cat([torch.full_like(x, 0.5), x], 1) * 20


class Flaky(Threshold):
    """Raises an out-of-memory error on its first ``fail`` calls."""

    def __init__(self, fail, error=torch.cuda.OutOfMemoryError):
        super().__init__()
        self.fail, self.error = fail, error

    def forward(self, x):
        if self.fail > 0:
            self.fail -= 1
            raise self.error("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().forward(x)


def blobs(shape=(40, 48, 56)):
    k, j, i = np.ogrid[:shape[0], :shape[1], :shape[2]]
    big = (k - 20) ** 2 + (j - 24) ** 2 + (i - 20) ** 2 < 12 ** 2
    small = (k - 20) ** 2 + (j - 24) ** 2 + (i - 46) ** 2 < 3 ** 2
    return big, small


IMAGE = np.stack([sum(blobs()).astype(np.float32)])          # (C, I, J, K) for run_inference directly
EXPECTED = IMAGE[0] > 0.5


def card(**changes):
    d = {"name": "threshold", "version": "1", "description": "", "intended_use": "tests", "trained": True,
         "in_channels": 1, "out_channels": 2, "spacing": None, "orientation": None,
         "normalization": {"type": "none"}, "roi_size": [16, 16, 16], "output": "softmax",
         "labels": [{"value": 3, "name": "blob", "color": [1, 0, 0]}]}
    d.update(changes)
    return card_from_dict(d)


def run(net, **kw):
    kw = {"overlap": 0.25, "sw_batch_size": 4, "device": "cpu", "activation": "softmax", **kw}
    return run_inference(net, IMAGE, (16, 16, 16), **kw)


def test_progress_per_window_and_inference_mode():
    seen = []
    net = Threshold()
    out = run(net, sw_batch_size=1, progress=lambda f, t: seen.append((f, t)))
    total = window_count(IMAGE.shape[1:], (16, 16, 16), 0.25)
    assert net.calls == total == len(seen) == 3 * 4 * 5
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and seen[-1][1] == f"window {total} of {total}"
    assert all(net.inference_mode) and not out.requires_grad
    assert out.shape == (2, *IMAGE.shape[1:]) and out.dtype == torch.float32
    assert np.array_equal(out.argmax(0).numpy() == 1, EXPECTED)


@pytest.mark.parametrize("blend", ["constant", "gaussian"])
def test_blend_modes_and_batches_give_the_right_answer(blend):
    seen = []
    out = run(Threshold(), blend=blend, sw_batch_size=3, overlap=0.5, progress=lambda f, t: seen.append(f))
    assert np.array_equal(out.argmax(0).numpy() == 1, EXPECTED)
    assert seen[-1] == 1.0 and len(seen) == -(-window_count(IMAGE.shape[1:], (16,) * 3, 0.5) // 3)
    with pytest.raises(ParameterError, match="blend mode"):
        run(Threshold(), blend="median")


def test_cancel_raises_between_windows_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    net = Threshold()
    with pytest.raises(CancelledError):
        run(net, sw_batch_size=1, cancel=lambda: net.calls >= 2)
    assert net.calls == 2
    model = LoadedModel(Threshold(), card(), "t", "test")
    geom = Geometry(IMAGE.shape[1:], (1, 1, 1), (0, 0, 0), np.eye(3))
    with pytest.raises(CancelledError):
        predict([(IMAGE[0].T, geom)], model, PredictOptions(device="cpu", sw_batch=1),
                cancel=lambda: model.network.calls >= 3)
    assert model.network.calls == 3 and list(tmp_path.iterdir()) == []


def test_oom_halves_sw_batch_and_result_stays_correct():
    messages = []
    net = Flaky(fail=2)
    out = run(net, sw_batch_size=4, message=messages.append)
    assert messages == ["Out of memory with sw_batch 4; retrying with sw_batch 2.",
                        "Out of memory with sw_batch 2; retrying with sw_batch 1."]
    assert np.array_equal(out.argmax(0).numpy() == 1, EXPECTED)


@pytest.mark.parametrize("error", [torch.cuda.OutOfMemoryError, RuntimeError])
def test_oom_falls_back_to_cpu_stitching_then_cpu(error):
    messages = []
    out = run(Flaky(fail=4, error=error), sw_batch_size=4, message=messages.append, cpu_fallback=True)
    assert len(messages) == 4
    assert "stitched on the CPU" in messages[2] and "entirely on the CPU" in messages[3]
    assert np.array_equal(out.argmax(0).numpy() == 1, EXPECTED)
    with pytest.raises(MedSegError, match="out of memory even with sw_batch 1"):
        run(Flaky(fail=99, error=error), sw_batch_size=2, cpu_fallback=True)


def test_fallback_plan_for_a_gpu_and_other_errors_are_not_retried():
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    plan = [(b, s, o) for b, s, o, _ in _plan(cuda, 8, True)]
    assert plan == [(8, cuda, cuda), (4, cuda, cuda), (2, cuda, cuda), (1, cuda, cuda), (1, cuda, cpu), (1, cpu, cpu)]
    net = Flaky(fail=1, error=lambda m: RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    with pytest.raises(InputError, match="shapes cannot be multiplied"):
        run(net)
    assert net.calls == 0 and net.fail == 0


def test_predict_reports_oom_fallback():
    model = LoadedModel(Flaky(fail=1), card(), "t", "test")
    geom = Geometry(IMAGE.shape[1:], (1, 1, 1), (0, 0, 0), np.eye(3))
    result = predict([(IMAGE[0].T, geom)], model, PredictOptions(device="cpu", sw_batch=2))
    assert "Out of memory with sw_batch 2; retrying with sw_batch 1." in result.messages
    assert any(m.startswith("Running threshold on cpu") and "estimated memory about" in m for m in result.messages)
    assert np.array_equal(result.labelmap, np.where(EXPECTED.T, 3, 0))
    assert set(result.timings) == {"preprocess", "inference", "postprocess", "total"}


def test_devices():
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert resolve_device("auto").type == expected and resolve_device("cpu").type == "cpu"
    with pytest.raises(ParameterError, match="unknown device"):
        resolve_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="CUDA is not available"):
            resolve_device("cuda:0")
    if not torch.backends.mps.is_available():
        with pytest.raises(ParameterError, match="MPS"):
            resolve_device("mps")


def test_memory_estimate():
    model = load_model("default", device="cpu")
    small = estimate_memory(model, (64, 64, 64), (64, 64, 64), 1)
    assert small.total_bytes == small.window_bytes + small.output_bytes + small.input_bytes
    assert estimate_memory(model, (64, 64, 64), (64, 64, 64), 4).window_bytes > 2.5 * small.window_bytes
    assert estimate_memory(model, (64, 64, 64), (64, 64, 64), 4, "cuda").window_bytes < small.window_bytes * 4
    big = estimate_memory(model.card, (197, 233, 189), (64, 64, 64), 4)
    assert big.output_bytes == 4 * 197 * 233 * 189 * 7 and "MiB" in big.text and big.text.startswith("about")


def test_postprocessing_and_probabilities():
    big, small = blobs()
    hollow = big & ~((np.indices(big.shape) - np.array([20, 24, 20])[:, None, None, None]) ** 2).sum(0).__lt__(16)
    geom = Geometry(big.shape[::-1], (1.0, 1.0, 2.0), (0, 0, 0), np.eye(3))
    model = LoadedModel(Threshold(), card(), "t", "test")
    image = (hollow | small).astype(np.float32)
    plain = predict([(image, geom)], model, PredictOptions(device="cpu", probabilities=True))
    assert np.array_equal(plain.labelmap == 3, hollow | small)
    prob = plain.probabilities["blob"]
    assert list(plain.probabilities) == ["blob"] and prob.dtype == np.float32 and prob.shape == big.shape
    assert prob[small].min() > 0.99 and prob[~(hollow | small)].max() < 0.01
    largest = predict([(image, geom)], model, PredictOptions(device="cpu", largest_component=True))
    assert np.array_equal(largest.labelmap == 3, hollow)
    sized = predict([(image, geom)], model, PredictOptions(device="cpu", min_size_mm3=2 * 200))
    assert np.array_equal(sized.labelmap == 3, hollow) and small.sum() * 2 < 400 < hollow.sum() * 2
    filled = predict([(image, geom)], model, PredictOptions(device="cpu", fill_holes=True))
    assert np.array_equal(filled.labelmap == 3, big | small)
    with pytest.raises(ParameterError, match="divisible"):
        predict([(image, geom)], LoadedModel(Threshold(), card(architecture={"type": "monai.UNet", "params": {
            "channels": [4, 8], "strides": [2]}}), "t", "test"), PredictOptions(device="cpu", roi=(15, 16, 16)))


def test_sigmoid_output_and_holes_never_overwrite_other_labels():
    big, _ = blobs()
    inner = ((np.indices(big.shape) - np.array([20, 24, 20])[:, None, None, None]) ** 2).sum(0) < 16
    shell = big & ~inner

    class TwoMasks(torch.nn.Module):
        def forward(self, x):                 # channel 0: x == 1 (shell), channel 1: x == 2 (core)
            return torch.cat([(x - 1).abs() < 0.5, (x - 2).abs() < 0.5], 1).float() * 20 - 10

    c = card(output="sigmoid", labels=[{"value": 1, "name": "shell", "color": [1, 0, 0]},
                                       {"value": 2, "name": "core", "color": [0, 0, 1]}])
    geom = Geometry(big.shape[::-1], (1.0, 1.0, 1.0), (0, 0, 0), np.eye(3))
    image = shell * 1.0 + inner * 2.0
    result = predict([(image.astype(np.float32), geom)], LoadedModel(TwoMasks(), c, "t", "test"),
                     PredictOptions(device="cpu", fill_holes=True))
    assert np.array_equal(result.labelmap, (shell * 1 + inner * 2).astype(np.uint8))


@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_labels_without_probabilities_equal_labels_from_probabilities(output):
    """Without --probabilities the labels come from the logits (no activation pass): the same labels
    as argmax of the softmax / the most probable sigmoid channel above 0.5, on a seeded random network
    whose channels compete everywhere."""
    torch.manual_seed(3)
    net = torch.nn.Conv3d(1, 3, 3, padding=1).eval()
    rng = np.random.default_rng(3)
    image = rng.normal(0, 1, (24, 20, 28)).astype(np.float32)
    geom = Geometry(image.shape[::-1], (1.0, 1.0, 1.0), (0, 0, 0), np.eye(3))
    labels = [{"value": v, "name": f"l{v}", "color": [1, 0, 0]} for v in ((1, 2) if output == "softmax" else (1, 2, 5))]
    c = card(out_channels=3, output=output, labels=labels)
    model = LoadedModel(net, c, "t", "test")
    with_probs = predict([(image, geom)], model, PredictOptions(device="cpu", probabilities=True))
    plain = predict([(image, geom)], model, PredictOptions(device="cpu"))
    values = set(np.unique(plain.labelmap).tolist())
    assert values == ({0, 1, 2} if output == "softmax" else {0, 1, 2, 5}), values
    assert np.array_equal(plain.labelmap, with_probs.labelmap)
    if output == "softmax":                  # and both are argmax of the probabilities MedSeg reports
        stack = np.stack([1 - sum(with_probs.probabilities.values()), *with_probs.probabilities.values()])
        assert np.array_equal(np.array([0, 1, 2])[stack.argmax(0)], plain.labelmap)
