"""``medseg predict`` with a MONAI bundle against MONAI's own runner (``ConfigWorkflow``: initialize,
run, finalize, its SaveImaged writing the NIfTI) on the same file in the same process, with MedSeg's
default backend (auto: OpenVINO, else ONNX Runtime, when installed) and with ``--backend torch``.

The bundle is spleen_ct_segmentation's inference config as the Model Zoo ships it (UNet 16-256
channels, 2 residual units, batch norm; RAS, 1.5 x 1.5 x 2 mm, CT window; sliding window roi 96,
sw_batch 4, overlap 0.5; softmax, Invertd, argmax) with seeded random weights (Testing/bundle_factory).
Input: a synthetic CT, 192 x 192 x 96 at 0.8 x 0.8 x 2.5 mm, oblique and LPS.  Each side writes its
one result file: MedSeg the ``.seg.nrrd`` (its label map as Slicer segments, gzip), MONAI the bundle's
own SaveImaged ``.nii.gz`` (float32, as the config asks).  Both load the bundle on every run (MedSeg:
content hash, trust check, config, weights; MONAI: config, checkpoint).  Runs are interleaved in one
process, best of ``BENCH_REPEAT`` (default 3), wall time (reported) and this process's CPU time
(printed).  The default backend's runtime is compiled in the warm-up and kept, as for every case after
the first of one ``medseg predict`` call; what the first case of a new process adds (compiling the
cached export and checking it against PyTorch on one window) is timed in a fresh Python process and
reported as a third row (timed runs + that one-off).  Recompiling inside this process instead would
leave the old runtime's threads competing with the new ones (measured: 3.6 s instead of 2.4 s).
The label maps are compared afterwards (``--labelmap``, untimed).
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "Testing")]


def interleaved_best(fns, repeat: int) -> tuple:
    """(best wall times, best CPU times) of each function, run alternately after one warm-up each."""
    for fn in fns:
        fn()
    wall, cpu = [float("inf")] * len(fns), [float("inf")] * len(fns)
    for _ in range(repeat):
        for n, fn in enumerate(fns):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            wall[n] = min(wall[n], time.perf_counter() - t0)
            cpu[n] = min(cpu[n], time.process_time() - c0)
    return wall, cpu


def run(report) -> None:
    folder = tempfile.mkdtemp(prefix="medseg-bench-bundle-")
    try:
        _run(report, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _run(report, folder) -> None:
    import nibabel as nib
    import torch

    import bundle_factory as bf
    from common import synthetic_ct
    from MedSegCore.cli import main
    from MedSegCore.dnn import backends
    from MedSegCore.image import io
    from MedSegCore.image.geometry import Geometry
    from synthetic import rotation

    torch.set_num_threads(2)
    os.environ["MEDSEG_HOME"] = os.path.join(folder, "home")
    config, meta = bf.spleen()
    config["network_def"].update(channels=[16, 32, 64, 128, 256], strides=[2, 2, 2, 2], num_res_units=2)
    config["inferer"]["roi_size"] = [96, 96, 96]
    bundle = bf.write_config_bundle(os.path.join(folder, "spleen_ct_segmentation"), config, meta, seed=0)
    geometry = Geometry((192, 192, 96), (0.8, 0.8, 2.5), (100.0, 100.0, -150.0),
                        np.diag([-1.0, -1.0, 1.0]) @ rotation(0.1, 0.05))
    path = os.path.join(folder, "ct.nii.gz")
    io.write_volume(synthetic_ct((96, 192, 192)).astype(np.float32), geometry, path)
    default = backends.resolve("auto", "cpu")

    def medseg(backend, *extra):
        def go():
            if main(["predict", path, "-o", os.path.join(folder, f"out-{backend}"), "--model", bundle,
                     "--trust-bundle", "--overwrite", "--device", "cpu", "--backend", backend, *extra]) != 0:
                raise RuntimeError("medseg predict failed")
        return go

    def monai():
        bf.run_monai(bundle, path, os.path.join(folder, "monai"), "spleen")

    repeat = int(os.environ.get("BENCH_REPEAT", "3"))
    (t_default, t_torch, t_monai), (c_default, c_torch, c_monai) = interleaved_best(
        [medseg("auto"), medseg("torch"), monai], repeat)
    t_once = min(_one_off(bundle) for _ in range(2)) if default != "torch" else 0.0
    ref = np.asarray(nib.load(next(Path(folder, "monai").rglob("*.nii.gz"))).dataobj)
    equal = {}
    for backend in ("auto", "torch"):
        medseg(backend, "--labelmap")()
        got = np.asarray(nib.load(os.path.join(folder, f"out-{backend}", "ct.nii.gz")).dataobj)
        equal[backend] = float(np.mean(ref == got))
    print(f"bench_bundle: {geometry.size} voxels at {geometry.spacing} mm, best of {repeat}; medseg predict "
          f"{default} {t_default:.2f} s, torch {t_torch:.2f} s; ConfigWorkflow {t_monai:.2f} s; voxels equal to "
          f"ConfigWorkflow's: {default} {equal['auto']:.6f}, torch {equal['torch']:.6f}")
    print(f"bench_bundle: CPU time {default} {c_default:.2f} s (x{c_default / c_monai:.2f}), torch {c_torch:.2f} s "
          f"(x{c_torch / c_monai:.2f}), ConfigWorkflow {c_monai:.2f} s; {default} one-off in a new process "
          f"{t_once:.2f} s")
    case = "medseg predict, spleen bundle, file -> .seg.nrrd, cpu x2"
    report(f"{case}, default ({default})", t_default, "ConfigWorkflow, file -> .nii.gz", t_monai)
    report(f"{case}, --backend torch", t_torch, "ConfigWorkflow, file -> .nii.gz", t_monai)
    report(f"{case}, default, first case of a new process (+{t_once:.2f} s compile and check)",
           t_default + t_once, "ConfigWorkflow, file -> .nii.gz", t_monai)


ONE_OFF = """
import sys, time, torch
torch.set_num_threads(2)
from MedSegCore.dnn import backends
from MedSegCore.dnn.bundle import load_bundle
model = load_bundle(sys.argv[1], "cpu", trust=True)
t0 = time.perf_counter()
forward = backends.wrap(model.network, "auto", (96, 96, 96), 4, model_source=sys.argv[1])
assert forward is not model.network
print(time.perf_counter() - t0)
"""


def _one_off(bundle) -> float:
    """Seconds a fresh process spends before its first window on the default backend: reading the
    cached export, compiling it and checking it against PyTorch (backends.wrap)."""
    import subprocess

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", ONE_OFF, bundle], capture_output=True, text=True, env=env,
                         check=True).stdout
    return float(out.strip().splitlines()[-1])


if __name__ == "__main__":
    run(lambda case, p, name, b: print(f"{case}: {p:.2f} s vs {name} {b:.2f} s (x{p / b:.2f})"))
