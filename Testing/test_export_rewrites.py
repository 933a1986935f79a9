"""The rewrites a network goes through before its export for OpenVINO (MedSegCore.dnn.backends.rewrite
and .winograd) compute what PyTorch's own layers compute: each rewritten layer and network is compared
with the original module in PyTorch, on random data and on the bundled model's MNI152 windows, and the
rewritten export with the original network through OpenVINO itself."""
from __future__ import annotations

import numpy as np
import pytest
import torch


def test_openvino_rewrite_same_function():
    """The network OpenVINO gets (instance norms reduced one axis at a time, the last up-convolution
    to 2 classes as convolution + depth-to-space) computes what the original does."""
    from monai.networks.nets import UNet

    from MedSegCore.dnn.backends.rewrite import for_openvino

    torch.manual_seed(2)
    net = UNet(3, 1, 2, channels=(4, 8), strides=(2,), num_res_units=1, norm=("instance", {"affine": True})).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.InstanceNorm3d):
                m.weight.uniform_(0.5, 2.0), m.bias.uniform_(-1, 1)
    twin = for_openvino(net)
    kinds = (torch.nn.InstanceNorm3d, torch.nn.ConvTranspose3d)
    assert twin is not net and not any(isinstance(m, kinds) for m in twin.modules())
    assert sum(isinstance(m, kinds) for m in net.modules()) == 4                   # the original untouched
    x = torch.randn(2, 1, 16, 16, 16) * 3 + 5
    with torch.no_grad():
        assert torch.allclose(twin(x), net(x), atol=1e-5)
    wide = UNet(3, 1, 8, channels=(4, 8), strides=(2,), norm="batch").eval()     # 8 classes: kept
    assert for_openvino(wide) is wide


@pytest.mark.parametrize("dims, kernel, stride, padding, output_padding", [
    (3, 3, 2, 1, 1), (3, 2, 2, 0, 0), (3, 3, 2, 0, 0), (3, 4, 2, 1, 0), (3, 3, 2, 1, 0),
    (3, (3, 3, 1), (2, 2, 1), (1, 1, 0), (1, 1, 0)), (2, 3, 2, 1, 1), (2, 5, 3, 2, 1), (2, 2, 2, 0, 1)])
def test_subpixel_conv_transpose_equals_torch(dims, kernel, stride, padding, output_padding):
    """Each transposed convolution (stride 2 or 3, odd and even kernels, output padding, an axis of
    stride 1) rewritten as convolution + depth-to-space: same shape, same values as PyTorch's."""
    from MedSegCore.dnn.backends.rewrite import for_openvino

    torch.manual_seed(3)
    kind = torch.nn.ConvTranspose3d if dims == 3 else torch.nn.ConvTranspose2d
    layer = torch.nn.Sequential(kind(6, 3, kernel, stride=stride, padding=padding, output_padding=output_padding))
    twin = for_openvino(layer)
    assert not isinstance(twin[0], kind)
    x = torch.randn(2, 6, *(7, 6, 5)[:dims])
    with torch.no_grad():
        ref, got = layer(x), twin(x)
    assert got.shape == ref.shape
    assert (got - ref).abs().max().item() < 1e-5



def _phase_order(x):
    """Natural D order -> phase order (rows 4t, 4t+1, 4t+2, 4t+3), written with plain indexing."""
    return torch.cat([x[:, :, r::4] for r in range(4)], 2)


@pytest.mark.parametrize("cin, cout, bias", [(16, 16, True), (16, 32, False), (24, 16, True)])
def test_winograd_conv_equals_conv3d(cin, cout, bias):
    """WinogradConv3d (F(4,3) along D on a phase-ordered input) = torch's Conv3d, phase-ordered."""
    from MedSegCore.dnn.backends.winograd import _modules

    torch.manual_seed(4)
    conv = torch.nn.Conv3d(cin, cout, 3, padding=1, bias=bias)
    ToPhases, FromPhases, WinogradConv3d, _ = _modules()
    x = torch.randn(2, cin, 16, 12, 10) * 2 + 1
    with torch.no_grad():
        ref = conv(x)
        got = WinogradConv3d(conv)(ToPhases(cin)(x))
        assert torch.equal(ToPhases(cin)(x), _phase_order(x))
        assert torch.equal(FromPhases()(_phase_order(ref)), ref)
    assert (got - _phase_order(ref)).abs().max().item() < 2e-5 * ref.abs().max().item()


