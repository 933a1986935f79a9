"""MONAI bundles on the inference backends: the windows of a bundle's SlidingWindowInferer run through
ONNX Runtime or OpenVINO and give PyTorch's result (labels on >= 99.99 % of voxels, every window's
probabilities within 1e-3), on every test bundle's own chain (bundle_factory); the backend really used
is reported; a bundle network that cannot be exported runs on PyTorch after one warning; other
inferers (SimpleInferer) stay on PyTorch.  The comparison with MONAI's ConfigWorkflow on the default
backend is in test_bundle_monai."""
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import bundle_factory as bf
from MedSegCore.cli import main
from MedSegCore.dnn import PredictOptions, backends, predict
from MedSegCore.dnn.bundle import load_bundle, runner
from MedSegCore.dnn.bundle.windows import Windows
from MedSegCore.image import io

RUNTIMES = [b for b in ("onnxruntime", "openvino") if backends.installed(b)]
KINDS = ["spleen", "wholebody", "prostate", "pancreas", "renal", "wholebrain", "brats"]
MR = ("brats", "prostate", "wholebrain")


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSEG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MEDSEG_TRUST_BUNDLES", raising=False)
    backends._RUNNERS.clear()
    backends._FAILED.clear()


def _inputs(kind):
    geometry = bf.lps_oblique_geometry()
    n = 4 if kind == "brats" else 1
    return [(bf.test_volume(geometry, seed=c, offset=1100 if kind in MR else 0), geometry) for c in range(n)]


def _run(folder, inputs, backend, monkeypatch):
    """predict() on the bundle, with every window's network output recorded."""
    outputs = []

    class Recording(Windows):
        def __call__(self, x, *args, **kwargs):
            y = super().__call__(x, *args, **kwargs)
            outputs.append(y.detach().float().clone())
            return y

    monkeypatch.setattr(runner, "Windows", Recording)
    model = load_bundle(folder, "cpu", trust=True)
    result = predict(inputs, model, PredictOptions(device="cpu", backend=backend, probabilities=True))
    return result, outputs


@pytest.fixture(scope="module")
def torch_results(tmp_path_factory):
    """Each test bundle's PyTorch result (the reference)."""
    root = tmp_path_factory.mktemp("bundles")
    mp = pytest.MonkeyPatch()
    found = {}
    try:
        for kind in KINDS:
            folder = bf.write_bundle(root, kind, seed=3)
            found[kind] = (folder, _run(folder, _inputs(kind), "torch", mp))
    finally:
        mp.undo()
    return found


@pytest.mark.parametrize("backend", RUNTIMES)
@pytest.mark.parametrize("kind", KINDS)
def test_bundle_on_each_backend_equals_pytorch(kind, backend, torch_results, monkeypatch):
    folder, (ref, ref_windows) = torch_results[kind]
    got, windows = _run(folder, _inputs(kind), backend, monkeypatch)
    assert f"({backend})" in got.messages[0], got.messages
    assert not [m for m in got.messages if "export failed" in m], got.messages
    assert list((Path(folder) / ".medseg-cache").glob("*.onnx"))          # exported beside the bundle
    assert len(np.unique(ref.labelmap)) > 1
    agree = float((got.labelmap == ref.labelmap).mean())
    assert agree >= 0.9999, f"{kind} on {backend}: labels equal on only {agree:.4%}"
    # every window's probabilities (the bundle's own activation of the network output)
    assert len(windows) == len(ref_windows) > 0
    act = torch.sigmoid if kind == "brats" else (lambda t: torch.softmax(t, 1))
    worst = max(float((act(a) - act(b)).abs().max()) for a, b in zip(windows, ref_windows))
    assert worst <= 1e-3, f"{kind} on {backend}: window probabilities differ by {worst:.2e}"
    if ref.probabilities:                                         # on the input grid, after the bundle's Invertd
        worst = max(float(np.abs(got.probabilities[k] - ref.probabilities[k]).max()) for k in ref.probabilities)
        assert worst <= 1e-3, f"{kind} on {backend}: probabilities differ by {worst:.2e}"


CUMMAX_NET = '''
"""A network with an operator PyTorch cannot export to ONNX opset 17 (aten::cummax)."""
import torch


class CumNet(torch.nn.Module):
    def __init__(self, in_channels=1, out_channels=3, features=4):
        super().__init__()
        self.a = torch.nn.Conv3d(in_channels, features, 3, padding=1)
        self.out = torch.nn.Conv3d(features, out_channels, 1)

    def forward(self, x):
        y = torch.relu(self.a(x))
        return self.out(y + 0.1 * torch.cummax(y, dim=2).values)
'''


def _cummax_bundle(root):
    folder = os.path.join(str(root), "cummax")
    os.makedirs(os.path.join(folder, "scripts", "networks"))
    for name in ("scripts/__init__.py", "scripts/networks/__init__.py"):
        open(os.path.join(folder, name), "w").close()
    with open(os.path.join(folder, "scripts", "networks", "cum.py"), "w") as f:
        f.write(CUMMAX_NET)
    config, meta = bf.spleen()
    config["network_def"] = {"_target_": "scripts.networks.cum.CumNet", "in_channels": 1, "out_channels": 2}
    return bf.write_config_bundle(folder, config, meta, seed=2)


