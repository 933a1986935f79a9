"""MONAI bundles through MedSeg give what MONAI's own runner gives.

For each test bundle (the transform chains of real Model Zoo bundles, see bundle_factory) MONAI's
``ConfigWorkflow`` runs the bundle on a NIfTI file (oblique, anisotropic, LPS) and writes its NIfTI
with the bundle's own ``SaveImaged``; ``medseg predict`` runs the same bundle, weights and file.
Both label maps are read with nibabel: same grid (1e-4 mm) and >= 99.99 % equal voxels, with MedSeg's
default backend (auto: the windows of every test bundle's SlidingWindowInferer through OpenVINO, or ONNX
Runtime, when installed; the test checks the export is beside the bundle) and with ``--backend torch``.
"""
import os

import nibabel as nib
import numpy as np
import pytest

import bundle_factory as bf
from MedSegCore.cli import main
from MedSegCore.dnn import backends
from MedSegCore.image import io

SINGLE = ["spleen", "wholebody", "prostate", "pancreas", "renal", "wholebrain", "many_labels"]
MR = ("brats", "prostate", "wholebrain")


DEFAULT = backends.resolve("auto", "cpu")            # what auto runs a bundle's windows on here


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSEG_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MEDSEG_TRUST_BUNDLES", raising=False)


def _check_backend(err, folder, backend):
    """The run said which backend ran the windows, and an exported one left its export in the bundle."""
    used = DEFAULT if backend == "auto" else backend
    assert f"backend: {used}\n" in err and "export failed" not in err, err
    cache = os.path.join(folder, ".medseg-cache")
    exported = sorted(os.listdir(cache)) if os.path.isdir(cache) else []
    suffix = {"openvino": ".xml", "onnxruntime": ".onnx"}.get(used)
    assert (suffix is None) == (not exported), exported
    assert suffix is None or any(f.endswith(suffix) for f in exported), exported


def _inputs(folder, kind, names=("",)):
    geometry = bf.lps_oblique_geometry()
    assert geometry.axis_codes() == "LPS" and geometry.is_oblique() and len(set(geometry.spacing)) == 3
    paths = []
    for c, name in enumerate(names):
        path = os.path.join(folder, f"case{name}.nii.gz")
        io.write_volume(bf.test_volume(geometry, seed=c, offset=1100 if kind in MR else 0), geometry, path)
        paths.append(path)
    return paths


def _compare(reference, labelmap, kind):
    ref, got = nib.load(reference), nib.load(labelmap)
    ref_data = np.asarray(ref.dataobj).reshape(got.shape) if np.asarray(ref.dataobj).size == np.prod(got.shape) \
        else np.asarray(ref.dataobj)
    assert ref_data.shape == got.shape
    assert np.allclose(ref.affine, got.affine, atol=1e-4)
    got_data = np.asarray(got.dataobj)
    keep = np.ones(ref_data.shape, bool)
    if kind == "prostate":
        # The real bundle maps its argmax back with a *linear* Invertd, so MONAI's own file holds fractional
        # labels (1.9999998, 0.5000003); a label map takes the nearest label.  Voxels exactly between two
        # labels (x.5 within 1e-4) are a tie in MONAI's own output that float noise of 1e-7 in the affine
        # (nibabel reads the sform, MedSeg SimpleITK's qform) decides either way; they are left out.
        keep = np.abs(ref_data - np.floor(ref_data) - 0.5) > 1e-4
        assert keep.mean() > 0.95
        ref_data = np.rint(ref_data)
    equal = float(np.mean(ref_data[keep] == got_data[keep]))
    assert equal >= 0.9999, f"{kind}: only {equal:.4%} of voxels equal MONAI's"
    return ref_data, got_data


