"""Spec validation: strictness, component unions, FILE:LINE error messages."""

from __future__ import annotations

import textwrap

import pytest

from cellgi.spec import SpecError, load_spec, parse_spec, spec_json_schema

BASE = """\
name: t
data:
  synthetic: {num_genes: 50, num_samples: 100}
"""


def errors(text: str) -> list[str]:
    with pytest.raises(SpecError) as exc:
        parse_spec(textwrap.dedent(text), "s.yaml")
    return [i.render(snippet=False) for i in exc.value.issues]


def test_minimal_spec_gets_defaults():
    spec = parse_spec(BASE)
    assert spec.model.conv.type == "masked_gin"
    assert spec.model.aggregator.type == "sum"
    assert spec.training.loss.type == "logcosh"
    assert spec.data.synthetic.num_genes == 50


def test_component_params_are_typed_models():
    spec = parse_spec(BASE + "training:\n  loss: {type: huber, delta: 0.5}\n")
    assert spec.training.loss.delta == 0.5


def test_string_number_not_coerced_and_line_reported():
    errs = errors(BASE + "training:\n  max_epochs: '2'\n")
    assert errs == ["s.yaml:5: training.max_epochs: Input should be a valid integer (got str '2')"]


def test_unknown_key_points_at_its_line():
    errs = errors(BASE + "model:\n  hidden_dim: 8\n  hiden_layers: 2\n")
    assert errs == ["s.yaml:6: model.hiden_layers: unknown key (not allowed here)"]


def test_missing_key_points_at_parent():
    errs = errors("name: t\nmodel:\n  hidden_dim: 8\n")
    assert errs == ["s.yaml:1: data: required key is missing"]


def test_unknown_component_lists_valid_and_closest():
    errs = errors(BASE + "training:\n  loss: {type: logcos}\n")
    assert len(errs) == 1
    assert errs[0].startswith("s.yaml:5: training.loss.type: unknown loss 'logcos'; did you mean 'logcosh'?")
    assert "mse" in errs[0]


def test_component_param_error_drops_union_tag_from_path():
    errs = errors(BASE + "training:\n  loss:\n    type: huber\n    delta: -1\n")
    assert errs == ["s.yaml:7: training.loss.delta: Input should be greater than 0"]


def test_several_errors_sorted_by_line():
    errs = errors(BASE + "seed: x\ntraining:\n  max_epochs: 0\n")
    assert [e.split(":")[1] for e in errs] == ["4", "6"]


def test_data_section_needs_a_source():
    errs = errors("name: t\ndata:\n  targets: [gene_interaction]\n")
    assert len(errs) == 1 and errs[0].startswith("s.yaml:2: data: no graphs")


def test_bad_run_name():
    errs = errors(BASE.replace("name: t", "name: ../escape"))
    assert errs[0].startswith("s.yaml:1: name:")


def test_not_a_mapping():
    assert errors("- 1\n- 2\n")[0].startswith("s.yaml:1:")


def test_load_spec_resolves_data_root_against_file(tmp_path):
    (tmp_path / "sub").mkdir()
    f = tmp_path / "sub" / "s.yaml"
    f.write_text(BASE + "  root: ../data\n")
    spec = load_spec(f)
    assert spec.data.root == str((tmp_path / "data").resolve())


def test_dump_round_trip():
    spec = parse_spec(BASE + "model:\n  aggregator: {type: mean}\n")
    again = parse_spec(__import__("yaml").safe_dump(spec.model_dump(mode="json")))
    assert again == spec


def test_json_schema_names_components():
    schema = spec_json_schema()
    text = str(schema)
    for name in ("masked_gin", "sum", "logcosh", "hypergraph_attention"):
        assert name in text
