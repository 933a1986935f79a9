"""Adapters between MedSeg arrays and Slicer MRML nodes (volume and segmentation nodes).

These run inside Slicer and headless (``slicer-core``; see :mod:`MedSegCore.mrml.scene`).  They use
Slicer's own classes only: volume nodes, ``vtkMRMLSegmentationNode``, the Segmentations module
logic and ``vtkMRMLSegmentationStorageNode`` for ``.seg.nrrd`` files.  Writing into an existing
segmentation node only ever touches the segments named in the call.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError, ParameterError
from ..image.geometry import Geometry
from ..image import io

DEFAULT_COLORS = [(0.9, 0.2, 0.2), (0.2, 0.7, 0.2), (0.2, 0.4, 0.9), (0.9, 0.8, 0.2), (0.8, 0.3, 0.8),
                  (0.2, 0.8, 0.8), (0.9, 0.5, 0.1), (0.5, 0.5, 0.9)]


def _slicer():
    import slicer

    from .scene import ensure_scene
    ensure_scene()
    return slicer


def vtk_matrix(matrix: np.ndarray):
    """A ``vtkMatrix4x4`` holding the 4x4 array ``matrix``."""
    import vtk

    m = vtk.vtkMatrix4x4()
    for r in range(4):
        for c in range(4):
            m.SetElement(r, c, float(matrix[r, c]))
    return m


def geometry_of(volume_node) -> Geometry:
    """Geometry of a volume node: its spacing, origin and IJK to RAS directions, read as stored."""
    image = volume_node.GetImageData() if volume_node is not None else None
    if image is None:
        raise InputError(f"volume '{volume_node.GetName() if volume_node else None}' has no image data")
    directions = [[0.0] * 3 for _ in range(3)]
    volume_node.GetIJKToRASDirections(directions)
    return Geometry(image.GetDimensions(), volume_node.GetSpacing(), volume_node.GetOrigin(), directions)


def set_geometry(volume_node, geometry: Geometry) -> None:
    """Give a volume node exactly this spacing, origin and direction (no matrix round trip)."""
    volume_node.SetSpacing(*geometry.spacing)
    volume_node.SetOrigin(*geometry.origin)
    volume_node.SetIJKToRASDirections([list(row) for row in geometry.direction])


def volume_array(volume_node, check: bool = True):
    """(KJI array, Geometry) of a scalar volume node.  The array is Slicer's own voxel buffer
    (no copy): treat it as read-only."""
    slicer = _slicer()
    geometry = geometry_of(volume_node)
    image = volume_node.GetImageData()
    if image.GetNumberOfScalarComponents() != 1:
        raise InputError(f"volume '{volume_node.GetName()}' has {image.GetNumberOfScalarComponents()} "
                         "components per voxel; a scalar volume is needed")
    array = slicer.util.arrayFromVolume(volume_node)
    if check:
        io.validate_image(array, f"volume '{volume_node.GetName()}'")
    return array, geometry


def add_volume_node(array: np.ndarray, geometry: Geometry, name: str = "Volume", labelmap: bool = False):
    """New scalar (or labelmap) volume node holding a copy of ``array`` on ``geometry``."""
    slicer = _slicer()
    cls = "vtkMRMLLabelMapVolumeNode" if labelmap else "vtkMRMLScalarVolumeNode"
    node = slicer.util.addVolumeFromArray(np.ascontiguousarray(array), name=name, nodeClassName=cls)
    set_geometry(node, geometry)
    return node


def read_volume_node(path: str, name: str | None = None, series_uid: str | None = None,
                     regularize: bool = False):
    """Read a volume file or DICOM folder into a new scalar volume node (validated, exact geometry;
    ``regularize``: see ``io.read_volume``)."""
    import os

    array, geometry = io.read_volume(path, series_uid, regularize)
    if name is None:
        base = os.path.basename(os.path.normpath(str(path)))
        name = base[:-len(io.extension(base))] if io.extension(base) else base
    return add_volume_node(array, geometry, name)


_MADVISE = None


def advise_huge_pages(view: np.ndarray) -> None:
    """Ask Linux to back a large, not yet touched array (e.g. fresh VTK memory) with transparent
    huge pages, the advice numpy gives its own large allocations: filling 78 MB then costs ~40
    page faults instead of ~19,000 (twice as fast on these machines).  Advice only: a no-op
    elsewhere or when it fails."""
    global _MADVISE
    page = 1 << 21
    if view.nbytes < 2 * page:
        return
    if _MADVISE is None:
        _MADVISE = False
        import sys

        if sys.platform.startswith("linux"):
            try:
                import ctypes

                libc = ctypes.CDLL(None, use_errno=True)
                libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
                _MADVISE = libc.madvise
            except (OSError, AttributeError):
                pass
    if _MADVISE:
        address = view.__array_interface__["data"][0]
        start, end = -(-address // page) * page, (address + view.nbytes) // page * page
        if end > start:
            _MADVISE(start, end - start, 14)          # MADV_HUGEPAGE


def new_labelmap(geometry: Geometry, box=None):
    """(``vtkOrientedImageData`` of unsigned char owned by VTK, a bool KJI numpy view of its
    voxels) on ``geometry``'s grid: the whole grid, or only ``box`` (KJI slices) with that extent."""
    import vtk
    from vtk.util import numpy_support

    slicer = _slicer()
    image = slicer.vtkOrientedImageData()
    box = box or tuple(slice(0, n) for n in geometry.shape)
    k, j, i = box
    image.SetExtent(i.start, i.stop - 1, j.start, j.stop - 1, k.start, k.stop - 1)
    image.SetImageToWorldMatrix(vtk_matrix(geometry.ijk_to_ras()))
    shape = [b.stop - b.start for b in box]
    scalars = vtk.vtkUnsignedCharArray()
    scalars.SetNumberOfTuples(int(np.prod(shape)))
    image.GetPointData().SetScalars(scalars)
    view = numpy_support.vtk_to_numpy(scalars).reshape(shape).view(bool)
    advise_huge_pages(view)
    return image, view


