"""DICOM series written with pydicom for the DICOM SEG tests (complete CT headers: one study, series
and frame of reference, patient attributes), and the checks every written SEG must pass."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np

LPS = np.diag([-1.0, -1.0, 1.0])
# dciodvfy warnings accepted for MedSeg's SEG files (none so far: any warning fails a test until
# it has been looked at and listed here with the reason).
ACCEPTED_WARNINGS: tuple = ()


def write_ct_series(array: np.ndarray, geometry, folder: str, seed: int = 0) -> list:
    """Write a KJI volume on ``geometry`` (RAS) as one CT series, files named in shuffled order;
    returns the SOP Instance UIDs in K order."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    os.makedirs(folder, exist_ok=True)
    d, o = LPS @ geometry.direction_matrix, LPS @ np.asarray(geometry.origin)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    order = np.random.default_rng(seed).permutation(array.shape[0])
    uids = []
    for k in range(array.shape[0]):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, generate_uid()
        ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = "Test^Patient", "MS-0001", "19700101", "O"
        ds.StudyInstanceUID, ds.StudyDate, ds.StudyTime, ds.StudyID = study, "20260101", "120000", "S1"
        ds.AccessionNumber, ds.ReferringPhysicianName = "A123", "Ref^Doc"
        ds.SeriesInstanceUID, ds.SeriesNumber, ds.Modality = series, 3, "CT"
        ds.FrameOfReferenceUID, ds.PositionReferenceIndicator = frame, ""
        ds.Manufacturer, ds.InstanceNumber, ds.ImageType = "MedSeg tests", k + 1, ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImagePositionPatient = [f"{v:.8f}" for v in o + d[:, 2] * geometry.spacing[2] * k]
        ds.ImageOrientationPatient = [f"{v:.10f}" for v in list(d[:, 0]) + list(d[:, 1])]
        ds.PixelSpacing = [geometry.spacing[1], geometry.spacing[0]]
        ds.SliceThickness, ds.KVP = geometry.spacing[2], 120
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = array.shape[1], array.shape[2]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "HU"
        ds.PixelData = np.ascontiguousarray(array[k].astype(np.int16)).tobytes()
        ds.save_as(os.path.join(folder, f"img{order[k]:04d}.dcm"), enforce_file_format=True)
        uids.append(str(ds.SOPInstanceUID))
    return uids


def dciodvfy(path: str) -> list:
    """dciodvfy's Error lines and unaccepted Warning lines for ``path`` (empty: the file is valid)."""
    result = subprocess.run([shutil.which("dciodvfy"), str(path)], capture_output=True, text=True, timeout=120)
    lines = (result.stdout + result.stderr).splitlines()
    errors = [ln for ln in lines if ln.startswith("Error")]
    warnings = [ln for ln in lines if ln.startswith("Warning") and not any(re.search(a, ln) for a in ACCEPTED_WARNINGS)]
    return errors + warnings


def source_uids_of_frames(seg) -> list:
    """(SOP Instance UID of the frame's source image, segment number) of each frame of a SEG dataset."""
    out, shared = [], seg.SharedFunctionalGroupsSequence[0]
    for item in seg.PerFrameFunctionalGroupsSequence:
        source = item.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        ident = item if "SegmentIdentificationSequence" in item else shared     # one segment: shared
        out.append((str(source), int(ident.SegmentIdentificationSequence[0].ReferencedSegmentNumber)))
    return out


def slicer_exporter_view(segment):
    """What Slicer's DICOMSegmentationPlugin export reads from a segment: the terminology deserialized
    by Slicer's own logic (category and type must be valid), algorithm type (MANUAL unless tagged) and
    name (required unless MANUAL)."""
    import slicer
    import vtk

    entry = slicer.vtkSlicerTerminologyEntry()
    assert slicer.vtkSlicerTerminologiesModuleLogic.DeserializeTerminologyEntry(segment.GetTerminology(), entry)
    coded = [entry.GetCategoryObject(), entry.GetTypeObject()]
    values = [[c.GetCodeValue(), c.GetCodingSchemeDesignator(), c.GetCodeMeaning()] for c in coded]
    assert all(v is not None for pair in values for v in pair), "Slicer's exporter would refuse this terminology"
    kind, name = vtk.reference(""), vtk.reference("")
    kind = str(kind) if segment.GetTag("DICOM.SegmentAlgorithmType", kind) else "MANUAL"
    name = str(name) if segment.GetTag("DICOM.SegmentAlgorithmName", name) else None
    assert kind in ("MANUAL", "SEMIAUTOMATIC", "AUTOMATIC") and (kind == "MANUAL" or name)
    return entry.GetTerminologyContextName(), values, kind, name
