"""YAML loading keeps lines, refuses duplicate keys, reads 1e-3 as a float."""

from __future__ import annotations

import pytest

from cellgi.spec.yamlio import SpecSyntaxError, load_yaml, parse_yaml


def test_lines_of_nested_keys_and_list_items():
    loc = parse_yaml("a:\n  b: 1\n  c:\n    - x\n    - {d: 2}\n")
    assert loc.lines[("a",)] == 1
    assert loc.lines[("a", "b")] == 2
    assert loc.lines[("a", "c", 1)] == 5
    assert loc.lines[("a", "c", 1, "d")] == 5
    assert loc.line_of(("a", "missing", "deeper")) == 1


def test_scientific_floats_without_dot():
    assert parse_yaml("lr: 1e-3\nx: 2E+2\ny: 3\n").data == {"lr": 1e-3, "x": 200.0, "y": 3}


def test_duplicate_key_is_an_error_with_line():
    with pytest.raises(SpecSyntaxError) as exc:
        parse_yaml("model:\n  hidden_dim: 8\n  hidden_dim: 16\n", "s.yaml")
    assert exc.value.line == 3 and "first on line 2" in exc.value.message


def test_syntax_error_has_line():
    with pytest.raises(SpecSyntaxError) as exc:
        parse_yaml("a: 1\nb: [1, 2\nc: 3\n", "s.yaml")
    assert exc.value.file == "s.yaml" and exc.value.line >= 2


def test_missing_file(tmp_path):
    with pytest.raises(SpecSyntaxError, match="file not found"):
        load_yaml(tmp_path / "nope.yaml")
