"""Threshold presets: CT ranges in Hounsfield units, MRI ranges as intensity percentiles.

| preset              | modality | range                                   |
|---------------------|----------|-----------------------------------------|
| ct-bone             | CT       | 400 .. 3071 HU (cortical, dense bone)   |
| ct-soft-tissue      | CT       | -29 .. 150 HU (muscle, organs)          |
| ct-lung             | CT       | -950 .. -400 HU (aerated lung)          |
| ct-fat              | CT       | -190 .. -30 HU                          |
| ct-air              | CT       | -3024 .. -951 HU                        |
| ct-vessels-contrast | CT       | 150 .. 400 HU (contrast-filled vessels) |
| mri-bright          | MRI      | 75th .. 100th percentile of foreground  |
| mri-mid             | MRI      | 25th .. 75th percentile of foreground   |
| mri-dark            | MRI      | 0th .. 25th percentile of foreground    |

MRI "foreground" means voxels brighter than the volume's minimum (the background of skull-stripped
or masked images, and zero padding, are excluded).

Each preset names its structure in Slicer's terminology (codes as in Slicer's
Modules/Loadable/Terminologies/Resources/SegmentationCategoryTypeModifier-SlicerGeneralAnatomy.json,
contrast-filled vessels from the DICOM master list beside it, which the general list lacks); MRI ranges
have no anatomical meaning and get Slicer's default for a new segment, Tissue.  DICOM SEG files and
Slicer's DICOM export carry these codes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import EmptyResultError, ParameterError
from ..terminology import DICOM_CONTEXT, SLICER_CONTEXT


@dataclass(frozen=True)
class Preset:
    name: str
    label: str
    modality: str      # "CT" (values in HU) or "MRI" (values are percentiles)
    low: float
    high: float
    color: tuple
    terminology: dict = None        # category/type codes (see MedSegCore.terminology), Tissue if None

    @property
    def description(self) -> str:
        unit = "HU" if self.modality == "CT" else "th percentile of foreground"
        return f"{self.label}: {self.low:g} .. {self.high:g} {unit}"


_GENERAL, _DICOM = SLICER_CONTEXT, DICOM_CONTEXT
_TISSUE = ["85756007", "SCT", "Tissue"]


def _term(context, category, type_):
    return {"context": context, "category": category, "type": type_}


PRESETS = {p.name: p for p in [
    Preset("ct-bone", "Bone", "CT", 400, 3071, (0.95, 0.92, 0.80),
           _term(_GENERAL, _TISSUE, ["272673000", "SCT", "Bone"])),
    Preset("ct-soft-tissue", "Soft tissue", "CT", -29, 150, (0.80, 0.45, 0.40), _term(_GENERAL, _TISSUE, _TISSUE)),
    Preset("ct-lung", "Lung", "CT", -950, -400, (0.75, 0.85, 0.95),
           _term(_GENERAL, ["123037004", "SCT", "Anatomical Structure"], ["39607008", "SCT", "Lung"])),
    Preset("ct-fat", "Fat", "CT", -190, -30, (0.95, 0.85, 0.45),
           _term(_GENERAL, _TISSUE, ["248300009", "SCT", "Body fat"])),
    Preset("ct-air", "Air", "CT", -3024, -951, (0.30, 0.30, 0.30),
           _term(_GENERAL, ["91720002", "SCT", "Body Substance"], ["74947009", "SCT", "Gas"])),
    Preset("ct-vessels-contrast", "Contrast-enhanced vessels", "CT", 150, 400, (0.85, 0.15, 0.15),
           _term(_DICOM, _TISSUE, ["59820001", "SCT", "Blood vessel"])),
    Preset("mri-bright", "Bright (MRI)", "MRI", 75, 100, (0.95, 0.95, 0.50)),
    Preset("mri-mid", "Mid (MRI)", "MRI", 25, 75, (0.50, 0.80, 0.50)),
    Preset("mri-dark", "Dark (MRI)", "MRI", 0, 25, (0.40, 0.40, 0.80)),
]}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ParameterError(f"unknown preset '{name}'; choose one of: {', '.join(PRESETS)}") from None


def preset_range(name: str, array: np.ndarray, roi: np.ndarray | None = None) -> tuple:
    """(lower, upper) intensities of preset ``name`` on ``array`` (within ``roi`` if given)."""
    preset = get_preset(name)
    if preset.modality == "CT":
        return float(preset.low), float(preset.high)
    values = array[roi] if roi is not None else array
    if values.size == 0:
        raise EmptyResultError("the region of interest is empty; no percentile range can be computed")
    values = values[values > values.min()]
    if values.size == 0:
        raise EmptyResultError(f"preset '{name}': the volume is constant, it has no foreground")
    low, high = np.percentile(values, [preset.low, preset.high])
    return float(low), float(high)
