"""Threshold engine: range thresholding of a volume array (``engine``), automatic methods and
multi-Otsu (``autothreshold``) from one histogram pass (``histogram``), CT/MRI presets, clean-up
(islands, holes) and the maths of the live slice preview (``preview``).

Pure numpy/SciPy (SimpleITK only as a reference in tests).  May import ``MedSegCore.errors`` and
``MedSegCore.image``; never ``slicer``/``vtk`` or ``MedSegCore.mrml`` (the adapters import this).
"""
