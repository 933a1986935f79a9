"""The model catalogue: ``catalog.json`` beside this file, or ``$MEDSEG_CATALOG`` (a path or a URL).

Each entry is checked against ``catalog.schema.json`` (MedSeg's built-in JSON Schema subset
validator, the one model cards use), then by the rules a schema cannot express: unique names, and
every downloadable entry carries something to verify the download against (``sha256``, or a
checksum its publisher gives in ``published_checksums``).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError

SHIPPED = Path(__file__).with_name("catalog.json")
SCHEMA_PATH = Path(__file__).with_name("catalog.schema.json")
ENV = "MEDSEG_CATALOG"
MAX_CATALOG_BYTES = 8 << 20


@dataclass(frozen=True)
class Entry:
    """One installable model, as the catalogue describes it."""

    name: str
    version: str
    url: str
    sha256: str | None
    size_bytes: int | None
    license: str
    description: str
    modality: str
    title: str = ""
    kind: str = "monai-bundle"
    published_checksums: dict = field(default_factory=dict)
    max_unpacked_bytes: int | None = None
    input_channels: tuple = ("image",)
    labels: tuple = ()
    citation: tuple = ()
    authors: str = ""
    intended_use: str = ""
    run_times: tuple = ()
    provenance: str = ""

    @property
    def bundled(self) -> bool:
        """True for a model that ships inside MedSeg (nothing to download)."""
        return self.url.startswith("bundled:")

    @property
    def verified(self) -> bool:
        """True when MedSeg knows the download's SHA-256 and size (not only the publisher's checksum)."""
        return self.sha256 is not None and self.size_bytes is not None


@dataclass(frozen=True)
class Catalog:
    """The entries of one catalogue and where it was read from."""

    entries: tuple
    source: str

    def get(self, name: str) -> Entry | None:
        """The entry called ``name`` (exact, then case-insensitive), or None."""
        found = next((e for e in self.entries if e.name == name), None)
        return found or next((e for e in self.entries if e.name.lower() == name.lower()), None)

    def names(self) -> list:
        return [e.name for e in self.entries]


def catalog_source() -> str:
    """``$MEDSEG_CATALOG`` when set, else the catalogue that ships with MedSeg."""
    return os.environ.get(ENV) or str(SHIPPED)


def file_url_path(url: str) -> str:
    """The local path of a ``file:`` URL."""
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    return url2pathname(urlparse(url).path)


def _read_text(source: str) -> str:
    if "://" in source and not source.startswith("file:"):
        from urllib.parse import urlparse

        from .download import read_url

        parsed = urlparse(source)
        if parsed.scheme == "http" and parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise InputError(f"{ENV}={source}: the catalogue holds the checksums every download is verified "
                             f"against, so it must come over https (or from a file), not plain http")

        return read_url(source, MAX_CATALOG_BYTES, what="the model catalogue").decode("utf-8", "replace")
    path = Path(file_url_path(source) if source.startswith("file:") else source).expanduser()
    try:
        if path.stat().st_size > MAX_CATALOG_BYTES:
            raise InputError(f"model catalogue {path}: larger than {MAX_CATALOG_BYTES >> 20} MiB")
        return path.read_text(encoding="utf-8")
    except OSError as e:
        raise InputError(f"model catalogue {path}: cannot be read ({e.strerror or e})") from None


def parse_catalog(text: str, source: str = "catalogue") -> Catalog:
    """Validate the JSON ``text`` of a catalogue and return its entries (InputError naming every problem)."""
    from ..dnn.card import _schema_errors

    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"model catalogue {source}: not valid JSON (line {e.lineno}: {e.msg})") from None
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    errors = _schema_errors(data, schema, schema, "") if isinstance(data, dict) else ["expected a JSON object"]
    if not errors:
        seen = set()
        for i, m in enumerate(data["models"]):
            if m["name"].lower() in seen:
                errors.append(f"models[{i}].name: {m['name']!r} appears twice")
            seen.add(m["name"].lower())
            if not m["url"].startswith("bundled:") and m["sha256"] is None and not m.get("published_checksums"):
                errors.append(f"models[{i}] ({m['name']}): needs sha256 or published_checksums to verify downloads")
    if errors:
        more = f" (+{len(errors) - 3} more)" if len(errors) > 3 else ""
        raise InputError(f"model catalogue {source}: " + "; ".join(errors[:3]) + more)
    tuples = ("input_channels", "labels", "citation", "run_times")
    entries = tuple(Entry(**{k: tuple(v) if k in tuples else v for k, v in m.items()}) for m in data["models"])
    return Catalog(entries, source)


def load_catalog(source: str | None = None) -> Catalog:
    """The catalogue at ``source`` (default: :func:`catalog_source`), validated."""
    source = source or catalog_source()
    return parse_catalog(_read_text(source), source)
