"""The Slicer path for irregular DICOM series: Slicer's DICOM reader puts such a volume under a
non-linear acquisition transform; the panels' Logic refuses it, or with 'Regularize DICOM geometry'
segments a copy that Slicer's own HardenTransform resampled onto a regular grid."""
import numpy as np
import pytest
import SimpleITK as sitk

import slicer_harness
from MedSegCore.errors import MedSegError
from MedSegCore.image import io
from MedSegCore.image.geometry import from_sitk
from MedSegCore.mrml import acquisition, nodes
from MedSegCore.threshold import engine
from dicom_series_data import defect_positions, linear_values, write_series
from synthetic import oblique_geometry

G = oblique_geometry((20, 16, 8))


def slicer_dicom_load(folder):
    """What Slicer's DICOMScalarVolumePlugin.load does with default settings: the voxels on the
    uniform grid the ITK series reader makes, and a grid transform that moves each slice's corners
    to where its DICOM header puts them (AcquisitionModeling.sliceCornersFromDICOM,
    sliceCornersFromIJKToRAS, gridTransformFromCorners; Slicer 5.10)."""
    import pydicom
    import slicer
    import vtk

    reader = sitk.ImageSeriesReader()
    files = reader.GetGDCMSeriesFileNames(str(folder))
    reader.SetFileNames(files)
    image = reader.Execute()
    volume = nodes.add_volume_node(sitk.GetArrayFromImage(image), from_sitk(image), "irregular")
    columns, rows, slices = image.GetSize()
    ijk_to_ras = nodes.geometry_of(volume).ijk_to_ras()
    source = np.zeros((slices, 2, 2, 3))
    target = np.zeros((slices, 2, 2, 3))
    lps_to_ras = np.array([-1.0, -1.0, 1.0])
    for k, path in enumerate(files):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        position = np.array([float(v) for v in ds.ImagePositionPatient]) * lps_to_ras
        iop = np.array([float(v) for v in ds.ImageOrientationPatient])
        spacing = [float(v) for v in ds.PixelSpacing]
        row_vector = columns * spacing[1] * iop[:3] * lps_to_ras
        column_vector = rows * spacing[0] * iop[3:] * lps_to_ras
        for r in range(2):
            for c in range(2):
                source[k, r, c] = (ijk_to_ras @ [c * columns, r * rows, k, 1])[:3]
                target[k, r, c] = position + c * row_vector + r * column_vector
    transform_node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLGridTransformNode", "irregular acquisition transform")
    grid = vtk.vtkImageData()
    grid.SetOrigin(*volume.GetOrigin())
    grid.SetDimensions(2, 2, slices)
    s = volume.GetSpacing()
    grid.SetSpacing(s[0] * columns, s[1] * rows, s[2])
    grid.AllocateScalars(vtk.VTK_DOUBLE, 3)
    transform = slicer.vtkOrientedGridTransform()
    direction = vtk.vtkMatrix4x4()
    volume.GetIJKToRASDirectionMatrix(direction)
    transform.SetGridDirectionMatrix(direction)
    transform.SetDisplacementGridData(grid)
    transform_node.SetAndObserveTransformToParent(transform)
    displacements = slicer.util.arrayFromGridTransform(transform_node)
    displacements[:] = target - source
    slicer.util.arrayFromGridTransformModified(transform_node)
    volume.SetAndObserveTransformNodeID(transform_node.GetID())
    return volume, float(np.abs(target - source).max())


def analytic_error(array, geometry):
    k, j, i = np.indices(geometry.shape)
    ras = geometry.ijk_to_ras() @ np.stack([i.ravel(), j.ravel(), k.ravel(), np.ones(i.size)])
    lps = (np.diag([-1.0, -1.0, 1.0]) @ ras[:3]).T
    return np.abs(array.astype(float) - linear_values(lps).reshape(geometry.shape))


@pytest.fixture
def threshold_logic():
    slicer_harness.load_module("MedSegThreshold")
    import MedSegThreshold
    return MedSegThreshold.MedSegThresholdLogic()


@pytest.mark.parametrize("kind", ["tilt", "nonuniform"])
def test_threshold_logic_refuses_or_regularizes_slicers_acquisition_transform(tmp_path, threshold_logic, kind,
                                                                              caplog):
    write_series(str(tmp_path), G, positions_lps=defect_positions(kind, G))
    volume, max_error = slicer_dicom_load(tmp_path)
    assert max_error > 1e-3                 # Slicer's cornerEpsilon: Slicer adds the transform
    assert acquisition.nonlinear_transform(volume) is not None
    params = engine.ThresholdParameters(lower=-1e6, name="All")
    with pytest.raises(MedSegError, match="lies under the non-linear transform 'irregular acquisition transform'"):
        threshold_logic.apply(volume, params)
    segmentation, results = threshold_logic.apply(volume, params, regularize=True)
    assert "volume 'irregular' regularized" in caplog.text
    copy = next(n for n in nodes._slicer().util.getNodesByClass("vtkMRMLScalarVolumeNode")
                if n.GetName().startswith("irregular regularized"))
    assert copy.GetParentTransformNode() is None
    array, geometry = nodes.volume_array(copy)
    # Slicer's resampling put every voxel where the DICOM headers say (interior: edges are padding)
    err = analytic_error(array, geometry)
    inner = err[1:-1, 6:-6, 2:-2]
    assert inner.max() <= 1.5
    # ... which the voxels of the uniform grid alone are not
    plain, plain_geometry = nodes.volume_array(volume)
    assert analytic_error(plain, plain_geometry).max() > 20
    # the segmentation is on the regularized grid, and MedSeg's own regularized read agrees
    assert results[0].voxels == array.size
    mine, mine_geometry = io.read_volume(str(tmp_path), regularize=True)
    assert np.allclose(mine_geometry.direction_matrix, geometry.direction_matrix, atol=1e-6)


def test_acquisition_transform_within_jitter_tolerance_is_only_warned_about(tmp_path, threshold_logic, caplog):
    write_series(str(tmp_path), G, positions_lps=defect_positions("jitter", G))
    volume, max_error = slicer_dicom_load(tmp_path)
    assert 1e-3 < max_error < 0.1
    segmentation, results = threshold_logic.apply(volume, engine.ThresholdParameters(lower=-1e6, name="All"))
    assert "which moves its slices up to 0.0" in caplog.text and "within tolerance 0.135 mm" in caplog.text
    assert results[0].voxels == G.size[0] * G.size[1] * G.size[2]


def test_dnn_logic_refuses_or_regularizes_the_input(tmp_path):
    slicer_harness.load_module("MedSegDNN")
    import MedSegDNN

    write_series(str(tmp_path), G, positions_lps=defect_positions("tilt", G))
    volume, _ = slicer_dicom_load(tmp_path)
    with pytest.raises(MedSegError, match="Regularize DICOM geometry"):
        MedSegDNN.MedSegDNNLogic.inputs([volume])
    (copy,) = MedSegDNN.MedSegDNNLogic.volumesToSegment([volume], regularize=True)
    assert copy is not volume and copy.GetParentTransformNode() is None
    array, geometry = MedSegDNN.MedSegDNNLogic.inputs([copy])[0]
    assert array.shape == geometry.shape


def test_linear_or_no_transform_is_left_alone(tmp_path):
    write_series(str(tmp_path), G)
    volume = nodes.read_volume_node(str(tmp_path))
    assert acquisition.volume_to_segment(volume, False) is volume
    assert acquisition.volume_to_segment(volume, True) is volume
