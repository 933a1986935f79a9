"""``medseg predict`` end to end on the MNI152 T1 (197 x 233 x 189, nilearn) with the default backend
(auto: ONNX Runtime on the CPU when installed) against ``--backend torch`` and against a bare MONAI
``sliding_window_inference`` in PyTorch of the same network on the same tensor, same windows (roi 64,
overlap 0.25, sw_batch 4, Gaussian blending), in the same run: interleaved best of N.  Peak RSS of each
``medseg predict`` is measured in a process of its own.  The export is made (and cached) by the
warm-up run, so the timed runs measure a cached model, as every run after the first does."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from bench_predict import OVERLAP, ROI, SW_BATCH, interleaved_best, mni152  # noqa: E402

REPEAT = int(os.environ.get("MEDSEG_BENCH_REPEAT", "3"))
_RSS = ("import resource, sys\nsys.path.insert(0, {root!r})\nimport torch\ntorch.set_num_threads(2)\n"
        "from MedSegCore.cli import main\nrc = main({args!r})\n"
        "print('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)\nsys.exit(rc)\n")


def peak_rss(args) -> float:
    """Peak RSS (MiB) of ``medseg predict ARGS`` in a fresh process."""
    out = subprocess.run([sys.executable, "-c", _RSS.format(root=str(ROOT), args=args)], capture_output=True,
                         text=True, timeout=1200)
    lines = [line for line in out.stdout.splitlines() if line.startswith("RSS ")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"medseg predict failed: {out.stderr[-500:]}")
    return float(lines[-1].split()[1])


def run(report) -> None:
    import torch
    from monai.inferers import sliding_window_inference

    from MedSegCore.cli import main
    from MedSegCore.dnn import backends
    from MedSegCore.dnn.loading import load_model
    from MedSegCore.dnn.preprocess import prepare
    from MedSegCore.image import io

    torch.set_num_threads(2)
    array, geom = mni152()
    folder = tempfile.mkdtemp(prefix="medseg-bench-backends-")
    path = f"{folder}/mni152.nii.gz"
    io.write_volume(array, geom, path)
    common = ["--device", "cpu", "--roi", *map(str, ROI), "--sw-batch", str(SW_BATCH), "--overlap", str(OVERLAP),
              "--overwrite"]
    auto = backends.resolve("auto", "cpu")

    def cli(backend, out):
        def go():
            if main(["predict", path, "-o", f"{folder}/{out}", *common, "--backend", backend]) != 0:
                raise RuntimeError(f"medseg predict --backend {backend} failed")
        return go

    model = load_model("default", device="cpu")
    x = torch.from_numpy(np.ascontiguousarray(prepare([(array, geom)], model.card).data.transpose(0, 3, 2, 1)))[None]

    def bare():
        with torch.inference_mode():
            sliding_window_inference(x, ROI, SW_BATCH, model.network, overlap=OVERLAP, mode="gaussian")

    t_auto, t_torch, t_bare = interleaved_best([cli("auto", "auto"), cli("torch", "torch"), bare], repeat=REPEAT)
    rss = {b: peak_rss(["predict", path, "-o", f"{folder}/rss_{b}", *common, "--backend", b])
           for b in ("auto", "torch")}
    print(f"bench_backends: MNI152 {array.shape} KJI, auto = {auto}, best of {REPEAT} interleaved; "
          f"peak RSS medseg predict auto {rss['auto']:.0f} MiB, --backend torch {rss['torch']:.0f} MiB")
    report(f"medseg predict MNI152 default backend ({auto})", t_auto, "bare monai sliding_window_inference", t_bare)
    report("medseg predict MNI152 --backend torch", t_torch, "bare monai sliding_window_inference", t_bare)
    report(f"medseg predict MNI152 default backend ({auto})", t_auto, "medseg predict --backend torch", t_torch)


if __name__ == "__main__":
    run(lambda case, p, name, b: print(f"{case}: {p:.2f} s vs {name} {b:.2f} s (x{p / b:.2f})"))
