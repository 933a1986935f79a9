"""Small MONAI bundles for the tests, with the transform chains of real Model Zoo bundles
(spleen_ct_segmentation, wholeBody_ct_segmentation, brats_mri_segmentation, prostate_mri_anatomy,
pancreas_ct_dints_segmentation (YAML), renalStructures_UNEST_segmentation and
wholeBrainSeg_Large_UNEST_segmentation (a network in scripts/), read from
github.com/Project-MONAI/model-zoo, models/*/configs/inference.*), tiny networks with seeded random
weights whose last layer is recentred so that every class appears, and ``run_monai`` which runs
them with MONAI's own ``ConfigWorkflow``.
"""
from __future__ import annotations

import copy
import glob
import json
import os
import textwrap

import numpy as np

from MedSegCore.image.geometry import Geometry
from synthetic import rotation

IMPORTS = ["$import glob", "$import numpy", "$import os"]
DEVICE = "$torch.device('cuda:0' if torch.cuda.is_available() else 'cpu')"


def lps_oblique_geometry(size=(44, 38, 18)) -> Geometry:
    """Oblique (about 17 and 11 degrees), anisotropic (0.9 x 1.1 x 2.6 mm) grid whose axes point L, P, S."""
    return Geometry(size, (0.9, 1.1, 2.6), (60.0, 40.0, -20.0), np.diag([-1.0, -1.0, 1.0]) @ rotation(0.3, 0.2))


def test_volume(geometry: Geometry, seed: int = 0, offset: float = 0.0) -> np.ndarray:
    """KJI float32 CT-like volume: a body (0 HU) with bright and dark blobs and noise; air outside."""
    rng = np.random.default_rng(seed)
    k, j, i = np.indices(geometry.shape, dtype=np.float32)
    n = np.array(geometry.shape, np.float32)
    r = np.sqrt(((k - n[0] / 2) / (0.55 * n[0])) ** 2 + ((j - n[1] / 2) / (0.45 * n[1])) ** 2
                + ((i - n[2] / 2) / (0.45 * n[2])) ** 2)
    vol = np.where(r < 1, 20.0, -1000.0).astype(np.float32)
    for _ in range(6):
        c = rng.uniform(0.2, 0.8, 3) * n
        s = rng.uniform(0.08, 0.2) * n
        vol += rng.uniform(-250, 300) * np.exp(-(((k - c[0]) / s[0]) ** 2 + ((j - c[1]) / s[1]) ** 2
                                                 + ((i - c[2]) / s[2]) ** 2))
    return (vol + offset + rng.normal(0, 15, vol.shape)).astype(np.float32)


def _load(keys="@image_key", **kw):
    return {"_target_": "LoadImaged", "keys": keys, **kw}


def _t(target, keys="@image_key", **kw):
    return {"_target_": target, "keys": keys, **kw}


def _saver(**kw):
    return {"_target_": "SaveImaged", "keys": "pred", "output_dir": "@output_dir", "output_ext": ".nii.gz",
            "output_dtype": "$numpy.float32", "output_postfix": "trans", "separate_folder": True, **kw}


def _evaluator(amp=True, handlers="@handlers"):
    return {"_target_": "SupervisedEvaluator", "device": "@device", "val_data_loader": "@dataloader",
            "network": "@network", "inferer": "@inferer", "postprocessing": "@postprocessing",
            "val_handlers": handlers, "amp": amp}


def _common(datalist_key="datalist"):
    return {"imports": IMPORTS, "bundle_root": ".", "image_key": "image",
            "output_dir": "$@bundle_root + '/eval'", "load_pretrain": True, "device": DEVICE,
            datalist_key: "$list(sorted(glob.glob('/nonexistent/imagesTs/*.nii.gz')))",
            "network": "$@network_def.to(@device)",
            "dataset": {"_target_": "Dataset", "data": f"$[{{'image': i}} for i in @{datalist_key}]",
                        "transform": "@preprocessing"},
            "dataloader": {"_target_": "DataLoader", "dataset": "@dataset", "batch_size": 1, "shuffle": False,
                           "num_workers": 4},
            "handlers": [{"_target_": "StatsHandler", "iteration_log": False}],
            "checkpointloader": {"_target_": "CheckpointLoader", "load_path": "$@bundle_root + '/models/model.pt'",
                                 "load_dict": {"model": "@network"}},
            "initialize": ["$setattr(torch.backends.cudnn, 'benchmark', True)",
                           "$@checkpointloader(@evaluator) if @load_pretrain else None"],
            "run": ["$@evaluator.run()"]}


