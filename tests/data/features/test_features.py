"""Per-gene feature sources (table, go_slim, graph_structure): imputation, indicators, errors, registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cellgi.data.cellgraph import CellGraph, EdgeType
from cellgi.data.errors import DataError
from cellgi.data.features import compute_gene_features, feature_input_files
from cellgi.data.genes import GeneMapper
from cellgi.registry import get_registry

GENES = ["YA", "YB", "YC", "YD"]


def _graph():
    ei = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])
    reg = torch.tensor([[0, 0], [2, 3]])
    return CellGraph(GENES, {"ppi": EdgeType("ppi", False, ei, torch.tensor([0.5, 0.5, 2.0, 2.0])),
                             "reg": EdgeType("reg", True, reg)})


def _run(specs, tmp_path):
    return compute_gene_features(specs, genes=GENES, mapper=GeneMapper(GENES), graph=_graph(), root=tmp_path)


def test_table_imputes_missing_genes_with_an_indicator(tmp_path):
    (tmp_path / "t.tsv").write_text("gene\tname\tpheno\nYA\ta\t1.0\nyb\tb\t3.0\nYC\tc\tNA\nYZZ\tz\t9\n")
    x, names, info = _run([{"type": "table", "path": "t.tsv", "gene_column": "gene"}], tmp_path)
    assert names == ["t.pheno", "t.missing"]  # the text column 'name' is left out (reported)
    assert info[0]["skipped_non_numeric_columns"] == ["name"] and info[0]["rows_not_in_gene_list"] == 1
    assert x[:, 1].tolist() == [0.0, 0.0, 1.0, 1.0]
    assert x[0, 0] == -1.0 and x[1, 0] == 1.0  # z-scored over YA, YB (yb mapped case-insensitively)
    assert x[2, 0] == x[3, 0] == 0.0  # median of the measured genes


def test_table_headerless_strain_ids_averaged(tmp_path):
    (tmp_path / "smf.txt").write_text("YA_d1 1.0 0.1\nYA_d2 3.0 0.1\nYB_x 0.0 0.2\nYD_y 1.0 0.3\n")
    x, names, _ = _run([{"type": "table", "path": "smf.txt", "header": False, "strip_suffix": True,
                         "column_names": ["fit", "sd"], "standardize": False, "impute": "mean"}], tmp_path)
    assert names == ["smf.fit", "smf.sd", "smf.missing"]
    np.testing.assert_allclose(x[:, 0].numpy(), [2.0, 0.0, 1.0, 1.0])  # YC imputed with the mean
    assert x[:, 2].tolist() == [0.0, 0.0, 1.0, 0.0]


def test_the_report_says_what_was_averaged_left_out_and_imputed(tmp_path):
    """Nothing a source does to the data goes unseen: rows of genes outside the gene list, genes whose
    several rows were averaged, and genes given an imputed value are lines of the run's data report."""
    from cellgi.data.features import feature_report_lines

    (tmp_path / "smf.txt").write_text("YA_d1 1.0\nYA_d2 3.0\nYA_d3 2.0\nYB_x 0.0\nYQQ_z 5.0\n")
    _, _, infos = _run([{"type": "table", "path": "smf.txt", "header": False, "strip_suffix": True,
                         "column_names": ["fit"]}], tmp_path)
    assert (infos[0]["genes_with_several_rows"], infos[0]["rows_averaged"]) == (1, 2)
    lines = feature_report_lines(infos, len(GENES))
    assert len(lines) == 3 and all(line.startswith("data.features[0] (table, smf.txt): ") for line in lines)
    assert "1 rows name genes not in the gene list (e.g. YQQ)" in lines[0]
    assert "1 genes have several rows; their values were averaged (2 extra rows)" in lines[1]
    assert "2 of 4 genes have no value and get an imputed one, marked by a missing-indicator column" in lines[2]
    _, _, infos = _run([{"type": "table", "path": "smf.txt", "header": False, "strip_suffix": True,
                         "column_names": ["fit"], "missing_indicator": False}], tmp_path)
    assert "nothing marks them" in feature_report_lines(infos, len(GENES))[2]
    assert feature_report_lines([{"index": 0, "type": "graph_structure"}], 4) == []


