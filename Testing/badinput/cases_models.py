"""Models that must not be trusted blindly: NaN/Inf outputs, wrong output rank or shape, windows
that cannot fit memory, broken cards and weights.  ``medseg predict`` on one small volume.

A case failing inside the run is reported as the case's FAILED line (exit 1); a model refused
before the run is the subcommand's error line (exit 2).
"""
from __future__ import annotations

import json
import os

from . import build as b
from .harness import Case

TORCH = ("torch",)
FAILED = r"^\[1/1\] ct: FAILED: "


def card(**changes) -> dict:
    """A small valid card: 1 input channel, softmax over background + 1 label, roi 16^3, no resampling."""
    c = {"name": "tiny", "version": "1", "description": "test network", "intended_use": "tests", "trained": True,
         "in_channels": 1, "out_channels": 2, "roi_size": [16, 16, 16], "output": "softmax",
         "normalization": {"type": "none"},
         "labels": [{"value": 1, "name": "Thing", "color": [1.0, 0.0, 0.0]}]}
    c.update(changes)
    return {k: v for k, v in c.items() if v is not None}


def script(body: str):
    """A TorchScript model (traced) whose forward(x) returns ``body`` (x is N, C, I, J, K)."""
    import torch

    namespace = {"torch": torch}
    exec("class Net(torch.nn.Module):\n"
         "    def forward(self, x):\n"
         f"        return {body}\n", namespace)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.trace(namespace["Net"](), torch.rand(2, 1, 16, 16, 16) * 100, check_trace=False)


def model_folder(d, body="torch.cat([x, -x], 1)", card_dict=None, weights=None):
    folder = d / "model"
    folder.mkdir()
    (folder / "card.json").write_text(json.dumps(card_dict or card()))
    if weights is None:
        script(body).save(str(folder / "model.ts"))
    elif weights:
        (folder / "model.pt").write_bytes(weights)
    return folder


def predict(body="torch.cat([x, -x], 1)", card_dict=None, weights=None, extra=()):
    def build(d):
        b.write_nifti(str(d / "ct.nii.gz"), b.image(dtype="float32"))
        model = model_folder(d, body, card_dict, weights)
        return ["predict", d / "ct.nii.gz", "-o", d / "out", "--model", model, "--device", "cpu", *extra]
    return build


def failed(id, body, expect):
    """A network that runs but returns something unusable: the case fails with a sentence."""
    return Case(id, predict(body), expect, names=None, rc=1, line=FAILED, needs=TORCH, one_line=False,
                changes=r"^out/timings\.csv$")


def refused(id, expect, names=None, **kw):
    return Case(id, predict(**kw), expect, names=names, needs=TORCH, one_line=False)


def _edit(argv, path, text):
    path.write_text(text)
    return argv


def _truncated_weights(d):
    argv = predict(card_dict=card(architecture={"type": "monai.UNet", "params": {"channels": [4, 8], "strides": [2]}}))(d)
    import torch
    import io as _io
    buf = _io.BytesIO()
    torch.save({"w": torch.zeros(10)}, buf)
    os.remove(d / "model" / "model.ts")
    (d / "model" / "model.pt").write_bytes(buf.getvalue()[:100])
    return argv


CASES = [
    failed("model-outputs-nan", "x * float('nan')", r"NaN or infinite"),
    failed("model-outputs-some-nan", "torch.where(x > 50, torch.full_like(x, float('nan')), x).repeat(1, 2, 1, 1, 1)",
           r"NaN or infinite"),
    failed("model-outputs-inf", "torch.cat([x * float('inf'), -x], 1)", r"NaN or infinite"),
    failed("model-outputs-rank-2", "x.flatten(1)", r"output.*(rank|dimensions|shape)"),
    failed("model-outputs-rank-4", "x[:, :, 0].repeat(1, 2, 1, 1)", r"output.*(rank|dimensions|shape)"),
    failed("model-outputs-half-size", "torch.cat([x, -x], 1)[:, :, ::2, ::2, ::2]", r"output.*shape"),
    failed("model-outputs-wrong-channels", "x.repeat(1, 3, 1, 1, 1)", r"3 output channel"),
    failed("model-outputs-tuple-of-nan", "torch.cat([x, x], 1) * float('nan')", r"NaN or infinite"),
    refused("model-card-windows-too-large", r"roi|window.*memory|memory", names=None,
            card_dict=card(roi_size=[4096, 4096, 4096])),
    refused("model-roi-option-too-large", r"memory", extra=("--roi", "4096", "4096", "4096")),
    refused("model-sw-batch-too-large", r"memory", extra=("--sw-batch", "1000000")),
    Case("model-card-invalid-json", lambda d: _edit(predict()(d), d / "model" / "card.json", "{nope"),
         r"not valid JSON", names="card.json", needs=TORCH, one_line=False),
    Case("model-card-wrong-labels", predict(card_dict=card(out_channels=3)), r"labels", names=None,
         needs=TORCH, one_line=False),
    Case("model-weights-truncated", _truncated_weights, r"corrupt", names="model.pt", needs=TORCH, one_line=False),
    Case("model-weights-missing", lambda d: (predict()(d), os.remove(d / "model" / "model.ts"))[0],
         r"has no model\.pt", names="model", needs=TORCH, one_line=False),
    Case("model-not-found", lambda d: predict()(d)[:5] + [d / "nomodel"], r"model not found", names="nomodel",
         needs=TORCH, one_line=False),
    refused("model-min-size-nan", r"--min-size|island size", extra=("--min-size", "nan")),
    refused("model-min-size-negative", r"--min-size|island size", extra=("--min-size", "-1")),
    refused("model-overlap-nan", r"--overlap", extra=("--overlap", "nan")),
    Case("model-timings-is-model-card", lambda d: predict()(d) + ["--timings", d / "model" / "card.json"],
         r"would overwrite the model", names="card.json", needs=TORCH, one_line=False),
    Case("model-timings-is-input", lambda d: predict()(d) + ["--timings", d / "ct.nii.gz"],
         r"would overwrite the input", names="ct.nii.gz", needs=TORCH, one_line=False),
]
