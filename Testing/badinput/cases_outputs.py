"""Outputs: never over an input (same path, hard or soft link), never into a read-only or missing
folder, never half-written on a full disk (a 1 MiB tmpfs the test mounts, as root).

On a full disk the old file must stay as it was and no temporary file may remain: the harness
compares every file of the case folder before and after.
"""
from __future__ import annotations

import os
import subprocess

from . import build as b
from .harness import Case

BIG = (64, 128, 128)              # 1 M voxels: 1 MiB as uint8 labels, more than the tmpfs holds


def mount_tmpfs(size="1m", options=""):
    """Setup: mount a small tmpfs on <case>/disk; returns the unmount."""
    def setup(d):
        disk = d / "disk"
        disk.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}{options}", "tmpfs", str(disk)], check=True)
        return lambda: subprocess.run(["umount", "-l", str(disk)], check=False)
    return setup


def read_only():
    """Setup: <case>/ro is a read-only tmpfs as root (chmod 555 does not stop root), else chmod 555."""
    def setup(d):
        ro = d / "ro"
        ro.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", str(ro)], check=True)
            return lambda: subprocess.run(["umount", "-l", str(ro)], check=False)
        os.chmod(ro, 0o555)
        return lambda: os.chmod(ro, 0o755)
    return setup


def fill(disk, leave=0):
    """Fill a tmpfs, leaving about ``leave`` bytes."""
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(os.path.join(disk, "filler.bin"), "wb") as f:
        f.write(b"\0" * max(0, free - leave))


def ct(d, name="ct.nrrd", shape=b.SHAPE):
    (b.write_nifti if ".nii" in name else b.write_nrrd)(str(d / name), b.image(shape))
    return d / name


def thr(out, *extra, image="ct.nrrd", shape=b.SHAPE, prep=None):
    def build(d):
        src = ct(d, image, shape) if not (d / image).exists() else d / image
        if prep:
            prep(d)
        return ["threshold", src, "-o", out(d) if callable(out) else d / out, "--lower", "300", *extra]
    return build


def link(kind, target="ct.nrrd", name="out.nrrd"):
    def prep(d):
        (os.symlink if kind == "soft" else os.link)(d / target, d / name)
    return prep


def old_file(path):
    def prep(d):
        (d / path).parent.mkdir(exist_ok=True)
        b.write_text(d / path, b"OLD CONTENT")
    return prep


def _disk_full(out, overwrite=False, leave=0, shape=BIG):
    def build(d):
        src = ct(d, shape=shape)
        if overwrite:
            b.write_text(d / "disk" / out, b"GOOD OLD FILE")
        fill(d / "disk", leave)
        return ["threshold", src, "-o", d / "disk" / out, "--lower", "50", *(["--overwrite"] if overwrite else [])]
    return build


def _evaluate(*extra_builders):
    def build(d):
        b.write_nifti(str(d / "pred.nii.gz"), b.labels())
        b.write_nifti(str(d / "ref.nii.gz"), b.labels())
        extra = []
        for fn in extra_builders:
            extra += fn(d)
        return ["evaluate", d / "pred.nii.gz", d / "ref.nii.gz", "--no-distances", *extra]
    return build


