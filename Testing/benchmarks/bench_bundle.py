"""``medseg predict`` with a MONAI bundle against MONAI's own runner (``ConfigWorkflow``: initialize,
run, finalize, its SaveImaged writing the NIfTI) on the same file in the same process.

The bundle is spleen_ct_segmentation's inference config as the Model Zoo ships it (UNet 16-256
channels, 2 residual units, batch norm; RAS, 1.5 x 1.5 x 2 mm, CT window; sliding window roi 96,
sw_batch 4, overlap 0.5; softmax, Invertd, argmax) with seeded random weights (Testing/bundle_factory).
Input: a synthetic CT, 192 x 192 x 96 at 0.8 x 0.8 x 2.5 mm, oblique and LPS.  Both sides load the
bundle each time (MedSeg: content hash, trust check, config; MONAI: config, checkpoint).
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "Testing")]


def run(report) -> None:
    import torch

    import bundle_factory as bf
    from bench_predict import interleaved_best
    from common import synthetic_ct
    from MedSegCore.cli import main
    from MedSegCore.image import io
    from MedSegCore.image.geometry import Geometry
    from synthetic import rotation

    torch.set_num_threads(2)
    folder = tempfile.mkdtemp(prefix="medseg-bench-bundle-")
    os.environ["MEDSEG_HOME"] = os.path.join(folder, "home")
    config, meta = bf.spleen()
    config["network_def"].update(channels=[16, 32, 64, 128, 256], strides=[2, 2, 2, 2], num_res_units=2)
    config["inferer"]["roi_size"] = [96, 96, 96]
    bundle = bf.write_config_bundle(os.path.join(folder, "spleen_ct_segmentation"), config, meta, seed=0)
    geometry = Geometry((192, 192, 96), (0.8, 0.8, 2.5), (100.0, 100.0, -150.0),
                        np.diag([-1.0, -1.0, 1.0]) @ rotation(0.1, 0.05))
    path = os.path.join(folder, "ct.nii.gz")
    io.write_volume(synthetic_ct((96, 192, 192)).astype(np.float32), geometry, path)

    def medseg():
        if main(["predict", path, "-o", os.path.join(folder, "out"), "--model", bundle, "--trust-bundle",
                 "--labelmap", "--overwrite", "--device", "cpu"]) != 0:
            raise RuntimeError("medseg predict failed")

    def monai():
        bf.run_monai(bundle, path, os.path.join(folder, "monai"), "spleen")

    t_medseg, t_monai = interleaved_best([medseg, monai], repeat=3)
    import nibabel as nib

    ref = np.asarray(nib.load(next(Path(folder, "monai").rglob("*.nii.gz"))).dataobj)
    got = np.asarray(nib.load(os.path.join(folder, "out", "ct.nii.gz")).dataobj)
    print(f"bench_bundle: {geometry.size} voxels at {geometry.spacing} mm; medseg predict {t_medseg:.2f} s, "
          f"ConfigWorkflow {t_monai:.2f} s; voxels equal {np.mean(ref == got):.6f}")
    report("medseg predict with a bundle (spleen config), file -> .seg.nrrd + .nii.gz, cpu x2 threads", t_medseg,
           "monai ConfigWorkflow, file -> .nii.gz", t_monai)


if __name__ == "__main__":
    run(lambda case, p, name, b: print(f"{case}: {p:.2f} s vs {name} {b:.2f} s (x{p / b:.2f})"))
