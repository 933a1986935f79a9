"""Benchmark: installing a 128 MB model zip from a loopback HTTP server, verified vs unverified.

Project: ``MedSegCore.catalog.install`` (streamed download with progress, size and SHA-256 check,
member-by-member checked unpacking, staging folder renamed into the store).  Baseline: what MONAI's
``download_url`` + ``extractall`` and the peers do, without any check: ``urllib.request.urlretrieve``
then ``zipfile.ZipFile.extractall``, same file, same server, same disk.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import urllib.request
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE), os.path.dirname(os.path.dirname(HERE))]

from common import best_time  # noqa: E402
from loopback_http import LoopbackServer  # noqa: E402

SIZE = 128 << 20


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bench_bundle/configs/inference.json", json.dumps({"network_def": {}}))
        z.writestr("bench_bundle/configs/metadata.json", json.dumps({"version": "1.0"}))
        z.writestr("bench_bundle/models/model.pt", os.urandom(SIZE), compress_type=zipfile.ZIP_STORED)
    return buf.getvalue()


def run(report):
    from MedSegCore import catalog

    data = _zip()
    work = tempfile.mkdtemp(prefix="medseg-bench-catalog-")
    old = {k: os.environ.get(k) for k in ("MEDSEG_HOME", "MEDSEG_CATALOG", "http_proxy", "no_proxy")}
    try:
        with LoopbackServer({"/b.zip": data}) as srv:
            entry = {"name": "bench", "version": "1.0", "url": srv.url("/b.zip"),
                     "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data), "license": "-",
                     "description": "benchmark", "modality": "CT"}
            with open(os.path.join(work, "catalog.json"), "w", encoding="utf-8") as f:
                json.dump({"catalog_version": 1, "models": [entry]}, f)
            os.environ.update(MEDSEG_HOME=os.path.join(work, "home"), MEDSEG_CATALOG=os.path.join(work, "catalog.json"),
                              no_proxy="127.0.0.1")

            def project():
                catalog.install("bench", force=True)

            def baseline():
                target = os.path.join(work, "plain")
                shutil.rmtree(target, ignore_errors=True)
                path, _ = urllib.request.urlretrieve(srv.url("/b.zip"), os.path.join(work, "plain.zip"))
                with zipfile.ZipFile(path) as z:
                    z.extractall(target)
                os.remove(path)

            t_base = best_time(baseline, repeat=3)
            t_proj = best_time(project, repeat=3)
            report(f"install {SIZE >> 20} MB zip from loopback (verified)", t_proj, "urlretrieve + extractall", t_base)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(work, ignore_errors=True)
