"""Evaluation engine: per-segment overlap, volume and surface-distance metrics (``metrics``), label
inputs brought onto one grid and matched (``labels``), overlay images (``overlay``) and the
self-contained HTML report (``report``).

May import ``MedSegCore.errors`` and ``MedSegCore.image``; never ``slicer``/``vtk`` or
``MedSegCore.mrml`` (reading ``.seg.nrrd`` files and metrics tables in the scene live in ``mrml``).
"""
