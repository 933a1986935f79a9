"""Without torch and MONAI: MedSegCore imports, the threshold path and `medseg` work, and both Slicer
modules load (deep-learning features are installed on first use, never at import)."""
import os
import subprocess
import sys

import numpy as np

from MedSegCore.image import io
from synthetic import lps_geometry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCK = "import sys\nfor name in ('torch', 'monai'):\n    sys.modules[name] = None   # import now raises ImportError\n"


def run_blocked(code: str, tmp_path) -> subprocess.CompletedProcess:
    script = tmp_path / "blocked.py"
    script.write_text(BLOCK + f"sys.path[:0] = [{ROOT!r}, {os.path.join(ROOT, 'Testing')!r}]\n" + code,
                      encoding="utf-8")
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, encoding="utf-8",
                          cwd=str(tmp_path), timeout=300)


def test_threshold_cli_and_modules_without_torch(tmp_path):
    g = lps_geometry((20, 16, 8))
    array = np.zeros(g.shape, np.int16)
    array[2:6, 4:12, 5:15] = 500
    io.write_volume(array, g, str(tmp_path / "ct.nrrd"))
    result = run_blocked(
        "from MedSegCore.cli import main\n"
        "assert main(['threshold', 'ct.nrrd', '-o', 'out.seg.nrrd', '--lower', '100']) == 0\n"
        "import slicer_harness\n"
        "slicer_harness.load_module('MedSegThreshold')\n"
        "slicer_harness.load_module('MedSegDNN')\n"
        "from MedSegCore.dnn import dependencies\n"
        "status = dependencies.status()\n"
        "assert status.torch is None and not status.ready, status\n"
        "print(status.message())\n"
        "assert 'torch' not in sys.modules or sys.modules['torch'] is None\n", tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "PyTorch is not installed: it will be installed (with your confirmation) on first use." in result.stdout
    assert (tmp_path / "out.seg.nrrd").is_file()
    result = run_blocked("from MedSegCore.cli import main\nsys.exit(main(['predict', 'ct.nrrd', '-o', 'p']))\n",
                         tmp_path)
    assert result.returncode == 2 and "PyTorch" in result.stderr, result.stderr[-2000:]
