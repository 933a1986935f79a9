"""Model catalogue: models installed by name, downloads verified before they are unpacked.

``catalog.json`` (schema ``catalog.schema.json``) lists the models; ``$MEDSEG_CATALOG`` (a path or
URL) replaces it.  Installed models live in ``$MEDSEG_HOME/models`` (default ``~/.medseg``) and
work offline.  Standard library only (``urllib``, ``zipfile``, ``hashlib``): no torch, no Qt.

    from MedSegCore.catalog import load_catalog, install, import_model, resolve_model
    install("spleen_ct_segmentation", progress=lambda done, total: ...)
    load_model(resolve_model("spleen_ct_segmentation"))
"""
from .download import DownloadError
from .entries import Catalog, Entry, catalog_source, load_catalog, parse_catalog
from .install import Outcome, import_model, install, resolve_model
from .store import Installed, find_installed, installed, models_dir, remove

__all__ = ["Catalog", "DownloadError", "Entry", "Installed", "Outcome", "catalog_source", "find_installed",
           "import_model", "install", "installed", "load_catalog", "models_dir", "parse_catalog",
           "remove", "resolve_model"]