def oriented_image(mask: np.ndarray, geometry: Geometry, box=None):
    """``vtkOrientedImageData`` (unsigned char, owned by VTK) holding a copy of a KJI mask, or of
    its part inside ``box`` (KJI slices holding all its voxels) with that extent."""
    if mask.shape != geometry.shape:
        raise ParameterError(f"mask shape {mask.shape} does not match volume shape {geometry.shape}")
    image, view = new_labelmap(geometry, box)
    part = mask[box] if box else mask
    np.copyto(view, np.asarray(part) != 0 if part.dtype != bool else part)
    return image


def cropped(image, view: np.ndarray, geometry: Geometry, box):
    """The labelmap ``image`` (whose voxels ``view`` shows, on ``geometry``'s whole grid) cut to
    ``box`` when that is less than half of it: a compact result (bone, vessels) is then stored, and
    later merged by Slicer, cropped to its voxels, as Slicer stores edits."""
    if box is None or np.prod([b.stop - b.start for b in box]) > 0.5 * view.size:
        return image
    return oriented_image(view, geometry, box)


def set_reference_geometry(segmentation_node, reference) -> None:
    """Make ``reference`` (a volume node or a Geometry) the segmentation's reference image geometry."""
    slicer = _slicer()
    if isinstance(reference, Geometry):
        image = oriented_image(np.zeros((1, 1, 1), np.uint8), Geometry((1, 1, 1), (1, 1, 1), (0, 0, 0), np.eye(3)))
        image.SetDimensions(*reference.size)
        image.SetImageToWorldMatrix(vtk_matrix(reference.ijk_to_ras()))
        value = slicer.vtkSegmentationConverter.SerializeImageGeometry(image)
        segmentation_node.GetSegmentation().SetConversionParameter(
            slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName(), value)
    else:
        segmentation_node.SetReferenceImageGeometryParameterFromVolumeNode(reference)


def new_segmentation_node(name: str, reference):
    """New ``vtkMRMLSegmentationNode`` whose reference geometry is ``reference`` (volume node or Geometry).

    With a volume node it also references that node and sits beside it in the subject hierarchy (in
    its study when it came from DICOM), as Slicer's Segment Editor places segmentations
    (``vtkSlicerSegmentEditorLogic``): Slicer's DICOM SEG export needs both."""
    slicer = _slicer()
    node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", slicer.mrmlScene.GenerateUniqueName(name))
    node.CreateDefaultDisplayNodes()
    set_reference_geometry(node, reference)
    if not isinstance(reference, Geometry):
        node.SetNodeReferenceID(node.GetReferenceImageGeometryReferenceRole(), reference.GetID())
        sh = slicer.vtkMRMLSubjectHierarchyNode.GetSubjectHierarchyNode(slicer.mrmlScene)
        volume_item = sh.GetItemByDataNode(reference) if sh is not None else 0
        if volume_item:
            item = sh.GetItemByDataNode(node)
            if item:
                sh.SetItemParent(item, sh.GetItemParent(volume_item))
            else:                             # headless: no subject hierarchy logic made the item
                sh.CreateItem(sh.GetItemParent(volume_item), node)
    return node