def _unet(n_in, n_out, **kw):
    return {"_target_": "UNet", "spatial_dims": 3, "in_channels": n_in, "out_channels": n_out,
            "channels": [4, 8, 16], "strides": [2, 2], "num_res_units": 1, "norm": "batch", **kw}


def spleen():
    """spleen_ct_segmentation: RAS, 1.5 x 1.5 x 2 mm, CT window, softmax -> Invertd (linear) -> argmax."""
    c = _common()
    c["network_def"] = _unet(1, 2)
    c["preprocessing"] = {"_target_": "Compose", "transforms": [
        _load(), _t("EnsureChannelFirstd"), _t("Orientationd", axcodes="RAS"),
        _t("Spacingd", pixdim=[1.5, 1.5, 2.0], mode="bilinear"),
        _t("ScaleIntensityRanged", a_min=-57, a_max=164, b_min=0, b_max=1, clip=True), _t("EnsureTyped")]}
    c["inferer"] = {"_target_": "SlidingWindowInferer", "roi_size": [32, 32, 32], "sw_batch_size": 4, "overlap": 0.5}
    c["postprocessing"] = {"_target_": "Compose", "transforms": [
        _t("Activationsd", "pred", softmax=True),
        _t("Invertd", "pred", transform="@preprocessing", orig_keys="@image_key", nearest_interp=False, to_tensor=True),
        _t("AsDiscreted", "pred", argmax=True), _saver()]}
    c["evaluator"] = _evaluator()
    c["initialize"] = ["$monai.utils.set_determinism(seed=123)",
                       "$@checkpointloader(@evaluator) if @load_pretrain else None"]
    return c, _meta("Spleen CT segmentation (test)", ["image"], ["background", "spleen"])


def wholebody(n_out=6):
    """wholeBody_ct_segmentation: pixdim from displayable_configs, z-score (nonzero) then ScaleIntensityd
    to -1..1, gaussian blending with replicate padding, argmax then Invertd (nearest)."""
    c = _common()
    c["displayable_configs"] = {"highres": True, "sw_overlap": 0.25, "sw_batch_size": 1}
    c["pixdim"] = "$[1.5, 1.5, 1.5] if @displayable_configs#highres else [3.0, 3.0, 3.0]"
    c["modelname"] = "$'model.pt' if @displayable_configs#highres else 'model_lowres.pt'"
    c["network_def"] = {"_target_": "SegResNet", "spatial_dims": 3, "in_channels": 1, "out_channels": n_out,
                        "init_filters": 8, "blocks_down": [1, 2, 2], "blocks_up": [1, 1], "dropout_prob": 0.2}
    c["preprocessing"] = {"_target_": "Compose", "transforms": [
        _load(), _t("EnsureTyped"), _t("EnsureChannelFirstd"), _t("Orientationd", axcodes="RAS"),
        _t("Spacingd", pixdim="@pixdim", mode="bilinear"), _t("NormalizeIntensityd", nonzero=True),
        _t("ScaleIntensityd", minv=-1.0, maxv=1.0)]}
    c["inferer"] = {"_target_": "SlidingWindowInferer", "roi_size": [32, 32, 32],
                    "sw_batch_size": "@displayable_configs#sw_batch_size", "overlap": "@displayable_configs#sw_overlap",
                    "padding_mode": "replicate", "mode": "gaussian", "device": DEVICE}
    c["postprocessing"] = {"_target_": "Compose", "transforms": [
        _t("Activationsd", "pred", softmax=True), _t("AsDiscreted", "pred", argmax=True),
        _t("Invertd", "pred", transform="@preprocessing", orig_keys="@image_key", nearest_interp=True, to_tensor=True),
        _saver()]}
    c["evaluator"] = _evaluator()
    c["checkpointloader"]["load_path"] = "$@bundle_root + '/models/' + @modelname"
    names = ["background", "spleen", "kidney_right", "kidney_left", "gallbladder", "liver", "stomach", "aorta"]
    return c, _meta("Whole body CT segmentation (test)", ["image"], names[:n_out])


