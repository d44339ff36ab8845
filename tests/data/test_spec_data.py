"""Validation of the ``data:`` spec section (cellgi/spec/data.py)."""

import pytest

from cellgi.spec import SpecError, parse_spec


def _err(yaml_text):
    with pytest.raises(SpecError) as exc:
        parse_spec(yaml_text)
    return str(exc.value)


def test_data_section_validators():
    assert "not ['tau']" in _err("name: x\ndata: {synthetic: {}, targets: [tau]}\n")
    assert "split_column" in _err("name: x\ndata: {synthetic: {}, split: {kind: column}}\n")
    assert "repeat" in _err("name: x\ndata: {synthetic: {}, targets: [fitness, fitness]}\n")
    assert "directed names edge types" in _err("name: x\ndata: {synthetic: {directed: [nope]}}\n")
    msg = _err("name: x\ndata:\n  graphs: [{name: p, format: edgelist, path: g}]\n"
               "  screens: [{format: table, path: s, target_columns: {gi: e}}]\n")
    assert "exactly one of gene_columns and genes_column" in msg
    assert "data.cache" in _err("name: x\ndata: {synthetic: {}, cache: 'yes'}\n")


def test_table_split_column_spec_and_build(tmp_path):
    from cellgi.data.build import build_data

    (tmp_path / "g.txt").write_text("A B\nB C\nC D\n")
    (tmp_path / "s.csv").write_text("a,b,e,sp\nA,B,0.1,train\nB,C,0.2,train\nC,D,0.3,val\nA,D,0.4,test\n")
    spec = parse_spec(
        "name: x\ndata:\n  graphs: [{name: p, format: edgelist, path: g.txt}]\n"
        "  screens: [{format: table, path: s.csv, gene_columns: [a, b], target_columns: {gene_interaction: e},"
        " split_column: sp}]\n  split: {kind: column}\n  cache: false\n",
        base_dir=tmp_path,
    )
    b = build_data(spec.data, progress=False)
    assert {k: v.tolist() for k, v in b.splits.items()} == {"train": [0, 1], "val": [2], "test": [3]}
    assert b.normalizer.mean.item() == pytest.approx(0.15)