ROOT = ("root",)
CASES = [
    Case("output-is-input", thr(lambda d: d / "ct.nrrd"), r"would overwrite the input", names="ct.nrrd"),
    Case("output-is-input-overwrite", thr(lambda d: d / "ct.nrrd", "--overwrite"), r"would overwrite the input",
         names="ct.nrrd"),
    Case("output-is-input-nifti", thr(lambda d: d / "ct.nii.gz", "--overwrite", image="ct.nii.gz",
                                      prep=lambda d: None),
         r"would overwrite the input", names="ct.nii.gz"),
    Case("output-hardlink-to-input", thr("out.nrrd", "--overwrite", prep=link("hard")), r"same file as the input",
         names="out.nrrd"),
    Case("output-symlink-to-input", thr("out.nrrd", "--overwrite", prep=link("soft")), r"same file as the input",
         names="out.nrrd"),
    Case("output-relative-path-to-input", thr(lambda d: d / "sub" / ".." / "ct.nrrd", "--overwrite",
                                              prep=lambda d: (d / "sub").mkdir()),
         r"would overwrite the input", names=None),
    Case("output-is-mask", thr(lambda d: d / "m.nii.gz", "--overwrite", "--mask", "m.nii.gz",
                               prep=lambda d: b.write_nifti(str(d / "m.nii.gz"), b.labels())),
         r"would overwrite the mask", names="m.nii.gz"),
    Case("output-overlay-is-input", thr("x.seg.nrrd", "--overlay", "pic.png", "--overwrite",
                                        prep=link("soft", "ct.nrrd", "pic.png")),
         r"same file as the input", names="pic.png"),
    Case("output-exists", thr("x.seg.nrrd", prep=old_file("x.seg.nrrd")), r"exists; pass --overwrite",
         names="x.seg.nrrd"),
    Case("output-bad-extension", thr("x.txt"), r"unsupported extension", names="x.txt"),
    Case("output-folder-missing", thr(lambda d: d / "nowhere" / "x.seg.nrrd"), r"does not exist",
         names="x.seg.nrrd"),
    Case("output-folder-is-a-file", thr(lambda d: d / "afile" / "x.seg.nrrd", prep=lambda d: b.write_text(d / "afile", "x")),
         r"is a file, not a folder", names="afile"),
    Case("output-is-a-folder", thr(lambda d: d / "x.seg.nrrd", prep=lambda d: (d / "x.seg.nrrd").mkdir()),
         r"is a folder", names="x.seg.nrrd"),
    Case("output-read-only-folder", thr(lambda d: d / "ro" / "x.seg.nrrd"), r"not writable|read-only",
         names="x.seg.nrrd", setup=read_only(), needs=("readonly",)),
    Case("output-overlay-read-only-folder", thr("x.seg.nrrd", "--overlay", "ro/x.png"), r"not writable|read-only",
         names="x.png", setup=read_only(), needs=("readonly",)),
    Case("output-disk-full-nii", _disk_full("x.nii"), r"^medseg threshold: error: disk full while writing .*x\.nii",
         names="x.nii", needs=ROOT, setup=mount_tmpfs(), one_line=False),
    Case("output-disk-full-nii-overwrite-keeps-old", _disk_full("x.nii", overwrite=True),
         r"disk full while writing .*x\.nii", names="x.nii", needs=ROOT, setup=mount_tmpfs(), one_line=False),
    Case("output-disk-full-niigz", _disk_full("x.nii.gz", leave=4096), r"disk full while writing .*x\.nii\.gz",
         names="x.nii.gz", needs=ROOT, setup=mount_tmpfs(), one_line=False),
    Case("output-disk-full-nrrd", _disk_full("x.nrrd", leave=4096), r"disk full while writing .*x\.nrrd",
         names="x.nrrd", needs=ROOT, setup=mount_tmpfs(), one_line=False),
    Case("output-disk-full-seg-nrrd", _disk_full("x.seg.nrrd", leave=2048), r"disk full while writing .*x\.seg\.nrrd",
         names="x.seg.nrrd", needs=ROOT, setup=mount_tmpfs(), one_line=False),
    Case("output-disk-full-seg-nrrd-overwrite", _disk_full("x.seg.nrrd", overwrite=True),
         r"disk full while writing .*x\.seg\.nrrd", names="x.seg.nrrd", needs=ROOT, setup=mount_tmpfs(), one_line=False),
    Case("output-disk-full-no-room-at-all", _disk_full("x.nii.gz"), r"disk full while writing .*x\.nii\.gz",
         names="x.nii.gz", needs=ROOT, setup=mount_tmpfs(), one_line=False),
    Case("output-disk-full-overlay-png",
         lambda d: (ct(d, shape=BIG), fill(d / "disk", 0),
                    ["threshold", d / "ct.nrrd", "-o", d / "x.seg.nrrd", "--lower", "0", "--overlay",
                     d / "disk" / "x.png"])[-1],
         r"disk full while writing .*x\.png", names="x.png", needs=ROOT, setup=mount_tmpfs(), one_line=False),
    Case("output-evaluate-json-is-prediction",
         _evaluate(lambda d: (os.symlink(d / "pred.nii.gz", d / "m.json"), ["--json", d / "m.json", "--overwrite"])[1]),
         r"same file as the prediction", names="m.json"),
    Case("output-evaluate-csv-hardlink-reference",
         _evaluate(lambda d: (os.link(d / "ref.nii.gz", d / "m.csv"), ["--csv", d / "m.csv", "--overwrite"])[1]),
         r"same file as the reference", names="m.csv"),
    Case("output-evaluate-overlay-is-image",
         _evaluate(lambda d: (b.write_nifti(str(d / "t1.nii.gz"), b.image()), os.symlink(d / "t1.nii.gz", d / "o.png"),
                              ["--image", d / "t1.nii.gz", "--overlay", d / "o.png", "--overwrite"])[-1]),
         r"same file as the image", names="o.png"),
    Case("output-evaluate-json-read-only", _evaluate(lambda d: ["--json", d / "ro" / "m.json"]),
         r"not writable|read-only", names="m.json", setup=read_only(), needs=("readonly",)),
    Case("output-evaluate-report-is-a-file", _evaluate(lambda d: (b.write_text(d / "rep", "x"),
                                                                  ["--report", d / "rep"])[1]),
         r"is a file, not a folder", names="rep"),
    Case("output-evaluate-report-read-only", _evaluate(lambda d: ["--report", d / "ro" / "rep"]),
         r"not writable|read-only", names="rep", setup=read_only(), needs=("readonly",)),
    Case("output-evaluate-json-disk-full",
         _evaluate(lambda d: (fill(d / "disk", 0), ["--json", d / "disk" / "m.json"])[1]),
         r"disk full while writing .*m\.json", names="m.json", needs=ROOT, setup=mount_tmpfs("64k")),
    Case("output-evaluate-csv-disk-full",
         _evaluate(lambda d: (fill(d / "disk", 0), ["--csv", d / "disk" / "m.csv"])[1]),
         r"disk full while writing .*m\.csv", names="m.csv", needs=ROOT, setup=mount_tmpfs("64k")),
    Case("output-evaluate-json-exists", _evaluate(lambda d: (b.write_text(d / "m.json", "{}"), ["--json", d / "m.json"])[1]),
         r"exists; pass --overwrite", names="m.json"),
]


def _predict(out):
    def build(d):
        from .cases_models import predict
        argv = predict()(d)
        return argv[:3] + [out(d)] + argv[4:]
    return build


CASES += [
    Case("output-predict-folder-read-only", _predict(lambda d: d / "ro" / "out"), r"not writable|read-only",
         names="ro", setup=read_only(), needs=("readonly", "torch")),
    Case("output-predict-folder-under-a-file", _predict(lambda d: (b.write_text(d / "afile", "x"), d / "afile" / "out")[1]),
         r"is a file, not a folder", names="afile", needs=("torch",)),
    Case("output-predict-folder-is-a-file", _predict(lambda d: (b.write_text(d / "out.txt", "x"), d / "out.txt")[1]),
         r"exists and is not a folder", names="out.txt", needs=("torch",)),
]