def brats():
    """brats_mri_segmentation: 4 MR files stacked as channels, channel-wise z-score, sigmoid -> Invertd ->
    threshold 0.5 -> Lambdad mapping to the BraTS labels 1/2/4."""
    c = _common("test_datalist")
    c["network_def"] = {"_target_": "SegResNet", "blocks_down": [1, 2], "blocks_up": [1], "init_filters": 8,
                        "in_channels": 4, "out_channels": 3, "dropout_prob": 0.2}
    c["dataset"]["data"] = "@test_datalist"
    c["preprocessing"] = {"_target_": "Compose", "transforms": [
        _load(image_only=False), _t("NormalizeIntensityd", nonzero=True, channel_wise=True)]}
    c["inferer"] = {"_target_": "SlidingWindowInferer", "roi_size": [32, 32, 32], "sw_batch_size": 1, "overlap": 0.5}
    c["postprocessing"] = {"_target_": "Compose", "transforms": [
        _t("Activationsd", "pred", sigmoid=True),
        _t("Invertd", "pred", transform="@preprocessing", orig_keys="@image_key", meta_keys="pred_meta_dict",
           nearest_interp=False, to_tensor=True),
        _t("AsDiscreted", "pred", threshold=0.5),
        _t("Lambdad", "pred", func="$lambda x: torch.where(x[[2]] > 0, 4, torch.where(x[[0]] > 0, 1, "
                                   "torch.where(x[[1]] > 0, 2, 0)))"),
        _saver(meta_keys="pred_meta_dict", output_dtype="uint8", output_postfix="seg", resample=False,
               squeeze_end_dims=True)]}
    c["evaluator"] = _evaluator()
    return c, _meta("BraTS MRI segmentation (test)", ["T1c", "T1", "T2", "FLAIR"],
                    ["Tumor core", "Whole tumor", "Enhancing tumor"], modality="MR")


def prostate():
    """prostate_mri_anatomy: 0.5 mm (here 1 mm) RAS, ScaleIntensityd then NormalizeIntensityd, argmax ->
    KeepLargestConnectedComponentd -> Invertd; weights loaded by a CheckpointLoader handler."""
    c = _common()
    c["imports"] = ["$import os"]
    c["network_def"] = _unet(1, 3, act="prelu", dropout=0.15)
    c["preprocessing"] = {"_target_": "Compose", "transforms": [
        _load("image"), _t("EnsureChannelFirstd", "image"), _t("Orientationd", "image", axcodes="RAS"),
        _t("Spacingd", "image", pixdim=[1.0, 1.0, 1.0], mode="bilinear"),
        _t("ScaleIntensityd", "image", minv=0, maxv=1), _t("NormalizeIntensityd", "image"), _t("EnsureTyped", "image")]}
    c["inferer"] = {"_target_": "SlidingWindowInferer", "roi_size": [32, 32, 32], "sw_batch_size": 4, "overlap": 0.5}
    c["postprocessing"] = {"_target_": "Compose", "transforms": [
        _t("AsDiscreted", "pred", argmax=True), _t("KeepLargestConnectedComponentd", "pred", applied_labels=[1, 2]),
        _t("Invertd", "pred", transform="@preprocessing", orig_keys="image", meta_key_postfix="meta_dict",
           nearest_interp=False, to_tensor=True),
        {"_target_": "SaveImaged", "keys": "pred", "resample": False, "meta_keys": "pred_meta_dict",
         "output_dir": "@output_dir"}]}
    c["handlers"] = [{"_target_": "CheckpointLoader", "load_path": "$@bundle_root + '/models/model.pt'",
                      "map_location": {"_target_": "torch.device", "device": "@device"},
                      "load_dict": {"model": "@network"}},
                     {"_target_": "StatsHandler", "iteration_log": False}]
    c["evaluator"] = _evaluator()
    del c["checkpointloader"]
    c["initialize"] = ["$setattr(torch.backends.cudnn, 'benchmark', True)"]
    return c, _meta("Prostate MRI anatomy (test)", ["image"], ["background", "central gland", "peripheral zone"],
                    modality="MR", authors="Keno Bressem")


