"""Model catalogue: the shipped catalogue and its schema, install by name from a loopback HTTP server,
predict by name (compared with the same model given by path), offline import, the panel's rows."""
import hashlib
import json
import os
from pathlib import Path

import pytest

from catalog_helpers import (assert_nothing_installed, card_model_zip, entry, error_line, home,  # noqa: F401
                             use_catalog, zip_bytes)
from loopback_http import LoopbackServer, closed_port
from MedSegCore import catalog
from MedSegCore.catalog import entries
from MedSegCore.cli import main
from MedSegCore.errors import InputError

ZOO = ["spleen_ct_segmentation", "wholeBody_ct_segmentation", "brats_mri_segmentation", "prostate_mri_anatomy",
       "pancreas_ct_dints_segmentation", "renalStructures_UNEST_segmentation",
       "wholeBrainSeg_Large_UNEST_segmentation"]


def test_shipped_catalogue_lists_model_zoo_bundles_and_the_bundled_model():
    cat = catalog.load_catalog(str(entries.SHIPPED))
    assert set(ZOO) <= set(cat.names())
    for name in ZOO:
        e = cat.get(name)
        # Model Zoo's published location (models/model_info.json "source") and its SHA-1 ("checksum")
        assert e.url.startswith("https://api.ngc.nvidia.com/v2/models/nvidia/monaihosting/")
        assert e.url.endswith(f"/versions/{e.version}/files/{name}_v{e.version}.zip")
        assert len(e.published_checksums["sha1"]) == 40 and e.license and e.description and e.labels
    demo = cat.get("medseg_brain_tissue")
    weights = Path(catalog.store.__file__).parents[1] / "models" / "default" / "model.pt"
    assert demo.bundled and demo.size_bytes == weights.stat().st_size
    assert demo.sha256 == hashlib.sha256(weights.read_bytes()).hexdigest(), \
        "the bundled model changed: update medseg_brain_tissue's sha256/size_bytes in catalog.json"
    assert cat.get("brats_mri_segmentation").input_channels == ("T1c", "T1", "T2", "FLAIR")
    assert len(cat.get("wholeBody_ct_segmentation").labels) == 104


@pytest.mark.parametrize("change, message", [
    (lambda m: m.pop("sha256"), "sha256: required field is missing"),
    (lambda m: m.update(url="ftp://x/y.zip"), "does not match the pattern"),
    (lambda m: m.update(sha256=None), "needs sha256 or published_checksums"),
    (lambda m: m.update(size_bytes=-1), "less than the minimum"),
])
def test_catalogue_schema_errors_are_one_line(change, message):
    m = entry("x", "https://example.invalid/x.zip", b"x")
    change(m)
    with pytest.raises(InputError, match=message) as info:
        catalog.parse_catalog(json.dumps({"catalog_version": 1, "models": [m]}), "test")
    assert "\n" not in str(info.value)
    twice = json.dumps({"catalog_version": 1, "models": [entry("a", "https://e.invalid/a", b"a")] * 2})
    with pytest.raises(InputError, match="appears twice"):
        catalog.parse_catalog(twice, "test")


def test_catalogue_from_url_and_list(tmp_path, monkeypatch, capsys):
    data = card_model_zip(tmp_path)
    text = json.dumps({"catalog_version": 1, "models": [entry("thresh", "http://127.0.0.1:9/x.zip", data)]})
    with LoopbackServer({"/catalog.json": text.encode()}) as srv:
        monkeypatch.setenv("MEDSEG_CATALOG", srv.url("/catalog.json"))
        assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "thresh" in out and "Apache-2.0" in out and srv.url("/catalog.json") in out


