"""DICOM series are checked from their slice headers before any pixel is trusted.

The headers of every file in the folder are read with pydicom (no pixel data); the chosen series
is then checked from its slice positions and orientations, and only then read by SimpleITK:

* refused, always: unreadable or truncated slice files, slices of different size or pixel
  spacing, more than one slice orientation, two slices at one position, slices without a position;
* refused unless ``regularize`` is asked for, where Slicer would regularise the acquisition
  geometry: missing slices, non-uniform slice spacing, and gantry tilt / sheared stacks (slice
  origins that drift in-plane, so the stack is not perpendicular to the rows and columns).  With
  ``regularize`` each slice is resampled from its own DICOM position onto one regular grid, with a
  warning;
* read on SimpleITK's uniform grid, with a warning, when the positions only jitter within
  tolerance (a real GE MR series deviates 0.07 mm from its 7 mm grid).

Where the numbers come from (3D Slicer, Modules/Scripted/DICOMLib/DICOMUtils.py and
Modules/Scripted/DICOMPlugins/DICOMScalarVolumePlugin.py, v5.10):

* slices are sorted by their distance along the normal (row x column) of the first slice
  (``getSortedImageFiles``);
* 0.01 mm is Slicer's ``spacingEpsilon``: closer slices are one position (duplicates);
* 1e-6 is Slicer's ``orientationEpsilon``: orientations that differ more are different;
* 1e-3 mm is ``AcquisitionModeling.cornerEpsilon``: slices further than this from the uniform grid
  make Slicer report "Irregular volume geometry" and (by default since 5.2) add a regularisation
  transform; MedSeg warns from there on and regularises only when asked;
* the tolerance that separates jitter from a real defect, 0.1 mm + 5 % of the step, is the one of
  dicom2nifti's ``validate_slice_increment`` (``numpy.allclose(rtol=0.05, atol=0.1)``).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .atomic import captured_stderr
from .dicom_headers import choose, scan

log = logging.getLogger("medseg")

SPACING_EPSILON = 0.01       # mm, Slicer spacingEpsilon
ORIENTATION_EPSILON = 1e-6   # Slicer orientationEpsilon
CORNER_EPSILON = 1e-3        # mm, Slicer AcquisitionModeling.cornerEpsilon
JITTER_ATOL, JITTER_RTOL = 0.1, 0.05   # dicom2nifti validate_slice_increment
_MAX_NAMED = 3


def _names(slices, limit: int = _MAX_NAMED) -> str:
    names = [s.name for s in slices[:limit]]
    more = f" and {len(slices) - limit} more" if len(slices) > limit else ""
    return ", ".join(names) + more


@dataclass
class Layout:
    """Where the slices of a checked series lie: sorted slices, the in-plane axes and normal (LPS),
    each slice's distance along the normal and in-plane offset from the first slice (mm)."""

    slices: list
    row: np.ndarray
    column: np.ndarray
    normal: np.ndarray
    z: np.ndarray
    lateral: np.ndarray     # (N, 2): offsets along row and column directions
    step: float             # uniform step SimpleITK uses: span / (N - 1)


def check_consistent(slices, folder: str, unreadable=()) -> None:
    """Refuse what no regularisation can mend: unreadable slices, mixed sizes, spacings,
    orientations, and slices without geometry."""
    if unreadable:
        path, _, reason = unreadable[0]
        more = f" (and {len(unreadable) - 1} more unreadable file(s))" if len(unreadable) > 1 else ""
        raise InputError(f"{folder}: corrupt or unreadable slice {os.path.basename(path)}: {reason}{more}; "
                         "the series would be read without it")
    sizes = {}
    for s in slices:
        sizes.setdefault(s.size, []).append(s)
    if len(sizes) > 1:
        (common, _), *others = sorted(sizes.items(), key=lambda kv: -len(kv[1]))
        odd = [s for _, group in others for s in group]
        raise InputError(f"{folder}: slices have different sizes: {len(sizes[common])} are {common[0]}x{common[1]} "
                         f"(rows x columns), but {_names(odd)} {'is' if len(odd) == 1 else 'are'} "
                         f"{'/'.join(f'{k[0]}x{k[1]}' for k, _ in others)}")
    missing = [s for s in slices if s.position is None or s.orientation is None]
    if missing and len(slices) == 1:
        return                          # one image without geometry: read_series warns
    if missing:
        raise InputError(f"{folder}: {_names(missing)} {'has' if len(missing) == 1 else 'have'} no "
                         "ImagePositionPatient/ImageOrientationPatient; the slices cannot be placed")
    ref = slices[0].orientation
    row, col = ref[:3], ref[3:]
    if abs(np.linalg.norm(row) - 1) > 1e-3 or abs(np.linalg.norm(col) - 1) > 1e-3 or abs(row @ col) > 1e-3:
        raise InputError(f"{folder}: ImageOrientationPatient of {slices[0].name} is not two orthogonal unit "
                         f"vectors ({', '.join(f'{v:g}' for v in ref)})")
    odd = [s for s in slices if not np.allclose(s.orientation, ref, rtol=0, atol=ORIENTATION_EPSILON)]
    if odd:
        kinds = []
        for s in slices:        # Slicer groups orientations the same way (orientationEpsilon)
            if not any(np.allclose(s.orientation, k, rtol=0, atol=ORIENTATION_EPSILON) for k in kinds):
                kinds.append(s.orientation)
        raise InputError(f"{folder}: slices have {len(kinds)} orientations (ImageOrientationPatient; a localizer "
                         f"or several stacks in one series): {_names(odd)} differ{'s' if len(odd) == 1 else ''} "
                         f"from {slices[0].name} "
                         f"({', '.join(f'{v:g}' for v in ref)} vs {', '.join(f'{v:g}' for v in odd[0].orientation)})")
    spacings = [s for s in slices if s.pixel_spacing is not None]
    if spacings:
        ref_spacing = spacings[0].pixel_spacing
        odd = [s for s in spacings if not np.allclose(s.pixel_spacing, ref_spacing, rtol=0, atol=1e-4)]
        if odd:
            raise InputError(f"{folder}: slices have different pixel spacing: {_names(odd)} "
                             f"({'x'.join(f'{v:g}' for v in odd[0].pixel_spacing)} mm) vs "
                             f"{spacings[0].name} ({'x'.join(f'{v:g}' for v in ref_spacing)} mm)")


