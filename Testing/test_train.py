"""Training (MedSegCore.train, ``medseg train``): short real runs on synthetic tasks (bright balls in
noise, 3D and 2D), reload through MedSegCore.dnn, transfer learning, resume, and bad data."""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from MedSegCore.image import io
from MedSegCore.mrml import nodes
from MedSegCore.errors import InputError, MedSegError, ParameterError
from MedSegCore.image.geometry import Geometry
from MedSegCore.train import AugmentConfig, TrainConfig, load_config, load_data
from MedSegCore.train.data import split_cases

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning", "ignore::FutureWarning")
FAST = {"channels": [8, 16], "num_res_units": 1, "patch": [32, 32, 32], "batch_size": 2, "samples_per_case": 2,
        "lr": 0.01, "device": "cpu", "val_overlap": 0.0, "sw_batch": 2, "seed": 3,
        "augment": {"affine_prob": 0.2, "flip_axes": [0, 1, 2]}}


def balls(seed, shape=(36, 36, 36), n=3, geometry=None):
    """KJI image (noise + bright balls) and label (1 inside the balls)."""
    rng = np.random.default_rng(seed)
    g = geometry or Geometry(shape[::-1], (1.0, 1.0, 1.2), (seed, -5.0, 2.0), np.eye(3))
    k, j, i = np.indices(g.shape)
    lab = np.zeros(g.shape, np.uint8)
    for _ in range(n):
        c, r = rng.uniform(7, np.array(g.shape) - 7), rng.uniform(4, 7)
        lab[(k - c[0]) ** 2 + (j - c[1]) ** 2 + (i - c[2]) ** 2 <= r * r] = 1
    img = (rng.normal(100, 15, g.shape) + 60 * lab).astype(np.float32)
    return img, g, lab


