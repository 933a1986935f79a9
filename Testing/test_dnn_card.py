"""Model card schema and validation: the bundled card, every kind of error, import without torch."""
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from MedSegCore.dnn.card import SCHEMA_PATH, card_from_dict, load_card, validate_card
from MedSegCore.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CARD = ROOT / "MedSegCore" / "models" / "default" / "card.json"


def base() -> dict:
    return json.loads(DEFAULT_CARD.read_text(encoding="utf-8"))


def test_default_card_is_the_trained_brain_model():
    card = load_card(DEFAULT_CARD)
    assert card.trained is True and card.intended_use == "demonstration; not for clinical use"
    assert "No flip augmentation" in card.description and "rotations keep handedness" in card.description
    assert card.architecture["type"] == "monai.UNet" and card.architecture["params"]["strides"] == [2]
    assert (card.in_channels, card.out_channels, card.output) == (1, 3, "softmax")
    assert [lab.name for lab in card.labels] == ["Grey matter", "White matter"]
    assert card.channel_values() == [0, 1, 2]
    assert card.spacing == (1.0, 1.0, 1.0) and card.orientation == "RAS" and card.roi_size == (64, 64, 64)
    assert card.normalization_for(0) == ("zscore", {"nonzero": True})
    assert card.labels[1].terminology["type"] == ["389080008", "SCT", "White matter"]
    assert (DEFAULT_CARD.parent / "model.pt").stat().st_size < 2 * 1024 * 1024


def test_schema_is_json_and_round_trip_is_stable():
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert set(schema["required"]) >= {"labels", "out_channels", "roi_size", "output", "trained"}
    card = card_from_dict(base())
    again = card_from_dict(json.loads(json.dumps(card.to_dict())))
    assert again == card
    assert again.to_dict()["license"].startswith("Apache-2.0") and again.to_dict()["training"] == base()["training"]


def _set(path, value):
    def edit(d):
        keys = path.split(".")
        node = d
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node[k]
        last = keys[-1]
        if value is _DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return edit


_DELETE = object()

BAD = [
    (_set("name", _DELETE), "name: required field is missing"),
    (_set("trained", "no"), "trained: expected boolean"),
    (_set("labels.0.color", [255, 0, 0]), "labels[0].color[0]: 255 is greater than the maximum 1"),
    (_set("labels.1.color", [0.1, 0.2]), "labels[1].color: expected exactly 3 item(s), got 2"),
    (_set("out_channels", 4), "labels: 2 label(s) do not match out_channels = 4"),
    (_set("output", "sigmoid"), "a sigmoid model has one label per channel"),
    (_set("output", "argmax"), 'output: "argmax" is not one of "softmax", "sigmoid"'),
    (_set("labels.1.value", 1), "labels: duplicate value(s) 1"),
    (_set("labels.1.value", 256), "labels[1].value: 256 is greater than the maximum 255"),
    (_set("orientation", "RAX"), "orientation: 'RAX' does not match"),
    (_set("orientation", "RRS"), "orientation: 'RRS' must name R/L, A/P and S/I once each"),
    (_set("normalization", {"type": "robust"}), 'normalization.type: "robust" is not one of'),
    (_set("normalization", {"type": "ct_window", "params": {"a_max": 400}}),
     "normalization.params.a_min: required for ct_window"),
    (_set("normalization", {"type": "ct_window", "params": {"a_min": 400, "a_max": -100}}),
     "a_min (400) must be less than a_max (-100)"),
    (_set("normalization", {"type": "zscore", "params": {"nonzero": 1}}),
     "normalization.params.nonzero: expected true or false"),
    (_set("normalization", [{"type": "zscore"}, {"type": "none"}]), "normalization: 2 entries for in_channels = 1"),
    (_set("labels.0.terminology.type", ["389081007", "SCT"]),
     "labels[0].terminology.type: expected exactly 3 item(s), got 2"),
    (_set("spacng", [1, 1, 1]), "spacng: unknown field"),
    (_set("spacing", [1.0, -1.0, 1.0]), "spacing[1]: -1.0 must be greater than 0"),
    (_set("roi_size", [64.5, 64, 64]), "roi_size[0]: expected integer"),
    (_set("architecture.type", "torch.UNet"), "architecture.type: 'torch.UNet' does not match"),
    (_set("architecture.params.in_channels", 2), "architecture.params.in_channels: 2 differs from in_channels = 1"),
    (_set("architecture.params.spatial_dims", 2), "only 3D networks are supported"),
    (_set("channel_names", ["T1", "T2"]), "channel_names: 2 name(s) for in_channels = 1"),
    (_set("labels", []), "labels: expected at least 1 item(s), got 0"),
]


@pytest.mark.parametrize("edit, expected", BAD, ids=[b[1][:40] for b in BAD])
def test_invalid_cards_name_field_and_problem(edit, expected):
    data = copy.deepcopy(base())
    edit(data)
    with pytest.raises(InputError) as err:
        card_from_dict(data, source="card under test")
    assert expected in str(err.value)
    assert str(err.value).startswith("card under test is invalid")


def test_all_schema_errors_are_reported_together():
    data = base()
    data["trained"] = "yes"
    data["labels"][0]["color"] = [2, 0, 0]
    with pytest.raises(InputError) as err:
        validate_card(data)
    assert "trained: expected boolean" in str(err.value) and "labels[0].color[0]" in str(err.value)


def test_null_spacing_and_orientation_and_sigmoid_are_valid():
    data = base()
    data.update(spacing=None, orientation=None, architecture=None, output="sigmoid", out_channels=2)
    card = card_from_dict(data)
    assert card.spacing is None and card.orientation is None and card.channel_values() == [1, 2]


def test_load_card_missing_and_malformed(tmp_path):
    with pytest.raises(InputError, match="model card not found"):
        load_card(tmp_path / "nope.json")
    bad = tmp_path / "card.json"
    bad.write_text('{"name": "x",\n "version": }')
    with pytest.raises(InputError, match=r"not valid JSON: .*line 2"):
        load_card(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(InputError, match="expected a JSON object"):
        load_card(bad)


def test_package_imports_without_torch():
    code = ("import sys; import MedSegCore.dnn as d; d.load_card(sys.argv[1]); d.PredictOptions(); "
            "assert 'torch' not in sys.modules and 'monai' not in sys.modules, 'torch imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code, str(DEFAULT_CARD)], cwd=ROOT, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