def layout(slices) -> Layout:
    """Sort slices along the first slice's normal (as Slicer's getSortedImageFiles) and measure
    where each lies."""
    ref = slices[0].orientation
    row, col = ref[:3] / np.linalg.norm(ref[:3]), ref[3:] / np.linalg.norm(ref[3:])
    normal = np.cross(row, col)
    origin = slices[0].position
    dist = [float((s.position - origin) @ normal) for s in slices]
    order = sorted(range(len(slices)), key=lambda i: (dist[i], slices[i].instance or 0, slices[i].path))
    ordered = [slices[i] for i in order]
    first = ordered[0].position
    offsets = np.array([s.position - first for s in ordered])
    z = offsets @ normal
    lateral = np.stack([offsets @ row, offsets @ col], axis=1)
    step = float(z[-1] / (len(z) - 1)) if len(z) > 1 else 1.0
    return Layout(ordered, row, col, normal, z, lateral, step)


@dataclass
class Irregularity:
    """What is wrong with the slice positions: ``kind`` ('jitter', 'missing', 'nonuniform', 'tilt')
    and a one-line description naming the slices."""

    kind: str
    text: str
    deviation: float


def irregularities(lay: Layout, folder: str) -> list:
    """Problems of the slice positions; refuses duplicates at once.  An empty list: a regular grid
    (every slice within Slicer's corner tolerance of SimpleITK's uniform grid)."""
    s, z = lay.slices, lay.z
    if len(s) < 2:
        return []
    gaps = np.diff(z)
    dup = [i for i, g in enumerate(gaps) if g <= SPACING_EPSILON]
    if dup:
        a, b = s[dup[0]], s[dup[0] + 1]
        same = a.sop_uid is not None and a.sop_uid == b.sop_uid
        what = f"the same image (SOP Instance UID {a.sop_uid}) twice" if same else "two slices at one position"
        more = f" ({len(dup)} such pairs)" if len(dup) > 1 else ""
        raise InputError(f"{folder}: duplicate slice positions: {a.name} and {b.name} are {what} "
                         f"({z[dup[0]]:.3f} mm along the normal){more}")
    median = float(np.median(gaps))
    tol_z = JITTER_ATOL + JITTER_RTOL * median
    problems = []
    counts = np.rint(gaps / median).astype(int)
    missing = [i for i, (g, m) in enumerate(zip(gaps, counts)) if m >= 2 and abs(g - m * median) <= tol_z]
    if missing:
        i = missing[0]
        n_missing = int(sum(counts[j] - 1 for j in missing))
        problems.append(Irregularity("missing", (
            f"{n_missing} missing slice(s): gap of {gaps[i]:.4g} mm between {s[i].name} and {s[i + 1].name} where "
            f"the series steps {median:.4g} mm" + (f" ({len(missing)} gaps)" if len(missing) > 1 else "")),
            float(gaps[i] - median)))
    odd = [i for i, g in enumerate(gaps) if abs(g - median) > tol_z and i not in missing]
    grid_dev = np.abs(z - np.arange(len(z)) * lay.step)
    if odd:
        i = odd[0]
        problems.append(Irregularity("nonuniform", (
            f"slices are not equally spaced: gap of {gaps[i]:.4g} mm between {s[i].name} and {s[i + 1].name}, "
            f"{median:.4g} mm elsewhere" + (f" ({len(odd)} irregular gaps)" if len(odd) > 1 else "")),
            float(abs(gaps[i] - median))))
    elif not missing and grid_dev.max() > tol_z:
        i = int(np.argmax(grid_dev))
        problems.append(Irregularity("nonuniform", (
            f"slices are not equally spaced: {s[i].name} lies {grid_dev[i]:.3g} mm from a uniform "
            f"{lay.step:.4g} mm grid (gaps {gaps.min():.4g} to {gaps.max():.4g} mm)"), float(grid_dev[i])))
    drift = np.linalg.norm(lay.lateral, axis=1)
    pixel = min(s[0].pixel_spacing) if s[0].pixel_spacing else 1.0
    tol_l = JITTER_ATOL + JITTER_RTOL * pixel
    if drift.max() > tol_l:
        i = int(np.argmax(drift))
        angle = np.degrees(np.arctan2(drift[-1], z[-1])) if z[-1] > 0 else 90.0
        problems.append(Irregularity("tilt", (
            f"gantry tilt or sheared stack: the slices drift in-plane, the stack is tilted {angle:.3g} deg from "
            f"the slice normal ({s[i].name} is {drift[i]:.3g} mm off the perpendicular through {s[0].name})"),
            float(drift[i])))
    if not problems:
        worst = max(float(grid_dev.max()), float(drift.max()))
        if worst > CORNER_EPSILON:
            i = int(np.argmax(np.maximum(grid_dev, drift)))
            problems.append(Irregularity("jitter", (
                f"slice positions deviate up to {worst:.3g} mm from a uniform {lay.step:.6g} mm grid "
                f"(at {s[i].name}; tolerance {max(tol_z, tol_l):.3g} mm)"), worst))
    return problems


