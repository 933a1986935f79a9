"""The Slicer adapter: the ONLY part of MedSegCore that imports ``slicer`` or VTK.

It turns the engine's ``(array, Geometry)`` into MRML nodes and back: volume and segmentation nodes
and ``.seg.nrrd`` files (``nodes``, ``label_files``), the headless scene of slicer-core (``scene``),
the Segment Editor targets and apply path (``editor_targets``, ``editor_apply``), threshold results
as segments (``segment_ops``), the preview's slice reslicing and actors (``reslice``), metrics tables
(``evaluation_tables``), network results as segments (``predictions``), training cases from the
scene (``training_cases``), segmentations as DICOM SEG files (``dicom_export``) and installing
PyTorch inside Slicer (``torch_install``).

May import the engine (``image``, ``threshold``, ``evaluation``, ``dnn``, ``train``); the engine
never imports this package at module level (``dnn``/``train`` drivers import it inside the functions
that write segmentations).  ``Testing/test_architecture.py`` enforces it.
"""
