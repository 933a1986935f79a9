"""Model loading from the four sources, checkpoint wrappers, and refusal of bad or unsafe files."""
import json
import os
import zipfile

import numpy as np
import pytest
import torch
from monai.inferers import sliding_window_inference
from monai.networks.nets import UNet

from MedSegCore.dnn import PredictOptions, predict
from MedSegCore.dnn.loading import DEFAULT_MODEL_DIR, load_model, read_state_dict
from MedSegCore.errors import InputError, ParameterError
from MedSegCore.image.geometry import Geometry

torch.set_num_threads(2)
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")]
ARCH = {"type": "monai.UNet", "params": {"spatial_dims": 3, "channels": [4, 8], "strides": [2], "num_res_units": 1}}


def card_dict(**changes) -> dict:
    d = {"name": "tiny", "version": "1", "description": "test net", "intended_use": "tests", "trained": False,
         "architecture": ARCH, "in_channels": 1, "out_channels": 3, "spacing": None, "orientation": None,
         "normalization": {"type": "none"}, "roi_size": [16, 16, 16], "output": "softmax",
         "labels": [{"value": 1, "name": "a", "color": [1, 0, 0]}, {"value": 2, "name": "b", "color": [0, 1, 0]}]}
    d.update(changes)
    return d


def tiny_net(in_channels=1, out_channels=3, seed=0) -> UNet:
    torch.manual_seed(seed)
    return UNet(3, in_channels, out_channels, (4, 8), (2,), num_res_units=1).eval()


def volume(shape=(20, 24, 28), seed=1):
    geom = Geometry(shape[::-1], (1.0, 1.0, 1.0), (0, 0, 0), np.eye(3))
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32), geom


def direct_labels(net, array, roi=(16, 16, 16)):
    """What the project pipeline must give: the bare MONAI call on the IJK tensor, argmax, back to KJI."""
    x = torch.from_numpy(np.ascontiguousarray(array.transpose(2, 1, 0)))[None, None]
    with torch.inference_mode():
        y = sliding_window_inference(x, roi, 1, net, overlap=0.25, mode="constant")
    return y[0].argmax(0).numpy().transpose(2, 1, 0).astype(np.uint8)


OPTS = PredictOptions(device="cpu", blend="constant", sw_batch=1)


def test_default_model_loads_and_runs():
    model = load_model("default", device="cpu")
    assert model.kind == "default" and model.card.trained is True and model.device.type == "cpu"
    assert (DEFAULT_MODEL_DIR / "model.pt").stat().st_size < 2 * 1024 * 1024
    array, geom = volume((24, 20, 22))
    lps = Geometry(geom.size, (1.1, 1.0, 1.3), (5, 6, 7), np.diag([-1, -1, 1]))
    result = predict([(array, lps)], model, PredictOptions(device="cpu", probabilities=True))
    assert result.labelmap.shape == array.shape and result.labelmap.dtype == np.uint8
    assert set(np.unique(result.labelmap)) <= {0, 1, 2}
    assert not any("not trained" in m for m in result.messages)
    total = sum(result.probabilities.values())
    assert total.shape == array.shape and float(total.max()) <= 1.0 + 1e-5


def test_state_dict_with_card_beside_it_matches_bare_monai(tmp_path):
    net = tiny_net()
    torch.save(net.state_dict(), tmp_path / "model.pt")
    (tmp_path / "card.json").write_text(json.dumps(card_dict()), encoding="utf-8")
    model = load_model(tmp_path / "model.pt", device="cpu")
    assert model.kind == "state_dict"
    for a, b in zip(net.state_dict().values(), model.network.state_dict().values()):
        assert torch.equal(a, b)
    array, geom = volume()
    assert np.array_equal(predict([(array, geom)], model, OPTS).labelmap, direct_labels(net, array))


@pytest.mark.parametrize("wrap", ["state_dict", "model", "module_prefix"])
def test_checkpoint_wrappers(tmp_path, wrap):
    net = tiny_net(seed=3)
    sd = net.state_dict()
    obj = {"state_dict": sd, "epoch": 7} if wrap == "state_dict" else {"model": sd, "optimizer": {"lr": 0.1}}
    if wrap == "module_prefix":
        obj = {"state_dict": {"module." + k: v for k, v in sd.items()}}
    torch.save(obj, tmp_path / "ckpt.pth")
    (tmp_path / "ckpt.card.json").write_text(json.dumps(card_dict()), encoding="utf-8")
    model = load_model(tmp_path / "ckpt.pth", device="cpu")
    assert all(torch.equal(sd[k], v) for k, v in model.network.state_dict().items())


