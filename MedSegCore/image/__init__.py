"""Images: reading and writing volumes with their geometry (NIfTI, NRRD, MHA, DICOM series), the one
LPS/RAS geometry convention, and resampling between grids.

The engine's entry point: a file becomes ``(array, Geometry)`` here.  May import numpy, SimpleITK,
pydicom and ``MedSegCore.errors`` only; never ``slicer``/``vtk`` or ``MedSegCore.mrml``.
"""
