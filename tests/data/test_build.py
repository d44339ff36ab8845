import re
from pathlib import Path

import pytest
import torch

from cellgi.data.build import build_data
from cellgi.data.errors import DataError
from cellgi.spec import load_spec, parse_spec

DOCS = Path(__file__).resolve().parents[2] / "docs" / "data.md"


def _docs_real_spec(yeast_dir, tmp_path):
    text = DOCS.read_text()
    block = re.search(r"<!-- real-data-example -->\s*```yaml\n(.*?)```", text, re.S).group(1)
    assert "root: ../../shared/data/yeast" in block  # relative to configs/, as the doc says
    text = block.replace("root: ../../shared/data/yeast", f"root: {yeast_dir}")
    p = tmp_path / "real.yaml"
    p.write_text(text)
    return load_spec(p)


def test_docs_example_builds_real_data(yeast_dir, tmp_path):
    spec = _docs_real_spec(yeast_dir, tmp_path)
    b = build_data(spec.data, progress=False)
    r = b.report
    assert r.genes == 6607
    assert r.edges["string_database"]["edges"] == 66972  # both directions listed in the file
    assert r.edges["regulatory"]["directed"] and r.edges["regulatory"]["unmapped_rows"] > 0
    assert r.samples["digenic"] > 3000 and r.samples["trigenic"] > 3000
    assert r.num_unmapped > 0 and any("regulatory" in u["source"] for u in r.unmapped)
    assert sum(r.splits.values()) == len(b.dataset)
    assert b.mapper.map("Abf1") == "YKL112W"
    abf1 = b.graph.gene_index["YKL112W"]
    assert int(b.graph.degree("regulatory", direction="out")[abf1]) > 100
    assert build_data(spec.data, progress=False).from_cache


def _tiny(tmp_path, screen_rows, graph="A B\nB C\n", **data):
    (tmp_path / "g.txt").write_text(graph)
    (tmp_path / "s.tsv").write_text("g1\tg2\teps\n" + "".join(r + "\n" for r in screen_rows))
    import yaml

    doc = {"name": "t", "data": {
        "genes": {"source": "list", "path": "genes.txt"},
        "graphs": [{"name": "p", "format": "edgelist", "path": "g.txt"}],
        "screens": [{"format": "table", "path": "s.tsv", "gene_columns": ["g1", "g2"],
                     "target_columns": {"gene_interaction": "eps"}}],
        "cache": False, **data}}
    (tmp_path / "genes.txt").write_text("A\nB\nC\nD\n")
    return parse_spec(yaml.safe_dump(doc), base_dir=tmp_path).data


def test_all_genes_missing_and_empty_split(tmp_path):
    pairs = [("A", "B"), ("B", "C"), ("C", "D"), ("A", "C"), ("A", "D"), ("B", "D"),
             ("X", "Y"), ("X", "Z"), ("Y", "Z"), ("A", "Y"), ("B", "Z"), ("C", "X")]
    rows = [f"{a}\t{b}\t0.{i}" for i, (a, b) in enumerate(pairs)]
    spec = _tiny(tmp_path, rows, split={"kind": "random", "fractions": [0.5, 0.25, 0.25]})
    b = build_data(spec, progress=False)
    screen = b.report.screens[0]
    assert screen["reasons"]["all genes unmapped"] == 3 and screen["unmapped_rows"] == 6
    assert any("no gene in the graph" in w for w in b.report.warnings)
    spec = _tiny(tmp_path, rows[:2], split={"kind": "random", "fractions": [0.9, 0.05, 0.05]})
    with pytest.raises(DataError, match="split 'val' is empty"):
        build_data(spec, progress=False)


def test_unknown_target_and_duplicate_edges_error(tmp_path):
    spec = _tiny(tmp_path, ["A\tB\t0.1"] * 3, targets=["fitness"])
    with pytest.raises(DataError, match=r"no screen provides target\(s\) \['fitness'\]"):
        build_data(spec, progress=False)
    spec = _tiny(tmp_path, ["A\tB\t0.1"], graph="A B\nB C\nA B\n")
    spec = spec.model_copy(update={"graphs": [spec.graphs[0].model_copy(update={"duplicates": "error"})]})
    with pytest.raises(DataError, match=r"g.txt:3: .*repeated edge"):
        build_data(spec, progress=False)


def test_missing_input_file_is_data_error(tmp_path):
    spec = _tiny(tmp_path, ["A\tB\t0.1"])
    (tmp_path / "g.txt").unlink()
    with pytest.raises(DataError, match="g.txt: input file not found"):
        build_data(spec.model_copy(update={"cache": True}), progress=False)
    with pytest.raises(DataError, match="not found"):
        build_data(spec, progress=False)


def test_synthetic_default_builds(tmp_path):
    from cellgi.spec import validate_spec

    spec = validate_spec({"name": "s", "data": {"synthetic": {"num_genes": 120, "num_samples": 300,
                                                              "edge_types": {"a": 300}, "directed": []}}}).data
    b = build_data(spec, progress=False)
    assert b.report.source == "synthetic" and b.graph.num_nodes == 120 and len(b.dataset) == 300
    assert b.mapper.map(b.graph.genes[5].lower()) == b.graph.genes[5] and torch.isfinite(b.dataset.y).all()


def test_union_genes_with_and_without_alias_table(tmp_path):
    import yaml

    (tmp_path / "sgd.tab").write_text("\n".join(
        "\t".join(["S", "ORF", "Verified", orf, std, ""] + [""] * 10)
        for orf, std in [("YAL001C", "TFC3"), ("YAL002W", "VPS8"), ("YAL003W", "EFB1")]) + "\n")
    (tmp_path / "e.csv").write_text("a,b,w\n4932.YAL001C,Vps8,0.5\nTFC3,yal003w,0.2\nTFC3,NOPE,0.1\n")
    (tmp_path / "s.tsv").write_text("genes\teps\nYAL001C;YAL002W\t0.1\nyal002w;EFB1\t0.2\nTFC3;EFB1\t0.3\n"
                                    "YAL001C;NOPE\t0.4\nVPS8;YAL003W;TFC3\t0.5\n")
    doc = {"name": "u", "data": {
        "genes": {"source": "union", "aliases": "sgd.tab"},
        "graphs": [{"name": "t", "format": "table", "path": "e.csv", "source_column": "a",
                    "target_column": "b", "weight_column": "w"}],
        "screens": [{"format": "table", "path": "s.tsv", "genes_column": "genes",
                     "target_columns": {"gene_interaction": "eps"}}],
        "split": {"kind": "random", "fractions": [0.5, 0.25, 0.25]}, "cache": False}}
    b = build_data(parse_spec(yaml.safe_dump(doc), base_dir=tmp_path).data, progress=False)
    assert b.graph.genes == ["YAL001C", "YAL002W", "YAL003W"]
    assert b.graph.edge_types["t"].num_pairs == 2 and b.graph.edge_weight("t") is not None
    assert len(b.dataset) == 4 and b.report.screens[0]["unmapped_rows"] == 1
    assert {u["items"][0]["id"] for u in b.report.unmapped} == {"NOPE"}
    doc["data"]["genes"] = {"source": "union"}
    b2 = build_data(parse_spec(yaml.safe_dump(doc), base_dir=tmp_path).data, progress=False)
    assert "YAL001C" in b2.graph.genes and "TFC3" in b2.graph.genes and "NOPE" in b2.graph.genes
    assert "4932.YAL001C" not in b2.graph.genes