def test_torchscript_with_explicit_card(tmp_path):
    net = tiny_net(seed=5)
    torch.jit.trace(net, torch.zeros(1, 1, 16, 16, 16)).save(str(tmp_path / "net.ts"))
    model = load_model(tmp_path / "net.ts", device="cpu", card=card_dict())
    assert model.kind == "torchscript" and isinstance(model.network, torch.jit.ScriptModule)
    array, geom = volume()
    assert np.array_equal(predict([(array, geom)], model, OPTS).labelmap, direct_labels(net, array))


# -- bad models -------------------------------------------------------------------------------
def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(InputError, match="model not found"):
        load_model(tmp_path / "absent.pt", card=card_dict())
    junk = tmp_path / "junk.pt"
    junk.write_bytes(os.urandom(2048))
    with pytest.raises(InputError, match="junk.pt is corrupt or not a PyTorch checkpoint"):
        load_model(junk, card=card_dict())
    torch.save(tiny_net().state_dict(), tmp_path / "full.pt")
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.pt is corrupt"):
        load_model(tmp_path / "cut.pt", card=card_dict())
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(InputError, match="does not hold a state dict"):
        load_model(tmp_path / "list.pt", card=card_dict())
    with pytest.raises(InputError, match="no model card"):
        load_model(tmp_path / "full.pt")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(InputError, match="has no model.pt"):
        load_model(tmp_path / "empty_dir")


class Payload:
    """Unpickling this runs a shell command (creates a marker file)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    torch.save({"weight": torch.zeros(3), "payload": Payload(marker)}, path)
    with zipfile.ZipFile(path) as z:
        pkl = next(n for n in z.namelist() if n.endswith("data.pkl"))
        assert b"system" in z.read(pkl)                       # the file really carries the payload
    (tmp_path / "card.json").write_text(json.dumps(card_dict()), encoding="utf-8")
    with pytest.raises(InputError) as err:
        load_model(path)
    assert "contains arbitrary Python objects" in str(err.value) and "will not be loaded" in str(err.value)
    assert "state_dict()" in str(err.value)
    with pytest.raises(InputError, match="arbitrary Python objects"):
        read_state_dict(path)
    assert not marker.exists()


def test_labels_not_matching_output_channels(tmp_path):
    torch.save(tiny_net().state_dict(), tmp_path / "m.pt")
    bad = card_dict(labels=[{"value": 1, "name": "a", "color": [1, 0, 0]}])
    with pytest.raises(InputError, match=r"labels: 1 label\(s\) do not match out_channels = 3"):
        load_model(tmp_path / "m.pt", card=bad)


def test_state_dict_not_matching_architecture_names_keys(tmp_path):
    torch.save(tiny_net(in_channels=2).state_dict(), tmp_path / "two.pt")
    with pytest.raises(InputError) as err:
        load_model(tmp_path / "two.pt", card=card_dict())
    msg = str(err.value)
    assert "do not match the card's architecture (monai.UNet, in_channels=1" in msg
    assert "model.0.conv.unit0.conv.weight is (4, 2, 3, 3, 3) in the file but (4, 1, 3, 3, 3)" in msg
    sd = tiny_net().state_dict()
    sd.pop("model.0.conv.unit0.conv.bias")
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "keys.pt")
    with pytest.raises(InputError) as err:
        load_model(tmp_path / "keys.pt", card=card_dict())
    assert "missing keys: model.0.conv.unit0.conv.bias" in str(err.value)
    assert "unexpected keys: extra.weight" in str(err.value)


def test_wrong_channel_counts_at_run_time(tmp_path):
    net = tiny_net(out_channels=2)
    torch.jit.trace(net, torch.zeros(1, 1, 16, 16, 16)).save(str(tmp_path / "two.ts"))
    model = load_model(tmp_path / "two.ts", card=card_dict())
    array, geom = volume()
    with pytest.raises(InputError, match=r"produced 2 output channel\(s\) but its model card declares out_channels = 3"):
        predict([(array, geom)], model, OPTS)
    with pytest.raises(ParameterError, match=r"needs 1 input volume\(s\)"):
        predict([(array, geom), (array, geom)], model, OPTS)
    two_in = load_model(tmp_path / "two.ts", card=card_dict(in_channels=2, out_channels=2, output="sigmoid"))
    with pytest.raises(InputError, match="the network failed on a window of shape"):
        predict([(array, geom), (array, geom)], two_in, OPTS)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_forced_unavailable_device():
    with pytest.raises(ParameterError, match="CUDA is not available"):
        load_model("default", device="cuda")
