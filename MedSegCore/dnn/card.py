"""Model card: what a network expects and what its output channels mean (no torch needed).

The JSON schema ``model_card.schema.json`` beside this file is the reference; it is checked by a
small built-in validator (a subset of JSON Schema draft 7), then the rules a schema cannot express
(labels vs output channels, normalisation parameters) are checked here.  Every problem is reported
as ``field: problem`` in one :class:`~MedSegCore.errors.InputError`.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError

SCHEMA_PATH = Path(__file__).with_name("model_card.schema.json")
_OPTIONAL = ("license", "authors", "references", "training")
# normalisation type -> {param: (kind, required)}
_NORM_PARAMS = {
    "none": {},
    "zscore": {"nonzero": (bool, False)},
    "minmax": {"b_min": (float, False), "b_max": (float, False)},
    "percentile": {"lower": (float, False), "upper": (float, False), "b_min": (float, False),
                   "b_max": (float, False), "clip": (bool, False)},
    "ct_window": {"a_min": (float, True), "a_max": (float, True), "b_min": (float, False),
                  "b_max": (float, False), "clip": (bool, False)},
}


@dataclass(frozen=True)
class Label:
    """One output structure: labelmap ``value``, ``name``, ``color`` (r, g, b in 0-1) and an
    optional DICOM terminology (``category``/``type``/... as [code, scheme, meaning])."""

    value: int
    name: str
    color: tuple
    terminology: dict | None = None


@dataclass
class ModelCard:
    """Validated contents of a ``card.json``; build with :func:`card_from_dict` or :func:`load_card`."""

    name: str
    version: str
    description: str
    intended_use: str
    trained: bool
    in_channels: int
    out_channels: int
    roi_size: tuple
    labels: list
    output: str
    architecture: dict | None = None
    channel_names: list | None = None
    spacing: tuple | None = None
    orientation: str | None = None
    normalization: object = field(default_factory=lambda: {"type": "none"})
    extra: dict = field(default_factory=dict)

    def normalization_for(self, channel: int) -> tuple:
        """(type, params) of the intensity normalisation of input ``channel``."""
        spec = self.normalization[channel] if isinstance(self.normalization, list) else self.normalization
        return spec["type"], dict(spec.get("params", {}))

    def channel_values(self) -> list:
        """Labelmap value written for each output channel (softmax: channel 0 is background)."""
        values = [lab.value for lab in self.labels]
        return [0] + values if self.output == "softmax" else values

    def to_dict(self) -> dict:
        d = {"name": self.name, "version": self.version, "description": self.description,
             "intended_use": self.intended_use, "trained": self.trained, "architecture": self.architecture,
             "in_channels": self.in_channels, "out_channels": self.out_channels,
             "spacing": list(self.spacing) if self.spacing else None, "orientation": self.orientation,
             "normalization": self.normalization, "roi_size": list(self.roi_size),
             "labels": [_label_dict(lab) for lab in self.labels], "output": self.output}
        if self.channel_names is not None:
            d["channel_names"] = list(self.channel_names)
        d.update(self.extra)
        return d

    def save(self, path) -> None:
        """Write the card as JSON, atomically (verified, then renamed into place)."""
        from ..image.atomic import atomic_path

        with atomic_path(str(path)) as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps(self.to_dict(), indent=2) + "\n")


def _label_dict(lab: Label) -> dict:
    d = {"value": lab.value, "name": lab.name, "color": list(lab.color)}
    if lab.terminology:
        d["terminology"] = lab.terminology
    return d


def load_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


# -- a small JSON Schema (draft 7 subset) validator ------------------------------------------
_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _is_type(value, name: str) -> bool:
    if name in ("integer", "number"):
        ok = int if name == "integer" else (int, float)
        return isinstance(value, ok) and not isinstance(value, bool)
    return isinstance(value, _TYPES[name])


def _schema_errors(value, schema: dict, root: dict, path: str) -> list:
    if "$ref" in schema:
        schema = root["definitions"][schema["$ref"].rsplit("/", 1)[-1]]
    where = path or "card"
    if "oneOf" in schema:
        results = [_schema_errors(value, s, root, path) for s in schema["oneOf"]]
        if sum(not r for r in results) == 1:
            return []
        relevant = [r for r in results if r and not r[0].startswith(f"{where}: expected")] or results
        return relevant[0] if relevant[0] else [f"{where}: matches more than one allowed form"]
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        if not any(_is_type(value, t) for t in types):
            return [f"{where}: expected {' or '.join(types)}, got {json.dumps(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {json.dumps(value)} is not one of {', '.join(map(json.dumps, schema['enum']))}"]
    errors = []
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{where}: must not be empty")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{where}: {value!r} does not match the pattern {schema['pattern']}")
    if _is_type(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: {value} is less than the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            hint = " (colors are r, g, b from 0 to 1)" if re.search(r"color\[\d\]$", where) else ""
            errors.append(f"{where}: {value} is greater than the maximum {schema['maximum']}{hint}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            errors.append(f"{where}: {value} must be greater than {schema['exclusiveMinimum']}")
    if isinstance(value, list):
        n = len(value)
        if n < schema.get("minItems", 0) or n > schema.get("maxItems", n):
            lo, hi = schema.get("minItems", 0), schema.get("maxItems")
            want = f"exactly {lo}" if lo == hi else f"at least {lo}"
            errors.append(f"{where}: expected {want} item(s), got {n}")
        for i, item in enumerate(value):
            errors += _schema_errors(item, schema.get("items", {}), root, f"{path}[{i}]")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        prefix = f"{path}." if path else ""
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{prefix}{key}: required field is missing")
        for key, item in value.items():
            if key in props:
                errors += _schema_errors(item, props[key], root, prefix + key)
            elif schema.get("additionalProperties", True) is False:
                errors.append(f"{prefix}{key}: unknown field (allowed: {', '.join(sorted(props))})")
    return errors


# -- rules beyond the schema ---------------------------------------------------------------
def _norm_errors(spec: dict, where: str) -> list:
    kind, params = spec["type"], spec.get("params", {})
    allowed, errors = _NORM_PARAMS[kind], []
    for key, val in params.items():
        if key not in allowed:
            errors.append(f"{where}.params.{key}: not a parameter of {kind} (allowed: {', '.join(allowed) or 'none'})")
        elif allowed[key][0] is bool and not isinstance(val, bool):
            errors.append(f"{where}.params.{key}: expected true or false, got {json.dumps(val)}")
        elif allowed[key][0] is float and (isinstance(val, bool) or not isinstance(val, (int, float))):
            errors.append(f"{where}.params.{key}: expected a number, got {json.dumps(val)}")
    errors += [f"{where}.params.{k}: required for {kind}" for k, (_, req) in allowed.items() if req and k not in params]
    if errors:
        return errors
    for lo, hi in (("a_min", "a_max"), ("b_min", "b_max"), ("lower", "upper")):
        if lo in params and hi in params and params[lo] >= params[hi]:
            errors.append(f"{where}.params: {lo} ({params[lo]}) must be less than {hi} ({params[hi]})")
    for key in ("lower", "upper"):
        if key in params and not 0 <= params[key] <= 100:
            errors.append(f"{where}.params.{key}: percentile {params[key]} is outside 0-100")
    return errors


def _rule_errors(d: dict) -> list:
    errors = []
    n_in, n_out, labels = d["in_channels"], d["out_channels"], d["labels"]
    if "channel_names" in d and len(d["channel_names"]) != n_in:
        errors.append(f"channel_names: {len(d['channel_names'])} name(s) for in_channels = {n_in}")
    expected = n_out - 1 if d["output"] == "softmax" else n_out
    if len(labels) != expected:
        why = ("a softmax model has background in channel 0 and one label per other channel"
               if d["output"] == "softmax" else "a sigmoid model has one label per channel")
        errors.append(f"labels: {len(labels)} label(s) do not match out_channels = {n_out}; {why}, "
                      f"so {expected} label(s) are expected")
    for key in ("value", "name"):
        seen = [str(lab[key]).lower() for lab in labels]
        dupes = sorted({v for v in seen if seen.count(v) > 1})
        if dupes:
            errors.append(f"labels: duplicate {key}(s) {', '.join(dupes)}")
    norm = d.get("normalization", {"type": "none"})
    if isinstance(norm, list):
        if len(norm) != n_in:
            errors.append(f"normalization: {len(norm)} entries for in_channels = {n_in} (give one, or one per channel)")
        for i, spec in enumerate(norm):
            errors += _norm_errors(spec, f"normalization[{i}]")
    else:
        errors += _norm_errors(norm, "normalization")
    orient = d.get("orientation")
    if orient and sorted("RLAPSI".index(c) // 2 for c in orient) != [0, 1, 2]:
        errors.append(f"orientation: {orient!r} must name R/L, A/P and S/I once each, e.g. 'RAS'")
    params = (d.get("architecture") or {}).get("params", {})
    if params.get("spatial_dims", 3) != 3:
        errors.append(f"architecture.params.spatial_dims: only 3D networks are supported, got {params['spatial_dims']}")
    for key, want in (("in_channels", n_in), ("out_channels", n_out)):
        if key in params and params[key] != want:
            errors.append(f"architecture.params.{key}: {params[key]} differs from {key} = {want}")
    return errors


def validate_card(data, source: str = "model card") -> None:
    """Raise :class:`InputError` listing every problem of a card dict (``field: problem``)."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a JSON object, got {type(data).__name__}")
    errors = _schema_errors(data, load_schema(), load_schema(), "")
    if not errors:
        errors = _rule_errors(data)
    if errors:
        raise InputError(f"{source} is invalid:\n  " + "\n  ".join(errors))


def card_from_dict(data: dict, source: str = "model card") -> ModelCard:
    """Validate ``data`` and build a :class:`ModelCard`."""
    validate_card(data, source)
    labels = [Label(int(lab["value"]), lab["name"], tuple(float(c) for c in lab["color"]), lab.get("terminology"))
              for lab in data["labels"]]
    return ModelCard(
        name=data["name"], version=data["version"], description=data["description"],
        intended_use=data["intended_use"], trained=data["trained"], in_channels=data["in_channels"],
        out_channels=data["out_channels"], roi_size=tuple(data["roi_size"]), labels=labels,
        output=data["output"], architecture=data.get("architecture"), channel_names=data.get("channel_names"),
        spacing=tuple(float(s) for s in data["spacing"]) if data.get("spacing") else None,
        orientation=data.get("orientation"), normalization=data.get("normalization", {"type": "none"}),
        extra={k: data[k] for k in _OPTIONAL if k in data})


def load_card(path) -> ModelCard:
    """Read and validate a ``card.json``; missing, unreadable or invalid files raise InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model card not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read model card {path}: {e}") from e
    except json.JSONDecodeError as e:
        raise InputError(f"model card {path} is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from e
    return card_from_dict(data, source=f"model card {path.name}")