def _hint(kind: str) -> str:
    return {"missing": "interpolates across the gap", "nonuniform": "resamples onto equally spaced slices",
            "tilt": "resamples onto a grid perpendicular to the slices"}[kind]


def read_series(folder: str, series_uid: str | None = None, regularize: bool = False):
    """SimpleITK image of one checked DICOM series below ``folder``; see the module docstring for
    what is refused, what is regularised (only with ``regularize``) and what is read with a warning."""
    found = scan(folder)
    uid, slices = choose(found, folder, series_uid)
    unreadable = [u for u in found.unreadable
                  if u[1] == uid or (u[1] is None and os.path.dirname(u[0]) in {os.path.dirname(s.path) for s in slices})]
    if any(s.frames > 1 for s in slices) and len(slices) == 1:
        check_consistent(slices, folder, unreadable)     # one multi-frame file: SimpleITK places its frames
        return _read_files([slices[0].path])
    if any(s.frames > 1 for s in slices):
        raise InputError(f"{folder}: series {uid} mixes {len(slices)} multi-frame files; read one file at a time")
    check_consistent(slices, folder, unreadable)
    if len(slices) == 1 and (slices[0].position is None or slices[0].orientation is None):
        log.warning("%s: %s has no ImagePositionPatient/ImageOrientationPatient, so its place in the patient is "
                    "unknown; read at the origin with identity axes, as SimpleITK does", folder, slices[0].name)
        return _read_files([slices[0].path])
    lay = layout(slices)
    problems = irregularities(lay, folder)
    defects = [p for p in problems if p.kind != "jitter"]
    if defects and not regularize:
        p = defects[0]
        raise InputError(f"{folder}: {p.text}; --regularize {_hint(p.kind)}")
    files = [s.path for s in lay.slices]
    image = _read_files(files)
    _check_axes(image, lay, folder)
    if not problems:
        return image
    if not regularize:
        log.warning("%s: %s; read on the uniform grid as SimpleITK does (--regularize resamples each slice "
                    "from its own position)", folder, problems[0].text)
        return image
    from .dicom_regularize import regularize_slices

    image = regularize_slices(lay, image)
    log.warning("%s: regularized: %s; resampled %d slices onto a regular %d-slice grid (%.4g mm step, "
                "linear interpolation)", folder, "; ".join(p.text for p in problems), len(files),
                image.GetSize()[2], image.GetSpacing()[2])
    return image


def _check_axes(image, lay, folder: str) -> None:
    """SimpleITK's grid must start at the first slice and run along its rows, columns and normal
    (compared in ITK's own LPS frame, as the headers are)."""
    direction = np.array(image.GetDirection()).reshape(3, 3)
    expected = np.stack([lay.row, lay.column, lay.normal], axis=1)
    if image.GetSize()[2] != len(lay.slices) or not np.allclose(direction, expected, atol=1e-4) \
            or not np.allclose(image.GetOrigin(), lay.slices[0].position, atol=1e-3):
        raise InputError(f"{folder}: SimpleITK placed the slices differently from their DICOM headers "
                         f"(origin {np.round(image.GetOrigin(), 3)} vs {lay.slices[0].position})")


def _read_files(files):
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(list(files))
    reader.SetSpacingWarningRelThreshold(1e9)     # spacing was checked above; ITK's text is not one line
    try:
        with captured_stderr() as noise:           # GDCM prints to the C stderr; the error says it in one line
            image = reader.Execute()
        text = " ".join(ln.strip() for ln in (noise[0] if noise else "").splitlines() if ln.strip())
        if text:
            log.debug("%s: GDCM: %s", os.path.dirname(files[0]), text[:300])
        return image
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).strip().splitlines() if ln.strip()]
        reason = next((ln for ln in lines if "rror" in ln or "annot" in ln), lines[-1] if lines else "")
        raise InputError(f"{os.path.dirname(files[0])}: cannot read the DICOM pixel data: {reason[:200]}") from None
