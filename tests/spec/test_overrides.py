"""`key.path=value` overrides: applied before validation, errors located at the argument."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cellgi.spec import SpecError, load_spec, parse_spec
from cellgi.spec.overrides import apply_overrides, dump_spec_yaml, parse_override, spec_key_paths, valid_keys

REPO = Path(__file__).resolve().parents[2]
TEXT = """\
name: t
data:
  root: data
  graphs:
    - {name: physical, format: edgelist, path: p.txt}
  screens:
    - {format: kuzmin, path: s.tsv}
model:
  hidden_dim: 16
  conv: {type: masked_gin, num_mlp_layers: 2}
"""


def _spec(*overrides: str, base: Path | None = None):
    return parse_spec(TEXT, "s.yaml", base_dir=base, overrides=list(overrides))


def _errors(*overrides: str) -> str:
    with pytest.raises(SpecError) as info:
        _spec(*overrides)
    return info.value.render()


@pytest.mark.parametrize(
    ("text", "loc", "value"),
    [
        ("model.hidden_dim=8", ("model", "hidden_dim"), 8),
        ("training.optimizer.lr=1e-3", ("training", "optimizer", "lr"), 1e-3),
        ("model.check_finite=false", ("model", "check_finite"), False),
        ("model.local_predictor=null", ("model", "local_predictor"), None),
        ("training.trainer.devices=[0, 1]", ("training", "trainer", "devices"), [0, 1]),
        ("training.trainer.devices=0,1", ("training", "trainer", "devices"), "0,1"),
        ("data.graphs.0.path=x=y.txt", ("data", "graphs", 0, "path"), "x=y.txt"),
        ("model.conv={type: masked_gatv2, heads: 2}", ("model", "conv"), {"type": "masked_gatv2", "heads": 2}),
    ],
)
def test_parse_values_as_yaml(text, loc, value):
    ov = parse_override(text, 1)
    assert ov.loc == loc and ov.value == value and type(ov.value) is type(value)


def test_applied_before_validation(tmp_path):
    spec = _spec("model.hidden_dim=8", "data.graphs.0.path=other.txt", "training.max_epochs=3",
                 "model.conv.type=masked_gatv2", "~model.conv.num_mlp_layers", base=tmp_path)
    assert spec.model.hidden_dim == 8 and spec.training.max_epochs == 3
    assert spec.data.graphs[0].path == "other.txt"
    assert spec.model.conv.type == "masked_gatv2"


def test_append_list_item_and_original_untouched():
    data = yaml.safe_load(TEXT)
    out, _ = apply_overrides(data, ["data.graphs.1={name: reg, format: regulatory, path: r.tsv}"])
    assert [g["name"] for g in out["data"]["graphs"]] == ["physical", "reg"]
    assert len(data["data"]["graphs"]) == 1  # the input is not modified
    spec = _spec("data.graphs.1={name: reg, format: regulatory, path: r.tsv}")
    assert spec.data.graphs[1].format == "regulatory"


def test_relative_data_root_override_is_taken_from_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = _spec("data.root=mydata", base=REPO / "configs")
    assert Path(spec.data.root) == (tmp_path / "mydata").resolve()
    assert Path(_spec("data.root=~/yeast").data.root) == Path.home() / "yeast"
    # without the override the root stays relative to the spec's folder
    assert Path(_spec(base=REPO / "configs").data.root) == (REPO / "configs" / "data").resolve()


def test_unknown_key_did_you_mean_at_the_argument():
    err = _errors("model.hidden_dim=8", "model.hiden_dim=8")
    assert err.startswith("override 2 (model.hiden_dim=8): model.hiden_dim: unknown key")
    assert "did you mean 'hidden_dim'?" in err


def test_unknown_component_param_uses_the_components_fields():
    err = _errors("model.conv.num_mlp_layer=3")
    assert "override 1 (model.conv.num_mlp_layer=3): model.conv.num_mlp_layer: unknown key" in err
    assert "did you mean 'num_mlp_layers'?" in err


def test_type_and_value_errors_point_at_the_argument():
    err = _errors("model.aggregator.type=pairwise", "training.max_epochs='2'")
    lines = err.splitlines()
    assert lines[0].startswith("override 1 (model.aggregator.type=pairwise): model.aggregator.type: unknown aggregator")
    assert "did you mean 'pairwise_interaction'?" in lines[0]
    assert lines[1] == "override 2 (training.max_epochs='2'): training.max_epochs: Input should be a valid integer (got str '2')"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model.hidden_dim", "expected KEY.PATH=VALUE"),
        ("model..x=1", "empty key segment"),
        ("model.hidden_dim=", "empty value (write KEY=null"),
        ("name.sub=1", "name is a str value, not a mapping or list"),
        ("data.graphs.5.path=x", "index 5 is out of range: data.graphs has 1 item(s)"),
        ("data.graphs.first.path=x", "data.graphs is a list: index it with a number"),
        ("model.hidden_dim=[1", "invalid YAML"),
        ("~model.nothing", "nothing to remove"),
    ],
)
def test_malformed_overrides(text, message):
    err = _errors(text)
    assert err.startswith(f"override 1 ({text}):") and message in err


def test_every_bad_override_reported_together_file_errors_kept(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text(TEXT.replace("hidden_dim: 16", "hidden_dim: '16'"))
    with pytest.raises(SpecError) as info:
        load_spec(f, ["noeq", "model.num_layers=0"])
    lines = info.value.render(snippet=False).splitlines()
    assert lines[0].startswith(f"{f}:9: model.hidden_dim:")  # the file's own error keeps its line
    assert lines[1].startswith("override 1 (noeq):")
    assert lines[2].startswith("override 2 (model.num_layers=0): model.num_layers:")


def test_print_config_round_trip():
    spec = load_spec(REPO / "configs" / "quickstart.yaml", ["model.hidden_dim=8"])
    text = dump_spec_yaml(spec)
    again = parse_spec(text, "resolved.yaml")
    assert again == spec
    assert "pooling:" in text and "optimizer:" in text  # defaults are written out


def test_valid_keys_and_key_paths():
    data = yaml.safe_load(TEXT)
    from cellgi.spec import spec_model

    assert "num_mlp_layers" in valid_keys(spec_model(), data, ["model", "conv"])
    assert "path" in valid_keys(spec_model(), data, ["data", "graphs", 0])
    keys = spec_key_paths()
    assert {"model.hidden_dim", "training.trainer.devices", "data.graphs.0.path", "model.conv.type",
            "model.conv.num_mlp_layers"} <= set(keys)
    shallow = set(spec_key_paths(components=False))  # no component params: no registry built-ins needed
    assert {"model.hidden_dim", "model.conv.type", "training.loss.type"} <= shallow
    assert "model.conv.num_mlp_layers" not in shallow


def test_shallow_key_paths_do_not_import_torch():
    import subprocess
    import sys

    code = ("import sys; from cellgi.spec.overrides import spec_key_paths; "
            "assert 'model.hidden_dim' in spec_key_paths(components=False); print('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_type_change_drops_the_old_types_parameters_and_says_so():
    notes: list[str] = []
    from cellgi.spec.overrides import validate_with_overrides
    from cellgi.spec.yamlio import parse_yaml

    located = parse_yaml(TEXT, "s.yaml")
    spec = validate_with_overrides(located, ["model.conv.type=masked_gatv2"], notes=notes)
    assert spec.model.conv.type == "masked_gatv2" and spec.model.conv.heads == 4  # masked_gatv2's default
    assert notes == ["override 1 (model.conv.type=masked_gatv2): model.conv: type masked_gin -> masked_gatv2: "
                     "dropped masked_gin's parameters (num_mlp_layers=2); masked_gatv2's defaults apply "
                     "(set any with model.conv.KEY=VALUE)"]
    # a parameter set by an earlier override of the same command is kept; a later one applies as usual
    notes.clear()
    spec = validate_with_overrides(located, ["model.conv.heads=2", "model.conv.type=masked_gatv2",
                                             "model.conv.dropout=0.1"], notes=notes)
    assert spec.model.conv.heads == 2 and spec.model.conv.dropout == 0.1
    assert "dropped masked_gin's parameters (num_mlp_layers=2)" in notes[0]
    # the same type: nothing dropped, nothing said; the old '~' removal still works after a change
    notes.clear()
    spec = validate_with_overrides(located, ["model.conv.type=masked_gin"], notes=notes)
    assert spec.model.conv.num_mlp_layers == 2 and notes == []
    # without a list to collect them, the notes are warnings
    with pytest.warns(UserWarning, match="dropped masked_gin's parameters"):
        _spec("model.conv.type=masked_gatv2")


def test_type_change_note_on_the_command_line(tmp_path, capsys):
    from cellgi.cli.main import main

    (tmp_path / "s.yaml").write_text(TEXT)
    assert main(["spec", "validate", str(tmp_path / "s.yaml"), "model.conv.type=masked_gatv2"]) == 0
    err = capsys.readouterr().err
    assert "note: override 1 (model.conv.type=masked_gatv2): model.conv: type masked_gin -> masked_gatv2" in err