def segment_id_by_name(segmentation_node, name: str):
    """ID of the segment called ``name``, or None."""
    segmentation = segmentation_node.GetSegmentation()
    for i in range(segmentation.GetNumberOfSegments()):
        if segmentation.GetNthSegment(i).GetName() == name:
            return segmentation.GetNthSegmentID(i)
    return None


def segment_names(segmentation_node) -> list:
    seg = segmentation_node.GetSegmentation()
    return [seg.GetNthSegment(i).GetName() for i in range(seg.GetNumberOfSegments())]


def write_segment(segmentation_node, mask: np.ndarray, geometry: Geometry, name: str, color=None,
                  replace: bool = False, terminology: str | None = None, labelmap=None, tags: dict | None = None) -> str:
    """Write a boolean KJI mask on ``geometry`` as the segment ``name``; returns its ID.

    A segment of that name that already exists is an error unless ``replace`` is set, in which
    case only its voxels change (its ID, colour and other segments stay).  ``terminology`` (Slicer's
    serialized entry) and ``tags`` (e.g. the DICOM algorithm tags) are set on the segment."""
    slicer = _slicer()
    segmentation = segmentation_node.GetSegmentation()
    segment_id = segment_id_by_name(segmentation_node, name)
    if segment_id is not None and not replace:
        raise ParameterError(f"segment '{name}' already exists in '{segmentation_node.GetName()}'; "
                             "choose another name or allow replacing it")
    if segment_id is None:
        n = segmentation.GetNumberOfSegments()
        color = color if color is not None else DEFAULT_COLORS[n % len(DEFAULT_COLORS)]
        segment_id = segmentation.AddEmptySegment(slicer.mrmlScene.GenerateUniqueName(name.replace(" ", "_")),
                                                  name, [float(c) for c in color])
    elif color is not None:
        segmentation.GetSegment(segment_id).SetColor(*[float(c) for c in color])
    if terminology:
        segmentation.GetSegment(segment_id).SetTag(segmentation.GetSegment(segment_id).GetTerminologyEntryTagName(),
                                                   terminology)
    for key, value in (tags or {}).items():
        segmentation.GetSegment(segment_id).SetTag(key, str(value))
    if labelmap is None:
        labelmap = oriented_image(mask, geometry)
    _set_segment_labelmap(segmentation_node, segment_id, labelmap)
    return segment_id


def _set_segment_labelmap(segmentation_node, segment_id: str, labelmap) -> None:
    """Give one segment a new binary labelmap (its own layer) keeping its ID, position, name,
    colour and tags.  Done as Slicer's segmentation does it, by removing and re-adding the
    segment, so the shared layers of other segments are never written to."""
    slicer = _slicer()
    segmentation = segmentation_node.GetSegmentation()
    old = segmentation.GetSegment(segment_id)
    index = segmentation.GetSegmentIndex(segment_id)
    following = segmentation.GetNthSegmentID(index + 1) if index + 1 < segmentation.GetNumberOfSegments() else ""
    segment = slicer.vtkSegment()
    segment.DeepCopyMetadata(old)
    segment.SetLabelValue(1)
    segment.AddRepresentation(slicer.vtkSegmentationConverter.GetBinaryLabelmapRepresentationName(), labelmap)
    segmentation.RemoveSegment(segment_id)
    if not segmentation.AddSegment(segment, segment_id, following):
        raise ParameterError(f"could not write segment '{old.GetName()}' into '{segmentation_node.GetName()}'")