def test_strain_priority_keeps_each_genes_preferred_strain_kind(tmp_path):
    from cellgi.data.features import feature_report_lines
    from cellgi.spec import SpecError, validate_spec

    (tmp_path / "smf.txt").write_text("YA_dma1 1.0\nYA_tsq2 3.0\nYA_dma7 2.0\nYB_tsa1 0.0\nYB_sn3 4.0\nYC_damp9 5.0\n")
    spec = {"type": "table", "path": "smf.txt", "header": False, "strip_suffix": True, "column_names": ["fit"],
            "standardize": False, "strain_priority": ["dma", "damp"]}
    x, _, infos = _run([spec], tmp_path)
    # YA: its two dma rows (tsq set aside); YB: neither kind listed, both rows; YC: its damp row
    np.testing.assert_allclose(x[:3, 0].numpy(), [1.5, 2.0, 5.0])
    assert infos[0]["rows_of_other_strains_set_aside"] == 1
    assert any("1 rows of less preferred strains set aside" in line for line in feature_report_lines(infos, 4))
    with pytest.raises(SpecError, match="strain_priority reads the strain suffix: set strip_suffix: true"):
        validate_spec({"name": "t", "data": {"synthetic": {}, "features": [{**spec, "strip_suffix": False}]},
                       "training": {}, "model": {}})


def test_a_run_prints_the_feature_lines(tmp_path, monkeypatch):
    from cellgi.data import build_data
    from cellgi.spec import validate_spec

    monkeypatch.chdir(tmp_path)  # synthetic data reads feature files from the working folder
    (tmp_path / "f.tsv").write_text("gene\tv\nSYN0001\t1.0\nSYN0001\t2.0\nSYN0002\t0.5\n")
    spec = validate_spec({"name": "t", "data": {"cache": False,
                                                "synthetic": {"num_genes": 30, "num_samples": 60,
                                                              "edge_types": {"physical": 40}, "directed": []},
                                                "features": [{"type": "table", "path": "f.tsv"}]},
                          "training": {}, "model": {}})
    report = build_data(spec.data, progress=False).report
    assert any("1 genes have several rows" in w for w in report.warnings), report.warnings
    assert any("28 of 30 genes have no value" in w for w in report.warnings), report.warnings


@pytest.mark.parametrize("text, spec, match", [
    ("gene\tv\nYA\tx\n", {"columns": ["v"]}, r"t.tsv:2: non-numeric value 'x'"),
    ("gene\tv\nYA\t1\n", {"columns": ["w"]}, r"feature column 'w' not in the columns"),
    ("gene\tv\nYZ\t1\n", {"columns": ["v"]}, r"no value for any gene"),
])
def test_table_errors_name_the_place(tmp_path, text, spec, match):
    (tmp_path / "t.tsv").write_text(text)
    with pytest.raises(DataError, match=match):
        _run([{"type": "table", "path": "t.tsv", **spec}], tmp_path)


def test_go_slim_multi_hot_min_genes_and_roots(tmp_path):
    rows = [("YA", "P", "proc1", "GO:1"), ("YB", "P", "proc1", "GO:1"), ("YC", "P", "proc2", "GO:2"),
            ("YA", "F", "fn", "GO:3"), ("YB", "F", "fn", "GO:3"), ("YD", "P", "biological_process", "GO:0008150")]
    (tmp_path / "go.tab").write_text("".join(f"{g}\t{g}\tS1\t{a}\t{n}\t{i}\tORF\n" for g, a, n, i in rows))
    x, names, info = _run([{"type": "go_slim", "path": "go.tab", "min_genes": 2}], tmp_path)
    assert names == ["go.F.GO:3", "go.P.GO:1", "go.missing"]
    assert x.tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 1], [0, 0, 1]]
    assert info[0]["terms_below_min_genes"] == 1 and "evidence codes" in info[0]["note"]
    x, names, _ = _run([{"type": "go_slim", "path": "go.tab", "min_genes": 1, "aspects": ["F"]}], tmp_path)
    assert names == ["go.F.GO:3", "go.missing"]


