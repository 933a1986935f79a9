"""``medseg train`` under ``torchrun --nproc_per_node 2`` on the CPU (Gloo): the ranks see disjoint
cases in every epoch, only rank 0 writes, and the model folder loads."""
import json
import os
import subprocess
import sys

import numpy as np

from MedSegCore.image import io
from MedSegCore.image.geometry import Geometry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _case(seed):
    rng = np.random.default_rng(seed)
    g = Geometry((24, 24, 24), (1.0, 1.0, 1.0), (0, 0, 0), np.eye(3))
    k, j, i = np.indices(g.shape)
    c = rng.uniform(8, 16, 3)
    lab = ((k - c[0]) ** 2 + (j - c[1]) ** 2 + (i - c[2]) ** 2 <= 25).astype(np.uint8)
    return (rng.normal(0, 0.3, g.shape) + lab).astype(np.float32), g, lab


def test_torchrun_two_ranks_see_disjoint_cases(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for s in range(5):
        img, g, lab = _case(s)
        io.write_volume(img, g, str(data / f"case{s}_image.nii.gz"))
        io.write_volume(lab, g, str(data / f"case{s}_label.nii.gz"))
    seen = tmp_path / "seen"
    cfg = {"channels": [4, 8], "num_res_units": 1, "patch": [16, 16, 16], "batch_size": 2, "samples_per_case": 1,
           "epochs": 2, "val_fraction": 0.2, "device": "cpu", "lr": 0.01, "debug_seen_file": str(seen)}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    out = tmp_path / "model"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "MedSegCore",
           "train", "--data", str(data), "-o", str(out), "--config", str(tmp_path / "cfg.json"), "-q"]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=240)
    assert run.returncode == 0, run.stderr[-3000:]

    per_rank = {}
    for r in (0, 1):
        lines = (tmp_path / f"seen.rank{r}").read_text().split()
        pairs = list(zip(map(int, lines[0::2]), map(int, lines[1::2])))
        per_rank[r] = {e: {c for ep, c in pairs if ep == e} for e in (0, 1)}
    card = json.loads((out / "card.json").read_text())
    val = card["training"]["cases"]["validation"]
    train_idx = {int(n[4:]) for n in card["training"]["cases"]["train"]}
    assert len(val) == 1 and len(train_idx) == 4 and card["training"]["world_size"] == 2
    for e in (0, 1):
        a, b = per_rank[0][e], per_rank[1][e]
        assert a and b and not (a & b), f"epoch {e}: rank 0 saw {a}, rank 1 saw {b}"
        assert a | b == train_idx              # every training case once per epoch, split between the ranks
    assert not list(out.glob("*.rank*")) and (out / "metrics.csv").read_text().count("\n") == 3

    from MedSegCore.dnn import load_model

    model = load_model(out, device="cpu")
    assert model.card.trained and model.card.out_channels == 2 and model.kind == "state_dict"