def dice(a, b):
    return 2 * np.logical_and(a, b).sum() / max(a.sum() + b.sum(), 1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 3D model trained through the CLI on a folder of <case>_image/_label NIfTI pairs."""
    from MedSegCore.cli import main

    root = tmp_path_factory.mktemp("train3d")
    data = root / "data"
    data.mkdir()
    for s in range(5):
        img, g, lab = balls(s)
        io.write_volume(img, g, str(data / f"c{s}_image.nii.gz"))
        io.write_volume(lab, g, str(data / f"c{s}_label.nii.gz"))
    (root / "cfg.json").write_text(json.dumps({**FAST, "epochs": 3, "steps_per_epoch": 8, "val_fraction": 0.2}))
    out = root / "model"
    assert main(["train", "--data", str(data), "-o", str(out), "--config", str(root / "cfg.json"), "-q"]) == 0
    return out


def test_3d_training_learns_and_the_model_folder_loads(trained, tmp_path):
    import torch

    from MedSegCore.dnn import PredictOptions, load_model, predict
    from MedSegCore.dnn.loading import read_state_dict

    rows = list(__import__("csv").DictReader(open(trained / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    losses = [float(r["train_loss"]) for r in rows]
    val = [float(r["val_dice_label_1"]) for r in rows]
    assert losses[-1] < 0.8 * losses[0]                      # the loss falls
    assert max(val) > val[0] and max(val) > 0.75              # validation Dice improves, to a useful level
    assert open(trained / "curves.png", "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    card = json.loads((trained / "card.json").read_text())
    assert card["trained"] is True and card["out_channels"] == 2 and card["roi_size"] == [32, 32, 32]
    assert card["labels"][0]["name"] == "Label 1" and card["spacing"] == [1.0, 1.0, 1.2]
    assert card["training"]["best_epoch"] == 1 + int(np.argmax(val))
    assert card["training"]["metrics"]["validation_dice_mean"] == pytest.approx(max(val), abs=1e-5)
    assert card["training"]["command"].startswith("medseg train --data")
    checkpoint = torch.load(trained / "checkpoint.pt", weights_only=True)
    assert set(read_state_dict(trained / "model.pt")) == set(checkpoint["model"])
    model = load_model(trained, device="cpu")
    img, g, lab = balls(11, shape=(30, 40, 34))
    lps = Geometry(g.size, g.spacing, (20.0, 10.0, 0.0), np.diag([-1.0, -1.0, 1.0]))   # another orientation
    result = predict([(img, lps)], model, PredictOptions(device="cpu", sw_batch=2))
    assert result.labelmap.shape == img.shape
    assert dice(result.labelmap == 1, lab == 1) > 0.75


def test_resume_continues_from_the_checkpoint(trained, tmp_path):
    import shutil

    import torch

    from MedSegCore.train import train

    out = tmp_path / "resumed"
    shutil.copytree(trained, out)
    before = torch.load(out / "checkpoint.pt", map_location="cpu", weights_only=True)
    assert before["epoch"] == 3 and len(before["history"]) == 3
    from MedSegCore.cli import main
    data = str(trained.parent / "data")
    assert main(["train", "--data", data, "-o", str(out), "--resume", "--epochs", "4", "-q"]) == 0
    after = torch.load(out / "checkpoint.pt", weights_only=True)
    assert after["epoch"] == 4 and [h["epoch"] for h in after["history"]] == [1, 2, 3, 4]
    assert after["history"][:3] == before["history"]
    assert len((out / "metrics.csv").read_text().splitlines()) == 5
    cfg = load_config(out / "train_config.json")
    assert cfg.epochs == 4 and cfg.channels == [8, 16]
    with pytest.raises(InputError, match="not empty"):
        train(str(trained.parent / "data"), out, cfg)                  # no silent overwrite
    with pytest.raises(MedSegError, match="another network"):
        train(str(trained.parent / "data"), out, cfg.updated(channels=[4, 8]), resume=True)


def test_select_last_writes_the_last_epoch_and_still_reports_validation(trained, tmp_path):
    import torch

    from MedSegCore.dnn.loading import read_state_dict
    from MedSegCore.train import train

    # lr 0.1: the second epoch validates worse than the first (seeded), so 'best' would keep epoch 1
    cfg = TrainConfig.from_dict({**FAST, "lr": 0.1, "epochs": 2, "steps_per_epoch": 3, "val_fraction": 0.2,
                                 "select": "last"})
    result = train(str(trained.parent / "data"), tmp_path / "last", cfg)
    card = json.loads((tmp_path / "last" / "card.json").read_text())
    means = [h["val_dice_mean"] for h in result.history]
    assert means[1] < means[0]                                                 # validation still ran
    assert result.best_epoch == card["training"]["best_epoch"] == 2          # the last, not the best
    last = torch.load(tmp_path / "last" / "checkpoint.pt", weights_only=True)["model"]
    written = read_state_dict(tmp_path / "last" / "model.pt")
    assert all(torch.equal(written[k], last[k]) for k in last)
    with pytest.raises(ParameterError, match="select"):
        cfg.updated(select="worst").validate()


def test_2d_slice_wise_training_and_prediction(tmp_path):
    from MedSegCore.dnn import PredictOptions, load_model, predict
    from MedSegCore.train import train

    def disks(seed):
        rng = np.random.default_rng(seed)
        g = Geometry((40, 40, 3), (0.5, 0.5, 3.0), (0, 0, 0), np.eye(3))
        k, j, i = np.indices(g.shape)
        lab = np.zeros(g.shape, np.uint8)
        for kk in range(3):
            for _ in range(2):
                c, r = rng.uniform(8, 32, 2), rng.uniform(4, 8)
                lab[kk][(j[kk] - c[0]) ** 2 + (i[kk] - c[1]) ** 2 <= r * r] = 1
        return (rng.normal(0, 0.3, g.shape) + lab).astype(np.float32), g, lab, ["Cell"]

    items = [disks(s) for s in range(4)]
    out = tmp_path / "m2d"
    cfg = TrainConfig.from_dict({**FAST, "dims": 2, "patch": [32, 32], "epochs": 2, "steps_per_epoch": 10,
                                 "augment": {"affine_prob": 0.3}, "val_fraction": 0.25})     # default flips
    seen = []
    result = train(items, out, cfg, progress=seen.append)
    assert len(seen) == 2 * 10 + 2 and seen[-1].epoch_end and seen[-1].val_dice is not None
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    card = json.loads((out / "card.json").read_text())
    assert card["roi_size"] == [32, 32, 1] and card["architecture"]["params"]["kernel_size"] == [3, 3, 1]
    assert card["architecture"]["params"]["strides"] == [[2, 2, 1]] and card["spacing"] is None
    img, g, lab, _ = disks(9)
    pred = predict([(img, g)], load_model(out, "cpu"), PredictOptions(device="cpu")).labelmap
    assert dice(pred == 1, lab == 1) > 0.7
    # the Stop button, the time budget and early stopping each end the run with a usable model
    stopped = train(items, tmp_path / "stop", cfg.updated(epochs=5), stop=lambda: True)
    assert stopped.stopped == "user" and stopped.epochs_run == 1 and (tmp_path / "stop" / "model.pt").is_file()
    assert stopped.history[0]["val_dice"] is not None
    timed = train(items, tmp_path / "time", cfg.updated(epochs=5, max_minutes=1e-4))
    assert timed.stopped == "time" and timed.epochs_run == 1
    early = train(items, tmp_path / "early", cfg.updated(epochs=6, steps_per_epoch=1, lr=1e-12, patience=1))
    assert early.stopped == "early stopping" and early.epochs_run == 2 and early.best_epoch == 1


def test_same_seed_same_weights(tmp_path):
    import torch

    from MedSegCore.dnn.loading import read_state_dict
    from MedSegCore.train import train

    items = [balls(s, shape=(24, 24, 24)) for s in range(2)]
    cfg = TrainConfig.from_dict({**FAST, "patch": [16, 16, 16], "epochs": 1, "steps_per_epoch": 3, "val_fraction": 0})
    for name in ("a", "b"):
        train(items, tmp_path / name, cfg)
    a, b = (read_state_dict(tmp_path / n / "model.pt") for n in ("a", "b"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_transfer_from_default_with_frozen_encoder(tmp_path):
    import torch

    from MedSegCore.dnn.loading import DEFAULT_MODEL_DIR, read_state_dict
    from MedSegCore.train import train
    from MedSegCore.train.network import build, encoder_modules

    items = [(*balls(s, shape=(32, 32, 32)), {1: "Tumour"}) for s in range(2)]
    cfg = TrainConfig.from_dict({**FAST, "init": "default", "freeze_encoder": True, "epochs": 1,
                                 "steps_per_epoch": 2, "val_fraction": 0.0})
    result = train(items, tmp_path / "ft", cfg)
    default = read_state_dict(DEFAULT_MODEL_DIR / "model.pt")
    tuned = read_state_dict(tmp_path / "ft" / "model.pt")
    card = json.loads((tmp_path / "ft" / "card.json").read_text())
    assert card["out_channels"] == 2 and card["labels"][0]["name"] == "Tumour"
    shipped = json.loads((DEFAULT_MODEL_DIR / "card.json").read_text())
    assert card["architecture"]["params"]["channels"] == shipped["architecture"]["params"]["channels"]
    assert card["normalization"] == shipped["normalization"]                        # what its weights expect
    reinit = result.transfer["reinitialised"]
    assert reinit and all(k.startswith("model.2.") for k in reinit)                  # only the last up block
    assert all(default[k].shape != tuned[k].shape for k in reinit if k in default)
    net = build(card["architecture"], 2)
    enc = {id(p) for m in encoder_modules(net) for p in m.parameters()}
    names = [n for n, p in net.named_parameters() if id(p) in enc]
    assert names and all(torch.equal(default[n], tuned[n]) for n in names)          # frozen: unchanged
    changed = [n for n, p in net.named_parameters() if id(p) not in enc and n not in reinit]
    assert any(not torch.equal(default[n], tuned[n]) for n in changed)              # the decoder learned


def test_2d_configs_from_the_panel_and_the_command_line_are_valid():
    """The default flips follow the network's dimensions (2D: axes 0 and 1), as the panel
    (TrainConfig(dims=2)) and ``medseg train --dims 2`` (TrainConfig().updated(dims=2)) build them."""
    from MedSegCore.cli import train as train_cli

    panel = TrainConfig(dims=2, patch=[96, 96])
    panel.validate()
    assert panel.augment.flips(2) == [0, 1] and TrainConfig().augment.flips(3) == [0, 1, 2]
    parser = argparse.ArgumentParser()
    train_cli.add_parser(parser.add_subparsers())
    args = parser.parse_args(["train", "--data", "d", "-o", "o", "--dims", "2"])
    cli = train_cli.config_from_args(args)
    assert cli.dims == 2 and cli.roi()[2] == 1 and cli.augment.flips(cli.dims) == [0, 1]
    with pytest.raises(ParameterError, match="flip_axes"):
        TrainConfig(dims=2, patch=[96, 96], augment=AugmentConfig(flip_axes=[0, 1, 2])).validate()


def test_config_json_round_trip_and_validation(tmp_path):
    cfg = TrainConfig.from_dict({"dims": 2, "patch": [64, 48], "augment": {"flip_axes": [1]}, "_note": "ok"})
    cfg.save(tmp_path / "c.json")
    assert load_config(tmp_path / "c.json") == cfg and cfg.roi() == [64, 48, 1]
    assert cfg.architecture()["params"]["strides"] == [[2, 2, 1]] * 3
    shipped = load_config(os.path.join(ROOT, "MedSegCore", "models", "default", "train_config.json"))
    assert 0 not in shipped.augment.flip_axes                  # no left-right flips for the symmetric template
    for bad, msg in [({"epoch": 3}, "unknown setting"), ({"lr": "fast"}, "lr: expected float"),
                     ({"patch": [60, 64, 64]}, "divisible"), ({"loss": "focal"}, "loss"),
                     ({"dims": 2, "patch": [64, 64], "augment": {"flip_axes": [2]}}, "flip_axes"),
                     ({"augment": {"gamma": [2, 1]}}, "gamma")]:
        with pytest.raises(ParameterError, match=msg):
            TrainConfig.from_dict(bad)


def test_importing_train_modules_does_not_import_torch():
    code = ("import sys, MedSegCore.train, MedSegCore.cli.train, MedSegCore.train.config, MedSegCore.train.data; "
            "print(sorted(m for m in ('torch', 'monai') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_norm_params_match_inference_normalisation_and_plain_crops():
    import torch

    from MedSegCore.dnn.preprocess import normalize
    from MedSegCore.train.config import AugmentConfig
    from MedSegCore.train.transforms import Augmenter, apply_norm, norm_params

    x = np.random.default_rng(0).gamma(2, 50, (20, 22, 24)).astype(np.float32)
    x[:5] = 0
    for norm in ({"type": "zscore", "params": {"nonzero": True}}, {"type": "zscore"}, {"type": "minmax"},
                 {"type": "percentile", "params": {"lower": 1, "upper": 99}},
                 {"type": "ct_window", "params": {"a_min": 20, "a_max": 200, "clip": True}}):
        expected = normalize(x, norm["type"], norm.get("params", {}))
        np.testing.assert_allclose(apply_norm(x, norm_params(x, norm)), expected, rtol=1e-5, atol=1e-5)
    off = AugmentConfig(flip_axes=[], affine_prob=1.0, rotate_deg=0.0, scale=0.0, intensity_prob=0, gamma_prob=0,
                        noise_prob=0, bias_prob=0)
    img = torch.from_numpy(x[None, None, :, :20, :20].copy())
    lab = (img > 100).to(torch.uint8)
    params = norm_params(x, {"type": "none"})
    a, b = Augmenter(off, 3, [16, 16, 16], [20, 20, 20])(img, lab, [params], np.random.RandomState(0))
    np.testing.assert_allclose(a[0, 0].numpy(), x[2:18, 2:18, 2:18], rtol=1e-4, atol=1e-3)   # identity affine
    assert torch.equal(b[0, 0], lab[0, 0, 2:18, 2:18, 2:18].long())


def test_smooth_deformation_moves_voxels_by_at_most_its_bound():
    import torch

    from MedSegCore.train.config import AugmentConfig
    from MedSegCore.train.transforms import Augmenter, crop_size, norm_params

    aug = AugmentConfig(flip_axes=[], affine_prob=0.0, intensity_prob=0, gamma_prob=0, noise_prob=0, bias_prob=0,
                        deform_prob=1.0, deform_voxels=2.0, deform_grid=4)
    crop = crop_size(aug, 3, [16, 16, 16])
    assert crop == [20, 20, 20]                                  # 2 voxels of margin on each side
    k, j, i = np.meshgrid(*(np.arange(20, dtype=np.float32),) * 3, indexing="ij")
    ramps = [torch.from_numpy(r[None, None].copy()) for r in (k, j, i)]   # value = index along one axis
    for axis, ramp in enumerate(ramps):
        lab = (ramp > 9.5).to(torch.uint8)
        img, out_lab = Augmenter(aug, 3, [16, 16, 16], crop)(ramp, lab, [norm_params(ramp.numpy(), {"type": "none"})],
                                                             np.random.RandomState(axis))
        shift = img[0, 0].numpy() - ramp[0, 0, 2:18, 2:18, 2:18].numpy()
        assert 0.5 < np.abs(shift).max() <= 2.0 + 1e-4          # moved, by at most deform_voxels
        assert np.abs(np.diff(shift, axis=axis)).max() <= 2 * 2.0 / (15 / 3) + 1e-3   # smooth: 4 control points
        assert torch.equal(out_lab[0, 0], (img[0, 0] > 9.5).long()) or \
            (out_lab[0, 0] != (img[0, 0] > 9.5).long()).float().mean() < 0.02   # labels follow the image
    aug.deform_prob = 0.0
    same, _ = Augmenter(aug, 3, [16, 16, 16], crop)(ramps[0], ramps[0].to(torch.uint8),
                                                    [norm_params(ramps[0].numpy(), {"type": "none"})],
                                                    np.random.RandomState(0))
    assert torch.equal(same[0, 0], ramps[0][0, 0, 2:18, 2:18, 2:18])


def test_rotate90_turns_patches_and_labels_together_and_never_mirrors():
    import torch

    from MedSegCore.train.config import AugmentConfig
    from MedSegCore.train.transforms import Augmenter, norm_params

    aug = AugmentConfig(flip_axes=[], affine_prob=0.0, intensity_prob=0, gamma_prob=0, noise_prob=0, bias_prob=0,
                        rotate90_prob=1.0, rotate90_axes=[0, 1])
    x = torch.from_numpy(np.random.default_rng(1).random((6, 1, 8, 8, 5)).astype(np.float32))
    lab = (x > 0.5).to(torch.uint8)
    img, out = Augmenter(aug, 3, [8, 8, 5], [8, 8, 5])(x, lab, [norm_params(x.numpy(), {"type": "none"})] * 6,
                                                      np.random.RandomState(4))
    turns = []
    for b in range(6):
        k = [k for k in (1, 2, 3) if torch.equal(img[b], x[b].rot90(k, (1, 2)))]
        assert len(k) == 1 and torch.equal(out[b], lab[b].rot90(k[0], (1, 2)).long())
        turns.append(k[0])
        assert not any(torch.equal(img[b], x[b].flip(d)) for d in (1, 2, 3))
    assert len(set(turns)) > 1
    with pytest.raises(ParameterError, match="rotate90"):
        TrainConfig(patch=[64, 32, 64], augment=AugmentConfig(rotate90_prob=0.5)).validate()


# -- data sources and bad data -----------------------------------------------------------------
def test_seg_nrrd_labels_are_matched_by_name(tmp_path):
    rows = []
    for n, order in enumerate((["Liver", "Spleen"], ["Spleen", "Liver"])):
        img, g, lab = balls(n, shape=(24, 24, 24), n=2)
        io.write_volume(img, g, str(tmp_path / f"img{n}.nrrd"))
        seg = nodes.new_segmentation_node(f"s{n}", g)
        for name in order:
            mask = (lab > 0) & ((np.indices(g.shape)[2] < 12) == (name == "Liver"))
            nodes.write_segment(seg, mask, g, name, color=(1, 0, 0) if name == "Liver" else (0, 0, 1))
        nodes.save_segmentation(seg, str(tmp_path / f"lab{n}.seg.nrrd"))
        rows.append({"image": f"img{n}.nrrd", "label": f"lab{n}.seg.nrrd"})
    (tmp_path / "list.json").write_text(json.dumps({"training": rows[:1], "validation": rows[1:]}))
    data = load_data(str(tmp_path / "list.json"))
    assert [(lab["value"], lab["name"]) for lab in data.labels] == [(1, "Liver"), (2, "Spleen")]
    assert data.labels[1]["color"] == [0.0, 0.0, 1.0] and data.validation == ["img1"]
    assert split_cases(data, 0.5, None, 0) == ([0], [1])
    liver = (np.indices(data.cases[1].label.shape)[2] < 12)
    assert set(np.unique(data.cases[1].label[liver])) <= {0, 1} and (data.cases[1].label == 2).any()
    seg = nodes.new_segmentation_node("odd", g)
    nodes.write_segment(seg, lab > 0, g, "Liver")
    nodes.save_segmentation(seg, str(tmp_path / "odd.seg.nrrd"))
    (tmp_path / "bad.csv").write_text("image,label\nimg0.nrrd,lab0.seg.nrrd\nimg1.nrrd,odd.seg.nrrd\n")
    with pytest.raises(MedSegError, match="different segment sets"):
        load_data(str(tmp_path / "bad.csv"))


def test_nnunet_folder_and_datalists(tmp_path):
    (tmp_path / "imagesTr").mkdir()
    (tmp_path / "labelsTr").mkdir()
    for s in range(2):
        img, g, lab = balls(s, shape=(16, 16, 16), n=1)
        lab[lab > 0] = 3 if s else 1
        io.write_volume(img, g, str(tmp_path / "imagesTr" / f"brain_{s:03d}_0000.nii.gz"))
        io.write_volume(lab, g, str(tmp_path / "labelsTr" / f"brain_{s:03d}.nii.gz"))
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "edema": 1, "tumour": 3}}))
    data = load_data(str(tmp_path))
    assert [c.name for c in data.cases] == ["brain_000", "brain_001"]
    assert [(lab["value"], lab["name"]) for lab in data.labels] == [(1, "edema"), (3, "tumour")]
    rows = [{"image": f"imagesTr/brain_{s:03d}_0000.nii.gz", "label": f"labelsTr/brain_{s:03d}.nii.gz"}
            for s in range(2)]
    (tmp_path / "list.json").write_text(json.dumps(rows))
    assert [lab["value"] for lab in load_data(str(tmp_path / "list.json")).labels] == [1, 3]
    (tmp_path / "list.csv").write_text("image,label,name,split\n" + "\n".join(
        f"{r['image']},{r['label']},case{n},{'val' if n else 'train'}" for n, r in enumerate(rows)) + "\n")
    data = load_data(str(tmp_path / "list.csv"), [{"value": 3, "name": "Tumour", "color": [1, 0, 0]}])
    assert data.validation == ["case1"] and data.labels[1] == {"value": 3, "name": "Tumour", "color": [1, 0, 0]}


def test_bad_data_is_reported_clearly(tmp_path):
    img, g, lab = balls(1, shape=(20, 20, 20))
    with pytest.raises(MedSegError, match="no labelled voxels"):
        load_data([(img, g, np.zeros_like(lab))])
    with pytest.raises(MedSegError, match="different segment sets"):
        load_data([(img, g, {"A": lab > 0}), (img, g, {"A": lab > 0, "B": lab == 0})])
    with pytest.raises(MedSegError, match="label shape"):
        load_data([(img, g, lab[:-1])])
    with pytest.raises(InputError, match="not found"):
        load_data(str(tmp_path / "nothing"))
    with pytest.raises(InputError, match="no training cases"):
        load_data(str(tmp_path))
    io.write_volume(img, g, str(tmp_path / "a_image.nii.gz"))
    far = Geometry(g.size, g.spacing, (500.0, 500.0, 500.0), np.eye(3))
    io.write_volume(lab, far, str(tmp_path / "a_label.nii.gz"))
    with pytest.raises(MedSegError, match="do not overlap"):
        load_data(str(tmp_path))
    shifted = Geometry(g.size, g.spacing, tuple(np.add(g.origin, (2.0, 0, 0))), np.eye(3))
    io.write_volume(lab, shifted, str(tmp_path / "a_label.nii.gz"))     # overlapping grid: resampled
    data = load_data(str(tmp_path))
    assert data.cases[0].label.shape == img.shape and np.array_equal(data.cases[0].label[:, :, 2:], lab[:, :, :-2])
    (tmp_path / "list.csv").write_text("image,label\nmissing.nii.gz,a_label.nii.gz\n")
    with pytest.raises(InputError, match="missing.nii.gz"):
        load_data(str(tmp_path / "list.csv"))
    from MedSegCore.cli import main
    assert main(["train", "--data", str(tmp_path), "-o", str(tmp_path), "--epochs", "1"]) == 2   # folder not empty
    assert main(["train", "--data", str(tmp_path), "-o", str(tmp_path / "m"), "--freeze-encoder"]) == 2
