#!/usr/bin/env python
"""Run MONAI bundles with MONAI's ConfigWorkflow and with MedSeg on the same input and compare.

    python scripts/compare_with_monai.py BUNDLE_FOLDER... [--input FILE[,FILE...]] [--random-weights]

Each BUNDLE_FOLDER is a bundle as the Model Zoo ships it (configs/, scripts/, models/).  With
--random-weights (or when it has no models/model.pt) a copy is made with seeded random weights
whose last layer is recentred so that every class appears (Testing/bundle_factory.py).  Without
--input a synthetic oblique, anisotropic LPS volume is used (four of them for 4-channel bundles).
Prints, per bundle, the largest affine difference, the share of equal voxels and both run times.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "Testing")]


def _random_copy(folder: Path, work: Path) -> Path:
    import torch
    from monai.bundle import ConfigParser

    import bundle_factory as bf

    copy = work / folder.name
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("models", "eval", "docs"))
    cfg = next(p for p in (copy / "configs" / n for n in ("inference.json", "inference.yaml")) if p.is_file())
    meta = json.loads((copy / "configs" / "metadata.json").read_text())
    torch.manual_seed(0)
    net = bf._network(ConfigParser.load_config_file(str(cfg)), str(copy))
    n_in = meta["network_data_format"]["inputs"]["image"]["num_channels"]
    bf._recentre(net, n_in, 0, 96 if "unest" in folder.name.lower() else 64)
    (copy / "models").mkdir()
    torch.save(net.state_dict(), copy / "models" / "model.pt")
    return copy


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("bundles", nargs="+", type=Path)
    p.add_argument("--input", help="input file(s), comma-separated in channel_def order")
    p.add_argument("--random-weights", action="store_true")
    args = p.parse_args(argv)

    import nibabel as nib
    import numpy as np

    import bundle_factory as bf
    from MedSegCore.dnn.bundle import load_bundle
    from MedSegCore.dnn.bundle.config import channel_names, read_metadata
    from MedSegCore.image import io

    work = Path(tempfile.mkdtemp(prefix="medseg-compare-"))
    os.environ.setdefault("MEDSEG_HOME", str(work / "home"))
    for folder in args.bundles:
        bundle = _random_copy(folder, work) if args.random_weights or not (folder / "models" / "model.pt").is_file() \
            else folder
        n = max(len(channel_names(read_metadata(bundle))), 1)
        if args.input:
            paths = args.input.split(",")
        else:
            g = bf.lps_oblique_geometry((40, 36, 16))
            paths = [str(work / f"{folder.name}_{c}.nii.gz") for c in range(n)]
            for c, path in enumerate(paths):
                io.write_volume(bf.test_volume(g, c), g, path)
        run_id = "run"
        parser_text = next(p for p in (bundle / "configs" / m for m in ("inference.json", "inference.yaml"))
                           if p.is_file()).read_text()
        if '"run"' not in parser_text and "\nrun:" not in parser_text:
            run_id = "evaluating"
        t0 = time.perf_counter()
        ref = bf.run_monai(str(bundle), paths if n > 1 else paths[0], str(work / f"{folder.name}_monai"),
                           "renal" if run_id == "evaluating" else folder.name)
        t1 = time.perf_counter()
        result = load_bundle(bundle, "cpu", trust=True).run([io.read_volume(p) for p in paths])
        t2 = time.perf_counter()
        img = nib.load(ref)
        ref_data = np.asarray(img.dataobj).reshape(result.labelmap.shape[::-1])
        got = result.labelmap.transpose(2, 1, 0)
        keep = np.abs(ref_data - np.floor(ref_data) - 0.5) > 1e-4           # MONAI's own ties (linear Invertd)
        equal = float(np.mean(np.rint(ref_data)[keep] == got[keep]))
        print(f"{folder.name}: affine difference {np.abs(result.geometry.ijk_to_ras() - img.affine).max():.1e} mm, "
              f"equal voxels {equal:.6f} (ties left out: {1 - keep.mean():.4f}), labels {sorted(int(v) for v in np.unique(got))[:10]}, "
              f"ConfigWorkflow {t1 - t0:.1f} s, MedSeg {t2 - t1:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