def test_install_then_predict_by_name_equals_the_model_by_path(tmp_path, monkeypatch, capsys):
    from MedSegCore.image import io
    from test_predict_cli import OBLIQUE, expected, phantom

    data = card_model_zip(tmp_path)
    with LoopbackServer({"/thresh.zip": data}) as srv:
        use_catalog(tmp_path, monkeypatch, entry("thresh", srv.url("/thresh.zip"), data))
        assert main(["models", "install", "thresh"]) == 0
    err = capsys.readouterr().err
    assert "installed thresh 1.0" in err and "size and SHA-256 from the catalogue" in err
    model = catalog.find_installed("thresh")
    assert model.path == tmp_path / "home" / "models" / "thresh" / "model"
    assert model.record["sha256"] == hashlib.sha256(data).hexdigest() and model.record["kind"] == "model-card"
    assert not any((tmp_path / "home" / "downloads").iterdir()), "the verified download is deleted once installed"
    assert main(["models", "install", "thresh"]) == 0
    assert "already installed" in capsys.readouterr().err

    image = phantom(OBLIQUE)
    io.write_volume(image, OBLIQUE, str(tmp_path / "case.nii.gz"))
    assert main(["predict", str(tmp_path / "case.nii.gz"), "-o", str(tmp_path / "by_name"),
                 "--model", "thresh", "--labelmap"]) == 0
    assert main(["predict", str(tmp_path / "case.nii.gz"), "-o", str(tmp_path / "by_path"),
                 "--model", str(tmp_path / "src_model"), "--labelmap"]) == 0
    by_name, geometry = io.read_volume(str(tmp_path / "by_name" / "case.nii.gz"))
    by_path, _ = io.read_volume(str(tmp_path / "by_path" / "case.nii.gz"))
    assert (by_name == by_path).all() and (by_name == expected(image)).all()
    assert main(["models", "list", "--installed"]) == 0
    assert "thresh" in capsys.readouterr().out
    assert main(["models", "remove", "thresh"]) == 0
    assert catalog.find_installed("thresh") is None and not (tmp_path / "home" / "models" / "thresh").exists()


def test_model_names_resolve_or_say_how(tmp_path, monkeypatch, capsys):
    from MedSegCore.image import io
    from test_predict_cli import OBLIQUE, phantom

    assert catalog.resolve_model("medseg_brain_tissue") == "default"      # shipped catalogue: the bundled model
    assert catalog.resolve_model(str(tmp_path)) == str(tmp_path)
    io.write_volume(phantom(OBLIQUE), OBLIQUE, str(tmp_path / "case.nii.gz"))
    use_catalog(tmp_path, monkeypatch, entry("thresh", "http://127.0.0.1:9/t.zip", b"z"))
    assert main(["predict", str(tmp_path / "case.nii.gz"), "-o", str(tmp_path / "o"), "--model", "thresh"]) == 2
    assert "not installed: run 'medseg models install thresh'" in error_line(capsys)
    assert main(["predict", str(tmp_path / "case.nii.gz"), "-o", str(tmp_path / "o"), "--model", "nosuch"]) == 2
    assert "nor an installed or catalogue model" in error_line(capsys)
    assert not (tmp_path / "o").exists()


def test_model_zoo_layout_bundle_installs_with_its_top_folder(tmp_path, monkeypatch):
    files = {"spleen_like/configs/inference.json": b'{"network_def": {}}',
             "spleen_like/configs/metadata.json": b'{"version": "0.5.9"}',
             "spleen_like/models/model.pt": os.urandom(3000), "spleen_like/docs/README.md": b"readme"}
    data = zip_bytes(files)
    with LoopbackServer({"/spleen_like_v0.5.9.zip": data}) as srv:
        use_catalog(tmp_path, monkeypatch, entry("spleen_like", srv.url("/spleen_like_v0.5.9.zip"), data))
        model = catalog.install("spleen_like").model
    assert model.record["kind"] == "monai-bundle"
    assert sorted(str(p.relative_to(model.path)) for p in model.path.rglob("*") if p.is_file()) == \
        ["configs/inference.json", "configs/metadata.json", "docs/README.md", "models/model.pt"]
    assert (model.path / "models" / "model.pt").read_bytes() == files["spleen_like/models/model.pt"]
    assert catalog.resolve_model("spleen_like") == str(model.path)


def test_offline_import_of_zip_and_folder(tmp_path, monkeypatch, capsys, home):
    data = card_model_zip(tmp_path)
    (tmp_path / "thresh_v1.0.zip").write_bytes(data)
    # a catalogue at an unreachable URL must not stop an offline import
    monkeypatch.setenv("MEDSEG_CATALOG", f"http://127.0.0.1:{closed_port()}/catalog.json")
    assert main(["models", "import", str(tmp_path / "thresh_v1.0.zip")]) == 0
    assert "unverified local import" in capsys.readouterr().err
    assert catalog.find_installed("thresh").record["sha256"] == hashlib.sha256(data).hexdigest()
    assert main(["models", "import", str(tmp_path / "src_model"), "--name", "thresh_folder"]) == 0
    assert (home / "models" / "thresh_folder" / "model" / "card.json").is_file()
    assert main(["models", "import", str(tmp_path / "thresh_v1.0.zip")]) == 2
    assert "installed already; pass --force" in error_line(capsys)