def pancreas():
    """pancreas_ct_dints_segmentation (a YAML config): 1 mm RAS, CT window, overlap 0.625, softmax ->
    Invertd -> argmax (a UNet stands in for DiNTS, whose architecture file is not part of the test)."""
    c = _common()
    c.update({"input_channels": 1, "output_classes": 3})
    c["network_def"] = _unet("@input_channels", "@output_classes")
    c["preprocessing"] = {"_target_": "Compose", "transforms": [
        _load(), _t("EnsureChannelFirstd"), _t("Orientationd", axcodes="RAS"),
        _t("Spacingd", pixdim=[1, 1, 1], mode="bilinear"),
        _t("ScaleIntensityRanged", a_min=-87, a_max=199, b_min=0, b_max=1, clip=True), _t("EnsureTyped")]}
    c["inferer"] = {"_target_": "SlidingWindowInferer", "roi_size": [32, 32, 32], "sw_batch_size": 4,
                    "overlap": 0.625}
    c["postprocessing"] = {"_target_": "Compose", "transforms": [
        _t("Activationsd", "pred", softmax=True),
        _t("Invertd", "pred", transform="@preprocessing", orig_keys="@image_key", meta_key_postfix="meta_dict",
           nearest_interp=False, to_tensor=True),
        _t("AsDiscreted", "pred", argmax=True), _saver(meta_keys="pred_meta_dict")]}
    c["evaluator"] = _evaluator()
    return c, _meta("Pancreas CT DiNTS segmentation (test)", ["image"], ["background", "pancreas", "pancreatic tumor"])


SCRIPT_NET = '''
"""A tiny network standing in for UNesT (scripts/networks/unest*.py of the UNEST bundles)."""
import torch


class TinyNet(torch.nn.Module):
    def __init__(self, in_channels=1, out_channels=4, features=6):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv3d(in_channels, features, 3, padding=1), torch.nn.InstanceNorm3d(features),
            torch.nn.LeakyReLU(), torch.nn.Conv3d(features, features, 3, padding=2, dilation=2),
            torch.nn.LeakyReLU())
        self.out = torch.nn.Conv3d(features, out_channels, 1)

    def forward(self, x):
        return self.out(self.body(x))
'''


def renal():
    """renalStructures_UNEST_segmentation: network from scripts/, an absolute bundle_root, channel_dim
    no_channel, 1 mm RAS, CT window; weights by a CheckpointLoader handler; run id 'evaluating'."""
    c = _common()
    c["bundle_root"] = "/models/renalStructures_UNEST_segmentation"
    c["network_def"] = {"_target_": "scripts.networks.tiny.TinyNet", "in_channels": 1, "out_channels": 4}
    c["preprocessing"] = {"_target_": "Compose", "transforms": [
        _load("image"), _t("EnsureChannelFirstd", "image", channel_dim="no_channel"),
        _t("Orientationd", "image", axcodes="RAS"), _t("Spacingd", "image", pixdim=[1.0, 1.0, 1.0], mode="bilinear"),
        _t("ScaleIntensityRanged", "image", a_min=-175, a_max=250, b_min=0.0, b_max=1.0, clip=True),
        _t("EnsureTyped", "image")]}
    c["inferer"] = {"_target_": "SlidingWindowInferer", "roi_size": [32, 32, 32], "sw_batch_size": 4, "overlap": 0.5}
    c["postprocessing"] = {"_target_": "Compose", "transforms": [
        _t("Activationsd", "pred", softmax=True),
        _t("Invertd", "pred", transform="@preprocessing", orig_keys="image", nearest_interp=False, to_tensor=True),
        _t("AsDiscreted", "pred", argmax=True), {"_target_": "SaveImaged", "keys": "pred", "output_dir": "@output_dir"}]}
    c["handlers"] = [{"_target_": "CheckpointLoader", "load_path": "$@bundle_root + '/models/model.pt'",
                      "load_dict": {"model": "@network"}, "strict": "True"},
                     {"_target_": "StatsHandler", "iteration_log": False}]
    c["evaluator"] = _evaluator(amp=False)
    for k in ("checkpointloader", "initialize", "run"):
        del c[k]
    c["evaluating"] = ["$setattr(torch.backends.cudnn, 'benchmark', True)", "$@evaluator.run()"]
    return c, _meta("Renal structures UNEST segmentation (test)", ["image"],
                    ["background", "kidney cortex", "medulla", "pelvicalyceal system"],
                    authors="Vanderbilt University + MONAI team")


