"""Without ONNX Runtime, OpenVINO and onnx (the optional 'fast' extra): 'auto' runs on PyTorch,
``medseg predict`` works and gives the same segmentation, and naming a missing runtime is one line."""
import subprocess
import sys

from MedSegCore.image import io
from test_predict_cli import LPS, check_seg, phantom, threshold_model
from test_without_torch import ROOT

BLOCK = ("import sys\nfor name in ('onnxruntime', 'openvino', 'onnx'):\n    sys.modules[name] = None\n"
         f"sys.path[:0] = [{ROOT!r}, {ROOT + '/Testing'!r}]\n")


def test_predict_without_runtimes(tmp_path):
    io.write_volume(phantom(LPS), LPS, str(tmp_path / "a.nrrd"))
    model = threshold_model(tmp_path / "model")
    code = (BLOCK + "from MedSegCore.dnn import backends\n"
            "assert backends.available() == ['torch'], backends.available()\n"
            "assert backends.resolve('auto', 'cpu') == 'torch'\n"
            "from MedSegCore.cli import main\n"
            f"assert main(['predict', 'a.nrrd', '-o', 'out', '--model', {model!r}]) == 0\n"
            "assert 'onnxruntime' not in sys.modules or sys.modules['onnxruntime'] is None\n"
            f"sys.exit(main(['predict', 'a.nrrd', '-o', 'out2', '--model', {model!r}, '--backend', 'onnxruntime']))\n")
    (tmp_path / "blocked.py").write_text(code, encoding="utf-8")
    result = subprocess.run([sys.executable, "blocked.py"], capture_output=True, text=True, cwd=str(tmp_path),
                            timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "backend: torch" in result.stderr, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if "not installed" in line]
    assert errors == ["medseg predict: error: backend 'onnxruntime' is not installed: pip install 'medseg[fast]' "
                      "(or choose 'auto' or 'torch')"], result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    check_seg(tmp_path / "out" / "a.seg.nrrd", LPS, phantom(LPS))