def test_offline_import_matches_the_catalogue_by_checksum(tmp_path, monkeypatch, capsys, home):
    data = card_model_zip(tmp_path)
    (tmp_path / "downloaded.zip").write_bytes(data)
    changed = bytearray(data)
    changed[len(data) // 3] ^= 0x01
    (tmp_path / "thresh_v1.0.zip").write_bytes(bytes(changed))
    use_catalog(tmp_path, monkeypatch, entry("thresh", f"http://127.0.0.1:{closed_port()}/t.zip", data,
                                             version="2.5"))
    assert main(["models", "import", str(tmp_path / "downloaded.zip")]) == 0
    assert "matches the catalogue entry thresh 2.5" in capsys.readouterr().err
    assert catalog.find_installed("thresh").version == "2.5"
    assert main(["models", "import", str(tmp_path / "thresh_v1.0.zip"), "--force"]) == 2
    assert "not verified as the catalogue's thresh" in error_line(capsys)
    assert catalog.find_installed("thresh").record["checked"].startswith("matches the catalogue")


def test_import_refuses_what_is_not_a_model(tmp_path, capsys, home):
    (tmp_path / "notes.zip").write_bytes(zip_bytes({"notes/readme.txt": b"hello"}))
    assert main(["models", "import", str(tmp_path / "notes.zip")]) == 2
    assert "holds no model" in error_line(capsys)
    assert main(["models", "import", str(tmp_path / "missing.zip")]) == 2
    assert "no such file or folder" in error_line(capsys)
    assert_nothing_installed(home)


def test_panel_rows_show_licence_size_and_state(tmp_path, monkeypatch, home):
    from MedSegCore.catalog import panel

    data = card_model_zip(tmp_path)
    (tmp_path / "mine.zip").write_bytes(data)
    catalog.import_model(tmp_path / "mine.zip", name="mine")
    rows, problem = panel.rows(catalog.load_catalog(str(entries.SHIPPED)))
    assert problem is None
    by_name = {r.name: r for r in rows}
    spleen = by_name["spleen_ct_segmentation"]
    assert "not installed" in spleen.text and spleen.installable and not spleen.installed
    assert "Licence: Apache-2.0" in spleen.details and "Labels: spleen" in spleen.details
    assert by_name["medseg_brain_tissue"].installed and "830.0 KB" not in by_name["medseg_brain_tissue"].details
    assert "0.8 MB" in by_name["medseg_brain_tissue"].details
    assert by_name["mine"].installed and "Press Install" not in panel.describe(by_name["mine"])
    monkeypatch.setenv("MEDSEG_CATALOG", f"http://127.0.0.1:{closed_port()}/c.json")
    rows, problem = panel.rows()
    assert [r.name for r in rows] == ["mine"] and "installed models still work" in problem


def test_plain_http_catalogue_refused_except_on_loopback(monkeypatch):
    monkeypatch.setenv("MEDSEG_CATALOG", "http://mirror.example.org/catalog.json")
    with pytest.raises(InputError, match="must come over https"):
        catalog.load_catalog()


def test_slicer_logic_installs_in_background_and_selects_by_name(tmp_path, monkeypatch, home):
    """What MedSegDNN's panel calls: the catalogue rows, an install in a child process, the model by name."""
    from types import SimpleNamespace

    import slicer_harness

    slicer_harness.load_module("MedSegDNN")
    from MedSegDNN import MedSegDNNLogic

    data = card_model_zip(tmp_path)
    with LoopbackServer({"/thresh.zip": data}) as srv:
        use_catalog(tmp_path, monkeypatch, entry("thresh", srv.url("/thresh.zip"), data))
        rows, problem = MedSegDNNLogic.catalogRows()
        assert problem is None and [(r.name, r.installable) for r in rows] == [("thresh", True)]
        node = SimpleNamespace(modelSource="catalogue", catalogModel="thresh", modelPath="")
        with pytest.raises(InputError, match="not installed"):
            MedSegDNNLogic.modelFromNode(node)
        run = MedSegDNNLogic.startModelInstall("thresh")
        run.wait(timeout=120)
    assert run.error is None and run.progress == 1.0
    assert MedSegDNNLogic.modelFromNode(node) == str(home / "models" / "thresh" / "model")
    rows, _ = MedSegDNNLogic.catalogRows()
    assert rows[0].installed and not rows[0].installable and "installed 1.0" in rows[0].text