def wholebrain():
    """wholeBrainSeg_Large_UNEST_segmentation: no spatial transforms, z-score with string flags
    ("True"), overlap 0.7, softmax -> Invertd -> argmax; network from scripts/; run id 'evaluating'."""
    c, meta = renal()
    c["bundle_root"] = "."
    c["network_def"]["out_channels"] = 5
    c["preprocessing"] = {"_target_": "Compose", "transforms": [
        _load("image"), _t("EnsureChannelFirstd", "image"),
        _t("NormalizeIntensityd", "image", nonzero="True", channel_wise="True"), _t("EnsureTyped", "image")]}
    c["inferer"]["overlap"] = 0.7
    c["postprocessing"]["transforms"][1]["meta_key_postfix"] = "meta_dict"
    c["postprocessing"]["transforms"][3]["meta_keys"] = "pred_meta_dict"
    names = ["background", "3rd-Ventricle", "4th-Ventricle", "Right-Accumbens-Area", "Left-Accumbens-Area"]
    return c, _meta("Whole brain large UNEST segmentation (test)", ["image"], names, modality="MR",
                    authors="Vanderbilt University + MONAI team")


def many_labels():
    """Labels above 255 (uint16 label maps): spleen's chain with a Lambdad adding 300 to every label."""
    c, _ = spleen()
    c["network_def"]["out_channels"] = 4
    post = c["postprocessing"]["transforms"]
    post.insert(3, _t("Lambdad", "pred", func="$lambda x: torch.where(x > 0, x + 300, x)"))
    return c, _meta("Many labels (test)", ["image"], ["background", "structure A", "structure B", "structure C"])


KINDS = {"spleen": spleen, "wholebody": wholebody, "brats": brats, "prostate": prostate, "pancreas": pancreas,
         "renal": renal, "wholebrain": wholebrain, "many_labels": many_labels}
RUN_IDS = {"renal": "evaluating", "wholebrain": "evaluating"}


def _meta(name, inputs, outputs, modality="CT", authors="MONAI team"):
    return {"version": "0.1.0", "name": name, "authors": authors, "description": f"{name}: test bundle",
            "intended_use": "tests only", "network_data_format": {
                "inputs": {"image": {"type": "image", "modality": modality, "num_channels": len(inputs),
                                     "channel_def": {str(i): n for i, n in enumerate(inputs)}}},
                "outputs": {"pred": {"type": "image", "format": "segmentation", "num_channels": len(outputs),
                                     "channel_def": {str(i): n for i, n in enumerate(outputs)}}}}}


def _network(config, folder):
    from monai.bundle import ConfigParser
    import sys

    parser = ConfigParser(copy.deepcopy(config))
    parser["bundle_root"] = str(folder)
    sys.path.insert(1, str(folder))
    try:
        for m in [m for m in sys.modules if m == "scripts" or m.startswith("scripts.")]:
            del sys.modules[m]
        return parser.get_parsed_content("network_def")
    finally:
        sys.path.remove(str(folder))


