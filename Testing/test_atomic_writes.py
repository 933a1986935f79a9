"""Writes that cannot leave a broken file under its final name: verified before the rename, all or
nothing in a transaction, whole-line appends, temporary files removed on SIGTERM/SIGINT, and a full
disk (a 1 MiB tmpfs mounted here when running as root) reported in one line with the old file kept."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from MedSegCore.errors import OutputError
from MedSegCore.image import atomic, io
from MedSegCore.image.geometry import Geometry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from badinput.harness import can_mount  # noqa: E402

root_only = pytest.mark.skipif(not can_mount(), reason="mounts a tmpfs (needs root and permission to mount)")


def grid(shape):
    return Geometry(tuple(reversed(shape)), (1, 1, 1), (0, 0, 0), np.eye(3))


@pytest.fixture
def small_disk(tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], check=True)
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def leftovers(folder):
    return [f for f in os.listdir(folder) if f.startswith(".medseg-")]


@root_only
@pytest.mark.parametrize("ext", [".nii", ".nii.gz", ".nrrd"])
def test_full_disk_keeps_the_old_file(small_disk, ext):
    target = small_disk / f"labels{ext}"
    target.write_bytes(b"the good old file")
    noise = np.random.default_rng(0).integers(0, 256, (64, 128, 128)).astype(np.uint8)   # 1 MiB, incompressible
    with pytest.raises(OutputError, match=rf"^disk full while writing {target}"):
        io.write_volume(noise, grid(noise.shape), str(target))
    assert target.read_bytes() == b"the good old file" and not leftovers(small_disk)


@root_only
def test_full_disk_append_leaves_whole_lines(small_disk):
    csv = small_disk / "timings.csv"
    csv.write_text("case,status\na,ok")                  # a previous run stopped mid-line
    atomic.append_row(str(csv), "b,ok", header="case,status")
    assert csv.read_text() == "case,status\na,ok\nb,ok\n"
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    (small_disk / "filler").write_bytes(b"\0" * (free - 10))
    before = csv.read_bytes()
    with pytest.raises(OutputError, match=rf"^disk full while writing {csv}$"):
        atomic.append_row(str(csv), "c," + "x" * 100_000)
    assert csv.read_bytes() == before


def test_a_short_write_is_caught_before_the_rename(tmp_path):
    """What ITK's NIfTI writer leaves on a full disk (a header and part of the data, no error)."""
    target = tmp_path / "x.nii"
    target.write_bytes(b"old")
    with pytest.raises(OutputError, match=r"x\.nii failed: the written file is incomplete .*truncated"):
        with atomic.atomic_path(str(target)) as tmp:
            io.write_volume(np.zeros((4, 4, 4), np.int16), grid((4, 4, 4)), str(tmp_path / "full.nii"))
            data = (tmp_path / "full.nii").read_bytes()
            open(tmp, "wb").write(data[:-10])
    assert target.read_bytes() == b"old" and not leftovers(tmp_path)


def test_transaction_is_all_or_nothing(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text('"old a"')
    with pytest.raises(OutputError):
        with atomic.transaction():
            with atomic.atomic_path(str(a)) as tmp:
                open(tmp, "w").write('"new a"')
            with atomic.atomic_path(str(b)) as tmp:
                open(tmp, "w").write('{"broken": ')         # not JSON: verification fails
    assert a.read_text() == '"old a"' and not b.exists() and not leftovers(tmp_path)
    with atomic.transaction():
        for p in (a, b):
            with atomic.atomic_path(str(p)) as tmp:
                open(tmp, "w").write('"new"')
    assert a.read_text() == b.read_text() == '"new"' and not leftovers(tmp_path)


def test_outputs_are_never_inputs(tmp_path):
    src = tmp_path / "ct.nrrd"
    src.write_bytes(b"x")
    os.link(src, tmp_path / "hard.nrrd")
    os.symlink(src, tmp_path / "soft.nrrd")
    for name, how in (("ct.nrrd", "would overwrite"), ("hard.nrrd", "hard link"), ("soft.nrrd", "same file")):
        with pytest.raises(OutputError, match=how):
            atomic.check_not_input(str(tmp_path / name), {"input": str(src)})
    atomic.check_not_input(str(tmp_path / "other.nrrd"), {"input": str(src), "mask": None})


@pytest.mark.parametrize("sig,rc,word", [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")])
def test_signal_during_a_write_removes_the_temporary_file(tmp_path, sig, rc, word):
    """The real console entry point writing a large .nii.gz; the signal arrives while the temporary
    file exists, and afterwards neither it nor a final file is there."""
    from MedSegCore.image.io import write_volume
    shape = (200, 256, 256)
    write_volume(np.random.default_rng(1).integers(0, 1000, shape).astype(np.int16), grid(shape),
                 str(tmp_path / "ct.nrrd"), compress=False)
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "MedSegCore", "threshold", str(tmp_path / "ct.nrrd"), "-o",
                             str(out / "labels.nii.gz"), "--lower", "500"], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not leftovers(out) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.002)
    assert leftovers(out), "the write finished before the signal could be sent; use a larger volume"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == rc, err
    assert err.strip().splitlines()[-1] == f"medseg threshold: {word}" and "Traceback" not in err
    assert os.listdir(out) == []
