"""MedSegCore: the logic layer shared by the MedSegThreshold and MedSegDNN Slicer modules and the
``medseg`` command line.  Qt-free; torch and MONAI are imported only by the ``dnn`` subpackage,
when a deep-learning feature is used.

Layout:  geometry (RAS grids, the LPS/RAS pair), io (validated reading, atomic writing),
headless (a Slicer scene outside Slicer), mrml (volume/segmentation node adapters),
threshold/presets/autothreshold/cleanup (classical segmentation), segment_ops (node-level
operations), metrics/report (evaluation), dnn (deep learning), cli (``medseg``).
"""
__version__ = "0.1.0"

from .errors import (CancelledError, EmptyResultError, InputError, MedSegError,  # noqa: F401
                     ParameterError)
from .geometry import Geometry  # noqa: F401
