"""Helpers of the model catalogue tests: a private $MEDSEG_HOME, model zips, catalogue entries."""
import hashlib
import io as _bytesio
import json
import stat
import zipfile
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """A private $MEDSEG_HOME and no proxy from the environment (unless a test sets one)."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
                "no_proxy", "NO_PROXY", "MEDSEG_CATALOG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("MEDSEG_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def zip_bytes(files: dict, links=()) -> bytes:
    """A zip of {name: bytes}, plus symbolic-link entries ``links`` [(name, target)]."""
    buf = _bytesio.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
        for name, target in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, target)
    return buf.getvalue()


def card_model_zip(tmp_path, top="thresh_v1.0") -> bytes:
    """A card+weights model (the deterministic threshold network of test_predict_cli) zipped under ``top/``."""
    from test_predict_cli import threshold_model

    folder = Path(threshold_model(tmp_path / "src_model"))
    return zip_bytes({f"{top}/{p.name}": p.read_bytes() for p in folder.iterdir()})


def entry(name, url, data, **over) -> dict:
    e = {"name": name, "version": "1.0", "url": url, "sha256": hashlib.sha256(data).hexdigest(),
         "size_bytes": len(data), "license": "Apache-2.0", "description": "test model", "modality": "CT"}
    e.update(over)
    return e


def use_catalog(tmp_path, monkeypatch, *models) -> Path:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({"catalog_version": 1, "models": list(models)}), encoding="utf-8")
    monkeypatch.setenv("MEDSEG_CATALOG", str(path))
    return path


def assert_nothing_installed(home):
    store_dir = home / "models"
    left = sorted(p.name for p in store_dir.iterdir()) if store_dir.is_dir() else []
    assert left == [], f"the store should be empty, has {left}"


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    return err[-1]
