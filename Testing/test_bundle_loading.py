"""MONAI bundles: what a bundle is (name, version, authors, content hash), trust before its config
runs (remembered per hash under $MEDSEG_HOME), interactive bundles refused, YAML, labels from
channel_def after the bundle's own mapping, weights read with weights_only=True, CLI channels."""
import json
import os
import pickle
import sys

import numpy as np
import pytest
import torch

import bundle_factory as bf
from MedSegCore.cli import main
from MedSegCore.dnn.bundle import (UntrustedBundleError, bundle_info, interactive_reason, is_bundle,
                                   is_trusted, load_bundle)
from MedSegCore.errors import InputError


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSEG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MEDSEG_TRUST_BUNDLES", raising=False)


def test_bundle_info_and_content_hash(tmp_path):
    folder = bf.write_bundle(tmp_path, "prostate")
    info = bundle_info(folder)
    assert is_bundle(folder) and not is_bundle(tmp_path)
    assert (info.name, info.version, info.authors) == ("Prostate MRI anatomy (test)", "0.1.0", "Keno Bressem")
    assert len(info.sha256) == 64 and info.sha256 in info.describe() or info.sha256[:16] in info.describe()
    os.makedirs(os.path.join(folder, "eval"))                         # outputs do not change the hash
    open(os.path.join(folder, "eval", "x.nii.gz"), "wb").close()
    assert bundle_info(folder).sha256 == info.sha256
    with open(os.path.join(folder, "configs", "inference.json"), "a") as f:
        f.write("\n")
    assert bundle_info(folder).sha256 != info.sha256


def test_trust_is_asked_once_per_content_hash(tmp_path, monkeypatch):
    folder = bf.write_bundle(tmp_path, "spleen")
    with pytest.raises(UntrustedBundleError, match="--trust-bundle.*MEDSEG_TRUST_BUNDLES=1"):
        load_bundle(folder)
    model = load_bundle(folder, trust=True)
    assert model.kind == "bundle" and is_trusted(bundle_info(folder))
    store = json.loads((tmp_path / "home" / "trusted_bundles.json").read_text())
    assert store[model.info.sha256]["name"] == "Spleen CT segmentation (test)"
    assert load_bundle(folder).info.sha256 == model.info.sha256         # remembered
    config = os.path.join(folder, "configs", "inference.json")
    data = json.load(open(config))
    data["inferer"]["overlap"] = 0.25
    json.dump(data, open(config, "w"))
    with pytest.raises(UntrustedBundleError):                            # changed bundle: asked again
        load_bundle(folder)
    monkeypatch.setenv("MEDSEG_TRUST_BUNDLES", "1")
    assert load_bundle(folder).inferer.overlap == 0.25


def test_cli_refuses_an_untrusted_bundle_and_says_how(tmp_path, capsys):
    folder = bf.write_bundle(tmp_path, "spleen")
    path = str(tmp_path / "ct.nii.gz")
    from MedSegCore.image import io
    g = bf.lps_oblique_geometry()
    io.write_volume(bf.test_volume(g), g, path)
    assert main(["predict", path, "-o", str(tmp_path / "out"), "--model", folder]) == 2
    err = capsys.readouterr().err
    assert "has not been trusted yet" in err and "--trust-bundle" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "ct.seg.nrrd").exists()
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    assert "--trust-bundle" in capsys.readouterr().out


def _edit(folder, change_config=None, change_meta=None):
    for name, change in (("inference.json", change_config), ("metadata.json", change_meta)):
        if change:
            path = os.path.join(folder, "configs", name)
            data = json.load(open(path))
            change(data)
            json.dump(data, open(path, "w"))


def test_interactive_bundles_are_refused_with_a_sentence(tmp_path):
    deepedit = bf.write_bundle(tmp_path / "a", "spleen")
    _edit(deepedit, change_meta=lambda m: m["network_data_format"]["inputs"]["image"].update(num_channels=3))
    with pytest.raises(InputError, match=r"cannot be run by MedSeg: its network takes 3 input channels but only 1 "
                                         r"are images .*does not support prompts yet"):
        load_bundle(deepedit, trust=True)
    vista = bf.write_bundle(tmp_path / "b", "spleen")
    _edit(vista, change_config=lambda c: c.update(network_def={"_target_": "monai.networks.nets.vista3d.VISTA3D"}))
    with pytest.raises(InputError, match="its config uses VISTA3D, which needs clicks or prompts"):
        load_bundle(vista, trust=True)
    assert interactive_reason({"use_click": True}, {}) and interactive_reason({}, {"name": "Spleen DeepEdit annotation"})
    assert interactive_reason(bf.spleen()[0], bf.spleen()[1]) is None


def test_yaml_bundle_needs_pyyaml_and_says_so(tmp_path, monkeypatch):
    folder = bf.write_bundle(tmp_path, "pancreas")
    assert os.path.isfile(os.path.join(folder, "configs", "inference.yaml"))
    assert [lab.name for lab in load_bundle(folder, trust=True).card.labels] == ["pancreas", "pancreatic tumor"]
    monkeypatch.setitem(sys.modules, "yaml", None)
    with pytest.raises(InputError, match="YAML, which needs the PyYAML package"):
        load_bundle(folder, trust=True)


