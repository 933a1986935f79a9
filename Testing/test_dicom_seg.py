"""DICOM SEG out and in: files written by ``medseg threshold``/``predict`` from pydicom-written series
(oblique, anisotropic, LPS) and pydicom's real CT5N, checked by dciodvfy, read back with highdicom and
compared frame by frame (through each frame's source SOP Instance UID) with the .seg.nrrd written by the
same command; SEGs read back as references and masks; Slicer's terminology/algorithm tags."""
import json
import logging
import os
import shutil

import numpy as np
import pydicom
import pytest

from MedSegCore.cli import main
from MedSegCore.errors import InputError, MedSegError
from MedSegCore.image import dicom_seg, dicom_source, io
from MedSegCore.image.geometry import Geometry
from MedSegCore.mrml import nodes
from MedSegCore.threshold import presets
from dicom_fixtures import dciodvfy, slicer_exporter_view, source_uids_of_frames, write_ct_series
from synthetic import rotation, sphere

hd = pytest.importorskip("highdicom")
needs_dciodvfy = pytest.mark.skipif(shutil.which("dciodvfy") is None,
                                    reason="dciodvfy (Debian dicom3tools) is not installed; .ci/run installs it")
OBLIQUE = Geometry((20, 16, 10), (0.7, 0.9, 2.5), (12.3, -45.6, 7.8), rotation())
LPS = Geometry((24, 24, 12), (0.8, 0.8, 2.0), (100.0, 80.0, -30.0), np.diag([-1.0, -1.0, 1.0]))
CT5N = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files", "dicomdirtests", "98892001", "CT5N")
MR700 = os.path.join(os.path.dirname(pydicom.__file__), "data", "test_files", "dicomdirtests", "98892003", "MR700")


@pytest.fixture(autouse=True)
def _fresh_log_handler(monkeypatch):
    monkeypatch.setattr(logging.getLogger("medseg"), "handlers", [])


def bone_phantom(geometry):
    """-1000 air, 100 HU soft sphere, 700 HU bone sphere off-centre: ct-bone selects the bone."""
    c = geometry.ijk_to_ras()[:3] @ [geometry.size[0] / 2, geometry.size[1] / 2, geometry.size[2] / 2, 1]
    image = np.full(geometry.shape, -1000, np.int16)
    image[sphere(geometry, c, 6)] = 100
    image[sphere(geometry, c + [1.5, 0, 2], 3.5)] = 700
    return image


def seg_nrrd_masks(path, geometry):
    node = nodes.load_segmentation(str(path))
    return {name: mask for name, mask in nodes.segment_arrays(node, geometry).items()}, node


def check_frames(dcm, series, masks_by_number):
    """Every frame of the SEG equals slice k of the .seg.nrrd mask, k found by the frame's source SOP
    Instance UID in the series; its plane position is that instance's; slices without a frame are empty."""
    ds = pydicom.dcmread(str(dcm))
    seg = hd.seg.segread(str(dcm))
    headers = [pydicom.dcmread(os.path.join(series, f), stop_before_pixels=True) for f in os.listdir(series)]
    by_uid = {str(h.SOPInstanceUID): h for h in headers}
    order = io.choose_dicom_series(series)                     # SimpleITK/GDCM's K order of the volume
    k_of = {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID): k for k, f in enumerate(order)}
    frames = source_uids_of_frames(ds)
    pixels = seg.pixel_array if seg.pixel_array.ndim == 3 else seg.pixel_array[None]
    seen = {n: set() for n in masks_by_number}
    for index, (uid, number) in enumerate(frames):
        k = k_of[uid]
        np.testing.assert_array_equal(pixels[index] > 0, masks_by_number[number][k])
        position = ds.PerFrameFunctionalGroupsSequence[index].PlanePositionSequence[0].ImagePositionPatient
        np.testing.assert_allclose([float(v) for v in position],
                                   [float(v) for v in by_uid[uid].ImagePositionPatient], atol=1e-4)
        seen[number].add(k)
    for number, mask in masks_by_number.items():
        rest = [k for k in range(mask.shape[0]) if k not in seen[number]]
        assert not mask[rest].any(), f"segment {number}: voxels on slices without a frame"
    return ds, frames


