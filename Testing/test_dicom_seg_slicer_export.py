"""Slicer's own DICOM SEG export of MedSeg's segmentations, against MedSeg's DICOM SEG.

Slicer (5.13+ core, QuantitativeReporting before) exports a segmentation through dcmqi's
``itkimage2segimage``: ``DICOMSegmentationExporter`` in Slicer's
Modules/Scripted/DICOMPlugins/DICOMSegmentationPlugin.py writes one labelmap per segment on the
segmentation's reference geometry and a metadata JSON made from each segment's tags (terminology
deserialized by Slicer's logic, ``DICOM.SegmentAlgorithmType``/``Name``, colour).  The test builds that
JSON the same way from the .seg.nrrd ``medseg threshold`` writes, runs the real dcmqi binary (the pip
package Slicer uses), and checks its SEG against the one MedSeg wrote in the same command: same
segments, codes, algorithm and, source instance by source instance, the same pixels.
"""
import json
import os
import shutil
import subprocess

import numpy as np
import pydicom
import pytest

from MedSegCore.cli import main
from MedSegCore.image import io
from MedSegCore.image.geometry import Geometry
from MedSegCore.mrml import nodes
from dicom_fixtures import dciodvfy, slicer_exporter_view, write_ct_series
from synthetic import rotation, sphere

hd = pytest.importorskip("highdicom")
dcmqi = pytest.importorskip("dcmqi")
OBLIQUE = Geometry((20, 16, 10), (0.7, 0.9, 2.5), (12.3, -45.6, 7.8), rotation())


def slicer_export(node, geometry, series, folder) -> str:
    """The DICOM SEG Slicer's DICOMSegmentationExporter.export makes of ``node`` (metadata as its
    getSeriesAttributes/_createSegmentData/createJSONFromTerminologyContext build it)."""
    seg = node.GetSegmentation()
    attributes, files = [], []
    for i in range(seg.GetNumberOfSegments()):
        segment = seg.GetNthSegment(i)
        _, (category, type_), kind, name = slicer_exporter_view(segment)
        data = {"labelID": 1, "SegmentLabel": segment.GetName(), "SegmentDescription": category[2],
                "SegmentAlgorithmType": kind, "recommendedDisplayRGBValue": [c * 255 for c in segment.GetColor()],
                "SegmentedPropertyCategoryCodeSequence": dict(zip(("CodeValue", "CodingSchemeDesignator", "CodeMeaning"), category)),
                "SegmentedPropertyTypeCodeSequence": dict(zip(("CodeValue", "CodingSchemeDesignator", "CodeMeaning"), type_))}
        if name:
            data["SegmentAlgorithmName"] = name
        attributes.append([data])
        path = os.path.join(folder, f"{seg.GetNthSegmentID(i)}_label.nrrd")
        io.write_volume(nodes.segment_array(node, seg.GetNthSegmentID(i), geometry).astype(np.uint8), geometry, path)
        files.append(path)
    meta = {"SeriesNumber": "103", "InstanceNumber": "1", "SeriesDescription": "Segmentation",
            "ContentCreatorName": "Slicer", "ClinicalTrialSeriesID": "1", "ClinicalTrialTimePointID": "1",
            "ClinicalTrialCoordinatingCenterName": "QIICR", "segmentAttributes": attributes}
    with open(os.path.join(folder, "seg_meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f)
    out = os.path.join(folder, "slicer.dcm")
    result = subprocess.run([str(dcmqi._lookup("itkimage2segimage")), "--inputDICOMDirectory", series,
                             "--inputImageList", ",".join(files), "--inputMetadata", os.path.join(folder, "seg_meta.json"),
                             "--outputDICOM", out], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return out


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) is not installed")
@pytest.mark.parametrize("how", [["--preset", "ct-bone"], ["--levels", "3"]])
def test_slicer_export_of_medseg_segmentation_equals_medseg_seg(tmp_path, how):
    c = OBLIQUE.ijk_to_ras()[:3] @ [10, 8, 5, 1]
    image = np.full(OBLIQUE.shape, -1000, np.int16)
    image[sphere(OBLIQUE, c, 6)] = 100
    image[sphere(OBLIQUE, c + [1.5, 0, 2], 3.5)] = 700
    series = str(tmp_path / "series")
    write_ct_series(image, OBLIQUE, series)
    seg_nrrd, dcm = tmp_path / "r.seg.nrrd", tmp_path / "r.dcm"
    assert main(["threshold", series, "-o", str(seg_nrrd), "-o", str(dcm), *how]) == 0
    _, geometry = io.read_volume(series)
    node = nodes.load_segmentation(str(seg_nrrd))
    work = tmp_path / "export"
    work.mkdir()
    theirs = slicer_export(node, geometry, series, str(work))
    # Slicer's file: no dciodvfy error (its "Slicer" content creator name draws a retired-PN warning)
    assert not [line for line in dciodvfy(theirs) if line.startswith("Error")]
    a, b = pydicom.dcmread(theirs), pydicom.dcmread(str(dcm))
    assert len(a.SegmentSequence) == len(b.SegmentSequence) == node.GetSegmentation().GetNumberOfSegments()
    for x, y in zip(a.SegmentSequence, b.SegmentSequence):
        assert (x.SegmentLabel, x.SegmentAlgorithmType, x.SegmentAlgorithmName) == \
               (y.SegmentLabel, y.SegmentAlgorithmType, y.SegmentAlgorithmName)
        for key in ("SegmentedPropertyCategoryCodeSequence", "SegmentedPropertyTypeCodeSequence"):
            assert [(i.CodeValue, i.CodingSchemeDesignator, i.CodeMeaning) for i in x[key].value] == \
                   [(i.CodeValue, i.CodingSchemeDesignator, i.CodeMeaning) for i in y[key].value]
        rgb = [hd.color.CIELabColor.from_dicom_value(tuple(s.RecommendedDisplayCIELabValue)).to_rgb() for s in (x, y)]
        assert np.abs(np.subtract(*rgb)).max() <= 2          # dcmqi's and highdicom's Lab conversions
    assert a.StudyInstanceUID == b.StudyInstanceUID and a.FrameOfReferenceUID == b.FrameOfReferenceUID
    sa, sb = hd.seg.segread(theirs), hd.seg.segread(str(dcm))
    uids = [str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in io.choose_dicom_series(series)]
    for number in sb.segment_numbers:
        ours = sb.get_pixels_by_source_instance(uids, segment_numbers=[number], assert_missing_frames_are_empty=True)
        slicer_pixels = sa.get_pixels_by_source_instance(uids, segment_numbers=[number], ignore_spatial_locations=True,
                                                         assert_missing_frames_are_empty=True)   # dcmqi omits the flag
        assert ours.any() and np.array_equal(ours, slicer_pixels)