@pytest.mark.parametrize("backend", ["auto", "torch"])
@pytest.mark.parametrize("kind", SINGLE)
def test_single_channel_bundles_equal_configworkflow(kind, backend, tmp_path, capsys):
    folder = bf.write_bundle(tmp_path / "bundles", kind, seed=3)
    (path,) = _inputs(str(tmp_path), kind)
    reference = bf.run_monai(folder, path, str(tmp_path / "monai"), kind)
    out = tmp_path / "medseg"
    capsys.readouterr()
    assert main(["predict", path, "-o", str(out), "--model", folder, "--trust-bundle", "--labelmap",
                 "--backend", backend]) == 0
    _check_backend(capsys.readouterr().err, folder, backend)
    ref, got = _compare(reference, str(out / "case.nii.gz"), kind)
    classes = bf.KINDS[kind]()[1]["network_data_format"]["outputs"]["pred"]["num_channels"]
    assert len(np.unique(ref)) == classes, "the test bundle must produce every class"
    if kind == "many_labels":
        assert got.dtype == np.uint16 and set(np.unique(got)) == {0, 301, 302, 303}
    header = (out / "case.seg.nrrd").read_bytes()[:20000].decode("latin-1")
    names = bf.KINDS[kind]()[1]["network_data_format"]["outputs"]["pred"]["channel_def"]
    for name in list(names.values())[1:]:
        assert f"_Name:={name}\n" in header


def test_brats_channels_matched_by_name_and_labels_1_2_4(tmp_path, capsys):
    folder = bf.write_bundle(tmp_path / "bundles", "brats", seed=5)
    os.makedirs(tmp_path / "in")
    paths = _inputs(str(tmp_path / "in"), "brats", ["_t1c", "_t1", "_t2", "_flair"])
    reference = bf.run_monai(folder, paths, str(tmp_path / "monai"), "brats")
    out = tmp_path / "medseg"
    # channel_def order is T1c, T1, T2, FLAIR; the pairs are given in another order on purpose
    assert main(["predict", str(tmp_path / "in"), "-o", str(out), "--model", folder, "--trust-bundle",
                 "--labelmap", "--channels", "FLAIR=_flair,T1=_t1,T1c=_t1c,T2=_t2"]) == 0
    _check_backend(capsys.readouterr().err, folder, "auto")
    ref, got = _compare(reference, str(out / "case.nii.gz"), "brats")
    assert set(np.unique(ref)) == {0, 1, 2, 4}
    header = (out / "case.seg.nrrd").read_bytes()[:20000].decode("latin-1")
    for i, name in enumerate(["Tumor core", "Whole tumor", "Enhancing tumor"]):
        assert f"Segment{i}_Name:={name}\n" in header


def test_bundle_on_a_slicer_volume_node_equals_configworkflow(tmp_path):
    """The data source may be a Slicer node: its voxels and IJK-to-RAS go in, nothing is read from disk."""
    from MedSegCore.dnn import PredictOptions, predict
    from MedSegCore.dnn.bundle import load_bundle
    from MedSegCore.mrml import nodes

    folder = bf.write_bundle(tmp_path / "bundles", "spleen", seed=11)
    (path,) = _inputs(str(tmp_path), "spleen")
    reference = bf.run_monai(folder, path, str(tmp_path / "monai"), "spleen")
    array, geometry = io.read_volume(path)
    node = nodes.add_volume_node(array, geometry, "CT")
    model = load_bundle(folder, "cpu", trust=True)
    result = predict([nodes.volume_array(node)], model, PredictOptions(device="cpu", probabilities=True))
    assert f"({DEFAULT})" in result.messages[0]                      # the panel's default backend
    assert result.geometry is None                                   # on the node's own grid
    ref = np.asarray(nib.load(reference).dataobj)
    assert np.mean(ref == result.labelmap.transpose(2, 1, 0)) >= 0.9999
    assert [lab.name for lab in result.labels] == ["spleen"]
    # probabilities: the bundle's softmax after its Invertd, just before its argmax
    assert np.mean((result.probabilities["spleen"] > 0.5) == (result.labelmap == 1)) >= 0.9999
