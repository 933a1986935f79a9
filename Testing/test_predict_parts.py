"""``medseg predict --num-parts N --part-id K``: nnU-Net's split (cases sorted by name, case i in part
i % N) is disjoint and covers every case whatever the input order; each part resumes on its own and
writes its own timings file; --backend on the command line gives PyTorch's labels."""
import csv
import os

import numpy as np
import pytest

from MedSegCore.cli import main
from MedSegCore.dnn import batch
from MedSegCore.image import io
from test_predict_cli import LPS, check_seg, phantom, threshold_model


@pytest.mark.parametrize("count,parts", [(7, 3), (5, 5), (3, 4), (10, 1)])
def test_parts_disjoint_and_covering(count, parts):
    cases = [batch.Case(f"case{i:02d}", [(f"/data/case{i:02d}.nii.gz", None)]) for i in range(count)]
    shuffled = [cases[i] for i in np.random.default_rng(count).permutation(count)]
    chosen = [[c.name for c in batch.select_part(shuffled, parts, k)] for k in range(parts)]
    names = [n for part in chosen for n in part]
    assert sorted(names) == [c.name for c in cases] and len(set(names)) == count      # covering, disjoint
    assert chosen == [[c.name for c in batch.select_part(cases, parts, k)] for k in range(parts)]  # deterministic
    assert chosen[0][0] == "case00" and (parts == 1 or count < 2 or chosen[1][0] == "case01")   # i % N


def test_cli_parts_resume_and_timings(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSEG_HOME", str(tmp_path / "home"))
    model = threshold_model(tmp_path / "model")
    os.makedirs(tmp_path / "in")
    names = ("c", "a", "e", "b", "d")
    for i, name in enumerate(names):
        io.write_volume(phantom(LPS, shift=i - 2.0), LPS, str(tmp_path / "in" / f"{name}.nrrd"))
    out = tmp_path / "out"
    args = [str(tmp_path / "in"), "-o", str(out), "--model", model, "--num-parts", "2"]
    assert main(["predict", *args, "--part-id", "1", "--backend", "torch"]) == 0
    assert sorted(os.listdir(out)) == ["b.seg.nrrd", "d.seg.nrrd", "timings_part1of2.csv"]
    assert main(["predict", *args, "--part-id", "0"]) == 0          # auto backend
    assert sorted(f for f in os.listdir(out) if f.endswith(".seg.nrrd")) == [f"{n}.seg.nrrd" for n in "abcde"]
    before = {f: os.path.getmtime(out / f) for f in os.listdir(out)}
    assert main(["predict", *args, "--part-id", "0"]) == 0          # resume: all of part 0 exists
    assert {f: os.path.getmtime(out / f) for f in os.listdir(out)} == before
    rows = {k: list(csv.DictReader(open(out / f"timings_part{k}of2.csv", encoding="utf-8"))) for k in (0, 1)}
    assert [r["case"] for r in rows[0]] == ["a", "c", "e"] and [r["case"] for r in rows[1]] == ["b", "d"]
    for i, name in enumerate(names):                                # part 1 on torch, part 0 on auto
        check_seg(out / f"{name}.seg.nrrd", LPS, phantom(LPS, shift=i - 2.0))


def test_cli_bad_parts_and_backend(tmp_path, capsys):
    io.write_volume(phantom(LPS), LPS, str(tmp_path / "a.nrrd"))
    for extra, text in ((["--num-parts", "0"], "--num-parts must be >= 1"),
                        (["--num-parts", "3", "--part-id", "3"], "--part-id must be 0 .. 2 for --num-parts 3")):
        assert main(["predict", str(tmp_path / "a.nrrd"), "-o", str(tmp_path / "o"), *extra]) == 2
        assert text in capsys.readouterr().err
