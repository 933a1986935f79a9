"""MedSegCore: the logic layer shared by the MedSegThreshold and MedSegDNN Slicer modules and the
``medseg`` command line.  Qt-free; torch and MONAI are imported only by the ``dnn`` subpackage,
when a deep-learning feature is used.

One path: file -> ``image`` (array, Geometry) -> engine -> ``mrml`` (segments, ``.seg.nrrd``).

Layout (each folder's ``__init__`` says what it may import):
  image/       reading/writing volumes (validated, atomic), the LPS/RAS geometry, resampling
  threshold/   threshold engine, automatic methods, histograms, presets, clean-up, preview maths
  evaluation/  metrics, label inputs and matching, overlays, the HTML report
  dnn/         deep learning: model cards, loading, preprocessing, sliding-window inference, batches
  train/       training U-Nets
  mrml/        the Slicer adapter, the only folder importing ``slicer``/VTK: nodes, the headless
               scene, Segment Editor apply, segment operations, tables, predictions, training cases
  cli/         the ``medseg`` command line
  catalog/     the model catalogue: verified downloads, safe unzip, the model store
  errors.py (the error classes every entry point reports as one line), sample.py (the MNI152 demo
  sample from nilearn), terminology.py (DICOM codes, Slicer's terminology strings), home.py
  ($MEDSEG_HOME).
The engine folders never import ``mrml``; ``Testing/test_architecture.py`` enforces it.
"""
__version__ = "0.1.0"

from .errors import (CancelledError, EmptyResultError, InputError, MedSegError,  # noqa: F401
                     ParameterError)
from .image.geometry import Geometry  # noqa: F401