def test_graph_structure_degrees_per_type():
    x, names, _ = compute_gene_features([{"type": "graph_structure", "standardize": False}], genes=GENES,
                                        mapper=GeneMapper(GENES), graph=_graph(), root=".")
    assert names == ["deg.ppi", "wdeg.ppi", "deg_in.reg", "deg_out.reg"]
    np.testing.assert_allclose(x[:, 0].numpy(), np.log1p([1, 2, 1, 0]), rtol=1e-6)
    np.testing.assert_allclose(x[:, 1].numpy(), np.log1p([0.5, 2.5, 2.0, 0]), rtol=1e-6)
    np.testing.assert_allclose(x[:, 3].numpy(), np.log1p([2, 0, 0, 0]), rtol=1e-6)
    with pytest.raises(DataError, match="unknown edge type"):
        compute_gene_features([{"type": "graph_structure", "edge_types": ["nope"]}], genes=GENES,
                              mapper=GeneMapper(GENES), graph=_graph(), root=".")


def test_repeated_column_names_and_input_files(tmp_path):
    (tmp_path / "t.tsv").write_text("gene\tv\nYA\t1\nYB\t2\n")
    spec = {"type": "table", "path": "t.tsv"}
    with pytest.raises(DataError, match=r"also made by data.features\[0\]"):
        _run([spec, spec], tmp_path)
    assert feature_input_files([spec, {"type": "graph_structure"}], tmp_path) == [tmp_path / "t.tsv"]


@pytest.mark.parametrize("name", ["table", "go_slim", "graph_structure"])
def test_every_source_is_registered_and_built_from_yaml(name, tmp_path):
    from cellgi.spec import validate_spec

    src = {"type": name} if name == "graph_structure" else {"type": name, "path": "x.tsv"}
    spec = validate_spec({"name": "t", "data": {"synthetic": {"num_genes": 20, "num_samples": 20}, "features": [src]},
                          "training": {}, "model": {}})
    assert spec.data.features[0].type == name
    assert name in get_registry("gene_features").names()


def test_strain_kinds_keeps_only_the_kinds_listed_and_marks_genes_without_them(tmp_path):
    from cellgi.data.errors import DataError
    from cellgi.data.features import feature_report_lines
    from cellgi.spec import SpecError, validate_spec

    (tmp_path / "smf.txt").write_text("YA_dma1 1.0\nYA_tsq2 0.25\nYA_tsq7 0.75\nYB_dma1 0.9\nYC_DAmP9 0.4\n")
    spec = {"type": "table", "path": "smf.txt", "header": False, "strip_suffix": True, "column_names": ["fit"],
            "standardize": False, "prefix": "ess", "strain_kinds": ["tsq", "damp"]}
    x, names, infos = _run([spec], tmp_path)
    # YA: mean of its two tsq rows (dma set aside); YB: no tsq/damp strain -> imputed (median) and marked;
    # YC: its DAmP row (kinds match case-insensitively on the start of the suffix)
    assert names == ["ess.fit", "ess.missing"]
    np.testing.assert_allclose(x[:3, 0].numpy(), [0.5, 0.45, 0.4])
    np.testing.assert_array_equal(x[:3, 1].numpy(), [0.0, 1.0, 0.0])
    assert infos[0]["rows_of_other_strain_kinds"] == 2
    assert any("2 rows of strains of other kinds set aside (strain_kinds)" in line
               for line in feature_report_lines(infos, 4))
    with pytest.raises(SpecError, match="strain_kinds reads the strain suffix: set strip_suffix: true"):
        validate_spec({"name": "t", "data": {"synthetic": {}, "features": [{**spec, "strip_suffix": False}]},
                       "training": {}, "model": {}})
    with pytest.raises(DataError, match=r"of the strain kinds \['tsa'\]"):
        _run([{**spec, "strain_kinds": ["tsa"]}], tmp_path)
    with pytest.raises(DataError, match=r"\['fit'\] have no value of the strain kinds \['tsa'\]"):
        _run([{**spec, "strain_kinds": ["tsa"], "columns": ["fit"]}], tmp_path)
