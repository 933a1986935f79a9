"""Images: reading and writing volumes with their geometry (NIfTI, NRRD, MHA, DICOM series), the one
LPS/RAS geometry convention, resampling between grids, and DICOM SEG files on a series
(``dicom_source``: the series' instances per slice; ``dicom_seg``: writing and reading with highdicom).

The engine's entry point: a file becomes ``(array, Geometry)`` here.  May import numpy, SimpleITK,
pydicom, highdicom (optional, DICOM SEG only), ``MedSegCore.errors`` and ``MedSegCore.terminology``
only; never ``slicer``/``vtk`` or ``MedSegCore.mrml``.
"""