@pytest.mark.parametrize("kernel, stride, padding, output_padding", [
    (3, 2, 1, 1), (2, 2, 0, 0), (3, 2, 0, 0), (4, 2, 1, 0), ((3, 3, 1), (2, 2, 1), (1, 1, 0), (1, 1, 0)),
    ((5, 3, 3), (3, 2, 2), (2, 1, 1), (1, 1, 1))])
def test_phased_subpixel_equals_conv_transpose(kernel, stride, padding, output_padding):
    """The transposed convolution fed a phase-ordered input (taps shifted on its narrow output, the
    blocks past the last row from their source rows) = torch's ConvTranspose3d on the natural one."""
    from MedSegCore.dnn.backends.rewrite import _subpixel_conv_transpose
    from MedSegCore.dnn.backends.winograd import _modules

    torch.manual_seed(5)
    layer = torch.nn.ConvTranspose3d(20, 3, kernel, stride=stride, padding=padding, output_padding=output_padding)
    phased = _modules()[3](_subpixel_conv_transpose()(layer))
    x = torch.randn(2, 20, 8, 6, 5)
    with torch.no_grad():
        ref, got = layer(x), phased(_phase_order(x))
    assert got.shape == ref.shape
    assert (got - ref).abs().max().item() < 1e-5


def test_winograd_rewrite_of_the_bundled_unet():
    """On the bundled U-Net, every 3x3x3 convolution of the half-resolution section runs as Winograd,
    with two conversions into phase order and none back before the up-convolution; the network's
    logits on MNI152 windows equal PyTorch's to 1e-4 (in PyTorch and through OpenVINO)."""
    import itertools
    import tempfile

    import openvino as ov

    from MedSegCore.dnn.backends.rewrite import for_openvino
    from MedSegCore.dnn.backends.winograd import rewrite
    from MedSegCore.dnn.loading import load_model
    from MedSegCore.dnn.preprocess import prepare
    from MedSegCore.sample import load_mni152

    model = load_model("default")
    net = model.network.eval()
    example = torch.zeros(1, 1, 64, 64, 64)
    twin = rewrite(for_openvino(net), example)
    kinds = [type(m).__name__ for m in twin.modules()]
    assert kinds.count("WinogradConv3d") == 3 and kinds.count("ToPhases") == 2
    assert kinds.count("FromPhases") == 1 and kinds.count("PhasedSubpixel") == 1   # the one inside it
    assert not any(type(m) is torch.nn.Conv3d and m.kernel_size == (3, 3, 3) and m.in_channels >= 16
                   for m in twin.modules())
    array, _, geom = load_mni152()
    x = np.ascontiguousarray(prepare([(array, geom)], model.card).data.transpose(0, 3, 2, 1))[None]
    windows = torch.from_numpy(np.concatenate([x[:, :, a:a + 64, b:b + 64, c:c + 64] for a, b, c in
                                               itertools.product((0, 64, 120), (40, 150), (60, 125))]))
    with torch.no_grad():
        ref, got = net(windows), twin(windows)
    assert (got - ref).abs().max().item() < 1e-4
    with tempfile.TemporaryDirectory() as folder, torch.no_grad():
        torch.onnx.export(twin, (example,), f"{folder}/w.onnx", dynamo=False, opset_version=17)
        compiled = ov.Core().compile_model(f"{folder}/w.onnx", "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        out = np.concatenate([compiled(windows[i:i + 1].numpy())[0] for i in range(len(windows))])
    assert np.abs(out - ref.numpy()).max() < 1e-3
    assert (out.argmax(1) == ref.numpy().argmax(1)).mean() >= 0.9999


def test_winograd_rewrite_leaves_what_it_cannot_trace_or_use():
    """A network torch.fx cannot trace, or one without an eligible convolution, is returned as is."""
    from MedSegCore.dnn.backends.winograd import rewrite

    class Branchy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv3d(16, 16, 3, padding=1)

        def forward(self, x):
            return self.conv(x) if x.sum() > 0 else x          # data-dependent: fx cannot trace it

    branchy, narrow = Branchy(), torch.nn.Sequential(torch.nn.Conv3d(1, 8, 3, padding=1))
    assert rewrite(branchy, torch.zeros(1, 16, 8, 8, 8)) is branchy
    assert rewrite(narrow, torch.zeros(1, 1, 8, 8, 8)) is narrow
    odd = torch.nn.Sequential(torch.nn.Conv3d(16, 16, 3, padding=1))
    assert rewrite(odd, torch.zeros(1, 16, 6, 8, 8)) is odd                  # D not a multiple of 4


def test_winograd_choice_is_measured_once_recorded_and_obeyed(tmp_path, monkeypatch):
    """OpenVINO runs the Winograd export only where it measured faster: both exports are timed on
    the first use, the choice is recorded beside them (JSON with both timings), a later process reads
    it instead of timing, and a record saying "without" makes the plain rewritten export run.  A
    Winograd export that fails leaves the other one running."""
    import json

    from monai.networks.nets import UNet

    from MedSegCore.dnn import backends
    from MedSegCore.dnn.backends import onnx as onnx_backend
    from MedSegCore.dnn.backends import openvino as ov_backend

    pytest.importorskip("openvino")
    monkeypatch.setenv("MEDSEG_HOME", str(tmp_path / "home"))
    torch.manual_seed(6)
    net = UNet(3, 1, 2, channels=(16, 32), strides=(2,), num_res_units=1, norm="instance").eval()
    source = tmp_path / "model"
    source.mkdir()
    roi, timed = (32, 32, 32), []
    real_fastest = ov_backend.fastest
    monkeypatch.setattr(ov_backend, "fastest", lambda f, x: timed.append(sorted(f)) or real_fastest(f, x))

    def run():
        backends._RUNNERS.clear()
        return backends.wrap(net, "openvino", roi, 2, model_source=str(source))

    x = torch.randn(2, 1, *roi)
    with torch.no_grad():
        ref = net(x)
    assert torch.allclose(run()(x), ref, atol=1e-4)
    assert timed == [[False, True]]                               # both variants timed, once
    record, = (source / ".medseg-cache").glob("*-openvino-winograd-*.json")
    data = json.loads(record.read_text())
    assert data["winograd"] == (data["seconds"]["winograd"] < data["seconds"]["without"])
    assert {p.name.split("-opset")[0].split("-", 1)[1] for p in (source / ".medseg-cache").glob("*.onnx")} == \
        {f"onnx-openvino-r{onnx_backend.REWRITE_VERSION}", f"onnx-openvino-r{onnx_backend.REWRITE_VERSION}-winograd"}
    run()
    assert len(timed) == 1                                        # a later process reads the record
    used = []
    real_ir = ov_backend.openvino_ir
    monkeypatch.setattr(ov_backend, "openvino_ir", lambda path, b: used.append(path) or real_ir(path, b))
    for choice in (False, True):
        record.write_text(json.dumps({"winograd": choice}))
        assert torch.allclose(run()(x), ref, atol=1e-4)
        assert ("-winograd-" in used[-1]) is choice
    record.unlink()                                               # the Winograd export failing: the other runs
    for p in (source / ".medseg-cache").glob("*"):
        p.unlink() if p.is_file() else None
    real_export = onnx_backend.export_onnx

    def no_winograd(*args, use_winograd=False, **kwargs):
        if use_winograd:
            raise RuntimeError("Unsupported operator")
        return real_export(*args, use_winograd=use_winograd, **kwargs)
    monkeypatch.setattr(onnx_backend, "export_onnx", no_winograd)
    assert torch.allclose(run()(x), ref, atol=1e-4)
    assert json.loads(record.read_text())["winograd"] is False