def check_references(ds, series):
    src = pydicom.dcmread(os.path.join(series, sorted(os.listdir(series))[0]), stop_before_pixels=True)
    assert ds.Modality == "SEG" and ds.SeriesInstanceUID != src.SeriesInstanceUID
    assert ds.StudyInstanceUID == src.StudyInstanceUID and ds.FrameOfReferenceUID == src.FrameOfReferenceUID
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == src.SeriesInstanceUID
    for key in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyID", "AccessionNumber"):
        assert ds.get(key) == src.get(key), key
    referenced = {str(i.ReferencedSOPInstanceUID) for i in ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
    assert referenced == {str(pydicom.dcmread(os.path.join(series, f), stop_before_pixels=True).SOPInstanceUID)
                          for f in os.listdir(series)}


def code(item):
    return [str(item.CodeValue), str(item.CodingSchemeDesignator), str(item.CodeMeaning)]


@needs_dciodvfy
def test_threshold_oblique_series_to_dicom_seg(tmp_path):
    series = str(tmp_path / "oblique")
    uids = write_ct_series(bone_phantom(OBLIQUE), OBLIQUE, series)
    image, geometry = io.read_volume(series)
    assert geometry.same_grid(OBLIQUE, tol=1e-5) and geometry.is_oblique()
    assert [s.sop_instance_uid for s in dicom_source.series_slices(series, geometry)] == uids
    out, dcm = tmp_path / "bone.seg.nrrd", tmp_path / "bone.dcm"
    assert main(["threshold", series, "-o", str(out), "-o", str(dcm), "--preset", "ct-bone"]) == 0
    assert dciodvfy(dcm) == []
    masks, node = seg_nrrd_masks(out, geometry)
    assert 20 < masks["Bone"].sum() < (image >= 400).sum() + 1 and np.array_equal(masks["Bone"], image >= 400)
    ds, frames = check_frames(dcm, series, {1: masks["Bone"]})
    check_references(ds, series)
    assert len(frames) == len({k for k in range(10) if masks["Bone"][k].any()})
    s = ds.SegmentSequence[0]
    preset = presets.get_preset("ct-bone")
    assert s.SegmentLabel == "Bone" and s.SegmentAlgorithmType == "SEMIAUTOMATIC"
    assert s.SegmentAlgorithmName == "MedSeg threshold"
    assert code(s.SegmentedPropertyCategoryCodeSequence[0]) == preset.terminology["category"]
    assert code(s.SegmentedPropertyTypeCodeSequence[0]) == ["272673000", "SCT", "Bone"]
    family = s.SegmentationAlgorithmIdentificationSequence[0].AlgorithmFamilyCodeSequence[0]
    assert code(family) == ["123105", "DCM", "Histogram Analysis"]
    lab = hd.color.CIELabColor.from_dicom_value(tuple(s.RecommendedDisplayCIELabValue))
    np.testing.assert_allclose(np.array(lab.to_rgb()) / 255, preset.color, atol=1 / 255 + 1e-6)
    # the .seg.nrrd's segment says the same to Slicer's DICOM SEG exporter
    segment = node.GetSegmentation().GetNthSegment(0)
    context, values, kind, name = slicer_exporter_view(segment)
    assert (context, values, kind, name) == (preset.terminology["context"], [code(
        s.SegmentedPropertyCategoryCodeSequence[0]), code(s.SegmentedPropertyTypeCodeSequence[0])],
        "SEMIAUTOMATIC", "MedSeg threshold")
    # as a reference: the SEG's grid covers only slices with frames; a false positive on a slice
    # without frames still counts (Bone has n voxels, the prediction n + 1)
    assert not masks["Bone"][0].any()
    labels = masks["Bone"].astype(np.uint8)
    labels[0, 3, 4] = 1
    pred = tmp_path / "pred.nii.gz"
    io.write_volume(labels, geometry, str(pred))
    report = tmp_path / "m.json"
    assert main(["evaluate", str(pred), str(dcm), "--map", "1=Bone", "--json", str(report), "--no-distances"]) == 0
    [row] = json.loads(report.read_text())["rows"]
    n = int(masks["Bone"].sum())
    assert row["recall"] == 1.0 and row["precision"] == pytest.approx(n / (n + 1))


@needs_dciodvfy
def test_threshold_levels_lps_series_and_read_back_as_reference_and_mask(tmp_path, capsys):
    series = str(tmp_path / "lps")
    image = bone_phantom(LPS)
    write_ct_series(image, LPS, series, seed=3)
    out, dcm = tmp_path / "classes.seg.nrrd", tmp_path / "classes.dcm"
    assert main(["threshold", series, "-o", str(dcm), "-o", str(out), "--levels", "3"]) == 0
    assert dciodvfy(dcm) == []
    _, geometry = io.read_volume(series)
    masks, node = seg_nrrd_masks(out, geometry)
    assert len(masks) == 3 and all(m.any() for m in masks.values())
    ds, _ = check_frames(dcm, series, {i + 1: m for i, m in enumerate(masks.values())})
    assert [s.SegmentLabel for s in ds.SegmentSequence] == list(masks)
    for s, (name, mask) in zip(ds.SegmentSequence, masks.items()):      # Slicer's default terminology
        assert code(s.SegmentedPropertyTypeCodeSequence[0]) == ["85756007", "SCT", "Tissue"]
    # read back: evaluate a .seg.nrrd against the DICOM SEG (exact: Dice 1), and the SEG as a mask
    report = tmp_path / "m.json"
    assert main(["evaluate", str(out), str(dcm), "--json", str(report), "--no-distances"]) == 0
    rows = json.loads(report.read_text())["rows"]
    assert [r["segment"] for r in rows] == list(masks) and all(r["dice"] == 1.0 for r in rows)
    assert all(r["volume_ref_ml"] == pytest.approx(m.sum() * LPS.voxel_volume_mm3 / 1000) for r, m in zip(rows, masks.values()))
    first = list(masks)[2]
    a, b = tmp_path / "a.seg.nrrd", tmp_path / "b.seg.nrrd"
    for mask, target in ((dcm, a), (out, b)):
        assert main(["threshold", series, "-o", str(target), "--lower", "-2000", "--mask", str(mask),
                     "--mask-segment", first, "--name", "In"]) == 0
    in_a, in_b = seg_nrrd_masks(a, geometry)[0]["In"], seg_nrrd_masks(b, geometry)[0]["In"]
    assert in_a.sum() == masks[first].sum() and np.array_equal(in_a, in_b)


@needs_dciodvfy
def test_empty_segments_written_as_such_or_refused(tmp_path, capsys):
    series = str(tmp_path / "s")
    write_ct_series(bone_phantom(LPS), LPS, series)
    dcm = tmp_path / "none.dcm"
    assert main(["threshold", series, "-o", str(dcm), "--lower", "5000", "--upper", "6000"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err and not dcm.exists()
    assert main(["threshold", series, "-o", str(dcm), "--lower", "5000", "--upper", "6000", "--allow-empty"]) == 0
    assert dciodvfy(dcm) == []
    seg = hd.seg.segread(str(dcm))
    assert seg.number_of_segments == 1 and seg.NumberOfFrames == LPS.size[2] and not seg.pixel_array.any()
    # one empty segment beside a full one: described, without frames
    _, geometry = io.read_volume(series)
    image, _ = io.read_volume(series)
    lung = {"category": ["123037004", "SCT", "Anatomical Structure"], "type": ["39607008", "SCT", "Lung"],
            "modifier": ["7771000", "SCT", "Left"], "anatomic_region": ["51185008", "SCT", "Thorax"]}
    segs = [dicom_seg.Segment("Body", image > -500, (1, 0, 0), lung), dicom_seg.Segment("Nothing", image > 9999, (0, 0, 1))]
    mixed = tmp_path / "mixed.dcm"
    dicom_seg.write_seg(str(mixed), series, geometry, segs, dicom_seg.Algorithm("SEMIAUTOMATIC", "test", "1"))
    assert dciodvfy(mixed) == []
    ds = pydicom.dcmread(str(mixed))
    assert [s.SegmentLabel for s in ds.SegmentSequence] == ["Body", "Nothing"]
    body = ds.SegmentSequence[0]
    assert code(body.SegmentedPropertyTypeCodeSequence[0].SegmentedPropertyTypeModifierCodeSequence[0]) == lung["modifier"]
    assert code(body.AnatomicRegionSequence[0]) == lung["anatomic_region"]
    assert {n for _, n in source_uids_of_frames(ds)} == {1}
    masks, g = dicom_seg.read_seg(str(mixed))
    assert masks["Nothing"].sum() == 0 and masks["Body"].sum() == (image > -500).sum()


def test_dicom_seg_needs_a_dicom_series_and_highdicom(tmp_path, capsys, monkeypatch):
    vol = tmp_path / "ct.nii.gz"
    io.write_volume(bone_phantom(LPS), LPS, str(vol))
    assert main(["threshold", str(vol), "-o", str(tmp_path / "x.dcm"), "--preset", "ct-bone"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "needs a DICOM series folder" in err
    assert not list(tmp_path.glob("x*")) and not list(tmp_path.glob(".medseg-*"))
    for bad in (tmp_path / "notes.dcm", tmp_path / "ct_image.dcm"):      # not DICOM; a DICOM image, not a SEG
        if bad.name == "notes.dcm":
            bad.write_text("hello")
        else:
            write_ct_series(bone_phantom(LPS)[:1], LPS, str(tmp_path / "one"))
            shutil.copy(next((tmp_path / "one").iterdir()), bad)
        capsys.readouterr()
        assert main(["threshold", str(vol), "-o", str(tmp_path / "y.nii.gz"), "--preset", "ct-bone", "--mask", str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "not a readable DICOM SEG" in err and str(bad) in err
    monkeypatch.setitem(__import__("sys").modules, "highdicom", None)
    with pytest.raises(MedSegError, match="pip install"):
        dicom_seg.read_seg(str(vol))


def test_series_slices_checked_against_the_volume(tmp_path):
    series = str(tmp_path / "s")
    uids = write_ct_series(bone_phantom(OBLIQUE), OBLIQUE, series, seed=7)
    _, geometry = io.read_volume(series)
    order = io.choose_dicom_series(series)          # GDCM's order, the volume's K axis
    assert [pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in order] == uids
    assert [s.path for s in dicom_source.series_slices(series, geometry)] == list(order)
    shifted = Geometry(geometry.size, geometry.spacing, np.add(geometry.origin, 1.0), geometry.direction)
    with pytest.raises(InputError, match="slice 0 lies at"):
        dicom_source.series_slices(series, shifted)
    os.remove(order[4])
    with pytest.raises(InputError, match="9 instances but the volume 10 slices"):
        dicom_source.series_slices(series, geometry)


@needs_dciodvfy
def test_real_ct5n_series_and_oblique_mr700_refused(tmp_path, capsys):
    out, dcm = tmp_path / "ct.seg.nrrd", tmp_path / "ct.dcm"
    assert main(["threshold", CT5N, "-o", str(out), "-o", str(dcm), "--method", "otsu"]) == 0
    assert dciodvfy(dcm) == []
    _, geometry = io.read_volume(CT5N)
    masks, _ = seg_nrrd_masks(out, geometry)
    ds, frames = check_frames(dcm, CT5N, {1: list(masks.values())[0]})
    check_references(ds, CT5N)
    assert len(frames) >= 3
    capsys.readouterr()
    assert main(["threshold", MR700, "-o", str(tmp_path / "mr.dcm"), "--method", "otsu"]) == 2
    err = capsys.readouterr().err.strip()
    # refused when the series is read (image.dicom_series), before the SEG writer's own slice check
    assert len(err.splitlines()) == 1 and "slices have 7 orientations" in err and not (tmp_path / "mr.dcm").exists()


@needs_dciodvfy
def test_predict_dicom_seg_lps_series(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("monai")
    from test_predict_cli import TERM, expected, phantom, threshold_model

    tnet = threshold_model(tmp_path / "net")
    geometry = Geometry((40, 40, 24), (0.8, 0.8, 1.5), (100.0, 80.0, -30.0), np.diag([-1.0, -1.0, 1.0]))
    image = phantom(geometry)
    series = str(tmp_path / "patient1")
    write_ct_series(image, geometry, series, seed=5)
    out = tmp_path / "out"
    assert main(["predict", series, "-o", str(out), "--model", tnet, "--dicom-seg", "--roi", "16", "16", "8"]) == 0
    dcm, seg_nrrd = out / "patient1.dcm", out / "patient1.seg.nrrd"
    assert dciodvfy(dcm) == []
    _, g = io.read_volume(series)
    masks, node = seg_nrrd_masks(seg_nrrd, g)
    want = expected(image)
    assert np.array_equal(masks["Shell"], want == 1) and np.array_equal(masks["Core"], want == 2)
    ds, frames = check_frames(dcm, series, {1: masks["Shell"], 2: masks["Core"]})
    check_references(ds, series)
    shell, core = ds.SegmentSequence
    assert (shell.SegmentLabel, core.SegmentLabel) == ("Shell", "Core")
    for s in (shell, core):
        assert s.SegmentAlgorithmType == "AUTOMATIC" and s.SegmentAlgorithmName == "Threshold test net"
        ident = s.SegmentationAlgorithmIdentificationSequence[0]
        assert ident.AlgorithmVersion == "1.0" and code(ident.AlgorithmFamilyCodeSequence[0])[2] == "Artificial Intelligence"
    assert code(shell.SegmentedPropertyCategoryCodeSequence[0]) == TERM["category"]
    assert code(shell.SegmentedPropertyTypeCodeSequence[0]) == TERM["type"]
    assert code(core.SegmentedPropertyTypeCodeSequence[0]) == ["85756007", "SCT", "Tissue"]
    lab = hd.color.CIELabColor.from_dicom_value(tuple(shell.RecommendedDisplayCIELabValue))
    assert lab.to_rgb() == (51, 204, 51)
    for i in range(2):                                  # the .seg.nrrd says the same to Slicer's exporter
        _, values, kind, name = slicer_exporter_view(node.GetSegmentation().GetNthSegment(i))
        assert (kind, name) == ("AUTOMATIC", "Threshold test net")
        assert values == [code(ds.SegmentSequence[i].SegmentedPropertyCategoryCodeSequence[0]),
                          code(ds.SegmentSequence[i].SegmentedPropertyTypeCodeSequence[0])]
    # a NIfTI case with --dicom-seg: refused up front, nothing written
    vol = tmp_path / "vol.nii.gz"
    io.write_volume(image, geometry, str(vol))
    capsys.readouterr()
    assert main(["predict", str(vol), "-o", str(tmp_path / "o2"), "--model", tnet, "--dicom-seg"]) == 2
    err = capsys.readouterr().err
    assert "--dicom-seg: a DICOM SEG needs a DICOM series" in err and "vol" in err and "Traceback" not in err
    assert not (tmp_path / "o2").exists()


def test_module_path_segments_ready_for_slicer_dicom_export(tmp_path):
    """A segmentation the MedSeg Threshold module makes on a volume loaded by Slicer's DICOM module has
    what Slicer's DICOMSegmentationPlugin export reads: the reference-geometry node reference to that
    volume (whose DICOM.instanceUIDs name the source files), a place in the volume's study, and per
    segment a terminology Slicer's logic deserializes and the algorithm tags."""
    import slicer

    from MedSegCore.mrml import segment_ops
    from MedSegCore.threshold.engine import ThresholdParameters

    series = str(tmp_path / "s")
    uids = write_ct_series(bone_phantom(OBLIQUE), OBLIQUE, series)
    volume = nodes.read_volume_node(series)
    volume.SetAttribute("DICOM.instanceUIDs", " ".join(uids))          # as DICOMScalarVolumePlugin sets it
    sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
    study = sh.CreateStudyItem(sh.CreateSubjectItem(sh.GetSceneItemID(), "Test^Patient"), "S1")
    sh.CreateItem(study, volume)
    seg, _ = segment_ops.apply_threshold(volume, ThresholdParameters(preset="ct-lung", allow_empty=True))
    seg, _ = segment_ops.apply_threshold(volume, ThresholdParameters(preset="ct-bone"), seg)
    assert seg.GetNodeReference(seg.GetReferenceImageGeometryReferenceRole()) is volume
    assert volume.GetAttribute("DICOM.instanceUIDs").split() == uids
    assert sh.GetItemParent(sh.GetItemByDataNode(seg)) == study
    segmentation = seg.GetSegmentation()
    views = [slicer_exporter_view(segmentation.GetNthSegment(i)) for i in range(segmentation.GetNumberOfSegments())]
    assert views == [(presets.get_preset(p).terminology["context"],
                      [presets.get_preset(p).terminology["category"], presets.get_preset(p).terminology["type"]],
                      "SEMIAUTOMATIC", "MedSeg threshold") for p in ("ct-lung", "ct-bone")]


def test_segment_editor_effect_path_tags_what_it_writes():
    """Through the Segment Editor (the effect's path), the selected segment keeps the terminology
    the user gave it unless a preset says what it is; every written segment is tagged SEMIAUTOMATIC."""
    from MedSegCore.mrml import editor_apply
    from MedSegCore.threshold.engine import ThresholdParameters

    image = bone_phantom(OBLIQUE)
    volume = nodes.add_volume_node(image, OBLIQUE, "ct")
    seg = nodes.new_segmentation_node("seg", volume)
    logic = editor_apply.editor_logic(seg, volume)
    segmentation = seg.GetSegmentation()
    mine = segmentation.AddEmptySegment("", "Mine", [0.1, 0.8, 0.1])
    user_term = ("Segmentation category and type - DICOM master list~SCT^123037004^Anatomical Structure~"
                 "SCT^10200004^Liver~^^~Anatomic codes - DICOM master list~^^~^^")
    segmentation.GetSegment(mine).SetTag(segmentation.GetSegment(mine).GetTerminologyEntryTagName(), user_term)
    logic.GetSegmentEditorNode().SetSelectedSegmentID(mine)
    editor_apply.apply_threshold(logic, ThresholdParameters(lower=0, upper=500))
    _, values, kind, name = slicer_exporter_view(segmentation.GetSegment(mine))
    assert segmentation.GetSegment(mine).GetTerminology() == user_term
    assert (kind, name) == ("SEMIAUTOMATIC", "MedSeg threshold")
    editor_apply.apply_threshold(logic, ThresholdParameters(preset="ct-bone"))
    _, values, _, _ = slicer_exporter_view(segmentation.GetSegment(mine))
    assert values[1] == ["272673000", "SCT", "Bone"]
    for applied in editor_apply.apply_threshold(logic, ThresholdParameters(levels=3)):
        _, values, kind, _ = slicer_exporter_view(segmentation.GetSegment(applied.segment_id))
        assert values[1] == ["85756007", "SCT", "Tissue"] and kind == "SEMIAUTOMATIC"