def _recentre(net, n_in, seed, size: int = 48):
    """Scale and shift the last convolution so that every output channel's logits spread around 0 on a
    smooth random input (otherwise a random network predicts one class everywhere)."""
    import torch

    last = [m for m in net.modules() if isinstance(m, (torch.nn.Conv3d, torch.nn.ConvTranspose3d))][-1]
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.avg_pool3d(torch.randn(1, n_in, size, size, size, generator=g), 5, 1, 2)
    x = x / x.std()
    net.eval()
    with torch.no_grad():
        for _ in range(3):
            y = net(x)
            y = y[0] if isinstance(y, (list, tuple)) else y
            std = y.transpose(0, 1).reshape(y.shape[1], -1).std(dim=1).clamp_min(1e-6)
            mean = y.transpose(0, 1).reshape(y.shape[1], -1).mean(dim=1)
            if last.bias is None:
                break
            dim = 0 if isinstance(last, torch.nn.Conv3d) else 1
            shape = [-1 if d == dim else 1 for d in range(last.weight.ndim)]
            last.weight.mul_((1.0 / std).view(shape))
            last.bias.sub_(mean).div_(std)


def write_bundle(root, kind: str, seed: int = 0, yaml: bool | None = None) -> str:
    """Write test bundle ``kind`` (see KINDS) into ``root``; returns the folder."""
    config, meta = KINDS[kind]()
    return write_config_bundle(os.path.join(str(root), kind), config, meta, seed,
                               (kind == "pancreas") if yaml is None else yaml,
                               scripts=kind in ("renal", "wholebrain"), wrapped=kind == "prostate")


def write_config_bundle(folder: str, config: dict, meta: dict, seed: int = 0, yaml: bool = False,
                        scripts: bool = False, wrapped: bool = False) -> str:
    """Write a bundle folder from a config and metadata, with seeded weights (``{"model": ...}`` if wrapped)."""
    import torch

    os.makedirs(os.path.join(folder, "configs"), exist_ok=True)
    os.makedirs(os.path.join(folder, "models"), exist_ok=True)
    if scripts:
        os.makedirs(os.path.join(folder, "scripts", "networks"), exist_ok=True)
        for f in ("scripts/__init__.py", "scripts/networks/__init__.py"):
            open(os.path.join(folder, f), "w").close()
        with open(os.path.join(folder, "scripts", "networks", "tiny.py"), "w") as f:
            f.write(textwrap.dedent(SCRIPT_NET))
    if yaml:
        import yaml as pyyaml

        with open(os.path.join(folder, "configs", "inference.yaml"), "w") as f:
            pyyaml.safe_dump(config, f, sort_keys=False)
    else:
        with open(os.path.join(folder, "configs", "inference.json"), "w") as f:
            json.dump(config, f, indent=2)
    with open(os.path.join(folder, "configs", "metadata.json"), "w") as f:
        json.dump(meta, f, indent=2)
    torch.manual_seed(seed)
    net = _network(config, folder)
    n_in = meta["network_data_format"]["inputs"]["image"]["num_channels"]
    _recentre(net, n_in, seed)
    state = net.state_dict()
    torch.save({"model": state} if wrapped else state, os.path.join(folder, "models", "model.pt"))
    return folder


def run_monai(folder: str, inputs, out_dir: str, kind: str | None = None) -> str:
    """Run the bundle with MONAI's ConfigWorkflow on input file(s); returns the NIfTI it saved."""
    from monai.bundle import ConfigWorkflow

    configs = os.path.join(folder, "configs")
    cfg = next(os.path.join(configs, n) for n in ("inference.json", "inference.yaml") if
               os.path.isfile(os.path.join(configs, n)))
    image = list(inputs) if isinstance(inputs, (list, tuple)) else inputs
    workflow = ConfigWorkflow(config_file=cfg, meta_file=os.path.join(configs, "metadata.json"), logging_file=False,
                              workflow_type=None, run_id=RUN_IDS.get(kind or os.path.basename(folder), "run"),
                              **{"bundle_root": folder, "output_dir": out_dir, "dataset#data": [{"image": image}],
                                 "dataloader#num_workers": 0})
    workflow.initialize()
    workflow.run()
    workflow.finalize()
    found = sorted(glob.glob(os.path.join(out_dir, "**", "*.nii.gz"), recursive=True))
    assert len(found) == 1, found
    return found[0]
