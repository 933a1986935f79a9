"""pytest set-up: start the headless Slicer harness once, give each test a clean scene."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import slicer_harness  # noqa: E402

slicer_harness.install()


@pytest.fixture(autouse=True)
def _clean_scene():
    """Each test starts from an empty scene, as after File > Close Scene."""
    import slicer
    slicer.mrmlScene.Clear(False)
    yield
    slicer.mrmlScene.Clear(False)
