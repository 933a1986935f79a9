"""``medseg predict`` end to end (read the file, preprocess, infer, post-process, write .seg.nrrd)
on the MNI152 T1 (197 x 233 x 189, ships with nilearn) with the default model, and predict() alone,
against a bare MONAI sliding_window_inference of the same network on the same tensor."""
from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

ROI, SW_BATCH, OVERLAP, BLEND = (64, 64, 64), 4, 0.25, "gaussian"
REPEAT = 3


def interleaved_best(fns, repeat: int = REPEAT) -> list:
    """Best wall time of each function, run alternately after one warm-up each (so that load from
    other processes on the machine hits both alike)."""
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for n, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[n] = min(best[n], time.perf_counter() - t0)
    return best


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0      # Linux: KiB


def mni152():
    """(KJI float32 array, Geometry) of the nilearn MNI152 T1 template at 1 mm."""
    from nilearn.datasets import load_mni152_template

    from MedSegCore.image.geometry import Geometry

    img = load_mni152_template(resolution=1)
    ijk = np.asarray(img.dataobj, dtype=np.float32)
    return np.ascontiguousarray(ijk.transpose(2, 1, 0)), Geometry.from_ijk_to_ras(img.affine, ijk.shape)


def run(report) -> None:
    import torch
    from monai.inferers import sliding_window_inference

    from MedSegCore.dnn import PredictOptions, predict
    from MedSegCore.dnn.inference import estimate_memory
    from MedSegCore.dnn.loading import load_model
    from MedSegCore.dnn.preprocess import prepare

    torch.set_num_threads(2)
    array, geom = mni152()
    model = load_model("default", device="cpu")
    options = PredictOptions(roi=ROI, overlap=OVERLAP, sw_batch=SW_BATCH, blend=BLEND, device="cpu")
    rss_before = peak_rss_mib()
    result = {}

    def project():
        result["p"] = predict([(array, geom)], model, options)

    import tempfile

    from MedSegCore.image import io
    from MedSegCore.cli import main
    folder = tempfile.mkdtemp(prefix="medseg-bench-")
    io.write_volume(array, geom, f"{folder}/mni152.nii.gz")

    def cli():
        if main(["predict", f"{folder}/mni152.nii.gz", "-o", f"{folder}/out", "--device", "cpu", "--roi",
                 *map(str, ROI), "--sw-batch", str(SW_BATCH), "--overwrite"]) != 0:
            raise RuntimeError("medseg predict failed")

    project()
    rss_project = peak_rss_mib()
    x = torch.from_numpy(np.ascontiguousarray(prepare([(array, geom)], model.card).data.transpose(0, 3, 2, 1)))[None]

    def bare():
        with torch.inference_mode():
            sliding_window_inference(x, ROI, SW_BATCH, model.network, overlap=OVERLAP, mode=BLEND)

    t_cli, t_project, t_bare = interleaved_best([cli, project, bare], repeat=2)
    est = estimate_memory(model, x.shape[2:], ROI, SW_BATCH)
    print(f"bench_predict: MNI152 {array.shape} KJI; predict {t_project:.2f} s (timings "
          + ", ".join(f"{k} {v:.2f}" for k, v in result["p"].timings.items())
          + f"), bare sliding_window_inference {t_bare:.2f} s; peak RSS {rss_before:.0f} MiB before, "
          f"{rss_project:.0f} MiB after predict, {peak_rss_mib():.0f} MiB at end; estimate {est.text}")
    report("medseg predict MNI152 file -> .seg.nrrd, cpu x2 threads", t_cli, "bare monai sliding_window_inference", t_bare)
    report("predict MNI152 1mm, default model, roi 64, sw_batch 4, cpu x2 threads", t_project,
           "bare monai sliding_window_inference", t_bare)


if __name__ == "__main__":
    run(lambda case, p, name, b: print(f"{case}: {p:.2f} s vs {name} {b:.2f} s (x{p / b:.2f})"))