def test_labels_follow_the_bundles_own_mapping(tmp_path):
    brats = load_bundle(bf.write_bundle(tmp_path, "brats"), trust=True)
    assert [(lab.value, lab.name) for lab in brats.card.labels] == [(1, "Tumor core"), (2, "Whole tumor"),
                                                                     (4, "Enhancing tumor")]
    assert brats.card.channel_names == ["T1c", "T1", "T2", "FLAIR"] and brats.card.in_channels == 4
    many = load_bundle(bf.write_bundle(tmp_path, "many_labels"), trust=True)
    assert [lab.value for lab in many.card.labels] == [301, 302, 303]
    spleen = bf.write_bundle(tmp_path, "spleen")
    term = {"category": ["123037004", "SCT", "Anatomical Structure"], "type": ["78961009", "SCT", "Spleen"]}
    card = {"name": "x", "version": "1", "description": "", "intended_use": "", "trained": True, "in_channels": 1,
            "out_channels": 2, "roi_size": [32, 32, 32], "output": "softmax",
            "labels": [{"value": 1, "name": "Spleen", "color": [0.6, 0.4, 0.3], "terminology": term}]}
    with open(os.path.join(spleen, "card.json"), "w") as f:
        json.dump(card, f)
    (label,) = load_bundle(spleen, trust=True).card.labels
    assert (label.name, label.color, label.terminology) == ("Spleen", (0.6, 0.4, 0.3), term)


def test_weights_load_with_weights_only(tmp_path):
    folder = bf.write_bundle(tmp_path, "spleen")
    path = os.path.join(folder, "models", "model.pt")
    state = torch.load(path, weights_only=True)
    torch.save({"model": state, "extra": pickle.loads(pickle.dumps(np.random.default_rng(0)))}, path)
    with pytest.raises(InputError, match="arbitrary Python objects"):
        load_bundle(folder, trust=True)
    torch.save({k: v for k, v in list(state.items())[:-1]}, path)
    with pytest.raises(InputError, match="does not fit network_def"):
        load_bundle(folder, trust=True)


def test_cli_channel_names_must_match_channel_def(tmp_path, capsys):
    folder = bf.write_bundle(tmp_path, "brats")
    args = ["predict", str(tmp_path), "-o", str(tmp_path / "out"), "--model", folder, "--trust-bundle"]
    assert main(args) == 2
    assert "needs 4 input channels (T1c, T1, T2, FLAIR)" in capsys.readouterr().err
    assert main(args + ["--channels", "T1c=_a,T1=_b,T2=_c,PD=_d"]) == 2
    assert "'PD' is not a channel" in capsys.readouterr().err
    assert main(args + ["--channels", "_a,_b"]) == 2
    assert "gives 2 suffix(es) but model" in capsys.readouterr().err


def test_panel_logic_asks_trust_and_runs_a_multichannel_bundle_in_its_worker_process(tmp_path):
    import slicer_harness
    from MedSegCore.dnn import PredictOptions, predict
    from MedSegCore.mrml import nodes

    slicer_harness.load_module("MedSegDNN")
    import MedSegDNN

    logic = MedSegDNN.MedSegDNNLogic()
    folder = bf.write_bundle(tmp_path, "brats", seed=2)
    assert logic.channelNames(folder) == ["T1c", "T1", "T2", "FLAIR"] and logic.channelNames("default") == []
    question = logic.bundleTrustQuestion(folder)
    info = bundle_info(folder)
    assert all(text in question for text in (info.name, info.version, info.authors, info.sha256))
    logic.trustBundle(folder)
    assert logic.bundleTrustQuestion(folder) is None
    g = bf.lps_oblique_geometry()
    arrays = [bf.test_volume(g, seed=c, offset=1100) for c in range(4)]
    volumes = [nodes.add_volume_node(a, g, name) for a, name in zip(arrays, ["T1c", "T1", "T2", "FLAIR"])]
    run = logic.startSegmentation(volumes, folder, PredictOptions(device="cpu"))
    run.wait(timeout=600)
    segmentation, messages = logic.finishSegmentation(run, volumes[0])
    assert any("its own pipeline" in m for m in messages)
    assert nodes.segment_names(segmentation) == ["Tumor core", "Whole tumor", "Enhancing tumor"]
    expected = predict([(a, g) for a in arrays], load_bundle(folder), PredictOptions(device="cpu")).labelmap
    for name, value in (("Tumor core", 1), ("Whole tumor", 2), ("Enhancing tumor", 4)):
        mask = nodes.segment_array(segmentation, nodes.segment_id_by_name(segmentation, name), volumes[0])
        assert np.array_equal(mask, expected == value) and mask.any()


def test_cancel_and_bundles_without_probabilities_on_the_input_grid(tmp_path):
    from MedSegCore.dnn import PredictOptions, predict
    from MedSegCore.errors import CancelledError

    model = load_bundle(bf.write_bundle(tmp_path, "wholebody"), trust=True)
    g = bf.lps_oblique_geometry()
    volume = [(bf.test_volume(g), g)]
    with pytest.raises(CancelledError):
        predict(volume, model, PredictOptions(device="cpu"), cancel=lambda: True)
    result = predict(volume, model, PredictOptions(device="cpu", probabilities=True))
    assert result.probabilities is None and any("gives no probabilities" in m for m in result.messages)
    assert set(np.unique(result.labelmap)) == {0, 1, 2, 3, 4, 5}