@pytest.mark.skipif(not RUNTIMES, reason="no runtime installed")
def test_non_exportable_bundle_network_falls_back_with_one_warning(tmp_path, capfd):
    """capfd: what C code writes to descriptor 2 counts too (PyTorch's exporter prints its whole IR
    graph there on a failure)."""
    capsys = capfd
    folder = _cummax_bundle(tmp_path / "bundles")
    path = str(tmp_path / "case.nii.gz")
    io.write_volume(*_inputs("spleen")[0], path)
    assert main(["predict", path, "-o", str(tmp_path / "torch"), "--model", folder, "--trust-bundle",
                 "--labelmap", "--backend", "torch"]) == 0
    capsys.readouterr()
    assert main(["predict", path, "-o", str(tmp_path / "auto"), "--model", folder, "--labelmap"]) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "export failed" in line]
    assert len(warnings) == 1 and "aten::cummax" in warnings[0] and "running on PyTorch" in warnings[0], err
    assert "Traceback" not in err and "Torch IR graph" not in err, err
    ref = io.read_volume(str(tmp_path / "torch" / "case.nii.gz"))[0]
    got = io.read_volume(str(tmp_path / "auto" / "case.nii.gz"))[0]
    assert len(np.unique(ref)) == 2 and np.array_equal(ref, got)


def test_cli_reports_the_backend_that_runs_the_bundle(tmp_path, capsys):
    """auto: the first installed runtime for a SlidingWindowInferer; a SimpleInferer (whole volumes,
    varying shapes) stays on PyTorch, and says so when a runtime was named."""
    path = str(tmp_path / "case.nii.gz")
    io.write_volume(*_inputs("spleen")[0], path)
    sliding = bf.write_bundle(tmp_path / "bundles", "spleen", seed=1)
    assert main(["predict", path, "-o", str(tmp_path / "a"), "--model", sliding, "--trust-bundle"]) == 0
    err = capsys.readouterr().err
    expected = backends.resolve("auto", "cpu")
    assert f"backend: {expected}\n" in err and "the bundle's own inferer" not in err, err
    config, meta = bf.spleen()
    config["inferer"] = {"_target_": "SimpleInferer"}
    simple = bf.write_config_bundle(str(tmp_path / "bundles" / "simple"), config, meta, seed=1)
    named = RUNTIMES[:1] and ["--backend", RUNTIMES[0]]
    assert main(["predict", path, "-o", str(tmp_path / "b"), "--model", simple, "--trust-bundle", *named]) == 0
    err = capsys.readouterr().err
    assert "backend: torch\n" in err, err
    assert not (tmp_path / "bundles" / "simple" / ".medseg-cache").exists()
    model = load_bundle(simple, "cpu")
    result = predict(_inputs("spleen"), model, PredictOptions(device="cpu", backend=(RUNTIMES or ["torch"])[0]))
    if RUNTIMES:
        assert "its network runs on PyTorch, not" in " ".join(result.messages)


def test_export_failure_is_logged_once_per_process(tmp_path, caplog, monkeypatch):
    """Two runs of a non-exportable bundle in one process (the panel's worker, a batch): one log line."""
    if not RUNTIMES:
        pytest.skip("no runtime installed")
    folder = _cummax_bundle(tmp_path / "bundles")
    model = load_bundle(folder, "cpu", trust=True)
    with caplog.at_level(logging.WARNING, logger="medseg"):
        for _ in range(2):
            result = predict(_inputs("spleen"), model, PredictOptions(device="cpu", backend=RUNTIMES[0]))
            assert sum("export failed" in m for m in result.messages) == 1
    assert sum("export failed" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("backend", ["torch", *RUNTIMES])
def test_panel_backend_choice_reaches_the_bundle(backend, tmp_path, capsys):
    """The panel runs predict in the worker process with its options (MedSegDNNLogic.optionsFromNode,
    dnn.process): the worker's request carries the backend, and the bundle's windows run on it."""
    import json
    from dataclasses import asdict

    from MedSegCore.dnn import worker
    from MedSegCore.dnn.bundle import bundle_info, remember

    folder = bf.write_bundle(tmp_path / "bundles", "spleen", seed=1)
    remember(bundle_info(folder))                               # what the panel's trust dialog does
    path = str(tmp_path / "case.nii.gz")
    io.write_volume(*_inputs("spleen")[0], path)
    os.makedirs(tmp_path / "out")
    request = {"inputs": [path], "model": folder, "output_dir": str(tmp_path / "out"),
               "options": asdict(PredictOptions(device="cpu", backend=backend))}
    (tmp_path / "request.json").write_text(json.dumps(request))
    assert worker.run(str(tmp_path / "request.json")) == 0, capsys.readouterr().out
    messages = json.loads((tmp_path / "out" / "result.json").read_text())["messages"]
    assert f"({backend})" in messages[0], messages
    assert (Path(folder) / ".medseg-cache").exists() == (backend != "torch")