def write_label_segments(segmentation_node, labelmap: np.ndarray, geometry: Geometry, labels,
                         replace: bool = False, tags: dict | None = None) -> list:
    """Write each label of an integer KJI ``labelmap`` as its own segment.  ``labels`` is a list of
    (value, name, color) and may include terminology as a 4th item; ``tags`` go on every segment.
    Existing segments of those names are errors unless ``replace``; checked for all labels before
    anything is written."""
    if not replace:
        clash = [lab[1] for lab in labels if segment_id_by_name(segmentation_node, lab[1]) is not None]
        if clash:
            raise ParameterError(f"segment(s) {', '.join(clash)} already exist in '{segmentation_node.GetName()}'")
    ids = []
    for lab in labels:
        value, name, color = lab[:3]
        term = lab[3] if len(lab) > 3 else None
        ids.append(write_segment(segmentation_node, labelmap == value, geometry, name, color, replace, term,
                                 tags=tags))
    return ids


def segment_array(segmentation_node, segment_id: str, reference) -> np.ndarray:
    """Boolean KJI mask of a segment on the grid of ``reference`` (volume node or Geometry)."""
    slicer = _slicer()
    if segmentation_node.GetSegmentation().GetSegment(segment_id) is None:
        raise ParameterError(f"no segment with ID '{segment_id}' in '{segmentation_node.GetName()}'; "
                             f"segments: {', '.join(segment_names(segmentation_node))}")
    if isinstance(reference, Geometry):
        ref_node = add_volume_node(np.zeros(reference.shape, np.uint8), reference, "__medseg_reference__")
        try:
            return slicer.util.arrayFromSegmentBinaryLabelmap(segmentation_node, segment_id, ref_node) > 0
        finally:
            slicer.mrmlScene.RemoveNode(ref_node)
    return slicer.util.arrayFromSegmentBinaryLabelmap(segmentation_node, segment_id, reference) > 0


def segment_arrays(segmentation_node, reference) -> dict:
    """{segment name: boolean KJI mask} for every segment, on the grid of ``reference``."""
    seg = segmentation_node.GetSegmentation()
    return {seg.GetNthSegment(i).GetName(): segment_array(segmentation_node, seg.GetNthSegmentID(i), reference)
            for i in range(seg.GetNumberOfSegments())}


def reference_geometry(segmentation_node) -> Geometry:
    """The segmentation's reference image geometry (the grid it was made on)."""
    slicer = _slicer()
    value = segmentation_node.GetSegmentation().GetConversionParameter(
        slicer.vtkSegmentationConverter.GetReferenceImageGeometryParameterName())
    image = slicer.vtkOrientedImageData()
    if not value or not slicer.vtkSegmentationConverter.DeserializeImageGeometry(value, image):
        raise InputError(f"segmentation '{segmentation_node.GetName()}' has no reference geometry")
    import vtk
    m = vtk.vtkMatrix4x4()
    image.GetImageToWorldMatrix(m)
    return Geometry.from_ijk_to_ras(np.array([[m.GetElement(r, c) for c in range(4)] for r in range(4)]),
                                    image.GetDimensions())


def save_segmentation(segmentation_node, path: str) -> None:
    """Write ``.seg.nrrd`` with Slicer's segmentation storage node, atomically."""
    slicer = _slicer()
    if io.extension(path) != ".seg.nrrd":
        raise InputError(f"{path}: segmentation files must end in .seg.nrrd")
    with io.atomic_path(path) as tmp, io.captured_stderr():      # verified before the rename
        storage = slicer.vtkMRMLSegmentationStorageNode()
        storage.SetFileName(tmp)
        storage.SetUseCompression(True)
        if not storage.WriteData(segmentation_node):
            raise RuntimeError("Slicer's segmentation writer failed")     # atomic_path: disk full or this


def load_segmentation(path: str, name: str | None = None):
    """Read a ``.seg.nrrd`` (or labelmap file) into a new segmentation node with Slicer's storage node."""
    import os

    from ..image import validate

    slicer = _slicer()
    if not os.path.isfile(path):
        raise InputError(f"{path}: no such file")
    validate.check_image_file(path)     # teem aborts the process on a truncated or lying file: check first
    node = slicer.mrmlScene.AddNewNodeByClass("vtkMRMLSegmentationNode", name or os.path.basename(path).split(".")[0])
    storage = slicer.vtkMRMLSegmentationStorageNode()
    storage.SetFileName(str(path))
    with io.captured_stderr():
        ok = storage.ReadData(node)
    if not ok or node.GetSegmentation().GetNumberOfSegments() == 0:
        slicer.mrmlScene.RemoveNode(node)
        raise InputError(f"{path}: not a readable segmentation file (or it has no segments)")
    node.CreateDefaultDisplayNodes()
    return node
